"""The state store's queries at size: what the database does with them (its plan), not
how long they take. An export checks each of its invoice numbers and NumDettes against
every active title of the collectivity; a check that reads all of those for each chunk
of 500 numbers grows with the store times the run (docs/performance.md, "Scale of the
other commands")."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from pesgen.keys import invoice_key
from pesgen.runs import export_recorded
from pesgen.store import Store, run_invoices

from .conftest import EXAMPLES, MAPPINGS

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = EXAMPLES / "school-export.json"
ID_COLL = "21450999400015"  # the example mapping's SIRET


def _statements(store: Store, call) -> list[tuple[str, object]]:
    """The statements ``call`` sends to the store's database, with their parameters."""
    seen: list[tuple[str, object]] = []

    def listen(_conn, _cursor, statement, parameters, _context, _many) -> None:
        seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        call()
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    return seen


def _store_of_some_size(db_url: str, tmp_path, titles: int = 2000) -> Store:
    """A store holding the example's run and ``titles`` more active titles of its
    collectivity (rows of that run, as a store holds after a few terms), its PostgreSQL
    statistics up to date: what the planner sees of a store in use. SQLite keeps none
    (pesgen never runs ANALYZE): its plan must be right without them."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "out", RUN)
    rows = [{"run_id": run.run_id, "id_coll": ID_COLL, "invoice": f"FX-2025-{n:05d}",
             "invoice_key": invoice_key(f"FX-2025-{n:05d}"), "debt_number": f"2025{n:05d}",
             "id_bord": 1, "id_pce": 100 + n, "amount": "1.00", "active": True}
            for n in range(titles)]
    with store.engine.begin() as conn:
        conn.execute(run_invoices.insert(), rows)
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:  # statistics are kept once committed
            conn.exec_driver_sql("ANALYZE run_invoices")
    return store


def _plan(conn: sa.Connection, statement: str, parameters: object) -> str:
    """The database's plan of a statement, as text. PostgreSQL is told to scan the
    table only when no index can serve (at the test's size a scan may cost less than
    the lookups; in a store of some years it does not: docs/performance.md)."""
    if conn.dialect.name == "sqlite":
        return "\n".join(row[-1] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters))
    conn.exec_driver_sql("SET enable_seqscan = off")
    return "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement,
                                                            parameters))


@pytest.mark.parametrize(("guard", "column", "index", "values"), [
    ("holders", "invoice_key", "ix_active_invoice_key",
     [f"FA-2026-{n:05d}" for n in range(101, 151)]),
    ("debt_holders", "debt_number", "uq_active_debt_number",
     [f"2026{n:05d}" for n in range(101, 151)]),
])
def test_the_duplicate_guards_look_each_number_up_in_an_index(db_url, tmp_path, guard,
                                                               column, index, values):
    """Each chunk of numbers (500; 50 here, in the same statement) is looked up value by
    value in an index of the active titles, on SQLite and PostgreSQL alike: not every
    active title of the collectivity read again (a scan, or an index searched by
    collectivity only, or by the range of every number not NULL), which made the check
    grow with the store."""
    store = _store_of_some_size(db_url, tmp_path)
    with store.engine.connect() as conn:
        [(statement, parameters)] = [  # (SQLite's BEGIN aside)
            (statement, parameters) for statement, parameters in _statements(
                store, lambda: getattr(store, guard)(conn, ID_COLL, values))
            if "run_invoices" in statement]
        plan = _plan(conn, statement, parameters)
    if conn.dialect.name == "sqlite":
        assert f"SEARCH run_invoices USING INDEX {index} (id_coll=? AND {column}=?)" in plan, plan
    else:
        looked_up = [line for line in plan.splitlines()
                     if "Index Cond" in line and f"{column})::text = ANY" in line]
        assert looked_up and f" {index} " in plan, plan
    assert "SCAN run_invoices" not in plan and "Seq Scan on run_invoices" not in plan, plan


def test_the_duplicate_guards_read_each_bordereau_s_first_file_once(db_url, tmp_path):
    """A holder is named with its bordereau's first file. Each title's look-up read it
    again (a subquery of the guard's query, run_files indexed by run alone): all of its
    run's files for each title held, 2 000 for a run of 1 000 bordereaux, 65 to 113 s
    for 200 000 numbers all held on PostgreSQL (docs/performance.md). The files are read
    once the numbers are found, a run's bordereaux 500 a statement: 1 200 numbers (3
    chunks) of two bordereaux, one of which has no file, read run_files once, and each
    holder names its bordereau's first file, or '?'."""
    store = _store_of_some_size(db_url, tmp_path)
    with store.engine.begin() as conn:  # 200 of the titles moved to a bordereau of no file
        conn.execute(run_invoices.update().where(
            run_invoices.c.invoice.in_([f"FX-2025-{n:05d}" for n in range(200)]))
            .values(id_bord=99))
    values = [f"FX-2025-{n:05d}" for n in range(1200)]
    found: dict = {}
    with store.engine.connect() as conn:
        sent = _statements(store, lambda: found.update(store.holders(conn, ID_COLL, values)))
        [run_id] = {r for _inv, r, _b, _f in found.values()}
        [first] = store.recorded_files(conn, [run_id])[run_id]["files"][:1]
    assert len(found) == 1200
    assert {(b, f) for _inv, _r, b, f in found.values()} == {(1, first["name"]), (99, "?")}
    assert first["id_bord"] == 1 and first["name"].endswith(".xml"), first
    assert len([s for s, _ in sent if "run_invoices" in s]) == 3, sent
    assert len([s for s, _ in sent if "run_files" in s]) == 1, sent


