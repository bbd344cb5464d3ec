"""`bench --launcher local|slurm`: pretraining runs and cells as submitit jobs. Local jobs
(submitit's LocalExecutor: real subprocesses) give the in-process runner's tables, a rerun
submits nothing, and a failed job is reported with its log while the others are collected.
Slurm is checked through the executor's parameters and the sbatch script it writes (a
stand-in `sbatch` on PATH only answers with a job id); without Slurm, one clear line."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from brainfoundry.bench.launch import (
    Launcher,
    SlurmOptions,
    Unit,
    launch_suite,
    launcher_from_options,
    make_executor,
    parse_sbatch_options,
    run_jobs,
)
from brainfoundry.cli import main
from brainfoundry.config import load_config, save_config
from brainfoundry.errors import ConfigError

from .conftest import TINY

LOCAL = TINY


@pytest.fixture(scope="module")
def launched(tiny_run, tmp_path_factory):
    """The tiny suite through local jobs on a copy of the in-process run's generated data
    (the submitting process prepares the stores again; every pretraining and cell is a job)."""
    suite, inproc, _, _ = tiny_run
    root = tmp_path_factory.mktemp("launch")
    (root / "jobs").mkdir()
    shutil.copytree(inproc / "data", root / "jobs" / "data")
    lines: list[str] = []
    tables, failures = launch_suite(suite, root / "jobs", Launcher(), log=lines.append)
    return suite, inproc, root / "jobs", tables, failures, lines


def _submitted(out) -> list:
    return sorted((out / "jobs").glob("*/*_submitted.pkl"))


@pytest.mark.slow
def test_local_jobs_give_the_tables_of_an_in_process_run(launched):
    suite, inproc, jobs, tables, failures, lines = launched
    assert failures == []
    assert len(_submitted(jobs)) == 1 + len(suite.cells())  # one pretraining job, one per cell
    assert any(ln.startswith("[jobs] 1 pretraining job(s) (local)") for ln in lines)
    assert sum(ln.startswith("[cell] ") for ln in lines) == len(suite.cells())
    timing = ["finetune_seconds"]  # wall time, the one column that may differ
    a, b = (pd.read_csv(d / "results.csv").drop(columns=timing) for d in (inproc, jobs))
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)
    for name in ("paired.csv", "ranking.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(inproc / name), pd.read_csv(jobs / name))
    assert set(tables) >= {"results", "paired", "ranking", "primary", "verdict"}
    (record,) = (jobs / "jobs").glob("*/launcher.yaml")
    assert load_config(Launcher, record) == Launcher()


@pytest.mark.slow
def test_a_rerun_submits_nothing(launched):
    suite, _, jobs, _, _, _ = launched
    stamps = {c: (jobs / c.path / "done.json").stat().st_mtime_ns for c in suite.cells()}
    before = _submitted(jobs)
    lines: list[str] = []
    _, failures = launch_suite(suite, jobs, Launcher(), log=lines.append)
    assert failures == [] and _submitted(jobs) == before
    assert not any(ln.startswith("[jobs]") for ln in lines)
    assert stamps == {c: (jobs / c.path / "done.json").stat().st_mtime_ns for c in suite.cells()}


@pytest.mark.slow
def test_a_failed_job_is_reported_with_its_log_and_the_rest_collected(launched, capsys):
    suite, _, jobs, _, _, _ = launched  # runs last: it breaks one cell of the launched suite
    broken = next(c for c in suite.cells() if c.objective == "mae")
    redone = next(c for c in suite.cells() if c.objective == "scratch" and c.task != broken.task)
    shutil.rmtree(jobs / broken.path)
    (jobs / broken.path).write_text("a file where the cell's folder belongs")
    (jobs / redone.path / "done.json").unlink()
    rc = main(["bench", "--suite", "demo", "-o", str(jobs), "--launcher", "local", "-q", *LOCAL])
    assert rc == 1
    err = capsys.readouterr().err
    assert "1 pretraining run(s) or cell(s) not finished:" in err
    (line,) = [ln for ln in err.splitlines() if "failed: " in ln]
    assert f"[cell] {broken.task} {broken.backbone} mae shots" in line
    log = line.rsplit("; log: ", 1)[1].strip()
    assert "Traceback" in Path(log).read_text()
    assert json.loads((jobs / redone.path / "done.json").read_text())["metrics"]
    res = pd.read_csv(jobs / "results.csv")
    kept = res[["task", "objective"]].drop_duplicates()
    assert len(kept) == len(suite.cells()) - 1  # every cell but the broken one is in the table
    assert (broken.task, "mae") not in set(map(tuple, kept.values))


def test_run_jobs_collects_results_and_reports_a_failure_with_its_log(tmp_path):
    ex = make_executor(Launcher(kind="local"), tmp_path / "jobs")
    got: list = []
    units = [Unit("ok", pow, (2, 3)), Unit("bad", int, ("x",)), Unit("also ok", abs, (-4,))]
    failures = run_jobs(ex, units, 1, lambda u, v: got.append((u.label, v)), poll_s=0.1)
    assert got == [("ok", 8), ("also ok", 4)]
    (line,) = failures
    assert line.startswith("bad: job ") and "ValueError: invalid literal for int()" in line
    log = line.rsplit("; log: ", 1)[1]
    assert Path(log).parent == tmp_path / "jobs" and "ValueError" in Path(log).read_text()


def _stand_in_slurm(tmp_path, monkeypatch, sbatch: str) -> None:
    """`sbatch` running the shell lines `sbatch`, and `srun` (submitit looks for both)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\n{sbatch}\n")
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """An `sbatch` that only answers as Slurm does."""
    _stand_in_slurm(tmp_path, monkeypatch, 'echo "Submitted batch job 4242"')


