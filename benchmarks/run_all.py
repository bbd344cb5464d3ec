"""Regenerate every benchmark table of the project, one benchmark after another (each in its
own process, so none shares memory or threads with another), peers measured in the same run.

    .venv/bin/python -m benchmarks.run_all            # all of them (each table states its own run)
    .venv/bin/python -m benchmarks.run_all store synth  # some of them

Needs the `bench` extra for the peers (`pip install -e ".[bench]"`, then nnU-Net without its
dependencies: see pyproject.toml). Run it on an otherwise idle machine: the tables are timings
(but clip's, which are accuracies). Writes benchmarks/results/<name>.md and an index,
benchmarks/results/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

# name: (module, extra arguments, what it measures, peers in the same run)
BENCHMARKS: dict[str, tuple[str, list[str], str, str]] = {
    "prepare": ("bench_prepare", [], "ingest + preprocess one scan", "nnU-Net v2 preprocessor"),
    "store": ("bench_store", [], "store size and random-crop reads", "npy, nnU-Net b2nd"),
    "skull_strip": (
        "bench_skull_strip",
        [],
        "brain extraction Dice, auto's verdict, one raw 1 mm head session preprocessed",
        "the generator's brain masks; the 20 s target",
    ),  # fmt: skip
    "loader": (
        "bench_loader",
        [],
        "training patches/s with augmentation",
        "nnU-Net+batchgeneratorsv2, MONAI, TorchIO",
    ),  # fmt: skip
    "synth": ("bench_synth", [], "synthetic data generation", "—"),
    "backbones": (
        "bench_backbones",
        ["--reps", "2"],
        "forward+backward cost per backbone",
        "fp32 GEMM peak",
    ),  # fmt: skip
    "pretrain": ("bench_pretrain", [], "pretraining step time and memory", "fp32 GEMM peak"),
    "step": (
        "bench_step",
        [],
        "the training step now (amp=auto, fused AdamW) against before, numerics",
        "the old fp32 step, fp32/bf16 GEMM peaks",
    ),  # fmt: skip
    "bf16_conv": (
        "bench_bf16_conv",
        [],
        "the CPU bf16 weight-gradient fault that resenc's Conv3d guard keeps out",
        "plain nn.Conv3d",
    ),  # fmt: skip
    "inference": (
        "bench_inference",
        [],
        "sliding-window inference, seconds per case",
        "MONAI sliding_window_inference",
    ),  # fmt: skip
    "gpu_estimates": ("bench_gpu_estimates", [], "GPU presets: counted FLOPs and memory", "—"),
    "clip": ("bench_clip", [], "intensity clipping vs none: few-shot infarct AUROC", "—"),
    "budget": ("bench_budget", [], "MAE pretraining steps vs few-shot quality (demo)", "scratch"),
    "ceiling": ("bench_ceiling", [], "8x-supervised and hand-made references (demo)", "—"),
    "shift": ("bench_shift", [], "one part of the clinical shift at a time (demo)", "no shift"),
    "bench_2d": ("bench_2d", [], "2-D slice CNN vs 3-D CNN: quality and seconds (demo)", "3-D"),
    "pool": ("bench_pool", [], "slice aggregation: mean vs attention (cnn2d, infarct)", "mean"),
    "dino": ("bench_dino", [], "DINO teacher temperature on a CNN: collapse, probes", "scratch"),
    "calibration": (
        "bench_calibration",
        [],
        "regression intervals at 50-95%: coverage and width",
        "variance scaling (UK Biobank engine)",
    ),  # fmt: skip
}
RUNS = RESULTS / "run_all.json"  # when run_all last remade each table, and how long it took


def run(name: str) -> float:
    module, extra, _, _ = BENCHMARKS[name]
    root = RESULTS.parent.parent  # the repository: tables name their output relative to it
    out = (RESULTS / f"{name}.md").relative_to(root)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", f"benchmarks.{module}", *extra, "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=root)
    return time.perf_counter() - t0


def finding(path: Path, width: int = 220) -> str:
    """The table's first generated note (its first "- " line), quoted for the index."""
    if not path.exists():
        return "(no table yet)"
    for line in path.read_text().splitlines():
        if line.startswith("- "):
            text = line[2:].replace("|", "/")
            return text if len(text) <= width else text[: width - 1] + "…"
    return "—"


def write_index(took: dict[str, float]) -> None:
    """benchmarks/results/README.md: every table, when run_all last remade it (kept across
    runs in run_all.json) and its first finding, quoted from the table itself."""
    runs = json.loads(RUNS.read_text()) if RUNS.exists() else {}
    today = time.strftime("%Y-%m-%d")
    runs.update({n: {"date": today, "seconds": round(s)} for n, s in took.items()})
    RUNS.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
    rows = ["| table | measures | peers in the same run | last remade by run_all | first finding |",
            "|---|---|---|---|---|"]  # fmt: skip
    for n, (_, _, what, peers) in BENCHMARKS.items():
        r = runs.get(n)
        when = f"{r['date']}, {r['seconds']} s" if r else "not recorded (see the table's header)"
        note = finding(RESULTS / f"{n}.md")
        rows.append(f"| [{n}]({n}.md) | {what} | {peers} | {when} | {note} |")
    (RESULTS / "README.md").write_text(
        "# Benchmark tables\n\nRegenerate all: `.venv/bin/python -m benchmarks.run_all` "
        "(one by one: `python -m benchmarks.run_all NAME`). Each file names its machine and "
        "the command that made it.\n\n" + "\n".join(rows) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"some of: {', '.join(BENCHMARKS)} (default all)")
    args = ap.parse_args(argv)
    here = Path(__file__).parent
    names = args.names or [n for n in BENCHMARKS if (here / f"{BENCHMARKS[n][0]}.py").exists()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        ap.error(f"unknown benchmarks {unknown}; known: {', '.join(BENCHMARKS)}")
    took = {}
    for n in names:
        print(f"[{n}] running …", file=sys.stderr, flush=True)
        took[n] = run(n)
        print(f"[{n}] {took[n]:.0f} s -> {RESULTS / (n + '.md')}", file=sys.stderr, flush=True)
    write_index(took)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
