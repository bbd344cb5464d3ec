"""Inference precision: fp32 (the default, bit-identical to the plain forward) or bf16 autocast.

bf16 runs convolutions and matmuls in bfloat16 (faster on CPUs with bf16 instructions and on
GPUs with bf16 tensor cores). A segmentation network keeps its decoder's output-resolution
layers in fp32 (`Backbone.output_layers`, `fp32_layers`): with all of it in bf16 the lesion
probability moved by up to 0.014, over the 0.01 issue 12 allows. The agreement with fp32 (Dice
of the masks, |dP|) and the speed are measured in benchmarks/results/inference_precision.md,
not assumed. Outputs always come back as float32, so the softmax, the tile accumulation and
everything downstream stay in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """`precision` if known; else a ValueError naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def autocast(
    device: torch.device | str, precision: str
) -> contextlib.AbstractContextManager[object]:
    """The forward's context: nothing for fp32 (so that path is unchanged bit for bit),
    bf16 autocast on the device's type otherwise."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def as_float32(x: torch.Tensor) -> torch.Tensor:
    """A half-precision tensor upcast to float32; any other tensor as it is (no copy)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


@contextlib.contextmanager
def fp32_layers(modules: list[torch.nn.Module], device: torch.device | str) -> Iterator[None]:
    """While inside, each module runs without autocast on float32 inputs (its forward is
    wrapped on the instance and restored on leaving, so the model is unchanged afterwards)."""
    kind = torch.device(device).type

    def wrap(fwd: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            with torch.autocast(device_type=kind, enabled=False):
                return fwd(*(as_float32(a) if torch.is_tensor(a) else a for a in args), **kwargs)

        return run

    unique = list({id(m): m for m in modules}.values())
    own = [m.__dict__.get("forward") for m in unique]  # an instance-level forward, if any
    for m in unique:
        m.forward = wrap(m.forward)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for m, fwd in zip(unique, own):
            if fwd is None:
                del m.forward
            else:
                m.forward = fwd  # type: ignore[method-assign]


def probs_forward(
    model: Any, precision: str, device: torch.device | str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """`tiles -> class probabilities` (float32) of a segmentation model at `precision`.

    fp32 calls `model.predict` as it always did. bf16 autocasts only the logits, keeps the
    backbone's output layers in fp32 and takes the softmax in fp32 (CPU autocast would
    keep it in bf16, ~0.004 steps near P = 1); a model without `logits` has its `predict`
    autocast and upcast instead."""
    if check_precision(precision) == "fp32":
        return lambda tiles: model.predict(tiles)["probs"]
    logits = getattr(model, "logits", None)
    layers: list[torch.nn.Module] = getattr(
        getattr(model, "backbone", None), "output_layers", list
    )()

    def run(tiles: torch.Tensor) -> torch.Tensor:
        with autocast(device, precision), fp32_layers(layers, device):
            if logits is None:
                return as_float32(model.predict(tiles)["probs"])
            z = logits(tiles)
        return torch.softmax(z.float(), 1)

    return run
