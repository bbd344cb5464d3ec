"""Build a task model from `scratch` or a pretrained run, and reload a fine-tuned one.

A fine-tuned seed folder is a normal checkpoint (`model.safetensors` + `card.json`): the card's
`arch` rebuilds the backbone, `extra.task` the spec, `extra.head` the head's arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import ConfigError
from ..models.backbones import Backbone, create_backbone
from ..models.card import ModelCard
from ..models.checkpoint import CARD, WEIGHTS, build_from_card, load_model, read_weights
from ..models.loading import LoadReport
from ..run_config import BackboneConfig
from .heads import create_task_model
from .spec import TaskSpec

if TYPE_CHECKING:
    from ..models.channelwise import Channelwise


def decoder_channels(spec: TaskSpec) -> int | None:
    """Outputs of the backbone's decoder: the segmentation classes (2 when binary), unused
    otherwise."""
    return spec.n_classes if spec.type == "segmentation" else None


def build_backbone(
    init: str, spec: TaskSpec, model_cfg: BackboneConfig, seed: int, channels: str = "stem"
) -> tuple[nn.Module, ModelCard | None, LoadReport | None]:
    """(backbone, the init card or None, LoadReport or None) with task channels and outputs.

    `model_cfg` (family, size, kwargs) builds a scratch network; a pretrained init brings its
    own. channels "stem": one network whose first convolution sees every sequence (pretrained
    one-channel weights copied to each); "shared": every sequence through the same one-channel
    network (`models.channelwise`), as it was pretrained."""
    if channels not in ("stem", "shared"):
        raise ConfigError(f"model.channels {channels!r}: use stem or shared")
    torch.manual_seed(seed)  # initialisation of whatever is not loaded
    n_task = len(spec.channels)
    n_in = 1 if channels == "shared" else n_task
    if init == "scratch":
        out = decoder_channels(spec) or 1
        model = create_backbone(
            model_cfg.backbone, in_channels=n_in, out_channels=out, size=model_cfg.size,
            **model_cfg.kwargs,
        )  # fmt: skip
        return _wrap(model, channels, n_task), None, None
    if model_cfg.kwargs:
        raise ConfigError(
            f"model.kwargs {model_cfg.kwargs} shape a scratch network; --init {init} brings its own"
        )
    run = Path(init)
    if not (run / CARD).is_file():
        raise ConfigError(f"--init {init}: not a run folder with card.json (or use 'scratch')")
    card = ModelCard.load(run / CARD)
    if channels == "shared" and card.in_channels != 1:
        raise ConfigError(
            f"--init {init}: model.channels=shared needs a one-channel pretrained model "
            f"(this one has {card.in_channels}); use model.channels=stem"
        )
    model, card, report = load_model(run, in_channels=n_in, out_channels=decoder_channels(spec))
    return _wrap(model, channels, n_task), card, report


def _wrap(model: Backbone, channels: str, n_task: int) -> Backbone | Channelwise:
    from ..models.channelwise import Channelwise

    return Channelwise(model, n_task) if channels == "shared" else model


def report_dict(report: LoadReport | None) -> dict | None:
    """The LoadReport as JSON for the card (names, not tensors)."""
    if report is None:
        return None
    return {
        "ok": report.ok,
        "n_loaded": len(report.loaded),
        "loaded": report.loaded,
        "missing": report.missing,
        "unexpected": report.unexpected,
        "mismatched": {k: [list(a), list(b)] for k, (a, b) in report.mismatched.items()},
        "adapted": {k: [list(a), list(b)] for k, (a, b) in report.adapted.items()},
    }


def load_task_model(seed_dir: str | Path) -> tuple[nn.Module, ModelCard, TaskSpec]:
    """(task model in eval mode, card, spec) from a fine-tuned seed folder."""
    seed_dir = Path(seed_dir)
    card = ModelCard.load(seed_dir / CARD)
    if "task" not in card.extra:
        raise ConfigError(f"{seed_dir}: not a fine-tuned task model (card has no task)")
    spec = TaskSpec.from_dict(card.extra["task"], str(seed_dir / CARD))
    backbone: Backbone | Channelwise
    backbone = build_from_card(card)
    if card.extra.get("channels") == "shared":
        backbone = _wrap(backbone, "shared", card.in_channels)
    model = create_task_model(spec.head, backbone, **card.extra.get("head", {}))
    tensors, aliases = read_weights(seed_dir / WEIGHTS)
    for alias, canon in aliases.items():
        tensors[alias] = tensors[canon]
    model.load_state_dict(tensors, strict=True)
    return model.eval(), card, spec
