"""Functional spatial core: one sampling grid per sample (rotation, scaling, elastic) and fast
resampling of `[B,C,D,H,W]` volumes, with nearest-neighbour gathering for label maps.

Coordinates are voxel indices of the input, shaped `[B,3,D,H,W]` in (z, y, x) order. The output
grid is centred on the input, so an input larger than the patch (a padded read) is rotated about
its centre and cropped to the patch without empty corners.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .separable import expand_separable, smooth_basis


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """[B,3] angles (radians) about the D, H and W axes -> [B,3,3] rotation matrices."""
    c, s = torch.cos(angles), torch.sin(angles)
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def mat(rows):
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)

    rz = mat([[one, zero, zero], [zero, c[:, 0], -s[:, 0]], [zero, s[:, 0], c[:, 0]]])
    ry = mat([[c[:, 1], zero, s[:, 1]], [zero, one, zero], [-s[:, 1], zero, c[:, 1]]])
    rx = mat([[c[:, 2], -s[:, 2], zero], [s[:, 2], c[:, 2], zero], [zero, zero, one]])
    return rz @ ry @ rx


def affine_coordinates(
    matrix: torch.Tensor, in_shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> torch.Tensor:
    """Input voxel coordinates [B,3,*out_shape] of `q = A p + centre`, p centred on the output
    and `centre` that of `center_crop` (so identity parameters reproduce the crop exactly).

    Built from three broadcast 1-D ramps instead of `affine_grid`'s large matmul (much faster on
    CPU); `matrix` [B,3,3] maps output offsets to input offsets (scale < 1 zooms in).
    """
    b = matrix.shape[0]
    dev, dt = matrix.device, matrix.dtype
    ramps = [torch.arange(n, device=dev, dtype=dt) - (n - 1) / 2 for n in out_shape]
    views = [ramps[0].view(1, -1, 1, 1), ramps[1].view(1, 1, -1, 1), ramps[2].view(1, 1, 1, -1)]
    out = torch.empty((b, 3, *out_shape), device=dev, dtype=dt)
    for i in range(3):
        a = matrix[:, i].view(b, 3, 1, 1, 1)
        centre = (in_shape[i] - out_shape[i]) // 2 + (out_shape[i] - 1) / 2  # = center_crop
        out[:, i] = a[:, 0] * views[0] + a[:, 1] * views[1] + centre
        out[:, i] += a[:, 2] * views[2]
    return out


def elastic_displacement(
    magnitude: torch.Tensor, out_shape: tuple[int, ...], grid: int, generator: torch.Generator
) -> torch.Tensor:
    """Smooth random displacement [B,3,*out_shape] in voxels: Gaussian control-point noise of
    std `magnitude` [B] on a `grid`^3 lattice, expanded with a smooth separable basis."""
    b = magnitude.shape[0]
    coef = torch.randn((b, 3, grid, grid, grid), generator=generator, device=generator.device)
    coef = coef.to(magnitude.device) * magnitude.view(b, 1, 1, 1, 1)
    bases = [smooth_basis(n, grid, device=magnitude.device) for n in out_shape]
    return expand_separable(coef, *bases)


Bounds = tuple[list[float], list[float]]  # per-axis (z, y, x) min and max of coordinates


def coordinate_bounds(coords: torch.Tensor) -> Bounds:
    """Per-axis min and max of coords [B,3,...] (two reductions; see `affine_bounds`)."""
    lo, hi = coords.amin(dim=(0, 2, 3, 4)), coords.amax(dim=(0, 2, 3, 4))
    return lo.tolist(), hi.tolist()


def affine_bounds(
    matrix: torch.Tensor, in_shape: tuple[int, ...], out_shape: tuple[int, ...], margin: float = 0
) -> Bounds:
    """Exact bounds of `affine_coordinates` from the 8 corners of the output box (an affine
    map's extremes lie at corners), widened by `margin` (e.g. the largest elastic offset)."""
    half = torch.tensor([(n - 1) / 2 for n in out_shape], dtype=matrix.dtype)
    signs = torch.tensor([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)])
    corners = torch.einsum("bij,kj->bki", matrix.cpu(), signs.to(matrix.dtype) * half)
    centre = [(i - o) // 2 + (o - 1) / 2 for i, o in zip(in_shape, out_shape)]
    lo = (corners.amin(dim=(0, 1)) - margin).tolist()
    hi = (corners.amax(dim=(0, 1)) + margin).tolist()
    return [v + c for v, c in zip(lo, centre)], [v + c for v, c in zip(hi, centre)]


def sample_linear(
    volume: torch.Tensor, coords: torch.Tensor, impl: str = "auto", bounds: Bounds | None = None
) -> torch.Tensor:
    """Trilinear resampling with zero padding: volume [B,C,D,H,W] at coords [B,3,*out].

    On CPU ("slabs") the volume is viewed as one 2-D image of stacked slices and sampled with
    two bilinear 2-D lookups blended along z: PyTorch's 2-D CPU kernel is vectorised, its
    3-D one is not, so this is several times faster. Elsewhere ("native") it is one 3-D call.
    `bounds` (optional, conservative) saves the reductions that find whether all points lie
    inside.
    """
    if impl == "auto":
        impl = "slabs" if volume.device.type == "cpu" else "native"
    if impl == "native":
        return _sample_native(volume, coords)
    if impl == "slabs":
        return _sample_slabs(volume, coords, bounds or coordinate_bounds(coords))
    raise ValueError(f"sample_linear: impl must be 'auto', 'native' or 'slabs', got {impl!r}")


def _sample_native(volume: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    sizes = volume.shape[2:]
    norm = [coords[:, i] * (2.0 / max(sizes[i] - 1, 1)) - 1.0 for i in (2, 1, 0)]
    grid = torch.stack(norm, dim=-1)
    return F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _sample_slabs(volume: torch.Tensor, coords: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    """Slices stacked as rows of one 2-D image (a free view of a contiguous volume). x keeps the
    kernel's zero padding; y and z are clamped inside, and zero padding is restored exactly by
    the weight `(1 - |y - y_clamped|)(1 - |z - z_clamped|)` (skipped when all points are inside,
    the usual case for a padded read)."""
    b, c, din, hin, win = volume.shape
    out_shape = coords.shape[2:]
    image = volume.contiguous().view(b, c, din * hin, win)
    z, y = coords[:, 0], coords[:, 1]
    (zmin, ymin, _), (zmax, ymax, _) = bounds
    inside = zmin >= 0 and zmax <= din - 1 and ymin >= 0 and ymax <= hin - 1
    weight = None
    if not inside:
        weight = _falloff(z, din).mul_(_falloff(y, hin))
        z, y = z.clamp(0.0, din - 1.0), y.clamp(0.0, hin - 1.0)
    z0 = z.floor().clamp_(max=max(din - 2, 0))
    fz = z - z0
    sy, sx = 2.0 / max(din * hin - 1, 1), 2.0 / max(win - 1, 1)
    grid = torch.empty((b, 2, *out_shape, 2), dtype=volume.dtype, device=volume.device)
    torch.mul(coords[:, 2], sx, out=grid[:, 0, ..., 0]).sub_(1.0)
    grid[:, 1, ..., 0] = grid[:, 0, ..., 0]
    yc = y.mul(sy).sub_(1.0)
    torch.add(yc, z0, alpha=hin * sy, out=grid[:, 0, ..., 1])
    torch.add(grid[:, 0, ..., 1], hin * sy if din > 1 else 0.0, out=grid[:, 1, ..., 1])
    if b == 1:  # the kernel parallelises over the batch only: make the two lookups a batch
        flat = grid.view(2, out_shape[0] * out_shape[1], out_shape[2], 2)
        both = F.grid_sample(image.expand(2, -1, -1, -1), flat, align_corners=True)
        both = both.view(2, c, *out_shape).transpose(0, 1).unsqueeze(0)
    else:
        flat = grid.view(b, 2 * out_shape[0] * out_shape[1], out_shape[2], 2)
        both = F.grid_sample(image, flat, align_corners=True).view(b, c, 2, *out_shape)
    out = torch.lerp(both[:, :, 0], both[:, :, 1], fz.unsqueeze(1))
    return out if weight is None else out.mul_(weight.unsqueeze(1))


def _falloff(v: torch.Tensor, n: int) -> torch.Tensor:
    """1 inside [0, n-1], falling linearly to 0 one voxel outside (zero-padded interpolation)."""
    return torch.minimum(v + 1.0, n - v).clamp_(0.0, 1.0)


def sample_nearest(
    volume: torch.Tensor, coords: torch.Tensor, fill: float = 0, bounds: Bounds | None = None
) -> torch.Tensor:
    """Nearest-neighbour lookup (any dtype, labels stay labels); outside the volume -> `fill`.

    Points outside are handled by padding the (cheap, often uint8) volume with one voxel of
    `fill` and clamping into it, rather than by masks over the (float) coordinates."""
    b, c = volume.shape[:2]
    idx = coords.round()
    lo, hi = bounds or coordinate_bounds(coords)
    limit = torch.tensor(volume.shape[2:], dtype=idx.dtype, device=idx.device) - 1
    inside = all(a >= -0.49 and b <= n - 1 + 0.49 for a, b, n in zip(lo, hi, volume.shape[2:]))
    if not inside:
        volume = F.pad(volume, (1, 1, 1, 1, 1, 1), value=fill)
        idx = torch.maximum(
            torch.minimum(idx + 1, limit.view(1, 3, 1, 1, 1) + 2), idx.new_zeros(())
        )
    din, hin, win = volume.shape[2:]
    z, y, x = idx[:, 0], idx[:, 1], idx[:, 2]
    if volume[0, 0].numel() >= 2**24:  # beyond float32's exact integers
        z, y, x = z.double(), y.double(), x.double()
    flat = torch.add(x, y, alpha=win).add_(z, alpha=hin * win).long()
    flat = flat.view(b, 1, -1).expand(b, c, -1)
    return volume.reshape(b, c, -1).gather(2, flat).view(b, c, *coords.shape[2:])


def center_crop(x: torch.Tensor, out_shape: tuple[int, ...]) -> torch.Tensor:
    """The centred `out_shape` region of [B,C,D,H,W] (a view), matching the grid's centring."""
    in_shape = x.shape[2:]
    if any(o > i for o, i in zip(out_shape, in_shape)):
        raise ValueError(f"patch {tuple(out_shape)} is larger than the input {tuple(in_shape)}")
    starts = [(i - o) // 2 for i, o in zip(in_shape, out_shape)]
    return x[
        :,
        :,
        starts[0] : starts[0] + out_shape[0],
        starts[1] : starts[1] + out_shape[1],
        starts[2] : starts[2] + out_shape[2],
    ]


def flip(x: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """Per-sample flips: `axes` [B,3] bool says which spatial axes to mirror (out of place)."""
    out = x.clone()
    for pattern in axes.unique(dim=0):
        dims = [2 + i for i in range(3) if pattern[i]]
        if dims:
            rows = (axes == pattern).all(dim=1).nonzero().flatten()
            out[rows] = x[rows].flip(dims)
    return out
