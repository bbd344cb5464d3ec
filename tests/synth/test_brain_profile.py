"""`synth task brain-profile`: brainage's cases with label.json (age and tissue volumes in mL
from the generator's own tissue maps), and `prepare --task brain-profile` storing them."""

from __future__ import annotations

import dataclasses
import json

import nibabel as nib
import numpy as np
import pytest
from scipy.stats import spearmanr

from brainfoundry.cli import main
from brainfoundry.data.store import Store
from brainfoundry.synth.cohorts import plan
from brainfoundry.synth.config import SynthConfig
from brainfoundry.tasks.spec import get_task
from brainfoundry.tasks.validate import targets_of

KEYS = ["age", "gm_ml", "wm_ml", "csf_ml", "wmh_ml"]


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    out = tmp_path_factory.mktemp("bp") / "brain-profile"
    args = ["synth", "task", "brain-profile", "-o", str(out), "--n", "6", "--n-test", "1"]
    assert main([*args, "--resolution", "6", "--difficulty", "0", "--no-qc"]) == 0
    return out


def _cases(part):
    for d in sorted((part / "labels").glob("sub_*/ses_1")):
        t1 = nib.load(part / "preprocessed" / d.parent.name / d.name / "t1.nii.gz")
        brain_ml = (np.asarray(t1.dataobj) > 0).sum() * np.prod(t1.header.get_zooms()) / 1000
        yield json.loads((d / "label.json").read_text()), float(brain_ml)


def test_label_json_holds_age_and_plausible_volumes(profile):
    cases = list(_cases(profile / "finetune"))
    assert len(cases) == 6 and len(list(_cases(profile / "test"))) == 1
    for label, brain_ml in cases:
        assert list(label) == KEYS and all(isinstance(v, float) for v in label.values())
        tissue = label["gm_ml"] + label["wm_ml"] + label["csf_ml"] + label["wmh_ml"]
        assert 0.8 * brain_ml < tissue < 1.2 * brain_ml  # the written brain mask's volume
        assert 300 < label["gm_ml"] < 1500 and 200 < label["wm_ml"] < 1200
        assert label["csf_ml"] > 50 and label["wmh_ml"] >= 0.0
    # CSF grows with age (atrophy: wider sulci, larger ventricles); as a share of the brain,
    # since head size (the subject's random scaling) spreads the raw volumes more than age
    ages = [label["age"] for label, _ in cases]
    share = [label["csf_ml"] / sum(label[k] for k in KEYS[1:]) for label, _ in cases]
    assert spearmanr(ages, share).statistic >= 0.8
    info = json.loads((profile / "dataset.json").read_text())
    assert info["label"]["file"] == "label.json" and info["cases"][0]["targets"] == cases[0][0]


def test_brain_profile_makes_brainages_cases():
    cfg = SynthConfig(kind="brain-profile", n=3, n_test=2, resolution=6.0, seed=3)
    same = plan(dataclasses.replace(cfg, kind="brainage"))
    assert [(j.spec, j.label, j.subject) for j in plan(cfg)] == [
        (j.spec, j.label, j.subject) for j in same
    ]


def test_prepare_stores_the_profile_and_one_model_predicts_it(profile, tmp_path, capsys):
    assert get_task("brain-profile").label_columns == KEYS
    store = tmp_path / "store"
    argv = ["prepare", str(profile), str(store), "--task", "brain-profile", "--spacing", "6"]
    assert main([*argv, "-q"]) == 0
    assert (
        "brain-profile holds finetune and test data; fine-tuning reads" in capsys.readouterr().err
    )
    s = Store(store)
    keys = sorted(s.groups())
    want = [label for label, _ in _cases(profile / "finetune")]
    assert np.allclose(targets_of(s, keys, KEYS), [[w[k] for k in KEYS] for w in want])
    out = tmp_path / "o"
    ft = ["finetune", "--task", "brain-profile", "--data", str(profile), "-o", str(out)]
    assert main([*ft, "--preset", "cpu-tiny", "train.steps=0", "--shots", "4"]) == 0
    assert main(["evaluate", str(out), "--data", str(profile), "--n-boot", "20"]) == 0
    m = json.loads((out / "seed_0" / "metrics.json").read_text())
    assert m["targets"] == KEYS and m["n_per_target"] == dict.fromkeys(KEYS, 1)
    assert {f"mae:{k}" for k in KEYS} <= set(m["metrics"])
    assert m["calibration"]["per_target"].keys() == set(KEYS)
    case = profile / "test" / "preprocessed" / "sub_7" / "ses_1"
    res = tmp_path / "pred" / "p"
    assert main(["predict", "--model", str(out), "--t1", str(case / "t1.nii.gz"),
                 "--t2", str(case / "t2.nii.gz"), "-o", str(res)]) == 0  # fmt: skip
    lines = (tmp_path / "pred" / "p.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == KEYS
    info = json.loads((tmp_path / "pred" / "p.json").read_text())
    lo, hi = info["uncertainty"]["per_target"]["age"]["interval_95"]
    assert lo <= info["value"]["age"] <= hi
