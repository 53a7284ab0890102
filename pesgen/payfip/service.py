"""PayFiP use cases: create a payment link for an exported invoice, handle one idOp
(notification, return or sweep), and reconcile what is still open.

The notification is not signed, so it is only a hint: the result is always pulled
from PayFiP over SOAP, and checked against the operation pesgen issued.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _budget
from ..errors import (
    MappingError,
    MappingStopped,
    PesgenError,
    Problem,
    StateError,
    StoreLocked,
    UsageError,
)
from ..keys import invoice_key
from ..mapping import Mapping, load_mapping, load_recorded_mapping
from ..store import Store, stopped_waiting, unpack
from . import claims, ledger
from .endpoint import DEFAULT_TIMEOUT, payment_page
from .errors import LinksRefused, PayfipConfigError, PayfipFault, PayfipRequestInvalid
from .models import (
    MAX_CENTS_URL,
    PaymentRequest,
    cents_text,
    check_montant,
    check_refdet,
    check_url,
    method_said,
)
from .settings import PayfipSettings, collectivity_scope, load_settings, rule_scope

if TYPE_CHECKING:  # the client needs httpx (the [payfip] extra): imported where used
    from .client import PayfipClient

log = logging.getLogger("pesgen.payfip")

ClientFactory = Callable[[str], "PayfipClient"]


def default_factory(endpoint_override: str | None = None,
                    timeout: float = DEFAULT_TIMEOUT) -> ClientFactory:
    """Clients for an operation's recorded endpoint, or for one forced endpoint."""
    def make(endpoint: str) -> PayfipClient:
        from .client import PayfipClient

        return PayfipClient(endpoint_override or endpoint, timeout=timeout)
    return make


class KeptClients:
    """A client factory that keeps one client per endpoint for as long as it lives
    (``close`` closes them): the receiver (``payfip serve``) and the reconcile sweep ask
    PayFiP through it. A client made per notification loaded the system's certificates
    each time (0.1 s of CPU) and opened a new connection. Safe across the receiver's
    threads (an httpx client is; the dict is locked). A kept connection the server has
    closed meanwhile is retried for the result lookups only (``PayfipClient``: a lookup
    is idempotent, an operation's creation is never sent twice)."""

    def __init__(self, factory: ClientFactory) -> None:
        self.factory = factory
        self.clients: dict[str, PayfipClient] = {}
        self._lock = threading.Lock()

    def __call__(self, endpoint: str) -> PayfipClient:
        with self._lock:
            if endpoint not in self.clients:
                self.clients[endpoint] = self.factory(endpoint)
            return self.clients[endpoint]

    def close(self) -> None:
        with self._lock:
            clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> KeptClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Link:
    id_op: str
    url: str
    invoice: str
    refdet: str
    amount_cents: int
    saisie: str
    exer: str = ""
    notes: tuple[str, ...] = ()  # to show beside the link (the exer sent, when not the usual)


def refuse_paid(paid: dict[str, Any] | None, invoice: str, what: str) -> None:
    """Refuse to start a payment (``what``: a PayFiP link, a TIPI link) for an invoice
    PayFiP has paid (``paid``: its payment recorded paid, however a run wrote its number:
    ``Lookups.paid``): the family would pay twice, and the trésorerie refund one. Names
    the payment recorded: amount, date, operation (rule payfip.paid, exit 7). There is
    no override: a payment to undo is the trésorerie's to settle, not a new link's."""
    if not paid:
        return  # test-paid, refused, abandoned, expired, pending: not a payment
    cents = paid["paid_cents"] if paid["paid_cents"] is not None else paid["amount_cents"]
    amount = cents_text(cents)
    method = method_said(paid["method"])
    # money paid through a cancelled title that the trésorerie applied to this one
    applied = (f", through a cancelled title, applied by the trésorerie to the title of run "
               f"{paid['applied_run']}" if paid["applied_run"] else "")
    # its title cancelled since, the trésorerie's answer not recorded: where to record it
    number = paid.get("open_settlement")
    settle = (f"; its title was cancelled since (anomaly #{number}, paid-cancelled, not "
              "resolved): once the trésorerie has answered, record it: `pesgen payfip "
              f"anomalies resolve {number} --applied --note TEXT` (the money applied to the "
              "title due) or `--refunded` (refunded: the title due then gets its link)"
              if number is not None else "")
    raise StateError(
        f"invoice {invoice}: already paid through PayFiP: {amount}{method} on "
        f"{paid['paid_at']} (operation {paid['id_op']}{applied}); no {what}: the family would pay "
        f"twice (`pesgen payfip payments --history` shows the payment){settle}",
        [Problem("payfip.paid", f"paid {amount} on {paid['paid_at']} through PayFiP "
                 f"operation {paid['id_op']}: no {what} for a paid invoice", invoice=invoice)])


def refuse_unsettled(unsettled: dict[str, list[ledger.Unsettled]], invoice: str,
                     what: str) -> None:
    """Refuse to start a payment (``what``: a PayFiP link, a TIPI link) for an invoice
    whose cancelled title was paid through its link after the cancellation (a
    `run-cancelled` anomaly of an operation that may have collected money, not resolved
    yet: ``ledger.unsettled_payments``): the trésorerie applies that money to the title
    due or refunds it, and until it has answered a new payment could make the family pay
    twice (docs/payfip.md, anomaly table). Names each payment, its title, the anomaly
    and what to do (rule payfip.unsettled, exit 7, as payfip.paid). Resolving the
    anomaly (`pesgen payfip anomalies resolve`) lifts it. ``unsettled``: the
    collectivity's, by invoice key (``Lookups.unsettled``)."""
    found = unsettled.get(invoice_key(invoice))
    if found:
        raise _unsettled(invoice, found, f"no {what}")


def _unsettled(invoice: str, found: list[ledger.Unsettled], done: str) -> StateError:
    happened, advice = ledger.unsettled_words(found)
    return StateError(f"invoice {invoice}: {happened}; {done}: {advice}", [Problem(
        "payfip.unsettled", f"anomaly #{u.anomaly} (run-cancelled) not resolved: "
        f"{cents_text(u.cents)} paid through a cancelled title (run {u.run_id}, PayFiP "
        f"operation {u.id_op}): {done} until the trésorerie answers", invoice=invoice)
        for u in found])


