"""Functional intensity core: pure functions on `[M,C,D,H,W]` with explicit per-item parameters.

Parameters are `[M]` or `[M,C]` tensors (broadcast over voxels); statistics are per item and
channel. None of these edits its input.
"""

from __future__ import annotations

import torch

from .separable import expand_separable, legendre_basis

_SPATIAL = (2, 3, 4)


def _per_item(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape an [M] or [M,C] parameter to broadcast over [M,C,D,H,W]."""
    value = value.to(device=x.device, dtype=x.dtype)
    return value.reshape(value.shape[0], -1, 1, 1, 1)


def gaussian_noise(x: torch.Tensor, std: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Add zero-mean Gaussian noise of standard deviation `std` (drawn on the generator)."""
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    return torch.addcmul(x, noise.to(x.device), _per_item(std, x))


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Multiplicative brightness: zero (background, missing channels) stays zero."""
    return x * _per_item(factor, x)


def contrast(x: torch.Tensor, factor: torch.Tensor, preserve_range: bool = True) -> torch.Tensor:
    """Stretch about the mean by `factor`; optionally clip back into the original range."""
    mean = x.mean(dim=_SPATIAL, keepdim=True)
    out = torch.lerp(mean, x, _per_item(factor, x))
    if preserve_range:
        out = torch.clamp(
            out, x.amin(dim=_SPATIAL, keepdim=True), x.amax(dim=_SPATIAL, keepdim=True)
        )
    return out


def gamma(
    x: torch.Tensor, gamma: torch.Tensor, invert: bool = False, retain_stats: bool = True
) -> torch.Tensor:
    """Gamma on the range-normalised image, `x -> lo + (hi-lo) * ((x-lo)/(hi-lo))**gamma`;
    `invert` applies it to -x (darkens bright structures instead), `retain_stats` restores the
    mean and standard deviation so only the shape of the histogram changes."""
    if invert:
        x = -x
    if retain_stats:
        mean, std = x.mean(dim=_SPATIAL, keepdim=True), x.std(dim=_SPATIAL, keepdim=True)
    lo, hi = x.amin(dim=_SPATIAL, keepdim=True), x.amax(dim=_SPATIAL, keepdim=True)
    span = (hi - lo).clamp(min=1e-7)
    # exp(g * log(t)) beats pow on CPU by ~1/3; t = 0 maps to exp(-inf) = 0 as 0**g does
    out = ((x - lo) / span).log_().mul_(_per_item(gamma, x)).exp_().mul_(span).add_(lo)
    if retain_stats:
        new_mean, new_std = (
            out.mean(dim=_SPATIAL, keepdim=True),
            out.std(dim=_SPATIAL, keepdim=True),
        )
        out = (out - new_mean).mul_(std / new_std.clamp(min=1e-7)).add_(mean)
    return -out if invert else out


def bias_field_coefficients(
    order: int, magnitude: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Random coefficients [M, order+1, order+1, order+1] of a polynomial log-field, uniform in
    [-magnitude, magnitude], with terms of total degree above `order` set to zero."""
    k = order + 1
    m = magnitude.shape[0]
    coef = torch.rand((m, k, k, k), generator=generator, device=generator.device)
    coef = (2 * coef - 1).to(magnitude.device) * magnitude.view(m, 1, 1, 1)
    degree = torch.arange(k, device=coef.device)
    total = degree.view(-1, 1, 1) + degree.view(1, -1, 1) + degree.view(1, 1, -1)
    return coef * (total <= order)


def bias_field(x: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """Multiply by `exp(sum c_ijk P_i(z) P_j(y) P_k(x))`, a smooth low-order receive-coil field
    (Legendre polynomials, as in TorchIO); one field per item shared by its channels."""
    order = coefficients.shape[-1] - 1
    d, h, w = x.shape[2:]
    bases = [legendre_basis(n, order, device=x.device).to(x.dtype) for n in (d, h, w)]
    log_field = expand_separable(coefficients.to(x.dtype).unsqueeze(1), *bases)
    return x * log_field.exp_()


def drop_channels(
    image: torch.Tensor, present: torch.Tensor, drop: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero the channels where `drop` [B,C] is True and mark them absent (modality dropout)."""
    keep = ~drop
    return image * keep.view(*keep.shape, 1, 1, 1).to(image.dtype), present & keep
