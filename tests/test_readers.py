"""The input readers (pesgen/sources.py): a file read with the wrong settings, or
built to exhaust the reader, is refused with the record, the mapping's input key and
the rule named; never read into wrong values, never a traceback."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pesgen import _wide, sources
from pesgen.errors import InputDataError, MappingError, Problem
from pesgen.export import export

from .conftest import EXAMPLES, MAPPINGS
from .mapping_support import mapping_copy
from .test_bad_input import RUN, _example, _refused, _write_json

JSON_MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
CSV_MAPPING = MAPPINGS / "villeneuve-sur-loing-csv.yaml"
CSV_TEXT = (EXAMPLES / "school-export.csv").read_text(encoding="utf-8")
JSON_TEXT = (EXAMPLES / "school-export.json").read_text(encoding="utf-8")


def _only(exc: InputDataError | MappingError, rule: str) -> Problem:
    found = [p for p in exc.problems if p.rule == rule]
    assert len(found) == 1, exc.report()
    return found[0]


def _input_key(tmp_path: Path, key: str, value: str, source: Path = CSV_MAPPING) -> Path:
    """A copy of ``source`` with ``input.<key>`` set to ``value`` (added if absent)."""
    text = source.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start = lines.index("input:\n")
    for i in range(start + 1, len(lines)):
        if lines[i].startswith(f"  {key}:"):
            lines[i] = f"  {key}: {value}\n"
            break
        if not lines[i].startswith("  "):
            lines.insert(start + 1, f"  {key}: {value}\n")
            break
    path = tmp_path / "mapping.yaml"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _at(mapping: Path, key: str) -> str:
    lines = mapping.read_text(encoding="utf-8").splitlines()
    start = lines.index("input:")
    line = next(i for i, text in enumerate(lines[start:], start + 1)
                if text.startswith(f"  {key}:"))
    return f"{mapping}:{line}: input.{key}"


# ---------------------------------------------------------------- 1. UTF-8 read as 8-bit


@pytest.mark.parametrize("straddling", ["ascii", "utf-8"])
def test_a_utf8_file_past_one_block_is_refused_at_its_line(tmp_path, straddling):
    """The file is scanned in blocks of 1 MiB cut at a line end: a CRLF line end is one
    line, also when the block's last byte is its CR, and the line across the block's
    end is read whole (the header is padded so that this line's CR is byte 1 048 576;
    a UTF-8 letter opens it, or the first one is on the last line)."""
    m = _input_key(tmp_path, "encoding", "cp1252")
    lines = CSV_TEXT.splitlines()
    row = next(line for line in lines[1:] if line.isascii())
    across = row if straddling == "ascii" else "É" + row[1:]
    size = len(across.encode())
    pad = (sources._CHUNK - 1 - size - len(lines[0]) - 2) % (len(row) + 2)
    before = (sources._CHUNK - 1 - size - len(lines[0]) - 2 - pad) // (len(row) + 2)
    rows = [lines[0] + "x" * pad] + [row] * before + [across] + [row] * 2000 + [lines[1]]
    inp = tmp_path / "export.csv"
    inp.write_bytes("\r\n".join(rows).encode("utf-8") + b"\r\n")
    assert inp.read_bytes()[sources._CHUNK - 1:sources._CHUNK + 1] == b"\r\n"
    p = _only(_refused(tmp_path, m, inp), "input.encoding")
    assert p.record == f"{inp}:{len(rows) if straddling == 'ascii' else before + 2}"


def test_a_utf8_letter_opening_the_file_is_refused_at_line_1(tmp_path):
    m = _input_key(tmp_path, "encoding", "cp1252")
    inp = tmp_path / "export.csv"
    inp.write_text("É" + CSV_TEXT[1:], encoding="utf-8")
    p = _only(_refused(tmp_path, m, inp), "input.encoding")
    assert p.record == f"{inp}:1"


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "iso-8859-15"])
def test_a_utf8_file_declared_single_byte_is_refused_at_its_first_utf8_line(tmp_path,
                                                                           encoding):
    m = _input_key(tmp_path, "encoding", encoding)
    inp = tmp_path / "export.csv"
    inp.write_text(CSV_TEXT, encoding="utf-8")
    exc = _refused(tmp_path, m, inp)
    p = _only(exc, "input.encoding")
    first = next(i for i, line in enumerate(CSV_TEXT.splitlines(), 1) if not line.isascii())
    assert p.record == f"{inp}:{first}"
    assert p.mapping == _at(m, "encoding")
    assert "utf-8" in p.message and "UTF-8" in p.message


def test_a_utf8_line_above_cp1252_ones_is_refused_at_its_line(tmp_path):
    """A file declared cp1252 (LF line ends) whose first rows are UTF-8 and the later
    ones cp1252, two exports joined: the UTF-8 row is refused at its line, not read as
    'Ã©' because a byte further down is no UTF-8."""
    m = _input_key(tmp_path, "encoding", "cp1252")
    lines = CSV_TEXT.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if not line.isascii())
    inp = tmp_path / "export.csv"
    inp.write_bytes("\n".join(lines[:first]).encode("utf-8") + b"\n"
                    + "\n".join(lines[first:]).encode("cp1252") + b"\n")
    p = _only(_refused(tmp_path, m, inp), "input.encoding")
    assert p.record == f"{inp}:{first}"
    assert "the file is UTF-8 ('è' written as 0xC3 0xA8)" in p.message


def test_a_utf8_json_declared_cp1252_is_refused(tmp_path):
    m = _input_key(tmp_path, "encoding", "cp1252", JSON_MAPPING)
    inp = tmp_path / "export.json"
    inp.write_text(JSON_TEXT, encoding="utf-8")
    exc = _refused(tmp_path, m, inp)
    p = _only(exc, "input.encoding")
    first = next(i for i, line in enumerate(JSON_TEXT.splitlines(), 1) if not line.isascii())
    assert p.record == f"{inp}:{first}"


def _written_xml(out: Path) -> bytes:
    (xml,) = out.glob("*.xml")
    return xml.read_bytes()


@pytest.fixture(scope="module")
def utf8_csv_xml(tmp_path_factory) -> bytes:
    """The XML the example CSV gives read as UTF-8, as shipped."""
    tmp = tmp_path_factory.mktemp("utf8")
    export(CSV_MAPPING, EXAMPLES / "school-export.csv", tmp / "out", RUN)
    return _written_xml(tmp / "out")


def test_a_real_cp1252_file_is_read(tmp_path, utf8_csv_xml):
    m = _input_key(tmp_path, "encoding", "cp1252")
    inp = tmp_path / "export.csv"
    inp.write_text(CSV_TEXT, encoding="cp1252")
    export(m, inp, tmp_path / "out", RUN)
    assert _written_xml(tmp_path / "out") == utf8_csv_xml


# ---------------------------------------------------------------- 1b. Latin-9 read as Latin-1


_LATIN9_TEXT = CSV_TEXT.replace("–", "-")  # the one character ISO-8859-15 lacks


@pytest.mark.parametrize("encoding", ["latin-1", "ISO-8859-1", "cp1252"])
def test_a_latin9_file_read_as_latin1_or_cp1252_is_refused(tmp_path, encoding):
    """ISO-8859-15 writes 'œ' as 0xBD, which ISO-8859-1 and Windows-1252 read as '½'
    without an error: '3 allée du C½ur-Volant' was written with exit 0."""
    m = _input_key(tmp_path, "encoding", encoding)
    inp = tmp_path / "export.csv"
    inp.write_bytes(_LATIN9_TEXT.encode("iso-8859-15"))
    exc = _refused(tmp_path, m, inp)
    p = _only(exc, "input.encoding")
    first = next(i for i, line in enumerate(_LATIN9_TEXT.splitlines(), 1) if "œ" in line)
    assert p.record == f"{inp}:{first}"
    assert p.mapping == _at(m, "encoding")
    assert "0xBD" in p.message and "'œ' in ISO-8859-15" in p.message
    assert p.message.startswith(f"byte 0xBD next to a letter reads '½' in {encoding}")
    assert "set input.encoding: iso-8859-15" in p.message


def test_a_latin9_euro_sign_is_told_as_such(tmp_path):
    m = _input_key(tmp_path, "encoding", "latin-1")
    inp = tmp_path / "export.csv"
    inp.write_bytes(_LATIN9_TEXT.replace("Formation", "Cours à 10 €", 1).encode("iso-8859-15"))
    p = _only(_refused(tmp_path, m, inp), "input.encoding")
    assert p.message.startswith("byte 0xA4 in the text reads '¤' in latin-1, '€' in "
                                "ISO-8859-15: the file is ISO-8859-15 (Latin-9)?")


def test_a_latin9_file_read_as_itself_gives_the_utf8_titles(tmp_path):
    m = _input_key(tmp_path, "encoding", "iso-8859-15")
    inp = tmp_path / "export.csv"
    inp.write_bytes(_LATIN9_TEXT.encode("iso-8859-15"))
    export(m, inp, tmp_path / "out", RUN)
    same = tmp_path / "utf8.csv"  # the same text in UTF-8, read by the shipped mapping
    same.write_text(_LATIN9_TEXT, encoding="utf-8")
    export(CSV_MAPPING, same, tmp_path / "out8", RUN)
    written = _written_xml(tmp_path / "out")
    assert written == _written_xml(tmp_path / "out8")
    assert b"COEUR-VOLANT" in written


@pytest.mark.parametrize("text, refused", [
    ("Cours de 10 \u00a4", True),           # Latin-9's euro sign, read as '¤'
    ("S\u00bdur", True),                    # 'Sœur'
    ("\u00bcuvre", True),                   # 'Œuvre'
    ("\u00a6imon", True),                   # 'Šimon'
    ("V\u00bdu", True),                     # 'Vœu'
    ("Cours d'une heure \u00bd", False),     # a half, apart from letters
    ("\u00bd heure", False),
    ("Piano cours individuel \u00bdh", False),  # lesson lengths (review)
    ("Violon 1h\u00bd", False),
    ("Solf\u00e8ge \u00bch", False),
    ("L\u00b4\u00e9cole", False),          # an acute accent typed as an apostrophe
])
def test_which_latin1_signs_say_latin9(tmp_path, text, refused):
    inp = tmp_path / "x.csv"
    inp.write_bytes(f"a;b\n1;{text}\n".encode("latin-1"))
    found = sources._latin9_line(inp)
    assert (found is not None) is refused
    if refused:
        assert found[0] == 2


# The signs of a Latin-9 or a cp850 / Mac Roman file, in words, byte by byte: what the
# readers' patterns must find (the first one, by its line), on any bytes
_LETTER = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") | \
    set(range(0xC0, 0xD7)) | set(range(0xD8, 0xF7)) | set(range(0xF8, 0x100))
_ASCII_LETTER = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SMALL = set(b"abcdefghijklmnopqrstuvwxyz")


def _latin9_sign(data: bytes, i: int) -> bool:
    def letter(j: int) -> bool:
        return 0 <= j < len(data) and data[j] in _LETTER
    b = data[i]
    return b == 0xA4 or (b in (0xA6, 0xA8) and (letter(i - 1) or letter(i + 1))) or (
        0xBC <= b <= 0xBE and ((letter(i + 1) and letter(i + 2))
                               or (letter(i - 1) and letter(i + 1))))


def _oem_sign(data: bytes, i: int) -> bool:
    if not 0 < i < len(data) - 1:
        return False
    b, before, after = data[i], data[i - 1], data[i + 1]
    if b in (0x8A, 0x8C, 0x8E, 0x9F):  # Š Œ Ž Ÿ: between small letters only
        return before in _SMALL and after in _SMALL
    return (0x80 <= b <= 0x9D and b not in (0x8A, 0x8C, 0x8E, 0x91, 0x92, 0x96, 0x97, 0x9A,
                                            0x9C) and before in _ASCII_LETTER
            and after in _ASCII_LETTER)


def _first_line_of(data: bytes, sign) -> int | None:
    for i in range(len(data)):
        if sign(data, i):
            return 1 + data[:i].count(b"\n") + data[:i].count(b"\r") - data[:i].count(b"\r\n")
    return None


_AROUND = b"aZ\xe9\xd7 1\n\r"  # small, capital, Latin-1 letter, sign, space, digit, breaks
_SIGNS = bytes(range(0x80, 0xA0)) + b"\xa4\xa6\xa8\xbc\xbd\xbe"
# runs of a byte between two others (each sign meets each neighbour), one after another
_BYTES = st.lists(st.tuples(st.sampled_from(_AROUND), st.sampled_from(_SIGNS),
                            st.sampled_from(_AROUND + _SIGNS)).map(bytes), max_size=4) \
    .map(b"".join)


@settings(max_examples=1500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_BYTES)
def test_the_latin9_and_cp850_signs_are_found_as_said(tmp_path, data):
    inp = tmp_path / "x.csv"
    inp.write_bytes(data)
    found = sources._latin9_line(inp)
    assert (found[0] if found else None) == _first_line_of(data, _latin9_sign)
    signs = [m.start() for m in sources._OEM_SIGN.finditer(data)]
    assert signs == [i for i in range(len(data)) if _oem_sign(data, i)]


def test_the_c1_control_hint_says_utf8_when_the_bytes_are_utf8():
    from pesgen.text import TextPolicy, normalize

    as_latin1 = "L’école".encode().decode("latin-1")  # read with the wrong encoding
    error = normalize(as_latin1, "latin-1", TextPolicy()).error
    assert error is not None and "utf-8" in error and "cp1252" not in error
    as_latin1 = "L’école".encode("cp1252").decode("latin-1")
    error = normalize(as_latin1, "latin-1", TextPolicy()).error
    assert error is not None and "cp1252" in error


# ---------------------------------------------------------------- 1c. cp850, Mac Roman as cp1252


# the characters neither cp850 nor Mac Roman has, in the example
_OEM_TEXT = CSV_TEXT.replace("–", "-").replace("’", "'").replace("œ", "oe")
_OEM_SAVES = [("cp850", 'Excel\'s "CSV (MS-DOS)"'), ("mac_roman", 'Excel\'s "CSV (Macintosh)"')]


@pytest.mark.parametrize(("codec", "said"), _OEM_SAVES)
@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "iso-8859-15"])
def test_a_dos_or_mac_csv_save_read_as_cp1252_or_latin1_is_refused(tmp_path, codec, said,
                                                                   encoding):
    """cp850 writes 'è' as 0x8A, which Windows-1252 reads as 'Š' without an error:
    'Dupont-Lefèvre' went to the trésorerie as DUPONT-LEFSVRE, 'Šv' transliterated."""
    m = _input_key(tmp_path, "encoding", encoding)
    inp = tmp_path / "export.csv"
    inp.write_bytes(_OEM_TEXT.encode(codec))
    p = _only(_refused(tmp_path, m, inp), "input.encoding")
    assert p.record == f"{inp}:2"  # Lefèvre, on the first row
    assert p.mapping == _at(m, "encoding")
    byte = "è".encode(codec)[0]
    read = "è".encode(codec).decode(encoding, "replace")
    read_as = {"\ufffd": "is no character"}.get(read, f"reads '{read}'")
    if 0x80 <= ord(read) <= 0x9F:
        read_as = f"reads U+{ord(read):04X} (a control character)"
    assert p.message == (f"byte 0x{byte:02X} between two letters {read_as} in {encoding}, "
                         f"'è' in {codec} ({said}): the file is {codec}? set input.encoding: "
                         f"{codec}")


@pytest.mark.parametrize(("codec", "said"), _OEM_SAVES)
def test_a_dos_or_mac_csv_save_read_as_utf8_names_its_encoding(tmp_path, codec, said):
    inp = tmp_path / "export.csv"
    inp.write_bytes(_OEM_TEXT.encode(codec))
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.encoding")
    assert p.record == f"{inp}:2"
    assert p.message.endswith(f"; its bytes between letters read as French letters in {codec} "
                              f"({said}): input.encoding: {codec}?")


@pytest.mark.parametrize(("codec", "said"), _OEM_SAVES)
def test_a_dos_or_mac_save_read_as_itself_gives_the_utf8_titles(tmp_path, codec, said):
    m = _input_key(tmp_path, "encoding", codec)
    inp = tmp_path / "export.csv"
    inp.write_bytes(_OEM_TEXT.encode(codec))
    export(m, inp, tmp_path / "out", RUN)
    same = tmp_path / "utf8.csv"
    same.write_text(_OEM_TEXT, encoding="utf-8")
    export(CSV_MAPPING, same, tmp_path / "out8", RUN)
    written = _written_xml(tmp_path / "out")
    assert written == _written_xml(tmp_path / "out8")
    assert "DUPONT-LEFÈVRE".encode("iso-8859-1") in written  # the file's encoding


def test_a_json_export_in_cp850_read_as_cp1252_is_refused(tmp_path):
    m = _input_key(tmp_path, "encoding", "cp1252", JSON_MAPPING)
    text = JSON_TEXT.replace("–", "-").replace("’", "'").replace("œ", "oe")
    inp = tmp_path / "export.json"
    inp.write_bytes(text.encode("cp850"))
    p = _only(_refused(tmp_path, m, inp), "input.encoding")
    assert p.message.endswith("the file is cp850? set input.encoding: cp850")


@pytest.mark.parametrize("text", [
    "l’école",  # ’ 0x92: an apostrophe
    "l‘ecole",  # ‘ 0x91: an apostrophe typed so
    "Saint–Denis",  # – 0x96
    "Piano—Solfege",  # — 0x97
    "cœur",  # œ 0x9C
    "Kašpar", "Žižek",  # š 0x9A, ž 0x9E
    "ŠKODA", "CŒUR",  # Š Œ between capitals
    "10 €",  # € apart from letters
    "“Bonjour”",  # quotes around a word
])
def test_what_a_cp1252_word_holds_is_no_sign_of_cp850(tmp_path, text):
    inp = tmp_path / "x.csv"
    inp.write_bytes(f"a;b\n1;{text}\n".encode("cp1252"))
    assert sources._oem_signs(inp) is None


@pytest.mark.parametrize(("word", "codec"), [
    ("H\u00e9l\u00e8ne", "cp850"), ("Fran\u00e7ois", "cp850"), ("For\u00eat", "mac_roman"),
    ("No\u00ebl", "cp850"), ("H\u00c9L\u00c8NE", "cp850"), ("CL\u00c9MENT", "mac_roman"),
])
def test_a_french_letter_of_cp850_or_mac_roman_between_letters_is_found(tmp_path, word, codec):
    inp = tmp_path / "x.csv"
    inp.write_bytes(b"a;b\n1;x\n2;" + word.encode(codec) + b"\n")
    found = sources._oem_signs(inp)
    assert found is not None and found[0] == 3
    assert bytes([found[1]]).decode(found[2]) in word


# ---------------------------------------------------------------- 2. duplicate JSON keys


def test_a_duplicate_key_in_an_invoice_is_refused_with_its_path(tmp_path):
    text = JSON_TEXT.replace('"amount": "142.50"', '"amount": "14.25", "amount": "142.50"', 1)
    inp = tmp_path / "export.json"
    inp.write_text(text, encoding="utf-8")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.json-duplicate-key")
    assert p.record.startswith(f"{inp}:$.invoices[")
    assert p.record.endswith("].amount")
    assert "'amount'" in p.message


def test_a_duplicate_records_array_is_refused(tmp_path):
    data = _example()
    text = json.dumps(data)
    second = json.dumps(data["invoices"][1:])
    text = text[:-1] + f', "invoices": {second}}}'
    inp = tmp_path / "export.json"
    inp.write_text(text, encoding="utf-8")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert _only(exc, "input.json-duplicate-key").record == f"{inp}:$.invoices"


# ---------------------------------------------------------------- 3. JSON in 8-bit encodings


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_json_file_in_a_single_byte_encoding_is_exported(tmp_path, encoding):
    m = _input_key(tmp_path, "encoding", encoding, JSON_MAPPING)
    inp = tmp_path / "export.json"
    inp.write_text(JSON_TEXT.replace("’", "'").replace("–", "-").replace("œ", "oe")
                   .replace("Œ", "OE"), encoding=encoding)
    ref = tmp_path / "ref.json"
    ref.write_text(inp.read_text(encoding=encoding), encoding="utf-8")
    export(m, inp, tmp_path / "out", RUN)
    export(JSON_MAPPING, ref, tmp_path / "ref", RUN)
    for made in (tmp_path / "out").iterdir():
        assert made.read_bytes() == (tmp_path / "ref" / made.name).read_bytes()


# ---------------------------------------------------------------- 4. encoding errors


def test_delimiter_auto_reads_a_semicolon_file_as_the_comma_one(tmp_path, utf8_csv_xml):
    m = _input_key(tmp_path, "delimiter", "auto")
    rows = list(csv.reader(io.StringIO(CSV_TEXT, newline="")))
    text = io.StringIO(newline="")
    csv.writer(text, delimiter=";", lineterminator="\r\n").writerows(rows)
    inp = tmp_path / "export.csv"
    inp.write_bytes(text.getvalue().encode("utf-8"))
    export(m, inp, tmp_path / "out", RUN)
    assert _written_xml(tmp_path / "out") == utf8_csv_xml


def test_delimiter_auto_on_a_file_the_encoding_cannot_read_is_an_input_error(tmp_path):
    m = _input_key(tmp_path, "delimiter", "auto")
    inp = tmp_path / "export.csv"
    inp.write_text(CSV_TEXT, encoding="cp1252")
    exc = _refused(tmp_path, m, inp)
    p = _only(exc, "input.encoding")
    first = next(i for i, line in enumerate(CSV_TEXT.splitlines(), 1) if not line.isascii())
    assert p.record == f"{inp}:{first}"
    assert p.mapping == _at(m, "encoding")


def test_utf16_declared_for_a_utf8_file_is_an_input_error(tmp_path):
    m = _input_key(tmp_path, "encoding", "utf-16")
    inp = tmp_path / "export.csv"
    inp.write_text(CSV_TEXT, encoding="utf-8")
    exc = _refused(tmp_path, m, inp)
    p = _only(exc, "input.encoding")
    assert p.record == f"{inp}:1"
    assert p.mapping == _at(m, "encoding")
    assert p.message == ("not valid utf-16: UTF-16 stream does not start with BOM; the whole "
                         "file reads as UTF-8: input.encoding: utf-8?")


def _unicode_text(text: str) -> bytes:
    """``text`` (CSV, comma-separated) as a spreadsheet saves it as "Unicode text"
    (Excel's Texte Unicode): tab-separated, CRLF, UTF-16 LE after its byte order mark."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    out = io.StringIO(newline="")
    csv.writer(out, delimiter="\t", lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-16")  # the BOM, then little-endian on this machine


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "latin-1", "utf-16-be"])
@pytest.mark.parametrize("delimiter", ['","', '"\\t"'])
def test_a_spreadsheet_s_unicode_text_save_is_told_to_be_utf16(tmp_path, encoding,
                                                                delimiter):
    """Read as UTF-8, a UTF-16 file was said to read whole as cp1252 (its bytes do);
    as cp1252 or latin-1 with the right delimiter its header's columns were NULs between
    letters ('did you mean ÿþi\\x00n\\x00…'), with a comma a tab-separated header
    (after its NULs were dropped): each time the wrong fix. Refused at line 1 with the
    encoding that reads it, whatever else the mapping says."""
    m = _input_key(tmp_path, "encoding", encoding)
    m = _input_key(tmp_path, "delimiter", delimiter, m)
    inp = tmp_path / "export.txt"
    inp.write_bytes(_unicode_text(CSV_TEXT))
    p = _only(_refused(tmp_path, m, inp), "input.encoding")
    assert p.record == f"{inp}:1"
    assert p.mapping == _at(m, "encoding")
    assert p.message == ("the file is UTF-16 LE (it starts with the byte order mark FF FE), "
                         f"not {encoding}; set input.encoding: utf-16")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "UTF16"])
