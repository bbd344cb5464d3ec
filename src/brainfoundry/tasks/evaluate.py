"""`evaluate`: every fine-tuned seed of OUT on a test folder → predictions, metrics with
bootstrap CIs, an HTML report per seed, and mean ± sd over seeds in OUT/metrics.json.

The test folder is prepared with the model's own card (spacing, normalisation) into
OUT/test_store. Segmentation masks are mapped back onto each input's grid and scored there
against the session's reference mask (a CSV manifest's `seg` column, or the folder layout's
`seg.nii.gz`: `tasks.sources.reference_masks`), so Dice/NSD/HD95 are in millimetres of the
input scan.
What the numbers rest on but a table hides (sessions whose label prepare could not use, heads
skull-stripped and scans registered onto the reference grid (`preprocessing_flags`), brains
centre-cropped to the input box, regression outputs outside the card's output range, whose
intervals are clipped as `predict` clips them) is logged and listed under "warnings" in each
metrics.json and in the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.store import target_column
from ..data.volume_dataset import crop_warnings
from ..engine.device import pick_device
from ..errors import InputError
from ..evaluation import mean_sd_over_seeds, summarize, write_report
from ..evaluation.segmentation import multiclass_case_metrics
from ..evaluation.targets import column
from ..inference.core import class_map, input_size
from ..models.card import ModelCard
from .calibration import calibration_text
from .data import (
    case_table,
    dropped_labels,
    prepare_errors,
    prepare_task_data,
    preprocess_config,
    preprocessing_flags,
)
from .model_io import load_task_model
from .output_range import check_table, ensemble_range
from .predict import predict_cases, predict_segmentation, session_volume
from .sources import TaskSource, reference_masks, run_spec, task_source


def seed_dirs(out: Path) -> list[Path]:
    dirs = sorted((p.parent for p in out.glob("seed_*/card.json")), key=lambda p: int(p.name[5:]))
    if not dirs:
        raise InputError(out, "no seed_*/card.json here; run `brainfoundry finetune` first")
    return dirs


def evaluate(
    out: str | Path, data: str | Path, *, n_boot: int = 2000, log=print, store_dir=None,
    device: str = "auto",
) -> dict:  # fmt: skip
    """Score every seed of OUT on `data`; `store_dir` (default OUT/test_store) may be shared
    by runs with the same preprocessing recipe; `device`: auto, cpu, cuda or cuda:N."""
    dev = pick_device(device)  # a device this machine lacks is said before any work
    out = Path(out)
    dirs = seed_dirs(out)
    card = ModelCard.load(dirs[0] / "card.json")
    src = task_source(data, run_spec(dirs[0]), "test", log)
    data = src.path
    pre = preprocess_config(card.spacing, card.normalization)
    store = prepare_task_data(data, store_dir or out / "test_store", pre, src.found)
    per_seed, warned = {}, []
    for d in dirs:
        model, card, spec = load_task_model(d)
        model = model.to(dev)
        cases = case_table(store, spec)
        if cases.empty:
            raise InputError(data, f"no labelled test cases for task {spec.name}")
        preds, volumes, warnings, checked = _predict_seed(model, card, spec, store, cases, src)
        preds = preds.drop(columns=["key"])
        preds.to_csv(d / "predictions.csv", index=False)
        summary = _summary(spec, card, preds, n_boot, checked, warnings)
        (d / "metrics.json").write_text(json.dumps(summary, indent=2))
        details = {
            "task": spec.name,
            "model": str(d),
            "init": card.extra.get("init"),
            "strategy": card.extra.get("strategy", {}).get("name"),
            "training cases": card.data_summary.get("n_train"),
            "best validation step": card.extra.get("step"),
            "interval calibration": calibration_text(card.extra.get("calibration")),
            "test data": str(data),
            "warnings": len(warnings),
        }
        write_report(
            d, spec.head, preds, summary, title=f"{spec.name} — {d.name}",
            volumes=volumes, details=details,
        )  # fmt: skip
        per_seed[d.name] = summary["metrics"]
        for w in warnings:
            log(f"warning: {d.name}: {w}")
        warned += [w for w in warnings if w not in warned]
        log(f"{d.name}: " + ", ".join(f"{k} {_est(v):.3f}" for k, v in summary["metrics"].items()))
    agg = _aggregate(per_seed)
    result = {"task": spec.name, "n_seeds": len(dirs), "n_cases": len(cases), "metrics": agg,
              "per_seed": per_seed, "warnings": warned}  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def _summary(spec, card, preds, n_boot: int, checked, warnings: list[str]) -> dict:
    """A seed's metrics.json: the metrics with CIs, and what they rest on."""
    summary = summarize(spec.head, preds, metrics=spec.metrics, n_boot=n_boot, seed=0)
    summary["task"] = spec.name
    if spec.type == "multiclass":
        summary["classes"] = spec.classes
    if "calibration" in card.extra:  # which guarantee the intervals carry
        summary["calibration"] = card.extra["calibration"]
    if spec.type == "segmentation":
        summary["nsd_tolerance_mm"] = spec.nsd_tolerance_mm
    if checked is not None:
        summary["plausibility"] = checked
    summary["warnings"] = warnings
    return summary


