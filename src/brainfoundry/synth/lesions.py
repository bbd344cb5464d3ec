"""Intra-axial pathology placed in template space (so it deforms with the subject): infarcts in
vascular-territory-like regions at three ages, white-matter hyperintensities, microbleeds and
DWI artefacts (the distractors). Each returns `Lesion`s with per-sequence intensity ratios.

Ratios are relative to the local tissue signal; `_strength` scales their contrast with the
difficulty knob (harder = fainter lesions)."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from .anatomy import Anatomy
from .contrast import Lesion
from .fields import ellipsoid_distance, random_unit_axes, smooth_noise, soft_inside

BRAIN_CENTRE_MM = np.array([0.0, -17.0, 5.0])

# stage -> (ratio ranges per map); hyperacute shows on DWI/ADC before FLAIR does
INFARCT_RATIOS = {
    "hyperacute": {
        "flair": (1.0, 1.1),
        "t2": (1.05, 1.15),
        "t1": (0.95, 1.0),
        "pd": (1.0, 1.1),
        "s0": (1.05, 1.15),
        "adc": (0.45, 0.65),
        "t2s": (1.0, 1.05),
        "swi": (1.0, 1.0),
    },
    "acute": {
        "flair": (1.2, 1.45),
        "t2": (1.25, 1.5),
        "t1": (0.85, 0.93),
        "pd": (1.1, 1.25),
        "t1c": (0.9, 0.95),
        "s0": (1.2, 1.35),
        "adc": (0.45, 0.65),
        "t2s": (1.0, 1.1),
        "swi": (0.95, 1.05),
    },
    "subacute": {
        "flair": (1.4, 1.7),
        "t2": (1.4, 1.7),
        "t1": (0.75, 0.85),
        "pd": (1.2, 1.35),
        "t1c": (1.05, 1.25),
        "s0": (1.35, 1.6),
        "adc": (0.85, 1.05),
        "t2s": (1.05, 1.15),
        "swi": (1.0, 1.1),
    },
    "chronic": {
        "flair": (1.35, 1.65),
        "t2": (1.5, 1.8),
        "t1": (0.65, 0.8),
        "pd": (1.25, 1.4),
        "t1c": (0.7, 0.8),
        "s0": (1.45, 1.7),
        "adc": (1.5, 2.0),
        "t2s": (1.1, 1.2),
        "swi": (1.0, 1.1),
    },
}
STAGE_P = {"hyperacute": 0.12, "acute": 0.3, "subacute": 0.18, "chronic": 0.4}
WMH_RATIOS = {
    "flair": (1.4, 1.75),
    "t2": (1.55, 1.85),
    "t1": (0.78, 0.88),
    "pd": (1.25, 1.4),
    "t1c": (0.8, 0.9),
    "s0": (1.5, 1.75),
    "adc": (1.3, 1.6),
    "t2s": (1.2, 1.35),
    "swi": (1.05, 1.15),
}
MICROBLEED_RATIOS = {"t2s": (0.2, 0.4), "swi": (0.08, 0.2), "t2": (0.8, 0.9)}
# name -> (probability, region test on template world mm and tissue fractions)
TERRITORIES = {
    "mca": 0.4,
    "aca": 0.08,
    "pca": 0.14,
    "lacunar": 0.24,
    "posterior_fossa": 0.14,
}


def _strength(
    ratios: dict[str, tuple[float, float]], rng: np.random.Generator, difficulty: float
) -> dict[str, float]:
    k = 1.3 - 0.6 * difficulty  # 1.3x contrast when easy, 0.7x when hardest
    return {m: float(1.0 + (rng.uniform(lo, hi) - 1.0) * k) for m, (lo, hi) in ratios.items()}


def territory_mask(anat: Anatomy, name: str) -> torch.Tensor:
    """Template voxels (bool) where an infarct of this territory may be centred."""
    w = anat.world_grid()
    y, z, ax = w[..., 1], w[..., 2], w[..., 0].abs()
    t = anat.tissues
    tissue = t[0] + t[1] + t[2]
    solid = tissue > 0.75
    if name == "mca":
        return solid & (ax >= 20) & (y > -80) & (y < 50) & (z > -20) & (z < 60)
    if name == "aca":
        return solid & (ax <= 16) & (y > -50) & (z > 10)
    if name == "pca":
        occ = (y < -62) & (z < 35)
        medial_temporal = (y < -20) & (y > -60) & (z < 2) & (ax > 10) & (ax < 40)
        return solid & (occ | medial_temporal) & (z > -20)
    if name == "lacunar":
        deep_wm = (t[0] > 0.8) & (ax < 28) & (y > -35) & (y < 25) & (z > -5) & (z < 32)
        return (t[2] > 0.25) | deep_wm
    if name == "posterior_fossa":
        return solid & (z < -25) & (y < -42)
    raise KeyError(name)


def pick_voxel(rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
    """A random candidate voxel (from `Anatomy.candidates`), jittered within the voxel."""
    if len(idx) == 0:
        raise RuntimeError("no candidate voxel for a lesion (resolution too coarse?)")
    return idx[int(rng.integers(len(idx)))].astype(np.float64) + rng.uniform(-0.5, 0.5, size=3)


def _tissue_fraction(tissues: torch.Tensor) -> torch.Tensor:
    return (tissues[0] + tissues[1] + tissues[2]).clamp(0.0, 1.0)


def _hemisphere(anat: Anatomy, coords: torch.Tensor, centre: np.ndarray) -> torch.Tensor:
    """Soft mask of the template hemisphere that holds `centre` (infarcts respect the midline)."""
    x = coords[..., 0] * anat.res + float(anat.affine[0, 3])
    cx = float(anat.world(centre)[0])
    if abs(cx) < 2 * anat.res:
        return torch.ones_like(x)
    return (np.sign(cx) * x / anat.res + 0.5).clamp(0.0, 1.0)


def infarct(
    rng: np.random.Generator,
    anat: Anatomy,
    coords: torch.Tensor,
    tissues: torch.Tensor,
    difficulty: float,
    stage: str | None = None,
    territory: str | None = None,
) -> tuple[Lesion, torch.Tensor, torch.Tensor]:
    """One infarct: (lesion, updated tissues, bool mask of lesion voxels >= 1 voxel).

    Territorial infarcts are wedges elongated towards the brain centre; lacunes are small and
    deep; chronic ones larger than ~6 mm cavitate (a CSF-filled core inside a gliotic rim)."""
    stage = stage or str(rng.choice(list(STAGE_P), p=list(STAGE_P.values())))
    territory = territory or str(rng.choice(list(TERRITORIES), p=list(TERRITORIES.values())))
    where = anat.candidates(f"territory:{territory}", lambda a: territory_mask(a, territory))
    tissue = _tissue_fraction(tissues)
    r_mm = _infarct_radius(rng, anat, territory, difficulty)
    centre, r_mm, dist, frac, mask = _place_infarct(
        rng, anat, coords, tissue, where, territory, r_mm
    )
    meta = {
        "stage": stage,
        "territory": territory,
        "radius_mm": round(r_mm, 1),
        "centre_mm": [round(float(c), 1) for c in anat.world(centre)],
    }
    if stage == "chronic" and r_mm > 6.0:
        tissues, frac = _cavitate(rng, anat, tissues, tissue, dist, frac, r_mm)
        meta["cavitated"] = True
    ratios = _strength(INFARCT_RATIOS[stage], rng, difficulty)
    return Lesion("infarct", frac, ratios, meta), tissues, mask


def _infarct_radius(
    rng: np.random.Generator, anat: Anatomy, territory: str, difficulty: float
) -> float:
    """Radius in mm: lacunes 1.5-7.5 mm, territorial infarcts log-uniform and larger when easy;
    never under 0.6 voxel, so that the first try can cover a voxel."""
    if territory == "lacunar":
        r_mm = rng.uniform(1.5, 7.5)
    else:
        hard = 1.0 - 0.6 * difficulty
        r_mm = float(np.exp(rng.uniform(np.log(3.0), np.log(6.0 + 26.0 * hard))))
    return max(r_mm, 0.6 * anat.res)


def _place_infarct(
    rng: np.random.Generator,
    anat: Anatomy,
    coords: torch.Tensor,
    tissue: torch.Tensor,
    where: np.ndarray,
    territory: str,
    r_mm: float,
) -> tuple[np.ndarray, float, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Try up to 12 centres, growing the radius 1.3x after each miss, until the infarct holds a
    voxel (one may fall on too little tissue): (centre, radius mm, distance, fraction, mask)."""
    noise = smooth_noise(
        rng, cast(tuple[int, int, int], tuple(coords.shape[:3])), anat.res, max(6.0, r_mm)
    )
    for _ in range(12):
        centre = pick_voxel(rng, where)
        dist, frac = _infarct_shape(rng, anat, coords, tissue, noise, centre, territory, r_mm)
        mask = frac > 0.5
        if mask.any():
            return centre, r_mm, dist, frac, mask
        r_mm *= 1.3
    raise RuntimeError("could not place an infarct with at least one voxel")


