"""Device names resolve in one place; a GPU asked for where there is none is a clear error."""

import pytest
import torch

from brainfoundry.engine.device import pick_device
from brainfoundry.errors import ConfigError


def test_cpu_and_auto():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_clear_error():
    with pytest.raises(ConfigError, match="no usable CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(ConfigError, match="no usable CUDA GPU"):
        pick_device("cuda:1")


def test_unknown_device_names_are_errors():
    for bad in ("tpu", "gpu", "meta"):
        with pytest.raises(ConfigError, match="use auto, cpu, cuda or cuda:N"):
            pick_device(bad)
