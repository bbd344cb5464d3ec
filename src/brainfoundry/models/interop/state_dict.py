"""Import the weights people have: a plain PyTorch state dict, a Lightning `.ckpt` (the FOMO25
baseline's, asparagus') or an nnssl checkpoint, into a run folder `--init` accepts.

`torch.load(weights_only=True)` only (`safe_load`). The tensors are found in the file (the dict
itself, or its `state_dict` / `network_weights` / `model` entry), their names are read through
the wrapper prefix and key layout that name most of the backbone's tensors (`key_match`), the
input and output channels are read off the tensors that carry them, and `--size auto` picks the
family's size that loads the most tensors with their exact shapes. `RUN/import_report.json`
maps every loaded tensor to the source key it came from and lists what did not load, and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...errors import ConfigError, InputError
from ...io.atomic import atomic_write_text
from ..backbones import BACKBONES, Backbone, create_backbone
from ..backbones import primus as primus_mod
from ..backbones import resenc as resenc_mod
from ..card import ModelCard
from ..checkpoint import save_model
from ..export import sha256_file
from ..loading import LoadReport, dedup, load_state
from .key_match import KeyMatch, best_match
from .layouts import recognise
from .lightning import is_lightning, lightning_info
from .safe_load import load_weights_only

REPORT = "import_report.json"
SIZES: dict[str, dict[str, Any]] = {"resenc": resenc_mod.SIZES, "primus": primus_mod.SIZES}
# where checkpoints keep their tensors when the file is not a bare state dict, in this order
CONTAINERS = ("state_dict", "network_weights", "model_state_dict", "model", "net", "network",
              "weights")  # fmt: skip


@dataclass
class Source:
    """The tensors of a weights file and what else the file said about them."""

    path: Path
    tensors: dict[str, torch.Tensor]
    kind: str  # "state dict", "lightning", "nnssl", "safetensors"
    container: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    placeholders: list[str] = field(default_factory=list)


@dataclass
class ImportOptions:
    """What `brainfoundry import` is told about the network the weights belong to."""

    backbone: str
    size: str = "auto"
    prefix: str | None = None  # wrapper prefix to strip (default: the one naming most tensors)
    layout: str | None = None  # a KEY_LAYOUTS name (default: the one naming most tensors)
    in_channels: int | None = None  # default: read off the input projection's weight
    out_channels: int | None = None  # default: read off the output layer's weight
    modalities: list[str] = field(default_factory=list)
    spacing: list[float] | None = None


def read_source(path: str | Path) -> Source:
    """A weights file's tensors: safetensors, or a weights-only torch pickle."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from ..checkpoint import read_weights

        tensors, aliases = read_weights(path)
        return Source(
            path, {**tensors, **{a: tensors[c] for a, c in aliases.items()}}, "safetensors"
        )
    obj, placeholders = load_weights_only(path)
    kind = "lightning" if is_lightning(obj) else "state dict"
    info = lightning_info(obj) if kind == "lightning" else {}
    if isinstance(obj, dict) and "nnssl_adaptation_plan" in obj:
        kind = "nnssl"
    tensors, container = _tensors_in(obj, path)
    return Source(path, tensors, kind, container, info, placeholders)


