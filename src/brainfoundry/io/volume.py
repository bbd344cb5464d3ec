"""A scan in memory: a 3D float array in voxel order plus its voxel-to-world (RAS mm) affine.

`read_volume` reads NIfTI or a DICOM series folder and checks everything that makes a scan
unusable, raising `InputError` with one line naming the file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError


@dataclass
class Volume:
    data: np.ndarray  # [X, Y, Z] float32, voxel order of the file
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


def read_volume(path: str | Path, series_uid: str | None = None, *, label: bool = False) -> Volume:
    """Read a NIfTI file or a DICOM series folder, validated (see `validate`).

    `label=True` accepts a constant volume (an empty mask is a valid negative case).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if p.is_dir():
        from .dicom import read_dicom_series

        vol = read_dicom_series(p, series_uid)
    elif is_nifti(p):
        from .nifti import read_nifti

        vol = read_nifti(p)
    else:
        raise InputError(p, "not a NIfTI file (.nii/.nii.gz) or a DICOM folder")
    return validate(vol, allow_constant=label)


def validate(vol: Volume, allow_constant: bool = False) -> Volume:
    """Reject what would silently poison training: NaN/Inf, empty, 4D, degenerate geometry."""
    d, a, p = vol.data, vol.affine, vol.path
    if d.ndim == 4 and d.shape[3] == 1:
        d = d[..., 0]
    if d.ndim == 4:
        raise InputError(p, f"4D image with {d.shape[3]} volumes; give one 3D volume per file")
    if d.ndim != 3:
        raise InputError(p, f"expected a 3D image, got {d.ndim}D with shape {d.shape}")
    if min(d.shape) == 0:
        raise InputError(p, f"image has a zero-size dimension {d.shape}")
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise InputError(p, "affine is missing or not finite")
    m = a[:3, :3]
    if abs(np.linalg.det(m)) < 1e-6 * max(np.abs(m).max(), 1e-12) ** 3:
        raise InputError(p, "affine is singular (zero voxel size or collinear axes)")
    cols = m / np.linalg.norm(m, axis=0, keepdims=True)
    off = np.abs(cols.T @ cols - np.eye(3)).max()
    if off > 1e-2:
        raise InputError(p, f"affine axes are not orthogonal (sheared by {off:.3f}); reslice first")
    if not np.all(np.isfinite(d)):
        bad = int((~np.isfinite(d)).sum())
        raise InputError(p, f"{bad} voxels are NaN or Inf")
    if not allow_constant and not np.any(d != d.flat[0]):
        raise InputError(p, "image is empty (every voxel has the same value)")
    return Volume(np.ascontiguousarray(d, dtype=np.float32), a.astype(np.float64), p)
