"""The augmentation on real anatomy: nilearn's bundled MNI152 T1 (offline), subsampled."""

import numpy as np
import pytest
import torch

from brainfoundry.transforms import SpatialTransform, augment_preset, build_augmentation


@pytest.fixture(scope="module")
def mni_batch() -> dict:
    datasets = pytest.importorskip("nilearn.datasets")
    data = np.asarray(datasets.load_mni152_template(resolution=1).get_fdata(), np.float32)
    data = np.ascontiguousarray(data[20:180:4, 20:212:4, 10:170:4])  # 40 x 48 x 40 at 4 mm
    brain = data > 0
    data = np.where(brain, (data - data[brain].mean()) / data[brain].std(), 0)
    image = torch.from_numpy(data.astype(np.float32))[None, None].repeat(2, 1, 1, 1, 1)
    label = torch.from_numpy(brain.astype(np.uint8))[None, None].repeat(2, 1, 1, 1, 1)
    return {"image": image, "present": torch.ones(2, 1, dtype=torch.bool), "label": label}


def test_brain_mask_follows_the_brain_under_rotation(mni_batch):
    t = SpatialTransform(patch_size=(32, 40, 32), p_rotation=1.0, p_scale=1.0, p_elastic=1.0)
    out = t(mni_batch, torch.Generator().manual_seed(3))
    moved_brain = out["image"] != 0  # trilinear: one voxel of blur at the brain's edge
    label = out["label"].bool()

    def dice(a, b):
        return float(2 * (a & b).sum() / (a.sum() + b.sum()))

    aligned = dice(moved_brain, label)
    assert aligned > 0.9
    assert aligned > dice(moved_brain, label.roll(2, dims=3)) + 0.02
    assert not torch.equal(label, mni_batch["label"][:, :, 4:36, 4:44, 4:36].bool())


@pytest.mark.parametrize("preset", ["default", "strong"])
def test_presets_on_real_anatomy_stay_finite_and_shaped(mni_batch, preset):
    cfg = augment_preset(preset)
    out = build_augmentation(cfg)(mni_batch, torch.Generator().manual_seed(0))
    assert out["image"].shape == mni_batch["image"].shape
    assert torch.isfinite(out["image"]).all()
    assert out["image"].abs().max() < 50
