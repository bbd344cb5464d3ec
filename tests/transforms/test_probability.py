"""p=0 is the identity, p=1 changes the image, identity parameters reproduce the input."""

import dataclasses

import pytest
import torch

from brainfoundry.transforms import (
    TRANSFORMS,
    ChannelDropout,
    Flip,
    SpatialTransform,
    augment_preset,
    build_augmentation,
)

BUILT_IN = [
    "spatial",
    "flip",
    "noise",
    "blur",
    "brightness",
    "contrast",
    "gamma",
    "bias_field",
    "low_resolution",
    "thick_slices",
    "ghosting",
    "motion",
    "channel_dropout",
]


def always(name: str):
    t = TRANSFORMS.create(name)
    probs = {k: 1.0 for k in vars(t) if k == "p" or k.startswith("p_")}
    if isinstance(t, Flip):
        probs["p_per_axis"], probs["p_permute"] = 1.0, 0.0
    if isinstance(t, ChannelDropout):
        probs["p_per_channel"] = 0.5
    return dataclasses.replace(t, **probs)


def never(name: str):
    t = TRANSFORMS.create(name)
    return dataclasses.replace(t, **{k: 0.0 for k in vars(t) if k == "p" or k.startswith("p_")})


def test_all_built_ins_are_registered():
    assert set(BUILT_IN) <= set(TRANSFORMS.list())


@pytest.mark.parametrize("name", BUILT_IN)
def test_p_zero_is_identity(name, batch, generator):
    out = never(name)(batch, generator)
    for key in ("image", "label", "present"):
        assert torch.equal(out[key], batch[key]), key


@pytest.mark.parametrize("name", BUILT_IN)
def test_p_one_changes_the_image(name, batch, generator):
    out = always(name)(batch, generator)
    assert out["image"].shape == batch["image"].shape
    assert not torch.allclose(out["image"], batch["image"], atol=1e-4)


def test_none_preset_is_identity(batch, generator):
    out = build_augmentation(augment_preset("none"))(batch, generator)
    assert torch.equal(out["image"], batch["image"])
    assert torch.equal(out["label"], batch["label"])


def test_spatial_identity_parameters_reproduce_the_input(batch, generator):
    t = SpatialTransform(p_rotation=1.0, rotation=(0.0, 0.0), p_scale=1.0, scale=(1.0, 1.0))
    out = t(batch, generator)
    torch.testing.assert_close(out["image"], batch["image"], atol=1e-4, rtol=0)
    assert torch.equal(out["label"], batch["label"])


@pytest.mark.parametrize("patch", [(24, 24, 24), (25, 20, 31)])
def test_identity_resampling_equals_the_centre_crop(batch, generator, patch):
    moved = SpatialTransform(patch_size=patch, p_rotation=1.0, rotation=(0.0, 0.0), p_scale=0.0)
    cropped = SpatialTransform(patch_size=patch, p_rotation=0.0, p_scale=0.0)
    a, b = moved(batch, generator), cropped(batch, generator)
    assert a["image"].shape[2:] == patch
    torch.testing.assert_close(a["image"], b["image"], atol=1e-4, rtol=0)
    assert torch.equal(a["label"], b["label"])
