"""The closed-form linear probe: leave-one-out predictions equal brute-force refits, weights
fold standardisation back correctly, and a probed head reads a signal the features carry."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from brainfoundry.tasks.heads import create_task_model
from brainfoundry.tasks.probe import probe_init, ridge_loo


def _ridge_fit(x, y, alpha):
    mu, sd = x.mean(0), x.std(0)
    z = (x - mu) / sd
    ybar = y.mean()
    w = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - ybar))
    return lambda q: ((q - mu) / sd) @ w + ybar


def test_leave_one_out_matches_brute_force_refits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5)) * [1, 10, 0.1, 3, 1] + [0, 5, -2, 0, 1]
    y = x @ [1.0, 0.2, -3.0, 0.0, 0.5] + rng.normal(0, 0.3, 12)
    alpha = 2.0
    fit = ridge_loo(x, y, alphas=[alpha])
    # the full-data fit is ordinary ridge on standardised features
    assert np.allclose(x @ fit["w"] + fit["b"], _ridge_fit(x, y, alpha)(x), atol=1e-8)
    # LOO: refit without case i (standardisation kept from all cases, as the formula assumes)
    mu, sd = x.mean(0), x.std(0)
    z = (x - mu) / sd
    for i in range(len(y)):
        m = np.arange(len(y)) != i
        zi, yi = z[m], y[m]
        ybar = yi.mean()
        zc = zi - zi.mean(0)
        w = np.linalg.solve(zc.T @ zc + alpha * np.eye(5), zc.T @ (yi - ybar))
        pred = (z[i] - zi.mean(0)) @ w + ybar
        assert abs(fit["loo"][i] - pred) < 0.35  # centring of z shifts it slightly; close
    assert fit["loo_mse"] < np.var(y)  # better than the mean


def test_leave_one_out_stays_exact_with_many_features_and_a_tiny_penalty():
    """p >> n and alpha << the kernel's eigenvalues, the probe's usual regime (thousands of
    pooled features, 16 cases): 1 - h cancels to rounding noise there; the refits decide."""
    rng = np.random.default_rng(0)
    n, p, alpha = 16, 3000, 1e-3
    x, y = rng.normal(size=(n, p)), np.sign(rng.normal(size=n))
    z = (x - x.mean(0)) / x.std(0)
    fit = ridge_loo(x, y, alphas=[alpha])
    for i in range(n):
        m = np.arange(n) != i
        zc = z[m] - z[m].mean(0)
        dual = np.linalg.solve(zc @ zc.T + alpha * np.eye(n - 1), y[m] - y[m].mean())
        pred = (z[i] - z[m].mean(0)) @ (zc.T @ dual) + y[m].mean()
        assert abs(fit["loo"][i] - pred) < 1e-2  # the old 1 - h form was off by up to 1.2


def test_alpha_is_chosen_by_loo_error():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 40))
    y_noise = rng.normal(size=10)
    strong = ridge_loo(x, y_noise)
    grid = [1e-2, 1e0, 1e2, 1e4]
    errs = [ridge_loo(x, y_noise, alphas=[a])["loo_mse"] for a in grid]
    assert ridge_loo(x, y_noise, alphas=grid)["alpha"] == grid[int(np.argmin(errs))]
    y_signal = x[:, 0] * 3
    weak = ridge_loo(x, y_signal)
    assert weak["alpha"] < strong["alpha"]


class _Toy(nn.Module):
    """A stand-in backbone whose one feature map is the input (pooled mean = the signal)."""

    def __init__(self):
        super().__init__()
        self.in_channels = 1
        self.embed_dim = 1
        self.feature_channels = [1]
        self.w = nn.Parameter(torch.ones(1))

    def encode(self, x):
        return [x * self.w]


class _DS:
    def __init__(self, values):
        self.items = values

    def __getitem__(self, i):
        v = float(self.items[i])
        return {"image": torch.full((1, 4, 4, 4), v), "present": torch.ones(1, dtype=torch.bool)}


def test_probe_sets_regression_and_classification_heads():
    torch.manual_seed(0)
    ages = np.array([20.0, 30, 40, 50, 60, 70, 80, 25])
    model = create_task_model("regression", _Toy(), y_mean=ages.mean(), y_std=ages.std())
    info = probe_init(model, _DS(ages / 10), ages, "regression")
    x = torch.tensor(ages / 10).float().view(-1, 1, 1, 1, 1).expand(-1, 1, 4, 4, 4)
    pred = model.predict(x)
    assert np.allclose(pred["pred"].numpy(), ages, atol=1.0)
    assert info["loo_mae"] < 2.0
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    clf = create_task_model("classification", _Toy())
    probe_init(clf, _DS(labels * 2.0 - 1 + np.linspace(0, 0.1, 8)), labels, "classification")
    x = torch.tensor([-1.0, 1.0]).view(-1, 1, 1, 1, 1).expand(-1, 1, 4, 4, 4)
    p = clf.predict(x)["prob"].numpy()
    assert p[0] < 0.3 and p[1] > 0.7


def test_zero_steps_is_a_pure_linear_probe(tmp_path, task_data):
    import json

    import pytest

    from brainfoundry.errors import ConfigError
    from brainfoundry.tasks.finetune import FinetuneConfig, finetune
    from brainfoundry.tasks.model_io import load_task_model

    args = ["task=brainage", "shots=6", "seeds=[0]", "train.steps=0", "data.spacing=[6,6,6]"]
    cfg = FinetuneConfig.load("cpu-tiny", None, args)
    finetune(cfg, task_data["brainage"] / "finetune", tmp_path / "o", log=lambda _: None)
    seed = tmp_path / "o" / "seed_0"
    best = json.loads((seed / "val_metrics.json").read_text())
    assert best["step"] == 0 and "calibration" in best  # the probe, then its interval
    assert not (seed / "checkpoints").exists()  # no training ran
    model, card, _ = load_task_model(seed)
    assert card.extra["probe"]["alpha"] > 0 and float(model.head.weight.detach().abs().sum()) > 0
    seg = FinetuneConfig.load("cpu-tiny", None, ["task=meningioma", "train.steps=0", "shots=3"])
    with pytest.raises(ConfigError, match="pure linear probe"):
        finetune(seg, task_data["meningioma"] / "finetune", tmp_path / "s", log=lambda _: None)


def test_platt_offset_splits_a_shrunk_score():
    """Ridge outputs shrunk towards the class prior (all > 0 here): a scale alone keeps every
    case on one side of 0.5; Platt's offset puts the threshold between the classes, and his
    smoothed targets keep the fit finite on separable data."""
    from brainfoundry.tasks.probe import platt

    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], float)
    r = 0.35 + 0.05 * (2 * y - 1) + np.linspace(-0.01, 0.01, 16)
    k, c = platt(r, y)
    p = 1 / (1 + np.exp(-(k * r + c)))
    assert np.isfinite([k, c]).all() and k > 0
    assert p[y == 1].min() > 0.5 > p[y == 0].max()
    assert (1 / (1 + np.exp(-k * r)) > 0.5).all()  # without the offset: one decision for all
    k_anti, _ = platt(-r, y)  # anti-correlated leave-one-out outputs never flip the ranking
    assert k_anti > 0
