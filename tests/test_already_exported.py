"""policies.already_exported: leave_out — an input holding invoices an active run of the
same budget, exercise and format holds at the same amount (a school software exporting
every invoice of the year for its second term) exports the others and reports those,
recorded with the run; anything else the guard refuses is still refused
(docs/state.md, "Leaving out what was exported already")."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pesgen.export as export_module
from pesgen.cli import app
from pesgen.errors import InputDataError, MappingError, StateError
from pesgen.mapping import load_mapping
from pesgen.runs import export_recorded, regenerate
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
TERM2 = date(2026, 12, 15)  # after the first term's direct debit date (2026-12-05)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
POLICY = ("  zero_total: leave_out", "  zero_total: leave_out\n  already_exported: leave_out")
TITRES = MAPPINGS / "villeneuve-sur-loing-titres.yaml"


def _leaving(tmp_path: Path, source: Path = MAPPING) -> Path:
    """The mapping with policies.already_exported: leave_out."""
    return mapping_copy(tmp_path / "m", source, POLICY)[0]


def _example() -> dict:
    return json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))


def _term2(tmp_path: Path, *changes, new: bool = True) -> Path:
    """The example's invoices again, each (number, key, value) change made to the
    invoice of that number (its first line's amount: key 'amount0'), and a new invoice
    FA-2026-00201 (FA-2026-00101's family, debited in January) when ``new``."""
    data = _example()
    by_number = {inv["number"]: inv for inv in data["invoices"]}
    for number, key, value in changes:
        inv = by_number[number]
        if key == "amount0":  # the invoice's total follows
            inv["total"] = str(Decimal(inv["total"]) - Decimal(inv["lines"][0]["amount"])
                               + Decimal(value))
            inv["lines"][0] = {**inv["lines"][0], "unit_price": value, "amount": value}
        else:
            inv[key] = value
    if new:
        added = json.loads(json.dumps(by_number["FA-2026-00101"]))
        added["number"] = "FA-2026-00201"
        added["payment"]["debit_date"] = "2027-01-05"
        data["invoices"].append(added)
    path = tmp_path / "term2.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_the_invoices_exported_already_are_left_out_and_the_new_one_exported(db_url, tmp_path):
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    term2 = _term2(tmp_path)
    second = export_recorded(lambda: store, _leaving(tmp_path), term2, tmp_path / "b", TERM2)
    assert second.titles == 1 and second.first_number == 2
    assert [inv for inv, *_ in second.invoices] == ["FA-2026-00201"]
    held = {lo.invoice: lo for lo in second.left_out if lo.policy == "already_exported"}
    # the first run's eleven titles, each at its input record, with the run, file, IdBord
    assert sorted(held) == sorted(inv for inv, *_ in first.invoices)
    name = first.files[0].path.name
    assert held["FA-2026-00101"].origin == f"{term2}:$.invoices[0]"
    assert held["FA-2026-00101"].reason == (
        f"exported already by run {first.run_id} in {name} (IdBord 1), at the same amount "
        "282.75")
    # the zero total is left out by its own policy, not as exported (no run holds it)
    assert [(lo.invoice, lo.policy) for lo in second.left_out
            if lo.policy != "already_exported"] == [("FA-2026-00106", "zero_total")]
    # their direct debit date (2026-12-05), passed by TERM2, refuses nothing: they are
    # not exported. Without the policy it refuses the run (docs/state.md)
    with pytest.raises(InputDataError) as info:
        export_recorded(lambda: store, MAPPING, term2, tmp_path / "c", TERM2)
    assert {p.rule for p in info.value.problems} == {"sepa.debit-date"}
    # recorded: runs find says which run left it out, and why
    [left] = store.find_left_out("FA-2026-00104")
    assert left["run_id"] == second.run_id and left["policy"] == "already_exported"
    assert left["reason"].startswith(f"exported already by run {first.run_id}")
    found = CliRunner().invoke(app, ["runs", "find", "FA-2026-00104", "--db", db_url])
    assert found.exit_code == 0, found.output  # a run holds it
    lines = [x for x in found.output.splitlines() if not x.startswith("  policy: ")]
    assert lines[0].startswith(f"FA-2026-00104 ({EXAMPLES / 'school-export.json'}:"
                               f"$.invoices[3]): run {first.run_id} "), lines[0]
    assert lines[1] == "  Hélios: IdBord 1 no acknowledgement recorded"
    assert lines[2].startswith("  PayFiP: none (")  # no link made for it
    # not 'not exported': the first run exported it
    assert lines[3].startswith(f"FA-2026-00104: left out by run {second.run_id} (")
    assert lines[3].endswith(f"from {term2}:$.invoices[3]: exported already by run "
                             f"{first.run_id} in {name} (IdBord 1), at the same amount 66.00 "
                             "(policy already_exported)")


def test_the_policy_leaves_out_no_invoice_of_another_amount_budget_or_format(db_url, tmp_path):
    """Left out only at the same amount, in the same budget, exercise and format: a
    corrected invoice, a number given again, a trial of another format are for a person
    to decide, and refused as before (run.duplicate), the others left out all the same."""
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    # FA-2026-00110's first line at 90.00 instead of 85.00 (a corrected invoice)
    term2 = _term2(tmp_path, ("FA-2026-00110", "amount0", "90.00"))
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, _leaving(tmp_path), term2, tmp_path / "b", RUN)
    [problem] = info.value.problems
    assert (problem.rule, problem.invoice) == ("run.duplicate", "FA-2026-00110")
    assert first.run_id in problem.message and "this one of" in problem.message
    assert not (tmp_path / "b").exists()
    # a run of another format (pes-titres, the same SIRET, budget and exercise) holds them
    store2 = Store(f"sqlite:///{tmp_path / 'titres.db'}")
    export_recorded(lambda: store2, TITRES, EXAMPLES / "school-export.json", tmp_path / "t",
                    RUN)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store2, _leaving(tmp_path), _term2(tmp_path), tmp_path / "c",
                        RUN)
    assert len(info.value.problems) == 11
    assert {p.rule for p in info.value.problems} == {"run.duplicate"}
    assert "of format pes-titres" in str(info.value)


