"""The fomo26 suites: the presets load and validate, their new fields are checked, and a tiny
fomo26 suite (6 mm, 8 + 4 cases, 2 steps) runs end to end through `brainfoundry bench`: every
FOMO26 task gets results (tasks 6/7 from the probe stage) and the ranking is the unified one."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from brainfoundry.bench import runner
from brainfoundry.bench.analysis import ranking
from brainfoundry.bench.probe_stage import FAIRNESS, PROBE, stage_spec
from brainfoundry.bench.suite import FOMO26_SYNTH, load_suite, synth_kind, task_spec
from brainfoundry.cli import main
from brainfoundry.errors import ConfigError
from brainfoundry.evaluation.ranking import FOMO26_WEIGHTS, fomo26_ranking
from brainfoundry.synth.config import FINE_KINDS, SEED_KINDS

TINY = [
    "name=tiny26",
    "data.synth.resolution=6",
    "data.synth.resolutions={trigeminal: 2}",
    "data.synth.pretrain_subjects=2",
    "data.synth.finetune_cases=8",  # the probe pools both splits: 3+ cases of each class
    "data.synth.test_cases=4",
    "data.spacing=[6,6,6]",
    "backbones=[resenc:tiny]",
    "shots=[4]",
    "pretrain.preset=cpu-tiny",
    "pretrain.steps=2",
    "pretrain.overrides=[train.num_workers=0]",
    "finetune.steps=0",  # case-level tasks: the closed-form probe of the features, as the suite
    "finetune.overrides=[val_cases=2]",
    "finetune.per_key={fomo26-meningioma: [train.steps=2, train.checkpoint_every=2], "
    "fomo26-trigeminal: [train.steps=2, train.checkpoint_every=2]}",
    "n_boot=20",
]


@pytest.mark.parametrize("name", ["fomo26", "fomo26-cpu"])
def test_the_suites_load_with_every_fomo26_task_and_its_ranking(name):
    s = load_suite(name)
    assert s.protocol == "fomo26" and set(s.tasks) == set(FOMO26_WEIGHTS)
    assert "scratch" in s.objectives and s.expected
    lo, hi = FINE_KINDS["trigeminal"]
    assert lo <= s.data.synth.resolution_of("trigeminal") <= hi
    if name == "fomo26-cpu":
        assert s.objectives == ["scratch", "mae"] and len(s.seeds) == len(s.shots) == 1


def test_every_fomo26_task_has_one_synth_kind_and_a_spec():
    assert set(FOMO26_SYNTH) == set(FOMO26_WEIGHTS)
    for task in FOMO26_SYNTH:
        assert synth_kind(task) in SEED_KINDS
        assert task_spec(task).name == task
    assert synth_kind("infarct") == "infarct" and synth_kind("my-task") is None
    spec = stage_spec(PROBE)
    assert spec.type == "multiclass" and spec.ranking_metrics == ["auroc_ovr", "f1_macro"]


def test_protocol_defaults_to_fomo25_and_is_checked():
    assert load_suite("demo").protocol == "fomo25"
    with pytest.raises(ConfigError, match="protocol 'fomo27'"):
        load_suite("demo", ["protocol=fomo27"])
    with pytest.raises(ConfigError, match="ranks .* only"):
        load_suite("demo", ["protocol=fomo26"])  # FOMO25 task names have no FOMO26 weight


def test_a_fine_kind_outside_its_resolutions_is_refused():
    with pytest.raises(ConfigError, match="data.synth.resolutions=\\{trigeminal: 2.0\\}"):
        load_suite("fomo26-cpu", ["data.synth.resolutions={}"])  # 4 mm: too coarse a slab
    with pytest.raises(ConfigError, match="not synth kinds"):
        load_suite("fomo26-cpu", ["data.synth.resolutions={trigeminal: 2, nerve: 1}"])


def test_stage_tasks_need_generated_data():
    with pytest.raises(ConfigError, match="embed --batch"):
        ovr = ["data.synth=null", "objectives=[scratch]", f"tasks=[{PROBE}]"]
        load_suite("fomo26-cpu", [*ovr, f'data.tasks={{"{PROBE}": "x"}}'])


def test_a_suite_yaml_written_before_the_new_fields_still_resumes(tmp_path, monkeypatch):
    import yaml

    from brainfoundry.config import to_dict

    suite = load_suite("demo")
    old = to_dict(suite)
    del old["protocol"], old["data"]["synth"]["resolutions"]
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(old))

    class Passed(Exception):
        pass

    def stop(*_a, **_k):
        raise Passed  # the suite check is behind us: no "another suite"

    monkeypatch.setattr(runner, "make_data", stop)
    with pytest.raises(Passed):
        runner.run_suite(suite, tmp_path, log=lambda *_: None, progress=False)


def test_ranking_follows_the_protocol():
    men = "fomo26-meningioma"
    rows = [("scratch", men, "dice", 0.2), ("mae", men, "dice", 0.1),
            ("scratch", FAIRNESS, "auroc_ovr", 0.5), ("mae", FAIRNESS, "auroc_ovr", 0.9),
            ("scratch", FAIRNESS, "f1_macro", 0.5), ("mae", FAIRNESS, "f1_macro", 0.9)]  # fmt: skip
    res = pd.DataFrame(rows, columns=["objective", "task", "metric", "value"])
    res = res.assign(backbone="resenc:tiny", shots=4)
    s26 = load_suite("fomo26-cpu", ["tasks=[fomo26-meningioma,fomo26-fairness]"])
    r = ranking(s26, res).set_index(["shots", "objective"]).loc["4"]
    # meningioma weighs 25, fairness 10: scratch wins on the heavier task
    assert r.loc["scratch", "weighted_rank"] == pytest.approx((25 * 1 + 10 * 2) / 35)
    assert r.loc["scratch", "rank"] == 1.0 and "mean_rank" not in r.columns
    s25 = load_suite("fomo26-cpu", ["protocol=fomo25", "tasks=[fomo26-meningioma,fomo26-fairness]"])
    assert ranking(s25, res).set_index(["shots", "objective"]).loc["4"]["mean_rank"].nunique() == 1


@pytest.fixture(scope="module")
def tiny26(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench26") / "tiny26"
    assert main(["bench", "--suite", "fomo26-cpu", "-o", str(out), "-q", *TINY]) == 0
    return load_suite("fomo26-cpu", TINY), out


@pytest.mark.slow
def test_the_tiny_fomo26_suite_runs_every_task_through_the_cli(tiny26):
    suite, out = tiny26
    res = pd.read_csv(out / "results.csv")
    assert set(res["task"]) == set(FOMO26_WEIGHTS) and set(res["objective"]) == {"scratch", "mae"}
    for task in (PROBE, FAIRNESS):
        got = res[res["task"] == task].set_index(["objective", "metric"])["value"]
        assert set(got.index.get_level_values("metric")) == {"auroc_ovr", "f1_macro"}
        assert got.between(0, 1).all()
    for obj in ("scratch", "mae"):  # one probe per objective: embeddings, report, the split
        probe = out / "probe/resenc-tiny" / obj / "seed_0"
        report = json.loads((probe / "probe.json").read_text())
        assert len(report["validation_auroc"]) == 13 and report["n"]["test"] > 0
        assert set(report["fairness"]["variables"]) == {"sex", "age", "site"}
    assert (out / "probe/resenc-tiny/scratch/seed_0/encoder/card.json").is_file()
    # the ranking is FOMO26's unified one, recomputed here from the results
    ranks = pd.read_csv(out / "ranking.csv")
    assert "weighted_rank" in ranks and "mean_rank" not in ranks
    assert set(FOMO26_WEIGHTS) <= set(ranks.columns)
    keep = res[res.apply(lambda r: r["metric"] in task_spec(r["task"]).ranking_metrics, axis=1)]
    tidy = keep.rename(columns={"objective": "run"})[["run", "task", "metric", "value"]]
    want = fomo26_ranking(tidy.dropna(subset=["value"]))
    got = ranks[ranks["shots"] == "all"].set_index("objective")
    assert got["weighted_rank"].to_dict() == pytest.approx(want["weighted_rank"].to_dict())
    assert "FOMO26 unified ranking" in (out / "results.md").read_text()
    pairs = pd.read_csv(out / "paired.csv")  # fairness is a group disparity: never paired
    assert PROBE in set(pairs["task"]) and FAIRNESS not in set(pairs["task"])
    assert (out / "data/probe").is_dir() and not (out / "data" / PROBE).exists()
    page = (out / "report.html").read_text()  # the stage tasks' own figures
    assert 'id="fig-fomo26-probe-resenc-tiny-sweep"' in page
    for obj in ("scratch", "mae"):
        assert f'id="fig-fomo26-probe-{obj}-resenc-tiny-confusion"' in page
        assert f'id="fig-fomo26-fairness-{obj}-resenc-tiny-groups"' in page
    assert "fomo26-probe/" not in page.split('id="figures"')[1].split("</section>")[0]
