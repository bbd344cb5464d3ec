"""Training curves for the bench report: loss against step from each run's log.csv, and the
validation score of the checkpoint each fine-tuning run kept (val_metrics.json), the score that
chose the model. A run without a log gets a note, never an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..evaluation.figures import to_png
from ..evaluation.report_html import Section
from .report_data import Part
from .suite import Cell, Suite


@dataclass(frozen=True)
class Curve:
    """One run's loss log, and the step and validation score of the checkpoint it kept."""

    label: str
    log: pd.DataFrame
    colour: str
    kept_step: int | None = None
    kept_value: float | None = None


def read_log(run: Path) -> pd.DataFrame | None:
    """The run's log.csv when it holds a loss per step, else None."""
    path = run / "log.csv"
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    return df if len(df) and {"step", "loss"} <= set(df.columns) else None


def smoothed(y: np.ndarray) -> np.ndarray:
    """Trailing mean over about a 25th of the run, so the trend shows through step noise."""
    w = max(1, len(y) // 25)
    c = np.cumsum(np.r_[0.0, y])
    head = c[1:w] / np.arange(1, w)  # the first points average what exists so far
    return np.r_[head, (c[w:] - c[:-w]) / w]


def _draw(ax, metric: str | None, curves: list[Curve]) -> None:
    right = None
    for c in curves:
        x, y = c.log["step"].to_numpy(float), c.log["loss"].to_numpy(float)
        ax.plot(x, y, c=c.colour, alpha=0.25, lw=0.8)
        ax.plot(x, smoothed(y), c=c.colour, lw=1.6, label=f"{c.label} loss")
        vals = [col for col in c.log.columns if col.startswith("val_")]
        if metric is None or (not vals and c.kept_value is None):
            continue
        right = right if right is not None else ax.twinx()
        for col in vals:
            v = c.log[["step", col]].dropna()
            right.plot(v["step"], v[col], c=c.colour, ls=":", marker=".", label=f"{c.label} {col}")
        if c.kept_value is not None:
            kept = f"{c.label} kept: val {metric} {c.kept_value:.3f}"
            right.plot([c.kept_step], [c.kept_value], ls="none", marker="*", ms=13, c=c.colour,
                       mec="k", label=kept)  # fmt: skip
    ax.set(xlabel="step", ylabel="training loss (faint: per step)")
    handles, labels = ax.get_legend_handles_labels()
    if right is not None:
        right.set_ylabel(f"validation {metric}")
        more = right.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=7, loc="upper right")


def curves_figure(panels: list[tuple[str, str | None, list[Curve]]]) -> Figure:
    """One panel per (title, validation metric or None, curves)."""
    fig = Figure(figsize=(5.0 * len(panels), 3.8), layout="constrained")
    for ax, (title, metric, curves) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        _draw(ax, metric, curves)
        ax.set_title(title, fontsize=10)
    return fig


def _pretrain_panels(suite: Suite, out: Path) -> list[tuple[str, str | None, list[Curve]]]:
    panels: list[tuple[str, str | None, list[Curve]]] = []
    for backbone in suite.backbones:
        for obj in (o for o in suite.objectives if o != "scratch"):
            log = read_log(out / "pretrain" / backbone.replace(":", "-") / obj)
            colour = f"C{suite.objectives.index(obj)}"  # each objective one colour everywhere
            if log is not None:
                panels.append((f"pretraining: {backbone} {obj}", None, [Curve(obj, log, colour)]))
    return panels


def _finetune_panels(suite: Suite, out: Path, cells: list[Cell]) -> list:
    from .suite import task_spec

    groups: dict[tuple[str, str], list[Curve]] = {}
    for c in cells:
        run = out / c.path / f"seed_{c.seed}"
        log = read_log(run)
        if log is None:
            continue
        metric = task_spec(c.task).primary_metric
        kept = run / "val_metrics.json"
        best = json.loads(kept.read_text()) if kept.is_file() else {}
        value = (best.get("metrics") or {}).get(metric)
        colour = f"C{suite.objectives.index(c.objective)}"
        groups.setdefault((c.task, c.backbone), []).append(
            Curve(c.objective, log, colour, best.get("step"), value)
        )
    return [
        (f"{task} ({backbone}, {cells[0].shots} shots, seed {cells[0].seed})",
         task_spec(task).primary_metric, curves)
        for (task, backbone), curves in groups.items()
    ]  # fmt: skip


def _missing_note(suite: Suite, out: Path) -> str | None:
    done = [c for c in suite.cells() if (out / c.path / "done.json").exists()]
    bare = [c for c in done if read_log(out / c.path / f"seed_{c.seed}") is None]
    if not bare:
        return None
    named = [f"{c.task} {c.backbone} {c.objective} {c.shots} shots seed {c.seed}" for c in bare]
    more = f", and {len(named) - 12} more" if len(named) > 12 else ""
    return (
        f"No training log (log.csv) in {len(bare)} of {len(done)} cells, so no curve: they took "
        f"no logged gradient steps ({'; '.join(named[:12])}{more}). The Cells table shows the "
        "checkpoint each kept and its validation score."
    )


def training_part(suite: Suite, out: Path, cells: list[Cell]) -> Part:
    figures, notes = [], []
    pre = _pretrain_panels(suite, out)
    if pre:
        png = to_png(curves_figure(pre))
        figures.append(Section("curves-pretrain", "Pretraining loss", png, "pretraining loss"))
    else:
        notes.append("No pretraining log in this suite (no pretrained objective, or none ran).")
    fine = _finetune_panels(suite, out, cells)
    if fine:
        png = to_png(curves_figure(fine))
        figures.append(Section("curves-finetune", "Fine-tuning", png, "fine-tuning curves"))
        notes.append(
            "Validation runs at every checkpoint, but only the kept (best) checkpoint's scores "
            "are stored (val_metrics.json): the star on the right axis is that score and step."
        )
    note = _missing_note(suite, out)
    notes += [note] if note else []
    intro = "Loss against step from the runs' log.csv (faint: every step; solid: trailing mean)."
    return Part("training", "Training curves", intro, figures=tuple(figures), notes=tuple(notes))
