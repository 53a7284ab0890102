# ruff: noqa: F811 - the world fixture imported from test_payfip_cli is injected by name
"""Two `payfip link` of one invoice at once ask PayFiP once (docs/payfip.md, two links at
once): each claims the invoice before asking PayFiP, in the transaction where it finds no
link open; the second finds the claim and is refused, or skips the invoice in a batch,
naming who holds it. The claim is removed as the operation is recorded, or when the
command makes no link; a claim older than it was taken for (its command killed) has
lapsed, and so has at once one whose command ran on this host and has ended: it holds
nothing back, and the command that passes it says so."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from pesgen.errors import ExitCode, StateError
from pesgen.payfip import claims, ledger
from pesgen.payfip.client import PayfipClient
from pesgen.payfip.errors import PayfipFault, PayfipUnavailable
from pesgen.payfip.fake import FakePayfip
from pesgen.payfip.server import ServerThread
from pesgen.payfip.service import Batch, Link, create_link, create_links
from pesgen.payfip.tables import claims as claims_table

from .payfip_support import (  # noqa: F401 - fixtures
    MAPPING,
    TIMEOUT,
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_payfip_cli import _link, _links, world  # noqa: F401 - the fixture

SIRET = "21450999400015"
HERE = f"pid {os.getpid()} on {socket.gethostname()}"


def _claims(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(claims_table))]


def _checked_together(monkeypatch, invoice: str, parties: int = 2) -> None:
    """The first ``parties`` `payfip link` of ``invoice`` each wait, once they have
    checked it for a link open before sending anything (none found), until all have:
    each then goes on, as two commands started at the same moment."""
    real = ledger.open_operations_of
    together = threading.Barrier(parties, timeout=30)
    waited: list[str] = []

    def read(store, id_coll, inv, conn=None):
        found = real(store, id_coll, inv, *(() if conn is None else (conn,)))
        if conn is None and inv == invoice and len(waited) < parties:
            waited.append(inv)
            together.wait()
        return found

    monkeypatch.setattr(ledger, "open_operations_of", read)


def _payfip_waits(monkeypatch, refdet: str) -> tuple[threading.Event, list[str]]:
    """PayFiP's creerPaiementSecurise for ``refdet`` answers once the event is set (or
    after 10 s): the operations asked for it are counted."""
    real = PayfipClient.creer_paiement_securise
    go, asked = threading.Event(), []

    def held(self, request):
        if request.refdet == refdet:
            asked.append(refdet)
            go.wait(10)
        return real(self, request)

    monkeypatch.setattr(PayfipClient, "creer_paiement_securise", held)
    return go, asked


def _at_once(go: threading.Event, *work) -> list:
    """Each of ``work`` in a thread of its own, all at once: what each returned or raised.
    ``go`` is set as soon as one ends (PayFiP then answers the others)."""
    results: list = [None] * len(work)

    def run(i, job):
        try:
            results[i] = job()
        except Exception as exc:  # the refusal is what is looked at
            results[i] = exc
        finally:
            go.set()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(work)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    return results


def test_two_links_of_one_invoice_at_once_ask_payfip_once(flow, monkeypatch):
    """Two `payfip link -n A` at the same moment (two people, two terminals): both found
    no link open and both asked PayFiP; the second's recording was refused (rule
    payfip.open-link) but PayFiP had made an operation nobody knew of. Now the first
    claims the invoice before asking PayFiP, and the second finds the claim: refused
    (rule payfip.claimed, exit 7), nothing sent, naming who is making the link, since
    when, and when the claim lapses. PayFiP made one operation; the claim is gone once
    the link is recorded, and a link asked afterwards is refused for the link open."""
    _checked_together(monkeypatch, "FA-2026-00102")
    go, asked = _payfip_waits(monkeypatch, "FA202600102")
    results = _at_once(go, lambda: flow.link(mode="W"), lambda: flow.link(mode="W"))
    assert len(asked) == 1 and len(flow.fake.payfip.operations) == 1, results
    [made] = [r for r in results if isinstance(r, Link)]
    [refused] = [r for r in results if not isinstance(r, Link)]
    assert isinstance(refused, claims.LinkClaimed), results
    assert refused.exit_code == ExitCode.STATE
    claim = refused.claim
    assert claim.holder.endswith(HERE) and claim.seconds == TIMEOUT, claim
    assert str(refused) == (
        f"invoice FA-2026-00102: its PayFiP link is being made by `payfip link` "
        f"{claim.holder}, since {claim.claimed_at}, for up to 5 s; no second link: the "
        "family could pay both (the second a double-payment anomaly, for the trésorerie "
        "to refund). Let it end: it prints its link, which this command run again names "
        "as a link still open; if that command was stopped (killed), its claim lapses at "
        f"once (it runs on this host), at the latest at {claim.until}; give --again to "
        "make a link all the same (docs/payfip.md, two links at once)")
    assert [(p.rule, p.invoice) for p in refused.problems] == [
        ("payfip.claimed", "FA-2026-00102")]
    assert [o["id_op"] for o in ledger.open_operations_of(
        flow.store, SIRET, "FA-2026-00102")] == [made.id_op]
    assert _claims(flow.store) == []
    with pytest.raises(StateError) as after:
        flow.link(mode="W")
    assert [p.rule for p in after.value.problems] == ["payfip.open-link"]
    assert len(flow.fake.payfip.operations) == 1


def test_two_batches_at_once_claim_every_invoice_before_sending_any(flow, monkeypatch):
    """The same batch run twice at once: each checked every invoice, then each sent
    every one (an operation PayFiP made twice for the first, one not recorded). Now the
    first to claim claims both before sending any; the other finds both claimed and
    skips them (``Batch.claimed``), sending nothing: one operation per invoice."""
    _checked_together(monkeypatch, "FA-2026-00102")
    go, asked = _payfip_waits(monkeypatch, "FA202600102")
    invoices = ["FA-2026-00102", "FA-2026-00103"]
    batches = [Batch(), Batch()]

    def batch(b: Batch) -> list[Link]:
        return list(create_links(flow.store, MAPPING, invoices, mode="W",
                                 notify_url=flow.notify_url, endpoint=flow.endpoint,
                                 timeout=TIMEOUT, batch=b))

    results = _at_once(go, *(lambda b=b: batch(b) for b in batches))
    assert all(isinstance(r, list) for r in results), results
    assert len(asked) == 1 and len(flow.fake.payfip.operations) == 2, results
    [winner] = [b for b, links in zip(batches, results, strict=True) if links]
    [loser] = [b for b in batches if b is not winner]
    assert winner.made_links() == invoices and (winner.skipped, winner.claimed) == ([], [])
    assert [c.invoice for c in loser.claimed] == invoices and loser.skipped == []
    assert loser.invoices == [] and loser.made == 0
    # the second invoice's claim was taken for both links' timeouts: made after the first
    assert [c.seconds for c in loser.claimed] == [TIMEOUT, 2 * TIMEOUT]
    assert _claims(flow.store) == []


def _claimed_by_another(store, invoice: str, at: str, seconds: int = 15) -> None:
    """A claim on ``invoice`` as another `payfip link` takes it (``claims.take``)."""
    from pesgen.keys import invoice_key

    with store.engine.begin() as conn:
        conn.execute(claims_table.insert().values(
            id_coll=SIRET, invoice_key=invoice_key(invoice), invoice=invoice,
            token="0" * 32, holder="of alice, pid 4242 on mairie-01", claimed_at=at,
            seconds=seconds))


def test_a_lapsed_claim_is_passed_and_said(flow):
    """A claim left by a command killed before it recorded its link (kill -9: no
    `finally`) lapses after its seconds and the margin: the next link is made, with a
    note saying whose claim it passed and that an operation PayFiP may have made for it
    is not recorded, its link never printed. The claim is gone once the link is made."""
    _claimed_by_another(flow.store, "FA-2026-00102", "2026-12-01T09:00:00Z")
    link = flow.link(mode="W")
    assert link.notes == (
        "invoice FA-2026-00102: the claim of `payfip link` of alice, pid 4242 on "
        "mairie-01, since 2026-12-01T09:00:00Z, for up to 15 s, lapsed at "
        "2026-12-01T09:01:15Z: that command stopped before recording a link (killed, or "
        "still waiting for the store); if it had PayFiP make an operation, the operation "
        "is not recorded and its link was never printed: nobody can pay through it "
        "(docs/payfip.md, two links at once)",), link.notes
    assert _claims(flow.store) == []


def _hanging(app, holding: threading.Event):
    """The fake PayFiP (its ASGI ``app``), but a SOAP request made while ``holding`` is
    set gets no answer: it waits until its client has gone (PayFiP not answering within
    the client's timeout)."""

    async def hanging(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/tpa/services/securite" and \
                holding.is_set():
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await app(scope, receive, send)

    return hanging


def _claimed_by(store, child: subprocess.Popen, err) -> dict:
    """The claim row ``child`` takes, once it has taken it (polled: its start-up takes
    seconds on a slow machine)."""
    deadline = time.monotonic() + 120
    while not (rows := _claims(store)):
        assert child.poll() is None, err.read_text()
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)
    [row] = rows
    return row


def test_the_claim_of_a_command_killed_on_this_host_lapses_at_once(store, exported,
                                                                   receiver, tmp_path):
    """A `payfip link` killed (kill -9) while PayFiP made its operation left its claim,
    which held the invoice back for its --timeout and a minute, though its pid was gone
    on this host. Now the claim of a command that ran on this host and has ended lapses
    at once: the next link is made, saying whose claim it passed, that its command has
    ended and that an operation PayFiP may have made for it is not recorded. While that
    command was alive, the link was refused, saying its claim lapses at once if it is
    killed. A real process, killed as it waits for PayFiP's answer."""
    holding = threading.Event()
    holding.set()
    notify_url = f"{receiver.url}/payfip/notification"
    err = tmp_path / "child.err"
    with ServerThread(_hanging(FakePayfip().app, holding)) as fake:
        endpoint = f"{fake.url}/tpa"

        def link() -> Link:
            return create_link(store, MAPPING, "FA-2026-00102", mode="W", endpoint=endpoint,
                               notify_url=notify_url, timeout=TIMEOUT)

        with err.open("wb") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "pesgen", "payfip", "link", "-m", str(MAPPING), "-n",
                 "FA-2026-00102", "--mode", "W", "--endpoint", endpoint, "--notify-url",
                 notify_url, "--timeout", "120", "--db", store.url],
                stdout=out, stderr=out)
        try:
            row = _claimed_by(store, child, err)
            with pytest.raises(claims.LinkClaimed) as refused:
                link()
            assert "its claim lapses at once (it runs on this host)" in str(refused.value)
            child.kill()
            child.wait(60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(60)
        holding.clear()
        made = link()
    assert row["holder"].endswith(f", pid {child.pid} on {socket.gethostname()}"), row
    assert made.notes == (
        f"invoice FA-2026-00102: the claim of `payfip link` {row['holder']}, since "
        f"{row['claimed_at']}, for up to 120 s, lapsed: its command, pid {child.pid} on "
        f"{socket.gethostname()}, has ended without recording a link (killed); if it had "
        "PayFiP make an operation, the operation is not recorded and its link was never "
        "printed: nobody can pay through it (docs/payfip.md, two links at once)",), made.notes
    assert _claims(store) == []


def test_a_live_claim_refuses_the_link_and_a_batch_skips_it(flow):
    """A claim not lapsed refuses a link of the invoice before anything is sent (exit 7,
    rule payfip.claimed); a batch skips the invoice and links the others; --again makes
    the link all the same (it neither checks nor takes claims)."""
    from pesgen.store import utc_now

    _claimed_by_another(flow.store, "FA-2026-00102", utc_now())
    with pytest.raises(claims.LinkClaimed) as refused:
        flow.link(mode="W")
    assert "being made by `payfip link` of alice, pid 4242 on mairie-01" in str(
        refused.value)
    assert flow.fake.payfip.operations == {}
    batch = Batch()
    made = list(create_links(flow.store, MAPPING, ["FA-2026-00102", "FA-2026-00103"],
                             mode="W", notify_url=flow.notify_url, endpoint=flow.endpoint,
                             timeout=TIMEOUT, batch=batch))
    assert [m.invoice for m in made] == ["FA-2026-00103"]
    assert [c.invoice for c in batch.claimed] == ["FA-2026-00102"]
    assert [c["invoice"] for c in _claims(flow.store)] == ["FA-2026-00102"]  # the other's
    assert flow.link(mode="W", again=True).invoice == "FA-2026-00102"
    # a test link (saisie T) holds back nothing and is held back by nothing: not by the
    # other command's claim still there, and it takes none
    assert flow.link(mode="T").saisie == "T"
    assert [c["token"] for c in _claims(flow.store)] == ["0" * 32]


def _timing_out(monkeypatch, refdet: str) -> None:
    """PayFiP does not answer creerPaiementSecurise for ``refdet`` (once): a timeout."""
    real = PayfipClient.creer_paiement_securise
    failed: list[str] = []

    def timing_out(self, request):
        if request.refdet == refdet and not failed:
            failed.append(refdet)
            raise PayfipUnavailable("PayFiP creerPaiementSecurise: no answer: timeout "
                                    "(none within 5 s)", "timeout")
        return real(self, request)

    monkeypatch.setattr(PayfipClient, "creer_paiement_securise", timing_out)


def test_a_link_that_fails_releases_its_claims(flow, monkeypatch):
    """PayFiP's timeout: the link is not made, and its claim is released (not left to
    lapse, which would hold the invoice back for the timeout and a minute); in a batch
    stopped at its second invoice, the claims of that one and of those after it too,
    the first's removed as it was recorded. The link asked again is made."""
    _timing_out(monkeypatch, "FA202600102")
    with pytest.raises(PayfipFault):
        flow.link(mode="W")
    assert _claims(flow.store) == []
    assert flow.link(mode="W").notes == ()

    _timing_out(monkeypatch, "FA202600105")
    batch = Batch()
    with pytest.raises(PayfipFault):
        for _ in create_links(flow.store, MAPPING, ["FA-2026-00103", "FA-2026-00105",
                                                    "FA-2026-00107"], mode="W",
                              notify_url=flow.notify_url, endpoint=flow.endpoint,
                              timeout=TIMEOUT, batch=batch):
            # while the batch goes on, its invoices not linked yet stay claimed
            assert [c["invoice"] for c in _claims(flow.store)] == [
                "FA-2026-00105", "FA-2026-00107"]
    assert batch.made_links() == ["FA-2026-00103"]
    assert _claims(flow.store) == []


def test_the_cli_says_a_claim_as_a_link_still_open(world):
    """The CLI's words: one invoice given, refused (exit 7), the claim's holder, since
    when and when it lapses, "nothing was sent."; in a batch the invoice skipped with a
    note, the last line counting it, --format json listing it in ``skipped`` with who
    claims it."""
    from pesgen.store import utc_now

    at = utc_now()
    _claimed_by_another(world["store"], "FA-2026-00102", at)
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert (code, out) == (ExitCode.STATE, ""), err
    lines = err.splitlines()
    assert lines[0].startswith("error: invoice FA-2026-00102: its PayFiP link is being "
                               "made by `payfip link` of alice, pid 4242 on mairie-01, "), err
    assert lines[1].startswith("  - invoice FA-2026-00102: `payfip link` of alice"), err
    assert lines[1].endswith("no second link while one is being made, without --again "
                             "(rule payfip.claimed)"), err
    assert lines[2:] == ["1 problem(s); nothing was sent."], err
    code, out, err = _links(world, "FA-2026-00102", "FA-2026-00103")
    assert code == 0, err
    [note] = [line for line in err.splitlines() if line.startswith("note: ")]
    assert note.startswith("note: invoice FA-2026-00102: skipped, no second link: its "
                           "PayFiP link is being made by `payfip link` of alice"), note
    assert note.endswith("(rule payfip.claimed; docs/payfip.md, two links at once)"), note
    until = claims.Claim("FA-2026-00102", "", at, 15).until
    assert note == (
        "note: invoice FA-2026-00102: skipped, no second link: its PayFiP link is being "
        f"made by `payfip link` of alice, pid 4242 on mairie-01, since {at}, for up to 15 "
        "s; run it again once that command has ended; if that command was stopped "
        f"(killed), its claim lapses at {until}; give --again to make a link all the same "
        "(rule payfip.claimed; docs/payfip.md, two links at once)"), note
    assert err.splitlines()[-1] == (
        "1 link(s) made, 1 invoice(s) skipped for a link another `payfip link` is making "
        "(rule payfip.claimed): FA-2026-00102"), err
    code, out, err = _links(world, "FA-2026-00102", "FA-2026-00105",
                            extra=("--mode", "W", "--format", "json"))
    report = json.loads(out)
    [skipped] = report["skipped"]
    assert (code, report["made"], skipped["invoice"], skipped["open_links"]) == (
        0, 1, "FA-2026-00102", []), report
    assert skipped["claimed_by"] == {
        "holder": "of alice, pid 4242 on mairie-01", "since": at, "seconds": 15,
        "lapses_at": claims.Claim("FA-2026-00102", "", at, 15).until}
    assert skipped["note"] == note.removeprefix("note: ")


def test_a_schema_21_store_gets_the_claims_table(db_url, monkeypatch):
    """A store pesgen left at schema 21 opens with the current code (migration 22): the
    claims' table, empty, its claims looked up by their command's token."""
    import pesgen.store as st
    from pesgen.store import Store

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:21])
        old = Store(db_url)
    assert old.schema_version() == 21
    assert "payfip_claims" not in sa.inspect(old.engine).get_table_names()
    old.engine.dispose()
    store = Store(db_url)
    assert store.schema_version() == len(st.MIGRATIONS) >= 22
    assert _claims(store) == []
    assert [ix["column_names"] for ix in sa.inspect(store.engine).get_indexes(
        "payfip_claims")] == [["token"]]
    store.engine.dispose()


