"""Key layouts: how other codebases name the tensors of networks we have, mapped onto our names.

Our backbones keep dynamic-network-architectures' names (`encoder.stem.convs.0.conv.weight`),
which nnssl and nnU-Net checkpoints share, so the "dna" layout is the identity. Asparagus (the
FOMO organisers' framework, through `gardening_tools`) builds the same residual-encoder U-Net
under other names: `encoder.stem.conv1.…`, `norm_op` for `norm`, `upsample_layers` /
`decoder_convs` / `out_conv` in the decoder. Layer for layer the computation is the same, so
renaming is exact (tests/models/test_state_dict_import.py rebuilds the mapping from our model).
A layout is a function from a foreign key to ours; `import` tries each and keeps the one that
matches most tensors. Plug in more with `@KEY_LAYOUTS.register("name")`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ...registry import Registry

Rename = Callable[[str], str]
KEY_LAYOUTS: Registry[str] = Registry("key layout")


@KEY_LAYOUTS.register("dna")
def dna(key: str) -> str:
    """dynamic-network-architectures / nnssl / nnU-Net / brainfoundry names: kept as they are."""
    return key


_ASPARAGUS = (
    (re.compile(r"^encoder\.stem\.conv(\d+)\."), lambda m: f"encoder.stem.convs.{int(m[1]) - 1}."),
    (re.compile(r"\.norm_op\."), lambda m: ".norm."),
    (re.compile(r"^decoder\.upsample_layers\.(\d+)\."), lambda m: f"decoder.transpconvs.{m[1]}."),
    (
        re.compile(r"^decoder\.decoder_convs\.(\d+)\.conv(\d+)\."),
        lambda m: f"decoder.stages.{m[1]}.convs.{int(m[2]) - 1}.",
    ),
)


@KEY_LAYOUTS.register("asparagus")
def asparagus(key: str) -> str:
    """gardening_tools' ResidualEncoderUNet (asparagus' resenc_unet_*, AMAES ResEnc-B) → DNA.

    `decoder.out_conv` is the full-resolution output layer, DNA's last `seg_layers` entry; its
    index depends on the depth, so it is resolved against the model (`resolve_out_conv`)."""
    for pattern, repl in _ASPARAGUS:
        key = pattern.sub(repl, key)
    return key


def resolve_out_conv(key: str, model_keys: set[str]) -> str:
    """`decoder.out_conv.*` → the model's last `decoder.seg_layers.N.*` (DNA's full-res output)."""
    if not key.startswith("decoder.out_conv."):
        return key
    tail = key[len("decoder.out_conv.") :]
    layers = sorted(
        {int(k.split(".")[2]) for k in model_keys if k.startswith("decoder.seg_layers.")}
    )
    return f"decoder.seg_layers.{layers[-1]}.{tail}" if layers else key


# architectures people have weights for that no brainfoundry backbone reproduces, by a key only
# they have: named in the error instead of a bare "nothing matched"
KNOWN_FOREIGN = {
    "encoder.in_conv.conv1.conv.weight": (
        "the FOMO25 baseline's yucca U-Net (unet_b / unet_xl: plain double-conv blocks, max-pool "
        "downsampling); brainfoundry has no backbone with that architecture, so its weights "
        "cannot be mapped. Its organisers' residual-encoder checkpoints (asparagus, AMAES "
        "ResEnc-B) import as --backbone resenc"
    ),
}


def recognise(keys: list[str]) -> str | None:
    """A one-line description of a known foreign architecture these keys belong to, if any."""
    for marker, what in KNOWN_FOREIGN.items():
        if any(k == marker or k.endswith("." + marker) for k in keys):
            return what
    return None
