"""A segmentation label outside the head's classes is one clear error naming the file, found once
when the cases are listed; the loss no longer clamps it silently to a class."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainfoundry.cli import main
from brainfoundry.errors import InputError
from brainfoundry.models.backbones import create_backbone
from brainfoundry.tasks import get_task
from brainfoundry.tasks.data import case_table, prepare_task_data, preprocess_config
from brainfoundry.tasks.heads import create_task_model
from tests.conftest import save


def _meningioma_folder(root, mni, bad: dict[str, int]):
    """Three sessions with the task's sequences and a {0,1} mask; `bad[sub]` sets the left half
    of that session's lesion voxels to another value."""
    data, affine = mni
    mask = (data > np.percentile(data, 95)).astype(np.int16)
    for s in ("sub_1", "sub_2", "sub_3"):
        for seq in ("flair", "dwi_b1000", "swi"):
            save(root / "preprocessed" / s / "ses_1" / f"{seq}.nii.gz", data, affine)
        lab = mask.copy()
        if s in bad:
            lab[: data.shape[0] // 2][mask[: data.shape[0] // 2] > 0] = bad[s]
        save(root / "labels" / s / "ses_1" / "seg.nii.gz", lab, affine)
    return root / "labels"


def test_finetune_refuses_a_label_outside_the_classes_in_one_line(tmp_path, mni, capsys):
    labels = _meningioma_folder(tmp_path / "raw", mni, {"sub_2": 2})
    data, run = str(tmp_path / "raw"), str(tmp_path / "run")
    args = ["finetune", "--task", "meningioma", "--data", data, "-o", run,
            "--preset", "cpu-tiny", "data.spacing=[8,8,8]"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert str(labels / "sub_2" / "ses_1" / "seg.nii.gz") in err
    assert "label values 0..2 are outside the 2 classes (0..1) of task meningioma" in err
    assert not list((tmp_path / "run").glob("seed_*"))  # refused before any training


def test_negative_labels_and_stores_from_before_the_check_are_caught(tmp_path, mni):
    labels = _meningioma_folder(tmp_path / "raw", mni, {"sub_3": -1})
    spec = get_task("meningioma")
    store = prepare_task_data(tmp_path / "raw", tmp_path / "s", preprocess_config([8] * 3, None))
    with pytest.raises(InputError, match="values -1..1 are outside") as e:
        case_table(store, spec)
    assert e.value.path == str(labels / "sub_3" / "ses_1" / "seg.nii.gz")
    # a store prepared before label extents were recorded: its stored labels are read instead
    # (-1 was stored as 255 by the uint8 label array, which is still no class of the head)
    old = store.manifest.drop(columns=["seg_range", "seg_source"])
    old.to_parquet(store.root / "manifest.parquet", index=False)
    store = type(store)(store.root)
    with pytest.raises(InputError, match="values 0..255 are outside") as e:
        case_table(store, spec)
    assert e.value.path.startswith(str(store.root / "labels"))


def test_the_loss_no_longer_clamps_labels_it_has_no_class_for():
    torch.manual_seed(0)
    seg = create_task_model("segmentation", create_backbone("resenc", 1, 2, "tiny"))
    image = torch.randn(1, 1, 16, 16, 16)
    label = torch.zeros(1, 1, 16, 16, 16, dtype=torch.long)
    loss, _ = seg({"image": image, "label": label})
    assert torch.isfinite(loss)
    label[0, 0, 8, 8, 8] = 2  # a class the head does not have: once clamped to 1, silently
    with pytest.raises((IndexError, RuntimeError)):
        seg({"image": image, "label": label})
