"""Resume a run folder only with the configuration it was started with, and restart one without
losing it.

A run folder holds the resolved `config.yaml` it was started with. Resuming it with another
configuration would silently mix two experiments in one set of weights and logs, so it is
refused with the fields that differ (dotted names, old → new). `--restart` moves the old run
aside (RUN.old-1, RUN.old-2, …; never deleted) and starts afresh.

Fields that change how a run is shown or fed, never what it computes, are listed once here
(`IGNORED`) and never block a resume.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .config import _deep_merge, dump_yaml, read_yaml_mapping
from .errors import ConfigError

# each is deterministic by construction (engine/loop.py): workers only load, every sample
# carries its own seed; logging and the progress bar only show; old checkpoints only take disk
IGNORED: frozenset[str] = frozenset(
    {"train.progress", "train.log_every", "train.num_workers", "train.keep_checkpoints",
     # experiment trackers only record (engine/trackers.py); a resume may switch them
     "train.loggers", "train.experiment", "train.mlflow_uri",
     # pretraining's health metrics and online probe only observe (ssl/monitor.py): eval mode,
     # no random numbers, the loss curve is identical with them on or off (tested)
     "monitor.health_every", "monitor.online_probe.store", "monitor.online_probe.task",
     "monitor.online_probe.every"}
)  # fmt: skip
ABSENT = "(absent)"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted name: leaf value} of a nested mapping (lists are leaves)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_changes(old: dict, new: dict, ignore: frozenset[str] = IGNORED) -> list[str]:
    """`name: old → new` for every field whose value differs, in the new config's order."""
    a, b = flatten(old), flatten(new)
    names = list(b) + [k for k in a if k not in b]
    out = []
    for name in names:
        if name in ignore:
            continue
        va, vb = a.get(name, ABSENT), b.get(name, ABSENT)
        if va != vb:
            out.append(f"{name}: {_show(va)} → {_show(vb)}")
    return out


def _show(v: Any) -> str:
    return v if v == ABSENT else repr(v)


def changes_since(path: Path, cfg: Any) -> list[str]:
    """How `cfg` differs from the config saved at `path`. Fields an older config file lacks
    take the dataclass defaults, so a field added since is not a change."""
    saved = read_yaml_mapping(path, "run config", "expected a mapping at top level") or {}
    defaults = yaml.safe_load(dump_yaml(type(cfg)()))
    return config_changes(_deep_merge(defaults, saved), yaml.safe_load(dump_yaml(cfg)))


def check_resume(path: str | Path, cfg: Any) -> None:
    """Nothing when there is no saved config at `path` or it matches `cfg`; otherwise one
    ConfigError naming the run folder and every field that differs."""
    path = Path(path)
    if not path.is_file():
        return
    changes = changes_since(path, cfg)
    if changes:
        raise ConfigError(
            f"{path.parent}: this run was started with another configuration ("
            + "; ".join(changes)
            + "); rerun with its settings to resume it, or pass --restart to start afresh "
            "(the old run is kept beside it as .old-N)"
        )


def archive_run(run_dir: str | Path) -> Path | None:
    """Move a non-empty `run_dir` to the first free `run_dir.old-N` (one atomic rename on the
    same file system); returns the new name, or None when there was nothing to keep."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return None
    n = 1
    while run_dir.with_name(f"{run_dir.name}.old-{n}").exists():
        n += 1
    target = run_dir.with_name(f"{run_dir.name}.old-{n}")
    os.rename(run_dir, target)
    return target