def refuse_rejected(title: Any, rejected: dict[int, Any], what: str, db: str = "") -> None:
    """Refuse to start a payment (``what``: a PayFiP link, a TIPI link) of a title whose
    bordereau the trésorerie rejected (its Hélios status, `pesgen acquit --record`;
    ``rejected``: the rejected bordereaux of the title's run, ``ledger.rejected_bordereaux``)
    and that is not cancelled yet: the title is not in Hélios, and a family never pays a
    title the trésorerie does not hold (rule payfip.rejected, exit 7, as payfip.paid and
    payfip.cancelled). Names the rejection, its acquit and what to do next (``db``: the
    store's ``Store.db_option``, for its commands)."""
    ack = None if title is None else rejected.get(int(title.id_bord))
    if ack is None:
        return
    from ..acquit import acquit_arg

    where = f"IdBord {title.id_bord} of run {title.run_id}"
    raise StateError(
        f"invoice {title.invoice}: its title ({where}) is in a bordereau the trésorerie "
        f"rejected: {ack.outcome} ({ack.file}), not cancelled yet; no {what}: the trésorerie "
        f"does not hold the title, a family must not pay it. `pesgen acquit "
        f"{acquit_arg(ack.file)}{db}` gives the command that cancels the bordereau; then "
        "export the invoice again, and make the payment for its new title. If the "
        "trésorerie took the bordereau since, after a fix on its side, record its new "
        f"acknowledgement: `pesgen acquit FILE --record --replace{db}` (FILE: its new "
        "PES_ACQUIT)",
        [Problem("payfip.rejected", f"{where} rejected by the trésorerie: {ack.outcome}, "
                 f"not cancelled yet: no {what} for a title the trésorerie does not hold",
                 record=f"{ack.file}:{ack.line}", invoice=title.invoice)])


def refuse_other_budget(mapping: Mapping, title: Any, what: str) -> None:
    """Refuse a payment of a title exported by a run of another budget than the
    mapping's: each budget has its régie, its own PayFiP client number (numcli), so the
    mapping's would collect the money for the wrong one (rule payfip.budget, exit 7)."""
    c = mapping.collectivity
    if title is None or title.cod_bud == c.cod_bud:
        return
    raise StateError(
        f"invoice {title.invoice}: its title is in run {title.run_id} of budget "
        f"{title.cod_bud} (exercise {title.exercise}), and the mapping {mapping.path} is "
        f"budget {c.cod_bud}'s: no {what}: a payment goes to the régie of the title's "
        f"budget (its own PayFiP client number); give budget {title.cod_bud}'s mapping",
        [Problem("payfip.budget", f"title of budget {title.cod_bud} (run {title.run_id}), "
                 f"mapping of budget {c.cod_bud}: its numcli would collect another "
                 "budget's title", invoice=title.invoice,
                 mapping=mapping.where("collectivity", "cod_bud"))])


def exer_of(mapping: Mapping, settings: PayfipSettings, due: ledger.Due
            ) -> tuple[str, list[str]]:
    """The exer sent for a title, and the notes that say why when it is not the
    mapping's exercise: the title's exercise (its run's: the rôle's Exer in Hélios),
    unless the mapping sets payfip.exer (docs/payfip.md, "exer")."""
    c = mapping.collectivity
    title = f"invoice {due.invoice}: its title (run {due.run_id}) is of exercise {due.exercise}"
    if settings.exer is not None:
        if settings.exer == str(due.exercise):
            return settings.exer, []
        return settings.exer, [f"{title}; exer {settings.exer} sent, as payfip.exer sets it "
                               f"({mapping.where('payfip', 'exer')}) (docs/payfip.md, exer)"]
    if due.exercise == c.exercise:
        return str(due.exercise), []
    return str(due.exercise), [f"{title}, the mapping's ({mapping.path}) is of {c.exercise}: "
                               f"exer {due.exercise} sent, the title's (docs/payfip.md, exer)"]


def build_request(mapping: Mapping, settings: PayfipSettings, store: Store, invoice: str,
                  mel: str | None, notify_url: str | None, return_url: str | None,
                  what: str = "new link", urlcl: str | None = None,
                  lookups: Lookups | None = None
                  ) -> tuple[PaymentRequest, ledger.Due, list[str]]:
    """The creerPaiementSecurise arguments for an invoice of the mapping's collectivity,
    validated (every problem at once, naming the invoice and the field), the title's due
    and notes to show (exer: ``exer_of``). A title of another budget than the mapping's
    is refused first (``refuse_other_budget``), then an invoice already paid
    (``refuse_paid``; ``what`` the payment it would start), then one paid through its
    cancelled title's link after the cancellation, the trésorerie's answer not recorded
    yet (``refuse_unsettled``), then a title of a bordereau the trésorerie rejected
    (``refuse_rejected``). ``urlcl``: for the legacy
    TIPI URL protocol, whose one URL is urlcl (no urlnotif, no urlredirect) and whose
    maximum amount is its own; the request's URLs are then urlcl, checked as such.
    ``lookups``: what a batch of links reads once for all its invoices (``Lookups``)."""
    c = mapping.collectivity
    if lookups is None:
        lookups = Lookups(store, settings, c.siret, [invoice])
    title = ledger.active_title(store, c.siret, invoice)  # (a number ambiguous: refused)
    refuse_other_budget(mapping, title, what)
    # the payment records follow the number as the invoice's run recorded it (as given
    # when no active run holds it: a paid title since cancelled is said paid)
    refuse_paid(lookups.paid(invoice if title is None else title.invoice),
                invoice if title is None else title.invoice, what)
    # paid through a cancelled title's link after its cancellation, not settled yet: the
    # trésorerie may apply that money to this title (said before "in no active run")
    refuse_unsettled(lookups.unsettled(), invoice if title is None else title.invoice, what)
    # a title of a bordereau the trésorerie rejected is not in Hélios (no active title:
    # due_of says why below)
    refuse_rejected(title, {} if title is None else lookups.rejected(title.run_id), what,
                    store.db_option)
    due = ledger.due_of(store, c.siret, invoice, title)
    invoice = due.invoice  # as its run recorded it: `fa-1` given finds FA-1
    scope_c = collectivity_scope(c)
    scope = rule_scope(scope_c, invoice, due.amount, due.exercise, due.id_bord, due.id_pce,
                       due.run_id)
    problems: list[Problem] = []
    values: dict[str, str] = {}
    for name, rule in (("refdet", settings.refdet), ("objet", settings.objet)):
        try:
            value = rule(scope)
        except MappingStopped:
            raise
        except Exception as exc:  # a Jinja error inside the mapping's expression
            problems.append(Problem(f"payfip.{name}", f"{name}: expression failed: {exc}",
                                    invoice=invoice, mapping=rule.where))
            continue
        values[name] = "" if value is None else str(value).strip()
    refdet = values.get("refdet")
    if refdet and not check_refdet(refdet):
        problems += lookups.refdets(scope_c).clashes(invoice, refdet)
    if not settings.numcli:
        problems.append(Problem("payfip.numcli", "numcli: no PayFiP client number (set "
                                "payfip.numcli or collectivity.payfip_client)",
                                invoice=invoice, mapping=str(mapping.path)))
    mel_given = bool(mel)
    # the run's input is read as the run read it: with the mapping it recorded, not the
    # one given (another of the collectivity's, a CSV one for a JSON run, or edited since)
    recorded = None if mel_given else lookups.run_mapping(due.run_id)
    mel = mel or (lookups.payer_emails(due.run_id).email(invoice) if recorded else None)
    # a URL the mapping gives is refused naming its line (payfip.notify_url, return_url;
    # the return URL made beside the mapping's notify_url: that one)
    notify_where = (mapping.where("payfip", "notify_url")
                    if not notify_url and settings.notify_url else None)
    return_where = (mapping.where("payfip", "return_url")
                    if not return_url and settings.return_url else None)
    if urlcl is not None:  # the URL protocol: urlcl only (checked below)
        notify_url = return_url = urlcl
        notify_where = return_where = None
    notify_url = notify_url or settings.notify_url
    return_url = return_url or settings.return_url
    if not notify_url:
        raise PayfipConfigError("no notification URL: give --notify-url or set "
                                "payfip.notify_url (where `pesgen payfip serve` listens)")
    if not return_url:
        return_where = notify_where
        return_url = (notify_url[: -len("/notification")] + "/retour"
                      if notify_url.endswith("/notification") else notify_url)
    exer, notes = exer_of(mapping, settings, due)
    request = PaymentRequest(
        invoice=invoice, numcli=settings.numcli or "", exer=exer,
        refdet=values.get("refdet", ""), montant=due.amount_cents, mel=mel or "",
        objet=values.get("objet", ""), saisie=settings.mode, urlnotif=notify_url,
        urlredirect=return_url)
    failed = {p.rule for p in problems}
    where = {"payfip.refdet": settings.refdet.where, "payfip.objet": settings.objet.where,
             "payfip.urlnotif": notify_where, "payfip.urlredirect": return_where}
    found = request.problems()
    if urlcl is not None:
        # the URL protocol's own field and maximum, in place of the web service's
        found = [p for p in found if p.rule not in (
            "payfip.urlnotif", "payfip.urlredirect", "payfip.montant")]
        found += check_montant(request.montant, invoice, MAX_CENTS_URL)
        found += check_url("urlcl", urlcl, invoice)
    for p in found:
        if p.rule in failed:
            continue  # already reported: the expression itself failed
        if p.rule == "payfip.mel" and not mel_given:
            problems.append(_mel_problem(p, recorded, due.run_id, invoice, bool(request.mel)))
            continue
        problems.append(Problem(p.rule, p.message, invoice=invoice, mapping=where.get(p.rule)))
    if problems:
        raise PayfipRequestInvalid(f"invoice {invoice}: the PayFiP request is invalid; "
                                   "nothing was sent", problems)
    return request, due, notes


