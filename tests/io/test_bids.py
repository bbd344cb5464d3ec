"""BIDS as labelled data: suffixes map onto modalities, derivatives are never scans, labels
come from participants.tsv or, per visit, from a subject's sessions.tsv."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainfoundry.io.bids import bids_labels, bids_modality, bids_scans
from tests.conftest import save


@pytest.mark.parametrize(
    "name, want",
    [
        ("sub-01_T1w.nii.gz", "t1"),
        ("sub-01_ses-2_T2w.nii.gz", "t2"),
        ("sub-01_acq-3d_FLAIR.nii.gz", "flair"),
        ("sub-01_ce-gadolinium_T1w.nii.gz", "t1c"),
        ("sub-01_dwi.nii.gz", "dwi_b1000"),
        ("sub-01_T2starw.nii.gz", "t2s"),
        ("sub-01_PDw.nii.gz", "pd"),
        ("sub-01_inplaneT2.nii.gz", None),
    ],
)
def test_suffixes_map_onto_modalities(name, want):
    assert bids_modality(Path(name))[1] == want


def test_scans_skip_derivatives_and_keep_two_runs_apart(tmp_path, mni):
    root = tmp_path / "ds"
    save(root / "sub-01" / "anat" / "sub-01_run-1_T1w.nii.gz", *mni)
    save(root / "sub-01" / "anat" / "sub-01_run-2_T1w.nii.gz", *mni)
    save(root / "sub-02" / "ses-a" / "anat" / "sub-02_ses-a_T1w.nii.gz", *mni)
    save(root / "derivatives" / "x" / "sub-01" / "anat" / "sub-01_desc-brain_T1w.nii.gz", *mni)
    entries = bids_scans(root)
    got = sorted((e.subject, e.session, e.sequence) for e in entries)
    assert got == [
        ("sub-01", "ses-1", "run-1_T1w"),
        ("sub-01", "ses-1", "run-2_T1w"),
        ("sub-02", "ses-a", "T1w"),
    ]


def test_labels_per_participant_or_per_session(tmp_path):
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tage\nsub-01\t30\nsub-02\t41\nsub-09\t50\n"
    )
    (tmp_path / "sub-02").mkdir()
    (tmp_path / "sub-02" / "sub-02_sessions.tsv").write_text(
        "session_id\tage\nses-1\t41\nses-2\t43.5\n"
    )
    sessions = {("sub-01", "ses-1"), ("sub-02", "ses-1"), ("sub-02", "ses-2"), ("sub-03", "ses-1")}
    labels, problems = bids_labels(tmp_path, sessions, ["age"])
    assert labels[("sub-01", "ses-1")][1] == {"age": "30"}
    assert labels[("sub-02", "ses-2")] == ("sub-02/sub-02_sessions.tsv row 3", {"age": "43.5"})
    assert (
        "participants.tsv row 4: sub-09 has no scans that the task uses under sub-09/" in problems
    )
    assert "sub-03/: has scans but no row in participants.tsv" in problems
