"""FOMO26's NSD: area-weighted surface Dice (`nsd_area`) against DeepMind's `surface-distance`,
its empty-mask rules, and the multi-class Dice/NSD means (`multiclass_case_metrics`, area_nsd)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

from brainfoundry.evaluation.segmentation import (
    FOMO26_TOLERANCE_MM,
    multiclass_case_metrics,
    nsd,
    nsd_area,
    surfel_area_table,
)

SPACINGS = [(1.0, 1.0, 2.5), (0.5, 0.5, 0.5)]


def _library():
    import surface_distance  # the `dev` extra (PyPI surface-distance 0.1): missing is a failure

    return surface_distance


def _library_nsd(pred, truth, spacing, tol=FOMO26_TOLERANCE_MM) -> float:
    sd = _library()
    with warnings.catch_warnings():
        # 0.1 calls scipy.ndimage.filters / .morphology, deprecated namespaces
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # 0 / 0 when both are empty
        dists = sd.compute_surface_distances(truth, pred, spacing)  # truth first there
        return float(sd.compute_surface_dice_at_tolerance(dists, tol))


def _blob(shape, rng) -> np.ndarray:
    """A random smooth blob (possibly several pieces, possibly touching the border)."""
    x = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    return x > np.quantile(x, rng.uniform(0.6, 0.95))


def _pairs(n, shape=(18, 20, 14)):
    rng = np.random.default_rng(26)
    for i in range(n):
        truth = _blob(shape, rng)
        if i % 2:  # a nearby prediction: the truth grown or shrunk by a voxel, with speckle
            grown = ndimage.binary_dilation(truth) if i % 4 == 1 else ndimage.binary_erosion(truth)
            pred = grown ^ (rng.random(shape) < 0.03)
        else:  # an unrelated one
            pred = _blob(shape, rng)
        if not pred.any():
            pred[tuple(s // 2 for s in shape)] = True
        yield pred, truth


def test_surfel_areas_equal_the_library_table():
    """Our marching-cubes areas, built from the 2x2x2 patterns, equal the library's table for
    every one of the 256 patterns (its bit order is the reverse of ours)."""
    lookup = _library().lookup_tables
    reverse = np.array([int(f"{c:08b}"[::-1], 2) for c in range(256)])
    rng = np.random.default_rng(0)
    for spacing in [*SPACINGS, (1.0, 1.0, 1.0), *rng.uniform(0.2, 4.0, (5, 3))]:
        ref = lookup.create_table_neighbour_code_to_surface_area(spacing)[reverse]
        assert np.allclose(surfel_area_table(spacing), ref, rtol=0, atol=1e-12), spacing
    unit = surfel_area_table(1.0)
    assert unit[0] == unit[255] == 0.0
    assert unit[1] == pytest.approx(np.sqrt(3) / 8)  # one corner cut off: a triangle
    assert unit[0b00001111] == pytest.approx(1.0)  # a face of four corners: a unit square


@pytest.mark.parametrize("spacing", SPACINGS)
def test_matches_library_on_random_blobs(spacing):
    diffs, voxel_diffs = [], []
    for pred, truth in _pairs(10):
        ref = _library_nsd(pred, truth, spacing)
        diffs.append(abs(nsd_area(pred, truth, spacing, 1.0) - ref))
        voxel_diffs.append(abs(nsd(pred, truth, spacing, 1.0) - ref))
    # the FOMO26 bar is 1e-3; the surfels and distances are the library's, so only rounding differs
    assert max(diffs) < 1e-9
    assert max(voxel_diffs) > 1e-3  # the voxel-counted `nsd` is a different metric


def test_thin_and_border_structures_match_library():
    """One-voxel plates and lines, masks on the array border: every cube pattern class."""
    spacing = (1.0, 1.0, 2.5)
    a = np.zeros((10, 12, 8), bool)
    a[0, 2:9, 1:7] = True  # a plate on the border
    a[4:9, 5, 3] = True  # a line
    a[9, 11, 7] = True  # a lone corner voxel
    b = np.roll(a, 1, axis=1)
    b[3:6, 3:6, 0:3] = True
    for pred, truth in ((a, b), (b, a), (a, a)):
        for tol in (0.0, 1.0, 2.5):
            ref = _library_nsd(pred, truth, spacing, tol)
            assert nsd_area(pred, truth, spacing, tol) == pytest.approx(ref, abs=1e-9)


def test_empty_rules_and_checks():
    shape, spacing = (16, 12, 10), (1.0, 1.0, 2.5)
    empty = np.zeros(shape, bool)
    blob = np.zeros(shape, bool)
    blob[3:8, 4:9, 2:6] = True
    assert nsd_area(blob, blob, spacing) == 1.0
    # FOMO26's rules: both empty 0 (the library gives NaN there), one empty 0
    assert nsd_area(empty, empty, spacing) == 0.0
    assert np.isnan(_library_nsd(empty, empty, spacing))
    assert nsd_area(blob, empty, spacing) == 0.0 and nsd_area(empty, blob, spacing) == 0.0
    far = np.roll(blob, 7, axis=0)  # rows 10..14: the surfaces are 2 mm apart at the closest
    assert nsd_area(far, blob, spacing) == 0.0
    assert nsd_area(far, blob, spacing, tolerance_mm=20.0) == 1.0
    with pytest.raises(ValueError, match="3-D"):
        nsd_area(blob[0], blob[0], 1.0)
    with pytest.raises(ValueError, match="tolerance"):
        nsd_area(blob, blob, spacing, -1.0)
    with pytest.raises(ValueError, match="binary"):
        nsd_area(blob * 2, blob, spacing)


def test_multiclass_means_exclude_background_and_keep_the_quirk():
    spacing = (1.0, 1.0, 2.5)
    shape = (16, 16, 10)
    truth = np.zeros(shape, np.int64)
    truth[2:8, 2:8, 2:6] = 1
    truth[9:14, 9:14, 3:8] = 2
    truth[2:5, 10:14, 1:4] = 3
    pred = np.zeros_like(truth)
    pred[2:8, 3:9, 2:6] = 1  # shifted by one voxel
    pred[9:14, 9:14, 3:8] = 2  # exact
    # class 3 missed entirely; class 4 absent from both maps
    names = ["background", "c1", "c2", "c3", "c4"]
    out = multiclass_case_metrics(pred, truth, names, spacing, 1.0, area_nsd=True)
    assert {k for k in out if k.startswith("dice:")} == {f"dice:c{c}" for c in (1, 2, 3, 4)}
    d = {c: out[f"dice:c{c}"] for c in (1, 2, 3, 4)}  # background excluded
    n = {c: out[f"nsd_area:c{c}"] for c in (1, 2, 3, 4)}
    for c in (1, 2):
        assert n[c] == pytest.approx(_library_nsd(pred == c, truth == c, spacing))
        assert n[c] == nsd_area(pred == c, truth == c, spacing, 1.0)
    assert d[1] == pytest.approx(2 * 5 * 6 * 4 / (2 * 6 * 6 * 4))
    assert d[2] == 1.0 and n[2] == 1.0
    assert d[3] == 0.0 and n[3] == 0.0  # one empty
    assert d[4] == 1.0 and n[4] == 0.0  # both empty: FOMO26's quirk
    assert out["dice"] == pytest.approx(np.mean(list(d.values())))
    assert out["nsd_area"] == pytest.approx(np.mean(list(n.values())))
    # with one foreground class the means are that class's scores: label 0 never counts
    p1, t1 = pred.clip(0, 1), truth.clip(0, 1)
    two = multiclass_case_metrics(p1, t1, names[:2], spacing, 1.0, area_nsd=True)
    assert "dice:c1" not in two and two["nsd_area"] == nsd_area(p1 == 1, t1 == 1, spacing, 1.0)
    assert two["dice"] == pytest.approx(2 * (p1 & t1).sum() / (p1.sum() + t1.sum()))
    with pytest.raises(ValueError, match="lie in"):
        multiclass_case_metrics(pred, truth, names[:3], spacing)
    with pytest.raises(ValueError, match="shapes differ"):
        multiclass_case_metrics(pred, truth[:-1], names, spacing)
    with pytest.raises(ValueError, match="at least one class"):
        multiclass_case_metrics(pred, truth, names[:1], spacing)
