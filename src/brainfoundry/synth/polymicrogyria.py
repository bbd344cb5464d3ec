"""Polymicrogyria (FOMO26 task 5): a cortical region folded into many small, shallow gyri. The
region is placed in template space (perisylvian most often, sometimes on both sides) so it
deforms with the subject; inside it, on the subject's tissue maps:

- the cortex grows thicker with a bumpy grey/white junction (white matter within a depth set
  by a template-space ripple field, 1.5-4 mm, becomes grey matter);
- the sulci grow shallow (fused microgyri fill sulcal CSF with grey matter);
- the surface gets many small notches (a second ripple turns surface grey matter into CSF).

Every change is weighted by the region's membership, so outside it the tissues are untouched.
`focal_atrophy` is its label-independent look-alike: a region of widened sulci."""

from __future__ import annotations

import numpy as np
import torch

from .anatomy import Anatomy
from .fields import blur, ellipsoid_distance, sample, smooth_noise, soft_inside
from .lesions import near, pick_voxel

LOBES = {"perisylvian": 0.6, "frontal": 0.2, "parietal": 0.12, "temporal": 0.08}


def lobe_mask(anat: Anatomy, name: str) -> torch.Tensor:
    """Template voxels (bool) in cortical grey matter where a region of this lobe may centre."""
    w = anat.world_grid()
    ax, y, z = w[..., 0].abs(), w[..., 1], w[..., 2]
    cortex = anat.tissues[1] > 0.5
    if name == "perisylvian":
        return cortex & (ax >= 35) & (ax <= 62) & (y >= -45) & (y <= 10) & (z >= -5) & (z <= 35)
    if name == "frontal":
        return cortex & (ax >= 15) & (ax <= 50) & (y >= 10) & (y <= 60) & (z >= 0) & (z <= 50)
    if name == "parietal":
        return cortex & (ax >= 20) & (ax <= 55) & (y >= -70) & (y <= -25) & (z >= 25) & (z <= 60)
    if name == "temporal":
        return cortex & (ax >= 40) & (ax <= 65) & (y >= -50) & (y <= 5) & (z >= -30) & (z <= -5)
    raise KeyError(name)


def _mirror(anat: Anatomy, centre: np.ndarray) -> np.ndarray:
    """The template voxel mirrored across the midline (the template is symmetric)."""
    world = anat.world(centre)
    world[0] = -world[0]
    return anat.voxel(world)


def region(
    rng: np.random.Generator, anat: Anatomy, coords: torch.Tensor, centres: list, r_mm: float
) -> tuple[tuple[slice, slice, slice], torch.Tensor]:
    """(output box, membership in [0,1] on the box) of noisy balls of radius `r_mm` around
    template voxels `centres`; the ramp at the edge is one voxel wide."""
    r = r_mm / anat.res
    boxes = [near(coords, c, r * 1.4) for c in centres]
    box = tuple(
        slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(3)
    )
    sub = coords[box]
    noise = smooth_noise(rng, tuple(sub.shape[:3]), anat.res, max(6.0, r_mm / 2))  # type: ignore[arg-type]
    w = torch.zeros(sub.shape[:3])
    for c in centres:
        radii = r * rng.uniform(0.8, 1.2, size=3)
        dist = ellipsoid_distance(sub, c, radii) + 0.12 * noise
        w = torch.maximum(w, soft_inside(dist, 1.0 / r))
    return box, w  # type: ignore[return-value]


def ripple(
    rng: np.random.Generator, anat: Anatomy, sub: torch.Tensor, cell_mm: float
) -> torch.Tensor:
    """A unit-variance random field about 2 x `cell_mm` across, defined on a template-space
    lattice and sampled at the template coordinates `sub` [x,y,z,3] (it deforms with them)."""
    cell = cell_mm / anat.res
    lo = sub.reshape(-1, 3).min(0).values - 2 * cell
    hi = sub.reshape(-1, 3).max(0).values + 2 * cell
    n = [int(np.ceil(float(h - low) / cell)) + 1 for low, h in zip(lo, hi)]
    g = torch.from_numpy(rng.standard_normal(n, dtype=np.float32))
    f = sample(g, (sub - lo) / cell)
    return (f - f.mean()) / f.std().clamp(min=1e-6)


