"""One imaging session, end to end: subject anatomy (shape, age) -> pathology -> per-sequence
contrast -> scanner artefacts -> skull-stripped, co-registered volumes on one grid.

A session is fully determined by its `SessionSpec` (two integer seeds and parameters), so any
process can make any case and the result does not depend on the worker count."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

from ..io.modalities import canonical_modality
from .ageing import Ageing, age_contrast, draw_ageing, enlarge_ventricles, thin_cortex
from .anatomy import Anatomy
from .artefacts import Acquisition, acquire, coverage, draw_acquisition
from .config import SHIFT_PARTS
from .contrast import Contrast, Lesion, draw_contrast, synthesize
from .deform import SubjectShape, random_pose, random_shape, subject_coords, upsample_coords
from .fields import sample_where, smooth_noise
from .head import head, head_means
from .lesions import dwi_artefact, infarct, microbleeds, wmh
from .meningioma import Site, draw_site, mass_effect, surroundings
from .polymicrogyria import focal_atrophy, polymicrogyria


@dataclass(frozen=True)
class SessionSpec:
    subject_seed: int  # anatomy and ageing of the person (shared by their sessions)
    session_seed: int  # pose, pathology placement, contrast, acquisition, noise
    age: float
    sequences: tuple[str, ...]  # file stems, canonical names (+ "_k" for repeats)
    shift: float = 0.0  # 0 = research/source domain, up to 1 = full clinical shift
    vendor: str | None = None  # a contrast.VENDORS key when clinical
    difficulty: float = 0.5
    infarcts: int = 0  # number of infarcts (0 = none)
    meningioma: bool = False
    distractors: bool = True  # extra WMH, DWI artefacts and microbleeds, label-independent
    variation: float = 1.0  # research-side spread between sites
    shift_parts: tuple[str, ...] = SHIFT_PARTS  # the parts `shift` moves (config.SHIFT_PARTS)
    # FOMO26 tasks (`fomo26`); the defaults leave the FOMO25 kinds exactly as they were
    sex: str | None = None  # "F" or "M": a smaller or larger head (SEX_SCALE)
    infarct_stage: str | None = None  # every infarct's stage (None: drawn per infarct)
    wmh: int = 0  # extra white-matter hyperintensities (small-vessel disease)
    polymicrogyria: bool = False
    cortical_distractors: bool = False  # a focal atrophy now and then, label-independent
    head: bool = False  # keep a modelled non-brain head (`head`): not skull-stripped
    deface: bool = True  # with `head`: its face cut off, as defacing tools do

    def shift_of(self, part: str) -> float:
        """The shift strength one part of the generator sees (0 for parts left unshifted)."""
        return self.shift if part in self.shift_parts else 0.0


@dataclass
class Session:
    images: dict[str, np.ndarray]  # file stem -> int16 volume
    lesion: np.ndarray  # uint8 mask of the labelled pathology (infarcts, tumour; may be empty)
    brain: np.ndarray  # bool mask of what the images show: the brain, or the head (`head`)
    meta: dict
    qc: dict = field(default_factory=dict)  # 2D slices for the montage
    tissues: torch.Tensor | None = None  # [6,X,Y,Z] fractions, only when asked for
    volumes: dict[str, float] = field(default_factory=dict)  # `tissue_volumes`, in mL
    # the brain within the field of view, head or not: a skull-strip's reference mask
    brain_mask: np.ndarray | None = None


def _z_range(mask: torch.Tensor) -> tuple[int, int] | None:
    zs = torch.nonzero(mask.any(0).any(0)).flatten()
    return (int(zs[0]), int(zs[-1])) if len(zs) else None


def _bbox(mask: torch.Tensor, pad: int) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of `mask`, grown by `pad` voxels (whole grid if empty)."""
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = torch.nonzero(mask.any(dim=other[1]).any(dim=other[0])).flatten()
        n = mask.shape[axis]
        lo, hi = (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, n)
        out.append(slice(max(0, lo - pad), min(n, hi + pad)))
    return tuple(out)  # type: ignore[return-value]


def _ref_signal(seq: str, means: dict[str, np.ndarray], b: float) -> float:
    if seq == "dwi_b1000":
        return float(means["s0"][1] * np.exp(-b * 1e-3 * means["adc"][1]))
    if seq == "adc":
        return float(means["adc"][0])
    return float(means[seq][:2].max())


