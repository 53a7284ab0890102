"""``pesgen payfip …`` commands: link, payments (csv/json), reconcile, anomalies,
client-info, tipi-url, datamatrix; and ``fake``/``serve`` as real processes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import ExitCode
from pesgen.payfip import ledger
from pesgen.payfip.fake import FakePayfip
from pesgen.payfip.receiver import create_app
from pesgen.payfip.server import ServerThread
from pesgen.payfip.service import default_factory
from pesgen.store import Store

from .mapping_support import mapping_copy
from .payfip_support import INPUT, MAPPING, TIMEOUT

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def world(tmp_path):
    """The example exported through the CLI (PESGEN_DB from conftest), the fake and the
    receiver on the same state database."""
    code, out, err = _run("export", "-m", str(MAPPING), "-i", str(INPUT), "-o",
                          str(tmp_path / "out"), "--date", "2026-11-23", "-q")
    assert code == 0, err
    store = Store()
    fake = FakePayfip()
    with ServerThread(fake.app) as f, \
            ServerThread(create_app(store, default_factory(timeout=TIMEOUT))) as r:
        yield {"fake": f, "payfip": fake, "receiver": r, "store": store,
               "out": tmp_path / "out",
               "endpoint": f"{f.url}/tpa", "notify": f"{r.url}/payfip/notification"}


def _link(world, invoice="FA-2026-00102", *extra):
    return _run("payfip", "link", "-m", str(MAPPING), "-n", invoice, "--endpoint",
                world["endpoint"], "--notify-url", world["notify"], "--timeout", "5", *extra)


def test_a_test_link_says_what_saisie_t_means(world):
    """The example mapping's mode is T: its links, sent to families, collect nothing.
    The link said "saisie T" alone; a note says what it means, once for the batch; a
    production link (W) gets none."""
    code, out, err = _links(world, "FA-2026-00102", "FA-2026-00103", extra=())
    assert code == 0, err
    assert err == ("note: saisie T: test link(s): a payment through them is recorded as a "
                   "test (test-paid), never as a payment of the invoice; links for families "
                   "to pay are production ones, saisie W (payfip.mode: W in the mapping, or "
                   "--mode W) (docs/payfip.md, Test and activation mode)\n2 link(s) made\n"), err
    code, out, err = _link(world, "FA-2026-00105", "--mode", "X")
    assert code == 0 and err.startswith(
        "note: saisie X: activation link(s): a payment through them is recorded as a test"), err
    code, out, err = _link(world, "FA-2026-00107", "--mode", "W")
    assert code == 0 and "saisie" not in err, err


def test_link_pay_and_export_payments(world):
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    first, url = out.strip().splitlines()
    assert re.match(r"invoice FA-2026-00102: PayFiP operation [0-9a-f-]{36} \(refdet "
                    r"FA202600102, 187,50 EUR, saisie W\)$", first)
    id_op = url.rsplit("=", 1)[1]
    answer = httpx.post(f"{world['endpoint']}/paiementws.web",
                        data={"idop": id_op, "action": "card"}, timeout=TIMEOUT)
    assert answer.status_code == 200

    code, out, err = _run("payfip", "payments", "--since", "2020-01-01", "--format", "json",
                          "--history")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["invoice"] == "FA-2026-00102" and row["status"] == "paid"
    assert row["amount_due"] == row["amount_paid"] == "187.50" and row["method"] == "card"
    assert [h["event"] for h in row["history"]] == ["created", "paid"]

    code, out, err = _run("payfip", "payments", "--since", "2020-01-01")
    rows = list(csv.DictReader(io.StringIO(out), delimiter=";"))
    assert [(r["invoice"], r["status"], r["amount_paid"]) for r in rows] == [
        ("FA-2026-00102", "paid", "187.50")]
    # paid on its title, which stands: not one of the cancelled titles paid online
    assert "cancelled title(s) were paid online" not in err
    code, out, _ = _run("payfip", "payments", "--since", "2999-01-01")
    assert out.strip().splitlines()[1:] == []

    code, out, _ = _run("payfip", "reconcile")
    assert code == 0 and "nothing open" in out
    code, out, _ = _run("payfip", "anomalies")
    assert out.strip() == "no anomaly"


def test_payments_json_masks_the_password_of_a_url_its_history_quotes(world):
    """A cancellation's reason (typed by support) quoting a store URL with its password:
    --format json --history printed it whole; the invoice and the rest are as they were."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    store = world["store"]
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    store.cancel(run, "moved to postgresql://pesgen:s3cr3t@db.example/pesgen",
                 despite_payments=True)
    code, out, err = _run("payfip", "payments", "--format", "json", "--history")
    assert code == 0, err
    assert "s3cr3t" not in out
    [row] = json.loads(out)
    assert (row["invoice"], row["status"]) == ("FA-2026-00102", "cancelled")
    assert row["history"][-1]["detail"] == {
        "run": run, "reason": "moved to postgresql://pesgen:***@db.example/pesgen"}


def _unnoted(out: str) -> list[str]:
    """`runs find`'s lines less the policy notes its run recorded about the invoice."""
    return [x for x in out.splitlines() if not x.startswith("  policy: ")]


def _pay(world, link_output: str, action: str = "card") -> str:
    id_op = link_output.strip().splitlines()[1].rsplit("=", 1)[1]
    answer = httpx.post(f"{world['endpoint']}/paiementws.web",
                        data={"idop": id_op, "action": action}, timeout=TIMEOUT)
    assert answer.status_code == 200
    return id_op


def test_a_test_mode_payment_is_shown_as_such_and_production_still_pays(world):
    """saisie T (the example mapping's mode): the payment is listed as a test, with its
    saisie, and the invoice can then be paid for real."""
    code, out, err = _link(world)
    assert code == 0 and "saisie T)" in out, err
    test_op = _pay(world, out)

    code, out, err = _run("payfip", "payments", "--since", "2020-01-01")
    assert code == 0, err
    [row] = list(csv.DictReader(io.StringIO(out), delimiter=";"))
    assert (row["invoice"], row["status"], row["saisie"]) == ("FA-2026-00102", "test-paid", "T")
    assert row["amount_paid"] == row["method"] == row["paid_at"] == row["id_op"] == ""
    assert row["last_id_op"] == test_op
    code, out, err = _run("payfip", "payments", "--format", "json", "--history")
    [row] = json.loads(out)
    assert (row["status"], row["saisie"], row["amount_paid"]) == ("test-paid", "T", None)
    assert [(h["event"], h["status"]) for h in row["history"]] == [
        ("created", "pending"), ("test-paid", "test-paid")]

    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0 and "saisie W)" in out, err
    real_op = _pay(world, out, "debit")
    code, out, err = _run("payfip", "payments", "--since", "2020-01-01")
    [row] = list(csv.DictReader(io.StringIO(out), delimiter=";"))
    assert (row["status"], row["saisie"], row["amount_paid"], row["id_op"]) == (
        "paid", "W", "187.50", real_op)


def test_reconcile_counts_test_payments_apart(world):
    httpx.post(f"{world['fake'].url}/_fake/notifications", json={"enabled": False},
               timeout=TIMEOUT)
    for invoice, mode in (("FA-2026-00102", "T"), ("FA-2026-00103", "W"),
                          ("FA-2026-00105", "X")):
        code, out, err = _link(world, invoice, "--mode", mode)
        assert code == 0, err
        _pay(world, out)
    code, out, err = _run("payfip", "reconcile")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[-1] == "reconciled 3 operation(s): recorded 1, test-paid 2"
    assert sum("  FA-2026-00102  recorded, now test-paid" in line for line in lines) == 1
    assert sum("  FA-2026-00103  recorded, now paid" in line for line in lines) == 1


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_reconcile_counts_the_anomalies_it_recorded_and_says_where_they_are(world, fmt):
    """A family paid twice, both notifications lost: the sweep said `recorded, now paid`
    for both and `recorded 2`, the double payment only in a log line on standard error.
    Its line and its summary say the anomaly recorded, by kind, and where to see it; the
    JSON report has them (each operation's, and counted by kind)."""
    httpx.post(f"{world['fake'].url}/_fake/notifications", json={"enabled": False},
               timeout=TIMEOUT)
    ops = []
    for _ in range(2):
        # the first paid, its notification lost: still open, a second only with --again
        code, out, err = _link(world, "FA-2026-00102", "--mode", "W", "--again")
        assert code == 0, err
        ops.append(_pay(world, out))
    if fmt == "text":
        code, out, err = _run("payfip", "reconcile")
        assert code == 0, err
        assert out.strip().splitlines() == [
            f"{ops[0]}  FA-2026-00102  recorded, now paid",
            f"{ops[1]}  FA-2026-00102  recorded, now paid, anomaly double-payment",
            "reconciled 2 operation(s): recorded 2; 1 anomaly(ies) recorded (double-payment "
            "1): `pesgen payfip anomalies` says what to do"]
    else:
        code, out, err = _run("payfip", "reconcile", "--format", "json")
        assert code == 0, err
        report = json.loads(out)
        assert (report["counts"], report["anomalies"]) == (
            {"recorded": 2}, {"double-payment": 1})
        assert [(o["id_op"], o["status"], o["anomalies"]) for o in report["operations"]] == [
            (ops[0], "paid", []), (ops[1], "paid", ["double-payment"])]
    [anomaly] = ledger.list_anomalies(world["store"])
    assert (anomaly["kind"], anomaly["id_op"]) == ("double-payment", ops[1])


