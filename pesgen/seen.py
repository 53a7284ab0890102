"""The invoices a run has read, for its duplicate checks (an invoice number, a NumDette
met twice) and for naming an invoice's input record: held in arrays, not in dicts of
strings.

The dicts (number -> record, key -> number, NumDette -> (number, record)) held some
300 bytes per invoice: each key's text, each record's text ("file.json:$.invoices[12]",
the file's path repeated), each entry and tuple. Here an invoice is its number's text
(which its title's figures share), a slot in two hash tables of machine integers, and
its record as (the text before its last number, that number): ~60 bytes.

A table finds candidates by the key's ``hash``; every candidate is confirmed against
the exact key, made again from what is kept: a hash collision can never make a false
duplicate.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable

_hash = hash  # a key's (a test gives every key one hash: each candidate is confirmed)


_NO_FREE = (-1, -1)  # right even for a hash of -1: slot -1 is where its probe starts


class _Table:
    """An open-addressing hash table of (hash -> index) in arrays, linear probing;
    ``candidates`` gives every index stored under a hash, for the caller to confirm.
    ``SeenInvoices`` probes ``slots``/``hashes`` itself (a lookup per invoice: no
    generator), and ``add`` takes the free slot its last unsuccessful probe ended on
    (``free``) when the table has not changed since."""

    __slots__ = ("mask", "hashes", "slots", "used", "free")

    def __init__(self) -> None:
        self.mask = 15
        self.hashes = array("q", bytes(8 * 16))
        self.slots = array("I", bytes(4 * 16))  # index + 1; 0: empty (unsigned: faster)
        self.used = 0
        # (hash, slot) where the last probe for that hash met an empty slot: the first
        # empty slot on its path as long as that slot is still empty and the table the
        # same size (nothing is ever removed); reset when it grows
        self.free = _NO_FREE

    def candidates(self, h: int) -> list[int]:
        mask, slots, hashes = self.mask, self.slots, self.hashes
        found = []
        i = h & mask
        while slot := slots[i]:
            if hashes[i] == h:
                found.append(slot - 1)
            i = (i + 1) & mask
        self.free = (h, i)
        return found

    def add(self, h: int, index: int) -> None:
        used = self.used = self.used + 1
        if used + used > self.mask + 1:
            self._grow()
        slots = self.slots
        free_hash, i = self.free
        if free_hash != h or slots[i]:
            mask = self.mask
            i = h & mask
            while slots[i]:
                i = (i + 1) & mask
        slots[i] = index + 1
        self.hashes[i] = h
        self.free = _NO_FREE

    def _grow(self) -> None:
        old = zip(self.hashes, self.slots, strict=True)
        size = 2 * (self.mask + 1)
        self.mask = mask = size - 1
        self.hashes = hashes = array("q", bytes(8 * size))
        self.slots = slots = array("I", bytes(4 * size))
        for h, slot in old:
            if slot:
                i = h & mask
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = slot
                hashes[i] = h
        self.free = _NO_FREE


class Records:
    """Input records ("file.json:$.invoices[12]"), each kept as a code for the text
    before its last number and that number: the texts around the numbers are few."""

    def __init__(self) -> None:
        self._heads = array("H")
        self._numbers = array("Q")  # (unsigned: an append 15 ns faster than signed)
        self._texts: list[str] = []  # head/tail pairs, by code
        self._codes: dict[tuple[str, str], int] = {}
        self._aside: dict[int, str] = {}  # records of another shape, as they are

    def append(self, record: str) -> None:
        parts = split_record(record)
        if parts is None or len(self._codes) > 0xFFF0:
            self._aside[len(self._numbers)] = record
            self._heads.append(0)
            self._numbers.append(0)
            return
        head, number, tail = parts
        pair = (head, tail)
        code = self._codes.get(pair)
        if code is None:
            code = self._codes[pair] = len(self._codes)
            self._texts.extend(pair)
        self._heads.append(code)
        self._numbers.append(int(number))

    def __getitem__(self, k: int) -> str:
        if k in self._aside:
            return self._aside[k]
        code = self._heads[k]
        return f"{self._texts[2 * code]}{self._numbers[k]}{self._texts[2 * code + 1]}"


def split_record(record: str) -> tuple[str, str, str] | None:
    """A record ("file.json:$.invoices[12]", "file.csv:17") as (head, number, tail), or
    None if it has no ASCII digit: the tail is what follows the last digit, the number
    the longest end of the last run of digits that is "0" or up to 18 digits not
    starting with 0 (the pattern ``(.*?)(0|[1-9][0-9]{0,17})([^0-9]*)`` matching it
    whole). Read on the record reversed (one match from its end: that pattern's lazy
    head tries every length, 2 µs for a record of 50 characters)."""
    m = _REVERSED.match(record[::-1])
    if m is None:
        return None
    tail, run = m[1][::-1], m[2][::-1]
    number = run[-18:].lstrip("0") or "0"
    return record[:len(record) - len(tail) - len(number)], number, tail


# the reversed record: the tail (no digit), then the last run of digits
_REVERSED = re.compile(r"([^0-9]*)([0-9]+)", re.ASCII)


class SeenInvoices:
    """The invoice numbers read (as written), each with its input record and, once its
    title has one, its NumDette; found by key (``key_of``: keys.invoice_key, or the
    number itself for a recorded run) and by NumDette key (keys.debt_key). As a mapping
    invoice number -> its record: ``[number]``, ``get``, ``in``, ``len``."""

    def __init__(self, key_of: Callable[[str], str], debt_key_of: Callable[[str], str]) -> None:
        self.key_of, self.debt_key_of = key_of, debt_key_of
        self.numbers: list[str] = []
        self.records = Records()
        self._keys = _Table()
        self._debt_keys = _Table()
        self._debts: dict[int, str] = {}  # index -> its NumDette, for the debts table
        self._debt_values = array("q")  # index -> its NumDette's value, or -1
        self._debt_digits = array("B")

    # -- invoices

    def find(self, key: str) -> str | None:
        """The number (as written) of the invoice read with key ``key``, or None."""
        h = _hash(key)
        table = self._keys  # its probe, inline (once per invoice read)
        mask, slots, hashes = table.mask, table.slots, table.hashes
        i = h & mask
        while slot := slots[i]:
            if hashes[i] == h:
                number = self.numbers[slot - 1]
                if self.key_of(number) == key:
                    return number
            i = (i + 1) & mask
        table.free = (h, i)
        return None

    def add(self, key: str, number: str, record: str) -> int:
        """Keep ``number`` (its key ``key``, not read before: ``find``) and its record."""
        index = len(self.numbers)
        self.numbers.append(number)
        self.records.append(record)
        self._debt_values.append(-1)
        self._debt_digits.append(0)
        self._keys.add(_hash(key), index)
        return index

    def _index(self, number: str) -> int | None:
        key = self.key_of(number)
        for k in self._keys.candidates(_hash(key)):
            if self.numbers[k] == number:
                return k
        return None

    def __getitem__(self, number: str) -> str:
        k = self._index(number)
        if k is None:
            raise KeyError(number)
        return self.records[k]

    def get(self, number: str, default: str | None = None) -> str | None:
        k = self._index(number)
        return default if k is None else self.records[k]

    def __contains__(self, number: object) -> bool:
        return isinstance(number, str) and self._index(number) is not None

    def __len__(self) -> int:
        return len(self.numbers)

    # -- NumDettes

    def _debt(self, k: int) -> str | None:
        value = self._debt_values[k]
        if value < 0:
            return self._debts.get(k)
        return str(value).zfill(self._debt_digits[k])

    def debt_holder(self, key: str) -> tuple[str, str] | None:
        """(number, record) of the invoice whose NumDette has key ``key``, or None."""
        h = _hash(key)
        table = self._debt_keys  # its probe, inline (once per title)
        mask, slots, hashes = table.mask, table.slots, table.hashes
        i = h & mask
        while slot := slots[i]:
            if hashes[i] == h:
                k = slot - 1
                debt = self._debt(k)
                if debt is not None and self.debt_key_of(debt) == key:
                    return self.numbers[k], self.records[k]
            i = (i + 1) & mask
        table.free = (h, i)
        return None

    def add_debt(self, index: int, key: str, debt: str) -> None:
        """Give the invoice kept at ``index`` the NumDette ``debt`` (its key ``key``, held
        by no other: ``debt_holder``)."""
        if debt.isascii() and debt.isdigit() and len(debt) <= 18:
            self._debt_values[index] = int(debt)
            self._debt_digits[index] = len(debt)
        else:
            self._debts[index] = debt
        self._debt_keys.add(_hash(key), index)
