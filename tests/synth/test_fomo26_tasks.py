"""FOMO26's new synthetic tasks (trigeminal, polymicrogyria, probe): layouts, labels, the shift,
determinism and QC, on tiny datasets (trigeminal at 1 mm, the others at the suite's 6 mm)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from brainfoundry.cli import main
from brainfoundry.errors import ConfigError
from brainfoundry.io.layouts import discover
from brainfoundry.synth import SynthConfig, generate, make_session, plan
from brainfoundry.synth.fomo26 import PARTICIPANT_COLUMNS, PROBE_CLASS_NAMES, SITES

from .conftest import RES

TRIGEMINAL_RES = 1.0


def _make(tmp: Path, kind: str, **kw) -> tuple[Path, dict]:
    cfg = SynthConfig(kind=kind, resolution=kw.pop("resolution", RES), **kw)
    out = tmp / kind
    return out, generate(cfg, out)


def _load(p: Path) -> nib.Nifti1Image:
    return nib.load(str(p))


def _cases(out: Path, split: str) -> list[dict]:
    return json.loads((out / split / "dataset.json").read_text())["cases"]


@pytest.fixture(scope="module")
def trigeminal(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fomo26")
    return _make(tmp, "trigeminal", n=3, n_test=3, seed=2, resolution=TRIGEMINAL_RES)


@pytest.fixture(scope="module")
def polymicrogyria(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("fomo26"), "polymicrogyria", n=4, n_test=4, seed=2)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("fomo26"), "probe", n=8, n_test=8, seed=2)


@pytest.mark.parametrize(
    "name,modalities,label_file",
    [
        ("trigeminal", {"t2"}, "seg.nii.gz"),
        ("polymicrogyria", {"t1"}, "label.txt"),
        ("probe", {"t1", "t2", "flair"}, "label.txt"),
    ],
)
def test_each_task_writes_the_fomo_layout_and_qc(name, modalities, label_file, request):
    out, info = request.getfixturevalue(name)
    assert info["task"] == name and info["label"]["file"] == label_file
    for split, domain in (("finetune", "source"), ("test", "clinical")):
        assert info["splits"][split]["domain"] == domain
        layout, entries = discover(out / split)
        assert layout == "fomo-task"
        assert {e.modality for e in entries} <= modalities
        subjects = {e.subject for e in entries}
        assert len(entries) == len(subjects) == info["splits"][split]["n"]  # one volume each
        for sub in subjects:
            assert (out / split / "labels" / sub / "ses_1" / label_file).exists()
        png = out / "qc" / f"{split}.png"
        assert png.stat().st_size > 10_000


def _world(img: nib.Nifti1Image, mask: np.ndarray) -> np.ndarray:
    return nib.affines.apply_affine(img.affine, np.argwhere(mask))


def test_trigeminal_labels_are_thin_nerves_and_vessels_by_the_brainstem(trigeminal):
    out, _ = trigeminal
    for split in ("finetune", "test"):
        for rec in _cases(out, split):
            lab = out / split / "labels" / rec["subject"] / "ses_1" / "seg.nii.gz"
            t2 = _load(out / split / "preprocessed" / rec["subject"] / "ses_1" / "t2.nii.gz")
            seg = _load(lab)
            labels = np.asarray(seg.dataobj)
            assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 1, 2}
            assert labels.shape == t2.shape and np.allclose(seg.affine, t2.affine)
            counts = {"nerves": int((labels == 1).sum()), "vessels": int((labels == 2).sum())}
            assert rec["label_voxels"] == counts
            for value in (1, 2):
                mask = labels == value
                # thin: most label voxels lie within 2 voxels of the structure's edge, so
                # within ~2 voxels of its centre line (a tube at most ~4-5 voxels across)
                depth = ndi.distance_transform_edt(mask)[mask]
                assert np.mean(depth <= 2.0) > 0.9, (rec["subject"], value, depth.max())
                near = np.linalg.norm(_world(seg, mask) - rec["pons_mm"], axis=1)
                assert near.max() < 35.0  # around the brainstem
            nerve = _world(seg, labels == 1)
            assert np.abs(nerve[:, 0] - rec["pons_mm"][0]).min() > 5.0  # lateral to the pons
            n_parts = ndi.label(labels == 1)[1]
            assert n_parts >= 2  # a nerve each side
            img, nerve_mask = np.asarray(t2.dataobj), labels == 1
            sleeve = ndi.binary_dilation(nerve_mask, iterations=2) & (labels == 0)
            assert img[nerve_mask].mean() < img[sleeve].mean()  # dark in its bright CSF sleeve


def test_trigeminal_test_split_is_shifted_and_partly_lps(trigeminal):
    out, info = trigeminal
    assert info["anatomy"]["shape"] == [60, 52, 40]
    ft, te = _cases(out, "finetune"), _cases(out, "test")
    assert all(r["acquisition"]["t2"]["slice_mm"] == TRIGEMINAL_RES for r in ft)
    assert all(r["acquisition"]["t2"]["slice_mm"] >= 1.4 * TRIGEMINAL_RES for r in te)
    assert all(r["orientation"] == "RAS" and r["shift"] == 0 for r in ft)
    assert all(r["vendor"] != "research" for r in te)
    for r in te:  # the stored affine says how the arrays run
        affine = _load(out / "test" / "labels" / r["subject"] / "ses_1" / "seg.nii.gz").affine
        assert (np.sign(np.diag(affine)[:2]) < 0).all() == (r["orientation"] == "LPS")

    def z_over_x(split: str) -> list[float]:  # thick partitions: less texture along z
        files = sorted((out / split / "preprocessed").glob("sub_*/ses_1/t2.nii.gz"))
        return [_hf(np.asarray(_load(f).dataobj), 2) / _hf(np.asarray(_load(f).dataobj), 0)
                for f in files]  # fmt: skip

    assert max(z_over_x("test")) < 0.85 * min(z_over_x("finetune"))


def _hf(img: np.ndarray, axis: int) -> float:
    """Median absolute neighbour difference along `axis`, relative to the median signal."""
    d = np.abs(np.diff(img.astype(np.float64), axis=axis))
    return float(np.median(d) / np.median(img))


def test_polymicrogyria_is_balanced_and_distractors_are_label_independent(polymicrogyria):
    out, _ = polymicrogyria
    for split in ("finetune", "test"):
        recs = _cases(out, split)
        labels = [r["label"] for r in recs]
        assert sorted(labels) == [0, 0, 1, 1]
        for r in recs:
            text = (out / split / "labels" / r["subject"] / "ses_1" / "label.txt").read_text()
            assert int(text) == r["label"]
            assert ("polymicrogyria" in r) == (r["label"] == 1)
            assert "focal_atrophy" in r["distractors"] and "wmh" in r["distractors"]

    # test scans are not skull-stripped: a modelled head around the brain, defaced
    def voxels(split: str) -> list[int]:
        files = sorted((out / split / "preprocessed").glob("sub_*/ses_1/t1.nii.gz"))
        return [int((np.asarray(_load(f).dataobj) > 0).sum()) for f in files]

    assert np.mean(voxels("test")) > 1.3 * np.mean(voxels("finetune"))
    assert all("head" in r and "deface_plane" in r["head"] for r in _cases(out, "test"))


def test_polymicrogyria_changes_only_a_cortical_region(anat):
    jobs = plan(SynthConfig(kind="polymicrogyria", n=2, n_test=0, resolution=RES, seed=5))
    spec = next(j.spec for j in jobs if j.label == 1)
    pos = make_session(spec, anat)
    neg = make_session(replace(spec, polymicrogyria=False), anat, keep_tissues=True)
    region = pos.lesion.astype(bool)
    assert region.any() and not neg.lesion.any()
    diff = pos.images["t1"] != neg.images["t1"]
    assert diff.any()
    assert not (diff & ~ndi.binary_dilation(region, iterations=2)).any()
    assert neg.tissues is not None
    cortex = neg.tissues[1].numpy()  # cortical grey matter of the subject without it
    assert np.mean(cortex[region] > 0.2) > 0.6
    assert neg.meta["distractors"] == pos.meta["distractors"]  # drawn alike


def test_probe_classes_demographics_and_participants(probe):
    out, info = probe
    assert info["label"]["classes"] == {str(i): n for i, n in enumerate(PROBE_CLASS_NAMES)}
    for split in ("finetune", "test"):
        recs = {r["subject"]: r for r in _cases(out, split)}
        assert np.bincount([r["label"] for r in recs.values()]).tolist() == [2, 2, 2, 2]
        with open(out / split / "participants.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert tuple(rows[0]) == PARTICIPANT_COLUMNS and len(rows) == 8
        for row in rows:
            r = recs[row["subject"]]
            lab = out / split / "labels" / row["subject"] / "ses_1" / "label.txt"
            assert int(row["label"]) == r["label"] == int(lab.read_text())
            assert row["sex"] == r["sex"] in ("F", "M") and row["site"] == r["site"]
            assert float(row["age"]) == pytest.approx(r["age"], abs=0.05)
            assert r["label_name"] == PROBE_CLASS_NAMES[r["label"]]
        assert sorted(row["sex"] for row in rows) == ["F"] * 4 + ["M"] * 4
        assert {row["site"] for row in rows} <= set(SITES[split])
    shifts = {s: [r["shift"] for r in _cases(out, s)] for s in ("finetune", "test")}
    assert max(shifts["finetune"]) <= 0.3 and min(shifts["test"]) == 1.0


def _signature(root: Path) -> dict:
    sig = {}
    for p in sorted(root.rglob("*")):
        if p.suffix == ".gz":
            sig[str(p.relative_to(root))] = np.asarray(_load(p).dataobj).tobytes()
        elif p.suffix in (".txt", ".json", ".csv"):
            sig[str(p.relative_to(root))] = p.read_bytes()
    return sig


@pytest.mark.parametrize("kind", ["trigeminal", "polymicrogyria", "probe"])
def test_same_seed_same_files(tmp_path, kind):
    res = TRIGEMINAL_RES if kind == "trigeminal" else RES
    kw = {"n": 4, "n_test": 1, "qc": False, "resolution": res}
    a, _ = _make(tmp_path / "a", kind, seed=4, **kw)
    b, _ = _make(tmp_path / "b", kind, seed=4, **kw)
    c, _ = _make(tmp_path / "c", kind, seed=5, **kw)
    assert _signature(a) == _signature(b)
    assert _signature(a) != _signature(c)


def test_cli_trigeminal_defaults_to_half_a_millimetre(tmp_path, capsys):
    out = tmp_path / "tn"
    rc = main(["synth", "task", "trigeminal", "-o", str(out), "--n", "1", "--n-test", "0",
               "--no-qc"])  # fmt: skip
    assert rc == 0 and "wrote trigeminal" in capsys.readouterr().out
    img = _load(out / "finetune" / "preprocessed" / "sub_1" / "ses_1" / "t2.nii.gz")
    assert np.allclose(np.abs(np.diag(img.affine)[:3]), 0.5) and img.shape == (120, 104, 80)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"kind": "trigeminal", "resolution": 0.2}, "outside 0.3-2.0 mm for trigeminal"),
        ({"kind": "trigeminal", "resolution": 3.0}, "outside 0.3-2.0 mm"),
        ({"kind": "polymicrogyria", "n": 1}, "at least 2"),
        ({"kind": "probe", "n": 3}, "at least 4"),
        ({"kind": "brainage", "resolution": 0.5}, "outside 1-8 mm"),
    ],
)
def test_impossible_fomo26_parameters_are_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        SynthConfig(**kw).validate()
