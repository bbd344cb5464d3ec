"""Sliding-window inference: brainfoundry vs MONAI's `sliding_window_inference`, and `predict`.

Part 1 (the FOMO25-sized case): a ~10M-parameter residual U-Net (DNA ResidualEncoderUNet,
4 stages 32-256, random weights, eval mode, no_grad) over the real 1 mm MNI152 T1 (z-scored,
197x233x189), 96³ tiles, overlap 0.5, Gaussian weighting (sigma 0.125 x tile), 2 tiles per
batch; MONAI in the same run with the same network, tiles, overlap, batch and weighting.
Rows: ours with MONAI's tile grid (to compare outputs), ours with our default even grid, ours
skipping all-background tiles (`--brain-only`), MONAI. Agreement: max |Δ| of the foreground
probability and the Dice of the thresholded masks, against MONAI.

Part 2: `brainfoundry predict` seconds per case for each task's fine-tuned model (a bench
suite's cells, given with --suite-dir), one test case each, end to end (read, preprocess,
network, map back, write).

    .venv/bin/python -m benchmarks.bench_inference --out benchmarks/results/inference.md \
        --suite-dir runs/bench_quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine, table

PATCH = (96, 96, 96)
NET = {"n_stages": 4, "features_per_stage": [32, 64, 128, 256], "kernel_size": 3,
       "strides": [1, 2, 2, 2], "n_blocks_per_stage": [1, 2, 2, 2],
       "n_conv_per_stage_decoder": [1, 1, 1]}  # fmt: skip


def _volume() -> torch.Tensor:
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=1)
    x = np.asarray(img.dataobj, dtype=np.float32)
    fg = x > 0
    x = np.where(fg, (x - x[fg].mean()) / x[fg].std(), 0.0).astype(np.float32)
    return torch.from_numpy(x)[None]  # [1, D, H, W]


def _timed(fn):
    t = time.perf_counter()
    with torch.no_grad():
        out = fn()
    return time.perf_counter() - t, out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def part1(repeats: int) -> tuple[str, dict]:
    from monai.inferers import sliding_window_inference

    from brainfoundry.inference.sliding_window import sliding_window
    from brainfoundry.models.backbones import create_backbone

    torch.manual_seed(0)
    net = create_backbone("resenc", in_channels=1, out_channels=2, preset="custom", **NET).eval()
    n_params = sum(p.numel() for p in net.parameters()) / 1e6
    image = _volume()

    def probs(x):
        return torch.softmax(net(x), 1)

    runs = {
        "brainfoundry, MONAI's tile grid": lambda: sliding_window(
            probs, image, PATCH, overlap=0.5, batch_size=2, grid="step"),
        "brainfoundry, even grid (default)": lambda: sliding_window(
            probs, image, PATCH, overlap=0.5, batch_size=2),
        "brainfoundry, brain-only tiles": lambda: sliding_window(
            probs, image, PATCH, overlap=0.5, batch_size=2, grid="step", skip_empty=True),
        "MONAI sliding_window_inference": lambda: sliding_window_inference(
            image[None], PATCH, 2, probs, overlap=0.5, mode="gaussian", sigma_scale=0.125)[0],
    }  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in runs}
    outs = {}
    for _ in range(repeats):  # interleaved, so load changes hit every row alike
        for name, fn in runs.items():
            t, out = _timed(fn)
            times[name].append(t)
            outs[name] = out[1].numpy()
        print(f"repeat done: { {k: round(v[-1], 1) for k, v in times.items()} }", file=sys.stderr)
    ref = outs["MONAI sliding_window_inference"]
    rows = []
    for name in runs:
        o = outs[name]
        diff = float(np.abs(o - ref).max())
        rows.append([name, f"{np.median(times[name]):.1f}", f"{min(times[name]):.1f}",
                     f"{diff:.2e}", f"{_dice(o > 0.5, ref > 0.5):.5f}"])  # fmt: skip
    text = table(["method", "median s", "best s", "max abs diff vs MONAI",
                  "Dice of mask vs MONAI"], rows)  # fmt: skip
    info = {"params_M": n_params, "shape": tuple(image.shape[1:])}
    return text, info


def part2(suite_dir: Path) -> str:
    from brainfoundry.inference.predict import Predictor, write_outputs

    rows = []
    for task in ("infarct", "meningioma", "brainage"):
        cells = sorted((suite_dir / "cells" / task).glob("*/mae/shots_16/seed_0"))
        if not cells:
            continue
        cell = cells[0]
        test = suite_dir / "data" / task / "test" / "preprocessed"
        case = sorted(test.iterdir())[0] / "ses_1"
        inputs = {f.name[: -len(".nii.gz")]: f for f in sorted(case.glob("*.nii.gz"))}
        t0 = time.perf_counter()
        pred = Predictor(cell)
        t_load = time.perf_counter() - t0
        times = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(3):
                t = time.perf_counter()
                write_outputs(pred.predict(inputs), Path(tmp) / task, qc=True)
                times.append(time.perf_counter() - t)
        shape = next(iter(inputs.values()))
        import nibabel as nib

        rows.append([task, pred.spec.type, str(nib.load(shape).shape),
                     f"{pred.card.spacing[0]:g} mm", f"{t_load:.2f}",
                     f"{np.median(times):.2f}"])  # fmt: skip
    return table(["task", "type", "input shape", "model spacing", "load model s",
                  "predict + write s (median of 3)"], rows)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--suite-dir", type=Path, default=None, help="a finished bench suite folder")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    t1, info = part1(args.repeats)
    t2 = part2(args.suite_dir) if args.suite_dir else "(not run: give --suite-dir)"
    text = (
        "# Inference: sliding window vs MONAI, and predict per case\n\n"
        f"Machine: {machine()}; load average at start {load0:.2f}. Reproduce: "
        "`python -m benchmarks.bench_inference --out benchmarks/results/inference.md "
        "--suite-dir DIR` (DIR: a finished `brainfoundry bench` suite).\n\n"
        f"## 1 mm MNI152 {info['shape']}, {info['params_M']:.1f}M-parameter residual U-Net, "
        f"96³ tiles, overlap 0.5, Gaussian, 2 tiles per batch ({args.repeats} interleaved "
        "repeats)\n\n" + t1 + "\n\n## `predict` end to end, one test case per task (4 mm "
        "models of the quick suite, MAE-pretrained, 16 shots)\n\n" + t2 + "\n"
    )
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
