"""Where a task's data comes from, and which part of it a command reads.

`--data` is a FOMO task folder, a CSV manifest (`io.manifest`), BIDS with a participants table
(`io.bids`), or a folder holding `finetune/` and `test/` (each a folder or a `.csv`), of which
`finetune` reads the first and `evaluate` the second, and says so. A manifest with a `split`
column is read the same way. A manifest or BIDS tree becomes the same scan entries `prepare`
ingests from the folder layouts, once every row passed every check against the task: all bad
rows in one error, one line each, so that no case is ever dropped in silence.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError, DataErrors, InputError
from ..io.bids import MISSING, bids_labels, bids_scans, is_bids_with_participants
from ..io.layouts import ScanEntry, discover
from ..io.manifest import (
    Manifest,
    by_row,
    image_problem,
    is_long_format,
    manifest_entries,
    parse_label,
    read_manifest,
    row_problems,
)
from ..io.modalities import alternatives
from .spec import TaskSpec

Role = Literal["finetune", "test"]
ROLES: tuple[Role, Role] = ("finetune", "test")
READER = {"finetune": "fine-tuning", "test": "evaluation"}
Log = Callable[[str], object]
Value = tuple[str, float | str]  # (where: "row 4, column label", the number or its problem)


@dataclass
class TaskSource:
    """What `prepare` reads: `path`, with its scan entries when they were read and checked here
    (a manifest, BIDS), else None (a folder layout `prepare` discovers itself). `part`: the
    split picked when the data held both (finetune or test)."""

    path: Path
    found: tuple[str, list[ScanEntry]] | None = None
    part: Role | None = None


def task_source(data: str | Path, spec: TaskSpec, role: Role, log: Log = print) -> TaskSource:
    """The data `role` reads for `spec`, checked up front (one error listing every bad row)."""
    path, part = pick_part(Path(data), role, log)
    if path.is_file() and path.suffix.lower() == ".csv" and not is_long_format(path):
        entries, split = manifest_source(path, spec, role, log)
        return TaskSource(path, ("csv", entries), part or split)
    if is_bids_with_participants(path):
        return TaskSource(path, ("bids", bids_source(path, spec, log)), part)
    return TaskSource(path, None, part)


def reference_masks(src: TaskSource) -> dict[tuple[str, str], str]:
    """Each session's reference mask by (subject, session), from the entries `src` read and
    checked (a manifest's seg column) or, for a folder layout, those `prepare` discovers there
    (labels/.../seg.nii.gz): the one place a score finds its masks, so it reads the data as
    the store was prepared from it, never by a second set of rules."""
    entries = src.found[1] if src.found is not None else discover(src.path)[1]
    return {(e.subject, e.session): e.seg_path for e in entries if e.seg_path}


def _part(folder: Path, role: Role) -> Path | None:
    return next((p for p in (folder / role, folder / f"{role}.csv") if p.exists()), None)


def pick_part(path: Path, role: Role, log: Log) -> tuple[Path, Role | None]:
    """A folder holding finetune/ and test/ (or finetune.csv and test.csv): the one of `role`,
    said in one line of the log. Any other path is returned as it is."""
    if not path.is_dir():
        return path, None
    parts = {r: _part(path, r) for r in ROLES}
    chosen = parts[role]
    if chosen is None:
        other = next((p for p in parts.values() if p is not None), None)
        if other is None:
            return path, None
        raise InputError(path, f"holds {other.name} but no {role}/ or {role}.csv for "
                         f"{READER[role]}: give the {role} data itself")  # fmt: skip
    log(f"data: {path} holds finetune and test data; {READER[role]} reads {chosen}")
    return chosen, role


def manifest_source(
    path: Path, spec: TaskSpec, role: Role, log: Log
) -> tuple[list[ScanEntry], Role | None]:
    """The entries of a manifest's rows for `role` (all rows, or those of its split column),
    after checking every row of the file against the task."""
    m, problems = read_manifest(path, spec.label_columns)
    used = [c for c, mod in m.modalities.items() if spec.channel_of(mod)]
    unused = [c for c in m.modalities if c not in used] + m.ignored
    if unused:
        log(f"{path.name}: columns not used by task {spec.name}: {', '.join(unused)}")
    seg = spec.type == "segmentation"
    problems += _manifest_columns(m, spec) if m.modalities else []
    problems += row_problems(m, m.rows, columns=used, required=_required(spec),
                             need_seg=seg and m.has_seg)  # fmt: skip
    values = [(f"row {r.row}, column {c}", parse_label(r.labels[c])) for r in m.rows
              for c in m.label_columns]  # fmt: skip
    problems += [] if seg else label_problems(values, spec)
    if problems:
        raise DataErrors(path, by_row(problems))
    check_supported(path, spec, values)
    rows = [r for r in m.rows if r.split == role] if m.has_split else m.rows
    if not rows:
        raise InputError(path, f"no rows{f' with split={role}' if m.has_split else ''}")
    if m.has_split:
        log(f"{path.name}: {READER[role]} reads the {len(rows)} rows with split={role} "
            f"(of {len(m.rows)})")  # fmt: skip
    label = m.label_columns[0] if spec.type != "segmentation" else None
    return manifest_entries(m, rows, label, used), (role if m.has_split else None)


def _required(spec: TaskSpec) -> list[str]:
    return [e for e in spec.modalities if e not in spec.optional]


def _manifest_columns(m: Manifest, spec: TaskSpec) -> list[str]:
    """A label column the task reads but the file lacks, or a segmentation task without `seg`."""
    if spec.type == "segmentation":
        return [] if m.has_seg else [f"no seg column (task {spec.name} needs a mask per session)"]
    unused = f"; columns not used: {', '.join(m.ignored)}" if m.ignored else ""
    return [f"no label column {c!r} (task {spec.name} reads its target from "
            f"{', '.join(spec.label_columns)}; a task spec's label_columns name others{unused})"
            for c in spec.label_columns if c not in m.label_columns]  # fmt: skip


def label_problems(values: list[Value], spec: TaskSpec) -> list[str]:
    """One line per label that is no number, no whole class (classification) or outside the
    task's physical range (regression)."""
    out = []
    lo, hi = spec.range or (None, None)
    for where, v in values:
        if isinstance(v, str):
            out.append(f"{where}: {v}")
        elif spec.type == "classification" and v != int(v):
            out.append(f"{where}: {v:g} is not a class (a whole number, 0 or 1)")
        elif spec.type == "regression" and (
            (lo is not None and v < lo) or (hi is not None and v > hi)
        ):
            unit = f" {spec.unit}" if spec.unit else ""
            span = f"[{_num(lo)}, {_num(hi)}]".replace("none", "-inf", 1).replace("none", "inf")
            out.append(f"{where}: {v:g} is outside task {spec.name}'s range {span}{unit}")
    return list(dict.fromkeys(out))


def check_supported(path: Path, spec: TaskSpec, values: list[Value]) -> None:
    """What was read and checked but cannot be trained yet: several targets, or more than two
    classes. One line saying so, instead of a model of the wrong kind."""
    cols = spec.label_columns
    if spec.type == "segmentation":
        return
    if len(cols) > 1:
        names = ", ".join(cols)
        raise ConfigError(
            f"{path}: task {spec.name} names {len(cols)} label columns ({names}); they were "
            "read and checked, but several targets per task are not supported yet: give the "
            "task one label column"
        )
    classes = sorted({int(v) for _, v in values if isinstance(v, float)})
    if spec.type != "classification" or set(classes) <= {0, 1}:
        return
    shown = ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else "")
    if len(classes) > 2:
        raise ConfigError(f"{path}: column {cols[0]} holds {len(classes)} classes ({shown}): "
                          "multi-class classification is not supported yet; task "
                          f"{spec.name} is binary (0 = negative, 1 = positive)")  # fmt: skip
    raise ConfigError(f"{path}: column {cols[0]} holds the classes {shown}; a binary label is "
                      "0 (negative) or 1 (positive): recode the column")  # fmt: skip


