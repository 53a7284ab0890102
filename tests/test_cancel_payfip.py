# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""Cancelling a run, or a bordereau of it, whose titles have PayFiP operations: paid,
pending; on SQLite and PostgreSQL, over real HTTP on loopback (see test_payfip_flow)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import StateError
from pesgen.payfip import ledger
from pesgen.payfip.tables import anomalies, events, payments
from pesgen.runs import export_recorded
from pesgen.store import Store

from .payfip_support import (  # noqa: F401 - fixtures
    TIMEOUT,
    example_102_at,
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_cancel import BORDEREAUX, EXAMPLE, MAPPING, split_mapping


def _split_run(store, tmp_path) -> str:
    """The flow's run cancelled (nothing paid yet), the example exported again in
    bordereaux of 4: its run id."""
    first = ledger.invoice_due(store, "21450999400015", "FA-2026-00101").run_id
    store.cancel(first, "exported again in bordereaux of 4")
    return export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "split",
                           date(2026, 11, 24)).run_id


def test_a_payment_through_the_link_of_a_title_of_a_cancelled_bordereau_is_an_anomaly(
        flow, store, tmp_path):
    run = _split_run(store, tmp_path)  # IdBord 2, 3, 4 (1 was the flow's run)
    rejected = flow.link("FA-2026-00105", mode="W")  # IdBord 3
    taken = flow.link("FA-2026-00101", mode="W")  # IdBord 2
    # a bordereau without PayFiP operations is cancelled as it is
    assert store.cancel(run, "trésorerie rejected IdBord 4", [4]).payments == ()
    # one with a link still open only when told
    with pytest.raises(StateError, match="--despite-payments") as info:
        store.cancel(run, "trésorerie rejected IdBord 3", [3])
    assert [(p.rule, p.invoice) for p in info.value.problems] == [
        ("run.cancel-payfip", "FA-2026-00105")]
    assert ledger.invoice_due(store, "21450999400015", "FA-2026-00105").id_bord == 3
    done = store.cancel(run, "trésorerie rejected IdBord 3", [3], despite_payments=True)
    assert [p.invoice for p in done.payments] == ["FA-2026-00105"]
    flow.pay(rejected, "card")
    flow.pay(taken, "card")
    assert ledger.get_operation(store, rejected.id_op)["status"] == "anomaly"
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["kind"], anomaly["invoice"], anomaly["got"]) == (
        "run-cancelled", "FA-2026-00105", f"run {run}: IdBord 3 cancelled")
    assert ledger.payment_of(store, "21450999400015", "FA-2026-00105")["status"] != "paid"
    assert ledger.payment_of(store, "21450999400015", "FA-2026-00101")["status"] == "paid"


