"""Migration 12: the indexes of payfip_operations' reads (the refdets in use, the open
operations, an invoice's abandoned operations), on SQLite and PostgreSQL; what the
database does with the reads (their plan), not how long they take (that is
benchmarks/bench_payfip.py's `queries`, docs/performance.md)."""

from __future__ import annotations

import sqlalchemy as sa

from pesgen.payfip import ledger
from pesgen.runs import export_recorded
from pesgen.store import Store

from .test_store_plans import EXAMPLE, ID_COLL, MAPPING, RUN, _plan, _statements

INDEXES = {"ix_payfip_operations_open": ["status", "created_at", "id_op"],
           "ix_payfip_operations_coll_invoice": ["id_coll", "invoice"],
           "ix_payfip_operations_numcli": ["numcli"]}


def _operations(store: Store, run_id: str, count: int = 3) -> None:
    for n in range(count):
        invoice = f"FA-2026-{101 + n:05d}"
        ledger.record_operation(store, {
            "id_op": f"op-{n}", "id_coll": ID_COLL, "invoice": invoice, "run_id": run_id,
            "numcli": "123456", "exer": "2026", "refdet": invoice.replace("-", ""),
            "amount_cents": 18750, "mel": "famille@example.org", "objet": "Cantine",
            "saisie": "W", "endpoint": "http://127.0.0.1:1/"})


def test_a_schema_11_store_with_operations_gets_the_indexes(db_url, tmp_path, monkeypatch):
    """Migration 12 creates them in a store an older pesgen made and used (its
    operations kept and read as before), and in a new one."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:11])
        old = Store(db_url)
        run = export_recorded(lambda: old, MAPPING, EXAMPLE, tmp_path / "o", RUN).run_id
        _operations(old, run)
        assert old.schema_version() == 11
    names = {i["name"] for i in sa.inspect(old.engine).get_indexes("payfip_operations")}
    assert not names & set(INDEXES)
    old.engine.dispose()
    store = Store(db_url)
    assert store.schema_version() == 12
    indexes = {i["name"]: i for i in sa.inspect(store.engine).get_indexes("payfip_operations")}
    assert {name: indexes[name]["column_names"] for name in INDEXES} == INDEXES
    assert ledger.open_operation_ids(store) == ["op-0", "op-1", "op-2"]
    assert [r[1] for r in ledger.refdets_used(store, ID_COLL, "123456")] == [
        "op-0", "op-1", "op-2"]
    fresh = Store(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert set(INDEXES) <= {i["name"] for i in sa.inspect(fresh.engine).get_indexes(
        "payfip_operations")}


def _plans(store: Store) -> dict[str, str]:
    calls = {"refdets_used": lambda: ledger.refdets_used(store, ID_COLL, "123456"),
             "open_operation_ids": lambda: ledger.open_operation_ids(store),
             "abandoned_active": lambda: ledger.abandoned_active(store, ID_COLL,
                                                                 "FA-2026-00101")}
    out = {}
    for name, call in calls.items():
        [(statement, parameters)] = [(s, p) for s, p in _statements(store, call)
                                     if "payfip_operations" in s]
        with store.engine.connect() as conn:
            out[name] = _plan(conn, statement, parameters)
    return out


def test_the_reads_of_the_operations_use_the_indexes(db_url, tmp_path):
    """The refdets in use are looked up by collectivity and by numcli (not every
    operation of the store read); the open operations read from their index alone; an
    invoice's operations by collectivity and invoice, never by the collectivity alone
    (SQLite, without statistics, took an index of id_coll and created_at for that one to
    skip its sort, and read every operation of the collectivity for each link)."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "o", RUN).run_id
    _operations(store, run)
    plans = _plans(store)
    if store.engine.dialect.name == "sqlite":
        assert plans["refdets_used"].startswith("MULTI-INDEX OR"), plans
        assert "ix_payfip_operations_numcli (numcli=?)" in plans["refdets_used"], plans
        assert plans["open_operation_ids"].startswith(
            "SEARCH payfip_operations USING COVERING INDEX ix_payfip_operations_open "
            "(status=?)"), plans
        assert plans["abandoned_active"].startswith(
            "SEARCH payfip_operations USING INDEX ix_payfip_operations_coll_invoice "
            "(id_coll=? AND invoice=?)"), plans
    else:  # told to scan only when no index can serve (_plan)
        assert "ix_payfip_operations_numcli" in plans["refdets_used"], plans
        assert "ix_payfip_operations_coll_invoice" in plans["refdets_used"], plans
    for plan in plans.values():
        assert "SCAN payfip_operations" not in plan, plans
        assert "Seq Scan on payfip_operations" not in plan, plans
