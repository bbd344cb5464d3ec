"""One line naming the machine a measurement ran on (suite reports and benchmarks/ tables)."""

from __future__ import annotations

import os
import platform
import subprocess


def machine() -> str:
    cpu = platform.processor() or platform.machine() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln)
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    import torch

    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({threads} threads)"
