"""The model's rules checked on a file pesgen did not write.

``pesgen validate`` is also run on files from other tools: the rules pesgen applies to a
canonical title before rendering (``pesgen.rules``, ``pesgen.build``) and that the XSD
cannot express are checked on the file too (``validate._check_piece``). Each case
tampers a copy of a golden file so that it breaks exactly one rule; the command must
refuse it with the validation exit code and name the rule, the line and the XPath of
the element at fault (written as libxml2 writes a schema violation's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import ExitCode
from pesgen.formats import find_format
from pesgen.validate import validate_pes_file

from .conftest import GOLDEN_ORMC, ROOT, golden_parts

GOLDEN = sorted((ROOT / "tests" / "golden").glob("*/expected/*.xml"))
SPLIT = ROOT / "tests" / "golden" / "split-bordereaux" / "expected"
FIRST_LINE_TIERS = (ROOT / "tests" / "golden" / "first-line-tiers" / "expected" /
                    GOLDEN_ORMC.name)

OWN_XSD = find_format("pes-ormc").files[0].xsd
runner = CliRunner()


def _validate(path: Path):
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception, result.output)
    return result


def _set(xpath: str, value: str) -> Callable[[etree._Element], None]:
    """Set V on every element the XPath selects (every line of a piece, so that the
    piece keeps a single debtor and identical SEPA data)."""
    def tamper(root: etree._Element) -> None:
        els = root.xpath(xpath)
        assert els, xpath
        for el in els:
            el.set("V", value)
    return tamper


def _remove(xpath: str) -> Callable[[etree._Element], None]:
    def tamper(root: etree._Element) -> None:
        els = root.xpath(xpath)
        assert els, xpath
        for el in els:
            el.getparent().remove(el)
    return tamper


def _add_after(xpath: str, tag: str, value: str) -> Callable[[etree._Element], None]:
    def tamper(root: etree._Element) -> None:
        els = root.xpath(xpath)
        assert els, xpath
        for el in els:
            el.addnext(etree.Element(tag, V=value))
    return tamper


def _piece(n: int, inside: str) -> str:
    return f"(//Piece)[{n}]/LigneDePiece/{inside}"


def _id_tiers(n: int, kind: str, value: str) -> Callable[[etree._Element], None]:
    """Give the debtor of piece ``n`` (on every line) the IdTiers ``value`` of NatIdTiers
    ``kind``: set them where it has them, else add them first in its InfoTiers (the XSD's
    order: IdTiers, DteNaissance, NatIdTiers)."""
    def tamper(root: etree._Element) -> None:
        infos = root.xpath(_piece(n, "Tiers/InfoTiers"))
        assert infos
        for info in infos:
            for tag, v in (("IdTiers", value), ("NatIdTiers", kind)):
                el = info.find(tag)
                if el is None and tag == "IdTiers":
                    el = etree.Element(tag)
                    info.insert(0, el)
                elif el is None:
                    el = etree.Element(tag)
                    born = info.find("DteNaissance")
                    (info.find("IdTiers") if born is None else born).addnext(el)
                el.set("V", v)
    return tamper


# (case, golden file, tamper, rule, fragment of the message, the element it points to)
CASES: list[tuple[str, Path, Callable[[etree._Element], None], str, str, str]] = [
    ("civility-missing", GOLDEN_ORMC, _remove(_piece(2, "Tiers/InfoTiers/Civilite")),
     "pes.civility", "a person (CatTiers 01) needs a civility",
     "(//Piece)[2]/LigneDePiece[1]/Tiers/InfoTiers"),
    ("civility-mlle", GOLDEN_ORMC, _set(_piece(2, "Tiers/InfoTiers/Civilite"), "MLLE"),
     "pes.civility", "civility 'MLLE' (Mademoiselle) is rejected by Hélios",
     "(//Piece)[2]/LigneDePiece[1]/Tiers/InfoTiers/Civilite"),
    # ('Mademoiselle' itself is longer than Civilite's 10 characters: the XSD refuses it)
    ("civility-melle", GOLDEN_ORMC, _set(_piece(4, "Tiers/InfoTiers/Civilite"), "Melle."),
     "pes.civility", "civility 'Melle.' (Mademoiselle) is rejected",
     "(//Piece)[4]/LigneDePiece/Tiers/InfoTiers/Civilite"),
    ("first-name-missing", GOLDEN_ORMC, _remove(_piece(9, "Tiers/InfoTiers/Prenom")),
     "pes.first-name", "a person (CatTiers 01) needs a first name",
     "(//Piece)[9]/LigneDePiece[1]/Tiers/InfoTiers"),
    ("person-natjur-03", GOLDEN_ORMC, _set(_piece(1, "Tiers/InfoTiers/NatJur"), "03"),
     "pes.cat-nat-grid", "CatTiers 01 / NatJur 03 is outside the grid",
     "(//Piece)[1]/LigneDePiece[1]/Tiers/InfoTiers/NatJur"),
    ("organisation-natjur-01", GOLDEN_ORMC, _set(_piece(7, "Tiers/InfoTiers/NatJur"), "01"),
     "pes.cat-nat-grid", "CatTiers 50 / NatJur 01 is outside the grid",
     "(//Piece)[7]/LigneDePiece[1]/Tiers/InfoTiers/NatJur"),
    ("siret-key", GOLDEN_ORMC, _set(_piece(3, "Tiers/InfoTiers/IdTiers"), "77522165800014"),
     "pes.id-tiers", "SIRET '77522165800014' is invalid",
     "(//Piece)[3]/LigneDePiece[1]/Tiers/InfoTiers/IdTiers"),
    ("id-tiers-without-kind", GOLDEN_ORMC, _remove(_piece(3, "Tiers/InfoTiers/NatIdTiers")),
     "pes.id-tiers", "IdTiers and NatIdTiers go together",
     "(//Piece)[3]/LigneDePiece[1]/Tiers/InfoTiers/IdTiers"),
    ("kind-without-id-tiers", GOLDEN_ORMC, _remove(_piece(3, "Tiers/InfoTiers/IdTiers")),
     "pes.id-tiers", "IdTiers and NatIdTiers go together",
     "(//Piece)[3]/LigneDePiece[1]/Tiers/InfoTiers/NatIdTiers"),
    # the DGFiP checks the length of a FINESS (9) and of a NIR (15), and a NIR's key
    ("finess-length", GOLDEN_ORMC, _id_tiers(3, "03", "75010023"),
     "pes.id-tiers", "FINESS '75010023' has 8 characters, not 9: the DGFiP rejects",
     "(//Piece)[3]/LigneDePiece[1]/Tiers/InfoTiers/IdTiers"),
    # (a NIR: test_a_nir_is_refused_its_length_and_key_said_too)
    # and the form of the other kinds: 13 digits for an NFP
    ("nfp-form", GOLDEN_ORMC, _id_tiers(2, "12", "123456789012"),
     "pes.id-tiers", "NFP is not 13 digits: the DGFiP rejects the bordereau",
     "(//Piece)[2]/LigneDePiece[1]/Tiers/InfoTiers/IdTiers"),
    ("iban-checksum", GOLDEN_ORMC,
     _set(_piece(1, "Tiers/CpteBancaire/IBAN"), "FR7630006000011234567890188"),
     "sepa.iban", "IBAN is invalid: its check digits do not match the rest (a "
     "character mistyped, missing or one too many?)",
     "(//Piece)[1]/LigneDePiece[1]/Tiers/CpteBancaire/IBAN"),
    ("iban-country-length", GOLDEN_ORMC,
     _set(_piece(6, "Tiers/CpteBancaire/IBAN"), "FR762004101005050001302605"),
     "sepa.iban", "IBAN is invalid", "(//Piece)[6]/LigneDePiece[1]/Tiers/CpteBancaire/IBAN"),
    ("bic-country", GOLDEN_ORMC, _set(_piece(10, "Tiers/CpteBancaire/BIC"), "BNPAXXPPXXX"),
     "sepa.bic", "BIC 'BNPAXXPPXXX' is invalid",
     "(//Piece)[10]/LigneDePiece[1]/Tiers/CpteBancaire/BIC"),
    ("mandate-signed-after-debit", GOLDEN_ORMC,
     _set(_piece(1, "BlocLignePiece/InfoPrelevementSEPA/DateSignMandat"), "2026-12-06"),
     "sepa.mandate", "mandate signed 2026-12-06, after the debit date 2026-12-05",
     "(//Piece)[1]/LigneDePiece[1]/BlocLignePiece/InfoPrelevementSEPA/DateSignMandat"),
    ("cle2", GOLDEN_ORMC, _set("(//Piece)[1]/BlocPiece/Cle2", "A"),
     "pes.cle2", "Cle2 is A, Exer 2026, Per 1 and NumDette 202600101 give U",
     "(//Piece)[1]/BlocPiece/Cle2"),
    ("cle2-after-per-changed", SPLIT / "PESORMC_21450999400015_2026_0000009.xml",
     _set("(//Piece)[3]/BlocPiece/Per", "2"), "pes.cle2", "Per 2 and NumDette",
     "(//Piece)[3]/BlocPiece/Cle2"),
    ("non-resident-without-codpays", GOLDEN_ORMC, _remove(_piece(5, "Tiers/Adresse/CodPays")),
     "pes.address", "a non-resident address needs CodPays",
     "(//Piece)[5]/LigneDePiece[1]/Tiers/Adresse/CodRes"),
    ("non-resident-in-france", GOLDEN_ORMC, _set(_piece(5, "Tiers/Adresse/CodPays"), "100"),
     "pes.address", "CodRes 1 with CodPays 100 (France)",
     "(//Piece)[5]/LigneDePiece[1]/Tiers/Adresse/CodPays"),
    ("non-resident-codpays-of-one-digit", GOLDEN_ORMC,
     _set(_piece(5, "Tiers/Adresse/CodPays"), "1"),
     "pes.address", "CodPays '1' of a non-resident address is not an INSEE country code",
     "(//Piece)[5]/LigneDePiece[1]/Tiers/Adresse/CodPays"),
    ("codres-1-without-codpays", GOLDEN_ORMC, _set(_piece(4, "Tiers/Adresse/CodRes"), "1"),
     "pes.address", "a non-resident address needs CodPays",
     "(//Piece)[4]/LigneDePiece/Tiers/Adresse/CodRes"),
    ("resident-with-codpays", GOLDEN_ORMC,
     _add_after(_piece(9, "Tiers/Adresse/CodRes"), "CodPays", "131"),
     "pes.address", "a resident address has CodPays absent or 100",
     "(//Piece)[9]/LigneDePiece[1]/Tiers/Adresse/CodPays"),
    # Tiers on the first line only; a bordereau of several files
    ("first-line-tiers-civility", FIRST_LINE_TIERS,
     _set(_piece(6, "Tiers/InfoTiers/Civilite"), "Mlle"),
     "pes.civility", "civility 'Mlle' (Mademoiselle)",
     "(//Piece)[6]/LigneDePiece[1]/Tiers/InfoTiers/Civilite"),
    ("split-bordereaux-grid", SPLIT / "PESORMC_21450999400015_2026_0000008.xml",
     _set(_piece(2, "Tiers/InfoTiers/CatTiers"), "23"),
     "pes.cat-nat-grid", "CatTiers 23 / NatJur 01 is outside the grid",
     "(//Piece)[2]/LigneDePiece[1]/Tiers/InfoTiers/NatJur"),
]


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_golden_files_validate(golden):
    r = _validate(golden)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == (f"{golden}: valid as pes-ormc (TypFic PESORMC): pesgen XSD "
                                "pes-ormc/pes-ormc.xsd + bordereau rules")


def _comment_after(xpath: str) -> Callable[[etree._Element], None]:
    def tamper(root: etree._Element) -> None:
        els = root.xpath(xpath)
        assert els, xpath
        for el in els:
            el.addnext(etree.Comment(" a tool's comment "))
    return tamper


@pytest.mark.parametrize("tamper", [
    # a comment between CodRes and CodPays is no missing CodPays
    pytest.param(_comment_after(_piece(5, "Tiers/Adresse/CodRes")), id="comment-after-codres"),
    pytest.param(_add_after(_piece(9, "Tiers/Adresse/CodRes"), "CodPays", "100"),
                 id="resident-with-codpays-100"),
    pytest.param(_set(_piece(2, "Tiers/InfoTiers/Civilite"), "MR"), id="civility-mr"),
    pytest.param(_set(_piece(7, "Tiers/InfoTiers/NatJur"), "03"), id="organisation-natjur-03"),
    # a FINESS's key is not checked: 9 characters pass, Corsica's too
    pytest.param(_id_tiers(3, "03", "2A0000012"), id="finess-of-9-characters"),
    pytest.param(_id_tiers(3, "05", "FR40303265045"), id="tva-intra-of-13-characters"),
    pytest.param(_id_tiers(2, "12", "1234567890123"), id="nfp-of-13-digits"),
    # MtPrel is compared with MtHT as amounts: 142.5 is the line's 142.50
    pytest.param(_set("(//Piece)[1]/LigneDePiece[2]/BlocLignePiece/InfoPrelevementSEPA/MtPrel",
                      "142.5"), id="mtprel-written-otherwise"),
])
def test_tampered_golden_file_still_valid(tmp_path, tamper):
    doc = etree.parse(str(GOLDEN_ORMC))
    tamper(doc.getroot())
    path = tmp_path / GOLDEN_ORMC.name
    doc.write(str(path), xml_declaration=True, encoding="ISO-8859-1")
    r = _validate(path)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("src, tamper, rule, fragment, at",
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_tampered_golden_file_is_refused(tmp_path, src, tamper, rule, fragment, at):
    doc = etree.parse(str(src))
    tamper(doc.getroot())
    path = tmp_path / src.name
    doc.write(str(path), xml_declaration=True, encoding="ISO-8859-1")
    target = etree.parse(str(path)).xpath(at)
    assert len(target) == 1, at
    where = f"{path.name}:{target[0].sourceline} {target[0].getroottree().getpath(target[0])}"

    r = _validate(path)
    assert r.exit_code == ExitCode.OUTPUT == 6, r.output
    assert r.stdout == ""
    problems = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    # exactly this rule, once: a debtor repeated on every line is checked once
    assert problems == [f"  - {where}: {problems[0].split(': ', 1)[1]}"], r.stderr
    assert problems[0].endswith(f"(rule {rule})"), problems
    assert fragment in problems[0], problems


@pytest.mark.parametrize("nir, problem", [
    # 1850775123456's key is 08; 253072A073004's is 43 (Corsica's 2A counted as 19)
    ("185077512345608", None), ("253072A07300443", None),
    ("185077512345609", "NIR is invalid (characters or key): the DGFiP rejects"),
    ("253072A0730044", "NIR has 14 characters, not 15: the DGFiP rejects"),
])
def test_a_nir_is_refused_its_length_and_key_said_too(tmp_path, nir, problem):
    """pesgen validate refuses a debtor's NIR (NatIdTiers 04), whatever its key: the DGFiP
    takes one in a hospital's budget only (M21, M22), and pesgen's XSD takes no hospital's
    file (FinJur). A wrong key or length is said too, first, at the same IdTiers; the
    person's number is not repeated."""
    doc = etree.parse(str(GOLDEN_ORMC))
    _id_tiers(1, "04", nir)(doc.getroot())
    path = tmp_path / GOLDEN_ORMC.name
    doc.write(str(path), xml_declaration=True, encoding="ISO-8859-1")
    at = etree.parse(str(path)).xpath("(//Piece)[1]/LigneDePiece[1]/Tiers/InfoTiers/IdTiers")
    assert len(at) == 1
    where = f"{path.name}:{at[0].sourceline} {at[0].getroottree().getpath(at[0])}"

    r = _validate(path)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    problems = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    expected = [*([problem] if problem else []), "a NIR (NatIdTiers 04) is for the budgets "
                "of hospitals only (nomenclatures M21, M22, whose files have a FinJur): the "
                "DGFiP rejects the bordereau of any other (rule pes.id-tiers)"]
    assert len(problems) == len(expected), r.stderr
    for line, fragment in zip(problems, expected, strict=True):
        assert line.startswith(f"  - {where}: ") and fragment in line, (line, fragment)
        assert line.endswith("(rule pes.id-tiers)")
    assert nir not in r.stderr and nir[:13] not in r.stderr


