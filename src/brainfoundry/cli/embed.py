"""`brainfoundry embed`: frozen embeddings of scans (FOMO26 tasks 6 and 7, linear probing)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def embed(
    model: Path = typer.Option(
        ..., "--model", "-m", help="A pretraining run, a fine-tuned seed_*/ or a finetune output."
    ),
    input_: Path = typer.Option(
        None, "--input", "-i", help="One volume (NIfTI file or DICOM folder), any sequence."
    ),
    batch: Path = typer.Option(
        None,
        "--batch",
        help="Many volumes: a folder (*.nii[.gz], recursively) or a CSV "
        "with a path column (and optionally id).",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The .npy file (with --input) or a folder (with --batch)."
    ),
    device: str = typer.Option("auto", help="auto (cuda if present), cpu, cuda or cuda:N."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a 1-D float32 embedding of one volume (--input, OUTPUT.npy), or of many (--batch,
    OUTPUT/embeddings.parquet: id, e0..eD-1; resumable). Every encoder stage is mean- and
    max-pooled; the volume gets the model card's preprocessing."""
    from ..errors import ConfigError
    from ..inference.embed import Embedder

    if (input_ is None) == (batch is None):
        raise ConfigError("give one volume (--input FILE) or many (--batch DIR|CSV)")
    embedder = Embedder(model, device)
    for note in embedder.notes:
        typer.echo(f"note: {note}", err=True)
    if input_ is not None:
        _embed_one(embedder, input_, output)
    else:
        _embed_many(embedder, batch, output, quiet)


def _embed_one(embedder, path: Path, output: Path) -> None:
    from ..inference.embed import write_embedding

    vec, warnings = embedder.embed(path)
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    write_embedding(output, vec)
    typer.echo(f"wrote {output} ({vec.size} values)")


def _embed_many(embedder, batch: Path, output: Path, quiet: bool) -> None:
    """Every volume of `batch` into OUTPUT/embeddings.parquet; exit 1 if some failed."""
    from ..inference.embed_batch import ERRORS, TABLE, batch_items, embed_batch

    items = batch_items(batch)
    res = embed_batch(embedder, items, output, progress=not quiet)
    skipped = f", {res['skipped']} already there" if res["skipped"] else ""
    typer.echo(
        f"embedded {res['done']} of {len(items)} volumes{skipped} -> {output / TABLE} "
        f"({res['rows']} rows, {embedder.dim} values each)"
    )
    if res["failed"]:
        typer.echo(f"{len(res['failed'])} failed (listed in {output / ERRORS}):", err=True)
        for line in res["failed"]:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1)
