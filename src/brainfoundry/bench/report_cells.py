"""The per-cell parts of the bench report: every cell with links to its own report, the test
cases of the primary cells side by side, their figures (drawn by the evaluation report's own
functions), and a breakdown by scanner or site where the predictions carry such a column.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from ..evaluation.report import figure_sections
from ..evaluation.report_html import Section
from ..evaluation.scoring import score_ci
from .report_data import Part, Table
from .suite import Cell, Suite

SITE_COLUMNS = ("site", "scanner", "centre", "center", "vendor", "manufacturer")


def _spec(task: str):
    from .suite import task_spec

    return task_spec(task)


def site_column(predictions: pd.DataFrame) -> str | None:
    """The predictions' scanner or site column (any case), or None."""
    return next((c for c in predictions.columns if c.lower() in SITE_COLUMNS), None)


def _seed_dir(out: Path, cell: Cell) -> Path:
    return out / cell.path / f"seed_{cell.seed}"


def _read(out: Path, cell: Cell) -> tuple[pd.DataFrame, dict] | None:
    """A finished cell's predictions and evaluation summary, or None when either is missing."""
    d = _seed_dir(out, cell)
    if not (d / "predictions.csv").is_file() or not (d / "metrics.json").is_file():
        return None
    return pd.read_csv(d / "predictions.csv"), json.loads((d / "metrics.json").read_text())


def primary_cells(suite: Suite, out: Path, shots: int) -> list[Cell]:
    """The finished cells the report details: `shots` (else the largest budget), first seed."""
    budget = shots if shots in suite.shots else max(suite.shots)
    return [
        c
        for c in suite.cells()
        if c.shots == budget and c.seed == min(suite.seeds)
        and (out / c.path / "done.json").exists()
    ]  # fmt: skip


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _cell_row(out: Path, cell: Cell) -> dict:
    rec = json.loads((out / cell.path / "done.json").read_text())
    metric = _spec(cell.task).primary_metric
    m = rec["metrics"].get(metric) or {}
    d = _seed_dir(out, cell)
    kept, summary = _json(d / "val_metrics.json"), _json(d / "metrics.json")
    warned = len(summary["warnings"]) if "warnings" in summary else None  # older runs: unknown
    report = d / "report.html"
    montage = (
        _spec(cell.task).type == "segmentation"
        and report.is_file()
        and 'id="montage"' in report.read_text(encoding="utf-8")
    )
    return {
        **{k: getattr(cell, k) for k in ("task", "backbone", "objective", "shots", "seed")},
        "metric": metric, "value": m.get("estimate"), "lo": m.get("lo"), "hi": m.get("hi"),
        "kept step": kept.get("step"), "val value": (kept.get("metrics") or {}).get(metric),
        "fine-tune s": rec.get("finetune_seconds"), "evaluate s": rec.get("evaluate_seconds"),
        "log.csv": (d / "log.csv").is_file(), "warnings": warned,
        "report": str(report.relative_to(out)) if report.is_file() else None,
        "montage": f"{report.relative_to(out)}#montage" if montage else None,
    }  # fmt: skip


def cells_table(suite: Suite, out: Path) -> Table:
    rows = [_cell_row(out, c) for c in suite.cells() if (out / c.path / "done.json").exists()]
    caption = (
        "Every finished cell: its primary test metric with the CI of the results table, the "
        "checkpoint fine-tuning kept and its validation score (val_metrics.json), the seconds "
        "it took, whether it logged training steps, how many warnings its evaluation gave "
        "(listed in its report; blank: not recorded), and links to its own report (figures, "
        "metrics, details) and, for segmentation, its best/worst-case overlay montage."
    )
    frame = pd.DataFrame(rows)
    if not frame.empty:  # whole numbers, or blank where a cell recorded none
        frame = frame.astype({"kept step": "Int64", "warnings": "Int64"})
    return Table("cells", "Cells", frame, caption, links=("report", "montage"))


