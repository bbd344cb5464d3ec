"""Resumable training state without pickle: tensors in safetensors, the rest in JSON.

RUN/checkpoints/step_XXXXXXXX/ holds `weights`, `optim` (+ `ema`) `.safetensors` and
`state.json`; it is written under a temporary name and renamed, then `checkpoints/latest` is
replaced atomically, so a kill -9 at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import InputError
from ..io.atomic import atomic_write_text


def _tensors(sd: dict) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}


def flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        meta["state"][str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}/{k}"] = v
            else:
                meta["state"][str(pid)][k] = v
    return _tensors(tensors), meta


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {int(p): dict(v) for p, v in meta["state"].items()}
    for key, v in tensors.items():
        pid, k = key.split("/", 1)
        state.setdefault(int(pid), {})[k] = v
    return {"param_groups": meta["param_groups"], "state": state}


def save_checkpoint(
    run_dir: Path,
    step: int,
    model_sd: dict,
    optim_sd: dict,
    ema_sd: dict | None,
    extra: dict,
    keep: int = 2,
) -> Path:
    root = run_dir / "checkpoints"
    final = root / f"step_{step:08d}"
    tmp = root / f".step_{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_tensors(model_sd), str(tmp / "weights.safetensors"))
    opt_t, opt_meta = flatten_optimizer(optim_sd)
    save_file(opt_t, str(tmp / "optim.safetensors"))
    if ema_sd is not None:
        save_file(_tensors(ema_sd), str(tmp / "ema.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, "optim": opt_meta, **extra}))
    for f in tmp.iterdir():  # durable before the rename makes it visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_text(root / "latest", final.name)
    old = sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep] if keep > 0 else []
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    ptr = run_dir / "checkpoints" / "latest"
    if not ptr.exists():
        return None
    path = run_dir / "checkpoints" / ptr.read_text().strip()
    return path if (path / "state.json").exists() else None


def load_checkpoint(path: Path) -> tuple[dict, dict, dict | None, dict]:
    """(model state, optimizer state, ema state or None, extra) — tensors only, no pickle."""
    try:
        state = json.loads((path / "state.json").read_text())
        weights = load_file(str(path / "weights.safetensors"))
        optim = unflatten_optimizer(load_file(str(path / "optim.safetensors")), state.pop("optim"))
        ema = (
            load_file(str(path / "ema.safetensors"))
            if (path / "ema.safetensors").exists()
            else None
        )
    except (OSError, ValueError, KeyError) as e:
        raise InputError(
            path, f"cannot load training checkpoint ({type(e).__name__}: {e})"
        ) from None
    return weights, optim, ema, state
