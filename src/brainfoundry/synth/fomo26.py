"""Cohorts of FOMO26's new tasks (config.FOMO26_KINDS), each a registered kind: its label
block, modalities and a planner that draws every case's label (balanced) and parameters.

- trigeminal (task 4): a T2 slab around the brainstem (`trigeminal`), a {0,1,2} label map;
- polymicrogyria (task 5): one T1, label 1 when a cortical region holds polymicrogyria; the
  test split keeps a modelled head, defaced (`head`), as the challenge's test data do;
- probe (tasks 6/7): one volume of t1, t2 or flair per case, a class (PROBE_CLASS_NAMES) and
  demographic groups (sex, age, site) for fairness, written to participants.csv too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import Registry
from .cases import SessionSpec
from .cohorts import Job, _ages, _seed, _split_rng
from .config import FOMO26_KINDS, PROBE_CLASSES, SynthConfig
from .contrast import VENDORS

PROBE_CLASS_NAMES = ("normal", "infarct", "meningioma", "small_vessel_disease")
PROBE_AGES = ((18.0, 90.0), (45.0, 90.0), (30.0, 85.0), (55.0, 90.0))  # per class
PROBE_MODALITIES = ("t1", "t2", "flair")
SITES = {"finetune": ("site_1", "site_2", "site_3"), "test": ("site_4", "site_5", "site_6")}
SOURCE_SITE_SHIFT = (0.0, 0.15, 0.3)  # research sites differ a little (towards their vendor)
PARTICIPANT_COLUMNS = ("subject", "label", "sex", "age", "site")
assert len(PROBE_CLASS_NAMES) == PROBE_CLASSES

Draw = tuple[float | None, dict[str, Any], str | None]  # label, SessionSpec fields, site


@dataclass(frozen=True)
class TaskKind:
    """What a kind's dataset.json says about its label and inputs, and how its cases are drawn:
    `plan(rng, cfg, n, shift, split)` gives each case's (label, SessionSpec fields, site)."""

    name: str
    modalities: tuple[tuple[str, ...], tuple[str, ...]]  # required, then one of
    label: dict
    plan: Callable[[np.random.Generator, SynthConfig, int, float, str], list[Draw]]


TASK_KINDS: Registry[TaskKind] = Registry("synth task kind")


def _vendor(rng: np.random.Generator, shift: float) -> str | None:
    return str(rng.choice(list(VENDORS))) if shift > 0 else None


def _plan_trigeminal(
    rng: np.random.Generator, cfg: SynthConfig, n: int, shift: float, split: str
) -> list[Draw]:
    ages = _ages(rng, cfg, n, 30.0, 85.0)
    return [
        (None, {"age": float(a), "sequences": ("t2",), "shift": shift,
                "vendor": _vendor(rng, shift), "distractors": True}, None)
        for a in ages
    ]  # fmt: skip


