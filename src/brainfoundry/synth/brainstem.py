"""The brainstem of the MNI152 template, for the trigeminal task: a 1 mm crop of the tissue maps
around the posterior fossa, the cisterns the skull-stripped template lacks (distances to the
brainstem and to the brain, so a subject's cisterns can be drawn at their own width) and
landmarks measured from the template itself: the anterior midline surface of the brainstem at
each level, the pons (its most anterior, widest part), the pontomesencephalic junction and the
trigeminal root entry zones on the lateral pons."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

CROP_LO = np.array([-56.0, -88.0, -80.0])  # RAS mm of the crop's first voxel (1 mm grid)
CROP_HI = np.array([56.0, 32.0, 8.0])
FAR_MM = 30.0  # distances are capped here (sampling outside the crop reads "far")
SOLID = 0.5  # tissue fraction that counts as brain surface
CHANNELS = ("wm", "cgm", "dgm", "csf", "vent", "mask", "near_stem", "near_brain")


@dataclass(frozen=True)
class Brainstem:
    """The crop (`maps` [8,X,Y,Z] in CHANNELS order; the last two are FAR_MM minus the distance
    in mm to brainstem / any brain tissue, so zero padding reads as far away) and landmarks
    in template RAS mm."""

    maps: torch.Tensor
    front: dict[int, float]  # z -> y of the anterior midline surface of the brainstem
    back: dict[int, float]  # z -> y of its posterior surface (floor of the fourth ventricle)
    pons: np.ndarray  # centre of the pons at mid-level
    top_z: float  # pontomesencephalic junction
    rez: np.ndarray  # [2,3] trigeminal root entry zones, right then left

    def voxel(self, world: torch.Tensor) -> torch.Tensor:
        """Crop voxel coordinates of template RAS mm points."""
        return world - torch.as_tensor(CROP_LO, dtype=torch.float32)

    def tissue_at(self, points: np.ndarray) -> np.ndarray:
        """Brain tissue fraction (WM + GM) at template RAS mm points [N,3] (trilinear)."""
        from scipy.ndimage import map_coordinates

        t = (self.maps[0] + self.maps[1] + self.maps[2]).numpy()
        return map_coordinates(t, (np.asarray(points) - CROP_LO).T, order=1, cval=0.0)

    def centre_at(self, z: float) -> np.ndarray:
        """Midline centre of the brainstem's cross-section at level z (RAS mm)."""
        k = int(np.clip(round(z), min(self.front), max(self.front)))
        return np.array([0.0, 0.5 * (self.front[k] + self.back[k]), float(z)])

    def radius(self, theta: np.ndarray, z: float, reach: float = 24.0) -> np.ndarray:
        """Distance (mm) from `centre_at(z)` to the brainstem surface along axial directions
        `theta` (radians; 0 anterior, +pi/2 towards +x), capped at `reach` where a ray meets
        no surface (the peduncles join the cerebellum)."""
        steps = np.arange(0.0, reach + 0.25, 0.5)
        c = self.centre_at(z)
        d = np.stack([np.sin(theta), np.cos(theta), np.zeros_like(theta)], -1)
        pts = c + d[:, None, :] * steps[None, :, None]
        inside = self.tissue_at(pts.reshape(-1, 3)).reshape(len(theta), -1) > SOLID
        out = np.full(len(theta), reach)
        for i, row in enumerate(inside):
            gone = np.flatnonzero(~row[2:])
            if len(gone):
                out[i] = steps[gone[0] + 2]
        return out


def _crop(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    lo = (CROP_LO - affine[:3, 3]).astype(int)
    hi = (CROP_HI - affine[:3, 3]).astype(int) + 1
    out = np.zeros(tuple(hi - lo), np.float32)
    src = tuple(slice(max(0, a), min(n, b)) for a, b, n in zip(lo, hi, volume.shape))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo))
    out[dst] = volume[src]
    return out


def _midline_profile(tissue: np.ndarray) -> tuple[dict[int, float], dict[int, float]]:
    """Anterior and posterior midline surface (y, mm) of the brainstem at each 1 mm level from
    z = -50 to -18 (above, the midline meets the diencephalon): the first tissue met going
    back from in front, and where it ends."""
    i0 = int(-CROP_LO[0])
    front, back = {}, {}
    for z in range(-50, -17):
        col = tissue[i0, :, int(z - CROP_LO[2])]
        ys = np.arange(len(col)) + CROP_LO[1]
        sel = (ys <= 10) & (ys >= -70)
        prof, ys = col[sel][::-1], ys[sel][::-1]  # anterior to posterior
        inside = np.flatnonzero(prof > SOLID)
        if not len(inside):
            continue
        k = inside[0]
        end = k + int(np.argmax(prof[k:] <= SOLID)) if (prof[k:] <= SOLID).any() else len(ys) - 1
        front[z], back[z] = float(ys[k]), float(ys[end])
    return front, back


def _landmarks(stem: Brainstem) -> tuple[np.ndarray, float, np.ndarray]:
    """(pons centre, pontomesencephalic junction z, root entry zones [2,3])."""
    levels = sorted(z for z in stem.front if -45 <= z <= -18)
    ys = np.array([stem.front[z] for z in levels])
    bulge = [z for z, y in zip(levels, ys) if y >= ys.max() - 1.0]
    mid = float(np.mean(bulge))
    above = [z for z in levels if z > mid and stem.front[z] < ys.max() - 4.0]
    top = float(above[0]) if above else mid + 8.0
    pons = stem.centre_at(mid)
    z_rez = mid - 2.0
    c = stem.centre_at(z_rez)
    half = float(stem.radius(np.array([np.pi / 2]), z_rez, reach=30.0)[0])
    rez = np.array([[s * half, c[1], z_rez] for s in (1.0, -1.0)])
    return pons, top, rez


@functools.lru_cache(maxsize=1)
def brainstem() -> Brainstem:
    """The brainstem crop and its landmarks, built once per process (about 2 s)."""
    from scipy.ndimage import distance_transform_edt

    from .anatomy import _tissue_maps_1mm

    maps, mask, affine = _tissue_maps_1mm()
    crop = np.stack([_crop(m, affine) for m in (*maps, mask)])
    tissue = crop[0] + crop[1] + crop[2]
    solid = tissue > SOLID
    w = [np.arange(n) + CROP_LO[i] for i, n in enumerate(tissue.shape)]
    x, y, z = np.meshgrid(*w, indexing="ij", sparse=True)
    stem_box = (np.abs(x) <= 24) & (y >= -50) & (y <= 0) & (z >= -60) & (z <= -10)
    near_stem = FAR_MM - np.minimum(distance_transform_edt(~(solid & stem_box)), FAR_MM)
    near_brain = FAR_MM - np.minimum(distance_transform_edt(~solid), FAR_MM)
    front, back = _midline_profile(tissue)
    all_maps = np.concatenate([crop, near_stem[None], near_brain[None]]).astype(np.float32)
    stem = Brainstem(torch.from_numpy(all_maps), front, back, np.zeros(3), 0.0, np.zeros((2, 3)))
    pons, top, rez = _landmarks(stem)
    return Brainstem(stem.maps, front, back, pons, top, rez)
