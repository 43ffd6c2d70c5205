"""Multi-label data layer: file readers, dataset registry, cache, preprocessing, splits.

Modules
-------
files
    :func:`load_path`: any supported file (ARFF, npz, CSV/TSV, LibSVM/svmlight)
    with a stable :func:`dataset_name`.
arff
    MULAN/MEKA ARFF parser (:func:`load_arff`, :class:`MultiLabelData`).
npz, delimited, svmlight
    The other readers; :mod:`arrays` checks (X, Y) arrays (:func:`from_arrays`).
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
from .arrays import from_arrays
from .files import dataset_name, load_path
from .registry import (REGISTRY, DatasetMismatchError, DatasetNotFoundError, DatasetSpec, candidate_data_dirs,
                       load_dataset)

__all__ = ["DataFormatError", "MultiLabelData", "beside_xml", "load_arff", "read_label_xml", "from_arrays",
           "dataset_name", "load_path", "REGISTRY", "DatasetSpec", "DatasetMismatchError", "DatasetNotFoundError",
           "candidate_data_dirs", "load_dataset"]
