# ruff: noqa: F811 - fixtures imported from other test modules are injected by name
"""`pesgen runs reinstate`: a cancellation undone (a bordereau cancelled by mistake, or
before the trésorerie's acquit came and it kept the titles): the invoices are held again,
under the same numbers; refused, nothing changed, when an active run took them since,
when the trésorerie rejected the bordereau or annulled its titles. On SQLite and on a real
PostgreSQL server (PESGEN_TEST_PG_URL, see test_store)."""

from __future__ import annotations

import json
import shlex
from datetime import date

import pytest
import sqlalchemy as sa

from pesgen.errors import ExitCode, StateError, UsageError
from pesgen.payfip import ledger
from pesgen.payfip.tables import events
from pesgen.runs import export_recorded, regenerate
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, package_store, run_cli
from .payfip_support import exported, fake, flow, receiver, store  # noqa: F401 - fixtures
from .test_ack_cancel import acknowledged  # noqa: F401 - a fixture
from .test_acquit import ACKS
from .test_cancel import BORDEREAUX, active, only, split_mapping, split_run_in_store_left_at

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = EXAMPLES / "school-export.json"
EVERY = sorted(inv for invoices in BORDEREAUX.values() for inv in invoices)


def _split(db_url: str, tmp_path) -> str:
    """The example exported in bordereaux of 4 (IdBord 1-3): its run id."""
    return export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                           tmp_path / "o", RUN).run_id


def _state(store: Store, run: str) -> tuple[str, dict[int, str], dict[int, set[bool]]]:
    """The run's status, its bordereaux cancelled on their own (IdBord -> reason), and
    whether each bordereau's invoices are active."""
    r = store.get_run(run)
    titles: dict[int, set[bool]] = {}
    for t in store.run_titles(run):
        titles.setdefault(t["id_bord"], set()).add(t["active"])
    return (r["status"], {i: c["reason"] for i, c in r["cancelled_bordereaux"].items()},
            titles)


