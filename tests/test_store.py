"""State store: numbering, duplicate guard, failures that consume nothing, cancel,
regenerate, concurrency — on SQLite and on a real PostgreSQL server.

PostgreSQL runs when PESGEN_TEST_PG_URL is set (``.ci/run`` starts a server on
loopback and sets it); under CI a missing server is a failure, not a skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pesgen.errors import InputDataError, OutputInvalidError, StateError, UsageError
from pesgen.export import export
from pesgen.keys import written_otherwise
from pesgen.runs import bundle_snapshot, export_recorded, regenerate
from pesgen.store import Store, unpack

from .conftest import EXAMPLES, MAPPINGS, ROOT, record_as_older, state_database
from .mapping_support import mapping_copy
from .test_invoice_key import LOOKALIKES

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"


def _invoices(numbers: dict[str, str], tmp_path: Path, name: str) -> Path:
    """The example export with its invoices renumbered (old -> new)."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"] = [dict(inv, number=numbers[inv["number"]]) for inv in data["invoices"]
                        if inv["number"] in numbers]
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _variant(tmp_path: Path, tag: str) -> Path:
    """The example with every invoice number suffixed, so runs share neither invoices
    nor NumDettes (the mapping's NumDette is the number's digits: the suffix has some).
    Two digits per character of the tag (printable ASCII), so that a tag of two keeps
    NumDette at 13 digits (9 + 4), the most pes.num-dette-keys lets through."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    assert all(32 <= ord(c) < 132 for c in tag) and len(tag) <= 2, tag
    code = "".join(f"{ord(c) - 32:02d}" for c in tag)  # one tag, one code: "b" -> "66"
    return _invoices({inv["number"]: f"{inv['number']}-{code}" for inv in data["invoices"]},
                     tmp_path, f"export-{tag}.json")


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_sequential_numbering_and_configured_start(db_url, tmp_path):
    store = Store(db_url)
    key = ("21450999400015", "00", 2026, "06")
    store.set_start(key, 42)
    with pytest.raises(StateError, match="once"):
        store.set_start(key, 50)  # not twice
    numbers = []
    for tag in ("1", "2", "3"):
        r = export_recorded(lambda: store, MAPPING, _variant(tmp_path, tag),
                            tmp_path / f"out{tag}", RUN)
        numbers.append(r.first_number)
        assert r.files[0].path.name.endswith(f"_{r.first_number:07d}.xml")
    assert numbers == [42, 43, 44]
    with pytest.raises(StateError):
        store.set_start(key, 1)  # after exports: refused


def test_failed_exports_consume_no_number_and_write_nothing(db_url, tmp_path):
    store = Store(db_url)
    # 1. bad input
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payment"]["mandate"]["iban"] = "FR7630006000011234567890180"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputDataError):
        export_recorded(lambda: store, MAPPING, bad, tmp_path / "o1", RUN)
    assert _files(tmp_path / "o1") == []
    # 2. validation failure of the rendered file (a format whose template breaks the XSD)
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "pes-ormc", fmts / "pes-ormc")
    tpl = fmts / "pes-ormc" / "pes-aller.xml.j2"
    tpl.write_text(tpl.read_text(encoding="utf-8").replace('<TypPce V="15"/>', '<TypPce V="01"/>'),
                   encoding="utf-8")
    with pytest.raises(OutputInvalidError):
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "o2",
                        RUN, formats_dirs=[fmts])
    assert _files(tmp_path / "o2") == []
    # 3. a crash between render and commit

    def crash() -> None:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "o3",
                        RUN, before_commit=crash)
    assert _files(tmp_path / "o3") == []
    assert store.list_runs() == []
    assert store.find_invoice("FA-2026-00101") == []
    # none of the failures consumed a number
    ok = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "o4",
                         RUN)
    assert ok.first_number == 1


def test_a_file_taking_a_name_before_the_commit_refuses_the_run_and_records_nothing(
        db_url, tmp_path):
    """The names are checked free again right before the run is committed: a file that
    took one meanwhile (another export into the same folder) refuses the run, nothing
    recorded, no number used, and that file left as it is (else the run would be
    recorded, then its files refused: a recorded run with nothing in place)."""
    import re

    other = Store(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    names = [f.path.name for f in export_recorded(
        lambda: other, MAPPING, EXAMPLES / "school-export.json", tmp_path / "other",
        RUN).files]
    store = Store(db_url)
    out = tmp_path / "out"

    def arrives() -> None:
        (out / names[0]).write_bytes(b"theirs")

    with pytest.raises(UsageError, match=re.escape(
            f"{out / names[0]} appeared during the export; nothing written")):
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", out, RUN,
                        before_commit=arrives)
    assert _files(out) == [names[0]]
    assert (out / names[0]).read_bytes() == b"theirs"
    assert store.list_runs() == []
    assert export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                           tmp_path / "again", RUN).first_number == 1


def test_a_crash_after_the_commit_leaves_a_recorded_run_that_regenerate_completes(
        db_url, tmp_path):
    """Recorded, then renamed into place: a crash in between never leaves a file whose
    IdBord the next run would take again."""
    store = Store(db_url)
    out = tmp_path / "out"

    class PowerCut(BaseException):
        """The process dies: no handler runs (an exception pesgen catches would not do)."""

    def crash() -> None:
        raise PowerCut("power cut")

    with pytest.raises(PowerCut, match="power cut"):
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", out, RUN,
                        before_publish=crash)
    [run] = store.list_runs()
    assert run.first_number == 1
    assert all(name.startswith(".pesgen-") and name.endswith(".part") for name in _files(out))
    # the number is used once: the next run gets 2, and the invoices stay taken
    assert export_recorded(lambda: store, MAPPING, _variant(tmp_path, "b"), tmp_path / "b",
                           RUN).first_number == 2
    with pytest.raises(StateError):
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "c",
                        RUN)
    for part in out.iterdir():
        part.unlink()
    written = regenerate(store, run.id, out)
    recorded = {f["name"] for f in store.get_run(run.id)["files"]}
    assert recorded and recorded <= {p.name for p in written}
    assert _files(out) == sorted(p.name for p in written)


def test_files_that_cannot_be_put_in_place_name_the_recorded_run(db_url, tmp_path,
                                                                  monkeypatch):
    store = Store(db_url)

    def full_disk(temps):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pesgen.runs.commit", full_disk)
    out = tmp_path / "out"
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", out, RUN)
    [run] = store.list_runs()
    message = str(info.value)
    assert f"run {run.id} is recorded (IdBord 1)" in message
    assert "No space left on device" in message
    assert f"pesgen regenerate {run.id} --out DIR" in message
    assert _files(out) == []  # the temporary files are removed


def test_duplicate_refused_then_cancel_then_reexport(db_url, tmp_path):
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    # a second run sharing one invoice is refused, naming the run, its file and IdBord
    partial = _invoices({"FA-2026-00104": "FA-2026-00104", "FA-2026-00111": "NEW-1"}, tmp_path,
                        "partial.json")
    with pytest.raises(StateError) as exc:
        export_recorded(lambda: store, MAPPING, partial, tmp_path / "b", RUN)
    [problem] = exc.value.problems  # its NumDette is its own: not a second problem
    assert problem.rule == "run.duplicate" and problem.invoice == "FA-2026-00104"
    assert problem.record == f"{partial}:$.invoices[0]"
    assert first.run_id in problem.message and "IdBord 1" in problem.message
    assert first.files[0].path.name in problem.message
    assert _files(tmp_path / "b") == []
    # cancelling frees the invoices; the number is not reused
    store.cancel(first.run_id, "trésorerie rejected the rôle")
    again = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "c", RUN)
    assert again.first_number == 2
    held = [h for h in store.find_invoice("FA-2026-00104") if h["active"]]
    assert [h["run_id"] for h in held] == [again.run_id]
    with pytest.raises(StateError, match="already cancelled"):
        store.cancel(first.run_id, "twice")


def test_paid_online_finds_the_payments_through_a_cancelled_title_keyed_or_not(
        db_url, tmp_path, monkeypatch):
    """``Store.paid_online`` (an export's check of its invoices paid through a cancelled
    title) looks the payments up by their invoice's key, a chunk of numbers a query,
    and those recorded with no key (a row written otherwise than by a link) once for
    all the chunks: both are found, in whichever chunk asks for them, by the number as
    the export wrote it (compared like the guard). Not a payment through an active
    title, nor one refunded, nor another collectivity's."""
    import pesgen.store as st
    from pesgen.payfip.tables import operations, payments

    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    store.cancel(first.run_id, "trésorerie rejected the rôle")
    again = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "b", RUN)
    coll, at = "21450999400015", "2026-11-24T10:00:00Z"
    paid = [  # invoice, its key as recorded, the run paid through, status, collectivity
        ("FA-2026-00101", "fa-2026-00101", first.run_id, "paid", coll),
        ("FA-2026-00102", None, first.run_id, "paid", coll),
        ("FA-2026-00103", "fa-2026-00103", again.run_id, "paid", coll),
        ("FA-2026-00104", "fa-2026-00104", first.run_id, "refunded", coll),
        ("FA-2026-00105", "fa-2026-00105", first.run_id, "paid", "21450999400099"),
        ("FA-2026-00107", None, first.run_id, "paid", coll)]
    with store.engine.begin() as conn:
        conn.execute(operations.insert(), [
            {"id_op": f"op-{inv}", "id_coll": id_coll, "invoice": inv, "run_id": run,
             "numcli": "012345", "exer": "2026", "refdet": inv[-5:], "amount_cents": 100,
             "mel": "famille@example.org", "objet": "FACTURE", "saisie": "W",
             "endpoint": "http://127.0.0.1:9/tpa", "created_at": at, "status": "paid"}
            for inv, _key, run, _status, id_coll in paid])
        conn.execute(payments.insert(), [
            {"id_coll": id_coll, "invoice": inv, "invoice_key": key, "status": status,
             "amount_cents": 100, "paid_cents": 100, "paid_at": at, "id_op": f"op-{inv}",
             "last_id_op": f"op-{inv}", "refdet": inv[-5:], "created_at": at,
             "updated_at": at} for inv, key, _run, status, id_coll in paid])
    monkeypatch.setattr(st, "_LOOKED_UP", 2)  # three chunks of the numbers below
    found = store.paid_online(coll, [" fa-2026-00101", "FA-2026-00103", "FA-2026-00104",
                                     "FA-2026-00105", "fa-2026-00102", "FA-2026-00106"])
    assert {inv: (p["id_op"], p["run_id"], p["id_bord"]) for inv, p in found.items()} == {
        " fa-2026-00101": ("op-FA-2026-00101", first.run_id, 1),
        "fa-2026-00102": ("op-FA-2026-00102", first.run_id, 1)}
    assert store.paid_online(coll, []) == {}


