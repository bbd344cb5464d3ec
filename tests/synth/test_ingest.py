"""The data layer ingests what synth writes: `brainfoundry prepare` on a corpus and a task."""

from __future__ import annotations

import pytest

from brainfoundry.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pretrain", "meningioma"])
def test_prepare_ingests_generated_data(tmp_path, kind):
    raw, store = tmp_path / "raw", tmp_path / "store"
    if kind == "pretrain":
        args = ["synth", "pretrain", "-o", str(raw), "--n", "2"]
    else:
        args = ["synth", "task", kind, "-o", str(raw), "--n", "2", "--n-test", "0"]
        raw = raw / "finetune"
    assert main([*args, "--resolution", "6", "--no-qc"]) == 0
    assert main(["prepare", str(raw), str(store), "--spacing", "6", "--quiet"]) == 0
    assert any(store.iterdir())
