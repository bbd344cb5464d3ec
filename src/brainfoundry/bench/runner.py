"""Run a suite end to end, resumably: data → pretraining store → one pretrained run per
(backbone, objective) → one fine-tune + evaluation per cell → tables, ranking, report.

OUT/suite.yaml                       the resolved suite (a rerun with another suite is refused)
OUT/data/{pretrain,<kind>}/          generated data (synth suites; a task's kind: `synth_kind`)
OUT/store/pretrain/, store/<task>/{finetune,test}/   prepared stores, shared by every cell
OUT/pretrain/<family-size>/<objective>/              pretrained runs (weights + card)
OUT/cells/<task>/<family-size>/<objective>/shots_N/seed_S/   finetune output + done.json
OUT/probe/<family-size>/<objective>/seed_S/          FOMO26 tasks 6/7 (`probe_stage`)
OUT/results.csv, paired.csv, ranking.csv, results.md, report.html, figures/

Every unit of work writes its marker last (dataset.json, done.json), so a killed run resumes
where it stopped and finished cells are skipped. Fine-tuning itself resumes from checkpoints.
`launch.py` runs the same units as submitit jobs (`bench --launcher local|slurm`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from pathlib import Path
from typing import cast

from ..config import save_config, to_dict
from ..errors import ConfigError
from ..io.atomic import atomic_write_text
from .suite import Cell, Suite, synth_kind


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@contextlib.contextmanager
def _quiet(bars: bool = False):
    """Silence the stages' own prints (the suite logs one line per unit instead); with `bars`
    their progress bars (stderr) stay visible."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if bars:
            yield buf
        else:
            with contextlib.redirect_stderr(buf):
                yield buf


def _check_suite(suite: Suite, out: Path) -> None:
    path = out / "suite.yaml"
    if path.exists():
        import yaml

        from ..config import from_dict

        # through the dataclass, so a field added since (at its default) is no difference
        old = to_dict(from_dict(Suite, yaml.safe_load(path.read_text()), str(path)))
        new = to_dict(suite)
        same = {k: v for k, v in old.items() if k not in ("description", "expected")} == {
            k: v for k, v in new.items() if k not in ("description", "expected")
        }
        if not same:
            raise ConfigError(
                f"{out}: holds results of another suite (see its suite.yaml); use a new folder"
            )
    out.mkdir(parents=True, exist_ok=True)
    save_config(suite, path)


def _synth(
    kind: str, out: Path, n: int, n_test: int | None, seed: int, suite: Suite, progress: bool
) -> Path:  # at the suite's resolution for `kind`
    from ..synth.config import SynthConfig
    from ..synth.writers import generate

    if (out / "dataset.json").exists():
        return out
    s = suite.data.synth
    assert s is not None
    cfg = SynthConfig(
        kind=kind, n=n, n_test=n_test, resolution=s.resolution_of(kind), seed=seed, shift=s.shift,
        difficulty=s.difficulty, workers=_workers(), qc=False,
    )  # fmt: skip
    with _quiet(progress):
        generate(cfg, out, progress=progress, force=True)
    return out