class RefdetIndex:
    """Which invoices of the collectivity already have a refdet, read once (a batch of
    links asked it per invoice: the refdet rule evaluated over every active title, 0.35 s
    a link at 20 000 titles): the refdets PayFiP operations were made with, of the
    collectivity or of its PayFiP client (numcli, its régie), oldest first; and the
    refdet the mapping's rule gives each active title, in the order of their runs."""

    def __init__(self, store: Store, settings: PayfipSettings,
                 scope_c: dict[str, Any]) -> None:
        self.settings = settings
        self.operations: dict[str, list[tuple[str, str]]] = {}  # refdet -> (invoice, idOp)
        for other, id_op, refdet in ledger.refdets_used(store, scope_c["siret"],
                                                        settings.numcli or ""):
            self.operations.setdefault(refdet, []).append((other, id_op))
        self.titles: dict[str, list[Any]] = {}  # refdet -> active titles the rule gives it
        for t in ledger.active_titles(store, scope_c["siret"]):
            try:
                value = settings.refdet(rule_scope(
                    scope_c, t.invoice, str(t.amount), int(t.exercise), t.id_bord, t.id_pce,
                    t.run_id))
            except MappingStopped:
                raise
            except Exception:  # the rule fails on that title: said when it is paid
                continue
            if value is not None:
                self.titles.setdefault(str(value).strip(), []).append(t)

    def clashes(self, invoice: str, refdet: str) -> list[Problem]:
        """The refdet must name one invoice (notes payfip.md §12): PayFiP's result names
        the debt by it, so another invoice of the collectivity (or of its PayFiP client)
        with the same refdet, one its operations were made for or an active title the
        mapping's rule gives it to, would let a payment be read as the other's
        (``FA-2026-00103`` and ``FA-202600103`` both give ``FA202600103`` by ``alnum``).
        One problem each, naming both invoices (rule payfip.refdet-unique). The invoice
        itself is the number as its run wrote it; an operation made for the same invoice
        written otherwise (case and surrounding spaces aside) is its own."""
        key = invoice_key(invoice)
        others: dict[str, str] = {}  # invoice -> where it has that refdet
        for other, id_op in self.operations.get(refdet, ()):
            if invoice_key(other) != key:
                others.setdefault(other, f"PayFiP operation {id_op} was made for it with it")
        for t in self.titles.get(refdet, ()):
            # another active title, even of a number written otherwise only by its case
            # (a store migrated from before schema 5 may hold both): its own payment record
            if t.invoice in others or t.invoice == invoice:
                continue
            others[t.invoice] = (f"the mapping's rule gives it to its title (run {t.run_id}, "
                                 f"IdBord {t.id_bord})")
        return [Problem("payfip.refdet-unique", f"refdet: {refdet!r} is also invoice "
                        f"{other}'s ({where}): a refdet must name one invoice, or a payment of "
                        f"one could be taken for the other's; change the mapping's "
                        f"payfip.refdet rule so that {invoice} and {other} get different ones",
                        invoice=invoice, mapping=self.settings.refdet.where)
                for other, where in others.items()]


class PayerEmails:
    """The payer's e-mail of each invoice of a run's recorded input, read once with the
    mapping the run recorded (its input format and its bindings invoice.number and
    payer.email): a link read the whole input for each invoice."""

    def __init__(self, store: Store, run_id: str, recorded: Mapping | None) -> None:
        # invoice key -> (number as written, e-mail), or _FAILED for a record whose
        # e-mail binding failed; None: no e-mail can be read (no binding, or a record's
        # number failed: every lookup answers None, as the one reading did)
        self.found: dict[str, list[tuple[str, Any]]] | None = None
        binding = recorded.bindings.get("payer", {}).get("email") if recorded else None
        number = recorded.bindings.get("invoice", {}).get("number") if recorded else None
        if recorded is None or binding is None or number is None:
            return
        from ..sources import read_invoices

        run = store.get_run(run_id)
        c = recorded.collectivity
        scope_c = {"name": c.name, "siret": c.siret, "exercise": c.exercise}
        found: dict[str, list[tuple[str, Any]]] = {}
        with tempfile.TemporaryDirectory(prefix="pesgen-payfip-") as tmp:
            path = Path(tmp) / Path(run["input_name"]).name
            path.write_bytes(unpack(run["input_blob"]))
            for src in read_invoices(path, recorded.input):
                scope: dict[str, Any] = {"invoice": src.record, "collectivity": scope_c}
                try:
                    written = str(_budget.evaluated(number.where, number.evaluate, src.record,
                                                     scope) or "").strip()
                except MappingStopped:
                    raise
                except Exception:
                    return
                try:
                    value = _budget.evaluated(binding.where, binding.evaluate, src.record,
                                              scope)
                except MappingStopped:
                    raise
                except Exception:
                    value = _FAILED
                found.setdefault(invoice_key(written), []).append((written, value))
        self.found = found

    def email(self, invoice: str) -> str | None:
        """The invoice's payer e-mail: the record of the invoice written exactly so, else
        the only one with its key (a run an older pesgen recorded may hold look-alike
        numbers apart, migration 6 kept both, and the e-mail of one family must not go to
        the other's); None when there is none, or several, or its binding failed."""
        if self.found is None:
            return None
        records = self.found.get(invoice_key(invoice), [])
        if any(value is _FAILED for _, value in records):
            return None
        exact = [value for written, value in records if written == invoice.strip()]
        alike = [value for _, value in records]
        found = exact or (alike if len(alike) == 1 else [])
        if len(found) != 1:
            return None
        return str(found[0]).strip() if found[0] else None


