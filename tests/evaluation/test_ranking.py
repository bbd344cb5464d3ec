"""FOMO25 ranking reproduces a hand-worked example with ties and a missing task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainfoundry.errors import ConfigError
from brainfoundry.evaluation.ranking import fomo25_ranking, metric_ranks


def _tidy(rows):
    return pd.DataFrame(rows, columns=["run", "task", "metric", "value"])


# Four runs; D did not submit the infarct task; B and C tie on AUROC, B and D on Dice.
RESULTS = _tidy(
    [
        ("A", "infarct", "auroc", 0.80),
        ("B", "infarct", "auroc", 0.70),
        ("C", "infarct", "auroc", 0.70),
        ("A", "meningioma", "dice", 0.20),
        ("B", "meningioma", "dice", 0.30),
        ("C", "meningioma", "dice", 0.10),
        ("D", "meningioma", "dice", 0.30),
        ("A", "meningioma", "nsd", 0.15),
        ("B", "meningioma", "nsd", 0.10),
        ("C", "meningioma", "nsd", 0.05),
        ("D", "meningioma", "nsd", 0.20),
        ("A", "age", "mae", 10.0),
        ("B", "age", "mae", 8.0),
        ("C", "age", "mae", 12.0),
        ("D", "age", "mae", 9.0),
        ("A", "age", "r", 0.60),
        ("B", "age", "r", 0.70),
        ("C", "age", "r", 0.50),
        ("D", "age", "r", 0.65),
    ]
)


def test_hand_worked_example():
    table = fomo25_ranking(RESULTS, tasks=["infarct", "meningioma", "age"])
    # infarct (AUROC up): A 1, B = C = 2.5 (tie), D missing -> worst 2.5 + 1 = 3.5
    assert table["infarct"].to_dict() == {"A": 1.0, "B": 2.5, "C": 2.5, "D": 3.5}
    # meningioma: Dice B = D 1.5, A 3, C 4; NSD D 1, A 2, B 3, C 4 -> means
    assert table["meningioma"].to_dict() == {"A": 2.5, "B": 2.25, "C": 4.0, "D": 1.25}
    # age: MAE (down) B 1, D 2, A 3, C 4; r (up) the same order
    assert table["age"].to_dict() == {"A": 3.0, "B": 1.0, "C": 4.0, "D": 2.0}
    expected = {"A": 6.5 / 3, "B": 5.75 / 3, "C": 10.5 / 3, "D": 6.75 / 3}
    for run, value in expected.items():
        assert table.loc[run, "mean_rank"] == pytest.approx(value)
    assert list(table.index) == ["B", "A", "D", "C"]  # sorted best first
    assert table["rank"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_overall_ties_share_the_average_rank():
    res = _tidy(
        [
            ("x", "t1", "auroc", 0.9),
            ("y", "t1", "auroc", 0.8),
            ("x", "t2", "mae", 9.0),
            ("y", "t2", "mae", 8.0),
            ("z", "t1", "auroc", 0.5),
            ("z", "t2", "mae", 20.0),
        ]
    )
    table = fomo25_ranking(res)
    assert table.loc["x", "rank"] == table.loc["y", "rank"] == 1.5
    assert table.loc["z", "rank"] == 3.0


def test_seeds_are_averaged_and_missing_metric_is_worst_plus_one():
    res = _tidy(
        [
            ("a", "seg", "dice", 0.5),
            ("a", "seg", "dice", 0.7),  # two seeds: mean 0.6
            ("b", "seg", "dice", 0.65),
            ("a", "seg", "nsd", 0.4),
            ("b", "seg", "nsd", np.nan),  # undefined -> worst NSD rank (1) + 1
        ]
    )
    ranks = metric_ranks(res).set_index(["run", "metric"])["rank"]
    assert ranks[("b", "dice")] == 1.0 and ranks[("a", "dice")] == 2.0
    assert ranks[("a", "nsd")] == 1.0 and ranks[("b", "nsd")] == 2.0
    table = fomo25_ranking(res)
    assert table.loc["a", "seg"] == table.loc["b", "seg"] == 1.5


def test_directions_and_errors():
    res = _tidy([("a", "t", "kappa", 0.2), ("b", "t", "kappa", 0.4)])
    with pytest.raises(ConfigError, match="direction"):
        fomo25_ranking(res)
    table = fomo25_ranking(res, higher_is_better={"kappa": True})
    assert list(table.index) == ["b", "a"]
    with pytest.raises(ValueError, match="columns"):
        fomo25_ranking(res.rename(columns={"value": "score"}))
    with pytest.raises(ValueError, match="not among"):
        fomo25_ranking(res, tasks=["other"], higher_is_better={"kappa": True})
