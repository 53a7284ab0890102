"""`pesgen acquit`: the trésorerie's acknowledgement (PES_ACQUIT) read safely and tied to
the runs pesgen recorded. The acknowledgements of tests/acquit/ are written by hand from
the DGFiP facts (DT v5.19 Acquittement, XSD v5.17 PES_V2_Acquit_Autonome_V2.xsd)."""

from __future__ import annotations

import hashlib
import io
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from pesgen.acquit import LABEL_LIMIT, LABEL_MAX, AckElement, AckError, Acquit, read_acquit, tie
from pesgen.errors import ExitCode, InputDataError, UsageError
from pesgen.store import Bordereau

from .conftest import EXAMPLES, GOLDEN_ORMC, MAPPINGS, ROOT, RUN_DATE, package_store, run_cli

ACKS = ROOT / "tests" / "acquit"
SAMPLE = (ROOT.parent / "shared" / "reference" / "vendors" / "dgfip-pes-v2" / "samples" /
          "s2low_fixture_pes_acquit.xml")


def _head(element: str) -> str:
    """An acknowledgement of IdColl 21450999400015 budget 00 with one ElementACQUIT."""
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    start = text.index("    <ElementACQUIT>")
    end = text.index("  </ACQUIT>")
    return text[:start] + element + text[end:]


def _element_text(domain: str, state: str, bordereau: str) -> str:
    """An ElementACQUIT of DomaineAck ``domain``, EtatAck ``state``, NumBord ``bordereau``
    of 2026 (the V attributes as given)."""
    return (f'    <ElementACQUIT>\n      <DomaineAck V="{domain}"/>\n      <EtatAck V="{state}"/>'
            f'\n      <NumBord V="{bordereau}"/>\n      <ExerciceBord V="2026"/>\n'
            "    </ElementACQUIT>\n")


def _write(tmp_path: Path, text: str, name: str = "ack.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="iso-8859-1")
    return path


# ------------------------------------------------------------------ the parser

def test_the_sample_shape_is_read_bordereau_and_pj_elements():
    """The shape of a real acquit (a vendor's fixture, where present): a Dépense
    bordereau and four PJ, all accepted."""
    if not SAMPLE.is_file():
        pytest.skip("the vendor sample is not beside the project (../shared)")
    a = read_acquit(SAMPLE)
    assert (a.id_coll, a.cod_bud, a.id_post) == ("20004910400025", "01", "086016")
    first = a.elements[0]
    assert (first.domain, first.domain_label, first.accepted, first.bordereau,
            first.exercise) == ("5", "Dépense", True, 1847, 2015)
    assert [(e.domain, e.accepted, e.bordereau) for e in a.elements[1:]] == [("4", True, None)] * 4
    assert a.elements[1].attachment == "200049104000252015DEPENSE0000087458"


def test_a_rejected_bordereau_is_read_with_its_errors_pieces_and_lines():
    a = read_acquit(ACKS / "rejected.xml")
    assert (a.id_coll, a.cod_bud, a.nom_fic) == ("21450999400015", "00",
                                                "PESORMC_21450999400015_2026_0000001.xml")
    rejected, accepted = a.elements
    assert (rejected.domain, rejected.accepted, rejected.bordereau, rejected.exercise) == \
        ("7", False, 1, 2026)
    # ISO-8859-1 as declared: the DGFiP's label as written
    assert [(x.code, x.label) for x in rejected.errors] == [
        ("ERREUR_CUMUL_MONTANTS",
         "Le montant du bordereau ne correspond pas à la somme des pièces")]
    (piece,) = rejected.pieces
    assert piece.number == 3
    assert [(x.code, x.label) for x in piece.errors] == [("ERREUR_CODIFICATION",
                                                          "Civilité inconnue")]
    assert [(ln.number, [x.code for x in ln.errors]) for ln in piece.lines] == [
        (2, ["ERREUR_AUTRE"])]
    # EtatAck is an xs:boolean ("true" is 1); NumBord keeps no leading zero
    assert (accepted.domain, accepted.accepted, accepted.bordereau) == ("6", True, 42)


@pytest.mark.parametrize("with_xsd", [False, True], ids=["checked-here", "official-xsd"])
def test_the_file_is_read_once_and_its_digest_is_that_of_the_bytes_parsed(
        tmp_path, monkeypatch, request, with_xsd):
    """A file replaced while pesgen reads it (the guichet's next download written over
    it): what is parsed, validated and recorded comes from one read, so the sha256 names
    the acknowledgement read, never another's."""
    official = request.getfixturevalue("official_xsd") if with_xsd else None
    accepted = (ACKS / "accepted.xml").read_bytes()
    path = tmp_path / "ack.xml"
    path.write_bytes(accepted)
    real_open = Path.open
    reads = []

    def open_then_replace(self: Path, *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, *args, **kwargs)
        if self != path or "r" not in (args[0] if args else kwargs.get("mode", "r")):
            return handle
        with handle:
            data = handle.read()
        reads.append(data)
        path.write_bytes((ACKS / "rejected.xml").read_bytes())
        return io.BytesIO(data)

    monkeypatch.setattr(Path, "open", open_then_replace)
    a = read_acquit(path, official)
    assert reads == [accepted]
    assert a.sha256 == hashlib.sha256(accepted).hexdigest()
    assert [(e.accepted, e.bordereau) for e in a.elements] == \
        [(e.accepted, e.bordereau) for e in read_acquit(ACKS / "accepted.xml").elements]


def test_the_hand_written_acks_are_valid_against_the_official_xsd(official_xsd):
    for name in ("accepted.xml", "rejected.xml", "file-rejected.xml", "check-domains.xml",
                 "doublon.xml", "rejected-no-error.xml", "empty-identifiers.xml"):
        assert read_acquit(ACKS / name, official_xsd).elements


def test_the_official_xsd_refuses_what_it_forbids(tmp_path, official_xsd):
    """With the DGFiP package, its XSD judges: IdVer missing is its finding, at its line."""
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    path = _write(tmp_path, text.replace('      <IdVer V="2"/>\n', ""))
    with pytest.raises(InputDataError) as info:
        read_acquit(path, official_xsd)
    assert "PES_V2_Acquit_Autonome_V2.xsd" in str(info.value)
    assert {p.rule for p in info.value.problems} == {"xsd.dgfip"}
    assert "IdVer" in info.value.problems[0].message


def test_a_dgfip_package_without_the_acquit_xsd_is_refused_as_usage(tmp_path):
    """--official-xsd names a package (here its PES_Aller.xsd itself) with no
    PES_V2_Acquit_Autonome_V2.xsd beside it: refused as usage, never read as if it had
    been validated."""
    entry = tmp_path / "PES_Aller.xsd"
    entry.write_text("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'/>")
    with pytest.raises(UsageError) as info:
        read_acquit(ACKS / "accepted.xml", entry)
    assert str(info.value) == (f"{entry}: no PES_V2_Acquit_Autonome_V2.xsd beside "
                               "PES_Aller.xsd in this DGFiP package (PES_V2/Rev0/)")
    r = run_cli("acquit", ACKS / "accepted.xml", "--official-xsd", entry)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "no PES_V2_Acquit_Autonome_V2.xsd beside PES_Aller.xsd" in r.output


def test_each_domain_and_anomaly_code_is_the_dgfip_xsd_s(official_xsd):
    """DomaineAck's label, which every verdict shows, is the DGFiP's documentation of
    its code (TDomaineAck, CommunAck.xsd), code by code."""
    from lxml import etree

    xs = "{http://www.w3.org/2001/XMLSchema}"
    xsd = etree.parse(str(official_xsd / "PES_V2" / "CommunAck.xsd"))
    (domains,) = [t for t in xsd.iter(f"{xs}complexType") if t.get("name") == "TDomaineAck"]
    documented = {v.get("value"): v.findtext(f".//{xs}documentation").strip()
                  for v in domains.iter(f"{xs}enumeration")}
    assert len(documented) == 14
    for code, label in documented.items():
        e = AckElement(1, code, True, None, None, None, None, (), ())
        assert e.domain_label == label, code
    # and each anomaly code of its TNumAnoAck is known, never said "not in the list"
    (codes,) = [t for t in xsd.iter(f"{xs}complexType") if t.get("name") == "TNumAnoAck"]
    listed = [v.get("value") for v in codes.iter(f"{xs}enumeration")]
    assert listed and [c for c in listed if not AckError(c, "x").known] == []


def test_an_unknown_anomaly_code_is_shown_as_such():
    from pesgen.acquit import AckError

    assert AckError("ERREUR_SIRET", "x").known
    assert "not in the DGFiP code list" in str(AckError("ERREUR_INVENTEE", "x"))


def test_an_error_without_its_code_is_said_so_before_its_label():
    """An Erreur without NumAnoAck (the XSD allows it): `error (no code): label`, as
    `pesgen acquit` prints it, never a line starting with ': '."""
    assert str(AckError(None, "Le flux est vide")) == "(no code): Le flux est vide"
    assert str(AckError(None, None)) == "(no code)"


def test_without_the_xsd_what_pesgen_reads_is_checked_every_problem_at_its_line(tmp_path):
    text = _head('''    <ElementACQUIT>
      <DomaineAck V="13"/>
      <EtatAck V="2"/>
      <NumBord V="12a"/>
      <ExerciceBord V="2026"/>
      <DetailPiece>
        <Erreur/>
      </DetailPiece>
    </ElementACQUIT>
''').replace('    <IdColl V="21450999400015"/>\n', "")
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text))
    found = [(p.rule, p.message, p.record) for p in info.value.problems]
    assert all(rule == "acquit.structure" for rule, _, _ in found)
    messages = [m for _, m, _ in found]
    assert messages == [
        "no IdColl",
        "DomaineAck '13' is not a code of the DGFiP list "
        "(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 99)",
        "EtatAck is '2', not 1 (accepted) nor 0 (rejected)",
        "NumBord is '12a', not a number of at most 7 digits",
        "no NumPiece",
    ]
    assert found[0][2].startswith("ack.xml:")
    assert found[3][2].endswith("/ElementACQUIT/NumBord")


