"""Intensity and artefact transforms: shape, dtype, finiteness, and their defining property."""

import dataclasses

import pytest
import torch

from brainfoundry.transforms import (
    TRANSFORMS,
    Brightness,
    ChannelDropout,
    Gamma,
    GaussianNoise,
    LowResolution,
)
from brainfoundry.transforms import separable as L

INTENSITY = [
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
]


@pytest.mark.parametrize("name", INTENSITY)
def test_shape_dtype_and_finite_values(name, batch, generator):
    t = TRANSFORMS.create(name)
    t = dataclasses.replace(t, **{k: 1.0 for k in vars(t) if k == "p" or k.startswith("p_")})
    out = t(batch, generator)
    assert out["image"].shape == batch["image"].shape
    assert out["image"].dtype == batch["image"].dtype
    assert torch.isfinite(out["image"]).all()
    assert torch.equal(out["label"], batch["label"])


def test_gamma_retains_mean_and_std(batch, generator):
    out = Gamma(p=1.0, gamma=(1.4, 1.5))(batch, generator)["image"]
    dims = (2, 3, 4)
    torch.testing.assert_close(out.mean(dims), batch["image"].mean(dims), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.std(dims), batch["image"].std(dims), atol=1e-4, rtol=1e-4)


def test_brightness_keeps_zero_background(generator):
    image = torch.zeros(1, 1, 8, 8, 8)
    image[..., 2:6, 2:6, 2:6] = 1.0
    out = Brightness(p=1.0, factor=(1.2, 1.3))({"image": image}, generator)["image"]
    assert torch.equal(out[image == 0], image[image == 0])
    assert (out[image > 0] > 1.1).all()


def test_absent_channels_are_left_alone(batch, generator):
    batch["image"][:, 1] = 0.0
    batch["present"][:, 1] = False
    out = GaussianNoise(p=1.0, std=(0.5, 0.5))(batch, generator)
    assert torch.equal(out["image"][:, 1], batch["image"][:, 1])
    assert not torch.equal(out["image"][:, 0], batch["image"][:, 0])


def test_channel_dropout_zeroes_and_marks_absent(batch, generator):
    out = ChannelDropout(p=1.0, p_per_channel=1.0)(batch, generator)
    present = out["present"]
    assert present.sum(dim=1).tolist() == [1, 1]  # at least one modality always kept
    for b, c in (~present).nonzero().tolist():
        assert torch.count_nonzero(out["image"][b, c]) == 0
    for b, c in present.nonzero().tolist():
        assert torch.equal(out["image"][b, c], batch["image"][b, c])


def test_channel_dropout_without_present_key_adds_it(generator):
    batch = {"image": torch.rand(2, 3, 8, 8, 8)}
    out = ChannelDropout(p=1.0, p_per_channel=0.5)(batch, generator)
    assert out["present"].dtype == torch.bool and out["present"].shape == (2, 3)
    assert out["present"].any(dim=1).all()


def test_linear_operators_reduce_to_identity():
    eye = torch.eye(12)
    torch.testing.assert_close(L.lowres_matrices(torch.tensor([1.0]), 12)[0], eye)
    torch.testing.assert_close(L.gaussian_matrices(torch.tensor([0.0]), 12)[0], eye)
    unit = torch.ones(1, 12, dtype=torch.complex64)
    torch.testing.assert_close(L.kspace_matrices(unit)[0], eye, atol=1e-5, rtol=0)
    assert torch.allclose(L.gaussian_matrices(torch.tensor([1.5]), 12).sum(-1), torch.ones(12))


def test_low_resolution_preserves_constants(generator):
    image = torch.full((2, 1, 16, 16, 16), 3.0)
    out = LowResolution(p=1.0, p_per_channel=1.0, scale=(0.3, 0.5))({"image": image}, generator)
    torch.testing.assert_close(out["image"], image)


def test_motion_of_zero_shift_changes_nothing(batch, generator):
    t = TRANSFORMS.create("motion", p=1.0, shift=(0.0, 0.0))
    torch.testing.assert_close(t(batch, generator)["image"], batch["image"], atol=1e-4, rtol=0)
