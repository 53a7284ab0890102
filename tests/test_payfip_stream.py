# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""`payfip anomalies` (text and JSON) and `payfip payments` read their rows a chunk at a
time (docs/performance.md, "payfip anomalies streamed"): a listing on standard output
is printed once whole (held in a temporary file meanwhile), so a store failing after
the first rows prints no row, the refusal alone; on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import json
import sqlite3
from datetime import date

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pesgen._display import json_text
from pesgen.cli import app
from pesgen.errors import ExitCode, Problem, StateError
from pesgen.payfip import cli as payfip_cli
from pesgen.payfip import ledger
from pesgen.runs import export_recorded

from .payfip_support import exported, store  # noqa: F401 - fixtures
from .test_cancel import EXAMPLE, MAPPING
from .test_cancel_payfip import PAID_AFTER_CANCEL, _paid, _recorded_link


@pytest.fixture
def paid_after_cancel(store, exported, tmp_path):
    """Five titles linked, their run cancelled, each paid through its link since (five
    run-cancelled anomalies), the example exported again: the store."""
    ops = [_recorded_link(store, invoice, n) for n, invoice in enumerate(PAID_AFTER_CANCEL)]
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    for id_op in ops:
        _paid(store, id_op)
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    return store


def _store_refusal() -> StateError:
    return StateError("the store refused", [Problem(
        "payfip.mode", "mode: 'P' is not T, X nor W", mapping="m.yaml:12: payfip.mode",
        invoice="FA-2026-00102")])


def _database_failure() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT …", {}, sqlite3.OperationalError("disk I/O error"))


def _failing_after(real, rows: int, failure: Exception):
    """``real`` (an iterator of the ledger's) giving its first ``rows`` rows, then
    raising ``failure``: the store failing on a later chunk."""
    def listing(*args, **kwargs):
        for n, row in enumerate(real(*args, **kwargs)):
            if n == rows:
                raise failure
            yield row
    return listing


@pytest.mark.parametrize("failure", [_store_refusal, _database_failure],
                         ids=["refused", "database"])
def test_anomalies_as_json_cut_short_by_the_store_print_the_refusal_alone(
        paid_after_cancel, monkeypatch, failure):
    """The anomalies of `payfip anomalies --format json` are read 500 at a time: the
    store failing after the first chunk left a truncated document on standard output,
    which no JSON reader takes. The report is printed once whole, so what is printed is
    the refusal's report alone (``ok`` false, the exit code, the error and its problems,
    no anomaly), as a refusal before the listing gives it; a database error goes on to
    `pesgen`'s own handling (cli.main: its line, exit 7), nothing printed. The text
    listed the anomalies read before the failure, then said it on standard error: read
    by a person or a script as the whole listing (its last line, the count, missing).
    It is printed once whole too: the error alone."""
    store = paid_after_cancel
    whole = ledger.list_anomalies(store)
    assert len(whole) == 5
    monkeypatch.setattr(ledger, "iter_anomalies", _failing_after(
        functools.partial(ledger.iter_anomalies, chunk=2), 3, failure()))
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--format", "json",
                                      "--db", store.url])
    if failure is _store_refusal:
        assert (result.exit_code, result.stderr) == (ExitCode.STATE, ""), result.output
        assert result.stdout == json_text({
            "command": "payfip anomalies", "ok": False, "exit_code": 7,
            "error": "the store refused",
            "problems": payfip_cli._problems_json(_store_refusal())}) + "\n"
    else:
        assert isinstance(result.exception, sa.exc.OperationalError), result.output
        assert result.stdout == ""
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--db", store.url])
    if failure is _store_refusal:
        assert result.exit_code == ExitCode.STATE
        assert result.stderr.startswith("error: the store refused"), result.stderr
    else:
        assert isinstance(result.exception, sa.exc.OperationalError), result.output
    assert result.stdout == ""


def test_anomalies_as_json_spooled_to_disk_are_printed_whole(paid_after_cancel,
                                                             monkeypatch):
    """A report larger than what the spool holds in memory (8 MiB; 64 bytes here) goes
    on to a temporary file and is printed whole, the same text as the report made at
    once."""
    store = paid_after_cancel
    whole = CliRunner().invoke(app, ["payfip", "anomalies", "--format", "json",
                                     "--db", store.url])
    assert whole.exit_code == 0 and len(whole.stdout) > 64 << 5, whole.output
    monkeypatch.setattr(payfip_cli, "_SPOOL_MEMORY", 64)
    monkeypatch.setattr(ledger, "iter_anomalies",
                        functools.partial(ledger.iter_anomalies, chunk=2))
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--format", "json",
                                      "--db", store.url])
    assert (result.exit_code, result.stdout) == (0, whole.stdout), result.output
    assert len(json.loads(result.stdout)["anomalies"]) == 5



@pytest.mark.parametrize("fmt", ["json", "text"])
def test_anomalies_cut_short_after_a_written_batch_print_the_refusal_alone(
        store, monkeypatch, fmt):
    """The JSON report is made 500 anomalies at a time: a failure after the first 500
    (here the 502nd of a flood of unknown operations) prints the refusal's report alone
    too, none of the batch already made. The text printed the 501 anomalies read, then
    the error: now the error alone, on standard error."""
    from pesgen.payfip.tables import anomalies

    with store.engine.begin() as conn:
        conn.execute(anomalies.insert(), [
            {"at": "2026-11-24T10:00:00Z", "kind": "unknown-idop", "id_op": f"op-{n}",
             "invoice": None, "source": "notification", "expected": None, "got": None,
             "detail": "no such operation"} for n in range(502)])
    monkeypatch.setattr(ledger, "iter_anomalies",
                        _failing_after(ledger.iter_anomalies, 501, _store_refusal()))
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--format", fmt,
                                      "--db", store.url])
    if fmt == "text":
        assert (result.exit_code, result.stdout) == (ExitCode.STATE, ""), result.output
        assert result.stderr.startswith("error: the store refused"), result.stderr
        return
    assert (result.exit_code, result.stderr) == (ExitCode.STATE, ""), result.output
    assert result.stdout == json_text({
        "command": "payfip anomalies", "ok": False, "exit_code": 7,
        "error": "the store refused",
        "problems": payfip_cli._problems_json(_store_refusal())}) + "\n"


