"""Pretraining wiring: store → patch dataset (+ augmentation) → backbone → objective → Trainer.

Writes RUN/config.yaml (resolved), RUN/model.safetensors + RUN/card.json (the backbone, at every
checkpoint, for fine-tuning and export), log.csv (with the `monitor` section's health/ and
probe/ columns, `ssl.monitor`), tb/ and resumable checkpoints/.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import torch

from .. import __version__
from .. import distributed as dist
from ..config import save_config
from ..data.preprocess import recipe
from ..engine import Trainer
from ..errors import ConfigError
from ..resume import archive_run, check_resume
from ..run_config import BackboneConfig, RunConfig, SamplingConfig
from .monitor import MonitorConfig, build_monitor


@dataclass
class DataConfig(SamplingConfig):
    foreground_prob: float = 0.9
    modalities: list[str] | None = None  # None: each scan is a sample (cross-modal: all of them)


@dataclass
class ModelConfig(BackboneConfig):
    in_channels: int = 1


@dataclass
class ObjectiveConfig:
    method: str = "mae"
    # masking, for the objectives that mask (mae, hybrid, cross-modal); None = their default
    block_size: int = 16
    mask_ratio: float | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)  # any other objective argument


@dataclass
class PretrainConfig(RunConfig):
    store: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    preset_kind: ClassVar[str] = "pretrain"


def build_dataset(cfg: PretrainConfig, store, n_views: int):
    from ..data.dataset import PatchDataset
    from ..transforms import augment_preset, build_augmentation

    aug = augment_preset(cfg.data.augment)
    aug.spatial = dataclasses.replace(
        aug.spatial, patch_size=cast(tuple[int, int, int], tuple(cfg.data.patch_size))
    )
    modalities = cfg.data.modalities
    if cfg.objective.method == "cross-modal" and modalities is None:
        modalities = sorted(store.manifest["modality"].unique())
    return PatchDataset(
        store,
        tuple(cfg.data.patch_size),
        modalities=modalities,
        samples_per_epoch=cfg.data.samples_per_epoch,
        foreground_prob=cfg.data.foreground_prob,
        margin=cfg.data.margin,
        transform=build_augmentation(aug),
        n_views=n_views,
        seed=cfg.train.seed,
    )


def pretrain(cfg: PretrainConfig, run_dir: str | Path, *, resume: bool = True, log=print) -> dict:
    """Train `cfg` into `run_dir`. `resume`: continue the run there, which must have been
    started with the same configuration (`brainfoundry.resume`); otherwise the old run is moved
    aside to RUN.old-N and this one starts afresh."""
    from ..data.store import Store
    from ..models.backbones import create_backbone
    from ..models.checkpoint import save_model
    from . import create_objective

    run_dir = Path(run_dir)
    if not cfg.store:
        raise ConfigError("no store given: pass --store STORE (a folder made by `prepare`)")
    store = Store(cfg.store)
    method = cfg.objective.method
    in_ch = 1 if method == "cross-modal" else cfg.model.in_channels
    torch.manual_seed(cfg.train.seed)  # model initialisation
    backbone = create_backbone(
        cfg.model.backbone,
        in_channels=in_ch,
        out_channels=in_ch,
        size=cfg.model.size,
        **cfg.model.kwargs,
    )
    objective = create_objective(method, backbone, **objective_kwargs(cfg.objective))
    monitor = build_monitor(cfg.monitor, cfg.train.log_every, store.plan, backbone)
    main = _open_run(cfg, run_dir, resume, log)  # after every check that needs no run folder
    dataset = build_dataset(cfg, store, objective.n_views)
    card = _card(cfg, backbone, store.plan)

    def export(model, step: int, ema: dict | None) -> None:
        bb = model.backbone
        if ema is not None:  # the EMA weights are the ones to fine-tune from
            bb = _with_state(
                bb, {k[len("backbone.") :]: v for k, v in ema.items() if k.startswith("backbone.")}
            )
        card.extra["step"] = step
        save_model(run_dir, bb, card)

    trainer = Trainer(objective, dataset, cfg.train, cfg.optim, run_dir, on_checkpoint=export,
                      step_metrics=monitor)  # fmt: skip
    monitor.check_batch(cfg.train.batch_size * trainer.world)  # before the run folder is written
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    return trainer.fit(resume=resume)


def _card(cfg: PretrainConfig, backbone, plan: dict):
    """The run's card: the backbone and the store recipe it was pretrained on."""
    from ..models.card import ModelCard

    in_ch = backbone.in_channels
    return ModelCard(
        arch=backbone.arch(),
        in_channels=in_ch,
        # a one-channel model is sequence-agnostic; what it saw is in data_summary
        modalities=list(cfg.data.modalities or []) if in_ch > 1 else [],
        spacing=list(plan["preprocess"]["spacing"]),
        normalization=recipe(plan["preprocess"]),
        patch_size=list(cfg.data.patch_size),
        ssl_method=cfg.objective.method,
        data_summary={
            k: plan.get(k) for k in ("n_scans", "n_sessions", "n_subjects", "modalities", "source")
        },
        version=__version__,
    )


def _open_run(cfg: PretrainConfig, run_dir: Path, resume: bool, log) -> bool:
    """Resume only a run started with `cfg`, or move the old run aside (restart). Returns
    whether this process is the one that writes the folder (one, under torchrun)."""
    main = dist.launch_rank() == 0
    if resume:
        check_resume(run_dir / "config.yaml", cfg)
    elif main and (kept := archive_run(run_dir)) is not None:
        log(f"--restart: the old run is kept as {kept}")
    return main


def objective_kwargs(oc: ObjectiveConfig) -> dict:
    """The objective's arguments: masking settings go only to objectives that mask."""
    import inspect

    from . import OBJECTIVES

    params = inspect.signature(OBJECTIVES.get(oc.method)).parameters
    kw: dict[str, Any] = {}
    if "block_size" in params:
        kw["block_size"] = oc.block_size
    if "mask_ratio" in params and oc.mask_ratio is not None:
        kw["mask_ratio"] = oc.mask_ratio
    return {**kw, **oc.kwargs}


def _with_state(module, sd: dict):
    import copy

    m = copy.deepcopy(module)
    m.load_state_dict(sd, strict=False)
    return m
