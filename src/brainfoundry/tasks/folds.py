"""K-fold assignment for cross-validation: grouped by subject, stratified by class.

Every session of a subject falls in one fold, so no subject is trained on and scored in the
same fold (its sessions are not independent cases). scikit-learn does the assignment:
`StratifiedGroupKFold` for a class label, `GroupKFold` (shuffled) otherwise, both seeded.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from ..errors import ConfigError


def assign_folds(cases: pd.DataFrame, k: int, seed: int, stratify: bool) -> dict[str, int]:
    """{session key: fold 0..k-1} for the case table's `key`, `case` (subject), `label`."""
    n_subjects = cases["case"].nunique()
    if k < 2 or k > n_subjects:
        raise ConfigError(f"--folds {k}: need 2 <= folds <= {n_subjects} (the number of subjects)")
    groups = cases["case"].to_numpy()
    if stratify:
        splitter: GroupKFold | StratifiedGroupKFold = StratifiedGroupKFold(
            n_splits=k, shuffle=True, random_state=seed
        )
        y = cases["label"].to_numpy().astype(int)
    else:
        splitter, y = GroupKFold(n_splits=k, shuffle=True, random_state=seed), np.zeros(len(cases))
    fold = np.empty(len(cases), int)
    with warnings.catch_warnings():  # a class rarer than k: said by `fold_warnings` instead
        warnings.simplefilter("ignore", UserWarning)
        for f, (_, held) in enumerate(splitter.split(np.zeros(len(cases)), y, groups)):
            fold[held] = f
    return {str(key): int(f) for key, f in zip(cases["key"], fold)}


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
