"""Predict one session of new scans with a fine-tuned model folder, as FOMO25 asks.

The model folder is self-contained: a `finetune` output (every `seed_*/` is loaded and their
outputs averaged, an ensemble) or one seed folder. Each card names the sequences in channel
order, the spacing and the normalisation; the scans get exactly the preprocessing of training
(`data.preprocess.preprocess_group`), go through the core evaluation runs on the store
(`inference.core`), and a mask is mapped back onto the input's own grid. A scan on another grid
than the first given one (the reference) is registered rigidly onto it and resampled there,
with a warning (`data.coregister`); one that cannot be registered is a one-line error.

Outputs, all written atomically (a temporary name, then a rename: never a partial file):
- classification: OUTPUT.txt with P(positive); multiclass: OUTPUT.txt with the likeliest class's
  name (every class's probability in the JSON); several regression targets: one line per
  target, `name<TAB>value`; regression: OUTPUT.txt with the value (repr,
  full precision); segmentation: OUTPUT.nii.gz, {0,1} uint8 (several classes: 0..K-1), the
  input's shape and affine;
- OUTPUT.json beside it: the uncertainty (95% interval with the guarantee its calibration
  gives, probability, spread over the ensemble, lesion volume), provenance and warnings (a brain
  centre-cropped to the model's box; a value outside the physically possible range or far
  outside the training labels, `tasks.output_range`); OUTPUT.png: a QC montage.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data.coregister import Mode
from ..data.dataset import crop_warning
from ..errors import InputError
from ..io.atomic import atomic_write_text
from ..io.modalities import alternatives, canonical_modality, resolve_channels
from ..io.volume import Volume, read_volume
from .core import (
    case_outputs,
    class_map,
    input_size,
    lesion_mask,
    segment,
    segment_probs,
    stack_channels,
)
from .precision import check_precision

if TYPE_CHECKING:
    from ..data.preprocess import Geometry
    from ..models.card import ModelCard
    from ..tasks.spec import TaskSpec

FOMO_FLAGS = ("flair", "adc", "dwi_b1000", "t2s", "swi", "t1", "t2")


@dataclass
class Member:
    model: torch.nn.Module
    card: ModelCard
    spec: TaskSpec
    path: Path


@dataclass
class Session:
    """One session's scans as the model sees them, and the way back onto the input grid."""

    image: np.ndarray  # [C, *S] float32: the store's arrays for these scans
    present: np.ndarray  # [C] bool
    geometry: Geometry
    ref: Volume  # the first given scan: grid, affine and spacing of the outputs
    first: int  # its channel (the QC picture shows it)
    warnings: list[str] = field(default_factory=list)  # scans moved onto the reference grid
    qc: dict = field(default_factory=dict)  # what preprocessing did (`Preprocessed.qc`)


