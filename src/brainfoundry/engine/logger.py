"""Metrics to `log.csv` (always) and TensorBoard (when installed), rank 0 only."""

from __future__ import annotations

import csv
from pathlib import Path


class RunLogger:
    def __init__(self, run_dir: Path, start_step: int, enabled: bool = True):
        self.enabled = enabled
        self.path = run_dir / "log.csv"
        self.tb = None
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
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step)
        except ImportError:  # tensorboard is optional: CSV is the record
            self.tb = None

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **values}
        new = self.fields is None
        if new:
            self.fields = list(row)
        assert self.fields is not None  # set above on the first row
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
