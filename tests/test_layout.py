"""Layouts of non-XML files: the schema, loading errors, and every rule the validator
checks, each problem naming file:line, record type, column and rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import ExitCode, MappingError
from pesgen.filters import fixed
from pesgen.layout import check_value, load_layout, split_csv, validate_file

CSV_LAYOUT = """\
pesgen_layout: 1
name: TEST
kind: csv
encoding: cp1252
line_ending: CRLF
delimiter: ";"
quoting: always
decimal_separator: ","
date_format: DD/MM/YYYY
records:
  - type: ecriture
    columns:
      - {name: Id, type: integer, length: 5, required: true, quoting: never}
      - {name: Sens, type: code, values: [R, D], required: true}
      - {name: Nom, type: text, length: 10, required: true}
      - {name: Date, type: date}
      - {name: Montant, type: decimal, decimals: 2, required: true, quoting: never}
      - {name: Reserve, type: text, length: 0}
      - {name: Ref, type: text, pattern: "[A-Z]{3}-[0-9]+"}
"""

FIXED_LAYOUT = """\
pesgen_layout: 1
name: FIX
kind: fixed
encoding: ISO-8859-1
record_type_column: Code
records:
  - type: entete
    when: "01"
    columns:
      - {name: Code, type: code, values: ["01", "02"], width: 2}
      - {name: Exercice, type: integer, width: 4, required: true}
      - {name: Filler, type: text, width: 4, length: 0}
  - type: article
    when: "02"
    columns:
      - {name: Code, type: code, values: ["01", "02"], width: 2}
      - {name: Montant, type: integer, width: 6, pad: "0", required: true}
      - {name: Nom, type: text, width: 8, required: true}
