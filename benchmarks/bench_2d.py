"""2-D against 3-D on the CPU (issue 17): the `demo-2d` suite (the demo's data and recipe, a
3-D resenc:mini beside cnn2d:mini on every axial slice, MAE-pretrained and from scratch), with
each model's quality on the shifted test sets and its seconds: pretraining, fine-tuning, and
evaluation per test case (`evaluate` on the prepared test store: read, forward, score). Then
the case-level tasks again on a second data variant (generator seed 1, difficulty 0.7), so
that a difference found on the demo's seed is checked on data no one looked at first.

    python -m benchmarks.bench_2d --out benchmarks/results/bench_2d.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import estimate_ci, reproduce_command, table, write_result

RESULT = Path("benchmarks/results/bench_2d.md")
SUITE = "demo-2d"
VARIANTS = {  # folder under --work: (what it is, suite overrides)
    "demo": ("the demo's data (generator seed 0, difficulty 0.5)", []),
    "seed1": ("generator seed 1, difficulty 0.7, case-level tasks",
              ["data.synth.seed=1", "data.synth.difficulty=0.7", "tasks=[infarct,brainage]"]),
}  # fmt: skip


def rows(work: Path, suite, variant: str) -> tuple[list[list], dict]:
    """One row per (task, backbone, objective) cell, and {(task, backbone, objective): metric}
    with the stages' seconds under "seconds"."""
    from brainfoundry.tasks import get_task

    out, est, runs, spent = [], {}, {}, 0.0
    for cell in suite.cells():
        rec = json.loads((work / cell.path / "done.json").read_text())
        metric = get_task(cell.task).primary_metric
        pre = "-"
        if cell.objective != "scratch":
            run = work / "pretrain" / cell.backbone.replace(":", "-") / cell.objective
            pre = f"{json.loads((run / 'done.json').read_text())['seconds']:.0f}"
        per_case = rec["evaluate_seconds"] / max(int(rec["n_test"]), 1)
        out.append([variant, cell.task, cell.backbone, cell.objective, metric,
                    estimate_ci(rec["metrics"][metric]), pre, f"{rec['finetune_seconds']:.0f}",
                    f"{per_case:.2f}"])  # fmt: skip
        est[(cell.task, cell.backbone, cell.objective)] = rec["metrics"][metric]
        if pre != "-":  # a pretraining run serves every task: count it once
            runs[(cell.backbone, cell.objective)] = float(pre)
        spent += rec["finetune_seconds"] + rec["evaluate_seconds"]
    est["seconds"] = spent + sum(runs.values())
    return out, est


def notes(est: dict, suite, variant: str, tally: dict) -> str:
    """Which family scored better on each task and objective: said from the estimates only
    (the CIs in the table overlap where they overlap)."""
    from brainfoundry.evaluation.metrics import HIGHER_IS_BETTER
    from brainfoundry.tasks import get_task

    three, two = suite.backbones
    lines = []
    for task in suite.tasks:
        better_high = HIGHER_IS_BETTER[get_task(task).primary_metric]
        for obj in suite.objectives:
            ma, mb = est[(task, three, obj)], est[(task, two, obj)]
            a, b = ma["estimate"], mb["estimate"]
            win = two if (b > a) == better_high and a != b else three
            apart = ma["hi"] < mb["lo"] or mb["hi"] < ma["lo"]
            ci = "CIs apart" if apart else "the CIs overlap"
            lines.append(f"- {variant}, {task}, {obj}: {three} {a:.3f}, {two} {b:.3f}; {win} "
                         f"scores better ({ci}).")  # fmt: skip
            tally[win] = tally.get(win, 0) + 1
            tally["apart"] = tally.get("apart", 0) + int(apart)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--work", type=Path, default=None, help="keep (or resume) the suite here")
    args = ap.parse_args(argv)
    from brainfoundry.bench.runner import run_suite
    from brainfoundry.bench.suite import load_suite

    t0 = time.perf_counter()
    body, prose, spent, tally = [], [], 0.0, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (what, overrides) in VARIANTS.items():
            suite = load_suite(SUITE, overrides)
            work = (args.work or Path(tmp)) / name
            run_suite(suite, work, log=lambda s: print(s, file=sys.stderr), progress=False)
            part, est = rows(work, suite, name)
            body += part
            spent += est.pop("seconds")
            prose += [f"- {name}: {what}.", notes(est, suite, name, tally)]
    suite = load_suite(SUITE)
    three, two = suite.backbones
    n = tally.get(three, 0) + tally.get(two, 0)
    prose.insert(0, f"- Of {n} paired comparisons (same task, objective and data), {two} "
                 f"scores better in {tally.get(two, 0)} and {three} in {tally.get(three, 0)}; "
                 f"the 95% CIs are apart in {tally.get('apart', 0)}.")  # fmt: skip
    header = ["data", "task", "backbone", "objective", "metric", "test [95% CI]", "pretrain s",
              "fine-tune s", "evaluate s/case"]  # fmt: skip
    intro = (
        f"The `{SUITE}` suite: {suite.description.strip()} Test sets of "
        f"{suite.data.synth.test_cases} cases per task, 16 shots, seed 0; 95% bootstrap "
        "CIs over test cases. Seconds are wall time on this machine, each cell alone; the "
        f"stages' own seconds add up to {spent:.0f} s (data generation and prepare not "
        "counted; a resumed run reuses finished stages, so its wall time below can be shorter)."
    )
    text = table(header, body) + "\n\n" + "\n".join(prose)
    cmd = reproduce_command("bench_2d", sys.argv[1:] if argv is None else argv)
    write_result(args.out, "2-D against 3-D on the CPU", intro, text,
                 time.perf_counter() - t0, cmd)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
