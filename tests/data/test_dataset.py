import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from brainfoundry.data.dataset import PatchDataset
from brainfoundry.data.prepare import PrepareConfig, prepare
from brainfoundry.data.preprocess import PreprocessConfig
from brainfoundry.data.store import Store
from brainfoundry.errors import ConfigError
from tests.conftest import save


@pytest.fixture
def seg_store(tmp_path, mni):
    """A FOMO task-2-like set: flair + dwi_b1000 (t2s missing), a blob mask; one empty mask."""
    data, affine = mni
    root = tmp_path / "task"
    for s in range(3):
        d = root / "preprocessed" / f"sub_{s}" / "ses_1"
        save(d / "flair.nii.gz", data, affine)
        save(d / "dwi_b1000.nii.gz", data * 2, affine)
        seg = np.zeros(data.shape, np.uint8)
        if s:
            seg[10:14, 12:16, 9:12] = 1
        save(root / "labels" / f"sub_{s}" / "ses_1" / "seg.nii.gz", seg, affine)
    store = tmp_path / "store"
    prepare(
        root, store, PrepareConfig(preprocess=PreprocessConfig(spacing=(6, 6, 6))), progress=False
    )
    return Store(store)


def test_patches_follow_the_sample_convention(seg_store):
    ds = PatchDataset(
        seg_store,
        (16, 16, 16),
        modalities=["flair", "dwi_b1000", "t2s"],
        with_seg=True,
        margin=2,
        seed=3,
    )
    assert len(ds) == 3
    x = ds[1]
    assert x["image"].shape == (3, 20, 20, 20) and x["image"].dtype == torch.float32
    assert x["present"].tolist() == [True, True, False]
    assert torch.all(x["image"][2] == 0)
    assert x["label"].shape == (1, 20, 20, 20) and x["label"].dtype == torch.int64
    # channels are co-registered: dwi was 2 x flair before z-scoring, so the patterns agree
    f, d = x["image"][0], x["image"][1]
    assert torch.corrcoef(torch.stack([f.flatten(), d.flatten()]))[0, 1] > 0.99


def test_same_seed_same_batches_whatever_the_workers(seg_store):
    ds = PatchDataset(seg_store, (8, 8, 8), modalities=["flair"], samples_per_epoch=6, seed=7)
    a = torch.cat([b["image"] for b in DataLoader(ds, batch_size=3, num_workers=0)])
    b = torch.cat([b["image"] for b in DataLoader(ds, batch_size=3, num_workers=2)])
    assert torch.equal(a, b)
    ds.set_epoch(1)
    c = torch.cat([b["image"] for b in DataLoader(ds, batch_size=3)])
    assert not torch.equal(a, c)


def test_lesion_sampling_centres_on_the_label(seg_store):
    ds = PatchDataset(
        seg_store,
        (4, 4, 4),
        modalities=["flair"],
        with_seg=True,
        lesion_prob=1.0,
        samples_per_epoch=20,
        seed=0,
    )
    hits = [ds[i]["label"].sum().item() > 0 for i in range(20)]
    # the subject without a lesion falls back to foreground; the others always hit
    assert sum(hits) >= 10
    assert all(seg_store.locations(g)["lesion"].shape[1] == 3 for g in seg_store.manifest.scan_id)


def test_patch_beyond_the_edge_is_zero_padded(seg_store):
    sid = seg_store.manifest.scan_id[0]
    vol = seg_store.read(sid)
    size = tuple(int(s) + 10 for s in vol.shape)
    ds = PatchDataset(seg_store, size, foreground_prob=0.0, samples_per_epoch=4)
    for i in range(4):
        x = ds[i]
        origin = x["meta"]["origin"].tolist()
        want = np.zeros(size, np.float32)
        big = np.pad(vol, [(40, 40)] * 3)
        o = [v + 40 for v in origin]
        want[:] = big[o[0] : o[0] + size[0], o[1] : o[1] + size[1], o[2] : o[2] + size[2]]
        np.testing.assert_array_equal(x["image"][0].numpy(), want)


def test_bad_dataset_arguments(seg_store):
    with pytest.raises(ConfigError, match="patch_size"):
        PatchDataset(seg_store, (8, 8))
    with pytest.raises(ConfigError, match="no scans with modalities"):
        PatchDataset(seg_store, (8, 8, 8), modalities=["t1"])
