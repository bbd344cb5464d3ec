"""Task data: prepare a FOMO-layout folder with the checkpoint's recipe, list its cases, draw
seeded few-shot splits, and give datasets a view of the store restricted to some cases.

Preprocessing follows the init checkpoint's card (spacing, normalisation) — never a guess — so
a model sees at fine-tuning and at test time what it saw in pretraining.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from ..data.prepare import PrepareConfig, prepare
from ..data.preprocess import PreprocessConfig
from ..data.store import Store, target_column
from ..errors import ConfigError, InputError
from ..io.layouts import ScanEntry
from ..io.modalities import alternatives
from .sources import check_store
from .spec import TaskSpec


def preprocess_config(spacing, normalization: dict | None) -> PreprocessConfig:
    """A PreprocessConfig from a card's (or preset's) spacing and normalisation fields."""
    norm = dict(normalization or {})
    scheme = norm.get("normalization", norm.get("scheme", "zscore"))
    if scheme not in ("quantile", "zscore", "none"):
        raise ConfigError(
            f"the model's normalisation {scheme!r} ({norm.get('nnssl_schemes') or norm}) is not "
            "one brainfoundry reproduces (quantile, zscore, none)"
        )
    cfg = PreprocessConfig(
        spacing=cast(tuple[float, float, float], tuple(float(s) for s in spacing)),
        normalization=scheme,
        bias_correct=norm.get("bias_correct", "off"),
        # a card from before it existed: not done; no card (a preset): the default
        skull_strip=norm.get("skull_strip", "off" if normalization else "auto"),
    )
    if "clip_percentiles" in norm:
        clip = norm["clip_percentiles"]
        cfg.clip_percentiles = tuple(clip) if clip is not None else None
    return cfg


def prepare_task_data(
    raw: str | Path,
    store: str | Path,
    pre: PreprocessConfig,
    found: tuple[str, list[ScanEntry]] | None = None,
) -> Store:
    """Ingest a fine-tuning/test folder into `store` (resumes; refuses another recipe), or the
    entries `found` in a manifest or BIDS tree (`tasks.sources`); a store prepared earlier
    must then hold none but those sessions, with the same labels."""
    raw = Path(raw)
    if not raw.exists():
        raise InputError(raw, "data folder or manifest does not exist")
    if found is not None and (Path(store) / "manifest.parquet").exists():
        check_store(Store(store), found[1], raw)  # before anything is written
    res = prepare(raw, store, PrepareConfig(preprocess=pre), progress=False, log=lambda _: None,
                  found=found)  # fmt: skip
    if res.n_scans == 0 and res.errors and not (Path(store) / "manifest.parquet").exists():
        raise InputError(raw, f"no usable scans ({res.errors[0]['error']})")
    return Store(store)


def case_table(store: Store, spec: TaskSpec) -> pd.DataFrame:
    """One row per session: key (store group), case (subject), label (NaN for segmentation).

    Sessions lacking a required (non-optional) channel are an error naming the case, and so is
    a segmentation label with values outside the task's classes (checked here, once per case,
    so the loss never has to). Sessions without a label are not cases (`dropped_labels` says
    which had one that prepare could not use)."""
    m = store.manifest
    lacking = [t for t in spec.label_columns if spec.multi_target and target_column(t) not in m]
    if lacking:
        what = f"holds no target {', '.join(lacking)} of task {spec.name}"
        raise InputError(store.root, f"{what} (prepared for another task: use a new folder)")
    rows = []
    for gid, g in m.groupby("group", sort=True):
        have = set(g["modality"])
        for entry in spec.modalities:
            if entry not in spec.optional and not have & set(alternatives(entry)):
                why = [w for w in prepare_errors(store) if f"/{g['session'].iloc[0]}/" in w
                       and f"/{g['subject'].iloc[0]}/" in w]  # fmt: skip
                raise InputError(g["source"].iloc[0], f"session lacks {entry} (task {spec.name})"
                                 + (f"; prepare failed on {why[0]}" if why else ""))  # fmt: skip
        label = g["label"].iloc[0]
        has_seg = isinstance(g["seg"].iloc[0], str) and bool(g["seg"].iloc[0])
        if spec.type != "segmentation" and (label is None or pd.isna(label)):
            continue
        if spec.type == "segmentation" and not has_seg:
            continue
        if spec.type == "segmentation":
            check_label_classes(store, g.iloc[0], spec)
        elif spec.categorical and spec.class_index(float(label)) is None:
            n = spec.n_classes
            raise InputError(g["source"].iloc[0], f"session {g['subject'].iloc[0]}/"
                             f"{g['session'].iloc[0]}: label {float(label):g} is not one of "
                             f"task {spec.name}'s {n} classes (0..{n - 1})")  # fmt: skip
        row = {"key": str(gid), "case": str(g["subject"].iloc[0]), "label": label}
        for t in spec.label_columns if spec.multi_target else []:
            row[target_column(t)] = float(g[target_column(t)].iloc[0])
        rows.append(row)
    extra = [target_column(t) for t in spec.label_columns] if spec.multi_target else []
    return pd.DataFrame(rows, columns=["key", "case", "label", *extra])


def case_targets(cases: pd.DataFrame, keys: list[str], spec: TaskSpec) -> np.ndarray:
    """The labels of `keys` from `case_table`'s rows: [n] (one target, or a class), or
    [n, K] for a multi-target task in label_columns order (NaN: that target is missing)."""
    by = cases.set_index("key").loc[keys]
    if spec.multi_target:
        return by[[target_column(t) for t in spec.label_columns]].to_numpy(float)
    return by["label"].to_numpy(float)


def check_label_classes(store: Store, row: pd.Series, spec: TaskSpec) -> None:
    """A session's label map must hold only the task's classes 0..K-1 (K = the head's outputs):
    one line naming the label file otherwise. The extent was recorded from the source file at
    prepare time; a store from before that is read back from its stored labels instead."""
    n = spec.n_outputs
    extent = row.get("seg_range")
    if extent is None or (isinstance(extent, float) and np.isnan(extent)):
        arr = np.asarray(store.label_array(row["scan_id"])[...])
        extent = [int(arr.min()), int(arr.max())]
    lo, hi = (int(v) for v in extent)
    if lo < 0 or hi > n - 1:
        source = row.get("seg_source")
        path = source if isinstance(source, str) else store.root / str(row["seg"])
        raise InputError(
            path, f"label values {lo}..{hi} are outside the {n} classes (0..{n - 1}) of task "
            f"{spec.name}: relabel the file (e.g. every lesion voxel 1) or leave the case out",
        )  # fmt: skip


def prepare_errors(store: Store) -> list[str]:
    """One warning per input scan that prepare could not use (from the store's errors.jsonl),
    so a case that vanished from fine-tuning or evaluation is said, not silently missing."""
    path = Path(store.root) / "errors.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            e = json.loads(line)
            out.append(f"{e.get('path')}: not prepared, so not used ({e.get('error')})")
    return out


def preprocessing_flags(store: Store, shown: int = 5) -> list[str]:
    """One line per kind of thing preprocessing did to some sessions beyond the recipe (a head
    skull-stripped, a scan registered onto the reference grid), with how many and which: the
    QC flags of a test set, from the manifest's per-session warnings (kept across resumes)."""
    m = store.manifest
    if "warnings" not in m.columns or m.empty:
        return []
    kinds: dict[str, list[str]] = {}
    groups = m.groupby("group", sort=True)
    for _, g in groups:
        r = g.iloc[0]
        texts = {w.get("warning", "") for w in json.loads(r["warnings"] or "[]")}
        for kind in sorted({_flag_kind(t) for t in texts if t}):
            kinds.setdefault(kind, []).append(f"{r['subject']}/{r['session']}")
    out = []
    for kind, names in sorted(kinds.items()):
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        which = ", ".join(names[:shown]) + more
        out.append(f"preprocessing: {len(names)} of {len(groups)} sessions {kind} ({which}; "
                   "the store's manifest has each)")  # fmt: skip
    return out


def _flag_kind(text: str) -> str:
    if "skull-stripped" in text:
        return "skull-stripped (deepbet)"
    if "registration" in text or "grid" in text:
        return "had a scan brought onto the reference grid"
    return "carry another preprocessing warning"


def dropped_labels(store: Store, spec: TaskSpec) -> list[str]:
    """One warning per session whose label map prepare could not use (on none of the session's
    grids), so a segmentation task has one case fewer than the folder suggests."""
    m = store.manifest
    if spec.type != "segmentation" or "seg_dropped" not in m.columns:
        return []
    out = []
    for _, g in m.groupby("group", sort=True):
        r = g.iloc[0]
        if isinstance(r["seg_dropped"], str) and not isinstance(r["seg"], str):
            out.append(f"session {r['subject']}/{r['session']} is not a {spec.name} case: its "
                       f"label {r['seg_dropped']} is on none of its grids (see the store's "
                       "warnings.jsonl)")  # fmt: skip
    return list(dict.fromkeys(out))  # a session of several grids is said once


def default_shots(n: int) -> int:
    """Training cases when `--shots` is not given: all but a fifth (at least 2 validate)."""
    return n - max(2, n // 5)


def few_shot_split(
    cases: pd.DataFrame, shots: int | None, seed: int, stratify: bool, n_val: int | None = None
) -> dict:
    """Draw `shots` training cases (per-class proportional when `stratify`, at least one of
    each class), seeded; the rest (or `n_val` of them) validate. Deterministic per seed."""
    n = len(cases)
    shots = default_shots(n) if shots is None else shots
    if not 1 <= shots < n:
        raise ConfigError(f"--shots {shots}: need 1 <= shots < {n} labelled fine-tuning cases")
    rng = np.random.default_rng(seed)
    keys = cases["key"].to_numpy()
    if stratify:
        labels = cases["label"].to_numpy()
        classes = sorted(set(labels.tolist()))
        alloc = {c: int(np.floor(shots * np.mean(labels == c))) for c in classes}
        for c in classes:  # at least one per class when possible
            alloc[c] = max(alloc[c], 1 if shots >= len(classes) else 0)
        while sum(alloc.values()) < shots:  # largest remainder by class size
            c = max(classes, key=lambda c: np.sum(labels == c) - alloc[c])
            alloc[c] += 1
        while sum(alloc.values()) > shots:
            c = max(classes, key=lambda c: alloc[c])
            alloc[c] -= 1
        train = []
        for c in classes:
            pool = keys[labels == c]
            train += rng.permutation(pool)[: alloc[c]].tolist()
        train = sorted(train)
    else:
        train = sorted(rng.permutation(keys)[:shots].tolist())
    rest = [k for k in rng.permutation(keys).tolist() if k not in set(train)]
    val = sorted(rest[:n_val] if n_val else rest)
    by = dict(zip(cases["key"], cases["case"]))
    return {
        "seed": int(seed),
        "shots": int(shots),
        "stratified": bool(stratify),
        "train": train,
        "val": val,
        "train_cases": [by[k] for k in train],
        "val_cases": [by[k] for k in val],
    }


def write_splits(path: Path, splits: dict) -> None:
    path.write_text(json.dumps(splits, indent=2) + "\n")
