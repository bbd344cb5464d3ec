"""DINO on a CNN at a CPU batch (issue 17): does the teacher collapse, and what does the encoder
give downstream? The `demo` suite's corpus and recipe (resenc:mini, 300 steps, batch 4, 4096
prototypes), pretrained with `dino` at three teacher temperatures: DINOv2's warm-up 0.04 → 0.07
(the default before), 0.02, and 0.01 (the CNN default now, `ssl.dino.TEACHER_TEMPS`). Each
encoder's closed-form probe on infarct and brain age (16 cases), beside scratch. The teacher's
statistics are the last logged step's, on that step's batch of 4 patches × 2 views: entropy
near log K (8.32) is the uniform collapse; entropy near 0 with the marginal's near 0 is the
one-prototype collapse; a marginal well above the per-sample entropy means the teacher tells
the samples apart (at most per-sample + log 8).

    python -m benchmarks.bench_dino --out benchmarks/results/dino.md
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import estimate_ci, suite_args, write_suite_result

TITLE = "DINO on a CNN: teacher temperature, collapse and downstream"
RESULT = Path("benchmarks/results/dino.md")
BASE = ["tasks=[infarct,brainage]", "objectives=[scratch,dino]"]
TEMPS = {  # row name: dino's objective kwargs (None: the family default)
    "0.04 → 0.07 (DINOv2)": {"warmup_teacher_temp": 0.04, "teacher_temp": 0.07},
    "0.02": {"warmup_teacher_temp": 0.02, "teacher_temp": 0.02},
    "0.01 (CNN default)": None,
}


def _metric(work: Path, task: str, objective: str) -> dict:
    done = work / f"cells/{task}/resenc-mini/{objective}/shots_16/seed_0/done.json"
    return json.loads(done.read_text())["metrics"]


def main(argv: list[str] | None = None) -> int:
    args = suite_args(__doc__, RESULT, argv)
    from brainfoundry.bench.runner import run_suite
    from brainfoundry.bench.suite import load_suite

    t0 = time.perf_counter()
    body, scratch, rows = [], None, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (row, kw) in enumerate(TEMPS.items()):
            extra = []
            if kw:
                inner = ", ".join(f"{k}: {v}" for k, v in kw.items())
                extra = ["pretrain.per_key={dino: ['objective.kwargs={" + inner + "}']}"]
            suite = load_suite("demo", [*BASE, *extra])
            work = (args.work or Path(tmp)) / f"t{i}"
            run_suite(suite, work, log=lambda s: print(s, file=sys.stderr), progress=False)
            pre = json.loads((work / "pretrain/resenc-mini/dino/done.json").read_text())
            inf, age = _metric(work, "infarct", "dino"), _metric(work, "brainage", "dino")
            scratch = (_metric(work, "infarct", "scratch"), _metric(work, "brainage", "scratch"))
            rows[row] = (pre, inf, age)
            body.append([row, f"{pre['teacher_temp']:.3f}", f"{pre['teacher_entropy']:.2f}",
                         f"{pre['teacher_marginal_entropy']:.2f}", f"{pre['dino']:.2f}",
                         f"{pre['health/effective_rank']:.2f}", estimate_ci(inf['auroc']),
                         estimate_ci(age['mae']), f"{pre['seconds']:.0f}"])  # fmt: skip
    assert scratch is not None
    ci = (estimate_ci(scratch[0]["auroc"]), estimate_ci(scratch[1]["mae"]))
    body.append(["scratch (no pretraining)", "-", "-", "-", "-", "-", *ci, "-"])
    log_k = math.log(4096)
    prose = []
    for row, (pre, inf, age) in rows.items():
        h, hm = pre["teacher_entropy"], pre["teacher_marginal_entropy"]
        state = (
            "uniform (collapsed)" if h > log_k - 0.5
            else "one prototype for all (collapsed)" if hm < 0.5
            else "samples kept apart"
        )  # fmt: skip
        prose.append(
            f"- τ_t {row}: teacher entropy {h:.2f} of log K {log_k:.2f}, marginal {hm:.2f}: "
            f"{state}. Infarct AUROC {inf['auroc']['estimate']:.3f} (scratch "
            f"{scratch[0]['auroc']['estimate']:.3f}), brain-age MAE {age['mae']['estimate']:.1f} y "
            f"(scratch {scratch[1]['mae']['estimate']:.1f} y)."
        )
    header = ["teacher temperature τ_t", "τ_t at the end", "teacher entropy",
              "marginal entropy", "DINO loss", "effective rank", "infarct AUROC [95% CI]",
              "brain-age MAE y [95% CI]", "pretrain s"]  # fmt: skip
    note = "Generator seed 0, 40 shifted test cases per task, 95% bootstrap CIs over test cases."
    write_suite_result("bench_dino", __doc__, note, TITLE, header, body, prose, args.out, t0, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
