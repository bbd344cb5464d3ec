"""`brainfoundry prepare` and `brainfoundry store-info`."""

from __future__ import annotations

from pathlib import Path
from typing import cast

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
    task: str = typer.Option(
        None,
        "--task",
        "-t",
        help="Read RAW as this task's labelled data (a name or a spec .yaml), checked as "
        "finetune checks it: its label columns (CSV, BIDS participants) or label.json targets "
        "go into the store, one target:<name> column each (several targets too).",
    ),
    part: str = typer.Option(
        "finetune",
        "--part",
        help="With --task: the part (finetune or test) of data that holds both.",
    ),
    overrides: list[str] = typer.Argument(None, help="Config overrides a.b=c, after the paths."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Ingest and preprocess scans into a compressed, crop-readable store."""
    from ..config import save_config
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
    cfg = _config(config, list(overrides or []), spacing, layout, map_)

    def log(line: str) -> None:
        typer.echo(line, err=True)

    raw, found = _task_data(raw, store, task, part, log) if task else (raw, None)
    res = run(raw, store, cfg, workers=workers, shard=(i, n), progress=not quiet, log=log,
              found=found)  # fmt: skip
    save_config(cfg, store / "prepare.yaml")
    _summary(res, store)


def _config(config: Path | None, ovr: list[str], spacing: str, layout: str | None, map_):
    """The PrepareConfig of the command line: --config, then the options, then a.b=c."""
    from ..config import load_config
    from ..data.prepare import PrepareConfig
    from ..errors import ConfigError

    ovr.append(f"preprocess.spacing=[{','.join(map(str, _spacing(spacing)))}]")
    if layout:
        ovr.append(f"layout={layout}")
    cfg = load_config(PrepareConfig, config, ovr)
    for m in map_:
        if "=" not in m:
            raise ConfigError(f"--map {m!r}: expected NAME=modality")
        k, v = m.split("=", 1)
        cfg.modality_map[k.strip().lower()] = v.strip()
    return cfg


def _task_data(raw: Path, store: Path, task: str, part: str, log):
    """(path, found entries or None) of `raw` read as `task`'s data, as `finetune` reads it
    (`tasks.sources`); a store prepared before from other sessions or labels is refused."""
    from ..data.store import MANIFEST, Store
    from ..errors import ConfigError
    from ..tasks.sources import ROLES, Role, check_store, task_source
    from ..tasks.spec import get_task

    if part not in ROLES:
        raise ConfigError(f"--part {part!r}: choose {' or '.join(ROLES)}")
    src = task_source(raw, get_task(task), cast(Role, part), log)
    if src.found is not None and (store / MANIFEST).exists():
        check_store(Store(store), src.found[1], src.path)
    return src.path, src.found


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
