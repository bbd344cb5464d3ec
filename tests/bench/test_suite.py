"""Suite configs: the built-in suites load, the matrix expands in a stable order, and mistakes
give one-line config errors."""

from __future__ import annotations

import pytest

from brainfoundry.bench.suite import Cell, load_suite, objectives, synth_tasks
from brainfoundry.config import save_config
from brainfoundry.errors import ConfigError


@pytest.mark.parametrize("name", ["demo", "demo-2d", "quick", "full"])
def test_builtin_suites_load(name):
    s = load_suite(name)
    assert s.name == name
    assert "scratch" in s.objectives and set(s.objectives) <= set(objectives())
    assert set(s.tasks) == set(synth_tasks())
    assert s.expected  # every suite documents its expected time


def test_quick_suite_is_the_declared_matrix():
    s = load_suite("quick")
    assert set(s.objectives) == set(objectives())
    assert 16 in s.shots
    n = len(s.objectives) * len(s.backbones) * len(s.tasks) * len(s.shots) * len(s.seeds)
    cells = s.cells()
    assert len(cells) == n == len(set(cells))
    assert cells[0] == Cell(s.tasks[0], s.backbones[0], s.objectives[0], s.shots[0], s.seeds[0])


def test_cell_paths_are_unique_and_readable():
    s = load_suite("quick")
    paths = [c.path for c in s.cells()]
    assert len(set(paths)) == len(paths)
    c = Cell("infarct", "resenc:mini", "mae", 16, 0)
    assert c.path == "cells/infarct/resenc-mini/mae/shots_16/seed_0"


def test_overrides_and_yaml_round_trip(tmp_path):
    s = load_suite("demo", ["seeds=[0,1]", "shots=[8]"])
    assert s.seeds == [0, 1] and s.shots == [8]
    path = tmp_path / "mine.yaml"
    save_config(s, path)
    assert load_suite(path) == s


@pytest.mark.parametrize(
    "override, message",
    [
        ("objectives=[mae]", "scratch"),
        ("objectives=[scratch,simclr]", "unknown objectives"),
        ("backbones=[resenc]", "family:size"),
        ("shots=[]", "at least one"),
        ("tasks=[infarct,mytask]", "synthetic data"),
    ],
)
def test_bad_suites_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_suite("demo", [override])
    assert "\n" not in str(e.value)


def test_unknown_suite_name_lists_the_builtins(tmp_path):
    with pytest.raises(ConfigError, match="demo"):
        load_suite("nonesuch")
    with pytest.raises(ConfigError, match="not found"):
        load_suite(tmp_path / "missing.yaml")


def test_own_data_requires_paths():
    with pytest.raises(ConfigError, match="data.pretrain"):
        load_suite("demo", ["data.synth=null"])


def test_per_key_overrides_must_name_known_tasks():
    s = load_suite("demo", ["finetune.per_key={brainage: [train.steps=7]}"])
    assert s.finetune.per_key == {"brainage": ["train.steps=7"]}
    with pytest.raises(ConfigError, match="per_key"):
        load_suite("demo", ["finetune.per_key={age: [train.steps=7]}"])
