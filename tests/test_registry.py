import pytest

from brainfoundry.errors import ConfigError
from brainfoundry.registry import Registry


def test_register_create_list():
    reg = Registry("backbone")

    @reg.register()
    class Tiny:
        def __init__(self, width=2):
            self.width = width

    @reg.register("other")
    def make(width=3):
        return Tiny(width)

    assert reg.list() == ["other", "tiny"]
    assert reg.create("Tiny", width=5).width == 5
    assert reg.create("other").width == 3
    assert "tiny" in reg and len(reg) == 2


def test_duplicates_and_unknown_names():
    reg = Registry("objective")
    reg.register("mae")(dict)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("mae")(list)
    reg.register("mae", override=True)(list)
    assert reg.get("mae") is list
    with pytest.raises(ConfigError, match="unknown objective 'simclr'; known: mae"):
        reg.create("simclr")
