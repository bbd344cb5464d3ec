"""Multiclass classification end to end: the spec, the metrics (against scikit-learn), the
probe's softmax calibration, and the real CLI from a CSV of real NIfTI files whose labels are
class names, through finetune, evaluate (metrics, report) and predict."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from brainfoundry.cli import main
from brainfoundry.errors import ConfigError
from brainfoundry.evaluation.metrics import accuracy, auroc_ovr, f1_macro
from brainfoundry.evaluation.report import summarize
from brainfoundry.tasks.probe import softmax_calibration
from brainfoundry.tasks.spec import TaskSpec

CLASSES = ["none", "small", "large"]


def _probs(rng, n, k, signal=1.5):
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)) + signal * np.eye(k)[y]
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return y, p


def test_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    for k in (3, 5):
        y, p = _probs(rng, 60, k)
        assert auroc_ovr(y, p) == pytest.approx(roc_auc_score(y, p, multi_class="ovr"), abs=1e-12)
        pred = p.argmax(1)
        assert f1_macro(y, p) == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-12)
        assert accuracy(y, p) == pytest.approx(accuracy_score(y, pred), abs=1e-12)


def test_metrics_score_bootstrap_resamples_at_once():
    """The batched form (resamples on the leading axis) equals one call per resample."""
    rng = np.random.default_rng(1)
    y, p = _probs(rng, 40, 3)
    idx = rng.integers(0, 40, (7, 40))
    for fn in (auroc_ovr, f1_macro, accuracy):
        batch = fn(y[idx], p[idx])
        assert np.allclose(batch, [fn(y[r], p[r]) for r in idx], equal_nan=True)


def test_summary_has_cis_and_class_counts():
    rng = np.random.default_rng(2)
    y, p = _probs(rng, 45, 3, signal=3.0)
    df = pd.DataFrame({"case": [f"c{i}" for i in range(45)], "label": y})
    for j in range(3):
        df[f"prob_{j}"] = p[:, j]
    s = summarize("multiclass", df, n_boot=200)
    assert s["n_per_class"] == np.bincount(y, minlength=3).tolist()
    m = s["metrics"]["auroc_ovr"]
    assert m["lo"] <= m["estimate"] <= m["hi"] and m["estimate"] > 0.9
    assert set(s["metrics"]) == {"auroc_ovr", "f1_macro", "accuracy"}


def test_softmax_calibration_follows_the_scores_and_the_class_shares():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], [10, 6, 4])
    r = np.eye(3)[y] * 2 - 1 + rng.normal(0, 0.3, (20, 3))
    k, c = softmax_calibration(r, y)
    p = np.exp(k * r + c) / np.exp(k * r + c).sum(1, keepdims=True)
    assert k > 0 and (p.argmax(1) == y).mean() > 0.9
    # scores that say nothing: the probabilities are the (smoothed) class shares
    k0, c0 = softmax_calibration(np.zeros((20, 3)), y)
    p0 = np.exp(c0) / np.exp(c0).sum()
    share = np.array([11 / 12, 7 / 8, 5 / 6]) * np.bincount(y) / 20
    assert p0.argmax() == 0 and np.allclose(p0, share / share.sum(), atol=0.05)


def test_spec_checks_its_classes():
    spec = TaskSpec("mc", "multiclass", ["t1"], classes=CLASSES, metrics=["auroc_ovr"])
    assert spec.n_outputs == 3 and spec.categorical
    assert spec.class_index("large") == 2 and spec.class_index(1.0) == 1
    assert spec.class_index(3.0) is None and spec.class_index(0.5) is None
    with pytest.raises(ConfigError, match="at least two distinct"):
        TaskSpec("mc", "multiclass", ["t1"], classes=["a", "a"], metrics=["accuracy"])
    with pytest.raises(ConfigError, match="not a classification task"):
        TaskSpec("b", "classification", ["t1"], classes=CLASSES, metrics=["auroc"])
    with pytest.raises(ConfigError, match="does not score a multiclass task"):
        TaskSpec("mc", "multiclass", ["t1"], classes=CLASSES, metrics=["auroc"])


def _blobs(root, n, seed):
    """n sessions of a 24³ T1 at 5 mm: class 0 no bright blob, 1 a small one, 2 a large one."""
    rng = np.random.default_rng(seed)
    rows = []
    g = np.stack(np.meshgrid(*[np.arange(24)] * 3, indexing="ij"), -1)
    brain = np.linalg.norm(g - 11.5, axis=-1) < 10
    for i in range(n):
        y = i % 3
        img = np.where(brain, 100 + rng.normal(0, 5, brain.shape), 0).astype(np.float32)
        if y:
            c = rng.integers(8, 16, 3)
            img[(np.linalg.norm(g - c, axis=-1) < (1.6 if y == 1 else 3.6)) & brain] += 80
        path = root / f"s{i}" / "t1.nii.gz"
        path.parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(img, np.diag([5.0, 5.0, 5.0, 1.0])), path)
        rows.append({"subject": f"s{i}", "t1": f"s{i}/t1.nii.gz", "label": CLASSES[y]})
    with open(root / "cases.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["subject", "t1", "label"])
        w.writeheader()
        w.writerows(rows)
    return root / "cases.csv"


def _spec(tmp_path, metrics: str):
    spec = tmp_path / "blobs.yaml"
    spec.write_text("name: blobs\ntype: multiclass\nmodalities: [t1]\n"
                    f"classes: [none, small, large]\nmetrics: [{metrics}]\n")  # fmt: skip
    return spec


@pytest.mark.slow
def test_multiclass_from_a_csv_of_class_names_learns(tmp_path, capsys):
    """Finetune (closed-form probe) on 24 cases, evaluate on 18 others: beats chance (1/3
    accuracy, 0.5 AUROC) by a clear margin; predict writes the class name and probabilities."""
    (tmp_path / "ft").mkdir()
    (tmp_path / "te").mkdir()
    ft, te = _blobs(tmp_path / "ft", 30, 0), _blobs(tmp_path / "te", 18, 1)
    spec = _spec(tmp_path, "auroc_ovr, f1_macro, accuracy")
    out = tmp_path / "run"
    argv = ["finetune", "--task", str(spec), "--data", str(ft), "-o", str(out), "--shots", "24"]
    assert main([*argv, "--preset", "cpu-tiny", "train.steps=0"]) == 0
    assert main(["evaluate", str(out), "--data", str(te), "--n-boot", "100"]) == 0
    m = json.loads((out / "seed_0" / "metrics.json").read_text())
    assert m["classes"] == CLASSES and m["n_per_class"] == [6, 6, 6]
    assert m["metrics"]["auroc_ovr"]["estimate"] > 0.8
    assert m["metrics"]["accuracy"]["estimate"] > 0.55
    preds = pd.read_csv(out / "seed_0" / "predictions.csv")
    assert np.allclose(preds[["prob_0", "prob_1", "prob_2"]].sum(axis=1), 1.0, atol=1e-5)
    assert "Confusion matrix" in (out / "seed_0" / "report.html").read_text()
    res = tmp_path / "pred" / "s0"
    assert main(["predict", "--model", str(out), "--t1", str(tmp_path / "te/s0/t1.nii.gz"),
                 "-o", str(res)]) == 0  # fmt: skip
    info = json.loads(res.with_suffix(".json").read_text())
    assert (tmp_path / "pred" / "s0.txt").read_text().strip() == info["value"]
    assert info["value"] in CLASSES
    assert sum(info["uncertainty"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_multiclass_trains_with_cross_entropy(tmp_path):
    """A few gradient steps after the probe run and keep a checkpoint (the CE path)."""
    (tmp_path / "ft").mkdir()
    ft = _blobs(tmp_path / "ft", 12, 2)
    spec = _spec(tmp_path, "accuracy")
    out = tmp_path / "run"
    argv = ["finetune", "--task", str(spec), "--data", str(ft), "-o", str(out), "--shots", "8"]
    assert main([*argv, "--preset", "cpu-tiny", "train.steps=4"]) == 0
    val = json.loads((out / "seed_0" / "val_metrics.json").read_text())
    assert "accuracy" in val["metrics"] and np.isfinite(val["metrics"]["loss"])


def test_a_label_that_is_no_class_is_one_line(tmp_path, capsys):
    (tmp_path / "ft").mkdir()
    ft = _blobs(tmp_path / "ft", 6, 3)
    ft.write_text(ft.read_text().replace(",large", ",huge", 1))
    spec = _spec(tmp_path, "accuracy")
    argv = ["finetune", "--task", str(spec), "--data", str(ft), "-o", str(tmp_path / "o")]
    assert main([*argv, "--preset", "cpu-tiny", "train.steps=0"]) == 2
    err = capsys.readouterr().err
    assert "column label: label 'huge' is not a number nor one of task blobs's classes" in err
