"""`brainfoundry export RUN -o DIR`: a model folder that loads offline, with its model card."""

from __future__ import annotations

import json

import pytest
import torch

from brainfoundry.cli import main
from brainfoundry.errors import InputError
from brainfoundry.models.card import ModelCard
from brainfoundry.models.checkpoint import load_model, save_model
from brainfoundry.models.export import export_folder, sha256_file
from brainfoundry.tasks.heads import create_task_model
from brainfoundry.tasks.model_io import load_task_model
from brainfoundry.tasks.spec import get_task

from .conftest import tiny


def test_export_backbone_folder_loads_back_equal(saved_run, tmp_path):
    run, model, card = saved_run
    (run / "config.yaml").write_text("train:\n  steps: 3\n")
    out = export_folder(run, tmp_path / "hub")
    assert {p.name for p in out.iterdir()} == {
        "model.safetensors", "card.json", "README.md", "config.yaml"
    }  # fmt: skip
    assert (out / "model.safetensors").read_bytes() == (run / "model.safetensors").read_bytes()
    loaded, card2, report = load_model(out, strict=True)
    assert report.ok and card2 == card
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    readme = (out / "README.md").read_text()
    for section in ("## Architecture", "## Input", "## Training data", "## Metrics",
                    "## Intended use", "## Limitations", "## How to load"):  # fmt: skip
        assert section in readme
    assert card.arch["name"] in readme and "`mae`" in readme and "t1" in readme
    assert sha256_file(out / "model.safetensors") in readme
    assert "no task metrics" in readme


def test_export_task_model_carries_its_metrics(tmp_path):
    spec = get_task("infarct")
    backbone = tiny("resenc", len(spec.channels), 1)
    task_model = create_task_model(spec.type, backbone)
    card = ModelCard.for_model(backbone, modalities=list(spec.channels), spacing=[4.0] * 3,
                               data_summary={"n_train": 12, "n_val": 4})  # fmt: skip
    card.extra.update(task=spec.to_dict(), val_metrics={"auroc": 0.81}, step=40)
    seed = tmp_path / "seed_0"
    save_model(seed, task_model, card)
    auroc = {"estimate": 0.77, "lo": 0.6, "hi": 0.9, "n_valid": 20}
    test = {
        "task_type": "classification",
        "n_cases": 20,
        "alpha": 0.05,
        "metrics": {"auroc": auroc},
    }
    (seed / "metrics.json").write_text(json.dumps(test))
    assert main(["export", str(seed), "-o", str(tmp_path / "hub")]) == 0  # default: --to folder
    back, card2, _ = load_task_model(tmp_path / "hub")
    assert card2.extra["task"]["name"] == spec.name
    sa, sb = task_model.state_dict(), back.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    readme = (tmp_path / "hub" / "README.md").read_text()
    assert "Validation" in readme and "| auroc | 0.81 |" in readme
    assert "| auroc | 0.77 | [0.6, 0.9] |" in readme and "20 cases; 95%" in readme
    assert "brainfoundry predict --model DIR" in readme
    assert json.loads((tmp_path / "hub" / "metrics.json").read_text()) == test


def test_export_refuses_its_own_folder_and_a_missing_run(saved_run, tmp_path):
    run, _, _ = saved_run
    with pytest.raises(InputError, match="new folder"):
        export_folder(run, run)
    with pytest.raises(InputError, match="does not exist"):
        export_folder(tmp_path / "nope", tmp_path / "out")
