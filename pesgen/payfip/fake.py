"""A local fake PayFiP speaking the same SOAP contract, for tests and demos.

``/tpa/services/securite`` answers the three operations (and their functional faults:
R3 refdet, A2 mel, M3 minimum, P1 unknown idOp, P5 result not known yet…);
``/tpa/paiementws.web?idop=`` is a payment page that can pay by card (P), pay by
direct debit (V), refuse (R card, Z direct debit) or abandon (A), then POSTs
``idop=…`` to the operation's urlnotif like the real service; ``/tpa/paiement.web``
is the legacy TIPI page returning to urlcl. ``/_fake/…`` lets a test or a demo inject
a fault, lose or replay a notification, or alter an answer. Incoming requests and
outgoing answers are checked against pesgen's schema of the contract.

Loopback only: the fake keeps everything in memory and trusts its caller.
"""

from __future__ import annotations

import html
import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import soap
from .models import (
    EXER_RE,
    MAX_CENTS_URL,
    MAX_CENTS_WS,
    MEL_RE,
    MIN_CENTS,
    NUMCLI_RE,
    REFDET_ANY_CASE_RE,
    SAISIE_URL,
    SAISIE_WS,
    URL_RE,
)

log = logging.getLogger("pesgen.payfip.fake")

MAX_BODY = 64 * 1024
ACTIONS = {  # payment page button -> resultrans
    "card": "P", "debit": "V", "refuse": "R", "refuse-debit": "Z", "abandon": "A",
}
LABELS = {
    "card": "Payer par carte bancaire", "debit": "Payer par prélèvement unique",
    "refuse": "Simuler un refus (carte)", "refuse-debit": "Simuler un refus (prélèvement)",
    "abandon": "Abandonner",
}


class _Fault(Exception):
    def __init__(self, kind: str, code: str, libelle: str, status: int = 500) -> None:
        super().__init__(f"{code} {libelle}")
        self.kind, self.code, self.libelle, self.status = kind, code, libelle, status


def _functional(code: str, libelle: str) -> _Fault:
    return _Fault("FonctionnelleErreur", code, libelle)


@dataclass
class FakeOperation:
    id_op: str
    request: dict[str, str]
    created: datetime
    result: dict[str, str] | None = None
    tamper: dict[str, str] = field(default_factory=dict)
    notifications: list[str] = field(default_factory=list)  # outcome of each POST


def _paris_now() -> datetime:
    try:
        from zoneinfo import ZoneInfo

        return datetime.now(ZoneInfo("Europe/Paris"))
    except Exception:
        return datetime.now()


