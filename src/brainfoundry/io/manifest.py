"""A CSV manifest of one's own scans: one row per session, one path column per sequence named
by its modality, then label columns, or `seg` (a mask path). Read and checked in one pass so
that every bad row is reported together, one line each, instead of the first one per run.

    subject,session,t1,flair,label
    p01,ses_1,scans/p01_t1.nii.gz,scans/p01_flair.nii.gz,1

Relative paths resolve against the CSV's folder. Rows are numbered as a spreadsheet shows them
(the header is row 1). An optional `split` column (finetune / test) lets one file hold both.
Columns that are none of these are not used, and said so by the caller; a column of image paths
whose name is no modality is an error (its scans would be lost).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataErrors, InputError
from .layouts import ScanEntry
from .modalities import CANONICAL, alternatives, canonical_modality
from .volume import is_nifti

RESERVED = ("subject", "session", "seg", "split")
SPLITS = ("finetune", "test")
DEFAULT_SESSION = "ses_1"


@dataclass
class ManifestRow:
    """One session as written: cells are stripped text; `scans` holds non-empty path cells."""

    row: int
    subject: str
    session: str
    scans: dict[str, str] = field(default_factory=dict)  # column -> path as written
    labels: dict[str, str] = field(default_factory=dict)  # label column -> cell
    seg: str = ""
    split: str = ""


@dataclass
class Manifest:
    path: Path
    modalities: dict[str, str]  # path column -> canonical modality
    label_columns: list[str]  # those of the requested ones the file has
    has_seg: bool = False
    has_split: bool = False
    ignored: list[str] = field(default_factory=list)  # columns that are none of the above
    rows: list[ManifestRow] = field(default_factory=list)

    def resolve(self, cell: str) -> Path:
        """A path cell as a path: relative ones are relative to the CSV's folder."""
        p = Path(cell).expanduser()
        return p if p.is_absolute() else self.path.parent / p


def column_modality(name: str) -> str | None:
    """The modality a column name stands for (`t1`, `T1w`, `dwi_b1000`, ...), or None."""
    low = name.strip().lower()
    return canonical_modality(low) or (low if low in CANONICAL else None)


def is_long_format(path: Path) -> bool:
    """True for the older one-row-per-scan manifest (columns path, subject, modality)."""
    header = _read(path)[0]
    return {"path", "modality"} <= {h.strip().lower() for h in header}


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            table = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(path, f"cannot read the CSV manifest ({type(e).__name__}: {e})") from None
    if not table or not any(c.strip() for c in table[0]):
        raise InputError(path, "the CSV manifest is empty: it needs a header row")
    return [h.strip() for h in table[0]], table[1:]


def read_manifest(
    path: str | Path, label_columns: Sequence[str] = ("label",)
) -> tuple[Manifest, list[str]]:
    """The manifest and the problems of its header and row structure (empty subject, duplicate
    subject/session, bad split value). Cells are not checked yet: see `row_problems`."""
    path = Path(path)
    header, table = _read(path)
    m, problems = _columns(path, header, table, label_columns)
    if "subject" not in (h.lower() for h in header):  # rows cannot be read without it
        return m, problems
    problems += _rows(m, header, table)
    return m, problems


