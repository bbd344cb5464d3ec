"""Torch helpers shared by the generator: resampling by voxel coordinates, Gaussian blur and
smooth random fields. Randomness always comes from a numpy Generator passed in, never from
torch's global RNG, so a case is the same whatever process or thread count made it."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def as_tensor(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.float()
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def identity_coords(shape: tuple[int, int, int]) -> torch.Tensor:
    """Voxel coordinates [X,Y,Z,3] of a grid (index order i, j, k)."""
    axes = [torch.arange(s, dtype=torch.float32) for s in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def sample(vol: torch.Tensor, coords: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Values of `vol` [C,X,Y,Z] (or [X,Y,Z]) at voxel coords `coords` [...,3]; zero outside."""
    squeeze = vol.dim() == 3
    v = vol[None] if squeeze else vol
    size = torch.tensor(v.shape[1:], dtype=torch.float32)
    norm = coords * (2.0 / (size - 1).clamp(min=1)) - 1.0
    grid = norm.flip(-1)  # grid_sample wants (k, j, i) = (W, H, D)
    out = F.grid_sample(v[None], grid[None], mode=mode, padding_mode="zeros", align_corners=True)[0]
    return out[0] if squeeze else out


def sample_where(vol: torch.Tensor, coords: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """`sample` evaluated only at output voxels where `where` (bool [X,Y,Z]) holds; 0 elsewhere.

    Trilinear sampling costs per output voxel, and most of the field of view is background."""
    pts = coords[where]  # [N,3]
    vals = sample(vol, pts[None, None])  # [C,1,1,N]
    out = torch.zeros((vol.shape[0], *where.shape), dtype=vals.dtype)
    out[:, where] = vals[:, 0, 0]
    return out


def _kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(vol: torch.Tensor, sigma_vox: float | tuple[float, float, float]) -> torch.Tensor:
    """Separable Gaussian blur of [X,Y,Z] or [C,X,Y,Z] (sigma in voxels per axis; 0 skips)."""
    sig = (sigma_vox,) * 3 if isinstance(sigma_vox, (int, float)) else tuple(sigma_vox)
    squeeze = vol.dim() == 3
    v = (vol[None] if squeeze else vol)[:, None]  # [C,1,X,Y,Z]
    for axis, s in enumerate(sig):
        if s <= 0.05:
            continue
        k = _kernel(float(s))
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = k.numel()
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = k.numel() // 2
        v = F.conv3d(F.pad(v, pad, mode="replicate"), k.view(shape))
    out = v[:, 0]
    return out[0] if squeeze else out


def _lerp_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """[n_out, n_in] linear interpolation weights, corners aligned."""
    pos = torch.linspace(0.0, n_in - 1.0, n_out)
    lo = pos.floor().clamp(max=n_in - 2).long()
    w = pos - lo
    m = torch.zeros(n_out, n_in)
    m[torch.arange(n_out), lo] = 1.0 - w
    m[torch.arange(n_out), lo + 1] = w
    return m


def smooth_noise(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    res_mm: float,
    scale_mm: float,
    channels: int = 1,
) -> torch.Tensor:
    """Zero-mean, unit-ish random field varying over about `scale_mm` ([C,X,Y,Z] or [X,Y,Z]).

    Coarse Gaussian noise, linearly interpolated one axis at a time (three small matmuls)."""
    coarse = [max(2, int(math.ceil(s * res_mm / scale_mm)) + 1) for s in shape]
    g = torch.from_numpy(rng.standard_normal((channels, *coarse), dtype=np.float32))
    wx, wy, wz = (_lerp_matrix(n, c) for n, c in zip(shape, coarse))
    up = torch.einsum("ia,cabd->cibd", wx, g)
    up = torch.einsum("jb,cibd->cijd", wy, up)
    up = torch.einsum("kd,cijd->cijk", wz, up)
    return up[0] if channels == 1 else up


def ellipsoid_distance(
    coords: torch.Tensor, centre: np.ndarray, radii: np.ndarray, axes: np.ndarray | None = None
) -> torch.Tensor:
    """Normalised distance (1 on the surface) of voxel coords [...,3] to an oriented ellipsoid."""
    d = coords - torch.as_tensor(centre, dtype=torch.float32)
    if axes is not None:
        d = d @ torch.as_tensor(axes, dtype=torch.float32)  # columns: unit axes
    return torch.sqrt(((d / torch.as_tensor(radii, dtype=torch.float32)) ** 2).sum(-1) + 1e-12)


def soft_inside(dist: torch.Tensor, edge: float | torch.Tensor) -> torch.Tensor:
    """Partial-volume membership from a normalised distance: 1 inside, 0 outside, ramp `edge`."""
    e = edge.clamp(min=1e-3) if isinstance(edge, torch.Tensor) else max(float(edge), 1e-3)
    return ((1.0 - dist) / e + 0.5).clamp(0.0, 1.0)


def random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A rotation matrix from three angles uniform in ±max_deg."""
    a = np.deg2rad(rng.uniform(-max_deg, max_deg, size=3))
    cx, cy, cz = np.cos(a)
    sx, sy, sz = np.sin(a)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_unit_axes(rng: np.random.Generator, first: np.ndarray | None = None) -> np.ndarray:
    """An orthonormal basis (columns); the first column is `first` when given."""
    v = rng.standard_normal((3, 3))
    if first is not None:
        v[:, 0] = first
    q, r = np.linalg.qr(v)
    q = q * np.sign(np.diag(r))  # keep the first column's direction
    return q
