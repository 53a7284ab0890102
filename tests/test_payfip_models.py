"""PayFiP request validation, SOAP envelopes against the contract, TIPI URLs and the
Datamatrix payload: no server needed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from pesgen.payfip import soap
from pesgen.payfip.datamatrix import DatamatrixTitle, letter_pair, payload, payload_v1
from pesgen.payfip.errors import PayfipRequestInvalid
from pesgen.payfip.models import PaymentDetail, PaymentRequest, ascii_label, to_cents
from pesgen.payfip.settings import alnum
from pesgen.payfip.tipi import TipiRequest, tipi_url

from .conftest import ROOT

REFERENCE = ROOT.parent / "shared" / "reference" / "payfip"

GOOD = PaymentRequest(
    invoice="FA-2026-00102", numcli="012345", exer="2026", refdet="FA202600102",
    montant=18750, mel="famille@example.org", objet="CONSERVATOIRE FACTURE FA 2026 00102",
    saisie="T", urlnotif="https://ecole.example.org/payfip/notification",
    urlredirect="https://ecole.example.org/payfip/retour")


def test_a_good_request_passes():
    assert GOOD.problems() == []
    assert GOOD.validated() is GOOD
    assert [k for k, _ in GOOD.soap_fields()] == [
        "exer", "mel", "montant", "numcli", "objet", "refdet", "saisie", "urlnotif",
        "urlredirect"]


@pytest.mark.parametrize("field, value, text", [
    ("numcli", "12345", "numcli: '12345' must be exactly 6 digits"),
    ("numcli", "01234A", "numcli: '01234A' must be exactly 6 digits"),
    ("refdet", "ABCDE", "refdet: 'ABCDE' must be 6 to 30 characters"),
    ("refdet", "A" * 31, "must be 6 to 30 characters of [A-Z0-9] (got 31"),
    ("refdet", "FA-2026-00102", "refdet: 'FA-2026-00102' must be 6 to 30"),
    ("refdet", "FA 202600102", "no '-', '/', '_' or space"),
    # the safe side (lower case unconfirmed, notes payfip.md §6), as docs/payfip.md says
    ("refdet", "fa202600102", "refdet: 'fa202600102' must be 6 to 30 characters of "
     "[A-Z0-9] (got 11 characters; no '-', '/', '_' or space and upper case: no lower-case "
     "letter (add '| upper' to the rule))"),
    ("montant", 99, "montant: 99 cents is below PayFiP's minimum of 100 cents"),
    ("montant", "18750", "montant: '18750' must be an integer number of euro cents"),
    ("montant", 187.5, "montant: 187.5 must be an integer"),
    ("montant", True, "must be an integer"),
    ("montant", 10_000_001, "above PayFiP's maximum"),
    ("mel", "", "mel: the payer's e-mail address is missing"),
    ("mel", "a@b.c", "mel: 'a@b.c' is not an e-mail address"),  # 5 characters
    ("mel", "famille example.org", "is not an e-mail address"),
    ("mel", "famille@example.org et autre", "is not an e-mail address"),
    ("mel", "a@@example.org", "is not an e-mail address"),
    ("mel", "x" * 75 + "@example.org", "(6 to 80 characters"),
    ("objet", "Facture n°102", "objet: only ASCII letters, digits and spaces are safe "
     "(found '°')"),
    ("objet", "A" * 101, "objet: is 101 characters long, PayFiP allows 100"),
    ("objet", "", "objet: is empty: the mapping's payfip.objet must give the label"),
    ("objet", "   ", "objet: is empty"),
    ("objet", None, "objet: None must be text"),
    ("saisie", "P", "saisie: 'P' must be one of T (test), X (activation), W (production)"),
    ("saisie", "A", "must be one of T"),
    ("exer", "26", "exer: '26' must be a 4-digit year"),
    ("urlnotif", "/payfip/notification", "urlnotif: '/payfip/notification' must be an "
     "absolute http(s) URL"),
    ("urlredirect", "https://e.org/" + "x" * 250, "urlredirect: is 264 characters long"),
    ("urlnotif", "https://e.org/" + "x" * 237, "urlnotif: is 251 characters long, PayFiP "
     "allows 250"),
    ("mel", "x" * 69 + "@example.org", "(6 to 80 characters"),  # 81
])
def test_each_rule_names_the_invoice_and_the_field(field, value, text):
    bad = replace(GOOD, **{field: value})
    with pytest.raises(PayfipRequestInvalid) as info:
        bad.validated()
    [problem] = info.value.problems
    assert problem.invoice == "FA-2026-00102" and problem.rule == f"payfip.{field}"
    assert text in problem.message
    assert str(problem).startswith(f"invoice FA-2026-00102: {field}: ")
    assert info.value.exit_code == 4


@pytest.mark.parametrize("field, value", [
    ("numcli", "000000"), ("exer", "0000"),
    ("refdet", "A" * 6), ("refdet", "0" * 30),
    ("montant", 100), ("montant", 10_000_000),
    ("mel", "a@b.co"), ("mel", "x" * 68 + "@example.org"),  # 6 and 80 characters
    ("objet", "A"), ("objet", "A" * 100), ("objet", " A "),
    ("saisie", "T"), ("saisie", "X"), ("saisie", "W"),
    ("urlnotif", "http://e.org"), ("urlredirect", "https://e.org/" + "x" * 236),  # 250
])
def test_each_limit_itself_passes(field, value):
    """The rules' bounds are PayFiP's own (docs/payfip.md, "Parameter rules"): a value
    at a bound is sent, one past it refused (test_each_rule_names_the_invoice_and_the_field)."""
    assert replace(GOOD, **{field: value}).problems() == []


def test_the_upper_case_hint_is_for_a_refdet_only_its_lower_case_spoils():
    """'| upper' is offered when upper-casing would give a good refdet (6 to 30 letters
    and digits), never otherwise; a refdet that is not text has 0 characters."""
    from pesgen.payfip.models import check_refdet

    hint = "and upper case: no lower-case letter (add '| upper' to the rule)"
    for value in ("fa2026", "a" * 30):
        [problem] = check_refdet(value)
        assert hint in problem.message
    for value in ("fa202", "a" * 31, "fa-2026", "FA 2026 00102"):
        [problem] = check_refdet(value)
        assert hint not in problem.message
        assert f"(got {len(value)} characters; " in problem.message
    for value in (None, 202600102):
        [problem] = check_refdet(value)
        assert problem.message == (f"refdet: {value!r} must be 6 to 30 characters of "
                                   "[A-Z0-9] (got 0 characters; no '-', '/', '_' or space): "
                                   "check the mapping's payfip.refdet rule")


def test_every_problem_is_reported_at_once():
    bad = replace(GOOD, numcli="1", refdet="x", montant=1, mel="nope", objet="é" * 101)
    rules = [p.rule for p in bad.problems()]
    assert rules == ["payfip.numcli", "payfip.refdet", "payfip.montant", "payfip.mel",
                     "payfip.objet", "payfip.objet"]


def test_amounts_become_exact_cents():
    assert to_cents(Decimal("187.50")) == 18750
    assert to_cents("19.99") == 1999  # float arithmetic would give 1998
    assert to_cents("2527.25") == 252725
    with pytest.raises(PayfipRequestInvalid, match="'1.005' is not an amount in whole cents"):
        to_cents("1.005", "FA-1")
    with pytest.raises(PayfipRequestInvalid) as info:
        to_cents("abc", "FA-1")
    assert info.value.problems[0].invoice == "FA-1"
    # the message names the invoice when there is one, and only then
    assert str(info.value) == "invoice FA-1: montant: 'abc' is not an amount in whole cents"
    with pytest.raises(PayfipRequestInvalid) as info:
        to_cents("abc")
    assert str(info.value) == "montant: 'abc' is not an amount in whole cents"
    assert info.value.problems[0].invoice is None


def test_mapping_filters():
    assert alnum("FA-2026-00102") == "FA202600102"
    assert ascii_label("18/09/2020  Établissement hors-sol n°1234") == \
        "18 09 2020 Etablissement hors sol n 1234"
    assert len(ascii_label("x " * 80)) <= 100


@pytest.mark.parametrize(("label", "shown"), [
    # a letter NFKD does not decompose takes the text policies' transliteration (a
    # music school's "chœur" was shown to the family as "ch ur")
    ("Cours de chœur", "Cours de choeur"), ("ŒUVRES", "OEUVRES"), ("Æolien", "AEolien"),
    ("Straße", "Strasse"), ("Øre", "Ore"), ("Łódź", "Lodz"), ("ﬁn", "fin"),
    # signs stay signs (spaces), even those the SEPA table writes as a letter
    ("n°12", "n 12"), ("l’été", "l ete"), ("3×2", "3 2"),
    # an accent typed as its own combining mark (decomposed text, as a macOS file name
    # gives it) goes with its letter, never a space in the word
    ("Re\u0301gie", "Regie"), ("Cafe\u0301 x\u0308y", "Cafe xy"),
    # a letter with no ASCII form is dropped, as before
    ("Ωmega 中", "mega"),
])
def test_payfip_text_transliterates_letters(label, shown):
    assert ascii_label(label) == shown


def test_detail_statuses_and_time():
    detail = PaymentDetail(resultrans="V", dattrans="03082026", heurtrans="0912")
    assert (detail.status, detail.method) == ("paid", "direct_debit")
    assert detail.transaction_time.startswith("2026-08-03T09:12")
    assert PaymentDetail(resultrans="Z").status == "refused"
    assert PaymentDetail(resultrans="A").status == "abandoned"
    assert PaymentDetail(resultrans="Q").status == "unknown"
    assert PaymentDetail(dattrans="99999999", heurtrans="1200").transaction_time is None


# ---------------------------------------------------------------------- SOAP contract


@pytest.fixture
def reference_schema():
    path = REFERENCE / "wsdl" / "PaiementSecuriseService_schema1.xsd"
    if not path.is_file():
        pytest.skip("the PayFiP reference WSDL/XSD is not beside the project (../shared)")
    return etree.XMLSchema(etree.parse(str(path)))


def _built_envelopes() -> list[bytes]:
    return [
        soap.request("creerPaiementSecurise", GOOD.soap_fields()),
        soap.request("recupererDetailPaiementSecurise", [("idOp", "cc0cb210-1cd4-11ea")]),
        soap.request("recupererDetailClient", [("numCli", "012345")]),
        soap.response("creerPaiementSecurise", [("idOp", "cc0cb210-1cd4-11ea")]),
        soap.response("recupererDetailPaiementSecurise",
                      [(n, "x") for n in soap.DETAIL_FIELDS]),
        soap.response("recupererDetailClient", [(n, "x") for n in soap.CLIENT_FIELDS]),
    ]


def test_our_envelopes_validate_against_the_dgfip_schema(reference_schema):
    for envelope in _built_envelopes():
        element = soap.parse(envelope)
        assert reference_schema.validate(etree.fromstring(etree.tostring(element))), \
            reference_schema.error_log
    detail = soap.parse(soap.fault("FonctionnelleErreur", "P5", "x"))[2][0]
    assert reference_schema.validate(etree.fromstring(etree.tostring(detail)))


def test_the_authored_reference_requests_validate_against_our_schema():
    folder = REFERENCE / "samples" / "soap" / "authored"
    if not folder.is_dir():
        pytest.skip("the PayFiP reference samples are not beside the project")
    for path in sorted(folder.glob("*.xml")):
        assert soap.schema_errors(soap.parse(path.read_bytes())) == [], path.name


def test_our_schema_catches_the_known_spelling_traps():
    wrong_case = soap._operation("recupererDetailPaiementSecurise", "arg0",
                                 [("idop", "x")], check=False)
    assert "idop" in soap.schema_errors(wrong_case)[0]
    odoo_bug = soap._operation("creerPaiementSecurise", "arg0", [("object", "x")],
                               check=False)
    assert soap.schema_errors(odoo_bug)
    with pytest.raises(soap.EnvelopeError):
        soap.request("recupererDetailClient", [("numcli", "012345")])  # numCli


def test_our_requests_have_the_authored_requests_shape():
    """Header, Body, the operation in the service's namespace, arg0's children in the
    same order and the same values: what the authored samples (notes payfip.md §4) send."""
    folder = REFERENCE / "samples" / "soap" / "authored"
    if not folder.is_dir():
        pytest.skip("the PayFiP reference samples are not beside the project")
    for path in sorted(folder.glob("*_request.xml")):
        sample = etree.parse(str(path), etree.XMLParser(remove_comments=True)).getroot()
        operation = soap.parse(path.read_bytes())
        ours = etree.fromstring(soap.request(
            soap.local(operation), list(soap.values(operation, "arg0").items())))
        assert [e.tag for e in ours.iter()] == [e.tag for e in sample.iter()], path.name
        assert [(e.text or "").strip() for e in ours.iter()] == [
            (e.text or "").strip() for e in sample.iter()], path.name


def test_an_answer_is_checked_against_the_contract_on_its_way_out_too():
    """The fake's answers (soap.response) are schema-checked as pesgen's requests are: a
    misspelt idOp never leaves it."""
    with pytest.raises(soap.EnvelopeError,
                       match="^recupererDetailPaiementSecuriseResponse: line 1: .*idop"):
        soap.response("recupererDetailPaiementSecurise", [("idop", "cc0cb210-1cd4-11ea")])


def _fault_with(detail: str, faultstring: str) -> bytes:
    return (f'<soapenv:Envelope xmlns:soapenv="{soap.SOAP_ENV}"><soapenv:Body><soapenv:Fault>'
            f"<faultcode>soapenv:Server</faultcode><faultstring>{faultstring}</faultstring>"
            f'{detail}</soapenv:Fault></soapenv:Body></soapenv:Envelope>').encode()


def test_a_fault_says_what_the_live_service_s_says_and_is_read_back_whole():
    fault = soap.parse(soap.fault("TechIndisponibiliteErreur", " T1 ", " Service indisponible ",
                                  "descriptif", "message", severite=3))
    assert soap.is_fault(fault)
    assert soap.fault_info(fault) == {
        "faultcode": "soapenv:Server",
        "faultstring": "fr.gouv.finances.cp.tpa.webservice.exceptions."
                       "TechIndisponibiliteErreur",
        "kind": "TechIndisponibiliteErreur", "code": "T1", "libelle": "Service indisponible",
        "descriptif": "descriptif", "message": "message", "severite": 3}


@pytest.mark.parametrize("severite, read", [
    ("2", 2), (" 3 ", 3), ("-1", -1), ("", None), ("grave", None), ("1.5", None),
    ("X3", None)])
def test_a_fault_s_severite_is_an_integer_or_none(severite, read):
    detail = soap.fault("FonctionnelleErreur", "P5", "x").replace(
        b"<severite>2</severite>", f"<severite>{severite}</severite>".encode())
    info = soap.fault_info(soap.parse(detail))
    # the fake's faults: no descriptif nor message unless given
    assert (info["severite"], info["descriptif"], info["message"]) == (read, "", "")


def test_a_fault_s_kind_is_its_first_known_detail_else_the_class_its_faultstring_names():
    ns = f'xmlns:ns2="{soap.TNS}"'
    detail = (f"<detail><ns2:AutreErreur {ns}><code>X9</code></ns2:AutreErreur>"
              f"<ns2:FonctionnelleErreur {ns}><code>P1</code></ns2:FonctionnelleErreur>"
              f"<ns2:TechDysfonctionnementErreur {ns}><code>999</code>"
              "</ns2:TechDysfonctionnementErreur></detail>")
    info = soap.fault_info(soap.parse(_fault_with(detail, "TechIndisponibiliteErreur")))
    assert (info["kind"], info["code"]) == ("FonctionnelleErreur", "P1")
    # without a known detail: the faultstring's class, with or without its package
    for faultstring, kind in [
            ("fr.gouv.finances.cp.tpa.webservice.exceptions.TechProtocolaireErreur",
             "TechProtocolaireErreur"),
            ("TechDysfonctionnementErreur", "TechDysfonctionnementErreur"),  # samples' form
            ("request too large", "SOAP")]:
        for envelope, faultcode in [
                (soap.bare_fault("soapenv:Client", faultstring), "soapenv:Client"),
                (_fault_with(f"<detail><ns2:AutreErreur {ns}/></detail>", faultstring),
                 "soapenv:Server")]:
            info = soap.fault_info(soap.parse(envelope))
            assert (info["kind"], info["code"], info["severite"]) == (kind, "", None)
            assert (info["faultcode"], info["faultstring"]) == (faultcode, faultstring)
    # a peer's fault without faultcode nor faultstring is still read
    bare = soap.parse(soap.bare_fault("x", "y").replace(b"<faultcode>x</faultcode>", b"")
                      .replace(b"<faultstring>y</faultstring>", b""))
    assert soap.fault_info(bare) == {"faultcode": "", "faultstring": "", "kind": "SOAP",
                                     "code": "", "libelle": "", "descriptif": "",
                                     "message": "", "severite": None}


def test_values_are_the_wrapper_s_children_stripped():
    element = soap.parse(soap.response("recupererDetailClient", [
        ("libelleN1", "  ECOLE DE MUSIQUE "), ("libelleN2", ""), ("numcli", "012345")]))
    assert soap.values(element, "return") == {"libelleN1": "ECOLE DE MUSIQUE",
                                              "libelleN2": "", "numcli": "012345"}
    assert soap.values(element, "arg0") == {}  # an answer has no arg0


def test_only_a_soap_1_1_envelope_with_something_in_its_body_is_read():
    good = soap.request("recupererDetailClient", [("numCli", "012345")])
    assert soap.local(soap.parse(good)) == "recupererDetailClient"
    soap12 = good.replace(soap.SOAP_ENV.encode(), b"http://www.w3.org/2003/05/soap-envelope")
    with pytest.raises(soap.EnvelopeError, match=r"^not a SOAP 1\.1 envelope \(root "):
        soap.parse(soap12)
    head = f'<soapenv:Envelope xmlns:soapenv="{soap.SOAP_ENV}">'
    for envelope in (head + "<soapenv:Header/></soapenv:Envelope>",
                     head + "<soapenv:Body/></soapenv:Envelope>",
                     head + "<soapenv:Body>  </soapenv:Body></soapenv:Envelope>"):
        with pytest.raises(soap.EnvelopeError, match="^the envelope has no Body content$"):
            soap.parse(envelope.encode())


def test_faults_from_the_reference_samples_are_read():
    folder = REFERENCE / "samples" / "soap"
    if not folder.is_dir():
        pytest.skip("the PayFiP reference samples are not beside the project")
    p5 = soap.fault_info(soap.parse((folder / "recuperer_detail_fault_p5.xml").read_bytes()))
    assert (p5["kind"], p5["code"], p5["severite"]) == ("FonctionnelleErreur", "P5", 2)
    tech = soap.fault_info(soap.parse((folder / "fault_technical_999.xml").read_bytes()))
    assert (tech["kind"], tech["code"]) == ("TechDysfonctionnementErreur", "999")


def test_hostile_xml_is_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            b'<x>&a;</x>')
    with pytest.raises(soap.EnvelopeError):
        soap.parse(bomb)
    with pytest.raises(soap.EnvelopeError):
        soap.parse(b"not xml")


def _answer_with(doctype: str, id_op: str) -> bytes:
    """A creerPaiementSecurise answer as a peer may send it, behind ``doctype``."""
    good = soap.response("creerPaiementSecurise", [("idOp", "@ID@")])
    body = good.split(b"?>", 1)[1].replace(b"@ID@", id_op.encode())
    return b'<?xml version="1.0"?>' + doctype.encode() + body


def test_an_external_entity_in_an_answer_is_never_read(tmp_path):
    """XXE: an answer declaring an entity on a local file is refused whole (SOAP 1.1 §3: no
    document type declaration), naming nothing of the file; and the parser under that
    refusal never substitutes one, external or internal (lxml's default parser
    substitutes the internal ones)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not-for-the-peer", encoding="utf-8")
    answer = _answer_with(f'<!DOCTYPE e [<!ENTITY x SYSTEM "{secret.as_uri()}">]>', "&x;")
    with pytest.raises(soap.EnvelopeError, match="no document type declaration") as info:
        soap.parse(answer)
    assert "not-for-the-peer" not in str(info.value)
    element = etree.fromstring(answer, soap._parser())
    assert b"not-for-the-peer" not in etree.tostring(element)
    inside = _answer_with('<!DOCTYPE e [<!ENTITY x "cc0cb210-1cd4-11ea">]>', "&x;")
    with pytest.raises(soap.EnvelopeError, match="no document type declaration"):
        soap.parse(inside)
    assert b"cc0cb210" not in etree.tostring(etree.fromstring(inside, soap._parser()))