def test_a_unicode_text_save_declared_utf16_gives_the_utf8_file_s_xml(tmp_path, encoding,
                                                                       utf8_csv_xml):
    m = _input_key(tmp_path, "encoding", encoding)
    m = _input_key(tmp_path, "delimiter", '"\\t"', m)
    inp = tmp_path / "export.txt"
    inp.write_bytes(_unicode_text(CSV_TEXT))
    export(m, inp, tmp_path / "out", RUN)
    assert _written_xml(tmp_path / "out") == utf8_csv_xml


@pytest.mark.parametrize(("codec", "what", "reads"), [
    ("utf-16-be", "UTF-16 BE without a byte order mark (every second byte is a NUL)",
     "utf-16-be"),
    ("utf-16-le", "UTF-16 LE without a byte order mark (every second byte is a NUL)",
     "utf-16-le"),
    ("utf-32", "UTF-32 LE (it starts with the byte order mark FF FE 00 00)", "utf-32"),
])
def test_a_json_export_in_utf16_or_utf32_names_the_encoding_that_reads_it(
        tmp_path, codec, what, reads):
    inp = tmp_path / "export.json"
    inp.write_bytes(JSON_TEXT.encode(codec))
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.encoding")
    assert p.record == f"{inp}:1"
    assert p.message == f"the file is {what}, not utf-8; set input.encoding: {reads}"
    assert p.mapping == _at(JSON_MAPPING, "encoding")
    # and the encoding named reads it as the example itself
    m = _input_key(tmp_path, "encoding", reads, JSON_MAPPING)
    export(m, inp, tmp_path / "out", RUN)
    export(JSON_MAPPING, EXAMPLES / "school-export.json", tmp_path / "utf8", RUN)
    assert _written_xml(tmp_path / "out") == _written_xml(tmp_path / "utf8")


