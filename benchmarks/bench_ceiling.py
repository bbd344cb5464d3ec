"""Ceiling references for the few-shot numbers, on the demo suite's shifted test sets:

1. supervised from scratch on 8x the cases (128), all from the source domain, with the demo's
   recipe (in the spirit of FOMO25's in-domain supervised baseline). The generator draws the
   test cases from their own seeds, so the test sets are the demo's cases;
2. hand-made statistics with no learning at all (infarct: the share of brain voxels bright on
   DWI and dark on ADC, restricted diffusion, per threshold), or a ridge on a handful of them
   fitted on 16 source cases drawn as the demo draws them (brain age: the tissue-histogram quantiles
   of the z-scored T1 and T2), or a logistic regression on nine cross-sequence quantiles fitted on
   16 infarct source cases (how far a learned 16-case fit on features that name the
   lesion gets, against the encoder's).

    python -m benchmarks.bench_ceiling --out benchmarks/results/ceiling.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import estimate_ci, reproduce_command, table, write_result

RESULT = Path("benchmarks/results/ceiling.md")
TASKS = ("infarct", "meningioma", "brainage")


def _primary() -> dict[str, str]:
    """Each task's primary metric, from its spec."""
    from brainfoundry.tasks import get_task

    return {t: get_task(t).primary_metric for t in TASKS}


SHOTS, FACTOR = 16, 8


def supervised(work: Path, log=print) -> dict[str, dict]:
    """The demo suite, scratch only, with 8x the training cases."""
    from brainfoundry.bench.runner import run_suite
    from brainfoundry.bench.suite import load_suite

    n = SHOTS * FACTOR
    suite = load_suite("demo", [
        f"data.synth.finetune_cases={n + 12}", f"shots=[{n}]", "objectives=[scratch]",
    ])  # fmt: skip
    run_suite(suite, work, log=log, progress=False)
    out = {}
    for task in TASKS:
        done = next((work / "cells" / task).glob(f"*/scratch/shots_{n}/seed_0/done.json"))
        out[task] = json.loads(done.read_text())["metrics"]
    return out


def _features(store, channels) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from brainfoundry.data.volume_dataset import VolumeDataset, auto_shape

    ds = VolumeDataset(store, channels, auto_shape(store))
    rows, labels = [], []
    for i in range(len(ds.items)):
        s = ds[i]
        x = s["image"].numpy().astype(np.float32)
        m = (x != 0).any(0)
        rows.append([x[c][m] for c in range(len(x))])
        labels.append(float(s["label"]))
    return rows, np.array(labels), [it.key for it in ds.items]


def handmade(demo: Path) -> dict[str, dict]:
    """Statistics on z-scored copies of the demo's task data (prepared here)."""
    from brainfoundry.evaluation.metrics import METRICS
    from brainfoundry.evaluation.statistics import bootstrap_ci
    from brainfoundry.tasks.data import (
        case_table,
        few_shot_split,
        prepare_task_data,
        preprocess_config,
    )
    from brainfoundry.tasks.probe import ridge_loo
    from brainfoundry.tasks.spec import get_task

    out: dict[str, dict] = {}
    pre = preprocess_config([4, 4, 4], {"normalization": "zscore"})
    stores = {}
    for task in ("infarct", "brainage"):
        for split in ("finetune", "test"):
            src = demo / "data" / task / split
            stores[task, split] = prepare_task_data(src, demo / "zstore" / task / split, pre)
    spec = get_task("infarct")
    vox, y, _ = _features(stores["infarct", "test"], spec.channels)
    for th in (1.5, 2.0, 2.5, 3.0):
        score = np.array([np.mean((v[1] > th) & (v[2] < -th / 2)) for v in vox])
        ci = bootstrap_ci(METRICS.get("auroc"), y, score, n=1000)
        out[f"infarct: share of voxels with DWI z > {th} and ADC z < {-th / 2}"] = {
            "metric": "auroc", "estimate": ci.estimate, "lo": ci.lo, "hi": ci.hi,
        }  # fmt: skip
    out.update(_infarct_learned(stores))
    spec = get_task("brainage")
    qs = (5, 10, 25, 50, 75, 90, 95)

    def feats(vox):
        return np.array([np.concatenate([np.percentile(c, qs) for c in v]) for v in vox])

    ft_vox, ft_y, ft_keys = _features(stores["brainage", "finetune"], spec.channels)
    te_vox, te_y, _ = _features(stores["brainage", "test"], spec.channels)
    cases = case_table(stores["brainage", "finetune"], spec)
    split = few_shot_split(cases, SHOTS, 0, stratify=False, n_val=12)
    idx = [ft_keys.index(k) for k in split["train"]]
    x, t = feats([ft_vox[i] for i in idx]), ft_y[idx]
    mu, sd = t.mean(), t.std()
    fit = ridge_loo(x, (t - mu) / sd)
    xt = feats(te_vox)
    pred = (xt @ fit["w"] + fit["b"]) * sd + mu
    corr = np.array([np.corrcoef(xt[:, j], te_y)[0, 1] for j in range(xt.shape[1])])
    key = "brain age: ridge on 7 quantiles of z-scored T1 and T2 (16 source cases)"
    out[key] = {"metric": "mae", "estimate": float(np.mean(np.abs(pred - te_y)))}
    out[key + ", Pearson r"] = {"metric": "pearson_r",
                                "estimate": float(np.corrcoef(pred, te_y)[0, 1])}  # fmt: skip
    out["brain age: best single quantile's absolute r with age on the test set (no fit)"] = {
        "metric": "abs pearson_r", "estimate": float(np.nanmax(np.abs(corr))),
    }  # fmt: skip
    return out