def test_the_policy_leaves_out_no_invoice_of_another_exercise(db_url, tmp_path):
    """The school's numbers may start again each year: an invoice of the same number in
    last exercise's rôle is refused, with that run's exercise named."""
    store = Store(db_url)
    last_year = mapping_copy(tmp_path / "y", MAPPING, ("exercise: 2026", "exercise: 2025"))[0]
    export_recorded(lambda: store, last_year, EXAMPLES / "school-export.json", tmp_path / "a",
                    RUN)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, _leaving(tmp_path), _term2(tmp_path, new=False),
                        tmp_path / "b", RUN)
    assert {p.rule for p in info.value.problems} == {"run.duplicate"}
    assert len(info.value.problems) == 11
    assert "exercise 2025" in info.value.problems[0].message


def test_an_invoice_twice_in_the_input_is_refused_left_out_or_not(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "a",
                    RUN)
    data = _example()
    data["invoices"].append(data["invoices"][2])  # FA-2026-00103, held, and twice here
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputDataError) as info:
        export_recorded(lambda: store, _leaving(tmp_path), twice, tmp_path / "b", RUN)
    [problem] = info.value.problems
    assert problem.rule == "input.duplicate-invoice" and problem.invoice == "FA-2026-00103"
    assert problem.record == f"{twice}:$.invoices[12]"


def test_regenerate_leaves_out_what_the_run_left_out_after_its_holder_is_cancelled(
        db_url, tmp_path):
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    second = export_recorded(lambda: store, _leaving(tmp_path), _term2(tmp_path),
                             tmp_path / "b", TERM2)
    store.cancel(first.run_id, "trésorerie rejected the rôle")
    # the store no longer holds them: the rebuild reads the run's record, not the store
    files = regenerate(store, second.run_id, tmp_path / "r")
    recorded = {f.path.name: f.path.read_bytes() for f in second.files}
    assert {p.name: p.read_bytes() for p in files if p.name in recorded} == recorded
    # the same input exported again now exports the freed invoices, and leaves out the
    # new one, which the second run holds
    third = export_recorded(lambda: store, _leaving(tmp_path), _term2(tmp_path),
                            tmp_path / "c", RUN)
    assert sorted(inv for inv, *_ in third.invoices) == sorted(inv for inv, *_ in first.invoices)
    assert [lo.invoice for lo in third.left_out if lo.policy == "already_exported"] == [
        "FA-2026-00201"]


