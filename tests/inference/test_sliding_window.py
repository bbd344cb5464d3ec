"""Sliding window against MONAI's `sliding_window_inference`, mirroring TTA and brain-only
tiles (the base behaviour is tested in tests/tasks/test_sliding_window.py)."""

from __future__ import annotations

import pytest
import torch

from brainfoundry.inference.sliding_window import sliding_window


def _net():
    torch.manual_seed(0)
    net = torch.nn.Conv3d(1, 2, 3, padding=1).eval()
    return lambda t: torch.softmax(net(t), 1)


@torch.no_grad()
def test_identical_to_monai_with_its_grid_and_weight_map():
    """Same tiles, same importance map: the same numbers up to float summation order."""
    from monai.data.utils import compute_importance_map
    from monai.inferers import sliding_window_inference

    f, x = _net(), torch.randn(1, 50, 61, 47)
    patch = (32, 32, 32)
    monai_w = compute_importance_map(patch, mode="gaussian", sigma_scale=0.125)
    ours = sliding_window(f, x, patch, overlap=0.5, batch_size=2, grid="step", weights=monai_w)
    ref = sliding_window_inference(
        x[None], patch, 2, f, overlap=0.5, mode="gaussian", sigma_scale=0.125
    )[0]
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max()) < 1e-5
    # our default Gaussian is centred on the tile (MONAI's sits half a voxel off): close
    sym = sliding_window(f, x, patch, overlap=0.5, batch_size=2, grid="step")
    assert 1e-6 < float((sym - ref).abs().max()) < 5e-3


def test_weights_must_match_the_patch():
    with pytest.raises(ValueError, match="weights"):
        sliding_window(lambda t: t, torch.zeros(1, 8, 8, 8), (4, 4, 4), weights=torch.ones(3, 3, 3))


def test_mirroring_and_brain_only_tiles():
    torch.manual_seed(0)
    x = torch.zeros(1, 40, 40, 40)
    x[:, 4:20, 4:20, 4:20] = torch.randn(1, 16, 16, 16)  # "brain" in one corner only
    calls = []

    def f(t):
        calls.append(t.shape[0])
        ramp = torch.linspace(-1, 1, t.shape[2]).view(1, 1, -1, 1, 1)
        p = torch.sigmoid(t.sum(1, keepdim=True) + ramp)  # depends on position along axis 2
        return torch.cat([1 - p, p], 1)

    full = sliding_window(f, x, (16, 16, 16), overlap=0.5)
    n_full = sum(calls)
    calls.clear()
    fast = sliding_window(f, x, (16, 16, 16), overlap=0.5, skip_empty=True)
    assert 0 < sum(calls) < n_full  # background tiles were not run
    covered = x[0] != 0
    assert torch.allclose(fast[:, covered], full[:, covered], atol=0.2)
    far = (slice(None), slice(32, 40), slice(32, 40), slice(32, 40))  # only skipped tiles
    assert torch.all(fast[far][0] == 1) and torch.all(fast[far][1] == 0)  # background
    calls.clear()
    mirrored = sliding_window(f, x, (16, 16, 16), overlap=0.5, mirror=True)
    assert sum(calls) == 8 * n_full  # all 8 flips of every tile
    assert not torch.allclose(mirrored, full)
    assert torch.allclose(mirrored.sum(0), torch.ones_like(mirrored[0]), atol=1e-5)
    # a flip-equivariant network is unchanged by mirroring
    same = sliding_window(lambda t: torch.cat([t, -t], 1), x, (16, 16, 16), mirror=True)
    plain = sliding_window(lambda t: torch.cat([t, -t], 1), x, (16, 16, 16))
    assert torch.allclose(same, plain, atol=1e-6)


def test_whole_volume_is_one_padded_call_cropped_back():
    from brainfoundry.inference import stride_divisor, whole_volume

    assert stride_divisor((48, 48, 48)) == 16 and stride_divisor((96, 96, 96)) == 32
    assert stride_divisor((128, 128, 128)) == 32 and stride_divisor((20, 32, 32)) == 4
    x = torch.randn(1, 37, 50, 41, generator=torch.Generator().manual_seed(0))
    shapes = []

    def f(t):
        shapes.append(tuple(t.shape))
        return torch.cat([t, 2 * t], 1)

    out = whole_volume(f, x, 16)
    assert shapes == [(1, 1, 48, 64, 48)]  # one call, padded to multiples of 16
    assert out.shape == (2, 37, 50, 41) and torch.equal(out[1], 2 * x[0])
    # a convolution differs from the sliding window only where tile borders cut its
    # neighbourhood (zero padding inside the volume)
    torch.manual_seed(0)
    net = torch.nn.Conv3d(1, 2, 3, padding=1).eval()
    with torch.no_grad():
        d = (whole_volume(net, x, 16) - sliding_window(net, x, (16, 16, 16))).abs()
    assert float((d < 1e-5).float().mean()) > 0.5 and float(d.mean()) < 0.02
