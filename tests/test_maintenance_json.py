"""The run-maintenance commands with `--format json`: `regenerate`, `runs cancel`, `runs
reinstate`, `runs extract`, `numbering show` (and `set-start`, `move`): what their text
says on standard output and standard error, each fact a field of one JSON document on
standard output, for support's and CI's scripts; a refusal gives `ok` false, the error
and its problems, and the exit code the text output has."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

from pesgen.errors import ExitCode
from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, run_cli
from .payfip_support import exported, fake, flow, receiver, store  # noqa: F401 - fixtures
from .test_cancel import only, split_mapping

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = EXAMPLES / "school-export.json"


def _json(*args) -> tuple[int, dict]:
    """The command's exit code and its JSON report: standard error says nothing."""
    r = run_cli(*args, "--format", "json")
    assert r.stderr == "", r.stderr
    return r.exit_code, json.loads(r.stdout)


def _refused(report: dict, code: int, starts: str) -> None:
    """A refusal's head: not ok, its exit code, the error's message."""
    assert report["ok"] is False and report["exit_code"] == code, report
    assert report["error"].startswith(starts), report["error"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _split_run(db_url: str, tmp_path: Path):
    """A run of three bordereaux (IdBord 1-3, 4 titles at most each), its bordereau 2
    cancelled."""
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "out", RUN)
    assert run_cli("runs", "cancel", run.run_id, "--bordereau", "2", "--reason", "rejected",
                   "--db", db_url).exit_code == 0
    return run


# ------------------------------------------------------------------ regenerate


def test_regenerate_gives_the_files_written_and_those_of_a_cancelled_bordereau_not(
        db_url, tmp_path):
    run = _split_run(db_url, tmp_path)
    regen = tmp_path / "regen"
    code, report = _json("regenerate", run.run_id[:8], "--out", regen, "--db", db_url)
    assert code == 0 and report["ok"] and report["error"] is None
    assert (report["run"], report["status"], report["out_dir"], report["identical"]) == (
        run.run_id, "committed", str(regen), True)
    written = {Path(f["path"]).name: f for f in report["files"]}
    assert sorted(written) == sorted(p.name for p in regen.iterdir())
    assert sorted(f["id_bord"] for f in report["files"] if f["id_bord"]) == [1, 3]
    for name, f in written.items():
        assert (f["name"], f["sha256"], f["cancelled"]) == (
            name, _sha256(tmp_path / "out" / name), False)
    assert sorted(f["id_bord"] for f in report["not_written"]) == [2, 2]  # XML and CSV
    assert all("0000002" in f["name"] for f in report["not_written"])
    [gone] = report["cancelled_bordereaux"]
    assert (gone["id_bord"], gone["reason"]) == (2, "rejected") and gone["cancelled_at"]
    assert report["exported_again"] is None
    assert report["waived_checks"] == [] and report["left_by_others"] == []
    # the text says the same of the same run
    text = run_cli("regenerate", run.run_id, "--out", tmp_path / "text", "--db", db_url)
    assert text.exit_code == 0
    assert sum(ln.startswith("not written: ") for ln in text.stdout.splitlines()) == 2

    # with --cancelled: the cancelled bordereau's files as CANCELLED-<name>, and how many
    # of its invoices an active run holds now
    code, report = _json("regenerate", run.run_id, "--out", tmp_path / "all", "--cancelled",
                         "--db", db_url)
    assert code == 0 and report["not_written"] == []
    cancelled = [f for f in report["files"] if f["cancelled"]]
    assert len(cancelled) == 2
    for f in cancelled:
        assert Path(f["path"]).name == "CANCELLED-" + f["name"]
        assert f["sha256"] == _sha256(Path(f["path"])) == _sha256(tmp_path / "out" / f["name"])
    assert report["exported_again"] == {"count": 0, "runs": []}


def test_regenerate_of_a_cancelled_run_gives_what_went_out_again_since(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    assert run_cli("runs", "cancel", run.run_id, "--reason", "rejected", "--db",
                   db_url).exit_code == 0
    # refused without --cancelled, as the text is: exit 7, the problem, nothing written
    code, report = _json("regenerate", run.run_id, "--out", tmp_path / "r1", "--db", db_url)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, f"run {run.run_id} was cancelled on ")
    assert [p["rule"] for p in report["problems"]] == ["run.cancelled"]
    assert report["waived_checks"] == [] and not (tmp_path / "r1").exists()

    again = export_recorded(lambda: Store(db_url), MAPPING,
                            only(tmp_path, ["FA-2026-00101", "FA-2026-00103"], "two.json"),
                            tmp_path / "again", RUN)
    code, report = _json("regenerate", run.run_id, "--out", tmp_path / "r2", "--cancelled",
                         "--db", db_url)
    assert code == 0 and report["status"] == "cancelled"
    assert all(f["cancelled"] for f in report["files"]) and len(report["files"]) == 2
    assert [b["id_bord"] for b in report["cancelled_bordereaux"]] == [1]
    assert report["cancelled_bordereaux"][0]["reason"] == "rejected"
    assert report["exported_again"] == {"count": 2, "runs": [{"run": again.run_id,
                                                              "id_bords": [2]}]}


def test_regenerate_refusals_are_json_with_the_text_s_exit_code(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    # a folder holding the run's files
    code, report = _json("regenerate", run.run_id, "--out", tmp_path / "out", "--db", db_url)
    assert code == ExitCode.USAGE
    _refused(report, ExitCode.USAGE, f"{tmp_path / 'out'} already holds 2 of the 2 file(s)")
    assert report["problems"] == []
    # an unknown run, a prefix too short
    code, report = _json("regenerate", "0000ffff", "--out", tmp_path / "r", "--db", db_url)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, "no run 0000ffff in the store ")
    code, report = _json("regenerate", "ab", "--out", tmp_path / "r", "--db", db_url)
    _refused(report, ExitCode.STATE, "'ab' is not a run id")
    assert not (tmp_path / "r").exists()


