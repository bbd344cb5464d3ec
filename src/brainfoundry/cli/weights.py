"""What `brainfoundry import --backbone …` and `export --to folder` do, kept out of the Typer
signatures in `cli/models.py` (this module registers no command)."""

from __future__ import annotations

from pathlib import Path

import typer


def parse_list(text: str | None, cast=str) -> list:
    """ "t1,flair" → ["t1", "flair"]; "1,1,1" with cast=float → [1.0, 1.0, 1.0]."""
    if not text:
        return []
    from ..errors import ConfigError

    try:
        return [cast(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise ConfigError(f"{text!r}: expected comma-separated values ({e})") from e


def import_weights(ckpt: Path, out: Path, options: dict, strict: bool) -> None:
    """A state dict / Lightning / safetensors file → run folder; prints the match counts."""
    from ..errors import ConfigError
    from ..models.interop.state_dict import REPORT, ImportOptions, import_state_dict, summary

    spacing = parse_list(options.pop("spacing"), float) or None
    modalities = parse_list(options.pop("modalities"))
    opts = ImportOptions(**options, modalities=modalities, spacing=spacing)
    _, _, report, record = import_state_dict(ckpt, out, opts)
    typer.echo(summary(record))
    typer.echo(f"wrote {out} ({REPORT}: the exact key mapping)")
    if strict and not report.ok:
        raise ConfigError(f"{ckpt}: weights did not all match the architecture (see above)")


def export_folder_cmd(run: Path, out: Path) -> None:
    from ..models.export import export_folder

    path = export_folder(run, out)
    typer.echo(f"wrote {path}: model.safetensors, card.json, README.md")
