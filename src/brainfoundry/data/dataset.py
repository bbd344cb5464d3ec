"""Random-patch datasets over a store, for pretraining and fine-tuning.

Map-style and deterministic: item `i` of epoch `e` draws its random numbers from
`(seed, e, i)`, so a batch is identical whatever the number of workers or ranks that load it
(ranks split indices with a DistributedSampler). A sample follows the shared convention:
`{"image": float32 [C,*patch], "present": bool [C], "label": ..., "meta": {...}}`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..io.modalities import resolve_channels
from .store import Store, target_column


@dataclass
class Item:
    """One sample source: a single scan, or a co-registered session group as channels."""

    key: str
    scans: list[str | None]  # one per channel; None = modality missing in this session
    label: float | list[float] | None = None  # a list: several named targets (NaN = missing)


def _items(store: Store, modalities: Sequence[str] | None) -> list[Item]:
    if modalities is None:  # every scan on its own, one channel (pretraining)
        m = store.manifest
        return [Item(r.scan_id, [r.scan_id], label_value(r.label)) for r in m.itertuples()]
    return session_items(store, modalities)


def session_items(
    store: Store,
    channels: Sequence[str],
    keys: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
) -> list[Item]:
    """One item per session group; a channel "t2s|swi" takes the first alternative present.
    `targets`: each item's label is these named targets (`store.target_column`), not `label`."""
    m = store.manifest
    wanted = set(keys) if keys is not None else None
    items = []
    for gid, g in m.groupby("group", sort=True):
        if wanted is not None and gid not in wanted:
            continue
        by_mod: dict[str, str] = {}
        for r in g.itertuples():
            by_mod.setdefault(r.modality, r.scan_id)
        scans = resolve_channels(channels, by_mod)
        if any(s is not None for s in scans):
            label: float | list[float] | None = label_value(g["label"].iloc[0])
            if targets:
                label = [float(g[target_column(t)].iloc[0]) for t in targets]
            items.append(Item(str(gid), scans, label))
    if wanted is not None and len(items) != len(wanted):
        found = {it.key for it in items}
        raise ConfigError(f"{store.root}: sessions not found: {sorted(wanted - found)[:5]}")
    return items


