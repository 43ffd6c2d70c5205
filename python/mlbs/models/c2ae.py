"""C2AE: Canonical-Correlated AutoEncoder (Yeh, Wu, Ko, Wang, AAAI 2017).

Objective (Yeh et al. 2017, eqs. 1-3, with the latent term normalised by the batch size)::

    L = w_lat / B * ( ||Zx - Ze||_F^2 + lam (||Zx^T Zx - I||_F^2 + ||Ze^T Ze - I||_F^2) )
        + w_out * mean_i RL_i,
    RL_i = sum_{p in P_i} sum_{n in N_i} exp(-c (P_ip - P_in)) / (div |P_i| |N_i|),

with ``Zx = Fx(x)``, ``Ze = Fe(y)`` and the label-path output ``P = Fd(Ze)``. The output loss
reaches Fe and Fd only; Fx learns through the latent term. Prediction: ``Fd(Fx(x))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .base import ModelConfig, MultiLabelModel, StepOutput
from .blocks import PROB_EPS, bce_from_probs, factorised_ranking

__all__ = ["C2AE", "C2AEConfig"]

_LATENT_ACTS = ("centered_sigmoid", "leaky_relu")


@dataclass
class C2AEConfig(ModelConfig):
    """C2AE hyperparameters.

    Parameters
    ----------
    latent_dim : int, optional
        K; ``None`` gives ``max(1, round(0.8 q))``.
    hidden_x : tuple of int
        Hidden widths of the feature encoder Fx (official: 512, 512).
    hidden_e, hidden_d : int
        Hidden width of the label encoder Fe and of the decoder Fd (official: 512).
    latent_activation : {"centered_sigmoid", "leaky_relu"}
        ``sigma(.) - 1/2`` on the codes (official) or LeakyReLU(0.1) (``ssmele/C2AEinTorch``).
    lam : float
        Weight of the orthogonality constraints (official 0.5).
    rank_scale, rank_divisor : float
        ``c`` and ``div`` of the ranking term (official 5 and 5).
    latent_weight, output_weight : float
        ``w_lat`` and ``w_out`` (official: 1 and 1/alpha with alpha = 2).
    """

    latent_dim: int | None = None
    hidden_x: tuple[int, ...] = (512, 512)
    hidden_e: int = 512
    hidden_d: int = 512
    latent_activation: str = "centered_sigmoid"
    lam: float = 0.5
    rank_scale: float = 5.0
    rank_divisor: float = 5.0
    latent_weight: float = 1.0
    output_weight: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hidden_x = tuple(int(h) for h in self.hidden_x)
        if self.latent_activation not in _LATENT_ACTS:
            raise ValueError(f"latent_activation must be one of {_LATENT_ACTS}")
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.rank_divisor <= 0:
            raise ValueError("rank_divisor must be positive")

    @classmethod
    def _papers_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        # No C2AE in the batch-selection repositories. The likely basis, ssmele/C2AEinTorch
        # (unverified): LeakyReLU codes, lam 0.01, exp(-delta), (0.5 latent + 10 ranking) / B.
        # Its widths are only known for scene (20/20/50, K = 5); elsewhere keep the official ones.
        values: dict[str, Any] = {
            "compat": True,
            "seed": 42,
            "latent_activation": "leaky_relu",
            "lam": 0.01,
            "rank_scale": 1.0,
            "rank_divisor": 1.0,
            "latent_weight": 0.5,
            "output_weight": 10.0,
        }
        if dataset == "scene":
            values.update(hidden_x=(20, 20), hidden_e=50, hidden_d=50, latent_dim=5)
        return values


def _encoder(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.LeakyReLU(0.1))
    return nn.Sequential(*layers)


class C2AE(MultiLabelModel):
    """Canonical-Correlated AutoEncoder.

    Fx: ``d -> 512 -> 512 -> K``, Fe: ``q -> 512 -> K``, Fd: ``K -> 512 -> q`` (sigmoid output),
    LeakyReLU(0.1) hidden activations, codes in (-1/2, 1/2). PyTorch default initialisation
    (the paper does not fix it; recorded here). The selection signal (``x_path`` and ``paper``) is the BCE
    of ``Fd(Fx(x))``, one extra decoder pass without grad. Parameters:
    ``512 d + 1025 q + 1538 K + 264 192`` with the official widths.
    """

    Config = C2AEConfig

    def _build(self) -> None:
        cfg: C2AEConfig = self.config  # type: ignore[assignment]
        k = cfg.latent_dim if cfg.latent_dim is not None else max(1, round(0.8 * self.q))
        self.latent_dim = int(k)
        self.fx = _encoder([self.d, *cfg.hidden_x, k])
        self.fe = _encoder([self.q, cfg.hidden_e, k])
        self.fd = _encoder([k, cfg.hidden_d, self.q])

    def _code(self, pre: Tensor) -> Tensor:
        if self.config.latent_activation == "centered_sigmoid":  # type: ignore[attr-defined]
            return torch.sigmoid(pre) - 0.5
        return nn.functional.leaky_relu(pre, 0.1)

    def encode_x(self, x: Tensor) -> Tensor:
        """Feature code ``Fx(x)`` ``[B, K]``."""
        return self._code(self.fx(x))

    def encode_y(self, y: Tensor) -> Tensor:
        """Label code ``Fe(y)`` ``[B, K]``."""
        return self._code(self.fe(y))

    def decode(self, z: Tensor) -> Tensor:
        """Label probabilities ``Fd(z)`` ``[B, q]``."""
        return torch.sigmoid(self.fd(z))

    def latent_loss(self, zx: Tensor, ze: Tensor) -> Tensor:
        """``||Zx - Ze||^2 + lam (||Zx^T Zx - I||^2 + ||Ze^T Ze - I||^2)`` (batch sum)."""
        eye = torch.eye(zx.shape[1], dtype=zx.dtype, device=zx.device)
        lam = self.config.lam  # type: ignore[attr-defined]
        fit = (zx - ze).pow(2).sum()
        ortho = (zx.t() @ zx - eye).pow(2).sum() + (ze.t() @ ze - eye).pow(2).sum()
        return fit + lam * ortho

    def train_step(self, x: Tensor, y: Tensor) -> StepOutput:
        """Latent alignment + ranking loss on the label path; x-path BCE as signal."""
        x, y = self.check_xy(x, y)
        cfg: C2AEConfig = self.config  # type: ignore[assignment]
        zx = self.encode_x(x)
        ze = self.encode_y(y)
        probs_label_path = self.decode(ze)
        ranking = factorised_ranking(probs_label_path, y, cfg.rank_scale, cfg.rank_divisor)
        latent = self.latent_loss(zx, ze)
        loss = cfg.latent_weight * latent / x.shape[0] + cfg.output_weight * ranking.mean()
        with torch.no_grad():
            sel_probs = self.decode(zx).clamp(PROB_EPS, 1.0 - PROB_EPS)
            sel_loss = bce_from_probs(sel_probs, y)
        return StepOutput(
            loss=loss,
            sel_probs=sel_probs,
            sel_loss=sel_loss,
            parts={"latent": float(latent.detach()), "ranking": float(ranking.detach().mean())},
        )

    def _predict(self, x: Tensor) -> Tensor:
        return self.decode(self.encode_x(x))
