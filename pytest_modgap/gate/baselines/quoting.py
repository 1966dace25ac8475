"""How baseline errors quote values from a file: cut short, so that no message grows with the file
(or expands what it points to)."""

from __future__ import annotations

import reprlib
from collections.abc import Iterator, Sequence
from typing import Any

SHORT_LIMIT = 60
"""Characters of a value's repr that an error message quotes at most."""


def _short_repr() -> reprlib.Repr:
    """A reprlib.Repr that stops early: a huge value costs no more than a small one to quote."""
    limited = reprlib.Repr()
    limited.maxlevel = 2
    limited.maxdict = limited.maxlist = limited.maxtuple = limited.maxset = 4
    limited.maxstring = limited.maxother = limited.maxlong = SHORT_LIMIT
    return limited


_REPR = _short_repr()


def short(value: Any, limit: int = SHORT_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with ``...``: how every baseline error quotes a
    value from the file, so a message never grows with the file (or expands what it points to)."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int beyond Python's int-to-text digit limit
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(values: Iterator[Any] | Sequence[Any], most: int = 8) -> str:
    """Up to ``most`` values quoted with ``short`` (text without quotes), then ``and N more``."""
    listed = [
        value
        if isinstance(value, str) and len(value) <= 40 and value.isprintable()
        else short(value, 40)
        for value in values
    ]
    shown = ", ".join(listed[:most])
    return shown if len(listed) <= most else f"{shown} and {len(listed) - most} more"


def _clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters: PyYAML's problem texts may quote the file."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
