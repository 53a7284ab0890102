"""What an export keeps per invoice, held compactly (docs/performance.md, "What a run
keeps per invoice"): the policy notes packed (notes.Notes), the titles' figures in
columns (figures.TitleFigures), the invoices read in hash tables (seen.SeenInvoices).
Each gives back exactly what was put in."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import pesgen.figures as figures_mod
import pesgen.notes as notes_mod
import pesgen.seen as seen_mod
from pesgen.build import PolicyNote
from pesgen.figures import RunInvoices, TitleFigures
from pesgen.keys import debt_key, invoice_key
from pesgen.notes import Notes
from pesgen.seen import Records, SeenInvoices
from pesgen.store import pack_notes, unpack_notes

_texts = st.text(max_size=30)
_notes = st.lists(st.builds(PolicyNote, st.sampled_from(["civility", "transliterate", "case"]),
                            _texts, _texts, _texts), max_size=60)


def _plain_pack(notes):
    """store.pack_notes as it packed a list before notes.Notes."""
    return pack_notes(list(notes))


@settings(max_examples=60, deadline=None)
@given(_notes, st.integers(1, 7))
def test_packed_notes_give_back_the_same_notes_and_the_same_notes_z(notes, batch):
    packed = Notes(PolicyNote)
    packed.BATCH = batch  # several batches, and notes still pending
    packed.extend(notes)
    assert list(packed) == notes
    assert list(packed) == notes  # read again
    assert len(packed) == len(notes) and bool(packed) == bool(notes)
    assert packed.counts() == {p: sum(n.policy == p for n in notes) for p in
                               {n.policy for n in notes}}
    assert packed[len(notes) // 2:] == notes[len(notes) // 2:]
    assert pack_notes(packed) == _plain_pack(notes)  # the record's notes_z, byte for byte
    assert [PolicyNote(**d) for d in unpack_notes({"notes_z": pack_notes(packed)})] == notes


def test_notes_added_after_reading_follow_on():
    notes = Notes(PolicyNote)
    notes.BATCH = 2
    made = [PolicyNote("case", f"FA-{i}", "x.json:$.invoices[0]", "é, \"x\"\n") for i in range(5)]
    notes.extend(made[:3])
    assert list(notes) == made[:3]
    notes.extend(made[3:])
    assert list(notes) == made and pack_notes(notes) == _plain_pack(made)


_amounts = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: not d.is_zero() or not d.is_signed())


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(
    st.text(min_size=1, max_size=20), st.integers(1, 10**15),
    st.one_of(st.none(), st.from_regex(r"[0-9]{1,15}", fullmatch=True),
              st.from_regex(r"[0-9]{19,22}", fullmatch=True), st.text(max_size=4)),
    st.sampled_from(["01", "02"]), st.one_of(st.none(), st.sampled_from("0123456789")),
    st.one_of(st.none(), st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXY")),
    st.one_of(_amounts, st.just(Decimal("-0.00")), st.just(Decimal("1E+40")))), max_size=30))
def test_title_figures_give_back_each_title_as_it_was_appended(titles):
    figures = TitleFigures()
    for t in titles:
        figures.append(*t)
    back = list(figures)  # read column by column (span)
    assert back == titles
    assert [figures[k] for k in range(len(titles))] == titles  # one title at a time
    assert list(figures.span(len(titles) // 3, len(titles) // 2)) == \
        titles[len(titles) // 3:len(titles) // 2]
    for got, t in zip(back, titles, strict=True):  # the same texts: an amount's exponent too
        assert str(got[6]) == str(t[6]) and got[2] == t[2]
    assert figures.has_debts() == any(t[2] is not None for t in titles)
    run = RunInvoices()
    run.add(7, figures)
    run.add(8, figures)
    rows = [(t[0], b, t[1], None if t[2] is None else debt_key(t[2]), t[6])
            for b in (7, 8) for t in titles]
    assert list(run) == rows and len(run) == len(rows)
    assert run[3:len(rows) - 2] == rows[3:len(rows) - 2]
    assert run[1:len(rows):1] == rows[1:]  # a step of 1 is a slice as any
    with pytest.raises(TypeError, match="^RunInvoices take a slice"):
        run[::2]


@pytest.mark.parametrize("record", [
    "school-export.json:$.invoices[12]", "x.csv:17", "x.csv:0", "a/2026/in-20000.json:$.f[0]",
    "x.json:$.invoices[007]", "x.json:$['a b'][12].c", "no digits", "", "x:" + "9" * 30 + "]",
    "é:12\n3"])
def test_records_give_back_each_input_record(record):
    records = Records()
    for r in (record, "other:1", record):
        records.append(r)
    assert [records[k] for k in range(3)] == [record, "other:1", record]


def test_seen_invoices_never_take_a_hash_collision_for_a_duplicate(monkeypatch):
    """Every key given one hash: each candidate is confirmed against the exact key."""
    monkeypatch.setattr(seen_mod, "_hash", lambda _key: 42)
    seen = SeenInvoices(invoice_key, debt_key)
    numbers = [f"FA-{i}" for i in range(40)]  # past the table's first growth
    for i, number in enumerate(numbers):
        key = invoice_key(number)
        assert seen.find(key) is None
        index = seen.add(key, number, f"in.json:$.invoices[{i}]")
        assert seen.debt_holder(f"{i + 1}") is None
        seen.add_debt(index, f"{i + 1}", f"00{i + 1}")
    assert seen.find(invoice_key("fa-7")) == "FA-7"
    assert seen.find(invoice_key("FA-40")) is None
    assert seen.debt_holder("8") == ("FA-7", "in.json:$.invoices[7]")
    assert seen.debt_holder("41") is None
    assert seen["FA-7"] == "in.json:$.invoices[7]" and seen.get("fa-7") is None
    assert "FA-39" in seen and "FA-40" not in seen and len(seen) == 40
    with pytest.raises(KeyError):
        seen["FA-40"]


def test_seen_invoices_find_a_num_dette_of_every_form():
    """A NumDette kept as a number (its digits: "0", leading zeros) or as its text (19
    nines, past a machine integer; letters, which a format's rules may let through) is
    found again by its key, beside invoices that have none: the run's second title with
    it is refused (pes.num-dette-unique). Digits other than ASCII are kept as text: never
    the number they look like."""
    seen = SeenInvoices(invoice_key, debt_key)
    debts = {"FA-1": None, "FA-2": "AB-12", "FA-3": "0", "FA-4": "000123",
             "FA-5": "9" * 19, "FA-6": None, "FA-7": "\u0664\u0662"}
    for i, (number, debt) in enumerate(debts.items()):
        index = seen.add(invoice_key(number), number, f"in.json:$.invoices[{i}]")
        if debt is not None:
            assert seen.debt_holder(debt_key(debt)) is None
            seen.add_debt(index, debt_key(debt), debt)
    assert [seen.debt_holder(debt_key(d))
            for d in ("AB-12", "00", "123", "9" * 19, "\u0664\u0662")] == [
        ("FA-2", "in.json:$.invoices[1]"), ("FA-3", "in.json:$.invoices[2]"),
        ("FA-4", "in.json:$.invoices[3]"), ("FA-5", "in.json:$.invoices[4]"),
        ("FA-7", "in.json:$.invoices[6]")]
    assert [seen.debt_holder(debt_key(d)) for d in ("AB-13", "1", "12", "-1", "42")] == [
        None] * 5


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), max_size=80))
def test_seen_invoices_find_what_a_dict_of_keys_finds(numbers):
    seen = SeenInvoices(invoice_key, debt_key)
    plain: dict[str, str] = {}
    for i, number in enumerate(numbers):
        key = invoice_key(number)
        assert seen.find(key) == plain.get(key)
        if key not in plain:
            plain[key] = number
            seen.add(key, number, f"f:{i}")
    for number in plain.values():
        assert seen.find(invoice_key(number)) == number
        assert seen.get(number) is not None


def test_notes_of_other_values_pack_as_the_record_packs_them():
    """A field that is not a text (an amount, a date) goes through json as before."""
    from dataclasses import dataclass
    from datetime import date

    @dataclass(frozen=True)
    class Note:
        policy: str
        amount: Decimal
        on: date | None

    made = [Note("x", Decimal("1.50"), date(2026, 11, 23)), Note("y", Decimal(2), None)]
    notes = Notes(Note, made)
    assert pack_notes(notes) == _plain_pack(made)
    assert unpack_notes({"notes_z": pack_notes(notes)}) == [
        {"policy": "x", "amount": "1.50", "on": "2026-11-23"},
        {"policy": "y", "amount": "2", "on": None}]


# the fast paths (docs/performance.md, "Winning back the compact records' time"), each
# against the general path it stands for


# the pattern seen.split_record reads from the record's end: the digits without leading
# zeros (or "0"), up to 18, then a tail without digits
_RECORD = re.compile(r"(.*?)(0|[1-9][0-9]{0,17})([^0-9]*)", re.ASCII | re.DOTALL)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789ab:$[].é\n٣"), max_size=40)
       | st.from_regex(r"[a-z./]{0,12}:\$\.invoices\[[0-9]{1,25}\]", fullmatch=True))
# a run of 19 digits: its last 18 are the number, the first is the head's (the
# generated runs reach it only now and then)
@example("x.json:$.invoices[1234567890123456789]")
def test_split_record_splits_as_the_record_pattern(record):
    m = _RECORD.fullmatch(record)
    assert seen_mod.split_record(record) == (None if m is None else (m[1], m[2], m[3]))


_any_decimals = st.decimals(allow_nan=True, allow_infinity=True, places=None) | st.builds(
    lambda c, e: Decimal(c).scaleb(e), st.integers(-10**20, 10**20), st.integers(-140, 140))


@settings(max_examples=300, deadline=None)
@given(_any_decimals)
@example(Decimal("-0.00"))
@example(Decimal("-0"))
@example(Decimal("1E+2"))
@example(Decimal("999999999999999999"))
@example(Decimal("1000000000000000000"))
@example(Decimal("-99999999999999999.9"))
@example(Decimal("0.000001"))
@example(Decimal(1).scaleb(-128))
@example(Decimal(1).scaleb(-129))
def test_an_amount_read_from_its_text_as_from_its_tuple(amount):
    got = figures_mod.coefficient_exponent(amount)
    assert got == figures_mod._coefficient_exponent(amount)
    if got is not None:
        assert str(Decimal(got[0]).scaleb(got[1])) == str(amount)


@pytest.mark.parametrize(("amount", "parts"), [
    (Decimal("999999999999999999"), (999999999999999999, 0)),
    (Decimal("-999999999999999999"), (-999999999999999999, 0)),
    (Decimal("1000000000000000000"), None), (Decimal("-1000000000000000000"), None),
    (Decimal("-0.00"), None), (Decimal("0.00"), (0, -2)),
    (Decimal(1).scaleb(-128), (1, -128)), (Decimal(1).scaleb(-129), None),
    (Decimal(1).scaleb(127), (1, 127)), (Decimal(1).scaleb(128), None),
    (Decimal(-7).scaleb(127), (-7, 127)),
])
def test_an_amount_is_held_in_the_columns_up_to_their_bounds(amount, parts):
    """An amount goes into the columns (an 18-digit coefficient at most, an exponent in
    -128..127: array 'q' and 'b') when it fits, exactly so, and is kept aside past
    either bound (None), each way a number is read (from its text, or from as_tuple
    for one written with an exponent)."""
    assert figures_mod.coefficient_exponent(amount) == parts


@pytest.mark.parametrize("debt", ["\u0664\u0662", "\uff14\uff12", "4\u00b2", "0" * 18 + "1"])
def test_a_num_dette_of_other_digits_is_kept_as_it_is(debt):
    """A NumDette of digits other than ASCII (Arabic-Indic, full-width, a superscript:
    str.isdigit says digits, int() reads some as ASCII's and refuses others) or of 19
    digits is kept aside as it was given, never read as the number it looks like."""
    figures = TitleFigures()
    figures.append("FA", 1, debt, "01", None, None, Decimal(1))
    assert figures[0][2] == debt and next(iter(figures))[2] == debt and figures.has_debts()


def test_a_title_read_from_the_end_gives_what_it_was_given():
    """[-1] is the last title, its values kept aside (a NumDette of 19 digits, an amount
    of 19) as given, not the columns' placeholders."""
    figures = TitleFigures()
    figures.append("FA-1", 1, "7", "01", None, None, Decimal("1.50"))
    last = ("FA-2", 2, "1" * 19, "01", "4", "K", Decimal("1" * 19))
    figures.append(*last)
    assert figures[-1] == last == figures[1]
    assert figures[-2] == ("FA-1", 1, "7", "01", None, None, Decimal("1.50"))


def test_a_column_of_codes_holds_65_536_distinct_values():
    """Per, Cle1 and Cle2 are coded on two bytes: 65 536 distinct values (0 to 0xFFFF)
    fit, the next is refused by name (never a code wrapped round to another value)."""
    figures = TitleFigures()
    for k in range(0x10000):
        figures.append("FA", k, None, f"P{k}", None, None, Decimal(1))
    assert figures[0xFFFF][3] == "P65535" and figures[0][3] == "P0"
    with pytest.raises(OverflowError, match="^more than 65 536 distinct values$"):
        figures.append("FA", 0, None, "P65536", None, None, Decimal(1))


_field_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.builds(PolicyNote, _field_texts, _field_texts, _field_texts,
                          _field_texts), min_size=1, max_size=20))
