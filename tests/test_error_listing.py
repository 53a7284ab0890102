"""Listing every XSD violation of a large invalid file piece by piece (flat memory)
gives what validating it as one tree gives: same lines, messages and XPaths."""

from __future__ import annotations

import importlib.util
import random
import re
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from pesgen.export import export
from pesgen.resources import schema_path
from pesgen.validate import (
    MAX_LISTED_VIOLATIONS,
    TREE_LISTING_MAX_BYTES,
    _parser,
    load_xsd,
    piece_lines,
    schema_errors_by_piece,
    validate_pes_file,
)

from .conftest import MAPPINGS, ROOT, golden_parts, run_cli
from .mapping_support import mapping_copy

SCHEMA = load_xsd(schema_path("pes-ormc/pes-ormc.xsd"))
LINES = piece_lines(schema_path("pes-ormc/pes-ormc.xsd"))


@pytest.fixture(scope="module")
def big_valid(tmp_path_factory) -> bytes:
    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench_export.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    work = tmp_path_factory.mktemp("big")
    bench.generate(work / "in.json", 2500, 3)  # ~5.7 MiB: many parser chunks
    result = export(MAPPINGS / "villeneuve-sur-loing.yaml", work / "in.json", work / "out",
                    date(2026, 11, 23))
    [f] = result.files
    return f.path.read_bytes()


def _tree_listing(path: Path) -> list[tuple[int, str, str]]:
    doc = etree.parse(str(path), _parser())
    assert not SCHEMA.validate(doc)
    return sorted((e.line, e.message, e.path) for e in SCHEMA.error_log)


def _piece_listing(path: Path) -> list[tuple[int, str, str]]:
    out = []
    for p in schema_errors_by_piece(path, SCHEMA, "pesgen", LINES):
        where, xpath = p.record.split(" ", 1)
        out.append((int(where.rsplit(":", 1)[1]), p.message, xpath))
    return sorted(out)


def _nth(data: bytes, needle: bytes, n: int) -> int:
    pos = -1
    for _ in range(n):
        pos = data.index(needle, pos + 1)
    return pos


MUTATIONS = {
    # a bad value deep in a piece, far into the file
    "bad-value": lambda d, n: d[:_nth(d, b'<IdPce V="', n) + 10] + b"x" +
    d[_nth(d, b'<IdPce V="', n) + 10:],
    # a required element removed from a line
    "missing": lambda d, n: d[:_nth(d, b"<CodProdLoc ", n)] +
    d[d.index(b"/>", _nth(d, b"<CodProdLoc ", n)) + 2:],
    # an unknown element between two pieces
    "between": lambda d, n: d[:_nth(d, b"<Piece>", n)] + b"<Junk/>\n" + d[_nth(d, b"<Piece>", n):],
    # the header broken: seen with every piece, listed once
    "header": lambda d, n: d.replace(b'<TypBord V="06"/>', b'<TypBord V="6x"/>', 1),
    # something after the last piece
    "trailing": lambda d, n: d.replace(b"</Bordereau>", b"<Junk/>\n</Bordereau>", 1),
}


@pytest.mark.parametrize("kinds", [["bad-value"], ["missing"], ["between"], ["header"],
                                   ["trailing"], list(MUTATIONS)])
def test_piece_by_piece_listing_equals_the_tree_listing(big_valid, tmp_path, kinds):
    rnd = random.Random(",".join(kinds))
    data = big_valid
    for kind in kinds:
        for _ in range(3 if kind in ("bad-value", "missing", "between") else 1):
            data = MUTATIONS[kind](data, rnd.randrange(1, 2400))
    path = tmp_path / "bad.xml"
    path.write_bytes(data)
    expected = _tree_listing(path)
    assert expected  # the mutation made it invalid
    assert _piece_listing(path) == expected
    if kinds in (["bad-value"], ["missing"]):  # errors deep in the file were listed
        assert any(re.search(r"/Piece\[\d{2,}\]/", x) for _l, _m, x in expected)


def test_not_well_formed_names_the_line(tmp_path, big_valid):
    path = tmp_path / "broken.xml"
    cut = _nth(big_valid, b"<Piece>", 1200)
    path.write_bytes(big_valid[:cut] + b"<Piece><<" + big_valid[cut:])
    [p] = schema_errors_by_piece(path, SCHEMA, "pesgen", LINES)
    assert p.rule == "xml.pesgen" and "not well-formed" in p.message
    line = big_valid[:cut].count(b"\n") + 1
    assert p.record == f"broken.xml:{line}"


def test_one_piece_bordereau_and_two_bordereaux(tmp_path):
    head, first_piece, tail = golden_parts()
    bordereau = head[head.index(b"<Bordereau>"):]
    one = head + first_piece.replace(b'<NatPce V="01"/>', b'<NatPce V="1"/>') + tail
    path = tmp_path / "one.xml"
    path.write_bytes(one)
    assert _piece_listing(path) == _tree_listing(path)
    assert "/Bordereau/Piece/BlocPiece/NatPce" in _tree_listing(path)[0][2]
    # two bordereaux in one PES_RecetteAller: Bordereau[1], Bordereau[2]
    two = (head + first_piece + first_piece + b"</Bordereau>\n" + bordereau +
           first_piece.replace(b'<NatPce V="01"/>', b'<NatPce V="1"/>') + tail)
    path.write_bytes(two)
    assert _piece_listing(path) == _tree_listing(path)
    assert "/Bordereau[2]/Piece/BlocPiece/NatPce" in _tree_listing(path)[0][2]


