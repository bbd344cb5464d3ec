"""AugmentConfig: YAML round trip, `a.b=c` overrides, presets, plug-ins, one-line errors."""

import dataclasses

import pytest
import torch

from brainfoundry.config import dump_yaml, from_dict, load_config, to_dict
from brainfoundry.errors import ConfigError
from brainfoundry.transforms import (
    TRANSFORMS,
    AugmentConfig,
    GaussianNoise,
    augment_preset,
    build_augmentation,
)


def test_yaml_round_trip_and_overrides(tmp_path):
    cfg = augment_preset("strong")
    path = tmp_path / "aug.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_config(AugmentConfig, path) == cfg
    assert from_dict(AugmentConfig, to_dict(cfg)) == cfg
    out = load_config(AugmentConfig, path, ["noise.p=0.5", "spatial.patch_size=[16,16,16]"])
    assert out.noise.p == 0.5
    assert out.spatial.patch_size == (16, 16, 16)
    assert out.blur == cfg.blur


def test_nnunet_preset_matches_nnunet_probabilities():
    cfg = augment_preset("nnunet")
    assert (cfg.spatial.p_rotation, cfg.spatial.p_scale, cfg.spatial.p_elastic) == (0.2, 0.2, 0)
    assert (cfg.noise.p, cfg.blur.p, cfg.blur.p_per_channel) == (0.1, 0.2, 0.5)
    assert (cfg.brightness.p, cfg.contrast.p, cfg.low_resolution.p) == (0.15, 0.15, 0.25)
    assert (cfg.gamma_inverted.p, cfg.gamma.p, cfg.flip.p_per_axis) == (0.1, 0.3, 0.5)
    assert cfg.bias_field.p == cfg.ghosting.p == cfg.motion.p == cfg.thick_slices.p == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("noise.p=1.5", "noise.p: 1.5 is not a probability"),
        ("spatial.rotation=[30,-30]", "spatial.rotation"),
        ("blur.sigma=[-1,1]", "blur.sigma"),
        ("spatial.patch_size=[16,16]", "spatial.patch_size"),
        ("noise.nope=1", "no config key"),
        ("gamma.gamma=[0,1]", "gamma.gamma"),
    ],
)
def test_invalid_values_raise_one_line_config_errors(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(AugmentConfig, None, [override])
    assert "\n" not in str(info.value)


def test_direct_construction_is_validated():
    with pytest.raises(ConfigError, match="noise.std"):
        GaussianNoise(std=(0.5, 0.1))
    with pytest.raises(ConfigError, match="preset 'wild' is unknown"):
        augment_preset("wild")


def test_plug_in_transforms_by_name(batch, generator):
    @TRANSFORMS.register("test_negate", override=True)
    @dataclasses.dataclass
    class Negate(GaussianNoise):
        name = "test_negate"

        def apply_(self, batch, generator):
            batch["image"].neg_()
            return batch

    cfg = dataclasses.replace(augment_preset("none"), extra=[{"name": "test_negate", "p": 1.0}])
    out = build_augmentation(cfg)(batch, generator)
    assert torch.equal(out["image"], -batch["image"])
    with pytest.raises(ConfigError, match="unknown transform 'nope'"):
        AugmentConfig(extra=[{"name": "nope"}])
