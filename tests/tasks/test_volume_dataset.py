import numpy as np
import torch

from brainfoundry.data.volume_dataset import VolumeDataset, auto_shape
from brainfoundry.tasks import get_task
from brainfoundry.tasks.data import case_table


def test_whole_volume_input_holds_the_whole_brain(infarct_store):
    store = infarct_store
    spec = get_task("infarct")
    shape = auto_shape(store)
    assert all(s % 16 == 0 for s in shape)
    ds = VolumeDataset(store, spec.channels, shape, seed=0)
    cases = case_table(store, spec)
    assert len(ds.items) == len(cases)
    for i in range(len(ds.items)):
        s = ds[i]
        assert s["image"].shape == (4, *shape) and s["present"].all()
        flair = next(x for x in ds.items[i].scans if "flair" in x)
        arr = store.read(flair)
        # nothing cropped away: every stored voxel appears in the sample, same sum
        assert np.count_nonzero(s["image"][0].numpy()) == np.count_nonzero(arr)
        assert np.isclose(float(s["image"][0].sum()), float(arr.sum()), rtol=1e-4, atol=1e-2)
        assert float(s["label"]) == float(cases.set_index("key").loc[s["meta"]["key"], "label"])


def test_crop_when_smaller_missing_channel_and_augmentation_seeded(infarct_store):
    spec = get_task("infarct")
    chans = [*spec.channels, "t1"]  # t1 absent in this task: a zero channel
    ds = VolumeDataset(infarct_store, chans, (16, 16, 16), keys=None, seed=0)
    s = ds[0]
    assert s["image"].shape == (5, 16, 16, 16)
    assert s["present"].tolist() == [True, True, True, True, False]
    assert not s["image"][4].any()

    def aug(batch, gen):
        batch["image"] = batch["image"] + torch.rand(batch["image"].shape, generator=gen)
        return batch

    a = VolumeDataset(infarct_store, spec.channels, (16, 16, 16), transform=aug, seed=1)
    b = VolumeDataset(infarct_store, spec.channels, (16, 16, 16), transform=aug, seed=1)
    assert torch.equal(a[2]["image"], b[2]["image"])
    a.set_epoch(1)
    assert not torch.equal(a[2]["image"], b[2]["image"])


def test_store_subset_filters_and_channels_resolve_alternatives(infarct_store):
    from brainfoundry.data.dataset import PatchDataset

    spec = get_task("infarct")
    keys = list(case_table(infarct_store, spec)["key"])[:3]
    view = infarct_store.subset(keys)
    assert set(view.manifest["group"]) == set(keys)
    assert len(infarct_store.manifest) > len(view.manifest)  # the original is untouched
    ds = PatchDataset(view, (8, 8, 8), modalities=spec.channels, samples_per_epoch=3)
    assert sorted(it.key for it in ds.items) == sorted(keys)
    for it in ds.items:  # "t2s|swi" filled by whichever the session has, nothing missing
        assert all(s is not None for s in it.scans)
        mods = [view.row(s)["modality"] for s in it.scans]
        assert mods[:3] == ["flair", "dwi_b1000", "adc"] and mods[3] in ("t2s", "swi")


def test_resolve_channels_prefers_the_first_alternative():
    from brainfoundry.io.modalities import resolve_channels

    have = {"flair": "f", "swi": "s", "t2s": "t"}
    assert resolve_channels(["flair", "t2s|swi", "swi|t2s", "adc"], have) == ["f", "t", "s", None]
