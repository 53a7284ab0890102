"""The state store: bordereau numbering, run registry and duplicate guard.

SQLite (a file, the default) or PostgreSQL (by URL) through SQLAlchemy Core. The
schema is versioned: ``MIGRATIONS`` is an ordered list applied once each, recorded in
``pesgen_schema``. Numbers are allocated inside the transaction that records the run,
so a failed export consumes none.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ._display import db_option, masked_url
from .config import STORE_LOCK_TIMEOUT, config_path, store_lock_timeout, user_folder
from .errors import PesgenError, Problem, RecordConflict, StateError, StoreLocked, UsageError
from .keys import INVOICE_KEY_MAX, INVOICE_NUMBER_MAX, Held, debt_key, invoice_key
from .notes import Notes, pack_json

metadata = sa.MetaData()


class SlicedRows(Protocol):
    """Rows ``Store.record_run`` inserts a slice at a time: a list, or rows made a slice
    at a time (``runs._InvoiceRows``)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> list[dict[str, Any]]: ...

# The IdBord a new sequence starts at (numbering set-start may set another, once)
_FIRST_NUMBER = 1

# TypBord of a sequence: a format's defaults.typ_bord (at most this many characters,
# schemas/format.schema.json) or else its name (at most 41)
TYP_BORD_MAX = 64

# The typ_bord of the sequence of the titre numbers (IdPce) of a SIRET, budget and
# exercise, which formats numbering their pieces over the exercise draw from
# (format.yaml numbering.pieces: per-exercise; pesgen.runs.piece_key): no format's
# TypBord (the format schema refuses it as defaults.typ_bord; a format's name is lower
# case). A row of the sequences table like a bordereaux' sequence, without migration.
PIECE_SEQUENCE = "IdPce"
# the largest IdBord (DT v5.19 BlocBordereau/IdBord, 7 digits) and IdPce (Base_Num8)
ID_BORD_MAX = 9_999_999
ID_PCE_MAX = 99_999_999
# who resolves the anomalies a reinstatement settles (paid-cancelled, run-cancelled), when
# no one is named (no --by, no login name) or the name is blank
REINSTATED_BY = "runs reinstate"

schema_table = sa.Table(
    "pesgen_schema", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.String(32), nullable=False),
)

