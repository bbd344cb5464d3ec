"""Subject-specific geometry: each head gets its own scale and a smooth diffeomorphic-like warp
(a stationary velocity field integrated by scaling and squaring), each session its own pose.
Everything maps output voxels to template voxel coordinates, ready for `fields.sample`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from .anatomy import BRAIN_HI, BRAIN_LO, MARGIN_MM, Anatomy
from .fields import identity_coords, random_rotation, sample

BRAIN_CENTRE_MM = (0.0, -17.0, 5.0)  # middle of the brain, RAS mm: the pose's pivot


@dataclass
class SubjectShape:
    """A subject's own head: per-axis scale and a smooth warp (stationary velocity field)."""

    scale: np.ndarray  # 3
    velocity: np.ndarray  # [3, n, n, n] mm, coarse


@dataclass
class Pose:
    rotation: np.ndarray  # 3x3
    shift_mm: np.ndarray  # 3


def random_shape(rng: np.random.Generator, strength: float = 1.0) -> SubjectShape:
    head = rng.normal(1.0, 0.05 * strength)
    scale = head * rng.normal(1.0, 0.025 * strength, size=3)
    velocity = rng.normal(0.0, 2.5 * strength, size=(3, 7, 8, 7)).astype(np.float32)
    return SubjectShape(np.clip(scale, 0.8, 1.2), velocity)


def random_pose(rng: np.random.Generator, max_deg: float = 5.0, max_shift: float = 4.0) -> Pose:
    return Pose(random_rotation(rng, max_deg), rng.uniform(-max_shift, max_shift, size=3))


def _integrate(velocity: np.ndarray, steps: int = 5) -> torch.Tensor:
    """Displacement (mm) [3,n,n,n] of exp(velocity) by scaling and squaring on a coarse grid.

    The coarse grid spans the output field of view, so one coarse cell is about 25 mm."""
    v = torch.from_numpy(velocity) / 2**steps
    n = torch.tensor(v.shape[1:], dtype=torch.float32)
    span = torch.as_tensor(BRAIN_HI - BRAIN_LO + 2 * MARGIN_MM, dtype=torch.float32)
    cell = span / (n - 1)
    base = identity_coords(cast(tuple[int, int, int], tuple(int(s) for s in v.shape[1:])))
    for _ in range(steps):
        # u(x) <- u(x) + u(x + u(x)); displacement in mm, sampled on the coarse grid in cells
        v = v + sample(v, base + v.permute(1, 2, 3, 0) / cell)
    return v


def _coarse_world(anat: Anatomy, stride: int) -> torch.Tensor:
    """RAS mm of a lattice spanning the output grid corner to corner with ~`stride` spacing."""
    return lattice_world(tuple(anat.shape), anat.res, anat.affine[:3, 3], stride)


def lattice_world(
    shape: tuple[int, ...], res: float, origin: np.ndarray, stride: int
) -> torch.Tensor:
    """RAS mm [x,y,z,3] of a lattice spanning a `res` mm grid of `shape` whose voxel 0 lies at
    `origin`, corner to corner, every ~`stride` voxels (see `upsample_coords`)."""
    axes = [torch.linspace(0.0, n - 1.0, max(2, int(np.ceil((n - 1) / stride)) + 1)) for n in shape]
    vox = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return vox * res + torch.as_tensor(origin, dtype=torch.float32)


def upsample_coords(coarse: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Trilinear upsampling of a smooth coordinate field [x,y,z,3] (corners aligned)."""
    up = torch.nn.functional.interpolate(
        coarse.permute(3, 0, 1, 2)[None], size=shape, mode="trilinear", align_corners=True
    )
    return up[0].permute(1, 2, 3, 0).contiguous()


def subject_coords(anat: Anatomy, shape: SubjectShape, pose: Pose, stride: int = 2) -> torch.Tensor:
    """Template voxel coordinates [x,y,z,3] seen by a lattice of output voxels (every `stride`
    voxels, corners included; see `upsample_coords`): undo pose, then scale, then warp."""
    lo = torch.as_tensor(BRAIN_LO - MARGIN_MM, dtype=torch.float32)
    return (template_world(_coarse_world(anat, stride), shape, pose) - lo) / anat.res


def template_world(world: torch.Tensor, shape: SubjectShape, pose: Pose) -> torch.Tensor:
    """Template RAS mm [X,Y,Z,3] that subject points `world` (RAS mm [X,Y,Z,3]) show: undo the
    pose, then the scale, then the warp."""
    centre = torch.tensor(BRAIN_CENTRE_MM)
    x = world - centre
    rot = torch.as_tensor(pose.rotation, dtype=torch.float32)
    x = (x - torch.as_tensor(pose.shift_mm, dtype=torch.float32)) @ rot  # undo the pose: R^T
    x = x / torch.as_tensor(shape.scale, dtype=torch.float32)
    disp = _integrate(shape.velocity)
    span = torch.as_tensor(BRAIN_HI - BRAIN_LO + 2 * MARGIN_MM, dtype=torch.float32)
    n = torch.tensor(disp.shape[1:], dtype=torch.float32)
    lo = torch.as_tensor(BRAIN_LO - MARGIN_MM, dtype=torch.float32)
    x = x + sample(disp, (x + centre - lo) / span * (n - 1)).movedim(0, -1)
    return x + centre


def subject_world(
    template: np.ndarray, shape: SubjectShape, pose: Pose, iterations: int = 4
) -> np.ndarray:
    """Where template point `template` (RAS mm, 3) lies in the subject (RAS mm): the pose and
    scale inverted exactly, the warp by fixed-point iteration (it is smooth and small)."""
    c = np.asarray(BRAIN_CENTRE_MM)
    target = np.asarray(template, dtype=np.float64)
    x = pose.rotation @ (shape.scale * (target - c)) + pose.shift_mm + c
    for _ in range(iterations):
        point = torch.as_tensor(x, dtype=torch.float32).view(1, 1, 1, 3)
        seen = template_world(point, shape, pose).view(3)
        x = x + pose.rotation @ (shape.scale * (target - seen.double().numpy()))
    return x
