"""A schema error in a piece of more than ``validate.STREAM_LINES`` lines is listed a slice
of lines at a time (``validate._Slices``), the piece's head kept in each: the listing
of a title of 50 000 lines took 1.8 GiB read whole (docs/performance.md, "A title of
50 000 lines"). Its messages, lines and XPaths are those of the whole tree's. The lines
are what the format's XSD repeats in a piece (``validate.piece_lines``): a PES piece's
LigneDePiece, a Corail piece's LignePiece (one per imputation) and ASAPLigneFacturation
(one per invoice line)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from pesgen import validate
from pesgen.resources import schema_path
from pesgen.validate import (
    _parser,
    load_xsd,
    official_xsd_path,
    piece_lines,
    schema_errors_by_piece,
)

from .conftest import GOLDEN_ORMC, OFFICIAL_DIR, ROOT

SCHEMA = load_xsd(schema_path("pes-ormc/pes-ormc.xsd"))
LINES = piece_lines(schema_path("pes-ormc/pes-ormc.xsd"))
CORAIL_XSD = ROOT / "templates" / "cosoluce-corail" / "corail.xsd"
CORAIL = load_xsd(CORAIL_XSD)
GOLDEN_CORAIL = CORAIL_XSD.parent / "expected" / "CORAIL_21450999400015_2026_0000001.xml"


def _lines(piece: etree._Element) -> list[etree._Element]:
    return piece.findall("LigneDePiece")


def _set(el: etree._Element, path: str, value: str) -> None:
    found = el.find(path)
    assert found is not None, path
    found.set("V", value)


def _long_title(lines: int, tamper=None) -> bytes:
    """The golden file, its first title given ``lines`` lines (copies of its first,
    renumbered), then ``tamper(piece, bordereau)``."""
    doc = etree.parse(str(GOLDEN_ORMC))
    bordereau = doc.getroot().find(".//Bordereau")
    piece = bordereau.find("Piece")
    first = piece.find("LigneDePiece")
    for old in _lines(piece):
        piece.remove(old)
    for n in range(1, lines + 1):
        line = copy.deepcopy(first)
        _set(line, ".//IdLigne", str(n))
        piece.append(line)
    if tamper is not None:
        tamper(piece, bordereau)
    return etree.tostring(doc, xml_declaration=True, encoding="ISO-8859-1")


def _tree_listing(path: Path, schema=SCHEMA) -> list[tuple[int, str, str]]:
    doc = etree.parse(str(path), _parser())
    assert not schema.validate(doc)
    return sorted((e.line, e.message, e.path) for e in schema.error_log)


def _listing(path: Path, schema=SCHEMA, lines=LINES) -> list[tuple[int, str, str]]:
    out = []
    for p in schema_errors_by_piece(path, schema, "pesgen", lines):
        where, xpath = p.record.split(" ", 1)
        out.append((int(where.rsplit(":", 1)[1]), p.message, xpath))
    return sorted(out)


def _junk(piece: etree._Element, before: int | None, tag: str = "Junk") -> None:
    if before is None:
        piece.append(etree.Element(tag))
    else:
        piece.insert(piece.index(_lines(piece)[before]), etree.Element(tag))


def _missing(line: etree._Element) -> None:
    block = line.find("BlocLignePiece")
    block.remove(block.find("InfoLignePiece"))


TAMPERS = {
    "values-across-slices": lambda p, b: [_set(_lines(p)[i], ".//IdLigne", "x")
                                          for i in (0, 6, 7, 13, 29)],
    "a-line-lacking-a-block": lambda p, b: [_missing(_lines(p)[i]) for i in (3, 17)],
    "the-last-line": lambda p, b: _set(_lines(p)[-1], ".//IdLigne", "x"),
    "the-piece-head": lambda p, b: (_set(p, "BlocPiece/NatPce", "zz"),
                                    _set(_lines(p)[20], ".//IdLigne", "x")),
    "the-bordereau-header": lambda p, b: (_set(b, "BlocBordereau/TypBord", "6x"),
                                          _set(_lines(p)[15], ".//IdLigne", "x")),
    "attributes": lambda p, b: (p.set("foo", "1"), [_lines(p)[i].set("bar", "1")
                                                    for i in (1, 9, 22)]),
    "the-next-piece": lambda p, b: (_set(b.findall("Piece")[1], "BlocPiece/NatPce", "zz"),
                                    _set(_lines(p)[29], ".//IdLigne", "x")),
    # the piece's content model broken: libxml2 validates none of its later children
    "junk-among-the-lines": lambda p, b: (_junk(p, 12), _set(_lines(p)[20], ".//IdLigne", "x"),
                                          _set(_lines(p)[2], ".//IdLigne", "y")),
    "junk-after-the-lines": lambda p, b: (_junk(p, None),
                                          _set(_lines(p)[20], ".//IdLigne", "x")),
    "junk-among-and-after": lambda p, b: (_junk(p, 25), _junk(p, None, "Junk2"),
                                          _set(_lines(p)[28], ".//IdLigne", "x")),
    "no-piece-head": lambda p, b: (p.remove(p.find("BlocPiece")),
                                   _set(_lines(p)[20], ".//IdLigne", "x")),
}


def _by_slices(monkeypatch, path: Path, stream_lines: int, schema=SCHEMA, lines=LINES):
    """The listing by slices of ``stream_lines`` lines, the whole tree's, and whether
    slices were made (else the comparison proves nothing of them)."""
    slices: list[int] = []
    up_to = validate._up_to

    def spying(el, children=None):
        if children is not None:
            slices.append(len(children))
        return up_to(el, children)

    monkeypatch.setattr(validate, "_up_to", spying)
    monkeypatch.setattr(validate, "STREAM_LINES", stream_lines)
    return _listing(path, schema, lines), _tree_listing(path, schema), bool(slices)


@pytest.mark.parametrize("stream_lines", [1, 3, 7])
@pytest.mark.parametrize("kind", list(TAMPERS))
def test_a_long_piece_listed_by_slices_lists_what_the_whole_tree_lists(tmp_path, monkeypatch,
                                                                      kind, stream_lines):
    path = tmp_path / "long.xml"
    path.write_bytes(_long_title(30, TAMPERS[kind]))
    listed, expected, sliced = _by_slices(monkeypatch, path, stream_lines)
    assert listed == expected
    assert sliced
    if kind == "values-across-slices":
        assert [x.split("/LigneDePiece")[1][:4] for _l, _m, x in expected] == [
            "[1]/", "[7]/", "[8]/", "[14]", "[30]"]


def _corail_title(imputations: int, lines: int, tamper=None, alone: bool = False) -> bytes:
    """The Corail golden file (11 pieces; with ``alone``, its first only), its first
    piece given ``imputations`` LignePiece and ``lines`` ASAPLigneFacturation (copies of
    its first ones), then ``tamper(piece, root)``."""
    doc = etree.parse(str(GOLDEN_CORAIL))
    root = doc.getroot()
    pieces = root.find("TypePieceImport")
    piece = pieces.find("Piece")
    if alone:
        for other in pieces.findall("Piece")[1:]:
            pieces.remove(other)
    for tag, count in (("LignePiece", imputations), ("ASAPLigneFacturation", lines)):
        first = piece.find(tag)
        for old in piece.findall(tag):
            piece.remove(old)
        piece.extend(copy.deepcopy(first) for _ in range(count))
    if tamper is not None:
        tamper(piece, root)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def _imp(piece: etree._Element) -> list[etree._Element]:
    return piece.findall("LignePiece")


def _asap(piece: etree._Element) -> list[etree._Element]:
    return piece.findall("ASAPLigneFacturation")


def _before(piece: etree._Element, child: etree._Element, new: etree._Element) -> None:
    piece.insert(piece.index(child), new)


def _drop(line: etree._Element, tag: str) -> None:
    line.remove(line.find(tag))


CORAIL_TAMPERS = {
    "values-across-slices": lambda p, r: (
        [_set(_asap(p)[i], "ASAPQuantite", "x") for i in (0, 6, 7, 13, 29)],
        [_set(_imp(p)[i], "MontantHT", "x") for i in {0, len(_imp(p)) - 1}]),
    "lines-lacking-a-child": lambda p, r: ([_drop(_asap(p)[i], "ASAPUnite") for i in (3, 17)],
                                           _drop(_imp(p)[-1], "Article")),
    "the-piece-head": lambda p, r: (_set(p, "InfoPiece/TypeSerieBordereau", "zz"),
                                    _set(_asap(p)[20], "ASAPQuantite", "x")),
    "the-envelope": lambda p, r: (_set(r, "Information/Exercice", "20x"),
                                  _set(_asap(p)[15], "ASAPQuantite", "x")),
    "attributes": lambda p, r: (p.set("foo", "1"), _imp(p)[0].set("bar", "1"),
                                [_asap(p)[i].set("bar", "1") for i in (1, 9, 22)]),
    "the-next-piece": lambda p, r: (_set(p.getnext(), "InfoPiece/TypeSerieBordereau", "zz"),
                                    _set(_asap(p)[29], "ASAPQuantite", "x")),
    # the piece's content model broken: libxml2 validates none of its later children
    "junk-among-the-imputations": lambda p, r: (_before(p, _imp(p)[-1], etree.Element("Junk")),
                                                _set(_asap(p)[20], "ASAPQuantite", "x")),
    "junk-between-the-kinds": lambda p, r: (_before(p, _asap(p)[0], etree.Element("Junk")),
                                            _set(_imp(p)[0], "MontantHT", "x")),
    "junk-among-the-lines": lambda p, r: (_before(p, _asap(p)[12], etree.Element("Junk")),
                                          _set(_asap(p)[20], "ASAPQuantite", "x"),
                                          _set(_asap(p)[2], "ASAPQuantite", "y")),
    "junk-after-the-lines": lambda p, r: (p.append(etree.Element("Junk")),
                                          _set(_asap(p)[20], "ASAPQuantite", "x")),
    "a-line-among-the-imputations": lambda p, r: (
        _before(p, _imp(p)[-1], copy.deepcopy(_asap(p)[0])),
        _set(_asap(p)[20], "ASAPQuantite", "x")),
    "an-imputation-after-the-lines": lambda p, r: (p.append(copy.deepcopy(_imp(p)[0])),
                                                   _set(_asap(p)[25], "ASAPQuantite", "x")),
    "no-imputation": lambda p, r: ([p.remove(i) for i in _imp(p)],
                                   _set(_asap(p)[20], "ASAPQuantite", "x")),
    "no-piece-head": lambda p, r: (p.remove(p.find("InfoPiece")),
                                   _set(_asap(p)[20], "ASAPQuantite", "x")),
}
# a piece with one imputation, alone in its file (XPaths: /Piece/LignePiece, no index),
# and one with twelve among others (slices from LignePiece into ASAPLigneFacturation)
SHAPES = {"one-imputation-alone": (1, 30, True), "twelve-imputations": (12, 30, False)}


@pytest.mark.parametrize("stream_lines", [1, 3, 7])
@pytest.mark.parametrize(("shape", "kind"), [
    (shape, kind) for shape in SHAPES for kind in CORAIL_TAMPERS
    if not (kind == "the-next-piece" and SHAPES[shape][2])])
def test_a_long_corail_piece_listed_by_slices_lists_what_the_whole_tree_lists(
        tmp_path, monkeypatch, shape, kind, stream_lines):
    imputations, lines, alone = SHAPES[shape]
    path = tmp_path / "long.xml"
    path.write_bytes(_corail_title(imputations, lines, CORAIL_TAMPERS[kind], alone))
    listed, expected, sliced = _by_slices(monkeypatch, path, stream_lines, CORAIL,
                                          piece_lines(CORAIL_XSD))
    assert listed == expected
    assert sliced
    if kind == "values-across-slices":
        steps = [x.split("/Piece")[1] for _l, _m, x in expected]
        if alone:
            assert steps == ["/LignePiece/MontantHT"] + [
                f"/ASAPLigneFacturation[{n}]/ASAPQuantite" for n in (1, 7, 8, 14, 30)]
        else:
            assert steps == ["[1]/LignePiece[1]/MontantHT", "[1]/LignePiece[12]/MontantHT"] + [
                f"[1]/ASAPLigneFacturation[{n}]/ASAPQuantite" for n in (1, 7, 8, 14, 30)]


class _Counting:
    """The schema, noting how many lines each document it validates holds."""

    def __init__(self, schema: etree.XMLSchema, lines: frozenset[str] = LINES) -> None:
        self.schema = schema
        self.lines = lines
        self.held: list[int] = []

    def validate(self, tree: etree._ElementTree) -> bool:
        self.held.append(sum(el.tag in self.lines for el in tree.getroot().iter()))
        return self.schema.validate(tree)

    @property
    def error_log(self):
        return self.schema.error_log


def test_a_long_piece_is_listed_with_few_lines_held(tmp_path):
    """1 200 lines, a bad value in the 1 000th: no document validated holds more than
    STREAM_LINES + 1 lines (the whole piece before)."""
    path = tmp_path / "long.xml"
    path.write_bytes(_long_title(1200, lambda p, b: _set(_lines(p)[999], ".//IdLigne", "x")))
    counting = _Counting(SCHEMA)
    listed = _listing(path, counting)
    assert listed == _tree_listing(path)
    assert "/Piece[1]/LigneDePiece[1000]/" in listed[0][2]
    assert max(counting.held) <= validate.STREAM_LINES + 1, max(counting.held)


def test_a_long_corail_piece_is_listed_with_few_lines_held(tmp_path):
    """Six imputations and 1 200 lines, a bad value in the 1 000th line: no document
    validated holds more than STREAM_LINES lines, the last imputation and the next line
    (the whole piece before)."""
    path = tmp_path / "long.xml"
    path.write_bytes(_corail_title(6, 1200, lambda p, r: _set(_asap(p)[999], "ASAPQuantite",
                                                               "x")))
    lines = piece_lines(CORAIL_XSD)
    counting = _Counting(CORAIL, lines)
    listed = _listing(path, counting, lines)
    assert listed == _tree_listing(path, CORAIL)
    assert "/Piece[1]/ASAPLigneFacturation[1000]/" in listed[0][2]
    assert max(counting.held) <= validate.STREAM_LINES + 2, max(counting.held)


# tracemalloc does not see libxml2's memory (the listing of the 50 000-line title: 0.05
# MiB traced, 1.8 GiB resident): the peak resident size of a process of its own (its
# VmHWM: ru_maxrss would keep the test process's, through fork and exec)
_PEAK = """
import json, sys
from pathlib import Path
from pesgen.validate import load_xsd, piece_lines, schema_errors_by_piece, validate_pes_file
path, xsd = Path(sys.argv[1]), Path(sys.argv[2])
if sys.argv[3] == "listing":
    problems = schema_errors_by_piece(path, load_xsd(xsd), "pesgen", piece_lines(xsd))
