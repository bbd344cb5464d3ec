"""FOMO26 tasks 6 (linear probe) and 7 (fairness) as cells of a suite: no fine-tuning; the
probe cohort's scans (synth kind `probe`, both splits pooled: research and clinical sites) are
embedded by each objective's frozen encoder (`inference.embed`; scratch: the same network at
random initialisation, seeded by the cell's seed), then the organisers' protocol runs on the
embeddings (`evaluation.linear_probe`: 13 heads, 40/10/50 split, seed 42 + the cell's seed)
with fairness across sex, age by decade and site (`evaluation.fairness`).

OUT/probe/<family-size>/<objective>/seed_S/   encoder/ (scratch only), embeddings/, labels.csv,
                                              probe.json, predictions.csv, splits.json, done.json
A cell of `fomo26-probe` holds the test macro AUROC and F1 (95% bootstrap CIs); a cell of
`fomo26-fairness` the fairness score of each (mean over the variables of 1 - (max - min)
across groups; no interval). Shots do not enter a frozen-encoder probe: every shots value of a
(backbone, objective, seed) shares one result, computed once.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import pandas as pd

from ..io.atomic import atomic_write_text, exclusive
from .suite import Cell, Suite

PROBE, FAIRNESS = "fomo26-probe", "fomo26-fairness"
STAGE_TASKS = (PROBE, FAIRNESS)
GROUPS = ("sex", "age", "site")  # the synth cohort's participants.csv columns
AGE_BIN_YEARS = 10.0  # age is binned by decade, as the organisers do
SPLITS = ("finetune", "test")


@functools.cache
def _spec(task: str):
    from ..synth.fomo26 import PROBE_CLASS_NAMES
    from ..tasks.spec import TaskSpec

    what = {
        PROBE: "linear probe of frozen embeddings, macro one-vs-rest AUROC and F1",
        FAIRNESS: "fairness of that probe: 1 - (max - min) across groups, averaged",
    }
    return TaskSpec(
        name=task, type="multiclass", modalities=["t1|t2|flair"], classes=list(PROBE_CLASS_NAMES),
        metrics=["auroc_ovr", "f1_macro"], ranking_metrics=["auroc_ovr", "f1_macro"],
        description=f"FOMO26 task {6 if task == PROBE else 7}: {what[task]}",
    )  # fmt: skip


def stage_spec(task: str):
    """The spec the bench's tables read for a stage task (type, metrics, primary metric)."""
    import dataclasses

    return dataclasses.replace(_spec(task))


def per_case(task: str) -> bool:
    """Whether a task's metric is a mean over test cases (so a paired bootstrap applies):
    fairness is a disparity between groups, not one."""
    return task != FAIRNESS


def stage_dir(out: Path, backbone: str, objective: str, seed: int) -> Path:
    return out / "probe" / backbone.replace(":", "-") / objective / f"seed_{seed}"


def _scratch_encoder(suite: Suite, backbone: str, seed: int, folder: Path) -> Path:
    """The backbone at random initialisation (seeded), with the card of the suite's recipe."""
    import dataclasses

    import torch

    from ..data.preprocess import PreprocessConfig, recipe
    from ..models.backbones import create_backbone
    from ..models.card import ModelCard
    from ..models.checkpoint import save_model

    if (folder / "card.json").is_file():
        return folder
    fam, size = backbone.split(":")
    torch.manual_seed(seed)
    model = create_backbone(fam, in_channels=1, out_channels=1, size=size)
    pre = PreprocessConfig(normalization=suite.data.normalization)  # type: ignore[arg-type]
    norm = recipe(dataclasses.asdict(pre))
    spacing = [float(v) for v in suite.data.spacing]
    card = ModelCard.for_model(model, spacing=spacing, normalization=norm, ssl_method=None,
                               extra={"init": f"random, torch seed {seed}"})  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    save_model(folder, model, card)
    return folder


def cohort(task_dir: Path, folder: Path) -> tuple[list[tuple[str, Path]], Path]:
    """(id, scan) of every probe case of both splits, and folder/labels.csv (id, label and
    the grouping columns); an id is split/subject."""
    items, rows = [], []
    for split in SPLITS:
        part = pd.read_csv(task_dir / split / "participants.csv", dtype=str)
        for rec in part.to_dict("records"):
            key = f"{split}/{rec['subject']}"
            scans = sorted((task_dir / split / "preprocessed" / rec["subject"]).rglob("*.nii.gz"))
            items += [(key, scans[0])]
            rows.append({"id": key, **{k: rec[k] for k in ("label", *GROUPS)}})
    labels = folder / "labels.csv"
    atomic_write_text(labels, pd.DataFrame(rows).to_csv(index=False))
    return items, labels


