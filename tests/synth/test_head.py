"""`synth ... --head / --deface`: raw scans with a modelled head around the brain. One seed
gives the same subjects, brains and labels with and without it; the reference brain mask is
written beside the labels; defacing removes the face and keeps the brain."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from brainfoundry.cli import main


def _synth(out, *extra):
    args = ["synth", "task", "brainage", "-o", str(out), "--n", "2", "--n-test", "1"]
    assert main([*args, "--resolution", "6", "--no-qc", *extra]) == 0
    return out


def _load(path):
    return np.asarray(nib.load(path).dataobj)


def test_head_and_deface_keep_the_brain_and_its_labels(tmp_path):
    clean = _synth(tmp_path / "clean")
    head = _synth(tmp_path / "head", "--head")
    defaced = _synth(tmp_path / "defaced", "--deface")
    for split in ("finetune", "test"):
        for case in sorted((clean / split / "labels").glob("sub_*/ses_1")):
            rel = case.relative_to(clean)
            assert (case / "label.txt").read_text() == (head / rel / "label.txt").read_text()
            assert not (case / "brain_mask.nii.gz").exists()
            mask = _load(head / rel / "brain_mask.nii.gz") > 0
            assert np.array_equal(mask, _load(defaced / rel / "brain_mask.nii.gz") > 0)
            img = rel.as_posix().replace("labels", "preprocessed")
            brain = _load(clean / img / "t1.nii.gz") > 0
            assert np.array_equal(mask, brain)  # the brain the clean scan shows, voxel for voxel
            full = _load(head / img / "t1.nii.gz") > 0
            cut = _load(defaced / img / "t1.nii.gz") > 0
            assert (full & mask).sum() == mask.sum() and full.sum() > 1.4 * mask.sum()
            assert (cut & mask).sum() == mask.sum()  # defacing keeps the whole brain
            assert (cut & ~full).sum() == 0 and cut.sum() < full.sum()  # and cuts the face off
    meta = json.loads((defaced / "dataset.json").read_text())
    assert meta["config"]["deface"] is True
    assert all("deface_plane" in c["head"] for c in meta["cases"])
    assert all("deface_plane" not in c["head"] for c in
               json.loads((head / "dataset.json").read_text())["cases"])  # fmt: skip


def test_head_is_refused_for_the_fomo26_kinds(tmp_path, capsys):
    args = ["synth", "task", "polymicrogyria", "-o", str(tmp_path / "p"), "--n", "2"]
    assert main([*args, "--resolution", "6", "--head"]) == 2
    err = capsys.readouterr().err
    assert "--head/--deface do not apply to polymicrogyria" in err
    assert len(err.strip().splitlines()) == 1
