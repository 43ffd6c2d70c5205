"""Common interface of the base models.

Every model in :mod:`mlbs.models` is a :class:`MultiLabelModel`: a ``torch.nn.Module`` built from
the number of input features ``d``, the number of labels ``q`` and a configuration dataclass
derived from :class:`ModelConfig`. This module holds only the interface, the configuration base
class, input validation and the seeding rule; the layers shared by several models live in
:mod:`mlbs.models.blocks`.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "PRESETS",
    "SELECTION_SIGNALS",
    "ModelConfig",
    "MultiLabelModel",
    "StepOutput",
]

#: Names of the configuration presets every model offers.
#: ``"mlbs"``: the recommended settings (the known flaws of the papers' code fixed);
#: ``"papers"``: the public code of the batch-selection papers (``compat=True``);
#: ``"original"``: the model's own paper/code.
PRESETS = ("mlbs", "papers", "original")

#: Allowed values of :attr:`ModelConfig.selection_signal`.
SELECTION_SIGNALS = ("x_path", "paper")


@dataclass
class ModelConfig:
    """Hyperparameters shared by every model.

    Parameters
    ----------
    compat : bool
        ``True`` reproduces the papers' code including its flaws;
        ``False`` (default) applies the recommendations.
    seed : int
        Seed of the initial weights. With ``compat=True`` the global torch/NumPy/``random`` generators
        are re-seeded with it at construction, as the papers' code does; otherwise the
        weights are drawn inside a forked RNG state and the global generators are left untouched.
    selection_signal : {"x_path", "paper"}
        Which branch feeds the selection signal.
    preset : str
        Name of the preset the configuration was built from (recorded for result files).
    """

    compat: bool = False
    seed: int = 0
    selection_signal: str = "x_path"
    preset: str = "mlbs"

    def __post_init__(self) -> None:
        if self.selection_signal not in SELECTION_SIGNALS:
            raise ValueError(
                f"selection_signal must be one of {SELECTION_SIGNALS}, got {self.selection_signal!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")

    @classmethod
    def preset_for(
        cls, name: str, d: int, q: int, dataset: str | None = None, **overrides: Any
    ) -> ModelConfig:
        """Build a preset configuration.

        Parameters
        ----------
        name : {"mlbs", "papers", "original"}
            The preset (see :data:`PRESETS`).
        d, q : int
            Number of features and labels; some presets depend on them.
        dataset : str, optional
            Lower-case dataset name (for example ``"yeast"``) for presets with per-dataset values.
        **overrides
            Fields to replace after the preset is built.

        Returns
        -------
        ModelConfig
            An instance of the calling subclass.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {PRESETS}")
        _check_sizes(d, q)
        values = getattr(cls, f"_{name}_values")(d, q, None if dataset is None else dataset.lower())
        values["preset"] = name
        values.update(overrides)
        return cls(**values)

    @classmethod
    def papers(cls, d: int, q: int, dataset: str | None = None, **overrides: Any) -> ModelConfig:
        """Settings of the batch-selection papers' code (``compat=True``)."""
        return cls.preset_for("papers", d, q, dataset, **overrides)

    @classmethod
    def original(cls, d: int, q: int, dataset: str | None = None, **overrides: Any) -> ModelConfig:
        """Settings of the model's own paper and code."""
        return cls.preset_for("original", d, q, dataset, **overrides)

    @classmethod
    def mlbs(cls, d: int, q: int, dataset: str | None = None, **overrides: Any) -> ModelConfig:
        """Recommended settings of this library (the known flaws of the papers' code fixed)."""
        return cls.preset_for("mlbs", d, q, dataset, **overrides)

    # Subclasses override these three; the defaults return the dataclass defaults.
    @classmethod
    def _mlbs_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return {}

    @classmethod
    def _papers_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return {"compat": True, "seed": 42}

    @classmethod
    def _original_values(cls, d: int, q: int, dataset: str | None) -> dict[str, Any]:
        return {}

    def as_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (for result files)."""
        return dataclasses.asdict(self)


@dataclass
class StepOutput:
    """Result of one training forward.

    Attributes
    ----------
    loss : Tensor
        Scalar with grad: the model's own training objective.
    sel_probs : Tensor
        ``[B, q]`` detached per-label probabilities of the selection path.
    sel_loss : Tensor
        ``[B, q]`` detached per-label BCE between ``sel_probs`` and ``y``.
    parts : dict of str to float
        Named loss components, for logging.
    """

    loss: Tensor
    sel_probs: Tensor
    sel_loss: Tensor
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def per_sample(self) -> Tensor:
        """``[B]`` per-sample selection loss: ``sel_loss`` averaged over the labels."""
        return self.sel_loss.mean(dim=1)


def _check_sizes(d: int, q: int) -> None:
    for name, value in (("d", d), ("q", q)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


class MultiLabelModel(nn.Module):
    """Base class of the base models.

    Subclasses build their layers inside :meth:`_build` (called under the papers' seeding rule) and
    implement :meth:`train_step` and :meth:`_predict_logits_or_probs`.

    Parameters
    ----------
    d, q : int
        Number of input features and of labels.
    config : ModelConfig, optional
        Hyperparameters; an instance of the subclass's ``Config``. Default: the ``"mlbs"`` preset
        for ``(d, q)``.
    """

    #: Configuration class of the model; set by every subclass.
    Config: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, d: int, q: int, config: ModelConfig | None = None) -> None:
        super().__init__()
        _check_sizes(d, q)
        if config is None:
            config = self.Config.mlbs(d, q)
        if not isinstance(config, self.Config):
            raise TypeError(
                f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}"
            )
        self.d = int(d)
        self.q = int(q)
        self.config = config
        if config.compat:
            # The papers' code re-seeds every global generator in the constructor.
            _seed_everything(config.seed)
            self._build()
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                self._build()

    # ----------------------------------------------------------------------------------- hooks
    def _build(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def train_step(self, x: Tensor, y: Tensor) -> StepOutput:  # pragma: no cover - abstract
        """Training-mode forward: the model's loss and the detached selection signal.

        The module's current mode is used (call ``model.train()`` first when training).
        """
        raise NotImplementedError

    def _predict(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Probabilities ``[B, q]`` from ``x`` alone; called in eval mode under ``no_grad``."""
        raise NotImplementedError

    def prepare(self, y_train: Tensor) -> None:
        """Fit data-dependent buffers from the training-fold labels (no-op for most models).

        CLIF builds its label co-occurrence graph here. A training loop
        should call it once per fold, with the training labels only, before the first step.
        """
        self.check_y(y_train)

    # ------------------------------------------------------------------------- public interface
    def training_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """The model's own training objective on a batch (scalar with grad)."""
        return self.train_step(x, y).loss

    def per_sample_bce(self, x: Tensor, y: Tensor, per_label: bool = False) -> Tensor:
        """Selection signal: BCE of the classification output, per sample (or per label).

        Runs the same forward as :meth:`train_step` in the module's current mode, without grad,
        so in train mode it includes the training noise (dropout, sampling), as the selectors of
        the papers see it.

        Parameters
        ----------
        x : Tensor
            ``[B, d]`` features.
        y : Tensor
            ``[B, q]`` labels in {0, 1}.
        per_label : bool
            Return the ``[B, q]`` matrix instead of its mean over labels.

        Returns
        -------
        Tensor
            ``[B]`` (or ``[B, q]``) non-negative losses.
        """
        with torch.no_grad():
            out = self.train_step(x, y)
        return out.sel_loss if per_label else out.per_sample

    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """Label probabilities ``[B, q]`` in (0, 1) from ``x`` only, in eval mode.

        The module's training flag is restored afterwards.
        """
        x = self.check_x(x)
        was_training = self.training
        self.eval()
        try:
            return self._predict(x)
        finally:
            self.train(was_training)

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups; one group with every parameter (shared optimiser)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def n_parameters(self) -> int:
        """Number of trainable parameters (``requires_grad=True``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def describe(self) -> dict[str, Any]:
        """Model name, sizes and configuration, for result files."""
        return {
            "model": type(self).__name__,
            "d": self.d,
            "q": self.q,
            "n_parameters": self.n_parameters(),
            "config": self.config.as_dict(),
        }

    # ------------------------------------------------------------------------------ validation
    def _param_ref(self) -> Tensor | None:
        for p in self.parameters():
            return p
        return None

    def check_x(self, x: Tensor) -> Tensor:
        """Validate a feature batch: a floating ``[B, d]`` tensor with ``B >= 1``."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.d or x.shape[0] < 1:
            raise ValueError(f"x must have shape [B, {self.d}] with B >= 1, got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating tensor, got {x.dtype}")
        return x

    def check_y(self, y: Tensor, batch: int | None = None) -> Tensor:
        """Validate a label batch: ``[B, q]`` with values in {0, 1}; returned as float."""
        if not isinstance(y, Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
        if y.dim() != 2 or y.shape[1] != self.q:
            raise ValueError(f"y must have shape [B, {self.q}], got {tuple(y.shape)}")
        if batch is not None and y.shape[0] != batch:
            raise ValueError(f"x and y have different batch sizes ({batch} and {y.shape[0]})")
        y = y.to(torch.get_default_dtype()) if not y.is_floating_point() else y
        if not bool(((y == 0) | (y == 1)).all()):
            raise ValueError("y must contain only 0 and 1")
        return y

    def check_xy(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Validate a training batch (see :meth:`check_x`, :meth:`check_y`)."""
        x = self.check_x(x)
        y = self.check_y(y, batch=x.shape[0]).to(dtype=x.dtype)
        return x, y


def _seed_everything(seed: int) -> None:
    """Re-seed torch, NumPy and ``random`` globally (as the papers' constructors do)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
