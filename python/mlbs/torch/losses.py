"""Per-sample binary cross-entropy of torch tensors, on the tensors' device."""

from __future__ import annotations

import torch
import torch.nn.functional as F

OUTPUT_KINDS = ("logits", "probabilities")

#: Probabilities are clipped to [c, 1 - c] before the logarithm (float32 resolution).
PROBABILITY_CLIP = 1e-7


def per_sample_bce(outputs: torch.Tensor, targets: torch.Tensor, kind: str = "logits") -> torch.Tensor:
    """l_i = (1/q) sum_j BCE(z_ij, y_ij), shape (m,), float32, without gradient, on the outputs' device.

    For logits, BCE(z, y) = max(z, 0) - z y + log(1 + exp(-|z|)); for probabilities p,
    BCE = -y log p - (1 - y) log(1 - p) with p clipped to [c, 1 - c], c = ``PROBABILITY_CLIP``.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    if outputs.shape != targets.shape or outputs.ndim != 2:
        raise ValueError(f"outputs and targets must have the same (m, q) shape, got {tuple(outputs.shape)} "
                         f"and {tuple(targets.shape)}")
    with torch.no_grad():
        z, y = outputs.detach().float(), targets.detach().to(device=outputs.device, dtype=torch.float32)
        if kind == "logits":
            bce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        else:
            bce = F.binary_cross_entropy(z.clamp(PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP), y, reduction="none")
        return bce.mean(dim=1)
