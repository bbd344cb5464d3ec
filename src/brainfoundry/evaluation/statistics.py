"""Uncertainty of evaluation numbers: bootstrap CIs over cases, paired model comparison, seeds.

Resampling is over cases (the unit a test set samples), with a fixed seed so every report
reproduces. Metrics marked `batched` (see `metrics.py`) score all resamples in one vectorised
call; others are called once per resample. `strata` resamples within groups (e.g. within each
class, as pROC does for ROC curves), which keeps every resample's class balance and so keeps
AUROC defined in small test sets.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .metrics import MetricWarning, batched

_CHUNK = 1 << 22  # elements per array in one vectorised call (~32 MB of float64)


@dataclass(frozen=True)
class BootstrapCI:
    """A point estimate with its percentile bootstrap interval at level 1 - alpha."""

    estimate: float
    lo: float
    hi: float
    alpha: float
    n_boot: int
    n_valid: int  # resamples where the metric was defined (finite)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedDiff:
    """metric(a) - metric(b) on the same cases, its bootstrap CI and two-sided p-value."""

    diff: float
    lo: float
    hi: float
    p_value: float
    alpha: float
    n_boot: int
    n_valid: int

    def to_dict(self) -> dict:
        return asdict(self)


@batched
def case_mean(values):
    """Mean over cases ignoring NaN: the aggregate of per-case scores such as Dice."""
    return np.nanmean(np.asarray(values, dtype=np.float64), axis=-1)


def resample_indices(m: int, n: int, seed: int = 0, strata=None) -> np.ndarray:
    """`n` bootstrap resamples of `m` case indices, shape (n, m); within strata when given."""
    if m < 1:
        raise ValueError("bootstrap needs at least one case")
    rng = np.random.default_rng(seed)
    if strata is None:
        return rng.integers(0, m, size=(n, m))
    strata = np.asarray(strata)
    if strata.shape != (m,):
        raise ValueError(f"strata must hold one group per case ({m}), got shape {strata.shape}")
    parts = []
    for g in np.unique(strata):
        members = np.flatnonzero(strata == g)
        parts.append(members[rng.integers(0, members.size, size=(n, members.size))])
    return np.concatenate(parts, axis=1)


def _resampled(fn: Callable, arrays: Sequence[np.ndarray], idx: np.ndarray, vec: bool):
    """fn on every resample (rows of idx); undefined-metric warnings are counted, not shown."""
    out = np.empty(idx.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        if vec:
            rows = max(1, _CHUNK // max(1, idx.shape[1]))
            for s in range(0, idx.shape[0], rows):
                out[s : s + rows] = fn(*[a[idx[s : s + rows]] for a in arrays])
        else:
            for i, row in enumerate(idx):
                out[i] = fn(*[a[row] for a in arrays])
    return out


def _check(arrays: Sequence) -> list[np.ndarray]:
    arrays = [np.asarray(a) for a in arrays]
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"all arrays must hold the same cases, got lengths {sorted(lengths)}")
    return arrays


def percentile_ci(values: np.ndarray, alpha: float, what: str) -> tuple[float, float, int]:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    ok = values[np.isfinite(values)]
    if ok.size < values.size:
        warnings.warn(
            f"{what}: metric undefined in {values.size - ok.size} of {values.size} resamples "
            "(e.g. one class only); the CI uses the rest. Stratify by label to avoid this.",
            MetricWarning,
            stacklevel=3,
        )
    if ok.size == 0:
        return float("nan"), float("nan"), 0
    lo, hi = np.percentile(ok, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi), int(ok.size)


def bootstrap_ci(
    metric_fn: Callable,
    *arrays,
    n: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    strata=None,
    batched: bool | None = None,
) -> BootstrapCI:
    """Percentile bootstrap CI of `metric_fn(*arrays)` over cases (axis 0 of every array).

    `batched=None` reads `metric_fn.batched`; pass True for your own last-axis function.
    """
    arrays = tuple(_check(arrays))
    vec = getattr(metric_fn, "batched", False) if batched is None else batched
    estimate = float(metric_fn(*arrays))
    idx = resample_indices(len(arrays[0]), n, seed, strata)
    stats = _resampled(metric_fn, arrays, idx, vec)
    lo, hi, n_valid = percentile_ci(stats, alpha, "bootstrap_ci")
    return BootstrapCI(estimate, lo, hi, alpha, n, n_valid)


def paired_bootstrap_diff(
    metric_fn: Callable,
    a_pred,
    b_pred,
    truth=None,
    *,
    n: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    strata=None,
    batched: bool | None = None,
) -> PairedDiff:
    """Difference metric(truth, a) - metric(truth, b) of two models on the same cases.

    Both models are scored on the same resampled cases, so case difficulty cancels. A
    prediction may be a tuple of arrays (e.g. `(lo, hi)` for interval coverage); with
    `truth=None` the metric is called on the prediction alone (e.g. `case_mean` of per-case
    Dice). The two-sided p-value is 2 x the smaller bootstrap tail beyond 0, with the +1
    correction so it is never reported as exactly 0 from finitely many resamples.
    """
    point, stats = paired_resamples(
        metric_fn, a_pred, b_pred, truth, n=n, seed=seed, strata=strata, batched=batched
    )
    lo, hi, n_valid = percentile_ci(stats, alpha, "paired_bootstrap_diff")
    return PairedDiff(point, lo, hi, p_value(stats), alpha, n, n_valid)


def paired_resamples(
    metric_fn: Callable, a_pred, b_pred, truth=None, *, n: int = 2000, seed: int = 0,
    strata=None, batched: bool | None = None,
) -> tuple[float, np.ndarray]:  # fmt: skip
    """(point difference, its `n` case-resampled differences): `paired_bootstrap_diff`'s
    inputs, kept so that several seeds' resamples can be pooled hierarchically."""
    a = tuple(a_pred) if isinstance(a_pred, tuple) else (a_pred,)
    b = tuple(b_pred) if isinstance(b_pred, tuple) else (b_pred,)
    head = () if truth is None else (truth,)
    arrays = _check((*head, *a, *b))
    k, na = len(head), len(a)

    def diff(*xs):
        return metric_fn(*xs[:k], *xs[k : k + na]) - metric_fn(*xs[:k], *xs[k + na :])

    vec = getattr(metric_fn, "batched", False) if batched is None else batched
    idx = resample_indices(len(arrays[0]), n, seed, strata)
    return float(diff(*arrays)), _resampled(diff, arrays, idx, vec)


