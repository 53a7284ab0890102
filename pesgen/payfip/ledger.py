"""Payments in the state store: operations issued, results applied once, anomalies.

Applying a result is idempotent: the operation moves out of ``pending``/``unknown``
by a conditional UPDATE inside one transaction, so a replayed notification, a
notification racing the reconcile sweep or the family's return all record the
payment exactly once. A result whose numcli, refdet, amount or saisie differs from
what pesgen issued is an anomaly, never a payment. A P or V result of an operation
created in test or activation mode (saisie T or X) is a test payment (``test-paid``):
it never pays the invoice, so it never refuses a later link or a production payment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import StateError, UsageError
from ..keys import invoice_key
from ..store import (
    Acknowledgement,
    Store,
    cancelled_bordereaux,
    chunks,
    lock_acknowledgements,
    reinstatements,
    run_invoices,
    runs,
    utc_now,
)
from . import claims
from .models import RESULTS, SAISIE_TEST, PaymentDetail, cents_text, paid_by, to_cents
from .tables import (
    OUTCOMES,
    PAID_CANCELLED,
    RESOLVED_BY_MAX,
    SETTLED,
    anomalies,
    events,
    operations,
    paid_title_run,
    payments,
    reported_amount,
    reported_cents,
)

log = logging.getLogger("pesgen.payfip")

# a paid result without dattrans/heurtrans: its paid_at is when pesgen recorded it
NO_TRANSACTION_TIME = ("PayFiP gave no transaction date and time (dattrans/heurtrans): "
                       "paid_at is when pesgen recorded the result")
OPEN = ("pending", "unknown")  # operations whose result is still to be learnt
FINAL = ("paid", "test-paid", "refused", "abandoned", "expired", "anomaly")


# An abandoned result (A) is final only this long after the operation was made: the
# idOp stays active meanwhile and the family may still pay through it (eopayment reads A
# within 20 minutes as "still waiting": notes payfip.md §7, §8; P4 after 15 minutes
# unopened). Measured from the time pesgen recorded the operation, just after PayFiP
# issued it.
ABANDON_WINDOW = timedelta(minutes=20)


def active_until(created_at: str) -> str:
    """When an operation made at ``created_at`` (the store's UTC text) stops being
    payable after an abandon, in the same form."""
    made = datetime.fromisoformat(created_at.replace("Z", "+00:00")).astimezone(UTC)
    return (made + ABANDON_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_operations_of(store: Store, id_coll: str, invoice: str,
                       conn: Connection | None = None) -> list[dict[str, Any]]:
    """The invoice's operations still open (pending or unknown: the family may still pay
    through them, an abandoned one, result A, within its 20 minutes), oldest first, each
    with ``until``: when it stops being payable once abandoned. ``conn``: read in that
    transaction."""
    query = sa.select(operations).where(
        operations.c.id_coll == id_coll, operations.c.invoice == invoice,
        operations.c.status.in_(OPEN)).order_by(operations.c.created_at, operations.c.id_op)
    if conn is not None:
        rows = conn.execute(query).all()
    else:
        with store.engine.connect() as own:
            rows = own.execute(query).all()
    return [{**dict(r._mapping), "until": active_until(r.created_at)} for r in rows]


# anomalies of an operation whose result is not known: the family may have paid through it
RESULT_UNKNOWN = ("lookup-refused", "unknown-result")


def unknown_results_of(store: Store, id_coll: str, invoice: str) -> list[dict[str, Any]]:
    """The invoice's operations whose result is not known, their anomaly open
    (``RESULT_UNKNOWN``: PayFiP would not give the result, or gave a code pesgen does not
    know): the family may have paid through them. A test operation (saisie T) collects
    nothing and is left out. Oldest first, each with its anomaly's number (``anomaly``)
    and ``kind``."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(anomalies.c.id.label("anomaly"), anomalies.c.kind, operations.c.id_op,
                      operations.c.created_at, operations.c.saisie)
            .select_from(anomalies.join(operations,
                                        operations.c.id_op == anomalies.c.id_op))
            .where(operations.c.id_coll == id_coll, operations.c.invoice == invoice,
                   operations.c.saisie != "T", anomalies.c.kind.in_(RESULT_UNKNOWN),
                   anomalies.c.resolved_at.is_(None))
            .order_by(anomalies.c.id)).all()
    return [dict(r._mapping) for r in rows]


@dataclass(frozen=True)
class Outcome:
    """What handling one idOp did. ``action``: recorded (a result was applied),
    already (it had been: replay), pending (PayFiP does not know the result yet),
    error (PayFiP could not be asked; retried by reconcile), expired, anomaly,
    unknown-idop (pesgen never issued it). ``anomalies``: the kinds of the anomalies it
    recorded (a double payment's too, whose action is recorded: its operation is paid)."""

    id_op: str
    action: str
    status: str | None = None  # the operation's status afterwards
    invoice: str | None = None
    message: str = ""
    anomalies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Due:
    run_id: str
    id_coll: str
    amount_cents: int
    exercise: int
    id_bord: int
    id_pce: int
    amount: str
    invoice: str = ""  # the number as its run recorded it
    cod_bud: str = ""  # the budget (CodBud) of its run


def _active_titles(store: Store, id_coll: str, invoice: str,
                   conn: Connection | None = None) -> Sequence[Any]:
    """The active titles of an invoice, found like the duplicate guard and `runs find`
    find it (through ``keys.invoice_key``: case and surrounding spaces aside), oldest
    run first. ``conn``: read in that transaction."""
    query = (sa.select(run_invoices, runs.c.exercise, runs.c.cod_bud, runs.c.created_at)
             .join(runs, runs.c.id == run_invoices.c.run_id)
             .where(run_invoices.c.invoice_key == invoice_key(invoice),
                    run_invoices.c.id_coll == id_coll, run_invoices.c.active)
             .order_by(runs.c.created_at, run_invoices.c.id))
    if conn is not None:
        return conn.execute(query).all()
    with store.engine.connect() as own:
        return own.execute(query).all()


def _one_title(titles: Sequence[Any], invoice: str) -> Any:
    """The title the number given means: the one written exactly so, else the only one.
    Several written otherwise (active runs holding it in two cases, which a store
    migrated from before schema 5 may have) are for a person to choose between."""
    exact = [t for t in titles if t.invoice == invoice]
    if exact or len({t.invoice for t in titles}) == 1:
        return (exact or titles)[0]
    held = " and ".join(f"{t.invoice} (run {t.run_id})" for t in titles)
    raise StateError(f"invoice {invoice}: ambiguous: active runs hold {held}; give the "
                     "number exactly as the run to pay exported it")


def active_title(store: Store, id_coll: str, invoice: str) -> Any | None:
    """The invoice's active title, found like `runs find` finds it, or None when no
    active run holds it; its ``invoice`` is the number as its run recorded it (the
    payment records and PayFiP's refdet follow it). Refuses (StateError) a number
    several titles written otherwise hold (``_one_title``)."""
    titles = _active_titles(store, id_coll, invoice)
    return _one_title(titles, invoice) if titles else None


def invoice_due(store: Store, id_coll: str, invoice: str) -> Due:
    """The invoice as its active run exported it (the amount PayFiP must collect), found
    like `runs find` finds it; ``Due.invoice`` is the number that run recorded."""
    return due_of(store, id_coll, invoice, active_title(store, id_coll, invoice))


def due_of(store: Store, id_coll: str, invoice: str, title: Any | None) -> Due:
    """``invoice_due`` of the invoice's ``active_title``, looked up already: refuses
    (StateError) one no active run holds, saying why when a run left it out."""
    if title is None:
        left_out = _left_out(store, id_coll, invoice)
        if left_out is not None:
            # exporting it again would leave it out again: say why, as `runs find` does
            lo = left_out
            status = "" if lo["status"] == "committed" else f", {lo['status']}"
            raise StateError(
                f"invoice {invoice}: not exported: left out by run {lo['run_id']} "
                f"({lo['created_at']}{status}) from {lo['origin']}: {lo['reason']} (policy "
                f"{lo['policy']}); it is in no title, so there is nothing to pay online, and "
                "exporting the same input again leaves it out again")
        raise StateError(f"invoice {invoice}: in no active run of collectivity {id_coll}; "
                         "export it first (pesgen export) or check `pesgen runs find`")
    return Due(title.run_id, id_coll, to_cents(title.amount, title.invoice),
               int(title.exercise), int(title.id_bord), int(title.id_pce), title.amount,
               title.invoice, title.cod_bud)


def _left_out(store: Store, id_coll: str, invoice: str) -> dict[str, Any] | None:
    """The latest run of the collectivity that left the invoice out (a zero total…),
    as `pesgen runs find` lists it, or None."""
    found = store.find_left_out(invoice)
    if not found:
        return None
    with store.engine.connect() as conn:
        ours = set(conn.execute(sa.select(runs.c.id).where(
            runs.c.id.in_({lo["run_id"] for lo in found}), runs.c.id_coll == id_coll)
        ).scalars())
    mine = [lo for lo in found if lo["run_id"] in ours]
    return mine[-1] if mine else None  # find_left_out lists the oldest first


def refdets_used(store: Store, id_coll: str, numcli: str) -> list[tuple[str, str, str]]:
    """The refdets PayFiP operations were made with, of the collectivity or of its
    PayFiP client (numcli, its régie): (invoice, idOp, refdet), oldest first."""
    with store.engine.connect() as conn:
        return [(r.invoice, r.id_op, r.refdet) for r in conn.execute(
            sa.select(operations.c.invoice, operations.c.id_op, operations.c.refdet).where(
                sa.or_(operations.c.id_coll == id_coll, operations.c.numcli == numcli))
            .order_by(operations.c.created_at, operations.c.id_op))]


def active_titles(store: Store, id_coll: str) -> Sequence[Any]:
    """Every active title of the collectivity, with its run's exercise: what a refdet
    rule reads (``payfip.service``)."""
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(run_invoices, runs.c.exercise)
            .join(runs, runs.c.id == run_invoices.c.run_id)
            .where(run_invoices.c.id_coll == id_coll, run_invoices.c.active)
            .order_by(runs.c.created_at, run_invoices.c.id)).all()


def rejected_bordereaux(store: Store, run_id: str, bordereaux: Collection[int] | None = None,
                        conn: Connection | None = None) -> dict[int, Acknowledgement]:
    """The bordereaux of a run (among ``bordereaux``: its active ones, for a caller that
    knows them; None: every one) whose Hélios status, as `pesgen acquit --record`
    recorded it, is a rejection: IdBord -> that acknowledgement. Their titles are not in
    Hélios: a family must not pay them (rule payfip.rejected). A bordereau without
    acknowledgement recorded, or accepted since (``--replace``), is not one. ``conn``:
    read in that transaction."""
    status = store.acknowledgements([run_id], conn=conn).get(run_id, {})
    return {b: acks[0] for b, acks in status.items()
            if not acks[0].accepted and (bordereaux is None or b in bordereaux)}


def open_links(store: Store, run_id: str, bordereaux: Collection[int]
               ) -> Sequence[Any]:
    """The PayFiP links still open (operations pending or unknown) of a run's active titles
    in ``bordereaux``, test links (saisie T) aside: a family may still pay through them.
    Each with its title's IdBord, by IdBord, invoice and age. Operations are keyed by the
    run and the invoice as that run wrote it (as ``runs cancel`` finds them)."""
    titles = sa.select(run_invoices.c.invoice, run_invoices.c.id_bord).where(
        run_invoices.c.run_id == run_id, run_invoices.c.id_bord.in_(sorted(bordereaux)),
        run_invoices.c.active).subquery()
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(operations.c.id_op, operations.c.invoice, operations.c.created_at,
                      operations.c.saisie, operations.c.amount_cents, operations.c.status,
                      titles.c.id_bord)
            .join(titles, titles.c.invoice == operations.c.invoice)
            .where(operations.c.run_id == run_id, operations.c.status.in_(OPEN),
                   operations.c.saisie != "T")
            .order_by(titles.c.id_bord, operations.c.invoice, operations.c.created_at,
                      operations.c.id_op)).all()


def payment_of(store: Store, id_coll: str, invoice: str) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(payments).where(payments.c.id_coll == id_coll,
                                                     payments.c.invoice == invoice)).first()
    return dict(row._mapping) if row else None


