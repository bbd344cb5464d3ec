"""Brain extraction, a preprocessing step (`preprocess.skull_strip=auto|off|deepbet`).

The model is deepbet (Fisch et al. 2024; PyPI, MIT): two small 3-D U-Nets (a brain box at
128³, then the mask at 256³ inside it) trained on thousands of real T1 scans. Its TorchScript
weights ship inside the wheel (pinned), so nothing downloads at run time, and they are loaded
with `torch.jit.load`, which runs no pickled Python. Measured (benchmarks/results/
skull_strip.md): Dice 0.96-0.99 on T1 and FLAIR, 0.92-0.96 on T2 of synthetic heads at 1-2 mm,
0.936 on Colin27's real head against its BET brain; 2.3-2.9 s per scan on two cores at any
resolution (the networks see a fixed grid).

A session is stripped once, on the sequence the model knows best (`STRIP_ORDER`), after
co-registration puts every scan on the reference grid; the one mask then zeroes every scan.

`auto` strips only a scan that shows more than a brain, without running the model on the
others (`auto_verdict`): what lies above 5% of the scan's bright end fills at most a brain's
volume in a skull-stripped scan, and much more in a head with skull and scalp, defaced or not
(the air around a real head is darker than that). A slab (a field of view smaller than a brain
along some axis, as FOMO26's trigeminal scans) is left as it is.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError, InputError
from ..io.modalities import canonical_modality
from ..io.volume import Volume

Mode = Literal["auto", "off", "deepbet"]
MODES = ("auto", "off", "deepbet")
# the sequence a session is stripped on, best first (deepbet was trained on T1)
STRIP_ORDER = ("t1", "t1c", "flair", "t2", "pd", "t2s", "swi", "dwi_b1000", "adc")
# the tissue of a scan: above this fraction of its range (minimum to 99.5th percentile of the
# rest); below it lie the background and the air around a head (noise of a few %)
TISSUE_LEVEL = 0.05
# a skull-stripped scan holds at most this many mL of tissue. Measured at 3 mm, 6 subjects,
# source and clinical domain, six sequences (benchmarks/results/skull_strip.md): synthetic
# brains 1.60-2.34 L (the MNI152 template is a large brain, 1.89 L; adults' intracranial
# volume is 1.1-1.9 L), synthetic heads with skull and scalp 2.71-3.98 L, defaced or not
STRIPPED_MAX_ML = 2600.0
# a field of view under this along some axis is a slab, not a head (a brain spans ≥ 100 mm)
MIN_HEAD_FOV_MM = 90.0
# a brain mask under this volume is a failed extraction (wrong sequence, no brain in view)
MIN_BRAIN_ML = 100.0
# and so is one whose inside looks like the 2 mm just outside it: |AUC - 0.5| of the two
# intensity samples (rank-based, so any contrast). Measured (skull_strip.md's sessions): 0.22-0.45
# on synthetic heads at 1-2 mm over five sequences (T1, T2, FLAIR, DWI, ADC), 0.46 on Colin27;
# 0.16 or more at 4-6 mm (one voxel of shell); 0.003-0.09 on the "brain" deepbet finds in white
# or smoothed noise. A 6 mm shell reaches the bright marrow and scalp fat on T1: 0.11 there.
MIN_SEPARATION = 0.12
SHELL_MM = 2.0


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"preprocess.skull_strip {mode!r}: use one of {', '.join(MODES)}")


@dataclass
class Stripped:
    vols: list[Volume]
    note: str | None  # what was done, for the run's warnings (None: nothing)
    record: dict  # for the QC and the report: method, sequence, brain mL, seconds


def voxel_ml(affine: np.ndarray) -> float:
    return float(abs(np.linalg.det(np.asarray(affine, float)[:3, :3]))) / 1000.0


def tissue_ml(vol: Volume) -> float:
    """mL of the scan above `TISSUE_LEVEL` of its range: from its 1st percentile (the
    background, robust to a few outliers below it) to the 99.5th of what lies above that."""
    data = np.asarray(vol.data)
    flat = data.ravel()
    lo = float(np.percentile(flat[:: max(1, flat.size // (1 << 20))], 1.0))
    rest = flat[flat > lo]
    if rest.size == 0:
        return 0.0
    hi = float(np.percentile(rest[:: max(1, rest.size // (1 << 20))], 99.5))
    return float((data > lo + TISSUE_LEVEL * (hi - lo)).sum()) * voxel_ml(vol.affine)


def auto_verdict(vol: Volume) -> str | None:
    """Why `auto` leaves this scan as it is ("stripped", "slab"), or None: strip it."""
    fov = np.array(vol.shape[:3], float) * np.array(vol.spacing)
    if fov.min() < MIN_HEAD_FOV_MM:
        return "slab"
    return "stripped" if tissue_ml(vol) <= STRIPPED_MAX_ML else None


def strip_reference(vols: list[Volume]) -> int:
    """Index of the scan the session is stripped on (`STRIP_ORDER`; else the first)."""
    names = [canonical_modality(Path(v.path).name) for v in vols]
    for seq in STRIP_ORDER:
        if seq in names:
            return names.index(seq)
    return 0


@functools.lru_cache(maxsize=1)
def _model():
    try:
        from deepbet.bet import BrainExtraction
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ConfigError(
            "preprocess.skull_strip needs deepbet (pip install deepbet==1.0.2), or set it off"
        ) from None
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.jit.load's deprecation notice: not the user's concern
        warnings.simplefilter("ignore", DeprecationWarning)
        return BrainExtraction(no_gpu=not torch.cuda.is_available())


def brain_mask(vol: Volume) -> np.ndarray:
    """deepbet's brain mask of one scan, on its own voxel grid (bool). It is run on the scan as
    given, before any resampling: on coarse voxels its mask overshoots the brain (1.1-1.5x at
    4-6 mm, Dice 0.79-0.96; interpolating to 2 mm first did not help), so strip native scans."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(vol.data, np.float32), np.asarray(vol.affine, float))
    try:
        _, mask, _ = _model().run(img)
    except (AssertionError, ValueError):  # deepbet's own checks: no foreground to box
        raise InputError(vol.path, "brain extraction found no brain in this scan") from None
    return np.asarray(mask.dataobj) > 0


