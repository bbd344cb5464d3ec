"""K-fold assignment for cross-validation: grouped by subject, stratified by class.

Every session of a subject falls in one fold, so no subject is trained on and scored in the
same fold (its sessions are not independent cases). Subjects are placed greedily, in a seeded
order with the largest first, each into the fold where its classes are least represented
relative to their totals (classification), or simply the smallest fold (one stratum for
regression and segmentation); ties go to the smallest fold. The same idea as scikit-learn's
StratifiedGroupKFold, kept here in a few lines so the package does not depend on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError


def assign_folds(cases: pd.DataFrame, k: int, seed: int, stratify: bool) -> dict[str, int]:
    """{session key: fold 0..k-1} for the case table's `key`, `case` (subject), `label`."""
    subjects = sorted(set(cases["case"]))
    if k < 2 or k > len(subjects):
        raise ConfigError(
            f"--folds {k}: need 2 <= folds <= {len(subjects)} (the number of subjects)"
        )
    labels = cases["label"].to_numpy() if stratify else np.zeros(len(cases))
    classes = sorted(set(labels.tolist()))
    col = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(subjects), len(classes)))
    row = {s: i for i, s in enumerate(subjects)}
    for subject, label in zip(cases["case"], labels):
        counts[row[subject], col[label]] += 1
    totals = counts.sum(axis=0)
    shuffled = np.random.default_rng(seed).permutation(len(subjects)).tolist()
    order = sorted(shuffled, key=lambda i: -counts[i].sum())  # stable: seeded among equal sizes
    fold_counts = np.zeros((k, len(classes)))
    fold_of: dict[str, int] = {}
    for i in order:
        cost = (fold_counts / totals) @ (counts[i] / totals)  # share of its classes already there
        size = fold_counts.sum(axis=1)
        best = min(range(k), key=lambda f: (round(float(cost[f]), 12), size[f], f))
        fold_counts[best] += counts[i]
        fold_of[subjects[i]] = best
    return {str(key): fold_of[s] for key, s in zip(cases["key"], cases["case"])}


def fold_warnings(cases: pd.DataFrame, fold_of: dict[str, int], k: int, stratify: bool) -> list:
    """What makes a held-out fold weaker than the others, said: a class missing from it (its
    AUROC is then undefined and left out of the mean over folds)."""
    if not stratify:
        return []
    out = []
    folds = cases["key"].map(fold_of)
    for c in sorted(set(cases["label"].tolist())):
        missing = sorted(set(range(k)) - set(folds[cases["label"] == c]))
        if missing:
            n = int(cases.loc[cases["label"] == c, "case"].nunique())
            out.append(f"class {c} has {n} subject(s) for {k} folds: held-out fold(s) "
                       f"{missing} have none, so metrics needing both classes are undefined "
                       "there")  # fmt: skip
    return out