def paid_by_key(store: Store, id_coll: str, invoices: Collection[str],
                chunk: int = 500) -> dict[str, dict[str, Any]]:
    """The collectivity's payments PayFiP recorded paid of these invoices, by their
    invoice's key (``keys.invoice_key``, as the guard compares numbers: a paid title
    cancelled and exported again written otherwise, ``fa-1`` for ``FA-1``, is the same
    invoice, whose payment row keeps the number its operation was made with); the
    earliest paid of a key, with ``open_settlement``: the number of its open
    paid-cancelled anomaly (None: none). The payments are looked up by key in an index
    (``invoice_key`` with the collectivity: migration 17), ``chunk`` keys a query, and
    those with no key recorded (none but a row written otherwise than by
    ``record_operation``) in one query more, keyed here; then their open anomalies,
    ``chunk`` operations a query: read once for a batch of links
    (``service.Lookups.paid``). Before, every paid payment of the collectivity was read,
    for each link command."""
    keys = sorted({invoice_key(i) for i in invoices})
    paid = sa.select(payments).where(payments.c.id_coll == id_coll,
                                     payments.c.status == "paid")
    # two queries, each one search of the index (an OR of both made SQLite, without
    # statistics, read every payment of the collectivity)
    by_key = paid.where(payments.c.invoice_key.in_(sa.bindparam("keys", expanding=True)))
    unkeyed = paid.where(payments.c.invoice_key.is_(None))
    # the open paid-cancelled anomalies (a paid title cancelled since, the trésorerie's
    # answer not recorded) of the payments found: each gets its number, or None
    settlements = (sa.select(anomalies.c.id_op, sa.func.min(anomalies.c.id))
                   .where(anomalies.c.kind == PAID_CANCELLED,
                          anomalies.c.resolved_at.is_(None),
                          anomalies.c.id_op.in_(sa.bindparam("ids", expanding=True)))
                   .group_by(anomalies.c.id_op))
    wanted = set(keys)
    with store.engine.connect() as conn:
        rows = [row for row in conn.execute(unkeyed) if invoice_key(row.invoice) in wanted]
        for part in chunks(keys, chunk):
            rows += conn.execute(by_key, {"keys": part}).all()
        open_: dict[str, int] = {}
        ids = sorted({row.id_op for row in rows if row.id_op is not None})
        for part in chunks(ids, chunk):
            open_.update(conn.execute(settlements, {"ids": part}).all())
    out: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r.paid_at or "", r.id)):
        # the earliest paid of a key (a row keyed otherwise than it is now aside)
        if invoice_key(row.invoice) in wanted:
            out.setdefault(invoice_key(row.invoice),
                           {**row._mapping, "open_settlement": open_.get(row.id_op)})
    return out


def get_operation(store: Store, id_op: str) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(operations).where(operations.c.id_op == id_op)).first()
    return dict(row._mapping) if row else None


def operation_statuses(store: Store, ids: Collection[str], chunk: int = 500
                       ) -> dict[str, str]:
    """id_op -> the operation's status now (``pending``, ``unknown``, ``anomaly``…), for
    the ids given, ``chunk`` a query; an id no operation has is left out."""
    query = sa.select(operations.c.id_op, operations.c.status).where(
        operations.c.id_op.in_(sa.bindparam("ids", expanding=True)))
    return {r.id_op: r.status for r in _by_chunk(store, query, ids, chunk)}


def open_anomaly_ops(store: Store, ids: Collection[str], chunk: int = 500,
                     kind: str | None = None) -> set[str]:
    """Of the operations given, those with an anomaly nobody resolved yet (of ``kind``
    only, when given), ``chunk`` ids a query."""
    query = sa.select(anomalies.c.id_op).where(
        anomalies.c.id_op.in_(sa.bindparam("ids", expanding=True)),
        anomalies.c.resolved_at.is_(None))
    if kind is not None:
        query = query.where(anomalies.c.kind == kind)
    return {r.id_op for r in _by_chunk(store, query, ids, chunk)}


def titles_with_open_links(store: Store, titles: Collection[tuple[str, str, str]],
                           chunk: int = 500) -> set[tuple[str, str, str]]:
    """Of the titles given as (collectivity, invoice, run), those with a link still open
    (an operation pending or unknown made for the invoice while that run held it: the
    family may still pay through it), whichever of the invoice's links it is, ``chunk``
    invoices a query."""
    query = sa.select(operations.c.id_coll, operations.c.invoice, operations.c.run_id).where(
        operations.c.invoice.in_(sa.bindparam("ids", expanding=True)),
        operations.c.status.in_(OPEN))
    wanted = set(titles)
    found = _by_chunk(store, query, {invoice for _, invoice, _ in wanted}, chunk)
    return {(r.id_coll, r.invoice, r.run_id) for r in found} & wanted


def _by_chunk(store: Store, query: sa.Select[Any], ids: Collection[str], chunk: int
              ) -> list[Any]:
    """The rows of ``query`` (its ``ids`` an expanding parameter) for the ids given,
    ``chunk`` ids a query, in one connection."""
    ids = list(ids)
    with store.engine.connect() as conn:
        return [row for part in chunks(ids, chunk)
                for row in conn.execute(query, {"ids": part})]


@dataclass(frozen=True)
class Unsettled:
    """Money paid through the link of a cancelled title after its cancellation (a
    `run-cancelled` anomaly nobody resolved yet), for the trésorerie to apply to the
    title due or refund: what ``unsettled_payments`` finds of an invoice."""

    anomaly: int  # its number (`pesgen payfip anomalies`)
    invoice: str  # as the cancelled title's run wrote it
    id_op: str
    cents: int  # what PayFiP reported collected (the amount asked, unless it said another)
    result_code: str | None
    paid_at: str | None  # PayFiP's transaction time, else when pesgen recorded it
    run_id: str | None
    id_bord: int | None
    saisie: str
    # that title active again since (`runs reinstate` left the anomaly open: another
    # amount, the invoice paid otherwise; or a pesgen before ``settle_reinstated``)
    reinstated: bool = False

    def happened(self) -> str:
        """What was paid, through which title, and the anomaly, in words."""
        how = f" {words}" if (words := paid_by(self.result_code)) else ""
        what = ("paid online" if self.saisie != "X" else
                "paid in activation mode (saisie X: whether it debits the family is not "
                "confirmed)")
        title = (f"IdBord {self.id_bord} of run {self.run_id}" if self.id_bord is not None
                 else f"run {self.run_id}")
        through = (f"through its title ({title}) while it was cancelled (reinstated since)"
                   if self.reinstated else
                   f"through its cancelled title ({title}), after the cancellation")
        return (f"{what} {cents_text(self.cents)}{how} on {self.paid_at} {through} (PayFiP "
                f"operation {self.id_op}; anomaly #{self.anomaly}, run-cancelled, not "
                "resolved)")


def unsettled_words(found: list[Unsettled]) -> tuple[str, str]:
    """What happened (each payment: ``Unsettled.happened``) and what to do, in the words
    `payfip link`, `tipi-url`, `datamatrix` and the export's note share."""
    numbers = [u.anomaly for u in found]
    resolve = (f"`pesgen payfip anomalies resolve {numbers[0]} --applied --note TEXT` (the "
               "title due is then recorded paid) or `--refunded`" if len(numbers) == 1
               else "`pesgen payfip anomalies resolve ID --applied --note TEXT` or "
               "`--refunded` for each (" + ", ".join(f"#{n}" for n in numbers) + ")")
    return ("; ".join(u.happened() for u in found),
            "tell the trésorerie, which applies that money to the title due or refunds it, "
            "and send the family no new payment until it answers (it would pay twice); once "
            f"it has, record its answer: {resolve}")


def _collected_through_cancelled(op: Any) -> sa.ColumnElement[bool]:
    """A `run-cancelled` anomaly (``anomalies`` joined with ``op``, the operations table
    or an alias of it) of an operation that may have collected money: paid through the
    link of a cancelled title; a test link (saisie T) collected none. What holds an
    invoice back while open (``unsettled_payments``, ``_held_back``), what a reinstatement
    settles (``settle_reinstated``)."""
    return sa.and_(anomalies.c.kind == "run-cancelled", op.c.saisie != "T")


def unsettled_payments(store: Store, id_coll: str, conn: Connection | None = None
                       ) -> dict[str, list[Unsettled]]:
    """The collectivity's open `run-cancelled` anomalies of operations that may have
    collected money (a test link, saisie T, collects none; an activation one, X, may:
    whether it debits the family is not confirmed; a refusal or an abandon is never a
    `run-cancelled` anomaly), by the invoice's key (``keys.invoice_key``: the invoice
    exported again is found however its new run writes it), oldest first. The amount is
    the one PayFiP reported when it said another than the one asked (amount-mismatch).
    ``conn``: read in that transaction. Open anomalies are few: read in one query."""
    said = reported_amount(anomalies.c.id_op)
    query = (sa.select(anomalies.c.id, anomalies.c.invoice, operations.c.id_op,
                       operations.c.amount_cents, operations.c.result_code,
                       operations.c.transaction_at, operations.c.resolved_at,
                       operations.c.run_id, operations.c.saisie, run_invoices.c.id_bord,
                       run_invoices.c.active, said.label("reported"))
             .select_from(anomalies.join(operations, operations.c.id_op == anomalies.c.id_op)
                          .outerjoin(run_invoices, sa.and_(
                              run_invoices.c.run_id == operations.c.run_id,
                              run_invoices.c.invoice == operations.c.invoice)))
             .where(_collected_through_cancelled(operations), anomalies.c.resolved_at.is_(None),
                    operations.c.id_coll == id_coll)
             .order_by(anomalies.c.id))
    out: dict[str, list[Unsettled]] = {}
    if conn is None:
        with store.engine.connect() as own:
            rows = own.execute(query).all()
    else:
        rows = conn.execute(query).all()
    for r in rows:
        cents = reported_cents(r.reported, r.amount_cents)
        out.setdefault(invoice_key(r.invoice), []).append(Unsettled(
            r.id, r.invoice, r.id_op, cents, r.result_code, r.transaction_at or r.resolved_at,
            r.run_id, None if r.id_bord is None else int(r.id_bord), r.saisie,
            bool(r.active)))
    return out


@dataclass(frozen=True)
class Recorded:
    """What ``record_operation`` found while recording an operation: the cancellation
    of its title (``cancelled``, in words), or the payment of its invoice (``paid``: the
    payment's row), recorded since the invoice was found due; None each when none."""

    cancelled: str | None = None
    paid: dict[str, Any] | None = None
    # the rejection of the title's bordereau by the trésorerie, recorded since (`pesgen
    # acquit --record`), in words
    rejected: str | None = None
    # the invoice's payments through its cancelled title's link after the cancellation,
    # not settled (``unsettled_payments``): one may have come in since it was found due
    unsettled: list[Unsettled] | None = None
    # the invoice's operations open when it was recorded, this one left out
    # (``open_operations_of``, read in its transaction)
    still_open: list[dict[str, Any]] = field(default_factory=list)
    # the name of the acquit ``rejected`` was recorded from (the store keeps no folder)
    rejected_acquit: str | None = None


def record_operation(store: Store, op: dict[str, Any],
                     unless_open: Callable[[list[dict[str, Any]]], None] | None = None,
                     claim: str | None = None) -> Recorded:
    """Record an operation PayFiP just issued and open (or reopen) the invoice's payment.
    Says (``Recorded``) when the title was cancelled, its bordereau rejected by the
    trésorerie, or the invoice paid, or paid through its cancelled title's link and not
    settled, since it was found due (while PayFiP made the operation): the operation is
    recorded all the same (a payment through it is then an anomaly: run-cancelled,
    double-payment; or listed by `acquit --record` as a link open on a rejected
    bordereau), but its link must not be given; and the invoice's operations open then
    (``still_open``). ``unless_open`` is given them first, in the transaction: raising,
    it records nothing (`payfip link`'s rule payfip.open-link: another link recorded
    since the invoice was checked). Two recordings for one title go in turn, the second
    seeing the first's operation: on PostgreSQL each locks the title's run's row
    (``_title_cancelled``) before reading them; SQLite's write transactions are in turn.
    ``claim``: the token of the command's claim on the invoice (``claims.take``),
    removed in the same transaction."""
    now = utc_now()
    with store.transaction() as conn:
        # a rejection recorded meanwhile (`acquit --record`, under this lock) is seen
        # here, or is recorded after this operation and lists it as open
        lock_acknowledgements(conn, shared=True)
        cancelled = _title_cancelled(conn, op.get("run_id"), op["invoice"], lock=True)
        # read once the run's row is locked: an operation another link recorded for the
        # title is committed by then, and each statement of the transaction (READ
        # COMMITTED) sees it
        still_open = open_operations_of(store, op["id_coll"], op["invoice"], conn)
        if unless_open is not None:
            unless_open(still_open)
        rejected = _title_rejected(store, conn, op.get("run_id"), op["invoice"])
        unsettled = unsettled_payments(store, op["id_coll"], conn).get(
            invoice_key(op["invoice"]))
        conn.execute(operations.insert().values(**op, created_at=now, status="pending"))
        if claim is not None:
            claims.drop(conn, op["id_coll"], op["invoice"], claim)
        pay = _payment_row(conn, op["id_coll"], op["invoice"])
        if pay is None:
            conn.execute(payments.insert().values(
                id_coll=op["id_coll"], invoice=op["invoice"],
                invoice_key=invoice_key(op["invoice"]), status="pending",
                amount_cents=op["amount_cents"], last_id_op=op["id_op"], refdet=op["refdet"],
                created_at=now, updated_at=now))
        else:
            values: dict[str, Any] = {"last_id_op": op["id_op"], "refdet": op["refdet"],
                                      "amount_cents": op["amount_cents"], "updated_at": now}
            if pay["status"] != "paid":
                values["status"] = "pending"
            if pay["status"] == "refunded":  # the refunded payment is no longer the row's
                values.update(paid_cents=None, method=None, paid_at=None, id_op=None,
                              numauto=None, applied_run=None)
            conn.execute(payments.update().where(payments.c.id == pay["id"]).values(**values))
        _event(conn, op, "created", "link", "pending" if pay is None or pay["status"] != "paid"
               else "paid", {"amount": cents_text(op["amount_cents"]), "saisie": op["saisie"]},
               at=now)
    return Recorded(cancelled, pay if pay is not None and pay["status"] == "paid" else None,
                    None if rejected is None else rejected[0], unsettled, still_open,
                    None if rejected is None else rejected[1])


