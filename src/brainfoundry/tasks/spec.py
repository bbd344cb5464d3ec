"""Tasks are data: a `TaskSpec` (YAML) says what a downstream task is, so fine-tuning, evaluation
and prediction never hard-code the FOMO25 tasks. Built-in specs ship in `tasks/specs/*.yaml`;
a user's own task is a YAML file passed by path wherever a task name is accepted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..config import from_dict, read_yaml_mapping, to_dict
from ..errors import ConfigError
from ..io.modalities import alternatives, canonical_modality
from ..registry import Registry

TaskType = Literal["classification", "multiclass", "segmentation", "regression"]
LABEL_SOURCES = ("label.txt", "label.json", "seg.nii.gz")


@dataclass
class TaskSpec:
    """One downstream task.

    modalities: input channels in order; an entry "t2s|swi" is one channel filled by the first
      alternative a session has. optional: channels that may be missing (a zero channel with
      present=False); the others must be there. label: "label.txt" (class or value per session),
      "label.json" (named targets per session, {name: number or null}: the label_columns are its
      keys) or "seg.nii.gz" (voxel mask). label_columns: the column(s) of a CSV manifest or a BIDS
      participants table that hold the target (default `label`). A regression task may name
      several: one model predicts them all (a multi-target head, the first column the main
      target that picks the checkpoint). defaults: `a.b=c` finetune overrides.
    metrics: what evaluation reports (`evaluation.scoring` knows which fit each type);
      primary_metric (default: the first) picks the best checkpoint and heads the bench's
      tables; ranking_metrics (default: the primary) are the ones the challenge ranks on.
    classes: multiclass: the class names in label order (a label is the class's index 0..K-1
      or its name); segmentation: the label map's classes, background first (default
      [background, lesion]; FOMO26 trigeminal [background, nerve, vessel]). A binary
      `classification` task keeps 0 = negative, 1 = positive.
    range: regression only, the physically possible values [lo, hi] of the target (either may
      be null: unbounded), e.g. brain age [0, 120]; outputs outside it are flagged and interval
      bounds clipped to it (`tasks.output_range`). None: no physical limit is known.
    """

    name: str
    type: TaskType
    modalities: list[str]
    label: str = "label.txt"
    label_columns: list[str] = field(default_factory=lambda: ["label"])
    metrics: list[str] = field(default_factory=list)
    primary_metric: str = ""
    ranking_metrics: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)
    nsd_tolerance_mm: float = 2.0
    unit: str = ""
    description: str = ""
    defaults: list[str] = field(default_factory=list)
    range: tuple[float | None, float | None] | None = None
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"task {self.name!r}"
        if not self.modalities:
            raise ConfigError(f"{where}: needs at least one modality")
        for entry in self.modalities:
            for alt in alternatives(entry):
                if canonical_modality(alt) != alt:
                    raise ConfigError(
                        f"{where}: modality {alt!r} is not a canonical name "
                        f"(did you mean {canonical_modality(alt)!r}?)"
                    )
        unknown = set(self.optional) - set(self.modalities)
        if unknown:
            raise ConfigError(f"{where}: optional {sorted(unknown)} not among modalities")
        if self.label not in LABEL_SOURCES:
            raise ConfigError(f"{where}: label {self.label!r} must be one of {LABEL_SOURCES}")
        if (self.type == "segmentation") != (self.label == "seg.nii.gz"):
            raise ConfigError(f"{where}: a {self.type} task cannot read labels from {self.label}")
        self._check_classes(where)
        self._check_metrics(where)
        self._check_range(where)
        self._check_label_columns(where)

    def _check_label_columns(self, where: str) -> None:
        from ..io.manifest import RESERVED, column_modality

        cols = [str(c).strip() for c in self.label_columns]
        odd = [c for c in cols if not c or c.lower() in RESERVED or column_modality(c)]
        if not cols or odd or len(set(cols)) != len(cols):
            raise ConfigError(
                f"{where}: label_columns {self.label_columns} must be distinct column names, "
                f"none empty, reserved ({', '.join(RESERVED)}) or a modality"
            )
        self.label_columns = cols
        if len(cols) > 1 and self.type != "regression":
            raise ConfigError(f"{where}: several label_columns ({', '.join(cols)}) are targets "
                              f"of one regression model; a {self.type} task has one")  # fmt: skip
        if len(cols) > 1 and self.range is not None:
            raise ConfigError(f"{where}: range bounds one target; a task of several targets "
                              f"({', '.join(cols)}) has none")  # fmt: skip

    def _check_classes(self, where: str) -> None:
        names = [str(c).strip() for c in self.classes]
        if self.type not in ("multiclass", "segmentation"):
            if names:
                why = "classes name a multiclass or segmentation task's labels"
                raise ConfigError(f"{where}: {why}, not a {self.type} task's (binary: 0, 1)")
            return
        if self.type == "segmentation" and not names:
            return  # binary: background and lesion
        if len(names) < 2 or len(set(names)) != len(names) or not all(names):
            raise ConfigError(f"{where}: a {self.type} task lists at least two distinct, "
                              f"non-empty class names (classes: {self.classes})")  # fmt: skip
        self.classes = names

    def class_index(self, value: float | str) -> int | None:
        """The class index a label names (its index 0..K-1, or its name), or None."""
        if isinstance(value, str):
            return self.classes.index(value) if value in self.classes else None
        k = int(value)
        return k if k == value and 0 <= k < self.n_classes else None

    @property
    def multi_target(self) -> bool:
        """A regression task of several targets (its label_columns), one model for them all."""
        return self.type == "regression" and len(self.label_columns) > 1

    @property
    def head(self) -> str:
        """The task-model head (`heads.HEADS`) and evaluation table kind: the task type, or
        "multitarget" for a regression task of several targets."""
        return "multitarget" if self.multi_target else self.type

    @property
    def categorical(self) -> bool:
        """Whether the label is a class (binary or multiclass): splits and folds stratify."""
        return self.type in ("classification", "multiclass")

    @property
    def n_classes(self) -> int:
        """Classes of a categorical or segmentation task (background included; 2 for binary);
        0 for regression."""
        if self.classes:
            return len(self.classes)
        return 0 if self.type == "regression" else 2

    @property
    def class_names(self) -> list[str]:
        """A segmentation task's class names, background first (default background, lesion)."""
        return self.classes or (["background", "lesion"] if self.type == "segmentation" else [])

    def _check_range(self, where: str) -> None:
        if self.range is None:
            return
        if self.type != "regression":
            raise ConfigError(f"{where}: range limits a regression target, not a {self.type} task")
        lo, hi = self.range
        if lo is not None and hi is not None and not lo < hi:
            raise ConfigError(f"{where}: range [{lo}, {hi}] needs lo < hi")
        self.range = (lo, hi)

    def _check_metrics(self, where: str) -> None:
        from ..evaluation.scoring import check_metric

        def fit(names: list[str]) -> list[str]:
            try:
                return [check_metric(self.type, m) for m in names]
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None

        self.metrics = fit(self.metrics)
        if not self.metrics:
            raise ConfigError(f"{where}: list at least one metric")
        self.primary_metric = fit([self.primary_metric or self.metrics[0]])[0]
        self.ranking_metrics = fit(self.ranking_metrics or [self.primary_metric])

    @property
    def channels(self) -> list[str]:
        """Channel names in order (alternatives kept as written, e.g. "t2s|swi")."""
        return list(self.modalities)

    @property
    def n_outputs(self) -> int:
        """Network outputs: 1 logit, K class logits, 2 per target (mean, log-variance) or 2
        segmentation classes."""
        if self.type == "regression":
            return 2 * len(self.label_columns)
        if self.type == "classification":
            return 1
        return self.n_classes  # multiclass: K logits; segmentation: K classes

    def channel_of(self, modality: str) -> str | None:
        """The channel a scan of `modality` fills, or None if the task does not use it."""
        for entry in self.modalities:
            if modality in alternatives(entry):
                return entry
        return None

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "task") -> TaskSpec:
        missing = {"name", "type", "modalities"} - set(data)
        if missing:
            raise ConfigError(f"{where}: task spec needs {sorted(missing)}")
        return from_dict(cls, data, where)


