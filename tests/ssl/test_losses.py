import math

import pytest
import torch
import torch.nn.functional as F

from brainfoundry.ssl.corruption import corrupt
from brainfoundry.ssl.losses import info_nce, masked_mse
from brainfoundry.ssl.masking import block_mask, token_keep, tokens_to_voxels


def reference_nt_xent(za, zb, t):
    """SimCLR's NT-Xent written out term by term (Chen et al. 2020, eq. 1)."""
    z = F.normalize(torch.cat([za, zb]), dim=1).double()
    n = za.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = [math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i]
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / sum(sims))
    return total / (2 * n)


def test_info_nce_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    assert float(info_nce(za, zb, 0.2)) == pytest.approx(reference_nt_xent(za, zb, 0.2), rel=1e-5)


def test_info_nce_is_low_for_matching_views_and_checks_shapes():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    assert info_nce(z, z, 0.05) < info_nce(z, z.roll(1, 0), 0.05)
    with pytest.raises(ValueError, match="two \\[B, D\\]"):
        info_nce(z, z[:4])


def test_masked_mse_only_counts_masked_voxels():
    pred, target = torch.zeros(2, 1, 4, 4, 4), torch.ones(2, 1, 4, 4, 4)
    target[:, :, :2] = 5.0
    mask = torch.zeros(2, 4, 4, 4, dtype=torch.bool)
    mask[:, 2:] = True
    assert float(masked_mse(pred, target, mask)) == pytest.approx(1.0)


def test_block_mask_ratio_blocks_and_determinism():
    g = torch.Generator().manual_seed(3)
    m = block_mask((32, 32, 32), 8, 0.75, g)
    assert m.shape == (32, 32, 32) and float(m.float().mean()) == pytest.approx(0.75)
    cells = m.view(4, 8, 4, 8, 4, 8).permute(0, 2, 4, 1, 3, 5).reshape(64, -1)
    assert torch.all(cells.all(1) | ~cells.any(1)), "blocks are all-or-nothing"
    again = block_mask((32, 32, 32), 8, 0.75, torch.Generator().manual_seed(3))
    assert torch.equal(m, again)
    assert block_mask((30, 20, 9), 8, 0.5, g).shape == (30, 20, 9)
    with pytest.raises(ValueError):
        block_mask((8, 8, 8), 4, 1.0, g)


def test_token_keep_and_voxel_mask():
    keep = torch.stack([token_keep(8, 0.75, torch.Generator().manual_seed(s)) for s in (0, 1)])
    assert keep.sum(1).tolist() == [2, 2]
    vox = tokens_to_voxels(keep, (2, 2, 2), (4, 4, 4))
    assert vox.shape == (2, 8, 8, 8) and int(vox[0].sum()) == 2 * 64
    assert bool(vox[0, 0, 0, 0]) == bool(keep[0, 0])


def test_corruption_is_per_sample_and_keeps_background():
    x = torch.zeros(2, 1, 8, 8, 8)
    x[:, :, 2:6, 2:6, 2:6] = torch.randn(2, 1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    gens = [torch.Generator().manual_seed(s) for s in (10, 11)]
    y = corrupt(x, gens)
    assert torch.all(y[x == 0] == 0) and not torch.allclose(y, x)
    y0 = corrupt(x[:1], [torch.Generator().manual_seed(10)])
    assert torch.equal(y0, y[:1])