class FakePayfip:
    """The fake's state and its ASGI app (``.app``)."""

    def __init__(self, clients: dict[str, tuple[str, str, str]] | None = None,
                 notify: bool = True, notify_timeout: float = 5.0) -> None:
        # None: any well-formed client number exists (labels are made up).
        self.clients = clients
        self.notify = notify
        self.notify_timeout = notify_timeout
        self.operations: dict[str, FakeOperation] = {}
        self.faults: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._rng = random.SystemRandom()
        self.app = Starlette(routes=[
            Route("/tpa/services/securite", self.soap_endpoint, methods=["POST"]),
            Route("/tpa/paiementws.web", self.page, methods=["GET"]),
            Route("/tpa/paiementws.web", self.page_action, methods=["POST"]),
            Route("/tpa/paiement.web", self.tipi_page, methods=["GET"]),
            Route("/tpa/paiement.web", self.tipi_action, methods=["POST"]),
            Route("/_fake/operations", self.ctl_operations, methods=["GET"]),
            Route("/_fake/fault", self.ctl_fault, methods=["POST"]),
            Route("/_fake/tamper", self.ctl_tamper, methods=["POST"]),
            Route("/_fake/notifications", self.ctl_notifications, methods=["POST"]),
            Route("/_fake/notify", self.ctl_notify, methods=["POST"]),
            Route("/", self.home, methods=["GET"]),
        ])

    # ------------------------------------------------------------------ SOAP

    async def soap_endpoint(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return _soap(soap.bare_fault("soapenv:Client", "request too large"), 500)
        try:
            element = soap.parse(body)
        except soap.EnvelopeError as exc:
            return _soap(soap.bare_fault("soapenv:Client", str(exc)), 500)
        name = soap.local(element)
        if name not in soap.OPERATIONS:
            return _soap(soap.bare_fault("soapenv:Client", f"unknown operation {name}"), 500)
        errors = soap.schema_errors(element)
        try:
            if errors:
                raise _Fault("TechProtocolaireErreur", "PR1",
                             "Requête non conforme au contrat: " + "; ".join(errors))
            self._injected(name)
            values = soap.values(element, "arg0")
            if name == "creerPaiementSecurise":
                answer = [("idOp", self._create(values))]
            elif name == "recupererDetailPaiementSecurise":
                answer = self._detail(values.get("idOp", ""))
            else:
                answer = self._client(values.get("numCli", ""))
        except _Fault as f:
            return _soap(soap.fault(f.kind, f.code, f.libelle, severite=2 if
                                    f.kind == "FonctionnelleErreur" else 3), f.status)
        return _soap(soap.response(name, answer), 200)  # schema-checked on the way out

    def _injected(self, operation: str) -> None:
        with self.lock:
            for fault in self.faults:
                if fault["operation"] in ("*", operation) and fault["times"] > 0:
                    fault["times"] -= 1
                    raise _Fault(fault["kind"], fault["code"], fault["libelle"])

    def _create(self, v: dict[str, str]) -> str:
        numcli = v.get("numcli", "")
        if not NUMCLI_RE.match(numcli):
            raise _functional("T1", "Numéro client invalide")
        if self.clients is not None and numcli not in self.clients:
            raise _functional("T2", "Le numéro client doit être pré-existant dans la base PayFiP")
        if not EXER_RE.match(v.get("exer", "")):
            raise _functional("E1", "Exercice invalide")  # code not documented publicly
        if not REFDET_ANY_CASE_RE.match(v.get("refdet", "")):
            raise _functional("R3", "Le format du paramètre REFDET n'est pas conforme")
        montant = v.get("montant", "")
        if not montant.isdigit():
            raise _functional("M1", "Le format du montant n'est pas conforme")
        if int(montant) < MIN_CENTS:
            raise _functional("M3", "Le montant doit être au minimum de 1 euro")
        if int(montant) > MAX_CENTS_WS:
            raise _functional("M5", "Le montant dépasse la limite autorisée")
        mel = v.get("mel", "")
        if not mel:
            raise _functional("A1", "Adresse mel non renseignée")
        if not (6 <= len(mel) <= 80 and MEL_RE.match(mel)):
            raise _functional("A2", "Adresse mel incorrecte")
        if v.get("saisie", "") not in SAISIE_WS:
            raise _functional("S1", "Mode de saisie invalide")
        if not URL_RE.match(v.get("urlnotif", "")):
            raise _functional("N1", "URL de notification non valide")
        if not URL_RE.match(v.get("urlredirect", "")):
            raise _functional("D1", "URL de redirection non valide")
        node = self._rng.getrandbits(48) | 0x010000000000  # multicast bit: not a MAC
        id_op = str(uuid.uuid1(node=node, clock_seq=self._rng.getrandbits(14)))
        with self.lock:
            self.operations[id_op] = FakeOperation(id_op, dict(v), _paris_now())
        log.info("fake PayFiP: operation %s created", id_op)
        return id_op

    def _detail(self, id_op: str) -> list[tuple[str, str]]:
        with self.lock:
            op = self.operations.get(id_op)
            if op is None:
                raise _functional("P1", "IdOp incorrect")
            if op.result is None:
                raise _functional("P5", "Résultat de la transaction non connu")
            values = {**op.request, **op.result, "idOp": id_op, **op.tamper}
        return [(name, values.get(name, "")) for name in soap.DETAIL_FIELDS
                if name in values and values[name] is not None]

    def _client(self, numcli: str) -> list[tuple[str, str]]:
        if not NUMCLI_RE.match(numcli):
            raise _functional("T1", "Numéro client invalide")
        if self.clients is None:
            labels = ("COLLECTIVITE DE TEST", "REGIE DE TEST", "PAYFIP FAKE")
        elif numcli in self.clients:
            labels = self.clients[numcli]
        else:
            raise _functional("T2", "Le numéro client doit être pré-existant dans la base PayFiP")
        return [("libelleN1", labels[0]), ("libelleN2", labels[1]), ("libelleN3", labels[2]),
                ("numcli", numcli)]

    # ------------------------------------------------------------------ payment page

    async def page(self, request: Request) -> Response:
        id_op = _param(request.query_params, "idop")
        with self.lock:
            op = self.operations.get(id_op or "")
        if op is None:
            return _page("PayFiP (fake)", "<p>Opération inconnue (P1 IdOp incorrect).</p>", 404)
        if op.result is not None:
            return _page("PayFiP (fake)", "<p>Cette opération a déjà été utilisée.</p>", 409)
        r = op.request
        buttons = "".join(
            f'<button type="submit" name="action" value="{a}">{html.escape(label)}</button> '
            for a, label in LABELS.items())
        body = (f"<p>Objet : {html.escape(r.get('objet', ''))}<br>"
                f"Référence : {html.escape(r.get('refdet', ''))}<br>"
                f"Montant : {_euros(r.get('montant', '0'))} EUR</p>"
                f'<form method="post" action="paiementws.web">'
                f'<input type="hidden" name="idop" value="{html.escape(id_op or "")}">'
                f"{buttons}</form>")
        return _page("PayFiP (fake): paiement", body)

    async def page_action(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body())[:MAX_BODY].decode("utf-8", "replace")))
        id_op, action = form.get("idop", ""), form.get("action", "")
        if action not in ACTIONS:
            return _page("PayFiP (fake)", "<p>Action inconnue.</p>", 400)
        try:
            op = self.conclude(id_op, action)
        except KeyError:
            return _page("PayFiP (fake)", "<p>Opération inconnue (P1 IdOp incorrect).</p>", 404)
        except ValueError:
            return _page("PayFiP (fake)", "<p>Cette opération a déjà été utilisée.</p>", 409)
        # Notify (server to server) before showing the return button, so a demo or a test
        # sees the payment recorded as soon as this page is answered.
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(self.send_notification, op.id_op)
        target = html.escape(op.request.get("urlredirect", ""))
        body = (f"<p>Transaction terminée : {ACTIONS[action]}.</p>"
                f'<form method="post" action="{target}">'
                f'<input type="hidden" name="idop" value="{html.escape(op.id_op)}">'
                f'<button type="submit">Retour au site</button></form>')
        return _page("PayFiP (fake): résultat", body)

    def conclude(self, id_op: str, action: str) -> FakeOperation:
        """Record the family's choice on the payment page. KeyError: unknown idOp;
        ValueError: already used."""
        code = ACTIONS[action]
        now = _paris_now()
        with self.lock:
            op = self.operations[id_op]
            if op.result is not None:
                raise ValueError(id_op)
            op.result = {"resultrans": code, "dattrans": now.strftime("%d%m%Y"),
                         "heurtrans": now.strftime("%H%M")}
            if code in ("P", "V"):
                op.result["numauto"] = f"FAKE{self._rng.randrange(10**8):08d}"
        log.info("fake PayFiP: operation %s concluded (%s)", id_op, code)
        return op

    def send_notification(self, id_op: str, force: bool = False) -> str:
        """POST ``idop=…`` to the operation's urlnotif; returns the outcome."""
        with self.lock:
            op = self.operations[id_op]
            url = op.request.get("urlnotif", "")
            if not (self.notify or force):
                op.notifications.append("not sent")
                return "not sent"
        try:
            answer = httpx.post(url, data={"idop": id_op}, timeout=self.notify_timeout,
                                trust_env=False)
            outcome = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            outcome = f"failed: {type(exc).__name__}"
        with self.lock:
            op.notifications.append(outcome)
        log.info("fake PayFiP: notification of %s: %s", id_op, outcome)
        return outcome

    # ------------------------------------------------------------------ legacy TIPI page

    async def tipi_page(self, request: Request) -> Response:
        q = {k.lower(): v for k, v in request.query_params.items()}
        error = _tipi_error(q)
        if error:
            return _page("TIPI (fake)", f"<p>{html.escape(error)}</p>", 400)
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in sorted(q.items()))
        buttons = "".join(f'<button type="submit" name="action" value="{a}">'
                          f"{html.escape(LABELS[a])}</button> "
                          for a in ("card", "refuse", "abandon"))
        body = (f"<p>Référence : {html.escape(q['refdet'])}<br>Montant : "
                f"{_euros(q['montant'])} EUR</p>"
                f'<form method="post" action="paiement.web">{hidden}{buttons}</form>')
        return _page("TIPI (fake): paiement", body)

    async def tipi_action(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body())[:MAX_BODY].decode("utf-8", "replace")))
        action = form.pop("action", "")
        if action not in ("card", "refuse", "abandon") or _tipi_error(form):
            return _page("TIPI (fake)", "<p>Requête invalide.</p>", 400)
        now = _paris_now()
        back: dict[str, str] = {k: form[k] for k in ("numcli", "exer", "refdet", "objet",
                                                     "montant", "mel", "saisie") if k in form}
        back["resultrans"] = ACTIONS[action]
        if action == "card":
            back["numauto"] = f"FAKE{self._rng.randrange(10**8):08d}"
        back["dattrans"], back["heurtrans"] = now.strftime("%d%m%Y"), now.strftime("%H%M")
        sep = "&" if "?" in form["urlcl"] else "?"
        return RedirectResponse(form["urlcl"] + sep + urlencode(back), status_code=303)

    # ------------------------------------------------------------------ control (tests, demos)

    async def home(self, request: Request) -> Response:
        return _page("PayFiP (fake)", "<p>Fake PayFiP for pesgen tests and demos. SOAP at "
                     "<code>/tpa/services/securite</code>.</p>")

    async def ctl_operations(self, request: Request) -> Response:
        with self.lock:
            rows = [{"idOp": op.id_op, "refdet": op.request.get("refdet"),
                     "montant": op.request.get("montant"),
                     "resultrans": (op.result or {}).get("resultrans"),
                     "notifications": list(op.notifications)}
                    for op in self.operations.values()]
        return JSONResponse(rows)

    async def ctl_fault(self, request: Request) -> Response:
        data = await _json(request)
        fault = {"operation": data.get("operation", "*"),
                 "kind": data.get("kind", "TechDysfonctionnementErreur"),
                 "code": str(data.get("code", "999")),
                 "libelle": data.get("libelle", "Erreur technique"),
                 "times": int(data.get("times", 1))}
        if fault["kind"] not in soap.FAULT_KINDS:
            return JSONResponse({"error": f"kind must be one of {soap.FAULT_KINDS}"}, 400)
        with self.lock:
            self.faults.append(fault)
        return JSONResponse(fault)

    async def ctl_tamper(self, request: Request) -> Response:
        data = await _json(request)
        with self.lock:
            op = self.operations.get(str(data.get("idop", "")))
            if op is None:
                return JSONResponse({"error": "unknown idop"}, 404)
            op.tamper.update({k: str(v) for k, v in dict(data.get("fields", {})).items()
                              if k in soap.DETAIL_FIELDS})
            return JSONResponse({"idOp": op.id_op, "tamper": op.tamper})

    async def ctl_notifications(self, request: Request) -> Response:
        data = await _json(request)
        with self.lock:
            self.notify = bool(data.get("enabled", True))
        return JSONResponse({"enabled": self.notify})

    async def ctl_notify(self, request: Request) -> Response:
        """Send (again) the notification of an operation: a replay."""
        from starlette.concurrency import run_in_threadpool

        data = await _json(request)
        id_op = str(data.get("idop", ""))
        with self.lock:
            known = id_op in self.operations
        if not known:
            return JSONResponse({"error": "unknown idop"}, 404)
        outcome = await run_in_threadpool(self.send_notification, id_op, True)
        return JSONResponse({"idOp": id_op, "notification": outcome})


