"""Synth tests run at 6 mm (tens of thousands of voxels): a case takes well under a second."""

from __future__ import annotations

import pytest
import torch

RES = 6.0


@pytest.fixture(scope="session")
def anat():
    from brainfoundry.synth.anatomy import build_anatomy

    return build_anatomy(RES)


@pytest.fixture(autouse=True)
def _one_thread():
    """The generator runs single-threaded per case (as its workers do)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
