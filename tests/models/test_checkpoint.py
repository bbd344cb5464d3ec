"""Card + safetensors checkpoints: bit-exact round trip, channel adaptation, reports, errors."""

from __future__ import annotations

import json

import pytest
import torch

from brainfoundry.errors import ConfigError, InputError
from brainfoundry.models.card import ModelCard
from brainfoundry.models.checkpoint import load_model, save_model
from brainfoundry.models.loading import adapt_in_proj

from .conftest import tiny


def test_card_json_round_trip():
    card = ModelCard(
        arch={"name": "resenc", "size": "tiny", "kwargs": {"in_channels": 2}},
        in_channels=2,
        modalities=["flair", "t1"],
        spacing=[1, 1, 1.5],
        patch_size=[32, 32, 32],
        ssl_method="mae",
        data_summary={"scans": 12},
        extra={"note": "x"},
    )
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert again.spacing == [1.0, 1.0, 1.5]
    newer = json.loads(card.to_json()) | {"future_field": 1}
    assert ModelCard.from_dict(newer).extra["unknown"] == {"future_field": 1}
    with pytest.raises(ValueError, match="modalities"):
        ModelCard(arch=card.arch, in_channels=3, modalities=["t1"])


def test_save_load_is_bit_exact(saved_run):
    run, model, card = saved_run
    assert sorted(p.name for p in run.iterdir()) == ["card.json", "model.safetensors"]
    loaded, card2, report = load_model(run, strict=True)
    assert card2 == card
    assert report.ok and not report.adapted
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(1, 1, 32, 32, 32)
    assert torch.equal(model.eval()(x), loaded.eval()(x))


def test_shared_tensors_stored_once(tmp_path):
    from safetensors import safe_open

    model = tiny("resenc")
    save_model(tmp_path, model, ModelCard.for_model(model))
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        names = set(f.keys())  # noqa: SIM118
        aliases = json.loads(f.metadata()["aliases"])
    assert "encoder.stem.convs.0.conv.weight" in names
    assert (
        aliases["encoder.stem.convs.0.all_modules.0.weight"] == "encoder.stem.convs.0.conv.weight"
    )
    assert names | set(aliases) == set(model.state_dict())


def test_channel_adaptation_keeps_the_response(saved_run):
    run, model, _ = saved_run
    adapted, _, report = load_model(run, in_channels=4)
    key = f"{model.in_proj_keys[0]}.weight"
    assert list(report.adapted) == [key]
    src, dst = report.adapted[key]
    assert src[1] == 1 and dst[1] == 4
    x = torch.randn(1, 1, 32, 32, 32)
    # the same image in every channel gives the pretrained features
    torch.testing.assert_close(
        adapted.eval().encode(x.repeat(1, 4, 1, 1, 1))[-1],
        model.eval().encode(x)[-1],
        rtol=1e-4,
        atol=1e-4,
    )


def test_adapt_in_proj_cycles_and_rescales():
    w = torch.arange(2 * 3 * 1 * 1 * 1, dtype=torch.float32).reshape(2, 3, 1, 1, 1)
    out = adapt_in_proj(w, 5)
    assert out.shape == (2, 5, 1, 1, 1)
    torch.testing.assert_close(out[:, 3], w[:, 0] * 3 / 5)
    torch.testing.assert_close(
        out.sum(1), w.sum(1) + (w[:, 0] + w[:, 1]) * 3 / 5 - w.sum(1) * 2 / 5
    )


def test_report_lists_mismatch_and_strict_raises(saved_run):
    run, model, _ = saved_run
    _, _, report = load_model(run, out_channels=3)
    assert report.mismatched and not report.missing and not report.unexpected
    assert all(m[0] != m[1] for m in report.mismatched.values())
    text = str(report)
    assert "shape mismatch" in text and "kept init" in text
    with pytest.raises(ConfigError, match="strict"):
        load_model(run, out_channels=3, strict=True)


def test_missing_and_unexpected_keys(tmp_path):
    big = tiny("primus", depth=3)
    save_model(tmp_path / "big", big, ModelCard.for_model(big))
    card = json.loads((tmp_path / "big" / "card.json").read_text())
    card["arch"]["kwargs"]["depth"] = 2  # a shallower model reads the deeper weights
    (tmp_path / "big" / "card.json").write_text(json.dumps(card))
    _, _, report = load_model(tmp_path / "big")
    assert report.unexpected and all(k.startswith("eva.blocks.2.") for k in report.unexpected)
    assert not report.missing
    card["arch"]["kwargs"]["depth"] = 4
    (tmp_path / "big" / "card.json").write_text(json.dumps(card))
    _, _, report = load_model(tmp_path / "big")
    assert report.missing and all(k.startswith("eva.blocks.3.") for k in report.missing)
    assert "missing eva.blocks.3." in str(report)


def test_prefix_selects_a_submodule(tmp_path):
    backbone = tiny("resenc")
    wrapper = torch.nn.Module()
    wrapper.backbone = backbone
    wrapper.head = torch.nn.Linear(32, 1)
    save_model(tmp_path, wrapper, ModelCard.for_model(backbone))
    loaded, _, report = load_model(tmp_path, prefix="backbone", strict=True)
    assert sorted(report.ignored) == ["head.bias", "head.weight"]
    assert torch.equal(loaded.state_dict()["decoder.seg_layers.1.weight"],
                       backbone.state_dict()["decoder.seg_layers.1.weight"])  # fmt: skip


def test_missing_or_corrupt_checkpoint_is_an_input_error(saved_run, tmp_path):
    run, _, _ = saved_run
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="card.json"):
        load_model(empty)
    (run / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(InputError, match="safetensors"):
        load_model(run)
    (run / "card.json").write_text("{ broken")
    with pytest.raises(InputError, match="JSON"):
        load_model(run)


def test_save_refuses_a_card_for_another_model(tmp_path):
    a, b = tiny("resenc"), tiny("primus")
    with pytest.raises(ValueError, match="card.arch"):
        save_model(tmp_path, a, ModelCard.for_model(b))
