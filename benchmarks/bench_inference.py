"""Inference speed: our sliding window vs MONAI's, its fast modes, and `predict` per case.

Part 1, the FOMO25-sized case: a 9.7M-parameter residual U-Net (DNA ResidualEncoderUNet, 4
stages 32-256, random weights, eval mode, no_grad) over the real 1 mm MNI152 T1 from nilearn
(z-scored on the brain, background 0), 96³ tiles, overlap 0.5, Gaussian weighting (sigma 0.125
x tile), 2 tiles per batch; MONAI's `sliding_window_inference` in the same run with the same
network, tiles, overlap, batch and weighting, rows interleaved. Fast modes: `--brain-only`
(tiles whose input is all background are not run) and the brain's bounding box (what `predict`
runs after the preprocessing's foreground crop). Network FLOPs are counted on the meta device.

Part 2: `predict` end to end (read, preprocess, network, map back, write + QC) for each task on
one generated test case on a 1 mm grid, with models fine-tuned here by the `cpu-small` recipe (3 mm,
resenc small) for a few steps only: speed does not depend on the weights. Also the FOMO25
entry point (`container/predict.py`) as a fresh process per case, as the challenge calls it.

Part 4 (issue 12): `--precision bf16` against fp32 with the trained segmentation model (seconds
per case, mask Dice, max |dP|, the issue's thresholds as met / not met; also bf16 with every
layer in bf16, as before, and with every full-resolution layer in fp32), and the part-1
network's forward per tile: eager fp32, channels_last_3d, bf16 autocast (all of it, or with the
output or every full-resolution layer in fp32), inductor + freezing.

    python -m benchmarks.bench_inference --out benchmarks/results/inference.md
    python -m benchmarks.bench_inference --precision-only [--quick]   # part 4 alone
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine, table
from brainfoundry.inference.precision import fp32_layers

PATCH = (96, 96, 96)
NET = {"n_stages": 4, "features_per_stage": [32, 64, 128, 256], "kernel_size": 3,
       "strides": [1, 2, 2, 2], "n_blocks_per_stage": [1, 2, 2, 2],
       "n_conv_per_stage_decoder": [1, 1, 1]}  # fmt: skip
ASSUMED_TFLOPS = 50.0  # sustained fp32/TF32 3-D conv inference on one H100 (an assumption)
ENTRY = Path(__file__).parents[1] / "container" / "predict.py"


def _volume() -> torch.Tensor:
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=1)
    x = np.asarray(img.dataobj, dtype=np.float32)
    fg = x > 0
    x = np.where(fg, (x - x[fg].mean()) / x[fg].std(), 0.0).astype(np.float32)
    return torch.from_numpy(x)[None]  # [1, D, H, W]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def _n_tiles(image: torch.Tensor, grid: str, skip_empty: bool = False) -> int:
    from itertools import product

    from brainfoundry.inference.sliding_window import tile_starts

    size = image.shape[1:]
    starts = product(*(tile_starts(s, p, 0.5, grid) for s, p in zip(size, PATCH)))
    if not skip_empty:
        return len(list(starts))
    return sum(
        bool(image[:, a : a + PATCH[0], b : b + PATCH[1], c : c + PATCH[2]].any())
        for a, b, c in starts
    )


def tile_tflop(family: str, size: str, kwargs: dict | None = None) -> float:
    """Forward TFLOP of one 96³ single-channel tile, counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from brainfoundry.models.backbones import create_backbone

    with torch.device("meta"):
        net = create_backbone(family, in_channels=1, out_channels=2, size=size,
                              **(kwargs or {})).eval()  # fmt: skip
        x = torch.randn(1, 1, *PATCH)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x)
    return fc.get_total_flops() / 1e12


