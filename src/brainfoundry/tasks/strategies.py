"""Fine-tuning strategies as parameter groups: which weights train, and at what learning rate.

- full: everything trains at the base learning rate.
- linear: the encoder is frozen (requires_grad False, so not even weight decay moves it); the
  head (and, for segmentation, the decoder) trains — a linear probe of the features.
- partial: the first `freeze_layers` encoder layers (stem = layer 0) are frozen.
- head_init "probe" (default): classification/regression heads start as a closed-form linear
  probe of the initial features (tasks/probe.py), whatever the strategy.
- llrd: layer-wise learning-rate decay (BEiT / ELECTRA): encoder layer i of L trains at
  lr · decay^(L - i), so early, generic layers move least; head and decoder at lr.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from torch import nn

from ..errors import ConfigError

_LAYER_RULES = (  # (pattern on a backbone parameter name, layer index or None = by group)
    (re.compile(r"^encoder\.stem\."), 0),
    (re.compile(r"^encoder\.stages\.(\d+)\."), None),
    (re.compile(r"^(down_projection|mask_token|eva\.pos_embed)"), 0),
    (re.compile(r"^eva\.blocks\.(\d+)\."), None),
)


@dataclass
class StrategyConfig:
    name: Literal["full", "linear", "partial", "llrd"] = "full"
    freeze_layers: int = 1  # partial: encoder layers frozen from the input side
    layer_decay: float = 0.75  # llrd: per-layer learning-rate factor
    # case-level heads: "probe" fits the head in closed form on frozen features first (LP-FT,
    # tasks/probe.py); "random" starts from a random head
    head_init: Literal["probe", "random"] = "probe"


def encoder_layer(name: str) -> int | None:
    """Encoder depth of a backbone parameter (0 = input side), or None outside the encoder.
    A transformer's final norm (`eva.norm`) counts as one layer past the last block; the
    `shared.` prefix of a `Channelwise` backbone is looked through."""
    name = name.removeprefix("shared.")
    for pattern, idx in _LAYER_RULES:
        m = pattern.match(name)
        if m:
            return idx if idx is not None else int(m.group(1)) + 1
    if name.startswith("eva."):
        return 10**6  # placeholder, resolved to "deepest" in encoder_layers
    return None


def encoder_layers(backbone: nn.Module) -> dict[str, int]:
    """{parameter name: encoder layer} for the encoder's parameters only."""
    raw = {k: encoder_layer(k) for k, _ in backbone.named_parameters()}
    layers = {k: v for k, v in raw.items() if v is not None}
    deepest = max((v for v in layers.values() if v < 10**6), default=-1) + 1
    return {k: min(v, deepest) for k, v in layers.items()}


def param_groups(model: nn.Module, cfg: StrategyConfig) -> list[dict]:
    """Freeze per the strategy and return optimizer groups carrying an `lr_scale`."""
    if cfg.name not in ("full", "linear", "partial", "llrd"):
        raise ConfigError(f"strategy.name {cfg.name!r}: use full, linear, partial or llrd")
    if not 0 < cfg.layer_decay <= 1:
        raise ConfigError(f"strategy.layer_decay must be in (0, 1], got {cfg.layer_decay}")
    named = dict(cast(nn.Module, model.backbone).named_parameters())
    layers = encoder_layers(cast(nn.Module, model.backbone))
    top = max(layers.values(), default=0) + 1  # the head's "layer"
    ids = {id(named[k]): v for k, v in layers.items()}
    groups: dict[float, list[nn.Parameter]] = {}
    for p in model.parameters():
        layer = ids.get(id(p))
        scale = 1.0
        if layer is not None:
            if cfg.name == "linear" or (cfg.name == "partial" and layer < cfg.freeze_layers):
                p.requires_grad_(False)
                continue
            if cfg.name == "llrd":
                scale = cfg.layer_decay ** (top - layer)
        p.requires_grad_(True)
        groups.setdefault(scale, []).append(p)
    return [{"params": ps, "lr_scale": s} for s, ps in sorted(groups.items(), reverse=True)]


def describe(model: nn.Module) -> dict:
    """Counts for the log and the card: trainable vs frozen parameters."""
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": int(train), "frozen_params": int(total - train)}
