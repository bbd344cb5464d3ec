"""Shared helpers for the benchmarks: machine description, timing, Markdown tables."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from brainfoundry.bench.machine import machine  # noqa: F401  (re-exported for the benchmarks)


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def gemm_peak(n: int = 2048, reps: int = 5) -> float:
    """Best-of-`reps` fp32 GFLOP/s of one n x n matrix product: the roofline we compare with."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def estimate_ci(m: dict) -> str:
    """A metric dict {estimate, lo, hi} as "0.570 [0.396, 0.737]" (no brackets without a CI)."""
    lo, hi = m.get("lo"), m.get("hi")
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{m['estimate']:.3f}{ci}"


def reproduce_command(module: str, args: list[str]) -> str:
    """The command that remakes a table, without `--work DIR` (a scratch folder, not part of
    the recipe, and a path of this machine)."""
    import shlex

    shown, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--work":
            skip = True
        elif not a.startswith("--work="):
            shown.append(a)
    return " ".join([f"python -m benchmarks.{module}", *([shlex.join(shown)] if shown else [])])


def write_result(path, title: str, intro: str, body: str, seconds: float, cmd: str) -> None:
    """Write a results page (title, what it measured, the table, machine, time, the command
    that remakes it), its folder made, and echo it."""
    text = "\n\n".join([
        f"# {title}", intro, body,
        f"machine: {machine()}; {seconds:.0f} s in all. Reproduce: `{cmd}`",
    ])  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(text)


def write_suite_result(module: str, doc: str, note: str, title: str, header: list[str],
                       body: list[list], prose: list[str], out, t0: float,
                       argv: list[str] | None) -> None:  # fmt: skip
    """A suite benchmark's page: the module docstring's first paragraph + `note` as the
    intro, the table and its generated prose, and the command that remakes it."""
    intro = f"{doc.split(chr(10) + chr(10))[0]} {note}"
    text = table(header, body) + "\n\n" + "\n".join(prose)
    cmd = reproduce_command(module, sys.argv[1:] if argv is None else argv)
    write_result(out, title, intro, text, time.perf_counter() - t0, cmd)


def suite_args(doc: str, result, argv: list[str] | None):
    """The arguments every suite benchmark takes: --out (its table) and --work (keep or resume
    the runs there instead of a scratch folder)."""
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=result)
    ap.add_argument("--work", type=Path, default=None, help="keep (or resume) the runs here")
    return ap.parse_args(argv)
