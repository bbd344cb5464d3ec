"""The bench report opened in a real browser (headless Chromium): its script runs without an
error, every table, row and figure is in the rendered page, and `#sort=` orders rows.

The report is built by the real analysis (`analyse`) from a suite folder laid out as the runner
writes it, with generated predictions in place of training, so the test takes seconds. Without
Chromium the test fails: CI (.ci/run) installs it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainfoundry.bench.analysis import analyse
from brainfoundry.bench.report_cells import sites_part
from brainfoundry.bench.report_data import reproduce_command
from brainfoundry.bench.suite import load_suite
from brainfoundry.config import save_config, to_dict
from brainfoundry.evaluation import summarize, write_report

SUITE = ["name=tiny", "backbones=[resenc:tiny]", "shots=[4,8]", "seeds=[0]", "n_boot=50"]
N_CASES = 12
KIND = {"infarct": "classification", "brainage": "regression", "meningioma": "segmentation"}


def _predictions(task: str, rng: np.random.Generator) -> pd.DataFrame:
    """A cell's predictions: every cell of a task sees the same test cases and truth."""
    case = [f"sub_{i}" for i in range(N_CASES)]
    if task == "infarct":  # two scanners, both classes on each
        label = np.tile([0, 1], N_CASES // 2)
        prob = np.clip(0.3 + 0.4 * label + rng.normal(0, 0.2, N_CASES), 0, 1)
        scanner = np.repeat(["A", "B"], N_CASES // 2)
        return pd.DataFrame({"case": case, "label": label, "prob": prob, "scanner": scanner})
    if task == "brainage":
        age = np.linspace(20, 80, N_CASES)
        pred = age + rng.normal(0, 8, N_CASES)
        return pd.DataFrame({"case": case, "label": age, "pred": pred, "lo": pred - 15,
                             "hi": pred + 15})  # fmt: skip
    dice = rng.uniform(0, 1, N_CASES)
    return pd.DataFrame({"case": case, "dice": dice, "nsd": dice * 0.8, "hd95": 40 * (1 - dice)})


def _volumes(preds: pd.DataFrame) -> dict:
    image = np.random.default_rng(0).normal(size=(8, 8, 8)).astype(np.float32)
    truth = np.zeros((8, 8, 8), bool)
    truth[2:6, 2:6, 2:6] = True
    return {c: (image, truth, np.roll(truth, 1, axis=0)) for c in preds["case"]}


def _write_log(run: Path, steps: int, start: float) -> None:
    step = np.arange(1, steps + 1)
    loss = start * np.exp(-step / steps) + 0.05 * np.sin(step)
    pd.DataFrame({"step": step, "loss": loss, "lr": 1e-3}).to_csv(run / "log.csv", index=False)


def _write_cell(out: Path, cell, rng: np.random.Generator) -> None:
    """What `run_cell` leaves behind: predictions, metrics, report, val_metrics, done.json."""
    kind = KIND[cell.task]
    run = out / cell.path / f"seed_{cell.seed}"
    run.mkdir(parents=True)
    preds = _predictions(cell.task, rng)
    preds.to_csv(run / "predictions.csv", index=False)
    summary = {**summarize(kind, preds, n_boot=50, seed=0), "task": cell.task, "warnings": []}
    (run / "metrics.json").write_text(json.dumps(summary))
    volumes = _volumes(preds) if kind == "segmentation" else None
    write_report(run, kind, preds, summary, volumes=volumes)
    trained = kind == "segmentation"  # the others stay the closed-form probe: no log
    if trained:
        _write_log(run, 40, 1.0)
    metric = {"classification": "auroc", "regression": "mae", "segmentation": "dice"}[kind]
    val = {"step": 40 if trained else 0, "metrics": {metric: 0.6, "loss": 0.3}}
    (run / "val_metrics.json").write_text(json.dumps(val))
    rec = {**{k: getattr(cell, k) for k in ("task", "backbone", "objective", "shots", "seed")},
           "n_test": N_CASES, "finetune_seconds": 1.5, "evaluate_seconds": 0.5,
           "metrics": summary["metrics"]}  # fmt: skip
    (out / cell.path / "done.json").write_text(json.dumps(rec))


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "tiny"
    suite = load_suite("demo", SUITE)
    out.mkdir()
    save_config(suite, out / "suite.yaml")
    pre = out / "pretrain/resenc-tiny/mae"
    pre.mkdir(parents=True)
    (pre / "done.json").write_text(json.dumps({"seconds": 3.0, "step": 30}))
    _write_log(pre, 30, 0.8)
    rng = np.random.default_rng(0)
    for cell in suite.cells():
        _write_cell(out, cell, rng)
    tables = analyse(suite, out)
    return suite, out, tables


class _Dom(HTMLParser):
    """The tables (id -> header and rows of cell text), images and <body> attributes."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.images: list[str] = []
        self.body: dict[str, str | None] = {}
        self._table: dict | None = None
        self._row: list[str] | None = None
        self._text: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.images.append(a.get("src") or "")
        elif tag == "table" and a.get("id"):
            self._table = self.tables.setdefault(a["id"], {"head": [], "rows": []})
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._text = []

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._text is not None:
            self._row.append("".join(self._text).strip())
            self._text = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            key = "rows" if self._table["head"] else "head"
            self._table[key] = [*self._table[key], self._row] if key == "rows" else self._row
            self._row = None
        elif tag == "table":
            self._table = None


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail(
            "headless Chromium is needed to test the bench report in a browser: install it with "
            "`apt-get install -y --no-install-recommends chromium` (.ci/run does)"
        )
    return exe


def _open(page: Path, profile: Path, fragment: str = "") -> tuple[_Dom, str]:
    """The DOM after the page's script ran, and what the browser logged (console included)."""
    cmd = [
        _chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom",
        page.as_uri() + fragment,
    ]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "</html>" in r.stdout, r.stderr[-3000:]
    return _Dom(r.stdout), r.stderr


def _column(dom: _Dom, table: str, col: str) -> list[str]:
    t = dom.tables[f"table-{table}"]
    i = t["head"].index(col)
    return [row[i] for row in t["rows"]]


def test_the_page_renders_every_table_and_figure_without_script_errors(bench, tmp_path):
    suite, out, tables = bench
    source = (out / "report.html").read_text()
    dom, log = _open(out / "report.html", tmp_path / "profile")
    console = [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, console  # the page's script logged nothing and threw nothing
    n_sortable = source.count('class="sortable"')
    assert dom.body.get("data-sortable") == str(n_sortable) and n_sortable >= 10
    for name in ("results", "paired", "ranking", "primary"):
        assert len(dom.tables[f"table-{name}"]["rows"]) == len(tables[name]) > 0
    assert len(dom.tables["table-compute"]["rows"]) == 1 + 3 + 1  # pretrain, 3 tasks, total
    assert len(dom.tables["table-cells"]["rows"]) == len(suite.cells()) == 12
    for task in KIND:  # the primary cells' test cases, one row each
        assert len(dom.tables[f"table-cases-{task}-resenc-tiny"]["rows"]) == N_CASES
    # learning curve, 2 objectives x (ROC + calibration, age scatter, Dice distribution),
    # pretraining and fine-tuning curves: every figure inline, none fetched
    assert len(dom.images) == 1 + 2 * 4 + 2
    assert all(src.startswith("data:image/png;base64,") for src in dom.images)
    assert "No training log (log.csv) in 8 of 12 cells" in source
    assert "brainfoundry bench --suite" in source and str(out / "suite.yaml") in source


def test_the_sort_hook_orders_rows_and_keeps_blanks_last(bench, tmp_path):
    _, out, tables = bench
    dom, _ = _open(out / "report.html", tmp_path / "profile", "#sort=paired:gain:desc")
    assert dom.body.get("data-sorted") == "paired:gain"
    shown = [float(v) for v in _column(dom, "paired", "gain")]
    assert shown == pytest.approx(sorted(tables["paired"]["gain"], reverse=True), abs=5e-4)
    assert shown != list(tables["paired"]["gain"])  # the rows really moved
    dom, _ = _open(out / "report.html", tmp_path / "profile", "#sort=cells:montage")
    montage = _column(dom, "cells", "montage")
    assert montage == ["montage"] * 4 + [""] * 8  # segmentation cells first, blanks last
    dom, _ = _open(out / "report.html", tmp_path / "profile", "#sort=cells:montage:desc")
    assert _column(dom, "cells", "montage")[-1] == ""


def test_the_page_stands_alone_and_its_links_resolve(bench):
    _, out, _ = bench
    source = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", source)  # no CDN, no network
    links = re.findall(r'href="([^"#]+)(#[^"]*)?"', source)
    assert len(links) == 12 + 4  # every cell's report, and the segmentation montages
    for path, anchor in links:
        target = out / path
        assert target.is_file(), path
        if anchor:
            assert f'id="{anchor[1:]}"' in target.read_text()


def test_the_site_breakdown_uses_the_scanner_column_or_says_there_is_none(bench):
    suite, out, _ = bench
    source = (out / "report.html").read_text()
    assert 'id="table-sites"' in source
    cells = [c for c in suite.cells() if c.shots == 8 and c.task == "brainage"]
    part = sites_part(suite, out, cells)
    assert not part.tables and "No site/scanner column in these data" in part.notes[0]
    with_sites = sites_part(suite, out, [c for c in suite.cells() if c.task == "infarct"])
    groups = with_sites.tables[0].frame
    assert set(groups["group"]) == {"A", "B"} and set(groups["n cases"]) == {N_CASES // 2}


def test_the_reproduce_command_names_the_exact_suite(bench, tmp_path):
    suite, out, _ = bench
    assert reproduce_command(load_suite("demo"), tmp_path) == (
        f"brainfoundry bench --suite demo -o {tmp_path}"
    )
    # a changed suite is rerun from the resolved copy the runner saved beside the results
    cmd = reproduce_command(suite, out)
    assert cmd == f"brainfoundry bench --suite {out / 'suite.yaml'} -o {out}"
    assert to_dict(load_suite(out / "suite.yaml")) == to_dict(suite)
