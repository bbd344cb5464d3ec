import torch

from brainfoundry.transforms import (
    Augmentation,
    AugmentConfig,
    always_config,
    augment_preset,
    build_augmentation,
)
from brainfoundry.transforms.linear import FusedLinear


def run(cfg: AugmentConfig, seed: int, make_batch) -> dict:
    return build_augmentation(cfg)(make_batch(40), torch.Generator().manual_seed(seed))


def test_same_seed_gives_identical_output(batch_factory):
    cfg = always_config((32, 32, 32))
    a, b = run(cfg, 7, batch_factory), run(cfg, 7, batch_factory)
    for key in ("image", "label", "present"):
        assert torch.equal(a[key], b[key]), key


def test_different_seeds_differ(batch_factory):
    cfg = always_config((32, 32, 32))
    assert not torch.equal(run(cfg, 1, batch_factory)["image"], run(cfg, 2, batch_factory)["image"])


def test_input_batch_is_never_modified(batch_factory):
    batch = batch_factory(40)
    before = {k: v.clone() for k, v in batch.items()}
    for cfg in (always_config((32, 32, 32)), always_config(None), augment_preset("none")):
        out = build_augmentation(cfg)(batch, torch.Generator().manual_seed(0))
        assert out is not batch
        for key, value in before.items():
            assert torch.equal(batch[key], value), key


def test_global_rng_is_not_used(batch_factory):
    cfg = always_config((32, 32, 32))
    torch.manual_seed(0)
    a = run(cfg, 3, batch_factory)
    torch.manual_seed(99)
    b = run(cfg, 3, batch_factory)
    assert torch.equal(a["image"], b["image"])


def test_every_preset_runs_and_keeps_shapes(batch):
    for name in ("none", "light", "nnunet", "default", "strong", "ssl"):
        cfg = augment_preset(name)
        out = build_augmentation(cfg)(batch, torch.Generator().manual_seed(0))
        assert out["image"].shape == (2, 2, 32, 32, 32), name
        assert torch.isfinite(out["image"]).all(), name


def test_fused_linear_chain_equals_running_each_transform(batch_factory):
    cfg = always_config((32, 32, 32))
    fused, plain = build_augmentation(cfg), Augmentation(cfg.transforms(), fuse=False)
    assert any(isinstance(s, FusedLinear) for s in fused.steps)
    a = fused(batch_factory(40), torch.Generator().manual_seed(5))
    b = plain(batch_factory(40), torch.Generator().manual_seed(5))
    torch.testing.assert_close(a["image"], b["image"], atol=1e-4, rtol=1e-4)
    assert torch.equal(a["label"], b["label"])