def test_claims_are_read_back_as_taken_a_chunk_of_keys_at_a_time(flow):
    """Each claim is read back whole, however many invoices are looked up (``chunk`` keys
    a query: every chunk read), with the seconds it was taken for (a fraction of a second
    rounded up, not down: a claim never lapses before its PayFiP timeout)."""
    from pesgen.keys import invoice_key

    invoices = ["FA-2026-00102", "FA-2026-00103", "FA-2026-00105"]
    for n, invoice in enumerate(invoices, start=1):
        _claimed_by_another(flow.store, invoice, "2026-12-01T09:00:00Z", seconds=100 * n)
    with flow.store.engine.connect() as conn:
        found = claims._claims_of(conn, SIRET, invoices, chunk=2)
    assert sorted((c.invoice, c.holder, c.seconds) for c in found.values()) == [
        (invoice, "of alice, pid 4242 on mairie-01", 100 * n)
        for n, invoice in enumerate(invoices, start=1)]
    taken = claims.take(flow.store, SIRET, [("FA-2026-00107", "no-run", 2.5)],
                        lambda conn, invoice: None)
    assert (taken.claimed, taken.opened, taken.held, taken.lapsed) == (
        {invoice_key("FA-2026-00107")}, {}, {}, {})
    [mine] = [c for c in _claims(flow.store) if c["invoice"] == "FA-2026-00107"]
    assert (mine["token"], mine["seconds"]) == (taken.token, 3)


