import pytest

from brainfoundry.errors import ConfigError
from brainfoundry.tasks import TASKS, alternatives, get_task, load_spec


def test_builtin_fomo25_specs():
    assert {"infarct", "meningioma", "brainage"} <= set(TASKS.list())
    inf = get_task("infarct")
    assert inf.type == "classification"
    assert inf.channels == ["flair", "dwi_b1000", "adc", "t2s|swi"]
    assert inf.primary_metric == "auroc"
    men = get_task("meningioma")
    assert (men.type, men.label, men.metrics[:2]) == ("segmentation", "seg.nii.gz", ["dice", "nsd"])
    age = get_task("brainage")
    assert (
        age.channels == ["t1", "t2"] and "pearson_r" in age.metrics and age.primary_metric == "mae"
    )


def test_alternatives_map_to_one_channel():
    spec = get_task("infarct")
    assert alternatives("t2s|swi") == ["t2s", "swi"]
    assert spec.channel_of("swi") == "t2s|swi" == spec.channel_of("t2s")
    assert spec.channel_of("t1") is None


def test_user_spec_by_path_and_roundtrip(tmp_path):
    p = tmp_path / "lesion.yaml"
    p.write_text(
        "name: mytask\ntype: regression\nmodalities: [t1, flair|t2]\noptional: [flair|t2]\n"
        "metrics: [mae, r]\n"
    )
    spec = get_task(str(p))
    assert spec.name == "mytask" and spec.metrics == ["mae", "pearson_r"]
    assert load_spec(p) == type(spec).from_dict(spec.to_dict())


@pytest.mark.parametrize(
    "body, msg",
    [
        ("name: x\ntype: classification\nmodalities: [T1w]\nmetrics: [auroc]\n", "canonical"),
        ("name: x\ntype: segmentation\nmodalities: [t1]\nmetrics: [dice]\n", "cannot read"),
        ("name: x\ntype: classification\nmodalities: [t1]\nmetrics: [auroc]\nfoo: 1\n", "unknown"),
        ("name: x\ntype: regression\nmodalities: [t1]\n", "at least one metric"),
        ("name: x\nmodalities: [t1]\n", "needs"),
        ("name: x\ntype: classification\nmodalities: [t1]\nmetrics: [mae]\n", "does not score"),
        (
            "name: x\ntype: regression\nmodalities: [t1]\nmetrics: [mae]\n"
            "ranking_metrics: [dice]\n",
            "'dice' does not score a regression task",
        ),
        (
            "name: x\ntype: classification\nmodalities: [t1]\nmetrics: [auroc]\nrange: [0, 1]\n",
            "range limits a regression target",
        ),
        ("name: x\ntype: regression\nmodalities: [t1]\nmetrics: [mae]\nrange: [5, 1]\n", "lo < hi"),
        (
            "name: x\ntype: regression\nmodalities: [t1]\nmetrics: [mae]\nrange: [0]\n",
            "does not fit",
        ),
    ],
)
def test_bad_specs_raise_config_errors(tmp_path, body, msg):
    p = tmp_path / "bad.yaml"
    p.write_text(body)
    with pytest.raises(ConfigError, match=msg):
        load_spec(p)


def test_primary_and_ranking_metrics_default_from_the_list(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("name: t\ntype: regression\nmodalities: [t1]\nmetrics: [r, mae]\n")
    spec = load_spec(p)
    assert spec.primary_metric == "pearson_r" and spec.ranking_metrics == ["pearson_r"]
    assert get_task("meningioma").ranking_metrics == ["dice", "nsd"]  # FOMO25's ranking


def test_unknown_task_name():
    with pytest.raises(ConfigError, match="unknown task"):
        get_task("nope")


def test_a_regression_spec_states_its_physical_range(tmp_path):
    """brainage: a human age is 0-120 years; a user's range may be open on one side."""
    assert get_task("brainage").range == (0.0, 120.0)
    assert get_task("infarct").range is None
    p = tmp_path / "volume.yaml"
    p.write_text("name: v\ntype: regression\nmodalities: [t1]\nmetrics: [mae]\nrange: [0, null]\n")
    spec = load_spec(p)
    assert spec.range == (0.0, None) and type(spec).from_dict(spec.to_dict()) == spec
