"""`mae`: masked 3-D image modelling.

He et al. 2022 (MAE); for 3-D CNNs, Wald et al. 2025 ("Revisiting MAE pre-training for 3D
medical image segmentation": 75% of 16³ blocks masked, MSE on masked voxels) and the AMAES
variant (Munk et al. 2024) that also corrupts intensities (`corrupt=True`). CNNs see the masked
volume with masked voxels zeroed; transformers drop the masked tokens (encoder sees only the
visible ones) and a decoder fills them with a mask token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from .base import OBJECTIVES, Objective, family, sample_generators
from .corruption import corrupt as corrupt_fn
from .losses import masked_mse
from .masking import block_mask, token_keep, tokens_to_voxels

if TYPE_CHECKING:
    from ..models.backbones import Backbone
    from ..models.backbones.primus import Primus


def masked_reconstruction(
    backbone: Backbone,
    x: torch.Tensor,
    target: torch.Tensor,
    gens: list[torch.Generator],
    ratio: float,
    block: int,
    corrupt: bool = False,
) -> torch.Tensor:
    """Mask `x` per sample, reconstruct `target` (same channels); MSE on masked voxels."""
    spatial = cast(tuple[int, int, int], tuple(x.shape[2:]))
    inp = corrupt_fn(x, gens) if corrupt else x
    if family(backbone) == "transformer":
        p = cast("Primus", backbone).patch_size  # the transformer family
        patch = (p, p, p) if isinstance(p, int) else tuple(p)
        grid = tuple(s // p for s, p in zip(spatial, patch))
        n = grid[0] * grid[1] * grid[2]
        keep = torch.stack([token_keep(n, ratio, g) for g in gens]).to(x.device)
        pred = backbone.decode(backbone.encode(inp, keep=keep))
        mask = ~tokens_to_voxels(keep, grid, patch)
    else:
        mask = torch.stack([block_mask(spatial, block, ratio, g) for g in gens]).to(x.device)
        pred = backbone(inp * (~mask)[:, None].to(inp.dtype))
    return masked_mse(pred.float(), target.float(), mask)


@OBJECTIVES.register("mae")
class MAE(Objective):
    """Reconstruct masked blocks (CNN) or dropped tokens (transformer) of the input."""

    decodes = True

    def __init__(
        self,
        backbone: Backbone,
        mask_ratio: float = 0.75,
        block_size: int = 16,
        corrupt: bool = False,
    ):
        super().__init__(backbone)
        if backbone.out_channels != backbone.in_channels:
            raise ValueError("mae needs a backbone with out_channels == in_channels")
        self.mask_ratio, self.block_size, self.corrupt = mask_ratio, block_size, corrupt

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["image"]
        loss = masked_reconstruction(
            self.backbone,
            x,
            x,
            sample_generators(batch),
            self.mask_ratio,
            self.block_size,
            self.corrupt,
        )
        return loss, {"loss": float(loss.detach()), "rec": float(loss.detach())}