def separation(data: np.ndarray, mask: np.ndarray, spacing) -> float:
    """|AUC - 0.5| between intensities inside `mask` and in the shell SHELL_MM outside it (up
    to 20k voxels each, drawn reproducibly): 0 when the mask outlines nothing."""
    from scipy import ndimage as ndi
    from scipy.stats import mannwhitneyu

    it = max(1, int(round(SHELL_MM / float(min(spacing)))))
    idx = np.nonzero(mask)
    box = tuple(slice(max(0, int(i.min()) - it), int(i.max()) + it + 1) for i in idx)
    m, d = mask[box], np.asarray(data[box], np.float32)
    shell = ndi.binary_dilation(m, iterations=it) & ~m
    rng = np.random.default_rng(0)
    a, b = d[m], d[shell]
    if b.size == 0:  # the mask fills the field of view
        return 0.0
    a = rng.choice(a, min(a.size, 20_000), replace=False)
    b = rng.choice(b, min(b.size, 20_000), replace=False)
    auc = float(mannwhitneyu(a, b).statistic) / (a.size * b.size)
    return abs(auc - 0.5)


def skull_strip(vols: list[Volume], mode: str) -> Stripped:
    """The session's scans (all on one grid) with everything outside the brain set to 0, per
    `mode`; refuses (`InputError`, one line) a mask too small to be a brain, or one that
    outlines nothing (`separation`)."""
    check_mode(mode)
    if mode == "off":
        return Stripped(vols, None, {"method": "off"})
    i = strip_reference(vols)
    ref = vols[i]
    verdict = auto_verdict(ref) if mode == "auto" else None
    if verdict is not None:
        return Stripped(vols, None, {"method": "auto", "left": verdict})
    t0 = time.perf_counter()
    mask = brain_mask(ref)
    ml = float(mask.sum()) * voxel_ml(ref.affine)
    if ml < MIN_BRAIN_ML:
        raise InputError(
            ref.path, f"brain extraction found {ml:.0f} mL of brain (under {MIN_BRAIN_ML:.0f} mL:"
            " no brain in view, or a sequence the model cannot read); set preprocess.skull_strip"
            "=off if the scan is skull-stripped already",
        )  # fmt: skip
    sep = separation(np.asarray(ref.data), mask, ref.spacing)
    if sep < MIN_SEPARATION:
        raise InputError(
            ref.path, f"brain extraction outlined nothing (inside and outside its mask look "
            f"alike: separation {sep:.2f}, under {MIN_SEPARATION}); noise, or no brain in view",
        )  # fmt: skip
    seconds = time.perf_counter() - t0
    out = [Volume(np.where(mask, v.data, 0).astype(v.data.dtype), v.affine, v.path) for v in vols]
    name = Path(ref.path).name
    note = f"{name}: skull-stripped (deepbet, {ml:.0f} mL brain)"
    record = {"method": "deepbet", "sequence": name, "brain_ml": round(ml, 1),
              "separation": round(sep, 3), "seconds": round(seconds, 2)}  # fmt: skip
    return Stripped(out, note, record)