def test_a_job_the_scheduler_refuses_stops_the_launch_in_its_words(tmp_path, monkeypatch):
    refuse = 'echo "sbatch: error: invalid partition specified: gpux" >&2; exit 1'
    _stand_in_slurm(tmp_path, monkeypatch, refuse)
    ex = make_executor(Launcher(kind="slurm", slurm=SlurmOptions("gpux")), tmp_path / "jobs")
    with pytest.raises(ConfigError) as err:
        run_jobs(ex, [Unit("[cell] x", abs, (-1,))], 0, lambda u, v: None)
    assert str(err.value) == (
        "[cell] x: the scheduler refused the job: sbatch: error: invalid partition specified: gpux"
    )


def test_slurm_executor_asks_for_what_the_options_say(fake_slurm, tmp_path):
    setup = ["module load cuda/12.4", "source .venv/bin/activate"]
    slurm = SlurmOptions(partition="gpu", gpus_per_job=2, cpus_per_job=8, time_min=90,
                         mem_gb=32, setup=setup, extra={"account": "proj"})  # fmt: skip
    ex = make_executor(Launcher(kind="slurm", slurm=slurm), tmp_path / "jobs", "bf-quick")
    assert ex.cluster == "slurm"
    want = {"job_name": "bf-quick", "partition": "gpu", "gpus_per_node": 2, "cpus_per_task": 8,
            "time": 90, "mem": "32GB", "setup": setup,
            "additional_parameters": {"account": "proj"}}  # fmt: skip
    assert {k: ex.parameters.get(k) for k in want} == want
    job = ex.submit(print, "hello")
    assert job.job_id == "4242"
    script = job.paths.submission_file.read_text()
    for flag in ("partition=gpu", "gpus-per-node=2", "cpus-per-task=8", "time=90", "mem=32GB",
                 "account=proj", "job-name=bf-quick"):  # fmt: skip
        assert f"#SBATCH --{flag}\n" in script
    lines = script.splitlines()
    run = next(i for i, ln in enumerate(lines) if ln.startswith("srun "))
    assert all(lines.index(s) < run for s in setup)  # the environment is set up first


def test_slurm_defaults_ask_for_four_hours_and_no_gpu(fake_slurm, tmp_path):
    ex = make_executor(Launcher(kind="slurm"), tmp_path / "jobs")
    assert ex.parameters["time"] == 240
    assert not {"gpus_per_node", "partition", "mem", "setup"} & set(ex.parameters)


def test_without_slurm_the_cli_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "suite"
    rc = main(["bench", "--suite", "demo", "-o", str(out), "--launcher", "slurm",
               "--slurm-partition", "gpu", *TINY])  # fmt: skip
    assert rc == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --launcher slurm: sbatch and srun not found on PATH")
    assert not out.exists()  # nothing was made before the check


def test_launcher_options_round_trip_and_refuse_what_would_be_ignored(tmp_path, capsys):
    extra = parse_sbatch_options(["account=proj", "qos = high"])
    assert extra == {"account": "proj", "qos": "high"}
    opts = {"partition": "gpu", "gpus_per_job": 1, "time_min": None, "setup": ["a; b"],
            "extra": extra}  # fmt: skip
    launcher = launcher_from_options("slurm", 4, opts)
    assert launcher == Launcher("slurm", 4, SlurmOptions("gpu", 1, setup=["a; b"], extra=extra))
    save_config(launcher, tmp_path / "launcher.yaml")
    assert load_config(Launcher, tmp_path / "launcher.yaml") == launcher
    assert launcher_from_options(None, None, {"partition": None, "setup": []}) is None
    assert launcher_from_options("local", None, {}).jobs_at_once() == 1
    assert launcher.jobs_at_once() == 4 and Launcher("slurm").jobs_at_once() == 0
    with pytest.raises(ConfigError, match="need --launcher slurm"):
        launcher_from_options("local", None, {"partition": "gpu"})
    with pytest.raises(ConfigError, match=re.escape("need --launcher local|slurm")):
        launcher_from_options(None, 2, {})
    with pytest.raises(ConfigError, match="'pbs' is not one of"):
        launcher_from_options("pbs", None, {})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_sbatch_options(["account"])
    assert main(["bench", "-o", str(tmp_path / "x"), "--slurm-gpus", "1"]) == 2
    assert "need --launcher" in capsys.readouterr().err
