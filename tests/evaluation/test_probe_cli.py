"""`brainfoundry probe` from the CLI: the files it writes, both embedding layouts, and the
mistakes it refuses in one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainfoundry.cli import main
from tests.evaluation.test_linear_probe import separable

NAMES = np.array(["ad", "cn", "mci"])


@pytest.fixture
def inputs(tmp_path):
    """(embeddings.parquet as embed --batch writes it, labels.csv with sex and age)."""
    ids, x, y = separable(n=90)
    rng = np.random.default_rng(1)
    table = pd.DataFrame(x, columns=[f"e{i}" for i in range(x.shape[1])])
    table.insert(0, "id", ids)
    emb = tmp_path / "emb"
    emb.mkdir()
    table.to_parquet(emb / "embeddings.parquet", index=False)
    labels = pd.DataFrame({"id": ids, "label": NAMES[y], "sex": rng.choice(["F", "M"], 90),
                           "age": rng.uniform(41, 89, 90).round(1)})  # fmt: skip
    labels.loc[3, "age"] = np.nan  # unknown: in no age group
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    return emb, path, table


def test_probe_writes_its_report_predictions_and_split(inputs, tmp_path, capsys):
    emb, labels, table = inputs
    out = tmp_path / "probe"
    args = ["probe", "--embeddings", str(emb), "--labels", str(labels), "-o", str(out),
            "--groups", "sex,age", "--bin", "age=10", "--n-boot", "200"]  # fmt: skip
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "test AUROC" in said and "fairness auroc_ovr" in said and str(out) in said
    rep = json.loads((out / "probe.json").read_text())
    assert rep["classes"] == ["ad", "cn", "mci"] and rep["embedding_dim"] == 24
    assert rep["n"] == {"train": 36, "val": 9, "test": 45, "test_missing": 0}
    assert rep["chosen_lr"] in rep["protocol"]["learning_rates"]
    assert len(rep["validation_auroc"]) == 13
    assert rep["test"]["metrics"]["auroc_ovr"]["estimate"] > 0.9
    fair = rep["fairness"]
    assert set(fair["variables"]) == {"sex", "age"} and set(fair["score"]) == {
        "auroc_ovr", "f1_macro"}  # fmt: skip
    assert set(fair["variables"]["sex"]["groups"]) == {"f", "m"}
    assert set(fair["variables"]["age"]["groups"]) <= {"40-50", "50-60", "60-70", "70-80", "80-90"}
    preds = pd.read_csv(out / "predictions.csv")
    assert list(preds.columns) == ["case", "label", "prob_0", "prob_1", "prob_2", "pred",
                                   "missing", "group:sex", "group:age"]  # fmt: skip
    assert np.allclose(preds[["prob_0", "prob_1", "prob_2"]].sum(axis=1), 1.0, atol=1e-5)
    splits = json.loads((out / "splits.json").read_text())
    assert sorted(preds["case"].astype(str)) == splits["test"]
    # the organisers' layout, a folder of <id>.npy, gives the same report
    npy = tmp_path / "npy"
    npy.mkdir()
    for _, r in table.iterrows():
        np.save(npy / f"{r['id']}.npy", r.iloc[1:].to_numpy(np.float32))
    assert main([*args[:2], str(npy), *args[3:5], "-o", str(tmp_path / "p2"), *args[7:]]) == 0
    assert json.loads((tmp_path / "p2" / "probe.json").read_text()) == rep


def test_bad_input_is_one_line(inputs, tmp_path, capsys):
    emb, labels, table = inputs
    out = ["-o", str(tmp_path / "o")]
    base = ["probe", "-e", str(emb), "-l", str(labels), *out]
    extra = table.iloc[[0]].copy()
    extra["id"] = "stranger"
    pd.concat([table, extra]).to_parquet(tmp_path / "more.parquet", index=False)
    wrong = tmp_path / "wrong.csv"
    pd.read_csv(labels).assign(label=lambda d: d["label"].where(d.index != 4, "dlb")).to_csv(
        wrong, index=False
    )
    cases = [
        (["probe", "-e", str(tmp_path / "more.parquet"), "-l", str(labels), *out],
         "1 embedding id(s) are not in"),
        (["probe", "-e", str(emb), "-l", str(wrong), *out, "--classes", "ad,cn,mci"],
         "row 6: label 'dlb' is not a class (classes: ad, cn, mci"),
        ([*base, "--groups", "sex", "--bin", "age=10"], "--bin age: not one of --groups"),
        ([*base, "--groups", "age"], "--bin age=10"),
        ([*base, "--groups", "sex", "--bin", "sex=10"], "is not a number, so it cannot be binned"),
        ([*base, "--groups", "site"], "has no column site"),
        (["probe", "-e", str(tmp_path / "none"), "-l", str(labels), *out], "not found"),
    ]  # fmt: skip
    for args, words in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