def _civility_paths(doc: bytes, tmp_path: Path) -> tuple[list[str], list[str]]:
    """The records of the pes.civility problems of a document, and where the first
    Civilite set to MLLE of each piece is (line and XPath, as in the whole parsed
    document)."""
    path = tmp_path / "t.xml"
    path.write_bytes(doc)
    tree = etree.parse(str(path))
    expected = [f"t.xml:{el.sourceline} {tree.getpath(el)}"
                for el in tree.xpath("//Piece/descendant::Civilite[@V = 'MLLE'][1]")]
    problems = validate_pes_file(path, OWN_XSD)
    return [p.record or "" for p in problems if p.rule == "pes.civility"], expected


def test_the_xpath_of_the_only_piece_of_a_bordereau_has_no_index(tmp_path):
    head, piece, tail = golden_parts()
    head = head.replace(b'<NbrPce V="11"/>', b'<NbrPce V="1"/>').replace(
        b'<MtBordHt V="2527.25"/>', b'<MtBordHt V="282.75"/>')
    bad = piece.replace(b'<Civilite V="MME"/>', b'<Civilite V="MLLE"/>')
    got, expected = _civility_paths(head + bad + tail, tmp_path)
    assert got == expected and len(got) == 1
    assert "/Bordereau/Piece/LigneDePiece[1]/Tiers/InfoTiers/Civilite" in got[0]


