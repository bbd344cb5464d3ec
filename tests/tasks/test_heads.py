import numpy as np
import pytest
import torch

from brainfoundry.engine import OptimConfig
from brainfoundry.engine.loop import build_optimizer
from brainfoundry.models.backbones import create_backbone
from brainfoundry.tasks.calibration import conformal_scale, interval
from brainfoundry.tasks.heads import create_task_model, gaussian_nll, soft_dice_loss
from brainfoundry.tasks.strategies import (
    StrategyConfig,
    encoder_layers,
    param_groups,
)


def test_gaussian_nll_matches_torch():
    g = torch.Generator().manual_seed(0)
    mean, target = torch.randn(16, generator=g), torch.randn(16, generator=g)
    log_var = torch.randn(16, generator=g)
    ref = torch.nn.GaussianNLLLoss(full=False, eps=0.0)(mean, target, log_var.exp())
    assert torch.allclose(gaussian_nll(mean, log_var, target), ref, atol=1e-6)


def test_soft_dice_loss_hand_case():
    # two voxels of foreground truth; prediction puts 0.5 on one of them and 0.5 on a third
    fg = torch.tensor([1.0, 1.0, 0.0, 0.0])
    p_fg = torch.tensor([0.5, 0.0, 0.5, 0.0])
    probs = torch.stack([1 - p_fg, p_fg])[None, :, :, None, None]
    onehot = torch.stack([1 - fg, fg])[None, :, :, None, None]
    # Dice_fg = 2*0.5 / (1.0 + 2) = 1/3
    assert soft_dice_loss(probs, onehot, smooth=0.0).item() == pytest.approx(2 / 3)
    assert soft_dice_loss(onehot, onehot).item() == pytest.approx(0.0, abs=1e-6)


def test_conformal_interval_reaches_nominal_coverage():
    rng = np.random.default_rng(0)
    n_cal, n_test, true_sd = 400, 20000, 3.0
    mu_cal, mu_test = rng.normal(50, 10, n_cal), rng.normal(50, 10, n_test)
    y_cal = mu_cal + rng.normal(0, true_sd, n_cal)
    y_test = mu_test + rng.normal(0, true_sd, n_test)
    sigma = 1.0  # the head underestimates sigma threefold
    cal = conformal_scale(y_cal, mu_cal, np.full(n_cal, sigma))
    assert cal["finite_sample_valid"] and cal["n"] == n_cal
    lo, hi = interval(mu_test, np.full(n_test, sigma), cal["scale"])
    coverage = np.mean((y_test >= lo) & (y_test <= hi))
    assert 0.93 <= coverage <= 0.97
    naive = np.mean(np.abs(y_test - mu_test) <= 1.96 * sigma)
    assert naive < 0.6  # the uncalibrated interval would have been far too narrow


def test_conformal_with_too_few_cases_says_so():
    cal = conformal_scale([1.0, 2.0, 3.0], [1.5, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert not cal["finite_sample_valid"] and cal["scale"] == pytest.approx(1.0)


def _batch(c=4, s=32, label=None):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, c, s, s, s, generator=g)
    return {"image": x, "present": torch.ones(2, c, dtype=torch.bool),
            "label": torch.tensor([0.0, 1.0]) if label is None else label}  # fmt: skip


@pytest.mark.parametrize("backbone", ["resenc", "primus"])
def test_linear_probe_leaves_encoder_unchanged(backbone):
    torch.manual_seed(0)
    model = create_task_model("classification", create_backbone(backbone, 4, 1, "tiny"))
    groups = param_groups(model, StrategyConfig(name="linear"))
    enc = set(encoder_layers(model.backbone))
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.head.weight.clone()
    opt = build_optimizer(model, OptimConfig(lr=1e-2), groups)
    for _ in range(3):
        opt.zero_grad()
        loss, _ = model(_batch())
        loss.backward()
        opt.step()
    after = model.backbone.state_dict()
    assert enc and all(torch.equal(before[k], after[k]) for k in enc)
    assert not torch.equal(head_before, model.head.weight)


def test_llrd_scales_decrease_towards_the_input():
    model = create_task_model("regression", create_backbone("resenc", 2, 1, "tiny"))
    groups = param_groups(model, StrategyConfig(name="llrd", layer_decay=0.5))
    scales = [g["lr_scale"] for g in groups]
    assert scales == sorted(scales, reverse=True) and scales[0] == 1.0
    assert scales[-1] == pytest.approx(0.5**4)  # stem of a 3-stage encoder: 4 layers below head
    frozen = param_groups(model, StrategyConfig(name="partial", freeze_layers=1))
    stem = [p for k, p in model.backbone.named_parameters() if k.startswith("encoder.stem")]
    assert stem and all(not p.requires_grad for p in stem)
    assert sum(len(g["params"]) for g in frozen) > 0


def test_heads_shapes_and_regression_interval():
    torch.manual_seed(0)
    reg = create_task_model(
        "regression", create_backbone("resenc", 4, 1, "tiny"), y_mean=50.0, y_std=10.0
    )
    loss, logs = reg(_batch(label=torch.tensor([40.0, 60.0])))
    assert torch.isfinite(loss) and "mae" in logs
    out = reg.predict(_batch()["image"])
    assert torch.allclose(out["hi"] - out["pred"], 1.959964 * out["sigma"])
    assert out["pred"].dtype == torch.float32 and not torch.equal(out["pred"], out["pred"].round())
    seg = create_task_model("segmentation", create_backbone("resenc", 4, 2, "tiny"))
    lab = (torch.rand(2, 1, 32, 32, 32, generator=torch.Generator().manual_seed(2)) > 0.9).long()
    loss, logs = seg(_batch(label=lab))
    assert torch.isfinite(loss) and {"ce", "dice_loss"} <= set(logs)
    assert seg.predict(_batch()["image"])["probs"].shape == (2, 2, 32, 32, 32)