def test_a_holder_cancelled_while_the_export_runs_refuses_it(db_url, tmp_path, monkeypatch):
    """Read before the input, the store may change before the commit: an invoice left
    out as exported already, whose run is cancelled meanwhile, would be billed nowhere."""
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    prepare = export_module.Exporter.prepare

    def cancelled_meanwhile(self, *args, **kwargs):
        prepared = prepare(self, *args, **kwargs)
        store.cancel(first.run_id, "cancelled by another technician meanwhile")
        return prepared

    monkeypatch.setattr(export_module.Exporter, "prepare", cancelled_meanwhile)
    term2 = _term2(tmp_path)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, _leaving(tmp_path), term2, tmp_path / "b", TERM2)
    assert info.value.exit_code == 7
    assert {p.rule for p in info.value.problems} == {"run.left-out-freed"}
    assert len(info.value.problems) == 11
    assert "nothing written, no number used" in str(info.value)
    assert {p.record for p in info.value.problems} >= {f"{term2}:$.invoices[0]"}
    assert not (tmp_path / "b").exists()
    monkeypatch.undo()
    # no number used: the next run takes IdBord 2
    again = export_recorded(lambda: store, _leaving(tmp_path), _term2(tmp_path, new=False),
                            tmp_path / "c", RUN)
    assert again.first_number == 2 and again.titles == 11


def test_the_refusal_names_the_policy_when_it_would_leave_them_out(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "a",
                    RUN)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, _term2(tmp_path), tmp_path / "b", RUN)
    where = load_mapping(MAPPING).where("policies")
    assert (f"or have them left out and reported: policies.already_exported: leave_out in the "
            f"mapping ({where})") in str(info.value)
    # one of them at another amount: the policy would not leave it out, nor is it named
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, _term2(tmp_path, ("FA-2026-00110", "amount0",
                                                                  "90.00")),
                        tmp_path / "b", RUN)
    assert "Only some of this input's invoices" in str(info.value)
    assert "already_exported" not in str(info.value)


def test_a_dry_run_leaves_them_out_too_and_records_nothing(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "a",
                    RUN)
    dry = export_recorded(lambda: Store(store.url, read_only=True), _leaving(tmp_path),
                          _term2(tmp_path), None, TERM2, dry_run=True)
    assert dry.titles == 1 and dry.run_id is None
    assert sum(lo.policy == "already_exported" for lo in dry.left_out) == 11
    assert len(store.list_runs()) == 1


