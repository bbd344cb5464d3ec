"""Generated datasets on disk: layouts, labels, dataset.json, determinism, domain shift."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainfoundry.errors import ConfigError
from brainfoundry.io.layouts import discover
from brainfoundry.synth import SynthConfig, generate
from brainfoundry.synth.writers import pool_pids, pool_running, shutdown_pool

from .conftest import RES


def _make(tmp: Path, kind: str, **kw) -> tuple[Path, dict]:
    cfg = SynthConfig(kind=kind, resolution=kw.pop("resolution", RES), **kw)
    out = tmp / kind
    return out, generate(cfg, out)


def _load(p: Path) -> np.ndarray:
    return np.asarray(nib.load(str(p)).dataobj)


@pytest.fixture(scope="module")
def infarct(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("synth"), "infarct", n=6, n_test=6, seed=3)


def test_infarct_layout_labels_and_lesions(infarct):
    out, info = infarct
    assert info["splits"]["finetune"]["domain"] == "source"
    assert info["splits"]["test"]["domain"] == "clinical"
    for split, first in (("finetune", 1), ("test", 7)):
        layout, entries = discover(out / split)
        assert layout == "fomo-task"
        subjects = sorted({e.subject for e in entries}, key=lambda s: int(s.split("_")[1]))
        assert subjects == [f"sub_{i}" for i in range(first, first + 6)]
        labels = []
        for sub in subjects:
            ses = out / split / "preprocessed" / sub / "ses_1"
            names = sorted(p.name.removesuffix(".nii.gz") for p in ses.iterdir())
            assert {"flair", "dwi_b1000", "adc"} <= set(names) and len(names) == 4
            assert ("t2s" in names) != ("swi" in names)
            lab = out / split / "labels" / sub / "ses_1"
            label = int((lab / "label.txt").read_text())
            lesion = _load(lab / "lesion.nii.gz")
            assert lesion.dtype == np.uint8
            assert (label == 1) == bool(lesion.any())  # label 1 <=> a lesion voxel exists
            flair = nib.load(str(ses / "flair.nii.gz"))
            assert flair.shape == lesion.shape and flair.get_data_dtype() == np.int16
            assert np.allclose(flair.affine[:3, :3], np.diag([RES] * 3))  # RAS, isotropic
            assert (_load(ses / "flair.nii.gz")[lesion > 0] > 0).all()  # lesion is in the brain
            labels.append(label)
        assert 0 < sum(labels) < 6  # both classes in each split
        assert {e.modality for e in entries} <= {"flair", "dwi_b1000", "adc", "t2s", "swi"}


def test_dataset_json_describes_generator_and_cases(infarct):
    out, info = infarct
    on_disk = json.loads((out / "dataset.json").read_text())
    assert on_disk["generator"] == "brainfoundry.synth" and on_disk["generator_version"]
    assert on_disk["seed"] == 3 and on_disk["config"]["kind"] == "infarct"
    assert on_disk["config"]["resolution"] == RES
    assert len(on_disk["cases"]) == 12
    split = json.loads((out / "test" / "dataset.json").read_text())
    assert split["split"] == "test" and len(split["cases"]) == 6
    assert all(c["shift"] == 1.0 for c in split["cases"])
    assert (out / "qc" / "finetune.png").stat().st_size > 10_000
    assert (out / "qc" / "test.png").exists()


def test_meningioma_masks_and_brainage_labels(tmp_path):
    out, _ = _make(tmp_path, "meningioma", n=3, n_test=2, seed=1, qc=False)
    for seg in sorted((out / "finetune" / "labels").glob("sub_*/ses_1/seg.nii.gz")):
        m = _load(seg)
        assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 1}
        flair = _load(
            seg.parents[3] / "preprocessed" / seg.parent.parent.name / "ses_1" / "flair.nii.gz"
        )
        assert flair.shape == m.shape and (flair[m > 0] > 0).all()
    assert not (out / "qc").exists()
    out, info = _make(tmp_path, "brainage", n=4, n_test=4, seed=2, qc=False)
    _, entries = discover(out / "test")
    ages = [e.label for e in entries]
    assert all(18.0 <= a <= 90.0 for a in ages)
    assert {e.modality for e in entries} == {"t1", "t2"}


def test_pretraining_corpus_is_fomo60k(tmp_path):
    out, info = _make(tmp_path, "pretrain", n=6, seed=4)
    layout, entries = discover(out)
    assert layout == "fomo60k"
    assert info["scans"] == len(entries) and info["subjects"] == 6
    assert all(e.modality is not None for e in entries)  # every file name is canonical
    assert (out / "qc" / "pretrain.png").exists()


def _signature(root: Path) -> dict:
    sig = {}
    for p in sorted(root.rglob("*")):
        if p.suffix == ".gz":
            sig[str(p.relative_to(root))] = _load(p).tobytes()
        elif p.suffix in (".txt", ".json"):
            sig[str(p.relative_to(root))] = p.read_bytes()
    return sig


def test_identical_seed_gives_identical_output(tmp_path):
    a, _ = _make(tmp_path / "a", "infarct", n=2, n_test=2, seed=9, qc=False)
    b, _ = _make(tmp_path / "b", "infarct", n=2, n_test=2, seed=9, qc=False)
    c, _ = _make(tmp_path / "c", "infarct", n=2, n_test=2, seed=10, qc=False)
    sa, sb, sc = _signature(a), _signature(b), _signature(c)
    assert sa == sb
    assert sa != sc


@pytest.mark.slow
def test_worker_count_does_not_change_the_output(tmp_path):
    a, _ = _make(tmp_path / "a", "meningioma", n=2, n_test=2, seed=5, qc=False)
    b, _ = _make(tmp_path / "b", "meningioma", n=2, n_test=2, seed=5, qc=False, workers=2)
    assert _signature(a) == _signature(b)
    assert pool_running() and pool_pids()  # the workers are kept for the next call
    shutdown_pool()
    assert not pool_running() and pool_pids() == []


def _hf_noise(img: np.ndarray, axis: int) -> float:
    """Median absolute neighbour difference inside the brain, relative to the median signal."""
    d = np.abs(np.diff(img.astype(np.float64), axis=axis))
    inside = (np.delete(img, -1, axis) > 0) & (np.delete(img, 0, axis) > 0)
    return float(np.median(d[inside]) / np.median(img[img > 0]))


def test_clinical_split_differs_measurably_from_source(tmp_path):
    """Clinical T2 is a stack of thick axial slices: far less texture along z than along x."""
    out, _ = _make(tmp_path, "brainage", n=4, n_test=4, seed=6, qc=False, resolution=3.0)
    ratio = {}
    for split in ("finetune", "test"):
        files = sorted((out / split / "preprocessed").glob("sub_*/ses_1/t2.nii.gz"))
        ratio[split] = [_hf_noise(_load(f), 2) / _hf_noise(_load(f), 0) for f in files]
    assert len(ratio["test"]) == 4
    assert max(ratio["test"]) < min(ratio["finetune"])
    assert np.mean(ratio["test"]) < 0.9 * np.mean(ratio["finetune"])


@pytest.mark.slow
def test_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    # the worker pool is kept between `generate` calls and stopped at exit; a parent killed by
    # a signal runs no exit handler, so each worker watches its parent and ends with it
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import os, sys, time\n"
        "from brainfoundry.synth import SynthConfig, generate\n"
        "from brainfoundry.synth.writers import pool_pids\n"
        f"cfg = SynthConfig(kind='brainage', n=2, n_test=None, resolution={RES}, seed=1, "
        "qc=False, workers=2)\n"
        f"generate(cfg, {str(tmp_path / 'out')!r}, progress=False)\n"
        "print(*pool_pids(), flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def alive(pid: int) -> bool:  # a zombie (exited, not yet reaped) counts as gone
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(alive(p) for p in pids)


def test_shift_parts_leave_the_other_parts_at_the_source_domain(tmp_path):
    """An ablation set shifted in pose only keeps research acquisition (no thick slices) and
    full coverage; the default shift moves both."""
    full, _ = _make(tmp_path / "full", "brainage", n=1, n_test=3, seed=6, qc=False)
    pose, _ = _make(
        tmp_path / "pose", "brainage", n=1, n_test=3, seed=6, qc=False, shift_parts=("pose",)
    )

    def cases(out: Path) -> list[dict]:
        return json.loads((out / "test" / "dataset.json").read_text())["cases"]

    def thick(rec: dict) -> bool:
        return any(a["slice_mm"] > a["inplane_mm"] for a in rec["acquisition"].values())

    assert any(thick(r) for r in cases(full))
    assert not any(thick(r) for r in cases(pose))
    assert json.loads((pose / "dataset.json").read_text())["config"]["shift_parts"] == ["pose"]
    with pytest.raises(ConfigError, match="--shift-parts \\['noise'\\] unknown"):
        SynthConfig(kind="brainage", shift_parts=("noise",)).validate()
