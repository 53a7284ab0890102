"""Text from outside (an acknowledgement's libellés, a PayFiP answer, an XML's or a YAML
file's values) made fit for a terminal, a message or a log line.

A control character (C0, DEL, C1) or a bidirectional control is shown as a visible
escape (``\\x9b``, ``\\u202e``), so a file cannot move the cursor, clear the screen or
reverse the text around it; a long value is cut, saying so: ``… (N characters)``.
What is stored (the state store) keeps the values exact: only what is shown changes.
"""

from __future__ import annotations

import re
from typing import Any

# C0 (tab and newline too: a value shown on one line stays on it), DEL, C1; the
# bidirectional marks, embeddings, overrides and isolates; the line and paragraph
# separators
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                     "\u2028\u2029]")
# what a message shows of one value at most
LIMIT = 200


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """``text`` with each control character as a visible escape; its length unbounded."""
    return _UNSAFE.sub(_escape, text)


def shown(value: Any, limit: int = LIMIT) -> str:
    """``value`` as text fit for a message: control characters escaped, at most
    ``limit`` characters of it, then ``… (N characters)`` when it is longer."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return escaped(text)
    return f"{escaped(text[:limit])}… ({len(text)} characters)"


def shown_repr(value: Any, limit: int = LIMIT) -> str:
    """``repr(value)`` for a message, bounded as ``shown``: a long string is quoted cut,
    then ``… (N characters)``."""
    if isinstance(value, str) and len(value) > limit:
        return f"{escaped(repr(value[:limit]))}… ({len(value)} characters)"
    return shown(repr(value), limit + 2)