def test_a_schema_9_store_gets_the_index_of_the_active_invoice_keys(db_url, monkeypatch):
    """Migration 10 creates the index the invoice guard looks numbers up in, in a store
    an older pesgen made (and in a new one)."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:9])
        old = Store(db_url)
    names = {i["name"] for i in sa.inspect(old.engine).get_indexes("run_invoices")}
    assert "uq_active_invoice_key" in names and "ix_active_invoice_key" not in names
    old.engine.dispose()
    store = Store(db_url)
    indexes = {i["name"]: i for i in sa.inspect(store.engine).get_indexes("run_invoices")}
    assert indexes["ix_active_invoice_key"]["column_names"] == ["id_coll", "invoice_key"]
    assert not indexes["ix_active_invoice_key"]["unique"]


def test_a_payfip_title_is_looked_up_by_its_run_and_invoice_in_an_index(db_url, tmp_path):
    """`payfip payments` finds each payment's title by the run and the invoice its
    operation names: in ix_run_invoices_title (migration 11), both at once. SQLite,
    without statistics, searched by the run (ix_run_invoices_run_id) and read every
    title of the run for each payment: 46 s of CPU for 20 000 payments of one run."""
    from pesgen.payfip import ledger

    store = _store_of_some_size(db_url, tmp_path)
    titles = ledger._payments_with_titles()
    query = sa.select(titles).order_by(titles.c.updated_at, titles.c.invoice)
    with store.engine.connect() as conn:
        plan = _plan(conn, str(query.compile(conn, compile_kwargs={"literal_binds": True})),
                     ())
    if conn.dialect.name == "sqlite":
        assert ("SEARCH title USING INDEX ix_run_invoices_title (run_id=? AND invoice=?)"
                in plan), plan
    else:  # no payment in this store: PostgreSQL needs only the index to be there
        assert "Seq Scan on run_invoices" not in plan, plan


def _paid_by_key(store: Store) -> object:
    from pesgen.payfip import ledger

    return ledger.paid_by_key(store, ID_COLL, ["FA-2026-00101", "fa-1"])


def _paid_online(store: Store) -> object:
    from pesgen.payfip import datamatrix

    return datamatrix._paid_online(store, {"id": "r", "id_coll": ID_COLL},
                                   ["FA-2026-00101", "fa-1"])


def _store_paid_online(store: Store) -> object:
    return store.paid_online(ID_COLL, ["FA-2026-00101", "fa-1"])


@pytest.mark.parametrize("read_paid", [_paid_by_key, _paid_online, _store_paid_online],
                         ids=["link", "datamatrix", "export"])
def test_the_payments_of_invoices_are_looked_up_in_an_index(db_url, tmp_path, read_paid):
    """`payfip link` reads the payments recorded paid of its invoices by key
    (``ledger.paid_by_key``): each query a search of ix_payfip_payment_key (migration
    17) by the collectivity and the key, not every payment of the collectivity, which
    it read for each command before (SQLite took the collectivity's unique index alone
    for a query with an OR of the keys and of a NULL key). `payfip datamatrix`, which
    leaves out the titles PayFiP shows paid, reads them so too
    (``datamatrix._paid_online``), where it read every paid payment of the collectivity
    for each run before; and an export, which notes the invoices paid through a
    cancelled title (``Store.paid_online``), where SQLite read every paid payment of
    the collectivity for each chunk of 500 numbers (0.8 s of CPU for 20 000 numbers
    over 10 000 paid, 0.06 s now: docs/performance.md)."""
    store = _store_of_some_size(db_url, tmp_path, titles=10)
    with store.engine.connect() as conn:
        read = [(statement, parameters) for statement, parameters in _statements(
            store, lambda: read_paid(store)) if "FROM payfip_payments" in statement]
        assert len(read) == 2, read
        for statement, parameters in read:
            plan = _plan(conn, statement, parameters)
            if conn.dialect.name == "sqlite":
                assert ("SEARCH payfip_payments USING INDEX ix_payfip_payment_key "
                        "(id_coll=? AND invoice_key=?)") in plan, plan
            elif "IS NULL" in statement:
                # the rows with no key (none written by this pesgen): on a table this
                # small PostgreSQL may take the collectivity's unique index instead
                assert "Index" in plan, plan
            else:
                assert " ix_payfip_payment_key " in plan, plan
            assert "SCAN payfip_payments" not in plan, plan
            assert "Seq Scan on payfip_payments" not in plan, plan


def test_a_schema_10_store_gets_the_index_of_the_titles_by_run_and_invoice(db_url,
                                                                          monkeypatch):
    """Migration 11 creates the index of the titles by run and invoice, in a store an
    older pesgen made (and in a new one)."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:10])
        old = Store(db_url)
    names = {i["name"] for i in sa.inspect(old.engine).get_indexes("run_invoices")}
    assert "ix_active_invoice_key" in names and "ix_run_invoices_title" not in names
    old.engine.dispose()
    store = Store(db_url)
    indexes = {i["name"]: i for i in sa.inspect(store.engine).get_indexes("run_invoices")}
    assert indexes["ix_run_invoices_title"]["column_names"] == ["run_id", "invoice"]


