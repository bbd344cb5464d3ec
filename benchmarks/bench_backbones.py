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
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import gemm_peak, reproduce_command, table, write_result

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


def notes(rows: list[dict], peak: float) -> str:
    """What the numbers show, from the numbers: FLOP rate against the GEMM peak, and memory."""
    frac = {r["config"]: r["gflops_per_s"] / peak for r in rows}
    lo, hi = min(frac, key=frac.__getitem__), max(frac, key=frac.__getitem__)
    rss = max(rows, key=lambda r: r["step_rss_mb"])
    return "\n".join([
        f"- FLOP rate: from {frac[lo]:.0%} of the GEMM peak (`{lo}`) to {frac[hi]:.0%} "
        f"(`{hi}`). The GEMM peak ({peak:.1f} GFLOP/s) is measured in the same run and moves "
        "between runs on shared machines, so compare the % column across runs, not seconds."
        + (" Above 100% means this run measured the GEMM peak low (one 2048² product, best of "
           "5), not that a network beat it." if frac[hi] > 1 else ""),
        f"- Memory: `{rss['config']}` adds the most resident memory for one step "
        f"({rss['step_rss_mb']:.0f} MB over the imports; peak RSS {rss['peak_rss_mb']:.0f} MB).",
        "- Peak RSS is each configuration's own process high-water mark; step RSS subtracts the "
        "resident memory after importing torch and brainfoundry.",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT, help="family:preset ...")
    ap.add_argument("--size", type=int, default=64, help="cubic input size")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3, help="timed steps (median)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/backbones.md"))
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        name, preset = args.one.split(":")
        print(json.dumps(run_one(name, preset, args.size, args.batch, args.reps)))
        return 0
    t0 = time.perf_counter()
    peak = gemm_peak()
    rows = []
    for cfg in args.configs:
        cmd = [sys.executable, "-m", "benchmarks.bench_backbones", "--one", cfg,
               "--size", str(args.size), "--batch", str(args.batch),
               "--reps", str(args.reps)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"done {cfg}", file=sys.stderr)
    body = table(
        ["backbone", "params (M)", "input", "fwd+bwd (s)", "GFLOP", "GFLOP/s", "% of GEMM peak",
         "peak RSS (MB)", "step RSS (MB)"],
        [[r["config"], f"{r['params_M']:.2f}", r["input"], f"{r['fwd_bwd_s']:.3f}",
          f"{r['gflop']:.1f}", f"{r['gflops_per_s']:.1f}", f"{r['gflops_per_s'] / peak:.0%}",
          f"{r['peak_rss_mb']:.0f}", f"{r['step_rss_mb']:.0f}"] for r in rows],
    )  # fmt: skip
    intro = (
        f"Forward + backward of one {args.size}³ patch (batch {args.batch}), median of "
        f"{args.reps} timed steps, each configuration in its own process. fp32 GEMM peak "
        f"(torch.mm 2048², best of 5) in the same run: {peak:.1f} GFLOP/s."
    )
    write_result(args.out, "Backbone cost on CPU", intro, body + "\n\n" + notes(rows, peak),
                 time.perf_counter() - t0,
                 reproduce_command("bench_backbones", (argv or sys.argv[1:])))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
