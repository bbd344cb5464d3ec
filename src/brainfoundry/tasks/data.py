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
from ..data.store import Store
from ..errors import ConfigError, InputError
from ..io.modalities import alternatives
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
    )
    if "clip_percentiles" in norm:
        clip = norm["clip_percentiles"]
        cfg.clip_percentiles = tuple(clip) if clip is not None else None
    return cfg


def prepare_task_data(raw: str | Path, store: str | Path, pre: PreprocessConfig) -> Store:
    """Ingest a FOMO fine-tuning/test folder into `store` (resumes; refuses another recipe)."""
    raw = Path(raw)
    if not raw.is_dir():
        raise InputError(raw, "data folder does not exist")
    res = prepare(raw, store, PrepareConfig(preprocess=pre), progress=False, log=lambda _: None)
    if res.n_scans == 0 and res.errors and not (Path(store) / "manifest.parquet").exists():
        raise InputError(raw, f"no usable scans ({res.errors[0]['error']})")
    return Store(store)


def case_table(store: Store, spec: TaskSpec) -> pd.DataFrame:
    """One row per session: key (store group), case (subject), label (NaN for segmentation).

    Sessions lacking a required (non-optional) channel are an error naming the case."""
    m = store.manifest
    rows = []
    for gid, g in m.groupby("group", sort=True):
        have = set(g["modality"])
        for entry in spec.modalities:
            if entry not in spec.optional and not have & set(alternatives(entry)):
                raise InputError(g["source"].iloc[0], f"session lacks {entry} (task {spec.name})")
        label = g["label"].iloc[0]
        has_seg = isinstance(g["seg"].iloc[0], str) and bool(g["seg"].iloc[0])
        if spec.type != "segmentation" and (label is None or pd.isna(label)):
            continue
        if spec.type == "segmentation" and not has_seg:
            continue
        rows.append({"key": str(gid), "case": str(g["subject"].iloc[0]), "label": label})
    return pd.DataFrame(rows, columns=["key", "case", "label"])


def few_shot_split(
    cases: pd.DataFrame, shots: int | None, seed: int, stratify: bool, n_val: int | None = None
) -> dict:
    """Draw `shots` training cases (per-class proportional when `stratify`, at least one of
    each class), seeded; the rest (or `n_val` of them) validate. Deterministic per seed."""
    n = len(cases)
    if shots is None:
        shots = n - max(2, n // 5)
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