def test_a_value_left_out_or_blank_where_one_is_required_is_a_problem_at_its_line(tmp_path):
    """A V attribute left out, or empty or blank where the XSD's type takes no empty
    value (CodBud, DomaineAck, the codes of an Erreur), is a problem: never read as a
    budget "" nor a domain; an empty V is a value only where the XSD's *_Light type
    allows it (IdColl, NumBord…, read as not given)."""
    text = _head('''    <ElementACQUIT>
      <DomaineAck V="  "/>
      <EtatAck V="0"/>
      <NumBord V="5"/>
      <ExerciceBord V="2026"/>
      <Erreur>
        <NumAnoAck/>
      </Erreur>
    </ElementACQUIT>
''').replace('<CodBud V="00"/>', '<CodBud V=""/>')
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text))
    assert [(p.message, p.record.split(" ")[1]) for p in info.value.problems] == [
        ("CodBud has no value (attribute V)", "/n:PES_ACQUIT/EnTetePES/CodBud"),
        ("DomaineAck has no value (attribute V)",
         "/n:PES_ACQUIT/ACQUIT/ElementACQUIT/DomaineAck"),
        ("NumAnoAck has no value (attribute V)",
         "/n:PES_ACQUIT/ACQUIT/ElementACQUIT/Erreur/NumAnoAck")]


def test_an_idcoll_longer_than_a_siret_is_a_problem(tmp_path):
    """IdColl is a Base_Num14_Light: 15 digits are no collectivity's, a problem at its
    line, never compared with the runs' IdColl."""
    text = _head(_element_text("6", "1", "5")).replace('<IdColl V="21450999400015"/>',
                                                        '<IdColl V="214509994000150"/>')
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text))
    assert [p.message for p in info.value.problems] == [
        "IdColl is '214509994000150', not a number of at most 14 digits"]


@pytest.mark.parametrize(("tag", "value", "said"), [
    ("ExerciceBord", "20260", "ExerciceBord is '20260', not a number of at most 4 digits"),
    ("NumPiece", "1" * 14, f"NumPiece is '{'1' * 14}', not a number of at most 13 digits"),
    ("NumLigne", "2" * 14, f"NumLigne is '{'2' * 14}', not a number of at most 13 digits"),
    ("EtatAck", "acceptée par le comptable",
     "EtatAck is 'acceptée par le comp… (25 characters)', not 1 (accepted) nor 0 "
     "(rejected)"),
], ids=["exercise", "piece", "line", "state"])
def test_a_number_longer_than_its_xsd_type_is_a_problem(tmp_path, tag, value, said):
    """ExerciceBord is a Base_Num4_Light, NumPiece and NumLigne Base_Num13_Light: one
    digit more is no identifier of pesgen's, a problem (never a number compared with
    the store's); a wrong EtatAck is quoted by its first 20 characters."""
    values = {"EtatAck": "0", "ExerciceBord": "2026", "NumPiece": "3", "NumLigne": "2",
              tag: value}
    text = _head(f"""    <ElementACQUIT>
      <DomaineAck V="6"/>
      <EtatAck V="{values['EtatAck']}"/>
      <NumBord V="5"/>
      <ExerciceBord V="{values['ExerciceBord']}"/>
      <DetailPiece>
        <NumPiece V="{values['NumPiece']}"/>
        <DetailLigne>
          <NumLigne V="{values['NumLigne']}"/>
        </DetailLigne>
      </DetailPiece>
    </ElementACQUIT>
""")
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text))
    assert [p.message for p in info.value.problems] == [said]


def test_a_market_element_is_read_as_a_market_not_an_element_naming_nothing(tmp_path):
    """An ElementACQUIT naming a market (IdMarche, XSD choice n°2) is read as one: not
    pesgen's, never "naming no bordereau" (whose run support would be sent to look for)."""
    text = _head("""    <ElementACQUIT>
      <DomaineAck V="11"/>
      <EtatAck V="0"/>
      <IdMarche V="M-2026-04"/>
    </ElementACQUIT>
""")
    a = read_acquit(_write(tmp_path, text))
    (e,) = a.elements
    assert (e.market, e.attachment, e.bordereau) == ("M-2026-04", None, None)
    (r,) = tie(a, _Store()).elements
    assert (r.kind, r.verdict) == ("market", "REJECTED: market M-2026-04 (pesgen sends no "
                                   "market)")


def test_an_acquit_without_its_header_is_a_problem_not_an_acquit_of_no_one(tmp_path):
    """Without EnTetePES nothing says whose acquit it is (IdColl, CodBud): a problem at
    the root, never an acquit read with no collectivity."""
    text = _head(_element_text("6", "1", "5"))
    start, end = text.index("  <EnTetePES>"), text.index("  <ACQUIT>")
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text[:start] + text[end:]))
    assert [(p.message, p.record.split(" ")[1]) for p in info.value.problems] == [
        ("no EnTetePES (IdColl and CodBud name the collectivity's budget)", "/n:PES_ACQUIT")]


@pytest.mark.parametrize(("cut", "where"), [
    (("    <ElementACQUIT>", "  </ACQUIT>"), "/n:PES_ACQUIT/ACQUIT"),
    (("  <ACQUIT>", "</n:PES_ACQUIT>"), "/n:PES_ACQUIT")], ids=["no-element", "no-acquit"])
def test_an_acquit_answering_nothing_is_a_problem_never_all_accepted(tmp_path, cut, where):
    """No ElementACQUIT (or no ACQUIT at all): nothing is acknowledged, which is a
    problem at its place, never an acquit of no rejection (exit 0)."""
    text = _head(_element_text("6", "1", "5"))
    text = text[:text.index(cut[0])] + text[text.index(cut[1]):]
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text))
    assert [(p.message, p.record.split(" ")[1]) for p in info.value.problems] == [
        ("no ACQUIT/ElementACQUIT", where)]


@pytest.mark.parametrize(("version", "said"), [
    ('<IdVer V="1"/>', "IdVer is '1': pesgen reads version 2 of the PES_ACQUIT (its "
     "namespace's), not another"),
    ('<IdVer V="3"/>', "IdVer is '3': pesgen reads version 2 of the PES_ACQUIT (its "
     "namespace's), not another"),
    ('<IdVer V="v2"/>', "IdVer is 'v2', not a number of at most 2 digits"),
    ('<IdVer V="2"/><IdVer V="1"/>', "a second IdVer in EnTeteAcquit (the one read is at "
     "line 29), where the XSD allows one: pesgen does not choose which to read"),
    ('<IdVer V="2"/>', None), ('<IdVer V="02"/>', None),
    ('<IdVer V=""/>', None),  # allowed by its type (Base_Num2_Light): not given
    ("", None),  # no IdVer, which only the XSD requires (its test below)
], ids=["1", "3", "not-a-number", "twice", "2", "02", "empty", "none"])
def test_an_idver_saying_another_version_than_2_is_refused_at_its_line(
        tmp_path, version, said):
    """EnTeteAcquit/IdVer is the acquit's version (DT v5.19 Acquittement_blocs: « Version
    de l'Acquit (2) »): pesgen reads version 2, the namespace's; an IdVer saying another
    is refused at its line (exit 4), never read as if it said 2; not given, the
    namespace says it."""
    text = _head(_ACCEPTED)
    assert '      <IdVer V="2"/>\n' in text
    path = _write(tmp_path, text.replace('<IdVer V="2"/>', version))
    if said is None:
        assert read_acquit(path).elements[0].accepted
        return
    with pytest.raises(InputDataError) as info:
        read_acquit(path)
    assert [(p.rule, p.message, p.record.split(" ")[0]) for p in info.value.problems] == [
        ("acquit.structure", said, "ack.xml:29")]
    r = run_cli("acquit", path)
    assert r.exit_code == ExitCode.INPUT
    assert "ack.xml:29 /n:PES_ACQUIT/ACQUIT/EnTeteAcquit/IdVer" in r.stderr


def test_a_libelle_longer_than_the_500_characters_of_the_xsd_is_refused_at_its_line(
        tmp_path):
    """LibelleAnoAck is a Base_Texte500_Light (XSD v5.17): 500 characters at most, counted
    as characters (500 accented letters are 1 000 bytes in UTF-8: read); one more is
    refused at its line (exit 4), as the XSD refuses it, never read whole nor cut."""
    def with_label(label: str) -> Path:
        error = (f'      <Erreur>\n        <NumAnoAck V="ERREUR_AUTRE"/>\n        '
                 f'<LibelleAnoAck V="{label}"/>\n      </Erreur>\n')
        text = _head(_REJECTED.replace("    </ElementACQUIT>", error + "    </ElementACQUIT>"))
        path = tmp_path / "ack.xml"
        path.write_text(text.replace('encoding="ISO-8859-1"', 'encoding="UTF-8"'),
                        encoding="utf-8")
        return path

    (read,) = read_acquit(with_label("é" * LABEL_MAX)).elements[0].errors
    assert read.label == "é" * LABEL_MAX
    with pytest.raises(InputDataError) as info:
        read_acquit(with_label("é" * LABEL_MAX + "x"))
    assert [(p.rule, p.message, p.record) for p in info.value.problems] == [(
        "acquit.structure", "LibelleAnoAck is 501 characters, more than the 500 the XSD "
        "allows (Base_Texte500_Light): not read",
        "ack.xml:38 /n:PES_ACQUIT/ACQUIT/ElementACQUIT/Erreur/LibelleAnoAck")]


def test_the_official_xsd_bounds_the_libelle_and_idver_as_the_reader_does(tmp_path,
                                                                          official_xsd):
    """The DGFiP XSD takes a libellé of 500 characters and refuses 501 and an IdVer of 3
    digits; an IdVer of 1 it takes (Base_Num2_Light), which the reader refuses."""
    text = _head(_REJECTED.replace("    </ElementACQUIT>", (
        '      <Erreur>\n        <LibelleAnoAck V="LABEL"/>\n      </Erreur>\n'
        "    </ElementACQUIT>")))
    assert read_acquit(_write(tmp_path, text.replace("LABEL", "é" * 500)), official_xsd)
    for changed in (text.replace("LABEL", "é" * 501),
                    text.replace('<IdVer V="2"/>', '<IdVer V="002"/>')):
        with pytest.raises(InputDataError) as info:
            read_acquit(_write(tmp_path, changed), official_xsd)
        assert {p.rule for p in info.value.problems} == {"xsd.dgfip"}
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text.replace('<IdVer V="2"/>', '<IdVer V="1"/>')),
                    official_xsd)
    assert [p.rule for p in info.value.problems] == ["acquit.structure"]


