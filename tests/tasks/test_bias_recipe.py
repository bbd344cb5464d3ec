"""`data.bias_correct=n4` travels with the model: scratch fine-tuning prepares its store with
N4, the card keeps it, and evaluation prepares the test data the same way."""

from __future__ import annotations

import json

from brainfoundry.cli import main


def test_n4_is_kept_in_the_card_and_repeated_on_the_test_data(task_data, tmp_path):
    data, out = task_data["brainage"], tmp_path / "run"
    rc = main(["finetune", "--task", "brainage", "--data", str(data / "finetune"), "-o", str(out),
               "--shots", "6", "--seeds", "0", "--preset", "cpu-tiny", "train.steps=0",
               "data.bias_correct=n4"])  # fmt: skip
    assert rc == 0
    card = json.loads((out / "seed_0" / "card.json").read_text())
    assert card["normalization"]["bias_correct"] == "n4"
    assert (
        json.loads((out / "store" / "plan.json").read_text())["preprocess"]["bias_correct"] == "n4"
    )
    assert main(["evaluate", str(out), "--data", str(data / "test"), "--n-boot", "50"]) == 0
    plan = json.loads((out / "test_store" / "plan.json").read_text())
    assert plan["preprocess"]["bias_correct"] == "n4"
