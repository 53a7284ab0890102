"""`pesgen runs list` and `pesgen runs find` with `--format json`: what their text lines
say, each a field, for the school software asking whether an invoice was exported (and
where), or a support script; the same exit codes (`runs find`: 1 when no run exported the
invoice, as `grep`)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from pesgen.errors import ExitCode
from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, run_cli
from .test_acquit import ACKS

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = EXAMPLES / "school-export.json"


def _total(number: str) -> str:
    """The invoice's total as the school's export writes it (the title's amount)."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    [total] = [inv["total"] for inv in data["invoices"] if inv["number"] == number]
    return f"{Decimal(total):.2f}"


def _json(*args) -> tuple[int, dict]:
    r = run_cli(*args, "--format", "json")
    assert r.stderr == ""
    return r.exit_code, json.loads(r.stdout)


def test_runs_list_gives_each_run_with_its_bordereaux_hélios_status(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    code, report = _json("runs", "list", "--db", db_url)
    assert code == 0 and report["ok"] and report["error"] is None
    [listed] = report["runs"]
    assert listed["bordereaux"] == [{"id_bord": 1, "cancelled": False,
                                     "helios": {"status": "not recorded"}}]
    assert (listed["run"], listed["status"], listed["format"], listed["typ_bord"]) == (
        run.run_id, "committed", "pes-ormc", "06")
    assert (listed["id_coll"], listed["cod_bud"], listed["exercise"]) == (
        "21450999400015", "00", 2026)
    assert (listed["titles"], listed["total"], listed["run_date"]) == (11, "2527.25",
                                                                      "2026-11-23")
    assert listed["input"] == "school-export.json" and listed["cancel_reason"] is None
    # the text line of the same run says the same, its run date (--date) too: only the
    # JSON gave it, and the October run recorded in November was told by its recording day
    text = run_cli("runs", "list", "--db", db_url).stdout.splitlines()[0]
    assert text.startswith(f"{listed['run']}  {listed['created_at']}  run date 2026-11-23  "
                           "committed  pes-ormc "
                           f" SIRET 21450999400015 budget 00  exer 2026  IdBord 1  11 "
                           f"title(s)  2527.25")

    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record").exit_code \
        == ExitCode.REJECTED
    assert run_cli("runs", "cancel", run.run_id, "--reason", "rejected: civility",
                   "--db", db_url).exit_code == 0
    _code, report = _json("runs", "list", "--db", db_url)
    [listed] = report["runs"]
    assert listed["status"] == "cancelled" and listed["cancel_reason"] == "rejected: civility"
    [bordereau] = listed["bordereaux"]
    assert bordereau["cancelled"] is True
    assert {k: v for k, v in bordereau["helios"].items() if k != "domain"} == {
        "status": "rejected", "on": "2026-11-24", "error_count": 3, "file": "rejected.xml"}


def test_runs_find_gives_the_titles_and_what_was_left_out(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    code, report = _json("runs", "find", " fa-2026-00103 ", "--db", db_url)
    assert code == 0 and report["ok"] and report["searched"] == " fa-2026-00103 "
    [title] = report["titles"]
    assert title == {"invoice": "FA-2026-00103", "run": run.run_id,
                     "created_at": title["created_at"],
                     "file": "PESORMC_21450999400015_2026_0000001.xml",
                     "id_coll": "21450999400015", "cod_bud": "00", "exercise": 2026,
                     "id_bord": 1, "id_pce": 3, "debt_number": "202600103",
                     "amount": _total("FA-2026-00103"),
                     "active": True, "record": f"{EXAMPLE.resolve()}:$.invoices[2]",
                     "notes": title["notes"], "run_status": "committed",
                     "bordereau_cancelled_at": None, "helios": {"status": "not recorded"}}
    # the notes the run recorded about the invoice (its label's dash transliterated)
    assert {(n["policy"], n["field"]) for n in title["notes"]} == {
        ("transliterate", "line.label")}, title["notes"]
    assert all(n["origin"].endswith("school-export.json:$.invoices[2]")
               for n in title["notes"])
    assert report["left_out"] == [] and report["payfip_anomalies"] == []

    # by NumDette, leading zeros not counting
    code, report = _json("runs", "find", "0202600103", "--debt", "--db", db_url)
    assert code == 0 and [t["invoice"] for t in report["titles"]] == ["FA-2026-00103"]

    # a zero total: left out by the run, in none of its files: exit 1, as grep
    code, report = _json("runs", "find", "FA-2026-00106", "--db", db_url)
    assert code == 1 and report["ok"] is False and report["error"] is None
    assert report["titles"] == []
    [left] = report["left_out"]
    assert (left["invoice"], left["run"], left["policy"], left["reason"], left["holder"]) == (
        "FA-2026-00106", run.run_id, "zero_total", "total is 0.00", None)
    assert left["origin"].endswith("school-export.json:$.invoices[5]")

    code, report = _json("runs", "find", "FA-1999-1", "--db", db_url)
    assert code == 1 and report["titles"] == [] and report["left_out"] == []

    assert run_cli("runs", "cancel", run.run_id, "--reason", "test", "--db",
                   db_url).exit_code == 0
    code, report = _json("runs", "find", "FA-2026-00103", "--db", db_url)
    [title] = report["titles"]
    assert code == 0 and (title["active"], title["run_status"]) == (False, "cancelled")


def test_a_store_that_is_not_there_is_refused_as_json(tmp_path):
    for args in (("runs", "list"), ("runs", "find", "FA-2026-00101"), ("runs", "show", "abcd")):
        code, report = _json(*args, "--db", tmp_path / "none.sqlite3")
        assert code == ExitCode.STATE == report["exit_code"]
        assert report["ok"] is False and report["error"].startswith("no pesgen store at ")
        assert not (tmp_path / "none.sqlite3").exists()


def test_runs_show_gives_the_run_its_files_checks_and_hélios_errors_by_invoice(db_url,
                                                                            tmp_path):
    import hashlib

    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record").exit_code \
        == ExitCode.REJECTED
    code, report = _json("runs", "show", run.run_id[:8], "--invoices", "--db", db_url)
    assert code == 0
    shown = report["run"]
    assert (shown["run"], shown["status"], shown["titles"], shown["total"]) == (
        run.run_id, "committed", 11, "2527.25")
    assert shown["input"] == {"name": "school-export.json", "sha256": hashlib.sha256(
        EXAMPLE.read_bytes()).hexdigest(), "path": str(EXAMPLE.resolve())}
    assert shown["mapping"]["sha256"] == hashlib.sha256(MAPPING.read_bytes()).hexdigest()
    xml, refs = shown["files"]
    written = run.files[0].path
    assert (xml["name"], xml["id_bord"], xml["titles"], xml["sha256"]) == (
        written.name, 1, 11, hashlib.sha256(written.read_bytes()).hexdigest())
    assert (refs["id_bord"], refs["in_place"], refs["cancelled"]) == (None, True, False)
    assert shown["validation"]["files"][written.name]["bordereau_rules"] is True
    assert [lo["invoice"] for lo in shown["left_out"]] == ["FA-2026-00106"]
    assert shown["policies"]["negative_lines"] == 1
    # each error of the rejection with the invoice of the piece it names, as the text
    [bordereau] = shown["helios"]
    [ack] = bordereau["acknowledgements"]
    assert (ack["status"], ack["on"], ack["file"], ack["line"]) == (
        "rejected", "2026-11-24", "rejected.xml", 31)
    assert [(e["code"], e["piece"], e["invoice"]) for e in ack["errors"]] == [
        ("ERREUR_CUMUL_MONTANTS", None, None), ("ERREUR_CODIFICATION", 3, "FA-2026-00103"),
        ("ERREUR_AUTRE", 3, "FA-2026-00103")]
    assert len(shown["invoices"]) == 11
    assert shown["invoices"][2] == {"invoice": "FA-2026-00103", "id_bord": 1, "id_pce": 3,
                                    "debt_number": "202600103",
                                    "amount": _total("FA-2026-00103"), "active": True,
                                    "record": f"{EXAMPLE.resolve()}:$.invoices[2]",
                                    "line_count": 2}
    _code, report = _json("runs", "show", run.run_id, "--db", db_url)
    assert report["run"]["invoices"] is None  # without --invoices


def test_runs_show_says_which_bordereau_was_cancelled_and_which_file_is_not_there(
        db_url, tmp_path):
    from .test_cancel import split_mapping

    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "out", RUN)
    assert run_cli("runs", "cancel", run.run_id, "--bordereau", "2", "--reason",
                   "rejected", "--db", db_url).exit_code == 0
    run.files[0].path.unlink()
    _code, report = _json("runs", "show", run.run_id, "--db", db_url)
    shown = report["run"]
    assert shown["status"] == "committed" and shown["cancelled"] is None
    [part] = shown["cancelled_bordereaux"]
    assert (part["id_bord"], part["reason"]) == (2, "rejected")
    by_name = {f["name"]: f for f in shown["files"]}
    cancelled = sorted(name for name, f in by_name.items() if f["cancelled"])
    assert len(cancelled) == 2 and all("0000002" in name for name in cancelled)  # xml, csv
    assert by_name[run.files[0].path.name]["in_place"] is False
    assert sum(not f["in_place"] for f in shown["files"]) == 1
    assert [b["id_bord"] for b in shown["helios"]] == [1, 2, 3]
    assert run_cli("runs", "reinstate", run.run_id, "--bordereau", "2", "--reason",
                   "cancelled by mistake", "--db", db_url).exit_code == 0
    _code, report = _json("runs", "show", run.run_id, "--db", db_url)
    shown = report["run"]
    assert shown["cancelled_bordereaux"] == []
    [undone] = shown["reinstatements"]
    assert (undone["id_bord"], undone["reason"], undone["cancel_reason"]) == (
        2, "cancelled by mistake", "rejected")
    assert not any(f["cancelled"] for f in shown["files"])


def test_a_numdette_given_without_debt_and_a_mapping_of_no_run_are_said_in_json(
        db_url, tmp_path):
    export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    code, report = _json("runs", "find", "202600103", "--db", db_url)
    assert code == 1 and report["titles"] == [] and report["left_out"] == []
    assert report["numdette_of"] == ["FA-2026-00103"]
    code, report = _json("runs", "find", "FA-2026-00103", "--db", db_url)
    assert code == 0 and report["numdette_of"] == []
    code, report = _json("runs", "list", "--mapping", tmp_path / "other.yaml", "--db", db_url)
    assert code == 0 and report["runs"] == []
    assert report["other_mappings"] == {"count": 1, "paths": [str(MAPPING)]}
    _code, report = _json("runs", "list", "--db", db_url)
    assert report["other_mappings"] is None


def test_runs_show_names_the_input_by_its_absolute_path(tmp_path, monkeypatch):
    """`runs show` named the input by its name alone, and its left-out invoices (so did
    `runs find`) by the path the export named it with, relative to the folder the export
    ran in ('school-export.json:$.invoices[5]'): support reading the run later, from
    elsewhere, could not tell which file it was. A run records the input's absolute path
    now, and its left-out records by it; a run recorded before says its folder was not
    recorded, and that its left-out records name the input as the export did."""
    import shutil
    import sqlite3

    school = tmp_path / "school"
    school.mkdir()
    shutil.copy(EXAMPLE, school / "school-export.json")
    db = tmp_path / "store.sqlite3"
    monkeypatch.chdir(school)
    r = run_cli("export", "-m", MAPPING, "-i", "school-export.json", "-o", "out", "--date",
                "2026-11-23", "--db", f"sqlite:///{db}", "--create-store")
    assert r.exit_code == 0, r.output
    # the export itself names the input as typed, from where it runs
    assert "(school-export.json:$.invoices[5]): total is 0.00" in r.stdout, r.stdout
    monkeypatch.chdir(tmp_path)
    absolute = str((school / "school-export.json").resolve())
    code, report = _json("runs", "list", "--db", f"sqlite:///{db}")
    run = report["runs"][0]["run"]
    shown = run_cli("runs", "show", run, "--db", f"sqlite:///{db}").stdout
    assert f"\n  input       {absolute}  (sha256 " in shown, shown
    assert (f"\n  left out    FA-2026-00106 ({absolute}:$.invoices[5]): total is 0.00 "
            "(policy zero_total)\n") in shown, shown
    found = run_cli("runs", "find", "FA-2026-00106", "--db", f"sqlite:///{db}").stdout
    assert f" from {absolute}:$.invoices[5]: total is 0.00" in found, found
    code, report = _json("runs", "show", run, "--db", f"sqlite:///{db}")
    assert report["run"]["input"]["path"] == absolute
    assert report["run"]["left_out"][0]["origin"] == f"{absolute}:$.invoices[5]"

    # a run recorded before: the input's name alone, its left-out records as the export
    # named them
    with sqlite3.connect(db) as conn:
        [(policies,)] = conn.execute("SELECT policies FROM runs").fetchall()
        old = json.loads(policies)
        del old["input_path"]
        old["left_out"][0]["origin"] = "school-export.json:$.invoices[5]"
        conn.execute("UPDATE runs SET policies = ?", (json.dumps(old, sort_keys=True),))
    conn.close()
    shown = run_cli("runs", "show", run, "--db", f"sqlite:///{db}").stdout
    assert ("\n  input       school-export.json  (sha256 ") in shown, shown
    assert ("…; its folder was not recorded: a run recorded before pesgen kept it; its "
            "left-out records name it as the export did, from the folder it ran in)\n"
            ) in shown, shown
    assert "(school-export.json:$.invoices[5]): total is 0.00" in shown, shown
    code, report = _json("runs", "show", run, "--db", f"sqlite:///{db}")
    assert report["run"]["input"]["path"] is None
