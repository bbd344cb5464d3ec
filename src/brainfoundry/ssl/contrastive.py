"""`contrastive`: SimCLR-style InfoNCE between two augmented views of the same patch.

Chen et al. 2020 (SimCLR): global-average-pooled deepest features → MLP projection head →
NT-Xent with temperature; negatives are all other views in the global batch (gathered across
ranks). Needs `views` [B, 2, C, D, H, W] in the batch (the dataset's `n_views=2`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .base import OBJECTIVES, Objective, pooled
from .losses import info_nce

if TYPE_CHECKING:
    from ..models.backbones import Backbone


def projection_head(dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, out)
    )


@OBJECTIVES.register("contrastive")
class Contrastive(Objective):
    n_views = 2

    def __init__(
        self, backbone: Backbone, proj_dim: int = 128, hidden: int = 512, temperature: float = 0.1
    ):
        super().__init__(backbone)
        self.head = projection_head(backbone.embed_dim, hidden, proj_dim)
        self.temperature = temperature

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(pooled(self.backbone, x))

    def contrastive_loss(self, batch: dict) -> torch.Tensor:
        v = batch.get("views")
        if v is None or v.shape[1] < 2:
            raise ValueError("contrastive needs two views per sample (dataset n_views=2)")
        b = v.shape[0]
        z = self.embed(torch.cat([v[:, 0], v[:, 1]]))  # one pass: norms see both views
        return info_nce(z[:b], z[b:], self.temperature)

    def health_views(self, batch: dict) -> list[torch.Tensor]:
        v = batch["views"]
        return [v[:, 0], v[:, 1]]

    def health_embeddings(
        self, batch: dict
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Pooled features of the first view; both views' projections (the InfoNCE space)."""
        va, vb = self.health_views(batch)
        b = va.shape[0]
        h = pooled(self.backbone, torch.cat([va, vb]))
        z = self.head(h)
        return h[:b], (z[:b], z[b:])

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.contrastive_loss(batch)
        return loss, {"loss": float(loss.detach()), "con": float(loss.detach())}
