"""The QC picture written beside every prediction: three orthogonal slices of the first input
as the model saw it (preprocessed), the predicted lesion in red, the output and its
uncertainty in the title — enough for a reader to catch a wrong sequence, a failed
preprocessing or an implausible mask at a glance."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _title(result: dict) -> str:
    u = result.get("uncertainty", {})
    if result["kind"] == "classification":
        return f"{result['task']}: P(positive) = {result['value']:.3f}"
    if result["kind"] == "multiclass":
        p = u.get("probabilities", {}).get(result["value"], float("nan"))
        return f"{result['task']}: {result['value']} (P = {p:.3f})"
    if result["kind"] == "regression" and isinstance(result["value"], dict):
        shown = ", ".join(f"{t} {v:.1f}" for t, v in list(result["value"].items())[:3])
        return f"{result['task']}: {shown}"
    if result["kind"] == "regression":
        lo, hi = u.get("interval_95", [float("nan")] * 2)
        text = f"{result['task']}: {result['value']:.1f} (95% interval {lo:.1f} to {hi:.1f})"
        flags = result.get("plausibility", {})
        if flags.get("outside_physical"):
            text += "\nIMPLAUSIBLE: outside the possible range (see the .json)"
        elif flags.get("far_from_training"):
            text += "\nIMPLAUSIBLE: far outside the training labels (see the .json)"
        return text
    if "volume_ml" in u:  # several classes
        shown = ", ".join(f"{c} {v:.2f} ml" for c, v in u["volume_ml"].items())
        return f"{result['task']}: {shown}"
    return f"{result['task']}: lesion {u.get('lesion_volume_ml', 0.0):.2f} ml"


def qc_png(path: str | Path, result: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..evaluation.figures import to_png
    from ..io.atomic import atomic_path
    from .core import LESION_THRESHOLD, lesion_mask

    img = np.asarray(result["qc_image"], dtype=np.float32)
    prob = result.get("qc_prob")
    if prob is not None and lesion_mask(prob).any():
        centre = [int(round(c.mean())) for c in np.nonzero(lesion_mask(prob))]  # through it
    else:
        centre = [s // 2 for s in img.shape]
    views = [
        (img[centre[0]], None if prob is None else prob[centre[0]]),
        (img[:, centre[1]], None if prob is None else prob[:, centre[1]]),
        (img[:, :, centre[2]], None if prob is None else prob[:, :, centre[2]]),
    ]
    lo, hi = np.percentile(img, [1, 99.5]) if img.any() else (0.0, 1.0)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    for ax, (sl, pr) in zip(axes, views):
        ax.imshow(np.rot90(sl), cmap="gray", vmin=lo, vmax=hi)
        if pr is not None:
            over = np.ma.masked_less_equal(np.rot90(pr), LESION_THRESHOLD)
            ax.imshow(over, cmap="autumn", alpha=0.5, vmin=LESION_THRESHOLD, vmax=1.0)
        ax.axis("off")
    fig.suptitle(_title(result), fontsize=10)
    fig.tight_layout()
    data = to_png(fig)
    plt.close(fig)
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return path
