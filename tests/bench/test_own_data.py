"""`bench --data`: a suite on one's own data, a CSV manifest with a split column, through the
real CLI; a path that holds no finetune/test split, or a pretrained objective without a corpus,
is refused before any work."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from brainfoundry.bench.task_data import check_task_data, data_overrides
from brainfoundry.cli import main
from brainfoundry.errors import ConfigError
from tests.tasks.conftest import make_task
from tests.tasks.own_data import write_manifest

SCRATCH = ["objectives=[scratch]", "backbones=[resenc:tiny]", "shots=[4]", "seeds=[0]",
           "data.spacing=[6,6,6]", "finetune.preset=cpu-tiny", "finetune.steps=0",
           "finetune.overrides=[val_cases=4]", "n_boot=50"]  # fmt: skip


@pytest.fixture(scope="module")
def split_csv(tmp_path_factory):
    """One manifest of brainage's finetune (10) and test (6) sessions, with a split column."""
    data = make_task(tmp_path_factory.mktemp("tasks"), "brainage")
    own = tmp_path_factory.mktemp("own")
    ft = write_manifest(data / "finetune", own, "a.csv").read_text().splitlines()
    te = write_manifest(data / "test", own, "b.csv").read_text().splitlines()
    text = [ft[0] + ",split", *(r + ",finetune" for r in ft[1:]), *(r + ",test" for r in te[1:])]
    (own / "all.csv").write_text("\n".join(text) + "\n")
    return own


def test_data_names_its_task_unless_the_suite_has_one(tmp_path):
    ovr = data_overrides("demo", [*SCRATCH, "tasks=[brainage]"], [str(tmp_path / "m.csv")])
    assert ovr[0] == "data.synth=null" and ovr[2] == 'tasks=["brainage"]'
    assert json.loads(ovr[1].split("=", 1)[1]) == {"brainage": str(tmp_path / "m.csv")}
    with pytest.raises(ConfigError, match="say which one this data is for: --data TASK="):
        data_overrides("demo", SCRATCH, [str(tmp_path / "m.csv")])
    with pytest.raises(ConfigError, match=r"objectives \['mae'\] pretrain first"):
        data_overrides("demo", [], [f"brainage={tmp_path / 'm.csv'}"])


def test_data_without_a_split_is_refused(split_csv):
    check_task_data({"brainage": split_csv / "all.csv"})
    with pytest.raises(ConfigError, match="holds no finetune/test split"):
        check_task_data({"brainage": split_csv / "a.csv"})


@pytest.mark.slow
def test_bench_on_a_manifest_with_a_split_column(split_csv, tmp_path):
    out = tmp_path / "bench"
    argv = ["bench", "--suite", "demo", "-o", str(out), "-q"]
    assert main([*argv, "--data", f"brainage={split_csv / 'all.csv'}", *SCRATCH]) == 0
    done = json.loads(next(out.glob("cells/brainage/**/done.json")).read_text())
    assert done["n_test"] == 6  # the test rows, never the fine-tuning ones
    results = pd.read_csv(out / "results.csv")
    assert set(results["task"]) == {"brainage"} and "mae" in set(results["metric"])
