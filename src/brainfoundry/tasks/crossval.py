"""K-fold cross-validation of fine-tuning (`finetune --folds K`): each fold's model trains on the
other folds and is scored on its own, with the task's metrics; the folds' scores give a mean and
a 95% interval, and the pooled out-of-fold predictions a report.

OUT/store/               the fine-tuning data, prepared once and shared by every fold and seed
OUT/folds.json           which fold every session (and subject) is in, drawn once (tasks/folds)
OUT/fold_k/seed_S/       a `finetune` seed folder trained on the other folds: its shots and its
                         validation cases (checkpoint choice) are drawn from them, never from
                         fold k; plus cv_predictions.csv and cv_metrics.json on fold k (the
                         latter written last: a finished seed is skipped on a rerun)
OUT/fold_k/fold.json     fold k's held-out cases and its seeds' metrics
OUT/cv.json              per-fold metrics, their mean with a 95% Student-t interval over folds
                         (`evaluation.statistics.t_interval`), the pooled out-of-fold metrics
                         (bootstrap over sessions), and the warnings
OUT/cv_predictions.csv   every held-out prediction (columns fold, seed, subject, ...)
OUT/report.html          the report on the pooled out-of-fold predictions (mean over seeds)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..engine.device import pick_device
from ..errors import ConfigError
from ..evaluation import summarize, write_report
from ..evaluation.statistics import t_interval
from ..io.atomic import atomic_write_text
from ..resume import check_resume
from .evaluate import _predict_seed
from .finetune import FinetuneConfig, finetune_seed, prepare_run, seed_config
from .folds import assign_folds, fold_warnings
from .model_io import load_task_model
from .sources import TaskSource
from .spec import TaskSpec

if TYPE_CHECKING:
    from ..data.store import Store

DONE = "cv_metrics.json"
CI_METHOD = (
    "95% Student-t interval over folds: mean ± t(0.975, K-1) · sd / sqrt(K) of the K fold "
    "scores, each fold's score the mean over its seeds; the folds share training cases, so it "
    "is somewhat narrow (Bengio & Grandvalet 2004), and it is not clipped to the metric's range"
)


@dataclass
class CV:
    """What every fold needs: the run's config, task, store, cases and where they go; `source`:
    the data as `prepare_run` read it (a held-out fold's reference masks come from it)."""

    cfg: FinetuneConfig
    spec: TaskSpec
    store: Store
    cases: pd.DataFrame
    fold_of: dict[str, int]
    out: Path
    source: TaskSource
    n_boot: int


def cross_validate(
    cfg: FinetuneConfig, data: str | Path, out: str | Path, log=print, store_dir=None,
    n_boot: int = 1000,
) -> dict:  # fmt: skip
    """Run (or resume) every fold and seed; returns (and writes) cv.json's record."""
    if not cfg.folds:
        raise ConfigError("cross-validation needs folds >= 2 (--folds K)")
    out = Path(out)
    for k in range(cfg.folds):  # a changed run is refused before any work
        for seed in cfg.seeds:
            check_resume(out / f"fold_{k}" / f"seed_{seed}" / "config.yaml", seed_config(cfg, seed))
    spec, store, cases, warnings, source = prepare_run(cfg, data, out, log, store_dir)
    stratify = spec.categorical
    fold_of = fold_table(cfg, cases, out / "folds.json", stratify)
    warnings += fold_warnings(cases, fold_of, cfg.folds, stratify)
    run = CV(cfg, spec, store, cases, fold_of, out, source, n_boot)
    folds, preds = [], []
    for k in range(cfg.folds):
        record, fold_preds = run_fold(run, k, log)
        folds.append(record)
        preds.append(fold_preds)
        warnings += [w for w in record.pop("warnings") if w not in warnings]
    for w in warnings:
        log(f"warning: {w}")
    return write_summary(run, folds, pd.concat(preds, ignore_index=True), warnings)


def fold_table(cfg: FinetuneConfig, cases: pd.DataFrame, path: Path, stratify: bool) -> dict:
    """The fold of every session, drawn once and written; a rerun must find the same."""
    fold_of = assign_folds(cases, int(cfg.folds or 0), cfg.fold_seed, stratify)
    subject = dict(zip(cases["key"], cases["case"]))
    record = {"folds": cfg.folds, "fold_seed": cfg.fold_seed, "stratified": stratify,
              "grouped_by": "subject", "fold_of": fold_of,
              "subjects": {subject[k]: f for k, f in fold_of.items()}}  # fmt: skip
    if path.exists() and json.loads(path.read_text()) != record:
        raise ConfigError(
            f"{path}: the fine-tuning cases differ from those the folds were drawn on; use the "
            "same --data, or pass --restart to start afresh"
        )
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return fold_of


def run_fold(run: CV, k: int, log) -> tuple[dict, pd.DataFrame]:
    """Fold k: every seed trained on the other folds and scored on fold k (finished seeds are
    read back). Returns (the fold's record, its held-out predictions over seeds)."""
    fold = run.cases["key"].map(run.fold_of)
    held = run.cases[fold == k].reset_index(drop=True)
    pool = run.cases[fold != k].reset_index(drop=True)
    fold_dir = run.out / f"fold_{k}"
    per_seed, tables, warnings = {}, [], []
    for seed in run.cfg.seeds:
        seed_dir = fold_dir / f"seed_{seed}"
        if (seed_dir / DONE).exists():
            log(f"fold {k} seed {seed}: finished, skipped")
        else:
            log(f"fold {k} seed {seed}: training on {len(pool)} cases, {len(held)} held out")
            finetune_seed(run.cfg, run.spec, run.store, pool, seed_dir, seed, log)
            score_held_out(run, held, seed_dir)
        summary = json.loads((seed_dir / DONE).read_text())
        per_seed[str(seed)] = summary["metrics"]
        warnings += [w for w in summary.get("warnings", []) if w not in warnings]
        table = pd.read_csv(seed_dir / "cv_predictions.csv")
        tables.append(table.assign(fold=k, seed=int(seed)))
    names = list(next(iter(per_seed.values())))
    means = {n: t_interval([_est(m.get(n)) for m in per_seed.values()])["mean"] for n in names}
    record = {"fold": k, "n_cases": len(held), "n_subjects": int(held["case"].nunique()),
              "held_out": sorted(held["key"]), "metrics": means, "per_seed": per_seed}  # fmt: skip
    atomic_write_text(fold_dir / "fold.json", json.dumps(record, indent=2) + "\n")
    log(f"fold {k}: " + ", ".join(f"{n} {_fmt(v)}" for n, v in means.items()))
    return {**record, "warnings": warnings}, pd.concat(tables, ignore_index=True)


def score_held_out(run: CV, held: pd.DataFrame, seed_dir: Path) -> dict:
    """The kept model of `seed_dir` on its held-out fold, as `evaluate` scores a test set:
    cv_predictions.csv, then cv_metrics.json (last, the seed's done marker)."""
    model, card, spec = load_task_model(seed_dir)
    model = model.to(pick_device(run.cfg.train.device))
    preds, _, warnings, checked = _predict_seed(model, card, spec, run.store, held, run.source)
    preds = preds.rename(columns={"case": "subject"}).rename(columns={"key": "case"})
    text = preds.to_csv(index=False)
    atomic_write_text(seed_dir / "cv_predictions.csv", text)
    summary = summarize(spec.head, preds, metrics=spec.metrics, n_boot=run.n_boot, seed=0)
    summary.update(task=spec.name, held_out="fold", warnings=warnings)
    if checked is not None:
        summary["plausibility"] = checked
    atomic_write_text(seed_dir / DONE, json.dumps(summary, indent=2))
    return summary


def write_summary(run: CV, folds: list[dict], preds: pd.DataFrame, warnings: list) -> dict:
    """cv.json (per fold, mean ± t-interval over folds, pooled), cv_predictions.csv and the
    report on the pooled out-of-fold predictions."""
    spec = run.spec
    names = list(folds[0]["metrics"])
    over = {n: t_interval([_est(f["metrics"].get(n)) for f in folds]) for n in names}
    atomic_write_text(run.out / "cv_predictions.csv", preds.to_csv(index=False))
    pooled = pooled_predictions(preds)
    summary = summarize(spec.head, pooled, metrics=spec.metrics, n_boot=run.n_boot, seed=0)
    if spec.type == "multiclass":
        summary["classes"] = spec.classes
    summary.update(task=spec.name, warnings=warnings)
    record = {
        "task": spec.name, "folds": run.cfg.folds, "fold_seed": run.cfg.fold_seed,
        "seeds": [int(s) for s in run.cfg.seeds], "n_cases": len(run.cases),
        "n_subjects": int(run.cases["case"].nunique()),
        "grouping": "subject (no subject in two folds)",
        "stratified": spec.categorical, "ci": CI_METHOD, "metrics": over,
        "per_fold": folds, "pooled": summary, "warnings": warnings,
    }  # fmt: skip
    atomic_write_text(run.out / "cv.json", json.dumps(record, indent=2) + "\n")
    details = {
        "task": spec.name, "cross-validation": f"{run.cfg.folds} folds grouped by subject",
        "seeds": ", ".join(map(str, run.cfg.seeds)), "init": run.cfg.init,
        "predictions": "out-of-fold, mean over seeds per session",
        "over folds": "; ".join(f"{n} {_fmt(v['mean'])} [{_fmt(v['lo'])}, {_fmt(v['hi'])}]"
                                for n, v in over.items()),
        "warnings": len(warnings),
    }  # fmt: skip
    title = f"{spec.name} — {run.cfg.folds}-fold cross-validation"
    write_report(run.out, spec.head, pooled, summary, title=title, details=details)
    return record


def pooled_predictions(preds: pd.DataFrame) -> pd.DataFrame:
    """One row per session: its held-out predictions averaged over seeds (each session is held
    out in exactly one fold)."""
    numeric = preds.drop(columns=["subject", "seed"]).groupby("case", sort=True)
    return numeric.mean(numeric_only=True).reset_index()


def _est(m) -> float:
    v = m.get("estimate") if isinstance(m, dict) else m
    return float("nan") if v is None else float(v)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"
