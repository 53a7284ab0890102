"""Cancelling a run, or one bordereau of a run split in several, and what the other
commands (list, show, find, regenerate, export, PayFiP) then say and do; on SQLite and
on a real PostgreSQL server (PESGEN_TEST_PG_URL, see test_store)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import StateError, UsageError
from pesgen.export import ExportResult
from pesgen.runs import export_recorded, regenerate
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, record_as_older
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = EXAMPLES / "school-export.json"
# the example in bordereaux of 4 titles (FA-2026-00106, a zero total, is left out)
BORDEREAUX = {1: ["FA-2026-00101", "FA-2026-00102", "FA-2026-00103", "FA-2026-00104"],
              2: ["FA-2026-00105", "FA-2026-00107", "FA-2026-00108", "FA-2026-00110"],
              3: ["FA-2026-00111", "FA-2026-00112", "FA-2026-00113"]}


def split_mapping(tmp_path: Path) -> Path:
    """The example mapping with at most 4 titles per bordereau."""
    return mapping_copy(tmp_path, MAPPING, (
        "  asap_delay_days: 0\n", "  asap_delay_days: 0\n  max_pieces_per_bordereau: 4\n"),
        name="split4.yaml")[0]


def only(tmp_path: Path, numbers: list[str], name: str) -> Path:
    """The example export reduced to these invoices."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["invoices"] = [inv for inv in data["invoices"] if inv["number"] in numbers]
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def cli(db_url: str, *args: str):
    return CliRunner().invoke(app, [*args, "--db", db_url])


def active(store: Store, invoice: str) -> list[tuple[int, bool]]:
    return [(f["id_bord"], f["active"]) for f in store.find_invoice(invoice)]


def test_one_bordereau_of_a_split_run_is_cancelled_alone(db_url, tmp_path):
    """The trésorerie rejected IdBord 2 and took 1 and 3: cancelling 2 frees its invoices
    only; the others stay held, so a re-export cannot send them twice."""
    store = Store(db_url)
    split = split_mapping(tmp_path)
    run = export_recorded(lambda: store, split, EXAMPLE, tmp_path / "a", RUN)
    assert [f.bordereau for f in run.files] == [1, 2, 3]
    done = store.cancel(run.run_id, "trésorerie rejected IdBord 2", [2])
    assert (done.bordereaux, done.still_active, done.of, done.invoices) == ((2,), (1, 3), 3, 4)
    assert done.run.status == "committed" and done.run.cancelled_bordereaux == (2,)
    for id_bord, invoices in BORDEREAUX.items():
        for invoice in invoices:
            assert active(store, invoice) == [(id_bord, id_bord != 2)]
    # the whole input again: refused for bordereaux 1 and 3 only
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, split, EXAMPLE, tmp_path / "b", RUN)
    assert sorted(p.invoice for p in info.value.problems) == BORDEREAUX[1] + BORDEREAUX[3]
    # the rejected bordereau's invoices go out again, under a new number: 2 is never
    # given again
    again = export_recorded(lambda: store, split, only(tmp_path, BORDEREAUX[2], "two.json"),
                            tmp_path / "c", RUN)
    assert [f.bordereau for f in again.files] == [4]
    assert active(store, "FA-2026-00105") == [(2, False), (4, True)]
    # what cannot be cancelled is said, nothing changed
    with pytest.raises(StateError, match=f"IdBord 2 of run {run.run_id} is already cancelled "
                       r"\(on .*: trésorerie rejected IdBord 2\); nothing cancelled"):
        store.cancel(run.run_id, "twice", [2])
    with pytest.raises(StateError, match=f"run {run.run_id} has no bordereau 4, 9; its "
                       "bordereaux are IdBord 1, 2, 3; nothing cancelled"):
        store.cancel(run.run_id, "not its own", [9, 4])
    assert store.get_run(run.run_id)["status"] == "committed"
    # the last active bordereaux cancelled: the run is
    last = store.cancel(run.run_id, "the rest too", [1, 3])
    assert (last.bordereaux, last.still_active, last.run.status) == ((1, 3), (), "cancelled")
    assert active(store, "FA-2026-00101") == [(1, False)]
    with pytest.raises(StateError, match="already cancelled"):
        store.cancel(run.run_id, "again", whole=True)


def test_a_run_of_several_bordereaux_is_not_cancelled_whole_unless_asked(db_url, tmp_path):
    store = Store(db_url)
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "a", RUN)
    with pytest.raises(UsageError) as info:
        store.cancel(run.run_id, "rejected")
    assert str(info.value).startswith(
        f"run {run.run_id} has 3 active bordereaux; nothing cancelled. If the trésorerie "
        "rejected one of them, give --bordereau IDBORD for it (repeatable): the others stay "
        "active. To cancel the whole run, give --all")
    for f in run.files:  # each listed, with its titles, total and file
        assert f"IdBord {f.bordereau}  {f.titles} title(s)  {f.total:.2f}  {f.path.name}" \
            in str(info.value)
    with pytest.raises(UsageError, match="not both"):
        store.cancel(run.run_id, "rejected", [2], whole=True)
    assert all(a for _, a in active(store, "FA-2026-00101") + active(store, "FA-2026-00112"))
    done = store.cancel(run.run_id, "rejected", whole=True)
    assert (done.bordereaux, done.still_active, done.invoices) == ((1, 2, 3), (), 11)
    assert done.run.status == "cancelled" and done.run.cancelled_bordereaux == ()
    assert export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "b",
                           RUN).first_number == 4


