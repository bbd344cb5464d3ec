"""Presets are named config files, one folder per command, found by one resolver; each loads
into its typed config and round-trips through YAML."""

import pytest

from brainfoundry.bench.suite import load_suite
from brainfoundry.config import dump_yaml, load_config
from brainfoundry.errors import ConfigError
from brainfoundry.presets import KINDS, preset_names, preset_path
from brainfoundry.ssl.pretrain import PretrainConfig
from brainfoundry.tasks.finetune import FinetuneConfig


def test_every_kind_lists_its_files():
    assert {"cpu-tiny", "cpu-small", "gpu-base", "gpu-large"} <= set(preset_names("pretrain"))
    assert {"cpu-tiny", "cpu-small", "gpu-base"} <= set(preset_names("finetune"))
    assert {"demo", "quick", "full"} <= set(preset_names("suites"))
    for kind in KINDS:
        assert all(preset_path(kind, n).is_file() for n in preset_names(kind))


@pytest.mark.parametrize("cls", [PretrainConfig, FinetuneConfig])
def test_each_preset_loads_and_round_trips(cls, tmp_path):
    for name in preset_names(cls.preset_kind):
        cfg = cls.load(name, None, [])
        path = tmp_path / f"{name}.yaml"
        path.write_text(dump_yaml(cfg))
        assert load_config(cls, path) == cfg
        assert cfg.model.size  # a backbone size, never a config file name


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ConfigError, match="unknown finetune preset 'huge'; known: cpu-small"):
        FinetuneConfig.load("huge", None, [])
    with pytest.raises(ConfigError, match="--suite nope: unknown suite 'nope'; known: demo"):
        load_suite("nope")
    with pytest.raises(ConfigError, match="no config key 'model.preset'"):  # it is model.size
        FinetuneConfig.load(None, None, ["model.preset=tiny"])
