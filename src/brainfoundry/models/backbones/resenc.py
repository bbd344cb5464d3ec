"""Residual-encoder U-Net (the nnU-Net / SSL3D standard CNN) from dynamic-network-architectures.

The encoder and decoder are DNA's own modules under DNA's own names (`encoder.stem`,
`encoder.stages`, `decoder`), so the state dict is key-for-key that of DNA's
`ResidualEncoderUNet`: export to nnssl / nnU-Net is a copy, not a mapping.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from ...errors import ConfigError
from . import BACKBONES
from .base import Backbone, reject_keep

# ResEnc-L is exactly nnssl's `get_res_enc_l` ("Revisiting MAE pre-training", arXiv 2410.23132).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {  # tests: a 32^3 forward+backward in tens of milliseconds
        "n_stages": 3,
        "features_per_stage": [8, 16, 32],
        "kernel_size": 3,
        "strides": [1, 2, 2],
        "n_blocks_per_stage": [1, 1, 1],
        "n_conv_per_stage_decoder": [1, 1],
    },
    "mini": {  # CPU benchmarks: whole 4 mm brains, ~0.3 s per step of 2 on two cores, 0.3M
        "n_stages": 4,
        "features_per_stage": [8, 16, 32, 64],
        "kernel_size": 3,
        "strides": [1, 2, 2, 2],
        "n_blocks_per_stage": [1, 1, 1, 1],
        "n_conv_per_stage_decoder": [1, 1, 1],
    },
    "small": {  # CPU demo, ~5M parameters
        "n_stages": 5,
        "features_per_stage": [16, 32, 64, 128, 128],
        "kernel_size": 3,
        "strides": [1, 2, 2, 2, 2],
        "n_blocks_per_stage": [1, 1, 2, 2, 2],
        "n_conv_per_stage_decoder": [1, 1, 1, 1],
    },
    "base": {  # single GPU, ~57M: ResEnc-L's widths with fewer blocks
        "n_stages": 6,
        "features_per_stage": [32, 64, 128, 256, 320, 320],
        "kernel_size": 3,
        "strides": [1, 2, 2, 2, 2, 2],
        "n_blocks_per_stage": [1, 2, 2, 3, 3, 3],
        "n_conv_per_stage_decoder": [1, 1, 1, 1, 1],
    },
    "L": {  # ResEnc-L, ~102M parameters
        "n_stages": 6,
        "features_per_stage": [32, 64, 128, 256, 320, 320],
        "kernel_size": 3,
        "strides": [1, 2, 2, 2, 2, 2],
        "n_blocks_per_stage": [1, 3, 4, 6, 6, 6],
        "n_conv_per_stage_decoder": [1, 1, 1, 1, 1],
    },
}

NORM_KWARGS = {"eps": 1e-5, "affine": True}
SMALL = 3  # voxels: an input under this along any axis skips CPU bf16 autocast (`Conv3d`)


class Conv3d(nn.Conv3d):
    """`nn.Conv3d` that runs in fp32 under CPU bf16 autocast when its input is tiny (under
    `SMALL` voxels along an axis: the deepest stage of a 32³ patch is 2³). There, oneDNN's
    bf16 weight gradient of a 3³ kernel returns values near 1e20 at random steps (torch
    2.13, AVX-512; also single-threaded). On the cpu-small preset: 5-6 bad steps in 80, none
    with this guard; only 2³ inputs fault (benchmarks/results/bf16_conv.md). Such a layer
    costs next to nothing in fp32. The parameters and their names are nn.Conv3d's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu") and min(x.shape[2:]) < SMALL:
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


NONLIN_KWARGS = {"inplace": True}


def dna_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """Our JSON kwargs → DNA `ResidualEncoderUNet` arguments (the fixed parts included)."""
    n = kw["n_stages"]
    return {
        "input_channels": kw["in_channels"],
        "n_stages": n,
        "features_per_stage": list(kw["features_per_stage"]),
        "conv_op": Conv3d,
        "kernel_sizes": [[kw["kernel_size"]] * 3 for _ in range(n)],
        "strides": [[s] * 3 for s in kw["strides"]],
        "n_blocks_per_stage": list(kw["n_blocks_per_stage"]),
        "num_classes": kw["out_channels"],
        "n_conv_per_stage_decoder": list(kw["n_conv_per_stage_decoder"]),
        "conv_bias": True,
        "norm_op": nn.InstanceNorm3d,
        "norm_op_kwargs": dict(NORM_KWARGS),
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": nn.LeakyReLU,
        "nonlin_kwargs": dict(NONLIN_KWARGS),
        "deep_supervision": False,
    }


