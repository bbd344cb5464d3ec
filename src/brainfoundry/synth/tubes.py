"""Thin tubular structures (nerves, vessels) as smooth centre lines with a radius along them,
defined in template RAS mm and rendered onto an output grid through the subject's template
coordinates, so they deform with the subject. Partial volume: one output voxel of ramp."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

STEP_MM = 0.2  # centre-line sampling: far below any voxel size used


@dataclass(frozen=True)
class Tube:
    name: str  # e.g. "nerve_r", "sca_l"
    kind: str  # "nerve" (labelled 1), "artery" / "vein" (labelled 2), "other_nerve" (unlabelled)
    points: np.ndarray  # [n,3] template RAS mm, STEP_MM apart
    radius: np.ndarray  # [n] mm

    def length_mm(self) -> float:
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).sum())

    def record(self) -> dict:
        """What dataset.json says about it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "length_mm": round(self.length_mm(), 1),
            "radius_mm": [round(float(self.radius.min()), 2), round(float(self.radius.max()), 2)],
            "start_mm": [round(float(v), 1) for v in self.points[0]],
            "end_mm": [round(float(v), 1) for v in self.points[-1]],
        }


def spline(ctrl: np.ndarray, step: float = STEP_MM) -> np.ndarray:
    """A Catmull-Rom curve through control points [k,3] (k >= 2), resampled by arc length
    every `step` mm."""
    p = np.asarray(ctrl, dtype=np.float64)
    p = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0.0, 1.0, 24)[:-1, None]
    segs = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        segs.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    dense = np.vstack([*segs, p[-2][None]])
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))]
    s = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] / step)) + 1))
    return np.stack([np.interp(s, arc, dense[:, i]) for i in range(3)], axis=1)


def tube(name: str, kind: str, ctrl: np.ndarray, r0: float, r1: float | None = None) -> Tube:
    """A tube through control points, its radius going linearly from r0 to r1 (mm)."""
    pts = spline(ctrl)
    radius = np.linspace(r0, r0 if r1 is None else r1, len(pts))
    return Tube(name, kind, pts, radius)


def _box(world: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, step: int = 4) -> tuple:
    """Slices of the output grid holding every voxel whose template point lies in [lo, hi]:
    found on a `step`-voxel sub-lattice (the warp is smooth), grown by a step."""
    sub = world[::step, ::step, ::step]
    hit = torch.nonzero(((sub >= lo) & (sub <= hi)).all(-1))
    if len(hit) == 0:
        return tuple(slice(0, 0) for _ in range(3))
    a, b = hit.min(0).values * step - step, hit.max(0).values * step + step + 1
    return tuple(slice(max(0, int(i)), min(n, int(j))) for i, j, n in zip(a, b, world.shape))


def render(
    t: Tube, world: torch.Tensor, res: float, halo_mm: float = 0.0, piece_mm: float = 4.0
) -> list[tuple[tuple[slice, slice, slice], torch.Tensor, torch.Tensor]]:
    """Tube `t` on a grid whose voxels show template RAS mm `world` [X,Y,Z,3], piece by piece
    along its centre line (each piece on the small box around it): [(output box, core
    fraction, halo fraction)], to be combined by maximum. The halo reaches `halo_mm` beyond
    the surface; the radius never falls under 0.6 voxel, so a tube covers voxels all along."""
    r_all = np.maximum(t.radius, 0.6 * res)
    reach = float(r_all.max()) + halo_mm + res
    n = max(2, int(round(piece_mm / STEP_MM)))
    out = []
    for a in range(0, len(t.points) - 1, n):
        pts = torch.as_tensor(t.points[a : a + n + 1], dtype=torch.float32)
        r = torch.as_tensor(r_all[a : a + n + 1], dtype=torch.float32)
        box = _box(world, pts.min(0).values - reach, pts.max(0).values + reach)
        sub = world[box]
        d = torch.cdist(sub.reshape(-1, 3), pts)
        depth = (r[None, :] - d).max(1).values.view(sub.shape[:3])  # mm inside the surface
        core = (depth / res + 0.5).clamp(0.0, 1.0)
        out.append((box, core, ((depth + halo_mm) / res + 0.5).clamp(0.0, 1.0)))
    return out  # type: ignore[return-value]
