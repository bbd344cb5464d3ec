"""The batch summary (`predict --batch`): one row per session with its status and QC flags, so
a reader sees at once which cases failed, which were skull-stripped or moved onto the reference
grid, and which outputs are implausible, without opening every case's JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..io.atomic import atomic_write_text

COLUMNS = ("case", "status", "output", "skull_strip", "brain_ml", "flags", "problem")


def _strip(qc: dict) -> tuple[str, str]:
    """(what brain extraction did, the brain's mL or "")."""
    rec = qc.get("skull_strip") or {}
    method = rec.get("method", "")
    if "left" in rec:  # auto left it: "stripped" already, or a "slab"
        return f"{method}: {rec['left']}", ""
    return method, str(rec.get("brain_ml", ""))


def ok_row(name: str, info: dict, output: Path) -> dict:
    """A predicted case's row, from its JSON (`write_outputs`' side file)."""
    strip, ml = _strip(info.get("qc", {}))
    flags = [k for k, v in (info.get("plausibility") or {}).items() if v is True]
    warnings = info.get("warnings", [])
    return {
        "case": name,
        "status": "warning" if warnings or flags else "ok",
        "output": output.name,
        "skull_strip": strip,
        "brain_ml": ml,
        "flags": ";".join(flags + [f"{len(warnings)} warning(s)"] * bool(warnings)),
        "problem": " | ".join(warnings),
    }


def failed_row(name: str, problem: str) -> dict:
    return {"case": name, "status": "failed", "output": "", "skull_strip": "", "brain_ml": "",
            "flags": "", "problem": problem}  # fmt: skip


def finished_row(name: str, output: Path, side: Path) -> dict:
    """The row of a case an earlier run finished (read back from its JSON)."""
    try:
        info = json.loads(side.read_text())
    except (OSError, ValueError):
        info = {"warnings": [f"{side.name} unreadable: its flags are unknown"]}
    return ok_row(name, info, output)


def write_summary(folder: Path, rows: list[dict]) -> Path:
    """folder/summary.csv, written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "summary.csv"
    atomic_write_text(path, buf.getvalue())
    return path
