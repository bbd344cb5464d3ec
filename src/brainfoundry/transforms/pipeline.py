"""`Augmentation`: the configured transforms run in order over a batch dict, with one defensive
copy at most (the spatial transform writes fresh tensors, so a leading one needs none)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import Batch, Transform, check_batch, copy_batch
from .config import AugmentConfig


class Augmentation:
    """Callable `aug(batch, generator) -> batch`; the caller's tensors are never modified."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = [t for t in transforms if t.active()]

    def __call__(self, batch: Batch, generator: torch.Generator) -> Batch:
        if not isinstance(generator, torch.Generator):
            raise TypeError("augmentation needs an explicit torch.Generator (reproducibility)")
        check_batch(batch)
        batch, owned = dict(batch), False
        for t in self.transforms:
            if not owned and not t.replaces:
                batch, owned = copy_batch(batch), True
            batch = t.apply_(batch, generator)
            owned = owned or t.replaces
        return batch if owned else copy_batch(batch)

    def __repr__(self) -> str:
        names = ", ".join(t.name for t in self.transforms)
        return f"Augmentation([{names}])"


def build_augmentation(cfg: AugmentConfig) -> Augmentation:
    """The pipeline an `AugmentConfig` describes (transforms that can never fire are left out)."""
    return Augmentation(cfg.transforms())
