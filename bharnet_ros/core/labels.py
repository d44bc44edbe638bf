"""Class names and values as they go into messages: a label that every Action and a terminal can
carry, and a hostile file's values cut to one short line."""

from __future__ import annotations

from typing import Any

MAX_LABEL_LENGTH = 200  # a class name is published in every Action; it is a name, not a document


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: a hostile file's values go into one-line messages."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python converts to text
        return f"<{type(value).__name__} too large to show>"
    return shorten(text, limit)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked where it was cut."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def plain_label(value: Any) -> bool:
    """A class name that can go into every Action and a terminal: printable text of sane length."""
    return isinstance(value, str) and 0 < len(value) <= MAX_LABEL_LENGTH and value.isprintable()


def error_line(err: BaseException, limit: int = 200) -> str:
    """An exception's first line of text, cut to ``limit``; its class name where it has no text
    (a library's bare exception would otherwise leave an empty pair of brackets, or an IndexError)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return shorten(lines[0], limit) if lines else type(err).__name__
