"""Typed settings of the training loop (round-trip to YAML through `brainfoundry.config`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class OptimConfig:
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3  # peak learning rate, for the global batch
    weight_decay: float = 0.05
    momentum: float = 0.99  # sgd (nesterov), as nnU-Net / nnssl
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 20
    min_lr_ratio: float = 0.01  # cosine floor, as a fraction of lr
    grad_clip: float | None = 1.0  # max global grad norm; None = off
    accum_steps: int = 1  # micro-batches per optimizer step
    ema_decay: float | None = None  # e.g. 0.999 keeps an EMA copy of the weights


@dataclass
class TrainConfig:
    steps: int = 200  # optimizer steps
    batch_size: int = 2  # per rank and micro-batch
    num_workers: int = 0
    seed: int = 0
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: engine/amp.py (measured on a CPU)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_every: int = 10
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    progress: bool = True
    # trackers beside log.csv: tensorboard, mlflow, wandb (engine/trackers.py); mlflow and
    # wandb are off unless named and need `pip install "brainfoundry[trackers]"`
    loggers: list[str] = field(default_factory=lambda: ["tensorboard"])
    experiment: str = "brainfoundry"  # the MLflow experiment / W&B project
    mlflow_uri: str | None = None  # default: RUN/mlruns, a local file store