def test_the_xpaths_in_a_file_of_several_bordereaux(tmp_path):
    """Bordereau and Piece steps are indexed as in the whole document: the first
    bordereau's path is known only once the second one is read."""
    head, piece, tail = golden_parts()
    bloc = b"<Bordereau>" + head.split(b"<Bordereau>", 1)[1]
    bad = piece.replace(b'<Civilite V="MME"/>', b'<Civilite V="MLLE"/>')
    doc = head + bad + b"</Bordereau>\n" + bloc + piece + bad + tail
    got, expected = _civility_paths(doc, tmp_path)
    assert got == expected and len(got) == 2
    assert "/Bordereau[1]/Piece/" in got[0] and "/Bordereau[2]/Piece[2]/" in got[1]


@pytest.mark.parametrize("key, problems", [("M", []), ("N", ["Cle2 is N, Exer 2024, Per 9 and "
                                                            "NumDette 2024000123 give M"])])
def test_cle2_worked_example_of_the_notes(tmp_path, key, problems):
    """Notes section 10.3: Exer 2024, Per 9, NumDette 2024000123 give Cle2 M."""
    head, piece, tail = golden_parts()
    for old, new in ((b'<NbrPce V="11"/>', b'<NbrPce V="1"/>'),
                     (b'<MtBordHt V="2527.25"/>', b'<MtBordHt V="282.75"/>'),
                     (b'<Exer V="2026"/>', b'<Exer V="2024"/>')):
        assert head.count(old) == 1
        head = head.replace(old, new)
    for old, new in ((b'<NumDette V="202600101"/><Per V="1"/>',
                      b'<NumDette V="2024000123"/><Per V="9"/>'),
                     (b'<Cle2 V="U"/>', f'<Cle2 V="{key}"/>'.encode())):
        assert piece.count(old) == 1
        piece = piece.replace(old, new)
    path = tmp_path / "t.xml"
    path.write_bytes(head + piece + tail)
    found = validate_pes_file(path, OWN_XSD)
    assert [p.message for p in found] == problems
    assert all(p.rule == "pes.cle2" and p.record and p.record.endswith(
        "/Bordereau/Piece/BlocPiece/Cle2") for p in found)


