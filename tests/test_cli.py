"""The real CLI, as a user runs it (in-process through `main`, and once as a subprocess)."""

import json
import subprocess
import sys

import pandas as pd

from brainfoundry.cli import main
from tests.conftest import save


def test_help_and_version(capsys):
    assert main(["--version"]) == 0
    assert "brainfoundry" in capsys.readouterr().out
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "prepare" in out


def test_help_does_not_import_torch():
    code = (
        "import sys; from brainfoundry.cli import main; main(['--help']); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")


def test_prepare_cli_end_to_end(tmp_path, fomo60k, capsys):
    store = tmp_path / "store"
    rc = main(
        [
            "prepare",
            str(fomo60k),
            str(store),
            "--spacing",
            "8",
            "-q",
            "-j",
            "2",
            "preprocess.clip_percentiles=[1,99]",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "9 scans written, 0 errors" in out
    assert "clip_percentiles:\n  - 1.0\n  - 99.0" in (store / "prepare.yaml").read_text()
    assert len(pd.read_parquet(store / "manifest.parquet")) == 9
    assert main(["store-info", str(store)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_scans"] == 9 and info["modalities"] == {"flair": 5, "t1": 4}


def test_prepare_cli_reports_bad_files_with_exit_1(tmp_path, mni, capsys):
    root = tmp_path / "raw"
    save(root / "sub_1" / "ses_1" / "t1.nii.gz", *mni)
    (root / "sub_1" / "ses_1" / "flair.nii.gz").write_bytes(b"junk")
    save(root / "sub_1" / "ses_1" / "odd.nii.gz", *mni)
    rc = main(["prepare", str(root), str(tmp_path / "s"), "--spacing", "8", "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "flair.nii.gz: cannot read NIfTI" in err and "--map odd=<modality>" in err
    rc = main(
        ["prepare", str(root), str(tmp_path / "s"), "--spacing", "8", "-q", "--map", "odd=pd"]
    )
    assert rc == 1 and "pd" in set(pd.read_parquet(tmp_path / "s" / "manifest.parquet").modality)


def test_user_mistakes_are_one_line_exit_2(tmp_path, capsys):
    rc = main(["prepare", str(tmp_path / "missing"), str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "dataset folder not found" in err
    assert len(err.splitlines()) == 1
    assert main(["prepare", str(tmp_path), str(tmp_path / "s"), "--spacing", "0"]) == 2
    assert "--spacing" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path), str(tmp_path / "s"), "nope.key=1"]) == 2
    assert "no config" in capsys.readouterr().err