def _columns(
    path: Path, header: list[str], table: list[list[str]], label_columns: Sequence[str]
) -> tuple[Manifest, list[str]]:
    """Sort the header into reserved, label, modality and unused columns."""
    m = Manifest(path, {}, [])
    problems: list[str] = []
    seen: set[str] = set()
    by_mod: dict[str, str] = {}
    for j, name in enumerate(header):
        low = name.lower()
        cells = [r[j].strip() for r in table if j < len(r) and r[j].strip()]
        if low in seen:
            problems.append(f"column {name!r} appears twice in the header")
        seen.add(low)
        if low in RESERVED:
            m.has_seg, m.has_split = m.has_seg or low == "seg", m.has_split or low == "split"
        elif name in label_columns:
            m.label_columns.append(name)
        elif (mod := column_modality(name)) is not None:
            if mod in by_mod:
                problems.append(f"columns {by_mod[mod]!r} and {name!r} both name modality {mod}")
            by_mod[mod] = name
            m.modalities[name] = mod
        elif any(c.lower().endswith((".nii", ".nii.gz")) for c in cells):
            known = ", ".join(CANONICAL)
            problems.append(
                f"column {name or f'#{j + 1}'!r} holds image paths but is not a modality "
                f"({known}): name it by its modality"
            )
        elif name or cells:
            m.ignored.append(name or f"#{j + 1}")
    if "subject" not in seen or not m.modalities:
        problems.append("a manifest needs columns 'subject' and one path column per sequence, "
                        "named by its modality (t1, flair, dwi_b1000, ...); the older format "
                        "needs columns path, subject, modality (one row per scan)")  # fmt: skip
    return m, problems


def _row(i: int, m: Manifest, header: list[str], cells: list[str]) -> ManifestRow:
    d = {h: (cells[j].strip() if j < len(cells) else "") for j, h in enumerate(header)}
    reserved = {h.lower(): d[h] for h in header if h.lower() in RESERVED}
    return ManifestRow(
        i,
        reserved["subject"],
        reserved.get("session") or DEFAULT_SESSION,
        scans={c: d[c] for c in m.modalities if d[c]},
        labels={c: d[c] for c in m.label_columns},
        seg=reserved.get("seg", ""),
        split=reserved.get("split", "").lower(),
    )


def _rows(m: Manifest, header: list[str], table: list[list[str]]) -> list[str]:
    """Fill `m.rows`; returns the structural problems, one per bad cell."""
    problems: list[str] = []
    first: dict[tuple[str, str], int] = {}
    split_of: dict[str, tuple[str, int]] = {}
    for i, cells in enumerate(table, start=2):
        if not any(c.strip() for c in cells):
            continue  # a blank line holds no case
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            problems.append(f"row {i}: {len(cells)} cells, but the header has {len(header)}")
        r = _row(i, m, header, cells)
        if not r.subject:
            problems.append(f"row {i}, column subject: empty")
        key = (_safe(r.subject), _safe(r.session))
        if r.subject and key in first:
            problems.append(f"row {i}, columns subject/session: {r.subject}/{r.session} is "
                            f"also row {first[key]} (one row per session)")  # fmt: skip
        first.setdefault(key, i)
        if m.has_split and r.split not in SPLITS:
            problems.append(f"row {i}, column split: {r.split!r} is not one of {', '.join(SPLITS)}")
        elif m.has_split and r.subject:
            other, j = split_of.setdefault(r.subject, (r.split, i))
            if other != r.split:
                problems.append(
                    f"row {i}, column split: subject {r.subject} is also in the {other} split "
                    f"(row {j}); a subject belongs to one split"
                )
        m.rows.append(r)
    return problems


