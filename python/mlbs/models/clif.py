"""CLIF: collaborative learning of label semantics and deep label-specific features
(Hang & Zhang, IEEE TPAMI 2022).

Objective::

    L = mean_ij BCE-with-logits(f_j(x_i), y_ij) + lambda mean_ij (T_ij - cos(U_i, U_j))^2,

where ``U = GIN(U0, A)`` are label embeddings from a two-layer graph isomorphism network over the
label graph ``A``, ``f_j(x) = w_j . LeakyReLU(W (MLP(x) * g_j)) + c_j`` with the label gate
``g_j = sigma(G U_j)`` (semantic-guided feature disentangling), and the link target ``T`` is ``A``
(original) or ``A + I`` (papers' code). Prediction: ``sigma(f(x))``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .base import ModelConfig, MultiLabelModel, StepOutput
from .blocks import HangMLP, LabelWiseLinear, bce_with_logits

__all__ = ["CLIF", "CLIFConfig", "cooccurrence_graph"]

#: Per-dataset settings of the original configs: (E, lambda, in_layers, pre_sigmoid_bias).
_ORIGINAL = {
    "scene": (128, 1e-3, 1, 0.4),
    "yeast": (256, 1e-3, 1, 0.4),
    "cal500": (64, 1e-4, 1, 0.4),
    "corel5k": (256, 1e-4, 1, 0.3),
    "rcv1subset1": (256, 1e-1, 1, 0.1),
    "tmc2007": (256, 1.0, 2, 0.3),
    "tmc2007-500": (256, 1.0, 2, 0.3),
    "mediamill": (256, 1e-4, 2, 0.3),
}


@dataclass
class CLIFConfig(ModelConfig):
    """CLIF hyperparameters.

    Parameters
    ----------
    embed_dim : int, optional
        E; ``None``: q with ``compat=True``, else 256.
    width : int
        FD width H (original 512, papers 768).
    in_layers : int
        Linear layers of the feature MLP (original 1, papers 3).
    gin_dropout, fd_dropout : float
        Dropout of the GIN MLPs and of the feature MLP (papers 0.2, original 0).
    gate_sigmoid : bool
        Sigmoid on the label gate ``g`` (original yes, papers no).
    link_weight : float
        lambda, weight of the link-prediction loss.
    pre_sigmoid_bias : float, optional
        b in (0, 1): predictions ``sigma(f - logit(b))`` (threshold shift only); ``None``: off.
    """

    embed_dim: int | None = None
    width: int = 512
    in_layers: int = 1
    gin_dropout: float = 0.0
    fd_dropout: float = 0.0
    gate_sigmoid: bool = True
    link_weight: float = 1e-3
    pre_sigmoid_bias: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.in_layers < 1 or self.width < 1:
            raise ValueError("in_layers and width must be >= 1")
        if self.embed_dim is not None and self.embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {self.embed_dim}")
        if self.pre_sigmoid_bias is not None and not 0.0 < self.pre_sigmoid_bias < 1.0:
            raise ValueError("pre_sigmoid_bias must lie in (0, 1)")

    @classmethod
    def _original_settings(cls, dataset: str | None) -> dict[str, Any]:
        embed, link, layers, _ = _ORIGINAL.get(dataset or "", (256, 1e-3, 1, None))
        return {"embed_dim": embed, "link_weight": link, "in_layers": layers}

    @classmethod
    def _mlbs_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return cls._original_settings(dataset)

    @classmethod
    def _original_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        bias = _ORIGINAL.get(dataset or "", (None, None, None, None))[3]
        return {**cls._original_settings(dataset), "pre_sigmoid_bias": bias}

    @classmethod
    def _papers_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return {
            "compat": True,
            "seed": 42,
            "embed_dim": q,
            "width": 768,
            "in_layers": 3,
            "gin_dropout": 0.2,
            "fd_dropout": 0.2,
            "gate_sigmoid": False,
            "link_weight": 1e-3,
        }


def cooccurrence_graph(y_train: Tensor) -> Tensor:
    """Symmetric conditional co-occurrence ``A`` from training labels.

    ``C = Y^T Y``, ``n_i = C_ii``; ``A_ij = (C_ij / n_i + C_ij / n_j) / 2`` for ``i != j``,
    ``A_ii = 0`` (``n_i`` clamped at 1e-6).
    """
    y = y_train.to(torch.float64)
    co = y.t() @ y
    counts = co.diagonal().clamp_min(1e-6)
    graph = 0.5 * (co / counts[:, None] + co / counts[None, :])
    graph.fill_diagonal_(0.0)
    return graph.to(torch.get_default_dtype())


class _GINLayer(nn.Module):
    """``h' = MLP((1 + eps) h + A h) (+ h when widths match)``, eps trainable, initialised at 0."""

    def __init__(self, n_in: int, n_out: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.mlp = HangMLP([n_in, hidden, n_out], "leaky_relu", batchnorm=True, dropout=dropout)
        self.eps = nn.Parameter(torch.zeros(()))
        self.residual = n_in == n_out

    def forward(self, h: Tensor, graph: Tensor) -> Tensor:
        out = self.mlp((1.0 + self.eps) * h + graph @ h)
        return out + h if self.residual else out


class CLIF(MultiLabelModel):
    """CLIF: GIN label semantics guiding label-specific features.

    The label graph is a buffer: call :meth:`prepare` with the training-fold labels before
    training (default mode); with ``compat=True`` it stays the identity, as in the papers' code.
    Selection signal (both settings): per-label BCE of the training logits.
    """

    Config = CLIFConfig

    def _build(self) -> None:
        cfg: CLIFConfig = self.config  # type: ignore[assignment]
        q = self.q
        embed = cfg.embed_dim or (q if cfg.compat else 256)
        hidden = math.ceil(embed / 2)
        self.embed_dim = int(embed)
        self.register_buffer("node_features", torch.randn(q, q))
        self.register_buffer("graph", torch.eye(q) if cfg.compat else torch.zeros(q, q))
        self.register_buffer("graph_set", torch.tensor(bool(cfg.compat)))
        self.gin1 = _GINLayer(q, embed, hidden, cfg.gin_dropout)
        self.gin2 = _GINLayer(embed, embed, hidden, cfg.gin_dropout)
        # The CQUPT MLP never puts dropout on a single-layer MLP.
        fd_drop = cfg.fd_dropout if cfg.in_layers >= 2 else 0.0
        self.feat_mlp = HangMLP([self.d] + [cfg.width] * cfg.in_layers, "leaky_relu",
                                dropout=fd_drop)
        self.gate = nn.Linear(embed, cfg.width)
        nn.init.kaiming_uniform_(self.gate.weight, nonlinearity="sigmoid")
        nn.init.zeros_(self.gate.bias)
        self.disentangle = HangMLP([cfg.width, cfg.width], "leaky_relu")
        self.head = LabelWiseLinear(q, cfg.width)

    def prepare(self, y_train: Tensor) -> None:
        """Build the co-occurrence label graph from the training-fold labels.

        With ``compat=True`` the graph stays the identity (papers' code) and a warning is issued.
        """
        y_train = self.check_y(y_train)
        if self.config.compat:
            warnings.warn("CLIF compat mode keeps the identity label graph", RuntimeWarning,
                          stacklevel=2)
            return
        self.graph.copy_(cooccurrence_graph(y_train).to(self.graph))
        self.graph_set.fill_(True)

    @property
    def graph_ready(self) -> bool:
        """Whether the label graph is set (compat identity, or built by :meth:`prepare`)."""
        return bool(self.graph_set)

    def label_embeddings(self) -> Tensor:
        """Label embeddings ``U`` ``[q, E]`` (independent of x; one GIN pass per step)."""
        if not self.graph_ready:
            raise RuntimeError(
                "CLIF needs its label graph: call model.prepare(y_train) with the training labels"
            )
        return self.gin2(self.gin1(self.node_features, self.graph), self.graph)

    def _logits(self, x: Tensor, emb: Tensor) -> Tensor:
        gate = self.gate(emb)
        if self.config.gate_sigmoid:  # type: ignore[attr-defined]
            gate = torch.sigmoid(gate)
        feats = self.feat_mlp(x)  # [B, H]
        specific = self.disentangle(feats[:, None, :] * gate[None])  # [B, q, H]
        return self.head(specific)

    def link_loss(self, emb: Tensor) -> Tensor:
        """``mean_ij (T_ij - cos(U_i, U_j))^2`` with the mode's target."""
        norms = emb.norm(dim=1) + 1e-6
        cos = (emb @ emb.t()) / (norms[:, None] * norms[None, :])
        target = self.graph + torch.eye(self.q, dtype=emb.dtype, device=emb.device) \
            if self.config.compat else self.graph
        return (target - cos).pow(2).mean()

    def train_step(self, x: Tensor, y: Tensor) -> StepOutput:
        """Mean BCE of the logits + lambda link loss; signal: per-label BCE of the logits."""
        x, y = self.check_xy(x, y)
        emb = self.label_embeddings()
        logits = self._logits(x, emb)
        per_label = bce_with_logits(logits, y)
        bce = per_label.mean()
        link = self.link_loss(emb)
        loss = bce + self.config.link_weight * link  # type: ignore[attr-defined]
        return StepOutput(
            loss=loss,
            sel_probs=torch.sigmoid(logits).detach(),
            sel_loss=per_label.detach(),
            parts={"bce": float(bce.detach()), "link": float(link.detach())},
        )

    def _predict(self, x: Tensor) -> Tensor:
        logits = self._logits(x, self.label_embeddings())
        bias = self.config.pre_sigmoid_bias  # type: ignore[attr-defined]
        if bias is not None:
            logits = logits - math.log(bias / (1.0 - bias))
        return torch.sigmoid(logits)
