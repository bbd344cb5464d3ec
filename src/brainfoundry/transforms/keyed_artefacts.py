"""Keyed acquisition artefacts: low resolution, thick slices, ghosting, motion, and modality
dropout (a missing scan: zero channel, `present=False`).

The first four are per-axis linear operators (see `separable.py`): one matmul per edited axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..errors import ConfigError
from . import intensity as I
from .base import (
    TRANSFORMS,
    Batch,
    Transform,
    check_probabilities,
    check_range,
    edit_items,
    present_mask,
    rand,
    select,
    uniform,
)
from .linear import Operators, SeparableTransform, per_item
from .separable import (
    ghosting_gains,
    kspace_matrices,
    lowres_matrices,
    motion_gains,
)


def _along_random_axis(idx, generator, shape, make_matrix) -> Operators:
    """One random axis per item; `make_matrix(rows, n) -> [M,n,n]` for the items on axis a."""
    axis = (rand((len(idx),), generator, idx.device) * 3).long().clamp_(max=2)
    ops: Operators = []
    for a in range(3):
        rows = (axis == a).nonzero().flatten()
        if len(rows):
            mats: list[torch.Tensor | None] = [None, None, None]
            mats[a] = make_matrix(rows, shape[a])
            ops += per_item(idx[rows], mats)
    return ops


@TRANSFORMS.register("low_resolution")
@dataclass
class LowResolution(SeparableTransform):
    """Acquire at `scale` x the resolution (same on all axes), interpolate back."""

    name: ClassVar[str] = "low_resolution"
    p: float = 0.25
    scale: tuple[float, float] = (0.5, 1.0)
    p_per_channel: float = 0.5

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "scale", self.scale, 0.0, 1.0, open_low=True)

    def operators(self, batch: Batch, generator: torch.Generator) -> Operators:
        flat, idx = edit_items(batch, self.p, self.p_per_channel, generator)
        if not len(idx):
            return []
        scale = uniform(self.scale, (len(idx),), generator, flat.device)
        return per_item(idx, [lowres_matrices(scale, n) for n in flat.shape[2:]])


@TRANSFORMS.register("thick_slices")
@dataclass
class ThickSlices(SeparableTransform):
    """A clinical 2-D acquisition: slices `factor` x thicker along one random axis."""

    name: ClassVar[str] = "thick_slices"
    p: float = 0.1
    factor: tuple[float, float] = (2.0, 6.0)
    p_per_channel: float = 1.0

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "factor", self.factor, 1.0)

    def operators(self, batch: Batch, generator: torch.Generator) -> Operators:
        flat, idx = edit_items(batch, self.p, self.p_per_channel, generator)
        if not len(idx):
            return []
        scale = 1.0 / uniform(self.factor, (len(idx),), generator, flat.device)
        shape = flat.shape[2:]
        return _along_random_axis(idx, generator, shape, lambda r, n: lowres_matrices(scale[r], n))


@TRANSFORMS.register("ghosting")
@dataclass
class Ghosting(SeparableTransform):
    """Ghosts along a random phase-encoding axis: every k-th k-space line damped."""

    name: ClassVar[str] = "ghosting"
    p: float = 0.05
    num_ghosts: tuple[int, int] = (2, 8)
    intensity: tuple[float, float] = (0.3, 0.9)
    keep_centre: float = 0.05
    p_per_channel: float = 1.0

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "num_ghosts", self.num_ghosts, 2)
        check_range(self.name, "intensity", self.intensity, 0.0, 1.0)
        if not 0.0 <= self.keep_centre <= 1.0:
            raise ConfigError(f"ghosting.keep_centre: {self.keep_centre} must be in [0, 1]")

    def operators(self, batch: Batch, generator: torch.Generator) -> Operators:
        flat, idx = edit_items(batch, self.p, self.p_per_channel, generator)
        if not len(idx):
            return []
        m, dev = len(idx), flat.device
        lo, hi = self.num_ghosts
        ghosts = (lo + rand((m,), generator, dev) * (hi - lo + 1)).long().clamp_(max=hi)
        strength = uniform(self.intensity, (m,), generator, dev)

        def matrix(rows, n):
            gains = ghosting_gains(n, ghosts[rows], strength[rows], self.keep_centre)
            return kspace_matrices(gains)

        return _along_random_axis(idx, generator, flat.shape[2:], matrix)


@TRANSFORMS.register("motion")
@dataclass
class Motion(SeparableTransform):
    """Rigid shift of `shift` voxels (random sign) during the last `fraction` of k-space
    lines along a random phase-encoding axis: ringing and edge ghosts as in moving patients."""

    name: ClassVar[str] = "motion"
    p: float = 0.05
    shift: tuple[float, float] = (2.0, 8.0)
    fraction: tuple[float, float] = (0.1, 0.4)
    p_per_channel: float = 1.0

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "shift", self.shift, 0.0)
        check_range(self.name, "fraction", self.fraction, 0.0, 1.0)

    def operators(self, batch: Batch, generator: torch.Generator) -> Operators:
        flat, idx = edit_items(batch, self.p, self.p_per_channel, generator)
        if not len(idx):
            return []
        m, dev = len(idx), flat.device
        sign = torch.where(rand((m,), generator, dev) < 0.5, -1.0, 1.0)
        shift = uniform(self.shift, (m,), generator, dev) * sign
        fraction = uniform(self.fraction, (m,), generator, dev)

        def matrix(rows, n):
            return kspace_matrices(motion_gains(n, shift[rows], fraction[rows]))

        return _along_random_axis(idx, generator, flat.shape[2:], matrix)


@TRANSFORMS.register("channel_dropout")
@dataclass
class ChannelDropout(Transform):
    """Drop present channels with `p_per_channel` (zero + `present=False`), always leaving one,
    so models learn to cope with missing modalities."""

    name: ClassVar[str] = "channel_dropout"
    p: float = 0.0
    p_per_channel: float = 0.5

    def __post_init__(self) -> None:
        check_probabilities(self)

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        image = batch["image"]
        b, c = image.shape[:2]
        present = present_mask(batch).clone()
        sel = select(self.p, b, generator, image.device)
        r = rand((b, c), generator, image.device)
        drop = sel.unsqueeze(1) & present & (r < self.p_per_channel)
        emptied = ~(present & ~drop).any(dim=1) & present.any(dim=1)
        if bool(emptied.any()):
            keep = torch.where(present, r, -1.0).argmax(dim=1)
            rows = emptied.nonzero().flatten()
            drop[rows, keep[rows]] = False
        if bool(drop.any()):
            rows = drop.any(dim=1).nonzero().flatten()
            image[rows], present[rows] = I.drop_channels(image[rows], present[rows], drop[rows])
            batch["present"] = present
        return batch
