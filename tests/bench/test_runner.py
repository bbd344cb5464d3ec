"""The suite runner end to end on a tiny generated suite (6 mm, a few cases, a few steps):
every stage runs for real (synth, prepare, pretrain, finetune, evaluate, analysis), finished
cells are skipped on a rerun, a lost cell is redone, and another suite in the same folder is
refused."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from brainfoundry.bench.runner import run_suite
from brainfoundry.bench.suite import load_suite
from brainfoundry.cli import main
from brainfoundry.errors import ConfigError

from .conftest import TINY


@pytest.mark.slow
def test_every_stage_writes_its_artefacts(tiny_run):
    suite, out, tables, lines = tiny_run
    assert (out / "suite.yaml").is_file()
    assert (out / "pretrain/resenc-tiny/mae/model.safetensors").is_file()
    for cell in suite.cells():
        rec = json.loads((out / cell.path / "done.json").read_text())
        assert rec["n_test"] == 6 and rec["metrics"]
        assert (out / cell.path / f"seed_{cell.seed}" / "predictions.csv").is_file()
    res = pd.read_csv(out / "results.csv")
    assert set(res["objective"]) == {"scratch", "mae"}
    assert set(res["task"]) == {"infarct", "meningioma", "brainage"}
    assert {"auroc", "dice", "nsd", "mae", "pearson_r"} <= set(res["metric"])
    pairs = pd.read_csv(out / "paired.csv")
    # one pretrained objective x 3 tasks, FOMO metrics: auroc; dice, nsd; mae, pearson_r
    assert len(pairs) == 5 and set(pairs["objective"]) == {"mae"}
    # each row is the paired bootstrap of the two cells' own predictions, signed as a gain
    from brainfoundry.evaluation.scoring import paired_diff

    row = pairs[pairs["metric"] == "dice"].iloc[0]
    cells = {c.objective: c for c in suite.cells() if c.task == "meningioma"}
    a, b = (
        pd.read_csv(out / cells[o].path / "seed_0" / "predictions.csv") for o in ("mae", "scratch")
    )
    d = paired_diff("segmentation", "dice", a, b.set_index("case").loc[a["case"]].reset_index(),
                    n_boot=suite.n_boot)  # fmt: skip
    assert (row["diff"], row["gain_lo"], row["gain_hi"]) == pytest.approx((d.diff, d.lo, d.hi))
    mae_row = pairs[pairs["metric"] == "mae"].iloc[0]
    assert mae_row["gain"] == pytest.approx(-mae_row["diff"])  # lower MAE is a gain
    ranks = pd.read_csv(out / "ranking.csv")
    assert set(ranks["objective"]) == {"scratch", "mae"} and set(ranks["shots"]) == {"4", "all"}
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "Primary metric" in html
    assert any(line.startswith("[pretrain]") for line in lines)
    assert set(tables) >= {"results", "paired", "ranking", "primary", "verdict"}
    # the compute table: one pretraining run, every cell timed, and how to reproduce
    md = (out / "results.md").read_text()
    assert "| pretrain | resenc:tiny mae | 1 |" in md
    n_cells = sum(f"| fine-tune + evaluate | {t} |" in md for t in suite.tasks)
    assert n_cells == 3 and "brainfoundry bench --suite" in md
    from brainfoundry.synth.writers import pool_running

    assert not pool_running()  # the synth workers were stopped after the data stage


@pytest.mark.slow
def test_cli_shows_progress_bars_unless_quiet(tiny_run, capsys):
    _, out, _, _ = tiny_run  # finished: every stage is skipped, only the cell bar runs
    assert main(["bench", "--suite", "demo", "-o", str(out), *TINY]) == 0
    assert "fine-tune + evaluate" in capsys.readouterr().err
    assert main(["bench", "--suite", "demo", "-o", str(out), "-q", *TINY]) == 0
    assert "fine-tune + evaluate" not in capsys.readouterr().err


@pytest.mark.slow
def test_rerun_skips_finished_cells_and_redoes_a_lost_one(tiny_run):
    suite, out, _, _ = tiny_run
    cells = suite.cells()
    stamps = {c: (out / c.path / "done.json").stat().st_mtime_ns for c in cells}
    lost = cells[0]
    (out / lost.path / "done.json").unlink()
    run_suite(suite, out, log=lambda *_: None, progress=False)
    for c in cells:
        now = (out / c.path / "done.json").stat().st_mtime_ns
        assert (now != stamps[c]) if c == lost else (now == stamps[c])


@pytest.mark.slow
def test_another_suite_in_the_same_folder_is_refused(tiny_run):
    suite, out, _, _ = tiny_run
    other = load_suite("demo", [*TINY, "shots=[3]"])
    with pytest.raises(ConfigError, match="another suite"):
        run_suite(other, out, log=lambda *_: None, progress=False)


@pytest.mark.slow
def test_cli_report_only_rebuilds_tables(tiny_run, capsys):
    _, out, _, _ = tiny_run
    (out / "results.md").unlink()
    rc = main(["bench", "--suite", "demo", "-o", str(out), "--report-only", *TINY])
    assert rc == 0
    assert (out / "results.md").is_file()
    assert "Test-set results" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_cli_prints_the_summary_and_the_layout(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), *TINY, "tasks=[brainage]"])
    assert rc == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "synth brainage" in captured.err  # every stage shows its progress bar
    assert "Test-set results" in text and "brainage" in text
    assert "report.html" in text and "cells/" in text  # the documented output folder
    res = pd.read_csv(out / "results.csv")
    assert set(res["task"]) == {"brainage"} and set(res["objective"]) == {"scratch", "mae"}