def test_an_answer_s_external_dtd_is_never_loaded(tmp_path):
    """The DTD an answer names is not fetched: a broken one at that address changes
    nothing to the parser (loading it would fail the parse); the answer itself is refused
    for naming one."""
    dtd = tmp_path / "broken.dtd"
    dtd.write_text("<!ELEMENT e (((", encoding="utf-8")
    answer = _answer_with(f'<!DOCTYPE e SYSTEM "{dtd.as_uri()}">', "cc0cb210-1cd4-11ea")
    root = etree.fromstring(answer, soap._parser())
    assert root.tag == f"{{{soap.SOAP_ENV}}}Envelope"
    with pytest.raises(soap.EnvelopeError, match="no document type declaration"):
        soap.parse(answer)


@pytest.mark.parametrize("where", ["before", "inside"])
def test_an_answer_with_a_processing_instruction_is_refused(where):
    """SOAP 1.1 §3: no processing instruction, before the envelope or in it."""
    good = _answer_with("", "cc0cb210-1cd4-11ea")
    pi = b'<?xml-stylesheet href="x.xsl"?>'
    answer = (good.replace(b"?>", b"?>" + pi, 1) if where == "before"
              else good.replace(b"<idOp>", pi + b"<idOp>"))
    assert answer != good
    with pytest.raises(soap.EnvelopeError, match="no processing instruction"):
        soap.parse(answer)
    # the same answer without it is read
    assert soap.values(soap.parse(good), "return") == {"idOp": "cc0cb210-1cd4-11ea"}


