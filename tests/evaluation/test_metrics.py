"""Case-level metrics against scikit-learn and scipy, including the undefined edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    mean_absolute_error,
    roc_auc_score,
)

from brainfoundry.errors import ConfigError
from brainfoundry.evaluation import METRICS, MetricWarning, higher_is_better
from brainfoundry.evaluation.metrics import (
    auprc,
    auroc,
    balanced_accuracy,
    interval_coverage,
    interval_score,
    interval_width,
    mae,
    median_interval_width,
    pearson_r,
)


def _cases(seed: int, m: int = 60, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, m)
    y[:2] = [0, 1]  # both classes present
    p = np.clip(0.3 * y + rng.random(m) * 0.7, 0, 1)
    return y, (np.round(p, 1) if ties else p)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_classification_matches_sklearn(seed, ties):
    y, p = _cases(seed, ties=ties)
    assert auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert auprc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)
    for t in (0.3, 0.5, 0.8):
        ref = balanced_accuracy_score(y, (p >= t).astype(int))
        assert balanced_accuracy(y, p, threshold=t) == pytest.approx(ref, abs=1e-12)


def test_classification_perfect_and_worst():
    y = np.array([0, 0, 1, 1, 1])
    good = np.array([0.1, 0.2, 0.7, 0.8, 0.9])
    assert auroc(y, good) == 1.0 and auprc(y, good) == 1.0 and balanced_accuracy(y, good) == 1.0
    bad = 1 - good
    assert auroc(y, bad) == 0.0 and balanced_accuracy(y, bad) == 0.0
    assert auprc(y, bad) == pytest.approx(average_precision_score(y, bad))
    flat = np.full(5, 0.5)  # all tied: chance
    assert auroc(y, flat) == 0.5
    assert auprc(y, flat) == pytest.approx(average_precision_score(y, flat)) == 0.6


@pytest.mark.parametrize("cls", [0, 1])
def test_single_class_is_nan_with_warning(cls):
    y = np.full(6, cls)
    p = np.linspace(0.1, 0.9, 6)
    with pytest.warns(MetricWarning, match="one class"):
        assert np.isnan(auroc(y, p))
    if cls == 0:
        with pytest.warns(MetricWarning, match="no positive"):
            assert np.isnan(auprc(y, p))
    else:  # positives only: precision is 1 at every threshold, as in scikit-learn
        assert auprc(y, p) == average_precision_score(y, p) == 1.0
    with pytest.warns(MetricWarning):
        ba = balanced_accuracy(y, p)
    with pytest.warns(UserWarning):  # sklearn warns too, and keeps the present class's recall
        assert ba == pytest.approx(balanced_accuracy_score(y, (p >= 0.5).astype(int)))


def test_labels_must_be_binary():
    with pytest.raises(ValueError, match="0/1"):
        auroc(np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="NaN"):
        auroc(np.array([0, 1, 1]), np.array([0.1, np.nan, 0.3]))
    with pytest.raises(ValueError, match="same shape"):
        mae(np.ones(3), np.ones(4))


@pytest.mark.parametrize("seed", range(4))
def test_regression_matches_sklearn_and_scipy(seed):
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 90, 80)
    pred = age + rng.normal(0, 8, 80)
    assert mae(age, pred) == pytest.approx(mean_absolute_error(age, pred), rel=1e-12)
    assert pearson_r(age, pred) == pytest.approx(pearsonr(age, pred)[0], abs=1e-12)
    assert pearson_r(age, -pred) == pytest.approx(pearsonr(age, -pred)[0], abs=1e-12)
    assert mae(age, age) == 0.0 and pearson_r(age, 2 * age + 3) == pytest.approx(1.0)


def test_pearson_constant_is_nan_with_warning():
    with pytest.warns(MetricWarning, match="constant"):
        assert np.isnan(pearson_r(np.array([1.0, 2.0, 3.0]), np.full(3, 50.0)))


def test_interval_metrics_hand_computed():
    truth = np.array([10.0, 20.0, 30.0, 40.0])
    lo = np.array([8.0, 21.0, 25.0, 40.0])
    hi = np.array([12.0, 25.0, 30.0, 41.0])
    # 10 in [8,12]; 20 not in [21,25]; 30 on the closed upper bound; 40 on the lower bound
    assert interval_coverage(truth, lo, hi) == 0.75
    assert interval_width(lo, hi) == pytest.approx((4 + 4 + 5 + 1) / 4)
    assert median_interval_width(lo, hi) == pytest.approx(4.0)
    # widths 4, 4, 5, 1 plus (2 / 0.05) x the one miss of 1 (20 is below 21): (14 + 40) / 4
    assert interval_score(truth, lo, hi) == pytest.approx((14 + 40) / 4)
    with pytest.raises(ValueError, match="lo <= hi"):
        interval_width(hi, lo)


def test_batched_rows_equal_one_by_one():
    y, p = _cases(3, ties=True)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(y), size=(7, len(y)))
    idx[:, :2] = [0, 1]
    for name in ("auroc", "auprc", "balanced_accuracy", "mae", "pearson_r"):
        fn = METRICS.get(name)
        rows = fn(y[idx], p[idx])
        assert np.allclose(rows, [fn(y[i], p[i]) for i in idx]), name


def test_registry_and_directions():
    assert {"auroc", "dice", "nsd", "hd95", "mae", "pearson_r"} <= set(METRICS.list())
    assert higher_is_better("AUROC") and higher_is_better("r") and not higher_is_better("mae")
    assert not higher_is_better("hd95")
    with pytest.raises(ConfigError, match="direction"):
        higher_is_better("kappa")


def test_every_registered_metric_documents_itself_and_has_a_direction():
    for name in METRICS.list():
        fn = METRICS.get(name)
        assert fn.__doc__ and len(fn.__doc__.strip()) > 40, name
        assert isinstance(higher_is_better(name), bool)