def test_a_cancelled_run_reinstated_holds_its_invoices_again(db_url, tmp_path):
    """Cancelled by mistake: reinstated, the run is committed again, its invoices held
    (a second export of them is refused), its numbers unchanged, and the cancellation
    undone is recorded and shown."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    cancelled = store.cancel(run, "wrong file picked")
    at = store.get_run(run)["cancelled_at"]
    r = run_cli("runs", "reinstate", run[:8], "--reason", "the right file after all",
                "--db", db_url)
    assert r.exit_code == 0, r.output
    assert r.stdout == (f"run {run} reinstated: its 11 invoice(s) are held again (an export "
                        "of them is refused), under the same numbers\n")
    # its files are in its folder: only the acknowledgement is noted
    assert r.stderr == ("note: no acknowledgement recorded for IdBord 1: reinstate only what "
                        f"the trésorerie took (`pesgen acquit FILE --record --db {db_url}` "
                        "records its acknowledgement; FILE: the PES_ACQUIT the trésorerie's "
                        "guichet XML returned for it)\n"), r.stderr
    record = store.get_run(run)
    assert (record["status"], record["cancelled_at"], record["cancel_reason"]) == (
        "committed", None, None)
    assert [(x["id_bord"], x["cancelled_at"], x["cancel_reason"], x["reason"])
            for x in record["reinstatements"]] == [
        (1, at, "wrong file picked", "the right file after all")]
    assert cancelled.invoices == 11 and all(active(store, inv) == [(1, True)] for inv in EVERY)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "b", RUN)
    assert sorted(p.invoice for p in info.value.problems) == EVERY
    # the numbers: the next export takes IdBord 2, 1 is the reinstated run's still
    assert [s.next_number for s in store.sequences()] == [2]
    shown = run_cli("runs", "show", run[:8], "--db", db_url)
    assert shown.exit_code == 0, shown.output
    assert f"run {run} (committed)\n" in shown.stdout
    assert (f"  reinstated  IdBord 1 {record['reinstatements'][0]['reinstated_at']}: the "
            f"right file after all (cancelled {at}: wrong file picked)\n") in shown.stdout
    assert "  cancelled   " not in shown.stdout
    # its files are rebuilt as any committed run's, under their own names
    written = regenerate(store, run, tmp_path / "again")
    assert sorted(w.name for w in written) == sorted(
        f["name"] for f in store.get_run(run)["files"])


def test_one_bordereau_reinstated_the_others_stay_cancelled_each_on_its_own(db_url, tmp_path):
    """A split run cancelled whole (--all), then IdBord 2 reinstated: the run is committed,
    1 and 3 stay cancelled with the run's time and reason; then --all reinstates them."""
    store = Store(db_url)
    run = _split(db_url, tmp_path)
    store.cancel(run, "all three resent", whole=True)
    at = store.get_run(run)["cancelled_at"]
    done = store.reinstate(run, "the trésorerie took IdBord 2", [2])
    assert (done.bordereaux, done.still_cancelled, done.invoices) == ((2,), (1, 3), 4)
    assert done.run.status == "committed" and done.run.cancelled_bordereaux == (1, 3)
    assert _state(store, run) == ("committed", {1: "all three resent", 3: "all three resent"},
                                  {1: {False}, 2: {True}, 3: {False}})
    assert {i: c["cancelled_at"] for i, c in
            store.get_run(run)["cancelled_bordereaux"].items()} == {1: at, 3: at}
    # two cancelled: each named, or --all
    r = run_cli("runs", "reinstate", run, "--reason", "x", "--db", db_url)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert (f"run {run} has 2 cancelled bordereaux; nothing reinstated. Give --bordereau "
            "IDBORD (repeatable) for each one to reinstate") in r.stderr
    assert "  IdBord 3  3 title(s)  " in r.stderr and f"cancelled {at}: all three resent" \
        in r.stderr
    r = run_cli("runs", "reinstate", run, "--all", "--reason", "all taken", "--db", db_url)
    assert r.exit_code == 0, r.output
    assert r.stdout == (f"run {run}: IdBord 1, 3 reinstated: their 7 invoice(s) are held "
                        "again (an export of them is refused), under the same numbers\n")
    # a run of several bordereaux cancelled whole, reinstated whole: said of the run
    store.cancel(run, "all resent again", whole=True)
    r = run_cli("runs", "reinstate", run, "--all", "--reason", "kept", "--db", db_url)
    assert r.exit_code == 0, r.output
    assert r.stdout == (f"run {run} reinstated (IdBord 1, 2, 3): its 11 invoice(s) are held "
                        "again (an export of them is refused), under the same numbers\n")
    assert _state(store, run) == ("committed", {}, {1: {True}, 2: {True}, 3: {True}})
    assert [(x["id_bord"], x["reason"]) for x in store.get_run(run)["reinstatements"]] == [
        (2, "the trésorerie took IdBord 2"), (1, "all taken"), (3, "all taken"),
        (1, "kept"), (2, "kept"), (3, "kept")]


def test_a_bordereau_cancelled_alone_is_reinstated_and_the_run_says_which_stay(db_url,
                                                                                tmp_path):
    store = Store(db_url)
    run = _split(db_url, tmp_path)
    store.cancel(run, "rejected by phone", [2])
    store.cancel(run, "rejected too", [3])
    r = run_cli("runs", "reinstate", run[:8], "--bordereau", "2", "--reason",
                "not rejected after all", "--db", db_url)
    assert r.exit_code == 0, r.output
    assert r.stdout == (f"run {run}: IdBord 2 reinstated: its 4 invoice(s) are held again "
                        "(an export of them is refused), under the same numbers; IdBord 3 "
                        "stays cancelled\n")
    assert _state(store, run) == ("committed", {3: "rejected too"},
                                  {1: {True}, 2: {True}, 3: {False}})
    # the last cancelled one, without naming it
    assert store.reinstate(run, "both kept").bordereaux == (3,)
    assert _state(store, run)[1] == {}


