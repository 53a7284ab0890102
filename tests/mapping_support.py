"""A copy of a mapping with some of its text replaced, for the tests that need a mapping
a little unlike a shipped one (a typo, another option, an expression under test)."""

from __future__ import annotations

from pathlib import Path


def mapping_copy(folder: Path, source: Path, *edits: tuple[str, str],
                 name: str | None = None) -> tuple[Path, list[int]]:
    """``source`` written to ``folder`` (as ``name``, else the source's own name) with each
    (old, new) of ``edits`` made in turn, each ``old`` found exactly once: the copy's path,
    and for each edit the 1-based line where its new text ends (``new``'s first line plus
    the line breaks it holds), counted when it is made."""
    text = source.read_text(encoding="utf-8")
    lines = []
    for old, new in edits:
        assert text.count(old) == 1, old
        at = text.index(old)
        text = text[:at] + new + text[at + len(old):]
        lines.append(text[:at].count("\n") + 1 + new.count("\n"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or source.name)
    path.write_text(text, encoding="utf-8")
    return path, lines
