"""`prepare`: raw scans in any supported layout → a store, in parallel, sharded and resumable.

The unit of work is a session's group of co-registered scans (one grid): they share one crop
and are stackable as channels. Scans of a session on other grids join the reference's group
(the grid of the session's label map, else the first scan's), registered and resampled onto it
per `preprocess.coregister` (each one a warning; one that cannot be registered an error of its
own); with `coregister=off` each grid is a group of its own. A worker writes arrays first and
the record last, each atomically, so a killed run resumes by skipping sessions whose records
exist and match the source files. Bad inputs become one line each in errors.jsonl; they never
stop the run. What is kept but changed (a label map on none of its session's grids, so not
used; a scan resampled onto the reference grid) is one line each in warnings.jsonl, and stays
in the scans' records so that a resumed run reports it again.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..config import to_dict
from ..errors import BrainFoundryError, InputError
from ..io.atomic import atomic_path, atomic_write_text
from ..io.layouts import ScanEntry, discover
from ..io.volume import Volume, read_volume
from ..workers import init_worker
from .arrays import ArrayFormat, write_array
from .coregister import onto_reference, same_grid
from .preprocess import RECIPE_BEFORE, PreprocessConfig, Preprocessed, preprocess_group
from .store import merge, scan_id, target_column

N_LOCATIONS = 2000


@dataclass
class PrepareConfig:
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    array: ArrayFormat = field(default_factory=ArrayFormat)
    layout: str | None = None  # auto-detected when None
    modality_map: dict[str, str] = field(default_factory=dict)  # sequence name -> canonical


@dataclass
class PrepareResult:
    n_sessions: int = 0
    n_done: int = 0
    n_skipped: int = 0
    n_scans: int = 0
    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)


def _fingerprint(path: str) -> list:
    st = os.stat(path)
    return [st.st_size, int(st.st_mtime)]


def _sessions(entries: list[ScanEntry]) -> list[list[ScanEntry]]:
    by = defaultdict(list)
    for e in entries:
        by[e.session_key].append(e)
    return [by[k] for k in sorted(by)]


def _marker(store: Path, e: ScanEntry) -> tuple[Path, Path]:
    sid = scan_id(e.dataset, e.subject, e.session, e.sequence)
    return store / "records" / f"{sid}.json", store / "failed" / f"{sid}.json"


def _done(store: Path, ents: list[ScanEntry]) -> tuple[list[dict], list[dict]] | None:
    """Earlier (errors, warnings) of this session if every scan was finished or failed on the
    same file (a changed file is retried), else None."""
    errors, warnings = [], []
    for e in ents:
        for i, mark in enumerate(_marker(store, e)):
            try:
                rec = json.loads(mark.read_text())
                if rec["source_fingerprint"] == _fingerprint(e.path):
                    if i == 1:
                        errors.append(rec["error"])
                    else:
                        earlier = json.loads(rec.get("warnings") or "[]")
                        warnings += [w for w in earlier if w not in warnings]
                    break
            except (ValueError, KeyError, OSError):
                continue
        else:
            return None
    return errors, warnings


def _error(path: str, problem: str, entry: ScanEntry | None = None, kind: str = "error") -> dict:
    err = {"path": path, kind: problem}
    if entry is not None:
        err.update(subject=entry.subject, session=entry.session, sequence=entry.sequence)
    return err


def _read_scans(
    root: Path, ents: list[ScanEntry]
) -> tuple[list[tuple[ScanEntry, Volume]], list[dict]]:
    """The session's readable scans; an unreadable one becomes an error and a failed marker."""
    errors: list[dict] = []
    vols: list[tuple[ScanEntry, Volume]] = []
    for e in ents:
        try:
            vols.append((e, read_volume(e.path, e.series_uid)))
        except InputError as err:
            errors.append(_fail(root, e, err.path, err.problem))
    return vols, errors


def _coregistered(
    vols: list[tuple[ScanEntry, Volume]],
) -> list[list[tuple[ScanEntry, Volume]]]:
    """Scans grouped by grid (same shape and affine), in first-seen order: each group is
    preprocessed as one multi-channel image."""
    groups: list[list[tuple[ScanEntry, Volume]]] = []
    for ev in vols:
        for g in groups:
            if same_grid(g[0][1], ev[1]):
                g.append(ev)
                break
        else:
            groups.append([ev])
    return groups


