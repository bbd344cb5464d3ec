"""Pretraining budget benchmark: how downstream few-shot quality grows with the samples the
MAE pretraining has seen, on the demo suite's data and recipe (16 cases, shifted test sets).

One suite folder per budget (`pretrain.steps` = 0 is scratch, the shared baseline), the data,
stores and scratch cells copied from the first so that every budget sees the same cases. Each
row is one pretrained model, fine-tuned and evaluated once (one seed: read the CIs).

    python -m benchmarks.bench_budget --out benchmarks/results/budget.md
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

RESULT = Path("benchmarks/results/budget.md")
STEPS = (150, 300, 600, 1200)
TASKS = ("infarct", "meningioma", "brainage")


def _primary() -> dict[str, str]:
    """Each task's primary metric, from its spec."""
    from brainfoundry.tasks import get_task

    return {t: get_task(t).primary_metric for t in TASKS}


def _cells(out: Path, objective: str) -> dict[str, dict]:
    rows = {}
    for task, metric in _primary().items():
        done = next((out / "cells" / task).glob(f"*/{objective}/shots_16/seed_0/done.json"))
        rows[task] = json.loads(done.read_text())["metrics"][metric]
    return rows


def run(steps: tuple[int, ...], work: Path, log=print) -> list[list]:
    from brainfoundry.bench.runner import run_suite
    from brainfoundry.bench.suite import load_suite

    first: Path | None = None
    rows = []
    for n in steps:
        out = work / f"steps_{n}"
        if first is not None and not out.exists():
            out.mkdir(parents=True)
            for part in ("data", "store"):
                shutil.copytree(first / part, out / part)
            for task in TASKS:
                for src in (first / "cells" / task).glob("*/scratch"):
                    dst = out / src.relative_to(first)
                    shutil.copytree(src, dst)
        suite = load_suite("demo", [f"pretrain.steps={n}"])
        t0 = time.perf_counter()
        run_suite(suite, out, log=log, progress=False)
        first = first or out
        done = json.loads(next((out / "pretrain").glob("*/mae/done.json")).read_text())
        batch = 4  # the cpu-small pretraining preset's batch
        m = _cells(out, "mae")
        rows.append([n, n * batch, round(done["seconds"]), *(estimate_ci(m[t]) for t in TASKS)])
        log(f"[budget] {n} steps: {rows[-1]} ({time.perf_counter() - t0:.0f} s)")
    scratch = _cells(first, "scratch") if first else {}
    rows.insert(0, [0, 0, 0, *(estimate_ci(scratch[t]) for t in TASKS)])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--steps", default=",".join(map(str, STEPS)))
    ap.add_argument("--work", type=Path, default=None, help="keep the suite folders here")
    args = ap.parse_args(argv)
    steps = tuple(int(s) for s in args.steps.split(","))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(steps, args.work or Path(tmp))
    header = ["pretrain steps", "samples seen", "pretrain s", "infarct AUROC", "meningioma Dice",
              "brain-age MAE (y)"]  # fmt: skip
    cmd = reproduce_command("bench_budget", sys.argv[1:] if argv is None else argv)
    intro = (
        "Row 0 is scratch (a random encoder); every other row is resenc:mini pretrained with MAE "
        "for that many steps of 4 samples, then the demo's recipe: the closed-form probe for "
        "infarct and brain age, 400 steps of full fine-tuning for meningioma. One seed: test-set "
        "estimate [95% bootstrap CI over cases]."
    )
    seconds = time.perf_counter() - t0
    write_result(
        args.out,
        "Pretraining budget vs few-shot quality (demo suite, 16 cases, shifted test sets)",
        intro,
        table(header, rows),
        seconds,
        cmd,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