def test_the_commands_show_a_run_some_of_whose_bordereaux_are_cancelled(db_url, tmp_path):
    store = Store(db_url)
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "a", RUN)
    rid = run.run_id
    refused = cli(db_url, "runs", "cancel", rid[:8], "--reason", "rejected")
    assert refused.exit_code == 2 and "give --all" in refused.output
    done = cli(db_url, "runs", "cancel", rid[:8], "--reason", "IdBord 2 rejected",
               "--bordereau", "2")
    assert done.exit_code == 0, done.output
    head, step = done.stdout.splitlines()
    assert head == (f"run {rid}: IdBord 2 cancelled: its 4 invoice(s) can be exported again; "
                    "IdBord 1, 3 stay active")
    # then how to send them again without the others (test_ack_cancel)
    assert step.startswith("next: export again only the invoices of IdBord 2 "), step
    # no acknowledgement recorded: said on stderr (test_ack_cancel)
    assert done.stderr.startswith("note: no acknowledgement recorded for IdBord 2: ")
    listed = cli(db_url, "runs", "list")
    assert f"{rid}  " in listed.output and "  committed  " in listed.output
    assert "IdBord 1-3 (2 cancelled)  11 title(s)" in listed.output
    shown = cli(db_url, "runs", "show", rid[:8]).output.splitlines()
    assert shown[0] == f"run {rid} (committed; IdBord 2 cancelled)"
    files = [line for line in shown if line.startswith("  file ")]
    assert [line.endswith("  cancelled") for line in files] == [False, True, False] * 2
    assert [line for line in shown if line.startswith("  cancelled")] == [
        f"  cancelled   IdBord 2 {store.get_run(rid)['cancelled_bordereaux'][2]['cancelled_at']}"
        ": IdBord 2 rejected"]
    # the cancelled bordereau's files moved away (not to send): not said missing
    moved = [p for p in (tmp_path / "a").iterdir() if "0000002" in p.name]
    for p in moved:
        p.rename(tmp_path / p.name)
    shown_now = cli(db_url, "runs", "show", rid[:8]).output
    assert "not there" not in shown_now and "not in the output dir" not in shown_now, shown_now
    for p in moved:
        (tmp_path / p.name).rename(p)
    found = [x for x in cli(db_url, "runs", "find", "FA-2026-00105").output.splitlines()
             if not x.startswith("  policy: ")]  # the notes its run recorded of it
    assert found[0].endswith("IdBord 2 IdPce 1 NumDette 202600105  237.50  freed "
                             "(IdBord 2 cancelled)")
    # then what the trésorerie answered of that bordereau (its Hélios status)
    assert found[1:] == ["  Hélios: IdBord 2 no acknowledgement recorded",
                         "  PayFiP: none (no PayFiP link made for it: pesgen knows of no "
                         "online payment; one paid otherwise paid the trésorerie)"]
    assert cli(db_url, "runs", "find", "FA-2026-00101").output.splitlines()[0].endswith(
        "active")
    # regenerate: the active bordereaux' files; the cancelled one's only when asked,
    # under a name that is not a file to send
    regen = cli(db_url, "regenerate", rid[:8], "--out", str(tmp_path / "r"))
    assert regen.exit_code == 0, regen.output
    names = [f.path.name for f in run.files] + [r.name for r in run.references]
    kept = sorted(n for n in names if "0000002" not in n)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == kept
    assert f"not written: {run.files[1].path.name} (IdBord 2 cancelled " in regen.output
    assert f"--cancelled writes it as CANCELLED-{run.files[1].path.name}" in regen.output
    assert "warning" not in regen.stderr  # nothing written not to send
    asked = CliRunner().invoke(app, ["regenerate", rid[:8], "--out", str(tmp_path / "c"),
                                     "--cancelled", "--db", db_url])
    assert asked.exit_code == 0, asked.output
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(
        n if "0000002" not in n else f"CANCELLED-{n}" for n in names)
    assert (tmp_path / "c" / f"CANCELLED-{run.files[1].path.name}").read_bytes() == \
        run.files[1].path.read_bytes()
    assert f"warning: IdBord 2 of run {rid} is cancelled: its files are written as " \
        "CANCELLED-<name>" in asked.output
    # the last ones: the run is cancelled, and said so
    on = store.get_run(rid)["cancelled_bordereaux"][2]["cancelled_at"]
    last = cli(db_url, "runs", "cancel", rid[:8], "--reason", "the rest", "--bordereau", "1",
               "--bordereau", "3")
    # none active now: the export to run again, as a whole run's cancellation says it,
    # naming IdBord 2 too: cancelled before, its invoices go out in the same export (it
    # said 'never IdBord 1, 3 again', as if the whole file held these two only)
    assert last.stdout == (f"run {rid}: IdBord 1, 3 cancelled: their 7 invoice(s) can be "
                           "exported again; no bordereau of the run is active now: the run "
                           "is cancelled\n"
                           + _export_again(rid, db_url, tmp_path / "a", "1, 2, 3")
                           .replace(str(MAPPING.resolve()), str(split_mapping(tmp_path)))
                           + f"; the invoices of IdBord 2 (on {on}), cancelled before, go out "
                           "in that export too\n"), last.stdout
    shown = cli(db_url, "runs", "show", rid[:8]).output.splitlines()
    assert shown[0] == f"run {rid} (cancelled)"
    # every file of the cancelled run is one not to send: IdBord 1 and 3, cancelled with
    # the run, as IdBord 2, cancelled on its own before
    files = [line for line in shown if line.startswith("  file ")]
    assert len(files) == 6 and all(line.endswith("  cancelled") for line in files), files
    assert [line.split(": ", 1)[1] for line in shown if line.startswith("  cancelled")] == [
        "IdBord 2 rejected", "the rest"]
    with pytest.raises(StateError, match="--cancelled"):
        regenerate(store, rid, tmp_path / "r2")


