import torch

from brainfoundry.inference import gaussian_weights, sliding_window, tile_starts
from brainfoundry.models.backbones import create_backbone


def test_one_tile_equals_direct_forward():
    torch.manual_seed(0)
    net = create_backbone("resenc", 2, 3, "tiny").eval()
    x = torch.randn(2, 32, 32, 32)
    with torch.no_grad():
        direct = net(x[None])[0]
        sw = sliding_window(net, x, (32, 32, 32), overlap=0.5)
    assert torch.allclose(sw, direct, atol=1e-5)


def test_overlapping_tiles_average_to_the_input():
    # an identity "network": any weighted average of identical values is that value
    x = torch.randn(1, 40, 37, 50, generator=torch.Generator().manual_seed(0))
    out = sliding_window(lambda t: t * 1.0, x, (16, 16, 16), overlap=0.5, batch_size=3)
    assert out.shape == x.shape and torch.allclose(out, x, atol=1e-5)


def test_weights_sum_over_tiles():
    patch, size = (8, 8, 8), (20, 8, 8)
    starts = tile_starts(20, 8, 0.5)
    assert starts[0] == 0 and starts[-1] == 12 and len(starts) == 4
    w = gaussian_weights(patch)
    assert w.max() == 1.0 and w.min() > 0
    ones = torch.ones(1, *size)
    num = sliding_window(lambda t: torch.ones_like(t), ones, patch, overlap=0.5)
    assert torch.allclose(num, ones)  # normalised by exactly the summed weights
    expected = torch.zeros(size)
    for s in starts:
        expected[s : s + 8] += w
    got = sliding_window(lambda t: w.expand_as(t)[None, None].reshape(t.shape), ones, patch,
                         overlap=0.5, gaussian=False)  # fmt: skip
    counts = torch.zeros(size)
    for s in starts:
        counts[s : s + 8] += 1
    assert torch.allclose(got[0], (expected / counts))


def test_volume_smaller_than_patch_is_padded_and_cropped_back():
    x = torch.randn(1, 10, 12, 9, generator=torch.Generator().manual_seed(1))
    out = sliding_window(lambda t: t + 1, x, (16, 16, 16))
    assert out.shape == x.shape and torch.allclose(out, x + 1)


def test_monai_grid_matches_monai_sliding_window_inference():
    """Same tiles, same Gaussian weighting: the outputs agree to the weight maps' rounding
    (MONAI centres an even tile's Gaussian half a voxel off; ours is symmetric)."""
    from monai.inferers import sliding_window_inference

    torch.manual_seed(0)
    net = torch.nn.Conv3d(1, 2, 3, padding=1).eval()
    x = torch.randn(1, 50, 61, 47)

    def f(t):
        return torch.softmax(net(t), 1)

    with torch.no_grad():
        ours = sliding_window(f, x, (32, 32, 32), overlap=0.5, batch_size=2, grid="step")
        ref = sliding_window_inference(
            x[None], (32, 32, 32), 2, f, overlap=0.5, mode="gaussian", sigma_scale=0.125
        )[0]
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max()) < 5e-3


def test_mirroring_and_brain_only_tiles():
    torch.manual_seed(0)
    x = torch.zeros(1, 40, 40, 40)
    x[:, 4:20, 4:20, 4:20] = torch.randn(1, 16, 16, 16)  # "brain" in one corner only
    calls = []

    def f(t):
        calls.append(t.shape[0])
        p = torch.sigmoid(
            t.sum(1, keepdim=True) + torch.linspace(-1, 1, t.shape[2]).view(1, 1, -1, 1, 1)
        )
        return torch.cat([1 - p, p], 1)

    full = sliding_window(f, x, (16, 16, 16), overlap=0.5)
    n_full = sum(calls)
    calls.clear()
    fast = sliding_window(f, x, (16, 16, 16), overlap=0.5, skip_empty=True)
    assert sum(calls) < n_full  # background tiles were not run
    covered = x[0] != 0
    assert torch.allclose(fast[:, covered], full[:, covered], atol=0.2)
    far = (slice(None), slice(32, 40), slice(32, 40), slice(32, 40))  # only skipped tiles
    assert torch.all(fast[far][0] == 1) and torch.all(fast[far][1] == 0)  # background
    mirrored = sliding_window(f, x, (16, 16, 16), overlap=0.5, mirror=True)
    # f depends on position along axis 2, so mirroring averages it out: sym. along axis 2
    assert not torch.allclose(mirrored, full)
    assert torch.allclose(mirrored.sum(0), torch.ones_like(mirrored[0]), atol=1e-5)
