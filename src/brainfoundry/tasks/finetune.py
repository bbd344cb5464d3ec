"""Few-shot fine-tuning: task data → store (checkpoint's recipe) → per seed: split, model,
Trainer with validation at every checkpoint, keep the best → a self-contained seed folder.

OUT/store/            the fine-tuning data, prepared once and shared by the seeds
OUT/seed_S/           model.safetensors + card.json (best on validation), splits.json,
                      config.yaml, val_metrics.json, log.csv, checkpoints/ (resumable)
OUT/finetune.json     every seed's validation metrics, and the run's warnings (settings not
                      used, sessions whose label was dropped, brains centre-cropped)
The test set is never read here: `evaluate` prepares it separately. A seed folder resumes only
with the config it was started with (`brainfoundry.resume`); `--folds K` cross-validates
(`tasks/crossval.py`, reusing `prepare_run` and `finetune_seed`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from .. import __version__
from ..config import save_config
from ..data.preprocess import recipe
from ..engine.device import pick_device
from ..errors import ConfigError
from ..models.card import ModelCard
from ..resume import check_resume
from ..run_config import BackboneConfig, RunConfig, SamplingConfig
from .data import (
    case_table,
    case_targets,
    default_shots,
    dropped_labels,
    few_shot_split,
    prepare_errors,
    prepare_task_data,
    preprocess_config,
    write_splits,
)
from .heads import create_task_model
from .model_io import build_backbone, report_dict
from .output_range import output_range
from .selection import Selection, calibrate, train_and_select
from .sources import task_source
from .spec import get_task
from .strategies import StrategyConfig, describe, param_groups


@dataclass
class FinetuneData(SamplingConfig):
    """Inputs: `patch_size` is segmentation's training patch; case-level tasks see whole volumes."""

    spacing: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # scratch only
    normalization: str = "zscore"  # scratch only (preprocess.normalization; a suite sets it)
    bias_correct: Literal["off", "n4"] = "off"  # scratch only (preprocess.bias_correct)
    skull_strip: Literal["auto", "off", "deepbet"] = "auto"  # scratch only (preprocess.skull_strip)
    volume_shape: list[int] | None = None  # case-level input box; None: fits every brain
    augment: str = "light"
    margin: int = 4
    modality_dropout: float = 0.2  # chance a sample loses some present channels
    lesion_prob: float = 0.5  # segmentation: patches centred on a labelled voxel
    overlap: float = 0.5  # sliding-window overlap at validation


@dataclass
class FinetuneModel(BackboneConfig):
    """backbone/size/kwargs build the scratch network; a pretrained init brings its own."""

    # "shared": each sequence through one one-channel encoder, as pretrained (models/channelwise);
    # "stem": one encoder whose first convolution mixes the sequences
    channels: Literal["stem", "shared"] = "shared"
    # case-level heads: "meanmax" pools every stage by its mean and max; "attention" learns
    # where to look in the deepest stage (tasks/heads.AttentionPool; needs train.steps > 0)
    pool: Literal["meanmax", "attention"] = "meanmax"


@dataclass
class FinetuneConfig(RunConfig):
    task: str = ""
    init: str = "scratch"
    shots: int | None = None  # None: all but a validation fifth
    val_cases: int | None = None  # None: every fine-tuning case not drawn for training
    seeds: list[int] = field(default_factory=lambda: [0])
    folds: int | None = None  # K-fold cross-validation (tasks/crossval.py); None: no folds
    fold_seed: int = 0  # which subjects fall in which fold
    data: FinetuneData = field(default_factory=FinetuneData)
    model: FinetuneModel = field(default_factory=FinetuneModel)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)

    preset_kind: ClassVar[str] = "finetune"

    @classmethod
    def load(cls, preset, config, overrides: list[str]) -> FinetuneConfig:
        """Defaults ← preset ← user YAML ← the task spec's defaults ← `a.b=c` overrides."""
        cfg = super().load(preset, config, overrides)
        spec_defaults = get_task(cfg.task).defaults if cfg.task else []
        if spec_defaults:
            cfg = super().load(preset, config, [*spec_defaults, *overrides])
        return cfg


