"""What the bench report page shows, in page order: tables whose captions say how their
intervals were made (read from the cells' own metrics.json and the analysis code), figures and
notes. Numbers come from `analysis` and the cells' files; `report_page` only lays them out.
"""

from __future__ import annotations

import inspect
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import to_dict
from ..errors import ConfigError
from ..evaluation import paired_bootstrap_diff
from ..evaluation.report_html import Section, method_note
from ..evaluation.scoring import RESAMPLING
from .analysis import RANKING_TITLE, verdict
from .machine import machine
from .suite import Suite, load_suite

RANK_CAPTION = {
    "fomo25": (
        "FOMO25 rule on the point estimates (no intervals): each objective ranked on each of a "
        "task's ranking metrics, metric ranks averaged into a task rank, task ranks averaged "
        "into mean_rank; rank orders mean_rank (1 best, ties share the mean). shots 'all' "
        "pools every budget."
    ),
    "fomo26": (
        "FOMO26 unified rule on the point estimates (no intervals): each objective ranked on "
        "each of a task's ranking metrics, metric ranks averaged into a task rank, then "
        "weighted_rank = the task ranks' mean weighted 10% each for infarct, brain age, "
        "polymicrogyria, probe and fairness and 25% each for meningioma and trigeminal "
        "(renormalised over the tasks present); rank orders weighted_rank (1 best, ties share "
        "the mean). shots 'all' pools every budget."
    ),
}
VERDICT_SHOTS = inspect.signature(verdict).parameters["shots"].default
PAIRED_ALPHA = inspect.signature(paired_bootstrap_diff).parameters["alpha"].default


@dataclass(frozen=True)
class Table:
    """A sortable table; `links` names columns holding paths relative to the page."""

    id: str
    title: str
    frame: pd.DataFrame
    caption: str
    links: tuple[str, ...] = ()
    digits: int = 3
    folded: bool = False  # long tables start collapsed under their title


@dataclass(frozen=True)
class Part:
    """One section of the page: intro, tables, figures, notes and a command, in that order."""

    id: str
    heading: str
    intro: str = ""
    tables: tuple[Table, ...] = ()
    figures: tuple[Section, ...] = ()
    notes: tuple[str, ...] = ()
    code: str = ""


@dataclass(frozen=True)
class BenchReport:
    title: str
    lines: tuple[str, ...]
    parts: tuple[Part, ...]


def reproduce_command(suite: Suite, out: Path) -> str:
    """The command that reruns exactly this suite: the built-in suite by name when the resolved
    suite is that preset unchanged, else the resolved suite saved in `out/suite.yaml`."""
    mine = {k: v for k, v in to_dict(suite).items() if k not in ("description", "expected")}
    try:
        preset = to_dict(load_suite(suite.name))
    except ConfigError:  # no built-in suite of that name (a renamed or custom suite)
        preset = None
    same = preset is not None and mine == {
        k: v for k, v in preset.items() if k not in ("description", "expected")
    }
    name = suite.name if same else str(out / "suite.yaml")
    return f"brainfoundry bench --suite {shlex.quote(name)} -o {shlex.quote(str(out))}"


def cell_summaries(suite: Suite, out: Path) -> dict[str, list[dict]]:
    """Per task, the evaluation summaries (metrics.json of the seed) of its finished cells."""
    found: dict[str, list[dict]] = {}
    for cell in suite.cells():
        path = out / cell.path / f"seed_{cell.seed}" / "metrics.json"
        if (out / cell.path / "done.json").exists() and path.is_file():
            found.setdefault(cell.task, []).append(json.loads(path.read_text()))
    return found


def results_caption(summaries: dict[str, list[dict]]) -> str:
    """How each task's intervals were made, in the evaluation report's own words."""
    notes = []
    for task, sums in summaries.items():
        said = list(dict.fromkeys(method_note(s, s.get("n_cases", 0)) for s in sums))
        notes.append(f"{task}: " + " / ".join(said))
    return "Test-set estimate of each cell with its interval [lo, hi]. " + " ".join(notes)


def verdict_caption(table: pd.DataFrame) -> str:
    """How the verdict's objective was chosen and its interval made, from the table's columns."""
    if "chosen on validation" in table.columns:
        how = "; ".join(dict.fromkeys(str(v) for v in table.get("CI", [])))
        return (
            f"Per task and backbone, the pretrained objective with the best validation primary "
            f"metric at {VERDICT_SHOTS} shots (the test set plays no part in the choice), and "
            "its test gain over scratch on the same cases" + (f"; CI: {how}." if how else ".")
        )
    return (
        f"Per task, the pretrained objective with the largest mean gain on the primary metric "
        f"at {VERDICT_SHOTS} shots against scratch on the same cases. Its CI runs from the "
        "lowest gain_lo to the highest gain_hi of its rows in the paired table (one per seed)."
    )