def test_the_guard_on_a_run_of_several_chunks_lists_its_problems_in_the_input_s_order(
        db_url, tmp_path):
    """The guard looks a run's numbers up 500 a query, from its titles (bordereaux of
    400 here): 1 200 invoices held, 1 200 of 1 300 in another order, 1 200 NumDettes
    held by other invoices are each said once, in the order of the input refused, with
    the messages of a run of a few (the same input, only some held, NumDettes)."""
    from .test_scale import _bench_input

    store = Store(db_url)
    mapping, _ = mapping_copy(tmp_path, MAPPING, ("\noutput:\n",
                                                  "\noutput:\n  max_pieces_per_bordereau: 400\n"),
                              name="split400.yaml")
    source = _bench_input(tmp_path / "a.json", 1200)
    first = export_recorded(lambda: store, mapping, source, tmp_path / "a", RUN)
    assert [f.bordereau for f in first.files if f.bordereau] == [1, 2, 3]
    data = json.loads(source.read_text(encoding="utf-8"))
    numbers = [inv["number"] for inv in data["invoices"]]

    def refused(invoices: list[dict], name: str) -> StateError:
        path = tmp_path / name
        path.write_text(json.dumps(dict(data, invoices=invoices)), encoding="utf-8")
        with pytest.raises(StateError) as info:
            export_recorded(lambda: store, mapping, path, tmp_path / name[:-5], RUN)
        assert _files(tmp_path / name[:-5]) == []
        return info.value

    # the same input again: every invoice, its NumDette its own (not said twice)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, mapping, source, tmp_path / "b", RUN)
    same = info.value
    assert [(p.rule, p.invoice, p.record) for p in same.problems] == [
        ("run.duplicate", n, f"{source}:$.invoices[{i}]") for i, n in enumerate(numbers)]
    assert "(IdBord 2" in same.problems[400].message
    assert str(same).startswith(f"1200 invoice(s) already exported by run(s) {first.run_id}; "
                                f"nothing written. This input is the file run {first.run_id} "
                                "exported on ")
    # only some held, in another order: listed in this input's
    mixed = []
    for i, inv in enumerate(reversed(data["invoices"])):
        mixed.append(inv)
        if i % 12 == 11:
            mixed.append(dict(inv, number=f"NEW-{i:04d}"))
    some = refused(mixed, "some.json")
    held = [inv["number"] for inv in mixed if not inv["number"].startswith("NEW-")]
    assert [(p.rule, p.invoice) for p in some.problems] == [
        ("run.duplicate", n) for n in held]
    assert (f"Only some of this input's invoices are (1200 of 1300): remove those from the "
            f"input ({', '.join(held[:10])}, … 1190 more) to export the others") in str(some)
    # other invoices, the same NumDettes (the mapping's: the number's digits)
    others = [dict(inv, number=inv["number"].replace("FB-", "FC-")) for inv in data["invoices"]]
    debts = refused(others, "others.json")
    assert [(p.rule, p.invoice) for p in debts.problems] == [
        ("run.num-dette-taken", n.replace("FB-", "FC-")) for n in numbers]
    assert str(debts).startswith(f"1200 NumDette(s) already used by run(s) {first.run_id}; "
                                 "nothing written")


def test_a_num_dette_an_active_run_holds_is_refused_until_that_run_is_cancelled(
        db_url, tmp_path):
    """NumDette (with IdPost and Cle2) is the payment reference a family pays with: two
    active titles of a collectivity never share one, across runs too."""
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    # FB-2026-00104 is another invoice, but `digits` gives it FA-2026-00104's NumDette
    clash = _invoices({"FA-2026-00101": "FA-2026-00101", "FA-2026-00104": "FB-2026-00104",
                       "FA-2026-00105": "FA-2026-00199"}, tmp_path, "clash.json")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, clash, tmp_path / "b", RUN)
    duplicate, debt = info.value.problems
    assert (duplicate.rule, duplicate.invoice) == ("run.duplicate", "FA-2026-00101")
    assert duplicate.record == f"{clash}:$.invoices[0]"
    assert (debt.rule, debt.invoice) == ("run.num-dette-taken", "FB-2026-00104")
    assert debt.record == f"{clash}:$.invoices[1]"
    assert debt.mapping == f"{MAPPING}:36: bindings.invoice.debt_number"
    assert debt.message.startswith("NumDette 202600104 is already the debt number of invoice "
                                   f"FA-2026-00104, exported by run {first.run_id} in "
                                   f"{first.files[0].path.name} (IdBord 1)")
    assert str(info.value) == (f"1 invoice(s) already exported and 1 NumDette(s) already used "
                               f"by run(s) {first.run_id}; nothing written. Only some of this "
                               "input's invoices are (1 of 3): remove those from the input "
                               "(FA-2026-00101) to export the others; cancel a run (pesgen runs "
                               "cancel) only if the trésorerie rejected it and this input "
                               "replaces it whole")
    assert info.value.exit_code == 7
    # without the duplicate invoice: refused for the NumDette alone, by the CLI too
    only_debt = _invoices({"FA-2026-00104": "FB-2026-00104"}, tmp_path, "only-debt.json")
    refused = _cli(["export", "-m", str(MAPPING), "-i", str(only_debt), "-o",
                    str(tmp_path / "cli"), "--date", "2026-11-23"], db_url)
    assert refused.returncode == 7, refused.stderr
    assert f"error: 1 NumDette(s) already used by run(s) {first.run_id}" in refused.stderr
    assert (f"{only_debt}:$.invoices[0] invoice FB-2026-00104: NumDette 202600104 is already"
            in refused.stderr)
    assert f"[mapping {MAPPING}:36: bindings.invoice.debt_number] (rule run.num-dette-taken)" \
        in refused.stderr
    assert _files(tmp_path / "b") == [] and _files(tmp_path / "cli") == []
    assert [r.id for r in store.list_runs()] == [first.run_id]
    assert store.find_invoice("FB-2026-00104") == []
    # cancelling the first run releases its NumDettes; the refusals used no number
    store.cancel(first.run_id, "trésorerie rejected the rôle")
    second = export_recorded(lambda: store, MAPPING, clash, tmp_path / "c", RUN)
    assert second.first_number == 2
    [held] = store.find_invoice("FB-2026-00104")
    assert held["debt_number"] == "202600104" and held["run_id"] == second.run_id
    found = _cli(["runs", "find", "FB-2026-00104"], db_url)
    assert "IdPce 2 NumDette 202600104" in found.stdout, found.stdout
    # support staff find a title by the NumDette a family reads out (zeros or not)
    for asked in ("0202600104", "202600104"):
        by_debt = _cli(["runs", "find", "--debt", asked], db_url)
        assert by_debt.returncode == 0, by_debt.stdout
        held_lines = [ln for ln in by_debt.stdout.splitlines() if "active" in ln]
        assert held_lines == [ln for ln in by_debt.stdout.splitlines()
                              if ln.startswith("FB-2026-00104 (") and second.run_id in ln
                              and "active" in ln], by_debt.stdout
        assert len(held_lines) == 1
    missing = _cli(["runs", "find", "--debt", "999999"], db_url)
    assert missing.returncode == 1 and "NumDette 999999: in no run" in missing.stdout
    # and the second run holds it now
    third = _invoices({"FA-2026-00104": "FC-2026-00104"}, tmp_path, "fc.json")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, third, tmp_path / "d", RUN)
    [debt] = info.value.problems
    assert debt.rule == "run.num-dette-taken" and second.run_id in debt.message
    # a NumDette alone held: not said to be "only some of this input's invoices"
    assert str(info.value) == (f"1 NumDette(s) already used by run(s) {second.run_id}; "
                               "nothing written")
    # leading zeros make no other NumDette: 0202600104 is paid with 202600104's reference
    zeros = _invoices({"FA-2026-00104": "FD-02026-00104"}, tmp_path, "zeros.json")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, zeros, tmp_path / "e", RUN)
    [debt] = info.value.problems
    assert (debt.rule, debt.invoice) == ("run.num-dette-taken", "FD-02026-00104")


def test_num_dettes_differing_by_leading_zeros_are_one_within_a_run(tmp_path):
    zeros = _invoices({"FA-2026-00104": "FA-2026-00104", "FA-2026-00105": "FD-02026-00104"},
                      tmp_path, "zeros.json")
    with pytest.raises(InputDataError) as info:
        export(MAPPING, zeros, tmp_path / "out", RUN)
    [problem] = info.value.problems
    assert (problem.rule, problem.invoice) == ("pes.num-dette-unique", "FD-02026-00104")


def test_a_format_without_num_dette_records_none(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    titres = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
    run = export_recorded(lambda: store, titres, EXAMPLES / "school-export.json", tmp_path / "o",
                          RUN)
    with store.engine.connect() as conn:
        debts = conn.execute(sa.text("SELECT DISTINCT debt_number FROM run_invoices "
                                     "WHERE run_id = :r"), {"r": run.run_id}).scalars().all()
    assert debts == [None]


def test_a_schema_2_store_is_migrated_and_keeps_its_guards(db_url, tmp_path, monkeypatch):
    """A store pesgen left at schema 2 (before NumDettes were recorded) opens with the
    current code: its runs and numbering stay, its invoices stay guarded; its rows have
    no NumDette, so those are not checked; the runs recorded after are."""
    import pesgen.store as st

    donor = Store(f"sqlite:///{tmp_path / 'donor.sqlite3'}")
    first = export_recorded(lambda: donor, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:2])
        old = Store(db_url)
    assert "debt_number" not in {c["name"] for c in
                                 sa.inspect(old.engine).get_columns("run_invoices")}
    # the donor's run, as the schema-2 code recorded it: no NumDette
    record_as_older(donor, old)
    old.engine.dispose()
    store = Store(db_url)
    with store.engine.connect() as conn:
        versions = conn.execute(sa.select(st.schema_table.c.version)).scalars().all()
    assert sorted(versions) == list(range(1, len(st.MIGRATIONS) + 1))
    [held] = store.find_invoice("FA-2026-00104")
    assert held["run_id"] == first.run_id and held["debt_number"] is None
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "b",
                        RUN)
    assert {p.rule for p in info.value.problems} == {"run.duplicate"}
    # rows recorded before migration 3 hold no NumDette (docs/state.md says so)
    same_debt = _invoices({"FA-2026-00104": "FB-2026-00104"}, tmp_path, "fb.json")
    unchecked = ["11 active invoice(s) were recorded before this store kept NumDettes: a "
                 "NumDette of theirs is not checked against this run's (see docs/state.md)"]
    # a dry run says it as the export does
    dry = export_recorded(lambda: Store(db_url, read_only=True), MAPPING, same_debt, None, RUN,
                          dry_run=True)
    assert [n.detail for n in dry.notes if n.policy == "store"] == unchecked
    second = export_recorded(lambda: store, MAPPING, same_debt, tmp_path / "c", RUN)
    assert second.first_number == 2  # the numbering came along
    # ... and the run summary says that this check could not be made
    assert [n.detail for n in second.notes if n.policy == "store"] == unchecked
    again = _invoices({"FA-2026-00104": "FC-2026-00104"}, tmp_path, "fc.json")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, again, tmp_path / "d", RUN)
    [debt] = info.value.problems
    assert debt.rule == "run.num-dette-taken" and second.run_id in debt.message


def _blind_until_recorded(monkeypatch) -> list[bool]:
    """Make the guard's checks see nothing until the run is recorded, as when another
    export records the same invoices between the check and the record: then the
    unique indexes refuse. Returns a flag, False once the record was tried."""
    real = {name: getattr(Store, name) for name in ("holders", "debt_holders", "record_run")}
    blind = [True]

    def holders(self, *args):
        return {} if blind[0] else real["holders"](self, *args)

    def debt_holders(self, *args):
        return {} if blind[0] else real["debt_holders"](self, *args)

    def record_run(self, *args):
        blind[0] = False
        return real["record_run"](self, *args)

    monkeypatch.setattr(Store, "holders", holders)
    monkeypatch.setattr(Store, "debt_holders", debt_holders)
    monkeypatch.setattr(Store, "record_run", record_run)
    return blind


