"""A run's policy notes, packed as they come: the form the run's record keeps them in
(``notes_z``: a JSON list, compressed, ``store.pack_notes``), with a count per policy.

A run of 100 000 invoices makes some 250 000 notes (the benchmark's civility and
transliterate notes, 2.4 an invoice); held as objects they were ~0.37 MiB per 1 000
invoices of the export's peak. Packed, they are a few bytes each; reading them back
(the run summary, ``runs show``) unpacks them one at a time.
"""

from __future__ import annotations

import base64
import json
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from functools import cache
from itertools import chain, islice
from json.encoder import encode_basestring  # json.dumps' for a text (not ASCII-escaped)
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def _default(o: Any) -> Any:
    if isinstance(o, (Decimal, date)):
        return str(o)
    raise TypeError(type(o))


# as a run's record keeps its JSON (``pack_json``): sorted keys, not ASCII-escaped
_encode = json.JSONEncoder(default=_default, ensure_ascii=False, sort_keys=True).encode


def pack_json(obj: Any) -> str:
    """``obj`` as a run's record keeps it in JSON (its validation, its policies, each
    note): sorted keys, not ASCII-escaped, a ``Decimal`` or a date as its text."""
    return _encode(obj)


def _texts_of(notes: list[Any]) -> list[bytes]:
    """Each note's JSON (its dataclass fields), as the record keeps it: what ``_encode``
    writes, made directly when every field is a text (json.dumps costs 2 µs a note, a
    run of 100 000 invoices has some 250 000). Notes of one class whose fields are all
    texts (a batch of ``PolicyNote``) are written a batch at a time, without a Python
    step per note (``_batch_texts``); any other note one at a time (``_note_text``)."""
    if notes and len(set(map(type, notes))) == 1:
        texts = _batch_texts(notes)
        if texts is not None:
            return texts
    return [_note_text(n).encode("utf-8") for n in notes]


def _note_text(note: DataclassInstance) -> str:
    """One note's JSON, as ``_encode`` writes it."""
    names, keys = _fields(type(note))
    values = [getattr(note, name) for name in names]
    if set(map(type, values)) == _TEXT:
        return "{" + ", ".join(map(str.__add__, keys, map(encode_basestring, values))) + "}"
    return _encode(dict(zip(names, values, strict=True)))


def _batch_texts(notes: list[DataclassInstance]) -> list[bytes] | None:
    """The JSON of notes of one class, each field a text, as ``_note_text`` writes each:
    their fields read and escaped in one pass over the batch; None if a field is not a
    text (``encode_basestring`` refuses it; a subclass of ``str`` it escapes as json
    does), then each note is written alone."""
    names, template = _template(type(notes[0]))
    if not names:
        return None
    fields = map(attrgetter(*names), notes)
    try:
        escaped = iter(list(map(encode_basestring,
                                chain.from_iterable(fields) if len(names) > 1 else fields)))
    except TypeError:
        return None
    notes_fields = zip(*[escaped] * len(names), strict=True)
    return list(map(str.encode, map(template.__mod__, notes_fields)))


_TEXT = {str}


@cache
def _fields(kind: type[DataclassInstance]) -> tuple[list[str], list[str]]:
    """A dataclass's field names in the order ``_encode`` writes them (sorted), and each
    as it writes it before its value (``"name": ``)."""
    names = sorted(kind.__dataclass_fields__)
    return names, [encode_basestring(name) + ": " for name in names]


@cache
def _template(kind: type[DataclassInstance]) -> tuple[list[str], str]:
    """A dataclass's field names (sorted) and the ``%`` template of its JSON when every
    field is a text: ``{"a": %s, "b": %s}``, each ``%s`` the field's escaped text."""
    names, keys = _fields(kind)
    return names, "{" + ", ".join(key.replace("%", "%%") + "%s" for key in keys) + "}"


_policy = attrgetter("policy")


class Notes:
    """Policy notes (dataclasses of one class, ``kind``) in the order they were added,
    packed a batch at a time: ``append``/``extend``, ``len``, iteration (the same
    notes, made again from their packed form) and slicing from an index, ``counts`` (per
    policy) and ``packed`` (``notes_z``, what ``store.pack_notes`` makes of a list)."""

    BATCH = 1024

    def __init__(self, kind: type, notes: Iterable[Any] = ()) -> None:
        self.kind = kind
        self._packer = zlib.compressobj(6)
        self._parts: list[bytes] = []  # the compressed stream so far
        self._sizes = array("I")  # each packed note's JSON length in bytes
        self._pending: list[Any] = []  # not packed yet
        self._counts: Counter[str] = Counter()
        self.extend(notes)

    def append(self, note: Any) -> None:
        self._pending.append(note)
        if len(self._pending) >= self.BATCH:
            self._pack()

    def extend(self, notes: Iterable[Any]) -> None:
        pending = self._pending
        pending.extend(notes)
        if len(pending) >= self.BATCH:
            self._pack()

    def _pack(self) -> None:
        """Pack the pending notes (counted per policy as they are packed: ``counts``
        counts the pending ones when asked)."""
        pending = self._pending
        texts = _texts_of(pending)
        self._counts.update(map(_policy, pending))
        self._parts.append(self._packer.compress((b"," if self._sizes else b"[")
                                                 + b",".join(texts)))
        self._sizes.extend(map(len, texts))
        pending.clear()

    def __len__(self) -> int:
        return len(self._sizes) + len(self._pending)

    def __bool__(self) -> bool:
        return len(self) > 0

    def counts(self) -> Counter[str]:
        """How many notes of each policy."""
        counts = Counter(self._counts)
        counts.update(map(_policy, self._pending))
        return counts

    def _stream(self) -> Iterator[bytes]:
        """The compressed stream of the notes packed so far, finished (on a copy)."""
        yield from self._parts
        yield self._packer.copy().flush()

    def _texts(self) -> Iterator[bytes]:
        """Each packed note's JSON, in order, unpacked a part at a time."""
        if not self._sizes:
            return
        unpacker = zlib.decompressobj()
        parts = self._stream()
        buffer = bytearray()
        at = 1  # past '[', then past each ','
        for size in self._sizes:
            while len(buffer) < at + size:
                buffer += unpacker.decompress(next(parts))
            yield bytes(buffer[at:at + size])
            del buffer[:at + size]
            at = 1

    def __iter__(self) -> Iterator[Any]:
        kind = self.kind
        for text in self._texts():
            yield kind(**json.loads(text))
        yield from list(self._pending)

    def __getitem__(self, index: slice) -> list[Any]:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("Notes take a slice (start:stop) only")
        return list(islice(self, index.start, index.stop))

    def packed(self) -> str:
        """The notes as the run's record keeps them (``notes_z``): the JSON list
        compressed, in base64; the same text ``store.pack_notes`` makes of them one at a
        time."""
        packer = self._packer.copy()
        parts = list(self._parts)
        if self._pending:
            parts.append(packer.compress((b"," if self._sizes else b"[")
                                         + b",".join(_texts_of(self._pending))))
        parts.append(packer.compress(b"]" if len(self) else b"[]"))
        parts.append(packer.flush())
        return base64.b64encode(b"".join(parts)).decode("ascii")
