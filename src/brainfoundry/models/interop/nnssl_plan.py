"""Translate between our card/arch and nnssl's `AdaptationPlan` pieces (plain dicts, as nnssl
serialises them), in both directions. Kept apart from the file I/O in `nnssl.py`."""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from ..backbones import primus as primus_mod
from ..backbones import resenc as resenc_mod
from ..card import ModelCard

# DNA class paths as nnssl's DynamicArchitecturePlans.serialize() writes them
CONV = "torch.nn.modules.conv.Conv3d"
NORM = "torch.nn.modules.instancenorm.InstanceNorm3d"
NONLIN = "torch.nn.modules.activation.LeakyReLU"
_SHAPE_KEYS = ("n_stages", "features_per_stage", "kernel_size", "strides", "n_blocks_per_stage",
               "n_conv_per_stage_decoder")  # fmt: skip
_PRIMUS_KEYS = ("embed_dim", "depth", "num_heads", "patch_size", "init_values")


def _shape(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: kw[k] for k in _SHAPE_KEYS}


def named_primus(kw: dict[str, Any]) -> str | None:
    """'PrimusM' etc. when the kwargs are exactly that nnssl/DNA configuration."""
    for size in ("S", "B", "M", "L"):
        named = {**primus_mod.DEFAULTS, **primus_mod.SIZES[size]}
        same = all(kw[k] == named[k] for k in _PRIMUS_KEYS)
        if same and kw["use_rope"] and kw["scale_attn_inner"]:
            return f"Primus{size}"
    return None


def architecture_plans(arch: dict[str, Any]) -> dict[str, Any]:
    """nnssl `ArchitecturePlans.serialize()` for our arch: a size name, or DNA kwargs."""
    kw = arch["kwargs"]
    if arch["name"] == "primus":
        name = named_primus(kw)
        # nnssl knows only the four named Primus sizes; others keep their recipe in our card
        return {"arch_class_name": name or "Primus", "arch_kwargs": None,
                "arch_kwargs_requiring_import": None}  # fmt: skip
    if _shape(kw) == resenc_mod.SIZES["L"]:
        return {"arch_class_name": "ResEncL", "arch_kwargs": None,
                "arch_kwargs_requiring_import": None}  # fmt: skip
    n = kw["n_stages"]
    arch_kwargs = {
        "n_stages": n,
        "features_per_stage": list(kw["features_per_stage"]),
        "conv_op": CONV,
        "kernel_sizes": [[kw["kernel_size"]] * 3 for _ in range(n)],
        "strides": [[s] * 3 for s in kw["strides"]],
        "n_blocks_per_stage": list(kw["n_blocks_per_stage"]),
        "n_conv_per_stage_decoder": list(kw["n_conv_per_stage_decoder"]),
        "conv_bias": True,
        "norm_op": NORM,
        "norm_op_kwargs": dict(resenc_mod.NORM_KWARGS),
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": NONLIN,
        "nonlin_kwargs": dict(resenc_mod.NONLIN_KWARGS),
    }
    return {"arch_class_name": "ResidualEncoderUNet", "arch_kwargs": arch_kwargs,
            "arch_kwargs_requiring_import": ["conv_op", "norm_op", "nonlin"]}  # fmt: skip


def pretrain_plan(card: ModelCard, patch: list[int]) -> dict[str, Any]:
    """nnssl `Plan` + one `ConfigurationPlan`: spacing, normalisation and patch size."""
    spacing = list(card.spacing or [1.0, 1.0, 1.0])
    style = "onemmiso" if spacing == [1.0, 1.0, 1.0] else "median"
    c = card.in_channels
    norm = card.normalization
    scheme = norm.get("normalization", norm.get("scheme", "zscore"))
    if scheme == "quantile":
        raise ConfigError(
            "export --to nnssl: this run was pretrained on quantile-normalised scans, which "
            "nnU-Net/nnssl cannot reproduce; pretrain with preprocess normalization=zscore"
        )
    zscore = scheme == "zscore"
    config = {
        "data_identifier": f"brainfoundry_{style}",
        "preprocessor_name": "DefaultPreprocessor",
        "spacing_style": style,
        "normalization_schemes": ["ZScoreNormalization" if zscore else "NoNormalization"] * c,
        "use_mask_for_norm": [bool(card.normalization.get("foreground", False))] * c,
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {
            "is_seg": False,
            "order": 3,
            "order_z": 0,
            "force_separate_z": None,
        },  # fmt: skip
        "resampling_fn_mask": "resample_data_or_seg_to_shape",
        "resampling_fn_mask_kwargs": {
            "is_seg": False,
            "order": 1,
            "order_z": 0,
            "force_separate_z": None,
        },  # fmt: skip
        "spacing": spacing,
        "patch_size": [int(p) for p in patch],
    }
    return {
        "dataset_name": str(card.data_summary.get("dataset", "brainfoundry")),
        "plans_name": "brainfoundryPlans",
        "original_median_spacing_after_transp": spacing,
        "image_reader_writer": "NibabelReaderWriter",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {style: config},
        "experiment_planner_used": "brainfoundry",
    }


