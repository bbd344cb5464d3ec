"""PyTorch Lightning checkpoints (`.ckpt`): what they hold beside the weights.

A Lightning checkpoint is a `torch.save` dict whose `state_dict` holds the LightningModule's
tensors, named after its attributes: the network usually sits under `model.` (the FOMO25
baseline's `SelfSupervisedModel`, asparagus' `BaseModule`), under `model._orig_mod.` when it was
`torch.compile`d, next to loss or metric buffers. The rest (`epoch`, `global_step`,
`pytorch-lightning_version`, `hyper_parameters`, optimizer and loop state) is training
bookkeeping; the import report keeps the readable part so a user can see what was loaded.
"""

from __future__ import annotations

from typing import Any

from .safe_load import jsonable

# keys Lightning's checkpoint connector always writes (any one marks a Lightning file)
MARKERS = ("pytorch-lightning_version", "global_step", "loops", "optimizer_states")


def is_lightning(ckpt: Any) -> bool:
    """A dict with a `state_dict` and Lightning's own bookkeeping keys."""
    return (
        isinstance(ckpt, dict)
        and isinstance(ckpt.get("state_dict"), dict)
        and any(m in ckpt for m in MARKERS)
    )


def lightning_info(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The readable training facts of a Lightning checkpoint (JSON-safe), for the report."""
    info = {
        "pytorch_lightning_version": ckpt.get("pytorch-lightning_version"),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
    }
    hp = ckpt.get("hyper_parameters")
    if isinstance(hp, dict):
        info["hyper_parameters"] = jsonable(hp)
    return {k: v for k, v in info.items() if v is not None}
