"""The headline "pretrained vs scratch" row: its objective is chosen on validation data (never
the test set), and with several seeds its CI is a hierarchical bootstrap, not a union of
per-seed intervals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from brainfoundry.bench.analysis import verdict
from brainfoundry.bench.suite import load_suite
from brainfoundry.evaluation.scoring import paired_diff, paired_diff_seeds


def _cell(out, cell, prob: np.ndarray, label: np.ndarray, val_auroc: float) -> None:
    d = out / cell.path / f"seed_{cell.seed}"
    d.mkdir(parents=True)
    cases = [f"sub_{i}" for i in range(len(label))]
    pd.DataFrame({"case": cases, "label": label, "prob": prob}).to_csv(
        d / "predictions.csv", index=False
    )
    (d / "val_metrics.json").write_text(json.dumps({"step": 0, "metrics": {"auroc": val_auroc}}))
    (out / cell.path / "done.json").write_text(json.dumps({"metrics": {}, "n_test": len(label)}))


def _suite(seeds):
    return load_suite("demo", ["objectives=[scratch,mae,contrastive]", "tasks=[infarct]",
                               f"seeds={seeds}", "n_boot=300"])  # fmt: skip


def test_objective_is_chosen_on_validation_not_on_test(tmp_path):
    rng = np.random.default_rng(0)
    label = np.repeat([0, 1], 20)
    noise = rng.random(40)
    test_prob = {"scratch": noise, "mae": 0.3 * label + noise, "contrastive": 0.9 * label + noise}
    val = {"scratch": 0.6, "mae": 0.9, "contrastive": 0.55}  # mae wins on validation only
    suite = _suite("[0]")
    for cell in suite.cells():
        _cell(tmp_path, cell, test_prob[cell.objective], label, val[cell.objective])
    row = verdict(suite, tmp_path).iloc[0]
    assert row["chosen on validation"] == "mae" and row["validation"] == 0.9
    path = {c.objective: tmp_path / c.path / "seed_0" / "predictions.csv" for c in suite.cells()}
    a, b = pd.read_csv(path["mae"]), pd.read_csv(path["scratch"])
    direct = paired_diff("classification", "auroc", a, b, n_boot=300)
    assert row["gain vs scratch (test)"] == direct.diff  # mae's own gain, not contrastive's
    assert row["CI"] == "paired bootstrap over test cases"


def test_several_seeds_give_a_hierarchical_ci_over_seeds_and_cases():
    rng = np.random.default_rng(1)
    label = np.repeat([0, 1], 50)
    base = rng.random(100)
    pairs = []
    for effect in (0.6, -0.6):  # one seed helps, the other hurts: no consistent gain
        a = pd.DataFrame({"label": label, "prob": base + effect * label})
        pairs.append((a, pd.DataFrame({"label": label, "prob": base})))
    d = paired_diff_seeds("classification", "auroc", pairs, n_boot=500)
    per_seed = [paired_diff("classification", "auroc", a, b, n_boot=500) for a, b in pairs]
    assert d.diff == np.mean([p.diff for p in per_seed])
    assert per_seed[0].lo > 0 and per_seed[1].hi < 0  # each seed alone is decisive
    assert d.lo < 0 < d.hi  # seed-to-seed spread is in the CI: no claim either way
    assert d.hi - d.lo > per_seed[0].hi - per_seed[0].lo