def test_a_missing_natjur_is_listed_at_the_infotiers_not_a_crash(tmp_path):
    """NatJur is mandatory (the XSD lists it); the grid rule then names the InfoTiers."""
    doc = etree.parse(str(GOLDEN_ORMC))
    _remove(_piece(4, "Tiers/InfoTiers/NatJur"))(doc.getroot())
    path = tmp_path / "t.xml"
    doc.write(str(path), xml_declaration=True, encoding="ISO-8859-1")
    info = etree.parse(str(path)).xpath("(//Piece)[4]/LigneDePiece/Tiers/InfoTiers")[0]
    problems = validate_pes_file(path, OWN_XSD)
    assert {p.rule for p in problems} == {"xsd.pesgen", "pes.cat-nat-grid"}
    grid = [p for p in problems if p.rule == "pes.cat-nat-grid"]
    assert [(p.message, p.record) for p in grid] == [
        ("CatTiers 01 / NatJur None is outside the grid",
         f"t.xml:{info.sourceline} {info.getroottree().getpath(info)}")]


def test_direct_debit_lines_without_idligne_are_listed_not_a_crash(tmp_path):
    """IdLigne is mandatory (the XSD lists it missing); the SEPA blocks of lines without
    one are still read, their MtPrel compared with no line's MtHT, and the file is
    refused with its problems, not an internal error."""
    doc = etree.parse(str(GOLDEN_ORMC))
    _remove(_piece(6, "BlocLignePiece/InfoLignePiece/IdLigne"))(doc.getroot())
    path = tmp_path / GOLDEN_ORMC.name
    doc.write(str(path), xml_declaration=True, encoding="ISO-8859-1")
    r = _validate(path)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert "Expected is ( IdLigne )" in r.stderr and "(rule xsd.pesgen)" in r.stderr, r.stderr