def test_cancelling_a_title_paid_twice_says_which_payment_is_the_second(flow, store):
    """FA-2026-00102 paid through two links: both are listed as paid (each stays attached
    to the title); the second says it is a double payment, for the trésorerie to refund,
    where the two lines read the same."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    first, second = flow.link(mode="W"), flow.link(mode="W", again=True)
    flow.pay(first, "card")
    flow.pay(second, "card")
    refused = CliRunner().invoke(app, ["runs", "cancel", run[:8], "--reason", "wrong amounts",
                                       "--db", store.url])
    assert refused.exit_code == 7, refused.output
    lines = [ln for ln in refused.output.splitlines() if "FA-2026-00102" in ln]
    assert len(lines) == 2, refused.output
    assert f"(PayFiP operation {first.id_op}); the payment stays attached" in lines[0]
    assert (f"(PayFiP operation {second.id_op}), a second payment of the invoice (a "
            "double-payment anomaly, `pesgen payfip anomalies`: the trésorerie refunds one); "
            "the payment stays attached to this title") in lines[1], lines[1]


def test_a_run_whose_titles_were_paid_online_is_cancelled_only_when_told(flow, store,
                                                                          tmp_path):
    """FA-2026-00102 paid by card, FA-2026-00104's link still open (production), a test
    link for FA-2026-00110 (no money): cancelling says so and refuses; told, it cancels,
    notes it in the payments' history, and the re-export says what was paid already."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    flow.pay(flow.link("FA-2026-00102", mode="W"), "card")
    pending = flow.link("FA-2026-00104", mode="W", mel="famille@example.org")
    flow.link("FA-2026-00110")  # saisie T: a test
    refused = CliRunner().invoke(app, ["runs", "cancel", run[:8], "--reason", "wrong amounts",
                                       "--db", store.url])
    assert refused.exit_code == 7, refused.output
    assert (f"error: run {run}: 2 invoice(s) of IdBord 1 have PayFiP payments, made or "
            "pending; nothing cancelled. A payment stays attached to its title, cancelled or "
            "not: tell the trésorerie") in refused.output
    assert "invoice FA-2026-00102: IdBord 1: paid online 187.50 by card on " in refused.output
    assert (f"invoice FA-2026-00104: IdBord 1: PayFiP link pending since "
            f"{ledger.get_operation(store, pending.id_op)['created_at']} (operation "
            f"{pending.id_op}, 66.00, saisie W): no result recorded, the family may have "
            "paid through it already (a notification lost: `pesgen payfip reconcile` asks "
            "PayFiP); paid after the cancellation, it is an anomaly (run-cancelled)"
            ) in refused.output
    assert "FA-2026-00110" not in refused.output
    # its last line says what the refusal leaves, not the "nothing was written." of a
    # command writing files
    assert refused.output.endswith("\n2 problem(s); nothing cancelled.\n"), refused.output
    assert store.get_run(run)["status"] == "committed"
    assert ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id == run
    told = CliRunner().invoke(app, ["runs", "cancel", run[:8], "--reason", "wrong amounts",
                                    "--despite-payments", "--db", store.url])
    assert told.exit_code == 0, told.output
    assert f"run {run} cancelled: its 11 invoice(s) can be exported again\n" in told.output
    assert ("warning: cancelled despite 2 PayFiP payment(s), made or pending: they stay "
            "attached to the cancelled titles; tell the trésorerie") in told.output
    with store.engine.connect() as conn:
        noted = conn.execute(sa.select(events.c.invoice, events.c.status, events.c.detail)
                             .where(events.c.event == "title-cancelled")
                             .order_by(events.c.invoice)).all()
    assert [(n.invoice, n.status) for n in noted] == [("FA-2026-00102", "paid"),
                                                      ("FA-2026-00104", "pending")]
    assert json.loads(noted[0].detail) == {"run": run, "reason": "wrong amounts"}
    # exported again, at another amount: the summary says what PayFiP collected already
    again = example_102_at(tmp_path)
    # a dry run says it too, from its rolled-back reading of the store
    dry = export_recorded(lambda: Store(store.url, read_only=True), MAPPING, again, None,
                          date(2026, 11, 24), dry_run=True)
    [dry_note] = [n for n in dry.notes if n.policy == "payfip"]
    assert dry_note.invoice == "FA-2026-00102"
    result = export_recorded(lambda: store, MAPPING, again, tmp_path / "again", date(2026, 11, 24))
    [note] = [n for n in result.notes if n.policy == "payfip"]
    assert note.detail == dry_note.detail
    assert (note.invoice, note.origin) == ("FA-2026-00102", f"{again}:$.invoices[1]")
    assert note.detail.startswith("already paid online 187.50 on ")
    assert note.detail.endswith(f"through its cancelled title (run {run}, IdBord 1); this "
                                "title bills 150.00 again: tell the trésorerie, which settles "
                                "the payment; send the family no new payment for it (`payfip "
                                "link` refuses it: it would pay twice)")
    from pesgen.store import unpack_notes

    recorded = unpack_notes(json.loads(store.get_run(result.run_id)["policies"]))
    assert [n["invoice"] for n in recorded if n["policy"] == "payfip"] == ["FA-2026-00102"]
    # and `runs show` says it whole, for support reading the run later (an export with
    # --quiet printed no summary), not only as `payfip ×1` among the policies' counts
    shown = CliRunner().invoke(app, ["runs", "show", result.run_id[:8], "--db", store.url])
    assert shown.exit_code == 0, shown.output
    [line] = [x for x in shown.output.splitlines() if x.startswith("  payfip ")]
    assert line == f"  payfip      FA-2026-00102: {note.detail}"
    shown = CliRunner().invoke(app, ["runs", "show", result.run_id[:8], "--db", store.url,
                                     "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert [n for n in json.loads(shown.stdout)["run"]["notes"] if n["policy"] == "payfip"] \
        == [{"policy": "payfip", "invoice": "FA-2026-00102", "detail": note.detail}]


def test_a_paid_title_since_cancelled_gets_no_link_said_paid_before_in_no_active_run(
        flow, store):
    """Two refusals apply (the invoice paid online, then its run cancelled: it is in no
    active run): the payment is said, the one a person must act on."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    flow.pay(flow.link("FA-2026-00102", mode="W"), "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    with pytest.raises(StateError) as info:
        flow.link("FA-2026-00102", mode="W")
    assert str(info.value).startswith("invoice FA-2026-00102: already paid through PayFiP: "
                                      "187.50 by card on ")
    assert [p.rule for p in info.value.problems] == ["payfip.paid"]
    assert len(flow.fake_operations()) == 1


# ------------------------------------------------------------------ Datamatrix


def _datamatrix(store, run: str, *extra: str):
    return CliRunner().invoke(app, ["payfip", "datamatrix", "--run", run[:8],
                                    "--code-etablissement", "001", "--db", store.url, *extra])


def test_no_datamatrix_for_the_titles_of_a_cancelled_bordereau(store, tmp_path):
    """A Datamatrix is a payment reference a family pays at a tobacconist's: none for a
    title of a cancelled bordereau (the trésorerie will never see it). The others are
    written; stderr names the skipped invoices and the cancellation, and the CSV written
    for that bordereau before it was cancelled, still there."""
    out = tmp_path / "split"
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, out,
                          date(2026, 11, 23)).run_id
    stems = [f"PESORMC_21450999400015_2026_000000{i}" for i in (1, 2, 3)]
    before = _datamatrix(store, run)
    assert before.exit_code == 0, before.output
    assert [(out / f"{s}.datamatrix.csv").is_file() for s in stems] == [True] * 3
    earlier = (out / f"{stems[1]}.datamatrix.csv").read_bytes()
    store.cancel(run, "trésorerie rejected IdBord 2", [2])

    result = _datamatrix(store, run)
    assert result.exit_code == 0, result.output
    assert f"{stems[0]}.datamatrix.csv" in result.stdout
    assert f"{stems[2]}.datamatrix.csv" in result.stdout
    assert f"{stems[1]}.datamatrix.csv" not in result.stdout
    cancelled_at = store.get_run(run)["cancelled_bordereaux"][2]["cancelled_at"]
    assert (f"skipped IdBord 2 of run {run}, cancelled on {cancelled_at} (trésorerie rejected "
            "IdBord 2): no Datamatrix for its 4 title(s): FA-2026-00105, FA-2026-00107, "
            "FA-2026-00108, FA-2026-00110 (a family must not pay a cancelled title)"
            ) in result.stderr
    assert (f"warning: {out / stems[1]}.datamatrix.csv (and its images in {stems[1]}"
            ".datamatrix/) was written before IdBord 2 was cancelled: do not print its "
            "Datamatrix") in result.stderr
    assert (out / f"{stems[1]}.datamatrix.csv").read_bytes() == earlier  # left as it was
    written = [row["invoice"] for s in (stems[0], stems[2]) for row in csv.DictReader(
        (out / f"{s}.datamatrix.csv").open(encoding="utf-8"), delimiter=";")]
    assert written == BORDEREAUX[1] + BORDEREAUX[3]


def test_no_datamatrix_for_a_title_paid_online(flow, store):
    """A title paid online through PayFiP gets no Datamatrix (the family would pay it
    again at the tobacconist's): left out of its file's CSV, named on stderr with the
    payment; the others are written."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    paid = flow.link("FA-2026-00102", mode="W")
    flow.pay(paid, "card")
    result = _datamatrix(store, run)
    assert result.exit_code == 0, result.output
    assert (f"skipped 1 title(s) of run {run} paid online through PayFiP: no Datamatrix "
            "(the family would pay again): FA-2026-00102 (187.50 on ") in result.stderr
    assert f"operation {paid.id_op})" in result.stderr
    [csv_path] = [Path(w.split("  ")[0].removeprefix("wrote ")) for w in
                  result.stdout.splitlines() if w.startswith("wrote ")]
    written = [row["invoice"] for row in csv.DictReader(csv_path.open(encoding="utf-8"),
                                                        delimiter=";")]
    assert "FA-2026-00102" not in written and "FA-2026-00101" in written
    assert len(written) == 10


def test_of_two_payments_of_one_invoice_written_otherwise_the_earliest_is_said(flow, store):
    """Two rows recorded paid of one invoice written two ways (the title's
    ``FA-2026-00102``, paid through its link, and a later one, ``fa-2026-00102``, added
    after it): the Datamatrix leaves the title out naming the earliest payment, as
    `payfip link` reads it (``ledger.paid_by_key``), not whichever row the database
    gives last (the later one, here)."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    paid = flow.link("FA-2026-00102", mode="W")
    flow.pay(paid, "card")
    with store.engine.begin() as conn:
        row = dict(conn.execute(sa.select(payments).where(
            payments.c.invoice == "FA-2026-00102")).one()._mapping)
        del row["id"]
        conn.execute(payments.insert().values({
            **row, "invoice": "fa-2026-00102", "paid_cents": 1000,
            "paid_at": "2099-01-01T09:00:00+01:00", "id_op": "later-op",
            "last_id_op": "later-op"}))
    result = _datamatrix(store, run)
    assert result.exit_code == 0, result.output
    assert ("paid online through PayFiP: no Datamatrix (the family would pay again): "
            f"FA-2026-00102 (187.50 on {row['paid_at']}, operation {paid.id_op})"
            in result.stderr), result.stderr


def test_a_payment_at_another_collectivite_leaves_the_title_its_datamatrix(flow, store):
    """A payment is a collectivité's: the same invoice number paid at another one (its
    SIRET, on the same state database) is not this title's, which keeps its Datamatrix."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    flow.pay(flow.link("FA-2026-00102", mode="W"), "card")
    with store.engine.begin() as conn:
        conn.execute(payments.update().where(payments.c.invoice == "FA-2026-00102")
                     .values(id_coll="21450999400023"))
    result = _datamatrix(store, run)
    assert result.exit_code == 0, result.output
    assert "paid online" not in result.stderr, result.stderr
    [csv_path] = [Path(w.split("  ")[0].removeprefix("wrote ")) for w in
                  result.stdout.splitlines() if w.startswith("wrote ")]
    written = [row["invoice"] for row in csv.DictReader(csv_path.open(encoding="utf-8"),
                                                        delimiter=";")]
    assert "FA-2026-00102" in written and len(written) == 11


def test_the_one_payment_through_a_cancelled_title_is_named_with_its_run(flow, store,
                                                                        tmp_path):
    """Paid once, through a title cancelled since (its run cancelled despite the
    payment), the invoice exported again: the new run's Datamatrix leaves it out, saying
    the money went through the cancelled title of the first run."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    paid = flow.link("FA-2026-00102", mode="W")
    flow.pay(paid, "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24)).run_id
    codes = _datamatrix(store, new)
    assert codes.exit_code == 0, codes.output
    assert "paid online through PayFiP: no Datamatrix (the family would pay again): " \
        "FA-2026-00102 (187.50 on " in codes.stderr
    assert f"operation {paid.id_op}, through its cancelled title of run {run})" in codes.stderr



def test_payments_through_a_cancelled_title_are_named_with_its_run_a_chunk_at_a_time(
        flow, store, tmp_path, monkeypatch):
    """Two invoices paid through titles cancelled since, exported again: the new run's
    Datamatrix names each payment with the cancelled run, the operations' runs read one
    a query (datamatrix._CHUNK 1: every chunk read, not only the first)."""
    from pesgen.payfip import datamatrix

    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    paid = {n: flow.link(n, mode="W") for n in ("FA-2026-00102", "FA-2026-00103")}
    for link in paid.values():
        flow.pay(link, "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24)).run_id
    monkeypatch.setattr(datamatrix, "_CHUNK", 1)
    codes = _datamatrix(store, new)
    assert codes.exit_code == 0, codes.output
    for link in paid.values():
        assert f"operation {link.id_op}, through its cancelled title of run {run})" in \
            codes.stderr, codes.stderr

def test_a_paid_title_is_left_out_beside_a_paid_title_of_a_cancelled_bordereau(flow, store,
                                                                              tmp_path):
    """FA-2026-00101 (IdBord 2) and FA-2026-00105 (IdBord 3) paid online, IdBord 2
    cancelled since: the Datamatrix of the run skips IdBord 2 and leaves FA-2026-00105 out
    of IdBord 3's CSV, told paid online; the cancelled title's payment does not hide it."""
    run = _split_run(store, tmp_path)  # IdBord 2, 3, 4 (1 was the flow's run)
    first, second = flow.link("FA-2026-00101", mode="W"), flow.link("FA-2026-00105", mode="W")
    flow.pay(first, "card")
    flow.pay(second, "card")
    store.cancel(run, "wrong amounts", [2], despite_payments=True)
    result = _datamatrix(store, run)
    assert result.exit_code == 0, result.output
    assert (f"skipped 1 title(s) of run {run} paid online through PayFiP: no Datamatrix "
            "(the family would pay again): FA-2026-00105 (") in result.stderr
    csv_path = tmp_path / "split" / "PESORMC_21450999400015_2026_0000003.datamatrix.csv"
    written = [row["invoice"] for row in csv.DictReader(csv_path.open(encoding="utf-8"),
                                                        delimiter=";")]
    assert written == ["FA-2026-00107", "FA-2026-00108", "FA-2026-00110"]


def test_a_title_of_a_cancelled_bordereau_paid_since_is_said_cancelled_only(flow, store,
                                                                            tmp_path):
    """FA-2026-00101 (IdBord 2) paid through its link after IdBord 2 was cancelled: a
    run-cancelled anomaly not resolved. The run's Datamatrix skips IdBord 2, saying it
    cancelled; the title is not told again as one held back by the payment (that is said
    of the title due in its place, which this run does not hold)."""
    run = _split_run(store, tmp_path)  # IdBord 2, 3, 4 (1 was the flow's run)
    link = flow.link("FA-2026-00101", mode="W")
    store.cancel(run, "wrong amounts", [2], despite_payments=True)
    flow.pay(link, "card")
    assert [a["kind"] for a in ledger.list_anomalies(store)] == ["run-cancelled"]
    result = _datamatrix(store, run)
    assert result.exit_code == 0, result.output
    assert f"skipped IdBord 2 of run {run}, cancelled on " in result.stderr
    assert "FA-2026-00101 of run" not in result.stderr, result.stderr


def test_every_file_of_the_run_not_found_is_named(store, tmp_path):
    """The files of two bordereaux gone: the refusal names both, nothing written."""
    out = tmp_path / "split"
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, out,
                          date(2026, 11, 23)).run_id
    gone = [out / f"PESORMC_21450999400015_2026_000000{i}.xml" for i in (1, 3)]
    for path in gone:
        path.unlink()
    result = _datamatrix(store, run)
    assert result.exit_code == 6, result.output
    assert [line.split(":")[0] for line in result.stderr.splitlines()[1:-1]] == [
        f"  - {path}" for path in gone]
    assert not list(out.glob("*.datamatrix*"))


def test_no_datamatrix_for_a_cancelled_run(store, tmp_path):
    """Every title of the run cancelled: nothing to print; exit 7 (the store's state
    refuses it), naming the cancellation and `pesgen runs show`; nothing written."""
    out = tmp_path / "split"
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, out,
                          date(2026, 11, 23)).run_id
    store.cancel(run, "trésorerie rejected IdBord 2", [2])
    store.cancel(run, "wrong exercise", whole=True)
    result = _datamatrix(store, run)
    assert result.exit_code == 7, result.output
    record = store.get_run(run)
    assert (f"error: run {run}: every title is cancelled; no Datamatrix written (a family "
            "must not pay a cancelled title): `pesgen runs show "
            f"{run}` says what was cancelled") in result.stderr
    assert (f"IdBord 2 cancelled on {record['cancelled_bordereaux'][2]['cancelled_at']} "
            "(trésorerie rejected IdBord 2): 4 title(s)") in result.stderr
    assert (f"IdBord 1 cancelled with the run on {record['cancelled_at']} (wrong exercise): "
            "4 title(s)") in result.stderr
    assert "(rule payfip.cancelled)" in result.stderr
    assert not list(out.glob("*.datamatrix*"))


# ------------------------------------------------------------------ payments, anomalies


def _payments(store, *extra: str):
    result = CliRunner().invoke(app, ["payfip", "payments", "--db", store.url, *extra])
    assert result.exit_code == 0, result.output
    return result


def test_payments_show_a_cancelled_title_as_cancelled_with_what_it_received(flow, store,
                                                                            tmp_path):
    """FA-2026-00102 paid by card, FA-2026-00104's link still open, FA-2026-00103's
    refused, then the run cancelled: each is listed `cancelled`, nothing due, the
    payment received still shown (it needs a refund or a re-attribution), with the
    title's run and IdBord and when it was cancelled; stderr says what to do."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    paid = flow.link("FA-2026-00102", mode="W")
    flow.pay(paid, "card")
    flow.link("FA-2026-00104", mode="W", mel="famille@example.org")
    flow.pay(flow.link("FA-2026-00103", mode="W"), "refuse")
    before = {r["invoice"]: r for r in ledger.list_payments(store)}
    assert before["FA-2026-00102"]["status"] == "paid"
    assert before["FA-2026-00104"]["amount_due"] == "66.00"
    store.cancel(run, "wrong amounts", despite_payments=True)
    cancelled_at = store.get_run(run)["cancelled_at"]

    rows = {r["invoice"]: r for r in json.loads(_payments(store, "--format", "json").stdout)}
    assert {inv: (r["status"], r["payfip_status"], r["amount_due"], r["amount_paid"])
            for inv, r in rows.items()} == {
        "FA-2026-00102": ("cancelled", "paid", "0.00", "187.50"),
        "FA-2026-00103": ("cancelled", "refused", "0.00", None),
        "FA-2026-00104": ("cancelled", "pending", "0.00", None)}
    assert all((r["run"], r["id_bord"], r["cancelled_at"]) == (run, 1, cancelled_at)
               for r in rows.values())
    assert (rows["FA-2026-00102"]["method"], rows["FA-2026-00102"]["id_op"]) == (
        "card", paid.id_op)

    result = _payments(store)
    listed = {r["invoice"]: r for r in csv.DictReader(io.StringIO(result.stdout),
                                                         delimiter=";")}
    assert (listed["FA-2026-00102"]["status"], listed["FA-2026-00102"]["amount_due"],
            listed["FA-2026-00102"]["amount_paid"], listed["FA-2026-00102"]["cancelled_at"],
            listed["FA-2026-00102"]["run"]) == ("cancelled", "0.00", "187.50", cancelled_at,
                                                 run)
    assert ("note: 1 cancelled title(s) were paid online (FA-2026-00102): the money stays "
            "with the cancelled title; the trésorerie refunds it or applies it to the title "
            "exported in its place; record its answer on the title's paid-cancelled anomaly "
            "(`pesgen payfip anomalies`)") in result.stderr
    assert ("note: 1 cancelled title(s) still have a PayFiP link open (FA-2026-00104): a "
            "payment through it would be an anomaly (run-cancelled), not a payment"
            ) in result.stderr

    # exported again and linked again: the row follows the new title, live
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["invoices"] = [i for i in data["invoices"] if i["number"] == "FA-2026-00104"]
    again = tmp_path / "again.json"
    again.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    new = export_recorded(lambda: store, MAPPING, again, tmp_path / "again", date(2026, 11, 24))
    # exported again, no new link yet: due again under its new title, not "cancelled"
    # (the school software would mark a due invoice settled)
    row = {r["invoice"]: r for r in ledger.list_payments(store)}["FA-2026-00104"]
    assert (row["status"], row["amount_due"], row["run"], row["id_bord"],
            row["cancelled_at"]) == ("pending", "66.00", new.run_id, new.files[0].bordereau,
                                     None)
    flow.link("FA-2026-00104", mode="W", mel="famille@example.org")
    row = {r["invoice"]: r for r in ledger.list_payments(store)}["FA-2026-00104"]
    assert (row["status"], row["amount_due"], row["run"], row["cancelled_at"]) == (
        "pending", "66.00", new.run_id, None)


def test_a_cancelled_title_paid_through_its_link_is_not_said_to_have_it_open(flow, store):
    """FA-2026-00104's production link open, its run cancelled (knowing it), then the
    family pays through it: an anomaly (run-cancelled), which changes no status, so the
    invoice's row still says pending. The note said the link was still open and that a
    payment through it "would be" an anomaly, of money already collected; it says what
    the link's operation says now."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00104").run_id
    link = flow.link("FA-2026-00104", mode="W", mel="famille@example.org")
    test = flow.link("FA-2026-00110")  # saisie T: a test, which collects nothing
    assert "link open" not in _payments(store).stderr  # open on titles still due: no note
    store.cancel(run, "wrong amounts", despite_payments=True)
    open_note = ("note: 2 cancelled title(s) still have a PayFiP link open (FA-2026-00104, "
                 "FA-2026-00110): a payment through it would be an anomaly (run-cancelled), "
                 "not a payment")
    first = _payments(store).stderr
    assert open_note in first
    assert "answered" not in first  # none yet
    flow.pay(link, "debit")
    flow.pay(test, "card")
    assert ledger.get_operation(store, link.id_op)["status"] == "anomaly"
    assert ledger.get_operation(store, test.id_op)["status"] == "anomaly"
    result = _payments(store)
    rows = list(csv.DictReader(io.StringIO(result.stdout), delimiter=";"))
    assert [(r["invoice"], r["status"], r["payfip_status"], r["amount_paid"]) for r in rows
            ] == [("FA-2026-00104", "cancelled", "pending", ""),
                  ("FA-2026-00110", "cancelled", "pending", "")]
    assert "link open" not in result.stderr
    assert "FA-2026-00110" not in result.stderr  # the test link: closed, nothing collected
    assert ("note: 1 cancelled title(s) were answered through their PayFiP link after the "
            "cancellation (FA-2026-00104): an anomaly, not a payment (money may have been "
            "collected for a cancelled title); `pesgen payfip anomalies` says what to do"
            ) in result.stderr
    assert "resolved since" not in result.stderr
    # once a person has resolved its anomaly: still said (money for a cancelled title),
    # but as decided, not as what to do
    [anomaly] = [a for a in ledger.list_anomalies(store, open_only=True)
                 if a["id_op"] == link.id_op]
    ledger.resolve_anomaly(store, anomaly["id"], "alice", "refunded by the trésorerie")
    result = _payments(store)
    assert "were answered through their PayFiP link after the cancellation (" \
        not in result.stderr
    assert ("note: 1 cancelled title(s) were answered through their PayFiP link after the "
            "cancellation, their anomaly resolved since (FA-2026-00104): the money stays "
            "with the cancelled title; the decision is recorded (`pesgen payfip anomalies "
            "--all`)") in result.stderr
    assert ledger.open_anomaly_ops(store, [link.id_op, test.id_op, "no-such-op"],
                                   chunk=1) == {test.id_op}
    # what the notes read: each operation's status now, ``chunk`` ids a query; an id no
    # operation has left out
    for chunk in (1, 2, 500):
        assert ledger.operation_statuses(store, [link.id_op, "no-such-op", test.id_op],
                                         chunk=chunk) == {link.id_op: "anomaly",
                                                          test.id_op: "anomaly"}


def test_a_cancelled_titles_earlier_link_still_open_is_said_whatever_its_last_one_says(
        flow, store):
    """FA-2026-00104 got two production links; its run was cancelled (knowing it); the
    family refused the payment on the second. The row takes the last link's status
    (refused), and the note of links still open read that link only: nothing said that
    the first one is still payable, which `runs cancel` had listed (a payment through it
    is money for a cancelled title). Once the family pays through the first (an
    anomaly), no link is open and none is said."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00104").run_id
    first = flow.link("FA-2026-00104", mode="W", mel="famille@example.org")
    second = flow.link("FA-2026-00104", mode="W", mel="famille@example.org", again=True)
    refused = flow.link("FA-2026-00110", mode="W")  # its only link: closed, not said
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(second, "refuse")
    flow.pay(refused, "refuse")
    result = _payments(store)
    rows = {r["invoice"]: r for r in csv.DictReader(io.StringIO(result.stdout),
                                                     delimiter=";")}
    assert (rows["FA-2026-00104"]["payfip_status"], rows["FA-2026-00104"]["last_id_op"]) == (
        "refused", second.id_op)
    assert ("note: 1 cancelled title(s) still have a PayFiP link open (FA-2026-00104): a "
            "payment through it would be an anomaly (run-cancelled), not a payment"
            ) in result.stderr
    # a title is its collectivity, invoice and run: another run's or collectivity's
    # title of the same number has no link open
    title = ("21450999400015", "FA-2026-00104", run)
    assert ledger.titles_with_open_links(store, [
        title, ("21450999400015", "FA-2026-00104", "another-run"),
        ("99999999999999", "FA-2026-00104", run), ("21450999400015", "FA-2026-00110", run)],
        chunk=1) == {title}
    assert ledger.titles_with_open_links(store, [
        ("21450999400015", "FA-2026-00104", "another-run")]) == set()
    flow.pay(first, "card")
    assert ledger.get_operation(store, first.id_op)["status"] == "anomaly"
    assert "link open" not in _payments(store).stderr


def test_payments_since_lists_a_title_cancelled_since(flow, store):
    """The school software asks for what changed since its last import: a title
    cancelled since is listed again (its payment row itself did not change)."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    flow.pay(flow.link("FA-2026-00102", mode="W"), "card")
    with store.engine.begin() as conn:  # imported by the school software long ago
        conn.execute(sa.update(payments).values(updated_at="2026-01-01T00:00:00Z"))
    assert ledger.list_payments(store, date(2026, 6, 1)) == []
    store.cancel(run, "wrong amounts", despite_payments=True)
    [row] = ledger.list_payments(store, date(2026, 6, 1))
    assert (row["invoice"], row["status"], row["updated_at"]) == (
        "FA-2026-00102", "cancelled", "2026-01-01T00:00:00Z")


def test_payments_since_lists_a_title_reinstated_since(flow, store):
    """The school software imported FA-2026-00102 `cancelled` long ago; its run is
    reinstated since: `--since` lists it again, paid (its row was no change: the
    software kept it cancelled, the payment nobody's)."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    flow.pay(flow.link("FA-2026-00102", mode="W"), "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    with store.engine.begin() as conn:  # paid and cancelled long ago, imported since
        conn.execute(sa.update(payments).values(updated_at="2026-01-01T00:00:00Z"))
        conn.execute(sa.text("UPDATE runs SET cancelled_at = '2026-01-02T00:00:00Z'"))
    assert ledger.list_payments(store, date(2026, 6, 1)) == []
    store.reinstate(run, "kept by the trésorerie")
    [row] = ledger.list_payments(store, date(2026, 6, 1))
    assert (row["invoice"], row["status"], row["run"], row["updated_at"]) == (
        "FA-2026-00102", "paid", run, "2026-01-01T00:00:00Z")
    # the same on the day after the reinstatement: nothing changed since
    [undone] = store.get_run(run)["reinstatements"]
    later = date.fromisoformat(undone["reinstated_at"][:10]) + timedelta(days=1)
    assert ledger.list_payments(store, later) == []



def test_payments_since_lists_the_titles_of_the_bordereaux_reinstated_only(flow, store,
                                                                           tmp_path):
    """FA-2026-00101 (IdBord 2) and FA-2026-00111 (IdBord 4) paid long ago, IdBord 2
    cancelled then and reinstated since: `--since` lists FA-2026-00101 again, not
    FA-2026-00111, whose title, active throughout, did not change (a reinstatement is of
    bordereaux: another one of the run changes nothing of it)."""
    run = _split_run(store, tmp_path)  # IdBord 2, 3, 4 (1 was the flow's run)
    flow.pay(flow.link("FA-2026-00101", mode="W"), "card")
    flow.pay(flow.link("FA-2026-00111", mode="W"), "card")
    store.cancel(run, "wrong amounts", [2], despite_payments=True)
    with store.engine.begin() as conn:  # paid and cancelled long ago, imported since
        conn.execute(sa.update(payments).values(updated_at="2026-01-01T00:00:00Z"))
        conn.execute(sa.text("UPDATE cancelled_bordereaux SET cancelled_at = "
                             "'2026-01-02T00:00:00Z'"))
    assert ledger.list_payments(store, date(2026, 6, 1)) == []
    store.reinstate(run, "the trésorerie took IdBord 2", [2])
    assert [(r["invoice"], r["status"], r["run"]) for r in ledger.list_payments(
        store, date(2026, 6, 1))] == [("FA-2026-00101", "paid", run)]


def test_payments_since_leaves_a_title_beside_another_budget_s_bordereau_reinstated(
        flow, store, tmp_path):
    """FA-2026-00102 (IdBord 1) paid long ago; another budget's run (IdBord 1 of its own
    sequence) cancelled and reinstated since: `--since` lists nothing, the paid title's
    bordereau was not the one reinstated."""
    from .collectivity_support import example_input, export, other_budget

    flow.pay(flow.link("FA-2026-00102", mode="W"), "card")
    other = export(store, other_budget(tmp_path / "b01"),
                   example_input(tmp_path, "b01.json", "CO-"), tmp_path / "out-01")
    assert [b.id_bord for b in store.run_bordereaux(other)] == [1]
    store.cancel(other, "wrong budget")
    with store.engine.begin() as conn:  # paid long ago, imported since
        conn.execute(sa.update(payments).values(updated_at="2026-01-01T00:00:00Z"))
        conn.execute(sa.text("UPDATE runs SET cancelled_at = '2026-01-02T00:00:00Z' "
                             "WHERE cancelled_at IS NOT NULL"))
    assert ledger.list_payments(store, date(2026, 6, 1)) == []
    store.reinstate(other, "kept by the trésorerie")
    assert ledger.list_payments(store, date(2026, 6, 1)) == []

def test_anomalies_show_the_invoice_of_a_cancelled_title_as_cancelled(flow, store,
                                                                       tmp_path):
    """A payment through the link of a title of a cancelled bordereau: the anomaly's
    invoice is shown cancelled (not `pending`, as if still due)."""
    run = _split_run(store, tmp_path)
    rejected = flow.link("FA-2026-00105", mode="W")  # IdBord 3
    store.cancel(run, "trésorerie rejected IdBord 3", [3], despite_payments=True)
    flow.pay(rejected, "card")
    [anomaly] = ledger.list_anomalies(store)
    cancelled_at = store.get_run(run)["cancelled_bordereaux"][3]["cancelled_at"]
    assert (anomaly["kind"], anomaly["invoice_status"], anomaly["payfip_status"],
            anomaly["cancelled_at"]) == ("run-cancelled", "cancelled", "pending", cancelled_at)
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--db", store.url])
    assert result.exit_code == 0, result.output
    [title] = [t for t in store.find_invoice("FA-2026-00105") if t["run_id"] == run]
    assert (f"    invoice FA-2026-00105: cancelled (its title, IdBord 3 IdPce "
            f"{title['id_pce']} of run {run}, "
            f"cancelled on {cancelled_at}; PayFiP status pending): nothing is due on it; "
            "the anomaly recorded no payment and changed no status") in result.stdout


def test_every_anomaly_has_the_same_keys_its_title_cancelled_or_not(flow, store, tmp_path):
    """An anomaly of a cancelled title and one of a title still due: the same keys, the
    documented ones (the one of the cancelled title lacked ``op_coll``, the join's own
    column, which the other kept)."""
    run = _split_run(store, tmp_path)
    rejected = flow.link("FA-2026-00105", mode="W")  # IdBord 3
    store.cancel(run, "trésorerie rejected IdBord 3", [3], despite_payments=True)
    flow.pay(rejected, "card")
    due = flow.link("FA-2026-00101", mode="W")  # IdBord 2, not cancelled
    flow.control("tamper", {"idop": due.id_op, "fields": {"montant": "100"}})
    flow.pay(due, "card")
    rows = ledger.list_anomalies(store)
    assert sorted((a["kind"], a["invoice_status"]) for a in rows) == [
        ("amount-mismatch", "pending"), ("run-cancelled", "cancelled")]
    shapes = {tuple(sorted(a)) for a in rows}
    assert len(shapes) == 1, shapes
    [keys] = shapes
    assert "op_coll" not in keys and "title_active" not in keys
    assert {"payfip_status", "invoice_status", "title_run", "title_id_bord", "title_id_pce",
            "cancelled_at", "again_run", "again_id_bord"} <= set(keys)


def test_a_payment_of_a_cancelled_title_at_another_amount_says_both(flow, store):
    """Every anomaly of the result is recorded: the title cancelled too, not only the
    amount (support must know the money is for a cancelled title)."""
    flow.pay_cancelled("100")
    assert sorted(a["kind"] for a in ledger.list_anomalies(store)) == [
        "amount-mismatch", "run-cancelled"]


class _CancellingClient:
    """A PayFiP client during whose creerPaiementSecurise the title's run is cancelled
    (another person, at the same time)."""

    endpoint = "http://payfip.invalid/tpa"

    def __init__(self, store, run):
        self.store, self.run = store, run

    def creer_paiement_securise(self, request):
        self.store.cancel(self.run, "rejected meanwhile")
        return "0d1a5c3e-0000-4000-8000-000000000001"

    def payment_url(self, id_op):
        return f"{self.endpoint}/paiementws.web?idop={id_op}"

    def close(self):
        pass


def test_a_link_made_while_its_title_is_cancelled_is_recorded_not_given(store, exported):
    """The title was cancelled while PayFiP made the operation: it is recorded (a
    payment through it would be caught as run-cancelled), and the link is not given."""
    from pesgen.payfip.service import create_link

    client = _CancellingClient(store, exported.run_id)
    with pytest.raises(StateError, match="cancelled while") as info:
        create_link(store, MAPPING, "FA-2026-00102", mode="W", client=client,
                    notify_url="https://ecole.example.org/payfip/notification")
    assert info.value.exit_code == 7
    assert "do not send" in str(info.value)
    op = ledger.get_operation(store, "0d1a5c3e-0000-4000-8000-000000000001")
    assert (op["status"], op["run_id"]) == ("pending", exported.run_id)
    [row] = ledger.list_payments(store)
    assert (row["status"], row["payfip_status"]) == ("cancelled", "pending")


def test_payfip_link_cancelled_meanwhile_says_the_operation_is_recorded_not_nothing_written(
        store, exported, monkeypatch):
    """`payfip link` refused after PayFiP made the operation: its message says the
    operation is recorded; the count of problems adds nothing to it (it said "nothing was
    written.", as an export's refusal, beside "the operation is recorded")."""
    import pesgen.payfip.client

    monkeypatch.setattr(pesgen.payfip.client, "PayfipClient",
                        lambda endpoint, timeout: _CancellingClient(store, exported.run_id))
    result = CliRunner().invoke(app, [
        "payfip", "link", "-m", str(MAPPING), "-n", "FA-2026-00102", "--mode", "W",
        "--notify-url", "https://ecole.example.org/payfip/notification", "--db", store.url])
    assert result.exit_code == 7, result.output
    assert "the operation is recorded, but do not send its link" in result.stderr
    assert result.stderr.endswith("\n1 problem(s).\n"), result.stderr


@pytest.mark.parametrize("action", ["refuse", "card"])
def test_the_return_page_of_a_cancelled_title_says_it_is_cancelled(flow, store, action):
    """The family comes back from PayFiP through the link of a title cancelled since: the
    page says so, never "try again with a new link" nor "recorded"."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.control("notifications", {"enabled": False})
    flow.pay(link, action)
    page = httpx.post(f"{flow.receiver.url}/payfip/retour", data={"idop": link.id_op},
                      timeout=TIMEOUT)
    assert page.status_code == 200
    assert "Ce titre a été annulé par la régie" in page.text
    assert "réessayer" not in page.text and "enregistré" not in page.text


def test_a_payment_of_a_cancelled_title_stays_with_it_when_the_invoice_is_exported_again(
        flow, store, tmp_path):
    """FA-2026-00102 paid twice by card through its title, the run cancelled despite the
    payments, the example exported again: the money stays listed on the cancelled title
    (with its cancellation, the note on stderr), the new title is listed apart with
    nothing paid, the anomaly's invoice is the cancelled title's, and the new run's
    Datamatrix leaves the invoice out (the family paid already)."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    first, second = flow.link(mode="W"), flow.link(mode="W", again=True)
    flow.pay(first, "card")
    flow.pay(second, "card")  # a double payment
    store.cancel(run, "wrong amounts", despite_payments=True)
    cancelled_at = store.get_run(run)["cancelled_at"]
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24)).run_id

    rows = [r for r in json.loads(_payments(store, "--format", "json").stdout)
            if r["invoice"] == "FA-2026-00102"]
    assert [(r["status"], r["amount_due"], r["amount_paid"], r["method"], r["id_op"],
             r["payfip_status"], r["run"], r["cancelled_at"]) for r in rows] == [
        ("cancelled", "0.00", "187.50", "card", first.id_op, "paid", run, cancelled_at),
        # held back: the family paid through the cancelled title (not to be asked again)
        ("held-back", "187.50", None, None, None, None, new, None)]
    result = _payments(store)
    assert "note: 1 cancelled title(s) were paid online (FA-2026-00102)" in result.stderr
    listed = [r for r in csv.DictReader(io.StringIO(result.stdout), delimiter=";")
              if r["invoice"] == "FA-2026-00102"]
    assert [(r["status"], r["amount_paid"], r["run"]) for r in listed] == [
        ("cancelled", "187.50", run), ("held-back", "", new)]

    # the second payment, and the cancellation of the paid title (for a person to record
    # what the trésorerie did with the money)
    double, cancelled = ledger.list_anomalies(store)
    assert (double["kind"], double["id_op"], double["invoice_status"], double["again_run"]) == (
        "double-payment", second.id_op, "cancelled", new)
    assert (cancelled["kind"], cancelled["id_op"], cancelled["source"]) == (
        "paid-cancelled", first.id_op, "cancel")
    shown = CliRunner().invoke(app, ["payfip", "anomalies", "--db", store.url])
    assert shown.exit_code == 0, shown.output
    [title] = [t for t in store.find_invoice("FA-2026-00102") if t["run_id"] == run]
    [again] = [t for t in store.find_invoice("FA-2026-00102") if t["run_id"] == new]
    # the title exported in its place named as the cancelled one is, with its IdPce
    assert (f"    invoice FA-2026-00102: cancelled (its title, IdBord 1 IdPce "
            f"{title['id_pce']} of run {run}, "
            f"cancelled on {cancelled_at}; PayFiP status paid): nothing is due on it; "
            f"exported again since as IdBord 2 IdPce {again['id_pce']} of run {new}, on "
            "which nothing is paid; the anomaly recorded no payment") in shown.stdout
    assert "invoice FA-2026-00102: paid" not in shown.stdout

    codes = _datamatrix(store, new)
    assert codes.exit_code == 0, codes.output
    assert (f"skipped 1 title(s) of run {new} paid online through PayFiP: no Datamatrix "
            "(the family would pay again): FA-2026-00102 (187.50 on ") in codes.stderr
    assert f"operation {first.id_op}, through its cancelled title of run {run})" in codes.stderr
    [csv_path] = [Path(w.split("  ")[0].removeprefix("wrote ")) for w in
                  codes.stdout.splitlines() if w.startswith("wrote ")]
    assert "FA-2026-00102" not in csv_path.read_text(encoding="utf-8")