def test_runs_list_says_what_stands_of_a_run_some_of_whose_bordereaux_are_cancelled(
        db_url, tmp_path):
    """`runs list` keeps a run's titles and total as recorded, and, while some of its
    bordereaux are cancelled on their own, says what stands (active) and what was freed
    (cancelled): the titles and total of those bordereaux' files. Reinstated, a
    bordereau counts as active again; a run cancelled whole says nothing more than its
    status."""
    store = Store(db_url)
    mapping = split_mapping(tmp_path)
    run = export_recorded(lambda: store, mapping, EXAMPLE, tmp_path / "a", RUN)
    rid = run.run_id
    by_bord = {f.bordereau: (f.titles, f.total) for f in run.files}
    assert sorted(by_bord) == [1, 2, 3]

    def line() -> str:
        [said] = [ln for ln in cli(db_url, "runs", "list").output.splitlines()
                  if ln.startswith(rid)]
        return said

    def part(cancelled: list[int]) -> str:
        gone = (sum(by_bord[b][0] for b in cancelled), sum(by_bord[b][1] for b in cancelled))
        return (f"  11 title(s)  {run.total:.2f} (active {11 - gone[0]} title(s), "
                f"{run.total - gone[1]:.2f}; cancelled {gone[0]} title(s), {gone[1]:.2f})  ")

    assert f"  11 title(s)  {run.total:.2f}  {mapping}" in line()
    assert cli(db_url, "runs", "cancel", rid[:8], "--reason", "IdBord 2 rejected",
               "--bordereau", "2").exit_code == 0
    assert f"IdBord 1-3 (2 cancelled){part([2])}" in line()
    assert store.list_runs()[0].cancelled_figures == (4, f"{by_bord[2][1]:.2f}")
    # the record a cancellation gives has them too, the run's own (not another's)
    done = store.cancel(rid, "IdBord 3 rejected", bordereaux=[3])
    assert done.run.cancelled_figures == (
        by_bord[2][0] + by_bord[3][0], f"{by_bord[2][1] + by_bord[3][1]:.2f}")
    assert f"IdBord 1-3 (2, 3 cancelled){part([2, 3])}" in line()
    back = cli(db_url, "runs", "reinstate", rid[:8], "--reason", "kept by the trésorerie",
               "--bordereau", "2")
    assert back.exit_code == 0, back.output
    assert f"IdBord 1-3 (3 cancelled){part([3])}" in line()
    assert cli(db_url, "runs", "cancel", rid[:8], "--reason", "the rest",
               "--bordereau", "1", "--bordereau", "2").exit_code == 0
    assert "  cancelled  pes-ormc  " in line()
    assert f"IdBord 1-3  11 title(s)  {run.total:.2f}  {mapping}" in line()
    assert store.list_runs()[0].cancelled_figures is None  # its status says it all


def test_regenerate_cancelled_says_which_invoices_went_out_again_since(db_url, tmp_path,
                                                                        monkeypatch):
    """`regenerate --cancelled`'s warning says whether the cancelled bordereaux'
    invoices are in another run since (docs/state.md): none while no active run holds
    them, then how many and which run and IdBord holds them (what `runs reinstate`
    checks), for a bordereau cancelled on its own and for a run cancelled whole; the
    holders in IdBord order, not their run ids'."""
    store = Store(db_url)
    mapping = split_mapping(tmp_path)
    run = export_recorded(lambda: store, mapping, EXAMPLE, tmp_path / "a", RUN)
    rid = run.run_id
    # nothing cancelled: --cancelled writes the run's files as they are, with no warning
    plain = cli(db_url, "regenerate", rid[:8], "--out", str(tmp_path / "r0"), "--cancelled")
    assert plain.exit_code == 0, plain.output
    assert "CANCELLED-" not in plain.stdout and "warning" not in plain.stderr, plain.output
    assert cli(db_url, "runs", "cancel", rid[:8], "--reason", "IdBord 2 rejected",
               "--bordereau", "2").exit_code == 0

    def warning(out: str) -> str:
        r = cli(db_url, "regenerate", rid[:8], "--out", str(tmp_path / out), "--cancelled")
        assert r.exit_code == 0, r.output
        # the cancelled bordereaux' files are written, not said left out
        assert f"wrote {tmp_path / out / 'CANCELLED-'}" in r.stdout, r.stdout
        assert "not written" not in r.stdout
        [said] = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
        return said

    head = (f"warning: IdBord 2 of run {rid} is cancelled: its files are written as "
            "CANCELLED-<name>, for reading only; do not send them to the trésorerie; ")
    assert warning("r1") == head + "none of its invoices is in an active run now"
    # two of IdBord 2's invoices billed again, in a new rôle
    again = export_recorded(lambda: store, mapping,
                            only(tmp_path, BORDEREAUX[2][1:3], "two.json"), tmp_path / "b", RUN)
    assert again.first_number == 4
    assert warning("r2") == head + (f"2 of its invoices were exported again since, by run "
                                    f"{again.run_id} (IdBord 4)")
    # two bordereaux cancelled on their own: said of both
    assert cli(db_url, "runs", "cancel", rid[:8], "--reason", "IdBord 1 rejected",
               "--bordereau", "1").exit_code == 0
    assert warning("r2b") == (
        f"warning: IdBord 1, 2 of run {rid} are cancelled: their files are written as "
        "CANCELLED-<name>, for reading only; do not send them to the trésorerie; 2 of their "
        f"invoices were exported again since, by run {again.run_id} (IdBord 4)")
    # the run cancelled whole: every bordereau's invoices, IdBord 1's among them
    assert cli(db_url, "runs", "cancel", rid[:8], "--reason", "the rest",
               "--bordereau", "3").exit_code == 0
    # the later holder (IdBord 5) with a run id sorting before the earlier one's
    monkeypatch.setattr("pesgen.runs.new_run_id", lambda: "00000000-0000-4000-8000-000000000005")
    more = export_recorded(lambda: store, mapping, only(tmp_path, BORDEREAUX[1][:1], "one.json"),
                           tmp_path / "c", RUN)
    assert more.run_id < again.run_id
    assert warning("r3") == (
        f"warning: run {rid} is cancelled: its files are written as CANCELLED-<name>, for "
        "reading only; do not send them to the trésorerie; 3 of its invoices were exported "
        f"again since, by run {again.run_id} (IdBord 4), run {more.run_id} (IdBord 5)")


def test_runs_show_names_three_files_not_in_place_and_counts_the_others(db_url, tmp_path):
    """A run's recorded files not in its folder: three named, the others counted."""
    store = Store(db_url)
    rid = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "a",
                          RUN).run_id
    names = [f["name"] for f in store.get_run(rid)["files"]]
    assert len(names) == 6  # three bordereaux, each with its references CSV
    for name in names[:3]:
        (tmp_path / "a" / name).unlink()
    shown = cli(db_url, "runs", "show", rid[:8]).output
    assert f"Run {rid}'s recorded file(s) {', '.join(names[:3])} are not in " in shown, shown
    for gone, more in ((4, 1), (6, 3)):
        for name in names[3:gone]:
            (tmp_path / "a" / name).unlink(missing_ok=True)
        shown = cli(db_url, "runs", "show", rid[:8]).output
        assert (f"Run {rid}'s recorded file(s) {', '.join(names[:3])}, … {more} more are "
                "not in ") in shown, shown


