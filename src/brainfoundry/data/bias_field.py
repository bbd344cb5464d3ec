"""N4 bias-field correction (Tustison et al. 2010, SimpleITK's implementation), an optional
preprocessing step (`preprocess.bias_correct=n4`).

Why: a receive coil's smooth multiplicative gain makes one tissue brighter on one side of the
head. A per-scan normalisation (z-score or quantile) cannot undo a spatial gain; N4 fits it as a
smooth B-spline field in log space within the foreground and divides it out. It runs on the
resampled grid, before normalisation, each scan on its own: the field is fitted on a grid
shrunk to about 8 mm (its B-spline is smooth, so the fit needs no finer voxels) and applied at
full resolution. Measured on the MNI152 T1 at 4 mm times a known field (log sd 0.17): fitted at
8 mm with 30/30/20 iterations, RMS log error 0.037 in 1.2 s; at 4 mm with 50/50/30, 0.041 in
11.7 s (both on a loaded 2-core machine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InputError

FIT_SPACING_MM = 8.0  # the grid the field is fitted on (at most this coarse)
ITERATIONS = (30, 30, 20)  # per fitting level, coarse to fine (3 levels of the B-spline)
MIN_VOXELS = 64  # fewer positive foreground voxels than this cannot constrain a field


def n4_correct(
    data: np.ndarray, mask: np.ndarray, spacing: Sequence[float], path: str = "scan"
) -> tuple[np.ndarray, float]:
    """(the image divided by its fitted bias field, the field's spread: the ratio of its 95th
    to 5th percentile within the mask, 1.0 = flat). Voxels outside the mask are divided by
    the field too (it is defined everywhere), so the image stays smooth across the edge."""
    import SimpleITK as sitk

    fit = mask & (data > 0)  # N4 works on log intensities: only positive voxels inform it
    if int(fit.sum()) < MIN_VOXELS:
        raise InputError(path, f"bias correction: {int(fit.sum())} positive foreground voxels, "
                         f"too few to fit a field (need {MIN_VOXELS})")  # fmt: skip
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0), np.float32))
    img.SetSpacing([float(s) for s in spacing])
    msk = sitk.GetImageFromArray(np.ascontiguousarray(fit.transpose(2, 1, 0), np.uint8))
    msk.CopyInformation(img)
    shrink = [max(1, math.floor(FIT_SPACING_MM / float(s))) for s in spacing]
    small, small_mask = sitk.Shrink(img, shrink), sitk.Shrink(msk, shrink)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(ITERATIONS))
    n4.SetNumberOfThreads(1)  # prepare runs one scan per worker process
    n4.Execute(small, small_mask)
    log_field = sitk.GetArrayFromImage(n4.GetLogBiasFieldAsImage(img)).transpose(2, 1, 0)
    field = np.exp(log_field.astype(np.float64))
    lo, hi = np.percentile(field[fit], [5, 95])
    return (data / field).astype(np.float32), float(hi / lo)
