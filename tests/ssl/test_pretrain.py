"""Pretraining for real: objectives × backbone families, the CLI on a real store, a SIGKILL
mid-run then resume, and 2-process DDP (gloo) against one process with the same global batch."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from brainfoundry.cli import main
from brainfoundry.data.prepare import PrepareConfig, prepare
from brainfoundry.data.preprocess import PreprocessConfig
from brainfoundry.models.backbones import create_backbone
from brainfoundry.ssl import OBJECTIVES, create_objective

METHODS = ["mae", "contrastive", "hybrid", "cross-modal"]


@pytest.fixture
def store(tmp_path, fomo60k):
    out = tmp_path / "store"
    prepare(
        fomo60k,
        out,
        PrepareConfig(preprocess=PreprocessConfig(spacing=(5.0, 5.0, 5.0))),
        progress=False,
    )
    return out


def _batch(channels=1, views=False, b=2, size=32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, channels, size, size, size, generator=g)
    batch = {
        "image": x,
        "present": torch.ones(b, channels, dtype=torch.bool),
        "meta": {"seed": torch.arange(b) + 5},
    }
    if views:
        batch["views"] = torch.stack([x, x.flip(-1)], 1)
    return batch


@pytest.mark.parametrize("family", ["resenc", "primus"])
@pytest.mark.parametrize("method", METHODS)
def test_every_objective_trains_every_family(family, method):
    torch.manual_seed(0)
    channels = 2 if method == "cross-modal" else 1
    bb = create_backbone(family, in_channels=1, out_channels=1, size="tiny")
    kw = {"block_size": 8} if method != "contrastive" else {}
    obj = create_objective(method, bb, **kw)
    batch = _batch(channels, views=method in ("contrastive", "hybrid"))
    if method == "cross-modal":
        batch["present"][1, 1] = False  # a session missing a sequence still trains
    loss, logs = obj(batch)
    assert torch.isfinite(loss) and logs["loss"] == pytest.approx(float(loss.detach()))
    loss.backward()
    grads = [p.grad for p in bb.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    again, _ = obj(batch)
    assert float(again.detach()) == pytest.approx(float(loss.detach()), rel=1e-5), "reproducible"


def test_objective_registry_and_bad_combinations():
    assert set(METHODS) <= set(OBJECTIVES.list())
    bb = create_backbone("resenc", in_channels=2, out_channels=2, size="tiny")
    with pytest.raises(ValueError, match="one-channel"):
        create_objective("cross-modal", bb)
    with pytest.raises(ValueError, match="two views"):
        create_objective("contrastive", bb)(_batch(2))


def _cli(store, run, *extra):
    return ["pretrain", "--store", str(store), "-o", str(run), "--preset", "cpu-tiny", *extra]


def test_pretrain_cli_writes_a_complete_run(store, tmp_path):
    run = tmp_path / "run"
    assert main(_cli(store, run, "train.progress=false")) == 0
    files = {p.name for p in run.iterdir()}
    assert {"model.safetensors", "card.json", "config.yaml", "log.csv", "checkpoints"} <= files
    card = json.loads((run / "card.json").read_text())
    assert card["ssl_method"] == "mae" and card["spacing"] == [5.0, 5.0, 5.0]
    assert card["arch"]["name"] == "resenc" and card["in_channels"] == 1
    log = pd.read_csv(run / "log.csv")
    assert list(log["step"]) == [1, 2, 3, 4, 5, 6] and log["loss"].notna().all()
    # a finished run resumes to "nothing left to do" rather than training again
    assert main(_cli(store, run, "train.progress=false")) == 0
    assert len(pd.read_csv(run / "log.csv")) == 6


def test_pretrain_cli_errors_are_one_line(store, tmp_path, capsys):
    assert main(_cli(store, tmp_path / "r", "--method", "simclr")) == 2
    assert "unknown objective 'simclr'" in capsys.readouterr().err
    assert main(["pretrain", "--store", str(tmp_path), "-o", str(tmp_path / "r")]) == 2
    assert "not a brainfoundry store" in capsys.readouterr().err
    assert main(_cli(store, tmp_path / "r", "--preset", "gpu-huge")) == 2
    err = capsys.readouterr().err
    assert "unknown pretrain preset 'gpu-huge'; known: cpu-small, cpu-tiny, gpu-base" in err


def _run_cli(args, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "brainfoundry", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_sigkill_then_resume_reproduces_the_uninterrupted_run(store, tmp_path):
    common = ["train.steps=10", "train.checkpoint_every=2", "train.progress=false"]
    full = _run_cli(_cli(store, tmp_path / "full", *common))
    assert full.wait(300) == 0, full.stdout.read().decode()
    killed = _run_cli(_cli(store, tmp_path / "killed", *common))
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.time() + 300
    while time.time() < deadline and not (
        latest.exists() and latest.read_text() >= "step_00000004"
    ):
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(60)
    assert killed.returncode == -signal.SIGKILL
    resumed = _run_cli(_cli(store, tmp_path / "killed", *common))
    assert resumed.wait(300) == 0, resumed.stdout.read().decode()
    a = pd.read_csv(tmp_path / "full" / "log.csv")["loss"]
    b = pd.read_csv(tmp_path / "killed" / "log.csv")["loss"]
    assert len(a) == len(b) == 10
    assert b.tolist() == pytest.approx(a.tolist(), rel=1e-5)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_match_one_process_with_the_same_global_batch(store, tmp_path):
    # amp off: CPU ranks train in fp32 (engine/amp.py), the one process must too
    common = ["train.steps=4", "train.progress=false", "data.augment=ssl", "train.amp=off"]
    one = _run_cli(_cli(store, tmp_path / "one", "train.batch_size=2", *common))
    assert one.wait(300) == 0, one.stdout.read().decode()
    port = _free_port()
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "brainfoundry",
            *_cli(store, tmp_path / "two", "train.batch_size=1", *common),
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    a = pd.read_csv(tmp_path / "one" / "log.csv")["loss"].tolist()
    b = pd.read_csv(tmp_path / "two" / "log.csv")["loss"].tolist()
    assert len(a) == len(b) == 4
    assert b == pytest.approx(a, rel=1e-4)


@pytest.mark.slow
def test_two_nodes_of_one_process_each_match_one_process(store, tmp_path):
    """The README's multi-node recipe on one machine: two torchrun agents (`--nnodes 2
    --nproc-per-node 1`, as `srun` starts one per node) meet at a c10d rendezvous on localhost
    and train as one DDP group (gloo), following one process with the same global batch."""
    common = ["train.steps=3", "train.progress=false", "data.augment=ssl", "train.amp=off"]
    one = _run_cli(_cli(store, tmp_path / "one", "train.batch_size=2", *common))
    assert one.wait(300) == 0, one.stdout.read().decode()
    rdzv = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}",
            "--rdzv-id", "two-nodes"]  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
           "--nproc-per-node", "1", *rdzv, "-m", "brainfoundry",
           *_cli(store, tmp_path / "two", "train.batch_size=1", *common)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(2)]  # fmt: skip
    for node in nodes:
        assert node.wait(300) == 0, node.stdout.read().decode()
    a = pd.read_csv(tmp_path / "one" / "log.csv")["loss"].tolist()
    b = pd.read_csv(tmp_path / "two" / "log.csv")["loss"].tolist()
    assert len(a) == len(b) == 3
    assert b == pytest.approx(a, rel=1e-4)
    assert json.loads((tmp_path / "two" / "card.json").read_text())["ssl_method"] == "mae"
