"""Whole-volume samples: each session's co-registered scans centred in one fixed-shape box.

Case-level tasks (a class or an age per session) must see the whole brain: a random crop that
carries the volume's label (the FOMO25 baseline) trains on crops that may hold no lesion at all.
The box is padded with zeros (background after z-scoring) or centre-cropped where the brain is
larger; `crop_warnings` names every session that loses voxels so, for the run's warnings. Same
sample convention and per-item seeding as `PatchDataset`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from .dataset import (
    StoreSamples,
    augment_sample,
    centre_origin,
    crop_warning,
    read_sample,
    session_items,
)
from .store import Store


def auto_shape(store: Store, multiple: int = 16) -> tuple[int, int, int]:
    """The largest stored shape, rounded up to `multiple` (every brain fits whole)."""
    shapes = np.array(store.manifest["shape"].tolist())
    big = shapes.max(axis=0)
    return tuple(int(-(-s // multiple) * multiple) for s in big)  # type: ignore[return-value]


def crop_warnings(store: Store, keys: Iterable[str], size: Sequence[int]) -> list[str]:
    """One warning per session of `keys` whose stored brain is larger than the `size` box, and
    so centre-cropped by `VolumeDataset` and `inference.core.centre_box`; naming the session."""
    m = store.manifest
    first = m.drop_duplicates("group").set_index("group")
    out = []
    for key in keys:
        r = first.loc[key]
        w = crop_warning(list(r["shape"]), size, f"session {r['subject']}/{r['session']}")
        if w is not None:
            out.append(w)
    return out


class VolumeDataset(StoreSamples):
    """Whole sessions as `[C, *shape]` samples (see the module docstring).

    channels: channel order (entries may be alternatives "a|b"); keys: the session groups to
    use (None: all); samples_per_epoch: cycle through the sessions this many times per epoch
    (>= batch size for tiny few-shot sets); transform: augmentation `(batch, generator)`;
    targets: the named targets each sample's label holds (a multi-target task), not `label`.
    """

    def __init__(
        self,
        store: Store | str,
        channels: Sequence[str],
        shape: Sequence[int] | None = None,
        *,
        keys: Sequence[str] | None = None,
        samples_per_epoch: int | None = None,
        with_seg: bool = False,
        transform: Callable[[dict, torch.Generator], dict] | None = None,
        seed: int = 0,
        targets: Sequence[str] | None = None,
    ):
        self.channels = list(channels)
        what = f"sessions with channels {self.channels}"
        items = lambda st: session_items(st, self.channels, keys, targets)  # noqa: E731
        self._setup(store, items, None, with_seg, transform, seed, what)
        self.n = max(int(samples_per_epoch or 0), len(self.items))
        self.shape = tuple(int(s) for s in (shape or auto_shape(self.store)))
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ConfigError(f"volume shape must be three positive ints, got {shape}")

    def origin(self, array_shape: Sequence[int]) -> list[int]:
        """Corner of the centred box in array voxels (negative = zero padding)."""
        return centre_origin(array_shape, self.shape)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        item = self.items[int(index) % len(self.items)]
        ref = next(s for s in item.scans if s is not None)
        ref_arr = self.store.array(ref)
        origin = self.origin(ref_arr.shape)
        out = read_sample(self.store, item, ref, ref_arr, origin, self.shape, self.with_seg, rng)
        if self.transform is None:
            return out
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return augment_sample(out, self.transform, gen)
