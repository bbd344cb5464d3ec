"""Jackknife+ intervals of the closed-form probe: marginal coverage at few-shot sizes, honest
flags when n is too small, and the same interval from the installed model as from the maths."""

import numpy as np
import pytest
import torch

from brainfoundry.models.backbones import create_backbone
from brainfoundry.tasks.calibration import jackknife_guarantee, jackknife_plus, ranks
from brainfoundry.tasks.heads import create_task_model
from brainfoundry.tasks.probe import jackknife_fits


def _draw(rng, n, n_feat=8, noise=1.0):
    """A few-shot regression: 3 informative features among `n_feat` (like pooled features)."""
    beta = np.zeros(n_feat)
    beta[:3] = [2.0, -1.5, 1.0]
    x = rng.normal(size=(n, n_feat))
    return x, x @ beta + rng.normal(0, noise, n)


def test_jackknife_plus_covers_95_percent_over_few_shot_draws():
    rng = np.random.default_rng(0)
    covered, widths, n_test = [], [], 200
    for _ in range(60):  # marginal coverage: over training draws and test cases
        x, y = _draw(rng, 24 + n_test)
        fits = jackknife_fits(x[:24], y[:24])
        lo, hi = jackknife_plus(x[24:] @ fits["w"].T + fits["b"], fits["resid"])
        covered.append(np.mean((lo <= y[24:]) & (y[24:] <= hi)))
        widths.append(np.median(hi - lo))
    assert np.mean(covered) >= 0.93
    # sharpness: far narrower than the label spread's 95% range (what a mean predictor needs)
    assert np.median(widths) < 0.6 * 2 * 1.96 * np.std(y)


def test_too_few_cases_are_flagged_not_pretended():
    assert ranks(24, 0.95) == (1, 24) and jackknife_guarantee(24)["finite_sample_valid"]
    assert jackknife_guarantee(24)["guaranteed_coverage"] == pytest.approx(0.90)
    small = jackknife_guarantee(16)  # ⌈0.95·17⌉ = 17 > 16: the upper rank does not exist
    assert not small["finite_sample_valid"] and small["guaranteed_coverage"] is None
    lo, hi = jackknife_plus(np.zeros((1, 16)), np.arange(16.0))
    assert (lo[0], hi[0]) == (-15.0, 15.0)  # the extremes, as flagged


def test_installed_jackknife_matches_the_maths():
    torch.manual_seed(0)
    bb = create_backbone("resenc", in_channels=1, size="mini", out_channels=1)
    model = create_task_model("regression", bb, y_mean=50.0, y_std=10.0, jackknife_n=20).eval()
    rng = np.random.default_rng(1)
    image = torch.randn(3, 1, 16, 16, 16)
    with torch.no_grad():
        feats = model.features(image, None).double().numpy()
    w, b, r = rng.normal(size=(20, feats.shape[1])) * 0.01, rng.normal(size=20), rng.random(20)
    model.set_jackknife(w, b, r)
    out = model.predict(image)
    lo, hi = jackknife_plus(feats @ w.T + b, r)
    assert np.allclose(out["lo"].numpy(), lo * 10 + 50, atol=1e-3)
    assert np.allclose(out["hi"].numpy(), hi * 10 + 50, atol=1e-3)
    # the buffers round-trip through a state dict into a model built with the same n
    twin = create_task_model("regression", bb, y_mean=50.0, y_std=10.0, jackknife_n=20)
    twin.load_state_dict(model.state_dict(), strict=True)
    assert torch.equal(twin.jk_resid, model.jk_resid)


def test_a_model_without_jackknife_saves_no_such_buffers():
    """Checkpoints from before jackknife+ (no jk_* tensors) load strictly into n = 0 models."""
    bb = create_backbone("resenc", in_channels=1, size="mini", out_channels=1)
    plain = create_task_model("regression", bb, y_mean=50.0, y_std=10.0)
    assert not any(k.startswith("jk_") for k in plain.state_dict())
    plain.set_jackknife(np.zeros((3, plain.head.in_features)), np.zeros(3), np.ones(3))
    assert {"jk_weight", "jk_bias", "jk_resid"} <= set(plain.state_dict())
