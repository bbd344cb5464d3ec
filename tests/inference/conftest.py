"""Tiny fine-tuned models for the three tasks (6 mm, a few cases, closed-form probes or two
segmentation steps) and their generated test cases, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tasks.conftest import make_task


@pytest.fixture(scope="session")
def fomo(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """fomo[task] -> (model folder, test folder with preprocessed/ and labels/)."""
    from brainfoundry.tasks.finetune import FinetuneConfig, finetune

    root = tmp_path_factory.mktemp("fomo")
    out = {}
    for task, extra in (
        ("infarct", ["seeds=[0,1]", "train.steps=0", "shots=5"]),  # a two-seed ensemble
        ("brainage", ["train.steps=0", "shots=6"]),
        ("meningioma", ["train.steps=2", "train.checkpoint_every=2", "shots=3"]),
    ):
        data = make_task(root / "data", task)
        cfg = FinetuneConfig.load(
            "cpu-tiny", None, [f"task={task}", "data.spacing=[6,6,6]", "model.size=tiny", *extra]
        )
        finetune(cfg, data / "finetune", root / "models" / task, log=lambda _: None)
        out[task] = (root / "models" / task, data / "test")
    return out


def case_inputs(test_dir: Path, case: str | None = None) -> tuple[str, dict[str, Path]]:
    """(subject, {modality: path}) of one generated test case (the first by default)."""
    subs = sorted((test_dir / "preprocessed").iterdir())
    sub = next(s for s in subs if case is None or s.name == case)
    files = sorted((sub / "ses_1").glob("*.nii.gz"))
    return sub.name, {f.name[: -len(".nii.gz")]: f for f in files}