def _draw_site(rng: np.random.Generator, anat: Anatomy, difficulty: float) -> dict:
    lobe = str(rng.choice(list(LOBES), p=list(LOBES.values())))
    where = anat.candidates(f"pmg:{lobe}", lambda a: lobe_mask(a, lobe))
    centre = pick_voxel(rng, where)
    bilateral = lobe == "perisylvian" and rng.uniform() < 0.3
    centres = [centre, _mirror(anat, centre)] if bilateral else [centre]
    r_mm = float(rng.uniform(12.0, 22.0) * (1.2 - 0.4 * difficulty))
    return {"lobe": lobe, "bilateral": bilateral, "centres": centres, "radius_mm": r_mm}


def polymicrogyria(
    rng: np.random.Generator,
    anat: Anatomy,
    coords: torch.Tensor,
    tissues: torch.Tensor,
    difficulty: float,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(tissues with the malformation, bool mask of the region (membership > 0.5) in brain
    tissue, its dataset.json record). `tissues` [C,X,Y,Z] in CHANNELS order."""
    site = _draw_site(rng, anat, difficulty)
    box, w = region(rng, anat, coords, site["centres"], site["radius_mm"])
    sub = coords[box]
    bumps, notches = ripple(rng, anat, sub, 2.5), ripple(rng, anat, sub, 1.5)
    strength = float(np.clip(1.25 - 0.6 * difficulty, 0.4, 1.0))
    fill = float(rng.uniform(0.3, 0.6))
    t = tissues[(slice(None), *box)].clone()
    wm, gm, csf = t[0], t[1], t[3]
    # how close to the cortex a white-matter voxel lies (1 in the cortex, ~0 deep in WM)
    cortex = blur(gm + csf, 1.5 / anat.res)
    level = 0.5 - 0.15 * bumps  # a bumpy grey/white junction 1-3 mm deeper than it was
    to_gm = wm * w * ((cortex - level) / 0.08).clamp(0.0, 1.0) * strength
    envelope = blur(t[:5].sum(0), 3.0 / anat.res)
    deep = ((envelope - 0.55) * 3.0).clamp(0.0, 1.0)
    filled = csf * w * deep * fill * strength
    notch = gm * w * (1.0 - deep) * ((-notches - 0.5) * 2.0).clamp(0.0, 1.0) * 0.6 * strength
    t[0] = wm - to_gm
    t[1] = gm + to_gm + filled - notch
    t[3] = csf - filled + notch
    out = tissues.clone()
    out[(slice(None), *box)] = t
    mask = torch.zeros(tissues.shape[1:], dtype=torch.bool)
    mask[box] = (w > 0.5) & (t[:5].sum(0) > 0.1)
    meta = {
        "lobe": site["lobe"],
        "bilateral": site["bilateral"],
        "radius_mm": round(site["radius_mm"], 1),
        "centres_mm": [[round(float(v), 1) for v in anat.world(c)] for c in site["centres"]],
        "strength": round(strength, 2),
    }
    return out, mask, meta


def focal_atrophy(
    rng: np.random.Generator, anat: Anatomy, coords: torch.Tensor, tissues: torch.Tensor
) -> tuple[torch.Tensor, dict]:
    """A label-independent look-alike: a cortical region (any lobe) with widened sulci, exposed
    grey matter turned into CSF as ageing does, only locally."""
    site = _draw_site(rng, anat, 0.5)
    box, w = region(rng, anat, coords, site["centres"][:1], site["radius_mm"])
    t = tissues[(slice(None), *box)].clone()
    exposure = (blur(t[3], 1.5 / anat.res) * 4.0).clamp(0.0, 1.0)
    loss = float(rng.uniform(0.3, 0.6))
    moved = t[1] * w * exposure * loss
    t[1] = t[1] - moved
    t[3] = t[3] + moved
    out = tissues.clone()
    out[(slice(None), *box)] = t
    centre = [round(float(v), 1) for v in anat.world(site["centres"][0])]
    return out, {"lobe": site["lobe"], "centre_mm": centre, "loss": round(loss, 2)}
