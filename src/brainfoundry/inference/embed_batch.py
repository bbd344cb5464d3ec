"""Embed many volumes into one table, `OUT/embeddings.parquet` (columns id, e0 .. eD-1).

Inputs: every `*.nii` / `*.nii.gz` under a folder (recursively; the id is the path below the
folder without its extension, e.g. `sub_1/ses_1/t1`), or a CSV with a `path` column (relative
paths resolve against the CSV's folder) and an optional `id` column (default: the file name
without its extension).

Resumable: embeddings are written in chunk files (`OUT/chunks/chunk-N.parquet`, each written
atomically), merged into `embeddings.parquet` at the end (atomically, then the chunks go); a
rerun skips every id already in either. `OUT/embed.json` records the model and its weights'
hash: a rerun with another model is refused rather than mixing two models in one table. A bad
file is one line naming it; the others still embed, and `OUT/errors.jsonl` lists the failures
(they are retried on the next run).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import BrainFoundryError, ConfigError, InputError
from ..io.atomic import atomic_path, atomic_write_text
from ..io.volume import is_nifti

if TYPE_CHECKING:
    from .embed import Embedder

TABLE = "embeddings.parquet"
INFO = "embed.json"
ERRORS = "errors.jsonl"
CHUNKS = "chunks"
_SAME_MODEL = ("weights_sha256", "dim", "pooling", "view")  # what must match on resume
# what one scan can raise besides our own errors (a shape the network refuses, memory)
_SCAN_ERRORS = (BrainFoundryError, ValueError, RuntimeError, OSError, MemoryError)


def _strip_ext(name: str) -> str:
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def batch_items(source: str | Path) -> list[tuple[str, Path]]:
    """(id, path) of every volume of a folder or a CSV (see the module docstring)."""
    src = Path(source)
    if src.is_dir():
        files = sorted(
            p
            for p in src.rglob("*")
            if p.is_file()
            and is_nifti(p)
            and not any(part.startswith(".") for part in p.relative_to(src).parts)
        )
        if not files:
            raise InputError(src, "no .nii / .nii.gz files in this folder or below it")
        return [(_strip_ext(p.relative_to(src).as_posix()), p) for p in files]
    if src.is_file() and src.suffix.lower() == ".csv":
        return _csv_items(src)
    raise InputError(src, "--batch takes a folder of NIfTI files or a CSV with a path column")


def _csv_items(path: Path) -> list[tuple[str, Path]]:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot read the CSV ({e})") from None
    if "path" not in df.columns:
        raise InputError(path, f"needs a path column (and optionally id); has {list(df.columns)}")
    items: list[tuple[str, Path]] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(df.to_dict("records"), start=2):  # row 1 is the header
        cell = str(row["path"]).strip()
        if not cell:
            raise InputError(path, f"row {i}: the path is empty")
        p = Path(cell) if Path(cell).is_absolute() else path.parent / cell
        key = str(row.get("id", "")).strip() or _strip_ext(p.name)
        if key in seen:
            raise InputError(
                path,
                f"rows {seen[key]} and {i} share the id {key!r}; give each "
                "row its own id (an id column)",
            )
        seen[key] = i
        items.append((key, p))
    if not items:
        raise InputError(path, "the CSV has no rows")
    return items


def _chunks(out: Path) -> list[Path]:
    return sorted((out / CHUNKS).glob("chunk-*.parquet"))


def done_ids(out: str | Path) -> set[str]:
    """Ids already embedded in `out` (the merged table and any chunk files)."""
    out = Path(out)
    files = [out / TABLE] if (out / TABLE).is_file() else []
    done: set[str] = set()
    for f in files + _chunks(out):
        done.update(pd.read_parquet(f, columns=["id"])["id"].astype(str))
    return done


def check_info(out: Path, info: dict) -> None:
    """Refuse to add one model's embeddings to a table of another's; record the model."""
    path = out / INFO
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [f"{k}: {old.get(k)} -> {info.get(k)}" for k in _SAME_MODEL if old.get(k) != info[k]]
        if diff:
            raise ConfigError(
                f"{out} holds embeddings of another model ({'; '.join(diff)}); use "
                "a new output folder"
            )
    atomic_write_text(path, json.dumps(info, indent=2) + "\n")


def _table(rows: list[tuple[str, np.ndarray]]) -> pd.DataFrame:
    mat = np.stack([v for _, v in rows]).astype(np.float32)
    df = pd.DataFrame(mat, columns=[f"e{i}" for i in range(mat.shape[1])])
    df.insert(0, "id", [k for k, _ in rows])
    return df


def _write_chunk(out: Path, rows: list[tuple[str, np.ndarray]]) -> None:
    have = [int(p.stem.split("-")[1]) for p in _chunks(out)]
    path = out / CHUNKS / f"chunk-{max(have, default=-1) + 1:06d}.parquet"
    with atomic_path(path) as tmp:
        _table(rows).to_parquet(tmp, index=False)


def merge(out: str | Path, order: list[str]) -> int:
    """Fold the chunk files into `embeddings.parquet` (ids in `order` first, once each);
    returns the rows of the table."""
    out = Path(out)
    parts = ([out / TABLE] if (out / TABLE).is_file() else []) + _chunks(out)
    if not parts:
        return 0
    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    df["id"] = df["id"].astype(str)
    df = df.drop_duplicates("id", keep="first")
    rank = {k: i for i, k in enumerate(order)}
    df = df.iloc[np.argsort([rank.get(k, len(rank)) for k in df["id"]], kind="stable")]
    with atomic_path(out / TABLE) as tmp:
        df.to_parquet(tmp, index=False)
    for p in parts:
        if p.name != TABLE:
            p.unlink()
    if (out / CHUNKS).is_dir() and not any((out / CHUNKS).iterdir()):
        (out / CHUNKS).rmdir()
    return len(df)


def embed_batch(
    embedder: Embedder,
    items: list[tuple[str, Path]],
    out: str | Path,
    *,
    progress: bool = True,
    chunk: int = 32,
    echo: Callable[[str], None] | None = None,
) -> dict:
    """Embed every item not yet in `out`; returns {"done", "skipped", "failed": [lines], "rows"}."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_info(out, embedder.describe())
    say = echo or tqdm.write
    done = done_ids(out)
    todo = [(k, p) for k, p in items if k not in done]
    rows: list[tuple[str, np.ndarray]] = []
    failed: list[dict] = []
    for key, path in tqdm(todo, desc="embed", unit="scan", disable=not progress):
        try:
            vec, warnings = embedder.embed(path)
        except _SCAN_ERRORS as e:
            line = str(e) if isinstance(e, InputError) else f"{path}: {type(e).__name__}: {e}"
            failed.append({"id": key, "path": str(path), "error": line})
            say(f"error: {line}")
            continue
        for w in warnings:
            say(f"warning: {key}: {w}")
        rows.append((key, vec))
        if len(rows) >= chunk:
            _write_chunk(out, rows)
            rows = []
    if rows:
        _write_chunk(out, rows)
    n = merge(out, [k for k, _ in items])
    atomic_write_text(out / ERRORS, "".join(json.dumps(f) + "\n" for f in failed))
    return {
        "done": len(todo) - len(failed),
        "skipped": len(items) - len(todo),
        "failed": [f["error"] for f in failed],
        "rows": n,
    }
