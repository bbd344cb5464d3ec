from __future__ import annotations

import numpy as np
import pytest
import torch

from brainfoundry.synth.cases import SessionSpec, make_session
from brainfoundry.synth.lesions import TERRITORIES, infarct

INFARCT_SEQS = ("flair", "dwi_b1000", "adc", "t2s")


def _brain_tissue(s) -> np.ndarray:
    return s.tissues[:3].sum(0).numpy()


@pytest.mark.parametrize("seed", range(4))
def test_infarcts_lie_inside_brain_tissue(anat, seed):
    s = make_session(
        SessionSpec(seed, seed + 100, 70.0, INFARCT_SEQS, infarcts=2), anat, keep_tissues=True
    )
    assert s.lesion.sum() >= 1
    assert len(s.meta["infarcts"]) == 2
    # tissues after the infarct: a cavitated core becomes CSF, so check the pre-lesion state too
    pre = make_session(
        SessionSpec(seed, seed + 100, 70.0, ("flair",), distractors=False), anat, keep_tissues=True
    )
    assert (_brain_tissue(pre)[s.lesion > 0] > 0.45).all()
    assert s.brain[s.lesion > 0].all()


@pytest.mark.parametrize("territory", list(TERRITORIES))
def test_every_territory_and_stage_places_a_lesion(anat, territory):
    rng = np.random.default_rng(3)
    grid = anat.shape
    coords = torch.stack(
        torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in grid], indexing="ij"), -1
    )
    tissues = torch.cat([anat.tissues, torch.zeros(1, *grid)])
    for stage in ("hyperacute", "acute", "subacute", "chronic"):
        les, _, mask = infarct(rng, anat, coords, tissues, 0.5, stage=stage, territory=territory)
        assert int(mask.sum()) >= 1
        assert (anat.tissues[:3].sum(0)[mask] > 0.45).all()
        assert les.meta["territory"] == territory and les.meta["stage"] == stage


def test_acute_infarct_is_bright_on_dwi_and_dark_on_adc(anat):
    rng = np.random.default_rng(0)
    coords = torch.stack(
        torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in anat.shape], indexing="ij"),
        -1,
    )
    tissues = torch.cat([anat.tissues, torch.zeros(1, *anat.shape)])
    les, _, _ = infarct(rng, anat, coords, tissues, 0.5, stage="acute", territory="mca")
    assert les.ratios["adc"] < 0.8 and les.ratios["flair"] > 1.0
    # DWI = S0 exp(-b ADC): the lesion/tissue DWI ratio for white matter (ADC 0.72e-3)
    dwi = les.ratios["s0"] * np.exp(-0.72 * (les.ratios["adc"] - 1.0))
    assert dwi > 1.3
    old, _, _ = infarct(rng, anat, coords, tissues, 0.5, stage="chronic", territory="mca")
    assert old.ratios["adc"] > 1.2 and old.ratios["flair"] > 1.2


@pytest.mark.parametrize("seed", range(5))
def test_meningioma_mask_lies_outside_brain_tissue(anat, seed):
    s = make_session(
        SessionSpec(seed, seed + 7, 55.0, ("flair", "dwi_b1000", "swi"), meningioma=True),
        anat,
        keep_tissues=True,
    )
    m = s.lesion > 0
    assert m.sum() >= 1
    tissue = _brain_tissue(s)
    assert (tissue[m] < 0.5).all()  # tumour voxels are not brain
    assert tissue[m].mean() < 0.15
    assert s.brain[m].all()  # and it is kept by skull stripping (visible in every sequence)
    for img in s.images.values():
        assert (img[m] > 0).mean() > 0.95


def test_meningioma_displaces_the_brain(anat):
    """Mass effect: with and without the tumour (same subject), the brain moves away from it."""
    base = SessionSpec(3, 9, 55.0, ("flair",), distractors=False)
    with_t = make_session(
        SessionSpec(3, 9, 55.0, ("flair",), meningioma=True, distractors=False),
        anat,
        keep_tissues=True,
    )
    without = make_session(base, anat, keep_tissues=True)
    m = with_t.lesion > 0
    lost = _brain_tissue(without)[m].sum() - _brain_tissue(with_t)[m].sum()
    assert lost > 0.5 * m.sum() * 0.5  # the tumour sits where brain was
    # brain volume drops by less than the tumour volume would cut out: tissue was pushed
    dv = _brain_tissue(without).sum() - _brain_tissue(with_t).sum()
    assert dv < _brain_tissue(without)[m].sum()


def test_distractors_do_not_make_labels(anat):
    """A negative case may carry WMH, microbleeds and DWI artefacts but no labelled voxel."""
    found = 0
    for seed in range(6):
        s = make_session(SessionSpec(seed, 50 + seed, 80.0, INFARCT_SEQS, difficulty=1.0), anat)
        assert s.lesion.sum() == 0
        d = s.meta["distractors"]
        found += (d["wmh"] > 0) + d["dwi_artefact"] + (d["microbleeds"] > 0)
    assert found >= 3


def test_dwi_and_adc_share_one_acquisition(anat):
    s = make_session(SessionSpec(2, 3, 60.0, INFARCT_SEQS, shift=1.0, vendor="clinical_b"), anat)
    acq = s.meta["acquisition"]
    assert acq["dwi_b1000"] == acq["adc"]
    assert acq["dwi_b1000"]["slice_mm"] > 2 * anat.res / 6.0 * 1.5  # clinical: thick slices


def test_dwi_artefact_finds_a_site_at_1mm():
    # at 1 mm the brain mask is binary (no partial-volume band): the artefact site comes from
    # the smoothed mask's edge instead of failing with "no candidate voxel"
    from brainfoundry.synth.anatomy import build_anatomy
    from brainfoundry.synth.fields import identity_coords
    from brainfoundry.synth.lesions import dwi_artefact

    a = build_anatomy(1.0)
    les = dwi_artefact(np.random.default_rng(0), a, identity_coords(a.shape))
    assert (les.fraction > 0.5).any()
    i, j, k = np.round(a.voxel(np.array(les.meta["centre_mm"]))).astype(int)
    assert a.mask[i, j, k] > 0.3  # centred on brain at its edge (an air/tissue interface)
    assert les.meta["centre_mm"][2] < -5
