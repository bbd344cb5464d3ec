"""Put a state dict into a backbone and say exactly what happened (missing, unexpected,
shape-mismatched and adapted keys) instead of `load_state_dict(strict=False)`'s silence.

DNA modules register each conv twice (`conv` and `all_modules.0`) and the decoder keeps a
reference to the encoder, so one tensor has several names. Keys are compared by tensor, and
reports name each tensor once (its first name in `state_dict()` order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

Shape = tuple[int, ...]


@dataclass
class LoadReport:
    """What `load_state` did; `ok` when every model tensor was filled and nothing was left over."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: dict[str, tuple[Shape, Shape]] = field(default_factory=dict)
    adapted: dict[str, tuple[Shape, Shape]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # outside the requested prefix
    sources: dict[str, str] = field(default_factory=dict)  # model key -> name it came from

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        for key, (src, dst) in self.adapted.items():
            lines.append(f"  adapted {key}: {list(src)} -> {list(dst)} (input channels)")
        for key, (src, dst) in self.mismatched.items():
            lines.append(
                f"  shape mismatch {key}: checkpoint {list(src)}, model {list(dst)} (kept init)"
            )
        lines += [f"  missing {k} (kept init)" for k in self.missing]
        lines += [f"  unexpected {k} (not used)" for k in self.unexpected]
        if self.ignored:
            lines.append(f"  ignored {len(self.ignored)} tensors outside the prefix")
        return "\n".join(lines)


def dedup(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Split a state dict into unique tensors and an alias map {other name: first name}."""
    first: dict[tuple, str] = {}
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for key, t in state.items():
        ident = (t.device.type, t.data_ptr(), t.dtype, tuple(t.shape), t.stride())
        if t.numel() and t.device.type != "meta" and ident in first:
            aliases[key] = first[ident]
        else:
            first[ident] = key
            unique[key] = t
    return unique, aliases


def adapt_in_proj(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """[O, C, k, k, k] → [O, channels, k, k, k]: cycle the pretrained channels, scale by C/new.

    Repeating keeps each new channel's filter a pretrained one; the C/new scale keeps the
    response to an image copied into every channel equal to the pretrained response, so
    activation statistics downstream start where pretraining left them.
    """
    c = weight.shape[1]
    idx = torch.arange(channels) % c
    return weight[:, idx] * (c / channels)


def load_state(
    model: nn.Module,
    tensors: dict[str, torch.Tensor],
    aliases: dict[str, str] | None = None,
    in_proj_keys: tuple[str, ...] = (),
) -> LoadReport:
    """Copy `tensors` (unique names + `aliases`) into `model`; adapt input-projection weights."""
    aliases = dict(aliases or {})
    report = LoadReport()
    own, own_aliases = dedup(model.state_dict())
    names_of: dict[str, list[str]] = {k: [k] for k in own}
    for alias, canon in own_aliases.items():
        names_of[canon].append(alias)
    in_proj = {f"{k}.weight" for k in in_proj_keys}
    used: set[str] = set()
    new_state: dict[str, torch.Tensor] = {}
    for key, target in own.items():
        src_name = next(
            (n for n in names_of[key] if n in tensors or aliases.get(n) in tensors), None
        )
        if src_name is None:
            report.missing.append(key)
            continue
        src_key = src_name if src_name in tensors else aliases[src_name]
        used.add(src_key)
        report.sources[key] = src_key
        src = tensors[src_key]
        if tuple(src.shape) == tuple(target.shape):
            new_state[key] = src
            report.loaded.append(key)
        elif (
            set(names_of[key]) & in_proj
            and src.ndim == target.ndim
            and src.shape[0] == target.shape[0]
            and src.shape[2:] == target.shape[2:]
        ):
            new_state[key] = adapt_in_proj(src, target.shape[1])
            report.adapted[key] = (tuple(src.shape), tuple(target.shape))
            report.loaded.append(key)
        else:
            report.mismatched[key] = (tuple(src.shape), tuple(target.shape))
    report.unexpected = [k for k in tensors if k not in used]
    with torch.no_grad():
        # every alias of a tensor is the same storage, so loading the first name fills them all
        model.load_state_dict(new_state, strict=False, assign=False)
    return report
