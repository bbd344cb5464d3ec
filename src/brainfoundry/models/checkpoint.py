"""Checkpoint = `model.safetensors` + `card.json` in a run folder; loading never unpickles.

The card says how to rebuild the backbone, so `load_model(run)` needs nothing else. Both files
are written atomically, weights first and the card last: a folder with a card has whole weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..errors import ConfigError, InputError
from ..io.atomic import atomic_path, atomic_write_text
from .backbones import Backbone, create_backbone
from .card import ModelCard
from .loading import LoadReport, dedup, load_state

WEIGHTS = "model.safetensors"
CARD = "card.json"


def unwrap(model: nn.Module) -> nn.Module:
    """The backbone inside DDP (`.module`) or `torch.compile` (`._orig_mod`) wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_model(run_dir: str | Path, model: nn.Module, card: ModelCard) -> Path:
    """Write `run_dir/model.safetensors` and `run_dir/card.json`; returns the weights path.

    Tensors shared under several names are stored once; the other names go in the file's
    metadata (`aliases`) so the full state dict can be rebuilt.
    """
    from safetensors.torch import save_file

    model = unwrap(model)
    if isinstance(model, Backbone) and model.arch() != card.arch:
        raise ValueError("card.arch does not describe this model; build the card with "
                         "ModelCard.for_model(model, ...)")  # fmt: skip
    run_dir = Path(run_dir)
    unique, aliases = dedup(model.state_dict())
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in unique.items()}
    meta = {"format": "pt", "brainfoundry": __version__, "aliases": json.dumps(aliases)}
    weights = run_dir / WEIGHTS
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    atomic_write_text(run_dir / CARD, card.to_json())
    return weights


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(unique tensors, aliases) from a safetensors file; a clear error if it is not one."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file is missing; was the run saved with save_model?")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
        aliases = json.loads(meta.get("aliases", "{}"))
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(path, f"is not a readable safetensors file ({e}); re-save it") from e
    return tensors, aliases


def load_model(
    run_dir: str | Path,
    *,
    in_channels: int | None = None,
    out_channels: int | None = None,
    strict: bool = False,
    prefix: str | None = None,
) -> tuple[Backbone, ModelCard, LoadReport]:
    """Rebuild the backbone from `card.json` and fill it from `model.safetensors`.

    in_channels: build the model for this many input channels; the input projection
        (`Backbone.in_proj_keys`) is adapted from the pretrained channels by cycling them and
        scaling by pretrained/new (see `loading.adapt_in_proj`), e.g. 1 channel → 4.
    out_channels: build the decoder's last layer for this many outputs (reported as a shape
        mismatch and left at its initialisation when it differs).
    prefix: load only the tensors named `prefix.*` (prefix stripped), e.g. "backbone" when the
        file holds a whole task model; the rest are listed as ignored.
    strict: raise `ConfigError` unless every tensor matched (adaptation allowed).

    Returns (model, the card as stored, report).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(run_dir, "run folder does not exist")
    card = ModelCard.load(run_dir / CARD)
    tensors, aliases = read_weights(run_dir / WEIGHTS)
    ignored: list[str] = []
    if prefix:
        p = prefix.rstrip(".") + "."
        ignored = [k for k in tensors if not k.startswith(p)]
        tensors = {k[len(p) :]: v for k, v in tensors.items() if k.startswith(p)}
        aliases = {a[len(p) :]: c[len(p) :] for a, c in aliases.items() if a.startswith(p)}
    model = build_from_card(card, in_channels=in_channels, out_channels=out_channels)
    report = load_state(model, tensors, aliases, model.in_proj_keys)
    report.ignored = ignored
    if strict and not report.ok:
        raise ConfigError(f"{run_dir}: weights do not match the model (strict):\n{report}")
    return model, card, report


def build_from_card(
    card: ModelCard, *, in_channels: int | None = None, out_channels: int | None = None
) -> Backbone:
    """A freshly initialised backbone as the card describes it (optionally re-channelled)."""
    arch: dict[str, Any] = json.loads(json.dumps(card.arch))  # a deep, JSON-clean copy
    try:
        return create_backbone(
            arch["name"],
            in_channels=in_channels,
            out_channels=out_channels,
            size=arch["size"],
            kwargs=arch["kwargs"],
        )
    except (KeyError, TypeError) as e:
        raise ConfigError(f"card.arch cannot build a backbone ({e!r}): {card.arch}") from e