def test_without_the_xsd_what_pesgen_only_shows_may_be_missing(tmp_path):
    """Without --official-xsd, only what pesgen reads to tie is required: an acquit
    without IdPost nor LibelleColBud (shown, never compared) is read, and names its
    collectivity by IdColl and budget only."""
    text = (_head(_element_text("6", "1", "5")).replace('    <IdPost V="045012"/>\n', "")
            .replace('    <LibelleColBud V="COMMUNE DE VILLENEUVE SUR LOING"/>\n', ""))
    a = read_acquit(_write(tmp_path, text))
    assert (a.id_post, a.coll_label, a.id_coll, a.cod_bud) == (None, None, "21450999400015",
                                                               "00")
    assert a.collectivity == "IdColl 21450999400015 budget 00"
    # an IdColl given has no "empty" line (--json's id_coll_empty_line is null)
    assert a.id_coll_empty_at is None
    # nor is NomFic needed (it only ever refuses a tie): none is read as none
    start, end = text.index("  <Enveloppe>"), text.index("  <EnTetePES>")
    assert read_acquit(_write(tmp_path, text[:start] + text[end:])).nom_fic is None
    assert read_acquit(ACKS / "accepted.xml").collectivity == (
        "IdColl 21450999400015 budget 00 (IdPost 045012, COMMUNE DE VILLENEUVE SUR LOING)")


@pytest.mark.parametrize(("state", "accepted"), [
    ("1", True), ("true", True), ("0", False), ("false", False), (" false ", False)])
def test_etat_ack_is_read_as_the_xs_boolean_it_is(tmp_path, state, accepted):
    """EtatAck is a Base_Booleen (V_Booleen: xs:boolean, whose lexical forms are 1, true,
    0, false, whitespace collapsed): "false" is a rejection as "0" is, never an
    acceptance nor a structure problem."""
    (e,) = read_acquit(_write(tmp_path, _head(_element_text("6", state, "5")))).elements
    assert (e.accepted, e.bordereau) == (accepted, 5)


def test_a_long_wrong_value_is_quoted_by_its_first_20_characters(tmp_path):
    """What the file gives instead of a code, a number or a date is quoted cut to its
    first 20 characters (a NumBord or DomaineAck with how long it was), so that a
    message stays one line a support person can read."""
    text = _head('''    <ElementACQUIT>
      <DomaineAck V="RecetteRecetteRecetteRecette"/>
      <EtatAck V="1"/>
      <NumBord V="123456789012345678901234567890"/>
      <ExerciceBord V="2026"/>
    </ElementACQUIT>
''').replace('<DteStr V="2026-11-24"/>', '<DteStr V="le 24 novembre 2026 au matin"/>')
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text))
    assert [p.message for p in info.value.problems] == [
        "DteStr is 'le 24 novembre 2026 ', not a date (YYYY-MM-DD)",
        "DomaineAck 'RecetteRecetteRecett… (28 characters)' is not a code of the DGFiP "
        "list (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 99)",
        "NumBord is '12345678901234567890… (30 characters)', not a number of at most 7 "
        "digits"]


@pytest.mark.parametrize(("make", "said"), [
    (lambda tmp: GOLDEN_ORMC, "a PES_Aller, a file sent to the trésorerie"),
    (lambda tmp: _write(tmp, (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
                        .replace("/Rev0/retour/v2", "/Rev0/retour")),
     "a PES_ACQUIT of version 1"),
    (lambda tmp: _write(tmp, "<PES_ACQUIT/>"),
     "a PES_ACQUIT in namespace None"),
    (lambda tmp: EXAMPLES / "school-export.csv", "is not XML (its first character is"),
    (lambda tmp: tmp / "missing.xml", "no such file"),
], ids=["pes-aller", "version-1", "no-namespace", "csv", "missing"])
def test_a_file_that_is_not_a_pes_acquit_is_refused_as_usage(tmp_path, make, said):
    path = make(tmp_path)
    with pytest.raises(UsageError) as info:
        read_acquit(path)
    assert said in str(info.value)
    r = run_cli("acquit", path)
    assert r.exit_code == ExitCode.USAGE
    assert said in r.output


def test_a_large_file_that_is_not_xml_is_refused_without_being_read(tmp_path):
    # a support person picks the wrong file (an archive, a whole export): its head says
    # it is not XML, and the rest is never read into memory
    import tracemalloc

    path = tmp_path / "export.zip"
    with path.open("wb") as handle:
        handle.write(b"PK\x03\x04")
        handle.truncate(64 * 1024 * 1024)  # sparse: no disk used
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match="is not XML"):
            read_acquit(path)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_a_file_not_well_formed_is_refused_at_its_line(tmp_path):
    path = _write(tmp_path, _head("    <ElementACQUIT>\n"))
    r = run_cli("acquit", path)
    assert r.exit_code == ExitCode.INPUT
    assert "not well-formed" in r.output and "(rule acquit.xml)" in r.output


_ACCEPTED = _element_text("7", "1", "1")
_REJECTED = _element_text("7", "0", "1")


@pytest.mark.parametrize(("text", "said", "where"), [
    (_head(_ACCEPTED.replace('<EtatAck V="1"/>', '<EtatAck V="1"/>\n      <EtatAck V="0"/>')),
     "a second EtatAck in ElementACQUIT (the one read is at line 33), where the XSD allows "
     "one: pesgen does not choose which to read", "/ElementACQUIT/EtatAck[2]"),
    (_head(_ACCEPTED.replace('<NumBord V="1"/>', '<NumBord V="1"/><NumBord V="2"/>')),
     "a second NumBord in ElementACQUIT (the one read is at line 34), where the XSD allows "
     "one: pesgen does not choose which to read", "/ElementACQUIT/NumBord[2]"),
    (_head(_ACCEPTED).replace("</n:PES_ACQUIT>", "  <ACQUIT>\n" + _REJECTED
                              + "  </ACQUIT>\n</n:PES_ACQUIT>"),
     "a second ACQUIT in PES_ACQUIT (the one read is at line 27), where the XSD allows one: "
     "pesgen does not choose which to read", "/n:PES_ACQUIT/ACQUIT[2]"),
    (_head(_ACCEPTED).replace("  </ACQUIT>", "  </ACQUIT>\n" + _REJECTED),
     "ElementACQUIT in PES_ACQUIT, where the XSD has none (it belongs in ACQUIT): not read",
     "/n:PES_ACQUIT/ElementACQUIT"),
    (_head(_ACCEPTED.replace("    </ElementACQUIT>", _REJECTED + "    </ElementACQUIT>")),
     "ElementACQUIT in ElementACQUIT, where the XSD has none (it belongs in ACQUIT): not "
     "read", "/ElementACQUIT/ElementACQUIT"),
    (_head(_ACCEPTED).replace("  <ACQUIT>", '  <EnTetePES>\n    <IdColl V="21750001600019"/>'
                              '\n    <CodBud V="00"/>\n  </EnTetePES>\n  <ACQUIT>'),
     "a second EnTetePES in PES_ACQUIT (the one read is at line 19), where the XSD allows "
     "one: pesgen does not choose which to read", "/n:PES_ACQUIT/EnTetePES[2]"),
], ids=["etat-twice", "numbord-twice", "acquit-twice", "element-outside", "element-nested",
        "header-twice"])
def test_an_element_read_twice_or_out_of_its_place_is_a_problem_never_the_first_taken(
        tmp_path, text, said, where):
    """Without the XSD, an element of those pesgen reads given where it is not read (a
    second EtatAck, ACQUIT or EnTetePES, which the XSD forbids; an ElementACQUIT outside
    ACQUIT) is a problem at its line: reading the first and dropping the other would take
    a bordereau the file also says rejected for accepted (exit 0)."""
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text))
    assert [(p.rule, p.message) for p in info.value.problems] == [("acquit.structure", said)]
    assert info.value.problems[0].record.endswith(where)


def test_acquit_elements_in_its_namespace_are_a_problem_and_a_valid_variant_reads_the_same(
        tmp_path):
    """Below PES_ACQUIT the XSD's elements are in no namespace (elementFormDefault
    unqualified): a default namespace that puts them in the acquit's is said so, at their
    line, not only "no EnTetePES"; the same file with the namespace undone on them (valid
    by the XSD) is read as the sample is."""
    ns = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1").replace(
        f'<n:PES_ACQUIT xmlns:n="{ns}">', f'<PES_ACQUIT xmlns="{ns}">').replace(
        "</n:PES_ACQUIT>", "</PES_ACQUIT>")
    with pytest.raises(InputDataError) as info:
        read_acquit(_write(tmp_path, text))
    said = [p.message for p in info.value.problems]
    assert said[:2] == ["no EnTetePES (IdColl and CodBud name the collectivity's budget)",
                        "no ACQUIT/ElementACQUIT"]
    assert said[2:] == [f"{tag} is in namespace {ns}, where the XSD has its elements in none "
                        "(elementFormDefault unqualified: only PES_ACQUIT is in the "
                        "namespace): not read" for tag in ("Enveloppe", "EnTetePES", "ACQUIT")]
    for tag in ("Enveloppe", "EnTetePES", "ACQUIT"):
        text = text.replace(f"  <{tag}>", f'  <{tag} xmlns="">', 1)
    variant = read_acquit(_write(tmp_path, text, "variant.xml"))
    sample = read_acquit(ACKS / "accepted.xml")
    assert (variant.elements, variant.id_coll, variant.cod_bud, variant.nom_fic) == (
        sample.elements, sample.id_coll, sample.cod_bud, sample.nom_fic)