def _export_again(run_id: str, db_url: str, out: Path, numbers: str = "1") -> str:
    """`runs cancel`'s next: line once no bordereau of the run is active (the example's
    input and the shipped mapping, as the run recorded them)."""
    import shlex

    args = (f"--mapping {MAPPING.resolve()} --input {EXAMPLE.resolve()} --out "
            f"{out.resolve()} --db {shlex.quote(db_url)}")
    return (f"next: correct the input (or take the right file), then check it with `pesgen "
            f"export {args} --dry-run`, and export it with the same command without "
            f"--dry-run: its invoices take the next IdBord, never IdBord {numbers} again (the "
            f"run's mapping, input and output folder; `pesgen runs extract {run_id} --db "
            f"{shlex.quote(db_url)} --out DIR` writes the input as the run read it; "
            "docs/state.md, A rejected bordereau)")


def test_a_single_bordereau_run_is_cancelled_and_told_how_to_export_again(db_url, tmp_path):
    """`runs cancel RUN` (the whole run) said what it freed, not what to do next, where
    cancelling some bordereaux of a run says it: now a next: line gives the export to run
    again, with the run's own mapping, input and output folder and the store's --db, a
    dry run first; that command, dated as the run was, exports the invoices again under
    IdBord 2."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN)
    done = cli(db_url, "runs", "cancel", run.run_id, "--reason", "rejected")
    assert done.stdout == (
        f"run {run.run_id} cancelled: its 11 invoice(s) can be exported again\n"
        f"{_export_again(run.run_id, db_url, tmp_path / 'a')}\n"), done.stdout
    assert cli(db_url, "runs", "find", "FA-2026-00101").output.splitlines()[0].endswith(
        "freed (cancelled)")
    command = done.stdout.split("`pesgen export ", 1)[1].split("`", 1)[0].split()
    assert command[-1] == "--dry-run" and command[-3] == "--db"
    again = CliRunner().invoke(app, ["export", *command[:-1], "--date", "2026-11-23"])
    assert again.exit_code == 0, again.output
    assert "(IdBord 2, 11 title(s), total 2527.25" in again.output, again.output


def test_a_cancelled_bordereau_s_files_still_in_place_are_named_not_to_send(db_url, tmp_path):
    """A new export into the folder of a cancelled run puts its file beside the cancelled
    one (another IdBord, another name), and nothing there said which not to send: the
    cancellation names the cancelled files still there, those of the bordereaux it
    cancels only, not those moved away."""
    store = Store(db_url)
    out = tmp_path / "a"
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, out, RUN)
    names = sorted(p.name for p in out.iterdir())
    two = [n for n in names if "_0000002.xml" in n] + [n for n in names
                                                     if "_0000002.references" in n]
    assert len(two) == 2, names  # the XML, then its references CSV
    done = cli(db_url, "runs", "cancel", run.run_id, "--reason", "rejected",
               "--bordereau", "2")
    assert done.exit_code == 0, done.output
    note = [ln for ln in done.stderr.splitlines() if ln.startswith("note: cancelled")]
    assert note == [f"note: cancelled, still in {out.resolve()}: {', '.join(two)}: do not "
                    "send or import them (nor print the payment references of the CSV); move "
                    "them aside"]
    for n in names:
        if "_0000003." in n:
            (out / n).unlink()
    done = cli(db_url, "runs", "cancel", run.run_id, "--reason", "rejected", "--all")
    assert done.exit_code == 0, done.output
    [note] = [ln for ln in done.stderr.splitlines() if ln.startswith("note: cancelled")]
    # IdBord 1 (cancelled now) is there, 3 was moved away, 2 is not said again
    assert ("_0000001.xml" in note and "_0000003." not in note and "_0000002." not in note), note


def test_a_cancelled_bordereau_s_datamatrix_still_in_place_is_named_not_to_print(
        db_url, tmp_path):
    """`payfip datamatrix` writes each bordereau's Datamatrix CSV and images beside its
    file: once the bordereau is cancelled, a family paying one of them pays a cancelled
    title. The cancellation names them with the files not to send, those of the
    bordereaux it cancels only."""
    pytest.importorskip("pystrich")
    store = Store(db_url)
    out = tmp_path / "a"
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, out, RUN)
    made = cli(db_url, "payfip", "datamatrix", "--run", run.run_id, "--code-etablissement",
               "001")
    assert made.exit_code == 0, made.output
    two = sorted(p.name for p in out.iterdir() if "_0000002." in p.name)
    stem = two[0].split(".")[0]
    assert two == [f"{stem}.datamatrix", f"{stem}.datamatrix.csv", f"{stem}.references.csv",
                   f"{stem}.xml"], two
    done = cli(db_url, "runs", "cancel", run.run_id, "--reason", "rejected",
               "--bordereau", "2")
    assert done.exit_code == 0, done.output
    note = [ln for ln in done.stderr.splitlines() if ln.startswith("note: cancelled")]
    assert note == [f"note: cancelled, still in {out.resolve()}: {stem}.xml, "
                    f"{stem}.references.csv, {stem}.datamatrix.csv, {stem}.datamatrix/: do "
                    "not send or import them (nor print the payment references of the CSV, "
                    "nor the Datamatrix); move them aside"]
    # the Datamatrix alone left (the bordereau's file sent and moved away)
    for n in (f"{stem}.xml", f"{stem}.references.csv"):
        (out / n).rename(tmp_path / n)
    store.reinstate(run.run_id, "by mistake", bordereaux=[2])
    done = cli(db_url, "runs", "cancel", run.run_id, "--reason", "rejected",
               "--bordereau", "2")
    note = [ln for ln in done.stderr.splitlines() if ln.startswith("note: cancelled")]
    assert note == [f"note: cancelled, still in {out.resolve()}: {stem}.datamatrix.csv, "
                    f"{stem}.datamatrix/: do not send or import them (nor print the "
                    "Datamatrix); move them aside"]


def split_run_in_store_left_at(schema: int, missing_table: str, db_url: str, tmp_path: Path,
                               monkeypatch) -> tuple[Store, ExportResult]:
    """The example split in bordereaux of 4, recorded in a store pesgen left at
    ``schema`` (without ``missing_table``), which is then opened with the current code:
    (the store, migrated to the last schema, and the run)."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:schema])
        old = Store(db_url)
    assert missing_table not in sa.inspect(old.engine).get_table_names()
    donor = Store(f"sqlite:///{tmp_path / 'donor.sqlite3'}")
    run = export_recorded(lambda: donor, split_mapping(tmp_path), EXAMPLE, tmp_path / "a", RUN)
    record_as_older(donor, old)
    old.engine.dispose()
    store = Store(db_url)
    with store.engine.connect() as conn:
        versions = conn.execute(sa.select(st.schema_table.c.version)).scalars().all()
    assert sorted(versions) == list(range(1, len(st.MIGRATIONS) + 1))
    assert missing_table in sa.inspect(store.engine).get_table_names()
    return store, run


