"""The tiny demo suite (6 mm, a few cases, 2 steps everywhere) and one in-process run of it,
shared by the runner and launcher tests (one run per session: it is the slowest fixture)."""

from __future__ import annotations

import pytest

from brainfoundry.bench.runner import run_suite
from brainfoundry.bench.suite import load_suite

TINY = [
    "name=tiny",
    "data.synth.resolution=6",
    "data.synth.pretrain_subjects=4",
    "data.synth.finetune_cases=8",
    "data.synth.test_cases=6",
    "data.spacing=[6,6,6]",
    "objectives=[scratch,mae]",
    "backbones=[resenc:tiny]",
    "shots=[4]",
    "seeds=[0]",
    "pretrain.preset=cpu-tiny",
    "pretrain.steps=2",
    "pretrain.overrides=[train.num_workers=0]",
    "finetune.preset=cpu-tiny",
    "finetune.steps=2",
    "finetune.overrides=[train.checkpoint_every=2]",
    # the demo gives meningioma 640 steps of its own; here it keeps its per-task settings
    # (stem channels, its learning rate) at the tiny budget
    "finetune.per_key={meningioma: [train.steps=2, train.checkpoint_every=2, optim.lr=0.005, "
    "model.channels=stem]}",
    "n_boot=50",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(suite, its folder, the tables, the log lines) of the tiny suite run in process."""
    out = tmp_path_factory.mktemp("bench") / "tiny"
    suite = load_suite("demo", TINY)
    lines: list[str] = []
    tables = run_suite(suite, out, log=lines.append, progress=False)
    return suite, out, tables, lines
