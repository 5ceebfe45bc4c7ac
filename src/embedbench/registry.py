"""One generic registry: type-checked entries, duplicate names refused, "did you mean" on a miss."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from embedbench.errors import EmbedbenchError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, base: type) -> None:
        self.kind = kind
        self._base = base
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if not isinstance(item, self._base):
            raise TypeError(f"{self.kind} {name!r} must be a {self._base.__name__}, got {type(item).__name__}")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise EmbedbenchError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._items))})"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())
