"""The prediction core on preprocessed arrays, and the raw-file preprocessing that feeds it the
store's own arrays (so `predict` and evaluation agree by construction; the end-to-end check is
the slow test_consistency)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from brainfoundry.inference.core import (
    case_outputs,
    centre_box,
    input_size,
    segment,
    stack_channels,
)

from ..conftest import save


class MeanHead(torch.nn.Module):
    """A case head whose 'probability' is the mean of its input box over present channels."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def predict(self, image, present):
        kept = image * present[:, :, None, None, None]
        return {"prob": self.w * kept.mean(dim=(1, 2, 3, 4))}


class VoxelSeg(torch.nn.Module):
    """A voxel-wise segmenter: P(lesion) = sigmoid(first channel), so every tiling agrees."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def predict(self, tiles, present=None):
        fg = torch.sigmoid(self.w * tiles[:, :1])
        return {"probs": torch.cat([1 - fg, fg], dim=1)}


def test_input_size_prefers_the_trained_box_over_the_patch():
    assert (
        input_size(SimpleNamespace(extra={"input_size": [8, 8, 8]}, patch_size=[4] * 3)) == [8] * 3
    )
    assert input_size(SimpleNamespace(extra={}, patch_size=[4, 4, 4])) == [4, 4, 4]


def test_stack_channels_zero_fills_missing_channels():
    a = np.ones((2, 3, 4), np.float16)
    image, present = stack_channels([None, a])
    assert image.dtype == np.float32 and image.shape == (2, 2, 3, 4)
    assert not image[0].any() and (image[1] == 1).all()
    assert present.tolist() == [False, True]


def test_centre_box_pads_and_crops_about_the_centre():
    image = np.arange(4 * 6 * 3, dtype=np.float32).reshape(1, 4, 6, 3) + 1
    box = centre_box(image, (6, 4, 3))
    assert box.shape == (1, 6, 4, 3)
    assert not box[0, 0].any() and not box[0, 5].any()  # one zero slab each side of axis 0
    np.testing.assert_array_equal(box[0, 1:5], image[0, :, 1:5])  # axis 1 cropped by one


def test_case_outputs_batches_sessions_of_different_shapes():
    rng = np.random.default_rng(0)
    images = [rng.normal(size=(2, 5, 7, 6)).astype(np.float32) for _ in range(2)]
    images[1] = images[1][:, :3]
    present = [np.array([True, True]), np.array([True, False])]
    out = case_outputs(MeanHead(), images, present, (4, 4, 4))
    assert set(out) == {"prob"} and out["prob"].shape == (2,)
    for j, (im, pr) in enumerate(zip(images, present)):
        expect = (centre_box(im, (4, 4, 4)) * pr[:, None, None, None]).mean()
        assert out["prob"][j] == pytest.approx(expect, abs=1e-6)


@pytest.mark.parametrize(
    "kw", [{}, {"overlap": 0.25, "batch_size": 3}, {"mirror": True}, {"whole": True}]
)
def test_segment_modes_agree_on_a_voxelwise_model(kw):
    image = np.random.default_rng(1).normal(size=(2, 11, 9, 13)).astype(np.float32)
    prob = segment(VoxelSeg(), image, (8, 8, 8), **kw)
    assert prob.shape == image.shape[1:]
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-image[0])), atol=1e-5)


def test_raw_files_become_exactly_the_store_arrays(mni, tmp_path):
    """`predict`'s preprocessing of files equals what `prepare` stores for the same scans."""
    from brainfoundry.inference.predict import preprocess_session
    from brainfoundry.tasks.data import prepare_task_data, preprocess_config
    from brainfoundry.tasks.predict import session_volume

    data, affine = mni
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw" / "sub_1" / "ses_1"
    paths = {}
    for seq, gain in (("flair", 1.5), ("t1", 0.7)):
        vol = data * gain + (data > 0) * rng.normal(0, 0.05, data.shape)
        paths[seq] = save(raw / f"{seq}.nii.gz", vol.astype(np.float32), affine)
    spacing, norm = [6.0, 6.0, 6.0], {"scheme": "zscore"}
    store = prepare_task_data(
        tmp_path / "raw", tmp_path / "store", preprocess_config(spacing, norm)
    )
    channels = ["t1", "t2", "flair"]  # t2 missing: a zero channel on both paths
    key = str(store.manifest["group"].iloc[0])
    image, present = session_volume(store, channels, key)
    session = preprocess_session([paths["t1"], None, paths["flair"]], spacing, norm)
    assert session.image.dtype == image.dtype == np.float32
    np.testing.assert_array_equal(session.image, image)
    np.testing.assert_array_equal(session.present, present)
    assert session.first == 0 and session.ref.shape == data.shape