sequences = sa.Table(
    "sequences", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id_coll", sa.String(14), nullable=False),
    sa.Column("cod_bud", sa.String(2), nullable=False),
    sa.Column("exercise", sa.Integer, nullable=False),
    sa.Column("typ_bord", sa.String(TYP_BORD_MAX), nullable=False),  # 2 before migration 5
    sa.Column("next_number", sa.Integer, nullable=False),
    sa.Column("start_number", sa.Integer, nullable=False),
    sa.UniqueConstraint("id_coll", "cod_bud", "exercise", "typ_bord", name="uq_sequence"),
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("pesgen_version", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # committed | cancelled
    sa.Column("id_coll", sa.String(14), nullable=False),
    sa.Column("cod_bud", sa.String(2), nullable=False),
    sa.Column("exercise", sa.Integer, nullable=False),
    sa.Column("typ_bord", sa.String(TYP_BORD_MAX), nullable=False),  # 2 before migration 5
    sa.Column("format", sa.String(64), nullable=False),
    sa.Column("run_date", sa.String(10), nullable=False),
    sa.Column("first_number", sa.Integer, nullable=False),
    sa.Column("bordereaux", sa.Integer, nullable=False),
    sa.Column("titles", sa.Integer, nullable=False),
    sa.Column("total", sa.String(20), nullable=False),
    sa.Column("mapping_path", sa.Text, nullable=False),
    sa.Column("mapping_sha256", sa.String(64), nullable=False),
    sa.Column("mapping_text", sa.Text, nullable=False),
    sa.Column("format_sha256", sa.String(64), nullable=False),
    sa.Column("format_bundle", sa.LargeBinary, nullable=False),  # zlib(JSON {path: text})
    sa.Column("input_name", sa.Text, nullable=False),
    sa.Column("input_sha256", sa.String(64), nullable=False),
    sa.Column("input_blob", sa.LargeBinary, nullable=False),  # zlib-compressed input bytes
    sa.Column("validation", sa.Text, nullable=False),  # JSON
    sa.Column("policies", sa.Text, nullable=False),  # JSON
    sa.Column("out_dir", sa.Text, nullable=False),
    sa.Column("cancelled_at", sa.String(32)),
    sa.Column("cancel_reason", sa.Text),
)


def _runs_sequence_v20(table: sa.Table) -> sa.Index:
    """``ix_runs_sequence`` as migration 20 created it, frozen: the runs of one numbering
    (SIRET, budget, exercise, TypBord), which ``Store.unsent`` (every PES export's
    ``numbering_gap`` note, ``numbering show`` per sequence) and the largest number a
    sequence gave (``_given_up_to``) read. Without it each read scanned every run of the
    store, their blobs' pages with them (SQLite): 0.04 to 0.1 s of each export at 5 000
    runs, 0.6 to 0.7 s at 50 000, and `numbering show` of 250 sequences 5 minutes
    (docs/performance.md, "numbering_gap and unsent at scale")."""
    return sa.Index("ix_runs_sequence", table.c.id_coll, table.c.cod_bud, table.c.exercise,
                    table.c.typ_bord)


_runs_sequence_v20(runs)

run_files = sa.Table(
    "run_files", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("id_bord", sa.Integer),
    sa.Column("titles", sa.Integer),
    sa.Column("total", sa.String(20)),
)

run_invoices = sa.Table(
    "run_invoices", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("id_coll", sa.String(14), nullable=False),
    sa.Column("invoice", sa.String(INVOICE_NUMBER_MAX), nullable=False),  # as written
    sa.Column("id_bord", sa.Integer, nullable=False),
    sa.Column("id_pce", sa.Integer, nullable=False),
    sa.Column("amount", sa.String(20), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    # NumDette of the title (formats that have one, ORMC), from migration 3; NULL in rows
    # recorded before it and for formats without NumDette
    sa.Column("debt_number", sa.String(15)),
    # From migration 5: keys.invoice_key(invoice), what the duplicate guard compares
    # (computed in Python, never by SQL lower(): both must agree), and whether this active
    # row shared its key with an older active row when migration 5 found them (they are
    # kept active, both still refuse the invoice; the unique index backs the oldest)
    sa.Column("invoice_key", sa.String(INVOICE_KEY_MAX)),
    sa.Column("key_shared", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # From migration 19: the title's record in the input its run read, its position only
    # (``$.invoices[7]``, the CSV row ``12``; the run's policies name the input's path);
    # NULL in rows recorded before it
    sa.Column("record", sa.Text),
    # From migration 21: how many lines (LigneDePiece, IdLigne 1 to this) the title has
    # in the file its run wrote, as the export rendered them (`pesgen acquit` checks an
    # acquit's NumLigne against it); NULL in rows recorded before it
    sa.Column("line_count", sa.Integer),
)

# The duplicate guard: an invoice is held by at most one active run per collectivity,
# whatever the case and surrounding spaces of its number (migration 5: uq_active_invoice,
# on the number as written, stays from migration 1)
sa.Index("uq_active_invoice", run_invoices.c.id_coll, run_invoices.c.invoice, unique=True,
         sqlite_where=run_invoices.c.active, postgresql_where=run_invoices.c.active)
_KEY_HELD = sa.and_(run_invoices.c.active, sa.not_(run_invoices.c.key_shared))
sa.Index("uq_active_invoice_key", run_invoices.c.id_coll, run_invoices.c.invoice_key,
         unique=True, sqlite_where=_KEY_HELD, postgresql_where=_KEY_HELD)
sa.Index("ix_invoice", run_invoices.c.invoice)


def _active_keys_v10(table: sa.Table) -> sa.Index:
    """``ix_active_invoice_key`` as migration 10 created it, frozen: the keys of the active
    titles, the shared ones too, which the guard (``Store.holders``) looks each number up
    in. The unique index leaves the shared keys out (its condition is not the guard's),
    so without this one each chunk of numbers read every active title of the
    collectivity: the check grew with the store times the run. SQLite renders the
    condition ``active = 1``, as it renders a query's: it uses a partial index only when
    the query states its condition in the same words."""
    where = sa.and_(table.c.active, table.c.invoice_key.is_not(None))
    return sa.Index("ix_active_invoice_key", table.c.id_coll, table.c.invoice_key,
                    sqlite_where=where, postgresql_where=where)


_active_keys_v10(run_invoices)


def _titles_v11(table: sa.Table) -> sa.Index:
    """``ix_run_invoices_title`` as migration 11 created it, frozen: a title looked up by
    its run and its invoice as that run wrote it (PayFiP: the title of an operation, for
    every result applied and every payment listed). With one index on each column,
    SQLite (no statistics) searched by the run: every title of the run read for each
    one, `payfip payments` for 20 000 invoices of one run 46 s of CPU."""
    return sa.Index("ix_run_invoices_title", table.c.run_id, table.c.invoice)


_titles_v11(run_invoices)
# The NumDette guard (migration 3): with IdPost and Cle2, NumDette is the payment
# reference a family pays with, so one active title per collectivity holds it.
_WITH_DEBT = sa.and_(run_invoices.c.active, run_invoices.c.debt_number.is_not(None))
uq_active_debt_number = sa.Index(
    "uq_active_debt_number", run_invoices.c.id_coll, run_invoices.c.debt_number, unique=True,
    sqlite_where=_WITH_DEBT, postgresql_where=_WITH_DEBT)


# From migration 8: the bordereaux of a run cancelled while others of it stayed active
# (`runs cancel RUN --bordereau N`): the trésorerie rejected one bordereau of a run split
# in several. A bordereau is cancelled when it has a row here or its run is cancelled
# (a run is cancelled whole, or when its last active bordereau is).
def _cancelled_bordereaux_v8(meta: sa.MetaData) -> sa.Table:
    """``cancelled_bordereaux`` as migration 8 created it, frozen."""
    return sa.Table(
        "cancelled_bordereaux", meta,
        sa.Column("run_id", sa.String(36), sa.ForeignKey(runs.c.id), primary_key=True),
        sa.Column("id_bord", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("cancelled_at", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


cancelled_bordereaux = _cancelled_bordereaux_v8(metadata)


# From migration 9: the trésorerie's acknowledgements (PES_ACQUIT) recorded by `pesgen
# acquit --record`: one row per file (its sha256 unique), one per element of it tied to
# a run (each line of the file recorded once). A bordereau's Hélios status is its row not
# superseded; a later, different acknowledgement recorded with --replace supersedes it
# (the row stays: the history).
def _acquits_v9(meta: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """``acquits`` and ``acquit_bordereaux`` as migration 9 created them, frozen."""
    files = sa.Table(
        "acquits", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),  # the file's name, as read
        sa.Column("id_coll", sa.String(14), nullable=False),
        sa.Column("cod_bud", sa.String(2), nullable=False),
        sa.Column("nom_fic", sa.Text),  # Enveloppe/Parametres/NomFic
        sa.Column("issued_on", sa.String(10)),  # EnTetePES/DteStr; NULL: not given
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("sha256", name="uq_acquit_sha256"),
    )
    acks = sa.Table(
        "acquit_bordereaux", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("acquit_id", sa.Integer, sa.ForeignKey("acquits.id"), nullable=False,
                  index=True),
        sa.Column("run_id", sa.String(36), sa.ForeignKey(runs.c.id), nullable=False),
        sa.Column("id_bord", sa.Integer, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),  # the ElementACQUIT's, in the file
        sa.Column("domain", sa.String(2), nullable=False),  # DomaineAck
        sa.Column("accepted", sa.Boolean, nullable=False),  # EtatAck
        # JSON [{piece, line, code, label}]: the bordereau's errors (piece and line null),
        # its pieces' (line null) and their lines', in the file's order; a piece or line
        # "" is one the acquit names with an empty number (NumPiece, NumLigne V="")
        sa.Column("errors", sa.Text, nullable=False),
        sa.Column("error_count", sa.Integer, nullable=False),
        sa.Column("superseded_at", sa.String(32)),  # NULL: the bordereau's status
    )
    sa.Index("ix_acquit_bordereau", acks.c.run_id, acks.c.id_bord)
    live = acks.c.superseded_at.is_(None)
    sa.Index("uq_acquit_bordereau_status", acks.c.run_id, acks.c.id_bord, unique=True,
             sqlite_where=live, postgresql_where=live)
    return files, acks


acquits, acquit_bordereaux = _acquits_v9(metadata)


# From migration 12: a started sequence moved by `pesgen numbering move` (support, when
# the collectivity's numbering went on elsewhere: its finance package issued rôles or
# titres pesgen's sequence would give again): one row per move, the history of why a
# sequence jumps
def _sequence_moves_v12(meta: sa.MetaData) -> sa.Table:
    """``sequence_moves`` as migration 12 created it, frozen."""
    return sa.Table(
        "sequence_moves", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id_coll", sa.String(14), nullable=False),
        sa.Column("cod_bud", sa.String(2), nullable=False),
        sa.Column("exercise", sa.Integer, nullable=False),
        sa.Column("typ_bord", sa.String(TYP_BORD_MAX), nullable=False),
        sa.Column("from_number", sa.Integer, nullable=False),  # the next number before
        sa.Column("to_number", sa.Integer, nullable=False),  # the next number since
        sa.Column("moved_at", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


sequence_moves = _sequence_moves_v12(metadata)


# From migration 13: the cancellations undone by `pesgen runs reinstate` (support, when a
# bordereau was cancelled by mistake, or before the trésorerie's acquit came and it kept
# the titles): one row per bordereau reinstated, with the cancellation it undid, the
# history a cancellation's own rows no longer hold once undone
def _reinstatements_v13(meta: sa.MetaData) -> sa.Table:
    """``reinstatements`` as migration 13 created it, frozen."""
    return sa.Table(
        "reinstatements", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), sa.ForeignKey(runs.c.id), nullable=False,
                  index=True),
        sa.Column("id_bord", sa.Integer, nullable=False),
        sa.Column("cancelled_at", sa.String(32), nullable=False),  # the cancellation undone
        sa.Column("cancel_reason", sa.Text, nullable=False),
        sa.Column("reinstated_at", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


reinstatements = _reinstatements_v13(metadata)


def _sequences_v1(meta: sa.MetaData) -> sa.Table:
    """``sequences`` as migration 1 created it, frozen."""
    return sa.Table(
        "sequences", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id_coll", sa.String(14), nullable=False),
        sa.Column("cod_bud", sa.String(2), nullable=False),
        sa.Column("exercise", sa.Integer, nullable=False),
        sa.Column("typ_bord", sa.String(2), nullable=False),
        sa.Column("next_number", sa.Integer, nullable=False),
        sa.Column("start_number", sa.Integer, nullable=False),
        sa.UniqueConstraint("id_coll", "cod_bud", "exercise", "typ_bord", name="uq_sequence"),
    )


def _runs_v1(meta: sa.MetaData) -> sa.Table:
    """``runs`` as migration 1 created it, frozen."""
    return sa.Table(
        "runs", meta,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("pesgen_version", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("id_coll", sa.String(14), nullable=False),
        sa.Column("cod_bud", sa.String(2), nullable=False),
        sa.Column("exercise", sa.Integer, nullable=False),
        sa.Column("typ_bord", sa.String(2), nullable=False),
        sa.Column("format", sa.String(64), nullable=False),
        sa.Column("run_date", sa.String(10), nullable=False),
        sa.Column("first_number", sa.Integer, nullable=False),
        sa.Column("bordereaux", sa.Integer, nullable=False),
        sa.Column("titles", sa.Integer, nullable=False),
        sa.Column("total", sa.String(20), nullable=False),
        sa.Column("mapping_path", sa.Text, nullable=False),
        sa.Column("mapping_sha256", sa.String(64), nullable=False),
        sa.Column("mapping_text", sa.Text, nullable=False),
        sa.Column("format_sha256", sa.String(64), nullable=False),
        sa.Column("format_bundle", sa.LargeBinary, nullable=False),
        sa.Column("input_name", sa.Text, nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("input_blob", sa.LargeBinary, nullable=False),
        sa.Column("validation", sa.Text, nullable=False),
        sa.Column("policies", sa.Text, nullable=False),
        sa.Column("out_dir", sa.Text, nullable=False),
        sa.Column("cancelled_at", sa.String(32)),
        sa.Column("cancel_reason", sa.Text),
    )


def _run_invoices_v1(meta: sa.MetaData) -> sa.Table:
    """``run_invoices`` as migration 1 created it, frozen: the columns and indexes later
    migrations add to it are theirs to create."""
    table = sa.Table(
        "run_invoices", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), sa.ForeignKey(runs.c.id), nullable=False,
                  index=True),
        sa.Column("id_coll", sa.String(14), nullable=False),
        sa.Column("invoice", sa.String(64), nullable=False),
        sa.Column("id_bord", sa.Integer, nullable=False),
        sa.Column("id_pce", sa.Integer, nullable=False),
        sa.Column("amount", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    sa.Index("uq_active_invoice", table.c.id_coll, table.c.invoice, unique=True,
             sqlite_where=table.c.active, postgresql_where=table.c.active)
    sa.Index("ix_invoice", table.c.invoice)
    return table


def _migration_1(conn: Connection) -> None:
    frozen = sa.MetaData()
    _sequences_v1(frozen).create(conn)
    _runs_v1(frozen).create(conn)
    metadata.create_all(conn, tables=[run_files])  # unchanged since
    _run_invoices_v1(sa.MetaData()).create(conn)


def _migration_2(conn: Connection) -> None:
    from .payfip.tables import migration_2  # PayFiP operations, payments, history, anomalies

    migration_2(conn)


def _migration_3(conn: Connection) -> None:
    # rows recorded before keep NULL: their NumDettes are not checked (docs/state.md)
    conn.exec_driver_sql("ALTER TABLE run_invoices ADD COLUMN debt_number VARCHAR(15)")
    uq_active_debt_number.create(conn)


def _migration_4(conn: Connection) -> None:
    from .payfip.tables import migration_4  # test payments (saisie T, X) recorded as paid

    migration_4(conn, utc_now())


IN_LIST = 500  # values one statement's IN (…) list holds at most (a round trip each)

_Slice = TypeVar("_Slice", covariant=True)
_Taken = TypeVar("_Taken")


class _Sliced(Protocol[_Slice]):
    """What ``chunks`` slices: a list, or ``SlicedRows``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> _Slice: ...


def chunks(values: _Sliced[_Slice], size: int = IN_LIST) -> Iterator[_Slice]:
    """``values`` in slices of ``size``, in their order: the IN (…) lists of the
    statements that read or write rows by many values (a statement a slice), the rows
    ``record_run`` inserts."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def in_batches(conn: Connection, table: sa.Table, *columns: sa.Column[Any],
               size: int = 5000) -> Iterator[Sequence[Any]]:
    """Every row of ``table`` (its ``id``, then ``columns``), ``size`` rows a query in
    the order of their ids, each batch read after the one before was used: a migration
    rewriting a column of a large table holds one batch at a time."""
    last = None
    while True:
        query = sa.select(table.c.id, *columns).order_by(table.c.id).limit(size)
        if last is not None:
            query = query.where(table.c.id > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _run_invoices_v5(meta: sa.MetaData) -> sa.Table:
    """What migration 5 reads and writes of ``run_invoices`` and ``runs``, frozen."""
    sa.Table("runs", meta, sa.Column("id", sa.String(36), primary_key=True),
             sa.Column("created_at", sa.String(32), nullable=False))
    table = sa.Table(
        "run_invoices", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("id_coll", sa.String(14), nullable=False),
        sa.Column("invoice", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("invoice_key", sa.String(192)),
        sa.Column("key_shared", sa.Boolean, nullable=False),
    )
    held = sa.and_(table.c.active, sa.not_(table.c.key_shared))
    sa.Index("uq_active_invoice_key", table.c.id_coll, table.c.invoice_key, unique=True,
             sqlite_where=held, postgresql_where=held)
    return table


def _migration_5(conn: Connection) -> None:
    # TypBord is the format's name when its bundle gives no defaults.typ_bord
    # (bl-emagnus): VARCHAR(2) refused it on PostgreSQL (SQLite enforces no length)
    if conn.dialect.name == "postgresql":
        for name in ("sequences", "runs"):
            conn.exec_driver_sql(f"ALTER TABLE {name} ALTER COLUMN typ_bord TYPE VARCHAR(64)")
    # invoice numbers compared ignoring case and surrounding spaces: the key is computed
    # here in Python, as keys.invoice_key did then (frozen here: migration 6 keys the
    # numbers again as it does now)
    conn.exec_driver_sql("ALTER TABLE run_invoices ADD COLUMN invoice_key VARCHAR(192)")
    conn.exec_driver_sql("ALTER TABLE run_invoices ADD COLUMN key_shared BOOLEAN NOT NULL "
                         "DEFAULT FALSE")
    table = _run_invoices_v5(sa.MetaData())
    update = table.update().where(table.c.id == sa.bindparam("row_id"))
    for rows in in_batches(conn, table, table.c.invoice):
        conn.execute(update.values(invoice_key=sa.bindparam("key")),
                     [{"row_id": i, "key": inv.strip().casefold()} for i, inv in rows])
    # Active rows whose numbers differ only by case or spaces (FA-1 in one run, fa-1 in
    # another, which the guard let through before): the migration does not fail on them
    # nor cancel either. Both stay active and keep refusing the invoice; the oldest holds
    # the unique index, the others are marked key_shared (docs/state.md).
    runs_t = table.metadata.tables["runs"]
    shared = conn.execute(
        sa.select(table.c.id_coll, table.c.invoice_key).where(table.c.active)
        .group_by(table.c.id_coll, table.c.invoice_key).having(sa.func.count() > 1)).all()
    for id_coll, key in shared:
        ids = conn.execute(
            sa.select(table.c.id).join(runs_t, runs_t.c.id == table.c.run_id)
            .where(table.c.id_coll == id_coll, table.c.invoice_key == key, table.c.active)
            .order_by(runs_t.c.created_at, table.c.id)).scalars().all()
        conn.execute(table.update().where(table.c.id.in_(ids[1:])).values(key_shared=True))
    for index in table.indexes:  # uq_active_invoice_key
        index.create(conn)


def _migration_6(conn: Connection) -> None:
    # The key became the number as the outputs write it (format characters dropped,
    # characters outside ISO-8859-1 transliterated as the outputs do, else NFKC, dashes
    # and spaces folded: keys.invoice_key). An ASCII number's key is unchanged;
    # one written otherwise (FA\u00ad-2026-00101, soft hyphen) is keyed again here, and
    # may now share its key with another active row: a look-alike the guard let through
    # before. As migration 5 did for case, the migration neither fails nor cancels: both
    # stay active and refuse the invoice, the oldest holds the unique index, the others
    # are marked key_shared (docs/state.md).
    if conn.dialect.name == "postgresql":  # one character's key is up to 18 characters
        conn.exec_driver_sql("ALTER TABLE run_invoices ALTER COLUMN invoice_key TYPE "
                             f"VARCHAR({INVOICE_KEY_MAX})")
    table = _run_invoices_v5(sa.MetaData())  # what migration 5 read and wrote, still
    changed: list[dict[str, Any]] = []
    for rows in in_batches(conn, table, table.c.id_coll, table.c.invoice, table.c.invoice_key):
        for row_id, id_coll, inv, old in rows:
            key = invoice_key(inv)
            if key != old:
                changed.append({"row_id": row_id, "id_coll": id_coll, "key": key})
    if not changed:
        return
    [index] = table.indexes  # uq_active_invoice_key: two rows may hold one key meanwhile
    index.drop(conn)
    conn.execute(table.update().where(table.c.id == sa.bindparam("row_id"))
                 .values(invoice_key=sa.bindparam("key")),
                 [{"row_id": c["row_id"], "key": c["key"]} for c in changed])
    # each key a changed row now has: its oldest active row holds the index, the others
    # are marked (the rows the index held before included: the oldest may be another)
    runs_t = table.metadata.tables["runs"]
    for id_coll, key in sorted({(c["id_coll"], c["key"]) for c in changed}):
        ids = conn.execute(
            sa.select(table.c.id).join(runs_t, runs_t.c.id == table.c.run_id)
            .where(table.c.id_coll == id_coll, table.c.invoice_key == key, table.c.active)
            .order_by(runs_t.c.created_at, table.c.id)).scalars().all()
        if ids:
            conn.execute(table.update().where(table.c.id == ids[0]).values(key_shared=False))
            conn.execute(table.update().where(table.c.id.in_(ids[1:])).values(key_shared=True))
    index.create(conn)


# Ordered schema migrations; append, never edit a released one (what they create is
# frozen with them: a later change to a table is a new migration).
def _migration_7(conn: Connection) -> None:
    from .payfip.tables import migration_7  # PayFiP anomalies: who resolved, when, note

    migration_7(conn)


def _migration_8(conn: Connection) -> None:
    # one bordereau of a run cancelled, the others active; nothing to fill in: a run
    # cancelled before is cancelled whole, by its status
    _cancelled_bordereaux_v8(sa.MetaData()).create(conn)


def _migration_9(conn: Connection) -> None:
    # the acknowledgements recorded from now on; nothing to fill in: none was recorded
    files, acks = _acquits_v9(sa.MetaData())
    files.create(conn)
    acks.create(conn)


def _migration_10(conn: Connection) -> None:
    # the index the invoice guard looks numbers up in (docs/performance.md, "Scale of the
    # other commands"); nothing to fill in
    _active_keys_v10(_run_invoices_v5(sa.MetaData())).create(conn)


def _migration_11(conn: Connection) -> None:
    # the index a title is looked up by its run and invoice in (docs/performance.md,
    # "Scale of the other commands"); nothing to fill in
    _titles_v11(_run_invoices_v5(sa.MetaData())).create(conn)


def _migration_12(conn: Connection) -> None:
    # the moves of a started sequence from now on; nothing to fill in: none was possible
    _sequence_moves_v12(sa.MetaData()).create(conn)


def _migration_13(conn: Connection) -> None:
    # the cancellations undone from now on; nothing to fill in: none was possible
    _reinstatements_v13(sa.MetaData()).create(conn)


def _migration_14(conn: Connection) -> None:
    # what the trésorerie did with money paid through a cancelled title; nothing to fill
    # in: an anomaly resolved before keeps its note alone
    from .payfip.tables import migration_14

    migration_14(conn)


def _migration_15(conn: Connection) -> None:
    """A paid title cancelled is a ``paid-cancelled`` anomaly from schema 15 on (``runs
    cancel --despite-payments`` records it): each payment of a title cancelled before
    gets one (source ``migration``), open, so that support can record what the
    trésorerie did with the money. The tables as they were then (read from the store)."""
    meta = sa.MetaData()
    pays, ops, titles, found = (sa.Table(name, meta, autoload_with=conn) for name in (
        "payfip_payments", "payfip_operations", "run_invoices", "payfip_anomalies"))
    paid_run = sa.func.coalesce(pays.c.applied_run, ops.c.run_id)
    rows = conn.execute(
        sa.select(pays.c.invoice, pays.c.id_op, pays.c.paid_cents, titles.c.run_id,
                  titles.c.id_bord)
        .join(ops, ops.c.id_op == pays.c.id_op)
        .join(titles, sa.and_(titles.c.run_id == paid_run,
                              titles.c.invoice == pays.c.invoice))
        .where(pays.c.status == "paid", sa.not_(titles.c.active))
        .order_by(pays.c.id)).all()
    if rows:
        now = utc_now()
        conn.execute(found.insert(), [
            {"at": now, "kind": "paid-cancelled", "id_op": r.id_op, "invoice": r.invoice,
             "source": "migration", "expected": None, "got": None,
             "detail": f"its title, paid {(r.paid_cents or 0) // 100}."
                       f"{(r.paid_cents or 0) % 100:02d}, cancelled (IdBord {r.id_bord} of "
                       f"run {r.run_id}) before this pesgen recorded such anomalies"}
            for r in rows])


def _migration_16(conn: Connection) -> None:
    """A paid title reinstated is paid again, and from schema 16 on `runs reinstate`
    resolves the ``paid-cancelled`` anomaly its cancellation left open: each one still
    open whose payment (paid, by the operation it names) follows an active title, a
    title reinstated under schema 15, is resolved so (outcome ``reinstated``, by
    ``migration``), with an ``anomaly-resolved`` event (source ``migration``). The
    tables as they were then (read from the store), the values frozen here."""
    meta = sa.MetaData()
    pays, ops, titles, found, events_ = (sa.Table(name, meta, autoload_with=conn) for name in (
        "payfip_payments", "payfip_operations", "run_invoices", "payfip_anomalies",
        "payfip_events"))
    paid_run = sa.func.coalesce(pays.c.applied_run, ops.c.run_id)
    rows = conn.execute(
        sa.select(found.c.id, pays.c.id_coll, pays.c.invoice, pays.c.id_op, titles.c.run_id,
                  titles.c.id_bord)
        .join(pays, sa.and_(pays.c.id_op == found.c.id_op, pays.c.invoice == found.c.invoice))
        .join(ops, ops.c.id_op == pays.c.id_op)
        .join(titles, sa.and_(titles.c.run_id == paid_run, titles.c.invoice == pays.c.invoice,
                              titles.c.id_coll == pays.c.id_coll))
        .where(found.c.kind == "paid-cancelled", found.c.resolved_at.is_(None),
               pays.c.status == "paid", titles.c.active)
        .order_by(found.c.id)).all()
    if not rows:
        return
    now = utc_now()
    for r in rows:
        conn.execute(found.update().where(found.c.id == r.id).values(
            resolved_at=now, resolved_by="migration", outcome="reinstated",
            note=f"its title (IdBord {r.id_bord} of run {r.run_id}) was reinstated before "
                 "this pesgen resolved such anomalies: active again, paid by this payment"))
    conn.execute(events_.insert(), [
        {"id_coll": r.id_coll, "invoice": r.invoice, "id_op": r.id_op, "at": now,
         "event": "anomaly-resolved", "source": "migration", "status": "paid",
         "detail": json.dumps({"anomaly": r.id, "kind": "paid-cancelled", "by": "migration",
                               "outcome": "reinstated", "run": r.run_id}, sort_keys=True)}
        for r in rows])


def _migration_17(conn: Connection) -> None:
    # each payment's invoice key, indexed: a link reads its invoices' payments only
    from .payfip.tables import migration_17

    migration_17(conn)


def _migration_18(conn: Connection) -> None:
    # the anomalies indexed by their operation (docs/performance.md, "held-back at
    # scale"); nothing to fill in
    from .payfip.tables import migration_18

    migration_18(conn)


def _migration_19(conn: Connection) -> None:
    # each title's input record (its position: `pesgen acquit` names it); nothing to fill
    # in: runs recorded before keep none (the input they recorded would have to be read)
    conn.exec_driver_sql("ALTER TABLE run_invoices ADD COLUMN record TEXT")


def _migration_20(conn: Connection) -> None:
    # the runs indexed by their numbering (docs/performance.md, "numbering_gap and unsent
    # at scale"); nothing to fill in
    meta = sa.MetaData()
    _runs_sequence_v20(sa.Table(
        "runs", meta, sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("id_coll", sa.String(14)), sa.Column("cod_bud", sa.String(2)),
        sa.Column("exercise", sa.Integer), sa.Column("typ_bord", sa.String(TYP_BORD_MAX))
    )).create(conn)


def _migration_21(conn: Connection) -> None:
    # each title's number of lines (`pesgen acquit` checks a NumLigne against it);
    # nothing to fill in: runs recorded before keep none (NULL: their acquits' line
    # numbers are not checked, and said so), rather than counts read again from their
    # input. A column there already (a store whose schema table was lost, a copy) is
    # left as it is: applied again, the migration changes nothing
    if "line_count" not in {c["name"] for c in sa.inspect(conn).get_columns("run_invoices")}:
        conn.exec_driver_sql("ALTER TABLE run_invoices ADD COLUMN line_count INTEGER")


def _migration_22(conn: Connection) -> None:
    # the invoices whose `payfip link` is being made (docs/payfip.md, two links at once);
    # empty: no link is being made while a store is migrated
    from .payfip.tables import migration_22

    migration_22(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [_migration_1, _migration_2, _migration_3,
                                                  _migration_4, _migration_5, _migration_6,
                                                  _migration_7, _migration_8, _migration_9,
                                                  _migration_10, _migration_11, _migration_12,
                                                  _migration_13, _migration_14, _migration_15,
                                                  _migration_16, _migration_17, _migration_18,
                                                  _migration_19, _migration_20, _migration_21,
                                                  _migration_22]


# a run id or its first characters, as `runs list` shows them; never a LIKE pattern
_RUN_PREFIX = re.compile(r"[0-9a-f-]{4,36}")
# a PES TypBord (06 ORMC, 01 titres): a finance package's run records its format's name
_PES_TYP_BORD = re.compile(r"[0-9]{2}")


def shown_url(url: str) -> str:
    """A database URL fit for a message or a log: its password masked, whether given as
    user:password@ (even holding '@') or as a query parameter (?password=…)."""
    return masked_url(url)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, None for an in-memory database."""
    if "///" not in url:  # sqlite:// : in memory
        return None
    path = url.split("///", 1)[-1]
    return None if not path or path == ":memory:" else Path(path)


def _new_sqlite_file(url: str) -> tuple[bool, list[Path]]:
    """Create the file of a SQLite URL if it is not there (a store opened for writing):
    whether this call created it, and the folders it made for it (deepest first)."""
    path = _sqlite_file(url) if url.startswith("sqlite") else None
    if path is None or path.exists():
        return False, []
    # the store keeps every exported input (names, addresses, IBANs): readable by its
    # owner only (SQLite gives its journal the same mode)
    folder = path.parent.absolute()
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False, []  # created meanwhile by another process: its mode stands
    return True, made


def _remove_sqlite(path: Path | None, folders: list[Path]) -> None:
    """Remove a SQLite file, its side files, and those of ``folders`` (made for it,
    deepest first) that are still empty."""
    if path is None:
        return
    for name in (path, *(path.with_name(path.name + s) for s in ("-journal", "-wal", "-shm"))):
        name.unlink(missing_ok=True)
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone: the ones above it stay too
            break


def default_path() -> Path:
    """The store used when none is named: ``$XDG_DATA_HOME/pesgen/pesgen.sqlite3``."""
    base = user_folder("XDG_DATA_HOME", ".local/share", "the default state store",
                       "name the store with --db or PESGEN_DB")
    return base / "pesgen" / "pesgen.sqlite3"


def _default_shown() -> str:
    """The default store's path as a message names it, or why there is none."""
    try:
        return str(default_path())
    except UsageError as exc:  # a store named by --db is missing, and no default either
        return f"$XDG_DATA_HOME/pesgen/pesgen.sqlite3 (none here: {exc})"


def default_url() -> str:
    env = os.environ.get("PESGEN_DB")
    if env:
        return env if "://" in env else f"sqlite:///{Path(env).expanduser().resolve()}"
    return f"sqlite:///{default_path()}"


def is_store(url: str | None) -> bool:
    """Whether ``url`` (None: the default store) is a pesgen store already, so that
    opening it for writing creates no file nor table (it may migrate it): read without
    creating, changing or locking anything. False when it cannot tell (no file, an empty
    database, a server that does not answer: opening it says why, if it must)."""
    url = url or default_url()
    try:
        if url.startswith("sqlite"):
            path = _sqlite_file(url)
            if path is None or not path.is_file():
                return False
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                    "name = ?", (schema_table.name,)).fetchone() is not None
            finally:
                conn.close()
        engine = Store._engine(url)
        try:
            return sa.inspect(engine).has_table(schema_table.name)
        finally:
            engine.dispose()
    except Exception:
        return False


def shown_store(url: str) -> str:
    """A store as a message names it: a SQLite file's path, else its URL (password
    masked)."""
    path = _sqlite_file(url) if url.startswith("sqlite") else None
    return str(path) if path is not None else shown_url(url)


# A wait for the SQLite write lock shorter than this (or than a quarter of the
# timeout) is not announced: concurrent exports take it in turn all the time
_LOCK_GRACE = 2.0
_LOCK_POLL = 0.5  # seconds of each turn of the wait, between which signals are heard


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def store_locked(url: str, seconds: float,
                 outcome: str = "this command stopped waiting for it",
                 rows: str | None = None, holder: str | None = None) -> StoreLocked:
    """The error of a command that waited ``seconds`` for the store's write lock in vain
    (``rows``: on PostgreSQL, for rows another transaction held, ``Store.waits_for_rows``;
    ``holder``: who may hold them, ``_ROWS_HOLDER`` by default): what held it, for how
    long, and what to do; no billing data."""
    held, finish = (
        ("another pesgen run held the state store's lock", "Let that run finish (an export "
         "holds the lock while it renders, validates and records its files)") if rows is None
        else (f"another transaction held {rows} in the state store "
              f"({holder or _ROWS_HOLDER})", "Let that transaction end"))
    error = StoreLocked(
        f"{shown_url(url)}: {held} for {seconds:g} s (store_lock_timeout): {outcome}. "
        f"{finish}, then run this command again; to wait longer, set "
        "PESGEN_STORE_LOCK_TIMEOUT=SECONDS or "
        f"store_lock_timeout in {config_path()} (default {STORE_LOCK_TIMEOUT:g})")
    error.url, error.seconds, error.rows, error.holder = url, seconds, rows, holder
    return error


def stopped_waiting(exc: PesgenError, outcome: str) -> PesgenError:
    """``exc``, unless it is a StoreLocked (a command that gave up waiting for the store:
    another run's lock on SQLite, on PostgreSQL rows another transaction held,
    ``Store.waits_for_rows``): then the same error, its message saying what the command
    left (``outcome``) instead of "this command stopped waiting for it"."""
    if not isinstance(exc, StoreLocked):
        return exc
    return store_locked(exc.url, exc.seconds, outcome, rows=exc.rows, holder=exc.holder)


# who may hold a PayFiP operation's or payment's row on PostgreSQL, which a pesgen command
# recording for an invoice locks (FOR UPDATE) for an instant
_ROWS_HOLDER = "a pesgen command recording for the same invoice, or another program's session"


class _LockWait:
    """SQLite's BEGIN IMMEDIATE: the write lock at once, so allocation is serialised
    (every transaction that may write takes it). Another pesgen run holds it from its
    numbering to its commit, rendering and validating meanwhile: past a short grace, say
    so once (``on_wait``) and wait up to ``timeout`` seconds in all; then give up with a
    message that says what held the store and what to do. A transaction begun within
    ``Store.reads`` (``reading``) only reads: a deferred BEGIN, which takes no write lock
    (SQLite's shared lock, statement by statement, which an export holding the write lock
    lets through until it commits), with the connection query_only, so a write in it
    fails instead of waiting for the lock from inside a transaction."""

    def __init__(self, url: str, timeout: float,
                 on_wait: Callable[..., None] | None = None) -> None:
        self.url, self._timeout, self._on_wait = url, timeout, on_wait
        self.told = False
        # Store.reads: this thread's depth; Store.waits_at_most: this thread's bound
        self._local = threading.local()

    @property
    def timeout(self) -> float:
        """How long this thread's transactions wait for the lock: ``store_lock_timeout``,
        or less within ``at_most``."""
        bound = getattr(self._local, "bound", None)
        return self._timeout if bound is None else min(self._timeout, bound)

    @property
    def on_wait(self) -> Callable[..., None] | None:
        """What says a wait past the grace; nothing within ``at_most`` (its caller, a
        server answering a request, says what a wait given up made of it)."""
        return None if getattr(self._local, "bound", None) is not None else self._on_wait

    @property
    def bounded(self) -> bool:
        """Within ``at_most``: this thread's transactions wait at most its bound."""
        return getattr(self._local, "bound", None) is not None

    @contextmanager
    def at_most(self, seconds: float) -> Iterator[None]:
        previous = getattr(self._local, "bound", None)
        self._local.bound = seconds
        try:
            yield
        finally:
            self._local.bound = previous

    @property
    def reading(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def reads(self) -> Iterator[None]:
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1

    def begin(self, conn: Connection) -> None:
        if self.reading:
            conn.exec_driver_sql("PRAGMA query_only=ON")
            self._wait(conn, self._share)
            return
        conn.exec_driver_sql("PRAGMA query_only=OFF")  # a pooled connection's, from reads
        self._wait(conn, self._try)
        # the write lock held, a statement waits for nothing but the file alone, which
        # a write takes before its commit only to spill pages its cache cannot hold: with
        # reads under way, SQLite then keeps them in memory instead of waiting for them
        # in its busy handler, in C, deaf to Ctrl-C; the commit waits for them in turns
        conn.exec_driver_sql("PRAGMA busy_timeout=0")

    def commit(self, conn: Connection, stop: Callable[[], bool] | None = None) -> None:
        """COMMIT ``conn``'s transaction, waiting in turns as ``begin`` does: a commit
        that wrote takes the file alone (PENDING, then EXCLUSIVE), so it waits for the
        reads under way to end (``reads``: a dry run, runs show…). A COMMIT SQLite
        refuses busy leaves the transaction open, nothing committed, to be tried again
        (https://www.sqlite.org/lang_transaction.html). ``stop`` (an export holding
        Ctrl-C and SIGTERM from its commit on: whether one came) is asked after each
        refused turn: true, the commit is given up as an interrupt (KeyboardInterrupt),
        nothing committed. Past ``timeout``, StoreLocked, nothing committed either."""
        self._wait(conn, self._commit, stop)

    def _wait(self, conn: Connection, attempt: Callable[[Connection, float], bool],
              stop: Callable[[], bool] | None = None) -> None:
        """``attempt`` (``_try``, ``_share``, ``_commit``) until it takes the lock, in
        turns of at most ``_LOCK_POLL`` seconds: SQLite's busy handler sleeps in C, deaf
        to Ctrl-C and SIGTERM, which are heard between the turns (``stop``: asked there
        when the caller holds them). Past the grace, say so once; past ``timeout``
        seconds in all, StoreLocked."""
        started = time.monotonic()
        grace = min(_LOCK_GRACE, self.timeout / 4)
        turn = 0.0  # the first try does not wait: the lock is free nearly always
        try:
            while not attempt(conn, turn):
                if stop is not None and stop():
                    raise KeyboardInterrupt
                waited = time.monotonic() - started
                left = self.timeout - waited
                if left <= 0:
                    raise store_locked(self.url, self.timeout)
                if (waited >= grace and self.timeout > grace and self.on_wait is not None
                        and not self.told):
                    self.told = True
                    self.on_wait(self.timeout)
                # told at the grace's end, not a turn later
                turn = min(left, _LOCK_POLL, grace - waited if waited < grace else left)
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={_ms(self.timeout)}")

    def row(self, conn: Connection, take: Callable[[], _Taken],
            holder: Callable[[], str | None]) -> _Taken:
        """PostgreSQL: ``take`` (the statements that lock a numbering sequence's row),
        waiting for the transaction holding it (another export recording its run) as a
        SQLite store's lock is waited for: past the grace, said once (``on_wait``, with
        ``holder``'s description of that transaction), and at most ``timeout`` seconds
        in all, then StoreLocked. Before, it waited as long as it took, without a word.
        Two turns with a ``lock_timeout``: the grace, in a savepoint (a lock not taken
        then leaves the transaction usable), then the rest, in the transaction itself
        (not taken: StoreLocked, the transaction given up), so that the lock is the
        transaction's own, which an export waiting for it can tell (``_pg_holder``: a
        released savepoint's is not in pg_locks). Ctrl-C and SIGTERM cancel the
        statement (psycopg's)."""
        grace = min(_LOCK_GRACE, self.timeout / 4)
        started = time.monotonic()
        try:
            with conn.begin_nested():
                self._lock_timeout(conn, grace)
                taken = take()
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != _PG_LOCK_NOT_AVAILABLE:
                raise
            left = self.timeout - (time.monotonic() - started)
            if left <= 0:
                raise store_locked(self.url, self.timeout) from None
            if self.on_wait is not None and self.timeout > grace and not self.told:
                self.told = True
                said = holder()
                if said is None:
                    self.on_wait(self.timeout)
                else:
                    self.on_wait(self.timeout, said)
            self._lock_timeout(conn, left)
            try:
                taken = take()
            except sa.exc.OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != _PG_LOCK_NOT_AVAILABLE:
                    raise
                raise store_locked(self.url, self.timeout) from None
        conn.exec_driver_sql("SET LOCAL lock_timeout TO DEFAULT")
        return taken

    def pg_begin(self, conn: Connection) -> None:
        """A PostgreSQL transaction begun within ``at_most`` waits for a row another
        transaction holds (a notification's operation or payment, which a pesgen
        command recording for the same invoice locks, or another program's session) at
        most the bound, each statement (its ``lock_timeout``); ``Store.waits_at_most``
        makes StoreLocked of a wait given up. Otherwise the server's default: no bound
        (a numbering sequence's row is waited for in ``row``)."""
        if self.bounded:
            self._lock_timeout(conn, self.timeout)

    @staticmethod
    def _lock_timeout(conn: Connection, seconds: float) -> None:
        # at least a millisecond: 0 would be no timeout at all
        conn.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"),
                     {"t": f"{max(_ms(seconds), 1)}ms"})

    @staticmethod
    def _try(conn: Connection, wait: float) -> bool:
        """BEGIN IMMEDIATE, waiting up to ``wait`` seconds for the lock (SQLite's busy
        handler polls it); False when it is still held."""
        return _LockWait._waited(conn, "BEGIN IMMEDIATE", wait)

    @staticmethod
    def _commit(conn: Connection, wait: float) -> bool:
        """COMMIT, waiting up to ``wait`` seconds for the reads under way to end (SQLite's
        busy handler); False when one still holds the file: the transaction is still
        open then, nothing committed."""
        return _LockWait._waited(conn, "COMMIT", wait)

    @staticmethod
    def _waited(conn: Connection, statement: str, wait: float) -> bool:
        """``statement``, SQLite's busy handler waiting up to ``wait`` seconds for the
        lock it needs; False when SQLite still refuses it busy."""
        conn.exec_driver_sql(f"PRAGMA busy_timeout={_ms(wait)}")
        try:
            conn.exec_driver_sql(statement)
        except sa.exc.OperationalError as exc:
            if not _busy(exc):
                raise
            return False
        return True

    @staticmethod
    def _share(conn: Connection, wait: float) -> bool:
        """A read transaction (BEGIN DEFERRED) with its shared lock taken at once, by a
        read of the file's header (the schema's version), waiting up to ``wait`` seconds
        (SQLite's busy handler); False while an export commits (it holds the file alone
        for that instant, or waits for the reads under way to end, new ones waiting
        behind it). The shared lock, kept to the transaction's end, makes no statement
        after it wait: the wait is here, in turns, not in a query's busy handler."""
        # an open connection has its driver's (SQLAlchemy types it optional)
        if not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            # (SQLAlchemy rolls back the transaction a failed turn had begun)
            conn.exec_driver_sql("BEGIN DEFERRED")
        conn.exec_driver_sql(f"PRAGMA busy_timeout={_ms(wait)}")
        try:
            conn.exec_driver_sql("PRAGMA schema_version").scalar()
        except sa.exc.OperationalError as exc:
            if not _busy(exc):
                raise
            return False
        return True


# PostgreSQL's lock_not_available: a lock_timeout ran out (or NOWAIT)
_PG_LOCK_NOT_AVAILABLE = "55P03"
# what an export names its PostgreSQL session while it holds its sequence's row
# (``Store.name_export``), read back by an export waiting for it (``_pg_holder``)
_EXPORT_SESSION = re.compile(r"pesgen export (\S+) pid (\d+)")


def _busy(exc: sa.exc.OperationalError) -> bool:
    """Whether SQLite refused for a lock another connection holds (SQLITE_BUSY)."""
    return getattr(exc.orig, "sqlite_errorname", None) == "SQLITE_BUSY"


def _quiet_logger(name: str) -> None:
    """Give a library's logger a handler that drops its records, once: Python's last
    resort (standard error, without configuration) is then never used for them."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def db_said(exc: Any) -> str:
    """What the database said of a failure (``exc``: a DBAPIError), on one line:
    PostgreSQL's messages run over lines (its DETAIL, psycopg's "This probably
    means…")."""
    return " ".join(str(exc.orig).split())


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RunRecord:
    id: str
    created_at: str
    status: str
    format: str
    exercise: int
    first_number: int
    bordereaux: int
    titles: int
    total: str
    mapping_path: str
    input_name: str
    run_date: str
    out_dir: str
    pesgen_version: str
    cancel_reason: str | None
    # the bordereaux cancelled while others of the run stayed active (migration 8)
    cancelled_bordereaux: tuple[int, ...] = ()
    # their titles and total, the part of ``titles`` and ``total`` freed (None: none)
    cancelled_figures: tuple[int, str] | None = None
    typ_bord: str = ""
    cod_bud: str = ""
    id_coll: str = ""  # the collectivity's SIRET (a store may hold several)

    @property
    def pes(self) -> bool:
        """A PES run (TypBord 06, 01…), whose bordereaux Hélios acknowledges; not a
        finance package's (its TypBord is the format's name: the package sends its PES)."""
        return pes_typ_bord(self.typ_bord)


def pes_typ_bord(typ_bord: str) -> bool:
    """A PES TypBord (06 ORMC, 01 titres), not a finance package's format name."""
    return bool(_PES_TYP_BORD.fullmatch(typ_bord))


# values a duplicate look-up puts in one query's IN list
_LOOKED_UP = 500


def _batches(values: Iterable[str], size: int) -> Iterator[list[str]]:
    """``values`` a list of ``size`` at a time, as they come."""
    it = iter(values)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class Store:
    """A handle on one state database."""

    def __init__(self, url: str | None = None, must_exist: bool = False,
                 lock_timeout: float | None = None,
                 on_wait: Callable[..., None] | None = None,
                 chosen_by: str | None = None, read_only: bool = False,
                 missing_advice: str | None = None) -> None:
        """Open (and migrate) the store at ``url``, creating it if needed; with
        ``must_exist``, refuse a database that is not already a pesgen store, creating
        nothing (a command that reads the store, or a source to copy from, must not
        answer from a new, empty store a mistyped path made). ``chosen_by`` says where
        ``url`` came from (``--db``, ``PESGEN_DB``…), for that refusal's message.
        ``created`` tells afterwards whether this opening made the store.

        SQLite: a transaction that finds the write lock held by another pesgen run waits
        for it up to ``lock_timeout`` seconds (default: the ``store_lock_timeout``
        setting, config.store_lock_timeout), then raises StoreLocked; ``on_wait`` is
        called once, with that timeout, when a wait outlasts a short grace. PostgreSQL:
        the same for an export (``numbering set-start``…) waiting for another holding
        its numbering sequence's row, ``on_wait`` called with a second argument when
        the store can tell what holds it (``_pg_holder``).

        ``read_only`` (a dry run): nothing is created, migrated or recorded; the store is
        read through ``reading``. ``found`` then says what is there: ``store``, ``empty``
        (an empty database) or ``none`` (no SQLite file: read as an empty store, kept in
        memory, which creates no file nor folder)."""
        self.url = url or default_url()
        self.lock_timeout = store_lock_timeout() if lock_timeout is None else lock_timeout
        self._lock = _LockWait(self.url, self.lock_timeout, on_wait)
        self.chosen_by = chosen_by
        self.missing_advice = missing_advice
        self.read_only = read_only
        self.found = "store"
        # read only: the migrations this pesgen would apply first (``reading`` applies
        # them in its transaction, rolled back), once read
        self.pending_migrations = 0
        engine_url = self.url
        if (must_exist or read_only) and self.url.startswith("sqlite"):
            path = _sqlite_file(self.url)
            if must_exist and (path is None or not path.is_file()):
                raise self._missing(f"no pesgen store at {path or shown_url(self.url)}")
            if path is None or not path.exists():
                engine_url, self.found = "sqlite://", "none"
        # the SQLite file and the folders this opening made (``discard_unused``)
        self.made_file, self._made_dirs = _new_sqlite_file(engine_url)
        try:
            self.engine = self._engine(engine_url, self._lock)
            with self.reads():
                ours = self._check_ours(must_exist)
            if not ours and self.found == "store":
                self.found = "empty"
            self.created = not ours and not read_only
            if not read_only:
                self.migrate()
        except BaseException as exc:  # refused, or interrupted: no store of its own left
            if hasattr(self, "engine"):
                removed = self.discard_unused() == "removed"
            elif self.made_file:
                _remove_sqlite(_sqlite_file(engine_url), self._made_dirs)
                removed = True
            else:
                removed = False
            if removed:  # an export says so (cli._new_store_left): the caller has no Store
                # a mark on the exception itself (any kind: mypy knows no such attribute)
                exc.pesgen_removed_store = self.url  # type: ignore[attr-defined]
            raise

    def discard_unused(self) -> str:
        """Remove the SQLite file this opening created (``made_file``), with its side
        files (-journal, -wal, -shm) and the folders made for it, when nothing is
        recorded in it: an export refused after it opened (created) the store leaves no
        empty store behind. Never a file that was there before, nor one in which
        anything was recorded since (another pesgen run may have opened it meanwhile:
        checked under its write lock, and kept while another run holds that lock), never
        a PostgreSQL database. The handle is closed either way: do not use it after.
        ``removed``; ``recorded``: something is recorded in it, it stays; ``kept``: it
        was not made here, or another run holds its lock, or it could not be removed."""
        self.engine.dispose()
        # a file made here, which another run made a store of first, is that run's
        if not self.made_file or not getattr(self, "created", True):
            return "kept"
        path = _sqlite_file(self.url)
        assert path is not None
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                                   timeout=_LOCK_GRACE, isolation_level=None)
        except sqlite3.Error:  # gone already, or unreadable
            return "kept"
        try:
            conn.execute("BEGIN IMMEDIATE")  # no run records in it while it is checked
            tables = [name for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                "'sqlite\\_%' ESCAPE '\\'")]
            if any(conn.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone()
                   for name in tables if name != schema_table.name):
                return "recorded"
            # removed while the lock is held: a run that opened it meanwhile finds its
            # file gone when it writes (SQLite refuses it), it never records into it
            _remove_sqlite(path, self._made_dirs)
            self.made_file = False
            return "removed"
        except (sqlite3.Error, OSError):  # locked by another run, or not removable
            return "kept"
        finally:
            conn.close()

    def holds_records(self) -> bool:
        """Whether anything is recorded in the store (a row in a table of its, besides
        the migrations applied), read in one short transaction."""
        with self.reads(), self.engine.connect() as conn:
            names = [n for n in sa.inspect(conn).get_table_names() if n != schema_table.name]
            preparer = conn.dialect.identifier_preparer
            return any(conn.execute(sa.text(f"SELECT 1 FROM {preparer.quote(n)} LIMIT 1"))
                       .first() is not None for n in names)

    def _check_ours(self, must_exist: bool) -> bool:
        """Never add pesgen's tables to somebody else's database. Whether the database
        is already a pesgen store (else it is empty, and becomes one)."""
        try:
            names = set(sa.inspect(self.engine).get_table_names())
        except sa.exc.DBAPIError as exc:
            raise StateError(f"{shown_url(self.url)}: cannot open the store: {exc.orig}"
                             ) from None
        if schema_table.name in names:
            return True
        if names:
            raise StateError(f"{shown_url(self.url)} holds tables that are not a pesgen store's "
                             f"({', '.join(sorted(names)[:5])}…); pesgen will not touch it")
        if must_exist:
            self.engine.dispose()
            raise self._missing(f"{shown_store(self.url)} is empty: not a pesgen store")
        return False

    def _missing(self, what: str) -> StateError:
        """The refusal of a store that is not there: which, chosen how, and where a
        store comes from."""
        how = f" (chosen by {self.chosen_by})" if self.chosen_by else ""
        if self.missing_advice:  # the command's own (an export's: --create-store)
            return StateError(f"{what}{how}; nothing created: {self.missing_advice}")
        return StateError(
            f"{what}{how}; nothing created: this command reads an existing store. Check "
            "the path: the store is --db, else PESGEN_DB, else db in "
            f"{config_path()}, else {_default_shown()}; `pesgen export` creates the default "
            "store on its first run, a store named on purpose with --create-store")

    @staticmethod
    def _engine(url: str, lock: _LockWait | None = None) -> Engine:
        if url.startswith("sqlite"):
            lock = lock or _LockWait(url, store_lock_timeout())
            _new_sqlite_file(url)
            engine = sa.create_engine(url, connect_args={"timeout": lock.timeout})

            @event.listens_for(engine, "connect")
            def _connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                dbapi_conn.execute("PRAGMA foreign_keys=ON")
                dbapi_conn.execute(f"PRAGMA busy_timeout={_ms(lock.timeout)}")

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                lock.begin(conn)  # IMMEDIATE: the write lock at once, waited for

            return engine
        if url.startswith("postgresql"):
            # psycopg logs what it ignores, e.g. "error ignored terminating
            # <psycopg.Pipeline [INERROR] (host=… user=… database=…)>: pipeline aborted"
            # as a refused record is rolled back; without a handler of its own Python
            # prints it on standard error, a raw database message before pesgen's. Not
            # lost to an application that configures logging (it propagates)
            _quiet_logger("psycopg")
            given = url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            try:
                engine = sa.create_engine(url, pool_pre_ping=True)
            except (ValueError, ImportError, sa.exc.ArgumentError) as exc:
                # an unknown driver (SQLAlchemy's words name it), a driver it knows that
                # is not installed (postgresql+psycopg2://: pesgen's is psycopg 3), or a
                # host and port it cannot read (int()'s words quote what stood there: a
                # port that is no number, an IPv6 address left unclosed); a traceback
                if isinstance(exc, sa.exc.ArgumentError):
                    why = str(exc)
                elif isinstance(exc, ImportError):
                    why = (f"its driver is not installed: {exc}; pesgen connects with "
                           "psycopg 3, postgresql:// or postgresql+psycopg://")
                else:
                    why = ("its host and port cannot be read: HOST:PORT, the port a number, "
                           "an IPv6 address in brackets [::1]")
                raise UsageError(f"{shown_url(given)}: not a database URL pesgen can open "
                                 f"({why}); a store is sqlite:///PATH or "
                                 "postgresql://USER@HOST[:PORT]/DATABASE") from None
            reads = lock

            @event.listens_for(engine, "begin")
            def _begin_pg(conn: Connection) -> None:
                # Store.reads: PostgreSQL's reads never wait for an export; a write in
                # them fails as on SQLite
                if reads is not None and reads.reading:
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                if reads is not None:
                    reads.pg_begin(conn)

            return engine
        raise UsageError(f"unsupported database URL '{shown_url(url)}' (sqlite:///… or "
                         "postgresql://…)")

    # -------------------------------------------------------------- schema

    def schema_version(self) -> int:
        """The store's schema version (0 before its first migration), read without the
        write lock (``reads``)."""
        with self.reads(), self.engine.connect() as conn:
            return self._version(conn)

    def migrate(self) -> None:
        """Apply the migrations the store lacks: the schema's version read first without
        the write lock (``reads``), taken only when there is something to apply (a read
        command does not wait for an export to open an up-to-date store)."""
        if self.schema_version() == len(MIGRATIONS):
            return
        with self.transaction() as conn:
            self._migrate(conn)

    @staticmethod
    def _version(conn: Connection) -> int:
        """The store's schema version; 0 before its first migration."""
        if not sa.inspect(conn).has_table(schema_table.name):
            return 0
        return conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar() or 0

    @contextmanager
    def reads(self) -> Iterator[None]:
        """Within the block, every transaction of this store (of this thread) only reads:
        on SQLite a deferred transaction, which does not take the write lock, so a read
        command (runs list / show / find, payfip payments…) neither waits for an export
        holding it nor makes one wait; a write in it fails (query_only). On PostgreSQL a
        READ ONLY transaction (reads never waited there). Each store method is still its
        own transaction. Nestable."""
        with self._lock.reads():
            yield

    @contextmanager
    def waits_at_most(self, seconds: float) -> Iterator[None]:
        """Within the block, a transaction of this store (of this thread) waits for the
        lock another run holds (SQLite's write lock; on PostgreSQL a numbering sequence's
        row) at most ``seconds`` (or ``store_lock_timeout`` when it is shorter), then
        raises StoreLocked, nothing written, and says nothing while it waits: a request
        to a server (``payfip serve``'s notifications) that answers its client in a
        bounded time instead of keeping it waiting for an export. On PostgreSQL, where an
        export holds no row a notification needs, each statement waits at most as long
        for any row another transaction holds (``_LockWait.pg_begin``). Nestable."""
        with self._lock.at_most(seconds):
            try:
                yield
            except sa.exc.OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != _PG_LOCK_NOT_AVAILABLE:
                    raise
                raise store_locked(self.url, self._lock.timeout) from None

    def waits_for_rows(self, work: Callable[[], _Taken], rows: str,
                       holder: str | None = None) -> _Taken:
        """``work``, whole transactions that lock ``rows`` (``the rows of PayFiP operation
        …``; no billing data), run again safely when a wait given up rolled them back. On
        PostgreSQL a row another transaction holds (a pesgen command recording for the
        same invoice, a session left open) is waited for as an export waits for its
        sequence's row (``_LockWait.row``): past the grace, said once (``on_wait``, naming
        ``rows``), at most ``store_lock_timeout`` in all, then StoreLocked naming them.
        Before, the wait was as long as the row was held, without a word. Two turns:
        ``work`` within the grace (each statement's ``lock_timeout``), then, given up and
        rolled back, again within what is left. On SQLite ``work`` as it is: its
        transactions wait for the store's lock so already. Within ``waits_at_most``
        (a server's request), ``work`` as it is too: that bound is the caller's.
        ``holder``: who may hold ``rows``, said with them (``_ROWS_HOLDER`` by default)."""
        if self.engine.dialect.name != "postgresql" or self._lock.bounded:
            return work()
        timeout = self._lock.timeout
        grace = min(_LOCK_GRACE, timeout / 4)
        started = time.monotonic()
        try:
            with self.waits_at_most(grace):
                return work()
        except StoreLocked:
            pass
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            raise store_locked(self.url, timeout, rows=rows, holder=holder)
        if self._lock._on_wait is not None and timeout > grace and not self._lock.told:
            self._lock.told = True
            self._lock._on_wait(timeout, f"another transaction holds {rows} in the state "
                                f"store ({holder or _ROWS_HOLDER})")
        try:
            with self.waits_at_most(left):
                return work()
        except StoreLocked:
            raise store_locked(self.url, timeout, rows=rows, holder=holder) from None

    def _migrate(self, conn: Connection) -> int:
        """Apply the migrations the store lacks, in ``conn``'s transaction; how many."""
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(74657347)")
        schema_table.create(conn, checkfirst=True)
        current = conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar() or 0
        if current > len(MIGRATIONS):
            # tables or rules this pesgen does not know: writing would break them
            raise StateError(f"{shown_url(self.url)}: this store was migrated by a newer "
                             f"pesgen (schema {current}, this pesgen knows up to "
                             f"{len(MIGRATIONS)}): upgrade pesgen")
        for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
            step(conn)
            conn.execute(schema_table.insert().values(version=version, applied_at=utc_now()))
        return len(MIGRATIONS) - current

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """The store as an export would find it, changing nothing (a dry run): one
        transaction, always rolled back. An up-to-date store is read in a read-only one
        (``reads``: on SQLite deferred, without the write lock, so a dry run neither waits
        for an export nor holds one up; its shared lock still keeps every read of the
        transaction on one state of the store). A store this pesgen would migrate first
        gets its migrations applied in the transaction, then rolled back: on SQLite that
        holds the store's write lock while it lasts. Keep it short."""
        up_to_date = self.schema_version() == len(MIGRATIONS)
        with ExitStack() as stack:
            if up_to_date:
                stack.enter_context(self.reads())
            conn = stack.enter_context(self.engine.connect())
            if conn.dialect.name == "postgresql":  # one snapshot for every read
                conn.execution_options(isolation_level="REPEATABLE READ")
            conn.begin()
            try:
                self.pending_migrations = 0 if up_to_date else self._migrate(conn)
                yield conn
            finally:
                conn.rollback()

    @contextmanager
    def snapshot(self, conn: Connection | None) -> Iterator[Connection]:
        """A connection whose reads all see the store as it was at one moment, for a
        decision made on several statements (the duplicate guard reads in chunks):
        ``conn`` itself when it already does (SQLite: its transaction holds the write
        lock, no other run commits meanwhile; PostgreSQL: a REPEATABLE READ transaction,
        ``reading``'s), else a read-only transaction of its own, rolled back. On
        PostgreSQL an export's transaction is READ COMMITTED (its sequence row is locked
        with FOR UPDATE), where each statement sees what other sequences' exports
        committed since the one before: its own snapshot then (it has recorded nothing
        yet when it reads)."""
        if conn is not None and (conn.dialect.name != "postgresql" or conn.get_execution_options()
                                 .get("isolation_level") == "REPEATABLE READ"):
            yield conn
            return
        with self.engine.connect() as own:
            if own.dialect.name == "postgresql":
                own.execution_options(isolation_level="REPEATABLE READ")
            own.begin()
            try:
                if own.dialect.name == "postgresql":
                    own.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield own
            finally:
                own.rollback()

    @property
    def db_option(self) -> str:
        """`` --db URL`` for a command a report says to run on this store, when it was
        named by --db or PESGEN_DB, its password masked: a report is pasted into tickets;
        "" for one the next command finds again without (the configuration file's, the
        default). The rule of every suggested command (the CLI's --db parameter holds
        --db, else PESGEN_DB: ``db_option`` of it names the same): pasted into a ticket, a
        command is run by someone else, in another shell, where PESGEN_DB names another
        store or none (the default store then, answering from it)."""
        return db_option(self.url if self.chosen_by in ("--db", "PESGEN_DB") else None)

    # -------------------------------------------------------------- numbering

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE). Commits (``commit``) on normal
        exit unless the caller already did; rolls back on any exception, the commit's
        included (given up: nothing committed)."""
        with self.engine.connect() as conn:
            conn.begin()
            try:
                yield conn
                if conn.in_transaction():
                    self.commit(conn)
            except BaseException:
                if conn.in_transaction():
                    conn.rollback()
                raise

    def commit(self, conn: Connection, stop: Callable[[], bool] | None = None) -> None:
        """Commit ``conn``'s transaction. SQLite: waited for in turns (``_LockWait.commit``:
        Ctrl-C and SIGTERM heard, or ``stop`` asked, between them; StoreLocked past the
        timeout), nothing committed when it is given up; a transaction that wrote nothing
        commits at once."""
        raw = conn.connection.driver_connection
        if conn.dialect.name == "sqlite" and raw is not None and raw.in_transaction:
            self._lock.commit(conn, stop)
        conn.commit()  # SQLAlchemy's end of it (SQLite: nothing left to commit)

    @staticmethod
    def _sequence_is(key: tuple[str, str, int, str], table: sa.Table = sequences) -> Any:
        """The WHERE clause of a numbering sequence's row (``table``: of its moves)."""
        id_coll, cod_bud, exercise, typ_bord = key
        return sa.and_(table.c.id_coll == id_coll, table.c.cod_bud == cod_bud,
                       table.c.exercise == exercise, table.c.typ_bord == typ_bord)

    def _sequence_row(self, conn: Connection, key: tuple[str, str, int, str]) -> Any:
        return self._locked_row(conn, key)[0]

    def _locked_row(self, conn: Connection, key: tuple[str, str, int, str]) -> tuple[Any, bool]:
        """A sequence's row, locked for the rest of the transaction, and whether this
        transaction created it (a row that was there was set or used before)."""
        id_coll, cod_bud, exercise, typ_bord = key
        query = sa.select(sequences).where(self._sequence_is(key))
        if conn.dialect.name == "postgresql":
            first = self._first(conn, key)

            def take() -> tuple[Any, bool]:
                # the INSERT waits too, for a transaction that inserted the row and is
                # still open (another export opening the sequence)
                made = conn.execute(sa.text(
                    "INSERT INTO sequences (id_coll, cod_bud, exercise, typ_bord, "
                    "next_number, start_number) VALUES (:a, :b, :c, :d, :n, :n) "
                    "ON CONFLICT DO NOTHING"),
                    {"a": id_coll, "b": cod_bud, "c": exercise, "d": typ_bord, "n": first})
                return conn.execute(query.with_for_update()).one(), made.rowcount == 1

            def free() -> tuple[Any, bool] | None:
                row = conn.execute(query.with_for_update(skip_locked=True)).one_or_none()
                return None if row is None else (row, False)
            return self._waited_row(conn, key, take, free)
        row = conn.execute(query).one_or_none()
        if row is not None:
            return row, False
        first = self._first(conn, key)
        conn.execute(sequences.insert().values(id_coll=id_coll, cod_bud=cod_bud,
                                               exercise=exercise, typ_bord=typ_bord,
                                               next_number=first, start_number=first))
        return conn.execute(query).one(), True

    def _waited_row(self, conn: Connection, key: tuple[str, str, int, str],
                    take: Callable[[], _Taken], free: Callable[[], _Taken | None]) -> _Taken:
        """``take``, the statements locking ``key``'s sequence row: on PostgreSQL
        ``free`` first (the row locked if no other transaction holds it, SKIP LOCKED:
        None otherwise, or when it is not there), else ``take`` waited for as a SQLite
        store's lock is (``_LockWait.row``); on SQLite ``take`` at once (the transaction
        holds the store's write lock)."""
        if conn.dialect.name != "postgresql":
            return take()
        got = free()
        if got is not None:
            return got
        return self._lock.row(conn, take, lambda: self._pg_holder(conn, key))

    def _pg_holder(self, conn: Connection, key: tuple[str, str, int, str]) -> str | None:
        """What holds a sequence's row on PostgreSQL, said to an export waiting for it:
        the transaction that locked or updated it (the row's xmax, whose lock that
        transaction holds) and its session; a row not visible yet (another transaction
        inserted it: an export opening the sequence) is held by a session that wrote in
        the table, told when it is the only one. None when it cannot be told (several
        such sessions; a session of another role, whose details the server hides)."""
        session = ("SELECT a.pid, a.application_name, host(a.client_addr) AS host, "
                   "extract(epoch FROM now() - a.xact_start) AS open_for "
                   "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                   "WHERE l.granted AND a.pid <> pg_backend_pid() AND ")
        try:
            with conn.begin_nested():  # a question of the server's views, not a refusal
                xmax = conn.execute(sa.text(
                    "SELECT xmax::text FROM sequences WHERE id_coll = :a AND cod_bud = :b AND "
                    "exercise = :c AND typ_bord = :d"),
                    {"a": key[0], "b": key[1], "c": key[2], "d": key[3]}).first()
                if xmax is not None:
                    found = conn.execute(sa.text(
                        session + "l.locktype = 'transactionid' AND l.transactionid::text = :x"),
                        {"x": xmax[0]}).first()
                    if found is None:
                        # a row locked then updated in one transaction, or locked in a
                        # savepoint (_LockWait.row's), has a MultiXact for xmax: its
                        # members (an xmax that is none: an error, caught below)
                        found = conn.execute(sa.text(
                            session + "l.locktype = 'transactionid' AND "
                            "l.transactionid::text IN (SELECT m.xid::text FROM "
                            "pg_get_multixact_members(CAST(:x AS xid)) m)"),
                            {"x": xmax[0]}).first()
                else:  # not visible: inserted by a transaction still open
                    writing = conn.execute(sa.text(
                        session + "l.relation = to_regclass('sequences') "
                        "AND l.mode = 'RowExclusiveLock'")).all()
                    found = writing[0] if len(writing) == 1 else None
        except sa.exc.DBAPIError:
            return None
        if found is None or found.open_for is None:
            return None
        where = f" on {found.host}" if found.host else ""
        since = f"its transaction open for {float(found.open_for):.0f} s"
        export = _EXPORT_SESSION.fullmatch(found.application_name or "")
        if export is None:
            return (f"another session holds {self.sequence_label(key)} (PostgreSQL "
                    f"process {found.pid}{where}, {since}: a pesgen command, or another "
                    "program)")
        return (f"another pesgen export holds {self.sequence_label(key)} while it renders, "
                f"validates and records its files: process {export[2]}{where}, run "
                f"{export[1]} once recorded, {since}")

    @staticmethod
    def name_export(conn: Connection, run_id: str) -> None:
        """Name the export's PostgreSQL session for its transaction (``_pg_holder``: what an
        export waiting for its sequence says). Nothing on SQLite, which cannot tell."""
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT set_config('application_name', :n, true)"),
                         {"n": f"pesgen export {run_id} pid {os.getpid()}"})

    @staticmethod
    def _first(conn: Connection, key: tuple[str, str, int, str]) -> int:
        """The first number of a sequence that has no row yet: 1; for the titre numbers
        (PIECE_SEQUENCE), the one after the largest IdPce of the titres runs (a TypBord
        code other than ORMC's 06) of its SIRET, budget and exercise recorded before
        pesgen numbered titres over the exercise (each bordereau's from 1), so that none
        is given again."""
        if key[3] != PIECE_SEQUENCE:
            return _FIRST_NUMBER
        top = conn.execute(
            sa.select(sa.func.max(run_invoices.c.id_pce))
            .select_from(run_invoices.join(runs, runs.c.id == run_invoices.c.run_id))
            .where(runs.c.id_coll == key[0], runs.c.cod_bud == key[1],
                   runs.c.exercise == key[2], runs.c.typ_bord != "06",
                   sa.func.length(runs.c.typ_bord) == 2)).scalar()
        return _FIRST_NUMBER if top is None else int(top) + 1

    def peek_next(self, conn: Connection, key: tuple[str, str, int, str]) -> int:
        """The next IdBord of a sequence, locked for the rest of the transaction."""
        return int(self._sequence_row(conn, key).next_number)

    @classmethod
    def recorded_next(cls, conn: Connection, key: tuple[str, str, int, str]) -> int | None:
        """The next IdBord a sequence's row holds, read without locking nor creating it;
        None when the sequence has no row yet (no ``numbering set-start``, no recorded
        run: a refused or dry run leaves none)."""
        found = conn.execute(sa.select(sequences.c.next_number).where(
            cls._sequence_is(key))).scalar()
        return None if found is None else int(found)

    @classmethod
    def next_number(cls, conn: Connection, key: tuple[str, str, int, str]) -> int:
        """The next IdBord of a sequence, read without locking nor creating its row (a
        dry run): what ``peek_next`` would give now."""
        found = cls.recorded_next(conn, key)
        return cls._first(conn, key) if found is None else found

    @staticmethod
    def check_start(start: int, pieces: bool = False, which: str = "starting") -> None:
        """Refuse a starting number (``which``: the ``next`` of a move) no IdBord
        (``pieces``: no IdPce) can be (before a store is opened)."""
        what, top = ("titre number (IdPce)", ID_PCE_MAX) if pieces else ("number", ID_BORD_MAX)
        if not 1 <= start <= top:
            raise UsageError(f"the {which} {what} must be between 1 and {top}")

    @staticmethod
    def sequence_label(key: tuple[str, str, int, str]) -> str:
        """``the numbering of SIRET budget B exercise E TypBord T`` (or ``the titre
        numbers (IdPce) of …`` for the sequence of the titre numbers), for messages."""
        if key[3] == PIECE_SEQUENCE:
            return f"the titre numbers (IdPce) of {key[0]} budget {key[1]} exercise {key[2]}"
        return f"the numbering of {key[0]} budget {key[1]} exercise {key[2]} TypBord {key[3]}"

    def set_start(self, key: tuple[str, str, int, str], start: int | None,
                  pieces: tuple[tuple[str, str, int, str], int] | None = None) -> None:
        """Start a sequence at ``start`` (None: leave it; and ``pieces``: (its key,
        start), the titre numbers' sequence), once: only a sequence no export used and no
        start set, an explicit start of 1 included (its row is there). Both or neither."""
        wanted = ([] if start is None else [(key, start)]) + ([pieces] if pieces else [])
        for k, n in wanted:
            self.check_start(n, pieces=k[3] == PIECE_SEQUENCE)
        with self.transaction() as conn:
            for k, n in wanted:  # IdBord's first, the order exports lock them in
                row, made = self._locked_row(conn, k)
                used = conn.execute(sa.select(sa.func.count()).select_from(runs).where(
                    runs.c.id_coll == k[0], runs.c.cod_bud == k[1], runs.c.exercise == k[2],
                    runs.c.typ_bord == k[3])).scalar() if k[3] != PIECE_SEQUENCE else 0
                if k[3] == PIECE_SEQUENCE and made and n < row.next_number:
                    raise StateError(
                        f"{self.sequence_label(k)}: earlier runs of this store hold titre "
                        f"numbers up to {row.next_number - 1}; a start must be "
                        f"{row.next_number} or more")
                if used or not made:
                    move = "--to-titre T" if k[3] == PIECE_SEQUENCE else "--to N"
                    raise StateError(
                        f"{self.sequence_label(k)} has already started at "
                        f"{row.start_number} (next {row.next_number}); a start can be set "
                        "once, before any export: a started sequence is moved past the "
                        f"numbers issued outside pesgen with pesgen numbering move {move} "
                        "--reason TEXT (docs/state.md, \"Moving a started sequence\")")
                conn.execute(sequences.update().where(sequences.c.id == row.id).values(
                    next_number=n, start_number=n))

    def _given_up_to(self, conn: Connection, key: tuple[str, str, int, str]) -> int:
        """The largest number a recorded run of this store took from the sequence, its
        runs cancelled since included (their numbers are never given again); 0: none.
        For the titre numbers, any titres run's IdPce of the SIRET, budget and exercise
        (as ``_first``)."""
        if key[3] == PIECE_SEQUENCE:
            return self._first(conn, key) - 1
        top = conn.execute(sa.select(sa.func.max(runs.c.first_number + runs.c.bordereaux - 1))
                           .where(runs.c.id_coll == key[0], runs.c.cod_bud == key[1],
                                  runs.c.exercise == key[2], runs.c.typ_bord == key[3])
                           ).scalar()
        return max(int(top or 0), 0)

    def move(self, wanted: list[tuple[tuple[str, str, int, str], int]],
             reason: str) -> list[SequenceMove]:
        """Move started sequences' next numbers to the numbers ``wanted`` gives ((key,
        next)), recorded with ``reason``: support's answer to a numbering that went on
        outside pesgen (the collectivity's finance package issued the rôles or titres
        pesgen would give next). Only a sequence that has a row (started by a run or
        ``set_start``); never to a number a recorded run took (cancelled runs' included),
        nor to the number it is at. All or none, in one transaction that waits for an
        export of the sequence under way."""
        if not reason.strip():
            raise UsageError("give the reason for the move (--reason): it is recorded")
        for k, n in wanted:
            self.check_start(n, pieces=k[3] == PIECE_SEQUENCE, which="next")
        found: list[tuple[tuple[str, str, int, str], int, Any]] = []
        with self.transaction() as conn:
            for k, n in wanted:  # IdBord's first, the order exports lock them in
                query = sa.select(sequences).where(self._sequence_is(k))

                def locked(q: sa.Select[Any] = query, skip: bool = False) -> Any:
                    return conn.execute(q.with_for_update(skip_locked=skip)).one_or_none()
                # (not there: None both ways, refused below)
                row = self._waited_row(conn, k, locked, partial(locked, skip=True))
                what = "titre number" if k[3] == PIECE_SEQUENCE else "IdBord"
                if row is None:
                    raise StateError(
                        f"{self.sequence_label(k)} has not started (no run, no set-start "
                        "in this store): set its first number with `pesgen numbering "
                        "set-start`; nothing moved")
                given = self._given_up_to(conn, k)
                if n <= given:
                    raise StateError(
                        f"{self.sequence_label(k)}: runs recorded in this store took "
                        f"{what}s up to {given} (cancelled ones included: Hélios may know "
                        f"them), and a number is never given twice; the next {what} can "
                        f"be {given + 1} or more; nothing moved")
                if n == row.next_number:
                    raise StateError(f"{self.sequence_label(k)}: the next {what} is "
                                     f"{n} already; nothing moved")
                found.append((k, n, row))
            # the moves of one command (--to and --to-titre) are one change: one time,
            # read once every sequence is locked (after any export it waited for)
            now = utc_now()
            for k, n, row in found:
                conn.execute(sequences.update().where(sequences.c.id == row.id).values(
                    next_number=n))
                conn.execute(sequence_moves.insert().values(
                    id_coll=k[0], cod_bud=k[1], exercise=k[2], typ_bord=k[3],
                    from_number=row.next_number, to_number=n, moved_at=now,
                    reason=reason.strip()))
        return [SequenceMove(k, row.next_number, n, now, reason.strip())
                for k, n, row in found]

    def unsent(self, conn: Connection | None, key: tuple[str, str, int, str]
               ) -> list[Unsent]:
        """The IdBords of this numbering (a PES one: a finance package numbers what it
        sends, and the titre numbers are no bordereau's) cancelled, whole runs or their
        bordereaux, with no acknowledgement of the trésorerie recorded (any, accepted or
        rejected, superseded or not: it received the file): numbers it has not received
        unless their file was sent, by IdBord. A reinstated bordereau is active again:
        not listed. One statement, whatever the runs: the cancelled runs, the cancelled
        bordereaux and the acknowledgements of either, of this numbering (its runs found
        by ``ix_runs_sequence``); then, when there are some, which number follows each
        (``_followed``)."""
        if key[3] == PIECE_SEQUENCE or not pes_typ_bord(key[3]):
            return []
        cb, ab = cancelled_bordereaux, acquit_bordereaux
        of_key = sa.and_(runs.c.id_coll == key[0], runs.c.cod_bud == key[1],
                         runs.c.exercise == key[2], runs.c.typ_bord == key[3])
        none_int, none_text = sa.null().cast(sa.Integer), sa.null().cast(sa.Text)
        whole = sa.select(sa.literal("run").label("kind"), runs.c.id.label("run_id"),
                          runs.c.first_number, runs.c.bordereaux,
                          none_int.label("id_bord"), runs.c.cancelled_at.label("at"),
                          runs.c.cancel_reason.label("reason")
                          ).where(of_key, runs.c.status == "cancelled")
        parts = sa.select(sa.literal("part"), cb.c.run_id, none_int, none_int,
                          cb.c.id_bord, cb.c.cancelled_at, cb.c.reason
                          ).join(runs, runs.c.id == cb.c.run_id).where(of_key)
        # the acknowledgements of the cancelled runs, then of the cancelled bordereaux (a
        # bordereau may come twice: the same answer), each from its own few rows: one
        # join of both read every acknowledgement of the store on PostgreSQL (a hash
        # join, 20 ms at 50 000 runs)
        ack = (sa.literal("ack"), ab.c.run_id, none_int, none_int, ab.c.id_bord, none_text,
               none_text)
        acked_runs = sa.select(*ack).join(runs, runs.c.id == ab.c.run_id).where(
            of_key, runs.c.status == "cancelled")
        acked_parts = sa.select(*ack).select_from(ab.join(cb, sa.and_(
            cb.c.run_id == ab.c.run_id, cb.c.id_bord == ab.c.id_bord)).join(
                runs, runs.c.id == ab.c.run_id)).where(of_key)
        query = sa.union_all(whole, parts, acked_runs, acked_parts)
        with (contextlib.nullcontext(conn) if conn is not None
              else self.engine.connect()) as c:
            rows = c.execute(query).all()
            found = self._unacknowledged(rows)
            return self._followed(c, key, [found[n] for n in sorted(found)]) if found else []

    @staticmethod
    def _unacknowledged(rows: Sequence[Any]) -> dict[int, Unsent]:
        """``unsent``'s rows (the cancelled runs, bordereaux and their acknowledgements)
        made the cancelled IdBords with no acknowledgement, by IdBord."""
        found: dict[int, Unsent] = {}
        for r in rows:  # a bordereau's own cancellation over its run's
            if r.kind == "run":
                for n in range(int(r.first_number), int(r.first_number) + int(r.bordereaux)):
                    found.setdefault(n, Unsent(n, r.run_id, r.at, r.reason, True))
        for r in rows:
            if r.kind == "part":
                found[int(r.id_bord)] = Unsent(int(r.id_bord), r.run_id, r.at, r.reason,
                                               False)
        for r in rows:
            if r.kind == "ack" and (u := found.get(int(r.id_bord))) and u.run_id == r.run_id:
                del found[int(r.id_bord)]
        return found

    def _followed(self, conn: Connection, key: tuple[str, str, int, str],
                  unsent: list[Unsent]) -> list[Unsent]:
        """``unsent`` (by IdBord), each with the number its sequence takes after it: the
        first above it that is not unsent, pesgen's (a run of it took it, or it is the
        sequence's next number, the next export's) unless a move forward skipped it (in
        its range from..to-1, no run took it since, and the sequence is past it): then
        the numbers issued outside pesgen follow it, and that move is said. The moves of
        the sequence are read (one statement; rarely any), and only when the sequence
        has moved forward, its next number and, for each such number, whether a run
        took it."""
        numbers = {u.id_bord for u in unsent}
        forward = [SequenceMove(key, m.from_number, m.to_number, m.moved_at, m.reason)
                   for m in conn.execute(sa.select(sequence_moves).where(
                       self._sequence_is(key, sequence_moves),
                       sequence_moves.c.to_number > sequence_moves.c.from_number)
                       .order_by(sequence_moves.c.id.desc()))]
        next_number = None
        if forward:
            next_number = conn.execute(sa.select(sequences.c.next_number).where(
                self._sequence_is(key))).scalar()
        moved: dict[int, SequenceMove | None] = {}
        found = []
        for u in unsent:
            after = u.id_bord + 1
            while after in numbers:
                after += 1
            if after not in moved:
                moved[after] = None
                skipped = next((m for m in forward if m.from_number <= after < m.to_number),
                               None)
                if skipped is not None and next_number is not None and after < next_number:
                    taken = conn.execute(sa.select(sa.func.count()).select_from(runs).where(
                        runs.c.id_coll == key[0], runs.c.cod_bud == key[1],
                        runs.c.exercise == key[2], runs.c.typ_bord == key[3],
                        runs.c.first_number <= after,
                        runs.c.first_number + runs.c.bordereaux > after)).scalar()
                    moved[after] = None if taken else skipped
            found.append(replace(u, followed_by=after, moved_past=moved[after]))
        return found

    def numbering_gap(self, conn: Connection | None, key: tuple[str, str, int, str],
                      first: int) -> list[Unsent]:
        """The unsent IdBords (``unsent``) a run taking IdBord ``first`` follows: those up
        to the largest number a run of this numbering took, one after another, when it is
        one and ``first`` the number after it (a sequence moved past numbers issued
        outside pesgen follows those); a number between them sent, or acknowledged, ends
        them; [] otherwise."""
        with (contextlib.nullcontext(conn) if conn is not None
              else self.engine.connect()) as c:
            top = self._given_up_to(c, key)
            if not top or first != top + 1:
                return []
            unsent = self.unsent(c, key)
        gap: list[Unsent] = []
        for u in reversed(unsent):
            if u.id_bord != top - len(gap) or u.moved_past is not None:
                break
            gap.append(u)
        return gap[::-1]

    def sequence(self, key: tuple[str, str, int, str]) -> SequenceState | None:
        """What the store holds of a sequence: its start, next number, the largest number
        its runs took, and its moves (oldest first); None when it has not started."""
        found = self.sequences(key)
        return found[0] if found else None

    def sequences(self, key: tuple[str, str, int, str] | None = None) -> list[SequenceState]:
        """``sequence`` of every sequence the store holds (``key``: of that one), by
        SIRET, budget, exercise and TypBord (the titre numbers after a budget's
        bordereaux)."""
        with self.reading() as conn:
            query = sa.select(sequences).order_by(
                sequences.c.id_coll, sequences.c.cod_bud, sequences.c.exercise,
                sequences.c.typ_bord == PIECE_SEQUENCE, sequences.c.typ_bord)
            moved = sa.select(sequence_moves).order_by(sequence_moves.c.id)
            if key is not None:
                query = query.where(self._sequence_is(key))
                moved = moved.where(self._sequence_is(key, sequence_moves))
            moves: dict[tuple[str, str, int, str], list[SequenceMove]] = {}
            for m in conn.execute(moved):
                k = (m.id_coll, m.cod_bud, int(m.exercise), m.typ_bord)
                moves.setdefault(k, []).append(SequenceMove(k, m.from_number, m.to_number,
                                                            m.moved_at, m.reason))
            found = []
            for row in conn.execute(query).all():
                k = (row.id_coll, row.cod_bud, int(row.exercise), row.typ_bord)
                found.append(SequenceState(k, int(row.start_number), int(row.next_number),
                                           self._given_up_to(conn, k), moves.get(k, []),
                                           self.unsent(conn, k)))
            return found

    # -------------------------------------------------------------- duplicates

    def holders(self, conn: Connection | None, id_coll: str,
                invoices: Iterable[str]) -> dict[str, tuple[str, str, int, str]]:
        """Active runs already holding some of these invoices, compared as
        keys.invoice_key gives them (case and surrounding spaces do not count):
        invoice -> (the invoice as that run wrote it, run, IdBord, file). ``invoices`` is
        read 500 at a time (a run's iterator is never made a list of its 100 000): only
        those held are kept."""
        return self._held(conn, id_coll, run_invoices.c.invoice_key, invoices, invoice_key)

    def debt_holders(self, conn: Connection | None, id_coll: str,
                     debts: Iterable[str]) -> dict[str, tuple[str, str, int, str]]:
        """Active titles already holding some of these NumDettes (read 500 at a time):
        NumDette -> (invoice, run, IdBord, file). Rows recorded before migration 3 have
        no NumDette and hold none."""
        return self._held(conn, id_coll, run_invoices.c.debt_number, debts)

    def active_counts(self, conn: Connection | None,
                      run_ids: Collection[str]) -> dict[tuple[str, int], int]:
        """How many active titles each bordereau of these runs holds: (run, IdBord) ->
        count, in run and IdBord order (a bordereau without one is absent: its keys are
        the IdBords of each run that still hold active titles)."""
        if not run_ids:
            return {}
        query = (sa.select(run_invoices.c.run_id, run_invoices.c.id_bord, sa.func.count())
                 .where(run_invoices.c.run_id.in_(sorted(run_ids)), run_invoices.c.active)
                 .group_by(run_invoices.c.run_id, run_invoices.c.id_bord)
                 .order_by(run_invoices.c.run_id, run_invoices.c.id_bord))
        with (contextlib.nullcontext(conn) if conn is not None
              else self.engine.connect()) as c:
            return {(run_id, id_bord): count for run_id, id_bord, count in c.execute(query)}

    def run_scopes(self, conn: Connection | None, run_ids: Collection[str]
                   ) -> dict[str, tuple[str, int]]:
        """The budget and exercise of these runs: run -> (CodBud, exercise)."""
        return self._run_columns(conn, run_ids, runs.c.cod_bud, runs.c.exercise)

    def _run_columns(self, conn: Connection | None, run_ids: Collection[str],
                     *columns: sa.Column[Any]) -> dict[str, tuple[Any, ...]]:
        """Some columns of these runs' records: run -> (their values, in order)."""
        if not run_ids:
            return {}
        with (contextlib.nullcontext(conn) if conn is not None
              else self.engine.connect()) as c:
            return {run_id: tuple(values) for run_id, *values in c.execute(
                sa.select(runs.c.id, *columns).where(runs.c.id.in_(sorted(run_ids))))}

    def held_in_scope(self, conn: Connection | None, id_coll: str, cod_bud: str,
                      exercise: int, fmt: str) -> dict[str, Held]:
        """Every invoice an active run of this budget, exercise and format holds, by its
        key (keys.invoice_key), with the run, IdBord, the bordereau's first file and the
        title's amount: what an export with policies.already_exported: leave_out leaves
        out of its input. Read once before the input; one row a title of the scope."""
        query = (sa.select(run_invoices.c.invoice_key, run_invoices.c.invoice,
                           run_invoices.c.run_id, run_invoices.c.id_bord,
                           run_invoices.c.amount)
                 .join(runs, runs.c.id == run_invoices.c.run_id)
                 .where(run_invoices.c.id_coll == id_coll, run_invoices.c.active,
                        run_invoices.c.invoice_key.is_not(None), runs.c.cod_bud == cod_bud,
                        runs.c.exercise == exercise, runs.c.format == fmt))
        out: dict[str, Held] = {}
        with (contextlib.nullcontext(conn) if conn is not None
              else self.engine.connect()) as c:
            rows = c.execute(query).all()
            # each bordereau's first file, as the duplicate guard names it
            names: dict[tuple[str, int], str] = {}
            for run_id, placed in self.recorded_files(c, {row[2] for row in rows}).items():
                for f in placed["files"]:
                    if f["id_bord"] is not None:
                        names.setdefault((run_id, int(f["id_bord"])), f["name"])
        # one object per run id and per amount, not one per title (a school bills a few
        # prices): the dictionary of 100 000 titles held 42 MiB and took 2.3 s to read with
        # one of each per title, 24 MiB and 1.2 s so (docs/state.md)
        run_ids: dict[str, str] = {}
        amounts: dict[str, Decimal] = {}
        for key, inv, run_id, id_bord, amount in rows:
            run_id = run_ids.setdefault(run_id, run_id)
            value = amounts.get(amount)
            if value is None:
                value = amounts[amount] = Decimal(amount)
            out[key] = Held(inv, run_id, int(id_bord), names.get((run_id, int(id_bord)), "?"),
                            value)
        return out

    def active_amounts(self, conn: Connection, run_ids: Collection[str],
                       invoices: Collection[str]) -> dict[tuple[str, str], str]:
        """The amounts these runs recorded for these invoices (as they wrote them), still
        active: (run, invoice) -> amount."""
        return {title: amount for title, (amount, _id_pce)
                in self.active_pieces(conn, run_ids, invoices).items()}

    def active_pieces(self, conn: Connection, run_ids: Collection[str],
                      invoices: Collection[str]) -> dict[tuple[str, str], tuple[str, int]]:
        """The titles these runs recorded for these invoices (as they wrote them), still
        active: (run, invoice) -> (amount, IdPce)."""
        out: dict[tuple[str, str], tuple[str, int]] = {}
        names = sorted(invoices)
        for part in chunks(names):
            for run_id, invoice, amount, id_pce in conn.execute(
                    sa.select(run_invoices.c.run_id, run_invoices.c.invoice,
                              run_invoices.c.amount, run_invoices.c.id_pce)
                    .where(run_invoices.c.run_id.in_(sorted(run_ids)), run_invoices.c.active,
                           run_invoices.c.invoice.in_(part))):
                out[run_id, invoice] = (amount, int(id_pce))
        return out

    def pes_runs(self, conn: Connection | None, run_ids: Collection[str]) -> set[str]:
        """Those of these runs that wrote PES files (a TypBord, not a finance package's
        format name): the trésorerie answers them with an acknowledgement."""
        return {run for run, (typ_bord,) in
                self._run_columns(conn, run_ids, runs.c.typ_bord).items()
                if pes_typ_bord(typ_bord)}

    def run_formats(self, conn: Connection | None, run_ids: Collection[str]
                    ) -> dict[str, str]:
        """The format these runs were exported with: run -> format name."""
        return {run: fmt for run, (fmt,) in
                self._run_columns(conn, run_ids, runs.c.format).items()}

    def run_inputs(self, conn: Connection | None, run_ids: Collection[str]
                   ) -> dict[str, tuple[str, str]]:
        """The input these runs recorded, and when: run -> (input's sha256, created_at)."""
        return self._run_columns(conn, run_ids, runs.c.input_sha256, runs.c.created_at)

    def recorded_files(self, conn: Connection | None, run_ids: Collection[str]
                       ) -> dict[str, dict[str, Any]]:
        """Where these runs put their files: run -> {"out_dir", "files": [{"name",
        "id_bord"}]} (what ``get_run`` gives of them, without the rest of the run)."""
        out: dict[str, dict[str, Any]] = {}
        if not run_ids:
            return out
        with (contextlib.nullcontext(conn) if conn is not None
              else self.engine.connect()) as c:
            for run_id, out_dir in c.execute(sa.select(runs.c.id, runs.c.out_dir)
                                             .where(runs.c.id.in_(sorted(run_ids)))):
                out[run_id] = {"out_dir": out_dir, "files": []}
            for run_id, name, id_bord in c.execute(
                    sa.select(run_files.c.run_id, run_files.c.name, run_files.c.id_bord)
                    .where(run_files.c.run_id.in_(sorted(run_ids))).order_by(run_files.c.id)):
                out[run_id]["files"].append({"name": name, "id_bord": id_bord})
        return out

    def paid_online(self, id_coll: str, invoices: Iterable[str],
                    conn: Connection | None = None) -> dict[str, dict[str, Any]]:
        """The invoices among ``invoices`` (compared like the guard; read 500 at a time,
        only those found kept) that PayFiP shows paid by a title no longer active (its
        run or bordereau cancelled): invoice as given -> amount paid (cents), when,
        operation, and the run and IdBord of the title it paid. The payments are looked
        up by their invoice's key in ``ix_payfip_payment_key`` (migration 17), then
        their operation and title by index; those with no key recorded (none but a row
        written otherwise than by ``ledger.record_operation``) in one query more, kept
        by their title's key. Before, SQLite read every paid payment of the
        collectivity for each chunk of numbers: the cancelled titles' keys have no
        index (docs/performance.md, "Store.paid_online by key")."""
        from .payfip.tables import operations, paid_title_run, payments

        out: dict[str, dict[str, Any]] = {}
        query = (sa.select(run_invoices.c.invoice_key, payments.c.paid_cents,
                           payments.c.paid_at, payments.c.id_op, run_invoices.c.run_id,
                           run_invoices.c.id_bord)
                 .join(operations, operations.c.id_op == payments.c.id_op)
                 .join(run_invoices, sa.and_(run_invoices.c.run_id == paid_title_run(
                                                 operations.c.run_id),
                                             run_invoices.c.invoice == operations.c.invoice))
                 .where(payments.c.id_coll == id_coll, payments.c.status == "paid",
                        sa.not_(run_invoices.c.active)))
        # two statements, each one search of the index (an OR of both made SQLite read
        # every payment of the collectivity: ledger.paid_by_key); the keys a parameter,
        # not in the statement (see _held)
        by_key = query.where(payments.c.invoice_key.in_(sa.bindparam("keys", expanding=True)))
        with (contextlib.nullcontext(conn) if conn is not None
              else self.engine.connect()) as c:
            unkeyed = c.execute(query.where(payments.c.invoice_key.is_(None))).all()
            for chunk in _batches(invoices, _LOOKED_UP):
                keys = {invoice_key(inv): inv for inv in chunk}
                rows = [*c.execute(by_key, {"keys": list(keys)}),
                        *(row for row in unkeyed if row[0] in keys)]
                for key, cents, at, id_op, run_id, id_bord in rows:
                    if key in keys:  # the title's key, as the guard's (the payment's alike)
                        out[keys[key]] = {"paid_cents": cents, "paid_at": at, "id_op": id_op,
                                          "run_id": run_id, "id_bord": id_bord}
        return out

    def unchecked_debts(self, id_coll: str, conn: Connection | None = None) -> int:
        """Active ORMC invoices of ``id_coll`` recorded before migration 3 kept
        NumDettes (runs created before it was applied, to the second): their NumDettes
        cannot be checked."""
        if conn is None:
            with self.engine.connect() as own:
                return self.unchecked_debts(id_coll, own)
        since = conn.execute(sa.select(schema_table.c.applied_at)
                             .where(schema_table.c.version == 3)).scalar()
        if since is None:
            return 0
        return int(conn.execute(
            sa.select(sa.func.count()).select_from(run_invoices)
            .join(runs, runs.c.id == run_invoices.c.run_id)
            .where(run_invoices.c.id_coll == id_coll, run_invoices.c.active,
                   run_invoices.c.debt_number.is_(None), runs.c.typ_bord == "06",
                   runs.c.created_at <= since))
            .scalar() or 0)

    def _held(self, conn: Connection | None, id_coll: str, column: sa.Column[Any],
              values: Iterable[str], key: Callable[[str], str] | None = None
              ) -> dict[str, tuple[str, str, int, str]]:
        """Active rows of a collectivity whose ``column`` is one of ``values`` (``key``:
        the column holds ``key(value)``), looked up 500 values a query, as they come:
        value -> (invoice, run, IdBord, first file of that bordereau), for those held.
        A value several active rows hold (a store recorded before a uniqueness rule:
        migrations 5 and 6, ``key_shared``) names the earliest recorded run's, as
        migrations 5 and 6 chose the row the unique index backs: by the run's
        ``created_at``, then the rows' order."""
        out: dict[str, tuple[str, str, int, str]] = {}
        chunks = _batches(values, _LOOKED_UP)
        first = next(chunks, None)
        if first is None:
            return out
        recorded = (sa.select(runs.c.created_at).where(runs.c.id == run_invoices.c.run_id)
                    .scalar_subquery())
        # one statement, each chunk's values its parameter: a statement made with the
        # values in it is garbage in reference cycles once run, which kept them (~8 MiB
        # a look-up of 100 000 keys) until Python's next full collection
        query = (sa.select(column, run_invoices.c.invoice, run_invoices.c.run_id,
                           run_invoices.c.id_bord)
                 # IN implies the partial indexes' "IS NOT NULL" (SQLite and PostgreSQL
                 # prove it); stated as well, it made SQLite search the index by the
                 # range of every number not NULL, not value by value
                 .where(run_invoices.c.id_coll == id_coll, run_invoices.c.active,
                        column.in_(sa.bindparam("held", expanding=True)))
                 # without it, which of several holders came last (and was named) was
                 # the database's choice; the rows found sorted: 0.07 s of CPU more for
                 # 100 000 numbers all held, none when none is (docs/performance.md)
                 .order_by(recorded, run_invoices.c.id))
        held: dict[str, tuple[str, str, int]] = {}
        with (contextlib.nullcontext(conn) if conn is not None
              else self.engine.connect()) as c:
            for chunk in itertools.chain([first], chunks):
                wanted = {v: v for v in chunk} if key is None else {key(v): v for v in chunk}
                rows = c.execute(query, {"held": list(wanted)})
                for value, inv, run_id, id_bord in rows:
                    held.setdefault(wanted[value], (inv, run_id, int(id_bord)))
            # each bordereau's first file once, not for each of its titles: a title's own
            # look-up (a subquery of the query above) read all of its run's files, the
            # index being by run alone, 2 000 for a run of 1 000 bordereaux: 0.26 ms a
            # title on PostgreSQL (docs/performance.md, "The duplicate guard's holder")
            files = self._first_files(c, {(r, b) for _inv, r, b in held.values()})
        for value, (inv, run_id, id_bord) in held.items():
            out[value] = (inv, run_id, id_bord, files.get((run_id, id_bord), "?"))
        return out

    @staticmethod
    def _first_files(c: Connection, bordereaux: Collection[tuple[str, int]]
                     ) -> dict[tuple[str, int], str]:
        """(run, IdBord) -> the name of that bordereau's first file (by row), for those
        of ``bordereaux`` that have one; 500 bordereaux a statement, whatever their runs
        (a statement per run made the look-up's queries grow with the runs holding)."""
        out: dict[tuple[str, int], str] = {}
        pairs = sorted(bordereaux)
        query = (sa.select(run_files.c.run_id, run_files.c.id_bord, run_files.c.name)
                 .where(sa.tuple_(run_files.c.run_id, run_files.c.id_bord).in_(
                     sa.bindparam("pairs", expanding=True)))
                 .order_by(run_files.c.id))
        for at in range(0, len(pairs), IN_LIST):
            for run_id, id_bord, name in c.execute(query, {"pairs": pairs[at:at + IN_LIST]}):
                out.setdefault((run_id, int(id_bord)), name)
        return out

    # -------------------------------------------------------------- recording

    def record_run(self, conn: Connection, values: dict[str, Any],
                   files: list[dict[str, Any]], invoices: SlicedRows,
                   key: tuple[str, str, int, str], bordereaux: int,
                   pieces: tuple[tuple[str, str, int, str], int] | None = None) -> None:
        """Record a run, its files and invoices, and advance its sequence (and
        ``pieces``: (key, titles), the sequence of its titre numbers). A row a unique
        index refuses (uq_active_invoice, uq_active_debt_number: an export of another
        sequence recorded it since the check) rolls back and raises RecordConflict."""
        try:
            conn.execute(runs.insert().values(**values))
            if files:
                conn.execute(run_files.insert(), [{"run_id": values["id"], **f} for f in files])
            if conn.dialect.name == "postgresql":
                _copy_titles(conn, values["id"], key[0], invoices)
            else:
                for part in chunks(invoices, 5000):
                    conn.execute(run_invoices.insert(), [
                        {"run_id": values["id"], "id_coll": key[0], "active": True,
                         "invoice_key": invoice_key(inv["invoice"]), **inv} for inv in part])
        except sa.exc.IntegrityError as exc:
            conn.rollback()  # PostgreSQL: the transaction is unusable after the error
            raise RecordConflict(f"{shown_url(self.url)}: the store refused to record the "
                                 f"run: {exc.orig}; nothing recorded") from None
        for k, used in [(key, bordereaux), *([pieces] if pieces else [])]:
            row = self._sequence_row(conn, k)
            conn.execute(sequences.update().where(sequences.c.id == row.id).values(
                next_number=row.next_number + used))
        _analyze_titles(conn)

    # -------------------------------------------------------------- queries

    def list_runs(self, mapping: str | None = None, run_date: date | None = None,
                  since: date | None = None, until: date | None = None) -> list[RunRecord]:
        """Every run, oldest first; with ``mapping``, the runs of that mapping file: its
        absolute path (what runs record), or the path as typed (runs recorded before
        pesgen kept the absolute one); with ``run_date``, those whose files bear that
        date (``export --date``); with ``since`` and ``until``, those recorded on or
        after, on or before those days (UTC). Only the columns a record shows are read:
        not a run's input, bundle, mapping or policies (tens of MiB for a run of 100 000
        titles), which listing ten such runs held in memory at once."""
        query = (sa.select(*(runs.c[name] for name in _RECORD_COLUMNS))
                 .order_by(runs.c.created_at, runs.c.first_number))
        if mapping:
            query = query.where(runs.c.mapping_path.in_(
                {mapping, str(Path(mapping).expanduser().resolve())}))
        if run_date is not None:
            query = query.where(runs.c.run_date == run_date.isoformat())
        # created_at is ISO 8601 UTC (2026-11-23T10:00:00Z): its day compares as text
        if since is not None:
            query = query.where(runs.c.created_at >= since.isoformat())
        if until is not None:
            query = query.where(runs.c.created_at < (until + timedelta(days=1)).isoformat())
        with self.engine.connect() as conn:
            parts: dict[str, list[int]] = {}
            for run_id, id_bord in conn.execute(
                    sa.select(cancelled_bordereaux.c.run_id, cancelled_bordereaux.c.id_bord)
                    .order_by(cancelled_bordereaux.c.id_bord)):
                parts.setdefault(run_id, []).append(id_bord)
            figures = _cancelled_figures(conn)
            return [_record(r, parts.get(r.id, ()), figures.get(r.id))
                    for r in conn.execute(query)]

    def run_dates_near(self, day: date) -> tuple[str | None, str | None]:
        """The run dates (``export --date``) of this store's runs nearest ``day``: the
        latest before it and the earliest after it (None: none), for a ``runs list
        --run-date`` that matches no run."""
        text = day.isoformat()
        with self.engine.connect() as conn:
            before = conn.execute(sa.select(sa.func.max(runs.c.run_date))
                                  .where(runs.c.run_date < text)).scalar()
            after = conn.execute(sa.select(sa.func.min(runs.c.run_date))
                                 .where(runs.c.run_date > text)).scalar()
        return before, after

    def mapping_paths(self, limit: int = 5) -> tuple[int, list[str]]:
        """How many mapping files this store's runs were made with, and the first
        ``limit`` of their paths as recorded (sorted): for a ``runs list --mapping``
        that matches none (a path typed from another folder)."""
        with self.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count(sa.distinct(runs.c.mapping_path))
                                           )).scalar() or 0
            paths = [p for (p,) in conn.execute(
                sa.select(runs.c.mapping_path).distinct().order_by(runs.c.mapping_path)
                .limit(limit))]
        return int(count), paths

    def _run_record(self, full: str) -> RunRecord:
        """The record of the run ``full`` (its whole id) as ``list_runs`` gives it, read
        alone."""
        with self.engine.connect() as conn:
            parts = list(conn.execute(
                sa.select(cancelled_bordereaux.c.id_bord)
                .where(cancelled_bordereaux.c.run_id == full)
                .order_by(cancelled_bordereaux.c.id_bord)).scalars())
            row = conn.execute(sa.select(*(runs.c[name] for name in _RECORD_COLUMNS))
                               .where(runs.c.id == full)).one()
            return _record(row, parts, _cancelled_figures(conn, full).get(full))

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            if not _RUN_PREFIX.fullmatch(run_id):
                raise StateError(f"'{run_id}' is not a run id: give at least its first 4 "
                                 "characters (0-9, a-f, -), as `pesgen runs list` shows them")
            rows = conn.execute(sa.select(runs).where(
                runs.c.id.startswith(run_id, autoescape=True))).all()
            if not rows:
                # the id of a run another store recorded (the collectivity's own store,
                # the default one) reads the same: say which store was read
                where = _sqlite_file(self.url) or shown_url(self.url)
                raise StateError(f"no run {run_id} in the store {where}: pesgen runs list "
                                 "lists its runs (a run another store recorded: give that "
                                 "store with --db or PESGEN_DB)")
            if len(rows) > 1:
                raise StateError(f"run id prefix {run_id} is ambiguous")
            row = rows[0]._mapping
            files = [dict(f._mapping) for f in conn.execute(
                sa.select(run_files).where(run_files.c.run_id == row["id"])
                .order_by(run_files.c.id))]
            count, first_piece = conn.execute(sa.select(
                sa.func.count(), sa.func.min(run_invoices.c.id_pce)).where(
                run_invoices.c.run_id == row["id"])).one()
            parts = {r.id_bord: {"cancelled_at": r.cancelled_at, "reason": r.reason}
                     for r in conn.execute(sa.select(cancelled_bordereaux).where(
                         cancelled_bordereaux.c.run_id == row["id"])
                         .order_by(cancelled_bordereaux.c.id_bord))}
            undone = [{k: r._mapping[k] for k in ("id_bord", "cancelled_at", "cancel_reason",
                                                   "reinstated_at", "reason")}
                      for r in conn.execute(sa.select(reinstatements).where(
                          reinstatements.c.run_id == row["id"]).order_by(reinstatements.c.id))]
        # first_piece: its first title's IdPce, where a format numbering its titres over
        # the exercise (numbering.pieces: per-exercise) started them (regenerate)
        return {**dict(row), "files": files, "invoice_count": count,
                "first_piece": first_piece, "cancelled_bordereaux": parts,
                "reinstatements": undone}

    def run_titles(self, run_id: str) -> Iterator[dict[str, Any]]:
        """A run's titles in bordereau and IdPce order: invoice as written, IdBord, IdPce,
        NumDette (None: a format without one, or recorded before migration 3), amount,
        whether the title is active, its record in the run's input (its position,
        ``$.invoices[7]``; None: recorded before migration 19) and its number of lines
        (``line_count``; None: recorded before migration 21)."""
        full = self.get_run(run_id)["id"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(run_invoices.c.invoice, run_invoices.c.id_bord, run_invoices.c.id_pce,
                          run_invoices.c.debt_number, run_invoices.c.amount,
                          run_invoices.c.active, run_invoices.c.record,
                          run_invoices.c.line_count)
                .where(run_invoices.c.run_id == full)
                .order_by(run_invoices.c.id_bord, run_invoices.c.id_pce))
            for r in rows:
                yield dict(r._mapping)

    def find_left_out(self, invoice: str) -> list[dict[str, Any]]:
        """The runs that left an invoice out (a policy: a zero total…), oldest first,
        compared like the guard (case and surrounding spaces do not count): each with
        the run's id, date and status and the invoice's number as written, input record,
        reason and policy. Such an invoice is in no run's files."""
        key = invoice_key(invoice)
        out = []
        with self.engine.connect() as conn:
            # recorded as JSON with sorted keys: a run that left nothing out holds
            # "left_out": [], and is not read
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.created_at, runs.c.status, runs.c.policies)
                .where(runs.c.policies.contains('"left_out": [{', autoescape=True))
                .order_by(runs.c.created_at))
            for r in rows:
                for lo in json.loads(r.policies).get("left_out", []):
                    if invoice_key(lo["invoice"]) == key:
                        out.append({"run_id": r.id, "created_at": r.created_at,
                                    "status": r.status, **lo})
        return out

    def left_out_as_held(self, run_id: str, id_bords: Collection[int]) -> dict[str, list[str]]:
        """The committed runs that left out invoices of these bordereaux of ``run_id`` as
        held by it (policies.already_exported: leave_out; recorded with ``holder`` it):
        run -> those invoices, as the run's input wrote them. Cancelled, the bordereaux no
        longer bill them, and those runs did not either."""
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            held = {invoice_key(inv) for (inv,) in conn.execute(
                sa.select(run_invoices.c.invoice)
                .where(run_invoices.c.run_id == run_id,
                       run_invoices.c.id_bord.in_(sorted(id_bords))))}
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.policies)
                .where(runs.c.status == "committed",
                       runs.c.policies.contains('"policy": "already_exported"', autoescape=True),
                       runs.c.policies.contains(run_id, autoescape=True))
                .order_by(runs.c.created_at))
            for later, policies in rows:
                for lo in json.loads(policies).get("left_out", []):
                    if lo.get("holder") == run_id and invoice_key(lo["invoice"]) in held:
                        out.setdefault(later, []).append(lo["invoice"])
        return out

    def find_invoice(self, invoice: str, by_debt: bool = False) -> list[dict[str, Any]]:
        """The titles recorded for an invoice number (compared like the guard: case and
        surrounding spaces do not count), or with ``by_debt`` for a NumDette (compared
        as a number, like the guard: leading zeros do not count). Each title's
        ``record``: its record in its run's input, the input's absolute path and its
        position (None: recorded before migration 19, or before pesgen kept the path);
        its ``notes``: the policy notes its run recorded about the invoice (a discount
        netted, a street split, a default civility: ``invoice_notes``)."""
        where = (run_invoices.c.debt_number == debt_key(invoice.strip()) if by_debt
                 else run_invoices.c.invoice_key == invoice_key(invoice))
        policies_of: dict[str, dict[str, Any]] = {}  # by run: read once a run
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(run_invoices, runs.c.status, runs.c.created_at, runs.c.exercise,
                          runs.c.cod_bud, runs.c.typ_bord,
                          cancelled_bordereaux.c.cancelled_at.label("bordereau_cancelled_at"))
                .join(runs, runs.c.id == run_invoices.c.run_id)
                .outerjoin(cancelled_bordereaux, sa.and_(
                    cancelled_bordereaux.c.run_id == run_invoices.c.run_id,
                    cancelled_bordereaux.c.id_bord == run_invoices.c.id_bord))
                .where(where).order_by(runs.c.created_at))
            out = []
            for r in rows:
                m = dict(r._mapping)
                m["file"] = conn.execute(sa.select(run_files.c.name).where(
                    run_files.c.run_id == m["run_id"], run_files.c.id_bord == m["id_bord"])
                    .limit(1)).scalar()
                if m["run_id"] not in policies_of:
                    policies_of[m["run_id"]] = json.loads(conn.execute(
                        sa.select(runs.c.policies).where(runs.c.id == m["run_id"])
                    ).scalar() or "{}")
                policies = policies_of[m["run_id"]]
                if m["record"] is not None:
                    path = policies.get("input_path") or None
                    m["record"] = f"{path}:{m['record']}" if path else None
                m["notes"] = invoice_notes(policies, m["invoice"])
                out.append(m)
            return out

    def bordereaux_of_file(self, id_coll: str, cod_bud: str, name: str
                           ) -> list[tuple[str, int]]:
        """(run id, IdBord) of each active bordereau of the PES runs of a collectivity's
        budget whose file bears ``name`` (upper or lower case alike), oldest run first:
        the file an acquit's NomFic may name (`pesgen acquit` suggests it, never ties by
        it). Reads only."""
        query = (sa.select(runs.c.id, run_files.c.id_bord, runs.c.typ_bord)
                 .join(runs, runs.c.id == run_files.c.run_id)
                 .outerjoin(cancelled_bordereaux, sa.and_(
                     cancelled_bordereaux.c.run_id == run_files.c.run_id,
                     cancelled_bordereaux.c.id_bord == run_files.c.id_bord))
                 .where(runs.c.id_coll == id_coll, runs.c.cod_bud == cod_bud,
                        runs.c.status == "committed", run_files.c.id_bord.is_not(None),
                        cancelled_bordereaux.c.run_id.is_(None),
                        sa.func.lower(run_files.c.name) == name.lower())
                 .order_by(runs.c.created_at, runs.c.id))
        with self.engine.connect() as conn:
            return [(run_id, id_bord) for run_id, id_bord, typ_bord in conn.execute(query)
                    if pes_typ_bord(typ_bord)]

    def pes_bordereau(self, id_coll: str, cod_bud: str, exercise: int,
                      id_bord: int) -> list[tuple[str, str, Bordereau]]:
        """The bordereau IdBord ``id_bord`` of the PES runs of a collectivity's budget and
        exercise, as (run id, TypBord, bordereau), oldest run first: one, or one per
        TypBord sequence that reached that number (ORMC 06 and titres 01 number apart).
        A finance package's run (its TypBord is the format's name, not a PES code) is no
        bordereau pesgen sent to the DGFiP: never returned. Reads only."""
        return self.pes_bordereaux(id_coll, cod_bud, [(exercise, id_bord)]).get(
            (exercise, id_bord), [])

    def pes_bordereaux(self, id_coll: str, cod_bud: str,
                       wanted: Collection[tuple[int, int]]
                       ) -> dict[tuple[int, int], list[tuple[str, str, Bordereau]]]:
        """``pes_bordereau`` of each (exercise, IdBord) of ``wanted`` at once: {(exercise,
        IdBord): its list}, a number no PES run holds absent. The budget's runs of those
        exercises are read in one query (IN_LIST exercises a query), and each run holding
        one of the numbers its bordereaux once: an acquit of 50 000 bordereaux of one run
        reads that run once, not once per bordereau (`pesgen acquit`). Reads only."""
        numbers: dict[int, set[int]] = {}
        for exercise, id_bord in wanted:
            numbers.setdefault(exercise, set()).add(id_bord)
        out: dict[tuple[int, int], list[tuple[str, str, Bordereau]]] = {}
        with self.engine.connect() as conn:
            for part in chunks(sorted(numbers)):
                # oldest run first, as each number's list is: a number is of one exercise,
                # so its runs are all read by one query
                query = (sa.select(runs.c.id, runs.c.typ_bord, runs.c.exercise,
                                   runs.c.first_number, runs.c.bordereaux).where(
                    runs.c.id_coll == id_coll, runs.c.cod_bud == cod_bud,
                    runs.c.exercise.in_(part)).order_by(runs.c.created_at, runs.c.id))
                for run_id, typ_bord, exercise, first, count in conn.execute(query).all():
                    held = {n for n in numbers[exercise] if first <= n < first + count}
                    if not held or not pes_typ_bord(typ_bord):
                        continue
                    for b in self.bordereaux(conn, run_id):
                        if b.id_bord in held:
                            out.setdefault((exercise, b.id_bord), []).append(
                                (run_id, typ_bord, b))
        return out

    def collectivities(self) -> list[tuple[str, str, int, str]]:
        """The collectivities' budgets this store's runs are of, each as (IdColl, CodBud,
        how many runs, the mapping of its latest run), by IdColl and CodBud: what `pesgen
        acquit` names when an acquit is of none of them. Reads only."""
        found: dict[tuple[str, str], list[Any]] = {}
        with self.engine.connect() as conn:
            for id_coll, cod_bud, mapping in conn.execute(
                    sa.select(runs.c.id_coll, runs.c.cod_bud, runs.c.mapping_path)
                    .order_by(runs.c.created_at, runs.c.id)):
                seen = found.setdefault((id_coll, cod_bud), [0, mapping])
                seen[0] += 1
                seen[1] = mapping
        return [(c, b, n, m) for (c, b), (n, m) in sorted(found.items())]

    # -------------------------------------------------------------- acknowledgements

    def acknowledgements(self, run_ids: Collection[str] | None = None, history: bool = False,
                         conn: Connection | None = None
                         ) -> dict[str, dict[int, list[Acknowledgement]]]:
        """The recorded acknowledgements of these runs' bordereaux (None: every run),
        {run: {IdBord: [its status, then (``history``) those it replaced, latest first]}}.
        A bordereau with none recorded is absent: not acknowledged."""
        query = (sa.select(acquit_bordereaux, acquits.c.name, acquits.c.sha256,
                           acquits.c.issued_on, acquits.c.recorded_at)
                 .join(acquits, acquits.c.id == acquit_bordereaux.c.acquit_id)
                 .order_by(acquit_bordereaux.c.run_id, acquit_bordereaux.c.id_bord,
                           acquit_bordereaux.c.superseded_at.is_not(None),
                           acquit_bordereaux.c.id.desc()))
        if not history:
            query = query.where(acquit_bordereaux.c.superseded_at.is_(None))
        out: dict[str, dict[int, list[Acknowledgement]]] = {}
        ids = None if run_ids is None else sorted(run_ids)
        with (contextlib.nullcontext(conn) if conn is not None
              else self.engine.connect()) as c:
            for chunk in ([query] if ids is None else [
                    query.where(acquit_bordereaux.c.run_id.in_(part)) for part in chunks(ids)]):
                for r in c.execute(chunk):
                    out.setdefault(r.run_id, {}).setdefault(r.id_bord, []).append(
                        _acknowledgement(r))
        return out

    def record_acknowledgements(self, acquit: dict[str, Any], items: list[dict[str, Any]],
                                replace: bool = False,
                                named: tuple[str, int | None] | None = None) -> AckRecording:
        """Record an acknowledgement file (``acquit``: sha256, name, id_coll, cod_bud,
        nom_fic, issued_on) and its ``items`` (run_id, id_bord, line, domain, accepted,
        errors: a list of {piece, line, code, label}), in one transaction.

        ``named``: the run (and bordereau, or None) support tied the items to by hand
        (``pesgen acquit --record --run``), checked again in the transaction: cancelled
        since it was read (``runs cancel`` takes the same lock), it refuses the file
        (StateError, nothing recorded), as ``--run`` of a cancelled run does.

        A file whose sha256 is recorded already (``already``: its name and date) records the
        items whose line was not recorded from it before (in its row; ``already`` for the
        others, with what was recorded from that line), nothing when there is none
        (``recorded_at`` None). A bordereau whose status already says the same (accepted or
        not, the same errors) is not recorded again. One whose status says otherwise
        (rejected, then accepted after a fix on the trésorerie's side; two files
        contradicting) refuses the whole file (StateError, nothing recorded) unless
        ``replace``: then the new one is its status, the one it replaces stays as history
        (``superseded_at``).

        On PostgreSQL the acknowledgements' lock (``lock_acknowledgements``) another
        transaction holds (a `payfip link` recording its operation, `runs cancel` or
        `runs reinstate`, another `acquit --record`, a session left open) is waited for as
        ``waits_for_rows`` waits: said past the grace, at most ``store_lock_timeout``,
        then StoreLocked, nothing recorded. Before, it was waited for as long as it was
        held, without a word."""
        return self.waits_for_rows(
            partial(self._record_acknowledgements, acquit, items, replace, named),
            ACK_LOCK_ROWS, holder=ACK_LOCK_HOLDER)

    def _record_acknowledgements(self, acquit: dict[str, Any], items: list[dict[str, Any]],
                                 replace: bool,
                                 named: tuple[str, int | None] | None) -> AckRecording:
        """``record_acknowledgements``, in one transaction (run again safely once a wait
        given up rolled it back)."""
        now = utc_now()
        with self.transaction() as conn:
            # two recordings of one file, or of one bordereau, in turn
            lock_acknowledgements(conn)
            known = conn.execute(sa.select(acquits.c.id, acquits.c.name,
                                           acquits.c.recorded_at).where(
                acquits.c.sha256 == acquit["sha256"])).first()
            # the elements recorded from this file before, by their line: recorded already
            mine = {} if known is None else {
                a.line: a for a, _ in self._acquit_elements(conn, known.id).values()}
            earlier = None if known is None else (known.name, known.recorded_at)
            if all(item["line"] in mine for item in items):
                return AckRecording(None, earlier, tuple(
                    ("already", mine[item["line"]]) for item in items))
            if named is not None:
                self._still_active(conn, *named)
            status = self.acknowledgements({i["run_id"] for i in items}, conn=conn)
            outcomes: list[tuple[str, Acknowledgement | None]] = []
            conflicts = []
            errors_of = [_errors_json(item["errors"]) for item in items]
            for item, errors in zip(items, errors_of, strict=True):
                before = status.get(item["run_id"], {}).get(item["id_bord"], [None])[0]
                if item["line"] in mine:
                    outcomes.append(("already", mine[item["line"]]))
                elif before is None:
                    outcomes.append(("recorded", None))
                elif before.same_answer(item["accepted"], errors):
                    outcomes.append(("same", before))
                else:
                    outcomes.append(("replaced", before))
                    conflicts.append((item, before))
            if conflicts and not replace:
                raise StateError(
                    f"{acquit['name']} says otherwise than {len(conflicts)} acknowledgement(s) "
                    "recorded before; nothing recorded. If the trésorerie's later answer "
                    "replaces the one recorded (a bordereau it took after a fix on its side), "
                    "record it with --replace: the one it replaces stays in `pesgen runs "
                    "show`'s history", [Problem(
                        "acquit.contradicts",
                        f"IdBord {item['id_bord']} of run {item['run_id']}: this file says "
                        f"{'accepted' if item['accepted'] else 'rejected'}"
                        f"{with_errors(len(item['errors']))}; recorded: {before.outcome} (from "
                        f"{before.file}, line {before.line}, recorded {before.recorded_at})",
                        record=f"{acquit['name']}:{item['line']}")
                        for item, before in conflicts])
            new = [(item, errors, done) for item, errors, (done, _)
                   in zip(items, errors_of, outcomes, strict=True)
                   if done not in ("same", "already")]
            if not new:
                return AckRecording(None, earlier, tuple(outcomes))
            try:
                # a file recorded in part before: its elements tied now are added to its
                # row (the file's name and date stay those of its first recording); a
                # one-row insert has its key (SQLAlchemy types it optional)
                acquit_id = known.id if known is not None else conn.execute(
                    acquits.insert().values(
                        **{k: acquit[k] for k in ("sha256", "name", "id_coll", "cod_bud",
                                                  "nom_fic", "issued_on")},
                        recorded_at=now)).inserted_primary_key[0]  # type: ignore[index]
                # the statuses replaced, then the new ones, IN_LIST bordereaux and rows a
                # statement (one each made an acquit of 50 000 bordereaux 100 000
                # statements); a file answers a bordereau once (acquit.record)
                replaced: dict[str, list[int]] = {}
                for item, _errors, done in new:
                    if done == "replaced":
                        replaced.setdefault(item["run_id"], []).append(item["id_bord"])
                for run_id, numbers in replaced.items():
                    for part in chunks(numbers):
                        conn.execute(acquit_bordereaux.update().where(
                            acquit_bordereaux.c.run_id == run_id,
                            acquit_bordereaux.c.id_bord.in_(part),
                            acquit_bordereaux.c.superseded_at.is_(None)).values(
                                superseded_at=now))
                for rows in chunks([
                        {"acquit_id": acquit_id, "run_id": item["run_id"],
                         "id_bord": item["id_bord"], "line": item["line"],
                         "domain": item["domain"], "accepted": item["accepted"],
                         "errors": errors, "error_count": len(item["errors"])}
                        for item, errors, _done in new]):
                    conn.execute(acquit_bordereaux.insert(), rows)
            except sa.exc.IntegrityError as exc:
                conn.rollback()
                raise StateError(f"{shown_url(self.url)}: the store refused to record "
                                 f"{acquit['name']}: {exc.orig}; nothing recorded") from None
        return AckRecording(now, earlier, tuple(outcomes))

    def acquit_elements(self, sha256: str) -> dict[int, tuple[Acknowledgement, str]]:
        """The elements recorded from the acknowledgement file of this sha256, by their
        line in it: (the acknowledgement recorded, the TypBord of its run), the status
        or (``superseded_at``) one replaced since; {}: the file was never recorded."""
        with self.engine.connect() as conn:
            known = conn.execute(sa.select(acquits.c.id).where(
                acquits.c.sha256 == sha256)).scalar()
            return {} if known is None else self._acquit_elements(conn, known)

    @staticmethod
    def _acquit_elements(conn: Connection, acquit_id: int
                         ) -> dict[int, tuple[Acknowledgement, str]]:
        query = (sa.select(acquit_bordereaux, acquits.c.name, acquits.c.sha256,
                           acquits.c.issued_on, acquits.c.recorded_at, runs.c.typ_bord)
                 .join(acquits, acquits.c.id == acquit_bordereaux.c.acquit_id)
                 .join(runs, runs.c.id == acquit_bordereaux.c.run_id)
                 .where(acquit_bordereaux.c.acquit_id == acquit_id)
                 .order_by(acquit_bordereaux.c.id))
        return {r.line: (_acknowledgement(r), r.typ_bord) for r in conn.execute(query)}

    def _still_active(self, conn: Connection, run_id: str, id_bord: int | None) -> None:
        """Refuse (StateError) a run, or its bordereau ``id_bord``, cancelled since
        ``pesgen acquit --run`` read it."""
        gone = {b.id_bord: b for b in self.bordereaux(conn, run_id) if b.cancelled_at}
        run = conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar()
        which = (f"run {run_id}" if run == "cancelled" else
                 f"IdBord {id_bord} of run {run_id}" if id_bord in gone else None)
        if which is not None:
            raise StateError(f"{which} was cancelled while the acknowledgement was read; "
                             "--run ties an acknowledgement to an active run only: nothing "
                             "recorded")

    def latest_run_paths(self) -> dict[str, Any] | None:
        """The store's latest run (as `runs list` orders them: its last line): its id,
        when it was recorded, its mapping path, its input's name and absolute path (None:
        a run recorded before pesgen kept it); None: the store holds no run. What `runs
        find` gives for the export that says why an invoice is in no run."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(runs.c.id, runs.c.created_at, runs.c.mapping_path,
                          runs.c.input_name)
                .order_by(runs.c.created_at.desc(), runs.c.first_number.desc()).limit(1)
            ).first()
            if row is None:
                return None
            return {**row._mapping, "input_path": _input_path(conn, row.id)}

    def run_bordereaux(self, run_id: str) -> list[Bordereau]:
        """A run's bordereaux (``bordereaux``), read on their own."""
        with self.engine.connect() as conn:
            return self.bordereaux(conn, run_id)

    def exported_again(self, run_id: str, bordereaux: list[int]
                       ) -> tuple[int, dict[str, set[int]]]:
        """Of these cancelled bordereaux of a run: how many of their invoices an active
        run holds now (exported again since, or their NumDettes taken), and the holders,
        {run: IdBords} (what ``runs reinstate`` would refuse: `pesgen acquit` says it of an
        acceptance of a bordereau cancelled in pesgen, which the trésorerie may now bill
        twice)."""
        with self.engine.connect() as conn:
            id_coll = conn.execute(sa.select(runs.c.id_coll).where(runs.c.id == run_id)
                                   ).scalar_one()
            taken, holders = self._taken_since(
                conn, id_coll, _bordereau_titles(conn, run_id, bordereaux))
        return len({p.invoice for p in taken}), holders

    def each_exported_again(self, bordereaux: Collection[tuple[str, int]]
                            ) -> dict[tuple[str, int], tuple[int, dict[str, set[int]]]]:
        """``exported_again`` of each of these cancelled bordereaux, (run, IdBord), on its
        own, in a few statements for them all: a run's titles, the runs holding their
        invoices and their NumDettes read IN_LIST a query (`pesgen acquit` asked each
        bordereau an acquit accepts that pesgen holds as cancelled on its own)."""
        by_run: dict[str, list[int]] = {}
        for run_id, id_bord in sorted(set(bordereaux)):
            by_run.setdefault(run_id, []).append(id_bord)
        out: dict[tuple[str, int], tuple[int, dict[str, set[int]]]] = {}
        if not by_run:
            return out
        with self.engine.connect() as conn:
            colls = self._run_columns(conn, by_run, runs.c.id_coll)
            for run_id, numbers in by_run.items():
                (id_coll,) = colls[run_id]
                titles = [t for part in chunks(numbers)
                          for t in _bordereau_titles(conn, run_id, part)]
                of: dict[int, list[Any]] = {n: [] for n in numbers}
                for t in titles:
                    of[t.id_bord].append(t)
                invoices = {t.invoice for t in titles}
                if len({invoice_key(i) for i in invoices}) < len(invoices):
                    # two numbers of the run share a key (recorded before the guard
                    # compared keys: migrations 5 and 6): a look-up finds one number a
                    # key, so each bordereau is looked up on its own, as exported_again
                    for n, rows in of.items():
                        taken, holders = self._taken_since(conn, id_coll, rows)
                        out[(run_id, n)] = len({p.invoice for p in taken}), holders
                    continue
                by_invoice = self.holders(conn, id_coll, (t.invoice for t in titles))
                by_debt = self.debt_holders(conn, id_coll, (t.debt_number for t in titles
                                                            if t.debt_number))
                for n, rows in of.items():
                    taken, holders = _taken(rows, by_invoice, by_debt)
                    out[(run_id, n)] = len({p.invoice for p in taken}), holders
        return out

    def piece_invoices(self, run_id: str, id_bord: int) -> dict[int, str]:
        """IdPce -> the invoice number as written, for a bordereau of a run."""
        return self.bordereaux_invoices(run_id, [id_bord]).get(id_bord, {})

    def bordereaux_invoices(self, run_id: str, id_bords: Collection[int]
                            ) -> dict[int, dict[int, str]]:
        """``piece_invoices`` of several bordereaux of a run at once, {IdBord: {IdPce:
        invoice}} (a bordereau of no title absent), IN_LIST bordereaux a query: the
        pieces an acquit names in many bordereaux of one run (`pesgen acquit`)."""
        out: dict[int, dict[int, str]] = {}
        with self.engine.connect() as conn:
            for r in _bordereaux_titles(conn, run_id, id_bords):
                out.setdefault(r.id_bord, {})[r.id_pce] = r.invoice
        return out

    def bordereaux_titles(self, run_id: str, id_bords: Collection[int]
                          ) -> dict[int, dict[int, tuple[str, str | None, int | None]]]:
        """``bordereaux_invoices`` with each title's input record and number of lines
        beside its invoice, {IdBord: {IdPce: (invoice, record, lines)}}, read together:
        the input's absolute path the run recorded and the title's position in it
        (``/srv/exports/school-export.json:$.invoices[7]``), as the run names its
        left-out invoices; None for a title recorded before schema 19 (no position), or
        in a run recorded before pesgen kept the input's path: nothing is guessed. Its
        lines (IdLigne 1 to that) as the run wrote them; None for a title recorded
        before schema 21."""
        out: dict[int, dict[int, tuple[str, str | None, int | None]]] = {}
        with self.engine.connect() as conn:
            path = _input_path(conn, run_id)
            for r in _bordereaux_titles(conn, run_id, id_bords, run_invoices.c.record,
                                        run_invoices.c.line_count):
                record = f"{path}:{r.record}" if path and r.record is not None else None
                out.setdefault(r.id_bord, {})[r.id_pce] = (r.invoice, record, r.line_count)
        return out

    def bordereaux(self, conn: Connection, run_id: str) -> list[Bordereau]:
        """A run's bordereaux, by IdBord: titles, total and first file, and whether each
        is cancelled (a row of cancelled_bordereaux, or its run cancelled)."""
        run = conn.execute(sa.select(runs.c.status, runs.c.cancelled_at, runs.c.cancel_reason)
                           .where(runs.c.id == run_id)).one()
        ids = conn.execute(sa.select(run_invoices.c.id_bord).where(
            run_invoices.c.run_id == run_id).distinct()).scalars().all()
        files: dict[int, Any] = {}
        for row in conn.execute(sa.select(run_files).where(
                run_files.c.run_id == run_id, run_files.c.id_bord.is_not(None))
                .order_by(run_files.c.id)):
            files.setdefault(row.id_bord, row)
        parts = {r.id_bord: r for r in conn.execute(sa.select(cancelled_bordereaux).where(
            cancelled_bordereaux.c.run_id == run_id))}
        out = []
        for id_bord in sorted(set(ids) | set(files)):
            f, part = files.get(id_bord), parts.get(id_bord)
            if part is not None:
                cancelled = (part.cancelled_at, part.reason)
            elif run.status == "cancelled":
                cancelled = (run.cancelled_at, run.cancel_reason)
            else:
                cancelled = None
            out.append(Bordereau(id_bord, f.titles if f else None, f.total if f else None,
                                 f.name if f else None,
                                 cancelled[0] if cancelled else None,
                                 cancelled[1] if cancelled else None))
        return out

    def cancel(self, run_id: str, reason: str, bordereaux: Collection[int] | None = None,
               whole: bool = False, despite_payments: bool = False,
               annulled_by_tresorerie: bool = False) -> Cancellation:
        """Cancel a run (``whole``), or some of its bordereaux: their invoices and
        NumDettes are freed, except the invoices another active run holds too (a store
        migration 5 found so: docs/state.md). Where this run held such a number's unique
        index, the oldest other active row takes it over, in the same transaction: the
        index, not only pesgen's check, keeps refusing the number while that run is
        active. A run of several active bordereaux is cancelled only by naming them
        (``bordereaux``) or with ``whole``: the trésorerie may have rejected one of them
        and taken the others. Cancelling the last active bordereaux of a run cancels the
        run. Numbers are never given again, whatever is cancelled.

        Titles with PayFiP operations paid, or links still open, are not cancelled
        unless ``despite_payments``: the money stays attached to the cancelled title and
        the trésorerie must be told (docs/payfip.md). When it is given, each such
        invoice's PayFiP history gets a ``title-cancelled`` event.

        A bordereau whose Hélios status (``pesgen acquit --record``) is accepted is not
        cancelled unless ``annulled_by_tresorerie``: its titles exist at the trésorerie,
        and exporting its invoices again would bill the families twice. Given, the
        confirmation is recorded in the reason, with each accepted bordereau and its
        acquit. Both refusals are said together, nothing cancelled."""
        if not reason.strip():
            raise UsageError("a cancellation needs a reason (--reason)")
        if whole and bordereaux:
            raise UsageError("give --bordereau IDBORD (some bordereaux of the run) or --all "
                             "(the whole run), not both")
        # its files and output folder, which the cancellation leaves as they are (the
        # command names those of the bordereaux cancelled still there)
        as_recorded = self.get_run(run_id)
        full = as_recorded["id"]
        # on PostgreSQL the run's row another transaction holds (a PayFiP link being
        # recorded for one of its invoices, another cancellation or reinstatement, a
        # session left open) is waited for at most store_lock_timeout, said past the
        # grace; a wait given up rolls the cancellation back, run again
        return self.waits_for_rows(partial(
            self._cancel, full, reason, bordereaux, whole, despite_payments,
            annulled_by_tresorerie, as_recorded), _run_rows(full), holder=RUN_HOLDER)

    def _cancel(self, full: str, reason: str, bordereaux: Collection[int] | None,
                whole: bool, despite_payments: bool, annulled_by_tresorerie: bool,
                as_recorded: dict[str, Any]) -> Cancellation:
        """``cancel`` of the run ``full`` (``as_recorded``: as ``get_run`` read it)."""
        now = utc_now()
        if annulled_by_tresorerie:
            confirmed = self._confirm_annulled(full, reason.strip(), bordereaux, now,
                                               as_recorded)
            if confirmed is not None:
                return confirmed
        with self.transaction() as conn:
            row = _locked_run(conn, full)
            if row.status == "cancelled":
                raise StateError(f"run {full} is already cancelled ({row.cancel_reason})")
            every = self.bordereaux(conn, full)
            active = [b for b in every if b.cancelled_at is None]
            if bordereaux:
                known = _named(full, every, bordereaux, "nothing cancelled")
                done = sorted(i for i in set(bordereaux) if known[i].cancelled_at is not None)
                if done:
                    raise StateError("; ".join(
                        f"IdBord {i} of run {full} is already cancelled (on "
                        f"{known[i].cancelled_at}: {known[i].reason})" for i in done)
                        + "; nothing cancelled")
                targets = [b for b in active if b.id_bord in set(bordereaux)]
            elif len(active) > 1 and not whole:
                raise UsageError(
                    f"run {full} has {len(active)} active bordereaux; nothing cancelled. "
                    "If the trésorerie rejected one of them, give --bordereau IDBORD for it "
                    "(repeatable): the others stay active. To cancel the whole run, give "
                    "--all: every one of its invoices may then be exported again\n"
                    + "\n".join(f"  {b}" for b in active))
            else:
                targets = active
            numbers = [b.id_bord for b in targets]
            # each bordereau's Hélios status, as `pesgen acquit --record` recorded it (a
            # finance package's run has none: the package sends its own PES)
            status = self._helios_status(conn, row, numbers)
            accepted = [status[i] for i in numbers if i in status and status[i].accepted]
            online = _online_payments(conn, full, numbers)
            if accepted and not annulled_by_tresorerie:
                raise _accepted_refusal(full, accepted,
                                        [] if despite_payments else online)
            if online and not despite_payments:
                invoices = len({p.invoice for p in online})
                raise StateError(
                    f"run {full}: {invoices} invoice(s) of IdBord "
                    f"{', '.join(map(str, numbers))} have PayFiP payments, made or pending; "
                    "nothing cancelled. A payment stays attached to its title, cancelled or "
                    "not: tell the trésorerie (it settles what was collected for a cancelled "
                    "title, and will see these titles billed again if they are exported "
                    "again), then cancel knowing it, with --despite-payments", list(online))
            recorded = reason.strip()
            if annulled_by_tresorerie:
                recorded += annulled_note(accepted)
            run_cancelled = len(targets) == len(active)
            if run_cancelled:
                conn.execute(runs.update().where(runs.c.id == full).values(
                    status="cancelled", cancelled_at=now, cancel_reason=recorded))
            else:
                # the run stays committed: its status does not say these are cancelled
                conn.execute(cancelled_bordereaux.insert(), [
                    {"run_id": full, "id_bord": i, "cancelled_at": now,
                     "reason": recorded} for i in numbers])
            mine = sa.and_(run_invoices.c.run_id == full, run_invoices.c.id_bord.in_(numbers))
            count = conn.execute(sa.select(sa.func.count()).select_from(run_invoices)
                                 .where(mine)).scalar() or 0
            conn.execute(run_invoices.update().where(mine).values(active=False))
            held = self._still_held(conn, full, numbers)
            # each title cancelled with its payments (despite_payments)
            # (each problem of _online_payments names its invoice)
            _note_titles(conn, full, (p.invoice for p in online if p.invoice is not None),
                         "title-cancelled", "cancel", now, reason.strip())
            if online:
                # a paid title cancelled: the trésorerie's answer (applied to the title
                # exported in its place, or refunded) is a person's to record
                _paid_cancelled(conn, full, numbers, now, reason.strip())
        record = self._run_record(full)
        return Cancellation(record, int(count), held, tuple(numbers),
                            tuple(b.id_bord for b in active if b not in targets),
                            len(every), tuple(online), status, recorded,
                            as_recorded=as_recorded)

    def _confirm_annulled(self, full: str, reason: str, bordereaux: Collection[int] | None,
                          now: str, as_recorded: dict[str, Any]) -> Cancellation | None:
        """``cancel`` with ``annulled_by_tresorerie`` of bordereaux cancelled already
        without it (a cancellation before the trésorerie's acquit came, which accepted
        them: ``pesgen acquit`` lists it to check, and advises this): the confirmation is
        added to their recorded reason, nothing else changes (their invoices were freed
        when they were cancelled). None, and ``cancel`` goes on as usual, when one of them
        is active or is confirmed already (``bordereaux`` none: every one of the run).
        ``as_recorded``: the run as ``cancel`` read it (its files and folder)."""
        with self.transaction() as conn:
            row = _locked_run(conn, full)
            every = self.bordereaux(conn, full)
            chosen = ([b for b in every if b.id_bord in set(bordereaux)] if bordereaux
                      else every)
            if (not chosen or (bordereaux and len(chosen) != len(set(bordereaux)))
                    or any(b.cancelled_at is None or ANNULLED_MARK in (b.reason or "")
                           for b in chosen)):
                return None
            numbers = [b.id_bord for b in chosen]
            status = self._helios_status(conn, row, numbers)
            accepted = [status[i] for i in numbers if i in status and status[i].accepted]
            parts = set(conn.execute(sa.select(cancelled_bordereaux.c.id_bord).where(
                cancelled_bordereaux.c.run_id == full)).scalars())
            note = f" (confirmed {now}: {reason}{annulled_note(accepted)})"
            for b in chosen:
                if b.id_bord in parts:  # cancelled on its own
                    conn.execute(cancelled_bordereaux.update().where(
                        cancelled_bordereaux.c.run_id == full,
                        cancelled_bordereaux.c.id_bord == b.id_bord).values(
                        reason=(b.reason or "") + note))
            # the bordereaux cancelled with their run (none while it is committed)
            with_run = [b for b in every if b.id_bord not in parts and b.cancelled_at]
            if with_run and all(b in chosen for b in with_run):
                conn.execute(runs.update().where(runs.c.id == full).values(
                    cancel_reason=(row.cancel_reason or "") + note))
            elif any(b in with_run for b in chosen):
                # some of the bordereaux cancelled with their run: the run's reason is
                # the others' too, which the trésorerie did not annul (reinstating them
                # would be refused, their acceptance said annulled): each chosen one gets
                # its own, the run's cancellation confirmed
                conn.execute(cancelled_bordereaux.insert(), [
                    {"run_id": full, "id_bord": b.id_bord, "cancelled_at": b.cancelled_at,
                     "reason": (b.reason or "") + note} for b in chosen if b in with_run])
            recorded = (chosen[0].reason or "") + note
        record = self._run_record(full)
        return Cancellation(record, 0, {}, tuple(numbers),
                            tuple(b.id_bord for b in every if b.cancelled_at is None),
                            len(every), (), status, recorded, confirmed=True,
                            as_recorded=as_recorded)

    def reinstate(self, run_id: str, reason: str, bordereaux: Collection[int] | None = None,
                  whole: bool = False, by: str = REINSTATED_BY) -> Reinstatement:
        """Undo the cancellation of a run, or of some of its cancelled bordereaux
        (``bordereaux``; a run of several cancelled ones needs them named, or ``whole``):
        their invoices and NumDettes are held again, so an export of them is refused, and
        the run is committed again when it was cancelled (its other bordereaux staying
        cancelled, each on its own). Its numbers do not change (they were never given
        again). Each bordereau reinstated is recorded, with the cancellation it undid.

        Refused, nothing changed, every reason said together: a bordereau whose
        cancellation confirmed the trésorerie's annulment (``--annulled-by-tresorerie``:
        its titles are annulled in Hélios), one whose Hélios status is rejected (its
        titles do not exist there), and invoices or NumDettes an active run holds now
        (exported again since the cancellation: both would be billed).

        A title reinstated that PayFiP shows paid (its payment follows it) and whose
        cancellation left a ``paid-cancelled`` anomaly open is paid again, nothing left for
        the trésorerie to apply or refund: the anomaly is resolved (outcome
        ``reinstated``, ``by``, a note naming the run), said in ``settled``. One whose
        payment the trésorerie refunded (``--refunded``) is due again: ``due_again``."""
        if not reason.strip():
            raise UsageError("a reinstatement needs a reason (--reason)")
        if whole and bordereaux:
            raise UsageError("give --bordereau IDBORD (some bordereaux of the run) or --all "
                             "(every cancelled one), not both")
        from .payfip.tables import RESOLVED_BY_MAX

        # who resolves the anomalies it settles, as recorded: cut to the column, the
        # command's name when blank (the CLI refuses a --by too long or blank)
        by = by.strip()[:RESOLVED_BY_MAX] or REINSTATED_BY
        as_recorded = self.get_run(run_id)
        full = as_recorded["id"]
        # waited for as ``cancel`` waits for the run's row
        return self.waits_for_rows(partial(
            self._reinstate, full, reason, bordereaux, whole, by, as_recorded),
            _run_rows(full), holder=RUN_HOLDER)

    def _reinstate(self, full: str, reason: str, bordereaux: Collection[int] | None,
                   whole: bool, by: str, as_recorded: dict[str, Any]) -> Reinstatement:
        """``reinstate`` of the run ``full`` (``as_recorded``: as ``get_run`` read it),
        ``by`` as recorded."""
        now = utc_now()
        with self.transaction() as conn:
            row = _locked_run(conn, full)
            every = self.bordereaux(conn, full)
            gone = [b for b in every if b.cancelled_at is not None]
            if bordereaux:
                known = _named(full, every, bordereaux, "nothing reinstated")
                live = sorted(i for i in set(bordereaux) if known[i].cancelled_at is None)
                if live:
                    raise StateError(
                        f"IdBord {', '.join(map(str, live))} of run {full} "
                        f"{'is' if len(live) == 1 else 'are'} not cancelled; nothing "
                        "reinstated")
                targets = [b for b in gone if b.id_bord in set(bordereaux)]
            elif not gone:
                raise StateError(f"run {full} is not cancelled, nor any of its bordereaux; "
                                 "nothing reinstated")
            elif len(gone) > 1 and not whole:
                raise UsageError(
                    f"run {full} has {len(gone)} cancelled bordereaux; nothing reinstated. "
                    "Give --bordereau IDBORD (repeatable) for each one to reinstate (the "
                    "trésorerie took it), or --all for every one\n"
                    + "\n".join(f"  {b}  cancelled {b.cancelled_at}: {b.reason}"
                                for b in gone))
            else:
                targets = gone
            numbers = [b.id_bord for b in targets]
            status = self._helios_status(conn, row, numbers)
            problems = [Problem(
                "run.reinstate-annulled", f"IdBord {b.id_bord} was cancelled confirming the "
                f"trésorerie's annulment of its titles ({b.cancelled_at}: {b.reason}): they "
                "no longer exist at the trésorerie") for b in targets
                if ANNULLED_MARK in (b.reason or "")]
            problems += [Problem(
                "run.reinstate-rejected", f"IdBord {i} {status[i].outcome} by the trésorerie "
                f"(recorded {status[i].recorded_at} from {status[i].file}): its titles do "
                "not exist at the trésorerie", record=f"{status[i].file}:{status[i].line}")
                for i in numbers if i in status and not status[i].accepted]
            titles = _bordereau_titles(conn, full, numbers)
            taken, holders = self._taken_since(conn, row.id_coll, titles)
            problems += taken
            if problems:
                message = (f"run {full}: IdBord {', '.join(map(str, numbers))} cannot be "
                           "reinstated; nothing reinstated")
                if holders:
                    them = "; ".join(f"pesgen runs cancel {run} --bordereau "
                                     f"{' --bordereau '.join(map(str, sorted(bords)))}"
                                     for run, bords in holders.items())
                    message += (f". {len({p.invoice for p in taken})} of their invoices were "
                                "exported again since: both titles would bill them. If the "
                                "trésorerie keeps these bordereaux, cancel what holds them "
                                f"now first, if it should not have gone out ({them}); if "
                                "it took both, ask it to annul one of the two titles")
                raise StateError(message, problems)
            conn.execute(reinstatements.insert(), [
                {"run_id": full, "id_bord": b.id_bord, "cancelled_at": b.cancelled_at,
                 "cancel_reason": b.reason or "", "reinstated_at": now,
                 "reason": reason.strip()} for b in targets])
            own = set(conn.execute(sa.select(cancelled_bordereaux.c.id_bord).where(
                cancelled_bordereaux.c.run_id == full)).scalars())
            conn.execute(cancelled_bordereaux.delete().where(
                cancelled_bordereaux.c.run_id == full,
                cancelled_bordereaux.c.id_bord.in_(numbers)))
            if row.status == "cancelled":
                # the run's other bordereaux, cancelled with it, stay cancelled on their own
                conn.execute(runs.update().where(runs.c.id == full).values(
                    status="committed", cancelled_at=None, cancel_reason=None))
                rest = [{"run_id": full, "id_bord": b.id_bord, "cancelled_at": b.cancelled_at,
                         "reason": b.reason or ""} for b in gone
                        if b not in targets and b.id_bord not in own]
                if rest:
                    conn.execute(cancelled_bordereaux.insert(), rest)
            mine = sa.and_(run_invoices.c.run_id == full, run_invoices.c.id_bord.in_(numbers))
            try:
                # no active row shares their keys (_taken_since): each holds its index
                conn.execute(run_invoices.update().where(mine).values(active=True,
                                                                      key_shared=False))
            except sa.exc.IntegrityError as exc:
                conn.rollback()  # PostgreSQL: an export recorded one of them meanwhile
                said = db_said(exc)
                raise StateError(f"run {full}: the store refused to reinstate IdBord "
                                 f"{', '.join(map(str, numbers))}: {said} (an export "
                                 "recorded one of their invoices meanwhile?); nothing "
                                 "reinstated") from None
            _note_titles(conn, full, (t.invoice for t in titles), "title-reinstated",
                         "reinstate", now, reason.strip())
            settled = _paid_reinstated(conn, full, numbers, now, by, reason.strip())
            # then the money paid through their own links while they were cancelled
            # (after the paid-cancelled ones: a second payment of an invoice is left open)
            from .payfip.ledger import settle_reinstated

            through, left_open = settle_reinstated(self, conn, full, numbers, now, by,
                                                   reason.strip())
            settled = sorted(settled + through, key=lambda s: s["anomaly"])
            due_again = _refunded_reinstated(conn, full, numbers)
        record = self._run_record(full)
        return Reinstatement(record, len(titles), tuple(numbers),
                             tuple(b.id_bord for b in gone if b not in targets), status,
                             as_recorded=as_recorded, settled=tuple(settled),
                             due_again=tuple(due_again), left_open=tuple(left_open))

    def _helios_status(self, conn: Connection, row: Any,
                       numbers: Collection[int]) -> dict[int, Acknowledgement]:
        """The Hélios status of these bordereaux of the run ``row`` (IdBord -> its
        acknowledgement, as `pesgen acquit --record` recorded it), those that have one; a
        finance package's run has none (the package sends its own PES)."""
        if not pes_typ_bord(row.typ_bord):
            return {}
        return {i: acks[0] for i, acks in self.acknowledgements(
            [row.id], conn=conn).get(row.id, {}).items() if i in numbers}

    def _taken_since(self, conn: Connection, id_coll: str, rows: Sequence[Any]
                     ) -> tuple[list[Problem], dict[str, set[int]]]:
        """Of these titles of (cancelled) bordereaux (``_bordereau_titles``), the invoices
        and NumDettes an active run holds now, compared as the duplicate guard compares
        them: each a ``run.reinstate-taken`` problem naming the holder; and the holders,
        {run: IdBords}, oldest problem first."""
        by_invoice = self.holders(conn, id_coll, (r.invoice for r in rows))
        by_debt = self.debt_holders(conn, id_coll,
                                    (r.debt_number for r in rows if r.debt_number))
        return _taken(rows, by_invoice, by_debt)

    @staticmethod
    def _still_held(conn: Connection, run_id: str,
                    bordereaux: list[int]) -> dict[str, dict[str, str]]:
        """After the rows of ``run_id``'s ``bordereaux`` were made inactive: the other
        active rows sharing one of their keys, {holder run: {this run's invoice: the
        holder's}}, oldest holder first. A key none of them holds the index for (this
        run held it) is handed to the oldest (key_shared cleared): exactly one active
        row of a key is outside key_shared, as migration 5 left it."""
        mine = run_invoices.alias("mine")
        other = run_invoices.alias("other")
        rows = conn.execute(
            sa.select(mine.c.invoice, other.c.id, other.c.run_id, other.c.invoice,
                      other.c.key_shared, other.c.id_coll, other.c.invoice_key)
            .join(other, sa.and_(other.c.id_coll == mine.c.id_coll,
                                 other.c.invoice_key == mine.c.invoice_key, other.c.active))
            .join(runs, runs.c.id == other.c.run_id)
            .where(mine.c.run_id == run_id, mine.c.id_bord.in_(bordereaux))
            .order_by(runs.c.created_at, other.c.id)).all()
        held: dict[str, dict[str, str]] = {}
        keys: dict[tuple[str, str], list[Any]] = {}
        for mine_inv, row_id, holder, inv, shared, id_coll, key in rows:
            held.setdefault(holder, {})[mine_inv] = inv
            keys.setdefault((id_coll, key), []).append((row_id, shared))
        heirs = [group[0][0] for group in keys.values()
                 if all(shared for _, shared in group)]
        for part in chunks(heirs):
            conn.execute(run_invoices.update().where(
                run_invoices.c.id.in_(part)).values(key_shared=False))
        return held


