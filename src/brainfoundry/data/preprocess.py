"""Per-session preprocessing: co-registration → brain extraction → RAS reorientation →
resampling → (bias correction) → foreground crop → normalisation.

Scans of a session on other grids than the first (the reference) are first brought onto its
grid (`coregister`: rigid registration when the grids differ, by default); a head is then
skull-stripped (`skull_strip`, "auto" by default). Every step is
recorded in a `Geometry`, so `restore` maps an array in preprocessed space (a prediction) back
onto the exact grid and affine of the reference input file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import nibabel.orientations as nio
import numpy as np

from ..errors import ConfigError, InputError
from ..io.volume import Volume
from .bias_field import n4_correct
from .coregister import align_session, check_mode
from .resample import resample, resample_labels, target_shape
from .skull_strip import check_mode as check_strip
from .skull_strip import skull_strip


@dataclass
class PreprocessConfig:
    """How scans become training arrays; saved in the store's plan.json and in every card."""

    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    interpolation: Literal["cubic", "linear"] = "cubic"
    # across thick slices (spacing ≥ anisotropy_threshold × the finest); cubic measured best
    # on 5 mm slabs (benchmarks/results/prepare.md), nearest is nnU-Net's choice
    thick_slice_interpolation: Literal["cubic", "linear", "nearest"] = "cubic"
    anisotropy_threshold: float = 3.0
    crop_foreground: bool = True
    crop_margin: int = 2  # voxels kept around the foreground box
    # "quantile": each scan's foreground intensities mapped through their own empirical
    # distribution onto a standard normal (rank-based inverse normal transform; Nyul & Udupa's
    # histogram standardisation without a training template). Any monotone change of tissue
    # contrast (scanner, vendor, sequence variant) leaves it unchanged, where a z-score keeps the
    # shifted tissue levels. "zscore": nnU-Net's foreground z-score for MRI.
    normalization: Literal["quantile", "zscore", "none"] = "zscore"
    # None = plain foreground z-score, nnU-Net's choice for MRI. Clipping at (0.5, 99.5) made
    # small bright lesions equal to every scan's bright tail: on synthetic 4 mm DWI, 53% of
    # infarct voxels sat at the cap, and 32-case infarct probes on the shifted test scored
    # 0.67 vs 0.74 AUROC (DWI quantiles), 0.57 vs 0.67 (random conv) (benchmarks/results/clip.md)
    clip_percentiles: tuple[float, float] | None = None
    dtype: Literal["float16", "float32"] = "float16"
    # scans of a session on another grid than the reference (the first): "auto" registers them
    # rigidly onto it, then resamples them onto its grid (a session on one grid is untouched);
    # "rigid" registers every scan, even on one grid; "header" only resamples (trusts the
    # headers); "off" refuses another grid (`data.coregister`)
    coregister: Literal["off", "header", "auto", "rigid"] = "auto"
    # "n4": divide each resampled scan by its N4-fitted smooth bias field before normalising
    # (`data.bias_field`); part of the model's recipe (its card), so predict repeats it
    bias_correct: Literal["off", "n4"] = "off"
    # brain extraction after co-registration, on the session's best sequence for it, its mask
    # applied to every scan (`data.skull_strip`): "auto" strips a scan that shows more than a
    # brain and leaves a skull-stripped one (or a slab) as it is; "deepbet" strips every scan;
    # part of the model's recipe, so predict repeats it on raw input
    skull_strip: Literal["auto", "off", "deepbet"] = "auto"

    def __post_init__(self) -> None:
        check_mode(self.coregister)
        check_strip(self.skull_strip)
        if self.bias_correct not in ("off", "n4"):
            raise ConfigError(f"preprocess.bias_correct {self.bias_correct!r}: use off or n4")
        if self.normalization not in ("quantile", "zscore", "none"):
            raise ConfigError(
                f"preprocess.normalization {self.normalization!r}: use quantile, zscore or none"
            )
        if self.normalization == "quantile" and self.clip_percentiles is not None:
            raise ConfigError(
                "preprocess.clip_percentiles has no effect with normalization=quantile "
                "(ranks ignore the tails' values); drop one of them"
            )


@dataclass
class Geometry:
    """Everything needed to map preprocessed voxels back onto the input file's grid."""

    orig_shape: list[int]
    orig_affine: list[list[float]]
    ornt: list[list[float]]  # nibabel orientation transform: file voxel axes -> RAS
    canonical_shape: list[int]
    canonical_spacing: list[float]
    resampled_shape: list[int]
    crop: list[list[int]]  # [lo, hi) per axis in resampled space
    affine: list[list[float]] = field(default_factory=list)  # stored array voxel -> world

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Geometry:
        return cls(**d)


RECIPE_KEYS = ("normalization", "clip_percentiles", "bias_correct", "skull_strip")
# what a plan (or a card) written before a recipe setting existed did: no bias correction, no
# brain extraction
RECIPE_BEFORE = {"bias_correct": "off", "skull_strip": "off"}


