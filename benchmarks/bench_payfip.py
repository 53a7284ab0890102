"""PayFiP at scale: the figures of docs/performance.md, "The leftovers (twenty-first
session)". Runs with any pesgen since the nineteenth session (the code before a change
has no batch of links nor KeptClients: the steps that need them say so).

    python benchmarks/bench_payfip.py setup DIR --invoices 20000 [--db URL]
        bench_export.generate's invoices, each with a payer e-mail, exported with the CLI
        into DIR/store.sqlite3 (--date 2026-11-23), or into the store at URL (a new
        PostgreSQL database: postgresql://…)
    python benchmarks/bench_payfip.py links STORE --endpoint URL --count 200 [--one-by-one]
        link the first COUNT invoices: one batch (service.create_links), or create_link
        per invoice (the code before)
    python benchmarks/bench_payfip.py ledger STORE --copies 4
        a ledger to list: the run's titles copied COPIES times under other numbers, and a
        payment of each title (operations, payments, two events each) written in bulk,
        each payment keyed as `payfip link` keys it (its invoice_key, from schema 17)
    python benchmarks/bench_payfip.py held STORE --paid 2000 --resolved 1000 [--flood 0]
        after `ledger`, `runs cancel --despite-payments` of its run and its input exported
        again: PAID pending production operations of the cancelled titles paid through
        them (ledger.apply_detail, PayFiP's answer P: a run-cancelled anomaly each, what
        holds the invoice back), RESOLVED of those anomalies resolved (resolve_anomaly:
        one in two --refunded, the others --applied to the title exported again), and
        FLOOD unknown-idop anomalies written in bulk (a flood of made-up idOps); what
        `payfip payments`' held-back status reads
    python benchmarks/bench_payfip.py notified STORE --endpoint URL --count 500
        COUNT operations made on the fake (saisie T, the fake's notifications off) and
        paid there: what `notify` asks about
    python benchmarks/bench_payfip.py conclude STORE --endpoint URL
        every open operation concluded on the fake's payment page, its notification lost
        (`--no-notify`): 10 in 20 paid by card, 2 by direct debit, 2 refused, 1
        abandoned, 5 left unpaid; what `payfip reconcile` then asks about
    python benchmarks/bench_payfip.py sweep STORE [--endpoint URL] [--split]
        `payfip reconcile`'s sweep (service.reconcile_each) in this process: its CPU, its
        statements, commits and compiled-cache misses; with --split, the CPU of its parts
        (time.process_time around the SOAP lookup, the store's calls, the driver's
        execute, the connection's checkout, its pre-ping and its checkin). Sweep a copy:
        it records the results
    python benchmarks/bench_payfip.py notify STORE --count 500 [--per-notification]
        the receiver (`payfip serve`'s app) on loopback, sent a notification of each open
        operation, one after another: its clients kept (KeptClients) or made per
        notification (the code before)

    python benchmarks/bench_payfip.py queries STORE [--repeat 5] [--invoices 1000]
        the reads of payfip_operations a link and a sweep make, timed alone, each with
        SQLite's EXPLAIN QUERY PLAN: the refdets in use (ledger.refdets_used, what
        RefdetIndex reads: every operation of the collectivity or of its numcli), the
        open operations (open_operation_ids, the reconcile sweep's list) REPEAT times,
        and abandoned_active of INVOICES invoices (once per link made)
    python benchmarks/bench_payfip.py reads STORE [--repeat 3]
        the reads of payfip_payments (docs/performance.md, "payfip_payments.id_op"), each
        timed alone REPEAT times (CPU, best and median), with the plan of each statement
        reading the table (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN): the whole
        payments listing (iter_payments), list_anomalies, Store.paid_online of every
        invoice number of the store, and the first run's store._online_payments (runs
        cancel's list) of IdBord 1

STORE is a SQLite file or a database URL (postgresql://…). The fake runs apart:
`pesgen payfip fake --no-notify --port 8700` (endpoint http://127.0.0.1:8700/tpa).
Each step prints one JSON line: wall and CPU seconds, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "villeneuve-sur-loing.yaml"
NOTIFY = "http://127.0.0.1:9/payfip/notification"  # never called: the fake notifies no one
ID_COLL = "21450999400015"
TIMEOUT = 30.0


def _report(step: str, started: float, cpu: float, **extra: object) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"step": step, "wall_s": round(time.perf_counter() - started, 2),
                      "cpu_s": round(time.process_time() - cpu, 2),
                      "peak_mib": round(peak, 1), **extra}))


def _url(store: str) -> str:
    """A store given as a file is SQLite's; a URL is used as it is."""
    return store if "://" in store else f"sqlite:///{store}"