@pytest.mark.parametrize("piece", [1, 6])
def test_lines_without_idligne_keep_their_own_amounts(tmp_path, piece):
    """A line is its InfoLignePiece, with or without its IdLigne: a file whose lines lack
    IdLigne gets the XSD's problem alone. Counted by IdLigne, a line's MtHT went to the
    line before (or nowhere for the first), and validate listed an MtBordHt that did not
    add up and MtPrel differing from MtHT, both false (piece 6: a direct debit)."""
    doc = etree.parse(str(GOLDEN_ORMC))
    _remove(_piece(piece, "BlocLignePiece/InfoLignePiece/IdLigne"))(doc.getroot())
    path = tmp_path / GOLDEN_ORMC.name
    doc.write(str(path), xml_declaration=True, encoding="ISO-8859-1")
    problems = validate_pes_file(path, OWN_XSD)
    assert problems and {p.rule for p in problems} == {"xsd.pesgen"}, \
        [(p.rule, p.message) for p in problems]


def test_a_bordereau_without_its_header_is_listed_not_a_crash(tmp_path):
    """BlocBordereau is mandatory (the XSD lists it missing): its pieces have no header
    to be counted against, and the file is refused with its problem, not an internal
    error."""
    doc = etree.parse(str(GOLDEN_ORMC))
    _remove("//Bordereau/BlocBordereau")(doc.getroot())
    path = tmp_path / GOLDEN_ORMC.name
    doc.write(str(path), xml_declaration=True, encoding="ISO-8859-1")
    r = _validate(path)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert "Expected is ( BlocBordereau )" in r.stderr and "(rule xsd.pesgen)" in r.stderr, \
        r.stderr