"""


def _layout(tmp_path: Path, text: str, name: str = "layout.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_layout(path)


def _check(tmp_path: Path, layout, content: bytes, name: str = "OUT.txt"):
    path = tmp_path / name
    path.write_bytes(content)
    return validate_file(path, layout)


GOOD = '1;"R";"DUPONT";"20/11/2026";85,00;"";"FAM-42"\r\n2;"D";"NÉE";"";0,5;"";""\r\n'


def test_check_layout_reads_a_file_in_the_encoding_given_when_the_layout_has_none(tmp_path):
    """--encoding: a publisher's sample in Windows-1252 (NÉE), checked against a layout
    that declares no encoding; without it the file is read as UTF-8 and refused."""
    layout = tmp_path / "no-encoding.layout.yaml"
    layout.write_text(CSV_LAYOUT.replace("encoding: cp1252\n", ""), encoding="utf-8")
    sample = tmp_path / "sample.csv"
    sample.write_bytes(GOOD.encode("cp1252"))
    r = CliRunner().invoke(app, ["check-layout", str(layout), str(sample), "--encoding",
                                 "cp1252"])
    assert r.exit_code == 0, r.output
    assert f"{sample}: valid against TEST" in r.stdout
    r = CliRunner().invoke(app, ["check-layout", str(layout), str(sample)])
    assert r.exit_code == ExitCode.OUTPUT and "(rule layout.encoding)" in r.stderr, r.output


def test_a_conforming_csv_file_has_no_problem(tmp_path):
    layout = _layout(tmp_path, CSV_LAYOUT)
    assert _check(tmp_path, layout, GOOD.encode("cp1252")) == []
    # ';' is the delimiter of a layout that names none
    layout = _layout(tmp_path, CSV_LAYOUT.replace('delimiter: ";"\n', ""))
    assert _check(tmp_path, layout, GOOD.encode("cp1252")) == []


@pytest.mark.parametrize(("line", "rule", "column", "words"), [
    ('1;"R";"DUPONT-LEFEVRE";"";1;"";""', "layout.length", "Nom (#3)", "14 characters"),
    ('x1;"R";"A";"";1;"";""', "layout.type", "Id (#1)", "not an integer"),
    ('1,5;"R";"A";"";1;"";""', "layout.type", "Id (#1)", "not an integer"),
    ('1;"X";"A";"";1;"";""', "layout.values", "Sens (#2)", "not an allowed value"),
    ('1;"R";"";"";1;"";""', "layout.required", "Nom (#3)", "is empty"),
    ('1;"R";"A";"2026-11-20";1;"";""', "layout.type", "Date (#4)", "DD/MM/YYYY"),
    ('1;"R";"A";"31/02/2026";1;"";""', "layout.type", "Date (#4)", "not a date"),
    ('1;"R";"A";"";85.00;"";""', "layout.type", "Montant (#5)",
     "(decimal separator is ',', not '.')"),
    ('1;"R";"A";"";85,001;"";""', "layout.type", "Montant (#5)", "at most 2 decimals"),
    ('1;"R";"A";"";1;"x";""', "layout.length", "Reserve (#6)", "must stay empty"),
    ('1;"R";"A";"";1;"";"fam42"', "layout.pattern", "Ref (#7)", "does not match"),
    ('1;R;"A";"";1;"";""', "layout.quoting", "Sens (#2)", "must be quoted"),
    ('"1";"R";"A";"";1;"";""', "layout.quoting", "Id (#1)", "must not be quoted"),
])
def test_each_rule_names_file_line_column_and_rule(tmp_path, line, rule, column, words):
    layout = _layout(tmp_path, CSV_LAYOUT)
    content = GOOD + line + "\r\n"
    problems = _check(tmp_path, layout, content.encode("cp1252"))
    assert len(problems) == 1, problems
    p = problems[0]
    assert p.rule == rule
    assert p.record == "OUT.txt:3"
    assert f"record 'ecriture', column {column}" in p.message
    assert words in p.message
    assert str(p).startswith("OUT.txt:3: record 'ecriture'")


def test_missing_and_extra_columns(tmp_path):
    layout = _layout(tmp_path, CSV_LAYOUT)
    content = '1;"R";"A";"";1\r\n1;"R";"A";"";1;"";"";"x"\r\n'
    problems = _check(tmp_path, layout, content.encode("cp1252"))
    assert [(p.record, p.rule) for p in problems] == [("OUT.txt:1", "layout.columns"),
                                                      ("OUT.txt:2", "layout.columns")]
    assert "has 5 fields, the layout has 7: missing column Reserve (#6)" in problems[0].message
    assert "1 extra field(s) after column Ref (#7)" in problems[1].message
    problems = _check(tmp_path, layout, b'1;"R";"A";"";1;""\r\n')
    assert [p.message for p in problems] == [
        "record 'ecriture' has 6 fields, the layout has 7: missing column Ref (#7)"]
    problems = _check(tmp_path, layout, b"1\r\n")
    assert [p.message for p in problems] == [
        "record 'ecriture' has 1 fields, the layout has 7: missing column Sens (#2) and after "
        "(Sens, Nom, Date, Montant, Reserve, …)"]


def test_every_problem_is_reported_not_the_first(tmp_path):
    layout = _layout(tmp_path, CSV_LAYOUT)
    content = 'x;"X";"";"";1.5;"";""\r\n' * 3
    problems = _check(tmp_path, layout, content.encode("cp1252"))
    assert len(problems) == 12
    assert {p.record for p in problems} == {"OUT.txt:1", "OUT.txt:2", "OUT.txt:3"}


def test_checking_stops_after_ten_thousand_problems_and_says_so(tmp_path):
    """layout.too-many: a file with a problem on every line is checked up to its
    10 001st problem, which says checking stopped there: the lines after it are not
    checked (their bad value and the missing final line ending are not listed).
    `pesgen check-layout` lists its first 200 problems, counts the rest and shows the one
    saying it stopped: it was counted among 'and 9801 more problem(s)', so the count
    passed for everything the file held. Exit 6, and check-layout writes nothing."""
    layout = tmp_path / "layout.yaml"
    layout.write_text(CSV_LAYOUT, encoding="utf-8")
    bad = '1;"X";"A";"";1;"";""\r\n'  # Sens: not an allowed value
    sample = tmp_path / "OUT.txt"
    sample.write_bytes((bad * 10_005).encode("cp1252") + b'1;"X";"A";"";1;"";""')
    problems = validate_file(sample, load_layout(layout))
    assert len(problems) == 10_001
    assert {p.rule for p in problems[:10_000]} == {"layout.values"}
    assert [p.record for p in problems[:10_000]] == [f"OUT.txt:{n}" for n in range(1, 10_001)]
    assert (problems[-1].rule, problems[-1].record, problems[-1].message) == (
        "layout.too-many", "OUT.txt:10001",
        "more than 10000 problems; the rest of the file was not checked")

    before = sorted(p.name for p in tmp_path.iterdir())
    r = CliRunner().invoke(app, ["check-layout", str(layout), str(sample)])
    assert r.exit_code == ExitCode.OUTPUT == 6, r.output[-2000:]
    assert r.stderr.splitlines() == [
        "error: 10001 problem(s) against layout TEST",
        # the 200 listed alike: said once, then each record (cli.ALIKE)
        "  - 200 problems alike, their records below: record 'ecriture', column Sens (#2): "
        "'X' is not an allowed value ('R', 'D') (rule layout.values)",
        *(f"      {sample}:{n}" for n in range(1, 201)),
        "  … and 9800 more problem(s)",
        f"  - {sample}:10001: more than 10000 problems; the rest of the file was not checked "
        "(rule layout.too-many)",
        "10001 problem(s)."]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # one problem fewer: every one is checked, and no layout.too-many
    sample.write_bytes((bad * 10_000).encode("cp1252"))
    r = CliRunner().invoke(app, ["check-layout", str(layout), str(sample)])
    assert r.exit_code == 6 and "layout.too-many" not in r.stderr
    assert r.stderr.splitlines()[-2:] == ["  … and 9800 more problem(s)", "10000 problem(s)."]


def test_file_level_rules(tmp_path):
    layout = _layout(tmp_path, CSV_LAYOUT)
    lf = GOOD.replace("\r\n", "\n")
    problems = _check(tmp_path, layout, lf.encode("cp1252"))
    assert [p.rule for p in problems] == ["layout.line-ending"] * 2
    assert "ends with LF, the layout wants CRLF" in problems[0].message
    no_final = GOOD[:-2]
    problems = _check(tmp_path, layout, no_final.encode("cp1252"))
    assert [(p.rule, p.record) for p in problems] == [("layout.final-newline", "OUT.txt:2")]
    undefined = GOOD.encode("cp1252").replace(b"\xc9", b"\x81")  # no such cp1252 byte
    problems = _check(tmp_path, layout, undefined)
    assert [(p.rule, p.record) for p in problems] == [("layout.encoding", "OUT.txt:2")]
    assert "byte 0x81 at column 9 is not cp1252" in problems[0].message
    problems = _check(tmp_path, layout, undefined * 2)  # the lines after one are checked
    assert [(p.rule, p.record) for p in problems] == [("layout.encoding", "OUT.txt:2"),
                                                      ("layout.encoding", "OUT.txt:4")]
    unclosed = GOOD + '1;"R";"RUE\r\nDES LILAS";"";1;"";""\r\n'
    problems = _check(tmp_path, layout, unclosed.encode("cp1252"))
    assert {p.rule for p in problems} >= {"layout.quoting"}
    assert "not closed" in problems[0].message
    assert _check(tmp_path, layout, b"") == []
    free = _layout(tmp_path, CSV_LAYOUT.replace("line_ending: CRLF\n",
                                                "line_ending: CRLF\nfinal_newline: false\n"))
    assert _check(tmp_path, free, no_final.encode("cp1252")) == []


def test_decimals_and_a_long_list_of_values(tmp_path):
    """A column's decimals (3, 0) and decimal separator ('.' here) as the layout says; an
    allowed-values list past 12 shown cut with '…'."""
    line = '1;"R";"A";"";%s;"";""\r\n'
    dot = _layout(tmp_path, CSV_LAYOUT.replace('decimal_separator: ","', 'decimal_separator: "."'))
    assert [p.message for p in _check(tmp_path, dot, (line % "85,00").encode())] == [
        "record 'ecriture', column Montant (#5): '85,00' is not a decimal number (decimal "
        "separator is '.', not ',')"]
    three = _layout(tmp_path, CSV_LAYOUT.replace("decimals: 2", "decimals: 3"))
    assert _check(tmp_path, three, (line % "0,125").encode()) == []
    none = _layout(tmp_path, CSV_LAYOUT.replace("decimals: 2", "decimals: 0"))
    assert _check(tmp_path, none, (line % "85").encode()) == []
    assert [p.message for p in _check(tmp_path, none, (line % "85,0").encode())] == [
        "record 'ecriture', column Montant (#5): '85,0' is not a decimal number (at most 0 "
        "decimals)"]
    two = _layout(tmp_path, CSV_LAYOUT.replace("decimals: 2, ", ""))  # 2 by default
    assert [p.message for p in _check(tmp_path, two, (line % "0,125").encode())] == [
        "record 'ecriture', column Montant (#5): '0,125' is not a decimal number (at most 2 "
        "decimals)"]
    letters = ", ".join("ABCDEFGHIJKLM")
    many = _layout(tmp_path, CSV_LAYOUT.replace("values: [R, D]", f"values: [{letters}]"))
    (p,) = _check(tmp_path, many, b'1;"X";"A";"";1;"";""\r\n')
    assert p.message.endswith("'X' is not an allowed value ('A', 'B', 'C', 'D', 'E', 'F', "
                              "'G', 'H', 'I', 'J', 'K', 'L', …)")


def test_header_line(tmp_path):
    text = CSV_LAYOUT.replace("quoting: always\n", "quoting: minimal\nheader: true\n")
    layout = _layout(tmp_path, text)
    good = "Id;Sens;Nom;Date;Montant;Reserve;Ref\r\n1;R;A;;1;;\r\n"
    assert _check(tmp_path, layout, good.encode()) == []
    bad = "Id;Sense;Nom;Date;Montant;Reserve;Ref\r\n1;R;A;;1;;\r\n"
    problems = _check(tmp_path, layout, bad.encode())
    assert [(p.rule, p.record) for p in problems] == [("layout.header", "OUT.txt:1")]
    assert "header field 2 is 'Sense', the layout wants 'Sens'" in problems[0].message
    problems = _check(tmp_path, layout, b"", "EMPTY.csv")
    assert [(p.rule, p.record) for p in problems] == [("layout.header", "EMPTY.csv:1")]
    assert "the header line is missing: EMPTY.csv is empty" in problems[0].message


def test_a_header_line_one_column_short_or_long(tmp_path):
    text = CSV_LAYOUT.replace("quoting: always\n", "quoting: minimal\nheader: true\n")
    layout = _layout(tmp_path, text)
    for header, says in (("Id;Sens;Nom;Date;Montant;Reserve",
                          "header field 7 is nothing, the layout wants 'Ref'"),
                         ("Id;Sens;Nom;Date;Montant;Reserve;Ref;X",
                          "header field 8 is 'X', the layout wants nothing")):
        problems = _check(tmp_path, layout, f"{header}\r\n1;R;A;;1;;\r\n".encode())
        assert [(p.rule, p.record, p.message) for p in problems] == [
            ("layout.header", "OUT.txt:1", says)]


def test_a_header_names_the_default_record_s_columns_else_the_first_s(tmp_path):
    ligne = ("  - type: ligne\n    columns:\n"
             "      - {name: NUM_FACT, type: text, length: 20, required: true}\n"
             "      - {name: MONTANT, type: decimal, decimals: 2, required: true}\n")
    first = ("  - type: ligne0\n    when: [L0]\n    columns:\n"
             "      - {name: TYPE, type: code, values: [L0]}\n")
    assert ligne in HEADER_DETAIL_TRAILER
    text = HEADER_DETAIL_TRAILER.replace(ligne, "").replace("records:\n", "records:\n" + first)
    layout = _layout(tmp_path, text + ligne)  # the default, ligne, listed last
    assert _check(tmp_path, layout, b"NUM_FACT;MONTANT\r\nFA-1;1.00\r\n") == []
    layout = _layout(tmp_path, text)  # no default: the first listed, ligne0
    assert _check(tmp_path, layout, b"TYPE\r\nFIN;1;1.00\r\n") == []


def test_a_value_of_the_checked_file_is_described_not_quoted(tmp_path):
    """A name too long, an IBAN breaking a pattern, a name where a number is expected:
    the problem says the length and the kinds of characters, not the value (the file
    is a billing export: check-layout on a publisher's sample, an export's output).
    Numbers, dates and short codes are still quoted."""
    layout = _layout(tmp_path, CSV_LAYOUT)
    iban = "FR7630006000011234567890189"
    lines = [f'1;"R";"DUPONT-LEFEVRE";"";1;"";"{iban}"',
             '"Hélène";"R";"A";"";1;"";""',
             '1;"R";"A";"";1;"Lucas";""',
             '1;"FACT";"A";"";1;"";""',
             '1;"R";"A";"";85.00;"";""']
    problems = _check(tmp_path, layout, (GOOD + "\r\n".join(lines) + "\r\n").encode("cp1252"))
    said = [p.message for p in problems]
    assert said == [
        "record 'ecriture', column Nom (#3): is 14 characters, the layout allows 10",
        "record 'ecriture', column Ref (#7): a text of 27 characters (letters, digits) does "
        "not match [A-Z]{3}-[0-9]+",
        "record 'ecriture', column Id (#1): a text of 6 characters (letters) must not be "
        "quoted",
        "record 'ecriture', column Id (#1): is 6 characters, the layout allows 5",
        "record 'ecriture', column Id (#1): a text of 6 characters (letters) is not an "
        "integer (digits only)",
        "record 'ecriture', column Reserve (#6): holds 5 character(s) in a reserved column "
        "that must stay empty",
        "record 'ecriture', column Sens (#2): 'FACT' is not an allowed value ('R', 'D')",
        "record 'ecriture', column Montant (#5): '85.00' is not a decimal number (decimal "
        "separator is ',', not '.')"], said
    for value in (iban, "DUPONT", "Hélène", "Lucas"):
        assert not any(value in m for m in said)


def test_fixed_width_records(tmp_path):
    layout = _layout(tmp_path, FIXED_LAYOUT)
    good = "012026    \n02000850DUPONT  \n02001000MARTIN  \n02000850 DURAND \n"
    assert _check(tmp_path, layout, good.encode("latin-1")) == []
    bad = ("012026    X\n"        # one character too many
           "02  0850DUPONT  \n"   # spaces in a zero-padded number
           "0200085DUPONT   \n"   # Montant one digit short: Nom shifted
           "03000850DUPONT  \n"   # unknown record type
           "02000850\n")          # Nom missing
    problems = _check(tmp_path, layout, bad.encode("latin-1"))
    got = [(p.record, p.rule) for p in problems]
    assert ("OUT.txt:1", "layout.columns") in got
    assert problems[0].message == ("record 'entete' is 11 characters, the layout has 10: 1 "
                                   "character(s) after column Filler (#3)")
    assert ("OUT.txt:2", "layout.type") in got
    assert ("record 'article', column Montant (#2): '  0850' has spaces in a field padded "
            "with '0'") in [p.message for p in problems if p.record == "OUT.txt:2"]
    assert ("OUT.txt:3", "layout.type") in got
    assert ("OUT.txt:4", "layout.record-type") in got
    missing = [p for p in problems if p.record == "OUT.txt:5" and "missing" in p.message]
    assert missing and "column Nom (#3)" in missing[0].message
    assert [p.message for p in problems if p.record == "OUT.txt:4"] == [
        "column Code (#1): '03' is no record type (known: '01' (entete), '02' (article))"]
    typed = _layout(tmp_path, CSV_LAYOUT.replace(
        "records:\n  - type: ecriture\n",
        "record_type_column: Sens\nrecords:\n  - type: ecriture\n    when: [R, D]\n"))
    problems = _check(tmp_path, typed, b'1;"ABC";"A";"";1;"";""\r\n')
    assert [p.message for p in problems] == [  # a code, quoted whatever its letters
        "column Sens (#2): 'ABC' is no record type (known: 'R' (ecriture), 'D' (ecriture))"]
    problems = _check(tmp_path, typed, b'1;"R"\r\n')  # the type in the line's last field
    assert [p.message for p in problems] == [
        "record 'ecriture' has 2 fields, the layout has 7: missing column Nom (#3) and after "
        "(Nom, Date, Montant, Reserve, Ref)"]
    # one character short: the last column is missing, not read as 7 characters
    problems = _check(tmp_path, layout, b"02000850DUPONT \n")
    assert [(p.rule, p.message) for p in problems] == [
        ("layout.columns", "record 'article' is 15 characters, the layout has 16: column Nom "
         "(#3) (characters 9-16) is cut")]


def test_lines_too_short_alike_are_said_once_with_their_count(tmp_path):
    """A template writing every line of a record type too short (a fixed(38) where the
    layout has 40) was refused twice a line (the line's width, then each column past its
    end 'missing'), 60 problems for 30 lines: it is one problem for the lines alike,
    saying the column cut and those after it, how many more lines and the first ones;
    a line short otherwise is its own problem."""
    layout = _layout(tmp_path, FIXED_LAYOUT)
    lines = ["012026    "] + ["02000850DUPONT "] * 7 + ["020008", "02000850DUPONT "]
    problems = _check(tmp_path, layout, ("\n".join(lines) + "\n").encode("latin-1"))
    assert [(p.record, p.rule, p.message) for p in problems] == [
        ("OUT.txt:2", "layout.columns", "record 'article' is 15 characters, the layout has 16: "
         "column Nom (#3) (characters 9-16) is cut (and 7 more line(s) alike: 3, 4, 5, 6, 7, …)"),
        ("OUT.txt:9", "layout.columns", "record 'article' is 6 characters, the layout has 16: "
         "column Montant (#2) (characters 3-8) is cut, and the 1 column(s) after it (Nom)")]
    missing = _check(tmp_path, layout, b"012026    \n02\n")
    assert [p.message for p in missing] == [
        "record 'article' is 2 characters, the layout has 16: column Montant (#2) "
        "(characters 3-8) is missing, and the 1 column(s) after it (Nom)"]


def test_a_short_line_names_five_columns_after_the_one_cut_and_five_lines_alike(tmp_path):
    """Of the columns after the one a short line ends in, five are named, then '…'; of
    the other lines alike, the first five, with '…' only when there are more; a column
    whose first character the line holds is cut, not missing."""
    columns = "".join(f"      - {{name: C{i}, type: text, width: 2}}\n" for i in range(1, 9))
    layout = _layout(tmp_path, f"""\
