"""One trigeminal case (FOMO26 task 4): a heavily T2-weighted 3D slab (CISS/FIESTA-like: bright
CSF, dark nerves, flow-void vessels) of the posterior fossa, not skull-stripped, at a fine
isotropic resolution (0.5 mm by default), with a {0 background, 1 nerves, 2 vessels} label map.

The field of view is a box FOV_MM around the subject's pons (where the template pons lands
after the subject's pose, scale and warp), as a radiographer plans one; the template's
tissue maps come from the 1 mm brainstem crop, the cisterns at the subject's own width, bone
and marrow outside them. The clinical shift: vendor contrast, lower SNR, thicker partitions,
bSSFP banding, pulsation ghosts, a larger pose and storage in LPS instead of RAS."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from .artefacts import Acquisition, acquire
from .brainstem import FAR_MM, Brainstem, brainstem
from .cases import Session, SessionSpec
from .contrast import draw_contrast
from .deform import (
    Pose,
    SubjectShape,
    lattice_world,
    random_pose,
    random_shape,
    subject_world,
    template_world,
)
from .deform import upsample_coords as upsample
from .fields import sample, smooth_noise
from .neurovascular import draw_structures
from .qc import views
from .tubes import Tube, render

FOV_MM = (60.0, 52.0, 40.0)  # x, y, z extent of the slab
HALO_MM = {"nerve": 2.0, "other_nerve": 1.0, "artery": 1.0, "vein": 1.0}  # CSF sleeve in bone
KINDS = ("nerve", "other_nerve", "artery", "vein")


def anatomy_info(res: float) -> dict:
    """dataset.json's anatomy block: the source, the slab's shape; each case's own affine."""
    return {
        "source": "MNI152 2009c nonlinear symmetric T1, GM, WM (bundled with nilearn), 1 mm "
        "crop around the brainstem; nerves and vessels modelled from its landmarks",
        "resolution_mm": res,
        "shape": list(grid_shape(res)),
        "field_of_view_mm": list(FOV_MM),
        "orientation": "RAS, or LPS where a test case's record says so",
        "affine": "per case: the slab is centred on the subject's pons",
        "landmarks_mm": _landmarks(),
    }


def _landmarks() -> dict:
    stem = brainstem()
    return {
        "pons": [round(float(v), 1) for v in stem.pons],
        "pontomesencephalic_z": stem.top_z,
        "root_entry_zones": [[round(float(v), 1) for v in p] for p in stem.rez],
    }


def grid_shape(res: float) -> tuple[int, int, int]:
    """The slab's voxels at `res` mm (the same for every case of a dataset)."""
    return cast(tuple[int, int, int], tuple(int(round(f / res)) for f in FOV_MM))


def _soft(v: torch.Tensor) -> torch.Tensor:
    return (v + 0.5).clamp(0.0, 1.0)


def _base(stem: Brainstem, world: torch.Tensor, cistern_mm: float) -> torch.Tensor:
    """[7,X,Y,Z] fractions wm, cgm, dgm, csf, vent, bone, 0 (marrow, filled later) at template
    RAS mm `world`: the template's tissues, cisterns within `cistern_mm` of the brainstem
    and 1.5 mm of any brain, bone beyond."""
    s = sample(stem.maps, stem.voxel(world))
    t5 = s[:5].clamp(0.0, 1.0)
    brain = t5.sum(0).clamp(max=1.0)
    far_stem, far_brain = FAR_MM - s[6], FAR_MM - s[7]
    inside = torch.maximum(
        s[5], torch.maximum(_soft(cistern_mm - far_stem), _soft(1.5 - far_brain))
    )
    csf = (inside - brain).clamp(0.0, 1.0)
    bone = (1.0 - brain - csf).clamp(0.0, 1.0)
    t5[3] = t5[3] + csf
    return torch.cat([t5, bone[None], torch.zeros_like(bone)[None]])