@pytest.mark.parametrize("clash", ["invoice", "invoice-case", "num-dette"])
def test_a_race_past_the_check_is_refused_like_the_check(db_url, tmp_path, monkeypatch,
                                                         clash):
    store = Store(db_url)
    # titres: no NumDette, so only the invoice key's index can refuse the lower case
    mapping = MAPPINGS / "villeneuve-sur-loing-titres.yaml" if clash == "invoice-case" \
        else MAPPING
    first = export_recorded(lambda: store, mapping, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    second = {"invoice": EXAMPLES / "school-export.json",
              "invoice-case": _invoices({"FA-2026-00104": "fa-2026-00104"}, tmp_path,
                                        "fa.json"),
              "num-dette": _invoices({"FA-2026-00104": "FB-2026-00104"}, tmp_path,
                                     "fb.json")}[clash]
    blind = _blind_until_recorded(monkeypatch)
    with pytest.raises(StateError) as raced:
        export_recorded(lambda: store, mapping, second, tmp_path / "b", RUN)
    assert blind == [False]  # refused by the index at record time, not by the check
    monkeypatch.undo()
    with pytest.raises(StateError) as checked:
        export_recorded(lambda: store, mapping, second, tmp_path / "c", RUN)
    assert str(raced.value) == str(checked.value)
    assert raced.value.problems == checked.value.problems
    assert raced.value.exit_code == checked.value.exit_code == 7
    assert {p.rule for p in raced.value.problems} == (
        {"run.num-dette-taken"} if clash == "num-dette" else {"run.duplicate"})
    assert all(first.run_id in p.message for p in raced.value.problems)
    assert _files(tmp_path / "b") == []
    assert [r.id for r in store.list_runs()] == [first.run_id]
    assert export_recorded(lambda: store, mapping, _variant(tmp_path, "n"), tmp_path / "n",
                           RUN).first_number == 2  # the refused run used no number


def test_a_conflict_the_guard_does_not_explain_stays_a_store_error(tmp_path, monkeypatch):
    from pesgen.errors import RecordConflict

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    monkeypatch.setattr("pesgen.runs.new_run_id", lambda: first.run_id)  # a taken key
    with pytest.raises(RecordConflict, match="the store refused to record the run: UNIQUE "
                       "constraint failed: runs.id; nothing recorded") as info:
        export_recorded(lambda: store, MAPPING, _variant(tmp_path, "u"), tmp_path / "b", RUN)
    assert info.value.exit_code == 7
    assert _files(tmp_path / "b") == []
    assert [r.id for r in store.list_runs()] == [first.run_id]


def test_two_budgets_racing_on_postgresql_get_the_check_s_refusal(tmp_path, monkeypatch):
    """Exports of other sequences do not wait for each other: on PostgreSQL one can
    record the same invoices between the other's check and its record."""
    other_budget, _ = mapping_copy(tmp_path, MAPPING, ('cod_bud: "00"', 'cod_bud: "01"'),
                                   name="budget-01.yaml")
    with state_database("postgresql", tmp_path) as url:
        store = Store(url)
        record_run = Store.record_run
        rival: list = []

        def late_record(self, *args):
            if not rival:  # the other export, checked and recorded meanwhile
                rival.append(None)  # (its own record_run goes straight through)
                rival[0] = export_recorded(lambda: Store(url), other_budget,
                                           EXAMPLES / "school-export.json",
                                           tmp_path / "rival", RUN)
            return record_run(self, *args)

        monkeypatch.setattr(Store, "record_run", late_record)
        with pytest.raises(StateError) as info:
            export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "b", RUN)
        [winner] = rival
        assert info.value.exit_code == 7
        assert str(info.value) == (f"11 invoice(s) already exported by run(s) {winner.run_id}; "
                                   "nothing written")
        assert {p.rule for p in info.value.problems} == {"run.duplicate"}
        assert len(info.value.problems) == 11
        assert _files(tmp_path / "b") == []
        monkeypatch.undo()
        assert [r.id for r in store.list_runs()] == [winner.run_id]
        # budget 00 used no number
        ok = export_recorded(lambda: store, MAPPING, _variant(tmp_path, "n"), tmp_path / "n", RUN)
        assert ok.first_number == 1


def test_regenerate_is_byte_identical_after_the_mapping_changed(db_url, tmp_path):
    store = Store(db_url)
    mapping = tmp_path / "mapping.yaml"
    shutil.copy(MAPPING, mapping)
    r = export_recorded(lambda: store, mapping, EXAMPLES / "school-export.json", tmp_path / "out",
                        RUN)
    original = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    mapping_copy(tmp_path, mapping, ("CONSERVATOIRE - TRIMESTRE 1", "ECOLE - T1"))
    written = regenerate(store, r.run_id[:8], tmp_path / "regen")
    assert {p.name: p.read_bytes() for p in written} == original


def _cli(args: list[str], db_url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PESGEN_DB=db_url)
    if args[:1] == ["export"]:  # a store named on purpose: created when asked
        args = [*args, "--create-store"]
    return subprocess.run([sys.executable, "-m", "pesgen", *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=ROOT)


def test_eight_concurrent_exports_no_duplicate_no_gap(db_url, tmp_path):
    Store(db_url)  # schema created once, before the race
    inputs = [_variant(tmp_path, f"c{i}") for i in range(8)]
    same = EXAMPLES / "school-export.json"

    def run(args: tuple[int, Path]) -> subprocess.CompletedProcess[str]:
        i, path = args
        return _cli(["export", "-m", str(MAPPING), "-i", str(path), "-o",
                     str(tmp_path / f"out{i}"), "--date", "2026-11-23", "-q"], db_url)

    with ThreadPoolExecutor(max_workers=8) as pool:
        distinct = list(pool.map(run, enumerate(inputs)))
    assert [p.returncode for p in distinct] == [0] * 8, [p.stderr for p in distinct]
    store = Store(db_url)
    runs = store.list_runs()
    assert sorted(r.first_number for r in runs) == list(range(1, 9))
    names = sorted(n for i in range(8) for n in _files(tmp_path / f"out{i}") if n.endswith(".xml"))
    assert len(set(names)) == 8
    # eight exports of the same invoices: one wins, seven are refused, no number consumed
    with ThreadPoolExecutor(max_workers=8) as pool:
        racing = list(pool.map(run, [(10 + i, same) for i in range(8)]))
    codes = sorted(p.returncode for p in racing)
    assert codes == [0] + [7] * 7, [p.stderr for p in racing]
    assert all("already exported by run" in p.stderr for p in racing if p.returncode)
    runs = store.list_runs()
    assert sorted(r.first_number for r in runs) == list(range(1, 10))
    with store.engine.connect() as conn:
        dupes = conn.execute(sa.text(
            "SELECT invoice, COUNT(*) FROM run_invoices WHERE active "
            "GROUP BY id_coll, invoice HAVING COUNT(*) > 1")).all()
    assert dupes == []


def test_cli_second_export_names_the_run(db_url, tmp_path):
    args = ["export", "-m", str(MAPPING), "-i", str(EXAMPLES / "school-export.json"),
            "--date", "2026-11-23"]
    first = _cli([*args, "-o", str(tmp_path / "one")], db_url)
    assert first.returncode == 0, first.stderr
    assert "IdBord 1," in first.stdout
    run_id = first.stdout.split("run ", 1)[1].split()[0]
    second = _cli([*args, "-o", str(tmp_path / "two")], db_url)
    assert second.returncode == 7
    assert run_id in second.stderr and "nothing was written" in second.stderr
    assert _files(tmp_path / "two") == []
    listed = _cli(["runs", "list"], db_url)
    assert run_id in listed.stdout and "committed" in listed.stdout
    shown = _cli(["runs", "show", run_id[:8]], db_url)
    # the input as the run read it, absolute (ux51): support reads it from any folder
    source = (EXAMPLES / "school-export.json").resolve()
    assert f"FA-2026-00106 ({source}:$.invoices[5]): total is 0.00" in shown.stdout
    found = _cli(["runs", "find", "FA-2026-00105"], db_url)
    assert run_id in found.stdout and "IdPce 5" in found.stdout
    cancelled = _cli(["runs", "cancel", run_id, "--reason", "test"], db_url)
    assert cancelled.returncode == 0
    # a cancelled run's files are rebuilt only when asked
    regen = _cli(["regenerate", run_id, "-o", str(tmp_path / "regen")], db_url)
    assert regen.returncode == 7 and "--cancelled" in regen.stderr
    regen = _cli(["regenerate", run_id, "-o", str(tmp_path / "regen"), "--cancelled"], db_url)
    assert regen.returncode == 0 and "identical" in regen.stdout


def test_copy_store_keeps_runs_numbering_and_the_duplicate_guard(db_url, tmp_path):
    source = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = Store(source)
    first = export_recorded(lambda: old, MAPPING, EXAMPLES / "school-export.json", tmp_path / "a",
                            RUN)
    from pesgen.store import copy_store

    counts = copy_store(source, db_url)
    assert counts["runs"] == 1 and counts["run_invoices"] == 11
    new = Store(db_url)
    assert [r.id for r in new.list_runs()] == [first.run_id]
    with pytest.raises(StateError):  # the guard moved with the data
        export_recorded(lambda: new, MAPPING, EXAMPLES / "school-export.json", tmp_path / "b", RUN)
    nxt = export_recorded(lambda: new, MAPPING, _variant(tmp_path, "x"), tmp_path / "c", RUN)
    assert nxt.first_number == 2  # numbering continues
    assert regenerate(new, first.run_id, tmp_path / "regen")
    with pytest.raises(StateError, match="not empty"):
        copy_store(source, db_url)


def test_a_store_is_never_created_or_grafted_by_mistake(tmp_path):
    from pesgen.store import copy_store

    missing = tmp_path / "typo.sqlite3"
    with pytest.raises(StateError, match="no pesgen store at"):
        copy_store(f"sqlite:///{missing}", f"sqlite:///{tmp_path / 'target.sqlite3'}")
    assert not missing.exists()
    # somebody else's database: pesgen adds nothing to it
    foreign = tmp_path / "foreign.sqlite3"
    engine = sa.create_engine(f"sqlite:///{foreign}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE runs (id TEXT)")
    engine.dispose()
    with pytest.raises(StateError, match="not a pesgen store's"):
        Store(f"sqlite:///{foreign}")
    engine = sa.create_engine(f"sqlite:///{foreign}")
    assert sa.inspect(engine).get_table_names() == ["runs"]
    engine.dispose()
    # not a database at all
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="cannot open the store"):
        Store(f"sqlite:///{junk}")


def test_a_store_migrated_by_a_newer_pesgen_is_refused(db_url, tmp_path):
    """A schema this pesgen does not know (a column, an index, a rule added later) is
    never worked on: opening it, copying from it or into it says to upgrade."""
    from pesgen.store import MIGRATIONS, copy_store, schema_table, shown_url

    newer = len(MIGRATIONS) + 1
    store = Store(db_url)
    with store.engine.begin() as conn:
        conn.execute(schema_table.insert().values(version=newer, applied_at="2099-01-01T00:00:00Z"))
    store.engine.dispose()
    expected = (f"{shown_url(db_url)}: this store was migrated by a newer pesgen (schema "
                f"{newer}, this pesgen knows up to {len(MIGRATIONS)}): upgrade pesgen")
    with pytest.raises(StateError) as info:
        Store(db_url)
    assert str(info.value) == expected
    assert info.value.exit_code == 7
    target = tmp_path / "copy.sqlite3"
    with pytest.raises(StateError) as info:
        copy_store(db_url, f"sqlite:///{target}")
    assert str(info.value) == expected
    assert not target.exists()  # refused before the target was created
    source = f"sqlite:///{tmp_path / 'older.sqlite3'}"
    Store(source).engine.dispose()
    with pytest.raises(StateError) as info:
        copy_store(source, db_url)
    assert str(info.value) == expected
    engine = Store._engine(db_url)
    with engine.connect() as conn:  # the refused store is left as it was
        versions = conn.execute(sa.select(schema_table.c.version)
                                .order_by(schema_table.c.version)).scalars().all()
    engine.dispose()
    assert versions == [*range(1, len(MIGRATIONS) + 1), newer]


def test_a_run_id_is_a_prefix_never_a_pattern(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    run = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "o",
                          RUN)
    for pattern in ("%", "", "_" * 8, f"{run.run_id[:3]}%"):
        with pytest.raises(StateError, match="is not a run id"):
            store.get_run(pattern)
    assert store.get_run(run.run_id[:8])["id"] == run.run_id
    with pytest.raises(StateError, match="is not a run id"):
        store.cancel("%", "oops")
    assert store.get_run(run.run_id)["status"] == "committed"


