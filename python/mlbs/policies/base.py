"""The interface every batch-selection policy implements.

A policy is built from the training labels (and features where it needs them). It receives the
observations of every trained batch (sample indices and the model's outputs, or per-sample
losses) and maintains the sampling distribution P over the n training samples, which it draws
from. Data flows one way: labels/features -> statistics (:mod:`mlbs.statistics`) -> signals
(:mod:`mlbs.signals`) -> policy tables -> weighted index -> batch -> model -> observation ->
signals.

Every policy class states its own defaults as class attributes, which the experiment layer reads:
``warmup_epochs`` (the sampling warm-up its paper uses), ``observation`` (``"losses"`` when the
per-sample losses suffice, ``"outputs"`` when it keeps per-label signals) and ``default_refresh``.

Refresh modes:

- ``"batch"``: P changes after every observed batch, as the seed paper's text describes; the
  O(log n) index makes that affordable at any n.
- ``"epoch"``: observations only update the tables; P is rebuilt once per epoch (``end_epoch``),
  as the authors' code does.

Checkpoints. :meth:`Policy.state_dict` records what the state belongs to (policy class, format
version, n, q, a fingerprint of the labels and of the settings that shape the tables);
:meth:`Policy.load_state_dict` checks all of it and every array's shape and dtype before
assigning anything, so a refused state leaves the policy as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from mlbs import core
from mlbs.signals.observation import check_losses, last_occurrence, observed_bce
from mlbs.typing import MatrixLike

REFRESH_MODES = ("batch", "epoch")


def binary_label_matrix(labels: MatrixLike) -> sp.csr_matrix:
    """Labels as a CSR matrix of 0/1 (int8), rejecting any other value with its position."""
    Y = sp.csr_matrix(labels, copy=True)  # the caller's matrix is never changed
    if Y.ndim != 2 or Y.shape[0] == 0 or Y.shape[1] == 0:
        raise ValueError(f"labels must be a non-empty (n, q) matrix, got shape {Y.shape}")
    Y.sum_duplicates()
    bad = np.flatnonzero((Y.data != 0) & (Y.data != 1))
    if bad.size:
        row = int(np.searchsorted(Y.indptr, bad[0], side="right") - 1)
        raise ValueError(f"labels must be 0 or 1: sample {row}, label {Y.indices[bad[0]]} has value "
                         f"{Y.data[bad[0]]}")
    Y.eliminate_zeros()
    return sp.csr_matrix((np.ones(Y.nnz, dtype=np.int8), Y.indices, Y.indptr), shape=Y.shape)


def check_pressure(pressure: float, n: int | None = None) -> float:
    """Selection pressure s > 1 (the ratio of the largest to the smallest weight), finite; with
    ``n``, also small enough that n weights of at most s have a finite sum."""
    s = float(pressure)
    if not np.isfinite(s) or s <= 1.0:
        raise ValueError(f"selection pressure must be a finite number > 1, got {pressure!r}")
    if n is not None and not np.isfinite(s * n):
        raise ValueError(f"selection pressure {pressure!r} is too large for {n} samples: the sum of the "
                         "sampling weights would overflow")
    return s


class Policy(ABC):
    """Base class: validated observations, the per-sample loss table, refresh bookkeeping.

    Parameters
    ----------
    labels : array-like or sparse matrix, shape (n, q)
        Training labels, 0/1.
    refresh : {"batch", "epoch"}, optional
        When P follows the observations (see module docstring); default ``default_refresh``.

    Attributes
    ----------
    loss : ndarray, shape (n,)
        Per-sample BCE at the latest visit (0 before any visit).
    """

    #: True for policies whose epochs are plain permutations (Random).
    uniform = False
    #: Sampling warm-up gamma (uniform epochs before selection starts) of the method's paper.
    warmup_epochs = 3
    #: What :meth:`observe` needs: ``"losses"`` (per-sample losses suffice) or ``"outputs"``.
    observation = "losses"
    #: When P follows the observations unless the caller says otherwise.
    default_refresh = "batch"

    def __init__(self, labels: MatrixLike, *, refresh: str | None = None):
        refresh = self.default_refresh if refresh is None else refresh
        if refresh not in REFRESH_MODES:
            raise ValueError(f"refresh must be one of {REFRESH_MODES}, got {refresh!r}")
        self.labels = binary_label_matrix(labels)
        self.label_csr = core.LabelsCSR.of(self.labels)
        self.n, self.q = self.labels.shape
        self.refresh = refresh
        self.loss = np.zeros(self.n)
        self.selecting = False  # False during warm-up: observations only fill the tables

    # -- observations --------------------------------------------------------------------------
    def observe(self, indices: npt.ArrayLike, outputs: npt.ArrayLike | None = None, *, kind: str = "logits",
                losses: npt.ArrayLike | None = None) -> None:
        """Record the batch just trained.

        Parameters
        ----------
        indices : array of int, shape (m,)
            The samples of the batch, in the order of ``outputs``.
        outputs : array, shape (m, q), optional
            The model's logits (``kind="logits"``) or probabilities for these samples; the
            per-sample BCE is computed against the stored labels.
        losses : array, shape (m,), optional
            Per-sample losses computed by the caller, instead of ``outputs``.

        Nothing changes when the input is invalid (the error names the offending sample).
        """
        if (outputs is None) == (losses is None):
            raise ValueError("give exactly one of outputs= and losses=")
        if losses is None:
            idx, loss, repeats = observed_bce(indices, outputs, self.label_csr, kind=kind)
        else:
            idx, loss, repeats = check_losses(indices, losses, self.n)
        if repeats is not False:
            idx, loss = last_occurrence(idx, loss)
        self._check_losses(idx, loss)
        self.loss[idx] = loss
        self._observed(idx, loss)

    def _check_losses(self, idx: np.ndarray, loss: np.ndarray) -> None:
        """Hook: refuse checked losses the policy's tables cannot take, before anything changes."""

    def _observed(self, idx: np.ndarray, loss: np.ndarray) -> None:
        """Hook: update the policy's tables (and P when refresh="batch" while selecting)."""

    # -- the distribution ------------------------------------------------------------------------
    def start_selection(self) -> None:
        """End of warm-up: build P from the tables filled so far."""
        self.selecting = True
        self.rebuild()

    def end_epoch(self) -> None:
        """Called once after the last batch of every epoch."""
        if self.selecting and self.refresh == "epoch":
            self.rebuild()

    @abstractmethod
    def rebuild(self) -> None:
        """Recompute P for all samples from the current tables."""

    @abstractmethod
    def draw(self, k: int) -> np.ndarray:
        """k distinct samples, drawn one after another from P (without replacement)."""

    @abstractmethod
    def probabilities(self) -> np.ndarray:
        """P over the n samples (sums to 1)."""

    # -- checkpoints -----------------------------------------------------------------------------
    def _settings(self) -> dict:
        """The settings that shape the tables of a state (JSON-compatible values)."""
        return {"refresh": self.refresh}

    def _tables(self) -> dict:
        """The arrays of a state, by name (copies)."""
        return {"loss": self.loss.copy()}

    def _restore(self, state: dict) -> None:
        """Assign a state whose header and arrays :meth:`load_state_dict` has checked."""
        self.loss[...] = state["loss"]
        self.selecting = bool(state["selecting"])

    def _check_state(self, state: dict) -> None:
        """Hook: checks beyond shapes and dtypes (e.g. weights), before anything is assigned."""

    def state_dict(self) -> dict:
        """The policy's state; :meth:`load_state_dict` restores it into a policy built the same way."""
        return {**state_header(self), "selecting": self.selecting, **self._tables()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`, all or nothing.

        Raises ValueError (naming the mismatch) for the state of another policy class, another
        format version, another training set (n, q or labels) or other table-shaping settings, and
        for a missing, mis-shaped or non-finite array; the policy is then unchanged.
        """
        check_header(self, state)
        for name, current in self._tables().items():
            check_array(state, name, current)
        self._check_state(state)
        self._restore(state)


#: Format version of :meth:`Policy.state_dict`.
STATE_VERSION = 2


def fingerprint(*parts) -> str:
    """A short hash of arrays' bytes and other values' repr."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return h.hexdigest()


def state_header(policy: Policy) -> dict:
    """What a state belongs to: class, format version, n, q, fingerprints of labels and settings."""
    return {"policy": type(policy).__name__, "version": STATE_VERSION, "n": policy.n, "q": policy.q,
            "labels_fingerprint": fingerprint(policy.labels.indptr, policy.labels.indices),
            "settings_fingerprint": fingerprint(sorted(policy._settings().items()))}


def check_header(policy: Policy, state: dict) -> None:
    """Refuse a state that does not belong to ``policy`` (see :func:`state_header`)."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    expected = state_header(policy)
    what = {"policy": "a state of policy", "version": "a state of format version", "n": "a state of n =",
            "q": "a state of q =", "labels_fingerprint": "a state of other training labels, fingerprint",
            "settings_fingerprint": "a state built with other settings, fingerprint"}
    for key, value in expected.items():
        if key not in state:
            raise ValueError(f"state has no {key!r}: not a {type(policy).__name__} state of this format "
                             f"(version {STATE_VERSION})")
        if state[key] != value:
            raise ValueError(f"{type(policy).__name__} (n = {policy.n}, q = {policy.q}) refuses {what[key]} "
                             f"{state[key]!r}; expected {value!r}")
    if "selecting" not in state:
        raise ValueError("state has no 'selecting'")


def check_array(state: dict, name: str, like) -> np.ndarray:
    """``state[name]`` as an array of ``like``'s shape and dtype kind, finite where floating."""
    if name not in state:
        raise ValueError(f"state has no {name!r}")
    if not isinstance(like, np.ndarray):
        return state[name]
    value = np.asarray(state[name])
    if value.shape != like.shape:
        raise ValueError(f"state's {name!r} has shape {value.shape}, expected {like.shape}")
    if value.size and not np.can_cast(value.dtype, like.dtype, casting="same_kind"):
        raise ValueError(f"state's {name!r} has dtype {value.dtype}, expected {like.dtype}")
    if value.dtype.kind == "f" and like.dtype.kind == "f" and not np.isfinite(value).all():
        bad = np.argwhere(~np.isfinite(value))[0]
        raise ValueError(f"state's {name!r} holds {value[tuple(bad)]} at {tuple(int(b) for b in bad)}")
    return value


def check_weights(state: dict, name: str) -> None:
    """Sampling weights: finite, >= 0, with a finite sum."""
    w = np.asarray(state[name], dtype=np.float64)
    with np.errstate(over="ignore"):
        total = w.sum()
    if w.size and (w.min() < 0 or not np.isfinite(total)):
        raise ValueError(f"state's {name!r} must be weights >= 0 with a finite sum")


def check_rng_state(state: dict, name: str) -> tuple:
    """A core generator state: four unsigned 64-bit words."""
    value = tuple(state[name]) if name in state else ()
    if len(value) != 4 or not all(isinstance(v, (int, np.integer)) and 0 <= int(v) < 2 ** 64 for v in value):
        raise ValueError(f"state's {name!r} must be four unsigned 64-bit integers")
    return tuple(int(v) for v in value)


def check_numpy_rng_state(state: dict, name: str) -> None:
    """A numpy generator state (``Generator.bit_generator.state``) of the policy's bit generator."""
    try:
        np.random.default_rng().bit_generator.state = check_array(state, name, None)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"state's {name!r} is not a numpy generator state: {exc}") from exc


def configured(config_cls: type, config, settings: dict):
    """``config`` (default ``config_cls()``) with the named ``settings`` replaced; an unknown name
    raises TypeError listing the valid ones."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise TypeError(f"{config_cls.__name__} has no setting {unknown[0]!r}; settings: {sorted(names)}")
    if config is not None and not isinstance(config, config_cls):
        raise TypeError(f"config must be a {config_cls.__name__}, got {type(config).__name__}")
    return dataclasses.replace(config or config_cls(), **settings)
