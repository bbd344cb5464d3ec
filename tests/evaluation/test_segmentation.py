"""Dice, NSD and HD95: hand-computed cases, the empty-mask rules, and MONAI as a cross-check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from brainfoundry.evaluation.segmentation import (
    dice,
    hd95,
    image_diagonal_mm,
    nsd,
    segmentation_case_metrics,
    surface_distances,
)


def _blob(shape, centre, radii, seed=0, noise=0.0):
    """An ellipsoid, optionally with a bumpy boundary, as a boolean mask."""
    grid = np.indices(shape, dtype=np.float64)
    r = sum(((g - c) / rr) ** 2 for g, c, rr in zip(grid, centre, radii))
    if noise:
        r = r + noise * ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), 2)
    return r <= 1.0


def test_dice_hand_computed_and_empty_rules():
    a = np.zeros((4, 4, 4), bool)
    b = a.copy()
    a[0, 0, :3] = True  # 3 voxels
    b[0, 0, 1:] = True  # 3 voxels, 2 shared
    assert dice(a, b) == pytest.approx(2 * 2 / 6)
    assert dice(a, a) == 1.0
    empty = np.zeros_like(a)
    assert dice(empty, empty) == 1.0  # empty ∧ empty: agreement that nothing is there
    assert dice(a, empty) == 0.0 and dice(empty, a) == 0.0


def test_surface_distances_shifted_plate_anisotropic():
    """A one-voxel-thick plate (all surface) shifted by one voxel: hand-computable distances."""
    truth = np.zeros((8, 12, 12), bool)
    truth[3, 3:8, 3:8] = True  # 25 voxels, every one on the surface
    spacing = (3.0, 1.0, 0.5)
    # one step along the 3-mm axis: every voxel is exactly 3 mm from the other plate (a diagonal
    # neighbour is sqrt(9 + 1) mm away)
    pred = np.roll(truth, 1, axis=0)
    d_pt, d_tp = surface_distances(pred, truth, spacing)
    assert np.allclose(d_pt, 3.0) and np.allclose(d_tp, 3.0) and d_pt.size == 25
    assert nsd(pred, truth, spacing, tolerance_mm=2.0) == 0.0
    assert nsd(pred, truth, spacing, tolerance_mm=3.0) == 1.0  # tolerance is inclusive
    assert hd95(pred, truth, spacing) == pytest.approx(3.0)
    assert dice(pred, truth) == 0.0
    # one step along the 0.5-mm axis: 20 of 25 voxels overlap, 5 are 0.5 mm off
    pred = np.roll(truth, 1, axis=2)
    d_pt, d_tp = surface_distances(pred, truth, spacing)
    assert sorted(np.round(d_pt, 9)) == [0.0] * 20 + [0.5] * 5
    assert nsd(pred, truth, spacing, tolerance_mm=0.25) == pytest.approx(40 / 50)
    assert nsd(pred, truth, spacing, tolerance_mm=0.5) == 1.0
    # 95th percentile of twenty 0s and five 0.5s (linear interpolation) is 0.5
    assert hd95(pred, truth, spacing) == pytest.approx(0.5)
    assert dice(pred, truth) == pytest.approx(2 * 20 / 50)


def test_empty_mask_rules():
    shape, spacing = (10, 20, 30), (1.0, 2.0, 0.5)
    empty = np.zeros(shape, bool)
    blob = _blob(shape, (5, 10, 15), (3, 4, 6))
    diag = np.sqrt(10**2 + 40**2 + 15**2)
    assert image_diagonal_mm(shape, spacing) == pytest.approx(diag)
    both = segmentation_case_metrics(empty, empty, spacing)
    assert both == {"dice": 1.0, "nsd": 1.0, "hd95": 0.0}
    for pred, truth in ((empty, blob), (blob, empty)):
        one = segmentation_case_metrics(pred, truth, spacing)
        assert one["dice"] == 0.0 and one["nsd"] == 0.0
        assert one["hd95"] == pytest.approx(diag)


def test_perfect_and_far_apart():
    shape = (20, 20, 20)
    a = _blob(shape, (5, 5, 5), (3, 3, 3))
    assert segmentation_case_metrics(a, a, 1.0) == {"dice": 1.0, "nsd": 1.0, "hd95": 0.0}
    b = np.roll(a, 10, axis=0)  # disjoint, 10 mm apart
    m = segmentation_case_metrics(b, a, 1.0, tolerance_mm=2.0)
    assert m["dice"] == 0.0 and m["nsd"] == 0.0 and m["hd95"] >= 4.0


def test_crop_is_exact_and_inputs_checked():
    """Cropping to the union's bounding box must not change any distance (mask on the border)."""
    a = np.zeros((16, 16, 16), bool)
    a[0:6, 4:9, 2:12] = True
    b = _blob((16, 16, 16), (4, 7, 8), (4, 3, 5))
    s = (1.2, 0.8, 2.0)
    d_pt, d_tp = surface_distances(a, b, s)
    from brainfoundry.evaluation.segmentation import surface

    sa, sb = surface(a), surface(b)
    full_pt = ndimage.distance_transform_edt(~sb, sampling=s)[sa]
    full_tp = ndimage.distance_transform_edt(~sa, sampling=s)[sb]
    assert np.allclose(np.sort(d_pt), np.sort(full_pt))
    assert np.allclose(np.sort(d_tp), np.sort(full_tp))
    with pytest.raises(ValueError, match="shapes differ"):
        dice(a, a[:-1])
    with pytest.raises(ValueError, match="binary"):
        dice(a * 2, a)


def _random_pairs():
    shape = (28, 30, 24)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        c = rng.uniform(9, 15, 3)
        r = rng.uniform(4, 8, 3)
        truth = _blob(shape, c, r, seed=seed, noise=1.0)
        pred = _blob(shape, c + rng.normal(0, 1.5, 3), r * rng.uniform(0.7, 1.3, 3), seed + 9, 1.0)
        yield truth, pred


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (1.0, 0.7, 3.0)])
def test_matches_monai(spacing):
    monai_metrics = pytest.importorskip("monai.metrics")
    import torch

    for truth, pred in _random_pairs():
        assert truth.any() and pred.any()
        y_pred = torch.from_numpy(pred[None, None].astype(np.float32))
        y = torch.from_numpy(truth[None, None].astype(np.float32))
        ref_dice = monai_metrics.compute_dice(y_pred, y, include_background=True).item()
        ref_hd = monai_metrics.compute_hausdorff_distance(
            y_pred, y, include_background=True, percentile=95, spacing=list(spacing)
        ).item()
        mine = segmentation_case_metrics(pred, truth, spacing, tolerance_mm=1.5)
        assert mine["dice"] == pytest.approx(ref_dice, abs=1e-6)
        assert mine["hd95"] == pytest.approx(ref_hd, rel=1e-5)
        for tol in (0.5, 1.5, 2.5):
            ref_nsd = monai_metrics.compute_surface_dice(
                y_pred, y, class_thresholds=[tol], include_background=True, spacing=list(spacing)
            ).item()
            assert nsd(pred, truth, spacing, tolerance_mm=tol) == pytest.approx(ref_nsd, abs=1e-6)