def setup(folder: Path, invoices: int, db: str | None) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_export import generate

    folder.mkdir(parents=True, exist_ok=True)
    raw, data = folder / "raw.json", folder / "input.json"
    generate(raw, invoices, 3)
    loaded = json.loads(raw.read_text(encoding="utf-8"))
    for n, invoice in enumerate(loaded["invoices"]):
        invoice["payer"]["email"] = f"famille{n}@example.org"
    data.write_text(json.dumps(loaded, ensure_ascii=False), encoding="utf-8")
    raw.unlink()
    started, cpu = time.perf_counter(), time.process_time()
    subprocess.run([sys.executable, "-m", "pesgen", "export", "-m", str(MAPPING), "-i",
                    str(data), "-o", str(folder / "out"), "--date", "2026-11-23", "-q",
                    "--db", db or str(folder / "store.sqlite3"), "--create-store"], check=True)
    _report("setup", started, cpu, invoices=invoices)


def _numbers(store: object, count: int) -> list[str]:
    from pesgen.payfip import ledger

    titles = ledger.active_titles(store, ID_COLL)  # type: ignore[arg-type]
    return [t.invoice for t in titles[:count]]


def links(db: str, endpoint: str, count: int, one_by_one: bool) -> None:
    from pesgen.payfip import service
    from pesgen.store import Store

    store = Store(_url(db))
    invoices = _numbers(store, count)
    started, cpu = time.perf_counter(), time.process_time()
    if one_by_one:
        made = [service.create_link(store, MAPPING, invoice, endpoint=endpoint,
                                    notify_url=NOTIFY, mode="W", timeout=TIMEOUT)
                for invoice in invoices]
    else:
        made = list(service.create_links(store, MAPPING, invoices, endpoint=endpoint,
                                         notify_url=NOTIFY, mode="W", timeout=TIMEOUT))
    _report("links", started, cpu, links=len(made), one_by_one=one_by_one)


