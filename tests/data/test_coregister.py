"""Within-session co-registration (`data.coregister`): a known 5 mm / 5° misalignment between two
contrasts of real anatomy is recovered to within 1 mm / 1°, the moved scan lands on the
reference grid, a registration that is not believable is one line naming the file, and a
session already on one grid is left exactly as it was."""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest

from brainfoundry.data.coregister import (
    align_session,
    onto_reference,
    register_rigid,
    resample_onto,
)
from brainfoundry.data.prepare import PrepareConfig, prepare
from brainfoundry.data.preprocess import PreprocessConfig, preprocess_group
from brainfoundry.data.store import Store
from brainfoundry.errors import ConfigError, InputError
from brainfoundry.io.volume import Volume
from tests.conftest import save


def _block(x: np.ndarray, affine: np.ndarray, k: tuple[int, int, int]):
    """Block means of `k` voxels, with the affine of the coarser grid."""
    kk = np.array(k)
    n = np.array(x.shape) // kk
    x = x[: n[0] * k[0], : n[1] * k[1], : n[2] * k[2]]
    y = x.reshape(n[0], k[0], n[1], k[1], n[2], k[2]).mean(axis=(1, 3, 5))
    a = affine.copy()
    a[:3, :3] = affine[:3, :3] * kk
    a[:3, 3] = affine[:3, :3] @ ((kk - 1) / 2) + affine[:3, 3]
    return y.astype(np.float32), a


@functools.cache
def _contrasts():
    """A T1 on a 4 mm grid and a FLAIR-like contrast (CSF dark, grey over white) of the same
    anatomy on a 4×4×6 mm grid, both from the MNI152 tissue maps."""
    from brainfoundry.synth.anatomy import load_mni152

    d, affine = load_mni152()
    csf = np.clip(d["mask"] - d["gm"] - d["wm"], 0, 1)
    flair = (0.9 * d["gm"] + 0.55 * d["wm"] + 0.1 * csf) * d["mask"]
    t1, fa = _block(d["t1"] * d["mask"], affine, (4, 4, 4))
    fl, ma = _block(flair, affine, (4, 4, 6))
    fl_ref, _ = _block(flair, affine, (4, 4, 4))
    return t1, fa, fl, ma, fl_ref


def _motion(deg: float, mm: float, centre: np.ndarray) -> np.ndarray:
    """A rigid motion (RAS) of `deg` about an oblique axis through `centre`, and `mm`."""
    from scipy.spatial.transform import Rotation

    axis = np.array([1.0, 2.0, 3.0]) / math.sqrt(14)
    rot = Rotation.from_rotvec(math.radians(deg) * axis).as_matrix()
    shift = np.array([3.0, 4.0, 0.0]) * mm / 5.0
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, centre + shift - rot @ centre
    return m


def _pair(deg: float, mm: float):
    """(reference T1, FLAIR moved by the motion, the motion, brain mask of the T1)."""
    t1, fa, fl, ma, _ = _contrasts()
    brain = t1 > 0.1
    centre = fa[:3, :3] @ np.argwhere(brain).mean(0) + fa[:3, 3]
    m = _motion(deg, mm, centre)
    # the FLAIR's header places its anatomy moved by m: the registration must find m
    return Volume(t1, fa, "t1.nii.gz"), Volume(fl, m @ ma, "flair.nii.gz"), m, brain


def _residual(truth: np.ndarray, found: np.ndarray, brain: np.ndarray, affine: np.ndarray):
    """(rotation error in degrees, largest displacement error over the brain in mm)."""
    err = np.linalg.inv(truth) @ found
    deg = math.degrees(math.acos(np.clip((np.trace(err[:3, :3]) - 1) / 2, -1, 1)))
    pts = np.c_[np.argwhere(brain), np.ones(int(brain.sum()))] @ affine.T
    return deg, float(np.linalg.norm(pts @ err.T - pts, axis=1).max())


def test_a_5mm_5deg_misalignment_is_recovered_to_1mm_1deg():
    ref, moving, truth, brain = _pair(5.0, 5.0)
    reg = register_rigid(ref, moving)
    assert abs(reg.translation_mm - 5.0) < 1.0 and abs(reg.rotation_deg - 5.0) < 1.0
    deg, mm = _residual(truth, reg.transform, brain, ref.affine)
    assert deg < 1.0 and mm < 1.0, (deg, mm)  # measured: 0.07°, 0.46 mm (max over the brain)
    assert reg.metric_final < reg.metric_initial and not reg.kept_headers
    assert reg.iterations > 0 and "rigid registration moved it 5." in reg.summary()
    # the moved FLAIR, resampled onto the T1's grid, is the FLAIR drawn on that grid
    on_ref = resample_onto(moving, ref, reg.transform, "linear")
    assert on_ref.shape == ref.shape and np.array_equal(on_ref.affine, ref.affine)
    want = _contrasts()[4]
    assert np.corrcoef(on_ref.data[brain], want[brain])[0, 1] > 0.95


