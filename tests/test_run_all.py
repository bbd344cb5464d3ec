"""benchmarks/run_all: the registry of benchmarks matches the modules on disk, and a wrong
name is a usage error (the benchmarks themselves are timings, run on an idle machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import run_all


def test_every_registered_benchmark_exists():
    here = Path(run_all.__file__).parent
    registered = run_all.BENCHMARKS.items()
    missing = [n for n, (mod, *_) in registered if not (here / f"{mod}.py").exists()]
    assert not missing
    assert {"prepare", "store", "loader", "synth", "pretrain"} <= set(run_all.BENCHMARKS)


def test_unknown_benchmark_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        run_all.main(["nonesuch"])
    assert e.value.code == 2 and "unknown benchmarks" in capsys.readouterr().err
