"""The settings that reproduce the papers' code, in one place.

The policies default to what the papers describe; where the authors' code does something else,
each difference is an ordinary option of the policy, and a preset names the options that
together reproduce one code base. A preset is chosen per run with the method option
``compat=<name>`` (``mlbs run --method-option compat=d2ace``); options given explicitly win over
the preset's. The settings of the training loop that the same code bases use (sequential warm-up
batches, full selective batches, the validation split, ...) are the ``"paper-code"`` protocol of
:mod:`mlbs.experiments.config`.

=============================  ================================================================
preset                         code base (docs/references.md)
=============================  ================================================================
``mladabatch``                 Zhou et al. 2024: the committed script samples by the unweighted
                               loss; its kNN drops the first neighbour by position and divides
                               IRLbl by C1_j + 1e-6
``uncertainty_batch``          Zhou et al. 2024b, main notebook: a pressure schedule that
                               increases (its arguments are swapped) and the NaNs of saturated
                               probabilities and one-prediction windows
``uncertainty_batch_analyse``  Zhou et al. 2024b, analysis notebook: s from 10 to 1 over epochs
                               0 to 100 for the baselines, Recency Bias with a window of 5
``d2ace``                      Liu et al. 2026: g(l) = 2 - e^(-l), QMM levels clamped to [1, N],
                               NaN scores make a pool uniform
=============================  ================================================================
"""
from __future__ import annotations

from typing import Any

from mlbs.policies.schedules import ExpDecay

__all__ = ["POLICY_PRESETS", "preset_options"]

#: The analysis notebook's schedule, 10 -> 1 over epochs 0 -> 100.
_ANALYSE_PRESSURE = ExpDecay(10.0, 1.0, 0, 100)
_MLADABATCH = {"weighted": False, "knn_options": {"self_exclusion": "position", "irlbl_eps": 1e-6}}

#: preset -> policy class name -> constructor options.
POLICY_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "mladabatch": {"Adaptive": _MLADABATCH, "AdaC": _MLADABATCH},
    "uncertainty_batch": {
        "Uncertain": {"pressure": ExpDecay(8.0, 1.0, 100, 10, hold=False), "entropy_nan": True, "short_nan": True},
    },
    "uncertainty_batch_analyse": {
        "Uncertain": {"pressure": _ANALYSE_PRESSURE},
        "ActiveBias": {"pressure": _ANALYSE_PRESSURE},
        "RecencyBias": {"pressure": _ANALYSE_PRESSURE, "window": 5},
    },
    "d2ace": {"D2ACE": {"loss_transform": "2-exp", "qmm_clip": True, "entropy_nan": True, "short_nan": True}},
}


def preset_options(policy: str, preset: str) -> dict[str, Any]:
    """The constructor options of ``policy`` (a class name of :mod:`mlbs.policies`) under
    ``preset``.

    Raises
    ------
    ValueError
        Unknown preset, or a preset that does not cover this policy (the message lists both).
    """
    if preset not in POLICY_PRESETS:
        raise ValueError(f"compat must be one of {sorted(POLICY_PRESETS)}, got {preset!r}")
    if policy not in POLICY_PRESETS[preset]:
        raise ValueError(f"preset {preset!r} sets options of {sorted(POLICY_PRESETS[preset])}, not {policy}")
    return dict(POLICY_PRESETS[preset][policy])