def test_anomalies_as_text_spooled_to_disk_are_printed_whole_and_masked(
        paid_after_cancel, monkeypatch):
    """The text held in a temporary file (64 bytes in memory here) is printed whole, the
    same lines as held in memory, a URL's password masked as `_say` masked it when each
    line was printed as read (a resolution's note quoting a store's URL)."""
    store = paid_after_cancel
    [first, *_] = ledger.list_anomalies(store)
    ledger.resolve_anomaly(store, first["id"], "support",
                           "moved to postgresql://pesgen:s3cr3t@db.example/pesgen")
    args = ["payfip", "anomalies", "--all", "--db", store.url]
    whole = CliRunner().invoke(app, args)
    assert whole.exit_code == 0 and len(whole.stdout) > 64 << 5, whole.output
    monkeypatch.setattr(payfip_cli, "_SPOOL_MEMORY", 64)
    monkeypatch.setattr(ledger, "iter_anomalies",
                        functools.partial(ledger.iter_anomalies, chunk=2))
    result = CliRunner().invoke(app, args)
    assert (result.exit_code, result.stdout) == (0, whole.stdout), result.output
    assert "s3cr3t" not in result.stdout
    assert "moved to postgresql://pesgen:***@db.example/pesgen" in result.stdout
    assert [line.split()[0] for line in result.stdout.splitlines()
            if line.startswith("#")] == [f"#{a['id']}" for a in ledger.list_anomalies(store)]
    assert result.stdout.splitlines()[-1].startswith("4 open: once decided")


def test_a_listing_spooled_is_printed_whole_past_its_first_megabyte(capsys):
    """A listing held for standard output is printed a megabyte at a time, to its end,
    and its spool closed."""
    pieces = ["a" * (1 << 20), "é" * 10, "\n"]
    spool = payfip_cli._spooled(iter(pieces))
    payfip_cli._print_spooled(spool)
    assert capsys.readouterr().out == "".join(pieces)
    assert spool.closed

@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_payments_cut_short_by_the_store_print_no_row(paid_after_cancel, monkeypatch,
                                                      tmp_path, fmt):
    """`payfip payments` reads its rows 500 invoices at a time: the store failing after
    the first rows left a truncated list on standard output (a JSON document no reader
    takes, a CSV the school software would take for the whole). The listing is printed
    once whole: no row is printed, the error is said on standard error as a refusal
    before the listing is, with its exit code, and no summary; a file (-o) is written
    whole or not at all, as before."""
    store, real = paid_after_cancel, ledger.iter_payments
    whole = list(real(store))
    assert len(whole) > 3
    monkeypatch.setattr(ledger, "iter_payments", _failing_after(real, 3, _store_refusal()))
    result = CliRunner().invoke(app, ["payfip", "payments", "--format", fmt,
                                      "--db", store.url])
    assert (result.exit_code, result.stdout) == (ExitCode.STATE, ""), result.output
    assert result.stderr.startswith("error: the store refused"), result.stderr
    assert "invoice(s) in" not in result.stderr  # no summary of a listing cut short
    out = tmp_path / f"payments.{fmt}"
    result = CliRunner().invoke(app, ["payfip", "payments", "--format", fmt, "-o",
                                      str(out), "--db", store.url])
    assert result.exit_code == ExitCode.STATE and not out.exists(), result.output
    # a database error: `pesgen`'s own handling (cli.main: its line, exit 7), no row
    monkeypatch.setattr(ledger, "iter_payments", _failing_after(real, 3,
                                                                _database_failure()))
    result = CliRunner().invoke(app, ["payfip", "payments", "--format", fmt,
                                      "--db", store.url])
    assert isinstance(result.exception, sa.exc.OperationalError), result.output
    assert result.stdout == ""


def test_anomalies_are_listed_by_number_whatever_order_the_database_reads_them(
        paid_after_cancel):
    """The anomalies come a chunk at a time, by number: the chunk's numbers and its rows
    are each ordered by the query. Without it a database reading its table in the order
    rows lie (PostgreSQL, where resolving an anomaly writes its row anew at the end)
    gives the first chunk after the resolved one, and the next chunk, read after the
    last number seen, never gives it; a chunk's rows come out of order. SQLite reads by
    number whatever the query says: this test tells them apart on PostgreSQL."""
    from pesgen.payfip.tables import anomalies

    store = paid_after_cancel
    with store.engine.connect() as conn:
        numbers = sorted(conn.execute(sa.select(anomalies.c.id)).scalars())
    assert len(numbers) == 5
    ledger.resolve_anomaly(store, numbers[0], "support", "told the trésorerie")
    for chunk in (2, 3):
        assert [a["id"] for a in ledger.iter_anomalies(store, chunk=chunk)] == numbers
    assert [a["id"] for a in ledger.iter_anomalies(store, open_only=True, chunk=2)] == \
        numbers[1:]