def _title_rejected(store: Store, conn: Connection, run_id: str | None,
                    invoice: str) -> tuple[str, str] | None:
    """The rejection of an active title's bordereau (the run and the invoice as that
    run wrote it), as its Hélios status records it, in words, and the name of the
    acquit it was recorded from; None: not rejected (or cancelled:
    ``_title_cancelled``'s)."""
    if not run_id:
        return None
    id_bord = conn.execute(sa.select(run_invoices.c.id_bord).where(
        run_invoices.c.run_id == run_id, run_invoices.c.invoice == invoice,
        run_invoices.c.active)).scalar()
    if id_bord is None:
        return None
    ack = rejected_bordereaux(store, run_id, [id_bord], conn=conn).get(id_bord)
    if ack is None:
        return None
    return (f"IdBord {id_bord} of run {run_id}, rejected by the trésorerie: "
            f"{ack.outcome} ({ack.file})", ack.file)


def title_cancelled(store: Store, id_op: str) -> str | None:
    """The cancellation of the title an operation was made for, in words, or None (the
    title active, or the operation unknown)."""
    op = get_operation(store, id_op)
    if op is None:
        return None
    with store.engine.connect() as conn:
        return _title_cancelled(conn, op["run_id"], op["invoice"])


def _title_cancelled(conn: Connection, run_id: str | None, invoice: str,
                     lock: bool = False) -> str | None:
    """The cancellation of a title (the run and the invoice as that run wrote it), in
    words, or None while it is active (or unknown). ``lock``: on PostgreSQL the run's
    row is locked as `runs cancel` locks it, so that a cancellation either sees an
    operation recorded for the title or comes before and is seen here."""
    if not run_id:
        return None
    run, title = _run_and_title(conn, run_id, invoice, lock)
    if run is None or title is None or title.active:
        return None
    own = conn.execute(sa.select(cancelled_bordereaux.c.cancelled_at).where(
        cancelled_bordereaux.c.run_id == run_id,
        cancelled_bordereaux.c.id_bord == title.id_bord)).scalar()
    return f"IdBord {title.id_bord} of run {run_id}, cancelled on {own or run.cancelled_at}"


