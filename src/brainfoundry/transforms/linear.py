"""Separable linear transforms (blur, low resolution, thick slices, ghosting, motion) and their
fusion: each draws per-item, per-axis matrices; consecutive ones are multiplied together
(`n x n`, cheap) so a chain of them costs at most three volume matmuls per item."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch

from .base import Batch, Transform
from .separable import apply_separable

# (flat item index into B*C, [matrix along D, H, W] with None for an untouched axis)
Operators = list[tuple[int, list[torch.Tensor | None]]]


class SeparableTransform(Transform):
    """A transform that is a linear map along each axis of each edited (sample, channel)."""

    def operators(self, batch: Batch, generator: torch.Generator) -> Operators:
        raise NotImplementedError

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        apply_operators(batch, self.operators(batch, generator))
        return batch


def per_item(idx: torch.Tensor, mats: Sequence[torch.Tensor | None]) -> Operators:
    """Split batched matrices [M,n,n] (one per selected item) into `Operators`."""
    return [(i, [None if m is None else m[k] for m in mats]) for k, i in enumerate(idx.tolist())]


def apply_operators(batch: Batch, ops: Operators) -> None:
    """Compose the matrices per item and axis (later ones act after earlier ones), then apply."""
    combined: dict[int, list[torch.Tensor | None]] = {}
    for item, mats in ops:
        current = combined.setdefault(item, [None, None, None])
        for a, m in enumerate(mats):
            if m is not None:
                current[a] = m if current[a] is None else m @ cast(torch.Tensor, current[a])
    image = batch["image"]
    flat = image.view(-1, 1, *image.shape[2:])
    for item, mats in combined.items():
        mats3 = [None if m is None else m.unsqueeze(0).to(image.dtype) for m in mats]
        flat[item : item + 1] = apply_separable(flat[item : item + 1], *mats3)


class FusedLinear(Transform):
    """Runs consecutive separable transforms as one: same random draws, one pass per axis."""

    name = "fused_linear"

    def __init__(self, parts: Sequence[SeparableTransform]):
        self.parts = list(parts)

    def active(self) -> bool:
        return any(p.active() for p in self.parts)

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        ops: Operators = []
        for part in self.parts:
            ops += part.operators(batch, generator)
        apply_operators(batch, ops)
        return batch