def test_regenerate_gives_the_checks_of_the_recorded_mapping_it_waived(tmp_path, monkeypatch):
    from .test_regenerate_checks import (
        _mapping,
        _recorded_otherwise,
        _recorded_unchecked,
        _todo_unchecked,
    )

    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml", (
        "budget_label: COMMUNE DE VILLENEUVE SUR LOING", "budget_label: TODO"))
    run_id = _recorded_unchecked(monkeypatch, _todo_unchecked, mapping, tmp_path / "out")
    code, report = _json("regenerate", run_id, "--out", tmp_path / "regen")
    assert code == 0 and report["identical"] is True
    [waived] = report["waived_checks"]
    assert (waived["rule"], waived["file"], waived["key"]) == (
        "mapping.todo", str(mapping), "collectivity.budget_label")
    # the rebuild refused after them (by the recorded bundle): said with the refusal
    text = (MAPPINGS.parent / "templates" / "pes-ormc" / "format.yaml").read_text(
        encoding="utf-8")
    _recorded_otherwise(run_id, bundle={"format.yaml": text + "retired_key: 1\n"})
    code, report = _json("regenerate", run_id, "--out", tmp_path / "again")
    assert code == ExitCode.MAPPING
    _refused(report, ExitCode.MAPPING, f"run {run_id}, rebuilt from what it recorded ")
    assert [w["rule"] for w in report["waived_checks"]] == ["mapping.todo"]
    assert not (tmp_path / "again").exists()


# ------------------------------------------------------------------ runs cancel


def test_runs_cancel_gives_the_bordereaux_invoices_and_what_is_left_to_do(db_url, tmp_path):
    from .test_already_exported import TERM2, _leaving, _term2
    from .test_cancel import BORDEREAUX

    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "out", RUN)
    # a later run that left out the example's invoices as exported already
    later = export_recorded(lambda: Store(db_url), _leaving(tmp_path), _term2(tmp_path),
                            tmp_path / "later", TERM2)
    # the Datamatrix `payfip datamatrix` drew beside the bordereau's file
    from pesgen.payfip.datamatrix import IMAGES_SUFFIX

    drawn = "PESORMC_21450999400015_2026_0000002" + IMAGES_SUFFIX
    (tmp_path / "out" / drawn).mkdir()
    code, report = _json("runs", "cancel", run.run_id[:8], "--bordereau", "2", "--reason",
                         " rejected ", "--db", db_url)
    assert code == 0 and report["ok"] and report["error"] is None
    assert (report["run"], report["status"], report["bordereaux"], report["run_cancelled"],
            report["still_active"], report["confirmed"], report["reason"]) == (
        run.run_id, "committed", [2], False, [1, 3], False, "rejected")
    assert (report["invoices"], report["freed"], report["held"]) == (4, 4, [])
    # a PES run: no acknowledgement recorded for it, to check
    assert report["no_acknowledgement"] == [2]
    assert report["left_out_as_held"] == [{"run": later.run_id, "invoices": BORDEREAUX[2]}]
    assert report["left_out_as_held_error"] is None and report["payments"] == []
    # its XML and references CSV, still in the run's folder: not to send
    names = ["PESORMC_21450999400015_2026_0000002.xml",
             "PESORMC_21450999400015_2026_0000002.references.csv"]  # as recorded
    assert report["still_in_place"] == {"folder": str(tmp_path / "out"), "files": names,
                                        "datamatrix": [drawn + "/"]}

    # the other two: the run is cancelled; nothing left in place, nothing left out since
    shutil.rmtree(tmp_path / "out")
    code, report = _json("runs", "cancel", run.run_id, "--all", "--reason", "all of it",
                         "--db", db_url)
    assert code == 0
    assert (report["status"], report["bordereaux"], report["run_cancelled"],
            report["still_active"], report["invoices"]) == ("cancelled", [1, 3], True, [], 7)
    assert report["still_in_place"] == {"folder": None, "files": [], "datamatrix": []}


def test_runs_cancel_gives_the_next_step_its_text_prints(db_url, tmp_path):
    """`runs cancel --format json` gave no next step where its text prints `next:`
    (sup64): a script had to rebuild the export to run again. ``next_step`` is that
    line's command, runnable as given: with bordereaux still active, the listing of the
    invoices to export again; the run cancelled, the export of the right file (its dry
    run, run as printed, takes them); null for an annulment confirmed, as the text says
    none."""
    import shlex

    from .test_acquit_record import _ack, _element

    run = _split_run(db_url, tmp_path).run_id  # IdBord 2 cancelled
    code, report = _json("runs", "cancel", run, "--bordereau", "3", "--reason", "rejected",
                         "--db", db_url)
    assert code == 0 and report["still_active"] == [1], report
    listing = f"pesgen runs show {run} --invoices --db {shlex.quote(db_url)}"
    assert report["next_step"] == (
        f"export again only the invoices of IdBord 3 (`{listing}` lists them); an export "
        "of the school's whole file is refused for the invoices IdBord 1 still holds, "
        "unless the mapping's policies.already_exported: leave_out leaves them out "
        "(docs/state.md, A rejected bordereau)"), report["next_step"]
    listed = run_cli(*shlex.split(listing)[1:])
    assert listed.exit_code == 0 and "FA-2026-" in listed.stdout, listed.output
    code, report = _json("runs", "cancel", run, "--bordereau", "1", "--reason", "wrong term",
                         "--db", db_url)
    assert code == 0 and report["run_cancelled"] is True, report
    step = report["next_step"]
    assert step.startswith("correct the input (or take the right file), then check it with "
                           "`pesgen export --mapping "), step
    assert "; the invoices of IdBord 2 (on " in step, step  # cancelled first, goes too
    dry = shlex.split(step.split("`")[1])
    assert dry[:2] == ["pesgen", "export"] and dry[-1] == "--dry-run", dry
    assert dry[dry.index("--db") + 1] == db_url, dry
    checked = run_cli(*dry[1:], "--date", RUN.isoformat())  # the tests' today is 2099's
    assert checked.exit_code == 0 and "IdBord 4" in checked.stdout, checked.output
    # IdBord 1's annulment by the trésorerie, confirmed: the text prints no next step
    ack = _ack(tmp_path, "ack.xml", _element(1, True))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 10
    code, report = _json("runs", "cancel", run, "--bordereau", "1", "--annulled-by-tresorerie",
                         "--reason", "titres annulés", "--db", db_url)
    assert code == 0 and report["confirmed"] is True and report["next_step"] is None, report


