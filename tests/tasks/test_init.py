"""Fine-tuning from a pretrained checkpoint: what loaded, channel adaptation, card's recipe."""

import json

import pytest
import torch

from brainfoundry.errors import ConfigError
from brainfoundry.models.backbones import create_backbone
from brainfoundry.models.card import ModelCard
from brainfoundry.models.checkpoint import save_model
from brainfoundry.run_config import BackboneConfig
from brainfoundry.tasks import get_task
from brainfoundry.tasks.finetune import FinetuneConfig, finetune
from brainfoundry.tasks.model_io import build_backbone, load_task_model


def pretrained_run(path, spacing=(6.0, 6.0, 6.0)):
    torch.manual_seed(0)
    bb = create_backbone("resenc", 1, 1, "tiny")
    card = ModelCard.for_model(
        bb, spacing=list(spacing),
        normalization={"normalization": "zscore", "clip_percentiles": [0.5, 99.5]},
        patch_size=[32, 32, 32], ssl_method="mae",
    )  # fmt: skip
    save_model(path, bb, card)
    return bb


def test_init_reports_loaded_keys_and_adapts_channels(tmp_path):
    src = pretrained_run(tmp_path / "pre")
    spec = get_task("infarct")
    model, card, report = build_backbone(
        str(tmp_path / "pre"), spec, BackboneConfig(), seed=0, channels="stem"
    )
    assert card.ssl_method == "mae" and model.in_channels == 4
    assert report.adapted and all(v[0][1] == 1 and v[1][1] == 4 for v in report.adapted.values())
    assert len(report.loaded) > 10 and not report.missing and not report.unexpected
    # a deep encoder weight came over unchanged
    k = "encoder.stages.2.blocks.0.conv1.conv.weight"
    assert torch.equal(model.state_dict()[k], src.state_dict()[k])
    seg, _, rep = build_backbone(
        str(tmp_path / "pre"), get_task("meningioma"), BackboneConfig(), 0, channels="stem"
    )
    assert seg.out_channels == 2 and rep.mismatched  # the decoder's last layer: 1 -> 2 outputs


def test_shared_channels_encode_each_sequence_with_the_pretrained_weights(tmp_path):
    from brainfoundry.models.channelwise import Channelwise

    src = pretrained_run(tmp_path / "pre").eval()
    model, _, report = build_backbone(
        str(tmp_path / "pre"), get_task("infarct"), BackboneConfig(), seed=0, channels="shared"
    )
    assert isinstance(model, Channelwise) and model.in_channels == 4
    assert not report.adapted and not report.missing  # the one-channel stem loads as it is
    model.eval()
    x = torch.randn(2, 4, 32, 32, 32)
    per = model.encode_channels(x)
    ref = src.encode(x[:, 2:3])  # the third sequence alone through the pretrained network
    assert all(torch.allclose(p[:, 2], r, atol=1e-5) for p, r in zip(per, ref))
    fused = model.encode(x)
    assert all(torch.allclose(f, p.mean(1), atol=1e-6) for f, p in zip(fused, per))
    assert model(x).shape == (2, 1, 32, 32, 32)
    from brainfoundry.tasks.heads import create_task_model
    from brainfoundry.tasks.strategies import StrategyConfig, param_groups

    task = create_task_model("classification", model)
    param_groups(task, StrategyConfig(name="linear"))  # the wrapper's names are looked through
    enc = [p for n, p in task.backbone.named_parameters() if n.startswith("shared.encoder.")]
    assert enc and not any(p.requires_grad for p in enc) and task.head.weight.requires_grad
    assert task.head.in_features == 4 * 2 * sum(model.feature_channels) + 4


@pytest.mark.parametrize("channels", ["stem", "shared"])
def test_finetune_from_pretrained_uses_card_and_records_report(tmp_path, task_data, channels):
    pretrained_run(tmp_path / "pre")
    cfg = FinetuneConfig.load(
        "cpu-tiny", None,
        ["task=brainage", f"init={tmp_path / 'pre'}", "shots=6", "seeds=[0]", "train.steps=2",
         "train.checkpoint_every=2", "data.spacing=[9,9,9]", f"model.channels={channels}"],
    )  # fmt: skip
    logs = []
    finetune(cfg, task_data["brainage"] / "finetune", tmp_path / "out", log=logs.append)
    plan = json.loads((tmp_path / "out" / "store" / "plan.json").read_text())
    assert plan["preprocess"]["spacing"] == [6.0, 6.0, 6.0]  # the card's, not the preset's
    said = "data.spacing [9.0, 9.0, 9.0] is not used"  # and that is said, not silent
    assert any(said in line for line in logs)
    record = json.loads((tmp_path / "out" / "finetune.json").read_text())
    assert any(said in w for w in record["warnings"])
    assert any("adapted" in line for line in logs) == (channels == "stem")
    model, card, spec = load_task_model(tmp_path / "out" / "seed_0")
    assert card.extra["channels"] == channels and model.backbone.in_channels == 2
    assert hasattr(model.backbone, "encode_channels") == (channels == "shared")
    lr = card.extra["load_report"]
    assert lr["n_loaded"] > 10 and bool(lr["adapted"]) == (channels == "stem")
    assert card.extra["init"].endswith("pre")
    assert card.modalities == ["t1", "t2"] and card.spacing == [6.0, 6.0, 6.0]
    cal = card.extra["calibration"]
    assert spec.name == "brainage"
    if card.extra["step"] == 0:  # the probe was kept: jackknife+ over 6 training + 4 val cases
        assert cal["method"].startswith("jackknife+") and cal["n"] == 10
        assert model.jk_resid.numel() == 10 and not cal["reused_for_selection"]
    else:  # a trained checkpoint: split conformal on the 4 val cases that chose it
        assert cal["n"] == 4 and cal["reused_for_selection"] and not cal["finite_sample_valid"]
        assert float(model.interval_scale) == pytest.approx(cal["scale"])


def test_rerun_with_another_split_is_refused(tmp_path, task_data):
    from brainfoundry.errors import ConfigError

    args = ["task=infarct", "seeds=[0]", "train.steps=1", "train.checkpoint_every=1"]
    cfg = FinetuneConfig.load("cpu-tiny", None, [*args, "shots=3"])
    finetune(cfg, task_data["infarct"] / "finetune", tmp_path / "o", log=lambda _: None)
    cfg = FinetuneConfig.load("cpu-tiny", None, [*args, "shots=4"])
    # the changed setting is named before the split is drawn (brainfoundry.resume)
    with pytest.raises(ConfigError, match="another configuration \\(shots: 3 → 4\\)"):
        finetune(cfg, task_data["infarct"] / "finetune", tmp_path / "o", log=lambda _: None)


def test_model_kwargs_shape_a_scratch_backbone_and_are_refused_with_an_init(tmp_path):
    spec = get_task("brainage")
    wide = BackboneConfig(size="tiny", kwargs={"features_per_stage": [4, 8, 24]})
    model, card, report = build_backbone("scratch", spec, wide, seed=0, channels="stem")
    assert model.feature_channels == [4, 8, 24] and card is None and report is None
    pretrained_run(tmp_path / "pre")
    with pytest.raises(ConfigError, match="model.kwargs .* shape a scratch network"):
        build_backbone(str(tmp_path / "pre"), spec, wide, seed=0, channels="stem")
