"""`finetune --folds K` from the CLI: subject-grouped, stratified folds, each model trained on
the other folds and scored on its own, mean ± CI over folds, a report, and a rerun that skips
finished folds. A pure linear probe (train.steps=0) keeps it cheap."""

import json
import shutil

import pandas as pd
import pytest

from brainfoundry.cli import main
from brainfoundry.errors import ConfigError
from brainfoundry.tasks.folds import assign_folds

CV = ["--task", "infarct", "--folds", "3", "--preset", "cpu-tiny", "train.steps=0"]


def _with_repeat_sessions(src, dst):
    """The task's fine-tuning folder, with a second session for two subjects: a subject whose
    sessions fell in two folds would be trained on and scored at once."""
    shutil.copytree(src, dst)
    for sub in ("sub_1", "sub_2"):
        for part in ("preprocessed", "labels"):
            shutil.copytree(dst / part / sub / "ses_1", dst / part / sub / "ses_2")
    return dst


def test_folds_are_grouped_scored_summarised_and_resumed(task_data, tmp_path, capsys):
    data = _with_repeat_sessions(task_data["infarct"] / "finetune", tmp_path / "ft")
    out = tmp_path / "cv"
    assert main(["finetune", "--data", str(data), "-o", str(out), *CV]) == 0
    cv = json.loads((out / "cv.json").read_text())
    assert cv["folds"] == 3 and len(cv["per_fold"]) == 3 and cv["n_cases"] == 10
    assert "Student-t" in cv["ci"]
    for name, m in cv["metrics"].items():
        assert {"mean", "lo", "hi", "sd", "n"} <= set(m) and m["mean"] is not None, name
        if m["n"] >= 2:
            assert m["lo"] <= m["mean"] <= m["hi"]
    preds = pd.read_csv(out / "cv_predictions.csv")
    assert sorted(preds["case"]) == sorted(json.loads((out / "folds.json").read_text())["fold_of"])
    assert (preds.groupby("subject")["fold"].nunique() == 1).all()  # no subject in two folds
    assert preds.groupby("subject").size()[["sub_1", "sub_2"]].tolist() == [2, 2]
    for k in range(3):
        held = set(preds.loc[preds["fold"] == k, "subject"])
        splits = json.loads((out / f"fold_{k}" / "seed_0" / "splits.json").read_text())
        assert held and not held & set(splits["train_cases"] + splits["val_cases"])
    assert "<img" in (out / "report.html").read_text()

    done = [out / f"fold_{k}" / "seed_0" / "cv_metrics.json" for k in range(3)]
    stamps = [p.stat().st_mtime_ns for p in done]
    capsys.readouterr()
    assert main(["finetune", "--data", str(data), "-o", str(out), *CV]) == 0
    assert capsys.readouterr().out.count("finished, skipped") == 3
    assert [p.stat().st_mtime_ns for p in done] == stamps
    assert json.loads((out / "cv.json").read_text())["metrics"] == cv["metrics"]

    assert main(["finetune", "--data", str(data), "-o", str(out), *CV, "optim.lr=0.01"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr: 0.001 → 0.01" in err and "fold_0" in err


def test_assign_folds_groups_subjects_and_balances_classes():
    cases = pd.DataFrame({
        "key": [f"k{i}" for i in range(12)],
        "case": ["a", "a", "b", "c", "c", "d", "e", "f", "g", "h", "i", "j"],
        "label": [1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0],
    })  # fmt: skip
    fold = assign_folds(cases, 3, seed=0, stratify=True)
    cases["fold"] = cases["key"].map(fold)
    assert (cases.groupby("case")["fold"].nunique() == 1).all()
    for k in range(3):
        assert set(cases.loc[cases["fold"] == k, "label"]) == {0, 1}
    assert assign_folds(cases, 3, seed=0, stratify=True) == fold  # seeded
    with pytest.raises(ConfigError, match="--folds 11"):
        assign_folds(cases, 11, seed=0, stratify=False)
    with pytest.raises(ConfigError, match="--folds 1"):
        assign_folds(cases, 1, seed=0, stratify=False)
