"""Synth benchmark: how fast `brainfoundry synth` makes data, and a sanity check of how hard
the brain-age task it makes is.

1. Seconds per case for each dataset kind and resolution: one process, one thread, anatomy
   already loaded (startup is timed on its own), NIfTI writing included.
2. The CPU benchmark-sized set: `synth pretrain --n 32` (~40 sessions, ~130 scans) plus the
   three tasks with 20 fine-tuning + 20 test cases each, with --workers 2: wall-clock time and
   CPU seconds (parent + workers), startup included.
3. Brain-age difficulty: cross-validated MAE of a quadratic fit on oracle tissue features
   (ventricle and CSF fractions, cortical GM fraction, WMH count, T1 contrast loss) against the
   predict-the-mean baseline, for a cohort at 4 mm.

    python -m benchmarks.bench_synth --out benchmarks/results/synth.md
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine, table

KINDS = {"pretrain": (32, 0), "infarct": (20, 20), "meningioma": (20, 20), "brainage": (20, 20)}


def _cpu() -> float:
    r = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(x.ru_utime + x.ru_stime for x in r)


def per_case(resolutions: list[float], cases: int, tmp: Path) -> list[list]:
    from brainfoundry.synth import SynthConfig, generate
    from brainfoundry.synth.anatomy import build_anatomy, forget_anatomy

    torch.set_num_threads(1)
    rows = []
    for res in resolutions:
        forget_anatomy(res)
        t = time.perf_counter()
        anat = build_anatomy(res)
        startup = time.perf_counter() - t
        for kind in KINDS:
            cfg = SynthConfig(kind=kind, n=cases, n_test=0, resolution=res, seed=1, qc=False)
            out = tmp / f"case-{kind}-{res}"
            t = time.perf_counter()
            info = generate(cfg, out)
            dt = time.perf_counter() - t
            n = len(info["cases"])
            scans = sum(len(c["sequences"]) for c in info["cases"])
            rows.append(
                [
                    kind,
                    f"{res:g}",
                    "x".join(map(str, anat.shape)),
                    n,
                    scans,
                    dt / n,
                    dt / scans,
                    f"{startup:.1f}",
                ]
            )
    return rows


def benchmark_set(res: float, workers: int, tmp: Path) -> list[list]:
    from brainfoundry.synth import SynthConfig, generate
    from brainfoundry.synth.anatomy import forget_anatomy
    from brainfoundry.synth.writers import shutdown_pool

    forget_anatomy()
    rows = []
    wall0, cpu0 = time.perf_counter(), _cpu()
    for kind, (n, n_test) in KINDS.items():
        cfg = SynthConfig(kind=kind, n=n, n_test=n_test, resolution=res, workers=workers, seed=0)
        t = time.perf_counter()
        info = generate(cfg, tmp / f"set-{kind}-{res}")
        scans = sum(len(c["sequences"]) for c in info["cases"])
        rows.append([kind, f"{res:g}", len(info["cases"]), scans, time.perf_counter() - t])
    shutdown_pool()  # workers' CPU time is counted once they have exited
    rows.append(
        [
            "**total**",
            f"{res:g}",
            sum(r[2] for r in rows),
            sum(r[3] for r in rows),
            time.perf_counter() - wall0,
        ]
    )
    rows[-1].append(_cpu() - cpu0)
    for r in rows[:-1]:
        r.append("")
    return rows


def brainage_difficulty(n: int = 160, res: float = 4.0) -> list[list]:
    from brainfoundry.synth.anatomy import build_anatomy
    from brainfoundry.synth.cases import SessionSpec, make_session

    torch.set_num_threads(1)
    anat = build_anatomy(res)
    ages = np.random.default_rng(0).uniform(18.0, 90.0, n)
    feats = []
    for i, age in enumerate(ages):
        spec = SessionSpec(5000 + i, 9000 + i, float(age), ("t1",), distractors=False)
        s = make_session(spec, anat, keep_tissues=True)
        t = s.tissues.numpy()
        tot = t[:5].sum()
        a = s.meta["ageing"]
        feats.append(
            [
                t[4].sum() / tot,
                t[3].sum() / tot,
                t[1].sum() / tot,
                a["wmh_count"],
                a["gm_wm_flattening"],
            ]
        )
    x = np.asarray(feats)

    def cv_mae(cols: list[int], k: int = 5) -> float:
        fold = np.arange(n) % k
        err = []
        for f in range(k):
            tr, te = fold != f, fold == f
            design = [np.c_[np.ones(m.sum()), x[m][:, cols], x[m][:, cols] ** 2] for m in (tr, te)]
            w = np.linalg.lstsq(design[0], ages[tr], rcond=None)[0]
            err.append(np.abs(design[1] @ w - ages[te]))
        return float(np.concatenate(err).mean())

    rows = [["predict the mean", float(np.abs(ages - ages.mean()).mean())]]
    names = ["ventricles", "sulcal CSF", "cortical GM", "WMH count", "T1 contrast loss"]
    rows += [[f"oracle {name}", cv_mae([i])] for i, name in enumerate(names)]
    rows.append(["oracle, all five", cv_mae(list(range(5)))])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    ap.add_argument("--cases", type=int, default=6, help="cases per kind for the per-case table")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t_case = per_case([2.0, 3.0], args.cases, tmp)
        t_set = [row for res in (3.0, 2.0) for row in benchmark_set(res, args.workers, tmp)]
    t_age = brainage_difficulty()
    load1 = os.getloadavg()[0]
    cmd = "python -m benchmarks.bench_synth --out benchmarks/results/synth.md"
    text = "\n".join(
        [
            "# synth: generator speed and task difficulty",
            "",
            f"Machine: {machine()}. Load average {load0:.1f} at start, {load1:.1f} at end (the "
            "machine's 2 cores were shared with other work: CPU seconds are the steadier number).",
            f"Reproduce: `{cmd}`",
            "",
            "## Seconds per case (one process, one thread; NIfTI writing included)",
            "",
            table(
                ["dataset", "mm", "grid", "cases", "scans", "s/case", "s/scan", "startup s"], t_case
            ),
            "",
            "`startup` = loading the MNI152 maps and resampling them (once per process).",
            "",
            f"## Benchmark-sized set, --workers {args.workers} (startup included)",
            "",
            table(["dataset", "mm", "sessions", "scans", "wall s", "CPU s"], t_set),
            "",
            "Each dataset is one `generate` call; the worker pool is kept between calls of one "
            "process, as the CLI pays its start once per command.",
            "",
            "## Brain-age task difficulty (160 subjects at 4 mm, 5-fold CV MAE in years)",
            "",
            table(["predictor", "MAE (y)"], t_age),
            "",
            "Oracle features are read from the generator's true tissue maps; an image model has to "
            "estimate them through contrast changes, noise and (test split) clinical artefacts.",
        ]
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
