"""A piece of more than ``validate.STREAM_LINES`` lines is walked as the stream reads its
lines (``validate._PieceWalk``), each line dropped once walked: a title of 50 000 lines
held whole took 1 GiB to validate (docs/performance.md). Its problems, their order, lines
and XPaths are those of the whole-piece walk (``_check_piece``)."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from lxml import etree

from pesgen import validate
from pesgen.export import export
from pesgen.formats import find_format

from .conftest import EXAMPLES, MAPPINGS

OWN_XSD = find_format("pes-ormc").files[0].xsd


@pytest.fixture(scope="module")
def example_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("example")
    result = export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
                    out, date(2026, 11, 23))
    return result.files[0].path


def _set(line: etree._Element, path: str, value: str) -> None:
    found = line.find(path)
    assert found is not None, path
    found.set("V", value)


def _long_title(example_file, tmp_path, lines: int = 400):
    """The example's first title (a direct debit) given ``lines`` lines, as many copies
    of its first, renumbered, its header's totals made to match; some lines tampered,
    before and after STREAM_LINES, each for a rule the walk reads, XSD-valid."""
    doc = etree.parse(str(example_file))
    bordereau = doc.getroot().find(".//Bordereau")
    pieces = bordereau.findall("Piece")
    for other in pieces[1:]:
        bordereau.remove(other)
    piece = pieces[0]
    first = piece.find("LigneDePiece")
    for old in piece.findall("LigneDePiece"):
        piece.remove(old)
    for n in range(1, lines + 1):
        line = copy.deepcopy(first)
        _set(line, ".//IdLigne", str(n))
        piece.append(line)
    every = piece.findall("LigneDePiece")
    _set(every[9], ".//MtPrel", "1.00")  # line 10, before the walk starts: pes.mt-prel
    _set(every[279], ".//MtPrel", "1.00")  # and after it
    _set(every[289], ".//IdLigne", "5")  # pes.id-ligne-unique
    _set(every[299], ".//InfoTiers/NatJur", "03")  # another debtor, outside the grid
    _set(every[309], ".//IBAN", "FR7630006000011234567890188")  # its check digits
    _set(every[319], ".//DtePrel", "2026-11-01")  # other SEPA data, before DteBordEm
    _set(every[329], ".//DtePrel", "2026-11-01")  # the same again: named once
    _set(every[339], ".//CodRes", "1")  # abroad, with a French postal code
    total = sum(validate._amount(ln.find(".//MtHT").get("V")) for ln in every)
    bloc = bordereau.find("BlocBordereau")
    bloc.find("NbrPce").set("V", "1")
    bloc.find("MtBordHt").set("V", f"{total:.2f}")
    path = tmp_path / "long.xml"
    doc.write(str(path), xml_declaration=True, encoding=doc.docinfo.encoding)
    return path


def _check(path, monkeypatch, stream_lines: int):
    monkeypatch.setattr(validate, "STREAM_LINES", stream_lines)
    result = validate.stream_check(str(path), validate.load_xsd(OWN_XSD), path.name)
    return [(p.rule, p.message, p.record) for p in result.problems]


def test_a_long_piece_streamed_finds_what_the_whole_piece_walk_finds(example_file, tmp_path,
                                                                     monkeypatch):
    path = _long_title(example_file, tmp_path)
    streamed = _check(path, monkeypatch, 256)
    whole = _check(path, monkeypatch, 10**9)
    assert streamed == whole
    rules = [rule for rule, _, _ in streamed]
    assert {"pes.mt-prel", "pes.id-ligne-unique", "pes.single-debtor", "pes.sepa-same",
            "sepa.debit-date", "pes.address", "sepa.iban", "pes.cat-nat-grid"} <= set(rules), rules
    assert rules.count("pes.mt-prel") == 2 and rules.count("sepa.debit-date") == 1
    # located problems carry the line's step as the file numbers it, not as the tree
    # left after the lines before it were dropped
    [debit] = [record for rule, _, record in streamed if rule == "sepa.debit-date"]
    assert "/LigneDePiece[320]/" in debit, debit
    assert not any(" " not in record for rule, _, record in streamed
                   if rule in ("sepa.debit-date", "sepa.iban", "pes.cat-nat-grid",
                               "pes.address"))


def test_a_long_piece_with_an_account_abroad_reads_the_bic_beside_its_iban(
        example_file, tmp_path, monkeypatch):
    """sepa.bic-abroad reads the BIC beside the IBAN, in a streamed piece too (its lines
    dropped, the IBAN kept with its BIC): with its BIC an account abroad goes, without
    it the account is named once, where it first appears."""
    path = _long_title(example_file, tmp_path)
    doc = etree.parse(str(path))
    for iban in doc.iter("IBAN"):
        iban.set("V", "DE89370400440532013000")
    for bic in doc.iter("BIC"):
        bic.set("V", "COBADEFFXXX")
    doc.write(str(path), xml_declaration=True, encoding=doc.docinfo.encoding)
    streamed = _check(path, monkeypatch, 256)
    assert streamed == _check(path, monkeypatch, 10**9)
    assert not any(rule in ("sepa.bic-abroad", "sepa.iban") for rule, _, _ in streamed)
    for bic in list(doc.iter("BIC")):
        bic.getparent().remove(bic)
    doc.write(str(path), xml_declaration=True, encoding=doc.docinfo.encoding)
    streamed = _check(path, monkeypatch, 256)
    assert streamed == _check(path, monkeypatch, 10**9)
    abroad = [record for rule, _, record in streamed if rule == "sepa.bic-abroad"]
    assert len(abroad) == 1 and abroad[0].endswith(
        "/Piece/LigneDePiece[1]/Tiers/CpteBancaire/IBAN"), abroad


def test_a_long_piece_s_lines_without_idligne_keep_their_own_amounts(
        example_file, tmp_path, monkeypatch):
    """A line is counted by its InfoLignePiece, with or without IdLigne, in a streamed
    piece too: lines 1 and 300 without IdLigne (the XSD says so) leave the piece's and
    the bordereau's sums right and each MtPrel compared with its own line's MtHT (the
    XSD's problems are listed apart from these)."""
    path = _long_title(example_file, tmp_path)
    doc = etree.parse(str(path))
    lines = doc.getroot().findall(".//LigneDePiece")
    for n in (0, 299):
        id_ligne = lines[n].find(".//IdLigne")
        id_ligne.getparent().remove(id_ligne)
    doc.write(str(path), xml_declaration=True, encoding=doc.docinfo.encoding)
    streamed = _check(path, monkeypatch, 256)
    assert streamed == _check(path, monkeypatch, 10**9)
    rules = [rule for rule, _, _ in streamed]
    assert "pes.mt-bord-ht" not in rules, rules
    assert [message for rule, message, _ in streamed if rule == "pes.mt-prel"] == [
        "MtPrel differs from MtHT on line 10 of piece 1",
        "MtPrel differs from MtHT on line 280 of piece 1"]


def test_a_long_piece_keeps_few_lines_in_memory(example_file, tmp_path, monkeypatch):
    path = _long_title(example_file, tmp_path, lines=1200)
    held: list[int] = []
    finish = validate._PieceWalk.finish

    def counting(self, *args):
        held.append(len(self.piece.findall("LigneDePiece")))
        finish(self, *args)

    monkeypatch.setattr(validate._PieceWalk, "finish", counting)
    monkeypatch.setattr(validate, "STREAM_LINES", 256)
    result = validate.stream_check(str(path), validate.load_xsd(OWN_XSD), path.name)
    assert held and held[0] < 100, held  # 1 200 lines read, the walked ones dropped
    assert sum(p.rule == "pes.mt-prel" for p in result.problems) == 2


def test_a_short_piece_is_walked_whole(example_file, monkeypatch):
    walks: list[object] = []
    monkeypatch.setattr(validate._PieceWalk, "start", lambda self, last: walks.append(last))
    validate.stream_check(str(example_file), validate.load_xsd(OWN_XSD), example_file.name)
    assert walks == []
