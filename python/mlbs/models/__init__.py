"""Base models of the multi-label batch-selection papers.

Six PyTorch models sharing one interface (:class:`~mlbs.models.base.MultiLabelModel`):
:class:`MLP`, :class:`C2AE`, :class:`MPVAE`, :class:`PACA`, :class:`CLIF`, :class:`DELA`.
Each is built from ``(d, q)`` and a configuration dataclass with the presets ``"mlbs"`` (default),
``"papers"`` (the batch-selection papers' code, ``compat=True``) and ``"original"`` (the model's
own paper). :func:`build_model` builds one by name.
"""

from __future__ import annotations

from typing import Any

from .base import PRESETS, ModelConfig, MultiLabelModel, StepOutput
from .c2ae import C2AE, C2AEConfig
from .clif import CLIF, CLIFConfig
from .dela import DELA, DELAConfig
from .mlp import MLP, MLPConfig
from .mpvae import MPVAE, MPVAEConfig
from .paca import PACA, PACAConfig

__all__ = [
    "C2AE",
    "CLIF",
    "DELA",
    "MLP",
    "MODELS",
    "MPVAE",
    "PACA",
    "PRESETS",
    "C2AEConfig",
    "CLIFConfig",
    "DELAConfig",
    "MLPConfig",
    "MPVAEConfig",
    "ModelConfig",
    "MultiLabelModel",
    "PACAConfig",
    "StepOutput",
    "build_model",
]

#: Model classes by lower-case name.
MODELS: dict[str, type[MultiLabelModel]] = {
    "mlp": MLP,
    "c2ae": C2AE,
    "mpvae": MPVAE,
    "paca": PACA,
    "clif": CLIF,
    "dela": DELA,
}


def build_model(
    name: str,
    d: int,
    q: int,
    preset: str = "mlbs",
    dataset: str | None = None,
    **overrides: Any,
) -> MultiLabelModel:
    """Build a base model by name.

    Parameters
    ----------
    name : str
        One of :data:`MODELS` (case-insensitive).
    d, q : int
        Number of features and labels.
    preset : {"mlbs", "papers", "original"}
        Configuration preset.
    dataset : str, optional
        Dataset name, for presets with per-dataset values (MPVAE, CLIF, C2AE papers).
    **overrides
        Configuration fields to override (for example ``seed=1``).

    Returns
    -------
    MultiLabelModel
    """
    key = name.lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    cls = MODELS[key]
    config = cls.Config.preset_for(preset, d, q, dataset, **overrides)
    return cls(d, q, config)
