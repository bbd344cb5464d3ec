"""The report's figures, each a function from arrays to a matplotlib Figure.

Figures are built on `matplotlib.figure.Figure` and rendered by the Agg canvas directly, never
through pyplot, so the library changes no global backend and leaks no open figures.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

TRUTH_COLOUR, PRED_COLOUR = "#00c853", "#ff1744"


def to_png(fig: Figure, dpi: int = 110) -> bytes:
    """Render `fig` to PNG bytes with the Agg canvas."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _ci_text(m: dict | None) -> str:
    if not m or m.get("estimate") is None:
        return "n/a"
    if m.get("lo") is None:
        return f"{m['estimate']:.3f}"
    return f"{m['estimate']:.3f} (95% CI {m['lo']:.3f}–{m['hi']:.3f})"


def roc_points(label, prob) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    label = np.asarray(label).astype(bool)
    prob = np.asarray(prob, dtype=np.float64)
    order = np.argsort(-prob, kind="stable")
    p, y = prob[order], label[order]
    cut = np.r_[p[1:] != p[:-1], True]
    tps, fps = np.cumsum(y)[cut], np.cumsum(~y)[cut]
    return np.r_[0.0, fps / max(fps[-1], 1)], np.r_[0.0, tps / max(tps[-1], 1)]