@pytest.mark.parametrize("head", [
    b"",  # empty
    b"a\x00b\x00c",  # too short to judge
    "Prénom;Nom\r\n".encode("cp1252") + b"\x00" + b"x;y\r\n" * 20,  # one stray NUL
    "Ā;Ȁ;a;b;c;d".encode("utf-16-le"),  # NULs on both sides: not the pattern
])
def test_a_file_is_wide_only_by_its_bom_or_a_nul_every_second_byte(head):
    assert _wide.wide(head) is None


def test_an_undecodable_json_names_line_and_encoding(tmp_path):
    inp = tmp_path / "export.json"
    inp.write_text(JSON_TEXT.replace("’", "'").replace("–", "-").replace("œ", "oe"),
                   encoding="cp1252")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.encoding")
    first = next(i for i, line in enumerate(JSON_TEXT.splitlines(), 1) if not line.isascii())
    assert p.record == f"{inp}:{first}"
    assert p.mapping == _at(JSON_MAPPING, "encoding")


def test_a_byte_a_single_byte_json_cannot_hold_names_its_line(tmp_path):
    """0x81 is no character of Windows-1252: a JSON export declared cp1252 that holds
    one is refused at its line, not met with a traceback."""
    m = _input_key(tmp_path, "encoding", "cp1252", JSON_MAPPING)
    text = JSON_TEXT.replace("’", "'").replace("–", "-").replace("œ", "oe")
    raw = text.encode("cp1252").replace(b"Montargis", b"\x81Montargis", 1)
    inp = tmp_path / "export.json"
    inp.write_bytes(raw)
    p = _only(_refused(tmp_path, m, inp), "input.encoding")
    line = raw[:raw.index(b"\x81")].count(b"\n") + 1
    assert p.record == f"{inp}:{line}"
    assert p.message.startswith("not valid cp1252: byte 0x81, byte ")
    assert p.mapping == _at(m, "encoding")


# ---------------------------------------------------------------- 5. bounded JSON


def test_deep_nesting_beside_the_invoices_is_refused_quickly(tmp_path):
    depth = 200_000
    text = JSON_TEXT.replace('"invoices": [', '"deep": ' + "[" * depth + "]" * depth
                             + ', "invoices": [', 1)
    inp = tmp_path / "export.json"
    inp.write_text(text, encoding="utf-8")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.json-depth")
    assert p.record.startswith(f"{inp}:$.deep[0][0]")
    assert str(sources.MAX_JSON_DEPTH) in p.message


def test_deep_nesting_inside_an_invoice_is_refused(tmp_path):
    data = _example()
    node: list = []
    data["invoices"][1]["notes"] = node
    for _ in range(100):
        node.append([])
        node = node[0]
    exc = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data))
    assert _only(exc, "input.json-depth").record.startswith(
        f"{tmp_path / 'school-export.json'}:$.invoices[1].notes[0][0]")


