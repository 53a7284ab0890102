"""IdBords cancelled before their file was sent (docs/state.md, Numbering): never given
again, and the trésorerie never received them, so Hélios sees the next file skip them.
`numbering show` lists them (cancelled, no acknowledgement recorded, not reinstated), and
an export whose files follow them says so (note numbering_gap). On SQLite and on a real
PostgreSQL server (PESGEN_TEST_PG_URL)."""

from __future__ import annotations

import json

from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli
from .test_acquit_record import _ack, _element
from .test_cancel import BORDEREAUX, only, split_mapping

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
SIRET = "21450999400015"
HEAD = ("  cancelled, no acknowledgement recorded (never received by the trésorerie if their "
        "file was not sent: tell it they were cancelled before sending):")


def _export(db: str, mapping, input_path, out, *args: str):
    return run_cli("export", "-m", mapping, "-i", input_path, "--date", RUN_DATE, "--db", db,
                   *(["-o", str(out)] if out is not None else []), *args)


def _show(db: str):
    text = run_cli("numbering", "show", "--db", db)
    assert text.exit_code == 0, text.output
    data = run_cli("numbering", "show", "--db", db, "--format", "json")
    assert data.exit_code == 0, data.output
    [seq] = json.loads(data.stdout)["sequences"]
    return text.stdout.splitlines(), seq["unsent"]


def _gap_notes(stdout: str) -> list[str]:
    return [ln for ln in stdout.splitlines() if ln.startswith("  - *: numbering_gap: ")]


def test_a_run_cancelled_before_sending_is_listed_and_the_next_file_says_it_follows_it(
        db_url, tmp_path):
    """IdBord 1 sent, run of IdBord 2 cancelled whole (the wrong term's file), never
    sent: `numbering show` said only 'next IdBord 3; runs of this store took up to 2'.
    It lists IdBord 2 with its run, date and reason; the dry run and the export taking
    IdBord 3 say the trésorerie will not have received IdBord 2 and to tell it (a note
    counted in the summary and recorded with the run); the export after that, following
    a number sent, says nothing of it."""
    first, second, third, fourth = (BORDEREAUX[1][:2], BORDEREAUX[1][2:],
                                    BORDEREAUX[2][:2], BORDEREAUX[2][2:])
    a = _export(db_url, MAPPING, only(tmp_path, first, "a.json"), tmp_path / "a",
                "--create-store")
    assert a.exit_code == 0, a.output
    b = _export(db_url, MAPPING, only(tmp_path, second, "b.json"), tmp_path / "b")
    assert b.exit_code == 0 and "(IdBord 2," in b.stdout, b.output
    [wrong] = [r for r in Store(db_url).list_runs() if r.first_number == 2]
    Store(db_url).cancel(wrong.id, "wrong term exported, never sent")
    at = Store(db_url).get_run(wrong.id)["cancelled_at"]
    lines, unsent = _show(db_url)
    assert lines[0] == (f"the numbering of {SIRET} budget 00 exercise 2026 TypBord 06: "
                        "started at 1, next IdBord 3; runs of this store took up to 2")
    assert lines[1:] == [HEAD, f"    IdBord 2  run {wrong.id}  cancelled "
                         f"{at} (whole run): wrong term exported, never sent"]
    assert unsent == [{"id_bord": 2, "run": wrong.id, "cancelled_at": at,
                       "reason": "wrong term exported, never sent", "whole_run": True,
                       "followed_by": 3, "moved_past": None}]

    c_input = only(tmp_path, third, "c.json")
    dry = _export(db_url, MAPPING, c_input, None, "--dry-run")
    assert dry.exit_code == 0, dry.output
    [note] = _gap_notes(dry.stdout)
    assert note.startswith(f"  - *: numbering_gap: this run would take IdBord 3, after "
                           f"IdBord 2 of {SIRET} budget 00 exercise 2026 TypBord 06, "
                           f"cancelled (run {wrong.id}) with no acknowledgement"), note
    c = _export(db_url, MAPPING, c_input, tmp_path / "c")
    assert c.exit_code == 0, c.output
    [note] = _gap_notes(c.stdout)
    assert "this run takes IdBord 3, after IdBord 2 " in note
    assert ("if its file was not sent, the trésorerie will not have received IdBord 2 and "
            "receives IdBord 3 without it") in note, note
    assert "tell the trésorerie that IdBord 2 was cancelled before sending" in note
    assert "numbering_gap ×1" in c.stdout
    [done] = [r for r in Store(db_url).list_runs() if r.first_number == 3]
    shown = run_cli("runs", "show", done.id, "--db", db_url)
    assert "numbering_gap" in shown.stdout, shown.output

    d = _export(db_url, MAPPING, only(tmp_path, fourth, "d.json"), tmp_path / "d")
    assert d.exit_code == 0 and "(IdBord 4," in d.stdout, d.output
    assert not _gap_notes(d.stdout) and "numbering_gap" not in d.stdout
    assert _show(db_url)[1] == unsent  # still listed: it was never sent