def test_runs_cancel_refusals_are_json_with_the_text_s_exit_code(db_url, tmp_path,
                                                                 monkeypatch):
    import pesgen.runs

    # two runs whose ids start alike
    ids = iter(["abcd0000-0000-4000-8000-000000000001", "abcd0000-0000-4000-8000-000000000002"])
    monkeypatch.setattr(pesgen.runs, "new_run_id", lambda: next(ids))
    one = export_recorded(lambda: Store(db_url), MAPPING,
                          only(tmp_path, ["FA-2026-00101"], "one.json"), tmp_path / "a", RUN)
    export_recorded(lambda: Store(db_url), MAPPING,
                    only(tmp_path, ["FA-2026-00102"], "two.json"), tmp_path / "b", RUN)
    monkeypatch.undo()
    # an ambiguous prefix, an unknown run
    code, report = _json("runs", "cancel", "abcd0000", "--reason", "x", "--db", db_url)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, "run id prefix abcd0000 is ambiguous")
    assert report["problems"] == []
    code, report = _json("runs", "cancel", "ffff0000", "--reason", "x", "--db", db_url)
    _refused(report, ExitCode.STATE, "no run ffff0000 in the store ")
    # a run cancelled already
    assert run_cli("runs", "cancel", one.run_id, "--reason", "x", "--db", db_url).exit_code == 0
    code, report = _json("runs", "cancel", one.run_id, "--reason", "again", "--db", db_url)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, f"run {one.run_id} is already cancelled (x)")

    # a run of several bordereaux, without --bordereau nor --all: usage, exit 2
    numbers = [inv["number"] for inv in json.loads(EXAMPLE.read_text(encoding="utf-8"))[
        "invoices"] if inv["number"] not in ("FA-2026-00101", "FA-2026-00102")]
    split = export_recorded(lambda: Store(db_url), split_mapping(tmp_path),
                            only(tmp_path, numbers, "rest.json"), tmp_path / "c", RUN)
    code, report = _json("runs", "cancel", split.run_id, "--reason", "x", "--db", db_url)
    assert code == ExitCode.USAGE
    _refused(report, ExitCode.USAGE, f"run {split.run_id} has 3 active bordereaux; nothing "
             "cancelled")