def test_deep_objects_inside_an_invoice_are_refused(tmp_path):
    # the fast reader counts an invoice's objects as its decoder makes them (its lists
    # by their '['): objects alone, no list, past the depth go to the exact reader too
    data = _example()
    node: dict = {}
    data["invoices"][1]["notes"] = node
    for _ in range(100):
        node["k"] = {}
        node = node["k"]
    exc = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data))
    assert _only(exc, "input.json-depth").record.startswith(
        f"{tmp_path / 'school-export.json'}:$.invoices[1].notes.k.k")


def test_a_huge_string_is_refused(tmp_path):
    data = _example()
    data["invoices"][2]["payer"]["email"] = "a" * (sources.MAX_JSON_STRING + 1)
    exc = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data))
    p = _only(exc, "input.json-size")
    assert p.record == f"{tmp_path / 'school-export.json'}:$.invoices[2].payer.email"


def test_a_huge_string_in_a_list_is_refused(tmp_path):
    data = _example()
    data["invoices"][2]["notes"] = [1, "a" * (sources.MAX_JSON_STRING + 1)]
    exc = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data))
    p = _only(exc, "input.json-size")
    assert p.record == f"{tmp_path / 'school-export.json'}:$.invoices[2].notes[1]"


def test_a_huge_record_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_JSON_RECORD_BYTES", 300_000)
    data = _example()
    data["invoices"][1]["lines"] = data["invoices"][1]["lines"] * 3000
    exc = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data))
    p = _only(exc, "input.json-size")
    assert p.record == f"{tmp_path / 'school-export.json'}:$.invoices[1]"


@pytest.mark.parametrize(("where", "path"), [
    ("before", "$.note"), ("after", "$.note"), ("inside", "$.school.logo"), ("root", "$")])
def test_a_huge_value_beside_the_invoices_is_refused_where_it_is(tmp_path, monkeypatch,
                                                                  where, path):
    """A value outside the invoices past the byte bound is named by its own path (the
    file's root for one in a top-level array): a value after the invoices was named by
    the last invoice read, '$.invoices[11]', which held nothing wrong."""
    monkeypatch.setattr(sources, "MAX_JSON_RECORD_BYTES", 300_000)
    monkeypatch.setattr(sources, "MAX_JSON_STRING", 1_000_000)  # the bytes' bound first
    huge = "x" * 600_000
    data = {"before": {"note": huge, **_example()}, "after": {**_example(), "note": huge},
            "inside": {"school": {"logo": huge}, **_example()}}.get(where, _example())
    inp = _write_json(tmp_path, data)
    if where == "root":
        inp.write_text(json.dumps([huge]), encoding="utf-8")
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.json-size")
    assert p.record == f"{inp}:{path}"


def test_a_long_json_path_is_cut_with_an_ellipsis(tmp_path):
    """A path past 160 characters is cut at 157 and ends with '…', which says so."""
    key = "k" * 200
    inp = tmp_path / "export.json"
    inp.write_text(f'{{"invoices": [{{"number": "A", "{key}": 1, "{key}": 2}}]}}',
                   encoding="utf-8")
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.json-duplicate-key")
    assert p.record == f"{inp}:" + f"$.invoices[0].{key}"[:157] + "…"
    key = "k" * (160 - len("$.invoices[0]."))  # 160 characters: shown whole
    inp.write_text(f'{{"invoices": [{{"number": "A", "{key}": 1, "{key}": 2}}]}}',
                   encoding="utf-8")
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.json-duplicate-key")
    assert p.record == f"{inp}:$.invoices[0].{key}"


def test_the_json_reader_reads_what_json_loads_reads(tmp_path):
    data = _example()
    data["invoices"][0]["extra"] = {"a": [1, 2.5, None, True, False, {"b": []}], "c": {}}
    inp = _write_json(tmp_path, data)
    spec = sources.InputSpec(format="json")
    got = [s.record for s in sources.read_invoices(inp, spec)]
    want = json.loads(inp.read_text(encoding="utf-8"), parse_float=__import__("decimal")
                      .Decimal)["invoices"]
    assert got == want


# ---------------------------------------------------------------- 6. CSV messages


def test_an_unterminated_quote_names_the_line_it_opens_on(tmp_path):
    lines = [line for line in CSV_TEXT.splitlines(keepends=True) if '"' not in line][:9]
    assert ",45200," in lines[2]
    lines[2] = lines[2].replace(",45200,", ',"45200,', 1)
    inp = tmp_path / "export.csv"
    inp.write_text("".join(lines), encoding="utf-8")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.csv")
    assert p.record == f"{inp}:3"
    assert "never closed" in p.message


