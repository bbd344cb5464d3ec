"""A scan in memory: a 3D float array in voxel order plus its voxel-to-world (RAS mm) affine.

`read_volume` reads NIfTI or a DICOM series folder and checks everything that makes a scan
unusable, raising `InputError` with one line naming the file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .checks import DEFAULT_LIMITS, Limits, check_min_axis, check_shape, to_float32


@dataclass
class Volume:
    data: np.ndarray  # [X, Y, Z] float32 (as read: the stored type), voxel order of the file
    affine: np.ndarray  # 4x4 voxel index -> world RAS millimetres
    path: str = ""

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


def is_nifti(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def read_volume(
    path: str | Path,
    series_uid: str | None = None,
    *,
    label: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> Volume:
    """Read a NIfTI file or a DICOM series folder, validated (see `validate`, `checks`).

    `label=True` accepts a constant volume (an empty mask is a valid negative case) and any
    number of voxels per axis (a label's grid is checked against its scan's), and refuses
    values beyond int16 (preprocessing rounds a label map into int16).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if p.is_dir():
        from .dicom import read_dicom_series

        vol = read_dicom_series(p, series_uid, limits)
    elif is_nifti(p):
        from .nifti import read_nifti

        vol = read_nifti(p, limits)
    else:
        raise InputError(p, "not a NIfTI file (.nii/.nii.gz) or a DICOM folder")
    return validate(vol, label=label, limits=limits)


def validate(vol: Volume, label: bool = False, limits: Limits = DEFAULT_LIMITS) -> Volume:
    """Reject what would silently poison training: a shape that is not one 3-D scan, degenerate
    geometry, voxels that are not real and finite or too large for float32 statistics, an empty
    image. Returns the volume as C-ordered float32."""
    a, p = vol.affine, vol.path
    shape = check_shape(p, vol.data.shape, limits)
    if not label:
        check_min_axis(p, shape, limits)
    _check_affine(p, a)
    d = to_float32(p, vol.data.reshape(shape), limits, label=label)
    if not label and not np.any(d != d.flat[0]):
        raise InputError(p, "image is empty (every voxel has the same value)")
    return Volume(d, a.astype(np.float64), p)


def _check_affine(p: str, a: np.ndarray) -> None:
    """A finite, non-singular affine with orthogonal axes (checks that overflow count as fails)."""
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise InputError(p, "affine is missing or not finite")
    m = a[:3, :3]
    with np.errstate(all="ignore"):
        det = abs(np.linalg.det(m))
        if not det >= 1e-6 * max(np.abs(m).max(), 1e-12) ** 3:
            raise InputError(p, "affine is singular (zero voxel size or collinear axes)")
        cols = m / np.linalg.norm(m, axis=0, keepdims=True)
        off = np.abs(cols.T @ cols - np.eye(3)).max()
    if not off <= 1e-2:
        raise InputError(p, f"affine axes are not orthogonal (sheared by {off:.3f}); reslice first")