def test_an_answer_nested_past_the_parser_s_limit_is_refused():
    """No huge_tree: past libxml2's 256 levels the answer is not XML for pesgen."""
    deep = "<a>" * 300 + "</a>" * 300
    answer = _answer_with("", "").replace(b"<idOp></idOp>", deep.encode())
    with pytest.raises(soap.EnvelopeError, match="^not XML: .*depth"):
        soap.parse(answer)


# ---------------------------------------------------------------------- TIPI


def test_tipi_url_uses_the_url_protocol_letters_and_limits():
    req = TipiRequest("FA-1", "012345", "2026", "FA202600102", 18750, "f@example.org",
                      "FACTURE", "A", "https://ecole.example.org/retour")
    url = tipi_url(req, "https://www.payfip.gouv.fr/tpa/")
    assert url.startswith("https://www.payfip.gouv.fr/tpa/paiement.web?numcli=012345&")
    assert "&saisie=A" in url
    with pytest.raises(PayfipRequestInvalid) as info:
        tipi_url(replace(req, saisie="W", montant=1_000_000, urlcl="ftp://x"))
    assert [p.rule for p in info.value.problems] == ["payfip.montant", "payfip.saisie",
                                                     "payfip.urlcl"]


TIPI = TipiRequest("FA-2026-00102", "012345", "2026", "FA202600102", 18750,
                   "famille@example.org", "CONSERVATOIRE FACTURE FA 2026 00102", "T",
                   "https://ecole.example.org/tipi/retour?a=1&b=2")


