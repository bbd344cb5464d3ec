"""The FOMO26 linear-probe protocol and its fairness score, on synthetic embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from brainfoundry.errors import BrainFoundryError, ConfigError, InputError
from brainfoundry.evaluation.fairness import Binning, fairness, group_of, parse_bins
from brainfoundry.evaluation.linear_probe import (
    LEARNING_RATES,
    Protocol,
    run_probe,
    split,
    worst,
)
from brainfoundry.evaluation.metrics import auroc_ovr, f1_macro
from brainfoundry.evaluation.probe_inputs import Labels

FAST = Protocol(n_boot=200)


def separable(n: int = 120, d: int = 24, k: int = 3, seed: int = 0):
    """(ids, embeddings [n, d], labels [n]): k Gaussian clusters, linearly separable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = rng.normal(0, 3, (k, d))
    x = (centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32)
    return [f"s{i:03d}" for i in range(n)], x, y


def labels_of(ids, y) -> Labels:
    return Labels(list(ids), np.asarray(y), [str(c) for c in range(int(max(y)) + 1)])


def test_the_split_is_per_class_40_10_50_and_seeded():
    ids, _, y = separable(n=100, k=2)
    parts = split(ids, y, FAST)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [40, 10, 50]
    by = dict(zip(ids, y))
    for k in parts:  # stratified: both classes equally in every part
        assert sum(by[i] for i in parts[k]) * 2 == len(parts[k])
    assert set(parts["train"]) | set(parts["val"]) | set(parts["test"]) == set(ids)
    assert not set(parts["train"]) & set(parts["test"])
    assert split(ids, y, FAST) == parts and split(ids, y, Protocol(seed=1)) != parts
    with pytest.raises(BrainFoundryError, match="at least 3 per class"):
        split(ids[:5], np.array([0, 0, 0, 1, 1]), FAST)


def test_separable_embeddings_reach_a_high_auroc_and_rerun_identically():
    ids, x, y = separable()
    report, preds, parts = run_probe(Path("e"), ids, x, labels_of(ids, y), {}, FAST)
    assert len(LEARNING_RATES) == 13 and LEARNING_RATES[0] == 1e-5 and LEARNING_RATES[-1] == 0.1
    assert list(report["validation_auroc"]) == [f"{lr:g}" for lr in LEARNING_RATES]
    best = max(v for v in report["validation_auroc"].values() if v is not None)
    assert report["validation_auroc"][f"{report['chosen_lr']:g}"] == best
    auc = report["test"]["metrics"]["auroc_ovr"]
    assert auc["estimate"] > 0.9 and auc["lo"] <= auc["estimate"] <= auc["hi"]
    assert report["test"]["metrics"]["f1_macro"]["estimate"] > 0.8
    assert list(preds["case"]) == parts["test"] and not preds["missing"].any()
    again, preds2, _ = run_probe(Path("e"), ids, x, labels_of(ids, y), {}, FAST)
    assert again == report and preds2.equals(preds)


def test_a_missing_test_embedding_scores_worst():
    ids, x, y = separable()
    labels = labels_of(ids, y)
    full, preds_full, parts = run_probe(Path("e"), ids, x, labels, {}, FAST)
    gone = parts["test"][:4]
    keep = [i for i, c in enumerate(ids) if c not in gone]
    report, preds, _ = run_probe(Path("e"), [ids[i] for i in keep], x[keep], labels, {}, FAST)
    assert report["test_missing"] == sorted(gone) and report["n"]["test"] == len(parts["test"])
    k = 3
    cols = [f"prob_{j}" for j in range(k)]
    for _, r in preds[preds["missing"]].iterrows():
        p, pred = worst(int(r["label"]), k)
        assert r[cols].to_numpy(float).tolist() == p.tolist() and r["pred"] == pred
        assert r["prob_" + str(r["label"])] == 0.0 and r["pred"] == (r["label"] + 1) % k
    # the metrics are those of the table with the stand-ins, and no better than without them
    lab, probs = preds["label"].to_numpy(), preds[cols].to_numpy(float)
    est = report["test"]["metrics"]
    assert est["auroc_ovr"]["estimate"] == pytest.approx(auroc_ovr(lab, probs))
    onehot = np.eye(k)[preds["pred"].to_numpy()]
    assert est["f1_macro"]["estimate"] == pytest.approx(f1_macro(lab, onehot))
    assert est["auroc_ovr"]["estimate"] < full["test"]["metrics"]["auroc_ovr"]["estimate"]
    assert est["f1_macro"]["estimate"] < full["test"]["metrics"]["f1_macro"]["estimate"]
    # a training or validation case cannot be scored worst: it is an error naming it
    lost = parts["train"][0]
    rows = [i for i, c in enumerate(ids) if c != lost]
    with pytest.raises(InputError, match=f"no embedding for 1 training/validation case.*{lost}"):
        run_probe(Path("e"), [ids[i] for i in rows], x[rows], labels, {}, FAST)


