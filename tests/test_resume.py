"""Resume safety: which fields differ (dotted, old → new), which never block, and `--restart`
keeping every old run under a new name."""

import pytest

from brainfoundry.config import save_config
from brainfoundry.errors import ConfigError
from brainfoundry.resume import IGNORED, archive_run, check_resume, config_changes
from brainfoundry.ssl.pretrain import PretrainConfig


def test_changes_are_dotted_old_to_new_and_ignore_display_fields():
    old = {"optim": {"lr": 0.001}, "train": {"progress": True, "steps": 8}, "model": {"kw": {}}}
    new = {"optim": {"lr": 0.01}, "train": {"progress": False, "steps": 8},
           "model": {"kw": {"depth": 2}}}  # fmt: skip
    assert config_changes(old, new) == ["optim.lr: 0.001 → 0.01", "model.kw.depth: (absent) → 2"]
    assert {"train.progress", "train.log_every", "train.num_workers"} <= IGNORED


def test_check_resume_reads_the_saved_config(tmp_path):
    cfg = PretrainConfig.load("cpu-tiny", None, ["store=s"])
    check_resume(tmp_path / "config.yaml", cfg)  # nothing saved yet: a fresh run
    save_config(cfg, tmp_path / "config.yaml")
    check_resume(tmp_path / "config.yaml", cfg)
    same = PretrainConfig.load("cpu-tiny", None, ["store=s", "train.log_every=7"])
    check_resume(tmp_path / "config.yaml", same)
    other = PretrainConfig.load("cpu-tiny", None, ["store=s", "optim.lr=0.5", "train.steps=9"])
    with pytest.raises(ConfigError) as e:
        check_resume(tmp_path / "config.yaml", other)
    assert "optim.lr: 0.001 → 0.5" in str(e.value) and "train.steps: " in str(e.value)
    assert "log_every" not in str(e.value) and "--restart" in str(e.value)


def test_archive_run_keeps_every_old_run(tmp_path):
    run = tmp_path / "run"
    assert archive_run(run) is None  # nothing there
    run.mkdir()
    assert archive_run(run) is None  # nothing worth keeping
    for i in (1, 2):
        (run / "a.txt").write_text(str(i))
        assert archive_run(run) == tmp_path / f"run.old-{i}" and not run.exists()
        run.mkdir()
    assert (tmp_path / "run.old-1" / "a.txt").read_text() == "1"
    assert (tmp_path / "run.old-2" / "a.txt").read_text() == "2"
