"""Experiment trackers chosen by `train.loggers`: TensorBoard by default; MLflow (local file
store) and W&B (offline) when named, each checked by reading what it wrote to disk after a few
training steps. No network: MLflow writes files, W&B runs with WANDB_MODE=offline."""

from __future__ import annotations

import json
import struct
import sys

import pytest

from brainfoundry.config import apply_overrides
from brainfoundry.engine import OptimConfig, TrainConfig, Trainer
from brainfoundry.engine.trackers import TRACKERS, flat_params
from brainfoundry.errors import ConfigError

from .test_loop import Denoise, Volumes


def train(tmp, loggers: list[str], steps: int = 4, **kw) -> dict:
    cfg = TrainConfig(steps=steps, batch_size=2, log_every=1, checkpoint_every=2, progress=False,
                      loggers=loggers, **kw)  # fmt: skip
    return Trainer(Denoise(), Volumes(), cfg, OptimConfig(lr=0.05, warmup_steps=1), tmp).fit()


def test_config_field_and_registry():
    assert TrainConfig().loggers == ["tensorboard"]  # the default: nothing optional is needed
    cfg = apply_overrides(TrainConfig(), ["loggers=[tensorboard,mlflow]"])
    assert cfg.loggers == ["tensorboard", "mlflow"]
    assert {"tensorboard", "mlflow", "wandb"} <= set(TRACKERS.list())
    assert flat_params({"a": {"b": 1, "c": [2]}, "d": "x"}) == {"a.b": 1, "a.c": [2], "d": "x"}


def test_unknown_or_missing_tracker_is_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown tracker 'comet'"):
        train(tmp_path / "a", ["comet"])
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'brainfoundry\[trackers\]'"):
        train(tmp_path / "b", ["wandb"])


def test_tensorboard_alone_writes_no_optional_tracker(tmp_path):
    train(tmp_path, ["tensorboard"], steps=2)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "wandb").exists()


def test_mlflow_file_store_holds_the_metrics_and_resume_continues_the_run(tmp_path):
    pytest.importorskip("mlflow")
    train(tmp_path, ["tensorboard", "mlflow"], steps=4)
    (run_dir,) = [p for p in (tmp_path / "mlruns").glob("*/*") if (p / "metrics").is_dir()]
    rows = [line.split() for line in (run_dir / "metrics" / "loss").read_text().splitlines()]
    assert [int(r[2]) for r in rows] == [1, 2, 3, 4]  # "timestamp value step" per logged step
    log = (tmp_path / "log.csv").read_text().splitlines()[1:]
    assert [float(r[1]) for r in rows] == pytest.approx([float(x.split(",")[1]) for x in log])
    assert (run_dir / "params" / "train.steps").read_text() == "4"
    assert (
        "FINISHED" in (run_dir / "meta.yaml").read_text()
        or "status: 3" in (run_dir / "meta.yaml").read_text()
    )
    ids = json.loads((tmp_path / "trackers.json").read_text())
    assert ids["mlflow"]["run_id"] == run_dir.name
    train(tmp_path, ["mlflow"], steps=6)  # resumed from step 4: the same MLflow run goes on
    steps = [int(r.split()[2]) for r in (run_dir / "metrics" / "loss").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def _wandb_records(path):
    """The records of a W&B offline `.wandb` file: a 7-byte header, then LevelDB-style log
    chunks (crc32 u32, length u16, type u8) in 32 KiB blocks; FULL=1, FIRST=2, MIDDLE=3, LAST=4."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, parts, records = 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # too little room for a chunk header: the block is padded
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        parts += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts)
            records.append(record)
            parts = b""
        elif kind == 0:
            break
    return records


def test_wandb_offline_run_folder_holds_the_metrics(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(tmp_path, ["wandb"], steps=3, experiment="bf-test")
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    history = []
    for r in _wandb_records(run_file):
        if r.WhichOneof("record_type") == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                            for i in r.history.item})  # fmt: skip
    assert [h["_step"] for h in history] == [1, 2, 3]
    log = (tmp_path / "log.csv").read_text().splitlines()[1:]
    assert [h["loss"] for h in history] == pytest.approx([float(x.split(",")[1]) for x in log])
    assert (
        run_file.stem.split("-", 1)[1]
        == json.loads((tmp_path / "trackers.json").read_text())["wandb"]["id"]
    )
