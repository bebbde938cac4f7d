"""One-line error messages: what the CLI, the GUI and batch logs show for an exception."""
from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


def first_line(exc: BaseException) -> str:
    """An exception's first message line without terminal colour codes, or its type name when empty."""
    text = strip_ansi(str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
