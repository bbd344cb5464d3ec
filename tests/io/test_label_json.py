"""label.json, the per-case label file of several named targets in a FOMO task folder:
labels/<sub>/<ses>/label.json = {target name: number or null}."""

from __future__ import annotations

import json
import math

import pytest

from brainfoundry.errors import ConfigError, InputError
from brainfoundry.io.layouts import discover
from brainfoundry.tasks.sources import task_source
from brainfoundry.tasks.spec import TaskSpec
from tests.conftest import save


def _task_folder(root, mni, labels: dict[str, object]):
    """preprocessed/sub_<i>/ses_1/{t1,t2}.nii.gz and labels/.../label.json (text as given, or
    a dict written as JSON; None: no file)."""
    for sub, label in labels.items():
        for m in ("t1", "t2"):
            save(root / "preprocessed" / sub / "ses_1" / f"{m}.nii.gz", *mni)
        if label is not None:
            d = root / "labels" / sub / "ses_1"
            d.mkdir(parents=True, exist_ok=True)
            (d / "label.json").write_text(label if isinstance(label, str) else json.dumps(label))
    return root


def _spec(**kw) -> TaskSpec:
    base = {"name": "profile", "type": "regression", "modalities": ["t1", "t2"], "metrics": ["mae"],
            "label": "label.json", "label_columns": ["age", "gm_ml"]}  # fmt: skip
    return TaskSpec.from_dict(base | kw)


def test_label_json_gives_targets_and_the_first_is_the_label(tmp_path, mni):
    root = _task_folder(tmp_path / "t", mni, {
        "sub_1": {"age": 61.5, "gm_ml": 600, "wmh_ml": None},
        "sub_2": {"age": None, "gm_ml": 580.5},
        "sub_3": None,
    })  # fmt: skip
    layout, entries = discover(root)
    by = {e.subject: e for e in entries}
    assert layout == "fomo-task" and len(entries) == 6
    assert by["sub_1"].label == 61.5 and list(by["sub_1"].targets) == ["age", "gm_ml", "wmh_ml"]
    assert by["sub_1"].targets["gm_ml"] == 600.0 and math.isnan(by["sub_1"].targets["wmh_ml"])
    assert by["sub_2"].label is None and by["sub_2"].targets["gm_ml"] == 580.5
    assert by["sub_3"].label is None and by["sub_3"].targets == {}


def test_label_txt_stays_the_label_beside_label_json(tmp_path, mni):
    root = _task_folder(tmp_path / "t", mni, {"sub_1": {"gm_ml": 600}})
    (root / "labels" / "sub_1" / "ses_1" / "label.txt").write_text("70\n")
    e = discover(root)[1][0]
    assert e.label == 70.0 and e.targets == {"gm_ml": 600.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"age": 61', "not valid JSON"),
        ("[61, 600]", "holds list; label.json must be one JSON object"),
        ("{}", "holds no target"),
        (
            '{"age": "old", "gm_ml": true}',
            "'age' is \"old\", not a number or null; 'gm_ml' is true",
        ),
        ('{"age": [1]}', "'age' is [1], not a number or null"),
        ('{"age": Infinity}', "'age' is Infinity, not a number or null"),
        ('{" ": 1}', "a target has an empty name"),
    ],
)
def test_a_bad_label_json_is_one_error_naming_the_file(tmp_path, mni, text, message):
    root = _task_folder(tmp_path / "t", mni, {"sub_1": text})
    with pytest.raises(InputError) as e:
        discover(root)
    assert e.value.path == str(root / "labels" / "sub_1" / "ses_1" / "label.json")
    assert message in e.value.problem and "\n" not in str(e.value)


def test_a_label_json_task_reads_its_label_columns_in_order(tmp_path, mni):
    root = _task_folder(tmp_path / "t", mni, {
        "sub_1": {"gm_ml": 600, "age": 61.5, "csf_ml": 150},
        "sub_2": {"age": 40, "gm_ml": None},
        "sub_3": None,
    })  # fmt: skip
    lines: list[str] = []
    src = task_source(root, _spec(), "finetune", lines.append)
    assert src.found is not None and src.found[0] == "fomo-task"
    by = {e.subject: e for e in src.found[1]}
    assert by["sub_1"].label == 61.5 and by["sub_1"].targets == {"age": 61.5, "gm_ml": 600.0}
    assert by["sub_2"].label == 40.0 and math.isnan(by["sub_2"].targets["gm_ml"])
    assert by["sub_3"].label is None  # no label.json: no label, as without label.txt
    assert lines == ["t: label.json targets not used by task profile: csf_ml"]
    one = task_source(root, _spec(label_columns=["age"]), "finetune", print).found
    assert one is not None and {e.subject: e.targets for e in one[1]}["sub_1"] == {"age": 61.5}
    with pytest.raises(InputError, match="sub_2/ses_1/label.json, target gm_ml: empty label"):
        task_source(root, _spec(label_columns=["gm_ml"]), "finetune", print)  # the label: given


def test_label_json_problems_are_listed_together(tmp_path, mni):
    root = _task_folder(tmp_path / "t", mni, {
        "sub_1": {"age": 61.5},
        "sub_2": {"age": None, "gm_ml": 60},
        "sub_3": {"age": 130, "gm_ml": 60},
    })  # fmt: skip
    with pytest.raises(InputError) as e:
        task_source(root, _spec(), "finetune", print)
    assert e.value.problems == [
        "labels/sub_1/ses_1/label.json: no target 'gm_ml' (task profile reads age, gm_ml)",
        "labels/sub_2/ses_1/label.json, target age: empty label (null)",
    ]
    with pytest.raises(ConfigError, match="range bounds one target"):
        _spec(range=[0, 120])  # one [lo, hi] cannot bound years and millilitres alike
    bare = _task_folder(tmp_path / "b", mni, {"sub_1": None})
    with pytest.raises(InputError, match=r"no labels/<subject>/<session>/label.json \(task"):
        task_source(bare, _spec(), "finetune", print)
