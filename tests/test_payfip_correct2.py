# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""Corrections of an anomaly's resolution beyond test_payfip_correct's: two corrections
of one anomaly at once, one recorded, the other refused (docs/payfip.md, *Correcting an
answer recorded by mistake*)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from pesgen.errors import StateError
from pesgen.payfip import ledger

from .payfip_support import (  # noqa: F401 - fixtures
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_payfip_correct import _anomaly, _events, _run_cancelled
from .test_payfip_unsettled import _cancel_then_pay
from .test_resolve_later import _resolve


@pytest.mark.parametrize(("first_answer", "right", "events"), [
    ("applied", "refunded", [("paid", "paid"), ("payment-withdrawn", "pending"),
                             ("anomaly-corrected", "pending")]),
    ("refunded", "applied", [("paid", "paid"), ("anomaly-corrected", "paid")])])
def test_two_corrections_at_once_one_is_recorded_the_other_refused(
        flow, store, tmp_path, monkeypatch, first_answer, right, events):
    """Two people making the same correction of an answer at once (--applied to
    --refunded: the payment taken back; --refunded to --applied: the title due recorded
    paid): the first, inside its transaction when the second starts, holds the anomaly;
    the second waits for it, then reads the answer corrected and is refused ("… already"):
    the payment is taken back, or recorded, once, one correction recorded. On PostgreSQL
    the second is seen waiting on the first's row lock before the first goes on; on
    SQLite the write transactions are in turn."""
    _run, _old, _new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, f"--{first_answer}", note="first answer")
    assert code == 0, out + err
    inside, go = threading.Event(), threading.Event()
    take_back = ledger._take_back

    def held(*args, **kw):
        if not inside.is_set():  # the first correction: waits for the second to start
            inside.set()
            assert go.wait(30)
        return take_back(*args, **kw)

    monkeypatch.setattr(ledger, "_take_back", held)
    results: dict[str, object] = {}

    def correct(name: str) -> None:
        try:
            results[name] = ledger.resolve_anomaly(store, number, name, f"by {name}",
                                                   right, correct=True)
        except StateError as exc:
            results[name] = exc

    first = threading.Thread(target=correct, args=("first",))
    first.start()
    assert inside.wait(30)
    second = threading.Thread(target=correct, args=("second",))
    second.start()
    if store.engine.dialect.name == "postgresql":
        deadline = time.monotonic() + 30
        with store.engine.connect() as conn:
            while not conn.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar():
                assert time.monotonic() < deadline, "the second correction never waited"
                time.sleep(0.05)
    else:
        time.sleep(0.5)
    go.set()
    first.join(60)
    second.join(60)
    assert isinstance(results["first"], dict), results
    refused = results["second"]
    assert isinstance(refused, StateError), results
    assert str(refused).endswith(f": its recorded answer is {right} already (resolved on "
                                 f"{_anomaly(store, number)['resolved_at']} by first): "
                                 "nothing to correct"), refused
    assert [e[:2] for e in _events(store, "paid", "payment-withdrawn",
                                   "anomaly-corrected")] == events
    anomaly = _anomaly(store, number)
    assert (anomaly["outcome"], anomaly["resolved_by"]) == (right, "first"), anomaly