def test_a_new_sqlite_store_is_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "new-folder" / "store.sqlite3"
    store = Store(f"sqlite:///{path}")
    export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "o", RUN)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_a_database_password_never_appears_in_a_message():
    with pytest.raises(Exception) as info:
        Store("postgres://user:SECRETPW@127.0.0.1:1/db")
    assert "SECRETPW" not in str(info.value)
    assert "user:***@" in str(info.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://pesgen@127.0.0.1:5999/pesgen?password=S3cretPW",
     "postgresql://pesgen@127.0.0.1:5999/pesgen?password=***"),
    ("postgresql:///pesgen?host=/run/pg&password=S3cretPW&sslmode=disable",
     "postgresql:///pesgen?host=/run/pg&password=***&sslmode=disable"),
    ("postgresql://pesgen:S3c@ret@127.0.0.1:5999/pesgen",
     "postgresql://pesgen:***@127.0.0.1:5999/pesgen"),
    ("postgresql://pesgen:S3c/ret@127.0.0.1/pesgen?sslpassword=S3cretPW",
     "postgresql://pesgen:***@127.0.0.1/pesgen?sslpassword=***"),
    ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
    # a file's path, not a secret: a command pasted from the message needs it
    ("postgresql://pesgen@h/pesgen?sslkey=/etc/pg/client.key&sslcert=/etc/pg/client.crt",
     "postgresql://pesgen@h/pesgen?sslkey=/etc/pg/client.key&sslcert=/etc/pg/client.crt"),
])
def test_a_database_password_is_masked_whatever_its_form(url, shown):
    from pesgen.store import shown_url

    assert shown_url(url) == shown


def test_runs_list_never_prints_a_password_given_as_a_query_parameter():
    from typer.testing import CliRunner

    from pesgen.cli import app

    url = "postgresql://pesgen@127.0.0.1:1/pesgen?password=S3cretPW"
    result = CliRunner().invoke(app, ["runs", "list", "--db", url])
    assert result.exit_code == 7, result.output
    assert "S3cretPW" not in result.output
    assert "postgresql://pesgen@127.0.0.1:1/pesgen?password=***: cannot open the store" \
        in result.output


def test_a_missing_sqlite_store_named_by_a_url_with_a_password_masks_it():
    from typer.testing import CliRunner

    from pesgen.cli import app

    # "no pesgen store at sqlite://user:S3cretPW@/x.db" before
    result = CliRunner().invoke(app, ["runs", "list", "--db", "sqlite://user:S3cretPW@/x.db"])
    assert result.exit_code == 7, result.output
    assert "S3cretPW" not in result.output
    assert "no pesgen store at sqlite://user:***@/x.db" in result.output


@pytest.mark.parametrize(("url", "why"), [
    # a traceback (exit 1) before: ValueError: invalid literal for int() with base 10: 'x'
    ("postgresql://pesgen:S3cretPW@127.0.0.1:x/pesgen", "its host and port cannot be read"),
    # an IPv6 address left unclosed: no port given, so not said to be one
    ("postgresql://pesgen:S3cretPW@[::1/pesgen", "its host and port cannot be read"),
    # a driver SQLAlchemy knows, not installed: ModuleNotFoundError, a traceback (exit 1)
    # (made not importable here, installed or not)
    ("postgresql+psycopg2://pesgen:S3cretPW@127.0.0.1:1/pesgen",
     "its driver is not installed: "),
    # NoSuchModuleError: Can't load plugin: sqlalchemy.dialects:postgresql.bogus
    ("postgresql+bogus://pesgen:S3cretPW@127.0.0.1/pesgen", "Can't load plugin"),
])
def test_a_database_url_that_cannot_be_read_is_a_usage_error(url, why, monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setitem(sys.modules, "psycopg2", None)  # ImportError when imported

    from pesgen.cli import app
    from pesgen.store import shown_url

    result = CliRunner().invoke(app, ["runs", "list", "--db", url])
    assert result.exit_code == 2, result.output
    assert "S3cret" not in result.output and "Traceback" not in result.output
    assert result.output.startswith(f"error: {shown_url(url)}: not a "
                                    "database URL pesgen can open ("), result.output
    assert why in result.output
    if "psycopg2" in url:
        assert "; pesgen connects with psycopg 3, postgresql:// or postgresql+psycopg://)" \
            in result.output


def test_an_input_that_changes_during_the_export_is_refused(tmp_path, monkeypatch):
    """The run records the input it exported (for regenerate): a file rewritten while it
    was read would be recorded as something it did not export."""
    from pesgen.export import Exporter

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    source = tmp_path / "in.json"
    shutil.copy(EXAMPLES / "school-export.json", source)
    prepare = Exporter.prepare

    def rewritten(self, path, *numbering):
        prepared = prepare(self, path, *numbering)
        source.write_text(source.read_text(encoding="utf-8") + " ", encoding="utf-8")
        return prepared

    monkeypatch.setattr(Exporter, "prepare", rewritten)
    with pytest.raises(StateError, match="changed while it was being exported") as info:
        export_recorded(lambda: store, MAPPING, source, tmp_path / "out", RUN)
    assert [p.rule for p in info.value.problems] == ["run.input-changed"]
    assert store.list_runs() == []
    assert _files(tmp_path / "out") == []


def test_a_cancelled_run_is_regenerated_only_when_asked_and_then_under_cancelled_names(
        db_url, tmp_path):
    """Its invoices may be in another run since: regenerate refuses a cancelled run,
    naming it, when and why it was cancelled, writing nothing (not even the folder);
    asked with --cancelled, it writes its files under CANCELLED- names, the folder and
    its missing parents made."""
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    store.cancel(first.run_id, "rejected by the trésorerie")
    at = store.get_run(first.run_id)["cancelled_at"]
    with pytest.raises(StateError) as info:
        regenerate(store, first.run_id, tmp_path / "b")
    assert str(info.value) == (
        f"run {first.run_id} was cancelled on {at} (rejected by the trésorerie): its invoices "
        "may be in another run since, and its files must not be sent again. To look at "
        "them, regenerate it with --cancelled (written as CANCELLED-<name>)")
    assert not (tmp_path / "b").exists()
    written = regenerate(store, first.run_id, tmp_path / "c" / "d" / "e", cancelled=True)
    exported = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert {p.name: p.read_bytes() for p in written} == {
        f"CANCELLED-{name}": data for name, data in exported.items()}


@pytest.mark.parametrize("present", [10, 11, 13])
def test_files_in_the_way_are_named_ten_and_counted_past_ten(tmp_path, present):
    """A run of many bordereaux regenerated into a folder holding its files: all named up
    to ten, then the first ten and how many more (in the run's order), the count always
    whole."""
    from pesgen.runs import in_the_way

    names = [f"PESALR1_21450999400015_2026_{n:07d}.xml" for n in range(1, 15)]
    for name in names[:present]:
        (tmp_path / name).write_text("there")
    with pytest.raises(UsageError) as info:
        in_the_way({"id": "run-1"}, tmp_path, names)
    more = [] if present <= 10 else [f"… {present - 10} more"]
    assert str(info.value) == (
        f"{tmp_path} already holds {present} of the 14 file(s) run run-1 would write: "
        f"{', '.join([*names[:min(present, 10)], *more])}; pesgen never overwrites a file. "
        "Regenerate into a new, empty folder (--out NEW_DIR), or move those files away; "
        "nothing written")
    in_the_way({"id": "run-1"}, tmp_path, names[present:])  # none there: nothing said


def test_regenerate_into_a_folder_holding_a_file_of_the_run_says_it_exists(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    out = tmp_path / "out"
    run = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", out, RUN)
    run.files[0].path.unlink()  # the XML is lost, its references CSV is still there
    [references] = run.references
    with pytest.raises(UsageError) as info:
        regenerate(store, run.run_id, out)
    # which files are in the way, and where to regenerate instead
    assert str(info.value) == (
        f"{out} already holds 1 of the 2 file(s) run {run.run_id} would write: "
        f"{references.name}; pesgen never overwrites a file. Regenerate into a new, empty "
        "folder (--out NEW_DIR), or move those files away; nothing written")
    assert _files(out) == [references.name]  # nothing half-written beside it
    (out / run.files[0].path.name).write_text("a copy someone made")
    with pytest.raises(UsageError, match=f"already holds 2 of the 2 file\\(s\\) run "
                       f"{run.run_id} would write: {run.files[0].path.name}, "
                       f"{references.name};"):
        regenerate(store, run.run_id, out)
    written = regenerate(store, run.run_id, tmp_path / "elsewhere")
    assert run.files[0].path.name in {p.name for p in written}


def test_a_run_of_a_pes_bundle_without_its_own_xsd_regenerates(tmp_path, official_xsd):
    """Exported with the DGFiP package (the only XSD such a bundle has), recorded, then
    rebuilt byte for byte without it: the recorded sha256 vouches for the bytes."""
    fmts = tmp_path / "fmts"
    bundle = fmts / "pesx"
    shutil.copytree(ROOT / "templates" / "pes-ormc", bundle)
    spec = bundle / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count("name: pes-ormc") == 1 and "    xsd: pes-ormc/pes-ormc.xsd\n" in text
    spec.write_text(text.replace("name: pes-ormc", "name: pesx")
                    .replace("    xsd: pes-ormc/pes-ormc.xsd\n", ""), encoding="utf-8")
    mapping, _ = mapping_copy(tmp_path, MAPPING, ("format: pes-ormc", "format: pesx"),
                              name="m.yaml")
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    run = export_recorded(lambda: store, mapping, EXAMPLES / "school-export.json", tmp_path / "a",
                          RUN, official_xsd=official_xsd, formats_dirs=[fmts])
    written = regenerate(store, run.run_id, tmp_path / "b")
    assert sorted(p.name for p in written) == sorted(
        p.name for p in (tmp_path / "a").iterdir())
    for path in written:
        assert path.read_bytes() == (tmp_path / "a" / path.name).read_bytes()


def _bundle_copy(tmp_path: Path) -> tuple[list[Path], Path]:
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "pes-ormc", fmts / "pes-ormc")
    return [fmts], fmts / "pes-ormc"


def test_a_bundle_edited_during_the_export_is_refused(tmp_path, monkeypatch):
    """The run records its format bundle for regenerate: a template edited while the
    run was prepared (after pesgen read it) would be recorded as what did not render."""
    from pesgen.export import Exporter

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    fmts, bundle = _bundle_copy(tmp_path)
    template = bundle / "pes-aller.xml.j2"
    prepare = Exporter.prepare

    def edited(self, path, *numbering):
        prepared = prepare(self, path, *numbering)
        template.write_text(template.read_text(encoding="utf-8").replace(
            "<Bordereau>", "<Bordereau><!-- edited -->"), encoding="utf-8")
        return prepared

    monkeypatch.setattr(Exporter, "prepare", edited)
    with pytest.raises(StateError, match="changed while the run was being exported") as info:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "out",
                        RUN, formats_dirs=fmts)
    assert [p.rule for p in info.value.problems] == ["run.format-changed"]
    assert store.list_runs() == [] and _files(tmp_path / "out") == []
    monkeypatch.undo()
    # exported again with the bundle as it now is: recorded, and regenerated identical
    run = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "o2",
                          RUN, formats_dirs=fmts)
    assert b"<!-- edited -->" in run.files[0].path.read_bytes()
    assert regenerate(store, run.run_id, tmp_path / "regen")


def test_a_bundle_holding_binary_and_editor_files_exports_and_regenerates(tmp_path):
    """A vendor's PDF or a logo beside the templates is recorded as bytes; hidden files
    (an editor's swap file, .DS_Store) and backups (~) are not recorded at all."""
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    fmts, bundle = _bundle_copy(tmp_path)
    (bundle / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    (bundle / ".pes-aller.xml.j2.swp").write_bytes(b"\xff\xfe swap")
    (bundle / "pes-aller.xml.j2~").write_text("old", encoding="utf-8")
    run = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "out",
                          RUN, formats_dirs=fmts)
    regen = tmp_path / "regen"
    regenerate(store, run.run_id, regen)
    assert sorted(p.name for p in regen.iterdir()) == sorted(
        [f.path.name for f in run.files] + [r.name for r in run.references])
    recorded = json.loads(unpack(store.get_run(run.run_id)["format_bundle"]))
    assert recorded["logo.png"] == {"base64": "iVBORw0KGgoA/w=="}
    assert not [name for name in recorded if name.startswith(".") or name.endswith("~")]
    assert recorded == bundle_snapshot(run.fmt)


