"""The store: one compressed array per scan, a Parquet manifest and `plan.json`.

Layout of STORE/:
  arrays/<scan_id>.b2nd        image (float16, preprocessed)
  labels/<group_id>.b2nd       voxel labels of a session group (uint8), if any
  locs/<scan_id>.npy           up to N foreground (and lesion) voxel coordinates for sampling
  records/<scan_id>.json       one finished scan (written last, atomically: the resume marker)
  manifest.parquet, plan.json  built from the records by `merge`
  errors.jsonl                 one line per failed input

The manifest has one row per scan. A session's case-level label is its `label` column (one
number); each named target a task read (several per session: age, tissue volumes, ...) is a
column of its own, `target:<name>` (NaN: that target is missing for the session).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io.atomic import atomic_path, atomic_write_text
from .arrays import open_array

MANIFEST = "manifest.parquet"
PLAN = "plan.json"
STORE_VERSION = 1
TARGET_PREFIX = "target:"  # a named target's manifest column: target:<name>


def target_column(name: str) -> str:
    """The manifest column holding target `name` of every session (`target:<name>`)."""
    return f"{TARGET_PREFIX}{name}"


def scan_id(dataset: str, subject: str, session: str, sequence: str) -> str:
    raw = f"{dataset}__{subject}__{session}__{sequence}"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in raw)


def load_records(root: Path) -> list[dict]:
    recs = []
    for f in sorted((root / "records").glob("*.json")):
        recs.append(json.loads(f.read_text()))
    return recs


def merge(root: str | Path, plan_extra: dict | None = None) -> pd.DataFrame:
    """Build manifest.parquet and plan.json from the finished records (also after sharding)."""
    root = Path(root)
    recs = load_records(root)
    if not recs:
        raise InputError(root, "no finished scans in this store; run prepare first")
    df = pd.DataFrame.from_records(recs).sort_values("scan_id").reset_index(drop=True)
    with atomic_path(root / MANIFEST) as tmp:
        df.to_parquet(tmp, index=False)
    plan = summarize(df)
    old = root / PLAN
    if old.exists():
        prev = json.loads(old.read_text())
        plan = {**prev, **plan}
    plan.update(plan_extra or {})
    atomic_write_text(root / PLAN, json.dumps(plan, indent=2))
    return df


def summarize(df: pd.DataFrame) -> dict:
    shapes = np.array(df["shape"].tolist())
    mods = df["modality"].value_counts().to_dict()
    intensity = {
        m: {
            "fg_mean_median": float(g["fg_mean"].median()),
            "fg_std_median": float(g["fg_std"].median()),
        }
        for m, g in df.groupby("modality")
    }
    return {
        "store_version": STORE_VERSION,
        "n_scans": int(len(df)),
        "n_sessions": int(df["group"].nunique()),
        "n_subjects": int(df[["dataset", "subject"]].drop_duplicates().shape[0]),
        "modalities": {k: int(v) for k, v in sorted(mods.items())},
        "median_shape": [int(v) for v in np.median(shapes, axis=0)],
        "median_source_spacing": [
            float(v) for v in np.median(np.array(df["source_spacing"].tolist()), axis=0)
        ],
        "intensity": intensity,
        "bytes": int(df["nbytes"].sum()),
    }


class Store:
    """Read access to a prepared store: manifest rows, arrays, crops, labels, sample locations."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / MANIFEST).exists():
            raise InputError(
                self.root,
                "not a brainfoundry store (no manifest.parquet); run "
                "`brainfoundry prepare RAW STORE` first",
            )
        self.manifest = pd.read_parquet(self.root / MANIFEST)
        self.plan = json.loads((self.root / PLAN).read_text())

    def __len__(self) -> int:
        return len(self.manifest)

    @cached_property
    def _by_id(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.manifest["scan_id"])}

    def row(self, sid: str) -> pd.Series:
        return self.manifest.iloc[self._by_id[sid]]

    def array(self, sid: str):
        """Lazy blosc2 array of a scan (`a[slices]` decompresses only what it touches)."""
        return open_array(self.root / self.row(sid)["array"])

    def read(self, sid: str, box: tuple[slice, ...] | None = None) -> np.ndarray:
        a = self.array(sid)
        return np.asarray(a[box] if box is not None else a[...], dtype=np.float32)

    def label_array(self, sid: str):
        rel = self.row(sid)["seg"]
        return open_array(self.root / rel) if isinstance(rel, str) and rel else None

    def locations(self, sid: str) -> dict[str, np.ndarray]:
        """{'fg': [N,3], 'lesion': [M,3]} voxel coordinates saved at prepare time."""
        rel = self.row(sid)["locs"]
        with np.load(self.root / rel) as z:
            return {k: z[k] for k in z.files}

    def subset(self, groups: Iterable[str]) -> Store:
        """A view holding only these session groups: the arrays are shared, nothing is copied,
        and the original is untouched (a few-shot split trains on part of a store)."""
        view = copy.copy(self)
        view.__dict__.pop("_by_id", None)  # the scan-id index belongs to the full manifest
        keep = self.manifest["group"].isin(set(groups))
        view.manifest = self.manifest[keep].reset_index(drop=True)
        return view

    def groups(self) -> dict[str, list[str]]:
        """Co-registered session groups: group id -> scan ids (same shape, stackable)."""
        return {g: list(d["scan_id"]) for g, d in self.manifest.groupby("group", sort=True)}
