"""Turn a suite's finished cells into the tables that answer its question.

- results.csv: tidy, one row per (task, backbone, objective, shots, seed, metric) with the
  estimate and its 95% bootstrap CI over test cases.
- paired.csv: each pretrained objective minus scratch on the same test cases, same training
  split (same seed) and same budget, with a paired bootstrap CI; `gain` is signed so that
  positive means pretraining helped (MAE and HD95 are flipped).
- ranking.csv: the FOMO25 rule (rank per metric → task rank → mean over tasks) over the
  objectives, per backbone and shots, and over all shots; a `protocol: fomo26` suite takes
  FOMO26's unified rule instead (the task ranks' mean weighted by `FOMO26_WEIGHTS`).
- results.md, report.html, figures/*.png: the same, readable (`render`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation import fomo25_ranking, higher_is_better
from ..evaluation.ranking import FOMO26_WEIGHTS, fomo26_ranking
from ..evaluation.scoring import paired_diff, paired_diff_seeds
from ..io.atomic import atomic_write_text
from .probe_stage import per_case
from .render import fmt
from .suite import Suite, task_spec

RANKING_TITLE = {
    "fomo25": "FOMO25-style ranking of the objectives (lower is better)",
    "fomo26": "FOMO26 unified ranking of the objectives (weighted task ranks; lower is better)",
}


def _spec(task: str):
    """The task's spec: its type, primary metric and ranking metrics drive every table."""
    return task_spec(task)


