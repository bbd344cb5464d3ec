"""nnssl export/import: the file format, a lossless round trip, and loading into DNA's network
the way nnssl's adaptation check and nnU-Net's loader map keys."""

from __future__ import annotations

import json
import pydoc

import pytest
import torch

from brainfoundry.errors import InputError
from brainfoundry.models.card import ModelCard
from brainfoundry.models.checkpoint import load_model, save_model
from brainfoundry.models.interop.nnssl import export_nnssl, import_nnssl
from brainfoundry.models.interop.nnssl_plan import architecture_plans

from .conftest import tiny

PLAN_KEYS = {
    "architecture_plans", "pretrain_plan", "pretrain_num_input_channels",
    "recommended_downstream_patchsize", "key_to_encoder", "key_to_stem", "keys_to_in_proj",
    "key_to_lpe",
}  # fmt: skip


def test_export_writes_nnssl_format(saved_run, tmp_path):
    run, model, card = saved_run
    path = export_nnssl(run, tmp_path / "out")
    assert path.name == "checkpoint_final.pth"
    ckpt = torch.load(path, weights_only=True)  # loads without unpickling code
    plan = ckpt["nnssl_adaptation_plan"]
    assert set(plan) == PLAN_KEYS
    assert plan["pretrain_num_input_channels"] == 1
    config = next(iter(plan["pretrain_plan"]["configurations"].values()))
    assert config["spacing"] == [1.0, 1.0, 1.0] and config["patch_size"] == [32, 32, 32]
    assert config["normalization_schemes"] == ["ZScoreNormalization"]
    assert ckpt["network_weights"].keys() == model.state_dict().keys()
    on_disk = json.loads((path.parent / "adaptation_plan.json").read_text())
    assert {k: on_disk[k] for k in PLAN_KEYS} == json.loads(json.dumps(plan))
    if card.arch["name"] == "primus":
        assert plan["key_to_encoder"] == "eva" and plan["key_to_lpe"] == "eva.pos_embed"
    else:
        assert plan["key_to_encoder"] == "encoder.stages" and plan["key_to_lpe"] is None
        assert plan["architecture_plans"]["arch_class_name"] == "ResidualEncoderUNet"


def test_round_trip_is_exact(saved_run, tmp_path):
    run, model, card = saved_run
    path = export_nnssl(run, tmp_path / "out")
    back, card2, report = import_nnssl(path, tmp_path / "back")
    assert report.ok and card2 == card
    loaded, _, _ = load_model(tmp_path / "back", strict=True)
    for m in (back, loaded):
        a, b = model.state_dict(), m.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_import_without_our_card_reads_the_plan(tmp_path):
    model = tiny("resenc", 2, 3)
    card = ModelCard.for_model(model, modalities=["t1", "t2"], spacing=[1, 1, 1],
                               patch_size=[32, 32, 32])  # fmt: skip
    save_model(tmp_path / "run", model, card)
    path = export_nnssl(tmp_path / "run", tmp_path / "out")
    ckpt = torch.load(path, weights_only=True)
    del ckpt["brainfoundry_card"]  # as nnssl itself writes it
    torch.save(ckpt, path)
    back, card2, report = import_nnssl(path, tmp_path / "back")
    assert report.ok
    assert card2.arch["kwargs"] == card.arch["kwargs"]
    assert card2.spacing == [1.0, 1.0, 1.0] and card2.patch_size == [32, 32, 32]
    assert card2.extra["imported_from"] == "nnssl"
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in model.state_dict().items())


def _dna_from_plan(plan: dict, num_classes: int):
    """Build the downstream network as nnssl's get_network_from_plans does (pydoc.locate)."""
    ap = plan["architecture_plans"]
    from dynamic_network_architectures.architectures import unet

    kwargs = dict(ap["arch_kwargs"])
    for key in ap["arch_kwargs_requiring_import"]:
        kwargs[key] = pydoc.locate(kwargs[key])
    cls = getattr(unet, ap["arch_class_name"])
    return cls(input_channels=plan["pretrain_num_input_channels"], num_classes=num_classes,
               deep_supervision=False, **kwargs)  # fmt: skip


def test_exported_resenc_loads_into_dna_like_nnunet(tmp_path):
    model = tiny("resenc", 1, 2)
    save_model(tmp_path / "run", model, ModelCard.for_model(model, patch_size=[32] * 3))
    path = export_nnssl(tmp_path / "run", tmp_path / "out")
    ckpt = torch.load(path, weights_only=True)
    plan, weights = ckpt["nnssl_adaptation_plan"], ckpt["network_weights"]
    net = _dna_from_plan(plan, num_classes=5)  # a downstream task with other outputs
    # nnssl's adaptation check: encoder and stem by prefix, loaded strictly into DNA's modules
    for key in (plan["key_to_encoder"], plan["key_to_stem"]):
        part = {k[len(key) + 1 :]: v for k, v in weights.items() if k.startswith(key + ".")}
        net.get_submodule(key).load_state_dict(part, strict=True)
    # nnU-Net v2's own loader: every key but the seg layers, same names and shapes
    from nnunetv2.run.load_pretrained_weights import load_pretrained_weights

    net2 = _dna_from_plan(plan, num_classes=5)
    load_pretrained_weights(net2, str(path))
    for n in (net, net2):
        sd = n.state_dict()
        enc = [k for k in sd if k.startswith(("encoder.stages.", "encoder.stem."))]
        assert enc and all(torch.equal(sd[k], weights[k]) for k in enc)
    x = torch.randn(1, 1, 32, 32, 32)
    torch.testing.assert_close(net2.eval().encoder(x)[-1], model.eval().encode(x)[-1])


def test_resenc_l_and_primus_m_use_nnssl_names():
    from brainfoundry.models.backbones import create_backbone

    with torch.device("meta"):
        tiny_arch = tiny("resenc").arch()
        l_arch = create_backbone("resenc", 1, 1, "L").arch()
        m_arch = create_backbone("primus", 1, 1, "M").arch()
    assert architecture_plans(l_arch)["arch_class_name"] == "ResEncL"
    assert architecture_plans(m_arch)["arch_class_name"] == "PrimusM"
    assert architecture_plans(tiny_arch)["arch_class_name"] == "ResidualEncoderUNet"


def test_import_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no nnssl checkpoint"):
        import_nnssl(tmp_path / "missing.pth", tmp_path / "run")
    bad = tmp_path / "bad.pth"
    torch.save({"weights": {}}, bad)
    with pytest.raises(InputError, match="not an nnssl checkpoint"):
        import_nnssl(bad, tmp_path / "run")
    bad.write_bytes(b"garbage")
    with pytest.raises(InputError, match="weights-only"):
        import_nnssl(bad, tmp_path / "run")
