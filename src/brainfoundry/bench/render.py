"""Rendering a suite's tables: markdown (results.md), the figures, and the self-contained
report.html (`report_data` gathers what it shows, `report_page` lays it out). Nothing here
computes a number; `analysis` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation import higher_is_better
from ..io.atomic import atomic_write_text
from .machine import machine
from .suite import Suite


def fmt(v, digits: int = 3) -> str:
    """A number for a table: fixed digits, and a dash for a missing or undefined value."""
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def markdown_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(nothing yet)\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(cell_text(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def cell_text(v) -> str:
    """A table cell as text: yes/no for booleans, 3 digits for floats, a dash for missing."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, float):
        return fmt(v)
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def figures(results: pd.DataFrame, fig_dir: Path) -> list[Path]:
    """Primary metric vs shots, one line per objective, one panel per task (and backbone)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..evaluation.figures import to_png
    from .suite import task_spec

    paths = []
    fig_dir.mkdir(parents=True, exist_ok=True)
    for backbone, sub in results.groupby("backbone", sort=False):
        tasks = list(dict.fromkeys(sub["task"]))
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            metric = task_spec(task).primary_metric
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
        primaries = ", ".join(dict.fromkeys(task_spec(t).primary_metric for t in tasks))
        fig.suptitle(f"{backbone}: test-set {primaries} (95% bootstrap CI)")
        fig.tight_layout()
        path = fig_dir / f"{backbone.replace(':', '-')}_shots.png"
        path.write_bytes(to_png(fig))
        plt.close(fig)
        paths.append(path)
    return paths


def write_pages(suite: Suite, out: Path, tables: dict[str, pd.DataFrame], timing, figs) -> str:
    """results.md and report.html from the computed tables; returns the markdown."""
    from .analysis import RANKING_TITLE
    from .report_data import bench_report, reproduce_command
    from .report_page import page

    results, pairs = tables["results"], tables["paired"]
    n_done = results[["task", "backbone", "objective", "shots", "seed"]].drop_duplicates().shape[0]
    md = [
        f"# Suite `{suite.name}`\n",
        f"{suite.description}\n",
        f"Cells finished: {n_done} of {len(suite.cells())}. Test sets: "
        + ", ".join(f"{t} {n}" for t, n in results.groupby("task")["n_test"].max().items())
        + " cases.\n",
        "## Primary metric (test set, 95% bootstrap CI over cases)\n",
        markdown_table(tables["primary"]),
        "## Pretrained vs scratch at 16 shots (best objective per task; paired bootstrap)\n",
        markdown_table(tables["verdict"]),
        f"## {RANKING_TITLE[suite.protocol]}\n",
        markdown_table(tables["ranking"]),
        "## Every paired difference (gain > 0: pretraining helped)\n",
        markdown_table(pairs.drop(columns=["diff"]) if not pairs.empty else pairs),
        "## Compute (wall seconds on the machine that ran the cells)\n",
        f"Machine that wrote this report: {machine()}. Reproduce: "
        f"`{reproduce_command(suite, out)}` "
        "(finished stages are skipped; `--report-only` rebuilds these tables).\n",
        markdown_table(timing.map(lambda v: fmt(v, 0) if isinstance(v, float) else v)),
    ]
    text = "\n".join(md)
    atomic_write_text(out / "results.md", text)
    atomic_write_text(out / "report.html", page(bench_report(suite, out, tables, timing, figs)))
    return text
