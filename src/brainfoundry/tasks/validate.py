"""Internal validation on held-out fine-tuning cases: the score that picks the best checkpoint
(never the last by default), and the regression interval scale measured after training.
Nothing here writes: fine-tuning decides what to keep.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.store import TARGET_PREFIX, Store, target_column
from ..errors import InputError
from ..evaluation.metrics import METRICS
from ..evaluation.scoring import class_columns, columns, score
from ..evaluation.segmentation import multiclass_case_metrics
from ..evaluation.targets import column, metric_name, target_table
from ..inference.core import class_map
from .calibration import conformal_scale
from .predict import predict_cases, predict_segmentation
from .spec import TaskSpec


def labels_of(store: Store, keys: list[str]) -> np.ndarray:
    first = store.manifest.groupby("group", sort=True)["label"].first()
    return first.loc[keys].to_numpy(dtype=float)


def targets_of(store: Store, keys: list[str], names: Sequence[str]) -> np.ndarray:
    """[len(keys), len(names)] named targets of the session groups `keys` from the store's
    target:<name> columns, in `names` order (NaN: that target is missing for the session)."""
    cols = [target_column(n) for n in names]
    lacking = [n for n, c in zip(names, cols) if c not in store.manifest.columns]
    if lacking:
        held = [c.removeprefix(TARGET_PREFIX) for c in store.manifest.columns
                if c.startswith(TARGET_PREFIX)]  # fmt: skip
        raise InputError(store.root, f"holds no target {', '.join(lacking)} (its targets: "
                         f"{', '.join(held) or 'none'}); prepare the data for a task naming "
                         "them (`brainfoundry prepare DATA STORE --task TASK`)")  # fmt: skip
    first = store.manifest.groupby("group", sort=True)[cols].first()
    return first.loc[keys].to_numpy(dtype=float).reshape(len(keys), len(cols))


def validate(model, spec: TaskSpec, store: Store, keys: list[str], size, overlap=0.5) -> dict:
    """{metric: value, "loss": ...} on `keys`; a metric undefined on them (one class) is None.

    Case-level tasks report every spec metric of the point predictions (intervals are
    calibrated only after training); segmentation reports Dice and the primary metric."""
    if spec.type == "segmentation":
        return _validate_segmentation(model, spec, store, keys, size, overlap)
    if spec.multi_target:
        return _validate_targets(model, spec, store, keys, size)
    df = predict_cases(model, store, spec.channels, size, keys)
    df["label"] = labels_of(store, list(df["key"]))
    y = df["label"].to_numpy(float)
    if spec.type == "classification":
        df["prob"] = np.clip(df["prob"].to_numpy(), 1e-6, 1 - 1e-6)
    out = {
        m: score(spec.type, m, df)
        for m in spec.metrics
        if not {"lo", "hi"} & set(columns(spec.type, m))
    }
    if spec.type == "classification":
        p = df["prob"].to_numpy()
        out["loss"] = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    elif spec.type == "multiclass":
        probs = df[class_columns(spec.n_classes)].to_numpy()
        out["loss"] = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y.astype(int)],
                                                    1e-6, 1.0))))  # fmt: skip
    else:
        mu, sd = df["pred"].to_numpy(), df["sigma"].to_numpy()
        out["loss"] = float(np.mean(np.log(sd) + 0.5 * ((y - mu) / sd) ** 2))
    return out


def _validate_targets(model, spec: TaskSpec, store: Store, keys: list[str], size) -> dict:
    """Every spec metric per target (`<metric>:<target>`), the first target's under the plain
    name (it picks the checkpoint), and the loss: the Gaussian NLL in standardised units over
    every known (case, target), the same for every unit a target is measured in."""
    df = predict_cases(model, store, spec.channels, size, keys)
    names = spec.label_columns
    y = targets_of(store, list(df["key"]), names)
    out: dict = {}
    nll = []
    for k, t in enumerate(names):
        df[column("label", t)] = y[:, k]
        sub = target_table(df, t)
        for m in spec.metrics:
            if not {"lo", "hi"} & set(columns("regression", m)):
                out[metric_name(m, t)] = score("regression", m, sub) if len(sub) else None
        sd = sub["sigma"].to_numpy() / float(model.y_std[k])
        z = (sub["label"].to_numpy() - sub["pred"].to_numpy()) / sub["sigma"].to_numpy()
        nll += (np.log(sd) + 0.5 * z**2).tolist()
    for m in spec.metrics:
        if metric_name(m, names[0]) in out:
            out[m] = out[metric_name(m, names[0])]
    out["loss"] = float(np.mean(nll)) if nll else float("nan")
    return out


def _validate_segmentation(model, spec: TaskSpec, store: Store, keys, size, overlap) -> dict:
    """Mean per-case Dice (its complement is the loss; several classes: averaged over the
    foreground classes) and the primary metric, in store space."""
    spacing = tuple(store.plan["preprocess"]["spacing"])
    rows = []
    dice = METRICS.get("dice")
    for k in keys:
        probs = predict_segmentation(model, store, spec.channels, k, size, overlap=overlap)
        pred = class_map(probs)
        seg_scan = store.manifest[store.manifest["group"] == k]["scan_id"].iloc[0]
        truth = np.asarray(store.label_array(seg_scan)[...])
        if spec.primary_metric == "dice":
            per = [dice(pred == c, truth == c) for c in range(1, spec.n_classes)]
            rows.append({"dice": float(np.mean(per))})
        else:
            rows.append(multiclass_case_metrics(pred, truth, spec.class_names, spacing,
                                                spec.nsd_tolerance_mm,
                                                "nsd_area" in spec.metrics))  # fmt: skip
    df = pd.DataFrame(rows)
    d = float(df["dice"].mean())
    out = {"dice": d}
    if spec.primary_metric != "dice":
        out[spec.primary_metric] = score("segmentation", spec.primary_metric, df)
    out["loss"] = 1.0 - d
    return out


def conformal_calibration(model, spec: TaskSpec, store: Store, keys: list[str], size) -> dict:
    """The split-conformal interval scale of a regression model on held-out `keys`
    (`calibration.conformal_scale`); applying it is the caller's job."""
    df = predict_cases(model, store, spec.channels, size, keys)
    return conformal_scale(labels_of(store, list(df["key"])), df["pred"], df["sigma"])
