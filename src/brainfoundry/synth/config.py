"""`SynthConfig`: every knob of a generated dataset, validated, and saved into dataset.json."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

KINDS = ("pretrain", "infarct", "meningioma", "brainage")  # the data seeds follow this order
# FOMO26's new tasks (`fomo26`): their seeds follow KINDS; not in KINDS, which lists what a
# benchmark suite can train on (these have no task spec yet)
FOMO26_KINDS = ("trigeminal", "polymicrogyria", "probe")
SEED_KINDS = (*KINDS, *FOMO26_KINDS)
# kinds made of another kind's cases (the same seeds, so the same scans) with other labels:
# brain-profile is brainage with label.json (age and tissue volumes in mL) per case. Not in
# KINDS: a benchmark suite has no task it could train on them yet (several targets).
DERIVED = {"brain-profile": "brainage"}
RESOLUTION_PRESETS = {"realistic": 1.0, "cpu": 2.0, "fast": 3.0, "tiny": 5.0}
GENERATOR_VERSION = "1.0"
# trigeminal is a cropped field of view around the brainstem, so it goes finer than the
# whole-brain kinds (FOMO26 task 4: T2 at about 0.5 mm); its own limits and CLI default
FINE_KINDS = {"trigeminal": (0.3, 2.0)}
DEFAULT_RESOLUTION = {"trigeminal": 0.5}
# what the clinical shift moves: head pose, vendor tissue contrast, partial z coverage, and the
# acquisition (lower SNR, stronger bias field, thick slices, motion ghosts)
SHIFT_PARTS = ("pose", "contrast", "coverage", "acquisition")
PROBE_CLASSES = 4  # the probe task's classes (`fomo26.PROBE_CLASS_NAMES`)


@dataclass
class SynthConfig:
    kind: str = "pretrain"  # a KINDS, DERIVED or FOMO26_KINDS name
    n: int = 40  # pretrain: subjects; task: fine-tuning (source-domain) cases
    n_test: int | None = None  # task: clinical-domain test cases (default 2 x n)
    resolution: float = 2.0  # isotropic output spacing, mm (1 realistic, 2-3 for CPU work)
    seed: int = 0
    shift: float = 1.0  # clinical shift strength of the test split, 0 (none) .. 1 (full)
    shift_parts: tuple[str, ...] = SHIFT_PARTS  # which parts the shift moves (ablations)
    difficulty: float = 0.5  # 0 easy .. 1 hard: lesion size/contrast, distractors, age noise
    workers: int = 1
    qc: bool = True
    qc_cases: int = 4
    positive_fraction: float = 0.6  # infarct: share of positive cases per split
    min_age: float = 18.0
    max_age: float = 90.0
    # raw input, not skull-stripped: every scan keeps a modelled head (skull, scalp, the tissue
    # in front of the brain); `deface` cuts its face off, as defacing tools do. One seed gives
    # the same subjects, brains and labels with and without it.
    head: bool = False
    deface: bool = False

    @property
    def base_kind(self) -> str:
        """The kind whose cases this one makes (itself, or brainage for brain-profile)."""
        return DERIVED.get(self.kind, self.kind)

    @property
    def test_cases(self) -> int:
        return 2 * self.n if self.n_test is None else self.n_test

    def validate(self) -> SynthConfig:
        if self.kind not in SEED_KINDS and self.kind not in DERIVED:
            known = [*KINDS, *DERIVED, *FOMO26_KINDS]
            raise ConfigError(f"unknown synth dataset {self.kind!r}; choose one of {known}")
        if self.n < 1:
            raise ConfigError(f"--n must be at least 1 (got {self.n})")
        if self.kind != "pretrain" and self.test_cases < 0:
            raise ConfigError(f"--n-test must be 0 or more (got {self.n_test})")
        if self.kind == "infarct":
            if not 0.0 < self.positive_fraction < 1.0:
                raise ConfigError("positive_fraction must lie strictly between 0 and 1")
            if self.n < 2:
                raise ConfigError("infarct needs --n of at least 2 (one positive, one negative)")
        self._validate_fomo26()
        if self.kind in FINE_KINDS:
            lo, hi = FINE_KINDS[self.kind]
            if not lo <= self.resolution <= hi:
                raise ConfigError(
                    f"--resolution {self.resolution} mm is outside {lo}-{hi} mm for "
                    f"{self.kind} (a cropped field of view; 0.5 is the default)"
                )
        elif not 1.0 <= self.resolution <= 8.0:
            raise ConfigError(
                f"--resolution {self.resolution} mm is outside 1-8 mm (the anatomy "
                "is 1 mm; use 1 for realism, 2-3 for CPU experiments)"
            )
        for name in ("shift", "difficulty"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"--{name} must lie in [0, 1] (got {v})")
        unknown = sorted(set(self.shift_parts) - set(SHIFT_PARTS))
        if unknown:
            raise ConfigError(f"--shift-parts {unknown} unknown; choose from {list(SHIFT_PARTS)}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1 (got {self.workers})")
        if not 18.0 <= self.min_age < self.max_age <= 100.0:
            raise ConfigError(
                f"ages must satisfy 18 <= min_age < max_age <= 100 "
                f"(got {self.min_age}, {self.max_age})"
            )
        if self.seed < 0:
            raise ConfigError(f"--seed must be non-negative (got {self.seed})")
        return self

    def _validate_fomo26(self) -> None:
        if (self.head or self.deface) and self.kind in FOMO26_KINDS:
            raise ConfigError(
                f"--head/--deface do not apply to {self.kind}: its scans follow the challenge "
                "(polymicrogyria's test split keeps a defaced head, the trigeminal slab its "
                "bone); use them with pretrain, infarct, meningioma, brainage or brain-profile"
            )
        if self.kind == "polymicrogyria" and self.n < 2:
            raise ConfigError("polymicrogyria needs --n of at least 2 (one positive, one negative)")
        if self.kind == "probe" and self.n < PROBE_CLASSES:
            raise ConfigError(
                f"probe needs --n of at least {PROBE_CLASSES} (one case of each class)"
            )


def parse_resolution(text: str | float) -> float:
    """`2`, `2mm`, `2.5 mm` or a preset name (realistic, cpu, fast, tiny) -> millimetres."""
    if isinstance(text, (int, float)):
        return float(text)
    t = text.strip().lower()
    if t in RESOLUTION_PRESETS:
        return RESOLUTION_PRESETS[t]
    try:
        return float(t.removesuffix("mm").strip())
    except ValueError:
        raise ConfigError(
            f"--resolution {text!r}: give millimetres (e.g. 2 or 2mm) or a preset "
            f"({', '.join(RESOLUTION_PRESETS)})"
        ) from None
