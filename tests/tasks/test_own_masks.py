"""Segmentation on one's own data: `evaluate` and the held-out folds of `finetune --folds K`
score against the masks of the CSV manifest's `seg` column, as the task source read and checked
them, not a second reading of the file by other rules. Real NIfTI (a synthetic meningioma task
at 6 mm) through the real CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from brainfoundry.cli import main
from brainfoundry.tasks.sources import reference_masks, task_source
from brainfoundry.tasks.spec import get_task
from tests.tasks.own_data import sessions, write_manifest

TINY = ["--preset", "cpu-tiny", "train.steps=2", "train.checkpoint_every=2"]


def _graded(part, dest, name):
    """A manifest of `part` with masks and a text `label` column (a grade the segmentation task
    does not read, which a task-agnostic reading of the CSV would refuse as no number)."""
    grade = {sub: f"grade {'I' * (1 + i % 2)}" for i, (sub, _, _) in enumerate(sessions(part))}
    return write_manifest(part, dest, name, label=grade)


def test_reference_masks_are_those_the_source_read(task_data, tmp_path):
    data, spec, quiet = task_data["meningioma"], get_task("meningioma"), lambda _: None
    path = _graded(data / "test", tmp_path, "test.csv")
    masks = reference_masks(task_source(path, spec, "test", quiet))
    assert masks == {(s, "ses_1"): str(tmp_path / "scans" / s / "seg.nii.gz")
                     for s, _, _ in sessions(data / "test")}  # fmt: skip
    folder = reference_masks(task_source(data, spec, "test", quiet))
    assert folder[("sub_7", "ses_1")] == str(data / "test/labels/sub_7/ses_1/seg.nii.gz")


@pytest.mark.slow
def test_evaluate_scores_masks_from_a_test_csv(task_data, tmp_path):
    data, own, out = task_data["meningioma"], tmp_path / "own", tmp_path / "run"
    own.mkdir()
    ft = _graded(data / "finetune", own, "finetune.csv")
    te = _graded(data / "test", own, "test.csv")
    argv = ["finetune", "--task", "meningioma", "--data", str(ft), "-o", str(out), *TINY]
    assert main(argv) == 0
    assert main(["evaluate", str(out), "--data", str(te), "--n-boot", "20"]) == 0
    preds = pd.read_csv(out / "seed_0" / "predictions.csv")
    assert sorted(preds["case"]) == sorted(s for s, _, _ in sessions(data / "test"))
    assert preds["dice"].between(0, 1).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_cases"] == 4 and metrics["metrics"]["dice"]["mean"] is not None


@pytest.mark.slow
def test_cross_validation_from_a_csv_scores_each_fold(task_data, tmp_path):
    own, out = tmp_path / "own", tmp_path / "cv"
    own.mkdir()
    path = _graded(task_data["meningioma"] / "finetune", own, "all.csv")
    argv = ["finetune", "--task", "meningioma", "--data", str(path), "--folds", "2"]
    assert main([*argv, "-o", str(out), *TINY]) == 0
    cv = json.loads((out / "cv.json").read_text())
    assert len(cv["per_fold"]) == 2
    for fold in cv["per_fold"]:
        assert 0 <= fold["metrics"]["dice"] <= 1, fold
    preds = pd.read_csv(out / "cv_predictions.csv")
    assert len(preds) == 6 and preds["dice"].between(0, 1).all()