def collect(suite: Suite, out: Path) -> pd.DataFrame:
    """The tidy results of every finished cell."""
    rows = []
    for cell in suite.cells():
        done = out / cell.path / "done.json"
        if not done.exists():
            continue
        rec = json.loads(done.read_text())
        for metric, m in rec["metrics"].items():
            rows.append({
                "task": cell.task, "backbone": cell.backbone, "objective": cell.objective,
                "shots": cell.shots, "seed": cell.seed, "metric": metric,
                "value": m.get("estimate"), "lo": m.get("lo"), "hi": m.get("hi"),
                "n_test": rec["n_test"], "finetune_seconds": rec["finetune_seconds"],
            })  # fmt: skip
    cols = ["task", "backbone", "objective", "shots", "seed", "metric", "value", "lo", "hi",
            "n_test", "finetune_seconds"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _predictions(out: Path, cell_path: str, seed: int) -> pd.DataFrame:
    return pd.read_csv(out / cell_path / f"seed_{seed}" / "predictions.csv")


def paired(suite: Suite, out: Path) -> pd.DataFrame:
    """Every pretrained cell against its scratch twin (same task, backbone, shots, seed)."""
    rows = []
    for cell in suite.cells():
        if cell.objective == "scratch" or not per_case(cell.task):
            continue  # a group disparity (FOMO26 fairness) has no per-case pairing
        twin = type(cell)(cell.task, cell.backbone, "scratch", cell.shots, cell.seed)
        if not all((out / c.path / "done.json").exists() for c in (cell, twin)):
            continue
        a = _predictions(out, cell.path, cell.seed)
        b = _predictions(out, twin.path, cell.seed)
        b = b.set_index("case").loc[a["case"]].reset_index()  # align the same cases
        spec = _spec(cell.task)
        for metric in spec.ranking_metrics:
            d = paired_diff(spec.type, metric, a, b, n_boot=suite.n_boot)
            sign = 1.0 if higher_is_better(metric) else -1.0
            lo, hi = sorted((sign * d.lo, sign * d.hi))
            rows.append({
                "task": cell.task, "backbone": cell.backbone, "objective": cell.objective,
                "shots": cell.shots, "seed": cell.seed, "metric": metric,
                "diff": d.diff, "gain": sign * d.diff, "gain_lo": lo, "gain_hi": hi,
                "p": d.p_value, "helped": bool(lo > 0), "hurt": bool(hi < 0),
                "n_test": len(a),
            })  # fmt: skip
    cols = ["task", "backbone", "objective", "shots", "seed", "metric", "diff", "gain",
            "gain_lo", "gain_hi", "p", "helped", "hurt", "n_test"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _rank(suite: Suite, tidy: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """The suite's protocol's rule over `tasks`; fomo26 weights renormalised over them."""
    if suite.protocol == "fomo26":
        return fomo26_ranking(tidy, {t: w for t, w in FOMO26_WEIGHTS.items() if t in tasks})
    return fomo25_ranking(tidy, tasks=tasks)


def ranking(suite: Suite, results: pd.DataFrame) -> pd.DataFrame:
    """The objectives ranked by the suite's protocol (FOMO25, or FOMO26's unified weights),
    per backbone and shots (and `all` shots pooled)."""
    parts = []
    for backbone, sub in results.groupby("backbone", sort=False):
        groups = [(str(s), g) for s, g in sub.groupby("shots")] + [("all", sub)]
        for shots, g in groups:
            keep = g[g.apply(lambda r: r["metric"] in _spec(r["task"]).ranking_metrics, axis=1)]
            if keep.empty:
                continue
            tidy = keep.rename(columns={"objective": "run"})[["run", "task", "metric", "value"]]
            tidy = tidy.dropna(subset=["value"])
            if tidy.empty:
                continue
            r = _rank(suite, tidy, sorted(g["task"].unique())).reset_index()
            r.insert(0, "shots", shots)
            r.insert(0, "backbone", backbone)
            parts.append(r.rename(columns={"run": "objective"}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def primary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Rows task/metric/shots, columns objectives: `estimate [lo, hi]` of the primary metric
    (mean over seeds when there are several)."""
    rows = []
    for (task, backbone, shots), g in results.groupby(["task", "backbone", "shots"], sort=False):
        metric = _spec(task).primary_metric
        row = {"task": task, "backbone": backbone, "metric": metric, "shots": shots}
        for obj, h in g[g["metric"] == metric].groupby("objective", sort=False):
            if len(h) == 1:
                r = h.iloc[0]
                row[obj] = f"{fmt(r['value'])} [{fmt(r['lo'])}, {fmt(r['hi'])}]"
            else:
                row[obj] = f"{fmt(h['value'].mean())} ± {fmt(h['value'].std())} ({len(h)} seeds)"
        rows.append(row)
    return pd.DataFrame(rows)


def validation_score(out: Path, cell_path: str, seed: int, metric: str) -> float | None:
    """The kept checkpoint's validation value of `metric` (what fine-tuning chose it by)."""
    path = out / cell_path / f"seed_{seed}" / "val_metrics.json"
    if not path.exists():
        return None
    v = json.loads(path.read_text()).get("metrics", {}).get(metric)
    return float(v) if v is not None else None


def _cells_of(suite: Suite, task: str, backbone: str, objective: str, shots: int) -> list:
    key = (task, backbone, objective, shots)
    return [c for c in suite.cells() if (c.task, c.backbone, c.objective, c.shots) == key]


def choose_on_validation(suite: Suite, out: Path, task: str, backbone: str, shots: int):
    """(objective, its mean validation score): the pretrained objective with the best
    validation primary metric over its seeds; the test set plays no part in the choice."""
    metric = _spec(task).primary_metric
    sign = 1.0 if higher_is_better(metric) else -1.0
    best: tuple[float, str, float] | None = None
    for obj in (o for o in suite.objectives if o != "scratch"):
        cells = _cells_of(suite, task, backbone, obj, shots)
        vals = [
            v for c in cells if (v := validation_score(out, c.path, c.seed, metric)) is not None
        ]
        if vals and (best is None or sign * float(np.mean(vals)) > best[0]):
            best = (sign * float(np.mean(vals)), obj, float(np.mean(vals)))
    return (best[1], best[2]) if best else (None, None)


def verdict(suite: Suite, out: Path, shots: int = 16) -> pd.DataFrame:
    """Per task and backbone: the pretrained objective chosen on validation data at `shots`,
    and its test gain over scratch on the primary metric: a paired bootstrap over test cases
    for one seed, a hierarchical one (seeds, then cases) for several."""
    rows = []
    for task, backbone in dict.fromkeys((c.task, c.backbone) for c in suite.cells()):
        obj, val = choose_on_validation(suite, out, task, backbone, shots)
        if obj is None:
            continue
        spec = _spec(task)
        metric = spec.primary_metric
        pairs = []
        for cell in _cells_of(suite, task, backbone, obj, shots):
            twin = type(cell)(cell.task, cell.backbone, "scratch", cell.shots, cell.seed)
            if all((out / c.path / "done.json").exists() for c in (cell, twin)):
                a = _predictions(out, cell.path, cell.seed)
                b = _predictions(out, twin.path, cell.seed).set_index("case").loc[a["case"]]
                pairs.append((a, b.reset_index()))
        if not pairs:
            continue
        d = paired_diff_seeds(spec.type, metric, pairs, n_boot=suite.n_boot)
        sign = 1.0 if higher_is_better(metric) else -1.0
        lo, hi = sorted((sign * d.lo, sign * d.hi))
        rows.append({
            "task": task, "backbone": backbone, "metric": metric,
            "chosen on validation": obj, "validation": val, "seeds": len(pairs),
            "gain vs scratch (test)": sign * d.diff, "95% CI": f"[{fmt(lo)}, {fmt(hi)}]",
            "CI excludes 0 (helped)": bool(lo > 0),
            "CI": "paired bootstrap over test cases" if len(pairs) == 1
                  else "hierarchical bootstrap: seeds, then test cases",
        })  # fmt: skip
    return pd.DataFrame(rows)


def compute(suite: Suite, out: Path) -> pd.DataFrame:
    """Seconds each stage took, from the markers the runner wrote (wall time on this machine)."""
    rows = []
    for backbone in suite.backbones:
        for obj in (o for o in suite.objectives if o != "scratch"):
            done = out / "pretrain" / backbone.replace(":", "-") / obj / "done.json"
            if done.exists():
                secs = json.loads(done.read_text()).get("seconds")
                rows.append({"stage": "pretrain", "what": f"{backbone} {obj}", "cells": 1,
                             "seconds": secs, "median per cell": secs})  # fmt: skip
    per: dict[str, list[float]] = {}
    for cell in suite.cells():
        done = out / cell.path / "done.json"
        if done.exists():
            rec = json.loads(done.read_text())
            per.setdefault(cell.task, []).append(
                rec["finetune_seconds"] + rec.get("evaluate_seconds", 0.0)
            )
    for task, secs in per.items():
        rows.append({"stage": "fine-tune + evaluate", "what": task, "cells": len(secs),
                     "seconds": sum(secs), "median per cell": float(np.median(secs))})  # fmt: skip
    df = pd.DataFrame(rows, columns=["stage", "what", "cells", "seconds", "median per cell"])
    if not df.empty:
        df.loc[len(df)] = ["total (without data + prepare)", "", int(df["cells"].sum()),
                           float(df["seconds"].sum()), float("nan")]  # fmt: skip
    return df


def analyse(suite: Suite, out: str | Path) -> dict[str, pd.DataFrame]:
    """Write every table and the report from the finished cells (partial suites too)."""
    from .render import figures, write_pages

    out = Path(out)
    results = collect(suite, out)
    pairs = paired(suite, out)
    ranks = ranking(suite, results) if not results.empty else pd.DataFrame()
    for name, df in (("results", results), ("paired", pairs), ("ranking", ranks)):
        atomic_write_text(out / f"{name}.csv", df.to_csv(index=False))
    tables = {
        "results": results, "paired": pairs, "ranking": ranks,
        "primary": primary_table(results) if not results.empty else pd.DataFrame(),
        "verdict": verdict(suite, out),
    }  # fmt: skip
    figs = figures(results, out / "figures") if not results.empty else []
    write_pages(suite, out, tables, compute(suite, out), figs)
    return tables
