"""Checks between the flat files of one bordereau (format.yaml ``across_files``, rule
``layout.across``).

One job: a format whose files refer to each other (e.magnus: a detail line of
WTAMC001AS names its piece by RefIdEcriture, the IDEcriture of WTAMC001) declares it,
and pesgen checks that every key a file's lines give is one of the other file's, and,
with ``sum``/``in_sum``, that each key's amounts agree in both files (a piece's detail
lines sum to its imputations). Each file is checked against its own layout first
(``layout.validate_file``); this reads the values those checks read
(``layout.record_values``), one file at a time, keeping one entry per key.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import Problem, shown_value
from .layout import Column, Layout, RecordType, load_layout, record_type, record_values


@dataclass(frozen=True)
class Across:
    """One entry of ``across_files``: templates name the files."""
    file: str
    key: str
    into: str
    into_key: str
    sum: str | None
    into_sum: str | None


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
                                 entry.get("sum"), entry.get("in_sum")))
    return tuple(checks), problems


def check_across(checks: tuple[Across, ...], files: dict[str, tuple[Path, str, Path]],
                 encoding: str) -> list[Problem]:
    """Every way the written ``files`` break ``checks``. ``files``: by template, the
    file's path, the name problems carry and its layout (a file not written, skipped
    when empty, has no lines). Each file is read once."""
    wanted: dict[str, set[tuple[str, str | None]]] = {}
    for check in checks:
        wanted.setdefault(check.file, set()).add((check.key, check.sum))
        wanted.setdefault(check.into, set()).add((check.into_key, check.into_sum))
    keyed = {template: _keyed(files.get(template), sorted(specs, key=str), encoding)
             for template, specs in wanted.items()}
    problems: list[Problem] = []
    for check in checks:
        mine = keyed[check.file][check.key, check.sum]
        theirs = keyed[check.into][check.into_key, check.into_sum]
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


def _keyed(found: tuple[Path, str, Path] | None, specs: list[tuple[str, str | None]],
           encoding: str) -> dict[tuple[str, str | None], dict[str, tuple[int, Decimal]]]:
    """For each (key column, amount column or None) of ``specs``: per key of the file,
    the line it is first seen on and the sum of the amount over its lines (a value the
    layout checks refuse counts 0: its problem is said there). One pass over the file;
    a CSV file is split by the csv module (the file passed its layout's quoting)."""
    out: dict[tuple[str, str | None], dict[str, tuple[int, Decimal]]] = {
        spec: {} for spec in specs}
    if found is None:
        return out
    path, _name, layout_path = found
    layout = load_layout(layout_path)
    # per record type: for each spec, the key's and the amount's column (None: the
    # record type lacks the key column)
    places: dict[str, list[tuple[Any, Column, Column | None] | None]] = {}
    for record in layout.records:
        by_name = {c.name: c for c in record.columns}
        places[record.type] = [
            (spec, by_name[spec[0]], by_name.get(spec[1]) if spec[1] else None)
            if spec[0] in by_name else None for spec in specs]
    with path.open("r", encoding=layout.encoding or encoding, errors="replace",
                   newline="") as handle:
        for number, (rec, values) in enumerate(_records(layout, handle), start=1):
            if rec is None or (number == 1 and layout.header):
                continue
            for place in places[rec.type]:
                if place is None:
                    continue
                spec, key_col, sum_col = place
                if key_col.index > len(values) or values[key_col.index - 1] == "":
                    continue
                key = values[key_col.index - 1]
                amount = _number(values, sum_col)
                table = out[spec]
                first, before = table.get(key, (number, Decimal(0)))
                table[key] = first, before + amount
    return out


def _records(layout: Layout, handle: Any) -> Iterator[tuple[RecordType | None, list[str]]]:
    """Each line's record type (None: not one the layout knows, or an empty line) and
    values."""
    if layout.kind == "csv":
        for values in csv.reader(handle, delimiter=layout.delimiter,
                                 quotechar=layout.quote_char, doublequote=True, strict=False):
            yield (record_type(layout, values, "")[0] if values else None), values
        return
    for line in handle:
        yield record_values(layout, line.rstrip("\r\n"))


def _number(values: list[str], col: Column | None) -> Decimal:
    if col is None or col.index > len(values) or not values[col.index - 1]:
        return Decimal(0)
    try:
        amount = Decimal(values[col.index - 1].replace(col.decimal_separator, "."))
    except InvalidOperation:
        return Decimal(0)
    return amount if amount.is_finite() else Decimal(0)  # 'NaN': the layout refuses it