def test_the_payment_references_are_recorded_and_checked_by_regenerate(tmp_path, monkeypatch):
    """The references CSV (what the school prints) is a file of the run: listed with its
    sha256, and regenerate compares it like the XML."""
    import pesgen.export as export_mod

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    run = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                          tmp_path / "out", RUN)
    [references] = run.references
    recorded = {f["name"]: f for f in store.get_run(run.run_id)["files"]}
    assert recorded[references.name]["id_bord"] is None
    assert recorded[references.name]["sha256"] == hashlib.sha256(
        references.read_bytes()).hexdigest()
    shown = subprocess.run([sys.executable, "-m", "pesgen", "runs", "show", run.run_id, "--db",
                            str(tmp_path / "store.sqlite3")], capture_output=True, text=True)
    assert f"{references.name}  payment references  sha256" in shown.stdout, shown.stderr
    # a references file that would come out different is a regenerate failure
    real = export_mod._references_csv
    monkeypatch.setattr(export_mod, "_references_csv",
                        lambda *a, **k: (t.replace("FA-2026-00101", "FA-2026-00999")
                                         for t in real(*a, **k)))
    with pytest.raises(StateError) as info:
        regenerate(store, run.run_id, tmp_path / "regen")
    # the file that differs, not the XML that came out as recorded
    assert f"differ from the recorded ones ({references.name}); pesgen " in str(info.value)


def test_a_run_recorded_before_its_references_were_gets_them_again_unchecked(tmp_path):
    """A run recorded before pesgen kept its payment references CSV (no file of it in
    run_files): regenerate checks the XML and writes the CSV again beside it, unchecked
    (there is no sha256 to compare it with) rather than refusing the run."""
    from pesgen.store import run_files

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    run = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                          tmp_path / "out", RUN)
    [references] = run.references
    with store.engine.begin() as conn:
        conn.execute(sa.delete(run_files).where(run_files.c.run_id == run.run_id,
                                                run_files.c.name == references.name))
    assert [f["name"] for f in store.get_run(run.run_id)["files"]] == [run.files[0].path.name]
    written = regenerate(store, run.run_id, tmp_path / "regen")
    assert sorted(p.name for p in written) == sorted([run.files[0].path.name, references.name])
    assert (tmp_path / "regen" / references.name).read_bytes() == references.read_bytes()


def test_regenerate_closes_the_files_it_spooled_the_titles_in(tmp_path):
    """The rebuild spools the rendered titles in temporary files: closed once its files
    are assembled, none left open for the garbage collector to find (ResourceWarning)."""
    import gc
    import warnings

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    run = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                          tmp_path / "out", RUN)
    gc.collect()  # what earlier tests left: not this rebuild's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert regenerate(store, run.run_id, tmp_path / "regen")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_staging_folder_left_behind_does_not_fail_a_rebuild_in_place(tmp_path,
                                                                      monkeypatch):
    """The rebuilt files are staged in a folder of their own inside the output folder,
    removed once they are put in place: a removal refused then (by the file system)
    leaves that folder behind, but the files are in place and regenerate succeeds."""
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    run = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                          tmp_path / "out", RUN)
    real = os.rmdir

    def refused(path, *args, **kwargs):
        if ".pesgen-regen-" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", refused)
    written = regenerate(store, run.run_id, tmp_path / "regen")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in written} == {
        p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert [p.name.startswith(".pesgen-regen-") for p in (tmp_path / "regen").iterdir()
            if p not in written] == [True]


@pytest.mark.parametrize("signal", [KeyboardInterrupt, KeyboardInterrupt("signal 15")])
def test_an_interrupt_past_the_commit_names_the_recorded_run(tmp_path, signal):
    """Ctrl-C or SIGTERM (which pesgen turns into KeyboardInterrupt) landing after the
    run is recorded but before its files are in place: not "Aborted!" (which promises a
    rolled-back transaction), but the run named, with the regenerate command."""
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    out = tmp_path / "out"

    def interrupted() -> None:
        raise signal

    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", out, RUN,
                        before_publish=interrupted)
    [run] = store.list_runs()
    assert f"run {run.id} is recorded (IdBord 1), but its files could not be put in {out}: " \
           "interrupted" in str(info.value)
    assert [p.rule for p in info.value.problems] == ["run.publish"]
    assert _files(out) == []  # the temporary files are removed
    assert regenerate(store, run.id, out)


