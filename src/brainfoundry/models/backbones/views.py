"""2-D views of a 3-D volume, and the base class of the 2-D backbone families (cnn2d, vit2d).

The 2-D families take the pipeline's [B, C, D, H, W] input and form 2-D images themselves, so
objectives, heads, fine-tuning and prediction need no 2-D path. The representation is part of
the backbone's kwargs (stored in the card):

- ``view: slices``: the 2-D network runs on every slice of ``plane`` (axial, coronal, sagittal,
  or ``all``: the three with shared weights). Features keep the slice axis at full size (the
  in-plane axes are downsampled), so `decode` gives a full-resolution 3-D map. With ``all``, each
  stage's three feature maps are average-pooled along their slice axis onto one common grid and
  averaged; `decode` repeats the fused features back along each plane's slice axis, decodes every
  plane and averages the three maps. A pooled head's mean over a slice map is the slice mean.
- ``view: projections`` (the UK Biobank brain-age engine's input): per channel the mean and the
  max intensity projection, the coronal and the sagittal view side by side in one
  ``image_size`` square image per case. Case-level features only: `decode` refuses.

Arrays are RAS (`data.preprocess`): D runs left→right, H posterior→anterior, W inferior→superior.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...errors import ConfigError
from .base import Backbone, reject_keep

PLANES = {"sagittal": 2, "coronal": 3, "axial": 4}  # the slice axis in [B, C, D, H, W]
VIEWS = ("slices", "projections")
VIEW_DEFAULTS: dict[str, Any] = {"view": "slices", "plane": "axial", "image_size": 64}
PROJECTIONS_ONLY = (
    "projections give case-level features only; use view=slices for segmentation "
    "or masked reconstruction"
)


def to_slices(x: torch.Tensor, axis: int) -> torch.Tensor:
    """[B, C, D, H, W] → [B·S, C, a, b]: the S slices along `axis` (2, 3 or 4) as 2-D images."""
    x = x.movedim(axis, 1)
    return x.reshape(-1, *x.shape[2:])


def from_slices(y: torch.Tensor, batch: int, axis: int) -> torch.Tensor:
    """The inverse of `to_slices`: [B·S, F, a, b] → [B, F, ...] with the S slices at `axis`."""
    return y.reshape(batch, -1, *y.shape[1:]).movedim(1, axis)


def projection_image(x: torch.Tensor, size: int) -> torch.Tensor:
    """[B, C, D, H, W] → [B, 2C, size, size]: channels mean₀, max₀, mean₁, max₁, …; the coronal
    projection (along H: an image over W × D) on the left, the sagittal one (along D: W × H) on
    the right, each resized to size × size/2 (bilinear, antialiased)."""

    def view(axis: int) -> torch.Tensor:
        m = torch.stack([x.mean(axis), x.amax(axis)], dim=2).flatten(1, 2)  # [B, 2C, a, W]
        m = m.transpose(-1, -2)  # rows = W (inferior → superior), as both views share it
        if tuple(m.shape[-2:]) == (size, size // 2):
            return m
        return F.interpolate(
            m, size=(size, size // 2), mode="bilinear", align_corners=False, antialias=True
        )

    return torch.cat([view(3), view(2)], dim=-1)


def resolve_view(family: str, kw: dict[str, Any], multiple: int) -> dict[str, Any]:
    """Check the view options (`VIEW_DEFAULTS` filled in); `multiple`: what the 2-D network's
    input sides must divide by."""
    if kw["view"] not in VIEWS:
        raise ConfigError(f"{family} view {kw['view']!r}: use one of {', '.join(VIEWS)}")
    if kw["plane"] not in (*PLANES, "all"):
        raise ConfigError(f"{family} plane {kw['plane']!r}: use axial, coronal, sagittal or all")
    kw["image_size"] = int(kw["image_size"])
    if kw["view"] == "projections" and (kw["image_size"] % (2 * multiple) or kw["image_size"] < 1):
        raise ConfigError(
            f"{family} image_size {kw['image_size']} must be a positive multiple of "
            f"{2 * multiple} (two side-by-side views, each a multiple of {multiple})"
        )
    return kw


def slice_axis(backbone: Any) -> int | None:
    """The slice axis (2, 3 or 4) of a one-plane slice model's feature maps, whose entries along
    it are the slices; None for every other backbone (3-D, projections, all three planes). A
    multi-sequence wrapper (`Channelwise`) answers for the network it shares."""
    net = getattr(backbone, "shared", backbone)
    if not isinstance(net, View2D) or not net.dense or net.plane == "all":
        return None
    return PLANES[net.plane]


class View2D(Backbone):
    """A 2-D network behind the 3-D interface. Subclasses build it, set `cum_strides` (each
    feature's in-plane downsampling) and implement `encode2d` / `decode2d` on [N, C, h, w]."""

    cum_strides: list[int]

    def setup_view(self, kw: dict[str, Any], multiple: int) -> None:
        self.view, self.plane, self.image_size = kw["view"], kw["plane"], kw["image_size"]
        self.dense = self.view == "slices"
        self.min_input_multiple = multiple if self.dense else 1

    @property
    def image_channels(self) -> int:
        """Channels of the 2-D images the network sees (mean + max per input channel)."""
        return self.in_channels * (1 if self.view == "slices" else 2)

    def planes(self) -> list[int]:
        names = list(PLANES)[::-1] if self.plane == "all" else [self.plane]  # axial first
        return [PLANES[p] for p in names]

    def encode2d(self, img: torch.Tensor, keep: torch.Tensor | None) -> list[torch.Tensor]:
        raise NotImplementedError

    def decode2d(self, feats: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def slice_keep(self, keep: torch.Tensor, spatial: tuple[int, ...], axis: int) -> torch.Tensor:
        """A 3-D token mask [B, N] as the per-slice masks [B·S, n] of `axis` (transformers)."""
        reject_keep(self.name, keep)
        return keep

    def encode(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> list[torch.Tensor]:
        self.check_input(x)
        if not self.dense:
            if keep is not None:
                raise ConfigError(PROJECTIONS_ONLY)
            return self.encode2d(projection_image(x, self.image_size), None)
        per = []
        for axis in self.planes():
            k = None if keep is None else self.slice_keep(keep, tuple(x.shape[2:]), axis)
            feats = self.encode2d(to_slices(x, axis), k)
            per.append([from_slices(f, x.shape[0], axis) for f in feats])
        if len(per) == 1:
            return per[0]
        return [torch.stack([_pool_to(f, min_shape(fs)) for f in fs]).mean(0) for fs in zip(*per)]

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        if not self.dense:
            raise ConfigError(PROJECTIONS_ONLY)
        outs = []
        for axis in self.planes():
            up = feats
            if self.plane == "all":  # back along this plane's slice axis
                up = [f.repeat_interleave(s, dim=axis) for f, s in zip(feats, self.cum_strides)]
            y = self.decode2d([to_slices(f, axis) for f in up])
            outs.append(from_slices(y, feats[0].shape[0], axis))
        return outs[0] if len(outs) == 1 else torch.stack(outs).mean(0)


def min_shape(feats: tuple[torch.Tensor, ...]) -> tuple[int, ...]:
    """The common grid of one stage's per-plane maps: each axis at its smallest size."""
    return tuple(min(f.shape[i] for f in feats) for i in range(2, feats[0].ndim))


def _pool_to(f: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    d, h, w = shape
    return f if tuple(f.shape[2:]) == shape else F.adaptive_avg_pool3d(f, (d, h, w))