def _plan_polymicrogyria(
    rng: np.random.Generator, cfg: SynthConfig, n: int, shift: float, split: str
) -> list[Draw]:
    """Half the cases positive; every case draws the same label-independent distractors."""
    labels = rng.permutation(np.r_[np.ones(n // 2), np.zeros(n - n // 2)])
    ages = _ages(rng, cfg, n, 18.0, 60.0)
    out: list[Draw] = []
    for label, age in zip(labels, ages):
        fields = {
            "age": float(age),
            "sequences": ("t1",),
            "shift": shift,
            "vendor": _vendor(rng, shift),
            "polymicrogyria": bool(label),
            "cortical_distractors": True,
            "head": split == "test",
        }
        out.append((float(label), fields, None))
    return out


def _probe_class(rng: np.random.Generator, c: int) -> dict[str, Any]:
    """The pathology behind a probe class (visible on t1, t2 and flair alike)."""
    if c == 1:
        stage = str(rng.choice(["acute", "subacute", "chronic"], p=[0.2, 0.3, 0.5]))
        return {"infarcts": int(rng.choice([1, 2], p=[0.75, 0.25])), "infarct_stage": stage}
    if c == 2:
        return {"meningioma": True}
    if c == 3:
        return {"wmh": int(rng.integers(18, 36))}
    return {}


def _plan_probe(
    rng: np.random.Generator, cfg: SynthConfig, n: int, shift: float, split: str
) -> list[Draw]:
    """Balanced classes, sexes and sites, one modality per case. Research sites are shifted a
    little towards a vendor each; the clinical test sites fully, each with its own vendor."""
    labels = rng.permutation(np.arange(n) % PROBE_CLASSES)
    sexes = rng.permutation(np.arange(n) % 2)
    sites = rng.permutation(np.arange(n) % len(SITES[split]))
    vendors = list(VENDORS)
    out: list[Draw] = []
    for c, sex, k in zip(labels, sexes, sites):
        lo, hi = PROBE_AGES[int(c)]
        site_shift = shift if split == "test" else SOURCE_SITE_SHIFT[int(k)]
        fields = {
            "age": float(_ages(rng, cfg, 1, lo, hi)[0]),
            "sequences": (str(rng.choice(PROBE_MODALITIES)),),
            "shift": site_shift,
            "vendor": vendors[int(k) % len(vendors)],
            "sex": "FM"[int(sex)],
            "distractors": True,
        } | _probe_class(rng, int(c))
        out.append((float(c), fields, SITES[split][int(k)]))
    return out


def _register(kind: TaskKind) -> None:
    TASK_KINDS.register(kind.name)(lambda: kind)


_register(
    TaskKind(
        "trigeminal",
        (("t2",), ()),
        {
            "type": "segmentation",
            "file": "seg.nii.gz",
            "values": [0, 1, 2],
            "classes": {"0": "background", "1": "nerves", "2": "vessels"},
            "note": "a T2 slab around the brainstem, not skull-stripped, its own affine per case "
            "(LPS in part of the test split); the label map has the input's shape and affine",
        },
        _plan_trigeminal,
    )
)
_register(
    TaskKind(
        "polymicrogyria",
        (("t1",), ()),
        {
            "type": "classification",
            "file": "label.txt",
            "values": [0, 1],
            "note": "fine-tuning scans skull-stripped; test scans keep a modelled head (the "
            "anatomy source has none), defaced",
        },
        _plan_polymicrogyria,
    )
)
_register(
    TaskKind(
        "probe",
        ((), PROBE_MODALITIES),
        {
            "type": "classification",
            "file": "label.txt",
            "values": list(range(PROBE_CLASSES)),
            "classes": {str(i): name for i, name in enumerate(PROBE_CLASS_NAMES)},
            "groups": {"sex": ["F", "M"], "age": "years (bin by decade)", "site": SITES},
            "participants": "participants.csv per split: " + ", ".join(PARTICIPANT_COLUMNS),
        },
        _plan_probe,
    )
)
assert sorted(FOMO26_KINDS) == TASK_KINDS.list()


def plan_split(
    cfg: SynthConfig, split: str, split_id: int, n: int, shift: float, first_id: int
) -> list[Job]:
    """The jobs of one split of a FOMO26 kind, each case with its own seeds."""
    rng = _split_rng(cfg, split_id)
    draws = TASK_KINDS.create(cfg.kind).plan(rng, cfg, n, shift, split)
    jobs = []
    for i, (label, fields, site) in enumerate(draws):
        spec = SessionSpec(
            subject_seed=_seed(cfg, split_id, i, 0),
            session_seed=_seed(cfg, split_id, i, 1),
            difficulty=cfg.difficulty,
            shift_parts=tuple(cfg.shift_parts),
            **fields,
        )
        subject = f"sub_{first_id + i}"
        jobs.append(Job(split, subject, "ses_1", spec, label, qc=i < cfg.qc_cases, site=site))
    return jobs


def participants(records: list[dict]) -> str:
    """participants.csv of the probe task: one row per case, PARTICIPANT_COLUMNS."""
    rows = [",".join(PARTICIPANT_COLUMNS)]
    for r in records:
        rows.append(f"{r['subject']},{r['label']},{r['sex']},{r['age']:.1f},{r['site']}")
    return "\n".join(rows) + "\n"