def _three_paid_unnotified(world) -> list[str]:
    """FA-2026-00102, 00103 and 00105 paid by card, their notifications lost."""
    httpx.post(f"{world['fake'].url}/_fake/notifications", json={"enabled": False},
               timeout=TIMEOUT)
    ops = []
    for invoice in ("FA-2026-00102", "FA-2026-00103", "FA-2026-00105"):
        code, out, err = _link(world, invoice, "--mode", "W")
        assert code == 0, err
        ops.append(_pay(world, out))
    return ops


def test_reconcile_asks_every_operation_through_one_client(world, monkeypatch):
    """A sweep of 20 000 operations made a client for each: the system's certificates
    loaded each time (0.1 s of CPU) and a new connection (docs/performance.md). One
    client per endpoint serves the sweep, closed at its end."""
    from pesgen.payfip import client as client_module

    _three_paid_unnotified(world)
    made = []

    class Counted(client_module.PayfipClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(client_module, "PayfipClient", Counted)
    code, out, err = _run("payfip", "reconcile")
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "reconciled 3 operation(s): recorded 3"
    assert len(made) == 1 and made[0]._http is None  # closed


def test_a_sweep_stopped_midway_has_said_what_it_recorded(world, monkeypatch):
    """Each outcome is printed as it is recorded: a long sweep shows its progress, and
    one that fails midway has said what it recorded before (it printed nothing)."""
    from pesgen.errors import StateError
    from pesgen.payfip import service

    invoices = dict(zip(_three_paid_unnotified(world),
                        ("FA-2026-00102", "FA-2026-00103", "FA-2026-00105"), strict=True))
    handled = []
    real = service.handle

    def failing_second(*args, **kwargs):
        if handled:
            raise StateError("the store went away")
        handled.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "handle", failing_second)
    code, out, err = _run("payfip", "reconcile")
    assert code == ExitCode.STATE
    [first] = handled
    assert out.splitlines() == [f"{first}  {invoices[first]}  recorded, now paid"]
    assert "the store went away" in err
    assert ledger.get_operation(world["store"], first)["status"] == "paid"


def _links(world, *invoices: str, extra: tuple[str, ...] = ("--mode", "W")):
    args = [a for invoice in invoices for a in ("-n", invoice)]
    return _run("payfip", "link", "-m", str(MAPPING), *args, "--endpoint", world["endpoint"],
                "--notify-url", world["notify"], "--timeout", "5", *extra)


BATCH = ("FA-2026-00102", "FA-2026-00103", "FA-2026-00105")


def test_link_makes_a_link_for_each_invoice_given(world):
    """`-n A -n B` kept only the last -n, saying nothing: one link for B. Each invoice
    given gets its link, in the order given, each with its own amount, refdet and payer."""
    code, out, err = _links(world, *BATCH)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 6
    assert [re.match(r"invoice (\S+): PayFiP operation", line).group(1)
            for line in lines[::2]] == list(BATCH)
    assert err.strip().splitlines()[-1] == "3 link(s) made"
    sent = world["payfip"].operations
    assert len(sent) == 3
    assert sorted(op.request["refdet"] for op in sent.values()) == [
        "FA202600102", "FA202600103", "FA202600105"]
    assert sorted(op.request["mel"] for op in sent.values()) == sorted(
        _example_email(i) for i in BATCH)
    code, out, err = _run("payfip", "payments", "--format", "json")
    assert sorted(r["invoice"] for r in json.loads(out)) == list(BATCH)


def test_a_batch_reads_the_input_and_the_titles_once(world, monkeypatch):
    """The run's input was read (and every active title's refdet evaluated) once per
    invoice linked: a batch reads each once (docs/performance.md)."""
    from pesgen import sources
    from pesgen.payfip import ledger as ledger_module

    reads, scans = [], []
    real_read, real_titles = sources.read_invoices, ledger_module.active_titles

    def counted_read(*args, **kwargs):
        reads.append(args[0])
        return real_read(*args, **kwargs)

    def counted_titles(*args, **kwargs):
        scans.append(args[1])
        return real_titles(*args, **kwargs)

    monkeypatch.setattr(sources, "read_invoices", counted_read)
    monkeypatch.setattr(ledger_module, "active_titles", counted_titles)
    code, out, err = _links(world, *BATCH)
    assert code == 0, err
    assert len(reads) == 1 and len(scans) == 1


def test_an_invoice_refused_in_a_batch_refuses_it_all_naming_each(world):
    """One invoice of the batch refused (in no run, its request invalid): nothing is sent
    for any, the error names each one refused, why, and the others; the exit code is the
    first refused one's."""
    code, out, err = _links(world, "FA-2026-00102", "FA-2099-99999", "FA-2026-00103",
                            extra=("--mode", "P"))
    assert code == ExitCode.INPUT, err  # FA-2026-00102's: its request is invalid
    assert out == ""
    assert ("error: 3 of 3 invoice(s) refused: FA-2026-00102, FA-2099-99999, "
            "FA-2026-00103; nothing was sent\n") in err
    # said once, for the batch: not again for each invoice, nor after the count
    assert "  invoice FA-2026-00102: the PayFiP request is invalid\n" in err
    assert err.count("nothing was") == 1, err
    assert err.endswith("\n2 problem(s), of 2 of the 3 refused invoice(s).\n"), err
    assert "FA-2099-99999: in no active run" in err
    assert "invoice FA-2026-00103: saisie: 'P' must be one of" in err
    code, out, err = _links(world, "FA-2026-00102", "FA-2099-99999", "FA-2026-00103")
    assert code == ExitCode.STATE, err
    assert ("error: 1 of 3 invoice(s) refused: FA-2099-99999; nothing was sent, for them "
            "nor for the others (FA-2026-00102, FA-2026-00103: give them again without the "
            "refused ones)") in err
    assert "  invoice FA-2099-99999: in no active run of collectivity" in err
    _nothing_sent(world)


def test_a_batch_refusal_lists_each_invoices_problems_under_it_and_counts_them_so(world):
    """Two of three invoices refused, one for a problem (no e-mail), one for none (in no
    active run): the problem is listed under its own invoice, not after every invoice's
    line, and the count says of how many refused invoices its problems are (it said
    "2 of 3 invoice(s) refused", then "1 problem(s)."). The JSON report keeps its fields:
    the error without the problems, the problems apart."""
    import json

    code, out, err = _links(world, "FA-2026-00102", "FA-2099-99999", "FA-2026-00104")
    assert code == ExitCode.STATE, err
    lines = err.splitlines()
    assert lines[0].startswith("error: 2 of 3 invoice(s) refused: FA-2099-99999, "
                               "FA-2026-00104; nothing was sent"), err
    assert lines[1].startswith("  invoice FA-2099-99999: in no active run"), err
    assert lines[2].startswith("  invoice FA-2026-00104: the PayFiP request is invalid"), err
    assert lines[3].startswith("    - invoice FA-2026-00104: mel: the payer's e-mail "), err
    assert lines[3].endswith("(rule payfip.mel)"), err
    assert lines[4:] == ["1 problem(s), of 1 of the 2 refused invoice(s)."], err
    code, out, err = _links(world, "FA-2026-00102", "FA-2099-99999", "FA-2026-00104",
                            extra=("--mode", "W", "--format", "json"))
    report = json.loads(out)
    assert code == ExitCode.STATE and err == "", err
    assert report["error"] == "\n".join(lines[:3]).removeprefix("error: "), report
    assert [p["rule"] for p in report["problems"]] == ["payfip.mel"], report
    # every refused invoice with problems of its own: "of the" refused invoices
    code, out, err = _links(world, "FA-2026-00102", "FA-2026-00104", extra=("--mode", "P"))
    assert code == ExitCode.INPUT, err
    assert err.endswith("\n3 problem(s), of the 2 refused invoice(s).\n"), err


def test_an_invoice_of_a_batch_refused_for_its_e_mail_says_to_link_it_alone_with_mel(world):
    """FA-2026-00104's payer has no e-mail in the example: its problem says "give one with
    --mel", which a batch refuses; the batch's error says how (on its own)."""
    code, out, err = _links(world, "FA-2026-00102", "FA-2026-00104")
    assert code == ExitCode.INPUT, err
    assert ("  invoice FA-2026-00104: the PayFiP request is invalid (--mel takes one "
            "invoice: link it on its own, -n FA-2026-00104 --mel ADDRESS)\n") in err, err
    assert "(rule payfip.mel)" in err
    code, out, err = _link(world, "FA-2026-00104", "--mel", "famille@example.org")
    assert code == 0, err
    # refused for another reason, no such hint
    code, out, err = _links(world, "FA-2026-00102", "FA-2099-99999")
    assert "--mel takes one invoice" not in err, err


def test_the_same_invoice_twice_or_one_mel_for_several_is_a_usage_error(world):
    code, out, err = _links(world, "FA-2026-00102", " fa-2026-00102")
    assert code == ExitCode.USAGE
    assert "-n FA-2026-00102 and -n  fa-2026-00102 name the same invoice" in err
    code, out, err = _links(world, *BATCH[:2], extra=("--mel", "famille@example.org"))
    assert code == ExitCode.USAGE and "--mel gives one payer's e-mail" in err
    _nothing_sent(world)


def _interrupted_on_call(monkeypatch, k: int) -> list[int]:
    """The PayFiP client raises KeyboardInterrupt (Ctrl-C) on its ``k``-th
    creerPaiementSecurise, before sending it; the calls made are counted."""
    from pesgen.payfip.client import PayfipClient

    calls: list[int] = []
    real = PayfipClient.creer_paiement_securise

    def interrupted(self, request):
        calls.append(1)
        if len(calls) == k:
            raise KeyboardInterrupt
        return real(self, request)

    monkeypatch.setattr(PayfipClient, "creer_paiement_securise", interrupted)
    return calls


