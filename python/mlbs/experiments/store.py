"""Result store: one JSON record per (dataset, model, method, fold, seed, configuration hash).

Layout under the store's root folder::

    configs/<hash>.json                                   the full configuration
    records/<hash>/<dataset>/<model>/<method>/fold<k>-seed<s>.json

Every file is written atomically (a temporary file in the same folder, flushed and fsynced, then
``os.replace``), so an interrupted run (Ctrl-C, ``kill -9``) leaves either the complete record or
none. A record exists only for a finished run, so resuming means skipping the keys that have a
record. Records of different configurations live under different hashes and are never read
together; each record also stores its configuration, which :meth:`ResultStore.load` checks
against the hash it is filed under.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..atomic import atomic_file
from .config import ExperimentConfig

__all__ = ["RunKey", "ResultStore", "RecordError", "write_json_atomic", "FORMAT_VERSION"]

#: Version of the record layout.
FORMAT_VERSION = 1


class RecordError(ValueError):
    """A record file is unreadable or does not belong where it is filed."""


@dataclass(frozen=True)
class RunKey:
    """Identity of one run within a configuration."""

    dataset: str
    model: str
    method: str
    fold: int
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "model": self.model, "method": self.method, "fold": self.fold,
                "seed": self.seed}

    def label(self) -> str:
        """Short human-readable name."""
        return f"{self.dataset}/{self.model}/{self.method} fold {self.fold} seed {self.seed}"


def _clean(value):
    """JSON-compatible copy: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` atomically (temporary file + ``os.replace``)."""
    with atomic_file(path, "w", encoding="utf-8") as handle:
        json.dump(_clean(payload), handle, allow_nan=False, separators=(",", ":"))


class ResultStore:
    """Records of finished runs under one root folder (see the module docstring).

    Parameters
    ----------
    root : path
        Created on first write.
    """

    def __init__(self, root) -> None:
        self.root = Path(root)

    # ----------------------------------------------------------------------------- paths
    def config_path(self, config_hash: str) -> Path:
        return self.root / "configs" / f"{config_hash}.json"

    def record_path(self, config_hash: str, key: RunKey) -> Path:
        return (self.root / "records" / config_hash / key.dataset / key.model / key.method
                / f"fold{key.fold}-seed{key.seed}.json")

    # ----------------------------------------------------------------------------- writing
    def save_config(self, config: ExperimentConfig) -> str:
        """Store the configuration (once) and return its hash."""
        h = config.hash()
        path = self.config_path(h)
        if not path.exists():
            values = config.as_dict()
            values.pop("seed", None)
            write_json_atomic(path, {"config_hash": h, "config": values, "format": FORMAT_VERSION})
        return h

    def has(self, config: ExperimentConfig, key: RunKey) -> bool:
        """Whether the run has a finished record."""
        return self.record_path(config.hash(), key).is_file()

    def save(self, config: ExperimentConfig, key: RunKey, result: dict) -> Path:
        """Write the record of a finished run (atomically); return its path."""
        h = self.save_config(config)
        path = self.record_path(h, key)
        values = config.as_dict()
        write_json_atomic(path, {"format": FORMAT_VERSION, "config_hash": h, "key": key.as_dict(),
                                 "config": values, "result": result})
        return path

    # ----------------------------------------------------------------------------- reading
    def hashes(self) -> list[str]:
        """Configuration hashes that have at least one record."""
        base = self.root / "records"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def config(self, config_hash: str) -> dict:
        """The stored configuration of a hash (without the seed)."""
        path = self.config_path(config_hash)
        if not path.is_file():
            raise RecordError(f"no configuration {config_hash!r} in {self.root}; stored: {self.hashes()}")
        return json.loads(path.read_text(encoding="utf-8"))["config"]

    def load(self, config_hash: str) -> list[dict]:
        """All records of one configuration, checked, sorted by key.

        Raises
        ------
        RecordError
            A record is unreadable, or its configuration does not hash to ``config_hash``.
        """
        base = self.root / "records" / config_hash
        if not base.is_dir():
            raise RecordError(f"no records of configuration {config_hash!r} in {self.root}; "
                              f"stored: {self.hashes()}")
        out = []
        for path in sorted(base.rglob("fold*-seed*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise RecordError(f"{path}: unreadable record ({exc})") from exc
            stored = ExperimentConfig.from_dict(record["config"]).hash()
            if stored != config_hash or record.get("config_hash") != config_hash:
                raise RecordError(f"{path}: its configuration hashes to {stored}, but it is filed under "
                                  f"{config_hash}")
            out.append(record)
        out.sort(key=lambda r: tuple(r["key"][k] for k in ("dataset", "model", "method", "seed", "fold")))
        return out

    def iter_all(self) -> Iterator[tuple[str, list[dict]]]:
        """(hash, records) for every stored configuration."""
        for h in self.hashes():
            yield h, self.load(h)