_FAILED = object()  # a record whose payer.email binding failed


class Lookups:
    """What links read of the store and of the runs' inputs, read once for a batch of
    invoices: the refdets in use (``RefdetIndex``, made when a refdet is first checked),
    each run's recorded mapping and payer e-mails (``PayerEmails``), the bordereaux of
    each run the trésorerie rejected, the payments recorded paid of the batch's invoices
    (``invoices``, as given: ``ledger.paid_by_key``) and the payments through cancelled
    titles not settled yet (``ledger.unsettled_payments``)."""

    def __init__(self, store: Store, settings: PayfipSettings, id_coll: str,
                 invoices: Sequence[str] = ()) -> None:
        self.store, self.settings, self.id_coll = store, settings, id_coll
        self._invoices = list(invoices)
        self._paid_keys: set[str] = set()  # the keys whose payments were read
        self._refdets: RefdetIndex | None = None
        self._mappings: dict[str, Mapping | None] = {}
        self._emails: dict[str, PayerEmails] = {}
        self._rejected: dict[str, dict[int, Any]] = {}
        self._unsettled: dict[str, list[ledger.Unsettled]] | None = None
        self._paid: dict[str, dict[str, Any]] | None = None

    def refdets(self, scope_c: dict[str, Any]) -> RefdetIndex:
        if self._refdets is None:
            self._refdets = RefdetIndex(self.store, self.settings, scope_c)
        return self._refdets

    def run_mapping(self, run_id: str) -> Mapping | None:
        if run_id not in self._mappings:
            self._mappings[run_id] = run_mapping(self.store, run_id)
        return self._mappings[run_id]

    def rejected(self, run_id: str) -> dict[int, Any]:
        """The bordereaux of the run the trésorerie rejected (``ledger.rejected_bordereaux``)."""
        if run_id not in self._rejected:
            self._rejected[run_id] = ledger.rejected_bordereaux(self.store, run_id)
        return self._rejected[run_id]

    def paid(self, invoice: str) -> dict[str, Any] | None:
        """The invoice's payment PayFiP recorded paid, however a run wrote its number
        (``ledger.paid_by_key``, read once for the batch's invoices; an invoice outside
        it, read then), or None."""
        key = invoice_key(invoice)
        if self._paid is None:
            self._paid, wanted = {}, [*self._invoices, invoice]
        elif key in self._paid_keys:
            return self._paid.get(key)
        else:
            wanted = [invoice]
        self._paid.update(ledger.paid_by_key(self.store, self.id_coll, wanted))
        self._paid_keys |= {invoice_key(i) for i in wanted}
        return self._paid.get(key)

    def unsettled(self) -> dict[str, list[ledger.Unsettled]]:
        """The collectivity's payments through cancelled titles not settled yet, by
        invoice key (``ledger.unsettled_payments``), read once for the batch."""
        if self._unsettled is None:
            self._unsettled = ledger.unsettled_payments(self.store, self.id_coll)
        return self._unsettled

    def payer_emails(self, run_id: str) -> PayerEmails:
        if run_id not in self._emails:
            self._emails[run_id] = PayerEmails(self.store, run_id, self.run_mapping(run_id))
        return self._emails[run_id]


def _mel_problem(problem: Problem, recorded: Mapping | None, run_id: str, invoice: str,
                 found: bool) -> Problem:
    """The mel problem of an address read from the run's input: how to give another
    (--mel) and where the run's recorded mapping reads it (bindings.payer.email,
    file:line of its recorded text)."""
    if recorded is None:
        return Problem(problem.rule, f"{problem.message}: the mapping run {run_id} recorded "
                       "cannot be loaded by this pesgen to read the payer's e-mail from its "
                       "input (`pesgen regenerate` says why); give one with --mel",
                       invoice=invoice)
    binding = recorded.bindings.get("payer", {}).get("email")
    if binding is None:
        return Problem(problem.rule, f"{problem.message}: the mapping run {run_id} recorded "
                       "binds no payer.email; give one with --mel (or add "
                       "bindings.payer.email to the mapping, for the next runs)",
                       invoice=invoice, mapping=f"{recorded.path}: bindings.payer.email")
    hint = ("give another with --mel" if found else
            "the run's recorded input gives none through bindings.payer.email; give one "
            "with --mel")
    return Problem(problem.rule, f"{problem.message}{'; ' if found else ': '}{hint}",
                   invoice=invoice, mapping=binding.where)


def run_mapping(store: Store, run_id: str) -> Mapping | None:
    """The mapping a run recorded, as regenerate loads it (lines of its recorded text,
    named by the path it recorded), or None when this pesgen refuses it."""
    run = store.get_run(run_id)
    try:
        return load_recorded_mapping(run["mapping_text"], run["mapping_path"])
    except MappingError:
        return None


def create_link(store: Store, mapping_path: Path, invoice: str, *, mel: str | None = None,
                notify_url: str | None = None, return_url: str | None = None,
                endpoint: str | None = None, mode: str | None = None,
                timeout: float = DEFAULT_TIMEOUT, client: PayfipClient | None = None,
                again: bool = False) -> Link:
    """Ask PayFiP for an operation paying the invoice's amount, record it, and return
    the payment page's URL. Nothing is sent when a value breaks a rule, nor when the
    invoice has a link still open (``refuse_open_links``) unless ``again``."""
    [link] = create_links(store, mapping_path, [invoice], mel=mel, notify_url=notify_url,
                          return_url=return_url, endpoint=endpoint, mode=mode,
                          timeout=timeout, client=client, again=again)
    return link


# saisies whose payment may move money: production, and activation (recorded as a test,
# but whether it debits a card is not confirmed); a test link (T) collects nothing
MONEY_SAISIES = ("W", "X")


@dataclass(frozen=True)
class OpenLink:
    """A link of an invoice still open that a new one would make a second of
    (``open_links``): its operation, when it was made, its saisie and status, and its
    payment page's URL (rebuilt from the endpoint and idOp the store keeps, as `payfip
    link` printed it)."""

    invoice: str
    id_op: str
    created_at: str
    saisie: str
    status: str
    url: str

    def said(self) -> str:
        return (f"operation {self.id_op} (made {self.created_at}, saisie {self.saisie}, "
                f"{self.status})")