@dataclass(frozen=True)
class SequenceMove:
    """A started sequence's next number moved (``pesgen numbering move``)."""
    key: tuple[str, str, int, str]
    from_number: int
    to_number: int
    moved_at: str
    reason: str


@dataclass(frozen=True)
class Unsent:
    """A cancelled bordereau of a PES numbering with no acknowledgement recorded: its
    IdBord, run, and when and why it was cancelled (``whole``: with its run); the number
    the trésorerie's sequence takes after it (``followed_by``: the first after it that is
    not such a number), and which: pesgen's (a run's, or its next export's; None
    ``moved_past``), or one of the numbers issued outside pesgen the sequence was moved
    past it to (``moved_past``: that move, ``pesgen numbering move``)."""
    id_bord: int
    run_id: str
    cancelled_at: str
    reason: str
    whole: bool
    followed_by: int = 0
    moved_past: SequenceMove | None = None


@dataclass(frozen=True)
class SequenceState:
    """A sequence as the store holds it (``pesgen numbering show``)."""
    key: tuple[str, str, int, str]
    start: int
    next_number: int
    given_up_to: int  # the largest number a recorded run took; 0: none
    moves: list[SequenceMove]
    # its IdBords cancelled with no acknowledgement recorded (Store.unsent), by IdBord
    unsent: list[Unsent] = field(default_factory=list)