def label_value(v) -> float | None:
    """A manifest label as a float, or None where the case has none (NaN or missing)."""
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def centre_origin(shape: Sequence[int], size: Sequence[int]) -> list[int]:
    """Corner of the `size` box centred in an array of `shape` (negative = zero padding): the
    whole-brain view case-level heads train on and predict from."""
    return [(a - s) // 2 for a, s in zip(shape, size)]


def crop_warning(shape: Sequence[int], size: Sequence[int], who: str = "the brain") -> str | None:
    """The one message for a brain larger than a model's input box, which the whole-brain view
    (`centre_origin`) centre-crops to it; None when it fits. Training, evaluation and `predict`
    all say it in these words."""
    if all(int(a) <= int(b) for a, b in zip(shape, size)):
        return None
    brain, box = " x ".join(map(str, shape)), " x ".join(map(str, size))
    return (f"{who} ({brain} voxels) is larger than the model's input box ({box}): its edges "
            "were centre-cropped away")  # fmt: skip


def read_padded(arr, origin: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """Read arr[origin : origin+size] with zeros where the box leaves the array."""
    shape = arr.shape
    src = tuple(slice(max(o, 0), min(o + s, n)) for o, s, n in zip(origin, size, shape))
    data = np.asarray(arr[src])
    if data.shape == tuple(size):
        return data
    out = np.zeros(size, dtype=data.dtype)
    dst = tuple(slice(sl.start - o, sl.stop - o) for sl, o in zip(src, origin))
    out[dst] = data
    return out


def read_sample(
    store: Store,
    item: Item,
    ref: str,
    ref_arr,
    origin: Sequence[int],
    size: Sequence[int],
    with_seg: bool,
    rng: np.random.Generator,
) -> dict:
    """The box `origin + size` of every channel of `item` as a sample (shared convention)."""
    chans, present = [], []
    for sid in item.scans:
        if sid is None:
            chans.append(np.zeros(size, np.float32))
            present.append(False)
        else:
            a = ref_arr if sid == ref else store.array(sid)
            chans.append(read_padded(a, origin, size).astype(np.float32))
            present.append(True)
    out = {
        "image": torch.from_numpy(np.stack(chans)),
        "present": torch.tensor(present),
        "meta": {"key": item.key, "origin": torch.tensor(origin), "seed": int(rng.integers(2**62))},
    }
    if with_seg:
        seg = store.label_array(ref)
        if seg is None:
            raise ConfigError(f"{store.root}: scan {ref} has no segmentation label")
        out["label"] = torch.from_numpy(read_padded(seg, origin, size)[None].astype(np.int64))
    elif item.label is not None:  # case-level: class, age or named targets [K]
        out["label"] = torch.tensor(item.label, dtype=torch.float32)
    return out


_AUGMENTED = ("image", "present", "label")


def augment_sample(sample: dict, transform: Callable | None, gen: torch.Generator) -> dict:
    """Apply a batched augmentation to one sample (as a batch of one); meta passes through."""
    if transform is None:
        return dict(sample)
    batch = transform({k: v[None] for k, v in sample.items() if k in _AUGMENTED}, gen)
    return {**sample, **{k: v[0] for k, v in batch.items() if k in _AUGMENTED}}


class StoreSamples(Dataset):
    """What the patch and whole-volume datasets share: a store, its items (each one sample
    source), an epoch length and the per-(seed, epoch, index) randomness."""

    def _setup(self, store: Store | str, items_of, n: int | None, with_seg: bool,
               transform: Callable | None, seed: int, what: str) -> None:  # fmt: skip
        self.store = store if isinstance(store, Store) else Store(store)
        self.items: list[Item] = items_of(self.store)
        if not self.items:
            raise ConfigError(f"{self.store.root}: no {what}")
        self.n = n or len(self.items)
        self.with_seg = with_seg
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n


class PatchDataset(StoreSamples):
    """Random patches from a store.

    modalities: channel order (missing ones are zero channels with present=False), or None to
      use every scan as its own one-channel sample.
    patch_size: the size returned; `margin` voxels are added on each side so a spatial
      augmentation can rotate and crop back without empty corners.
    foreground_prob / lesion_prob: chance that the patch is centred on a foreground voxel /
      a labelled voxel (from the locations saved at prepare time), else uniformly at random.
    transform: augmentation `(batch, generator) -> batch` applied per sample here, in the loader
      workers, with a generator seeded by the item, so results never depend on how samples are
      batched, which worker loads them or how many ranks share the epoch.
    n_views: >1 returns `views`: that many independently augmented copies (contrastive SSL).
    `meta["seed"]` is a per-item seed for the model's own randomness (e.g. MAE masks).
    """

    def __init__(
        self,
        store: Store | str,
        patch_size: Sequence[int] = (96, 96, 96),
        *,
        modalities: Sequence[str] | None = None,
        samples_per_epoch: int | None = None,
        foreground_prob: float = 1.0,
        lesion_prob: float = 0.0,
        margin: int = 0,
        with_seg: bool = False,
        transform: Callable[[dict, torch.Generator], dict] | None = None,
        n_views: int = 1,
        seed: int = 0,
    ):
        if len(patch_size) != 3 or min(patch_size) < 1:
            raise ConfigError(f"patch_size must be three positive ints, got {patch_size}")
        self.patch_size = tuple(int(p) for p in patch_size)
        self.read_size = tuple(p + 2 * margin for p in self.patch_size)
        self.modalities = list(modalities) if modalities is not None else None
        self._setup(store, lambda st: _items(st, self.modalities), samples_per_epoch, with_seg,
                    transform, seed, f"scans with modalities {self.modalities}")  # fmt: skip
        self.foreground_prob = foreground_prob
        self.lesion_prob = lesion_prob
        self.n_views = n_views

    def _center(self, rng: np.random.Generator, sid: str, shape: Sequence[int]) -> np.ndarray:
        u = rng.random()
        if u < self.lesion_prob + self.foreground_prob:
            locs = self.store.locations(sid)
            pool = locs["lesion"] if u < self.lesion_prob and len(locs["lesion"]) else locs["fg"]
            if len(pool):
                return pool[rng.integers(len(pool))].astype(int)
        return np.array([rng.integers(0, s) for s in shape])

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        item = (
            self.items[index % len(self.items)]
            if self.n == len(self.items)
            else self.items[rng.integers(len(self.items))]
        )
        ref = next(s for s in item.scans if s is not None)
        ref_arr = self.store.array(ref)
        center = self._center(rng, ref, ref_arr.shape)
        origin = [int(c) - r // 2 for c, r in zip(center, self.read_size)]
        out = read_sample(
            self.store, item, ref, ref_arr, origin, self.read_size, self.with_seg, rng
        )
        if self.transform is None and self.n_views == 1:
            return out
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        views = [augment_sample(out, self.transform, gen) for _ in range(self.n_views)]
        if self.n_views == 1:
            return views[0]
        first = dict(views[0])
        first["views"] = torch.stack([v["image"] for v in views])
        first["views_present"] = torch.stack([v["present"] for v in views])
        return first
