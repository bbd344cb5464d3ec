"""The FOMO26 protocol: its task specs, scoring that never raises (worst
values instead), the area-weighted NSD at 1 mm in segmentation tables, and the unified
weighted ranking."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from brainfoundry.evaluation.metrics import FOMO26_WORST, MetricWarning, fomo26_score
from brainfoundry.evaluation.ranking import FOMO26_WEIGHTS, fomo26_ranking
from brainfoundry.evaluation.segmentation import multiclass_case_metrics, nsd_area
from brainfoundry.tasks.spec import FOMO26_TASKS, get_task

COLS = ["run", "task", "metric", "value"]


def test_the_fomo26_specs_load_with_their_inputs():
    specs = {t: get_task(t) for t in FOMO26_TASKS}
    assert specs["fomo26-brainage"].modalities == ["t1"]
    assert specs["fomo26-polymicrogyria"].modalities == ["t1"]
    assert specs["fomo26-trigeminal"].class_names == ["background", "nerve", "vessel"]
    for t in ("fomo26-meningioma", "fomo26-trigeminal"):
        assert specs[t].nsd_tolerance_mm == 1.0 and "nsd_area" in specs[t].ranking_metrics
    assert set(FOMO26_TASKS) <= set(FOMO26_WEIGHTS)


def test_scoring_never_raises_and_scores_the_worst():
    one_class = np.array([1, 1, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetricWarning)
        assert fomo26_score("auroc", one_class, np.array([0.2, 0.3, 0.4])) == 0.0
        assert fomo26_score("mae", np.array([1.0, 2.0]), np.array([1.0, np.nan])) == 100.0
        assert fomo26_score("pearson_r", np.arange(3.0), np.ones(3)) == -100.0
    assert len(caught) == 3 and all("worst value" in str(w.message) for w in caught)
    empty = np.zeros((6, 6, 6), bool)
    # their quirk, reproduced: an empty prediction of an empty reference is Dice 1, NSD 0
    assert (
        fomo26_score("dice", empty, empty) == 1.0 and fomo26_score("nsd_area", empty, empty) == 0.0
    )
    assert fomo26_score("auroc", np.array([0, 1]), np.array([0.1, 0.9])) == 1.0
    assert FOMO26_WORST["dice"] == 0.0


def test_area_nsd_joins_the_per_case_table_when_asked():
    truth = np.zeros((16, 16, 16), np.uint8)
    truth[3:8, 3:8, 3:8], truth[9:13, 9:13, 9:13] = 1, 2
    pred = np.roll(truth, 1, axis=0)
    names = ["background", "nerve", "vessel"]
    m = multiclass_case_metrics(pred, truth, names, (0.5, 0.5, 0.5), 1.0, area_nsd=True)
    want = np.mean([nsd_area(pred == k, truth == k, (0.5, 0.5, 0.5), 1.0) for k in (1, 2)])
    assert m["nsd_area"] == pytest.approx(want) and "nsd_area:vessel" in m
    assert "nsd_area" not in multiclass_case_metrics(pred, truth, names, (0.5, 0.5, 0.5), 1.0)


def test_unified_ranking_weights_the_segmentation_tasks_more():
    rows = []
    for run, seg_good in (("a", True), ("b", False)):
        for task in FOMO26_TASKS:
            seg = task in ("fomo26-meningioma", "fomo26-trigeminal")
            better = seg_good if seg else not seg_good  # a wins 2 tasks, b wins 3
            metric = "dice" if seg else "auroc"
            rows.append((run, task, metric, 0.9 if better else 0.5))
    table = fomo26_ranking(pd.DataFrame(rows, columns=COLS))
    # a: rank 1 on 2 tasks (0.25 each), 2 on 3 (0.1 each); probe and fairness, which no run
    # took part in, rank every run equal (1)
    assert list(table.index) == ["a", "b"]
    a = (0.25 * 2 * 1 + 0.1 * 3 * 2 + 0.1 * 2 * 1) / sum(FOMO26_WEIGHTS.values())
    assert table.loc["a", "weighted_rank"] == pytest.approx(a)
    with pytest.raises(ValueError, match="no FOMO26 weight"):
        fomo26_ranking(pd.DataFrame([("a", "infarct", "auroc", 0.7)], columns=COLS))
