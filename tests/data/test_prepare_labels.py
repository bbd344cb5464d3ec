"""Label maps that prepare cannot use are said out loud: a label on none of its session's grids
is a counted warning (the run's summary, warnings.jsonl, every resumed run, the store's
manifest), and the task that then has a case fewer says which session it lost."""

from __future__ import annotations

import json

import numpy as np

from brainfoundry.cli import main
from brainfoundry.data.prepare import PrepareConfig, prepare
from brainfoundry.data.preprocess import PreprocessConfig
from brainfoundry.data.store import Store
from brainfoundry.tasks import get_task
from brainfoundry.tasks.data import case_table, dropped_labels
from tests.conftest import save

CFG = PrepareConfig(preprocess=PreprocessConfig(spacing=(8.0, 8.0, 8.0)))
SPEC = "name: lesion\ntype: segmentation\nmodalities: [flair]\nlabel: seg.nii.gz\nmetrics: [dice]\n"


def _task_folder(root, mni):
    """sub_1: two flair scans on two grids and a label on a third; sub_2: one grid, its label."""
    data, affine = mni
    pre, lab = root / "preprocessed", root / "labels"
    mask = (data > np.percentile(data, 90)).astype(np.uint8)
    save(pre / "sub_1" / "ses_1" / "flair.nii.gz", data, affine)
    save(pre / "sub_1" / "ses_1" / "flair_2.nii.gz", data[:-3], affine)
    save(lab / "sub_1" / "ses_1" / "seg.nii.gz", mask[:-6], affine)
    save(pre / "sub_2" / "ses_1" / "flair.nii.gz", data, affine)
    save(lab / "sub_2" / "ses_1" / "seg.nii.gz", mask, affine)
    return lab / "sub_1" / "ses_1" / "seg.nii.gz"


def test_a_label_on_none_of_its_sessions_grids_is_a_counted_warning(tmp_path, mni, capsys):
    seg = _task_folder(tmp_path / "raw", mni)
    store = tmp_path / "store"
    rc = main(["prepare", str(tmp_path / "raw"), str(store), "--spacing", "8", "-q"])
    assert rc == 0  # the scans are kept: a warning, not an error
    out, err = capsys.readouterr()
    # flair_2 (another grid) is registered onto flair's grid: a warning of its own
    moved = str(tmp_path / "raw" / "preprocessed" / "sub_1" / "ses_1" / "flair_2.nii.gz")
    assert "0 errors, 2 warnings" in out
    assert f"warning: sub_1/ses_1: {seg}" in err and "matches none of the session's grids" in err
    assert f"warning: sub_1/ses_1: {moved}" in err and "rigid registration" in err
    lines = (store / "warnings.jsonl").read_text().splitlines()
    assert [json.loads(x)["path"] for x in lines] == [str(seg), moved]
    assert (store / "errors.jsonl").read_text() == ""
    m = Store(store).manifest
    lost = m[m["subject"] == "sub_1"]
    assert len(lost) == 2 and lost["seg"].isna().all() and (lost["seg_dropped"] == str(seg)).all()
    assert lost["group"].nunique() == 1  # one grid: stackable as channels
    again = prepare(tmp_path / "raw", store, CFG, progress=False, log=lambda _: None)
    assert again.n_skipped == 2 and [w["path"] for w in again.warnings] == [str(seg), moved]
    # the task then has one case, and says which session it lost and why
    (tmp_path / "lesion.yaml").write_text(SPEC)
    spec = get_task(str(tmp_path / "lesion.yaml"))
    assert list(case_table(Store(store), spec)["case"]) == ["sub_2"]
    (warning,) = dropped_labels(Store(store), spec)
    assert "sub_1/ses_1" in warning and str(seg) in warning
    assert dropped_labels(Store(store), get_task("brainage")) == []  # its labels are label.txt


def _two_grids_label_on_second(root, mni):
    data, affine = mni
    save(root / "preprocessed" / "sub_1" / "ses_1" / "flair.nii.gz", data[:-3], affine)
    save(root / "preprocessed" / "sub_1" / "ses_1" / "flair_2.nii.gz", data, affine)
    save(root / "labels" / "sub_1" / "ses_1" / "seg.nii.gz", (data > 0).astype(np.uint8), affine)
    return root / "preprocessed" / "sub_1" / "ses_1" / "flair.nii.gz"


def test_the_label_goes_to_the_grid_it_fits(tmp_path, mni):
    """Two grids, the label on the second: its grid is the reference, the other scan is
    registered onto it (a warning), and both scans carry the label; nothing is dropped."""
    moved = _two_grids_label_on_second(tmp_path / "raw", mni)
    res = prepare(tmp_path / "raw", tmp_path / "store", CFG, progress=False, log=lambda _: None)
    assert res.errors == [] and [w["path"] for w in res.warnings] == [str(moved)]
    m = Store(tmp_path / "store").manifest
    assert m["seg"].notna().sum() == 2 and m["seg_dropped"].isna().all()
    assert m["group"].nunique() == 1
    assert m.loc[m["seg"].notna(), "seg_range"].iloc[0].tolist() == [0, 1]


def test_with_coregister_off_each_grid_is_a_group_and_the_label_goes_to_its_grid(tmp_path, mni):
    _two_grids_label_on_second(tmp_path / "raw", mni)
    off = PrepareConfig(preprocess=PreprocessConfig(spacing=(8.0, 8.0, 8.0), coregister="off"))
    res = prepare(tmp_path / "raw", tmp_path / "store", off, progress=False, log=lambda _: None)
    assert res.errors == [] and res.warnings == []
    m = Store(tmp_path / "store").manifest
    assert m["seg"].notna().sum() == 1 and m["seg_dropped"].isna().all()
    assert m["group"].nunique() == 2
    assert m.loc[m["seg"].notna(), "seg_range"].iloc[0].tolist() == [0, 1]
