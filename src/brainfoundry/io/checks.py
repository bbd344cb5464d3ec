"""The input checks every scan reader goes through: a file that cannot be a usable 3-D scan is
refused with one `InputError` line naming it and the problem, before it reaches preprocessing.

Two stages, shared by the NIfTI and DICOM readers (`volume.validate` runs the second on every
volume `read_volume` returns):
- before any voxel is read, what the header claims: one real number per voxel (`check_dtype`),
  bytes the file can hold (`check_bytes`), a 3-D shape of at most `max_voxels` (`check_shape`);
- on the voxels as stored, before the cast to float32: finite and at most `max_abs` in
  magnitude (`to_float32`, numpy's floating-point warnings off: nothing is left to warn about).

Why these limits (`Limits`, defaults for any brain MRI):
- `max_abs` 1e12: preprocessing takes the foreground mean and std in float32, so a sum of up to
  `max_voxels` squared deviations (each at most (2·max_abs)²) must stay below float32's 3.4e38;
  at 1e12 it stays ~4e4 below it, room for the cubic B-spline's overshoot (≤ 27× in 3-D, 729×
  squared) and for upsampling thick slices. A fixed 1e20 would not do (the squares of values of
  1e19 sum past it: their float32 std is inf), nor a std in float64 (finite even at 1e30).
  No MR, CT or PET intensity comes near 1e12 (uint16 ends at 65535).
- `max_voxels` 2³¹ (8 GiB as float32): ~20× a 0.5 mm whole-head scan, so only a corrupt header
  (or a scan no machine here preprocesses) claims more; it bounds a gzip file, whose
  uncompressed size is unknown without decompressing it.
- `max_label` 32767 (label maps): preprocessing rounds them into int16; larger would wrap.
- `min_axis` 4 (images, not label maps, whose grid is checked against their scan's): the cubic
  B-spline resampling reads 4 samples along every axis; fewer is a slice or a slab, not a scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

# deflate's largest ratio: a code of >= 2 bits (length + distance) stands for at most 258 bytes
DEFLATE_MAX_RATIO = 1032


@dataclass(frozen=True)
class Limits:
    """What a readable scan may hold; the module docstring says why each default."""

    min_axis: int = 4
    max_voxels: int = 2**31
    max_abs: float = 1e12
    max_label: int = 2**15 - 1  # preprocessing rounds a label map into int16


DEFAULT_LIMITS = Limits()


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def _size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} TiB"


def check_dtype(path: str | Path, dtype: np.dtype) -> None:
    """One real number per voxel: colour (structured) and complex voxels are refused by name."""
    if dtype.fields is not None or dtype.kind == "V":
        names = ",".join(dtype.names or ()) or str(dtype)
        raise InputError(
            path,
            f"colour (RGB) voxels ({names}, {dtype.itemsize} bytes each): brainfoundry reads one "
            "greyscale intensity per voxel; convert the image to greyscale first",
        )
    if dtype.kind == "c":
        raise InputError(
            path,
            f"complex-valued voxels ({dtype}): store the magnitude (or the real or phase part "
            "you mean) as a real-valued image",
        )
    if dtype.kind not in "biuf":
        raise InputError(path, f"voxel type {dtype} is not a number")


def check_bytes(
    path: str | Path, shape: tuple[int, ...], dtype: np.dtype, offset: int, compressed: bool
) -> None:
    """The bytes the header claims (data offset + voxels) fit in the file; a gzip file holds at
    most DEFLATE_MAX_RATIO times its own size uncompressed."""
    p = Path(path)
    size = p.stat().st_size
    need = int(offset) + math.prod(int(s) for s in shape) * dtype.itemsize
    can = size * DEFLATE_MAX_RATIO if compressed else size
    if need > can:
        how = (
            f"{_size(size)} of gzip hold at most {_size(can)} at deflate's maximum ratio"
            if compressed
            else f"the file has {_size(size)}"
        )
        raise InputError(
            p,
            f"header claims {_dims(shape)} voxels of {dtype} ({_size(need)}) but {how}: "
            "a truncated file or a corrupt header",
        )


def check_shape(
    path: str | Path, shape: tuple[int, ...], limits: Limits = DEFAULT_LIMITS
) -> tuple[int, int, int]:
    """The 3-D shape (trailing axes of length 1 dropped) of a single volume of at most
    `limits.max_voxels` voxels."""
    shape = tuple(int(s) for s in shape)
    if 0 in shape:
        raise InputError(path, f"image has a zero-size dimension {shape}")
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) == 4:
        raise InputError(path, f"4D image with {shape[3]} volumes; give one 3D volume per file")
    if len(shape) != 3:
        raise InputError(path, f"{len(shape)}D image of shape {_dims(shape)}; expected one 3D scan")
    n = math.prod(shape)
    if n > limits.max_voxels:
        raise InputError(
            path,
            f"header claims {_dims(shape)} = {n:.3g} voxels, over the limit of "
            f"{limits.max_voxels:.3g}: a corrupt header, or a scan too large to preprocess",
        )
    return shape  # type: ignore[return-value]  # len(shape) == 3


def check_min_axis(
    path: str | Path, shape: tuple[int, ...], limits: Limits = DEFAULT_LIMITS
) -> None:
    """At least `limits.min_axis` voxels along every axis of a scan."""
    for i, s in enumerate(shape):
        if s < limits.min_axis:
            raise InputError(
                path,
                f"shape {_dims(shape)} has {s} voxel{'s' * (s != 1)} along axis {i + 1}: "
                f"a slice or a slab, not a 3D scan (a scan needs at least {limits.min_axis} "
                "voxels along every axis)",
            )


def to_float32(
    path: str | Path, data: np.ndarray, limits: Limits = DEFAULT_LIMITS, *, label: bool = False
) -> np.ndarray:
    """The voxels as C-ordered float32, once they are real, finite and at most `limits.max_abs`
    (a label map: `limits.max_label`) in magnitude, checked in their stored type before the
    cast."""
    check_dtype(path, data.dtype)
    with np.errstate(all="ignore"):
        if data.dtype.kind == "f":
            bad = data.size - int(np.count_nonzero(np.isfinite(data)))
            if bad:
                raise InputError(path, f"{bad} voxels are NaN or Inf")
        if data.size:
            peak = max(-float(data.min()), float(data.max()))
            if label and peak > limits.max_label:
                raise InputError(
                    path,
                    f"label values reach {peak:.3g} in magnitude, over the limit of "
                    f"{limits.max_label}: a label map holds class indices (int16)",
                )
            if peak > limits.max_abs:
                raise InputError(
                    path,
                    f"voxel values reach {peak:.3g} in magnitude, over the limit of "
                    f"{limits.max_abs:.0e}: their float32 statistics would overflow (a corrupt "
                    "scaling or garbage); rescale the image",
                )
        return np.ascontiguousarray(data, dtype=np.float32)