def make_data(
    suite: Suite, out: Path, log=print, progress: bool = False
) -> tuple[Path | None, dict[str, Path]]:
    """(pretraining corpus or None, {task: folder with finetune/ and test/})."""
    from ..synth.config import SEED_KINDS
    from ..synth.writers import shutdown_pool

    needs_pretrain = any(o != "scratch" for o in suite.objectives)
    s = suite.data.synth
    if s is None:
        from .task_data import check_task_data

        tasks = {t: Path(suite.data.tasks[t]) for t in suite.tasks}
        check_task_data(tasks)  # both splits of each, every row, before any pretraining
        # Suite validation requires data.pretrain when an objective needs it
        return (Path(cast(str, suite.data.pretrain)) if needs_pretrain else None), tasks
    t0 = time.perf_counter()
    pre = None
    if needs_pretrain:
        n = s.pretrain_subjects
        pre = _synth("pretrain", out / "data/pretrain", n, None, s.seed * 10, suite, progress)
    tasks = {}
    for task in suite.tasks:
        kind = cast(str, synth_kind(task))  # validation: every task of a synth suite has one
        seed = s.seed * 10 + SEED_KINDS.index(kind)  # every dataset its own subjects
        tasks[task] = _synth(
            kind, out / "data" / kind, s.finetune_cases, s.test_cases, seed, suite, progress
        )  # tasks of one kind (FOMO26 tasks 6 and 7) share its data
    shutdown_pool()  # the synth workers are not needed for the rest of the suite
    log(f"[data] synthetic corpus and {len(tasks)} task(s) at {s.resolution} mm "
        f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    return pre, tasks


def prepare_pretrain(suite: Suite, raw: Path, out: Path, log=print, progress=False) -> Path:
    from ..data.prepare import PrepareConfig, prepare
    from ..data.preprocess import PreprocessConfig

    store = out / "store/pretrain"
    t0 = time.perf_counter()
    pre = PreprocessConfig(
        spacing=cast(tuple[float, float, float], tuple(float(v) for v in suite.data.spacing)),
        normalization=suite.data.normalization,  # type: ignore[arg-type]
    )
    with _quiet(progress):
        res = prepare(
            raw, store, PrepareConfig(preprocess=pre), workers=_workers(), progress=progress
        )
    log(f"[prepare] {res.n_scans} scans -> {store} ({time.perf_counter() - t0:.0f} s)")
    return store


def pretrain_run(
    suite: Suite, store: Path, backbone: str, objective: str, out: Path, log=print, progress=False
):
    """The pretrained run for one (backbone, objective); skipped when already finished."""
    from ..ssl.pretrain import PretrainConfig, pretrain

    fam, size = backbone.split(":")
    run = out / "pretrain" / f"{fam}-{size}" / objective
    if (run / "done.json").exists():
        return run
    st = suite.pretrain
    ovr = [f"store={store}", f"objective.method={objective}", f"model.backbone={fam}",
           f"model.size={size}", f"train.progress={str(progress).lower()}"]  # fmt: skip
    if st.steps is not None:
        ovr.append(f"train.steps={st.steps}")
    extra = list(st.overrides) + list(st.per_key.get(objective, []))
    cfg = PretrainConfig.load(st.preset, None, ovr + extra)
    t0 = time.perf_counter()
    with _quiet(progress):
        res = pretrain(cfg, run, resume=True)
    secs = time.perf_counter() - t0
    atomic_write_text(run / "done.json", json.dumps({"seconds": secs, **_jsonable(res)}, indent=2))
    log(f"[pretrain] {backbone} {objective}: {res['step']} steps, loss "
        f"{res.get('loss', float('nan')):.4f} ({secs:.0f} s)")  # fmt: skip
    return run


def _jsonable(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool, type(None)))}


def run_cell(suite: Suite, cell: Cell, init: str, task_dir: Path, out: Path) -> dict:
    """Fine-tune and evaluate one cell; returns (and writes last) its done.json."""
    from ..tasks.evaluate import evaluate
    from ..tasks.finetune import FinetuneConfig, finetune
    from .probe_stage import STAGE_TASKS, run_stage_cell

    if cell.task in STAGE_TASKS:  # FOMO26 tasks 6/7: frozen embeddings, no fine-tuning
        return run_stage_cell(suite, cell, init, task_dir, out)
    cell_dir = out / cell.path
    done = cell_dir / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    fam, size = cell.backbone.split(":")
    st = suite.finetune
    spacing = ",".join(str(float(v)) for v in suite.data.spacing)
    ovr = [f"task={cell.task}", f"init={init}", f"seeds=[{cell.seed}]", f"shots={cell.shots}",
           f"model.backbone={fam}", f"model.size={size}", f"data.spacing=[{spacing}]",
           f"data.normalization={suite.data.normalization}", "train.progress=false"]  # fmt: skip
    if st.steps is not None:
        ovr.append(f"train.steps={st.steps}")
    extra = list(st.overrides) + list(st.per_key.get(cell.task, []))
    cfg = FinetuneConfig.load(st.preset, None, ovr + extra)
    stores = out / "store" / cell.task
    t0 = time.perf_counter()
    with _quiet():
        finetune(cfg, task_dir, cell_dir, log=lambda *_: None,  # reads its finetune part
                 store_dir=stores / "finetune")  # fmt: skip
        t1 = time.perf_counter()
        res = evaluate(cell_dir, task_dir, n_boot=suite.n_boot, log=lambda *_: None,
                       store_dir=stores / "test")  # fmt: skip
    seed_metrics = res["per_seed"][f"seed_{cell.seed}"]
    record = {
        **{k: getattr(cell, k) for k in ("task", "backbone", "objective", "shots", "seed")},
        "init": init,
        "n_test": res["n_cases"],
        "finetune_seconds": round(t1 - t0, 2),
        "evaluate_seconds": round(time.perf_counter() - t1, 2),
        "metrics": seed_metrics,
        # what fine-tuning and evaluation lost or flagged (said in their logs, kept here)
        "warnings": _cell_warnings(cell_dir) + list(res.get("warnings", [])),
    }
    atomic_write_text(done, json.dumps(record, indent=2))
    return record


