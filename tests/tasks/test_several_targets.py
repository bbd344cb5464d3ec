"""Several regression targets per session (age and tissue volumes), read from a CSV manifest's
or a participants table's label columns into the store's target:<name> columns, and back out
with `targets_of`. Fine-tuning still refuses them (no head yet), in one line."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from brainfoundry.cli import main
from brainfoundry.data.store import Store, target_column
from brainfoundry.errors import InputError
from brainfoundry.tasks.sources import task_source
from brainfoundry.tasks.spec import TaskSpec
from brainfoundry.tasks.validate import labels_of, targets_of
from tests.conftest import save

SPEC = """name: profile
type: regression
modalities: [t1, t2]
label_columns: [age, gm_ml, csf_ml]
metrics: [mae]
"""
ROWS = {"p1": ("61.5", "600", "150.5"), "p2": ("40", "650.25", ""), "p3": ("72", "580", "190")}


def _spec(*columns: str) -> TaskSpec:
    return TaskSpec.from_dict({"name": "profile", "type": "regression", "modalities": ["t1", "t2"],
                               "label_columns": list(columns), "metrics": ["mae"]})  # fmt: skip


def _scans(root, mni, subjects) -> None:
    data, affine = mni
    for i, sub in enumerate(subjects):
        for j, m in enumerate(("t1", "t2")):
            save(root / "scans" / f"{sub}_{m}.nii.gz", data * (1.0 + 0.1 * i + 0.05 * j), affine)


def _manifest(root, mni, rows=ROWS):
    _scans(root, mni, rows)
    lines = ["subject,t1,t2,age,gm_ml,csf_ml,site"]
    lines += [
        f"{s},scans/{s}_t1.nii.gz,scans/{s}_t2.nii.gz,{','.join(v)},A" for s, v in rows.items()
    ]
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    (root / "profile.yaml").write_text(SPEC)
    return root / "m.csv", root / "profile.yaml"


def _prepare(csv, spec, store, capsys) -> int:
    argv = ["prepare", str(csv), str(store), "--task", str(spec), "--spacing", "6", "-q"]
    rc = main(argv)
    capsys.readouterr()
    return rc


def test_csv_targets_go_into_the_store_and_come_back(tmp_path, mni, capsys):
    csv, spec = _manifest(tmp_path, mni)
    store = tmp_path / "store"
    assert _prepare(csv, spec, store, capsys) == 0
    m = pd.read_parquet(store / "manifest.parquet")
    assert {target_column(n) for n in ("age", "gm_ml", "csf_ml")} <= set(m.columns)
    assert "target:site" not in m.columns  # not a label column of the task
    s = Store(store)
    keys = sorted(s.groups())
    subjects = [s.manifest.loc[s.manifest["group"] == k, "subject"].iloc[0] for k in keys]
    got = targets_of(s, keys, ["age", "gm_ml", "csf_ml"])
    want = np.array([[float(v) if v else np.nan for v in ROWS[sub]] for sub in subjects])
    assert got.shape == (3, 3) and np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(labels_of(s, keys), want[:, 0])  # the label: the first target
    assert targets_of(s, keys[:1], ["csf_ml", "age"]).tolist() == [list(want[0, [2, 0]])]
    assert targets_of(s, keys, []).shape == (3, 0)
    with pytest.raises(
        InputError, match="holds no target wmh_ml \\(its targets: age, gm_ml, csf_ml\\)"
    ):
        targets_of(s, keys, ["age", "wmh_ml"])


def test_a_rerun_with_a_changed_target_is_refused(tmp_path, mni, capsys):
    csv, spec = _manifest(tmp_path, mni)
    store = tmp_path / "store"
    assert _prepare(csv, spec, store, capsys) == 0
    assert _prepare(csv, spec, store, capsys) == 0  # the same data: resumes
    csv.write_text(csv.read_text().replace(",650.25,", ",651,"))
    assert main(["prepare", str(csv), str(store), "--task", str(spec), "--spacing", "6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "m.csv: columns not used by task profile: site"
    assert len(err) == 2 and err[1].startswith(f"error: {store}: was prepared from other data")
    assert "(targets that changed: p2/ses_1 gm_ml 650.25 -> 651)" in err[1]


def test_only_the_first_label_column_must_be_given(tmp_path, mni):
    rows = {"p1": ("", "600", "1"), "p2": ("40", "x", "")}
    csv, _ = _manifest(tmp_path, mni, rows)
    with pytest.raises(InputError) as e:
        task_source(csv, _spec("age", "gm_ml", "csf_ml"), "finetune", print)
    assert e.value.problems == [
        "row 2, column age: empty label",
        "row 3, column gm_ml: label 'x' is not a number",
    ]


def _bids(root, mni, participants: str):
    _scans(root, mni, ["sub-01", "sub-02"])
    for sub in ("sub-01", "sub-02"):
        anat = root / sub / "anat"
        anat.mkdir(parents=True)
        for m, suffix in (("t1", "T1w"), ("t2", "T2w")):
            (root / "scans" / f"{sub}_{m}.nii.gz").rename(anat / f"{sub}_{suffix}.nii.gz")
    (root / "scans").rmdir()
    (root / "participants.tsv").write_text(participants)
    return root


def test_bids_participants_with_two_label_columns(tmp_path, mni, capsys):
    table = "participant_id\tage\tgm_ml\tsex\nsub-01\t61.5\t600\tF\nsub-02\t40\tn/a\tM\n"
    root = _bids(tmp_path / "bids", mni, table)
    spec = tmp_path / "two.yaml"
    spec.write_text(SPEC.replace("[age, gm_ml, csf_ml]", "[age, gm_ml]"))
    src = task_source(root, _spec("age", "gm_ml"), "finetune", print)
    assert src.found is not None
    by = {e.subject: e for e in src.found[1]}
    assert by["sub-01"].label == 61.5 and by["sub-01"].targets == {"age": 61.5, "gm_ml": 600.0}
    assert by["sub-02"].label == 40.0 and math.isnan(by["sub-02"].targets["gm_ml"])
    store = tmp_path / "store"
    assert _prepare(root, spec, store, capsys) == 0
    s = Store(store)
    keys = sorted(s.groups())
    got = targets_of(s, keys, ["age", "gm_ml"])
    assert np.array_equal(got, [[61.5, 600.0], [40.0, np.nan]], equal_nan=True)
    (root / "participants.tsv").write_text(table.replace("\t40\t", "\tn/a\t"))
    with pytest.raises(InputError, match="participants.tsv row 3, column age: empty label \\(n/a"):
        task_source(root, _spec("age", "gm_ml"), "finetune", print)
