"""sha256-keyed on-disk cache of parsed datasets.

A parsed :class:`~mlbs.data.arff.MultiLabelData` is stored as one ``.npz``
file whose name is a sha256 key computed from

* the sha256 of every source file (ARFF and XML),
* the parser options, and
* :data:`CACHE_FORMAT` (bumped whenever the parser's output changes).

Changing a source byte therefore changes the key; a stale entry is never read.

Location: the ``cache_dir`` argument, else the ``MLBS_CACHE`` environment
variable, else the user cache folder (``$XDG_CACHE_HOME/mlbs`` or
``~/.cache/mlbs``). ``cache_dir="source"`` puts the cache in a
``.mlbs-cache`` folder next to the source file instead. The user folder is the
default because data folders are often shared and read-only (checking write
permission is not enough: it always succeeds for root).

Writes are atomic (temporary file in the same folder, then
:func:`os.replace`), and only a completely parsed dataset is ever written, so a
malformed or interrupted parse leaves nothing in the cache. An unreadable cache
entry is ignored (and overwritten by the next successful parse).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ..atomic import atomic_file
from .arff import MultiLabelData

__all__ = ["CACHE_FORMAT", "file_sha256", "cache_key", "default_cache_dir", "load_cached", "cached"]

CACHE_FORMAT = 2

#: ``info`` entries of a parse that are kept in its cache entry.
_KEPT_INFO = ("labels_from",)


def file_sha256(path) -> str:
    """Hex sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(digests, options: dict) -> str:
    """Key of a parse: sha256 over the sources' sha256, the options and the format.

    Parameters
    ----------
    digests : list of str
        sha256 hex digests of the files the parse reads.
    options : dict
        JSON-serialisable parser options.
    """
    payload = json.dumps({"format": CACHE_FORMAT, "sources": digests, "options": options}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def default_cache_dir(source=None) -> Path:
    """Cache folder when none is given (see the module docstring)."""
    env = os.environ.get("MLBS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "mlbs"


def _resolve_cache_dir(cache_dir, source) -> Path:
    if cache_dir is None:
        return default_cache_dir()
    if cache_dir == "source":
        return Path(source).resolve().parent / ".mlbs-cache"
    return Path(cache_dir)


def _to_arrays(data: MultiLabelData) -> dict:
    out = {}
    if sp.issparse(data.X):
        X = data.X.tocsr()
        out.update(X_data=X.data, X_indices=X.indices, X_indptr=X.indptr, X_shape=np.array(X.shape))
    else:
        out["X_dense"] = np.ascontiguousarray(data.X)
    Y = data.Y.tocsr()
    out.update(Y_data=Y.data, Y_indices=Y.indices, Y_indptr=Y.indptr, Y_shape=np.array(Y.shape))
    meta = {
        "feature_names": data.feature_names,
        "label_names": data.label_names,
        "relation": data.relation,
        "source": data.source,
        "dropped": data.dropped,
        "nominal_features": {k: list(v) for k, v in data.nominal_features.items()},
        "info": {k: data.info[k] for k in _KEPT_INFO if k in data.info},
    }
    out["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return out


def _from_arrays(z) -> MultiLabelData:
    meta = json.loads(bytes(z["meta"]).decode())
    if "X_dense" in z:
        X = z["X_dense"]
    else:
        X = sp.csr_matrix((z["X_data"], z["X_indices"], z["X_indptr"]), shape=tuple(z["X_shape"]))
    Y = sp.csr_matrix((z["Y_data"], z["Y_indices"], z["Y_indptr"]), shape=tuple(z["Y_shape"]))
    return MultiLabelData(
        X=X, Y=Y, feature_names=meta["feature_names"], label_names=meta["label_names"],
        relation=meta["relation"], source=meta["source"], dropped=meta["dropped"],
        nominal_features={k: tuple(v) for k, v in meta["nominal_features"].items()},
        info=dict(meta.get("info", {})),
    )


def load_cached(file: Path) -> MultiLabelData | None:
    """Read a cache entry; ``None`` when absent or unreadable."""
    try:
        with np.load(file, allow_pickle=False) as z:
            return _from_arrays(z)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def _write_atomic(file: Path, arrays: dict) -> None:
    with atomic_file(file, "wb") as fh:
        np.savez(fh, **arrays)


def cached(parse: Callable[[], MultiLabelData], sources, options: dict, *, cache_dir=None,
           use_cache: bool = True) -> MultiLabelData:
    """Return ``parse()``, through the cache.

    Parameters
    ----------
    parse : callable
        Produces the dataset; only called on a cache miss.
    sources : sequence of path or None
        The files ``parse`` reads; the first one locates the default cache.
    options : dict
        Parser options that change the result (part of the key).
    cache_dir : path or "source", optional
        Explicit cache folder; ``"source"``: next to the first source.
    use_cache : bool
        False bypasses the cache entirely.

    Returns
    -------
    MultiLabelData
        With ``info["sha256_key"]``, ``info["cache_file"]`` and
        ``info["cache_hit"]`` set.
    """
    if not use_cache:
        data = parse()
        data.info.update(cache_hit=False)
        return data
    digests = [file_sha256(p) for p in sources if p is not None]
    key = cache_key(digests, options)
    folder = _resolve_cache_dir(cache_dir, sources[0])
    file = folder / f"{Path(sources[0]).name}.{key[:32]}.npz"
    data = load_cached(file) if file.exists() else None
    hit = data is not None
    if not hit:
        data = parse()  # raises on malformed input before anything is written
        try:
            _write_atomic(file, _to_arrays(data))
        except OSError:
            pass  # a read-only cache must not break loading
    data.info.update(sha256=digests, sha256_key=key, cache_file=str(file), cache_hit=hit)
    return data
