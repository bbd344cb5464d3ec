"""Separable, anisotropy-aware resampling as one small matrix product per axis.

Resizing an axis from n to m samples is a linear map, so we build its m×n matrix once and apply
it with a BLAS matmul: cubic B-spline interpolation (the spline prefilter folded into the matrix,
as scipy's order-3 spline, mirror boundary), linear, or nearest. Downsampling widens the kernel
(antialiasing). Axes whose spacing is ≥ `anisotropy_threshold` × the finest are thick slices and
get linear interpolation by default, so slices are neither blurred in-plane nor ring across.
Speed and fidelity against nnU-Net v2, scipy and torch: benchmarks/results/prepare.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch


def target_shape(shape: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]):
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, new_spacing))


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.abs(idx) % period
    return np.where(idx > n - 1, period - idx, idx)


def _bspline3(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return np.where(a < 1, (4 - 6 * a**2 + 3 * a**3) / 6, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.clip(1 - np.abs(x), 0, None)


ANTIALIAS_ABOVE = 1.5


@lru_cache(maxsize=256)
def axis_matrix(n: int, m: int, mode: str) -> np.ndarray:
    """The m×n matrix resampling n samples to m (pixel centres aligned: align_corners=False)."""
    x = (np.arange(m) + 0.5) * (n / m) - 0.5  # source coordinate of each output sample
    # stretch the kernel (antialias) only for real downsampling; a mild one (e.g. 0.9 -> 1 mm)
    # loses more detail to the wider kernel than to aliasing (measured in bench_prepare)
    scale = n / m if n / m > ANTIALIAS_ABOVE else 1.0
    if mode == "nearest":
        w = np.zeros((m, n))
        w[np.arange(m), np.clip(np.floor(x + 0.5), 0, n - 1).astype(int)] = 1
        return w.astype(np.float32)
    kernel, radius = (_bspline3, 2) if mode == "cubic" else (_triangle, 1)
    if mode not in ("cubic", "linear"):
        raise ValueError(f"unknown interpolation {mode!r}")
    reach = int(np.ceil(radius * scale))
    taps = np.floor(x)[:, None].astype(int) + np.arange(-reach + 1, reach + 1)[None, :]
    w_taps = kernel((x[:, None] - taps) / scale) / scale
    w = np.zeros((m, n))
    np.add.at(w, (np.repeat(np.arange(m), taps.shape[1]), _mirror(taps, n).ravel()), w_taps.ravel())
    if mode == "cubic" and scale == 1.0 and n > 1:
        # interpolating spline: coefficients c solve B c = f, with B the B-spline at the samples
        b = np.zeros((n, n))
        for off, v in ((-1, 1 / 6), (0, 4 / 6), (1, 1 / 6)):
            np.add.at(b, (np.arange(n), _mirror(np.arange(n) + off, n)), v)
        w = w @ np.linalg.inv(b)
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(np.float32)


def _resize_axis(t: torch.Tensor, axis: int, size: int, mode: str) -> torch.Tensor:
    n = t.shape[axis]
    if n == size:
        return t
    w = torch.from_numpy(axis_matrix(n, size, mode))
    moved = t.movedim(axis, 0)
    out = w @ moved.reshape(n, -1)
    return out.reshape(size, *moved.shape[1:]).movedim(0, axis)


def resample(
    data: np.ndarray,
    spacing: Sequence[float],
    new_spacing: Sequence[float] | None = None,
    *,
    shape: Sequence[int] | None = None,
    mode: str = "cubic",
    thick_mode: str = "cubic",
    anisotropy_threshold: float = 3.0,
    clamp: bool = True,
) -> np.ndarray:
    """Resample a 3D float array to `new_spacing` (or exactly `shape`).

    Axes whose spacing is ≥ `anisotropy_threshold` × the finest use `thick_mode`.
    `clamp` keeps cubic overshoot inside the input's value range.
    """
    if shape is None:
        assert new_spacing is not None, "resample needs new_spacing or shape"
        shape = target_shape(data.shape, spacing, new_spacing)
    out_shape = tuple(int(s) for s in shape)
    if out_shape == tuple(data.shape):
        return data
    finest = min(spacing)
    t = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    # shrink first, grow last: the intermediate arrays stay small
    for axis in sorted(range(3), key=lambda a: out_shape[a] / data.shape[a]):
        thick = spacing[axis] >= anisotropy_threshold * finest
        t = _resize_axis(t, axis, out_shape[axis], thick_mode if thick else mode)
    out = t.numpy()
    if clamp and mode == "cubic":
        np.clip(out, data.min(), data.max(), out=out)
    return out


def resample_labels(labels: np.ndarray, spacing=None, new_spacing=None, *, shape=None):
    """Resample an integer label map: linear on each class's one-hot map, then argmax.

    Smoother than nearest neighbour for thick-slice masks; nearest for more than 8 classes.
    """
    if shape is None:
        shape = target_shape(labels.shape, spacing, new_spacing)
    out_shape = tuple(int(s) for s in shape)
    if out_shape == tuple(labels.shape):
        return labels
    classes = np.unique(labels)
    if len(classes) == 1:
        return np.full(out_shape, classes[0], dtype=labels.dtype)
    if len(classes) > 8:
        out = resample(labels.astype(np.float32), (1, 1, 1), shape=out_shape, mode="nearest")
        return out.astype(labels.dtype)
    best = np.full(out_shape, classes[0], dtype=labels.dtype)
    score = resample(
        (labels == classes[0]).astype(np.float32), (1, 1, 1), shape=out_shape, mode="linear"
    )
    for c in classes[1:]:
        p = resample((labels == c).astype(np.float32), (1, 1, 1), shape=out_shape, mode="linear")
        win = p > score
        best[win] = c
        np.maximum(score, p, out=score)
    return best