def _linked(world) -> list[str]:
    code, out, err = _run("payfip", "payments", "--since", "2020-01-01", "--format", "json")
    assert code == 0, err
    return sorted(r["invoice"] for r in json.loads(out))


def test_a_batch_stopped_by_ctrl_c_names_the_links_made_and_the_invoices_not_sent(
        world, monkeypatch):
    """Ctrl-C while the second link is being made: exit 130, and stderr names the link
    made (printed above, recorded), the invoice whose link was being made and the one
    not sent; before, it said 'interrupted' (or nothing) and left the user to guess."""
    calls = _interrupted_on_call(monkeypatch, 2)
    code, out, err = _links(world, *BATCH)
    assert code == 130, err
    assert len(calls) == 2
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("invoice FA-2026-00102: PayFiP operation")
    assert err.splitlines()[-1] == (
        "interrupted: 1 link(s) made and recorded (FA-2026-00102); invoice FA-2026-00103: "
        "stopped while its link was being made, no link printed (an operation PayFiP may "
        "have made for it: recorded, `pesgen payfip payments` lists it and the same "
        "command run again gives its link, no second one; not recorded, nobody can pay "
        "it); 1 invoice(s) not sent: FA-2026-00105")
    assert "link(s) made\n" not in err
    assert _linked(world) == ["FA-2026-00102"] and len(world["payfip"].operations) == 1


def test_a_batch_stopped_by_ctrl_c_as_a_link_is_printed_gives_its_url(world, monkeypatch):
    """Ctrl-C as the second link's lines are printed: that link is made and recorded, its
    URL given on stderr (its printing cut short), the third not sent."""
    import typer

    real = typer.echo

    def cut(message=None, *args, **kwargs):
        if str(message).startswith("invoice FA-2026-00103: PayFiP operation"):
            raise KeyboardInterrupt
        return real(message, *args, **kwargs)

    monkeypatch.setattr(typer, "echo", cut)
    code, out, err = _links(world, *BATCH)
    assert code == 130, err
    [second] = [op for op in world["payfip"].operations.values()
                if op.request["refdet"] == "FA202600103"]
    said = err.splitlines()
    assert said[-2] == ("interrupted: 2 link(s) made and recorded (FA-2026-00102, "
                        "FA-2026-00103); 1 invoice(s) not sent: FA-2026-00105")
    assert said[-1].startswith(f"  the link of invoice FA-2026-00103 (operation {second.id_op}"
                               "), its printing cut short: http")
    assert said[-1].endswith(second.id_op)
    assert _linked(world) == ["FA-2026-00102", "FA-2026-00103"]


def test_a_batch_stopped_by_ctrl_c_while_checking_says_nothing_was_sent(world, monkeypatch):
    from pesgen.payfip import service

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(service, "build_request", interrupted)
    code, out, err = _links(world, *BATCH)
    assert code == 130 and out == ""
    assert err.splitlines()[-1] == ("interrupted: nothing sent (3 invoice(s) were being "
                                    "checked)")
    _nothing_sent(world)


def test_a_batch_whose_output_is_closed_stops_and_names_what_it_made(world):
    """`pesgen payfip link … | head -2`: the reader gone after the first link, the second
    (already on its way) is made and its URL given on stderr, the third is not sent, exit
    2 (an OSError's); before, every link was made and printed to nowhere, exit 0."""
    import asyncio
    import threading

    from pesgen.payfip.fake import FakePayfip
    from pesgen.payfip.server import ServerThread

    fake = FakePayfip()
    gate, calls = threading.Event(), []

    async def gated(scope, receive, send):
        # the second creerPaiementSecurise waits until the reader has closed the pipe
        if scope["type"] == "http" and scope["path"] == "/tpa/services/securite":
            calls.append(1)
            if len(calls) == 2:
                await asyncio.get_running_loop().run_in_executor(None, gate.wait, 60)
        await fake.app(scope, receive, send)

    args = [a for invoice in BATCH for a in ("-n", invoice)]
    with ServerThread(gated) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pesgen", "payfip", "link", "-m", str(MAPPING), *args,
             "--endpoint", f"{server.url}/tpa", "--notify-url", world["notify"],
             "--mode", "W", "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            first = [proc.stdout.readline(), proc.stdout.readline()]
            proc.stdout.close()
            gate.set()
            _out, err = proc.communicate(timeout=60)
        finally:
            gate.set()
            if proc.poll() is None:
                proc.kill()
    assert first[0].startswith("invoice FA-2026-00102: PayFiP operation"), (first, err)
    assert proc.returncode == ExitCode.USAGE, err
    assert ("error: standard output closed by its reader: 2 link(s) made and recorded "
            "(FA-2026-00102, FA-2026-00103); 1 invoice(s) not sent: FA-2026-00105") in err
    assert "  the link of invoice FA-2026-00103 (operation " in err
    assert len(calls) == 2 and len(fake.operations) == 2
    assert _linked(world) == ["FA-2026-00102", "FA-2026-00103"]


def test_link_errors_name_the_invoice_and_the_field(world):
    code, out, err = _link(world, "FA-2026-00102", "--mel", "x@", "--mode", "P")
    assert code == 4
    assert "invoice FA-2026-00102: the PayFiP request is invalid; nothing was sent" in err
    assert "invoice FA-2026-00102: mel: 'x@'" in err
    assert "invoice FA-2026-00102: saisie: 'P' must be one of T (test)" in err
    assert "2 problem(s)" in err
    code, out, err = _link(world, "FA-2099-99999")
    assert code == 7 and "FA-2099-99999: in no active run" in err


def _nothing_sent(world) -> None:
    assert world["payfip"].operations == {}
    code, out, err = _run("payfip", "payments", "--since", "2020-01-01", "--format", "json")
    assert code == 0 and json.loads(out) == [], err


def test_link_refuses_a_notification_or_return_url_payfip_would_not_take(world, tmp_path):
    """payfip.urlnotif, payfip.urlredirect: `payfip link` sends nothing (exit 4) for a URL
    that is not absolute http(s) or longer than 250 characters, naming the invoice and
    the field; one the mapping gives (its schema only asks for http(s)://) is named by
    its mapping line, the return URL made beside the mapping's notify_url by that line
    (the refusal named no line)."""
    code, out, err = _run("payfip", "link", "-m", str(MAPPING), "-n", "FA-2026-00102",
                          "--endpoint", world["endpoint"], "--notify-url",
                          "/payfip/notification")
    assert (code, out) == (4, ""), err
    # said once, first: the count of problems adds no "nothing was written." to it
    assert err.splitlines()[0] == "error: the PayFiP request is invalid; nothing was sent"
    assert err.splitlines()[1:] == [
        "  - invoice FA-2026-00102: urlnotif: '/payfip/notification' must be an absolute "
        "http(s) URL (rule payfip.urlnotif)", "1 problem(s)."]
    long = "https://ecole.example.org/" + "r" * 230
    code, out, err = _link(world, "FA-2026-00102", "--return-url", long)
    assert (code, out) == (4, ""), err
    assert err.splitlines() == [
        "error: invoice FA-2026-00102: the PayFiP request is invalid; nothing was sent",
        "  - invoice FA-2026-00102: urlredirect: is 256 characters long, PayFiP allows 250 "
        "(rule payfip.urlredirect)", "1 problem(s)."]
    _nothing_sent(world)

    given = "  notify_url: http://127.0.0.1:8765/payfip/notification\n"
    notify = "https://ecole.example.org/" + "n" * 220 + "/payfip/notification"
    mapping, _ = mapping_copy(tmp_path, MAPPING, (given, f"  notify_url: {notify}\n"),
                              name="long-url.yaml")
    line = _binding_line(mapping.read_text(encoding="utf-8"), "notify_url:")
    code, out, err = _run("payfip", "link", "-m", str(mapping), "-n", "FA-2026-00102",
                          "--endpoint", world["endpoint"])
    assert (code, out) == (4, ""), err
    assert err.splitlines()[1:] == [
        "  - invoice FA-2026-00102: urlnotif: is 266 characters long, PayFiP allows 250 "
        f"[mapping {mapping}:{line}: payfip.notify_url] (rule payfip.urlnotif)",
        "  - invoice FA-2026-00102: urlredirect: is 260 characters long, PayFiP allows 250 "
        f"[mapping {mapping}:{line}: payfip.notify_url] (rule payfip.urlredirect)",
        "2 problem(s)."]
    returned = f"  return_url: https://ecole.example.org/{'x' * 230}\n"
    mapping_copy(tmp_path, MAPPING, (given, given + returned), name="long-url.yaml")
    code, out, err = _run("payfip", "link", "-m", str(mapping), "-n", "FA-2026-00102",
                          "--endpoint", world["endpoint"])
    assert (code, out) == (4, ""), err
    assert err.splitlines()[1:] == [
        "  - invoice FA-2026-00102: urlredirect: is 256 characters long, PayFiP allows 250 "
        f"[mapping {mapping}:{line + 1}: payfip.return_url] (rule payfip.urlredirect)",
        "1 problem(s)."]
    _nothing_sent(world)


def _binding_line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _link_refused_with(world, mapping, tmp_path) -> str:
    """``payfip link`` of FA-2026-00102 with ``mapping``, after the example's run is
    cancelled and exported again with that mapping (the payer's e-mail is read as the
    run read its input: with the mapping it recorded): refused as input (exit 4); its
    standard error."""
    store = world["store"]
    for run in store.list_runs():
        if run.status == "committed":
            store.cancel(run.id, "exported again with another mapping")
    code, _out, err = _run("export", "-m", str(mapping), "-i", str(INPUT), "-o",
                           str(tmp_path / mapping.stem), "--date", "2026-11-23", "-q")
    assert code == 0, err
    code, _out, err = _run("payfip", "link", "-m", str(mapping), "-n", "FA-2026-00102",
                           "--endpoint", world["endpoint"], "--notify-url", world["notify"])
    assert code == 4, err
    return err


