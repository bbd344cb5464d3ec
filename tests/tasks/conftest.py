"""Synthetic FOMO25-style task folders (6 mm, a handful of cases), made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainfoundry.cli import main

SIZES = {"infarct": (8, 6), "brainage": (10, 6), "meningioma": (6, 4)}


def make_task(root: Path, name: str, seed: int = 0) -> Path:
    n, n_test = SIZES[name]
    out = root / name
    args = ["synth", "task", name, "-o", str(out), "--n", str(n), "--n-test", str(n_test)]
    rc = main([*args, "--resolution", "6", "--seed", str(seed), "--no-qc"])
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def task_data(tmp_path_factory) -> dict[str, Path]:
    """Lazily synthesised task folders: task_data[name] -> DIR with finetune/ and test/."""
    root = tmp_path_factory.mktemp("tasks")

    class Lazy(dict):
        def __missing__(self, name: str) -> Path:
            self[name] = make_task(root, name)
            return self[name]

    return Lazy()


@pytest.fixture(scope="session")
def infarct_store(task_data, tmp_path_factory):
    """The infarct fine-tuning folder prepared at 6 mm."""
    from brainfoundry.tasks.data import prepare_task_data, preprocess_config

    store = tmp_path_factory.mktemp("store") / "s"
    return prepare_task_data(
        task_data["infarct"] / "finetune", store, preprocess_config([6, 6, 6], None)
    )