def test_cancel_lists_every_operation_that_may_have_moved_money(flow, store):
    """Besides paid and open production links: an activation payment (saisie X), an
    expired link, one whose result PayFiP refused to give (lookup-refused), one in state
    unknown, each with its state; an amount-mismatch shows the amount PayFiP reported
    beside the one asked. A refused one, a test link and a test payment are not listed."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    flow.pay(flow.link("FA-2026-00101", mode="X"), "card")  # test-paid, activation
    flow.pay(flow.link("FA-2026-00110", mode="T"), "card")  # test-paid, test: no money
    mismatch = flow.link("FA-2026-00102", mode="W")
    flow.control("tamper", {"idop": mismatch.id_op, "fields": {"montant": "5000"}})
    flow.pay(mismatch, "card")
    flow.pay(flow.link("FA-2026-00111", mode="W"), "refuse")  # no money
    states = {"FA-2026-00103": ("expired", None), "FA-2026-00104": ("anomaly", None),
              "FA-2026-00105": ("unknown", None)}
    made = {}
    for invoice, (status, code) in states.items():
        made[invoice] = flow.link(invoice, mode="W", mel="famille@example.org").id_op
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE payfip_operations SET status = :s, result_code = :c "
                                 "WHERE id_op = :i"), {"s": status, "c": code,
                                                       "i": made[invoice]})
    with pytest.raises(StateError) as info:
        store.cancel(run, "wrong amounts")
    said = {p.invoice: p.message for p in info.value.problems}
    assert sorted(said) == ["FA-2026-00101", "FA-2026-00102", "FA-2026-00103",
                            "FA-2026-00104", "FA-2026-00105"]
    assert said["FA-2026-00101"].startswith("IdBord 1: paid in activation mode (saisie X) ")
    assert (f"PayFiP operation {mismatch.id_op} answered P (paid, PayFiP reported 50.00, "
            "187.50 asked) but was recorded as an anomaly") in said["FA-2026-00102"]
    assert said["FA-2026-00103"].startswith(
        f"IdBord 1: PayFiP operation {made['FA-2026-00103']} expired (")
    assert "could not be asked its result (lookup-refused)" in said["FA-2026-00104"]
    assert "(state unknown: PayFiP could not be asked its result yet)" in said["FA-2026-00105"]


def test_a_second_payment_is_marked_in_the_history_and_recorded_beside_other_anomalies(
        flow, store):
    """A second payment of a paid invoice is a `double-payment` event of its history
    (not a `paid` one a consumer would count), naming the paying operation; a second
    payment that is also through a cancelled title records both anomalies."""
    first, second = flow.link(mode="W"), flow.link(mode="W", again=True)
    flow.pay(first, "card")
    flow.pay(second, "card")
    [row] = [r for r in ledger.list_payments(store, history=True)
             if r["invoice"] == "FA-2026-00102"]
    assert [(e["event"], e["id_op"]) for e in row["history"]
            if e["event"] not in ("created",)] == [
        ("paid", first.id_op), ("double-payment", second.id_op)]
    assert row["history"][-1]["detail"]["paid_by"] == first.id_op
    assert [e["event"] for e in row["history"]].count("paid") == 1

    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00104").run_id
    paid = flow.link("FA-2026-00104", mode="W", mel="famille@example.org")
    late = flow.link("FA-2026-00104", mode="W", mel="famille@example.org", again=True)
    flow.pay(paid, "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(late, "card")
    assert sorted((a["kind"], a["expected"], a["got"]) for a in ledger.list_anomalies(store)
                  if a["id_op"] == late.id_op) == [
        ("double-payment", paid.id_op, late.id_op),
        ("run-cancelled", f"run {run} active", f"run {run} cancelled")]


ID_COLL = "21450999400015"  # the example mapping's SIRET
PAID_AFTER_CANCEL = ("FA-2026-00101", "FA-2026-00102", "FA-2026-00103", "FA-2026-00104",
                     "FA-2026-00105")


def _recorded_link(store, invoice: str, n: int, saisie: str = "W") -> str:
    """An operation for the invoice's active title (production unless ``saisie`` says
    otherwise), recorded as `payfip link` records it (no PayFiP asked): its idOp."""
    due = ledger.invoice_due(store, ID_COLL, invoice)
    id_op = f"0d1a5c3e-0000-4000-8000-{n:012d}"
    ledger.record_operation(store, {
        "id_op": id_op, "id_coll": ID_COLL, "invoice": due.invoice, "run_id": due.run_id,
        "numcli": "012345", "exer": "2026", "refdet": due.invoice.replace("-", ""),
        "amount_cents": due.amount_cents, "mel": "famille@example.org",
        "objet": "FACTURE", "saisie": saisie, "endpoint": "http://payfip.invalid/tpa"})
    return id_op


def _paid(store, id_op: str) -> None:
    """PayFiP's result for the operation: paid by card, as asked, in its own mode."""
    from pesgen.payfip.models import PaymentDetail

    op = ledger.get_operation(store, id_op)
    ledger.apply_detail(store, id_op, PaymentDetail(
        idOp=id_op, resultrans="P", montant=str(op["amount_cents"]), refdet=op["refdet"],
        numcli=op["numcli"], saisie=op["saisie"], dattrans="01122026", heurtrans="1000",
        numauto="A55A"), "reconcile")


