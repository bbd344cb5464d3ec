"""`torch.load(weights_only=True)` for checkpoints that pickle more than tensors.

Training frameworks save objects beside the weights: Lightning keeps `hyper_parameters`, which
can hold configuration classes (OmegaConf containers, paths, layer classes). `weights_only`
refuses any class it does not know, so such a file would not load at all. Torch lists the
classes a file names without unpickling it (`get_unsafe_globals_in_checkpoint`); each is
replaced by an inert placeholder that records what was pickled and runs nothing, and the
restricted unpickler stays in charge. Tensors load as they are; the placeholders are named in
the import report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...errors import InputError


class Placeholder:
    """Stands in for an object of a class that is not imported; it only keeps its pickled data."""

    qualname = ""
    args: tuple[Any, ...] = ()
    state: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        obj = object.__new__(cls)
        obj.args = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.qualname}>"


def _placeholder(name: str) -> type[Placeholder]:
    module, _, short = name.rpartition(".")
    attrs = {"qualname": name, "__module__": module, "__qualname__": short}
    return type(short, (Placeholder,), attrs)


def load_weights_only(path: str | Path) -> tuple[Any, list[str]]:
    """(the unpickled object, names of the classes replaced by placeholders)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True), []
    except Exception as first:  # torch raises several types for an unsafe or broken pickle
        unsafe = _unsafe_globals(path)
        if not unsafe:
            raise InputError(path, f"cannot be read as a torch checkpoint: {first}") from first
    stand_ins = [(_placeholder(name), name) for name in unsafe]
    try:
        with torch.serialization.safe_globals(stand_ins):  # type: ignore[arg-type]
            return torch.load(path, map_location="cpu", weights_only=True), unsafe
    except Exception as e:
        raise InputError(
            path,
            f"holds pickled objects ({', '.join(unsafe)}) that a weights-only load cannot stand "
            f"in for ({e}). In an environment you trust, save its tensors alone: "
            "torch.save(torch.load(PATH, weights_only=False)['state_dict'], 'weights.pt')",
        ) from e


def _unsafe_globals(path: Path) -> list[str]:
    """Classes/functions the pickle names beyond torch's allowlist (read, never executed)."""
    lister = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if lister is None:  # torch < 2.5
        return []
    try:
        return sorted(lister(path))
    except Exception:  # not a zip checkpoint (legacy format): no list, so no stand-ins
        return []


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe view of loaded metadata: placeholders and other objects become strings."""
    if depth > 6:
        return repr(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if torch.is_tensor(value):
        return value.item() if value.numel() == 1 else f"tensor{list(value.shape)}"
    return repr(value)
