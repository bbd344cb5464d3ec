"""`brainfoundry import WEIGHTS --backbone FAMILY`: plain state dicts and Lightning checkpoints
(the FOMO25 baseline's / asparagus' layout), built here from our own tiny models with the
foreign names, saved with torch.save, imported, and checked key for key."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import torch

from brainfoundry.cli import main
from brainfoundry.errors import ConfigError, InputError
from brainfoundry.models.checkpoint import load_model
from brainfoundry.models.interop.state_dict import ImportOptions, import_state_dict

from .conftest import tiny


def _unique(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from brainfoundry.models.loading import dedup

    return dedup(model.state_dict())[0]


def _equal_weights(a: torch.nn.Module, b: torch.nn.Module, keys=None) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in (keys or sa))


def _asparagus_name(key: str, last_seg: int) -> str | None:
    """Our (DNA) name → gardening_tools' name, as asparagus' ResidualEncoderUNet writes it;
    None for the deep-supervision outputs it does not have."""
    key = re.sub(
        r"^encoder\.stem\.convs\.(\d+)\.", lambda m: f"encoder.stem.conv{int(m[1]) + 1}.", key
    )
    key = key.replace(".norm.", ".norm_op.")
    key = re.sub(r"^decoder\.transpconvs\.", "decoder.upsample_layers.", key)
    key = re.sub(r"^decoder\.stages\.(\d+)\.convs\.(\d+)\.",
                 lambda m: f"decoder.decoder_convs.{m[1]}.conv{int(m[2]) + 1}.", key)  # fmt: skip
    if key.startswith("decoder.seg_layers."):
        return key.replace(f"decoder.seg_layers.{last_seg}.", "decoder.out_conv.") if (
            key.startswith(f"decoder.seg_layers.{last_seg}.")) else None  # fmt: skip
    return key


def test_plain_state_dict_with_wrapper_prefix(tmp_path):
    model = tiny("resenc", 1, 2, seed=3)
    sd = {f"module._orig_mod.{k}": v for k, v in _unique(model).items()}  # DDP + compile names
    torch.save(sd, tmp_path / "w.pt")
    back, card, report, record = import_state_dict(
        tmp_path / "w.pt", tmp_path / "run", ImportOptions("resenc", "tiny")
    )
    c = record["counts"]
    assert report.ok and c["matched"] == c["model_tensors"] == len(sd)
    assert (c["missing"], c["unexpected"], c["mismatched"]) == (0, 0, 0)
    assert record["prefix"] == "module." and record["layout"] == "dna"
    assert card.in_channels == 1 and card.arch["kwargs"]["out_channels"] == 2  # read off weights
    assert record["mapping"]["module._orig_mod.encoder.stem.convs.0.conv.weight"] == (
        "encoder.stem.convs.0.conv.weight"
    )
    on_disk = json.loads((tmp_path / "run" / "import_report.json").read_text())
    assert on_disk["mapping"] == record["mapping"] and len(on_disk["mapping"]) == len(sd)
    loaded, _, _ = load_model(tmp_path / "run", strict=True)  # what --init reads
    assert _equal_weights(model, loaded) and _equal_weights(model, back)


def _lightning_ckpt(model, extra_blocks: bool = False) -> dict:
    last = max(int(k.split(".")[2]) for k in model.state_dict() if "seg_layers" in k)
    sd = {}
    for k, v in _unique(model).items():
        name = _asparagus_name(k, last)
        if name is not None:
            sd[f"model.{name}"] = v
    sd["model.encoder.stem.conv1.all_modules.0.weight"] = sd["model.encoder.stem.conv1.conv.weight"]
    sd["loss_fn.pos_weight"] = torch.ones(1)
    return {
        "state_dict": sd, "epoch": 4, "global_step": 120, "pytorch-lightning_version": "2.4.0",
        "hyper_parameters": {"learning_rate": 1e-3, "save_dir": pathlib.PurePosixPath("/x")},
        "optimizer_states": [], "loops": {},
    }  # fmt: skip


def test_asparagus_lightning_checkpoint_maps_exactly(tmp_path):
    model = tiny("resenc", 1, 1, seed=5)
    torch.save(_lightning_ckpt(model), tmp_path / "amaes.ckpt")
    back, card, report, record = import_state_dict(
        tmp_path / "amaes.ckpt", tmp_path / "run", ImportOptions("resenc", "tiny")
    )
    assert record["kind"] == "lightning" and record["prefix"] == "model."
    assert record["layout"] == "asparagus" and record["lightning"]["global_step"] == 120
    assert record["placeholders"] == ["pathlib.PurePosixPath"]  # stood in for, never imported
    c = record["counts"]
    # every tensor but the first decoder stage's deep-supervision output (asparagus has none)
    assert record["missing"] == ["decoder.seg_layers.0.weight", "decoder.seg_layers.0.bias"]
    assert c["matched"] == c["model_tensors"] - 2 and c["mismatched"] == 0
    assert record["unexpected"] == ["loss_fn.pos_weight"] and c["aliases"] == 1
    m = record["mapping"]  # names exactly as gardening_tools' ResidualEncoderUNet has them
    assert m["model.encoder.stem.conv1.norm_op.weight"] == "encoder.stem.convs.0.norm.weight"
    assert m["model.encoder.stages.1.blocks.0.skip.1.conv.weight"] == (
        "encoder.stages.1.blocks.0.skip.1.conv.weight"
    )
    assert m["model.decoder.decoder_convs.0.conv1.conv.weight"] == (
        "decoder.stages.0.convs.0.conv.weight"
    )
    assert m["model.decoder.upsample_layers.1.weight"] == "decoder.transpconvs.1.weight"
    assert m["model.decoder.out_conv.weight"] == "decoder.seg_layers.1.weight"
    keys = [k for k in model.state_dict() if "seg_layers.0" not in k]
    assert _equal_weights(model, back, keys)
    x = torch.randn(1, 1, 32, 32, 32)
    torch.testing.assert_close(back.eval().encode(x)[-1], model.eval().encode(x)[-1])


def test_deeper_checkpoint_onto_a_smaller_size_reports_the_rest(tmp_path):
    """AMAES ResEnc-B has more blocks per stage than our `base`: what fits loads, the extra
    blocks are listed as unexpected, and --size auto finds the size that fits them all."""
    deeper = tiny("resenc", 1, 1, seed=1, n_blocks_per_stage=[1, 2, 2])
    torch.save(_lightning_ckpt(deeper), tmp_path / "deep.ckpt")
    _, _, report, record = import_state_dict(
        tmp_path / "deep.ckpt", tmp_path / "run", ImportOptions("resenc", "tiny")
    )
    extra = [k for k in record["unexpected"] if ".blocks.1." in k]
    assert extra and all(k.startswith("model.encoder.stages.") for k in extra)
    assert record["counts"]["mismatched"] == 0 and report.loaded
    small = tiny("resenc", 1, 1, seed=1)
    torch.save({"state_dict": _unique(small), "global_step": 1}, tmp_path / "small.ckpt")
    _, card, _, rec = import_state_dict(
        tmp_path / "small.ckpt", tmp_path / "auto", ImportOptions("resenc", "auto")
    )
    assert card.arch["size"] == "tiny" and rec["counts"]["missing"] == 0


def test_channels_are_read_off_the_weights_and_primus_imports(tmp_path):
    model = tiny("primus", 2, 3, seed=2)
    torch.save({"model": _unique(model), "epoch": 0}, tmp_path / "p.pth")
    back, card, report, record = import_state_dict(
        tmp_path / "p.pth",
        tmp_path / "run",
        ImportOptions("primus", "tiny", modalities=["t1", "t2"]),
    )
    assert record["container"] == "model" and report.ok
    assert card.in_channels == 2 and card.modalities == ["t1", "t2"]
    assert card.arch["kwargs"]["out_channels"] == 3 and _equal_weights(model, back)


def test_fomo25_baseline_unet_is_named_not_silently_empty(tmp_path):
    sd = {
        "model.encoder.in_conv.conv1.conv.weight": torch.zeros(32, 1, 3, 3, 3),
        "model.encoder.encoder_conv1.conv1.conv.weight": torch.zeros(64, 32, 3, 3, 3),
    }
    torch.save({"state_dict": sd, "global_step": 5}, tmp_path / "unet_b.ckpt")
    with pytest.raises(ConfigError, match="FOMO25 baseline"):
        import_state_dict(
            tmp_path / "unet_b.ckpt", tmp_path / "run", ImportOptions("resenc", "tiny")
        )
    assert not (tmp_path / "run").exists()


def test_cli_import_prints_the_counts(tmp_path, capsys):
    model = tiny("resenc", 1, 1, seed=4)
    torch.save(_unique(model), tmp_path / "w.pt")
    run = tmp_path / "run"
    argv = [
        "import",
        str(tmp_path / "w.pt"),
        "--backbone",
        "resenc",
        "--size",
        "tiny",
        "-o",
        str(run),
    ]
    assert main([*argv, "--modalities", "flair", "--spacing", "1,1,1", "--strict"]) == 0
    out = capsys.readouterr().out
    n = len(_unique(model))
    assert f"matched {n} of {n} model tensors; missing 0; unexpected 0" in out
    loaded, card, _ = load_model(run, strict=True)
    assert card.modalities == ["flair"] and card.spacing == [1.0, 1.0, 1.0]
    assert _equal_weights(model, loaded)
    torch.save(_lightning_ckpt(model), tmp_path / "l.ckpt")
    lightning = ["import", str(tmp_path / "l.ckpt"), "--backbone", "resenc", "--size", "tiny"]
    assert (
        main([*lightning, "-o", str(tmp_path / "r2"), "--strict"]) == 2
    )  # 2 missing: strict fails
    assert main([*lightning, "-o", str(tmp_path / "r3")]) == 0
    assert (
        main(["import", str(tmp_path / "w.pt"), "--backbone", "nope", "-o", str(tmp_path / "x")])
        == 2
    )
    err = capsys.readouterr().err
    assert "did not all match" in err and "unknown backbone 'nope'" in err


class Hparams(dict):
    """A dict subclass in hyper_parameters: weights-only loading cannot stand in for one."""


def test_safetensors_source_and_an_unloadable_pickle(tmp_path, saved_run):
    run, model, _ = saved_run
    family = model.arch()["name"]
    _, _, report, _ = import_state_dict(
        run / "model.safetensors", tmp_path / "st", ImportOptions(family, "tiny")
    )
    assert report.ok
    ckpt = {"state_dict": _unique(model), "global_step": 1, "hyper_parameters": Hparams(a=1)}
    torch.save(ckpt, tmp_path / "bad.ckpt")
    with pytest.raises(InputError, match=r"Hparams.*weights_only=False"):
        import_state_dict(tmp_path / "bad.ckpt", tmp_path / "bad", ImportOptions(family, "tiny"))