@BACKBONES.register("resenc")
class ResEncUNet(Backbone):
    """DNA's ResidualEncoderUNet behind the backbone interface (InstanceNorm, LeakyReLU)."""

    name = "resenc"
    in_proj_keys = ("encoder.stem.convs.0.conv", "encoder.stem.convs.0.all_modules.0")

    def __init__(self, size: str = "tiny", **kwargs: Any):
        unet = residual_encoder_unet(self.name)
        kw = _resolve(size, kwargs)
        super().__init__(size, kw)
        net = unet(**dna_kwargs(kw))
        net.apply(net.initialize)  # nnU-Net's init: He(1e-2), last norm of each residual block = 0
        self.encoder = net.encoder
        self.decoder = net.decoder  # holds a reference to the encoder, as in DNA
        self.feature_channels = list(kw["features_per_stage"])
        self.embed_dim = self.feature_channels[-1]
        mult = 1
        for s in kw["strides"]:
            mult *= s
        self.min_input_multiple = mult

    def encode(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> list[torch.Tensor]:
        reject_keep(self.name, keep)
        self.check_input(x)
        return list(self.encoder(x))

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.decoder(feats)

    def output_layers(self) -> list[nn.Module]:
        return unet_output_layers(getattr(self, "decoder", None))


def unet_output_layers(decoder: nn.Module | None) -> list[nn.Module]:
    """A DNA residual U-Net's decoder layers at the output's resolution: the last upsampling,
    the last decoder stage and the output convolution (none without a decoder). The encoder's
    full-resolution stages stay in bf16: keeping them in fp32 too took bf16 from 1.60x to 1.12x
    fp32's speed per case with no better agreement (benchmarks/results/inference_precision.md)."""
    if decoder is None:
        return []
    parts = cast("list[nn.ModuleList]", [decoder.transpconvs, decoder.stages, decoder.seg_layers])
    return [p[-1] for p in parts]


def residual_encoder_unet(family: str):
    """DNA's ResidualEncoderUNet class, or one line saying how to install it (resenc, cnn2d)."""
    try:
        from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet
    except ImportError as e:
        raise ConfigError(
            f"the {family} backbone needs dynamic-network-architectures: pip install "
            "'brainfoundry[resenc]' once torch and torchvision are installed (README: "
            "Install), or pip install --no-deps dynamic-network-architectures==0.4.4"
        ) from e
    return ResidualEncoderUNet


def _resolve(size: str, overrides: dict[str, Any]) -> dict[str, Any]:
    return unet_options("resenc", SIZES, size, overrides)


def unet_options(
    family: str, sizes: dict, size: str, overrides: dict[str, Any], extra: dict | None = None
) -> dict[str, Any]:
    """A DNA residual U-Net's options: the named size (or "custom": every option given) with
    `overrides`, checked; `extra` adds a family's own options with their defaults (cnn2d's
    view). One home for resenc and cnn2d."""
    if size not in sizes and size != "custom":
        known = ", ".join([*sizes, "custom"])
        raise ConfigError(f"unknown {family} size {size!r}; known: {known}")
    kw = {**(extra or {}), **sizes.get(size, {}), **overrides}
    allowed = set(sizes["tiny"]) | set(extra or {}) | {"in_channels", "out_channels"}
    unknown, absent = set(kw) - allowed, allowed - set(kw)
    if unknown:
        raise ConfigError(
            f"unknown {family} option(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    if absent:
        raise ConfigError(f"{family} size {size!r} needs option(s) {sorted(absent)}")
    n = kw["n_stages"]
    for key in ("features_per_stage", "strides", "n_blocks_per_stage"):
        if len(kw[key]) != n:
            raise ConfigError(f"{family} {key} needs {n} entries (n_stages), got {kw[key]}")
    if len(kw["n_conv_per_stage_decoder"]) != n - 1:
        raise ConfigError(f"{family} n_conv_per_stage_decoder needs {n - 1} entries")
    for key in ("features_per_stage", "strides", "n_blocks_per_stage", "n_conv_per_stage_decoder"):
        kw[key] = [int(v) for v in kw[key]]
    return kw
