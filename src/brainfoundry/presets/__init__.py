"""Presets: named config files shipped with the package, one folder per command.

`--preset NAME` always means one of these files (`pretrain/NAME.yaml`, `finetune/NAME.yaml`);
`--suite NAME` reads `suites/NAME.yaml`. The names a command knows are the files present, so
adding a preset is adding a file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ConfigError

KINDS = ("pretrain", "finetune", "suites")


def _folder(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"preset kind {kind!r} is not one of {KINDS}")
    return Path(str(resources.files("brainfoundry.presets") / kind))


def preset_names(kind: str) -> list[str]:
    """The presets of one kind, sorted."""
    return sorted(p.stem for p in _folder(kind).glob("*.yaml"))


def preset_path(kind: str, name: str) -> Path:
    """The file of preset `name` of `kind`; an unknown name is one ConfigError listing the known."""
    path = _folder(kind) / f"{name}.yaml"
    if not path.is_file():
        what = "suite" if kind == "suites" else f"{kind} preset"
        raise ConfigError(f"unknown {what} {name!r}; known: {', '.join(preset_names(kind))}")
    return path
