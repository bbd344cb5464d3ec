"""Raw scans in, native-space answers out. A generated test case with a defaced head, every scan
turned to another axis orientation and one sequence moved by 3 mm / 3°, predicts what its
skull-stripped, aligned self predicts: the probability within 0.1 (the mask, with a model that
has learned one, in tests/learning/test_raw_mask.py). The batch summary lists every case's
status and what brain extraction did."""

from __future__ import annotations

import csv
import shutil

import nibabel as nib
import nibabel.orientations as nio
import numpy as np
import pytest

from brainfoundry.cli import main

from .conftest import case_inputs
from .test_predict_grids import _flags, _moved

pytestmark = pytest.mark.slow

# a permutation of the axes with two flips: RAS becomes "SLP"-like voxel order
TURN = np.array([[2, -1], [0, 1], [1, -1]], float)


@pytest.fixture(scope="module")
def defaced(tmp_path_factory):
    """Test cases with a defaced head at 2 mm (the fomo fixture's models read 6 mm: predict
    strips the native scans, then resamples). deepbet needs native-like voxels: on 6 mm scans
    its mask overshoots the brain by 1.3-1.5x (data.skull_strip), and the models then see
    another brain."""
    root = tmp_path_factory.mktemp("defaced")
    out = {}
    for task in ("infarct",):
        args = ["synth", "task", task, "-o", str(root / task), "--n", "2", "--n-test", "3"]
        assert main([*args, "--resolution", "2", "--no-qc", "--deface"]) == 0
        out[task] = root / task / "test"
    return out


def _save(data, affine, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), path)
    return path


def _unturn(data):
    """`data` turned by TURN, back in the original axis order."""
    inverse = np.zeros_like(TURN)
    for i, (axis, flip) in enumerate(TURN):
        inverse[int(axis)] = [i, flip]
    return nio.apply_orientation(data, inverse)


def _clean_and_raw(test, sub, inputs, tmp_path):
    """(clean inputs: the head scans times the brain mask, raw inputs: the head scans turned by
    TURN, the DWI also moved: not the reference, the FLAIR, so the outputs' grid stays one a
    reader can check)."""
    mask = np.asarray(nib.load(test / "labels" / sub / "ses_1" / "brain_mask.nii.gz").dataobj)
    clean, raw = {}, {}
    for mod, p in sorted(inputs.items()):
        img = nib.load(p)
        data = np.asarray(img.dataobj, np.float32)
        clean[mod] = _save(data * (mask > 0), img.affine, tmp_path / "clean" / f"{mod}.nii.gz")
        turned = nio.apply_orientation(data, TURN)
        aff = img.affine @ nio.inv_ornt_aff(TURN, data.shape)
        raw[mod] = _save(turned, aff, tmp_path / "raw" / f"{mod}.nii.gz")
        if mod == "dwi_b1000":
            raw[mod] = _moved(raw[mod], tmp_path / "raw" / f"{mod}_moved.nii.gz", 3.0, 3.0, 0)
    return clean, raw


def test_a_turned_defaced_case_with_a_moved_sequence_predicts_as_the_clean_one(
    fomo, defaced, tmp_path, capsys
):
    model, _ = fomo["infarct"]
    test = defaced["infarct"]
    sub, inputs = case_inputs(test)
    clean, raw = _clean_and_raw(test, sub, inputs, tmp_path)
    p = {}
    for name, given in (("clean", clean), ("raw", raw)):
        out = tmp_path / "out" / f"{name}.txt"
        assert main(["predict", "-m", str(model), *_flags(given), "-o", str(out)]) == 0
        p[name] = float(out.read_text())
    err = capsys.readouterr().err
    assert "skull-stripped (deepbet" in err and "rigid registration moved it" in err
    assert abs(p["raw"] - p["clean"]) <= 0.1, p


def test_the_batch_summary_lists_each_case_and_its_brain_extraction(fomo, defaced, tmp_path):
    model, _ = fomo["infarct"]
    batch = tmp_path / "batch"
    shutil.copytree(defaced["infarct"], batch)
    broken = sorted((batch / "preprocessed").iterdir())[-1] / "ses_1" / "flair.nii.gz"
    img = nib.load(broken)
    _save(np.zeros(img.shape), img.affine, broken)  # no brain to find
    out = tmp_path / "preds"
    assert main(["predict", "-m", str(model), "--batch", str(batch), "-o", str(out)]) == 1
    rows = {r["case"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert len(rows) == len(list((batch / "preprocessed").iterdir()))
    bad = rows.pop(broken.parent.parent.name)
    assert bad["status"] == "failed" and bad["problem"].startswith(str(broken))
    assert not (out / f"{broken.parent.parent.name}.txt").exists()
    for r in rows.values():
        assert r["skull_strip"] == "deepbet" and 800 < float(r["brain_ml"]) < 2600, r
        assert r["status"] == "warning" and "skull-stripped (deepbet" in r["problem"]
