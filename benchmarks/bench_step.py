"""Training-step benchmark (issue 12): the step the Trainer now runs against the one it ran.

"before" is the old default: fp32 and `torch.optim.AdamW` unfused (on a CPU, a Python loop
over every tensor). "now" is the current default: `train.amp=auto` (engine/amp.py: bf16 only
where the probe measures that it pays on this machine) and fused AdamW (engine/loop.py
`build_optimizer`). Each preset's network, objective, patch and batch are timed in their own
processes, "before" and "now" interleaved over rounds, and reported as medians. The same run
measures the fp32 and bf16 GEMM peaks and checks the numerics the issue asks for:
- on one fixed batch, the loss in the chosen precision against fp32 (≤ 1% relative);
- 200 steps of the cpu-small preset on real anatomy (MNI152 crops), "now" against fp32: the
  gap between the curves against the gap between two fp32 seeds.

    python -m benchmarks.bench_step --out benchmarks/results/step.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# name, family, size, patch, batch, objective
PRESETS = [
    ("cpu-small", "resenc", "small", 32, 4, "mae"),
    ("resenc:base 64³", "resenc", "base", 64, 2, "mae"),
    ("primus:S 64³", "primus", "S", 64, 2, "mae"),
]
CURVE_STEPS = 200
LR, WARMUP = 2e-3, 20  # the cpu-small pretraining preset's
SMOOTH = 20  # the curves are compared as running means over this many steps


def _objective(family: str, size: str, method: str, seed: int):
    import torch

    from brainfoundry.models.backbones import create_backbone
    from brainfoundry.ssl import create_objective

    torch.manual_seed(seed)
    bb = create_backbone(family, in_channels=1, out_channels=1, size=size)
    return create_objective(method, bb, block_size=8)


def _batch(patch: int, batch: int, seed: int, anatomy: bool = False) -> dict:
    """Random patches, or random crops of the real MNI152 T1 (2 mm, z-scored) for the curves."""
    import torch

    g = torch.Generator().manual_seed(seed)
    if anatomy:
        vol = _mni()
        starts = [[int(torch.randint(0, s - patch + 1, (1,), generator=g)) for s in vol.shape]
                  for _ in range(batch)]  # fmt: skip
        x = torch.stack([vol[a:a + patch, b:b + patch, c:c + patch][None]
                         for a, b, c in starts])  # fmt: skip
    else:
        x = torch.randn(batch, 1, patch, patch, patch, generator=g)
    return {"image": x, "present": torch.ones(batch, 1, dtype=torch.bool),
            "meta": {"seed": torch.arange(batch) + 1000 * seed}}  # fmt: skip


_VOL = None


def _mni():
    global _VOL
    if _VOL is None:
        import numpy as np
        import torch
        from nilearn.datasets import load_mni152_template

        d = np.asarray(load_mni152_template(resolution=2).get_fdata(), dtype=np.float32)
        m = d > 0
        _VOL = torch.from_numpy(np.where(m, (d - d[m].mean()) / d[m].std(), 0).astype(np.float32))
    return _VOL


def _setup(preset: str, mode: str, seed: int = 0):
    """(objective, optimizer, autocast dtype, how the precision was chosen) of one mode."""
    import torch

    from brainfoundry.engine import OptimConfig
    from brainfoundry.engine import amp as amp_choice
    from brainfoundry.engine.loop import build_optimizer

    _, fam, size, patch, batch, method = next(p for p in PRESETS if p[0] == preset)
    obj = _objective(fam, size, method, seed)
    cfg = OptimConfig(lr=LR)
    if mode == "before":
        params = [p for p in obj.parameters() if p.requires_grad]
        return obj, torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas), None, "fp32"
    opt = build_optimizer(obj, cfg)
    b = _batch(patch, batch, 0)

    def probe(dtype):
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, _ = obj(b)
        loss.backward()
        obj.zero_grad(set_to_none=True)

    key = amp_choice.probe_key(torch.device("cpu"), obj, tuple(b["image"].shape))
    choice = amp_choice.resolve("auto", torch.device("cpu"), probe, key)
    return obj, opt, choice.dtype, choice.chosen


def _step(obj, opt, dtype, b, lr_factor: float = 1.0) -> float:
    """One optimizer step as the Trainer takes it: autocast forward, backward, the default
    gradient clipping (OptimConfig.grad_clip), AdamW."""
    import torch

    from brainfoundry.engine import OptimConfig

    for g in opt.param_groups:
        g["lr"] = LR * lr_factor
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        loss, _ = obj(b)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(obj.parameters(), OptimConfig().grad_clip)
    opt.step()
    return float(loss.detach())


def time_case(preset: str, mode: str, steps: int) -> dict:
    """Median step seconds of one mode, its counted FLOPs and its fixed-batch loss."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    obj, opt, dtype, chosen = _setup(preset, mode)
    _, _, _, patch, batch, _ = next(p for p in PRESETS if p[0] == preset)
    b = _batch(patch, batch, 0)
    with torch.no_grad():
        fp32_loss = float(obj(b)[0])
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            own_loss = float(obj(b)[0])
    _step(obj, opt, dtype, b)
    with FlopCounterMode(display=False) as fc:
        _step(obj, opt, dtype, b)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        _step(obj, opt, dtype, b)
        times.append(time.perf_counter() - t)
    return {"step_s": statistics.median(times), "flops": fc.get_total_flops(), "amp": chosen,
            "loss_rel": abs(own_loss - fp32_loss) / abs(fp32_loss)}  # fmt: skip


