"""Metrics with CIs in one call (`summarize`, what metrics.json holds) and the HTML report.

The predictions table, one row per test case, is the contract between prediction and
evaluation (it is also what predictions.csv holds):

| task type      | columns                                                           |
|----------------|-------------------------------------------------------------------|
| classification | case, label (0/1), prob (predicted P(positive), 0–1)              |
| multiclass     | case, label (class index 0..K-1), prob_0 .. prob_K-1 (class       |
|                | probabilities, summing to 1), pred (the likeliest class)          |
| regression     | case, label (true value, e.g. age in years), pred, and optionally |
|                | lo, hi (the 95% prediction interval)                              |
| multitarget    | case, then per target t: label:t (NaN: unknown), pred:t and       |
|                | optionally sigma:t, lo:t, hi:t (`targets.py`)                      |
| segmentation   | case, dice, nsd, hd95 (per case, from                             |
|                | `segmentation.segmentation_case_metrics(pred, truth, spacing,    |
|                | tolerance_mm)`, computed where the masks are)                     |

Extra columns are kept and ignored. The report is one self-contained `report.html`: figures are
PNGs embedded as base64, so the file can be mailed or archived alone. This module computes what
the report shows (metrics, figures); `report_html` lays it out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures, report_html, scoring, targets
from .report_html import Section

TASK_TYPES = ("classification", "multiclass", "regression", "multitarget", "segmentation")
REQUIRED = {
    "classification": ("case", "label", "prob"),
    "multiclass": ("case", "label", "prob_0", "prob_1"),
    "regression": ("case", "label", "pred"),
    "multitarget": ("case",),
    "segmentation": ("case", "dice", "nsd", "hd95"),
}


def check_predictions(task_type: str, predictions: pd.DataFrame) -> None:
    """Raise a clear error if `predictions` does not follow the schema for `task_type`."""
    if task_type not in REQUIRED:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {TASK_TYPES}")
    missing = [c for c in REQUIRED[task_type] if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"{task_type} predictions need columns {list(REQUIRED[task_type])}; missing {missing}"
        )
    if len(predictions) == 0:
        raise ValueError("predictions table is empty")
    if predictions["case"].duplicated().any():
        raise ValueError("predictions hold a case more than once; one row per case")


def _clean(x):
    """JSON-able: NaN/inf become None (strict JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def summarize(
    task_type: str,
    predictions: pd.DataFrame,
    *,
    metrics: list[str] | None = None,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    threshold: float = 0.5,
) -> dict:
    """`metrics` (default: every one the table can be scored on) with their percentile
    bootstrap CIs over cases, as a JSON-able dict.

    Classification resamples within each class (so AUROC stays defined); segmentation metrics
    are means of the per-case values. Undefined values are None.
    """
    check_predictions(task_type, predictions)
    if task_type == "multitarget":
        return _summarize_targets(predictions, metrics, n_boot, alpha, seed)
    df = predictions
    if metrics is None:
        cols = set(df.columns)
        metrics = [
            m for m in scoring.metrics_for(task_type)
            if set(scoring.columns(task_type, m)) - {scoring.PROBS} <= cols
        ]  # fmt: skip
    out: dict = {"task_type": task_type, "n_cases": len(df), "alpha": alpha, "n_boot": n_boot}
    out["seed"] = seed
    if task_type == "classification":
        y = df["label"].to_numpy().astype(int)
        out.update(n_positive=int(y.sum()), n_negative=int((1 - y).sum()), threshold=threshold)
    if task_type == "multiclass":
        y = df["label"].to_numpy().astype(int)
        k = sum(c.startswith("prob_") for c in df.columns)
        out["n_per_class"] = np.bincount(y, minlength=k).tolist()
    out["resampling"] = scoring.RESAMPLING[task_type]
    per_class = sorted({c.split(":", 1)[1] for c in df.columns if str(c).startswith("dice:")})
    if task_type == "segmentation" and per_class:  # several classes: each one's case means
        names = [m for m in ("dice", "nsd", "nsd_area", "hd95") if f"{m}:{per_class[0]}" in df]
        out["per_class"] = {c: {m: float(df[f"{m}:{c}"].mean()) for m in names}
                            for c in per_class}  # fmt: skip
    out["metrics"] = {
        m: scoring.score_ci(
            task_type, m, df, n_boot=n_boot, alpha=alpha, seed=seed, threshold=threshold
        )
        for m in metrics
    }
    return _clean(out)


def _summarize_targets(df: pd.DataFrame, metrics, n_boot: int, alpha: float, seed: int) -> dict:
    """Each target scored as its own regression table (the cases that have it): its metrics as
    `<metric>:<target>`, its case count under `n_per_target`."""
    out: dict = {"task_type": "multitarget", "n_cases": len(df), "alpha": alpha,
                 "n_boot": n_boot, "seed": seed}  # fmt: skip
    out["resampling"] = scoring.RESAMPLING["regression"]
    names = targets.target_names(df)
    out["targets"], out["n_per_target"], out["metrics"] = names, {}, {}
    for t in names:
        sub = targets.target_table(df, t)
        out["n_per_target"][t] = len(sub)
        if len(sub):
            s = summarize("regression", sub, metrics=metrics, n_boot=n_boot, alpha=alpha,
                          seed=seed)  # fmt: skip
            out["metrics"].update({targets.metric_name(m, t): v for m, v in s["metrics"].items()})
    return _clean(out)


Volumes = Mapping[str, tuple] | Callable[[str], tuple]


def _classification_sections(df: pd.DataFrame, m: dict) -> list[Section]:
    y, p = df["label"].to_numpy().astype(int), df["prob"].to_numpy(float)
    if 0 < y.sum() < len(y):
        roc = figures.to_png(figures.roc_figure(y, p, m.get("auroc")))
        sections = [Section("roc", "ROC curve", roc, "ROC curve")]
    else:
        sections = [Section("roc", "ROC curve", note="Not drawn: the cases hold one class.")]
    cal = figures.to_png(figures.calibration_figure(y, p))
    return [*sections, Section("calibration", "Calibration", cal, "reliability diagram")]


def _multiclass_sections(df: pd.DataFrame, classes: list[str] | None) -> list[Section]:
    k = sum(c.startswith("prob_") and c[5:].isdigit() for c in df.columns)
    names = classes if classes and len(classes) == k else [str(i) for i in range(k)]
    probs = df[scoring.class_columns(k)].to_numpy(float)
    fig = figures.confusion_figure(df["label"].to_numpy(int), probs.argmax(1), names)
    return [Section("confusion", "Confusion matrix", figures.to_png(fig), "confusion matrix")]


def _target_sections(df: pd.DataFrame, m: dict) -> list[Section]:
    """One predicted-vs-true scatter per target, with that target's metrics."""
    out = []
    for t in targets.target_names(df):
        sub = targets.target_table(df, t)
        if not len(sub):
            continue
        mine = {k.rsplit(":", 1)[0]: v for k, v in m.items() if k.endswith(f":{t}")}
        lo, hi = (sub[c].to_numpy(float) if c in sub else None for c in ("lo", "hi"))
        fig = figures.age_figure(sub["label"], sub["pred"], lo, hi, mine, what=t)
        png = figures.to_png(fig)
        out.append(Section(f"scatter-{t}", f"Predicted vs true: {t}", png, f"{t} scatter"))
    return out


def _regression_sections(df: pd.DataFrame, m: dict) -> list[Section]:
    lo = df["lo"].to_numpy(float) if "lo" in df else None
    hi = df["hi"].to_numpy(float) if "hi" in df else None
    fig = figures.age_figure(df["label"], df["pred"], lo, hi, m)
    return [Section("scatter", "Predicted vs true", figures.to_png(fig), "scatter")]


def _montage(predictions: pd.DataFrame, volumes: Volumes, n: int) -> bytes:
    """The n best and n worst cases by Dice (worst last), loading only those volumes."""
    ranked = predictions.sort_values("dice", ascending=False, kind="stable").reset_index()
    picks = [(f"best {i + 1}", r) for i, r in enumerate(ranked.head(n).itertuples())]
    worst = list(ranked.tail(n).itertuples())[::-1]
    picks += [(f"worst {i + 1}", r) for i, r in enumerate(worst) if r.Index >= n]
    rows = []
    for tag, r in picks:
        vol = volumes[r.case] if isinstance(volumes, Mapping) else volumes(r.case)
        image, truth, pred = vol[:3]
        spacing = vol[3] if len(vol) > 3 else None
        rows.append((f"{tag}: {r.case}\nDice {r.dice:.2f}", image, truth, pred, spacing))
    return figures.to_png(figures.montage_figure(rows))


def _segmentation_sections(
    df: pd.DataFrame, volumes: Volumes | None, n_montage: int
) -> list[Section]:
    fig = figures.segmentation_distribution_figure(df)
    png = figures.to_png(fig)
    sections = [Section("distribution", "Per-case scores", png, "per-case Dice, NSD and HD95")]
    if volumes is not None:
        png = _montage(df, volumes, n_montage)
        sections.append(Section("montage", "Best and worst cases", png, "overlay montage"))
    return sections


def figure_sections(
    task_type: str,
    predictions: pd.DataFrame,
    metrics: dict,
    volumes: Volumes | None = None,
    n_montage: int = 2,
    classes: list[str] | None = None,
) -> list[Section]:
    """The figures the report shows for `task_type`, in page order (`metrics`: summary's;
    `classes`: a multiclass task's class names)."""
    if task_type == "classification":
        return _classification_sections(predictions, metrics)
    if task_type == "multiclass":
        return _multiclass_sections(predictions, classes)
    if task_type == "regression":
        return _regression_sections(predictions, metrics)
    if task_type == "multitarget":
        return _target_sections(predictions, metrics)
    return _segmentation_sections(predictions, volumes, n_montage)


def warning_sections(summary: dict) -> list[Section]:
    """The summary's warnings (what was dropped, cropped or implausible), first after the
    metrics, so a reader sees them before the figures; none when there are none."""
    warns = summary.get("warnings") or []
    if not warns:
        return []
    text = " ".join(f"({i}) {w}" for i, w in enumerate(warns, 1))
    return [Section("warnings", f"Warnings ({len(warns)})", note=text)]


def write_report(
    out_dir: str | Path,
    task_type: str,
    predictions: pd.DataFrame,
    metrics: dict | None = None,
    *,
    title: str | None = None,
    volumes: Volumes | None = None,
    n_montage: int = 2,
    details: Mapping | None = None,
) -> Path:
    """Write `out_dir/report.html` and return its path.

    `metrics` is `summarize`'s dict (computed if None). For segmentation, `volumes` gives
    `(image, true_mask, pred_mask[, spacing])` (RAS arrays, [X, Y, Z] or [C, X, Y, Z]) for a
    case id, as a mapping or a loader called only for the `n_montage` best and worst by Dice.
    `details` (model, checkpoint, NSD tolerance, ...) is shown as a table; the summary's
    `warnings` list, if any, as a section after the metrics.
    """
    check_predictions(task_type, predictions)
    summary = metrics if metrics is not None else summarize(task_type, predictions)
    m = summary.get("metrics", {})
    sections = warning_sections(summary) + figure_sections(
        task_type, predictions, m, volumes, n_montage, summary.get("classes")
    )
    title = title or f"brainfoundry evaluation: {task_type}"
    text = report_html.page(title, summary, len(predictions), sections, details)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(text, encoding="utf-8")
    return path
