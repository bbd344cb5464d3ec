"""A regression model's output range, kept in its card (`extra["output_range"]`), so that a
prediction outside what is possible, or far outside what the model was trained on, is flagged
wherever it is written (predict's JSON, the evaluation summary and report), never passed off
as fine (measured: a brain-age model fine-tuned on 6 cases predicted -12.8 years).

- physical: the task spec's `range` (brain age: 0-120 years). Interval bounds are clipped to
  it, and the clip is recorded beside the unclipped bounds. The point prediction is never
  clipped: a value moved onto the limit would hide that the model failed on that scan.
- training labels: the smallest and largest label the model was fitted on. "Far outside" them
  is more than one training-label span (largest - smallest) below the smallest or above the
  largest label: the model then extrapolates past twice the spread it has seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

FAR_SPANS = 1.0
RULE = (
    "far outside the training labels = more than one training-label span (largest - smallest) "
    "below the smallest or above the largest training label"
)


def _band(lo: float, hi: float) -> list[float]:
    span = hi - lo
    return [lo - FAR_SPANS * span, hi + FAR_SPANS * span]


def output_range(physical, unit: str, train_labels: Sequence[float]) -> dict:
    """The card's record: the physical limits (a spec's `range`, or None), the training labels'
    extent and the band beyond which an output counts as far outside them."""
    y = np.asarray(train_labels, dtype=np.float64)
    lo, hi = float(y.min()), float(y.max())
    return {
        "physical": list(physical) if physical is not None else None,
        "unit": unit,
        "training_labels": [lo, hi],
        "n_training": int(y.size),
        "plausible": _band(lo, hi),
        "rule": RULE,
    }


def ensemble_range(ranges: Sequence[dict | None], physical, unit: str) -> dict:
    """The range of several seeds' cards: the union of their training labels (each seed drew its
    own split). A card without one (made before ranges were recorded) leaves only the physical
    limits, and the returned `note` says so."""
    if not ranges or any(r is None for r in ranges):
        checked = "only the physical range is checked" if physical is not None else (
            "its outputs are not checked for plausibility")  # fmt: skip
        return {"physical": list(physical) if physical is not None else None, "unit": unit,
                "training_labels": None, "plausible": None, "rule": RULE,
                "note": f"the model's card records no training-label range (an older card): "
                        f"{checked}"}  # fmt: skip
    known = [r for r in ranges if r is not None]
    if len(known) == 1:
        return dict(known[0])
    lo = min(r["training_labels"][0] for r in known)
    hi = max(r["training_labels"][1] for r in known)
    return {**known[0], "training_labels": [lo, hi], "plausible": _band(lo, hi),
            "n_training": [r.get("n_training") for r in known]}  # fmt: skip


def _limits(pair) -> tuple[float, float]:
    if pair is None:
        return -np.inf, np.inf
    lo, hi = pair
    return (-np.inf if lo is None else float(lo)), (np.inf if hi is None else float(hi))


def check(limits: dict, pred, lo=None, hi=None) -> dict[str, np.ndarray]:
    """Per-case flags of predictions (arrays) against `limits`, and the interval clipped at the
    physical limits: {outside_physical, far_from_training, interval_clipped, lo, hi}."""
    p = np.atleast_1d(np.asarray(pred, dtype=np.float64))
    pmin, pmax = _limits(limits.get("physical"))
    fmin, fmax = _limits(limits.get("plausible"))
    out: dict[str, np.ndarray] = {
        "outside_physical": (p < pmin) | (p > pmax),
        "far_from_training": (p < fmin) | (p > fmax),
    }
    if lo is not None and hi is not None:
        a = np.atleast_1d(np.asarray(lo, dtype=np.float64))
        b = np.atleast_1d(np.asarray(hi, dtype=np.float64))
        ca, cb = np.clip(a, pmin, pmax), np.clip(b, pmin, pmax)
        out.update(lo=ca, hi=cb, interval_clipped=(ca != a) | (cb != b))
    return out


def describe(pair, unit: str) -> str:
    """A range as text: "0-120 years", ">= 0 years"."""
    lo, hi = pair
    u = f" {unit}" if unit else ""
    if lo is None:
        return f"<= {hi:g}{u}"
    if hi is None:
        return f">= {lo:g}{u}"
    return f"{lo:g}-{hi:g}{u}"


def value_warnings(limits: dict, value: float, who: str = "the prediction") -> list[str]:
    """What is implausible about one predicted value, in words (empty when nothing is)."""
    flags = check(limits, value)
    unit = limits.get("unit") or ""
    shown = f"{who} {value:.4g}{' ' + unit if unit else ''}"
    out = []
    if flags["outside_physical"][0]:
        possible = describe(limits["physical"], unit)
        out.append(f"{shown} is outside the physically possible range {possible}: the model "
                   "failed on this scan")  # fmt: skip
    if flags["far_from_training"][0]:
        seen = describe(limits["training_labels"], unit)
        out.append(f"{shown} is far outside the training labels ({seen}; more than one span "
                   "beyond): an extrapolation, not to be trusted")  # fmt: skip
    return out


def check_table(preds: pd.DataFrame, limits: dict) -> tuple[pd.DataFrame, dict, list[str]]:
    """A predictions table (case, pred[, lo, hi]) checked as `predict` checks one value: flag
    columns, the interval clipped at the physical limits (the unclipped bounds kept beside it),
    their counts with the limits, and one warning per implausible case."""
    f = check(limits, preds["pred"], preds.get("lo"), preds.get("hi"))
    flags = ("outside_physical", "far_from_training")
    preds = preds.assign(**{k: f[k] for k in flags})
    counts = {f"n_{k}": int(f[k].sum()) for k in flags}
    if "lo" in f:
        preds = preds.assign(lo_unclipped=preds["lo"], hi_unclipped=preds["hi"], lo=f["lo"],
                             hi=f["hi"], interval_clipped=f["interval_clipped"])  # fmt: skip
        counts["n_interval_clipped"] = int(f["interval_clipped"].sum())
    found = [
        w for r in preds.itertuples() for w in value_warnings(limits, r.pred, f"case {r.case}")
    ]
    found += [limits["note"]] if "note" in limits else []
    return preds, {"n_cases": len(preds), **counts, "limits": limits}, found
