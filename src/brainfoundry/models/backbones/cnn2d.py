"""`cnn2d`: a 2-D residual-encoder U-Net on slices or projections of the volume.

DNA's `ResidualEncoderUNet` with 2-D convolutions and instance norms (the resenc recipe, one
dimension fewer), behind the 3-D interface of `views.View2D`: `view`, `plane` and `image_size`
are kwargs like the widths, so the card rebuilds the same model. Parameter names are DNA's
(`encoder.stem`, `encoder.stages`, `decoder`), as in resenc.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import BACKBONES
from .resenc import dna_kwargs, residual_encoder_unet, unet_options, unet_output_layers
from .views import VIEW_DEFAULTS, View2D, resolve_view

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {  # tests
        "n_stages": 3,
        "features_per_stage": [8, 16, 32],
        "kernel_size": 3,
        "strides": [1, 2, 2],
        "n_blocks_per_stage": [1, 1, 1],
        "n_conv_per_stage_decoder": [1, 1],
    },
    "mini": {  # CPU benchmarks (resenc:mini's widths in 2-D)
        "n_stages": 4,
        "features_per_stage": [8, 16, 32, 64],
        "kernel_size": 3,
        "strides": [1, 2, 2, 2],
        "n_blocks_per_stage": [1, 1, 1, 1],
        "n_conv_per_stage_decoder": [1, 1, 1],
    },
    "small": {
        "n_stages": 5,
        "features_per_stage": [16, 32, 64, 128, 128],
        "kernel_size": 3,
        "strides": [1, 2, 2, 2, 2],
        "n_blocks_per_stage": [1, 1, 2, 2, 2],
        "n_conv_per_stage_decoder": [1, 1, 1, 1],
    },
}


def dna2d_kwargs(kw: dict[str, Any], image_channels: int) -> dict[str, Any]:
    """resenc's DNA arguments with 2-D convolutions, norms, kernels and strides."""
    out = dna_kwargs({**kw, "in_channels": image_channels})
    n, k = kw["n_stages"], kw["kernel_size"]
    out.update(
        conv_op=nn.Conv2d,
        norm_op=nn.InstanceNorm2d,
        kernel_sizes=[[k, k] for _ in range(n)],
        strides=[[s, s] for s in kw["strides"]],
    )
    return out


@BACKBONES.register("cnn2d")
class CNN2D(View2D):
    """2-D ResEnc U-Net on every slice of a plane (`view: slices`) or on the projection image
    (`view: projections`, encoder only)."""

    name = "cnn2d"
    in_proj_keys = ("encoder.stem.convs.0.conv", "encoder.stem.convs.0.all_modules.0")

    def __init__(self, size: str = "tiny", **kwargs: Any):
        unet = residual_encoder_unet(self.name)
        kw = _resolve(size, kwargs)
        super().__init__(size, kw)
        mult, cum = 1, []
        for s in kw["strides"]:
            mult *= s
            cum.append(mult)
        self.cum_strides = cum
        self.setup_view(kw, mult)
        net = unet(**dna2d_kwargs(kw, self.image_channels))
        net.apply(net.initialize)
        self.encoder = net.encoder
        if self.dense:  # projections never decode: no decoder weights to carry
            self.decoder = net.decoder
        self.feature_channels = list(kw["features_per_stage"])
        self.embed_dim = self.feature_channels[-1]

    def encode2d(self, img: torch.Tensor, keep: torch.Tensor | None) -> list[torch.Tensor]:
        return list(self.encoder(img))

    def decode2d(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.decoder(feats)

    def output_layers(self) -> list[nn.Module]:
        return unet_output_layers(getattr(self, "decoder", None))


def _resolve(size: str, overrides: dict[str, Any]) -> dict[str, Any]:
    kw = unet_options("cnn2d", SIZES, size, overrides, VIEW_DEFAULTS)
    total = 1
    for s in kw["strides"]:
        total *= s
    return resolve_view("cnn2d", kw, total)
