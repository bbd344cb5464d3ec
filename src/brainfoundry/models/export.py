"""`brainfoundry export RUN -o DIR`: a model folder to hand on that loads offline.

DIR holds `model.safetensors` (the run's file, byte for byte), `card.json` (the card: the
config every brainfoundry loader reads), `README.md` (the model card, rendered from it), and when
the run has them its resolved `config.yaml` and test `metrics.json`. No pickles and no network:
`load_model(DIR)` (a backbone) or `load_task_model(DIR)` (a fine-tuned seed) rebuild it, and
`--init DIR` / `predict --model DIR` accept it as they accept the run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..errors import InputError
from ..io.atomic import atomic_path, atomic_write_text
from .card import ModelCard
from .card_readme import render
from .checkpoint import CARD, WEIGHTS, load_model, read_weights

README = "README.md"
# files of a run copied along when present: the resolved training config, the test metrics
EXTRAS = ("config.yaml", "metrics.json")


def export_folder(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the model folder `out_dir` from `run_dir`; returns `out_dir`.

    The weights are checked first: they must read as safetensors, and a backbone run must fill
    its network exactly (a task model's head is checked when it is loaded, by its own loader)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not run_dir.is_dir():
        raise InputError(run_dir, "run folder does not exist")
    if out_dir.resolve() == run_dir.resolve():
        raise InputError(out_dir, "export into a new folder, not the run itself")
    card = ModelCard.load(run_dir / CARD)
    tensors, _ = read_weights(run_dir / WEIGHTS)
    if "task" not in card.extra:
        load_model(run_dir, strict=True)
    test = _read_json(run_dir / "metrics.json")
    weights = out_dir / WEIGHTS
    with atomic_path(weights) as tmp:
        shutil.copyfile(run_dir / WEIGHTS, tmp)
    for name in EXTRAS:
        if (run_dir / name).is_file():
            with atomic_path(out_dir / name) as tmp:
                shutil.copyfile(run_dir / name, tmp)
    n_params = sum(t.numel() for t in tensors.values())
    atomic_write_text(out_dir / README, render(card, n_params, sha256_file(weights), test))
    atomic_write_text(out_dir / CARD, card.to_json())  # last: a folder with a card is whole
    return out_dir


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"is not valid JSON ({e})") from e
    return data if isinstance(data, dict) else None


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (weights files are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
