"""A non-brain head around the brain, for test data that is not skull-stripped (FOMO26 task 5).

The anatomy source (the MNI152 template bundled with nilearn) is skull-stripped and has no
face, so the head is modelled, not real: shells at the subject's own thicknesses outside the
template's intracranial space (extra-axial CSF, inner table, diploic marrow, outer table,
galea, scalp fat, skin), laid out by the distance from the intracranial space in template
space, so they deform with the subject. Defacing then removes everything in front of and
below an oblique plane through the orbits and the skull base, as defacing tools do, keeping
the brain. There is no neck: the shells close under the cerebellum, cut by the field of
view."""

from __future__ import annotations

import numpy as np
import torch

from .anatomy import Anatomy
from .fields import sample

HEAD_CHANNELS = ("csf_extra", "bone", "marrow", "fat", "soft")
# relative signal per channel (WM = 1 on T1), before per-subject jitter
# keyed by the contrast's internal maps (DWI is made from s0 and adc); fat is bright on T1, T1c,
# FLAIR and PD, suppressed on the EPI of DWI; bone is dark everywhere but on the ADC map, where
# the EPI's noise floor gives cortical bone a meaningless middling value
HEAD_MEANS = {
    "t1": (None, 0.04, 0.85, 1.2, 0.55),
    "t2": (None, 0.04, 0.55, 0.75, 0.45),
    "flair": (None, 0.04, 0.70, 0.90, 0.50),
    "pd": (None, 0.05, 0.75, 0.90, 0.65),
    "t1c": (None, 0.04, 0.85, 1.20, 0.70),
    "s0": (None, 0.03, 0.30, 0.20, 0.40),
    "adc": (None, 1.00, 0.50, 0.30, 1.20),
    "t2s": (None, 0.03, 0.40, 0.60, 0.40),
    "swi": (None, 0.03, 0.35, 0.55, 0.40),
}
_FAR = 60.0  # mm; zero padding outside the template grid then reads as far outside the head
_DIST: dict[float, torch.Tensor] = {}


def outside_icv(anat: Anatomy) -> torch.Tensor:
    """_FAR minus the distance (mm, capped) from the template's intracranial space, per
    template voxel (computed once per process and resolution)."""
    if anat.res not in _DIST:
        from scipy.ndimage import distance_transform_edt

        d = distance_transform_edt(anat.icv.numpy() < 0.5) * anat.res
        _DIST[anat.res] = torch.from_numpy((_FAR - np.minimum(d, _FAR)).astype(np.float32))
    return _DIST[anat.res]


def _layers(d: torch.Tensor, thick: dict[str, float], res: float) -> dict[str, torch.Tensor]:
    """Membership of each shell at distance `d` (mm outside the intracranial space)."""

    def band(a: float, b: float) -> torch.Tensor:
        return ((d - a) / res + 0.5).clamp(0, 1) * ((b - d) / res + 0.5).clamp(0, 1)

    t1, t2 = thick["table"], thick["table"] + thick["diploe"]
    skull = t2 + thick["table"]
    scalp = skull + thick["galea"] + thick["fat"]
    return {
        "bone": band(0.0, t1) + band(t2, skull),
        "marrow": band(t1, t2),
        "soft": band(skull, skull + thick["galea"]) + band(scalp, scalp + 1.0),
        "fat": band(skull + thick["galea"], scalp),
    }


def head(
    rng: np.random.Generator,
    anat: Anatomy,
    coords: torch.Tensor,
    brain_fraction: torch.Tensor,
    deface: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """([5,X,Y,Z] HEAD_CHANNELS fractions, bool head mask, record) for output voxels with
    template coordinates `coords`; `brain_fraction` is the brain's tissue sum. `deface`: cut the
    face off (the plane is drawn either way, so one seed gives one head)."""
    thick = {
        "table": float(rng.uniform(1.2, 2.0)),
        "diploe": float(rng.uniform(2.0, 4.0)),
        "galea": float(rng.uniform(1.0, 2.0)),
        "fat": float(rng.uniform(2.5, 5.0)),
    }
    d = _FAR - sample(outside_icv(anat), coords)
    inside = ((0.0 - d) / anat.res + 0.5).clamp(0, 1)
    layers = _layers(d, thick, anat.res)
    csf = (inside - brain_fraction).clamp(0, 1)
    out = torch.stack([csf, layers["bone"], layers["marrow"], layers["fat"], layers["soft"]])
    world = coords * anat.res + torch.as_tensor(anat.affine[:3, 3], dtype=torch.float32)
    y0, z0, slope = rng.uniform(25.0, 35.0), rng.uniform(-64.0, -56.0), rng.uniform(1.0, 1.25)
    if deface:
        face = (world[..., 2] < z0 + slope * (world[..., 1] - y0)) & (d > 0.0)
        out[:, face] = 0.0
    mask = (out.sum(0) + brain_fraction) > 0.5
    record: dict = {k: round(v, 2) for k, v in thick.items()}
    if deface:
        record["deface_plane"] = {"y0": round(y0, 1), "z0": round(z0, 1), "slope": round(slope, 2)}
    return out, mask, record


def head_means(seq: str, csf: float, rng: np.random.Generator) -> np.ndarray:
    """Signal of the HEAD_CHANNELS on the internal map `seq` (the extra-axial CSF as the
    session's CSF)."""
    if seq not in HEAD_MEANS:
        raise ValueError(f"no head model for {seq!r}; one of {sorted(HEAD_MEANS)}")
    vals = [csf] + [m * float(np.exp(rng.normal(0.0, 0.08))) for m in HEAD_MEANS[seq][1:]]
    return np.array(vals, dtype=np.float32)
