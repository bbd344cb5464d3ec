"""`hybrid`: masked reconstruction + contrastive, weighted.

The FOMO25 findings: MAE favours segmentation, a reconstruction + contrastive mix favours
classification; `w_rec` / `w_con` make that claim testable on one backbone.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import OBJECTIVES, sample_generators
from .contrastive import Contrastive
from .mae import masked_reconstruction


@OBJECTIVES.register("hybrid")
class Hybrid(Contrastive):
    def __init__(
        self,
        backbone: nn.Module,
        w_rec: float = 1.0,
        w_con: float = 0.1,
        mask_ratio: float = 0.75,
        block_size: int = 16,
        corrupt: bool = False,
        proj_dim: int = 128,
        hidden: int = 512,
        temperature: float = 0.1,
    ):
        super().__init__(backbone, proj_dim=proj_dim, hidden=hidden, temperature=temperature)
        self.w_rec, self.w_con = w_rec, w_con
        self.mask_ratio, self.block_size, self.corrupt = mask_ratio, block_size, corrupt

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
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
        con = self.contrastive_loss(batch)
        loss = self.w_rec * rec + self.w_con * con
        logs = {
            "loss": float(loss.detach()),
            "rec": float(rec.detach()),
            "con": float(con.detach()),
        }
        return loss, logs