pesgen_layout: 1
name: W
kind: fixed
records:
  - type: ligne
    columns:
{columns}""")
    problems = _check(tmp_path, layout, b"xxx\n" * 6)
    assert [(p.record, p.message) for p in problems] == [
        ("OUT.txt:1", "record 'ligne' is 3 characters, the layout has 16: column C2 (#2) "
         "(characters 3-4) is cut, and the 6 column(s) after it (C3, C4, C5, C6, C7, …) "
         "(and 5 more line(s) alike: 2, 3, 4, 5, 6)")]


def test_layout_errors_name_file_line_and_key(tmp_path):
    text = CSV_LAYOUT.replace("type: code, values: [R, D]", "type: code") \
        .replace("decimal_separator: \",\"", "decimal_separator: \",\"\nquotechar: x")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, text)
    messages = [str(p) for p in info.value.problems]
    assert any("layout.yaml:9: quotechar" in m and "unknown key 'quotechar'" in m and
               "did you mean 'quote_char'" in m for m in messages)
    text = CSV_LAYOUT.replace("type: code, values: [R, D]", "type: code")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, text)
    assert [(p.rule, p.message, p.mapping.split(":", 1)[1]) for p in info.value.problems] == [
        ("layout.schema", "column 'Sens' of type code needs `values`", "14: records[0].columns[1]")]
    fixed = FIXED_LAYOUT.replace("width: 4, length: 0", "length: 0")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, fixed)
    assert any("needs a width" in str(p) for p in info.value.problems)
    overlap = FIXED_LAYOUT.replace("{name: Exercice, type: integer, width: 4",
                                   "{name: Exercice, type: integer, start: 2, width: 4")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, overlap)
    assert [(p.message, p.mapping.split(":", 1)[1]) for p in info.value.problems] == [
        ("column 'Exercice' starts at 2, inside the previous column (which ends at 2)",
         "11: records[0].columns[1].start")]
    with pytest.raises(MappingError):
        _layout(tmp_path, CSV_LAYOUT.replace("date_format: DD/MM/YYYY", "date_format: %d/%m"))
    code = '      - {name: Code, type: code, values: ["01", "02"], width: 2}\n'
    article = FIXED_LAYOUT.index("  - type: article")
    moved = FIXED_LAYOUT[:article] + FIXED_LAYOUT[article:].replace(code, "") + code
    for text, said in (
            (FIXED_LAYOUT.replace("width: 8, required", "width: 8, length: 9, required"),
             "column 'Nom': length 9 exceeds width 8"),
            (CSV_LAYOUT.replace('delimiter: ";"', "delimiter: '\"'"),
             "delimiter and quote_char must differ"),
            (moved, "column 'Code' must be at the same position in every record type")):
        with pytest.raises(MappingError) as info:
            _layout(tmp_path, text)
        assert [p.message for p in info.value.problems] == [said]


@pytest.mark.parametrize("key", ["start: 1", "width: 5", "align: right", "pad: \"0\""])
def test_a_fixed_width_key_in_a_csv_layout_is_named(tmp_path, key):
    text = CSV_LAYOUT.replace("{name: Id, type: integer,", "{name: Id, " + key + ", type: integer,")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, text)
    name = key.split(":")[0]
    assert [(p.rule, p.message, p.mapping.split(":", 1)[1]) for p in info.value.problems] == [
        ("layout.schema", f"column 'Id': '{name}' is for fixed layouts",
         f"13: records[0].columns[0].{name}")]


@pytest.mark.parametrize("key", ['delimiter: ";"', "quote_char: \"'\"", "quoting: always",
                                 "header: true"])
def test_a_csv_key_in_a_fixed_layout_is_named(tmp_path, key):
    text = FIXED_LAYOUT.replace("kind: fixed\n", f"kind: fixed\n{key}\n")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, text)
    name = key.split(":")[0]
    assert [(p.rule, p.message, p.mapping.split(":", 1)[1]) for p in info.value.problems] == [
        ("layout.schema", f"'{name}' is for csv layouts, this one is fixed", f"4: {name}")]


def test_a_record_type_column_no_record_has_is_named(tmp_path):
    """record_type_column naming a column that the one record type (the default, without
    `when`) lacks: a layout error, not a validator that finds no such column."""
    text = CSV_LAYOUT.replace("records:\n", "record_type_column: Nope\nrecords:\n")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, text)
    assert [(p.rule, p.message, p.mapping.split(":", 1)[1]) for p in info.value.problems] == [
        ("layout.schema", "no record has the column 'Nope' (record_type_column)",
         "10: record_type_column")]


def test_two_record_types_need_a_record_type_column(tmp_path):
    text = FIXED_LAYOUT.replace("record_type_column: Code\n", "")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, text)
    assert [(p.message, p.mapping.split(":", 1)[1]) for p in info.value.problems] == [
        ("several record types need record_type_column", "5: records")]


def test_a_record_type_padded_in_its_column_is_read(tmp_path):
    """A record type shorter than its column ('1 ' in a column of 2, left-aligned) is
    read without its padding, as its column's value is."""
    text = FIXED_LAYOUT.replace('"01", "02"', '"1", "2"').replace('when: "01"', 'when: "1"') \
        .replace('when: "02"', 'when: "2"')
    layout = _layout(tmp_path, text)
    assert _check(tmp_path, layout, b"1 2026    \n2 000850DUPONT  \n") == []


