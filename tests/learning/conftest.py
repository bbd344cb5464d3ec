"""A segmentation model that has learned (400 steps on easy 4 mm meningioma cases), trained
once and shared by the tests that need a model whose masks mean something."""

from __future__ import annotations

import pytest

from brainfoundry.cli import main


def synth(root, task: str, n: int, n_test: int, *extra: str, resolution: str = "4"):
    out = root / task
    args = ["synth", "task", task, "-o", str(out), "--n", str(n), "--n-test", str(n_test)]
    assert main([*args, "--resolution", resolution, "--seed", "3", "--no-qc", *extra]) == 0
    return out


@pytest.fixture(scope="session")
def meningioma_run(tmp_path_factory):
    """(finetune output, data folder) of the learned meningioma model."""
    root = tmp_path_factory.mktemp("learned")
    data = synth(root, "meningioma", 12, 6, "--shift=0", "--difficulty=0.2")
    out = root / "run"
    rc = main([
        "finetune", "--task", "meningioma", "--data", str(data / "finetune"), "-o", str(out),
        "--shots", "8", "--seeds", "0", "--preset", "cpu-tiny", "data.spacing=[4,4,4]",
        "train.steps=400", "train.checkpoint_every=200", "model.size=mini", "optim.lr=0.005",
        "val_cases=4", "model.channels=stem",
    ])  # fmt: skip
    assert rc == 0
    return out, data
