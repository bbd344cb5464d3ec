"""One registry class for every pluggable kind (backbones, objectives, heads, tasks, metrics...).

Explicit `register / create / list` with a plain dict, as timm does; no package walking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories (classes or functions) of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str | None = None, *, override: bool = False) -> Callable:
        """Decorator `@REG.register("name")`; the name defaults to the lower-cased object name."""

        def deco(obj: Callable[..., T]) -> Callable[..., T]:
            key = (name or obj.__name__).lower()
            if key in self._items and not override:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> Callable[..., T]:
        key = name.lower()
        if key not in self._items:
            known = ", ".join(self.list()) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}")
        return self._items[key]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)

    def list(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._items

    def __len__(self) -> int:
        return len(self._items)