def load_spec(path: str | Path) -> TaskSpec:
    """A TaskSpec from a YAML file, with errors naming the file."""
    p = Path(path)
    shape = "a task spec is a mapping (name, type, modalities, ...)"
    data = read_yaml_mapping(p, "task spec", shape)
    if data is None:
        raise ConfigError(f"{p}: {shape}")
    return TaskSpec.from_dict(data, str(p))


TASKS: Registry[TaskSpec] = Registry("task")


def _builtin(name: str):
    def make() -> TaskSpec:
        return load_spec(Path(str(resources.files("brainfoundry.tasks") / "specs" / name)))

    return make


FOMO25_TASKS = ("infarct", "meningioma", "brainage")
FOMO26_TASKS = tuple(
    f"fomo26-{t}" for t in ("infarct", "meningioma", "brainage", "trigeminal", "polymicrogyria")
)
for _name in (*FOMO25_TASKS, "brain-profile", *FOMO26_TASKS):
    TASKS.register(_name)(_builtin(f"{_name}.yaml"))


def get_task(name_or_path: str | Path | TaskSpec) -> TaskSpec:
    """A registered task by name, or a spec file by path (anything ending in .yaml/.yml)."""
    if isinstance(name_or_path, TaskSpec):
        return dataclasses.replace(name_or_path)
    s = str(name_or_path)
    if s.endswith((".yaml", ".yml")) or Path(s).is_file():
        return load_spec(s)
    return TASKS.create(s)