def _tensors_in(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The flat {name: tensor} dict of a loaded file, and the entry it was found under."""
    if isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        return dict(obj), None
    if isinstance(obj, dict):
        for key in CONTAINERS:
            inner = obj.get(key)
            if isinstance(inner, dict) and any(torch.is_tensor(v) for v in inner.values()):
                return {k: v for k, v in inner.items() if torch.is_tensor(v)}, key
        top = ", ".join(map(str, list(obj)[:12]))
        raise InputError(path, f"holds no state dict (top-level keys: {top}); expected tensors "
                         f"or one of the entries {', '.join(CONTAINERS)}")  # fmt: skip
    raise InputError(path, f"holds a {type(obj).__name__}, not a state dict of tensors")


def channel_dims(family: str, size: str) -> tuple[dict[str, int], dict[str, int]]:
    """({key: dim} of tensors sized by the input channels, the same for the output channels),
    found by building the network with 1 and 2 channels on the meta device: the dims that go
    from 1 to 2 (widths that merely scale with the channels, as in Primus' decoder, do not)."""
    shapes: dict[tuple[int, int], dict[str, tuple[int, ...]]] = {}
    with torch.device("meta"):
        for io in ((1, 1), (2, 1), (1, 2)):
            model = create_backbone(family, io[0], io[1], size)
            shapes[io] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    base = shapes[(1, 1)]

    def differ(other: dict[str, tuple[int, ...]]) -> dict[str, int]:
        dims = {}
        for k, s in base.items():
            hit = [i for i, (a, b) in enumerate(zip(s, other[k])) if (a, b) == (1, 2)]
            if hit and len(s) == len(other[k]):
                dims[k] = hit[0]
        return dims

    return differ(shapes[(2, 1)]), differ(shapes[(1, 2)])


def _read_channels(dims: dict[str, int], tensors: dict[str, torch.Tensor]) -> int | None:
    for key, dim in dims.items():
        t = tensors.get(key)
        if t is not None and t.ndim > dim:
            return int(t.shape[dim])
    return None


@dataclass
class _Fit:
    """A size read against the weights: its key match, channels and exact-shape count."""

    size: str
    match: KeyMatch
    in_channels: int
    out_channels: int
    exact: int


def _fit(opts: ImportOptions, size: str, tensors: dict[str, torch.Tensor]) -> _Fit:
    with torch.device("meta"):
        probe = create_backbone(opts.backbone, 1, 1, size)
    match = best_match(tensors, set(probe.state_dict()), opts.prefix, opts.layout)
    in_dims, out_dims = channel_dims(opts.backbone, size)
    c_in = opts.in_channels or _read_channels(in_dims, match.tensors) or 1
    c_out = opts.out_channels or _read_channels(out_dims, match.tensors) or 1
    with torch.device("meta"):
        sized = create_backbone(opts.backbone, c_in, c_out, size).state_dict()
    exact = sum(
        1 for k, t in match.tensors.items() if k in sized and tuple(t.shape) == sized[k].shape
    )
    return _Fit(size, match, c_in, c_out, exact)


def choose_fit(opts: ImportOptions, tensors: dict[str, torch.Tensor]) -> _Fit:
    """The requested size, or with `auto` the family's size loading the most exact tensors."""
    BACKBONES.get(opts.backbone)  # an unknown family fails here, naming the known ones
    if opts.size != "auto":
        return _fit(opts, opts.size, tensors)
    if opts.backbone not in SIZES:
        raise ConfigError(f"--size auto knows the sizes of {', '.join(SIZES)}; give --size")
    fits = [_fit(opts, s, tensors) for s in SIZES[opts.backbone]]
    return max(fits, key=lambda f: f.exact)  # the first (smallest) size wins a tie


def import_state_dict(
    path: str | Path, out_run: str | Path, opts: ImportOptions
) -> tuple[Backbone, ModelCard, LoadReport, dict[str, Any]]:
    """Write `out_run` (model.safetensors + card.json + import_report.json) from a weights file.

    Returns (model, card, load report, the report record). Nothing matching is an error that
    names the architecture when it is a known foreign one (e.g. the FOMO25 baseline's U-Net)."""
    src = read_source(path)
    unique, aliases = dedup(src.tensors)
    fit = choose_fit(opts, unique)
    torch.manual_seed(0)  # whatever does not load keeps a reproducible initialisation
    model = create_backbone(opts.backbone, fit.in_channels, fit.out_channels, fit.size)
    report = load_state(model, fit.match.tensors, None, model.in_proj_keys)
    record = import_record(src, fit, report, aliases, model)
    if not report.loaded:
        known = recognise(list(src.tensors))
        hint = f"these weights are {known}" if known else "check --backbone / --layout / --prefix"
        raise ConfigError(f"{src.path}: no tensor matched a {opts.backbone} ({fit.size}): {hint}")
    card = import_card(model, opts, src, record)
    out_run = Path(out_run)
    save_model(out_run, model, card)
    atomic_write_text(out_run / REPORT, json.dumps(record, indent=2) + "\n")
    return model, card, report, record


def import_card(model: Backbone, opts: ImportOptions, src: Source, record: dict) -> ModelCard:
    """The card of an imported backbone: what the user said of its input, and where it came
    from (no SSL method or preprocessing is guessed)."""
    try:
        return ModelCard.for_model(
            model,
            modalities=list(opts.modalities),
            spacing=opts.spacing,
            data_summary={"imported_from": src.path.name},
            extra={"imported_from": {k: record[k] for k in ("source", "kind", "sha256", "prefix",
                                                            "layout", "counts")}},
        )  # fmt: skip
    except ValueError as e:
        raise ConfigError(f"--modalities: {e}") from e


def import_record(
    src: Source, fit: _Fit, report: LoadReport, aliases: dict[str, str], model: Backbone
) -> dict[str, Any]:
    """The exact key mapping, as `import_report.json` stores it (source names, model names)."""
    origin = fit.match.origin
    mapping = {origin[report.sources[k]]: k for k in report.loaded}
    unexpected = [origin.get(k, k) for k in report.unexpected] + fit.match.ignored
    counts = {
        "source_tensors": len(src.tensors) - len(aliases),
        "model_tensors": len(report.loaded) + len(report.missing) + len(report.mismatched),
        "matched": len(report.loaded),
        "missing": len(report.missing),
        "unexpected": len(unexpected),
        "mismatched": len(report.mismatched),
        "adapted": len(report.adapted),
        "aliases": len(aliases),
    }
    mismatched = {
        origin[report.sources[k]]: {"model_key": k, "source_shape": list(a), "model_shape": list(b)}
        for k, (a, b) in report.mismatched.items()
    }
    return {
        "source": str(src.path.resolve()),
        "sha256": sha256_file(src.path),
        "kind": src.kind,
        "container": src.container,
        "prefix": fit.match.prefix,
        "layout": fit.match.layout,
        "arch": model.arch(),
        "counts": counts,
        "mapping": mapping,
        "missing": list(report.missing),
        "unexpected": unexpected,
        "mismatched": mismatched,
        "adapted": {k: [list(a), list(b)] for k, (a, b) in report.adapted.items()},
        "aliases": aliases,
        "placeholders": src.placeholders,
        "lightning": src.info,
    }


def summary(record: dict[str, Any]) -> str:
    """The lines `brainfoundry import` prints: counts first, then what did not load."""
    c, arch = record["counts"], record["arch"]
    lines = [
        f"{arch['name']} ({arch['size']}, {arch['kwargs']['in_channels']} in / "
        f"{arch['kwargs']['out_channels']} out) from a {record['kind']} "
        f"(prefix {record['prefix']!r}, layout {record['layout']})",
        f"matched {c['matched']} of {c['model_tensors']} model tensors; missing {c['missing']}; "
        f"unexpected {c['unexpected']}; shape-mismatched {c['mismatched']}",
    ]
    lines += [f"  missing {k} (kept init)" for k in record["missing"][:20]]
    lines += [f"  unexpected {k}" for k in record["unexpected"][:20]]
    for key, m in list(record["mismatched"].items())[:20]:
        lines.append(f"  shape mismatch {key} -> {m['model_key']}: {m['source_shape']} vs "
                     f"{m['model_shape']} (kept init)")  # fmt: skip
    if record["placeholders"]:
        lines.append(f"  stood in for pickled objects: {', '.join(record['placeholders'])}")
    return "\n".join(lines)
