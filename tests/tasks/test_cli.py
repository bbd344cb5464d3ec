"""End to end from the CLI: finetune (2 seeds) then evaluate, for each task type."""

import json

import pandas as pd
import pytest

from brainfoundry.cli import main

SHOTS = {"infarct": 4, "brainage": 6, "meningioma": 4}
FIRST = {"infarct": "auroc", "brainage": "mae", "meningioma": "dice"}


@pytest.mark.slow
@pytest.mark.parametrize("task", ["infarct", "brainage", "meningioma"])
def test_finetune_and_evaluate_end_to_end(task, task_data, tmp_path):
    data, out = task_data[task], tmp_path / "run"
    rc = main([
        "finetune", "--task", task, "--data", str(data / "finetune"), "-o", str(out),
        "--shots", str(SHOTS[task]), "--seeds", "0,1", "--preset", "cpu-tiny",
        "--strategy", "llrd", "train.steps=3", "train.checkpoint_every=3",
    ])  # fmt: skip
    assert rc == 0
    for seed in (0, 1):
        d = out / f"seed_{seed}"
        splits = json.loads((d / "splits.json").read_text())
        assert len(splits["train"]) == SHOTS[task] and splits["val"]
        assert not set(splits["train"]) & set(splits["val"])
        card = json.loads((d / "card.json").read_text())
        assert card["extra"]["task"]["name"] == task and card["extra"]["strategy"]["name"] == "llrd"
        assert (d / "model.safetensors").is_file() and (d / "config.yaml").is_file()
    # the test set was never read by finetune
    assert not (out / "test_store").exists()
    assert main(["evaluate", str(out), "--data", str(data / "test"), "--n-boot", "200"]) == 0
    for seed in (0, 1):
        d = out / f"seed_{seed}"
        m = json.loads((d / "metrics.json").read_text())["metrics"][FIRST[task]]
        assert m["lo"] is not None and m["lo"] <= m["estimate"] <= m["hi"]
        assert "<img" in (d / "report.html").read_text()
        preds = pd.read_csv(d / "predictions.csv")
        assert len(preds) == len(list((data / "test" / "preprocessed").iterdir()))
        if task == "brainage":
            assert (preds["lo"] <= preds["pred"]).all() and (preds["pred"] <= preds["hi"]).all()
    agg = json.loads((out / "metrics.json").read_text())
    assert agg["n_seeds"] == 2 and agg["metrics"][FIRST[task]]["n"] == 2
    assert set(agg["metrics"][FIRST[task]]) >= {"mean", "sd"}


def test_user_mistakes_exit_2(tmp_path, capsys):
    assert main(["finetune", "--task", "nope", "--data", str(tmp_path), "-o", str(tmp_path / "o"),
                 "--preset", "cpu-tiny"]) == 2  # fmt: skip
    assert "unknown task" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--data", str(tmp_path)]) == 2
    assert "seed_" in capsys.readouterr().err
    bad_seeds = ["--preset", "cpu-tiny", "--seeds", "a"]
    out = ["-o", str(tmp_path / "o")]
    assert main(["finetune", "--task", "infarct", "--data", str(tmp_path), *out, *bad_seeds]) == 2
    assert "--seeds" in capsys.readouterr().err