def _unquoted_rows() -> list[str]:
    return [line for line in CSV_TEXT.splitlines(keepends=True) if '"' not in line]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_quote_left_open_past_the_field_limit_names_where_it_opens(tmp_path, newline):
    """A quote never closed in a file longer than the CSV reader's field limit was "field
    larger than field limit (131072)", the same as a long comment: now the line and
    column it opens on, and the rows it swallowed, quoting none of them."""
    rows = _unquoted_rows()
    lines = rows[:1] + rows[1:] * (2 * csv.field_size_limit() // len("".join(rows)) + 1)
    assert ",45200," in lines[2]
    lines[2] = lines[2].replace(",45200,", ',"45200,', 1)
    inp = tmp_path / "export.csv"
    inp.write_bytes("".join(lines).replace("\n", newline).encode())
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.csv")
    assert p.record == f"{inp}:3"
    assert p.message.startswith("a quoted field opened on line 3, column 15 ('postal_code') "
                                "is never closed: it runs past the CSV field limit (131072 "
                                "characters) over ")
    assert p.message.endswith(" line(s) that read as rows; check the quotes "
                              "(input.quotechar)")
    assert p.mapping is not None and p.mapping.endswith(": input.quotechar")
    assert "45200" not in exc.report() and "Montargis" not in exc.report()


def test_a_quote_left_open_in_the_header_past_the_field_limit_is_said_so(tmp_path):
    """The header's line, read before any row (no column known to name): its line and
    column, input.quotechar."""
    rows = _unquoted_rows()
    lines = ['"' + rows[0]] + rows[1:] * (2 * csv.field_size_limit() // len("".join(rows)))
    inp = tmp_path / "export.csv"
    inp.write_text("".join(lines), encoding="utf-8")
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.csv")
    assert p.record == f"{inp}:1"
    assert p.message.startswith("a quoted field opened on line 1, column 1 is never closed: "
                                "it runs past the CSV field limit (131072 characters) over ")
    assert p.mapping is not None and p.mapping.endswith(": input.quotechar")


@pytest.mark.parametrize("quoted", [True, False])
def test_a_field_longer_than_the_limit_is_not_blamed_on_the_quotes(tmp_path, quoted):
    """A comment column holding a pasted document (200 000 characters, quoted with its
    line breaks and commas, or one long word) was keyed to input.quotechar: now its line
    and column, no mapping key; the rows after a quoted one are checked from its end,
    not its lines read as rows of 2 fields."""
    header = CSV_TEXT.splitlines()[0].split(",")
    column = header.index("activity_label")
    rows = _unquoted_rows()
    cells = rows[3].rstrip("\n").split(",")
    text = "Lorem ipsum, dolor\n" * 10_600 if quoted else "x" * 200_000
    cells[column] = f'"{text}"' if quoted else text
    rows[3] = ",".join(cells) + "\n"
    assert rows[6].count(",") == len(header) - 1
    rows[6] = "a,b\n"
    inp = tmp_path / "export.csv"
    inp.write_text("".join(rows), encoding="utf-8")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.csv")
    assert p.record == f"{inp}:4"
    assert p.message == ("the field starting on line 4, column 30 ('activity_label') is "
                         "longer than the CSV field limit (131072 characters): a document "
                         "pasted into a cell? shorten it in the export (no quote is left "
                         "open)")
    assert p.mapping is None
    after = 7 + (text.count("\n") if quoted else 0)
    assert [q.record for q in exc.problems] == [f"{inp}:4", f"{inp}:{after}"]
    assert "Lorem" not in exc.report()


def test_an_encoding_error_in_a_cr_only_file_names_its_line(tmp_path):
    lines = CSV_TEXT.splitlines()
    inp = tmp_path / "export.csv"
    inp.write_bytes("\r".join(lines[:5]).encode() + b"\r" +
                    "\r".join(lines[5:]).encode("cp1252") + b"\r")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    first = next(i for i, line in enumerate(lines, 1) if i > 5 and not line.isascii())
    assert _only(exc, "input.encoding").record == f"{inp}:{first}"


def test_a_totals_line_under_the_rows_is_told_to_be_one(tmp_path):
    """A spreadsheet's sum under the amounts was 'invoice.number is missing' at its line,
    an invoice without its number; an empty row after it changes nothing."""
    width = CSV_TEXT.splitlines()[0].count(",")
    lines = CSV_TEXT.count("\n")
    inp = tmp_path / "export.csv"
    inp.write_text(CSV_TEXT + "," * width + "2527.25\n", encoding="utf-8")
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.csv-row")
    assert p.record == f"{inp}:{lines + 1}"
    assert p.message == ("the file's last row has no value in column 'invoice_number' "
                         "(input.group_by): a totals line? an export's rows are invoice lines "
                         "only: remove it from the export")
    assert p.mapping == _at(CSV_MAPPING, "group_by")
    inp.write_text(CSV_TEXT + "," * width + "2527.25\n" + "," * (width - 1) + "n,11\n\n",
                   encoding="utf-8")
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.csv-row")
    assert p.record == f"{inp}:{lines + 1}"
    assert p.message.startswith("the file's last 2 rows have no value in column ")
    # a row without its number inside the file is an invoice without one, as before
    rows = CSV_TEXT.splitlines(keepends=True)
    assert rows[2].startswith("FA-2026-00101,")
    rows.insert(2, "," * width + "1.00\n")
    inp.write_text("".join(rows), encoding="utf-8")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    assert not [p for p in exc.problems if p.rule == "input.csv-row"]
    assert any(p.rule == "input.required" and p.record == f"{inp}:3" for p in exc.problems)


def test_an_undecodable_first_or_last_byte_of_a_line_is_named(tmp_path):
    """The byte named is the one that does not decode, also when it opens its line or
    is the file's last (a Windows-1252 '’', 0x92, read as UTF-8, with no line break
    after it)."""
    lines = CSV_TEXT.splitlines()
    inp = tmp_path / "export.csv"
    inp.write_bytes("\n".join(lines).encode() + b"\x81")  # (not a cp1252 character)
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.encoding")
    assert p.record == f"{inp}:{len(lines)}"
    # (the other lines are UTF-8: the file mixes encodings, said after the byte)
    assert p.message.startswith(f"not valid utf-8: byte 0x81, byte "
                                f"{len(lines[-1].encode()) + 1} of the line; yet line 2 is "
                                "UTF-8"), p.message
    inp.write_bytes("\n".join(lines[:3]).encode() + b"\n\x92" + "\n".join(lines[3:]).encode())
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.encoding")
    assert p.record == f"{inp}:4"
    assert p.message.startswith("not valid utf-8: byte 0x92, byte 1 of the line; "), p.message


def test_a_file_read_as_utf8_that_reads_whole_as_cp1252_says_so(tmp_path):
    """A school's CSV exported on Windows (cp1252), read as UTF-8: the refusal says the
    whole file reads as cp1252, which one byte undefined there (0x81) rules out."""
    inp = tmp_path / "export.csv"
    inp.write_bytes(CSV_TEXT.encode("cp1252"))
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.encoding")
    assert p.message.endswith("; the whole file reads as cp1252 (Windows' Western European "
                              "encoding): input.encoding: cp1252?"), p.message
    assert "input.encoding: cp1252?); set input.encoding; nothing written" in str(exc)
    inp.write_bytes(CSV_TEXT.encode("cp1252") + b"\x81\n")
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.encoding")
    assert "cp1252" not in p.message, p.message


@pytest.mark.parametrize(("name", "source"), [("export.csv", CSV_MAPPING),
                                              ("export.json", JSON_MAPPING)])
def test_a_utf8_file_holding_a_cp1252_value_is_said_to_mix_encodings(tmp_path, name, source):
    """A UTF-8 export with one value written in Windows-1252 ('Bernard' typed 'Bernérd'
    in a legacy screen, 0xE9): no encoding reads it. It was told "the whole file reads as
    cp1252: input.encoding: cp1252?", and read as cp1252 it is refused as UTF-8 ("set
    input.encoding: utf-8"): a circle. It now says the file mixes two encodings, names a
    UTF-8 line, and names no mapping key (no setting fixes it)."""
    text = CSV_TEXT if name.endswith(".csv") else JSON_TEXT
    inp = tmp_path / name
    inp.write_bytes(text.encode("utf-8").replace(b"Bernard", b"Bern\xe9rd", 1))
    exc = _refused(tmp_path, source, inp)
    p = _only(exc, "input.encoding")
    line = text[:text.index("Bernard")].count("\n") + 1
    first = next(i for i, row in enumerate(text.splitlines(), 1) if not row.isascii())
    assert p.record == f"{inp}:{line}"
    assert f"; yet line {first} is UTF-8 ('" in p.message, p.message
    assert p.message.endswith(": the file mixes two encodings, which no input.encoding "
                              "reads; correct this line's value in the export"), p.message
    assert "cp1252" not in p.message
    assert p.mapping is None
    assert str(exc).endswith("in the export); nothing written"), str(exc)


def _twice(text: str) -> bytes:
    """``text`` UTF-8 encoded twice: read as Windows-1252 and written as UTF-8 again."""
    return text.encode("utf-8").decode("cp1252").encode("utf-8")


@pytest.mark.parametrize(("name", "source"), [("export.csv", CSV_MAPPING),
                                              ("export.json", JSON_MAPPING)])
def test_a_utf8_export_encoded_twice_is_refused(tmp_path, name, source):
    """A UTF-8 export whose text went once more through Windows-1252 ('Ã¨' for 'è', a
    spreadsheet opened in the wrong encoding and saved as UTF-8) is valid UTF-8: it was
    written as 'DUPONT-LEFÃ¨VRE' ('HÃ‰LÃˆNE' refused only for its '‰', which Latin-1
    lacks). Each text holding it is refused, naming its record, binding and rule."""
    text = CSV_TEXT if name.endswith(".csv") else JSON_TEXT
    inp = tmp_path / name
    inp.write_bytes(_twice(text))
    exc = _refused(tmp_path, source, inp)
    name_problems = [p for p in exc.problems if p.message.startswith("debtor.name holds ")]
    first = name_problems[0]
    assert first.rule == "text.charset"
    assert first.invoice == "FA-2026-00101"
    assert first.record == (f"{inp}:2" if name.endswith(".csv") else f"{inp}:$.invoices[0]")
    assert first.mapping is not None and first.mapping.endswith(": bindings.payer.name")
    assert first.message == (
        "debtor.name holds 'Ã¨', which is 'è' encoded in UTF-8 twice (a UTF-8 text read as "
        "Windows-1252 and saved as UTF-8 again, by a spreadsheet or a conversion): the "
        "export's text is wrong as it is, and no input.encoding reads it right; correct "
        "it in the export")
    assert {p.rule for p in exc.problems} == {"text.charset"}


@pytest.mark.parametrize("first", ["", "   ", ",,,", " , , "])
def test_a_blank_header_line_is_said_to_name_no_column(tmp_path, first):
    """A header line that is blank, spaces or delimiters alone, above the rows (the
    header dropped) or alone: it names no column. It was told "the header has 0
    columns: " (a blank line), "4 columns: , , , ", or, for spaces, that it reads as one
    column: check input.delimiter, which is not the cause."""
    rows = CSV_TEXT.splitlines(keepends=True)
    for text in (first + "\n" + "".join(rows[1:]), first + "\n\n"):
        inp = tmp_path / "export.csv"
        inp.write_text(text, encoding="utf-8")
        p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.column")
        assert p.record == f"{inp}:1"
        assert p.message == (f"input.group_by reads column 'invoice_number', and the first "
                             f"line of {inp} names no column (it is blank, or delimiters "
                             "alone); the export needs a header line there naming its "
                             "columns (input.header_line: the header's line, below a title)")


@pytest.mark.parametrize(("text", "detail"), [
    ("", "empty CSV file"), (CSV_TEXT.splitlines()[0] + "\n", "no data row"),
    (CSV_TEXT.splitlines()[0] + "\n\n,,,\n \n", "no data row")])
def test_a_csv_without_data_rows_is_refused(tmp_path, text, detail):
    """An empty file, a header alone (blank rows are none): refused, and said so ('nothing
    written', as every refusal of the input; these two did not say it)."""
    inp = tmp_path / "export.csv"
    inp.write_text(text, encoding="utf-8")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.empty")
    assert (p.record, p.message) == (str(inp), detail)
    assert str(exc) == f"{inp}: {detail}; nothing written"


def test_a_bom_before_a_quoted_header_is_read(tmp_path):
    rows = list(csv.reader(io.StringIO(CSV_TEXT)))
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    inp = tmp_path / "export.csv"
    inp.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode())
    _same_titles_as_the_example(export(CSV_MAPPING, inp, tmp_path / "out", RUN), tmp_path)


def test_unnamed_trailing_columns_are_ignored(tmp_path):
    # two more columns on every record, header included, left unnamed (a spreadsheet's
    # trailing empty cells); a record's line breaks inside quotes stay inside the value
    rows = [row + ["", ""] for row in csv.reader(io.StringIO(CSV_TEXT))]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    inp = tmp_path / "export.csv"
    inp.write_text(buffer.getvalue(), encoding="utf-8")
    assert buffer.getvalue().splitlines()[0].endswith(",,")
    _same_titles_as_the_example(export(CSV_MAPPING, inp, tmp_path / "out", RUN), tmp_path)


def test_unnamed_trailing_columns_are_not_among_the_header_s_columns(tmp_path):
    """A binding naming a column the file lacks lists the header's named columns no
    binding reads, not an unnamed one."""
    rows = [row + ["", ""] for row in csv.reader(io.StringIO(CSV_TEXT))]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    inp = tmp_path / "export.csv"
    inp.write_text(buffer.getvalue(), encoding="utf-8")
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, ("    city: city", "    city: commune"))
    assert _only(_refused(tmp_path, m, inp), "input.column").message.endswith(
        "(no binding reads the header's column(s) payer_birth_date, city: one of them "
        "renamed?)")


def _same_titles_as_the_example(result, tmp_path):
    """The file read as the example CSV itself is: the same titles, byte for byte."""
    plain = export(CSV_MAPPING, EXAMPLES / "school-export.csv", tmp_path / "plain", RUN)
    assert (result.titles, result.total) == (plain.titles, plain.total) == (11, Decimal("2527.25"))
    assert [f.path.read_bytes() for f in result.files] == \
        [f.path.read_bytes() for f in plain.files]


def test_a_duplicate_column_names_both_positions(tmp_path):
    lines = CSV_TEXT.splitlines()
    inp = tmp_path / "export.csv"
    inp.write_text("\n".join(line + "," + line.split(",")[1] for line in lines) + "\n",
                   encoding="utf-8")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    width = len(lines[0].split(","))
    assert f"'invoice_date' at columns 2 and {width + 1}" in _only(exc, "input.column").message


# ---------------------------------------------------------------- 7. JSON paths matching nothing


