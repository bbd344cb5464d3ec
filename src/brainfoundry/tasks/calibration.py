"""Calibrate the regression head's 95% interval on held-out fine-tuning cases.

A Gaussian head's σ is often too small or too large on a few hundred cases, so the interval
μ ± s·σ uses the scale s that split conformal prediction gives (Lei et al. 2018, with
normalised residuals |y - μ| / σ as the score): the ⌈(n+1)(1-α)⌉-th smallest score. With
fewer than 1/α - 1 held-out cases that rank does not exist; we then take the largest score and
say so (`finite_sample_valid: false`) rather than pretend.
"""

from __future__ import annotations

import math

import numpy as np

GAUSSIAN_95 = 1.959964


def conformal_scale(label, mean, sigma, coverage: float = 0.95) -> dict:
    """{"scale", "n", "coverage", "finite_sample_valid", "method"} from held-out cases."""
    y, mu, sd = (np.asarray(a, dtype=np.float64).ravel() for a in (label, mean, sigma))
    if not (y.shape == mu.shape == sd.shape):
        raise ValueError("label, mean and sigma must have the same length")
    ok = np.isfinite(y) & np.isfinite(mu) & np.isfinite(sd) & (sd > 0)
    scores = np.sort(np.abs(y[ok] - mu[ok]) / sd[ok])
    n = int(scores.size)
    out = {"n": n, "coverage": coverage, "method": "split-conformal (normalised residual)"}
    if n == 0:
        return {**out, "scale": GAUSSIAN_95, "finite_sample_valid": False,
                "method": "gaussian (no held-out cases)"}  # fmt: skip
    k = math.ceil((n + 1) * coverage)
    valid = k <= n
    scale = float(scores[min(k, n) - 1])
    return {**out, "scale": max(scale, 1e-6), "finite_sample_valid": valid}


def interval(mean, sigma, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) = μ ∓ scale·σ."""
    mu, sd = np.asarray(mean, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    return mu - scale * sd, mu + scale * sd
