"""A suite's own task data instead of generated data (`data.tasks`, or `bench --data`).

Each task names one path: a folder holding `finetune/` and `test/` (FOMO folders, CSV
manifests as `finetune.csv` / `test.csv`, or BIDS trees), or one CSV manifest with a `split`
column (finetune / test). Fine-tuning reads the first part and evaluation the second, as
`finetune` and `evaluate` do with the same path; both parts are checked before any work.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from ..tasks.sources import ROLES, Role, TaskSource, task_source
from ..tasks.spec import get_task


def task_part(task: str, path: Path, role: Role) -> TaskSource:
    """The checked data of one part (finetune or test) of a task's own data; a path that holds
    no such split is refused (fine-tuning and testing on the same cases is no benchmark)."""
    src = task_source(path, get_task(task), role, log=lambda _: None)
    if src.part != role:
        raise ConfigError(
            f"data.tasks.{task}: {path} holds no finetune/test split: give a folder holding "
            "finetune/ and test/ (folders or .csv manifests), or a CSV manifest with a split "
            "column (finetune / test)"
        )
    return src


def check_task_data(tasks: dict[str, Path]) -> None:
    """Every part of every task's data, checked up front (before any pretraining)."""
    for task, path in tasks.items():
        if not path.exists():
            raise ConfigError(f"data.tasks.{task}: {path} does not exist")
        for role in ROLES:
            task_part(task, path, role)


def data_overrides(suite: str, overrides: list[str], data: list[str]) -> list[str]:
    """Suite overrides for `bench --data [TASK=]PATH ...`: the tasks given, on their data, in
    place of generated data. TASK may be left out when the suite has one task."""
    if not data:
        return []
    from .suite import load_suite

    base = load_suite(suite, overrides)
    given: dict[str, str] = {}
    for item in data:
        task, sep, path = item.partition("=")
        if not sep:
            if len(base.tasks) != 1:
                raise ConfigError(f"--data {item}: the suite has tasks {base.tasks}; say which "
                                  f"one this data is for: --data TASK={item}")  # fmt: skip
            task, path = base.tasks[0], item
        given[task] = str(Path(path).expanduser().resolve())
    needs = [o for o in base.objectives if o != "scratch"]
    if needs and not base.data.pretrain:
        raise ConfigError(
            f"--data: objectives {needs} pretrain first: give a corpus with data.pretrain=DIR, "
            "or fine-tune from scratch only: objectives=[scratch]"
        )
    return [
        "data.synth=null",
        f"data.tasks={json.dumps(given)}",
        f"tasks={json.dumps(list(given))}",
    ]
