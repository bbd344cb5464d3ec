"""A researcher's own labelled data through the real CLI: a CSV manifest (relative paths to
real NIfTI files), BIDS with participants.tsv, and a task folder holding finetune/ and test/.
Every bad row is one line of one error (exit 2), and what is read but not trainable yet is said.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from brainfoundry.cli import main
from brainfoundry.errors import ConfigError, InputError
from brainfoundry.tasks.data import prepare_task_data, preprocess_config
from brainfoundry.tasks.sources import task_source
from brainfoundry.tasks.spec import TaskSpec, get_task
from tests.tasks.own_data import sessions, store_labels, write_bids, write_manifest

TINY = ["--preset", "cpu-tiny", "train.steps=0"]


@pytest.mark.slow
def test_csv_manifest_finetunes_and_evaluates(task_data, tmp_path, capsys):
    data, own, out = task_data["brainage"], tmp_path / "own", tmp_path / "run"
    own.mkdir()
    ft = write_manifest(data / "finetune", own, "finetune.csv")
    te = write_manifest(data / "test", own, "test.csv")
    assert main(["finetune", "--task", "brainage", "--data", str(ft), "-o", str(out), *TINY]) == 0
    assert "brainage: 10 labelled fine-tuning cases" in capsys.readouterr().out
    want = {sub: float(label) for sub, _, label in sessions(data / "finetune")}
    assert store_labels(out / "store") == want
    assert main(["evaluate", str(out), "--data", str(te), "--n-boot", "50"]) == 0
    preds = pd.read_csv(out / "seed_0" / "predictions.csv")
    assert len(preds) == 6 and json.loads((out / "metrics.json").read_text())["n_cases"] == 6


def test_every_bad_row_is_one_line_and_nothing_is_prepared(task_data, tmp_path, capsys):
    own = tmp_path / "own"
    own.mkdir()
    good = write_manifest(task_data["brainage"] / "finetune", own, "good.csv")
    rows = good.read_text().splitlines()
    rows[0] += ",T1_path"
    rows[1] += ",scans/sub_1/t1.nii.gz"  # a column of scans whose name is no modality
    rows[2] = rows[2].replace("t1.nii.gz", "gone.nii.gz")  # row 3: the file is missing
    rows[3] = rows[3].rsplit(",", 1)[0] + ","  # row 4: empty label
    rows[4] = rows[4].rsplit(",", 1)[0] + ",old"  # row 5: label not a number
    rows[5] = rows[5].replace("scans/sub_4/", "scans/sub_4")  # row 6: both paths wrong
    rows.append(rows[1])  # row 12: the same subject/session again
    (own / "bad.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    argv = ["finetune", "--task", "brainage", "--data", str(own / "bad.csv"), "-o", str(out)]
    capsys.readouterr()  # not what the fixture printed
    assert main([*argv, *TINY]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: {own / 'bad.csv'}: 7 problems, one per line:"
    assert err[1].startswith("  column 'T1_path' holds image paths but is not a modality")
    assert err[2] == "  row 3, column t1: file not found (scans/sub_10/gone.nii.gz)"
    assert err[3] == "  row 4, column label: empty label"
    assert err[4] == "  row 5, column label: label 'old' is not a number"
    assert err[5] == "  row 6, column t1: file not found (scans/sub_4t1.nii.gz)"
    assert err[6] == "  row 6, column t2: file not found (scans/sub_4t2.nii.gz)"
    assert (
        err[7]
        == "  row 12, columns subject/session: sub_1/ses_1 is also row 2 (one row per session)"
    )
    assert not (out / "store").exists()  # checked before anything was prepared


@pytest.mark.slow
def test_bids_with_participants_finetunes(task_data, tmp_path, capsys):
    root, out = tmp_path / "bids", tmp_path / "run"
    labels = write_bids(task_data["brainage"] / "finetune", root)
    assert main(["finetune", "--task", "brainage", "--data", str(root), "-o", str(out), *TINY]) == 0
    assert "bids: scans not used by task brainage: FLAIR" in capsys.readouterr().out
    assert store_labels(out / "store") == labels  # derivatives/ was not taken for a scan


def test_bids_problems_are_listed_together(task_data, tmp_path):
    root = tmp_path / "bids"
    write_bids(task_data["brainage"] / "finetune", root)
    table = (root / "participants.tsv").read_text().splitlines()
    table[2] = table[2].replace("\t", "\tn/a\t", 1).rsplit("\t", 2)[0] + "\tF"  # sub-02: n/a
    del table[3]  # sub-03 loses its row
    (root / "participants.tsv").write_text("\n".join(table) + "\n")
    (root / "sub-05" / "anat" / "sub-05_T2w.nii.gz").unlink()
    with pytest.raises(InputError) as e:
        task_source(root, get_task("brainage"), "finetune", log=lambda _: None)
    assert e.value.problems == [
        "sub-05/: no t2 scan (task brainage requires it)",
        "sub-03/: has scans but no row in participants.tsv",
        "participants.tsv row 3, column label: empty label (n/a)",
    ]


def test_a_task_folder_picks_its_part_and_says_so(task_data, tmp_path, capsys):
    data = task_data["brainage"]
    lines: list[str] = []
    for role, part in (("finetune", "finetune"), ("test", "test")):
        src = task_source(data, get_task("brainage"), role, log=lines.append)
        assert src.path == data / part and src.part == role
    assert lines == [
        f"data: {data} holds finetune and test data; fine-tuning reads {data / 'finetune'}",
        f"data: {data} holds finetune and test data; evaluation reads {data / 'test'}",
    ]
    (tmp_path / "only" / "finetune").mkdir(parents=True)
    with pytest.raises(InputError, match="holds finetune but no test/ or test.csv"):
        task_source(tmp_path / "only", get_task("brainage"), "test", log=lambda _: None)


@pytest.mark.slow
def test_cli_finetune_and_evaluate_on_a_task_folder(task_data, tmp_path, capsys):
    data, out = task_data["brainage"], tmp_path / "run"
    assert main(["finetune", "--task", "brainage", "--data", str(data), "-o", str(out), *TINY]) == 0
    assert f"fine-tuning reads {data / 'finetune'}" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--data", str(data), "--n-boot", "50"]) == 0
    assert f"evaluation reads {data / 'test'}" in capsys.readouterr().out


def test_a_split_column_serves_both_commands(task_data, tmp_path):
    own, data = tmp_path / "own", task_data["brainage"]
    own.mkdir()
    ft = write_manifest(data / "finetune", own, "a.csv").read_text().splitlines()
    te = write_manifest(data / "test", own, "b.csv").read_text().splitlines()
    text = [ft[0] + ",split", *(r + ",finetune" for r in ft[1:]), *(r + ",test" for r in te[1:])]
    (own / "all.csv").write_text("\n".join(text) + "\n")
    lines: list[str] = []
    src = task_source(own / "all.csv", get_task("brainage"), "test", log=lines.append)
    assert src.found is not None and src.part == "test"
    assert {e.subject for e in src.found[1]} == {s for s, _, _ in sessions(data / "test")}
    assert lines == ["all.csv: evaluation reads the 6 rows with split=test (of 16)"]
    text.append(text[1].replace(",finetune", ",test").replace("ses_1", "ses_2"))
    (own / "all.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match="row 18, column split: subject sub_1 is also in the "):
        task_source(own / "all.csv", get_task("brainage"), "test", log=lambda _: None)


def test_labels_are_checked_against_the_task_kind(task_data, tmp_path, capsys):
    own = tmp_path / "own"
    own.mkdir()
    classes = {f"sub_{i}": str(i % 3) for i in range(1, 11)}
    write_manifest(task_data["brainage"] / "finetune", own, "m.csv", label=classes)
    spec = own / "three.yaml"
    spec.write_text("name: three\ntype: classification\nmodalities: [t1, t2]\nmetrics: [auroc]\n")
    argv = [
        "finetune",
        "--task",
        str(spec),
        "--data",
        str(own / "m.csv"),
        "-o",
        str(tmp_path / "o"),
    ]
    assert main([*argv, *TINY]) == 2
    err = capsys.readouterr().err
    assert "column label holds 3 classes (0, 1, 2), but task three is binary" in err
    assert "type: multiclass" in err
    mmse = {f"sub_{i}": str(20 + i) for i in range(1, 11)}
    write_manifest(task_data["brainage"] / "finetune", own, "two.csv", mmse=mmse)
    spec.write_text(
        "name: two\ntype: regression\nmodalities: [t1, t2]\nmetrics: [mae]\n"
        "label_columns: [label, mmse]\n"
    )
    argv = [
        "finetune",
        "--task",
        str(spec),
        "--data",
        str(own / "two.csv"),
        "-o",
        str(tmp_path / "o"),
    ]
    assert main([*argv, *TINY]) == 0  # two targets, one model (a multi-target head)
    val = json.loads((tmp_path / "o" / "seed_0" / "val_metrics.json").read_text())["metrics"]
    assert {"mae:label", "mae:mmse", "mae"} <= set(val)
    mmse["sub_3"] = "x"  # row 5 (rows sort sub_1, sub_10, sub_2, ...): checked first
    write_manifest(task_data["brainage"] / "finetune", own, "two.csv", mmse=mmse)
    assert main([*argv, *TINY]) == 2
    assert "row 5, column mmse: label 'x' is not a number" in capsys.readouterr().err


def test_a_segmentation_manifest_reads_its_masks(task_data, tmp_path):
    own, spec = tmp_path / "own", get_task("meningioma")
    own.mkdir()
    path = write_manifest(task_data["meningioma"] / "finetune", own, "m.csv")
    src = task_source(path, spec, "finetune", log=lambda _: None)
    assert src.found is not None
    assert all(e.seg_path == str(own / "scans" / e.subject / "seg.nii.gz") for e in src.found[1])
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ","  # row 3 loses its mask
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as e:
        task_source(path, spec, "finetune", log=lambda _: None)
    assert e.value.problems == ["row 3, column seg: empty (the task needs a mask per session)"]
    path.write_text("\n".join(ln.rsplit(",", 1)[0] for ln in lines) + "\n")
    with pytest.raises(InputError, match="no seg column"):
        task_source(path, spec, "finetune", log=lambda _: None)


def test_a_rerun_with_changed_labels_is_refused(task_data, tmp_path):
    own, store = tmp_path / "own", tmp_path / "store"
    own.mkdir()
    path = write_manifest(task_data["brainage"] / "finetune", own, "m.csv")
    pre, spec = preprocess_config([6, 6, 6], None), get_task("brainage")
    src = task_source(path, spec, "finetune", log=lambda _: None)
    prepare_task_data(src.path, store, pre, src.found)
    path.write_text(path.read_text().replace(",ses_1,", ",ses_2,", 1))  # sub_1 moves session
    src = task_source(path, spec, "finetune", log=lambda _: None)
    with pytest.raises(InputError, match=r"sessions it does not list now: sub_1/ses_1\)"):
        prepare_task_data(src.path, store, pre, src.found)


def test_label_columns_must_be_plain_names():
    base = {"name": "x", "type": "regression", "modalities": ["t1"], "metrics": ["mae"]}
    assert TaskSpec.from_dict({**base, "label_columns": ["age"]}).label_columns == ["age"]
    for bad in (["subject"], ["flair"], ["age", "age"], []):
        with pytest.raises(ConfigError, match="label_columns"):
            TaskSpec.from_dict({**base, "label_columns": bad})