Label = Volume | InputError | None  # a group's label map, the error reading it, or none


def _labels(
    groups: list[list[tuple[ScanEntry, Volume]]],
) -> tuple[list[Label], list[tuple[ScanEntry, str]]]:
    """The label map each grid group of a session takes (read once per file), and the label
    files that fit none of the session's grids: (entry, problem) each, to warn about. With one
    grid the label must fit it (a mismatch is that group's error); with several, it goes to the
    grids of its shape."""
    read: dict[str, Label] = {}
    for g in groups:
        path = g[0][0].seg_path
        if path and path not in read:
            try:
                read[path] = read_volume(path, label=True)
            except InputError as err:
                read[path] = err
    picks: list[Label] = []
    for g in groups:
        lab = read.get(g[0][0].seg_path or "")
        if len(groups) > 1 and isinstance(lab, Volume) and lab.shape != g[0][1].shape:
            lab = None  # the label belongs to another grid of this session
        picks.append(lab)
    unused = []
    for path, lab in read.items():
        if isinstance(lab, Volume) and not any(p is lab for p in picks):
            e0 = next(g[0][0] for g in groups if g[0][0].seg_path == path)
            grids = ", ".join(str(tuple(g[0][1].shape)) for g in groups)
            unused.append((e0, f"label shape {lab.shape} matches none of the session's grids "
                               f"({grids}): the label is not used, so the session has no "
                               "segmentation label"))  # fmt: skip
    return picks, unused


def _onto_one_grid(
    root: Path,
    groups: list[list[tuple[ScanEntry, Volume]]],
    labels: list[Label],
    cfg: PrepareConfig,
) -> tuple[list[tuple[ScanEntry, Volume]], list[Volume], Label, list[dict], list[dict]]:
    """A session's grid groups as one: the reference scan (the first of the label's group, else
    of the first group) and every other scan brought onto its grid (`coregister.
    onto_reference`). Returns the group's (entry, source volume) pairs, their volumes on the
    reference grid, its label, and the errors (a scan that cannot be registered, marked failed)
    and warnings (one per scan changed)."""
    r = next((i for i, lab in enumerate(labels) if lab is not None), 0)
    rest = groups[r][1:] + [ev for i, g in enumerate(groups) if i != r for ev in g]
    ref = groups[r][0][1]
    group, aligned = [groups[r][0]], [ref]
    errors, warnings = [], []
    for e, v in rest:
        try:
            moved, note = onto_reference(
                ref, v, cfg.preprocess.coregister, cfg.preprocess.interpolation
            )
        except InputError as err:
            errors.append(_fail(root, e, err.path, err.problem))
            continue
        group.append((e, v))
        aligned.append(moved)
        if note:
            warnings.append(_error(e.path, note, e, kind="warning"))
    return group, aligned, labels[r], errors, warnings


def _preprocess(
    root: Path,
    group: list[tuple[ScanEntry, Volume]],
    label: Label,
    cfg: PrepareConfig,
    aligned: list[Volume] | None = None,
) -> tuple[Preprocessed | None, list[dict]]:
    """The group preprocessed with its label map, or None and one error per scan (each also
    marked failed) when an input is bad or preprocessing breaks. `aligned`: the group's volumes
    already on one grid (`_onto_one_grid`), else the group's own."""
    try:
        if isinstance(label, InputError):
            raise label
        if aligned is None:
            return preprocess_group([v for _, v in group], cfg.preprocess, label), []
        on_one_grid = replace(cfg.preprocess, coregister="off")  # aligned already
        return preprocess_group(aligned, on_one_grid, label), []
    except InputError as err:
        return None, [_fail(root, e, err.path, err.problem) for e, _ in group]
    except (ValueError, RuntimeError, MemoryError) as err:
        msg = f"preprocessing failed ({type(err).__name__}: {err})"
        return None, [_fail(root, e, e.path, msg) for e, _ in group]