def case_frame(task_type: str, preds: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per test case: its truth (and site) from the first table, then each objective's
    per-case output side by side (the cells of one task share their test cases)."""
    frame: pd.DataFrame | None = None
    for obj, df in preds.items():
        if task_type == "classification":
            part = df[["case"]].assign(label=df["label"].astype(int), **{f"{obj} prob": df["prob"]})
        elif task_type == "regression":
            err = (df["pred"] - df["label"]).abs()
            part = df[["case", "label"]].assign(
                **{f"{obj} pred": df["pred"], f"{obj} |error|": err}
            )
        else:
            part = df[["case"]].assign(**{f"{obj} {m}": df[m] for m in ("dice", "hd95")})
        site = site_column(df)
        if site is not None:
            part = part.assign(**{site: df[site]})
        if frame is None:
            frame = part
        else:
            mine = part[["case", *(c for c in part.columns if c.startswith(f"{obj} "))]]
            frame = frame.merge(mine, on="case", how="outer")
    return frame if frame is not None else pd.DataFrame()


def _by_task(out: Path, cells: list[Cell]) -> dict[tuple[str, str], dict[str, tuple]]:
    """{(task, backbone): {objective: (predictions, summary)}} for the readable cells."""
    found: dict[tuple[str, str], dict[str, tuple]] = {}
    for c in cells:
        got = _read(out, c)
        if got is not None:
            found.setdefault((c.task, c.backbone), {})[c.objective] = got
    return found


def cases_part(suite: Suite, out: Path, cells: list[Cell]) -> Part:
    tables = [cells_table(suite, out)]
    for (task, backbone), objs in _by_task(out, cells).items():
        kind = _spec(task).type
        frame = case_frame(kind, {o: p for o, (p, _) in objs.items()})
        c = next(x for x in cells if x.task == task and x.backbone == backbone)
        caption = (
            f"One row per test case of the {task} cells at {c.shots} shots, seed {c.seed} "
            f"({backbone}); sort a column to find the cases the objectives get wrong."
        )
        tables.append(Table(f"cases-{task}-{backbone.replace(':', '-')}",
                            f"Test cases: {task} ({backbone})", frame, caption,
                            folded=True))  # fmt: skip
    return Part("cells", "Cells and test cases", tables=tuple(tables))


def figures_part(out: Path, cells: list[Cell]) -> Part:
    from .probe_stage import STAGE_TASKS
    from .report_stage import stage_sections

    sections, notes = stage_sections(out, cells)
    for c in (c for c in cells if c.task not in STAGE_TASKS):
        got = _read(out, c)
        if got is None:
            notes.append(f"{c.path}: no predictions.csv or metrics.json, so no figures.")
            continue
        preds, summary = got
        for s in figure_sections(_spec(c.task).type, preds, summary.get("metrics", {})):
            sid = f"fig-{c.task}-{c.objective}-{c.backbone.replace(':', '-')}-{s.id}"
            sections.append(Section(sid, f"{c.task} · {c.objective} · {c.backbone}: {s.heading}",
                                    s.png, f"{c.task} {c.objective} {s.alt}", s.note))  # fmt: skip
    intro = (
        "Drawn from each detailed cell's predictions.csv by the functions of the cell's own "
        "report: ROC curve and reliability diagram (classification), predicted vs true with "
        "95% intervals (regression), per-case Dice, NSD and HD95 (segmentation); for the "
        "frozen-embedding tasks, from their probe.json: the learning-rate sweep, the confusion "
        "matrix and the metric per demographic group. The overlay montages are in the cells' "
        "own reports (linked under Cells)."
    )
    return Part("figures", "Per-task figures", intro, figures=tuple(sections), notes=tuple(notes))


def site_breakdown(task_type: str, metric: str, preds: pd.DataFrame, site: str, summary: dict):
    """The primary metric per group of cases, with the cell's own bootstrap settings."""
    rows = []
    for group, g in preds.groupby(site, sort=True):
        with warnings.catch_warnings():  # a one-class group is undefined: shown as a dash
            warnings.simplefilter("ignore")
            m = score_ci(task_type, metric, g, n_boot=int(summary.get("n_boot", 1000)),
                         alpha=float(summary.get("alpha", 0.05)),
                         seed=int(summary.get("seed", 0)))  # fmt: skip
        rows.append({"group": group, "n cases": len(g), "value": m["estimate"],
                     "lo": m["lo"], "hi": m["hi"]})  # fmt: skip
    return pd.DataFrame(rows)


def sites_part(suite: Suite, out: Path, cells: list[Cell]) -> Part:
    frames = []
    for c in cells:
        got = _read(out, c)
        site = site_column(got[0]) if got is not None else None
        if got is None or site is None:
            continue
        preds, summary = got
        spec = _spec(c.task)
        df = site_breakdown(spec.type, spec.primary_metric, preds, site, summary)
        frames.append(df.assign(task=c.task, backbone=c.backbone, objective=c.objective,
                                column=site, metric=spec.primary_metric))  # fmt: skip
    if not frames:
        cols = ", ".join(SITE_COLUMNS)
        return Part("sites", "By scanner or site",
                    notes=(f"No site/scanner column in these data (looked for {cols} in the "
                           "detailed cells' predictions.csv).",))  # fmt: skip
    table = pd.concat(frames, ignore_index=True)
    lead = ["task", "backbone", "objective", "column", "group", "n cases", "metric"]
    table = table[lead + ["value", "lo", "hi"]]
    cap = (
        "The primary metric within each group of test cases, with the cell's own percentile "
        "bootstrap settings applied to the group's cases; a dash: undefined in that group "
        "(e.g. one class only)."
    )
    return Part("sites", "By scanner or site", tables=(Table("sites", "By group", table, cap),))
