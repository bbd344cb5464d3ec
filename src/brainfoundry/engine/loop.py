"""`Trainer`: the one training loop.

Deterministic by construction: the samples of optimizer step `s` are a fixed slice of a seeded
per-epoch permutation, every sample carries its own seed (augmentation, masks), and the state
at a checkpoint holds everything else. So a run resumed after a kill -9 continues with the same
results as an uninterrupted one, and N ranks with batch b follow the loss curve of one process
with batch N·b (rank r takes the r-th slice of each global micro-batch; DDP averages gradients).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset

from .. import distributed as dist
from ..errors import ConfigError
from . import amp as amp_choice
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import OptimConfig, TrainConfig
from .device import pick_device
from .ema import EMA
from .logger import RunLogger
from .schedule import warmup_cosine


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, groups: list[dict] | None = None
) -> torch.optim.Optimizer:
    """No weight decay on norms, biases and other 1-D parameters.

    `groups` ([{"params": [...], "lr_scale": float}], e.g. frozen layers left out or layer-wise
    decay) replaces "every trainable parameter at scale 1".
    """
    if groups is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr_scale": 1.0}]
    split = []
    for g in groups:
        decay = [p for p in g["params"] if p.ndim > 1]
        no_decay = [p for p in g["params"] if p.ndim <= 1]
        for ps, wd in ((decay, cfg.weight_decay), (no_decay, 0.0)):
            if ps:
                split.append(
                    {"params": ps, "weight_decay": wd, "lr_scale": float(g.get("lr_scale", 1.0))}
                )
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(split, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    # fused: one kernel over every tensor. On a CPU the default is a Python loop per tensor,
    # which was a third of a primus:S step (benchmarks/results/step.md)
    return torch.optim.AdamW(split, lr=cfg.lr, betas=cfg.betas, fused=_can_fuse(split))


def _can_fuse(groups: list[dict]) -> bool:
    """Fused AdamW needs floating-point parameters, all on one CPU or CUDA device."""
    params = [p for g in groups for p in g["params"]]
    devices = {p.device for p in params}
    return (
        len(devices) == 1
        and next(iter(devices)).type in ("cpu", "cuda")
        and all(p.is_floating_point() for p in params)
    )


def to_device(batch, device: torch.device):
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


class EpochIndexed(Dataset):
    """Sample i of epoch e at index e·N + i: the dataset sees its epoch (`set_epoch`, which
    seeds the augmentation) with every item, so one loader can run across epochs."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.n = len(dataset)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        epoch, i = divmod(int(index), self.n)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return self.dataset[i]