def _write_label_and_locs(
    root: Path, gid: str, pre: Preprocessed, cfg: PrepareConfig
) -> tuple[str | None, str]:
    """The group's label map (if any) and its sampled foreground/lesion voxel coordinates.
    Returns their paths relative to the store."""
    seg_rel = None
    lesion = np.zeros((0, 3), np.uint16)
    if pre.label is not None:
        seg_rel = f"labels/{gid}.b2nd"
        write_array(root / seg_rel, pre.label, cfg.array)
        lesion = _sample_coords(pre.label > 0, gid + "les")
    fg = _sample_coords(pre.fg_mask, gid)
    locs_rel = f"locs/{gid}.npz"
    with atomic_path(root / locs_rel) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, fg=fg, lesion=lesion)
    return seg_rel, locs_rel


def _write_scan(
    root: Path,
    e: ScanEntry,
    v: Volume,
    img: np.ndarray,
    st: dict,
    shared: dict,
    cfg: PrepareConfig,
) -> None:
    """One scan's array, then its record: the record is written last, so it marks the scan
    done. `shared` holds the group's group id, seg and locs paths and geometry."""
    sid = scan_id(e.dataset, e.subject, e.session, e.sequence)
    rel = f"arrays/{sid}.b2nd"
    nbytes = write_array(root / rel, img, cfg.array)
    rec = {
        "scan_id": sid,
        "dataset": e.dataset,
        "subject": e.subject,
        "session": e.session,
        "sequence": e.sequence,
        "modality": e.modality,
        "group": shared["group"],
        "source": e.path,
        "source_fingerprint": _fingerprint(e.path),
        "source_shape": list(v.shape),
        "source_spacing": list(v.spacing),
        "array": rel,
        "shape": list(img.shape),
        "spacing": list(cfg.preprocess.spacing),
        "dtype": str(img.dtype),
        "nbytes": nbytes,
        "seg": shared["seg"],
        "seg_source": shared["seg_source"],
        "seg_range": shared["seg_range"],
        "seg_dropped": shared["seg_dropped"],
        "warnings": json.dumps(shared["warnings"]),  # a string: the manifest stays flat
        "locs": shared["locs"],
        "label": e.label,
        **_target_fields(e),
        "quality": e.quality,
        **st,
        "geometry": shared["geometry"],
    }
    atomic_write_text(root / "records" / f"{sid}.json", json.dumps(rec))


def _target_fields(e: ScanEntry) -> dict:
    """The scan's session targets as manifest columns target:<name> (None: missing, so the
    record stays valid JSON; the manifest reads it as NaN)."""
    return {target_column(k): None if math.isnan(v) else float(v) for k, v in e.targets.items()}


def _write_group(
    root: Path,
    gid: str,
    group: list[tuple[ScanEntry, Volume]],
    pre: Preprocessed,
    cfg: PrepareConfig,
    label: dict,
) -> int:
    """Write a preprocessed group into the store. Returns the number of scans written.
    `label`: seg_source and seg_range (its values' extent, checked against a task's classes),
    or seg_dropped and the session's warnings; kept in every scan's record."""
    seg_rel, locs_rel = _write_label_and_locs(root, gid, pre, cfg)
    shared = {
        "group": gid,
        "seg": seg_rel,
        "locs": locs_rel,
        "geometry": json.dumps(pre.geometry.to_json()),
        **label,
    }
    written = 0
    for (e, v), img, st in zip(group, pre.images, pre.stats):
        _write_scan(root, e, v, img, st, shared, cfg)
        written += 1
    return written


def process_session(
    ents: list[ScanEntry], store: str, cfg: PrepareConfig
) -> tuple[int, list[dict], list[dict]]:
    """Preprocess one session into the store. Returns (scans written, errors, warnings)."""
    root = Path(store)
    vols, errors = _read_scans(root, ents)
    groups = _coregistered(vols)
    labels, unused = _labels(groups)
    warnings = [_error(e.seg_path or "", msg, e, kind="warning") for e, msg in unused]
    dropped = ", ".join(e.seg_path or "" for e, _ in unused) or None
    aligned: list[list[Volume] | None] = [None] * len(groups)
    mode = cfg.preprocess.coregister
    if mode == "rigid" or (len(groups) > 1 and mode != "off"):
        group, one, label, errs, moved = _onto_one_grid(root, groups, labels, cfg)
        groups, aligned, labels = [group], [one], [label]
        errors.extend(errs)
        warnings.extend(moved)
    written = 0
    for gi, (group, label) in enumerate(zip(groups, labels)):
        e0 = group[0][0]
        gid = scan_id(e0.dataset, e0.subject, e0.session, f"g{gi}")
        pre, errs = _preprocess(root, group, label, cfg, aligned[gi])
        errors.extend(errs)
        if pre is not None:
            warnings.extend(_error(e0.path, w, e0, kind="warning") for w in pre.warnings)
            kept = _label_fields(label, pre, dropped, warnings)
            written += _write_group(root, gid, group, pre, cfg, kept)
    return written, errors, warnings


