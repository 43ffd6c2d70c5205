"""MLP baseline.

Objective: mean binary cross-entropy of the logits over the B x q entries,
``L = (1 / Bq) sum_ij BCE(sigma(f(x_i))_j, y_ij)``; prediction ``sigma(f(x))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .base import ModelConfig, MultiLabelModel, StepOutput
from .blocks import bce_with_logits

__all__ = ["MLP", "MLPConfig"]


@dataclass
class MLPConfig(ModelConfig):
    """MLP hyperparameters.

    Parameters
    ----------
    hidden : tuple of int
        Hidden widths; (256, 256) in every preset. The sanity-check variant uses (512, 256).
    dropout : float
        Dropout rate after each ReLU, in [0, 1) (0 by default; 0.2-0.5 is the usual range when used).
    """

    hidden: tuple[int, ...] = (256, 256)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hidden = tuple(int(h) for h in self.hidden)
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be positive, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def _original_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        # The MLP has no paper of its own: "original" equals the library default.
        return {}


class MLP(MultiLabelModel):
    """Feed-forward baseline ``d -> 256 -> 256 -> q`` with ReLU.

    Trains on mean BCE-with-logits; the selection signal is the per-label BCE of the training
    logits, identical for ``x_path`` and ``paper``. PyTorch default initialisation.
    Parameters: ``256 d + 257 q + 66 048`` with the default widths.
    """

    Config = MLPConfig

    def _build(self) -> None:
        cfg: MLPConfig = self.config  # type: ignore[assignment]
        layers: list[nn.Module] = []
        width = self.d
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width = h
        layers.append(nn.Linear(width, self.q))
        self.net = nn.Sequential(*layers)

    def logits(self, x: Tensor) -> Tensor:
        """Logits ``[B, q]``."""
        return self.net(x)

    def train_step(self, x: Tensor, y: Tensor) -> StepOutput:
        """Mean BCE-with-logits; the selection signal is the per-label BCE of the same logits."""
        x, y = self.check_xy(x, y)
        logits = self.net(x)
        per_label = bce_with_logits(logits, y)
        loss = per_label.mean()
        return StepOutput(
            loss=loss,
            sel_probs=torch.sigmoid(logits).detach(),
            sel_loss=per_label.detach(),
            parts={"bce": float(loss.detach())},
        )

    def _predict(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.net(x))
