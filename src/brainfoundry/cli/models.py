"""`brainfoundry export` and `brainfoundry import`: a model folder that loads offline, nnssl /
nnU-Net checkpoints both ways, and the state dicts / Lightning checkpoints people have."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app

_FORMATS = ("folder", "nnssl")


@app.command("export")
def export(
    run: Path = typer.Argument(..., help="A run folder with model.safetensors and card.json."),
    to: str = typer.Option(
        "folder",
        "--to",
        help="folder: model.safetensors + card.json + README.md model card, loads offline; "
        "nnssl: checkpoint_final.pth + adaptation_plan.json.",
    ),
    out: Path = typer.Option(..., "--output", "-o", help="Output folder (created)."),
) -> None:
    """Write a run as a self-contained model folder, or as an nnssl checkpoint (nnU-Net v2)."""
    from ..errors import ConfigError

    if to not in _FORMATS:
        raise ConfigError(f"--to {to!r}: supported formats are {', '.join(_FORMATS)}")
    if to == "folder":
        from .weights import export_folder_cmd

        export_folder_cmd(run, out)
        return
    from ..models.interop.nnssl import export_nnssl

    path = export_nnssl(run, out)
    typer.echo(f"wrote {path} and {path.parent / 'adaptation_plan.json'}")


@app.command("import")
def import_(
    ckpt: Path = typer.Argument(
        ...,
        help="Weights: a state dict (.pt/.pth), a Lightning .ckpt, .safetensors, or an nnssl "
        "checkpoint_final.pth (or its folder).",
    ),
    out: Path = typer.Option(..., "--output", "-o", help="Run folder to create."),
    backbone: str = typer.Option(
        None,
        "--backbone",
        help="Family the weights belong to (resenc, primus); needed for "
        "anything but an nnssl checkpoint.",
    ),  # fmt: skip
    size: str = typer.Option("auto", "--size", help="The family's size, or auto (best fit)."),
    prefix: str = typer.Option(None, "--prefix", help="Wrapper prefix to strip, e.g. model."),
    layout: str = typer.Option(
        None, "--layout", help="Key names: dna, asparagus (default: whichever names most tensors)."
    ),  # fmt: skip
    in_channels: int = typer.Option(None, "--in-channels", help="Default: read off the weights."),
    out_channels: int = typer.Option(None, "--out-channels", help="Default: read off the weights."),
    modalities: str = typer.Option(None, "--modalities", help="Input order, e.g. t1,flair."),
    spacing: str = typer.Option(None, "--spacing", help="Trained voxel spacing, e.g. 1,1,1 (mm)."),
    strict: bool = typer.Option(False, "--strict", help="Fail unless every tensor matched."),
) -> None:
    """Turn weights into a run folder our fine-tuning can start from (`--init RUN`)."""
    from ..errors import ConfigError

    if backbone is not None:
        from .weights import import_weights

        options = {"backbone": backbone, "size": size, "prefix": prefix, "layout": layout,
                   "in_channels": in_channels, "out_channels": out_channels,
                   "modalities": modalities, "spacing": spacing}  # fmt: skip
        import_weights(ckpt, out, options, strict)
        return
    from ..models.interop.nnssl import import_nnssl

    _, card, report = import_nnssl(ckpt, out)
    typer.echo(f"imported {card.arch['name']} ({card.arch['size']}) -> {out}\n{report}")
    if strict and not report.ok:
        raise ConfigError(f"{ckpt}: weights did not all match the architecture (see above)")
