"""Real anatomy for the generator: the MNI152 2009 template and its tissue maps (as shipped with
nilearn), split into tissue classes (WM, cortical GM, deep GM, CSF, ventricles) and resampled
once per process to the output grid of a resolution. Subjects' warps live in `deform`."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from ..errors import ConfigError
from .fields import as_tensor, blur, identity_coords, sample

if TYPE_CHECKING:
    from nibabel.spatialimages import SpatialImage

TISSUES = ("wm", "cgm", "dgm", "csf", "vent")
MARGIN_MM = 12.0
# brain bounding box of the MNI152 mask (world mm, RAS), measured once from the template
BRAIN_LO = np.array([-72.0, -107.0, -72.0])
BRAIN_HI = np.array([72.0, 73.0, 82.0])

# deep grey matter as ellipsoids in MNI mm (centre, radii), mirrored in x: thalamus, caudate,
# putamen, pallidum; the GM probability inside them becomes deep GM
_DEEP_GM = (
    ((11.0, -18.0, 7.0), (8.0, 14.0, 9.0)),
    ((13.0, 10.0, 10.0), (5.0, 12.0, 9.0)),
    ((25.0, 2.0, 1.0), (5.5, 14.0, 9.0)),
    ((19.0, -3.0, -1.0), (4.0, 8.0, 5.0)),
)
_MNI_FILES = {n: f"mni_icbm152_{n}_tal_nlin_sym_09a_converted.nii.gz" for n in ("t1", "gm", "wm")}


def _nilearn_data_dir() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "synth needs the 'nilearn' package (pip install nilearn) for MNI152 anatomy"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


@functools.lru_cache(maxsize=1)
def load_mni152() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """T1, GM, WM scaled to [0, 1] and the brain mask (T1 > 0.2), with their 1 mm affine.

    Reads nilearn's bundled files directly with nibabel, exactly as `nilearn.datasets.
    load_mni152_template / _gm_template / _wm_template / _brain_mask` do (no resampling at 1 mm),
    without importing nilearn (seconds per worker process).
    """
    import nibabel as nib

    data, affine = {}, None
    for name, fname in _MNI_FILES.items():
        path = _nilearn_data_dir() / fname
        if not path.exists():
            raise ConfigError(
                f"{path}: MNI152 template missing from the nilearn install; reinstall nilearn"
            )
        img = cast("SpatialImage", nib.load(str(path)))
        arr = np.asarray(img.dataobj, dtype=np.float32)
        data[name] = arr / arr.max()
        affine = np.asarray(img.affine, dtype=np.float64)
    data["mask"] = (data["t1"] > 0.2).astype(np.float32)
    assert affine is not None  # _MNI_FILES is not empty
    return data, affine


def _world_axes(shape: tuple[int, ...], affine: np.ndarray) -> list[np.ndarray]:
    return [affine[i, i] * np.arange(shape[i]) + affine[i, 3] for i in range(3)]


def _tissue_maps_1mm() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[5,X,Y,Z] tissue fractions (TISSUES order), brain mask and affine at 1 mm."""
    from scipy import ndimage as ndi

    d, affine = load_mni152()
    mask, t1 = d["mask"], d["t1"]
    wm = np.minimum(d["wm"], 1.0) * mask
    gm = np.minimum(d["gm"], 1.0 - wm) * mask
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0) * mask
    # work inside the central box only (deep nuclei and ventricles live there)
    box = tuple(
        slice(int(lo - affine[i, 3]), int(hi - affine[i, 3]) + 1)
        for i, (lo, hi) in enumerate(((-40, 40), (-82, 38), (-16, 36)))
    )
    xs, ys, zs = np.meshgrid(
        *[_world_axes(mask.shape, affine)[i][box[i]] for i in range(3)], indexing="ij", sparse=True
    )
    deep = np.zeros(gm[box].shape, np.float32)
    for (cx, cy, cz), (rx, ry, rz) in _DEEP_GM:
        for sx in (1.0, -1.0):
            dist = np.sqrt(
                ((xs - sx * cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 + ((zs - cz) / rz) ** 2
            )
            deep = np.maximum(deep, np.clip((1.0 - dist) * 4.0 + 0.5, 0.0, 1.0))
    dgm = np.zeros_like(gm)
    dgm[box] = gm[box] * deep
    # ventricles: dark CSF in the central region, sparing the midline fissure but keeping the
    # third ventricle; the large connected components are the lateral and third ventricles
    central = (np.abs(xs) <= 32) & (ys >= -80) & (ys <= 35) & (zs >= -4) & (zs <= 35)
    third = (ys >= -28) & (ys <= 2) & (zs <= 16)
    cand = (csf[box] > 0.35) & central & ~((np.abs(xs) <= 3) & ~third) & (t1[box] < 0.45)
    lab, n = ndi.label(cand)
    sizes = ndi.sum(cand, lab, index=np.arange(1, n + 1))
    core = np.isin(lab, np.flatnonzero(sizes > 300) + 1)
    vent = np.zeros_like(csf)
    vent[box] = csf[box] * ndi.binary_dilation(core, iterations=1)
    maps = np.stack([wm, gm - dgm, dgm, csf - vent, vent]).astype(np.float32)
    return maps, mask, affine


@dataclass
class Anatomy:
    """The template on the output grid at one resolution (identity pose = the template)."""

    res: float
    shape: tuple[int, int, int]
    affine: np.ndarray  # voxel -> RAS mm of the output grid
    tissues: torch.Tensor  # [5,X,Y,Z] fractions, TISSUES order
    mask: torch.Tensor  # [X,Y,Z] brain mask (soft)
    icv: torch.Tensor  # [X,Y,Z] intracranial space: mask dilated ~2 mm (dura)
    vent_grad: torch.Tensor  # [3,X,Y,Z] gradient of smoothed ventricles, max norm 1 (voxels)
    mask_grad: torch.Tensor  # [3,X,Y,Z] gradient of smoothed mask (points inwards)
    _cache: dict = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict:  # sent to workers without the per-process cache
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _cache={})

    def world(self, vox: np.ndarray) -> np.ndarray:
        return np.asarray(vox, float) @ self.affine[:3, :3].T + self.affine[:3, 3]

    def voxel(self, world: np.ndarray) -> np.ndarray:
        return (np.asarray(world, float) - self.affine[:3, 3]) / self.res

    def world_grid(self) -> torch.Tensor:
        """RAS mm [X,Y,Z,3] of every voxel of the template grid (computed once)."""
        if "world" not in self._cache:
            a = torch.as_tensor(self.affine[:3, 3], dtype=torch.float32)
            self._cache["world"] = identity_coords(self.shape) * self.res + a
        return self._cache["world"]

    def vent_box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Template-voxel bounding box of the ventricle gradient field."""
        if "vent_box" not in self._cache:
            idx = torch.nonzero(self.vent_grad.norm(dim=0) > 1e-3).float()
            self._cache["vent_box"] = (idx.min(0).values - 1.0, idx.max(0).values + 1.0)
        return self._cache["vent_box"]

    def support(self, coarse: torch.Tensor) -> torch.Tensor:
        """Output voxels that may hold brain, from template coords on the coarse lattice."""
        near = sample(self._dilated(), coarse) > 0
        up = torch.nn.functional.interpolate(
            near[None, None].float(), size=self.shape, mode="trilinear", align_corners=True
        )
        return up[0, 0] > 0

    def _dilated(self) -> torch.Tensor:
        if "dilated" not in self._cache:
            k = int(np.ceil(6.0 / self.res))
            m = torch.nn.functional.max_pool3d(self.icv[None, None], 2 * k + 1, 1, k)[0, 0]
            self._cache["dilated"] = m
        return self._cache["dilated"]

    def candidates(self, key: str, where: Callable[[Anatomy], torch.Tensor]) -> np.ndarray:
        """Voxel indices [N,3] where `where(self)` holds, computed once per key and process."""
        if key not in self._cache:
            self._cache[key] = torch.nonzero(where(self)).numpy()
        return self._cache[key]


def check_resolution(res: float) -> float:
    if not np.isfinite(res) or res < 1.0 or res > 8.0:
        raise ConfigError(
            f"resolution {res} mm is outside 1-8 mm (the anatomy is 1 mm; "
            "use 1 for realism, 2-3 for CPU experiments)"
        )
    return float(res)


def output_grid(res: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and RAS affine (diagonal spacing) of the grid every case of a dataset shares."""
    lo = BRAIN_LO - MARGIN_MM
    shape = tuple(
        int(np.ceil((BRAIN_HI - BRAIN_LO + 2 * MARGIN_MM)[i] / res)) + 1 for i in range(3)
    )
    affine = np.diag([res, res, res, 1.0])
    affine[:3, 3] = lo
    return shape, affine  # type: ignore[return-value]


def _box_matrix(n_out: int, lo_out: float, res: float, n_in: int, lo_in: float) -> np.ndarray:
    """[n_out, n_in] weights: overlap of each 1 mm input voxel with each output cell, / res."""
    centre = lo_out + res * np.arange(n_out)
    x = lo_in + np.arange(n_in)
    left = np.maximum(centre[:, None] - res / 2, x[None, :] - 0.5)
    right = np.minimum(centre[:, None] + res / 2, x[None, :] + 0.5)
    return (np.clip(right - left, 0.0, None) / res).astype(np.float32)


_BUILT: dict[float, Anatomy] = {}


def adopt_anatomy(anat: Anatomy) -> None:
    """Use an anatomy built elsewhere (a worker receives its parent's) for its resolution."""
    _BUILT[anat.res] = anat


def build_anatomy(res: float) -> Anatomy:
    """The template on the `res` mm grid, built once per process and resolution."""
    res = check_resolution(res)
    if res not in _BUILT:
        _BUILT[res] = _build(res)
    return _BUILT[res]


def forget_anatomy(res: float | None = None) -> None:
    """Drop this process's built anatomy for `res` (every resolution when None), so that the
    next `build_anatomy` builds it afresh (benchmarks time that startup)."""
    if res is None:
        _BUILT.clear()
    else:
        _BUILT.pop(res, None)


def _build(res: float) -> Anatomy:
    """Resample the tissue maps to an isotropic `res` mm grid covering the brain (+ margin)."""
    maps, mask, aff1 = _tissue_maps_1mm()
    shape, affine = output_grid(res)
    lo = affine[:3, 3]
    src = torch.cat([as_tensor(maps), as_tensor(mask)[None]])
    # exact box filter (partial-volume averaging) as one banded matrix per axis
    w = [
        torch.from_numpy(_box_matrix(shape[i], lo[i], res, src.shape[1 + i], aff1[i, 3]))
        for i in range(3)
    ]
    out = torch.einsum("ix,cxyz->ciyz", w[0], src)
    out = torch.einsum("jy,ciyz->cijz", w[1], out)
    out = torch.einsum("kz,cijz->cijk", w[2], out)
    tissues, bmask = out[:5].clamp(0, 1), out[5].clamp(0, 1)
    icv = blur((bmask > 0.5).float(), 2.0 / res).clamp(0, 1)
    icv = (icv > 0.15).float()
    vs = blur(tissues[4], 3.0 / res)
    vg = torch.stack(torch.gradient(vs))
    vg = vg / vg.norm(dim=0).max().clamp(min=1e-6)
    mg = torch.stack(torch.gradient(blur(bmask, 2.0 / res)))
    return Anatomy(res, shape, affine, tissues.contiguous(), bmask, icv, vg, mg)