def test_a_column_s_own_date_format(tmp_path):
    text = CSV_LAYOUT.replace("{name: Date, type: date}",
                              "{name: Date, type: date, date_format: YYYY-MM-DD}")
    layout = _layout(tmp_path, text)
    assert _check(tmp_path, layout, b'1;"R";"A";"2026-11-20";1;"";""\r\n') == []
    assert [p.message for p in _check(tmp_path, layout, b'1;"R";"A";"20/11/2026";1;"";""\r\n')
            ] == ["record 'ecriture', column Date (#4): '20/11/2026' is not a date in the "
                  "format YYYY-MM-DD"]


def test_split_csv():
    assert split_csv('a;"b;c";"d""e";', ";", '"') == (
        [("a", False), ("b;c", True), ('d"e', True), ("", False)], None)
    assert split_csv('"a"x;b', ";", '"')[1] == "field 1: characters after the closing quote"
    assert split_csv('a"b', ";", '"')[1] == "field 1: quote character inside an unquoted value"
    assert split_csv('a;"b', ";", '"')[1] == ("field 2: quoted value not closed (a line break "
                                             "inside a value?)")


def test_check_value_is_usable_alone(tmp_path):
    layout = _layout(tmp_path, CSV_LAYOUT)
    montant = layout.records[0].columns[4]
    assert check_value(montant, "12,50") == []
    assert check_value(montant, "-1,00")[0][0] == "layout.type"
    ref = _layout(tmp_path, CSV_LAYOUT.replace('pattern: "[A-Z]{3}-[0-9]+"',
                                               'pattern: "[A-Z]{3}-[0-9]+", min_length: 5'))
    column = ref.records[0].columns[6]
    assert check_value(column, "ABC-1") == []  # as long as the least allowed
    assert check_value(column, "AB-1") == [
        ("layout.length", "is 4 characters, the layout wants at least 5"),
        ("layout.pattern", "'AB-1' does not match [A-Z]{3}-[0-9]+")]


HEADER_DETAIL_TRAILER = """\
pesgen_layout: 1
name: CIVITAS
kind: csv
encoding: ISO-8859-1
line_ending: CRLF
delimiter: ";"
header: true
record_type_column: TYPE
records:
  - type: ligne
    columns:
      - {name: NUM_FACT, type: text, length: 20, required: true}
      - {name: MONTANT, type: decimal, decimals: 2, required: true}
  - type: fin
    when: FIN
    columns:
      - {name: TYPE, type: code, values: [FIN]}
      - {name: LIGNES, type: integer, required: true}
      - {name: TOTAL, type: decimal, decimals: 2, required: true}
"""


def test_a_default_record_type_lets_a_header_details_and_a_trailer_coexist(tmp_path):
    """Detail lines carry no type code: the record without `when` takes every line the
    others do not select; the header names its columns."""
    layout = _layout(tmp_path, HEADER_DETAIL_TRAILER)
    good = "NUM_FACT;MONTANT\r\nFA-1;85.00\r\nFA-2;12.50\r\nFIN;2;97.50\r\n"
    assert _check(tmp_path, layout, good.encode()) == []
    bad = "NUM_FACT;MONTANT\r\nFA-1;85.00;x\r\nFIN;2\r\n"
    problems = _check(tmp_path, layout, bad.encode())
    assert [(p.rule, p.record) for p in problems] == [
        ("layout.columns", "OUT.txt:2"), ("layout.columns", "OUT.txt:3")]
    two_defaults = HEADER_DETAIL_TRAILER.replace("    when: FIN\n", "")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, two_defaults, "two.yaml")
    assert any("one record type at most is the default" in p.message
               for p in info.value.problems)


