"""Sliding-window inference over a preprocessed volume: overlapping tiles, Gaussian-weighted.

Tile centres predict better than tile borders (less context), so each tile's output is weighted
by a Gaussian centred on it (sigma = `sigma_scale` x tile size, as nnU-Net) and the weighted sum
is divided by the summed weights. Used for segmentation validation, evaluation and `predict`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def gaussian_weights(
    patch: Sequence[int], sigma_scale: float = 0.125, floor: float = 1e-3
) -> torch.Tensor:
    """A separable Gaussian importance map (max 1), floored so borders still count."""
    axes = []
    for p in patch:
        x = torch.arange(p, dtype=torch.float64) - (p - 1) / 2
        s = max(p * sigma_scale, 1e-6)
        axes.append(torch.exp(-0.5 * (x / s) ** 2))
    w = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    w = w / w.max()
    return w.clamp_min(floor).float()


def tile_starts(size: int, patch: int, overlap: float, grid: str = "even") -> list[int]:
    """Tile origins covering [0, size) with at least `overlap` between tiles: "even" spreads
    them evenly (nnU-Net); "step" steps by patch x (1 - overlap) and moves the last one back
    to the border (MONAI's `dense_patch_slices`)."""
    if size <= patch:
        return [0]
    step = max(1, int(patch * (1 - overlap)))
    n = int(np.ceil((size - patch) / step)) + 1
    if grid == "step":
        return sorted({min(i * step, size - patch) for i in range(n)})
    return [int(round(v)) for v in np.linspace(0, size - patch, n)]


def _centre_pad(image: torch.Tensor, pad: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
    """Zero-pad the spatial axes of [C, D, H, W] by `pad`, split evenly (the odd voxel after),
    so the caller can crop back from the returned low-side offsets."""
    lo = [p // 2 for p in pad]
    spec: list[int] = []
    for axis in reversed(range(3)):
        spec += [lo[axis], pad[axis] - lo[axis]]
    return F.pad(image, spec), lo


def _tile(image: torch.Tensor, start: Sequence[int], patch: Sequence[int]) -> torch.Tensor:
    """The [C, *patch] tile of `image` whose origin is `start`."""
    a, b, c = start
    return image[:, a : a + patch[0], b : b + patch[1], c : c + patch[2]]


def _tile_weights(
    patch: list[int],
    weights: torch.Tensor | None,
    gaussian: bool,
    sigma_scale: float,
    device: torch.device,
) -> torch.Tensor | None:
    """The importance map each tile's output is multiplied by; None means a plain mean."""
    if weights is not None:
        if tuple(weights.shape) != tuple(patch):
            raise ValueError(f"sliding_window: weights {tuple(weights.shape)} != patch {patch}")
        return weights.float().to(device)
    return gaussian_weights(patch, sigma_scale).to(device) if gaussian else None


def _tile_origins(
    image: torch.Tensor, patch: list[int], overlap: float, grid: str, skip_empty: bool
) -> list[tuple[int, ...]]:
    """Every tile origin over the (padded) image, less the all-zero tiles when `skip_empty`."""
    sizes = image.shape[1:]
    starts = list(
        itertools.product(*(tile_starts(s, p, overlap, grid) for s, p in zip(sizes, patch)))
    )
    if skip_empty:
        starts = [s for s in starts if bool(_tile(image, s, patch).any())]
    return starts


def _accumulate(
    run: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    starts: list[tuple[int, ...]],
    patch: list[int],
    batch_size: int,
    w: torch.Tensor | None,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Run the tiles in batches and sum their weighted outputs and the weights per voxel.
    The output is None when there are no tiles (its channel count is unknown then)."""
    padded = list(image.shape[1:])
    out: torch.Tensor | None = None
    norm = torch.zeros(padded, device=image.device)
    for i in range(0, len(starts), batch_size):
        chunk = starts[i : i + batch_size]
        pred = run(torch.stack([_tile(image, s, patch) for s in chunk])).float()
        if out is None:
            out = torch.zeros((pred.shape[1], *padded), device=image.device)
        for (a, b, c), p in zip(chunk, pred):
            sl = (slice(a, a + patch[0]), slice(b, b + patch[1]), slice(c, c + patch[2]))
            if w is None:
                out[(slice(None), *sl)] += p
                norm[sl] += 1
            else:
                out[(slice(None), *sl)] += p * w
                norm[sl] += w
    return out, norm


def _weighted_mean(out: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """The summed outputs over the summed weights; voxels no tile covered become background
    (channel 0 = 1, others 0)."""
    empty = norm == 0
    out = out / norm.clamp_min(1e-12)
    if empty.any():
        out[:, empty] = 0.0
        out[0, empty] = 1.0
    return out


def sliding_window(
    predict: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    patch: Sequence[int],
    *,
    overlap: float = 0.5,
    batch_size: int = 2,
    sigma_scale: float = 0.125,
    gaussian: bool = True,
    mirror: bool = False,
    skip_empty: bool = False,
    grid: str = "even",
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """`predict([B, C, *patch]) -> [B, K, *patch]` over the whole `image` [C, D, H, W].

    Returns [K, D, H, W] (float32, on the image's device): the weighted mean of every tile's
    output at each voxel. A volume smaller than the patch is zero-padded and cropped back.
    weights: an importance map [*patch] used instead of the Gaussian (e.g. MONAI's
    `compute_importance_map`, to compare the two implementations on identical weights).
    mirror: test-time augmentation, the mean over all 8 axis flips (8x the cost).
    skip_empty: tiles whose input is exactly zero (background after z-scoring and padding) are
    not run; voxels no run tile covers get channel 0 = 1 (background), others 0. A speed
    mode whose accuracy cost benchmarks/results/inference.md measures.
    """
    if image.ndim != 4:
        raise ValueError(f"sliding_window: expected image [C, D, H, W], got {tuple(image.shape)}")
    if not 0 <= overlap < 1:
        raise ValueError(f"sliding_window: overlap must be in [0, 1), got {overlap}")
    patch = [int(p) for p in patch]
    size = list(image.shape[1:])
    pad = [max(s, p) - s for s, p in zip(size, patch)]
    lo = [0, 0, 0]
    if any(pad):
        image, lo = _centre_pad(image, pad)
    w = _tile_weights(patch, weights, gaussian, sigma_scale, image.device)
    starts = _tile_origins(image, patch, overlap, grid, skip_empty)
    run = mirrored(predict) if mirror else predict
    out, norm = _accumulate(run, image, starts, patch, batch_size, w)
    if out is None:  # every tile skipped: all background
        k = int(predict(image[None, :, : patch[0], : patch[1], : patch[2]]).shape[1])
        out = torch.zeros((k, *image.shape[1:]), device=image.device)
    out = _weighted_mean(out, norm)
    crop = tuple(slice(lo_, lo_ + s) for lo_, s in zip(lo, size))
    return out[(slice(None), *crop)]


FLIPS = [dims for r in range(4) for dims in itertools.combinations((2, 3, 4), r)]


def mirrored(predict: Callable[[torch.Tensor], torch.Tensor]):
    """`predict` averaged over the 8 flips of the three spatial axes (nnU-Net's mirroring)."""

    def run(tiles: torch.Tensor) -> torch.Tensor:
        acc = None
        for dims in FLIPS:
            x = torch.flip(tiles, dims) if dims else tiles
            y = predict(x).float()
            y = torch.flip(y, dims) if dims else y
            acc = y if acc is None else acc + y
        assert acc is not None  # FLIPS is not empty
        return acc / len(FLIPS)

    return run


def whole_volume(
    predict: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, divisor: int = 32
) -> torch.Tensor:
    """`predict` over the whole `image` [C, D, H, W] in one call (no tiles): zero-padded to a
    multiple of `divisor` (the network's total stride), cropped back. Each voxel is computed
    once instead of ~(1 / (1 - overlap))³ times, at the memory of the whole volume; the
    network sees more context than its training patch, an accuracy cost that
    benchmarks/results/inference.md measures."""
    if image.ndim != 4:
        raise ValueError(f"whole_volume: expected image [C, D, H, W], got {tuple(image.shape)}")
    size = list(image.shape[1:])
    padded, lo = _centre_pad(image, [(-s) % divisor for s in size])
    out = predict(padded[None])[0].float()
    return out[(slice(None), *(slice(a, a + s) for a, s in zip(lo, size)))]


def stride_divisor(patch: Sequence[int], cap: int = 32) -> int:
    """The largest power of two dividing every patch side, at most `cap`: a size the network
    accepts, since its training patch was one."""
    d = 1
    while d < cap and all(int(p) % (2 * d) == 0 for p in patch):
        d *= 2
    return d
