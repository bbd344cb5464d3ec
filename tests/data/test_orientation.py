"""Any affine orientation: the 48 axis permutations and flips of one scan, and oblique affines,
preprocess to the same arrays pointing at the same anatomy, and `restore` maps them back onto
the input's own grid (exactly for permutations and flips; for oblique ones exactly at the
native spacing, and after resampling exactly as the unrotated scan: the voxel grid is resampled,
never the world's axes)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from brainfoundry.data.preprocess import PreprocessConfig, preprocess_group, restore
from brainfoundry.io.volume import Volume
from tests.conftest import mni_small

CFG = PreprocessConfig(spacing=(4.0, 4.0, 4.0), normalization="none", dtype="float32")


def _scan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ~6 mm MNI152 brain (31×37×31) with one bright voxel (a landmark), its affine, label."""
    data, affine = mni_small()
    data = data.copy()
    data[12, 20, 15] = 3 * data.max()
    label = (data > np.percentile(data[data > 0], 80)).astype(np.float32)
    return data, affine, label


def _reorient(x: np.ndarray, perm: tuple[int, ...], flips: tuple[bool, ...]) -> np.ndarray:
    out = np.transpose(x, perm)
    for ax, f in enumerate(flips):
        if f:
            out = np.flip(out, ax)
    return np.ascontiguousarray(out)


def _reoriented_affine(affine, shape, perm, flips) -> np.ndarray:
    """The affine of `_reorient`'s array: new voxel index -> old index -> world."""
    vox = np.zeros((4, 4))
    vox[3, 3] = 1
    for new_ax, old_ax in enumerate(perm):
        n = shape[old_ax]
        vox[old_ax, new_ax] = -1.0 if flips[new_ax] else 1.0
        vox[old_ax, 3] = n - 1 if flips[new_ax] else 0.0
    return affine @ vox


ORIENTATIONS = [(p, f) for p in itertools.permutations(range(3))
                for f in itertools.product((False, True), repeat=3)]  # fmt: skip


def _landmark_world(img: np.ndarray, affine) -> np.ndarray:
    idx = np.unravel_index(int(np.argmax(img)), img.shape)
    return (np.asarray(affine) @ np.array([*idx, 1.0]))[:3]


def test_all_48_axis_orders_and_flips_round_trip_exactly():
    data, affine, label = _scan()
    base = preprocess_group([Volume(data, affine, "ras")], CFG, Volume(label, affine, "seg"))
    base_back = restore(base.images[0], base.geometry)
    assert len(ORIENTATIONS) == 48
    for perm, flips in ORIENTATIONS:
        d = _reorient(data, perm, flips)
        a = _reoriented_affine(affine, data.shape, perm, flips)
        seg = Volume(_reorient(label, perm, flips), a, "seg")
        pre = preprocess_group([Volume(d, a, "x")], CFG, seg)
        # one array in RAS whatever the storage order, at the same place in the world
        np.testing.assert_array_equal(pre.images[0], base.images[0])
        np.testing.assert_allclose(pre.geometry.affine, base.geometry.affine, atol=1e-9)
        np.testing.assert_allclose(
            _landmark_world(pre.images[0], pre.geometry.affine), _landmark_world(d, a), atol=3.0
        )
        # and back onto this input's own grid and affine, exactly
        assert np.array_equal(np.array(pre.geometry.orig_affine), a)
        back = restore(pre.images[0], pre.geometry)
        assert back.shape == d.shape
        np.testing.assert_array_equal(back, _reorient(base_back, perm, flips))
        lab = restore(pre.label, pre.geometry, is_label=True)
        np.testing.assert_array_equal(lab, restore(base.label, base.geometry, is_label=True)
                                      .transpose(perm)[tuple(slice(None, None, -1 if f else 1)
                                                             for f in flips)])  # fmt: skip


def _rotation(deg: float, axis: int) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(4)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


# (rotation of the world, then the array stored in another axis order): two oblique scans
OBLIQUE = {
    "20 deg about z": (_rotation(20, 2), (0, 1, 2), (False, False, False)),
    "30 deg about x, 15 about y, axes swapped and flipped": (
        _rotation(30, 0) @ _rotation(15, 1), (2, 0, 1), (True, False, True)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OBLIQUE))
def test_oblique_affines_come_back_on_their_own_grid(name):
    data, affine, label = _scan()
    rot, perm, flips = OBLIQUE[name]
    a = rot @ _reoriented_affine(affine, data.shape, perm, flips)
    data, label = _reorient(data, perm, flips), _reorient(label, perm, flips)
    vol, seg = Volume(data, a, "oblique"), Volume(label, a, "seg")
    # at the native spacing nothing is interpolated: the round trip is exact
    native = PreprocessConfig(spacing=vol.spacing, normalization="none", dtype="float32")
    pre = preprocess_group([vol], native, seg)
    assert np.array_equal(np.array(pre.geometry.orig_affine), a)
    back = restore(pre.images[0], pre.geometry)
    assert back.shape == data.shape and np.array_equal(back[back != 0], data[back != 0])
    np.testing.assert_array_equal(restore(pre.label, pre.geometry, is_label=True), label)
    np.testing.assert_allclose(
        _landmark_world(pre.images[0], pre.geometry.affine), _landmark_world(data, a), atol=1e-6
    )
    # resampled to 4 mm and back: the voxel grid is resampled, never the world's axes, so the
    # round trip is the unrotated scan's exactly, and close to the input on its own grid
    pre = preprocess_group([vol], CFG, seg)
    back = restore(pre.images[0], pre.geometry)
    plain = _scan()[0]
    ras = preprocess_group([Volume(plain, affine, "ras")], CFG)
    np.testing.assert_array_equal(
        back, _reorient(restore(ras.images[0], ras.geometry), perm, flips)
    )
    brain = (data > 0.1 * np.percentile(data, 99)) & (data < data.max())  # not the landmark
    assert back.shape == data.shape
    assert np.corrcoef(back[brain], data[brain])[0, 1] > 0.9  # 6 -> 4 -> 6 mm: 0.93
    lab = restore(pre.label, pre.geometry, is_label=True)
    assert (lab == label).mean() > 0.95
