"""`brainfoundry pretrain`: self-supervised pretraining on a store (one process or torchrun)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def pretrain(
    store: Path = typer.Option(..., "--store", "-s", help="A store made by `prepare`."),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder (created; resumable)."),
    method: str = typer.Option(None, help="mae, contrastive, hybrid, cross-modal or dino."),
    backbone: str = typer.Option(None, help="Backbone family: resenc, primus, cnn2d or vit2d."),
    preset: str = typer.Option("cpu-small", help="cpu-tiny, cpu-small, gpu-base, gpu-large."),
    size: str = typer.Option(None, help="Backbone size preset (e.g. tiny, small, base, L)."),
    steps: int = typer.Option(None, help="Optimizer steps (overrides the preset)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML with PretrainConfig fields."),
    resume: bool = typer.Option(
        True,
        "--resume/--restart",
        help="Continue the run (default; its configuration must be unchanged), or start "
        "afresh, keeping the old run as OUTPUT.old-N.",
    ),
    overrides: list[str] = typer.Argument(
        None, help="Config overrides a.b=c (e.g. optim.lr=1e-3)."
    ),
) -> None:
    """Pretrain a backbone with a self-supervised objective.

    Multi-GPU / multi-node: `torchrun --nproc_per_node N -m brainfoundry pretrain ...`.
    """
    from .. import distributed as dist
    from ..ssl.pretrain import PretrainConfig
    from ..ssl.pretrain import pretrain as run

    ovr = [f"store={store}"]
    for key, val in (
        ("objective.method", method),
        ("model.backbone", backbone),
        ("model.size", size),
        ("train.steps", steps),
    ):
        if val is not None:
            ovr.append(f"{key}={val}")
    cfg = PretrainConfig.load(preset, config, ovr + list(overrides or []))
    try:
        out = run(cfg, output, resume=resume, log=typer.echo)
    finally:
        dist.shutdown()
    if dist.is_main():
        typer.echo(
            f"pretrained {cfg.model.backbone}/{cfg.model.size} with {cfg.objective.method} "
            f"for {out['step']} steps (loss {out.get('loss', float('nan')):.4f}) -> {output}"
        )