class Predictor:
    """A loaded model folder (one or several seeds) that predicts sessions."""

    def __init__(self, model_dir: str | Path, device: str | None = "auto"):
        from ..engine.device import pick_device
        from ..tasks.model_io import load_task_model

        root = Path(model_dir)
        if (root / "card.json").is_file():
            dirs = [root]
        else:
            dirs = sorted(p.parent for p in root.glob("seed_*/card.json"))
        if not dirs:
            raise InputError(root, "not a model folder (no card.json or seed_*/card.json)")
        self.device = pick_device(device or "auto")
        self.members = []
        for d in dirs:
            model, card, spec = load_task_model(d)
            self.members.append(Member(model.to(self.device).eval(), card, spec, d))
        first = self.members[0]
        for m in self.members[1:]:
            if m.spec.channels != first.spec.channels or m.card.spacing != first.card.spacing:
                raise InputError(m.path, "seeds disagree on sequences or spacing")
        self.spec, self.card = first.spec, first.card

    # -- inputs -----------------------------------------------------------------------------

    def assign(self, inputs: dict[str, str | Path]) -> list[Path | None]:
        """The input for each channel of the task ("t2s|swi" takes the first given); a missing
        required sequence is a one-line error naming what is needed and what was given."""
        given = {}
        for name, path in inputs.items():
            mod = canonical_modality(name) or name
            given[mod] = Path(path)
        chosen = resolve_channels(self.spec.channels, given)
        for entry, hit in zip(self.spec.channels, chosen):
            if hit is None and entry not in self.spec.optional:
                need = " or ".join(f"--{a}" for a in alternatives(entry))
                raise InputError(
                    self.members[0].path,
                    f"task {self.spec.name} needs {need}; given: "
                    + (", ".join(f"--{k}" for k in given) or "nothing"),
                )
        return chosen

    # -- prediction ----------------------------------------------------------------------------

    @torch.inference_mode()
    def predict(self, inputs: dict[str, str | Path], *, overlap: float = 0.5,
                mirror: bool = False, skip_empty: bool = False, batch_size: int = 2,
                whole: bool = False, precision: str = "fp32",
                coregister: Mode = "auto", skull_strip: str | None = None) -> dict:  # fmt: skip
        """Outputs of one session: {"kind", "value" or "mask", "uncertainty", ...}.
        overlap, mirror, skip_empty, batch_size: the sliding window's (segmentation);
        whole: one pass over the whole cropped volume instead (faster, see inference.md);
        precision: "fp32" or "bf16" autocast of the network (`inference.precision`);
        coregister: how scans on another grid than the first are brought onto it;
        skull_strip: brain extraction (`data.skull_strip`), None: the model's recipe."""
        t0 = time.perf_counter()
        check_precision(precision)
        chosen = self.assign(inputs)
        norm = dict(self.card.normalization or {})
        if skull_strip is not None:
            norm["skull_strip"] = skull_strip
        session = preprocess_session(chosen, self.card.spacing, norm, coregister)
        out: dict = {"task": self.spec.name, "kind": self.spec.type, "members": len(self.members)}
        if self.spec.type == "segmentation":
            sw = {"overlap": overlap, "mirror": mirror, "skip_empty": skip_empty,
                  "batch_size": batch_size, "whole": whole, "precision": precision}  # fmt: skip
            out.update(self._segmentation(session, sw))
        else:
            out.update(self._case(session, precision))
        out["warnings"] = session.warnings + out.get("warnings", [])
        out["qc"] = session.qc
        out["qc_image"] = session.image[session.first]
        out["qc_prob"] = out.get("prob_preprocessed")
        out["inputs"] = {e: str(p) for e, p in zip(self.spec.channels, chosen) if p is not None}
        out["seconds"] = time.perf_counter() - t0
        return out

    def _segmentation(self, s: Session, sw: dict) -> dict:
        """The members' mean probability, thresholded and mapped back to the input grid."""
        from ..data.preprocess import restore

        if self.spec.n_classes > 2:
            return self._classes(s, sw)
        probs = [segment(m.model, s.image, input_size(m.card), **sw) for m in self.members]
        prob = np.mean(probs, axis=0)
        mask = restore(lesion_mask(prob).astype(np.uint8), s.geometry, is_label=True)
        return {
            "mask": mask.astype(np.uint8),
            "affine": s.ref.affine,
            "prob_preprocessed": prob,
            "uncertainty": _lesion_uncertainty(probs, prob, mask, s.ref.spacing),
        }

    def _classes(self, s: Session, sw: dict) -> dict:
        """Several classes: the members' mean class probabilities → the likeliest class per
        voxel on the input grid (values 0..K-1), each class's volume beside it."""
        from ..data.preprocess import restore

        probs = np.mean([segment_probs(m.model, s.image, input_size(m.card), **sw)
                         for m in self.members], axis=0)  # fmt: skip
        labels = restore(class_map(probs), s.geometry, is_label=True).astype(np.uint8)
        vox = float(np.prod(s.ref.spacing)) / 1000.0
        names = self.spec.class_names
        volumes = {c: float((labels == k).sum()) * vox for k, c in enumerate(names) if k}
        return {
            "mask": labels,
            "affine": s.ref.affine,
            "prob_preprocessed": 1.0 - probs[0],  # any foreground class: what the QC overlays
            "uncertainty": {"volume_ml": volumes},
        }

    def _case(self, s: Session, precision: str = "fp32") -> dict:
        """The members' mean class probability or value, with the ensemble's uncertainty."""
        from ..tasks.output_range import ensemble_range

        size = input_size(self.card)
        res = [case_outputs(m.model, [s.image], [s.present], size, precision)
               for m in self.members]  # fmt: skip
        calibration = _calibration([m.card for m in self.members])
        if self.spec.type == "classification":
            out = _classification_summary([float(r["prob"][0]) for r in res], calibration)
        elif self.spec.type == "multiclass":
            out = _multiclass_summary([r["probs"][0] for r in res], self.spec.classes)
        elif self.spec.multi_target:
            out = _targets_summary(res, self.spec.label_columns, calibration)
        else:
            ranges = [m.card.extra.get("output_range") for m in self.members]
            limits = ensemble_range(ranges, self.spec.range, self.spec.unit)
            out = _regression_summary(res, self.spec.unit or None, calibration, limits)
        crop = crop_warning(s.image.shape[1:], size)
        return {**out, "warnings": ([crop] if crop else []) + out.get("warnings", [])}


def load_inputs(chosen: list[Path | None]) -> tuple[list[Volume], list[int]]:
    """The given scans read, and their channel indices (their grids may differ: preprocessing
    brings them onto the first one's)."""
    vols, where = [], []
    for i, p in enumerate(chosen):
        if p is None:
            continue
        vols.append(read_volume(p))
        where.append(i)
    return vols, where


