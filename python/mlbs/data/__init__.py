"""Multi-label data layer: ARFF loading, dataset registry, cache, preprocessing, splits.

Modules
-------
arff
    MULAN/MEKA ARFF parser (:func:`load_arff`, :class:`MultiLabelData`).
cache
    sha256-keyed, atomically written cache of parsed datasets.
registry
    The standard datasets and :func:`load_dataset`.
preprocess
    The papers' preprocessing steps (feature retention, label filter, empty
    rows, min-max scaling).
splits
    Iterative stratification (Sechidis et al. 2011) and the validation splits.
"""
from .arff import DataFormatError, MultiLabelData, beside_xml, load_arff, read_label_xml
from .registry import (REGISTRY, DatasetMismatchError, DatasetNotFoundError, DatasetSpec, candidate_data_dirs,
                       load_dataset)

__all__ = ["DataFormatError", "MultiLabelData", "beside_xml", "load_arff", "read_label_xml", "REGISTRY", "DatasetSpec",
           "DatasetMismatchError", "DatasetNotFoundError", "candidate_data_dirs", "load_dataset"]