def _queries(store, call) -> tuple[int, object]:
    """How many SELECT ``call`` sends to the store's database (its connection's own
    statements aside: PRAGMA, BEGIN), and its result."""
    seen = []

    def listen(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement.lstrip().upper().startswith("SELECT"))

    sa.event.listen(store.engine, "before_cursor_execute", listen)
    try:
        result = call()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", listen)
    return sum(seen), result


def test_payments_and_anomalies_of_titles_exported_again_take_a_few_queries(
        store, exported, tmp_path):
    """Links of five titles paid after their run was cancelled (five run-cancelled
    anomalies), the run exported again: `payfip payments --history` and `payfip
    anomalies` read the new titles, their amounts and the histories 500 invoices a
    query. They made two queries an invoice for its new title and one for its history:
    60 000 for a cancelled run of 20 000 paid titles (docs/performance.md)."""
    ops = [_recorded_link(store, invoice, n) for n, invoice in enumerate(PAID_AFTER_CANCEL)]
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    for id_op in ops:
        _paid(store, id_op)
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24)).run_id

    count, rows = _queries(store, lambda: ledger.list_payments(store, history=True))
    assert [(r["invoice"], r["status"], r["run"]) for r in rows] == [
        (invoice, status, run) for invoice in PAID_AFTER_CANCEL
        for status, run in (("cancelled", exported.run_id), ("held-back", new))]
    assert [[e["event"] for e in r["history"]] for r in rows] == [
        ["created", "title-cancelled", "anomaly"], []] * len(PAID_AFTER_CANCEL)
    # the payments' ids, the invoices held back, their rows, the new titles, the first
    # file of each one's bordereau (Store._first_files), their amounts, the histories (a
    # chunk of 500 invoices: ledger.iter_payments)
    assert count <= 7
    count, found = _queries(store, lambda: ledger.list_anomalies(store))
    assert [(a["kind"], a["invoice_status"], a["again_run"]) for a in found] == [
        ("run-cancelled", "cancelled", new)] * len(PAID_AFTER_CANCEL)
    # the anomalies, the new titles, the first file of each one's bordereau, their
    # amounts, the corrections of their answers
    assert count <= 5


