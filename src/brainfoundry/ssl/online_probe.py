"""The online probe: while pretraining runs, does the encoder already help a labelled task?

Every N steps the frozen backbone encodes every labelled session of a small task store (made by
`prepare --task`, with the pretraining store's spacing and normalisation) into the task heads'
pooled features (`tasks.heads`: every encoder stage mean- and max-pooled; a one-channel backbone
encodes each of the task's sequences apart, as fine-tuning's `model.channels=shared` does), and
fits the closed-form ridge probe of `tasks.probe.ridge_loo` (its penalty chosen by
leave-one-out error). The score needs no split: MAE of the leave-one-out predictions (in the
label's units) for a regression task; for a classification task the leave-pair-out AUROC
(`leave_pair_out_auroc`). Pooled leave-one-out outputs would rank the cases upside down: each
left-out case's fit has an intercept, the mean of the *other* labels, that anti-correlates with
its own, and so does the centring of the other cases' features; on random features (200 draws,
8-32 balanced cases) leave-one-out AUROC averaged 0.20-0.29 where leave-pair-out, a pair left
out together and so ranked by one fit, averaged 0.51-0.54 (the penalty is chosen once on all
cases: a little optimistic, cheap). A handful of cases makes a noisy score (8 cases: 15 pairs);
read its trend over the run. No weight changes and no global random draw, so training is
unchanged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data.preprocess import recipe
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..models.backbones import Backbone
    from .monitor import OnlineProbeConfig

TYPES = ("classification", "regression")


class OnlineProbe:
    """`probe() -> {"probe/auroc" | "probe/mae": value}`: `backbone`'s current (not EMA)
    weights on the store's cases. Everything is checked here, before training starts."""

    def __init__(self, cfg: OnlineProbeConfig, plan: dict, backbone: Backbone):
        from ..data.store import Store
        from ..data.volume_dataset import VolumeDataset, auto_shape
        from ..tasks.data import case_table, case_targets
        from ..tasks.spec import get_task

        if cfg.every <= 0:
            raise ConfigError(f"monitor.online_probe.every={cfg.every}: use a positive step count")
        if not cfg.task:
            raise ConfigError(
                "monitor.online_probe.store is set but monitor.online_probe.task is not: name "
                "the store's task (e.g. brainage or a spec .yaml)"
            )
        self.every = cfg.every
        self.spec = get_task(cfg.task)
        if self.spec.head not in TYPES:
            raise ConfigError(
                f"monitor.online_probe.task {self.spec.name}: the online probe scores "
                f"{' or '.join(TYPES)} tasks, not {self.spec.head}"
            )
        store = Store(cfg.store)
        check_recipe(store.plan, plan, cfg.store)
        cases = case_table(store, self.spec)
        shape = auto_shape(store, math.lcm(16, backbone.min_input_multiple))
        self.dataset = VolumeDataset(store, self.spec.channels, shape, keys=list(cases["key"]))
        self.y = case_targets(cases, [it.key for it in self.dataset.items], self.spec)
        check_labels(self.y, self.spec.head, cfg.store)
        self.backbone = backbone
        self.model = features_model(backbone, self.spec)

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        from ..tasks.probe import ridge_loo

        bb = self.backbone
        was = bb.training
        bb.eval()
        try:
            x = features(self.model, self.dataset, next(bb.parameters()).device)
        finally:
            bb.train(was)
        if self.spec.head == "classification":
            fit = ridge_loo(x, 2 * self.y - 1)
            return {"probe/auroc": leave_pair_out_auroc(hat_matrix(x, fit["alpha"]), self.y)}
        fit = ridge_loo(x, self.y)
        return {"probe/mae": float(np.mean(np.abs(fit["loo"] - self.y)))}