def part1(repeats: int) -> tuple[str, dict]:
    from monai.data.utils import compute_importance_map
    from monai.inferers import sliding_window_inference

    from brainfoundry.data.preprocess import bbox
    from brainfoundry.inference.sliding_window import sliding_window, whole_volume
    from brainfoundry.models.backbones import create_backbone

    torch.manual_seed(0)
    net = create_backbone("resenc", in_channels=1, out_channels=2, size="custom", **NET).eval()
    n_params = sum(p.numel() for p in net.parameters()) / 1e6
    image = _volume()
    brain = (image[0] != 0).numpy()
    box = bbox(brain, 2)  # the preprocessing's foreground crop (crop_margin 2)
    crop = tuple(slice(lo, hi) for lo, hi in box)
    monai_w = compute_importance_map(PATCH, mode="gaussian", sigma_scale=0.125)

    def probs(x):
        return torch.softmax(net(x), 1)

    def in_box(whole: bool = False):
        out = torch.zeros((2, *image.shape[1:]))
        out[0] = 1.0
        box_img = image[(slice(None), *crop)]
        out[(slice(None), *crop)] = (
            whole_volume(probs, box_img, 32) if whole else sliding_window(probs, box_img, PATCH)
        )
        return out

    runs = {
        "MONAI sliding_window_inference": lambda: sliding_window_inference(
            image[None], PATCH, 2, probs, overlap=0.5, mode="gaussian", sigma_scale=0.125)[0],
        "ours, MONAI's grid and weight map": lambda: sliding_window(
            probs, image, PATCH, grid="step", weights=monai_w),
        "ours, default (full mode)": lambda: sliding_window(probs, image, PATCH),
        "ours, --brain-only tiles": lambda: sliding_window(probs, image, PATCH, skip_empty=True),
        "ours, brain bounding box (as predict)": in_box,
        "ours, brain bounding box, --whole": lambda: in_box(whole=True),
    }  # fmt: skip
    tiles = dict(zip(runs, [_n_tiles(image, "step"), _n_tiles(image, "step"),
                            _n_tiles(image, "even"), _n_tiles(image, "even", True),
                            _n_tiles(image[(slice(None), *crop)], "even"), 1]))  # fmt: skip
    if tiles["ours, --brain-only tiles"] == tiles["ours, default (full mode)"]:
        del runs["ours, --brain-only tiles"]  # nothing to skip: it would time full mode again
    times: dict[str, list[float]] = {k: [] for k in runs}
    outs: dict[str, np.ndarray] = {}
    for _ in range(repeats):  # interleaved, so load changes hit every row alike
        for name, fn in runs.items():
            t = time.perf_counter()
            with torch.inference_mode():
                out = fn()
            times[name].append(time.perf_counter() - t)
            outs[name] = out[1].numpy()
        print(f"repeat: { {k: round(v[-1], 1) for k, v in times.items()} }", file=sys.stderr)
    ref, full = outs["MONAI sliding_window_inference"], outs["ours, default (full mode)"]
    rows = []
    for name, o in outs.items():
        rows.append([
            name, tiles[name], f"{np.median(times[name]):.1f}", f"{min(times[name]):.1f}",
            f"{np.abs(o - ref).max():.1e}", f"{np.abs(o - full).max():.1e}",
            f"{np.abs(o - full)[brain].max():.1e}", f"{_dice(o > 0.5, full > 0.5):.4f}",
        ])  # fmt: skip
    text = table(["method", "tiles", "median s", "best s", "max abs diff vs MONAI",
                  "max abs diff vs full mode", "... inside the brain",
                  "Dice (P>0.5) vs full mode"], rows)  # fmt: skip
    tf = tile_tflop("resenc", "custom", NET)
    info = {"params_M": n_params, "shape": tuple(image.shape[1:]), "tile_tflop": tf,
            "box": tuple(s.stop - s.start for s in crop), "tiles": tiles,
            "brain_only_skips": tiles["ours, default (full mode)"]
            - tiles["ours, --brain-only tiles"],
            "ours_s": float(np.median(times["ours, default (full mode)"])),
            "monai_s": float(np.median(times["MONAI sliding_window_inference"])),
            "box_s": float(np.median(times["ours, brain bounding box (as predict)"])),
            "whole_s": float(np.median(times["ours, brain bounding box, --whole"])),
            "monai_grid_diff": float(np.abs(outs["ours, MONAI's grid and weight map"] - ref).max()),
            "brain_only_diff": (float(np.abs(outs["ours, --brain-only tiles"] - full)[brain].max())
                                if "ours, --brain-only tiles" in outs else None)}  # fmt: skip
    return text, info


def gpu_budget(info: dict) -> str:
    """Seconds per case on one H100 from counted FLOPs at an assumed rate (no GPU here)."""
    rows = []
    t = info["tiles"]
    cpu_rate = info["tile_tflop"] * t["ours, default (full mode)"] / info["ours_s"]  # TFLOP/s
    base = tile_tflop("resenc", "base")
    box15 = [int(np.ceil(s / 1.5)) for s in info["box"]]  # the gpu-base recipe's 1.5 mm grid
    n15 = _n_tiles(torch.zeros(1, *box15), "even")
    for name, tf, n in (
        (
            f"9.7M resenc, 1 mm box {info['box']}",
            info["tile_tflop"],
            t["ours, brain bounding box (as predict)"],
        ),
        (f"resenc base (gpu-base), 1.5 mm box {tuple(box15)}", base, n15),
    ):
        for mirror in (1, 8):
            total = tf * n * mirror
            rows.append([name, n, "8 flips" if mirror > 1 else "no", f"{total:.2f}",
                         f"{total / cpu_rate:.0f}", f"{total / ASSUMED_TFLOPS:.2f}"])  # fmt: skip
    return table(["network, case", "tiles", "mirroring", "forward TFLOP/case",
                  "est. s on this CPU", f"est. s on H100 at {ASSUMED_TFLOPS:g} TFLOP/s"],
                 rows)  # fmt: skip


