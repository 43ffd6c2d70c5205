"""PACA: probabilistic label-specific prototypes (Hang, Zhang, Feng, Song, AAAI 2022).

Objective::

    L = Recon + gamma (KL(q(z|x) || q(z|y)) + BCE_y) + alpha CE,
    CE = (1/B) sum_i sum_j BCE-with-logits(t_ij, y_ij),  t_ij = log p_pos(h_i | j) - log p_neg(h_i | j),

where ``h = map([x, z_x])`` is the instance embedding, ``p_pos``/``p_neg`` are the positive and
negative label-conditional flow densities (:mod:`mlbs.models.flows`), ``Recon`` the feature
reconstruction from ``h`` and ``BCE_y`` the label autoencoder's loss. The two-class cross-entropy on
``(log p_neg, log p_pos)`` is written as BCE on their difference. Prediction:
``sigma(t)`` with ``h = map([x, mu_x])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .base import ModelConfig, MultiLabelModel, StepOutput
from .blocks import GaussianEncoder, HangMLP, bce_with_logits, gaussian_kl, reparameterise
from .flows import LabelFlow

__all__ = ["PACA", "PACAConfig"]


@dataclass
class PACAConfig(ModelConfig):
    """PACA hyperparameters.

    Parameters
    ----------
    latent_dim : int, optional
        D; ``None``: ``ceil(d / 2)`` with ``compat=True``, else ``min(ceil(d / 2), latent_cap)``.
    latent_cap : int
        Cap of the default D (128, a memory bound); keeps the flow conditioner connected (o1 >= 6).
    enc_dropout, mlp_dropout : float
        Dropout of the two encoders (0.1) and of the other MLPs (0.2, the CQUPT default).
    alpha, gamma : float
        Weights of the prototype CE (2) and of KL + label BCE (10).
    recon : {"mse", "bce"}
        MSE on ``sigma(recon)`` for real-valued features, or BCE-with-logits for binary ones.
    max_flow_elements : int
        Flow memory cap: labels are processed in checkpointed chunks when ``B q D 16`` exceeds it.
    """

    latent_dim: int | None = None
    latent_cap: int = 128
    enc_dropout: float = 0.1
    mlp_dropout: float = 0.2
    alpha: float = 2.0
    gamma: float = 10.0
    recon: str = "mse"
    max_flow_elements: int = 1 << 26

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recon not in ("mse", "bce"):
            raise ValueError(f"recon must be 'mse' or 'bce', got {self.recon!r}")
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.latent_cap < 1 or self.max_flow_elements < 1:
            raise ValueError("latent_cap and max_flow_elements must be positive")

    @classmethod
    def _papers_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return {"compat": True, "seed": 42, "selection_signal": "paper"}

    @classmethod
    def _original_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        # The original package was not found; its MLP default dropout is 0 (inferred).
        return {"mlp_dropout": 0.0}


class PACA(MultiLabelModel):
    """PACA with positive and negative label-conditional flow prototypes.

    Selection signal ``x_path``: per-label BCE on ``t`` (exactly PACA's classification term);
    ``paper``: BCE of the label autoencoder's logits ``preds_y`` (as the papers' code does). Parameters:
    ``769 d + 2577 D + 1537 q + 4 D^2 + 8 q D + 514 D o1 + 96 o1 + 857 184``.
    """

    Config = PACAConfig

    def _build(self) -> None:
        cfg: PACAConfig = self.config  # type: ignore[assignment]
        half = math.ceil(self.d / 2)
        latent = cfg.latent_dim or (half if cfg.compat else min(half, cfg.latent_cap))
        self.latent_dim = int(latent)
        d, q, drop = self.d, self.q, cfg.mlp_dropout
        self.enc_x = GaussianEncoder([d, 256, 512, 256], cfg.enc_dropout, latent)
        self.enc_y = GaussianEncoder([q, 512, 256], cfg.enc_dropout, latent)
        self.label_dec = HangMLP([latent, 256, 512], "relu", dropout=drop)
        self.label_head = nn.Linear(512, q)
        self.embed = HangMLP([d + latent, 256, 256, latent], "relu", dropout=drop,
                             output_activation=False)
        self.feat_dec = HangMLP([latent, 256, 512, 256, d], "relu", dropout=drop,
                                output_activation=False)
        self.flow_pos = LabelFlow(latent, q, cfg.max_flow_elements)
        self.flow_neg = LabelFlow(latent, q, cfg.max_flow_elements)

    def prototype_logits(self, h: Tensor) -> Tensor:
        """``t = log p_pos(h | j) - log p_neg(h | j)`` ``[B, q]``."""
        return self.flow_pos(h) - self.flow_neg(h)

    def train_step(self, x: Tensor, y: Tensor) -> StepOutput:
        """Reconstruction + gamma (KL + label BCE) + alpha prototype CE."""
        x, y = self.check_xy(x, y)
        cfg: PACAConfig = self.config  # type: ignore[assignment]
        mu_x, lv_x = self.enc_x(x)
        mu_y, lv_y = self.enc_y(y)
        z_x = reparameterise(mu_x, lv_x, torch.randn_like(mu_x))
        z_y = reparameterise(mu_y, lv_y, torch.randn_like(mu_y))
        kl = gaussian_kl(mu_x, lv_x, mu_y, lv_y, 1e-8).mean()
        preds_y = self.label_head(self.label_dec(z_y))
        h = self.embed(torch.cat([x, z_x], dim=1))
        recon_logits = self.feat_dec(h)
        if cfg.recon == "mse":
            recon = (torch.sigmoid(recon_logits) - x).pow(2).sum(1).mean()
        else:
            recon = bce_with_logits(recon_logits, x).sum(1).mean()
        bce_y = bce_with_logits(preds_y, y).sum(1).mean()
        logits = self.prototype_logits(h)
        ce_per_label = bce_with_logits(logits, y)
        ce = ce_per_label.sum(1).mean()
        loss = recon + cfg.gamma * (kl + bce_y) + cfg.alpha * ce
        with torch.no_grad():
            if cfg.selection_signal == "paper":
                sel_probs, sel_loss = torch.sigmoid(preds_y), bce_with_logits(preds_y, y)
            else:
                sel_probs, sel_loss = torch.sigmoid(logits), ce_per_label
        parts = {
            "recon": float(recon.detach()),
            "kl": float(kl.detach()),
            "bce_y": float(bce_y.detach()),
            "ce": float(ce.detach()),
        }
        return StepOutput(loss=loss, sel_probs=sel_probs.detach(), sel_loss=sel_loss.detach(),
                          parts=parts)

    def _predict(self, x: Tensor) -> Tensor:
        mu_x, _ = self.enc_x(x)
        return torch.sigmoid(self.prototype_logits(self.embed(torch.cat([x, mu_x], dim=1))))