def test_a_bordereau_the_run_does_not_have_is_the_store_s_refusal_exit_7(db_url, tmp_path):
    """`runs cancel` and `runs reinstate --bordereau N` of an IdBord the run does not hold:
    exit 7, as a run the store does not hold, naming the run and its IdBords; in text and
    in JSON, nothing changed."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    said = f"run {run} has no bordereau 2; its bordereaux are IdBord 1; nothing cancelled"
    r = run_cli("runs", "cancel", run, "--bordereau", "2", "--reason", "x", "--db", db_url)
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"error: {said}" in r.stderr
    code, report = _json("runs", "cancel", run, "--bordereau", "2", "--reason", "x", "--db",
                         db_url)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, said)
    assert Store(db_url).get_run(run)["status"] == "committed"
    # cancelled, then reinstated by a bordereau it does not have
    assert run_cli("runs", "cancel", run, "--reason", "x", "--db", db_url).exit_code == 0
    r = run_cli("runs", "reinstate", run, "--bordereau", "2", "--reason", "x", "--db", db_url)
    assert r.exit_code == ExitCode.STATE, r.output
    assert (f"error: run {run} has no bordereau 2; its bordereaux are IdBord 1; nothing "
            "reinstated") in r.stderr
    assert Store(db_url).get_run(run)["status"] == "cancelled"


def test_runs_cancel_gives_the_tresorerie_s_answers_and_its_annulment_confirmed(
        db_url, tmp_path):
    from .test_acquit_record import _ack, _element

    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "o", RUN).run_id
    # IdBord 1 cancelled before the acquit came, which accepted it; IdBord 2 rejected
    assert run_cli("runs", "cancel", run, "--bordereau", "1", "--reason", "early", "--db",
                   db_url).exit_code == 0
    ack = _ack(tmp_path, "ack.xml", _element(1, True), _element(2, False, "ERREUR_AUTRE"),
               _element(3, True))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 9
    code, report = _json("runs", "cancel", run, "--bordereau", "2", "--reason", "rejected",
                         "--db", db_url)
    assert code == 0 and report["no_acknowledgement"] == []  # its rejection is recorded
    # an accepted one: refused, exit 7, its acceptance the problem
    code, report = _json("runs", "cancel", run, "--bordereau", "3", "--reason", "x",
                         "--db", db_url)
    assert code == ExitCode.STATE and report["ok"] is False
    assert report["problems"] and all("IdBord 3" in p["message"] for p in report["problems"])
    # the annulment confirmed of the one cancelled before: recorded, nothing else changed
    code, report = _json("runs", "cancel", run, "--bordereau", "1", "--annulled-by-tresorerie",
                         "--reason", "titres annulés", "--db", db_url)
    assert code == 0
    assert (report["confirmed"], report["bordereaux"], report["invoices"], report["freed"],
            report["still_active"], report["status"]) == (True, [1], 0, 0, [3], "committed")
    assert report["reason"] == ("early (confirmed " + report["reason"].split("(confirmed ")[1])
    assert "titres annulés" in report["reason"]
    assert "IdBord 1 accepted on 2026-11-24 (ack.xml)" in report["reason"]
    # the rest read as for any cancellation: its acceptance recorded, its files still there
    assert report["no_acknowledgement"] == [] and report["left_out_as_held"] == []
    assert report["still_in_place"] == {"folder": str(tmp_path / "o"), "files": [
        "PESORMC_21450999400015_2026_0000001.xml",
        "PESORMC_21450999400015_2026_0000001.references.csv"], "datamatrix": []}


def test_runs_cancel_notes_it_could_not_read_the_runs_that_left_out_its_invoices(
        tmp_path, monkeypatch):
    from pesgen.errors import StateError

    db = f"sqlite:///{tmp_path / 's.db'}"
    run = export_recorded(lambda: Store(db), MAPPING, EXAMPLE, tmp_path / "a", RUN)

    def unreadable(self, run_id, id_bords):
        raise StateError("the state store is locked")

    monkeypatch.setattr(Store, "left_out_as_held", unreadable)
    code, report = _json("runs", "cancel", run.run_id, "--reason", "x", "--db", db)
    assert code == 0 and report["status"] == "cancelled"
    assert report["left_out_as_held"] is None
    assert report["left_out_as_held_error"] == "the state store is locked"


def test_runs_cancel_gives_the_invoices_another_active_run_still_holds(db_url, tmp_path,
                                                                       monkeypatch):
    from .test_store import _shared_key_store

    _store, (first, second) = _shared_key_store(db_url, tmp_path, monkeypatch)
    code, report = _json("runs", "cancel", first.run_id, "--reason", "rejected", "--db", db_url)
    assert code == 0 and (report["invoices"], report["freed"]) == (11, 9)
    assert report["held"] == [{"run": second.run_id, "invoices": [
        {"invoice": "FA-2026-00101", "held_as": "fa-2026-00101"},
        {"invoice": "FA-2026-00104", "held_as": "fa-2026-00104"}]}]


def test_runs_cancel_gives_the_payfip_payments_it_cancelled_despite(flow, store):  # noqa: F811
    from pesgen.payfip import ledger

    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    flow.pay(flow.link("FA-2026-00102", mode="W"), "card")
    code, report = _json("runs", "cancel", run, "--reason", "x", "--db", store.url)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, f"run {run}: 1 invoice(s) of IdBord 1 have PayFiP "
             "payments, made or pending; nothing cancelled.")
    assert [(p["rule"], p["invoice"]) for p in report["problems"]] == [
        (report["problems"][0]["rule"], "FA-2026-00102")]
    code, report = _json("runs", "cancel", run, "--reason", "x", "--despite-payments",
                         "--db", store.url)
    assert code == 0 and report["status"] == "cancelled"
    [paid] = report["payments"]
    assert paid["invoice"] == "FA-2026-00102"
    assert paid["message"].startswith("IdBord 1: paid online 187.50 by card on "), paid


# ------------------------------------------------------------------ runs reinstate


def test_runs_reinstate_gives_the_bordereaux_held_again_and_the_files_not_in_place(
        db_url, tmp_path):
    run = _split_run(db_url, tmp_path)
    assert run_cli("runs", "cancel", run.run_id, "--bordereau", "3", "--reason", "too",
                   "--db", db_url).exit_code == 0
    names = ["PESORMC_21450999400015_2026_0000002.xml",
             "PESORMC_21450999400015_2026_0000002.references.csv"]  # as recorded
    for name in names:
        (tmp_path / "out" / name).unlink()
    code, report = _json("runs", "reinstate", run.run_id[:8], "--bordereau", "2", "--reason",
                         "by mistake", "--db", db_url)
    assert code == 0 and report["ok"] and report["error"] is None
    assert (report["run"], report["status"], report["bordereaux"], report["run_reinstated"],
            report["still_cancelled"], report["invoices"]) == (
        run.run_id, "committed", [2], False, [3], 4)
    assert report["no_acknowledgement"] == [2]
    assert report["not_in_place"] == {"folder": str(tmp_path / "out"), "files": names}
    # the last one: the run is whole again, its files in place
    code, report = _json("runs", "reinstate", run.run_id, "--reason", "by mistake", "--db",
                         db_url)
    assert code == 0
    assert (report["bordereaux"], report["run_reinstated"], report["still_cancelled"],
            report["invoices"]) == ([3], False, [], 3)
    assert report["not_in_place"] == {"folder": None, "files": []}


def test_runs_reinstate_of_one_bordereau_of_a_cancelled_run_is_no_run_reinstated(
        db_url, tmp_path):
    """A run cancelled whole (--all after its bordereau 2), one bordereau of it
    reinstated: run_reinstated is false, the others still cancelled."""
    run = _split_run(db_url, tmp_path)
    assert run_cli("runs", "cancel", run.run_id, "--all", "--reason", "all of it",
                   "--db", db_url).exit_code == 0
    # the text says the same: that bordereau reinstated, not the run
    text = run_cli("runs", "reinstate", run.run_id, "--bordereau", "1", "--reason",
                   "by mistake", "--db", db_url)
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith(f"run {run.run_id}: IdBord 1 reinstated: its "), text.stdout
    assert "; IdBord 2, 3 stay cancelled" in text.stdout, text.stdout
    assert run_cli("runs", "cancel", run.run_id, "--all", "--reason", "all of it again",
                   "--db", db_url).exit_code == 0
    code, report = _json("runs", "reinstate", run.run_id, "--bordereau", "1", "--reason",
                         "by mistake", "--db", db_url)
    assert code == 0, report
    assert (report["bordereaux"], report["run_reinstated"], report["still_cancelled"]) == (
        [1], False, [2, 3])


def test_runs_reinstate_of_a_run_the_tresorerie_annulled_is_refused(db_url, tmp_path):
    from .test_acquit import ACKS

    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    assert run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record").exit_code == 0
    assert run_cli("runs", "cancel", run.run_id, "--reason", "x", "--annulled-by-tresorerie",
                   "--db", db_url).exit_code == 0
    # its titles annulled by the trésorerie: refused, exit 7, its problem
    code, report = _json("runs", "reinstate", run.run_id, "--reason", "y", "--db", db_url)
    assert code == ExitCode.STATE and report["ok"] is False
    assert [p["rule"] for p in report["problems"]] == ["run.reinstate-annulled"]


def test_runs_cancel_and_reinstate_of_a_finance_package_s_run_ask_no_acknowledgement(
        tmp_path):
    from .conftest import package_store

    db = package_store(tmp_path)
    [run] = Store(f"sqlite:///{db}").list_runs()
    # the package sends its own PES: no acknowledgement to ask for, either way
    code, report = _json("runs", "cancel", run.id, "--reason", "again", "--db", db)
    assert code == 0 and report["run_cancelled"], report
    assert report["no_acknowledgement"] is None
    code, report = _json("runs", "reinstate", run.id, "--reason", "imported", "--db", db)
    assert code == 0
    assert (report["run_reinstated"], report["status"], report["invoices"]) == (
        True, "committed", 11)
    assert report["no_acknowledgement"] is None


def test_runs_reinstate_refusals_are_json_with_the_text_s_exit_code(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "a", RUN)
    code, report = _json("runs", "reinstate", run.run_id, "--reason", "x", "--db", db_url)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, f"run {run.run_id} is not cancelled, nor any of its "
             "bordereaux; nothing reinstated")
    code, report = _json("runs", "reinstate", run.run_id, "--bordereau", "7", "--reason", "x",
                         "--db", db_url)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, f"run {run.run_id} has no bordereau 7; its bordereaux "
             "are IdBord 1; nothing reinstated")
    # two of its invoices exported again since: each named, nothing reinstated
    assert run_cli("runs", "cancel", run.run_id, "--reason", "x", "--db", db_url).exit_code == 0
    export_recorded(lambda: Store(db_url), MAPPING,
                    only(tmp_path, ["FA-2026-00103", "FA-2026-00111"], "two.json"),
                    tmp_path / "b", RUN)
    code, report = _json("runs", "reinstate", run.run_id, "--reason", "x", "--db", db_url)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, f"run {run.run_id}: IdBord 1 cannot be reinstated")
    assert [(p["rule"], p["invoice"]) for p in report["problems"]] == [
        ("run.reinstate-taken", "FA-2026-00103"), ("run.reinstate-taken", "FA-2026-00111")]


# ------------------------------------------------------------------ runs extract


def _recorded_otherwise(db_url: str, run_id: str, **values) -> None:
    """The run's record with ``values`` instead (a store written by hand, an older
    pesgen's run)."""
    import sqlalchemy as sa

    from pesgen.store import runs

    with Store(db_url).engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))


