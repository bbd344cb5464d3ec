"""Separable linear operators: per-axis matrices applied with three batched matmuls.

Blur, simulated low resolution / thick slices, and k-space ghosting/motion are all linear maps
along one axis at a time, so each is an `[n, n]` matrix per item and axis: built once per batch
(tiny), applied as BLAS matmuls (no 3-D convolutions, no 3-D FFTs). The same machinery expands
coarse coefficient grids into smooth fields (elastic displacement, bias field).
"""

from __future__ import annotations

import math

import torch


def apply_separable(
    x: torch.Tensor,
    mz: torch.Tensor | None,
    my: torch.Tensor | None,
    mx: torch.Tensor | None,
) -> torch.Tensor:
    """x [M,C,D,H,W]; each matrix [M,n_out,n_in] (shared by the channels) or None to skip."""
    m, c, d, h, w = x.shape
    if mx is not None:
        x = x @ mx.transpose(-1, -2).reshape(m, 1, 1, w, -1)
        w = x.shape[-1]
    if my is not None:
        x = my.reshape(m, 1, 1, -1, h) @ x
        h = x.shape[-2]
    if mz is not None:
        x = mz.reshape(m, 1, -1, d) @ x.reshape(m, c, d, h * w)
        d = x.shape[-2]
    return x.reshape(m, c, d, h, w)


def expand_separable(
    coef: torch.Tensor, bz: torch.Tensor, by: torch.Tensor, bx: torch.Tensor
) -> torch.Tensor:
    """coef [B,K,gz,gy,gx] with bases [D,gz], [H,gy], [W,gx] -> field [B,K,D,H,W]."""
    b, k, gz, gy, _ = coef.shape
    t = coef @ bx.T  # [B,K,gz,gy,W]
    t = by @ t  # [B,K,gz,H,W]
    d, (h, w) = bz.shape[0], t.shape[-2:]
    return (bz @ t.reshape(b, k, gz, h * w)).reshape(b, k, d, h, w)


def smooth_basis(n: int, k: int, device=None) -> torch.Tensor:
    """[n,k] Gaussian bumps on k evenly spaced centres, rows normalised (a smooth interpolant)."""
    t = torch.linspace(0.0, 1.0, n, device=device).unsqueeze(1)
    centres = torch.linspace(0.0, 1.0, k, device=device).unsqueeze(0)
    width = 1.0 / max(k - 1, 1)
    basis = torch.exp(-0.5 * ((t - centres) / width) ** 2)
    return basis / basis.sum(dim=1, keepdim=True)


def legendre_basis(n: int, order: int, device=None) -> torch.Tensor:
    """[n, order+1] Legendre polynomials P_0..P_order on [-1, 1] (smooth bias-field basis)."""
    t = torch.linspace(-1.0, 1.0, n, device=device)
    polys = [torch.ones_like(t), t]
    for k in range(1, order):
        polys.append(((2 * k + 1) * t * polys[k] - k * polys[k - 1]) / (k + 1))
    return torch.stack(polys[: order + 1], dim=1)


def gaussian_matrices(sigma: torch.Tensor, n: int) -> torch.Tensor:
    """[M,n,n] Gaussian smoothing along one axis, sigma [M] in voxels; rows renormalised so
    borders are not darkened (as edge padding would); sigma 0 gives the identity."""
    i = torch.arange(n, device=sigma.device, dtype=sigma.dtype)
    dist2 = (i.view(1, -1, 1) - i.view(1, 1, -1)) ** 2
    s = sigma.clamp(min=1e-3).view(-1, 1, 1)
    weights = torch.exp(-0.5 * dist2 / s**2) * (dist2 <= (4 * s + 1) ** 2)
    return weights / weights.sum(dim=2, keepdim=True)


def lowres_matrices(scale: torch.Tensor, n: int) -> torch.Tensor:
    """[M,n,n]: average into round(n*scale) thick bins (partial-volume model of a coarse
    acquisition), then linear interpolation back to n samples."""
    mats = []
    for s in scale.tolist():
        low = max(1, min(n, round(n * s)))
        mats.append(_linear_up(n, low, scale.device) @ _box_down(low, n, scale.device))
    return torch.stack(mats).to(scale.dtype)


def _box_down(low: int, n: int, device) -> torch.Tensor:
    edges = torch.linspace(0.0, n, low + 1, device=device, dtype=torch.float64)
    i = torch.arange(n, device=device, dtype=torch.float64)
    overlap = (torch.minimum(edges[1:, None], i + 1) - torch.maximum(edges[:-1, None], i)).clamp(
        min=0
    )
    return (overlap / overlap.sum(dim=1, keepdim=True)).float()


def _linear_up(n: int, low: int, device) -> torch.Tensor:
    pos = ((torch.arange(n, device=device, dtype=torch.float64) + 0.5) * low / n - 0.5).clamp(
        0, low - 1
    )
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=low - 1)
    frac = pos - lo
    out = torch.zeros(n, low, device=device, dtype=torch.float64)
    out[torch.arange(n), lo] += 1 - frac
    out[torch.arange(n), hi] += frac
    return out.float()


def kspace_matrices(spectrum_gain: torch.Tensor) -> torch.Tensor:
    """[M,n,n] real operator `Re(F^-1 diag(g) F)` for complex per-line k-space gains g [M,n];
    exact for real images, so a 1-D k-space edit costs one matmul instead of an FFT."""
    n = spectrum_gain.shape[-1]
    eye = torch.eye(n, device=spectrum_gain.device, dtype=torch.complex64)
    spectrum = torch.fft.fft(eye, dim=0).unsqueeze(0) * spectrum_gain.unsqueeze(-1)
    return torch.fft.ifft(spectrum, dim=1).real.contiguous()


def ghosting_gains(n: int, num_ghosts: torch.Tensor, intensity: torch.Tensor, keep_centre: float):
    """Gains [M,n] damping every `num_ghosts`-th k-space line outside the centre (TorchIO's
    ghosting model); the centre fraction `keep_centre` keeps the overall contrast."""
    freq = torch.fft.fftfreq(n, device=intensity.device).abs()
    line = torch.arange(n, device=intensity.device)
    hit = (line.view(1, -1) % num_ghosts.view(-1, 1) == 0) & (freq.view(1, -1) > keep_centre / 2)
    gains = 1.0 - intensity.view(-1, 1) * hit
    return gains.to(torch.complex64)


def motion_gains(n: int, shift: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
    """Gains [M,n] for a rigid shift (voxels) that happened after `1 - fraction` of a sequential
    acquisition: the last lines come from the moved object (a phase ramp in k-space)."""
    freq = torch.fft.fftfreq(n, device=shift.device)
    order = torch.argsort(torch.argsort(freq))  # acquisition order: from -k_max to +k_max
    late = order.view(1, -1) >= (n * (1.0 - fraction)).view(-1, 1)
    angle = -2 * math.pi * freq.view(1, -1) * shift.view(-1, 1).float()
    ramp = torch.polar(torch.ones_like(angle), angle)
    return torch.where(late, ramp, torch.ones_like(ramp))
