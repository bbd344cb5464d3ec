"""Find how a foreign state dict's names map onto a model's: which wrapper prefix to strip and
which key layout to apply, chosen by how many of the model's tensors they name.

Candidates are every leading dotted prefix (depth ≤ 3) the file uses, with `_orig_mod.`
(`torch.compile`'s wrapper) dropped everywhere, times every registered key layout. Nothing is
guessed by shape: a name either is one of the model's or it is not, so the report can say
exactly which source key filled which tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...errors import ConfigError
from .layouts import KEY_LAYOUTS, resolve_out_conv


@dataclass
class KeyMatch:
    """One (prefix, layout) reading of a state dict, in the model's names."""

    prefix: str
    layout: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # model name -> tensor
    origin: dict[str, str] = field(default_factory=dict)  # model name -> source key
    ignored: list[str] = field(default_factory=list)  # source keys outside the prefix
    named: int = 0  # how many of the model's names it provides


def candidate_prefixes(keys: list[str], depth: int = 3) -> list[str]:
    """ "" and every leading `a.`, `a.b.`, `a.b.c.` that some key has beyond it, shortest first."""
    found = {""}
    for key in keys:
        parts = key.split(".")
        for d in range(1, min(depth, len(parts) - 1) + 1):
            found.add(".".join(parts[:d]) + ".")
    return sorted(found, key=lambda p: (p.count("."), p))


def read_as(
    tensors: dict[str, torch.Tensor], prefix: str, layout: str, model_keys: set[str]
) -> KeyMatch:
    """The tensors under `prefix`, renamed by `layout`; a name two keys map to is kept once."""
    rename = KEY_LAYOUTS.get(layout)
    match = KeyMatch(prefix, layout)
    for key, value in tensors.items():
        bare = key.replace("_orig_mod.", "")
        if not bare.startswith(prefix):
            match.ignored.append(key)
            continue
        name = resolve_out_conv(rename(bare[len(prefix) :]), model_keys)
        if name in match.tensors:
            match.ignored.append(key)  # a duplicate name: the first one stands
            continue
        match.tensors[name] = value
        match.origin[name] = key
    match.named = sum(1 for n in match.tensors if n in model_keys)
    return match


def best_match(
    tensors: dict[str, torch.Tensor],
    model_keys: set[str],
    prefix: str | None = None,
    layout: str | None = None,
) -> KeyMatch:
    """The (prefix, layout) naming most model tensors; ties go to the registry's first layout
    ("dna" before others) and the shorter prefix. `prefix` / `layout` fix either choice."""
    keys = [k.replace("_orig_mod.", "") for k in tensors]
    prefixes = [_dotted(prefix)] if prefix is not None else candidate_prefixes(keys)
    layouts = [layout] if layout else ["dna", *[n for n in KEY_LAYOUTS.list() if n != "dna"]]
    for name in layouts:
        KEY_LAYOUTS.get(name)  # an unknown --layout fails here, naming the known ones
    best: KeyMatch | None = None
    for lay in layouts:
        for p in prefixes:
            m = read_as(tensors, p, lay, model_keys)
            if best is None or m.named > best.named:
                best = m
    if best is None:
        raise ConfigError("no key layout to read the state dict with")
    return best


def _dotted(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith(".") else prefix + "."
