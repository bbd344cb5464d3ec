"""`brainfoundry bench` (a declared suite of pretrain × fine-tune runs) and `brainfoundry demo`
(the smallest such suite: the whole pipeline in minutes on a laptop CPU)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app

DEMO_LAYOUT = """\
{out}/
  report.html          open this: figures + every table
  results.md           primary metric per task/objective, paired differences, ranking
  results.csv          tidy results (task, backbone, objective, shots, seed, metric, CI)
  paired.csv           pretrained minus scratch on the same test cases (paired bootstrap)
  ranking.csv          FOMO25-style ranking of the objectives
  data/                the generated corpus and task datasets (FOMO layouts)
  store/               prepared stores (pretraining corpus, each task's finetune/test)
  pretrain/            the pretrained model(s): model.safetensors + card.json
  cells/               one fine-tuned model per cell, with predictions.csv and report.html"""

DATA_HELP = (
    "Your own task data instead of generated data, [TASK=]PATH (repeat): a folder holding "
    "finetune/ and test/ (folders or .csv), or a CSV manifest with a split column."
)


def _print_summary(tables: dict, out: Path) -> None:
    from ..bench.render import markdown_table

    typer.echo("\nTest-set results (95% bootstrap CI over cases):")
    typer.echo(markdown_table(tables["primary"]))
    if not tables["verdict"].empty:
        typer.echo("Best pretrained objective vs scratch at 16 shots (paired bootstrap):")
        typer.echo(markdown_table(tables["verdict"]))
    typer.echo(f"report: {out / 'report.html'}")


@app.command()
def bench(
    suite: str = typer.Option(
        "quick", "--suite", "-s", help="demo, demo-2d, quick, full, fomo26(-cpu) or a .yaml."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Suite folder (resumable)."),
    report_only: bool = typer.Option(
        False, "--report-only", help="Only rebuild the tables and report from finished cells."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    data: list[str] = typer.Option(None, "--data", "-d", help=DATA_HELP),
    launcher: str = typer.Option(
        None,
        "--launcher",
        help="local|slurm: each pretraining run and each cell as a submitit "
        "job (local: subprocesses here). Without it, everything runs in this process.",
    ),  # fmt: skip
    jobs: int = typer.Option(
        None, "--jobs", help="Jobs running at once (default: 1 local, no cap on Slurm)."
    ),
    slurm_partition: str = typer.Option(None, "--slurm-partition", help="Slurm partition."),
    slurm_gpus: int = typer.Option(None, "--slurm-gpus", help="GPUs per job (default none)."),
    slurm_cpus: int = typer.Option(None, "--slurm-cpus", help="CPUs per job."),
    slurm_time: int = typer.Option(None, "--slurm-time", help="Minutes per job (default 240)."),
    slurm_mem: float = typer.Option(None, "--slurm-mem", help="Memory per job, GB."),
    slurm_setup: list[str] = typer.Option(
        None,
        "--slurm-setup",
        help="Shell line run in each job before Python (repeat), e.g. "
        "'module load cuda; source .venv/bin/activate'.",
    ),  # fmt: skip
    slurm_option: list[str] = typer.Option(
        None, "--slurm-option", help="Another sbatch option KEY=VALUE (repeat): account=proj."
    ),
    overrides: list[str] = typer.Argument(None, help="Suite overrides a.b=c (e.g. seeds=[0,1])."),
) -> None:
    """Run a benchmark suite: objectives × backbones × tasks × shots × seeds, resumable."""
    from ..bench.analysis import analyse
    from ..bench.launch import launcher_from_options, parse_sbatch_options
    from ..bench.runner import run_suite

    slurm = {"partition": slurm_partition, "gpus_per_job": slurm_gpus, "cpus_per_job": slurm_cpus,
             "time_min": slurm_time, "mem_gb": slurm_mem, "setup": list(slurm_setup or []),
             "extra": parse_sbatch_options(list(slurm_option or []))}  # fmt: skip
    launch = launcher_from_options(launcher, jobs, slurm)
    s = _suite(suite, overrides, data)
    if report_only:
        tables = analyse(s, output)
    elif launch is not None:
        typer.echo(f"suite {s.name}: {len(s.cells())} cells as {launch.kind} jobs; {s.expected}")
        _launched(s, output, launch, quiet)
        return
    else:
        typer.echo(f"suite {s.name}: {len(s.cells())} cells; {s.expected}")
        tables = run_suite(s, output, log=typer.echo, progress=not quiet)
    _print_summary(tables, output)


def _suite(name: str, overrides: list[str] | None, data: list[str] | None):
    """The suite with its overrides; on `--data` instead of generated data when given."""
    from ..bench.suite import load_suite
    from ..bench.task_data import data_overrides

    ovr = list(overrides or [])
    return load_suite(name, ovr + data_overrides(name, ovr, list(data or [])))


def _launched(s, output: Path, launch, quiet: bool) -> None:
    """The suite through submitit; exits 1 after the summary when a job failed."""
    from ..bench.launch import launch_suite

    tables, failures = launch_suite(s, output, launch, log=typer.echo, progress=not quiet)
    _print_summary(tables, output)
    if failures:
        typer.echo(f"{len(failures)} pretraining run(s) or cell(s) not finished:", err=True)
        for line in failures:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1)


@app.command()
def demo(
    output: Path = typer.Option(
        Path("runs/demo"), "--output", "-o", help="Demo folder (resumable)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    overrides: list[str] = typer.Argument(None, help="Suite overrides a.b=c (e.g. shots=[8])."),
) -> None:
    """The whole pipeline on generated data in minutes on a CPU: synth → prepare → pretrain →
    few-shot fine-tune (pretrained and scratch) → evaluate on shifted test sets → report."""
    from ..bench.runner import run_suite
    from ..bench.suite import load_suite

    s = load_suite("demo", overrides)
    typer.echo(f"demo: {s.description}")
    _print_summary(run_suite(s, output, log=typer.echo, progress=not quiet), output)
    typer.echo(DEMO_LAYOUT.format(out=output))