def ledger_of(db: str, copies: int) -> None:
    """Bulk rows, in the tables' own shape: what the listing reads, not a real history."""
    import sqlalchemy as sa

    from pesgen.keys import invoice_key
    from pesgen.payfip.tables import events, operations, payments
    from pesgen.store import Store, run_invoices

    store = Store(_url(db))
    rnd = random.Random(2026)
    started, cpu = time.perf_counter(), time.process_time()
    with store.engine.begin() as conn:
        titles = [dict(r._mapping) for r in conn.execute(sa.select(run_invoices))]
        copied = []
        for k in range(1, copies + 1):
            for t in titles:
                invoice = f"{t['invoice']}-C{k}"
                copied.append({**{c: t[c] for c in t if c != "id"}, "invoice": invoice,
                               "invoice_key": invoice_key(invoice), "debt_number": None})
        for start in range(0, len(copied), 5000):
            conn.execute(run_invoices.insert(), copied[start:start + 5000])
        every = titles + copied
        ops, pays, evs = [], [], []
        for n, t in enumerate(every):
            id_op = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
            status = rnd.choices(["paid", "pending", "refused", "test-paid", "expired"],
                                 [10, 5, 2, 2, 1])[0]
            cents = int(t["amount"].replace(".", ""))
            refdet = "".join(ch for ch in t["invoice"] if ch.isalnum())[:30]
            at = f"2026-11-{24 + n % 5}T{n % 24:02d}:{n % 60:02d}:00Z"
            paid = status == "paid"
            ops.append({"id_op": id_op, "id_coll": ID_COLL, "invoice": t["invoice"],
                        "run_id": t["run_id"], "numcli": "012345", "exer": "2026",
                        "refdet": refdet, "amount_cents": cents,
                        "mel": f"famille{n}@example.org", "objet": "FACTURE",
                        "saisie": "T" if status == "test-paid" else "W",
                        "endpoint": "http://127.0.0.1:8700/tpa", "created_at": at,
                        "status": status, "result_code": "P" if paid else None,
                        "numauto": f"A{n:09d}" if paid else None,
                        "transaction_at": at if paid else None, "checks": 1,
                        "notifications": 1})
            pays.append({"id_coll": ID_COLL, "invoice": t["invoice"], "status": status,
                         "amount_cents": cents, "paid_cents": cents if paid else None,
                         "method": "card" if paid else None, "paid_at": at if paid else None,
                         "id_op": id_op if paid else None, "last_id_op": id_op,
                         "numauto": f"A{n:09d}" if paid else None, "refdet": refdet,
                         "created_at": at, "updated_at": at})
            for event in ("created", status):
                evs.append({"id_coll": ID_COLL, "invoice": t["invoice"], "id_op": id_op,
                            "at": at, "event": event, "source": "link",
                            "status": "pending" if event == "created" else status,
                            "detail": json.dumps({"result": "P" if paid else "R"})})
        if "invoice_key" in payments.c:  # keyed as record_operation does (schema 17 on)
            for pay in pays:
                pay["invoice_key"] = invoice_key(pay["invoice"])
        for table, rows in ((operations, ops), (payments, pays), (events, evs)):
            for start in range(0, len(rows), 5000):
                conn.execute(table.insert(), rows[start:start + 5000])
    _report("ledger", started, cpu, titles=len(every), payments=len(pays))


def held(db: str, paid: int, resolved: int, flood: int) -> None:
    import sqlalchemy as sa

    from pesgen.payfip import ledger
    from pesgen.payfip.models import PaymentDetail
    from pesgen.payfip.tables import anomalies, operations
    from pesgen.store import Store, run_invoices

    store = Store(_url(db))
    started, cpu = time.perf_counter(), time.process_time()
    with store.engine.connect() as conn:
        ops = conn.execute(
            sa.select(operations).join(run_invoices, sa.and_(
                run_invoices.c.run_id == operations.c.run_id,
                run_invoices.c.invoice == operations.c.invoice))
            .where(operations.c.status == "pending", operations.c.saisie != "T",
                   sa.not_(run_invoices.c.active))
            .order_by(operations.c.id_op).limit(paid)).all()
    outcomes: dict[str, int] = {}
    for n, op in enumerate(ops):
        detail = PaymentDetail(idOp=op.id_op, resultrans="P", montant=str(op.amount_cents),
                               refdet=op.refdet, numcli=op.numcli, mel=op.mel,
                               objet=op.objet, saisie=op.saisie, exer=op.exer,
                               dattrans="30112026", heurtrans=f"{n % 24:02d}{n % 60:02d}",
                               numauto=f"H{n:09d}")
        o = ledger.apply_detail(store, op.id_op, detail, "reconcile")
        outcomes[o.action] = outcomes.get(o.action, 0) + 1
    with store.engine.connect() as conn:
        found = list(conn.execute(sa.select(anomalies.c.id).where(
            anomalies.c.kind == "run-cancelled", anomalies.c.resolved_at.is_(None))
            .order_by(anomalies.c.id).limit(resolved)).scalars())
    for n, anomaly in enumerate(found):
        outcome = "refunded" if n % 2 else "applied"
        ledger.resolve_anomaly(store, anomaly, "bench", f"the trésorerie: {outcome}", outcome)
    rnd = random.Random(43)
    with store.engine.begin() as conn:
        for start in range(0, flood, 5000):
            conn.execute(anomalies.insert(), [
                {"at": f"2026-11-{24 + n % 7:02d}T{n % 24:02d}:00:00Z", "kind": "unknown-idop",
                 "id_op": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                 "invoice": None, "source": "notification",
                 "detail": "a result for an operation pesgen never issued"}
                for n in range(start, min(flood, start + 5000))])
    _report("held", started, cpu, paid=outcomes, resolved=len(found), flood=flood)


