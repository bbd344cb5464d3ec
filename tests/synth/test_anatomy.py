from __future__ import annotations

import numpy as np
import pytest
import torch

from brainfoundry.synth.anatomy import (
    TISSUES,
    adopt_anatomy,
    build_anatomy,
    forget_anatomy,
    load_mni152,
    output_grid,
)
from brainfoundry.synth.deform import random_pose, random_shape, subject_coords, upsample_coords
from brainfoundry.synth.fields import sample

from .conftest import RES


@pytest.mark.slow
def test_template_matches_nilearn_loaders():
    from nilearn.datasets import (
        load_mni152_brain_mask,
        load_mni152_gm_template,
        load_mni152_template,
        load_mni152_wm_template,
    )

    data, affine = load_mni152()
    for key, loader in (
        ("t1", load_mni152_template),
        ("gm", load_mni152_gm_template),
        ("wm", load_mni152_wm_template),
        ("mask", load_mni152_brain_mask),
    ):
        img = loader(resolution=1)
        np.testing.assert_allclose(data[key], np.asarray(img.dataobj, dtype=np.float32), atol=1e-6)
        np.testing.assert_allclose(affine, img.affine)


def test_tissue_classes_partition_the_brain(anat):
    t = anat.tissues
    assert t.shape == (len(TISSUES), *anat.shape)
    assert float(t.min()) >= 0.0
    # fractions sum to the brain mask (CSF fills what GM and WM leave)
    assert torch.allclose(t.sum(0), anat.mask, atol=1e-3)
    ml = t.sum((1, 2, 3)) * RES**3 / 1000.0
    vol = dict(zip(TISSUES, ml.tolist()))
    assert vol["wm"] > 400 and vol["cgm"] > 500  # MNI152 is a large brain: ~1.9 l mask
    assert 10 < vol["vent"] < 60  # lateral + third ventricles
    assert 3 < vol["dgm"] < 60


def test_output_grid_is_ras_and_covers_the_brain():
    shape, affine = output_grid(2.0)
    assert np.allclose(np.diag(affine)[:3], 2.0) and np.allclose(affine[:3, :3], np.diag([2.0] * 3))
    far = affine @ np.array([shape[0] - 1, shape[1] - 1, shape[2] - 1, 1.0])
    assert (affine[:3, 3] < [-72, -107, -72]).all() and (far[:3] > [72, 73, 82]).all()


def test_resolution_is_checked():
    from brainfoundry.errors import ConfigError

    with pytest.raises(ConfigError, match="1-8 mm"):
        build_anatomy(0.5)


def test_subject_deformation_is_seeded_and_varies(anat):
    def coords(seed):
        rng = np.random.default_rng(seed)
        return upsample_coords(
            subject_coords(anat, random_shape(rng), random_pose(rng)), anat.shape
        )

    a, b, c = coords(1), coords(1), coords(2)
    assert torch.equal(a, b)
    assert float((a - c).abs().mean()) > 0.3  # voxels at 6 mm: ~2 mm and more
    # brain volume changes with head size but stays plausible
    vol = sample(anat.tissues, a).sum() / anat.tissues.sum()
    assert 0.6 < float(vol) < 1.6


def test_forget_anatomy_makes_the_next_build_fresh(anat):
    first = build_anatomy(8.0)
    assert build_anatomy(8.0) is first  # built once per process and resolution
    forget_anatomy(8.0)
    again = build_anatomy(8.0)
    assert again is not first and torch.equal(again.tissues, first.tissues)
    assert build_anatomy(RES) is anat  # other resolutions are kept
    forget_anatomy()
    try:
        assert build_anatomy(8.0) is not again
    finally:
        adopt_anatomy(anat)  # the other tests share the session's anatomy
        forget_anatomy(8.0)
