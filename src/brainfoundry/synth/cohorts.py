"""Cohort design: which subjects, sessions, labels, ages and sequences a dataset holds, each
case with its own seeds. Planning is cheap and deterministic; `writers` executes the plan."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cases import SessionSpec
from .config import FOMO26_KINDS, SEED_KINDS, SynthConfig
from .contrast import VENDORS

TASK_MODALITIES = {  # required, then one of the alternatives
    "infarct": (("flair", "dwi_b1000", "adc"), ("t2s", "swi")),
    "meningioma": (("flair", "dwi_b1000"), ("t2s", "swi")),
    "brainage": (("t1", "t2"), ()),
    "brain-profile": (("t1", "t2"), ()),
}
# FOMO60K-like share of sessions holding each sequence (pretraining corpus)
PRETRAIN_SEQUENCES = {
    "t1": 0.9,
    "t2": 0.55,
    "flair": 0.6,
    "pd": 0.15,
    "t1c": 0.15,
    "dwi_b1000": 0.3,
    "t2s": 0.15,
    "swi": 0.2,
}


@dataclass(frozen=True)
class Job:
    split: str  # "pretrain", "finetune" or "test"
    subject: str  # sub_<N>
    session: str  # ses_<M>
    spec: SessionSpec
    label: float | None  # infarct 0/1, brain age in years (brainage, brain-profile), else None
    qc: bool = False
    site: str | None = None  # the acquiring site, a demographic group (probe)


def _seed(cfg: SynthConfig, *key: int) -> int:
    ss = np.random.SeedSequence(cfg.seed, spawn_key=(SEED_KINDS.index(cfg.base_kind), *key))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> 1)


def _split_rng(cfg: SynthConfig, split_id: int) -> np.random.Generator:
    return np.random.default_rng(_seed(cfg, split_id, 2**31 - 1))


def _one_of(rng: np.random.Generator, kind: str) -> tuple[str, ...]:
    required, alternatives = TASK_MODALITIES[kind]
    return required + ((str(rng.choice(alternatives)),) if alternatives else ())


def plan(cfg: SynthConfig) -> list[Job]:
    """Every session of the dataset described by `cfg` (validated)."""
    cfg.validate()
    if cfg.kind == "pretrain":
        return _plan_pretrain(cfg)
    split_plan = _plan_task
    if cfg.kind in FOMO26_KINDS:
        from .fomo26 import plan_split

        split_plan = plan_split
    jobs = split_plan(cfg, "finetune", 1, cfg.n, shift=0.0, first_id=1)
    if cfg.test_cases:
        jobs += split_plan(cfg, "test", 2, cfg.test_cases, shift=cfg.shift, first_id=cfg.n + 1)
    return jobs


def _ages(rng: np.random.Generator, cfg: SynthConfig, n: int, lo: float, hi: float) -> np.ndarray:
    lo, hi = max(lo, cfg.min_age), min(hi, cfg.max_age)
    if lo >= hi:
        lo, hi = cfg.min_age, cfg.max_age
    return rng.uniform(lo, hi, size=n)


def _plan_task(
    cfg: SynthConfig, split: str, split_id: int, n: int, shift: float, first_id: int
) -> list[Job]:
    rng = _split_rng(cfg, split_id)
    kind = cfg.base_kind  # brain-profile: brainage's cases
    if kind == "infarct":
        n_pos = int(
            np.clip(round(n * cfg.positive_fraction), 1 if n > 1 else 0, n - 1 if n > 1 else 1)
        )
        labels = rng.permutation(np.r_[np.ones(n_pos), np.zeros(n - n_pos)])
        ages = _ages(rng, cfg, n, 45.0, 90.0)
    elif kind == "meningioma":
        labels, ages = np.full(n, np.nan), _ages(rng, cfg, n, 30.0, 85.0)
    else:
        ages = _ages(rng, cfg, n, cfg.min_age, cfg.max_age)
        labels = np.round(ages, 1)
    vendors = list(VENDORS)
    jobs = []
    for i in range(n):
        infarcts = 0
        if kind == "infarct" and labels[i] == 1:
            infarcts = int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))
        spec = SessionSpec(
            subject_seed=_seed(cfg, split_id, i, 0),
            session_seed=_seed(cfg, split_id, i, 1),
            age=float(ages[i]),
            sequences=_one_of(rng, kind),
            shift=shift,
            shift_parts=tuple(cfg.shift_parts),
            vendor=str(rng.choice(vendors)) if shift > 0 else None,
            difficulty=cfg.difficulty,
            infarcts=infarcts,
            meningioma=kind == "meningioma",
            distractors=kind != "brainage",
            head=cfg.head or cfg.deface,
            deface=cfg.deface,
        )
        label = None if np.isnan(labels[i]) else float(labels[i])
        jobs.append(Job(split, f"sub_{first_id + i}", "ses_1", spec, label, qc=i < cfg.qc_cases))
    return jobs


def _plan_pretrain(cfg: SynthConfig) -> list[Job]:
    """FOMO60K-like corpus: ~1.2 sessions per subject, a random subset of sequences per session,
    occasional repeats (`t1_2`), some (unlabelled) pathology, moderate scanner variation."""
    rng = _split_rng(cfg, 0)
    jobs: list[Job] = []
    vendors = list(VENDORS)
    for i in range(cfg.n):
        n_ses = 1 + int(rng.uniform() < 0.2) + int(rng.uniform() < 0.05)
        age = float(_ages(rng, cfg, 1, cfg.min_age, cfg.max_age)[0])
        for k in range(n_ses):
            seqs = [s for s, p in PRETRAIN_SEQUENCES.items() if rng.uniform() < p] or ["t1"]
            if "dwi_b1000" in seqs:
                seqs.append("adc")
            if rng.uniform() < 0.06:
                seqs.append(f"{seqs[0]}_2")  # a repeat of the first sequence
            path = rng.uniform()
            spec = SessionSpec(
                subject_seed=_seed(cfg, 0, i, 0),
                session_seed=_seed(cfg, 0, i, 1 + k),
                age=min(age, cfg.max_age),
                sequences=tuple(seqs),
                shift=cfg.shift * float(rng.uniform(0.0, 0.4)),
                vendor=str(rng.choice(vendors)),
                difficulty=cfg.difficulty,
                infarcts=int(path < 0.12) + int(path < 0.03),
                meningioma=0.12 <= path < 0.17,
                distractors=path > 0.7,
                head=cfg.head or cfg.deface,
                deface=cfg.deface,
            )
            jobs.append(
                Job(
                    "pretrain",
                    f"sub_{i + 1}",
                    f"ses_{k + 1}",
                    spec,
                    None,
                    qc=len(jobs) < cfg.qc_cases,
                )
            )
            age += float(rng.uniform(0.5, 3.0))
    return jobs