def test_a_tipi_url_carries_every_field_in_the_protocol_s_order_and_no_other():
    from urllib.parse import parse_qsl, urlsplit

    url = tipi_url(TIPI)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "www.payfip.gouv.fr",
                                                        "/tpa/paiement.web")
    assert parse_qsl(parts.query, keep_blank_values=True) == [
        ("numcli", "012345"), ("exer", "2026"), ("refdet", "FA202600102"),
        ("objet", "CONSERVATOIRE FACTURE FA 2026 00102"), ("montant", "18750"),
        ("mel", "famille@example.org"), ("urlcl", "https://ecole.example.org/tipi/retour?a=1&b=2"),
        ("saisie", "T")]
    assert "invoice" not in parts.query and "FA-2026-00102" not in url


@pytest.mark.parametrize("field, value, rule", [
    ("numcli", "12345", "payfip.numcli"), ("exer", "26", "payfip.exer"),
    ("refdet", "FA-2026-00102", "payfip.refdet"), ("montant", 99, "payfip.montant"),
    ("montant", 1_000_000, "payfip.montant"),  # the URL protocol's 9 999,99 EUR
    ("mel", "famille", "payfip.mel"), ("objet", "Facture n°102", "payfip.objet"),
    ("saisie", "W", "payfip.saisie"),  # the web service's production letter
    ("saisie", "", "payfip.saisie"), ("urlcl", "/tipi/retour", "payfip.urlcl"),
])
def test_a_tipi_url_is_refused_for_any_field_out_of_its_rule(field, value, rule):
    with pytest.raises(PayfipRequestInvalid) as info:
        tipi_url(replace(TIPI, **{field: value}))
    assert str(info.value).startswith("invoice FA-2026-00102: the TIPI link is invalid")
    assert [(p.rule, p.invoice) for p in info.value.problems] == [(rule, "FA-2026-00102")]
    # its message says nothing of sending: the count after the problems says what is left
    # (a refusal saying "nothing was sent" ends the count there)
    assert info.value.count_line() == "1 problem(s); nothing was written."