def test_acknowledged_and_reinstated_bordereaux_are_not_unsent(db_url, tmp_path):
    """A run of IdBord 1-3: 1 accepted, 2 rejected (the acquit recorded: the trésorerie
    received it), 3 without answer. Cancelled 2 and 3: only 3 is unsent. A cancelled
    run whose bordereau is reinstated is active again: not listed; the export after a
    run cancelled whole names its numbers as one span."""
    split = split_mapping(tmp_path)
    r = _export(db_url, split, only(tmp_path, BORDEREAUX[1] + BORDEREAUX[2] + BORDEREAUX[3],
                                    "all.json"), tmp_path / "o", "--create-store")
    assert r.exit_code == 0, r.output
    [run] = Store(db_url).list_runs()
    ack = _ack(tmp_path, "ack.xml", _element(1, True), _element(2, False, "ERREUR_AUTRE"))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 9
    store = Store(db_url)
    store.cancel(run.id, "trésorerie rejected IdBord 2", [2])
    store.cancel(run.id, "IdBord 3 never sent", [3])
    lines, unsent = _show(db_url)
    assert [(u["id_bord"], u["run"], u["reason"], u["whole_run"]) for u in unsent] == [
        (3, run.id, "IdBord 3 never sent", False)]
    assert lines[1] == HEAD and lines[2].startswith(f"    IdBord 3  run {run.id}  cancelled ")
    assert len(lines) == 3, lines

    # IdBord 2 and 3's invoices again, in IdBord 4-5 (by 4): cancelled whole
    again = _export(db_url, split, only(tmp_path, BORDEREAUX[2] + BORDEREAUX[3],
                                        "again.json"), tmp_path / "again")
    assert again.exit_code == 0, again.output
    [note] = _gap_notes(again.stdout)
    assert "takes IdBord 4, after IdBord 3 of" in note, note
    [second] = [x for x in Store(db_url).list_runs() if x.first_number == 4]
    assert second.bordereaux == 2
    Store(db_url).cancel(second.id, "not sent", whole=True)
    unsent = _show(db_url)[1]
    assert [(u["id_bord"], u["whole_run"]) for u in unsent] == [(3, False), (4, True),
                                                                 (5, True)]
    dry = _export(db_url, split, only(tmp_path, BORDEREAUX[2], "dry.json"), None,
                  "--dry-run")
    [note] = _gap_notes(dry.stdout)
    assert ("would take IdBord 6, after IdBord 3-5 of" in note
            and f"cancelled (run {run.id}, {second.id})" in note
            and "tell the trésorerie that IdBord 3-5 were cancelled" in note), note
    lines = _show(db_url)[0]
    assert lines[3] == (f"    IdBord 4-5  run {second.id}  cancelled "
                        f"{Store(db_url).get_run(second.id)['cancelled_at']} (whole run): "
                        "not sent"), lines

    back = run_cli("runs", "reinstate", second.id, "--bordereau", "5", "--reason",
                   "IdBord 5 was sent after all", "--db", db_url)
    assert back.exit_code == 0, back.output
    unsent = _show(db_url)[1]
    assert [(u["id_bord"], u["whole_run"]) for u in unsent] == [(3, False), (4, False)]
    dry = _export(db_url, split, only(tmp_path, BORDEREAUX[2][:2], "dry2.json"), None,
                  "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert not _gap_notes(dry.stdout), dry.stdout  # IdBord 5, the last, stands


def test_a_run_cancelled_whole_after_its_rejection_or_moved_past_leaves_no_gap(
        db_url, tmp_path):
    """IdBord 1 rejected by the trésorerie (the acquit recorded: it received the file),
    then its run cancelled whole: not unsent. IdBord 2 cancelled with no answer is, but
    an export after the sequence moved past numbers issued outside pesgen (IdBord 9)
    does not follow it: no numbering_gap note."""
    first, second, third = BORDEREAUX[1][:2], BORDEREAUX[1][2:], BORDEREAUX[2][:2]
    a = _export(db_url, MAPPING, only(tmp_path, first, "a.json"), tmp_path / "a",
                "--create-store")
    assert a.exit_code == 0, a.output
    [rejected] = Store(db_url).list_runs()
    ack = _ack(tmp_path, "ack.xml", _element(1, False, "ERREUR_AUTRE"))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 9
    Store(db_url).cancel(rejected.id, "rejected by the trésorerie")
    assert _show(db_url)[1] == []
    b = _export(db_url, MAPPING, only(tmp_path, second, "b.json"), tmp_path / "b")
    assert b.exit_code == 0 and "(IdBord 2," in b.stdout, b.output
    [unsent] = [r for r in Store(db_url).list_runs() if r.first_number == 2]
    Store(db_url).cancel(unsent.id, "never sent")
    assert [u["id_bord"] for u in _show(db_url)[1]] == [2]
    moved = run_cli("numbering", "move", "--mapping", MAPPING, "--to", "9", "--reason",
                    "IdBord 3-8 issued by the former software", "--db", db_url)
    assert moved.exit_code == 0, moved.output
    c = _export(db_url, MAPPING, only(tmp_path, third, "c.json"), tmp_path / "c")
    assert c.exit_code == 0 and "(IdBord 9," in c.stdout, c.output
    assert not _gap_notes(c.stdout), c.stdout


def test_a_finance_package_run_cancelled_lists_no_unsent_number(db_url, tmp_path):
    """A finance package numbers the files it sends itself (Hélios receives none of
    pesgen's): its run cancelled, `numbering show` lists none of its numbers unsent."""
    r = run_cli("export", "-m", MAPPINGS / "villeneuve-sur-loing-jvs.yaml", "-i",
                EXAMPLES / "school-export.json", "--date", RUN_DATE, "--db", db_url, "-o",
                str(tmp_path / "o"), "--create-store")
    assert r.exit_code == 0, r.output
    [run] = Store(db_url).list_runs()
    Store(db_url).cancel(run.id, "not sent")
    lines, unsent = _show(db_url)
    assert unsent == [] and HEAD not in lines, lines


MOVED_HEAD = ("  cancelled, no acknowledgement recorded, then moved past (pesgen numbering "
              "move): the trésorerie's sequence goes on after them with the numbers issued "
              "outside pesgen, not a file of pesgen's: no gap of pesgen's to tell it of:")


def _move(db: str, to: int, reason: str):
    r = run_cli("numbering", "move", "--mapping", MAPPING, "--to", str(to), "--reason",
                reason, "--db", db)
    assert r.exit_code == 0, r.output
    return r


def test_a_number_the_sequence_was_moved_past_is_told_from_one_pesgen_s_next_file_follows(
        db_url, tmp_path):
    """The first run took IdBord 1 where the finance package had issued rôles 1 to 11:
    cancelled, the sequence moved to 12 (docs/state.md, "Moving a started sequence").
    IdBord 12's run cancelled too, never sent. `numbering show` listed both under one
    heading, 'never received by the trésorerie if their file was not sent: tell it they
    were cancelled before sending', true of 12 (pesgen's next file, IdBord 13, follows
    it) but not of 1, which the numbers issued outside pesgen follow (IdBord 2-11): no
    gap of pesgen's. Each is under its own heading now, IdBord 1 with the move, and the
    JSON gives each its `followed_by` and `moved_past`; the export's note names 12
    alone."""
    a = _export(db_url, MAPPING, only(tmp_path, BORDEREAUX[1][:2], "a.json"), tmp_path / "a",
                "--create-store")
    assert a.exit_code == 0, a.output
    [first] = Store(db_url).list_runs()
    Store(db_url).cancel(first.id, "IdBord 1 is the finance package's")
    _move(db_url, 12, "rôles 1-11 issued by the finance package")
    b = _export(db_url, MAPPING, only(tmp_path, BORDEREAUX[1][2:], "b.json"), tmp_path / "b")
    assert b.exit_code == 0 and "(IdBord 12," in b.stdout, b.output
    assert not _gap_notes(b.stdout)  # it follows the numbers issued outside pesgen
    [twelfth] = [r for r in Store(db_url).list_runs() if r.first_number == 12]
    Store(db_url).cancel(twelfth.id, "wrong term exported, never sent")
    store = Store(db_url)
    [move] = store.sequence((SIRET, "00", 2026, "06")).moves
    at1, at12 = (store.get_run(r)["cancelled_at"] for r in (first.id, twelfth.id))

    lines, unsent = _show(db_url)
    assert lines[2:] == [
        HEAD, f"    IdBord 12  run {twelfth.id}  cancelled {at12} (whole run): wrong term "
        "exported, never sent",
        MOVED_HEAD, f"    IdBord 1  run {first.id}  cancelled {at1} (whole run): IdBord 1 "
        f"is the finance package's; followed by IdBord 2, issued outside pesgen (moved "
        f"{move.moved_at}: next 2 -> 12)"], lines
    assert unsent == [
        {"id_bord": 1, "run": first.id, "cancelled_at": at1,
         "reason": "IdBord 1 is the finance package's", "whole_run": True, "followed_by": 2,
         "moved_past": {"moved_at": move.moved_at, "from": 2, "to": 12,
                        "reason": "rôles 1-11 issued by the finance package"}},
        {"id_bord": 12, "run": twelfth.id, "cancelled_at": at12,
         "reason": "wrong term exported, never sent", "whole_run": True, "followed_by": 13,
         "moved_past": None}]
    dry = _export(db_url, MAPPING, only(tmp_path, BORDEREAUX[2], "c.json"), None, "--dry-run")
    [note] = _gap_notes(dry.stdout)
    assert ("would take IdBord 13, after IdBord 12 of" in note
            and f"cancelled (run {twelfth.id})" in note and first.id not in note), note


def test_a_number_moved_past_then_moved_back_to_is_followed_by_pesgen_s_next_file(
        db_url, tmp_path):
    """IdBord 1 cancelled, the sequence moved to 12, then back to 2 (the move was a
    mistake: nothing was issued outside pesgen): pesgen's next file, IdBord 2, follows
    IdBord 1, which is listed as cancelled before sending (`followed_by` 2, no
    `moved_past`), and the export taking IdBord 2 notes it (numbering_gap)."""
    a = _export(db_url, MAPPING, only(tmp_path, BORDEREAUX[1][:2], "a.json"), tmp_path / "a",
                "--create-store")
    assert a.exit_code == 0, a.output
    [first] = Store(db_url).list_runs()
    Store(db_url).cancel(first.id, "wrong term exported, never sent")
    _move(db_url, 12, "rôles 2-11 issued by the finance package")
    lines, unsent = _show(db_url)
    assert lines[-2:] == [MOVED_HEAD, lines[-1]] and unsent[0]["moved_past"]["to"] == 12
    _move(db_url, 2, "that was another collectivity's: nothing issued outside pesgen")
    lines, unsent = _show(db_url)
    assert lines[-2:] == [HEAD, f"    IdBord 1  run {first.id}  cancelled "
                          f"{unsent[0]['cancelled_at']} (whole run): wrong term exported, "
                          "never sent"], lines
    assert [(u["id_bord"], u["followed_by"], u["moved_past"]) for u in unsent] == [
        (1, 2, None)]
    c = _export(db_url, MAPPING, only(tmp_path, BORDEREAUX[2], "c.json"), tmp_path / "c")
    assert c.exit_code == 0 and "(IdBord 2," in c.stdout, c.output
    [note] = _gap_notes(c.stdout)
    assert "this run takes IdBord 2, after IdBord 1 of" in note, note
    assert [(u["id_bord"], u["followed_by"], u["moved_past"]) for u in _show(db_url)[1]] \
        == [(1, 2, None)]


def test_numbers_cancelled_in_a_row_then_moved_past_are_each_followed_by_the_next_issued(
        db_url, tmp_path):
    """IdBord 1 and 2 cancelled (one run, never sent), then the sequence moved to 12
    (rôles 3-11 issued by the finance package): what follows IdBord 1 is not IdBord 2,
    itself cancelled, but 3, issued outside pesgen, and so for IdBord 2: both are moved
    past, none listed as a gap of pesgen's."""
    split = split_mapping(tmp_path)
    r = _export(db_url, split, only(tmp_path, BORDEREAUX[1] + BORDEREAUX[2], "ab.json"),
                tmp_path / "o", "--create-store")
    assert r.exit_code == 0, r.output
    [run] = Store(db_url).list_runs()
    Store(db_url).cancel(run.id, "wrong term exported, never sent", whole=True)
    _move(db_url, 12, "rôles 3-11 issued by the finance package")
    lines, unsent = _show(db_url)
    assert [(u["id_bord"], u["followed_by"], (u["moved_past"] or {}).get("from"))
            for u in unsent] == [(1, 3, 3), (2, 3, 3)]
    assert HEAD not in lines and lines[-2] == MOVED_HEAD, lines
    assert lines[-1].startswith(f"    IdBord 1-2  run {run.id}  cancelled "), lines
    assert "; followed by IdBord 3, issued outside pesgen (moved " in lines[-1], lines


def test_a_number_two_moves_skipped_names_the_later_move(db_url, tmp_path):
    """IdBord 1 cancelled; the sequence moved to 12, back to 2 (a mistake), then to 8:
    IdBord 1 is moved past by the last move (numbers 2-7 issued outside pesgen), the one
    `numbering show` names, not the first, which no longer says where the sequence is."""
    a = _export(db_url, MAPPING, only(tmp_path, BORDEREAUX[1][:2], "a.json"), tmp_path / "a",
                "--create-store")
    assert a.exit_code == 0, a.output
    [first] = Store(db_url).list_runs()
    Store(db_url).cancel(first.id, "wrong term exported, never sent")
    _move(db_url, 12, "rôles 1-11 issued by the finance package")
    _move(db_url, 2, "a mistake: rôles 2-7 only")
    _move(db_url, 8, "rôles 2-7 issued by the finance package")
    lines, unsent = _show(db_url)
    assert [(u["id_bord"], u["followed_by"], u["moved_past"]["from"], u["moved_past"]["to"],
             u["moved_past"]["reason"]) for u in unsent] == [
        (1, 2, 2, 8, "rôles 2-7 issued by the finance package")]
    assert lines[-1].endswith(": next 2 -> 8)"), lines


def test_a_number_moved_past_is_not_taken_by_a_run_of_another_typbord(db_url, tmp_path):
    """IdBord 1 of the rôles (TypBord 06) cancelled, their sequence moved to 12: IdBord 2
    of the titres (TypBord 01, same SIRET, budget and exercise), another numbering, is no
    run of the rôles' taking the number after it: IdBord 1 is still moved past."""
    a = _export(db_url, MAPPING, only(tmp_path, BORDEREAUX[1][:2], "a.json"), tmp_path / "a",
                "--create-store")
    assert a.exit_code == 0, a.output
    [first] = Store(db_url).list_runs()
    Store(db_url).cancel(first.id, "IdBord 1 is the finance package's")
    _move(db_url, 12, "rôles 2-11 issued by the finance package")
    titres = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
    for name, part in (("t1.json", BORDEREAUX[2]), ("t2.json", BORDEREAUX[3])):
        t = _export(db_url, titres, only(tmp_path, part, name), tmp_path / name[:2])
        assert t.exit_code == 0, t.output
    assert sorted(r.first_number for r in Store(db_url).list_runs()) == [1, 1, 2]
    data = run_cli("numbering", "show", "--db", db_url, "--format", "json")
    assert data.exit_code == 0, data.output
    unsent = [u for seq in json.loads(data.stdout)["sequences"] for u in seq["unsent"]]
    assert [(u["id_bord"], u["followed_by"], (u["moved_past"] or {}).get("to"))
            for u in unsent] == [(1, 2, 12)]


def test_a_run_cancelled_whole_lists_only_its_bordereaux_never_acknowledged(db_url, tmp_path):
    """A run of IdBord 1-3 whose 1 and 2 the trésorerie rejected (recorded: it received
    them), then cancelled whole: only IdBord 3 is unsent. (The acknowledgements of a
    cancelled run are read apart from those of the bordereaux cancelled on their own.)"""
    split = split_mapping(tmp_path)
    r = _export(db_url, split, only(tmp_path, BORDEREAUX[1] + BORDEREAUX[2] + BORDEREAUX[3],
                                    "all.json"), tmp_path / "o", "--create-store")
    assert r.exit_code == 0, r.output
    [run] = Store(db_url).list_runs()
    ack = _ack(tmp_path, "ack.xml", _element(1, False, "ERREUR_AUTRE"),
               _element(2, False, "ERREUR_AUTRE"))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 9
    Store(db_url).cancel(run.id, "trésorerie rejected IdBord 1-2; IdBord 3 never sent",
                         whole=True)
    assert [(u["id_bord"], u["whole_run"], u["followed_by"]) for u in _show(db_url)[1]] == [
        (3, True, 4)]


def test_the_gap_notes_commands_run_as_printed(db_url, tmp_path):
    """The note's `numbering show` and `acquit FILE --record` said no --db (sup64): pasted
    in another shell, they read the default store, which knows neither the sequence nor
    the bordereau. They name the export's store, and `numbering show` the sequence's
    exercise: run as printed (FILE an acquit accepting IdBord 2, sent after all), the
    first lists IdBord 2, the second records it, and the listing no longer has it."""
    import shlex

    a = _export(db_url, MAPPING, only(tmp_path, BORDEREAUX[1][:2], "a.json"), tmp_path / "a",
                "--create-store")
    assert a.exit_code == 0, a.output
    b = _export(db_url, MAPPING, only(tmp_path, BORDEREAUX[1][2:], "b.json"), tmp_path / "b")
    assert b.exit_code == 0 and "(IdBord 2," in b.stdout, b.output
    [wrong] = [r for r in Store(db_url).list_runs() if r.first_number == 2]
    Store(db_url).cancel(wrong.id, "wrong term exported")
    c_input = only(tmp_path, BORDEREAUX[2][:2], "c.json")
    dry = _export(db_url, MAPPING, c_input, None, "--dry-run")
    c = _export(db_url, MAPPING, c_input, tmp_path / "c")
    for r in (dry, c):
        assert r.exit_code == 0, r.output
        [note] = _gap_notes(r.stdout)
        show = f"`pesgen numbering show --exercise 2026 --db {shlex.quote(db_url)}` lists it"
        assert show in note, note
        assert (f"`pesgen acquit FILE --record --db {shlex.quote(db_url)}`; FILE: the "
                "PES_ACQUIT the trésorerie's guichet XML returned for it)") in note, note
    show_args = shlex.split(note.split("`pesgen ")[1].split("`")[0])
    listed = run_cli(*show_args)
    assert listed.exit_code == 0, listed.output
    assert f"    IdBord 2  run {wrong.id}  cancelled " in listed.stdout, listed.stdout
    ack = _ack(tmp_path, "ack.xml", _element(2, True))
    acquit_args = shlex.split(note.split("`pesgen acquit ")[1].split("`")[0])
    recorded = run_cli("acquit", *[str(ack) if w == "FILE" else w for w in acquit_args])
    assert recorded.exit_code == 10, recorded.output  # accepted, but cancelled in pesgen
    assert "  recorded: IdBord 2 exercise 2026 " in recorded.stdout, recorded.output
    assert _show(db_url)[1] == []  # acknowledged: no longer listed
