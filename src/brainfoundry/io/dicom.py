"""DICOM series through SimpleITK (GDCM), with geometry converted from LPS to RAS."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .checks import DEFAULT_LIMITS, Limits, check_shape
from .volume import Volume

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _sitk():
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    return sitk


def has_dicom(root: Path, limit: int = 200) -> bool:
    """True if a DICOM file (preamble 'DICM') is found among the first `limit` files."""
    n = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            n += 1
            if n > limit:
                return False
            try:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    fh.seek(128)
                    if fh.read(4) == b"DICM":
                        return True
            except OSError:
                continue
    return False


def list_series(root: Path) -> list[tuple[Path, list[tuple[str, str]]]]:
    """Folders under `root` that hold DICOM series, each with [(series UID, description)]."""
    sitk = _sitk()
    out = []
    for dirpath, _, files in sorted(os.walk(root)):
        if not files:
            continue
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(dirpath) or ()
        if not uids:
            continue
        series = []
        for uid in uids:
            names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(dirpath, uid)
            series.append((uid, _description(names[0]) or uid))
        out.append((Path(dirpath), series))
    return out


def _description(filename: str) -> str:
    sitk = _sitk()
    r = sitk.ImageFileReader()
    r.SetFileName(filename)
    try:
        r.ReadImageInformation()
        return r.GetMetaData("0008|103e").strip() if r.HasMetaDataKey("0008|103e") else ""
    except RuntimeError:
        return ""


def sitk_to_volume(img, path: str) -> Volume:
    """SimpleITK image ([z,y,x] array, LPS geometry) -> Volume ([x,y,z], RAS affine)."""
    sp = np.asarray(img.GetSpacing(), dtype=np.float64)
    direction = np.asarray(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    origin = np.asarray(img.GetOrigin(), dtype=np.float64)
    lps = np.eye(4)
    lps[:3, :3] = direction * sp[None, :]
    lps[:3, 3] = origin
    arr = _sitk().GetArrayFromImage(img).transpose(2, 1, 0)  # stored type: `validate` casts
    return Volume(arr, _LPS_TO_RAS @ lps, path)


def _check_claims(folder: Path, names: list[str], limits: Limits) -> None:
    """Before the series is read: one greyscale value per pixel, and a voxel count under the
    limit (the first file's size, times the number of files)."""
    r = _sitk().ImageFileReader()
    r.SetFileName(names[0])
    try:
        r.ReadImageInformation()
    except RuntimeError:
        return  # unreadable: the series reader says why
    comps = r.GetNumberOfComponents()
    if comps > 1:
        raise InputError(
            folder,
            f"colour (RGB) pixels ({comps} components per voxel): brainfoundry reads one "
            "greyscale intensity per voxel; convert the series to greyscale first",
        )
    size = [int(s) for s in r.GetSize()]
    check_shape(folder, (size[0], size[1], (size[2] if len(size) > 2 else 1) * len(names)), limits)


def read_dicom_series(
    folder: str | Path, series_uid: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> Volume:
    """Read one series from a folder; several series need `series_uid` (the error lists them)."""
    sitk = _sitk()
    folder = Path(folder)
    uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ()
    if not uids:
        raise InputError(folder, "no DICOM series found in this folder")
    if series_uid is None:
        if len(uids) > 1:
            raise InputError(folder, f"{len(uids)} DICOM series here; choose one of {list(uids)}")
        series_uid = uids[0]
    elif series_uid not in uids:
        raise InputError(folder, f"series {series_uid} not found; have {list(uids)}")
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid)
    _check_claims(folder, list(names), limits)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    try:
        img = reader.Execute()
    except RuntimeError as e:
        raise InputError(
            folder, f"cannot read DICOM series ({str(e).strip().splitlines()[-1][:120]})"
        ) from None
    if img.GetDimension() != 3:
        raise InputError(folder, f"DICOM series is {img.GetDimension()}D, expected 3D")
    return sitk_to_volume(img, str(folder))
