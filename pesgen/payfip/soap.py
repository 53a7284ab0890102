"""SOAP 1.1 envelopes of PayFiP's PaiementSecuriseService: build, parse, check.

Document/literal: ``<tns:operation><arg0>…</arg0></tns:operation>`` for a request,
``<tns:operationResponse><return>…</return></…>`` for an answer, children unqualified.
Both the client and the fake build and read envelopes here, and check the operation
element against pesgen's own schema of the contract (``schemas/payfip/``) on the way
out and on the way in, so a misspelt element (``idop`` for ``idOp``) never travels.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from lxml import etree

from ..resources import schema_path

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = ("http://securite.service.tpa.cp.finances.gouv.fr/services/mas_securite/"
       "contrat_paiement_securise/PaiementSecuriseService")
FAULT_KINDS = ("FonctionnelleErreur", "TechDysfonctionnementErreur",
               "TechIndisponibiliteErreur", "TechProtocolaireErreur")
# The live service names the Java exception class in faultstring (recorded by a client
# written against it); keep the same form in the fake.
FAULTSTRING_PREFIX = "fr.gouv.finances.cp.tpa.webservice.exceptions."

OPERATIONS = ("creerPaiementSecurise", "recupererDetailPaiementSecurise",
              "recupererDetailClient")
DETAIL_FIELDS = ("dattrans", "exer", "heurtrans", "idOp", "mel", "montant", "numauto",
                 "numcli", "objet", "refdet", "resultrans", "saisie")
CLIENT_FIELDS = ("libelleN1", "libelleN2", "libelleN3", "numcli")
CONTENT_TYPE = "text/xml; charset=utf-8"


class EnvelopeError(ValueError):
    """Not a SOAP envelope of this contract (malformed XML, no Body, schema violation)."""


def _parser() -> etree.XMLParser:
    # No DTD, no entities, no network: the peer is not trusted.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, remove_blank_text=True)


@cache
def _schema() -> etree.XMLSchema:
    path = schema_path("payfip/paiement-securise.xsd")
    return etree.XMLSchema(etree.parse(str(path), _parser()))


def schema_errors(element: etree._Element) -> list[str]:
    """Problems of one operation/response element against pesgen's contract schema."""
    doc = etree.fromstring(etree.tostring(element), _parser())
    schema = _schema()
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def _envelope(body_child: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
    etree.SubElement(env, f"{{{SOAP_ENV}}}Header")
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    body.append(body_child)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _operation(name: str, wrapper: str, values: list[tuple[str, str]],
               check: bool = True) -> etree._Element:
    op = etree.Element(f"{{{TNS}}}{name}", nsmap={"pai": TNS})
    inner = etree.SubElement(op, wrapper)
    for key, value in values:
        etree.SubElement(inner, key).text = value
    if check:
        errors = schema_errors(op)
        if errors:  # a programming error: our own envelope breaks the contract
            raise EnvelopeError(f"{name}: " + "; ".join(errors))
    return op


def request(operation: str, values: list[tuple[str, str]], check: bool = True) -> bytes:
    """A request envelope; ``values`` are the ``arg0`` children in contract order."""
    return _envelope(_operation(operation, "arg0", values, check))


def response(operation: str, values: list[tuple[str, str]], check: bool = True) -> bytes:
    return _envelope(_operation(f"{operation}Response", "return", values, check))


def fault(kind: str, code: str, libelle: str, descriptif: str = "", message: str = "",
          severite: int = 2) -> bytes:
    """A SOAP fault carrying one of the contract's four fault details."""
    f = etree.Element(f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(f, "faultcode").text = "soapenv:Server"
    etree.SubElement(f, "faultstring").text = FAULTSTRING_PREFIX + kind
    detail = etree.SubElement(f, "detail")
    err = etree.SubElement(detail, f"{{{TNS}}}{kind}", nsmap={"ns2": TNS})
    for key, value in (("code", code), ("descriptif", descriptif), ("libelle", libelle),
                       ("message", message), ("severite", str(severite))):
        etree.SubElement(err, key).text = value
    return _envelope(f)


def bare_fault(faultcode: str, faultstring: str) -> bytes:
    """A fault without detail (protocol errors, as some SOAP stacks send)."""
    f = etree.Element(f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(f, "faultcode").text = faultcode
    etree.SubElement(f, "faultstring").text = faultstring
    return _envelope(f)


def parse(data: bytes) -> etree._Element:
    """The Body's element (an operation, a response or a Fault)."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise EnvelopeError(f"not XML: {exc}") from None
    # SOAP 1.1 §3: a message MUST NOT contain a Document Type Declaration, nor Processing
    # Instructions. Its entities are never substituted (_parser), but nothing that
    # declares any is read further.
    if root.getroottree().docinfo.doctype:
        raise EnvelopeError("a SOAP message has no document type declaration (SOAP 1.1 §3): "
                            "refused, nothing read from it")
    if root.getroottree().xpath("//processing-instruction()"):
        raise EnvelopeError("a SOAP message has no processing instruction (SOAP 1.1 §3): "
                            "refused, nothing read from it")
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise EnvelopeError(f"not a SOAP 1.1 envelope (root {root.tag})")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if body is None or len(body) == 0:
        raise EnvelopeError("the envelope has no Body content")
    return body[0]


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def is_fault(element: etree._Element) -> bool:
    return element.tag == f"{{{SOAP_ENV}}}Fault"


def fault_info(element: etree._Element) -> dict[str, Any]:
    """kind, code, libelle, descriptif, message, severite, faultstring of a Fault."""
    info: dict[str, Any] = {"faultcode": element.findtext("faultcode") or "",
                            "faultstring": element.findtext("faultstring") or "",
                            "kind": "SOAP", "code": "", "libelle": "", "descriptif": "",
                            "message": "", "severite": None}
    detail = element.find("detail")
    if detail is not None:
        for child in detail:
            name = local(child)
            if name in FAULT_KINDS:
                info["kind"] = name
                for key in ("code", "libelle", "descriptif", "message"):
                    info[key] = (child.findtext(key) or "").strip()
                sev = (child.findtext("severite") or "").strip()
                info["severite"] = int(sev) if sev.lstrip("-").isdigit() else None
                break
    if info["kind"] == "SOAP":
        # Without detail, the class name in faultstring still tells the kind.
        tail = info["faultstring"].rsplit(".", 1)[-1]
        if tail in FAULT_KINDS:
            info["kind"] = tail
    return info


def values(element: etree._Element, wrapper: str) -> dict[str, str]:
    """The children of ``arg0``/``return`` as a dict (empty elements give '')."""
    inner = element.find(wrapper)
    if inner is None:
        return {}
    return {local(child): (child.text or "").strip() for child in inner}
