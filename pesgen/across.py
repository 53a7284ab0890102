"""Checks between the flat files of one bordereau (format.yaml ``across_files``, rule
``layout.across``).

One job: a format whose files refer to each other (e.magnus: a detail line of
WTAMC001AS names its piece by RefIdEcriture, the IDEcriture of WTAMC001) declares it,
and pesgen checks that every key a file's lines give is one of the other file's, and,
with ``sum``/``in_sum``, that each key's amounts agree in both files (a piece's detail
lines sum to its imputations). Each file is checked against its own layout first
(``layout.validate_file``); this reads the values those checks read
(``layout.line_values``), one file at a time, keeping one entry per key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import Problem, shown_value
from .layout import Layout, line_values, load_layout


@dataclass(frozen=True)
class Across:
    """One entry of ``across_files``: templates name the files."""
    file: str
    key: str
    into: str
    into_key: str
    sum: str | None
    into_sum: str | None
    where: str  # format.yaml:line: across_files[i]


def compile_across(data: list[dict[str, Any]], layouts: dict[str, Layout],
                   at: Callable[[int, str], str]) -> tuple[tuple[Across, ...], list[Problem]]:
    """The ``across_files`` entries of format.yaml, each file and column checked against
    the layouts of the files named (``layouts``: by template; a file with an XSD has
    none); ``at(i, key)`` names format.yaml's line of a key."""
    checks, problems = [], []
    for i, entry in enumerate(data):
        bad = False
        for side, key, total in (("file", "key", "sum"), ("in", "in_key", "in_sum")):
            layout = layouts.get(entry[side])
            if layout is None:
                problems.append(Problem(
                    "format.across", f"'{entry[side]}' is no file of the bundle with a layout "
                    f"(files[].template: {', '.join(layouts) or 'none has a layout'})",
                    mapping=at(i, side)))
                bad = True
                continue
            for name, numeric in ((entry[key], False), (entry.get(total), True)):
                if name is None:
                    continue
                columns = [c for r in layout.records for c in r.columns if c.name == name]
                if not columns:
                    problems.append(Problem(
                        "format.across", f"layout {layout.name} has no column '{name}'",
                        mapping=at(i, key if not numeric else total)))
                    bad = True
                elif numeric and any(c.type not in ("integer", "decimal") for c in columns):
                    problems.append(Problem(
                        "format.across", f"column '{name}' of layout {layout.name} is summed: "
                        "it must be an integer or decimal column", mapping=at(i, total)))
                    bad = True
        if not bad:
            checks.append(Across(entry["file"], entry["key"], entry["in"], entry["in_key"],
                                 entry.get("sum"), entry.get("in_sum"), at(i, "file")))
    return tuple(checks), problems


def check_across(checks: tuple[Across, ...], files: dict[str, tuple[Path, str, Path]],
                 encoding: str) -> list[Problem]:
    """Every way the written ``files`` break ``checks``. ``files``: by template, the
    file's path, the name problems carry and its layout (a file not written, skipped
    when empty, has no lines)."""
    problems: list[Problem] = []
    for check in checks:
        mine = _keyed(files.get(check.file), check.key, check.sum, encoding)
        theirs = _keyed(files.get(check.into), check.into_key, check.into_sum, encoding)
        name, into = _name(files, check.file), _name(files, check.into)
        for key, (line, _total) in mine.items():
            if key not in theirs:
                problems.append(Problem(
                    "layout.across", f"column {check.key}: {shown_value(key, True)} is no "
                    f"{check.into_key} of {into}", record=f"{name}:{line}"))
        if check.sum is None:
            continue
        for key, (line, total) in theirs.items():
            got = mine.get(key, (0, Decimal(0)))[1]
            if got != total:
                problems.append(Problem(
                    "layout.across", f"{check.into_key} {shown_value(key, True)}: its "
                    f"{check.into_sum} sum to {_amount(total)}, the {check.sum} of its lines "
                    f"in {name} to {_amount(got)}", record=f"{into}:{line}"))
    return problems


def _amount(value: Decimal) -> str:
    """An amount as the problems show it: with two decimals unless it has more."""
    cents = value.quantize(Decimal("0.01"))
    return str(cents) if cents == value else str(value.normalize())


def _name(files: dict[str, tuple[Path, str, Path]], template: str) -> str:
    found = files.get(template)
    return found[1] if found is not None else template


def _keyed(found: tuple[Path, str, Path] | None, key: str, total: str | None,
           encoding: str) -> dict[str, tuple[int, Decimal]]:
    """Per key of a file: the line it is first seen on, the sum of ``total`` over its
    lines (a value the layout checks refuse counts 0: its problem is said there)."""
    out: dict[str, tuple[int, Decimal]] = {}
    if found is None:
        return out
    path, _name, layout_path = found
    layout = load_layout(layout_path)
    with path.open("r", encoding=layout.encoding or encoding, errors="replace",
                   newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1 and layout.header:
                continue
            values = {c.name: (c, v) for c, v in line_values(layout, line.rstrip("\r\n"))}
            if key not in values or values[key][1] == "":
                continue
            k = values[key][1]
            amount = Decimal(0)
            if total is not None and total in values:
                col, text = values[total]
                try:
                    amount = Decimal(text.replace(col.decimal_separator, ".")) if text else \
                        Decimal(0)
                except InvalidOperation:
                    amount = Decimal(0)
                if not amount.is_finite():  # 'NaN', 'Infinity': the layout refuses them
                    amount = Decimal(0)
            first, before = out.get(k, (number, Decimal(0)))
            out[k] = first, before + amount
    return out