def test_a_cancelled_run_is_regenerated_only_when_asked(tmp_path):
    """Its invoices may be in another run since: rebuilding its files by mistake and
    sending them would bill them twice. `--cancelled` rebuilds them to look at, with a
    warning."""
    db = tmp_path / "store.sqlite3"
    store = Store(f"sqlite:///{db}")
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    store.cancel(first.run_id, "trésorerie rejected the rôle")
    second = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                             tmp_path / "b", RUN)
    with pytest.raises(StateError, match="was cancelled on .* \\(trésorerie rejected the rôle\\)"
                       ) as info:
        regenerate(store, first.run_id, tmp_path / "r1")
    assert [p.rule for p in info.value.problems] == ["run.cancelled"]
    assert not (tmp_path / "r1").exists() or _files(tmp_path / "r1") == []
    cli = [sys.executable, "-m", "pesgen", "regenerate", first.run_id, "--db", str(db)]
    refused = subprocess.run([*cli, "--out", str(tmp_path / "r2")], capture_output=True,
                             text=True)
    assert refused.returncode == 7 and "--cancelled" in refused.stderr
    # the files, byte for byte, under names that never look like files to send
    cli[4] = first.run_id[:8]
    asked = subprocess.run([*cli, "--out", str(tmp_path / "r3"), "--cancelled"],
                           capture_output=True, text=True)
    assert asked.returncode == 0, asked.stderr
    assert "identical to the recorded files" in asked.stdout
    assert asked.stderr == (
        f"warning: run {first.run_id} is cancelled: its files are written as "
        "CANCELLED-<name>, for reading only; do not send them to the trésorerie; 11 of its "
        f"invoices were exported again since, by run {second.run_id} (IdBord 2)\n")
    originals = [f.path for f in first.files] + first.references
    assert _files(tmp_path / "r3") == sorted(f"CANCELLED-{p.name}" for p in originals)
    for original in originals:
        assert (tmp_path / "r3" / f"CANCELLED-{original.name}").read_bytes() == \
            original.read_bytes()
    # the folder of the original files takes them beside the originals (other names)
    again = subprocess.run([*cli, "--out", str(tmp_path / "a"), "--cancelled"],
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert len(_files(tmp_path / "a")) == 2 * len(originals)


# ---------------------------------------------------------------- TypBord, invoice keys

TITRES = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
EMAGNUS = MAPPINGS / "villeneuve-sur-loing-emagnus.yaml"
JVS = MAPPINGS / "villeneuve-sur-loing-jvs.yaml"


def _renamed(tmp_path: Path, name: str, rename) -> Path:
    """The example with every invoice number passed through ``rename``."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    return _invoices({inv["number"]: rename(inv["number"]) for inv in data["invoices"]},
                     tmp_path, name)


@pytest.mark.parametrize("mapping, typ_bord", [(EMAGNUS, "bl-emagnus"),
                                               (JVS, "jvs-millesime")])
def test_a_format_numbered_by_its_name_is_recorded_and_copied(db_url, tmp_path, mapping,
                                                              typ_bord):
    """A format without defaults.typ_bord numbers its runs under its name: the store
    holds it (PostgreSQL refused 'bl-emagnus' in VARCHAR(2): every e.magnus export
    failed), in the store and in a store copied to it."""
    store = Store(db_url)
    first = export_recorded(lambda: store, mapping, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    second = export_recorded(lambda: store, mapping, _variant(tmp_path, "b"), tmp_path / "b", RUN)
    assert (first.first_number, second.first_number) == (1, 2)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT DISTINCT typ_bord FROM runs")).scalars().all() == [
            typ_bord]
    # a SQLite store holding such a run copies to this store
    from pesgen.store import copy_store

    source = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old_run = export_recorded(lambda: Store(source), mapping, EXAMPLES / "school-export.json",
                              tmp_path / "old", RUN)
    with state_database("postgresql" if db_url.startswith("postgresql") else "sqlite",
                        tmp_path / "target") as target:
        assert copy_store(source, target)["runs"] == 1
        copied = Store(target)
        assert [r.id for r in copied.list_runs()] == [old_run.run_id]
        nxt = export_recorded(lambda: copied, mapping, _variant(tmp_path, "c"), tmp_path / "c", RUN)
        assert nxt.first_number == 2  # the numbering came along
        with pytest.raises(StateError):
            export_recorded(lambda: copied, mapping, EXAMPLES / "school-export.json",
                            tmp_path / "d", RUN)
        copied.engine.dispose()


def test_a_typ_bord_longer_than_the_store_holds_is_refused_by_the_format_loader(tmp_path):
    from pesgen.errors import MappingError
    from pesgen.formats import load_format
    from pesgen.store import TYP_BORD_MAX, runs, sequences

    schema = json.loads((ROOT / "schemas" / "format.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["defaults"]["properties"]["typ_bord"]["maxLength"] == \
        TYP_BORD_MAX == sequences.c.typ_bord.type.length == runs.c.typ_bord.type.length
    # a format's name (its TypBord without defaults.typ_bord) fits too
    assert schema["properties"]["name"]["pattern"] == "^[a-z0-9][a-z0-9-]{1,40}$"
    assert 41 <= TYP_BORD_MAX
    bundle = tmp_path / "pes-titres"
    shutil.copytree(ROOT / "templates" / "pes-titres", bundle)
    descriptor = bundle / "format.yaml"
    text = descriptor.read_text(encoding="utf-8")
    assert 'typ_bord: "01"' in text
    descriptor.write_text(text.replace('typ_bord: "01"', f'typ_bord: "{"9" * 65}"'),
                          encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_format(bundle)
    [problem] = info.value.problems
    assert problem.rule == "format.schema" and "defaults.typ_bord" in str(problem.mapping)


@pytest.mark.parametrize("length, refused", [(64, False), (65, True)])
def test_an_invoice_number_longer_than_the_store_holds_is_refused_at_mapping_time(
        db_url, tmp_path, length, refused):
    long_number = "FA-2026-00104-" + "X" * (length - 14)
    assert len(long_number) == length
    inp = _invoices({"FA-2026-00104": long_number}, tmp_path, "long.json")
    store = Store(db_url)
    if not refused:  # the store holds it, PostgreSQL too
        run = export_recorded(lambda: store, TITRES, inp, tmp_path / "o", RUN)
        [held] = store.find_invoice(long_number.lower())
        assert held["run_id"] == run.run_id and held["invoice"] == long_number
        return
    with pytest.raises(InputDataError) as info:
        export_recorded(lambda: store, TITRES, inp, tmp_path / "o", RUN)
    [problem] = info.value.problems
    assert problem.rule == "input.invoice-number"
    assert problem.message == "invoice number is 65 characters, pesgen allows 64"
    assert problem.record == f"{inp}:$.invoices[0]" and problem.invoice == long_number
    assert problem.mapping == f"{TITRES}:32: bindings.invoice.number"
    assert store.list_runs() == [] and _files(tmp_path / "o") == []


def test_a_value_longer_than_the_target_column_is_named_by_store_copy(tmp_path):
    """A SQLite store (which enforces no VARCHAR length) may hold an invoice number
    recorded before pesgen limited them: copying it to PostgreSQL names the row."""
    from pesgen.store import copy_store

    source = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = Store(source)
    run = export_recorded(lambda: old, TITRES, EXAMPLES / "school-export.json", tmp_path / "a", RUN)
    with old.engine.begin() as conn:
        conn.execute(sa.text("UPDATE run_invoices SET invoice = :n WHERE invoice = "
                             "'FA-2026-00104'"), {"n": "FA-2026-00104-" + "X" * 71})
    old.engine.dispose()
    with state_database("postgresql", tmp_path) as target:
        with pytest.raises(StateError, match=r"cannot copy run_invoices \(id \d+\): its "
                           r"invoice is 85 characters, the target holds 64 "
                           r"\('FA-2026-00104-X+…'\); nothing copied"):
            copy_store(source, target)
        assert Store(target).list_runs() == []
    assert [r.id for r in Store(source).list_runs()] == [run.run_id]


def test_invoice_numbers_differing_by_case_or_spaces_are_one_within_a_run(tmp_path):
    inp = _invoices({"FA-2026-00101": "FA-2026-00101", "FA-2026-00102": " fa-2026-00101 "},
                    tmp_path, "case.json")
    with pytest.raises(InputDataError) as info:
        export(TITRES, inp, tmp_path / "out", RUN)
    [problem] = info.value.problems
    # (the input's text is read stripped of surrounding spaces)
    assert (problem.rule, problem.invoice) == ("input.duplicate-invoice", "fa-2026-00101")
    assert problem.record == f"{inp}:$.invoices[1]"
    assert problem.message == (f"invoice number fa-2026-00101 already appears at "
                               f"{inp}:$.invoices[0] as FA-2026-00101 (invoice numbers are "
                               "compared ignoring case and spaces)")
    assert _files(tmp_path / "out") == []


def test_a_held_number_of_another_amount_is_said_a_possible_other_invoice(db_url, tmp_path):
    """Term 2's export holds FA-2026-00112 again, another family's invoice the school
    software numbered so by mistake (another amount). The refusal said only 'remove it
    from this input': done, that family's invoice is billed nowhere. The amount the run
    recorded differs: said so, with what to do. The same amount says nothing more."""
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    by_number = {inv["number"]: inv for inv in data["invoices"]}
    reused = {**by_number["FA-2026-00111"], "number": "FA-2026-00112"}  # 180.00, not 227.50
    new = {**by_number["FA-2026-00113"], "number": "FA-2027-00201"}
    term2 = tmp_path / "term2.json"
    term2.write_text(json.dumps({**data, "invoices": [by_number["FA-2026-00110"], reused, new]},
                                ensure_ascii=False), encoding="utf-8")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, term2, tmp_path / "b", RUN)
    same, other = info.value.problems
    assert (same.invoice, other.invoice) == ("FA-2026-00110", "FA-2026-00112")
    assert same.message.endswith("remove it from this input"), same.message
    assert other.message == (
        f"already exported by run {first.run_id} in {first.files[0].path.name} (IdBord 1); "
        "remove it from this input. Its title there is of 227.50, this one of 180.00: if this "
        "is another invoice (a number the school software gave again), removed from this "
        "input it is billed nowhere: give it a number of its own there")


def test_invoice_numbers_differing_by_case_or_spaces_are_one_across_runs(db_url, tmp_path):
    """The outputs upper-case their text: fa-2026-00101 would be a second, identical
    title of FA-2026-00101."""
    store = Store(db_url)
    first = export_recorded(lambda: store, TITRES, EXAMPLES / "school-export.json", tmp_path / "a",
                            RUN)
    lower = _renamed(tmp_path, "lower.json", lambda n: f" {n.lower()}")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, TITRES, lower, tmp_path / "b", RUN)
    assert str(info.value) == (f"11 invoice(s) already exported by run(s) {first.run_id}; "
                               "nothing written")
    problem = info.value.problems[0]
    assert (problem.rule, problem.invoice) == ("run.duplicate", "fa-2026-00101")
    assert problem.record == f"{lower}:$.invoices[0]"
    assert problem.message == (
        f"already exported (as FA-2026-00101) by run {first.run_id} in "
        f"{first.files[0].path.name} (IdBord 1); cancel that run first to export it again, if "
        "the trésorerie rejected it or it was never sent (no acknowledgement of IdBord 1 is "
        "recorded: pesgen acquit FILE --record; FILE: the PES_ACQUIT the trésorerie's "
        "guichet XML returned for it)")
    assert _files(tmp_path / "b") == [] and [r.id for r in store.list_runs()] == [first.run_id]
    # runs find, whatever the case and spaces
    for asked in ("FA-2026-00101", "fa-2026-00101", "  Fa-2026-00101 "):
        found = _cli(["runs", "find", asked], db_url)
        assert found.returncode == 0, found.stderr
        assert found.stdout.startswith(f"FA-2026-00101 ({EXAMPLES / 'school-export.json'}:"
                                       f"$.invoices[0]): run {first.run_id} "), found.stdout
    assert [h["run_id"] for h in store.find_invoice(" fa-2026-00101")] == [first.run_id]
    # cancelled, the number (as written in any case) is free again
    store.cancel(first.run_id, "trésorerie rejected the rôle")
    again = export_recorded(lambda: store, TITRES, lower, tmp_path / "e", RUN)
    assert again.first_number == 2
    [held] = [h for h in store.find_invoice("FA-2026-00101") if h["active"]]
    assert held["run_id"] == again.run_id and held["invoice"] == "fa-2026-00101"


def test_an_invoice_in_another_case_is_refused_once_not_also_for_its_num_dette(db_url,
                                                                                tmp_path):
    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    lower = _renamed(tmp_path, "lower.json", str.lower)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, lower, tmp_path / "b", RUN)
    assert str(info.value) == (f"11 invoice(s) already exported by run(s) {first.run_id}; "
                               "nothing written")
    assert {p.rule for p in info.value.problems} == {"run.duplicate"}


# ---------------------------------------------------------------- look-alike numbers
# FA-2026-00101 written with a soft hyphen, Unicode hyphens, an en dash or full-width
# characters: the outputs write each as FA-2026-00101, so each is that invoice
# (tests/test_invoice_key.py has more of them). A soft hyphen, an invisible format
# character, is refused in a number before (input.invoice-number, test_bad_input): a
# store recorded one before 2026-12-06, and its key is the number's all the same
EXPORTED = [kind for kind in LOOKALIKES if kind != "soft hyphen"]


@pytest.mark.parametrize("kind", EXPORTED)
def test_a_look_alike_number_is_one_invoice_within_a_run(tmp_path, kind):
    inp = _invoices({"FA-2026-00101": "FA-2026-00101", "FA-2026-00102": LOOKALIKES[kind]},
                    tmp_path, "lookalike.json")
    with pytest.raises(InputDataError) as info:
        export(TITRES, inp, tmp_path / "out", RUN)
    [problem] = info.value.problems
    assert (problem.rule, problem.invoice) == ("input.duplicate-invoice", LOOKALIKES[kind])
    assert problem.record == f"{inp}:$.invoices[1]"
    said = written_otherwise(LOOKALIKES[kind], "FA-2026-00101")
    assert problem.message == (f"invoice number {said}, which already appears at "
                               f"{inp}:$.invoices[0]")
    assert " written with other characters (U+" in problem.message
    assert _files(tmp_path / "out") == []


def test_a_look_alike_number_in_an_ormc_run_is_a_duplicate_not_a_num_dette_clash(tmp_path):
    """Its NumDette (the number's digits) is the other's too: the duplicate is what is
    said, not 'give this invoice another NumDette', which would send it twice."""
    inp = _invoices({"FA-2026-00101": "FA-2026-00101",
                     "FA-2026-00102": LOOKALIKES["en dash"]}, tmp_path, "lookalike.json")
    with pytest.raises(InputDataError) as info:
        export(MAPPING, inp, tmp_path / "out", RUN)
    assert [p.rule for p in info.value.problems] == ["input.duplicate-invoice"]


@pytest.mark.parametrize("kind", EXPORTED)
def test_a_look_alike_number_is_one_invoice_across_runs(db_url, tmp_path, kind):
    store = Store(db_url)
    first = export_recorded(lambda: store, TITRES, EXAMPLES / "school-export.json", tmp_path / "a",
                            RUN)
    number = LOOKALIKES[kind]
    inp = _invoices({"FA-2026-00101": number}, tmp_path, "lookalike.json")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, TITRES, inp, tmp_path / "b", RUN)
    assert str(info.value) == (f"1 invoice(s) already exported by run(s) {first.run_id}; "
                               f"nothing written. Cancelling run {first.run_id} frees 10 more "
                               "invoice(s) than this input holds (11 in all): they would be "
                               "billed nowhere until exported again, so export them with "
                               "these, the school's whole corrected file (pesgen runs show "
                               f"{first.run_id} --invoices lists them), not only the invoices "
                               "corrected")
    [problem] = info.value.problems
    assert (problem.rule, problem.invoice) == ("run.duplicate", number)
    assert problem.record == f"{inp}:$.invoices[0]"
    assert problem.message == (
        f"already exported by run {first.run_id} in {first.files[0].path.name} (IdBord 1): "
        f"invoice number {written_otherwise(number, 'FA-2026-00101')}; cancel that run "
        "first to export it again, if the trésorerie rejected it or it was never sent (no "
        "acknowledgement of IdBord 1 is recorded: pesgen acquit FILE --record"
        "; FILE: the PES_ACQUIT the trésorerie's guichet XML returned for it)")
    assert _files(tmp_path / "b") == [] and [r.id for r in store.list_runs()] == [first.run_id]
    # runs find, asked with the look-alike, finds the run holding the invoice
    assert [h["run_id"] for h in store.find_invoice(number)] == [first.run_id]


@pytest.mark.parametrize("mapping", [EMAGNUS, JVS, MAPPING], ids=["emagnus", "jvs", "ormc"])
def test_a_look_alike_number_is_refused_again_in_every_format(tmp_path, mapping):
    """ORMC: one refusal, the duplicate; not also its NumDette (the same digits), whose
    advice, 'give this invoice another NumDette', would put it in the rôle twice. A
    finance package writing the number as it is (e.magnus ascii, JVS latin-1) refuses an
    en dash or a Unicode hyphen in it first (input.invoice-number, vinput45): nothing
    written either; the look-alikes its charset takes (case) are the duplicates."""
    store = Store(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    first = export_recorded(lambda: store, mapping, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    inp = _invoices({"FA-2026-00101": LOOKALIKES["en dash"],
                     "FA-2026-00104": LOOKALIKES["hyphen"].replace("00101", "00104")},
                    tmp_path, "lookalike.json")
    if mapping != MAPPING:
        with pytest.raises(InputDataError) as refused:
            export_recorded(lambda: store, mapping, inp, tmp_path / "b", RUN)
        assert [p.rule for p in refused.value.problems] == ["input.invoice-number"] * 2
        assert _files(tmp_path / "b") == []
        inp = _invoices({"FA-2026-00101": "fa-2026-00101", "FA-2026-00104": "Fa-2026-00104"},
                        tmp_path, "cased.json")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, mapping, inp, tmp_path / "b", RUN)
    assert [p.rule for p in info.value.problems] == ["run.duplicate", "run.duplicate"]
    assert all(first.run_id in p.message for p in info.value.problems)
    assert _files(tmp_path / "b") == []


def test_runs_find_finds_an_invoice_whichever_way_its_number_is_written(db_url, tmp_path):
    store = Store(db_url)
    number = LOOKALIKES["soft hyphen"]
    held = export_recorded(lambda: store, TITRES, _invoices({"FA-2026-00101": "FA-2026-00101"},
                                                            tmp_path, "soft.json"),
                           tmp_path / "a", RUN)
    with store.engine.begin() as conn:  # as a run recorded it before 2026-12-06 (EXPORTED)
        conn.execute(sa.text("UPDATE run_invoices SET invoice = :n WHERE invoice = "
                             "'FA-2026-00101'"), {"n": number})
    [row] = store.find_invoice("FA-2026-00101")
    assert row["run_id"] == held.run_id
    for asked in ("FA-2026-00101", number, LOOKALIKES["full-width"],
                  " fa\u20132026\u201300101"):
        found = _cli(["runs", "find", asked], db_url)
        assert found.returncode == 0, found.stderr
        # the number as the run wrote it, its invisible character shown and named
        assert found.stdout == (
            f"FA<U+00AD>-2026-00101 ({tmp_path / 'soft.json'}:$.invoices[0]): run "
            f"{held.run_id}  {row['created_at']}  "
            f"{held.files[0].path.name}  SIRET 21450999400015 budget 00 exer 2026  "
            "IdBord 1 IdPce 1  "
            f"{row['amount']}  active  (written "
            "with other characters: U+00AD SOFT HYPHEN)\n"
            "  Hélios: IdBord 1 no acknowledgement recorded\n"
            "  PayFiP: none (no PayFiP link made for it: pesgen knows of no online payment; "
            "one paid otherwise paid the trésorerie)\n"), found.stdout


def test_an_expression_that_gives_an_empty_num_dette_says_so(tmp_path):
    """Full-width digits are no digits to `digits`: NumDette comes out empty. The
    binding is there; what it gave is said, not 'missing'."""
    inp = _invoices({"FA-2026-00101": LOOKALIKES["full-width"]}, tmp_path, "wide.json")
    with pytest.raises(InputDataError) as info:
        export(MAPPING, inp, tmp_path / "out", RUN)
    [problem] = info.value.problems
    assert problem.rule == "input.required"
    assert problem.message == ("invoice.debt_number is empty: its expression "
                               "`invoice.number | digits` gave an empty value")
    assert problem.mapping == f"{MAPPING}:36: bindings.invoice.debt_number"


@pytest.mark.parametrize("dated", ["later", "earlier", "same"])
def test_a_number_two_active_runs_hold_names_the_earliest_recorded_run(db_url, tmp_path,
                                                                        dated):
    """A store recorded before a uniqueness rule (migrations 5 and 6) may hold one
    invoice in two active rows (``key_shared``): the guard names the earliest recorded
    run's, by when it was recorded then the rows' order (two runs recorded at the same
    time: the row recorded first), every time; it named the row the database gave last
    (SQLite: the later row, whatever its run's date)."""
    import pesgen.store as st

    store = Store(db_url)
    first = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    with store.engine.begin() as conn:
        run = conn.execute(sa.select(st.runs).where(st.runs.c.id == first.run_id)).one()
        # a second run recorded later (or dated before the first: a store copied, a clock
        # set back), its row of the number written after the first's
        other = dict(run._mapping, id="00000000-0000-4000-8000-000000000002",
                     created_at={"later": "2999-01-01T00:00:00+00:00",
                                 "earlier": "2000-01-01T00:00:00+00:00",
                                 "same": run.created_at}[dated])
        conn.execute(st.runs.insert().values(**other))
        [row] = conn.execute(sa.select(st.run_invoices).where(
            st.run_invoices.c.run_id == first.run_id,
            st.run_invoices.c.invoice == "FA-2026-00101")).all()
        # (its id the database's: an explicit NULL is refused by PostgreSQL's serial)
        copied = {k: v for k, v in row._mapping.items() if k != "id"}
        conn.execute(st.run_invoices.insert().values(**dict(
            copied, run_id=other["id"], invoice="fa-2026-00101", debt_number=None,
            key_shared=True)))
    earliest = (("fa-2026-00101", other["id"]) if dated == "earlier"
                else ("FA-2026-00101", first.run_id))
    with store.engine.connect() as conn:
        for asked in (["FA-2026-00101"], ["Fa-2026-00101", "FA-2026-00102"]):
            held = store.holders(conn, run.id_coll, asked)
            assert held[asked[0]][:2] == earliest, held
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                        tmp_path / "b", RUN)
    [problem] = [p for p in info.value.problems if p.invoice == "FA-2026-00101"
                 and p.rule == "run.duplicate"]
    assert earliest[1] in problem.message
    assert ({first.run_id, other["id"]} - {earliest[1]}).pop() not in problem.message


def _migrated(db_url: str) -> tuple[Store, list]:
    """The store at ``db_url`` opened (so migrated to the current schema, every migration
    recorded), and its invoice rows: run, invoice, key, key_shared."""
    import pesgen.store as st

    store = Store(db_url)
    with store.engine.connect() as conn:
        versions = conn.execute(sa.select(st.schema_table.c.version)).scalars().all()
        rows = conn.execute(sa.select(st.run_invoices.c.run_id, st.run_invoices.c.invoice,
                                      st.run_invoices.c.invoice_key,
                                      st.run_invoices.c.key_shared)).all()
    assert sorted(versions) == list(range(1, len(st.MIGRATIONS) + 1))
    return store, list(rows)


def test_a_schema_4_store_is_migrated_with_invoice_keys(db_url, tmp_path, monkeypatch):
    """Migration 5 on a store of schema 4: TypBord columns widened (PostgreSQL), every
    invoice keyed. Two active runs holding one invoice in two cases (the guard let them
    through before) do not stop the migration: both stay active and keep refusing it."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:4])
        old = Store(db_url)
    # what the schema-4 code recorded: an ORMC run, then the same invoices lower-cased
    # in a titres run (other TypBord), which its case-sensitive guard let through
    upper = Store(f"sqlite:///{tmp_path / 'donor-upper.sqlite3'}")
    first = export_recorded(lambda: upper, MAPPING, EXAMPLES / "school-export.json",
                            tmp_path / "a", RUN)
    lower_input = _renamed(tmp_path, "lower.json", str.lower)
    lower = Store(f"sqlite:///{tmp_path / 'donor-lower.sqlite3'}")
    second = export_recorded(lambda: lower, TITRES, lower_input, tmp_path / "b", RUN)
    record_as_older(upper, old)
    record_as_older(lower, old)
    old.engine.dispose()

    store, rows = _migrated(db_url)
    widths = {t: {c["name"]: c["type"] for c in sa.inspect(store.engine).get_columns(t)}
              for t in ("sequences", "runs")}
    if db_url.startswith("postgresql"):
        assert widths["sequences"]["typ_bord"].length == widths["runs"]["typ_bord"].length == 64
    assert len(rows) == 22 and all(r.invoice_key == r.invoice.lower() for r in rows)
    # the older run keeps the index, the other is marked
    assert {r.run_id for r in rows if r.key_shared} == {second.run_id}
    assert {r.run_id for r in rows if not r.key_shared} == {first.run_id}
    assert {h["run_id"] for h in store.find_invoice("FA-2026-00101")} == {
        first.run_id, second.run_id}
    # both refuse the invoice, whatever its case; cancelling one leaves the other's refusal
    for run, cancel in ((None, first.run_id), (second.run_id, second.run_id)):
        with pytest.raises(StateError) as info:
            export_recorded(lambda: store, TITRES, _renamed(tmp_path, "mixed.json", str.title),
                            tmp_path / "c", RUN)
        assert {p.rule for p in info.value.problems} == {"run.duplicate"}
        if run is not None:
            assert run in str(info.value)
        store.cancel(cancel, "trésorerie rejected the rôle")
    third = export_recorded(lambda: store, TITRES, _renamed(tmp_path, "mixed.json", str.title),
                            tmp_path / "d", RUN)
    assert third.first_number == 2
    # a format numbered by its name records on the migrated store (PostgreSQL too)
    em = export_recorded(lambda: store, EMAGNUS, _variant(tmp_path, "e"), tmp_path / "e", RUN)
    assert em.first_number == 1


def _shared_key_store(db_url: str, tmp_path: Path, monkeypatch,
                      three: bool = False) -> tuple[Store, list]:
    """A store pesgen left at schema 4, migrated: an ORMC run of the 11 invoices, then
    (other TypBord, which the case-sensitive guard of schema 4 let through) a titres
    run of two of them lower-cased; with ``three``, a titres run of budget 01 holding one
    of them title-cased. Migration 5 leaves them all active, the oldest row of each
    number holding the unique index, the others marked key_shared."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:4])
        old = Store(db_url)
    budget, _ = mapping_copy(tmp_path, TITRES, ('cod_bud: "00"', 'cod_bud: "01"'),
                             name="titres-budget-01.yaml")
    donors = [(MAPPING, EXAMPLES / "school-export.json"),
              (TITRES, _invoices({"FA-2026-00101": "fa-2026-00101",
                                  "FA-2026-00104": "fa-2026-00104"}, tmp_path, "lower.json"))]
    if three:
        donors.append((budget, _invoices({"FA-2026-00101": "Fa-2026-00101"}, tmp_path,
                                         "title.json")))
    done = []
    for i, (mapping, source) in enumerate(donors):
        donor = Store(f"sqlite:///{tmp_path / f'donor-{i}.sqlite3'}")
        done.append(export_recorded(lambda donor=donor: donor, mapping, source,
                                    tmp_path / f"donor-{i}", RUN))
        record_as_older(donor, old)
    old.engine.dispose()
    return Store(db_url), done


def _key_rows(store: Store) -> dict[tuple[str, str], tuple[bool, bool]]:
    """(run, invoice) -> (active, key_shared) of every row of a shared number."""
    import pesgen.store as st

    t = st.run_invoices
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.run_id, t.c.invoice, t.c.active, t.c.key_shared)
                            .where(t.c.invoice_key.in_(["fa-2026-00101", "fa-2026-00104"])))
        return {(r.run_id, r.invoice): (r.active, r.key_shared) for r in rows}