@pytest.mark.parametrize("piecewise", [False, True])
@pytest.mark.parametrize("pieces, listed, stopped", [(5, 5, False), (6, 5, True)])
def test_a_listing_of_exactly_its_maximum_is_whole(tmp_path, monkeypatch, piecewise, pieces,
                                                   listed, stopped):
    """At its maximum (5 here) the XSD's listing is whole, said as stopped only past it
    (one violation per bad piece), from one tree and piece by piece."""
    import pesgen.validate as validate

    monkeypatch.setattr(validate, "MAX_LISTED_VIOLATIONS", 5)
    if piecewise:
        monkeypatch.setattr(validate, "TREE_LISTING_MAX_BYTES", 0)
    head, piece, tail = golden_parts()
    bad = piece.replace(b'<TypPce V="15"/>', b'<TypPce V="99"/>')
    path = tmp_path / "bad.xml"
    path.write_bytes(head + bad * pieces + tail)
    problems = validate_pes_file(path, schema_path("pes-ormc/pes-ormc.xsd"))
    schema = [p for p in problems if p.rule == "xsd.pesgen"]
    said = [p for p in schema if p.message.startswith("listing stopped after 5 violations")]
    assert (len(schema) - len(said), bool(said)) == (listed, stopped), schema


@pytest.mark.parametrize("bad_piece, count", [
    (b"<Piece><Z/></Piece>\n", 1500),  # a small file: listed from one tree
    (None, 1200),  # ~3 MiB of real pieces, each with one bad value: listed piece by piece
])
def test_a_listing_stops_after_its_maximum(tmp_path, bad_piece, count):
    """Every bad piece is a violation; the listing gives the first ones and says it
    stopped, instead of spending minutes and gigabytes on all of them."""
    head, piece, tail = golden_parts()
    if bad_piece is None:
        bad_piece = piece.replace(b'<TypPce V="15"/>', b'<TypPce V="99"/>')
    path = tmp_path / "bad.xml"
    path.write_bytes(head + bad_piece * count + tail)
    assert (path.stat().st_size > TREE_LISTING_MAX_BYTES) == (count == 1200)
    problems = validate_pes_file(path, schema_path("pes-ormc/pes-ormc.xsd"))
    schema = [p for p in problems if p.rule == "xsd.pesgen"]
    assert len(schema) == MAX_LISTED_VIOLATIONS + 1
    assert schema[-1].message.startswith(f"listing stopped after {MAX_LISTED_VIOLATIONS} "
                                         "violations")
    lines = [int(p.record.split(":")[1].split()[0]) for p in schema[:-1]]
    assert lines == sorted(lines)  # the first ones, in document order
    # the bordereau checks (every piece repeats an IdPce here) stop the same way
    [stopped] = [p for p in problems if p.rule == "pes.listing"]
    assert f"listing stopped after {MAX_LISTED_VIOLATIONS} bordereau problems" in stopped.message
    assert len(problems) <= 2 * (MAX_LISTED_VIOLATIONS + 1) + 3  # + the bordereau totals


def test_a_streamed_export_of_a_document_left_unclosed_is_refused(tmp_path):
    """From STREAM_VALIDATION_FROM titles the export validates while rendering, in a
    second process reading a pipe: a template that leaves the root unclosed is refused
    there too (the file is then checked whole and named at its last line), nothing
    written."""
    import shutil

    from pesgen.errors import OutputInvalidError
    from pesgen.export import STREAM_VALIDATION_FROM

    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench_export.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.generate(tmp_path / "in.json", STREAM_VALIDATION_FROM + 100, 3)
    bundle = tmp_path / "fmts" / "unclosed"
    shutil.copytree(ROOT / "templates" / "pes-ormc", bundle)
    fy = bundle / "format.yaml"
    fy.write_text(fy.read_text(encoding="utf-8").replace("name: pes-ormc", "name: unclosed"),
                  encoding="utf-8")
    tpl = bundle / "pes-aller.xml.j2"
    tpl.write_text(tpl.read_text(encoding="utf-8").replace("</n:PES_Aller>", ""),
                   encoding="utf-8")
    mapping, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
                              ("format: pes-ormc", "format: unclosed"), name="m.yaml")
    out = tmp_path / "out"
    with pytest.raises(OutputInvalidError) as caught:
        export(mapping, tmp_path / "in.json", out, date(2026, 11, 23),
               formats_dirs=[tmp_path / "fmts"])
    [p] = caught.value.problems
    assert p.rule == "xml.pesgen" and "Premature end of data in tag PES_Aller" in p.message
    assert not out.exists()


def test_pesgen_validate_shows_where_its_listing_stopped_past_the_200_it_lists(tmp_path):
    """`pesgen validate` lists 200 problems and counts the rest: the two saying the
    listing stopped (the XSD's, pes.listing) were counted among them, unseen, so the
    count passed for all the file held. They are shown after the count."""
    head, _piece, tail = golden_parts()
    path = tmp_path / "bad.xml"
    path.write_bytes(head + b"<Piece><Z/></Piece>\n" * 1500 + tail)
    r = run_cli("validate", path)
    assert r.exit_code == 6, r.output
    said = r.stderr.splitlines()
    cut = said.index(next(s for s in said if s.startswith("  … and ")))
    # 200 problems alike: said once, then their 200 records (cli.ALIKE)
    assert cut == 202 and said[cut].endswith(" more problem(s)")
    assert said[1].startswith("  - 200 problems alike, their records below: ")
    assert said[cut + 1:] == [
        f"  - bad.xml: listing stopped after {MAX_LISTED_VIOLATIONS} bordereau problems "
        "(500 more): correct these and validate again (rule pes.listing)",
        f"  - bad.xml: listing stopped after {MAX_LISTED_VIOLATIONS} violations: correct "
        "these and validate again (rule xsd.pesgen)",
        f"{said[0].split(': ')[-1]}."]