def test_a_schema_7_store_is_migrated_and_cancels_a_bordereau(db_url, tmp_path, monkeypatch):
    """A store pesgen left at schema 7 opens with the current code (migration 8), and a
    split run it recorded can have one bordereau cancelled."""
    store, run = split_run_in_store_left_at(7, "cancelled_bordereaux", db_url, tmp_path,
                                            monkeypatch)
    [listed] = store.list_runs()
    assert (listed.status, listed.cancelled_bordereaux) == ("committed", ())
    store.cancel(run.run_id, "rejected", [3])
    assert active(store, "FA-2026-00112") == [(3, False)]
    assert active(store, "FA-2026-00101") == [(1, True)]



def _with_new(tmp_path: Path, numbers: list[str], name: str) -> Path:
    """The example's invoices ``numbers``, plus a new one (FA-2026-00112 as FA-2026-00199)."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    [model] = [inv for inv in data["invoices"] if inv["number"] == "FA-2026-00112"]
    data["invoices"] = [inv for inv in data["invoices"] if inv["number"] in numbers]
    data["invoices"].append(dict(model, number="FA-2026-00199"))
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_an_input_that_only_partly_overlaps_a_run_is_told_to_lose_those_invoices(
        db_url, tmp_path):
    """One invoice already sent, one new: cancelling the run holding the first (the
    advice before) would throw away a rôle the trésorerie took. The invoices already
    sent leave the input instead; the list is capped."""
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN)
    partial = _with_new(tmp_path, ["FA-2026-00112"], "partial.json")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, partial, tmp_path / "b", RUN)
    assert str(info.value) == (
        f"1 invoice(s) already exported by run(s) {first.run_id}; nothing written. Only some "
        "of this input's invoices are (1 of 2): remove those from the input (FA-2026-00112) to "
        "export the others, or have them left out and reported: policies.already_exported: "
        f"leave_out in the mapping ({MAPPING}:106: policies); cancel a run (pesgen runs cancel) "
        "only if the trésorerie rejected it and this input replaces it whole")
    [problem] = info.value.problems
    assert problem.message == (f"already exported by run {first.run_id} in "
                               f"{first.files[0].path.name} (IdBord 1); remove it from this "
                               "input")
    numbers = [n for ns in BORDEREAUX.values() for n in ns]
    many = _with_new(tmp_path, numbers, "many.json")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, many, tmp_path / "c", RUN)
    assert f"(11 of 12): remove those from the input " \
        f"({', '.join(numbers[:10])}, … 1 more) to export the others, or have them left " \
        in str(info.value)
    assert len(info.value.problems) == 11  # every one, with its record
    # ten held: all ten listed, none counted
    ten = _with_new(tmp_path, numbers[:10], "ten.json")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, ten, tmp_path / "e", RUN)
    assert f"(10 of 11): remove those from the input " \
        f"({', '.join(numbers[:10])}) to export the others, or have them left" in str(info.value)
    # the invoices listed are those to remove, said before "the others", which are the new
    # ones: the list used to follow "to export the others", read as the ones to export
    assert "to export the others (" not in str(info.value)
    assert not any((tmp_path / d).exists() for d in ("b", "c", "e"))


def test_an_input_a_run_of_several_bordereaux_holds_is_told_which_bordereau_to_cancel(
        db_url, tmp_path):
    store = Store(db_url)
    split = split_mapping(tmp_path)
    first = export_recorded(lambda: store, split, EXAMPLE, tmp_path / "a", RUN)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, split, only(tmp_path, BORDEREAUX[2], "two.json"),
                        tmp_path / "b", RUN)
    assert str(info.value) == (
        f"4 invoice(s) already exported by run(s) {first.run_id}; nothing written. A run of "
        "several bordereaux: cancel only those the trésorerie rejected (pesgen runs cancel "
        "RUN --bordereau IDBORD), or the whole run with --all if this input replaces it")
    assert info.value.problems[0].message == (
        f"already exported by run {first.run_id} in {first.files[1].path.name} (IdBord 2); "
        f"cancel that bordereau first (pesgen runs cancel {first.run_id} --bordereau 2) to "
        "export it again, if the trésorerie rejected it or it was never sent (no "
        "acknowledgement of IdBord 2 is recorded: pesgen acquit FILE --record"
        "; FILE: the PES_ACQUIT the trésorerie's guichet XML returned for it)")
    # another invoice with the NumDette of a title of IdBord 3 (the mapping's NumDette is
    # the number's digits): that bordereau is named too
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["invoices"] = [dict(inv, number="FB-2026-00111") for inv in data["invoices"]
                        if inv["number"] == "FA-2026-00111"]
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, split, clash, tmp_path / "d", RUN)
    [problem] = info.value.problems
    assert problem.rule == "run.num-dette-taken"
    assert problem.message.endswith(
        f"(IdBord 3): two active titles would share one payment reference; cancel that "
        f"bordereau first (pesgen runs cancel {first.run_id} --bordereau 3), or give this "
        "invoice another NumDette")
    # followed: the bordereau is cancelled, its invoices go out again
    store.cancel(first.run_id, "rejected", [2])
    again = export_recorded(lambda: store, split, only(tmp_path, BORDEREAUX[2], "two.json"),
                            tmp_path / "c", RUN)
    assert again.first_number == 4
    # two of its bordereaux stand: still one bordereau of several to cancel, not the run
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, split, only(tmp_path, BORDEREAUX[1], "one.json"),
                        tmp_path / "e", RUN)
    assert info.value.problems[0].message.endswith(
        f"(IdBord 1); cancel that bordereau first (pesgen runs cancel {first.run_id} "
        "--bordereau 1) to export it again, if the trésorerie rejected it or it was never "
        "sent (no acknowledgement of IdBord 1 is recorded: pesgen acquit FILE --record"
        "; FILE: the PES_ACQUIT the trésorerie's guichet XML returned for it)")
    assert str(info.value).endswith(
        ". A run of several bordereaux: cancel only those the trésorerie rejected (pesgen "
        "runs cancel RUN --bordereau IDBORD), or the whole run with --all if this input "
        "replaces it")


def test_runs_show_lists_the_run_s_invoices_for_every_format(db_url, tmp_path):
    """Which invoice is in which bordereau, for titres and finance packages too (only the
    ORMC references CSV said so); left-out invoices with their input record."""
    store = Store(db_url)
    ormc = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "a", RUN)
    store.cancel(ormc.run_id, "rejected", [2])
    shown = cli(db_url, "runs", "show", ormc.run_id[:8], "--invoices")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    [left_out] = [line for line in lines if line.startswith("  left out")]
    assert left_out.startswith("  left out    FA-2026-00106 (")  # the input, as given
    assert left_out.endswith("school-export.json:$.invoices[5]): total is 0.00 "
                             "(policy zero_total)")
    # each title's record in the input (its position: the path heads the table)
    at = lines.index(f"  invoices    11  (records in {EXAMPLE.resolve()})")
    assert lines[at + 1:at + 4] == [
        "    invoice        IdBord  IdPce   NumDette  amount  lines  status     record",
        "    FA-2026-00101       1      1  202600101  282.75      3  active     $.invoices[0]",
        "    FA-2026-00102       1      2  202600102  187.50      2  active     $.invoices[1]"]
    assert lines[at + 6] == ("    FA-2026-00105       2      1  202600105  237.50      2  "
                             "cancelled  $.invoices[4]")
    assert len(lines) == at + 13
    assert "  invoices" not in cli(db_url, "runs", "show", ormc.run_id[:8]).output
    titres = export_recorded(lambda: store, MAPPINGS / "villeneuve-sur-loing-titres.yaml",
                             _with_new(tmp_path, [], "new.json"), tmp_path / "t", RUN)
    lines = cli(db_url, "runs", "show", titres.run_id[:8], "--invoices").output.splitlines()
    assert lines[-3:] == [f"  invoices    1  (records in {(tmp_path / 'new.json').resolve()})",
                          "    invoice        IdBord  IdPce  amount  lines  status  record",
                          "    FA-2026-00199       1      1  227.50      2  active  $.invoices[0]"]
    # a run recorded before schema 19 has no record (nor, before 21, its lines): no
    # column, nothing guessed; said plainly, not left for the reader to wonder where the
    # column went
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE run_invoices SET record = NULL, line_count = NULL"))
    lines = cli(db_url, "runs", "show", titres.run_id[:8], "--invoices").output.splitlines()
    assert lines[-3:] == ["  invoices    1  (input record not kept: the run was recorded "
                          "before the store kept it)",
                          "    invoice        IdBord  IdPce  amount  status",
                          "    FA-2026-00199       1      1  227.50  active"]


def test_runs_show_marks_a_title_without_its_record_in_a_table_that_has_records(db_url,
                                                                                 tmp_path):
    """A run whose titles have records but one (its record not kept): the record column
    stays, that title's cell says '-' (not left blank, read as a record cut off), and the
    records, texts, are aligned on the left."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLE,
                          tmp_path / "a", RUN)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE run_invoices SET record = NULL "
                             "WHERE invoice = 'FA-2026-00102'"))
    lines = cli(db_url, "runs", "show", run.run_id[:8], "--invoices").output.splitlines()
    at = lines.index(f"  invoices    11  (records in {EXAMPLE.resolve()})")
    assert lines[at + 1:at + 4] == [
        "    invoice        IdBord  IdPce   NumDette  amount  lines  status  record",
        "    FA-2026-00101       1      1  202600101  282.75      3  active  $.invoices[0]",
        "    FA-2026-00102       1      2  202600102  187.50      2  active  -"]
    assert lines[-1].endswith("  active  $.invoices[11]")


