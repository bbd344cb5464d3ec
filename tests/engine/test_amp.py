"""`train.amp`: what `auto` picks and why, that its timing probe leaves no trace, that a resumed
run keeps its checkpoint's precision, and that bf16 keeps the loss of a real backbone."""

import json
import time

import pytest
import torch

from brainfoundry.engine import OptimConfig, TrainConfig, Trainer, amp
from tests.engine.test_loop import Denoise, Volumes, losses

CPU = torch.device("cpu")


def sleeper(fp32_s: float, bf16_s: float):
    """A step whose fp32 and bf16 costs are known: the decision's inputs, made exact."""
    calls = []

    def step(dtype):
        calls.append(dtype)
        time.sleep(bf16_s if dtype == torch.bfloat16 else fp32_s)

    return step, calls


@pytest.fixture
def bf16_cpu(monkeypatch):
    # stands in for a CPU with native bf16, which the CI machine may lack
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(amp, "_MEMO", {})


def test_auto_keeps_bf16_only_where_it_measurably_pays(bf16_cpu):
    fast, _ = sleeper(0.03, 0.01)
    c = amp.resolve("auto", CPU, fast, key="fast")
    assert c.chosen == "bf16" and c.dtype == torch.bfloat16 and c.fp32_s > c.bf16_s
    assert "pays" in c.reason and "bf16 autocast" in c.line()
    slow, _ = sleeper(0.01, 0.03)
    c = amp.resolve("auto", CPU, slow, key="slow")
    assert c.chosen == "off" and c.dtype is None and "does not pay" in c.reason


def test_the_verdict_is_cached_per_key_across_processes(bf16_cpu, monkeypatch):
    step, calls = sleeper(0.03, 0.01)
    first = amp.resolve("auto", CPU, step, key="k")
    n = len(calls)
    assert n == 2 + 2 * amp.REPEATS  # one warm-up and REPEATS timings per precision
    monkeypatch.setattr(amp, "_MEMO", {})  # a new process: only the file is left
    again = amp.resolve("auto", CPU, step, key="k")
    assert len(calls) == n and again.chosen == first.chosen and "cached" in again.reason
    assert json.loads(amp.cache_file().read_text())["k"]["chosen"] == first.chosen


def test_explicit_settings_and_a_cpu_without_bf16_need_no_probe(monkeypatch):
    def never(dtype):
        raise AssertionError("no probe expected")

    assert amp.resolve("off", CPU, never).chosen == "off"
    assert amp.resolve("bf16", CPU, never).chosen == "bf16"
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: False)
    c = amp.resolve("auto", CPU, never)
    assert c.chosen == "off" and "no native bf16" in c.reason


def toy(tmp, amp_setting, crash_at=None, steps=8):
    torch.manual_seed(0)
    train = TrainConfig(steps=steps, batch_size=2, log_every=1, checkpoint_every=3,
                        progress=False, amp=amp_setting)  # fmt: skip
    optim = OptimConfig(lr=0.05, warmup_steps=2)
    return Trainer(Denoise(crash_at), Volumes(), train, optim, tmp).fit()


def test_the_probe_leaves_no_trace_and_the_choice_is_written(bf16_cpu, monkeypatch, tmp_path):
    monkeypatch.setattr(amp, "MIN_GAIN", 1e9)  # measured, then fp32 kept
    toy(tmp_path / "auto", "auto")
    toy(tmp_path / "off", "off")
    assert losses(tmp_path / "auto") == losses(tmp_path / "off")  # bit-identical curves
    saved = json.loads((tmp_path / "auto" / "amp.json").read_text())
    assert saved["requested"] == "auto" and saved["chosen"] == "off"
    assert saved["fp32_s"] > 0 and saved["bf16_s"] > 0


def test_a_resumed_run_keeps_its_checkpoints_precision(tmp_path):
    with pytest.raises(RuntimeError, match="simulated kill"):
        toy(tmp_path, "bf16", crash_at=5)
    state = json.loads((tmp_path / "checkpoints/step_00000003/state.json").read_text())
    assert state["amp"] == "bf16"
    toy(tmp_path, "bf16")
    saved = json.loads((tmp_path / "amp.json").read_text())
    assert saved["chosen"] == "bf16" and "checkpoint" in saved["reason"]


