# ruff: noqa: F811 - the world fixture imported from test_payfip_cli is injected by name
"""`payfip link` makes no second link by accident (rule payfip.open-link): an invoice
whose production (or activation) link is still open is refused, or skipped in a batch,
naming that link and its URL, unless --again; a test link beside it stays allowed. The
same batch run again after it stopped midway makes only the links it had not made."""

from __future__ import annotations

import json

import sqlalchemy as sa

from pesgen.errors import ExitCode
from pesgen.payfip import ledger
from pesgen.payfip.service import create_link
from pesgen.payfip.tables import operations

from .payfip_support import (  # noqa: F401 - fixtures
    INPUT,
    MAPPING,
    TIMEOUT,
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_payfip_cli import (  # noqa: F401 - the fixture
    BATCH,
    _link,
    _linked,
    _links,
    _run,
    world,
)

SIRET = "21450999400015"


def _ops(world, refdet: str) -> list:
    """The fake PayFiP's operations made for ``refdet``."""
    return [op for op in world["payfip"].operations.values() if op.request["refdet"] == refdet]


def _timing_out_on(monkeypatch, refdet: str) -> list[str]:
    """PayFiP does not answer creerPaiementSecurise for ``refdet`` (once): a timeout."""
    from pesgen.payfip.client import PayfipClient
    from pesgen.payfip.errors import PayfipUnavailable

    real = PayfipClient.creer_paiement_securise
    failed: list[str] = []

    def timing_out(self, request):
        if request.refdet == refdet and not failed:
            failed.append(refdet)
            raise PayfipUnavailable("PayFiP creerPaiementSecurise: no answer: timeout (none "
                                    "within 5 s)", "timeout")
        return real(self, request)

    monkeypatch.setattr(PayfipClient, "creer_paiement_securise", timing_out)
    return failed


def test_the_same_batch_run_again_after_it_stopped_makes_only_the_links_it_had_not(
        world, monkeypatch):
    """A batch stopped midway (PayFiP's timeout on the second invoice) said which got a
    link; run again as it was, it made a second link for the first (the first still
    payable: a family paying both paid twice). Now the first is skipped, its open link
    named with its URL on stderr, and the other two are made: one link each."""
    failed = _timing_out_on(monkeypatch, "FA202600103")
    code, out, err = _links(world, *BATCH)
    assert code == ExitCode.REMOTE and failed, err
    assert ("the batch stopped there: 1 link(s) made before it (FA-2026-00102), 1 "
            "invoice(s) not sent: FA-2026-00105") in err, err
    [first] = _ops(world, "FA202600102")
    first_url = out.splitlines()[1]
    assert first_url.endswith(f"idop={first.id_op}")

    code, out, err = _links(world, *BATCH)  # the same command again
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[::2]] == [
        "invoice FA-2026-00103", "invoice FA-2026-00105"], out
    assert first_url not in out  # stdout: the links made only
    assert len(_ops(world, "FA202600102")) == 1  # no second link sent for it
    assert len(_ops(world, "FA202600103")) == len(_ops(world, "FA202600105")) == 1
    said = err.splitlines()
    [note] = [line for line in said if "skipped" in line and line.startswith("note:")]
    assert note.startswith(
        f"note: invoice FA-2026-00102: skipped, no second link: its PayFiP link operation "
        f"{first.id_op} (made "), note
    assert f", saisie W, pending) is still open: {first_url}; send the family that link " \
           "again, or link it with --again for a second one (rule payfip.open-link; " \
           "docs/payfip.md, a link still open)" in note, note
    assert said[-1] == ("2 link(s) made, 1 invoice(s) skipped for a link still open (no "
                        "second link without --again): FA-2026-00102"), err
    # every invoice linked: run again, nothing sent, each skipped, exit 0
    sent = len(world["payfip"].operations)
    code, out, err = _links(world, *BATCH)
    assert (code, out) == (0, ""), err
    assert len(world["payfip"].operations) == sent
    assert err.splitlines()[-1].startswith("0 link(s) made, 3 invoice(s) skipped for a link "
                                           "still open"), err
    # as JSON: the skipped invoices, each with its open link and the text's note
    code, out, err = _links(world, *BATCH, extra=("--mode", "W", "--format", "json"))
    report = json.loads(out)
    assert (code, err, report["ok"], report["made"], report["not_sent"]) == (
        0, "", True, 0, []), report
    assert [s["invoice"] for s in report["skipped"]] == list(BATCH)
    [open_link] = report["skipped"][0]["open_links"]
    assert (open_link["id_op"], open_link["saisie"], open_link["status"],
            open_link["url"]) == (first.id_op, "W", "pending", first_url)
    assert report["skipped"][0]["note"] == note.removeprefix("note: ")


