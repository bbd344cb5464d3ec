"""Bootstrap CIs, paired comparisons and the seed summary."""

from __future__ import annotations

import numpy as np
import pytest

from brainfoundry.evaluation import MetricWarning, bootstrap_ci, mean_sd_over_seeds
from brainfoundry.evaluation import paired_bootstrap_diff as paired
from brainfoundry.evaluation.metrics import auroc, interval_coverage, mae
from brainfoundry.evaluation.statistics import case_mean, resample_indices


def _classification(m=120, seed=0, signal=1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, m)
    score = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(0, 1, m))))
    return y, score


def test_ci_contains_estimate_and_is_deterministic():
    y, p = _classification()
    a = bootstrap_ci(auroc, y, p, n=500, seed=3)
    assert a.lo <= a.estimate <= a.hi and a.lo < a.hi
    assert a.estimate == auroc(y, p) and a.n_valid == 500
    assert bootstrap_ci(auroc, y, p, n=500, seed=3) == a
    assert bootstrap_ci(auroc, y, p, n=500, seed=4) != a
    assert set(a.to_dict()) == {"estimate", "lo", "hi", "alpha", "n_boot", "n_valid"}


def test_ci_narrows_with_more_cases_and_wider_with_smaller_alpha():
    widths = []
    for m in (40, 160, 640):
        rng = np.random.default_rng(m)
        age = rng.uniform(20, 90, m)
        pred = age + rng.normal(0, 8, m)
        ci = bootstrap_ci(mae, age, pred, n=1000)
        widths.append(ci.hi - ci.lo)
    assert widths[0] > widths[1] > widths[2]
    # width shrinks like 1/sqrt(m): quadrupling the cases about halves it
    assert 0.35 < widths[2] / widths[1] < 0.7
    ci95 = bootstrap_ci(mae, age, pred, n=1000)
    ci80 = bootstrap_ci(mae, age, pred, n=1000, alpha=0.2)
    assert ci80.lo > ci95.lo and ci80.hi < ci95.hi


def test_vectorised_equals_loop():
    y, p = _classification(m=50)
    vec = bootstrap_ci(auroc, y, p, n=300, seed=1)
    loop = bootstrap_ci(auroc, y, p, n=300, seed=1, batched=False)
    assert vec.lo == pytest.approx(loop.lo) and vec.hi == pytest.approx(loop.hi)


def test_ci_matches_a_plain_percentile_bootstrap():
    """The CI is the textbook percentile interval of the resampled statistic."""
    rng = np.random.default_rng(5)
    x = rng.exponential(2.0, 80)
    ci = bootstrap_ci(case_mean, x, n=2000, seed=0)
    idx = np.random.default_rng(0).integers(0, 80, size=(2000, 80))
    ref = np.percentile(x[idx].mean(1), [2.5, 97.5])
    assert (ci.lo, ci.hi) == pytest.approx(tuple(ref))
    assert ci.estimate == pytest.approx(x.mean())


def test_single_class_resamples_are_counted_not_crashing():
    y = np.array([1] + [0] * 9)
    p = np.linspace(0, 1, 10)
    with pytest.warns(MetricWarning, match="undefined in"):
        ci = bootstrap_ci(auroc, y, p, n=200)
    assert 0 < ci.n_valid < 200 and np.isfinite(ci.lo)
    strat = bootstrap_ci(auroc, y, p, n=200, strata=y)  # keeps one positive in every resample
    assert strat.n_valid == 200
    idx = resample_indices(10, 50, seed=0, strata=y)
    assert (y[idx].sum(1) == 1).all()


def test_regression_interval_metric_with_three_arrays():
    rng = np.random.default_rng(2)
    age = rng.uniform(20, 90, 200)
    pred = age + rng.normal(0, 5, 200)
    ci = bootstrap_ci(interval_coverage, age, pred - 9.8, pred + 9.8, n=500)
    assert 0.85 < ci.estimate < 1.0 and ci.lo <= ci.estimate <= ci.hi


def test_paired_difference_detects_a_real_difference():
    y, _ = _classification(m=150, seed=1)
    rng = np.random.default_rng(9)
    strong = y * 1.5 + rng.normal(0, 1, 150)
    weak = y * 0.3 + rng.normal(0, 1, 150)
    d = paired(auroc, strong, weak, y, n=1000, strata=y)
    assert d.diff == pytest.approx(auroc(y, strong) - auroc(y, weak))
    assert d.lo > 0 and d.p_value < 0.01
    rev = paired(auroc, weak, strong, y, n=1000, strata=y)
    assert rev.hi < 0 and rev.diff == pytest.approx(-d.diff)


def test_paired_difference_not_significant_under_the_null():
    """Two equally good models (independent noise of the same size): no difference found."""
    y, _ = _classification(m=150, seed=1)
    rng = np.random.default_rng(11)
    a = y + rng.normal(0, 1, 150)
    b = y + rng.normal(0, 1, 150)
    d = paired(auroc, a, b, y, n=1000, strata=y)
    assert d.lo < 0 < d.hi and d.p_value > 0.05
    same = paired(auroc, a, a, y, n=200)
    assert same.diff == 0.0 and same.p_value == 1.0


def test_paired_on_per_case_scores_and_tuples():
    rng = np.random.default_rng(3)
    dice_a = np.clip(rng.normal(0.8, 0.1, 60), 0, 1)
    dice_b = np.clip(dice_a - 0.05 + rng.normal(0, 0.02, 60), 0, 1)
    d = paired(case_mean, dice_a, dice_b, n=500)  # truth=None: per-case scores directly
    assert d.diff == pytest.approx(dice_a.mean() - dice_b.mean()) and d.p_value < 0.01
    age = rng.uniform(20, 90, 60)
    wide = (age - 10, age + 10)
    narrow = (age + 1, age + 2)
    c = paired(interval_coverage, wide, narrow, age, n=200)
    assert c.diff == 1.0


def test_mean_sd_over_seeds():
    out = mean_sd_over_seeds([0.70, 0.74, 0.78])
    assert out["mean"] == pytest.approx(0.74) and out["sd"] == pytest.approx(0.04)
    assert out["n"] == 3 and out["n_missing"] == 0
    one = mean_sd_over_seeds([0.5, np.nan])
    assert one["mean"] == 0.5 and np.isnan(one["sd"]) and one["n_missing"] == 1


def test_inputs_checked():
    with pytest.raises(ValueError, match="same cases"):
        bootstrap_ci(mae, np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(mae, np.ones(3), np.ones(3), alpha=1.5, n=10)
    with pytest.raises(ValueError, match="strata"):
        resample_indices(5, 10, strata=np.ones(4))


def test_t_interval_over_folds():
    from scipy import stats

    from brainfoundry.evaluation.statistics import t_interval

    r = t_interval([1.0, 2.0, 3.0, float("nan")])
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert r["mean"] == 2.0 and r["sd"] == 1.0 and r["n"] == 3 and r["n_missing"] == 1
    assert r["lo"] == pytest.approx(2 - half) and r["hi"] == pytest.approx(2 + half)
    one = t_interval([0.7])
    assert one["mean"] == 0.7 and one["lo"] is None and one["hi"] is None
