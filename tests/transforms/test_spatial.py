"""Spatial core: labels stay aligned, fast sampler matches the native one, flips invert."""

import pytest
import torch

from brainfoundry.transforms import Flip, SpatialTransform
from brainfoundry.transforms import spatial as S


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("elastic", [0.0, 1.0])
def test_label_and_image_stay_aligned(batch, generator, elastic):
    t = SpatialTransform(
        patch_size=(28, 28, 28),
        p_rotation=1.0,
        p_scale=1.0,
        p_elastic=elastic,
        elastic_magnitude=(2.0, 3.0),
    )
    out = t(batch, generator)
    assert out["label"].dtype == batch["label"].dtype
    assert set(out["label"].unique().tolist()) <= {0, 1}
    resampled_mask = out["image"][:, :1] > 1.0
    label = out["label"].bool()
    aligned = dice(resampled_mask, label)
    assert aligned > 0.9
    assert aligned > dice(resampled_mask, label.roll(2, dims=4)) + 0.05
    assert not torch.equal(out["label"], S.center_crop(batch["label"], (28, 28, 28)))


def test_slab_sampler_matches_native_grid_sample():
    g = torch.Generator().manual_seed(0)
    vol = torch.randn(2, 3, 18, 21, 25, generator=g)
    matrix = S.rotation_matrices(torch.randn(2, 3, generator=g)) * 0.8
    coords = S.affine_coordinates(matrix, (18, 21, 25), (20, 16, 23))
    coords += torch.randn(coords.shape, generator=g)  # also points far outside the volume
    slabs = S.sample_linear(vol, coords, impl="slabs")
    native = S.sample_linear(vol, coords, impl="native")
    torch.testing.assert_close(slabs, native, atol=2e-4, rtol=0)


def test_nearest_sampling_keeps_label_values_and_fills_outside():
    vol = torch.arange(27).view(1, 1, 3, 3, 3)
    coords = torch.tensor([[0.4, 1.0, 2.0], [5.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 1, 2)
    out = S.sample_nearest(vol, coords, fill=-1)
    assert out.flatten().tolist() == [5, -1]


def test_flip_is_an_involution(batch, generator):
    axes = torch.tensor([[True, False, True], [False, True, True]])
    twice = S.flip(S.flip(batch["image"], axes), axes)
    assert torch.equal(twice, batch["image"])
    t = Flip(p_per_axis=1.0)
    out = t(t(batch, generator), generator)
    assert torch.equal(out["image"], batch["image"])
    assert torch.equal(out["label"], batch["label"])


def test_flip_moves_label_with_image(batch, generator):
    out = Flip(p_per_axis=1.0, axes=(2,))(batch, generator)
    assert torch.equal(out["image"], batch["image"].flip(4))
    assert torch.equal(out["label"], batch["label"].flip(4))


def test_axis_permutation_keeps_alignment(batch, generator):
    out = Flip(p_per_axis=0.0, p_permute=1.0)(batch, generator)
    assert torch.equal(out["label"].bool(), out["image"][:, :1] > 1.0)
    assert not torch.equal(out["image"], batch["image"])


def test_permutation_needs_a_cubic_patch(generator):
    batch = {"image": torch.zeros(1, 1, 8, 8, 6), "present": torch.ones(1, 1, dtype=torch.bool)}
    with pytest.raises(ValueError, match="equal sizes"):
        Flip(p_per_axis=0.0, p_permute=1.0)(batch, generator)


def test_patch_larger_than_input_is_an_error(batch, generator):
    with pytest.raises(ValueError, match="larger than the input"):
        SpatialTransform(patch_size=(40, 32, 32), p_rotation=0.0, p_scale=0.0)(batch, generator)


def test_scalar_labels_pass_through(generator):
    batch = {"image": torch.rand(2, 1, 16, 16, 16), "label": torch.tensor([0.3, 1.7])}
    out = SpatialTransform(patch_size=(12, 12, 12), p_rotation=1.0)(batch, generator)
    assert torch.equal(out["label"], batch["label"])
    assert out["image"].shape == (2, 1, 12, 12, 12)


def test_rotation_by_90_degrees_permutes_axes():
    vol = torch.rand(1, 1, 9, 9, 9)
    angle = torch.tensor([[torch.pi / 2, 0.0, 0.0]])
    coords = S.affine_coordinates(S.rotation_matrices(angle), (9, 9, 9), (9, 9, 9))
    out = S.sample_linear(vol, coords)
    ok = [torch.allclose(out, vol.rot90(k, dims=(3, 4)), atol=1e-4) for k in (1, 3)]
    assert any(ok)


def test_affine_bounds_are_the_exact_coordinate_range():
    g = torch.Generator().manual_seed(1)
    matrix = S.rotation_matrices(torch.randn(3, 3, generator=g)) * 1.3
    coords = S.affine_coordinates(matrix, (40, 36, 30), (20, 24, 18))
    lo, hi = S.affine_bounds(matrix, (40, 36, 30), (20, 24, 18))
    exact_lo, exact_hi = S.coordinate_bounds(coords)
    torch.testing.assert_close(torch.tensor(lo), torch.tensor(exact_lo), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.tensor(hi), torch.tensor(exact_hi), atol=1e-4, rtol=0)
