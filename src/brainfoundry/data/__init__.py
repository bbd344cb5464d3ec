"""Data layer: preprocessing plan, store (manifest + compressed arrays), datasets."""
