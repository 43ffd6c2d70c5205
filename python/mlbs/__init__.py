"""mlbs: adaptive mini-batch selection for deep multi-label classification.

The compiled core (C++17 sources in ``cpp/``, reached through :mod:`mlbs.core`) provides the
structures every selection policy draws from:

- :class:`WeightedIndex`: n non-negative weights, O(log n) batched updates, weighted draws with
  and without replacement;
- :class:`RankIndex`: n scores kept in rank order, draws with p(rank r) proportional to s^(r/n)
  (online batch selection).

Both carry a seeded xoshiro256** generator whose state (``rng_state``) can be saved and restored,
and both pickle, so a training run can be checkpointed and resumed with identical draws.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers only: at run time the core loads on first use (below)
    from mlbs.core import RankIndex, WeightedIndex

__version__ = "0.1.0"
__all__ = ["RankIndex", "WeightedIndex", "__version__"]


def __getattr__(name: str) -> Any:
    # The compiled core is loaded on first use, so that the pure-Python parts (data, statistics,
    # metrics, models) import without it.
    if name in ("RankIndex", "WeightedIndex"):
        from mlbs import core

        return getattr(core, name)
    raise AttributeError(f"module 'mlbs' has no attribute {name!r}")