def _label_fields(label: Label, pre: Preprocessed, dropped: str | None, warnings: list) -> dict:
    """The label facts each scan record of a group keeps (see `_write_group`)."""
    if isinstance(label, Volume) and pre.label is not None:
        vals = np.rint(label.data)
        extent = [int(vals.min()), int(vals.max())]
        return {"seg_source": label.path, "seg_range": extent, "seg_dropped": None,
                "warnings": warnings}  # fmt: skip
    return {"seg_source": None, "seg_range": None, "seg_dropped": dropped, "warnings": warnings}


def _fail(root: Path, e: ScanEntry, path: str, problem: str) -> dict:
    """Record a failed scan so a re-run skips it until its file changes."""
    err = _error(path, problem, e)
    if os.path.exists(e.path):
        rec = {"source_fingerprint": _fingerprint(e.path), "error": err}
        atomic_write_text(_marker(root, e)[1], json.dumps(rec))
    return err


def _sample_coords(mask: np.ndarray, key: str) -> np.ndarray:
    """Up to N_LOCATIONS voxel coordinates of a mask, drawn reproducibly."""
    flat = np.flatnonzero(mask)
    if len(flat) > N_LOCATIONS:
        seed = int.from_bytes(key.encode()[-8:].ljust(8, b"\0"), "little") % (2**32)
        pick = np.random.default_rng(seed).choice(len(flat), N_LOCATIONS, replace=False)
        flat = np.sort(flat[pick])
    return np.stack(np.unravel_index(flat, mask.shape), axis=1).astype(np.uint16)


def _check_inputs(raw: Path, store: Path, i: int, n: int) -> None:
    """Refuse a shard index out of range, and a store inside the (read-only) raw data."""
    if not (0 <= i < n):
        raise BrainFoundryError(f"--shard {i}/{n}: need 0 <= i < n")
    if store.resolve() == raw.resolve() or raw.resolve() in store.resolve().parents:
        raise BrainFoundryError(
            f"{store}: the store must not be inside the raw data (inputs are read-only)"
        )


def _known_modalities(
    entries: list[ScanEntry], cfg: PrepareConfig, res: PrepareResult, log
) -> list[ScanEntry]:
    """The entries whose modality is known once `cfg.modality_map` is applied; each other one
    is reported as an error naming the --map that fixes it."""
    known = []
    for e in entries:
        if e.sequence.lower() in cfg.modality_map:
            e.modality = cfg.modality_map[e.sequence.lower()]
        if e.modality is None:
            msg = f"unknown sequence {e.sequence!r}; map it with --map {e.sequence}=<modality>"
            _collect(res, 0, [_error(e.path, msg, e)], [], log, count=False)
        else:
            known.append(e)
    return known


def _pending(
    store: Path, sessions: list[list[ScanEntry]], res: PrepareResult, log
) -> list[list[ScanEntry]]:
    """The sessions still to do; finished ones are skipped, their earlier errors reported."""
    todo = []
    for s in sessions:
        earlier = _done(store, s)
        if earlier is None:
            todo.append(s)
        else:
            _collect(res, 0, *earlier, log, count=False)
    return todo


def _run_sessions(
    todo: list[list[ScanEntry]],
    store: Path,
    cfg: PrepareConfig,
    workers: int,
    done: Callable[[int, list[dict], list[dict]], None],
) -> None:
    """`process_session` over `todo`, here or in a spawn pool of `workers` processes; `done`
    gets each result (scans written, errors, warnings) as it arrives."""
    if workers <= 1:
        for result in (process_session(s, str(store), cfg) for s in todo):
            done(*result)
        return
    import multiprocessing as mp

    with ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=init_worker
    ) as pool:
        futs = [pool.submit(process_session, s, str(store), cfg) for s in todo]
        for f in as_completed(futs):
            done(*f.result())


