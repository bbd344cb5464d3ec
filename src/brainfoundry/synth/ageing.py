"""Ageing: a subject's biological age (chronological age + an individual gap) drives ventricle
enlargement, sulcal widening with cortical thinning, white-matter hyperintensity load and a
flatter grey/white contrast. Each marker also has its own individual noise, so age can be
predicted well from the whole brain but not exactly from any one marker."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .anatomy import Anatomy
from .fields import blur, sample_where

AGE_RANGE = (18.0, 90.0)


@dataclass
class Ageing:
    age: float
    brain_age: float  # age + individual gap: what the anatomy shows
    atrophy: float  # 0 (young) .. ~1 (very old), accelerating with age
    ventricle_mm: float  # ventricle wall displacement
    cortical_loss: float  # fraction of exposed cortical GM turned into CSF
    wmh_count: int
    gm_wm_flattening: float  # relative loss of T1 grey/white contrast

    def as_dict(self) -> dict:
        return {k: v if isinstance(v, int) else round(float(v), 3) for k, v in asdict(self).items()}


def atrophy_curve(age: float) -> float:
    """Slow in young adults, accelerating after ~60 (population trend of brain volume loss)."""
    t = float(np.clip((age - AGE_RANGE[0]) / (AGE_RANGE[1] - AGE_RANGE[0]), 0.0, 1.2))
    return 0.3 * t + 0.7 * t * t


def draw_ageing(rng: np.random.Generator, age: float, difficulty: float = 0.5) -> Ageing:
    """Individual ageing for one subject; `difficulty` widens the brain-age gap and the noise."""
    gap_sd = 2.5 + 4.0 * difficulty
    brain_age = age + rng.normal(0.0, gap_sd)
    a = atrophy_curve(brain_age)
    noise = 0.5 + 0.5 * difficulty
    vent = 0.9 * rng.normal(0.0, noise) + 7.0 * a * np.exp(rng.normal(0.0, 0.2 * noise))
    cortical = np.clip(0.55 * a * np.exp(rng.normal(0.0, 0.25 * noise)), 0.0, 0.85)
    lam = 14.0 * max(0.0, a - 0.12) ** 1.5 * np.exp(rng.normal(0.0, 0.5 * noise))
    flat = np.clip(0.12 * a + rng.normal(0.0, 0.02 * noise), 0.0, 0.3)
    return Ageing(
        float(age),
        float(brain_age),
        float(a),
        float(vent),
        float(cortical),
        int(rng.poisson(lam)),
        float(flat),
    )


def enlarge_ventricles(anat: Anatomy, coords: torch.Tensor, amount_mm: float) -> torch.Tensor:
    """Move template coordinates along the smoothed-ventricle gradient: sampling deeper inside
    the ventricles makes them (and the tissue displacement around them) grow. Evaluated at full
    resolution, only where the gradient lives (around the ventricles)."""
    if abs(amount_mm) < 1e-3:
        return coords
    lo, hi = anat.vent_box()
    where = ((coords >= lo) & (coords <= hi)).all(-1)
    g = sample_where(anat.vent_grad, coords, where).permute(1, 2, 3, 0)
    return coords + (amount_mm / anat.res) * g


def thin_cortex(tissues: torch.Tensor, loss: float, res: float) -> torch.Tensor:
    """Turn exposed cortical GM into sulcal CSF (tissues [C,X,Y,Z], CHANNELS order)."""
    if loss <= 0:
        return tissues
    csf = tissues[3]
    exposure = (blur(csf, 1.5 / res) * 4.0).clamp(0.0, 1.0)
    moved = tissues[1] * (loss * exposure)
    out = tissues.clone()
    out[1] = tissues[1] - moved
    out[3] = csf + moved
    return out


def age_contrast(means: dict[str, np.ndarray], ageing: Ageing) -> dict[str, np.ndarray]:
    """Older brains: lower T1 grey/white contrast, darker deep GM on T2/T2* (iron)."""
    out = {k: v.copy() for k, v in means.items()}
    f = ageing.gm_wm_flattening
    for seq in ("t1", "t1c"):
        wm, gm = out[seq][0], out[seq][1]
        out[seq][0] = wm - f * (wm - gm) * 0.5
        out[seq][1] = gm + f * (wm - gm) * 0.5
    for seq in ("t2", "t2s", "swi"):
        out[seq][2] *= 1.0 - 0.15 * ageing.atrophy
    return out
