"""FOMO26 task 7: how evenly a classifier serves groups of patients (fomo26/fomo-metrics).

For each grouping variable v (a categorical column as it is, a continuous one binned, e.g. age
by decade) and metric M (one-vs-rest macro AUROC, macro F1), the disparity is
D_v(M) = max_g M_g - min_g M_g over the groups g of v, and the variable's score 1 - D_v(M).
The fairness score of M is the mean of 1 - D_v(M) over the variables. Here:
- a case whose value of v is missing is in no group of v (it still counts for the others);
- a group on which M is undefined (its cases hold one class only) is reported and left out of
  D_v; a variable with fewer than two groups where M is defined has no score and is left out
  of the mean (`variables_used` names the ones in it);
- categorical values are stripped and lower-cased ("F" and "f" are one group), as the
  organisers' pipeline does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .metrics import MetricWarning, auroc_ovr, f1_macro

METRICS = ("auroc_ovr", "f1_macro")
MAX_UNBINNED = 10  # a numeric column with more distinct values must be binned (--bin)


@dataclass(frozen=True)
class Binning:
    """Bins of a continuous variable: `width` ([k*w, (k+1)*w), labelled "60-70"), or ascending
    inclusive upper `edges` ("<=40", "40-60", ..., ">80" above the last)."""

    width: float | None = None
    edges: tuple[float, ...] = ()

    def label(self, value: float) -> str:
        if self.width is not None:
            lo = math.floor(value / self.width) * self.width
            return f"{lo:g}-{lo + self.width:g}"
        for i, e in enumerate(self.edges):
            if value <= e:
                return f"<={e:g}" if i == 0 else f"{self.edges[i - 1]:g}-{e:g}"
        return f">{self.edges[-1]:g}"


def parse_bins(specs: Sequence[str]) -> dict[str, Binning]:
    """{column: Binning} from `--bin` values: `age=10` (width) or `age=40,60,80` (edges)."""
    out = {}
    for spec in specs:
        col, sep, rest = spec.partition("=")
        try:
            nums = [float(x) for x in rest.split(",")] if sep else []
        except ValueError:
            nums = []
        if not col.strip() or not nums or not all(math.isfinite(x) for x in nums):
            raise ConfigError(
                f"--bin {spec!r}: use COLUMN=WIDTH (age=10) or COLUMN=E1,E2,... "
                "(inclusive upper edges, age=40,60,80)"
            )
        if len(nums) == 1 and nums[0] <= 0:
            raise ConfigError(f"--bin {spec!r}: the bin width must be positive")
        if len(nums) > 1 and any(b <= a for a, b in zip(nums, nums[1:])):
            raise ConfigError(f"--bin {spec!r}: the edges must increase")
        out[col.strip()] = Binning(nums[0]) if len(nums) == 1 else Binning(None, tuple(nums))
    return out


def group_of(values: Sequence[str], column: str, binning: Binning | None) -> list[str | None]:
    """Each case's group for one variable (None: the value is missing). `values` are the raw
    cells; a binned column must hold numbers, an unbinned numeric one at most MAX_UNBINNED
    distinct values (else it is continuous and needs `--bin`)."""
    cells = [str(v).strip() for v in values]
    if binning is None:
        given = {c for c in cells if c}
        if len(given) > MAX_UNBINNED and all(_number(c) is not None for c in given):
            raise ConfigError(
                f"group column {column!r} holds {len(given)} distinct numbers: bin "
                f"it, e.g. --bin {column}=10"
            )
        return [c.lower() if c else None for c in cells]
    out: list[str | None] = []
    for c in cells:
        v = _number(c)
        if c and v is None:
            raise ConfigError(
                f"group column {column!r}: {c!r} is not a number, so it cannot be binned"
            )
        out.append(None if v is None else binning.label(v))
    return out


def _number(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def metric(name: str, label: np.ndarray, probs: np.ndarray, pred: np.ndarray) -> float | None:
    """auroc_ovr on the probabilities or f1_macro on the predicted classes; None: undefined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        if name == "auroc_ovr":
            v = float(auroc_ovr(label, probs))
        else:
            v = float(f1_macro(label, np.eye(probs.shape[1])[pred]))
    return v if math.isfinite(v) else None


def variable_report(label, probs, pred, groups: Sequence[str | None]) -> dict:
    """Per-group n and metrics, the disparity and the score (1 - disparity) of each metric."""
    g = np.array([x if x is not None else "" for x in groups], dtype=object)
    names = sorted({x for x in groups if x is not None})
    per: dict[str, dict] = {}
    for name in names:
        m = g == name
        per[name] = {
            "n": int(m.sum()),
            **{k: metric(k, label[m], probs[m], pred[m]) for k in METRICS},
        }
    out: dict = {"groups": per, "n_unknown": int(sum(x is None for x in groups))}
    out["disparity"], out["score"] = {}, {}
    for k in METRICS:
        vals = [float(v[k]) for v in per.values() if v[k] is not None]
        d = max(vals) - min(vals) if len(vals) >= 2 else None
        out["disparity"][k] = d
        out["score"][k] = None if d is None else 1.0 - d
    return out


def fairness(label, probs, pred, groups: Mapping[str, Sequence[str | None]]) -> dict:
    """{"variables": {v: variable_report}, "score": {metric: mean of 1 - D_v}, "variables_used"}
    for the cases' labels [n], class probabilities [n, K] and predicted classes [n]."""
    label, probs, pred = np.asarray(label, int), np.asarray(probs, float), np.asarray(pred, int)
    per = {v: variable_report(label, probs, pred, gs) for v, gs in groups.items()}
    score, used = {}, {}
    for k in METRICS:
        used[k] = [v for v, r in per.items() if r["score"][k] is not None]
        vals = [per[v]["score"][k] for v in used[k]]
        score[k] = float(np.mean(vals)) if vals else None
    return {"variables": per, "score": score, "variables_used": used}
