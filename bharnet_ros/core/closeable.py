"""A base for objects that hold a native resource (a decoder, a MediaPipe graph, a bag file)."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

T = TypeVar("T", bound="Closeable")


class Closeable:
    """``with`` support for a class with ``close()``: the resource is freed however the block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: T) -> T:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