def test_what_is_not_cancelled_or_not_said_is_refused_nothing_changed(db_url, tmp_path):
    store = Store(db_url)
    run = _split(db_url, tmp_path)
    with pytest.raises(StateError, match=f"run {run} is not cancelled, nor any of its "
                       "bordereaux; nothing reinstated"):
        store.reinstate(run, "why")
    store.cancel(run, "rejected", [2])
    with pytest.raises(StateError, match=f"IdBord 1, 3 of run {run} are not cancelled; "
                       "nothing reinstated"):
        store.reinstate(run, "why", [1, 2, 3])
    with pytest.raises(StateError, match=f"run {run} has no bordereau 7; its bordereaux are "
                       "IdBord 1, 2, 3; nothing reinstated"):
        store.reinstate(run, "why", [2, 7])
    with pytest.raises(UsageError, match="a reinstatement needs a reason"):
        store.reinstate(run, "  ", [2])
    with pytest.raises(UsageError, match="not both"):
        store.reinstate(run, "why", [2], whole=True)
    r = run_cli("runs", "reinstate", run, "--bordereau", "1", "--reason", "x", "--db", db_url)
    assert r.exit_code == ExitCode.STATE, r.output
    assert r.stderr == f"error: IdBord 1 of run {run} is not cancelled; nothing reinstated\n"
    assert _state(store, run) == ("committed", {2: "rejected"},
                                  {1: {True}, 2: {False}, 3: {True}})
    assert store.get_run(run)["reinstatements"] == []


def test_invoices_exported_again_since_are_named_and_nothing_is_reinstated(db_url, tmp_path):
    """Two of the cancelled run's invoices went out again in another run: reinstating
    would hold them twice (both titles billed). Refused, each named with its holder; once
    that run is cancelled, the reinstatement goes through."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    store.cancel(run, "wrong amounts")
    again = export_recorded(lambda: store, MAPPING,
                            only(tmp_path, ["FA-2026-00103", "FA-2026-00111"], "two.json"),
                            tmp_path / "b", RUN)
    r = run_cli("runs", "reinstate", run, "--reason", "amounts were right", "--db", db_url)
    assert r.exit_code == ExitCode.STATE, r.output
    assert (f"error: run {run}: IdBord 1 cannot be reinstated; nothing reinstated. 2 of "
            "their invoices were exported again since: both titles would bill them. If the "
            "trésorerie keeps these bordereaux, cancel what holds them now first, if it "
            f"should not have gone out (pesgen runs cancel {again.run_id} --bordereau 2); if "
            "it took both, ask it to annul one of the two titles\n") in r.stderr
    name = again.files[0].path.name
    for invoice in ("FA-2026-00103", "FA-2026-00111"):
        assert (f"  - invoice {invoice}: IdBord 1: exported again since, by run "
                f"{again.run_id} in {name} (IdBord 2), which holds it (rule "
                "run.reinstate-taken)") in r.stderr
    assert r.stderr.count("run.reinstate-taken") == 2
    assert r.stderr.endswith("\n2 problem(s); nothing reinstated.\n"), r.stderr
    assert _state(store, run)[0] == "cancelled"
    assert sorted(active(store, "FA-2026-00103")) == [(1, False), (2, True)]
    store.cancel(again.run_id, "sent by mistake")
    assert store.reinstate(run, "amounts were right").invoices == 11
    assert sorted(active(store, "FA-2026-00103")) == [(1, True), (2, False)]


def test_an_invoice_written_otherwise_or_a_numdette_taken_since_is_named(db_url, tmp_path):
    """The guard's comparisons: an invoice exported again in lower case is the same
    invoice; another invoice whose NumDette (its digits) is one of the run's takes the
    family's payment reference."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    store.cancel(run, "wrong amounts")
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    kept = {"FA-2026-00102": "fa-2026-00102", "FA-2026-00104": "FB-2026-00104"}
    data["invoices"] = [dict(inv, number=kept[inv["number"]]) for inv in data["invoices"]
                        if inv["number"] in kept]
    source = tmp_path / "renamed.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    again = export_recorded(lambda: store, MAPPING, source, tmp_path / "b", RUN)
    name = again.files[0].path.name
    with pytest.raises(StateError) as info:
        store.reinstate(run, "amounts were right")
    assert [(p.rule, p.invoice, p.message) for p in info.value.problems] == [
        ("run.reinstate-taken", "FA-2026-00102", "IdBord 1: exported again since (as "
         f"fa-2026-00102), by run {again.run_id} in {name} (IdBord 2), which holds it"),
        ("run.reinstate-taken", "FA-2026-00104", "IdBord 1: its NumDette 202600104 is held "
         f"by invoice FB-2026-00104 of run {again.run_id} in {name} (IdBord 2)")]
    assert _state(store, run)[0] == "cancelled"
    # the command to cancel what holds them names its bordereau
    r = run_cli("runs", "reinstate", run, "--reason", "x", "--db", db_url)
    assert (f"(pesgen runs cancel {again.run_id} --bordereau 2)") in r.stderr, r.stderr


