"""The filters flat-file templates use: csv_record, fixed, number, by_imputation, pricing."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from pesgen.filters import by_imputation, csv_record, fixed, number, pricing, zfill
from pesgen.model import Line


def test_csv_record_quoting_modes():
    assert csv_record(["a", "b;c", 'd"e', None, 3]) == 'a;"b;c";"d""e";;3'
    assert csv_record(["a", "", None], quoting="always") == '"a";"";""'
    assert csv_record(["1", "x", "2,5"], quoting="always", unquoted=[1, 3]) == '1;"x";2,5'
    assert csv_record(["a", "b"], delimiter="|") == "a|b"
    assert csv_record(["a|b"], delimiter="|") == '"a|b"'
    # a text is said by its length, never quoted (it may be a family's name), and what
    # it holds that may not be written unquoted by name; a number as it is
    with pytest.raises(ValueError, match=r"^csv_record: the value at position 1 \(a text of 3 "
                       r"characters\) holds the delimiter ';' and may not be quoted$"):
        csv_record(["a;b"], quoting="never")
    with pytest.raises(ValueError, match=r"^csv_record: the value at position 2 \(a text of 5 "
                       r"characters\) holds the delimiter '\|', the quote '" + '"' + "' and a line "
                       "break and may not be quoted$"):
        csv_record(["x", 'a|"b\n'], delimiter="|", quoting="never")
    with pytest.raises(ValueError, match=r"^csv_record: the value at position 1 \('-5'\) holds "
                       "the delimiter '-' and may not be quoted$"):
        csv_record([-5], delimiter="-", quoting="never")
    with pytest.raises(ValueError, match="may not be quoted"):
        csv_record(["x", "a;b"], quoting="always", unquoted=[2])


def test_csv_record_refuses_a_quoting_mode_it_has_not():
    """A mistyped mode ('minmal') quoted as 'never' does, so a value holding the
    delimiter was refused with words about quoting the template never asked for, and
    one holding none was written unquoted where 'always' was meant: the mode is named."""
    for mode in ("minmal", "Always", "", "none"):
        with pytest.raises(ValueError, match=(
                rf"^csv_record: quoting '{mode}' is not one of 'always', 'minimal', "
                "'never'$")):
            csv_record(["a", "b"], quoting=mode)


def test_csv_record_by_position():
    assert csv_record({1: "a", 4: "d"}, size=5, quoting="always") == '"a";"";"";"d";""'
    with pytest.raises(ValueError, match="needs size="):
        csv_record({1: "a"})
    with pytest.raises(ValueError, match=r"positions \[6\] are outside 1..5"):
        csv_record({6: "a"}, size=5)
    # positions count from 1: 0 is no column (not the last one, as a list index would be)
    with pytest.raises(ValueError, match=r"^csv_record: positions \[0\] are outside 1..5$"):
        csv_record({0: "a"}, size=5)
    with pytest.raises(ValueError, match="^csv_record: 3 values, the record has 2 columns$"):
        csv_record(["a", "b", "c"], size=2)


def test_fixed_zero_fill_puts_the_sign_first():
    assert fixed(-12, 8, "right", "0") == "-0000012"
    assert fixed("+12", 8, "right", "0") == "+0000012"
    assert fixed(12, 8, "right", "0") == "00000012"
    assert fixed(-12, 8, "right") == "     -12"
    assert fixed(-12, 8, "left", "0") == "-1200000"
    with pytest.raises(ValueError, match="^'-12' is longer than 2 characters$"):
        fixed(-12, 2, "right", "0")
    # a text is said by its length only (it may be a family's name); a number as it is
    with pytest.raises(ValueError, match="^a text of 6 characters is longer than 4 characters$"):
        fixed("DUPONT", 4)
    with pytest.raises(ValueError, match="^a text of 5 characters is longer than 3 characters$"):
        zfill("FA-12", 3)
    with pytest.raises(ValueError, match="^'1000' is longer than 3 characters$"):
        zfill(1000, 3)


@pytest.mark.parametrize(("value", "sep", "text"), [
    (Decimal("1.00"), ".", "1"), (Decimal("1.50"), ",", "1,5"), (Decimal("100"), ".", "100"),
    (Decimal("1E+2"), ".", "100"), (Decimal("0.00"), ".", "0"), (2, ",", "2"),
    ("0.250", ".", "0.25"), (None, ".", ""),
])
def test_number(value, sep, text):
    assert number(value, sep) == text


def _line(n: int, product: str, amount: str, fonction: str | None = "311",
          q: str | None = None, u: str | None = None) -> Line:
    return Line(number=n, product_code=product, nature="7062", amount=Decimal(amount),
                activity=product, fonction=fonction,
                quantity=Decimal(q) if q else None, unit_price=Decimal(u) if u else None)


def test_by_imputation_groups_in_first_seen_order_and_sums():
    lines = [_line(1, "FMC1", "85.00"), _line(2, "INST", "142.50"), _line(3, "FMC1", "30.00"),
             _line(4, "FMC1", "10.00", fonction="312")]
    groups = by_imputation(lines)
    assert [(g.product_code, g.fonction, g.amount, [ln.number for ln in g.lines])
            for g in groups] == [("FMC1", "311", Decimal("115.00"), [1, 3]),
                                 ("INST", "311", Decimal("142.50"), [2]),
                                 ("FMC1", "312", Decimal("10.00"), [4])]
    assert by_imputation([]) == []


def test_by_imputation_keeps_lines_of_two_operations_apart():
    lines = [_line(1, "FMC1", "85.00"), replace(_line(2, "FMC1", "30.00"), operation="OP12")]
    assert [(g.fonction, g.operation, g.amount) for g in by_imputation(lines)] == \
        [("311", None, Decimal("85.00")), ("311", "OP12", Decimal("30.00"))]


def test_pricing_keeps_a_consistent_quantity_and_unit_price():
    p = pricing(_line(1, "INST", "142.50", q="3", u="47.50"))
    assert (p.quantity, p.unit_price) == (Decimal("3"), Decimal("47.50"))
    # a line netted by a discount: 85.00 x 1 no longer gives 62.25
    p = pricing(_line(1, "FMC1", "62.25", q="1", u="85.00"))
    assert (p.quantity, p.unit_price) == (Decimal(1), Decimal("62.25"))
    p = pricing(_line(1, "FMC1", "62.25"))
    assert (p.quantity, p.unit_price) == (Decimal(1), Decimal("62.25"))
    p = pricing(_line(1, "FMC1", "42.50", q="0.5", u="85.00"))  # half a term
    assert (p.quantity, p.unit_price) == (Decimal("0.5"), Decimal("85.00"))
    p = pricing(_line(1, "FMC1", "62.25", q="0", u="0"))
    assert (p.quantity, p.unit_price) == (Decimal(1), Decimal("62.25"))
    # a free line: 0 x 85.00 is its amount, but a quantity is positive (1 x 0.00)
    p = pricing(_line(1, "FMC1", "0.00", q="0", u="85.00"))
    assert (p.quantity, p.unit_price) == (Decimal(1), Decimal("0.00"))


@pytest.mark.parametrize(("source", "value", "text"), [
    ("v | cents", Decimal("62.25"), "6225"),
    ("v | yesno", True, "1"),
    ("v | yesno", 0, "0"),
    ("v | csv_field", "a;b", '"a;b"'),
    ("v | csv_field", 'say "hi"', '"say ""hi"""'),
    ("v | number", Decimal("1.50"), "1.5"),  # '.' unless told otherwise
    ("v | number(',')", Decimal("1.50"), "1,5"),
])
def test_the_documented_filters_are_there_by_name(source, value, text, tmp_path):
    """The filters docs/onboarding.md lists, by the names it gives, in a template and in
    a mapping expression."""
    from pesgen._jinja import expression_environment, template_environment

    assert str(expression_environment().compile_expression(source)(v=value)) == text
    template = template_environment(tmp_path).from_string("{{ " + source + " }}")
    assert template.render(v=value) == text


