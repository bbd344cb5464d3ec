"""What a pretraining run and a fine-tuning run configure alike: the backbone, how training
inputs are sampled, the trainer and optimiser, and loading defaults ← preset ← YAML ← overrides.

`PretrainConfig` (ssl/pretrain.py) and `FinetuneConfig` (tasks/finetune.py) extend these; the
words mean one thing everywhere: a *preset* is a named config file (`--preset`, see
`brainfoundry.presets`), a *size* is a backbone family's named shape (`model.size`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .config import load_config
from .engine import OptimConfig, TrainConfig
from .presets import preset_path

R = TypeVar("R", bound="RunConfig")


@dataclass
class BackboneConfig:
    """The network: a registered family, one of its sizes, and any option over that size."""

    backbone: str = "resenc"
    size: str = "tiny"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class SamplingConfig:
    """How training inputs are drawn from a store."""

    patch_size: list[int] = field(default_factory=lambda: [64, 64, 64])
    samples_per_epoch: int | None = None  # default: every sample once
    augment: str = "ssl"  # an augmentation preset (brainfoundry.transforms.PRESETS)
    margin: int = 8  # extra voxels read around a patch for rotations


@dataclass
class RunConfig:
    """A training run: the sections every run has, and its loader."""

    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    preset_kind: ClassVar[str] = ""  # the `brainfoundry.presets` folder of this run's presets

    @classmethod
    def load(
        cls: type[R], preset: str | None, config: str | Path | None, overrides: list[str]
    ) -> R:
        """Defaults ← preset YAML ← user YAML ← `a.b=c` overrides."""
        return load_config(cls, cls.sources(preset, config), overrides)

    @classmethod
    def sources(cls, preset: str | None, config: str | Path | None) -> list[str | Path | None]:
        """The YAML files of `load`, lowest priority first."""
        return [preset_path(cls.preset_kind, preset) if preset else None, config]
