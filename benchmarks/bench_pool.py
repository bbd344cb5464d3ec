"""Case-level aggregation of slice features (issue 17): the infarct task of the `demo-2d` suite
with `cnn2d:mini` from scratch on every axial slice, its features pooled three ways: the
closed-form probe alone (mean and max over slices, 0 gradient steps, the suite's recipe), then
120 steps training the head on the frozen encoder with the same pooling, and the same 120 steps
with the deepest stage's slice mean replaced by gated attention (`model.pool=attention`). On
the demo's data and on a second variant (generator seed 1, difficulty 0.7). Validation picks
the kept step, as always. For the attention rows, how far the learned weights moved off
uniform: the largest slice weight times the number of slices (1.0 = the plain mean), averaged
over the test cases and sequences.

    python -m benchmarks.bench_pool --out benchmarks/results/pool.md
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import estimate_ci, suite_args, write_suite_result

TITLE = "Slice aggregation: mean against attention (cnn2d, infarct)"
RESULT = Path("benchmarks/results/pool.md")
SUITE = "demo-2d"
BASE = ["tasks=[infarct]", "objectives=[scratch]", "backbones=[cnn2d:mini]"]
VARIANTS = {
    "demo": ("the demo's data (generator seed 0, difficulty 0.5)", []),
    "seed1": ("generator seed 1, difficulty 0.7",
              ["data.synth.seed=1", "data.synth.difficulty=0.7"]),
}  # fmt: skip
STEPS = ["train.steps=120", "train.checkpoint_every=40", "strategy.name=linear", "optim.lr=0.003"]
POOLS = {  # row name: infarct's fine-tuning overrides
    "probe only, meanmax (0 steps)": ["val_cases=8"],
    "120 steps, meanmax": [*STEPS, "model.pool=meanmax", "val_cases=8"],
    "120 steps, attention": [*STEPS, "model.pool=attention", "val_cases=8"],
}


def attention_spread(seed_dir: Path, test_store: Path) -> float:
    """Mean over test cases and sequences of (largest attention weight × number of slices)."""
    import torch

    from brainfoundry.data.store import Store
    from brainfoundry.data.volume_dataset import VolumeDataset
    from brainfoundry.tasks.model_io import load_task_model

    model, card, spec = load_task_model(seed_dir)
    model.eval()
    ds = VolumeDataset(Store(test_store), spec.channels, card.extra["input_size"])
    spread = []
    with torch.no_grad():
        for i in range(len(ds.items)):
            f = model.backbone.encode_channels(ds[i]["image"][None])[-1].flatten(0, 1)
            tok = model._tokens(f.flatten(2), tuple(f.shape[2:]))
            spread.append(float((model.attention.weights(tok).amax(1) * tok.shape[1]).mean()))
    return sum(spread) / len(spread)


def main(argv: list[str] | None = None) -> int:
    args = suite_args(__doc__, RESULT, argv)
    from brainfoundry.bench.runner import run_suite
    from brainfoundry.bench.suite import load_suite

    t0 = time.perf_counter()
    body, est = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, data) in VARIANTS.items():
            for i, (row, ft) in enumerate(POOLS.items()):
                per_key = "finetune.per_key={infarct: [" + ", ".join(ft) + "]}"
                suite = load_suite(SUITE, [*BASE, *data, per_key])
                work = (args.work or Path(tmp)) / f"{name}_{i}"
                run_suite(suite, work, log=lambda s: print(s, file=sys.stderr), progress=False)
                (cell,) = suite.cells()
                rec = json.loads((work / cell.path / "done.json").read_text())
                seed_dir = work / cell.path / "seed_0"
                card = json.loads((seed_dir / "card.json").read_text())["extra"]
                m = rec["metrics"]["auroc"]
                spread = "-"
                if "attention" in row:
                    spread = f"{attention_spread(seed_dir, work / 'store/infarct/test'):.2f}"
                body.append([name, row, estimate_ci(m), card["step"],
                             f"{card['val_metrics']['auroc']:.3f}", spread,
                             f"{rec['finetune_seconds']:.0f}"])  # fmt: skip
                est[(name, row)] = m
    prose = []
    rows = list(POOLS)
    for name, (what, _) in VARIANTS.items():
        a, b, c = (est[(name, r)] for r in rows)
        apart = b["hi"] < c["lo"] or c["hi"] < b["lo"]
        prose.append(
            f"- {name}, {what}: probe {a['estimate']:.3f}; 120 steps meanmax "
            f"{b['estimate']:.3f}, attention {c['estimate']:.3f} (difference "
            f"{c['estimate'] - b['estimate']:+.3f}; the CIs {'are apart' if apart else 'overlap'})."
        )  # fmt: skip
    header = ["data", "pooling", "test AUROC [95% CI]", "kept step", "val AUROC (8 cases)",
              "attention max weight × slices", "fine-tune s"]  # fmt: skip
    note = "16 shots, seed 0, 40 shifted test cases per variant, 95% bootstrap CIs over test cases."
    write_suite_result("bench_pool", __doc__, note, TITLE, header, body, prose, args.out, t0, argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
