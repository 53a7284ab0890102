"""Load the school's billing export (JSON or CSV) as a stream of source invoices.

Each ``SourceInvoice`` keeps its origin (``file:row`` for CSV, ``file:$.path`` for
JSON) so that any later problem can point back at the record. Both loaders stream:
a 100 000-invoice export is never held in memory at once.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputDataError, Problem


@dataclass(slots=True)
class SourceInvoice:
    """One invoice as the school software exported it, before any mapping."""

    record: dict[str, Any]  # invoice-level values (the JSON object, or the first CSV row)
    lines: list[dict[str, Any]] | None  # CSV: one row per line; JSON: found by a binding path
    origin: str
    line_origins: list[str] = field(default_factory=list)
    key: str | None = None  # CSV grouping key value


@dataclass(frozen=True, slots=True)
class InputSpec:
    format: str  # "json" | "csv"
    records: str = "invoices"  # JSON: dotted path of the invoice array
    encoding: str = "utf-8"
    delimiter: str = ","  # CSV; "auto" sniffs it
    quotechar: str = '"'
    group_by: str | None = None  # CSV: column whose value identifies the invoice
    numbers: str = "auto"
    dates: str = "auto"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_invoices(path: Path, spec: InputSpec) -> Iterator[SourceInvoice]:
    if not path.is_file():
        raise InputDataError(f"{path}: input file not found")
    if spec.format == "json":
        yield from _read_json(path, spec)
    elif spec.format == "csv":
        yield from _read_csv(path, spec)
    else:  # the mapping schema only allows the two
        raise InputDataError(f"unsupported input format {spec.format!r}")


# ---------------------------------------------------------------- JSON


def _read_json(path: Path, spec: InputSpec) -> Iterator[SourceInvoice]:
    import ijson

    shown = _display(path)
    prefix = f"{spec.records}.item" if spec.records else "item"
    json_path = "$." + spec.records if spec.records else "$"
    count = 0
    with path.open("rb") as handle:
        stream = _decoded(handle, spec.encoding)
        try:
            for index, item in enumerate(ijson.items(stream, prefix, use_float=False)):
                count += 1
                where = f"{shown}:{json_path}[{index}]"
                if not isinstance(item, dict):
                    raise InputDataError(
                        f"{where}: an invoice must be a JSON object",
                        [Problem("input.shape", "an invoice must be a JSON object", record=where)])
                yield SourceInvoice(record=item, lines=None, origin=where)
        except ijson.JSONError as exc:
            raise InputDataError(f"{shown}: invalid JSON after {count} invoice(s): {exc}",
                                 [Problem("input.json", f"invalid JSON: {exc}", record=shown)]
                                 ) from None
    if count == 0:
        raise InputDataError(f"{shown}: no invoice found at {json_path}",
                             [Problem("input.empty", f"no invoice array at {json_path}",
                                      record=shown)])


def _decoded(handle: io.BufferedReader, encoding: str) -> Any:
    """ijson reads bytes as UTF-8; re-encode other encodings on the fly."""
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        head = handle.peek(3)[:3]
        if head == codecs.BOM_UTF8:
            handle.read(3)
        return handle
    return _Recoder(io.TextIOWrapper(handle, encoding=encoding, newline=""))


class _Recoder(io.RawIOBase):
    def __init__(self, text: io.TextIOWrapper):
        self._text = text
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = self._text.read(65536)
            if not chunk:
                break
            self._buffer += chunk.encode("utf-8")
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


# ---------------------------------------------------------------- CSV


def _undecodable(path: Path, encoding: str) -> tuple[str, str]:
    """(':line', 'byte 0x92 at column 7') of the first byte ``encoding`` cannot decode:
    the decoder's own offset counts from the start of a buffer, not of the file."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                at = min(exc.start, len(raw) - 1)
                return f":{number}", f"byte 0x{raw[at]:02X}, byte {at + 1} of the line"
    return "", "undecodable bytes"


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with path.open(encoding=encoding, newline="") as handle:
        sample = handle.read(65536)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        raise InputDataError(f"{path}: cannot detect the CSV delimiter; set input.delimiter"
                             ) from None


def _read_csv(path: Path, spec: InputSpec) -> Iterator[SourceInvoice]:
    shown = _display(path)
    delimiter = spec.delimiter
    if delimiter == "auto":
        delimiter = _sniff_delimiter(path, spec.encoding)
    if not spec.group_by:
        raise InputDataError("CSV input needs input.group_by (the invoice number column)")
    try:
        handle = path.open(encoding=spec.encoding, newline="")
        reader = csv.reader(handle, delimiter=delimiter, quotechar=spec.quotechar, strict=True)
        with handle:
            try:
                header = next(reader)
            except StopIteration:
                raise InputDataError(f"{shown}: empty CSV file", [
                    Problem("input.empty", "empty CSV file", record=shown)]) from None
            if header and header[0].startswith("\ufeff"):
                header[0] = header[0][1:]
            header = [h.strip() for h in header]
            if spec.group_by not in header:
                raise InputDataError(
                    f"{shown}:1: group_by column '{spec.group_by}' is not in the header",
                    [Problem("input.column", f"no column '{spec.group_by}'", record=f"{shown}:1")])
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                raise InputDataError(f"{shown}:1: duplicate column(s) {', '.join(dupes)}", [
                    Problem("input.column", f"duplicate column(s) {', '.join(dupes)}",
                            record=f"{shown}:1")])
            width = len(header)
            key_index = header.index(spec.group_by)
            rows = 0
            current: SourceInvoice | None = None
            last_line = reader.line_num
            for row in reader:
                start = last_line + 1
                last_line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                where = f"{shown}:{start}"
                if len(row) != width:
                    raise InputDataError(
                        f"{where}: {len(row)} field(s), the header has {width}",
                        [Problem("input.csv-row", f"{len(row)} fields, header has {width}",
                                 record=where)])
                values = dict(zip(header, row, strict=True))
                key = row[key_index].strip()
                if current is not None and key == current.key:
                    assert current.lines is not None
                    current.lines.append(values)
                    current.line_origins.append(where)
                    continue
                if current is not None:
                    yield current
                # A key met again later is yielded as a new invoice: the duplicate
                # invoice check downstream reports it (rows must be contiguous).
                rows += 1
                current = SourceInvoice(record=values, lines=[values], origin=where,
                                        line_origins=[where], key=key)
            if current is not None:
                yield current
            elif not rows:
                raise InputDataError(f"{shown}: no data row", [
                    Problem("input.empty", "no data row", record=shown)])
    except UnicodeDecodeError:
        where, detail = _undecodable(path, spec.encoding)
        raise InputDataError(
            f"{shown}{where}: not valid {spec.encoding} ({detail}); set input.encoding; "
            "nothing written",
            [Problem("input.encoding", f"not valid {spec.encoding}: {detail}",
                     record=f"{shown}{where}")]) from None
    except csv.Error as exc:
        raise InputDataError(f"{shown}:{reader.line_num}: CSV error: {exc}",
                             [Problem("input.csv", str(exc), record=f"{shown}:{reader.line_num}")]
                             ) from None
