"""Case-level metrics for classification and regression, and the metric registry.

Every metric is a plain function over arrays whose *last* axis holds the cases, so the same
function scores one test set (1-D arrays) or a whole stack of bootstrap resamples at once
(2-D arrays, one resample per row); such functions carry `fn.batched = True`, which
`statistics.bootstrap_ci` uses to vectorise. Argument order follows scikit-learn:
truth first (`label`), then the prediction. Segmentation metrics live in `segmentation.py`
and register into the same `METRICS`.

Undefined values (one class only, constant input) are NaN with a `MetricWarning`, never a crash
and never a silent fallback.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from ..errors import ConfigError
from ..registry import Registry

METRICS: Registry[float] = Registry("metric")

# Direction of each metric for ranking (True: higher is better).
HIGHER_IS_BETTER: dict[str, bool] = {
    "auroc": True,
    "auprc": True,
    "balanced_accuracy": True,
    "auroc_ovr": True,
    "f1_macro": True,
    "accuracy": True,
    "dice": True,
    "nsd": True,
    "nsd_area": True,
    "hd95": False,
    "mae": False,
    "pearson_r": True,
    "interval_coverage": True,
    "interval_width": False,
    "median_interval_width": False,
    "interval_score": False,
}
_ALIASES = {"r": "pearson_r", "pearson": "pearson_r", "auc": "auroc", "ap": "auprc"}


# FOMO26's scoring never raises: a metric it cannot compute is the worst value instead
# (fomo26/fomo-metrics; FACTS.md)
FOMO26_WORST = {"auroc": 0.0, "auroc_ovr": 0.0, "f1_macro": 0.0, "mae": 100.0,
                "pearson_r": -100.0, "dice": 0.0, "nsd": 0.0, "nsd_area": 0.0}  # fmt: skip


def fomo26_score(name: str, *args, **kwargs) -> float:
    """Metric `name` as FOMO26 scores it: the value, or the metric's worst (`FOMO26_WORST`)
    where it raises or is undefined (NaN), with a MetricWarning saying which, never an error."""
    key = canonical_name(name)
    if key not in FOMO26_WORST:
        raise ConfigError(f"FOMO26 scores {', '.join(FOMO26_WORST)}, not {name!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            value = float(METRICS.get(key)(*args, **kwargs))
    except (ValueError, TypeError, IndexError, ZeroDivisionError) as e:
        _warn(f"FOMO26 {key}: {e}; scored as the worst value {FOMO26_WORST[key]}")
        return FOMO26_WORST[key]
    if not np.isfinite(value):
        _warn(f"FOMO26 {key} is undefined here; scored as the worst value {FOMO26_WORST[key]}")
        return FOMO26_WORST[key]
    return value


class MetricWarning(UserWarning):
    """A metric is undefined for this input (e.g. one class only) and was returned as NaN."""


def canonical_name(name: str) -> str:
    """The registered name for `name`, resolving common aliases (r, auc, ap)."""
    key = name.lower()
    return _ALIASES.get(key, key)


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric `name` is better; unknown names are an error."""
    key = canonical_name(name)
    if key not in HIGHER_IS_BETTER:
        raise ConfigError(
            f"no ranking direction known for metric {name!r}; known: "
            f"{', '.join(sorted(HIGHER_IS_BETTER))} (pass higher_is_better={{...}} to rank others)"
        )
    return HIGHER_IS_BETTER[key]


def batched(fn: Callable) -> Callable:
    """Mark `fn` as working on the last axis, so bootstrap can score all resamples at once."""
    fn.batched = True  # type: ignore[attr-defined]
    return fn


def _warn(msg: str) -> None:
    warnings.warn(msg, MetricWarning, stacklevel=3)


def _binary(label: np.ndarray) -> np.ndarray:
    label = np.asarray(label)
    if label.dtype != bool:
        if not np.isin(label, (0, 1)).all():
            raise ValueError("classification labels must be 0/1 (or bool)")
        label = label.astype(bool)
    return label


def _floats(*arrays: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.float64) for a in arrays]
    shapes = {a.shape for a in out}
    if len(shapes) != 1:
        raise ValueError(f"metric inputs must have the same shape, got {sorted(shapes)}")
    if out[0].shape[-1:] == (0,) or out[0].ndim == 0:
        raise ValueError("metric inputs must hold at least one case")
    if any(np.isnan(a).any() for a in out):
        raise ValueError("metric inputs contain NaN; drop or impute those cases first")
    return out


