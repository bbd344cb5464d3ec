"""Backbone registry: `create_backbone("resenc" | "primus" | "cnn2d" | "vit2d", in_channels,
out_channels, size)`. cnn2d / vit2d are 2-D networks on slices or projections of the volume
(`views.py`), behind the same 3-D interface.

Every backbone has the same small interface (see `base.Backbone`): `encode(x, keep=None)` →
features (deepest last), `decode(feats)` → full-resolution map, `arch()` → recipe for the card.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from ...registry import Registry
from .base import Backbone

BACKBONES: Registry[Backbone] = Registry("backbone")


def create_backbone(
    name: str,
    in_channels: int | None = None,
    out_channels: int | None = None,
    size: str = "tiny",
    kwargs: dict[str, Any] | None = None,
    **overrides: Any,
) -> Backbone:
    """Build a registered backbone from a named size plus overrides.

    `kwargs` is the dict that `Backbone.arch()` returns (it holds in/out channels and every
    resolved option), so `create_backbone(**model.arch())` rebuilds the same network;
    explicit arguments win over it.
    """
    kw = dict(kwargs or {})
    kw.update(overrides)
    if in_channels is not None:
        kw["in_channels"] = int(in_channels)
    if out_channels is not None:
        kw["out_channels"] = int(out_channels)
    for key in ("in_channels", "out_channels"):
        if key not in kw:
            raise ConfigError(f"create_backbone({name!r}): {key} is required")
        if int(kw[key]) < 1:
            raise ConfigError(f"create_backbone({name!r}): {key} must be >= 1, got {kw[key]}")
    return BACKBONES.create(name, size=size, **kw)


# registration happens on import of each family
from . import cnn2d, primus, resenc, vit2d  # noqa: E402,F401

__all__ = ["BACKBONES", "Backbone", "create_backbone"]
