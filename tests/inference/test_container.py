"""The FOMO25 entry point, called exactly as the challenge's validator calls it: one process per
case, flags derived from the input file names, the input folder read-only, and every rule the
validator checks (a .txt holds one float; a mask has the input's shape, only {0,1})."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytestmark = pytest.mark.slow

ENTRY = Path(__file__).parents[2] / "container" / "predict.py"
FLAGS = {"flair", "adc", "dwi_b1000", "t2s", "swi", "t1", "t2"}


def _read_only_input(test_dir: Path, root: Path, n: int = 2) -> list[Path]:
    """Copy n cases to root/input/<sub>/ and make the tree read-only, as /input is."""
    cases = []
    for sub in sorted((test_dir / "preprocessed").iterdir())[:n]:
        dst = root / "input" / sub.name
        shutil.copytree(sub / "ses_1", dst)
        cases.append(dst)
    for p in sorted((root / "input").rglob("*"), reverse=True):
        p.chmod(stat.S_IRUSR | stat.S_IRGRP | (stat.S_IXUSR if p.is_dir() else 0))
    return cases


def _digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.nii.gz")}


def _call(model: Path, case: Path, output: Path) -> subprocess.CompletedProcess:
    """The validator's call: --<file stem> <file> for each input file, then --output."""
    args = []
    for f in sorted(case.glob("*.nii.gz")):
        stem = f.name[: -len(".nii.gz")]
        assert stem in FLAGS
        args += [f"--{stem}", str(f)]
    env = {**os.environ, "BRAINFOUNDRY_MODEL": str(model)}
    return subprocess.run(
        [sys.executable, str(ENTRY), *args, "--output", str(output)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("task", ["infarct", "brainage", "meningioma"])
def test_entry_point_follows_every_validator_rule(fomo, tmp_path, task):
    model, test = fomo[task]
    cases = _read_only_input(test, tmp_path)
    before = _digest(tmp_path / "input")
    out_dir = tmp_path / "output"
    out_dir.mkdir()
    ext = ".nii.gz" if task == "meningioma" else ".txt"
    for case in cases:
        output = out_dir / f"{case.name}{ext}"
        res = _call(model, case, output)
        assert res.returncode == 0, res.stderr
        if ext == ".txt":
            tokens = output.read_text().split()
            assert len(tokens) == 1 and np.isfinite(float(tokens[0]))  # one float, parseable
        else:
            ref = nib.load(next(case.glob("*.nii.gz")))
            mask = nib.load(output)
            data = np.asarray(mask.dataobj)
            assert data.shape == ref.shape  # exactly the input's shape
            assert np.allclose(mask.affine, ref.affine, atol=1e-4)
            assert set(np.unique(data).tolist()) <= {0, 1}
    # only the scored outputs, nothing else; the inputs untouched
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{c.name}{ext}" for c in cases)
    assert _digest(tmp_path / "input") == before


def test_bad_case_exits_non_zero_without_output(fomo, tmp_path):
    model, test = fomo["infarct"]
    case = _read_only_input(test, tmp_path, n=1)[0]
    crippled = tmp_path / "crippled"
    shutil.copytree(case, crippled)
    crippled.chmod(0o755)  # copytree copied the read-only mode
    (crippled / "adc.nii.gz").unlink()
    output = tmp_path / "output" / "sub.txt"
    res = _call(model, crippled, output)
    assert res.returncode == 2
    err = res.stderr.strip()
    assert "--adc" in err and "\n" not in err and "Traceback" not in err
    assert not output.exists() and not output.parent.exists()
