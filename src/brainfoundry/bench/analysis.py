"""Turn a suite's finished cells into the tables that answer its question.

- results.csv: tidy, one row per (task, backbone, objective, shots, seed, metric) with the
  estimate and its 95% bootstrap CI over test cases.
- paired.csv: each pretrained objective minus scratch on the same test cases, same training
  split (same seed) and same budget, with a paired bootstrap CI; `gain` is signed so that
  positive means pretraining helped (MAE and HD95 are flipped).
- ranking.csv: the FOMO25 rule (rank per metric → task rank → mean over tasks) over the
  objectives, per backbone and shots, and over all shots.
- results.md, report.html, figures/*.png: the same, readable.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation import fomo25_ranking, higher_is_better, paired_bootstrap_diff
from ..evaluation.metrics import auroc, mae, pearson_r
from ..evaluation.statistics import case_mean
from ..io.atomic import atomic_write_text
from .machine import machine
from .suite import Suite

# the metrics each task is ranked on (FACTS.md) and that paired differences are reported for
FOMO_METRICS = {
    "classification": ["auroc"],
    "segmentation": ["dice", "nsd"],
    "regression": ["mae", "pearson_r"],
}
PRIMARY = {"classification": "auroc", "segmentation": "dice", "regression": "mae"}


def _task_type(task: str) -> str:
    from ..tasks.spec import get_task

    return get_task(task).type


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


def _paired_metric(kind: str, metric: str, a: pd.DataFrame, b: pd.DataFrame, n_boot: int):
    """metric(a) - metric(b) over the same cases, paired bootstrap."""
    if kind == "classification":
        y = a["label"].to_numpy().astype(int)
        return paired_bootstrap_diff(
            auroc, a["prob"].to_numpy(float), b["prob"].to_numpy(float), y, n=n_boot, strata=y
        )
    if kind == "regression":
        fn = {"mae": mae, "pearson_r": pearson_r}[metric]
        y = a["label"].to_numpy(float)
        return paired_bootstrap_diff(
            fn, a["pred"].to_numpy(float), b["pred"].to_numpy(float), y, n=n_boot
        )
    return paired_bootstrap_diff(
        case_mean, a[metric].to_numpy(float), b[metric].to_numpy(float), n=n_boot
    )


def paired(suite: Suite, out: Path) -> pd.DataFrame:
    """Every pretrained cell against its scratch twin (same task, backbone, shots, seed)."""
    rows = []
    for cell in suite.cells():
        if cell.objective == "scratch":
            continue
        twin = type(cell)(cell.task, cell.backbone, "scratch", cell.shots, cell.seed)
        if not all((out / c.path / "done.json").exists() for c in (cell, twin)):
            continue
        a = _predictions(out, cell.path, cell.seed)
        b = _predictions(out, twin.path, cell.seed)
        b = b.set_index("case").loc[a["case"]].reset_index()  # align the same cases
        kind = _task_type(cell.task)
        for metric in FOMO_METRICS[kind]:
            d = _paired_metric(kind, metric, a, b, suite.n_boot)
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


def ranking(suite: Suite, results: pd.DataFrame) -> pd.DataFrame:
    """FOMO25 ranking of the objectives, per backbone and shots (and `all` shots pooled)."""
    parts = []
    for backbone, sub in results.groupby("backbone", sort=False):
        groups = [(str(s), g) for s, g in sub.groupby("shots")] + [("all", sub)]
        for shots, g in groups:
            keep = g[g.apply(lambda r: r["metric"] in FOMO_METRICS[_task_type(r["task"])], axis=1)]
            if keep.empty:
                continue
            tidy = keep.rename(columns={"objective": "run"})[["run", "task", "metric", "value"]]
            tidy = tidy.dropna(subset=["value"])
            if tidy.empty:
                continue
            r = fomo25_ranking(tidy, tasks=sorted(g["task"].unique())).reset_index()
            r.insert(0, "shots", shots)
            r.insert(0, "backbone", backbone)
            parts.append(r.rename(columns={"run": "objective"}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _fmt(v, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def primary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Rows task/metric/shots, columns objectives: `estimate [lo, hi]` of the primary metric
    (mean over seeds when there are several)."""
    rows = []
    for (task, backbone, shots), g in results.groupby(["task", "backbone", "shots"], sort=False):
        metric = PRIMARY[_task_type(task)]
        row = {"task": task, "backbone": backbone, "metric": metric, "shots": shots}
        for obj, h in g[g["metric"] == metric].groupby("objective", sort=False):
            if len(h) == 1:
                r = h.iloc[0]
                row[obj] = f"{_fmt(r['value'])} [{_fmt(r['lo'])}, {_fmt(r['hi'])}]"
            else:
                row[obj] = f"{_fmt(h['value'].mean())} ± {_fmt(h['value'].std())} ({len(h)} seeds)"
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(nothing yet)\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_cell(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else ""
    if isinstance(v, float):
        return _fmt(v)
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def verdict(pairs: pd.DataFrame, shots: int = 16) -> pd.DataFrame:
    """Per task: the best pretrained objective on the primary metric at `shots` vs scratch."""
    rows = []
    if pairs.empty:
        return pd.DataFrame()
    for task, g in pairs[pairs["shots"] == shots].groupby("task", sort=False):
        metric = PRIMARY[_task_type(task)]
        h = g[g["metric"] == metric]
        if h.empty:
            continue
        best = h.groupby("objective")["gain"].mean().idxmax()
        r = h[h["objective"] == best]
        rows.append({
            "task": task, "metric": metric, "best objective": best,
            "gain vs scratch": float(r["gain"].mean()),
            "95% CI": f"[{_fmt(r['gain_lo'].min())}, {_fmt(r['gain_hi'].max())}]",
            "CI excludes 0 (helped)": bool(r["helped"].all()),
        })  # fmt: skip
    return pd.DataFrame(rows)


def figures(results: pd.DataFrame, fig_dir: Path) -> list[Path]:
    """Primary metric vs shots, one line per objective, one panel per task (and backbone)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..evaluation.figures import to_png

    paths = []
    fig_dir.mkdir(parents=True, exist_ok=True)
    for backbone, sub in results.groupby("backbone", sort=False):
        tasks = list(dict.fromkeys(sub["task"]))
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            metric = PRIMARY[_task_type(task)]
            g = sub[(sub["task"] == task) & (sub["metric"] == metric)]
            for obj, h in g.groupby("objective", sort=False):
                h = h.groupby("shots").agg(value=("value", "mean"), lo=("lo", "mean"),
                                           hi=("hi", "mean")).reset_index()  # fmt: skip
                x = h["shots"].to_numpy()
                y = h["value"].to_numpy(float)
                err = np.abs(np.stack([y - h["lo"].to_numpy(float), h["hi"].to_numpy(float) - y]))
                ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=obj,
                            ls="--" if obj == "scratch" else "-")  # fmt: skip
            ax.set_xscale("log", base=2)
            ticks = sorted(g["shots"].unique())
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.set_xlabel("training cases (shots)")
            better = "higher" if higher_is_better(metric) else "lower"
            ax.set_ylabel(f"{metric} ({better} is better)")
            ax.set_title(task)
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"{backbone}: test-set {', '.join(PRIMARY.values())} (95% bootstrap CI)")
        fig.tight_layout()
        path = fig_dir / f"{backbone.replace(':', '-')}_shots.png"
        path.write_bytes(to_png(fig))
        plt.close(fig)
        paths.append(path)
    return paths


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
    out = Path(out)
    results = collect(suite, out)
    pairs = paired(suite, out)
    ranks = ranking(suite, results) if not results.empty else pd.DataFrame()
    for name, df in (("results", results), ("paired", pairs), ("ranking", ranks)):
        atomic_write_text(out / f"{name}.csv", df.to_csv(index=False))
    figs = figures(results, out / "figures") if not results.empty else []
    prim = primary_table(results) if not results.empty else pd.DataFrame()
    verd = verdict(pairs)
    n_done = results[["task", "backbone", "objective", "shots", "seed"]].drop_duplicates().shape[0]
    md = [
        f"# Suite `{suite.name}`\n",
        f"{suite.description}\n",
        f"Cells finished: {n_done} of {len(suite.cells())}. Test sets: "
        + ", ".join(f"{t} {n}" for t, n in results.groupby("task")["n_test"].max().items())
        + " cases.\n",
        "## Primary metric (test set, 95% bootstrap CI over cases)\n",
        markdown_table(prim),
        "## Pretrained vs scratch at 16 shots (best objective per task; paired bootstrap)\n",
        markdown_table(verd),
        "## FOMO25-style ranking of the objectives (lower is better)\n",
        markdown_table(ranks),
        "## Every paired difference (gain > 0: pretraining helped)\n",
        markdown_table(pairs.drop(columns=["diff"]) if not pairs.empty else pairs),
        "## Compute (wall seconds on the machine that ran the cells)\n",
        f"Machine that wrote this report: {machine()}. Reproduce: "
        f"`brainfoundry bench --suite {suite.name} -o DIR` "
        "(finished stages are skipped; `--report-only` rebuilds these tables).\n",
        markdown_table(
            compute(suite, out).map(lambda v: _fmt(v, 0) if isinstance(v, float) else v)
        ),
    ]
    text = "\n".join(md)
    atomic_write_text(out / "results.md", text)
    _html(out, suite, text, figs)
    return {"results": results, "paired": pairs, "ranking": ranks, "primary": prim,
            "verdict": verd}  # fmt: skip


def _html(out: Path, suite: Suite, md_text: str, figs: list[Path]) -> None:
    """A self-contained page: the markdown tables as preformatted text plus the figures."""
    import base64

    imgs = "".join(
        f'<p><img alt="{html.escape(p.name)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"></p>'
        for p in figs
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>brainfoundry bench {html.escape(suite.name)}</title>"
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "pre{font-size:12px;overflow-x:auto}</style></head><body>"
        f"<h1>brainfoundry bench: {html.escape(suite.name)}</h1>{imgs}"
        f"<pre>{html.escape(md_text)}</pre></body></html>"
    )
    atomic_write_text(out / "report.html", page)
