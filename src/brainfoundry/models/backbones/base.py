"""The one interface every backbone shares, so objectives, heads and fine-tuning never branch on
the architecture: `encode` → multi-scale features (deepest last), `decode` → full-resolution map.

A backbone also knows how to rebuild itself (`arch()`), which is what the checkpoint card stores.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError


class Backbone(nn.Module):
    """Base class: subclasses set the attributes below and implement `encode` / `decode`.

    Attributes:
        name: registry name (``"resenc"``, ``"primus"``).
        size: the size it was built from (a label; `arch()["kwargs"]` holds every value).
        in_channels / out_channels: input channels and channels of `decode`'s output.
        embed_dim: channels of the deepest feature (what pooled heads see).
        feature_channels: channels of each feature returned by `encode`.
        min_input_multiple: each spatial size must be a multiple of this.
        in_proj_keys: state-dict keys (without ``.weight``) of the convolutions that see the input
            channels; checkpoint loading adapts these when the channel count changes.
        dense: whether `decode` gives a full-resolution map (False: case-level features only,
            e.g. a 2-D backbone on projections); segmentation heads check it when built.
    """

    name: str = ""
    in_proj_keys: tuple[str, ...] = ()
    dense: bool = True

    def __init__(self, size: str, kwargs: dict[str, Any]):
        super().__init__()
        self.size = size
        self._arch_kwargs = copy.deepcopy(kwargs)
        self.in_channels: int = int(kwargs["in_channels"])
        self.out_channels: int = int(kwargs["out_channels"])
        self.embed_dim: int = 0
        self.feature_channels: list[int] = []
        self.min_input_multiple: int = 1

    def arch(self) -> dict[str, Any]:
        """JSON-able recipe; `create_backbone(**model.arch())` builds the same network."""
        return {
            "name": self.name,
            "size": self.size,
            "kwargs": copy.deepcopy(self._arch_kwargs),
        }

    def encode(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> list[torch.Tensor]:
        raise NotImplementedError

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def output_layers(self) -> list[nn.Module]:
        """The decoder's layers at the output's resolution; bf16 inference keeps them in fp32
        (`inference.precision.fp32_layers`): they place the boundary voxels, and with them in
        bf16 the lesion probability moved by more than the 0.01 that issue 12 allows
        (benchmarks/results/inference_precision.md). None by default: all of it in bf16."""
        return []

    def check_input(self, x: torch.Tensor) -> None:
        """Fail with the fix in the message rather than with a shape error deep inside a conv."""
        if x.ndim != 5:
            raise ValueError(
                f"{self.name}: expected input [B, C, D, H, W], got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.name}: built for {self.in_channels} input channel(s), got {x.shape[1]}; "
                "rebuild it or load the checkpoint with in_channels=..."
            )
        m = self.min_input_multiple
        if any(s % m for s in x.shape[2:]):
            raise ValueError(
                f"{self.name}: spatial size {tuple(x.shape[2:])} must be a multiple of {m}; "
                "pad or crop the patch"
            )


def reject_keep(name: str, keep: torch.Tensor | None) -> None:
    """CNNs see the whole grid: token dropping is meaningless, so say so instead of ignoring it."""
    if keep is not None:
        raise ConfigError(
            f"backbone {name!r} is a CNN and cannot drop tokens (encode(keep=...)); "
            "use a transformer backbone (primus) or mask the input voxels instead"
        )
