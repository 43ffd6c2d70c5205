"""``D2ACE``: dual dynamics and adaptive correlation enhancement (Liu et al. 2026; formulas as in
the authors' code). The end-of-epoch refresh is :func:`mlbs.signals.refresh.d2ace_scores`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlbs.core import WeightedIndex
from mlbs.policies.base import (check_array, check_numpy_rng_state, check_rng_state, check_weights, configured,
                                 fingerprint)
from mlbs.policies.epochwise import EpochPolicy
from mlbs.policies.schedules import check_schedule, d2ace_beta, d2ace_pressure
from mlbs.policies.transforms import quantized_min_max
from mlbs.signals.refresh import LOSS_TRANSFORMS, PositivesLayout, d2ace_scores
from mlbs.signals.window import PredictionWindow
from mlbs.statistics.structure import local_context
from mlbs.typing import MatrixLike

MIXTURES = ("deterministic", "per_draw", "per_batch")


@dataclass(frozen=True)
class D2ACEConfig:
    """The settings of :class:`D2ACE`.

    Parameters
    ----------
    k : int
        Neighbours of the local context (default 6; self is added).
    window : int
        w, predictions kept per entry (default 5).
    alpha : float
        EMA weight of phi (default 0.7).
    pressure, beta : float or callable epoch -> value, optional
        Defaults ``ExpDecay(8, 1, 10, 100, floor=1)`` and ``Linear(0.7, 0.3, 10, 70)``; a
        constant pressure must be > 1.
    mixture : {"deterministic", "per_draw", "per_batch"}
    loss_transform : {"1-exp", "2-exp"}
        g(l) of the hardness; default 1 - e^(-l) (the paper's evident intent), "2-exp" the code.
    qmm_clip : bool
        Clamp the QMM levels to [1, N] (the authors' code; default False).
    entropy_nan, short_nan : bool
        The NaNs of the authors' code: a NaN score makes its pool uniform, as there.
    eps : float
        epsilon of the normalisations (1e-8).
    window_dtype, table_dtype : str
        Storage of the window and of E, phi, l (see :class:`~mlbs.signals.window.PredictionWindow`).
    schedule_eval : {"lagged", "current"}
    knn_options : dict, optional
        Passed to :func:`mlbs.statistics.neighbors.nearest_neighbors`.

    The settings of the authors' code are in :mod:`mlbs.experiments.presets`.
    """

    k: int = 6
    window: int = 5
    alpha: float = 0.7
    pressure: object = None
    beta: object = None
    mixture: str = "deterministic"
    loss_transform: str = "1-exp"
    qmm_clip: bool = False
    entropy_nan: bool = False
    short_nan: bool = False
    eps: float = 1e-8
    window_dtype: str = "float32"
    table_dtype: str = "float32"
    schedule_eval: str = "lagged"
    knn_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.mixture not in MIXTURES:
            raise ValueError(f"mixture must be one of {MIXTURES}, got {self.mixture!r}")
        if self.loss_transform not in LOSS_TRANSFORMS:
            raise ValueError(f"loss_transform must be one of {LOSS_TRANSFORMS}, got {self.loss_transform!r}")
        if not (np.isfinite(self.eps) and self.eps >= 0):
            raise ValueError(f"eps must be finite and >= 0, got {self.eps!r}")
        if int(self.k) < 1:
            raise ValueError(f"k must be >= 1, got {self.k!r}")


class D2ACE(EpochPolicy):
    """P = beta(e) P^U + (1 - beta(e)) P^H, each pool a normalised QMM of its score.

    Per visit (:class:`~mlbs.signals.window.PredictionWindow` with phi and the per-label loss):
    the window of the last w probabilities, E, phi and l. End of epoch e
    (:func:`~mlbs.signals.refresh.d2ace_scores`): the label weights, the local context Z
    (static, built once from the kNN graph: k neighbours and self), the masked correlations and
    the scores; P^U = QMM(score^U, s(e)), P^H = QMM(score^H, s(e)); s and beta read at the lagged
    epoch.

    Mixture semantics, all drawn from weighted indices:

    - ``"deterministic"`` (the authors' code): one index holding beta P^U + (1 - beta) P^H;
    - ``"per_draw"`` (the paper's "Bernoulli mixture"): one index per pool; for each slot of a
      batch z ~ Bernoulli(beta) (the policy's seeded generator), the next sample is drawn from
      P^U (z = 1) or P^H renormalised over the samples not yet in the batch, in both pools;
    - ``"per_batch"``: one z per batch, the whole batch from that pool.

    :meth:`probabilities` is the law of a batch's first draw, beta P^U + (1 - beta) P^H, in
    every mode.

    Memory: per entry w b_w + 3 b_t bytes (window, E, phi, l); per sample 8 bytes of counts and
    8.5 bytes per weighted index; Z: 14 bytes per nonzero (at most (k + 1) card_max per row; 2 of
    them for the 16-bit copy of the refresh's layout); per positive of Y, 20 bytes of layout and
    48 bytes of refresh temporaries; the correlation matrices are never stored (one q x 2 row per
    thread).

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    features : (n, d) array, optional
        Training features (scaled as for training) for the kNN graph.
    config : D2ACEConfig, optional
        The settings (defaults: ``D2ACEConfig()``).
    neighbors : (n, k) int array, optional
        Precomputed neighbour ids, self excluded (instead of ``features``).
    refresh : {"epoch"}, optional
    seed : int
        Seed of the draws.
    **settings
        Fields of :class:`D2ACEConfig`, overriding ``config``'s.

    Attributes
    ----------
    knn_recall : float or None
        Recall@k of the kNN search behind Z (:class:`~mlbs.statistics.neighbors.Neighbors`: 1.0
        for exact search, estimated for an approximate one); None when ``neighbors`` were given.
    """

    Config = D2ACEConfig

    def __init__(self, labels: MatrixLike, features: MatrixLike | None = None, config: D2ACEConfig | None = None, *,
                 neighbors: npt.ArrayLike | None = None, refresh: str | None = None, seed: int = 0, **settings: Any):
        cfg = configured(D2ACEConfig, config, settings)
        super().__init__(labels, refresh=refresh, schedule_eval=cfg.schedule_eval, seed=seed)
        if self.labels.nnz == 0:
            raise ValueError("D2ACE needs labels with at least one positive entry: its correlation "
                             "enhancement and label weights are defined from the positives")
        self.config = cfg
        self.nan_compat = bool(cfg.entropy_nan or cfg.short_nan)
        self.pressure = check_schedule("pressure", d2ace_pressure() if cfg.pressure is None else cfg.pressure,
                                       number_above=1)
        self.beta_schedule = check_schedule("beta", d2ace_beta() if cfg.beta is None else cfg.beta)
        self.signals = PredictionWindow(self.n, self.q, window=cfg.window, window_dtype=cfg.window_dtype,
                                        table_dtype=cfg.table_dtype, track_phi=True, track_loss=True,
                                        alpha=cfg.alpha, entropy_nan=cfg.entropy_nan, short_nan=cfg.short_nan)
        self.Z = local_context(self.labels, self._neighbors(features, neighbors, cfg.k, cfg.knn_options))
        self.layout = PositivesLayout.of(self.labels, self.Z)
        self.beta = 0.5
        self.pools = None
        if cfg.mixture != "deterministic":
            self.pools = (WeightedIndex(self.n, seed=seed + 1), WeightedIndex(self.n, seed=seed + 2))
            self.pool_w = (np.ones(self.n), np.ones(self.n))
            for pool, w in zip(self.pools, self.pool_w):
                pool.assign(w)
            self.rng = np.random.default_rng([seed, 3])

    def _neighbors(self, features, neighbors, k, knn_options) -> np.ndarray:
        self.knn_recall = None  # recall@k of the context kNN (Neighbors.recall); None for given neighbours
        if neighbors is not None:
            return np.asarray(neighbors)
        if features is None:
            raise ValueError("D2ACE needs the training features (for the kNN local context) or neighbors=")
        from mlbs.statistics.neighbors import nearest_neighbors

        nb = nearest_neighbors(features, k, **knn_options)
        self.knn_recall = nb.recall
        return nb.indices

    def _visit(self, idx, outputs, kind):
        return self.signals.visit(idx, outputs, kind, self.label_csr)

    def pool_weights(self, epoch: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(omega^U, omega^H, beta) at the given evaluation epoch."""
        beta = float(self.beta_schedule(epoch))
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta({epoch}) = {beta} is outside [0, 1]")
        s = self.signals
        cfg = self.config
        with np.errstate(invalid="ignore" if self.nan_compat else "warn"):
            su, sh = d2ace_scores(s.E, s.phi, s.loss, self.labels, self.Z, layout=self.layout,
                                  loss_transform=cfg.loss_transform, eps=cfg.eps)
        nonfinite = "uniform" if self.nan_compat else "raise"
        ratio = self.pressure(epoch)
        wu = quantized_min_max(su, ratio, clip=cfg.qmm_clip, nonfinite=nonfinite)
        wh = quantized_min_max(sh, ratio, clip=cfg.qmm_clip, nonfinite=nonfinite)
        return wu, wh, beta

    def rebuild(self) -> None:
        wu, wh, self.beta = self.pool_weights(self.schedule_epoch)
        if self.pools is None:
            self.index.assign(self.beta * wu / wu.sum() + (1.0 - self.beta) * wh / wh.sum())
        else:
            self.pool_w = (wu, wh)
            self.pools[0].assign(wu)
            self.pools[1].assign(wh)

    def draw(self, k: int) -> np.ndarray:
        if self.pools is None:
            return self.index.draw_distinct(k)
        k = int(k)
        if not 0 <= k <= self.n:
            raise ValueError(f"cannot draw {k} distinct samples out of {self.n}")
        if self.config.mixture == "per_batch":
            return self.pools[0 if self.rng.random() < self.beta else 1].draw_distinct(k)
        return self._draw_per_slot(self.rng.random(k) < self.beta)

    def _draw_per_slot(self, from_u: np.ndarray) -> np.ndarray:
        """Runs of equal pool choices drawn with draw_distinct; drawn samples zeroed in both pools
        until the batch is complete, then restored from ``pool_w`` (O(k log N))."""
        out = []
        try:
            bounds = np.flatnonzero(np.diff(from_u.astype(np.int8))) + 1
            for run in np.split(np.arange(from_u.size), bounds):
                if run.size == 0:
                    continue
                got = self.pools[0 if from_u[run[0]] else 1].draw_distinct(run.size)
                for pool in self.pools:
                    pool.update(got, np.zeros(got.size))
                out.append(got)
        finally:
            drawn = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
            for pool, w in zip(self.pools, self.pool_w):
                pool.update(drawn, w[drawn])
        return drawn

    def probabilities(self) -> np.ndarray:
        if self.pools is None:
            return self.index.probabilities()
        return self.beta * self.pools[0].probabilities() + (1.0 - self.beta) * self.pools[1].probabilities()

    # -- checkpoints -----------------------------------------------------------------------------
    def _settings(self) -> dict:
        return {**super()._settings(), "mixture": self.config.mixture,
                "Z": fingerprint(self.Z.indptr, self.Z.indices)}

    def _tables(self) -> dict:
        tables = super()._tables()
        if self.pools is not None:
            tables.update({"pool_u": self.pool_w[0].copy(), "pool_h": self.pool_w[1].copy()})
        return tables

    def state_dict(self) -> dict:
        state = {**super().state_dict(), "beta": self.beta}
        if self.pools is not None:
            state["pool_rngs"] = [p.rng_state for p in self.pools]
            state["mixture_rng"] = self.rng.bit_generator.state
        return state

    def _check_state(self, state: dict) -> None:
        super()._check_state(state)
        beta = check_array(state, "beta", None)
        if not (isinstance(beta, (float, int, np.floating)) and 0.0 <= beta <= 1.0):
            raise ValueError(f"state's 'beta' must be in [0, 1], got {beta!r}")
        if self.pools is not None:
            for name in ("pool_u", "pool_h"):
                check_weights(state, name)
            rngs = check_array(state, "pool_rngs", None)
            if len(rngs) != 2:
                raise ValueError("state's 'pool_rngs' must hold two generator states")
            for r in range(2):
                check_rng_state({"rng": rngs[r]}, "rng")
            check_numpy_rng_state(state, "mixture_rng")

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        self.beta = float(state["beta"])
        if self.pools is not None:
            self.pool_w = (np.array(state["pool_u"], dtype=np.float64), np.array(state["pool_h"], dtype=np.float64))
            for pool, w, rng in zip(self.pools, self.pool_w, state["pool_rngs"]):
                pool.assign(w)
                pool.rng_state = check_rng_state({"rng": rng}, "rng")
            self.rng.bit_generator.state = state["mixture_rng"]