def prepare_task_stores(suite: Suite, task_dirs: dict[str, Path], out: Path, log=print) -> None:
    """Prepare each task's finetune/ and test/ stores (the ones `run_cell` shares) up front,
    with the suite's recipe: cells running as parallel jobs then only read them."""
    from ..tasks.data import prepare_task_data, preprocess_config
    from .probe_stage import STAGE_TASKS
    from .task_data import task_part

    pre = preprocess_config(suite.data.spacing, None)  # the defaults, as the cells' scratch runs
    pre.normalization = suite.data.normalization  # type: ignore[assignment]
    t0 = time.perf_counter()
    task_dirs = {t: d for t, d in task_dirs.items() if t not in STAGE_TASKS}  # embed raw scans
    for task, task_dir in task_dirs.items():
        for split in ("finetune", "test"):
            src = task_part(task, task_dir, split)  # a folder or a CSV's split rows
            prepare_task_data(src.path, out / "store" / task / split, pre, src.found)
    log(f"[prepare] stores of {len(task_dirs)} task(s) ({time.perf_counter() - t0:.0f} s)")


def _cell_warnings(cell_dir: Path) -> list[str]:
    rec = cell_dir / "finetune.json"
    return list(json.loads(rec.read_text()).get("warnings", [])) if rec.exists() else []


def run_suite(suite: Suite, out: str | Path, *, log=print, progress: bool = True) -> dict:
    """Run (or resume) every stage of `suite` into `out`; returns the analysis tables."""
    from tqdm import tqdm

    from .analysis import analyse

    out = Path(out)
    _check_suite(suite, out)
    t_start = time.perf_counter()
    raw_pre, task_dirs = make_data(suite, out, log, progress)
    inits: dict[tuple[str, str], str] = {}
    pretrained = [o for o in suite.objectives if o != "scratch"]
    if pretrained:
        assert raw_pre is not None
        store = prepare_pretrain(suite, raw_pre, out, log, progress)
        for backbone in suite.backbones:
            for obj in pretrained:
                run = pretrain_run(suite, store, backbone, obj, out, log, progress)
                inits[(backbone, obj)] = str(run)
    cells = suite.cells()
    bar = tqdm(cells, desc="fine-tune + evaluate", unit="cell", disable=not progress)
    for cell in bar:
        bar.set_postfix_str(f"{cell.task} {cell.objective} {cell.shots} shots seed {cell.seed}")
        init = "scratch" if cell.objective == "scratch" else inits[(cell.backbone, cell.objective)]
        was_done = (out / cell.path / "done.json").exists()
        rec = run_cell(suite, cell, init, task_dirs[cell.task], out)
        if not was_done:
            bar.write(cell_line(cell, rec))
            for w in rec.get("warnings", []):
                bar.write(f"  warning: {w}")
    bar.close()
    tables = analyse(suite, out)
    total = time.perf_counter() - t_start
    log(f"[report] {out / 'report.html'} ({total / 60:.1f} min this run)")
    return tables


def cell_line(cell: Cell, rec: dict) -> str:
    """The log line of a finished cell: its metrics and how long it took."""
    m = ", ".join(f"{k} {_est(v):.3f}" for k, v in rec["metrics"].items())
    return (f"[cell] {cell.task} {cell.backbone} {cell.objective} shots {cell.shots} "
            f"seed {cell.seed}: {m} ({rec['finetune_seconds']:.0f}+"
            f"{rec['evaluate_seconds']:.0f} s)")  # fmt: skip


def _est(m) -> float:
    v = m.get("estimate") if isinstance(m, dict) else m
    return float("nan") if v is None else float(v)