def notified(db: str, endpoint: str, count: int) -> None:
    import httpx

    from pesgen.payfip import service
    from pesgen.store import Store

    store = Store(_url(db))
    invoices = _numbers(store, count)
    started, cpu = time.perf_counter(), time.process_time()
    made = list(service.create_links(store, MAPPING, invoices, endpoint=endpoint,
                                     notify_url=NOTIFY, mode="T", timeout=TIMEOUT))
    with httpx.Client(timeout=TIMEOUT) as http:
        for link in made:
            answer = http.post(f"{endpoint}/paiementws.web",
                               data={"idop": link.id_op, "action": "card"})
            answer.raise_for_status()
    _report("notified", started, cpu, operations=len(made))


CONCLUDED = ["card"] * 10 + ["debit"] * 2 + ["refuse"] * 2 + ["abandon"] + [None] * 5


def conclude(db: str, endpoint: str) -> None:
    import httpx

    from pesgen.payfip import ledger
    from pesgen.store import Store

    ids = ledger.open_operation_ids(Store(_url(db)))
    done: dict[str, int] = {}
    started, cpu = time.perf_counter(), time.process_time()
    with httpx.Client(timeout=TIMEOUT) as http:
        for n, id_op in enumerate(ids):
            action = CONCLUDED[n % len(CONCLUDED)]
            if action is not None:
                answer = http.post(f"{endpoint}/paiementws.web",
                                   data={"idop": id_op, "action": action})
                answer.raise_for_status()
            done[action or "unpaid"] = done.get(action or "unpaid", 0) + 1
    _report("conclude", started, cpu, operations=len(ids), concluded=done)


def notify(db: str, count: int, per_notification: bool) -> None:
    import httpx

    from pesgen.payfip import ledger, service
    from pesgen.payfip.receiver import create_app
    from pesgen.payfip.server import ServerThread
    from pesgen.store import Store

    store = Store(_url(db))
    ids = ledger.open_operation_ids(store)[:count]
    factory = service.default_factory(timeout=TIMEOUT)
    kept = getattr(service, "KeptClients", None)
    if not per_notification:
        if kept is None:
            raise SystemExit("this pesgen has no KeptClients: --per-notification")
        factory = kept(factory)
    codes: dict[int, int] = {}
    with ServerThread(create_app(store, factory)) as server, \
            httpx.Client(timeout=TIMEOUT) as http:
        started, cpu = time.perf_counter(), time.process_time()
        for id_op in ids:
            answer = http.post(f"{server.url}/payfip/notification", data={"idop": id_op})
            codes[answer.status_code] = codes.get(answer.status_code, 0) + 1
        _report("notify", started, cpu, notifications=len(ids), codes=codes,
                per_notification=per_notification)
    if not per_notification:
        factory.close()


