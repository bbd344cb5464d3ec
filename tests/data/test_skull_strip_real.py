"""Brain extraction on real anatomy: Colin27 (Debian's mricron-data, which scripts/install.sh
installs), a 1 mm T1 head with skull and face, against its own BET brain (ch2bet). `auto`
strips the head and leaves the brain as it is."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainfoundry.data.skull_strip import auto_verdict, brain_mask
from brainfoundry.io.volume import Volume

COLIN = Path("/usr/share/mricron/templates")  # where Debian's mricron-data puts its volumes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def colin():
    if not (COLIN / "ch2.nii.gz").exists():
        if shutil.which("apt-get") is None:  # not Debian: the package cannot be installed here
            pytest.skip("mricron-data is a Debian package; this machine has no apt-get")
        pytest.fail("Colin27 missing: run scripts/install.sh (it installs mricron-data)")
    head, brain = nib.load(COLIN / "ch2.nii.gz"), nib.load(COLIN / "ch2bet.nii.gz")
    return (
        Volume(np.asarray(head.dataobj, np.float32), head.affine, "ch2.nii.gz"),
        Volume(np.asarray(brain.dataobj, np.float32), brain.affine, "ch2bet.nii.gz"),
    )


def test_deepbet_finds_colins_brain(colin):
    head, brain = colin
    mask, ref = brain_mask(head), brain.data > 0
    dice = 2 * (mask & ref).sum() / (mask.sum() + ref.sum())
    assert dice > 0.9, dice  # measured in benchmarks/results/skull_strip.md


def test_auto_strips_the_head_and_keeps_the_brain(colin):
    head, brain = colin
    assert auto_verdict(head) is None
    assert auto_verdict(brain) == "stripped"