def test_store_copy_keeps_the_cancelled_bordereaux(db_url, tmp_path):
    from pesgen.store import copy_store

    source = Store(f"sqlite:///{tmp_path / 'source.sqlite3'}")
    run = export_recorded(lambda: source, split_mapping(tmp_path), EXAMPLE, tmp_path / "a", RUN)
    source.cancel(run.run_id, "IdBord 2 rejected", [2])
    counts = copy_store(source.url, db_url)
    assert counts["cancelled_bordereaux"] == 1
    target = Store(db_url)
    [copied] = target.list_runs()
    assert (copied.status, copied.cancelled_bordereaux) == ("committed", (2,))
    assert target.get_run(run.run_id)["cancelled_bordereaux"][2]["reason"] == "IdBord 2 rejected"
    assert active(target, "FA-2026-00105") == [(2, False)]


@pytest.mark.parametrize("size", [254, 255, 256])
def test_a_cancelled_run_s_name_of_255_bytes_with_its_prefix_is_written(tmp_path, size):
    """The bound is the file systems' own: CANCELLED-<name> of 255 bytes is written (and
    is the original's bytes), of 256 refused, nothing written."""
    import shutil

    from .conftest import ROOT

    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "bl-emagnus", fmts / "bl-emagnus")
    spec = fmts / "bl-emagnus" / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    pad = "X" * (size - len("CANCELLED-WTAMC001.txt"))
    spec.write_text(text.replace('name: "WTAMC001.txt"', f'name: "{pad}WTAMC001.txt"'),
                    encoding="utf-8")
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    run = export_recorded(lambda: store, MAPPINGS / "villeneuve-sur-loing-emagnus.yaml",
                          EXAMPLE, tmp_path / "a", RUN, formats_dirs=[fmts])
    name = run.files[0].path.name
    assert len(("CANCELLED-" + name).encode()) == size
    assert cli(db, "runs", "cancel", run.run_id, "--reason", "test").exit_code == 0
    regen = CliRunner().invoke(app, ["regenerate", run.run_id, "--out", str(tmp_path / "r"),
                                     "--cancelled", "--db", db])
    if size > 255:
        assert regen.exit_code == 2, regen.output
        assert f"makes a name of {size} bytes, and file systems take at most 255" in \
            regen.output, regen.output
        assert not (tmp_path / "r").exists()
        return
    assert regen.exit_code == 0, regen.output
    assert (tmp_path / "r" / f"CANCELLED-{name}").read_bytes() == run.files[0].path.read_bytes()


