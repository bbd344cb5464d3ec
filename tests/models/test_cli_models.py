"""`brainfoundry export` / `import` from the command line."""

from __future__ import annotations

import torch

from brainfoundry.cli import main
from brainfoundry.models.checkpoint import load_model


def test_cli_export_then_import(saved_run, tmp_path, capsys):
    run, model, card = saved_run
    out = tmp_path / "nnssl"
    assert main(["export", str(run), "--to", "nnssl", "-o", str(out)]) == 0
    assert (out / "checkpoint_final.pth").is_file() and (out / "adaptation_plan.json").is_file()
    back = tmp_path / "back"
    assert main(["import", str(out / "checkpoint_final.pth"), "-o", str(back), "--strict"]) == 0
    assert "imported" in capsys.readouterr().out
    loaded, card2, _ = load_model(back, strict=True)
    assert card2 == card
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_cli_user_mistakes_exit_2(saved_run, tmp_path, capsys):
    run, _, _ = saved_run
    assert main(["export", str(run), "--to", "onnx", "-o", str(tmp_path / "x")]) == 2
    assert main(["export", str(tmp_path / "nope"), "-o", str(tmp_path / "x")]) == 2
    assert main(["import", str(tmp_path / "nope.pth"), "-o", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "supported formats" in err and "does not exist" in err and "no nnssl checkpoint" in err
