"""mlbs: adaptive mini-batch selection for deep multi-label classification.

The compiled core (``mlbs._core``, C++17 sources in ``cpp/``) provides the structures every
selection policy draws from:

- :class:`WeightedIndex`: n non-negative weights, O(log n) batched updates, weighted draws with
  and without replacement;
- :class:`RankIndex`: n scores kept in rank order, draws with p(rank r) proportional to s^(r/n)
  (online batch selection).

Both carry a seeded xoshiro256** generator whose state (``rng_state``) can be saved and restored,
and both pickle, so a training run can be checkpointed and resumed with identical draws.
"""

__version__ = "0.1.0"
__all__ = ["RankIndex", "WeightedIndex", "__version__"]


def __getattr__(name):
    # The compiled core is loaded on first use, so that the pure-Python parts (data, stats,
    # metrics, models) import without it.
    if name in ("RankIndex", "WeightedIndex"):
        from mlbs import _core

        return getattr(_core, name)
    raise AttributeError(f"module 'mlbs' has no attribute {name!r}")
