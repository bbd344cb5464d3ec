"""The --precision plumbing: fp32 is the old path bit for bit, bf16 runs and returns float32.

bf16's agreement with fp32 on a trained model is a measurement (benchmarks/bench_inference.py),
not something a random tiny network can show; here only that the path runs and stays close."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainfoundry.inference.core import case_outputs, segment_probs
from brainfoundry.inference.precision import as_float32, autocast, check_precision, fp32_layers
from brainfoundry.inference.sliding_window import sliding_window, stride_divisor, whole_volume
from brainfoundry.models.backbones import create_backbone
from brainfoundry.tasks.heads import SegmentationModel

from .test_core import MeanHead, VoxelSeg

PATCH = (16, 16, 16)
TINY = {"n_stages": 2, "features_per_stage": [4, 8], "kernel_size": 3, "strides": [1, 2],
        "n_blocks_per_stage": [1, 1], "n_conv_per_stage_decoder": [1]}  # fmt: skip


@pytest.fixture(scope="module")
def seg() -> SegmentationModel:
    torch.manual_seed(0)
    net = create_backbone("resenc", in_channels=1, out_channels=2, size="custom", **TINY)
    return SegmentationModel(net).eval()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1, 20, 18, 22)).astype(np.float32)


def _old_path(model, image: np.ndarray, whole: bool) -> np.ndarray:
    """What `segment_probs` computed before --precision: `model.predict` under no_grad."""
    x = torch.from_numpy(image)
    with torch.no_grad():

        def fn(tiles: torch.Tensor) -> torch.Tensor:
            return model.predict(tiles)["probs"]

        if whole:
            return whole_volume(fn, x, stride_divisor(PATCH)).numpy()
        return sliding_window(fn, x, PATCH, overlap=0.5, batch_size=2).numpy()


@pytest.mark.parametrize("whole", [False, True])
def test_fp32_is_the_old_path_bit_for_bit(seg, image, whole):
    new = segment_probs(seg, image, PATCH, whole=whole, precision="fp32")
    np.testing.assert_array_equal(new, _old_path(seg, image, whole))


@pytest.mark.parametrize("kw", [{}, {"whole": True}, {"mirror": True}])
def test_bf16_runs_and_returns_float32_probabilities(seg, image, kw):
    ref = segment_probs(seg, image, PATCH, **kw)
    out = segment_probs(seg, image, PATCH, precision="bf16", **kw)
    assert out.dtype == np.float32 and out.shape == ref.shape == (2, *image.shape[1:])
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-5)  # the softmax ran in fp32
    assert np.abs(out - ref).max() < 0.1  # a plumbing bound, not the measured agreement


def test_bf16_without_logits_upcasts_predict(image):
    out = segment_probs(VoxelSeg(), image, PATCH, precision="bf16")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[1], 1 / (1 + np.exp(-image[0])), atol=1e-2)


def test_case_outputs_bf16_are_float32():
    images = [np.random.default_rng(1).normal(size=(2, 5, 6, 7)).astype(np.float32)]
    present = [np.array([True, True])]
    ref = case_outputs(MeanHead(), images, present, (4, 4, 4))
    out = case_outputs(MeanHead(), images, present, (4, 4, 4), precision="bf16")
    assert out["prob"].dtype == np.float32 and out["prob"].shape == ref["prob"].shape


def test_unknown_precision_is_refused(seg, image):
    with pytest.raises(ValueError, match="precision"):
        check_precision("fp16")
    with pytest.raises(ValueError, match="precision"):
        segment_probs(seg, image, PATCH, precision="fp64")


def test_fp32_context_is_a_no_op_and_upcast_keeps_fp32_tensors():
    x = torch.ones(3)
    assert as_float32(x) is x
    assert as_float32(x.bfloat16()).dtype == torch.float32
    with autocast("cpu", "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("cpu", "bf16"):
        assert torch.is_autocast_enabled("cpu")


def test_cli_offers_precision(capsys):
    from brainfoundry.cli import main

    assert main(["predict", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--precision" in out and "bf16" in out


def test_fp32_layers_run_outside_autocast_and_are_restored(seg):
    layers = seg.backbone.output_layers()
    head = seg.backbone.decoder.seg_layers[-1]
    deep = seg.backbone.encoder.stages[1]
    assert head in layers and seg.backbone.decoder.stages[-1] in layers
    assert deep not in layers and seg.backbone.encoder.stem not in layers  # these run in bf16
    seen: dict[str, torch.dtype] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, k=k: seen.__setitem__(k, o.dtype))
             for k, m in (("head", head), ("deep", deep))]  # fmt: skip
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad(), autocast("cpu", "bf16"), fp32_layers(layers + [head], "cpu"):
        seg.logits(x)
    assert seen == {"head": torch.float32, "deep": torch.bfloat16}
    for h in hooks:
        h.remove()
    assert all("forward" not in m.__dict__ for m in layers)  # the class's forward again
    with torch.no_grad():
        np.testing.assert_array_equal(seg.logits(x).numpy(), seg.backbone(x).numpy())


def test_bf16_keeps_the_output_layers_closer_to_fp32(seg, image):
    """The fp32 output layers remove their own rounding: bf16 moves P less than with every
    layer in bf16 (mean over voxels, steadier than the max: measured 7.5e-4 vs 9.4e-4 here,
    the same direction on three seeds)."""
    ref = segment_probs(seg, image, PATCH)
    mixed = segment_probs(seg, image, PATCH, precision="bf16")
    x = torch.from_numpy(image)
    with torch.no_grad(), autocast("cpu", "bf16"):
        all_bf16 = sliding_window(lambda t: torch.softmax(seg.logits(t).float(), 1), x, PATCH,
                                  overlap=0.5, batch_size=2).numpy()  # fmt: skip
    assert np.abs(mixed - ref).mean() < np.abs(all_bf16 - ref).mean()


def test_every_dense_backbone_names_its_output_layers():
    from brainfoundry.models.channelwise import Channelwise

    torch.manual_seed(0)
    unet = create_backbone("resenc", in_channels=1, out_channels=2, size="custom", **TINY)
    assert unet.decoder.seg_layers[-1] in Channelwise(unet, 2).output_layers()
    vit = create_backbone("primus", in_channels=1, out_channels=2, size="tiny")
    assert vit.output_layers() == [vit.up_projection.decode[-1]]
    flat = create_backbone("cnn2d", in_channels=1, out_channels=2, size="tiny")
    assert flat.output_layers()[-1] is flat.decoder.seg_layers[-1]
