"""Multi-target predictions tables: one home for how several named regression targets sit in
one table, so that scoring, the report and validation read them the same way.

A multi-target table has, per target `t`, the columns `label:t` (truth; NaN = the case lacks
it), `pred:t`, and optionally `sigma:t`, `lo:t`, `hi:t`. Each target is scored as a plain
regression table of the cases that have it, and its metrics are named `<metric>:<t>`.
"""

from __future__ import annotations

import pandas as pd

PARTS = ("label", "pred", "sigma", "lo", "hi")


def column(part: str, target: str) -> str:
    """The column of `part` (label, pred, sigma, lo, hi) of `target`: `part:target`."""
    return f"{part}:{target}"


def metric_name(metric: str, target: str) -> str:
    """A target's metric in a summary or validation record: `<metric>:<target>`."""
    return f"{metric}:{target}"


def target_names(df: pd.DataFrame) -> list[str]:
    """The targets of a multi-target table, in column order (from its `pred:` columns)."""
    return [str(c).split(":", 1)[1] for c in df.columns if str(c).startswith("pred:")]


def target_table(df: pd.DataFrame, target: str) -> pd.DataFrame:
    """The plain regression table of one target (label, pred, sigma, lo, hi), only the cases
    whose truth is known; other columns (case, key) are kept."""
    mine = {column(p, target): p for p in PARTS if column(p, target) in df.columns}
    other = [c for c in df.columns if ":" not in str(c) and c not in PARTS]
    out = df[other + list(mine)].rename(columns=mine)
    return out[out["label"].notna()].reset_index(drop=True) if "label" in out else out