@pytest.mark.parametrize("saisie", ["T", "X", "A"])
def test_a_tipi_url_takes_the_url_protocol_s_three_letters(saisie):
    assert tipi_url(replace(TIPI, saisie=saisie, montant=999_999)).endswith(
        f"&saisie={saisie}")


# ---------------------------------------------------------------------- Datamatrix

TITLE = DatamatrixTitle(invoice="FA-2026-00102", exercise=2026, id_bord=1, id_pce=2,
                        per="1", num_dette="202600102", cle2="V", product="FMC1",
                        id_post="045012", amount_cents=18750)


def test_datamatrix_layout_1_positions():
    text = payload(TITLE, "AB")
    assert len(text) == 130 and text == payload_v1(TITLE, "AB", "940033")
    pos = lambda a, b: text[a - 1:b]  # noqa: E731 - 1-based like the layout table
    assert pos(1, 64) == " " * 64
    assert pos(65, 67) == "002"  # AB
    assert pos(68, 68) == "1"  # Per
    assert pos(69, 71) == "143"  # FM
    assert pos(72, 75) == "0026"
    assert pos(76, 76) == str(11 - int("00211430026") % 11)[-1]
    assert pos(77, 86) == "9400330001"
    # 1*1 + 5*3 + 6*3 + 9*4 + 10*9 over 9400330001 read from the right = 160
    assert pos(87, 88) == "60"
    assert pos(89, 89) == " "
    # over 92-116 (200000002026001020450124 then 9) read from the right: 1*9 + 2*4 +
    # 3*2 + 4*1 + 6*5 + 7*4 + 9*2 + 11*1 + 14*6 + 15*2 + 17*2 + 25*2 = 312
    assert pos(90, 91) == "12"
    assert pos(92, 115) == "20" + "000000202600102" + "045012" + "4"  # V is the 20th letter
    assert pos(116, 116) == "9"
    assert pos(119, 122) == "806 "
    assert pos(123, 130) == "   18750"
    # 806 weighted 11, 10, 9 and '   18750' weighted 8..1 from the right, spaces 0
    key1 = (8 * 11 + 0 * 10 + 6 * 9 + 1 * 5 + 8 * 4 + 7 * 3 + 5 * 2 + 0 * 1) % 100
    assert pos(117, 118) == f"{key1:02d}"


