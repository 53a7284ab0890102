"""PayFiP tables of the state store (schema version 2, see ``pesgen.store.MIGRATIONS``).

* ``payfip_operations``: one row per idOp pesgen obtained (invoice, refdet, amount in
  cents, mel, when), with its status: pending -> paid | test-paid | refused | abandoned |
  expired | anomaly; ``unknown`` when the last pull of its result failed (retried by
  reconcile). ``test-paid``: paid in test or activation mode (saisie T or X).
* ``payfip_payments``: one row per invoice and collectivity: its PayFiP status and,
  once paid (in production), how, when and by which operation.
* ``payfip_events``: the history of each invoice's payment (created, paid, refused…).
* ``payfip_anomalies``: what must be looked at by a person (amount or reference
  mismatch, unknown idOp notified, a second payment…); never a payment. Since
  migration 7, who resolved one, when, and the decision (a note).

These definitions are frozen with migration 2: a later change needs a new migration.
Migration 4 changes no table: it corrects rows (test payments recorded as payments).
Migration 7 adds the resolution columns of ``payfip_anomalies``; migration 14 its
``outcome`` and ``payfip_payments.applied_run`` (money paid through a cancelled title
that the trésorerie applied to the title exported in its place); migration 17
``payfip_payments.invoice_key``, indexed; migration 18 the index of
``payfip_anomalies.id_op``; migration 22 ``payfip_claims``, the links being made
(``claims``).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..keys import INVOICE_KEY_MAX, invoice_key

metadata = sa.MetaData()

operations = sa.Table(
    "payfip_operations", metadata,
    sa.Column("id_op", sa.String(64), primary_key=True),
    sa.Column("id_coll", sa.String(14), nullable=False),
    sa.Column("invoice", sa.String(64), nullable=False, index=True),
    sa.Column("run_id", sa.String(36)),
    sa.Column("numcli", sa.String(6), nullable=False),
    sa.Column("exer", sa.String(4), nullable=False),
    sa.Column("refdet", sa.String(30), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("mel", sa.String(80), nullable=False),
    sa.Column("objet", sa.String(100), nullable=False),
    sa.Column("saisie", sa.String(1), nullable=False),
    sa.Column("endpoint", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("result_code", sa.String(4)),
    sa.Column("numauto", sa.String(64)),
    sa.Column("transaction_at", sa.String(32)),  # dattrans+heurtrans, Europe/Paris
    sa.Column("resolved_at", sa.String(32)),
    sa.Column("checked_at", sa.String(32)),
    sa.Column("checks", sa.Integer, nullable=False, server_default="0"),
    sa.Column("notifications", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
)

def _payments_v2(meta: sa.MetaData) -> sa.Table:
    """``payfip_payments`` as migration 2 created it, frozen: the columns later
    migrations add are theirs to create."""
    return sa.Table(
        "payfip_payments", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id_coll", sa.String(14), nullable=False),
        sa.Column("invoice", sa.String(64), nullable=False),
        # pending | paid | refused | abandoned | expired (test-paid from schema 4,
        # refunded from schema 15: values, not columns)
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount_cents", sa.Integer, nullable=False),  # due, from the active run
        sa.Column("paid_cents", sa.Integer),
        sa.Column("method", sa.String(16)),  # card | direct_debit
        sa.Column("paid_at", sa.String(32)),
        sa.Column("id_op", sa.String(64)),  # the operation that paid
        sa.Column("last_id_op", sa.String(64), nullable=False),  # the latest operation issued
        sa.Column("numauto", sa.String(64)),
        sa.Column("refdet", sa.String(30), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False, index=True),
        sa.UniqueConstraint("id_coll", "invoice", name="uq_payfip_payment"),
    )


payments = _payments_v2(metadata)

events = sa.Table(
    "payfip_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id_coll", sa.String(14), nullable=False),
    sa.Column("invoice", sa.String(64), nullable=False, index=True),
    sa.Column("id_op", sa.String(64)),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("event", sa.String(24), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # link|notification|return|reconcile
    sa.Column("status", sa.String(16), nullable=False),  # the invoice's status after it
    sa.Column("detail", sa.Text),
)


def _anomalies_v2(meta: sa.MetaData) -> sa.Table:
    """``payfip_anomalies`` as migration 2 created it, frozen: the columns later
    migrations add are theirs to create."""
    return sa.Table(
        "payfip_anomalies", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("id_op", sa.String(64)),
        sa.Column("invoice", sa.String(64)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("expected", sa.Text),
        sa.Column("got", sa.Text),
        sa.Column("detail", sa.Text),
    )


RESOLVED_BY_MAX = 64

anomalies = _anomalies_v2(metadata)


def reported_amount(id_op: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
    """The amount PayFiP reported for the operation ``id_op`` names (cents, as text), where
    it was not the one asked (its amount-mismatch anomaly), else NULL: a scalar subquery
    correlated to that column (``operations.c.id_op``, ``anomalies.c.id_op``)."""
    reported = anomalies.alias("reported")
    return (sa.select(reported.c.got).where(reported.c.id_op == id_op,
                                            reported.c.kind == "amount-mismatch")
            .limit(1).scalar_subquery())


def reported_cents(reported: str | None, asked: int) -> int:
    """What PayFiP reported collected, in cents: ``reported_amount``'s value when it is a
    number, else the amount asked."""
    return int(reported) if reported is not None and reported.isdigit() else asked
# migration 7: a person's decision closes an anomaly; open while resolved_at is NULL
anomalies.append_column(sa.Column("resolved_at", sa.String(32)))
anomalies.append_column(sa.Column("resolved_by", sa.String(RESOLVED_BY_MAX)))
anomalies.append_column(sa.Column("note", sa.Text))
# migration 14: what the trésorerie did with money paid through a cancelled title
# (`anomalies resolve --applied` / `--refunded`; NULL: the decision is in the note only),
# and the run of the title such money was applied to (the payment then follows that
# title, not its operation's: ``paid_title_run``)
anomalies.append_column(sa.Column("outcome", sa.String(16)))
payments.append_column(sa.Column("applied_run", sa.String(36)))
OUTCOMES = ("applied", "refunded")  # and "reinstated": `runs reinstate` records it
# the anomaly of a title paid and then cancelled (`runs cancel --despite-payments`, from
# schema 15): the trésorerie applies the money to the title exported in its place or
# refunds it (``OUTCOMES``); a payment refunded so has the status ``refunded``
PAID_CANCELLED = "paid-cancelled"
# the anomalies of money paid for a title cancelled since: through its link after the
# cancellation (run-cancelled), or before it (paid-cancelled, recorded by `runs cancel
# --despite-payments`): the trésorerie applies it to the title due or refunds it
SETTLED = ("run-cancelled", PAID_CANCELLED)


# migration 17: the invoice's key (``keys.invoice_key``, as run_invoices.invoice_key),
# indexed with the collectivity, so that a link reads the payments of its invoices' keys
# only (``ledger.paid_by_key``); a later change of the key function keys them again, as
# migration 6 did the titles
payments.append_column(sa.Column("invoice_key", sa.String(INVOICE_KEY_MAX)))
sa.Index("ix_payfip_payment_key", payments.c.id_coll, payments.c.invoice_key)


def _anomaly_ops_v18(table: sa.Table) -> sa.Index:
    """``ix_payfip_anomalies_id_op`` as migration 18 created it, frozen: an operation's
    anomalies, which every lookup of an anomaly by its operation reads (an operation's
    open anomalies, ``reported_amount``, the joins to ``operations``). Without it each
    such query read every anomaly: ``ledger.unsettled_payments`` (each link, in its write
    transaction) 3.9 s of CPU in a store of 13 000 anomalies, 34 ms with it; `payfip
    payments` of 20 000 titles over a million anomalies (a flood of unknown idOps) 11 s,
    3 s with it (docs/performance.md, "held-back at scale")."""
    return sa.Index("ix_payfip_anomalies_id_op", table.c.id_op)


_anomaly_ops_v18(anomalies)


def paid_title_run(operation_run: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The run of the title a payment row's money paid: the run the trésorerie applied
    it to (``applied_run``), else that of the operation that paid (``operation_run``, a
    column of ``operations`` or an alias of it)."""
    return sa.func.coalesce(payments.c.applied_run, operation_run)


