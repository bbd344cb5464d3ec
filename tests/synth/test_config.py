from __future__ import annotations

import pytest

from brainfoundry.errors import ConfigError
from brainfoundry.synth import RESOLUTION_PRESETS, SynthConfig, generate, parse_resolution, plan


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"n": 0}, "--n must be at least 1"),
        ({"kind": "tumour"}, "unknown synth dataset"),
        ({"resolution": 0.5}, "outside 1-8 mm"),
        ({"resolution": 12.0}, "outside 1-8 mm"),
        ({"shift": 1.5}, "--shift must lie in"),
        ({"difficulty": -0.1}, "--difficulty must lie in"),
        ({"workers": 0}, "--workers"),
        ({"kind": "infarct", "n": 1}, "at least 2"),
        ({"kind": "infarct", "positive_fraction": 1.0}, "positive_fraction"),
        ({"kind": "brainage", "n_test": -1}, "--n-test"),
        ({"min_age": 60.0, "max_age": 40.0}, "min_age < max_age"),
        ({"seed": -1}, "--seed"),
    ],
)
def test_impossible_parameters_are_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        SynthConfig(**kw).validate()


def test_resolution_presets_and_units():
    assert parse_resolution("2mm") == 2.0 and parse_resolution(" 2.5 mm") == 2.5
    assert parse_resolution("realistic") == 1.0 == RESOLUTION_PRESETS["realistic"]
    with pytest.raises(ConfigError, match="preset"):
        parse_resolution("high")


def test_non_empty_output_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        generate(SynthConfig(kind="brainage", n=1, resolution=6.0), tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_plan_sizes_ids_and_balance():
    jobs = plan(SynthConfig(kind="infarct", n=10, n_test=30, seed=1))
    ft = [j for j in jobs if j.split == "finetune"]
    te = [j for j in jobs if j.split == "test"]
    assert len(ft) == 10 and len(te) == 30
    assert te[0].subject == "sub_11"  # test ids continue after fine-tuning ids
    assert sum(j.label for j in ft) == 6  # positive_fraction 0.6
    assert all(j.spec.infarcts >= 1 for j in jobs if j.label == 1)
    assert all(j.spec.infarcts == 0 for j in jobs if j.label == 0)
    assert all(j.spec.shift == 0 for j in ft) and all(j.spec.shift == 1.0 for j in te)
    assert plan(SynthConfig(kind="infarct", n=10, n_test=30, seed=1)) == jobs
    default = plan(SynthConfig(kind="brainage", n=5))
    assert len(default) == 15  # n_test defaults to 2 x n


def test_pretrain_plan_has_sessions_repeats_and_pathology():
    jobs = plan(SynthConfig(kind="pretrain", n=200, seed=0))
    subjects = {j.subject for j in jobs}
    assert len(subjects) == 200 and len(jobs) > 220  # some subjects have several sessions
    seqs = [s for j in jobs for s in j.spec.sequences]
    assert any(s.endswith("_2") for s in seqs)
    assert all(("adc" in j.spec.sequences) == ("dwi_b1000" in j.spec.sequences) for j in jobs)
    assert sum(j.spec.infarcts > 0 for j in jobs) > 10
    assert sum(j.spec.meningioma for j in jobs) > 3
    # longitudinal sessions share the subject's anatomy seed
    by_sub: dict = {}
    for j in jobs:
        by_sub.setdefault(j.subject, set()).add(j.spec.subject_seed)
    assert all(len(v) == 1 for v in by_sub.values())
