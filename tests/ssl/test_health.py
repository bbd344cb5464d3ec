"""The health metrics against their written-out formulas and on constructed cases, the
objectives' health embeddings, and the online probe's leave-pair-out AUROC against refits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from brainfoundry.models.backbones import create_backbone
from brainfoundry.ssl import create_objective
from brainfoundry.ssl.health import (
    alignment,
    effective_rank,
    embedding_health,
    normalized_std,
    pair_health,
    uniformity,
    zero_variance_fraction,
)
from brainfoundry.ssl.monitor import Monitor, batch_health
from brainfoundry.ssl.online_probe import hat_matrix, leave_pair_out_auroc


def _gaussian(n, d, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_effective_rank_is_the_entropy_of_the_normalised_singular_values():
    z = _gaussian(6, 4) * torch.tensor([3.0, 1.0, 0.5, 0.1])
    s = np.linalg.svd(z.numpy().astype(np.float64), compute_uv=False)
    p = s / s.sum()
    assert effective_rank(z) == pytest.approx(math.exp(-sum(q * math.log(q) for q in p)))


def test_constructed_cases_collapsed_and_isotropic():
    row = torch.tensor([[0.3, -1.2, 2.0, 0.7, 0.0, 5.0]])
    collapsed = row.repeat(16, 1)
    assert effective_rank(collapsed) == pytest.approx(1.0)
    assert zero_variance_fraction(collapsed) == 1.0
    assert normalized_std(collapsed) == pytest.approx(0.0, abs=1e-12)
    assert effective_rank(torch.zeros(4, 3)) == 0.0
    iso = _gaussian(2048, 16)
    assert effective_rank(iso) > 15.5  # of 16
    assert zero_variance_fraction(iso) == 0.0
    assert normalized_std(iso) == pytest.approx(1 / math.sqrt(16), rel=0.05)
    # rank counts directions, not scale; it is bounded by the number of rows
    assert effective_rank(100 * iso) == pytest.approx(effective_rank(iso))
    assert effective_rank(_gaussian(3, 64)) <= 3.0


def test_zero_variance_fraction_counts_dead_and_constant_dimensions():
    z = _gaussian(32, 8)
    z[:, 0] = 0.0  # dead
    z[:, 1] = 4.0  # constant
    z[:, 2] = 1e-7 * z[:, 3]  # negligible next to the others
    assert zero_variance_fraction(z) == pytest.approx(3 / 8)


def test_normalized_std_formula():
    z = _gaussian(10, 5).double()
    u = z / z.norm(dim=1, keepdim=True)
    want = np.mean([np.std(u[:, k].numpy()) for k in range(5)])
    assert normalized_std(z) == pytest.approx(want)


def test_alignment_and_uniformity_formulas():
    za, zb = _gaussian(7, 3, 1), _gaussian(7, 3, 2)
    a = za / za.norm(dim=1, keepdim=True)
    b = zb / zb.norm(dim=1, keepdim=True)
    want = sum(float(((a[i] - b[i]) ** 2).sum()) for i in range(7)) / 7
    assert alignment(za, zb) == pytest.approx(want)
    pairs = [(i, j) for i in range(7) for j in range(i + 1, 7)]
    pot = [math.exp(-2 * float(((a[i] - a[j]) ** 2).sum())) for i, j in pairs]
    assert uniformity(za) == pytest.approx(math.log(sum(pot) / len(pot)))
    # constructed cases: identical views align perfectly, antipodal ones worst (distance 2)
    assert alignment(za, 3 * za) == pytest.approx(0.0, abs=1e-12)
    assert alignment(za, -za) == pytest.approx(4.0)
    assert uniformity(za[:1].repeat(5, 1)) == pytest.approx(0.0, abs=1e-12)  # collapsed: log 1
    assert uniformity(_gaussian(512, 8)) < -2.0  # spread over the sphere
    logs = pair_health(za, zb)
    assert logs["health/uniformity"] == pytest.approx(0.5 * (uniformity(za) + uniformity(zb)))


def test_shapes_and_sizes_are_checked():
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        effective_rank(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="at least 2"):
        zero_variance_fraction(torch.ones(1, 4))
    with pytest.raises(ValueError, match="differ in shape"):
        alignment(torch.ones(3, 4), torch.ones(2, 4))
    assert set(embedding_health(_gaussian(4, 3))) == {
        "health/effective_rank",
        "health/zero_var_frac",
        "health/norm_std",
    }


def _batch(method, b=3, size=32):
    g = torch.Generator().manual_seed(0)
    c = 2 if method == "cross-modal" else 1
    x = torch.randn(b, c, size, size, size, generator=g)
    batch = {"image": x, "present": torch.ones(b, c, dtype=torch.bool),
             "meta": {"seed": torch.arange(b)}}  # fmt: skip
    if method in ("contrastive", "hybrid"):
        batch["views"] = torch.stack([x, x.flip(-1)], 1)
    return batch


@pytest.mark.parametrize("method", ["mae", "contrastive", "hybrid", "cross-modal"])
def test_every_objective_reports_its_health(method):
    torch.manual_seed(0)
    bb = create_backbone("resenc", in_channels=1, out_channels=1, size="tiny")
    obj = create_objective(method, bb, **({} if method == "contrastive" else {"block_size": 8}))
    h, pair = obj.health_embeddings(_batch(method))
    assert h.shape == (3, bb.embed_dim)
    assert (pair is None) == (method == "mae")
    if pair is not None:
        assert pair[0].shape == pair[1].shape == (3, 128)  # the projection the loss compares
    logs = batch_health(obj, _batch(method))
    assert all(math.isfinite(v) for v in logs.values())
    assert ("health/alignment" in logs) == (method != "mae")


def test_health_leaves_training_mode_and_random_stream_untouched():
    """Primus with drop-path draws from the global RNG in train mode: health runs in eval."""
    torch.manual_seed(0)
    bb = create_backbone("primus", in_channels=1, out_channels=1, size="tiny",
                         drop_path_rate=0.2)  # fmt: skip
    obj = create_objective("contrastive", bb).train()
    state = torch.get_rng_state()
    Monitor(1)(obj, _batch("contrastive"), step=1)
    assert obj.training and bb.training
    assert torch.equal(torch.get_rng_state(), state)


def test_monitor_schedule_and_batch_check():
    torch.manual_seed(0)
    obj = create_objective(
        "mae", create_backbone("resenc", in_channels=1, out_channels=1), block_size=8
    )
    every3 = Monitor(3)
    assert every3(obj, _batch("mae"), step=2) == {}
    assert "health/effective_rank" in every3(obj, _batch("mae"), step=3)
    assert Monitor(0)(obj, _batch("mae"), step=3) == {}
    from brainfoundry.errors import ConfigError

    with pytest.raises(ConfigError, match="monitor.health_every=0"):
        every3.check_batch(1)
    Monitor(0).check_batch(1)  # off: any batch
    with pytest.raises(ConfigError, match="health_every=-1"):
        Monitor(-1)


def test_leave_pair_out_auroc_matches_refits_without_each_pair():
    rng = np.random.default_rng(0)
    n, f, alpha = 10, 30, 3.0
    x = rng.normal(size=(n, f)) * rng.uniform(0.5, 3, f) + rng.normal(size=f)
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0], float)
    t = 2 * y - 1
    z = (x - x.mean(0)) / x.std(0)  # the probe standardises on every case, labels unused
    wins = []
    for i in np.flatnonzero(y == 1):
        for j in np.flatnonzero(y == 0):
            m = np.ones(n, bool)
            m[[i, j]] = False
            zm, tb = z[m].mean(0), t[m].mean()
            zc = z[m] - zm
            w = np.linalg.solve(zc.T @ zc + alpha * np.eye(f), zc.T @ (t[m] - tb))
            pi, pj = (z[i] - zm) @ w, (z[j] - zm) @ w
            wins.append(1.0 if pi > pj else 0.0)
    assert leave_pair_out_auroc(hat_matrix(x, alpha), y) == pytest.approx(np.mean(wins))


def test_leave_pair_out_auroc_reads_signal_and_not_noise():
    rng = np.random.default_rng(1)
    y = np.array([0, 1] * 6, float)
    noise = [leave_pair_out_auroc(hat_matrix(rng.normal(size=(12, 40)), 10.0), y)
             for _ in range(60)]  # fmt: skip
    assert 0.42 < np.mean(noise) < 0.58  # pooled leave-one-out outputs average about 0.2 here
    x = rng.normal(size=(12, 40))
    x[:, :3] += 2.0 * y[:, None]
    assert leave_pair_out_auroc(hat_matrix(x, 10.0), y) > 0.9