def test_a_single_record_type_still_checks_its_when(tmp_path):
    """With record_type_column set, one record type selects only the lines its `when`
    names: another type code is refused, not taken for that record."""
    text = """\
pesgen_layout: 1
name: ONE
kind: csv
delimiter: ";"
record_type_column: Type
records:
  - type: detail
    when: "D"
    columns:
      - {name: Type, type: code, values: [D]}
      - {name: Montant, type: decimal, decimals: 2}
"""
    layout = _layout(tmp_path, text)
    assert _check(tmp_path, layout, b"D;1.00\n") == []
    problems = _check(tmp_path, layout, b"X;1.00\n")
    assert [(p.rule, p.record) for p in problems] == [("layout.record-type", "OUT.txt:1")]
    assert "'X' is no record type (known: 'D' (detail))" in problems[0].message


def test_zero_padding_before_the_sign_is_refused(tmp_path):
    """A signed number padded with zeros carries its sign first ('-0000012', as the
    fixed filter writes it): '00000-12' is refused."""
    text = FIXED_LAYOUT.replace('{name: Montant, type: integer, width: 6, pad: "0",',
                                '{name: Montant, type: integer, width: 6, pad: "0", signed: true,')
    layout = _layout(tmp_path, text)
    good = f"02{fixed(-85, 6, 'right', '0')}DUPONT  \n02000850DUPONT  \n"
    assert _check(tmp_path, layout, good.encode("latin-1")) == []
    problems = _check(tmp_path, layout, b"020-0085DUPONT  \n")
    assert [(p.rule, p.record) for p in problems] == [("layout.type", "OUT.txt:1")]
    assert "'0-0085' has the padding '0' before its sign" in problems[0].message
    assert problems[0].message.endswith("(the sign comes first: '-00085')")


def test_a_plus_sign_is_refused_wherever_the_padding_puts_it(tmp_path):
    """A signed column takes '-' only: the fixed filter writes '+0000085' for a '+85'
    value, and the check refuses it as it refuses '000+85' (no PES or package layout
    here writes a '+')."""
    text = FIXED_LAYOUT.replace('{name: Montant, type: integer, width: 6, pad: "0",',
                                '{name: Montant, type: integer, width: 6, pad: "0", signed: true,')
    layout = _layout(tmp_path, text)
    for amount in (fixed("+85", 6, "right", "0"), "000+85"):
        problems = _check(tmp_path, layout, f"02{amount}DUPONT  \n".encode("latin-1"))
        assert [(p.rule, p.record) for p in problems] == [("layout.type", "OUT.txt:1")], amount
        assert "is not an integer" in problems[0].message


@pytest.mark.parametrize(("column", "value", "says"), [
    (4, "-62,25", "'-62,25' has a sign: the column takes no negative number"),
    (0, "-1", "'-1' has a sign: the column takes no negative number"),
    (4, "+62,25", "'+62,25' has a sign: the column takes no signed number"),
    # a wrong number besides its sign is said so, not blamed on the sign
    (4, "-62,255", "'-62,255' is not a decimal number (at most 2 decimals)"),
])
def test_a_sign_in_an_unsigned_column_is_named_as_the_problem(tmp_path, column, value, says):
    """'-62,25' in an unsigned decimal column was said 'not a decimal number (at most 4
    decimals)': the sign is what the column refuses."""
    layout = _layout(tmp_path, CSV_LAYOUT)
    [(rule, message)] = check_value(layout.records[0].columns[column], value)
    assert rule == "layout.type"
    assert message.startswith(says), message


def test_forbidden_characters_of_the_layout_and_a_column_s_own(tmp_path):
    """forbidden_characters applies to every column; a column's own replaces it ('' lets
    every character through)."""
    text = CSV_LAYOUT.replace("quoting: always\n",
                              "quoting: always\nforbidden_characters: ';\"'\n")
    text = text.replace('{name: Ref, type: text, pattern: "[A-Z]{3}-[0-9]+"}',
                        "{name: Ref, type: text, forbidden_characters: ''}")
    layout = _layout(tmp_path, text)
    nom, ref = layout.records[0].columns[2], layout.records[0].columns[6]
    assert check_value(nom, "DUPONT") == []
    [(rule, message)] = check_value(nom, 'DUP;"ONT')
    assert rule == "layout.forbidden"
    assert message.endswith("holds ';\"', which the layout forbids in any value "
                            "(forbidden_characters ';\"')")
    assert check_value(ref, 'A;"B') == []


# ------------------------------------------------------------------ groups (layout.group)

GROUPED = CSV_LAYOUT.replace("records:\n", """groups:
  - {key: Ref, first: {Sens: R}, rest: {Sens: D}, number: Id}
records:
""")


def test_groups_hold_their_first_and_other_lines_and_their_numbering(tmp_path):
    """A group's lines (same Ref) follow each other, its first holds Sens R, the next
    ones Sens D, and Id numbers them from 1: each break is one layout.group problem
    naming the line, the column and the group; a line without a key is in no group."""
    layout = _layout(tmp_path, GROUPED)
    good = ('1;"R";"A";"";1,00;"";"ABC-1"\r\n2;"D";"A";"";1,00;"";"ABC-1"\r\n'
            '1;"R";"B";"";1,00;"";"ABC-2"\r\n9;"D";"C";"";1,00;"";""\r\n')
    assert _check(tmp_path, layout, good.encode()) == []
    bad = ('1;"R";"A";"";1,00;"";"ABC-1"\r\n'
           '2;"R";"A";"";1,00;"";"ABC-1"\r\n'    # Sens R after the first
           '2;"D";"B";"";1,00;"";"ABC-2"\r\n'    # Sens D first, Id 2 first
           '3;"D";"A";"";1,00;"";"ABC-1"\r\n'    # ABC-1 again (said once)
           '4;"D";"A";"";1,00;"";"ABC-1"\r\n')   # goes on from ABC-1's third line
    got = [(p.record, p.rule, p.message) for p in _check(tmp_path, layout, bad.encode())]
    assert got == [
        ("OUT.txt:2", "layout.group", "record 'ecriture', column Sens (#2): 'R' on line 2 "
         "of group Ref 'ABC-1'; the layout wants 'D' on the lines after the first"),
        ("OUT.txt:3", "layout.group", "record 'ecriture', column Sens (#2): 'D' on the first "
         "line of group Ref 'ABC-2'; the layout wants 'R' on the first line of a group"),
        ("OUT.txt:3", "layout.group", "record 'ecriture', column Id (#1): '2' on the first "
         "line of group Ref 'ABC-2'; the layout wants 1 (the lines of a group numbered "
         "from 1)"),
        ("OUT.txt:4", "layout.group", "record 'ecriture', column Ref (#7): 'ABC-1' again, "
         "after its group ended at line 2: the lines of a group follow each other"),
    ]
    # a line with a problem of its own is still in its group
    bad = '1;"R";"A";"";1,00;"";"ABC-1"\r\n2;"R";"";"";1,00;"";"ABC-1"\r\n'
    got = [(p.rule, p.message) for p in _check(tmp_path, layout, bad.encode())]
    assert got == [
        ("layout.required", "record 'ecriture', column Nom (#3): is empty, the column is "
         "required"),
        ("layout.group", "record 'ecriture', column Sens (#2): 'R' on line 2 of group Ref "
         "'ABC-1'; the layout wants 'D' on the lines after the first")]


# ------------------------------------------------------------------ totals (layout.totals)

TOTALS_LAYOUT = """\
pesgen_layout: 1
name: TOT
kind: fixed
encoding: ISO-8859-1
record_type_column: Code
records:
  - type: entete
    when: "01"
    columns:
      - {name: Code, type: code, values: ["01", "02", "09"], width: 2}
      - {name: NbArticles, type: integer, width: 4, pad: "0", required: true}
  - type: article
    when: "02"
    columns:
      - {name: Code, type: code, values: ["01", "02", "09"], width: 2}
      - {name: Montant, type: integer, width: 6, pad: "0", required: true}
      - {name: Nom, type: text, width: 8, required: true}
  - type: fin
    when: "09"
    columns:
      - {name: Code, type: code, values: ["01", "02", "09"], width: 2}
      - {name: NbLignes, type: integer, width: 4, pad: "0", required: true}
      - {name: NbNoms, type: integer, width: 4, pad: "0", required: true}
      - {name: Total, type: integer, width: 8, pad: "0", required: true}
totals:
  - {record: entete, column: NbArticles, of: article, count: true, after: true}
  - {record: fin, column: NbLignes, of: article, count: true}
  - {record: fin, column: NbNoms, of: article, distinct: Nom}
  - {record: fin, column: Total, of: article, sum: Montant}
"""