def _without_autovacuum(store: Store) -> bool:
    """PostgreSQL: autovacuum kept off the titles (what a test then sees of their
    statistics is pesgen's own doing); False on SQLite."""
    if store.engine.dialect.name != "postgresql":
        return False
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE run_invoices SET (autovacuum_enabled = false)")
    return True


def _statistics_count(conn: sa.Connection, titles: int) -> None:
    """PostgreSQL's statistics of run_invoices count its ``titles`` rows (the ANALYZE
    read them all); SQLite has none (sqlite_stat1 is what ANALYZE would make)."""
    assert titles > 0
    if conn.dialect.name == "postgresql":
        counted = conn.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = 'run_invoices'::regclass").scalar()
        assert counted == titles, (counted, titles)
    else:
        assert not list(conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'"))


def test_a_run_recorded_leaves_the_planner_statistics_of_its_titles(db_url, tmp_path):
    """PostgreSQL: recording a run reads run_invoices' statistics again (ANALYZE, in its
    transaction: its own titles counted). A store without them (a new one, or one whose
    statistics predate a collectivity; autovacuum is off here, as good as it is for a
    minute after a run and until a tenth of the table has changed) plans the duplicate
    guard's chunks as a few rows, each reading every title of the collectivity: a
    refused export of 20 000 invoices spent 30 s in the store, 1 s with the statistics
    (docs/performance.md). SQLite keeps none, and must not start: the plans the tests
    above read are those of a store without them."""
    store = Store(db_url)
    postgresql = _without_autovacuum(store)
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "out", RUN)
    with store.engine.connect() as conn:
        _statistics_count(conn, conn.execute(
            sa.select(sa.func.count()).select_from(run_invoices)).scalar())
        if postgresql:
            known = set(conn.exec_driver_sql(
                "SELECT attname FROM pg_stats WHERE tablename = 'run_invoices'").scalars())
            assert {"id_coll", "invoice_key", "debt_number", "active"} <= known, known


def test_a_store_copied_to_postgresql_has_the_statistics_of_its_titles(db_url, tmp_path):
    """`pesgen store copy` loads every title at once: the first export into the copy
    checks its numbers against them with the statistics (see the test above), not
    a minute later when autovacuum has read them, if it has."""
    from pesgen.store import copy_store

    source = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = Store(source)
    export_recorded(lambda: old, MAPPING, EXAMPLE, tmp_path / "out", RUN)
    target = Store(db_url)
    _without_autovacuum(target)
    titles = copy_store(source, db_url)["run_invoices"]
    with target.engine.connect() as conn:
        _statistics_count(conn, titles)


