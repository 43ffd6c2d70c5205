"""The papers' optimizer and learning-rate warm-up (Zhou et al. 2024, section 4.1; the authors' code).

Adam (betas (0.9, 0.999), eps 1e-8) with coupled L2 weight decay 1e-4, one parameter group, a
base rate per model (:meth:`ExperimentConfig.lr_for`; the papers use 1e-4), and a linear warm-up
of the learning rate followed by a constant rate:

- ``"linear"`` (``mlbs``): step t (1-based) runs at ``lr * min(1, t / W)``;
- ``"code"`` (the published code): step 1 at the full rate, then step t >= 2 at
  ``lr * (t - 1) / W`` while ``t - 1 < W``, then ``lr`` (the code sets the rate after each step).

``W = 0`` means no warm-up.
"""
from __future__ import annotations

import torch

from .config import ExperimentConfig

__all__ = ["warmup_steps", "lr_at_step", "make_optimizer"]


def warmup_steps(config: ExperimentConfig, n_train: int, method_warmup_epochs: int) -> int:
    """W, the warm-up length in optimizer steps.

    ``"linear"``: ``lr_warmup_epochs * floor(N / B)`` (one length for every method);
    ``"code"``: ``gamma * floor(N / B)``, gamma the method's sampling warm-up.
    """
    epochs = config.lr_warmup_epochs if config.lr_warmup == "linear" else method_warmup_epochs
    return int(epochs) * (int(n_train) // config.batch_size)


def lr_at_step(step: int, base: float, warmup: int, rule: str) -> float:
    """Learning rate of optimizer step ``step`` (1-based) under ``rule`` (see module docstring)."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if warmup <= 0:
        return base
    if rule == "linear":
        return base * min(1.0, step / warmup)
    if rule == "code":
        done = step - 1
        return base if done == 0 or done >= warmup else base * done / warmup
    raise ValueError(f"unknown warm-up rule {rule!r}; expected 'linear' or 'code'")


def make_optimizer(model: torch.nn.Module, config: ExperimentConfig, lr: float, *,
                   weight_decay: float | None = None):
    """Adam over ``model.param_groups()`` with the configuration's settings.

    Parameters
    ----------
    lr : float
        Base learning rate (:meth:`ExperimentConfig.lr_for` of the model).
    weight_decay : float, optional
        Overrides ``config.weight_decay`` (the ``basetrain`` Random baseline uses 0).
    """
    wd = config.weight_decay if weight_decay is None else weight_decay
    return torch.optim.Adam(model.param_groups(), lr=lr, betas=config.betas, eps=config.eps,
                            weight_decay=wd)