def test_payments_are_read_and_written_500_invoices_at_a_time(store, exported, tmp_path,
                                                              monkeypatch):
    """`payfip payments` held every row, then the whole file's text (406 MiB for 40 000
    rows with --history: docs/performance.md): the rows are read a chunk of invoices at
    a time (their new titles and histories looked up per chunk) and written as they
    come, the same bytes as the list made at once; the summary says how many invoices
    in how many rows (an invoice exported again since its title was cancelled has two)."""
    from pesgen._display import json_text
    from pesgen.payfip import cli as payfip_cli

    ops = [_recorded_link(store, invoice, n) for n, invoice in enumerate(PAID_AFTER_CANCEL)]
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    for id_op in ops:
        _paid(store, id_op)
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    whole = ledger.list_payments(store, history=True)
    assert len(whole) == 10

    looked_up = []
    real = ledger._histories

    def histories(conn, invoices):
        looked_up.append(len(invoices))
        return real(conn, invoices)

    monkeypatch.setattr(ledger, "_histories", histories)
    rows = ledger.iter_payments(store, history=True, chunk=2)
    assert next(rows) == whole[0] and looked_up == [2]  # the first chunk only, so far
    # no connection held while the caller has the row (a SQLite reader would keep
    # `payfip serve` from recording a result until the listing ends)
    assert store.engine.pool.checkedout() == 0
    assert [next(rows), *rows] == whole[1:] and looked_up == [2, 2, 1]

    monkeypatch.setattr(ledger, "PAYMENTS_CHUNK", 2)
    runner = CliRunner()
    out = tmp_path / "payments.json"
    result = runner.invoke(app, ["payfip", "payments", "--format", "json", "--history",
                                 "-o", str(out), "--db", store.url])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == json_text(whole) + "\n"
    assert result.stderr.splitlines()[0] == f"wrote {out}: 5 invoice(s) in 10 row(s)"
    result = runner.invoke(app, ["payfip", "payments", "--db", store.url])
    assert result.exit_code == 0, result.output
    assert [(r["invoice"], r["status"]) for r in csv.DictReader(
        io.StringIO(result.stdout), delimiter=";")] == [
        (r["invoice"], r["status"]) for r in whole]
    assert result.stderr.splitlines()[0] == "5 invoice(s) in 10 row(s)"
    assert "".join(payfip_cli._payment_pieces(iter([]), "json")) == "[]\n"
    assert "".join(payfip_cli._payment_pieces(iter([]), "csv")).count("\n") == 1


