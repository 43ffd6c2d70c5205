"""Result store: one JSON record per (dataset, model, method, fold, seed, configuration hash).

Layout under the store's root folder::

    configs/<hash>.json                                   the full configuration
    records/<hash>/<dataset>/<model>/<method>/fold<k>-seed<s>.json
    locks/<hash>/<dataset>/<model>/<method>/fold<k>-seed<s>.lock   while a process runs it
    datasets/<name>.json                                  where an own dataset came from

Every file is written atomically (a temporary file in the same folder, flushed and fsynced, then
``os.replace``), so an interrupted run (Ctrl-C, ``kill -9``) leaves either the complete record or
none. A record exists only for a finished run, so resuming means skipping the keys that have a
record. Records of different configurations live under different hashes and are never read
together; each record also stores its configuration, which :meth:`ResultStore.load` checks
against the hash it is filed under.

Several processes on one store
------------------------------
A process claims a run before training it and keeps the claim until its record is written:

.. code-block:: python

    claim = store.try_claim(config, key)   # None: another process holds it, or it has a record
    if claim is not None:
        with claim:                        # released on leaving the block (or claim.release())
            store.save(config, key, train(key))

A claim is an exclusive ``flock`` on the run's lock file, so the operating system releases it
when the holder ends in any way (``kill -9`` included): there is no stale claim to clear by hand.
The lock file names the holder (host, process id), which :meth:`ResultStore.holder` reads for
messages. Claims work between processes of one machine, and on file systems whose ``flock`` is
shared between machines (local disks, most NFS v4 setups). A process that runs keys through
workers (``--jobs``, Ray) claims in the process that writes the records.

A write cut short leaves a temporary file ``.<name>.<random>.tmp`` beside its target;
:meth:`ResultStore.clean_temporaries` removes those of runs nobody holds (and configuration
temporaries older than a minute). :func:`~mlbs.experiments.runner.run_grid` calls it on start.
"""
from __future__ import annotations

import errno
import json
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_file
from .config import ExperimentConfig

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["RunKey", "ResultStore", "RecordError", "Claim", "write_json_atomic", "FORMAT_VERSION"]

#: Age (seconds) after which a configuration's temporary file is an interrupted write's.
CONFIG_TEMP_AGE_S = 60.0

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


def _lock(path: Path) -> int | None:
    """An exclusive ``flock`` on ``path`` (created if needed): its descriptor, or None if held elsewhere.

    The descriptor is checked to still be the file at ``path`` after locking (a releasing holder
    unlinks it), so two processes never hold locks on different files of the same name.
    """
    if fcntl is None:  # pragma: no cover
        raise OSError("claims need POSIX file locks (fcntl.flock)")
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            if exc.errno != errno.EMFILE:
                raise
            if not _raise_open_file_limit():
                raise OSError(f"too many open files while claiming {path} (each held claim keeps one open); "
                              "raise the limit (ulimit -n)") from exc
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # unlinked by its previous holder between our open and lock: try the new file


def _raise_open_file_limit() -> bool:
    """Raise this process's soft limit of open files to its hard limit; whether it grew."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft >= hard:
        return False
    new = hard if hard != resource.RLIM_INFINITY else max(4 * soft, 65536)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ValueError, OSError):
        return False
    return new > soft


class Claim:
    """This process's exclusive hold on one run (see the module docstring); a context manager."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}).encode())

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the run up (idempotent); the lock file is removed."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


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

    def lock_path(self, config_hash: str, key: RunKey) -> Path:
        return (self.root / "locks" / config_hash / key.dataset / key.model / key.method
                / f"fold{key.fold}-seed{key.seed}.lock")

    def dataset_path(self, name: str) -> Path:
        return self.root / "datasets" / f"{name}.json"

    # ----------------------------------------------------------------------------- claims
    def try_claim(self, config: ExperimentConfig, key: RunKey) -> Claim | None:
        """Claim a run for this process (see the module docstring).

        Returns
        -------
        Claim or None
            None when another process holds the run or the run already has a record (checked
            after locking, so a run finished by another process meanwhile is not run again).
        """
        h = config.hash()
        path = self.lock_path(h, key)
        fd = _lock(path)
        if fd is None:
            return None
        claim = Claim(path, fd)
        if self.record_path(h, key).is_file():
            claim.release()
            return None
        self._remove_temporaries(self.record_path(h, key))  # only the holder writes this record
        return claim

    def holder(self, config: ExperimentConfig, key: RunKey) -> dict | None:
        """Who holds a run (``host``, ``pid``, ``since``), as its lock file says; None if nobody."""
        path = self.lock_path(config.hash(), key)
        fd = _lock(path) if path.exists() else None
        if fd is not None:  # nobody held it: undo our own claim
            Claim(path, fd).release()
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8") or "null")
        except (OSError, json.JSONDecodeError):
            return None

    @staticmethod
    def _remove_temporaries(target: Path) -> int:
        removed = 0
        for tmp in target.parent.glob(f".{target.name}.*.tmp"):
            try:
                tmp.unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def clean_temporaries(self) -> int:
        """Remove temporary files left by interrupted writes; return how many.

        A record's temporary file goes when nobody holds the record's run (the holder may be
        writing it); a configuration's or dataset description's when older than
        :data:`CONFIG_TEMP_AGE_S` seconds (those writes take milliseconds).
        """
        removed = 0
        records = self.root / "records"
        for tmp in sorted(records.rglob(".fold*-seed*.json.*.tmp")) if records.is_dir() else []:
            target = tmp.with_name(tmp.name[1:].split(".json.", 1)[0] + ".json")
            rel = target.relative_to(records)
            lock = (self.root / "locks" / rel).with_suffix(".lock")
            fd = _lock(lock)
            if fd is None:
                continue
            with Claim(lock, fd):
                removed += self._remove_temporaries(target)
        now = time.time()
        for folder in (self.root / "configs", self.root / "datasets"):
            for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
                try:
                    if now - tmp.stat().st_mtime > CONFIG_TEMP_AGE_S:
                        tmp.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed

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

    def save_dataset(self, description: dict) -> Path:
        """Store where an own dataset came from (``description["name"]`` names the file); once."""
        path = self.dataset_path(description["name"])
        if not path.exists():
            write_json_atomic(path, {"format": FORMAT_VERSION, **description})
        return path

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