def features_model(backbone: Backbone, spec) -> torch.nn.Module:
    """A feature extractor sharing `backbone`'s weights: the task heads' pooling (its linear
    head, unused, is made under a forked RNG so the run's random stream is untouched)."""
    from ..models.channelwise import Channelwise
    from ..tasks.heads import create_task_model

    n = len(spec.channels)
    if backbone.in_channels not in (1, n):
        raise ConfigError(
            f"monitor.online_probe: the backbone reads {backbone.in_channels} channels, task "
            f"{spec.name} has {n}: pretrain one channel, or as many as the task has"
        )
    wrapped = Channelwise(backbone, n) if backbone.in_channels != n else backbone
    with torch.random.fork_rng(devices=[]):
        return create_task_model("classification", wrapped)


def hat_matrix(x: np.ndarray, alpha: float) -> np.ndarray:
    """H [n, n] of the ridge probe at penalty `alpha` (fitted values = H y, intercept included):
    the fit is linear in y, so column k is `ridge_loo`'s fit to the k-th unit vector."""
    from ..tasks.probe import ridge_loo

    n = len(x)
    cols = []
    for k in range(n):
        fit = ridge_loo(x, np.eye(n)[k], alphas=[alpha])
        cols.append(x @ fit["w"] + fit["b"])
    return np.stack(cols, 1)


def leave_pair_out_auroc(h: np.ndarray, y: np.ndarray) -> float:
    """AUROC by leave-pair-out cross-validation (Airola et al. 2011): every positive-negative
    pair is left out together and ranked by the fit on the other cases, exactly, from the hat
    matrix: the left-out pair S gets (I - H_SS)^-1 (ŷ_S - H_SS t_S), t the ±1 labels."""
    t = 2 * np.asarray(y, float) - 1
    fitted = h @ t
    i, j = (g.ravel() for g in np.meshgrid(np.flatnonzero(t > 0), np.flatnonzero(t < 0)))
    a, b, c, d = 1 - h[i, i], -h[i, j], -h[j, i], 1 - h[j, j]
    ri = fitted[i] - h[i, i] * t[i] - h[i, j] * t[j]
    rj = fitted[j] - h[j, i] * t[i] - h[j, j] * t[j]
    det = a * d - b * c
    pi, pj = (d * ri - b * rj) / det, (a * rj - c * ri) / det
    return float(np.mean((pi > pj) + 0.5 * (pi == pj)))


@torch.no_grad()
def features(model, dataset, device: torch.device) -> np.ndarray:
    """The task heads' pooled features [n, F] of every session of `dataset`, one at a time on
    `device` (`tasks.probe.pooled_features` is its CPU-only counterpart for fine-tuning)."""
    rows = []
    for i in range(len(dataset.items)):
        s = dataset[i]
        f = model.features(s["image"][None].to(device), s["present"][None].to(device))
        rows.append(f[0].double().cpu().numpy())
    return np.stack(rows)


def check_recipe(probe_plan: dict, plan: dict, where: str) -> None:
    """The probe store must be prepared as the pretraining store was (spacing, normalisation),
    else its features describe data the encoder never sees."""
    a, b = probe_plan["preprocess"], plan["preprocess"]
    a, b = {"spacing": a.get("spacing"), **recipe(a)}, {"spacing": b.get("spacing"), **recipe(b)}
    for key in a:
        if a.get(key) != b.get(key):
            raise ConfigError(
                f"{where}: monitor.online_probe.store has {key} {a.get(key)}, the pretraining "
                f"store {b.get(key)}; prepare it with the same recipe"
            )


def check_labels(y: np.ndarray, head: str, where: str) -> None:
    """Enough labelled cases for a leave-one-out score: 4, and both classes."""
    if len(y) < 4:
        raise ConfigError(
            f"{where}: the online probe needs at least 4 labelled sessions, this store has {len(y)}"
        )
    if head == "classification" and len(set(y.tolist())) < 2:
        raise ConfigError(
            f"{where}: every labelled session has the same class; the online probe's AUROC "
            "needs both"
        )
