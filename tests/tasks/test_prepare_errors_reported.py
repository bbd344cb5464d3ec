"""A scan prepare cannot read is not silently missing from fine-tuning: a session with no
readable scan is one case fewer and the run names its files in its log and finetune.json; a
session missing one required scan is an error that says why it is missing."""

from __future__ import annotations

import json
import shutil

import pytest

from brainfoundry.errors import InputError
from brainfoundry.tasks.finetune import FinetuneConfig, finetune


def _copy(task_data, tmp_path):
    data = tmp_path / "finetune"
    shutil.copytree(task_data["brainage"] / "finetune", data)
    return data, sorted(data.glob("preprocessed/*/ses_1"))[0]


def _spoil(path) -> None:
    path.chmod(0o644)
    path.write_bytes(b"not a nifti file")  # the copy, never the shared fixture


def test_a_session_missing_a_scan_says_prepare_failed_on_it(tmp_path, task_data):
    data, ses = _copy(task_data, tmp_path)
    _spoil(ses / "t2.nii.gz")
    cfg = FinetuneConfig.load("cpu-tiny", None, ["task=brainage", "shots=4", "seeds=[0]",
                                                 "train.steps=0", "val_cases=2"])  # fmt: skip
    with pytest.raises(InputError, match=r"session lacks t2 .*prepare failed on .*t2\.nii\.gz"):
        finetune(cfg, data, tmp_path / "out", log=lambda _: None)


def test_an_unreadable_session_is_named_in_the_runs_warnings(tmp_path, task_data):
    data, ses = _copy(task_data, tmp_path)
    for f in ses.glob("*.nii.gz"):
        _spoil(f)
    bad = ses / "t2.nii.gz"
    cfg = FinetuneConfig.load("cpu-tiny", None, ["task=brainage", "shots=4", "seeds=[0]",
                                                 "train.steps=0", "val_cases=2"])  # fmt: skip
    logs: list[str] = []
    finetune(cfg, data, tmp_path / "out", log=logs.append)
    record = json.loads((tmp_path / "out" / "finetune.json").read_text())
    said = [w for w in record["warnings"] if str(bad) in w and "not prepared" in w]
    assert len(said) == 1 and any(said[0] in line for line in logs)
    n_cases = next(line for line in logs if "labelled fine-tuning cases" in line)
    assert n_cases.startswith("brainage: 9 labelled")  # 10 sessions, one unreadable


def test_a_validation_set_smaller_than_asked_is_a_warning(tmp_path, task_data):
    """10 cases less 7 shots leave 3: val_cases=5 cannot be met, and the run says so."""
    cfg = FinetuneConfig.load("cpu-tiny", None, ["task=brainage", "shots=7", "seeds=[0]",
                                                 "train.steps=0", "val_cases=5"])  # fmt: skip
    logs: list[str] = []
    finetune(cfg, task_data["brainage"] / "finetune", tmp_path / "out", log=logs.append)
    record = json.loads((tmp_path / "out" / "finetune.json").read_text())
    said = [w for w in record["warnings"] if "val_cases=5 asked" in w]
    assert said == ["val_cases=5 asked, but 10 cases less 7 for training leave 3: validating on 3"]
    assert any(said[0] in line for line in logs)
    splits = json.loads((tmp_path / "out" / "seed_0" / "splits.json").read_text())
    assert len(splits["val"]) == 3
