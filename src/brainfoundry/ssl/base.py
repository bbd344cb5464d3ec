"""The objective interface and its registry.

`Objective(backbone, **kwargs)`; `forward(batch) -> (loss, logs)`. Batches follow the sample
convention (`image` [B,C,D,H,W], `present` [B,C], optional `views` [B,V,C,D,H,W]) plus
`meta["seed"]` [B]: each sample's own randomness (masks, corruption) comes from its seed, so a
loss never depends on batch composition, worker count or number of ranks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..registry import Registry

if TYPE_CHECKING:
    from ..models.backbones import Backbone

OBJECTIVES: Registry[Objective] = Registry("objective")


def family(backbone: nn.Module) -> str:
    """'transformer' for token-based backbones (they expose `patch_size`), else 'cnn'."""
    return "transformer" if hasattr(backbone, "patch_size") else "cnn"


def pooled(backbone: Backbone, x: torch.Tensor) -> torch.Tensor:
    """Global average of the deepest feature map (CNN) or token sequence (transformer)."""
    f = backbone.encode(x)[-1]
    return f.flatten(2).mean(-1) if f.dim() > 2 else f


def sample_generators(batch: dict, salt: int = 0) -> list[torch.Generator]:
    """One CPU generator per sample, seeded from `meta["seed"]` (+ `salt` for a second stream)."""
    seeds = batch["meta"]["seed"]
    seeds = seeds.tolist() if torch.is_tensor(seeds) else list(seeds)
    return [torch.Generator().manual_seed((int(s) + 7919 * salt) % (2**63)) for s in seeds]


class Objective(nn.Module):
    """Base class: holds the backbone; subclasses implement `forward(batch)`."""

    #: backbone families this objective supports
    families: tuple[str, ...] = ("cnn", "transformer")
    #: augmented views per sample the dataset must give (`views` when more than one)
    n_views: int = 1
    #: whether the loss needs `decode`'s full-resolution map (masked reconstruction): a
    #: backbone without one (a 2-D model on projections) is refused before the run starts
    decodes: bool = False

    def __init__(self, backbone: Backbone):
        super().__init__()
        self.backbone = backbone
        fam = family(backbone)
        from ..errors import ConfigError

        if fam not in self.families:
            raise ConfigError(f"objective {type(self).__name__} does not support {fam} backbones")
        if self.decodes and not getattr(backbone, "dense", True):
            from ..models.backbones.views import PROJECTIONS_ONLY

            raise ConfigError(f"objective {type(self).__name__}: {PROJECTIONS_ONLY}")

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:  # pragma: no cover
        raise NotImplementedError

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Called by the Trainer once after each optimizer step (`step` steps taken of
        `total_steps`): state that follows the weights, not the gradients (`dino`'s EMA teacher
        and centres). Nothing by default."""

    def health_views(self, batch: dict) -> list[torch.Tensor]:
        """The unmasked inputs [B, C, D, H, W] the health metrics embed (`ssl.monitor`): one
        per view; the image itself for a one-view objective."""
        return [batch["image"]]

    def health_embeddings(
        self, batch: dict
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """(pooled encoder features [B, D] of the first view, and for two-view objectives the
        two views' embeddings in the space their loss compares, else None)."""
        return pooled(self.backbone, self.health_views(batch)[0]), None


def create_objective(name: str, backbone: nn.Module, **kwargs) -> Objective:
    return OBJECTIVES.create(name, backbone, **kwargs)
