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


def test_index_keeps_earlier_runs_and_quotes_each_tables_finding(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    monkeypatch.setattr(run_all, "RUNS", tmp_path / "run_all.json")
    (tmp_path / "store.md").write_text("# store\n\n| a |\n|---|\n\n- b2nd reads 3.1x faster\n")
    run_all.write_index({"store": 12.4})
    run_all.write_index({"synth": 40.0})  # a later run of another table keeps store's record
    index = (tmp_path / "README.md").read_text()
    store = next(line for line in index.splitlines() if line.startswith("| [store]"))
    assert ", 12 s |" in store and "b2nd reads 3.1x faster" in store
    synth = next(line for line in index.splitlines() if line.startswith("| [synth]"))
    assert ", 40 s |" in synth and "(no table yet)" in synth
    prepare = next(line for line in index.splitlines() if line.startswith("| [prepare]"))
    assert "not recorded" in prepare
