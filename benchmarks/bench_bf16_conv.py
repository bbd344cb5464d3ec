"""The CPU bf16 fault that `backbones.resenc.Conv3d` keeps out: how often oneDNN's bf16 weight
gradient of a 3³ convolution (padding 1) comes back non-finite or above 1e6 in magnitude, by
input size and channel count. Inputs and output gradients are N(0, 1). On the machine in
results/bf16_conv.md only 2³ inputs fault. The guard runs every input under 3 voxels along an
axis in fp32.

    python -m benchmarks.bench_bf16_conv --out benchmarks/results/bf16_conv.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import reproduce_command, table, write_result

SIZES = [2, 3, 4, 5, 6, 8]
CHANNELS = [32, 128, 320]


def bad_gradients(size: int, channels: int, trials: int, guarded: bool) -> int:
    """Trials (of `trials`) whose weight gradient is non-finite or > 1e6 in magnitude."""
    from brainfoundry.models.backbones.resenc import Conv3d

    conv = (Conv3d if guarded else torch.nn.Conv3d)(channels, channels, 3, padding=1)
    bad = 0
    for _ in range(trials):
        x = torch.randn(2, channels, size, size, size)
        conv.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x)
        y.backward(torch.randn(y.shape).to(y.dtype))
        w = conv.weight.grad
        bad += int(not torch.isfinite(w).all() or w.abs().max() > 1e6)
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--trials", type=int, default=30)
    args = ap.parse_args()
    torch.manual_seed(0)
    t0 = time.time()
    rows = []
    for size in SIZES:
        for ch in CHANNELS:
            rows.append([f"{size}³", ch, bad_gradients(size, ch, args.trials, False),
                         bad_gradients(size, ch, args.trials, True)])  # fmt: skip
            print(rows[-1], flush=True)
    faulty = sorted({r[0] for r in rows if r[2] > 0})
    guarded = sum(r[3] for r in rows)
    finding = (
        f"- Faulty input sizes without the guard: {', '.join(faulty) or 'none'}; "
        f"bad gradients with the guard: {guarded} of {len(rows) * args.trials}."
    )
    write_result(
        args.out or Path("/dev/null"), "bf16_conv: the CPU bf16 weight-gradient fault",
        f"A 3³ convolution (padding 1) on a batch of 2, bf16 autocast on the CPU, {args.trials} "
        "random trials per row: trials whose weight gradient is non-finite or above 1e6, for "
        "plain `nn.Conv3d` and for the guarded `backbones.resenc.Conv3d`. Torch version: "
        f"{torch.__version__}.",
        "\n\n".join([table(["input", "channels", "bad (nn.Conv3d)", "bad (guarded)"], rows),
                     finding]),
        time.time() - t0, reproduce_command("bench_bf16_conv", sys.argv[1:]),
    )  # fmt: skip


if __name__ == "__main__":
    main()