def p_value(stats: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "no difference": 2 x the smaller tail, +1 corrected."""
    ok = stats[np.isfinite(stats)]
    if not ok.size:
        return float("nan")
    tail = min((ok <= 0).sum(), (ok >= 0).sum())
    return float(min(1.0, 2.0 * (tail + 1) / (ok.size + 1)))


def mean_sd_over_seeds(values) -> dict[str, float | int]:
    """Mean and sample sd (ddof=1) of one metric over fine-tuning seeds.

    NaN values (runs where the metric was undefined) are left out and counted in `n_missing`;
    sd is NaN for a single seed, where spread cannot be estimated.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = v[np.isfinite(v)]
    mean = float(ok.mean()) if ok.size else float("nan")
    sd = float(ok.std(ddof=1)) if ok.size > 1 else float("nan")
    return {"mean": mean, "sd": sd, "n": int(ok.size), "n_missing": int(v.size - ok.size)}


def hierarchical_paired_diff(
    diffs_per_group: Sequence[np.ndarray], points: Sequence[float], *, alpha: float = 0.05,
    seed: int = 0,
) -> PairedDiff:  # fmt: skip
    """Two-level bootstrap of a mean paired difference over groups (fine-tuning seeds): each
    resample draws groups with replacement, then one case-level resample within each drawn
    group (`diffs_per_group[g]` holds that group's paired-bootstrap differences, one per
    case resample), and averages. So the CI carries the seed-to-seed spread as well as the
    test cases'; with one group it is that group's paired bootstrap."""
    if not diffs_per_group or len(diffs_per_group) != len(points):
        raise ValueError("one array of case-resampled differences and one point per group")
    g, n = len(diffs_per_group), min(len(d) for d in diffs_per_group)
    stack = np.stack([np.asarray(d, dtype=np.float64)[:n] for d in diffs_per_group])
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, g, size=(n, g)) if g > 1 else np.zeros((n, 1), dtype=int)
    cases = rng.integers(0, n, size=(n, g)) if g > 1 else np.arange(n)[:, None]
    stats = stack[groups, cases].mean(axis=1)
    lo, hi, n_valid = percentile_ci(stats, alpha, "hierarchical_paired_diff")
    return PairedDiff(float(np.mean(points)), lo, hi, p_value(stats), alpha, n, n_valid)


def t_interval(values, alpha: float = 0.05) -> dict[str, float | int | None]:
    """Mean and the Student-t interval mean ± t(1 - alpha/2, n-1) · sd / sqrt(n) of one
    metric over cross-validation folds (NaN folds, where it was undefined, are left out and
    counted). The folds' training sets overlap, so their scores are not independent and this
    interval is known to be somewhat narrow (Bengio & Grandvalet, JMLR 2004); it is the usual
    report, stated as such. None where it cannot be estimated (fewer than two folds)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64).ravel()
    ok = v[np.isfinite(v)]
    n = int(ok.size)
    mean = float(ok.mean()) if n else None
    sd = float(ok.std(ddof=1)) if n > 1 else None
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / np.sqrt(n) if sd is not None else None
    return {
        "mean": mean,
        "sd": sd,
        "lo": None if half is None or mean is None else mean - half,
        "hi": None if half is None or mean is None else mean + half,
        "n": n,
        "n_missing": int(v.size - n),
        "alpha": alpha,
    }
