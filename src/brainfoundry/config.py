"""Typed dataclass configs that round-trip to YAML, with `a.b=c` command-line overrides.

Defaults live in the dataclass, a YAML file overrides them, then `a.b=c` strings override that;
the resolved config is saved next to every output (`save_config`) so a run can be reproduced.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError

C = TypeVar("C")


def to_dict(cfg: Any) -> Any:
    """A plain-Python (YAML-safe) view of a dataclass tree."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


_BOOL_WORDS = {True: ("on", "yes", "true"), False: ("off", "no", "false")}


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Convert a YAML value to the annotated type, or raise a one-line ConfigError."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(tp, value, where)
    if origin is typing.Literal:
        if isinstance(value, bool):  # YAML 1.1 reads a bare off/no/on/yes as a boolean
            value = next((w for w in _BOOL_WORDS[value] if w in typing.get_args(tp)), value)
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):  # type: ignore[arg-type]
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)  # type: ignore[arg-type]
    if origin in (list, tuple):
        return _coerce_sequence(tp, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        args = typing.get_args(tp)
        vt = args[1] if args else Any
        return {k: _coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    return _coerce_scalar(tp, value, where)


def _coerce_union(tp: Any, value: Any, where: str) -> Any:
    """The first member of `A | B | None` the value fits."""
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    for a in args:
        if a is type(None):
            continue
        try:
            return _coerce(a, value, where)
        except ConfigError:
            continue
    raise ConfigError(f"{where}: {value!r} does not fit {tp}")


def _coerce_sequence(tp: Any, value: Any, where: str) -> Any:
    """list[T], tuple[T, ...] or a fixed tuple[A, B]; "a,b" on the command line is a list."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    inner = args[0] if args else Any
    out = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(out) if origin is tuple else out


def _coerce_scalar(tp: Any, value: Any, where: str) -> Any:
    """bool (true/false/yes/no/1/0), int, float, str and Path; anything else passes as is."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float, str):
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if tp in (int, float) and isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from None
    if tp is Path:
        return Path(value)
    return value


def from_dict(cls: type[C], data: dict[str, Any], where: str = "") -> C:
    """Build dataclass `cls` from a mapping, checking names and types; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {sorted(unknown)}; valid: {sorted(names)}"
        )
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def apply_overrides(cfg: C, overrides: list[str]) -> C:
    """Return a copy of `cfg` with `a.b=c` overrides applied (values parsed as YAML scalars)."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            if not isinstance(node, dict) or p not in node:
                raise ConfigError(f"override {item!r}: no config section {p!r}")
            node = node[p]
        free = _free_mapping(type(cfg), parts[:-1])  # e.g. model.kwargs: any key may be added
        if not isinstance(node, dict) or (parts[-1] not in node and not free):
            raise ConfigError(f"override {item!r}: no config key {key!r}")
        node[parts[-1]] = value
    return from_dict(type(cfg), data)


def _free_mapping(cls: Any, path: list[str]) -> bool:
    """Whether `path` names a `dict[...]` field (free-form options such as `model.kwargs`),
    where an override may add a key the defaults do not have."""
    tp: Any = cls
    for name in path:
        tp = _unwrap_optional(tp)
        if not (dataclasses.is_dataclass(tp) and isinstance(tp, type)):
            return False
        hints = typing.get_type_hints(tp)
        if name not in hints:
            return False
        tp = hints[name]
    return bool(path) and typing.get_origin(_unwrap_optional(tp)) is dict


def _unwrap_optional(tp: Any) -> Any:
    """`T | None` -> T (other unions and plain types pass through)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def load_config(
    cls: type[C],
    path: str | Path | list[str | Path | None] | None = None,
    overrides: list[str] | None = None,
) -> C:
    """Defaults ← YAML file(s), in order (later wins) ← `a.b=c` overrides."""
    data = to_dict(cls())
    paths = path if isinstance(path, list) else [path]
    for item in paths:
        if item is None:
            continue
        loaded = read_yaml_mapping(item, "config file", "expected a mapping at top level")
        data = _deep_merge(data, loaded or {})
    return apply_overrides(from_dict(cls, data), overrides or [])


def read_yaml_mapping(path: str | Path, what: str, not_mapping: str) -> dict | None:
    """A YAML file's top-level mapping (None for an empty file); a missing file, bad YAML or a
    non-mapping is one ConfigError naming the file (`what`: "config file", "task spec", ...)."""
    p = Path(path)
    try:
        loaded = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: {what} not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e.__class__.__name__})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{p}: {not_mapping}")
    return loaded


def _deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config atomically."""
    from .io.atomic import atomic_write_text

    atomic_write_text(Path(path), dump_yaml(cfg))
