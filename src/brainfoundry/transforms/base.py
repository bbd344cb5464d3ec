"""The keyed-transform base class, the `TRANSFORMS` registry, seeded sampling and validation.

A transform is a small dataclass of parameters (so an `AugmentConfig` section *is* the
transform) with `apply_(batch, generator)` that draws per-sample parameters from an explicit
`torch.Generator` and edits the batch in place; `__call__` copies first so callers' tensors are
never touched.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from ..errors import ConfigError
from ..registry import Registry

TRANSFORMS: Registry[Transform] = Registry("transform")

Batch = dict[str, Any]


class Transform:
    """Base of every keyed transform over `{"image": [B,C,D,H,W], "present": [B,C], "label"}`."""

    name: ClassVar[str] = "transform"
    replaces: ClassVar[bool] = False  # True: writes fresh tensors, so needs no defensive copy

    def __call__(self, batch: Batch, generator: torch.Generator) -> Batch:
        check_batch(batch)
        return self.apply_(dict(batch) if self.replaces else copy_batch(batch), generator)

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def active(self) -> bool:
        """False when the transform can never fire (all probabilities zero)."""
        return any(getattr(self, k) > 0 for k in vars(self) if k == "p" or k.startswith("p_"))


def copy_batch(batch: Batch) -> Batch:
    """Shallow dict copy owning fresh image/present/label tensors (safe to edit in place)."""
    out = dict(batch)
    for key in ("image", "present", "label"):
        if isinstance(out.get(key), torch.Tensor):
            out[key] = out[key].clone(memory_format=torch.contiguous_format)
    return out


def check_batch(batch: Batch) -> None:
    """Fail early with one line when the batch does not follow the sample convention."""
    image = batch.get("image")
    if not isinstance(image, torch.Tensor) or image.dim() != 5:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"batch['image'] must be a float tensor [B,C,D,H,W], got {shape}")
    if not image.is_floating_point():
        raise ValueError(f"batch['image'] must be floating point, got {image.dtype}")
    present = batch.get("present")
    if present is not None and tuple(present.shape) != tuple(image.shape[:2]):
        raise ValueError(f"batch['present'] must be [B,C]={tuple(image.shape[:2])}")


def spatial_label(batch: Batch) -> torch.Tensor | None:
    """The label when it is a voxel map [B,1,D,H,W] that must move with the image."""
    label = batch.get("label")
    if isinstance(label, torch.Tensor) and label.dim() == 5:
        return label
    return None


def present_mask(batch: Batch) -> torch.Tensor:
    image = batch["image"]
    present = batch.get("present")
    if present is None:
        return torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
    return present.to(device=image.device, dtype=torch.bool)


# ---- seeded sampling: always through the given generator, never the global RNG ----


def rand(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """U[0,1) drawn on the generator's device, then moved to `device`."""
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def select(p: float, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Boolean [n]: which samples this transform touches (one draw per sample, always)."""
    return rand((n,), generator, device) < p


def uniform(
    bounds: tuple[float, float], shape: tuple[int, ...], generator: torch.Generator, device
) -> torch.Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * rand(shape, generator, device)


def around_one(
    bounds: tuple[float, float], shape: tuple[int, ...], generator: torch.Generator, device
) -> torch.Tensor:
    """Factors in `bounds`; half below 1 and half above when the range straddles 1 (as
    batchgenerators does), so a (0.7, 1.5) range does not mostly brighten."""
    lo, hi = bounds
    below = uniform((lo, min(hi, 1.0)), shape, generator, device)
    above = uniform((max(lo, 1.0), hi), shape, generator, device)
    if not lo < 1.0 < hi:
        return uniform(bounds, shape, generator, device)
    return torch.where(rand(shape, generator, device) < 0.5, below, above)


def edit_items(batch: Batch, p: float, p_per_channel: float, generator: torch.Generator):
    """(flat view [B*C,1,D,H,W] of the image, flat indices of the items to edit)."""
    image = batch["image"]
    b, c = image.shape[:2]
    sel = select(p, b, generator, image.device)
    idx = channel_items(sel, p_per_channel, present_mask(batch), generator)
    return image.view(b * c, 1, *image.shape[2:]), idx


def for_items(flat: torch.Tensor, idx: torch.Tensor, fn) -> None:
    """`flat[i] = fn(flat[i:i+1], k)` for the k-th selected item i, through views: tensor
    indexing would gather and scatter whole volumes (two extra passes over memory)."""
    for k, i in enumerate(idx.tolist()):
        flat[i : i + 1] = fn(flat[i : i + 1], k)


def channel_items(
    sel: torch.Tensor, p_per_channel: float, present: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Flat indices into B*C of the (sample, channel) items to edit: selected, drawn, present."""
    per_channel = rand(tuple(present.shape), generator, present.device) < p_per_channel
    return (sel[:, None] & per_channel & present).flatten().nonzero().flatten()


# ---- validation: one clear line naming the field ----


def check_probability(owner: str, field: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{owner}.{field}: {value!r} is not a probability in [0, 1]")


def check_range(
    owner: str,
    field: str,
    value: tuple[float, float],
    low: float = -math.inf,
    high: float = math.inf,
    open_low: bool = False,
) -> None:
    if len(value) != 2 or value[0] > value[1]:
        raise ConfigError(f"{owner}.{field}: {value!r} must be a (low, high) pair with low <= high")
    lo_ok = value[0] > low if open_low else value[0] >= low
    if not lo_ok or value[1] > high:
        bracket = "(" if open_low else "["
        raise ConfigError(f"{owner}.{field}: {value!r} must lie within {bracket}{low}, {high}]")


def check_probabilities(obj: Transform) -> None:
    for key, value in vars(obj).items():
        if key == "p" or key.startswith("p_"):
            check_probability(obj.name, key, value)