def test_a_claim_taken_for_longer_holds_its_invoice_longer(flow):
    """A claim lapses by its own seconds (a batch's last invoice, claimed for every link
    made before it): one taken two minutes ago for 100 s still holds its invoice back."""
    from datetime import UTC, datetime, timedelta

    since = (datetime.now(UTC) - timedelta(seconds=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _claimed_by_another(flow.store, "FA-2026-00102", since, seconds=100)
    with pytest.raises(claims.LinkClaimed) as refused:
        flow.link(mode="W")
    assert refused.value.claim.seconds == 100
    assert flow.fake.payfip.operations == {}


def test_recording_a_link_removes_the_command_s_own_claim_only(flow):
    """The transaction that records an operation removes its command's claim (by its
    token), not another command's claim on the invoice (which took it over once the
    first one's lapsed)."""
    _claimed_by_another(flow.store, "FA-2026-00102", "2026-12-01T09:00:00Z")
    with flow.store.transaction() as conn:
        claims.drop(conn, SIRET, "FA-2026-00102", "1" * 32)
    assert [c["invoice"] for c in _claims(flow.store)] == ["FA-2026-00102"]
    with flow.store.transaction() as conn:
        claims.drop(conn, SIRET, "FA-2026-00102", "0" * 32)
    assert _claims(flow.store) == []


def test_a_link_recorded_between_the_check_and_the_claim_is_refused_or_skipped(
        flow, monkeypatch):
    """A link of the invoice recorded after the invoice was checked and before it was
    claimed (two at once) is found in the claim's transaction: one invoice given is
    refused as a link still open (rule payfip.open-link), a batch skips it naming that
    link; PayFiP is not asked for it, and no claim is left."""
    from pesgen.payfip.service import OpenLinkRefused

    first = flow.link(mode="W")
    real = ledger.open_operations_of

    def unseen(store, id_coll, invoice, conn=None):
        # the check before the claims (no connection of its own) does not see it yet
        return [] if conn is None else real(store, id_coll, invoice, conn)

    monkeypatch.setattr(ledger, "open_operations_of", unseen)
    with pytest.raises(OpenLinkRefused) as refused:
        flow.link(mode="W")
    assert [p.rule for p in refused.value.problems] == ["payfip.open-link"]
    assert list(flow.fake.payfip.operations) == [first.id_op]
    batch = Batch()
    made = list(create_links(flow.store, MAPPING, ["FA-2026-00102", "FA-2026-00103"],
                             mode="W", notify_url=flow.notify_url, endpoint=flow.endpoint,
                             timeout=TIMEOUT, batch=batch))
    assert [m.invoice for m in made] == ["FA-2026-00103"]
    assert [[f.id_op for f in found] for found in batch.skipped] == [[first.id_op]]
    assert batch.claimed == [] and _claims(flow.store) == []


def test_claims_not_released_lapse_and_what_stopped_the_link_is_said(flow, monkeypatch,
                                                                      caplog):
    """A store that stops answering as the claims are released: the link made stands
    (its claim removed as it was recorded), PayFiP's own failure is what a failed link
    says, and a warning says the claims lapse in time."""
    def gone(store, token):
        raise sa.exc.OperationalError("DELETE FROM payfip_claims", {}, Exception("gone"))

    monkeypatch.setattr(claims, "release", gone)
    assert flow.link(mode="W").invoice == "FA-2026-00102"
    _timing_out(monkeypatch, "FA202600103")
    with pytest.raises(PayfipFault):
        flow.link("FA-2026-00103", mode="W")
    assert ("payfip link: its claims were not released (OperationalError): they lapse "
            "in time") in caplog.text


def test_a_claim_that_waited_too_long_for_the_store_says_nothing_was_sent(flow,
                                                                          monkeypatch):
    """The claims' transaction gave up waiting for the store (another transaction held
    the runs' rows): refused, saying that nothing was sent and no link made."""
    from pesgen.errors import StoreLocked
    from pesgen.store import store_locked

    def locked(*args, **kwargs):
        raise store_locked("sqlite:///s.db", 30, rows="the rows of the runs")

    monkeypatch.setattr(claims, "take", locked)
    with pytest.raises(StoreLocked) as refused:
        flow.link(mode="W")
    assert ": payfip link stopped waiting: nothing was sent, no link made. " in str(
        refused.value)
    assert flow.fake.payfip.operations == {}


def test_on_postgresql_a_claim_waits_for_a_recording_of_its_run_s_titles(flow):
    """On PostgreSQL the claims' transaction locks the invoices' runs' rows first, as the
    recording of an operation does: a claim taken while another transaction holds the
    run's row waits for it to end."""
    if flow.store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write transactions go in turn")
    from pesgen.store import runs

    with flow.store.engine.connect() as conn:
        run_id = conn.execute(sa.select(runs.c.id)).scalars().first()
    done = threading.Event()
    with flow.store.engine.connect() as holding:
        holding.execute(sa.select(runs.c.id).where(runs.c.id == run_id).with_for_update())
        waiting = threading.Thread(target=lambda: (claims.take(
            flow.store, SIRET, [("FA-2026-00102", run_id, 5)], lambda conn, invoice: None),
            done.set()))
        waiting.start()
        assert not done.wait(1.5)  # held by the run's row
        holding.rollback()
    waiting.join(30)
    assert done.is_set() and [c["invoice"] for c in _claims(flow.store)] == [
        "FA-2026-00102"]


def test_a_claim_lasts_the_timeout_of_the_client_given(flow):
    """A caller's own PayFiP client: its timeout is how long PayFiP may take, so the
    claims last that long (a batch's second invoice: two of them), not the timeout
    argument the caller left to its default."""
    client = PayfipClient(flow.endpoint, timeout=7)
    seen = []
    try:
        for _ in create_links(flow.store, MAPPING, ["FA-2026-00102", "FA-2026-00103"],
                              mode="W", notify_url=flow.notify_url, client=client,
                              batch=Batch()):
            seen.append([(c["invoice"], c["seconds"]) for c in _claims(flow.store)])
    finally:
        client.close()
    assert seen == [[("FA-2026-00103", 14)], []]