def finetune(
    cfg: FinetuneConfig, data: str | Path, out: str | Path, log=print, store_dir=None
) -> dict:
    """Fine-tune every seed; returns {seed: best validation metrics}.

    `store_dir` (default OUT/store) lets runs with one recipe share a prepared store."""
    if cfg.folds:
        raise ConfigError(
            f"folds={cfg.folds}: cross-validation runs through tasks.crossval.cross_validate "
            "(`brainfoundry finetune --folds K`)"
        )
    out = Path(out)
    spec, store, cases, warnings, _ = prepare_run(cfg, data, out, log, store_dir)
    results = {}
    for seed in cfg.seeds:
        results[int(seed)] = finetune_seed(cfg, spec, store, cases, out / f"seed_{seed}", seed, log)
    record = {"task": spec.name, "val": results, "warnings": warnings}
    (out / "finetune.json").write_text(json.dumps(record, indent=2))
    return results


def prepare_run(cfg: FinetuneConfig, data, out: Path, log=print, store_dir=None):
    """(task spec, prepared store, case table, warnings, task source) of a fine-tuning run:
    the data is prepared with the init checkpoint's recipe, and what it loses is said."""
    if not cfg.task:
        raise ConfigError("no task: pass --task NAME or a spec .yaml")
    spec = get_task(cfg.task)
    pick_device(cfg.train.device)  # a device this machine lacks is said before any work
    out.mkdir(parents=True, exist_ok=True)
    init_card = None
    if cfg.init != "scratch":
        init_card = ModelCard.load(Path(cfg.init) / "card.json")
    spacing = (init_card.spacing if init_card and init_card.spacing else None) or cfg.data.spacing
    norm = (
        init_card.normalization
        if init_card
        else {
            "normalization": cfg.data.normalization,
            "bias_correct": cfg.data.bias_correct,
            "skull_strip": cfg.data.skull_strip,
        }
    )
    warnings = _init_overrides(cfg, init_card, spacing, norm)
    for w in warnings:
        log(f"warning: {w}")
    src = task_source(data, spec, "finetune", log)
    pre = preprocess_config(spacing, norm)
    store = prepare_task_data(src.path, store_dir or out / "store", pre, src.found)
    cases = case_table(store, spec)
    log(f"{spec.name}: {len(cases)} labelled fine-tuning cases at {list(spacing)} mm")
    found = _data_warnings(cfg, spec, store, cases)
    for w in found:
        log(f"warning: {w}")
    warnings += found
    return spec, store, cases, warnings, src


def _init_overrides(cfg: FinetuneConfig, card: ModelCard | None, spacing, norm) -> list[str]:
    """Settings a pretrained init replaces with its own recipe, said out loud: the model only
    works on data prepared as it was pretrained."""
    if card is None:
        return []
    out = []
    if [float(v) for v in cfg.data.spacing] != [float(v) for v in spacing]:
        out.append(f"data.spacing {list(cfg.data.spacing)} is not used: --init {cfg.init} was "
                   f"pretrained at {list(spacing)} mm, and fine-tuning follows it")  # fmt: skip
    scheme = norm.get("normalization", norm.get("scheme"))
    if scheme is not None and cfg.data.normalization != scheme:
        out.append(f"data.normalization {cfg.data.normalization!r} is not used: --init "
                   f"{cfg.init} was pretrained on {scheme!r}-normalised data")  # fmt: skip
    kept = recipe(norm)
    for key in ("bias_correct", "skull_strip"):
        if getattr(cfg.data, key) != kept[key]:
            out.append(f"data.{key} {getattr(cfg.data, key)!r} is not used: --init "
                       f"{cfg.init} was pretrained with {key}={kept[key]!r}")  # fmt: skip
    return out


