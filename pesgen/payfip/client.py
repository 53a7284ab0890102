"""The PayFiP web-service client: creerPaiementSecurise, recupererDetailPaiementSecurise,
recupererDetailClient, against a configurable endpoint (the real one or the fake).

Requests are validated (``models``) and schema-checked (``soap``) before anything is
sent. Answers are read strictly where it matters (a fault, the operation answered) and
tolerantly where the live service is known to vary (element case in the detail).
"""

from __future__ import annotations

import logging
import socket
import ssl

import httpx

from .._display import shown_repr
from . import soap
from .endpoint import (  # noqa: F401 - re-exported: where they were
    DEFAULT_ENDPOINT,
    DEFAULT_TIMEOUT,
    check_endpoint,
    payment_page,
    shown_url,
)
from .errors import PayfipConfigError, PayfipFault, PayfipUnavailable
from .models import (
    ANSWER_RULES,
    IDOP_RE,
    ClientDetail,
    PaymentDetail,
    PaymentRequest,
    answer_problems,
    check_numcli,
)

log = logging.getLogger("pesgen.payfip")

class PayfipClient:
    """One endpoint; every call has a bounded timeout and raises ``PayfipFault``
    (or ``PayfipUnavailable``) instead of returning a half answer."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout: float = DEFAULT_TIMEOUT,
                 http: httpx.Client | None = None) -> None:
        self.endpoint = check_endpoint(endpoint)
        self.soap_url = f"{self.endpoint}/services/securite"
        self.timeout = timeout
        self._http = http
        self._owned = http is None

    def __enter__(self) -> PayfipClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None and self._owned:
            self._http.close()
            self._http = None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            # No proxies from the environment: payment calls go where they are configured.
            self._http = httpx.Client(timeout=self.timeout, trust_env=False,
                                      follow_redirects=False)
        return self._http

    def payment_url(self, id_op: str) -> str:
        return payment_page(self.endpoint, id_op)

    # ------------------------------------------------------------------ operations

    def creer_paiement_securise(self, req: PaymentRequest) -> str:
        """Create an operation; returns its idOp."""
        req.validated()
        element = self._call("creerPaiementSecurise", req.soap_fields())
        # the spelling of the answer's keys varies (idOp, idop), as in the detail below
        id_op = _tolerant(soap.values(element, "return"), ("idOp",)).get("idOp", "")
        pattern, form = ANSWER_RULES["idOp"]  # the detail's idOp has the same form
        if not pattern.match(id_op):
            said = f"idOp {shown_repr(id_op, 64)} is not {form}" if id_op else "idOp is missing"
            raise _refused("creerPaiementSecurise", "", [said])
        return id_op

    def recuperer_detail_paiement_securise(self, id_op: str) -> PaymentDetail:
        """The trusted result of an operation. Raises ``PayfipFault`` P5 while the result
        is not known yet, P1 for an unknown or purged idOp."""
        if not IDOP_RE.match(id_op or ""):
            raise PayfipConfigError(f"idOp {id_op!r} is not an operation identifier")
        element = self._call("recupererDetailPaiementSecurise", [("idOp", id_op)],
                             retry=True)
        values = _tolerant(soap.values(element, "return"), soap.DETAIL_FIELDS)
        # every value the answer carries has its documented format, or none is used
        problems = answer_problems(values)
        if problems:
            raise _refused("recupererDetailPaiementSecurise", f" of operation {id_op}",
                           problems)
        return PaymentDetail.from_fields(values)

    def recuperer_detail_client(self, numcli: str) -> ClientDetail:
        problems = check_numcli(numcli)
        if problems:
            from .errors import PayfipRequestInvalid

            raise PayfipRequestInvalid(problems=problems)
        element = self._call("recupererDetailClient", [("numCli", numcli)], retry=True)
        return ClientDetail(**_tolerant(soap.values(element, "return"), soap.CLIENT_FIELDS))

    # ------------------------------------------------------------------ transport

    def _post(self, body: bytes) -> httpx.Response:
        return self.http.post(self.soap_url, content=body,
                              headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": '""'})

    def _call(self, operation: str, values: list[tuple[str, str]],
              retry: bool = False):  # -> etree._Element
        """Send one SOAP call. ``retry``: a lookup (idempotent) is sent once more when
        the connection broke before an answer came (a kept connection the server closed
        meanwhile); a creation never is (PayFiP may have made the operation)."""
        body = soap.request(operation, values)  # schema-checked before sending
        where = f"PayFiP {operation}: {shown_url(self.soap_url)}"
        try:
            try:
                answer = self._post(body)
            except _BROKEN:
                if not retry:
                    raise
                log.info("PayFiP %s: the connection broke before an answer; asked again",
                         operation)
                answer = self._post(body)
        except httpx.TimeoutException:
            raise PayfipUnavailable(f"{where}: no answer: timeout (none within "
                                    f"{self.timeout:g} s)", "timeout") from None
        except httpx.HTTPError as exc:
            reason = _transport_reason(exc)
            # the exception's own text may quote the URL: only its kind is said
            raise PayfipUnavailable(f"{where}: no answer: {reason}", reason) from None
        try:
            element = soap.parse(answer.content)
        except soap.EnvelopeError as exc:
            reason = f"HTTP {answer.status_code}"
            raise PayfipUnavailable(f"{where}: no answer: {reason} without a SOAP answer "
                                    f"({exc})", reason) from None
        if soap.is_fault(element):
            info = soap.fault_info(element)
            text = info["libelle"] or info["descriptif"] or info["faultstring"]
            raise PayfipFault(f"PayFiP {operation}: {info['kind']} {info['code']}: {text}".
                              replace("  ", " "), kind=info["kind"], code=info["code"],
                              libelle=info["libelle"], descriptif=info["descriptif"],
                              severite=info["severite"])
        if soap.local(element) != f"{operation}Response":
            raise PayfipFault(f"PayFiP {operation}: unexpected answer "
                              f"<{soap.local(element)}>", kind="Protocol")
        errors = soap.schema_errors(element)
        if errors:
            # The live service's spelling is known to vary (idop/idOp); read on, but say so.
            log.warning("PayFiP %s answer breaks the contract schema: %s", operation,
                        "; ".join(errors))
        return element


# a connection that broke before an answer came: what a kept connection the server
# closed meanwhile gives (a timeout is not one: asking again would wait as long again)
_BROKEN = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def _refused(operation: str, about: str, problems: list[str]) -> PayfipFault:
    """PayFiP's answer refused over its fields' format (``problems``: one line each, the
    values escaped and cut): nothing of it is used or recorded."""
    return PayfipFault(
        f"PayFiP {operation}{about}: the answer is refused, nothing of it was recorded: "
        + "; ".join(problems) + " (rule payfip.answer)", kind="Protocol", code="answer")


def _transport_reason(exc: httpx.HTTPError) -> str:
    """What kept PayFiP from answering, in words support can act on: ``connection
    refused``, ``name not resolved``, else the failure's class (``ReadError``…)."""
    cause: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> the socket's OSError
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "name not resolved"
        if isinstance(cause, ssl.SSLError):
            return "TLS failure"
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__


def _tolerant(values: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """Map answer keys to the contract's spelling, ignoring case (idop -> idOp)."""
    by_lower = {n.lower(): n for n in names}
    out: dict[str, str] = {}
    for key, value in values.items():
        name = by_lower.get(key.lower())
        if name and name not in out:
            out[name] = value
    return out