def make_session(spec: SessionSpec, anat: Anatomy, keep_tissues: bool = False) -> Session:
    """Synthesise every sequence of one session."""
    srng = np.random.default_rng(spec.subject_seed)
    shape = sexed(random_shape(srng), spec.sex)
    ageing = draw_ageing(srng, spec.age, spec.difficulty)
    rng = np.random.default_rng(spec.session_seed)
    pose = random_pose(rng, 4.0 + 8.0 * spec.shift_of("pose"), 4.0 + 6.0 * spec.shift_of("pose"))
    grid = cast(tuple[int, int, int], tuple(anat.shape))
    # the smooth part of the warp is computed on a 2-voxel lattice and upsampled
    coarse = subject_coords(anat, shape, pose)
    pre = enlarge_ventricles(anat, upsample_coords(coarse, grid), ageing.ventricle_mm)
    meta: dict = {"age": round(spec.age, 1), "ageing": ageing.as_dict()}
    site = draw_site(rng, anat, spec.difficulty) if spec.meningioma else None
    coords, tumour, tissues, brain = _subject_tissues(anat, coarse, pre, site, ageing)
    tissues, lesions, labelled = _labelled(
        rng, spec, anat, pre, coords, tissues, site, tumour, meta
    )
    extra, meta["distractors"] = _distractors(rng, spec, anat, coords, tissues, ageing)
    lesions += extra
    wmh_fraction = next((les.fraction for les in extra if les.name == "wmh"), None)
    tissues, labelled = _fomo26_findings(rng, spec, anat, coords, tissues, labelled, meta)
    volumes = tissue_volumes(tissues, wmh_fraction, brain, anat.res)

    contrast = draw_contrast(rng, spec.shift_of("contrast"), spec.vendor)
    contrast.means = age_contrast(contrast.means, ageing)
    z_lo, z_hi = coverage(rng, grid[2], anat.res, spec.shift_of("coverage"), _z_range(labelled))
    kept, brain_only = tissues, brain
    if spec.head:  # the whole head is kept: it is what the scan shows
        tissues, brain, meta["head"] = _with_head(spec, anat, coords, tissues, contrast)
    keep = brain.clone()
    keep[..., :z_lo] = False
    keep[..., z_hi:] = False
    images, acquisition = _acquire_sequences(
        rng, spec, anat, contrast, tissues, lesions, keep, brain
    )
    meta.update(
        vendor=contrast.vendor,
        shift=round(spec.shift, 3),
        coverage_z=[z_lo, z_hi],
        acquisition=acquisition,
    )
    lesion = (labelled & keep).numpy().astype(np.uint8)
    in_view = brain_only.clone()
    in_view[..., :z_lo] = False
    in_view[..., z_hi:] = False
    out = Session(images, lesion, keep.numpy(), meta, tissues=kept if keep_tissues else None,
                  volumes=volumes, brain_mask=in_view.numpy())  # fmt: skip
    out.qc = qc_slices(out)
    return out


SEX_SCALE = {"F": 0.98, "M": 1.02}  # head size: about 12% more intracranial volume in men


def sexed(shape: SubjectShape, sex: str | None) -> SubjectShape:
    """A subject's head scaled for their sex (unchanged when not given)."""
    if sex is None:
        return shape
    return SubjectShape(shape.scale * SEX_SCALE[sex], shape.velocity)


def _labelled(
    rng: np.random.Generator,
    spec: SessionSpec,
    anat: Anatomy,
    pre: torch.Tensor,
    coords: torch.Tensor,
    tissues: torch.Tensor,
    site: Site | None,
    tumour: torch.Tensor,
    meta: dict,
) -> tuple[torch.Tensor, list[Lesion], torch.Tensor]:
    """The labelled pathology (a meningioma and its surroundings, infarcts), recorded in
    `meta`: (tissues, lesions, bool mask of the labelled voxels)."""
    lesions: list[Lesion] = []
    labelled = torch.zeros(tuple(anat.shape), dtype=torch.bool)
    if site is not None:
        tissues, extra, meta["meningioma"] = surroundings(
            rng, anat, pre, tissues, site, tumour, spec.difficulty
        )
        lesions += extra
        labelled = tumour > 0.5
    tissues, extra, infarct_mask, meta["infarcts"] = _infarcts(rng, spec, anat, coords, tissues)
    lesions += extra
    labelled |= infarct_mask
    return tissues, lesions, labelled


