"""`brainfoundry finetune` (few-shot, over seeds) and `brainfoundry evaluate` (test metrics)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


def _seeds(text: str) -> list[int]:
    from ..errors import ConfigError

    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(
            f"--seeds {text!r}: give integers separated by commas, e.g. 0,1,2"
        ) from None
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    return seeds


@app.command()
def finetune(
    task: str = typer.Option(
        ..., "--task", "-t", help="infarct, meningioma, brainage or a spec .yaml."
    ),
    data: Path = typer.Option(
        ...,
        "--data",
        "-d",
        help="Fine-tuning data: a FOMO folder, a CSV manifest, BIDS with participants.tsv, or "
        "a folder holding finetune/ and test/ (finetune/ is read).",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Output folder (one seed_S/ per seed)."
    ),
    init: str = typer.Option("scratch", help="A pretrained run folder, or 'scratch'."),
    shots: int = typer.Option(None, help="Training cases per seed (default: all but a fifth)."),
    seeds: str = typer.Option("0", help="Comma-separated seeds, e.g. 0,1,2."),
    strategy: str = typer.Option(None, help="full, linear, partial or llrd."),
    preset: str = typer.Option("cpu-small", help="cpu-tiny, cpu-small or gpu-base."),
    steps: int = typer.Option(None, help="Optimizer steps (overrides the preset)."),
    folds: int = typer.Option(
        None, help="K-fold cross-validation, grouped by subject: cv.json and report.html."
    ),
    restart: bool = typer.Option(
        False, "--restart", help="Start afresh, keeping the old output as OUTPUT.old-N."
    ),
    config: Path = typer.Option(None, "--config", "-c", help="YAML with FinetuneConfig fields."),
    overrides: list[str] = typer.Argument(None, help="Config overrides a.b=c."),
) -> None:
    """Fine-tune a task model few-shot over several seeds; the test set is never touched.

    A rerun resumes, and only with the same configuration (else exit 2, naming the fields)."""
    from ..resume import archive_run
    from ..tasks.finetune import FinetuneConfig
    from ..tasks.finetune import finetune as run

    ovr = [f"task={task}", f"init={init}", f"seeds=[{','.join(map(str, _seeds(seeds)))}]"]
    given = (("shots", shots), ("strategy.name", strategy), ("train.steps", steps),
             ("folds", folds))  # fmt: skip
    for key, val in given:
        if val is not None:
            ovr.append(f"{key}={val}")
    cfg = FinetuneConfig.load(preset, config, ovr + list(overrides or []))
    if restart and (kept := archive_run(output)) is not None:
        typer.echo(f"--restart: the old run is kept as {kept}")
    if cfg.folds:
        _cross_validate(cfg, data, output)
        return
    res = run(cfg, data, output, log=typer.echo)
    for seed, vals in res.items():
        typer.echo(f"seed {seed}: best validation {vals}")
    typer.echo(f"fine-tuned {cfg.task} ({len(res)} seed(s)) -> {output}")


def _cross_validate(cfg, data: Path, output: Path) -> None:
    from ..tasks.crossval import cross_validate

    res = cross_validate(cfg, data, output, log=typer.echo)
    for name, m in res["metrics"].items():
        mean, lo, hi = (("n/a" if m[k] is None else f"{m[k]:.3f}") for k in ("mean", "lo", "hi"))
        typer.echo(f"{name}: {mean} (95% CI {lo} to {hi}) over {m['n']} fold(s)")
    typer.echo(f"cross-validated {cfg.task} ({cfg.folds} folds) -> {output}/cv.json, report.html")


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="A `finetune` output folder (with seed_*/)."),
    data: Path = typer.Option(
        ...,
        "--data",
        "-d",
        help="Labelled test data: a FOMO folder, a CSV manifest, BIDS with participants.tsv, "
        "or a folder holding finetune/ and test/ (test/ is read).",
    ),
    n_boot: int = typer.Option(2000, help="Bootstrap resamples for the 95% CIs."),
    device: str = typer.Option("auto", help="auto (cuda if present), cpu, cuda or cuda:N."),
) -> None:
    """Predict the test set with every seed; metrics.json (CIs), predictions.csv, report.html."""
    from ..tasks.evaluate import evaluate as run_eval

    res = run_eval(run, data, n_boot=n_boot, log=typer.echo, device=device)
    for name, m in res["metrics"].items():
        sd = "n/a" if m["sd"] is None else f"{m['sd']:.3f}"
        mean = "n/a" if m["mean"] is None else f"{m['mean']:.3f}"
        typer.echo(f"{name}: {mean} ± {sd} over {m['n']} seed(s)")
    typer.echo(f"wrote {run}/metrics.json and seed_*/report.html")
