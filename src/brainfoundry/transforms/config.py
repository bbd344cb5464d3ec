"""`AugmentConfig`: one typed section per transform (the section *is* the transform's dataclass),
named presets, and YAML round trips through `brainfoundry.config`.

    cfg = augment_preset("default")
    cfg = load_config(AugmentConfig, "aug.yaml", ["noise.p=0.3", "spatial.patch_size=[96,96,96]"])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigError
from .base import TRANSFORMS, Transform
from .keyed_artefacts import ChannelDropout, Ghosting, LowResolution, Motion, ThickSlices
from .keyed_intensity import BiasField, Brightness, Contrast, Gamma, GaussianBlur, GaussianNoise
from .keyed_spatial import Flip, SpatialTransform

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

PRESETS = ("none", "light", "nnunet", "default", "strong", "ssl")


@dataclass
class AugmentConfig:
    """Every built-in transform with its probability and ranges, in the order they run.

    Defaults are the "default" preset: nnU-Net v2's default training augmentation (same
    transforms and probabilities) plus MRI artefacts at low probability. `extra` appends plug-in
    transforms by registry name: `[{"name": "my_transform", "p": 0.2}]`.
    """

    spatial: SpatialTransform = field(default_factory=SpatialTransform)
    bias_field: BiasField = field(default_factory=BiasField)
    # the acquisition chain: linear along each axis, fused into one pass (see linear.py)
    motion: Motion = field(default_factory=Motion)
    ghosting: Ghosting = field(default_factory=Ghosting)
    thick_slices: ThickSlices = field(default_factory=ThickSlices)
    low_resolution: LowResolution = field(default_factory=LowResolution)
    blur: GaussianBlur = field(default_factory=GaussianBlur)
    # then thermal noise, then intensity curves
    noise: GaussianNoise = field(default_factory=GaussianNoise)
    brightness: Brightness = field(default_factory=Brightness)
    contrast: Contrast = field(default_factory=Contrast)
    gamma_inverted: Gamma = field(default_factory=lambda: Gamma(p=0.1, invert=True))
    gamma: Gamma = field(default_factory=Gamma)
    flip: Flip = field(default_factory=Flip)
    channel_dropout: ChannelDropout = field(default_factory=ChannelDropout)
    extra: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for spec in self.extra:
            make_extra(spec)  # fail at load time, not at the first batch

    def transforms(self) -> list[Transform]:
        """The built-in sections in run order, then the plug-ins."""
        built = [getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"]
        return built + [make_extra(spec) for spec in self.extra]


def make_extra(spec: dict[str, Any]) -> Transform:
    """Instantiate a registered transform from `{"name": ..., **kwargs}`."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"extra: {spec!r} must be a mapping with a 'name' key")
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    try:
        return TRANSFORMS.create(str(spec["name"]), **kwargs)
    except TypeError as e:
        raise ConfigError(f"extra {spec['name']!r}: {e}") from None


def augment_preset(name: str, **changes: Any) -> AugmentConfig:
    """A named preset; keyword arguments replace whole sections (e.g. `spatial=...`)."""
    if name not in PRESETS:
        raise ConfigError(f"augmentation preset {name!r} is unknown; known: {', '.join(PRESETS)}")
    cfg = AugmentConfig()
    if name == "nnunet":  # exactly nnU-Net v2's nnUNetTrainer.get_training_transforms (3-D)
        for section in ("bias_field", "motion", "ghosting", "thick_slices"):
            setattr(cfg, section, dataclasses.replace(getattr(cfg, section), p=0.0))
    elif name == "none":
        cfg = _scaled(cfg, 0.0)
    elif name == "light":
        cfg = _scaled(cfg, 0.5)
        cfg.spatial = dataclasses.replace(cfg.spatial, rotation=(-15.0, 15.0), scale=(0.85, 1.15))
    elif name in ("strong", "ssl"):
        cfg = _scaled(cfg, 2.0)
        cfg.spatial = dataclasses.replace(cfg.spatial, p_elastic=0.2)
        cfg.channel_dropout = ChannelDropout(p=0.2 if name == "ssl" else 0.0)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _scaled(cfg: AugmentConfig, factor: float) -> AugmentConfig:
    """Every sample-level probability times `factor` (clipped to 1); flips off when 0."""
    out = dataclasses.replace(cfg)
    for f in dataclasses.fields(cfg):
        t = getattr(cfg, f.name)
        if not isinstance(t, Transform):
            continue
        keys = [k for k in vars(t) if k in ("p", "p_rotation", "p_scale", "p_elastic")]
        if isinstance(t, Flip):
            keys = ["p"] if factor == 0 else []
        setattr(
            out,
            f.name,
            dataclasses.replace(
                cast("DataclassInstance", t),  # every Transform field is a dataclass
                **{k: min(1.0, getattr(t, k) * factor) for k in keys},
            ),
        )
    return out


def always_config(patch_size: tuple[int, int, int] | None = None) -> AugmentConfig:
    """Every transform fires on every sample (probabilities 1): the worst case for speed."""
    cfg = AugmentConfig()
    for f in dataclasses.fields(cfg):
        t = getattr(cfg, f.name)
        if isinstance(t, Transform):
            keys = [k for k in vars(t) if k == "p" or k.startswith("p_")]
            setattr(
                cfg,
                f.name,
                dataclasses.replace(cast("DataclassInstance", t), **dict.fromkeys(keys, 1.0)),
            )
    cfg.flip = dataclasses.replace(cfg.flip, p_per_axis=0.5, p_permute=0.0)
    cfg.channel_dropout = dataclasses.replace(cfg.channel_dropout, p_per_channel=0.5)
    cfg.spatial = dataclasses.replace(cfg.spatial, patch_size=patch_size)
    return cfg
