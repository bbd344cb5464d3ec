"""QC montage: one row per case, one column per sequence (or per view: axial, coronal,
sagittal), a slice through the largest lesion cross-section (else upper mid-brain) with the
labelled lesion outlined in red (a label map: one colour per label)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from .contrast import SEQUENCES

_SUSCEPTIBILITY = ("t2s", "swi")  # one column when a case has only one of them
_LABEL_COLOURS = ("red", "cyan", "yellow", "lime")


def _column(name: str, row: dict) -> str:
    if name in _SUSCEPTIBILITY and not all(s in row for s in _SUSCEPTIBILITY):
        return "t2s"
    return name


def _order(names: set[str]) -> list[str]:
    canon = [s for s in SEQUENCES if s in names]
    return canon + sorted(names - set(canon))


def _window(img: np.ndarray) -> tuple[float, float]:
    fg = img[img > 0]
    if fg.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(fg, [0.5, 99.5])
    return 0.0, float(max(hi, lo + 1e-3))


def views(
    image: np.ndarray,
    lesion: np.ndarray,
    brain: np.ndarray,
    centre: tuple[int, int, int] | None = None,
) -> dict:
    """Axial, coronal and sagittal slices of one volume through voxel `centre`, each with its
    slice of `lesion`, for `montage`. By default the planes of the lesion's largest
    cross-sections, else the brain's centre (axially the upper mid-brain, as `qc_slices`)."""
    if centre is None and lesion.any():
        others = ((1, 2), (0, 2), (0, 1))
        centre = tuple(int(np.argmax((lesion > 0).sum(axis=a))) for a in others)  # type: ignore[assignment]
    elif centre is None:
        idx = np.argwhere(brain) if brain.any() else np.argwhere(np.ones_like(brain))
        lo, hi = idx.min(0), idx.max(0)
        i, j = (idx[:, :2].mean(0)).round().astype(int)
        centre = (int(i), int(j), int(lo[2] + 0.6 * (hi[2] - lo[2])))
    i, j, k = centre  # type: ignore[misc]
    planes: dict[str, tuple] = {
        "axial": (slice(None), slice(None), k),
        "coronal": (slice(None), j, slice(None)),
        "sagittal": (i, slice(None), slice(None)),
    }
    return {
        "images": {n: image[v].astype(np.float32) for n, v in planes.items()},
        "lesions": {n: lesion[v] for n, v in planes.items()},
        "lesion": lesion[:, :, k],
    }


def _outline(ax, lesion: np.ndarray) -> None:
    """Red outline of a binary mask; of a label map, one colour per label (1 red, 2 cyan...)."""
    if lesion.max() <= 1:
        ax.contour(lesion.T.astype(float), levels=[0.5], colors="red", linewidths=0.6)
        return
    for value in range(1, int(lesion.max()) + 1):
        if (lesion == value).any():
            colour = _LABEL_COLOURS[(value - 1) % len(_LABEL_COLOURS)]
            mask = (lesion == value).T.astype(float)
            ax.contour(mask, levels=[0.5], colors=colour, linewidths=0.6)


def montage(titles: list[str], slices: list[dict], path: str | Path, cell: float = 1.9) -> Path:
    """Write a PNG montage of `slices` (from `cases.qc_slices`) to `path` and return it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cols = _order({_column(k, s["images"]) for s in slices for k in s["images"]})
    rows = len(slices)
    fig, axes = plt.subplots(
        rows,
        len(cols),
        figsize=(cell * len(cols), cell * 1.15 * rows),
        squeeze=False,
        facecolor="black",
    )
    for r, (title, s) in enumerate(zip(titles, slices)):
        by_column = {_column(k, s["images"]): k for k in s["images"]}
        for c, col in enumerate(cols):
            ax = axes[r, c]
            ax.set_axis_off()
            name = by_column.get(col)
            if name is None:
                continue
            img = s["images"][name]
            ax.imshow(
                img.T,
                origin="lower",
                cmap="gray",
                vmin=_window(img)[0],
                vmax=_window(img)[1],
                interpolation="nearest",
            )
            lesion = s.get("lesions", {}).get(name, s.get("lesion"))
            if lesion is not None and lesion.any():
                _outline(ax, lesion)
            ax.set_title(name, color="white", fontsize=7, pad=2)
        axes[r, 0].text(
            0.0,
            1.18,
            title,
            transform=axes[r, 0].transAxes,
            color="yellow",
            fontsize=7,
            ha="left",
            va="bottom",
        )
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.95, wspace=0.03, hspace=0.35)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, facecolor="black", format="png")
    plt.close(fig)
    return Path(path)