def open_links(store: Store, id_coll: str, due: ledger.Due, saisie: str,
               still_open: list[dict[str, Any]] | None = None) -> list[OpenLink]:
    """The invoice's links a new link of ``saisie`` would be a second of: its operations
    still open (pending, or unknown: PayFiP could not be asked yet; the family may still
    pay through them) of the title due (its run's, or of a run not recorded with it),
    production or activation (``MONEY_SAISIES``), oldest first. None for a test link
    (it collects nothing), nor is a test one counted. An abandoned one (result A) is left
    out: the family left PayFiP's page, the link is payable only until its 20 minutes
    pass, so it is no link to send again (a new one gets its note, ``_still_open``); so
    is the link of a cancelled title (the invoice exported again since): it does not pay
    this title, which needs its own (its note says which to use). ``still_open``: the
    invoice's open operations read already (``ledger.open_operations_of``; read here
    when None)."""
    if saisie not in MONEY_SAISIES:
        return []
    if still_open is None:
        still_open = ledger.open_operations_of(store, id_coll, due.invoice)
    return [OpenLink(due.invoice, op["id_op"], op["created_at"], op["saisie"], op["status"],
                     payment_page(op["endpoint"], op["id_op"]))
            for op in still_open
            if op["saisie"] in MONEY_SAISIES and op["result_code"] != "A"
            and (op["run_id"] is None or op["run_id"] == due.run_id)]


OPEN_LINK_DOC = "docs/payfip.md, a link still open"
# why a link still open, or one being made (``claims``), holds back a new one
NO_SECOND = ("no second link: the family could pay both (the second a double-payment "
             "anomaly, for the trésorerie to refund)")


class OpenLinkRefused(StateError):
    """A new link of an invoice with a link still open (``open_links``: ``found``),
    refused (``refuse_open_links``). ``issued``: the operation PayFiP made for it all the
    same, when another link of the invoice was recorded while PayFiP made it (two `payfip
    link` at once): not recorded, its link not given (``_make_link``)."""

    def __init__(self, found: list[OpenLink], issued: str | None = None) -> None:
        self.found, self.issued = found, issued
        latest = found[-1]
        super().__init__(
            f"invoice {latest.invoice}: {_open_said(found)}; {NO_SECOND}. Send the family "
            f"that link again: {latest.url} (`pesgen payfip "
            "reconcile` first: if the family paid through it, it records the payment); to "
            "make a second one all the same (PayFiP refuses that one, it went to the wrong "
            f"address…), give --again ({OPEN_LINK_DOC}){_issued_said(issued)}",
            [Problem("payfip.open-link", f"PayFiP {f.said()} still open: no second link "
                     "while one is, without --again", invoice=latest.invoice) for f in found])


def refuse_open_links(found: list[OpenLink]) -> None:
    """Refuse a new link of an invoice with a link still open (``open_links``): made by
    accident (the same command run again: a batch stopped midway, or not known to have
    worked), it would be a second way to pay, and a family paying both pays twice (a
    double-payment anomaly, for the trésorerie to refund). Names each open operation, the
    latest's URL to send again, and --again for a second one made knowingly (rule
    payfip.open-link, exit 7, as payfip.paid: ``OpenLinkRefused``)."""
    if found:
        raise OpenLinkRefused(found)


def skipped_note(found: list[OpenLink], issued: str | None = None) -> str:
    """What a batch says of an invoice it skipped for its link still open
    (``open_links``): which, its URL, what to do; ``issued``: as ``OpenLinkRefused``'s."""
    latest = found[-1]
    return (f"invoice {latest.invoice}: skipped, no second link: "
            f"{_open_said(found, latest=True)}: {latest.url}; send the family that link "
            "again, or link it with --again for a second one (rule payfip.open-link; "
            f"{OPEN_LINK_DOC}){_issued_said(issued)}")


def _open_said(found: list[OpenLink], latest: bool = False) -> str:
    """An invoice's links still open (``open_links``) in words, as the refusal and a
    batch's note say them: "its PayFiP link operation … is still open", or "N of its PayFiP
    links are still open: …", each named (``latest``: "… (…), the latest", the sentence
    going on with the latest's URL)."""
    if len(found) == 1:
        return f"its PayFiP link {found[0].said()} is still open"
    each = ", ".join(f.said() for f in found)
    return (f"{len(found)} of its PayFiP links are still open"
            + (f" ({each}), the latest" if latest else f": {each}"))


def _issued_said(issued: str | None) -> str:
    """What the refusal and a batch's note add of the operation PayFiP made for a link
    refused as it was recorded (``OpenLinkRefused.issued``); "" when none was."""
    if issued is None:
        return ""
    return (f"; while PayFiP made operation {issued} for this link, another `payfip link` "
            f"of the invoice recorded the one above: operation {issued} is not recorded, "
            "its link not printed, nobody can pay through it")


