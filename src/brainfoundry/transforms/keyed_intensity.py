"""Keyed intensity transforms: noise, blur, brightness, contrast, gamma, bias field.

Each draws its per-sample (and, where `p_per_channel` exists, per-channel) parameters from the
generator and edits only the drawn items of the batch; absent channels are never touched.
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
    around_one,
    check_probabilities,
    check_range,
    edit_items,
    for_items,
    select,
    uniform,
)
from .linear import Operators, SeparableTransform, per_item
from .separable import gaussian_matrices


@TRANSFORMS.register("noise")
@dataclass
class GaussianNoise(Transform):
    """Additive Gaussian noise with a per-channel standard deviation drawn from `std`."""

    name: ClassVar[str] = "noise"
    p: float = 0.1
    std: tuple[float, float] = (0.0, 0.3)
    p_per_channel: float = 1.0

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "std", self.std, 0.0)

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        flat, idx = edit_items(batch, self.p, self.p_per_channel, generator)
        if len(idx):
            std = uniform(self.std, (len(idx),), generator, flat.device)
            for_items(flat, idx, lambda x, k: I.gaussian_noise(x, std[k : k + 1], generator))
        return batch


@TRANSFORMS.register("blur")
@dataclass
class GaussianBlur(SeparableTransform):
    """Separable Gaussian blur, sigma (voxels) drawn per channel and axis."""

    name: ClassVar[str] = "blur"
    p: float = 0.2
    sigma: tuple[float, float] = (0.5, 1.0)
    p_per_channel: float = 0.5

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "sigma", self.sigma, 0.0)

    def operators(self, batch: Batch, generator: torch.Generator) -> Operators:
        flat, idx = edit_items(batch, self.p, self.p_per_channel, generator)
        if not len(idx):
            return []
        sigma = uniform(self.sigma, (len(idx), 3), generator, flat.device)
        return per_item(
            idx, [gaussian_matrices(sigma[:, a], n) for a, n in enumerate(flat.shape[2:])]
        )


@TRANSFORMS.register("brightness")
@dataclass
class Brightness(Transform):
    """Multiply each channel by a factor from `factor` (zero stays zero)."""

    name: ClassVar[str] = "brightness"
    p: float = 0.15
    factor: tuple[float, float] = (0.75, 1.25)
    p_per_channel: float = 1.0

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "factor", self.factor, 0.0)

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        flat, idx = edit_items(batch, self.p, self.p_per_channel, generator)
        if len(idx):
            factor = around_one(self.factor, (len(idx),), generator, flat.device)
            for_items(flat, idx, lambda x, k: I.brightness(x, factor[k : k + 1]))
        return batch


@TRANSFORMS.register("contrast")
@dataclass
class Contrast(Transform):
    """Stretch each channel about its mean; `preserve_range` clips to the original range."""

    name: ClassVar[str] = "contrast"
    p: float = 0.15
    factor: tuple[float, float] = (0.75, 1.25)
    preserve_range: bool = True
    p_per_channel: float = 1.0

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "factor", self.factor, 0.0)

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        flat, idx = edit_items(batch, self.p, self.p_per_channel, generator)
        if len(idx):
            factor = around_one(self.factor, (len(idx),), generator, flat.device)
            for_items(flat, idx, lambda x, k: I.contrast(x, factor[k : k + 1], self.preserve_range))
        return batch


@TRANSFORMS.register("gamma")
@dataclass
class Gamma(Transform):
    """Gamma curve on the range-normalised channel (`invert`: on the negated image)."""

    name: ClassVar[str] = "gamma"
    p: float = 0.3
    gamma: tuple[float, float] = (0.7, 1.5)
    invert: bool = False
    retain_stats: bool = True
    p_per_channel: float = 1.0

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "gamma", self.gamma, 0.0, open_low=True)

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        flat, idx = edit_items(batch, self.p, self.p_per_channel, generator)
        if len(idx):
            g = around_one(self.gamma, (len(idx),), generator, flat.device)
            for_items(
                flat, idx, lambda x, k: I.gamma(x, g[k : k + 1], self.invert, self.retain_stats)
            )
        return batch


@TRANSFORMS.register("bias_field")
@dataclass
class BiasField(Transform):
    """Smooth multiplicative field `exp(polynomial)` of degree `order` (coil sensitivity)."""

    name: ClassVar[str] = "bias_field"
    p: float = 0.1
    order: int = 3
    magnitude: tuple[float, float] = (0.0, 0.5)

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "magnitude", self.magnitude, 0.0)
        if not 0 <= self.order <= 6:
            raise ConfigError(f"bias_field.order: {self.order} must be in 0..6")

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        image = batch["image"]
        idx = select(self.p, image.shape[0], generator, image.device).nonzero().flatten()
        if len(idx):
            mag = uniform(self.magnitude, (len(idx),), generator, image.device)
            coef = I.bias_field_coefficients(self.order, mag, generator)
            for_items(image, idx, lambda x, k: I.bias_field(x, coef[k : k + 1]))
        return batch
