# ruff: noqa: F811 - fixtures imported are injected by name
"""`payfip anomalies --summary`: how many anomalies of each kind are open and resolved,
a line a kind, where the listing prints every anomaly (a flood of a million unknown
idOps, a million entries); on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import ExitCode
from pesgen.payfip import ledger
from pesgen.payfip.tables import anomalies

from .payfip_support import exported, store  # noqa: F401 - fixtures
from .test_payfip_stream import paid_after_cancel  # noqa: F401 - the fixture


def _invoke(store, *args: str):
    return CliRunner().invoke(app, ["payfip", "anomalies", *args, "--db", store.url])


def test_the_summary_counts_the_anomalies_of_each_kind(paid_after_cancel):
    """Five run-cancelled anomalies (one resolved) and a flood of twelve unknown idOps:
    the summary gives each kind in a line, its open and resolved counts in columns, then
    the totals and the listing that says what to do; JSON, the report's head, the
    totals, and each kind's counts; the listing without --summary is unchanged."""
    store = paid_after_cancel
    listed = ledger.list_anomalies(store)
    ledger.resolve_anomaly(store, listed[1]["id"], "support", "refunded", "refunded")
    with store.engine.begin() as conn:
        conn.execute(anomalies.insert(), [
            {"at": "2026-12-01T10:00:00Z", "kind": "unknown-idop", "id_op": f"op-x{n}",
             "invoice": None, "source": "notification",
             "detail": "a result for an operation pesgen never issued"}
            for n in range(12)])
    result = _invoke(store, "--summary")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert result.stdout.splitlines() == [
        "kind               open  resolved",
        "run-cancelled         4         1",
        "unknown-idop         12         0",
        "16 open, 1 resolved, 2 kind(s): `pesgen payfip anomalies` lists the open ones, "
        "each with what to do (--all: the resolved ones too)"]
    result = _invoke(store, "--summary", "--format", "json")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert json.loads(result.stdout) == {
        "command": "payfip anomalies", "ok": True, "exit_code": 0, "error": None,
        "open": 16, "resolved": 1,
        "kinds": {"run-cancelled": {"open": 4, "resolved": 1},
                  "unknown-idop": {"open": 12, "resolved": 0}}}
    assert ledger.anomaly_kinds(store) == {"run-cancelled": (4, 1), "unknown-idop": (12, 0)}
    # the listing as before: each open anomaly
    result = _invoke(store)
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("#") for line in result.stdout.splitlines()) == 16


def test_the_summary_of_no_anomaly_and_with_all(store):
    """A store without anomalies: `no anomaly`, as the listing says it; JSON, no kind.
    --summary with --all (which lists each anomaly, the resolved ones too) is refused,
    exit 2, the JSON refusal as the others."""
    result = _invoke(store, "--summary")
    assert (result.exit_code, result.stdout) == (0, "no anomaly\n"), result.output
    result = _invoke(store, "--summary", "--format", "json")
    report = json.loads(result.stdout)
    assert (result.exit_code, report["ok"], report["open"], report["resolved"],
            report["kinds"]) == (0, True, 0, 0, {})
    result = _invoke(store, "--summary", "--all")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith(
        "error: --summary counts the open and the resolved anomalies of each kind, --all "
        "lists each one, the resolved ones too: give one of them"), result.stderr
    result = _invoke(store, "--summary", "--all", "--format", "json")
    report = json.loads(result.stdout)
    assert (result.exit_code, report["ok"], report["exit_code"]) == (
        ExitCode.USAGE, False, ExitCode.USAGE), report
