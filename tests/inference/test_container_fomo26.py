"""The container's entry point called as the FOMO26 validator calls it, for all seven tasks: one
process per case, the FOMO26 flags (`--dwi`; `--t1` alone for brain age; `--t2`; `--input`
for the embedding), the input folder read-only, and each output checked with the validator's
rule here again (`inference.validator`). Tiny real models: `finetune` at a coarse spacing, and
a pretraining run's encoder for tasks 6 and 7."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from brainfoundry.inference.validator import Rule, check_output
from tests.tasks.conftest import make_task

pytestmark = pytest.mark.slow

ENTRY = Path(__file__).parents[2] / "container" / "predict.py"
SEG_STEPS = "train.checkpoint_every=2"  # the 2 steps' model is the one kept
FOMO26_FLAG = {"dwi_b1000": "dwi"}  # FOMO26 names the DWI (b=1000) file dwi


def _synth(root: Path, name: str, n: int, n_test: int, resolution: int) -> Path:
    from brainfoundry.cli import main

    args = ["synth", "task", name, "-o", str(root / name), "--n", str(n), "--n-test"]
    assert main([*args, str(n_test), "--resolution", str(resolution), "--no-qc"]) == 0
    return root / name


def _pretrained(root: Path) -> Path:
    from brainfoundry.models.backbones import create_backbone
    from brainfoundry.models.card import ModelCard
    from brainfoundry.models.checkpoint import save_model

    torch.manual_seed(0)
    model = create_backbone("resenc", 1, 1, "tiny")
    card = ModelCard.for_model(model, modalities=["t1"], spacing=[6.0] * 3,
                               patch_size=[32, 32, 32], ssl_method="mae")  # fmt: skip
    save_model(root, model, card)
    return root


@pytest.fixture(scope="module")
def fomo26(fomo, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """task -> (model folder, test folder): tasks 1 and 2 from the FOMO25 fixtures (the same
    sequences), 3 (T1 only), 4 and 5 fine-tuned here, 6/7 a pretraining run on task 3's T1s."""
    from brainfoundry.tasks.finetune import FinetuneConfig, finetune

    root = tmp_path_factory.mktemp("fomo26")
    data = {
        "fomo26-brainage": make_task(root / "data", "brainage"),
        "fomo26-trigeminal": _synth(root / "data", "trigeminal", 4, 2, resolution=2),
        "fomo26-polymicrogyria": _synth(root / "data", "polymicrogyria", 8, 2, resolution=6),
    }
    extra = {
        "fomo26-brainage": ["data.spacing=[6,6,6]", "train.steps=0", "shots=6"],
        "fomo26-trigeminal": ["data.spacing=[3,3,3]", "train.steps=2", "shots=3", SEG_STEPS],
        "fomo26-polymicrogyria": ["data.spacing=[6,6,6]", "train.steps=0", "shots=5"],
    }
    out = {"infarct": fomo["infarct"], "meningioma": fomo["meningioma"]}
    for task, d in data.items():
        overrides = [f"task={task}", "model.size=tiny", *extra[task]]
        cfg = FinetuneConfig.load("cpu-tiny", None, overrides)
        finetune(cfg, d / "finetune", root / "models" / task, log=lambda _: None)
        out[task] = (root / "models" / task, d / "test")
    pretrained = _pretrained(root / "models" / "pretrained")
    out["embedding"] = (pretrained, data["fomo26-brainage"] / "test")
    return out


def _read_only_input(test_dir: Path, root: Path, n: int = 2) -> list[Path]:
    """Copy n cases to root/input/<sub>/ and make the tree read-only, as /input is."""
    cases = []
    for sub in sorted((test_dir / "preprocessed").iterdir())[:n]:
        shutil.copytree(sub / "ses_1", root / "input" / sub.name)
        cases.append(root / "input" / sub.name)
    for p in sorted((root / "input").rglob("*"), reverse=True):
        p.chmod(stat.S_IRUSR | stat.S_IRGRP | (stat.S_IXUSR if p.is_dir() else 0))
    return cases


def _digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.nii.gz")}


