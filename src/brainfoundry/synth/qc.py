"""QC montage: one row per case, one column per sequence, an axial slice through the largest
lesion cross-section (else upper mid-brain) with the labelled lesion outlined in red."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from .contrast import SEQUENCES

_SUSCEPTIBILITY = ("t2s", "swi")  # one column when a case has only one of them


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
            lesion = s.get("lesion")
            if lesion is not None and lesion.any():
                ax.contour(lesion.T.astype(float), levels=[0.5], colors="red", linewidths=0.6)
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
