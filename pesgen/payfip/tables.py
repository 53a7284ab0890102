"""PayFiP tables of the state store (schema version 2, see ``pesgen.store.MIGRATIONS``).

* ``payfip_operations``: one row per idOp pesgen obtained (invoice, refdet, amount in
  cents, mel, when), with its status: pending -> paid | test-paid | refused | abandoned |
  expired | anomaly; ``unknown`` when the last pull of its result failed (retried by
  reconcile). ``test-paid``: paid in test or activation mode (saisie T or X).
* ``payfip_payments``: one row per invoice and collectivity: its PayFiP status and,
  once paid (in production), how, when and by which operation.
* ``payfip_events``: the history of each invoice's payment (created, paid, refused…).
* ``payfip_anomalies``: what must be looked at by a person (amount or reference
  mismatch, unknown idOp notified, a second payment…); never a payment.

These definitions are frozen with migration 2: a later change needs a new migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

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

payments = sa.Table(
    "payfip_payments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id_coll", sa.String(14), nullable=False),
    sa.Column("invoice", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending|paid|refused|abandoned|expired
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

anomalies = sa.Table(
    "payfip_anomalies", metadata,
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


def migration_2(conn: Connection) -> None:
    """Create the PayFiP tables (schema version 2)."""
    metadata.create_all(conn, tables=[operations, payments, events, anomalies])

