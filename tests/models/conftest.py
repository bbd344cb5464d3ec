"""Tiny backbones on 32^3 inputs, seeded, so model tests run in seconds on a CPU."""

from __future__ import annotations

import pytest
import torch

from brainfoundry.models.backbones import create_backbone
from brainfoundry.models.card import ModelCard
from brainfoundry.models.checkpoint import save_model


def tiny(name: str, in_channels: int = 1, out_channels: int = 1, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return create_backbone(name, in_channels, out_channels, "tiny", **kw)


@pytest.fixture(params=["resenc", "primus"])
def family(request) -> str:
    return request.param


@pytest.fixture
def saved_run(tmp_path, family):
    """A saved tiny run of each family: (run_dir, model, card)."""
    model = tiny(family, 1, 2)
    card = ModelCard.for_model(
        model, modalities=["t1"], spacing=[1.0, 1.0, 1.0], patch_size=[32, 32, 32], ssl_method="mae"
    )
    run = tmp_path / f"run_{family}"
    save_model(run, model, card)
    return run, model, card