def _predict_seed(model, card, spec, store, cases, src: TaskSource):
    """(predictions with key, montage loader or None, warnings, plausibility summary or None):
    what the seed predicts on the test cases, and what was lost or is implausible in it (labels
    prepare could not use, brains centre-cropped to the input box, regression outputs outside
    the card's output range). `src`: the data read, where the reference masks come from."""
    size = input_size(card)
    warnings = prepare_errors(store) + dropped_labels(store, spec) + preprocessing_flags(store)
    if spec.type == "segmentation":
        preds, volumes = _segment(model, spec, store, cases, size, src)
        return preds, volumes, warnings, None
    warnings += crop_warnings(store, cases["key"], size)
    df = predict_cases(model, store, spec.channels, size, list(cases["key"]))
    preds = cases.merge(df, on="key")
    if spec.multi_target:  # the truth of each target beside its prediction (targets.py)
        truth = {target_column(t): column("label", t) for t in spec.label_columns}
        preds = preds.drop(columns=["label"]).rename(columns=truth)
    if spec.head != "regression":
        return preds, None, warnings, None
    limits = ensemble_range([card.extra.get("output_range")], spec.range, spec.unit)
    preds, checked, found = check_table(preds, limits)
    return preds, None, warnings + found, checked


def _est(m) -> float:
    v = m.get("estimate") if isinstance(m, dict) else m
    return float("nan") if v is None else float(v)


def _aggregate(per_seed: dict) -> dict:
    """Mean ± sd of each metric's estimate over seeds (strict JSON: NaN written as null)."""
    names = sorted({k for m in per_seed.values() for k in m})
    out = {}
    for n in names:
        s = mean_sd_over_seeds([_est(m.get(n, {})) for m in per_seed.values()])
        out[n] = {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in s.items()
        }
    return out


def _segment(model, spec, store, cases, size, src: TaskSource):
    """Per-case Dice/NSD/HD95 on the input grid, and a loader of montage volumes."""
    from ..data.preprocess import Geometry, restore
    from ..io.volume import read_volume

    seg_of = reference_masks(src)
    rows, masks = [], {}
    for r in cases.itertuples():
        g = store.manifest[store.manifest["group"] == r.key].iloc[0]
        labels = class_map(predict_segmentation(model, store, spec.channels, r.key, size))
        geom = Geometry.from_json(json.loads(g["geometry"]))
        pred = restore(labels, geom, is_label=True)
        ref = read_volume(seg_of[(g["subject"], g["session"])], label=True)
        truth = np.rint(ref.data).astype(np.int64)
        if spec.n_classes == 2:  # binary: any labelled voxel is lesion
            truth = (truth > 0).astype(np.int64)
        spacing = tuple(float(s) for s in np.linalg.norm(ref.affine[:3, :3], axis=0))
        m = multiclass_case_metrics(pred, truth, spec.class_names, spacing, spec.nsd_tolerance_mm,
                                    area_nsd="nsd_area" in spec.metrics)  # fmt: skip
        rows.append({"key": r.key, "case": r.case, **m, "pred_voxels": int((pred > 0).sum())})
        masks[r.case] = (r.key, labels > 0)

    def volumes(case: str):
        key, mask = masks[case]
        image, _ = session_volume(store, spec.channels, key)
        scan = store.manifest[store.manifest["group"] == key]["scan_id"].iloc[0]
        truth = np.asarray(store.label_array(scan)[...]) > 0
        return image[0], truth, mask, tuple(store.plan["preprocess"]["spacing"])

    return pd.DataFrame(rows), volumes
