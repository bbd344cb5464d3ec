"""BIDS with a participants table, as labelled task data: scans from
`sub-*/[ses-*/]{anat,dwi}/*.nii[.gz]` (so derivatives/ and sourcedata/ are never taken for
scans), case labels from `participants.tsv` (participant_id + label columns), or per session
from `sub-*/sub-*_sessions.tsv` where that file has the label columns (an age per visit).

A BIDS suffix maps onto a modality as a file name does (`T1w` t1, `T2w` t2, `FLAIR` flair,
`PDw` pd, `T2starw` t2s, `dwi` dwi_b1000); a T1w with a `ce-` entity is t1c.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import InputError
from .layouts import ScanEntry, _stem
from .modalities import canonical_modality
from .volume import is_nifti

PARTICIPANTS = "participants.tsv"
DATATYPES = ("anat", "dwi")
MISSING = "n/a"  # BIDS spells a missing value so


def is_bids_with_participants(root: Path) -> bool:
    return root.is_dir() and (root / PARTICIPANTS).is_file() and any(root.glob("sub-*"))


def bids_modality(path: Path) -> tuple[str, str | None]:
    """(sequence, modality) of a BIDS file: the sequence is its name without the sub-/ses-
    entities (unique within a session, so two runs stay two scans); the modality is its
    suffix's, t1c for a contrast-enhanced T1w."""
    parts = _stem(path).split("_")
    sequence = "_".join(p for p in parts if not p.startswith(("sub-", "ses-")))
    modality = canonical_modality(parts[-1])
    if modality == "t1" and any(p.startswith("ce-") for p in parts[:-1]):
        modality = "t1c"
    return sequence, modality


def bids_scans(root: Path) -> list[ScanEntry]:
    """Every NIfTI file of the raw BIDS tree, one entry each (modality None: unknown suffix)."""
    out = []
    for sub in sorted(p for p in root.glob("sub-*") if p.is_dir()):
        for ses in [sub, *sorted(p for p in sub.glob("ses-*") if p.is_dir())]:
            session = ses.name if ses != sub else "ses-1"
            for dtype in DATATYPES:
                for f in sorted((ses / dtype).glob("*.nii*")):
                    if is_nifti(f):
                        seq, mod = bids_modality(f)
                        out.append(
                            ScanEntry(str(f), sub.name, session, seq, mod, dataset=root.name)
                        )
    return out


def read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A BIDS table: its header and rows (cells stripped; a short row padded with n/a)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            table = list(csv.reader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(path, f"cannot read the table ({type(e).__name__}: {e})") from None
    if not table:
        raise InputError(path, "the table is empty: it needs a header row")
    header = [h.strip() for h in table[0]]
    rows = [{h: (r[j].strip() if j < len(r) else MISSING) for j, h in enumerate(header)}
            for r in table[1:] if any(c.strip() for c in r)]  # fmt: skip
    return header, rows


def _table(
    path: Path, key: str, columns: list[str], where: str
) -> tuple[dict[str, tuple[str, dict[str, str]]], list[str]]:
    """{key value: (where its row is, {label column: cell})} and the table's problems."""
    header, rows = read_tsv(path)
    missing = [c for c in [key, *columns] if c not in header]
    if missing:
        return {}, [f"{where}: no column {', '.join(missing)} (its columns: {', '.join(header)})"]
    out: dict[str, tuple[str, dict[str, str]]] = {}
    problems = []
    for i, r in enumerate(rows, start=2):
        at = f"{where} row {i}"
        if r[key] in out:
            problems.append(f"{at}, column {key}: {r[key]} is also {out[r[key]][0]}")
        out.setdefault(r[key], (at, {c: r[c] for c in columns}))
    return out, problems


def bids_labels(
    root: Path, sessions: set[tuple[str, str]], columns: list[str]
) -> tuple[dict[tuple[str, str], tuple[str, dict[str, str]]], list[str]]:
    """Each session's label cells and where they were read, and every problem: a subject with
    scans but no participants row, a participants row without scans, a session that its
    subject's sessions.tsv leaves out."""
    people, problems = _table(root / PARTICIPANTS, "participant_id", columns, PARTICIPANTS)
    if problems and not people:
        return {}, problems
    subjects = {s for s, _ in sessions}
    for pid, (at, _) in people.items():
        if pid not in subjects:
            problems.append(f"{at}: {pid} has no scans that the task uses under {pid}/")
    out: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
    for sub in sorted(subjects):
        if sub not in people:
            problems.append(f"{sub}/: has scans but no row in {PARTICIPANTS}")
            continue
        per_session = _session_table(root, sub, columns, problems)
        for s, ses in sorted(x for x in sessions if x[0] == sub):
            if per_session is None:
                out[(s, ses)] = people[sub]
            elif ses in per_session:
                out[(s, ses)] = per_session[ses]
            else:
                problems.append(f"{sub}/{sub}_sessions.tsv: no row for {ses}")
    return out, problems


def _session_table(
    root: Path, sub: str, columns: list[str], problems: list[str]
) -> dict[str, tuple[str, dict[str, str]]] | None:
    """The subject's per-session labels, or None when its sessions.tsv is absent or lacks the
    label columns (then every session takes the participants row)."""
    path = root / sub / f"{sub}_sessions.tsv"
    if not path.is_file() or not set(columns) <= set(read_tsv(path)[0]):
        return None
    table, found = _table(path, "session_id", columns, f"{sub}/{path.name}")
    problems += found
    return table