def prepare(
    raw: str | Path,
    store: str | Path,
    cfg: PrepareConfig | None = None,
    *,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    log=print,
    found: tuple[str, list[ScanEntry]] | None = None,
) -> PrepareResult:
    """Ingest `raw` into `store`; merges the manifest unless this is one shard of several.
    `found`: (layout, entries) already discovered and checked (a task's manifest or BIDS
    tree, `tasks.sources`), else `raw` is discovered here."""
    from tqdm import tqdm

    cfg = cfg or PrepareConfig()
    raw, store = Path(raw), Path(store)
    i, n = shard
    _check_inputs(raw, store, i, n)
    layout, entries = found or discover(raw, cfg.layout)
    res = PrepareResult()
    known = _known_modalities(entries, cfg, res, log)
    sessions = _sessions(known)[i::n]
    store.mkdir(parents=True, exist_ok=True)
    _check_plan(store, cfg)
    todo = _pending(store, sessions, res, log)
    res.n_sessions, res.n_skipped = len(sessions), len(sessions) - len(todo)
    bar = tqdm(total=len(todo), desc=f"prepare {layout}", unit="session", disable=not progress)

    def done(written: int, errs: list[dict], warns: list[dict]) -> None:
        _collect(res, written, errs, warns, log)
        bar.update()

    _run_sessions(todo, store, cfg, workers, done)
    bar.close()
    suffix = "" if n == 1 else f".shard-{i}-of-{n}"
    for name, items in (("errors", res.errors), ("warnings", res.warnings)):
        lines = "".join(json.dumps(e) + "\n" for e in items)
        atomic_write_text(store / f"{name}{suffix}.jsonl", lines)
    if n == 1:
        merge(store, {"layout": layout, "source": str(raw), "version": __version__})
    return res


def _collect(
    res: PrepareResult, written: int, errs: list[dict], warns: list[dict], log, count: bool = True
) -> None:
    res.n_done += int(count)
    res.n_scans += written
    for e in errs:
        res.errors.append(e)
        log(f"error: {e['path']}: {e['error']}")
    for w in warns:
        res.warnings.append(w)
        log(f"warning: {w['subject']}/{w['session']}: {w['path']}: {w['warning']}")


# preprocess settings a plan from before they existed lacks: what the code then did
ADDED_LATER = {"coregister": "auto", **RECIPE_BEFORE}


def _check_plan(store: Path, cfg: PrepareConfig) -> None:
    """A store holds one preprocessing recipe: refuse to mix, write it on first use."""
    p = store / "plan.json"
    want = {"preprocess": to_dict(cfg.preprocess), "array": to_dict(cfg.array)}
    if p.exists():
        have = json.loads(p.read_text())
        mine = {k: have.get(k) for k in want}
        if isinstance(mine["preprocess"], dict):
            # a plan from before a setting existed: what the code then did. Sessions on one
            # grid were kept as coregister "auto" keeps them (a session on several grids became
            # one group per grid, as "off" does now); no bias field was corrected, no skull
            # stripped.
            mine["preprocess"] = {**ADDED_LATER, **mine["preprocess"]}
        if mine != want:
            differ = _differences(mine, want)
            raise BrainFoundryError(
                f"{p}: this store was prepared with other settings ({differ}); use a new "
                "store folder, or the store's settings"
            )
        return
    atomic_write_text(p, json.dumps({**want, "version": __version__}, indent=2))


def _differences(have: dict, want: dict) -> str:
    """ "preprocess.x: store a, asked b" for each setting that differs (all, when not dicts)."""
    out = []
    for part in want:
        h, w = have.get(part), want[part]
        if not isinstance(h, dict) or not isinstance(w, dict):
            if h != w:
                out.append(f"{part}: store {h}, asked {w}")
            continue
        out += [f"{part}.{k}: store {h.get(k)!r}, asked {w.get(k)!r}"
                for k in sorted(set(h) | set(w)) if h.get(k) != w.get(k)]  # fmt: skip
    return "; ".join(out)
