"""Internal validation on held-out fine-tuning cases: the score that picks the best checkpoint
(never the last by default), and the regression interval calibration after training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..data.store import Store
from ..evaluation.metrics import METRICS
from ..models.checkpoint import save_model
from .calibration import conformal_scale
from .model_io import load_task_model
from .predict import predict_cases, predict_segmentation
from .spec import TaskSpec


def labels_of(store: Store, keys: list[str]) -> np.ndarray:
    first = store.manifest.groupby("group", sort=True)["label"].first()
    return first.loc[keys].to_numpy(dtype=float)


def _metric(name: str, *cols) -> float | None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v = float(METRICS.get(name)(*cols))
    return v if math.isfinite(v) else None


def validate(model, spec: TaskSpec, store: Store, keys: list[str], size, overlap=0.5) -> dict:
    """{metric: value, "loss": ...} on `keys`; a metric undefined on them (one class) is None."""
    if spec.type == "segmentation":
        dices = []
        for k in keys:
            prob = predict_segmentation(model, store, spec.channels, k, size, overlap=overlap)
            seg_scan = store.manifest[store.manifest["group"] == k]["scan_id"].iloc[0]
            truth = np.asarray(store.label_array(seg_scan)[...]) > 0
            dices.append(METRICS.get("dice")(prob > 0.5, truth))
        d = float(np.mean(dices))
        return {"dice": d, "loss": 1.0 - d}
    df = predict_cases(model, store, spec.channels, size, keys)
    y = labels_of(store, list(df["key"]))
    if spec.type == "classification":
        p = np.clip(df["prob"].to_numpy(), 1e-6, 1 - 1e-6)
        out = {m: _metric(m, y, p) for m in spec.metrics}
        out["loss"] = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        return out
    mu, sd = df["pred"].to_numpy(), df["sigma"].to_numpy()
    out = {m: _metric(m, y, mu) for m in spec.metrics if m in ("mae", "pearson_r")}
    out["loss"] = float(np.mean(np.log(sd) + 0.5 * ((y - mu) / sd) ** 2))
    return out


def calibrate_regression(seed_dir: Path, store: Store, keys: list[str], size) -> dict:
    """Set the saved model's interval scale by split conformal on the validation cases."""
    model, card, spec = load_task_model(seed_dir)
    df = predict_cases(model, store, spec.channels, size, keys)
    cal = conformal_scale(labels_of(store, list(df["key"])), df["pred"], df["sigma"])
    with torch.no_grad():
        model.interval_scale.fill_(cal["scale"])
    card.extra["calibration"] = cal
    save_model(seed_dir, model, card)
    path = seed_dir / "val_metrics.json"
    state = json.loads(path.read_text())
    state["calibration"] = cal
    path.write_text(json.dumps(state, indent=2))
    return cal
