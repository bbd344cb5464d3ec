"""Metrics with CIs in one call (`summarize`, what metrics.json holds) and the HTML report.

The predictions table, one row per test case, is the contract between prediction and
evaluation (it is also what predictions.csv holds):

| task type      | columns                                                           |
|----------------|-------------------------------------------------------------------|
| classification | case, label (0/1), prob (predicted P(positive), 0–1)              |
| regression     | case, label (true value, e.g. age in years), pred, and optionally |
|                | lo, hi (the 95% prediction interval)                              |
| segmentation   | case, dice, nsd, hd95 (per case, from                             |
|                | `segmentation.segmentation_case_metrics(pred, truth, spacing,    |
|                | tolerance_mm)`, computed where the masks are)                     |

Extra columns are kept and ignored. The report is one self-contained `report.html`: figures are
PNGs embedded as base64, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures
from .metrics import (
    auprc,
    auroc,
    balanced_accuracy,
    interval_coverage,
    interval_width,
    mae,
    pearson_r,
)
from .statistics import bootstrap_ci, case_mean

TASK_TYPES = ("classification", "regression", "segmentation")
REQUIRED = {
    "classification": ("case", "label", "prob"),
    "regression": ("case", "label", "pred"),
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
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    threshold: float = 0.5,
) -> dict:
    """Every relevant metric with its percentile bootstrap CI over cases, as a JSON-able dict.

    Classification resamples within each class (so AUROC stays defined); segmentation metrics
    are means of the per-case values. Undefined values are None.
    """
    check_predictions(task_type, predictions)
    df = predictions
    out: dict = {"task_type": task_type, "n_cases": len(df), "alpha": alpha, "n_boot": n_boot}
    out["seed"] = seed

    def ci(fn, *cols, strata=None):
        r = bootstrap_ci(fn, *cols, n=n_boot, alpha=alpha, seed=seed, strata=strata)
        return {"estimate": r.estimate, "lo": r.lo, "hi": r.hi, "n_valid": r.n_valid}

    metrics: dict = {}
    if task_type == "classification":
        y, p = df["label"].to_numpy().astype(int), df["prob"].to_numpy(float)
        metrics["auroc"] = ci(auroc, y, p, strata=y)
        metrics["auprc"] = ci(auprc, y, p, strata=y)

        def ba(y_, p_):
            return balanced_accuracy(y_, p_, threshold=threshold)

        ba.batched = True  # type: ignore[attr-defined]
        metrics["balanced_accuracy"] = ci(ba, y, p, strata=y)
        out.update(n_positive=int(y.sum()), n_negative=int((1 - y).sum()), threshold=threshold)
        out["resampling"] = "cases, stratified by label"
    elif task_type == "regression":
        y, pred = df["label"].to_numpy(float), df["pred"].to_numpy(float)
        metrics["mae"] = ci(mae, y, pred)
        metrics["pearson_r"] = ci(pearson_r, y, pred)
        if {"lo", "hi"} <= set(df.columns):
            lo, hi = df["lo"].to_numpy(float), df["hi"].to_numpy(float)
            metrics["interval_coverage"] = ci(interval_coverage, y, lo, hi)
            metrics["interval_width"] = ci(interval_width, lo, hi)
        out["resampling"] = "cases"
    else:
        for name in ("dice", "nsd", "hd95"):
            metrics[name] = ci(case_mean, df[name].to_numpy(float))
        out["resampling"] = "cases (mean of per-case values)"
    out["metrics"] = metrics
    return _clean(out)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'


def _metrics_table(summary: dict) -> str:
    level = round(100 * (1 - summary.get("alpha", 0.05)))
    rows = []
    for name, m in summary.get("metrics", {}).items():
        cells = [m.get("estimate"), m.get("lo"), m.get("hi")]
        shown = ["n/a" if v is None else f"{v:.4g}" for v in cells]
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{shown[0]}</td>"
            f"<td>{shown[1]} – {shown[2]}</td></tr>"
        )
    head = f"<tr><th>metric</th><th>estimate</th><th>{level}% CI</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _details(items: Mapping) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


Volumes = Mapping[str, tuple] | Callable[[str], tuple]


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
    `details` (model, checkpoint, NSD tolerance, ...) is shown as a table.
    """
    check_predictions(task_type, predictions)
    summary = metrics if metrics is not None else summarize(task_type, predictions)
    m = summary.get("metrics", {})
    df = predictions
    sections: list[tuple[str, str, str]] = []  # (id, heading, body)
    if task_type == "classification":
        y, p = df["label"].to_numpy().astype(int), df["prob"].to_numpy(float)
        if 0 < y.sum() < len(y):
            roc = figures.to_png(figures.roc_figure(y, p, m.get("auroc")))
            sections.append(("roc", "ROC curve", _img(roc, "ROC curve")))
        else:
            sections.append(("roc", "ROC curve", "<p>Not drawn: the cases hold one class.</p>"))
        cal = figures.to_png(figures.calibration_figure(y, p))
        sections.append(("calibration", "Calibration", _img(cal, "reliability diagram")))
    elif task_type == "regression":
        lo = df["lo"].to_numpy(float) if "lo" in df else None
        hi = df["hi"].to_numpy(float) if "hi" in df else None
        fig = figures.age_figure(df["label"], df["pred"], lo, hi, m)
        sections.append(("scatter", "Predicted vs true", _img(figures.to_png(fig), "scatter")))
    else:
        fig = figures.segmentation_distribution_figure(df)
        body = _img(figures.to_png(fig), "per-case Dice, NSD and HD95")
        sections.append(("distribution", "Per-case scores", body))
        if volumes is not None:
            png = _montage(df, volumes, n_montage)
            sections.append(("montage", "Best and worst cases", _img(png, "overlay montage")))
    title = title or f"brainfoundry evaluation: {task_type}"
    level = round(100 * (1 - summary.get("alpha", 0.05)))
    method = (
        f"{summary.get('n_cases', len(df))} cases. Intervals are {level}% percentile bootstrap "
        f"CIs over {summary.get('resampling', 'cases')} ({summary.get('n_boot')} resamples, "
        f"seed {summary.get('seed')})."
    )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        '<section id="metrics"><h2>Metrics</h2>',
        _metrics_table(summary),
        f"<p>{html.escape(method)}</p></section>",
    ]
    for sid, heading, content in sections:
        body.append(f'<section id="{sid}"><h2>{html.escape(heading)}</h2>{content}</section>')
    if details:
        body.append(f'<section id="details"><h2>Details</h2>{_details(details)}</section>')
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


_CSS = (
    "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px}"
    "img{max-width:100%}section{margin-bottom:2em}"
)
