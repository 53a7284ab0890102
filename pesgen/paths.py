"""JSON path bindings that match nothing: the JSON counterpart of the CSV column check.

A CSV binding naming a column the header lacks is refused on the first row. A JSON
path binding has no header to check against: a key may be left out of one invoice and
present in the next. So each path binding is watched until some invoice of the run holds
its key (present, whatever its value); a binding no invoice of the run answered is
reported at the end of the run, with the keys seen where its path stopped:

* refused (rule ``input.path``) when a key seen there is nearly the one it reads (a
  typo: ``complment`` for ``complement``, difflib ratio ≥ 0.8), or when the field is
  required (the run also lists it as missing);
* otherwise a note in the run summary (policy ``path``): the export simply holds no such
  key, and the optional field stays empty.

Once every binding has been answered (usually by the first invoices) watching costs
nothing more.

The reverse, for ``pesgen preview``: ``unread`` lists what the input holds that no
binding reads (a CSV column, a JSON key of the first invoice), the usual onboarding
slip being a column left unbound (``Pays``: every address then taken as French).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ._budget import RenderTimeout
from ._jinja import expression_environment
from .errors import Problem
from .expr import expression_paths
from .mapping import Binding, Mapping, path_parts

_MAX_KEYS = 50
_TYPO = 0.8  # difflib ratio from which a missing key is taken for a typo


def _level(base: str, parts: list[str | int]) -> str:
    return base + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


@dataclass
class _Watched:
    binding: Binding
    parts: list[str | int]
    per_line: bool  # read in each line of the invoice, not in the invoice
    depth: int = -1  # how far the path got, at best
    keys: dict[str, None] = field(default_factory=dict)  # keys seen where it stopped


class PathWatch:
    """Watches the JSON path bindings of a mapping over the invoices of one run."""

    def __init__(self, records: str, invoice_bindings: Iterable[Binding],
                 lines: Binding | None, line_bindings: Iterable[Binding],
                 rows: Callable[[dict[str, Any]], Any]) -> None:
        self._rows = rows  # invoice record -> its lines, as bindings.lines gives them
        base = "$." + records if records else "$"
        self._invoice_base = base + "[*]"
        self._line_base = (f"{self._invoice_base}.{lines.text}[*]"
                           if lines is not None and lines.kind == "path"
                           else f"{self._invoice_base} (bindings.lines)[*]")
        self.pending: list[_Watched] = []
        for bnd in invoice_bindings:
            if bnd.kind == "path":
                self.pending.append(_Watched(bnd, path_parts(bnd.text), False))
        if lines is not None and lines.kind == "path":
            self.pending.append(_Watched(lines, path_parts(lines.text), False))
        for bnd in line_bindings:
            if bnd.kind == "path":
                self.pending.append(_Watched(bnd, path_parts(bnd.text), True))
        self.read = 0

    def see(self, record: dict[str, Any]) -> None:
        """Mark the bindings this invoice answers."""
        self.read += 1
        rows: list[Any] | None = None
        still = []
        for watched in self.pending:
            if watched.per_line:
                if rows is None:
                    try:
                        got = self._rows(record)
                    except RenderTimeout:  # the time limit, raised once: the build's to say
                        raise
                    except Exception:  # noqa: BLE001 - the build reports a bad lines binding
                        got = None
                    rows = got if isinstance(got, list) else []
                found = any(self._reach(watched, row) for row in rows)
            else:
                found = self._reach(watched, record)
            if not found:
                still.append(watched)
        self.pending = still

    @staticmethod
    def _reach(watched: _Watched, node: Any) -> bool:
        for depth, part in enumerate(watched.parts):
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return False
                node = node[part]
                continue
            if not isinstance(node, dict):
                return False
            if part not in node:
                if depth > watched.depth:
                    watched.depth, watched.keys = depth, {}
                # the keys of the invoice before usually: nothing to add (an optional
                # binding no invoice answers is watched on every invoice of the run)
                if depth == watched.depth and len(watched.keys) < _MAX_KEYS and \
                        not node.keys() <= watched.keys.keys():
                    watched.keys.update(dict.fromkeys(k for k in node if isinstance(k, str)))
                return False
            node = node[part]
        return True

    def findings(self, origin: str, problems: list[Problem],
                 none_has: str = "no invoice of the run has"
                 ) -> tuple[list[Problem], list[tuple[str, str]]]:
        """(problems, notes as (origin, detail)) for the bindings no invoice answered
        (``none_has``: which invoices were read, as the message says it)."""
        if not self.read:
            return [], []
        required = {p.mapping for p in problems if p.rule == "input.required"}
        found: list[Problem] = []
        notes: list[tuple[str, str]] = []
        for watched in self.pending:
            bnd = watched.binding
            base = self._line_base if watched.per_line else self._invoice_base
            depth = max(watched.depth, 0)
            level = _level(base, watched.parts[:depth])
            missing = watched.parts[depth] if depth < len(watched.parts) else ""
            keys = list(watched.keys)
            close = difflib.get_close_matches(str(missing), keys, n=1)
            listed = ", ".join(keys[:15]) + (", …" if len(keys) > 15 else "")
            text = (f"{bnd.key} reads '{bnd.text}', which {none_has}: no key "
                    f"'{missing}' at {level}" + (f" (keys there: {listed})" if keys else ""))
            if close:
                text += f"; did you mean '{close[0]}'?"
            # a near-identical key (complment / complement) is a typo, refused; a merely
            # similar one (first_name / last_name, joint_payer / payer) is only a hint
            typo = difflib.get_close_matches(str(missing), keys, n=1, cutoff=_TYPO)
            if typo or bnd.where in required:
                found.append(Problem("input.path", text, record=origin, mapping=bnd.where))
            else:
                notes.append((bnd.where, f"{text}: the field stays empty"))
        return found, notes


_ANY = "*"  # any element of a list, in a path of ``unread``


def unread(mapping: Mapping, record: dict[str, Any]) -> list[str]:
    """What ``record`` (an input record: a CSV row, a JSON invoice) holds that no binding
    of ``mapping`` reads: CSV columns in header order, or the JSON paths of its values
    (``payer.address.country``, ``lines[*].discount``; the elements of a list as one).
    Read means named by a path, or by an expression through ``invoice`` and ``line``; a
    value read whole (``invoice.payer``) is read with all it holds."""
    return list(dict.fromkeys(name for name, _value in Unread(mapping).values(record)))


class Unread:
    """What no binding of a mapping reads, the bindings' reads worked out once (their
    expressions compiled) for the records of a run."""

    def __init__(self, mapping: Mapping) -> None:
        self.csv = mapping.input.format == "csv"
        groups = [b for fields in mapping.bindings.values() for b in fields.values()]
        self._columns = {c for b in [*groups, mapping.lines] for c in b.columns}
        self._columns.add(mapping.input.group_by or "")
        self._paths: list[tuple[str | int, ...]] = [] if self.csv else _read_paths(mapping)
        self._said: dict[tuple[str | int, ...], bool] = {}  # leaf -> read

    def values(self, record: dict[str, Any]) -> Iterable[tuple[str, Any]]:
        """(name, value) of each value of ``record`` no binding reads: a CSV column and
        its cell; a JSON path (``lines[*].discount``) and each value at it."""
        if self.csv:
            yield from ((c, v) for c, v in record.items() if c and c not in self._columns)
            return
        for leaf, value in _leaves(record, ()):
            read = self._said.get(leaf)
            if read is None:
                read = self._said[leaf] = self._is_read(leaf)
            if not read:
                yield _shown(leaf), value

    def _is_read(self, leaf: tuple[str | int, ...]) -> bool:
        # a path reads what is below it; one going below a leaf (a key holding null,
        # or another shape in this invoice) reads the leaf too
        return any(leaf[:len(p)] == p or p[:len(leaf)] == leaf for p in self._paths)


def _read_paths(mapping: Mapping) -> list[tuple[str | int, ...]]:
    """The JSON paths the bindings of ``mapping`` read, list indexes as ``_ANY``."""
    lines = mapping.lines
    line_base = (*_any(path_parts(lines.text)), _ANY) if lines.kind == "path" else None
    env = expression_environment()
    paths: list[tuple[str | int, ...]] = []
    for group, fields in mapping.bindings.items():
        for b in fields.values():
            if b.kind == "path":
                reads = [("line" if group == "line" else "invoice", tuple(path_parts(b.text)))]
            elif b.kind == "expr":
                reads = list(expression_paths(env, b.text))
            else:
                continue
            for root, parts in reads:
                if root == "invoice":
                    paths.append(_any(parts))
                elif line_base is not None:  # unknown when bindings.lines is an expression
                    paths.append((*line_base, *_any(parts)))
    if lines.kind == "expr":
        # the lines' own keys cannot be placed: what it reads counts as read whole
        paths += [_any(parts) for root, parts in expression_paths(env, lines.text)
                  if root == "invoice"]
    return paths


def _any(parts: Iterable[str | int]) -> tuple[str | int, ...]:
    return tuple(_ANY if isinstance(p, int) else p for p in parts)


def _leaves(node: Any, at: tuple[str | int, ...]) -> Iterable[tuple[tuple[str | int, ...], Any]]:
    """The path and value of every value in ``node`` that is no object, nor a list of
    objects (whose objects' values are taken, each at one path for all its elements:
    ``[*]``)."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*at, str(key)))
    elif isinstance(node, list) and any(isinstance(x, dict) for x in node):
        for item in node:
            if isinstance(item, dict):
                yield from _leaves(item, (*at, _ANY))
    elif at:
        yield at, node


def _shown(parts: tuple[str | int, ...]) -> str:
    return "".join("[*]" if p == _ANY else f".{p}" for p in parts).lstrip(".")
