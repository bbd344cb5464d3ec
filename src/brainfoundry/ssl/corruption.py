"""Per-sample intensity corruption for AMAES-style MAE (Munk et al. 2024): the model sees a
corrupted, masked image and must reconstruct the clean one."""

from __future__ import annotations

import torch


def corrupt(x: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
    """Random contrast/brightness, gamma-like curve and Gaussian noise, one draw per sample."""
    out = []
    for xi, g in zip(x, gens):
        u = torch.rand(4, generator=g).tolist()
        fg = xi != 0
        y = xi * (0.75 + 0.5 * u[0]) + (u[1] - 0.5) * 0.4
        lo, hi = y.amin(), y.amax()
        gamma = 0.7 + 0.8 * u[2]
        y = ((y - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1) ** gamma * (hi - lo) + lo
        noise = torch.randn(xi.shape, generator=g).to(xi) * (0.1 * u[3])
        out.append(torch.where(fg, y + noise, xi))
    return torch.stack(out)