def _call(model: Path, args: list[str], output: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BRAINFOUNDRY_MODEL": str(model)}
    return subprocess.run(
        [sys.executable, str(ENTRY), *args, "--output", str(output)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _flags(case: Path, only: set[str] | None = None) -> list[str]:
    """The validator's call: --<file stem, FOMO26's name> <file> for each input file."""
    args = []
    for f in sorted(case.glob("*.nii.gz")):
        stem = f.name[: -len(".nii.gz")]
        if only is None or stem in only:
            args += [f"--{FOMO26_FLAG.get(stem, stem)}", str(f)]
    return args


# task -> (the sequences the validator passes, output extension, rule)
CASES = {
    "infarct": (None, ".txt", Rule("probability")),  # 1: --flair --dwi --adc --t2s
    "meningioma": (None, ".nii.gz", Rule("mask", max_label=1)),  # 2: --flair --dwi --t2s
    "fomo26-brainage": ({"t1"}, ".txt", Rule("value")),  # 3: --t1 only
    "fomo26-trigeminal": ({"t2"}, ".nii.gz", Rule("mask", max_label=2)),  # 4: --t2
    "fomo26-polymicrogyria": ({"t1"}, ".txt", Rule("probability")),  # 5: --t1
}


@pytest.mark.parametrize("task", list(CASES))
def test_each_fomo26_task_called_as_the_validator_calls_it(fomo26, tmp_path, task):
    (model, test), (only, ext, rule) = fomo26[task], CASES[task]
    cases = _read_only_input(test, tmp_path)
    before = _digest(tmp_path / "input")
    out_dir = tmp_path / "output"
    out_dir.mkdir()
    for case in cases:
        args = _flags(case, only)
        assert ("--dwi" in args) == (task in ("infarct", "meningioma"))
        output = out_dir / f"{case.name}{ext}"
        res = _call(model, args, output)
        assert res.returncode == 0, res.stderr
        ref = nib.load(args[1])
        check_output(output, rule, ref.shape)
        if rule.kind == "mask":
            assert np.allclose(nib.load(output).affine, ref.affine, atol=1e-4)
        else:
            assert "." in output.read_text()  # written as a float, never an int
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{c.name}{ext}" for c in cases)
    assert _digest(tmp_path / "input") == before


def test_embedding_tasks_6_and_7_called_with_input(fomo26, tmp_path):
    model, test = fomo26["embedding"]
    cases = _read_only_input(test, tmp_path)
    before = _digest(tmp_path / "input")
    vecs = []
    for case, seq in zip(cases, ("t1", "t2")):  # one volume of any sequence
        output = tmp_path / "output" / f"{case.name}.npy"
        res = _call(model, ["--input", str(case / f"{seq}.nii.gz")], output)
        assert res.returncode == 0, res.stderr
        check_output(output, Rule("embedding", dim=112))  # resenc:tiny: 2 x its stage widths
        vecs.append(np.load(output))
    assert vecs[0].shape == vecs[1].shape and not np.allclose(vecs[0], vecs[1])
    assert sorted(p.name for p in (tmp_path / "output").iterdir()) == [
        f"{c.name}.npy" for c in cases
    ]
    assert _digest(tmp_path / "input") == before


def test_wrong_calls_are_one_line_and_exit_2(fomo26, tmp_path):
    pretrained, test = fomo26["embedding"]
    t1 = sorted((test / "preprocessed").glob("sub_*/ses_1/t1.nii.gz"))[0]
    task_model = fomo26["fomo26-brainage"][0]
    calls = [
        (pretrained, ["--t1", str(t1)], "--input"),  # an encoder called as a task model
        (pretrained, ["--input", str(t1), "--t1", str(t1)], "alone"),
        (pretrained, ["--protocol", "fomo25", "--input", str(t1)], "FOMO25"),
        (task_model, ["--t2", str(t1)], "--t1"),  # task 3 needs --t1
    ]
    for model, args, says in calls:
        output = tmp_path / "out" / "sub.txt"
        res = _call(model, args, output)
        err = res.stderr.strip()
        assert res.returncode == 2, err
        assert says in err and "\n" not in err and "Traceback" not in err
        assert not output.parent.exists() or not any(output.parent.iterdir())


def _entry_module():
    spec = importlib.util.spec_from_file_location("container_predict", ENTRY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("written", ["1", "1.2", "nan"])
def test_an_output_the_validator_rejects_is_removed(fomo26, tmp_path, monkeypatch, capsys,
                                                    written):  # fmt: skip
    """A writer gone wrong (an int, a value outside [0, 1]): the entry point removes the file,
    says so in one line and exits 1."""
    import brainfoundry.inference.predict as predict

    def bad_writer(result, output, **_):
        Path(output).write_text(written + "\n")
        return Path(output)

    monkeypatch.setattr(predict, "write_outputs", bad_writer)
    model, test = fomo26["fomo26-polymicrogyria"]
    t1 = sorted((test / "preprocessed").glob("sub_*/ses_1/t1.nii.gz"))[0]
    output = tmp_path / "sub.txt"
    rc = _entry_module().main(["--model", str(model), "--t1", str(t1), "--output", str(output)])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and not output.exists()
    assert err.startswith("error: invalid output:") and "\n" not in err