def roc_figure(label, prob, auroc: dict | None = None) -> Figure:
    """ROC curve with the chance diagonal and AUROC (with its CI) in the legend."""
    fig = Figure(figsize=(4.6, 4.4))
    ax = fig.add_subplot()
    fpr, tpr = roc_points(label, prob)
    ax.plot(fpr, tpr, lw=2, drawstyle="default", label=f"AUROC {_ci_text(auroc)}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
    ax.set_xlabel("1 − specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("ROC curve")
    return fig


def calibration_figure(label, prob, bins: int = 10) -> Figure:
    """Reliability diagram: observed positive rate per bin of predicted probability, with counts.

    Equal-width bins; a point's area shows how many cases it rests on, and the histogram below
    shows where the predictions fall.
    """
    label = np.asarray(label).astype(float)
    prob = np.asarray(prob, dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    filled = count > 0
    mean_p = np.bincount(which, prob, bins)[filled] / count[filled]
    rate = np.bincount(which, label, bins)[filled] / count[filled]
    ece = float(np.sum(count[filled] * np.abs(rate - mean_p)) / max(count.sum(), 1))
    fig = Figure(figsize=(4.6, 5.2))
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    ax.plot(mean_p, rate, "-", c="C0", lw=1)
    ax.scatter(mean_p, rate, s=20 + 200 * count[filled] / count.max(), c="C0", zorder=3)
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), ylabel="observed fraction positive")
    ax.set_title(f"Calibration (ECE {ece:.3f}, {bins} bins)")
    ax.legend(loc="upper left", fontsize=8)
    hist.hist(prob, bins=edges, color="C0", alpha=0.6)
    hist.set(xlabel="predicted probability", ylabel="cases")
    return fig


def confusion_figure(label, pred, classes: list[str]) -> Figure:
    """Confusion matrix of the likeliest class: counts, each row shaded by its share of the
    true class (so a rare class's errors show as clearly as a common one's)."""
    k = len(classes)
    m = np.zeros((k, k), int)
    np.add.at(m, (np.asarray(label, int), np.asarray(pred, int)), 1)
    share = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig = Figure(figsize=(1.6 + 0.7 * k, 1.2 + 0.7 * k))
    ax = fig.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(m[i, j]), ha="center", va="center",
                    color="white" if share[i, j] > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix")
    fig.tight_layout()
    return fig


def age_figure(
    label, pred, lo=None, hi=None, summary: dict | None = None, what: str = "age (years)"
) -> Figure:
    """Predicted vs true value (`what`, default age) with 95% intervals as error bars and the
    identity line."""
    label = np.asarray(label, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    fig = Figure(figsize=(5.0, 5.0))
    ax = fig.add_subplot()
    if lo is not None and hi is not None:
        yerr = np.vstack([pred - np.asarray(lo, float), np.asarray(hi, float) - pred])
        ax.errorbar(
            label,
            pred,
            yerr=np.clip(yerr, 0, None),
            fmt="none",
            ecolor="C0",
            alpha=0.3,
            lw=1,
            label="95% interval",
        )
    ax.scatter(label, pred, s=12, c="C0", zorder=3, label="case")
    span = [min(label.min(), pred.min()), max(label.max(), pred.max())]
    ax.plot(span, span, ls="--", c="grey", lw=1, label="identity")
    summary = summary or {}
    ax.set_title(
        f"MAE {_ci_text(summary.get('mae'))} y\nr {_ci_text(summary.get('pearson_r'))}",
        fontsize=9,
    )
    ax.set(xlabel=f"true {what}", ylabel=f"predicted {what}", aspect="equal")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _box_strip(ax, columns: list[np.ndarray], names: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)  # jitter only; fixed so figures reproduce
    ax.boxplot(columns, showfliers=False, widths=0.5)
    ax.set_xticks(range(1, len(names) + 1), names)
    for i, v in enumerate(columns, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, v.size), v, s=10, alpha=0.6, zorder=3)


def segmentation_distribution_figure(predictions) -> Figure:
    """Per-case Dice and NSD (0–1) and HD95 (mm) as box plots with every case shown."""
    fig = Figure(figsize=(7.0, 4.0))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    overlap = [c for c in ("dice", "nsd") if c in predictions]
    _box_strip(left, [predictions[c].to_numpy(float) for c in overlap], overlap)
    left.set(ylim=(-0.03, 1.03), ylabel="score per case", title="Overlap (higher is better)")
    if "hd95" in predictions:
        _box_strip(right, [predictions["hd95"].to_numpy(float)], ["hd95"], seed=1)
        right.set(ylabel="mm", title="HD95 (lower is better)")
    else:
        right.set_axis_off()
    return fig


def _slices(truth: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """k axial slices spread over those holding truth or prediction (middle ones if none)."""
    z = np.flatnonzero((truth | pred).any(axis=(0, 1)))
    if z.size == 0:
        z = np.arange(truth.shape[2] // 4, max(truth.shape[2] * 3 // 4, truth.shape[2] // 4 + 1))
    return np.unique(z[np.linspace(0, z.size - 1, k).round().astype(int)])


def montage_figure(cases: list[tuple], slices: int = 4) -> Figure:
    """Rows of axial slices (array axis 2 of RAS data, anterior up) with the reference contour
    solid green and the prediction dashed red, so both show where they coincide.

    One row per `(label, image, truth, pred, spacing)`; `image` is [X, Y, Z] or [C, X, Y, Z]
    (first channel shown); `spacing` (mm per axis, or None) sets the in-plane aspect ratio.
    """
    n = max(len(cases), 1)
    fig = Figure(figsize=(2.0 * slices, 2.0 * n + 0.3), layout="constrained")
    axes = fig.subplots(n, slices, squeeze=False)
    for row, (label, image, truth, pred, spacing) in zip(axes, cases):
        image = np.asarray(image, dtype=np.float32)
        image = image[0] if image.ndim == 4 else image
        truth, pred = np.asarray(truth).astype(bool), np.asarray(pred).astype(bool)
        if not image.shape == truth.shape == pred.shape:
            raise ValueError(
                f"{label}: image {image.shape}, reference {truth.shape} and prediction "
                f"{pred.shape} must share one grid"
            )
        aspect = 1.0 if spacing is None else float(spacing[1]) / float(spacing[0])
        vmin, vmax = np.percentile(image, [1, 99])
        for ax, z in zip(row, np.resize(_slices(truth, pred, slices), slices)):
            ax.imshow(
                image[:, :, z].T, cmap="gray", origin="lower", vmin=vmin, vmax=vmax, aspect=aspect
            )
            for mask, colour, style in (
                (truth, TRUTH_COLOUR, "solid"),
                (pred, PRED_COLOUR, "dashed"),
            ):
                if mask[:, :, z].any():
                    ax.contour(
                        mask[:, :, z].T.astype(float),
                        levels=[0.5],
                        colors=colour,
                        linewidths=1.2,
                        linestyles=style,
                    )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"z={z}", fontsize=7)
        row[0].set_ylabel(label, fontsize=8)
    fig.suptitle("green solid: reference, red dashed: prediction", fontsize=9)
    return fig


def lr_sweep_figure(
    curves: dict[str, dict[float, float | None]], chosen: dict[str, float]
) -> Figure:
    """Validation macro AUROC of each linear head against its learning rate (FOMO26's probe
    protocol keeps the best), one line per model, its kept head circled: shows whether the
    sweep's range brackets the optimum."""
    fig = Figure(figsize=(5.2, 3.8))
    ax = fig.add_subplot()
    for i, (name, curve) in enumerate(curves.items()):
        lrs = sorted(curve)
        vals = np.array([np.nan if curve[r] is None else curve[r] for r in lrs], float)
        ax.plot(lrs, vals, "o-", ms=3, c=f"C{i}", label=name)
        kept = curve.get(chosen.get(name, np.nan))
        if kept is not None:
            ax.scatter([chosen[name]], [kept], s=90, facecolors="none",
                       edgecolors=f"C{i}", zorder=3)  # fmt: skip
    ax.set_xscale("log")
    ax.axhline(0.5, ls="--", c="grey", lw=1)
    ax.set(xlabel="learning rate", ylabel="validation macro AUROC",
           title="Linear-probe sweep (circled: kept)")  # fmt: skip
    ax.legend(fontsize=8)
    return fig


def group_metric_figure(variables: dict[str, dict[str, float | None]], metric: str) -> Figure:
    """A metric per demographic group, one panel per grouping variable, with the variable's
    fairness score 1 - (max - min) in its title (FOMO26 task 7)."""
    fig = Figure(figsize=(2.2 + 2.4 * len(variables), 3.4))
    axes = np.atleast_1d(fig.subplots(1, max(len(variables), 1), sharey=True))
    for ax, (var, groups) in zip(axes, variables.items()):
        names = list(groups)
        vals = np.array([np.nan if groups[g] is None else groups[g] for g in names], float)
        ax.bar(range(len(names)), vals, color="C0")
        for i in np.flatnonzero(~np.isfinite(vals)):  # one class only in that group: undefined
            ax.text(i, 0.03, "undefined", ha="center", va="bottom", rotation=90, fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ok = vals[np.isfinite(vals)]
        score = f"{1 - (ok.max() - ok.min()):.3f}" if len(ok) >= 2 else "n/a"
        ax.set_title(f"{var}: score {score}", fontsize=10)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel(metric)
    fig.tight_layout()
    return fig
