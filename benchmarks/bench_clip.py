"""Clip benchmark: why preprocessing no longer clips intensities to the (0.5, 99.5) percentiles
before the foreground z-score (PreprocessConfig.clip_percentiles = None).

Small bright DWI infarcts are part of every scan's top 0.5 %: clipping caps them at the same
value as the bright tail of a healthy scan, so a case-level probe cannot tell them apart. This
reproduces the measurement behind the change, end to end with the project's own code:

1. `synth task infarct` data at 4 mm (source "finetune" split, clinically shifted test split);
2. `preprocess_group` at 4 mm, once clipped at (0.5, 99.5) and once unclipped;
3. case features from both: hand-crafted DWI quantiles (q99, q99.5, q99.9, max of the z-scored
   DWI in the foreground), a fixed random 2-layer conv net and a random-init resenc:mini, both
   encoding each sequence separately and pooled mean + max per stage (as the pooled heads do);
4. the closed-form ridge probe (`tasks.probe.ridge_loo`) on 16 and 32 source cases (60 %
   positive, 20 draws), AUROC on the shifted test split; plus the share of infarct voxels at
   or above the DWI clip ceiling.

    python -m benchmarks.bench_clip --out benchmarks/results/clip.md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine, table

NORMS = {"clipped (0.5, 99.5)": (0.5, 99.5), "unclipped (new default)": None}
RESULT = Path("benchmarks/results/clip.md")
ORDER = ("dwi_b1000", "adc", "flair")  # then t2s or swi, whichever the case has


def random_conv(seed: int = 0):
    """Two random 3D conv layers (8, 16 channels; instance norm, ReLU; the second strided), run
    on each sequence separately, mean + max pooled per layer: the investigation's cheap probe."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(8, 1, 3, 3, 3, generator=g) * (2 / 27) ** 0.5
    w2 = torch.randn(16, 8, 3, 3, 3, generator=g) * (2 / (27 * 8)) ** 0.5
    f = torch.nn.functional

    def features(x: torch.Tensor) -> torch.Tensor:  # x: [C, *S], one row per sequence
        a = f.instance_norm(f.conv3d(x[:, None], w1, padding=1)).relu()
        b = f.instance_norm(f.conv3d(a, w2, padding=1, stride=2)).relu()
        return torch.cat([t for s in (a, b) for t in (s.mean((2, 3, 4)), s.amax((2, 3, 4)))], 1)

    return lambda x: features(x).flatten()


def make_data(n: int, n_test: int, seed: int, workers: int, out: Path) -> None:
    from brainfoundry.synth import SynthConfig, generate
    from brainfoundry.synth.writers import shutdown_pool

    cfg = SynthConfig(
        kind="infarct", n=n, n_test=n_test, resolution=4.0, seed=seed, workers=workers, qc=False
    )
    generate(cfg, out)
    shutdown_pool()


def case_features(img_dir: Path, lab_dir: Path, encoder, conv) -> dict:
    """Per normalisation: hand features, encoder features, lesion-voxel clip statistics."""
    from brainfoundry.data.preprocess import PreprocessConfig, preprocess_group
    from brainfoundry.io.volume import read_volume

    stems = [*ORDER, "t2s" if (img_dir / "t2s.nii.gz").exists() else "swi"]
    vols = [read_volume(img_dir / f"{s}.nii.gz") for s in stems]
    seg = read_volume(lab_dir / "lesion.nii.gz", label=True)
    out = {}
    for name, clip in NORMS.items():
        cfg = PreprocessConfig(spacing=(4.0, 4.0, 4.0), clip_percentiles=clip, dtype="float32")
        p = preprocess_group(vols, cfg, seg)
        dwi, les = p.images[0], p.label > 0
        fg = dwi[dwi != 0]  # zscore sets the background to exactly 0
        hand = [*np.percentile(fg, (99, 99.5, 99.9)), fg.max()]
        x = torch.from_numpy(np.stack(p.images))
        with torch.no_grad():
            rand = conv(x)
        m = encoder.backbone.min_input_multiple  # zero-pad (= background) up to the stride
        x = torch.nn.functional.pad(x, [v for s in x.shape[:0:-1] for v in (0, -s % m)])
        with torch.no_grad():
            enc = encoder.features(x[None], None)[0]
        ceiling = np.percentile(fg, 99.5)  # = the cap itself when clipped
        out[name] = {
            "hand": np.asarray(hand),
            "conv": rand.double().numpy(),
            "enc": enc.double().numpy(),
            "les_vox": int(les.sum()),
            "at_ceiling": int((dwi[les] >= ceiling - 1e-4).sum()),
            "at_max": int((dwi[les] >= fg.max() - 1e-4).sum()),
        }
    return out


def split_features(root: Path, *nets) -> tuple[list[dict], np.ndarray]:
    cases = json.loads((root / "dataset.json").read_text())["cases"]
    rows = [
        case_features(
            root / "preprocessed" / c["subject"] / c["session"],
            root / "labels" / c["subject"] / c["session"],
            *nets,
        )
        for c in cases
    ]
    return rows, np.array([c["label"] for c in cases])


def probe_auroc(x, y, xt, yt, draws: list[np.ndarray]) -> tuple[float, float]:
    from brainfoundry.evaluation.metrics import auroc
    from brainfoundry.tasks.probe import ridge_loo

    scores = []
    for tr in draws:
        fit = ridge_loo(x[tr], 2.0 * y[tr] - 1)
        scores.append(float(auroc(yt, xt @ fit["w"] + fit["b"])))
    return float(np.mean(scores)), float(np.std(scores))


