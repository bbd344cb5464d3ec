"""Calibrate the regression head's 95% interval, and say which guarantee holds.

Two methods, chosen by what the kept model is (`selection.calibrate`):
- **jackknife+** (Barber et al., Ann. Statist. 2021) when the kept model is the closed-form
  linear probe: the probe is refitted without each labelled fine-tuning case in turn (training
  and validation cases alike, so n is large enough for a 95% rank), and the interval at a new
  case is the ⌊α(n+1)⌋-th / ⌈(1-α)(n+1)⌉-th order statistic of μ₋ᵢ(x) ∓ Rᵢ. For exchangeable
  cases it covers at least 1-2α in finite samples (about 1-α in practice). Validation chose
  nothing here, so no case is used twice.
- **split conformal** (Lei et al. 2018, normalised residual |y - μ| / σ) on the validation cases
  when a trained checkpoint was kept. Those cases also chose the checkpoint, so the finite-sample
  guarantee does not hold; the result says so (`reused_for_selection`).
With fewer than 1/α - 1 cases the ranks do not exist; we then take the extreme score and say so
(`finite_sample_valid: false`) rather than pretend.

For comparison (not used by the pipeline): the UK Biobank inference engine's **variance
scaling** (Langner et al.), which multiplies σ so that the empirical coverage of μ ± z·s·σ on
held-out cases matches each nominal level (`variance_scale`, `variance_scaling`). At one level
it is split conformal without the finite-sample correction (the ⌈c·n⌉-th normalised residual,
not the ⌈c·(n+1)⌉-th), so it is never wider and carries no guarantee; measured against
jackknife+ and split conformal in benchmarks/results/calibration.md.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

GAUSSIAN_95 = 1.959964


def conformal_scale(label, mean, sigma, coverage: float = 0.95) -> dict:
    """{"scale", "n", "coverage", "finite_sample_valid", "guaranteed_coverage", "method"} from
    held-out cases (the caller marks them `reused_for_selection` when they chose the model)."""
    scores = normalised_scores(label, mean, sigma)
    n = int(scores.size)
    out = {"n": n, "coverage": coverage, "method": "split-conformal (normalised residual)"}
    if n == 0:
        return {**out, "scale": GAUSSIAN_95, "finite_sample_valid": False,
                "guaranteed_coverage": None, "method": "gaussian (no held-out cases)"}  # fmt: skip
    k = ranks(n, coverage)[1]
    valid = k <= n
    scale = float(scores[min(k, n) - 1])
    return {**out, "scale": max(scale, 1e-6), "finite_sample_valid": valid,
            "guaranteed_coverage": coverage if valid else None}  # fmt: skip


LEVELS = tuple(round(0.1 * i, 1) for i in range(1, 11))  # the engine's 10%, 20%, …, 100%


def gaussian_quantile(coverage: float) -> float:
    """z with P(|Z| ≤ z) = coverage for a standard normal Z (∞ at coverage 1)."""
    if coverage >= 1.0:
        return math.inf
    return NormalDist().inv_cdf(0.5 * (1.0 + coverage))


def normalised_scores(label, mean, sigma) -> np.ndarray:
    """Sorted |y - μ| / σ over the cases where all three are finite and σ > 0."""
    y, mu, sd = (np.asarray(a, dtype=np.float64).ravel() for a in (label, mean, sigma))
    if not (y.shape == mu.shape == sd.shape):
        raise ValueError("label, mean and sigma must have the same length")
    ok = np.isfinite(y) & np.isfinite(mu) & np.isfinite(sd) & (sd > 0)
    return np.sort(np.abs(y[ok] - mu[ok]) / sd[ok])


def variance_scale(label, mean, sigma, coverage: float) -> float | None:
    """The engine's variance scaling at one nominal level c: s = q_c / z_{(1+c)/2}, q_c the
    empirical c-quantile of |y - μ| / σ (its ⌈c·n⌉-th order statistic: the smallest s whose
    μ ± z·s·σ covers at least a fraction c of these cases). None without cases, or at c ≥ 1,
    where z is infinite (see `variance_scaling`)."""
    scores = normalised_scores(label, mean, sigma)
    n = scores.size
    if n == 0 or not 0.0 < coverage < 1.0:
        return None
    k = min(max(math.ceil(coverage * n - 1e-9), 1), n)
    return float(scores[k - 1]) / gaussian_quantile(coverage)


def variance_scaling(label, mean, sigma, levels=LEVELS, tol: float = 0.05) -> dict:
    """Variance scaling at several nominal levels, as the engine checks it: per level its own
    scale, and one scale for all levels (the one that minimises the largest coverage error over
    the levels, the middle of its range), with the coverage it gives on these cases at each
    level and whether every level is within `tol`. The 100% level is degenerate: z is
    infinite, so μ ± z·s·σ is the whole line for every s > 0 and covers every case trivially;
    it says nothing about s, so it is left out of the fit and reported with scale None,
    coverage 1.0 and `degenerate: true`."""
    scores = normalised_scores(label, mean, sigma)
    fit = [c for c in levels if 0.0 < c < 1.0]
    z = np.array([gaussian_quantile(c) for c in fit])

    def covered(s: float) -> np.ndarray:  # fraction of cases covered at each fitted level
        return np.searchsorted(scores, z * s, side="right") / max(scores.size, 1)

    single = None
    if scores.size and fit:
        steps = np.unique(np.concatenate([[0.0], np.outer(scores, 1.0 / z).ravel()]))
        err = np.array([np.abs(covered(s) - np.array(fit)).max() for s in steps])
        j = int(np.argmin(err))  # coverage is constant from steps[j] up to the next step
        single = float(steps[j] if j + 1 == steps.size else 0.5 * (steps[j] + steps[j + 1]))
    cov = dict(zip(fit, covered(single).tolist())) if single is not None else {}
    rows = []
    for c in levels:
        degenerate = c >= 1.0
        rows.append({"level": c, "scale": variance_scale(label, mean, sigma, c),
                     "coverage": 1.0 if degenerate else cov.get(c),
                     "degenerate": degenerate})  # fmt: skip
    within = bool(cov) and all(abs(cov[c] - c) <= tol for c in fit)
    return {"scale": single, "n": int(scores.size), "levels": rows, "tol": tol,
            "within_tol": within, "method": "variance scaling (Langner et al.)"}  # fmt: skip


def ranks(n: int, coverage: float) -> tuple[int, int]:
    """1-based (lower, upper) order-statistic ranks of a two-sided conformal interval from n
    scores; a rank outside 1..n means the finite-sample interval is unbounded on that side."""
    alpha = 1.0 - coverage
    return math.floor(alpha * (n + 1)), math.ceil((1.0 - alpha) * (n + 1))


def jackknife_plus(loo_pred, resid, coverage: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per case from leave-one-out predictions `loo_pred` [B, n] at B new cases and the
    n leave-one-out residuals `resid` [n]; unbounded ranks fall back to the extreme values
    (reported as `finite_sample_valid: false` by `jackknife_guarantee`)."""
    mu = np.atleast_2d(np.asarray(loo_pred, dtype=np.float64))
    r = np.asarray(resid, dtype=np.float64).ravel()
    n = r.size
    if mu.shape[1] != n or n == 0:
        raise ValueError(f"jackknife+: {mu.shape[1]} leave-one-out models but {n} residuals")
    k_lo, k_hi = ranks(n, coverage)
    lo = np.sort(mu - r, axis=1)[:, min(max(k_lo, 1), n) - 1]
    hi = np.sort(mu + r, axis=1)[:, min(max(k_hi, 1), n) - 1]
    return lo, hi


