"""evaluation.scoring: one place maps a metric name to the predictions columns it reads, and
scores, bootstraps and pairs tables with it; the numbers are the metric functions' own."""

import numpy as np
import pandas as pd
import pytest

from brainfoundry.errors import ConfigError
from brainfoundry.evaluation import paired_bootstrap_diff, scoring
from brainfoundry.evaluation.metrics import auroc, interval_coverage, mae


def _tables(seed=0, n=40):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    cls = pd.DataFrame(
        {"case": range(n), "label": y, "prob": np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)}
    )
    age = rng.uniform(20, 80, n)
    pred = age + rng.normal(0, 8, n)
    reg = pd.DataFrame(
        {"case": range(n), "label": age, "pred": pred, "lo": pred - 15, "hi": pred + 15}
    )
    return cls, reg


def test_scores_are_the_metric_functions_on_the_right_columns():
    cls, reg = _tables()
    assert scoring.score("classification", "auc", cls) == pytest.approx(
        auroc(cls["label"], cls["prob"])
    )
    assert scoring.score("regression", "mae", reg) == pytest.approx(mae(reg["label"], reg["pred"]))
    cov = interval_coverage(reg["label"], reg["lo"], reg["hi"])
    assert scoring.score("regression", "interval_coverage", reg) == pytest.approx(cov)
    seg = pd.DataFrame({"case": [0, 1, 2], "dice": [0.2, 0.4, 0.9]})
    assert scoring.score("segmentation", "dice", seg) == pytest.approx(0.5)


def test_undefined_scores_are_none_and_wrong_metrics_are_errors():
    cls, reg = _tables()
    one_class = cls.assign(label=1)
    assert scoring.score("classification", "auroc", one_class) is None
    with pytest.raises(ConfigError, match="does not score a classification task"):
        scoring.score("classification", "dice", cls)
    with pytest.raises(ValueError, match="missing \\['lo', 'hi'\\]"):
        scoring.score("regression", "interval_width", reg.drop(columns=["lo", "hi"]))


def test_paired_difference_is_the_stratified_paired_bootstrap():
    cls, _ = _tables(1)
    other = cls.assign(prob=np.random.default_rng(5).random(len(cls)))
    got = scoring.paired_diff("classification", "auroc", cls, other, n_boot=300)
    y = cls["label"].to_numpy()
    want = paired_bootstrap_diff(
        auroc, cls["prob"].to_numpy(), other["prob"].to_numpy(), y, n=300, strata=y
    )
    assert got.diff == pytest.approx(want.diff) and (got.lo, got.hi) == pytest.approx(
        (want.lo, want.hi)
    )
