"""Losses shared by the objectives."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import distributed as dist


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over masked voxels only; mask [B,D,H,W] broadcasts over channels."""
    m = mask[:, None].to(pred.dtype).expand_as(pred)
    return ((pred - target) ** 2 * m).sum() / m.sum().clamp_min(1.0)


def info_nce(za: torch.Tensor, zb: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent / InfoNCE (Chen et al. 2020, SimCLR) over the pairs (za[i], zb[i]).

    Every other embedding of both views is a negative, gathered from all ranks (with gradients)
    under DDP, so the loss equals that of one process holding the whole global batch.
    """
    if za.shape != zb.shape or za.dim() != 2:
        raise ValueError(
            f"expected two [B, D] embeddings, got {tuple(za.shape)}, {tuple(zb.shape)}"
        )
    za, zb = F.normalize(za.float(), dim=1), F.normalize(zb.float(), dim=1)
    b = za.shape[0]
    ga, gb = dist.gather_with_grad(za), dist.gather_with_grad(zb)
    n = ga.shape[0]
    cand = torch.cat([ga, gb])  # [2N, D]
    idx = torch.arange(b, device=za.device) + dist.rank() * b
    logits_a = za @ cand.T / temperature
    logits_b = zb @ cand.T / temperature
    rows = torch.arange(b, device=za.device)
    logits_a[rows, idx] = float("-inf")  # an embedding is not its own negative
    logits_b[rows, idx + n] = float("-inf")
    return 0.5 * (F.cross_entropy(logits_a, idx + n) + F.cross_entropy(logits_b, idx))