def test_a_batch_of_notes_is_written_as_each_note_alone(notes):
    assert notes_mod._batch_texts(notes) == [notes_mod._note_text(n).encode("utf-8")
                                             for n in notes]


def test_a_batch_with_a_field_not_a_text_is_written_note_by_note():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Note:
        policy: str
        amount: Decimal | str

    made = [Note("x", "1.50"), Note("y", Decimal("2.5")), Note("x%s", "a%sb")]
    assert notes_mod._batch_texts(made) is None
    # a subclass of str: escaped in the batch as json writes it alone
    from markupsafe import Markup
    marked = [Note("x", Markup('a<b "c"')), Note(Markup("\\"), "\n")]
    assert notes_mod._batch_texts(marked) == [notes_mod._encode(
        {"amount": n.amount, "policy": n.policy}).encode("utf-8") for n in marked]
    assert notes_mod._texts_of(made) == [
        b'{"amount": "1.50", "policy": "x"}', b'{"amount": "2.5", "policy": "y"}',
        b'{"amount": "a%sb", "policy": "x%s"}']
    assert pack_notes(Notes(Note, made)) == _plain_pack(made)


def test_a_table_takes_the_slot_its_last_probe_found_only_while_it_is_free():
    table = seen_mod._Table()
    assert table.candidates(3) == [] and table.free == (3, 3)
    table.add(19, 0)  # another hash: its own probe (19 & 15 == 3)
    table.add(3, 1)  # the slot found for 3 is taken now: probes on
    assert table.candidates(3) == [1] and table.candidates(19) == [0]
    assert table.slots[3] == 1 and table.slots[4] == 2
    for index in range(2, 12):  # grows: a slot found before is of another size
        assert table.candidates(100 + index) == []
        table.add(100 + index, index)
    assert all(table.candidates(100 + index) == [index] for index in range(2, 12))
    assert table.candidates(3) == [1] and table.candidates(19) == [0]
    fresh = seen_mod._Table()  # its "no free slot" names slot -1, where -1's probe starts
    fresh.add(-1, 0)
    assert fresh.candidates(-1) == [0]