def test_runs_extract_gives_the_files_what_changed_since_and_the_dry_run(db_url, tmp_path):
    from pesgen import __version__

    from .conftest import ROOT

    mapping = tmp_path / "m" / "villeneuve.yaml"
    mapping.parent.mkdir()
    shutil.copyfile(MAPPING, mapping)
    run = export_recorded(lambda: Store(db_url), mapping, EXAMPLE, tmp_path / "out", RUN)
    out = tmp_path / "support"
    code, report = _json("runs", "extract", run.run_id[:8], "--out", out, "--db", db_url)
    assert code == 0 and report["ok"] and report["error"] is None
    assert (report["run"], report["status"], report["pesgen_version"], report["run_date"],
            report["folder"], report["pesgen_version_differs"]) == (
        run.run_id, "committed", __version__, "2026-11-23", str(out), False)
    assert report["mapping"] == {"path": str(out / "villeneuve.yaml"),
                                 "size": mapping.stat().st_size, "sha256": _sha256(mapping),
                                 "verified": True, "recorded_path": str(mapping)}
    assert report["input"] == {"path": str(out / "input" / "school-export.json"),
                               "size": EXAMPLE.stat().st_size, "sha256": _sha256(EXAMPLE),
                               "verified": True, "recorded_path": str(EXAMPLE.resolve())}
    fmt = report["format"]
    assert (fmt["name"], fmt["folder"], fmt["formats_dir"], fmt["verified"]) == (
        "pes-ormc", str(out / "formats" / "pes-ormc"), str(out / "formats"), True)
    assert sorted(Path(f["path"]).relative_to(out / "formats" / "pes-ormc").as_posix()
                  for f in fmt["files"]) == ["format.yaml", "pes-aller.xml.j2",
                                             "pes-ormc/pes-ormc.xsd"]
    for f in fmt["files"]:
        assert (f["sha256"], f["size"]) == (_sha256(Path(f["path"])),
                                            Path(f["path"]).stat().st_size)
    assert report["since"] == {
        "mapping": {"found": str(mapping), "same": True, "error": None},
        "format": {"found": str(ROOT / "templates" / "pes-ormc"), "same": True,
                   "changed": [], "added": [], "removed": [], "error": None}}
    [note] = report["notes"]
    assert note.startswith(f"{out / 'input' / 'school-export.json'} is the school's export")
    dry = report["dry_run"]
    assert report["dry_run_refused"] is None
    assert dry["argv"] == [
        "pesgen", "export", "--mapping", str(out / "villeneuve.yaml"), "--input",
        str(out / "input" / "school-export.json"), "--formats-dir", str(out / "formats"),
        "--date", "2026-11-23", "--dry-run", "--db", str(out / "scratch.sqlite3"),
        "--create-store"]
    assert (dry["scratch_store"], dry["id_bords"], dry["first_piece"], dry["titles"],
            dry["total"], dry["left_out_as_exported"], dry["official_xsd"]) == (
        str(out / "scratch.sqlite3"), [1], 1, 11, "2527.25", 0, None)
    # the text prints the same command
    text = run_cli("runs", "extract", run.run_id, "--out", tmp_path / "text", "--db", db_url)
    assert f"  {dry['command'].replace(str(out), str(tmp_path / 'text'))}" in \
        text.stdout.splitlines()
    # and it runs: the same titles, nothing created
    checked = run_cli(*dry["argv"][1:])
    assert checked.exit_code == 0, checked.output
    assert "titles: 11, total 2527.25" in checked.stdout
    assert not (out / "scratch.sqlite3").exists()

    # the mapping edited since, then gone
    mapping.write_bytes(mapping.read_bytes() + b"# edited\n")
    _code, report = _json("runs", "extract", run.run_id, "--out", tmp_path / "two", "--db",
                          db_url)
    assert report["since"]["mapping"] == {"found": str(mapping), "same": False, "error": None}
    mapping.unlink()
    _code, report = _json("runs", "extract", run.run_id, "--out", tmp_path / "three", "--db",
                          db_url)
    assert report["since"]["mapping"] == {"found": None, "same": None,
                                          "error": "not there on this machine"}

    # a run recorded before pesgen kept the input's path: null, as runs show's input.path
    policies = json.loads(Store(db_url).get_run(run.run_id)["policies"])
    del policies["input_path"]
    _recorded_otherwise(db_url, run.run_id, policies=json.dumps(policies, sort_keys=True))
    _code, report = _json("runs", "extract", run.run_id, "--out", tmp_path / "four", "--db",
                          db_url)
    assert report["input"]["recorded_path"] is None
    assert report["input"]["path"] == str(tmp_path / "four" / "input" / "school-export.json")


