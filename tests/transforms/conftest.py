"""Tiny deterministic volumes for the augmentation tests (32^3, two channels, a label)."""

from __future__ import annotations

import pytest
import torch


def blob_volume(batch: int = 2, channels: int = 2, size: int = 32) -> torch.Tensor:
    """Smooth off-centre ellipsoids with a gradient: asymmetric, so flips/rotations show."""
    r = torch.linspace(-1, 1, size)
    z, y, x = torch.meshgrid(r, r, r, indexing="ij")
    vols = []
    for b in range(batch):
        chans = []
        for c in range(channels):
            cz, cy, cx = 0.15 * (b + 1), -0.1 * (c + 1), 0.2
            d = ((z - cz) / 0.6) ** 2 + ((y - cy) / 0.5) ** 2 + ((x - cx) / 0.4) ** 2
            chans.append(torch.sigmoid(8 * (1 - d)) * (1.5 + 0.5 * x + 0.3 * c))
        vols.append(torch.stack(chans))
    return torch.stack(vols).float()


def make_batch(size: int = 32, channels: int = 2) -> dict:
    image = blob_volume(2, channels, size)
    return {
        "image": image,
        "present": torch.ones(2, channels, dtype=torch.bool),
        "label": (image[:, :1] > 1.0).long(),
    }


@pytest.fixture
def batch_factory():
    return make_batch


@pytest.fixture
def batch() -> dict:
    return make_batch()


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