def test_an_invoice_with_a_link_still_open_is_refused_naming_it(world):
    """`payfip link -n A` run twice made a second production link (a note said the first
    was still open): refused now, exit 7, before anything is sent, naming the operation
    open (id, made when, saisie, status), its URL to send again, and --again; the JSON
    report gives the same problem."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    first_url = out.splitlines()[1]
    [first] = world["payfip"].operations.values()
    made = ledger.get_operation(world["store"], first.id_op)["created_at"]
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert (code, out) == (ExitCode.STATE, ""), err
    assert len(world["payfip"].operations) == 1  # nothing sent
    lines = err.splitlines()
    assert lines[0] == (
        f"error: invoice FA-2026-00102: its PayFiP link operation {first.id_op} (made {made}, "
        "saisie W, pending) is still open; no second link: the family could pay both (the "
        "second a double-payment anomaly, for the trésorerie to refund). Send the family "
        f"that link again: {first_url} (`pesgen payfip reconcile` first: if the family paid "
        "through it, it records the payment); to make a second one all the same (PayFiP "
        "refuses that one, it went to the wrong address…), give --again (docs/payfip.md, a "
        "link still open)"), err
    assert lines[1:] == [
        f"  - invoice FA-2026-00102: PayFiP operation {first.id_op} (made {made}, saisie W, "
        "pending) still open: no second link while one is, without --again (rule "
        "payfip.open-link)", "1 problem(s); nothing was sent."], err
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W", "--format", "json")
    report = json.loads(out)
    assert (code, err, report["ok"], report["exit_code"], report["links"]) == (
        ExitCode.STATE, "", False, ExitCode.STATE, [], ), report
    [problem] = report["problems"]
    assert (problem["rule"], problem["invoice"]) == ("payfip.open-link", "FA-2026-00102")
    # an activation link (X) is refused beside it too: its payment might move money
    code, out, err = _link(world, "FA-2026-00102", "--mode", "X")
    assert code == ExitCode.STATE and "(rule payfip.open-link)" in err, err
    # PayFiP could not be asked its result (unknown): still open, still refused
    with world["store"].engine.begin() as conn:
        conn.execute(sa.update(operations).where(operations.c.id_op == first.id_op)
                     .values(status="unknown"))
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == ExitCode.STATE and "saisie W, unknown) is still open" in err, err
    assert len(world["payfip"].operations) == 1


def test_again_makes_a_second_link_with_the_note_of_the_first_still_open(world):
    """--again: the second link is made knowingly, the note saying the first is still
    open (as before for every second link)."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    [first] = world["payfip"].operations.values()
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W", "--again")
    assert code == 0, err
    assert len(world["payfip"].operations) == 2
    assert (f"note: invoice FA-2026-00102: operation {first.id_op} (made ") in err, err
    assert ("saisie W) is still open (pending): the family may still pay through it; if the "
            "family pays both, the second is a double-payment anomaly") in err, err
    # in a batch too: both made, none skipped
    code, out, err = _links(world, "FA-2026-00102", "FA-2026-00103", extra=(
        "--mode", "W", "--again"))
    assert code == 0, err
    assert err.splitlines()[-1] == "2 link(s) made", err
    assert len(world["payfip"].operations) == 4
    assert _linked(world) == ["FA-2026-00102", "FA-2026-00103"]