class _Store:
    """A store holding IdBord 5 of 2026 in runs of these TypBord (ORMC 06 and titres 01
    number apart)."""

    def __init__(self, *typ_bords: str) -> None:
        self.typ_bords = typ_bords

    def pes_bordereau(self, id_coll, cod_bud, exercise, id_bord):
        return [(f"run-{t}", t, Bordereau(id_bord, 1, "10.00", f"F{t}.xml"))
                for t in self.typ_bords]

    def piece_invoices(self, run_id, id_bord):  # pragma: no cover - not asked
        raise AssertionError("no piece is named")

    # what `tie` asks, each number's or bordereau's answer the one above
    def pes_bordereaux(self, id_coll, cod_bud, wanted):
        return {(x, n): held for x, n in wanted
                if (held := self.pes_bordereau(id_coll, cod_bud, x, n))}

    def bordereaux_titles(self, run_id, id_bords):  # no record, no lines: schema 18
        return {n: {p: (invoice, None, None) for p, invoice in
                    self.piece_invoices(run_id, n).items()} for n in id_bords}

    def acknowledgements(self, run_ids):
        return {}

    def acquit_elements(self, sha256):  # the file was never recorded
        return {}


def _tied(domain: str, *typ_bords: str, nom_fic: str | None = None):
    e = AckElement(1, domain, False, 5, 2026, None, None, (), ())
    (r,) = tie(Acquit("a.xml", "21450999400015", "00", None, nom_fic, (e,)),
               _Store(*typ_bords)).elements
    return r


def test_the_domain_chooses_between_an_ormc_and_a_titres_bordereau_of_one_number():
    """ORMC rôles and titres number apart: both may hold IdBord 5. DomaineAck 7 (Rôle)
    answers the rôle, 6 (Recette) the titres; the other is set aside, not tied."""
    role = _tied("7", "06", "01")
    assert ([f.run_id for f in role.found], [x.run.run_id for x in role.set_aside]) == (
        ["run-06"], ["run-01"])
    assert role.verdict == "REJECTED"
    assert role.next_step().startswith("pesgen runs cancel run-06 --bordereau 5 ")
    titres = _tied("6", "06", "01")
    assert ([f.run_id for f in titres.found], [x.run.run_id for x in titres.set_aside]) == (
        ["run-01"], ["run-06"])
    assert titres.next_step().startswith("pesgen runs cancel run-01 --bordereau 5 ")


def test_a_bordereau_two_runs_of_its_domain_hold_is_said_ambiguous_with_no_command():
    """Titres (01) and annulations (02) number apart too: DomaineAck 6 fits both."""
    r = _tied("6", "01", "02")
    assert [f.run_id for f in r.found] == ["run-01", "run-02"]
    assert "2 runs of this store hold an IdBord 5 (TypBord 01, 02)" in r.verdict
    assert r.next_step() is None


def test_the_one_run_of_a_number_is_not_tied_when_the_domain_contradicts_its_typbord():
    rejected = _tied("6", "06")
    assert (rejected.found, [x.run.run_id for x in rejected.set_aside]) == ((), ["run-06"])
    assert rejected.verdict.startswith(
        "REJECTED: DomaineAck 6 (Recette) for a rôle (TypBord 06) of run run-06: not tied; "
        "if the trésorerie acknowledges this rôle so, ")
    assert rejected.next_step() is None
    assert _tied("7", "01").verdict.startswith(
        "REJECTED: DomaineAck 7 (Rôle) for a titres bordereau (TypBord 01) of run run-01: "
        "not tied; if the trésorerie acknowledges this bordereau so, ")


def test_every_run_the_domain_contradicts_is_said_each_in_its_own_words():
    """DomaineAck 7 (Rôle) for a number only a titres (01) and an annulations (02) run
    hold: neither is tied, and the verdict gives each one's reason, one after the
    other."""
    r = _tied("7", "01", "02")
    first, second = r.set_aside
    assert (r.found, first.run.run_id, second.run.run_id) == ((), "run-01", "run-02")
    assert r.verdict == f"REJECTED: {first.why}; {second.why}"
    assert r.verdict.count("(rule acquit.domain); DomaineAck 7 (Rôle) for a titres "
                           "bordereau (TypBord 02) of run run-02") == 1


def test_a_pj_and_a_market_are_said_not_pesgen_s_by_what_they_name():
    """An element naming a PJ (IdUnique) or a market (IdMarche), no bordereau: not
    pesgen's (it sends neither), said so by what it names, never as a bordereau
    lacking its exercise."""
    pj = AckElement(1, "4", True, None, None, None, "PJ-0087458", (), ())
    market = AckElement(9, "11", False, None, None, "M-2026-04", None, (), ())
    said = {r.kind: (r.verdict, r.ours) for r in tie(
        Acquit("a.xml", "21450999400015", "00", None, None, (pj, market)), _Store()).elements}
    assert said == {
        "attachment": ("accepted: PJ PJ-0087458 (pesgen sends no PJ)", False),
        "market": ("REJECTED: market M-2026-04 (pesgen sends no market)", False)}
    # a PJ the guichet's technical check (DomaineAck 0) took with an error: not pesgen's
    # either, so nothing to check (exit 0), whatever its domain
    checked = AckElement(1, "0", True, None, None, None, "PJ-0087458",
                         (AckError("ERREUR_PJ", "x"),), ())
    (r,) = tie(Acquit("a.xml", "21450999400015", "00", None, None, (checked,)),
               _Store()).elements
    assert (r.kind, r.ours, r.to_check()) == ("attachment", False, None)


@pytest.mark.parametrize(("nom_fic", "tied"), [
    ("PESALR1_21450999400015_2026_0000005.xml", False),
    ("pesalr1_21450999400015_2026_0000005.xml", False),
    ("PESORMC_21450999400015_2026_0000005.xml", True),
    ("PESORMC_21450999400015_2026_0000004.xml", True),  # a kind, not a number, is read
    ("pescg291201703030412001", True),  # a name telling no PES file type: not read
    ("PESALR2_21450999400015_2026_0000005.xml", True),
    ("PESALR1", True),  # the type alone, no file name after it: not read
    (None, True),
])
def test_a_nomfic_of_another_kind_than_the_run_s_file_refuses_the_tie(nom_fic, tied):
    """Whether NomFic names the file acknowledged is unconfirmed: it only ever refuses
    a tie it contradicts (a PES_Aller file named against a run that wrote an ORMC)."""
    e = AckElement(1, "7", False, 5, 2026, None, None, (), ())

    class OneOrmc(_Store):
        def pes_bordereau(self, id_coll, cod_bud, exercise, id_bord):
            return [("run-06", "06", Bordereau(id_bord, 1, "10.00",
                                               "PESORMC_21450999400015_2026_0000005.xml"))]

    (r,) = tie(Acquit("a.xml", "21450999400015", "00", None, nom_fic, (e,)),
               OneOrmc()).elements
    assert (len(r.found) == 1) is tied
    if not tied:
        assert r.verdict == (
            f"REJECTED: the acquit's NomFic {nom_fic} is a PES_Aller file (TypFic PESALR1), "
            "run run-06 wrote an ORMC file (TypFic PESORMC) "
            "(PESORMC_21450999400015_2026_0000005.xml) for this bordereau: not tied "
            "(rule acquit.domain)")


# ------------------------------------------------------------------ the command

@pytest.fixture
def store(tmp_path) -> Path:
    """A store where the example export was recorded (IdBord 1 of 2026, 11 titles)."""
    db = tmp_path / "store.sqlite3"
    r = run_cli("export", "-m", MAPPINGS / "villeneuve-sur-loing.yaml", "-i",
                EXAMPLES / "school-export.json", "-o", tmp_path / "out", "--date", RUN_DATE,
                "--db", db, "--create-store")
    assert r.exit_code == 0, r.output
    return db


def _run_id(db: Path) -> str:
    """The id of the store's one run (`runs list` starts its line with it; its Hélios
    status follows, indented)."""
    (line,) = [ln for ln in run_cli("runs", "list", "--db", db).stdout.splitlines()
               if not ln.startswith(" ")]
    return line.split()[0]


def test_an_accepted_bordereau_names_its_run_file_titles_and_total(store):
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", store)
    assert r.exit_code == ExitCode.OK, r.output
    run_id = _run_id(store)
    assert "IdBord 1 exercise 2026 (DomaineAck 7 Rôle, line 31): accepted\n" in r.output
    assert (f"  run {run_id} (TypBord 06)  file PESORMC_21450999400015_2026_0000001.xml  "
            "11 title(s)  total 2527.25") in r.output


def test_an_acquit_saying_accepted_and_rejected_of_one_element_records_nothing(store,
                                                                                 tmp_path):
    """An ElementACQUIT with EtatAck 1 then 0 is refused whole (exit 4, nothing
    recorded), never read as accepted by its first EtatAck and recorded so."""
    path = _write(tmp_path, _head(_ACCEPTED.replace(
        '<EtatAck V="1"/>', '<EtatAck V="1"/>\n      <EtatAck V="0"/>')))
    r = run_cli("acquit", path, "--db", store, "--record")
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "a second EtatAck in ElementACQUIT" in r.stderr and "recorded on" not in r.output
    # the file holds too much, not too little: its headline said it "lacks" what is read
    assert f"error: {path} is not what pesgen reads in a PES_ACQUIT: 1 problem(s)" in r.stderr
    assert "Hélios: IdBord 1 no acknowledgement recorded" in run_cli(
        "runs", "list", "--db", store).stdout