def test_a_cancelled_run_whose_names_the_prefix_makes_too_long_is_refused_clearly(
        db_url, tmp_path):
    """The reviewer's case: a file named in 250 bytes is written, but its run, once
    cancelled, was not by `regenerate --cancelled`: CANCELLED-<name> is 260 bytes, and
    the command failed on the system's OSError naming the folder (exit 2). Now refused
    before anything is written, saying why."""
    import shutil

    from .conftest import ROOT

    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "bl-emagnus", fmts / "bl-emagnus")
    spec = fmts / "bl-emagnus" / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count('name: "WTAMC001.txt"') == 1
    spec.write_text(text.replace('name: "WTAMC001.txt"', f'name: "{"X" * 238}WTAMC001.txt"'),
                    encoding="utf-8")
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPINGS / "villeneuve-sur-loing-emagnus.yaml",
                          EXAMPLE, tmp_path / "a", RUN, formats_dirs=[fmts])
    assert len(run.files[0].path.name.encode()) == 250
    assert cli(db_url, "runs", "cancel", run.run_id, "--reason", "test").exit_code == 0
    regen = CliRunner().invoke(app, ["regenerate", run.run_id, "--out", str(tmp_path / "r"),
                                     "--cancelled", "--db", db_url])
    assert regen.exit_code == 2, regen.output
    assert f"run {run.run_id}: CANCELLED-, put before the name of its file {'X' * 40}…, " \
           "makes a name of 260 bytes, and file systems take at most 255: its files " \
           "cannot be written as a cancelled run's; nothing was written" in regen.output
    assert not (tmp_path / "r").exists()


def test_the_advice_to_cancel_says_when_by_what_the_run_s_answer_is(db_url, tmp_path):
    """'cancel that run first to export it again' read the same whether the trésorerie
    rejected the rôle or nobody knows yet: cancelled while it is on its way, its invoices
    go out twice. A PES run with no acknowledgement says to cancel only if it was rejected
    or never sent; a finance package's run (no acknowledgement comes back to pesgen),
    only if its files were rejected or never imported."""
    store = Store(db_url)
    numbers = ["FA-2026-00101", "FA-2026-00102"]
    rule = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, only(tmp_path, numbers, "two.json"),
                        tmp_path / "b", RUN)
    assert info.value.problems[0].message.endswith(
        "(IdBord 1); cancel that run first to export it again, if the trésorerie rejected it "
        "or it was never sent (no acknowledgement of IdBord 1 is recorded: pesgen acquit FILE "
        "--record; FILE: the PES_ACQUIT the trésorerie's guichet XML returned for it)")
    store.cancel(rule.run_id, "test")
    package = export_recorded(lambda: store, MAPPINGS / "villeneuve-sur-loing-emagnus.yaml",
                              EXAMPLE, tmp_path / "c", RUN)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPINGS / "villeneuve-sur-loing-emagnus.yaml",
                        only(tmp_path, numbers, "two-again.json"), tmp_path / "d", RUN)
    assert info.value.problems[0].message == (
        f"already exported by run {package.run_id} in {package.files[0].path.name} (IdBord 1); "
        "cancel that run first to export it again, if its files were rejected or never "
        "imported")


