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


def distillation_ce(
    teacher_probs: torch.Tensor, student_logits: torch.Tensor, student_temp: float = 0.1
) -> torch.Tensor:
    """DINO's cross-view cross-entropy (Caron et al. 2021): the mean over ordered pairs of
    different views (i, j) of −Σ_k P_t[i] · log softmax(s[j] / τ_s), averaged over samples.

    `teacher_probs` [V, B, K] (already centred and sharpened), `student_logits` [V, B, K]."""
    if teacher_probs.shape != student_logits.shape or teacher_probs.dim() != 3:
        raise ValueError(
            f"expected teacher probabilities and student logits [V, B, K] of one shape, got "
            f"{tuple(teacher_probs.shape)}, {tuple(student_logits.shape)}"
        )
    v = teacher_probs.shape[0]
    if v < 2:
        raise ValueError(f"distillation_ce needs two or more views, got {v}")
    logp = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    ce = -torch.einsum("ibk,jbk->ijb", teacher_probs.float(), logp).mean(-1)  # [V, V]
    off = ~torch.eye(v, dtype=torch.bool, device=ce.device)
    return ce[off].mean()


def koleo(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KoLeo entropy regulariser (Sablayrolles et al. 2019, as in DINOv2): −mean_i log of the
    distance from L2-normalised z_i to its nearest other row; spreads a batch [B, D] out."""
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"koleo needs embeddings [B >= 2, D], got shape {tuple(z.shape)}")
    z = F.normalize(z.float(), dim=-1, eps=eps)
    with torch.no_grad():
        sim = z @ z.T
        sim.fill_diagonal_(-2.0)  # never one's own neighbour
        nearest = sim.argmax(dim=1)
    d = F.pairwise_distance(z, z[nearest], eps=eps)  # eps inside: a finite gradient at d = 0
    return -torch.log(d + eps).mean()
