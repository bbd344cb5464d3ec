"""Which part of the clinical shift breaks the few-shot models: the demo suite's models, each
scored on test sets of the same subjects shifted in one part only.

The generator's shift moves four parts (`synth --shift-parts`): head pose, vendor tissue
contrast, partial z coverage, and the acquisition (SNR, bias field, thick slices, ghosts).
Test sets are drawn with the demo's seeds, so every column holds the same people: "none" is the
source domain, "all" is the demo's own shifted test set.

    python -m benchmarks.bench_shift --out benchmarks/results/shift.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import estimate_ci, reproduce_command, table, write_result

RESULT = Path("benchmarks/results/shift.md")
PARTS = ("none", "pose", "contrast", "coverage", "acquisition", "all")


def test_sets(suite, work: Path) -> dict[tuple[str, str], Path]:
    """{(task, part): test folder} drawn as the demo draws its task data."""
    from brainfoundry.bench.suite import synth_tasks
    from brainfoundry.synth import SynthConfig, generate
    from brainfoundry.synth.config import SHIFT_PARTS

    s = suite.data.synth
    out = {}
    for task in suite.tasks:
        for part in PARTS:
            folder = work / "shift" / part / task
            if not (folder / "dataset.json").exists():
                cfg = SynthConfig(
                    kind=task, n=s.finetune_cases, n_test=s.test_cases, resolution=s.resolution,
                    seed=s.seed * 10 + 1 + synth_tasks().index(task),
                    shift=0.0 if part == "none" else s.shift, difficulty=s.difficulty,
                    shift_parts=SHIFT_PARTS if part in ("none", "all") else (part,),
                    workers=2, qc=False,
                )  # fmt: skip
                shutil.rmtree(folder, ignore_errors=True)
                generate(cfg, folder, progress=False)
            out[task, part] = folder / "test"
    return out


def score(suite, work: Path, sets: dict) -> dict[tuple[str, str, str], dict]:
    """{(task, objective, part): metrics} of every finished cell on every ablation set."""
    from brainfoundry.tasks.evaluate import evaluate

    res = {}
    for cell in suite.cells():
        for part in PARTS:
            dest = work / "eval" / part / cell.path
            if not (dest / "metrics.json").exists():
                shutil.rmtree(dest, ignore_errors=True)
                skip = shutil.ignore_patterns("checkpoints", "tb")
                shutil.copytree(work / "suite" / cell.path, dest, ignore=skip)
                evaluate(dest, sets[cell.task, part], n_boot=suite.n_boot, log=lambda *_: None,
                         store_dir=work / "stores" / part / cell.task)  # fmt: skip
            m = json.loads((dest / f"seed_{cell.seed}" / "metrics.json").read_text())["metrics"]
            res[cell.task, cell.objective, part] = m
    return res


def main(argv: list[str] | None = None) -> int:
    from brainfoundry.bench.runner import run_suite
    from brainfoundry.bench.suite import load_suite
    from brainfoundry.tasks import get_task

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--work", type=Path, default=None, help="keep (or reuse) the folders here")
    ap.add_argument("--seed", type=int, default=0, help="the generator seed (data.synth.seed)")
    ap.add_argument("--difficulty", type=float, default=0.5)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    suite = load_suite(
        "demo", [f"data.synth.seed={args.seed}", f"data.synth.difficulty={args.difficulty}"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        # a reused --work folder keeps one data variant per seed and difficulty, never mixes them
        work = (args.work or Path(tmp)) / f"seed_{args.seed}_difficulty_{args.difficulty}"
        run_suite(suite, work / "suite", log=lambda *_: None, progress=False)
        res = score(suite, work, test_sets(suite, work))
    rows = []
    for task in suite.tasks:
        spec = get_task(task)
        for metric in dict.fromkeys([spec.primary_metric, *spec.ranking_metrics]):
            for obj in suite.objectives:
                rows.append([task, metric, obj,
                             *(estimate_ci(res[task, obj, p][metric]) for p in PARTS)])  # fmt: skip
    cmd = reproduce_command("bench_shift", sys.argv[1:] if argv is None else argv)
    intro = (
        f"The demo suite's models ({', '.join(suite.objectives)}; {suite.shots[0]} fine-tuning "
        f"cases, source domain) on {suite.data.synth.test_cases} test cases per column, the "
        "same subjects each time, shifted in one part only. Estimate [95% bootstrap CI over "
        'cases]. A column far from "none" names a part of the shift the models do not '
        "survive."
    )
    write_result(
        args.out,
        f"Shift ablation: one part of the clinical shift at a time (demo data, generator seed "
        f"{args.seed}, difficulty {args.difficulty})",
        intro,
        table(["task", "metric", "model", *PARTS], rows),
        time.perf_counter() - t0,
        cmd,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
