"""``pesgen payfip serve``: the ASGI service PayFiP notifies, and the page families
come back to.

``POST /payfip/notification`` (urlnotif) carries ``idop=…`` and nothing else, unsigned:
it only says "ask me about this idOp". The service pulls the result over SOAP from the
endpoint the operation was created on, checks it against the operation pesgen issued
and records it once. ``/payfip/retour`` (urlredirect) does the same, then shows the
family the outcome. An idOp pesgen never issued is rejected (404) and recorded as an
anomaly. Logs carry idOps and outcomes, never amounts, names or addresses.

Forged notifications cannot make pesgen pay anything, but each unknown idOp costs a
store write. A client address that sends more than ``UNKNOWN_LIMIT`` unknown idOps in
``UNKNOWN_WINDOW`` seconds gets 429 for the next unknown ones, which are no longer
recorded (one warning per window says how many were dropped). Known idOps are always
processed, whoever sends them: a genuine notification is never refused by the limit.

A request waits for the state store at most ``store_wait`` seconds in each of its
transactions (``serve --store-wait``, default ``STORE_WAIT``), not ``store_lock_timeout``
(10 minutes): on SQLite an export holds the store's lock while it renders, validates
and records its files (about 9 s at 100 000 invoices), and PayFiP's HTTP client gives
up on a slow answer long before. On PostgreSQL an export holds nothing a notification
needs; the bound there is on the rows of the operation and its invoice that another
transaction holds (a pesgen command recording for the same invoice, a session left
open), each statement. Past it, nothing is recorded: 503, and a warning naming the idOp
says that ``pesgen payfip reconcile`` records the result (the operation stays pending,
as for a lost notification).
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..errors import StoreLocked
from ..store import Store
from . import ledger, service
from .models import IDOP_RE

log = logging.getLogger("pesgen.payfip")

MAX_BODY = 4096
UNKNOWN_LIMIT = 30  # unknown idOps recorded per client address and window
UNKNOWN_WINDOW = 60.0  # seconds
STORE_WAIT = 5.0  # seconds a request waits for the state store's lock, each transaction
STATUS_TEXT = {
    "paid": "Votre paiement a été enregistré. Merci.",
    "test-paid": "Paiement de test (mode test ou activation) : aucune somme n'est encaissée "
                 "et la facture reste à payer.",
    "refused": "Le paiement a été refusé. Vous pouvez réessayer avec un nouveau lien.",
    "abandoned": "Le paiement a été abandonné.",
    "pending": "Le résultat du paiement n'est pas encore connu ; il sera pris en compte "
               "automatiquement.",
}
# the operation's title was cancelled (`runs cancel`): whatever the result, nothing can be
# applied to it, and a new link for it is not to be asked for
CANCELLED_TEXT = ("Ce titre a été annulé par la régie : aucun paiement ne peut lui être "
                  "appliqué. Si une somme a été prélevée, la régie reviendra vers vous pour "
                  "la rembourser ou l'affecter.")


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


class UnknownLimiter:
    """Counts the unknown idOps each client address sent in a sliding window."""

    def __init__(self, limit: int = UNKNOWN_LIMIT, window: float = UNKNOWN_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: dict[str, deque[float]] = {}
        self._dropped_since: dict[str, float] = {}
        self._lock = threading.Lock()

    def _recent(self, host: str, now: float) -> deque[float]:
        times = self._seen.setdefault(host, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def allows(self, host: str) -> bool:
        """May one more unknown idOp from ``host`` be recorded now?"""
        with self._lock:
            now = self.clock()
            if len(self._seen) > 10_000:  # addresses seen once, long ago
                for key in [k for k in self._seen if not self._recent(k, now)]:
                    del self._seen[key]
                    self._dropped_since.pop(key, None)
            return len(self._recent(host, now)) < self.limit

    def unknown(self, host: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent(host, now).append(now)

    def dropped(self, host: str) -> bool:
        """Note one idOp not recorded; True for the first since ``host`` went over."""
        with self._lock:
            now = self.clock()
            since = self._dropped_since.get(host)
            first = since is None or now - since > self.window
            if first:
                self._dropped_since[host] = now
            return first


def create_app(store: Store, factory: service.ClientFactory,
               limiter: UnknownLimiter | None = None,
               store_wait: float = STORE_WAIT) -> Starlette:
    limiter = limiter or UnknownLimiter()

    def bounded(function: Callable[..., Any], *args: Any) -> Any:
        # in the request's worker thread: its transactions wait at most store_wait
        with store.waits_at_most(store_wait):
            return function(*args)

    # what held the request up: on SQLite the store's one write lock (an export's while
    # it records its run); on PostgreSQL, where an export holds nothing a notification
    # needs, the rows of the operation or its invoice another transaction locked
    held = ("another pesgen run (an export) held the state store's lock"
            if store.engine.dialect.name == "sqlite" else
            "another transaction held its rows in the state store (a pesgen command "
            "recording for the same invoice, or another program's session)")

    def busy(source: str, id_op: str, seconds: float) -> None:
        log.warning("payfip %s: operation %s: not recorded now: %s for %g s (payfip serve "
                    "--store-wait); the operation stays pending: `pesgen payfip "
                    "reconcile` records its result", source, id_op, held, seconds)

    async def process(request: Request, source: str
                      ) -> tuple[int, str, str | None, str | None]:
        """HTTP code, text, status of the operation, and its id when it is known."""
        id_op = await _idop(request)
        if not id_op or not IDOP_RE.match(id_op):
            return 400, "missing or malformed idop", None, None
        host = request.client.host if request.client else "?"
        record = limiter.allows(host)
        try:
            outcome = await run_in_threadpool(bounded, service.handle, store, id_op, source,
                                              factory, record)
        except StoreLocked as exc:
            busy(source, id_op, exc.seconds)
            return 503, "state store busy: result not recorded yet; will be reconciled", \
                "pending", None
        if outcome.action == "unknown-idop":
            if not record:
                if limiter.dropped(host):
                    log.warning("payfip %s: more than %d unknown idOps from %s within %gs: "
                                "answering 429, not recording them", source, limiter.limit,
                                host, limiter.window)
                return 429, "too many unknown operations", None, None
            limiter.unknown(host)
        log.info("payfip %s: %s -> %s", source, id_op, outcome.action)
        if outcome.action == "unknown-idop":
            return 404, "unknown operation", None, None
        if outcome.action == "error":
            # PayFiP could not be asked; the sweep (pesgen payfip reconcile) will.
            return 503, "result not available yet; will be reconciled", "pending", id_op
        status = outcome.status if outcome.action != "pending" else "pending"
        return 200, "OK", status, id_op

    async def notification(request: Request) -> Response:
        code, text, _, _ = await process(request, "notification")
        return PlainTextResponse(text, status_code=code)

    async def retour(request: Request) -> Response:
        code, text, status, id_op = await process(request, "return")
        if code in (400, 404, 429):
            return _page("Paiement", "Opération inconnue.", code)
        if id_op:
            try:
                cancelled = await run_in_threadpool(bounded, ledger.title_cancelled, store,
                                                    id_op)
            except StoreLocked:
                # the result is recorded, but whether its title stands is not known now:
                # claim neither (the family sees the page of a result not known yet)
                cancelled, status = None, "pending"
            if cancelled:
                return _page("Paiement", CANCELLED_TEXT, 200)
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