def test_a_rejected_bordereau_exits_9_with_errors_invoices_and_the_commands(store):
    digest = hashlib.sha256(store.read_bytes()).hexdigest()
    r = run_cli("acquit", ACKS / "rejected.xml", "--db", store)
    assert r.exit_code == ExitCode.REJECTED == 9, r.output
    run_id = _run_id(store)
    out = r.output
    assert "2 element(s), 1 rejected" in out
    assert "IdBord 1 exercise 2026 (DomaineAck 7 Rôle, line 31): REJECTED\n" in out
    assert ("  error ERREUR_CUMUL_MONTANTS: Le montant du bordereau ne correspond pas à la "
            "somme des pièces") in out
    # the invoice with its record in the input the run read: where to correct it
    where = f"{(EXAMPLES / 'school-export.json').resolve()}:$.invoices[2]"
    assert f"  IdPce 3 invoice FA-2026-00103 ({where}):\n    error ERREUR_CODIFICATION: Civilité " \
           "inconnue\n    IdLigne 2:\n      error ERREUR_AUTRE: " in out
    # a bordereau pesgen has no record of is said so (the store has runs of the acquit's
    # collectivity: another software's, or another store's): no error
    assert ("IdBord 42 exercise 2026 (DomaineAck 6 Recette, line 55): accepted: no run of "
            "this store holds it (another software's bordereau, or a run recorded in "
            "another store: --db)\n") in out
    (step,) = [ln for ln in out.splitlines() if ln.startswith("  next: ")]
    assert step.startswith(f"  next: pesgen runs cancel {run_id} --bordereau 1 --reason ")
    assert "export again" in step
    # read only: the store is unchanged
    assert hashlib.sha256(store.read_bytes()).hexdigest() == digest

    # the command it gives works, and the acquit then says the bordereau is cancelled
    command = shlex.split(step.removeprefix("  next: ").split(";")[0])
    assert command[:3] == ["pesgen", "runs", "cancel"]
    assert run_cli(*command[1:]).exit_code == 0
    again = run_cli("acquit", ACKS / "rejected.xml", "--db", store)
    assert again.exit_code == ExitCode.REJECTED
    assert "IdBord 1 exercise 2026 (DomaineAck 7 Rôle, line 31): REJECTED; already " \
           "cancelled" in again.output
    assert f"pesgen runs cancel {run_id}" not in again.output
    taken = run_cli("acquit", ACKS / "accepted.xml", "--db", store)
    # the trésorerie took titles pesgen holds as cancelled: to check, not all fine
    assert taken.exit_code == ExitCode.TO_CHECK, taken.output
    assert "accepted, but cancelled in pesgen" in taken.output


def test_a_rejection_s_next_step_says_every_invoice_of_the_bordereau_goes_again(store):
    """Support asked "which invoices?": the errors name one piece (FA-2026-00103), but the
    trésorerie rejects the bordereau whole, so its next step says that all its titles go
    out again and gives the command listing them (the store given to the commands)."""
    r = run_cli("acquit", ACKS / "rejected.xml", "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    run_id = _run_id(store)
    (step,) = [ln for ln in r.output.splitlines() if ln.startswith("  next: ")]
    option = f" --db {shlex.quote(str(store))}"
    assert step.endswith(
        "; fix the input (the errors above), then export again all 11 invoice(s) of IdBord "
        f"1, not only those the errors name (`pesgen runs show {run_id} --invoices{option}` "
        "lists them): they go in a new bordereau, with a new number"), step
    listed = run_cli("runs", "show", run_id, "--invoices", "--db", store)
    assert listed.exit_code == 0, listed.output
    assert sum(" 1  " in ln and "FA-2026-" in ln for ln in listed.output.splitlines()) == 11


def test_a_rejection_read_without_record_ends_with_the_command_recording_it(store):
    """Support read the acquit, then ran its `next:` (the cancellation): the rejection
    stayed unrecorded, `runs list` said "no acknowledgement recorded" and the
    cancellation asked whether one came. Read without --record, the report ends saying
    the rejection is not recorded, with the command; once recorded, it says nothing."""
    option = f" --db {shlex.quote(str(store))}"
    r = run_cli("acquit", ACKS / "rejected.xml", "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert r.stdout.splitlines()[-1] == (
        "not recorded: the rejection of IdBord 1 is read, not recorded; record it before "
        f"cancelling: `pesgen acquit {shlex.quote(str(ACKS / 'rejected.xml'))} --record"
        f"{option}` (runs list and runs show then show it; runs reinstate refuses to "
        "reinstate a rejected bordereau, payfip link and datamatrix to serve its titles)")
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", store,
                   "--record").exit_code == ExitCode.REJECTED
    again = run_cli("acquit", ACKS / "rejected.xml", "--db", store)
    assert again.exit_code == ExitCode.REJECTED, again.output
    assert "not recorded: " not in again.stdout, again.stdout
    # an acceptance read so is not a rejection to record before cancelling
    assert "not recorded: " not in run_cli("acquit", ACKS / "accepted.xml", "--db",
                                           store).stdout


def test_the_store_pesgen_db_chose_is_named_by_the_commands_given(store, monkeypatch):
    """`pesgen acquit` named the store of --db, not PESGEN_DB's ("the env finds it
    again"), when every other suggested command names both (``Store.db_option``, and
    the CLI's --db parameter, which holds PESGEN_DB too; sup64): pasted into a ticket,
    run in another shell without the variable, its commands read the default store.
    Chosen by PESGEN_DB, they name it, and run so (the variable gone) they record the
    rejection in it."""
    monkeypatch.setenv("PESGEN_DB", str(store))
    option = f" --db {shlex.quote(str(store))}"
    r = run_cli("acquit", ACKS / "rejected.xml")
    assert r.exit_code == ExitCode.REJECTED, r.output
    run_id = _run_id(store)
    (step,) = [ln for ln in r.output.splitlines() if ln.startswith("  next: ")]
    assert step.startswith(f"  next: pesgen runs cancel {run_id} --bordereau 1 "), step
    assert step.split(";")[0].endswith(option), step
    assert f"`pesgen runs show {run_id} --invoices{option}` lists them" in step, step
    last = r.stdout.splitlines()[-1]
    record = f"`pesgen acquit {shlex.quote(str(ACKS / 'rejected.xml'))} --record{option}`"
    assert record in last, last
    data = json.loads(run_cli("acquit", ACKS / "rejected.xml", "--json").stdout)
    assert f"{option};" in json.dumps(data), data
    monkeypatch.delenv("PESGEN_DB")
    done = run_cli(*shlex.split(record.strip("`"))[1:])
    assert done.exit_code == ExitCode.REJECTED, done.output
    assert "Hélios: IdBord 1 rejected" in run_cli("runs", "list", "--db", store).stdout


def test_an_acceptance_read_without_record_is_no_rejection_to_record(store):
    """Read without --record on a store with no answer recorded, an acceptance ends with
    no 'not recorded' line: only a rejection is recorded before cancelling."""
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", store)
    assert r.exit_code == 0, r.output
    assert "IdBord 1" in r.stdout and "not recorded: " not in r.stdout, r.stdout


def test_json_gives_the_same_report(store):
    r = run_cli("acquit", ACKS / "rejected.xml", "--db", store, "--json")
    assert r.exit_code == ExitCode.REJECTED
    data = json.loads(r.stdout)
    assert (data["accepted"], data["rejected"], data["id_coll"]) == (False, 1,
                                                                     "21450999400015")
    first, second = data["elements"]
    assert (first["bordereau"], first["accepted"], first["kind"]) == (1, False, "bordereau")
    (run,) = first["runs"]
    assert (run["run"], run["file"], run["titles"], run["total"], run["cancelled"]) == (
        _run_id(store), "PESORMC_21450999400015_2026_0000001.xml", 11, "2527.25", None)
    assert first["errors"] == [{"code": "ERREUR_CUMUL_MONTANTS", "known_code": True,
                                "label": "Le montant du bordereau ne correspond pas à la "
                                         "somme des pièces"}]
    assert first["pieces"][0]["invoice"] == "FA-2026-00103"
    assert first["pieces"][0]["lines"][0]["line"] == 2
    assert first["next_step"].startswith(f"pesgen runs cancel {run['run']} --bordereau 1")
    assert (second["bordereau"], second["accepted"], second["runs"],
            second["next_step"]) == (42, True, [], None)


def test_json_report_starts_with_the_head_every_json_report_has(store):
    """A report (--json, not refused) starts as a refusal and every other command's JSON
    do: command, ok (only when the exit is 0), exit_code (the one the command exits
    with: 0, 9 rejected, 10 to check) and error (null: a report is no error), the
    report's own fields after them; before, it had none of the four."""
    for args, code in (([ACKS / "accepted.xml"], ExitCode.OK),
                       ([ACKS / "rejected.xml"], ExitCode.REJECTED),
                       ([ACKS / "rejected.xml", "--record"], ExitCode.REJECTED),
                       # its status recorded is rejected: an acceptance read is to check
                       ([ACKS / "accepted.xml"], ExitCode.TO_CHECK)):
        r = run_cli("acquit", *args, "--db", store, "--json")
        assert (r.exit_code, r.stderr) == (code, ""), r.output
        data = json.loads(r.stdout)
        assert list(data)[:5] == ["command", "ok", "exit_code", "error", "file"], args
        assert (data["command"], data["ok"], data["exit_code"], data["error"]) == (
            "acquit", code == 0, code, None), args
        assert ("recording" in data) == ("--record" in args), args


def _refused_json(*args: str | Path) -> dict[str, Any]:
    """`pesgen acquit … --json` refused: its one JSON document (standard output; nothing
    on standard error), whose head says the refusal and its exit code."""
    r = run_cli("acquit", *args, "--json")
    assert r.exit_code not in (0, ExitCode.REJECTED, ExitCode.TO_CHECK), r.output
    assert r.stderr == ""
    data = json.loads(r.stdout)
    assert (data["command"], data["ok"], data["exit_code"]) == ("acquit", False, r.exit_code)
    assert (data["recorded"], data["outcome"]) == (False, None)
    return data