def test_a_test_link_beside_a_production_one_still_open_is_made(world):
    """A test link (saisie T) collects nothing: not a second payment, made beside a
    production link still open, which still holds back a second production one (named
    alone: the test link is no link to send a family); and a test link still open holds
    back no production one."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    [production] = world["payfip"].operations
    code, out, err = _link(world, "FA-2026-00102", "--mode", "T")
    assert code == 0, err
    assert "open-link" not in err and len(world["payfip"].operations) == 2
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == ExitCode.STATE, err
    assert f"its PayFiP link operation {production} (made " in err, err
    assert err.count("(rule payfip.open-link)") == 1, err
    code, out, err = _link(world, "FA-2026-00103", "--mode", "T")
    assert code == 0, err
    code, out, err = _link(world, "FA-2026-00103", "--mode", "W")
    assert code == 0, err
    assert len(_ops(world, "FA202600103")) == 2
    code, out, err = _link(world, "FA-2026-00103", "--mode", "W")
    assert code == ExitCode.STATE and "(rule payfip.open-link)" in err, err
    assert len(_ops(world, "FA202600103")) == 2


def _issued_said(issued: str) -> str:
    """What the refusal of a link adds when another link of its invoice was recorded while
    PayFiP made its operation ``issued``."""
    return (f"; while PayFiP made operation {issued} for this link, another `payfip link` of "
            f"the invoice recorded the one above: operation {issued} is not recorded, its "
            "link not printed, nobody can pay through it")


def _recorded_meanwhile(monkeypatch, world, refdet: str) -> list[str]:
    """While PayFiP makes the operation for ``refdet`` (once), another `payfip link` of
    its invoice makes and records one (saisie W): the idOps of that link. It is made with
    --again, which neither checks nor takes the invoice's claim (test_payfip_claims: a
    link without it is refused while the invoice is claimed, PayFiP not asked)."""
    from pesgen.payfip.client import PayfipClient

    real = PayfipClient.creer_paiement_securise
    other: list[str] = []

    def asked(self, request):
        if request.refdet == refdet and not other:
            other.append("")
            link = create_link(world["store"], MAPPING, request.invoice, mode="W",
                               endpoint=world["endpoint"], notify_url=world["notify"],
                               timeout=TIMEOUT, again=True)
            other[0] = link.id_op
        return real(self, request)

    monkeypatch.setattr(PayfipClient, "creer_paiement_securise", asked)
    return other


def test_a_link_recorded_while_payfip_made_this_one_refuses_or_skips_it(world, monkeypatch):
    """The CLI's words when another link of the invoice was recorded while PayFiP made
    this one: one invoice given, the refusal of a link still open (exit 7) saying that
    the operation PayFiP made is not recorded, no link printed; in a batch, the invoice
    skipped with that said, the others linked, the last line counting it."""
    other = _recorded_meanwhile(monkeypatch, world, "FA202600102")
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert (code, out) == (ExitCode.STATE, ""), err
    [first] = other
    [issued] = [i for i in world["payfip"].operations if i != first]
    lines = err.splitlines()
    assert lines[0].startswith(f"error: invoice FA-2026-00102: its PayFiP link operation "
                               f"{first} (made "), err
    assert lines[0].endswith(f"give --again (docs/payfip.md, a link still open)"
                             f"{_issued_said(issued)}"), err
    assert lines[-1] == "1 problem(s).", err
    assert ledger.get_operation(world["store"], issued) is None
    # in a batch: skipped, said once, the other invoice linked
    other = _recorded_meanwhile(monkeypatch, world, "FA202600103")
    code, out, err = _links(world, "FA-2026-00103", "FA-2026-00105")
    assert code == 0, err
    [first] = other
    assert [line.split(":")[0] for line in out.splitlines()[::2]] == [
        "invoice FA-2026-00105"], out
    [note] = [line for line in err.splitlines() if line.startswith("note: ")]
    [issued] = [i for i in world["payfip"].operations if i != first
                and world["payfip"].operations[i].request["refdet"] == "FA202600103"]
    assert note.startswith(f"note: invoice FA-2026-00103: skipped, no second link: its "
                           f"PayFiP link operation {first} (made "), note
    assert note.endswith(f"(rule payfip.open-link; docs/payfip.md, a link still open)"
                         f"{_issued_said(issued)}"), note
    assert err.splitlines()[-1] == ("1 link(s) made, 1 invoice(s) skipped for a link still "
                                    "open (no second link without --again): FA-2026-00103")
    assert len(ledger.open_operations_of(world["store"], SIRET, "FA-2026-00103")) == 1
    # as JSON: in skipped, with the same note
    other = _recorded_meanwhile(monkeypatch, world, "FA202600107")
    code, out, err = _links(world, "FA-2026-00107", "FA-2026-00102",
                            extra=("--mode", "W", "--format", "json"))
    report = json.loads(out)
    assert (code, report["made"], [s["invoice"] for s in report["skipped"]]) == (
        0, 0, ["FA-2026-00102", "FA-2026-00107"]), report
    # the batch went through: the invoice skipped as its link was recorded is done, not
    # where the batch stopped (Batch.done counts it)
    assert (report["stopped_at"], report["not_sent"]) == (None, []), report
    assert report["skipped"][1]["note"].endswith(_issued_said(
        next(i for i in world["payfip"].operations if i != other[0] and world["payfip"]
             .operations[i].request["refdet"] == "FA202600107"))), report


def test_a_link_reads_the_invoice_s_open_operations_once_before_sending_once_recording(
        world, monkeypatch):
    """One invoice's link read its open operations twice on its own: for the rule
    (``open_links``, before PayFiP is asked) and again for the notes of the links still
    open (``_still_open``, after the recording). The notes now come from the read the
    recording makes in its transaction (the rule checked again there): one read before
    sending, one in the transaction that claims the invoice (test_payfip_claims), one in
    the recording, and with --again (no rule, no claim) the recording's only; the notes
    as before."""
    calls: list[bool] = []  # whether each read was in a transaction given
    real = ledger.open_operations_of

    def counted(store, id_coll, invoice, conn=None):
        calls.append(conn is not None)
        return real(store, id_coll, invoice, *(() if conn is None else (conn,)))

    monkeypatch.setattr(ledger, "open_operations_of", counted)
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    assert calls == [False, True, True], calls
    calls.clear()
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W", "--again")
    assert code == 0, err
    assert calls == [True], calls
    assert "saisie W) is still open (pending): the family may still pay through it" in err, err


def _said(world, id_op: str) -> str:
    """How the refusal and the batch's note name the operation ``id_op``."""
    op = ledger.get_operation(world["store"], id_op)
    return f"operation {id_op} (made {op['created_at']}, saisie W, pending)"


