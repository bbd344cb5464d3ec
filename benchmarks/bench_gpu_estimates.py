"""GPU presets, estimated without a GPU: FLOPs and activation memory per training step.

No GPU is lent to this project's machines, so the gpu-base / gpu-large presets cannot be timed
here. This counts what can be counted exactly on PyTorch's meta device (no memory, no compute):
FLOPs of one forward + backward (FlopCounterMode) and the bytes of the tensors autograd saves
for backward (saved-tensor hooks) in fp32, plus weights, gradients and AdamW's two moments.
Step time is then an ESTIMATE from an assumed sustained rate, stated in the table; replace it
with a measurement when a GPU is available (`brainfoundry pretrain` logs samples/s).

    python -m benchmarks.bench_gpu_estimates --out benchmarks/results/gpu_estimates.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import table

# (preset file, backbone, size, patch, batch per GPU)
CASES = [
    ("gpu-base", "resenc", "base", 128, 4),
    ("gpu-large", "resenc", "L", 160, 2),
    ("gpu-large, --backbone primus --size M", "primus", "M", 160, 2),
]
ASSUMED_TFLOPS = 200.0  # sustained bf16 on one H100 for 3-D conv/attention nets (an assumption)


def count(family: str, size: str, patch: int, batch: int) -> tuple[float, float, float]:
    from brainfoundry.models.backbones import create_backbone

    saved = 0

    def pack(t: torch.Tensor):
        nonlocal saved
        # attention matrices [.., N, N]: the meta device runs SDPA's math path, which keeps
        # them; GPU flash / memory-efficient attention does not, so they are not counted
        if not (t.dim() >= 3 and t.shape[-1] == t.shape[-2] and t.shape[-1] >= 512):
            saved += t.numel() * t.element_size()
        return t

    with torch.device("meta"):
        model = create_backbone(family, in_channels=1, out_channels=1, size=size)
        x = torch.randn(batch, 1, patch, patch, patch)
    with FlopCounterMode(display=False) as fc:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = model(x)
        y.float().square().mean().backward()
    params = sum(p.numel() for p in model.parameters())
    return fc.get_total_flops(), saved, params


def loader_workers(est_step: dict[str, tuple[float, int]]) -> str:
    """How many CPU loader workers keep one H100 fed: the training path's patches/s on ONE core
    (`bench_loader.loader_rate`: the preset's PatchDataset over a real 1 mm store made by
    `prepare`, its augmentation per sample, in-process, torch on 1 thread) against what the
    estimated step consumes (batch / est. s per step)."""
    import math
    import tempfile

    from benchmarks import bench_loader as bl

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_gpu_loader-"))
    store = bl.make_store(work, 1.0)
    rows = []
    for preset, (step_s, batch) in est_step.items():
        bl.TRAIN_CASES.setdefault(preset, (preset, 1.0, []))
        per_core = bl.loader_rate(preset, store, workers=0, warmup=1, batches=3, batched=False)
        need = batch / step_s
        rows.append([preset, per_core, need, math.ceil(need / per_core)])
        print(rows[-1], flush=True)
    return "\n\n".join([
        "## CPU loader workers to keep one H100 fed (measured per core, step estimated)",
        "The training path on one core of this CPU (one torch thread; the preset's dataset "
        "over a 1 mm store, its augmentation per sample, 1 warm-up and 3 timed batches) against "
        "the patches/s the estimated step above consumes. Workers = ceil(consumed / per core); "
        "the step time is the assumption above, so this is an estimate too.",
        table(["preset", "patches/s per core (measured)", "patches/s the step consumes (est.)",
               "workers needed (est.)"], rows),
    ])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    for preset, fam, size, patch, batch in CASES:
        flops, saved, params = count(fam, size, patch, batch)
        state = params * 4 * 4  # fp32 weights, grads, Adam m and v
        rows.append(
            [
                preset,
                f"{fam}/{size}",
                f"{patch}³ × {batch}",
                params / 1e6,
                flops / 1e12,
                saved / 2**30,
                state / 2**30,
                (saved + state) / 2**30,
                flops / (ASSUMED_TFLOPS * 1e12),
            ]
        )
        print(rows[-1], flush=True)
    text = "\n\n".join(
        [
            "# GPU presets: counted FLOPs and memory, estimated step time (no GPU here)",
            "Counted on the meta device (exact for this code): FLOPs of one forward + backward, "
            "and "
            "the fp32 bytes autograd saves for backward (without N×N attention matrices, which GPU "
            "flash attention does not keep). bf16 autocast (`train.amp=auto` on CUDA) "
            "stores most activations in half the bytes. The memory column is a lower bound of the "
            "peak (it leaves out cuDNN workspaces and transient buffers). Step time assumes a "
            f"sustained {ASSUMED_TFLOPS:.0f} TFLOP/s on one H100 — an assumption, not a "
            "measurement. Reproduce: `python -m benchmarks.bench_gpu_estimates "
            "--out benchmarks/results/gpu_estimates.md`.",
            table(
                [
                    "preset",
                    "backbone",
                    "patch × batch/GPU",
                    "params M",
                    "TFLOP/step",
                    "saved activations GiB (fp32)",
                    "weights+grads+AdamW GiB",
                    "memory lower bound GiB",
                    f"est. s/step at {ASSUMED_TFLOPS:.0f} TFLOP/s",
                ],
                rows,
            ),
            loader_workers({r[0]: (r[-1], int(r[2].split("× ")[1])) for r in rows[:2]}),
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