def test_json_gives_a_refusal_as_json_with_its_problems(store, tmp_path):
    """--json refused (not XML, not a PES_ACQUIT, not UTF-8 as it says, a structure
    pesgen does not read, a store that is not there, an option without the one it goes
    with): one JSON document, as export's, with the error, its exit code and every
    problem with its rule and the acquit's line; before, nothing JSON was printed."""
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    cases = {
        "not-xml": (_write(tmp_path, "PK", "a.zip"), [], ExitCode.USAGE, "is not XML"),
        "aller": (_write(tmp_path, "<PES_Aller/>", "aller.xml"), [], ExitCode.USAGE,
                  "is not a trésorerie acknowledgement: a PES_Aller"),
        "encoding": (_write(tmp_path, text.replace(
            '<?xml version="1.0" encoding="ISO-8859-1"?>\n', "").replace(
                "COMMUNE DE VILLENEUVE", "COMMUNE DE VILLENEUVE-LÈS"), "latin.xml"),
            ["acquit.encoding"], ExitCode.INPUT, "is not UTF-8"),
        "structure": (_write(tmp_path, text.replace('      <EtatAck V="1"/>\n', ""),
                             "no-state.xml"),
                      ["acquit.structure"], ExitCode.INPUT, "is not what pesgen reads"),
    }
    for name, (path, rules, code, said) in cases.items():
        data = _refused_json(path, "--db", store)
        assert data["exit_code"] == code, name
        assert said in data["error"] and data["file"] == str(path), name
        assert [p["rule"] for p in data["problems"]] == rules, name
    (problem,) = _refused_json(tmp_path / "no-state.xml", "--db", store)["problems"]
    assert problem["record"].startswith("no-state.xml:31 ")
    assert problem["message"] == "no EtatAck"
    gone = _refused_json(ACKS / "accepted.xml", "--db", tmp_path / "none.sqlite3", "--record")
    assert (gone["exit_code"], gone["record"]) == (ExitCode.STATE, True)
    assert gone["error"].startswith(f"no pesgen store at {tmp_path / 'none.sqlite3'}")
    usage = _refused_json(ACKS / "accepted.xml", "--db", store, "--replace")
    assert usage["exit_code"] == ExitCode.USAGE
    assert usage["error"].startswith("--replace goes with --record")
    # the text refusal is as it was: on standard error, nothing on standard output
    text_r = run_cli("acquit", tmp_path / "no-state.xml", "--db", store)
    assert (text_r.exit_code, text_r.stdout) == (ExitCode.INPUT, "")
    assert "(rule acquit.structure)" in text_r.stderr


def test_json_masks_the_password_of_a_url_a_libelle_quotes_and_nothing_else(store, tmp_path):
    """A libellé of the trésorerie's quoting a URL with its password: --json printed it
    whole (a report pasted into a ticket); the rest of the report is the same."""
    text = (ACKS / "rejected.xml").read_text(encoding="iso-8859-1")
    said = 'V="Fonction absente de la nomenclature"'
    assert said in text
    ack = _write(tmp_path, text.replace(said, 'V="voir sftp://depot:s3cr3t@echanges.example/'
                                                'pes: Fonction absente"'))
    plain = json.loads(run_cli("acquit", ACKS / "rejected.xml", "--db", store, "--json").stdout)
    r = run_cli("acquit", ack, "--db", store, "--json")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert "s3cr3t" not in r.stdout
    data = json.loads(r.stdout)
    label = data["elements"][0]["pieces"][0]["lines"][0]["errors"][0]
    assert label["label"] == "voir sftp://depot:***@echanges.example/pes: Fonction absente"
    label["label"] = "Fonction absente de la nomenclature"
    assert {**data, "file": None, "sha256": None} == {**plain, "file": None, "sha256": None}


def test_a_whole_file_rejected_exits_9_and_says_every_bordereau_is(store):
    r = run_cli("acquit", ACKS / "file-rejected.xml", "--db", store)
    assert r.exit_code == ExitCode.REJECTED
    assert ("file (DomaineAck 0 Technique, line 31): REJECTED: the whole file (no bordereau, "
            "PJ nor market named); every bordereau of it is rejected at the guichet XML's "
            "first step") in r.output
    # the store's run wrote IdBord 1 as the file the acquit's NomFic names: the command
    # to record it names them (support checks it is the file sent; nothing tied by it),
    # where it said RUN and IDBORD, to look up in `runs list`
    run = _run_id(store)
    assert ("next: the file sent is rejected whole, and with it its bordereau (pesgen writes "
            "one file per bordereau): record it on the run that wrote it, `pesgen acquit "
            f"{shlex.quote(str(ACKS / 'file-rejected.xml'))} --record --run {run} --bordereau "
            f"1 --db {shlex.quote(str(store))}` (run {run} wrote IdBord 1 as the file the "
            "acquit's NomFic names, PESORMC_21450999400015_2026_0000001.xml: if that is the "
            "file sent; pesgen does not tie a rejection by the NomFic alone), then cancel") \
        in r.output, r.output
    assert "--all" not in r.output
    assert "error ERREUR_SCHEMA_INCOMPLET: Le flux ne respecte pas le schéma" in r.output
    # --json: the element's next step names the file read too
    read = json.loads(run_cli("acquit", ACKS / "file-rejected.xml", "--db", store,
                              "--json").stdout)
    assert (f"`pesgen acquit {shlex.quote(str(ACKS / 'file-rejected.xml'))} --record --run "
            f"{run} --bordereau 1") in read["elements"][0]["next_step"], read["elements"]
    # nothing is tied by the NomFic: recorded without --run, nothing is
    recorded = run_cli("acquit", ACKS / "file-rejected.xml", "--db", store, "--record")
    assert recorded.exit_code == ExitCode.REJECTED, recorded.output
    assert "no acknowledgement recorded" in run_cli("runs", "list", "--db", store).stdout
    # the command as printed records it on that bordereau; its next step then cancels it
    # and says what the guichet's first step checks: the file, not an invoice's data
    tied = run_cli("acquit", ACKS / "file-rejected.xml", "--db", store, "--record", "--run",
                   run, "--bordereau", "1")
    assert tied.exit_code == ExitCode.REJECTED, tied.output
    [step] = [x for x in tied.stdout.splitlines() if x.startswith("  next: ")]
    assert step.startswith(f"  next: pesgen runs cancel {run} --bordereau 1 --reason "), step
    assert "fix the input" not in step
    assert ("the guichet's first step checks the file itself (its schema, its signature), not "
            "an invoice: check the file against the DGFiP package, `pesgen validate "
            "PESORMC_21450999400015_2026_0000001.xml --official-xsd DIR` (the file in the "
            f"run's output folder, `pesgen runs show {run} --db {shlex.quote(str(store))}` names "
            "it and says whether the run was checked against the DGFiP XSD") in step, step
    # a NomFic no active bordereau of the store bears: RUN and IDBORD, as before
    other = store.parent / "other-file.xml"
    other.write_bytes((ACKS / "file-rejected.xml").read_bytes().replace(
        b"_0000001.xml", b"_0000009.xml"))
    again = run_cli("acquit", other, "--db", store)
    assert "--record --run RUN --bordereau IDBORD" in again.stdout, again.output


def test_a_finance_package_run_of_the_same_number_is_not_taken_for_the_bordereau(tmp_path):
    """e.magnus numbers its runs 1, 2… too, for the same collectivity, budget and
    exercise: its file goes to the finance package, which sends its own PES."""
    db = package_store(tmp_path)
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db)
    assert r.exit_code == ExitCode.OK
    assert "accepted: no run of this store holds it" in r.output


@pytest.mark.parametrize(("change", "header", "element"), [
    ({'<IdColl V="21450999400015"/>': '<IdColl V="21750001600019"/>',
      '<IdPost V="045012"/>': '<IdPost V="075001"/>',
      "COMMUNE DE VILLENEUVE SUR LOING": "COMMUNE DE SAINT-AILLEURS"},
     "not this store's collectivity: the acquit is of IdColl 21750001600019 budget 00 "
     "(IdPost 075001, COMMUNE DE SAINT-AILLEURS); this store's runs are of IdColl "
     "21450999400015 budget 00 (1 run(s), mapping {mapping}): another collectivity's "
     "acquit, or its runs are in another store (--db)",
     "this store has no run of IdColl 21750001600019 (see above)"),
    ({'<CodBud V="00"/>': '<CodBud V="01"/>'},
     "not a budget of this store: the acquit is of IdColl 21450999400015 budget 01 "
     "(IdPost 045012, COMMUNE DE VILLENEUVE SUR LOING); this store's runs are of IdColl "
     "21450999400015 budget 00 (1 run(s), mapping {mapping}): another budget's acquit "
     "(CodBud), or its runs are in another store (--db)",
     "this store has no run of budget 01 of IdColl 21450999400015 (see above)"),
], ids=["collectivity", "budget"])
def test_an_acquit_of_another_collectivity_names_its_idcoll_and_the_store_s(
        store, tmp_path, change, header, element):
    """Support given another collectivity's acquit (or the right one with another
    store) sees at once whose it is and whose runs the store holds: it was only 'no run
    of this store holds it (another software's bordereau, or a run recorded in another
    store: --db)'."""
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    for old, new in change.items():
        assert old in text
        text = text.replace(old, new)
    ack = _write(tmp_path, text)
    header = header.format(mapping=(MAPPINGS / "villeneuve-sur-loing.yaml").resolve())
    # an acceptance tied to no run: exit 10, not 0 (a script would take it as recorded)
    r = run_cli("acquit", ack, "--db", store, "--record")
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    lines = r.output.splitlines()
    assert lines[-2:] == [
        "not all fine: 1 to check (exit 10):",
        "  - IdBord 1 exercise 2026 (line 31): accepted, not tied: no run of this store "
        f"holds it: {element}; next: check that this is the store of the acquit's "
        "collectivity and budget (--db, `pesgen runs list`) and that the acquit is the one "
        "meant: its acceptance is recorded on no run"]
    assert lines[1] == header
    assert lines[2] == ("IdBord 1 exercise 2026 (DomaineAck 7 Rôle, line 31): accepted: no "
                        f"run of this store holds it: {element}")
    assert f"  not recorded: IdBord 1 exercise 2026 (line 31): no run of this store holds " \
           f"it: {element}" in lines
    data = json.loads(run_cli("acquit", ack, "--db", store, "--json").stdout)
    assert [(x["line"], x["bordereau"], x["reasons"]) for x in data["to_check"]] == [
        (31, 1, ["untied"])]
    assert data["stranger"] == header
    assert data["store_collectivities"] == [{
        "id_coll": "21450999400015", "cod_bud": "00", "runs": 1,
        "mapping": str((MAPPINGS / "villeneuve-sur-loing.yaml").resolve())}]
    # the store's own acquit says none of it
    own = run_cli("acquit", ACKS / "accepted.xml", "--db", store)
    assert "this store" not in own.output
    assert json.loads(run_cli("acquit", ACKS / "accepted.xml", "--db", store,
                              "--json").stdout)["stranger"] is None