def test_runs_extract_gives_absolute_recorded_paths_of_a_run_given_relative_ones(
        db_url, tmp_path, monkeypatch):
    """`pesgen export -m villeneuve.yaml -i school-export.json` run in the school's
    folder, then `runs extract` run from another: the mapping's and the input's
    recorded_path are the absolute paths the run read (relative ones would name files of
    the folder extract is run from), and `since` finds the mapping there."""
    school = tmp_path / "school"
    school.mkdir()
    shutil.copyfile(MAPPING, school / "villeneuve.yaml")
    shutil.copyfile(EXAMPLE, school / "school-export.json")
    monkeypatch.chdir(school)
    made = run_cli("export", "-m", "villeneuve.yaml", "-i", "school-export.json", "-o", "out",
                   "--date", "2026-11-23", "--db", db_url, "--create-store")
    assert made.exit_code == 0, made.output
    [recorded] = Store(db_url).list_runs()
    assert recorded.mapping_path == str((school / "villeneuve.yaml").resolve())
    elsewhere = tmp_path / "support"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, report = _json("runs", "extract", recorded.id, "--out", "extracted", "--db",
                         db_url)
    assert code == 0, report
    assert report["mapping"]["recorded_path"] == str((school / "villeneuve.yaml").resolve())
    assert report["input"]["recorded_path"] == str((school / "school-export.json").resolve())
    assert report["since"]["mapping"] == {"found": str((school / "villeneuve.yaml").resolve()),
                                          "same": True, "error": None}


