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
    suite: str = typer.Option("quick", "--suite", "-s", help="demo, quick, full or a .yaml."),
    output: Path = typer.Option(..., "--output", "-o", help="Suite folder (resumable)."),
    report_only: bool = typer.Option(
        False, "--report-only", help="Only rebuild the tables and report from finished cells."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    overrides: list[str] = typer.Argument(None, help="Suite overrides a.b=c (e.g. seeds=[0,1])."),
) -> None:
    """Run a benchmark suite: objectives × backbones × tasks × shots × seeds, resumable."""
    from ..bench.analysis import analyse
    from ..bench.runner import run_suite
    from ..bench.suite import load_suite

    s = load_suite(suite, overrides)
    if report_only:
        tables = analyse(s, output)
    else:
        typer.echo(f"suite {s.name}: {len(s.cells())} cells; {s.expected}")
        tables = run_suite(s, output, log=typer.echo, progress=not quiet)
    _print_summary(tables, output)


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
