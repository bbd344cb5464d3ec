"""A learned segmentation model on raw input: a test case with a defaced head, turned to another
axis order, its DWI moved by 3 mm / 3°, gives the mask its skull-stripped, aligned self gives
(Dice ≥ 0.8), on the raw FLAIR's own grid and affine.

The model is trained on 2 mm scans read at 4 mm, as the raw case is: deepbet strips native
scans (on coarse voxels its mask overshoots the brain, `data.skull_strip`), and a model trained
on 4 mm-native scans segments nothing on 2 mm scans resampled to 4 mm (measured)."""

import nibabel as nib
import numpy as np
import pytest

from brainfoundry.cli import main
from tests.inference.test_predict_grids import _flags
from tests.inference.test_raw_input import _clean_and_raw, _unturn

from .conftest import synth

pytestmark = pytest.mark.slow


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_a_raw_case_gives_the_clean_mask_on_its_own_grid(tmp_path):
    easy = ("--shift=0", "--difficulty=0.2")
    data = synth(tmp_path / "clean", "meningioma", 12, 6, *easy, resolution="2")
    out = tmp_path / "run"
    assert main([
        "finetune", "--task", "meningioma", "--data", str(data / "finetune"), "-o", str(out),
        "--shots", "8", "--seeds", "0", "--preset", "cpu-tiny", "data.spacing=[4,4,4]",
        "train.steps=240", "train.checkpoint_every=120", "model.size=mini", "optim.lr=0.005",
        "val_cases=4", "model.channels=stem",
    ]) == 0  # fmt: skip
    # the same test cases with a defaced head (test seeds do not depend on --n): the fourth has
    # the largest tumour of the six (1927 voxels; the clean model's Dice on it 0.69 at 240 steps,
    # 0.80 at 400; raw vs clean 0.91 at 240 steps, AMD EPYC, measured)
    raw_data = synth(tmp_path / "raw", "meningioma", 1, 4, *easy, "--deface", resolution="2")
    test = raw_data / "test"
    case = sorted((test / "preprocessed").iterdir())[3]
    sub = case.name
    inputs = {f.name[: -len(".nii.gz")]: f for f in sorted((case / "ses_1").glob("*.nii.gz"))}
    clean, raw = _clean_and_raw(test, sub, inputs, tmp_path)
    masks = {}
    for name, given in (("clean", clean), ("raw", raw)):
        pred = tmp_path / "out" / f"{name}.nii.gz"
        assert main(["predict", "-m", str(out), *_flags(given), "-o", str(pred)]) == 0
        masks[name] = nib.load(pred)
    ref = nib.load(raw["flair"])  # the reference scan: the outputs' grid
    assert masks["raw"].shape == ref.shape
    assert np.allclose(masks["raw"].affine, ref.affine, atol=1e-5)
    a = _unturn(np.asarray(masks["raw"].dataobj)) > 0
    b = np.asarray(masks["clean"].dataobj) > 0
    lesion = np.asarray(nib.load(test / "labels" / sub / "ses_1" / "seg.nii.gz").dataobj) > 0
    assert _dice(b, lesion) > 0.4  # the clean mask finds the tumour: agreement means something
    assert _dice(a, b) >= 0.8, (_dice(a, b), _dice(a, lesion), _dice(b, lesion))