def jackknife_guarantee(n: int, coverage: float = 0.95) -> dict:
    """The calibration record of a jackknife+ interval from n leave-one-out refits."""
    k_lo, k_hi = ranks(n, coverage)
    valid = n > 0 and k_lo >= 1 and k_hi <= n
    return {
        "method": "jackknife+ (leave-one-out refits of the linear probe)",
        "n": int(n),
        "coverage": coverage,
        "finite_sample_valid": bool(valid),
        "guaranteed_coverage": round(1.0 - 2.0 * (1.0 - coverage), 6) if valid else None,
        "reused_for_selection": False,
    }


def interval(mean, sigma, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) = μ ∓ scale·σ."""
    mu, sd = np.asarray(mean, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    return mu - scale * sd, mu + scale * sd


def calibration_text(cal: dict | None) -> str | None:
    """One line for a report: the method, its cases and the guarantee that actually holds."""
    if not cal:
        return None
    nominal = f"{100 * cal.get('coverage', 0.95):.0f}% nominal"
    if cal.get("reused_for_selection"):
        held = "no guarantee: these cases also chose the checkpoint"
    elif cal.get("finite_sample_valid") and cal.get("guaranteed_coverage") is not None:
        held = f"coverage >= {100 * cal['guaranteed_coverage']:.0f}% guaranteed in finite samples"
    else:
        held = "no finite-sample guarantee: too few cases for the rank"
    return f"{cal.get('method')} on {cal.get('n')} cases, {nominal}; {held}"
