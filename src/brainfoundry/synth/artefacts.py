"""Scanner effects applied to a noise-free image: acquisition resolution (in-plane blur, thick
axial slices), bias field, ghosting, Rician noise and partial coverage. The clinical domain is
the research one pushed by a `shift` strength in [0, 1]."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import numpy as np
import torch

from .fields import blur, smooth_noise

# sequences acquired as 2D axial stacks in the clinic (thick slices when shifted)
_CLINICAL_2D = {"t2", "flair", "pd", "dwi_b1000", "adc", "t2s", "swi"}
_EPI = {"dwi_b1000", "adc"}


@dataclass
class Acquisition:
    snr: float  # reference tissue signal / noise sigma
    bias: float  # std of the log bias field
    slice_mm: float  # axial (z) slice thickness; <= resolution means a 3D acquisition
    inplane_mm: float  # in-plane acquired resolution
    ghost: float  # ghost amplitude relative to the image (0 = none)
    ghost_axis: int  # phase-encoding axis: 0 (LR) or 1 (AP)

    def as_dict(self) -> dict:
        return {
            k: round(float(v), 3) if isinstance(v, float) else v for k, v in asdict(self).items()
        }


def draw_acquisition(
    rng: np.random.Generator, seq: str, res: float, shift: float, variation: float = 1.0
) -> Acquisition:
    """Research-grade acquisition (shift 0) moved towards clinical routine by `shift`.

    `variation` scales the research-side spread (sites differ a little even at shift 0)."""
    snr = rng.uniform(24.0, 40.0) * np.exp(rng.normal(0.0, 0.1 * variation))
    snr *= 1.0 - 0.55 * shift * rng.uniform(0.7, 1.0)
    if seq in _EPI:
        snr *= 0.55
    bias = 0.04 + 0.04 * variation * rng.uniform() + 0.12 * shift * rng.uniform(0.5, 1.0)
    inplane = 2.0 if seq in _EPI else 1.0
    slice_mm = inplane
    if shift > 0 and (seq in _CLINICAL_2D or rng.uniform() < 0.5):
        thick = rng.uniform(4.0, 6.0)
        slice_mm = inplane + shift * (thick - inplane)
        inplane *= 1.0 + 0.2 * shift * rng.uniform()
    ghost = 0.0
    if shift > 0 and rng.uniform() < 0.6 * shift:
        ghost = shift * rng.uniform(0.02, 0.09)
    return Acquisition(
        float(snr),
        float(bias),
        float(slice_mm),
        float(inplane),
        float(ghost),
        int(rng.integers(0, 2)),
    )


def bias_field(
    rng: np.random.Generator, shape: tuple[int, int, int], res: float, strength: float
) -> torch.Tensor:
    """Smooth multiplicative field exp(N(0, strength)) varying over ~80 mm."""
    f = smooth_noise(rng, shape, res, 80.0)
    return torch.exp(strength * f)


def ghosting(img: torch.Tensor, amplitude: float, axis: int) -> torch.Tensor:
    """Motion ghosts: shifted copies along the phase-encoding axis (N/2 and N/4)."""
    if amplitude <= 0:
        return img
    n = img.shape[axis]
    return (
        img
        + amplitude * torch.roll(img, n // 2, axis)
        + 0.5 * amplitude * torch.roll(img, n // 4, axis)
    )


def _rician(
    img: torch.Tensor, sigma: float, rng: np.random.Generator, gaussian: bool
) -> torch.Tensor:
    n1 = torch.from_numpy(rng.standard_normal(img.shape, dtype=np.float32))
    if gaussian:
        return img + sigma * n1
    n2 = torch.from_numpy(rng.standard_normal(img.shape, dtype=np.float32))
    return torch.sqrt((img + sigma * n1) ** 2 + (sigma * n2) ** 2)


def thick_slices(
    img: torch.Tensor,
    res: float,
    slice_mm: float,
    rng: np.random.Generator,
    noise: tuple[float, bool] | None = None,
) -> torch.Tensor:
    """Axial slices `slice_mm` thick: blur in z, keep one slice per thickness (random offset),
    add noise on the acquired slices, then linear interpolation back to the `res` grid."""
    step = slice_mm / res
    b = blur(img, (0.0, 0.0, slice_mm / 2.355 / res))
    nz = img.shape[2]
    offset = rng.uniform(0.0, step)
    pos = torch.arange(offset, nz - 1 + 1e-6, step, dtype=torch.float32)
    lo = pos.floor().long().clamp(0, nz - 1)
    hi = (lo + 1).clamp(max=nz - 1)
    w = pos - lo.float()
    slices = b[..., lo] * (1 - w) + b[..., hi] * w
    if noise is not None:
        slices = _rician(slices, noise[0], rng, noise[1])
    u = ((torch.arange(nz, dtype=torch.float32) - offset) / step).clamp(0, len(pos) - 1)
    k0 = u.floor().long().clamp(max=len(pos) - 1)
    k1 = (k0 + 1).clamp(max=len(pos) - 1)
    wu = u - k0.float()
    return slices[..., k0] * (1 - wu) + slices[..., k1] * wu


def acquire(
    img: torch.Tensor,
    acq: Acquisition,
    res: float,
    ref: float,
    rng: np.random.Generator,
    keep: torch.Tensor,
    is_map: bool = False,
) -> torch.Tensor:
    """Apply one acquisition to a noise-free image and skull-strip it to `keep` (bool). `ref` is
    the signal that SNR refers to; a quantitative map (ADC) gets Gaussian noise, no bias field."""
    if acq.inplane_mm > res * 1.05:
        s = np.sqrt(acq.inplane_mm**2 - res**2) / 2.355 / res
        img = blur(img, (s, s, 0.0))
    if not is_map:
        img = img * bias_field(rng, cast(tuple[int, int, int], tuple(img.shape)), res, acq.bias)
    img = ghosting(img, acq.ghost, acq.ghost_axis)
    sigma = ref / acq.snr
    if acq.slice_mm > res * 1.2:
        return thick_slices(img, res, acq.slice_mm, rng, (sigma, is_map)) * keep
    out = torch.zeros_like(img)
    out[keep] = _rician(img[keep], sigma, rng, is_map)  # noise only where it will be seen
    return out


def coverage(
    rng: np.random.Generator, nz: int, res: float, shift: float, keep: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Axial range [lo, hi) that the scan covered: clinical scans may miss the vertex or the
    posterior fossa. `keep` (a z range holding a lesion) is never cut."""
    lo, hi = 0, nz
    if shift > 0 and rng.uniform() < 0.4 * shift:
        cut = int(round(rng.uniform(8.0, 28.0) * shift / res))
        if rng.uniform() < 0.6:
            hi = nz - cut  # vertex missing
            if keep is not None:
                hi = max(hi, keep[1] + 2)
        else:
            lo = cut  # skull base / cerebellum missing
            if keep is not None:
                lo = min(lo, keep[0] - 1)
    return max(0, lo), min(nz, hi)
