"""Pretraining benchmark: train-step throughput, peak memory and achieved FLOP rate on this CPU.

For each backbone size × family × objective: one process (so peak RSS is its own) builds the
model, runs warm-up steps, then times optimizer steps (forward, backward, AdamW) on a batch of
random patches, counts the step's FLOPs with torch's FlopCounterMode, and reports samples/s,
peak resident memory and GFLOP/s against a GEMM peak measured in the same run (torch.mm 2048²).

    python -m benchmarks.bench_pretrain --out benchmarks/results/pretrain.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = [
    # (family, size, patch, batch, methods)
    ("resenc", "tiny", 32, 4, ["mae", "contrastive", "hybrid", "cross-modal"]),
    ("primus", "tiny", 32, 4, ["mae", "contrastive", "hybrid", "cross-modal"]),
    ("resenc", "small", 48, 2, ["mae", "hybrid"]),
    ("primus", "S", 64, 2, ["mae"]),
]


def one_case(family: str, size: str, patch: int, batch: int, method: str, steps: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from brainfoundry.engine import OptimConfig, amp
    from brainfoundry.engine.loop import build_optimizer
    from brainfoundry.models.backbones import create_backbone
    from brainfoundry.ssl import create_objective

    torch.manual_seed(0)
    channels = 2 if method == "cross-modal" else 1
    bb = create_backbone(family, in_channels=1, out_channels=1, size=size)
    kw = {"block_size": 8} if method != "contrastive" else {}
    obj = create_objective(method, bb, **kw)
    opt = build_optimizer(obj, OptimConfig(lr=1e-4))  # the Trainer's: fused AdamW
    x = torch.randn(batch, channels, patch, patch, patch)
    b = {
        "image": x,
        "present": torch.ones(batch, channels, dtype=torch.bool),
        "meta": {"seed": torch.arange(batch)},
        "views": torch.stack([x, x.flip(-1)], 1),
    }

    def forward_backward(dtype):
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, _ = obj(b)
        loss.backward()

    def probe(dtype):  # as the Trainer's: no optimizer step
        forward_backward(dtype)
        obj.zero_grad(set_to_none=True)

    cpu = torch.device("cpu")
    choice = amp.resolve("auto", cpu, probe, amp.probe_key(cpu, obj, tuple(x.shape)))

    def step():
        opt.zero_grad(set_to_none=True)
        forward_backward(choice.dtype)
        opt.step()

    step()
    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t) / steps
    params = sum(p.numel() for p in bb.parameters())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB on Linux
    return {
        "params_m": params / 1e6,
        "step_s": dt,
        "samples_s": batch / dt,
        "gflops": flops / dt / 1e9,
        "peak_mb": rss,
        "amp": "fp32" if choice.chosen == "off" else choice.chosen,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = ap.parse_args()
    if args.case:
        fam, size, patch, batch, method = args.case.split(",")
        print(json.dumps(one_case(fam, size, int(patch), int(batch), method, args.steps)))
        return
    from benchmarks.common import gemm_peak, machine, table

    peak = gemm_peak()
    rows = []
    for fam, size, patch, batch, methods in CASES:
        for method in methods:
            case = f"{fam},{size},{patch},{batch},{method}"
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.bench_pretrain",
                    "--case",
                    case,
                    "--steps",
                    str(args.steps),
                ],
                capture_output=True,
                text=True,
                env=os.environ,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(
                [
                    f"{fam}/{size}",
                    f"{patch}³ × {batch}",
                    method,
                    r["amp"],
                    r["params_m"],
                    r["samples_s"],
                    r["step_s"],
                    r["peak_mb"],
                    r["gflops"],
                    f"{100 * r['gflops'] / peak:.0f}%",
                ]
            )
            print(rows[-1], flush=True)
    text = "\n\n".join(
        [
            "# pretrain: train-step throughput, memory and FLOP rate (CPU)",
            f"Machine: {machine()}. GEMM peak measured in the same run: {peak:.1f} GFLOP/s "
            f"(torch.mm 2048² float32). Medians are not needed here: each row times {args.steps} "
            "steps after 2 warm-up steps, one process per row (peak RSS is that process's). "
            "Reproduce: `python -m benchmarks.bench_pretrain "
            "--out benchmarks/results/pretrain.md`.",
            table(
                [
                    "backbone",
                    "patch × batch",
                    "objective",
                    "precision (amp=auto)",
                    "params M",
                    "samples/s",
                    "s/step",
                    "peak RSS MB",
                    "GFLOP/s",
                    "of GEMM peak",
                ],
                rows,
            ),
            "GFLOP/s counts forward + backward FLOPs of one step (FlopCounterMode) over its time; "
            "the optimizer and data movement add time but no counted FLOPs. Each step is the "
            "Trainer's: fused AdamW, in the precision `train.amp=auto` picks on this machine "
            "(engine/amp.py), so a bf16 row can exceed the fp32 GEMM peak; step.md compares "
            "against the old fp32 step.",
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
