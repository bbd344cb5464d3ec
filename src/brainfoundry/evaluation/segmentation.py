"""Per-case segmentation metrics on binary masks: Dice, NSD (surface Dice) and HD95, in mm.

Arguments follow MONAI's order, prediction first: `metric(pred_mask, true_mask, spacing)`.
`spacing` is the voxel size in mm per array axis (a scalar for isotropic voxels); distances are
physical, so anisotropic voxels are handled exactly. A surface is the set of mask voxels with a
background face-neighbour (the mask minus its erosion by the face-connected cross, with the
array's border counting as background), the same definition as MONAI's `get_mask_edges`.

Edge cases, decided once and used everywhere:

| pred / truth    | dice | nsd | hd95                                         |
|-----------------|------|-----|----------------------------------------------|
| both empty      | 1.0  | 1.0 | 0.0 (perfect agreement that nothing is there) |
| one empty       | 0.0  | 0.0 | the image diagonal in mm (the largest         |
|                 |      |     | distance the grid allows, as BraTS does)      |

so means over cases stay finite and an empty prediction of a present lesion is penalised.
MONAI returns NaN/inf in these cases; the tests compare only where both are defined.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .metrics import METRICS

Spacing = float | Sequence[float] | None

DEFAULT_TOLERANCE_MM = 2.0


def _masks(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, truth {truth.shape}")
    for name, m in (("prediction", pred), ("truth", truth)):
        if m.dtype != bool and not np.isin(m, (0, 1)).all():
            raise ValueError(f"{name} mask must be binary {{0, 1}}; threshold it first")
    return pred.astype(bool), truth.astype(bool)


def _spacing(spacing: Spacing, ndim: int) -> np.ndarray:
    if spacing is None:
        return np.ones(ndim)
    s = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (ndim,)).copy()
    if (s <= 0).any():
        raise ValueError(f"voxel spacing must be positive, got {tuple(s)}")
    return s


def image_diagonal_mm(shape: Sequence[int], spacing: Spacing = None) -> float:
    """Length of the image's diagonal in mm: the HD95 given when exactly one mask is empty."""
    return float(np.linalg.norm(np.asarray(shape) * _spacing(spacing, len(shape))))


def surface(mask: np.ndarray) -> np.ndarray:
    """Mask voxels that touch the background (or the array border) through a face."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def surface_distances(pred, truth, spacing: Spacing = None) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each prediction surface voxel to the nearest truth surface voxel,
    and from each truth surface voxel to the prediction surface. Both masks must be non-empty.
    """
    pred, truth = _masks(pred, truth)
    if not pred.any() or not truth.any():
        raise ValueError("surface distances need two non-empty masks")
    s = _spacing(spacing, pred.ndim)
    # crop to the union's bounding box plus one voxel: exact, and far cheaper on whole brains
    coords = np.argwhere(pred | truth)
    lo = np.maximum(coords.min(0) - 1, 0)
    hi = coords.max(0) + 2
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    sp, st = surface(pred[box]), surface(truth[box])
    to_truth = ndimage.distance_transform_edt(~st, sampling=s)
    to_pred = ndimage.distance_transform_edt(~sp, sampling=s)
    return to_truth[sp], to_pred[st]


@METRICS.register("dice")
def dice(pred, truth) -> float:
    """Dice = 2|P ∩ T| / (|P| + |T|); 1.0 when both masks are empty (nothing to find, nothing
    found), 0.0 when exactly one is."""
    pred, truth = _masks(pred, truth)
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int((pred & truth).sum()) / total


def _nsd(d_pt: np.ndarray, d_tp: np.ndarray, tolerance_mm: float) -> float:
    ok = int((d_pt <= tolerance_mm).sum()) + int((d_tp <= tolerance_mm).sum())
    return ok / (d_pt.size + d_tp.size)


def _hd95(d_pt: np.ndarray, d_tp: np.ndarray) -> float:
    return float(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95)))


@METRICS.register("nsd")
def nsd(pred, truth, spacing: Spacing = None, tolerance_mm: float = DEFAULT_TOLERANCE_MM):
    """Normalised surface distance (surface Dice, Nikolov et al. 2021) at `tolerance_mm`.

    The fraction of both surfaces (counted in voxels) lying within `tolerance_mm` of the other
    surface: (|{p: d(p,T) <= tol}| + |{t: d(t,P) <= tol}|) / (|∂P| + |∂T|). Matches MONAI's
    `compute_surface_dice(use_subvoxels=False)`; DeepMind's version weights by surfel area
    instead, which differs slightly on curved surfaces. Both empty: 1.0; one empty: 0.0.
    """
    if tolerance_mm < 0:
        raise ValueError(f"NSD tolerance must be >= 0 mm, got {tolerance_mm}")
    pred, truth = _masks(pred, truth)
    if not pred.any() or not truth.any():
        return float(pred.any() == truth.any())
    return _nsd(*surface_distances(pred, truth, spacing), tolerance_mm)


@METRICS.register("hd95")
def hd95(pred, truth, spacing: Spacing = None) -> float:
    """95th-percentile symmetric Hausdorff distance in mm.

    The larger of the two directed 95th percentiles of surface distances (prediction → truth,
    truth → prediction), with linear interpolation between order statistics, as MONAI's
    `compute_hausdorff_distance(percentile=95)`. Both empty: 0.0; one empty: the image diagonal
    in mm (`image_diagonal_mm`), a finite worst case so means over cases stay defined.
    """
    pred, truth = _masks(pred, truth)
    if not pred.any() and not truth.any():
        return 0.0
    if not pred.any() or not truth.any():
        return image_diagonal_mm(pred.shape, spacing)
    return _hd95(*surface_distances(pred, truth, spacing))


def segmentation_case_metrics(
    pred_mask, true_mask, spacing: Spacing = None, tolerance_mm: float = DEFAULT_TOLERANCE_MM
) -> dict[str, float]:
    """Dice, NSD and HD95 of one case, sharing one pair of distance transforms.

    Returns `{"dice", "nsd", "hd95"}`, the per-case columns of a segmentation predictions table.
    """
    pred, truth = _masks(pred_mask, true_mask)
    if not pred.any() or not truth.any():
        return {
            "dice": dice(pred, truth),
            "nsd": nsd(pred, truth, spacing, tolerance_mm),
            "hd95": hd95(pred, truth, spacing),
        }
    d_pt, d_tp = surface_distances(pred, truth, spacing)
    return {
        "dice": dice(pred, truth),
        "nsd": _nsd(d_pt, d_tp, tolerance_mm),
        "hd95": _hd95(d_pt, d_tp),
    }
