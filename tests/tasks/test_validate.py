"""validate() scores what the task spec says: Dice and the loss always, and the primary metric
when it is another one."""

from __future__ import annotations

import dataclasses

import pytest

from brainfoundry.run_config import BackboneConfig
from brainfoundry.tasks import get_task
from brainfoundry.tasks.data import prepare_task_data, preprocess_config
from brainfoundry.tasks.heads import create_task_model
from brainfoundry.tasks.model_io import build_backbone
from brainfoundry.tasks.validate import validate


@pytest.fixture(scope="module")
def seg(task_data, tmp_path_factory):
    store = prepare_task_data(
        task_data["meningioma"] / "finetune",
        tmp_path_factory.mktemp("seg") / "s",
        preprocess_config([6, 6, 6], None),
    )
    spec = get_task("meningioma")
    backbone, _, _ = build_backbone("scratch", spec, BackboneConfig(), seed=0)
    keys = sorted(store.manifest["group"].unique())[:2]
    return create_task_model("segmentation", backbone), spec, store, keys


def test_segmentation_reports_its_primary_metric(seg):
    model, spec, store, keys = seg
    dice_only = validate(model, spec, store, keys, (32, 32, 32))
    assert set(dice_only) == {"dice", "loss"}
    assert dice_only["loss"] == pytest.approx(1 - dice_only["dice"])
    by_hd95 = dataclasses.replace(spec, primary_metric="hd95")
    out = validate(model, by_hd95, store, keys, (32, 32, 32))
    assert set(out) == {"dice", "hd95", "loss"} and out["hd95"] >= 0
    assert out["dice"] == pytest.approx(dice_only["dice"])