def test_a_missing_email_names_the_mel_option_and_the_mapping_binding(world, tmp_path):
    """FA-2026-00104's payer has no e-mail in the export: the refusal says how to give
    one (--mel) and where the run's mapping reads it, file:line, as other refusals do."""
    text = MAPPING.read_text(encoding="utf-8")
    line = _binding_line(text, "email: payer.email")
    code, out, err = _link(world, "FA-2026-00104")
    assert code == 4 and out == ""
    assert ("  - invoice FA-2026-00104: mel: the payer's e-mail address is missing: the run's "
            "recorded input gives none through bindings.payer.email; give one with --mel "
            f"[mapping {MAPPING}:{line}: bindings.payer.email] (rule payfip.mel)") in err
    code, out, err = _link(world, "FA-2026-00104", "--mel", "famille@example.org")
    assert code == 0, err

    # a run whose mapping reads no e-mail: it says so, and where to add the binding
    unbound, _ = mapping_copy(tmp_path, MAPPING, ("    email: payer.email\n", ""),
                              name="no-email.yaml")
    err = _link_refused_with(world, unbound, tmp_path)
    assert ("invoice FA-2026-00102: mel: the payer's e-mail address is missing: the mapping "
            "run ") in err
    assert (" recorded binds no payer.email; give one with --mel (or add "
            "bindings.payer.email to the mapping, for the next runs) "
            f"[mapping {unbound}: bindings.payer.email] (rule payfip.mel)") in err

    # an address the run's binding gives that PayFiP refuses: the binding is named too
    bad, _ = mapping_copy(tmp_path, MAPPING, ("email: payer.email",
                                              "email: {const: 'secretariat'}"),
                          name="bad-email.yaml")
    err = _link_refused_with(world, bad, tmp_path)
    assert ("invoice FA-2026-00102: mel: 'secretariat' is not an e-mail address PayFiP "
            "accepts (6 to 80 characters, one '@', no space); give another with --mel "
            f"[mapping {bad}:{line}: bindings.payer.email] (rule payfip.mel)") in err


def test_the_e_mail_is_read_with_the_mapping_the_run_recorded(world, tmp_path):
    """A run exported with the JSON mapping, linked with the collectivity's CSV mapping
    (same collectivity and PayFiP client): the payer's e-mail is read from the run's
    JSON input as the run read it, not refused as 'not CSV' naming a temporary file."""
    csv_mapping = MAPPING.with_name("villeneuve-sur-loing-csv.yaml")
    code, out, err = _run("payfip", "link", "-m", str(csv_mapping), "-n", "FA-2026-00102",
                          "--endpoint", world["endpoint"], "--notify-url", world["notify"])
    assert code == 0, err
    assert "not CSV" not in err
    [op] = [o for o in world["payfip"].operations.values()
            if o.request.get("refdet") == "FA202600102"]
    assert op.request["mel"] == _example_email("FA-2026-00102")


def _example_email(invoice: str) -> str:
    data = json.loads(INPUT.read_text(encoding="utf-8"))
    [inv] = [i for i in data["invoices"] if i["number"] == invoice]
    return inv["payer"]["email"]


def test_soap_fault_exit_code_and_message(world):
    httpx.post(f"{world['fake'].url}/_fake/fault", json={"operation": "*", "code": "999"},
               timeout=TIMEOUT)
    code, out, err = _link(world)
    assert code == 8
    assert "invoice FA-2026-00102: PayFiP creerPaiementSecurise: " \
           "TechDysfonctionnementErreur 999: Erreur technique" in err


def test_reconcile_reports_and_alerts_on_errors(world):
    code, out, _ = _link(world)
    id_op = out.strip().splitlines()[1].rsplit("=", 1)[1]
    code, out, _ = _run("payfip", "reconcile")
    assert code == 0 and f"{id_op}  FA-2026-00102  pending\n" in out
    world["fake"].stop()
    code, out, _ = _run("payfip", "reconcile", "--timeout", "2")
    assert code == 8 and "error 1" in out
    # what was done, then the status it left: PayFiP unreachable, the operation unknown
    assert f"{id_op}  FA-2026-00102  error, now unknown (" in out


def test_reconcile_as_json_reports_each_operation_and_alerts_on_errors(world):
    """`payfip reconcile --format json` (a cron job's monitoring): one report once the
    sweep is over, each operation asked with what was done and its status, the counts;
    PayFiP unreachable: exit 8, ok false, the error said, the operation left unknown."""
    code, out, _ = _link(world)
    id_op = out.strip().splitlines()[1].rsplit("=", 1)[1]
    code, out, err = _run("payfip", "reconcile", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["command"], report["ok"], report["exit_code"], report["error"],
            report["counts"]) == ("payfip reconcile", True, 0, None, {"pending": 1})
    assert report["operations"] == [{"id_op": id_op, "invoice": "FA-2026-00102",
                                     "action": "pending", "status": "pending",
                                     "message": None, "anomalies": []}]
    assert report["anomalies"] == {}  # none recorded
    world["fake"].stop()
    code, out, _ = _run("payfip", "reconcile", "--timeout", "2", "--format", "json")
    assert code == 8
    report = json.loads(out)
    assert (report["ok"], report["exit_code"], report["error"], report["counts"]) == (
        False, 8, "1 operation(s) could not be asked their result", {"error": 1})
    [asked] = report["operations"]
    assert (asked["id_op"], asked["action"], asked["status"]) == (id_op, "error", "unknown")
    assert asked["message"]


def test_anomalies_resolve_takes_the_db_given_before_it(world, tmp_path, monkeypatch):
    """`anomalies --db STORE resolve ID` resolves in STORE (here the default store),
    PESGEN_DB naming another; the subcommand's own --db, given too, wins. The group's
    --db was never seen (its source compared with click's ParameterSource, not typer's):
    the command went to PESGEN_DB's store, or the default one."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    id_op = out.strip().splitlines()[1].rsplit("=", 1)[1]
    httpx.post(f"{world['fake'].url}/_fake/tamper",
               json={"idop": id_op, "fields": {"montant": "5000"}}, timeout=TIMEOUT)
    _pay(world, out)
    store = world["store"].url
    code, out, err = _run("payfip", "anomalies")
    number = re.match(r"#(\d+)", out)[1]
    elsewhere = str(tmp_path / "elsewhere.sqlite3")
    monkeypatch.setenv("PESGEN_DB", elsewhere)
    code, out, err = _run("payfip", "anomalies", "--db", store, "resolve", number,
                          "--db", elsewhere, "--note", "n", "--by", "alice")
    assert code == 7 and f"no pesgen store at {elsewhere}" in err, (code, err)
    code, out, err = _run("payfip", "anomalies", "--db", store, "resolve", number,
                          "--note", "decided", "--by", "alice")
    assert code == 0, err
    assert out.startswith(f"anomaly #{number} amount-mismatch (invoice FA-2026-00102): "
                          "resolved "), out
    code, out, _ = _run("payfip", "anomalies", "--db", store)
    assert out.strip() == "no open anomaly (1 resolved: --all lists them)"


def test_anomalies_are_listed_with_what_to_do_and_resolved_with_a_note(world):
    """An amount-mismatch leaves the invoice pending: the list says so, with its title as
    the trésorerie knows it (IdBord, IdPce, run: the list named a title only once
    cancelled, and support asking the trésorerie about the money had to look it up), and
    what to do; `anomalies resolve ID --note` records who, when and the decision, and pays
    nothing."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    id_op = out.strip().splitlines()[1].rsplit("=", 1)[1]
    httpx.post(f"{world['fake'].url}/_fake/tamper",
               json={"idop": id_op, "fields": {"montant": "5000"}}, timeout=TIMEOUT)
    _pay(world, out)

    code, out, err = _run("payfip", "anomalies")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert re.match(rf"#(\d+)  \S+  amount-mismatch  op {id_op}  invoice FA-2026-00102  "
                    r"\(notification\): result P not recorded as a payment \[expected 18750, "
                    r"got 5000\]$", lines[0]), lines[0]
    number = re.match(r"#(\d+)", lines[0])[1]
    # what PayFiP says was collected, for support to tell the trésorerie: the amount it
    # reported, the one asked beside, how and when
    paid_at = ledger.get_operation(world["store"], id_op)["transaction_at"]
    assert paid_at and lines[1] == (f"    PayFiP answered P: 50.00 paid by card on {paid_at} "
                                    "(saisie W, 187.50 asked)")
    title = ledger.invoice_due(world["store"], "21450999400015", "FA-2026-00102")
    assert lines[2] == (f"    invoice FA-2026-00102: pending (its title: IdBord {title.id_bord} "
                        f"IdPce {title.id_pce} of run {title.run_id}); the anomaly recorded "
                        "no payment and changed no status")
    assert lines[3].startswith("    what to do: PayFiP reports another amount than the one "
                               "asked: ask the trésorerie what was collected")
    assert lines[4] == ("1 open: once decided, `pesgen payfip anomalies resolve ID --note "
                        "TEXT` (it records the decision; it records a payment only with "
                        "--applied, and a refund only with --refunded)")

    # not a number: refused as usage, nothing resolved
    for wrong in ("x3", "#", "3.0", "٣"):
        code, out, err = _run("payfip", "anomalies", "resolve", wrong, "--note", "n")
        assert code == 2 and f"error: anomaly '{wrong}': not an anomaly's number (3, or " \
            "'#3' as `pesgen payfip anomalies` lists it)" in err, (wrong, err)
    # the number as the list writes it, #3 (quoted in a shell)
    code, out, err = _run("payfip", "anomalies", "resolve", f"#{number}", "--note",
                          "trésorerie: 50,00 collected, 16,00 refunded", "--by", "alice")
    assert code == 0, err
    assert re.match(rf"anomaly #{number} amount-mismatch \(invoice FA-2026-00102\): resolved "
                    r"\S+ by alice; no payment was recorded$", out.strip()), out
    code, out, err = _run("payfip", "anomalies", "resolve", number, "--note", "again")
    assert code == 7 and f"anomaly {number} was already resolved on " in err

    code, out, _ = _run("payfip", "anomalies")
    assert out.strip() == "no open anomaly (1 resolved: --all lists them)"
    code, out, _ = _run("payfip", "anomalies", "--all")
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"#{number}  ") and re.match(
        r"    resolved \S+ by alice: trésorerie: 50,00 collected, 16,00 refunded$", lines[3])
    assert len(lines) == 4  # nothing open: no summary line
    code, out, _ = _run("payfip", "payments", "--since", "2020-01-01")
    [row] = list(csv.DictReader(io.StringIO(out), delimiter=";"))
    assert (row["status"], row["amount_paid"]) == ("pending", "")