def _fomo26_findings(
    rng: np.random.Generator,
    spec: SessionSpec,
    anat: Anatomy,
    coords: torch.Tensor,
    tissues: torch.Tensor,
    labelled: torch.Tensor,
    meta: dict,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A focal atrophy (label-independent, from the session's generator) and polymicrogyria
    (from a generator of its own, so a case with and without it differs only inside it),
    changed last so that nothing else depends on them: (tissues, labelled mask)."""
    if spec.cortical_distractors:
        found = rng.uniform() < 0.4
        meta["distractors"]["focal_atrophy"] = None
        if found:
            tissues, meta["distractors"]["focal_atrophy"] = focal_atrophy(
                rng, anat, coords, tissues
            )
    if spec.polymicrogyria:
        own = np.random.default_rng([spec.session_seed, 26])
        tissues, region, meta["polymicrogyria"] = polymicrogyria(
            own, anat, coords, tissues, spec.difficulty
        )
        labelled = labelled | region
    return tissues, labelled


def head_maps(stems: tuple[str, ...]) -> list[str]:
    """The contrast's internal maps that `stems` are made from, in order, once each (a DWI from
    s0 and adc; "t1_2" from t1)."""
    out: list[str] = []
    for stem in stems:
        seq = canonical_modality(stem) or stem
        for m in ("s0", "adc") if seq == "dwi_b1000" else (seq,):
            if m not in out:
                out.append(m)
    return out


def _with_head(
    spec: SessionSpec, anat: Anatomy, coords: torch.Tensor, tissues: torch.Tensor,
    contrast: Contrast,
) -> tuple[torch.Tensor, torch.Tensor, dict]:  # fmt: skip
    """Tissues with the modelled head's channels appended and their signal added to
    `contrast` (from a generator of the subject's own): (tissues, head mask, record)."""
    hrng = np.random.default_rng([spec.subject_seed, 26])
    brain = tissues.sum(0).clamp(max=1.0)  # every channel, the tumour too: no CSF inside it
    channels, mask, record = head(hrng, anat, coords, brain, spec.deface)
    for m in head_maps(spec.sequences):
        csf = float(contrast.means[m][3])
        contrast.means[m] = np.concatenate([contrast.means[m], head_means(m, csf, hrng)])
    return torch.cat([tissues, channels]), mask, record


def tissue_volumes(
    tissues: torch.Tensor, wmh: torch.Tensor | None, brain: torch.Tensor, res: float
) -> dict[str, float]:
    """The subject's tissue volumes in mL, from the generator's own tissue fractions ([6,X,Y,Z],
    CHANNELS order) summed over the whole brain mask at `res` mm (the person's brain, whatever
    a scan covers): gm_ml (cortical + deep GM), wm_ml (WM without its hyperintensities),
    csf_ml (sulcal CSF + ventricles) and wmh_ml (the hyperintensity fraction `wmh`, 0 if none).
    Tumour tissue is in none of them."""
    t = tissues[:, brain]
    w = wmh[brain] if wmh is not None else torch.zeros_like(t[0])
    ml = res**3 / 1000.0
    parts = {"gm_ml": t[1] + t[2], "wm_ml": (t[0] - w).clamp(min=0.0), "csf_ml": t[3] + t[4]}
    return {k: float(v.sum()) * ml for k, v in (parts | {"wmh_ml": w}).items()}


def _subject_tissues(
    anat: Anatomy, coarse: torch.Tensor, pre: torch.Tensor, site: Site | None, ageing: Ageing
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Template tissues resampled into the subject, pushed aside by a meningioma if there is one:
    (template coords, tumour fraction, [6,X,Y,Z] tissues with the tumour last, brain mask)."""
    coords, tumour = pre, torch.zeros(tuple(anat.shape))
    if site is not None:
        coords, tumour = mass_effect(anat, pre, site)
    support = anat.support(coarse)
    t5 = sample_where(anat.tissues, coords, support).clamp(0, 1)  # sum of tissues = brain mask
    if site is not None:  # the skull does not move: clip the brain pushed past the dura
        pushed = ((coords - pre).norm(dim=-1)).clamp(max=1.0)
        outside = 1.0 - sample_where(anat.icv[None], pre, support)[0]
        t5 = t5 * (1.0 - pushed * outside) * (1.0 - tumour)
    brain = torch.maximum(t5.sum(0), tumour) > 0.5
    tissues = thin_cortex(torch.cat([t5, tumour[None]]), ageing.cortical_loss, anat.res)
    return coords, tumour, tissues, brain


def _infarcts(
    rng: np.random.Generator,
    spec: SessionSpec,
    anat: Anatomy,
    coords: torch.Tensor,
    tissues: torch.Tensor,
) -> tuple[torch.Tensor, list[Lesion], torch.Tensor, list[dict]]:
    """The session's labelled infarcts, one after another (each may cavitate the tissues):
    (updated tissues, lesions, bool mask of their voxels, their dataset.json records)."""
    lesions, records = [], []
    mask = torch.zeros(tuple(anat.shape), dtype=torch.bool)
    for _ in range(spec.infarcts):
        les, tissues, voxels = infarct(
            rng, anat, coords, tissues, spec.difficulty, stage=spec.infarct_stage
        )
        lesions.append(les)
        mask |= voxels
        records.append(les.meta | {"voxels": int(voxels.sum())})
    return tissues, lesions, mask, records


def _distractors(
    rng: np.random.Generator,
    spec: SessionSpec,
    anat: Anatomy,
    coords: torch.Tensor,
    tissues: torch.Tensor,
    ageing: Ageing,
) -> tuple[list[Lesion], dict]:
    """Label-independent findings (age-related and extra WMH, microbleeds, a DWI artefact), so a
    model cannot read the label off any bright spot: (lesions, their counts)."""
    n_wmh = ageing.wmh_count + spec.wmh
    n_bleeds = int(rng.poisson(3.0 * ageing.atrophy)) if rng.uniform() < 0.25 else 0
    artefact = False
    if spec.distractors:
        n_wmh += int(rng.poisson(2.0 + 6.0 * spec.difficulty)) if rng.uniform() < 0.5 else 0
        n_bleeds += int(rng.integers(1, 6)) if rng.uniform() < 0.2 else 0
        artefact = rng.uniform() < 0.3 + 0.3 * spec.difficulty
    found = (
        wmh(rng, anat, coords, tissues, n_wmh, spec.difficulty),
        microbleeds(rng, anat, coords, n_bleeds),
        dwi_artefact(rng, anat, coords) if artefact else None,
    )
    counts = {"wmh": n_wmh, "microbleeds": n_bleeds, "dwi_artefact": bool(artefact)}
    return [les for les in found if les is not None], counts


def _acquire_sequences(
    rng: np.random.Generator,
    spec: SessionSpec,
    anat: Anatomy,
    contrast: Contrast,
    tissues: torch.Tensor,
    lesions: list[Lesion],
    keep: torch.Tensor,
    brain: torch.Tensor,
) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Every sequence as an int16 volume on the full grid, zero outside `keep`: (images,
    acquisition parameters per file stem)."""
    grid = tuple(anat.shape)
    # sequences are synthesised on the brain's bounding box only (a third of the grid is air)
    box = _bbox(brain, pad=2)
    t_box, keep_box = tissues[(slice(None), *box)], keep[box]
    l_box = [Lesion(les.name, les.fraction[box], les.ratios, les.meta) for les in lesions]
    texture = 0.03 * smooth_noise(
        rng, cast(tuple[int, int, int], tuple(keep_box.shape)), anat.res, 5.0
    )
    images: dict[str, np.ndarray] = {}
    params: dict[str, dict] = {}
    acquired: dict[str, Acquisition] = {}  # ADC is computed from the DWI series: same acquisition
    for stem in spec.sequences:
        seq = canonical_modality(stem) or stem
        clean = synthesize(seq, t_box, contrast, l_box, texture)
        group = "dwi" if stem in ("dwi_b1000", "adc") else stem
        if group not in acquired:
            acquired[group] = draw_acquisition(
                rng, seq, anat.res, spec.shift_of("acquisition"), spec.variation
            )
        acq = acquired[group]
        ref = _ref_signal(seq, contrast.means, contrast.b_value)
        img = acquire(clean, acq, anat.res, ref, rng, keep_box, is_map=seq == "adc")
        img = (img.clamp(min=0.0) * contrast.gain[seq]).round().clamp(max=32767)
        full = np.zeros(grid, dtype=np.int16)
        full[box] = img.numpy().astype(np.int16)
        images[stem] = full
        params[stem] = acq.as_dict()
    return images, params


def qc_slices(s: Session) -> dict:
    """Axial slices for the montage: through the largest lesion cross-section, else mid-brain."""
    if s.lesion.any():
        z = int(np.argmax(s.lesion.sum((0, 1))))
    else:
        zs = np.flatnonzero(s.brain.any((0, 1)))
        z = int(zs[0] + 0.6 * (zs[-1] - zs[0])) if len(zs) else s.brain.shape[2] // 2
    return {
        "z": z,
        "images": {k: v[:, :, z].astype(np.float32) for k, v in s.images.items()},
        "lesion": s.lesion[:, :, z],
    }
