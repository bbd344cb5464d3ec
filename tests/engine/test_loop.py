"""The training loop on a toy objective (a tiny real conv net): determinism, exact resume after a
crash mid-step, gradient accumulation, checkpoint format, schedule."""

import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from brainfoundry.engine import OptimConfig, TrainConfig, Trainer
from brainfoundry.engine.schedule import warmup_cosine
from brainfoundry.errors import ConfigError


class Volumes(Dataset):
    """Deterministic random 8³ volumes (stands in for a store; the loop only sees dicts)."""

    def __init__(self, n=16):
        self.n = n
        self.epoch = 0

    def set_epoch(self, e):
        self.epoch = e

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 * self.epoch + i)
        return {"image": torch.randn(1, 8, 8, 8, generator=g), "meta": {"seed": i}}


class Denoise(nn.Module):
    """Toy objective: predict 2·x + 1 from x with one conv."""

    def __init__(self, crash_at=None):
        super().__init__()
        self.conv = nn.Conv3d(1, 1, 3, padding=1)
        self.calls, self.crash_at = 0, crash_at

    def forward(self, batch):
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise RuntimeError("simulated kill")
        x = batch["image"]
        loss = ((self.conv(x) - (2 * x + 1)) ** 2).mean()
        return loss, {"loss": float(loss.detach())}


def run(tmp, *, steps=8, batch=2, accum=1, crash_at=None, resume=True, ema=None):
    torch.manual_seed(0)
    model = Denoise(crash_at)
    train = TrainConfig(
        steps=steps,
        batch_size=batch,
        log_every=1,
        checkpoint_every=3,
        progress=False,
        amp="off",  # the loop, not the precision (test_amp.py): no probe calls forward
    )
    optim = OptimConfig(lr=0.05, warmup_steps=2, accum_steps=accum, ema_decay=ema)
    return Trainer(model, Volumes(), train, optim, tmp).fit(resume=resume)


def losses(run_dir):
    return pd.read_csv(run_dir / "log.csv")["loss"].tolist()


def test_same_seed_same_curve_and_it_learns(tmp_path):
    run(tmp_path / "a")
    run(tmp_path / "b")
    la, lb = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert la == lb and len(la) == 8
    assert la[-1] < la[0]


def test_crash_mid_step_then_resume_gives_the_uninterrupted_curve(tmp_path):
    run(tmp_path / "full")
    with pytest.raises(RuntimeError, match="simulated kill"):
        run(tmp_path / "killed", crash_at=5)  # during step 5; the checkpoint of step 3 exists
    assert json.loads((tmp_path / "killed/checkpoints/step_00000003/state.json").read_text())
    out = run(tmp_path / "killed")
    assert out["step"] == 8
    assert losses(tmp_path / "killed") == pytest.approx(losses(tmp_path / "full"), abs=1e-7)


def test_accumulation_matches_a_bigger_batch(tmp_path):
    run(tmp_path / "big", batch=4)
    run(tmp_path / "acc", batch=2, accum=2)
    assert losses(tmp_path / "acc") == pytest.approx(losses(tmp_path / "big"), rel=1e-5)


def test_checkpoints_are_safetensors_and_json_and_pruned(tmp_path):
    run(tmp_path / "r", ema=0.9)
    ck = tmp_path / "r" / "checkpoints"
    assert (ck / "latest").read_text() == "step_00000008"
    assert sorted(p.name for p in ck.glob("step_*")) == ["step_00000006", "step_00000008"]
    files = {p.name for p in (ck / "step_00000008").iterdir()}
    assert files == {"weights.safetensors", "optim.safetensors", "ema.safetensors", "state.json"}
    w = load_file(str(ck / "step_00000008" / "weights.safetensors"))
    assert set(w) == {"conv.weight", "conv.bias"}
    assert not list(ck.glob(".*tmp*"))


def test_restart_ignores_old_checkpoints(tmp_path):
    run(tmp_path / "r", steps=4)
    out = run(tmp_path / "r", steps=4, resume=False)
    assert out["step"] == 4 and len(losses(tmp_path / "r")) == 4


def test_schedule_and_config_errors(tmp_path):
    assert warmup_cosine(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10, 0.1) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="samples per epoch"):
        Trainer(Denoise(), Volumes(n=3), TrainConfig(batch_size=4), OptimConfig(), tmp_path)


def test_param_groups_scale_the_learning_rate(tmp_path):
    torch.manual_seed(0)
    model = Denoise()
    bias0 = model.conv.bias.detach().clone()
    weight0 = model.conv.weight.detach().clone()
    groups = [{"params": [model.conv.weight], "lr_scale": 1.0},
              {"params": [model.conv.bias], "lr_scale": 0.0}]  # fmt: skip
    train = TrainConfig(steps=3, batch_size=2, progress=False, checkpoint_every=3, amp="off")
    t = Trainer(model, Volumes(), train, OptimConfig(lr=0.05, weight_decay=0.0), tmp_path,
                param_groups=groups)  # fmt: skip
    t.fit()
    assert torch.equal(model.conv.bias, bias0), "lr_scale 0 leaves the group untouched"
    assert not torch.equal(model.conv.weight, weight0)
    assert {g["lr_scale"] for g in t.optimizer.param_groups} == {0.0, 1.0}


class Pids(Volumes):
    """Each sample also says which process made it and for which epoch."""

    def __getitem__(self, i):
        import os

        return {**super().__getitem__(i), "pid": os.getpid(), "epoch": self.epoch}


class Record(Denoise):
    def __init__(self):
        super().__init__()
        self.pids, self.epochs = set(), []

    def forward(self, batch):
        self.pids |= set(batch["pid"].tolist())
        self.epochs.append(int(batch["epoch"][0]))
        return super().forward(batch)


def test_one_worker_process_serves_every_epoch_and_sees_its_epoch(tmp_path):
    """Few-shot epochs are a few steps long: workers must not respawn at each one."""
    model = Record()
    train = TrainConfig(steps=12, batch_size=4, num_workers=1, log_every=1, checkpoint_every=12,
                        progress=False, amp="off")  # fmt: skip
    Trainer(model, Pids(n=8), train, OptimConfig(lr=0.01, warmup_steps=0), tmp_path).fit()
    assert model.epochs == [e for e in range(6) for _ in range(2)]  # 2 steps per epoch
    assert len(model.pids) == 1  # one worker for all 6 epochs