@dataclass(frozen=True)
class Bordereau:
    """One bordereau of a run: IdBord, titles, total and first file (as recorded), and
    when and why it was cancelled (None: active)."""

    id_bord: int
    titles: int | None
    total: str | None
    file: str | None
    cancelled_at: str | None = None
    reason: str | None = None

    def __str__(self) -> str:
        return (f"IdBord {self.id_bord}  {self.titles} title(s)  {self.total}  {self.file}")


@dataclass(frozen=True)
class Cancellation:
    """A cancellation: the run (afterwards), how many invoices it freed, those another
    active run still holds ({holder run: {invoice as this run wrote it: as the holder
    did}}), the bordereaux cancelled, those of the run still active, and how many
    bordereaux the run has."""

    run: RunRecord
    invoices: int
    held: dict[str, dict[str, str]]
    bordereaux: tuple[int, ...] = ()
    still_active: tuple[int, ...] = ()
    of: int = 1
    # the PayFiP payments, made or pending, of the titles cancelled (despite_payments)
    payments: tuple[Problem, ...] = ()
    # the Hélios status of the bordereaux cancelled, when they had one recorded (a PES
    # run's; ``pesgen acquit --record``): IdBord -> its acknowledgement
    acknowledgements: dict[int, Acknowledgement] = field(default_factory=dict)
    reason: str = ""  # as recorded (with the trésorerie's annulment, when confirmed)
    # the bordereaux were cancelled already: only the trésorerie's annulment of their
    # titles was recorded (--annulled-by-tresorerie after the acquit accepted them)
    confirmed: bool = False
    # the run as ``get_run`` read it before the cancellation: its files and output folder
    as_recorded: dict[str, Any] = field(default_factory=dict)

    @property
    def freed(self) -> int:
        """How many of the run's invoices may be exported again."""
        return self.invoices - len({inv for invs in self.held.values() for inv in invs})