def _structures(
    tubes: list[Tube], world: torch.Tensor, res: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """([4,X,Y,Z] fractions per KINDS, [X,Y,Z] CSF sleeve) of every tube, overlaps shared."""
    grid = tuple(world.shape[:3])
    occ = torch.zeros((len(KINDS), *grid))
    halo = torch.zeros(grid)
    for t in tubes:
        k = KINDS.index(t.kind)
        for box, core, h in render(t, world, res, HALO_MM[t.kind]):
            occ[(k, *box)] = torch.maximum(occ[(k, *box)], core)
            halo[box] = torch.maximum(halo[box], h)
    return occ / occ.sum(0).clamp(min=1.0), halo


def labels(occ: torch.Tensor) -> np.ndarray:
    """uint8 {0, 1 nerves, 2 vessels}: the trigeminal nerves and the vessels where they fill
    more than half a voxel (the larger one where they touch); look-alike nerves stay 0."""
    nerve, vessel = occ[0], occ[2] + occ[3]
    out = torch.zeros(nerve.shape, dtype=torch.uint8)
    out[(nerve > 0.5) & (nerve >= vessel)] = 1
    out[(vessel > 0.5) & (vessel > nerve)] = 2
    return out.numpy()


def _means(rng: np.random.Generator, shift: float, vendor: str | None) -> tuple[np.ndarray, dict]:
    """T2 signal per channel (wm, cgm, dgm, csf, vent, bone, marrow, nerve, look-alike,
    artery, vein): a vendor-shifted T2 with the parenchyma darkened as heavy T2 weighting
    does, nerves about as dark as white matter, arteries as flow voids."""
    c = draw_contrast(rng, shift, vendor)
    t2 = c.means["t2"][:5].astype(np.float64)
    t2[:3] *= rng.uniform(0.55, 0.8)
    csf = float(t2[3])
    nerve = float(t2[0]) * rng.uniform(0.75, 1.0)
    rest = [0.04 * csf, rng.uniform(0.2, 0.45) * csf, nerve, nerve * rng.uniform(0.9, 1.1)]
    rest += [rng.uniform(0.03, 0.12) * csf, rng.uniform(0.15, 0.4) * csf]
    means = np.concatenate([t2, rest]).astype(np.float32)
    return means, {"vendor": c.vendor, "gain": c.gain["t2"]}


def _acquisition(rng: np.random.Generator, res: float, shift: float) -> Acquisition:
    """A 3D slab: isotropic and high-SNR in research, thicker partitions (up to 2x), lower
    SNR, more bias and some pulsation ghosting when shifted."""
    snr = rng.uniform(18.0, 30.0) * (1.0 - 0.45 * shift * rng.uniform(0.7, 1.0))
    bias = 0.03 + 0.03 * rng.uniform() + 0.08 * shift * rng.uniform(0.5, 1.0)
    slice_mm = res * (1.0 + shift * rng.uniform(0.4, 1.0))
    inplane = res * (1.0 + 0.3 * shift * rng.uniform())
    ghost = shift * rng.uniform(0.01, 0.04) if rng.uniform() < 0.4 * shift else 0.0
    return Acquisition(float(snr), float(bias), float(slice_mm), float(inplane), float(ghost), 1)


def _banding(rng: np.random.Generator, shape: tuple[int, int, int], res: float, shift: float):
    """bSSFP off-resonance bands (thin dark stripes) in a shifted scan, else None."""
    if not rng.uniform() < 0.6 * shift:
        return None
    psi = 2 * np.pi * rng.uniform(0.3, 0.7) * smooth_noise(rng, shape, res, 30.0)
    return 1.0 - rng.uniform(0.3, 0.6) * shift * ((0.5 + 0.5 * torch.cos(psi)) ** 16)


def fov(
    stem: Brainstem, shape: SubjectShape, pose: Pose, res: float
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """(subject pons RAS mm, RAS mm of voxel 0, grid shape) of the slab centred on the pons."""
    centre = subject_world(stem.pons, shape, pose)
    grid = grid_shape(res)
    return centre, centre - (np.array(grid) - 1) / 2.0 * res, grid


def _fractions(
    rng: np.random.Generator, stem: Brainstem, world: torch.Tensor, tubes: list[Tube], res: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """([11,X,Y,Z] channel fractions in `_means` order, [4,X,Y,Z] tube fractions, cistern
    width mm): the tubes take their room from whatever was there, their sleeves turn bone
    into CSF, part of the bone is marrow."""
    cistern = float(rng.uniform(3.5, 6.0))
    base = _base(stem, world, cistern)
    occ, halo = _structures(tubes, world, res)
    sleeve = base[5] * halo
    base[3] += sleeve
    base[5] -= sleeve
    grid = cast(tuple[int, int, int], tuple(world.shape[:3]))
    marrow = base[5] * (0.5 + 0.7 * smooth_noise(rng, grid, res, 8.0)).clamp(0.0, 1.0)
    base[5] -= marrow
    base[6] = marrow
    base = base * (1.0 - occ.sum(0))
    return torch.cat([base, occ]), occ, cistern


def make_trigeminal(spec: SessionSpec, res: float) -> tuple[Session, np.ndarray]:
    """Synthesise one trigeminal case: (session with images {"t2"} and the label map as
    `lesion`, the NIfTI affine of the stored arrays)."""
    stem = brainstem()
    srng = np.random.default_rng(spec.subject_seed)
    shape = random_shape(srng)
    tubes, found = draw_structures(srng, stem, spec.distractors)
    rng = np.random.default_rng(spec.session_seed)
    pose = random_pose(rng, 4.0 + 8.0 * spec.shift_of("pose"), 4.0 + 6.0 * spec.shift_of("pose"))
    pons, origin, grid = fov(stem, shape, pose, res)
    coarse = template_world(lattice_world(grid, res, origin, 2), shape, pose)
    world = upsample(coarse, grid)
    fractions, occ, cistern = _fractions(rng, stem, world, tubes, res)
    means, contrast = _means(rng, spec.shift_of("contrast"), spec.vendor)
    img = torch.tensordot(torch.as_tensor(means), fractions, dims=1)
    img = img * (1.0 + 0.03 * smooth_noise(rng, grid, res, 5.0))
    bands = _banding(rng, grid, res, spec.shift_of("acquisition"))
    if bands is not None:
        img = img * bands
    acq = _acquisition(rng, res, spec.shift_of("acquisition"))
    keep = torch.ones(grid, dtype=torch.bool)
    img = acquire(img, acq, res, float(means[3]), rng, keep)
    vol = (img.clamp(min=0.0) * contrast["gain"]).round().clamp(max=32767).numpy().astype(np.int16)
    seg = labels(occ)
    lps = bool(rng.uniform() < 0.5 * spec.shift_of("pose"))
    affine = np.diag([res, res, res, 1.0])
    affine[:3, 3] = origin
    meta = {
        "age": round(spec.age, 1),
        "structures": [t.record() for t in tubes],
        "conflict": found["conflict"],
        "look_alikes": found["look_alikes"],
        "label_voxels": {"nerves": int((seg == 1).sum()), "vessels": int((seg == 2).sum())},
        "pons_mm": [round(float(v), 1) for v in pons],
        "cistern_mm": round(cistern, 2),
        "vendor": contrast["vendor"],
        "shift": round(spec.shift, 3),
        "banding": bands is not None,
        "orientation": "LPS" if lps else "RAS",
        "acquisition": {"t2": acq.as_dict()},
    }
    session = Session({"t2": vol}, seg, keep.numpy(), meta, qc=qc_views(vol, seg))
    if lps:
        session, affine = to_lps(session, affine)
    return session, affine


def to_lps(s: Session, affine: np.ndarray) -> tuple[Session, np.ndarray]:
    """The same arrays stored with x and y reversed (an LPS-ordered NIfTI of the same head)."""
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:2, 3] = np.array(s.lesion.shape[:2]) - 1.0
    images = {k: np.ascontiguousarray(v[::-1, ::-1]) for k, v in s.images.items()}
    lesion = np.ascontiguousarray(s.lesion[::-1, ::-1])
    brain = np.ascontiguousarray(s.brain[::-1, ::-1])
    return Session(images, lesion, brain, s.meta, qc=s.qc), affine @ flip


def qc_views(vol: np.ndarray, seg: np.ndarray) -> dict:
    """Axial, coronal and sagittal slices through the right trigeminal nerve's centre (the
    slab's centre when it has none), each with its label slice."""
    idx = np.argwhere(seg == 1)
    right = idx[idx[:, 0] >= seg.shape[0] // 2]
    pick = right if len(right) else idx
    c = pick.mean(0).round().astype(int) if len(pick) else np.array(seg.shape) // 2
    return views(vol, seg, np.ones(seg.shape, bool), (int(c[0]), int(c[1]), int(c[2])))