def create_links(store: Store, mapping_path: Path, invoices: Sequence[str], *,
                 mel: str | None = None, notify_url: str | None = None,
                 return_url: str | None = None, endpoint: str | None = None,
                 mode: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 client: PayfipClient | None = None, batch: Batch | None = None,
                 again: bool = False) -> Generator[Link, None, None]:
    """``create_link`` of each invoice, in the order given, each link as soon as it is
    made and recorded (the CLI prints it then). Every invoice is checked first, the runs'
    inputs read once and the refdets in use looked up in one index (``Lookups``): when
    one is refused, nothing is sent for any (``LinksRefused``, naming each one refused
    and the others, exit code the first refused one's; a single invoice is refused with
    its own error). The same invoice twice (case and surrounding spaces aside) is a
    usage error. One client serves the batch. When PayFiP or the store fails midway,
    the links made before stay made and recorded; the error says which invoices were
    not sent. ``batch`` follows the sending, for a caller to say as much of a batch
    stopped otherwise (Ctrl-C, its output closed: ``Batch``). An invoice with a link
    still open (``open_links``) gets no second one unless ``again``: one invoice given
    is refused (``refuse_open_links``); in a batch it is skipped, not sent (in
    ``batch.skipped``, for the caller to say), and the others are linked: the same
    batch run again after it stopped midway makes the links it had not made, and no
    second one of those it had. The rule is checked again as each link is recorded
    (``_make_link``): another `payfip link` of the invoice may have recorded one since
    (two at once); the invoice is then refused, or skipped, as if it had come after, the
    operation PayFiP made for it not recorded (``batch.issued``). So that this is rare,
    every invoice is claimed before any is sent (``_claim``): one another `payfip link`
    is making a link for is refused, or skipped (``batch.claimed``), PayFiP not asked;
    the claims of the invoices not linked are released when the batch ends or stops."""
    batch = Batch() if batch is None else batch
    seen: dict[str, str] = {}
    for given in invoices:
        key = invoice_key(given)
        if key in seen:
            raise UsageError(f"-n {seen[key]} and -n {given} name the same invoice: give it "
                             "once (a batch makes one link per invoice)")
        seen[key] = given
    if not invoices:
        raise UsageError("no invoice given: -n INVOICE (repeatable)")
    if mel and len(invoices) > 1:
        # one family's address for several invoices: each invoice's payer is read from
        # its run's input instead; an address given is for one invoice
        raise UsageError(f"--mel gives one payer's e-mail, and {len(invoices)} invoices "
                         "are given: link them without --mel (each payer's e-mail is read "
                         "from its run's input), or one at a time with --mel")
    mapping = load_mapping(mapping_path)
    settings = load_settings(mapping)
    if mode:
        from dataclasses import replace

        settings = replace(settings, mode=mode)
    if notify_url:
        bad = check_url("urlnotif", notify_url, invoices[0] if len(invoices) == 1 else None)
        if bad:
            raise PayfipRequestInvalid(problems=bad)
    lookups = Lookups(store, settings, mapping.collectivity.siret, invoices)
    # every invoice first: a paid one is refused there (refuse_paid), before anything
    # is sent for any of them
    prepared: list[tuple[PaymentRequest, ledger.Due, list[str]]] = []
    refused: list[tuple[str, PesgenError]] = []
    others: list[str] = []  # not refused: sent, or skipped for their link still open
    skipped: list[list[OpenLink]] = []
    for given in invoices:
        try:
            request, due, notes = build_request(mapping, settings, store, given, mel,
                                                notify_url, return_url, lookups=lookups)
            found = [] if again else open_links(store, mapping.collectivity.siret, due,
                                                request.saisie)
            if found and len(invoices) == 1:
                refuse_open_links(found)
        except MappingStopped:  # the next invoices would each hold the batch as long
            raise
        except PesgenError as exc:
            if len(invoices) == 1:
                raise
            refused.append((given, exc))
            continue
        others.append(due.invoice)
        if found:
            skipped.append(found)
        else:
            prepared.append((request, due, notes))
    if refused:
        raise LinksRefused(refused, others, listed)
    batch.skipped = skipped
    own = client is None
    if client is None:
        from .client import PayfipClient

        client = PayfipClient(endpoint or settings.endpoint, timeout=timeout)
    token = None
    try:
        if not again:
            # a claim lasts as long as PayFiP may take: the client's timeout (one given
            # without one, a caller's stand-in: ``timeout``)
            prepared, token = _claim(store, mapping.collectivity.siret, prepared,
                                     getattr(client, "timeout", timeout), batch,
                                     len(invoices) == 1)
        batch.invoices = [p[1].invoice for p in prepared]
        for done, (request, due, notes) in enumerate(prepared):
            batch.sending = done
            try:
                link = _make_link(store, mapping, client, request, due, notes,
                                  _stopped(batch) if len(prepared) > 1 else "", again, token)
            except OpenLinkRefused as exc:  # another link recorded meanwhile (two at once)
                if len(invoices) == 1:
                    raise
                batch.skipped.append(exc.found)
                batch.issued[due.invoice] = exc.issued
                batch.done = done + 1
                continue
            except StoreLocked:  # its message says what the batch left already
                raise
            except PesgenError as exc:
                if len(prepared) > 1:
                    _say_too(exc, _stopped(batch))
                raise
            batch.done = done + 1
            yield link
    finally:
        if own:
            client.close()
        if token is not None:
            _release(store, token)


def _claim(store: Store, id_coll: str,
           prepared: list[tuple[PaymentRequest, ledger.Due, list[str]]], timeout: float,
           batch: Batch, one: bool
           ) -> tuple[list[tuple[PaymentRequest, ledger.Due, list[str]]], str | None]:
    """Claim the invoices whose links may move money (``claims.take``: production or
    activation, ``MONEY_SAISIES``; a test link holds back nothing), before any is sent:
    one found with a link open in the claim's transaction (recorded since it was
    checked) or claimed by another `payfip link` is refused (``one`` invoice given:
    ``OpenLinkRefused``, ``claims.LinkClaimed``) or skipped (``batch.skipped``,
    ``batch.claimed``); one whose lapsed claim was passed gets its note. The links to
    make, and the claims' token (None: none taken)."""
    money = [p for p in prepared if p[0].saisie in MONEY_SAISIES]
    if not money:
        return prepared, None
    by_invoice = {due.invoice: (due, request.saisie) for request, due, _ in money}

    def open_in(conn: Any, invoice: str) -> list[OpenLink]:
        due, saisie = by_invoice[invoice]
        return open_links(store, id_coll, due, saisie,
                          ledger.open_operations_of(store, id_coll, invoice, conn))

    position = {p[1].invoice: n for n, p in enumerate(prepared, start=1)}
    try:
        # on PostgreSQL the runs' rows, which a recording of their titles locks
        taken = store.waits_for_rows(partial(
            claims.take, store, id_coll, [(due.invoice, due.run_id, position[due.invoice]
                                           * timeout) for _, due, _ in money], open_in),
            "the rows of the runs of the invoices to link")
    except StoreLocked as exc:
        raise stopped_waiting(exc, "payfip link stopped waiting: nothing was sent, no "
                              "link made") from None
    kept = []
    for request, due, notes in prepared:
        invoice = due.invoice
        if invoice in taken.opened:
            if one:
                refuse_open_links(taken.opened[invoice])
            batch.skipped.append(taken.opened[invoice])
        elif invoice in taken.held:
            if one:
                raise claims.LinkClaimed(taken.held[invoice], NO_SECOND)
            batch.claimed.append(taken.held[invoice])
        elif invoice in taken.lapsed:
            kept.append((request, due, [*notes, claims.lapsed_note(taken.lapsed[invoice])]))
        else:
            kept.append((request, due, notes))
    return kept, taken.token


def _release(store: Store, token: str) -> None:
    """Release the command's claims it made no link for (``claims.release``); failing
    (the store stopped answering), they lapse in time (``claims.MARGIN``)."""
    try:
        claims.release(store, token)
    except Exception as exc:  # what stopped the command is what it says
        log.warning("payfip link: its claims were not released (%s): they lapse in time",
                    type(exc).__name__)


@dataclass
class Batch:
    """Where ``create_links`` is in its batch: the invoices to link, as their runs
    recorded them, once every one is checked; the index of the one whose link is being
    made (None: still checking them, nothing sent); how many of them are done, in order
    (the one being made too, once it is): linked, or skipped as its link was recorded
    (another link of the invoice recorded meanwhile); the invoices skipped, not linked,
    for their links still open (``open_links``: each invoice's), once every one is
    checked, then as the links are recorded; and of those skipped as their link was
    recorded, the operation PayFiP made for each, not recorded (``issued``)."""

    invoices: list[str] = field(default_factory=list)
    sending: int | None = None
    done: int = 0
    skipped: list[list[OpenLink]] = field(default_factory=list)
    issued: dict[str, str | None] = field(default_factory=dict)
    # the invoices skipped, not linked, as another `payfip link` is making theirs
    # (``claims.take``), once every one is claimed
    claimed: list[claims.Claim] = field(default_factory=list)

    @property
    def made(self) -> int:
        """How many links are made and recorded."""
        return len(self.made_links())

    def made_links(self) -> list[str]:
        """The invoices whose link is made and recorded."""
        return [i for i in self.invoices[:self.done] if i not in self.issued]

    def stopping(self) -> str | None:
        """The invoice whose link was being made, not yet recorded: whether PayFiP made
        an operation for it, and pesgen recorded it, is not known (None: none was)."""
        if self.sending is None or self.done > self.sending:
            return None
        return self.invoices[self.sending]

    def not_sent(self) -> list[str]:
        """The invoices nothing was sent for: after the one being made (every one, while
        they were being checked)."""
        return self.invoices[(-1 if self.sending is None else self.sending) + 1:]