@pytest.mark.parametrize(("deg", "mm"), [(0.0, 40.0), (30.0, 0.0)])
def test_implausible_motion_is_one_line_naming_the_file(deg, mm):
    ref, moving, _, _ = _pair(deg, mm)
    with pytest.raises(InputError, match="more than a session allows|did not converge") as e:
        register_rigid(ref, moving)
    msg = str(e.value)
    assert msg.startswith("flair.nii.gz: rigid registration onto t1.nii.gz") and "\n" not in msg


def test_registering_noise_is_refused():
    ref, moving, _, _ = _pair(0.0, 0.0)
    noise = np.random.default_rng(0).random(moving.shape).astype(np.float32)
    with pytest.raises(InputError, match="did not converge|share almost no structure") as e:
        register_rigid(ref, Volume(noise, moving.affine, "noise.nii.gz"))
    assert str(e.value).startswith("noise.nii.gz: ")


def test_headers_that_already_align_are_kept():
    ref, moving, _, _ = _pair(0.0, 0.0)
    reg = register_rigid(ref, moving)
    # either the registration found (almost) nothing to correct, or it kept the headers'
    assert reg.translation_mm < 0.5 and reg.rotation_deg < 0.5
    if reg.kept_headers:
        assert np.array_equal(reg.transform, np.eye(4)) and "kept the headers'" in reg.summary()


def test_modes_on_one_grid_and_on_another():
    t1, fa, _, _, fl_ref = _contrasts()
    ref, same = Volume(t1, fa, "t1"), Volume(fl_ref, fa, "flair")
    # auto and header leave a scan on the reference grid untouched (the same object)
    for mode in ("auto", "header", "off"):
        assert onto_reference(ref, same, mode) == (same, None)
    moved, note = onto_reference(ref, same, "rigid")  # rigid registers it all the same
    assert moved.shape == ref.shape and note is not None and "rigid registration" in note
    # another grid: off refuses, header resamples by the headers alone, auto registers
    coarse, ca = _block(fl_ref, fa, (1, 1, 2))
    other = Volume(coarse, ca, "flair_thick")
    with pytest.raises(InputError, match="not co-registered"):
        onto_reference(ref, other, "off")
    by_header, note = onto_reference(ref, other, "header")
    assert by_header.shape == ref.shape and "by the headers (no registration)" in note
    brain = t1 > 0.1
    assert np.corrcoef(by_header.data[brain], fl_ref[brain])[0, 1] > 0.9  # 8 mm slabs: 0.94
    vols, notes = align_session([ref, other], "auto")
    assert vols[0] is ref and vols[1].shape == ref.shape and len(notes) == 1
    assert notes[0].startswith("flair_thick: grid ")
    with pytest.raises(ConfigError, match="preprocess.coregister 'always'"):
        PreprocessConfig(coregister="always")  # type: ignore[arg-type]


def test_preprocess_group_brings_a_moved_scan_onto_the_reference_grid():
    ref, moving, _, brain = _pair(5.0, 5.0)
    cfg = PreprocessConfig(spacing=(4.0, 4.0, 4.0), crop_foreground=False)
    pre = preprocess_group([ref, moving], cfg)
    assert pre.images[0].shape == pre.images[1].shape == ref.shape
    assert len(pre.warnings) == 1 and pre.warnings[0].startswith("flair.nii.gz: grid ")
    a, b = (im.astype(np.float32)[brain] for im in pre.images)
    want = _contrasts()[4][brain]
    assert np.corrcoef(b, want)[0, 1] > 0.95 and np.corrcoef(a, b)[0, 1] < 0.99
    same = preprocess_group([ref, Volume(_contrasts()[4], ref.affine, "f")], cfg)
    assert same.warnings == []  # a session on one grid: nothing registered, nothing said


def test_prepare_registers_a_session_on_two_grids_and_keeps_old_plans(tmp_path):
    ref, moving, _, _ = _pair(4.0, 3.0)
    raw = tmp_path / "fomo-60k"
    ses = raw / "sub_1" / "ses_1"
    save(ses / "t1.nii.gz", ref.data, ref.affine)
    save(ses / "flair.nii.gz", moving.data, moving.affine)
    cfg = PrepareConfig(preprocess=PreprocessConfig(spacing=(8.0, 8.0, 8.0)))
    res = prepare(raw, tmp_path / "store", cfg, progress=False, log=lambda _: None)
    assert res.errors == [] and res.n_scans == 2
    (warning,) = res.warnings  # the scan that is not the reference, moved onto its grid
    assert warning["path"] in (str(ses / "flair.nii.gz"), str(ses / "t1.nii.gz"))
    assert "rigid registration moved it" in warning["warning"]
    m = Store(tmp_path / "store").manifest
    assert m["group"].nunique() == 1 and len({tuple(s) for s in m["shape"]}) == 1
    # a plan written before the settings existed (co-registration, bias correction) is still
    # this recipe
    plan = tmp_path / "store" / "plan.json"
    old = json.loads(plan.read_text())
    del old["preprocess"]["coregister"], old["preprocess"]["bias_correct"]
    plan.write_text(json.dumps(old))
    again = prepare(raw, tmp_path / "store", cfg, progress=False, log=lambda _: None)
    assert again.n_skipped == 1
