"""What fine-tuning and evaluation lose or get wrong is said where a user reads: brains
centre-cropped to the case-level input box (finetune.json, metrics.json, the report), and
regression outputs outside the physically possible range or far outside the training labels
(flagged per case, intervals clipped at the limits with the clip recorded, counted)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from brainfoundry.cli import main
from brainfoundry.models.checkpoint import save_model
from brainfoundry.tasks.model_io import load_task_model


def _shift(seed_dir, by: float) -> None:
    """Move every prediction of a fine-tuned regression model by `by` (its label mean)."""
    model, card, _ = load_task_model(seed_dir)
    with torch.no_grad():
        model.y_mean += by
    save_model(seed_dir, model, card)


def test_crops_and_implausible_ages_reach_the_json_and_the_report(task_data, tmp_path, capsys):
    data, run = task_data["brainage"], tmp_path / "run"
    rc = main([
        "finetune", "--task", "brainage", "--data", str(data / "finetune"), "-o", str(run),
        "--shots", "6", "--preset", "cpu-tiny", "train.steps=0", "data.spacing=[6,6,6]",
        "model.size=tiny", "data.volume_shape=[16,16,16]",
    ])  # fmt: skip
    assert rc == 0
    assert "centre-cropped" in capsys.readouterr().out  # logged as it happens
    n_cases = len(list((data / "finetune" / "preprocessed").iterdir()))
    crops = json.loads((run / "finetune.json").read_text())["warnings"]
    assert len(crops) == n_cases and all("centre-cropped" in w for w in crops)
    assert all("(16 x 16 x 16)" in w and w.startswith("session sub_") for w in crops)
    # the card carries the output range: the spec's physical limits and the training labels
    seed = run / "seed_0"
    card = json.loads((seed / "card.json").read_text())
    rng = card["extra"]["output_range"]
    train = json.loads((seed / "splits.json").read_text())["train_cases"]
    ages = [float((data / "finetune" / "labels" / c / "ses_1" / "label.txt").read_text())
            for c in train]  # fmt: skip
    assert rng["physical"] == [0.0, 120.0] and rng["unit"] == "years"
    assert rng["training_labels"] == [min(ages), max(ages)]
    span = max(ages) - min(ages)
    assert rng["plausible"] == [min(ages) - span, max(ages) + span]
    # a model that now predicts negative ages: evaluated, every case is flagged, never silent
    _shift(seed, -400.0)
    assert main(["evaluate", str(run), "--data", str(data / "test"), "--n-boot", "50"]) == 0
    n_test = len(list((data / "test" / "preprocessed").iterdir()))
    m = json.loads((seed / "metrics.json").read_text())
    outside = [w for w in m["warnings"] if "outside the physically possible range 0-120" in w]
    far = [w for w in m["warnings"] if "far outside the training labels" in w]
    assert len(outside) == len(far) == n_test
    assert sum("centre-cropped" in w for w in m["warnings"]) == n_test
    p = m["plausibility"]
    assert p["n_outside_physical"] == p["n_far_from_training"] == p["n_interval_clipped"] == n_test
    preds = pd.read_csv(seed / "predictions.csv")
    assert (preds["pred"] < 0).all() and preds["outside_physical"].all()
    assert (preds["lo"] >= 0).all() and (preds["hi"] >= 0).all()  # clipped at 0 years ...
    assert (preds["lo_unclipped"] < 0).all() and preds["interval_clipped"].all()  # ... recorded
    assert json.loads((run / "metrics.json").read_text())["warnings"] == m["warnings"]
    html = (seed / "report.html").read_text()
    assert 'id="warnings"' in html and "physically possible range" in html
    assert np.isfinite(preds["pred"]).all()
