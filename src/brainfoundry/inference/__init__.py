"""Inference: sliding-window prediction over preprocessed volumes (reused by `predict`)."""

from .sliding_window import (
    gaussian_weights,
    sliding_window,
    stride_divisor,
    tile_starts,
    whole_volume,
)

__all__ = [
    "gaussian_weights",
    "sliding_window",
    "stride_divisor",
    "tile_starts",
    "whole_volume",
]