def test_bf16_keeps_the_loss_of_a_real_backbone_within_one_percent():
    """The issue's numerics rule on a fixed batch (resenc tiny, MAE, 32³ × 2)."""
    from brainfoundry.models.backbones import create_backbone
    from brainfoundry.ssl import create_objective

    torch.manual_seed(0)
    obj = create_objective("mae", create_backbone("resenc", 1, 1, size="tiny"), block_size=8)
    x = torch.randn(2, 1, 32, 32, 32)
    batch = {"image": x, "present": torch.ones(2, 1, dtype=torch.bool),
             "meta": {"seed": torch.arange(2)}}  # fmt: skip
    with torch.no_grad():
        fp32 = obj(batch)[0].item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = obj(batch)[0].item()
    assert abs(bf16 - fp32) / abs(fp32) < 0.01


def test_tiny_convolutions_leave_cpu_bf16_autocast():
    """resenc's Conv3d runs an input under 3 voxels along an axis in fp32 (the oneDNN fault,
    benchmarks/results/bf16_conv.md) and everything larger in bf16, with nn.Conv3d's keys."""
    from brainfoundry.models.backbones.resenc import Conv3d

    conv = Conv3d(4, 4, 3, padding=1)
    assert set(conv.state_dict()) == set(torch.nn.Conv3d(4, 4, 3).state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 4, 2, 8, 8)).dtype == torch.float32
        assert conv(torch.randn(1, 4, 3, 3, 3)).dtype == torch.bfloat16
    assert conv(torch.randn(1, 4, 2, 2, 2)).dtype == torch.float32  # no autocast: plain


class InfiniteGradient(Denoise):
    """A finite loss (0) whose gradient is infinite: sqrt(|w - w|) at 0."""

    def forward(self, batch):
        w = self.conv.weight.sum()
        loss = (w - w.detach()).abs().sqrt() + 0 * batch["image"].mean()
        return loss, {"loss": float(loss.detach())}


def test_a_non_finite_gradient_norm_stops_the_run_naming_the_step(tmp_path, monkeypatch, capsys):
    train = TrainConfig(steps=3, batch_size=2, progress=False, amp="off")
    trainer = Trainer(InfiniteGradient(), Volumes(), train, OptimConfig(), tmp_path)
    with pytest.raises(FloatingPointError, match="non-finite gradient norm at step 1"):
        trainer.fit()
    from brainfoundry import cli

    def diverge(**kwargs):
        raise FloatingPointError("non-finite gradient norm at step 1")

    cli._register()  # the commands, registered on the real app first
    monkeypatch.setattr(cli, "app", diverge)  # the CLI's handler, not a whole training run
    assert cli.main(["pretrain"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: training diverged: non-finite gradient norm at step 1"
    )


def test_adamw_is_fused_on_one_cpu_device():
    """The default AdamW is the fused kernel (the unfused CPU loop was a third of a primus:S
    step, benchmarks/results/step.md); SGD is unchanged."""
    from brainfoundry.engine.loop import build_optimizer

    opt = build_optimizer(torch.nn.Conv3d(1, 2, 3), OptimConfig())
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["fused"] is True
    assert isinstance(build_optimizer(torch.nn.Linear(2, 2), OptimConfig(optimizer="sgd")),
                      torch.optim.SGD)  # fmt: skip


def test_an_unwritable_cache_warns_and_the_verdict_still_holds(bf16_cpu, monkeypatch, capsys):
    monkeypatch.setenv("BRAINFOUNDRY_CACHE", "/proc/no-such-dir")
    step, calls = sleeper(0.03, 0.01)
    assert amp.resolve("auto", CPU, step, key="ro").chosen == "bf16"
    assert "not cached" in capsys.readouterr().err
    n = len(calls)
    assert amp.resolve("auto", CPU, step, key="ro").chosen == "bf16" and len(calls) == n