def test_totals_hold_a_trailer_and_a_header_to_the_lines_they_count(tmp_path):
    """A trailer's count of lines, of distinct names and its sum are those of the
    article lines before it; a header's count (after: true) those after it: each figure
    that is not is one layout.totals problem at its line, naming the column, the figure
    the file's lines make and the layout's totals entry. A trailer counts from the
    previous one: a file of two batches checks each."""
    layout = _layout(tmp_path, TOTALS_LAYOUT)
    good = ("010003\n02000100DUPONT  \n02000250DUPONT  \n02000005MARTIN  \n"
            "090003000200000355\n010001\n02000001LEROY   \n090001000100000001\n")
    assert _check(tmp_path, layout, good.encode("latin-1")) == []
    # the trailer says the titles (2) for the lines (3), a name count of 3, a total
    # of 350; the header says 2 articles where 3 follow
    bad = ("010002\n02000100DUPONT  \n02000250DUPONT  \n02000005MARTIN  \n"
           "090002000300000350\n")
    (tmp_path / "OUT.txt").write_bytes(bad.encode("latin-1"))
    # as a template of a bundle wrote it (export, preview, check-mapping, check-format)
    got = [(p.record, p.rule, p.message) for p in validate_file(
        tmp_path / "OUT.txt", layout, writer="acme/acme.txt.j2")]
    where = f"{tmp_path / 'layout.yaml'}"
    check = ("check what the template writes there (doc.bordereau.count: the titles, "
             ".lines: their lines, .total: their amount)")
    before = "the 'article' records before it (since the previous 'fin' record or the start " \
        "of the file)"
    assert got == [
        ("OUT.txt:5", "layout.totals", f"record 'fin', column NbLignes (#2) says 2, but "
         f"{before} are 3: {check} [{where}:27: totals[1]]"),
        ("OUT.txt:5", "layout.totals", f"record 'fin', column NbNoms (#3) says 3, but "
         f"{before} hold 2 distinct Nom: {check} [{where}:28: totals[2]]"),
        ("OUT.txt:5", "layout.totals", f"record 'fin', column Total (#4) says 350, but the "
         f"Montant of {before} sum to 355: {check} [{where}:29: totals[3]]"),
        ("OUT.txt:1", "layout.totals", "record 'entete', column NbArticles (#2) says 2, but "
         "the 'article' records after it (up to the next 'entete' record or the end of the "
         f"file) are 3: {check} [{where}:26: totals[0]]"),
    ]


def test_totals_of_a_file_no_template_wrote_point_at_the_layout_entry(tmp_path):
    """check-layout of a publisher's sample whose trailer the layout's totals entry
    reads otherwise (a layout counting the wrong records) told to 'check what the
    template writes there (doc.bordereau.count…)', where no template wrote anything:
    a file of no known writer points at the layout's entry and the publisher's
    documentation first, and at the template for a file pesgen wrote."""
    _layout(tmp_path, TOTALS_LAYOUT)  # written as layout.yaml
    sample = tmp_path / "sample-from-publisher.txt"
    sample.write_bytes(b"010003\n02000100DUPONT  \n02000250DUPONT  \n02000005MARTIN  \n"
                       b"090002000200000355\n")
    r = CliRunner().invoke(app, ["check-layout", str(tmp_path / "layout.yaml"), str(sample)])
    assert r.exit_code == ExitCode.OUTPUT, r.output
    [said] = [ln for ln in r.stderr.splitlines() if "(rule layout.totals)" in ln]
    assert said == (
        f"  - {sample}:5: record 'fin', column NbLignes (#2) says 2, but the 'article' "
        "records before it (since the previous 'fin' record or the start of the file) are "
        "3: check this entry of the layout (its record, of, count, sum, distinct, after) "
        "against the publisher's documentation, or, for a file pesgen wrote, what the "
        "template writes there (doc.bordereau.count: the titles, .lines: their lines, "
        f".total: their amount) [{tmp_path / 'layout.yaml'}:27: totals[1]] "
        "(rule layout.totals)")


def test_totals_leave_out_empty_values_and_values_that_are_no_number(tmp_path):
    """A distinct count counts the values a column holds, not an empty one; a sum adds
    the numbers, not a value that is none ('NaN': refused by its column's type, said
    once, not again as a sum the trailer does not make)."""
    layout = _layout(tmp_path, """\
pesgen_layout: 1
name: T
kind: csv
header: true
decimal_separator: ","
record_type_column: Type
records:
  - type: ligne
    columns:
      - {name: Type, type: text}
      - {name: Nom, type: text}
      - {name: Montant, type: decimal}
  - type: fin
    when: FIN
    columns:
      - {name: Type, type: text}
      - {name: Noms, type: integer}
      - {name: Total, type: decimal}
totals:
  - {record: fin, column: Noms, of: ligne, distinct: Nom}
  - {record: fin, column: Total, of: ligne, sum: Montant}
""")
    text = "Type;Nom;Montant\nL;DUPONT;10,50\nL;;1,25\nL;MARTIN;NaN\nFIN;2;11,75\n"
    assert [(p.record, p.rule) for p in _check(tmp_path, layout, text.encode())] == [
        ("OUT.txt:4", "layout.type")]


def test_totals_read_a_csv_file_s_decimals_as_it_writes_them(tmp_path):
    """A CSV trailer's sum of a decimal column with its header line and ',' decimals:
    the figures said as the file writes them."""
    layout = _layout(tmp_path, """\
pesgen_layout: 1
name: T
kind: csv
header: true
decimal_separator: ","
record_type_column: Type
records:
  - type: ligne
    columns:
      - {name: Type, type: text}
      - {name: Montant, type: decimal}
  - type: fin
    when: FIN
    columns:
      - {name: Type, type: text}
      - {name: Total, type: decimal}
totals:
  - {record: fin, column: Total, of: ligne, sum: Montant}
""")
    good = "Type;Montant\nL;10,50\nL;1,25\nFIN;11,75\n"
    assert _check(tmp_path, layout, good.encode()) == []
    [problem] = _check(tmp_path, layout, good.replace("11,75", "11,70").encode())
    assert problem.record == "OUT.txt:4" and problem.rule == "layout.totals"
    assert problem.message.startswith("record 'fin', column Total (#2) says 11,70, but the "
                                      "Montant of the 'ligne' records before it (since the "
                                      "previous 'fin' record or the start of the file) sum "
                                      "to 11,75: ")


def test_totals_name_record_types_and_columns_of_the_layout(tmp_path):
    """A totals entry naming a record type or a column the layout lacks, or a text
    column as a figure or a sum, is a layout.schema problem at its line; one giving
    none or two of count, distinct and sum too: every one is listed."""
    text = TOTALS_LAYOUT.split("totals:\n")[0] + """totals:
  - {record: fim, column: NbLignes, of: article, count: true}
  - {record: fin, column: NbLigne, of: article, count: true}
  - {record: fin, column: Total, of: article, sum: Nom}
  - {record: fin, column: Total, of: article}
  - {record: fin, column: Total, of: article, count: true, sum: Montant}
"""
    with pytest.raises(MappingError) as err:
        _layout(tmp_path, text)
    got = [(p.rule, p.mapping.rsplit(": ", 1)[-1], p.message) for p in err.value.problems]
    assert {rule for rule, _, _ in got} == {"layout.schema"}
    assert [(key, message) for _, key, message in got] == [
        ("totals[0].record", "no record type 'fim' (known: entete, article, fin)"),
        ("totals[1].column", "record 'fin' has no column 'NbLigne'"),
        ("totals[2].sum", "column Nom (#3) of record 'article' is text: a sum is of an "
         "integer or decimal column"),
        ("totals[3]", "give one of count: true, distinct: COLUMN or sum: COLUMN (the figure "
         "the column holds), not none"),
        ("totals[4]", "give one of count: true, distinct: COLUMN or sum: COLUMN (the figure "
         "the column holds), not count and sum"),
    ]