def test_the_advice_to_cancel_says_what_else_the_cancellation_frees(db_url, tmp_path):
    """A school fixes one family's address and exports that invoice alone: refused, the
    advice was 'cancel that run first', and cancelling a run of 11 invoices to export one
    leaves the 10 others billed nowhere. The refusal says how many more the cancellation
    frees (the run's, or of a run of several bordereaux the bordereau's) and to export
    them with it; an input holding them all hears nothing of it."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, only(tmp_path, ["FA-2026-00104"], "one.json"),
                        tmp_path / "b", RUN)
    assert (f". Cancelling run {run.run_id} frees 10 more invoice(s) than this input holds "
            "(11 in all): they would be billed nowhere until exported again, so export them "
            "with these, the school's whole corrected file (pesgen runs show "
            f"{run.run_id} --invoices lists them), not only the invoices corrected") \
        in str(info.value)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "c", RUN)
    assert "Cancelling" not in str(info.value) and "frees" not in str(info.value)
    store.cancel(run.run_id, "test")
    split = split_mapping(tmp_path)
    parts = export_recorded(lambda: store, split, EXAMPLE, tmp_path / "d", RUN)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, split, only(tmp_path, BORDEREAUX[2][:1], "b2.json"),
                        tmp_path / "e", RUN)
    assert f". Cancelling IdBord 3 of run {parts.run_id} frees 3 more invoice(s) than this " \
           "input holds (4 in all)" in str(info.value)


def test_a_run_whose_other_bordereaux_are_cancelled_is_told_as_holding_one(db_url, tmp_path):
    """IdBord 2 and 3 of a run cancelled, IdBord 1 alone holds active titles: an input
    of IdBord 1's invoices is refused naming that run, not told to pick among several
    bordereaux (the cancelled ones hold no title to cancel)."""
    store = Store(db_url)
    split = split_mapping(tmp_path)
    first = export_recorded(lambda: store, split, EXAMPLE, tmp_path / "a", RUN)
    store.cancel(first.run_id, "rejected", [2, 3])
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, split, only(tmp_path, BORDEREAUX[1], "one.json"),
                        tmp_path / "b", RUN)
    assert str(info.value).startswith(
        f"4 invoice(s) already exported by run(s) {first.run_id}; nothing written"), info.value
    assert "several bordereaux" not in str(info.value), info.value


def test_the_last_cancellation_names_earlier_cancelled_bordereaux_and_those_exported_again(
        db_url, tmp_path):
    """IdBord 2 of a run of three cancelled, its invoices exported again by another run;
    IdBord 3 cancelled, not exported again; then IdBord 1, the last: the next step named
    only IdBord 1 ('never IdBord 1 again'), as if the school's whole file held its
    invoices only. It now names IdBord 3's invoices as going out in that export too, and
    IdBord 2's, exported again since, as refused by it (leave_out aside)."""
    store = Store(db_url)
    split = split_mapping(tmp_path)
    rid = export_recorded(lambda: store, split, EXAMPLE, tmp_path / "a", RUN).run_id
    assert cli(db_url, "runs", "cancel", rid, "--reason", "r2", "--bordereau", "2"
               ).exit_code == 0
    again = export_recorded(lambda: store, split, only(tmp_path, BORDEREAUX[2], "two.json"),
                            tmp_path / "b", RUN)
    assert [f.bordereau for f in again.files] == [4]
    assert cli(db_url, "runs", "cancel", rid, "--reason", "r3", "--bordereau", "3"
               ).exit_code == 0
    on = store.get_run(rid)["cancelled_bordereaux"][3]["cancelled_at"]
    last = cli(db_url, "runs", "cancel", rid, "--reason", "r1", "--bordereau", "1")
    assert last.exit_code == 0, last.output
    step = last.stdout.splitlines()[1]
    assert step == (_export_again(rid, db_url, tmp_path / "a", "1, 3").replace(
        str(MAPPING.resolve()), str(split))
        + f"; the invoices of IdBord 3 (on {on}), cancelled before, go out in that export "
        f"too; {len(BORDEREAUX[2])} invoice(s) of IdBord 2, cancelled before, were exported "
        f"again since, by run {again.run_id} (IdBord 4): it refuses them, unless the "
        "mapping's policies.already_exported: leave_out leaves them out"), step



def test_the_last_cancellation_names_earlier_bordereaux_unchecked_when_the_store_fails(
        db_url, tmp_path, monkeypatch):
    """The last cancellation is recorded before the earlier cancelled bordereaux are read
    again (what holds their invoices now): a store that fails then does not make the
    command fail after recording; the next step names those bordereaux, going out in that
    export too, and says they were not checked, and why."""
    store = Store(db_url)
    split = split_mapping(tmp_path)
    rid = export_recorded(lambda: store, split, EXAMPLE, tmp_path / "a", RUN).run_id
    for n in ("3", "2"):
        assert cli(db_url, "runs", "cancel", rid, "--reason", "r", "--bordereau", n
                   ).exit_code == 0
    on = {n: store.get_run(rid)["cancelled_bordereaux"][n]["cancelled_at"] for n in (2, 3)}

    def failing(self, bordereaux):
        raise StateError("the store stopped answering")

    monkeypatch.setattr(Store, "each_exported_again", failing)
    last = cli(db_url, "runs", "cancel", rid, "--reason", "r1", "--bordereau", "1")
    assert last.exit_code == 0, last.output
    step = last.stdout.splitlines()[1]
    assert step.endswith(
        f"; the invoices of IdBord 2 (on {on[2]}), 3 (on {on[3]}), cancelled before, go out "
        "in that export too; IdBord 2's invoices were not checked for an export since (the "
        "store stopped answering); IdBord 3's invoices were not checked for an export since "
        "(the store stopped answering)"), step


def test_the_export_again_step_quotes_an_input_path_and_says_what_input_is_unrecorded(
        db_url, tmp_path):
    """The next: line's export is pasted into a shell: an input in a folder with a space
    comes out quoted, so the pasted command reads that file; a run recorded before pesgen
    kept the input's path gives INPUT and says what it stands for (the file the run read,
    by its name). mut56 left three mutants of this alive: FILE for INPUT, the note
    dropped, the path unquoted."""
    import shlex
    import shutil

    folder = tmp_path / "exports du trimestre"
    folder.mkdir()
    source = folder / "school-export.json"
    shutil.copyfile(EXAMPLE, source)
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, source, tmp_path / "a", RUN)
    done = cli(db_url, "runs", "cancel", run.run_id, "--reason", "rejected")
    assert done.exit_code == 0, done.output
    step = done.stdout.splitlines()[1]
    assert f" --input {shlex.quote(str(source.resolve()))} --out " in step, step
    command = shlex.split(step.split("`pesgen export ", 1)[1].split("`", 1)[0])
    assert command[command.index("--input") + 1] == str(source.resolve())
    again = CliRunner().invoke(app, ["export", *command[:-1], "--date", "2026-11-23"])
    assert again.exit_code == 0, again.output
    assert "(IdBord 2, 11 title(s), total 2527.25" in again.output, again.output

    other = Store(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    url = str(other.engine.url)
    run = export_recorded(lambda: other, MAPPING, EXAMPLE, tmp_path / "b", RUN)
    with other.engine.begin() as conn:
        policies = json.loads(conn.execute(sa.text("SELECT policies FROM runs")).scalar_one())
        del policies["input_path"]
        conn.execute(sa.text("UPDATE runs SET policies = :p"), {"p": json.dumps(policies)})
    other.engine.dispose()
    done = cli(url, "runs", "cancel", run.run_id, "--reason", "rejected")
    assert done.exit_code == 0, done.output
    step = done.stdout.splitlines()[1]
    assert " --input INPUT --out " in step, step
    assert ("--dry-run` (INPUT: the run read school-export.json; its folder was not "
            "recorded), and export it") in step, step
