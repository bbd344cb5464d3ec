"""The model card: the contract a checkpoint carries, so fine-tuning reads it instead of guessing.

It says how to rebuild the network (`arch`, the dict `Backbone.arch()` returns) and what the
weights expect of their input: modalities in channel order, voxel spacing, intensity
normalisation and patch size. Stored as `card.json` beside `model.safetensors`. A fine-tuned
task model adds its contract under `extra`: the task spec, the head's arguments, the interval's
calibration and, for regression, `output_range` (the physical limits and the training labels'
extent its outputs are checked against, `tasks.output_range`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError

CARD_FORMAT = 1


@dataclass
class ModelCard:
    """What a checkpoint is and what input it wants (see the module docstring)."""

    arch: dict[str, Any]
    in_channels: int
    modalities: list[str] = field(default_factory=list)
    spacing: list[float] | None = None
    normalization: dict[str, Any] = field(default_factory=lambda: {"scheme": "zscore"})
    patch_size: list[int] | None = None
    ssl_method: str | None = None
    data_summary: dict[str, Any] = field(default_factory=dict)
    version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)
    format: int = CARD_FORMAT

    def __post_init__(self) -> None:
        if not isinstance(self.arch, dict) or not {"name", "kwargs"} <= set(self.arch):
            raise ValueError("ModelCard.arch must be Backbone.arch(): {'name', 'size', 'kwargs'}")
        if "preset" in self.arch and "size" not in self.arch:  # older cards named it "preset"
            self.arch = {**self.arch, "size": self.arch["preset"]}
            del self.arch["preset"]
        self.in_channels = int(self.in_channels)
        self.modalities = list(self.modalities)
        if self.modalities and len(self.modalities) != self.in_channels:
            raise ValueError(
                f"ModelCard: {len(self.modalities)} modalities {self.modalities} "
                f"for {self.in_channels} input channel(s)"
            )
        if self.spacing is not None:
            self.spacing = [float(s) for s in self.spacing]
        if self.patch_size is not None:
            self.patch_size = [int(s) for s in self.patch_size]

    @classmethod
    def for_model(cls, model: Any, **fields: Any) -> ModelCard:
        """A card for a live backbone: arch and channels come from the model itself."""
        return cls(arch=model.arch(), in_channels=model.in_channels, **fields)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Unknown keys (a newer writer) are kept under `extra["unknown"]`, never dropped."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        if unknown:
            known["extra"] = {**known.get("extra", {}), "unknown": unknown}
        return cls(**known)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "no card.json here; is this a brainfoundry run folder?")
        try:
            return cls.from_json(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(path, f"is not valid JSON ({e}); re-save the model") from e
        except (TypeError, ValueError) as e:
            raise InputError(path, f"is not a valid model card: {e}") from e