def test_a_group_a_line_is_not_in_leaves_the_next_groups_checked(tmp_path):
    """Reserve (always empty) puts no line in a group of the first check: the second
    check still reads every line."""
    layout = _layout(tmp_path, GROUPED.replace("groups:\n", "groups:\n  - {key: Reserve}\n"))
    bad = '1;"R";"A";"";1,00;"";"ABC-1"\r\n2;"R";"A";"";1,00;"";"ABC-1"\r\n'
    assert [(p.record, p.rule) for p in _check(tmp_path, layout, bad.encode())] == [
        ("OUT.txt:2", "layout.group")]


def test_groups_read_fixed_width_lines_of_their_record_only(tmp_path):
    layout = _layout(tmp_path, FIXED_LAYOUT.replace("records:\n", """groups:
  - {key: Nom, record: article, number: Montant}
records:
"""))
    good = "012026    \n02000001DUPONT  \n02000002DUPONT  \n012026    \n02000001MARTIN  \n"
    assert _check(tmp_path, layout, good.encode("latin-1")) == []
    bad = "02000001DUPONT  \n02000003DUPONT  \n"
    got = [(p.record, p.rule) for p in _check(tmp_path, layout, bad.encode("latin-1"))]
    assert got == [("OUT.txt:2", "layout.group")]


@pytest.mark.parametrize("group, key, says", [
    ("{key: Nope}", "groups[0].key", "no column 'Nope' in any record"),
    ("{key: Nope, record: ecriture}", "groups[0].key", "no column 'Nope' in record "
     "'ecriture'"),
    ("{key: Ref, record: ligne}", "groups[0].record", "no record type 'ligne' (known: "
     "ecriture)"),
    ("{key: Ref, first: {Sens: X}}", "groups[0].first.Sens", "column Sens (#2): 'X' is not "
     "an allowed value ('R', 'D')"),
    ("{key: Ref, rest: {Nope: R}}", "groups[0].rest.Nope", "record 'ecriture' has no "
     "column 'Nope'"),
    ("{key: Ref, number: Nom}", "groups[0].number", "column Nom (#3) numbers the lines of a "
     "group: it must be an integer column, not text"),
    ("{key: Ref, number: Nope}", "groups[0].number", "record 'ecriture' has no column 'Nope'"),
    ("{key: Ref, first: {}}", "groups[0].first", ""),
])
def test_a_group_naming_what_its_records_lack_is_a_layout_error(tmp_path, group, key, says):
    text = CSV_LAYOUT.replace("records:\n", f"groups:\n  - {group}\nrecords:\n")
    with pytest.raises(MappingError) as info:
        _layout(tmp_path, text)
    shown = [str(p) for p in info.value.problems]
    assert any(f"layout.yaml:11: {key}" in m and says in m for m in shown), shown


def test_check_layout_finds_an_e_magnus_piece_whose_imputations_are_marked_wrong(tmp_path):
    """The shipped e.magnus layouts declare their groups: a second imputation marked M,
    a detail line numbered out of order, are refused by check-layout (exit 6)."""
    root = Path(__file__).parents[1] / "templates" / "bl-emagnus" / "expected"
    main = (root / "WTAMC001.txt").read_bytes().split(b"\r\n")
    fields = main[1].split(b";")
    assert fields[0] == main[0].split(b";")[0] and fields[6] == b'"S"'
    fields[6] = b'"M"'
    main[1] = b";".join(fields)
    (tmp_path / "WTAMC001.txt").write_bytes(b"\r\n".join(main))
    r = CliRunner().invoke(app, ["check-layout", "bl-emagnus/wtamc001.layout.yaml",
                                 str(tmp_path / "WTAMC001.txt")])
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert "WTAMC001.txt:2: record 'ecriture', column Multiple (#7): 'M' on line 2 of group " \
           "IDEcriture '1'; the layout wants 'S' on the lines after the first " \
           "(rule layout.group)" in r.stderr
    detail = (root / "WTAMC001AS.txt").read_bytes().split(b"\r\n")
    detail[0], detail[1] = detail[1], detail[0]
    (tmp_path / "AS.txt").write_bytes(b"\r\n".join(detail))
    r = CliRunner().invoke(app, ["check-layout", "bl-emagnus/wtamc001as.layout.yaml",
                                 str(tmp_path / "AS.txt")])
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert "AS.txt:1: record 'detail', column Ordre (#17): '2' on the first line of group " \
           "RefIdEcriture '1'; the layout wants 1" in r.stderr


def test_across_files_reads_fixed_width_files_too(tmp_path):
    """check_across on two fixed-width files: a detail's key of no piece, and a piece
    whose details do not sum to its amount, each named by file and line."""
    from pesgen.across import Across, check_across

    (tmp_path / "p.yaml").write_text(FIXED_LAYOUT, encoding="utf-8")
    (tmp_path / "d.yaml").write_text(FIXED_LAYOUT.replace("name: FIX", "name: DET"),
                                     encoding="utf-8")
    (tmp_path / "P.txt").write_bytes(b"012026    \n02000850DUPONT  \n02000100MARTIN  \n")
    (tmp_path / "D.txt").write_bytes(b"02000800DUPONT  \n02000050DUPONT  \n02000090MARTIN  \n"
                                     b"02000001DURAND  \n")
    check = Across("d.j2", "Nom", "p.j2", "Nom", "Montant", "Montant")
    files = {"p.j2": (tmp_path / "P.txt", "P.txt", tmp_path / "p.yaml"),
             "d.j2": (tmp_path / "D.txt", "D.txt", tmp_path / "d.yaml")}
    got = [(p.record, p.message) for p in check_across((check,), files, "latin-1")]
    assert got == [
        ("D.txt:4", "column Nom: 'DURAND' is no Nom of P.txt"),
        ("P.txt:3", "Nom 'MARTIN': its Montant sum to 100.00, the Montant of its lines in "
                    "D.txt to 90.00"),
    ]  # DUPONT's details (800 + 50) sum to its amount: nothing said


def test_line_values_reads_a_zero_padded_zero_as_the_checks_do(tmp_path):
    """A zero-padded field of zeros only is 0 for the line checks; line_values (which
    across_files and the option checks read) gave '' for it."""
    from pesgen.layout import line_values

    layout = _layout(tmp_path, FIXED_LAYOUT)
    values = {c.name: v for c, v in line_values(layout, "02000000DUPONT  ")}
    assert values == {"Code": "02", "Montant": "0", "Nom": "DUPONT"}
    short = [(c.name, v) for c, v in line_values(_layout(tmp_path, CSV_LAYOUT), '1;"R"')]
    assert short == [("Id", "1"), ("Sens", "R")]  # a line short of columns: those it has


