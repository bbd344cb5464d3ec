"""Experiment trackers, beside `log.csv` (always written): TensorBoard (the default), MLflow and
Weights & Biases, chosen by `train.loggers` (e.g. `train.loggers=[tensorboard,mlflow]`).

MLflow and W&B are optional (`pip install "brainfoundry[trackers]"`) and off unless named; a
named one whose package is missing is one error naming the install command. Both work without a
server: MLflow writes a local file store, `RUN/mlruns` unless `train.mlflow_uri` names another
store; W&B honours `WANDB_MODE=offline` and writes `RUN/wandb/offline-run-*` for `wandb sync`.
A resumed run continues the same tracker run: the ids are kept in `RUN/trackers.json`. Add a
tracker with `@TRACKERS.register("name")`: a class taking a `TrackerContext`, with `log` and
`close`. Only rank 0 creates trackers (`RunLogger`).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ConfigError
from ..registry import Registry

IDS = "trackers.json"
INSTALL = "pip install 'brainfoundry[trackers]'"


@dataclass
class TrackerContext:
    """What a tracker is told about the run it records."""

    run_dir: Path
    start_step: int = 0
    experiment: str = "brainfoundry"  # MLflow experiment / W&B project
    params: dict[str, Any] = field(default_factory=dict)  # flat {"train.steps": 200, ...}
    mlflow_uri: str | None = None


class Tracker:
    """A metrics sink: `log(step, {name: value})` at every logging step, `close()` at the end."""

    def log(self, step: int, values: dict[str, float]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


TRACKERS: Registry[Tracker] = Registry("tracker")


def require(module: str, package: str, tracker: str) -> ModuleType:
    """Import an optional tracker package, or fail with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(
            f"train.loggers names {tracker}, which needs the {package} package: {INSTALL} "
            f"(or pip install {package})"
        ) from e


def _ids(run_dir: Path) -> dict[str, Any]:
    path = run_dir / IDS
    return json.loads(path.read_text()) if path.is_file() else {}


def _keep_id(run_dir: Path, tracker: str, value: dict[str, Any]) -> None:
    from ..io.atomic import atomic_write_text

    atomic_write_text(run_dir / IDS, json.dumps({**_ids(run_dir), tracker: value}, indent=2))


@TRACKERS.register("tensorboard")
class TensorBoard(Tracker):
    """Scalars under RUN/tb; a resumed run drops the events past its checkpoint (purge_step)."""

    def __init__(self, ctx: TrackerContext):
        tb = require("torch.utils.tensorboard", "tensorboard", "tensorboard")
        self.writer = tb.SummaryWriter(str(ctx.run_dir / "tb"), purge_step=ctx.start_step)

    def log(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        self.writer.close()


@TRACKERS.register("mlflow")
class MLflow(Tracker):
    """One MLflow run per run folder, in experiment `train.experiment`, parameters logged once.

    MLflow 3 keeps its file store in maintenance mode behind `MLFLOW_ALLOW_FILE_STORE`; a
    `file:` store is what was asked for here, so that opt-in is set for this process."""

    def __init__(self, ctx: TrackerContext):
        uri = ctx.mlflow_uri or (ctx.run_dir / "mlruns").resolve().as_uri()
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        tracking = require("mlflow.tracking", "mlflow-skinny", "mlflow")
        self.entities = require("mlflow.entities", "mlflow-skinny", "mlflow")
        self.client = tracking.MlflowClient(tracking_uri=uri)
        self.run_id = self._run_id(ctx, uri)

    def _run_id(self, ctx: TrackerContext, uri: str) -> str:
        kept = _ids(ctx.run_dir).get("mlflow", {})
        if kept.get("uri") == uri and kept.get("run_id"):
            return str(kept["run_id"])  # a resumed run goes on in the same MLflow run
        exp = self.client.get_experiment_by_name(ctx.experiment)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(ctx.experiment)
        tags = {"brainfoundry.run_dir": str(ctx.run_dir.resolve())}
        run = self.client.create_run(exp_id, run_name=ctx.run_dir.name, tags=tags)
        params = [self.entities.Param(k, str(v)[:500]) for k, v in ctx.params.items()]
        for i in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(run.info.run_id, params=params[i : i + 100])
        _keep_id(ctx.run_dir, "mlflow", {"uri": uri, "run_id": run.info.run_id})
        return str(run.info.run_id)

    def log(self, step: int, values: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        metrics = [self.entities.Metric(k, float(v), now, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self.client.set_terminated(self.run_id, "FINISHED")


@TRACKERS.register("wandb")
class WandB(Tracker):
    """A W&B run in project `train.experiment`, its files under RUN/wandb; `WANDB_MODE` (e.g.
    offline) is W&B's own setting and is honoured as it is."""

    def __init__(self, ctx: TrackerContext):
        self.wandb = wandb = require("wandb", "wandb", "wandb")
        run_id = _ids(ctx.run_dir).get("wandb", {}).get("id")  # None: W&B picks one
        try:
            self.run = wandb.init(
                project=ctx.experiment, name=ctx.run_dir.name, dir=str(ctx.run_dir),
                config=ctx.params, id=run_id, resume="allow" if run_id else None,
            )  # fmt: skip
        except Exception as e:  # wandb raises its own types for login / network problems
            raise ConfigError(
                f"wandb could not start a run ({e}); without an account or network set "
                "WANDB_MODE=offline (then `wandb sync RUN/wandb/offline-run-*`)"
            ) from e
        _keep_id(ctx.run_dir, "wandb", {"id": self.run.id})

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def close(self) -> None:
        self.run.finish()
        self.wandb.teardown()  # finish() returns before the offline writer has flushed


def create_trackers(names: list[str], ctx: TrackerContext) -> list[Tracker]:
    """The trackers `names` asks for, in order; a name twice is one tracker."""
    unique = list(dict.fromkeys(n.lower() for n in names))
    for name in unique:
        TRACKERS.get(name)  # every name is checked before any tracker starts
    return [TRACKERS.create(name, ctx) for name in unique]


def flat_params(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"train": {"steps": 2}} → {"train.steps": 2}: what trackers record as parameters."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(flat_params(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out