def _run_and_title(conn: Connection, run_id: str, invoice: str, lock: bool = False
                   ) -> tuple[Any, Any]:
    """A run's row (status, cancelled_at) and its title of the invoice as that run wrote
    it (id_bord, active), each None when there is none. ``lock``: see _title_cancelled."""
    query = sa.select(runs.c.status, runs.c.cancelled_at).where(runs.c.id == run_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    run = conn.execute(query).first()
    title = conn.execute(sa.select(run_invoices.c.id_bord, run_invoices.c.active).where(
        run_invoices.c.run_id == run_id, run_invoices.c.invoice == invoice)).first()
    return run, title


def apply_detail(store: Store, id_op: str, detail: PaymentDetail, source: str) -> Outcome:
    """Apply PayFiP's trusted result to the operation it answers, once."""
    now = utc_now()
    with store.transaction() as conn:
        op = _operation_row(conn, id_op)
        if op is None:
            _anomaly(conn, "unknown-idop", id_op, None, source, None, None,
                     "a result for an operation pesgen never issued", at=now)
            return Outcome(id_op, "unknown-idop", anomalies=("unknown-idop",))
        if source == "notification":
            _count_notification(conn, id_op)
        if op["status"] in FINAL:
            return Outcome(id_op, "already", op["status"], op["invoice"])

        mismatches = []
        if detail.idOp and detail.idOp != id_op:
            mismatches.append(("idop-mismatch", id_op, detail.idOp))
        if detail.numcli != op["numcli"]:
            mismatches.append(("numcli-mismatch", op["numcli"], detail.numcli))
        if detail.refdet != op["refdet"]:
            mismatches.append(("refdet-mismatch", op["refdet"], detail.refdet))
        if not detail.montant.isdigit() or int(detail.montant) != op["amount_cents"]:
            mismatches.append(("amount-mismatch", str(op["amount_cents"]), detail.montant))
        # PayFiP echoes saisie: a production operation answered as a test (or the reverse)
        # is neither a payment nor a test payment for sure
        if detail.saisie and detail.saisie != op["saisie"]:
            mismatches.append(("saisie-mismatch", op["saisie"], detail.saisie))
        if detail.status == "unknown":
            mismatches.append(("unknown-result", "P, V, R, Z or A", detail.resultrans))

        pay = _payment_row(conn, op["id_coll"], op["invoice"])
        clean = not mismatches  # the result is what pesgen asked for
        if detail.status == "paid":
            # money paid through a link of a title that is no longer the one due (its run
            # was cancelled, or the invoice re-exported at another amount) is for a
            # person to settle with the trésorerie, not a plain payment of what is due;
            # said beside any other mismatch (an amount too): the money is for a
            # cancelled title, whatever else is wrong with it
            if op["run_id"]:
                # its bordereau alone cancelled (`runs cancel --bordereau`): the title is
                # no longer active, though its run is
                run, title = _run_and_title(conn, op["run_id"], op["invoice"])
                run_status = None if run is None else run.status
                if run_status != "committed":
                    mismatches.append(("run-cancelled", f"run {op['run_id']} active",
                                       f"run {op['run_id']} {run_status or 'missing'}"))
                elif title is not None and not title.active:
                    mismatches.append(("run-cancelled", f"run {op['run_id']} active",
                                       f"run {op['run_id']}: IdBord {title.id_bord} "
                                       "cancelled"))
            if pay and pay["amount_cents"] != op["amount_cents"] and clean:
                mismatches.append(("amount-due-changed", str(pay["amount_cents"]),
                                   str(op["amount_cents"])))
        pay_status = pay["status"] if pay else "pending"
        test = op["saisie"] in SAISIE_TEST
        # a second payment of a paid invoice, whatever else is wrong with it (through a
        # cancelled title's link too): said beside the other mismatches, never left out
        double = (detail.status == "paid" and not test and pay is not None
                  and pay["status"] == "paid" and pay["id_op"] != id_op)
        if double and mismatches:
            assert pay is not None  # double: a payment of it was made
            mismatches.append(("double-payment", pay["id_op"], id_op))
        new = "anomaly" if mismatches else detail.status
        until = active_until(op["created_at"])
        if new == "abandoned" and now < until:
            # an abandon within the idOp's life: the family may go back and pay through it
            # (notes payfip.md §7, §8): not final yet; asked again by the next notification
            # and by reconcile, and final once a pull after that time still says A
            why = (f"result A (abandoned) before {until}: the operation is still active, "
                   "the family may still pay through it; asked again until then")
            conn.execute(operations.update().where(
                operations.c.id_op == id_op, operations.c.status.in_(OPEN)).values(
                status="pending", result_code=detail.resultrans[:4], checked_at=now,
                checks=operations.c.checks + 1, last_error=why))
            return Outcome(id_op, "pending", "pending", op["invoice"], why)
        if new == "paid" and test:
            # no money for the invoice: like a refusal, it speaks for the invoice only as
            # the result of its latest link, and never over a payment
            new = "test-paid"
        done = conn.execute(operations.update().where(
            operations.c.id_op == id_op, operations.c.status.in_(OPEN)).values(
            status=new, result_code=detail.resultrans[:4], numauto=detail.numauto or None,
            transaction_at=detail.transaction_time, resolved_at=now, checked_at=now,
            checks=operations.c.checks + 1, last_error=None))
        if done.rowcount == 0:  # resolved meanwhile by another path
            return Outcome(id_op, "already", op["status"], op["invoice"])

        if mismatches:
            for kind, expected, got in mismatches:
                _anomaly(conn, kind, id_op, op["invoice"], source, expected, got,
                         f"result {detail.resultrans or '?'} not recorded as a payment",
                         at=now)
            _event(conn, op, "anomaly", source, pay_status,
                   {"result": detail.resultrans, "kinds": [m[0] for m in mismatches]}, at=now)
            log.warning("payfip %s: operation %s: anomaly (%s)", source, id_op,
                        ", ".join(m[0] for m in mismatches))
            return Outcome(id_op, "anomaly", "anomaly", op["invoice"],
                           ", ".join(m[0] for m in mismatches),
                           tuple(m[0] for m in mismatches))

        values: dict[str, Any] = {"updated_at": now}
        undated = False  # a payment recorded without PayFiP's transaction time
        event = new
        if new == "paid":
            if pay_status == "paid" and pay and pay["id_op"] != id_op:
                _anomaly(conn, "double-payment", id_op, op["invoice"], source, pay["id_op"],
                         id_op, "the invoice was already paid by another operation", at=now)
                # not the invoice's payment: a history reader must not count it as one
                event = "double-payment"
            else:
                undated = detail.transaction_time is None
                values.update(status="paid", paid_cents=int(detail.montant),
                              method=detail.method, paid_at=detail.transaction_time or now,
                              id_op=id_op, numauto=detail.numauto or None)
                pay_status = "paid"
        elif pay_status != "paid" and pay and pay["last_id_op"] == id_op:
            values["status"] = new
            pay_status = new
        if pay:
            conn.execute(payments.update().where(payments.c.id == pay["id"]).values(**values))
        result: dict[str, Any] = {"result": detail.resultrans, "method": detail.method,
                                  "transaction_at": detail.transaction_time}
        if test:
            result["saisie"] = op["saisie"]
        if undated:
            result["paid_at_source"] = "recorded"
        if event == "double-payment":
            result["paid_by"] = pay["id_op"] if pay else None
        _event(conn, op, event, source, pay_status, result, at=now)
    recorded: tuple[str, ...] = ()
    if event == "double-payment":
        recorded = ("double-payment",)
        # the operation is paid, but it pays nothing: an anomaly, said as the others are
        # (a log read for "anomaly" finds it)
        log.warning("payfip %s: operation %s: paid, anomaly (double-payment)", source, id_op)
    else:
        log.info("payfip %s: operation %s: %s", source, id_op, new)
    if undated:
        # the payment is PayFiP's word (result, amount, refdet, numcli checked), only its
        # time is missing: recorded, with paid_at the time of recording, and said so
        # (`payfip payments`: paid_at_source "recorded")
        log.warning("payfip %s: operation %s: no dattrans/heurtrans in the result",
                    source, id_op)
        return Outcome(id_op, "recorded", new, op["invoice"], NO_TRANSACTION_TIME, recorded)
    return Outcome(id_op, "recorded", new, op["invoice"], anomalies=recorded)


def note_check(store: Store, id_op: str, source: str, status: str,
               error: str | None = None) -> Outcome:
    """A pull that taught nothing final: P5 (pending), or PayFiP unreachable (unknown)."""
    with store.transaction() as conn:
        if source == "notification":
            _count_notification(conn, id_op)
        conn.execute(operations.update().where(
            operations.c.id_op == id_op, operations.c.status.in_(OPEN)).values(
            status=status, checked_at=utc_now(), checks=operations.c.checks + 1,
            last_error=error))
        op = _operation_row(conn, id_op)
    return Outcome(id_op, "pending" if status == "pending" else "error",
                   op["status"] if op else None, op["invoice"] if op else None, error or "")


def expire(store: Store, id_op: str, source: str, reason: str) -> Outcome:
    """PayFiP no longer knows the operation (P1): nobody paid it; stop asking."""
    now = utc_now()
    with store.transaction() as conn:
        op = _resolve(conn, id_op, "expired", reason, now)
        if op is None or op["status"] not in OPEN:
            return Outcome(id_op, "already", op["status"] if op else None)
        pay = _payment_row(conn, op["id_coll"], op["invoice"])
        status = pay["status"] if pay else "pending"
        if pay and pay["status"] != "paid" and pay["last_id_op"] == id_op:
            conn.execute(payments.update().where(payments.c.id == pay["id"]).values(
                status="expired", updated_at=now))
            status = "expired"
        _event(conn, op, "expired", source, status, {"reason": reason}, at=now)
    return Outcome(id_op, "expired", "expired", op["invoice"], reason)


def refused_lookup(store: Store, id_op: str, source: str, reason: str) -> Outcome:
    """PayFiP answered the result lookup with a business error other than P1/P5 (P4 idOp
    expired, P3 already used...): asking again gets the same answer, so the operation
    stops being polled and goes to the anomalies for a person; the invoice stays as it
    is (nothing says whether the family paid)."""
    now = utc_now()
    with store.transaction() as conn:
        op = _resolve(conn, id_op, "anomaly", reason, now)
        if op is None or op["status"] not in OPEN:
            return Outcome(id_op, "already", op["status"] if op else None)
        _anomaly(conn, "lookup-refused", id_op, op["invoice"], source, None, reason,
                 "PayFiP refused the result lookup; the result is not known", at=now)
        pay = _payment_row(conn, op["id_coll"], op["invoice"])
        _event(conn, op, "anomaly", source, pay["status"] if pay else "pending",
               {"reason": reason}, at=now)
    log.warning("payfip %s: operation %s: anomaly (lookup-refused)", source, id_op)
    return Outcome(id_op, "anomaly", "anomaly", op["invoice"], reason, ("lookup-refused",))


def record_unknown(store: Store, id_op: str, source: str) -> Outcome:
    """A notification for an idOp pesgen never issued: forged, or another system's."""
    with store.transaction() as conn:
        _anomaly(conn, "unknown-idop", id_op, None, source, None, None,
                 "notification for an operation pesgen never issued; rejected", at=utc_now())
    log.warning("payfip %s: rejected unknown operation %s", source, id_op)
    return Outcome(id_op, "unknown-idop", anomalies=("unknown-idop",))


def count_notification(store: Store, id_op: str) -> None:
    with store.transaction() as conn:
        _count_notification(conn, id_op)


def open_operation_ids(store: Store, since: str | None = None) -> list[str]:
    """The idOps of the operations still open (pending, unknown), oldest first; read
    whole before the sweep writes (a SQLite reader left open would hold its lock)."""
    query = sa.select(operations.c.id_op).where(operations.c.status.in_(OPEN)).order_by(
        operations.c.created_at, operations.c.id_op)
    if since:
        query = query.where(operations.c.created_at >= since)
    with store.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def _payments_with_titles(ids: list[int] | sa.Select[tuple[int]] | None = None
                          ) -> sa.Subquery:
    """Each payment (one per invoice) with the title it follows, that of the operation its
    status comes from (the paying one once paid, else the latest link): ``saisie``, the
    title's run, IdBord and IdPce (``title_run``, ``title_id_bord``, ``title_id_pce``;
    None for an operation without a recorded title), ``title_active``, and
    ``cancelled_at``, when the title was cancelled (its bordereau's own cancellation,
    else its run's; None while it is active). A title is cancelled when its row of
    run_invoices is no longer active. ``ids``: only these payments (their ids, or a query
    of them)."""
    source = operations.alias("source_op")
    title = run_invoices.alias("title")
    query = sa.select(
        payments, source.c.saisie, source.c.transaction_at,
        title.c.run_id.label("title_run"),
        title.c.id_bord.label("title_id_bord"), title.c.id_pce.label("title_id_pce"),
        title.c.active.label("title_active"),
        title.c.invoice_key.label("title_key"),
        sa.case((sa.not_(title.c.active), sa.func.coalesce(
            cancelled_bordereaux.c.cancelled_at, runs.c.cancelled_at)),
            else_=sa.null()).label("cancelled_at"),
    ).select_from(payments.outerjoin(
        source, source.c.id_op == sa.case((payments.c.status == "paid", payments.c.id_op),
                                          else_=payments.c.last_id_op)).outerjoin(
        title, sa.and_(title.c.run_id == paid_title_run(source.c.run_id),
                       title.c.invoice == source.c.invoice)).outerjoin(
        runs, runs.c.id == title.c.run_id).outerjoin(
        cancelled_bordereaux, sa.and_(cancelled_bordereaux.c.run_id == title.c.run_id,
                                      cancelled_bordereaux.c.id_bord == title.c.id_bord))
    )
    return (query if ids is None else query.where(payments.c.id.in_(ids))
            ).subquery("payment_titles")


def _cancelled(row: dict[str, Any]) -> bool:
    """Whether the title a payment follows is cancelled (False when it has none)."""
    return row["title_active"] is not None and not row["title_active"]


def _due_again(row: dict[str, Any]) -> bool:
    """Whether a payment's title is due again though PayFiP shows it paid: the trésorerie
    refunded the payment (``refunded``) while the title was cancelled, and the title was
    reinstated since (active): nothing of that payment is its."""
    return row["status"] == "refunded" and not _cancelled(row)


def _titles_again(store: Store, conn: Connection, cancelled: set[tuple[str, str]]
                  ) -> dict[tuple[str, str], tuple[str, int, str, int]]:
    """The active titles of invoices whose PayFiP title was cancelled, when exported
    again since (a run of the collectivity holds them, compared by invoice key): (id_coll,
    invoice) -> (run, IdBord, amount due, IdPce); an invoice no active title holds is
    left out.
    Looked up 500 invoices a query (two queries an invoice before: 40 000 for a
    cancelled run of 20 000 paid titles exported again)."""
    by_coll: dict[str, list[str]] = {}
    for id_coll, invoice in cancelled:
        by_coll.setdefault(id_coll, []).append(invoice)
    out: dict[tuple[str, str], tuple[str, int, str, int]] = {}
    for id_coll, invoices in by_coll.items():
        # by key: two numbers of one key (written otherwise) have the same holder
        held = {invoice_key(inv): holder for inv, holder in
                store.holders(conn, id_coll, sorted(invoices)).items()}
        pieces = store.active_pieces(conn, {h[1] for h in held.values()},
                                     {h[0] for h in held.values()})
        for invoice in invoices:
            holder = held.get(invoice_key(invoice))
            if holder is not None:
                written, run_id, id_bord, _file = holder
                amount, id_pce = pieces[run_id, written]
                out[id_coll, invoice] = (run_id, id_bord, str(amount), id_pce)
    return out


def _histories(conn: Connection, invoices: set[tuple[str, str]]
               ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The events of these invoices ((id_coll, invoice)), oldest first, 500 invoices a
    query (one query an invoice before)."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    names = sorted({invoice for _, invoice in invoices})
    for part in chunks(names):
        for e in conn.execute(sa.select(events).where(
                events.c.invoice.in_(part)).order_by(events.c.id)):
            if (e.id_coll, e.invoice) in invoices:
                out.setdefault((e.id_coll, e.invoice), []).append(
                    {"at": e.at, "event": e.event, "source": e.source, "status": e.status,
                     "id_op": e.id_op,
                     **({"detail": json.loads(e.detail)} if e.detail else {})})
    return out


def list_payments(store: Store, since: date | None = None, history: bool = False
                  ) -> list[dict[str, Any]]:
    """``iter_payments``' rows in a list."""
    return list(iter_payments(store, since, history))


PAYMENTS_CHUNK = 500  # invoices read, and looked up, at a time


def iter_payments(store: Store, since: date | None = None, history: bool = False,
                  chunk: int = PAYMENTS_CHUNK, invoices: Collection[str] | None = None
                  ) -> Iterator[dict[str, Any]]:
    """Payments per invoice changed since a date (UTC), oldest change first. ``saisie``
    is the mode of the operation the status comes from: the paying one once paid, else
    the latest link (only its result changes the status of an unpaid invoice); ``run``
    and ``id_bord`` are its title's.

    A cancelled title (its run or bordereau cancelled) is no longer due: its ``status``
    is ``cancelled``, ``amount_due`` 0.00, and what PayFiP says stays in
    ``payfip_status``, with any payment received (``amount_paid``, ``method``…: money
    to refund or apply to another title); ``cancelled_at`` says when. Its cancellation
    counts as a change for ``since``, and so do its invoice's export again, its
    reinstatement (``runs reinstate``: the title active again) and a `run-cancelled`
    anomaly of its invoice recorded or resolved (``held-back``, then not). A title
    reinstated since whose payment the trésorerie refunded (``refunded``) is due again:
    ``pending``, nothing paid shown (``payfip_status`` stays ``refunded``).

    An invoice exported again since its title was cancelled (and no link made for its
    new title since) is listed twice: first the cancelled title's row as above (the
    money it received stays there, never moved to the new title), then the new title's:
    ``pending``, its amount due, its run and IdBord, nothing paid, and no PayFiP record
    (``payfip_status``, ``id_op``, ``last_id_op``, ``refdet``, ``saisie`` empty) until a
    link is made for it. ``history`` (the invoice's events) goes with the first row.

    ``held-back`` (``HELD_BACK``) instead of ``pending`` (or of what PayFiP says of an
    unpaid title due): the family paid through the invoice's cancelled title, money the
    trésorerie has still to apply or refund (its `paid-cancelled` anomaly unanswered: the
    cancelled title's payment is ``paid``; or a `run-cancelled` anomaly open,
    ``_held_back``): `payfip link` refuses the title, and the family is not to be asked
    for it.

    The rows come ``chunk`` invoices at a time: the payments' ids are read first, in
    their order (the listing is of the payments there then), then each chunk's rows,
    titles exported again and histories in a query each, so memory grows by an id per
    invoice, not by its rows (the list of every row, then the whole file's text, took
    1.1 GiB for 100 000 with ``--history``). No query stays open while the rows are
    written out: a reader slow to take them (a pager) holds no lock of a SQLite store
    that `payfip serve` writes to.

    ``invoices``: only the payments of these invoice numbers, compared by their key
    (``keys.invoice_key``, as `runs find` and the guard compare them: case, surrounding
    spaces and look-alike characters aside); None: every payment (the listing reads as
    it did, no filter added)."""
    p_ = _payments_with_titles()
    query = sa.select(p_.c.id).order_by(p_.c.updated_at, p_.c.invoice)
    wanted: set[str] = set()
    if invoices is not None:
        # the payments' recorded keys (migration 17), and those with none (a row written
        # otherwise than by record_operation), keyed below
        wanted = {invoice_key(i) for i in invoices}
        query = sa.select(p_.c.id, p_.c.invoice, p_.c.invoice_key).order_by(
            p_.c.updated_at, p_.c.invoice).where(sa.or_(
                p_.c.invoice_key.in_(sorted(wanted)), p_.c.invoice_key.is_(None)))
    if since:
        day = since.isoformat()
        # a cancelled title's invoice exported again since: due again (its new title's
        # row), though neither its payment nor its cancellation changed
        again, again_run = run_invoices.alias("again"), runs.alias("again_run")
        exported_again = sa.exists().where(
            again.c.id_coll == p_.c.id_coll, again.c.invoice_key == p_.c.title_key,
            again.c.active, again_run.c.id == again.c.run_id, again_run.c.created_at >= day)
        # its title reinstated since: due or paid again, though neither its payment nor
        # a cancellation changed (the software kept it cancelled)
        reinstated = sa.exists().where(reinstatements.c.run_id == p_.c.title_run,
                                       reinstatements.c.id_bord == p_.c.title_id_bord,
                                       reinstatements.c.reinstated_at >= day)
        # held back or released since (held-back, then pending again): a run-cancelled
        # anomaly of money collected recorded or resolved since, though the invoice's
        # payment did not change; not correlated: read once, not for each payment (an
        # unknown-idop flood may make the anomalies many)
        held_op = operations.alias("held_op")
        hold_changed = sa.tuple_(p_.c.id_coll, p_.c.invoice).in_(
            sa.select(held_op.c.id_coll, held_op.c.invoice)
            .select_from(anomalies.join(held_op, held_op.c.id_op == anomalies.c.id_op))
            .where(_collected_through_cancelled(held_op),
                   sa.or_(anomalies.c.at >= day, anomalies.c.resolved_at >= day)))
        query = query.where(sa.or_(p_.c.updated_at >= day, p_.c.cancelled_at >= day,
                                   sa.and_(sa.not_(p_.c.title_active), exported_again),
                                   sa.and_(p_.c.title_active, reinstated), hold_changed))
    with store.engine.connect() as conn:
        if invoices is None:
            ids = list(conn.execute(query).scalars())
        else:
            ids = [r.id for r in conn.execute(query)
                   if (r.invoice_key or invoice_key(r.invoice)) in wanted]
        held = _held_back(conn)
    for part in chunks(ids, chunk):
        place = {id_: n for n, id_ in enumerate(part)}
        with store.engine.connect() as conn:
            rows = sorted((dict(row._mapping) for row in conn.execute(
                sa.select(_payments_with_titles(part)))), key=lambda p: place[p["id"]])
            titles_again = _titles_again(store, conn, {(p["id_coll"], p["invoice"])
                                                       for p in rows if _cancelled(p)})
            histories = _histories(conn, {(p["id_coll"], p["invoice"]) for p in rows}
                                   ) if history else {}
        for p in rows:
            yield from _payment_rows(p, titles_again, histories, history, held)


def _held_back(conn: Connection) -> set[tuple[str, str]]:
    """The invoices (collectivity, ``keys.invoice_key``) held back by money paid through
    the link of a cancelled title, its `run-cancelled` anomaly open: what
    ``unsettled_payments`` finds (a test link's, saisie T, collected nothing and holds back
    none), for every collectivity in one query (open anomalies are few)."""
    query = (sa.select(operations.c.id_coll, anomalies.c.invoice)
             .select_from(anomalies.join(operations, operations.c.id_op == anomalies.c.id_op))
             .where(_collected_through_cancelled(operations),
                    anomalies.c.resolved_at.is_(None)))
    return {(r.id_coll, invoice_key(r.invoice)) for r in conn.execute(query)}


HELD_BACK = "held-back"  # payments' status of a title due that gets no payment yet


def _payment_rows(p: dict[str, Any], again: dict[tuple[str, str], tuple[str, int, str, int]],
                  histories: dict[tuple[str, str], list[dict[str, Any]]], history: bool,
                  held: Collection[tuple[str, str]] = ()
                  ) -> Iterator[dict[str, Any]]:
    """The rows ``iter_payments`` gives of one payment: its own, then its new title's
    when its invoice was exported again since its title was cancelled. ``held``: the
    invoices held back by money paid through a cancelled title (``_held_back``)."""
    cancelled = _cancelled(p)
    # money collected that the trésorerie has still to apply or refund: the title due
    # gets no payment (`payfip link` refuses it), and the family is not to be asked for it
    held_back = bool(held) and (p["id_coll"], invoice_key(p["invoice"])) in held
    item = {
        "invoice": p["invoice"], "collectivity": p["id_coll"],
        "status": "cancelled" if cancelled else HELD_BACK if held_back and p["status"] != "paid"
        else "pending" if _due_again(p) else p["status"],
        "amount_due": cents_text(0 if cancelled else p["amount_cents"]),
        "amount_paid": cents_text(p["paid_cents"]) if p["paid_cents"] is not None
        else None,
        "method": p["method"], "paid_at": p["paid_at"],
        # where paid_at comes from: PayFiP's dattrans/heurtrans, or the time pesgen
        # recorded a paid answer that had none
        "paid_at_source": None if p["paid_at"] is None else
        "payfip" if p["transaction_at"] else "recorded",
        "id_op": p["id_op"],
        "last_id_op": p["last_id_op"], "numauto": p["numauto"], "refdet": p["refdet"],
        "updated_at": p["updated_at"], "saisie": p["saisie"],
        "payfip_status": p["status"], "run": p["title_run"],
        "id_bord": p["title_id_bord"],
        "cancelled_at": p["cancelled_at"] if cancelled else None}
    if not cancelled and p["status"] != "paid" and p["id_op"] is not None:
        # a payment refunded, its title reinstated since: due, nothing paid (the history
        # says what was), its status refunded, or its last link's result since (refused,
        # expired…: the refunded payment stays on the row until a new link is made)
        item.update(amount_paid=None, method=None, paid_at=None, paid_at_source=None,
                    id_op=None, numauto=None)
    if history:
        item["history"] = histories.get((p["id_coll"], p["invoice"]), [])
    yield item
    # exported again since: its new title is due, and nothing PayFiP recorded is its
    # (the money, the links are the cancelled title's, listed above)
    new = again.get((p["id_coll"], p["invoice"])) if cancelled else None
    if new is not None:
        run_id, id_bord, due, _id_pce = new
        # paid before its cancellation (its paid-cancelled anomaly not answered: the
        # invoice stays paid for pesgen), or through its link since: held back
        yield {
            **{k: None for k in item}, "invoice": p["invoice"],
            "collectivity": p["id_coll"],
            "status": HELD_BACK if held_back or p["status"] == "paid" else "pending",
            "amount_due": cents_text(to_cents(due)), "updated_at": p["updated_at"],
            "run": run_id, "id_bord": id_bord,
            **({"history": []} if history else {})}


# What support does about each kind of anomaly, in a line (docs/payfip.md, "Anomalies:
# what support does", says more). Every kind recorded is here (tests/test_payfip_cli.py).
ANOMALY_ADVICE = {
    "amount-mismatch": "PayFiP reports another amount than the one asked: ask the trésorerie "
                       "what was collected; settle the difference with it (refund, or the "
                       "rest by another means); record a payment in the school software by "
                       "hand if one was made",
    "refdet-mismatch": "the answer is about another debt: check the mapping's payfip.refdet "
                       "and ask the trésorerie whether this family paid",
    "numcli-mismatch": "the answer is for another PayFiP client: check payfip.numcli and the "
                       "endpoint, and ask the trésorerie whether this family paid",
    "idop-mismatch": "PayFiP answered about another operation: check the endpoint (a proxy?), "
                     "and ask the trésorerie whether this family paid",
    "saisie-mismatch": "the answer's mode (test/production) is not the one sent: ask the "
                       "trésorerie whether money was collected, and check payfip.mode",
    "unknown-result": "a result code pesgen does not know: ask the trésorerie what it means "
                      "and whether money was collected",
    "paid-cancelled": "a title paid online was cancelled since (`runs cancel "
                      "--despite-payments`): tell the trésorerie, which applies the money to "
                      "the title exported in its place or refunds it; until then the invoice "
                      "is paid for pesgen (no link, TIPI link nor Datamatrix); resolve it with "
                      "--applied (the new title is then recorded paid) or --refunded (the new "
                      "title gets its links)",
    "run-cancelled": "paid through the link of a cancelled title: tell the trésorerie, which "
                     "applies the money to the new title or refunds it; until this anomaly "
                     "is resolved, the invoice gets no new link, TIPI link nor Datamatrix "
                     "(the family would pay twice; a test link, saisie T, collected nothing "
                     "and holds back none); resolve it with --applied (the new title is "
                     "then recorded paid) or --refunded, as the trésorerie answers",
    "amount-due-changed": "paid the old amount of an invoice exported again at another: "
                          "settle the difference with the trésorerie",
    "double-payment": "the invoice was already paid: ask the trésorerie to refund one payment",
    "lookup-refused": "PayFiP would not give the result: ask the trésorerie whether the family "
                      "paid; if not, send a new link",
    "unknown-idop": "a notification for an operation pesgen never issued (forged, or another "
                    "system's): nothing to pay; look at the receiver if there are many",
}


ANOMALIES_CHUNK = 500  # anomalies read, and their new titles looked up, at a time


def anomaly_counts(store: Store, after: int = 0, upto: int | None = None
                   ) -> tuple[int, int, int]:
    """The anomalies recorded: how many open, how many resolved, and the number of the
    last one (0: none), in one query; what `payfip anomalies` says, and where its
    listing (``iter_anomalies``' ``upto``) stops. ``after``, ``upto``: only those
    numbered after ``after`` and up to ``upto`` (what a listing cut by its ``--limit``
    leaves: those after the last listed, up to the last counted)."""
    is_open = anomalies.c.resolved_at.is_(None)
    query = (sa.select(sa.func.count().filter(is_open), sa.func.count().filter(~is_open),
                       sa.func.coalesce(sa.func.max(anomalies.c.id), 0))
             .where(anomalies.c.id > after))
    if upto is not None:
        query = query.where(anomalies.c.id <= upto)
    with store.engine.connect() as conn:
        open_count, resolved, last = conn.execute(query).one()
    return int(open_count), int(resolved), int(last)


def anomaly_kinds(store: Store) -> dict[str, tuple[int, int]]:
    """The anomalies recorded, counted by kind in one query: kind -> (open, resolved),
    by kind's name; what `payfip anomalies --summary` says (a flood of one kind, a
    million lines listed, in one line)."""
    is_open = anomalies.c.resolved_at.is_(None)
    query = (sa.select(anomalies.c.kind, sa.func.count().filter(is_open),
                       sa.func.count().filter(~is_open))
             .group_by(anomalies.c.kind).order_by(anomalies.c.kind))
    with store.engine.connect() as conn:
        return {kind: (int(n_open), int(n_resolved))
                for kind, n_open, n_resolved in conn.execute(query)}


def open_anomalies_of(store: Store, invoices: Collection[str]) -> list[dict[str, Any]]:
    """The open anomalies of ``invoices`` (each as its payment row names it), oldest
    first: ``id``, ``at``, ``kind``, ``id_op``, ``invoice``; what `runs find` says under
    an invoice's PayFiP status (a family paid twice: the double payment recorded, for
    the trésorerie to refund)."""
    if not invoices:
        return []
    query = (sa.select(anomalies.c.id, anomalies.c.at, anomalies.c.kind, anomalies.c.id_op,
                       anomalies.c.invoice)
             .where(anomalies.c.resolved_at.is_(None),
                    anomalies.c.invoice.in_(sorted(set(invoices))))
             .order_by(anomalies.c.id))
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def list_anomalies(store: Store, open_only: bool = False) -> list[dict[str, Any]]:
    """Every anomaly of ``iter_anomalies`` in a list (a store's few, for a caller that
    wants them all at once; `payfip anomalies` takes them as they come)."""
    return list(iter_anomalies(store, open_only))


def iter_anomalies(store: Store, open_only: bool = False, upto: int | None = None,
                   chunk: int = ANOMALIES_CHUNK, limit: int | None = None
                   ) -> Iterator[dict[str, Any]]:
    """The anomalies, oldest first (``open_only``: those nobody resolved yet), each with
    its operation's result (``op_result``), amount asked (``op_amount_cents``), the
    amount PayFiP reported when it said another (``op_reported``, cents as text), its
    saisie and its transaction time (``op_paid_at``, else when it was recorded), None
    without an operation; and
    ``invoice_status``: the status of its invoice now, as ``list_payments`` gives it
    (None without one; ``cancelled`` when the title its payment follows is, with
    ``cancelled_at``; ``again_run``, ``again_id_bord`` and ``again_id_pce`` the title
    that holds the invoice when it was exported again since,
    on which nothing is paid; ``pending`` when its payment was refunded and its title
    reinstated since), and ``payfip_status``, what PayFiP says of it; an anomaly
    never changes either; the title that payment follows, cancelled or not, as the
    trésorerie knows it (``title_run``, ``title_id_bord``, ``title_id_pce``; None when
    its operation has no recorded title). A resolved anomaly has its ``resolved_at``,
    ``resolved_by``, ``note`` and ``outcome`` (``OUTCOMES``; ``reinstated``: a
    paid-cancelled one that `runs reinstate` resolved, its title paid again; or None:
    the note alone).

    ``upto``: none after that number (``anomaly_counts``': the listing is of the
    anomalies there when they were counted). ``limit``: the first ``limit`` alone (by
    number), none read past them (`payfip anomalies --limit`). The anomalies come
    ``chunk`` at a time, by number, each chunk's new titles looked up with it: memory
    does not grow with the anomalies (every row held at once took 1.5 GB at 200 000
    `unknown-idop` anomalies of a flood), and no query stays open while they are
    written out (a pager holds no lock of a SQLite store `payfip serve` writes to). An
    anomaly resolved during the listing is listed as its chunk read it."""
    # the chunk: the next anomalies by number; only the payments of their invoices are
    # read with their titles (the whole ledger was, for each chunk)
    # a chunk's size a parameter (SQLAlchemy binds a LIMIT anyway): the last chunk of
    # a limit reads only what it lacks
    chunk_ids = (sa.select(anomalies.c.id).where(anomalies.c.id > sa.bindparam("after"))
                 .order_by(anomalies.c.id).limit(sa.bindparam("size", type_=sa.Integer)))
    if open_only:
        chunk_ids = chunk_ids.where(anomalies.c.resolved_at.is_(None))
    if upto is not None:
        chunk_ids = chunk_ids.where(anomalies.c.id <= upto)
    paid_by_chunk = (sa.select(payments.c.id).select_from(anomalies.join(
        operations, operations.c.id_op == anomalies.c.id_op).join(
        payments, sa.and_(payments.c.id_coll == operations.c.id_coll,
                          payments.c.invoice == anomalies.c.invoice)))
        .where(anomalies.c.id.in_(chunk_ids)))
    p_ = _payments_with_titles(paid_by_chunk)
    # what PayFiP reported collected, when it said another amount than the one asked
    said = reported_amount(anomalies.c.id_op)
    query = (sa.select(anomalies, p_.c.status.label("payfip_status"), p_.c.title_run,
                       p_.c.title_id_bord, p_.c.title_id_pce, p_.c.title_active,
                       p_.c.cancelled_at,
                       operations.c.id_coll.label("op_coll"),
                       operations.c.result_code.label("op_result"),
                       operations.c.amount_cents.label("op_amount_cents"),
                       operations.c.saisie.label("op_saisie"),
                       sa.func.coalesce(operations.c.transaction_at,
                                        operations.c.resolved_at).label("op_paid_at"),
                       said.label("op_reported"))
             .select_from(anomalies.outerjoin(
                 operations, operations.c.id_op == anomalies.c.id_op).outerjoin(
                 p_, sa.and_(p_.c.id_coll == operations.c.id_coll,
                             p_.c.invoice == anomalies.c.invoice)))
             .where(anomalies.c.id.in_(chunk_ids))
             .order_by(anomalies.c.id))
    after, left = 0, limit
    while left is None or left > 0:
        size = chunk if left is None else min(chunk, left)
        with store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query, {"after": after,
                                                                   "size": size})]
            # exported again since: the new title is due, and none of what PayFiP
            # recorded (a payment included) is its: the invoice stays shown by the
            # cancelled title its payment follows, with the new title beside it
            again = _titles_again(store, conn, {(r["op_coll"], r["invoice"]) for r in rows
                                                if _cancelled(r) and r["op_coll"] is not None})
            corrections = _corrections(conn, {r["id_op"] for r in rows
                                              if r["kind"] in SETTLED and r["id_op"]})
        for row in rows:
            row["corrections"] = corrections.get(row["id"], [])
            yield _anomaly_row(row, again)
        if len(rows) < size:
            return
        after = rows[-1]["id"]
        if left is not None:
            left -= len(rows)


