"""Per-sequence tissue intensities: physically ordered means, per-subject jitter and vendor-like
shifts, and the partial-volume image model (tissue fractions x means x lesion ratios).

DWI is not drawn separately: a b0 (EPI T2) image S0 and an ADC map are synthesised, then
DWI_b1000 = S0 * exp(-b * ADC), so lesion appearance on DWI/ADC stays physically consistent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

SEQUENCES = ("t1", "t2", "flair", "pd", "t1c", "dwi_b1000", "adc", "t2s", "swi")
CHANNELS = ("wm", "cgm", "dgm", "csf", "vent", "tumour")
# internal maps: dwi_b1000 is computed from s0 and adc
_MAPS = ("t1", "t2", "flair", "pd", "t1c", "s0", "adc", "t2s", "swi")

# relative means (WM/GM/deep GM/CSF/ventricles/meningioma); ADC in 1e-3 mm^2/s
BASE = {
    "t1": (1.00, 0.64, 0.78, 0.16, 0.14, 0.60),
    "t2": (0.42, 0.62, 0.52, 1.00, 1.00, 0.70),
    "flair": (0.58, 0.80, 0.70, 0.07, 0.05, 0.88),
    "pd": (0.68, 0.84, 0.78, 1.00, 1.00, 0.90),
    "t1c": (0.95, 0.66, 0.78, 0.18, 0.16, 1.40),
    "s0": (0.52, 0.70, 0.62, 1.00, 1.00, 0.74),
    "adc": (0.72, 0.86, 0.76, 3.00, 3.10, 0.82),
    "t2s": (0.55, 0.72, 0.52, 0.95, 0.97, 0.72),
    "swi": (0.66, 0.74, 0.45, 0.92, 0.94, 0.68),
}
# orderings that every subject and vendor keeps (indices into CHANNELS, high to low)
ORDER = {
    "t1": (0, 1, 3),
    "t2": (3, 1, 0),
    "flair": (1, 0, 3),
    "pd": (3, 1, 0),
    "t1c": (0, 1, 3),
    "s0": (3, 1, 0),
    "adc": (3, 1, 0),
    "t2s": (3, 1, 0),
    "swi": (3, 1, 0),
}
# clinical "vendors": log-multipliers per (map, channel) at full shift; physically motivated
# (spin-echo T1 with flatter GM/WM contrast, incomplete FLAIR CSF suppression, other ADC scale)
VENDORS: dict[str, dict[str, tuple[float, ...]]] = {
    "clinical_a": {
        "t1": (1.0, 1.12, 1.05, 1.7, 1.8, 1.0),
        "flair": (0.92, 1.0, 1.0, 2.6, 2.8, 1.0),
        "t2": (1.15, 1.05, 1.0, 0.95, 0.95, 1.0),
        "adc": (1.06, 1.06, 1.06, 0.95, 0.95, 1.0),
        "s0": (1.0, 1.0, 1.0, 0.9, 0.9, 1.0),
        "t2s": (1.1, 1.0, 1.1, 0.85, 0.85, 1.0),
    },
    "clinical_b": {
        "t1": (0.97, 1.07, 1.0, 1.2, 1.2, 1.0),
        "flair": (1.05, 1.1, 1.05, 1.8, 1.9, 1.0),
        "t2": (1.0, 0.95, 0.95, 0.88, 0.88, 1.0),
        "adc": (0.94, 0.95, 0.94, 1.0, 1.0, 1.0),
        "pd": (1.05, 1.0, 1.0, 0.97, 0.97, 1.0),
        "swi": (1.08, 0.97, 1.1, 1.0, 1.0, 1.0),
    },
    "clinical_c": {
        "t1": (1.0, 1.15, 1.1, 2.0, 2.1, 1.0),
        "flair": (0.95, 1.06, 1.0, 3.2, 3.4, 1.0),
        "t2": (1.2, 1.1, 1.05, 1.0, 1.0, 1.0),
        "s0": (1.0, 1.05, 1.0, 0.85, 0.85, 1.0),
        "t2s": (1.15, 1.05, 1.15, 0.9, 0.9, 1.0),
    },
}


@dataclass
class Contrast:
    """One session's means per internal map ([6] per CHANNELS) and a global gain per sequence."""

    means: dict[str, np.ndarray]
    gain: dict[str, float]
    vendor: str
    b_value: float = 1000.0
    extra: dict = field(default_factory=dict)


def _ordered(m: np.ndarray, order: tuple[int, ...], gap: float = 1.05) -> bool:
    return all(m[a] > gap * m[b] for a, b in zip(order[:-1], order[1:]))


def draw_contrast(
    rng: np.random.Generator,
    shift: float,
    vendor: str | None = None,
    jitter: float = 0.05,
    gain_range: tuple[float, float] = (600.0, 1400.0),
) -> Contrast:
    """Per-session means: base x vendor^shift x per-subject jitter, orderings enforced."""
    means = {}
    for name, base in BASE.items():
        b = np.array(base, dtype=np.float64)
        if vendor is not None and name in VENDORS[vendor]:
            b = b * np.array(VENDORS[vendor][name]) ** shift
        for _ in range(20):
            m = b * np.exp(rng.normal(0.0, jitter, size=b.size))
            if _ordered(m, ORDER[name]):
                break
        else:
            m = b
        means[name] = m.astype(np.float32)
    gain = {s: float(np.exp(rng.uniform(*np.log(gain_range)))) for s in SEQUENCES if s != "adc"}
    gain["adc"] = 1000.0  # ADC is written in 1e-6 mm^2/s, like scanners do
    return Contrast(means, gain, vendor or "research")


@dataclass
class Lesion:
    """A pathology as a fraction map and per-map intensity ratios (1 = transparent)."""

    name: str
    fraction: torch.Tensor  # [X,Y,Z] in [0, 1]
    ratios: dict[str, float]  # keys: _MAPS names, plus "dwi" (applied to the DWI image only)
    meta: dict = field(default_factory=dict)


def _mix(tissues: torch.Tensor, means: np.ndarray) -> torch.Tensor:
    return torch.tensordot(torch.as_tensor(means, dtype=torch.float32), tissues, dims=1)


def _apply(img: torch.Tensor, lesions: list[Lesion], key: str) -> torch.Tensor:
    for les in lesions:
        r = les.ratios.get(key, 1.0)
        if r != 1.0:
            img = img * (1.0 + les.fraction * (r - 1.0))
    return img


def synthesize(
    seq: str,
    tissues: torch.Tensor,
    contrast: Contrast,
    lesions: list[Lesion],
    texture: torch.Tensor | None = None,
) -> torch.Tensor:
    """Noise-free image of `seq` (relative units; ADC in 1e-3 mm^2/s) from tissue fractions
    [6,X,Y,Z] in CHANNELS order, before artefacts and scanner gain."""
    if seq == "dwi_b1000":
        s0 = _apply(_mix(tissues, contrast.means["s0"]), lesions, "s0")
        adc = _apply(_mix(tissues, contrast.means["adc"]), lesions, "adc")
        img = s0 * torch.exp(-contrast.b_value * 1e-3 * adc)
        img = _apply(img, lesions, "dwi")
    else:
        img = _apply(_mix(tissues, contrast.means[seq]), lesions, seq)
    if texture is not None and seq != "adc":
        img = img * (1.0 + texture)
    return img
