"""`brainfoundry predict`: a fine-tuned model on new scans, with the FOMO25 container flags."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from . import app

_SEQ = "NIfTI file or DICOM series folder"


class Coregister(str, Enum):
    """The choices of --coregister (`data.coregister.MODES`)."""

    auto = "auto"
    rigid = "rigid"
    header = "header"
    off = "off"


class Precision(str, Enum):
    """The choices of --precision (`inference.precision.PRECISIONS`)."""

    fp32 = "fp32"
    bf16 = "bf16"


_PRECISION = typer.Option(
    "fp32",
    "--precision",
    help="fp32 (exact, the default) or bf16: autocast the network (faster, on CPUs and GPUs "
    "with bf16 units; softmax and blending stay fp32). Its agreement with fp32 (mask Dice, "
    "max |dP|) is measured in benchmarks/results/inference.md.",
)


class SkullStrip(str, Enum):
    """The choices of --skull-strip (`data.skull_strip.MODES`)."""

    auto = "auto"
    off = "off"
    deepbet = "deepbet"


_SKULL_STRIP = typer.Option(
    None,
    "--skull-strip",
    help="Brain extraction before the model: auto (strip a scan that shows more than a brain), "
    "deepbet (strip every scan), off. Default: the model's own recipe (its card).",
)
_COREGISTER = typer.Option(
    "auto",
    "--coregister",
    help="Scans on another grid than the first: auto (register rigidly, then resample), "
    "rigid (register every scan), header (resample by the headers only), off (refuse).",
)


@app.command()
def predict(
    model: Path = typer.Option(..., "--model", "-m", help="A finetune output or one seed_*/."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Output file (.txt / .nii.gz), or a folder with --batch."
    ),
    flair: Path = typer.Option(None, "--flair", help=_SEQ),
    adc: Path = typer.Option(None, "--adc", help=_SEQ),
    dwi_b1000: Path = typer.Option(None, "--dwi_b1000", "--dwi", help=_SEQ + " (--dwi: FOMO26)"),
    t2s: Path = typer.Option(None, "--t2s", help=_SEQ),
    swi: Path = typer.Option(None, "--swi", help=_SEQ),
    t1: Path = typer.Option(None, "--t1", help=_SEQ),
    t2: Path = typer.Option(None, "--t2", help=_SEQ),
    session: Path = typer.Option(
        None, "--session", help="One session folder: <sequence>.nii.gz files / DICOM folders."
    ),
    batch: Path = typer.Option(
        None, "--batch", help="Many sessions: a folder in any known layout, or a CSV."
    ),
    overlap: float = typer.Option(
        0.5, min=0.0, max=0.95, help="Sliding-window overlap (segmentation)."
    ),
    mirror: bool = typer.Option(False, "--mirror", help="Mirroring TTA (8x the time)."),
    whole: bool = typer.Option(
        False, "--whole", help="One pass over the whole cropped volume, no tiles (faster)."
    ),
    tile_batch: int = typer.Option(2, "--tile-batch", min=1, help="Tiles per network call."),
    brain_only: bool = typer.Option(
        False, "--brain-only", help="Skip background tiles (faster; see inference.md)."
    ),
    precision: Precision = _PRECISION,
    coregister: Coregister = _COREGISTER,
    skull_strip: SkullStrip = _SKULL_STRIP,
    device: str = typer.Option("auto", help="auto (cuda if present), cpu, cuda or cuda:N."),
    qc: bool = typer.Option(True, "--qc/--no-qc", help="Write the QC PNG beside each output."),
) -> None:
    """Predict one session (FOMO25/FOMO26 flags or --session) or many (--batch) with a model
    folder.

    Writes OUTPUT.txt (a probability, a value, a class name, or one `name<TAB>value` line per
    target) or OUTPUT.nii.gz (a {0,1} mask, or a 0..K-1 label map, on the input's grid), plus
    OUTPUT.json (uncertainty, QC flags) and OUTPUT.png (QC); --batch also writes
    summary.csv (each case's status and flags)."""
    from ..inference.predict import FOMO_FLAGS, Predictor, session_inputs

    flags = dict(zip(FOMO_FLAGS, (flair, adc, dwi_b1000, t2s, swi, t1, t2)))
    given = _one_input_mode(flags, session, batch)
    kw = {"overlap": overlap, "mirror": mirror, "skip_empty": brain_only,
          "batch_size": tile_batch, "whole": whole, "precision": precision.value,
          "coregister": coregister.value,
          "skull_strip": skull_strip.value if skull_strip else None}  # fmt: skip
    predictor = Predictor(model, device)
    if batch is None:
        _predict_one(predictor, given or session_inputs(session), output, kw, qc)
    else:
        _predict_batch(predictor, batch, output, kw, qc)


def _one_input_mode(flags: dict, session: Path | None, batch: Path | None) -> dict:
    """The sequences given by flag; exactly one of flags, --session and --batch is allowed."""
    from ..errors import ConfigError

    given = {k: v for k, v in flags.items() if v is not None}
    if sum([bool(given), session is not None, batch is not None]) != 1:
        raise ConfigError("give the sequences (--flair …), or --session DIR, or --batch DIR|CSV")
    return given


def _predict_one(predictor, inputs: dict, output: Path, kw: dict, qc: bool) -> None:
    from ..inference.predict import write_outputs

    result = predictor.predict(inputs, **kw)
    main = write_outputs(result, output, qc=qc)
    for w in result.get("warnings", []):
        typer.echo(f"warning: {w}", err=True)
    typer.echo(f"wrote {main}")


def _predict_batch(predictor, batch: Path, output: Path, kw: dict, qc: bool) -> None:
    """Every session of `batch` into the folder `output`; finished cases are kept (resumable),
    a failed case is reported and the rest go on; summary.csv holds every case's status and QC
    flags; exit 1 if any failed."""
    from tqdm import tqdm

    from ..errors import BrainFoundryError
    from ..inference.predict import batch_sessions, output_paths, write_outputs
    from ..inference.summary import failed_row, finished_row, write_summary

    sessions = batch_sessions(batch)
    ext = ".nii.gz" if predictor.spec.type == "segmentation" else ".txt"
    failed = warned = 0
    rows = []
    for name, inputs in tqdm(sessions, desc="predict", unit="case"):
        target = output / f"{name}{ext}"
        side = output_paths(target, predictor.spec.type)[1]
        if target.exists():
            rows.append(finished_row(name, target, side))  # resumable: finished cases are kept
            continue
        try:
            result = predictor.predict(inputs, **kw)
            write_outputs(result, target, qc=qc)
        except BrainFoundryError as e:
            failed += 1
            tqdm.write(f"error: {e}")
            rows.append(failed_row(name, str(e)))
            continue
        rows.append(finished_row(name, target, side))
        for w in result.get("warnings", []):
            warned += 1
            tqdm.write(f"warning: {name}: {w}")
    summary = write_summary(output, rows) if rows else None
    note = f" ({warned} warning(s), in each case's .json)" if warned else ""
    typer.echo(f"predicted {len(sessions) - failed} of {len(sessions)} sessions -> {output}{note}")
    if summary is not None:
        typer.echo(f"summary: {summary}")
    if failed:
        raise typer.Exit(1)
