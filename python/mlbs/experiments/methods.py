"""The batch-selection methods by name, and how the training loop builds and feeds each one.

Each :class:`MethodSpec` names the policy class that implements a method and whether it needs the
training features (kNN graphs); its sampling warm-up and what it observes are read from the
policy class (``warmup_epochs``, ``observation``), where they are stated once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["METHODS", "MethodSpec", "get_method", "build_policy", "prime_method"]


@dataclass(frozen=True)
class MethodSpec:
    """How to build and feed one batch-selection method.

    Attributes
    ----------
    name : str
        Method id.
    policy : str
        Class name in :mod:`mlbs.policies`.
    needs_features : bool
        The constructor takes the training features (kNN-based methods).
    """

    name: str
    policy: str
    needs_features: bool

    @property
    def policy_class(self) -> type:
        import mlbs.policies as policies

        return getattr(policies, self.policy)

    @property
    def warmup_epochs(self) -> int:
        """Sampling warm-up gamma (uniform epochs before selection starts), the policy's default."""
        return int(self.policy_class.warmup_epochs)

    @property
    def observation(self) -> str:
        """What :meth:`mlbs.selector.BatchSelector.observe` receives after each batch:
        ``"losses"`` (per-sample losses) or ``"probabilities"`` (of every label)."""
        return "losses" if self.policy_class.observation == "losses" else "probabilities"


#: The methods, by id.
METHODS: dict[str, MethodSpec] = {m.name: m for m in [
    MethodSpec("random", "Random", False),
    MethodSpec("hard", "Hard", False),
    MethodSpec("adaptive", "Adaptive", True),
    MethodSpec("adac", "AdaC", True),
    MethodSpec("uncertain", "Uncertain", False),
    MethodSpec("d2ace", "D2ACE", True),
    MethodSpec("active_bias", "ActiveBias", False),
    MethodSpec("recency_bias", "RecencyBias", False),
]}


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``name`` (case-insensitive; ``-`` and ``_`` are equivalent).

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.
    """
    key = str(name).lower().replace("-", "_")
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    return METHODS[key]


def build_policy(name: str, labels, features=None, *, seed: int = 0, options: dict[str, Any] | None = None):
    """Build the policy of a method from the training fold.

    Parameters
    ----------
    name : str
        Method id (see :data:`METHODS`).
    labels : (n, q) 0/1 array or sparse matrix
        Training labels.
    features : (n, d) array, optional
        Training features as the model sees them; required by the kNN-based methods.
    seed : int
        Seed of the policy's draws.
    options : dict, optional
        Extra keyword arguments of the policy class (for example ``{"pressure": 16}``);
        ``compat`` names a preset of :mod:`mlbs.experiments.presets`, whose options come first.

    Returns
    -------
    mlbs.policies.Policy

    Raises
    ------
    ValueError
        Unknown method or preset; ``ActiveBias`` with ``mode="weight"``, whose loss weights this
        training loop does not apply (it would train plain shuffled batches).
    """
    from .presets import preset_options

    spec = get_method(name)
    cls = spec.policy_class
    kwargs = dict(options or {})
    compat = kwargs.pop("compat", None)
    if compat is not None:
        kwargs = {**preset_options(spec.policy, compat), **kwargs}
    if spec.policy == "ActiveBias" and kwargs.get("mode", "sample") != "sample":
        raise ValueError(f"active_bias mode={kwargs['mode']!r} is not supported by the experiment loop: it "
                         "would need the loop to apply the policy's loss weights, and it does not")
    kwargs["seed"] = int(seed)
    if spec.needs_features:
        if features is None:
            raise ValueError(f"method {spec.name!r} needs the training features")
        return cls(labels, np.asarray(features), **kwargs)
    return cls(labels, **kwargs)


_PRIMED: set[str] = set()


def prime_method(name: str) -> None:
    """Exercise a method once on a tiny synthetic problem, so that its compiled kernels (numba
    just-in-time compilation) are ready before a timed run; a no-op after the first call per
    process.

    Without it the first run of a method in a process counts the compilation (seconds) as
    sampler time, which distorts the time-to-target comparison of that fold.
    """
    from mlbs.selector import BatchSelector

    spec = get_method(name)
    if spec.name in _PRIMED:
        return
    rng = np.random.default_rng(0)
    n, q = 64, 4
    Y = (rng.random((n, q)) < 0.4).astype(np.float32)
    Y[:, 0] = 1.0
    Y[::2, 0] = 0.0
    X = rng.random((n, 3)).astype(np.float32)
    selector = BatchSelector(build_policy(spec.name, Y, X, seed=0), 16, warmup_epochs=1, seed=0)
    for epoch in range(3):
        for batch in selector.epoch(epoch):
            probs = rng.random((batch.size, q)).astype(np.float32)
            if spec.observation == "losses":
                selector.observe(batch, losses=rng.random(batch.size))
            else:
                selector.observe(batch, probs, kind="probabilities")
    _PRIMED.add(spec.name)
