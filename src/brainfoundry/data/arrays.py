"""One compressed, chunked array per scan (blosc2 `.b2nd`), readable crop by crop.

Chunk and block shapes are chosen so that a random 96³–160³ crop decompresses only the blocks it
touches; the codec and sizes were picked by benchmarks/bench_store.py (results/store.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import blosc2
import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_path

# One thread per process: loaders parallelise across processes, and blosc2's thread pool does
# not survive fork() (DataLoader workers would hang in decompression).
blosc2.set_nthreads(1)


@dataclass
class ArrayFormat:
    codec: str = "LZ4"  # a blosc2.Codec name; LZ4 writes ~2x faster than LZ4HC for ~6% more bytes
    clevel: int = 5
    filter: str = "SHUFFLE"  # a blosc2.Filter name
    chunk: int = 64  # edge of a chunk (voxels)
    block: int = 16  # edge of a block (the unit of decompression)
    nthreads: int = 1


def write_array(path: str | Path, arr: np.ndarray, fmt: ArrayFormat | None = None) -> int:
    """Write atomically; returns the compressed size in bytes."""
    fmt = fmt or ArrayFormat()
    chunks = tuple(min(fmt.chunk, s) for s in arr.shape)
    blocks = tuple(min(fmt.block, c) for c in chunks)
    cparams = blosc2.CParams(
        codec=getattr(blosc2.Codec, fmt.codec),
        clevel=fmt.clevel,
        filters=[getattr(blosc2.Filter, fmt.filter)],
        nthreads=fmt.nthreads,
    )
    with atomic_path(path) as tmp:
        os.unlink(tmp)  # blosc2 refuses to overwrite an existing urlpath
        blosc2.asarray(
            np.ascontiguousarray(arr),
            urlpath=str(tmp),
            mode="w",
            chunks=chunks,
            blocks=blocks,
            cparams=cparams,
        )
    return Path(path).stat().st_size


def open_array(path: str | Path):
    """A lazily-read array: `a[slices]` decompresses only the blocks touched."""
    try:
        return blosc2.open(str(path), mode="r")
    except Exception as e:
        raise InputError(path, f"cannot open store array ({type(e).__name__})") from None


def read_array(path: str | Path, box: tuple[slice, ...] | None = None) -> np.ndarray:
    a = open_array(path)
    return a[box] if box is not None else a[...]