def test_fairness_on_a_constructed_case_is_the_formula():
    # 8 cases, 2 classes; site A is ranked perfectly, site B half wrong
    label = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    p1 = np.array([0.1, 0.9, 0.2, 0.8, 0.6, 0.4, 0.3, 0.55])
    probs = np.stack([1 - p1, p1], 1)
    pred = probs.argmax(1)
    site = ["A", "A", "A", "A", "b", "b", "B", "B"]  # "b" and "B" are one group
    sex = ["f", "m", "m", "f", "f", "m", "m", ""]  # one case unknown
    by = {"site": group_of(site, "site", None), "sex": group_of(sex, "sex", None)}
    out = fairness(label, probs, pred, by)
    s = out["variables"]["site"]
    # B: positives 0.4, 0.55 against negatives 0.6, 0.3: 2 of 4 pairs right, AUROC 0.5; it
    # predicts [1, 0, 0, 1] for [0, 1, 0, 1]: F1 2/(2+1+1) = 0.5 for each class
    assert s["groups"]["a"] == {"n": 4, "auroc_ovr": 1.0, "f1_macro": 1.0}
    assert s["groups"]["b"] == {"n": 4, "auroc_ovr": 0.5, "f1_macro": 0.5}
    assert s["disparity"] == {"auroc_ovr": 0.5, "f1_macro": 0.5}
    assert s["score"] == {"auroc_ovr": 0.5, "f1_macro": 0.5}
    x = out["variables"]["sex"]
    assert x["n_unknown"] == 1 and x["groups"]["f"]["n"] == 3 and x["groups"]["m"]["n"] == 4
    want = {}
    for k in ("auroc_ovr", "f1_macro"):
        per_var = []
        for groups in (site, sex):
            vals = []
            for g in {v.lower() for v in groups if v}:
                m = np.array([bool(v) and v.lower() == g for v in groups])
                if k == "auroc_ovr":
                    vals.append(float(auroc_ovr(label[m], probs[m])))
                else:
                    vals.append(float(f1_macro(label[m], np.eye(2)[pred[m]])))
            per_var.append(1 - (max(vals) - min(vals)))
        want[k] = np.mean(per_var)
    assert out["score"] == pytest.approx(want)
    assert out["variables_used"] == {"auroc_ovr": ["site", "sex"], "f1_macro": ["site", "sex"]}


def test_a_group_of_one_class_has_no_auroc_and_is_left_out():
    label = np.array([0, 1, 0, 1, 1, 1])
    probs = np.stack([np.array([0.9, 0.2, 0.7, 0.4, 0.3, 0.1]), np.zeros(6)], 1)
    probs[:, 1] = 1 - probs[:, 0]
    out = fairness(label, probs, probs.argmax(1), {"v": ["x", "x", "x", "x", "y", "y"]})
    v = out["variables"]["v"]
    assert v["groups"]["y"]["auroc_ovr"] is None and v["disparity"]["auroc_ovr"] is None
    assert out["score"]["auroc_ovr"] is None and out["variables_used"]["auroc_ovr"] == []


def test_binning_and_groups():
    assert [Binning(10).label(v) for v in (60, 67.5, 70)] == ["60-70", "60-70", "70-80"]
    edges = Binning(None, (40, 60))
    assert [edges.label(v) for v in (40, 41, 60, 61)] == ["<=40", "40-60", "40-60", ">60"]
    assert parse_bins(["age=10", "bmi=20,25,30"]) == {
        "age": Binning(10.0), "bmi": Binning(None, (20.0, 25.0, 30.0))}  # fmt: skip
    for bad in ("age", "age=", "age=x", "=10", "age=0", "age=30,20"):
        with pytest.raises(ConfigError, match="--bin"):
            parse_bins([bad])
    assert group_of(["63", "", "71.2"], "age", Binning(10)) == ["60-70", None, "70-80"]
    with pytest.raises(ConfigError, match="'sixty' is not a number"):
        group_of(["63", "sixty"], "age", Binning(10))
    with pytest.raises(ConfigError, match="--bin age=10"):
        group_of([str(a) for a in range(40, 60)], "age", None)
    assert group_of([" F", "m", ""], "sex", None) == ["f", "m", None]