def test_a_rejected_or_annulled_bordereau_is_not_reinstated_an_unanswered_one_is(
        acknowledged):
    """IdBord 1 accepted then annulled by the trésorerie, 2 rejected: their titles are
    not at the trésorerie, reinstating them would hold invoices no title bills. Both
    refused in one go; 3 (no acknowledgement) is reinstated with a note."""
    db_url, run = acknowledged
    store = Store(db_url)
    store.cancel(run, "titres annulés", [1], annulled_by_tresorerie=True)
    store.cancel(run, "rejected", [2])
    store.cancel(run, "sent twice?", [3])
    r = run_cli("runs", "reinstate", run, "--all", "--reason", "x", "--db", db_url)
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"error: run {run}: IdBord 1, 2, 3 cannot be reinstated; nothing reinstated" \
        in r.stderr
    assert ("  - IdBord 1 was cancelled confirming the trésorerie's annulment of its titles "
            in r.stderr)
    assert "they no longer exist at the trésorerie (rule run.reinstate-annulled)" in r.stderr
    assert "  - ack.xml:" in r.stderr and (
        ": IdBord 2 rejected on 2026-11-24 with 1 error(s) by the trésorerie (recorded ") \
        in r.stderr
    assert "from ack.xml): its titles do not exist at the trésorerie (rule " \
        "run.reinstate-rejected)" in r.stderr
    assert _state(store, run)[0] == "cancelled"
    with pytest.raises(StateError) as info:
        store.reinstate(run, "x", [1, 2])
    assert [p.rule for p in info.value.problems] == ["run.reinstate-annulled",
                                                     "run.reinstate-rejected"]
    r = run_cli("runs", "reinstate", run, "--bordereau", "3", "--reason", "not sent twice",
                "--db", db_url)
    assert r.exit_code == 0, r.output
    assert "note: no acknowledgement recorded for IdBord 3" in r.stderr
    assert _state(store, run)[2] == {1: {False}, 2: {False}, 3: {True}}