def preprocess_session(
    chosen: list[Path | None], spacing, normalization: dict | None, coregister: Mode = "auto"
) -> Session:
    """Scans (one path per channel, None = missing) preprocessed with a card's recipe exactly as
    `prepare` puts them in a store (`preprocess_group`: one crop, one geometry); scans on
    another grid than the first given one are brought onto it per `coregister`."""
    from ..data.preprocess import preprocess_group
    from ..tasks.data import preprocess_config

    vols, where = load_inputs(chosen)
    cfg = replace(preprocess_config(spacing, normalization), coregister=coregister)
    pre = preprocess_group(vols, cfg)
    chans: list[np.ndarray | None] = [None] * len(chosen)
    for i, im in zip(where, pre.images):
        chans[i] = im
    image, present = stack_channels(chans)
    return Session(image, present, pre.geometry, vols[0], where[0], pre.warnings, pre.qc)


def _lesion_uncertainty(probs: list[np.ndarray], prob: np.ndarray, mask, spacing) -> dict:
    """Lesion volume on the input grid, confidence inside it, and how often members disagree."""
    vox = float(np.prod(spacing))
    sure = float(np.mean(np.abs(prob[prob > 0.5] - 0.5)) * 2) if (prob > 0.5).any() else 1.0
    spread = float(np.mean([((p > 0.5) != (prob > 0.5)).mean() for p in probs]))
    return {
        "lesion_volume_ml": float(mask.sum()) * vox / 1000.0,
        "mean_confidence_in_lesion": sure,
        "ensemble_disagreement_fraction": spread,
    }


def _calibration(cards: list[ModelCard]) -> dict | None:
    """The interval's calibration as each card stores it (method, coverage, n, whether it is
    finite-sample valid, ...): one seed's as it is, an ensemble's per seed."""
    cals = [c.extra.get("calibration") for c in cards]
    if all(c is None for c in cals):
        return None
    if len(cals) == 1:
        return dict(cals[0] or {})
    return {"per_seed": cals, "note": "the interval is the mean of the seeds' intervals; each "
            "seed's guarantee holds for its own interval, not for the mean"}  # fmt: skip


def _classification_summary(ps: list[float], calibration: dict | None) -> dict:
    p = float(np.mean(ps))
    return {
        "value": p,
        "uncertainty": {
            "probability": p,
            "ensemble_sd": _sd(ps),
            "entropy_bits": _entropy(p),
            "calibration": calibration
            or f"none: the head's sigmoid, averaged over {len(ps)} seed(s)",
        },
    }


def _multiclass_summary(ps: list[np.ndarray], classes: list[str]) -> dict:
    """The likeliest class of the members' mean probabilities, with every class's probability."""
    p = np.mean(np.stack(ps), axis=0)
    sd = np.std(np.stack(ps), axis=0) if len(ps) > 1 else np.full(len(p), np.nan)
    ent = float(-np.sum(p * np.log2(np.clip(p, 1e-12, 1.0))))
    return {
        "value": classes[int(np.argmax(p))],
        "uncertainty": {
            "probabilities": {c: float(v) for c, v in zip(classes, p)},
            "ensemble_sd": {c: (None if math.isnan(v) else float(v)) for c, v in zip(classes, sd)},
            "entropy_bits": ent,
            "calibration": f"none: the head's softmax, averaged over {len(ps)} seed(s)",
        },
    }


def _targets_summary(res: list[dict], names: list[str], calibration: dict | None) -> dict:
    """Each target's mean value and interval over the members: `value` maps target -> value
    (no physical range is known for several targets at once)."""
    values, per = {}, {}
    for t in names:
        preds = np.array([float(r[f"pred:{t}"][0]) for r in res])
        lo, hi, sig = (np.array([float(r[f"{k}:{t}"][0]) for r in res])
                       for k in ("lo", "hi", "sigma"))  # fmt: skip
        values[t] = float(preds.mean())
        per[t] = {"interval_95": [float(lo.mean()), float(hi.mean())],
                  "sigma": float(np.sqrt(np.mean(sig**2) + np.var(preds))),
                  "ensemble_sd": _sd(preds.tolist())}  # fmt: skip
    cal = calibration or "none: the head's Gaussian intervals, not calibrated"
    return {"value": values, "uncertainty": {"per_target": per, "calibration": cal}}