def _notes1(info: dict) -> str:
    t = info["tiles"]
    skip = info["brain_only_skips"]
    gflops = info["tile_tflop"] * t["ours, default (full mode)"] * 1e3 / info["ours_s"]
    lines = [
        f"- The network runs at {gflops:.0f} GFLOP/s on this CPU ({info['tile_tflop'] * 1e3:.0f} "
        f"GFLOP per tile, 32 features at full resolution), so MONAI took "
        f"{info['monai_s']:.0f} s here, not the 76 s the issue quoted for a ~10M U-Net: "
        "that figure needs a lighter network (fewer FLOPs per tile) or a faster machine; "
        "the ratio between the rows is the comparison.",
        f"- Ours vs MONAI: {info['ours_s'] / info['monai_s']:.2f}x MONAI's time (default "
        "mode). With MONAI's tile grid and MONAI's importance map our outputs differ from "
        f"MONAI's by at most {info['monai_grid_diff']:.1e} (measured)"
        + (", i.e. equal up to float summation order." if info["monai_grid_diff"] < 1e-5
           else ": NOT equal; check the grid and weight map.")
        + " Our default differs by design: tiles spread evenly "
        "(nnU-Net) instead of stepping and moving the last one back, and the Gaussian centred "
        "on the tile (MONAI's sits half a voxel off on even tiles). With random weights and "
        "per-tile instance normalisation, any change of tile placement moves the output a "
        "lot; the trained-model table below measures what it costs in practice.",
        f"- `--brain-only` skips {skip} of {t['ours, default (full mode)']} tiles here"
        + (" (every 96³ tile of this volume touches the brain, so its row is omitted and its "
           "agreement with full mode inside the brain is not measured in this run)."
           if info["brain_only_diff"] is None
           else f"; inside the brain it differs from full mode by at most "
                f"{info['brain_only_diff']:.1e} (measured)."),
        f"- `predict` always crops to the brain's bounding box (+2 voxels) in preprocessing: "
        f"{t['ours, brain bounding box (as predict)']} tiles instead of "
        f"{t['ours, default (full mode)']}, {info['ours_s'] / info['box_s']:.1f}x faster "
        "than the full volume. This is the fast mode that matters at 1 mm; its differences "
        "to full mode above are tile placement on an untrained network.",
        f"- `--whole` runs the network once over the padded box: "
        f"{info['box_s'] / info['whole_s']:.1f}x faster than the box's tiles (each voxel "
        "computed once instead of in up to 8 overlapping tiles); what it costs in accuracy with "
        "a trained network is in the last table.",
    ]  # fmt: skip
    return "\n".join(lines)


def _upsampled(src: Path, dst: Path) -> Path:
    """A 2 mm scan trilinearly resampled onto the 1 mm grid (same field of view): a 1 mm-sized
    input, which is all that speed depends on."""
    import nibabel as nib
    from scipy.ndimage import zoom

    img = nib.load(src)
    data = zoom(np.asarray(img.dataobj, dtype=np.float32), 2.0, order=1)
    aff = img.affine.copy()
    aff[:3, :3] /= 2.0
    aff[:3, 3] -= img.affine[:3, :3] @ np.full(3, 0.25)  # keep the field of view
    dst.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, aff), dst)
    return dst


def _case(folder: Path, dst: Path | None = None) -> dict[str, Path]:
    """{modality: file} of one session folder, optionally upsampled to 1 mm under dst."""
    files = sorted(folder.glob("*.nii.gz"))
    if dst is None:
        return {f.name[: -len(".nii.gz")]: f for f in files}
    return {f.name[: -len(".nii.gz")]: _upsampled(f, dst / f.name) for f in files}


