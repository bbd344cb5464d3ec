"""Run a task model over prepared sessions: case-level outputs on whole volumes, or voxel
probabilities by sliding window. Shared by validation (model selection) and evaluation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..data.store import Store
from ..data.volume_dataset import VolumeDataset, session_items
from ..inference.sliding_window import sliding_window


@torch.no_grad()
def predict_cases(
    model, store: Store, channels: list[str], shape, keys: list[str], batch_size: int = 2
) -> pd.DataFrame:
    """One row per session key with the head's outputs (prob, or pred/sigma/lo/hi)."""
    ds = VolumeDataset(store, channels, shape, keys=keys)
    device = next(model.parameters()).device
    model.eval()
    rows: list[dict] = []
    for i in range(0, len(ds.items), batch_size):
        samples = [ds[j] for j in range(i, min(i + batch_size, len(ds.items)))]
        image = torch.stack([s["image"] for s in samples]).to(device)
        present = torch.stack([s["present"] for s in samples]).to(device)
        out = model.predict(image, present)
        for j, s in enumerate(samples):
            row = {"key": s["meta"]["key"]}
            row.update({k: float(v[j]) for k, v in out.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def session_volume(store: Store, channels: list[str], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(image [C, *S] float32, present [C]) of one session at its stored (preprocessed) grid."""
    item = session_items(store, channels, [key])[0]
    ref = next(s for s in item.scans if s is not None)
    shape = store.array(ref).shape
    chans = [store.read(s) if s is not None else np.zeros(shape, np.float32) for s in item.scans]
    return np.stack(chans), np.array([s is not None for s in item.scans])


@torch.no_grad()
def predict_segmentation(
    model, store: Store, channels: list[str], key: str, patch, *, overlap=0.5, batch_size=2
) -> np.ndarray:
    """Foreground probability [*S] of one session on the preprocessed grid."""
    image, _ = session_volume(store, channels, key)
    device = next(model.parameters()).device
    model.eval()

    def fn(tiles: torch.Tensor) -> torch.Tensor:
        return model.predict(tiles)["probs"]

    probs = sliding_window(
        fn, torch.from_numpy(image).to(device), patch, overlap=overlap, batch_size=batch_size
    )
    return probs[1].cpu().numpy()
