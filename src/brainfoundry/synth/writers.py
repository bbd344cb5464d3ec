"""Run a plan and write the dataset: FOMO60K layout for pretraining (`sub_N/ses_M/<seq>.nii.gz`),
FOMO fine-tuning layout for tasks (`<split>/preprocessed/...`, `<split>/labels/...`), each with a
`dataset.json` (generator version, seed, parameters, per-case truth) and QC montages."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import __version__
from ..config import to_dict
from ..errors import ConfigError
from ..io.atomic import atomic_write_text
from ..io.nifti import write_nifti
from .cohorts import TASK_MODALITIES, Job, plan
from .config import FOMO26_KINDS, GENERATOR_VERSION, SynthConfig

SPLITS = {"finetune": "source", "test": "clinical"}
SEG_KINDS = ("meningioma", "trigeminal")  # seg.nii.gz
CLASS_KINDS = ("infarct", "polymicrogyria", "probe")  # label.txt holds an integer
LABELS: dict[str, dict] = {
    "infarct": {
        "type": "classification",
        "file": "label.txt",
        "values": [0, 1],
        "aux": "lesion.nii.gz (infarct voxels; not a task input)",
    },
    "meningioma": {"type": "segmentation", "file": "seg.nii.gz", "values": [0, 1]},
    "brainage": {"type": "regression", "file": "label.txt", "unit": "years"},
    "brain-profile": {
        "type": "regression",
        "file": "label.json",
        "targets": {"age": "years", "gm_ml": "mL", "wm_ml": "mL", "csf_ml": "mL", "wmh_ml": "mL"},
        "volumes": "the generator's tissue fractions summed over the whole brain mask at the "
        "written resolution: gm cortical + deep grey matter, wm white matter without its "
        "hyperintensities, csf sulcal CSF + ventricles, wmh white-matter hyperintensities",
    },
}


def _case_dir(out: Path, job: Job, kind: str) -> tuple[Path, Path | None]:
    if job.split == "pretrain":
        return out / job.subject / job.session, None
    root = out / job.split
    return (
        root / "preprocessed" / job.subject / job.session,
        root / "labels" / job.subject / job.session,
    )


def run_job(job: Job, out: str, kind: str, res: float) -> dict:
    """Make one session and write its files; return its dataset.json record (+ QC slices)."""
    import torch

    torch.set_num_threads(1)  # parallelism is across cases; keeps results thread-independent
    if kind in FOMO26_KINDS:
        s, affine = _make_fomo26(job, kind, res)
    else:
        from .anatomy import build_anatomy
        from .cases import make_session

        anat = build_anatomy(res)
        s, affine = make_session(job.spec, anat), anat.affine
    img_dir, lab_dir = _case_dir(Path(out), job, kind)
    for stem, vol in s.images.items():
        write_nifti(img_dir / f"{stem}.nii.gz", vol, affine)
    targets = profile_targets(job, s.volumes) if kind == "brain-profile" else None
    if lab_dir is not None and job.spec.head and s.brain_mask is not None:
        # the reference a skull strip is measured against (never read as a scan or label)
        write_nifti(lab_dir / "brain_mask.nii.gz", s.brain_mask.astype(np.uint8), affine)
    if lab_dir is not None:
        if kind in SEG_KINDS:
            write_nifti(lab_dir / "seg.nii.gz", s.lesion, affine)
        elif targets is not None:
            atomic_write_text(lab_dir / "label.json", json.dumps(targets) + "\n")
        else:
            assert job.label is not None  # labelled kinds always carry a label
            text = f"{int(job.label)}" if kind in CLASS_KINDS else f"{job.label:.1f}"
            atomic_write_text(lab_dir / "label.txt", text + "\n")
            if kind == "infarct":
                write_nifti(lab_dir / "lesion.nii.gz", s.lesion, affine)
    label = int(job.label) if kind in CLASS_KINDS and job.label is not None else job.label
    record: dict = {
        "subject": job.subject,
        "session": job.session,
        "split": job.split,
        "sequences": list(s.images),
        "label": label,
    }
    record |= _demographics(job) | s.meta
    record["lesion_voxels"] = int((s.lesion > 0).sum())
    if targets is not None:
        record["targets"] = targets
    return {"record": record, "qc": s.qc if job.qc else None}


def _make_fomo26(job: Job, kind: str, res: float):  # -> (Session, affine)
    """A FOMO26 case: the trigeminal slab, or a whole-brain session (polymicrogyria, probe)
    whose QC shows its one volume in three views."""
    if kind == "trigeminal":
        from .trigeminal import make_trigeminal

        return make_trigeminal(job.spec, res)
    from .anatomy import build_anatomy
    from .cases import make_session
    from .qc import views

    anat = build_anatomy(res)
    s = make_session(job.spec, anat)
    s.qc = views(next(iter(s.images.values())), s.lesion, s.brain)
    return s, anat.affine


def _demographics(job: Job) -> dict:
    """A probe case's groups (its age is in every record already)."""
    if job.site is None:
        return {}
    from .fomo26 import PROBE_CLASS_NAMES

    name = PROBE_CLASS_NAMES[int(job.label or 0)]
    return {"label_name": name, "sex": job.spec.sex, "site": job.site}