def sweep(db: str, endpoint: str | None, split: bool) -> None:
    import sqlalchemy as sa

    from pesgen.payfip import ledger, service
    from pesgen.payfip.client import PayfipClient
    from pesgen.store import Store

    store = Store(_url(db))
    engine, counts = store.engine, {"statements": 0, "commits": 0, "cache_misses": 0}

    def executed(conn, cursor, statement, parameters, context, many):  # noqa: ANN001
        counts["statements"] += 1
        counts["cache_misses"] += context.cache_hit == context.dialect.CACHE_MISS

    sa.event.listen(engine, "after_cursor_execute", executed)
    sa.event.listen(engine, "commit", lambda conn: counts.update(commits=counts["commits"] + 1))
    parts: dict[str, float] = {}
    undo: list[tuple[object, str, object]] = []  # (owner, name, its own attribute or None)

    def timed(owner: object, name: str, part: str) -> None:
        fn = getattr(owner, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            started = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[part] = parts.get(part, 0.0) + time.process_time() - started
        undo.append((owner, name, vars(owner).get(name)))
        setattr(owner, name, wrapper)

    if split:
        timed(service, "handle", "operation (handle)")
        timed(PayfipClient, "recuperer_detail_paiement_securise", "SOAP lookup")
        for name in ("get_operation", "apply_detail", "note_check", "expire", "refused_lookup"):
            timed(ledger, name, "store")
        timed(engine.dialect, "do_execute", "store: driver execute")
        timed(engine.dialect, "do_ping", "store: pre-ping")
        timed(engine, "connect", "store: checkout (pre-ping included)")
        timed(sa.engine.Connection, "close", "store: checkin (reset)")
    started, cpu = time.perf_counter(), time.process_time()
    outcomes: dict[str, int] = {}
    try:
        for o in service.reconcile_each(store, service.default_factory(endpoint, TIMEOUT)):
            outcomes[o.action] = outcomes.get(o.action, 0) + 1
    finally:
        for owner, name, own in reversed(undo):
            if own is None:  # an instance's method, its class's: the wrapper goes
                delattr(owner, name)
            else:
                setattr(owner, name, own)
    _report("sweep", started, cpu, dialect=engine.dialect.name, outcomes=outcomes, **counts,
            split_cpu_s={k: round(v, 2) for k, v in sorted(parts.items())})


def queries(db: str, repeat: int, invoices: int) -> None:
    """Each read timed alone (the store warm: each is run once first), then its plan."""
    import sqlalchemy as sa

    from pesgen.payfip import ledger
    from pesgen.payfip.tables import operations
    from pesgen.store import Store

    store = Store(_url(db))
    with store.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(operations)).scalar()
        # the collectivity's own PayFiP client (the ledger step writes 012345)
        numcli = conn.execute(sa.select(operations.c.numcli).where(
            operations.c.id_coll == ID_COLL).order_by(operations.c.id_op).limit(1)
        ).scalar() or "000000"
        some = list(conn.execute(sa.select(operations.c.invoice).order_by(
            operations.c.id_op).limit(invoices)).scalars())
    steps = {
        "refdets_used": (repeat, lambda: ledger.refdets_used(store, ID_COLL, numcli)),
        "open_operation_ids": (repeat, lambda: ledger.open_operation_ids(store)),
        "abandoned_active": (1, lambda: [ledger.abandoned_active(store, ID_COLL, i)
                                         for i in some]),
    }
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, many):  # noqa: ANN001
        seen.append((statement, parameters))

    for name, (times, call) in steps.items():
        call()  # warm
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(times):
            rows = call()
        per = (time.perf_counter() - started) / times
        seen.clear()
        sa.event.listen(store.engine, "before_cursor_execute", capture)
        try:
            call() if name != "abandoned_active" else ledger.abandoned_active(
                store, ID_COLL, some[0])
        finally:
            sa.event.remove(store.engine, "before_cursor_execute", capture)
        statement, parameters = next((st, pa) for st, pa in seen
                                     if "payfip_operations" in st)
        with store.engine.connect() as conn:
            plan = [r[-1] for r in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", parameters)]
        _report(name, started, cpu, operations=count, numcli=numcli, repeat=times,
                per_call_s=round(per, 4), rows=len(rows), plan=plan)


def reads(db: str, repeat: int) -> None:
    """Each read warm (run once first), then timed alone; then its statements' plans."""
    import statistics

    import sqlalchemy as sa

    from pesgen import store as st
    from pesgen.payfip import ledger

    store = st.Store(_url(db))
    with store.engine.connect() as conn:
        numbers = sorted(set(conn.execute(sa.select(st.run_invoices.c.invoice)).scalars()))
        first = conn.execute(sa.select(st.runs.c.id).order_by(st.runs.c.created_at)
                             ).scalars().first()

    def online() -> int:
        with store.engine.connect() as conn:
            return len(st._online_payments(conn, first, [1]))

    steps = {
        "iter_payments": lambda: sum(1 for _ in ledger.iter_payments(store)),
        "list_anomalies": lambda: len(ledger.list_anomalies(store)),
        "paid_online": lambda: len(store.paid_online(ID_COLL, numbers)),
        "online_payments": online,
    }
    seen: dict[str, tuple[str, object]] = {}

    def capture(conn, cursor, statement, parameters, context, many):  # noqa: ANN001
        if "payfip_payments" in statement:
            seen.setdefault(statement, (statement, parameters))

    for name, call in steps.items():
        rows = call()
        cpu = []
        for _ in range(repeat):
            started = time.process_time()
            call()
            cpu.append(time.process_time() - started)
        seen.clear()
        sa.event.listen(store.engine, "before_cursor_execute", capture)
        try:
            call()
        finally:
            sa.event.remove(store.engine, "before_cursor_execute", capture)
        plans = []
        with store.engine.connect() as conn:
            explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
            for statement, parameters in seen.values():
                plans.append([r[-1] if conn.dialect.name == "sqlite" else r[0]
                              for r in conn.exec_driver_sql(explain + statement, parameters)])
        print(json.dumps({"step": name, "dialect": store.engine.dialect.name, "rows": rows,
                          "cpu_best_s": round(min(cpu), 3),
                          "cpu_median_s": round(statistics.median(cpu), 3), "plans": plans}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("setup")
    p.add_argument("folder", type=Path)
    p.add_argument("--invoices", type=int, default=20000)
    p.add_argument("--db", help="a database URL instead of DIR/store.sqlite3")
    for name in ("links", "notified"):
        p = sub.add_parser(name)
        p.add_argument("store")
        p.add_argument("--endpoint", default="http://127.0.0.1:8700/tpa")
        p.add_argument("--count", type=int, default=200)
        if name == "links":
            p.add_argument("--one-by-one", action="store_true")
    p = sub.add_parser("conclude")
    p.add_argument("store")
    p.add_argument("--endpoint", default="http://127.0.0.1:8700/tpa")
    p = sub.add_parser("ledger")
    p.add_argument("store")
    p.add_argument("--copies", type=int, default=0)
    p = sub.add_parser("held")
    p.add_argument("store")
    p.add_argument("--paid", type=int, default=2000)
    p.add_argument("--resolved", type=int, default=1000)
    p.add_argument("--flood", type=int, default=0)
    p = sub.add_parser("notify")
    p.add_argument("store")
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--per-notification", action="store_true")
    p = sub.add_parser("sweep")
    p.add_argument("store")
    p.add_argument("--endpoint", help="ask this PayFiP instead of each operation's own")
    p.add_argument("--split", action="store_true")
    p = sub.add_parser("queries")
    p.add_argument("store")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--invoices", type=int, default=1000)
    p = sub.add_parser("reads")
    p.add_argument("store")
    p.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    if a.step == "setup":
        setup(a.folder, a.invoices, a.db)
    elif a.step == "links":
        links(a.store, a.endpoint, a.count, a.one_by_one)
    elif a.step == "ledger":
        ledger_of(a.store, a.copies)
    elif a.step == "held":
        held(a.store, a.paid, a.resolved, a.flood)
    elif a.step == "queries":
        queries(a.store, a.repeat, a.invoices)
    elif a.step == "reads":
        reads(a.store, a.repeat)
    elif a.step == "conclude":
        conclude(a.store, a.endpoint)
    elif a.step == "sweep":
        sweep(a.store, a.endpoint, a.split)
    elif a.step == "notified":
        notified(a.store, a.endpoint, a.count)
    else:
        notify(a.store, a.count, a.per_notification)


if __name__ == "__main__":
    main()
