"""FOMO25-style ranking of several runs (models, methods, checkpoints) across tasks.

The challenge's rule (FACTS.md): within a task, rank the runs on each metric; a run's task rank
is the mean of its metric ranks; its overall score is the mean of its task ranks, and a run that
did not submit a task gets that task's worst rank + 1. Ties share the average of the ranks they
span (two runs tied for first both get 1.5), at every level.

Decisions the rule leaves open, taken here and tested:
- "worst rank" is the largest task rank any participating run received, so a missing task
  scores just behind the worst participant.
- a run that took part in a task but lacks one of its metrics (or has NaN) gets that metric's
  worst rank + 1, the same rule one level down.
- several rows for one (run, task, metric), e.g. seeds, are averaged before ranking.
- the final `rank` ranks the overall score (lower is better), ties averaged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import canonical_name
from .metrics import higher_is_better as _default_direction

COLUMNS = ("run", "task", "metric", "value")


def _tidy(results: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in results.columns]
    if missing:
        raise ValueError(
            f"ranking needs a tidy table with columns {list(COLUMNS)}; missing {missing}"
        )
    df = results.loc[:, list(COLUMNS)].copy()
    df["value"] = pd.to_numeric(df["value"], errors="raise").astype(float)
    return df.groupby(["run", "task", "metric"], as_index=False, sort=True)["value"].mean()


def _direction(metric: str, overrides: dict[str, bool] | None) -> bool:
    if overrides:
        for key in (metric, canonical_name(metric)):
            if key in overrides:
                return bool(overrides[key])
    return _default_direction(metric)


def _rank_or_worst(values: pd.Series, ascending: bool) -> pd.Series:
    """Average ranks of the defined values; undefined ones get worst rank + 1."""
    ranks = values.rank(method="average", ascending=ascending)
    worst = ranks.max() if ranks.notna().any() else 0.0
    return ranks.fillna(worst + 1)


def metric_ranks(
    results: pd.DataFrame, higher_is_better: dict[str, bool] | None = None
) -> pd.DataFrame:
    """Rank of every run on every metric within each task it took part in.

    Returns the tidy table (one row per run, task, metric, duplicates averaged) with a `rank`
    column (1 = best). Directions come from `metrics.HIGHER_IS_BETTER` unless overridden.
    """
    df = _tidy(results)
    parts = []
    for task, sub in df.groupby("task", sort=True):
        wide = sub.pivot(index="run", columns="metric", values="value")
        for metric in wide.columns:
            asc = not _direction(metric, higher_is_better)
            r = _rank_or_worst(wide[metric], ascending=asc)
            parts.append(
                pd.DataFrame(
                    {
                        "run": wide.index,
                        "task": task,
                        "metric": metric,
                        "value": wide[metric].to_numpy(),
                        "rank": r.to_numpy(),
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=[*COLUMNS, "rank"])
    return pd.concat(parts, ignore_index=True)


def fomo25_ranking(
    results: pd.DataFrame,
    tasks: list[str] | None = None,
    higher_is_better: dict[str, bool] | None = None,
) -> pd.DataFrame:
    """Rank runs FOMO25-style from a tidy (run, task, metric, value) table.

    `tasks` names the tasks every run is judged on (default: all tasks in the table); a task
    listed that no run took part in ranks every run equal. Returns one row per run (index
    `run`), sorted best first, with one column per task holding the task rank, `mean_rank`
    (the mean of task ranks, the challenge's overall score) and `rank` (its position, 1 best).
    """
    ranks = metric_ranks(results, higher_is_better)
    runs = sorted(pd.unique(_tidy(results)["run"]))
    if tasks is None:
        tasks = sorted(pd.unique(ranks["task"])) if len(ranks) else []
    unknown = sorted(set(ranks["task"]) - set(tasks))
    if unknown:
        raise ValueError(f"results hold tasks {unknown} not among tasks={list(tasks)}")
    if not runs or not tasks:
        raise ValueError("ranking needs at least one run and one task")
    table = pd.DataFrame(index=pd.Index(runs, name="run"))
    for task in tasks:
        task_rank = ranks[ranks["task"] == task].groupby("run")["rank"].mean()
        task_rank = task_rank.reindex(runs)
        worst = task_rank.max() if task_rank.notna().any() else 0.0
        table[task] = task_rank.fillna(worst + 1)
    table["mean_rank"] = table[list(tasks)].mean(axis=1)
    table["rank"] = table["mean_rank"].rank(method="average")
    order = np.lexsort((table.index.to_numpy(), table["rank"].to_numpy()))
    return table.iloc[order]


# FOMO26's unified ranking (FACTS.md): the weight of each task's rank in the overall score
FOMO26_WEIGHTS = {
    "fomo26-infarct": 0.10,
    "fomo26-meningioma": 0.25,
    "fomo26-brainage": 0.10,
    "fomo26-trigeminal": 0.25,
    "fomo26-polymicrogyria": 0.10,
    "fomo26-probe": 0.10,
    "fomo26-fairness": 0.10,
}


def fomo26_ranking(
    results: pd.DataFrame,
    weights: dict[str, float] | None = None,
    higher_is_better: dict[str, bool] | None = None,
) -> pd.DataFrame:
    """Rank runs FOMO26-style: task ranks exactly as `fomo25_ranking` (metric ranks averaged
    within a task, a missing task the worst rank + 1), then the overall score is the weighted
    mean of the task ranks (`weights`, default `FOMO26_WEIGHTS`: 25% each for the two
    segmentation tasks, 10% for the others; renormalised over the tasks judged). Returns one
    row per run, best first: the task ranks, `weighted_rank` and `rank`."""
    weights = dict(FOMO26_WEIGHTS if weights is None else weights)
    present = sorted(pd.unique(_tidy(results)["task"]))
    unknown = [t for t in present if t not in weights]
    if unknown:
        raise ValueError(f"no FOMO26 weight for tasks {unknown}; weights name {sorted(weights)}")
    tasks = [t for t in weights if weights[t] > 0]
    table = fomo25_ranking(results, tasks=tasks, higher_is_better=higher_is_better)
    w = np.array([weights[t] for t in tasks], float)
    table["weighted_rank"] = table[tasks].to_numpy(float) @ (w / w.sum())
    table = table.drop(columns=["mean_rank", "rank"])
    table["rank"] = table["weighted_rank"].rank(method="average")
    order = np.lexsort((table.index.to_numpy(), table["rank"].to_numpy()))
    return table.iloc[order]
