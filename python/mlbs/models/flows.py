"""Label-conditional normalizing flows of PACA.

Each flow is ``h -> CondNAF -> CondAF -> z`` with base ``N(0, I_D)``, evaluated for every label
``j`` at once (the condition is the one-hot code ``e_j``)::

    log p(h | j) = sum_k log N(z_k; 0, 1) + log|det J_NAF(h; j)| + log|det J_AF(j)|.

* :class:`CondNAF`: one deep-sigmoidal-flow layer (Huang et al., ICML 2018, Eq. 8) whose
  per-dimension parameters come from a MADE conditioner (Germain et al., ICML 2015) with a
  per-label bias.
* :class:`CondAF`: label-wise affine map ``z = a_j * u + b_j``.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

__all__ = ["CondAF", "CondNAF", "LabelFlow", "made_masks", "n_made_outputs"]

_DSF_EPS = 1e-6
_LOG_2PI = math.log(2.0 * math.pi)


def n_made_outputs(latent: int, hidden: int = 256) -> int:
    """``o1 = 3 * floor(hidden / D)``: conditioner outputs per latent dimension."""
    return 3 * (hidden // latent)


def made_masks(latent: int, hidden: int, n_out: int) -> tuple[Tensor, Tensor]:
    """MADE masks of the conditioner.

    Input unit ``k`` has degree ``k`` (1-based), hidden unit ``m`` degree
    ``(m mod max(D - 1, 1)) + 1``. ``M1[m, k] = deg(k) <= deg(m)``; output ``i`` (dimension
    ``i mod D``) is connected to hidden ``m`` iff ``deg(m) < deg(i mod D)``.

    Returns
    -------
    (Tensor, Tensor)
        ``[hidden, D]`` and ``[n_out * D, hidden]`` float masks.
    """
    deg_in = torch.arange(1, latent + 1)
    deg_hidden = torch.arange(hidden) % max(latent - 1, 1) + 1
    m1 = (deg_in[None, :] <= deg_hidden[:, None]).float()
    m2 = (deg_hidden[None, :] < deg_in[:, None]).float().repeat(n_out, 1)
    return m1, m2


class CondNAF(nn.Module):
    """Label-conditional deep sigmoidal flow, one DSF layer.

    Parameters
    ----------
    latent : int
        D, the dimension of h.
    n_labels : int
        q; the condition is the one-hot label code.
    hidden : int
        MADE hidden units (256).
    n_units : int
        Sigmoid units per dimension M (16).
    """

    def __init__(self, latent: int, n_labels: int, hidden: int = 256, n_units: int = 16) -> None:
        super().__init__()
        self.latent, self.n_units = latent, n_units
        self.n_out = n_made_outputs(latent, hidden)
        if self.n_out == 0:
            warnings.warn(
                f"PACA latent size D={latent} > {hidden}: the flow conditioner has no outputs "
                "(o1 = 0); the DSF parameters are shared by every dimension and label",
                RuntimeWarning,
                stacklevel=3,
            )
        self.w1 = nn.Linear(latent, hidden)
        self.cond = nn.Linear(n_labels, hidden)
        nn.init.zeros_(self.cond.bias)
        with warnings.catch_warnings():  # o1 = 0: PyTorch warns that a 0-element init is a no-op
            warnings.simplefilter("ignore", UserWarning)
            self.w2 = nn.Linear(hidden, self.n_out * latent)
            self.w3 = nn.Linear(self.n_out, 3 * n_units)
        m1, m2 = made_masks(latent, hidden, self.n_out)
        self.register_buffer("mask1", m1, persistent=False)
        self.register_buffer("mask2", m2, persistent=False)

    def dsf_params(self, h: Tensor, labels: slice) -> Tensor:
        """Per-dimension DSF parameters ``[B, q_c, D, 3M]`` for the labels in ``labels``."""
        inst = F.linear(h, self.w1.weight * self.mask1, self.w1.bias)  # [B, hidden]
        label_bias = (self.cond.weight.t() + self.cond.bias)[labels]  # one-hot input: a column
        hidden = F.elu(inst[:, None, :] + label_bias[None])  # [B, q_c, hidden]
        if self.n_out == 0:
            return self.w3.bias.expand(h.shape[0], hidden.shape[1], self.latent, -1)
        out = F.linear(hidden, self.w2.weight * self.mask2, self.w2.bias)
        out = out.view(*out.shape[:2], self.n_out, self.latent).transpose(-1, -2)
        return self.w3(out)

    def forward(self, h: Tensor, labels: slice) -> tuple[Tensor, Tensor]:
        """Transform ``h`` ``[B, D]`` for each label; returns ``u`` and ``log|det|``.

        Returns
        -------
        (Tensor, Tensor)
            ``u`` ``[B, q_c, D]`` and the log-determinant ``[B, q_c]``.
        """
        a_raw, b, w_raw = self.dsf_params(h, labels).split(self.n_units, dim=-1)
        a = F.softplus(a_raw)
        log_a = torch.log(a)
        log_w = torch.log_softmax(w_raw, dim=-1)
        pre = a * h[:, None, :, None] + b
        s = (log_w.exp() * torch.sigmoid(pre)).sum(-1)
        s = s * (1.0 - _DSF_EPS) + 0.5 * _DSF_EPS
        log_s, log_1ms = torch.log(s), torch.log1p(-s)
        u = log_s - log_1ms
        log_jac = torch.logsumexp(log_w + F.logsigmoid(pre) + F.logsigmoid(-pre) + log_a, dim=-1)
        log_det = (log_jac + math.log(1.0 - _DSF_EPS) - log_s - log_1ms).sum(-1)
        return u, log_det


class _LabelTable(nn.Module):
    """``R(e_j) = L2(ReLU(L1 e_j)) + L3 e_j`` for every one-hot ``e_j`` at once: a ``[q, D]`` table."""

    def __init__(self, n_labels: int, latent: int, bias: float) -> None:
        super().__init__()
        self.l1 = nn.Linear(n_labels, latent)
        self.l2 = nn.Linear(latent, latent)
        self.l3 = nn.Linear(n_labels, latent)
        for layer in (self.l2, self.l3):
            nn.init.uniform_(layer.weight, -0.001, 0.001)
            nn.init.constant_(layer.bias, bias)

    def forward(self) -> Tensor:
        eye = torch.eye(self.l1.in_features, dtype=self.l1.weight.dtype,
                        device=self.l1.weight.device)
        return self.l2(torch.relu(self.l1(eye))) + self.l3(eye)


class CondAF(nn.Module):
    """Label-wise affine flow ``z = a_j * u + b_j``.

    ``a = softplus(R_a(e_j))``, ``b = R_b(e_j)``; identity at initialisation (a ~ 1, b ~ 0).
    """

    def __init__(self, latent: int, n_labels: int) -> None:
        super().__init__()
        self.scale = _LabelTable(n_labels, latent, 0.5 * math.log(math.e - 1.0))
        self.shift = _LabelTable(n_labels, latent, 0.0)

    def tables(self) -> tuple[Tensor, Tensor]:
        """``(a, b)``, each ``[q, D]``."""
        return F.softplus(self.scale()), self.shift()


class LabelFlow(nn.Module):
    """``log p(h | j)`` for every label ``j``: CondNAF then CondAF, standard-normal base.

    Parameters
    ----------
    latent, n_labels : int
        D and q.
    max_elements : int
        Memory cap: when ``B * q * D * 16`` exceeds it, labels are processed in chunks,
        each under activation checkpointing when grad is enabled (chunking alone would not lower
        the autograd peak).
    """

    def __init__(self, latent: int, n_labels: int, max_elements: int = 1 << 26) -> None:
        super().__init__()
        self.naf = CondNAF(latent, n_labels)
        self.af = CondAF(latent, n_labels)
        self.n_labels, self.max_elements = n_labels, max_elements

    def _chunk_log_prob(self, h: Tensor, a: Tensor, b: Tensor, start: int, stop: int) -> Tensor:
        labels = slice(start, stop)
        u, log_det_naf = self.naf(h, labels)
        z = a[labels] * u + b[labels]
        log_base = -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
        return log_base + log_det_naf + torch.log(a[labels]).sum(-1)

    def label_chunk(self, batch: int) -> int:
        """Labels per chunk for a batch of ``batch`` rows."""
        per_label = batch * self.naf.latent * self.naf.n_units
        return max(1, min(self.n_labels, self.max_elements // max(per_label, 1)))

    def forward(self, h: Tensor) -> Tensor:
        """Log-densities ``[B, q]`` of ``h`` ``[B, D]`` under every label's flow."""
        a, b = self.af.tables()
        chunk = self.label_chunk(h.shape[0])
        if chunk >= self.n_labels:
            return self._chunk_log_prob(h, a, b, 0, self.n_labels)
        parts = []
        for start in range(0, self.n_labels, chunk):
            stop = min(start + chunk, self.n_labels)
            if torch.is_grad_enabled():
                parts.append(checkpoint(self._chunk_log_prob, h, a, b, start, stop,
                                        use_reentrant=False))
            else:
                parts.append(self._chunk_log_prob(h, a, b, start, stop))
        return torch.cat(parts, dim=1)
