"""`Augmentation`: the configured transforms run in order over a batch dict, with one defensive
copy at most (the spatial transform writes fresh tensors, so a leading one needs none)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import Batch, Transform, check_batch, copy_batch
from .config import AugmentConfig
from .linear import FusedLinear, SeparableTransform


class Augmentation:
    """Callable `aug(batch, generator) -> batch`; the caller's tensors are never modified."""

    def __init__(self, transforms: Sequence[Transform], fuse: bool = True):
        self.transforms = [t for t in transforms if t.active()]
        self.steps = _fuse_linear(self.transforms) if fuse else list(self.transforms)

    def __call__(self, batch: Batch, generator: torch.Generator) -> Batch:
        if not isinstance(generator, torch.Generator):
            raise TypeError("augmentation needs an explicit torch.Generator (reproducibility)")
        check_batch(batch)
        batch, owned = dict(batch), False
        for t in self.steps:
            if not owned and not t.replaces:
                batch, owned = copy_batch(batch), True
            batch = t.apply_(batch, generator)
            owned = owned or t.replaces
        return batch if owned else copy_batch(batch)

    def __repr__(self) -> str:
        names = ", ".join(t.name for t in self.transforms)
        return f"Augmentation([{names}])"


def _fuse_linear(transforms: list[Transform]) -> list[Transform]:
    """Group runs of consecutive separable transforms into one `FusedLinear` step."""
    steps: list[Transform] = []
    run: list[SeparableTransform] = []
    for t in [*transforms, None]:
        if isinstance(t, SeparableTransform):
            run.append(t)
            continue
        if run:
            steps.append(FusedLinear(run) if len(run) > 1 else run[0])
            run = []
        if t is not None:
            steps.append(t)
    return steps


def build_augmentation(cfg: AugmentConfig) -> Augmentation:
    """The pipeline an `AugmentConfig` describes (transforms that can never fire are left out)."""
    return Augmentation(cfg.transforms())
