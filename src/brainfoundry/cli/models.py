"""`brainfoundry export` and `brainfoundry import`: checkpoints to and from nnssl / nnU-Net."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app

_FORMATS = ("nnssl",)


@app.command("export")
def export(
    run: Path = typer.Argument(..., help="A run folder with model.safetensors and card.json."),
    to: str = typer.Option("nnssl", "--to", help="Target format: nnssl."),
    out: Path = typer.Option(..., "--output", "-o", help="Output folder (created)."),
) -> None:
    """Write a run as an nnssl checkpoint + adaptation_plan.json (nnU-Net v2 fine-tunes it)."""
    from ..errors import ConfigError

    if to not in _FORMATS:
        raise ConfigError(f"--to {to!r}: supported formats are {', '.join(_FORMATS)}")
    from ..models.interop.nnssl import export_nnssl

    path = export_nnssl(run, out)
    typer.echo(f"wrote {path} and {path.parent / 'adaptation_plan.json'}")


@app.command("import")
def import_(
    ckpt: Path = typer.Argument(..., help="nnssl checkpoint_final.pth (or its folder)."),
    out: Path = typer.Option(..., "--output", "-o", help="Run folder to create."),
    strict: bool = typer.Option(False, "--strict", help="Fail unless every tensor matched."),
) -> None:
    """Turn an nnssl checkpoint into a run folder our fine-tuning can start from."""
    from ..errors import ConfigError
    from ..models.interop.nnssl import import_nnssl

    _, card, report = import_nnssl(ckpt, out)
    typer.echo(f"imported {card.arch['name']} ({card.arch['size']}) -> {out}\n{report}")
    if strict and not report.ok:
        raise ConfigError(f"{ckpt}: weights did not all match the architecture (see above)")
