"""Pretraining resumes only with the configuration it started with; `--restart` starts afresh
and keeps the old run beside the new one."""

import pandas as pd

from brainfoundry.cli import main
from brainfoundry.data.prepare import PrepareConfig, prepare
from brainfoundry.data.preprocess import PreprocessConfig


def test_changed_config_is_refused_and_restart_keeps_the_old_run(fomo60k, tmp_path, capsys):
    store, run = tmp_path / "store", tmp_path / "run"
    pre = PrepareConfig(preprocess=PreprocessConfig(spacing=(5.0, 5.0, 5.0)))
    prepare(fomo60k, store, pre, progress=False)
    cli = ["pretrain", "--store", str(store), "-o", str(run), "--preset", "cpu-tiny",
           "train.steps=2", "train.checkpoint_every=1"]  # fmt: skip
    assert main([*cli, "train.progress=false"]) == 0
    # what only shows progress or logs never blocks a resume
    assert main([*cli, "train.progress=true", "train.log_every=5"]) == 0
    first = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main([*cli, "optim.lr=0.01"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optim.lr: 0.001 → 0.01" in err and "--restart" in err
    assert (run / "config.yaml").read_text() == first  # the refused run wrote nothing
    assert main([*cli, "optim.lr=0.01", "--restart"]) == 0
    old = tmp_path / "run.old-1"
    assert (old / "config.yaml").read_text() == first and (old / "model.safetensors").is_file()
    assert "lr: 0.01" in (run / "config.yaml").read_text()
    assert list(pd.read_csv(run / "log.csv")["step"]) == [1, 2]
    assert "kept as" in capsys.readouterr().out
