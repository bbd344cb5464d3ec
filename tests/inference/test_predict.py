"""`brainfoundry predict` on generated cases: every task from NIfTI, a DICOM session, a batch,
the outputs' contract (float text; mask with the input's shape, affine and {0,1}; JSON
uncertainty; QC PNG) and one-line errors that leave no output behind."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from brainfoundry.cli import main

from .conftest import case_inputs

pytestmark = pytest.mark.slow


def _flags(inputs):
    return [a for mod, p in inputs.items() for a in (f"--{mod}", str(p))]


@pytest.mark.parametrize("task", ["infarct", "brainage", "meningioma"])
def test_every_task_from_nifti(fomo, tmp_path, task):
    model, test = fomo[task]
    sub, inputs = case_inputs(test)
    out = tmp_path / f"{sub}.txt"
    assert main(["predict", "--model", str(model), *_flags(inputs), "--output", str(out)]) == 0
    info = json.loads((tmp_path / f"{sub}.json").read_text())
    assert (tmp_path / f"{sub}.png").stat().st_size > 1000
    if task == "meningioma":
        mask_img = nib.load(tmp_path / f"{sub}.nii.gz")
        ref = nib.load(inputs["flair"])
        mask = np.asarray(mask_img.dataobj)
        assert mask.shape == ref.shape and np.allclose(mask_img.affine, ref.affine, atol=1e-4)
        assert set(np.unique(mask)) <= {0, 1} and mask.dtype == np.uint8
        assert info["uncertainty"]["lesion_volume_ml"] >= 0
        assert not out.exists()  # the extension follows the task
        return
    value = float(out.read_text())
    assert np.isfinite(value) and info["value"] == value
    if task == "infarct":
        assert 0.0 <= value <= 1.0 and info["members"] == 2  # both seeds, averaged
        assert info["uncertainty"]["probability"] == value
    else:
        lo, hi = info["uncertainty"]["interval_95"]
        assert lo < value < hi
        assert out.read_text().strip() == repr(value)  # full precision, not an integer


def _dicom_session(inputs, folder):
    """Each scan of a case as a real DICOM series folder named by its sequence."""
    from tests.io.dicom_writer import write_series

    for mod, path in inputs.items():
        img = nib.load(path)
        raw = np.asarray(img.dataobj, dtype=np.float64)
        data = np.rint(raw * (30000 / raw.max())).astype(np.int16)  # DICOM stores integers
        write_series(folder / mod, data, img.affine, description=mod)
    return folder


def test_segmentation_modes_keep_the_output_contract(fomo, tmp_path):
    """--whole, --brain-only, --mirror, --overlap: same grid, {0,1}, and brain-only is exact."""
    model, test = fomo["meningioma"]
    sub, inputs = case_inputs(test)
    ref = nib.load(inputs["flair"])
    masks = {}
    for name, extra in {
        "default": [],
        "brain": ["--brain-only"],
        "whole": ["--whole"],
        "tta": ["--mirror", "--overlap", "0.25", "--tile-batch", "4", "--no-qc"],
    }.items():
        out = tmp_path / name / f"{sub}.nii.gz"
        assert main(["predict", "-m", str(model), *_flags(inputs), "-o", str(out), *extra]) == 0
        img = nib.load(out)
        assert img.shape == ref.shape and np.allclose(img.affine, ref.affine, atol=1e-4)
        masks[name] = np.asarray(img.dataobj)
        assert set(np.unique(masks[name]).tolist()) <= {0, 1}
    assert np.array_equal(masks["brain"], masks["default"])
    assert not (tmp_path / "tta" / f"{sub}.png").exists()


@pytest.mark.parametrize("task", ["infarct", "brainage", "meningioma"])
def test_dicom_session_matches_nifti_session(fomo, tmp_path, task):
    from brainfoundry.io.volume import read_volume

    model, test = fomo[task]
    sub, inputs = case_inputs(test)
    session = _dicom_session(inputs, tmp_path / "dicom")
    nifti_session = next(inputs.values().__iter__()).parent
    d, n = tmp_path / "d" / "o.txt", tmp_path / "n" / "o.txt"
    assert main(["predict", "-m", str(model), "--session", str(session), "-o", str(d)]) == 0
    assert main(["predict", "-m", str(model), "--session", str(nifti_session), "-o", str(n)]) == 0
    assert json.loads(d.with_suffix(".json").read_text())["inputs"]  # provenance recorded
    if task != "meningioma":
        # z-scoring removes the scaling; only the integer rounding differs
        tol = 0.02 if task == "infarct" else 0.5
        assert float(d.read_text()) == pytest.approx(float(n.read_text()), abs=tol)
        return
    dicom_vol = read_volume(session / "flair")
    m_d, m_n = nib.load(d.with_name("o.nii.gz")), nib.load(n.with_name("o.nii.gz"))
    # the mask lies on the DICOM series' own grid, which is the NIfTI's grid here
    assert m_d.shape == dicom_vol.shape == m_n.shape
    assert np.allclose(m_d.affine, dicom_vol.affine, atol=1e-4)
    assert np.allclose(m_d.affine, m_n.affine, atol=1e-3)
    a, b = np.asarray(m_d.dataobj), np.asarray(m_n.dataobj)
    assert set(np.unique(a).tolist()) <= {0, 1}
    assert (a != b).mean() < 0.01


def test_batch_over_a_task_folder_is_resumable(fomo, tmp_path, capsys):
    model, test = fomo["infarct"]
    out = tmp_path / "preds"
    assert main(["predict", "-m", str(model), "--batch", str(test), "-o", str(out), "--no-qc"]) == 0
    txts = sorted(out.glob("*.txt"))
    n = len(list((test / "preprocessed").iterdir()))
    assert len(txts) == n and all(0 <= float(t.read_text()) <= 1 for t in txts)
    stamp = txts[0].stat().st_mtime_ns
    assert main(["predict", "-m", str(model), "--batch", str(test), "-o", str(out)]) == 0
    assert txts[0].stat().st_mtime_ns == stamp  # finished cases are kept, not redone
    rows = list(csv.DictReader((out / "summary.csv").open()))  # kept cases are listed too
    assert [r["case"] for r in rows] == [t.stem for t in txts]
    assert {r["skull_strip"] for r in rows} == {"auto: stripped"}  # skull-stripped already
    assert all(r["status"] in ("ok", "warning") for r in rows)


def test_batch_over_a_csv_of_dicom_and_nifti(fomo, tmp_path):
    model, test = fomo["meningioma"]
    subs = [p.name for p in sorted((test / "preprocessed").iterdir())[:2]]
    rows = ["path,subject,modality"]
    for i, sub in enumerate(subs):
        _, inputs = case_inputs(test, sub)
        if i == 0:  # the first case as DICOM series, the second as NIfTI files
            _dicom_session(inputs, tmp_path / "dcm")
            inputs = {m: tmp_path / "dcm" / m for m in inputs}
        rows += [f"{p},{sub},{m}" for m, p in inputs.items()]
    (tmp_path / "cases.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "preds"
    args = ["predict", "-m", str(model), "--batch", str(tmp_path / "cases.csv"), "-o", str(out)]
    assert main(args) == 0
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"{s}.nii.gz" for s in subs]
    for sub in subs:
        ref = nib.load(case_inputs(test, sub)[1]["flair"])
        mask = nib.load(out / f"{sub}.nii.gz")
        assert mask.shape == ref.shape
        assert set(np.unique(np.asarray(mask.dataobj)).tolist()) <= {0, 1}
        assert (out / f"{sub}.png").exists() and (out / f"{sub}.json").exists()


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err
    return err


def test_missing_sequence_is_one_line_and_writes_nothing(fomo, tmp_path, capsys):
    model, test = fomo["infarct"]
    _, inputs = case_inputs(test)
    inputs.pop("adc")
    out = tmp_path / "o.txt"
    assert main(["predict", "-m", str(model), *_flags(inputs), "-o", str(out)]) == 2
    assert "--adc" in _error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_another_grid_is_resampled_with_a_warning_and_non_images_are_refused(
    fomo, tmp_path, capsys
):
    model, test = fomo["brainage"]
    _, inputs = case_inputs(test)
    img = nib.load(inputs["t2"])
    small = tmp_path / "in" / "t2.nii.gz"
    small.parent.mkdir()
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-2], img.affine), small)
    out = tmp_path / "out" / "o.txt"
    args = ["predict", "-m", str(model), "--t1", str(inputs["t1"]), "-o", str(out)]
    assert main([*args, "--t2", str(small)]) == 0  # onto the t1's grid, said out loud
    assert f"warning: {small}: grid " in capsys.readouterr().err
    for p in (tmp_path / "out").iterdir():
        p.unlink()
    junk = tmp_path / "in" / "junk.nii.gz"
    junk.write_bytes(b"this is not a NIfTI file")
    assert main([*args, "--t2", str(junk)]) == 2
    assert "junk.nii.gz" in _error(capsys)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_one_input_mode_at_a_time(fomo, tmp_path, capsys):
    model, test = fomo["brainage"]
    _, inputs = case_inputs(test)
    args = ["predict", "-m", str(model), "--session", str(tmp_path), *_flags(inputs)]
    assert main([*args, "-o", str(tmp_path / "o.txt")]) == 2
    assert "--session" in _error(capsys)


def test_segmentation_ensemble_averages_its_seeds(fomo, tmp_path):
    """Two seeds of a segmentation model (the same weights twice): each runs with the same
    window options, and their mean is the single seed's prediction."""
    import shutil

    from brainfoundry.inference.predict import Predictor

    model, test = fomo["meningioma"]
    seed = next(model.glob("seed_*"))
    for name in ("seed_0", "seed_1"):
        shutil.copytree(seed, tmp_path / "ens" / name)
    _, inputs = case_inputs(test)
    one = Predictor(seed, device="cpu").predict(inputs, whole=True)
    two = Predictor(tmp_path / "ens", device="cpu").predict(inputs, whole=True)
    assert two["members"] == 2
    assert np.array_equal(two["mask"], one["mask"])
    assert two["uncertainty"]["ensemble_disagreement_fraction"] == 0.0


def test_a_brain_larger_than_the_models_box_is_predicted_with_a_warning(fomo, tmp_path, capsys):
    """The centre crop to the trained input box is said in the JSON and on stderr."""
    import shutil

    model, test = fomo["brainage"]
    seed = next(model.glob("seed_*"))
    small = tmp_path / "small"
    shutil.copytree(seed, small, ignore=shutil.ignore_patterns("checkpoints"))
    card = json.loads((small / "card.json").read_text())
    card["extra"]["input_size"] = [16, 16, 16]
    (small / "card.json").write_text(json.dumps(card))
    sub, inputs = case_inputs(test)
    out = tmp_path / f"{sub}.txt"
    assert main(["predict", "--model", str(small), *_flags(inputs), "--output", str(out)]) == 0
    info = json.loads((tmp_path / f"{sub}.json").read_text())
    crop = [w for w in info["warnings"] if "centre-cropped" in w]
    assert len(crop) == 1 and info["warnings"][0] == crop[0]  # the rest: implausible outputs
    assert "16 x 16 x 16" in capsys.readouterr().err
    main(["predict", "--model", str(seed), *_flags(inputs), "--output", str(tmp_path / "w.txt")])
    assert json.loads((tmp_path / "w.json").read_text())["warnings"] == []