def test_runs_cancel_reads_the_anomalies_and_payments_once_not_per_operation(db_url,
                                                                             tmp_path):
    """`runs cancel` lists the PayFiP operations of the titles it would cancel
    (``store._online_payments``) with what the anomalies and payments say of each (an
    amount-mismatch, a second payment, money applied to this title or refunded): each
    read once for the statement, as a list (SQLite's LIST SUBQUERY). payfip_payments is
    not indexed by operation (nor was payfip_anomalies before schema 18): subqueries
    correlated to each operation read both tables whole again for each one, 120 s of CPU
    for a run of 20 000 titles in a store of 13 000 anomalies (docs/performance.md,
    "held-back at scale")."""
    from pesgen import store as st

    store = _store_of_some_size(db_url, tmp_path, titles=10)
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plan read the tables per operation; PostgreSQL's was not "
                    "measured at size")
    with store.engine.connect() as conn:
        run_id = conn.execute(sa.text("SELECT id FROM runs")).scalar_one()
        [(statement, parameters)] = [
            (statement, parameters) for statement, parameters in _statements(
                store, lambda: st._online_payments(conn, run_id, [1]))
            if "FROM payfip_operations" in statement]
        plan = _plan(conn, statement, parameters)
    assert "CORRELATED" not in plan, plan
    assert plan.count("LIST SUBQUERY") == 4, plan


def _anomalies_of(conn: sa.Connection) -> list[tuple[object, ...]]:
    from pesgen.payfip.tables import anomalies

    return [tuple(r) for r in conn.execute(sa.select(anomalies).order_by(anomalies.c.id))]


def test_a_schema_17_store_gets_its_anomalies_indexed_by_operation(db_url, monkeypatch):
    """Migration 18 indexes the anomalies by their operation, in a store an older pesgen
    made (and in a new one): every anomaly kept as it was, open or resolved, with or
    without an operation."""
    import pesgen.store as st
    from pesgen.payfip.tables import anomalies

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:17])
        old = Store(db_url)
    assert "ix_payfip_anomalies_id_op" not in {
        i["name"] for i in sa.inspect(old.engine).get_indexes("payfip_anomalies")}
    with old.engine.begin() as conn:
        conn.execute(anomalies.insert(), [
            {"at": "2026-11-24T10:00:00Z", "kind": "amount-mismatch", "id_op": "op-1",
             "invoice": "FA-2026-00101", "source": "notification", "expected": "18750",
             "got": "18700", "detail": "PayFiP reported another amount"},
            {"at": "2026-11-24T11:00:00Z", "kind": "unknown-idop", "id_op": "op-x",
             "invoice": None, "source": "notification", "expected": None, "got": None,
             "detail": "a result for an operation pesgen never issued"},
            {"at": "2026-11-25T09:00:00Z", "kind": "paid-cancelled", "id_op": "op-1",
             "invoice": "FA-2026-00101", "source": "cancel", "expected": None, "got": None,
             "detail": "its title cancelled", "resolved_at": "2026-11-26T09:00:00Z",
             "resolved_by": "support", "note": "refunded", "outcome": "refunded"},
            {"at": "2026-11-25T09:30:00Z", "kind": "lookup-refused", "id_op": None,
             "invoice": "FA-2026-00102", "source": "reconcile", "expected": None,
             "got": None, "detail": None}])
        before = _anomalies_of(conn)
    old.engine.dispose()
    store = Store(db_url)
    with store.engine.connect() as conn:
        assert _anomalies_of(conn) == before
        indexes = {i["name"]: i for i in sa.inspect(conn).get_indexes("payfip_anomalies")}
    assert indexes["ix_payfip_anomalies_id_op"]["column_names"] == ["id_op"]
    assert not indexes["ix_payfip_anomalies_id_op"]["unique"]
    store.engine.dispose()


def _open_anomaly_ops(store: Store) -> object:
    from pesgen.payfip import ledger

    return ledger.open_anomaly_ops(store, ["op-1", "op-2"], kind="run-cancelled")


def _reported_amount(store: Store) -> object:
    from pesgen.payfip.tables import operations, reported_amount

    with store.engine.connect() as conn:
        return conn.execute(sa.select(operations.c.id_op,
                                      reported_amount(operations.c.id_op))).all()


@pytest.mark.parametrize("look_up", [_open_anomaly_ops, _paid_by_key, _reported_amount],
                         ids=["open", "link", "reported"])
