"""``pesgen payfip serve``: the ASGI service PayFiP notifies, and the page families
come back to.

``POST /payfip/notification`` (urlnotif) carries ``idop=…`` and nothing else, unsigned:
it only says "ask me about this idOp". The service pulls the result over SOAP from the
endpoint the operation was created on, checks it against the operation pesgen issued
and records it once. ``/payfip/retour`` (urlredirect) does the same, then shows the
family the outcome. An idOp pesgen never issued is rejected (404) and recorded as an
anomaly. Logs carry idOps and outcomes, never amounts, names or addresses.
"""

from __future__ import annotations

import html
import logging
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..store import Store
from . import service
from .models import IDOP_RE

log = logging.getLogger("pesgen.payfip")

MAX_BODY = 4096
STATUS_TEXT = {
    "paid": "Votre paiement a été enregistré. Merci.",
    "refused": "Le paiement a été refusé. Vous pouvez réessayer avec un nouveau lien.",
    "abandoned": "Le paiement a été abandonné.",
    "pending": "Le résultat du paiement n'est pas encore connu ; il sera pris en compte "
               "automatiquement.",
}


async def _idop(request: Request) -> str | None:
    """``idop`` from the query or a form body, whatever the key's case (sources differ)."""
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return None
        pairs += parse_qsl(body.decode("utf-8", "replace"))
    found = {v for k, v in pairs if k.lower() == "idop"}
    return found.pop() if len(found) == 1 else None


def create_app(store: Store, factory: service.ClientFactory) -> Starlette:
    async def process(request: Request, source: str) -> tuple[int, str, str | None]:
        id_op = await _idop(request)
        if not id_op or not IDOP_RE.match(id_op):
            return 400, "missing or malformed idop", None
        outcome = await run_in_threadpool(service.handle, store, id_op, source, factory)
        log.info("payfip %s: %s -> %s", source, id_op, outcome.action)
        if outcome.action == "unknown-idop":
            return 404, "unknown operation", None
        if outcome.action == "error":
            # PayFiP could not be asked; the sweep (pesgen payfip reconcile) will.
            return 503, "result not available yet; will be reconciled", "pending"
        status = outcome.status if outcome.action != "pending" else "pending"
        return 200, "OK", status

    async def notification(request: Request) -> Response:
        code, text, _ = await process(request, "notification")
        return PlainTextResponse(text, status_code=code)

    async def retour(request: Request) -> Response:
        code, text, status = await process(request, "return")
        if code == 404 or code == 400:
            return _page("Paiement", "Opération inconnue.", code)
        message = STATUS_TEXT.get(status or "", "Le paiement n'a pas été enregistré ; la "
                                  "régie vérifiera l'opération.")
        return _page("Paiement", message, 200)

    async def health(request: Request) -> Response:
        return PlainTextResponse("OK")

    return Starlette(routes=[
        Route("/payfip/notification", notification, methods=["POST", "GET"]),
        Route("/payfip/retour", retour, methods=["POST", "GET"]),
        Route("/healthz", health, methods=["GET"]),
    ])


def _page(title: str, text: str, status: int) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
                        f"<title>{html.escape(title)}</title></head><body><p>"
                        f"{html.escape(text)}</p></body></html>", status_code=status)