# ---------------------------------------------------------------------- helpers


def _soap(body: bytes, status: int) -> Response:
    return Response(body, status_code=status, media_type=soap.CONTENT_TYPE)


def _param(params: Any, name: str) -> str | None:
    for key, value in params.items():
        if key.lower() == name:
            return value
    return None


async def _json(request: Request) -> dict[str, Any]:
    try:
        data = json.loads((await request.body())[:MAX_BODY] or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _euros(cents: str) -> str:
    value = int(cents) if cents.isdigit() else 0
    return f"{value // 100},{value % 100:02d}"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
                        f"<title>{html.escape(title)}</title></head><body>"
                        f"<h1>{html.escape(title)}</h1>{body}</body></html>", status_code=status)


def _tipi_error(q: dict[str, str]) -> str | None:
    if not NUMCLI_RE.match(q.get("numcli", "")):
        return "Numéro client invalide"
    if not REFDET_ANY_CASE_RE.match(q.get("refdet", "")):
        return "Le format du paramètre REFDET n'est pas conforme"
    montant = q.get("montant", "")
    if not montant.isdigit() or not MIN_CENTS <= int(montant) <= MAX_CENTS_URL:
        return "Montant invalide"
    if q.get("saisie", "") not in SAISIE_URL:
        return "Mode de saisie invalide"
    if not URL_RE.match(q.get("urlcl", "")):
        return "URL de retour invalide"
    return None