def _stopped(batch: Batch) -> str:
    """What a batch stopped at the invoice it was sending leaves: the links made before
    it, the invoices not sent."""
    made, rest = batch.made_links(), batch.not_sent()
    return (f"; the batch stopped there: {len(made)} link(s) made before it"
            + (f" ({listed(made)})" if made else "") + (
                f", {len(rest)} invoice(s) not sent: {listed(rest)}" if rest else ""))


def listed(invoices: list[str], limit: int = 20) -> str:
    more = len(invoices) - limit
    return ", ".join(invoices[:limit]) + (f", … {more} more" if more > 0 else "")


def _say_too(exc: PesgenError, text: str) -> None:
    """Add ``text`` to ``exc``'s message, its class (its exit code) and the rest kept."""
    exc.args = (f"{exc}{text}", *exc.args[1:])


def _make_link(store: Store, mapping: Mapping, client: PayfipClient,
               request: PaymentRequest, due: ledger.Due, notes: list[str],
               stopped: str = "", again: bool = False, claim: str | None = None) -> Link:
    """Send one prepared request (``build_request``), record the operation, and return
    its link; refuses (StateError) to give a link the store says must not be sent.
    PayFiP is asked first (the idOp is its answer), then the operation recorded, which
    locks the invoice's rows: on PostgreSQL another transaction holding them is waited
    for at most ``store_lock_timeout``, said past the grace (``Store.waits_for_rows``;
    on SQLite the store's lock is so), then StoreLocked saying the operation PayFiP
    issued is not recorded and its link not given, then ``stopped`` (what the batch
    made before it and did not send: ``_stopped``). Unless ``again``, rule
    payfip.open-link is checked again in the recording's transaction, the title's
    recordings in turn (``ledger.record_operation``): a link of the invoice another
    `payfip link` recorded since the check (two at once) refuses this one
    (``OpenLinkRefused``, with the operation PayFiP made: not recorded, its link not
    given), as if it had come after. No lock is held while PayFiP is asked (up to the
    client's timeout): the store's would hold every other command meanwhile on SQLite;
    the invoice's claim (``claim``: its token, ``claims.take``) holds back other links
    of it meanwhile, removed as the operation is recorded."""
    notes = list(notes)
    invoice = due.invoice  # as its run recorded it: the payment records follow it
    try:
        id_op = client.creer_paiement_securise(request)
        url = client.payment_url(id_op)
        endpoint_used = client.endpoint
    except PayfipFault as fault:
        raise PayfipFault(f"invoice {invoice}: {fault}", kind=fault.kind, code=fault.code,
                          libelle=fault.libelle, descriptif=fault.descriptif,
                          severite=fault.severite) from None

    def unless_open(still_open: list[dict[str, Any]]) -> None:
        found = open_links(store, mapping.collectivity.siret, due, request.saisie,
                           still_open)
        if found:  # nothing recorded: PayFiP's operation stays unknown to the store
            raise OpenLinkRefused(found, issued=id_op)

    try:
        # a wait given up rolls the recording back: run again, it records it once
        recorded = store.waits_for_rows(partial(ledger.record_operation, store, {
            "id_op": id_op, "id_coll": mapping.collectivity.siret, "invoice": invoice,
            "run_id": due.run_id, "numcli": request.numcli, "exer": request.exer,
            "refdet": request.refdet, "amount_cents": request.montant, "mel": request.mel,
            "objet": request.objet, "saisie": request.saisie, "endpoint": endpoint_used},
            None if again else unless_open, claim),
            f"the rows of the invoice of PayFiP operation {id_op} (its payment, its run)")
    except OpenLinkRefused:
        log.info("payfip link: operation %s created, not recorded: another link of its "
                 "invoice was recorded meanwhile", id_op)
        raise
    except StoreLocked as exc:
        raise stopped_waiting(
            exc, f"payfip link stopped waiting: invoice {invoice}: PayFiP issued operation "
            f"{id_op}, not recorded, no link printed: do not send it (`payfip reconcile` "
            "asks only about operations recorded: it never asks about this one, which "
            "nobody can pay without its link)" + stopped) from None
    except Exception as exc:
        raise StateError(f"invoice {invoice}: PayFiP issued operation {id_op} but it could "
                         f"not be recorded ({type(exc).__name__}); do not send its link") from exc
    cancelled = recorded.cancelled
    if recorded.paid is not None:
        # the family paid through an earlier link while PayFiP made this operation: a
        # payment through this one would be a second (refuse_paid came too early to see it)
        paid = recorded.paid
        amount = cents_text(paid["paid_cents"] if paid["paid_cents"] is not None
                            else paid["amount_cents"])
        raise StateError(
            f"invoice {invoice}: paid through PayFiP while PayFiP made operation {id_op}: "
            f"{amount} on {paid['paid_at']} (operation {paid['id_op']}); the operation is "
            "recorded, but do not send its link: no link (the family would pay twice)",
            [Problem("payfip.paid", f"paid {amount} on {paid['paid_at']} through PayFiP "
                     f"operation {paid['id_op']}: a payment through operation {id_op} would "
                     "be a double payment", invoice=invoice)])
    if cancelled:
        # `runs cancel` went through while PayFiP made the operation: the trésorerie will
        # never see this title, so no family may pay it (the payment would be an anomaly)
        raise StateError(
            f"invoice {invoice}: its title was cancelled while PayFiP made operation {id_op} "
            f"({cancelled}); the operation is recorded, but do not send its link: no link",
            [Problem("payfip.cancelled", f"title {cancelled}: a payment through operation "
                     f"{id_op} would be an anomaly (run-cancelled)", invoice=invoice)])
    if recorded.unsettled:
        # the family paid through the cancelled title's link while PayFiP made this
        # operation (refuse_unsettled came too early to see it)
        raise _unsettled(invoice, recorded.unsettled, f"PayFiP made operation {id_op} meanwhile; "
                         "the operation is recorded, but do not send its link")
    if recorded.rejected:
        from ..acquit import acquit_arg

        # `acquit --record` recorded the trésorerie's rejection of the title's bordereau
        # while PayFiP made the operation: the trésorerie does not hold the title. The
        # acquit by the name it was recorded with (the folder it was read in)
        named = recorded.rejected_acquit
        raise StateError(
            f"invoice {invoice}: the trésorerie's rejection of its title's bordereau was "
            f"recorded while PayFiP made operation {id_op} ({recorded.rejected}); the "
            "operation is recorded, but do not send its link: no link (a family must not "
            f"pay a title the trésorerie does not hold; `pesgen acquit {acquit_arg(named)} "
            f"--record{store.db_option}` "
            + ("" if named else "(FILE: that acquit, named above) ")
            + "lists the link as open)",
            [Problem("payfip.rejected", f"{recorded.rejected}: a payment through operation "
                     f"{id_op} would pay a title the trésorerie does not hold",
                     invoice=invoice)])
    notes.extend(_still_open(recorded.still_open, invoice, due, request.saisie))
    if request.saisie == "W":  # a test link collects nothing: no second payment
        notes.extend(_result_unknown(store, mapping.collectivity.siret, invoice))
    log.info("payfip link: operation %s created", id_op)
    return Link(id_op, url, invoice, request.refdet, request.montant, request.saisie,
                request.exer, tuple(notes))