def arch_from_plan(plan: dict[str, Any], config: dict[str, Any], weights: dict) -> dict[str, Any]:
    """Our arch dict for an nnssl architecture; output channels are read from the weights."""
    ap = plan["architecture_plans"]
    name = ap["arch_class_name"].split(".")[-1]
    c_in = int(plan["pretrain_num_input_channels"])
    if name in ("PrimusS", "PrimusB", "PrimusM", "PrimusL"):
        ups = sorted(k for k in weights if k.startswith("up_projection.") and k.endswith("weight"))
        c_out = int(weights[ups[-1]].shape[1]) if ups else 1  # ConvTranspose: [in, out, ...]
        kw = {**primus_mod.DEFAULTS, **primus_mod.SIZES[name[-1]]}
        kw |= {
            "in_channels": c_in,
            "out_channels": c_out,
            "input_shape": list(config["patch_size"]),
        }
        return {"name": "primus", "size": name[-1], "kwargs": kw}
    seg = weights.get("decoder.seg_layers.0.weight")
    c_out = int(seg.shape[0]) if seg is not None else 1
    if name == "ResEncL":
        kw = {**resenc_mod.SIZES["L"], "in_channels": c_in, "out_channels": c_out}
        return {"name": "resenc", "size": "L", "kwargs": kw}
    if name == "ResidualEncoderUNet" and ap.get("arch_kwargs"):
        return {"name": "resenc", "size": "custom", "kwargs": _resenc_kwargs(ap["arch_kwargs"])
                | {"in_channels": c_in, "out_channels": c_out}}  # fmt: skip
    raise ConfigError(
        f"cannot import nnssl architecture {ap['arch_class_name']!r}: supported are ResEncL, "
        "ResidualEncoderUNet (3-D, InstanceNorm, LeakyReLU, isotropic kernels/strides) and "
        "PrimusS/B/M/L"
    )


def _resenc_kwargs(a: dict[str, Any]) -> dict[str, Any]:
    def cubic(v: Any) -> int:
        v = [v] * 3 if isinstance(v, int) else list(v)
        if len(v) != 3 or len(set(v)) != 1:
            raise ConfigError(f"cannot import anisotropic kernel/stride {v} from nnssl")
        return int(v[0])

    ops = (str(a.get("conv_op")), str(a.get("norm_op")), str(a.get("nonlin")))
    if not (ops[0].endswith("Conv3d") and ops[1].endswith("InstanceNorm3d")
            and ops[2].endswith("LeakyReLU") and a.get("conv_bias")):  # fmt: skip
        raise ConfigError(
            f"cannot import ResidualEncoderUNet with {ops}, conv_bias={a.get('conv_bias')}"
        )
    n = int(a["n_stages"])
    kernels = {cubic(k) for k in a["kernel_sizes"]}
    if len(kernels) != 1:
        raise ConfigError(f"cannot import per-stage kernel sizes {a['kernel_sizes']}")

    def per_stage(v: Any, m: int) -> list[int]:
        return [int(v)] * m if isinstance(v, int) else [int(x) for x in v]

    return {
        "n_stages": n,
        "features_per_stage": per_stage(a["features_per_stage"], n),
        "kernel_size": kernels.pop(),
        "strides": [cubic(s) for s in a["strides"]],
        "n_blocks_per_stage": per_stage(a["n_blocks_per_stage"], n),
        "n_conv_per_stage_decoder": per_stage(a["n_conv_per_stage_decoder"], n - 1),
    }