def test_a_table_probes_on_past_a_taken_slot_its_no_free_slot_names():
    """A hash of -1 added with no probe before: the "no free slot" names slot -1, where
    its probe starts, and that slot is taken: it goes on to the next free one."""
    table = seen_mod._Table()
    table.add(15, 0)  # the last slot (15 & 15)
    table.add(-1, 1)
    assert table.candidates(15) == [0] and table.candidates(-1) == [1]



def test_seen_invoices_hold_texts_only():
    """As a mapping of invoice numbers: what is not a text is not in it (no key made)."""
    seen = SeenInvoices(invoice_key, debt_key)
    seen.add(invoice_key("42"), "42", "in.csv:2")
    assert "42" in seen and 42 not in seen and None not in seen


def test_a_run_s_line_counts_are_those_of_the_titles_its_slice_gives():
    """RunInvoices.line_counts of a slice starting inside a bordereau, across two, open
    or counted from the end: each title's own count, in the slice's order, as the rows."""
    run = RunInvoices()
    for id_bord, counts in ((1, (3, 1, 4)), (2, (1, 5, None, 2))):
        figures = TitleFigures()
        for k, n in enumerate(counts):
            figures.append(f"FA-{id_bord}-{k}", k + 1, None, "01", None, None,
                           Decimal("1.00"), n)
        run.add(id_bord, figures)
    every = [3, 1, 4, 1, 5, None, 2]
    for index in (slice(1, 5), slice(2, 3), slice(4, None), slice(-3, None), slice(0, 7)):
        assert run.line_counts(index) == every[index], index
        assert [r[0] for r in run[index]] == [
            f"FA-{b}-{k}" for b, n in ((1, 3), (2, 4)) for k in range(n)][index], index
