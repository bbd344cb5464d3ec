"""Run a task model over prepared sessions: case-level outputs on whole volumes, or voxel
probabilities by sliding window. Shared by validation (model selection) and evaluation.

The store side of `inference.core`: sessions are read from the store as arrays and handed to
the same core that `predict` runs on raw files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.dataset import Item, session_items
from ..data.store import Store
from ..errors import ConfigError
from ..evaluation.scoring import class_columns
from ..inference.core import case_outputs, segment_probs, stack_channels


def predict_cases(
    model,
    store: Store,
    channels: list[str],
    shape,
    keys: list[str],
    batch_size: int = 2,
    precision: str = "fp32",
) -> pd.DataFrame:
    """One row per session key (in store order) with the head's outputs (prob; prob_k and
    pred; or pred/sigma/lo/hi), `batch_size` sessions per network call (`precision`: see
    `inference.precision`)."""
    items = session_items(store, channels, keys)
    if not items:
        raise ConfigError(f"{store.root}: no sessions with channels {list(channels)}")
    rows: list[dict] = []
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        images, present = zip(*(item_volume(store, it) for it in chunk))
        out = case_outputs(model, images, present, shape, precision)
        for j, it in enumerate(chunk):
            rows.append({"key": it.key, **case_row(out, j)})
    return pd.DataFrame(rows)


def case_row(out: dict[str, np.ndarray], j: int) -> dict[str, float | int]:
    """Row `j` of a head's outputs as table columns: a multiclass head's class probabilities
    [B, K] become prob_0 .. prob_K-1 (`scoring.class_columns`) and `pred`, the likeliest class."""
    row: dict[str, float | int] = {}
    for k, v in out.items():
        if k == "probs":
            row.update(zip(class_columns(v.shape[1]), map(float, v[j])))
            row["pred"] = int(np.argmax(v[j]))
        else:
            row[k] = float(v[j])
    return row


def item_volume(store: Store, item: Item) -> tuple[np.ndarray, np.ndarray]:
    """(image [C, *S] float32, present [C]) of one session item at its stored grid."""
    return stack_channels([store.read(s) if s is not None else None for s in item.scans])


def session_volume(store: Store, channels: list[str], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(image [C, *S] float32, present [C]) of one session at its stored (preprocessed) grid."""
    return item_volume(store, session_items(store, channels, [key])[0])


def predict_segmentation(
    model,
    store: Store,
    channels: list[str],
    key: str,
    patch,
    *,
    overlap: float = 0.5,
    batch_size: int = 2,
    precision: str = "fp32",
) -> np.ndarray:
    """Class probabilities [K, *S] of one session on the preprocessed grid (`inference.core.
    class_map` makes the label map every path scores; `precision`: `inference.precision`)."""
    image, _ = session_volume(store, channels, key)
    return segment_probs(
        model, image, patch, overlap=overlap, batch_size=batch_size, precision=precision
    )