def profile_targets(job: Job, volumes: dict[str, float]) -> dict[str, float]:
    """A brain-profile case's label.json: its age (years, as brainage's label.txt) and tissue
    volumes (mL, `cases.tissue_volumes`), rounded to 0.1."""
    assert job.label is not None  # an age, planned with the case
    return {"age": round(job.label, 1)} | {k: round(v, 1) for k, v in volumes.items()}


def _init_worker(anat: object) -> None:
    from ..workers import init_worker
    from .anatomy import adopt_anatomy

    init_worker()
    adopt_anatomy(anat)  # type: ignore[arg-type]


_POOL: dict = {}


def _pool(workers: int, res: float):  # -> ProcessPoolExecutor
    """A spawn-based process pool with the anatomy preloaded, kept for later calls in this
    process (starting workers costs seconds); shut down at interpreter exit."""
    import atexit
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from .anatomy import build_anatomy

    key = (workers, res)
    if _POOL.get("key") != key:
        shutdown_pool()
        ctx = mp.get_context("spawn")  # no fork: torch/OpenMP state is not fork-safe
        _POOL["pool"] = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(build_anatomy(res),)
        )
        _POOL["key"] = key
        if not _POOL.get("atexit"):
            atexit.register(shutdown_pool)
            _POOL["atexit"] = True
    return _POOL["pool"]


def shutdown_pool() -> None:
    """Stop the worker processes kept by earlier parallel `generate` calls."""
    pool = _POOL.pop("pool", None)
    _POOL.pop("key", None)
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def pool_running() -> bool:
    """Whether worker processes are kept from an earlier parallel `generate` call."""
    return "pool" in _POOL


def pool_pids() -> list[int]:
    """Process ids of the kept workers (none when no pool is kept): to watch or stop them."""
    pool = _POOL.get("pool")
    return list(pool._processes or ()) if pool is not None else []


def _execute(jobs: list[Job], out: Path, cfg: SynthConfig, progress: bool) -> Iterator[dict]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc=f"synth {cfg.kind}", unit="case", disable=not progress)
    if cfg.workers == 1 or len(jobs) == 1:
        import torch

        threads = torch.get_num_threads()
        try:
            for job in jobs:
                yield run_job(job, str(out), cfg.kind, cfg.resolution)
                bar.update()
        finally:
            torch.set_num_threads(threads)
            bar.close()
        return
    from concurrent.futures.process import BrokenProcessPool

    pool = _pool(min(cfg.workers, len(jobs)), cfg.resolution)
    futures = [pool.submit(run_job, j, str(out), cfg.kind, cfg.resolution) for j in jobs]
    try:
        for f in futures:
            yield f.result()
            bar.update()
    except (BrokenProcessPool, KeyboardInterrupt):
        shutdown_pool()
        raise
    finally:
        for f in futures:
            f.cancel()
        bar.close()


def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: output exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out}: output folder is not empty; choose a new one or pass --force")


def generate(
    cfg: SynthConfig,
    out: str | Path,
    progress: bool = False,
    force: bool = False,
) -> dict:
    """Generate the dataset `cfg` describes into `out`; return the dataset.json content."""
    cfg.validate()
    out = Path(out)
    _check_output(out, force)
    jobs = plan(cfg)
    results = list(_execute(jobs, out, cfg, progress))
    records = [r["record"] for r in results]
    header = _header(cfg)
    if cfg.kind == "pretrain":
        header |= _corpus_counts(records)
        splits = ["pretrain"]
    else:
        header |= _task_info(cfg.kind)
        header["splits"] = _write_splits(out, cfg, header, records)
        splits = list(header["splits"])
        if cfg.kind == "probe":
            _write_participants(out, records, splits)
    header["cases"] = records
    _write_json(out / "dataset.json", header)
    _montages(out, cfg, jobs, results, splits)
    return header


def _header(cfg: SynthConfig) -> dict:
    """What every dataset.json starts with: provenance, the config and the shared grid."""
    return {
        "name": f"brainfoundry-synth-{cfg.kind}",
        "generator": "brainfoundry.synth",
        "generator_version": GENERATOR_VERSION,
        "brainfoundry_version": __version__,
        "kind": cfg.kind,
        "seed": cfg.seed,
        # the worker count is left out: it never changes the data, so neither should this file
        "config": {k: v for k, v in to_dict(cfg).items() if k != "workers"},
        "layout": "fomo60k" if cfg.kind == "pretrain" else "fomo-task",
        "anatomy": _anatomy_info(cfg),
    }