def _sneak_in(store: Store, run_id: str, invoice: str) -> None:
    """An active row of ``invoice`` written past pesgen's check (another code path, a
    future bug): only the unique index on the number's key can refuse it."""
    import pesgen.store as st

    with store.engine.begin() as conn:
        conn.execute(st.run_invoices.insert().values(
            run_id=run_id, id_coll="21450999400015", invoice=invoice,
            invoice_key=invoice.strip().casefold(), id_bord=1, id_pce=99, amount="1.00",
            active=True))


def _cancel_cli(db_url: str, run_id: str):
    from typer.testing import CliRunner

    from pesgen.cli import app

    return CliRunner().invoke(app, ["runs", "cancel", run_id, "--reason", "rejected",
                                    "--db", db_url])


def test_cancelling_the_run_that_held_a_shared_number_hands_it_to_the_other(
        db_url, tmp_path, monkeypatch):
    """Migration 5 left FA-2026-00101 and FA-2026-00104 active in two runs, the older
    holding the unique index. Cancelling the older: the newer's rows take the index over
    in the same transaction (the guarantee no longer rests on pesgen's check alone), and
    the message says which invoices stay held, and by which run."""
    store, (first, second) = _shared_key_store(db_url, tmp_path, monkeypatch)
    assert _key_rows(store)[(second.run_id, "fa-2026-00101")] == (True, True)
    result = _cancel_cli(db_url, first.run_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] + "\n" == (
        f"run {first.run_id} cancelled: 9 of its 11 invoice(s) can be exported again; 2 "
        f"stay held by active run {second.run_id} (fa-2026-00101, fa-2026-00104)\n")
    # the export to run again, and that it refuses those two
    assert result.stdout.splitlines()[1].startswith("next: correct the input ")
    assert result.stdout.splitlines()[1].endswith(
        "; it refuses the 2 invoice(s) other active runs still hold (named above), unless "
        "the mapping's policies.already_exported: leave_out leaves them out"), result.stdout
    rows = _key_rows(store)
    assert rows[(second.run_id, "fa-2026-00101")] == rows[
        (second.run_id, "fa-2026-00104")] == (True, False)
    assert not rows[(first.run_id, "FA-2026-00101")][0]
    with pytest.raises(sa.exc.IntegrityError, match="(?i)unique"):
        _sneak_in(store, first.run_id, "Fa-2026-00101")
    # the check says the same; the 9 freed invoices are exported again
    with pytest.raises(StateError, match=f"2 invoice\\(s\\) already exported by run\\(s\\) "
                       f"{second.run_id}"):
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "c",
                        RUN)
    freed = _renamed(tmp_path, "freed.json", lambda n: n)
    data = json.loads(freed.read_text(encoding="utf-8"))
    data["invoices"] = [i for i in data["invoices"]
                        if i["number"] not in ("FA-2026-00101", "FA-2026-00104")]
    freed.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    again = export_recorded(lambda: store, MAPPING, freed, tmp_path / "d", RUN)
    assert again.titles == 9


