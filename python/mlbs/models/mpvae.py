"""MPVAE: multivariate-probit VAE (Bai, Kong, Gomes, IJCAI 2020).

Objective (Bai et al. 2020, eqs. 4-7)::

    L = c_nll (NLL_e + NLL_x) + c_rank (R_e + R_x) + 1.1 KL(q(z|x,y) || p(z|x)),
    NLL = mean_i -log (1/S) sum_s prod_j E_sij^y_ij (1 - E_sij)^(1 - y_ij),
    E_s = Phi(m + n_s R^T) (1 - 1e-6) + 0.5e-6,   n_s ~ N(0, I),

where ``m`` is the probit mean of the label branch (``e``, encoder sees x and y) or of the feature
branch (``x``), ``Sigma = R R^T + I`` is the residual label covariance and ``R_*`` is the pairwise
ranking term on ``E`` (factorised). Prediction: the Monte-Carlo mean of the feature-branch
probabilities, drawn from a seeded generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .base import ModelConfig, MultiLabelModel, StepOutput
from .blocks import (
    PROB_EPS,
    GaussianEncoder,
    HangMLP,
    bce_from_probs,
    bce_with_logits,
    factorised_ranking,
    gaussian_kl,
    reparameterise,
)

__all__ = ["MPVAE", "MPVAEConfig", "probit_nll", "probit_probs"]

_VARIANTS = ("original", "d2ace")
#: Per-dataset (nll_coeff, c_coeff) of the official scripts.
_SCRIPT_COEFFS = {
    "yeast": (0.1, 20.0),
    "scene": (0.1, 40.0),
    "bibtex": (10.0, 0.1),
    "delicious": (10.0, 0.1),
    "mirflickr": (0.1, 200.0),
}
_CLIP = 1e-6


@dataclass
class MPVAEConfig(ModelConfig):
    """MPVAE hyperparameters.

    Parameters
    ----------
    variant : {"original", "d2ace"}
        ``"original"``: official architecture (shared decoder trunk, dropout 0.5, shared epsilon);
        ``"d2ace"``: the port in ``iunanyou/D2ACE`` (two trunks, no dropout, two-layer feature
        encoder, independent epsilon, small R init).
    latent_dim : int, optional
        L; ``None``: 50 (original) or ``d // 2`` (d2ace).
    z_dim : int, optional
        Rank of R; ``None``: q (original) or ``max(16, L)`` (d2ace).
    nll_coeff, c_coeff : float, optional
        Weights of the NLL and ranking terms; ``None``: 0.1 / 20 if q <= 50 else 10 / 0.1.
        The presets fill in the script values for yeast, scene, bibtex.
    kl_weight : float
        1.1 (hard-coded in the official code).
    n_train_samples, n_test_samples : int
        S at training and at prediction time.
    test_chunk : int
        Upper bound on the draws processed together at prediction time (memory cap).
    eval_seed : int, optional
        Seed of the prediction generator; ``None`` draws from the global RNG (the papers' code).
    mean_latent : bool
        Predict with ``z_x = mu_x`` instead of one draw.
    """

    variant: str = "original"
    latent_dim: int | None = None
    z_dim: int | None = None
    nll_coeff: float | None = None
    c_coeff: float | None = None
    kl_weight: float = 1.1
    n_train_samples: int = 100
    n_test_samples: int = 1000
    test_chunk: int = 250
    eval_seed: int | None = 0
    mean_latent: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, got {self.variant!r}")
        for name in ("n_train_samples", "n_test_samples", "test_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("latent_dim", "z_dim"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")

    @classmethod
    def _coeff_values(cls, q: int, dataset: str | None) -> dict[str, Any]:
        nll, rank = _SCRIPT_COEFFS.get(dataset or "", (0.1, 20.0) if q <= 50 else (10.0, 0.1))
        return {"nll_coeff": nll, "c_coeff": rank}

    @classmethod
    def _mlbs_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return cls._coeff_values(q, dataset)

    @classmethod
    def _original_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return {**cls._coeff_values(q, dataset), "n_test_samples": 10_000}

    @classmethod
    def _papers_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return {
            "compat": True,
            "seed": 55,
            "variant": "d2ace",
            "selection_signal": "paper",
            "nll_coeff": 0.1,
            "c_coeff": 200.0,
            "eval_seed": None,
        }


def probit_probs(means: Tensor, noise: Tensor, r_mat: Tensor) -> Tensor:
    """Clipped probit probabilities ``Phi(m + n R^T) (1 - 1e-6) + 0.5e-6``.

    Parameters
    ----------
    means : Tensor
        ``[B, q]`` probit means.
    noise : Tensor
        ``[S, B, z_dim]`` standard-normal draws.
    r_mat : Tensor
        ``[q, z_dim]`` residual-covariance factor R.
    """
    scores = means.unsqueeze(0) + noise @ r_mat.t()
    phi = 0.5 * (1.0 + torch.erf(scores / math.sqrt(2.0)))
    return phi * (1.0 - _CLIP) + 0.5 * _CLIP


def probit_nll(probs: Tensor, y: Tensor) -> Tensor:
    """Joint multivariate-probit NLL, ``mean_i -(logsumexp_s l_si - log S)``.

    ``l_si = sum_j y_ij log E_sij + (1 - y_ij) log(1 - E_sij)``; ``probs`` is ``[S, B, q]``.
    """
    loglik = (y * torch.log(probs) + (1.0 - y) * torch.log1p(-probs)).sum(-1)
    return -(torch.logsumexp(loglik, dim=0) - math.log(probs.shape[0])).mean()


class MPVAE(MultiLabelModel):
    """Multivariate-probit VAE.

    Official layout (default): label encoder ``(d+q) -> 512 -> 256``, feature encoder
    ``d -> 256 -> 512 -> 256`` (ReLU, dropout 0.5), shared decoder trunk ``(d+L) -> 256 -> 512``
    with two probit-mean heads, ``R`` of shape ``[q, z_dim]``; Xavier-uniform weights, zero biases.
    Parameters: ``1024 d + 1538 q + q^2 + 591 048``. Selection signal ``x_path``: BCE of the mean
    feature-branch probability over the S training draws; ``paper``: BCE-with-logits of the
    label-branch probit mean (as the D2ACE code does).
    """

    Config = MPVAEConfig

    def _build(self) -> None:
        cfg: MPVAEConfig = self.config  # type: ignore[assignment]
        d2ace = cfg.variant == "d2ace"
        latent = cfg.latent_dim or (max(1, self.d // 2) if d2ace else 50)
        z_dim = cfg.z_dim or (max(16, latent) if d2ace else self.q)
        self.latent_dim, self.z_dim = int(latent), int(z_dim)
        self.shared_eps = not d2ace
        self.nll_coeff = cfg.nll_coeff if cfg.nll_coeff is not None else (
            0.1 if self.q <= 50 else 10.0
        )
        self.c_coeff = cfg.c_coeff if cfg.c_coeff is not None else (20.0 if self.q <= 50 else 0.1)
        drop = 0.0 if d2ace else 0.5
        feat_widths = [self.d, 256, 256] if d2ace else [self.d, 256, 512, 256]
        self.enc_label = GaussianEncoder([self.d + self.q, 512, 256], drop, latent, init="torch")
        self.enc_feat = GaussianEncoder(feat_widths, drop, latent, init="torch")
        self.trunk_label = HangMLP([self.d + latent, 256, 512], "relu", init="torch")
        # The official model shares one trunk; the D2ACE port has a second one.
        self.trunk_feat = (
            HangMLP([self.d + latent, 256, 512], "relu", init="torch") if d2ace else None
        )
        self.head_label = nn.Linear(512, self.q)
        self.head_feat = nn.Linear(512, self.q)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        bound = 0.01 if d2ace else math.sqrt(6.0 / (self.q + z_dim))
        self.r_mat = nn.Parameter(torch.empty(self.q, z_dim).uniform_(-bound, bound))

    def _feat_trunk(self) -> HangMLP:
        return self.trunk_feat if self.trunk_feat is not None else self.trunk_label

    def train_step(self, x: Tensor, y: Tensor) -> StepOutput:
        """Joint probit NLL + ranking + KL on both branches."""
        x, y = self.check_xy(x, y)
        cfg: MPVAEConfig = self.config  # type: ignore[assignment]
        mu_e, lv_e = self.enc_label(torch.cat([x, y], dim=1))
        mu_x, lv_x = self.enc_feat(x)
        eps_e = torch.randn_like(mu_e)
        eps_x = eps_e if self.shared_eps else torch.randn_like(mu_x)
        z_e = reparameterise(mu_e, lv_e, eps_e)
        z_x = reparameterise(mu_x, lv_x, eps_x)
        m_e = self.head_label(self.trunk_label(torch.cat([x, z_e], dim=1)))
        m_x = self.head_feat(self._feat_trunk()(torch.cat([x, z_x], dim=1)))
        noise = torch.randn(cfg.n_train_samples, x.shape[0], self.z_dim, dtype=x.dtype,
                            device=x.device)
        probs_e = probit_probs(m_e, noise, self.r_mat)
        probs_x = probit_probs(m_x, noise, self.r_mat)
        nll_e, nll_x = probit_nll(probs_e, y), probit_nll(probs_x, y)
        rank_e = factorised_ranking(probs_e, y, 5.0, 5.0).mean()
        rank_x = factorised_ranking(probs_x, y, 5.0, 5.0).mean()
        kl = gaussian_kl(mu_e, lv_e, mu_x, lv_x, 1e-6).mean()
        loss = (
            self.nll_coeff * (nll_e + nll_x)
            + self.c_coeff * (rank_e + rank_x)
            + cfg.kl_weight * kl
        )
        with torch.no_grad():
            if cfg.selection_signal == "paper":
                sel_probs = torch.sigmoid(m_e)
                sel_loss = bce_with_logits(m_e, y)
            else:
                sel_probs = probs_x.mean(0).clamp(PROB_EPS, 1.0 - PROB_EPS)
                sel_loss = bce_from_probs(sel_probs, y)
        parts = {
            "nll_e": float(nll_e.detach()),
            "nll_x": float(nll_x.detach()),
            "rank_e": float(rank_e.detach()),
            "rank_x": float(rank_x.detach()),
            "kl": float(kl.detach()),
        }
        return StepOutput(loss=loss, sel_probs=sel_probs.detach(), sel_loss=sel_loss.detach(),
                          parts=parts)

    def _draw(self, shape: tuple[int, ...], gen: torch.Generator | None, like: Tensor) -> Tensor:
        if gen is None:
            return torch.randn(shape, dtype=like.dtype, device=like.device)
        return torch.randn(shape, generator=gen, dtype=like.dtype).to(like.device)

    def _predict(self, x: Tensor) -> Tensor:
        cfg: MPVAEConfig = self.config  # type: ignore[assignment]
        gen = None
        if cfg.eval_seed is not None:
            gen = torch.Generator().manual_seed(cfg.eval_seed)
        mu_x, lv_x = self.enc_feat(x)
        z_x = mu_x if cfg.mean_latent else reparameterise(
            mu_x, lv_x, self._draw(tuple(mu_x.shape), gen, mu_x)
        )
        m_x = self.head_feat(self._feat_trunk()(torch.cat([x, z_x], dim=1)))
        # Chunk the S_test draws so that one chunk holds at most ~16 M probabilities.
        chunk = max(1, min(cfg.test_chunk, (1 << 24) // (x.shape[0] * self.q)))
        total = torch.zeros_like(m_x)
        done = 0
        while done < cfg.n_test_samples:
            n = min(chunk, cfg.n_test_samples - done)
            noise = self._draw((n, x.shape[0], self.z_dim), gen, m_x)
            total += probit_probs(m_x, noise, self.r_mat).sum(0)
            done += n
        return total / cfg.n_test_samples
