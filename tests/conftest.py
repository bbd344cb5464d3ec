"""Shared fixtures: real anatomy (nilearn's MNI152, installed with the package) at small sizes."""

from __future__ import annotations

import functools
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest


@functools.cache
def _mni(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=resolution)
    return np.asarray(img.dataobj, dtype=np.float32), np.asarray(img.affine)


def mni_small(step: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The real MNI152 T1 (skull-stripped) at 2 mm, subsampled by `step` (default ~6 mm)."""
    data, affine = _mni(2)
    sub = data[::step, ::step, ::step].copy()
    a = affine.copy()
    a[:3, :3] = affine[:3, :3] * step
    return sub, a


@pytest.fixture(scope="session")
def mni():
    return mni_small()


def save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write NIfTI; a singular affine goes in the sform only (nibabel can't make a qform)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        img = nib.Nifti1Image(data, None)
        img.set_sform(affine, code=1)
    else:
        img = nib.Nifti1Image(data, affine)
    nib.save(img, str(path))
    return path


@pytest.fixture
def fomo60k(tmp_path: Path, mni) -> Path:
    """A tiny FOMO60K-layout corpus: 3 subjects, 1–2 sessions, t1/flair (+ a repeat)."""
    data, affine = mni
    root = tmp_path / "fomo-60k"
    rng = np.random.default_rng(0)
    for s in range(3):
        for ses in range(1 + (s == 0)):
            d = root / f"sub_{s}" / f"ses_{ses + 1}"
            for seq in ("t1", "flair"):
                vol = data * rng.uniform(0.5, 2.0) + (data > 0) * rng.normal(0, 0.01, data.shape)
                save(d / f"{seq}.nii.gz", vol.astype(np.float32), affine)
    save(root / "sub_0" / "ses_1" / "flair_2.nii.gz", data, affine)
    return root


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    """Caches the suite writes (engine/amp.py's precision verdicts) go to a folder of its own,
    not the user's home; subprocesses inherit it."""
    import os

    os.environ["BRAINFOUNDRY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