def _models(
    root: Path, seg_steps: int, tasks: tuple[str, ...] = ("infarct", "brainage", "meningioma")
) -> dict[str, Path]:
    """Per task: a model fine-tuned with the cpu-small recipe on generated 2 mm data."""
    from brainfoundry.cli import main as cli
    from brainfoundry.tasks.finetune import FinetuneConfig, finetune

    threads = torch.get_num_threads()
    for task, extra, n_test in (
        ("infarct", ["train.steps=0", "shots=4"], 1),  # case-level: the closed-form probe
        ("brainage", ["train.steps=0", "shots=4"], 1),
        # at 2 mm the 48³ tiles relate to the brain as 96³ tiles do at 1 mm (~3 per axis)
        ("meningioma", [f"train.steps={seg_steps}", f"train.checkpoint_every={seg_steps}",
                        "shots=6", "val_cases=2", "data.spacing=[2,2,2]"], 6),
    ):  # fmt: skip
        if task not in tasks:
            continue
        data = root / "data" / task
        # 2 mm (upsampled for part 2): `synth --resolution 1` cannot always place its DWI
        # distractor ("no candidate voxel")
        args = ["synth", "task", task, "-o", str(data), "--n", "8", "--n-test", str(n_test)]
        assert cli([*args, "--resolution", "2", "--no-qc"]) == 0
        cfg = FinetuneConfig.load("cpu-small", None, [f"task={task}", *extra])
        finetune(cfg, data / "finetune", root / "models" / task, log=lambda _: None)
    torch.set_num_threads(threads)  # `prepare` (inside finetune) leaves the process at 1
    return {t: root / "models" / t for t in tasks}


def part2(root: Path, models: dict[str, Path], repeats: int) -> str:
    """`predict` end to end per task on one test case upsampled to 1 mm, in process and
    through the container entry point (a fresh process per case)."""
    import nibabel as nib

    from brainfoundry.inference.predict import Predictor, write_outputs

    rows = []
    for task, model in models.items():
        first = sorted((root / "data" / task / "test" / "preprocessed").iterdir())[0]
        inputs = _case(first / "ses_1", root / "case_1mm" / task)
        t = time.perf_counter()
        pred = Predictor(model, device="cpu")
        t_load = time.perf_counter() - t
        times, entry = [], []
        for i in range(repeats):
            t = time.perf_counter()
            write_outputs(pred.predict(inputs), root / "out" / f"{task}{i}", qc=True)
            times.append(time.perf_counter() - t)
            flags = [a for m, p in inputs.items() for a in (f"--{m}", str(p))]
            ext = ".nii.gz" if pred.spec.type == "segmentation" else ".txt"
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, str(ENTRY), *flags, "--model", str(model),
                 "--output", str(root / "entry" / f"{task}{i}{ext}")], check=True,
            )  # fmt: skip
            entry.append(time.perf_counter() - t)
        img = nib.load(next(iter(inputs.values())))
        zooms = "x".join(f"{z:g}" for z in img.header.get_zooms()[:3])
        rows.append([task, pred.spec.type, f"{img.shape} at {zooms} mm",
                     f"{pred.card.spacing[0]:g} mm", f"{t_load:.2f}",
                     f"{np.median(times):.2f}", f"{np.median(entry):.2f}"])  # fmt: skip
        print(rows[-1], file=sys.stderr)
    text = table(["task", "type", "input", "model spacing", "load model s",
                  "predict + write + QC s", "entry point s (new process)"], rows)  # fmt: skip
    return text, max(float(r[-1]) for r in rows)


MODES = {
    "default (overlap 0.5)": {},
    "--brain-only": {"skip_empty": True},
    "--overlap 0.25": {"overlap": 0.25},
    "--whole": {"whole": True},
    "--mirror (TTA, 8x)": {"mirror": True},
}


def part3(root: Path, model: Path) -> str:
    """Speed and accuracy of the sliding window's modes with a trained segmentation model on
    the generated meningioma test cases: agreement with the default mode and Dice to truth."""
    from brainfoundry.inference.predict import Predictor
    from brainfoundry.io.volume import read_volume

    pred = Predictor(model, device="cpu")
    test = root / "data" / "meningioma" / "test"
    cases = sorted((test / "preprocessed").iterdir())
    res: dict[str, dict[str, list]] = {m: {"s": [], "agree": [], "dp": [], "dice": [], "vox": []}
                                       for m in MODES}  # fmt: skip
    for case in cases:
        inputs = _case(case / "ses_1")
        truth = read_volume(test / "labels" / case.name / "ses_1" / "seg.nii.gz", label=True)
        truth_mask = np.rint(truth.data) > 0
        ref = None
        for mode, kw in MODES.items():
            t = time.perf_counter()
            out = pred.predict(inputs, **kw)
            r = res[mode]
            r["s"].append(time.perf_counter() - t)
            mask, prob = out["mask"] > 0, out["prob_preprocessed"]
            ref = ref or (mask, prob)
            r["agree"].append(_dice(mask, ref[0]))
            r["dp"].append(float(np.abs(prob - ref[1]).max()))
            r["dice"].append(_dice(mask, truth_mask))
            r["vox"].append(int(mask.sum()))
    rows = [[m, f"{np.median(r['s']):.2f}", f"{np.mean(r['agree']):.4f}",
             f"{max(r['dp']):.1e}", f"{np.mean(r['dice']):.3f}", f"{np.mean(r['vox']):.0f}"]
            for m, r in res.items()]  # fmt: skip
    return table(["mode", "s/case (median)", "Dice vs default mask (mean)",
                  "max abs diff of P vs default", "Dice vs truth (mean)",
                  "lesion voxels (mean)"], rows)  # fmt: skip