def test_the_anomalies_of_operations_are_looked_up_in_an_index(db_url, tmp_path, look_up):
    """Each read of an operation's anomalies searches ix_payfip_anomalies_id_op
    (migration 18): the open ones of operations given (``ledger.open_anomaly_ops``, 500
    a query, for every paid-cancelled and answered operation `payfip payments` notes),
    the open paid-cancelled ones of the payments a link finds paid
    (``ledger.paid_by_key``), the amount PayFiP reported for an operation
    (``tables.reported_amount``, correlated to each). Without the index each query read
    every anomaly: `payfip payments` of 20 000 titles over a million anomalies spent
    three quarters of its CPU so (docs/performance.md, "held-back at scale")."""
    from pesgen.payfip.tables import operations

    store = _store_of_some_size(db_url, tmp_path, titles=10)
    with store.engine.begin() as conn:  # an operation for each paid by key to name
        conn.execute(operations.insert(), {
            "id_op": "op-1", "id_coll": ID_COLL, "invoice": "FA-2026-00101",
            "numcli": "012345", "exer": "2026", "refdet": "FA202600101",
            "amount_cents": 18750, "mel": "famille@example.org", "objet": "FACTURE",
            "saisie": "W", "endpoint": "http://127.0.0.1:8700/tpa",
            "created_at": "2026-11-23T18:00:00Z", "status": "paid"})
    if look_up is _paid_by_key:  # its anomalies are read for the payments found only
        from pesgen.payfip.tables import payments

        with store.engine.begin() as conn:
            conn.execute(payments.insert(), {
                "id_coll": ID_COLL, "invoice": "FA-2026-00101", "status": "paid",
                "invoice_key": "fa-2026-00101", "amount_cents": 18750,
                "paid_cents": 18750, "id_op": "op-1", "last_id_op": "op-1",
                "refdet": "FA202600101", "created_at": "2026-11-23T18:00:00Z",
                "updated_at": "2026-11-23T18:00:00Z"})
    with store.engine.connect() as conn:
        read = [(statement, parameters) for statement, parameters in _statements(
            store, lambda: look_up(store)) if "payfip_anomalies" in statement]
        assert len(read) == 1, read
        [(statement, parameters)] = read
        plan = _plan(conn, statement, parameters)
    table = "reported" if look_up is _reported_amount else "payfip_anomalies"
    if conn.dialect.name == "sqlite":
        assert (f"SEARCH {table} USING INDEX ix_payfip_anomalies_id_op (id_op=?)"
                in plan), plan
    else:
        assert " ix_payfip_anomalies_id_op " in plan, plan
    assert f"SCAN {table}" not in plan and "Seq Scan on payfip_anomalies" not in plan, plan


def test_the_tables_declared_are_those_of_a_store_migrated(db_url):
    """The tables pesgen's queries are written against (``store.metadata``,
    ``payfip.tables.metadata``) are those the migrations make, with the same columns and
    indexes: a store is only ever made by its migrations, and what one of them adds is
    declared beside its table."""
    from pesgen.payfip import tables
    from pesgen.store import metadata

    store = Store(db_url)
    seen = sa.inspect(store.engine)
    declared = [t for meta in (metadata, tables.metadata) for t in meta.sorted_tables]
    assert sorted(t.name for t in declared) == sorted(seen.get_table_names())
    for table in declared:
        assert {c.name for c in table.columns} == {
            c["name"] for c in seen.get_columns(table.name)}, table.name
        # (PostgreSQL lists the index of each unique constraint too: not an index made)
        assert {i.name: ([c.name for c in i.columns], bool(i.unique))
                for i in table.indexes} == {
            i["name"]: (i["column_names"], bool(i["unique"]))
            for i in seen.get_indexes(table.name)
            if not i.get("duplicates_constraint")}, table.name
    store.engine.dispose()