def _contrasts(v: list[np.ndarray]) -> np.ndarray:
    """Nine cross-sequence statistics of one case's brain voxels (z-scored FLAIR, DWI, ADC;
    an optional fourth sequence is not used):
    the upper quantiles of DWI − ADC, FLAIR − ADC and min(DWI, −ADC). A marginal quantile
    says nothing under a per-scan normalisation; these say where one sequence is bright and
    another dark at the same voxel."""
    flair, dwi, adc = v[:3]
    parts = [np.quantile(dwi - adc, [0.99, 0.995, 0.999, 1.0]),
             np.quantile(flair - adc, [0.995, 0.999]),
             np.quantile(np.minimum(dwi, -adc), [0.995, 0.999, 1.0])]  # fmt: skip
    return np.concatenate(parts)


def _infarct_learned(stores: dict) -> dict[str, dict]:
    """A logistic regression on `_contrasts`, fitted on 16 source cases (a stratified draw, seed 0,
    as a cell draws them), its L2 strength picked by 4-fold cross-validated log loss
    on those 16 alone; tested on the shifted set."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from brainfoundry.evaluation.metrics import METRICS
    from brainfoundry.evaluation.statistics import bootstrap_ci
    from brainfoundry.tasks.data import case_table, few_shot_split
    from brainfoundry.tasks.spec import get_task

    spec = get_task("infarct")
    assert tuple(spec.channels[:3]) == ("flair", "dwi_b1000", "adc"), spec.channels
    ft_vox, ft_y, ft_keys = _features(stores["infarct", "finetune"], spec.channels)
    te_vox, te_y, _ = _features(stores["infarct", "test"], spec.channels)
    split = few_shot_split(case_table(stores["infarct", "finetune"], spec), SHOTS, 0,
                           stratify=True, n_val=8)  # fmt: skip
    idx = [ft_keys.index(k) for k in split["train"]]
    x, t = np.array([_contrasts(ft_vox[i]) for i in idx]), ft_y[idx]
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    lr = LogisticRegressionCV(Cs=np.logspace(-3, 2, 11), cv=cv, scoring="neg_log_loss",
                              max_iter=5000)  # fmt: skip
    fit = make_pipeline(StandardScaler(), lr).fit(x, t)
    score = fit.decision_function(np.array([_contrasts(v) for v in te_vox]))
    ci = bootstrap_ci(METRICS.get("auroc"), te_y, score, n=1000)
    c = float(fit[-1].C_[0])
    key = f"infarct: logistic regression on 9 cross-sequence quantiles (16 source cases, C {c:.3g})"
    return {key: {"metric": "auroc", "estimate": ci.estimate, "lo": ci.lo, "hi": ci.hi}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--work", type=Path, default=None, help="keep the suite folder here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        sup = supervised(work / "supervised")
        hand = handmade(work / "supervised")
    primary = _primary()
    rows = [[f"supervised from scratch, {SHOTS * FACTOR} source cases", t, primary[t],
             estimate_ci(sup[t][primary[t]])] for t in TASKS]  # fmt: skip
    rows += [[name, "", m["metric"], estimate_ci(m)] for name, m in hand.items()]
    cmd = reproduce_command("bench_ceiling", sys.argv[1:] if argv is None else argv)
    intro = (
        "What the few-shot models could reach: the demo's recipe with 8x the source-domain "
        "training cases, and hand-made statistics. Estimate [95% bootstrap CI over test cases] "
        "where the evaluation gives one. Every infarct threshold is shown: the best of them is "
        "picked on the test set, so read it as an upper bound."
    )
    seconds = time.perf_counter() - t0
    write_result(
        args.out,
        "Ceiling references (demo data, shifted test sets of 40 cases)",
        intro,
        table(["reference", "task", "metric", "test"], rows),
        seconds,
        cmd,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
