# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""`payfip anomalies resolve`: the state store failing after the resolution is recorded,
while it reads what the invoice gets now, is not a refusal (a person or a tool would
try again and be told `resolved already`): the resolution is reported, the invoice's
state `unread`, exit 0. On SQLite and PostgreSQL, no PayFiP asked."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.payfip import ledger

from .payfip_support import exported, store  # noqa: F401 - fixtures
from .test_payments_held_back import INVOICE, _link, _paid


def _run_cancelled(store, exported) -> int:
    """FA-2026-00102 paid through its link after its run was cancelled: the number of
    its run-cancelled anomaly."""
    id_op = _link(store, 7)
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    _paid(store, id_op)
    [number] = [a["id"] for a in ledger.list_anomalies(store, open_only=True)
                if a["kind"] == "run-cancelled" and a["invoice"] == INVOICE]
    return number


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_store_failing_after_the_resolution_reports_it_recorded(
        store, exported, monkeypatch, fmt):
    number = _run_cancelled(store, exported)

    def failing(*_args, **_kwargs):
        raise OperationalError("SELECT …", {}, Exception("server closed the connection"))

    monkeypatch.setattr(ledger, "unsettled_payments", failing)
    result = CliRunner().invoke(app, [
        "payfip", "anomalies", "resolve", str(number), "--note", "told the trésorerie",
        "--by", "support", "--format", fmt, "--db", store.url])
    assert result.exit_code == 0, result.output
    said = ("the resolution is recorded, but what its invoice gets now could not be read "
            "(the state store failed: server closed the connection); `pesgen payfip "
            "anomalies --all` and `pesgen payfip payments` say it once the store answers")
    if fmt == "json":
        report = json.loads(result.stdout)
        assert (report["ok"], report["error"], report["id"], report["invoice_state"],
                report["advice"], report["notes"]) == (
            True, None, number, "unread", said, [f"invoice {INVOICE}: {said}"])
        assert result.stderr == ""
    else:
        assert result.stdout.startswith(f"anomaly #{number} run-cancelled (invoice {INVOICE}): "
                                        "resolved ")
        assert result.stderr == f"note: invoice {INVOICE}: {said}\n"
    [resolved] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert (resolved["resolved_by"], resolved["note"]) == ("support", "told the trésorerie")