def _data_warnings(cfg: FinetuneConfig, spec, store, cases) -> list[str]:
    """What the data loses before training, said out loud: scans prepare could not read,
    sessions whose label map prepare could not use (a case fewer), brains that the
    case-level input box centre-crops, and a validation set smaller than asked."""
    from ..data.volume_dataset import crop_warnings

    out = prepare_errors(store) + dropped_labels(store, spec)
    if cfg.model.pool == "attention" and cfg.train.steps <= 0:
        out.append("model.pool=attention with train.steps=0: the attention pool is learned "
                   "only by gradient steps, so it stays the plain mean")  # fmt: skip
    if spec.type != "segmentation":
        out += crop_warnings(store, cases["key"], _case_box(cfg, store))
    shots = default_shots(len(cases)) if cfg.shots is None else cfg.shots
    left = len(cases) - shots
    if cfg.val_cases and 0 < left < cfg.val_cases:
        out.append(f"val_cases={cfg.val_cases} asked, but {len(cases)} cases less "
                   f"{shots} for training leave {left}: validating on {left}")  # fmt: skip
    return out


def _case_box(cfg: FinetuneConfig, store) -> tuple[int, ...]:
    """The whole-volume input box of case-level tasks (default: every stored brain fits)."""
    from ..data.volume_dataset import auto_shape

    return tuple(cfg.data.volume_shape or auto_shape(store))


def _augmentation(cfg: FinetuneConfig, size):
    from ..transforms import ChannelDropout, augment_preset, build_augmentation

    aug = augment_preset(cfg.data.augment)
    aug.spatial = dataclasses.replace(aug.spatial, patch_size=tuple(size))
    aug.channel_dropout = ChannelDropout(p=cfg.data.modality_dropout)
    return build_augmentation(aug)


def _dataset(cfg, spec, store, keys, seed):
    from ..data.dataset import PatchDataset
    from ..data.volume_dataset import VolumeDataset

    n = cfg.data.samples_per_epoch or max(len(keys), cfg.train.batch_size * cfg.optim.accum_steps)
    if spec.type == "segmentation":
        patch = tuple(cfg.data.patch_size)
        return PatchDataset(
            store.subset(keys), patch, modalities=spec.channels,
            samples_per_epoch=n, foreground_prob=1.0, lesion_prob=cfg.data.lesion_prob,
            margin=cfg.data.margin, with_seg=True, transform=_augmentation(cfg, patch), seed=seed,
        ), patch  # fmt: skip
    shape = _case_box(cfg, store)
    ds = VolumeDataset(
        store, spec.channels, shape, keys=keys, samples_per_epoch=n,
        transform=_augmentation(cfg, shape), seed=seed,
        targets=spec.label_columns if spec.multi_target else None,
    )  # fmt: skip
    return ds, shape


def finetune_seed(cfg, spec, store, cases, seed_dir: Path, seed: int, log=print) -> dict:
    """One seed: split → model (and probe) → card → train, keeping the best on validation →
    calibrate (regression). Returns the kept checkpoint's validation metrics."""
    if cfg.train.steps <= 0 and (spec.type == "segmentation" or cfg.strategy.head_init != "probe"):
        raise ConfigError(
            "train.steps=0 (a pure linear probe) needs a classification or regression task "
            "with strategy.head_init=probe"
        )
    run_cfg = seed_config(cfg, seed)
    check_resume(seed_dir / "config.yaml", run_cfg)  # a changed run is refused, not resumed
    seed_dir.mkdir(parents=True, exist_ok=True)
    splits = _split(cfg, spec, cases, seed_dir, seed)
    save_config(run_cfg, seed_dir / "config.yaml")
    model, backbone, init_card, head_kw, report = _model(cfg, spec, cases, splits, seed, log)
    dataset, size = _dataset(cfg, spec, store, splits["train"], seed)
    probe = _probe(cfg, spec, store, cases, splits, model, size, seed, log)
    groups = param_groups(model, cfg.strategy)  # before the card: it may freeze layers
    card = _card(cfg, spec, store, splits, backbone, model, init_card, size, seed)
    card.extra.update(head=head_kw, load_report=report_dict(report), probe=probe)
    if spec.head == "regression":  # what predictions are checked against (tasks.output_range)
        y = case_targets(cases, splits["train"], spec)
        card.extra["output_range"] = output_range(spec.range, spec.unit, y.tolist())
    sel = Selection(
        spec, store, splits["val"], size, cfg.data.overlap, seed_dir, card, splits["train"]
    )
    best = train_and_select(sel, model, dataset, run_cfg, groups, probe, seed, log)
    if spec.type == "regression":
        calibrate(sel, log, seed)
    return best


