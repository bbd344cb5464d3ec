import pandas as pd
import pytest

from brainfoundry.errors import ConfigError
from brainfoundry.tasks.data import few_shot_split


def cases(n_pos=13, n_neg=8):
    labels = [1.0] * n_pos + [0.0] * n_neg
    keys = [f"g{i:02d}" for i in range(len(labels))]
    return pd.DataFrame({"key": keys, "case": [f"sub_{i}" for i in range(len(labels))],
                         "label": labels})  # fmt: skip


@pytest.mark.parametrize("shots", [2, 5, 16])
def test_stratified_split_deterministic_disjoint_and_balanced(shots):
    df = cases()
    a = few_shot_split(df, shots, seed=3, stratify=True)
    assert a == few_shot_split(df, shots, seed=3, stratify=True)
    assert len(a["train"]) == shots
    assert not set(a["train"]) & set(a["val"])
    assert set(a["train"]) | set(a["val"]) == set(df["key"])
    lab = df.set_index("key")["label"]
    n_pos = int(lab[a["train"]].sum())
    assert 1 <= n_pos <= shots - 1  # both classes drawn
    assert abs(n_pos - shots * 13 / 21) <= 1  # proportional to the full set


def test_seeds_draw_different_cases():
    df = cases()
    draws = {tuple(few_shot_split(df, 6, seed=s, stratify=True)["train"]) for s in range(5)}
    assert len(draws) > 1


def test_unstratified_and_val_cap():
    df = cases()
    s = few_shot_split(df, 4, seed=0, stratify=False, n_val=3)
    assert len(s["train"]) == 4 and len(s["val"]) == 3
    assert not set(s["train"]) & set(s["val"])
    assert s["train_cases"] == [df.set_index("key").loc[k, "case"] for k in s["train"]]


def test_too_many_shots_is_a_config_error():
    with pytest.raises(ConfigError, match="shots"):
        few_shot_split(cases(2, 2), 4, seed=0, stratify=True)
