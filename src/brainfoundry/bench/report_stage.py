"""Figures of the frozen-embedding stage tasks (FOMO26 tasks 6 and 7) for the bench report,
read from each stage's own probe.json and predictions.csv: the probe's learning-rate sweep
(one line per objective), its confusion matrix, and the metric per demographic group that the
fairness score summarises. Their cells hold no per-case predictions of their own, so the
per-task figures of the fine-tuned tasks do not apply.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..evaluation.figures import confusion_figure, group_metric_figure, lr_sweep_figure, to_png
from ..evaluation.report_html import Section
from .probe_stage import FAIRNESS, PROBE, STAGE_TASKS
from .suite import Cell


def _stage(out: Path, cell: Cell) -> tuple[dict, Path] | None:
    """A finished stage cell's probe.json report and its stage folder, or None."""
    done = out / cell.path / "done.json"
    if not done.is_file():
        return None
    folder = out / json.loads(done.read_text())["probe"]
    report = folder / "probe.json"
    return (json.loads(report.read_text()), folder) if report.is_file() else None


def _sid(*parts: str) -> str:
    return "fig-" + "-".join(p.replace(":", "-") for p in parts)


def stage_sections(out: Path, cells: list[Cell]) -> tuple[list[Section], list[str]]:
    """(figure sections, notes) for the stage cells among `cells`."""
    sections: list[Section] = []
    notes: list[str] = []
    sweeps: dict[str, tuple[dict, dict]] = {}
    for c in (c for c in cells if c.task in STAGE_TASKS):
        got = _stage(out, c)
        if got is None:
            notes.append(f"{c.path}: no probe.json, so no figures.")
            continue
        report, folder = got
        name = f"{c.task} · {c.objective} · {c.backbone}"
        if c.task == PROBE:
            curves, chosen = sweeps.setdefault(c.backbone, ({}, {}))
            curves[c.objective] = {float(k): v for k, v in report["validation_auroc"].items()}
            chosen[c.objective] = float(report["chosen_lr"])
            preds = pd.read_csv(folder / "predictions.csv")
            png = to_png(confusion_figure(preds["label"], preds["pred"], report["classes"]))
            sections.append(Section(_sid(c.task, c.objective, c.backbone, "confusion"),
                                    f"{name}: test confusion matrix", png,
                                    f"{c.task} {c.objective} confusion matrix"))  # fmt: skip
        elif c.task == FAIRNESS and report.get("fairness"):
            per = {v: {g: m["auroc_ovr"] for g, m in r["groups"].items()}
                   for v, r in report["fairness"]["variables"].items()}  # fmt: skip
            png = to_png(group_metric_figure(per, "test macro AUROC"))
            sections.append(Section(_sid(c.task, c.objective, c.backbone, "groups"),
                                    f"{name}: macro AUROC per group", png,
                                    f"{c.task} {c.objective} AUROC per group"))  # fmt: skip
    for backbone, (curves, chosen) in sweeps.items():
        png = to_png(lr_sweep_figure(curves, chosen))
        sections.insert(0, Section(_sid(PROBE, backbone, "sweep"),
                                   f"{PROBE} · {backbone}: validation AUROC per learning rate",
                                   png, f"{PROBE} learning-rate sweep"))  # fmt: skip
    return sections, notes
