"""The one place a device name (`auto`, `cpu`, `cuda`, `cuda:N`) becomes a torch device: the
trainer (`train.device`), `evaluate --device` and `predict --device` all resolve it here."""

from __future__ import annotations

import torch

from ..errors import ConfigError

DEVICES = "auto, cpu, cuda or cuda:N"


def pick_device(name: str) -> torch.device:
    """`auto`: CUDA when present, else the CPU. A CUDA device asked for on a machine without
    one is a ConfigError here, not a crash at the first tensor moved."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {name!r}: use {DEVICES}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {name!r}: use {DEVICES}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r}: this machine has no usable CUDA GPU (torch "
            f"{torch.__version__}); use cpu or auto"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device