def _safe(text: str) -> str:
    """The name as the store's file names spell it (two names that differ only in what a file
    name cannot hold would be one session there)."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def image_problem(path: Path) -> str | None:
    """Why a scan or mask path cannot be used (header only, not the voxels), or None."""
    if not path.exists():
        return "file not found"
    if path.is_dir():
        from .dicom import has_dicom

        return None if has_dicom(path) else "a folder without DICOM files"
    if not is_nifti(path):
        return "not a NIfTI file (.nii/.nii.gz) or a DICOM folder"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    from .nifti import read_nifti_header

    try:
        shape, _ = read_nifti_header(path)
    except InputError as e:
        return e.problem
    if len(shape) == 4 and shape[3] > 1:
        return f"a 4-D image of {shape[3]} volumes; give one 3-D volume per file"
    if len(shape) not in (3, 4):
        return f"a {len(shape)}-D image; expected 3-D"
    return None


def by_row(problems: list[str]) -> list[str]:
    """Problems in row order (those of the header first), each said once."""

    def row(p: str) -> int:
        m = re.match(r"row (\d+)", p)
        return int(m.group(1)) if m else 0

    return sorted(dict.fromkeys(problems), key=row)


class NotANumber(str):
    """A label problem: the cell holds text that is no finite number (a multiclass task may
    still read it as a class name, so callers tell this problem from the others by type)."""


def parse_label(cell: str) -> float | str:
    """A label cell as a finite number, or the problem with it (`NotANumber` for text)."""
    if not cell:
        return "empty label"
    try:
        value = float(cell)
    except ValueError:
        return NotANumber(f"label {cell!r} is not a number")
    return value if math.isfinite(value) else NotANumber(f"label {cell!r} is not a number")


def row_problems(
    m: Manifest,
    rows: Sequence[ManifestRow],
    *,
    columns: Sequence[str] | None = None,
    required: Sequence[str] = (),
    need_seg: bool = False,
    check_files: bool = True,
) -> list[str]:
    """One line per bad path cell of `rows`: a scan (in `columns`, default all) or mask that
    cannot be used, a session without a `required` channel ("t2s|swi" = either), a missing
    mask. A required channel with no column at all is said once, not per row. Labels are the
    caller's to check (`parse_label`): what a valid one is depends on the task."""
    problems = []
    columns = list(m.modalities) if columns is None else list(columns)
    need = {e: [c for c in columns if m.modalities[c] in alternatives(e)] for e in required}
    problems += [f"no column for {e} (the task requires it)" for e, cs in need.items() if not cs]
    for r in rows:
        checks = [(c, r.scans[c]) for c in columns if c in r.scans]
        if r.seg or need_seg:
            checks.append(("seg", r.seg))
        for col, cell in checks:
            why = "empty (the task needs a mask per session)" if not cell else None
            why = why or (image_problem(m.resolve(cell)) if check_files else None)
            if why:
                shown = f" ({cell})" if cell else ""
                problems.append(f"row {r.row}, column {col}: {why}{shown}")
        for entry, cols in need.items():
            if cols and not any(c in r.scans for c in cols):
                problems.append(f"row {r.row}, column {'/'.join(cols)}: empty, but the task "
                                f"requires {entry}")  # fmt: skip
    return problems


def manifest_entries(
    m: Manifest,
    rows: Sequence[ManifestRow],
    label_column: str | None,
    columns: Sequence[str] | None = None,
    targets: Sequence[str] = (),
) -> list[ScanEntry]:
    """The scans of `rows` (in `columns`, default all) as the entries `prepare` ingests; each
    carries its session's label from `label_column`, its named `targets` (label columns; an
    empty or bad cell is NaN, the caller has checked them) and its mask, if any."""
    out = []
    for r in rows:
        value = parse_label(r.labels.get(label_column, "")) if label_column else None
        label = value if isinstance(value, float) else None
        named = {c: number_or_nan(r.labels.get(c, "")) for c in targets}
        seg = str(m.resolve(r.seg)) if r.seg else None
        for col, cell in r.scans.items():
            if columns is None or col in columns:
                mod = m.modalities[col]
                out.append(ScanEntry(str(m.resolve(cell)), r.subject, r.session, mod, mod,
                                     label=label, targets=dict(named), seg_path=seg,
                                     dataset=m.path.stem, extra={"row": r.row}))  # fmt: skip
    return out


def number_or_nan(cell: str) -> float:
    """A label cell as a number, NaN when it is empty or no number (a missing target)."""
    value = parse_label(cell)
    return value if isinstance(value, float) else math.nan


def scan_manifest(path: Path) -> list[ScanEntry]:
    """Every scan of a manifest, for `prepare` and `predict --batch` (no task to check it
    against): its structure and labels are checked here, its files when they are read."""
    m, problems = read_manifest(path)
    problems += row_problems(m, m.rows, check_files=False)
    for r in m.rows:
        for col, cell in r.labels.items():
            if cell and isinstance(why := parse_label(cell), str):
                problems.append(f"row {r.row}, column {col}: {why}")
    if problems:
        raise DataErrors(path, by_row(problems))
    return manifest_entries(m, m.rows, m.label_columns[0] if m.label_columns else None)
