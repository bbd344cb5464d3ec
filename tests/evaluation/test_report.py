"""summarize() gives JSON-able metrics with CIs; write_report() a valid self-contained HTML page."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from brainfoundry.evaluation.metrics import auroc, interval_coverage, mae
from brainfoundry.evaluation.report import check_predictions, summarize, write_report
from brainfoundry.evaluation.segmentation import segmentation_case_metrics

VOID = {"img", "meta", "br", "hr", "link", "input"}


class _Checker(HTMLParser):
    """Tag balance and section ids: enough to call the page well formed."""

    def __init__(self):
        super().__init__()
        self.stack, self.ids, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
        else:
            self.stack.pop()


def _check_page(path, sections):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    parser = _Checker()
    parser.feed(text)
    assert not parser.errors and not parser.stack
    assert set(sections) <= set(parser.ids), parser.ids
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    for data in pngs:
        raw = base64.b64decode(data)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        h, w = imread(io.BytesIO(raw)).shape[:2]
        assert h > 100 and w > 100
    assert 'src="' not in re.sub(r'src="data:image/png;base64,[^"]+"', "", text)  # nothing external
    return text, len(pngs)


def _classification(m=80, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, m)
    prob = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(0, 1, m))))
    return pd.DataFrame({"case": [f"sub_{i}" for i in range(m)], "label": y, "prob": prob})


def _regression(m=100, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 90, m)
    pred = age + rng.normal(0, 6, m)
    return pd.DataFrame(
        {
            "case": [f"sub_{i}" for i in range(m)],
            "label": age,
            "pred": pred,
            "lo": pred - 11.8,
            "hi": pred + 11.8,
        }
    )


def _segmentation(m=6):
    shape = (24, 24, 16)
    grid = np.indices(shape)
    rng = np.random.default_rng(0)
    volumes, rows = {}, []
    for i in range(m):
        c = rng.uniform(8, 14, 3)
        truth = sum(((g - cc) / 4) ** 2 for g, cc in zip(grid, c)) <= 1
        pred = np.roll(truth, i, axis=0)  # worse with i
        image = rng.normal(0, 0.1, shape) + truth
        volumes[f"sub_{i}"] = (image, truth, pred)
        rows.append({"case": f"sub_{i}", **segmentation_case_metrics(pred, truth, (1, 1, 2))})
    return pd.DataFrame(rows), volumes


def test_summarize_classification():
    df = _classification()
    s = summarize("classification", df, n_boot=300)
    json.dumps(s, allow_nan=False)
    assert set(s["metrics"]) == {"auroc", "auprc", "balanced_accuracy"}
    a = s["metrics"]["auroc"]
    assert a["estimate"] == pytest.approx(auroc(df["label"], df["prob"]))
    assert a["lo"] <= a["estimate"] <= a["hi"]
    assert s["n_cases"] == 80 and s["n_positive"] + s["n_negative"] == 80


def test_summarize_regression_and_segmentation():
    df = _regression()
    s = summarize("regression", df, n_boot=300)
    json.dumps(s, allow_nan=False)
    assert s["metrics"]["mae"]["estimate"] == pytest.approx(mae(df["label"], df["pred"]))
    cov = interval_coverage(df["label"], df["lo"], df["hi"])
    assert s["metrics"]["interval_coverage"]["estimate"] == pytest.approx(cov)
    no_interval = summarize("regression", df.drop(columns=["lo", "hi"]), n_boot=50)
    assert set(no_interval["metrics"]) == {"mae", "pearson_r"}
    seg, _ = _segmentation()
    s = summarize("segmentation", seg, n_boot=300)
    assert s["metrics"]["dice"]["estimate"] == pytest.approx(seg["dice"].mean())
    assert s["metrics"]["hd95"]["lo"] <= s["metrics"]["hd95"]["estimate"]


def test_summarize_single_class_gives_null_not_crash():
    df = _classification().assign(label=1)
    with pytest.warns(UserWarning):
        s = summarize("classification", df, n_boot=50)
    assert s["metrics"]["auroc"]["estimate"] is None
    json.dumps(s, allow_nan=False)


def test_schema_errors():
    with pytest.raises(ValueError, match="missing"):
        check_predictions("classification", pd.DataFrame({"case": ["a"], "label": [1]}))
    with pytest.raises(ValueError, match="unknown task type"):
        check_predictions("detection", pd.DataFrame())
    with pytest.raises(ValueError, match="more than once"):
        check_predictions("regression", pd.DataFrame({"case": ["a", "a"], "label": 1, "pred": 1}))


def test_report_classification(tmp_path):
    df = _classification()
    path = write_report(tmp_path / "out", "classification", df, details={"model": "<tiny & co>"})
    text, n_png = _check_page(path, ["metrics", "roc", "calibration", "details"])
    assert n_png == 2 and "AUROC" in text.upper() and "&lt;tiny &amp; co&gt;" in text
    assert "95% CI" in text


def test_report_regression(tmp_path):
    df = _regression()
    s = summarize("regression", df, n_boot=100)
    path = write_report(tmp_path, "regression", df, s, title="Brain age")
    text, n_png = _check_page(path, ["metrics", "scatter"])
    assert n_png == 1 and "<h1>Brain age</h1>" in text and "interval_coverage" in text


def test_report_segmentation_with_montage(tmp_path):
    seg, volumes = _segmentation()
    s = summarize("segmentation", seg, n_boot=100)
    loaded = []

    def load(case):
        loaded.append(case)
        return volumes[case]

    path = write_report(tmp_path, "segmentation", seg, s, volumes=load, n_montage=2)
    text, n_png = _check_page(path, ["metrics", "distribution", "montage"])
    assert n_png == 2
    assert sorted(loaded) == ["sub_0", "sub_1", "sub_4", "sub_5"]  # only best and worst load
    without = write_report(tmp_path / "b", "segmentation", seg, s)
    assert _check_page(without, ["distribution"])[1] == 1
