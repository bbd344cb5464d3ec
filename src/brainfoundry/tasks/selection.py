"""Keep the best checkpoint of a fine-tuning run on validation data, then calibrate it.

Validation (`validate.py`) only scores; this module decides what is written: the best model and
card so far, `val_metrics.json` (which also lets a killed run resume its choice), and, for
regression, the conformal interval scale applied to the kept model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from ..engine import Trainer
from ..evaluation.metrics import higher_is_better
from ..io.atomic import atomic_write_text
from ..models.card import ModelCard
from ..models.checkpoint import save_model
from .calibration import conformal_scale, jackknife_guarantee
from .heads import JACKKNIFE_COVERAGE
from .model_io import load_task_model
from .spec import TaskSpec
from .validate import conformal_calibration, labels_of, targets_of, validate

if TYPE_CHECKING:
    from ..data.store import Store

STATE = "val_metrics.json"


@dataclass
class Selection:
    """What picking the best checkpoint needs: the task, its validation cases and their shape."""

    spec: TaskSpec
    store: Store
    val_keys: list[str]
    size: tuple
    overlap: float
    seed_dir: Path
    card: ModelCard
    train_keys: list[str] = dataclasses.field(default_factory=list)  # for jackknife+

    def best(self) -> dict | None:
        path = self.seed_dir / STATE
        return json.loads(path.read_text()) if path.exists() else None

    def checkpoint_hook(self, log, seed: int):
        """A Trainer `on_checkpoint`: validate, and keep the model if it beats the best so far
        (primary metric, then the validation loss)."""
        best = self.best()
        sign = 1.0 if higher_is_better(self.spec.primary_metric) else -1.0

        def on_checkpoint(m, step: int, ema) -> None:
            nonlocal best
            vals = validate(m, self.spec, self.store, self.val_keys, self.size, self.overlap)
            m.train()
            score = vals.get(self.spec.primary_metric)
            key = (sign * score if score is not None else float("-inf"), -vals["loss"])
            if best is None or key > tuple(best["key"]):
                best = {"step": step, "key": list(key), "metrics": vals}
                self.card.extra.update(step=step, val_metrics=vals)
                save_model(self.seed_dir, m, self.card)
                atomic_write_text(self.seed_dir / STATE, json.dumps(best, indent=2))
            log(f"seed {seed} step {step}: val {vals} (best at step {best['step']})")

        return on_checkpoint


def train_and_select(sel: Selection, model, dataset, cfg, groups, probe, seed: int, log) -> dict:
    """Train (resuming), validating at every checkpoint; the probe alone competes too.
    Returns the best checkpoint's validation metrics."""
    hook = sel.checkpoint_hook(log, seed)
    if sel.best() is None and probe is not None:
        hook(model, 0, None)
    if cfg.train.steps > 0:
        trainer = Trainer(
            model, dataset, cfg.train, cfg.optim, sel.seed_dir,
            on_checkpoint=hook, param_groups=groups,
        )  # fmt: skip
        trainer.fit(resume=True)
    best = sel.best()
    return best["metrics"] if best else {}


def calibrate(sel: Selection, log, seed: int) -> dict:
    """Calibrate the kept regression model's 95% interval and write it into the model, its card
    and `val_metrics.json`: jackknife+ over every labelled case when the closed-form probe was
    kept (nothing is used twice), else split conformal on the validation cases, which then
    count twice (they chose the checkpoint) and are marked so (`calibration.py`)."""
    model, card, spec = load_task_model(sel.seed_dir)
    state = sel.best() or {}
    probe_kept = state.get("step") == 0 and card.extra.get("probe") is not None
    if spec.multi_target:
        cal = _calibrate_targets(sel, model, card, probe_kept)
        if not probe_kept:
            log(f"warning: seed {seed}: the intervals are calibrated on the validation cases "
                "that also chose the checkpoint; their coverage is not guaranteed")  # fmt: skip
    elif probe_kept:
        cal = _jackknife(sel, model, card)
    else:
        cal = conformal_calibration(model, spec, sel.store, sel.val_keys, sel.size)
        cal.update(reused_for_selection=True, finite_sample_valid=False, guaranteed_coverage=None)
        with torch.no_grad():
            cast(torch.Tensor, model.interval_scale).fill_(cal["scale"])  # a RegressionModel buffer
        log(
            f"warning: seed {seed}: the interval is calibrated on the {cal['n']} validation cases "
            "that also chose the checkpoint; its coverage is not guaranteed"
        )
    card.extra["calibration"] = cal
    save_model(sel.seed_dir, model, card)
    state["calibration"] = cal
    atomic_write_text(sel.seed_dir / STATE, json.dumps(state, indent=2))
    log(f"seed {seed}: 95% interval by {cal['method']} on {cal['n']} cases")
    return cal


