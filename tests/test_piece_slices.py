"""A schema error in a piece of more than ``validate.STREAM_LINES`` lines is listed a slice
of lines at a time (``validate._Slices``), the piece's head kept in each: the listing
of a title of 50 000 lines took 1.8 GiB read whole (docs/performance.md, "A title of
50 000 lines"). Its messages, lines and XPaths are those of the whole tree's."""

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
from pesgen.validate import _parser, load_xsd, schema_errors_by_piece

from .conftest import GOLDEN_ORMC

SCHEMA = load_xsd(schema_path("pes-ormc/pes-ormc.xsd"))


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


def _tree_listing(path: Path) -> list[tuple[int, str, str]]:
    doc = etree.parse(str(path), _parser())
    assert not SCHEMA.validate(doc)
    return sorted((e.line, e.message, e.path) for e in SCHEMA.error_log)


def _listing(path: Path, schema=SCHEMA) -> list[tuple[int, str, str]]:
    out = []
    for p in schema_errors_by_piece(path, schema, "pesgen"):
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


@pytest.mark.parametrize("stream_lines", [1, 3, 7])
@pytest.mark.parametrize("kind", list(TAMPERS))
def test_a_long_piece_listed_by_slices_lists_what_the_whole_tree_lists(tmp_path, monkeypatch,
                                                                      kind, stream_lines):
    path = tmp_path / "long.xml"
    path.write_bytes(_long_title(30, TAMPERS[kind]))
    slices: list[int] = []
    up_to = validate._up_to

    def spying(el, children=None):
        if children is not None:
            slices.append(len(children))
        return up_to(el, children)

    monkeypatch.setattr(validate, "_up_to", spying)
    monkeypatch.setattr(validate, "STREAM_LINES", stream_lines)
    expected = _tree_listing(path)
    assert _listing(path) == expected
    assert slices  # listed by slices
    if kind == "values-across-slices":
        assert [x.split("/LigneDePiece")[1][:4] for _l, _m, x in expected] == [
            "[1]/", "[7]/", "[8]/", "[14]", "[30]"]


class _Counting:
    """The schema, noting how many lines each document it validates holds."""

    def __init__(self, schema: etree.XMLSchema) -> None:
        self.schema = schema
        self.held: list[int] = []

    def validate(self, tree: etree._ElementTree) -> bool:
        self.held.append(len(tree.getroot().findall(".//LigneDePiece")))
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


# tracemalloc does not see libxml2's memory (the listing of the 50 000-line title: 0.05
# MiB traced, 1.8 GiB resident): the peak resident size of a process of its own (its
# VmHWM: ru_maxrss would keep the test process's, through fork and exec)
_PEAK = """
import json, sys
from pathlib import Path
from pesgen.resources import schema_path
from pesgen.validate import load_xsd, schema_errors_by_piece
problems = schema_errors_by_piece(Path(sys.argv[1]), load_xsd(schema_path(
    "pes-ormc/pes-ormc.xsd")), "pesgen")
with open("/proc/self/status", encoding="ascii") as status:
    [peak] = [int(s.split()[1]) for s in status if s.startswith("VmHWM:")]
print(json.dumps({"records": [p.record for p in problems], "peak_mib": peak / 1024}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="Linux's /proc needed")
def test_listing_a_title_of_20_000_lines_stays_flat(tmp_path):
    """Read whole, its 20 000 lines (20 MB) took some 700 MiB; by slices, what the
    process takes anyway (under 120 MiB)."""
    path = tmp_path / "long.xml"
    path.write_bytes(_long_title(20_000, lambda p, b: _set(_lines(p)[14_999], ".//IdLigne",
                                                           "x")))
    done = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True,
                          text=True, check=True)
    found = json.loads(done.stdout)
    [record] = found["records"]
    assert "/Piece[1]/LigneDePiece[15000]/BlocLignePiece/InfoLignePiece/IdLigne" in record
    assert found["peak_mib"] < 120, found["peak_mib"]
