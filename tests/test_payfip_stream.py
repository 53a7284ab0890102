# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""`payfip anomalies` and `payfip payments` write their JSON as they read it, a chunk
at a time (docs/performance.md, "payfip anomalies streamed"): a store failing after the
first rows were written ends the document with the refusal, a JSON document still, with
the refusal's exit code; on SQLite and PostgreSQL."""

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
def test_anomalies_as_json_cut_short_by_the_store_end_as_a_json_document(
        paid_after_cancel, monkeypatch, failure):
    """The report of `payfip anomalies --format json` is written an anomaly at a time:
    the store failing after the first chunk left a truncated document, which no JSON
    reader takes. The list is closed and the report ends with ``ok`` false, the exit
    code, the error and its problems (after the list: the head said ``ok`` true before
    the failure, and a JSON reader keeps the last of a name given twice); the exit code
    is the refusal's, standard error says nothing."""
    store = paid_after_cancel
    whole = ledger.list_anomalies(store)
    assert len(whole) == 5
    monkeypatch.setattr(ledger, "iter_anomalies", _failing_after(
        functools.partial(ledger.iter_anomalies, chunk=2), 3, failure()))
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--format", "json",
                                      "--db", store.url])
    assert (result.exit_code, result.stderr) == (ExitCode.STATE, ""), result.output
    report = json.loads(result.stdout)
    expected_error = ("the store refused" if failure is _store_refusal else
                      "the state store failed: disk I/O error; nothing was recorded")
    assert (report["command"], report["ok"], report["exit_code"], report["error"],
            report["open"]) == ("payfip anomalies", False, ExitCode.STATE, expected_error, 5)
    assert report["anomalies"] == [payfip_cli._anomaly_json(a, ledger.ANOMALY_ADVICE)
                                   for a in whole[:3]]
    if failure is _store_refusal:
        [problem] = report["problems"]
        assert (problem["rule"], problem["line"], problem["invoice"]) == (
            "payfip.mode", 12, "FA-2026-00102")
    else:
        assert report["problems"] == []
    # the names given twice, the refusal's last
    pairs = json.loads(result.stdout, object_pairs_hook=list)
    assert [name for name, _ in pairs] == [
        "command", "ok", "exit_code", "error", "open", "resolved", "anomalies", "ok",
        "exit_code", "error", "problems"]
    assert [value for _, value in pairs[:4]] == ["payfip anomalies", True, 0, None]
    # the text: the lines written, then the error on standard error (a database
    # error by `pesgen`'s own handling, cli.main, as before)
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--db", store.url])
    if failure is _store_refusal:
        assert result.exit_code == ExitCode.STATE
        assert result.stderr.startswith("error: the store refused"), result.stderr
    else:
        assert isinstance(result.exception, sa.exc.OperationalError), result.output
    assert [line.split()[0] for line in result.stdout.splitlines()
            if line.startswith("#")] == [f"#{a['id']}" for a in whole[:3]]


def test_anomalies_as_json_refused_before_any_anomaly_is_written_is_the_refusal_alone():
    """Cut short before its first anomaly was written (the report's head is written with
    it): the refusal's report alone, as a refusal before the listing gives it."""
    cut = payfip_cli._Cut()
    rows = cut.rows(_failing_after(lambda: iter([{}]), 0, _store_refusal())())
    text = "".join(payfip_cli._anomalies_json(rows, 2, 0, cut))
    assert text == json_text({
        "command": "payfip anomalies", "ok": False, "exit_code": 7,
        "error": "the store refused",
        "problems": payfip_cli._problems_json(_store_refusal())}) + "\n"


def test_payments_as_json_cut_short_by_the_store_end_as_a_json_list(paid_after_cancel,
                                                                    monkeypatch, tmp_path):
    """`payfip payments --format json` writes its list a row at a time: the store
    failing after the first rows left a truncated list. The list is closed with the
    refusal as its last item (``command``, ``ok`` false, ``exit_code``, ``error``,
    ``problems``: no payment row has them), the error said on standard error as a
    refusal before the listing is, with its exit code. A file (-o) is written whole or
    not at all, as before."""
    store, real = paid_after_cancel, ledger.iter_payments
    whole = list(real(store))
    assert len(whole) > 3
    monkeypatch.setattr(ledger, "iter_payments", _failing_after(real, 3, _store_refusal()))
    result = CliRunner().invoke(app, ["payfip", "payments", "--format", "json",
                                      "--db", store.url])
    assert result.exit_code == ExitCode.STATE, result.output
    *rows, refusal = json.loads(result.stdout)
    assert rows == whole[:3]
    assert refusal == {"command": "payfip payments", "ok": False, "exit_code": 7,
                       "error": "the store refused",
                       "problems": payfip_cli._problems_json(_store_refusal())}
    assert result.stderr.startswith("error: the store refused"), result.stderr
    assert "invoice(s) in" not in result.stderr  # no summary of a listing cut short
    out = tmp_path / "payments.json"
    result = CliRunner().invoke(app, ["payfip", "payments", "--format", "json", "-o",
                                      str(out), "--db", store.url])
    assert result.exit_code == ExitCode.STATE and not out.exists(), result.output
    # a database error before the first row: the list holds the refusal alone, and the
    # error goes on to `pesgen`'s own handling (cli.main: its line, exit 7)
    monkeypatch.setattr(ledger, "iter_payments", _failing_after(real, 0,
                                                                _database_failure()))
    result = CliRunner().invoke(app, ["payfip", "payments", "--format", "json",
                                      "--db", store.url])
    assert isinstance(result.exception, sa.exc.OperationalError), result.output
    [refusal] = json.loads(result.stdout)
    assert (refusal["ok"], refusal["exit_code"], refusal["error"]) == (
        False, 7, "the state store failed: disk I/O error; nothing was recorded")
