"""Fast, reproducible 3-D MRI augmentation as batched torch ops (CPU or GPU alike).

`build_augmentation(AugmentConfig())(batch, generator)` over `{"image": [B,C,D,H,W],
"present": [B,C], "label": [B,1,D,H,W] or [B]}`; every random draw comes from the explicit
`torch.Generator`. Functional cores: `spatial`, `intensity`, `separable`; keyed wrappers are
registered in `TRANSFORMS` so plug-ins can be named in a config.
"""

from .base import TRANSFORMS, Transform
from .config import PRESETS, AugmentConfig, always_config, augment_preset
from .keyed_artefacts import ChannelDropout, Ghosting, LowResolution, Motion, ThickSlices
from .keyed_intensity import BiasField, Brightness, Contrast, Gamma, GaussianBlur, GaussianNoise
from .keyed_spatial import Flip, SpatialTransform
from .pipeline import Augmentation, build_augmentation

__all__ = [
    "PRESETS",
    "TRANSFORMS",
    "AugmentConfig",
    "Augmentation",
    "BiasField",
    "Brightness",
    "ChannelDropout",
    "Contrast",
    "Flip",
    "Gamma",
    "GaussianBlur",
    "GaussianNoise",
    "Ghosting",
    "LowResolution",
    "Motion",
    "SpatialTransform",
    "ThickSlices",
    "Transform",
    "always_config",
    "augment_preset",
    "build_augmentation",
]