def test_check_layout_says_the_bundle_charset_and_warns_of_a_value_outside_it(tmp_path):
    """The e.magnus layouts declare cp1252, the bundle holds its text to ascii
    (format.yaml charset): check-layout said nothing of the charset, and a publisher's
    sample holding 'È' passed without a word, where pesgen never writes one. It says
    the bundle's charset with its format.yaml line now, and warns (exit 0, rule
    layout.charset) of each value outside it by file:line and column, the first 20
    and a count of the rest; a layout of no bundle says only its encoding."""
    bundle = Path(__file__).parents[1] / "templates" / "bl-emagnus"
    spec = (bundle / "format.yaml").read_text(encoding="utf-8").splitlines()
    at = f"{bundle / 'format.yaml'}:{spec.index('charset: ascii') + 1}: charset"
    lines = (bundle / "expected" / "WTAMC001.txt").read_bytes().split(b"\r\n")
    assert b'"DUPONT-LEFEVRE"' in lines[0]
    sample = tmp_path / "WTAMC001.txt"
    sample.write_bytes(b"\r\n".join(ln.replace(b"DUPONT-LEFEVRE", "DUPONT-LEFÈVRE".encode(
        "cp1252")) for ln in lines))
    layout = bundle / "wtamc001.layout.yaml"
    r = CliRunner().invoke(app, ["check-layout", str(layout), str(sample)])
    assert r.exit_code == 0, r.output
    assert (f"{layout}: layout WTAMC001 OK (csv, 1 record type(s), 125 column(s), encoding "
            f"cp1252)\n  its text is held to charset ascii, format bl-emagnus's ({at}): "
            "pesgen writes no other character into it\n") in r.stdout
    assert (f"warning: {sample}:1: record 'ecriture', column Designation1 (#10): holds 'È', "
            "outside the format's charset ascii: pesgen writes no such character there "
            "(policies.transliterate replaces it, else the invoice is refused); a "
            "publisher's sample holding one says the package takes it: confirm the charset "
            f"with the publisher [format {at}] (rule layout.charset)") in r.stderr
    many = tmp_path / "many.txt"
    many.write_bytes(b"\r\n".join([lines[0].replace(b"DUPONT-LEFEVRE", "DUPONT-LEFÈVRE".encode(
        "cp1252"))] * 25 + [b""]))
    r = CliRunner().invoke(app, ["check-layout", str(layout), str(many)])
    assert r.stderr.count("(rule layout.charset)") == 21, r.stderr
    more = 25 * lines[0].count(b"DUPONT-LEFEVRE") - 20
    assert f"warning: {many}: {more} more value(s) outside charset ascii" in r.stderr
    alone = tmp_path / "alone.layout.yaml"
    alone.write_bytes(layout.read_bytes())
    r = CliRunner().invoke(app, ["check-layout", str(alone), str(sample)])
    assert r.exit_code == 0 and "charset" not in r.output, r.output
    assert "125 column(s), encoding cp1252)\n" in r.stdout


def test_layout_schema_problems_come_in_the_file_order_and_a_typed_word_is_suggested(
        tmp_path):
    """A layout with a key misspelt in its third column and a type misspelt in its
    twelfth listed the twelfth first (the problems sorted by their path as texts:
    columns[11] before columns[2]), and 'txt' got the list of types where a misspelt
    key gets its closest one. The problems come in the file's order now, and a word a
    key takes is suggested as a key is."""
    columns = [f"      - {{name: C{i}, type: text, length: 5}}" for i in range(12)]
    columns[2] = "      - {name: C2, type: text, lenght: 5}"
    columns[11] = "      - {name: C11, type: txt, length: 5}"
    path = tmp_path / "layout.yaml"
    path.write_text("pesgen_layout: 1\nname: TEST\nkind: csv\nrecords:\n  - type: ligne\n"
                    "    columns:\n" + "\n".join(columns) + "\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["check-layout", str(path)])
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")] == [
        "  - unknown key 'lenght' (did you mean 'length'?) "
        f"[layout {path}:9: records[0].columns[2].lenght] (rule layout.schema)",
        "  - 'txt' is not one of ['text', 'integer', 'decimal', 'date', 'code'] (did you "
        f"mean 'text'?) [layout {path}:18: records[0].columns[11].type] (rule layout.schema)"]


def test_check_layout_warns_of_its_bundle_that_does_not_load(tmp_path):
    """A layout declaring cp1252 in a scaffolded bundle whose format.yaml still says
    UTF-8 (the bundle BROKEN: they must be the same) passed check-layout with its OK and
    not a word of the bundle or its charset (layout_bundle gave None, as for a layout of
    no bundle): a technician learnt of it from the next command. It warns now, with the
    bundle's error and the check-format that lists what to fix; exit 0 still (the
    layout alone is valid), and the sample given is checked against it."""
    import shutil

    bundle = tmp_path / "formats" / "bl-emagnus"
    shutil.copytree(Path(__file__).parents[1] / "templates" / "bl-emagnus", bundle)
    spec = bundle / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count("encoding: cp1252\n") == 1
    spec.write_text(text.replace("encoding: cp1252\n", "encoding: UTF-8\n"), encoding="utf-8")
    layout = bundle / "wtamc001.layout.yaml"
    sample = bundle / "expected" / "WTAMC001.txt"
    r = CliRunner().invoke(app, ["check-layout", str(layout), str(sample)])
    assert r.exit_code == 0, r.output
    assert f"{layout}: layout WTAMC001 OK" in r.stdout and "charset" not in r.stdout
    assert f"{sample}: valid against WTAMC001" in r.stdout
    [said] = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert said.startswith(f"warning: {spec}, beside the layout, does not load: {spec}:")
    assert "the file is written in UTF-8 but its layout declares cp1252: make them the " \
        "same; the layout is checked alone, without the bundle's charset; pesgen " \
        f"check-format bl-emagnus --formats-dir {bundle.parent} lists what to fix" in said


def test_the_values_outside_the_charset_are_counted_past_the_first_ones_header_aside(
        tmp_path):
    """``charset_misfits`` (check-layout's rule layout.charset): every value of every line
    outside the charset is counted, the first ``limit`` said by line and column; a header
    line is the layout's, not a value; a line that does not decode in the layout's
    encoding (which the one given does not replace) is left to validate_file and the
    lines after it still read."""
    from pesgen.layout import charset_misfits

    layout = _layout(tmp_path, CSV_LAYOUT.replace("records:", "header: true\nrecords:"))
    sample = tmp_path / "sample.csv"
    sample.write_bytes(b"\r\n".join([
        'Id;"Sens";"Nôm";"Date";"Montant";"Reserve";"Ref"'.encode("cp1252"),
        '1;"R";"DUPONT";"";85,00;"";"FAM-42"'.encode("cp1252"),
        b'2;"R";"\x81";"";1,00;"";""',  # no character of cp1252
        '3;"R";"NÉE";"";0,5;"";"FAM-4€"'.encode("cp1252"),
        '4;"D";"LÉA";"";0,5;"";""'.encode("cp1252"), b""]))
    found, count = charset_misfits(sample, layout, "ascii", "format.yaml:13: charset",
                                   "sample.csv", "utf-8", limit=2)
    assert count == 3
    assert [(p.rule, p.record, p.mapping) for p in found] == [
        ("layout.charset", "sample.csv:4", "format.yaml:13: charset")] * 2
    assert found[0].message.startswith("record 'ecriture', column Nom (#3): holds 'É', ")
    assert found[1].message.startswith("record 'ecriture', column Ref (#7): holds '€', ")
    # without a header, the first line is one of values
    plain = _layout(tmp_path, CSV_LAYOUT, "plain.layout.yaml")
    found, count = charset_misfits(sample, plain, "ascii", "format.yaml:13: charset")
    assert (count, found[0].record) == (4, f"{sample}:1")


def test_totals_name_five_lines_of_no_known_record_type_then_an_ellipsis(tmp_path):
    """The totals' problem that may follow from lines of no known record type (counted
    as none) names the first five of them, then '…' when there are more."""
    layout = _layout(tmp_path, TOTALS_LAYOUT)
    for unknown, said in ((5, "lines 2, 3, 4, 5, 6: rule"),
                          (6, "lines 2, 3, 4, 5, 6, …: rule")):
        text = "010003\n" + "03000100DUPONT  \n" * unknown + "090000000000000000\n"
        (tmp_path / "OUT.txt").write_bytes(text.encode("latin-1"))
        totals = [p.message for p in validate_file(tmp_path / "OUT.txt", layout,
                                                   writer="acme/acme.txt.j2")
                  if p.rule == "layout.totals"]
        assert totals and all(f"which count as none ({said} layout.record-type): fix "
                              "those first; else check what the template writes" in m
                              for m in totals), totals