def test_the_cli_summary_lists_each_left_out_invoice_with_its_holder(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    runner = CliRunner()
    first = runner.invoke(app, ["export", "-m", str(MAPPING), "-i",
                                str(EXAMPLES / "school-export.json"), "--out",
                                str(tmp_path / "a"), "--date", "2026-11-23", "--db", db,
                                "--create-store"])
    assert first.exit_code == 0, first.output
    # one policy at work (the zero total): counted, not broken down
    assert "left out: 1" in first.output.splitlines()
    result = runner.invoke(app, ["export", "-m", str(_leaving(tmp_path)), "-i",
                                 str(_term2(tmp_path)), "--out", str(tmp_path / "b"),
                                 "--date", "2026-12-15", "--db", db])
    assert result.exit_code == 0, result.output
    assert "titles: 1, total 282.75" in result.output
    assert "left out: 12 (already_exported ×11, zero_total ×1)" in result.output
    assert (":$.invoices[3]): exported already by run " in result.output
            and "(IdBord 1), at the same amount 66.00 (policy already_exported)"
            in result.output)
    # nothing left out: no count at all
    none = runner.invoke(app, ["export", "-m", str(_leaving(tmp_path)), "-i",
                               str(_other(tmp_path)), "--out", str(tmp_path / "c"),
                               "--date", "2026-11-23", "--db", db])
    assert none.exit_code == 0, none.output
    assert "titles: 1, " in none.output and "left out" not in none.output


def test_the_policy_takes_refuse_or_leave_out_only(tmp_path):
    bad = mapping_copy(tmp_path, MAPPING, (POLICY[0], POLICY[0] + "\n  already_exported: skip"))
    with pytest.raises(MappingError) as info:
        load_mapping(bad[0])
    assert f":{bad[1][0]}:" in str(info.value.problems[0])
    assert "policies.already_exported" in str(info.value.problems[0])


def test_cancelling_the_holder_names_the_runs_that_left_its_invoices_out(tmp_path):
    """Cancelled, the first run bills them no more, and the run that left them out as
    exported already never did: `runs cancel` says so, naming that run and the invoices."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    second = export_recorded(lambda: store, _leaving(tmp_path), _term2(tmp_path),
                             tmp_path / "b", TERM2)
    # a run of another holder's invoices says nothing of them
    third = export_recorded(lambda: store, MAPPING, _other(tmp_path), tmp_path / "c", RUN)
    result = CliRunner().invoke(app, ["runs", "cancel", third.run_id, "--reason", "test",
                                      "--db", db])
    assert result.exit_code == 0, result.output
    assert "left out" not in result.output
    result = CliRunner().invoke(app, ["runs", "cancel", first.run_id, "--reason",
                                      "rejected by the trésorerie", "--db", db])
    assert result.exit_code == 0, result.output
    held = sorted(inv for inv, *_ in first.invoices)
    assert (f"note: run {second.run_id} left out 11 of these invoice(s) as exported already "
            f"(policy already_exported): {', '.join(held[:5])}, … 6 more. No active run bills "
            "them now: export them again") in " ".join(result.output.split())


def test_a_listing_of_five_is_whole_and_longer_ones_are_cut_after_five():
    """The notes of runs cancel name five invoices (or files), then count the others: five
    are named whole, never followed by '… 0 more'."""
    from pesgen.cli import _listed

    five = [f"FA-2026-0010{i}" for i in range(1, 6)]
    assert _listed(five) == five
    assert _listed([*five, "FA-2026-00106"]) == [*five, "… 1 more"]


def _other(tmp_path: Path) -> Path:
    """FA-2026-00102 alone, numbered FB-2026-00202: an invoice no other run holds."""
    data = _example()
    data["invoices"] = [dict(data["invoices"][1], number="FB-2026-00202")]
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_runs_extract_says_the_scratch_store_s_dry_run_exports_what_the_run_left_out(
        tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "a", RUN)
    second = export_recorded(lambda: store, _leaving(tmp_path), _term2(tmp_path),
                             tmp_path / "b", TERM2)
    result = CliRunner().invoke(app, ["runs", "extract", second.run_id, "--out",
                                      str(tmp_path / "x"), "--db", db])
    assert result.exit_code == 0, result.output
    assert ("the run left out 11 invoice(s) as exported already (policy already_exported: "
            "other runs of its store held them): the empty store holds none, so the dry run "
            "exports them too") in " ".join(result.output.split())


def test_the_values_of_the_invoices_left_out_are_not_counted_in_the_case_note(tmp_path):
    """policies.case: upper says how many values it upper-cased in the run: those of an
    invoice left out as exported already are not in its files, nor in that count."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "a",
                    RUN)
    term2 = _term2(tmp_path)
    left = export_recorded(lambda: store, _leaving(tmp_path), term2, tmp_path / "b", TERM2)
    # the same run's invoices alone (the new one, and the zero total), in a store of none
    data = json.loads(term2.read_text(encoding="utf-8"))
    data["invoices"] = [inv for inv in data["invoices"]
                        if inv["number"] in ("FA-2026-00106", "FA-2026-00201")]
    alone = tmp_path / "alone.json"
    alone.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
    expected = export_recorded(lambda: fresh, MAPPING, alone, tmp_path / "c", TERM2)

    def case_note(result):
        [note] = [n.detail for n in result.notes if n.policy == "case"]
        return note

    assert case_note(left) == case_note(expected)
    # the 4 lines of the new one: the zero total's are not counted either (left out)
    assert "line.label ×4" in case_note(left)


