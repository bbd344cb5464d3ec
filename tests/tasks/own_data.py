"""Own-data fixtures for tests: a FOMO task folder written out as a CSV manifest (relative
paths to copied NIfTI files) or as BIDS with participants.tsv."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd


def sessions(part: Path):
    """(subject, session folder, label text or None) of a FOMO task folder."""
    for ses in sorted((part / "preprocessed").glob("*/*")):
        label = part / "labels" / ses.parent.name / ses.name / "label.txt"
        yield ses.parent.name, ses, label.read_text().strip() if label.exists() else None


def write_manifest(part: Path, dest: Path, name: str, **extra: dict) -> Path:
    """A manifest of `part`'s sessions at dest/name, its scans copied to dest/scans/ and named
    by paths relative to the CSV; `extra` adds columns {column: {subject: cell}}."""
    rows = []
    for sub, ses, label in sessions(part):
        row = {"subject": sub, "session": ses.name}
        for f in sorted(ses.glob("*.nii.gz")):
            target = dest / "scans" / sub / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
            row[f.name.removesuffix(".nii.gz")] = f"scans/{sub}/{f.name}"
        seg = part / "labels" / sub / ses.name / "seg.nii.gz"
        if label is not None:
            row["label"] = label
        else:  # a segmentation task: the mask's path
            shutil.copy(seg, dest / "scans" / sub / "seg.nii.gz")
            row["seg"] = f"scans/{sub}/seg.nii.gz"
        row.update({col: cells.get(sub, "") for col, cells in extra.items()})
        rows.append(row)
    with open(dest / name, "w", newline="") as fh:
        names = list(dict.fromkeys(k for r in rows for k in r))  # sessions differ in sequences
        last = list(dict.fromkeys(["label", "seg", *extra]))
        names = [n for n in names if n not in last] + [n for n in last if n in names]
        w = csv.DictWriter(fh, fieldnames=names, restval="")
        w.writeheader()
        w.writerows(rows)
    return dest / name


def write_bids(part: Path, root: Path) -> dict[str, float]:
    """`part` as BIDS: odd subjects without a session folder, even ones in ses-1; a FLAIR the
    task does not use, a derivatives/ copy that is no scan, and participants.tsv."""
    labels, lines = {}, ["participant_id\tlabel\tsex"]
    for i, (_, ses, label) in enumerate(sessions(part), start=1):
        sub = f"sub-{i:02d}"
        anat = root / sub / "anat" if i % 2 else root / sub / "ses-1" / "anat"
        anat.mkdir(parents=True)
        stem = f"{sub}_" if i % 2 else f"{sub}_ses-1_"
        shutil.copy(ses / "t1.nii.gz", anat / f"{stem}T1w.nii.gz")
        shutil.copy(ses / "t2.nii.gz", anat / f"{stem}T2w.nii.gz")
        labels[sub] = float(label)
        lines.append(f"{sub}\t{label}\tF")
    shutil.copy(ses / "t1.nii.gz", anat / f"{stem}FLAIR.nii.gz")
    deriv = root / "derivatives" / "brain" / "sub-01" / "anat"
    deriv.mkdir(parents=True)
    shutil.copy(ses / "t1.nii.gz", deriv / "sub-01_desc-brain_T1w.nii.gz")
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")
    return labels


def store_labels(store: Path) -> dict[str, float]:
    m = pd.read_parquet(store / "manifest.parquet")
    return m.groupby("subject")["label"].first().to_dict()