def test_anomalies_are_read_and_written_a_chunk_at_a_time(store, exported, tmp_path,
                                                         monkeypatch):
    """`payfip anomalies` held every anomaly, resolved ones too, then the whole report
    (1.5 GB for a flood of 200 000 unknown idOps in JSON: docs/performance.md): they are
    read a chunk at a time, the open ones alone unless --all (filtered by the query),
    each chunk's new titles looked up with it, and written as they come: the same text
    as the list made at once, the counts read apart."""
    import functools

    from pesgen._display import json_text
    from pesgen.payfip import cli as payfip_cli

    ops = [_recorded_link(store, invoice, n) for n, invoice in enumerate(PAID_AFTER_CANCEL)]
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    for id_op in ops:
        _paid(store, id_op)
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    whole = ledger.list_anomalies(store)
    assert len(whole) == 5 and all(a["again_run"] for a in whole)
    ledger.resolve_anomaly(store, whole[1]["id"], "support", "refunded", "refunded")
    whole = ledger.list_anomalies(store)
    assert ledger.anomaly_counts(store) == (4, 1, whole[-1]["id"])

    looked_up = []
    real = ledger._titles_again

    def titles_again(store_, conn, cancelled):
        looked_up.append(len(cancelled))
        return real(store_, conn, cancelled)

    monkeypatch.setattr(ledger, "_titles_again", titles_again)
    rows = ledger.iter_anomalies(store, chunk=2)
    assert next(rows) == whole[0] and looked_up == [2]  # the first chunk only, so far
    assert store.engine.pool.checkedout() == 0  # no connection held meanwhile
    assert [next(rows), *rows] == whole[1:] and looked_up == [2, 2, 1]
    # the open ones alone, read as such; none after the last counted
    assert list(ledger.iter_anomalies(store, open_only=True, chunk=2)) == [
        a for a in whole if a["resolved_at"] is None]
    assert list(ledger.iter_anomalies(store, upto=whole[2]["id"], chunk=2)) == whole[:3]
    # counted none (anomaly_counts' 0): none listed, whatever was recorded since
    assert list(ledger.iter_anomalies(store, upto=0, chunk=2)) == []

    monkeypatch.setattr(ledger, "iter_anomalies",
                        functools.partial(ledger.iter_anomalies, chunk=2))
    runner = CliRunner()
    for every in ((), ("--all",)):
        listed = [a for a in whole if every or a["resolved_at"] is None]
        result = runner.invoke(app, ["payfip", "anomalies", *every, "--format", "json",
                                     "--db", store.url])
        assert result.exit_code == 0, result.output
        assert result.stdout == json_text({
            "command": "payfip anomalies", "ok": True, "exit_code": 0, "error": None,
            "open": 4, "resolved": 1, "limit": None, "anomalies": [
                payfip_cli._anomaly_json(a, ledger.ANOMALY_ADVICE) for a in listed],
            "more": 0}) + "\n"
        result = runner.invoke(app, ["payfip", "anomalies", *every, "--db", store.url])
        assert result.exit_code == 0, result.output
        assert [line.split()[0] for line in result.stdout.splitlines()
                if line.startswith("#")] == [f"#{a['id']}" for a in listed]
        assert result.stdout.splitlines()[-1].startswith(
            "4 open: once decided, `pesgen payfip anomalies resolve ID --note TEXT`")
    assert "".join(payfip_cli._anomalies_json(iter([]), 0, 0)) == json_text({
        "command": "payfip anomalies", "ok": True, "exit_code": 0, "error": None,
        "open": 0, "resolved": 0, "limit": None, "anomalies": [], "more": 0}) + "\n"
    # the last one's number, not how many there are: a number may be missing (a
    # PostgreSQL sequence skips an insert rolled back), and the listing stops at the last
    with store.engine.begin() as conn:
        conn.execute(anomalies.delete().where(anomalies.c.id == whole[0]["id"]))
    assert ledger.anomaly_counts(store) == (3, 1, whole[-1]["id"])
    assert list(ledger.iter_anomalies(store, upto=whole[-1]["id"], chunk=2)) == whole[1:]


