"""Real tiny pretraining runs with the `monitor` section: health columns in log.csv and
TensorBoard for MAE and contrastive, their schedule, the batch check, and the online probe on a
prepared task store (regression and classification) without changing the training curve."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from brainfoundry.cli import main
from brainfoundry.config import load_config
from brainfoundry.data.prepare import PrepareConfig, prepare
from brainfoundry.data.preprocess import PreprocessConfig
from brainfoundry.ssl.pretrain import PretrainConfig
from tests.conftest import save

HEALTH = ["health/effective_rank", "health/zero_var_frac", "health/norm_std"]
PAIRS = ["health/alignment", "health/uniformity"]
FIVE_MM = PreprocessConfig(spacing=(5.0, 5.0, 5.0))


@pytest.fixture(scope="module")
def store(tmp_path_factory, mni):
    """A 5 mm pretraining store of 3 subjects (t1, flair), as tests/conftest.py's fomo60k."""
    data, affine = mni
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for s in range(3):
        for seq in ("t1", "flair"):
            vol = data * rng.uniform(0.5, 2.0) + (data > 0) * rng.normal(0, 0.01, data.shape)
            save(root / f"sub_{s}" / "ses_1" / f"{seq}.nii.gz", vol.astype(np.float32), affine)
    out = root.parent / "store"
    prepare(root, out, PrepareConfig(preprocess=FIVE_MM), progress=False)
    return out


@pytest.fixture(scope="module")
def task_store(tmp_path_factory):
    """task_store(name, spacing) -> a store of that synthetic task's labelled fine-tuning data."""
    from brainfoundry.tasks.data import prepare_task_data, preprocess_config

    root = tmp_path_factory.mktemp("probe")
    made: dict = {}

    def make(name: str, spacing: float = 5.0):
        if (name, spacing) not in made:
            raw = root / name
            if not raw.exists():
                n = {"brainage": "8", "infarct": "8", "meningioma": "4"}[name]
                args = ["synth", "task", name, "-o", str(raw), "--n", n, "--n-test", "1"]
                assert main([*args, "--resolution", "6", "--no-qc"]) == 0
            pre = preprocess_config([spacing] * 3, None)
            out = root / f"{name}-{spacing}"
            prepare_task_data(raw / "finetune", out, pre)
            made[name, spacing] = out
        return made[name, spacing]

    return make


def _pretrain(store, run, *extra):
    args = ["pretrain", "--store", str(store), "-o", str(run), "--preset", "cpu-tiny",
            "train.progress=false", *extra]  # fmt: skip
    assert main(args) == 0
    return pd.read_csv(run / "log.csv")


@pytest.mark.parametrize("method", ["mae", "contrastive"])
def test_health_columns_are_logged_and_finite(store, tmp_path, method):
    log = _pretrain(store, tmp_path / "run", "--method", method, "train.steps=3")
    want = HEALTH + (PAIRS if method == "contrastive" else [])
    assert list(log["step"]) == [1, 2, 3]  # cpu-tiny logs every step: health too by default
    assert set(want) <= set(log.columns)
    assert np.isfinite(log[want].to_numpy()).all()
    assert ((log["health/effective_rank"] >= 1) & (log["health/effective_rank"] <= 2)).all()
    assert ((log["grad_norm"] > 0) & np.isfinite(log["grad_norm"])).all()
    if method == "contrastive":
        assert set(PAIRS).isdisjoint(_pretrain(store, tmp_path / "mae", "train.steps=1").columns)
    (events,) = (tmp_path / "run" / "tb").glob("events.out.tfevents.*")
    assert all(name.encode() in events.read_bytes() for name in want)  # TensorBoard tags
    saved = load_config(PretrainConfig, tmp_path / "run" / "config.yaml")
    assert saved.monitor.health_every is None and saved.monitor.online_probe.store == ""


def test_health_schedule_off_the_log_interval_and_off(store, tmp_path):
    extra = ["train.steps=5", "train.log_every=3", "monitor.health_every=2", "optim.grad_clip=null"]
    log = _pretrain(store, tmp_path / "a", *extra)
    assert list(log["step"]) == [2, 3, 4, 5]  # health steps are logged too
    assert log.set_index("step")["health/norm_std"].notna().to_dict() == {
        2: True, 3: False, 4: True, 5: False}  # fmt: skip
    assert (log["grad_norm"] > 0).all()  # measured without clipping too
    off = _pretrain(store, tmp_path / "b", "train.steps=2", "monitor.health_every=0")
    assert not [c for c in off.columns if c.startswith("health/")]


def test_a_batch_of_one_is_refused_before_the_run_is_written(store, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["pretrain", "--store", str(store), "-o", str(run), "--preset", "cpu-tiny",
            "train.batch_size=1"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "monitor.health_every=0" in err
    assert not (run / "config.yaml").exists()
    assert main([*args, "monitor.health_every=0", "train.steps=1", "train.progress=false"]) == 0


@pytest.mark.parametrize(
    ("task", "column"), [("brainage", "probe/mae"), ("infarct", "probe/auroc")]
)
def test_online_probe_is_logged_and_leaves_training_unchanged(
    store, task_store, tmp_path, task, column
):
    probe = [f"monitor.online_probe.store={task_store(task)}", f"monitor.online_probe.task={task}",
             "monitor.online_probe.every=2", "train.steps=4"]  # fmt: skip
    log = _pretrain(store, tmp_path / "probe", *probe).set_index("step")
    values = log[column].to_dict()
    assert [math.isnan(v) for v in values.values()] == [True, False, True, False]
    if column == "probe/auroc":
        assert 0.0 <= values[2] <= 1.0 and 0.0 <= values[4] <= 1.0
    else:
        assert 0.0 < values[2] < 100.0  # years, leave-one-out
    plain = _pretrain(store, tmp_path / "plain", "train.steps=4", "monitor.health_every=0")
    assert log["loss"].tolist() == plain["loss"].tolist()  # neither health nor probe perturbs


def test_online_probe_configuration_errors_are_one_line(store, task_store, tmp_path, capsys):
    base = ["pretrain", "--store", str(store), "-o", str(tmp_path / "r"), "--preset", "cpu-tiny"]
    age, age6, men = task_store("brainage"), task_store("brainage", 6.0), task_store("meningioma")
    cases = [
        ([f"monitor.online_probe.store={age}"], "online_probe.task is not"),
        ([f"monitor.online_probe.store={age6}", "monitor.online_probe.task=brainage"],
         "has spacing [6.0, 6.0, 6.0]"),
        ([f"monitor.online_probe.store={men}", "monitor.online_probe.task=meningioma"],
         "not segmentation"),
        ([f"monitor.online_probe.store={age}", "monitor.online_probe.task=brainage",
          "monitor.online_probe.every=0"], "every=0"),
    ]  # fmt: skip
    capsys.readouterr()  # what making the stores printed
    for extra, message in cases:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r").exists()
