"""`hybrid`: masked reconstruction + contrastive, weighted.

The FOMO25 findings: MAE favours segmentation, a reconstruction + contrastive mix favours
classification; `w_rec` / `w_con` make that claim testable on one backbone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .base import OBJECTIVES, sample_generators
from .contrastive import Contrastive
from .mae import masked_reconstruction

if TYPE_CHECKING:
    from ..models.backbones import Backbone


class RecConMix(Contrastive):
    """`w_rec` · reconstruction + `w_con` · contrastive, the mix `hybrid` and `cross-modal` share.

    Subclasses implement `losses(batch) -> (rec, con)`; the weighting and the logs live here once.
    They keep their own `__init__` signatures: defaults differ, and `objective_kwargs` reads them.
    """

    decodes = True

    def __init__(
        self,
        backbone: Backbone,
        *,
        w_rec: float,
        w_con: float,
        mask_ratio: float,
        block_size: int,
        proj_dim: int,
        hidden: int,
        temperature: float,
    ):
        super().__init__(backbone, proj_dim=proj_dim, hidden=hidden, temperature=temperature)
        self.w_rec, self.w_con = w_rec, w_con
        self.mask_ratio, self.block_size = mask_ratio, block_size

    def losses(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        rec, con = self.losses(batch)
        loss = self.w_rec * rec + self.w_con * con
        logs = {
            "loss": float(loss.detach()),
            "rec": float(rec.detach()),
            "con": float(con.detach()),
        }
        return loss, logs


@OBJECTIVES.register("hybrid")
class Hybrid(RecConMix):
    def __init__(
        self,
        backbone: Backbone,
        w_rec: float = 1.0,
        w_con: float = 0.1,
        mask_ratio: float = 0.75,
        block_size: int = 16,
        corrupt: bool = False,
        proj_dim: int = 128,
        hidden: int = 512,
        temperature: float = 0.1,
    ):
        super().__init__(
            backbone,
            w_rec=w_rec,
            w_con=w_con,
            mask_ratio=mask_ratio,
            block_size=block_size,
            proj_dim=proj_dim,
            hidden=hidden,
            temperature=temperature,
        )
        self.corrupt = corrupt

    def losses(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        x = batch["views"][:, 0]
        rec = masked_reconstruction(
            self.backbone,
            x,
            x,
            sample_generators(batch),
            self.mask_ratio,
            self.block_size,
            self.corrupt,
        )
        return rec, self.contrastive_loss(batch)