def test_payments_since_lists_an_invoice_exported_again_since(store, exported, tmp_path):
    """The school software imported FA-2026-00102 `cancelled` (nothing due) long ago;
    the invoice is exported again since: `--since` lists it again, both rows, the new
    title due (the re-export was no change for --since: the software kept it cancelled,
    nothing due, while its new title bills the family)."""
    _paid(store, _recorded_link(store, "FA-2026-00102", 1))
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    with store.engine.begin() as conn:  # paid and cancelled long ago, imported since
        conn.execute(sa.update(payments).values(updated_at="2026-01-01T00:00:00Z"))
        conn.execute(sa.text("UPDATE runs SET cancelled_at = '2026-01-02T00:00:00Z'"))
    assert ledger.list_payments(store, date(2026, 6, 1)) == []
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["invoices"] = [i for i in data["invoices"] if i["number"] == "FA-2026-00102"]
    again = tmp_path / "again.json"
    again.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    new = export_recorded(lambda: store, MAPPING, again, tmp_path / "again",
                          date(2026, 11, 24)).run_id
    assert [(r["invoice"], r["status"], r["amount_due"], r["amount_paid"], r["run"])
            for r in ledger.list_payments(store, date(2026, 6, 1))] == [
        ("FA-2026-00102", "cancelled", "0.00", "187.50", exported.run_id),
        ("FA-2026-00102", "held-back", "187.50", None, new)]
    # the same on the day after the export again: nothing changed since
    later = date.fromisoformat(store.get_run(new)["created_at"][:10]) + timedelta(days=1)
    assert ledger.list_payments(store, later) == []


def test_the_cancelled_titles_are_noted_in_the_payments_history_a_chunk_at_a_time(
        db_url, tmp_path, monkeypatch):
    """`runs cancel --despite-payments` notes each title paid online in its payment's
    history (a title-cancelled event): its payments read 500 invoices a query (3 here)
    and the events written in one executemany, in the invoices' order. A SELECT and an
    INSERT per invoice made 36 000 statements for 18 000 payments, each a round trip to
    a PostgreSQL server (docs/performance.md, "The store and PayFiP on PostgreSQL")."""
    import pesgen.store as st
    from pesgen.payfip.tables import operations

    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "out", date(2026, 11, 23))
    with store.engine.begin() as conn:
        titles = conn.execute(sa.select(st.run_invoices.c.invoice, st.run_invoices.c.amount)
                              .where(st.run_invoices.c.run_id == run.run_id)
                              .order_by(st.run_invoices.c.invoice)).all()
        at = "2026-11-24T10:00:00Z"
        conn.execute(operations.insert(), [
            {"id_op": f"op-{t.invoice}", "id_coll": "21450999400015", "invoice": t.invoice,
             "run_id": run.run_id, "numcli": "012345", "exer": "2026", "refdet": f"R{n}",
             "amount_cents": 100, "mel": "famille@example.org", "objet": "FACTURE",
             "saisie": "W", "endpoint": "http://127.0.0.1:9/tpa", "created_at": at,
             "status": "paid", "result_code": "P", "transaction_at": at}
            for n, t in enumerate(titles)])
        conn.execute(payments.insert(), [
            {"id_coll": "21450999400015", "invoice": t.invoice, "status": "paid",
             "amount_cents": 100, "paid_cents": 100, "method": "card", "paid_at": at,
             "id_op": f"op-{t.invoice}", "last_id_op": f"op-{t.invoice}", "refdet": f"R{n}",
             "created_at": at, "updated_at": at} for n, t in enumerate(titles)])
    monkeypatch.setattr(st, "_LOOKED_UP", 4)
    seen: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda _c, _cu, statement, *_: seen.append(statement))
    done = store.cancel(run.run_id, "wrong amounts", despite_payments=True)
    assert len(done.payments) == len(titles) == 11
    # 11 invoices, 4 a query: 3 reads of their payments for the notes (and one query
    # for the whole run of the payments applied to its titles, `resolve --applied`,
    # beside the one of its operations, which leaves those out; and one for the whole
    # run of its paid titles, each a paid-cancelled anomaly)
    assert len([s for s in seen if "payfip_payments" in s and "applied_run =" not in s
                and "coalesce(" not in s]) == 3, seen
    assert len([s for s in seen if "INSERT INTO payfip_anomalies" in s]) == 1, seen
    assert len([s for s in seen if "payfip_payments.applied_run =" in s
                and "FROM payfip_payments JOIN" in s]) == 1, seen
    assert len([s for s in seen if "INSERT INTO payfip_events" in s]) == 1, seen
    with store.engine.connect() as conn:
        noted = conn.execute(sa.select(events).order_by(events.c.id)).all()
    assert [(n.invoice, n.id_op, n.event, n.source, n.status, n.at[:4]) for n in noted] == [
        (p.invoice, f"op-{p.invoice}", "title-cancelled", "cancel", "paid", "2026")
        for p in done.payments]
    assert {json.loads(n.detail)["run"] for n in noted} == {run.run_id}


