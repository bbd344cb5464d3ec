"""The CSV manifest (one row per session, a path column per modality), read from real NIfTI
files: relative paths, modality columns, labels, and every bad row said in one error."""

from __future__ import annotations

import numpy as np
import pytest

from brainfoundry.errors import DataErrors, InputError
from brainfoundry.io.layouts import discover
from brainfoundry.io.manifest import image_problem, read_manifest, row_problems
from tests.conftest import save


@pytest.fixture
def scans(tmp_path, mni):
    """tmp/scans/{a,b}_{t1,flair}.nii.gz and a mask, written from the MNI template."""
    data, affine = mni
    for s in ("a", "b"):
        for m in ("t1", "flair"):
            save(tmp_path / "scans" / f"{s}_{m}.nii.gz", data, affine)
    save(tmp_path / "scans" / "a_seg.nii.gz", (data > data.mean()).astype(np.uint8), affine)
    return tmp_path


def test_a_manifest_becomes_scan_entries_with_paths_beside_the_csv(scans):
    (scans / "own.csv").write_text(
        "subject,session,T1w,flair,label,seg,site\n"
        "a,ses_1,scans/a_t1.nii.gz,scans/a_flair.nii.gz,1,scans/a_seg.nii.gz,x\n"
        "b,,scans/b_t1.nii.gz,,0,,y\n"
    )
    layout, entries = discover(scans / "own.csv")
    assert layout == "csv"
    by = {(e.subject, e.modality): e for e in entries}
    assert set(by) == {("a", "t1"), ("a", "flair"), ("b", "t1")}  # an empty cell is no scan
    a = by[("a", "t1")]
    assert a.path == str(scans / "scans" / "a_t1.nii.gz") and a.label == 1.0
    assert a.seg_path == str(scans / "scans" / "a_seg.nii.gz") and a.dataset == "own"
    assert by[("b", "t1")].session == "ses_1" and by[("b", "t1")].seg_path is None


def test_header_problems_name_the_column(scans):
    (scans / "h.csv").write_text(
        "subject,t1,T1w,t1_path\na,scans/a_t1.nii.gz,scans/a_t1.nii.gz,scans/b_t1.nii.gz\n"
    )
    with pytest.raises(DataErrors) as e:
        discover(scans / "h.csv")
    assert "columns 't1' and 'T1w' both name modality t1" in str(e.value)
    assert "column 't1_path' holds image paths but is not a modality" in str(e.value)
    (scans / "none.csv").write_text("who,what\nx,y\n")
    with pytest.raises(InputError, match="needs columns 'subject'"):
        discover(scans / "none.csv")


def test_every_bad_row_is_one_line(scans):
    (scans / "bad.csv").write_text(
        "subject,session,t1,label\n"
        "a,s1,scans/a_t1.nii.gz,1\n"
        "a,s1,scans/b_t1.nii.gz,0\n"  # row 3: duplicate session
        ",s1,scans/b_t1.nii.gz,0\n"  # row 4: no subject
        "c,s1,scans/none.nii.gz,old\n"  # row 5: missing file, label not a number
    )
    m, problems = read_manifest(scans / "bad.csv")
    problems += row_problems(m, m.rows)
    assert "row 3, columns subject/session: a/s1 is also row 2 (one row per session)" in problems
    assert "row 4, column subject: empty" in problems
    assert "row 5, column t1: file not found (scans/none.nii.gz)" in problems
    with pytest.raises(DataErrors) as e:  # without a task, labels are still checked
        discover(scans / "bad.csv")
    assert "row 5, column label: label 'old' is not a number" in e.value.problems
    lines = str(e.value).splitlines()
    assert lines[0].endswith("3 problems, one per line:") and len(lines) == 4


def test_image_problems_are_found_from_the_header(tmp_path, mni):
    data, affine = mni
    four = save(tmp_path / "4d.nii.gz", np.stack([data, data], -1), affine)
    assert "4-D image of 2 volumes" in str(image_problem(four))
    (tmp_path / "x.txt").write_text("x")
    assert "not a NIfTI" in str(image_problem(tmp_path / "x.txt"))
    (tmp_path / "broken.nii.gz").write_bytes(b"not gzip")
    assert "cannot read NIfTI header" in str(image_problem(tmp_path / "broken.nii.gz"))
    assert image_problem(tmp_path / "gone.nii.gz") == "file not found"
    assert image_problem(save(tmp_path / "ok.nii.gz", data, affine)) is None
