"""Backbone interface: shapes, arch round trip, position-embedding resize, token dropping."""

from __future__ import annotations

import json

import pytest
import torch

from brainfoundry.errors import ConfigError
from brainfoundry.models.backbones import BACKBONES, create_backbone

from .conftest import tiny


def test_registry_lists_both_families():
    assert {"resenc", "primus"} <= set(BACKBONES.list())
    with pytest.raises(ConfigError, match="unknown backbone"):
        create_backbone("unet9000", 1, 1)


@pytest.mark.parametrize("cin,cout", [(1, 1), (2, 3), (4, 2)])
def test_encode_decode_shapes(family, cin, cout):
    model = tiny(family, cin, cout)
    x = torch.randn(2, cin, 32, 32, 32)
    feats = model.encode(x)
    assert [f.shape[1] for f in feats] == model.feature_channels
    assert feats[-1].shape[1] == model.embed_dim
    assert all(f.shape[0] == 2 for f in feats)
    y = model.decode(feats)
    assert y.shape == (2, cout, 32, 32, 32)
    assert torch.equal(model(x), y)
    y.mean().backward()
    stem = dict(model.named_parameters())[f"{model.in_proj_keys[0]}.weight"]
    assert stem.grad is not None and stem.grad.abs().sum() > 0


def test_resenc_features_are_multiscale():
    feats = tiny("resenc").encode(torch.randn(1, 1, 32, 32, 32))
    assert [tuple(f.shape[2:]) for f in feats] == [(32,) * 3, (16,) * 3, (8,) * 3]


def test_input_checks_name_the_fix(family):
    model = tiny(family, 2, 1)
    with pytest.raises(ValueError, match="input channel"):
        model.encode(torch.randn(1, 1, 32, 32, 32))
    with pytest.raises(ValueError, match="multiple of"):
        model.encode(torch.randn(1, 2, 32, 32, 30))


def test_cnn_rejects_token_dropping():
    model = tiny("resenc")
    with pytest.raises(ConfigError, match="cannot drop tokens"):
        model.encode(torch.randn(1, 1, 32, 32, 32), keep=torch.ones(1, 8, dtype=torch.bool))


def test_arch_round_trip_is_exact_and_json(family):
    model = tiny(family, 3, 2, n_stages=3) if family == "resenc" else tiny(family, 3, 2, depth=1)
    arch = json.loads(json.dumps(model.arch()))
    assert set(arch) == {"name", "size", "kwargs"}
    torch.manual_seed(0)
    again = create_backbone(**arch)
    assert again.arch() == model.arch()
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


def test_unknown_option_is_a_config_error(family):
    with pytest.raises(ConfigError, match="unknown"):
        tiny(family, bogus=1)


def test_positional_embedding_resizes():
    model = tiny("primus").eval()
    assert model.eva.pos_embed.shape == (1, 64, 48)  # built for 32^3 with 8^3 patches
    pe = model.eva.pos_embed_for((4, 4, 4))
    assert pe is model.eva.pos_embed
    big = model.eva.pos_embed_for((6, 4, 8))
    assert big.shape == (1, 6 * 4 * 8, 48)
    # a constant embedding stays constant under trilinear resizing
    with torch.no_grad():
        model.eva.pos_embed.fill_(0.5)
    assert torch.allclose(model.eva.pos_embed_for((6, 4, 8)), torch.full_like(big, 0.5))
    y = model(torch.randn(1, 1, 48, 32, 64))
    assert y.shape == (1, 1, 48, 32, 64)
    assert model.num_tokens((48, 32, 64)) == 6 * 4 * 8


def test_token_dropping_all_kept_equals_full_encoding():
    model = tiny("primus").eval()
    x = torch.randn(2, 1, 32, 32, 32)
    n = model.num_tokens(x.shape[2:])
    full = model.encode(x)[0]
    kept = model.encode(x, keep=torch.ones(2, n, dtype=torch.bool))[0]
    torch.testing.assert_close(kept, full, rtol=0, atol=1e-6)


def test_token_dropping_fills_mask_token():
    model = tiny("primus").eval()
    with torch.no_grad():
        model.mask_token.fill_(7.0)
    x = torch.randn(2, 1, 32, 32, 32)
    g = torch.Generator().manual_seed(0)
    keep = torch.zeros(2, 64, dtype=torch.bool)
    for b in range(2):
        keep[b, torch.randperm(64, generator=g)[:16]] = True
    grid = model.encode(x, keep=keep)[0]
    tokens = grid.flatten(2).transpose(1, 2)  # [B, N, C]
    assert torch.all(tokens[~keep] == 7.0)
    assert not torch.any(tokens[keep] == 7.0)
    assert model.decode([grid]).shape == (2, 1, 32, 32, 32)
    with pytest.raises(ValueError, match="same, non-zero number"):
        keep[0, keep[0].nonzero()[0]] = False
        model.encode(x, keep=keep)


def test_large_presets_parameter_counts():
    with torch.device("meta"):
        resenc_l = create_backbone("resenc", 1, 1, "L")
        primus_m = create_backbone("primus", 1, 1, "M")
    n_resenc = sum(p.numel() for p in resenc_l.parameters())
    assert 101e6 < n_resenc < 103.5e6  # ResEnc-L ~102M
    n_primus = sum(p.numel() for p in primus_m.parameters())
    n_pos = primus_m.eva.pos_embed.numel()  # 20^3 tokens x 864 at the 160^3 preset
    assert n_pos == 8000 * 864
    assert 143e6 < n_primus - n_pos < 147e6  # transformer + patch embed/decode ~145M
    assert resenc_l.arch()["kwargs"]["n_blocks_per_stage"] == [1, 3, 4, 6, 6, 6]
