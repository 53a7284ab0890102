# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""`payfip anomalies --limit N`: support with thousands of anomalies (a flood of unknown
idOps) lists the first N by number, and is told how many more the listing leaves (text:
a line; JSON: ``limit`` and ``more``); on SQLite and PostgreSQL."""

from __future__ import annotations

import functools

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pesgen._display import json_text
from pesgen.cli import app
from pesgen.errors import ExitCode
from pesgen.payfip import cli as payfip_cli
from pesgen.payfip import ledger

from .payfip_support import store  # noqa: F401 - fixture


@pytest.fixture
def flood(store):
    """Seven unknown-idop anomalies, the second and the sixth resolved: the store and
    their numbers."""
    from pesgen.payfip.tables import anomalies

    with store.engine.begin() as conn:
        conn.execute(anomalies.insert(), [
            {"at": "2026-11-24T10:00:00Z", "kind": "unknown-idop", "id_op": f"op-{n}",
             "invoice": None, "source": "notification", "expected": None, "got": None,
             "detail": "no such operation"} for n in range(7)])
        numbers = sorted(conn.execute(sa.select(anomalies.c.id)).scalars())
    for n in (numbers[1], numbers[5]):
        ledger.resolve_anomaly(store, n, "support", "a test of the receiver")
    return store, numbers


def _listed(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines() if line.startswith("#")]


def test_the_text_lists_the_first_n_then_says_how_many_more(flood):
    """Without a limit every open anomaly is listed, a line or more each (a million for
    a flood). --limit 3 lists the first three open ones by number, then a line saying
    how many more open ones are not listed; the count of the open ones as before. With
    --all, the first three, the resolved one among them, and the rest open or resolved."""
    store, numbers = flood
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--limit", "3",
                                      "--db", store.url])
    assert result.exit_code == 0, result.output
    assert _listed(result.stdout) == [f"#{n}" for n in (numbers[0], *numbers[2:4])]
    *_, more, count = result.stdout.splitlines()
    # the resolved one after them not counted: it is not listed without --all
    assert more == ("… 2 more open anomaly(ies) not listed (--limit 3: the first 3 by "
                    "number; --summary counts them by kind)")
    assert count.startswith("5 open: once decided") and count.endswith(
        "; 2 resolved (--all lists them)")

    result = CliRunner().invoke(app, ["payfip", "anomalies", "--all", "--limit", "3",
                                      "--db", store.url])
    assert result.exit_code == 0, result.output
    assert _listed(result.stdout) == [f"#{n}" for n in numbers[:3]]
    assert ("\n… 4 more anomaly(ies), open or resolved, not listed (--limit 3: the first 3 "
            "by number; --summary counts them by kind)\n5 open: ") in result.stdout

    # a limit the listing does not reach: the whole listing, no line more
    whole = CliRunner().invoke(app, ["payfip", "anomalies", "--db", store.url])
    for limit in ("5", "10"):
        result = CliRunner().invoke(app, ["payfip", "anomalies", "--limit", limit,
                                          "--db", store.url])
        assert (result.exit_code, result.stdout) == (0, whole.stdout), result.output
    assert "more open" not in whole.stdout and len(_listed(whole.stdout)) == 5


def test_the_json_report_gives_the_limit_and_how_many_more(flood):
    """JSON: ``limit`` (null without --limit) before the list, ``more`` after it (how
    many more the listing leaves: 0 when it is whole), the text's anomalies."""
    store, numbers = flood
    every = ledger.list_anomalies(store)
    items = {a["id"]: payfip_cli._anomaly_json(a, ledger.ANOMALY_ADVICE) for a in every}

    def report(*args: str) -> str:
        result = CliRunner().invoke(app, ["payfip", "anomalies", "--format", "json", *args,
                                          "--db", store.url])
        assert result.exit_code == 0 and result.stderr == "", result.output
        return result.stdout

    def expected(limit, listed, more) -> str:
        return json_text({"command": "payfip anomalies", "ok": True, "exit_code": 0,
                          "error": None, "open": 5, "resolved": 2, "limit": limit,
                          "anomalies": [items[n] for n in listed], "more": more}) + "\n"

    open_ones = [numbers[0], *numbers[2:5], numbers[6]]
    assert report("--limit", "3") == expected(3, open_ones[:3], 2)
    assert report("--limit", "3", "--all") == expected(3, numbers[:3], 4)
    assert report("--limit", "5") == expected(5, open_ones, 0)
    assert report() == expected(None, open_ones, 0)
    assert report("--all") == expected(None, numbers, 0)


def test_the_listing_reads_no_anomaly_past_its_limit(flood, monkeypatch):
    """The ledger stops at the limit, the last chunk reading only what it lacks (a limit
    of 3, two at a time: 2, then 1); the rest is counted, not read."""
    store, numbers = flood
    whole = ledger.list_anomalies(store)
    assert list(ledger.iter_anomalies(store, limit=3, chunk=2)) == whole[:3]
    assert list(ledger.iter_anomalies(store, limit=1)) == whole[:1]
    assert [a["id"] for a in ledger.iter_anomalies(store, open_only=True, limit=2,
                                                   chunk=2)] == [numbers[0], numbers[2]]
    # counted after the last listed, up to the last counted
    assert ledger.anomaly_counts(store, after=numbers[2], upto=numbers[5]) == (
        2, 1, numbers[5])
    assert ledger.anomaly_counts(store, after=numbers[0]) == (4, 2, numbers[6])
    # through the command: the limit given to the ledger
    seen = []
    real = ledger.iter_anomalies

    def spy(*args, **kwargs):
        seen.append(kwargs.get("limit"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, "iter_anomalies", functools.partial(spy, chunk=2))
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--limit", "3",
                                      "--db", store.url])
    assert result.exit_code == 0 and seen == [3], result.output


@pytest.mark.parametrize("args", [("--limit", "3", "--summary"), ("--limit", "0")],
                         ids=["with-summary", "zero"])
def test_a_limit_with_summary_or_below_one_is_refused(flood, args):
    store, _ = flood
    result = CliRunner().invoke(app, ["payfip", "anomalies", *args, "--db", store.url])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stdout == ""
    if "--summary" in args:
        assert ("error: --summary counts the anomalies of each kind, --limit lists the "
                "first N of them: give one of them") in result.stderr
    else:
        assert "Invalid value for '--limit'" in result.stderr, result.stderr
