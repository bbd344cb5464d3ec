"""`bench --launcher local|slurm`: a suite's units of work as submitit jobs, one per
pretraining run and one per cell, collected into the same tables as an in-process run.

What runs where. The submitting process checks the suite, makes the data and prepares every
store (the pretraining corpus and each task's finetune/ and test/, so that no two jobs ever
write one store); it then submits, waits, and analyses. Each unfinished pretraining run
(backbone × objective) is one job; once they are done, each unfinished cell (fine-tune +
evaluate) is one job. Jobs run the in-process runner's own functions and write its markers, so
a rerun submits only what has no done.json, and a failed job is reported with its log while
the others are still collected. Each launch keeps its options (launcher.yaml) and
submitit's logs and pickles in OUT/jobs/<start time>/.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import from_dict, save_config
from ..errors import ConfigError
from .runner import (
    _check_suite,
    cell_line,
    make_data,
    prepare_pretrain,
    prepare_task_stores,
    pretrain_run,
    run_cell,
)
from .suite import Suite

LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # LocalExecutor kills a job after 2 minutes unless told


@dataclass
class SlurmOptions:
    """What each Slurm job asks for. `setup` lines run in the job script before Python starts
    (`module load …`, `source .venv/bin/activate`); `extra` passes any other sbatch option
    (account, qos, constraint, …) as KEY: VALUE."""

    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    time_min: int = 240  # submitit's own default is 5 minutes
    mem_gb: float | None = None
    setup: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Launcher:
    """Where the jobs run: `local` (submitit's LocalExecutor, subprocesses on this machine) or
    `slurm`. `max_jobs` caps the jobs running at once (0: one for local, no cap on Slurm)."""

    kind: Literal["local", "slurm"] = "local"
    max_jobs: int = 0
    slurm: SlurmOptions = field(default_factory=SlurmOptions)

    def jobs_at_once(self) -> int:
        return self.max_jobs or (1 if self.kind == "local" else 0)


def parse_sbatch_options(items: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings (the CLI's `--slurm-option`) as a mapping of sbatch options."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm-option {item!r} must look like KEY=VALUE, e.g. account=x")
        out[key.strip()] = value.strip()
    return out


def launcher_from_options(
    kind: str | None, max_jobs: int | None, slurm: dict[str, Any]
) -> Launcher | None:
    """A checked Launcher from the CLI's values (None without `--launcher`); options that
    would be ignored, unknown kinds and bad types are one-line errors."""
    given = {k: v for k, v in slurm.items() if v not in (None, [], {})}
    if kind is None:
        if given or max_jobs is not None:
            raise ConfigError("--jobs and --slurm-* options need --launcher local|slurm")
        return None
    if kind != "slurm" and given:
        raise ConfigError(f"--slurm-* options ({', '.join(sorted(given))}) need --launcher slurm")
    data = {"kind": kind, "max_jobs": max_jobs or 0, "slurm": given}
    return from_dict(Launcher, data, "--launcher")


def _local_gpus() -> dict[str, Any]:
    """Local jobs see the GPUs this process sees (LocalExecutor otherwise hides them all)."""
    import torch

    ids = [s.strip() for s in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if s.strip()]
    if ids and all(s.isdigit() for s in ids):
        return {"gpus_per_node": len(ids), "visible_gpus": tuple(int(s) for s in ids)}
    return {"gpus_per_node": torch.cuda.device_count() if torch.cuda.is_available() else 0}


def make_executor(launcher: Launcher, folder: Path, name: str = "brainfoundry"):
    """The submitit executor for `launcher`; job logs go to `folder`/<job id>_0_log.{out,err}."""
    import submitit

    if launcher.kind == "local":
        local = submitit.LocalExecutor(folder)
        local.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN, **_local_gpus())
        return local
    missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
    if missing:
        raise ConfigError(
            f"--launcher slurm: {' and '.join(missing)} not found on PATH; run bench on a Slurm "
            "login node (or load its Slurm module), or use --launcher local"
        )
    s = launcher.slurm
    ex = submitit.AutoExecutor(folder, cluster="slurm")
    ex.update_parameters(
        name=name, timeout_min=s.time_min, gpus_per_node=s.gpus_per_job or None,
        cpus_per_task=s.cpus_per_job, mem_gb=s.mem_gb, slurm_partition=s.partition,
        slurm_setup=list(s.setup) or None, slurm_additional_parameters=dict(s.extra) or None,
    )  # fmt: skip
    return ex


def launch_dir(out: Path) -> Path:
    """OUT/jobs/<start time>/: one folder per launch, so that a local job, named by its pid,
    never meets the result file of an earlier job that had the same pid."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, n = out / "jobs" / stamp, 1
    while folder.exists():
        n += 1
        folder = out / "jobs" / f"{stamp}-{n}"
    return folder


@dataclass(frozen=True)
class Unit:
    """One job: `fn(*args)`, named in the log by `label`."""

    label: str
    fn: Callable[..., Any]
    args: tuple


def _reason(e: Exception) -> str:
    """The line that says why: the job's own exception (the last line of the traceback that
    submitit quotes between dashes), or the first line of submitit's own error (a killed job)."""
    parts = str(e).split("-" * 22)
    quoted = len(parts) >= 3
    lines = [ln.strip() for ln in parts[1 if quoted else 0].splitlines() if ln.strip()]
    return (lines[-1] if quoted else lines[0]) if lines else type(e).__name__


def _submit(executor, unit: Unit):
    """Submit one unit. A scheduler that refuses it (an unknown partition or account) stops the
    launch in its own words: it would refuse every other job too."""
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    try:
        return executor.submit(unit.fn, *unit.args)
    except (FailedJobError, FailedSubmissionError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{unit.label}: the scheduler refused the job: {why}") from None


def _outcome(unit: Unit, job) -> tuple[Any, str | None]:
    try:
        return job.result(), None
    except Exception as e:  # the job's own error, or submitit's for a job that was killed
        why = _reason(e)
        return None, f"{unit.label}: job {job.job_id} failed: {why}; log: {job.paths.stderr}"


def run_jobs(
    executor, units: list[Unit], max_jobs: int, on_result: Callable[[Unit, Any], None],
    log=print, poll_s: float = 1.0,
) -> list[str]:  # fmt: skip
    """Submit `units`, at most `max_jobs` running at once (0: all), and wait for every one;
    `on_result` gets each finished job's value. Returns one line per failed job."""
    pending, failures = list(units), []
    running: list[tuple[Unit, Any]] = []
    while pending or running:
        while pending and (max_jobs <= 0 or len(running) < max_jobs):
            unit = pending.pop(0)
            running.append((unit, _submit(executor, unit)))
        finished = [(u, j) for u, j in running if j.done()]
        running = [r for r in running if r not in finished]
        for unit, job in finished:
            value, failed = _outcome(unit, job)
            if failed:
                log(failed)
                failures.append(failed)
            else:
                on_result(unit, value)
        if not finished:
            time.sleep(poll_s)
    return failures


def _pretrain_jobs(suite: Suite, raw: Path | None, out: Path, ex, launcher: Launcher, log, bars):
    """One job per unfinished (backbone, objective): ({(backbone, objective): run}, failures)."""
    objectives = [o for o in suite.objectives if o != "scratch"]
    if not objectives:
        return {}, []
    assert raw is not None  # make_data returns a corpus whenever an objective needs one
    store = prepare_pretrain(suite, raw, out, log, bars)
    runs = {(b, o): out / "pretrain" / b.replace(":", "-") / o
            for b in suite.backbones for o in objectives}  # fmt: skip
    todo = [Unit(f"[pretrain] {b} {o}", pretrain_run, (suite, store, b, o, out))
            for (b, o), run in runs.items() if not (run / "done.json").exists()]  # fmt: skip
    if todo:
        log(f"[jobs] {len(todo)} pretraining job(s) ({launcher.kind}); logs in {ex.folder}")
    failures = run_jobs(ex, todo, launcher.jobs_at_once(), lambda u, _: log(f"{u.label}: done"))
    return {k: str(r) for k, r in runs.items() if (r / "done.json").exists()}, failures


def _cell_jobs(suite: Suite, task_dirs: dict, inits: dict, out: Path, ex, launcher, log):
    """One job per unfinished cell whose pretrained init exists; returns the failures."""
    todo, cells, failures = [], {}, []
    for cell in suite.cells():
        if (out / cell.path / "done.json").exists():
            continue
        what = f"{cell.task} {cell.backbone} {cell.objective} shots {cell.shots} seed {cell.seed}"
        label = f"[cell] {what}"
        init = (
            "scratch" if cell.objective == "scratch" else inits.get((cell.backbone, cell.objective))
        )
        if init is None:
            failures.append(f"{label}: not run, its pretraining failed (see above)")
            log(failures[-1])
            continue
        todo.append(Unit(label, run_cell, (suite, cell, init, task_dirs[cell.task], out)))
        cells[label] = cell
    if todo:
        log(f"[jobs] {len(todo)} cell job(s) ({launcher.kind}); logs in {ex.folder}")

    def report(unit: Unit, rec: dict) -> None:
        log(cell_line(cells[unit.label], rec))
        for w in rec.get("warnings", []):
            log(f"  warning: {w}")

    return failures + run_jobs(ex, todo, launcher.jobs_at_once(), report, log)


def launch_suite(
    suite: Suite, out: str | Path, launcher: Launcher, *, log=print, progress: bool = False
) -> tuple[dict, list[str]]:
    """Run (or resume) `suite` into `out` with one job per pretraining run and per cell;
    returns (the analysis tables, one line per job that failed or could not run)."""
    from .analysis import analyse

    out = Path(out)
    folder = launch_dir(out)
    ex = make_executor(launcher, folder, f"bf-{suite.name}")  # a missing sbatch stops here
    _check_suite(suite, out)
    save_config(launcher, folder / "launcher.yaml")
    t0 = time.perf_counter()
    raw_pre, task_dirs = make_data(suite, out, log, progress)
    prepare_task_stores(suite, task_dirs, out, log)
    inits, failures = _pretrain_jobs(suite, raw_pre, out, ex, launcher, log, progress)
    failures += _cell_jobs(suite, task_dirs, inits, out, ex, launcher, log)
    tables = analyse(suite, out)
    failed = f"; {len(failures)} unit(s) failed or not run, listed above" if failures else ""
    log(f"[report] {out / 'report.html'} ({(time.perf_counter() - t0) / 60:.1f} min{failed})")
    return tables, failures