def test_two_links_still_open_are_each_named_and_the_latest_is_the_one_to_send(world):
    """Two production links open (the second made with --again): a third is refused
    naming both, oldest first, and giving the latest's URL to send again; in a batch the
    invoice is skipped with both named and the latest's URL, JSON listing both."""
    urls = []
    for extra in ((), ("--again",)):
        code, out, err = _link(world, "FA-2026-00102", "--mode", "W", *extra)
        assert code == 0, err
        urls.append(out.splitlines()[1])
    first, second = (op.id_op for op in _ops(world, "FA202600102"))
    assert urls[1].endswith(f"idop={second}") and urls[0] != urls[1]
    both = f"{_said(world, first)}, {_said(world, second)}"
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert (code, out) == (ExitCode.STATE, ""), err
    lines = err.splitlines()
    assert lines[0].startswith(
        f"error: invoice FA-2026-00102: 2 of its PayFiP links are still open: {both}; no "
        "second link: "), err
    assert f"Send the family that link again: {urls[1]} (" in lines[0], err
    assert lines[1:] == [
        f"  - invoice FA-2026-00102: PayFiP {_said(world, op)} still open: no second link "
        "while one is, without --again (rule payfip.open-link)" for op in (first, second)
    ] + ["2 problem(s); nothing was sent."], err

    code, out, err = _links(world, "FA-2026-00102", "FA-2026-00103")
    assert code == 0, err
    assert [line.split(":")[0] for line in out.splitlines()[::2]] == ["invoice FA-2026-00103"]
    [note] = [line for line in err.splitlines() if "skipped" in line
              and line.startswith("note:")]
    assert note == (f"note: invoice FA-2026-00102: skipped, no second link: 2 of its PayFiP "
                    f"links are still open ({both}), the latest: {urls[1]}; send the family "
                    "that link again, or link it with --again for a second one (rule "
                    "payfip.open-link; docs/payfip.md, a link still open)"), err
    code, out, err = _links(world, "FA-2026-00102", "FA-2026-00103",
                            extra=("--mode", "W", "--format", "json"))
    [skipped, _] = json.loads(out)["skipped"]
    assert [(o["id_op"], o["url"]) for o in skipped["open_links"]] == [
        (first, urls[0]), (second, urls[1])], skipped
    assert skipped["note"] == note.removeprefix("note: ")
    assert len(world["payfip"].operations) == 3