def test_a_store_that_is_not_there_is_refused_and_not_created(tmp_path):
    db = tmp_path / "typo" / "store.sqlite3"
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db)
    assert r.exit_code == ExitCode.STATE
    assert not db.parent.exists()


def test_a_bordereau_signature_is_not_tied_to_a_run_but_said_what_it_may_be(store):
    path = _write(store.parent, _head('''    <ElementACQUIT>
      <DomaineAck V="3"/>
      <EtatAck V="0"/>
      <NumBord V="1"/>
      <ExerciceBord V="2026"/>
      <Erreur>
        <NumAnoAck V="ERREUR_SIGNATURE_BORDEREAU_INVALIDE"/>
      </Erreur>
    </ElementACQUIT>
'''))
    r = run_cli("acquit", path, "--db", store)
    assert r.exit_code == ExitCode.REJECTED
    assert "REJECTED: the signature of a bordereau, of a recette or a dépense" in r.output
    assert "  error ERREUR_SIGNATURE_BORDEREAU_INVALIDE\n" in r.output
    assert "pesgen runs cancel" not in r.output


def test_a_check_domain_naming_a_bordereau_is_not_said_another_software_s(store):
    """DomaineAck 0-2 (Technique, signatures) and 99 (Paramétrage) name the guichet's
    check, not a kind of bordereau (DT v5.19 Acquittement_codes, TDomaineAck): one naming
    IdBord 1 may answer pesgen's rôle, and is not tied (the acquit does not say which
    bordereau kind it is), but never said to be not pesgen's as a Dépense is."""
    r = run_cli("acquit", ACKS / "check-domains.xml", "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    for line, domain in ((34, "0 Technique"), (44, "1 Signature technique"),
                         (54, "2 Signature globale"), (64, "99 Paramétrage")):
        label = domain.split(" ", 1)[1]
        assert (f"IdBord 1 exercise 2026 (DomaineAck {domain}, line {line}): REJECTED: the "
                f"{label} check of a bordereau, of a recette or a dépense (the acquit does "
                "not say): not tied to a run; if it is a recette of yours, `pesgen runs "
                "list` shows its run\n") in r.output
    assert ("(DomaineAck 5 Dépense, line 74): REJECTED: a bordereau of domain Dépense, not "
            "a recette: not pesgen's") in r.output
    assert r.output.count("not pesgen's") == 1
    assert "pesgen runs cancel" not in r.output
    recorded = run_cli("acquit", ACKS / "check-domains.xml", "--db", store, "--record")
    assert "not recorded: IdBord 1 exercise 2026 (line 64): the Paramétrage check of a " \
           "bordereau, not tied to a run\n" in recorded.output