def bids_source(root: Path, spec: TaskSpec, log: Log) -> list[ScanEntry]:
    """The task's scans of a BIDS tree with their participants' (or sessions') labels, after
    checking every file, session and table row (one error listing every problem)."""
    if spec.type == "segmentation":
        raise InputError(root, "masks are not read from BIDS yet: list the scans and their "
                         "masks in a CSV manifest (a seg column)")  # fmt: skip
    scans = bids_scans(root)
    used = [e for e in scans if e.modality and spec.channel_of(e.modality)]
    left = sorted({Path(e.path).name.split("_")[-1].split(".")[0] for e in scans if e not in used})
    if left:
        log(f"{root.name}: scans not used by task {spec.name}: {', '.join(left)}")
    if not used:
        raise InputError(root, f"no scans of task {spec.name}'s modalities ({spec.modalities})")
    problems = [
        f"{_rel(root, e.path)}: {why}" for e in used if (why := image_problem(Path(e.path)))
    ]
    problems += session_problems(root, used, spec)
    labels, found = bids_labels(root, {(e.subject, e.session) for e in used}, spec.label_columns)
    problems += found
    values = [(f"{at}, column {c}", _bids_label(cell)) for at, cells in labels.values()
              for c, cell in cells.items()]  # fmt: skip
    problems += label_problems(values, spec)
    if problems:
        raise DataErrors(root, list(dict.fromkeys(problems)))
    check_supported(root, spec, values)
    for e in used:
        e.label = float(labels[(e.subject, e.session)][1][spec.label_columns[0]])
    return used