def _scalar(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


@METRICS.register("auroc")
@batched
def auroc(label, prob):
    """Area under the ROC curve: P(score of a random positive > a random negative), ties 1/2.

    Computed from average ranks (Mann–Whitney U). NaN with a MetricWarning when the cases hold
    only one class, where the ROC curve is undefined.
    """
    label = _binary(label)
    (prob,) = _floats(prob)
    n_pos = label.sum(-1)
    n_neg = label.shape[-1] - n_pos
    ranks = rankdata(prob, axis=-1)
    u = (ranks * label).sum(-1) - n_pos * (n_pos + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)
    if np.isnan(out).any():
        _warn("AUROC is undefined when the cases hold only one class; returning NaN")
    return _scalar(out)


@METRICS.register("auprc")
@batched
def auprc(label, prob):
    """Average precision: sum over thresholds of (recall step) x precision, as scikit-learn.

    A step-wise area under the precision-recall curve with no interpolation; tied scores form one
    threshold. NaN with a MetricWarning when there is no positive case (recall undefined);
    with positives only it is 1.0, as in scikit-learn.
    """
    label = _binary(label)
    (prob,) = _floats(prob)
    order = np.argsort(-prob, axis=-1, kind="stable")
    p = np.take_along_axis(prob, order, -1)
    y = np.take_along_axis(label, order, -1)
    tps = np.cumsum(y, -1)
    precision = tps / np.arange(1, p.shape[-1] + 1)
    # the last case of each group of tied scores is where a threshold cuts
    cut = np.ones_like(y)
    cut[..., :-1] = p[..., 1:] != p[..., :-1]
    tp_cut = np.where(cut, tps, 0)
    prev = np.zeros_like(tps)
    prev[..., 1:] = np.maximum.accumulate(tp_cut, -1)[..., :-1]
    n_pos = tps[..., -1]
    area = np.where(cut, (tps - prev) * precision, 0.0).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(n_pos > 0, area / n_pos, np.nan)
    if np.isnan(out).any():
        _warn("AUPRC is undefined when the cases hold no positive; returning NaN")
    return _scalar(out)


@METRICS.register("balanced_accuracy")
@batched
def balanced_accuracy(label, prob, threshold: float = 0.5):
    """Mean of sensitivity and specificity, calling a case positive when prob >= threshold.

    With one class only it is that class's recall (as scikit-learn), with a MetricWarning.
    """
    label = _binary(label)
    (prob,) = _floats(prob)
    pred = prob >= threshold
    n_pos = label.sum(-1)
    n_neg = label.shape[-1] - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = np.where(n_pos > 0, (pred & label).sum(-1) / n_pos, np.nan)
        tnr = np.where(n_neg > 0, (~pred & ~label).sum(-1) / n_neg, np.nan)
    if ((n_pos == 0) | (n_neg == 0)).any():
        _warn("balanced accuracy with one class only is that class's recall")
    return _scalar(np.nanmean(np.stack([tpr, tnr]), axis=0))


def _classes(label, probs) -> tuple[np.ndarray, np.ndarray]:
    """Multiclass inputs: integer labels [..., n] and class probabilities [..., n, K]."""
    probs = np.asarray(probs, dtype=np.float64)
    label = np.asarray(label)
    if probs.ndim < 2 or probs.shape[:-1] != label.shape:
        raise ValueError(f"multiclass metrics need labels [n] and probabilities [n, K]; got "
                         f"{label.shape} and {probs.shape}")  # fmt: skip
    k = probs.shape[-1]
    if not np.isin(label, np.arange(k)).all():
        raise ValueError(f"multiclass labels must be class indices 0..{k - 1}")
    if np.isnan(probs).any():
        raise ValueError("metric inputs contain NaN; drop or impute those cases first")
    return label.astype(int), probs


@METRICS.register("auroc_ovr")
@batched
def auroc_ovr(label, probs):
    """Macro one-vs-rest AUROC (scikit-learn's `roc_auc_score(multi_class="ovr")`, FOMO26's
    linear-probe metric): each class's probability against all other cases, averaged over the
    classes. A class absent from the cases has no ROC curve and is left out of the mean, with a
    MetricWarning; NaN when no class has one."""
    label, probs = _classes(label, probs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetricWarning)
        per = np.stack([np.asarray(auroc(label == j, probs[..., j]))
                        for j in range(probs.shape[-1])])  # fmt: skip
    if caught:
        _warn("one-vs-rest AUROC: a class absent from the cases is left out of the mean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: undefined, returned as NaN
        return _scalar(np.nanmean(per, axis=0))


def _confusion(label, probs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (true positives, false positives, false negatives) [K, ...] of the argmax."""
    label, probs = _classes(label, probs)
    pred = probs.argmax(-1)
    ks = np.arange(probs.shape[-1]).reshape(-1, *([1] * label.ndim))
    t, p = label[None] == ks, pred[None] == ks
    return (t & p).sum(-1), (~t & p).sum(-1), (t & ~p).sum(-1)


@METRICS.register("f1_macro")
@batched
def f1_macro(label, probs):
    """Macro F1 of the likeliest class: per class 2TP / (2TP + FP + FN), averaged over the
    classes that occur among the labels or the predictions (scikit-learn's `average="macro"`
    over the classes it sees)."""
    tp, fp, fn = _confusion(label, probs)
    denom = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
        return _scalar(np.nanmean(f1, axis=0))


@METRICS.register("accuracy")
@batched
def accuracy(label, probs):
    """Fraction of cases whose likeliest class is their label."""
    label, probs = _classes(label, probs)
    return _scalar((probs.argmax(-1) == label).mean(-1))


@METRICS.register("mae")
@batched
def mae(label, pred):
    """Mean absolute error, in the label's unit (years for brain age)."""
    label, pred = _floats(label, pred)
    return _scalar(np.abs(pred - label).mean(-1))


@METRICS.register("pearson_r")
@batched
def pearson_r(label, pred):
    """Pearson correlation of prediction with truth; NaN with a warning if either is constant."""
    label, pred = _floats(label, pred)
    a = label - label.mean(-1, keepdims=True)
    b = pred - pred.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    # a constant input leaves only rounding noise: compare with the data's own scale
    scale = np.abs(label).max(-1) * np.abs(pred).max(-1) * label.shape[-1] + 1e-300
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 1e-12 * scale, (a * b).sum(-1) / den, np.nan)
    if np.isnan(r).any():
        _warn("Pearson r is undefined when truth or prediction is constant; returning NaN")
    return _scalar(np.clip(r, -1.0, 1.0))


@METRICS.register("interval_coverage")
@batched
def interval_coverage(label, lo, hi):
    """Fraction of cases whose truth lies in the closed interval [lo, hi].

    For 95% intervals a calibrated model covers about 0.95 of cases.
    """
    label, lo, hi = _floats(label, lo, hi)
    if (hi < lo).any():
        raise ValueError("interval bounds must satisfy lo <= hi")
    return _scalar(((lo <= label) & (label <= hi)).mean(-1))


@METRICS.register("interval_width")
@batched
def interval_width(lo, hi):
    """Mean width hi - lo of the prediction intervals; read with coverage (narrow is only good
    when coverage holds)."""
    lo, hi = _floats(lo, hi)
    if (hi < lo).any():
        raise ValueError("interval bounds must satisfy lo <= hi")
    return _scalar((hi - lo).mean(-1))


@METRICS.register("median_interval_width")
@batched
def median_interval_width(lo, hi):
    """Median width hi - lo: the typical interval a clinician sees (one huge interval moves the
    mean, not this)."""
    lo, hi = _floats(lo, hi)
    if (hi < lo).any():
        raise ValueError("interval bounds must satisfy lo <= hi")
    return _scalar(np.median(hi - lo, axis=-1))


@METRICS.register("interval_score")
@batched
def interval_score(label, lo, hi, alpha: float = 0.05):
    """Mean interval (Winkler) score of central (1 - alpha) intervals, Gneiting & Raftery (2007):
    width + (2 / alpha) x the distance by which the truth falls outside. A proper score: it
    rewards sharpness and coverage together, so a valid but needlessly wide interval loses."""
    label, lo, hi = _floats(label, lo, hi)
    if (hi < lo).any():
        raise ValueError("interval bounds must satisfy lo <= hi")
    miss = np.maximum(lo - label, 0.0) + np.maximum(label - hi, 0.0)
    return _scalar((hi - lo + (2.0 / alpha) * miss).mean(-1))