def test_a_run_s_titles_reach_postgresql_in_one_statement_as_sqlite_records_them(tmp_path):
    """PostgreSQL: a run's titles go to run_invoices in one COPY, not an INSERT per title
    (psycopg's executemany runs the statement once per row: 20 000 for an export of
    20 000 invoices, held under the sequence's lock; docs/performance.md, "Recording a
    run in the store"). What is recorded is what SQLite records of the same export, row
    for row in the same order, the run's id aside."""
    import json

    from .conftest import state_database

    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    model = data["invoices"][0]
    data["invoices"] = [dict(model, number=f"FA-2026-{n:05d}") for n in range(1000, 1300)]
    source = tmp_path / "many.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    recorded = {}
    for kind in ("sqlite", "postgresql"):
        with state_database(kind, tmp_path) as url:
            store = Store(url)  # its schema made before the statements are watched
            runs: list = []
            seen = _statements(store, lambda: runs.append(export_recorded(  # noqa: B023
                lambda: store, MAPPING, source, tmp_path / kind, RUN)))  # noqa: B023
            if kind == "postgresql":
                many = [(statement, len(parameters)) for statement, parameters in seen
                        if isinstance(parameters, list | tuple) and len(parameters) > 1
                        and "INSERT INTO run_invoices" in statement]
                assert many == []  # the titles in a COPY, which the event does not see
                assert len(seen) < 60, len(seen)  # 25: none per title either
            with store.engine.connect() as conn:
                rows = conn.execute(sa.select(run_invoices).order_by(run_invoices.c.id)).all()
            recorded[kind] = [{**r._mapping, "run_id": r.run_id == runs[0].run_id}
                              for r in rows]
            store.engine.dispose()
    assert len(recorded["sqlite"]) == 300
    assert recorded["postgresql"] == recorded["sqlite"]


def _store_of_some_runs(db_url: str, tmp_path, others: int = 300) -> tuple[Store, int]:
    """A store holding the example's run (IdBord 1 of its sequence, then cancelled, no
    acknowledgement) and ``others`` runs of other collectivities (copies of its row), its
    PostgreSQL statistics up to date: (the store, the number its next run takes)."""
    from pesgen.store import runs

    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "out", RUN)
    store.cancel(run.run_id, "wrong term exported, never sent")
    with store.engine.begin() as conn:
        row = dict(conn.execute(sa.select(runs).where(runs.c.id == run.run_id)).one()._mapping)
        conn.execute(runs.insert(), [{**row, "id": f"other-{n:05d}",
                                      "id_coll": f"2199{n % 50:010d}", "first_number": n}
                                     for n in range(1, others + 1)])
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE runs")
    return store, run.first_number + 1


def test_the_numbers_cancelled_before_sending_are_read_by_the_runs_index(db_url, tmp_path):
    """What every PES export reads for its note numbering_gap (``Store.numbering_gap``:
    the largest number its sequence gave, then ``unsent``, each branch of it the
    sequence's runs) searches ix_runs_sequence (migration 20): each statement scanned
    every run of the store (their blobs with them), 0.6 to 0.7 s of each export at
    50 000 runs on SQLite and `numbering show` of a store's sequences 5 minutes
    (docs/performance.md, "numbering_gap and unsent at scale")."""
    store, first = _store_of_some_runs(db_url, tmp_path)
    key = (ID_COLL, "00", 2026, "06")
    with store.engine.connect() as conn:
        sent = [(s, p) for s, p in _statements(
            store, lambda: store.numbering_gap(conn, key, first)) if "runs" in s]
        assert [u.id_bord for u in store.numbering_gap(conn, key, first)] == [1]
        assert len(sent) == 2, sent  # the largest number given, then the unsent ones
        plans = [_plan(conn, s, p) for s, p in sent]
    for plan in plans:
        if conn.dialect.name == "sqlite":
            assert ("SEARCH runs USING INDEX ix_runs_sequence (id_coll=? AND cod_bud=? AND "
                    "exercise=? AND typ_bord=?)") in plan, plan
        else:
            assert " ix_runs_sequence " in plan, plan
        assert "SCAN runs" not in plan and "Seq Scan on runs" not in plan, plan


def test_a_schema_19_store_gets_its_runs_indexed_by_numbering(db_url, monkeypatch):
    """Migration 20 indexes the runs by their numbering (SIRET, budget, exercise,
    TypBord), in a store an older pesgen made (and in a new one)."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:19])
        old = Store(db_url)
    assert "ix_runs_sequence" not in {i["name"] for i in sa.inspect(old.engine).get_indexes(
        "runs")}
    old.engine.dispose()
    store = Store(db_url)
    assert store.schema_version() == len(st.MIGRATIONS) >= 20
    indexes = {i["name"]: i for i in sa.inspect(store.engine).get_indexes("runs")}
    assert indexes["ix_runs_sequence"]["column_names"] == ["id_coll", "cod_bud", "exercise",
                                                           "typ_bord"]
    assert not indexes["ix_runs_sequence"]["unique"]
    store.engine.dispose()
