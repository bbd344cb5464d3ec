"""Backbone cost on this CPU: parameters, forward+backward time, peak memory, and the FLOP rate
achieved against a measured fp32 GEMM peak (torch.mm of 2048^2), per family and preset.

Each configuration runs in its own subprocess so its peak resident memory (ru_maxrss) is its
own. FLOPs are counted by torch's FlopCounterMode (convolutions and matmuls, forward+backward).

    python -m benchmarks.bench_backbones                       # default presets, 64^3, batch 1
    python -m benchmarks.bench_backbones --configs resenc:L primus:M --size 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from benchmarks.common import gemm_peak

DEFAULT = ["resenc:tiny", "resenc:small", "resenc:base", "primus:tiny", "primus:S"]


def run_one(name: str, preset: str, size: int, batch: int, reps: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from brainfoundry.models.backbones import create_backbone

    torch.manual_seed(0)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = create_backbone(name, 1, 1, preset)
    x = torch.randn(batch, 1, size, size, size)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    with FlopCounterMode(display=False) as fc:
        step()  # also the warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    sec = statistics.median(times)
    flops = fc.get_total_flops()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "config": f"{name}:{preset}",
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "input": f"{batch}x1x{size}^3",
        "fwd_bwd_s": sec,
        "gflop": flops / 1e9,
        "gflops_per_s": flops / sec / 1e9,
        "peak_rss_mb": peak_rss / 1024,
        "step_rss_mb": (peak_rss - base_rss) / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT, help="family:preset ...")
    ap.add_argument("--size", type=int, default=64, help="cubic input size")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3, help="timed steps (median)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        name, preset = args.one.split(":")
        print(json.dumps(run_one(name, preset, args.size, args.batch, args.reps)))
        return 0

    import torch

    peak = gemm_peak()
    rows = []
    for cfg in args.configs:
        cmd = [sys.executable, "-m", "benchmarks.bench_backbones", "--one", cfg,
               "--size", str(args.size), "--batch", str(args.batch),
               "--reps", str(args.reps)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"done {cfg}", file=sys.stderr)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"fp32 GEMM peak (torch.mm 2048^2, best of 5): {peak:.1f} GFLOP/s\n")
    print("| backbone | params (M) | input | fwd+bwd (s) | GFLOP | GFLOP/s | % of GEMM peak "
          "| peak RSS (MB) | step RSS (MB) |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        frac = r["gflops_per_s"] / peak
        print(f"| {r['config']} | {r['params_M']:.2f} | {r['input']} | {r['fwd_bwd_s']:.3f} "
              f"| {r['gflop']:.1f} | {r['gflops_per_s']:.1f} | {frac:.0%} "
              f"| {r['peak_rss_mb']:.0f} | {r['step_rss_mb']:.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
