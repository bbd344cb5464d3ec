"""Random masks for masked-image modelling: voxel blocks (CNNs) and token subsets (ViTs)."""

from __future__ import annotations

import math

import torch


def block_mask(
    shape: tuple[int, int, int], block: int, ratio: float, gen: torch.Generator
) -> torch.Tensor:
    """Bool [D,H,W], True = masked: `ratio` of the `block`³ cells of a grid over the volume."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
    grid = [math.ceil(s / block) for s in shape]
    n = math.prod(grid)
    k = max(1, min(n - 1, round(ratio * n)))
    cells = torch.zeros(n, dtype=torch.bool)
    cells[torch.randperm(n, generator=gen)[:k]] = True
    m = cells.view(*grid)
    for axis in range(3):
        m = m.repeat_interleave(block, dim=axis)
    return m[: shape[0], : shape[1], : shape[2]]


def token_keep(n_tokens: int, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """Bool [N], True = kept (visible): exactly round((1-ratio)·N) tokens, so batches stack."""
    k = max(1, min(n_tokens - 1, round((1 - ratio) * n_tokens)))
    keep = torch.zeros(n_tokens, dtype=torch.bool)
    keep[torch.randperm(n_tokens, generator=gen)[:k]] = True
    return keep


def tokens_to_voxels(
    keep: torch.Tensor, grid: tuple[int, int, int], patch: tuple[int, int, int]
) -> torch.Tensor:
    """[B,N] token mask → [B,D,H,W] voxel mask (row-major token order over the grid)."""
    m = keep.view(keep.shape[0], *grid)
    for axis, p in enumerate(patch):
        m = m.repeat_interleave(p, dim=axis + 1)
    return m
