"""Helpers for the process pools of `synth` and `prepare` (spawned workers)."""

from __future__ import annotations

import os
import threading
import time


def exit_with_parent(interval: float = 2.0) -> None:
    """End this worker once its parent is gone. Pools are stopped by their owner or at exit, but
    a parent killed by a signal runs no exit handler, and idle workers would wait on their queue
    for ever (seen: synth workers alive half an hour after their suite was killed)."""
    import multiprocessing as mp

    # the pid the parent had when it started us (a worker still starting up when its parent is
    # killed already sees a new parent in os.getppid())
    proc = mp.parent_process()
    parent = proc.pid if proc is not None and proc.pid else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def init_worker() -> None:
    """One BLAS thread per worker (parallelism is across items) and exit with the parent."""
    import torch

    torch.set_num_threads(1)
    exit_with_parent()