def seed_config(cfg: FinetuneConfig, seed: int) -> FinetuneConfig:
    """The resolved config one seed folder trains with, and saves (its config.yaml)."""
    return dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, seed=int(seed)), seeds=[int(seed)]
    )


def _split(cfg, spec, cases, seed_dir: Path, seed: int) -> dict:
    """This seed's train/val split, written once; a resumed folder must have the same one."""
    splits = few_shot_split(cases, cfg.shots, seed, stratify=spec.categorical, n_val=cfg.val_cases)
    old = seed_dir / "splits.json"
    if old.exists() and json.loads(old.read_text()) != splits:
        raise ConfigError(
            f"{old}: this seed folder was trained on another split (shots/seed changed); "
            "use a new output folder"
        )
    write_splits(old, splits)
    return splits


def _model(cfg, spec, cases, splits, seed: int, log):
    """(task model, its backbone, the init card, the head's arguments, the load report)."""
    backbone, init_card, report = build_backbone(
        cfg.init, spec, cfg.model, seed, cfg.model.channels
    )
    if report is not None:
        log(f"seed {seed}: init from {cfg.init}: {report}")
    head_kw: dict = {}
    y = case_targets(cases, splits["train"], spec)
    if spec.head == "regression":  # the head predicts in units of the training labels' spread
        head_kw = {"y_mean": float(y.mean()), "y_std": float(y.std(ddof=0)) or 1.0}
    if spec.head == "multitarget":  # the same, per target, over the cases that have it
        names = spec.label_columns
        head_kw = {"targets": names, "y_mean": _nan_stat(np.nanmean, y, names),
                   "y_std": [s or 1.0 for s in _nan_stat(np.nanstd, y, names)]}  # fmt: skip
    if spec.type == "multiclass":
        head_kw = {"n_classes": spec.n_classes}
    if cfg.model.pool != "meanmax":
        if spec.type == "segmentation":
            raise ConfigError(f"model.pool={cfg.model.pool} pools a case-level head; "
                              f"{spec.name} is a segmentation task (no pooling)")  # fmt: skip
        head_kw["pool"] = cfg.model.pool
    model = create_task_model(spec.head, backbone, **head_kw)
    return model, backbone, init_card, head_kw, report


def _nan_stat(fn, y: np.ndarray, names: list[str]) -> list[float]:
    """fn (nanmean, nanstd) of each target column; a target no training case has is an error."""
    empty = [t for t, col in zip(names, y.T) if np.isnan(col).all()]
    if empty:
        raise ConfigError(f"no training case has target {empty[0]}: nothing to learn it from")
    return [float(v) for v in fn(y, axis=0)]


def _probe(cfg, spec, store, cases, splits, model, size, seed: int, log) -> dict | None:
    """Case-level tasks with head_init=probe: fit the head in closed form on the features."""
    if spec.type == "segmentation" or cfg.strategy.head_init != "probe":
        return None
    from ..data.volume_dataset import VolumeDataset
    from .probe import probe_init

    plain = VolumeDataset(store, spec.channels, size, keys=splits["train"])
    y = case_targets(cases, [it.key for it in plain.items], spec)
    probe = probe_init(model, plain, y, spec.head)
    log(f"seed {seed}: linear-probe head {probe}")
    return probe


def _card(cfg, spec, store, splits, backbone, model, init_card, size, seed: int) -> ModelCard:
    """The seed's card: what the model reads (channels, spacing, normalisation) and how it was
    trained, so that predict and evaluate need nothing else."""
    pre = store.plan["preprocess"]
    card = ModelCard.for_model(
        backbone,
        modalities=spec.channels,
        spacing=list(pre["spacing"]),
        normalization=recipe(pre),
        patch_size=list(size),
        ssl_method=init_card.ssl_method if init_card else None,
        data_summary={"n_train": len(splits["train"]), "n_val": len(splits["val"])},
        version=__version__,
    )
    card.extra.update(
        task=spec.to_dict(), init=cfg.init, strategy=dataclasses.asdict(cfg.strategy),
        seed=int(seed), input_size=list(size), channels=cfg.model.channels, **describe(model),
    )  # fmt: skip
    return card
