"""The 2-D families (cnn2d, vit2d) behind the 3-D interface: shapes per view and plane, the card
round trip, the projection image and plane=all by hand, the projections refusal, and pretrain →
finetune → predict through the CLI (cnn2d slices on segmentation, vit2d projections on a
case-level task)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from brainfoundry.cli import main
from brainfoundry.errors import ConfigError
from brainfoundry.models.backbones import BACKBONES, create_backbone
from brainfoundry.models.backbones.views import PLANES, projection_image
from brainfoundry.models.card import ModelCard
from brainfoundry.models.checkpoint import load_model, save_model
from brainfoundry.ssl import create_objective
from brainfoundry.tasks.heads import create_task_model
from tests.inference.conftest import case_inputs

from .conftest import tiny

FAMILIES = ["cnn2d", "vit2d"]
REFUSAL = "projections give case-level features only; use view=slices for segmentation"


def test_registered_with_sizes():
    assert {"cnn2d", "vit2d"} <= set(BACKBONES.list())
    for name in FAMILIES:
        for size in ("tiny", "mini", "small"):
            with torch.device("meta"):
                create_backbone(name, 1, 1, size)
        with pytest.raises(ConfigError, match="view 'voxels'"):
            create_backbone(name, 1, 1, "tiny", view="voxels")


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("plane", [*PLANES, "all"])
def test_slices_give_3d_features_and_a_full_resolution_map(name, plane):
    model = tiny(name, 2, 3, plane=plane)
    x = torch.randn(1, 2, 32, 24, 16)
    feats = model.encode(x)
    assert [f.shape[1] for f in feats] == model.feature_channels
    deepest = feats[-1].shape[2:]
    if plane != "all":  # the slice axis keeps its size, the in-plane ones shrink
        axis = PLANES[plane] - 2
        assert deepest[axis] == x.shape[PLANES[plane]]
        assert all(d < s for i, (d, s) in enumerate(zip(deepest, x.shape[2:])) if i != axis)
    y = model.decode(feats)
    assert y.shape == (1, 3, 32, 24, 16)
    y.mean().backward()
    stem = dict(model.named_parameters())[f"{model.in_proj_keys[0]}.weight"]
    assert stem.grad is not None and stem.grad.abs().sum() > 0


@pytest.mark.parametrize("name", FAMILIES)
def test_projections_are_case_level_and_refuse_to_decode(name):
    model = tiny(name, 2, 2, view="projections", image_size=32)
    feats = model.encode(torch.randn(2, 2, 20, 28, 24))  # any box: the image is resized
    assert feats[-1].shape[:2] == (2, model.embed_dim) and feats[-1].ndim == 4
    assert not model.dense and model.min_input_multiple == 1
    with pytest.raises(ConfigError, match=REFUSAL):
        model.decode(feats)
    with pytest.raises(ConfigError, match=REFUSAL):  # found when the task model is built
        create_task_model("segmentation", model)
    with pytest.raises(ConfigError, match=REFUSAL):  # MAE fails on its first batch
        batch = {"image": torch.randn(1, 2, 32, 32, 32), "meta": {"seed": [0]}}
        create_objective("mae", model, block_size=8)(batch)
    head = create_task_model("classification", model)
    assert head.predict(torch.randn(2, 2, 20, 28, 24))["prob"].shape == (2,)


def test_projection_image_is_the_mean_and_max_by_hand():
    x = torch.arange(2 * 4 * 6 * 8, dtype=torch.float32).reshape(1, 2, 4, 6, 8).sin()
    img = projection_image(x, 8)  # each view 8 x 4: coronal [W=8, D=4] needs no resize
    assert img.shape == (1, 4, 8, 8)
    for c in range(2):
        v = x[0, c]  # [D, H, W]
        assert torch.allclose(img[0, 2 * c, :, :4], v.mean(1).T)
        assert torch.allclose(img[0, 2 * c + 1, :, :4], v.amax(1).T)
        sag = torch.stack([v.mean(0).T, v.amax(0).T])[:, None]  # [2, 1, W=8, H=6]
        want = F.interpolate(sag, size=(8, 4), mode="bilinear", antialias=True)[:, 0]
        assert torch.allclose(img[0, 2 * c : 2 * c + 2, :, 4:], want)


@pytest.mark.parametrize("name", FAMILIES)
def test_plane_all_averages_the_three_planes_by_hand(name):
    both = tiny(name, 1, 2, plane="all").eval()
    each = {p: tiny(name, 1, 2, plane=p).eval() for p in PLANES}
    for m in each.values():
        m.load_state_dict(both.state_dict())  # shared weights: the same parameters
    x = torch.randn(1, 1, 16, 24, 32)
    with torch.no_grad():
        fused = both.encode(x)
        per = {p: m.encode(x) for p, m in each.items()}
        for k, f in enumerate(fused):
            want = torch.stack([F.adaptive_avg_pool3d(per[p][k], f.shape[2:]) for p in PLANES])
            assert torch.allclose(f, want.mean(0), atol=1e-6)
        # the case embedding (mean of the deepest map) is the three planes' embeddings averaged
        emb = torch.stack([per[p][-1].flatten(2).mean(-1) for p in PLANES]).mean(0)
        assert torch.allclose(fused[-1].flatten(2).mean(-1), emb, atol=1e-6)
        outs = []
        for p, m in each.items():
            up = [f.repeat_interleave(s, dim=PLANES[p]) for f, s in zip(fused, both.cum_strides)]
            outs.append(m.decode(up))
        assert torch.allclose(both.decode(fused), torch.stack(outs).mean(0), atol=1e-6)


def test_vit2d_masks_tokens_like_primus():
    model = tiny("vit2d", plane="coronal")
    assert model.patch_size == 8  # ssl.family: a transformer
    keep = torch.zeros(1, 2 * 2 * 2, dtype=torch.bool)
    keep[0, 0] = True  # only the first 8x8x8 cube visible
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        a = model.encode(x, keep=keep)[0]
        x2 = x.clone()
        x2[:, :, 8:] = 0  # change only masked voxels
        b = model.encode(x2, keep=keep)[0]
    assert torch.allclose(a, b, atol=1e-5), "masked voxels must not reach the encoder"
    with pytest.raises(ValueError, match="token grid"):
        model.encode(x, keep=torch.ones(1, 7, dtype=torch.bool))


@pytest.mark.parametrize("name", FAMILIES)
def test_arch_round_trips_through_the_card(tmp_path, name):
    model = tiny(name, 2, 2, plane="sagittal")
    arch = json.loads(json.dumps(model.arch()))
    assert arch["kwargs"]["view"] == "slices" and arch["kwargs"]["plane"] == "sagittal"
    assert json.loads(json.dumps(create_backbone(**arch).arch())) == arch
    card = ModelCard.for_model(model, modalities=["t1", "flair"], spacing=[4.0] * 3,
                               patch_size=[32, 32, 32])  # fmt: skip
    save_model(tmp_path / "run", model, card)
    again, _, report = load_model(tmp_path / "run", strict=True)
    assert report.ok and again.arch() == model.arch()
    x = torch.randn(1, 2, 16, 16, 16)
    assert torch.equal(again.eval()(x), model.eval()(x))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Small task folders (6 mm): meningioma 4 + 1 test case, infarct 5 + 1."""
    root = tmp_path_factory.mktemp("tasks2d")
    for task, n in (("meningioma", 4), ("infarct", 5)):
        args = ["synth", "task", task, "-o", str(root / task), "--n", str(n), "--n-test", "1"]
        assert main([*args, "--resolution", "6", "--seed", "0", "--no-qc"]) == 0
    return {t: root / t for t in ("meningioma", "infarct")}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A pretraining store of two one-scan sessions of the real MNI152 at 6 mm."""
    from brainfoundry.data.prepare import PrepareConfig, prepare
    from brainfoundry.data.preprocess import PreprocessConfig
    from tests.conftest import mni_small, save

    root = tmp_path_factory.mktemp("store2d")
    vol, affine = mni_small()
    for s in range(2):
        save(root / "raw" / f"sub_{s}" / "ses_1" / "t1.nii.gz", vol * (1 + s), affine)
    cfg = PrepareConfig(preprocess=PreprocessConfig(spacing=(6.0, 6.0, 6.0)))
    prepare(root / "raw", root / "store", cfg, progress=False)
    return root / "store"


FAST = ["train.progress=false", "train.amp=off"]


def _pipeline(tmp_path, store, data, task, pretrain, finetune):
    run, tuned = tmp_path / "pre", tmp_path / "ft"
    assert main(["pretrain", "--store", str(store), "-o", str(run), "--preset", "cpu-tiny",
                 "--steps", "2", *FAST, *pretrain]) == 0  # fmt: skip
    assert main(["finetune", "--task", task, "--data", str(data / "finetune"), "-o", str(tuned),
                 "--init", str(run), "--preset", "cpu-tiny", "val_cases=1", *FAST,
                 *finetune]) == 0  # fmt: skip
    sub, inputs = case_inputs(data / "test")
    flags = [a for mod, p in inputs.items() for a in (f"--{mod}", str(p))]
    out = tmp_path / f"{sub}.txt"
    assert main(["predict", "--model", str(tuned), *flags, "--output", str(out), "--no-qc"]) == 0
    return json.loads((tuned / "seed_0" / "card.json").read_text()), tmp_path, sub


def test_cnn2d_slices_pretrain_finetune_predict_segmentation(tmp_path, store, data):
    card, out, sub = _pipeline(
        tmp_path, store, data["meningioma"], "meningioma",
        ["--backbone", "cnn2d", "--method", "mae", "model.kwargs={plane: coronal}"],
        ["--shots", "2", "train.steps=2", "train.checkpoint_every=2", "model.channels=stem"],
    )  # fmt: skip
    assert card["arch"]["name"] == "cnn2d" and card["arch"]["kwargs"]["plane"] == "coronal"
    assert card["extra"]["load_report"]["n_loaded"] > 0
    assert (out / f"{sub}.nii.gz").is_file()


def test_vit2d_projections_pretrain_finetune_predict_case_level(tmp_path, store, data, capsys):
    proj = ["--backbone", "vit2d", "model.kwargs={view: projections, image_size: 32}"]
    bad = ["pretrain", "--store", str(store), "-o", str(tmp_path / "bad"), "--preset", "cpu-tiny",
           "--method", "mae", *FAST, *proj]  # fmt: skip
    assert main(bad) == 2 and REFUSAL in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before the run folder is made
    card, out, sub = _pipeline(
        tmp_path, store, data["infarct"], "infarct",
        [*proj, "--method", "contrastive"], ["--shots", "4", "train.steps=1"],
    )  # fmt: skip
    assert card["arch"]["kwargs"]["view"] == "projections" and card["ssl_method"] == "contrastive"
    assert 0.0 <= float((out / f"{sub}.txt").read_text()) <= 1.0
