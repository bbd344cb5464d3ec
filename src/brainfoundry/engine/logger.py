"""Metrics to `log.csv` (always) and the trackers `train.loggers` names (TensorBoard by
default; MLflow, W&B: `engine/trackers.py`), rank 0 only."""

from __future__ import annotations

import csv
from pathlib import Path

from .config import OptimConfig, TrainConfig
from .trackers import Tracker, TrackerContext, create_trackers, flat_params


class RunLogger:
    def __init__(
        self,
        run_dir: Path,
        start_step: int,
        enabled: bool = True,
        train: TrainConfig | None = None,
        optim: OptimConfig | None = None,
    ):
        self.enabled = enabled
        self.path = run_dir / "log.csv"
        self.trackers: list[Tracker] = []
        self.fields: list[str] | None = None
        if not enabled:
            return
        if self.path.exists():  # resume: drop rows past the checkpoint we restart from
            with open(self.path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= start_step]
            if rows:
                self.fields = list(rows[0])
                with open(self.path, "w", newline="") as fh:
                    w = csv.DictWriter(fh, self.fields)
                    w.writeheader()
                    w.writerows(rows)
            else:
                self.path.unlink()
        train = train or TrainConfig()
        ctx = TrackerContext(run_dir, start_step, train.experiment,
                             run_params(run_dir, train, optim), train.mlflow_uri)  # fmt: skip
        self.trackers = create_trackers(list(train.loggers), ctx)

    def log(self, step: int, values: dict[str, float]) -> None:
        """One row of log.csv; a name no earlier row had (a metric logged only every N steps)
        becomes a new column, empty in the rows before it."""
        if not self.enabled:
            return
        row = {"step": step, **values}
        new = self.fields is None
        if not new and set(row) - set(self.fields or []):
            self._add_columns([k for k in row if k not in (self.fields or [])])
        if new:
            self.fields = list(row)
        assert self.fields is not None  # set above on the first row
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, self.fields, restval="")
            if new:
                w.writeheader()
            w.writerow(row)
        for tracker in self.trackers:
            tracker.log(step, values)

    def _add_columns(self, names: list[str]) -> None:
        """Rewrite log.csv with `names` appended to its header (rare: once per new metric)."""
        with open(self.path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        self.fields = [*(self.fields or []), *names]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, self.fields, restval="")
            w.writeheader()
            w.writerows(rows)
        tmp.replace(self.path)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


def run_params(run_dir: Path, train: TrainConfig, optim: OptimConfig | None) -> dict:
    """The parameters trackers record: the run's resolved config.yaml (pretraining and
    fine-tuning write it before training), else the loop's own settings."""
    import yaml

    from ..config import to_dict

    path = run_dir / "config.yaml"
    if path.is_file():
        loaded = yaml.safe_load(path.read_text())
        if isinstance(loaded, dict):
            return flat_params(loaded)
    return flat_params({"train": to_dict(train), "optim": to_dict(optim or OptimConfig())})