def test_an_abandoned_link_or_a_cancelled_title_s_holds_back_no_new_one(world, tmp_path):
    """A link the family abandoned (result A: payable 20 minutes at most) is no link to
    send again: a new one is made, its note saying the abandoned one. A link made for
    the title of a run cancelled since pays nothing of the title exported again: its new
    title gets its link. A link whose run is not recorded with it is of the title due:
    still refused."""
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0, err
    [first] = _ops(world, "FA202600102")
    with world["store"].engine.begin() as conn:
        conn.execute(sa.update(operations).where(operations.c.id_op == first.id_op)
                     .values(result_code="A"))
    code, out, err = _link(world, "FA-2026-00102", "--mode", "W")
    assert code == 0 and "open-link" not in err, err
    assert f"operation {first.id_op} was abandoned but stays payable until " in err, err
    assert len(_ops(world, "FA202600102")) == 2

    # FA-2026-00103's link, its run cancelled and the input exported again
    code, out, err = _link(world, "FA-2026-00103", "--mode", "W")
    assert code == 0, err
    [old] = _ops(world, "FA202600103")
    store = world["store"]
    run = ledger.get_operation(store, old.id_op)["run_id"]
    store.cancel(run, "wrong amounts", despite_payments=True)
    code, out, err = _run("export", "-m", str(MAPPING), "-i", str(INPUT), "-o",
                          str(tmp_path / "again"), "--date", "2026-11-24", "-q")
    assert code == 0, err
    code, out, err = _link(world, "FA-2026-00103", "--mode", "W")
    assert code == 0 and "open-link" not in err, err
    assert f"its title then (run {run}) is cancelled" in err, err
    assert len(_ops(world, "FA202600103")) == 2

    # a link recorded without its run (made before the store kept it): refused
    code, out, err = _link(world, "FA-2026-00105", "--mode", "W")
    assert code == 0, err
    [kept] = _ops(world, "FA202600105")
    with store.engine.begin() as conn:
        conn.execute(sa.update(operations).where(operations.c.id_op == kept.id_op)
                     .values(run_id=None))
    code, out, err = _link(world, "FA-2026-00105", "--mode", "W")
    assert code == ExitCode.STATE and "(rule payfip.open-link)" in err, err
    assert len(_ops(world, "FA202600105")) == 1
