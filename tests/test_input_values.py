"""Values of the input that once went through wrong: a JSON list or object written as
Python text, thousands separators read anywhere, a payment method with a trailing space
or another case, invisible Latin-1 characters, year 0026, a 27-digit amount. Each is
refused (naming the record, the mapping key and the rule) or changed by a reported
policy, never written silently."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal

import pytest

from pesgen.errors import ExitCode
from pesgen.export import export
from pesgen.parse import parse_amount, parse_date
from pesgen.text import CHARSETS, TextPolicy, normalize

from .conftest import ROOT
from .mapping_support import mapping_copy
from .test_bad_input import (
    CSV_MAPPING,
    JSON_MAPPING,
    RUN,
    _csv_line,
    _csv_rows,
    _example,
    _index,
    _only,
    _refused,
    _where,
    _write_csv,
    _write_json,
)

# ---------------------------------------------------------------- 1. JSON shapes in text


@pytest.mark.parametrize("path, value, shown", [
    (("payer", "address", "street"), ["3 allee du Coeur", "Bat B"], "a list"),
    (("payer", "address", "city"), {"name": "Amilly"}, "an object"),
    (("payer", "first_name"), True, "a yes/no value"),
    (("payer", "ref"), False, "a yes/no value"),
])
def test_a_json_list_object_or_boolean_is_not_a_text(tmp_path, path, value, shown):
    data = _example()
    i = _index(data, "FA-2026-00102")
    node = data["invoices"][i]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.type")
    assert len(exc.problems) == 1, exc.report()  # not also 'a person needs a first name'
    dotted = ".".join(path)
    assert p.record == f"{inp}:$.invoices[{i}].{dotted}"
    assert p.invoice == "FA-2026-00102"
    assert f"is {shown}" in p.message and "a string or a number" in p.message
    binding = {"street": "bindings.address.street", "city": "bindings.address.city",
               "first_name": "bindings.payer.first_name", "ref": "bindings.payer.ref"}[path[-1]]
    assert p.mapping == _where(JSON_MAPPING, f": {dotted}", binding)
    assert exc.exit_code == ExitCode.INPUT


@pytest.mark.parametrize("setter", [
    lambda inv: inv.__setitem__("number", ["FA-2026-00102"]),
    lambda inv: inv["payer"]["address"].__setitem__("postal_code", ["45200"]),
    lambda inv: inv["payer"]["address"].__setitem__("country", {"code": "FR"}),
    lambda inv: inv["payer"].__setitem__("kind", ["person"]),
    lambda inv: inv["payer"].__setitem__("title", True),
    lambda inv: inv["payer"].__setitem__("email", ["a@example.org"]),
    lambda inv: inv["lines"][0]["activity"].__setitem__("code", ["INST-VIOLON"]),
    lambda inv: inv["lines"][0]["student"].__setitem__("ref", {"id": 1}),
])
def test_no_bound_value_is_written_as_python_text(tmp_path, setter):
    data = _example()
    i = _index(data, "FA-2026-00102")
    setter(data["invoices"][i])
    exc = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data))
    assert [p.rule for p in exc.problems] == ["input.type"], exc.report()
    assert "[" not in exc.problems[0].message.split(":")[0]


def test_mandate_values_that_are_not_texts_are_refused(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00101")
    mandate = data["invoices"][i]["payment"]["mandate"]
    mandate["iban"] = ["FR7630006000011234567890189"]
    mandate["sequence"] = {"code": "RCUR"}
    mandate["holder"] = True
    mandate["bic"] = ["AGRIFRPP848"]
    exc = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data))
    assert sorted(p.message.split(" ")[0] for p in exc.problems) == [
        "account.holder", "payment.bic", "payment.iban", "payment.sequence"], exc.report()
    assert {p.rule for p in exc.problems} == {"input.type"}


def test_json_numbers_are_still_texts(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00102")
    data["invoices"][i]["payer"]["ref"] = 1042
    data["invoices"][i]["lines"][0]["student"]["ref"] = 7
    result = export(JSON_MAPPING, _write_json(tmp_path, data), tmp_path / "out", RUN)
    xml = result.files[0].path.read_text(encoding="iso-8859-1")
    assert '<RefTiers V="1042"/>' in xml


# ---------------------------------------------------------------- 2. thousands separators


@pytest.mark.parametrize("raw, style", [
    ("85.00", "fr"), ("0.500", "fr"), ("1.2,50", "fr"), ("12.34,50", "fr"),
    ("142 50", "auto"), ("12 34,50", "auto"), ("85'00", "auto"), ("1.2,50", "auto"),
    ("1,2.50", "auto"), ("1 2", "auto"), ("1.23,50", "auto"), ("1,2345.00", "auto"),
    ("1.2,50", "iso"), ("1,2.50", "iso"), ("142 50", "iso"), ("1.234", "iso-bogus"),
    ("1 234 5", "fr"), ("1 234.5 0", "auto"),
    ("1.234 567,00", "auto"),  # two kinds of grouping in one amount
    ("12 34", "fr"), ("1234 567", "auto"), ("01 234,50", "auto"), ("0.500,00", "auto"),
])
def test_a_grouping_separator_outside_groups_of_three_is_refused(raw, style):
    with pytest.raises(ValueError) as info:
        parse_amount(raw, "auto" if style == "iso-bogus" else style)
    assert f"'{raw}'" in str(info.value)


@pytest.mark.parametrize("raw, style, expected", [
    ("1.234,50", "auto", "1234.50"), ("1.234,50", "fr", "1234.50"),
    ("1 234,50", "auto", "1234.50"), ("1\u00a0234,50", "auto", "1234.50"),
    ("1\u202f234,50", "auto", "1234.50"), ("1\u2009234,50", "fr", "1234.50"),
    ("1\u2007234,50", "auto", "1234.50"),  # figure space
    ("1'234.50", "auto", "1234.50"), ("1,234,567.50", "auto", "1234567.50"),
    ("1.234.567,50", "fr", "1234567.50"), ("1 234 567", "iso", "1234567"),
    ("-0,00", "auto", "-0.00"), ("-1 234,50", "fr", "-1234.50"), ("1,234.50", "iso", "1234.50"),
    ("85,00", "fr", "85.00"), ("85.00", "iso", "85.00"), ("0,500", "fr", "0.500"),
    ("1.234", "fr", "1234"),
])
def test_grouping_between_groups_of_three_is_read(raw, style, expected):
    assert str(parse_amount(raw, style)) == expected


def test_the_review_amounts_are_refused_in_an_export(tmp_path):
    rows = _csv_rows()
    header = rows[0]
    col = header.index("amount")
    price = header.index("unit_price")
    number = header.index("invoice_number")
    target = next(r for r in rows[1:] if r[number] == "FA-2026-00102")
    target[col] = target[price] = "142 50"
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    problems = [p for p in exc.problems if p.rule == "input.amount"]
    assert len(problems) == 2, exc.report()
    assert all("'142 50'" in p.message for p in problems)
    assert problems[0].record == f"{inp}:{_csv_line(inp, 'FA-2026-00102')}"


# ---------------------------------------------------------------- 3. payment method


def _rows_with(invoice: str, **cells: str) -> list[list[str]]:
    """The example CSV's rows, with these columns of ``invoice``'s rows set."""
    rows = _csv_rows()
    header = rows[0]
    number = header.index("invoice_number")
    for row in rows[1:]:
        if row[number] == invoice:
            for column, value in cells.items():
                row[header.index(column)] = value
    return rows


@pytest.mark.parametrize("method", ["direct_debit ", " direct_debit", "direct_debit\u00a0"])
def test_a_direct_debit_with_surrounding_spaces_is_a_direct_debit(tmp_path, method):
    rows = _csv_rows()
    header = rows[0]
    col = header.index("payment_method")
    number = header.index("invoice_number")
    for r in rows[1:]:
        if r[number] == "FA-2026-00101":
            assert r[col] == "direct_debit"
            r[col] = method
    result = export(CSV_MAPPING, _write_csv(tmp_path, rows), tmp_path / "out", RUN)
    xml = result.files[0].path.read_text(encoding="iso-8859-1")
    assert '<RefUniMdt V="CRCVSL000042"/>' in xml


@pytest.mark.parametrize("method", ["DIRECT_DEBIT", "Direct_Debit", "prelevement", "virement"])
def test_an_unknown_payment_method_is_refused_csv(tmp_path, method):
    inp = _write_csv(tmp_path, _rows_with("FA-2026-00101", payment_method=method))
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "codes.payment-method")
    assert p.record == f"{inp}:{_csv_line(inp, 'FA-2026-00101')}"
    assert f"'{method}'" in p.message
    assert p.mapping == _where(CSV_MAPPING, "  payment_methods: {", "codes.payment_methods")


def test_an_unknown_payment_method_says_what_the_binding_reads_and_what_to_do(tmp_path):
    # a technician binding the export's own method column ('PRELEVEMENT') with no
    # codes.payment_methods was told only that it "is not a yes/no value": neither which
    # values are, nor where to translate
    mapping, _ = mapping_copy(tmp_path, CSV_MAPPING,
                              ("  payment_methods: {", "  # payment_methods: {"))
    rows = _rows_with("FA-2026-00101", payment_method="PRELEVEMENT")
    exc = _refused(tmp_path, mapping, _write_csv(tmp_path, rows))
    [p] = [q for q in exc.problems if q.invoice == "FA-2026-00101"]
    assert (p.rule, p.message) == ("input.bool", (
        "payment.direct_debit: 'PRELEVEMENT' is not a yes/no value (yes/no, true/false, "
        "oui/non, o/n, y/n, 1/0; empty: no): a binding reading the export's payment method "
        "says which methods are direct debits in codes.payment_methods "
        "(docs/mapping-reference.md, bindings.payment.direct_debit)"))


def test_a_yes_no_direct_debit_flag_without_a_table_says_which_titles_are_debited(tmp_path):
    """Without codes.payment_methods, payment.direct_debit is read as yes/no: 'oui' is a
    direct debit (its mandate written: RefUniMdt), 'non' is not (no mandate asked for:
    those invoices have none)."""
    mapping, _ = mapping_copy(tmp_path, CSV_MAPPING,
                              ("  payment_methods: {", "  # payment_methods: {"))
    rows = _csv_rows()
    col = rows[0].index("payment_method")
    # the RUMs of the export's direct debits, one per invoice, in the file's order
    rums = list(dict.fromkeys(r[rows[0].index("mandate_rum")] for r in rows[1:]
                              if r[col] == "direct_debit"))
    assert len(rums) > 1 and len(rums) < len({r[0] for r in rows[1:]})
    for r in rows[1:]:
        r[col] = "oui" if r[col] == "direct_debit" else "non"
    result = export(mapping, _write_csv(tmp_path, rows), tmp_path / "out", RUN)
    xml = result.files[0].path.read_text(encoding="iso-8859-1")
    # (each line of a debited title carries its mandate)
    assert list(dict.fromkeys(re.findall(r'<RefUniMdt V="([^"]*)"/>', xml))) == rums


@pytest.mark.parametrize("method", ["DIRECT_DEBIT", "cheque"])
def test_an_unknown_payment_method_is_refused_json(tmp_path, method):
    data = _example()
    i = _index(data, "FA-2026-00101")
    data["invoices"][i]["payment"]["method"] = method
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "codes.payment-method")
    assert p.record == f"{inp}:$.invoices[{i}]" and f"'{method}'" in p.message


def test_a_json_direct_debit_with_a_trailing_space_is_a_direct_debit(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00101")
    data["invoices"][i]["payment"]["method"] = "direct_debit "
    result = export(JSON_MAPPING, _write_json(tmp_path, data), tmp_path / "out", RUN)
    xml = result.files[0].path.read_text(encoding="iso-8859-1")
    assert "CRCVSL000042" in xml


def test_expressions_read_stripped_values_like_paths(tmp_path):
    """``invoice.payer_last_name or invoice.payer_name``: a last name of spaces is blank
    for an expression as for a path."""
    rows = _rows_with("FA-2026-00101", payer_last_name="   ", payer_name="Famille Dupont")
    result = export(CSV_MAPPING, _write_csv(tmp_path, rows), tmp_path / "out", RUN)
    xml = result.files[0].path.read_text(encoding="iso-8859-1")
    assert '<Nom V="FAMILLE DUPONT"/>' in xml


# ---------------------------------------------------------------- 4. invisible Latin-1


def test_soft_hyphen_and_nbsp_under_transliterate_are_changed_and_noted():
    policy = TextPolicy(transliterate=True)
    out = normalize("Dupont\u00adMartin", "latin-1", policy)
    assert out.error is None and out.value == "DupontMartin"
    assert "transliterate" in out.applied and "U+00AD" in out.changed
    out = normalize("Jean\u00a0Pierre", "latin-1", policy)
    assert out.value == "Jean Pierre" and "U+00A0" in out.changed
    out = normalize("Jean\u00a0 Pierre\u00a0", "latin-1", policy)
    assert out.value == "Jean Pierre"


@pytest.mark.parametrize("text, code", [("Dupont\u00adMartin", "U+00AD"),
                                        ("Jean\u00a0Pierre", "U+00A0")])
@pytest.mark.parametrize("charset", ["latin-1", "sepa", "ascii"])
def test_soft_hyphen_and_nbsp_are_refused_without_transliterate(text, code, charset):
    out = normalize(text, charset, TextPolicy())
    assert out.error is not None and code in out.error
    assert "transliterate: false" in out.error


def test_zero_width_space_is_still_refused():
    out = normalize("Dupont\u200bMartin", "latin-1", TextPolicy(transliterate=True))
    assert out.error is not None and "U+200B" in out.error


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u200d", "\u2060", "\ufeff",
                                  "\u2066", "\U000e0001"])
@pytest.mark.parametrize("charset", CHARSETS)
@pytest.mark.parametrize("transliterate", [False, True])
def test_a_format_character_is_refused_whatever_the_charset(char, charset, transliterate):
    """A Unicode format character (category Cf) shows as nothing or reorders the text
    around it (a right-to-left override): every charset but utf-8 lacks it, and utf-8's
    (a format's charset: utf-8) took it, so a debtor's reference or name held it into
    the file. Refused now whatever the charset and policies, named."""
    out = normalize(f"FAM{char}0042", charset, TextPolicy(transliterate=transliterate))
    code = f"U+{ord(char):04X}"
    assert out.error == (f"contains the invisible format character {code} "
                         f"{unicodedata.name(char)}: it shows as nothing, or reorders the "
                         "text around it; no policy replaces it, whatever the charset")


def test_a_recorded_run_s_texts_keep_the_format_characters_a_utf8_charset_took():
    """A run recorded before format characters were refused, in a format whose charset
    is utf-8, wrote them: rebuilt (the Builder of a recorded run), its texts are taken as
    they were, so that its files come out byte for byte; an export refuses them."""
    from pesgen.build import Builder
    from pesgen.formats import load_format
    from pesgen.mapping import load_mapping

    mapping = load_mapping(JSON_MAPPING)
    fmt = load_format(ROOT / "templates" / "pes-ormc")
    recorded = Builder(mapping, fmt, recorded=True).text_policy
    assert recorded.format_chars and not Builder(mapping, fmt).text_policy.format_chars
    assert normalize("FAM\u200b0042", "utf-8", recorded).value == "FAM\u200b0042"
    assert normalize("FAM\u200b0042", "utf-8", recorded).error is None


def test_soft_hyphen_in_a_name_is_noted_in_an_export(tmp_path):
    rows = _rows_with("FA-2026-00102", payer_last_name="Dupont\u00adMartin",
                      payer_first_name="Jean\u00a0Pierre")
    result = export(CSV_MAPPING, _write_csv(tmp_path, rows), tmp_path / "out", RUN)
    xml = result.files[0].path.read_bytes()
    assert b'<Nom V="DUPONTMARTIN"/>' in xml and b'<Prenom V="JEAN PIERRE"/>' in xml
    assert b"\xad" not in xml and b"\xa0" not in xml
    notes = [n.detail for n in result.notes if n.policy == "transliterate"
             and n.invoice == "FA-2026-00102"]
    assert any("debtor.name" in d and "U+00AD" in d for d in notes), notes
    assert any("debtor.first_name" in d and "U+00A0" in d for d in notes), notes


# ---------------------------------------------------------------- 5. years


@pytest.mark.parametrize("raw", ["05/12/0026", "0026-12-05", "01/01/1899", "2100-01-01",
                                 "31/12/9999", date(26, 12, 5)])
def test_a_year_outside_1900_2099_is_refused(raw):
    with pytest.raises(ValueError, match="year"):
        parse_date(raw)


@pytest.mark.parametrize("raw", ["01/01/1900", "2099-12-31"])
def test_the_year_window_bounds_are_read(raw):
    assert parse_date(raw).year in (1900, 2099)


def test_year_0026_is_refused_in_an_export(tmp_path):
    inp = _write_csv(tmp_path, _rows_with("FA-2026-00101", debit_date="05/12/0026"))
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.date")
    assert "'05/12/0026'" in p.message and p.record == f"{inp}:{_csv_line(inp, 'FA-2026-00101')}"


# ---------------------------------------------------------------- 6. huge amounts


@pytest.mark.parametrize("raw", ["100000000000000000000000000", "1e400", Decimal("1E+400"),
                                 Decimal("-1E+30"), 10 ** 30, Decimal("NaN"),
                                 Decimal("Infinity"), float("inf")])
def test_a_huge_or_not_finite_amount_is_refused(raw):
    with pytest.raises(ValueError) as info:
        parse_amount(raw)
    assert "too large" in str(info.value) or "not an amount" in str(info.value)


@pytest.mark.parametrize("field", ["amount", "quantity"])
def test_a_27_digit_amount_or_quantity_is_refused_not_a_traceback(tmp_path, field):
    rows = _csv_rows()
    header = rows[0]
    number = header.index("invoice_number")
    col = header.index(field)
    target = next(r for r in rows[1:] if r[number] == "FA-2026-00102")
    target[col] = "100000000000000000000000000"
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = next(p for p in exc.problems if p.rule == "input.amount")
    assert "too large" in p.message


def test_json_1e400_is_refused(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00102")
    inp = _write_json(tmp_path, data)
    text = inp.read_text(encoding="utf-8")
    line = data["invoices"][i]["lines"][0]
    needle = f'"quantity": {line["quantity"]}'
    assert needle in text
    inp.write_text(text.replace(needle, '"quantity": 1e400', 1), encoding="utf-8")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.amount")
    assert "too large" in p.message


def test_a_repeated_text_gives_its_policy_notes_on_every_invoice(tmp_path):
    """The builder remembers a text's outcome (school exports repeat labels and
    streets): an invoice that repeats a transliterated or line-broken text still gets its
    own notes, in the same order, and the case policy still counts every value."""
    import json
    from pathlib import Path

    from pesgen.build import Builder
    from pesgen.formats import find_format
    from pesgen.mapping import load_mapping
    from pesgen.sources import read_invoices

    example = Path(__file__).resolve().parent.parent / "examples" / "school-export.json"
    data = json.loads(example.read_text(encoding="utf-8"))
    first = data["invoices"][0]
    first["payer"]["address"]["street"] = "12 rue du Cœur\nVolant"
    first["lines"][0]["activity"]["label"] = "Piano – cours"
    twin = json.loads(json.dumps(first))
    twin["number"] = first["number"] + "9"
    data["invoices"] = [first, twin]
    path = tmp_path / "twins.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = load_mapping(JSON_MAPPING)
    builder = Builder(mapping, find_format(mapping.output.format, None))
    results = [builder.build(src) for src in read_invoices(path, mapping.input)]
    notes = [[(n.policy, n.detail) for n in r.notes] for r in results]
    # the same notes, but the netting note naming each its own invoice's line
    assert notes[0] == [(policy, detail.replace("$.invoices[1].", "$.invoices[0]."))
                        for policy, detail in notes[1]] != notes[1]
    assert ("newlines", "address.street: line break or tab replaced by a space") in notes[0]
    assert ("transliterate", "address.street: Œ→OE") in notes[0]
    assert ("transliterate", "line.label: –→-") in notes[0]
    assert [r.title.debtor.address.street for r in results] == ["12 RUE DU COEUR VOLANT"] * 2
    assert builder.cased["address.street"] == 2


def test_the_first_format_character_of_a_text_is_the_one_named():
    """A text opening with a format character (a byte order mark pasted with it) is
    refused for it, and of two the first is named: the message says what support finds
    first when it reads the value."""
    bom = normalize("\ufeffFAM0042", "utf-8", TextPolicy())
    assert bom.error is not None and bom.error.startswith(
        "contains the invisible format character U+FEFF ZERO WIDTH NO-BREAK SPACE:")
    two = normalize("FAM\u200b00\u202e42", "utf-8", TextPolicy())
    assert two.error is not None and two.error.startswith(
        "contains the invisible format character U+200B ZERO WIDTH SPACE:")


def test_a_character_unicode_names_not_is_named_by_its_code_point_alone():
    """A character is named by code point and Unicode name; one Unicode has no name for
    (an unassigned code point) by its code point alone, with no space after it."""
    from pesgen.keys import named
    from pesgen.text import char_named

    assert char_named("\u202e") == "U+202E RIGHT-TO-LEFT OVERRIDE"
    assert char_named("\u0378") == "U+0378"
    assert named("FA-1\u0378\u00ad") == "U+0378, U+00AD SOFT HYPHEN"
