"""Evaluation of a trained model: probabilities, the test metrics and the validation score.

Test metrics: the six metrics of Zhou et al. 2024, Table 2, under the CQUPT convention of the
published code (:mod:`mlbs.metrics`), plus Macro-AUC in the sklearn convention (ties worth 1/2,
single-class labels skipped) side by side, and the number of labels without both classes in the
evaluated set.
Predictions are ``F > 0.5``, a fixed threshold as in the papers' code.
"""
from __future__ import annotations

import numpy as np
import torch

from mlbs import metrics

__all__ = ["METRICS", "LOWER_IS_BETTER", "predict", "test_metrics", "validation_score", "mean_bce"]

#: Metrics of the result tables, in the paper's order, with their display names.
METRICS = {
    "macro_f1": "Macro-F1",
    "micro_f1": "Micro-F1",
    "macro_auc": "Macro-AUC",
    "ranking_loss": "Ranking loss",
    "hamming_loss": "Hamming loss",
    "one_error": "One-error",
    "macro_auc_sklearn": "Macro-AUC (sklearn)",
}

#: Metrics for which a smaller value is better.
LOWER_IS_BETTER = frozenset({"ranking_loss", "hamming_loss", "one_error"})


def predict(model, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Eval-mode probabilities ``(n, q)`` of ``model`` on ``X``, in float32, by row chunks."""
    out = []
    for lo in range(0, X.shape[0], chunk):
        out.append(model.predict_proba(torch.from_numpy(X[lo:lo + chunk])).numpy())
    return np.concatenate(out, axis=0).astype(np.float32, copy=False)


def test_metrics(Y: np.ndarray, F: np.ndarray) -> dict[str, float]:
    """The metrics of :data:`METRICS` and ``n_single_class_labels``.

    Parameters
    ----------
    Y : (n, q) 0/1 truth
    F : (n, q) probabilities
    """
    P = metrics.binarize(F)
    auc = metrics.macro_auc(Y, F, convention="sklearn", invalid="skip", return_details=True)
    return {
        "macro_f1": metrics.macro_f1(Y, P, convention="cqupt"),
        "micro_f1": metrics.micro_f1(Y, P),
        "macro_auc": metrics.macro_auc(Y, F, convention="cqupt"),
        "ranking_loss": metrics.ranking_loss(Y, F, convention="cqupt"),
        "hamming_loss": metrics.hamming_loss(Y, P),
        "one_error": metrics.one_error(Y, F, convention="cqupt"),
        "macro_auc_sklearn": float(auc.value),
        "n_single_class_labels": int(Y.shape[1] - auc.n_valid),
    }


def validation_score(Y: np.ndarray, F: np.ndarray, convention: str) -> float:
    """Validation Macro-AUC: ``"sklearn"`` (valid labels only; NaN if none) or ``"cqupt"``."""
    if convention == "sklearn":
        return metrics.macro_auc(Y, F, convention="sklearn", invalid="skip")
    return metrics.macro_auc(Y, F, convention="cqupt")


def mean_bce(Y: np.ndarray, F: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities over all entries (clipped at 1e-7)."""
    p = np.clip(F.astype(np.float64), 1e-7, 1.0 - 1e-7)
    y = Y.astype(np.float64)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))
