"""`predict` never writes an implausible age without a word: a value outside the physically
possible range or far outside the training labels is flagged in the JSON and on stderr, its
interval is clipped at the limits (the unclipped one kept), the batch summary counts it, and the
interval's calibration guarantee is reported as the card stores it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from brainfoundry.cli import main
from brainfoundry.models.checkpoint import save_model
from brainfoundry.tasks.model_io import load_task_model

from .conftest import case_inputs

pytestmark = pytest.mark.slow


def _flags(inputs):
    return [a for mod, p in inputs.items() for a in (f"--{mod}", str(p))]


def _copy(fomo, tmp_path, name: str, shift: float = 0.0):
    """A copy of the brainage seed whose every prediction is moved by `shift` years."""
    model, test = fomo["brainage"]
    seed = tmp_path / name
    shutil.copytree(next(model.glob("seed_*")), seed, ignore=shutil.ignore_patterns("checkp*"))
    if shift:
        net, card, _ = load_task_model(seed)
        with torch.no_grad():
            net.y_mean += shift
        save_model(seed, net, card)
    return seed, test


def test_a_negative_age_is_flagged_and_its_interval_clipped(fomo, tmp_path, capsys):
    seed, test = _copy(fomo, tmp_path, "bad", shift=-400.0)
    sub, inputs = case_inputs(test)
    out = tmp_path / f"{sub}.txt"
    assert main(["predict", "--model", str(seed), *_flags(inputs), "--output", str(out)]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["value"] == float(out.read_text()) < 0  # the value itself is never clipped
    unc, flags = info["uncertainty"], info["plausibility"]
    assert unc["interval_95"] == [0.0, 0.0] and unc["interval_95_unclipped"][1] < 0
    assert flags["outside_physical"] and flags["far_from_training"] and flags["interval_clipped"]
    card = json.loads((seed / "card.json").read_text())
    assert flags["limits"] == card["extra"]["output_range"]
    assert flags["limits"]["physical"] == [0.0, 120.0]
    said = " ".join(info["warnings"])
    assert "outside the physically possible range 0-120 years" in said
    assert "far outside the training labels" in said
    assert "physically possible range" in capsys.readouterr().err
    # the interval's guarantee, every field as the card stores it, not just the method's name
    cal = card["extra"]["calibration"]
    assert unc["calibration"] == cal
    assert {"method", "coverage", "n", "finite_sample_valid"} <= set(cal)
    batch = tmp_path / "batch"
    args = ["predict", "-m", str(seed), "--batch", str(test), "-o", str(batch), "--no-qc"]
    assert main(args) == 0
    assert "warning(s), in each case's .json" in capsys.readouterr().out
    for js in batch.glob("*.json"):
        assert json.loads(js.read_text())["plausibility"]["outside_physical"]


def test_a_plausible_age_has_no_warning_and_an_old_card_says_it_is_unchecked(fomo, tmp_path):
    seed, test = _copy(fomo, tmp_path, "ok")
    sub, inputs = case_inputs(test)
    assert main(["predict", "-m", str(seed), *_flags(inputs), "-o", str(tmp_path / "a.txt")]) == 0
    info = json.loads((tmp_path / "a.json").read_text())
    assert info["warnings"] == [] and not any(
        info["plausibility"][k] for k in ("outside_physical", "far_from_training")
    )
    card = json.loads((seed / "card.json").read_text())  # a card from before output ranges
    del card["extra"]["output_range"], card["extra"]["task"]["range"]
    (seed / "card.json").write_text(json.dumps(card))
    assert main(["predict", "-m", str(seed), *_flags(inputs), "-o", str(tmp_path / "b.txt")]) == 0
    (note,) = json.loads((tmp_path / "b.json").read_text())["warnings"]
    assert "records no training-label range" in note and "not checked" in note