def test_an_acceptance_of_a_cancelled_bordereau_is_settled_by_its_reinstatement(db_url,
                                                                                tmp_path):
    """Cancelled before the acquit came, which accepted it: the acquit says to reinstate
    it if the trésorerie keeps the titles; done, the acquit is all fine (exit 0) and the
    invoices cannot go out twice."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    store.cancel(run, "rejected by phone")
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record")
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    step = (f"`pesgen runs reinstate {run} --db {shlex.quote(db_url)} --bordereau 1 "
            "--reason TEXT`")
    assert step in r.stdout
    r = run_cli(*shlex.split(step.strip("`").replace("TEXT", "'the trésorerie kept them'"))[1:])
    assert r.exit_code == 0, r.output
    assert "no acknowledgement recorded" not in r.stderr  # the acquit is recorded
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url)
    assert r.exit_code == 0, r.output
    with pytest.raises(StateError):
        export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "b", RUN)


def test_a_reinstated_run_s_files_not_in_its_folder_are_said(db_url, tmp_path):
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN)
    store.cancel(run.run_id, "wrong amounts")
    for path in [f.path for f in run.files] + run.references:
        path.unlink()
    r = run_cli("runs", "reinstate", run.run_id, "--reason", "kept", "--db", db_url)
    assert r.exit_code == 0, r.output
    assert (f"note: Run {run.run_id}'s recorded file(s) {run.files[0].path.name}") in r.stderr
    assert f"`pesgen regenerate {run.run_id} --out DIR` rebuilds them" in r.stderr


def test_the_files_said_missing_after_a_reinstatement_are_the_reinstated_ones(db_url,
                                                                            tmp_path):
    """A split run whose files were all sent and moved away, IdBord 2 cancelled and then
    reinstated: the note names IdBord 2's files only, not those of 1 and 3, which were
    never cancelled (their absence says nothing of this reinstatement)."""
    store = Store(db_url)
    run = _split(db_url, tmp_path)
    out = tmp_path / "o"
    names = sorted(p.name for p in out.iterdir())
    for path in out.iterdir():
        path.unlink()
    store.cancel(run, "wrong amounts", bordereaux=[2])
    r = run_cli("runs", "reinstate", run, "--bordereau", "2", "--reason", "kept",
                "--db", db_url)
    assert r.exit_code == 0, r.output
    [note] = [ln for ln in r.stderr.splitlines() if ln.startswith("note: Run ")]
    said = note.split("recorded file(s) ", 1)[1].split(" are not in ", 1)[0].split(", ")
    assert sorted(said) == [n for n in names if "_0000002." in n] and len(said) == 2, said


def test_store_copy_keeps_the_reinstatements(db_url, tmp_path):
    from pesgen.store import copy_store

    source = Store(f"sqlite:///{tmp_path / 'source.sqlite3'}")
    run = export_recorded(lambda: source, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    source.cancel(run, "mistake")
    source.reinstate(run, "undone")
    counts = copy_store(source.url, db_url)
    assert counts["reinstatements"] == 1
    target = Store(db_url)
    assert [x["reason"] for x in target.get_run(run)["reinstatements"]] == ["undone"]
    assert target.get_run(run)["status"] == "committed"


def test_a_schema_12_store_is_migrated_and_reinstates(db_url, tmp_path, monkeypatch):
    """A store pesgen left at schema 12 opens with the current code (migration 13), and
    a bordereau cancelled in it is reinstated."""
    store, run = split_run_in_store_left_at(12, "reinstatements", db_url, tmp_path,
                                            monkeypatch)
    store.cancel(run.run_id, "rejected", [3])
    assert store.reinstate(run.run_id, "kept").bordereaux == (3,)
    assert _state(store, run.run_id)[2] == {1: {True}, 2: {True}, 3: {True}}


def test_a_title_reinstated_is_paid_online_as_any_and_its_history_says_both(flow, store):
    """A link open when the run was cancelled (--despite-payments), paid once the run is
    reinstated: a payment of its title, no anomaly; the payments' history has the
    cancellation and the reinstatement."""
    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00104").run_id
    link = flow.link("FA-2026-00104", mode="W", mel="famille@example.org")
    store.cancel(run, "wrong amounts", despite_payments=True)
    assert ledger.payment_of(store, "21450999400015", "FA-2026-00104")["status"] != "paid"
    store.reinstate(run, "amounts were right")
    assert ledger.invoice_due(store, "21450999400015", "FA-2026-00104").run_id == run
    flow.pay(link, "card")
    assert ledger.payment_of(store, "21450999400015", "FA-2026-00104")["status"] == "paid"
    assert ledger.list_anomalies(store) == []
    with store.engine.connect() as conn:
        noted = conn.execute(sa.select(events.c.event, events.c.source, events.c.detail,
                                       events.c.id_op)
                             .where(events.c.invoice == "FA-2026-00104",
                                    events.c.event.like("title-%"))
                             .order_by(events.c.id)).all()
    assert [(n.event, n.source, json.loads(n.detail)) for n in noted] == [
        ("title-cancelled", "cancel", {"run": run, "reason": "wrong amounts"}),
        ("title-reinstated", "reinstate", {"run": run, "reason": "amounts were right"})]
    # the operation open when both happened (nothing paid it yet)
    assert [n.id_op for n in noted] == [link.id_op, link.id_op]


def test_the_unique_indexes_back_the_check_of_what_was_exported_again(db_url, tmp_path,
                                                                      monkeypatch):
    """Should the check of what active runs hold miss an invoice (or, on PostgreSQL, an
    export record it between the check and the update), the store's unique index refuses
    the reinstatement: said, nothing reinstated, the holder untouched."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    store.cancel(run, "wrong amounts")
    again = export_recorded(lambda: store, MAPPING, only(tmp_path, ["FA-2026-00103"], "one.json"),
                            tmp_path / "b", RUN)
    monkeypatch.setattr(Store, "_taken_since", lambda *a: ([], {}))
    with pytest.raises(StateError, match=f"run {run}: the store refused to reinstate IdBord 1: "
                       r".*; nothing reinstated") as info:
        store.reinstate(run, "amounts were right")
    assert info.value.exit_code == ExitCode.STATE
    assert _state(store, run)[0] == "cancelled"
    assert sorted(active(store, "FA-2026-00103")) == [(1, False), (2, True)]
    assert store.get_run(run)["reinstatements"] == []
    assert [r.id for r in store.list_runs() if r.status == "committed"] == [again.run_id]


