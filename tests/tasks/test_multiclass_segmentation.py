"""Segmentation with several classes end to end, through the real CLI on real NIfTI files: a
task spec naming its classes (background first), one softmax over them, the label map's
classes checked, per-class and averaged Dice/NSD/HD95, and `predict` writing a label map."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainfoundry.cli import main
from brainfoundry.evaluation.segmentation import multiclass_case_metrics, segmentation_case_metrics

CLASSES = ["background", "bright", "dark"]
SPEC = ("name: blobs3\ntype: segmentation\nmodalities: [t1]\nlabel: seg.nii.gz\n"
        "classes: [background, bright, dark]\nmetrics: [dice, nsd, hd95]\n")  # fmt: skip


def _cases(root, n, seed):
    """n sessions of a 32³ T1 at 4 mm with one bright (class 1) and one dark (class 2) blob."""
    rng = np.random.default_rng(seed)
    g = np.stack(np.meshgrid(*[np.arange(32)] * 3, indexing="ij"), -1)
    brain = np.linalg.norm(g - 15.5, axis=-1) < 14
    rows = []
    for i in range(n):
        img = np.where(brain, 100 + rng.normal(0, 4, brain.shape), 0).astype(np.float32)
        seg = np.zeros(brain.shape, np.uint8)
        for cls, delta in ((1, 60.0), (2, -60.0)):
            c = rng.integers(9, 23, 3)
            blob = (np.linalg.norm(g - c, axis=-1) < rng.uniform(2.5, 4.0)) & brain & (seg == 0)
            img[blob] += delta
            seg[blob] = cls
        d = root / f"s{i}"
        d.mkdir(parents=True)
        aff = np.diag([4.0, 4.0, 4.0, 1.0])
        nib.save(nib.Nifti1Image(img, aff), d / "t1.nii.gz")
        nib.save(nib.Nifti1Image(seg, aff), d / "seg.nii.gz")
        rows.append({"subject": f"s{i}", "t1": f"s{i}/t1.nii.gz", "seg": f"s{i}/seg.nii.gz"})
    with open(root / "cases.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["subject", "t1", "seg"])
        w.writeheader()
        w.writerows(rows)
    return root / "cases.csv"


def test_per_class_metrics_average_the_foreground_classes():
    truth = np.zeros((12, 12, 12), np.uint8)
    truth[2:5, 2:5, 2:5], truth[7:10, 7:10, 7:10] = 1, 2
    pred = truth.copy()
    pred[7:10, 7:10, 7:10] = 0  # class 2 missed entirely
    m = multiclass_case_metrics(pred, truth, CLASSES, (1.0, 1.0, 1.0))
    assert m["dice:bright"] == 1.0 and m["dice:dark"] == 0.0 and m["dice"] == 0.5
    two = multiclass_case_metrics(pred > 0, truth > 0, ["background", "lesion"])
    assert two == segmentation_case_metrics(pred > 0, truth > 0)  # binary: the plain metrics


@pytest.mark.slow
def test_three_class_segmentation_from_a_csv(tmp_path):
    (tmp_path / "ft").mkdir()
    (tmp_path / "te").mkdir()
    ft, te = _cases(tmp_path / "ft", 10, 0), _cases(tmp_path / "te", 4, 1)
    spec = tmp_path / "blobs3.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    argv = ["finetune", "--task", str(spec), "--data", str(ft), "-o", str(out), "--shots", "8"]
    # constant lr: the second class appears after ~150 steps (measured), later than the first
    steps = ["train.steps=200", "train.checkpoint_every=100", "optim.lr=0.005",
             "optim.min_lr_ratio=1.0"]  # fmt: skip
    assert main([*argv, "--preset", "cpu-tiny", *steps, "data.spacing=[4,4,4]"]) == 0
    assert main(["evaluate", str(out), "--data", str(te), "--n-boot", "50"]) == 0
    m = json.loads((out / "seed_0" / "metrics.json").read_text())
    assert set(m["per_class"]) == {"bright", "dark"}
    preds = pd.read_csv(out / "seed_0" / "predictions.csv")
    assert np.allclose(preds["dice"], (preds["dice:bright"] + preds["dice:dark"]) / 2)
    assert min(c["dice"] for c in m["per_class"].values()) > 0.5  # it learned both classes
    res = tmp_path / "pred" / "s0"
    assert main(["predict", "--model", str(out), "--t1", str(tmp_path / "te/s0/t1.nii.gz"),
                 "-o", str(res)]) == 0  # fmt: skip
    mask = np.asarray(nib.load(tmp_path / "pred" / "s0.nii.gz").dataobj)
    assert mask.shape == (32, 32, 32) and set(np.unique(mask)) <= {0, 1, 2}
    info = json.loads((tmp_path / "pred" / "s0.json").read_text())
    assert set(info["uncertainty"]["volume_ml"]) == {"bright", "dark"}


def test_a_label_outside_the_classes_is_one_line(tmp_path, capsys):
    (tmp_path / "ft").mkdir()
    ft = _cases(tmp_path / "ft", 4, 2)
    seg = tmp_path / "ft" / "s1" / "seg.nii.gz"
    img = nib.load(seg)
    arr = np.asarray(img.dataobj).copy()
    arr[0, 0, 0] = 3
    nib.save(nib.Nifti1Image(arr, img.affine), seg)
    spec = tmp_path / "blobs3.yaml"
    spec.write_text(SPEC)
    argv = ["finetune", "--task", str(spec), "--data", str(ft), "-o", str(tmp_path / "o")]
    assert main([*argv, "--preset", "cpu-tiny", "train.steps=2", "data.spacing=[4,4,4]"]) == 2
    assert "outside the 3 classes (0..2)" in capsys.readouterr().err