@dataclass(frozen=True)
class Reinstatement:
    """A cancellation undone: the run (afterwards), how many invoices it holds again, the
    bordereaux reinstated, those of the run still cancelled, the Hélios status of the
    bordereaux reinstated that have one recorded, and the run as ``get_run`` read it
    before (its files and output folder)."""

    run: RunRecord
    invoices: int
    bordereaux: tuple[int, ...]
    still_cancelled: tuple[int, ...] = ()
    acknowledgements: dict[int, Acknowledgement] = field(default_factory=dict)
    as_recorded: dict[str, Any] = field(default_factory=dict)
    # the anomalies of titles paid online the reinstatement resolved, their payment the
    # title's again: each anomaly, kind (paid-cancelled: paid before the cancellation,
    # ``_paid_reinstated``; run-cancelled: through its link while it was cancelled,
    # ``ledger.settle_reinstated``), invoice, id_op, id_bord, paid_cents, method, paid_at
    settled: tuple[dict[str, Any], ...] = ()
    # the titles reinstated whose payment the trésorerie refunded while they were
    # cancelled, due again (``_refunded_reinstated``): invoice, id_op, id_bord,
    # paid_cents, method, paid_at
    due_again: tuple[dict[str, Any], ...] = ()
    # the run-cancelled anomalies of the titles reinstated left open, their money not
    # recorded as the title's payment (``ledger.settle_reinstated``: another amount, the
    # invoice paid otherwise…): anomaly, invoice, id_op, id_bord, why
    left_open: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Acknowledgement:
    """The trésorerie's acknowledgement of one bordereau, as recorded (migration 9):
    accepted or rejected, the acquit's date (DteStr; None: the file gave none), its
    errors, the file it came from, when it was recorded and, for one a later
    acknowledgement replaced, when (None: the bordereau's Hélios status)."""

    run_id: str
    id_bord: int
    accepted: bool
    issued_on: str | None
    error_count: int
    errors: tuple[dict[str, Any], ...]
    file: str
    sha256: str
    line: int
    recorded_at: str
    superseded_at: str | None = None
    domain: str = ""  # the element's DomaineAck, as recorded

    @property
    def outcome(self) -> str:
        """``accepted on 2026-11-24``, ``rejected on 2026-11-24 with 3 error(s)``."""
        said = "accepted" if self.accepted else "rejected"
        when = (f" on {self.issued_on}" if self.issued_on else
                f" (the acquit gives no date; recorded {self.recorded_at[:10]})")
        return f"{said}{when}{with_errors(self.error_count)}"

    def same_answer(self, accepted: bool, errors: str) -> bool:
        """Whether an acknowledgement saying ``accepted`` with ``errors`` (the JSON the
        store records) says what this one says."""
        return self.accepted == accepted and _errors_json(list(self.errors)) == errors