@pytest.mark.parametrize("command", ["cancel", "reinstate"])
def test_on_postgresql_both_wait_for_an_acknowledgement_being_recorded(db_url, tmp_path,
                                                                      command):
    """`acquit --record` holds the acknowledgements' lock while it records: a
    cancellation or a reinstatement, which decide on the Hélios status, waits for it (a
    rejection recorded meanwhile is then seen), and goes on once it is let go."""
    import threading

    from pesgen.store import lock_acknowledgements

    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's advisory lock (SQLite: one writer at a time)")
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    if command == "reinstate":
        store.cancel(run, "by mistake")
    before = store.get_run(run)["status"]
    done: list[object] = []
    with store.engine.connect() as holder:
        holder.begin()
        lock_acknowledgements(holder)
        worker = threading.Thread(
            target=lambda: done.append(getattr(Store(db_url), command)(run, "why")))
        worker.start()
        worker.join(3)
        assert worker.is_alive() and not done
        assert store.get_run(run)["status"] == before
        holder.rollback()
    worker.join(30)
    assert not worker.is_alive() and len(done) == 1
    assert store.get_run(run)["status"] != before


def test_a_run_cancelled_in_two_steps_keeps_each_step_s_date_and_reason(db_url, tmp_path):
    """IdBord 2 cancelled alone, then 1 and 3 (the run cancelled): reinstating 1 leaves 2
    cancelled with its own reason and 3 with the run's; reinstating 2 then leaves 3."""
    store = Store(db_url)
    run = _split(db_url, tmp_path)
    store.cancel(run, "IdBord 2 rejected", [2])
    store.cancel(run, "the rest resent", [1, 3])
    assert _state(store, run)[:2] == ("cancelled", {2: "IdBord 2 rejected"})
    store.reinstate(run, "IdBord 1 kept", [1])
    assert _state(store, run) == ("committed", {2: "IdBord 2 rejected", 3: "the rest resent"},
                                  {1: {True}, 2: {False}, 3: {False}})
    store.reinstate(run, "IdBord 2 kept", [2])
    assert _state(store, run) == ("committed", {3: "the rest resent"},
                                  {1: {True}, 2: {True}, 3: {False}})
    assert [(x["id_bord"], x["cancel_reason"]) for x in store.get_run(run)["reinstatements"]] \
        == [(1, "the rest resent"), (2, "IdBord 2 rejected")]


