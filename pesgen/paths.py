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
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import Problem
from .mapping import Binding, path_parts

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

    def findings(self, origin: str, problems: list[Problem]) -> tuple[list[Problem],
                                                                       list[tuple[str, str]]]:
        """(problems, notes as (origin, detail)) for the bindings no invoice answered."""
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
            text = (f"{bnd.key} reads '{bnd.text}', which no invoice of the run has: no key "
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
