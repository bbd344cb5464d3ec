"""A fine-tuning run resumes only with its configuration; `--restart` keeps the old run; the
model runs on the device asked for (`evaluate --device`, `predict --device`)."""

import json

import pytest
import torch

from brainfoundry.cli import main

FT = ["--task", "infarct", "--preset", "cpu-tiny", "train.steps=0"]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


@pytest.fixture(scope="module")
def run(task_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "run"
    assert (
        main(["finetune", "--data", str(task_data["infarct"] / "finetune"), "-o", str(out), *FT])
        == 0
    )
    return out


def test_changed_config_is_refused_and_restart_keeps_the_old_run(run, task_data, capsys):
    data = str(task_data["infarct"] / "finetune")
    capsys.readouterr()
    assert main(["finetune", "--data", data, "-o", str(run), *FT, "optim.lr=0.01"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed_0" in err and "optim.lr: 0.001 → 0.01" in err
    assert main(["finetune", "--data", data, "-o", str(run), *FT, "train.progress=true"]) == 0
    copy = run.with_name("restarted")
    assert main(["finetune", "--data", data, "-o", str(copy), *FT]) == 0
    assert (
        main(["finetune", "--data", data, "-o", str(copy), *FT, "optim.lr=0.01", "--restart"]) == 0
    )
    old = copy.with_name("restarted.old-1")
    assert "lr: 0.001" in (old / "seed_0" / "config.yaml").read_text()
    assert "lr: 0.01" in (copy / "seed_0" / "config.yaml").read_text()
    assert (old / "seed_0" / "model.safetensors").is_file()


def test_evaluate_and_predict_on_the_cpu(run, task_data, tmp_path):
    test = task_data["infarct"] / "test"
    assert (
        main(["evaluate", str(run), "--data", str(test), "--n-boot", "50", "--device", "cpu"]) == 0
    )
    assert json.loads((run / "metrics.json").read_text())["n_seeds"] == 1
    session = sorted((test / "preprocessed").glob("sub_*/ses_1"))[0]

    def predict(name, *extra):
        out = tmp_path / name
        args = ["predict", "--model", str(run), "--session", str(session), "-o", str(out)]
        return main([*args, "--no-qc", *extra]) == 0 and out.is_file()

    assert predict("cpu.txt", "--device", "cpu")
    assert predict("auto.txt")  # --device auto, the default


@NO_CUDA
def test_cuda_without_cuda_is_one_clear_error(run, task_data, tmp_path, capsys):
    test = task_data["infarct"] / "test"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(test), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no usable CUDA GPU" in err
    session = sorted((test / "preprocessed").glob("sub_*/ses_1"))[0]
    args = [
        "predict",
        "--model",
        str(run),
        "--session",
        str(session),
        "-o",
        str(tmp_path / "x.txt"),
    ]
    assert main([*args, "--device", "cuda"]) == 2
    assert "no usable CUDA GPU" in capsys.readouterr().err
    data = str(task_data["infarct"] / "finetune")
    ft = ["finetune", "--data", data, "-o", str(tmp_path / "gpu"), *FT, "train.device=cuda"]
    assert main(ft) == 2 and "no usable CUDA GPU" in capsys.readouterr().err
