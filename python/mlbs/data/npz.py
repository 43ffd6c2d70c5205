"""Multi-label data in a NumPy ``.npz`` archive.

Keys of the archive (``np.savez`` / ``np.savez_compressed``):

``X``
    dense ``(n, d)`` numeric features, **or** the four CSR arrays ``X_data``,
    ``X_indices``, ``X_indptr``, ``X_shape`` (the fields of a
    ``scipy.sparse.csr_matrix``: ``np.savez(f, X_data=X.data,
    X_indices=X.indices, X_indptr=X.indptr, X_shape=X.shape, ...)``);
``Y``
    dense ``(n, q)`` labels in {0, 1} (or bool), **or** ``Y_data``,
    ``Y_indices``, ``Y_indptr``, ``Y_shape`` likewise;
``feature_names``, ``label_names`` (optional)
    one-dimensional string arrays naming the columns.

Any other key is refused (it is most likely a misspelt one), and so are
object arrays (they would need pickle, which is never enabled).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .arff import DataFormatError, MultiLabelData
from .arrays import from_arrays

__all__ = ["load_npz", "NPZ_KEYS"]

_CSR_PARTS = ("data", "indices", "indptr", "shape")

#: Every key a data archive may hold.
NPZ_KEYS = ("X", "Y", *(f"{m}_{p}" for m in "XY" for p in _CSR_PARTS), "feature_names", "label_names")


def _matrix(z, name: str, path):
    parts = [f"{name}_{p}" for p in _CSR_PARTS]
    has_dense, has_sparse = name in z, [k for k in parts if k in z]
    if has_dense and has_sparse:
        raise DataFormatError(path, None, f"holds both {name!r} and {has_sparse}; give {name} one way")
    if has_dense:
        return z[name]
    if not has_sparse:
        raise DataFormatError(path, None, f"no {name!r} (dense) nor {parts} (CSR); keys found: {sorted(z)}")
    missing = [k for k in parts if k not in z]
    if missing:
        raise DataFormatError(path, None, f"CSR matrix {name} lacks {missing}")
    shape = tuple(int(v) for v in np.asarray(z[f"{name}_shape"]).ravel())
    try:
        return sp.csr_matrix((z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]), shape=shape)
    except (ValueError, TypeError) as exc:
        raise DataFormatError(path, None, f"CSR arrays of {name} are inconsistent: {exc}") from None


def load_npz(path, *, allow_missing: bool = False) -> MultiLabelData:
    """Read a multi-label dataset from an ``.npz`` archive (keys: see the module docstring).

    Parameters
    ----------
    path : str or Path
    allow_missing : bool
        Accept NaN features.

    Returns
    -------
    MultiLabelData

    Raises
    ------
    DataFormatError
        Unreadable archive, unknown or missing keys, object arrays, inconsistent CSR arrays, shapes
        that disagree, labels other than 0/1, NaN (unless ``allow_missing``), infinite or
        float32-overflowing features.
    """
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFormatError(path, None, f"not a readable .npz archive ({exc})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataFormatError(path, None, "a single .npy array, not an .npz archive of X and Y")
    with z:
        unknown = sorted(set(z.files) - set(NPZ_KEYS))
        if unknown:
            raise DataFormatError(path, None, f"unexpected key(s) {unknown}; an archive holds {list(NPZ_KEYS)}")
        try:
            X, Y = _matrix(z, "X", path), _matrix(z, "Y", path)
            names = {k: [str(v) for v in np.asarray(z[k]).ravel()] for k in ("feature_names", "label_names")
                     if k in z}
        except ValueError as exc:  # object arrays: np.load refuses to unpickle them
            if isinstance(exc, DataFormatError):
                raise
            raise DataFormatError(path, None, f"{exc} (store names as a unicode string array, "
                                  "e.g. np.array(names, dtype=str))") from None
    try:
        return from_arrays(X, Y, source=str(path), allow_missing=allow_missing, **names)
    except ValueError as exc:
        raise DataFormatError(path, None, str(exc)) from None
