"""Primus: a 3-D ViT for medical images (Wald et al., arXiv 2503.01835) in plain torch.

Patch embedding (conv, kernel = stride = patch) → EVA-02 transformer → light transposed-conv
"patch decode" back to full resolution. Parameter names match DNA's `Primus` / nnssl's checkpoints
(`down_projection`, `eva`, `up_projection`, `mask_token`), so export is a copy.

Token dropping (MAE): `encode(x, keep)` runs only the kept tokens (`keep` [B, N] bool, the same
count per sample) through the transformer, then puts them back on the full token grid with the
learned `mask_token` at the dropped positions; `decode` always receives a full grid.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from . import BACKBONES
from .base import Backbone
from .vit import Eva

# S/B/M/L exactly as DNA's _PRIMUS_CONFIGS; the input shape only sizes the position embedding.
_COMMON = {"patch_size": 8, "input_shape": [160, 160, 160], "init_values": 0.1}
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "embed_dim": 48,
        "depth": 2,
        "num_heads": 2,
        "patch_size": 8,
        "input_shape": [32, 32, 32],
        "init_values": 0.1,
    },  # fmt: skip
    "S": {"embed_dim": 396, "depth": 12, "num_heads": 6, **_COMMON},
    "B": {"embed_dim": 792, "depth": 12, "num_heads": 12, **_COMMON},
    "M": {"embed_dim": 864, "depth": 16, "num_heads": 12, **_COMMON},
    "L": {"embed_dim": 1056, "depth": 24, "num_heads": 16, **_COMMON},
}
DEFAULTS = {"scale_attn_inner": True, "use_rope": True, "drop_path_rate": 0.0}


class LayerNormNd(nn.Module):
    """LayerNorm over the channel axis of [B, C, *spatial] (DNA's, eps 1e-6)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return self.weight.view(shape) * x + self.bias.view(shape)


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, in_channels: int, dim: int, ndim: int = 3):
        super().__init__()
        conv = nn.Conv3d if ndim == 3 else nn.Conv2d  # 2-D: the vit2d family
        self.proj = conv(in_channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class PatchDecode(nn.Module):
    """log2(patch) ×2 transposed convs, channels shrinking geometrically (DNA's channel rule);
    `ndim` 2 for the vit2d family."""

    def __init__(self, patch: int, dim: int, out_channels: int, ndim: int = 3):
        super().__init__()
        up = nn.ConvTranspose3d if ndim == 3 else nn.ConvTranspose2d
        n = int(math.log2(patch))
        if 2**n != patch:
            raise ConfigError(f"primus patch_size must be a power of two, got {patch}")
        red = (dim / (2 * out_channels)) ** (1 / n)
        ch = [dim] + [int(max(8, round((dim / red ** (i + 1) + 1e-6) / 8) * 8)) for i in range(n)]
        ch[-1] = out_channels
        stages: list[nn.Module] = []
        for s in range(n - 1):
            stages.append(
                nn.Sequential(
                    up(ch[s], ch[s + 1], kernel_size=2, stride=2),
                    LayerNormNd(ch[s + 1]),
                    nn.GELU(),
                )
            )
        stages.append(up(ch[-2], ch[-1], kernel_size=2, stride=2))
        self.decode = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(x)


@BACKBONES.register("primus")
class Primus(Backbone):
    """3-D ViT backbone; `encode` → [token grid B×C×g×g×g], `decode` → B×out×D×H×W."""

    name = "primus"
    in_proj_keys = ("down_projection.proj",)

    def __init__(self, size: str = "tiny", **kwargs: Any):
        kw = _resolve(size, kwargs)
        super().__init__(size, kw)
        p, dim = kw["patch_size"], kw["embed_dim"]
        self.patch_size = p
        self.ref_grid = tuple(s // p for s in kw["input_shape"])
        self.down_projection = PatchEmbed(p, kw["in_channels"], dim)
        self.eva = Eva(
            dim, kw["depth"], kw["num_heads"], self.ref_grid, kw["init_values"],
            kw["scale_attn_inner"], kw["use_rope"], kw["drop_path_rate"],
        )  # fmt: skip
        self.up_projection = PatchDecode(p, dim, kw["out_channels"])
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        for m in (*self.down_projection.modules(), *self.up_projection.modules()):
            if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):  # DNA's InitWeights_He(1e-2)
                nn.init.kaiming_normal_(m.weight, a=1e-2)
                assert m.bias is not None  # every projection conv is built with a bias
                nn.init.zeros_(m.bias)
        self.embed_dim = dim
        self.feature_channels = [dim]
        self.min_input_multiple = p

    def num_tokens(self, input_shape: tuple[int, ...]) -> int:
        """Tokens for a spatial input shape (D, H, W) — the N of the `keep` mask."""
        return math.prod(int(s) // self.patch_size for s in input_shape[-3:])

    def encode(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> list[torch.Tensor]:
        self.check_input(x)
        t = self.down_projection(x)
        b, c, *grid = t.shape
        tokens = t.flatten(2).transpose(1, 2) + self.eva.pos_embed_for(tuple(grid))
        rope = self.eva.rope_for(tuple(grid), x.device)
        idx = None
        if keep is not None:
            idx = _keep_indices(keep, b, tokens.shape[1])
            tokens = tokens.gather(1, idx.unsqueeze(-1).expand(-1, -1, c))
            if rope is not None:
                rope = rope[idx]  # [B, n_keep, 2*head_dim]
        for blk in self.eva.blocks:
            tokens = blk(tokens, rope)
        tokens = self.eva.norm(tokens)
        if idx is not None:
            full = self.mask_token.to(tokens.dtype).expand(b, math.prod(grid), c).clone()
            tokens = full.scatter(1, idx.unsqueeze(-1).expand(-1, -1, c), tokens)
        return [tokens.transpose(1, 2).reshape(b, c, *grid)]

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.up_projection(feats[-1])

    def output_layers(self) -> list[nn.Module]:
        return [self.up_projection.decode[-1]]  # the last transposed conv: full resolution out


def _keep_indices(keep: torch.Tensor, b: int, n: int) -> torch.Tensor:
    """[B, N] bool → [B, n_keep] sorted indices; every sample must keep the same number."""
    if keep.dtype != torch.bool or tuple(keep.shape) != (b, n):
        raise ValueError(
            f"keep must be a bool mask of shape {(b, n)}, got {keep.dtype} {tuple(keep.shape)}"
        )
    counts = keep.sum(1)
    if not bool((counts == counts[0]).all()) or int(counts[0]) == 0:
        raise ValueError(
            f"keep must keep the same, non-zero number of tokens per sample: {counts.tolist()}"
        )
    return keep.nonzero()[:, 1].reshape(b, int(counts[0]))


def _resolve(size: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if size not in SIZES:
        raise ConfigError(f"unknown primus size {size!r}; known: {', '.join(SIZES)}")
    kw = {**DEFAULTS, **SIZES[size], **overrides}
    allowed = set(DEFAULTS) | set(SIZES["tiny"]) | {"in_channels", "out_channels"}
    unknown = set(kw) - allowed
    if unknown:
        raise ConfigError(f"unknown primus option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    kw["input_shape"] = [int(s) for s in kw["input_shape"]]
    if len(kw["input_shape"]) != 3 or any(s % kw["patch_size"] for s in kw["input_shape"]):
        raise ConfigError(
            f"primus input_shape {kw['input_shape']} must be 3 sizes, each a multiple of "
            f"patch_size {kw['patch_size']}"
        )
    if kw["embed_dim"] % kw["num_heads"]:
        raise ConfigError(f"primus embed_dim {kw['embed_dim']} must divide by num_heads")
    return kw