def test_datamatrix_conversions_and_refusals():
    assert letter_pair("AA", "x") == "001" and letter_pair("ZZ", "x") == "676"
    assert letter_pair("FF", "x") == "136" and letter_pair("7", "x") == "007"
    with pytest.raises(ValueError, match="neither"):
        letter_pair("F1", "CodProdLoc")
    with pytest.raises(ValueError, match="IdPost"):
        payload(replace(TITLE, id_post="02A123"), "AB")
    with pytest.raises(ValueError, match="unknown Datamatrix layout version 9"):
        payload(TITLE, "AB", version=9)


@pytest.mark.parametrize("code, per, key76", [
    ("001", "1", "7"),  # 00111430026 mod 11 = 4: 11 - 4 = 7
    ("007", "2", "2"),  # 00721430026 mod 11 = 9: 11 - 9 = 2
    ("007", "1", "1"),  # 00711430026 mod 11 = 10: 11 - 10 = 1
    ("001", "4", "0"),  # 00141430026 mod 11 = 1: 11 - 1 = 10, its last digit
    ("001", "5", "1"),  # 00151430026 mod 11 = 0: 11 - 0 = 11, its last digit
])
def test_datamatrix_key_76(code, per, key76):
    assert payload(replace(TITLE, per=per), code)[75] == key76


def test_datamatrix_refuses_what_its_layout_cannot_hold():
    """Positions 77-82 hold a code émetteur of 6 digits, 68 the one digit of Per,
    65-67 and 69-71 a code of up to 3 digits or 2 letters (notes section 13): anything
    else is refused, naming the value, never laid out shifted or cut."""
    for emitter in ("94003", "9400331", "94003A", ""):
        with pytest.raises(ValueError, match=f"code émetteur '{emitter}' must be 6 digits"):
            payload(TITLE, "AB", emitter)
    for per in ("", "12", "A"):
        with pytest.raises(ValueError, match=f"Per '{per}' must be one digit"):
            payload(replace(TITLE, per=per), "AB")
    with pytest.raises(ValueError, match="code établissement 'A1' is neither"):
        payload(TITLE, "A1")
    with pytest.raises(ValueError, match="CodProdLoc 'F1' is neither"):
        payload(replace(TITLE, product="F1MC"), "AB")