def test_a_doublon_s_next_step_warns_that_the_titles_may_exist_at_the_tresorerie(store):
    """ERREUR_DOUBLON_BORDEREAU: Hélios knows the number already (DT v5.19
    PES_RecetteAller_blocs, IdBord: « Si le numéro est déjà connu dans Hélios […] rejet
    du bordereau pour cause de doublon »): the same file sent twice, its first sending
    accepted, is rejected so; cancelling and exporting again would bill twice."""
    r = run_cli("acquit", ACKS / "doublon.xml", "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    (step,) = [ln for ln in r.output.splitlines() if ln.startswith("  next: ")]
    assert step.startswith(
        "  next: Hélios knows IdBord 1 already (ERREUR_DOUBLON_BORDEREAU: a number it knows "
        "is rejected as a doublon, DT v5.19 PES_RecetteAller_blocs): if this file was sent "
        "before, that sending may have been accepted and its titles exist at the "
        "trésorerie: cancelling it and exporting again would bill the families twice; "
        "ask the trésorerie which it is before anything else. Only if the number is "
        "another bordereau's: pesgen runs cancel "), step
    assert "fix the input (the errors above)" not in step
    assert "numbering" in step
    data = json.loads(run_cli("acquit", ACKS / "doublon.xml", "--db", store, "--json").stdout)
    assert data["elements"][0]["next_step"] == step.removeprefix("  next: ")


def test_a_rejection_naming_no_error_says_to_ask_the_tresorerie(store):
    """Every Erreur of TElementACQUIT is optional (XSD v5.17): a rejection may name none,
    and the next step does not send support to errors that are not there."""
    r = run_cli("acquit", ACKS / "rejected-no-error.xml", "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    (step,) = [ln for ln in r.output.splitlines() if ln.startswith("  next: ")]
    assert "(the errors above)" not in step
    assert ("; the acquit names no error: ask the trésorerie what to fix, then export "
            "again all 11 invoice(s) of IdBord 1, not only those the errors name (`pesgen "
            "runs show ") in step, step
    option = shlex.quote(str(store))
    assert step.endswith(f"--invoices --db {option}` lists them): they go in a new "
                         "bordereau, with a new number"), step


def test_the_cancel_command_given_quotes_the_file_s_codes_for_the_shell(store, tmp_path):
    """The anomaly codes come from the acquit (not checked against the DGFiP list without
    the XSD): the reason is one shell word, whatever they hold, never a command run by
    the shell the command is pasted into."""
    text = (ACKS / "rejected.xml").read_text(encoding="iso-8859-1")
    hostile = text.replace('<NumAnoAck V="ERREUR_AUTRE"/>',
                           '<NumAnoAck V="X&quot; $(touch pwned) `id` &apos;"/>', 1)
    assert hostile != text
    r = run_cli("acquit", _write(tmp_path, hostile), "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    (step,) = [ln for ln in r.output.splitlines() if ln.startswith("  next: ")]
    command = shlex.split(step.removeprefix("  next: ").split("; fix")[0])
    assert command[:6] == ["pesgen", "runs", "cancel", _run_id(store), "--bordereau", "1"]
    assert command[6] == "--reason"
    assert command[7].startswith("trésorerie rejected IdBord 1 (")
    assert "X\" $(touch pwned) `id` '" in command[7]
    assert command[8:] == ["--db", str(store)]


def test_the_next_step_masks_the_password_of_the_store_s_url(store):
    """`pesgen acquit … --db postgresql://u:secret@h/db` printed its `next:` command
    (and --json its next_step) with the password: a report pasted into a ticket."""
    from pesgen.acquit import as_json
    from pesgen.store import Store

    report = tie(read_acquit(ACKS / "rejected.xml"), Store(f"sqlite:///{store}"))
    url = "postgresql://pesgen:s3cr%40t@db.example/pesgen?sslpassword=k3y"
    (step,) = [r.next_step(url) for r in report.elements if r.next_step(url)]
    assert " --db 'postgresql://pesgen:***@db.example/pesgen?sslpassword=***'; fix " in step
    assert "s3cr" not in step and "k3y" not in step
    data = json.dumps(as_json(report, url))
    assert "s3cr" not in data and "k3y" not in data and "pesgen:***@db.example" in data


def test_an_element_of_a_recette_domain_without_numbord_is_not_the_whole_file(store,
                                                                              tmp_path):
    """Only domains 0-2 answer for the whole file: a recette element naming no bordereau
    is said so, with no command (never `runs cancel --all`)."""
    text = (ACKS / "rejected.xml").read_text(encoding="iso-8859-1")
    start = text.index("<NumBord V=\"1\"/>")
    unnamed = text[:start] + text[start + len("<NumBord V=\"1\"/>"):]
    r = run_cli("acquit", _write(tmp_path, unnamed), "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert "REJECTED: an element of domain Rôle naming no bordereau (no NumBord)" in r.output
    assert "the whole file" not in r.output and "--all" not in r.output


def test_identifiers_left_empty_are_named_at_their_line_and_never_tied(store):
    """NumBord, ExerciceBord, NumPiece and NumLigne may be empty (XSD v5.17: *_Light
    types; DT v5.19 DictionnaireDesDonneesAller_simples: « (0 à N) caractères
    numériques »): the file is read, what is well identified is tied, reported and
    recorded; what is not is named with its line and never guessed (it refused the
    whole file, exit 4)."""
    ack = ACKS / "empty-identifiers.xml"
    a = read_acquit(ack)
    assert [(e.bordereau, e.exercise, e.empty) for e in a.elements] == [
        (1, 2026, ()), (None, 2026, (("NumBord", 63),)), (1, None, (("ExerciceBord", 70),)),
        (None, None, (("NumBord", 75),))]
    assert [(p.number, p.at, [(ln.number, ln.at) for ln in p.lines])
            for p in a.elements[0].pieces] == [(None, 43, []), (3, 50, [(None, 52)])]
    r = run_cli("acquit", ack, "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    out = r.output
    assert ": 4 element(s), 2 rejected, 3 not tied for an identifier the acquit leaves " \
           "empty or out (below), 3 to check (listed at the end)\n" in out
    # the bordereau is tied: its piece of empty NumPiece is named, no invoice guessed
    assert "IdBord 1 exercise 2026 (DomaineAck 7 Rôle, line 37): REJECTED\n" in out
    assert ("  IdPce ? (NumPiece is empty, line 43): the acquit does not say which piece, "
            "no invoice named (not guessed)\n    error ERREUR_CODIFICATION") in out
    where = f"{(EXAMPLES / 'school-export.json').resolve()}:$.invoices[2]"
    assert (f"  IdPce 3 invoice FA-2026-00103 ({where})\n    IdLigne ? (NumLigne is empty, "
            "line 52):\n"
            "      error ERREUR_AUTRE") in out
    assert ("element (DomaineAck 6 Recette, line 60): accepted: an element of domain "
            "Recette naming a bordereau without its number, NumBord is empty (line 63): "
            "pesgen cannot tell which bordereau it answers and does not guess: not "
            "tied") in out
    # a run holds IdBord 1 of 2026: an empty exercise is not taken for 2026
    assert ("IdBord 1 (DomaineAck 7 Rôle, line 66): accepted: ExerciceBord is empty (line "
            "70), pesgen cannot tell which run sent it and does not guess: not tied") in out
    # a file domain's element with an empty NumBord is not taken for the whole file
    assert ("element (DomaineAck 0 Technique, line 72): REJECTED: an element of domain "
            "Technique naming a bordereau without its number, NumBord is empty (line 75): "
            "pesgen cannot tell which bordereau it answers (nor whether it answers the "
            "whole file)") in out
    # one command, the rejection's; the summary at the end lists what is to check
    assert [ln for ln in out.splitlines() if ln.startswith("  next: ")] == [
        ln for ln in out.splitlines() if ln.startswith("  next: pesgen runs cancel ")]
    assert "--all" not in out
    # (read without --record: its last line says the rejection tied is not recorded)
    assert out.splitlines()[-1].startswith("not recorded: the rejection of IdBord 1 is read")
    assert out.splitlines()[-5] == "and 3 to check beside the 2 rejected (exit 9):"
    assert out.splitlines()[-4].startswith(
        "  - IdBord 1 exercise 2026 (line 37): left empty or out by the acquit, never "
        "guessed: NumPiece is empty (line 43), NumLigne is empty (line 52); next: ask the "
        "trésorerie")
    data = json.loads(run_cli("acquit", ack, "--db", store, "--json").stdout)
    assert data["unidentified"] == 3
    assert [(x["line"], x["reasons"]) for x in data["to_check"]] == [
        (37, ["unidentified"]), (60, ["unidentified"]), (66, ["unidentified"])]
    assert [e["unidentified"] for e in data["elements"]] == [
        ["NumPiece is empty (line 43)", "NumLigne is empty (line 52)"],
        ["NumBord is empty (line 63)"], ["ExerciceBord is empty (line 70)"], []]
    assert [(p["piece"], p["invoice"], p["source_line"]) for p in
            data["elements"][0]["pieces"]] == [(None, None, 43), (3, "FA-2026-00103", 50)]

    # --record (even naming the run) records the tied bordereau only, the errors of its
    # piece of empty number as the acquit gives them, never as the bordereau's own
    run_id = _run_id(store)
    recorded = run_cli("acquit", ack, "--db", store, "--record", "--run", run_id)
    assert recorded.exit_code == ExitCode.REJECTED, recorded.output
    assert "recorded on " in recorded.output and ": 1 bordereau(x)" in recorded.output
    for said in ("not recorded: element (line 60): it names a bordereau without its "
                 "number, NumBord is empty (line 63): not guessed",
                 "not recorded: IdBord 1 (line 66): ExerciceBord is empty (line 70): pesgen "
                 "cannot tell that it is the exercise 2026 of run",
                 "not recorded: element (line 72): it names a bordereau without its "
                 "number, NumBord is empty (line 75): not guessed"):
        assert said in recorded.output
    shown = run_cli("runs", "show", run_id, "--db", store).output
    assert "IdBord 1 rejected on 2026-11-24 with 2 error(s)" in shown
    assert "IdPce ? (empty in the acquit) error ERREUR_CODIFICATION" in shown
    # a piece the acquit numbers is named with its invoice, as the acquit's report names
    # it; one it left empty with none (not guessed)
    assert "IdPce 3 invoice FA-2026-00103 IdLigne ? (empty in the acquit) error " \
        "ERREUR_AUTRE" in shown


def test_an_accepted_bordereau_of_empty_numbord_exits_10_and_records_nothing(store,
                                                                              tmp_path):
    """Nothing rejected, but an acceptance pesgen cannot tie (its NumBord left empty):
    exit 10, not 0, so a script does not take the bordereau for acknowledged; nothing
    recorded (a later `runs cancel` of it would not know it accepted)."""
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    ack = _write(tmp_path, text.replace('<NumBord V="1"/>', '<NumBord V=""/>'))
    r = run_cli("acquit", ack, "--db", store, "--record")
    assert r.exit_code == ExitCode.TO_CHECK == 10, r.output
    assert "nothing recorded: no bordereau of it is tied to a run of this store (1 not, " \
           "for an identifier the acquit leaves empty or out: see above)" in r.output
    assert "not recorded: element (line 31): it names a bordereau without its number, " \
           "NumBord is empty (line 34): not guessed" in r.output
    assert "IdBord 1 no acknowledgement recorded" in run_cli(
        "runs", "show", _run_id(store), "--db", store).output
    assert run_cli("acquit", ACKS / "accepted.xml", "--db", store).exit_code == ExitCode.OK


@pytest.mark.parametrize(("old", "new", "said", "unrecorded"), [
    ('      <NumBord V="1"/>\n', "", "element (DomaineAck 7 Rôle, line 31): accepted: an "
     "element of domain Rôle naming no bordereau (no NumBord): pesgen cannot tell which "
     "run it answers", "not recorded: element (line 31): it names no bordereau (no NumBord)"),
    ('      <ExerciceBord V="2026"/>\n', "", "IdBord 1 (DomaineAck 7 Rôle, line 31): "
     "accepted: no ExerciceBord, pesgen cannot tell which run sent it",
     "not recorded: IdBord 1 (line 31): no ExerciceBord: pesgen cannot tell which run sent "
     "it"),
    ('<ExerciceBord V="2026"/>', '<ExerciceBord V=""/>', "IdBord 1 (DomaineAck 7 Rôle, line "
     "31): accepted: ExerciceBord is empty (line 35), pesgen cannot tell which run sent it "
     "and does not guess: not tied", "not recorded: IdBord 1 (line 31): ExerciceBord is "
     "empty (line 35)")], ids=["numbord-out", "exercicebord-out", "exercicebord-empty"])
def test_an_acceptance_lacking_its_numbord_or_exercicebord_exits_10_naming_it(
        store, tmp_path, old, new, said, unrecorded):
    """An accepted recette bordereau whose NumBord or ExerciceBord the acquit leaves out
    (or empty): exit 10 (TO_CHECK), read or recorded, not 0 (everything accepted) nor 4
    (the file is read: only this element is not tied), its message naming the identifier
    missing; nothing recorded."""
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    assert text.count(old) == 1
    ack = _write(tmp_path, text.replace(old, new))
    r = run_cli("acquit", ack, "--db", store)
    assert r.exit_code == ExitCode.TO_CHECK == 10, r.output
    assert ("1 element(s), all accepted, 1 not tied for an identifier the acquit leaves "
            "empty or out (below), 1 to check (listed at the end)\n") in r.output
    assert said in r.output, r.output
    data = json.loads(run_cli("acquit", ack, "--db", store, "--json").stdout)
    assert data["unidentified"] == 1
    [element] = data["elements"]
    missing = "NumBord" if "NumBord" in old else "ExerciceBord"
    assert len(element["unidentified"]) == 1 and missing in element["unidentified"][0]
    recorded = run_cli("acquit", ack, "--db", store, "--record")
    assert recorded.exit_code == ExitCode.TO_CHECK, recorded.output
    assert unrecorded in recorded.output, recorded.output
    assert "IdBord 1 no acknowledgement recorded" in run_cli(
        "runs", "show", _run_id(store), "--db", store).output


def _ack_with_label(tmp_path: Path, label: str) -> Path:
    """rejected.xml with its bordereau's first LibelleAnoAck replaced by ``label`` (XML
    text: character references allowed)."""
    old = "Le montant du bordereau ne correspond pas à la somme des pièces".encode("latin-1")
    data = (ACKS / "rejected.xml").read_bytes()
    assert data.count(old) == 1
    path = tmp_path / "ack-inj.xml"
    path.write_bytes(data.replace(old, label.encode("latin-1")))
    return path


def test_a_libelle_reaches_the_terminal_escaped_but_is_stored_exact(store, tmp_path):
    # 8-bit CSI (clear the screen, red) and a right-to-left override were printed as is,
    # and a libellé of any length printed whole; one longer than the XSD's 500
    # characters is refused now, at its line, nothing recorded
    too_long = _ack_with_label(tmp_path, "Montant faux " + "A" * 100_000)
    r = run_cli("acquit", too_long, "--db", store, "--record")
    assert r.exit_code == ExitCode.INPUT, r.output
    assert ("ack-inj.xml:38 /n:PES_ACQUIT/ACQUIT/ElementACQUIT[1]/Erreur/LibelleAnoAck: "
            "LibelleAnoAck is 100013 characters, more than the 500 the XSD allows "
            "(Base_Texte500_Light): not read (rule acquit.structure)") in r.stderr
    head = "\x9b2J\x9b31mMontant\u202efaux "
    exact = head + "A" * (LABEL_MAX - len(head))
    ack = _ack_with_label(tmp_path, "&#x9b;2J&#x9b;31mMontant&#x202e;faux "
                          + "A" * (LABEL_MAX - len(head)))
    r = run_cli("acquit", ack, "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert "\x9b" not in r.output and "\u202e" not in r.output
    (said,) = [ln for ln in r.output.splitlines() if "Montant" in ln]
    assert said == ("  error ERREUR_CUMUL_MONTANTS: \\x9b2J\\x9b31mMontant\\u202efaux "
                    + "A" * (LABEL_MAX - len(head)))
    # a libellé recorded before the reader bounded it (`runs show` says it as AckError):
    # cut for a terminal
    assert str(AckError("ERREUR_AUTRE", "A" * 100_000)) == (
        "ERREUR_AUTRE: " + "A" * LABEL_LIMIT + "… (100000 characters)")
    # --json: exact JSON, the same value, no raw control character on the terminal
    r = run_cli("acquit", ack, "--db", store, "--json")
    assert "\x9b" not in r.stdout and "\u202e" not in r.stdout
    assert json.loads(r.stdout)["elements"][0]["errors"][0]["label"] == exact
    # the store keeps the DGFiP's words exact
    r = run_cli("acquit", ack, "--db", store, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    import sqlalchemy as sa

    with sa.create_engine(f"sqlite:///{store}").connect() as conn:
        stored = [json.loads(e) for (e,) in conn.execute(sa.text(
            "SELECT errors FROM acquit_bordereaux"))]
    assert any(x["label"] == exact for errors in stored for x in errors)


def test_a_value_quoted_in_a_refusal_is_escaped(tmp_path):
    ack = _ack_with_label(tmp_path, "ok")
    data = ack.read_bytes().replace(b'<NumBord V="1"/>', b'<NumBord V="&#x9b;2J1"/>', 1)
    ack.write_bytes(data)
    r = run_cli("acquit", ack, "--db", tmp_path / "none.sqlite3")
    assert r.exit_code != 0
    assert "\x9b" not in r.output and "NumBord is '\\x9b2J1'" in r.output