class Trainer:
    """Runs `model(batch) -> (loss, logs)` over `dataset` for `cfg.steps` optimizer steps.

    `step_metrics(model, batch, step) -> {name: value}`, when given, runs after every optimizer
    step on that step's last micro-batch (without gradients, under the step's autocast) and its
    values join the step's logs; a step that returns any is logged even off `log_every` (e.g.
    pretraining's health metrics and online probe, `ssl.monitor`). It runs on every rank.

    A model with a method `after_optimizer_step(step, total_steps)` has it called exactly once
    after each optimizer step (after the EMA update, before `step_metrics`), with the number of
    steps taken so far and `train.steps`, on every rank: the place for state that follows the
    weights rather than the gradients (an EMA teacher, centring statistics; `ssl.dino`).
    """

    def __init__(
        self,
        model: nn.Module,
        dataset,
        train: TrainConfig,
        optim: OptimConfig,
        run_dir: str | Path,
        *,
        collate: Callable | None = None,
        on_checkpoint: Callable[[nn.Module, int, dict | None], None] | None = None,
        param_groups: list[dict] | None = None,
        step_metrics: Callable[[nn.Module, dict, int], dict[str, float]] | None = None,
    ):
        self.train, self.optim_cfg = train, optim
        self.step_metrics = step_metrics
        self.run_dir = Path(run_dir)
        self.dataset = dataset
        self.collate = collate
        self.on_checkpoint = on_checkpoint
        self.device = pick_device(train.device)
        dist.init_from_env(self.device)
        self.world, self.rank = dist.world_size(), dist.rank()
        self.model = model.to(self.device)
        self.per_step = train.batch_size * optim.accum_steps * self.world  # global samples/step
        if len(dataset) < self.per_step:
            raise ConfigError(
                f"the dataset has {len(dataset)} samples per epoch but one step needs "
                f"{self.per_step}; raise samples_per_epoch or lower batch_size"
            )
        self.steps_per_epoch = len(dataset) // self.per_step
        self.optimizer = build_optimizer(self.model, optim, param_groups)
        self.ema = EMA(self.model, optim.ema_decay) if optim.ema_decay else None
        self.ddp = (
            torch.nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=True)
            if self.world > 1
            else self.model
        )
        self.amp: amp_choice.AmpChoice | None = None  # chosen at the first batch (`_choose_amp`)
        self._resumed_amp: str | None = None
        self.amp_dtype: torch.dtype | None = None
        self.scaler = torch.amp.GradScaler(enabled=False)
        self.step = 0

    # -- data ---------------------------------------------------------------------------------
    def _epoch_indices(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.train.seed, epoch]).permutation(len(self.dataset))

    def _plan(self, start_step: int):
        """This rank's micro-batches from `start_step` on, as global indices epoch·N + i."""
        b, accum, n = self.train.batch_size, self.optim_cfg.accum_steps, len(self.dataset)
        epoch, perm = -1, np.empty(0, dtype=np.int64)
        for step in range(start_step, self.train.steps):
            e, s = divmod(step, self.steps_per_epoch)
            if e != epoch:
                epoch, perm = e, self._epoch_indices(e)
            for m in range(accum):
                o = s * self.per_step + m * b * self.world + self.rank * b
                yield [epoch * n + int(i) for i in perm[o : o + b]]

    def _micro_batches(self, start_step: int):
        """Yield (step, micro, batch) from `start_step` on. One loader serves every epoch, so its
        worker processes start once per run, not once per (few-step, few-shot) epoch."""
        accum = self.optim_cfg.accum_steps
        loader = DataLoader(
            EpochIndexed(self.dataset),
            batch_sampler=self._plan(start_step),
            num_workers=self.train.num_workers,
            collate_fn=self.collate,
            pin_memory=self.device.type == "cuda",
        )
        for i, batch in enumerate(loader):
            s, m = divmod(i, accum)
            yield start_step + s, m, batch

    # -- state --------------------------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        o = self.optim_cfg
        return warmup_cosine(step, self.train.steps, o.warmup_steps, o.min_lr_ratio)

    def _set_lr(self, step: int) -> float:
        lr = self.optim_cfg.lr * self._lr_factor(step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        return lr

    def resume(self) -> bool:
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            return False
        weights, optim, ema, state = load_checkpoint(ckpt)
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(optim)
        if self.ema is not None and ema is not None:
            self.ema.load_state_dict(ema)
        self.step = int(state["step"])
        self._resumed_amp = state.get("amp")
        return True

    # -- precision ----------------------------------------------------------------------------
    def _choose_amp(self, batch: dict) -> None:
        """Settle `train.amp` once, on the first batch (`engine/amp.py`): a resumed run keeps
        its checkpoint's precision; `auto` on a CPU times the model on this batch. Printed and
        written to RUN/amp.json."""
        requested = self.train.amp
        if self._resumed_amp in amp_choice.DTYPES:
            choice = amp_choice.AmpChoice(
                requested, cast(str, self._resumed_amp), "as its checkpoint was trained"
            )
        elif requested == "auto" and self.world > 1 and self.device.type == "cpu":
            choice = amp_choice.AmpChoice(requested, "off", "no timing probe across CPU ranks")
        else:
            key = amp_choice.probe_key(self.device, self.model, tuple(batch["image"].shape))
            choice = amp_choice.resolve(requested, self.device, self._probe(batch), key)
        self.amp, self.amp_dtype = choice, choice.dtype
        self.scaler = torch.amp.GradScaler(enabled=choice.chosen == "fp16")
        if dist.is_main():
            print(choice.line(), flush=True)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            amp_choice.write_choice(self.run_dir, choice)

    def _probe(self, batch: dict) -> Callable[[torch.dtype | None], None]:
        """One forward + backward of the model on `batch` in a given precision that leaves no
        trace: weights, buffers, gradients and the random state are restored after it."""

        def step(dtype: torch.dtype | None) -> None:
            saved = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            rng = torch.get_rng_state()
            with torch.autocast(
                self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None
            ):
                loss, _ = self.model(batch)
            loss.backward()
            self.model.zero_grad(set_to_none=True)
            self.model.load_state_dict(saved)
            torch.set_rng_state(rng)

        return step

    def save(self, logs: dict | None) -> None:
        if dist.is_main():
            save_checkpoint(
                self.run_dir,
                self.step,
                self.model.state_dict(),
                self.optimizer.state_dict(),
                self.ema.state_dict() if self.ema else None,
                {"logs": logs or {}, "amp": self.amp.chosen if self.amp else None},
                keep=self.train.keep_checkpoints,
            )
            if self.on_checkpoint is not None:
                self.on_checkpoint(
                    self.model, self.step, self.ema.state_dict() if self.ema else None
                )
        dist.barrier()

    # -- loop ---------------------------------------------------------------------------------
    def _progress_bar(self, main: bool):
        from tqdm import tqdm

        return tqdm(
            total=self.train.steps,
            initial=self.step,
            unit="step",
            desc="train",
            disable=not (main and self.train.progress),
        )

    def _forward_backward(self, batch, step: int, micro: int) -> dict:
        """One micro-batch's loss, backpropagated at 1/accum_steps scale. DDP all-reduces the
        gradients only on a step's last micro-batch. Returns the model's logs."""
        accum = self.optim_cfg.accum_steps
        sync = micro == accum - 1 or self.world == 1
        ctx = contextlib.nullcontext() if sync else cast(DDP, self.ddp).no_sync()  # world > 1
        with ctx:
            with self._autocast():
                loss, logs = self.ddp(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}")
            self.scaler.scale(loss / accum).backward()
        return logs

    def _autocast(self):
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )

    def _optimizer_step(self) -> torch.Tensor:
        """Unscale, clip (when grad_clip is set), step and update the EMA. Returns the global
        gradient norm before clipping (measured with or without clipping)."""
        self.scaler.unscale_(self.optimizer)
        if self.optim_cfg.grad_clip:
            gnorm = torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), self.optim_cfg.grad_clip
            )
        else:
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            gnorm = torch.nn.utils.get_total_norm(grads)
        if not self.scaler.is_enabled() and not torch.isfinite(gnorm):
            # fp16's scaler skips such a step by design; anywhere else it is a fault to report
            hint = " under bf16 autocast; train.amp=off trains in fp32" if self.amp_dtype else ""
            raise FloatingPointError(f"non-finite gradient norm at step {self.step + 1}{hint}")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        return gnorm

    def _step_logs(
        self, acc: dict[str, float], lr: float, gnorm: torch.Tensor, seen: int, t0: float
    ) -> dict:
        """A step's logs: the accumulated ones averaged over ranks, plus lr, grad norm and
        throughput since the loop started."""
        logs = {k: float(dist.all_reduce_mean(torch.tensor(v))) for k, v in acc.items()}
        elapsed = max(time.perf_counter() - t0, 1e-9)
        logs.update(lr=lr, grad_norm=float(gnorm), samples_per_s=seen / elapsed)
        return logs

    def _extra_metrics(self, batch: dict) -> dict[str, float]:
        """`step_metrics` of the step just taken (none without it)."""
        if self.step_metrics is None:
            return {}
        with torch.no_grad(), self._autocast():
            return self.step_metrics(self.model, batch, self.step)

    def _report(self, logs: dict, bar, logger: RunLogger, extra: bool = False) -> None:
        """Progress bar every step; logs and checkpoints at their intervals and at the end;
        logs too at a step with `extra` metrics."""
        bar.update()
        bar.set_postfix(loss=f"{logs['loss']:.4f}", sps=f"{logs['samples_per_s']:.1f}")
        if extra or self.step % self.train.log_every == 0 or self.step == self.train.steps:
            logger.log(self.step, logs)
        if self.step % self.train.checkpoint_every == 0 or self.step == self.train.steps:
            self.save(logs)

    def fit(self, resume: bool = True) -> dict:
        """Train from the latest checkpoint (when `resume`) to `train.steps`. Returns the final
        step and its logs."""
        if resume:
            self.resume()
        main = dist.is_main()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        logger = RunLogger(self.run_dir, self.step, main, self.train, self.optim_cfg)
        bar = self._progress_bar(main)
        accum = self.optim_cfg.accum_steps
        acc: dict[str, float] = {}
        last_logs: dict = {}
        t0, seen = time.perf_counter(), 0
        self.model.train()
        for step, micro, batch in self._micro_batches(self.step):
            if micro == 0:
                lr = self._set_lr(step)
                self.optimizer.zero_grad(set_to_none=True)
            batch = to_device(batch, self.device)
            if self.amp is None:
                self._choose_amp(batch)
            logs = self._forward_backward(batch, step, micro)
            for k, v in logs.items():
                acc[k] = acc.get(k, 0.0) + v / accum
            seen += batch["image"].shape[0] * self.world
            if micro < accum - 1:
                continue
            gnorm = self._optimizer_step()
            self.step = step + 1
            if (after := getattr(self.model, "after_optimizer_step", None)) is not None:
                after(self.step, self.train.steps)
            logs = self._step_logs(acc, lr, gnorm, seen, t0)
            extra = self._extra_metrics(batch)
            logs.update(extra)
            acc = {}
            last_logs = logs
            self._report(logs, bar, logger, bool(extra))
        bar.close()
        logger.close()
        return {"step": self.step, **last_logs}
