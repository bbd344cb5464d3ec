"""Multi-target regression: the Gaussian NLL that skips missing targets, the head, and the real
CLI on generated brain profiles (age and tissue volumes), where one model must learn every
target better than the training mean, with per-target jackknife+ intervals."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch

from brainfoundry.cli import main
from brainfoundry.models.backbones import create_backbone
from brainfoundry.tasks.heads import MultiTargetModel, gaussian_nll

KEYS = ["age", "gm_ml", "wm_ml", "csf_ml", "wmh_ml"]


def test_nll_leaves_missing_targets_out():
    mean = torch.zeros(3, 2, requires_grad=True)
    log_var = torch.zeros(3, 2)
    y = torch.tensor([[1.0, float("nan")], [2.0, 0.0], [float("nan"), float("nan")]])
    loss = gaussian_nll(mean, log_var, y)
    assert loss.item() == pytest.approx(0.5 * (1 + 4 + 0) / 3)
    loss.backward()
    assert mean.grad is not None
    assert mean.grad[0, 1] == 0 and (mean.grad[2] == 0).all() and mean.grad[0, 0] != 0


def test_head_names_its_outputs_and_trains_on_partial_labels():
    torch.manual_seed(0)
    bb = create_backbone("resenc", in_channels=2, out_channels=1, size="tiny")
    model = MultiTargetModel(bb, targets=["a", "b"], y_mean=[50.0, 600.0], y_std=[10.0, 50.0])
    batch = {"image": torch.randn(2, 2, 32, 32, 32), "present": torch.ones(2, 2, dtype=torch.bool),
             "label": torch.tensor([[55.0, float("nan")], [45.0, 650.0]])}  # fmt: skip
    loss, logs = model(batch)
    assert torch.isfinite(loss) and set(logs) == {"loss", "mae:a", "mae:b"}
    out = model.predict(batch["image"], batch["present"])
    assert set(out) == {f"{p}:{t}" for p in ("pred", "sigma", "lo", "hi") for t in "ab"}
    assert (out["lo:b"] < out["pred:b"]).all() and (out["pred:b"] < out["hi:b"]).all()


@pytest.mark.slow
def test_one_model_learns_every_tissue_volume(tmp_path):
    """Generated brain profiles, no clinical shift, 24 shots + 6 validation, 20 held-out cases,
    a random encoder and the closed-form probe: each tissue volume's MAE beats the training
    mean's by a clear margin, and the per-target jackknife+ intervals cover."""
    data = tmp_path / "bp"
    args = ["synth", "task", "brain-profile", "-o", str(data), "--n", "30", "--n-test", "20"]
    assert main([*args, "--resolution", "5", "--shift", "0", "--seed", "5", "--no-qc"]) == 0
    out = tmp_path / "run"
    ft = ["finetune", "--task", "brain-profile", "--data", str(data), "-o", str(out)]
    assert main([*ft, "--preset", "cpu-tiny", "train.steps=0", "--shots", "24"]) == 0
    assert main(["evaluate", str(out), "--data", str(data), "--n-boot", "100"]) == 0
    m = json.loads((out / "seed_0" / "metrics.json").read_text())["metrics"]
    preds = pd.read_csv(out / "seed_0" / "predictions.csv")
    train = json.loads((data / "dataset.json").read_text())["cases"]
    for t in ("gm_ml", "wm_ml", "csf_ml"):
        mean = np.mean([c["targets"][t] for c in train if c["split"] == "finetune"])
        base = float(np.mean(np.abs(preds[f"label:{t}"] - mean)))
        assert m[f"mae:{t}"]["estimate"] < 0.6 * base, t
        assert m[f"interval_coverage:{t}"]["estimate"] >= 0.75, t
    assert "Predicted vs true: csf_ml" in (out / "seed_0" / "report.html").read_text()


def test_missing_targets_train_by_gradient(tmp_path, capsys):
    """A CSV whose second target is missing for some sessions: a few gradient steps run and
    validation scores both targets on the cases that have them."""
    data = tmp_path / "bp"
    args = ["synth", "task", "brain-profile", "-o", str(data), "--n", "8", "--n-test", "1"]
    assert main([*args, "--resolution", "6", "--no-qc"]) == 0
    rows = []
    for i, d in enumerate(sorted((data / "finetune" / "labels").glob("sub_*/ses_1"))):
        lab = json.loads((d / "label.json").read_text())
        scans = data / "finetune" / "preprocessed" / d.parent.name / "ses_1"
        rows.append({"subject": d.parent.name, "t1": str(scans / "t1.nii.gz"),
                     "t2": str(scans / "t2.nii.gz"), "age": lab["age"],
                     "csf": "" if i % 3 == 0 else lab["csf_ml"]})  # fmt: skip
    with open(tmp_path / "m.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    spec = tmp_path / "two.yaml"
    spec.write_text("name: two\ntype: regression\nmodalities: [t1, t2]\n"
                    "label_columns: [age, csf]\nmetrics: [mae]\n")  # fmt: skip
    out = tmp_path / "o"
    argv = ["finetune", "--task", str(spec), "--data", str(tmp_path / "m.csv"), "-o", str(out)]
    assert main([*argv, "--preset", "cpu-tiny", "train.steps=4", "--shots", "5"]) == 0
    val = json.loads((out / "seed_0" / "val_metrics.json").read_text())
    assert np.isfinite(val["metrics"]["loss"]) and val["metrics"]["mae:csf"] is not None
    log = (out / "seed_0" / "log.csv").read_text()
    assert "mae:csf" in log.splitlines()[0]


def test_cross_validation_scores_every_target(tmp_path):
    """`finetune --folds` on several targets: each fold's held-out cases are scored per target,
    and cv.json holds every target's metrics over folds and pooled."""
    data = tmp_path / "bp"
    args = ["synth", "task", "brain-profile", "-o", str(data), "--n", "9", "--n-test", "1"]
    assert main([*args, "--resolution", "6", "--no-qc"]) == 0
    out = tmp_path / "cv"
    argv = ["finetune", "--task", "brain-profile", "--data", str(data), "-o", str(out)]
    assert main([*argv, "--folds", "3", "--preset", "cpu-tiny", "train.steps=0"]) == 0
    cv = json.loads((out / "cv.json").read_text())
    assert {f"mae:{t}" for t in KEYS} <= set(cv["metrics"]) and len(cv["per_fold"]) == 3
    pooled = pd.read_csv(out / "cv_predictions.csv")
    assert len(pooled) == 9 and {f"label:{t}" for t in KEYS} <= set(pooled.columns)
