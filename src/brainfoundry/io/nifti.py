"""NIfTI through nibabel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import nibabel as nib
import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .checks import DEFAULT_LIMITS, Limits, check_bytes, check_dtype, check_shape
from .volume import Volume

if TYPE_CHECKING:
    from nibabel.spatialimages import SpatialImage


def read_nifti(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> Volume:
    """Read a NIfTI file with its best affine (sform, else qform), voxels in their stored type.

    The header's claims (voxel type, bytes, shape, voxel count) are checked before any voxel is
    read (`checks`), so a corrupt header is refused instead of read until memory runs out.
    """
    p = Path(path)
    try:
        img = cast("SpatialImage", nib.load(str(p)))  # NIfTI: nib.load is typed as any image
        dtype, shape = np.dtype(img.get_data_dtype()), tuple(int(s) for s in img.shape)
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as e:  # nibabel/gzip/zlib raise many types for corrupt files
        raise InputError(p, f"cannot read NIfTI ({type(e).__name__}: {str(e)[:120]})") from None
    check_dtype(p, dtype)
    offset = int(getattr(img.dataobj, "offset", 0))
    check_bytes(p, shape, dtype, offset, compressed=p.name.lower().endswith(".gz"))
    shape3 = check_shape(p, shape, limits)
    try:
        with np.errstate(all="ignore"):  # an overflowing scaling: Inf or huge, `validate` refuses
            data = np.asanyarray(img.dataobj)
    except Exception as e:
        raise InputError(p, f"cannot read NIfTI ({type(e).__name__}: {str(e)[:120]})") from None
    return Volume(data.reshape(shape3), affine, str(p))


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
