"""Meningiomas: extra-axial, dural-based, well-circumscribed masses. The tumour is a lobulated
ball centred just inside the dura (so it has a flat dural base), clipped by the intracranial
space; the brain is pushed away by an incompressible radial displacement (r_old^3 = r^3 - R^3),
so the tumour occupies space the brain left and never overlaps brain tissue. Some have a CSF
cleft, peritumoral oedema in the white matter, or calcifications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from .anatomy import Anatomy
from .contrast import Lesion
from .fields import random_unit_axes, sample, smooth_noise, soft_inside
from .lesions import pick_voxel

SITES = {
    "convexity": 0.35,
    "parasagittal": 0.25,
    "sphenoid_wing": 0.15,
    "olfactory": 0.08,
    "posterior_fossa": 0.17,
}
OEDEMA_RATIOS = {
    "flair": (1.5, 1.8),
    "t2": (1.7, 2.0),
    "t1": (0.75, 0.85),
    "pd": (1.25, 1.4),
    "s0": (1.6, 1.9),
    "adc": (1.6, 1.9),
    "t2s": (1.2, 1.35),
    "swi": (1.05, 1.15),
}
CALCIFICATION_RATIOS = {
    "t2s": (0.3, 0.45),
    "swi": (0.15, 0.3),
    "t1": (0.8, 0.9),
    "t2": (0.6, 0.8),
    "flair": (0.7, 0.85),
}


@dataclass
class Site:
    name: str
    centre: np.ndarray  # template voxels
    radius: float  # voxels
    lobes: np.ndarray  # [3,3] unit vectors (columns)
    lobe_amp: np.ndarray  # 3

    def radius_towards(self, d: torch.Tensor) -> torch.Tensor:
        """Lobulated radius (voxels) in directions d [...,3]."""
        dots = d @ torch.as_tensor(self.lobes, dtype=torch.float32)
        amp = torch.as_tensor(self.lobe_amp, dtype=torch.float32)
        return self.radius * (1.0 + ((dots**2 - 1.0 / 3.0) * amp).sum(-1))


def _site_mask(anat: Anatomy, name: str) -> torch.Tensor:
    """Candidate dural points (template grid); parasagittal ones sit on the midline falx."""
    w = anat.world_grid()
    y, z, ax = w[..., 1], w[..., 2], w[..., 0].abs()
    band = (anat.mask > 0.3) & (anat.mask < 0.75)
    if name == "convexity":
        return band & (z > 15)
    if name == "parasagittal":
        csf = anat.tissues[3]
        return (ax <= 1.5 * anat.res) & (csf > 0.2) & (y > -60) & (y < 40) & (z > 10) & (z < 60)
    if name == "sphenoid_wing":
        return band & (z > -25) & (z < 5) & (y > -5) & (y < 30) & (ax > 20)
    if name == "olfactory":
        return band & (ax < 14) & (y > 15) & (z < 5)
    if name == "posterior_fossa":
        return band & (z > -50) & (z < -10) & (y < -45)
    raise KeyError(name)


def draw_site(
    rng: np.random.Generator, anat: Anatomy, difficulty: float, min_radius_mm: float = 6.0
) -> Site:
    name = str(rng.choice(list(SITES), p=list(SITES.values())))
    where = anat.candidates(f"meningioma:{name}", lambda a: _site_mask(a, name))
    point = pick_voxel(rng, where)
    hard = 1.0 - 0.5 * difficulty
    r_mm = float(np.exp(rng.uniform(np.log(6.0), np.log(8.0 + 28.0 * hard))))
    r = max(r_mm, min_radius_mm, 1.5 * anat.res) / anat.res
    if name == "parasagittal":  # the falx: grow into one hemisphere
        normal = np.array([rng.choice([-1.0, 1.0]), 0.0, 0.0])
    else:
        g = sample(anat.mask_grad, torch.as_tensor(point, dtype=torch.float32)[None, None, None])
        normal = g.flatten().numpy().astype(np.float64)
        normal /= max(np.linalg.norm(normal), 1e-6)  # points inwards (mask grows inwards)
    centre = point + normal * r * rng.uniform(0.35, 0.6)
    return Site(name, centre, r, random_unit_axes(rng), rng.uniform(-0.12, 0.18, size=3))


def mass_effect(
    anat: Anatomy,
    coords: torch.Tensor,
    site: Site,
    kappa: float = 0.9,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(displaced template coords, tumour fraction) for output voxels with template coords."""
    v = coords - torch.as_tensor(site.centre, dtype=torch.float32)
    r = v.norm(dim=-1).clamp(min=1e-4)
    d = v / r[..., None]
    rad = site.radius_towards(d)
    r_old = (r**3 - (kappa * rad) ** 3).clamp(min=0.0) ** (1.0 / 3.0)
    moved = torch.as_tensor(site.centre, dtype=torch.float32) + d * r_old[..., None]
    tumour = soft_inside(r / rad, 1.0 / rad.clamp(min=1.0)) * sample(anat.icv, coords)
    return moved, tumour


def surroundings(
    rng: np.random.Generator,
    anat: Anatomy,
    coords: torch.Tensor,
    tissues: torch.Tensor,
    site: Site,
    tumour: torch.Tensor,
    difficulty: float,
) -> tuple[torch.Tensor, list[Lesion], dict]:
    """CSF cleft, peritumoral oedema and calcifications around/in a placed tumour."""
    v = coords - torch.as_tensor(site.centre, dtype=torch.float32)
    r = v.norm(dim=-1).clamp(min=1e-4)
    rad = site.radius_towards(v / r[..., None])
    meta: dict = {"site": site.name, "radius_mm": round(site.radius * anat.res, 1)}
    lesions: list[Lesion] = []
    tissues = tissues.clone()
    if rng.uniform() < 0.5:  # CSF cleft: a thin CSF rim between tumour and brain
        t = rng.uniform(0.8, 2.0) / anat.res
        cleft = (((rad + t - r) / max(t, 0.5)).clamp(0, 1) * (1.0 - tumour)).clamp(0, 1)
        brain = tissues[:3].sum(0).clamp(min=1e-3)
        share = (cleft * 0.7).clamp(max=1.0)
        moved = brain * share
        tissues[:3] = tissues[:3] * (1.0 - share)
        tissues[3] = tissues[3] + moved
        meta["csf_cleft"] = True
    shape = cast(tuple[int, int, int], tuple(coords.shape[:3]))
    if rng.uniform() < 0.35 + 0.1 * (1.0 - difficulty):
        reach = rng.uniform(5.0, 25.0) / anat.res
        noise = smooth_noise(rng, shape, anat.res, 8.0)
        zone = soft_inside((r - rad) / reach + 0.25 * noise, 0.3)
        frac = zone * (1.0 - tumour) * tissues[0].clamp(0, 1)
        ratios = {m: float(rng.uniform(lo, hi)) for m, (lo, hi) in OEDEMA_RATIOS.items()}
        lesions.append(Lesion("oedema", frac, ratios))
        meta["oedema_mm"] = round(reach * anat.res, 1)
    if rng.uniform() < 0.25:
        spots = ((smooth_noise(rng, shape, anat.res, 3.0) - 1.2) * 2.5).clamp(0, 1)
        ratios = {m: float(rng.uniform(lo, hi)) for m, (lo, hi) in CALCIFICATION_RATIOS.items()}
        lesions.append(Lesion("calcification", spots * tumour, ratios))
        meta["calcified"] = True
    return tissues, lesions, meta
