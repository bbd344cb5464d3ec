"""Where a task's data comes from, and which part of it a command reads.

`--data` is a FOMO task folder, a CSV manifest (`io.manifest`), BIDS with a participants table
(`io.bids`), or a folder holding `finetune/` and `test/` (each a folder or a `.csv`), of which
`finetune` reads the first and `evaluate` the second, and says so. A manifest with a `split`
column is read the same way. A manifest or BIDS tree becomes the same scan entries `prepare`
ingests from the folder layouts, once every row passed every check against the task: all bad
rows in one error, one line each, so that no case is ever dropped in silence. So does a task
folder for a task whose label is `label.json` (its label columns are that file's keys).

A task's label columns are each session's named targets (`ScanEntry.targets`, the store's
`target:<name>` columns); its first is the case's label and must be given, the others may be
missing (an empty cell, BIDS `n/a`, JSON null): a multi-target head learns from the targets a
case has.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..data.store import TARGET_PREFIX, target_column
from ..errors import ConfigError, DataErrors, InputError
from ..io.bids import MISSING, bids_labels, bids_scans, is_bids_with_participants
from ..io.layouts import LABEL_JSON, ScanEntry, discover, scan_fomo_task
from ..io.manifest import (
    Manifest,
    NotANumber,
    by_row,
    image_problem,
    is_long_format,
    manifest_entries,
    number_or_nan,
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
    if spec.label == LABEL_JSON and (path / "preprocessed").is_dir():
        return TaskSource(path, ("fomo-task", folder_source(path, spec, log)), part)
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
    for r in m.rows:  # a multiclass label may be its class's name: read as its index
        r.labels = {c: class_cell(spec, v) for c, v in r.labels.items()}
    used = [c for c, mod in m.modalities.items() if spec.channel_of(mod)]
    unused = [c for c in m.modalities if c not in used] + m.ignored
    if unused:
        log(f"{path.name}: columns not used by task {spec.name}: {', '.join(unused)}")
    seg = spec.type == "segmentation"
    problems += _manifest_columns(m, spec) if m.modalities else []
    problems += row_problems(m, m.rows, columns=used, required=_required(spec),
                             need_seg=seg and m.has_seg)  # fmt: skip
    values = [v for r in m.rows for v in label_values(r.labels, f"row {r.row}, column", spec)]
    problems += [] if seg else label_problems(values, spec)
    if problems:
        raise DataErrors(path, by_row(problems))
    check_binary_labels(path, spec, values)
    rows = [r for r in m.rows if r.split == role] if m.has_split else m.rows
    if not rows:
        raise InputError(path, f"no rows{f' with split={role}' if m.has_split else ''}")
    if m.has_split:
        log(f"{path.name}: {READER[role]} reads the {len(rows)} rows with split={role} "
            f"(of {len(m.rows)})")  # fmt: skip
    if seg:
        return manifest_entries(m, rows, None, used), (role if m.has_split else None)
    cols = spec.label_columns  # the file has them all: checked above
    return manifest_entries(m, rows, cols[0], used, cols), (role if m.has_split else None)


def label_values(
    cells: dict[str, str],
    where: str,
    spec: TaskSpec,
    missing: tuple[str, ...] = ("",),
    parse: Callable[[str], float | str] = parse_label,
) -> list[Value]:
    """(where, number or problem) of one session's label cells. The first label column is the
    case's label and must be given; a `missing` cell of any other is a missing target (NaN),
    not a problem."""
    first = spec.label_columns[0]
    return [(f"{where} {c}", parse(cell)) for c, cell in cells.items()
            if c == first or cell not in missing]  # fmt: skip


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
            named = spec.type == "multiclass" and isinstance(v, NotANumber)
            also = f" nor one of task {spec.name}'s classes ({', '.join(spec.classes)})"
            out.append(f"{where}: {v}" + (also if named else ""))
        elif spec.type == "classification" and v != int(v):
            out.append(f"{where}: {v:g} is not a class (a whole number, 0 or 1)")
        elif spec.type == "multiclass" and spec.class_index(v) is None:
            names = ", ".join(spec.classes)
            out.append(f"{where}: {v:g} is not one of task {spec.name}'s classes (an index "
                       f"0..{spec.n_classes - 1} or a name: {names})")  # fmt: skip
        elif spec.type == "regression" and (
            (lo is not None and v < lo) or (hi is not None and v > hi)
        ):
            unit = f" {spec.unit}" if spec.unit else ""
            span = f"[{_num(lo)}, {_num(hi)}]".replace("none", "-inf", 1).replace("none", "inf")
            out.append(f"{where}: {v:g} is outside task {spec.name}'s range {span}{unit}")
    return list(dict.fromkeys(out))


def class_cell(spec: TaskSpec, cell: str) -> str:
    """A multiclass label cell that names a class, as its index (any other cell unchanged)."""
    if spec.type == "multiclass" and cell.strip() in spec.classes:
        return str(spec.classes.index(cell.strip()))
    return cell


def check_binary_labels(path: Path, spec: TaskSpec, values: list[Value]) -> None:
    """A binary task's labels must be 0 and 1: more classes, or other codes, are one line
    saying so (pointing to a multiclass spec), instead of a model of the wrong kind."""
    cols = spec.label_columns
    if spec.type == "segmentation":
        return
    classes = sorted({int(v) for _, v in values if isinstance(v, float)})
    if spec.type != "classification" or set(classes) <= {0, 1}:
        return
    shown = ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else "")
    if len(classes) > 2:
        raise ConfigError(f"{path}: column {cols[0]} holds {len(classes)} classes ({shown}), "
                          f"but task {spec.name} is binary (0 = negative, 1 = positive): for "
                          "several classes write a task spec with type: multiclass and its "
                          "classes")  # fmt: skip
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
    for _, cells in labels.values():  # a multiclass label may be its class's name
        cells.update({c: class_cell(spec, v) for c, v in cells.items()})
    values = [v for at, cells in labels.values()
              for v in label_values(cells, f"{at}, column", spec, _NA, _bids_label)]  # fmt: skip
    problems += label_problems(values, spec)
    if problems:
        raise DataErrors(root, list(dict.fromkeys(problems)))
    check_binary_labels(root, spec, values)
    for e in used:
        cells = labels[(e.subject, e.session)][1]
        e.targets = {c: number_or_nan(cells[c]) for c in spec.label_columns}
        e.label = e.targets[spec.label_columns[0]]
    return used


_NA = (MISSING, "")  # a BIDS cell that holds no value


def _bids_label(cell: str) -> float | str:
    return "empty label (n/a)" if cell == MISSING else parse_label(cell)


def folder_source(root: Path, spec: TaskSpec, log: Log) -> list[ScanEntry]:
    """A FOMO task folder for a task whose label is label.json: each session's targets are the
    task's label columns, in order, from labels/<sub>/<ses>/label.json (its label the first),
    checked as a manifest's label columns are. A session without the file has no label."""
    entries, cols = scan_fomo_task(root), spec.label_columns
    first: dict[tuple[str, str], ScanEntry] = {}
    for e in entries:
        first.setdefault((e.subject, e.session), e)
    labelled = {k: e.targets for k, e in first.items() if e.targets}
    if not labelled:
        raise InputError(root, f"no labels/<subject>/<session>/{LABEL_JSON} (task {spec.name} "
                         f"reads its targets {', '.join(cols)} from it)")  # fmt: skip
    problems, values = [], []
    for (sub, ses), named in sorted(labelled.items()):
        at = f"labels/{sub}/{ses}/{LABEL_JSON}"
        problems += [f"{at}: no target {c!r} (task {spec.name} reads {', '.join(cols)})"
                     for c in cols if c not in named]  # fmt: skip
        values += [(f"{at}, target {c}", "empty label (null)" if math.isnan(v) else v)
                   for c, v in named.items()
                   if c in cols and (c == cols[0] or not math.isnan(v))]  # fmt: skip
    unused = sorted({k for named in labelled.values() for k in named} - set(cols))
    if unused:
        log(f"{root.name}: {LABEL_JSON} targets not used by task {spec.name}: {', '.join(unused)}")
    problems += label_problems(values, spec)
    if problems:
        raise DataErrors(root, problems)
    check_binary_labels(root, spec, values)
    for e in entries:
        if e.targets:
            e.targets = {c: e.targets[c] for c in cols}
            first_value = e.targets[cols[0]]
            e.label = None if math.isnan(first_value) else first_value
    return entries


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
    sessions, labels and targets `source` gives now: a stale case or label is refused, not
    trained on."""
    want = {(e.dataset, e.subject, e.session): e.label for e in entries}
    have = store.manifest.groupby(_SESSION, sort=True)["label"].first()
    stale = [f"{s}/{ses}" for d, s, ses in have.index if (d, s, ses) not in want]
    changed = [f"{k[1]}/{k[2]} {_num(v)} -> {_num(want[k])}" for k, v in have.items()
               if k in want and not _same(v, want[k])]  # fmt: skip
    targets = _changed_targets(store.manifest, entries)
    if not stale and not changed and not targets:
        return
    what = [f"sessions it does not list now: {', '.join(stale[:5])}"] if stale else []
    what += [f"labels that changed: {', '.join(changed[:5])}"] if changed else []
    what += [f"targets that changed: {', '.join(targets[:5])}"] if targets else []
    fix = "delete this store or write to a new output folder"
    raise InputError(
        store.root, f"was prepared from other data than {source} ({'; '.join(what)}): {fix}"
    )


_SESSION = ["dataset", "subject", "session"]


def _changed_targets(manifest, entries: list[ScanEntry]) -> list[str]:
    """Sessions whose named targets differ from the store's target:<name> columns, as
    "sub/ses name old -> new". Only several targets are compared: a single one is the label,
    compared already (and a store from before targets were stored has no column for it)."""
    stored = [c.removeprefix(TARGET_PREFIX) for c in manifest.columns
              if c.startswith(TARGET_PREFIX)]  # fmt: skip
    names = sorted({n for e in entries for n in e.targets} | set(stored))
    if len(names) < 2:
        return []
    cols = [target_column(n) for n in names]
    have = manifest.reindex(columns=[*_SESSION, *cols]).groupby(_SESSION, sort=True)[cols].first()
    want = {(e.dataset, e.subject, e.session): e.targets for e in entries}
    return [f"{k[1]}/{k[2]} {n} {_num(row[c])} -> {_num(want[k].get(n))}"
            for k, row in have.iterrows() if k in want
            for n, c in zip(names, cols) if not _same(row[c], want[k].get(n))]  # fmt: skip


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
