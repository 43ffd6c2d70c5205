"""Building blocks shared by several base models.

* :class:`HangMLP`: the MLP of the Hang/Zhang packages (PACA, CLIF, DELA).
* :class:`LabelWiseLinear`: one independent linear head per label.
* Loss helpers: numerically stable per-label BCE, the factorised pairwise ranking term of C2AE and
  MPVAE, the Gaussian KL divergence and the reparameterisation trick.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PROB_EPS",
    "GaussianEncoder",
    "HangMLP",
    "LabelWiseLinear",
    "bce_from_probs",
    "bce_with_logits",
    "factorised_ranking",
    "gaussian_kl",
    "pairwise_ranking",
    "reparameterise",
]

#: Probabilities are clamped to [PROB_EPS, 1 - PROB_EPS] before a BCE.
PROB_EPS = 1e-7

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.1)}


class HangMLP(nn.Module):
    """MLP of the Hang/Zhang model packages.

    Every Linear layer is followed by optional BatchNorm1d, the activation and optional dropout.
    With ``output_activation=False`` the last Linear is plain.

    Parameters
    ----------
    widths : sequence of int
        ``[in, h1, ..., out]``, at least two entries.
    activation : {"relu", "leaky_relu"}
        ReLU, or LeakyReLU with negative slope 0.1.
    batchnorm : bool
        BatchNorm1d after each Linear that is followed by the activation.
    dropout : float
        Dropout rate after each activation (0 disables it).
    output_activation : bool
        Whether the last Linear also gets BatchNorm/activation/dropout.
    init : {"hang", "torch"}
        ``"hang"``: Kaiming-uniform weights (a = 0.1, gain of the activation) and U(0, 0.1) biases,
        as in the packages; ``"torch"``: PyTorch's Linear defaults.
    """

    def __init__(
        self,
        widths: Sequence[int],
        activation: str = "relu",
        batchnorm: bool = False,
        dropout: float = 0.0,
        output_activation: bool = True,
        init: str = "hang",
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"widths must list at least two positive sizes, got {widths}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if init not in ("hang", "torch"):
            raise ValueError(f"init must be 'hang' or 'torch', got {init!r}")
        self.widths = widths
        self.output_activation = output_activation
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        n_active = len(self.linears) if output_activation else len(self.linears) - 1
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(w) if batchnorm else nn.Identity() for w in widths[1 : 1 + n_active]
        )
        self.act = _ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if init == "hang":
            for lin in self.linears:
                nn.init.kaiming_uniform_(lin.weight, a=0.1, nonlinearity=activation)
                nn.init.uniform_(lin.bias, 0.0, 0.1)

    def _after_linear(self, i: int, h: Tensor) -> Tensor:
        if i >= len(self.norms):
            return h
        norm = self.norms[i]
        if not isinstance(norm, nn.Identity):
            shape = h.shape
            h = norm(h.reshape(-1, shape[-1])).reshape(shape)
        return self.drop(self.act(h))

    def forward(self, x: Tensor, first_pre: Tensor | None = None) -> Tensor:
        """Apply the MLP to ``x`` (``[..., in]``).

        Parameters
        ----------
        x : Tensor
            Input; ignored when ``first_pre`` is given.
        first_pre : Tensor, optional
            Output of the first Linear computed by the caller (for example through the split
            first layer of DELA); the MLP continues from there.
        """
        h = self.linears[0](x) if first_pre is None else first_pre
        h = self._after_linear(0, h)
        for i in range(1, len(self.linears)):
            h = self._after_linear(i, self.linears[i](h))
        return h


class LabelWiseLinear(nn.Module):
    """Independent ``H -> 1`` linear head per label.

    ``logits[b, j] = sum_h W[j, h] * F[b, j, h] + c[j]``; equivalent to the grouped Conv1d of the
    Hang/CQUPT code and initialised like it (U(+-1/sqrt(H)) for weights and biases).

    Parameters
    ----------
    q : int
        Number of labels.
    width : int
        Feature width H.
    """

    def __init__(self, q: int, width: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(width)
        self.weight = nn.Parameter(torch.empty(q, width).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(q).uniform_(-bound, bound))

    def forward(self, feats: Tensor) -> Tensor:
        """Logits ``[B, q]`` from label-specific features ``[B, q, H]`` or shared ones ``[B, H]``."""
        if feats.dim() == 3:
            return torch.einsum("bqh,qh->bq", feats, self.weight) + self.bias
        if feats.dim() == 2:
            return feats @ self.weight.t() + self.bias
        raise ValueError(f"features must be [B, q, H] or [B, H], got {tuple(feats.shape)}")


def bce_with_logits(logits: Tensor, y: Tensor) -> Tensor:
    """Element-wise BCE of logits (log-sigmoid form, numerically stable)."""
    return F.binary_cross_entropy_with_logits(logits, y, reduction="none")


def bce_from_probs(probs: Tensor, y: Tensor, eps: float = PROB_EPS) -> Tensor:
    """Element-wise BCE of probabilities, clamped to ``[eps, 1 - eps]`` first."""
    p = probs.clamp(eps, 1.0 - eps)
    return -(y * torch.log(p) + (1.0 - y) * torch.log1p(-p))


def factorised_ranking(scores: Tensor, y: Tensor, scale: float, divisor: float) -> Tensor:
    """Pairwise exponential ranking loss per instance, in O(q).

    ``RL = sum_{p in P} sum_{n in N} exp(-scale (E_p - E_n)) / (divisor |P| |N|)``, computed
    exactly as ``[sum_p exp(-scale E_p)] [sum_n exp(scale E_n)] / (divisor |P| |N|)``. Rows with no
    positive or no negative label give 0 (masked, never NaN).

    Parameters
    ----------
    scores : Tensor
        ``[..., q]`` scores in (0, 1) (so both exponentials stay bounded).
    y : Tensor
        Labels in {0, 1}, broadcastable to ``scores``.
    scale, divisor : float
        Exponent factor (5 for C2AE/MPVAE) and normaliser (5, or 1).

    Returns
    -------
    Tensor
        ``scores.shape[:-1]`` per-instance ranking losses.
    """
    y = y.expand_as(scores)
    pos_sum = (torch.exp(-scale * scores) * y).sum(-1)
    neg_sum = (torch.exp(scale * scores) * (1.0 - y)).sum(-1)
    n_pos = y.sum(-1)
    n_pairs = n_pos * (scores.shape[-1] - n_pos)
    valid = n_pairs > 0
    value = pos_sum * neg_sum / (divisor * n_pairs.clamp_min(1.0))
    return torch.where(valid, value, torch.zeros_like(value))


def pairwise_ranking(scores: Tensor, y: Tensor, scale: float, divisor: float) -> Tensor:
    """Reference O(q^2) form of :func:`factorised_ranking` (for tests only; memory-heavy)."""
    y = y.expand_as(scores)
    pair_mask = y.unsqueeze(-1) * (1.0 - y).unsqueeze(-2)
    diffs = torch.exp(-scale * (scores.unsqueeze(-1) - scores.unsqueeze(-2)))
    n_pos = y.sum(-1)
    n_pairs = n_pos * (scores.shape[-1] - n_pos)
    value = (diffs * pair_mask).sum((-1, -2)) / (divisor * n_pairs.clamp_min(1.0))
    return torch.where(n_pairs > 0, value, torch.zeros_like(value))


def gaussian_kl(
    mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor, eps: float
) -> Tensor:
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) of diagonal Gaussians, summed over the last dim.

    ``1/2 sum [(logvar_p - logvar_q) - 1 + exp(logvar_q - logvar_p) + (mu_p - mu_q)^2 /
    (exp(logvar_p) + eps)]``; ``eps`` is 1e-6 in MPVAE and 1e-8 in PACA.
    """
    return 0.5 * (
        (logvar_p - logvar_q)
        - 1.0
        + torch.exp(logvar_q - logvar_p)
        + (mu_p - mu_q).pow(2) / (torch.exp(logvar_p) + eps)
    ).sum(-1)


def reparameterise(mu: Tensor, logvar: Tensor, noise: Tensor) -> Tensor:
    """``mu + noise * exp(logvar / 2)`` (the reparameterisation trick)."""
    return mu + noise * torch.exp(0.5 * logvar)


class GaussianEncoder(nn.Module):
    """Gaussian encoder of the VAE-style models (MPVAE, PACA): a ReLU :class:`HangMLP` trunk over
    ``widths`` plus linear heads for the mean and the log-variance of a ``latent``-dimensional
    diagonal Gaussian. ``init`` is the trunk's initialisation (see :class:`HangMLP`)."""

    def __init__(self, widths: Sequence[int], dropout: float, latent: int, init: str = "hang") -> None:
        super().__init__()
        self.trunk = HangMLP(widths, "relu", dropout=dropout, init=init)
        self.mu = nn.Linear(widths[-1], latent)
        self.logvar = nn.Linear(widths[-1], latent)

    def forward(self, inp: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(inp)
        return self.mu(h), self.logvar(h)