def test_payments_since_leaves_out_an_invoice_exported_again_before_it(store, exported,
                                                                        tmp_path):
    """FA-2026-00102 paid, its title cancelled and the invoice exported again, all long
    ago; a run of another invoice made since changes nothing of it: `--since` leaves it
    out (only the run that holds its new title counts, not any run made since)."""
    _paid(store, _recorded_link(store, "FA-2026-00102", 1))
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    invoices = data["invoices"]
    data["invoices"] = [i for i in invoices if i["number"] == "FA-2026-00102"]
    again = tmp_path / "again.json"
    again.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    new = export_recorded(lambda: store, MAPPING, again, tmp_path / "again",
                          date(2026, 11, 24)).run_id
    with store.engine.begin() as conn:  # all of it long ago, imported since
        conn.execute(sa.update(payments).values(updated_at="2026-01-01T00:00:00Z"))
        conn.execute(sa.text("UPDATE runs SET cancelled_at = '2026-01-02T00:00:00Z' "
                             "WHERE cancelled_at IS NOT NULL"))
        conn.execute(sa.text("UPDATE runs SET created_at = '2026-01-03T00:00:00Z' "
                             "WHERE id = :id"), {"id": new})
    assert ledger.list_payments(store, date(2026, 6, 1)) == []
    data["invoices"] = [i for i in invoices if i["number"] == "FA-2026-00104"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    export_recorded(lambda: store, MAPPING, other, tmp_path / "other", date(2026, 11, 24))
    assert ledger.list_payments(store, date(2026, 6, 1)) == []
    # the listing without --since has both of its rows, the new title's in its run, and
    # neither has a history when none is asked
    rows = ledger.list_payments(store)
    assert [(r["invoice"], r["status"], r["run"]) for r in rows] == [
        ("FA-2026-00102", "cancelled", exported.run_id), ("FA-2026-00102", "held-back", new)]
    assert "history" not in rows[0] and set(rows[1]) == set(rows[0])


def test_payments_of_titles_still_due_look_up_no_new_title_nor_unasked_history(
        store, exported):
    """No title cancelled: `payfip payments` reads the payments' ids, the invoices held
    back (one query for the whole listing) and their rows, no new title (only a
    cancelled title's invoice can have one) and, without --history, no history;
    --history reads the histories in one more query. `payfip anomalies` reads the
    anomalies, and no new title either."""
    from pesgen.payfip.models import PaymentDetail

    ops = [_recorded_link(store, invoice, n) for n, invoice in enumerate(PAID_AFTER_CANCEL)]
    _paid(store, ops[0])
    op = ledger.get_operation(store, ops[1])  # paid another amount than the one asked
    ledger.apply_detail(store, ops[1], PaymentDetail(
        idOp=ops[1], resultrans="P", montant="100", refdet=op["refdet"], numcli=op["numcli"],
        saisie="W", dattrans="01122026", heurtrans="1000", numauto="A55A"), "reconcile")
    count, found = _queries(store, lambda: ledger.list_anomalies(store))
    assert [(a["kind"], a["invoice"], a["invoice_status"], a["again_run"]) for a in found] == [
        ("amount-mismatch", PAID_AFTER_CANCEL[1], "pending", None)]
    assert count == 1
    count, rows = _queries(store, lambda: ledger.list_payments(store))
    assert sorted((r["invoice"], r["status"], r["run"]) for r in rows) == [
        (invoice, "paid" if invoice == PAID_AFTER_CANCEL[0] else "pending", exported.run_id)
        for invoice in PAID_AFTER_CANCEL]
    assert not any("history" in r for r in rows)
    # the columns the school software imports (a CSV's header), in their order
    assert [list(r) for r in rows] == [[
        "invoice", "collectivity", "status", "amount_due", "amount_paid", "method",
        "paid_at", "paid_at_source", "id_op", "last_id_op", "numauto", "refdet",
        "updated_at", "saisie", "payfip_status", "run", "id_bord", "cancelled_at"]] * 5
    assert count == 3  # the payments' ids, the invoices held back (none), the rows
    assert not any("history" in r for r in ledger.iter_payments(store))  # not asked
    count, rows = _queries(store, lambda: ledger.list_payments(store, history=True))
    assert {r["invoice"]: [e["event"] for e in r["history"]] for r in rows} == {
        invoice: {PAID_AFTER_CANCEL[0]: ["created", "paid"],
                  PAID_AFTER_CANCEL[1]: ["created", "anomaly"]}.get(invoice, ["created"])
        for invoice in PAID_AFTER_CANCEL}
    assert count == 4


def test_reinstating_one_bordereau_resolves_the_paid_cancelled_anomalies_of_its_titles_only(
        flow, store, tmp_path):
    """FA-2026-00101 (IdBord 2) and FA-2026-00105 (IdBord 3) paid online, both bordereaux
    cancelled despite it (a paid-cancelled anomaly each): reinstating IdBord 2 resolves
    FA-2026-00101's (outcome reinstated), FA-2026-00105's stays open while its title is
    cancelled, and is resolved once IdBord 3 is reinstated too."""
    run = _split_run(store, tmp_path)  # IdBord 2, 3, 4 (1 was the flow's run)
    first, second = flow.link("FA-2026-00101", mode="W"), flow.link("FA-2026-00105", mode="W")
    flow.pay(first, "card")
    flow.pay(second, "card")
    store.cancel(run, "wrong amounts", [2, 3], despite_payments=True)

    def state():
        return sorted((a["invoice"], a["outcome"], a["resolved_at"] is not None)
                      for a in ledger.list_anomalies(store) if a["kind"] == "paid-cancelled")

    assert state() == [("FA-2026-00101", None, False), ("FA-2026-00105", None, False)]
    done = store.reinstate(run, "the trésorerie took IdBord 2", [2], by="support")
    assert [(s["invoice"], s["id_bord"], s["id_op"]) for s in done.settled] == [
        ("FA-2026-00101", 2, first.id_op)]
    assert state() == [("FA-2026-00101", "reinstated", True), ("FA-2026-00105", None, False)]
    done = store.reinstate(run, "and IdBord 3", [3], by="support")
    assert [s["invoice"] for s in done.settled] == ["FA-2026-00105"]
    assert state() == [("FA-2026-00101", "reinstated", True),
                       ("FA-2026-00105", "reinstated", True)]


def test_a_paid_title_cancelled_again_gets_one_anomaly_beside_another_budget_s_title(
        flow, store, tmp_path):
    """FA-2026-00102 paid online, its run cancelled; the example exported again for
    another budget of the collectivité (its own IdBord sequence: IdBord 1 again, the same
    invoice of the same SIRET), that run cancelled, the first reinstated (its anomaly resolved) and
    cancelled once more: one paid-cancelled anomaly, of IdBord 1 of the first run. The
    payment follows the first run's title only: the other run's title of the same number
    and IdBord is not its (store._title_payments joins the titles of the run)."""
    from .collectivity_support import other_budget

    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link(mode="W")
    flow.pay(link, "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    other = export_recorded(lambda: store, other_budget(tmp_path), EXAMPLE, tmp_path / "b01",
                            date(2026, 11, 24))
    assert [(b.id_bord, b.cancelled_at) for b in store.run_bordereaux(other.run_id)] == [
        (1, None)]
    store.cancel(other.run_id, "wrong budget", despite_payments=True)
    [settled] = store.reinstate(run, "kept by the trésorerie").settled
    assert (settled["invoice"], settled["id_op"], settled["id_bord"]) == (
        "FA-2026-00102", link.id_op, 1)
    store.cancel(run, "wrong amounts after all", despite_payments=True)
    open_ = [(a["kind"], a["invoice"], a["id_op"], a["detail"])
             for a in ledger.list_anomalies(store) if a["resolved_at"] is None]
    assert open_ == [("paid-cancelled", "FA-2026-00102", link.id_op,
                      f"its title, paid 187.50, cancelled (IdBord 1 of run {run}): wrong "
                      "amounts after all")]

def test_a_paid_title_reinstated_before_schema_16_has_its_anomaly_resolved(flow, store,
                                                                         tmp_path,
                                                                         monkeypatch):
    """Migration 16: a store whose paid title was cancelled and then reinstated under
    schema 15 (its paid-cancelled anomaly left open) gets that anomaly resolved (outcome
    reinstated, by migration, an anomaly-resolved event of source migration); the
    anomaly of a paid title still cancelled stays open."""
    import pesgen.store as st
    from pesgen.payfip.tables import anomalies

    run = _split_run(store, tmp_path)  # IdBord 2, 3, 4 (1 was the flow's run)
    first, second = flow.link("FA-2026-00101", mode="W"), flow.link("FA-2026-00105", mode="W")
    flow.link("FA-2026-00102", mode="W")  # another operation of the run, not paid
    flow.pay(first, "card")
    flow.pay(second, "card")
    store.cancel(run, "wrong amounts", [2, 3], despite_payments=True)
    [settled] = store.reinstate(run, "the trésorerie took IdBord 2", [2]).settled
    with store.engine.begin() as conn:  # as a store of schema 15 left it
        conn.execute(anomalies.update().where(anomalies.c.id == settled["anomaly"]).values(
            resolved_at=None, resolved_by=None, note=None, outcome=None))
        # a paid-cancelled anomaly of the same number and another operation (another
        # collectivité's): not this payment's, left open
        other = conn.execute(anomalies.insert().values(
            at="2026-12-01T09:00:00Z", kind="paid-cancelled", id_op="another-op",
            invoice="FA-2026-00101", source="cancel", expected=None, got=None,
            detail="its title, paid 10.00, cancelled (another collectivité)")
        ).inserted_primary_key[0]
        # of this payment's operation: one of another kind open, and one resolved by a
        # person already: neither is the migration's to resolve
        kept = [conn.execute(anomalies.insert().values(
            at="2026-12-01T09:00:00Z", kind=kind, id_op=first.id_op, invoice="FA-2026-00101",
            source="cancel", expected=None, got=None, detail="written here",
            resolved_at=at, resolved_by=by, note=note)).inserted_primary_key[0]
            for kind, at, by, note in [
                ("double-payment", None, None, None),
                ("paid-cancelled", "2026-12-02T09:00:00Z", "bob", "seen")]]
        conn.execute(events.delete().where(events.c.event == "anomaly-resolved"))
        conn.execute(st.schema_table.delete().where(st.schema_table.c.version >= 16))
    store.engine.dispose()
    # migrated again up to 16 (the later ones' columns are there already)
    monkeypatch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:16])
    again = Store(store.url)
    try:
        found = {a["invoice"]: a for a in ledger.list_anomalies(again)
                 if a["id"] not in [other, *kept]}
        assert [(a["resolved_at"], a["resolved_by"]) for a in ledger.list_anomalies(again)
                if a["id"] in kept] == [(None, None), ("2026-12-02T09:00:00Z", "bob")]
        assert (found["FA-2026-00101"]["outcome"], found["FA-2026-00101"]["resolved_by"],
                found["FA-2026-00105"]["resolved_at"]) == ("reinstated", "migration", None)
        assert found["FA-2026-00101"]["resolved_at"] is not None
        [still] = [a for a in ledger.list_anomalies(again) if a["id"] == other]
        assert (still["resolved_at"], still["outcome"]) == (None, None)
        assert found["FA-2026-00101"]["note"] == (
            f"its title (IdBord 2 of run {run}) was reinstated before this pesgen resolved "
            "such anomalies: active again, paid by this payment")
        with again.engine.connect() as conn:
            [event] = conn.execute(sa.select(events).where(
                events.c.event == "anomaly-resolved")).all()
        assert (event.invoice, event.id_op, event.status) == ("FA-2026-00101", first.id_op,
                                                              "paid")
        assert (event.invoice, event.source, json.loads(event.detail)) == (
            "FA-2026-00101", "migration",
            {"anomaly": settled["anomaly"], "kind": "paid-cancelled", "by": "migration",
             "outcome": "reinstated", "run": run})
    finally:
        again.engine.dispose()


@pytest.mark.parametrize("without_op", ["paid-cancelled refunded", "payment applied"])
def test_cancel_lists_the_open_links_whatever_rows_without_an_operation_say(
        store, exported, without_op):
    """`runs cancel` leaves out the operations whose money was refunded or applied to
    this title, read once as lists of operations (``store._online_payments``); a row
    naming none (id_op NULL) is left out of those lists. A NULL in a list makes ``NOT
    IN`` unknown for every operation not in it: the open link went unsaid, and the run
    was cancelled without --despite-payments."""
    id_op = _recorded_link(store, "FA-2026-00104", 1)
    with store.engine.begin() as conn:
        if without_op == "payment applied":
            conn.execute(payments.insert().values(
                id_coll=ID_COLL, invoice="FA-2026-00199", status="paid", amount_cents=100,
                created_at="2026-12-01T10:00:00Z", updated_at="2026-12-01T10:00:00Z",
                last_id_op="0d1a5c3e-0000-4000-8000-999999999999", refdet="FA202600199",
                applied_run=exported.run_id))
        else:
            kind, _, outcome = without_op.partition(" ")
            conn.execute(anomalies.insert().values(
                at="2026-12-01T10:00:00Z", kind=kind, invoice="FA-2026-00199",
                source="cancel", got="100", outcome=outcome or None))
    with pytest.raises(StateError) as info:
        store.cancel(exported.run_id, "wrong amounts")
    [problem] = info.value.problems
    assert problem.invoice == "FA-2026-00104" and f"(operation {id_op}, 66.00, saisie W)" in (
        problem.message), problem.message


def test_two_links_of_a_title_made_in_one_second_are_said_in_operation_order(db_url,
                                                                            tmp_path):
    """`runs cancel` lists a title's PayFiP operations by their time, which is to the
    second, and so does a link's note of the invoice's links still open
    (``ledger.open_operations_of``): two links of FA-2026-00102 made in the same second
    were said in the order the database's plan read them (SQLite: as recorded;
    PostgreSQL: as its plan goes), so the lists could differ from one store to another.
    They are said by operation id then, whatever order they were recorded in."""
    import pesgen.store as st
    from pesgen.payfip.tables import operations

    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "out", date(2026, 11, 23))
    at = "2026-11-24T10:00:00Z"
    with store.engine.begin() as conn:  # the later id recorded first
        conn.execute(operations.insert(), [
            {"id_op": id_op, "id_coll": "21450999400015", "invoice": "FA-2026-00102",
             "run_id": run.run_id, "numcli": "012345", "exer": "2026", "refdet": "R102",
             "amount_cents": 18750, "mel": "famille@example.org", "objet": "FACTURE",
             "saisie": "W", "endpoint": "http://127.0.0.1:9/tpa", "created_at": at,
             "status": "pending"} for id_op in ("op-b", "op-a")])
    assert [o["id_op"] for o in ledger.open_operations_of(
        store, "21450999400015", "FA-2026-00102")] == ["op-a", "op-b"]
    with store.engine.connect() as conn:
        said = [p.message for p in st._online_payments(conn, run.run_id, [1])]
    assert [("op-a" in m, "op-b" in m) for m in said] == [(True, False), (False, True)], said
    with pytest.raises(StateError) as refused:
        store.cancel(run.run_id, "wrong amounts")
    listed = [p.message for p in refused.value.problems if p.rule == "run.cancel-payfip"]
    assert listed == said, listed