def stratified_draws(y: np.ndarray, n: int, reps: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    k = int(round(0.6 * n))
    return [
        np.concatenate([rng.choice(pos, k, replace=False), rng.choice(neg, n - k, replace=False)])
        for _ in range(reps)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    ap.add_argument("--n", type=int, default=120, help="source (finetune) cases")
    ap.add_argument("--n-test", type=int, default=100, help="shifted test cases")
    ap.add_argument("--shots", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="synth worker processes")
    args = ap.parse_args()
    n_pos, shot = round(0.6 * args.n), max(args.shots)  # both 60 % positive
    if round(0.6 * shot) > n_pos or shot - round(0.6 * shot) > args.n - n_pos:
        ap.error(f"--shots {shot} needs more source cases than --n {args.n}")
    torch.set_num_threads(1)
    from brainfoundry.models.backbones import create_backbone
    from brainfoundry.models.channelwise import Channelwise
    from brainfoundry.tasks.heads import ClassificationModel

    load0, t0 = os.getloadavg()[0], time.perf_counter()
    torch.manual_seed(0)
    shared = create_backbone("resenc", 1, 1, "mini")
    encoder = ClassificationModel(Channelwise(shared, len(ORDER) + 1)).eval()
    conv = random_conv()
    with tempfile.TemporaryDirectory() as d:
        make_data(args.n, args.n_test, args.seed, args.workers, Path(d))
        t_gen = time.perf_counter() - t0
        (src, y), (test, yt) = (
            split_features(Path(d) / s, encoder, conv) for s in ("finetune", "test")
        )
    t_feat = time.perf_counter() - t0 - t_gen

    draws = {n: stratified_draws(y, n, args.draws, args.seed) for n in args.shots}
    rows = []
    for kind, label in (
        ("hand", "hand DWI quantiles"),
        ("conv", "random 2-layer conv"),
        ("enc", "random resenc:mini"),
    ):
        for name in NORMS:
            x = np.stack([r[name][kind] for r in src])
            xt = np.stack([r[name][kind] for r in test])
            row = [label, name, x.shape[1]]
            for n in args.shots:
                m, s = probe_auroc(x, y, xt, yt, draws[n])
                row.append(f"{m:.2f} ± {s:.2f}")
            rows.append(row)
    les_rows = []
    for split, recs in (("source", src), ("shifted test", test)):
        for name in NORMS:
            pos = [r[name] for r in recs if r[name]["les_vox"]]
            frac = {
                k: np.mean([r[k] / r["les_vox"] for r in pos]) for k in ("at_ceiling", "at_max")
            }
            vox = np.median([r["les_vox"] for r in pos])
            les_rows.append(
                [split, name, len(pos), f"{vox:.0f}", *(f"{v:.0%}" for v in frac.values())]
            )
    load1 = os.getloadavg()[0]
    argv = sys.argv[1:]  # as given, but for where the table goes (run_all passes a full path)
    if "--out" in argv:
        del argv[argv.index("--out") : argv.index("--out") + 2]
    cmd = shlex.join(["python", "-m", "benchmarks.bench_clip", *argv, "--out", str(RESULT)])
    text = "\n".join(
        [
            "# clip: percentile clipping before the z-score hides small infarcts",
            "",
            f"Machine: {machine()}. Load average {load0:.1f} at start, {load1:.1f} at end. "
            f"Generating the data took {t_gen:.0f} s, preprocessing and features {t_feat:.0f} s.",
            f"Reproduce: `{cmd}`",
            "",
            f"Synthetic infarct task at 4 mm (seed {args.seed}): {len(y)} source cases "
            f"({int(y.sum())} positive), {len(yt)} clinically shifted test cases "
            f"({int(yt.sum())} positive). Each case preprocessed by `preprocess_group` "
            "(4 mm, foreground z-score) with and without clipping at the (0.5, 99.5) percentiles.",
            "",
            f"## Few-shot ridge probe, AUROC on the shifted test split (mean ± sd of {args.draws} "
            "draws)",
            "",
            table(["features", "normalisation", "dim", *[f"{n} cases" for n in args.shots]], rows),
            "",
            "Training sets are drawn from the source split, 60 % positive; the same draws for "
            "every row. Hand features: q99, q99.5, q99.9 and max of the z-scored DWI in its "
            "foreground. Random 2-layer conv: 8 and 16 random 3x3x3 filters (the second layer "
            "strided), instance norm and ReLU, each sequence (DWI, ADC, FLAIR, T2*/SWI) on its "
            "own, mean + max pooled per layer. Random resenc:mini: the project's backbone, "
            "fixed-seed random init, each sequence encoded on its own (`Channelwise`), mean + "
            "max pooled per stage (`ClassificationModel.features`). Probe: "
            "`tasks.probe.ridge_loo` (penalty by leave-one-out), AUROC by "
            "`evaluation.metrics.auroc`.",
            "",
            "## Infarct voxels against the DWI clip ceiling (99.5th percentile of the foreground)",
            "",
            table(
                [
                    "split",
                    "normalisation",
                    "infarct cases",
                    "median voxels",
                    "≥ ceiling",
                    "= image max",
                ],
                les_rows,
            ),
            "",
            "Share of each case's infarct voxels, averaged over the cases with an infarct in "
            "view. `≥ ceiling`: voxels the clip would cap (the same voxels either way). "
            "`= image max`: voxels tied at the scan's brightest value, i.e. indistinguishable "
            "from the capped bright tail of any healthy scan.",
        ]
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