def _infarct_shape(
    rng: np.random.Generator,
    anat: Anatomy,
    coords: torch.Tensor,
    tissue: torch.Tensor,
    noise: torch.Tensor,
    centre: np.ndarray,
    territory: str,
    r_mm: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(normalised distance, fraction) of one infarct at `centre`: a noisy ellipsoid elongated
    towards the brain centre (round for lacunes), in tissue and in one hemisphere only."""
    radial = anat.world(centre) - BRAIN_CENTRE_MM
    radial /= max(np.linalg.norm(radial), 1e-6)
    axes = random_unit_axes(rng, radial)
    elong = 1.0 if territory == "lacunar" else rng.uniform(1.2, 1.8)
    radii = np.array([elong, 1.0, rng.uniform(0.7, 1.0)]) * r_mm / anat.res
    box = near(coords, centre, radii.max() * 1.5)
    grid = tuple(coords.shape[:3])
    dist = torch.full(grid, 9.0)
    dist[box] = ellipsoid_distance(coords[box], centre, radii, axes) + 0.18 * noise[box]
    frac = torch.zeros(grid)
    frac[box] = (
        soft_inside(dist[box], anat.res / r_mm)
        * tissue[box]
        * _hemisphere(anat, coords[box], centre)
    )
    return dist, frac


def _cavitate(
    rng: np.random.Generator,
    anat: Anatomy,
    tissues: torch.Tensor,
    tissue: torch.Tensor,
    dist: torch.Tensor,
    frac: torch.Tensor,
    r_mm: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn the core of a chronic infarct into CSF: (tissues with the core moved to CSF, the
    remaining gliotic rim as the lesion fraction)."""
    core = soft_inside(dist / rng.uniform(0.45, 0.7), anat.res / r_mm) * frac
    share = core / tissue.clamp(min=1e-3)
    tissues = tissues.clone()
    tissues[:3] = tissues[:3] * (1.0 - share)
    tissues[3] = tissues[3] + core
    return tissues, frac - core


def near(coords: torch.Tensor, centre: np.ndarray, reach: float) -> tuple[slice, slice, slice]:
    """Output-grid box (slices) around where template point `centre` landed: the warp is smooth,
    so a 4-voxel lattice of `coords` locates it to within a few voxels."""
    step = 4
    sub = coords[::step, ::step, ::step]
    d = ((sub - torch.as_tensor(centre, dtype=torch.float32)) ** 2).sum(-1)
    i = np.unravel_index(int(torch.argmin(d)), tuple(sub.shape[:3]))
    r = int(np.ceil(reach)) + step + 2
    return tuple(
        slice(max(0, step * a - r), min(n, step * a + r + 1)) for a, n in zip(i, coords.shape[:3])
    )  # type: ignore[return-value]


def blobs(
    rng: np.random.Generator,
    anat: Anatomy,
    coords: torch.Tensor,
    where: np.ndarray,
    count: int,
    radius_mm: tuple[float, float],
    elongation: float = 1.0,
) -> torch.Tensor:
    """Union (max) of `count` small soft ellipsoids centred at random `where` voxels."""
    out = torch.zeros(coords.shape[:3])
    if count <= 0 or len(where) == 0:
        return out
    for _ in range(count):
        centre = pick_voxel(rng, where)
        r = rng.uniform(*radius_mm) / anat.res
        radii = np.array([r * rng.uniform(1.0, elongation), r, r * rng.uniform(0.6, 1.0)])
        box = near(coords, centre, radii.max() * 1.5)
        dist = ellipsoid_distance(coords[box], centre, radii, random_unit_axes(rng))
        out[box] = torch.maximum(out[box], soft_inside(dist, 1.0 / max(r, 0.5)))
    return out


def wmh(
    rng: np.random.Generator,
    anat: Anatomy,
    coords: torch.Tensor,
    tissues: torch.Tensor,
    count: int,
    difficulty: float,
) -> Lesion | None:
    """White-matter hyperintensities: periventricular caps and deep punctate foci, in WM only."""
    if count <= 0:
        return None
    peri = anat.candidates(
        "wmh:peri", lambda a: (a.tissues[0] > 0.4) & (a.vent_grad.norm(dim=0) > 0.2)
    )
    deep = anat.candidates("wmh:deep", lambda a: a.tissues[0] > 0.85)
    n_peri = int(rng.binomial(count, 0.5))
    f = torch.maximum(
        blobs(rng, anat, coords, peri, n_peri, (2.5, 7.0), 1.8),
        blobs(rng, anat, coords, deep, count - n_peri, (1.5, 4.5)),
    )
    frac = f * tissues[0].clamp(0.0, 1.0)
    return Lesion("wmh", frac, _strength(WMH_RATIOS, rng, difficulty), {"count": count})


def microbleeds(
    rng: np.random.Generator, anat: Anatomy, coords: torch.Tensor, count: int
) -> Lesion | None:
    """Susceptibility spots (dark, blooming on T2*/SWI) in deep GM and at the GM/WM junction."""
    if count <= 0:
        return None
    where = anat.candidates(
        "microbleeds",
        lambda a: (a.tissues[2] > 0.25) | ((a.tissues[0] > 0.3) & (a.tissues[1] > 0.3)),
    )
    frac = blobs(rng, anat, coords, where, count, (1.2, 2.5))
    ratios = {m: float(rng.uniform(*r)) for m, r in MICROBLEED_RATIOS.items()}
    return Lesion("microbleeds", frac, ratios, {"count": count})


def dwi_artefact(rng: np.random.Generator, anat: Anatomy, coords: torch.Tensor) -> Lesion:
    """Bright DWI-only blob at an air/tissue interface (frontal/temporal base): a distractor with
    normal ADC, elongated along the phase-encoding (AP) axis."""

    def band(a: Anatomy) -> torch.Tensor:
        w = a.world_grid()
        soft = a.mask
        if not ((soft > 0.3) & (soft < 0.8)).any():  # 1 mm: a binary mask, no partial volume
            k = max(3, int(round(4.0 / a.res)) | 1)
            soft = F.avg_pool3d(soft[None, None].float(), k, stride=1, padding=k // 2)[0, 0]
        return (soft > 0.3) & (soft < 0.8) & (a.mask > 0.3) & (w[..., 2] < -5) & (w[..., 1] > -15)

    centre = pick_voxel(rng, anat.candidates("dwi_artefact", band))
    r = rng.uniform(3.0, 8.0) / anat.res
    radii = np.array([r * 0.5, r * rng.uniform(1.2, 2.0), r * 0.6])
    box = near(coords, centre, radii.max() * 1.5)
    frac = torch.zeros(coords.shape[:3])
    frac[box] = soft_inside(ellipsoid_distance(coords[box], centre, radii), 1.0 / max(r, 0.5))
    return Lesion(
        "dwi_artefact",
        frac,
        {"dwi": float(rng.uniform(1.5, 2.3))},
        {"centre_mm": [round(float(c), 1) for c in anat.world(centre)]},
    )
