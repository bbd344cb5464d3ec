"""Inference: sliding-window prediction over preprocessed volumes (reused by `predict`)."""

from .sliding_window import gaussian_weights, sliding_window, tile_starts

__all__ = ["gaussian_weights", "sliding_window", "tile_starts"]