def _claims_v22(meta: sa.MetaData) -> sa.Table:
    """``payfip_claims`` as migration 22 created it, frozen: one row per invoice (its key,
    as the duplicate guard compares numbers) whose `payfip link` is being made, from
    before PayFiP is asked until the operation is recorded (``claims``): who holds it
    (``holder``: user, pid, host), since when, for how many seconds at most, and the
    command's ``token`` (its own claims, released together)."""
    return sa.Table(
        "payfip_claims", meta,
        sa.Column("id_coll", sa.String(14), primary_key=True),
        sa.Column("invoice_key", sa.String(INVOICE_KEY_MAX), primary_key=True),
        sa.Column("invoice", sa.String(64), nullable=False),
        sa.Column("token", sa.String(32), nullable=False, index=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("claimed_at", sa.String(32), nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
    )


claims = _claims_v22(metadata)


def migration_2(conn: Connection) -> None:
    """Create the PayFiP tables (schema version 2)."""
    metadata.create_all(conn, tables=[operations, events])
    _payments_v2(sa.MetaData()).create(conn)
    _anomalies_v2(sa.MetaData()).create(conn)


def migration_7(conn: Connection) -> None:
    """Anomalies can be resolved (schema version 7): who, when, and the decision. The
    anomalies recorded before stay open (resolved_at NULL)."""
    for column in ("resolved_at VARCHAR(32)", f"resolved_by VARCHAR({RESOLVED_BY_MAX})",
                   "note TEXT"):
        conn.exec_driver_sql(f"ALTER TABLE payfip_anomalies ADD COLUMN {column}")


def migration_14(conn: Connection) -> None:
    """What the trésorerie did with money paid through a cancelled title (schema version
    14): the anomaly's outcome, and the run of the title a payment was applied to. Every
    anomaly resolved before keeps its note alone (outcome NULL), every payment its
    operation's title (applied_run NULL)."""
    conn.exec_driver_sql("ALTER TABLE payfip_anomalies ADD COLUMN outcome VARCHAR(16)")
    conn.exec_driver_sql("ALTER TABLE payfip_payments ADD COLUMN applied_run VARCHAR(36)")


def migration_17(conn: Connection) -> None:
    """Each payment's invoice key (schema version 17), indexed with its collectivity: a
    link looks up the payments of its invoices' keys only, where it read every paid
    payment of the collectivity. The keys are computed here as ``keys.invoice_key`` does
    now (the titles' keys, migration 6, alike), 5 000 rows a query."""
    conn.exec_driver_sql("ALTER TABLE payfip_payments ADD COLUMN invoice_key "
                         f"VARCHAR({INVOICE_KEY_MAX})")
    table = sa.Table("payfip_payments", sa.MetaData(),
                     sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("invoice", sa.String(64)),
                     sa.Column("invoice_key", sa.String(INVOICE_KEY_MAX)))
    update = table.update().where(table.c.id == sa.bindparam("row_id")).values(
        invoice_key=sa.bindparam("key"))
    from ..store import in_batches

    for rows in in_batches(conn, table, table.c.invoice):
        conn.execute(update, [{"row_id": i, "key": invoice_key(inv)} for i, inv in rows])
    conn.exec_driver_sql("CREATE INDEX ix_payfip_payment_key ON payfip_payments "
                         "(id_coll, invoice_key)")


def migration_18(conn: Connection) -> None:
    """The anomalies indexed by their operation (schema version 18): nothing to fill in."""
    _anomaly_ops_v18(_anomalies_v2(sa.MetaData())).create(conn)


def migration_22(conn: Connection) -> None:
    """The links being made (schema version 22): ``payfip_claims``, empty."""
    _claims_v22(sa.MetaData()).create(conn)


def migration_4(conn: Connection, now: str) -> None:
    """Test payments recorded as payments (schema version 4).

    Before it, the P or V result of an operation created with saisie T (test) or X
    (activation) was recorded like a production payment: the operation ``paid``, the
    invoice paid by it, so no new link could be made for the invoice. Such an operation
    becomes ``test-paid``. An invoice it paid is paid by the production operation that
    paid it afterwards (recorded then as a double payment), if any; else it takes the
    status its latest link gives it, as pesgen now records it (``test-paid`` when that
    link is the test one). Each invoice corrected gets an event (source ``migration``).
    The values are frozen here: they must not follow later code.
    """
    test, methods = ("T", "X"), {"P": "card", "V": "direct_debit"}
    payments = _payments_v2(sa.MetaData())  # as it was then (no column of a later migration)
    from_latest = {"test-paid", "refused", "abandoned", "expired"}  # else: pending
    was_test = sa.and_(operations.c.status == "paid", operations.c.saisie.in_(test))
    corrected = conn.execute(sa.select(payments, operations.c.saisie.label("test_saisie"))
                             .join(operations, operations.c.id_op == payments.c.id_op)
                             .where(payments.c.status == "paid", was_test)
                             .order_by(payments.c.id)).all()
    conn.execute(operations.update().where(was_test).values(status="test-paid"))
    for pay in corrected:
        real = conn.execute(sa.select(operations).where(
            operations.c.id_coll == pay.id_coll, operations.c.invoice == pay.invoice,
            operations.c.status == "paid", operations.c.saisie.not_in(test))
            .order_by(operations.c.resolved_at, operations.c.id_op)).first()
        detail: dict[str, Any] = {"test_id_op": pay.id_op, "saisie": pay.test_saisie}
        values: dict[str, Any]
        if real is not None:
            values = {"status": "paid", "paid_cents": real.amount_cents,
                      "method": methods.get(real.result_code or ""),
                      "paid_at": real.transaction_at or real.resolved_at,
                      "id_op": real.id_op, "numauto": real.numauto}
            event, id_op = "paid", real.id_op
        else:
            latest = conn.execute(sa.select(operations.c.status).where(
                operations.c.id_op == pay.last_id_op)).scalar()
            values = {"status": latest if latest in from_latest else "pending",
                      "paid_cents": None, "method": None, "paid_at": None, "id_op": None,
                      "numauto": None}
            event, id_op = "test-paid", pay.id_op
        conn.execute(payments.update().where(payments.c.id == pay.id).values(
            **values, updated_at=now))
        conn.execute(events.insert().values(
            id_coll=pay.id_coll, invoice=pay.invoice, id_op=id_op, at=now, event=event,
            source="migration", status=values["status"],
            detail=json.dumps(detail, sort_keys=True)))
