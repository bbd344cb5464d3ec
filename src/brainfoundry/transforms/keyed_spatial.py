"""Keyed spatial transforms: rotation/scaling/elastic with a patch crop, and flips/permutations.

Images are resampled trilinearly, voxel labels ([B,1,D,H,W]) by nearest neighbour from the same
coordinates, so both stay aligned; scalar labels ([B]) are left alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..errors import ConfigError
from . import spatial as S
from .base import (
    TRANSFORMS,
    Batch,
    Transform,
    check_probabilities,
    check_range,
    rand,
    select,
    spatial_label,
    uniform,
)


@TRANSFORMS.register("spatial")
@dataclass
class SpatialTransform(Transform):
    """Rotate, zoom and elastically deform about the input centre, returning `patch_size`.

    Give it a padded read larger than the patch so rotated corners hold anatomy, not zeros;
    samples drawing no deformation are centre-cropped without resampling. Rotation is in
    degrees about each axis; `scale` > 1 magnifies; elastic magnitude is in voxels.
    """

    name: ClassVar[str] = "spatial"
    replaces: ClassVar[bool] = True

    patch_size: tuple[int, int, int] | None = None
    p_rotation: float = 0.2
    rotation: tuple[float, float] = (-30.0, 30.0)
    p_scale: float = 0.2
    scale: tuple[float, float] = (0.7, 1.4)
    isotropic_scale: bool = True
    p_elastic: float = 0.0
    elastic_magnitude: tuple[float, float] = (0.0, 4.0)
    elastic_grid: int = 5
    label_fill: int = 0

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range(self.name, "rotation", self.rotation, -180.0, 180.0)
        check_range(self.name, "scale", self.scale, 0.0, open_low=True)
        check_range(self.name, "elastic_magnitude", self.elastic_magnitude, 0.0)
        if self.elastic_grid < 2:
            raise ConfigError(f"spatial.elastic_grid: {self.elastic_grid} must be >= 2")
        if self.patch_size is not None and (len(self.patch_size) != 3 or min(self.patch_size) < 1):
            raise ConfigError(f"spatial.patch_size: {self.patch_size!r} must be 3 positive ints")

    def active(self) -> bool:
        return self.patch_size is not None or max(self.p_rotation, self.p_scale, self.p_elastic) > 0

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        image = batch["image"]
        b, dev = image.shape[0], image.device
        in_shape = tuple(image.shape[2:])
        out_shape = tuple(self.patch_size) if self.patch_size is not None else in_shape
        do_rot = select(self.p_rotation, b, generator, dev)
        do_scale = select(self.p_scale, b, generator, dev)
        do_elastic = select(self.p_elastic, b, generator, dev)
        angles = uniform(self.rotation, (b, 3), generator, dev) * (math.pi / 180.0)
        zoom = uniform(self.scale, (b, 1 if self.isotropic_scale else 3), generator, dev)
        magnitude = uniform(self.elastic_magnitude, (b,), generator, dev)
        moved = (do_rot | do_scale | do_elastic).nonzero().flatten()
        fixed = (~(do_rot | do_scale | do_elastic)).nonzero().flatten()

        matrix = S.rotation_matrices(angles * do_rot.unsqueeze(1))
        zoom = torch.where(do_scale.unsqueeze(1), zoom, torch.ones_like(zoom)).expand(b, 3)
        matrix = matrix / zoom.unsqueeze(1)  # scale columns: output offsets shrink by 1/zoom
        coords = S.affine_coordinates(matrix[moved], in_shape, out_shape)
        margin = 0.0
        if bool(do_elastic.any()):
            el = do_elastic[moved].nonzero().flatten()
            field = S.elastic_displacement(
                magnitude[moved][el], out_shape, self.elastic_grid, generator
            )
            coords[el] += field
            margin = float(field.abs().amax())
        bounds = S.affine_bounds(matrix[moved], in_shape, out_shape, margin) if len(moved) else None

        label = spatial_label(batch)
        batch["image"] = self._assemble(
            image,
            coords,
            moved,
            fixed,
            out_shape,
            lambda v, c: S.sample_linear(v, c, bounds=bounds),
        )
        if label is not None:
            batch["label"] = self._assemble(
                label,
                coords,
                moved,
                fixed,
                out_shape,
                lambda v, c: S.sample_nearest(v, c, fill=self.label_fill, bounds=bounds),
            )
        return batch

    @staticmethod
    def _assemble(x, coords, moved, fixed, out_shape, sampler) -> torch.Tensor:
        """Crop the untouched samples, resample the others; per-sample views, because indexing
        the (large, padded) input with a tensor would copy all of it first."""
        if len(moved) == x.shape[0]:
            return sampler(x, coords).to(x.dtype)
        out = torch.empty((x.shape[0], x.shape[1], *out_shape), dtype=x.dtype, device=x.device)
        for i in fixed.tolist():
            out[i] = S.center_crop(x[i : i + 1], out_shape)[0]
        for j, i in enumerate(moved.tolist()):
            out[i] = sampler(x[i : i + 1], coords[j : j + 1])[0]
        return out


@TRANSFORMS.register("flip")
@dataclass
class Flip(Transform):
    """Mirror each allowed axis with probability `p_per_axis`; optionally permute axes (only
    sensible for isotropic data and cubic patches)."""

    name: ClassVar[str] = "flip"

    p: float = 1.0
    p_per_axis: float = 0.5
    axes: tuple[int, ...] = (0, 1, 2)
    p_permute: float = 0.0

    def __post_init__(self) -> None:
        check_probabilities(self)
        if not set(self.axes) <= {0, 1, 2} or len(set(self.axes)) != len(self.axes):
            raise ConfigError(f"flip.axes: {self.axes!r} must be distinct values from 0, 1, 2")

    def active(self) -> bool:
        return self.p > 0 and (self.p_per_axis > 0 or self.p_permute > 0)

    def apply_(self, batch: Batch, generator: torch.Generator) -> Batch:
        image = batch["image"]
        b, dev = image.shape[0], image.device
        sel = select(self.p, b, generator, dev)
        allowed = torch.zeros(3, dtype=torch.bool, device=dev)
        allowed[list(self.axes)] = True
        axes = sel.unsqueeze(1) & allowed & (rand((b, 3), generator, dev) < self.p_per_axis)
        permute = sel & select(self.p_permute, b, generator, dev)
        order = torch.argsort(rand((b, len(self.axes)), generator, dev), dim=1)
        label = spatial_label(batch)
        for i in axes.any(dim=1).nonzero().flatten().tolist():
            dims = [2 + a for a in range(3) if axes[i, a]]
            image[i : i + 1] = image[i : i + 1].flip(dims)  # owned by the pipeline: in place
            if label is not None:
                label[i : i + 1] = label[i : i + 1].flip(dims)
        if bool(permute.any()):
            for key in ("image", "label") if label is not None else ("image",):
                batch[key] = self._permute(batch[key], permute, order)
        return batch

    def _permute(self, x: torch.Tensor, which: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        sizes = {x.shape[2 + a] for a in self.axes}
        if len(sizes) > 1:
            raise ValueError(
                f"flip.p_permute needs equal sizes along axes {self.axes}, got {tuple(x.shape[2:])}"
            )
        out = x.clone()
        for i in which.nonzero().flatten().tolist():
            dims = [0, 1, 2]
            for slot, k in zip(self.axes, order[i].tolist()):
                dims[slot] = self.axes[k]
            out[i] = x[i].permute(0, *[1 + d for d in dims])
        return out
