"""The two inputs of `probe`: an embeddings table and a labels CSV, checked against each other.

Embeddings: the folder `embed --batch` writes (its `embeddings.parquet`: id, e0..eD-1), that
file itself, or a folder of `<id>.npy` files, one 1-D array each (the organisers' layout).
Labels: a CSV with an id column, a label column (a class index 0..K-1 or a class name) and any
grouping columns. Every problem is one line naming the file and the row (numbered as a
spreadsheet does, the header is row 1) or the ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError


@dataclass
class Labels:
    """ids [n], y [n] class indices, class names [K], raw group cells per column."""

    ids: list[str]
    y: np.ndarray
    classes: list[str]
    groups: dict[str, list[str]] = field(default_factory=dict)


def _few(items: Sequence[str], n: int = 5) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(ids, embeddings [n, D] float32) from a table or a folder of .npy files."""
    p = Path(path)
    table = p / "embeddings.parquet" if p.is_dir() else p
    if p.is_dir() and not table.is_file():
        files = sorted(p.glob("*.npy"))
        if not files:
            raise InputError(p, "holds neither embeddings.parquet (embed --batch) nor .npy files")
        return _npy_folder(files)
    if not table.is_file():
        raise InputError(p, "embeddings not found (embed --batch's folder or .parquet file)")
    try:
        df = pd.read_parquet(table)
    except Exception as e:  # pyarrow raises several types for a file that is no parquet
        raise InputError(table, f"cannot read the table ({type(e).__name__})") from None
    cols = [c for c in df.columns if str(c).startswith("e") and str(c)[1:].isdigit()]
    if "id" not in df.columns or not cols:
        raise InputError(table, "needs an id column and columns e0..eD-1 (embed --batch writes it)")
    cols.sort(key=lambda c: int(str(c)[1:]))
    return _checked(table, df["id"].astype(str).tolist(), df[cols].to_numpy(np.float32))


def _npy_folder(files: list[Path]) -> tuple[list[str], np.ndarray]:
    vecs: list[np.ndarray] = []
    for f in files:
        try:
            v = np.load(f, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f, f"cannot read the embedding ({e})") from None
        if v.ndim != 1:
            raise InputError(f, f"the embedding must be 1-D, has shape {v.shape}")
        if vecs and v.shape != vecs[0].shape:
            raise InputError(f, f"has {v.size} values, {files[0].name} has {vecs[0].size}")
        vecs.append(v.astype(np.float32))
    return _checked(files[0].parent, [f.stem for f in files], np.stack(vecs))


def _checked(where: Path, ids: list[str], x: np.ndarray) -> tuple[list[str], np.ndarray]:
    dup = sorted(pd.Series(ids)[pd.Series(ids).duplicated()].unique().tolist())
    if dup:
        raise InputError(where, f"ids appear more than once: {_few(dup)}")
    bad = [i for i, ok in zip(ids, np.isfinite(x).all(axis=1)) if not ok]
    if bad:
        raise InputError(where, f"embeddings hold NaN or Inf: {_few(bad)}")
    return ids, x


def read_labels(
    path: str | Path,
    groups: Sequence[str] = (),
    classes: Sequence[str] | None = None,
    id_column: str = "id",
    label_column: str = "label",
) -> Labels:
    """The labels CSV: ids, class indices (names mapped through `classes`, else the sorted
    names or the indices given) and the raw cells of each grouping column."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "labels CSV not found")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read the CSV ({e})") from None
    missing = [c for c in (id_column, label_column, *groups) if c not in df.columns]
    if missing:
        raise InputError(p, f"has no column {', '.join(missing)} (columns: {list(df.columns)})")
    ids = [s.strip() for s in df[id_column]]
    rows: dict[str, int] = {}
    for i, k in enumerate(ids, start=2):
        if not k:
            raise InputError(p, f"row {i}: the {id_column} is empty")
        if k in rows:
            raise InputError(p, f"rows {rows[k]} and {i} share the {id_column} {k!r}")
        rows[k] = i
    cells = [s.strip() for s in df[label_column]]
    y, names = _classes(p, cells, list(classes) if classes else None, label_column)
    return Labels(ids, y, names, {g: df[g].tolist() for g in groups})


def _classes(p: Path, cells: list[str], classes: list[str] | None, col: str):
    """(class indices, class names): a name of `classes` or an index 0..K-1; without
    `classes`, integer labels are indices (every one of 0..max must occur), else names."""
    for i, c in enumerate(cells, start=2):
        if not c:
            raise InputError(p, f"row {i}: the {col} is empty")
    if classes is None:
        if all(c.isdigit() for c in cells):
            k = max(int(c) for c in cells) + 1
            absent = sorted(set(range(k)) - {int(c) for c in cells})
            if absent:
                raise InputError(
                    p,
                    f"{col}s are class indices 0..{k - 1} but class "
                    f"{_few([str(a) for a in absent])} has no case; give "
                    "--classes to name the classes",
                )
            return np.array([int(c) for c in cells]), [str(j) for j in range(k)]
        classes = sorted(set(cells))
    index = {name: j for j, name in enumerate(classes)}
    y = []
    for i, c in enumerate(cells, start=2):
        j = index.get(c, int(c) if c.isdigit() and int(c) < len(classes) else None)
        if j is None:
            raise InputError(
                p,
                f"row {i}: {col} {c!r} is not a class (classes: "
                f"{', '.join(classes)}, or an index 0..{len(classes) - 1})",
            )
        y.append(j)
    if len(classes) < 2:
        raise InputError(p, f"the {col}s hold one class only ({classes[0]}); a probe needs two")
    return np.array(y), list(classes)
