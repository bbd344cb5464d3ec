"""Plain-torch EVA-02 transformer parts for the 3-D Primus backbone.

timm (and so DNA's Primus) cannot be imported beside this torch build, so the blocks are written
here with timm's / DNA's parameter names (`norm1`, `attn.q_proj`, `mlp.fc1_g`, `gamma_1`, ...):
nnssl Primus weights load by name. The 3-D rotary embedding reproduces timm's
`RotaryEmbeddingCat(in_pixels=False)` as DNA's `Eva` configures it (rope dim = head_dim / 1.5,
bands 10000^-(k/n), positions rescaled to the reference grid when the grid changes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

MLP_RATIO = 4 * 2 / 3  # EVA-02 / Primus SwiGLU ratio; `int(dim * MLP_RATIO)` exactly as DNA


def rope_tables(grid: tuple[int, ...], ref: tuple[int, ...], head_dim: int) -> torch.Tensor:
    """[N, 2*head_dim] table: sin then cos, each band repeated twice (timm's interleaved layout)."""
    rope_dim = round(head_dim / 1.5)
    if rope_dim * 1.5 != head_dim or rope_dim % 4:
        raise ValueError(f"head dim {head_dim} must be 1.5 x a multiple of 4 for 3-D RoPE")
    n_bands = rope_dim // 4
    bands = 1.0 / (10000.0 ** (torch.arange(n_bands, dtype=torch.float32) / n_bands))
    axes = [torch.arange(s, dtype=torch.float32) / s * r for s, r in zip(grid, ref)]
    pos = torch.stack(torch.meshgrid(axes, indexing="ij"), dim=-1)  # [*grid, 3]
    ang = (pos.unsqueeze(-1) * bands).reshape(-1, 3 * n_bands)  # [N, 3*n_bands]
    ang = ang.repeat_interleave(2, dim=-1)  # [N, head_dim]
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """x [B, H, N, D]; table [B, N, 2D] or [N, 2D]. Pairs (x0, x1) rotate as (-x1, x0)."""
    sin, cos = table.chunk(2, dim=-1)
    if sin.ndim == 3:
        sin, cos = sin.unsqueeze(1), cos.unsqueeze(1)
    rot = torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).reshape(x.shape)
    return x * cos + rot * sin


class Attention(nn.Module):
    """EVA attention: separate q/k/v projections (k without bias), optional inner LayerNorm."""

    def __init__(self, dim: int, num_heads: int, scale_attn_inner: bool):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=True)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=True)
        self.norm = nn.LayerNorm(dim) if scale_attn_inner else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, n, self.num_heads, -1).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        if rope is not None:
            q, k = apply_rope(q, rope).type_as(v), apply_rope(k, rope).type_as(v)
        x = F.scaled_dot_product_attention(q, k, v)
        x = x.transpose(1, 2).reshape(b, n, c)
        return self.proj(self.norm(x))


class SwiGLU(nn.Module):
    """Gated MLP with a LayerNorm before the output projection (EVA-02 `scale_mlp`)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1_g = nn.Linear(dim, hidden)
        self.fc1_x = nn.Linear(dim, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(F.silu(self.fc1_g(x)) * self.fc1_x(x)))


class Block(nn.Module):
    """Pre-norm block with optional layer scale (`gamma_*`) and stochastic depth."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        init_values: float | None,
        scale_attn_inner: bool,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, scale_attn_inner)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = SwiGLU(dim, int(dim * MLP_RATIO))
        scale = init_values is not None
        self.gamma_1 = nn.Parameter(cast(float, init_values) * torch.ones(dim)) if scale else None
        self.gamma_2 = nn.Parameter(cast(float, init_values) * torch.ones(dim)) if scale else None
        self.drop_path = drop_path

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_path == 0.0:
            return x
        keep = 1.0 - self.drop_path
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def forward(self, x: torch.Tensor, rope: torch.Tensor | None) -> torch.Tensor:
        a = self.attn(self.norm1(x), rope)
        x = x + self._drop(a if self.gamma_1 is None else self.gamma_1 * a)
        m = self.mlp(self.norm2(x))
        return x + self._drop(m if self.gamma_2 is None else self.gamma_2 * m)


class Eva(nn.Module):
    """Token transformer: learned absolute position embedding + RoPE + blocks + final norm."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        ref_grid: tuple[int, int, int],
        init_values: float | None,
        scale_attn_inner: bool,
        use_rope: bool,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        self.ref_grid = tuple(ref_grid)
        self.head_dim = dim // num_heads
        self.use_rope = use_rope
        self.pos_embed = nn.Parameter(torch.zeros(1, math.prod(ref_grid), dim))
        rates = [
            drop_path_rate * i / max(depth - 1, 1) for i in range(depth)
        ]  # stochastic depth ramp
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, init_values, scale_attn_inner, rates[i]) for i in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        with torch.no_grad():  # EVA's depth-scaled init of the residual projections
            for i, blk in enumerate(cast(Iterable[Block], self.blocks), start=1):
                blk.attn.proj.weight.div_(math.sqrt(2.0 * i))
                blk.mlp.fc2.weight.div_(math.sqrt(2.0 * i))

    def pos_embed_for(self, grid: tuple[int, ...]) -> torch.Tensor:
        """The position embedding on `grid`, trilinearly resized from the reference grid."""
        if tuple(grid) == self.ref_grid:
            return self.pos_embed
        c = self.pos_embed.shape[-1]
        pe = self.pos_embed.reshape(1, *self.ref_grid, c).permute(0, 4, 1, 2, 3)
        pe = F.interpolate(pe, size=tuple(grid), mode="trilinear", align_corners=False)
        return pe.permute(0, 2, 3, 4, 1).reshape(1, -1, c)

    def rope_for(self, grid: tuple[int, ...], device: torch.device) -> torch.Tensor | None:
        if not self.use_rope:
            return None
        return rope_tables(tuple(grid), self.ref_grid, self.head_dim).to(device)