@pytest.mark.parametrize("saisie, mode", [
    ("T", "saisie T: a test, nothing collected"),
    ("X", "saisie X: whether it debits the family is not confirmed"),
    ("W", "saisie W")])
def test_an_anomaly_s_payment_says_its_mode(saisie, mode):
    from pesgen.payfip.cli import _collected

    row = {"op_result": "P", "op_amount_cents": 18750, "op_reported": None,
           "op_saisie": saisie, "op_paid_at": "2026-12-05T17:08:00+01:00"}
    assert _collected(row) == (f"PayFiP answered P: 187.50 paid by card on "
                               f"2026-12-05T17:08:00+01:00 ({mode})")


def test_check_mapping_warns_of_a_payfip_rule_every_link_would_refuse(tmp_path):
    """A misspelt field in payfip.refdet gives an empty refdet for every invoice, and a
    rule keeping the dashes one PayFiP refuses: check-mapping said OK, and the first
    `payfip link` was refused. It evaluates the rules on a sample title and warns,
    naming the rule's line; the shipped mapping's rules give no warning."""
    code, out, err = _run("check-mapping", str(MAPPING))
    assert code == 0 and "payfip" not in err, err
    rule = '  refdet: {expr: "invoice.number | alnum"}'
    for expr, said in (("invoice.numbr | alnum", "refdet: '' must be 6 to 30 characters"),
                       ("invoice.number", "refdet: 'SAMPLE-1' must be 6 to 30 characters")):
        mapping, [line] = mapping_copy(tmp_path, MAPPING, (rule, f'  refdet: {{expr: "{expr}"}}'))
        code, out, err = _run("check-mapping", str(mapping))
        assert code == 0, err  # a warning: the exit code is unchanged
        [warning] = [w for w in err.splitlines() if w.startswith("warning:")]
        assert warning.startswith(f"warning: on a sample title (SAMPLE-1): {said}"), warning
        assert warning.endswith(f"`payfip link` would refuse such a value [mapping {mapping}:"
                                f"{line}: payfip.refdet] (rule payfip.refdet)"), warning
    mapping, _ = mapping_copy(tmp_path, MAPPING, ("invoice.number) | payfip_text",
                                                  "invoice.number) | paifip_text"))
    code, out, err = _run("check-mapping", str(mapping), "--format", "json")
    assert code == 0, err
    [warning] = json.loads(out)["mappings"][0]["warnings"]
    assert (warning["rule"], warning["key"]) == ("mapping.expr", "payfip.objet"), warning


def test_every_anomaly_kind_has_its_advice_and_its_procedure_in_the_docs():
    from pathlib import Path

    from pesgen.payfip import ledger

    source = Path(ledger.__file__).read_text(encoding="utf-8")
    kinds = set(re.findall(r'_anomaly\(conn, "([a-z-]+)"', source))
    kinds |= set(re.findall(r'mismatches\.append\(\("([a-z-]+)"', source))
    # recorded by the store: a paid title cancelled (`runs cancel`, migration 15)
    from pesgen import store

    kinds |= set(re.findall(r'"kind": "([a-z-]+)"',
                            Path(store.__file__).read_text(encoding="utf-8")))
    assert len(kinds) >= 12 and kinds == set(ledger.ANOMALY_ADVICE)
    docs = (Path(ledger.__file__).parents[2] / "docs" / "payfip.md").read_text(encoding="utf-8")
    section = docs.split("## Anomalies: what support does", 1)[1].split("\n## ", 1)[0]
    assert [k for k in sorted(kinds) if f"`{k}`" not in section] == []


def test_payments_of_the_invoices_given_in_every_format(world):
    """`payfip payments --invoice X`: support answering a family grepped the whole CSV
    for its invoice. The rows of the invoices given (repeatable), their numbers compared
    by their key as `runs find` compares them (`fa-2026-00102 ` is FA-2026-00102), in CSV
    and JSON, with --since and --history; an invoice with no row, or none changed since
    --since, is said on standard error, the exit 0 (the listing is whole)."""
    for invoice in ("FA-2026-00102", "FA-2026-00103"):
        code, out, err = _link(world, invoice, "--mode", "W")
        assert code == 0, err
        if invoice == "FA-2026-00102":
            _pay(world, out)
    code, out, err = _run("payfip", "payments", "--invoice", " fa-2026-00102 ")
    assert code == 0, err
    assert [(r["invoice"], r["status"]) for r in csv.DictReader(
        io.StringIO(out), delimiter=";")] == [("FA-2026-00102", "paid")]
    assert err == "1 invoice(s) in 1 row(s)\n"
    # a row with no key recorded (written otherwise than by a link) is keyed as it is read
    from pesgen.payfip.tables import payments

    with world["store"].engine.begin() as conn:
        conn.execute(payments.update().values(invoice_key=None))
    code, out, err = _run("payfip", "payments", "-n", "fa-2026-00102")
    assert [r["invoice"] for r in csv.DictReader(io.StringIO(out), delimiter=";")] == [
        "FA-2026-00102"], err
    code, out, err = _run("payfip", "payments", "--format", "json", "--history",
                          "--since", "2020-01-01", "-n", "FA-2026-00103",
                          "-n", "FA-2026-00102", "-n", "FA-2026-00199")
    assert code == 0, err
    rows = json.loads(out)
    assert sorted((r["invoice"], r["status"], r["history"][0]["event"]) for r in rows) == [
        ("FA-2026-00102", "paid", "created"), ("FA-2026-00103", "pending", "created")]
    # FA-2026-00103's link has no result recorded: support's "they paid, it shows
    # unpaid" is answered with the command that asks PayFiP (the paid one says nothing)
    [op] = [r["last_id_op"] for r in rows if r["invoice"] == "FA-2026-00103"]
    assert err == ("2 invoice(s) in 2 row(s)\nnote: invoice FA-2026-00199: no payment row: no "
                   "PayFiP link was made for it, so pesgen knows of no online payment of it; "
                   "a family that paid otherwise (Datamatrix, cheque, at the trésorerie) paid "
                   "the trésorerie: ask it (docs/payfip.md, A family says it paid)\n"
                   f"note: invoice FA-2026-00103: pending: its PayFiP link (operation {op}) "
                   "has no result recorded: the family may have paid and the notification "
                   "been lost; `pesgen payfip reconcile` asks PayFiP and records its answer "
                   "(docs/payfip.md, A family says it paid)\n")
    code, out, err = _run("payfip", "payments", "--since", "2999-01-01", "--invoice",
                          "FA-2026-00102")
    assert code == 0 and out.strip().splitlines()[1:] == [], out
    assert err == ("0 invoice(s) in 0 row(s)\nnote: invoice FA-2026-00102: its row did not "
                   "change since 2999-01-01 (without --since: its row as it stands)\n")


def test_payments_as_text_gives_a_line_an_invoice_for_a_person(world):
    """`payfip payments` printed CSV or JSON only: support read one 17-column line. With
    --format text, a line a row saying its columns in words (those empty left out); CSV
    stays the default (the school software reads it)."""
    for invoice in ("FA-2026-00102", "FA-2026-00103"):
        code, out, err = _link(world, invoice, "--mode", "W")
        assert code == 0, err
        if invoice == "FA-2026-00102":
            paid_op = _pay(world, out)
    code, out, err = _run("payfip", "payments", "--format", "text")
    assert code == 0, err
    paid, pending = out.splitlines()
    rows = {r["invoice"]: r for r in csv.DictReader(
        io.StringIO(_run("payfip", "payments")[1]), delimiter=";")}
    p = rows["FA-2026-00102"]
    assert paid == (f"FA-2026-00102: paid; due 187.50; paid 187.50 by card on {p['paid_at']}; "
                    f"last link {paid_op} (saisie W); numauto {p['numauto']}; refdet "
                    f"FA202600102; run {p['run']} IdBord {p['id_bord']}; SIRET "
                    f"21450999400015; updated {p['updated_at']}"), paid
    q = rows["FA-2026-00103"]
    assert pending == (f"FA-2026-00103: pending; due {q['amount_due']}; last link "
                       f"{q['last_id_op']} (saisie W); refdet FA202600103; run {q['run']} "
                       f"IdBord {q['id_bord']}; SIRET 21450999400015; updated "
                       f"{q['updated_at']}"), pending
    assert err == "2 invoice(s) in 2 row(s)\n"
    code, out, err = _run("payfip", "payments", "--format", "text", "-n", "FA-2026-00102")
    assert code == 0 and out.splitlines() == [paid], err
    code, out, err = _run("payfip", "payments", "--format", "yaml")
    assert code == 2 and "--format must be csv, json or text, got 'yaml'" in err, err


