"""`brainfoundry prepare` and `brainfoundry store-info`."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


def _spacing(text: str) -> list[float]:
    vals = [float(v) for v in text.replace("x", ",").split(",") if v.strip()]
    if len(vals) == 1:
        vals *= 3
    if len(vals) != 3 or min(vals) <= 0:
        from ..errors import ConfigError

        raise ConfigError(
            f"--spacing {text!r}: give one positive number or three (e.g. 1 or 1,1,1)"
        )
    return vals


@app.command()
def prepare(
    raw: Path = typer.Argument(
        ...,
        help="Raw data: a dataset folder (FOMO60K, FOMO task, BIDS, "
        "OpenMind, DICOM) or a CSV manifest.",
    ),
    store: Path = typer.Argument(..., help="Output store folder (created; re-runs resume)."),
    layout: str = typer.Option(None, help="Layout name; auto-detected when omitted."),
    spacing: str = typer.Option("1", help="Target spacing in mm: one value or x,y,z."),
    workers: int = typer.Option(1, "--workers", "-j", help="Parallel processes."),
    shard: str = typer.Option("0/1", help="Process shard i of n sessions (i/n); merge after."),
    merge_only: bool = typer.Option(False, "--merge", help="Only merge finished shards."),
    map_: list[str] = typer.Option([], "--map", help="Sequence alias: NAME=modality (repeat)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML with PrepareConfig fields."),
    overrides: list[str] = typer.Argument(None, help="Config overrides a.b=c, after the paths."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Ingest and preprocess scans into a compressed, crop-readable store."""
    from ..config import load_config, save_config
    from ..data.prepare import PrepareConfig
    from ..data.prepare import prepare as run
    from ..data.store import merge
    from ..errors import ConfigError

    if merge_only:
        df = merge(store)
        typer.echo(f"merged {len(df)} scans into {store / 'manifest.parquet'}")
        return
    try:
        i, n = (int(v) for v in shard.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {shard!r}: expected i/n, e.g. 0/4") from None
    ovr = list(overrides or [])
    ovr.append(f"preprocess.spacing=[{','.join(map(str, _spacing(spacing)))}]")
    if layout:
        ovr.append(f"layout={layout}")
    cfg = load_config(PrepareConfig, config, ovr)
    for m in map_:
        if "=" not in m:
            raise ConfigError(f"--map {m!r}: expected NAME=modality")
        k, v = m.split("=", 1)
        cfg.modality_map[k.strip().lower()] = v.strip()
    res = run(
        raw,
        store,
        cfg,
        workers=workers,
        shard=(i, n),
        progress=not quiet,
        log=lambda s: typer.echo(s, err=True),
    )
    save_config(cfg, store / "prepare.yaml")
    _summary(res, store)


def _summary(res, store: Path) -> None:
    """The run in one line; warnings (kept, but changed) and errors point at their files, and
    errors (inputs left out) exit 1."""
    typer.echo(
        f"{res.n_done} sessions processed, {res.n_skipped} already done, "
        f"{res.n_scans} scans written, {len(res.errors)} errors, "
        f"{len(res.warnings)} warnings -> {store}"
    )
    if res.warnings:
        typer.echo(f"see {store / 'warnings.jsonl'} (kept, but changed)", err=True)
    if res.errors:
        typer.echo(f"see {store / 'errors.jsonl'}", err=True)
        raise typer.Exit(1)


@app.command("store-info")
def store_info(store: Path = typer.Argument(..., help="A prepared store.")) -> None:
    """Summarise a store: scans, sessions, modalities, shapes, bytes."""
    import json

    from ..data.store import Store

    s = Store(store)
    typer.echo(json.dumps({k: v for k, v in s.plan.items() if k != "intensity"}, indent=2))
