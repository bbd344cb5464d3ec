"""What pretraining logs beside the loss, so a run shows early whether it is learning anything.

Every `monitor.health_every` optimizer steps (default: every logged step), on that step's last
micro-batch, without gradients and in eval mode (no dropout or drop-path draw, so training is
unchanged): the collapse statistics of `ssl.health` on the objective's pooled encoder features
of the first view (`Objective.health_embeddings`: the deepest stage, global-average-pooled, the
same quantity for every objective), and for two-view objectives (contrastive, hybrid,
cross-modal) alignment and uniformity of the two views' projections, the space their InfoNCE
compares. Under DDP the embeddings are gathered from every rank first, so the numbers are those
of the global micro-batch. The gradient norm is the loop's own `grad_norm` column.

Every `monitor.online_probe.every` steps, when `monitor.online_probe.store` is set: the frozen
encoder's closed-form probe on a small labelled store (`ssl.online_probe`), on rank 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from .. import distributed as dist
from ..errors import ConfigError
from .health import embedding_health, pair_health

if TYPE_CHECKING:
    from ..models.backbones import Backbone
    from .base import Objective
    from .online_probe import OnlineProbe


@dataclass
class OnlineProbeConfig:
    store: str = ""  # a store made by `prepare --task` (labelled sessions); "" = no probe
    task: str = ""  # its task: a built-in name or a spec .yaml (classification or regression)
    every: int = 100  # optimizer steps between probes


@dataclass
class MonitorConfig:
    health_every: int | None = None  # steps between health metrics; None: train.log_every; 0: off
    online_probe: OnlineProbeConfig = field(default_factory=OnlineProbeConfig)


@torch.no_grad()
def batch_health(objective: Objective, batch: dict) -> dict[str, float]:
    """`ssl.health`'s statistics of this batch's embeddings (see the module docstring)."""
    was = objective.training
    objective.eval()
    try:
        h, pair = objective.health_embeddings(batch)
    finally:
        objective.train(was)
    out = embedding_health(dist.gather_with_grad(h.float()))
    if pair is not None:
        za, zb = (dist.gather_with_grad(z.float()) for z in pair)
        out.update(pair_health(za, zb))
    return out


class Monitor:
    """The pretraining Trainer's `step_metrics`: health and online-probe metrics when due."""

    def __init__(self, health_every: int, probe: OnlineProbe | None = None):
        if health_every < 0:
            raise ConfigError(f"monitor.health_every={health_every}: use 0 (off) or a step count")
        self.health_every = health_every
        self.probe = probe

    def check_batch(self, samples: int) -> None:
        """Refuse, before training, a micro-batch too small for statistics across samples."""
        if self.health_every and samples < 2:
            raise ConfigError(
                f"monitor.health_every={self.health_every}: the health metrics compare the "
                f"samples of a micro-batch and this one has {samples} (train.batch_size × "
                "ranks); raise train.batch_size or set monitor.health_every=0"
            )

    def __call__(self, model: nn.Module, batch: dict, step: int) -> dict[str, float]:
        objective = cast("Objective", model)
        out: dict[str, float] = {}
        if self.health_every and step % self.health_every == 0:
            out.update(batch_health(objective, batch))
        if self.probe is not None and step % self.probe.every == 0 and dist.is_main():
            out.update(self.probe())
        return out


def build_monitor(cfg: MonitorConfig, log_every: int, plan: dict, backbone: Backbone) -> Monitor:
    """The monitor of a run's `monitor` section; `plan`: the pretraining store's plan, which
    the probe store must share (spacing, normalisation); `backbone`: the one pretrained."""
    every = log_every if cfg.health_every is None else cfg.health_every
    probe = None
    if cfg.online_probe.store:
        from .online_probe import OnlineProbe

        probe = OnlineProbe(cfg.online_probe, plan, backbone)
    return Monitor(every, probe)
