from __future__ import annotations

import json

from brainfoundry.cli import main


def test_cli_task_end_to_end(tmp_path, capsys):
    out = tmp_path / "inf"
    rc = main(
        [
            "synth",
            "task",
            "infarct",
            "-o",
            str(out),
            "--n",
            "2",
            "--n-test",
            "2",
            "--resolution",
            "6",
            "--seed",
            "1",
            "--shift",
            "0.5",
            "--difficulty",
            "0.2",
            "--workers",
            "1",
            "--no-qc",
        ]
    )
    assert rc == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["config"]["shift"] == 0.5 and info["config"]["difficulty"] == 0.2
    assert len(list((out / "test" / "labels").glob("sub_*/ses_1/label.txt"))) == 2
    assert "wrote infarct" in capsys.readouterr().out


def test_cli_pretrain_with_qc(tmp_path):
    out = tmp_path / "pre"
    assert main(["synth", "pretrain", "-o", str(out), "--n", "2", "--resolution", "tiny"]) == 0
    assert (out / "qc" / "pretrain.png").exists()
    assert json.loads((out / "dataset.json").read_text())["layout"] == "fomo60k"


def test_cli_reports_impossible_parameters_in_one_line(tmp_path, capsys):
    rc = main(["synth", "task", "brainage", "-o", str(tmp_path / "x"), "--resolution", "0.3"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "resolution" in err and len(err.strip().splitlines()) == 1
    assert main(["synth", "task", "brainage", "-o", str(tmp_path / "y"), "--n", "0"]) == 2
    assert "--n must be at least 1" in capsys.readouterr().err