def curve(mode: str, seed: int, steps: int) -> list[float]:
    """The cpu-small preset's loss over CURVE_STEPS steps on MNI152 crops (batches seeded by
    step, so both modes of one seed see the same data)."""
    obj, opt, dtype, _ = _setup("cpu-small", mode, seed)
    _, _, _, patch, batch, _ = PRESETS[0]
    from brainfoundry.engine.schedule import warmup_cosine

    return [_step(obj, opt, dtype, _batch(patch, batch, 7919 * seed + s, anatomy=True),
                  warmup_cosine(s, steps, WARMUP, 0.01))
            for s in range(steps)]  # fmt: skip


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_step", *args],
                         capture_output=True, text=True, env=os.environ, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _running_mean(x: list[float], k: int) -> list[float]:
    return [statistics.fmean(x[max(0, i - k + 1) : i + 1]) for i in range(len(x))]


def _gap(a: list[float], b: list[float]) -> float:
    """Mean absolute gap between two smoothed loss curves, relative to the first's mean."""
    sa, sb = _running_mean(a, SMOOTH), _running_mean(b, SMOOTH)
    return statistics.fmean(abs(x - y) for x, y in zip(sa, sb)) / statistics.fmean(sa)


def _peaks() -> tuple[float, float]:
    import torch

    from benchmarks.common import gemm_peak

    fp32 = gemm_peak()
    n = 2048
    a = torch.randn(n, n, dtype=torch.bfloat16)
    torch.mm(a, a)
    best = min(_timed(lambda: torch.mm(a, a)) for _ in range(5))
    return fp32, 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per process")
    ap.add_argument("--rounds", type=int, default=2, help="processes per mode, interleaved")
    ap.add_argument("--curve-seeds", type=int, default=2)
    ap.add_argument("--curve-steps", type=int, default=CURVE_STEPS)
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: preset|mode
    ap.add_argument("--curve", help=argparse.SUPPRESS)  # internal: mode|seed
    args = ap.parse_args()
    if args.case:
        preset, mode = args.case.split("|")
        print(json.dumps(time_case(preset, mode, args.steps)))
        return
    if args.curve:
        mode, seed = args.curve.split("|")
        print(json.dumps(curve(mode, int(seed), args.curve_steps)))
        return
    from benchmarks.common import reproduce_command, table, write_result

    t0 = time.time()
    peak32, peak16 = _peaks()
    rows, ratios = [], {}
    for preset, *_ in PRESETS:
        runs: dict[str, list[dict]] = {"before": [], "now": []}
        for _ in range(args.rounds):
            for mode in runs:
                case = ["--case", f"{preset}|{mode}", "--steps", str(args.steps)]
                runs[mode].append(_child(case))
        med = {m: statistics.median(r["step_s"] for r in rs) for m, rs in runs.items()}
        ratios[preset] = med["before"] / med["now"]
        for mode, rs in runs.items():
            r = rs[0]
            peak = peak16 if r["amp"] == "bf16" else peak32
            gf = r["flops"] / med[mode] / 1e9
            rows.append([preset, mode, "fp32" if r["amp"] == "off" else r["amp"],
                         "fused" if mode == "now" else "for-loop", med[mode],
                         gf, f"{100 * gf / peak32:.0f}%", f"{100 * gf / peak:.0f}%",
                         f"{100 * r['loss_rel']:.2f}%"])  # fmt: skip
        print(rows[-2:], flush=True)
    curves = {(m, s): _child(["--curve", f"{m}|{s}", "--curve-steps", str(args.curve_steps)])
              for s in range(args.curve_seeds) for m in ("before", "now")}  # fmt: skip
    seed_gap = _gap(curves[("before", 0)], curves[("before", 1)]) if args.curve_seeds > 1 else None
    mode_gaps = [_gap(curves[("before", s)], curves[("now", s)]) for s in range(args.curve_seeds)]
    write_result(
        args.out or Path("/dev/null"), "step: the training step, before and now (CPU)",
        _intro(peak32, peak16), "\n\n".join([
            table(["preset", "step", "precision", "AdamW", "s/step (median)", "GFLOP/s",
                   "of fp32 GEMM peak", "of its precision's peak",
                   "fixed-batch loss vs fp32"], rows),
            _verdict(ratios), _curves(curves, seed_gap, mode_gaps, args.curve_steps)]),
        time.time() - t0, reproduce_command("bench_step", sys.argv[1:]),
    )  # fmt: skip