def recipe(preprocess: dict) -> dict:
    """The intensity recipe a model's card keeps from its store's plan (`RECIPE_BEFORE` for the
    settings an old plan lacks)."""
    return {**RECIPE_BEFORE, **{k: preprocess[k] for k in RECIPE_KEYS if k in preprocess}}


def to_ras(vol: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorient voxels to RAS by axis flips/permutations only (no interpolation)."""
    ornt = nio.ornt_transform(nio.io_orientation(vol.affine), nio.axcodes2ornt("RAS"))
    data = nio.apply_orientation(vol.data, ornt)
    affine = vol.affine @ nio.inv_ornt_aff(ornt, vol.data.shape)
    return np.ascontiguousarray(data), affine, ornt


def foreground_mask(data: np.ndarray) -> np.ndarray:
    """Voxels above the background level (skull-stripped scans: exact zeros outside the brain)."""
    lo = float(data.min())
    hi = float(np.percentile(_sub(data.ravel()), 99.5))
    return data > lo + 1e-3 * max(hi - lo, 1e-6)


def bbox(mask: np.ndarray, margin: int) -> list[list[int]]:
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        lo = max(int(idx[0]) - margin, 0)
        hi = min(int(idx[-1]) + 1 + margin, mask.shape[axis])
        box.append([lo, hi])
    return box


PERCENTILE_SAMPLES = 1 << 20


def _sub(values: np.ndarray) -> np.ndarray:
    """An evenly strided subsample of ≤ ~1M values: percentiles of a scan barely move, and a full
    sort of a 1 mm volume costs more than the rest of its preprocessing (bench_prepare)."""
    step = max(1, values.size // PERCENTILE_SAMPLES)
    return values[::step]


def zscore(data: np.ndarray, mask: np.ndarray, clip: tuple[float, float] | None):
    """Z-score on the foreground (optionally clipped to percentiles); background set to 0."""
    fg = data[mask]
    if fg.size < 10:
        raise ValueError("foreground has fewer than 10 voxels")
    if clip is not None:
        lo, hi = np.percentile(_sub(fg), clip)
        data = np.clip(data, lo, hi)
        fg = data[mask]
    mean, std = float(fg.mean()), float(fg.std())
    out = (data - mean) / max(std, 1e-8)
    out[~mask] = 0.0
    return out.astype(np.float32), mean, std


def quantile_normal(data: np.ndarray, mask: np.ndarray):
    """Foreground voxels → Φ⁻¹(their mid-rank fraction) (ties share a value); background 0.
    The ranks come from an evenly strided subsample (≤ ~1M values), so a 1 mm scan costs a
    pair of binary searches per voxel, not a full sort. Returns the array and the foreground
    mean/sd it replaced."""
    from scipy.special import ndtri

    fg = data[mask].astype(np.float64)
    if fg.size < 10:
        raise ValueError("foreground has fewer than 10 voxels")
    ref = np.sort(_sub(fg))
    n = ref.size
    lo = np.searchsorted(ref, fg, side="left")
    hi = np.searchsorted(ref, fg, side="right")
    frac = (0.5 * (lo + hi) + 0.5) / (n + 1.0)
    out = np.zeros(data.shape, np.float32)
    out[mask] = ndtri(frac).astype(np.float32)
    return out, float(fg.mean()), float(fg.std())


@dataclass
class Preprocessed:
    images: list[np.ndarray]  # one per input volume, same shape
    label: np.ndarray | None
    geometry: Geometry
    stats: list[dict]  # per image: fg_mean, fg_std, fg_fraction
    fg_mask: np.ndarray
    # scans moved onto the reference grid, a skull strip
    warnings: list[str] = field(default_factory=list)
    qc: dict = field(default_factory=dict)  # {"skull_strip": what was done (`Stripped.record`)}


def _check_grids(vols: list[Volume], seg: Volume | None) -> None:
    """One crop and one geometry serve the group only if every scan and the label share a grid."""
    ref = vols[0]
    for v in vols[1:]:
        if v.shape != ref.shape or not np.allclose(v.affine, ref.affine, atol=1e-3):
            raise InputError(v.path, f"grid differs from {ref.path}; not co-registered")
    if seg is not None and (
        seg.shape != ref.shape or not np.allclose(seg.affine, ref.affine, atol=1e-2)
    ):
        raise InputError(seg.path, f"label shape {seg.shape} does not match image {ref.shape}")


def _resample_label(seg: Volume, shape: tuple[int, ...]) -> np.ndarray:
    """The label map in RAS on the target grid (labels rounded first: some files store floats)."""
    lab, _, _ = to_ras(Volume(np.rint(seg.data).astype(np.int16), seg.affine, seg.path))
    return resample_labels(lab, shape=shape).astype(np.uint8)


def _normalise(
    im: np.ndarray, m: np.ndarray, cfg: PreprocessConfig, path: str
) -> tuple[np.ndarray, dict]:
    """One cropped image normalised per `cfg`, cast to `cfg.dtype`, with its foreground stats."""
    if cfg.normalization in ("zscore", "quantile"):
        try:
            if cfg.normalization == "zscore":
                im, mean, std = zscore(im, m, cfg.clip_percentiles)
            else:
                im, mean, std = quantile_normal(im, m)
        except ValueError as e:
            raise InputError(path, str(e)) from None
    else:
        mean, std = float(im[m].mean()), float(im[m].std())
    stats = {"fg_mean": mean, "fg_std": std, "fg_fraction": float(m.mean())}
    return im.astype(cfg.dtype), stats


def _stored_affine(
    canonical: np.ndarray,
    canonical_shape: tuple[int, ...],
    new_shape: tuple[int, ...],
    box: list[list[int]],
) -> list[list[float]]:
    """Stored array voxel -> world: the canonical affine scaled to the new spacing, shifted by
    the crop."""
    scale = np.array(canonical_shape, float) / np.array(new_shape, float)
    vox = np.eye(4)
    vox[:3, :3] = np.diag(scale)
    vox[:3, 3] = 0.5 * scale - 0.5 + scale * np.array([b[0] for b in box])
    return (canonical @ vox).tolist()


def preprocess_group(
    vols: list[Volume], cfg: PreprocessConfig, seg: Volume | None = None
) -> Preprocessed:
    """Preprocess the scans of one session together (one crop, one geometry): those on another
    grid than the first are first brought onto it (`cfg.coregister`, each one a warning)."""
    vols, notes = align_session(vols, cfg.coregister, cfg.interpolation)
    _check_grids(vols, seg)
    stripped = skull_strip(vols, cfg.skull_strip)
    vols = stripped.vols
    notes = notes + ([stripped.note] if stripped.note else [])
    ref = vols[0]
    canon = [to_ras(v) for v in vols]
    _, affine, ornt = canon[0]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    new_shape = target_shape(canon[0][0].shape, spacing, cfg.spacing)
    imgs = [
        resample(
            c[0],
            spacing,
            shape=new_shape,
            mode=cfg.interpolation,
            anisotropy_threshold=cfg.anisotropy_threshold,
        )
        for c in canon
    ]
    label = _resample_label(seg, new_shape) if seg is not None else None
    masks = [foreground_mask(im) for im in imgs]
    if cfg.bias_correct == "n4":
        imgs = [n4_correct(im, m, cfg.spacing, v.path)[0] for im, m, v in zip(imgs, masks, vols)]
    mask = np.logical_or.reduce(masks)
    if not mask.any():
        raise InputError(ref.path, "no foreground voxels after resampling")
    full = [[0, s] for s in new_shape]
    box = bbox(mask, cfg.crop_margin) if cfg.crop_foreground else full
    sl = tuple(slice(lo, hi) for lo, hi in box)
    done = [_normalise(im[sl], m[sl], cfg, v.path) for im, m, v in zip(imgs, masks, vols)]
    geom = Geometry(
        orig_shape=list(ref.shape),
        orig_affine=ref.affine.tolist(),
        ornt=ornt.tolist(),
        canonical_shape=list(canon[0][0].shape),
        canonical_spacing=spacing.tolist(),
        resampled_shape=list(new_shape),
        crop=box,
        affine=_stored_affine(affine, canon[0][0].shape, new_shape, box),
    )
    out, stats = [im for im, _ in done], [st for _, st in done]
    lab = label[sl] if label is not None else None
    return Preprocessed(out, lab, geom, stats, mask[sl], notes, {"skull_strip": stripped.record})


def restore(
    arr: np.ndarray, geom: Geometry, *, is_label: bool = False, fill: float = 0.0
) -> np.ndarray:
    """Map an array in preprocessed space back to the input file's voxel grid."""
    canvas = np.full(geom.resampled_shape, fill, dtype=np.float32 if not is_label else arr.dtype)
    sl = tuple(slice(lo, hi) for lo, hi in geom.crop)
    if tuple(arr.shape) != tuple(canvas[sl].shape):
        raise ValueError(f"array shape {arr.shape} does not match the crop {canvas[sl].shape}")
    canvas[sl] = arr
    if is_label:
        back = resample_labels(canvas, shape=geom.canonical_shape)
    else:
        back = resample(canvas, (1, 1, 1), shape=geom.canonical_shape, mode="linear")
    inv = nio.ornt_transform(
        nio.axcodes2ornt("RAS"), nio.io_orientation(np.array(geom.orig_affine))
    )
    out = nio.apply_orientation(back, inv)
    assert tuple(out.shape) == tuple(geom.orig_shape), (out.shape, geom.orig_shape)
    return np.ascontiguousarray(out)
