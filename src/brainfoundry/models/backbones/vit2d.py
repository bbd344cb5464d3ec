"""`vit2d`: a 2-D ViT on slices or projections of the volume (plain torch).

2-D patch embedding → learned position embedding (bilinearly resized to each plane's token
grid) → the EVA transformer blocks of `vit.py` (no RoPE) → Primus' light transposed-conv patch
decoder in 2-D, behind the 3-D interface of `views.View2D`.

It exposes `patch_size`, so objectives treat it as a transformer: MAE's `keep` mask over the
p×p×p token cubes of the volume becomes, on every slice, the mask of the p×p tokens that cube
covers. Visible-token counts differ between slices, so masked tokens are not dropped as in
Primus but replaced by the learned `mask_token` at the encoder input (SimMIM-style): the same
loss and masks as for primus, without the encoder's compute saving.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from . import BACKBONES
from .primus import PatchDecode, PatchEmbed
from .views import VIEW_DEFAULTS, View2D, resolve_view
from .vit import Eva

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"embed_dim": 48, "depth": 2, "num_heads": 2, "patch_size": 8},  # tests
    "mini": {"embed_dim": 96, "depth": 4, "num_heads": 4, "patch_size": 8},  # CPU benchmarks
    "small": {"embed_dim": 192, "depth": 8, "num_heads": 6, "patch_size": 8},
}
DEFAULTS = {"ref_size": 64, "init_values": 0.1, "scale_attn_inner": True, "drop_path_rate": 0.0}


@BACKBONES.register("vit2d")
class ViT2D(View2D):
    """2-D ViT; `encode` → [token grid] on the 3-D grid (slices) or the image (projections)."""

    name = "vit2d"
    in_proj_keys = ("patch_embed.proj",)

    def __init__(self, size: str = "tiny", **kwargs: Any):
        kw = _resolve(size, kwargs)
        super().__init__(size, kw)
        p, dim = kw["patch_size"], kw["embed_dim"]
        self.patch_size = p  # what makes `ssl.family` call it a transformer
        self.cum_strides = [p]
        self.setup_view(kw, p)
        g = kw["ref_size"] // p
        self.patch_embed = PatchEmbed(p, self.image_channels, dim, ndim=2)
        self.eva = Eva(
            dim, kw["depth"], kw["num_heads"], (1, g, g), kw["init_values"],
            kw["scale_attn_inner"], False, kw["drop_path_rate"],
        )  # fmt: skip
        convs: list[nn.Module] = [self.patch_embed]
        if self.dense:  # projections never decode or mask: no decoder, no mask token
            self.up_projection = PatchDecode(p, dim, kw["out_channels"], ndim=2)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
            convs.append(self.up_projection)
        for m in (mod for c in convs for mod in c.modules()):
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):  # DNA's InitWeights_He(1e-2)
                nn.init.kaiming_normal_(m.weight, a=1e-2)
                assert m.bias is not None
                nn.init.zeros_(m.bias)
        self.embed_dim = dim
        self.feature_channels = [dim]

    def slice_keep(self, keep: torch.Tensor, spatial: tuple[int, ...], axis: int) -> torch.Tensor:
        p = self.patch_size
        grid = tuple(s // p for s in spatial)
        b, n = keep.shape[0], grid[0] * grid[1] * grid[2]
        if keep.dtype != torch.bool or keep.ndim != 2 or keep.shape[1] != n:
            raise ValueError(
                f"keep must be a bool mask [B, {n}] over the {grid} token grid, "
                f"got {keep.dtype} {tuple(keep.shape)}"
            )
        k = keep.view(b, *grid).repeat_interleave(p, dim=axis - 1)  # p slices per cube
        return k.movedim(axis - 1, 1).reshape(b * spatial[axis - 2], -1)

    def encode2d(self, img: torch.Tensor, keep: torch.Tensor | None) -> list[torch.Tensor]:
        t = self.patch_embed(img)
        n, c, gh, gw = t.shape
        tokens = t.flatten(2).transpose(1, 2)
        if keep is not None:
            tokens = torch.where(keep[..., None], tokens, self.mask_token.to(tokens.dtype))
        tokens = tokens + self.eva.pos_embed_for((1, gh, gw))
        for blk in self.eva.blocks:
            tokens = blk(tokens, None)
        tokens = self.eva.norm(tokens)
        return [tokens.transpose(1, 2).reshape(n, c, gh, gw)]

    def decode2d(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.up_projection(feats[-1])


def _resolve(size: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if size not in SIZES:
        raise ConfigError(f"unknown vit2d size {size!r}; known: {', '.join(SIZES)}")
    kw = {**VIEW_DEFAULTS, **DEFAULTS, **SIZES[size], **overrides}
    allowed = {*VIEW_DEFAULTS, *DEFAULTS, *SIZES["tiny"], "in_channels", "out_channels"}
    unknown = set(kw) - allowed
    if unknown:
        raise ConfigError(f"unknown vit2d option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    p = kw["patch_size"] = int(kw["patch_size"])
    if kw["embed_dim"] % kw["num_heads"]:
        raise ConfigError(f"vit2d embed_dim {kw['embed_dim']} must divide by num_heads")
    if int(kw["ref_size"]) % p:
        raise ConfigError(f"vit2d ref_size {kw['ref_size']} must be a multiple of patch_size {p}")
    return resolve_view("vit2d", kw, p)