def test_csv_record_doubles_a_quote_in_every_quoted_value_and_writes_no_column_as_nothing():
    """quoting='always' quotes every value in one join, a quote inside doubled (as the
    minimal mode does), and a record of no column is empty, not one empty quoted value."""
    assert csv_record(['a"b', "c", None], quoting="always") == '"a""b";"c";""'
    assert csv_record(['say "hi"'], quoting="always", delimiter="|") == '"say ""hi"""'
    assert csv_record([], quoting="always") == ""
    assert csv_record([], quoting="minimal") == ""
    # a number left unquoted: the others quoted one by one, a quote doubled all the same
    assert csv_record(['a"b', 1], quoting="always", unquoted=[2]) == '"a""b";1'


def test_csv_record_never_names_a_carriage_return_as_a_line_break():
    """A value holding a carriage return alone (no line feed) is quoted, or may not be
    written unquoted: the refusal names it a line break, as for '\\n'."""
    assert csv_record(["a\rb", "c"]) == '"a\rb";c'
    with pytest.raises(ValueError, match=r"^csv_record: the value at position 1 \(a text of 3 "
                       r"characters\) holds a line break and may not be quoted$"):
        csv_record(["a\rb"], quoting="never")


def test_digits_keeps_ascii_digits_only():
    """digits writes ASCII digits: a digit of another script (Arabic-Indic '٤', full-width
    '３') is no digit of a flat file's numeric field, and is dropped as any sign is."""
    from pesgen.filters import digits

    assert digits("FA-\u0664\u0662-7\uff13") == "7"


def test_a_boolean_too_long_is_said_by_its_length_as_a_text():
    """A refusal says a number (an int, a Decimal) as it is; True is an int to Python but
    is written as the text 'True': said as a text, by its length."""
    with pytest.raises(ValueError, match="^a text of 4 characters is longer than 2 characters$"):
        fixed(True, 2)
    with pytest.raises(ValueError, match="^a text of 5 characters is longer than 3 characters$"):
        zfill(False, 3)


def test_zfill_refuses_none():
    """zfill of None (a value not set) is refused, not written '0None' (str(None)
    zero-filled), as pesgen did before 2026-12-01 (zfill_as_before keeps that)."""
    with pytest.raises(ValueError, match=r"^zfill of None: the value is not set"):
        zfill(None, 5)