def _calibrate_targets(sel: Selection, model, card, probe_kept: bool) -> dict:
    """Each target's 95% interval, as for one target: jackknife+ over the train ∪ validation
    cases that have it when the probe was kept (padded leave-one-out heads, NaN residuals for
    the cases without it), else split conformal on the validation cases. One record per
    target, under `per_target`; `method` and `n` summarise them."""
    from ..data.volume_dataset import VolumeDataset
    from .probe import jackknife_fits, pooled_features

    names = list(model.targets)
    keys = sel.train_keys + sel.val_keys if probe_kept else sel.val_keys
    ds = VolumeDataset(sel.store, sel.spec.channels, sel.size, keys=keys)
    x = pooled_features(model, ds)
    y = targets_of(sel.store, [it.key for it in ds.items], names)
    t = (y - model.y_mean.double().numpy()) / model.y_std.double().numpy()
    per: dict[str, dict] = {}
    if probe_kept:
        n, n_in = len(keys), x.shape[1]
        w, b = np.zeros((len(names), n, n_in)), np.zeros((len(names), n))
        r = np.full((len(names), n), np.nan)
        for k, name in enumerate(names):
            ok = np.flatnonzero(np.isfinite(t[:, k]))
            fits = jackknife_fits(x[ok], t[ok, k])
            w[k, ok], b[k, ok], r[k, ok] = fits["w"], fits["b"], fits["resid"]
            per[name] = jackknife_guarantee(len(ok), JACKKNIFE_COVERAGE)
        model.set_jackknife(w, b, r)
        card.extra["head"] = {**card.extra.get("head", {}), "jackknife_n": n}
    else:
        with torch.no_grad():
            out = model.head(torch.as_tensor(x, dtype=model.head.weight.dtype))
            mean, log_var = model._moments(out)
        sigma = torch.exp(0.5 * log_var).double().numpy()
        for k, name in enumerate(names):
            rec = conformal_scale(t[:, k], mean[:, k].double().numpy(), sigma[:, k])
            rec.update(reused_for_selection=True, finite_sample_valid=False,
                       guaranteed_coverage=None)  # fmt: skip
            model.interval_scale[k] = rec["scale"]
            per[name] = rec
    first = per[names[0]]
    return {"method": first["method"], "n": first["n"], "coverage": JACKKNIFE_COVERAGE,
            "finite_sample_valid": all(p["finite_sample_valid"] for p in per.values()),
            "guaranteed_coverage": first.get("guaranteed_coverage"),
            "reused_for_selection": not probe_kept, "per_target": per}  # fmt: skip


def _jackknife(sel: Selection, model, card) -> dict:
    """Install the probe's leave-one-out refits over train ∪ validation cases in `model`."""
    from ..data.volume_dataset import VolumeDataset
    from .probe import jackknife_fits, pooled_features

    ds = VolumeDataset(sel.store, sel.spec.channels, sel.size, keys=sel.train_keys + sel.val_keys)
    x = pooled_features(model, ds)
    y = labels_of(sel.store, [it.key for it in ds.items])
    t = (y - float(model.y_mean)) / float(model.y_std)
    fits = jackknife_fits(x, t)
    model.set_jackknife(fits["w"], fits["b"], fits["resid"])
    card.extra["head"] = {**card.extra.get("head", {}), "jackknife_n": len(t)}
    return jackknife_guarantee(len(t), JACKKNIFE_COVERAGE)