def test_datamatrix_limits_of_each_part():
    """Each part is laid out up to its width, and refused beyond it: a code of up to 3
    digits, a NumDette of up to 15 digits, an amount of 1 to 99 999 999 cents, a Cle2
    that is one of the 23 key letters."""
    assert letter_pair("123", "x") == "123"
    with pytest.raises(ValueError, match="neither"):
        letter_pair("1234", "code établissement")
    longest = payload(replace(TITLE, num_dette="9" * 15), "AB")
    assert longest[93:108] == "9" * 15
    for num_dette in ("9" * 16, "12A", ""):
        with pytest.raises(ValueError, match="NumDette"):
            payload(replace(TITLE, num_dette=num_dette), "AB")
    assert payload(replace(TITLE, amount_cents=99_999_999), "AB")[122:] == "99999999"
    assert payload(replace(TITLE, amount_cents=1), "AB")[122:] == "       1"
    for cents in (0, -1, 100_000_000):
        with pytest.raises(ValueError, match="does not fit 8 characters"):
            payload(replace(TITLE, amount_cents=cents), "AB")
    assert payload(replace(TITLE, cle2="A"), "AB")[91:93] == "01"
    assert payload(replace(TITLE, cle2="Y"), "AB")[91:93] == "23"
    for cle2 in ("AB", "", "I", "Z", "a"):
        with pytest.raises(ValueError, match="not a key letter"):
            payload(replace(TITLE, cle2=cle2), "AB")


def test_datamatrix_image_decodes_to_the_payload(tmp_path: Path):
    zxingcpp = pytest.importorskip("zxingcpp")
    import io

    from PIL import Image

    from pesgen.payfip.datamatrix import png, svg

    text = payload(TITLE, "001")
    assert svg(text).startswith("<svg")
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png(text))))
    assert decoded.format == zxingcpp.BarcodeFormat.DataMatrix and decoded.text == text


@pytest.mark.parametrize("pattern, value", [
    ("IDOP_RE", "abc\n"), ("NUMCLI_RE", "123456\n"), ("REFDET_RE", "FA202600101\n"),
    ("EXER_RE", "2026\n"), ("URL_RE", "https://example.org/x\n"),
    ("MEL_RE", "famille@example.org\n"), ("OBJET_RE", "FACTURE\n"),
])
def test_a_trailing_newline_never_passes_a_pattern(pattern, value):
    """'$' matches before a final newline: a notification's idOp 'abc\\n' split the
    receiver's log line in two. The patterns end at the very end of the text."""
    from pesgen.payfip import models

    regex = getattr(models, pattern)
    assert regex.match(value.rstrip("\n"))
    assert not regex.match(value)


@pytest.mark.parametrize("key", ["idOp", "idop", "IDOP"])
def test_a_created_operation_s_idop_is_read_whatever_its_spelling(key):
    """The detail's keys are read without regard to case; so is the creation's answer
    (the reference samples spell it idOp and idop)."""
    import httpx

    from pesgen.payfip.client import PayfipClient

    answer = soap.response("creerPaiementSecurise", [("idOp", "cc0cb210-1cd4-11ea")])
    answer = answer.replace(b"idOp>", key.encode() + b">")  # as PayFiP may spell it
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, content=answer, headers={"content-type": "text/xml; charset=utf-8"}))
    client = PayfipClient(http=httpx.Client(transport=transport))
    assert client.creer_paiement_securise(GOOD) == "cc0cb210-1cd4-11ea"


@contextmanager
def _closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 that refuses connections while the block runs: bound, not
    listening. Kept bound, not let go once picked, which another process (a test running
    beside this one) could have taken meanwhile for a server of its own."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.mark.parametrize("failure, reason", [
    ("refused", "connection refused"),
    ("timeout", "timeout"),
    ("bad-gateway", "HTTP 502"),
    ("dropped", "RemoteProtocolError"),
])
def test_no_answer_says_what_went_wrong_and_keeps_credentials_out(failure, reason):
    """PayfipUnavailable's code names the failure (it was empty: 'Transport '); the
    endpoint's user and password never reach the message, the operation's last_error
    or a log line."""
    import httpx

    from pesgen.payfip.client import PayfipClient
    from pesgen.payfip.errors import PayfipUnavailable

    def answer(request: httpx.Request) -> httpx.Response:
        if failure == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if failure == "dropped":
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return httpx.Response(502, content=b"<html>Bad gateway</html>")

    http = None if failure == "refused" else httpx.Client(transport=httpx.MockTransport(answer))
    with _closed_port() as port:
        endpoint = f"http://support:s3cret@127.0.0.1:{port}/tpa"
        client = PayfipClient(endpoint, timeout=2, http=http)
        with pytest.raises(PayfipUnavailable) as info:
            client.recuperer_detail_paiement_securise("cc0cb210-1cd4-11ea")
    fault = info.value
    assert (fault.kind, fault.code) == ("Transport", reason)
    assert fault.summary == f"no answer: {reason}"
    assert "s3cret" not in str(fault) and "support:" not in str(fault)
    assert str(fault).startswith(f"PayFiP recupererDetailPaiementSecurise: http://***@127.0.0.1:"
                                 f"{port}/tpa/services/securite: no answer: {reason}")