def _anatomy_info(cfg: SynthConfig) -> dict:
    """The anatomy source and the grid the cases share (trigeminal: a slab of its own)."""
    if cfg.kind == "trigeminal":
        from .trigeminal import anatomy_info

        return anatomy_info(cfg.resolution)
    from .anatomy import output_grid

    shape, affine = output_grid(cfg.resolution)
    return {
        "source": "MNI152 2009c nonlinear symmetric T1, GM, WM (bundled with nilearn)",
        "resolution_mm": cfg.resolution,
        "shape": list(shape),
        "orientation": "RAS",
        "affine": affine.tolist(),
    }


def _corpus_counts(records: list[dict]) -> dict:
    """Size of a pretraining corpus, in the units FOMO60K reports."""
    return {
        "sessions": len(records),
        "subjects": len({r["subject"] for r in records}),
        "scans": sum(len(r["sequences"]) for r in records),
    }


def _task_info(kind: str) -> dict:
    """The task's label and the modalities a model receives."""
    if kind in FOMO26_KINDS:
        from .fomo26 import TASK_KINDS

        spec = TASK_KINDS.create(kind)
        (required, alternatives), label = spec.modalities, spec.label
    else:
        (required, alternatives), label = TASK_MODALITIES[kind], LABELS[kind]
    return {
        "task": kind,
        "label": label,
        "modalities": {"required": list(required), "one_of": list(alternatives)},
    }


def _write_participants(out: Path, records: list[dict], splits: list[str]) -> None:
    """The probe task's participants.csv per split (subject, label, sex, age, site)."""
    from .fomo26 import participants

    for split in splits:
        recs = [r for r in records if r["split"] == split]
        atomic_write_text(out / split / "participants.csv", participants(recs))


def _write_splits(out: Path, cfg: SynthConfig, header: dict, records: list[dict]) -> dict:
    """Write each non-empty split's own dataset.json (so a split folder stands alone); return
    the split summaries for the top-level file."""
    splits = {}
    for split, domain in SPLITS.items():
        recs = [r for r in records if r["split"] == split]
        if not recs:
            continue
        info = {
            "path": split,
            "domain": domain,
            "shift": cfg.shift if split == "test" else 0.0,
            "n": len(recs),
        }
        splits[split] = info
        _write_json(
            out / split / "dataset.json", header | {"split": split} | info | {"cases": recs}
        )
    return splits


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, default=_json_default) + "\n")


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, os.PathLike):
        return str(o)
    raise TypeError(type(o).__name__)


def _montages(
    out: Path, cfg: SynthConfig, jobs: list[Job], results: list[dict], splits: list[str]
) -> None:
    if not cfg.qc:
        return
    from .qc import montage

    for split in splits:
        items = [(j, r) for j, r in zip(jobs, results) if j.split == split and r["qc"] is not None]
        if items:
            montage(
                [_qc_title(j, r["record"], cfg.kind) for j, r in items],
                [r["qc"] for _, r in items],
                out / "qc" / f"{split}.png",
            )


def _qc_title(job: Job, rec: dict, kind: str) -> str:
    bits = [f"{job.subject}/{job.session}", f"age {rec['age']:.0f}"]
    if kind == "infarct":
        bits.append(f"label {int(job.label or 0)}")
        bits += [f"{i['stage']} {i['territory']}" for i in rec.get("infarcts", [])[:1]]
    elif kind == "meningioma" and "meningioma" in rec:
        bits.append(rec["meningioma"]["site"])
    elif kind in FOMO26_KINDS:
        bits += _fomo26_title(rec, kind)
    if rec.get("shift", 0.0) >= 0.05:  # scanner contrast moved towards a clinical vendor
        bits.append(f"{rec['vendor']} shift {rec['shift']:.1f}")
    return ", ".join(bits)


def _fomo26_title(rec: dict, kind: str) -> list[str]:
    if kind == "trigeminal":
        sides = [s for s, hit in rec["conflict"].items() if hit]
        return [f"conflict {'+'.join(sides) or 'none'}", rec["orientation"]]
    if kind == "probe":
        return [rec["label_name"], rec["sex"], rec["site"], rec["sequences"][0]]
    bits = [f"label {rec['label']}"]
    if "polymicrogyria" in rec:
        pmg = rec["polymicrogyria"]
        bits.append(pmg["lobe"] + (" bilateral" if pmg["bilateral"] else ""))
    if rec["distractors"].get("focal_atrophy"):
        bits.append("focal atrophy")
    if "head" in rec:
        bits.append("head, defaced")
    return bits
