"""NIfTI through nibabel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import nibabel as nib
import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .volume import Volume

if TYPE_CHECKING:
    from nibabel.spatialimages import SpatialImage


def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI file as float32 with its best affine (sform, else qform)."""
    p = Path(path)
    try:
        img = cast("SpatialImage", nib.load(str(p)))  # NIfTI: nib.load is typed as any image
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as e:  # nibabel/gzip/zlib raise many types for corrupt files
        raise InputError(p, f"cannot read NIfTI ({type(e).__name__}: {str(e)[:120]})") from None
    return Volume(data, np.asarray(img.affine, dtype=np.float64), str(p))


def read_nifti_header(path: str | Path) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine without reading the voxels."""
    p = Path(path)
    try:
        img = cast("SpatialImage", nib.load(str(p)))
    except Exception as e:
        raise InputError(p, f"cannot read NIfTI header ({type(e).__name__})") from None
    return tuple(int(s) for s in img.shape), np.asarray(img.affine, dtype=np.float64)


def write_nifti(path: str | Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write atomically; integer arrays keep their dtype (masks stay uint8)."""
    p = Path(path)
    img = nib.Nifti1Image(np.asarray(data), np.asarray(affine, dtype=np.float64))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    with atomic_path(p) as tmp:
        nib.save(img, str(tmp))
    return p
