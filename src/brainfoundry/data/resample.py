"""Separable, anisotropy-aware resampling in torch.

Cubic within the fine axes, linear across thick slices (ratio ≥ `anisotropy_threshold`), so a
5 mm clinical scan is not blurred in-plane and its slices are not stair-cased. Each axis is a
1D pass through `F.interpolate` (align_corners=False), which is exact identity on an axis
whose size does not change; see benchmarks/results/prepare.md for speed and fidelity against
nnU-Net and scipy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def target_shape(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]):
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, new_spacing))


def _resize_axis(t: torch.Tensor, axis: int, size: int, mode: str, antialias: bool) -> torch.Tensor:
    """Resize one spatial axis of a [X, Y, Z] tensor."""
    if t.shape[axis] == size:
        return t
    moved = t.movedim(axis, -1)  # [..., L]
    lead = moved.shape[:-1]
    flat = moved.reshape(1, -1, moved.shape[-1])
    if mode == "cubic":
        # torch has no 1D cubic: use bicubic on [1, C, 1, L] -> identity along the unit axis
        # (bicubic would read outside the unit axis with clamping, which stays exact).
        out = F.interpolate(
            flat[:, :, None, :],
            size=(1, size),
            mode="bicubic",
            align_corners=False,
            antialias=antialias,
        )[:, :, 0, :]
    elif mode == "linear":
        if antialias and size < flat.shape[-1]:
            out = F.interpolate(
                flat[:, :, None, :],
                size=(1, size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )[:, :, 0, :]
        else:
            out = F.interpolate(flat, size=size, mode="linear", align_corners=False)
    elif mode == "nearest":
        out = F.interpolate(flat, size=size, mode="nearest-exact")
    else:
        raise ValueError(f"unknown interpolation {mode!r}")
    return out.reshape(*lead, size).movedim(-1, axis)


def resample(
    data: np.ndarray,
    spacing: Sequence[float],
    new_spacing: Sequence[float] | None = None,
    *,
    shape: Sequence[int] | None = None,
    mode: str = "cubic",
    anisotropy_threshold: float = 3.0,
    clamp: bool = True,
) -> np.ndarray:
    """Resample a 3D float array to `new_spacing` (or exactly `shape`).

    Axes whose spacing is ≥ `anisotropy_threshold` × the finest use linear interpolation
    when `mode='cubic'`. `clamp` keeps cubic overshoot inside the input's value range.
    """
    out_shape = (
        tuple(shape) if shape is not None else target_shape(data.shape, spacing, new_spacing)
    )
    if tuple(out_shape) == tuple(data.shape):
        return data
    finest = min(spacing)
    t = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    # resize the axes with the largest change first while the array is still small
    order = sorted(range(3), key=lambda a: out_shape[a] / data.shape[a])
    for axis in order:
        m = mode
        if mode == "cubic" and spacing[axis] >= anisotropy_threshold * finest:
            m = "linear"
        t = _resize_axis(t, axis, out_shape[axis], m, antialias=out_shape[axis] < data.shape[axis])
    out = t.numpy()
    if clamp and mode == "cubic":
        np.clip(out, data.min(), data.max(), out=out)
    return out


def resample_labels(
    labels: np.ndarray, spacing=None, new_spacing=None, *, shape=None
) -> np.ndarray:
    """Resample an integer label map: linear on each class's one-hot map, then argmax.

    Smoother than nearest neighbour for thick-slice masks; falls back to nearest for many classes.
    """
    out_shape = (
        tuple(shape) if shape is not None else target_shape(labels.shape, spacing, new_spacing)
    )
    if tuple(out_shape) == tuple(labels.shape):
        return labels
    classes = np.unique(labels)
    if len(classes) > 8:
        t = torch.from_numpy(labels.astype(np.float32))
        for axis in range(3):
            t = _resize_axis(t, axis, out_shape[axis], "nearest", antialias=False)
        return t.numpy().astype(labels.dtype)
    if len(classes) == 1:
        return np.full(out_shape, classes[0], dtype=labels.dtype)
    best = None
    score = None
    for c in classes:
        p = resample((labels == c).astype(np.float32), (1, 1, 1), shape=out_shape, mode="linear")
        if best is None:
            best = np.full(out_shape, c, dtype=labels.dtype)
            score = p
        else:
            win = p > score
            best[win] = c
            score = np.maximum(score, p)
    return best