DICE_MIN, DP_MAX = 0.99, 0.01  # issue 12's agreement thresholds for bf16 against fp32


MIXED = "bf16 autocast, output layers fp32 (predict's bf16)"
FULL_RES = "bf16 autocast, every full-resolution layer fp32"


def _tile_variants(patch: tuple[int, ...]) -> tuple[dict, torch.Tensor, dict]:
    """The part-1 network six ways (eager fp32, channels_last_3d, bf16 autocast with no, the
    output or every full-resolution layer in fp32, inductor with freezing), two MNI tiles from
    the volume's centre, and the compile time."""
    import copy

    from brainfoundry.models.backbones import create_backbone

    torch.manual_seed(0)
    net = create_backbone("resenc", in_channels=1, out_channels=2, size="custom", **NET).eval()
    image = _volume()
    c = [s // 2 for s in image.shape[1:]]
    at = [
        (c[0] - patch[0] // 2, c[1] - patch[1], c[2] - patch[2] // 2),
        (c[0] - patch[0] // 2, c[1], c[2] - patch[2] // 2),
    ]  # two neighbours, both in brain
    x = torch.stack([image[:, a : a + patch[0], b : b + patch[1], d : d + patch[2]]
                     for a, b, d in at])  # fmt: skip
    cl = copy.deepcopy(net).to(memory_format=torch.channels_last_3d)
    xcl = x.contiguous(memory_format=torch.channels_last_3d)

    def bf16(t: torch.Tensor, keep: list | tuple = ()) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16), fp32_layers(keep, "cpu"):
            return net(t).float()

    t0 = time.perf_counter()
    with torch._inductor.config.patch(freezing=True), torch.no_grad():
        compiled = torch.compile(copy.deepcopy(net))
        compiled(x)  # the compilation happens on the first call
    compile_s = time.perf_counter() - t0
    runs = {"eager fp32": lambda: net(x), "eager fp32, channels_last_3d": lambda: cl(xcl),
            "bf16 autocast": lambda: bf16(x),
            MIXED: lambda: bf16(x, net.output_layers()),
            FULL_RES: lambda: bf16(x, full_resolution(net)),
            "inductor + freezing, fp32": lambda: compiled(x)}  # fmt: skip
    return runs, x, {"compile_s": compile_s}


def tile_precision(repeats: int, patch: tuple[int, ...] = PATCH) -> tuple[str, dict]:
    """Per-tile forward seconds of the part-1 network: eager fp32, channels-last, bf16 and
    compiled, rows interleaved; each row's largest logit and probability change vs eager."""
    runs, x, info = _tile_variants(patch)
    times: dict[str, list[float]] = {k: [] for k in runs}
    outs: dict[str, torch.Tensor] = {}
    with torch.no_grad():  # one untimed call each: the compiled one had its first in compiling
        for name, fn in runs.items():
            if "inductor" not in name:
                fn()
    for _ in range(repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            with torch.no_grad():
                outs[name] = fn().float().contiguous()
            times[name].append(time.perf_counter() - t)
        print(f"tiles: { {k: round(v[-1], 2) for k, v in times.items()} }", file=sys.stderr)
    ref = outs["eager fp32"]
    per_tile = {k: float(np.median(v)) / x.shape[0] for k, v in times.items()}
    rows, base = [], per_tile["eager fp32"]
    for name, o in outs.items():
        dp = (torch.softmax(o, 1) - torch.softmax(ref, 1)).abs().max()
        rows.append([name, f"{per_tile[name]:.2f}", f"{base / per_tile[name]:.2f}",
                     f"{(o - ref).abs().max():.1e}", f"{dp:.1e}"])  # fmt: skip
    text = table(["forward", "s per tile (median)", "speed-up vs eager fp32",
                  "max abs logit diff", "max abs diff of P"], rows)  # fmt: skip
    return text, {**info, "per_tile": per_tile, "batch": int(x.shape[0]), "patch": patch}


def _tile_notes(info: dict) -> str:
    """Prose from the per-tile table: which forward could reach half MONAI's time."""
    pt = info["per_tile"]
    base = pt["eager fp32"]
    fp32_best = max(("eager fp32, channels_last_3d", "inductor + freezing, fp32"),
                    key=lambda k: base / pt[k])  # fmt: skip
    speed = {k: base / v for k, v in pt.items()}
    reach = "reaches" if speed[fp32_best] >= 2 else "does not reach"
    reach16 = "would reach" if speed["bf16 autocast"] >= 2 else "does not reach either"
    return "\n".join([
        f"- Tiles of {info['patch'][0]}³, {info['batch']} per call, under no_grad; our "
        "sliding window spends nearly all its time in these calls, so the speed-up per tile is "
        "the speed-up of the window (our default already equals MONAI's time, part 1).",
        f"- The best fp32 forward, {fp32_best}, is {speed[fp32_best]:.2f}x eager: it "
        f"{reach} the issue's 0.5x MONAI's time at identical fp32 outputs on this CPU. "
        f"channels_last_3d: {speed['eager fp32, channels_last_3d']:.2f}x.",
        f"- Compilation took {info['compile_s']:.0f} s (once per process and input shape), so "
        "it pays only for many cases in one process; `predict` does not compile.",
        f"- bf16 autocast is {speed['bf16 autocast']:.2f}x eager and {reach16} 0.5x, but its "
        "outputs are not fp32's (random weights here: see the trained-model table for the "
        "agreement that counts). With the decoder's output layers in fp32, as `predict "
        f"--precision bf16` runs it: {speed[MIXED]:.2f}x eager; with every full-resolution "
        f"layer in fp32: {speed[FULL_RES]:.2f}x.",
    ])  # fmt: skip


def precision_cases(root: Path, model: Path, max_cases: int | None = None) -> tuple[str, dict]:
    """`predict` at fp32 and bf16 with the trained segmentation model on the generated test
    cases: seconds per case, Dice of the bf16 mask to the fp32 mask, max |dP|."""
    from brainfoundry.inference.predict import Predictor

    pred = Predictor(model, device="cpu")
    cases = sorted((root / "data" / "meningioma" / "test" / "preprocessed").iterdir())
    rows_of = ("fp32", "bf16", FULL_RES_ROW, ALL_BF16)
    res: dict[str, dict[str, list]] = {p: {"s": [], "dice": [], "dp": []} for p in rows_of}
    for case in cases[:max_cases]:
        inputs = _case(case / "ses_1")
        ref = None
        for precision, r in res.items():
            t = time.perf_counter()
            with _bf16_variant(pred, precision):
                out = pred.predict(inputs, precision=precision.split(",")[0])
            r["s"].append(time.perf_counter() - t)
            mask, prob = out["mask"] > 0, out["prob_preprocessed"]
            ref = ref or (mask, prob)
            r["dice"].append(_dice(mask, ref[0]))
            r["dp"].append(float(np.abs(prob - ref[1]).max()))
    rows = [[p, f"{np.median(r['s']):.2f}", f"{min(r['dice']):.4f}", f"{np.mean(r['dice']):.4f}",
             f"{max(r['dp']):.1e}"] for p, r in res.items()]  # fmt: skip
    text = table(["precision", "s/case (median)", "Dice vs fp32 mask (worst)",
                  "... (mean)", "max abs diff of P vs fp32"], rows)  # fmt: skip
    base = float(np.median(res["fp32"]["s"]))
    info = {k: {"dice": min(r["dice"]), "dp": max(r["dp"]), "speedup": base / np.median(r["s"])}
            for k, r in res.items()}  # fmt: skip
    info["n"] = len(res["bf16"]["s"])
    return text, info


ALL_BF16 = "bf16, every layer (before)"
FULL_RES_ROW = "bf16, every full-resolution layer fp32"


def full_resolution(net) -> list:
    """A resenc's layers at the input's resolution: the stem, the encoder stages before the first
    stride, and the decoder's output layers (what `predict`'s bf16 keeps in fp32)."""
    enc = net.encoder
    pairs = itertools.takewhile(
        lambda p: all(int(v) == 1 for v in p[1]), zip(enc.stages, enc.strides)
    )
    return [enc.stem, *(stage for stage, _ in pairs), *net.output_layers()]


@contextlib.contextmanager
def _bf16_variant(pred, row: str):
    """The layers bf16 keeps in fp32 for a row: none (before) or every full-resolution one;
    predict's own choice (`output_layers`) otherwise. An instance attribute shadows the method
    while inside."""
    pick = {ALL_BF16: lambda net: [], FULL_RES_ROW: full_resolution}.get(row)
    nets = [getattr(m.model.backbone, "shared", m.model.backbone) for m in pred.members]
    if pick is None:
        yield
        return
    for net in nets:
        net.output_layers = lambda net=net, layers=pick(net): layers
    try:
        yield
    finally:
        for net in nets:
            del net.output_layers


def _precision_notes(info: dict) -> str:
    """Prose from the trained-model table, the issue's thresholds as met or not met."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    b, old, full = info["bf16"], info[ALL_BF16], info[FULL_RES_ROW]
    return "\n".join([
        f"- `predict --precision bf16` (the row bf16) keeps the decoder's output-resolution "
        "layers in fp32 (last upsampling, last decoder stage, output convolution): "
        f"{b['speedup']:.2f}x fp32 per case end to end ({info['n']} cases; reading, "
        "preprocessing and writing do not speed up).",
        f"- Dice of its mask to the fp32 mask, worst case {b['dice']:.4f}: the issue's "
        f"Dice >= {DICE_MIN} is {verdict(b['dice'] >= DICE_MIN)} (measured).",
        f"- Its largest |dP| of the lesion probability, {b['dp']:.1e}: the issue's |dP| <= "
        f"{DP_MAX} is {verdict(b['dp'] <= DP_MAX)} (measured).",
        f"- With every layer in bf16 (as before): |dP| {old['dp']:.1e}, worst Dice "
        f"{old['dice']:.4f}, {old['speedup']:.2f}x fp32. With every full-resolution layer "
        f"in fp32 (the encoder's too): |dP| {full['dp']:.1e}, worst Dice {full['dice']:.4f}, "
        f"{full['speedup']:.2f}x fp32.",
        "- The model is weakly trained (few steps); a better-trained one has sharper "
        "probabilities, which usually agree better at the 0.5 threshold, but that is not "
        "measured here.",
    ])  # fmt: skip


def precision_section(root: Path, models: dict[str, Path], args) -> str:
    """Issue 12's precision section: the trained model's fp32 vs bf16, then the per-tile
    table of the part-1 network."""
    t_cases, ci = precision_cases(root, models["meningioma"], 2 if args.quick else None)
    print(t_cases, file=sys.stderr, flush=True)
    patch = (48, 48, 48) if args.quick else PATCH
    t_tiles, ti = tile_precision(1 if args.quick else args.repeats, patch)
    return "\n\n".join([
        "## Precision: fp32 vs bf16 (`--precision`) with the trained segmentation model",
        "`predict` end to end on the generated meningioma test cases (2 mm, 48³ tiles), both "
        "precisions on the same loaded model; bf16 autocasts the network (the rows say which "
        "layers it keeps in fp32), the softmax and the tile blending stay fp32. Agreement is "
        "measured against fp32 on the same cases, thresholds from issue 12 "
        f"(Dice >= {DICE_MIN}, |dP| <= {DP_MAX}).",
        t_cases, _precision_notes(ci),
        f"## Per-tile forward of the part-1 network ({ti['patch'][0]}³ tiles, random weights)",
        t_tiles, _tile_notes(ti),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seg-steps", type=int, default=80, help="segmentation training steps")
    ap.add_argument("--skip-part1", action="store_true", help="skip the 15-minute MNI part")
    ap.add_argument("--quick", action="store_true",
                    help="a short run: 4 segmentation steps, 1 repeat, no part 1, 2 test "
                    "cases and 48³ tiles in the precision section")  # fmt: skip
    ap.add_argument(
        "--precision-only",
        action="store_true",
        help="only the precision section (fp32 vs bf16, per-tile forwards)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.seg_steps, args.repeats, args.skip_part1 = 4, 1, True
    if args.precision_only:
        return _precision_main(args)
    load0, where = os.getloadavg(), machine()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = _models(root, args.seg_steps)
        t2, worst_entry = part2(root, models, args.repeats)
        t3 = part3(root, models["meningioma"])
        print(t3, file=sys.stderr, flush=True)
        t4 = precision_section(root, models, args)
    t1, info = ("(not run)", None) if args.skip_part1 else part1(args.repeats)
    load1 = os.getloadavg()
    parts = [
        "# Inference: sliding window vs MONAI, fast modes, `predict` per case",
        f"Machine: {where}. Load average (1, 5, 15 min) at start "
        f"{', '.join(f'{v:.2f}' for v in load0)}, at end {', '.join(f'{v:.2f}' for v in load1)}"
        " (the 2 cores may be shared with other jobs; rows are interleaved so load hits every "
        "row alike). Reproduce: `python -m benchmarks.bench_inference --out "
        "benchmarks/results/inference.md`.",
        f"## 1 mm MNI152, {args.repeats} interleaved repeats",
    ]
    if info:
        parts[-1] += (
            f" — volume {info['shape']}, a {info['params_M']:.1f}M-parameter residual U-Net "
            f"({info['tile_tflop'] * 1e3:.0f} GFLOP per 96³ tile), overlap 0.5, Gaussian "
            "sigma 0.125, 2 tiles per call"
        )
    parts += [t1]
    if info:
        parts += [_notes1(info)]
        parts += [
            "## GPU budget (120 s per case on one H100): an estimate, not a measurement",
            "No GPU here. Forward FLOPs are counted; the CPU column uses the rate measured "
            "above (default mode); the H100 column assumes a sustained "
            f"{ASSUMED_TFLOPS:g} TFLOP/s, a quarter of the bf16 rate assumed in "
            "gpu_estimates.md, because `predict` runs fp32 (TF32 convolutions).",
            gpu_budget(info),
        ]
    parts += [
        "## `predict` per case, end to end (median of "
        f"{args.repeats}; models fine-tuned here with the cpu-small recipe)",
        "One generated test case per task, its 2 mm scans resampled onto a 1 mm grid (speed "
        "depends on the grid, not on the anatomy's detail). Case-level models are the "
        f"closed-form linear probe, the segmentation model trained {args.seg_steps} steps: "
        "speed does not depend on the weights. `predict + write + QC`: read, preprocess to the "
        "model's spacing, "
        "network (sliding window for segmentation), map back to the input grid, write the "
        "output, its JSON and the QC PNG, in one process with the model loaded. `entry point`: "
        "`container/predict.py` as the FOMO25 runner calls it, one new Python process per case "
        "(imports, model load, prediction, scored output only).",
        t2,
        "## Fast modes with a trained segmentation model (generated meningioma test cases, "
        f"2 mm inputs, model at 2 mm with 48³ tiles, {args.seg_steps} training steps)",
        "Accuracy cost measured against the default mode on the same cases: Dice of the masks "
        "on the input grid and the largest change of the lesion probability on the model's "
        "grid. `--brain-only` is exact inside the brain by construction (every tile that "
        "touches a brain voxel still runs); lowering the overlap changes the tile grid and "
        "blending, and `--whole` gives the network more context than its training patch, so "
        "their cost depends on the network. The model is weak (few steps, few "
        "cases), so Dice to the truth is low for every mode; the agreement columns are the "
        "measurement.",
        t3,
        t4,
    ]
    if info:
        net_gpu = info["tile_tflop"] * info["tiles"]["ours, brain bounding box (as predict)"] * 8
        parts += [
            "## The 120 s per case budget",
            f"Unmeasured on a GPU (none here). The slowest case through the entry point took "
            f"{worst_entry:.1f} s on this 2-core CPU: Python and torch start-up, reading, "
            "resampling and writing (CPU work, no slower on the challenge's 32-core machine) "
            "plus a small network run on this CPU. The FOMO-sized network (table above) adds "
            f"an estimated {net_gpu / ASSUMED_TFLOPS:.2f} s on an H100 even with 8-flip "
            f"mirroring (and {info['box_s']:.0f} s without mirroring on this CPU, measured). "
            "Both are far inside 120 s; the first GPU run should replace this estimate with "
            "a measurement (`predict` logs `seconds` in each case's JSON).",
        ]
    text = "\n\n".join(parts) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


def _precision_main(args) -> int:
    """`--precision-only`: the segmentation model alone, then the precision section."""
    where = machine()
    with tempfile.TemporaryDirectory() as tmp:
        models = _models(Path(tmp), args.seg_steps, ("meningioma",))
        text = precision_section(Path(tmp), models, args)
    head = ("# Inference precision: bf16 against fp32, and faster fp32 forwards\n\nReproduce: "
            "`python -m benchmarks.bench_inference --precision-only "
            "--out benchmarks/results/inference_precision.md`")  # fmt: skip
    text = f"{head}\n\nMachine: {where}; load average at end {os.getloadavg()[0]:.2f}.\n\n{text}\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