def test_an_optional_binding_with_a_typo_is_refused_with_did_you_mean(tmp_path):
    m, (line,) = mapping_copy(tmp_path, JSON_MAPPING, ("complement: payer.address.complement",
                                                       "complement: payer.address.complment"))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json")
    p = _only(exc, "input.path")
    assert p.mapping == f"{m}:{line}: bindings.address.complement"
    assert "did you mean 'complement'" in p.message
    assert "$.invoices[*].payer.address" in p.message


def test_a_required_line_binding_matching_nothing_says_so(tmp_path):
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, ("    amount: amount", "    amount: montant"))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json")
    p = _only(exc, "input.path")
    assert "'montant'" in p.message and "did you mean 'amount'" in p.message


def test_an_optional_path_no_invoice_has_is_a_note(tmp_path):
    data = _example()
    for inv in data["invoices"]:
        inv["payer"]["address"].pop("complement", None)
    result = export(JSON_MAPPING, _write_json(tmp_path, data), tmp_path / "out", RUN)
    notes = [n for n in result.notes if n.policy == "path"]
    assert len(notes) == 1 and "payer.address.complement" in notes[0].detail


@pytest.mark.parametrize(("old", "new", "missing", "close", "level"), [
    # optional: preview said nothing (the field left empty), exit 0, export refused it
    ("complement: payer.address.complement", "complement: payer.address.complment",
     "complment", "complement", "$.invoices[*].payer.address"),
    # required: preview said what it left missing alone ('address.street is missing')
    ("street: payer.address.street", "street: payer.adress.street", "adress", "address",
     "$.invoices[*].payer")])
def test_preview_names_a_path_binding_with_a_typo_by_its_path(tmp_path, old, new, missing,
                                                               close, level):
    """`pesgen preview` of a mapping whose JSON path has a typo said what it left empty
    or missing, not the path, which export's input.path names with the keys where it
    stops: preview says it as export does, of the invoices it read, and exits 4."""
    from .conftest import run_cli

    m, (line,) = mapping_copy(tmp_path, JSON_MAPPING, (old, new))
    r = run_cli("preview", "-m", m, "-i", EXAMPLES / "school-export.json", "-n", "2",
                "--date", "2026-11-23")
    assert r.exit_code == 4, r.output
    key = old.split(":", 1)[0]
    group = "address"
    said = [ln for ln in r.stdout.splitlines() if "(rule input.path)" in ln]
    assert len(said) == 1, r.stdout
    assert said[0].startswith(
        f"PROBLEM {EXAMPLES / 'school-export.json'}: {group}.{key} reads "
        f"'{new.split(': ', 1)[1]}', which none of the 2 invoice(s) previewed has: no key "
        f"'{missing}' at {level} (keys there: "), said
    assert said[0].endswith(f"; did you mean '{close}'? [mapping {m}:{line}: "
                            f"bindings.{group}.{key}] (rule input.path)"), said


def test_a_records_path_matching_nothing_lists_the_keys_present(tmp_path):
    m = _input_key(tmp_path, "records", "invoice", JSON_MAPPING)
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json")
    p = _only(exc, "input.empty")
    assert p.mapping == _at(m, "records")
    assert "export, billing_period, invoices" in p.message
    assert "did you mean 'invoices'" in p.message


def test_a_records_path_into_an_array_says_the_array_and_how_to_reach_the_lines(tmp_path):
    """input.records 'invoices.lines' where $.invoices is the invoices' array was said
    "the keys at $ are …; did you mean 'invoices'?", the key it had written: it says
    $.invoices is an array, that input.records goes by keys into no array's items, and
    that the lines are bindings.lines'; the records so set export it."""
    m = _input_key(tmp_path, "records", "invoices.lines", JSON_MAPPING)
    p = _only(_refused(tmp_path, m, EXAMPLES / "school-export.json"), "input.empty")
    assert (p.message, p.mapping) == (
        "no invoice array at $.invoices.lines: $.invoices is an array of 12 item(s), not an "
        "object holding 'lines': input.records reaches the array of invoices by keys alone, "
        "from object to object, never into an array's items; if $.invoices is the "
        "invoices' array, set input.records to 'invoices', and bindings.lines to the path "
        "of the lines' array in each invoice", _at(m, "records"))
    m = _input_key(tmp_path, "records", "invoices", JSON_MAPPING)
    assert export(m, EXAMPLES / "school-export.json", tmp_path / "out", RUN).titles == 11


@pytest.mark.parametrize(("text", "detail"), [
    ('{"export": {"invoices": []}}', "$.export.invoices is an array of 0 item(s), not an "
     "object holding 'lines': input.records reaches the array of invoices by keys alone, "
     "from object to object, never into an array's items; if $.export.invoices is the "
     "invoices' array, set input.records to 'export.invoices', and bindings.lines to the "
     "path of the lines' array in each invoice"),
    ('{"export": {"invoices": "none"}}', "$.export.invoices is a string, not an object "
     "holding 'lines' (input.records reaches the array of invoices by keys alone, from "
     "object to object)"),
    ('{"export": {"invoices": null, "n": 1}}', "$.export.invoices is null, not an object "
     "holding 'lines' (input.records reaches the array of invoices by keys alone, from "
     "object to object)"),
    ('{"export": {"invoices": {}}}', "$.export.invoices is an empty object"),
    ('{"export": {"invoice": {}}}', "the keys at $.export are invoice; did you mean "
     "'invoice'?"),
])
def test_a_records_path_through_no_object_says_what_is_there(tmp_path, text, detail):
    """A level of input.records that is there but no object with keys was said by the
    keys around it ('did you mean' the key written): it says what the level holds."""
    m = _input_key(tmp_path, "records", "export.invoices.lines", JSON_MAPPING)
    inp = tmp_path / "export.json"
    inp.write_text(text, encoding="utf-8")
    p = _only(_refused(tmp_path, m, inp), "input.empty")
    assert (p.message, p.mapping) == (f"no invoice array at $.export.invoices.lines: {detail}",
                                      _at(m, "records"))


@pytest.mark.parametrize(("text", "detail", "mapped"), [
    ('{"invoices": {"number": "A"}}',
     "$.invoices is an object, not an array of invoices (input.records)", True),
    ('{"invoices": "none"}', "$.invoices is a string, not an array of invoices (input.records)",
     True),
    ('{"invoices": []}', "no invoice in the array at $.invoices", False),
])
def test_a_records_path_holding_no_invoice_says_what_it_holds(tmp_path, text, detail, mapped):
    inp = tmp_path / "export.json"
    inp.write_text(text, encoding="utf-8")
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.empty")
    assert (p.record, p.message) == (str(inp), detail)
    assert p.mapping == (_at(JSON_MAPPING, "records") if mapped else None)


@pytest.mark.parametrize("text", ["[\n", "\ufeff  ["])
def test_a_file_that_is_the_invoice_array_itself_says_how_to_read_it(tmp_path, text):
    """An export whose top level is the invoices' array, read for the array under
    'invoices': refused saying the file is an array and input.records "" reads it (it
    said "the file holds no object there"); the mapping so set exports it."""
    invoices = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))[
        "invoices"]
    inp = tmp_path / "export.json"
    inp.write_text(text + json.dumps(invoices, ensure_ascii=False)[1:], encoding="utf-8")
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.empty")
    assert (p.message, p.mapping) == (
        'no invoice array at $.invoices: the file is an array itself; if it is the array of '
        'invoices, set input.records to "" (the file\'s top level)',
        _at(JSON_MAPPING, "records"))
    m = _input_key(tmp_path, "records", '""', JSON_MAPPING)
    assert export(m, inp, tmp_path / "out", RUN).titles == 11


def test_an_object_without_the_records_key_is_not_said_an_array(tmp_path):
    inp = tmp_path / "export.json"
    inp.write_text('{"factures": [1]}', encoding="utf-8")
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.empty")
    assert "array itself" not in p.message and "the keys at $ are factures" in p.message


@pytest.mark.parametrize("count", [20, 21])
def test_the_keys_listed_for_a_records_path_matching_nothing_stop_at_20(tmp_path, count):
    keys = [f"k{i:02}" for i in range(count)]
    inp = tmp_path / "export.json"
    inp.write_text(json.dumps(dict.fromkeys(keys, 1)), encoding="utf-8")
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.empty")
    assert p.message == ("no invoice array at $.invoices: the keys at $ are "
                         + ", ".join(keys[:20]) + (", …" if count > 20 else ""))


# ---------------------------------------------------------------- 8. wrong delimiter / format


def test_a_wrong_delimiter_shows_the_single_column_read(tmp_path):
    m = _input_key(tmp_path, "delimiter", '";"')
    inp = tmp_path / "export.csv"
    inp.write_text(CSV_TEXT, encoding="utf-8")
    exc = _refused(tmp_path, m, inp)
    p = _only(exc, "input.column")
    assert p.mapping == _at(m, "delimiter")
    # what was read, described: the header's own words are not quoted (the same message
    # for a file without a header would quote a billing row)
    assert p.message == ("the first line reads as one column with delimiter ';'; it looks "
                         "like CSV: 33 fields separated by ',', a header (no field looks like "
                         "a number, a date, an e-mail or an IBAN); check input.delimiter")


