"""nnssl checkpoints both ways, so nnU-Net v2 can fine-tune our weights and we can fine-tune theirs.

nnssl's format (MIC-DKFZ/nnssl, `adaptation_planning/adaptation_plan.py` and the trainer's
`save_checkpoint`): `checkpoint_final.pth`, a `torch.save` dict that loads with
`weights_only=True`, holding `network_weights` (the full DNA state dict) and
`nnssl_adaptation_plan` (architecture, pretraining plan, where the encoder / stem / input
projection / position embedding live), with the plan also as `adaptation_plan.json` beside it.
Our state dicts use DNA's names, so weights are copied as they are. We add our card under
`brainfoundry_card` so a round trip is exact; nnssl ignores unknown keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ...errors import ConfigError, InputError
from ...io.atomic import atomic_path, atomic_write_text
from ..card import ModelCard
from ..checkpoint import build_from_card, load_model, save_model
from ..loading import LoadReport, dedup, load_state
from .nnssl_plan import arch_from_plan, architecture_plans, pretrain_plan

CKPT = "checkpoint_final.pth"
PLAN = "adaptation_plan.json"

# where nnU-Net's loader finds the parts it transfers (DNA's own attributes)
KEYS: dict[str, dict[str, Any]] = {
    "resenc": {
        "key_to_encoder": "encoder.stages",
        "key_to_stem": "encoder.stem",
        "keys_to_in_proj": ["encoder.stem.convs.0.conv", "encoder.stem.convs.0.all_modules.0"],
        "key_to_lpe": None,
    },
    "primus": {
        "key_to_encoder": "eva",
        "key_to_stem": "down_projection",
        "keys_to_in_proj": ["down_projection.proj"],
        "key_to_lpe": "eva.pos_embed",
    },
}


def export_nnssl(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write `out_dir/checkpoint_final.pth` + `out_dir/adaptation_plan.json`; returns the .pth."""
    model, card, _ = load_model(run_dir, strict=True)
    name = card.arch["name"]
    if name not in KEYS:
        raise ConfigError(f"{run_dir}: cannot export a {name!r} backbone to nnssl")
    kw = card.arch["kwargs"]
    if name == "primus":
        patch = list(kw["input_shape"])  # nnssl sizes Primus' position embedding from it
    else:
        patch = list(card.patch_size or [160, 160, 160])
    recommended = list(card.extra.get("recommended_downstream_patchsize", [160, 160, 160]))
    plan = {
        "architecture_plans": architecture_plans(card.arch),
        "pretrain_plan": pretrain_plan(card, patch),
        "pretrain_num_input_channels": card.in_channels,
        "recommended_downstream_patchsize": recommended,
        **KEYS[name],
    }
    trainer = f"brainfoundry_{card.ssl_method or 'pretrain'}"
    ckpt = {
        "network_weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "nnssl_adaptation_plan": plan,
        "trainer_name": trainer,
        "brainfoundry_card": card.to_dict(),
    }
    out_dir = Path(out_dir)
    path = out_dir / CKPT
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    atomic_write_text(out_dir / PLAN, json.dumps({**plan, "trainer_name": trainer}, indent=4))
    return path


def read_nnssl(ckpt_path: str | Path) -> dict[str, Any]:
    """Load an nnssl checkpoint without unpickling code (`weights_only=True`)."""
    path = Path(ckpt_path)
    if path.is_dir():
        path = path / CKPT
    if not path.is_file():
        raise InputError(path, "no nnssl checkpoint here (expected checkpoint_final.pth)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad or unsafe pickle
        raise InputError(path, f"cannot be read as a weights-only torch checkpoint: {e}") from e
    missing = {"network_weights", "nnssl_adaptation_plan"} - set(
        ckpt if isinstance(ckpt, dict) else {}
    )
    if missing:
        raise InputError(
            path,
            f"is not an nnssl checkpoint: no {sorted(missing)} (a plain state dict or a "
            "Lightning .ckpt imports with --backbone FAMILY --size SIZE)",
        )
    return ckpt


def import_nnssl(
    ckpt_path: str | Path, out_run_dir: str | Path
) -> tuple[torch.nn.Module, ModelCard, LoadReport]:
    """Turn an nnssl checkpoint into a run folder (`model.safetensors` + `card.json`)."""
    ckpt = read_nnssl(ckpt_path)
    weights = ckpt["network_weights"]
    if "brainfoundry_card" in ckpt:
        card = ModelCard.from_dict(ckpt["brainfoundry_card"])
    else:
        card = card_from_plan(ckpt["nnssl_adaptation_plan"], weights, ckpt.get("trainer_name"))
    model = build_from_card(card)
    tensors, aliases = dedup(weights)
    report = load_state(model, tensors, aliases, model.in_proj_keys)
    save_model(out_run_dir, model, ModelCard.from_dict({**card.to_dict(), "arch": model.arch()}))
    return model, ModelCard.load(Path(out_run_dir) / "card.json"), report


def card_from_plan(plan: dict[str, Any], weights: dict, trainer: str | None) -> ModelCard:
    """A card for a checkpoint nnssl wrote: architecture, spacing, normalisation, patch size."""
    configs = plan["pretrain_plan"]["configurations"]
    config = next(iter(configs.values()))
    arch = arch_from_plan(plan, config, weights)
    schemes = list(config.get("normalization_schemes") or [])
    first = schemes[0] if schemes else ""
    scheme = "zscore" if "ZScore" in first else "none" if first == "NoNormalization" else "nnssl"
    norm: dict[str, Any] = {"scheme": scheme}
    norm |= {
        "nnssl_schemes": schemes,
        "foreground": bool(any(config.get("use_mask_for_norm") or [])),
    }
    return ModelCard(
        arch=arch,
        in_channels=int(plan["pretrain_num_input_channels"]),
        spacing=config.get("spacing"),
        normalization=norm,
        patch_size=config.get("patch_size"),
        ssl_method=trainer,
        data_summary={"dataset": plan["pretrain_plan"].get("dataset_name")},
        extra={
            "imported_from": "nnssl",
            "recommended_downstream_patchsize": plan.get("recommended_downstream_patchsize"),
        },
    )