else:
    problems = validate_pes_file(path, xsd)
with open("/proc/self/status", encoding="ascii") as status:
    [peak] = [int(s.split()[1]) for s in status if s.startswith("VmHWM:")]
print(json.dumps({"records": [p.record for p in problems], "peak_mib": peak / 1024}))
"""


def _peak(path: Path, xsd: Path, what: str = "listing") -> dict:
    done = subprocess.run([sys.executable, "-c", _PEAK, str(path), str(xsd), what],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="Linux's /proc needed")
def test_listing_a_title_of_20_000_lines_stays_flat(tmp_path):
    """Read whole, its 20 000 lines (20 MB) took some 700 MiB; by slices, what the
    process takes anyway (under 120 MiB)."""
    path = tmp_path / "long.xml"
    path.write_bytes(_long_title(20_000, lambda p, b: _set(_lines(p)[14_999], ".//IdLigne",
                                                           "x")))
    found = _peak(path, schema_path("pes-ormc/pes-ormc.xsd"))
    [record] = found["records"]
    assert "/Piece[1]/LigneDePiece[15000]/BlocLignePiece/InfoLignePiece/IdLigne" in record
    assert found["peak_mib"] < 120, found["peak_mib"]


@pytest.fixture(scope="module")
def corail_50_000(tmp_path_factory) -> Path:
    """A Corail title of six imputations and 50 000 lines (13 MB), alone in its file, a
    bad value in its 25 000th line."""
    path = tmp_path_factory.mktemp("corail") / "long.xml"
    path.write_bytes(_corail_title(6, 50_000, lambda p, r: _set(_asap(p)[24_999],
                                                                "ASAPQuantite", "x"),
                                   alone=True))
    return path


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="Linux's /proc needed")
@pytest.mark.parametrize("what", ["listing", "validate"])
def test_a_corail_title_of_50_000_lines_stays_flat(corail_50_000, what):
    """Read whole: the listing alone some 370 MiB, ``validate_pes_file`` (the stream
    check held the piece too) some 400 MiB; now what the process takes anyway (30 and
    55 MiB: under 120)."""
    found = _peak(corail_50_000, CORAIL_XSD, what)
    [record] = found["records"]
    assert record.endswith(" /ImportCosoluce/TypePieceImport/Piece/"
                           "ASAPLigneFacturation[25000]/ASAPQuantite"), record
    assert found["peak_mib"] < 120, found["peak_mib"]


def test_the_lines_are_what_each_format_s_xsd_repeats_in_a_piece():
    assert piece_lines(schema_path("pes-ormc/pes-ormc.xsd")) == {"LigneDePiece"}
    assert piece_lines(schema_path("pes-titres/pes-titres.xsd")) == {"LigneDePiece"}
    assert piece_lines(CORAIL_XSD) == {"LignePiece", "ASAPLigneFacturation"}
    assert piece_lines(ROOT / "templates" / "jvs-millesime" / "jvs-millesime.xsd") == {
        "LigneDePiece"}


@pytest.mark.skipif(not OFFICIAL_DIR.is_dir(), reason="DGFiP schema package not available")
def test_the_dgfip_package_s_lines_are_read_through_its_imports():
    """Its Piece types (recette's, dépense's) sit in files PES_Aller.xsd imports."""
    assert piece_lines(official_xsd_path(OFFICIAL_DIR)) == {"LigneDePiece"}


_XSD_HEAD = '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'


@pytest.mark.parametrize(("types", "lines"), [
    # a line of one Piece type bounded in another: not a line (the file's Piece could be
    # either); a repeat that must occur twice: not a line either
    ('<xs:complexType name="TPiece"><xs:sequence><xs:element name="H"/>'
     '<xs:element name="L" maxOccurs="unbounded"/><xs:element name="M" minOccurs="2" '
     'maxOccurs="unbounded"/></xs:sequence></xs:complexType>'
     '<xs:element name="Other"><xs:complexType><xs:sequence><xs:element name="Piece">'
     '<xs:complexType><xs:sequence><xs:element name="L" maxOccurs="3"/><xs:element '
     'name="N" maxOccurs="unbounded"/></xs:sequence></xs:complexType></xs:element>'
     '</xs:sequence></xs:complexType></xs:element>', {"N"}),
    # content other than one plain sequence: listed whole
    ('<xs:complexType name="TPiece"><xs:choice><xs:element name="L" '
     'maxOccurs="unbounded"/></xs:choice></xs:complexType>', set()),
    ('<xs:complexType name="TPiece"><xs:sequence maxOccurs="unbounded"><xs:element '
     'name="L" maxOccurs="unbounded"/></xs:sequence></xs:complexType>', set()),
    ('<xs:complexType name="TPiece"><xs:sequence><xs:element name="H"/><xs:sequence>'
     '<xs:element name="L" maxOccurs="unbounded"/></xs:sequence></xs:sequence>'
     '</xs:complexType>', set()),
])
def test_lines_are_read_only_from_a_plain_sequence_repeating_them(tmp_path, types, lines):
    xsd = tmp_path / "f.xsd"
    xsd.write_text(f'{_XSD_HEAD}<xs:element name="Root"><xs:complexType><xs:sequence>'
                   '<xs:element name="Piece" type="TPiece" maxOccurs="unbounded"/>'
                   f'</xs:sequence></xs:complexType></xs:element>{types}</xs:schema>',
                   encoding="utf-8")
    load_xsd(xsd)  # a valid schema
    assert piece_lines(xsd) == lines


STOPPING = {
    "every-line": (1, True, lambda p, r: [_set(a, "ASAPQuantite", "x") for a in _asap(p)]),
    "the-imputation-and-every-line": (1, True, lambda p, r: (
        _set(_imp(p)[0], "MontantHT", "x"),
        [_set(a, "ASAPQuantite", "x") for a in _asap(p)])),
    "every-imputation": (12, False, lambda p, r: [_set(i, "MontantHT", "x") for i in _imp(p)]),
}


@pytest.mark.parametrize("kind", list(STOPPING))
def test_a_listing_stopped_inside_a_sliced_piece_numbers_as_the_whole_tree(tmp_path,
                                                                           monkeypatch, kind):
    """Stopped at MAX_LISTED_VIOLATIONS inside the piece, before its parent's end: the
    rest is read to know whether the piece, and each kind of line, is its parent's only
    one (XPath /Piece, /LignePiece), as the whole tree knows."""
    imputations, alone, tamper = STOPPING[kind]
    path = tmp_path / "many.xml"
    path.write_bytes(_corail_title(imputations, 30, tamper, alone))
    monkeypatch.setattr(validate, "MAX_LISTED_VIOLATIONS", 10)
    monkeypatch.setattr(validate, "STREAM_LINES", 3)
    lines = piece_lines(CORAIL_XSD)
    counting = _Counting(CORAIL, lines)
    *found, stopped = schema_errors_by_piece(path, counting, "pesgen", lines)
    assert stopped.message.startswith("listing stopped after 10 violations")
    listed = []
    for p in found:
        where, xpath = p.record.split(" ", 1)
        listed.append((int(where.rsplit(":", 1)[1]), p.message, xpath))
    expected = _tree_listing(path, CORAIL)
    assert len(expected) > 10 and sorted(listed) == expected[:10]
    assert max(counting.held) < 30  # listed by slices