def test_cancelling_the_run_whose_numbers_were_marked_shared_frees_none_of_them(
        db_url, tmp_path, monkeypatch):
    store, (first, second) = _shared_key_store(db_url, tmp_path, monkeypatch)
    result = _cancel_cli(db_url, second.run_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] + "\n" == (
        f"run {second.run_id} cancelled: 0 of its 2 invoice(s) can be exported again; 2 "
        f"stay held by active run {first.run_id} (FA-2026-00101, FA-2026-00104)\n")
    assert len(result.stdout.splitlines()) == 1  # nothing freed: nothing to export again
    rows = _key_rows(store)
    assert rows[(first.run_id, "FA-2026-00101")] == (True, False)
    assert rows[(second.run_id, "fa-2026-00101")][0] is False
    with pytest.raises(sa.exc.IntegrityError, match="(?i)unique"):
        _sneak_in(store, second.run_id, "Fa-2026-00104")
    with pytest.raises(StateError):
        export_recorded(lambda: store, TITRES, _invoices({"FA-2026-00104": "fa-2026-00104"},
                                                 tmp_path, "again.json"), tmp_path / "c", RUN)


def test_a_number_shared_by_three_runs_passes_to_the_oldest_still_active(
        db_url, tmp_path, monkeypatch):
    store, (first, second, third) = _shared_key_store(db_url, tmp_path, monkeypatch,
                                                      three=True)
    assert _key_rows(store)[(third.run_id, "Fa-2026-00101")] == (True, True)
    result = _cancel_cli(db_url, first.run_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] + "\n" == (
        f"run {first.run_id} cancelled: 9 of its 11 invoice(s) can be exported again; 2 "
        f"stay held by active runs {second.run_id} (fa-2026-00101, fa-2026-00104), "
        f"{third.run_id} (Fa-2026-00101)\n")
    rows = _key_rows(store)
    assert rows[(second.run_id, "fa-2026-00101")] == (True, False)  # the older of the two
    assert rows[(third.run_id, "Fa-2026-00101")] == (True, True)
    # the second cancelled in turn: the third holds FA-2026-00101, FA-2026-00104 is free
    result = _cancel_cli(db_url, second.run_id)
    assert result.stdout.splitlines()[0] + "\n" == (
        f"run {second.run_id} cancelled: 1 of its 2 invoice(s) can be exported again; 1 "
        f"stays held by active run {third.run_id} (Fa-2026-00101)\n")
    assert _key_rows(store)[(third.run_id, "Fa-2026-00101")] == (True, False)
    with pytest.raises(sa.exc.IntegrityError, match="(?i)unique"):
        _sneak_in(store, first.run_id, "fA-2026-00101")
    result = _cancel_cli(db_url, third.run_id)
    assert result.stdout.splitlines()[0] == (f"run {third.run_id} cancelled: its 1 "
                                             "invoice(s) can be exported again")


def test_a_schema_5_store_is_migrated_with_look_alike_numbers_keyed_again(
        db_url, tmp_path, monkeypatch):
    """Migration 6 keys again the numbers that are not ASCII (the key was strip and
    casefold up to schema 5). A look-alike the guard of schema 5 let through now shares
    its number's key: as migration 5 did for case, both stay active and refuse the
    invoice, the oldest row holds the unique index (here the look-alike: the row that
    held it before is marked), and cancelling it hands the index over."""
    import pesgen.store as st
    from pesgen.keys import INVOICE_KEY_MAX, invoice_key

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:5])
        old = Store(db_url)
    # what the schema-5 code recorded: a run of look-alikes (and a full-width number of
    # its own), then the example in ORMC, whose FA-2026-00101 and FA-2026-00104 its guard
    # let by
    lookalikes = _invoices({"FA-2026-00101": LOOKALIKES["hyphen"],
                            "FA-2026-00104": LOOKALIKES["en dash"].replace("00101", "00104"),
                            "FA-2026-00105": "ＦＡ-２０２６-００２００"}, tmp_path, "alike.json")
    done = []
    for i, (mapping, source) in enumerate(((TITRES, lookalikes),
                                           (MAPPING, EXAMPLES / "school-export.json"))):
        donor = Store(f"sqlite:///{tmp_path / f'donor-{i}.sqlite3'}")
        done.append(export_recorded(lambda donor=donor: donor, mapping, source,
                                    tmp_path / f"donor-{i}", RUN))
        with donor.engine.begin() as conn:  # keyed as schema 5 keyed them
            for row_id, invoice in conn.execute(sa.select(st.run_invoices.c.id,
                                                          st.run_invoices.c.invoice)).all():
                conn.execute(st.run_invoices.update().where(st.run_invoices.c.id == row_id)
                             .values(invoice_key=invoice.strip().casefold()))
        record_as_older(donor, old)
    old.engine.dispose()
    first, second = done

    store, rows = _migrated(db_url)
    assert len(rows) == 14 and all(r.invoice_key == invoice_key(r.invoice) for r in rows)
    assert {r.invoice_key for r in rows if r.run_id == first.run_id} == {
        "fa-2026-00101", "fa-2026-00104", "fa-2026-00200"}
    assert {(r.run_id, r.invoice) for r in rows if r.key_shared} == {
        (second.run_id, "FA-2026-00101"), (second.run_id, "FA-2026-00104")}
    if db_url.startswith("postgresql"):
        [key_column] = [c for c in sa.inspect(store.engine).get_columns("run_invoices")
                        if c["name"] == "invoice_key"]
        assert key_column["type"].length == INVOICE_KEY_MAX
    # both runs hold the invoice and refuse it, however it is written
    assert {h["run_id"] for h in store.find_invoice("fa\u20102026\u201000101")} == {
        first.run_id, second.run_id}
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, TITRES, EXAMPLES / "school-export.json", tmp_path / "c", RUN)
    assert {p.rule for p in info.value.problems} == {"run.duplicate"}
    # cancelling the look-alikes' run: the example's rows take the index over
    result = _cancel_cli(db_url, first.run_id)
    assert result.stdout.splitlines()[0] + "\n" == (
        f"run {first.run_id} cancelled: 1 of its 3 invoice(s) can be exported again; 2 "
        f"stay held by active run {second.run_id} (FA-2026-00101, FA-2026-00104)\n")
    assert _key_rows(store)[(second.run_id, "FA-2026-00101")] == (True, False)
    with pytest.raises(sa.exc.IntegrityError, match="(?i)unique"):
        _sneak_in(store, first.run_id, "fa-2026-00101")
    # the widest key of a number pesgen accepts fits the column (PostgreSQL: migrated)
    widest = "\ufdfa" * 64
    with store.engine.begin() as conn:
        conn.execute(st.run_invoices.insert().values(
            run_id=first.run_id, id_coll="21450999400015", invoice=widest,
            invoice_key=invoice_key(widest), id_bord=1, id_pce=99, amount="1.00",
            active=True))
    assert [h["invoice"] for h in store.find_invoice(widest)] == [widest]


def test_runs_of_a_mapping_are_found_whatever_the_path_form(tmp_path):
    """`runs list --mapping` finds a mapping's runs by the path typed at export time, by
    its absolute path, or from another folder (runs record the absolute path)."""
    db = tmp_path / "store.sqlite3"
    work = tmp_path / "work"
    shutil.copytree(MAPPINGS, work / "mappings")
    (work / "in.json").write_bytes((EXAMPLES / "school-export.json").read_bytes())
    run = subprocess.run([sys.executable, "-m", "pesgen", "export", "-m",
                          "mappings/villeneuve-sur-loing.yaml", "-i", "in.json", "-o", "out",
                          "--db", str(db), "--date", "2026-11-23", "--create-store"], cwd=work,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    run_id = run.stdout.split("run ", 1)[1].split()[0]
    absolute = str(work / "mappings" / "villeneuve-sur-loing.yaml")
    for cwd, path in ((work, "mappings/villeneuve-sur-loing.yaml"), (tmp_path, absolute),
                      (work / "mappings", "villeneuve-sur-loing.yaml")):
        listed = subprocess.run([sys.executable, "-m", "pesgen", "runs", "list", "--mapping",
                                 path, "--db", str(db)], cwd=cwd, capture_output=True, text=True)
        assert run_id in listed.stdout, (cwd, path, listed.stdout, listed.stderr)
    other = subprocess.run([sys.executable, "-m", "pesgen", "runs", "list", "--mapping",
                            str(MAPPINGS / "villeneuve-sur-loing.yaml"), "--db", str(db)],
                           capture_output=True, text=True)
    assert run_id not in other.stdout  # another file of the same name


def test_a_run_recorded_before_a_check_was_added_still_regenerates(tmp_path, monkeypatch):
    """regenerate rebuilds what a run recorded, and its files' sha256 vouch for it: input
    checks pesgen added since (an account abroad without BIC, invoice numbers differing
    only by case, numbers over 64 characters) must not refuse the rebuild. Here the run
    is recorded with those checks switched off, as pesgen before them recorded it."""
    import pesgen.build
    import pesgen.keys
    import pesgen.validate

    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    mandate = data["invoices"][0]["payment"]["mandate"]
    mandate["iban"] = "DE89370400440532013000"
    del mandate["bic"]
    twin = json.loads(json.dumps(data["invoices"][1]))
    twin["number"] = data["invoices"][1]["number"].lower()
    twin["payer"]["ref"] = "FAM-TWIN"
    data["invoices"].append(twin)
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    titres = MAPPINGS / "villeneuve-sur-loing-titres.yaml"  # no NumDette: the twin is kept
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with monkeypatch.context() as old:
        old.setattr(pesgen.build, "bic_abroad_problem", lambda iban, bic: None)
        old.setattr(pesgen.validate, "bic_abroad_problem", lambda iban, bic: None)
        old.setattr(pesgen.build, "invoice_key", lambda number: number)
        old.setattr(pesgen.store, "invoice_key", lambda number: number)
        run = export_recorded(lambda: store, titres, source, tmp_path / "out", RUN)
    assert run.titles == 12
    with pytest.raises(InputDataError):  # what a new export says of the same input
        export(titres, source, tmp_path / "new", RUN)
    written = regenerate(store, run.run_id, tmp_path / "regen")
    assert sorted(p.name for p in written) == sorted(
        [f.path.name for f in run.files] + [r.name for r in run.references])


def test_an_interrupt_inside_the_commit_call_after_the_database_committed(tmp_path,
                                                                         monkeypatch):
    """A signal landing inside the commit call, once the database has committed: the
    run is recorded, so the message names it (not "Aborted!")."""
    from sqlalchemy.engine import Connection

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    real = Connection.commit

    def commit_then_signal(self):
        real(self)
        raise KeyboardInterrupt("signal 15")

    monkeypatch.setattr(Connection, "commit", commit_then_signal)
    with pytest.raises(StateError, match="is recorded \\(IdBord 1\\), but its files could not "
                       "be put in .*: interrupted"):
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "out",
                        RUN)
    monkeypatch.undo()
    [run] = store.list_runs()
    assert _files(tmp_path / "out") == []
    assert regenerate(store, run.id, tmp_path / "out")


def test_a_migration_reads_a_table_in_batches_of_rows_each_once_in_order():
    """``store.in_batches`` (migrations 5, 6 and 17 key every row of a table with it):
    every row once, by id, ``size`` rows a batch, the last one short; ids with gaps; an
    empty table gives no batch. At most four batches taken: one that read the first
    rows again and again (its next query not after the last id) fails, not hangs."""
    from itertools import islice

    from pesgen.store import in_batches

    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("invoice", sa.String(8)))
    with engine.begin() as conn:
        table.create(conn)
        assert list(in_batches(conn, table, table.c.invoice, size=2)) == []
        conn.execute(table.insert(), [{"id": i, "invoice": f"FA-{i}"} for i in (9, 2, 5, 7, 3)])
        batches = [[tuple(r) for r in rows]
                   for rows in islice(in_batches(conn, table, table.c.invoice, size=2), 4)]
    assert batches == [[(2, "FA-2"), (3, "FA-3")], [(5, "FA-5"), (7, "FA-7")], [(9, "FA-9")]]