def _still_open(still_open: list[dict[str, Any]], invoice: str, due: ledger.Due,
                saisie: str) -> list[str]:
    """What to say of the invoice's earlier links still open (``still_open``: its open
    operations, read in the transaction that recorded the new one, before it) beside
    the new one: the family may pay through any of them. An abandoned one stays payable for
    its 20 minutes; a production one not answered yet, as long as PayFiP keeps it (a
    family asking for a new link often has the first one still). Both paid, the second
    is a double-payment anomaly; paid through a cancelled title's, a run-cancelled one:
    the money is never counted twice, but the trésorerie has to refund it. A test link
    (saisie T) collects nothing; an activation payment (X) is recorded as a test, so
    only a production link beside a production one says so, an abandoned one always
    (the family may go back to it), saying, when either link is a test one, which of
    the two pays the invoice: no double payment then."""
    notes = []
    for other in still_open:
        abandoned = other["result_code"] == "A"
        if not (abandoned or (other["saisie"] == "W" and saisie == "W")):
            continue
        if other["run_id"] is not None and other["run_id"] != due.run_id:
            # the link of a cancelled title (the run or bordereau that held the invoice
            # when it was made): a payment through it pays nothing of the title due
            then = (f"its title then (run {other['run_id']}) is cancelled: a payment through "
                    "it is a run-cancelled anomaly, not a payment of this title, for the "
                    "trésorerie to refund or apply; tell the family which link to use")
        elif other["saisie"] == "W" and saisie == "W":
            then = ("if the family pays both, the second is a double-payment anomaly, for "
                    "the trésorerie to refund")
        elif other["saisie"] != "W":
            # only an abandoned one gets here: a test one beside this link
            then = (f"it is a test link (saisie {other['saisie']}): a payment through it is "
                    "recorded as a test (test-paid), never as a payment of the invoice; "
                    "tell the family which link to use")
        else:  # abandoned, production, beside this test link
            then = (f"a payment through it pays the invoice, where one through this link "
                    f"(saisie {saisie}) is recorded as a test (test-paid), never as a "
                    "payment of the invoice")
        if abandoned:
            notes.append(f"invoice {invoice}: operation {other['id_op']} was abandoned but "
                         f"stays payable until {other['until']}: {then} (docs/payfip.md, "
                         "abandoned)")
        else:
            notes.append(f"invoice {invoice}: operation {other['id_op']} (made "
                         f"{other['created_at']}, saisie {other['saisie']}) is still open "
                         f"({other['status']}): the family may still pay through it; "
                         f"{then} (docs/payfip.md, a link still open)")
    return notes


def _result_unknown(store: Store, id_coll: str, invoice: str) -> list[str]:
    """What to say of the invoice's earlier operations whose result is not known (an open
    `lookup-refused` or `unknown-result` anomaly): the family may have paid through one,
    and this link would then pay twice. Only the trésorerie knows: support asks it before
    sending the link (the anomaly's advice), then resolves the anomaly."""
    why = {"lookup-refused": "PayFiP would not give its result",
           "unknown-result": "PayFiP answered a result code pesgen does not know"}
    return [f"invoice {invoice}: whether the family paid through operation {op['id_op']} "
            f"(made {op['created_at']}, saisie {op['saisie']}) is not known: "
            f"{why[op['kind']]} (anomaly #{op['anomaly']}, {op['kind']}, not resolved); ask "
            "the trésorerie before sending this link: if the family paid, it would pay "
            "twice; if not, send it and resolve the anomaly (docs/payfip.md, a link still "
            "open)" for op in ledger.unknown_results_of(store, id_coll, invoice)]


def handle(store: Store, id_op: str, source: str, factory: ClientFactory,
           record_unknown: bool = True) -> ledger.Outcome:
    """One idOp from a notification, the family's return or the sweep: pull the trusted
    result and apply it once. With ``record_unknown`` false, an idOp pesgen never issued
    is answered without recording an anomaly (the receiver's flood limit). The client
    the factory gives is closed after the lookup, unless the factory keeps its clients
    (``KeptClients``: the receiver's, the sweep's)."""
    op = ledger.get_operation(store, id_op)
    if op is None:
        if not record_unknown:
            return ledger.Outcome(id_op, "unknown-idop", message="not recorded (rate limit)")
        return ledger.record_unknown(store, id_op, source)
    if op["status"] in ledger.FINAL:
        if source == "notification":
            ledger.count_notification(store, id_op)
        return ledger.Outcome(id_op, "already", op["status"], op["invoice"])
    client = factory(op["endpoint"])
    try:
        detail = client.recuperer_detail_paiement_securise(id_op)
    except PayfipFault as fault:
        if fault.code == "P5":
            return ledger.note_check(store, id_op, source, "pending")
        if fault.code == "P1":
            return ledger.expire(store, id_op, source, f"P1 {fault.libelle}".strip())
        if fault.kind.startswith("Fonctionnelle"):  # a business refusal: asking again won't help
            return ledger.refused_lookup(store, id_op, source,
                                         f"{fault.code} {fault.libelle}".strip())
        log.warning("payfip %s: operation %s: result not available (%s)", source, id_op,
                    fault.summary)
        return ledger.note_check(store, id_op, source, "unknown", str(fault))
    finally:
        if not isinstance(factory, KeptClients):
            client.close()
    return ledger.apply_detail(store, id_op, detail, source)


def reconcile(store: Store, factory: ClientFactory, since: str | None = None
              ) -> list[ledger.Outcome]:
    """Ask PayFiP about every pending or unknown operation: catches notifications that
    never arrived and results that were not known yet."""
    return list(reconcile_each(store, factory, since))


def reconcile_each(store: Store, factory: ClientFactory, since: str | None = None
                   ) -> Iterator[ledger.Outcome]:
    """``reconcile``, each operation's outcome as soon as it is recorded (a sweep of
    thousands takes minutes: the CLI prints each line as it comes). One client per
    endpoint serves the whole sweep (``KeptClients``): a client made per operation loaded
    the system's certificates each time (0.1 s of CPU, most of an operation's time on
    the fake) and opened a connection each time."""
    with KeptClients(factory) as kept:
        for id_op in ledger.open_operation_ids(store, since):
            # on PostgreSQL a row another transaction holds is waited for as long as
            # store_lock_timeout, said past the grace (on SQLite the store's lock is so);
            # a wait given up rolls back the operation's recording: asked again
            yield store.waits_for_rows(partial(handle, store, id_op, "reconcile", kept),
                                       f"the rows of PayFiP operation {id_op}")