def test_runs_extract_of_a_mapping_this_pesgen_refuses_gives_why_not_the_dry_run(
        db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    recorded = Store(db_url).get_run(run.run_id)
    text = recorded["mapping_text"].replace("21450999400015", "21450999400016")
    _recorded_otherwise(db_url, run.run_id, mapping_text=text,
                        mapping_sha256=hashlib.sha256(text.encode()).hexdigest(),
                        pesgen_version="0.0.1", format="ours-ormc")
    # extracted all the same (exit 0): the dry run is not given, and why
    code, report = _json("runs", "extract", run.run_id, "--out", tmp_path / "s", "--db", db_url)
    assert code == 0 and report["ok"] is True
    assert report["dry_run"] is None
    refused = report["dry_run_refused"]
    assert refused["exit_code"] == ExitCode.MAPPING
    assert "collectivity.siret" in [p["rule"] for p in refused["problems"]]
    assert report["pesgen_version_differs"] is True and report["pesgen_version"] == "0.0.1"
    # a format this machine does not find by its name
    since = report["since"]["format"]
    assert since["found"] is None and since["same"] is None
    assert since["error"].startswith("unknown output format 'ours-ormc'")


def test_runs_extract_gives_the_dgfip_xsd_and_the_invoices_left_out_as_exported(db_url,
                                                                               tmp_path):
    from .test_already_exported import TERM2, _leaving, _term2

    export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    # a later run that left out the example's 11 invoices as exported already
    run = export_recorded(lambda: Store(db_url), _leaving(tmp_path), _term2(tmp_path),
                          tmp_path / "later", TERM2)
    validation = json.loads(Store(db_url).get_run(run.run_id)["validation"])
    _recorded_otherwise(db_url, run.run_id, validation=json.dumps(
        {**validation, "official_xsd": "/srv/dgfip/schemas_pes_v5.17"}))
    code, report = _json("runs", "extract", run.run_id, "--out", tmp_path / "s", "--db", db_url)
    assert code == 0 and report["dry_run"]["official_xsd"] == "/srv/dgfip/schemas_pes_v5.17"
    assert report["dry_run"]["left_out_as_exported"] == 11
    assert report["dry_run"]["id_bords"] == [2]


def test_runs_extract_refusals_are_json_with_the_text_s_exit_code(db_url, tmp_path):
    from pesgen.store import pack

    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    out = tmp_path / "support"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    code, report = _json("runs", "extract", run.run_id, "--out", out, "--db", db_url)
    assert code == ExitCode.USAGE
    _refused(report, ExitCode.USAGE, f"{out} is not empty (it holds notes.txt)")
    assert report["problems"] == [] and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    code, report = _json("runs", "extract", "0000ffff", "--out", tmp_path / "x", "--db", db_url)
    _refused(report, ExitCode.STATE, "no run 0000ffff in the store ")
    _recorded_otherwise(db_url, run.run_id, input_blob=pack(b'{"invoices": []}'))
    code, report = _json("runs", "extract", run.run_id, "--out", tmp_path / "x", "--db", db_url)
    _refused(report, ExitCode.STATE, f"run {run.run_id}: the recorded input "
             "(school-export.json) does not match its recorded sha256")
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ numbering


def test_numbering_show_gives_each_sequence_its_start_next_number_and_moves(tmp_path):
    from pesgen.store import PIECE_SEQUENCE

    from .test_numbering_move import ORMC, ORMC_KEY, PIECES_KEY, SIRET, TITRES

    db = f"sqlite:///{tmp_path / 's.db'}"
    held = Store(db)
    export_recorded(lambda: held, TITRES, EXAMPLE, tmp_path / "o", RUN)
    held.set_start(ORMC_KEY, 7)
    held.set_start((SIRET, "00", 2027, "06"), 3)
    held.move([(PIECES_KEY, 40)], "titres 12-39 issued by the finance package")
    code, report = _json("numbering", "show", "--db", db)
    assert code == 0 and report["ok"] and report["error"] is None
    head = {"id_coll": SIRET, "cod_bud": "00"}
    titres, ormc, pieces, later = report["sequences"]
    assert titres == {**head, "exercise": 2026, "typ_bord": "01", "numbers": "id_bord",
                      "started": True, "start": 1, "next": 2, "given_up_to": 1, "moves": [],
                      "unsent": []}
    assert ormc == {**head, "exercise": 2026, "typ_bord": "06", "numbers": "id_bord",
                    "started": True, "start": 7, "next": 7, "given_up_to": None, "moves": [],
                    "unsent": []}
    [moved] = pieces.pop("moves")
    assert pieces == {**head, "exercise": 2026, "typ_bord": PIECE_SEQUENCE,
                      "numbers": "id_pce", "started": True, "start": 1, "next": 40,
                      "given_up_to": 11, "unsent": []}
    assert (moved["from"], moved["to"], moved["reason"]) == (
        12, 40, "titres 12-39 issued by the finance package")
    assert moved["moved_at"].endswith("Z")
    assert (later["exercise"], later["start"], later["next"]) == (2027, 3, 3)
    # --exercise: that one's only; none, an empty list
    _code, report = _json("numbering", "show", "--db", db, "--exercise", "2027")
    assert report["sequences"] == [later]
    code, report = _json("numbering", "show", "--db", db, "--exercise", "2025")
    assert code == 0 and report["sequences"] == []
    # a mapping's sequence not started: its first export takes 1
    other = tmp_path / "other.yaml"
    other.write_text(ORMC.read_text(encoding="utf-8").replace("exercise: 2026",
                                                              "exercise: 2025"),
                     encoding="utf-8")
    code, report = _json("numbering", "show", "--mapping", other, "--db", db)
    assert code == 0 and report["sequences"] == [
        {**head, "exercise": 2025, "typ_bord": "06", "numbers": "id_bord", "started": False,
         "start": None, "next": 1, "given_up_to": None, "moves": [], "unsent": []}]


def test_numbering_show_refusals_are_json_with_the_text_s_exit_code(tmp_path):
    from .test_numbering_move import ORMC

    missing = tmp_path / "none.db"
    code, report = _json("numbering", "show", "--db", f"sqlite:///{missing}")
    _refused(report, ExitCode.STATE, "no pesgen store at ")
    assert not missing.exists()
    code, report = _json("numbering", "show", "--exercise", "202", "--db",
                         f"sqlite:///{missing}")
    assert code == ExitCode.USAGE and report["ok"] is False and "2000" in report["error"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(ORMC.read_text(encoding="utf-8").replace("bindings:", "bindngs:", 1),
                      encoding="utf-8")
    db = f"sqlite:///{tmp_path / 's.db'}"
    Store(db).migrate()
    code, report = _json("numbering", "show", "--mapping", broken, "--db", db)
    assert code == ExitCode.MAPPING and report["ok"] is False
    assert "mapping.schema" in {p["rule"] for p in report["problems"]}


def test_numbering_set_start_gives_the_sequences_started_and_the_store(tmp_path):
    from pesgen.store import PIECE_SEQUENCE

    from .test_numbering_move import SIRET, TITRES

    path = tmp_path / "new.db"
    # a store named on purpose that is not there: refused, nothing created
    code, report = _json("numbering", "set-start", "--mapping", TITRES, "--start", "5",
                         "--db", path)
    _refused(report, ExitCode.STATE, "no pesgen store at ")
    assert code == ExitCode.STATE and not path.exists()
    code, report = _json("numbering", "set-start", "--mapping", TITRES, "--start", "5",
                         "--start-titre", "300", "--db", path, "--create-store")
    assert code == 0 and report["ok"] and report["store"] == {"url": str(path),
                                                             "created": True}
    head = {"id_coll": SIRET, "cod_bud": "00", "exercise": 2026}
    assert report["sequences"] == [
        {**head, "typ_bord": "01", "numbers": "id_bord", "start": 5},
        {**head, "typ_bord": PIECE_SEQUENCE, "numbers": "id_pce", "start": 300}]
    # once: a started sequence is moved, not started again
    code, report = _json("numbering", "set-start", "--mapping", TITRES, "--start", "6",
                         "--db", path)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, f"the numbering of {SIRET} budget 00 exercise 2026 "
             "TypBord 01 has already started at 5")
    code, report = _json("numbering", "set-start", "--mapping", TITRES, "--db", path)
    _refused(report, ExitCode.USAGE, "give --start N")


def test_numbering_move_gives_each_sequence_moved_and_the_numbers_skipped(tmp_path):
    from .test_numbering_move import ORMC, SIRET

    db = f"sqlite:///{tmp_path / 's.db'}"
    export_recorded(lambda: Store(db), ORMC, EXAMPLE, tmp_path / "o", RUN)
    code, report = _json("numbering", "move", "--mapping", ORMC, "--to", "12", "--reason",
                         "rôles 2-11 issued by the finance package", "--db", db)
    assert code == 0 and report["ok"]
    [moved] = report["moved"]
    assert moved["moved_at"].endswith("Z")
    assert {k: v for k, v in moved.items() if k != "moved_at"} == {
        "id_coll": SIRET, "cod_bud": "00", "exercise": 2026, "typ_bord": "06",
        "numbers": "id_bord", "from": 2, "to": 12,
        "reason": "rôles 2-11 issued by the finance package",
        "skipped": {"from": 2, "to": 11}}
    # back: nothing skipped
    code, report = _json("numbering", "move", "--mapping", ORMC, "--to", "3", "--reason",
                         "too far", "--db", db)
    assert code == 0
    assert [(m["from"], m["to"], m["skipped"]) for m in report["moved"]] == [(12, 3, None)]
    # never to a number a run took
    code, report = _json("numbering", "move", "--mapping", ORMC, "--to", "1", "--reason",
                         "x", "--db", db)
    assert code == ExitCode.STATE
    _refused(report, ExitCode.STATE, f"the numbering of {SIRET} budget 00 exercise 2026 "
             "TypBord 06: runs recorded in this store took IdBords up to 1")
    assert report["problems"] == []


def test_a_password_a_reason_quotes_is_masked_in_the_reports(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    code, report = _json("runs", "cancel", run.run_id, "--reason",
                         "moved to postgresql://pesgen:s3cret@db/pesgen", "--db", db_url)
    assert code == 0 and report["reason"] == "moved to postgresql://pesgen:***@db/pesgen"
    code, report = _json("regenerate", run.run_id, "--out", tmp_path / "r", "--cancelled",
                         "--db", db_url)
    assert code == 0 and [b["reason"] for b in report["cancelled_bordereaux"]] == [
        "moved to postgresql://pesgen:***@db/pesgen"]


# ------------------------------------------------------------------ interrupts


def test_regenerate_interrupted_once_its_files_are_placed_prints_its_report_whole(tmp_path):
    """Held as the text output is (test_cli): the report whole on standard output, exit
    0, the interrupt said on standard error only."""
    import signal

    from .test_cli import _signalled

    db = tmp_path / "store.sqlite3"
    run = export_recorded(lambda: Store(f"sqlite:///{db}"), MAPPING, EXAMPLE, tmp_path / "out",
                          RUN)
    r = _signalled(signal.SIGINT, "_Interrupts.hold", "regenerate", run.run_id, "-o",
                   tmp_path / "regen", "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    sent, report = r.stdout.split("\n", 1)
    assert sent == "signals sent"  # the test's own line, as the signals are sent
    report = json.loads(report)
    assert report["ok"] is True and len(report["files"]) == 2
    assert r.stderr == ("interrupt received once the files were being put in place: they "
                        "are in place (the output above is whole)\n")


def test_an_interrupt_before_anything_is_placed_prints_no_report(tmp_path, monkeypatch):
    """regenerate and runs extract stopped by Ctrl-C before their files are in place:
    exit 130, said on standard error, nothing on standard output (as export --format
    json)."""
    import pesgen.runs as runs_module

    run = export_recorded(lambda: Store(f"sqlite:///{tmp_path / 's.db'}"), MAPPING, EXAMPLE,
                          tmp_path / "out", RUN)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs_module, "_rebuild_files", interrupted)
    monkeypatch.setattr(runs_module, "extract_run", interrupted)
    for args in (("regenerate", run.run_id, "-o", tmp_path / "regen"),
                 ("runs", "extract", run.run_id, "-o", tmp_path / "regen")):
        r = run_cli(*args, "--db", tmp_path / "s.db", "--format", "json")
        assert (r.exit_code, r.stdout) == (130, "")
        assert r.stderr == "interrupted: nothing written\n"
        assert not (tmp_path / "regen").exists()