def _errors_json(errors: list[dict[str, Any]]) -> str:
    return json.dumps(errors, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class AckRecording:
    """What ``record_acknowledgements`` did: when (``recorded_at`` None: nothing
    recorded), the earlier recording of the same file (``already``: its name and
    when), and per bordereau given (in their order) what became of it: ``recorded``,
    ``same`` (the bordereau's status says the same already: not recorded again),
    ``replaced``, with the status it had before, or ``already`` (its line was recorded
    from this file before), with what was recorded from it."""

    recorded_at: str | None
    already: tuple[str, str] | None
    outcomes: tuple[tuple[str, Acknowledgement | None], ...]


def _online_payments(conn: Connection, run_id: str, bordereaux: list[int]) -> list[Problem]:
    """The PayFiP operations of a run's titles in ``bordereaux`` that moved money or may
    have, each with its state: paid; test-paid in activation mode (saisie X: whether it
    debits a card is not confirmed); pending or unknown (a link the family may still
    use), expired (PayFiP purged it: whether the family paid first is not known), test
    links (saisie T) aside; an anomaly whose result was not a refusal or an abandon (P,
    V, an unknown code, or a result PayFiP would not give), with the amount PayFiP
    reported when it was not the one asked; money the trésorerie refunded (a
    run-cancelled or paid-cancelled anomaly resolved ``--refunded``) aside: the family has
    it back. One problem each, by invoice. Operations are keyed by the run and the
    invoice as that run wrote it."""
    from .payfip.models import cents_text, paid_by

    # the PayFiP tables: migration 2
    from .payfip.tables import SETTLED, anomalies, operations, payments

    titles = sa.select(run_invoices.c.invoice, run_invoices.c.id_bord).where(
        run_invoices.c.run_id == run_id, run_invoices.c.id_bord.in_(bordereaux)).subquery()
    production = operations.c.saisie != "T"
    money = sa.or_(operations.c.status == "paid",
                   sa.and_(operations.c.status == "test-paid", operations.c.saisie == "X"),
                   sa.and_(operations.c.status.in_(("pending", "unknown", "expired")),
                           production),
                   sa.and_(operations.c.status == "anomaly", sa.or_(
                       operations.c.result_code.is_(None),
                       operations.c.result_code.not_in(("R", "Z", "A")))))
    # Each of these is a list read once for the statement (SQLite: a LIST SUBQUERY), not a
    # subquery correlated to each operation: payfip_payments.id_op is not indexed (nor was
    # payfip_anomalies.id_op before schema 18), so a correlated one read the whole table
    # again for each operation of the run (111 s of CPU for 20 000 titles and 13 000
    # anomalies: docs/performance.md, "held-back at scale"). NULL ids are left out of the
    # lists: a NULL in one would make NOT IN unknown for every operation not in it.
    def ops_of(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
        return sa.select(table.c.id_op).where(table.c.id_op.is_not(None), *where)

    # the amount PayFiP reported, where it was not the one asked (an amount-mismatch):
    # flagged here, read below for the operations flagged only
    mismatch = operations.c.id_op.in_(ops_of(anomalies, anomalies.c.kind == "amount-mismatch"))
    # a second payment of the invoice: paid, and a double-payment anomaly
    double = operations.c.id_op.in_(ops_of(anomalies, anomalies.c.kind == "double-payment"))
    # paid through a title of this run while it was cancelled, and applied to it since
    # it was reinstated: ``_applied_payments`` says it, once
    applied_here = operations.c.id_op.in_(ops_of(payments, payments.c.applied_run == run_id,
                                                 payments.c.status == "paid"))
    # money of a cancelled title that the trésorerie refunded (its run-cancelled or
    # paid-cancelled anomaly resolved --refunded): no longer a payment, the title (since
    # reinstated) is due again
    refunded = operations.c.id_op.in_(ops_of(anomalies, anomalies.c.kind.in_(SETTLED),
                                             anomalies.c.outcome == "refunded"))
    rows = conn.execute(
        sa.select(operations, titles.c.id_bord, mismatch.label("mismatch"),
                  double.label("double"))
        .join(titles, titles.c.invoice == operations.c.invoice)
        .where(operations.c.run_id == run_id, money, sa.not_(applied_here),
               sa.not_(refunded))
        # (created_at is to the second: two links of an invoice made in one second are
        # said in id_op order, the same on both databases, not in the order a plan reads)
        .order_by(titles.c.id_bord, operations.c.invoice, operations.c.created_at,
                  operations.c.id_op)).all()
    # what PayFiP reported for each operation flagged (its first amount-mismatch, as
    # ``reported_amount`` reads it), 500 a query: each query reads the anomalies once
    flagged = sorted({op.id_op for op in rows if op.mismatch})
    reported: dict[str, str | None] = {}
    for part in chunks(flagged):
        for id_op, got in conn.execute(
                sa.select(anomalies.c.id_op, anomalies.c.got)
                .where(anomalies.c.kind == "amount-mismatch", anomalies.c.id_op.in_(part))
                .order_by(anomalies.c.id)):
            reported.setdefault(id_op, got)
    out: list[tuple[int, str, Problem]] = []
    for op in rows:
        amount = cents_text(op.amount_cents)
        said = amount
        got = reported.get(op.id_op)
        if got is not None:
            said = (f"PayFiP reported {cents_text(int(got))}, {amount} asked"
                    if got.isdigit() else f"PayFiP reported {got!r}, {amount} asked")
        if op.status == "paid":
            again = (", a second payment of the invoice (a double-payment anomaly, `pesgen "
                     "payfip anomalies`: the trésorerie refunds one)" if op.double else "")
            what = (f"paid online {amount} {paid_by(op.result_code) or 'by PayFiP'} "
                    f"on {op.transaction_at or op.resolved_at} (PayFiP operation {op.id_op})"
                    f"{again}; the payment stays attached to this title")
        elif op.status == "test-paid":
            what = (f"paid in activation mode (saisie X) {amount} "
                    f"{paid_by(op.result_code) or 'by PayFiP'} on "
                    f"{op.transaction_at or op.resolved_at} (PayFiP operation {op.id_op}): "
                    "whether an activation payment debits the family is not confirmed")
        elif op.status == "anomaly" and op.result_code in ("P", "V"):
            what = (f"PayFiP operation {op.id_op} answered {op.result_code} (paid, {said}) "
                    "but was recorded as an anomaly (pesgen payfip anomalies): money may "
                    "have been collected for this title")
        elif op.status == "anomaly":
            result = (f"answered {op.result_code!r}, a result code pesgen does not know"
                      if op.result_code else "could not be asked its result (lookup-refused)")
            what = (f"PayFiP operation {op.id_op} ({said}, saisie {op.saisie}) {result}, "
                    "recorded as an anomaly (pesgen payfip anomalies): whether money was "
                    "collected for this title is not known")
        elif op.status == "expired":
            what = (f"PayFiP operation {op.id_op} expired ({amount}, saisie {op.saisie}): "
                    "PayFiP no longer knows it; whether the family paid before is not known")
        else:
            state = ("" if op.status == "pending" else
                     f" (state {op.status}: PayFiP could not be asked its result yet)")
            # no result recorded is not "not paid": a notification may have been lost
            what = (f"PayFiP link pending since {op.created_at} (operation {op.id_op}, "
                    f"{amount}, saisie {op.saisie}){state}: no result recorded, the family "
                    "may have paid through it already (a notification lost: `pesgen payfip "
                    "reconcile` asks PayFiP); paid after the cancellation, it is an anomaly "
                    "(run-cancelled), money collected for a cancelled title")
        out.append((int(op.id_bord), op.invoice, Problem(
            "run.cancel-payfip", f"IdBord {op.id_bord}: {what}", invoice=op.invoice)))
    applied = _applied_payments(conn, run_id, titles)
    if applied:  # by bordereau and invoice (stable: an invoice's operations stay in order)
        out = sorted(out + applied, key=lambda t: (t[0], t[1]))
    return [problem for *_, problem in out]


def _applied_payments(conn: Connection, run_id: str, titles: sa.Subquery
                      ) -> list[tuple[int, str, Problem]]:
    """The payments of these titles of a run that the trésorerie applied to them: money
    paid through the link of a cancelled title, its anomaly resolved ``--applied`` (the
    operation is the cancelled title's run's, so ``_online_payments`` does not see it; or
    this title's own, paid while it was cancelled and applied to it once reinstated:
    ``_online_payments`` leaves it to this)."""
    from .payfip.models import cents_text, method_said
    from .payfip.tables import operations, payments

    rows = conn.execute(
        sa.select(payments.c.invoice, payments.c.paid_cents, payments.c.method,
                  payments.c.paid_at, payments.c.id_op, operations.c.run_id.label("from_run"),
                  titles.c.id_bord)
        .join(titles, titles.c.invoice == payments.c.invoice)
        .outerjoin(operations, operations.c.id_op == payments.c.id_op)
        .where(payments.c.applied_run == run_id, payments.c.status == "paid",
               payments.c.id_coll == sa.select(runs.c.id_coll).where(
                   runs.c.id == run_id).scalar_subquery())).all()
    out = []
    for r in rows:
        how = method_said(r.method)
        through = ("this title's link while it was cancelled" if r.from_run == run_id
                   else f"the cancelled title of run {r.from_run}" if r.from_run
                   else "a cancelled title")  # its operation's row gone: never by pesgen
        out.append((int(r.id_bord), r.invoice, Problem(
            "run.cancel-payfip",
            f"IdBord {r.id_bord}: paid online {cents_text(r.paid_cents or 0)}{how} on "
            f"{r.paid_at} (PayFiP operation {r.id_op}) through {through}, applied to this "
            "title by the trésorerie (`pesgen payfip anomalies --all`); the payment stays "
            "attached to this title", invoice=r.invoice)))
    return out


def _title_payments(run_id: str, bordereaux: list[int], status: str,
                    *columns: Any) -> sa.Select[Any]:
    """The PayFiP payments of ``status`` whose money is a title of these bordereaux of a
    run (the title the payment follows, ``paid_title_run``, is this run's, the invoice as
    it wrote it, in its collectivity): ``columns`` and the title's IdBord, by IdBord and
    IdPce. What a cancellation (``_paid_cancelled``) and a reinstatement
    (``_paid_reinstated``, ``_refunded_reinstated``) read of the payments."""
    from .payfip.tables import operations, paid_title_run, payments

    return (sa.select(*columns, run_invoices.c.id_bord)
            .select_from(payments)
            .join(operations, operations.c.id_op == payments.c.id_op)
            .join(run_invoices, sa.and_(run_invoices.c.run_id == run_id,
                                        run_invoices.c.invoice == payments.c.invoice,
                                        run_invoices.c.id_coll == payments.c.id_coll))
            .where(payments.c.status == status, paid_title_run(operations.c.run_id) == run_id,
                   run_invoices.c.id_bord.in_(bordereaux))
            .order_by(run_invoices.c.id_bord, run_invoices.c.id_pce))


def _paid_cancelled(conn: Connection, run_id: str, bordereaux: list[int], now: str,
                    reason: str) -> None:
    """A ``paid-cancelled`` anomaly (source ``cancel``) for each title of these bordereaux
    of a run that PayFiP shows paid (its payment's title, ``paid_title_run``, this one's),
    now cancelled: the money is the trésorerie's to apply to the title exported in its
    place or to refund, and `payfip anomalies resolve --applied | --refunded` records
    which (docs/payfip.md)."""
    from .payfip.models import cents_text
    from .payfip.tables import PAID_CANCELLED, anomalies, payments

    rows = conn.execute(_title_payments(run_id, bordereaux, "paid", payments.c.invoice,
                                        payments.c.id_op, payments.c.paid_cents)).all()
    if rows:
        conn.execute(anomalies.insert(), [
            {"at": now, "kind": PAID_CANCELLED, "id_op": r.id_op, "invoice": r.invoice,
             "source": "cancel", "expected": None, "got": None,
             "detail": f"its title, paid {cents_text(r.paid_cents or 0)}, cancelled (IdBord "
                       f"{r.id_bord} of run {run_id}): {reason}"} for r in rows])


def _paid_reinstated(conn: Connection, run_id: str, bordereaux: list[int], now: str,
                     by: str, reason: str) -> list[dict[str, Any]]:
    """After these bordereaux of a run were reinstated: the open ``paid-cancelled``
    anomalies of their titles that PayFiP shows paid by the operation the anomaly names
    (the payment follows this run's title, ``paid_title_run``) are resolved, outcome
    ``reinstated``: the title is active again and that payment its own, nothing left for
    the trésorerie to apply or refund. Each gets an ``anomaly-resolved`` event (source
    ``reinstate``). An anomaly whose answer was recorded already (``--applied``, the
    payment following another title; ``--refunded``, no longer paid) is not one; nor is
    one of a payment that follows another run's title (applied to it, then cancelled
    too: its anomaly is that title's). Returns what was resolved, by IdBord and IdPce."""
    from .payfip.tables import PAID_CANCELLED, anomalies, events, payments

    rows = conn.execute(
        _title_payments(run_id, bordereaux, "paid", anomalies.c.id, payments.c.invoice,
                        payments.c.id_coll, payments.c.id_op, payments.c.paid_cents,
                        payments.c.method, payments.c.paid_at, payments.c.status)
        .join(anomalies, sa.and_(anomalies.c.id_op == payments.c.id_op,
                                 anomalies.c.invoice == payments.c.invoice))
        .where(anomalies.c.kind == PAID_CANCELLED, anomalies.c.resolved_at.is_(None))
        .order_by(anomalies.c.id)).all()
    if not rows:
        return []
    # (PostgreSQL: one resolved meanwhile by `payfip anomalies resolve` is left to it)
    rows = [r for r in rows if conn.execute(anomalies.update().where(
        anomalies.c.id == r.id, anomalies.c.resolved_at.is_(None)).values(
        resolved_at=now, resolved_by=by, outcome="reinstated",
        note=f"run {run_id} reinstated (IdBord {r.id_bord}): {reason}: its title is "
             "active again, paid by this payment")).rowcount == 1]
    if not rows:
        return []
    conn.execute(events.insert(), [
        {"id_coll": r.id_coll, "invoice": r.invoice, "id_op": r.id_op, "at": now,
         "event": "anomaly-resolved", "source": "reinstate", "status": r.status,
         "detail": json.dumps({"anomaly": r.id, "kind": PAID_CANCELLED, "by": by,
                               "outcome": "reinstated", "run": run_id}, sort_keys=True)}
        for r in rows])
    return [{"anomaly": r.id, "kind": PAID_CANCELLED, "invoice": r.invoice,
             "id_op": r.id_op, "id_bord": int(r.id_bord), "paid_cents": r.paid_cents,
             "method": r.method, "paid_at": r.paid_at} for r in rows]


def _refunded_reinstated(conn: Connection, run_id: str, bordereaux: list[int]
                         ) -> list[dict[str, Any]]:
    """The titles of these bordereaux of a run, just reinstated, whose payment the
    trésorerie refunded while they were cancelled (a paid-cancelled anomaly resolved
    ``--refunded``: the payment's status ``refunded``, its money this run's title's): due
    again, by IdBord and IdPce."""
    from .payfip.tables import payments

    rows = conn.execute(_title_payments(run_id, bordereaux, "refunded", payments.c.invoice,
                                        payments.c.id_op, payments.c.paid_cents,
                                        payments.c.method, payments.c.paid_at)).all()
    return [{"invoice": r.invoice, "id_op": r.id_op, "id_bord": int(r.id_bord),
             "paid_cents": r.paid_cents, "method": r.method, "paid_at": r.paid_at}
            for r in rows]


def _note_titles(conn: Connection, run_id: str, invoices: Iterable[str], event: str,
                 source: str, now: str, reason: str) -> None:
    """An ``event`` (``title-cancelled``, ``title-reinstated``) in the PayFiP history of
    each of these invoices of the run that PayFiP knows (a payment row: a link was made
    for it), in their order, with the run and ``reason``; ``payfip payments --history``
    shows it beside the payments. They are read 500 invoices a query and the events
    written in one ``executemany`` (a SELECT and an INSERT per invoice before: 36 000
    statements for a cancellation of 18 000 payments, each a round trip to a PostgreSQL
    server)."""
    from .payfip.tables import events, payments

    detail = json.dumps({"run": run_id, "reason": reason}, sort_keys=True)
    id_coll = sa.select(runs.c.id_coll).where(runs.c.id == run_id).scalar_subquery()
    rows = []
    for chunk in _batches(dict.fromkeys(invoices), _LOOKED_UP):
        paid = {pay.invoice: pay for pay in conn.execute(  # one payment an invoice
            sa.select(payments.c.invoice, payments.c.id_coll, payments.c.status,
                      payments.c.id_op, payments.c.last_id_op).where(
                payments.c.invoice.in_(chunk), payments.c.id_coll == id_coll))}
        rows += [{"id_coll": pay.id_coll, "invoice": invoice,
                  "id_op": pay.id_op or pay.last_id_op, "at": now, "event": event,
                  "source": source, "status": pay.status, "detail": detail}
                 for invoice in chunk if (pay := paid.get(invoice)) is not None]
    if rows:
        conn.execute(events.insert(), rows)


def _taken(rows: Sequence[Any], by_invoice: dict[str, tuple[str, str, int, str]],
           by_debt: dict[str, tuple[str, str, int, str]]
           ) -> tuple[list[Problem], dict[str, set[int]]]:
    """``Store._taken_since`` of these titles, their invoices' and NumDettes' holders
    read (``Store.holders``, ``Store.debt_holders``)."""
    out = []
    holders: dict[str, set[int]] = {}
    for invoice, id_bord, debt in rows:
        if invoice in by_invoice:
            other, run, other_bord, name = by_invoice[invoice]
            holders.setdefault(run, set()).add(other_bord)
            as_ = f" (as {other})" if other != invoice else ""
            out.append(Problem(
                "run.reinstate-taken", f"IdBord {id_bord}: exported again since{as_}, by "
                f"run {run} in {name} (IdBord {other_bord}), which holds it",
                invoice=invoice))
        elif debt and debt in by_debt:
            other, run, other_bord, name = by_debt[debt]
            holders.setdefault(run, set()).add(other_bord)
            out.append(Problem(
                "run.reinstate-taken", f"IdBord {id_bord}: its NumDette {debt} is held "
                f"by invoice {other} of run {run} in {name} (IdBord {other_bord})",
                invoice=invoice))
    return out, holders


def _bordereau_titles(conn: Connection, run_id: str, bordereaux: list[int]
                      ) -> Sequence[Any]:
    """The titles of these bordereaux of a run, in bordereau and IdPce order: invoice as
    written, IdBord, NumDette (as keys.debt_key gives it)."""
    return conn.execute(sa.select(run_invoices.c.invoice, run_invoices.c.id_bord,
                                  run_invoices.c.debt_number)
                        .where(run_invoices.c.run_id == run_id,
                               run_invoices.c.id_bord.in_(bordereaux))
                        .order_by(run_invoices.c.id_bord, run_invoices.c.id_pce)).all()


def _locked_run(conn: Connection, run_id: str) -> Any:
    """The row of a run a cancellation or reinstatement changes. PostgreSQL: read for
    update, so that two of them on one run go in turn, after taking the acknowledgements'
    lock: an acknowledgement recorded meanwhile (`acquit --record`) is seen, or is
    recorded after and sees the change (SQLite: the transaction holds the write lock)."""
    query = sa.select(runs).where(runs.c.id == run_id)
    if conn.dialect.name == "postgresql":
        lock_acknowledgements(conn)
        query = query.with_for_update()
    return conn.execute(query).one()


def _named(run_id: str, every: list[Bordereau], named: Collection[int],
           undone: str) -> dict[int, Bordereau]:
    """The run's bordereaux by IdBord; a StateError (exit 7, as a run the store does not
    hold) naming those of ``named`` it does not have, and its own, ending with what was
    not done (``undone``)."""
    known = {b.id_bord: b for b in every}
    unknown = sorted(set(named) - set(known))
    if unknown:
        raise StateError(
            f"run {run_id} has no bordereau {', '.join(map(str, unknown))}; its "
            f"bordereaux are IdBord {', '.join(str(b.id_bord) for b in every)}; {undone}")
    return known


# the PostgreSQL advisory lock that puts in turn the recordings of acknowledgements and
# the cancellations and PayFiP operations, which read them
_ACK_LOCK = 74657348
# what a wait for it says (Store.waits_for_rows): the lock, and who may hold it
ACK_LOCK_ROWS = "the acknowledgements' lock"
ACK_LOCK_HOLDER = ("a `payfip link` recording its operation, `runs cancel` or `runs "
                   "reinstate`, another `acquit --record`, or another program's session")
# what a cancellation's or reinstatement's wait says (_locked_run takes the
# acknowledgements' lock, then the run's row: either may be the one waited for)
RUN_HOLDER = ("a `payfip link` or payment being recorded for one of its invoices, "
              "another `runs cancel` or `runs reinstate`, an `acquit --record`, or another "
              "program's session")


def _run_rows(run_id: str) -> str:
    """What a cancellation or reinstatement of ``run_id`` waits for (``_locked_run``)."""
    return f"the row of run {run_id} or {ACK_LOCK_ROWS}"


def lock_acknowledgements(conn: Connection, shared: bool = False) -> None:
    """Take, to the transaction's end, the lock that puts in turn the recordings of
    acknowledgements (exclusive) and what reads them to decide (cancellations, exclusive;
    PayFiP operations, ``shared``): on PostgreSQL; SQLite's transactions are in turn."""
    if conn.dialect.name == "postgresql":
        kind = "_shared" if shared else ""
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock{kind}({_ACK_LOCK})")


def _bordereaux_titles(conn: Connection, run_id: str, id_bords: Collection[int],
                       *columns: Any) -> Iterator[Any]:
    """The rows of ``run_invoices`` of some bordereaux of a run (IdBord, IdPce, invoice and
    ``columns``), IN_LIST bordereaux a query."""
    for part in chunks(sorted(set(id_bords))):
        yield from conn.execute(sa.select(
            run_invoices.c.id_bord, run_invoices.c.id_pce, run_invoices.c.invoice, *columns
        ).where(run_invoices.c.run_id == run_id, run_invoices.c.id_bord.in_(part)))


def _input_path(conn: Connection, run_id: str) -> str | None:
    """The absolute path of the input a run read, as its policies recorded it (the folder
    a title's ``record`` position is in); None for a run recorded before pesgen kept it."""
    policies = conn.execute(sa.select(runs.c.policies).where(runs.c.id == run_id)).scalar()
    return json.loads(policies).get("input_path") or None if policies else None


# run_invoices' columns as Store.record_run writes them, in _copy_titles' order
_COPIED = ("run_id", "id_coll", "active", "key_shared", "invoice_key", "invoice", "id_bord",
           "id_pce", "debt_number", "amount", "record", "line_count")


def _title_rows(run_id: str, id_coll: str, part: list[dict[str, Any]]
                ) -> Iterator[tuple[Any, ...]]:
    """``part``'s rows of ``run_invoices``, their values in ``_COPIED``'s order."""
    for inv in part:
        yield (run_id, id_coll, True, False, invoice_key(inv["invoice"]), inv["invoice"],
               inv["id_bord"], inv["id_pce"], inv["debt_number"], inv["amount"],
               inv.get("record"), inv.get("line_count"))


def _copy_titles(conn: Connection, run_id: str, id_coll: str, invoices: SlicedRows) -> None:
    """PostgreSQL: a run's ``run_invoices`` rows sent in one ``COPY … FROM STDIN`` in the
    transaction, in the run's order (their ids as the inserts gave them), the same
    values as SQLite's inserts (``key_shared`` false, the column's default). psycopg's
    executemany sent an INSERT per title (pipelined: one round trip a batch, but as many
    statements for the server to run): recording 20 000 titles took 1.0 to 1.3 s, 0.36
    to 0.44 s in one COPY (docs/performance.md, "Recording a run in the store"); the
    unique indexes refuse a row as they refused the INSERT. An error of the driver is
    raised as SQLAlchemy's would be (an IntegrityError for a refused row:
    RecordConflict; the transaction rolled back by the caller; a connection lost is
    found by the pool's pre-ping before its next use)."""
    raw = conn.connection.driver_connection
    assert raw is not None  # a connection in a transaction
    statement = f"COPY run_invoices ({', '.join(_COPIED)}) FROM STDIN"
    dbapi = conn.dialect.loaded_dbapi
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for part in chunks(invoices, 5000):
                for row in _title_rows(run_id, id_coll, part):
                    copy.write_row(row)
    except dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi.Error,
                                         dialect=conn.dialect) from exc


def _analyze_titles(conn: Connection) -> None:
    """PostgreSQL: the planner's statistics of ``run_invoices`` read again, the titles a
    run is recording (or ``copy_store`` copying) included (ANALYZE counts its own
    transaction's rows), committed with them. The duplicate guard's plan
    (``Store._held``: 500 numbers an ``IN``) follows what they say of the collectivity:
    in a store never analyzed, or for a collectivity they do not know yet, it looks like
    a few rows, and once the statement is prepared (its generic plan) each chunk reads
    every title of the collectivity and compares it with each of the 500 numbers (a
    refused export of 20 000 invoices: 30 s in the store, 1 s with the statistics;
    docs/performance.md, "The store and PayFiP on PostgreSQL"). autovacuum reads them
    again a minute later at best, and only once a tenth of the table has changed.
    ANALYZE reads a sample (at most 30 000 rows, whatever the store's size); its lock,
    held to the commit, waits for no write, only for another ANALYZE (another export
    recording at the same moment). SQLite: nothing (its plans need no statistics)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE run_invoices")


# what `runs cancel --annulled-by-tresorerie` adds to the reason it records
ANNULLED_MARK = "[annulled by the trésorerie, confirmed with --annulled-by-tresorerie"


def annulled_note(accepted: list[Acknowledgement]) -> str:
    """The confirmation that the trésorerie annulled the titles, as the reason records
    it, naming each accepted bordereau with its acquit (none: no acceptance recorded)."""
    if not accepted:
        return f" {ANNULLED_MARK}; no acceptance recorded]"
    return f" {ANNULLED_MARK}: " + "; ".join(
        f"IdBord {a.id_bord} {a.outcome} ({a.file})" for a in accepted) + "]"


def _accepted_refusal(run_id: str, accepted: list[Acknowledgement],
                      online: list[Problem]) -> StateError:
    """`runs cancel` of bordereaux the trésorerie accepted: refused, each named with its
    acquit, and what to do; the PayFiP payments that need --despite-payments too."""
    numbers = ", ".join(str(a.id_bord) for a in accepted)
    message = (
        f"run {run_id}: the trésorerie accepted IdBord {numbers}; nothing cancelled. "
        "Their titles exist at the trésorerie: exported again, their invoices would bill "
        "the families twice. Cancel an accepted bordereau only once the trésorerie has "
        "annulled its titles on its side (a bordereau d'annulation/réduction, made in "
        "Hélios, not by pesgen: ask it); then cancel again with --annulled-by-tresorerie, "
        "which confirms it (recorded with the reason)")
    if online:
        message += (f". Also, {len({p.invoice for p in online})} invoice(s) have PayFiP "
                    "payments, made or pending (below): tell the trésorerie, and add "
                    "--despite-payments")
    return StateError(message, [Problem(
        "run.cancel-accepted", f"IdBord {a.id_bord} {a.outcome} by the trésorerie (recorded "
        f"{a.recorded_at} from {a.file}): its titles exist at the trésorerie",
        record=f"{a.file}:{a.line}") for a in accepted] + list(online))


def with_errors(count: int) -> str:
    """`` with 3 error(s)`` after an acknowledgement's outcome; nothing without error."""
    return f" with {count} error(s)" if count else ""


def _acknowledgement(r: Any) -> Acknowledgement:
    return Acknowledgement(
        run_id=r.run_id, id_bord=r.id_bord, accepted=bool(r.accepted), issued_on=r.issued_on,
        error_count=r.error_count, errors=tuple(json.loads(r.errors)), file=r.name,
        sha256=r.sha256, line=r.line, recorded_at=r.recorded_at,
        superseded_at=r.superseded_at, domain=r.domain)


# the columns of runs a RunRecord is made of (list_runs reads only these)
_RECORD_COLUMNS = ("id", "created_at", "status", "format", "exercise", "first_number",
                   "bordereaux", "titles", "total", "mapping_path", "input_name", "run_date",
                   "out_dir", "pesgen_version", "cancel_reason", "typ_bord", "cod_bud",
                   "id_coll")


def _record(r: Any, cancelled: Collection[int] = (),
            figures: tuple[int, str] | None = None) -> RunRecord:
    return RunRecord(id=r.id, created_at=r.created_at, status=r.status, format=r.format,
                     exercise=r.exercise, first_number=r.first_number, bordereaux=r.bordereaux,
                     titles=r.titles, total=r.total, mapping_path=r.mapping_path,
                     input_name=r.input_name, run_date=r.run_date, out_dir=r.out_dir,
                     pesgen_version=r.pesgen_version, cancel_reason=r.cancel_reason,
                     cancelled_bordereaux=tuple(cancelled), typ_bord=r.typ_bord,
                     cod_bud=r.cod_bud, id_coll=r.id_coll, cancelled_figures=figures)


def _cancelled_figures(conn: Connection, run_id: str | None = None
                       ) -> dict[str, tuple[int, str]]:
    """Per run still committed (``run_id``: that one only), the titles and total of its
    bordereaux cancelled on their own: the part of the run's recorded figures freed (its
    invoices may be exported again). Each bordereau's are its first file's, as
    ``bordereaux`` reads them (every file of a bordereau records its titles and total): a
    few rows, whatever the size of the run. A wholly cancelled run is left out: its
    status says it all."""
    query = (sa.select(run_files.c.run_id, run_files.c.id_bord, run_files.c.titles,
                       run_files.c.total)
             .join(cancelled_bordereaux, sa.and_(
                 cancelled_bordereaux.c.run_id == run_files.c.run_id,
                 cancelled_bordereaux.c.id_bord == run_files.c.id_bord))
             .join(runs, runs.c.id == run_files.c.run_id)
             .where(runs.c.status != "cancelled")
             .order_by(run_files.c.id))
    if run_id is not None:
        query = query.where(run_files.c.run_id == run_id)
    firsts: dict[tuple[str, int], Any] = {}
    for f in conn.execute(query):
        firsts.setdefault((f.run_id, f.id_bord), f)
    sums: dict[str, tuple[int, Decimal]] = {}
    for (run, _id_bord), f in firsts.items():
        titles, total = sums.get(run, (0, Decimal(0)))
        sums[run] = (titles + f.titles, total + Decimal(f.total))
    return {run: (titles, f"{total:.2f}") for run, (titles, total) in sums.items()}


def new_run_id() -> str:
    return str(uuid.uuid4())


def pack(data: bytes) -> bytes:
    return zlib.compress(data, 6)


def pack_file(path: Path) -> tuple[bytes, str]:
    """A file packed as ``pack`` packs its bytes, and its sha256, read 1 MiB at a time:
    the input of a run of 100 000 invoices (110 MiB) is never held whole."""
    digest, packer, parts = hashlib.sha256(), zlib.compressobj(6), []
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    return b"".join(parts), digest.hexdigest()


def unpacked(blob: bytes) -> Iterator[bytes]:
    """What ``pack`` packed, unpacked 64 KiB of the blob at a time: a run's input
    (110 MiB at 100 000 invoices) written back need not be held whole."""
    unpacker, view = zlib.decompressobj(), memoryview(blob)
    for start in range(0, len(view), 1 << 16):
        yield unpacker.decompress(view[start:start + (1 << 16)])
    yield unpacker.flush()


def unpack(blob: bytes) -> bytes:
    return zlib.decompress(blob)


def fields_of(obj: Any) -> dict[str, Any]:
    """A dataclass's fields, as a run's record keeps them (not copied deep, as
    ``dataclasses.asdict`` does)."""
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def pack_notes(notes: list[Any] | Notes) -> str:
    """A run's policy notes (dataclasses) as its record keeps them: a JSON list,
    compressed and in base64 (``notes_z`` of the run's policies; ``unpack_notes``),
    made one note at a time. A run of 100 000 invoices has some 250 000 notes, 30 MB of
    JSON: neither that text nor a dict per note is ever held whole. An export's notes
    come packed already (``notes.Notes``, the same text)."""
    if isinstance(notes, Notes):
        return notes.packed()
    packer, parts, sep = zlib.compressobj(6), [], b"["
    for note in notes:
        parts.append(packer.compress(sep + pack_json(fields_of(note)).encode("utf-8")))
        sep = b","
    parts.append(packer.compress(b"]" if notes else b"[]"))
    parts.append(packer.flush())
    return base64.b64encode(b"".join(parts)).decode("ascii")


def invoice_notes(policies: dict[str, Any], invoice: str) -> list[dict[str, Any]]:
    """The policy notes of a run's recorded policies about ``invoice`` (as the run wrote
    it; the run's own notes, ``*``, are none of them), in the run's order: the notes are
    read one at a time from their text, and only the invoice's kept (a run of 100 000
    invoices has some 250 000: ``runs find`` holds no dict per note, as ``unpack_notes``
    does for ``runs show``)."""
    if "notes_z" not in policies:
        return [n for n in policies.get("notes", []) if n.get("invoice") == invoice]
    text = _packed_notes(policies).decode("utf-8")
    # a note naming the invoice holds its number as JSON writes it: the others are
    # skipped without being parsed when no note does
    if json.dumps(invoice, ensure_ascii=False) not in text:
        return []
    decoder = json.JSONDecoder()
    found, at, end = [], 1, len(text) - 1  # inside the list's brackets
    while at < end:
        note, at = decoder.raw_decode(text, at)
        if note.get("invoice") == invoice:
            found.append(note)
        while at < end and text[at] in ", \n":
            at += 1
    return found


def unpack_notes(policies: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy notes of a run's recorded policies: packed (``notes_z``), or a plain
    list (``notes``: runs recorded before pesgen packed them)."""
    if "notes_z" in policies:
        return json.loads(_packed_notes(policies))
    return policies.get("notes", [])


def _packed_notes(policies: dict[str, Any]) -> bytes:
    """The JSON list of a run's packed policy notes (``notes_z``: ``pack_notes``')."""
    return zlib.decompress(base64.b64decode(policies["notes_z"]))


def _check_fits(table: sa.Table, rows: list[dict[str, Any]], dialect: str) -> None:
    """Refuse, naming the row, a value longer than its column on a target that enforces
    VARCHAR lengths (PostgreSQL): a SQLite store, which enforces none, may hold one."""
    if dialect == "sqlite":
        return
    limits = {c.name: c.type.length for c in table.columns
              if isinstance(c.type, sa.String) and c.type.length}
    for row in rows:
        for name, length in limits.items():
            value = row.get(name)
            if isinstance(value, str) and len(value) > length:
                pk = ", ".join(f"{c.name} {row.get(c.name)}" for c in table.primary_key.columns)
                raise StateError(f"cannot copy {table.name} ({pk}): its {name} is "
                                 f"{len(value)} characters, the target holds {length} "
                                 f"('{value[:40]}…'); nothing copied")


def copy_store(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every table of one store into another, empty, store (SQLite -> PostgreSQL).
    Both are migrated to the current schema first; the copy is one transaction on the
    target. Returns the number of rows copied per table."""
    source, target = Store(source_url, must_exist=True), Store(target_url)
    src_meta = sa.MetaData()
    src_meta.reflect(bind=source.engine)
    dst_meta = sa.MetaData()
    dst_meta.reflect(bind=target.engine)
    counts: dict[str, int] = {}
    with source.engine.connect() as src, target.transaction() as dst:
        for table in dst_meta.sorted_tables:
            if table.name == schema_table.name:
                continue
            if dst.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                raise StateError(f"target store is not empty (table {table.name}); "
                                 "copy only into a new database")
        for table in dst_meta.sorted_tables:
            if table.name == schema_table.name or table.name not in src_meta.tables:
                continue
            rows = [dict(r._mapping) for r in src.execute(sa.select(src_meta.tables[table.name]))]
            _check_fits(table, rows, dst.dialect.name)
            if rows:
                dst.execute(table.insert(), rows)
            counts[table.name] = len(rows)
            if dst.dialect.name == "postgresql":
                pk = list(table.primary_key.columns)
                if len(pk) == 1 and pk[0].autoincrement is not False and \
                        isinstance(pk[0].type, sa.Integer):
                    dst.execute(sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                        f"COALESCE((SELECT MAX({pk[0].name}) FROM {table.name}), 0) + 1, false)"))
        _analyze_titles(dst)  # the first export's guard plans with them
    return counts
