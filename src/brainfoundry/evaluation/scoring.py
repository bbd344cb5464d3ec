"""Scoring a predictions table by metric name: the one place that knows which columns a metric
reads and how its cases are resampled. Validation, evaluation and the bench all score through
here, for the metrics a task spec lists, so a new metric is one registration plus one row.

Case-level metrics read columns of the table (`COLUMNS`); a segmentation table holds one column
per metric with the per-case values (computed where the masks are), scored by their mean.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .metrics import METRICS, canonical_name
from .statistics import (
    PairedDiff,
    bootstrap_ci,
    case_mean,
    hierarchical_paired_diff,
    p_value,
    paired_resamples,
    percentile_ci,
)

CATEGORICAL = ("classification", "multiclass")  # task types whose label is a class
PROBS = "prob_*"  # a multiclass table's class probabilities prob_0 .. prob_K-1, read as [n, K]


def class_columns(n_classes: int) -> list[str]:
    """The predictions-table columns of a multiclass head's class probabilities, in order."""
    return [f"prob_{k}" for k in range(int(n_classes))]


def _class_columns_of(df: pd.DataFrame) -> list[str]:
    n = sum(1 for c in df.columns if str(c).startswith("prob_") and str(c)[5:].isdigit())
    return class_columns(n)


# the predictions-table columns each case-level metric reads, truth first
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "classification": {
        "auroc": ("label", "prob"),
        "auprc": ("label", "prob"),
        "balanced_accuracy": ("label", "prob"),
    },
    "multiclass": {  # PROBS: every class probability column, [n, K]
        "auroc_ovr": ("label", "prob_*"),
        "f1_macro": ("label", "prob_*"),
        "accuracy": ("label", "prob_*"),
    },
    "regression": {
        "mae": ("label", "pred"),
        "pearson_r": ("label", "pred"),
        "interval_coverage": ("label", "lo", "hi"),
        "interval_width": ("lo", "hi"),
        "median_interval_width": ("lo", "hi"),
        "interval_score": ("label", "lo", "hi"),
    },
    "segmentation": {name: (name,) for name in ("dice", "nsd", "nsd_area", "hd95")},
}
RESAMPLING = {
    "classification": "cases, stratified by label",
    "multiclass": "cases, stratified by label",
    "regression": "cases",
    "segmentation": "cases (mean of per-case values)",
}


def metrics_for(task_type: str) -> list[str]:
    """Every metric a task type can be scored on, in the order reports list them."""
    if task_type not in COLUMNS:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {list(COLUMNS)}")
    return list(COLUMNS[task_type])


def check_metric(task_type: str, name: str) -> str:
    """The canonical name of `name`, or one ConfigError if `task_type` cannot be scored on it."""
    key = canonical_name(name)
    if key not in COLUMNS.get(task_type, {}):
        raise ConfigError(
            f"metric {name!r} does not score a {task_type} task; use {metrics_for(task_type)}"
        )
    return key


def columns(task_type: str, name: str) -> tuple[str, ...]:
    return COLUMNS[task_type][check_metric(task_type, name)]


def _function(task_type: str, name: str, threshold: float):
    """(metric over arrays, whether its columns start with the truth)."""
    key = check_metric(task_type, name)
    if task_type == "segmentation":
        return case_mean, False
    fn = METRICS.get(key)
    if key == "balanced_accuracy":
        fn = functools.partial(fn, threshold=threshold)
        fn.batched = True  # type: ignore[attr-defined]
    return fn, columns(task_type, key)[0] == "label"


def _arrays(task_type: str, name: str, df: pd.DataFrame) -> list[np.ndarray]:
    cols = columns(task_type, name)
    probs = _class_columns_of(df)
    missing = [c for c in cols if c not in df.columns and not (c == PROBS and probs)]
    if missing:
        raise ValueError(f"metric {name} needs predictions columns {list(cols)}; missing {missing}")
    dtype = int if task_type in CATEGORICAL else float
    out = []
    for c in cols:
        if c == PROBS:
            out.append(df[probs].to_numpy(float))
        else:
            out.append(df[c].to_numpy().astype(dtype if c == "label" else float))
    return out


def _strata(task_type: str, df: pd.DataFrame):
    return df["label"].to_numpy().astype(int) if task_type in CATEGORICAL else None


def score(task_type: str, name: str, df: pd.DataFrame, *, threshold: float = 0.5):
    """The metric on the whole table; undefined (one class only, constant input) is None."""
    fn, _ = _function(task_type, name, threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v = float(fn(*_arrays(task_type, name, df)))
    return v if math.isfinite(v) else None


def score_ci(
    task_type: str, name: str, df: pd.DataFrame, *, n_boot: int, alpha: float, seed: int,
    threshold: float = 0.5,
) -> dict:  # fmt: skip
    """{estimate, lo, hi, n_valid}: the percentile bootstrap CI over cases."""
    fn, _ = _function(task_type, name, threshold)
    r = bootstrap_ci(
        fn, *_arrays(task_type, name, df), n=n_boot, alpha=alpha, seed=seed,
        strata=_strata(task_type, df),
    )  # fmt: skip
    return {"estimate": r.estimate, "lo": r.lo, "hi": r.hi, "n_valid": r.n_valid}


def paired_diff(
    task_type: str, name: str, a: pd.DataFrame, b: pd.DataFrame, *, n_boot: int,
    threshold: float = 0.5,
) -> PairedDiff:  # fmt: skip
    """metric(a) - metric(b) on the same cases (rows aligned), by paired bootstrap."""
    return paired_diff_seeds(task_type, name, [(a, b)], n_boot=n_boot, threshold=threshold)


def paired_diff_seeds(
    task_type: str, name: str, pairs: list[tuple[pd.DataFrame, pd.DataFrame]], *, n_boot: int,
    threshold: float = 0.5,
) -> PairedDiff:  # fmt: skip
    """Mean over seeds of metric(a) - metric(b), each seed's tables rows-aligned on the same
    cases: a paired bootstrap over cases for one seed, a hierarchical one (seeds, then cases
    within seeds) for several (`statistics.hierarchical_paired_diff`)."""
    fn, has_truth = _function(task_type, name, threshold)
    points, draws = [], []
    for i, (a, b) in enumerate(pairs):
        xa, xb = _arrays(task_type, name, a), _arrays(task_type, name, b)
        truth = xa[0] if has_truth else None
        pa, pb = (xa[1:], xb[1:]) if has_truth else (xa, xb)
        point, stats = paired_resamples(
            fn, tuple(pa) if len(pa) > 1 else pa[0], tuple(pb) if len(pb) > 1 else pb[0], truth,
            n=n_boot, seed=i, strata=_strata(task_type, a),
        )  # fmt: skip
        points.append(point)
        draws.append(stats)
    if len(pairs) == 1:
        lo, hi, n_valid = percentile_ci(draws[0], 0.05, "paired_bootstrap_diff")
        return PairedDiff(points[0], lo, hi, p_value(draws[0]), 0.05, n_boot, n_valid)
    return hierarchical_paired_diff(draws, points)