def test_payments_refuses_a_format_it_does_not_write():
    """`payfip payments --format` takes csv, json or text, as written: a near spelling
    ('txt', 'CSV') is refused (exit 2) naming the three, never read as one of them nor
    given as the CSV default, which the school software would import."""
    for fmt in ("txt", "CSV", "Text"):
        code, out, err = _run("payfip", "payments", "--format", fmt)
        assert code == 2 and out == "", (fmt, out)
        assert f"--format must be csv, json or text, got '{fmt}'" in err, err


def test_runs_find_says_the_invoices_payfip_status(world):
    """"A family says it paid": `runs find` gave the title and its Hélios status, the
    PayFiP state needing `payfip payments --invoice`. A line under the invoice's title says
    it as that listing reads it: paid (amount, when, link), pending (amount due, as of,
    link), none without a link; --format json gives the rows as `payments --format json`."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    paid_op = _pay(world, out)
    code, out, err = _link(world, "FA-2026-00103", "--mode", "W")
    assert code == 0, err
    rows = {r["invoice"]: r for r in json.loads(_run("payfip", "payments", "--format",
                                                     "json")[1])}
    code, out, err = _run("runs", "find", "FA-2026-00102")
    assert code == 0, err
    p = rows["FA-2026-00102"]
    assert _unnoted(out)[2:] == [f"  PayFiP: paid 187.50 on {p['paid_at']} (link {paid_op}, "
                                    "saisie W)"], out
    code, out, err = _run("runs", "find", "fa-2026-00103")
    q = rows["FA-2026-00103"]
    assert _unnoted(out)[2:] == [
        f"  PayFiP: pending, due {q['amount_due']}, as of {q['updated_at']} (link "
        f"{q['last_id_op']}, saisie W)"], out
    code, out, err = _run("runs", "find", "FA-2026-00104")
    assert _unnoted(out)[2:] == [
        "  PayFiP: none (no PayFiP link made for it: pesgen knows of no online payment; one "
        "paid otherwise paid the trésorerie)"], out
    code, out, err = _run("runs", "find", "FA-2026-00102", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["payfip"] == [p]
    code, out, err = _run("runs", "find", "FA-2026-00104", "--format", "json")
    assert json.loads(out)["payfip"] == []
    # its title cancelled, the invoice exported again: the line says each title's row,
    # once, under the invoice's last title
    store = world["store"]
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00103").run_id
    store.cancel(run, "wrong term", despite_payments=True)
    code, out, err = _run("export", "-m", str(MAPPING), "-i", str(INPUT), "-o",
                          str(world["out"].parent / "again"), "--date", "2026-11-24", "-q")
    assert code == 0, err
    code, out, err = _run("runs", "find", "FA-2026-00103")
    rows = [r for r in json.loads(_run("payfip", "payments", "--format", "json")[1])
            if r["invoice"] == "FA-2026-00103"]
    assert [line for line in out.splitlines() if "PayFiP" in line] == [
        f"  PayFiP: cancelled, due 0.00, as of {rows[0]['updated_at']}, PayFiP says pending "
        f"(IdBord 1, link {q['last_id_op']}, saisie W); pending, due {q['amount_due']}, as of "
        f"{rows[1]['updated_at']} (IdBord 2, no link made for this title)"], out
    assert out.splitlines()[-1].startswith("  PayFiP:"), out


def test_runs_find_names_the_link_that_paid_not_the_last_one(world):
    """"A family says it paid twice": `runs find` said `paid … (link L)` with L the last
    link made, not the one that paid, and nothing of that later link, through which the
    family may have paid again (its result not recorded until a notification or
    `payfip reconcile`). The line names the link that paid and the later one, with what a
    payment through it too: recorded by reconcile, a double payment listed by anomalies."""
    from pesgen.cli import _payfip_said

    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    code, later, err = _link(world, "FA-2026-00102", "--mode", "T")
    assert code == 0, err
    test_op = later.strip().splitlines()[1].rsplit("=", 1)[1]
    paid_op = _pay(world, out)
    code, out, err = _run("runs", "find", "FA-2026-00102")
    assert code == 0, err
    p = {r["invoice"]: r for r in json.loads(_run("payfip", "payments", "--format",
                                                  "json")[1])}["FA-2026-00102"]
    assert _unnoted(out)[2:] == [
        f"  PayFiP: paid 187.50 on {p['paid_at']} (through link {paid_op}, saisie W; later "
        f"link {test_op}: if the family paid through it too, `pesgen payfip reconcile` records "
        "it and `pesgen payfip anomalies` lists the double payment (a test link's collects "
        "nothing))"], out
    # paid through the last link made: that link, as before
    assert _payfip_said([{**p, "last_id_op": paid_op}]) == (
        f"paid 187.50 on {p['paid_at']} (link {paid_op}, saisie W)")
    # payments --format text said 'last link {test_op} (saisie W)', the saisie being the
    # paying link's: said beside the link that paid
    code, out, err = _run("payfip", "payments", "--format", "text", "-n", "FA-2026-00102")
    assert code == 0, err
    assert f"; last link {test_op}; paid through {paid_op} (saisie W); numauto " in out, out


def test_runs_find_says_a_double_payment_recorded_and_what_to_do(world):
    """"They paid twice" (the README's support table starts with `runs find`): both
    payments notified, the double payment recorded as an anomaly, `runs find` still said
    of the later link 'if the family paid through it too, … anomalies lists the double
    payment', as a maybe, and named no anomaly. It says the later link paid too, and the
    open anomaly under the PayFiP line with what to do and the commands (its JSON:
    payfip_anomalies); once resolved, neither."""
    links = []
    for _ in range(2):  # the second sent before the first was paid
        code, out, err = _link(world, "FA-2026-00102", "--mode", "W", "--again")
        assert code == 0, err
        links.append(out)
    ops = [_pay(world, out) for out in links]
    [anomaly] = ledger.list_anomalies(world["store"])
    assert (anomaly["kind"], anomaly["id_op"]) == ("double-payment", ops[1])
    number = anomaly["id"]
    code, out, err = _run("runs", "find", "FA-2026-00102")
    assert code == 0, err
    payfip = [x for x in out.splitlines() if x.startswith("  PayFiP")]
    assert len(payfip) == 2, out
    assert payfip[0].endswith(f"(through link {ops[0]}, saisie W; later link {ops[1]}: paid "
                              f"too, double-payment anomaly #{number} below)"), payfip[0]
    assert payfip[1] == (
        f"  PayFiP anomaly #{number} open: double-payment (operation {ops[1]}, "
        f"{anomaly['at']}): the invoice was already paid: ask the trésorerie to refund one "
        "payment (`pesgen payfip anomalies` says it in full; once decided, `pesgen payfip "
        f"anomalies resolve {number} --note TEXT` records the decision)"), payfip[1]
    code, out, err = _run("runs", "find", "FA-2026-00102", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["payfip_anomalies"] == [{
        "id": number, "at": anomaly["at"], "kind": "double-payment", "id_op": ops[1],
        "invoice": "FA-2026-00102",
        "what_to_do": "the invoice was already paid: ask the trésorerie to refund one payment"}]
    # another invoice's find names none of it
    code, out, err = _run("runs", "find", "FA-2026-00103", "--format", "json")
    assert json.loads(out)["payfip_anomalies"] == []
    # resolved: no longer said open
    code, out, err = _run("payfip", "anomalies", "resolve", str(number), "--note",
                          "refunded by the trésorerie")
    assert code == 0, err
    code, out, err = _run("runs", "find", "FA-2026-00102")
    assert "anomaly" not in out and "if the family paid through it too" in out, out


def test_payments_says_to_check_an_expired_operation_with_the_tresorerie(world):
    """P1: PayFiP purged the operation; the family may have paid before (its notification
    lost). The list is unchanged (the school software reads it); standard error says what
    to check."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    code, out, err = _run("payfip", "payments")
    assert code == 0 and "expired" not in err
    world["payfip"].operations.clear()  # the night purge
    code, out, err = _run("payfip", "reconcile")
    assert code == 0 and "  FA-2026-00102  expired (P1" in out, out
    code, out, err = _run("payfip", "payments")
    assert code == 0, err
    [row] = list(csv.DictReader(io.StringIO(out), delimiter=";"))
    assert row["status"] == "expired"
    assert err == ("1 invoice(s) in 1 row(s)\nnote: 1 invoice(s) expired: PayFiP no longer "
                   "knows their operation, so whether the family paid before it expired is "
                   "not known; check with the trésorerie before sending a new link "
                   "(docs/payfip.md)\n")
    code, out, err = _run("payfip", "payments", "--format", "json")
    assert code == 0 and json.loads(out)[0]["status"] == "expired" and "trésorerie" in err


def test_client_info(world):
    code, out, err = _run("payfip", "client-info", "-m", str(MAPPING), "--endpoint",
                          world["endpoint"])
    assert code == 0, err
    assert out.strip() == "numcli 012345: COLLECTIVITE DE TEST / REGIE DE TEST / PAYFIP FAKE"


def test_tipi_url_and_the_fake_legacy_page(world):
    code, out, err = _run("payfip", "tipi-url", "-m", str(MAPPING), "-n", "FA-2026-00102",
                          "--urlcl", "https://ecole.example.org/tipi/retour",
                          "--endpoint", world["endpoint"])
    assert code == 0, err
    url = out.strip()
    assert url.startswith(f"{world['endpoint']}/paiement.web?numcli=012345&exer=2026&"
                          "refdet=FA202600102&objet=CONSERVATOIRE+VSL+FACTURE+FA+2026+00102&"
                          "montant=18750&mel=")
    assert url.endswith("&urlcl=https%3A%2F%2Fecole.example.org%2Ftipi%2Fretour&saisie=T")
    assert httpx.get(url, timeout=TIMEOUT).status_code == 200
    form = dict(httpx.QueryParams(url.split("?", 1)[1]))
    back = httpx.post(f"{world['endpoint']}/paiement.web", data={**form, "action": "card"},
                      timeout=TIMEOUT)
    assert back.status_code == 303
    returned = dict(httpx.QueryParams(back.headers["location"].split("?", 1)[1]))
    assert returned["resultrans"] == "P" and returned["refdet"] == "FA202600102"


def test_a_bad_urlcl_is_one_problem_naming_urlcl(world):
    """The TIPI URL protocol has one URL, urlcl: a bad one is said once, as urlcl (not
    as the web service's urlnotif and urlredirect), exit 4, nothing printed."""
    code, out, err = _run("payfip", "tipi-url", "-m", str(MAPPING), "-n", "FA-2026-00102",
                          "--urlcl", "ftp://x/y", "--endpoint", world["endpoint"])
    assert code == 4, err
    assert out == ""
    rules = re.findall(r"\(rule (payfip\.[a-z-]+)\)", err)
    assert rules == ["payfip.urlcl"], err
    assert "urlcl: 'ftp://x/y' must be an absolute http(s) URL" in err
    assert "urlnotif" not in err and "urlredirect" not in err


def test_a_paid_invoice_gets_no_tipi_url_nor_link(world):
    """tipi-url made a legacy payment link for an invoice PayFiP had already paid: the
    family could pay twice, and pesgen records nothing from a TIPI return. It is refused
    (exit 7), as link is, naming the payment recorded: amount, date, operation."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    id_op = _pay(world, out)
    row = ledger.payment_of(world["store"], "21450999400015", "FA-2026-00102")
    assert row["status"] == "paid" and row["id_op"] == id_op
    said = (f"invoice FA-2026-00102: already paid through PayFiP: 187.50 by card on "
            f"{row['paid_at']} (operation {id_op}); no ")
    code, out, err = _run("payfip", "tipi-url", "-m", str(MAPPING), "-n", "fa-2026-00102",
                          "--urlcl", "https://ecole.example.org/tipi/retour",
                          "--endpoint", world["endpoint"])
    assert code == ExitCode.STATE, out + err
    assert out == ""  # no URL printed
    assert f"error: {said}TIPI link: the family would pay twice" in err
    assert "(rule payfip.paid)" in err
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == ExitCode.STATE and out == "", out + err
    assert f"error: {said}new link" in err
    assert len(world["payfip"].operations) == 1  # nothing more sent to PayFiP
    # another invoice, not paid, still gets its TIPI link
    code, out, err = _run("payfip", "tipi-url", "-m", str(MAPPING), "-n", "FA-2026-00103",
                          "--urlcl", "https://ecole.example.org/tipi/retour",
                          "--endpoint", world["endpoint"])
    assert code == 0 and "refdet=FA202600103" in out, err


def test_datamatrix_of_a_run(world):
    run_id = Store().list_runs()[0].id
    code, out, err = _run("payfip", "datamatrix", "--run", run_id[:8], "-m", str(MAPPING),
                          "--image", "both")
    assert code == 0, err
    stem = "PESORMC_21450999400015_2026_0000001"
    assert f"{stem}.datamatrix.csv" in out and "UNCONFIRMED" in out
    rows = list(csv.DictReader((world["out"] / f"{stem}.datamatrix.csv").open(encoding="utf-8"),
                               delimiter=";"))
    assert len(rows) == 11
    row = next(r for r in rows if r["invoice"] == "FA-2026-00102")
    assert len(row["payload"]) == 130 and row["payload"].endswith("806    18750")
    # the title's values as its ORMC file holds them, where notes section 13 puts them:
    # Per 1, CodProdLoc INST (IN: 8 x 26 + 13 + 1), Exer 2026, Cle2 V (the 20th key
    # letter), NumDette on 15 digits, IdPost 045012
    text = row["payload"]
    assert (row["id_bord"], row["id_pce"]) == ("1", "2")
    assert (text[67], text[68:71], text[71:75]) == ("1", "222", "0026")
    assert text[91:115] == "20" + "000000202600102" + "045012" + "4"
    assert (world["out"] / f"{stem}.datamatrix" / "FA-2026-00102.svg").is_file()
    png = world["out"] / f"{stem}.datamatrix" / "FA-2026-00102.png"
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    [decoded] = zxingcpp.read_barcodes(Image.open(png))
    assert decoded.text == row["payload"]


def test_datamatrix_into_a_folder_to_make_says_only_what_it_wrote(world, tmp_path):
    """--out a folder that does not exist yet (nor its parent): made. Its CSV's columns,
    and the SVG images alone by default; with nothing skipped and nothing paid online,
    nothing is said on stderr."""
    run_id = Store().list_runs()[0].id
    target = tmp_path / "print" / "datamatrix"
    code, out, err = _run("payfip", "datamatrix", "--run", run_id[:8], "-m", str(MAPPING),
                          "--out", str(target))
    assert (code, err) == (0, ""), err
    stem = "PESORMC_21450999400015_2026_0000001"
    assert out.startswith(f"wrote {target / stem}.datamatrix.csv  (11 image(s) in ")
    with (target / f"{stem}.datamatrix.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    assert rows[0] == ["invoice", "id_bord", "id_pce", "layout", "payload", "image"]
    assert rows[2][:4] == ["FA-2026-00102", "1", "2", "1 (UNCONFIRMED)"]
    assert rows[2][5] == f"{stem}.datamatrix/FA-2026-00102.svg"
    images = sorted(p.name for p in (target / f"{stem}.datamatrix").iterdir())
    assert len(images) == 11 and all(name.endswith(".svg") for name in images)
    assert not list(world["out"].glob("*.datamatrix*"))


def test_datamatrix_png_images_are_the_ones_its_csv_names(world, tmp_path):
    """--image png: each row's image column names its PNG, beside the CSV."""
    run_id = Store().list_runs()[0].id
    target = tmp_path / "png"
    code, _out, err = _run("payfip", "datamatrix", "--run", run_id[:8], "-m", str(MAPPING),
                           "--image", "png", "--out", str(target))
    assert code == 0, err
    stem = "PESORMC_21450999400015_2026_0000001"
    with (target / f"{stem}.datamatrix.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    assert rows[2][0] == "FA-2026-00102"
    assert rows[2][5] == f"{stem}.datamatrix/FA-2026-00102.png"
    assert all((target / row[5]).is_file() for row in rows[1:]) and len(rows) == 12


def test_datamatrix_refuses_a_run_it_cannot_lay_out_and_writes_nothing(world):
    """payfip.datamatrix: a code établissement of 4 digits fits no title of the layout
    (3 digits or 2 letters), and a run whose file is gone cannot be read: each is refused
    (exit 6), naming the title and its invoice, or the file, and no Datamatrix file is
    written."""
    run_id = Store().list_runs()[0].id
    stem = "PESORMC_21450999400015_2026_0000001"
    code, out, err = _run("payfip", "datamatrix", "--run", run_id[:8],
                          "--code-etablissement", "0001")
    assert (code, out) == (6, ""), err
    said = err.splitlines()
    assert said[0] == f"error: run {run_id}: Datamatrix not written"
    assert said[-1] == "11 problem(s); nothing was written."
    assert said[1] == (f"  - invoice FA-2026-00101: title 1 of {stem}.xml: code établissement "
                       "'0001' is neither up to 3 digits nor 2 letters (rule payfip.datamatrix)")
    assert len(said) == 13 and all(s.endswith("(rule payfip.datamatrix)") for s in said[1:-1])
    assert not list(world["out"].glob("*.datamatrix*"))

    xml = world["out"] / f"{stem}.xml"
    xml.unlink()
    code, out, err = _run("payfip", "datamatrix", "--run", run_id[:8],
                          "--code-etablissement", "001")
    assert (code, out) == (6, ""), err
    assert err.splitlines() == [
        f"error: run {run_id}: Datamatrix not written",
        f"  - {xml}: file of run {run_id} not found (rebuild it with `pesgen regenerate`) "
        "(rule payfip.datamatrix)", "1 problem(s); nothing was written."]
    assert not list(world["out"].glob("*.datamatrix*"))


def test_datamatrix_needs_the_code_etablissement(world):
    run_id = Store().list_runs()[0].id
    code, _, err = _run("payfip", "datamatrix", "--run", run_id)
    assert code == 2 and "code établissement" in err


@pytest.mark.parametrize("mapping", ["villeneuve-sur-loing-emagnus.yaml",
                                     "villeneuve-sur-loing-titres.yaml"])
def test_datamatrix_of_a_run_that_is_no_role_is_one_clear_refusal(tmp_path, mapping):
    """Only an ORMC carries NumDette, Per and Cle2: a finance package's import (not XML)
    made a traceback, a titres file one problem per title."""
    code, _, err = _run("export", "-m", str(MAPPING.parent / mapping), "-i", str(INPUT),
                        "-o", str(tmp_path / "out"), "--date", "2026-11-23", "-q")
    assert code == 0, err
    run_id = Store().list_runs()[0].id
    code, _, err = _run("payfip", "datamatrix", "--run", run_id[:8],
                        "--code-etablissement", "001")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err  # one error
    assert f"run {run_id} is a " in err and "PES ORMC (rôle, TypBord 06)" in err
    assert not list((tmp_path / "out").glob("*.datamatrix*"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen) -> None:
    """Until ``url`` answers, ``proc`` (serving it) still running."""
    # a process importing pesgen, uvicorn and the receiver: seconds, several times that
    # on a loaded machine (two test processes on two cores)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exit {proc.returncode}"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


class _Said:
    """The lines ``proc`` writes to its standard error, read as they come by a thread of
    their own (the pipe never fills, whatever the process logs)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        import threading

        self.lines: list[str] = []
        assert proc.stderr is not None
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(
            proc.stderr.readline, "")), daemon=True)
        self.reader.start()

    def port(self, proc: subprocess.Popen) -> int:
        """The port ``proc`` (`pesgen payfip fake|serve --port 0`) listens on, as uvicorn
        says once listening: the system's choice, bound by the process itself. A port
        picked here and let go before the process bound it could be taken meanwhile by a
        server of a test running beside this one."""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            reading = self.reader.is_alive()  # else every line is in, the process gone
            for line in list(self.lines):
                found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
                if found:
                    return int(found.group(1))
            assert reading, f"exit {proc.wait()}: {''.join(self.lines)}"
            time.sleep(0.05)
        raise AssertionError(f"no port said: {''.join(self.lines)}")

    def all(self) -> str:
        self.reader.join(10)
        return "".join(self.lines)


def test_fake_and_serve_commands_as_processes(tmp_path):
    """The demo's two servers, started as real ``pesgen payfip`` processes."""
    env = {**os.environ, "PESGEN_DB": str(tmp_path / "db.sqlite3")}
    pesgen = [sys.executable, "-c", "from pesgen.cli import main; main()"]
    procs = [subprocess.Popen([*pesgen, "payfip", "fake", "--port", "0"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
             subprocess.Popen([*pesgen, "payfip", "serve", "--port", "0",
                               "--create-store"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    said = [_Said(proc) for proc in procs]
    try:
        fake_port, serve_port = (s.port(proc) for s, proc in zip(said, procs, strict=True))
        _wait(f"http://127.0.0.1:{fake_port}/", procs[0])
        _wait(f"http://127.0.0.1:{serve_port}/healthz", procs[1])
        answer = httpx.post(f"http://127.0.0.1:{serve_port}/payfip/notification",
                            data={"idop": "00000000-0000-0000-0000-000000000000"},
                            timeout=TIMEOUT)
        assert answer.status_code == 404
        # the family's browser comes back with the amount and its e-mail in the query
        httpx.get(f"http://127.0.0.1:{serve_port}/payfip/retour?numcli=012345&exer=2026"
                  "&refdet=FA20260001&objet=x&montant=28275&mel=helene.dupont%40example.org"
                  "&saisie=T&resultrans=P&idop=00000000-0000-0000-0000-000000000000",
                  timeout=TIMEOUT)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    # no billing data in logs (docs/payfip.md): uvicorn's access log wrote whole query
    # strings
    logged = procs[1].stdout.read() + said[1].all()
    assert "helene.dupont" not in logged and "montant" not in logged, logged


@pytest.mark.parametrize("command", [("payfip", "payments"), ("payfip", "reconcile")])
def test_a_malformed_since_names_the_since_option(command):
    code, _out, err = _run(*command, "--since", "01/11/2026")
    assert code == 2
    assert "--since must be YYYY-MM-DD, got '01/11/2026'" in err


def test_serve_keeps_one_client_per_endpoint_for_its_life(tmp_path, monkeypatch):
    """`payfip serve` gives the receiver a factory keeping its clients (one per endpoint
    across notifications, not one each), closed when the server stops."""
    from pesgen.payfip import cli as payfip_cli
    from pesgen.payfip import receiver, server, service

    seen = {}
    real = receiver.create_app

    def capture(store, factory, *args, **kw):
        seen["factory"] = factory
        return real(store, factory, *args, **kw)

    def run(app, host, port):
        seen["factory"](f"http://127.0.0.1:{_free_port()}/tpa")  # a client, made and kept
        seen["open"] = dict(seen["factory"].clients)

    monkeypatch.setattr(receiver, "create_app", capture)
    monkeypatch.setattr(server, "run", run)
    # its log handler would write to this runner's stream, closed after it
    monkeypatch.setattr(payfip_cli, "_log_outcomes", lambda: None)
    code, out, err = _run("payfip", "serve", "--db", str(tmp_path / "s.sqlite3"),
                          "--create-store")
    assert code == 0, err
    assert isinstance(seen["factory"], service.KeptClients)
    assert len(seen["open"]) == 1 and seen["factory"].clients == {}  # closed at the end


@pytest.mark.parametrize("given, env, wait", [
    ([], None, 5.0), (["--store-wait", "2.5"], None, 2.5), ([], "3", 3.0)])
def test_serve_bounds_each_notification_s_wait_for_the_store(tmp_path, monkeypatch, given,
                                                             env, wait):
    """`payfip serve --store-wait` (PESGEN_PAYFIP_STORE_WAIT; default 5 s, well under an
    HTTP client's timeout, not store_lock_timeout's 10 minutes) reaches the receiver."""
    from pesgen.payfip import cli as payfip_cli
    from pesgen.payfip import receiver, server

    seen = {}
    real = receiver.create_app

    def capture(store, factory, *args, **kw):
        seen.update(kw)
        return real(store, factory, *args, **kw)

    monkeypatch.setattr(receiver, "create_app", capture)
    monkeypatch.setattr(server, "run", lambda app, host, port: None)
    monkeypatch.setattr(payfip_cli, "_log_outcomes", lambda: None)
    if env is None:
        monkeypatch.delenv("PESGEN_PAYFIP_STORE_WAIT", raising=False)
    else:
        monkeypatch.setenv("PESGEN_PAYFIP_STORE_WAIT", env)
    code, out, err = _run("payfip", "serve", "--db", str(tmp_path / "s.sqlite3"),
                          "--create-store", *given)
    assert code == 0, err
    assert seen["store_wait"] == wait


def test_serve_s_default_store_wait_is_the_receiver_s():
    """The receiver's own default wait (``receiver.STORE_WAIT``, an app made without
    one) is the one `payfip serve` gives without --store-wait, written again in the
    command (the receiver needs starlette, which the command imports only to serve)."""
    import inspect

    from pesgen.payfip import cli as payfip_cli
    from pesgen.payfip import receiver

    given = inspect.signature(payfip_cli.serve).parameters["store_wait"].default
    made = inspect.signature(receiver.create_app).parameters["store_wait"].default
    assert given == made == receiver.STORE_WAIT == 5.0


def test_serve_creates_a_named_store_only_when_asked(tmp_path):
    """serve may come before the first export: it holds to the export's rule, a store
    named on purpose that is not there (a typo?) is created only with --create-store."""
    db = tmp_path / "typo" / "store.sqlite3"
    result = CliRunner().invoke(app, ["payfip", "serve", "--db", str(db)])
    assert result.exit_code == 7, result.output
    assert "--create-store" in result.stderr and not db.parent.exists()


_WITHOUT = ("import runpy, sys\n"
            "for name in sys.argv[1].split(','):\n"
            "    sys.modules[name] = None  # not installed\n"
            "sys.argv = ['pesgen', *sys.argv[2:]]\n"
            "runpy.run_module('pesgen', run_name='__main__')\n")


def _run_without(missing: str, *args: str) -> subprocess.CompletedProcess:
    """pesgen in a subprocess where the packages ``missing`` (comma-separated) cannot
    be imported, as without the optional [payfip] extra."""
    return subprocess.run([sys.executable, "-c", _WITHOUT, missing, *args],
                          capture_output=True, text=True, timeout=120)


def test_tipi_url_and_datamatrix_need_no_httpx_and_the_others_say_what_is_missing(
        tmp_path):
    """Without the [payfip] extra's httpx, tipi-url (a URL) and datamatrix (codes) work;
    link says what is missing, exit 2, no traceback. datamatrix without pystrich (it
    draws the images) says so too."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = _run("export", "-m", str(MAPPING), "-i", str(INPUT), "-o",
                        str(tmp_path / "out"), "--date", "2026-11-23", "-q", "--db", db,
                        "--create-store")
    assert code == 0, err
    run = Store(db).list_runs()[0].id
    tipi = _run_without("httpx", "payfip", "tipi-url", "-m", str(MAPPING), "-n",
                        "FA-2026-00102", "--urlcl", "https://ecole.example.org/retour",
                        "--mel", "famille@example.org", "--db", db)
    assert tipi.returncode == 0, tipi.stderr
    assert tipi.stdout.startswith("https://www.payfip.gouv.fr/tpa/paiement.web?numcli=")
    codes = _run_without("httpx", "payfip", "datamatrix", "--run", run[:8],
                         "--code-etablissement", "001", "-m", str(MAPPING), "--db", db)
    assert codes.returncode == 0, codes.stderr
    assert "datamatrix.csv" in codes.stdout
    link = _run_without("httpx", "payfip", "link", "-m", str(MAPPING), "-n",
                        "FA-2026-00102", "--db", db)
    assert link.returncode == 2, link.stderr
    assert "PayFiP needs optional packages (httpx is missing)" in link.stderr
    assert "Traceback" not in link.stderr
    drawn = _run_without("pystrich", "payfip", "datamatrix", "--run", run[:8],
                         "--code-etablissement", "001", "--db", db)
    assert drawn.returncode == 2, drawn.stderr
    assert "PayFiP needs optional packages (pystrich is missing)" in drawn.stderr
    assert "Traceback" not in drawn.stderr