def _results_part(suite: Suite, out: Path, tables: dict[str, pd.DataFrame]) -> Part:
    results = tables["results"]
    keys = ["task", "backbone", "objective", "shots", "metric"]
    several = not results.empty and results.groupby(keys)["seed"].nunique().max() > 1
    primary_cap = "The primary metric of each task: estimate [lo, hi], as in the table below" + (
        "; with several seeds, mean ± sd over seeds (the spread of training runs, not a CI)."
        if several
        else "."
    )
    verdict_cap = verdict_caption(tables["verdict"])
    return Part("results", "Results", tables=(
        Table("primary", "Primary metric (test set)", tables["primary"], primary_cap),
        Table("verdict", f"Pretrained vs scratch at {VERDICT_SHOTS} shots", tables["verdict"],
              verdict_cap),
        Table("results", "Every metric of every cell", results,
              results_caption(cell_summaries(suite, out))),
    ))  # fmt: skip


def _learning_part(results: pd.DataFrame, figs: list[Path]) -> Part:
    shots = sorted(results["shots"].unique()) if not results.empty else []
    notes: tuple[str, ...] = ()
    if not shots:
        notes = ("No finished cells yet.",)
    elif len(shots) == 1:
        notes = (f"Every finished cell trains with {shots[0]} cases, so each curve is one point "
                 "per objective; list more shots in the suite for a curve.",)  # fmt: skip
    sections = tuple(
        Section(
            f"learning-{p.stem}",
            f"{p.stem.removesuffix('_shots')}: primary metric vs shots",
            p.read_bytes(),
            f"learning curves {p.stem}",
        )  # fmt: skip
        for p in figs
    )
    intro = (
        "Primary test metric against the number of training cases, one line per objective "
        "(dashed: scratch). Bars: the 95% bootstrap CI over test cases; with several seeds, "
        "the mean of the seeds' estimates and of their interval ends."
    )
    return Part("learning", "Learning curves", intro, figures=sections, notes=notes)


def _paired_part(suite: Suite, pairs: pd.DataFrame, ranks: pd.DataFrame) -> Part:
    from .suite import task_spec

    kinds = sorted({task_spec(t).type for t in suite.tasks})
    resampling = "; ".join(f"{k}: {RESAMPLING[k]}" for k in kinds)
    level = round(100 * (1 - PAIRED_ALPHA))
    paired_cap = (
        "gain: pretrained minus scratch on the same test cases, same training cases (seed) and "
        "budget, signed so that > 0 means pretraining helped (lower-is-better metrics flipped). "
        f"[gain_lo, gain_hi]: {level}% percentile paired bootstrap CI, {suite.n_boot} resamples "
        "of the test cases with both models scored on each (resampling "
        f"{resampling}); p: two-sided bootstrap p-value; helped / hurt: the CI excludes 0."
    )
    rank_cap = RANK_CAPTION[suite.protocol]
    shown = pairs.drop(columns=["diff"]) if "diff" in pairs else pairs
    return Part("paired", "Pretrained vs scratch, and the ranking", tables=(
        Table("paired", "Every paired difference", shown, paired_cap),
        Table("ranking", RANKING_TITLE[suite.protocol], ranks, rank_cap),
    ))  # fmt: skip


def _compute_part(suite: Suite, out: Path, timing: pd.DataFrame) -> Part:
    cap = (
        "Wall seconds each stage took on the machine that ran it, from the stages' done.json: "
        "one measurement each, no intervals; median per cell over the task's cells."
    )
    return Part(
        "compute",
        "Compute and how to reproduce",
        f"Machine that wrote this report: {machine()}. This command reruns the suite (in this "
        "folder finished stages are skipped; in a new folder every stage runs; add "
        "--report-only to rebuild this page):",
        tables=(Table("compute", "Compute (wall seconds)", timing, cap, digits=0),),
        code=reproduce_command(suite, out),
    )


def bench_report(
    suite: Suite, out: Path, tables: dict[str, pd.DataFrame], timing: pd.DataFrame, figs
) -> BenchReport:
    """Everything the page shows, from the analysis tables and the cells' own files."""
    from .report_cells import cases_part, figures_part, primary_cells, sites_part
    from .report_curves import training_part

    results = tables["results"]
    n_done = len(results[["task", "backbone", "objective", "shots", "seed"]].drop_duplicates())
    sizes = results.groupby("task")["n_test"].max().items() if not results.empty else []
    primary = primary_cells(suite, out, VERDICT_SHOTS)
    lines = (
        suite.description,
        f"Cells finished: {n_done} of {len(suite.cells())}. Test sets: "
        + (", ".join(f"{t} {n}" for t, n in sizes) or "none yet")
        + " cases.",
    )
    parts = (
        _results_part(suite, out, tables),
        _learning_part(results, list(figs)),
        _paired_part(suite, tables["paired"], tables["ranking"]),
        figures_part(out, primary),
        training_part(suite, out, primary),
        cases_part(suite, out, primary),
        sites_part(suite, out, primary),
        _compute_part(suite, out, timing),
    )
    return BenchReport(f"brainfoundry bench: {suite.name}", lines, parts)