def test_cancelling_one_bordereau_names_only_its_invoices_left_out(tmp_path):
    """The holder split in three bordereaux of 4 titles, the trésorerie rejected IdBord 2:
    cancelled alone, it frees its own invoices only; the later run's note names those,
    not the invoices of IdBord 1 and 3, which stay billed."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    split = mapping_copy(tmp_path / "s", MAPPING, (
        "  asap_delay_days: 0\n", "  asap_delay_days: 0\n  max_pieces_per_bordereau: 4\n"))[0]
    first = export_recorded(lambda: store, split, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    assert [f.bordereau for f in first.files] == [1, 2, 3]
    second = export_recorded(lambda: store, _leaving(tmp_path), _term2(tmp_path),
                             tmp_path / "b", TERM2)
    assert sum(lo.policy == "already_exported" for lo in second.left_out) == 11
    result = CliRunner().invoke(app, ["runs", "cancel", first.run_id, "--bordereau", "2",
                                      "--reason", "rejected by the trésorerie", "--db", db])
    assert result.exit_code == 0, result.output
    # IdBord 2 held the example's 5th, 7th, 8th and 10th titles (FA-2026-00106, a zero
    # total, is in none)
    assert (f"note: run {second.run_id} left out 4 of these invoice(s) as exported already "
            "(policy already_exported): FA-2026-00105, FA-2026-00107, FA-2026-00108, "
            "FA-2026-00110. No active run bills them now") in " ".join(result.output.split())


def test_the_cancellation_stands_when_the_runs_that_left_out_its_invoices_cannot_be_read(
        tmp_path, monkeypatch):
    """The note is read after the cancellation is recorded: a store that cannot be read
    for it (locked meanwhile) is said in a note, and the cancellation stands (exit 0)."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)

    def unreadable(self, run_id, id_bords):
        raise StateError("the state store is locked")

    monkeypatch.setattr(Store, "left_out_as_held", unreadable)
    result = CliRunner().invoke(app, ["runs", "cancel", first.run_id, "--reason",
                                      "rejected by the trésorerie", "--db", db])
    assert result.exit_code == 0, result.output
    assert ("note: which later runs left out these invoices as exported already could not "
            "be read: the state store is locked") in " ".join(result.output.split())
    assert store.get_run(first.run_id)["status"] == "cancelled"


def test_the_refusals_commands_name_the_store_the_export_was_given(tmp_path):
    """The already-exported refusal says the commands to run next (runs show, runs cancel,
    acquit --record) with the --db the export was given, as the runs commands' next steps
    do: pasted without it, they read the default store, another one (sup62's rehearsal).
    A store not named so (the library's, the default) gets none."""
    from pesgen.errors import ExitCode

    from .conftest import run_cli

    db = tmp_path / "state.sqlite3"
    args = ("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json", "--date",
            "2026-11-23", "--db", db)
    first = run_cli(*args, "-o", tmp_path / "a", "--create-store", "-q")
    assert first.exit_code == 0, first.output
    again = run_cli(*args, "-o", tmp_path / "b")
    assert again.exit_code == ExitCode.STATE, again.output
    [run] = [r.id for r in Store(f"sqlite:///{db}").list_runs()]
    said = " ".join(again.output.split())
    option = f"--db sqlite:///{db.resolve()}"
    assert f"nothing to export again (pesgen runs show {run} {option})" in said, said
    # the same invoices from another file (not the same bytes): cancel first, if no
    # acknowledgement says the trésorerie took them
    other = tmp_path / "again.json"
    other.write_bytes((EXAMPLES / "school-export.json").read_bytes() + b"\n")
    moved = run_cli(*args[:4], other, *args[5:], "-o", tmp_path / "c", "--format", "json")
    assert moved.exit_code == ExitCode.STATE, moved.output
    problem = json.loads(moved.stdout)["problems"][0]["message"]
    assert problem.endswith("cancel that run first to export it again, if the trésorerie "
                            "rejected it or it was never sent (no acknowledgement of IdBord 1 "
                            f"is recorded: pesgen acquit FILE --record {option}; FILE: the "
                            "PES_ACQUIT the trésorerie's guichet XML returned for it)"), problem
    assert Store(f"sqlite:///{db}").db_option == ""


def test_the_refusal_names_the_store_pesgen_db_gave(tmp_path, monkeypatch):
    """A store named by PESGEN_DB (not --db) is the one the refusal's commands name, with
    --db: pasted in another shell without the variable, they would read the default
    store (mut56: a mutant naming only a --db store survived)."""
    from pesgen.errors import ExitCode

    from .conftest import run_cli

    db = tmp_path / "state.sqlite3"
    monkeypatch.setenv("PESGEN_DB", f"sqlite:///{db}")
    args = ("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json", "--date",
            "2026-11-23")
    first = run_cli(*args, "-o", tmp_path / "a", "--create-store", "-q")
    assert first.exit_code == 0, first.output
    again = run_cli(*args, "-o", tmp_path / "b")
    assert again.exit_code == ExitCode.STATE, again.output
    [run] = [r.id for r in Store(f"sqlite:///{db}").list_runs()]
    said = " ".join(again.output.split())
    assert f"nothing to export again (pesgen runs show {run} --db sqlite:///" in said, said