def test_a_wrong_delimiter_on_a_quoted_file_names_the_delimiter_not_the_quotes(tmp_path):
    # every field quoted and separated by ';' (a French spreadsheet's export), read with
    # ',': the reader stops at the first closing quote, followed by ';' where it expects
    # ','. The quotes are right; the delimiter is what to fix (it was blamed on
    # input.quotechar, with only "',' expected after '\"'")
    rows = list(csv.reader(io.StringIO(CSV_TEXT)))
    out = io.StringIO()
    csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL).writerows(rows)
    inp = tmp_path / "export.csv"
    inp.write_text(out.getvalue(), encoding="utf-8")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.csv")
    assert p.mapping == _at(CSV_MAPPING, "delimiter")
    assert p.message == ("the first line does not read with delimiter ',' (',' expected "
                         "after '\"'); it looks like CSV: 33 fields separated by ';', a "
                         "header (no field looks like a number, a date, an e-mail or an "
                         "IBAN); check input.delimiter")
    assert str(exc).startswith(f"{inp}:1: CSV error: the first line does not read")


def test_a_quote_error_in_a_header_with_the_right_delimiter_still_names_the_quotes(tmp_path):
    inp = tmp_path / "export.csv"
    header, rest = CSV_TEXT.split("\n", 1)
    inp.write_text(f'"invoice_number"x,{header.split(",", 1)[1]}\n{rest}', encoding="utf-8")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.csv")
    assert p.mapping is not None and p.mapping.endswith(": input.quotechar")
    assert p.message == "',' expected after '\"'"


def test_a_quote_error_in_a_one_field_first_line_names_the_quotes(tmp_path):
    """A first line read as one field does not look separated by another delimiter:
    its quote error is the quotes' (input.quotechar)."""
    inp = tmp_path / "export.csv"
    inp.write_text('"invoice_number"x\nFA-1\n', encoding="utf-8")
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.csv")
    assert p.message == "',' expected after '\"'"
    assert p.mapping is not None and p.mapping.endswith(": input.quotechar")


@pytest.mark.parametrize("count", [12, 13])
def test_a_header_is_listed_up_to_12_columns(tmp_path, count):
    header = [f"c{i:02}" for i in range(1, count + 1)]
    inp = tmp_path / "export.csv"
    inp.write_text(",".join(header) + "\n" + ",".join("x" * count) + "\n", encoding="utf-8")
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.column")
    assert p.message.endswith(f"(the header has {count} columns: " + ", ".join(header[:12])
                              + (", …)" if count > 12 else ")"))


def test_a_json_file_given_to_a_csv_mapping(tmp_path):
    exc = _refused(tmp_path, CSV_MAPPING, EXAMPLES / "school-export.json")
    p = _only(exc, "input.format")
    assert p.mapping == _at(CSV_MAPPING, "format")
    assert p.message == ("not CSV: the first line looks like JSON (it starts with '{'); the "
                         "mapping says input.format: csv")


@pytest.mark.parametrize("before", ["\ufeff", "\n\n", " \t", "\r\n"])
def test_a_json_file_given_to_a_csv_mapping_after_a_bom_or_blank_lines(tmp_path, before):
    """What opens the file before its first character (a byte order mark, blank lines,
    spaces) does not hide that it is JSON."""
    inp = tmp_path / "export.json"
    inp.write_text(before + JSON_TEXT, encoding="utf-8")
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.format")
    assert p.record == f"{inp}:1"
    assert p.message.startswith("not CSV: the first line looks like JSON (it starts with '{')")


@pytest.mark.parametrize(("mapping", "first", "said"), [
    (CSV_MAPPING, '<?xml version="1.0"?>', "looks like XML (it starts with '<')"),
    (CSV_MAPPING, "[]", "looks like JSON (it starts with '[')"),
    (JSON_MAPPING, ",invoice_number,amount", "looks like CSV: 3 fields separated by ','"),
    (JSON_MAPPING, ",FA-1,85.00", "looks like CSV: 3 fields separated by ',', no header (1 "
     "field looks like numbers, dates, e-mails or IBANs)"),
    (JSON_MAPPING, ";invoice_number;amount", "looks like CSV: 3 fields separated by ';'"),
    (JSON_MAPPING, '"invoice_number","amount"', "looks like CSV: 2 fields separated by ','"),
    (JSON_MAPPING, "'invoice_number';'amount'", "looks like CSV: 2 fields separated by ';'"),
])
def test_a_first_line_of_the_other_format_by_its_first_sign(tmp_path, mapping, first, said):
    """The signs that open a line of the other format: '<', '[' ('{' is the example's)
    for a CSV mapping; a separator or a quote (a letter or a digit: the example's) for
    a JSON one."""
    inp = tmp_path / "export.txt"
    inp.write_text(first + "\n", encoding="utf-8")
    exc = _refused(tmp_path, mapping, inp)
    p = _only(exc, "input.format")
    assert p.record == f"{inp}:1"
    assert f"the first line {said}" in p.message
    assert str(exc) == f"{inp}:1: {p.message}; nothing written"


def test_an_xml_file_given_to_a_json_mapping(tmp_path):
    """'<' opens no JSON value: the JSON reader's syntax error is told as the file's
    format, not as invalid JSON."""
    inp = tmp_path / "export.xml"
    inp.write_text('<?xml version="1.0"?>\n<PES_Aller/>\n', encoding="utf-8")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.format")
    assert (p.record, p.message) == (f"{inp}:1", "not JSON: the first line looks like XML (it "
                                     "starts with '<'); the mapping says input.format: json")
    # headed by the file's line 1, as the refusal of a first line plainly not JSON is
    assert str(exc).startswith(f"{inp}:1: not JSON: "), str(exc)


def test_a_csv_file_given_to_a_json_mapping(tmp_path):
    exc = _refused(tmp_path, JSON_MAPPING, EXAMPLES / "school-export.csv")
    p = _only(exc, "input.format")
    assert p.mapping == _at(JSON_MAPPING, "format")
    assert p.message == ("not JSON: the first line looks like CSV: 33 fields separated by "
                         "',', a header (no field looks like a number, a date, an e-mail or "
                         "an IBAN); the mapping says input.format: json")
    assert exc.report().count("lexical error") <= 1


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-8"])
def test_a_file_of_the_other_format_is_told_so_before_its_encoding(tmp_path, encoding):
    """The JSON example (UTF-8, accents) given to a cp1252 CSV mapping was first told
    "the file is UTF-8 ... set input.encoding: utf-8" (exit 4), and only once that was
    done "not CSV": the advice that fixes it comes first now, whatever the encoding.
    The same for a CSV export given to a JSON mapping (a cp1252 one read as UTF-8 was
    told "not valid utf-8"; a UTF-8 one read as cp1252 "the file is UTF-8")."""
    exc = _refused(tmp_path, _input_key(tmp_path, "encoding", encoding),
                   EXAMPLES / "school-export.json")
    assert str(exc).endswith("not CSV: the first line looks like JSON (it starts with '{'); "
                             "the mapping says input.format: csv; nothing written"), str(exc)
    assert [p.rule for p in exc.problems] == ["input.format"], exc.report()
    for data, source in ((CSV_TEXT, "utf-8"), (CSV_TEXT, "cp1252")):
        inp = tmp_path / f"export-{source}.csv"
        inp.write_bytes(data.encode(source))
        m = _input_key(tmp_path, "encoding", encoding, JSON_MAPPING)
        exc = _refused(tmp_path, m, inp)
        assert [p.rule for p in exc.problems] == ["input.format"], exc.report()
        assert "not JSON: the first line looks like CSV" in str(exc), str(exc)


_ROW = CSV_TEXT.splitlines()[1]  # a billing row: a family's name, e-mail, IBAN


def _quotes_no_billing_row(exc: InputDataError | MappingError) -> None:
    report = exc.report()
    for value in next(csv.reader([_ROW])):
        assert len(value) < 4 or value not in report, (value, report)


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_a_csv_without_header_given_to_a_json_mapping_quotes_none_of_its_first_row(
        tmp_path, delimiter):
    """The first line of a CSV export without a header is a billing record: the
    message says what it looks like (CSV, how many fields, no header), quoting none of
    it (it quoted its first 80 characters: a family's name and more)."""
    inp = tmp_path / "export.csv"
    inp.write_text("\n".join(ln.replace(",", delimiter) if delimiter != "," else ln
                             for ln in CSV_TEXT.splitlines()[1:]) + "\n", encoding="utf-8")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.format")
    assert p.message == (f"not JSON: the first line looks like CSV: 33 fields separated by "
                         f"{delimiter!r}, no header (11 fields look like numbers, dates, "
                         "e-mails or IBANs); the mapping says input.format: json")
    _quotes_no_billing_row(exc)


def test_a_csv_without_header_given_to_a_csv_mapping_quotes_none_of_its_first_row(tmp_path):
    """No header: input.group_by's column is not in the first line, which is a billing
    row; its fields are neither listed nor offered as a did-you-mean."""
    inp = tmp_path / "export.csv"
    inp.write_text("\n".join(CSV_TEXT.splitlines()[1:]) + "\n", encoding="utf-8")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.column")
    assert p.mapping == _at(CSV_MAPPING, "group_by")
    assert p.message == (f"input.group_by reads column 'invoice_number', and the first line of "
                         f"{inp} is no header naming it: 33 fields, 11 of them look like "
                         "numbers, dates, e-mails or IBANs; the export needs a header line "
                         "naming its columns")
    _quotes_no_billing_row(exc)
    # read with the wrong delimiter, the row is not quoted either
    exc = _refused(tmp_path, _input_key(tmp_path, "delimiter", '";"'), inp)
    assert _only(exc, "input.column").message.startswith(
        "the first line reads as one column with delimiter ';'; it looks like CSV: 33 "
        "fields separated by ',', no header (11 fields look like")
    _quotes_no_billing_row(exc)


# ---------------------------------------------------------------- 8b. a title above the header


_TITLE = "Export des factures - Conservatoire\r\n\r\n"  # 2 lines above the header