def _corrections(conn: Connection, id_ops: set[str]) -> dict[int, list[dict[str, Any]]]:
    """The corrections of these operations' anomalies' answers (``correct_anomaly``'s
    ``anomaly-corrected`` events), by anomaly, oldest first: when, who, the note, the
    answer before and after (``from``, ``to``; None: reopened, or resolved with the note
    alone: ``reopened`` says which)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for part in chunks(sorted(id_ops)):
        for e in conn.execute(sa.select(events.c.at, events.c.detail).where(
                events.c.event == "anomaly-corrected", events.c.id_op.in_(part))
                .order_by(events.c.id)):
            detail = json.loads(e.detail)
            out.setdefault(int(detail["anomaly"]), []).append(
                {"at": e.at, "by": detail["by"], "note": detail["note"],
                 "from": detail["before"]["outcome"], "to": detail["outcome"],
                 "reopened": detail["reopened"], "before": detail["before"],
                 "withdrawn": detail["withdrawn"]})
    return out


def _anomaly_row(row: dict[str, Any],
                 again: dict[tuple[str, str], tuple[str, int, str, int]]) -> dict[str, Any]:
    """An anomaly as read, with its invoice's status now and the title exported again
    (``again``: ``_titles_again``'s) in place of what only served to find them."""
    cancelled = _cancelled(row)
    # popped from every row, whatever its title: rows of one shape (a JSON list, a CSV's
    # header made from the first row)
    op_coll = row.pop("op_coll")
    new = again.get((op_coll, row["invoice"])) if cancelled else None
    row["again_run"], row["again_id_bord"], row["again_id_pce"] = (
        (new[0], new[1], new[3]) if new else (None, None, None))
    row["invoice_status"] = ("cancelled" if cancelled else "pending" if _due_again(
        {**row, "status": row["payfip_status"]}) else row["payfip_status"])
    if not cancelled:
        row["cancelled_at"] = None
    del row["title_active"]
    return row


def resolver(by: str) -> str:
    """Who resolves an anomaly (``--by``), as recorded: stripped, 1 to RESOLVED_BY_MAX
    characters, else UsageError."""
    by = by.strip()
    if not by or len(by) > RESOLVED_BY_MAX:
        raise UsageError(f"--by must be 1 to {RESOLVED_BY_MAX} characters")
    return by


def _anomaly_locked(conn: Connection, anomaly_id: int) -> Any:
    """The anomaly numbered ``anomaly_id``, its row locked on PostgreSQL until the
    transaction ends (a resolution or a correction made beside it waits); refused
    (StateError) when there is none."""
    query = sa.select(anomalies).where(anomalies.c.id == anomaly_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise StateError(f"no anomaly {anomaly_id} (`pesgen payfip anomalies --all` "
                         "lists them)")
    return row


def resolve_anomaly(store: Store, anomaly_id: int, by: str, note: str,
                    outcome: str | None = None, correct: bool = False,
                    note_only: bool = False) -> dict[str, Any]:
    """Record a person's decision on an anomaly: who, when, and the note. It records no
    payment and changes no status: the invoice stays as it is (an amount-mismatch leaves
    it pending); a payment made outside PayFiP's result is the school software's. The
    invoice's history gets an ``anomaly-resolved`` event (source ``support``). Returns
    the anomaly as resolved, with its operation's ``saisie`` and ``id_coll`` (None
    without one).

    ``outcome`` (an anomaly of money collected for a title cancelled since, ``SETTLED``:
    run-cancelled or paid-cancelled; ``OUTCOMES``) is what the trésorerie did with that
    money, recorded with the anomaly. ``refunded``: nothing more for a run-cancelled
    one; a paid-cancelled one's payment becomes ``refunded`` (``_refunded``).
    ``applied``: it applied the money to the title exported in the cancelled one's
    place, which is then paid: the invoice's
    payment becomes that operation's (``paid``, the amount collected, its method and
    time) on that title (``applied_run``: `payfip payments` lists it paid there, `link`,
    `tipi-url` and `datamatrix` refuse it as any paid title), and its history gets a
    ``paid`` event (source ``support``, with the anomaly and the title). Refused
    (StateError, nothing recorded) unless an active title holds the invoice, in a
    bordereau the trésorerie did not reject, for the whole amount collected, and no
    other payment was recorded for it; the result then has ``applied``: that title's
    run, IdBord, the cents and the method, and the invoice's links still open
    (``still_open``, each with its title's ``run_id`` and ``id_bord``: that title's own,
    made while the cancelled title's was, and the cancelled title's others; a payment
    through one would pay it twice).

    An anomaly resolved already is refused (StateError), but one of those resolved with a
    note alone, which takes its ``outcome`` later, when the trésorerie answers: the
    resolution is then this one (who, when, the note, the outcome), and the result's
    ``earlier`` (None otherwise) and its ``anomaly-resolved`` event keep the first one's
    time, author and note.

    ``correct``: the trésorerie's answer recorded on it (``applied``, ``refunded``) was
    the wrong one: ``correct_anomaly`` (``note_only``: corrected into a resolution with
    the note alone, the answer not known; with ``correct`` only, and no ``outcome``)."""
    note, by = note.strip(), resolver(by)
    if not note:
        raise UsageError("a resolution needs a note saying what was decided (--note)")
    if outcome is not None and outcome not in OUTCOMES:
        raise UsageError(f"outcome '{outcome}': one of {', '.join(OUTCOMES)}")
    if note_only and not correct:
        raise UsageError("--note-only goes with --correct (an answer recorded by mistake, "
                         "taken back, the anomaly left resolved with the note alone); "
                         "without --correct, a resolution with --note alone is one already")
    if note_only and outcome is not None:
        raise UsageError(f"--note-only or --{outcome}: the corrected resolution records the "
                         "trésorerie's answer, or none (the note alone)")
    # on PostgreSQL the anomaly's, its operation's and its payment's rows another
    # transaction holds are waited for at most store_lock_timeout, said past the grace
    # (on SQLite the store's lock is so); a wait given up rolls back the one transaction
    # that records it: run again, it records it once
    rows = f"the rows of anomaly #{anomaly_id} (its own, its operation's, its payment's)"
    if correct:
        return store.waits_for_rows(partial(correct_anomaly, store, anomaly_id, by, note,
                                            outcome, note_only), rows)
    return store.waits_for_rows(partial(_resolve_now, store, anomaly_id, by, note, outcome), rows)


def _resolve_now(store: Store, anomaly_id: int, by: str, note: str, outcome: str | None
                 ) -> dict[str, Any]:
    """``resolve_anomaly`` without ``correct``, its arguments checked: one transaction."""
    now = utc_now()
    applied: dict[str, Any] | None = None
    with store.transaction() as conn:
        row = _anomaly_locked(conn, anomaly_id)
        # resolved with a note alone, a run-cancelled or paid-cancelled anomaly takes the
        # trésorerie's answer later (--applied, --refunded): the first resolution is kept
        # in the invoice's history (its anomaly-resolved event)
        earlier = None
        if row.resolved_at is not None:
            if outcome is None or row.outcome is not None or row.kind not in SETTLED:
                later = (" (its outcome can still be recorded: --applied or --refunded, with "
                         "the trésorerie's answer)" if row.outcome is None
                         and row.kind in SETTLED and outcome is None else "")
                raise StateError(f"anomaly {anomaly_id} was already resolved on "
                                 f"{row.resolved_at} by {row.resolved_by}"
                                 + (f" ({row.outcome})" if row.outcome else "")
                                 + f": {row.note}{later}")
            earlier = {"resolved_at": row.resolved_at, "resolved_by": row.resolved_by,
                       "note": row.note}
        op = _operation_row(conn, row.id_op) if row.id_op else None
        if outcome is not None:
            _may_have_outcome(row, op, outcome)
        if outcome == "applied" and op is not None:
            applied = _apply(store, conn, row, op, by, now)
        elif outcome == "refunded" and op is not None and row.kind == PAID_CANCELLED:
            _refunded(conn, row, op, by, now)
        conn.execute(anomalies.update().where(
            anomalies.c.id == anomaly_id, anomalies.c.resolved_at.is_(None)
            if earlier is None else anomalies.c.outcome.is_(None)).values(
            resolved_at=now, resolved_by=by, note=note, outcome=outcome))
        if op is not None and row.invoice:
            pay = _payment_row(conn, op["id_coll"], row.invoice)
            detail: dict[str, Any] = {"anomaly": anomaly_id, "kind": row.kind, "by": by}
            if outcome is not None:
                detail["outcome"] = outcome
            if earlier is not None:
                detail["earlier"] = earlier
            _event(conn, {**op, "invoice": row.invoice}, "anomaly-resolved", "support",
                   pay["status"] if pay else "pending", detail, at=now)
    log.info("payfip anomaly %s (%s) resolved%s", anomaly_id, row.kind,
             f" ({outcome})" if outcome else "")
    return {**dict(row._mapping), "resolved_at": now, "resolved_by": by, "note": note,
            "outcome": outcome, "applied": applied, "earlier": earlier,
            "saisie": op["saisie"] if op else None, "id_coll": op["id_coll"] if op else None}


def correct_anomaly(store: Store, anomaly_id: int, by: str, note: str,
                    outcome: str | None, note_only: bool = False) -> dict[str, Any]:
    """Correct the trésorerie's answer recorded on a run-cancelled or paid-cancelled
    anomaly (``applied`` or ``refunded``, typed wrong, or on the wrong anomaly): what that
    answer recorded is taken back, then ``outcome`` is recorded as ``resolve_anomaly``
    records it; ``outcome`` None reopens the anomaly (open again, as before anyone
    resolved it: a run-cancelled one holds its invoice back again), or with ``note_only``
    leaves it resolved with the note alone (who, when, the note; no answer: it takes one
    later, as any resolution with a note alone). Nothing is deleted:
    the invoice's history gets a ``payment-withdrawn`` event when a payment --applied
    recorded is taken back (its row as before: a paid-cancelled one's payment back on its
    cancelled title, a run-cancelled one's invoice unpaid), a ``refund-withdrawn`` one when
    a paid-cancelled one's payment recorded refunded is a payment again, and an
    ``anomaly-corrected`` one (source ``support``: who, the note, the outcome now and the
    resolution before: ``before``), which `payfip anomalies --all` shows
    (``corrections``).

    A resolution `runs reinstate` recorded (``reinstated``: the title active again, paid
    by the money) is corrected to ``refunded`` only, the trésorerie having refunded the
    family while the title was cancelled: a run-cancelled one's payment, recorded by the
    reinstatement, is taken back (the operation an anomaly again, as before); a
    paid-cancelled one's payment, its title's before the cancellation, is recorded
    refunded. Reopened, or applied to the title exported in its place, it would say a
    title is cancelled that is not: refused, naming `runs cancel` for a reinstatement
    made by mistake.

    Refused (StateError, nothing recorded) when the anomaly is open, resolved with a note
    alone, already has that outcome, or when what the answer recorded changed since: the
    payment --applied (or reinstated) recorded is no longer the invoice's, or its title
    was cancelled since; the refunded payment is no longer the invoice's row (a new link
    was made for it since); and, as ``_applicable`` refuses an --applied, when the invoice
    was paid since by another operation (then not reopened either). Returns
    ``resolve_anomaly``'s result with ``corrected``: when, who, the note, the answer
    before and now (``from``, ``to``: None, reopened or the note alone: ``reopened``
    says which), the resolution before (``before``: ``resolved_at``, ``resolved_by``,
    ``note``, ``outcome``) and ``withdrawn`` (what was taken back, or None), as
    ``iter_anomalies``' ``corrections`` give it."""
    now = utc_now()
    applied: dict[str, Any] | None = None
    resolved = outcome is not None or note_only
    with store.transaction() as conn:
        row = _anomaly_locked(conn, anomaly_id)
        head = f"anomaly #{anomaly_id} ({row.kind}, invoice {row.invoice or '-'})"
        if row.kind not in SETTLED:
            raise StateError(f"{head}: --correct corrects the trésorerie's answer recorded on "
                             "a run-cancelled or paid-cancelled anomaly (--applied, "
                             "--refunded); this one takes none")
        if row.resolved_at is None:
            raise StateError(f"{head} is not resolved: there is no answer to correct; "
                             "resolve it without --correct")
        if row.outcome is None:
            why = ("it has no answer to take back (its answer, once known, is recorded "
                   f"without --correct: `pesgen payfip anomalies resolve {anomaly_id} "
                   "--applied` or `--refunded`)" if note_only else "no answer of the "
                   "trésorerie is recorded on it; record it without --correct (`pesgen "
                   f"payfip anomalies resolve {anomaly_id} --applied` or `--refunded`)")
            raise StateError(f"{head} was resolved on {row.resolved_at} by "
                             f"{row.resolved_by} with a note alone: {why}")
        if outcome == row.outcome:
            raise StateError(f"{head}: its recorded answer is {row.outcome} already "
                             f"(resolved on {row.resolved_at} by {row.resolved_by}): "
                             "nothing to correct")
        op = _operation_row(conn, row.id_op) if row.id_op else None
        if op is None or not row.invoice:  # (an outcome was recorded: it had both)
            raise StateError(f"{head}: its operation is not recorded")
        pay = _payment_row(conn, op["id_coll"], row.invoice)
        if row.outcome not in OUTCOMES and outcome != "refunded":
            raise StateError(_reinstated_kept(conn, row, op, pay, head, anomaly_id))
        before = {"resolved_at": row.resolved_at, "resolved_by": row.resolved_by,
                  "note": row.note, "outcome": row.outcome}
        withdrawn = _take_back(store, conn, row, op, pay, by, now, head)
        if not resolved and row.kind != PAID_CANCELLED:
            # reopened, it would hold back an invoice paid since: the money through the
            # cancelled title is then one payment too many, refunded is the only answer
            # (the row as read before: one paid by this operation is not paid since, and
            # taking its payment back leaves it paid by none)
            if pay is not None and pay["status"] == "paid" and pay["id_op"] != op["id_op"]:
                raise StateError(
                    f"{head}: the invoice was paid since ({cents_text(pay['paid_cents'] or 0)} "
                    f"on {pay['paid_at']}, operation {pay['id_op']}): the money paid through "
                    "the cancelled title is one payment too many, for the trésorerie to "
                    f"refund; it is not reopened (its answer stays {row.outcome})")
        if outcome == "applied":
            applied = _apply(store, conn, row, op, by, now)
        elif outcome == "refunded" and row.kind == PAID_CANCELLED:
            _refunded(conn, row, op, by, now)
        if conn.execute(anomalies.update().where(
                anomalies.c.id == anomaly_id, anomalies.c.outcome == row.outcome).values(
                resolved_at=now if resolved else None, resolved_by=by if resolved else None,
                note=note if resolved else None, outcome=outcome)).rowcount != 1:
            # (the row read locked, unreachable; else all of this is rolled back rather
            # than recorded beside another correction made meanwhile)
            raise StateError(f"{head}: its answer changed while it was corrected (another "
                             "correction recorded meanwhile); nothing recorded: see `pesgen "
                             "payfip anomalies --all`, then correct it again if need be")
        # reopened, a run-cancelled one holds back the links to come, not those given
        # since its answer (the title due's, after --refunded): said, for support to tell
        # the family not to use them until the trésorerie answers
        given = (_links_open(conn, op["id_coll"], row.invoice)
                 if not resolved and row.kind != PAID_CANCELLED else [])
        pay = _payment_row(conn, op["id_coll"], row.invoice)
        _event(conn, {**op, "invoice": row.invoice}, "anomaly-corrected", "support",
               pay["status"] if pay else "pending",
               {"anomaly": anomaly_id, "kind": row.kind, "by": by, "note": note,
                "outcome": outcome, "reopened": not resolved, "before": before,
                "withdrawn": withdrawn}, at=now)
    log.info("payfip anomaly %s (%s) corrected: %s -> %s", anomaly_id, row.kind,
             row.outcome, outcome or ("note alone" if resolved else "reopened"))
    return {**dict(row._mapping), "resolved_at": now if resolved else None,
            "resolved_by": by if resolved else None, "note": note if resolved else None,
            "outcome": outcome, "applied": applied, "earlier": None,
            "corrected": {"at": now, "by": by, "note": note, "from": row.outcome,
                          "to": outcome, "reopened": not resolved, "before": before,
                          "withdrawn": withdrawn},
            "links_open": given, "op_run": op["run_id"], "saisie": op["saisie"],
            "id_coll": op["id_coll"]}


def _reinstated_kept(conn: Connection, row: Any, op: dict[str, Any],
                     pay: dict[str, Any] | None, head: str, anomaly_id: int) -> str:
    """Why a resolution `runs reinstate` recorded (outcome ``reinstated``) is corrected to
    --refunded only, and what to do instead: its title is active again, paid by the
    money; reopened, or applied to another title, the anomaly would say a title is
    cancelled that is not."""
    run_id = (pay["applied_run"] if pay is not None and pay["applied_run"] else None
              ) or op["run_id"]
    _run, title = _run_and_title(conn, run_id, row.invoice)
    bordereau = f" --bordereau {title.id_bord}" if title is not None else ""
    return (f"{head} was resolved on {row.resolved_at} by {row.resolved_by} when `runs "
            "reinstate` took its title back (reinstated): that title is active again, paid "
            "by this money, so there is no cancelled title for the anomaly to reopen on nor "
            "another one to apply the money to. If the trésorerie refunded the family while "
            "the title was cancelled: `pesgen payfip anomalies resolve "
            f"{anomaly_id} --correct --refunded --note TEXT`. If the reinstatement was a "
            f"mistake: `pesgen runs cancel {run_id}{bordereau} --despite-payments --reason "
            "TEXT` cancels the title again, its payment then a paid-cancelled anomaly of "
            "its own, to resolve with the trésorerie's answer")


# the status of an unpaid invoice's payment row that its latest link's result gives it
# (apply_detail, expire); else pending, as a link leaves it
_LINK_STATUSES = ("refused", "abandoned", "expired", "test-paid")


def _take_back(store: Store, conn: Connection, row: Any, op: dict[str, Any],
               pay: dict[str, Any] | None, by: str, now: str, head: str
               ) -> dict[str, Any] | None:
    """Take back what an anomaly's recorded answer (``row.outcome``) recorded, for
    ``correct_anomaly``, or refuse (StateError, its message starting with ``head``) when
    it changed since. ``pay``: the invoice's payment row, as read in this transaction.
    Returns what was taken back (None: the answer recorded nothing, a run-cancelled one
    refunded, a paid-cancelled one reinstated)."""
    mine = {**op, "invoice": row.invoice}
    now_said = ("no payment record" if pay is None else f"its payment row is {pay['status']}"
                + (f", operation {pay['id_op']}" if pay["id_op"] else "")
                + f", its latest link operation {pay['last_id_op']}")
    if row.outcome in ("applied", "reinstated"):
        recorded = ("the payment --applied recorded" if row.outcome == "applied" else
                    "the payment its title was reinstated with")
        if (pay is None or pay["status"] != "paid" or pay["id_op"] != op["id_op"]
                or (pay["applied_run"] is None and row.outcome == "applied")):
            raise StateError(
                f"{head}: {recorded} (operation {op['id_op']}) is no "
                f"longer the invoice's ({now_said}): something was recorded since; pesgen "
                "cannot take it back safely: settle it with the trésorerie and enter it in "
                "the school software by hand")
        # the title it pays: the one it was applied to, else its operation's own
        title_run = pay["applied_run"] or op["run_id"]
        titles = _active_titles(store, op["id_coll"], row.invoice, conn)
        if not any(t.run_id == title_run for t in titles):
            raise StateError(
                f"{head}: " + (f"the title the money was applied to (run {title_run}) was "
                               "cancelled since" if row.outcome == "applied" else
                               f"its title (run {title_run}), reinstated, was cancelled "
                               "again since") + ": its payment went with it (its own "
                "paid-cancelled anomaly, "
                "`pesgen payfip anomalies`); pesgen cannot take it back safely: settle it "
                "with the trésorerie")
        if row.outcome == "reinstated" and row.kind == PAID_CANCELLED:
            # the payment was its title's before the cancellation: the reinstatement
            # recorded none, and the refund (``_refunded``) is what changes
            return None
        values: dict[str, Any] = {"applied_run": None, "updated_at": now}
        status = "paid"
        if row.kind != PAID_CANCELLED:
            # paid through the cancelled title's link after the cancellation: the payment
            # was never the invoice's before --applied (or the reinstatement); its row as
            # its latest link left it
            last = _operation_row(conn, pay["last_id_op"])
            status = (last["status"] if last is not None
                      and last["status"] in _LINK_STATUSES else "pending")
            values.update(status=status, paid_cents=None, method=None, paid_at=None,
                          id_op=None, numauto=None)
        if row.outcome == "reinstated":
            # settle_reinstated made the operation paid (it was an anomaly)
            conn.execute(operations.update().where(operations.c.id_op == op["id_op"])
                         .values(status="anomaly"))
        # (a paid-cancelled one's payment goes back to its cancelled title, paid)
        conn.execute(payments.update().where(payments.c.id == pay["id"]).values(**values))
        withdrawn = {"payment": "paid", "paid_cents": pay["paid_cents"],
                     "applied_to_run": pay["applied_run"], "status": status}
        _event(conn, mine, "payment-withdrawn", "support", status,
               {"anomaly": row.id, "by": by, **withdrawn}, at=now)
        return withdrawn
    if row.kind != PAID_CANCELLED:  # refunded: nothing was recorded
        return None
    if pay is None or pay["status"] != "refunded" or pay["id_op"] != op["id_op"]:
        raise StateError(
            f"{head}: the payment recorded refunded (operation {op['id_op']}) is no longer "
            f"the invoice's ({now_said}): a new link was made for it since, the family may "
            "pay through it; pesgen cannot take the refund back safely: settle it with the "
            "trésorerie")
    conn.execute(payments.update().where(payments.c.id == pay["id"]).values(
        status="paid", updated_at=now))
    withdrawn = {"payment": "refunded", "paid_cents": pay["paid_cents"], "status": "paid"}
    _event(conn, mine, "refund-withdrawn", "support", "paid",
           {"anomaly": row.id, "by": by, **withdrawn}, at=now)
    return withdrawn


def settle_reinstated(store: Store, conn: Connection, run_id: str, bordereaux: list[int],
                      now: str, by: str, reason: str
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """After these bordereaux of a run were reinstated (in that transaction, ``conn``):
    the open ``run-cancelled`` anomalies of money paid through one of their titles' own
    links while it was cancelled (the operation this run's, its invoice a title of these
    bordereaux; not a test link's, saisie T, which collected nothing). The title is
    active again and the trésorerie kept it: the money is its payment. Each that
    ``_applicable`` allows (the whole amount due collected, the invoice paid by no other
    operation…) is recorded so: the invoice's payment becomes the operation's, on its own
    title (``applied_run`` None), the operation ``paid`` (it was ``anomaly``), with a
    ``paid`` event, and the anomaly is resolved, outcome ``reinstated``, with an
    ``anomaly-resolved`` event (both source ``reinstate``). Returns those settled
    (anomaly, kind, invoice, id_op, id_bord, paid_cents, method, paid_at, by IdBord and
    IdPce) and those left open for a person to decide, each with ``why`` (the check's
    words)."""
    rows = conn.execute(
        sa.select(anomalies.c.id, anomalies.c.invoice, anomalies.c.id_op,
                  run_invoices.c.id_bord)
        .select_from(anomalies.join(operations, operations.c.id_op == anomalies.c.id_op)
                     .join(run_invoices, sa.and_(
                         run_invoices.c.run_id == operations.c.run_id,
                         run_invoices.c.invoice == operations.c.invoice,
                         run_invoices.c.id_coll == operations.c.id_coll)))
        .where(_collected_through_cancelled(operations), anomalies.c.resolved_at.is_(None),
               operations.c.run_id == run_id, run_invoices.c.id_bord.in_(bordereaux))
        .order_by(run_invoices.c.id_bord, run_invoices.c.id_pce, anomalies.c.id)).all()
    settled: list[dict[str, Any]] = []
    left: list[dict[str, Any]] = []
    for row in rows:
        op = _operation_row(conn, row.id_op)
        if op is None:  # (the join found it)
            continue
        said = {"anomaly": row.id, "kind": "run-cancelled", "invoice": row.invoice,
                "id_op": row.id_op, "id_bord": int(row.id_bord)}
        try:
            title, cents, due, pay = _applicable(
                store, conn, row, op, f"anomaly #{row.id} (run-cancelled) left open")
        except StateError as exc:
            left.append({**said, "why": str(exc)})
            continue
        if conn.execute(anomalies.update().where(
                anomalies.c.id == row.id, anomalies.c.resolved_at.is_(None)).values(
                resolved_at=now, resolved_by=by, outcome="reinstated",
                note=f"run {run_id} reinstated (IdBord {row.id_bord}): {reason}: its title "
                     "is active again, paid by this payment (made through its link while "
                     "it was cancelled)")).rowcount != 1:
            continue  # (PostgreSQL: resolved meanwhile by `payfip anomalies resolve`)
        method, paid_at = _record_paid(conn, pay, op, due, cents, None, now)
        # the operation paid its title, as a notification would have recorded it (`runs
        # cancel` then names it as any payment of the title)
        conn.execute(operations.update().where(operations.c.id_op == op["id_op"])
                     .values(status="paid"))
        mine = {**op, "invoice": row.invoice}
        _event(conn, mine, "paid", "reinstate", "paid",
               {"anomaly": row.id, "run": run_id, "id_bord": int(title.id_bord),
                "method": method, "transaction_at": op["transaction_at"]}, at=now)
        _event(conn, mine, "anomaly-resolved", "reinstate", "paid",
               {"anomaly": row.id, "kind": "run-cancelled", "by": by,
                "outcome": "reinstated", "run": run_id}, at=now)
        settled.append({**said, "paid_cents": cents, "method": method, "paid_at": paid_at})
    return settled, left


def _may_have_outcome(row: Any, op: dict[str, Any] | None, outcome: str) -> None:
    """Refuse an outcome for an anomaly that is not money paid for a cancelled title
    (through its link after the cancellation, or before it: ``SETTLED``): another kind,
    or a test link's (saisie T collects nothing)."""
    flag = f"--{outcome}"
    if row.kind not in SETTLED or op is None or not row.invoice:
        raise UsageError(
            f"anomaly #{row.id} is {row.kind}: {flag} records what the trésorerie did with "
            "money paid for a cancelled title (a run-cancelled or paid-cancelled anomaly); "
            "say what was decided in --note alone")
    if op["saisie"] == "T":
        raise UsageError(
            f"anomaly #{row.id}: operation {op['id_op']} is a test link (saisie T): it "
            f"collected nothing, so there is nothing to have {outcome}; resolve it with "
            "--note alone")


def _apply(store: Store, conn: Connection, row: Any, op: dict[str, Any], by: str,
           now: str) -> dict[str, Any]:
    """Record money paid through a cancelled title as the payment of the title exported in
    its place (``resolve_anomaly``'s ``applied``), after checking it may be
    (``_applicable``). Returns that title's run, IdBord, the cents and the method."""
    invoice = row.invoice
    title, cents, due, pay = _applicable(
        store, conn, row, op, f"anomaly #{row.id}: --applied refused for invoice {invoice}")
    method, paid_at = _record_paid(conn, pay, op, due, cents, title.run_id, now)
    _event(conn, {**op, "invoice": invoice}, "paid", "support", "paid",
           {"anomaly": row.id, "applied_by": by, "applied_to_run": title.run_id,
            "id_bord": int(title.id_bord), "from_run": op["run_id"], "method": method,
            "transaction_at": op["transaction_at"]}, at=now)
    # the invoice's links still open: the title's own, made before (while the cancelled
    # one's was still open), and the cancelled title's others: a payment through one now
    # pays it twice (each with its title's run and IdBord)
    return {"run_id": title.run_id, "id_bord": int(title.id_bord), "cents": cents,
            "method": method, "paid_at": paid_at, "id_op": op["id_op"],
            "still_open": _links_open(conn, op["id_coll"], invoice)}


def _links_open(conn: Connection, id_coll: str, invoice: str) -> list[dict[str, Any]]:
    """The invoice's links still open (pending, unknown; not a test link's, saisie T,
    which collects nothing), oldest first, each with its title's run and IdBord."""
    return [dict(r._mapping) for r in conn.execute(
        sa.select(operations.c.id_op, operations.c.created_at, operations.c.status,
                  operations.c.run_id, run_invoices.c.id_bord)
        .outerjoin(run_invoices, sa.and_(run_invoices.c.run_id == operations.c.run_id,
                                         run_invoices.c.invoice == operations.c.invoice))
        .where(operations.c.id_coll == id_coll, operations.c.invoice == invoice,
               operations.c.saisie != "T", operations.c.status.in_(OPEN))
        .order_by(operations.c.created_at, operations.c.id_op))]


def _applicable(store: Store, conn: Connection, row: Any, op: dict[str, Any], why: str
                ) -> tuple[Any, int, int, dict[str, Any]]:
    """Whether the money of an anomaly (``row``, its operation ``op``) paid through a
    title cancelled since may be recorded as the payment of the invoice's active title:
    one active title, writing the number as the cancelled one did, in a bordereau the
    trésorerie did not reject, due the amount collected, the invoice paid by no other
    operation. Returns that title, the cents collected, the cents due and the invoice's
    payment row; else StateError, its message starting with ``why``."""
    invoice = row.invoice
    titles = _active_titles(store, op["id_coll"], invoice, conn)
    if titles and conn.dialect.name == "postgresql":
        # as a link's recording does (record_operation): the runs' rows locked, as `runs
        # cancel` locks its run, so that a cancellation of the title either sees this
        # payment (and asks for --despite-payments) or comes before and is seen here
        # (SQLite: the transactions are in turn)
        lock_acknowledgements(conn, shared=True)
        conn.execute(sa.select(runs.c.id).where(
            runs.c.id.in_(sorted({t.run_id for t in titles}))).with_for_update()).all()
        titles = _active_titles(store, op["id_coll"], invoice, conn)
    if not titles:
        raise StateError(f"{why}: no active title holds it, so there is no title to apply "
                         "the money to: export the invoice again first (`pesgen runs find "
                         f"{invoice}`), or resolve with --refunded or --note alone")
    held = ", ".join(f"{t.invoice} (run {t.run_id})" for t in titles)
    if len(titles) > 1:  # a store migrated from before schema 5 may hold such numbers
        raise StateError(f"{why}: several active titles hold it ({held}): which one the "
                         "trésorerie applied the money to is for a person to say; resolve "
                         "with --note alone and enter the payment in the school software by "
                         "hand")
    if titles[0].invoice != invoice:
        raise StateError(f"{why}: the title due writes the number otherwise ({held}) than "
                         "the cancelled title did: pesgen cannot record the payment on it; "
                         "resolve with --note alone and enter the payment in the school "
                         "software by hand")
    title = titles[0]
    rejected = rejected_bordereaux(store, title.run_id, [int(title.id_bord)], conn=conn)
    if rejected:
        raise StateError(f"{why}: its title (IdBord {title.id_bord} of run {title.run_id}) "
                         "is in a bordereau the trésorerie rejected: not in Hélios, so "
                         "nothing can be applied to it")
    reported = conn.execute(sa.select(reported_amount(sa.literal(op["id_op"])))).scalar()
    cents = reported_cents(reported, op["amount_cents"])
    due = to_cents(title.amount, invoice)
    if cents != due:
        raise StateError(
            f"{why}: {cents_text(cents)} was collected through the cancelled title, and its "
            f"title due (IdBord {title.id_bord} of run {title.run_id}) is "
            f"{cents_text(due)}: pesgen records a payment of the whole amount due only; "
            "resolve with --note alone, settle the difference with the trésorerie and "
            "enter what was applied in the school software by hand")
    pay = _payment_row(conn, op["id_coll"], invoice)
    if pay is None:
        raise StateError(f"{why}: no PayFiP payment record for it")
    if pay["status"] == "paid" and pay["id_op"] != op["id_op"]:
        raise StateError(
            f"{why}: it is already paid ({cents_text(pay['paid_cents'] or 0)} on "
            f"{pay['paid_at']}, operation {pay['id_op']}): the money paid through the "
            "cancelled title is one payment too many, for the trésorerie to refund; "
            "resolve with --refunded")
    return title, cents, due, pay


def _record_paid(conn: Connection, pay: dict[str, Any], op: dict[str, Any], due: int,
                 cents: int, applied_run: str | None, now: str) -> tuple[str | None, str]:
    """The invoice's payment row (``pay``) becomes the payment of ``op``: paid, the
    amount collected, the method and time PayFiP gave; ``applied_run``, the title the
    trésorerie applied it to (None: the operation's own title). Returns the method and
    the time."""
    method = RESULTS.get(op["result_code"] or "", (None, None))[1]
    paid_at = op["transaction_at"] or op["resolved_at"]
    conn.execute(payments.update().where(payments.c.id == pay["id"]).values(
        status="paid", amount_cents=due, paid_cents=cents, method=method, paid_at=paid_at,
        id_op=op["id_op"], numauto=op["numauto"], applied_run=applied_run, updated_at=now))
    return method, paid_at


def _refunded(conn: Connection, row: Any, op: dict[str, Any], by: str, now: str) -> None:
    """The trésorerie refunded the payment of a title cancelled since (a paid-cancelled
    anomaly resolved ``--refunded``): the invoice's payment becomes ``refunded`` (no
    longer a payment: its title due gets links again; the amount, method and time stay
    on the row until a new link is made), with a ``refunded`` event (source support).
    Nothing is changed when the payment is another operation's by now."""
    pay = _payment_row(conn, op["id_coll"], row.invoice)
    if pay is None or pay["status"] != "paid" or pay["id_op"] != op["id_op"]:
        return
    conn.execute(payments.update().where(payments.c.id == pay["id"]).values(
        status="refunded", updated_at=now))
    _event(conn, {**op, "invoice": row.invoice}, "refunded", "support", "refunded",
           {"anomaly": row.id, "refunded_by": by, "paid_cents": pay["paid_cents"]}, at=now)


# ---------------------------------------------------------------------- in-transaction


def _operation_row(conn: Connection, id_op: str) -> dict[str, Any] | None:
    query = sa.select(operations).where(operations.c.id_op == id_op)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def _payment_row(conn: Connection, id_coll: str, invoice: str) -> dict[str, Any] | None:
    query = sa.select(payments).where(payments.c.id_coll == id_coll,
                                      payments.c.invoice == invoice)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def _resolve(conn: Connection, id_op: str, status: str, reason: str,
             now: str) -> dict[str, Any] | None:
    """Resolve an open operation with ``status`` and ``reason``; returns its row as it
    was (not open, or None: nothing was changed)."""
    op = _operation_row(conn, id_op)
    if op is not None and op["status"] in OPEN:
        conn.execute(operations.update().where(
            operations.c.id_op == id_op, operations.c.status.in_(OPEN)).values(
            status=status, resolved_at=now, checked_at=now,
            checks=operations.c.checks + 1, last_error=reason))
    return op


def _count_notification(conn: Connection, id_op: str) -> None:
    conn.execute(operations.update().where(operations.c.id_op == id_op).values(
        notifications=operations.c.notifications + 1))


def _event(conn: Connection, op: dict[str, Any], event: str, source: str, status: str,
           detail: dict[str, Any] | None = None, *, at: str) -> None:
    """Record an event of an operation's invoice; ``at``: the time of the change it
    records, the one its transaction writes elsewhere (an anomaly's ``resolved_at``, a
    payment's), so that what a command printed and the history agree."""
    conn.execute(events.insert().values(
        id_coll=op["id_coll"], invoice=op["invoice"], id_op=op["id_op"], at=at,
        event=event, source=source, status=status,
        detail=json.dumps(detail, sort_keys=True) if detail else None))


def _anomaly(conn: Connection, kind: str, id_op: str | None, invoice: str | None, source: str,
             expected: str | None, got: str | None, detail: str, *, at: str) -> None:
    """Record an anomaly; ``at``: the time of the change that found it, the one its
    transaction writes elsewhere (the operation's ``resolved_at``, its event's), so that
    the anomalies of one result and its history say one time."""
    conn.execute(anomalies.insert().values(at=at, kind=kind, id_op=id_op, invoice=invoice,
                                           source=source, expected=expected, got=got,
                                           detail=detail))
