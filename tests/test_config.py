from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from brainfoundry.config import apply_overrides, dump_yaml, from_dict, load_config, save_config
from brainfoundry.errors import ConfigError


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str = "x"
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    clip: tuple[float, float] | None = (0.5, 99.5)
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)


def test_yaml_round_trip(tmp_path):
    cfg = Outer(name="y", spacing=(2.0, 2.0, 5.0), inner=Inner(lr=0.1, steps=3, mode="b"))
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(Outer, tmp_path / "c.yaml") == cfg
    assert "spacing" in dump_yaml(cfg)


def test_overrides_are_typed():
    cfg = apply_overrides(
        Outer(), ["inner.lr=0.5", "inner.steps=7", "spacing=[2,2,2]", "clip=null", "tags=a,b"]
    )
    assert cfg.inner.lr == 0.5 and cfg.inner.steps == 7
    assert cfg.spacing == (2.0, 2.0, 2.0) and cfg.clip is None and cfg.tags == ["a", "b"]


@dataclass
class WithOptions:
    inner: Inner = field(default_factory=Inner)
    kwargs: dict[str, Any] = field(default_factory=dict)


def test_an_override_adds_a_key_to_a_free_form_mapping_only():
    """`model.kwargs.view=projections` adds an option; a typo in a typed section stays an error."""
    cfg = apply_overrides(WithOptions(), ["kwargs.view=projections", "kwargs.image_size=64"])
    assert cfg.kwargs == {"view": "projections", "image_size": 64}
    with pytest.raises(ConfigError, match="no config key"):
        apply_overrides(WithOptions(), ["inner.nope=1"])
    with pytest.raises(ConfigError, match="no config section"):
        apply_overrides(WithOptions(), ["kwargs.a.b=1"])


def test_yaml_then_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("inner:\n  steps: 4\nname: z\n")
    cfg = load_config(Outer, tmp_path / "c.yaml", ["inner.steps=5"])
    assert cfg.name == "z" and cfg.inner.steps == 5 and cfg.inner.lr == 1e-3


@pytest.mark.parametrize(
    "override, message",
    [
        ("inner.nope=1", "no config key"),
        ("nope.lr=1", "no config section"),
        ("inner.steps=1.5", "integer"),
        ("inner.mode=c", "not one of"),
        ("spacing=[1,2]", "expected 3 values"),
        ("inner", "key.sub=value"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        apply_overrides(Outer(), [override])
    assert "\n" not in str(e.value)


def test_unknown_yaml_key_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(Outer, {"nme": "typo"})
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, tmp_path / "bad.yaml")


def test_a_bare_off_is_the_word_where_a_choice_expects_it(tmp_path):
    """YAML 1.1 reads `off` as False: `train.amp=off` must mean the choice "off"."""
    from brainfoundry.engine import TrainConfig

    assert apply_overrides(TrainConfig(), ["amp=off"]).amp == "off"
    (tmp_path / "t.yaml").write_text("amp: off\n")
    assert load_config(TrainConfig, tmp_path / "t.yaml").amp == "off"
    with pytest.raises(ConfigError, match="is not one of"):
        apply_overrides(Outer(), ["inner.mode=off"])  # no "off" among the choices: still refused