def _titled(tmp_path: Path, text: str = CSV_TEXT, title: str = _TITLE) -> Path:
    inp = tmp_path / "export.csv"
    inp.write_text(title + text, encoding="utf-8", newline="")
    return inp


def test_a_title_above_the_header_is_skipped_with_input_header_line(tmp_path, utf8_csv_xml):
    m = _input_key(tmp_path, "header_line", "3")
    export(m, _titled(tmp_path), tmp_path / "out", RUN)
    assert _written_xml(tmp_path / "out") == utf8_csv_xml


def test_a_title_above_the_header_names_the_line_of_the_header(tmp_path):
    """Read from line 1, a title of one field was a header of one column: the message
    said to check input.delimiter, which was right. It names the line that holds the
    group_by column, by its number only, and input.header_line (where to add it)."""
    inp = _titled(tmp_path)
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.column")
    assert p.record == f"{inp}:1"
    assert p.message == ("input.group_by reads column 'invoice_number', which the first "
                         "line does not name; line 3 does: it is the header? set "
                         "input.header_line: 3 (the lines above it are not read)")
    lines = CSV_MAPPING.read_text(encoding="utf-8").splitlines()
    assert p.mapping == f"{CSV_MAPPING}:{lines.index('input:') + 1}: input.header_line"
    # a title in the export's own delimiter, and set too low: the same
    inp = _titled(tmp_path, title="Export;des;factures\n;;\n;;\n")
    m = _input_key(tmp_path, "header_line", "2")
    p = _only(_refused(tmp_path, m, inp), "input.column")
    assert p.record == f"{inp}:2"
    assert p.message.startswith("input.group_by reads column 'invoice_number', which line 2 "
                                "(input.header_line) does not name; line 4 does: ")
    assert p.mapping == _at(m, "header_line")


def test_input_header_line_below_the_header_names_line_1(tmp_path):
    m = _input_key(tmp_path, "header_line", "3")
    inp = tmp_path / "export.csv"
    inp.write_text(CSV_TEXT, encoding="utf-8")
    p = _only(_refused(tmp_path, m, inp), "input.column")
    assert p.record == f"{inp}:3"
    assert p.message == ("input.group_by reads column 'invoice_number', which line 3 "
                         "(input.header_line) does not name; line 1 does: it is the header? "
                         "set input.header_line: 1")


def test_a_value_spelt_as_the_column_is_no_header_below(tmp_path):
    """group_by: invoice (the column is invoice_number) is a value of payment_method on
    the example's rows: a row holding it, with its dates and amounts, is not said to be
    the header."""
    assert ",invoice," in CSV_TEXT
    m = _input_key(tmp_path, "group_by", "invoice")
    inp = tmp_path / "export.csv"
    inp.write_text(CSV_TEXT, encoding="utf-8")
    p = _only(_refused(tmp_path, m, inp), "input.column")
    assert p.message == ("input.group_by reads column 'invoice', which is not in the header "
                         f"of {inp} (did you mean 'invoice_date'?)")


def test_below_a_title_problems_name_the_line_in_the_file(tmp_path):
    """A row is named by its line in the file, the skipped lines counted: a row's, a
    column the header lacks (at the header's line), a repeated column."""
    m = _input_key(tmp_path, "header_line", "3")
    iban = "FR7630006000011234567890189"
    assert CSV_TEXT.splitlines()[1].count(iban) == 1
    inp = _titled(tmp_path, CSV_TEXT.replace(iban, iban[:-1] + "8", 1))
    p = _only(_refused(tmp_path, m, inp), "sepa.iban")
    assert p.record == f"{inp}:4"  # the first row: line 2 of the export, 2 lines above it
    inp = _titled(tmp_path, CSV_TEXT.replace("invoice_date", "Invoice_Date", 1))
    p = _only(_refused(tmp_path, m, inp), "input.column")
    assert (p.record, p.message) == (
        f"{inp}:3", f"invoice.date reads column 'invoice_date', which is not in the header "
        f"of {inp} (did you mean 'Invoice_Date'?)")
    inp = _titled(tmp_path, CSV_TEXT.replace("due_date", "invoice_date", 1))
    p = _only(_refused(tmp_path, m, inp), "input.column")
    assert (p.record, p.message) == (
        f"{inp}:3", "duplicate column(s) 'invoice_date' at columns 2 and 3")


def test_a_file_shorter_than_input_header_line_has_no_header(tmp_path):
    m = _input_key(tmp_path, "header_line", "3")
    inp = _titled(tmp_path, "")
    p = _only(_refused(tmp_path, m, inp), "input.empty")
    assert p.message == "no header: the file has 2 line(s), and input.header_line is 3"
    assert p.mapping == _at(m, "header_line")


def test_delimiter_auto_reads_below_the_title(tmp_path, utf8_csv_xml):
    """The title (no ',' in it, a ';' and a '|') is not what the delimiter is guessed
    from."""
    m = _input_key(tmp_path, "delimiter", "auto")
    m = _input_key(tmp_path, "header_line", "3", m)
    export(m, _titled(tmp_path, title="Export | factures ; 2026\n\n"), tmp_path / "out", RUN)
    assert _written_xml(tmp_path / "out") == utf8_csv_xml


_TITLE_LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                      max_size=40)


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(titles=st.lists(_TITLE_LINE, min_size=1, max_size=4),
       ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_whatever_the_lines_above_the_header_hold_the_rows_read_the_same(tmp_path, titles,
                                                                          ending):
    """Quotes, delimiters, a byte order mark's character, a header's own name: the
    lines above input.header_line are not read, and each row keeps its line."""
    spec = sources.InputSpec(format="csv", group_by="invoice_number")
    plain = tmp_path / "plain.csv"
    plain.write_text(CSV_TEXT.replace("\n", ending), encoding="utf-8", newline="")
    titled = tmp_path / "titled.csv"
    titled.write_text("".join(t + ending for t in titles) + CSV_TEXT.replace("\n", ending),
                      encoding="utf-8", newline="")
    below = sources.InputSpec(format="csv", group_by="invoice_number",
                              header_line=len(titles) + 1)
    read = list(sources.read_invoices(plain, spec))
    again = list(sources.read_invoices(titled, below))
    assert [(s.record, s.lines) for s in again] == [(s.record, s.lines) for s in read]

    def shifted(origin: str) -> str:
        return f"{titled}:{int(origin.rsplit(':', 1)[1]) + len(titles)}"
    assert [s.line_origins for s in again] == \
        [[shifted(o) for o in s.line_origins] for s in read]


def test_input_header_line_in_a_json_mapping_is_refused(tmp_path):
    m = _input_key(tmp_path, "header_line", "3", JSON_MAPPING)
    with pytest.raises(MappingError) as info:
        export(m, EXAMPLES / "school-export.json", tmp_path / "out", RUN)
    p = _only(info.value, "mapping.input")
    assert p.message.startswith("input.header_line applies to CSV input only")
    assert p.mapping == _at(m, "header_line")


# ---------------------------------------------------------------- 9. JSON syntax errors


def test_a_syntax_error_names_the_invoice_and_quotes_none_of_the_file(tmp_path):
    """ijson's message quotes the file around the error: an IBAN there would reach the
    terminal and the logs. The refusal names the invoice being read instead."""
    iban = "FR7630006000011234567890189"
    text = JSON_TEXT.replace(f'"iban": "{iban}",', f'"iban": "{iban}"', 1)
    assert text != JSON_TEXT
    inp = tmp_path / "export.json"
    inp.write_text(text, encoding="utf-8")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.json")
    assert p.record == f"{inp}:$.invoices[0]"
    assert "(in this invoice)" in p.message and "parse error" in p.message
    assert "30006" not in exc.report() and "30006" not in str(exc)


def test_a_syntax_error_between_invoices_names_the_one_before(tmp_path):
    data = _example()
    items = [json.dumps(item) for item in data["invoices"]]
    # the comma between the second and the third invoice left out
    body = ", ".join(items[:2]) + " " + ", ".join(items[2:])
    text = json.dumps({k: v for k, v in data.items() if k != "invoices"})[:-1] + \
        f', "invoices": [{body}]}}'
    inp = tmp_path / "export.json"
    inp.write_text(text, encoding="utf-8")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.json")
    assert p.record == f"{inp}:$.invoices[1]"
    assert "(after this invoice)" in p.message


@pytest.mark.parametrize("records", ["invoices", '""'])
def test_a_json_lines_export_is_told_to_be_one(tmp_path, records):
    """One invoice a line (JSON Lines) was 'invalid JSON: parse error: trailing
    garbage', the file's first object read as the whole document."""
    m = _input_key(tmp_path, "records", records, JSON_MAPPING)
    inp = tmp_path / "export.jsonl"
    inp.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n"
                           for item in _example()["invoices"]), encoding="utf-8")
    p = _only(_refused(tmp_path, m, inp), "input.json")
    assert p.message == ("invalid JSON: parse error: trailing garbage; the file is JSON "
                         "Lines (one JSON object a line), pesgen reads one JSON document: the "
                         "invoices in an array, the file's own or under a key "
                         "(input.records)")
    # two documents that are not one a line are only invalid JSON
    inp.write_text(json.dumps(_example(), indent=1) * 2, encoding="utf-8")
    p = _only(_refused(tmp_path, m, inp), "input.json")
    assert p.message.startswith("invalid JSON: parse error: trailing garbage")
    assert "JSON Lines" not in p.message


def test_only_a_known_syntax_message_is_quoted():
    assert sources._syntax(ValueError("parse error: premature EOF\n  FR76 ...\n ^")) == \
        "parse error: premature EOF"
    assert sources._syntax(ValueError("Unexpected symbol '\"FR7630006\"' at 5")) == \
        "syntax error"