def _regression_summary(
    res: list[dict], unit: str | None, calibration: dict | None, limits: dict
) -> dict:
    """The members' mean value and interval; the interval clipped at the physical limits (the
    unclipped one kept beside it), and the value checked against `limits` (never clipped)."""
    from ..tasks.output_range import check, value_warnings

    preds, sig, lo, hi = (
        np.array([float(r[k][0]) for r in res]) for k in ("pred", "sigma", "lo", "hi")
    )
    value, raw = float(preds.mean()), [float(lo.mean()), float(hi.mean())]
    flags = check(limits, value, *raw)
    uncertainty = {
        "interval_95": [float(flags["lo"][0]), float(flags["hi"][0])],
        "sigma": float(np.sqrt(np.mean(sig**2) + np.var(preds))),
        "ensemble_sd": _sd(preds.tolist()),
        "unit": unit,
        "calibration": calibration or "none: the head's Gaussian interval, not calibrated",
    }
    clipped = bool(flags["interval_clipped"][0])
    if clipped:
        uncertainty["interval_95_unclipped"] = raw
    plausibility: dict[str, object] = {
        k: bool(flags[k][0]) for k in ("outside_physical", "far_from_training")
    }
    plausibility.update(interval_clipped=clipped, limits=limits)
    warnings = value_warnings(limits, value) + ([limits["note"]] if "note" in limits else [])
    return {"value": value, "uncertainty": uncertainty, "warnings": warnings,
            "plausibility": plausibility}  # fmt: skip


def _sd(values: list[float]) -> float:
    return float(np.std(values)) if len(values) > 1 else 0.0


def _entropy(p: float) -> float:
    q = min(max(p, 1e-12), 1 - 1e-12)
    return float(-(q * math.log2(q) + (1 - q) * math.log2(1 - q)))


def output_paths(output: str | Path, kind: str) -> tuple[Path, Path, Path]:
    """(main, json, png) for an --output given with or without its extension."""
    out = Path(output)
    name = out.name
    for ext in (".nii.gz", ".nii", ".txt"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    main = out.with_name(name + (".nii.gz" if kind == "segmentation" else ".txt"))
    return main, out.with_name(name + ".json"), out.with_name(name + ".png")


def write_outputs(
    result: dict, output: str | Path, *, qc: bool = True, side_files: bool = True
) -> Path:
    """The main output (txt or nii.gz) plus its JSON (`side_files`) and QC PNG (`qc`), each
    atomically; the main output last, so a file that looks valid only exists once everything
    succeeded."""
    from ..io.nifti import write_nifti

    main, js, png = output_paths(output, result["kind"])
    main.parent.mkdir(parents=True, exist_ok=True)
    info = {k: result[k] for k in ("task", "kind", "members", "uncertainty", "inputs")}
    info["warnings"] = result.get("warnings", [])
    info["qc"] = result.get("qc", {})
    if "plausibility" in result:
        info["plausibility"] = result["plausibility"]
    info["output"] = main.name
    info["seconds"] = round(result["seconds"], 3)
    if "value" in result:
        info["value"] = result["value"]
    try:
        if side_files:
            atomic_write_text(js, json.dumps(info, indent=2))
        if qc:
            from .qc import qc_png

            qc_png(png, result)
        if result["kind"] == "segmentation":
            write_nifti(main, result["mask"], result["affine"])
        elif result["kind"] == "multiclass":  # the class name; its probabilities in the JSON
            atomic_write_text(main, str(result["value"]) + "\n")
        elif isinstance(result["value"], dict):  # several targets: "name<TAB>value" per line
            lines = [f"{t}\t{float(v)!r}" for t, v in result["value"].items()]
            atomic_write_text(main, "\n".join(lines) + "\n")
        else:
            atomic_write_text(main, repr(float(result["value"])) + "\n")
    except BaseException:
        for p in (js, png):  # no orphaned side files when the main output failed
            p.unlink(missing_ok=True)
        raise
    return main


def session_inputs(folder: str | Path) -> dict[str, Path]:
    """{modality: path} of a session folder: `<sequence>.nii[.gz]` files and DICOM series
    folders named by their sequence (aliases like `T2_FLAIR`, `DWI` are understood)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "session folder does not exist")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_file() and not p.name.endswith((".nii", ".nii.gz")):
            continue
        mod = canonical_modality(p.name)
        if mod is not None:
            found.setdefault(mod, p)
    if not found:
        raise InputError(folder, "no scans named by a known sequence (e.g. flair.nii.gz, adc/)")
    return found


def batch_sessions(source: str | Path) -> list[tuple[str, dict[str, Path]]]:
    """(name, {modality: path}) per session of a folder in any known layout, or a CSV."""
    from ..io.layouts import discover

    _, entries = discover(source)
    groups: dict[tuple[str, str], dict[str, Path]] = {}
    for e in entries:
        if e.modality is None:
            continue
        groups.setdefault((e.subject, e.session), {}).setdefault(e.modality, Path(e.path))
    sessions = sorted(groups)
    multi = len({s for _, s in sessions}) > 1
    return [(f"{sub}_{ses}" if multi else sub, groups[(sub, ses)]) for sub, ses in sessions]