def test_a_finance_package_run_is_reinstated_without_acknowledgement_note(tmp_path):
    """A finance package sends its own PES: no Hélios acknowledgement is asked for."""
    db = package_store(tmp_path)
    [run] = Store(f"sqlite:///{db}").list_runs()
    assert run_cli("runs", "cancel", run.id, "--reason", "again", "--db", db).exit_code == 0
    r = run_cli("runs", "reinstate", run.id, "--reason", "imported after all", "--db", db)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"run {run.id} reinstated: its 11 invoice(s) are held again")
    assert r.stderr == ""


def test_a_run_of_two_bordereaux_reinstated_whole_names_both(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    six = only(tmp_path, EVERY[:6], "six.json")
    run = export_recorded(lambda: Store(db), split_mapping(tmp_path), six, tmp_path / "o",
                          RUN).run_id
    Store(db).cancel(run, "resent", whole=True)
    r = run_cli("runs", "reinstate", run, "--all", "--reason", "kept", "--db", db)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"run {run} reinstated (IdBord 1, 2): its 6 invoice(s) are "
                               "held again"), r.stdout


def test_invoices_held_by_two_bordereaux_since_name_both_in_the_command(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    store.cancel(run, "wrong amounts")
    again = export_recorded(lambda: store, split_mapping(tmp_path),
                            only(tmp_path, EVERY[:6], "six.json"), tmp_path / "b", RUN)
    assert [f.bordereau for f in again.files] == [2, 3]
    r = run_cli("runs", "reinstate", run, "--reason", "x", "--db", db)
    assert r.exit_code == ExitCode.STATE, r.output
    assert (f". 6 of their invoices were exported again since: both titles would bill them. "
            "If the trésorerie keeps these bordereaux, cancel what holds them now first, if it "
            f"should not have gone out (pesgen runs cancel {again.run_id} --bordereau 2 "
            "--bordereau 3); if it took both") in r.stderr, r.stderr


def test_an_acceptance_of_a_cancelled_bordereau_whose_invoices_went_out_again_says_so(
        db_url, tmp_path):
    """Cancelled before the acquit came, two of its invoices exported again since, then
    the acquit accepts it: the trésorerie may bill those twice. The acquit says so, with
    the holder, and what to do (cancel it, if not sent, then reinstate); done, all fine."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    store.cancel(run, "rejected by phone")
    again = export_recorded(lambda: store, MAPPING,
                            only(tmp_path, ["FA-2026-00103", "FA-2026-00111"], "two.json"),
                            tmp_path / "b", RUN).run_id
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--json")
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    (check,) = json.loads(r.stdout)["to_check"]
    assert check["reasons"] == ["accepted-cancelled"]
    assert check["said"].endswith(f"; 2 of its invoices were exported again since, by run "
                                  f"{again} (IdBord 2): the trésorerie may bill them twice")
    db = shlex.quote(db_url)
    assert check["next_step"].endswith(
        f"if it keeps them, cancel what holds their invoices now, if it was not sent "
        f"(`pesgen runs cancel {again} --db {db} --bordereau 2 --reason TEXT`), then "
        "reinstate them, so that none of their invoices is exported again: `pesgen runs "
        f"reinstate {run} --db {db} --bordereau 1 --reason TEXT`; if it took both, it annuls "
        "one of the two titles"), check["next_step"]
    # done as said: nothing left to check
    assert run_cli("runs", "cancel", again, "--reason", "not sent", "--db",
                   db_url).exit_code == 0
    assert run_cli("runs", "reinstate", run, "--bordereau", "1", "--reason", "kept", "--db",
                   db_url).exit_code == 0
    assert run_cli("acquit", ACKS / "accepted.xml", "--db", db_url).exit_code == 0