def _bids_label(cell: str) -> float | str:
    return "empty label (n/a)" if cell == MISSING else parse_label(cell)


def _rel(root: Path, path: str) -> str:
    return Path(path).relative_to(root).as_posix()


def session_problems(root: Path, entries: list[ScanEntry], spec: TaskSpec) -> list[str]:
    """A session with two scans of one modality (which one is meant cannot be guessed), or
    without a channel the task requires."""
    by: dict[tuple[str, str], list[ScanEntry]] = defaultdict(list)
    for e in entries:
        by[(e.subject, e.session)].append(e)
    out = []
    for (sub, ses), ents in sorted(by.items()):
        where = f"{sub}/{ses}" if (root / sub / ses).is_dir() else f"{sub}/"
        mods: dict[str, list[str]] = defaultdict(list)
        for e in ents:
            mods[str(e.modality)].append(Path(e.path).name)
        for mod, names in mods.items():
            if len(names) > 1:
                out.append(f"{where}: {len(names)} {mod} scans ({', '.join(names)}); keep one "
                           "(runs and acquisitions are not chosen between)")  # fmt: skip
        for entry in _required(spec):
            if not any(a in mods for a in alternatives(entry)):
                out.append(f"{where}: no {entry} scan (task {spec.name} requires it)")
    return out


def check_store(store, entries: list[ScanEntry], source: Path) -> None:
    """A store prepared earlier (a rerun into the same output folder) must hold exactly the
    sessions and labels `source` gives now: a stale case or label is refused, not trained on."""
    want = {(e.dataset, e.subject, e.session): e.label for e in entries}
    have = store.manifest.groupby(["dataset", "subject", "session"], sort=True)["label"].first()
    stale = [f"{s}/{ses}" for d, s, ses in have.index if (d, s, ses) not in want]
    changed = [f"{k[1]}/{k[2]} {_num(v)} -> {_num(want[k])}" for k, v in have.items()
               if k in want and not _same(v, want[k])]  # fmt: skip
    if not stale and not changed:
        return
    what = [f"sessions it does not list now: {', '.join(stale[:5])}"] if stale else []
    what += [f"labels that changed: {', '.join(changed[:5])}"] if changed else []
    fix = "delete this store or write to a new output folder"
    raise InputError(
        store.root, f"was prepared from other data than {source} ({'; '.join(what)}): {fix}"
    )


def _num(v) -> str:
    return "none" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):g}"


def _same(a, b) -> bool:
    return _num(a) == _num(b) or (_num(a) != "none" != _num(b) and math.isclose(a, b))


def run_spec(seed_dir: Path) -> TaskSpec:
    """The task spec a fine-tuned seed folder was trained for (from its card)."""
    from ..models.card import ModelCard

    card = ModelCard.load(seed_dir / "card.json")
    if "task" not in card.extra:
        raise ConfigError(f"{seed_dir}: not a fine-tuned task model (card has no task)")
    return TaskSpec.from_dict(card.extra["task"], str(seed_dir / "card.json"))
