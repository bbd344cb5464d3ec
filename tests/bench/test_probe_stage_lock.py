"""Cells run in parallel share one probe stage per (backbone, objective, seed): the probe and
fairness cells of a launcher's jobs take turns on its folder (`io.atomic.exclusive`), so the
stage runs once and the second cell reads the first's result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from brainfoundry.bench import probe_stage
from brainfoundry.io.atomic import exclusive


def test_two_cells_at_once_run_the_shared_stage_once(tmp_path, monkeypatch):
    calls = []

    def slow_stage(suite, backbone, init, seed, task_dir, folder):
        calls.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the other cell to arrive while this one runs
        folder.mkdir(parents=True, exist_ok=True)
        report = {"chosen_lr": 0.01}
        (folder / "probe.json").write_text(json.dumps(report))
        (folder / "done.json").write_text("{}")
        return report, 0.3

    monkeypatch.setattr(probe_stage, "_run_stage", slow_stage)
    got = []

    def cell():
        got.append(probe_stage.probe_stage(None, "resenc:tiny", "mae", "RUN", 0, tmp_path,
                                           tmp_path))  # fmt: skip

    threads = [threading.Thread(target=cell) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(secs for _, secs in got) == [0.0, 0.3]  # the second read the first's result
    assert all(report == {"chosen_lr": 0.01} for report, _ in got)


HOLD = """
import sys, time
from brainfoundry.io.atomic import exclusive
with exclusive(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    lock = tmp_path / "stage.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    entered = threading.Event()

    def wait_for_it():
        with exclusive(lock):
            entered.set()

    t = threading.Thread(target=wait_for_it)
    t.start()
    assert not entered.wait(0.3)  # blocked while the other process holds it
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    t.join(10)
    assert entered.is_set()