def _intro(peak32: float, peak16: float) -> str:
    return (
        f"GEMM peaks measured in the same run (torch.mm 2048²): fp32 {peak32:.1f} GFLOP/s, "
        f'bf16 {peak16:.1f} GFLOP/s ({peak16 / peak32:.2f}x). "before": fp32, AdamW unfused '
        '(the old default). "now": `train.amp=auto` as the trainer resolves it on this machine '
        "(engine/amp.py) and fused AdamW. Medians over the timed steps of every process, "
        "processes of the two modes interleaved. GFLOP/s counts the forward + backward FLOPs "
        "(FlopCounterMode) over the whole step's time."
    )


def _verdict(ratios: dict[str, float]) -> str:
    targets = {"cpu-small": 1.5, "resenc:base 64³": 1.2, "primus:S 64³": 1.2}
    lines = ["Step rate, now against before (the issue's targets in brackets):", ""]
    for k, r in ratios.items():
        ok = "met" if r >= targets[k] else "not met"
        lines.append(f"- {k}: **{r:.2f}x** (≥ {targets[k]}x: {ok})")
    return "\n".join(lines)


def _curves(curves: dict, seed_gap: float | None, mode_gaps: list[float], steps: int) -> str:
    first = {k: statistics.fmean(v[:SMOOTH]) for k, v in curves.items()}
    last = {k: statistics.fmean(v[-SMOOTH:]) for k, v in curves.items()}
    rows = [[f"{m} (seed {s})", first[(m, s)], last[(m, s)]] for (m, s) in curves]
    from benchmarks.common import table

    gaps = ", ".join(f"{100 * g:.2f}%" for g in mode_gaps)
    text = (
        f"{steps} steps of the cpu-small preset (lr {LR}, {WARMUP} warm-up steps, cosine, "
        "gradients clipped at norm 1 as the trainer does) on random 32³ crops "
        f"of the MNI152 T1 at 2 mm. Gap: the mean absolute difference of two {SMOOTH}-step "
        f"running means, relative to the loss. now vs before, same seed: {gaps}"
    )
    if seed_gap is not None:
        within = all(g <= seed_gap for g in mode_gaps)
        text += (
            f"; two fp32 seeds: {100 * seed_gap:.2f}%. The new step "
            f"{'stays within' if within else 'leaves'} the seed-to-seed spread"
        )
    return "\n\n".join([table(["curve", f"first {SMOOTH} steps", f"last {SMOOTH} steps"], rows),
                        text + "."])  # fmt: skip


if __name__ == "__main__":
    main()
