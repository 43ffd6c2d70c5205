"""DELA: dual perspective of label-specific features (Hang & Zhang, ICML 2022).

Objective::

    L = (1/B) sum_i sum_j BCE-with-logits(f_j(x_i, z_ij), y_ij) + beta KL,
    z_ij = mu(x_i) + s_j * sigma(x_i) * eps_i,   eps_i ~ N(0, I),
    KL = mean_ij KL(N(mu_i, s_j^2 sigma_i^2) || N(0, I)),

where ``s_j`` are per-label hard Binary-Concrete gates (straight-through, one sample per batch)
that choose which latent dimensions label ``j`` is robust to (the label-specific perturbation), and
``f_j`` is a decoder shared across labels with a label-wise head. Prediction: ``sigma(f_j(x, mu))``
without noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .base import ModelConfig, MultiLabelModel, StepOutput
from .blocks import HangMLP, LabelWiseLinear, bce_with_logits

__all__ = ["DELA", "DELAConfig"]

_FLOAT_EPS = torch.finfo(torch.float32).eps


@dataclass
class DELAConfig(ModelConfig):
    """DELA hyperparameters.

    Parameters
    ----------
    latent_dim : int, optional
        D; ``None``: ``ceil(d / 2)`` (the papers' rule). The original default is 50.
    beta : float
        Weight of the KL term (papers 1e-4, original 1.0).
    dropout : float
        Dropout of the trunk and the decoder (0.2 papers and default, 0.0 original).
    off_noise : float, optional
        Lower clamp of the gates (0.5, original); ``None`` reproduces the papers' code.
    tau : float
        Binary-Concrete temperature (2/3).
    clean_signal : bool
        Selection signal from the noise-free ``mu`` path instead of the perturbed logits.
    gate_lr_ratio : float, optional
        Learning-rate ratio of the gate parameters, reported by :meth:`DELA.param_groups` as
        ``"lr_ratio"``; unused by the papers' shared optimiser.
    """

    latent_dim: int | None = None
    beta: float = 1e-4
    dropout: float = 0.2
    off_noise: float | None = 0.5
    tau: float = 2.0 / 3.0
    clean_signal: bool = False
    gate_lr_ratio: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.tau <= 0:
            raise ValueError("tau must be positive")
        if self.off_noise is not None and not 0.0 <= self.off_noise <= 1.0:
            raise ValueError("off_noise must lie in [0, 1]")

    @classmethod
    def _papers_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return {"compat": True, "seed": 42, "off_noise": None}

    @classmethod
    def _original_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return {"latent_dim": 50, "beta": 1.0, "dropout": 0.0, "gate_lr_ratio": 1.0}


class DELA(MultiLabelModel):
    """DELA with the split first decoder layer.

    Parameters: ``512 d + 771 D + D^2 + q D + 513 q + 395 008``.
    """

    Config = DELAConfig

    def _build(self) -> None:
        cfg: DELAConfig = self.config  # type: ignore[assignment]
        latent = cfg.latent_dim or math.ceil(self.d / 2)
        self.latent_dim = int(latent)
        self.trunk = HangMLP([self.d, 256, 512, 256], "relu", dropout=cfg.dropout)
        self.mu = nn.Linear(256, latent)
        self.logvar = nn.Linear(256, latent)
        self.gate_logits = nn.Parameter(torch.empty(self.q, latent).uniform_(-10.0, 10.0))
        self.gate_map = nn.Linear(latent, latent)
        nn.init.constant_(self.gate_map.bias, 2.0)
        self.decoder = HangMLP([self.d + latent, 256, 512], "relu", dropout=cfg.dropout)
        self.head = LabelWiseLinear(self.q, 512)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Latent mean and noise log-variance, each ``[B, D]``."""
        h = self.trunk(x)
        return self.mu(h), self.logvar(h)

    def sample_gates(self) -> Tensor:
        """One hard Binary-Concrete gate sample ``[q, D]`` with straight-through gradients."""
        cfg: DELAConfig = self.config  # type: ignore[assignment]
        logits = self.gate_map(self.gate_logits)
        u = torch.rand_like(logits).clamp(_FLOAT_EPS, 1.0 - _FLOAT_EPS)
        soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / cfg.tau)
        # Straight-through: the bracket is exactly 0 in the forward pass.
        gates = (soft > 0.5).to(soft.dtype) + (soft - soft.detach())
        if cfg.off_noise is not None:
            gates = gates + (gates.detach().clamp_min(cfg.off_noise) - gates.detach())
        return gates

    def _decode(self, x: Tensor, z: Tensor) -> Tensor:
        """Logits from ``z`` ``[B, q, D]`` via the split first layer, or from ``z`` ``[B, D]``."""
        first = self.decoder.linears[0]
        w_x, w_z = first.weight[:, : self.d], first.weight[:, self.d :]
        pre_x = x @ w_x.t() + first.bias
        if z.dim() == 3:
            pre = pre_x[:, None, :] + z @ w_z.t()
        else:
            pre = pre_x + z @ w_z.t()
        return self.head(self.decoder(x, first_pre=pre))

    def clean_logits(self, x: Tensor) -> Tensor:
        """Noise-free logits ``[B, q]`` from ``z = mu`` (in the module's current mode)."""
        mu, _ = self.encode(x)
        return self._decode(x, mu)

    @staticmethod
    def kl_term(mu: Tensor, logvar: Tensor, gates: Tensor) -> Tensor:
        """``mean_ij 1/2 sum_k [-lv_ik - 2 log(s_jk + 1e-6) - 1 + e^lv_ik s_jk^2 + mu_ik^2]``.

        Computed without the ``[B, q, D]`` tensor (the sum separates over i and j).
        """
        per_instance = (-logvar - 1.0 + mu.pow(2)).sum(1).mean()
        per_label = (-2.0 * torch.log(gates + 1e-6)).sum(1).mean()
        cross = (logvar.exp().sum(0) * gates.pow(2).sum(0)).sum() / (mu.shape[0] * gates.shape[0])
        return 0.5 * (per_instance + per_label + cross)

    def train_step(self, x: Tensor, y: Tensor) -> StepOutput:
        """Summed BCE of the perturbed logits + beta KL."""
        x, y = self.check_xy(x, y)
        cfg: DELAConfig = self.config  # type: ignore[assignment]
        mu, logvar = self.encode(x)
        gates = self.sample_gates()
        noise = torch.exp(0.5 * logvar) * torch.randn_like(mu)
        z = mu[:, None, :] + gates[None] * noise[:, None, :]
        logits = self._decode(x, z)
        per_label = bce_with_logits(logits, y)
        cls = per_label.sum(1).mean()
        kl = self.kl_term(mu, logvar, gates)
        loss = cls + cfg.beta * kl
        if cfg.clean_signal:
            with torch.no_grad():
                sel_logits = self._decode(x, mu)
                sel_loss = bce_with_logits(sel_logits, y)
        else:
            sel_logits, sel_loss = logits.detach(), per_label.detach()
        return StepOutput(
            loss=loss,
            sel_probs=torch.sigmoid(sel_logits).detach(),
            sel_loss=sel_loss.detach(),
            parts={"cls": float(cls.detach()), "kl": float(kl.detach())},
        )

    def param_groups(self) -> list[dict[str, Any]]:
        """One group, or two with the gate group tagged ``"lr_ratio"`` when configured."""
        ratio = self.config.gate_lr_ratio  # type: ignore[attr-defined]
        if ratio is None:
            return super().param_groups()
        gate_ids = {id(self.gate_logits)} | {id(p) for p in self.gate_map.parameters()}
        rest = [p for p in self.parameters() if id(p) not in gate_ids]
        gate = [self.gate_logits, *self.gate_map.parameters()]
        return [{"params": rest}, {"params": gate, "lr_ratio": float(ratio)}]

    def _predict(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.clean_logits(x))