def probe_stage(suite: Suite, backbone: str, objective: str, init: str, seed: int,
                task_dir: Path, out: Path) -> tuple[dict, float]:  # fmt: skip
    """(probe.json's report, seconds this call spent): embed, probe, score; once per
    (backbone, objective, seed), read back afterwards; cells run in parallel take turns."""
    folder = stage_dir(out, backbone, objective, seed)
    with exclusive(folder.parent / f"{folder.name}.lock"):  # the probe and fairness cells share it
        if (folder / "done.json").is_file():
            return json.loads((folder / "probe.json").read_text()), 0.0
        return _run_stage(suite, backbone, init, seed, task_dir, folder)


def _run_stage(suite: Suite, backbone: str, init: str, seed: int, task_dir: Path,
               folder: Path) -> tuple[dict, float]:  # fmt: skip
    from ..evaluation.fairness import Binning, group_of
    from ..evaluation.linear_probe import Protocol, check_ids, run_probe, write_probe
    from ..evaluation.probe_inputs import read_embeddings, read_labels
    from ..inference.embed import Embedder
    from ..inference.embed_batch import embed_batch

    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    if init == "scratch":
        init = str(_scratch_encoder(suite, backbone, seed, folder / "encoder"))
    items, labels_csv = cohort(task_dir, folder)
    res = embed_batch(Embedder(init), items, folder / "embeddings", progress=False,
                      echo=lambda _: None)  # fmt: skip
    if res["failed"]:
        raise RuntimeError(f"{folder / 'embeddings'}: {len(res['failed'])} scan(s) failed to "
                           f"embed: {res['failed'][0]}")  # fmt: skip
    table = read_labels(labels_csv, GROUPS)
    ids, x = read_embeddings(folder / "embeddings")
    check_ids(folder / "embeddings", ids, labels_csv, table)
    bins = {"age": Binning(AGE_BIN_YEARS)}
    by_var = {g: group_of(table.groups[g], g, bins.get(g)) for g in GROUPS}
    protocol = Protocol(seed=42 + seed, n_boot=suite.n_boot)
    report, preds, parts = run_probe(folder / "embeddings", ids, x, table, by_var, protocol)
    write_probe(folder, report, preds, parts)
    secs = time.perf_counter() - t0
    atomic_write_text(folder / "done.json", json.dumps({"seconds": secs, "init": init}))
    return report, secs


def _metrics(task: str, report: dict) -> dict:
    if task == PROBE:
        return {k: report["test"]["metrics"][k] for k in ("auroc_ovr", "f1_macro")}
    score = (report.get("fairness") or {}).get("score", {})
    return {
        k: {"estimate": score.get(k), "lo": None, "hi": None} for k in ("auroc_ovr", "f1_macro")
    }


def run_stage_cell(suite: Suite, cell: Cell, init: str, task_dir: Path, out: Path) -> dict:
    """One cell of a stage task: the (shared) probe result as its done.json, the test
    predictions and the kept head's validation AUROC beside it (what the tables read)."""
    cell_dir = out / cell.path
    done = cell_dir / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    report, secs = probe_stage(suite, cell.backbone, cell.objective, init, cell.seed, task_dir,
                               out)  # fmt: skip
    src = stage_dir(out, cell.backbone, cell.objective, cell.seed)
    seed_dir = cell_dir / f"seed_{cell.seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    if per_case(cell.task):
        atomic_write_text(seed_dir / "predictions.csv", (src / "predictions.csv").read_text())
        val = report["validation_auroc"][f"{report['chosen_lr']:g}"]
        kept = {"metrics": {"auroc_ovr": val}, "chosen_lr": report["chosen_lr"]}
        atomic_write_text(seed_dir / "val_metrics.json", json.dumps(kept, indent=2))
    record = {
        **{k: getattr(cell, k) for k in ("task", "backbone", "objective", "shots", "seed")},
        "init": init,
        "n_test": report["n"]["test"],
        "finetune_seconds": round(secs, 2),  # embed + probe; 0 where another cell ran them
        "evaluate_seconds": 0.0,
        "metrics": _metrics(cell.task, report),
        "warnings": [],
        "probe": str(src.relative_to(out)),
    }
    atomic_write_text(done, json.dumps(record, indent=2))
    return record
