"""The code keeps the shape the style guide asks for: short functions, and no module reaching
into another package's private names (what is shared is public, or it is not shared)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "brainfoundry"
MAX_LINES = 60


def _modules(*dirs: Path):
    for d in dirs:
        for path in sorted(d.rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _package_of(path: Path) -> str:
    """The package a file belongs to: `brainfoundry.tasks` for src/brainfoundry/tasks/x.py,
    or "tests"/"benchmarks" for those trees."""
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "src":
        return ".".join(rel.parts[1:-1])
    return rel.parts[0]


def _imported_from(node: ast.ImportFrom, path: Path) -> str | None:
    """The absolute package a `from X import ...` reads, or None outside brainfoundry."""
    if node.level == 0:
        return node.module if (node.module or "").startswith("brainfoundry") else None
    base = _package_of(path).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def test_no_function_in_src_is_over_60_lines():
    long = [
        f"{path.relative_to(ROOT)}::{n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for path, tree in _modules(SRC)
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and n.end_lineno - n.lineno + 1 > MAX_LINES
    ]
    assert not long, "functions over 60 lines: " + ", ".join(long)


def test_no_private_name_is_imported_across_packages():
    bad = []
    for path, tree in _modules(SRC, ROOT / "tests", ROOT / "benchmarks"):
        here = _package_of(path)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _imported_from(node, path)
            if source is None:
                continue
            package = (
                source
                if (SRC.parent / source.replace(".", "/")).is_dir()
                else (source.rsplit(".", 1)[0])
            )
            private = [
                a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")
            ]
            if private and package != here:
                bad.append(f"{path.relative_to(ROOT)}: {private} from {source}")
    assert not bad, "private names imported across packages: " + "; ".join(bad)
