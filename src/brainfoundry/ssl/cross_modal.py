"""`cross-modal`: sequences of one session as positives, plus cross-sequence reconstruction.

Co-registered sequences show the same anatomy with different contrast, so their embeddings
should agree (InfoNCE between two sequences of the same patch) and one should be predictable
from the other (reconstruct sequence b from masked sequence a): the modality-invariant line of
work (e.g. the FOMO25 winner's idea). Robust to missing sequences: a sample with one present
sequence pairs it with itself under an independent mask. Batches carry all sequences as
channels with a `present` mask (dataset `modalities=[...]`); the backbone takes one channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .base import OBJECTIVES, family, sample_generators
from .hybrid import RecConMix
from .losses import info_nce
from .mae import masked_reconstruction
from .masking import block_mask

if TYPE_CHECKING:
    from ..models.backbones import Backbone


def pick_pairs(present: torch.Tensor, gens: list[torch.Generator]) -> tuple[list[int], list[int]]:
    """Two distinct present channels per sample (the same one twice if only one is present)."""
    a, b = [], []
    for p, g in zip(present.cpu(), gens):
        idx = torch.nonzero(p).flatten()
        if len(idx) == 0:
            raise ValueError("a sample has no present sequence")
        perm = idx[torch.randperm(len(idx), generator=g)]
        a.append(int(perm[0]))
        b.append(int(perm[1] if len(perm) > 1 else perm[0]))
    return a, b


@OBJECTIVES.register("cross-modal")
class CrossModal(RecConMix):
    n_views = 1  # its positives are the session's sequences, not augmented views

    def __init__(
        self,
        backbone: Backbone,
        w_rec: float = 1.0,
        w_con: float = 0.1,
        mask_ratio: float = 0.6,
        block_size: int = 16,
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
        if backbone.in_channels != 1:
            raise ValueError("cross-modal pretrains a one-channel backbone (in_channels=1)")

    def pair(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, list[torch.Generator]]:
        """(sequence a [B,1,...], sequence b [B,1,...], the samples' generators): the two
        sequences of each sample that training pairs (`pick_pairs`), unmasked."""
        x = batch["image"]
        gens = sample_generators(batch)
        a, b = pick_pairs(batch["present"], gens)
        rows = torch.arange(x.shape[0], device=x.device)
        xa = x[rows, torch.tensor(a, device=x.device)][:, None]
        xb = x[rows, torch.tensor(b, device=x.device)][:, None]
        return xa, xb, gens

    def health_views(self, batch: dict) -> list[torch.Tensor]:
        return list(self.pair(batch)[:2])

    def losses(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        x = batch["image"]
        xa, xb, gens = self.pair(batch)
        rec = masked_reconstruction(self.backbone, xa, xb, gens, self.mask_ratio, self.block_size)
        # contrastive on the two unmasked sequences (a fresh mask stream keeps pairs non-trivial
        # when a == b: the second view is masked independently)
        if family(self.backbone) == "cnn":
            g2 = sample_generators(batch, salt=1)
            m = torch.stack([block_mask(tuple(x.shape[2:]), self.block_size, 0.3, g) for g in g2])
            xb = xb * (~m)[:, None].to(xb.device, xb.dtype)
        n = x.shape[0]
        z = self.embed(torch.cat([xa, xb]))
        return rec, info_nce(z[:n], z[n:], self.temperature)