def test_a_bad_endpoint_is_refused_without_its_password():
    from pesgen.payfip.client import check_endpoint
    from pesgen.payfip.errors import PayfipConfigError

    with pytest.raises(PayfipConfigError) as info:
        check_endpoint("ftp://support:s3cret@payfip.example/tpa")
    assert str(info.value).startswith("PayFiP endpoint 'ftp://***@payfip.example/tpa' must be")


def test_a_payfip_url_is_shown_without_its_query_nor_a_password_holding_an_at_sign():
    from pesgen.payfip.client import shown_url

    assert shown_url("https://support:s3c@ret@payfip.example/tpa/paiementws.web?idop=X"
                     "&token=abc") == "https://***@payfip.example/tpa/paiementws.web?…"
    assert shown_url("https://payfip.example/tpa") == "https://payfip.example/tpa"


def test_the_payer_email_is_the_exact_invoice_s_not_a_look_alike_s(tmp_path):
    """A run an older pesgen recorded may hold FA-2026-00103 and FA‐2026‐00103 (U+2010)
    apart, two families (migration 6 keeps both): the e-mail of the one linked is its own,
    never the first record with the same key."""
    import json
    from datetime import date

    from pesgen.mapping import load_mapping
    from pesgen.payfip.service import PayerEmails
    from pesgen.runs import export_recorded
    from pesgen.store import Store, pack, runs

    from .conftest import EXAMPLES, MAPPINGS, RUN_DATE

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    mapping_path = MAPPINGS / "villeneuve-sur-loing.yaml"
    done = export_recorded(lambda: store, mapping_path, EXAMPLES / "school-export.json",
                           tmp_path / "out", date.fromisoformat(RUN_DATE))
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    [mine] = [inv for inv in data["invoices"] if inv["number"] == "FA-2026-00103"]
    twin = json.loads(json.dumps(mine))
    twin["number"] = "FA\u20102026\u201000103"
    twin["payer"]["email"] = "other.family@example.org"
    mine["payer"]["email"] = "this.family@example.org"
    data["invoices"].insert(0, twin)  # the look-alike read first
    with store.engine.begin() as conn:
        conn.execute(runs.update().where(runs.c.id == done.run_id).values(
            input_blob=pack(json.dumps(data).encode("utf-8"))))
    mapping = load_mapping(mapping_path)
    emails = PayerEmails(store, done.run_id, mapping)  # the input read once for both
    assert emails.email("FA-2026-00103") == "this.family@example.org"
    assert emails.email("FA\u20102026\u201000103") == "other.family@example.org"
    # a number only its look-alikes hold, several: none of their e-mails
    assert emails.email("fa-2026-00103") is None


def test_a_payer_email_binding_past_the_time_limit_stops_the_link(tmp_path, monkeypatch):
    """The payer's e-mail is read from the run's input with the recorded mapping's
    bindings: one running past the limit (pesgen._budget.LIMIT, 60 s; 0.5 s here) is
    stopped, naming its line (rule mapping.time), not read as "no e-mail" for that
    record and evaluated on the next one as long again."""
    from datetime import date

    from pesgen import _budget
    from pesgen.errors import MappingStopped
    from pesgen.mapping import load_mapping
    from pesgen.payfip.service import PayerEmails
    from pesgen.runs import export_recorded
    from pesgen.store import Store

    from .conftest import EXAMPLES, MAPPINGS, RUN_DATE
    from .mapping_support import mapping_copy

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    mapping_path = MAPPINGS / "villeneuve-sur-loing.yaml"
    done = export_recorded(lambda: store, mapping_path, EXAMPLES / "school-export.json",
                           tmp_path / "out", date.fromisoformat(RUN_DATE))
    slow = ("(([[1] * 100000] * 100000) | map('map', 'string') | map('join') "
            "| map('length') | sum)")
    path, (line,) = mapping_copy(tmp_path / "m", mapping_path, (
        "    email: payer.email", f'    email: {{expr: "invoice.payer.email ~ {slow}"}}'))
    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    with pytest.raises(MappingStopped) as info:
        PayerEmails(store, done.run_id, load_mapping(path))
    [problem] = info.value.problems
    assert (problem.rule, problem.mapping) == ("mapping.time",
                                               f"{path}:{line}: bindings.payer.email")
    assert str(info.value).startswith(f"{path}:{line}: bindings.payer.email: the expression "
                                      "ran for more than 0.5 seconds and was stopped")
    assert _budget._started == [0.0]
