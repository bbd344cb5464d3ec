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
