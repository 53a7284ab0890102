"""The support commands (runs, regenerate, validate, formats, payfip reads): they answer
about the store and files the user meant, and never create or guess one silently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import ExitCode

from .conftest import EXAMPLES, MAPPINGS, ROOT, RUN_DATE
from .mapping_support import mapping_copy

JSON_MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
JSON_INPUT = EXAMPLES / "school-export.json"

runner = CliRunner()


def _run(*args: str | Path, env: dict[str, str] | None = None):
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception, result.output)
    assert "Traceback" not in result.output
    return result


def _export(out: Path, *extra: str | Path, mapping: Path = JSON_MAPPING,
            input_path: Path = JSON_INPUT):
    return _run("export", "-m", mapping, "-i", input_path, "-o", out, "--date", RUN_DATE,
                *extra)


# ---------------------------------------------------------------- 1. a store that is not there

READ_COMMANDS = [
    ("runs", "list"),
    ("runs", "show", "0123abcd"),
    ("runs", "find", "FA-2026-00101"),
    ("runs", "find", "--debt", "202600101"),
    ("runs", "cancel", "0123abcd", "--reason", "rejected"),
    ("runs", "reinstate", "0123abcd", "--reason", "kept"),
    ("runs", "extract", "0123abcd", "--out", "OUT"),
    ("regenerate", "0123abcd", "--out", "OUT"),
    ("acquit", str(ROOT / "tests" / "acquit" / "accepted.xml")),
    ("acquit", str(ROOT / "tests" / "acquit" / "accepted.xml"), "--record"),
    ("payfip", "payments"),
    ("payfip", "anomalies"),
    ("payfip", "datamatrix", "--run", "0123abcd", "--code-etablissement", "123"),
]


@pytest.mark.parametrize("command", READ_COMMANDS,
                         ids=lambda c: " ".join(Path(a).name for a in c[:3] if a[0] != "0"))
def test_a_command_that_reads_the_store_refuses_a_missing_one(tmp_path, command):
    """A typo in --db (or a forgotten PESGEN_DB) must not answer "in no run" from a store
    it has just created: nothing is created, the path and how it was chosen are named."""
    db = tmp_path / "typo-dir" / "store.sqlite3"
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    r = _run(*args, "--db", db)
    assert r.exit_code == ExitCode.STATE, r.output
    assert not db.parent.exists()  # neither the store nor its folder
    assert not (tmp_path / "out").exists()
    assert f"no pesgen store at {db}" in r.stderr, r.stderr
    assert "--db" in r.stderr and "PESGEN_DB" in r.stderr
    assert "pesgen export" in r.stderr  # how a store comes to exist
    assert "in no run" not in r.output and "no run recorded" not in r.output


def test_a_missing_store_named_by_the_environment_or_the_config_says_so(tmp_path, monkeypatch):
    db = tmp_path / "nowhere" / "pesgen.sqlite3"
    monkeypatch.setenv("PESGEN_DB", str(db))
    r = _run("runs", "find", "FA-2026-00101")
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"no pesgen store at {db} (chosen by PESGEN_DB)" in r.stderr, r.stderr
    config = tmp_path / "config.yaml"
    config.write_text(f"db: {db}\n", encoding="utf-8")
    monkeypatch.delenv("PESGEN_DB")
    monkeypatch.setenv("PESGEN_CONFIG", str(config))
    r = _run("runs", "list")
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"(chosen by db in {config})" in r.stderr, r.stderr
    assert not db.parent.exists()


def test_an_empty_file_is_not_a_store_to_read(tmp_path):
    """An earlier pesgen created an empty file at a mistyped path: still no store."""
    db = tmp_path / "store.sqlite3"
    db.write_bytes(b"")
    r = _run("runs", "find", "FA-2026-00101", "--db", db)
    assert r.exit_code == ExitCode.STATE, r.output
    assert "not a pesgen store" in r.stderr and "(chosen by --db)" in r.stderr, r.stderr
    assert db.read_bytes() == b""  # not migrated into a store


def test_export_creates_a_store_and_names_it(tmp_path):
    db = tmp_path / "new" / "store.sqlite3"
    first = _export(tmp_path / "out", "--db", db, "--create-store")
    assert first.exit_code == 0, first.output
    assert f"  store: {db} (created by this run)" in first.stdout.splitlines()
    # the store now exists: the read commands find it and the run in it
    listed = _run("runs", "list", "--db", db)
    assert listed.exit_code == 0 and "no run recorded" not in listed.stdout
    r = _run("runs", "find", "FA-2026-00101", "--db", db)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("how", ["--db", "PESGEN_DB", "config"])
def test_export_creates_a_named_store_only_when_asked(tmp_path, monkeypatch, how):
    """A mistyped --db, or another machine's PESGEN_DB, would start the numbering again
    at 1 and let every invoice out a second time: an export refuses a store named on
    purpose that is not there, creating nothing, unless --create-store says it is new."""
    db = tmp_path / "typo" / "store.sqlite3"
    args: tuple[str | Path, ...] = ()
    if how == "--db":
        args = ("--db", db)
    elif how == "PESGEN_DB":
        monkeypatch.setenv("PESGEN_DB", str(db))
    else:
        config = tmp_path / "config.yaml"
        config.write_text(f"db: {db}\n", encoding="utf-8")
        monkeypatch.setenv("PESGEN_CONFIG", str(config))
    r = _export(tmp_path / "out", *args)
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"no pesgen store at {db}" in r.stderr, r.stderr
    assert "--create-store" in r.stderr and "numbering again at 1" in r.stderr
    assert not db.parent.exists() and not (tmp_path / "out").exists()
    made = _export(tmp_path / "out", *args, "--create-store")
    assert made.exit_code == 0, made.output
    assert f"  store: {db} (created by this run)" in made.stdout.splitlines()


def test_the_default_store_is_created_by_the_first_export(tmp_path, _isolated_state):
    """No --db, PESGEN_DB nor configured db: the machine's first run makes its store."""
    assert not _isolated_state.exists()
    r = _export(tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert f"  store: {_isolated_state} (created by this run)" in r.stdout.splitlines()


def test_an_empty_db_option_is_refused_not_read_as_the_default_store(tmp_path,
                                                                     _isolated_state):
    """`--db "$STORE"` with STORE unset: not the default store, by accident; nor a
    store named by blanks (`--db " $STORE"`), which would be a file of that name."""
    for command in (("export", "-m", MAPPINGS / "villeneuve-sur-loing.yaml", "-i",
                     EXAMPLES / "school-export.json", "-o", tmp_path / "out"),
                    ("runs", "list")):
        for db in ("", "  "):
            r = _run(*command, "--db", db)
            assert r.exit_code == ExitCode.USAGE, r.output
            assert "--db is empty" in r.stderr, r.stderr
    # an option's mistake is said first: not the input file missing behind it
    r = _run("export", "-m", MAPPINGS / "villeneuve-sur-loing.yaml", "-i",
             tmp_path / "absent.json", "-o", tmp_path / "out", "--db", "")
    assert r.exit_code == ExitCode.USAGE and "--db is empty" in r.stderr, r.stderr
    assert not _isolated_state.exists() and not (tmp_path / "out").exists()


def test_export_names_an_existing_store(tmp_path, _isolated_state):
    from pesgen.store import Store

    Store(f"sqlite:///{_isolated_state}").engine.dispose()  # made before, e.g. set-start
    r = _export(tmp_path / "a")  # the default store (tests: a folder of their own)
    assert r.exit_code == 0, r.output
    assert f"  store: {_isolated_state}" in r.stdout.splitlines(), r.stdout


def test_runs_list_of_a_mapping_no_run_used_names_the_mappings_the_store_holds(
        tmp_path, monkeypatch):
    """`runs list --mapping m.yaml` typed in another folder than the export's matches no
    run (runs record the mapping's absolute path): it said 'no run recorded' of a store
    holding runs, read by support as 'nothing was exported'. It names the path it
    looked for and the mapping files the store's runs were made with."""
    r = _export(tmp_path / "out")
    assert r.exit_code == 0, r.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    listed = _run("runs", "list", "-m", JSON_MAPPING.name)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == (
        f"no run of mapping {elsewhere.resolve() / JSON_MAPPING.name} in this store: its "
        f"runs are of 1 other mapping file(s): {JSON_MAPPING.resolve()} (pesgen runs list "
        "lists them all)\n")
    # the mapping the run was made with lists it, as before
    mine = _run("runs", "list", "-m", JSON_MAPPING)
    assert mine.stdout.startswith(_run_id(r.stdout)), mine.stdout


@pytest.mark.parametrize("command", [("runs", "show"), ("regenerate",), ("runs", "extract")],
                         ids=lambda c: " ".join(c))
def test_a_run_id_the_store_does_not_hold_names_the_store_read(tmp_path, _isolated_state,
                                                              command):
    """A run id copied from another store's listing (the collectivity's own store, given
    to the export by PESGEN_DB, and a later `runs show` without it) was answered 'no
    run ID' alone: it names the store it read and how to list or name another."""
    assert _export(tmp_path / "out").exit_code == 0
    extra = ("--out", str(tmp_path / "new")) if command[-1] != "show" else ()
    r = _run(*command, "abcd1234", *extra)
    assert r.exit_code == ExitCode.STATE, r.output
    assert r.stderr == (f"error: no run abcd1234 in the store {_isolated_state}: pesgen "
                        "runs list lists its runs (a run another store recorded: give that "
                        "store with --db or PESGEN_DB)\n"), r.stderr
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------- 2. the validation recorded


def _run_id(stdout: str) -> str:
    return stdout.split(", run ", 1)[1].split()[0]


def test_a_layout_checked_run_records_its_layouts_not_an_xsd(tmp_path):
    r = _export(tmp_path / "out", mapping=MAPPINGS / "villeneuve-sur-loing-emagnus.yaml")
    assert r.exit_code == 0, r.output
    run_id = _run_id(r.stdout)
    from pesgen.store import Store

    recorded = json.loads(Store().get_run(run_id)["validation"])
    assert "pesgen_xsd" not in recorded
    assert recorded["business_rules"] == ["pes-common"]  # the format's title rules
    assert recorded["files"] == {
        name: {"layout": layout, "xsd": None, "bordereau_rules": False, "official_xsd": None}
        for name, layout in [("WTAMC001.txt", "wtamc001.layout.yaml"),
                             ("WTAMC001AS.txt", "wtamc001as.layout.yaml"),
                             ("WTAMC001_TSOL.txt", "wtamc001tsol.layout.yaml")]}
    shown = _run("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert "  validation  title rules pes-common (every title)" in lines, shown.stdout
    assert "              WTAMC001.txt: layout wtamc001.layout.yaml" in lines
    assert "XSD" not in "\n".join(ln for ln in lines if "WTAMC001" in ln and "layout" in ln)
    assert "pesgen_xsd" not in shown.stdout


def test_an_xsd_checked_run_records_its_xsd_and_the_dgfip_package_not_given(tmp_path):
    r = _export(tmp_path / "out")
    assert r.exit_code == 0, r.output
    run_id = _run_id(r.stdout)
    from pesgen.store import Store

    recorded = json.loads(Store().get_run(run_id)["validation"])
    name = "PESORMC_21450999400015_2026_0000001.xml"
    assert recorded["business_rules"] == ["pes-common", "pes-ormc"]
    assert recorded["files"] == {name: {"xsd": "pes-ormc/pes-ormc.xsd", "xsd_of": "pesgen",
                                        "layout": None, "bordereau_rules": True,
                                        "official_xsd": None}}
    lines = _run("runs", "show", run_id).stdout.splitlines()
    assert (f"              {name}: pesgen XSD pes-ormc/pes-ormc.xsd + bordereau rules; "
            "DGFiP XSD not applied") in lines, lines


def test_a_bundle_s_own_xsd_is_not_called_pesgen_s_nor_said_to_run_bordereau_rules(tmp_path):
    """validate --format cosoluce-corail said 'pesgen XSD + bordereau rules' and every
    XSD problem 'rule xsd.pesgen', although the XSD is the bundle's corail.xsd and the
    PES bordereau rules find no BlocBordereau in an ImportCosoluce file (corail persona
    finding 7). It names the XSD, says whose it is and that no bordereau rule applied;
    a run of it records (and runs show says) the same."""
    expected = next((Path(__file__).parents[1] / "templates" / "cosoluce-corail" /
                     "expected").glob("CORAIL_*.xml"))
    r = _run("validate", expected, "--format", "cosoluce-corail")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == (f"{expected}: valid as cosoluce-corail: the format's own XSD "
                                "corail.xsd; no PES bordereau rules: its files have no "
                                "BlocBordereau")
    bad = tmp_path / "bad.xml"
    bad.write_bytes(expected.read_bytes().replace(b'<Exercice V="2026"/>',
                                                  b'<Exercice V="20x6"/>'))
    r = _run("validate", bad, "--format", "cosoluce-corail")
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert (f"{bad} is invalid against format cosoluce-corail (the format's own XSD "
            "corail.xsd; no PES bordereau rules") in r.stderr
    assert "/Information/Exercice: Element 'Exercice'" in r.stderr
    assert "(rule xsd.bundle)" in r.stderr and "xsd.pesgen" not in r.stderr
    assert "pesgen XSD" not in r.stdout + r.stderr
    # pesgen's own PES XSD is still said to be pesgen's, with the bordereau rules
    pes = next((Path(__file__).parents[1] / "templates" / "pes-ormc" / "expected"
                ).glob("*.xml"))
    r = _run("validate", pes)
    assert r.stdout.strip().endswith("pesgen XSD pes-ormc/pes-ormc.xsd + bordereau rules")
    # a run of the bundle records the same
    r = _export(tmp_path / "out", mapping=MAPPINGS / "villeneuve-sur-loing-corail.yaml")
    assert r.exit_code == 0, r.output
    run_id = _run_id(r.stdout)
    from pesgen.store import Store

    recorded = json.loads(Store().get_run(run_id)["validation"])
    [(name, applied)] = recorded["files"].items()
    assert applied == {"xsd": "corail.xsd", "xsd_of": "bundle", "layout": None,
                       "bordereau_rules": False, "official_xsd": None}
    lines = _run("runs", "show", run_id).stdout.splitlines()
    assert f"              {name}: the format's own XSD corail.xsd" in lines, lines


def test_a_bundle_file_that_is_not_well_formed_is_named_by_its_line(tmp_path):
    """xml.bundle: a file of a bundle with its own XSD (Corail's) that is not well-formed.
    `pesgen validate` names its line and the rule; `pesgen export` with a bundle whose
    template writes it refuses the run (exit 6) naming the file it would have written and
    the line, not the temporary file it parsed (the message said '(.pesgen-….part, line
    12)'), and writes nothing."""
    expected = next((Path(__file__).parents[1] / "templates" / "cosoluce-corail" /
                     "expected").glob("CORAIL_*.xml"))
    cut = tmp_path / "cut.xml"
    data = expected.read_bytes()
    cut.write_bytes(data[:data.index(b"</Information>")] + b"</Informations>\n")
    line = data[:data.index(b"</Information>")].count(b"\n") + 1
    r = _run("validate", cut, "--format", "cosoluce-corail")
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert r.stderr.splitlines()[1:] == [
        f"  - cut.xml:{line}: not well-formed: Opening and ending tag mismatch: Information "
        f"line 3 and Informations, line {line}, column 16 (rule xml.bundle)",
        "1 problem(s)."]

    fmts = tmp_path / "fmts"
    shutil.copytree(Path(__file__).parents[1] / "templates" / "cosoluce-corail",
                    fmts / "cosoluce-corail")
    template = fmts / "cosoluce-corail" / "corail.xml.j2"
    text = template.read_text(encoding="utf-8")
    closed = '<Exercice V="{{ doc.bordereau.exercise }}"/>'
    assert text.count(closed) == 1
    template.write_text(text.replace(closed, closed[:-2] + ">"), encoding="utf-8")
    out = tmp_path / "out"
    r = _export(out, "--formats-dir", fmts, mapping=MAPPINGS / "villeneuve-sur-loing-corail.yaml")
    assert r.exit_code == ExitCode.OUTPUT, r.output
    name = expected.name
    # (a line may follow, saying the store the refused export created is removed)
    assert r.stderr.splitlines()[:3] == [
        "error: 1 problem(s) in the rendered output; nothing written",
        f"  - {name}:9: not well-formed: Opening and ending tag mismatch: Exercice line 5 "
        "and Information, line 9, column 15 (rule xml.bundle)",
        "1 problem(s); nothing was written."]
    assert not out.exists()


def test_a_run_recorded_before_per_file_validation_is_shown_as_recorded(tmp_path):
    import sqlalchemy as sa

    from pesgen.store import Store, runs

    r = _export(tmp_path / "out", mapping=MAPPINGS / "villeneuve-sur-loing-emagnus.yaml")
    run_id = _run_id(r.stdout)
    old = '{"pesgen_xsd": true, "business_rules": true, "official_xsd": null}'
    with Store().engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(validation=old))
    shown = _run("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    assert (f"  validation  {old} (recorded by a pesgen that did not say which file was "
            "checked by what: see the format bundle recorded with the run)") in shown.stdout


# ---------------------------------------------------------------- 3. an invoice left out

def _no_run_next(run_id: str, db: str | None = None) -> str:
    """`runs find`'s line after 'in no run': the dry run on the school's file, with the
    mapping and input the store's latest run (``run_id``, of the example) recorded."""
    from pesgen.store import Store

    created = Store(db).get_run(run_id)["created_at"]
    option = f" --db {db}" if db else ""
    return ("  no run of this store exported it or left it out: an export refused, a dry "
            f"run and a preview record nothing; pesgen export --dry-run -m "
            f"{JSON_MAPPING.resolve()} -i {JSON_INPUT.resolve()}{option} (the mapping and "
            f"input of the store's latest run, {run_id} of {created}: give the school's file "
            "holding the invoice if it is another) says what refuses it")


def test_runs_find_says_which_run_left_an_invoice_out_and_why(tmp_path):
    r = _export(tmp_path / "out")
    assert r.exit_code == 0, r.output
    run_id = _run_id(r.stdout)
    found = _run("runs", "find", " fa-2026-00106 ")  # compared like the guard
    # exit 1: no run holds (exported) it, as for an invoice never seen; the line says why
    assert found.exit_code == 1, found.output
    assert "in no run" not in found.stdout
    [line] = found.stdout.splitlines()
    assert line.startswith(f"FA-2026-00106: not exported: left out by run {run_id} ("), line
    assert line.endswith("examples/school-export.json:$.invoices[5]: total is 0.00 "
                         "(policy zero_total)"), line
    # in no run: what support does next is said, since a refused export records nothing
    assert _run("runs", "find", "FA-2026-09999").stdout.splitlines() == [
        "FA-2026-09999: in no run", _no_run_next(run_id)]


def test_the_commands_runs_show_and_find_say_to_run_name_the_store_given(tmp_path):
    """A store given by --db: `runs find`'s dry run for an invoice in no run, and `runs
    show`'s `runs extract`, were said without it, so that support pasting them read or
    checked against the default store. Now with the same --db, as acquit's next steps."""
    store = tmp_path / "s.sqlite3"
    db = f"sqlite:///{store}"
    r = _export(tmp_path / "out", "--db", db, "--create-store")
    assert r.exit_code == 0, r.output
    run_id = _run_id(r.stdout)
    found = _run("runs", "find", "FA-2026-09999", "--db", db)
    assert found.stdout.splitlines()[1] == _no_run_next(run_id, db), found.stdout
    shown = _run("runs", "show", run_id, "--db", db)
    assert (f"(`pesgen runs extract {run_id} --db {db} --out DIR` writes this mapping, "
            "input and format bundle as recorded)") in shown.stdout, shown.stdout


def test_runs_find_shows_a_left_out_invoice_exported_later_and_exits_0(tmp_path):
    first = _export(tmp_path / "a")
    assert first.exit_code == 0, first.output
    data = json.loads(JSON_INPUT.read_text(encoding="utf-8"))
    [invoice] = [i for i in data["invoices"] if i["number"] == "FA-2026-00106"]
    invoice["lines"] = invoice["lines"][:1]  # the grant was a mistake: 85.00 is due
    invoice["total"] = "85.00"
    data["invoices"] = [invoice]
    corrected = tmp_path / "corrected.json"
    corrected.write_text(json.dumps(data), encoding="utf-8")
    second = _export(tmp_path / "b", input_path=corrected)
    assert second.exit_code == 0, second.output
    found = _run("runs", "find", "FA-2026-00106")
    assert found.exit_code == 0, found.output
    # (less the notes the run recorded about the invoice, test_runs_find_notes)
    lines = [x for x in found.stdout.splitlines() if not x.startswith("  policy: ")]
    assert len(lines) == 4, lines
    assert lines[0].startswith(f"FA-2026-00106 ({corrected}:$.invoices[0]): run "
                               f"{_run_id(second.stdout)}  "), lines[0]
    assert lines[0].endswith("85.00  active")
    assert lines[1] == "  Hélios: IdBord 2 no acknowledgement recorded"
    assert lines[2].startswith("  PayFiP: none (no PayFiP link made for it")
    assert lines[3].startswith(f"FA-2026-00106: not exported: left out by run "
                               f"{_run_id(first.stdout)} (")


def test_runs_find_notes(tmp_path):
    """"The amount (the address) on the invoice is not what the school billed": the
    export's summary said what it did to an invoice's values (a discount line netted, a
    street split, a default civility), and the run recorded those notes, but `runs find`
    and `runs show` gave none of them (only counts), support being sent to extract the
    billing data and dry-run it again. `runs find` lists the notes its run recorded about
    the invoice under its title (the same value changed on several lines said once,
    counted), and none of another invoice's nor the run's own (`*`)."""
    r = _export(tmp_path / "out")
    assert r.exit_code == 0, r.output
    found = _run("runs", "find", "FA-2026-00101")
    assert found.exit_code == 0, found.output
    lines = found.stdout.splitlines()
    assert lines[1:4] == [
        "  policy: transliterate: line.label: –→- (×2)",
        "  policy: civility: 'Mme' sent as 'MME'",
        "  policy: negative_lines: invoice line 4 (-22.75, FM-C1; "
        "examples/school-export.json:$.invoices[0].lines[3]), not in the file: netted 22.75 "
        "into invoice line 1 (line 1 of the title in the file)"], lines
    assert lines[4].startswith("  Hélios: "), lines
    found = _run("runs", "find", "FA-2026-00107")
    notes = [x for x in found.stdout.splitlines() if x.startswith("  policy: ")]
    assert "  policy: missing_civility: no civility: 'MME' used" in notes
    assert ("  policy: street_overflow: street of 39 characters split into Adr1 (10) + Adr2 "
            "(28): address.complement + address.street") in notes
    assert not any("FA-2026-00101" in x or "numbering" in x or "case:" in x for x in notes)


def test_runs_find_of_a_numdette_without_debt_points_to_debt(tmp_path):
    """Support staff give runs find the number a family reads from its payment reference
    (the NumDette, 202600101 for FA-2026-00101): without --debt it is looked up as an
    invoice number, in no run, still exit 1; the answer says which invoice holds it as
    its NumDette and gives the --debt command, where a bare 'in no run' read as 'never
    exported'."""
    r = _export(tmp_path / "out")
    assert r.exit_code == 0, r.output
    found = _run("runs", "find", "202600101")
    assert found.exit_code == 1, found.output
    assert found.stdout.splitlines() == [
        "202600101: in no run",
        "  202600101 is the NumDette of FA-2026-00101: pesgen runs find --debt 202600101"]
    # a number no title holds either way is in no run, with what to do next
    assert _run("runs", "find", "999999").stdout.splitlines() == [
        "999999: in no run", _no_run_next(_run_id(r.stdout))]
    # by --debt it is a NumDette no title has: no export to dry-run for it
    assert _run("runs", "find", "--debt", "999999").stdout == "NumDette 999999: in no run\n"
    assert _run("runs", "find", "--debt", "202600101").exit_code == 0


def test_runs_find_gives_the_latest_run_s_mapping_and_input_for_an_invoice_in_no_run(
        tmp_path):
    """`runs find` of an invoice in no run said `pesgen export --dry-run -m MAPPING -i
    FILE`, placeholders support had to look up, where the store recorded the mapping and
    input of its runs: now those of its latest run, quoted for a shell (a folder with a
    space), and said so; its input recorded without its folder (a run recorded before
    pesgen kept it), FILE, saying what it stands for."""
    import shlex

    import sqlalchemy as sa

    from pesgen.store import Store, runs

    folder = tmp_path / "école 2026"
    folder.mkdir()
    mapping = Path(shutil.copy(JSON_MAPPING, folder / "mapping.yaml"))
    data = json.loads(JSON_INPUT.read_text(encoding="utf-8"))
    first, rest = data["invoices"][:1], data["invoices"][1:]
    (tmp_path / "first.json").write_text(json.dumps({**data, "invoices": first}),
                                         encoding="utf-8")
    given = folder / "export.json"
    given.write_text(json.dumps({**data, "invoices": rest}), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 's.sqlite3'}"
    Store(db).engine.dispose()  # a store holding no run: placeholders, and what they are
    assert _run("runs", "find", "FA-2026-09999", "--db", db).stdout.splitlines()[1].endswith(
        f"; pesgen export --dry-run -m MAPPING -i FILE --db {db} (MAPPING: the school's "
        "mapping, FILE: its file holding the invoice; this store holds no run) says what "
        "refuses it")
    assert _export(tmp_path / "a", "--db", db, "--create-store",
                   input_path=tmp_path / "first.json").exit_code == 0
    r = _export(tmp_path / "b", "--db", db, "--date", "2026-11-24", mapping=mapping,
                input_path=given)
    assert r.exit_code == 0, r.output
    run_id = _run_id(r.stdout)
    created = Store(db).get_run(run_id)["created_at"]
    found = _run("runs", "find", "FA-2026-09999", "--db", db)
    assert found.exit_code == 1, found.output
    command = (f"pesgen export --dry-run -m {shlex.quote(str(mapping.resolve()))} -i "
               f"{shlex.quote(str(given.resolve()))} --db {db}")
    assert found.stdout.splitlines()[1].endswith(
        f"; {command} (the mapping and input of the store's latest run, {run_id} of "
        f"{created}: give the school's file holding the invoice if it is another) says what "
        "refuses it"), found.stdout
    assert shlex.split(command)[-4:-2] == ["-i", str(given.resolve())]
    # a run recorded before pesgen kept its input's folder: FILE, and what it stands for
    with Store(db).engine.begin() as conn:
        policies = json.loads(conn.execute(sa.select(runs.c.policies).where(
            runs.c.id == run_id)).scalar_one())
        del policies["input_path"]
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(
            policies=json.dumps(policies)))
    found = _run("runs", "find", "FA-2026-09999", "--db", db)
    assert found.stdout.splitlines()[1].endswith(
        f"; pesgen export --dry-run -m {shlex.quote(str(mapping.resolve()))} -i FILE --db "
        f"{db} (the mapping of the store's latest run, {run_id} of {created}; FILE: the "
        "school's file holding the invoice, that run's export.json or a later one: its "
        "folder was not recorded) says what refuses it"), found.stdout


# ---------------------------------------------------------------- 4. validate a user's file


@pytest.fixture
def titres_xml(tmp_path) -> Path:
    out = tmp_path / "out-titres"
    r = _export(out, mapping=MAPPINGS / "villeneuve-sur-loing-titres.yaml")
    assert r.exit_code == 0, r.output
    [xml] = out.glob("PESALR1_*.xml")
    return xml


def test_validate_picks_the_format_from_the_files_typfic(titres_xml, tmp_path):
    r = _run("validate", titres_xml)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == (f"{titres_xml}: valid as pes-titres (TypFic PESALR1): pesgen "
                                "XSD pes-titres/pes-titres.xsd + bordereau rules")
    ormc = tmp_path / "ormc"
    assert _export(ormc, "--db", tmp_path / "other.sqlite3", "--create-store").exit_code == 0
    [xml] = ormc.glob("PESORMC_*.xml")
    r = _run("validate", xml)
    assert r.exit_code == 0, r.output
    assert "valid as pes-ormc (TypFic PESORMC)" in r.stdout


def test_validate_with_an_explicit_format_and_a_wording_fit_for_a_users_file(titres_xml):
    r = _run("validate", titres_xml, "--format", "pes-ormc")
    assert r.exit_code == ExitCode.OUTPUT, r.output
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"error: {titres_xml} is invalid against format pes-ormc "
                               "(pesgen XSD pes-ormc/pes-ormc.xsd + bordereau rules): "), lines
    assert "problem(s)" in lines[0]
    assert "rendered output" not in r.stderr and "nothing was written" not in r.stderr
    assert "TypFic" in r.stderr


def test_validate_says_which_format_to_give_when_it_cannot_tell(tmp_path, titres_xml):
    odd = tmp_path / "odd.xml"
    odd.write_bytes(titres_xml.read_bytes().replace(b'<TypFic V="PESALR1"/>',
                                                    b'<TypFic V="PESXXX9"/>'))
    r = _run("validate", odd)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "TypFic 'PESXXX9'" in r.stderr
    assert "--format" in r.stderr and "pes-ormc (PESORMC)" in r.stderr
    assert "pes-titres (PESALR1)" in r.stderr
    none = tmp_path / "none.xml"
    none.write_text("<PES_Aller><EnTetePES/></PES_Aller>", encoding="utf-8")
    r = _run("validate", none)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "no TypFic" in r.stderr and "--format" in r.stderr



def test_validate_names_the_format_whose_xsd_declares_the_files_root(tmp_path):
    """A Corail import has no TypFic: validate said 'no TypFic (PES_Aller/EnTetePES/
    Parametres/TypFic)' (the TypFic is under Enveloppe) and listed the formats by TypFic,
    Corail not among them. It names the format whose XSD declares the file's root
    element, and the --format to give; the file is then valid as it."""
    [corail] = (ROOT / "templates" / "cosoluce-corail" / "expected").glob("*.xml")
    r = _run("validate", corail)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr == (f"error: {corail}: cannot tell which format to validate it against: "
                        "no TypFic (PES_Aller/Enveloppe/Parametres/TypFic) in its first "
                        "elements; its root element ImportCosoluce is one the XSD of "
                        "cosoluce-corail declares: give --format cosoluce-corail\n")
    assert _run("validate", corail, "--format", "cosoluce-corail").exit_code == 0
    # a root no format without TypFic declares: the formats by TypFic, as before
    odd = tmp_path / "odd.xml"
    odd.write_text("<ImportAutre><X/></ImportAutre>", encoding="utf-8")
    r = _run("validate", odd)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "no TypFic (PES_Aller/Enveloppe/Parametres/TypFic)" in r.stderr
    assert "give --format NAME (formats by TypFic: " in r.stderr
    assert "cosoluce-corail" not in r.stderr


def test_validate_help_says_its_file_may_be_a_finance_package_import():
    """validate checks a finance package's XML import too (the Corail file above, with
    --format): its FILE argument's help said 'A PES_Aller XML file.', which sent a
    technician holding a Corail or JVS import to look for another command."""
    import re

    text = runner.invoke(app, ["validate", "--help"], terminal_width=80).stdout
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
    assert "A PES_Aller XML file." not in words
    assert ("The XML file: a PES_Aller, or a finance package's XML import (give --format "
            "for one without TypFic, such as Corail's).") in words, words


def test_regenerate_help_says_cancelled_covers_a_cancelled_bordereau():
    """regenerate --cancelled also writes the cancelled bordereaux of a run that stands
    (the one the trésorerie rejected, which an auditor asks for with the others); its
    help said 'a cancelled run' only, so support rebuilding a run of one rejected
    bordereau did not know the option was theirs."""
    import re

    text = runner.invoke(app, ["regenerate", "--help"], terminal_width=80).stdout
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
    assert ("Also rebuild a cancelled run, or a run's cancelled bordereaux (a rejected "
            "one), to look at them: their files are written as CANCELLED-<name>, the bytes "
            "sent, and must not be sent again.") in words, words


def test_runs_list_help_says_which_date_is_the_file_s_and_how_to_rebuild_it():
    """An auditor asks for "the file we sent on date D": `runs list --help` said only
    'List recorded runs, oldest first.', so support did not know that a run's run date
    (the date its files bear) is listed beside when it was recorded, nor that regenerate
    rebuilds the file."""
    import re

    text = runner.invoke(app, ["runs", "list", "--help"], terminal_width=80).stdout
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
    assert ("each with when it was recorded and its run date (the date its files bear: "
            "`export --date`)") in words, words
    assert "`pesgen regenerate RUN --out NEW_DIR` rebuilds a run's files byte for byte" \
        in words, words


def test_runs_list_s_nearest_run_dates_are_the_closest_other_dates(tmp_path, db_url):
    """The run dates said nearest a --run-date matching nothing are the closest on
    each side, never the date asked (a run bearing it that another filter leaves out):
    the earliest after it of two later ones, the latest before it; a --mapping matching
    nothing of that date is not told the store's other mappings (the dates are said)."""
    october = _run("export", "-m", JSON_MAPPING, "-i", JSON_INPUT, "-o", tmp_path / "a",
                   "--date", "2026-10-30", "--db", db_url, "--create-store")
    assert october.exit_code == 0, october.output
    assert _run("runs", "cancel", _run_id(october.stdout), "--reason", "wrong term", "--db",
                db_url).exit_code == 0
    assert _export(tmp_path / "b", "--db", db_url).exit_code == 0

    def nearest(*args: str | Path) -> dict:
        r = _run("runs", "list", "--db", db_url, "--format", "json", *args)
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    assert nearest("--run-date", "2026-10-01")["nearest_run_dates"] == {
        "before": None, "after": "2026-10-30"}
    # a run bears RUN_DATE, recorded today: left out by --until, its date is not nearest
    assert nearest("--run-date", RUN_DATE, "--until", "2000-01-01")["nearest_run_dates"] == {
        "before": "2026-10-30", "after": None}
    report = nearest("--run-date", "2026-11-01", "-m", JSON_MAPPING)
    assert (report["runs"], report["other_mappings"]) == ([], None), report


def test_runs_list_finds_the_file_of_a_run_date(tmp_path, db_url):
    """"The file of date D" on a large store: `runs list` had no filter, support read
    every line. --run-date D lists the runs whose files bear D (export --date), --since
    and --until those recorded between two days; one matching nothing says so, with the
    store's run dates nearest D, exit 0 as `runs list --mapping` matching nothing; on SQLite
    and PostgreSQL (the store's query)."""
    from datetime import date, timedelta

    october = _run("export", "-m", JSON_MAPPING, "-i", JSON_INPUT, "-o", tmp_path / "a",
                   "--date", "2026-10-30", "--db", db_url, "--create-store")
    assert october.exit_code == 0, october.output
    first = _run_id(october.stdout)
    assert _run("runs", "cancel", first, "--reason", "wrong term", "--db", db_url).exit_code == 0
    november = _export(tmp_path / "b", "--db", db_url)
    assert november.exit_code == 0, november.output
    second = _run_id(november.stdout)
    listed = _run("runs", "list", "--db", db_url, "--run-date", "2026-10-30")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].startswith(f"{first}  ") and "run date 2026-10-30" in lines[0], lines
    assert second not in listed.stdout
    report = json.loads(_run("runs", "list", "--db", db_url, "--run-date", RUN_DATE,
                             "--format", "json").stdout)
    assert ([r["run"] for r in report["runs"]], report["nearest_run_dates"]) == ([second], None)
    missed = _run("runs", "list", "--db", db_url, "--run-date", "2026-11-01")
    assert missed.exit_code == 0, missed.output
    assert missed.stdout == (f"no run of run date 2026-11-01 in this store: this store's "
                             f"nearest run dates: before 2026-10-30, after {RUN_DATE} "
                             "(pesgen runs list lists them all)\n")
    report = json.loads(_run("runs", "list", "--db", db_url, "--run-date", "2026-11-01",
                             "--format", "json").stdout)
    assert (report["runs"], report["nearest_run_dates"]) == (
        [], {"before": "2026-10-30", "after": RUN_DATE})
    # the days the store recorded them on (UTC), not the test's own clock: a midnight
    # crossed between the exports and this line would leave them out
    recorded = {r["run"]: date.fromisoformat(r["created_at"][:10]) for r in json.loads(
        _run("runs", "list", "--db", db_url, "--format", "json").stdout)["runs"]}
    today, last = recorded[first], recorded[second]
    both = _run("runs", "list", "--db", db_url, "--since", str(today), "--until",
                str(last))
    assert [line.split()[0] for line in both.stdout.splitlines()
            if not line.startswith(" ")] == [first, second], both.output
    yesterday = today - timedelta(days=1)
    none = _run("runs", "list", "--db", db_url, "--until", str(yesterday))
    assert none.exit_code == 0 and none.stdout == (
        f"no run recorded up to {yesterday} in this store (pesgen runs list lists them "
        "all)\n"), none.output
    bad = _run("runs", "list", "--db", db_url, "--run-date", "2026-13-01")
    assert bad.exit_code == ExitCode.USAGE, bad.output
    assert "--run-date: 2026-13-01 is not a day of the calendar" in bad.stderr
    crossed = _run("runs", "list", "--db", db_url, "--since", str(today), "--until",
                   str(yesterday))
    assert crossed.exit_code == ExitCode.USAGE, crossed.output
    assert f"--until {yesterday} is before --since {today}" in crossed.stderr


# ---------------------------------------------------------------- 5. a formats folder not there


@pytest.mark.parametrize("command", [
    ("formats",),
    ("check-mapping", str(JSON_MAPPING)),
    ("check-format", "pes-ormc"),
    ("validate", str(JSON_INPUT)),
    ("new-mapping", "Commune de X", "--format", "pes-ormc"),
], ids=lambda c: c[0])
def test_a_formats_dir_that_does_not_exist_is_a_usage_error(tmp_path, command):
    typo = tmp_path / "does-not-exist"
    r = _run(*command, "--formats-dir", typo)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert f"--formats-dir {typo}: no such folder" in r.stderr, r.stderr
    assert "pes-ormc" not in r.stdout  # nothing listed nor checked from the others


def test_a_formats_path_entry_that_does_not_exist_is_a_usage_error(tmp_path, monkeypatch):
    typo = tmp_path / "typo"
    monkeypatch.setenv("PESGEN_FORMATS_PATH", str(typo))
    r = _run("formats")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert f"PESGEN_FORMATS_PATH {typo}: no such folder" in r.stderr, r.stderr


def test_an_unknown_format_says_where_formats_were_looked_for(tmp_path):
    fmts = tmp_path / "fmts"
    fmts.mkdir()
    mapping, _ = mapping_copy(tmp_path, JSON_MAPPING,
                              ("format: pes-ormc", "format: pes-ormc-local"), name="m.yaml")
    r = _run("check-mapping", mapping, "--formats-dir", fmts)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert "unknown output format 'pes-ormc-local'" in r.stderr
    assert f"looked in {fmts} (--formats-dir), " in r.stderr, r.stderr
    assert "(shipped)" in r.stderr
    assert "--formats-dir DIR or PESGEN_FORMATS_PATH" in r.stderr


# ---------------------------------------------------------------- 6. a refused export's folder


def _bad_input(tmp_path: Path) -> Path:
    data = json.loads(JSON_INPUT.read_text(encoding="utf-8"))
    data["invoices"][0]["payer"]["kind"] = "martian"  # no code for it: refused
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    return bad


@pytest.mark.parametrize("out", ["out-new", "a/b/out-new"])
def test_a_refused_export_removes_the_folders_it_created(tmp_path, out):
    r = _export(tmp_path / out, input_path=_bad_input(tmp_path))
    assert r.exit_code == ExitCode.INPUT, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_a_refused_export_keeps_a_folder_that_was_there(tmp_path):
    out = tmp_path / "existing"
    out.mkdir()
    r = _export(out, input_path=_bad_input(tmp_path))
    assert r.exit_code == ExitCode.INPUT, r.output
    assert out.is_dir() and list(out.iterdir()) == []
    deeper = tmp_path / "existing" / "new"
    r = _export(deeper, input_path=_bad_input(tmp_path))
    assert r.exit_code == ExitCode.INPUT, r.output
    assert out.is_dir() and not deeper.exists()


def test_a_refused_regenerate_removes_the_folder_it_created(tmp_path, monkeypatch):
    first = _export(tmp_path / "out")
    assert first.exit_code == 0, first.output
    import pesgen.export as export_mod

    real = export_mod.Exporter.finish

    def changed(self, prepared, first_number):  # pesgen renders otherwise since
        temps = real(self, prepared, first_number)
        temps[0][0].write_bytes(b"changed")
        prepared.result.files[0] = export_mod.replace(prepared.result.files[0], sha256="0")
        return temps

    monkeypatch.setattr(export_mod.Exporter, "finish", changed)
    target = tmp_path / "regen" / "new"
    r = _run("regenerate", _run_id(first.stdout), "--out", target)
    assert r.exit_code == ExitCode.STATE, r.output
    assert not (tmp_path / "regen").exists()


# ---------------------------------------------------------------- 7. payment references: ORMC


TITRES_MAPPING = MAPPINGS / "villeneuve-sur-loing-titres.yaml"


def test_a_titres_run_writes_no_payment_references(tmp_path):
    """Titres carry no NumDette, Per nor Cle: a references CSV would be empty columns."""
    out = tmp_path / "out"
    r = _export(out, mapping=TITRES_MAPPING)
    assert r.exit_code == 0, r.output
    assert [p.name for p in out.iterdir()] == ["PESALR1_21450999400015_2026_0000001.xml"]
    assert "payment references" not in r.stdout
    from pesgen.store import Store

    recorded = Store().get_run(_run_id(r.stdout))["files"]
    assert [f["name"] for f in recorded] == ["PESALR1_21450999400015_2026_0000001.xml"]


def test_an_ormc_run_still_writes_its_payment_references(tmp_path):
    out = tmp_path / "out"
    r = _export(out)
    assert r.exit_code == 0, r.output
    refs = out / "PESORMC_21450999400015_2026_0000001.references.csv"
    rows = refs.read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith("FA-2026-00101;2026;1;1;202600101;")
    assert all(row.split(";")[4:8].count("") == 0 for row in rows[1:])  # keys all there


def test_a_titres_run_recorded_with_a_references_file_still_regenerates(tmp_path,
                                                                        monkeypatch):
    """Runs recorded before this change kept a references CSV for titres too: regenerate
    writes it again and checks it against its recorded sha256, as for any file."""
    import pesgen.export as export_mod

    with monkeypatch.context() as m:
        m.setattr(export_mod.Exporter, "_references_for",
                  lambda self, titles: True)  # as pesgen wrote them then
        first = _export(tmp_path / "out", mapping=TITRES_MAPPING)
    assert first.exit_code == 0, first.output
    old_refs = tmp_path / "out" / "PESALR1_21450999400015_2026_0000001.references.csv"
    assert old_refs.is_file()
    regen = tmp_path / "regen"
    r = _run("regenerate", _run_id(first.stdout), "--out", regen)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in regen.iterdir()) == sorted(
        p.name for p in (tmp_path / "out").iterdir())
    assert (regen / old_refs.name).read_bytes() == old_refs.read_bytes()


def test_numbering_set_start_creates_a_named_store_only_when_asked(tmp_path):
    """set-start, the other command that may come first, holds to the export's rule: a
    store named on purpose that is not there (a typo?) is created only when asked."""
    db = tmp_path / "typo" / "store.sqlite3"
    args = ("numbering", "set-start", "-m", JSON_MAPPING, "--start", "5", "--db", db)
    r = _run(*args)
    assert r.exit_code == ExitCode.STATE, r.output
    assert "--create-store" in r.stderr and not db.parent.exists()
    made = _run(*args, "--create-store")
    assert made.exit_code == 0, made.output
    assert made.stdout.strip().endswith(f"starts at 5 (store {db}, created)")
    # the store now exists: the export numbers from it, without --create-store
    first = _export(tmp_path / "out", "--db", db)
    assert first.exit_code == 0, first.output
    assert "(IdBord 5, 11 title(s)" in first.stdout


@pytest.mark.parametrize("command", ["set-start", "export"])
def test_a_missing_named_store_s_refusal_reads_right_for_each_command(tmp_path, command):
    """`numbering set-start` refused a missing --db store saying "an export creates a
    store it is named only with --create-store": garbled, and about another command.
    The advice says what holds for both: a store named on purpose is created only with
    --create-store."""
    db = tmp_path / "typo" / "store.db"
    mapping = MAPPINGS / "villeneuve-sur-loing.yaml"
    args = (["numbering", "set-start", "--mapping", mapping, "--start", "5"]
            if command == "set-start" else
            ["export", "-m", mapping, "-i", EXAMPLES / "school-export.json", "-o",
             tmp_path / "out", "--date", RUN_DATE])
    r = _run(*args, "--db", db)
    assert r.exit_code == ExitCode.STATE, r.output
    assert ("nothing created: a store named on purpose (--db, PESGEN_DB or db in the "
            "configuration file) is created only with --create-store (a new collectivity's "
            "first run)") in r.stderr, r.stderr
    assert "an export creates" not in r.stderr
    assert not db.exists()


@pytest.fixture
def installed_wheel(tmp_path, monkeypatch):
    """pesgen as installed from a wheel: its shipped bundles in
    ``site-packages/pesgen/_data/templates`` (a copy of the checkout's)."""
    import pesgen.resources as resources

    from .conftest import ROOT

    package = tmp_path / "site-packages" / "pesgen"
    shutil.copytree(ROOT / "templates", package / "_data" / "templates")
    shutil.copytree(ROOT / "schemas", package / "_data" / "schemas")
    monkeypatch.setattr(resources, "_PACKAGE_DIR", package)
    resources.data_dir.cache_clear()
    yield package / "_data" / "templates"
    resources.data_dir.cache_clear()


def test_check_format_regen_does_not_rewrite_the_installed_package(installed_wheel,
                                                                    monkeypatch):
    """`pesgen check-format pes-ormc --regen` on a shipped bundle rewrote (and could
    delete) files inside site-packages/pesgen/_data/templates/. Refused (exit 2), nothing
    changed: the bundle is to be copied into a --formats-dir folder."""
    bundle = installed_wheel / "pes-ormc"
    expected = bundle / "expected"
    stale = expected / "stale.xml"  # a file the fixture does not render: --regen removes it
    stale.write_text("<old/>", encoding="utf-8")
    before = {p: p.read_bytes() for p in expected.rglob("*") if p.is_file()}
    r = CliRunner().invoke(app, ["check-format", "pes-ormc", "--regen"])
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr.startswith(f"error: pes-ormc: {bundle} is the bundle installed with "
                               "pesgen: --regen does not rewrite (nor remove) files inside "
                               "the installed package."), r.stderr
    assert "--formats-dir FORMATS --regen" in r.stderr
    assert {p: p.read_bytes() for p in expected.rglob("*") if p.is_file()} == before
    # its self-test without --regen still runs on it (the stale file is said, not removed)
    checked = CliRunner().invoke(app, ["check-format", "pes-ormc"])
    assert stale.exists() and "Traceback" not in checked.output


def test_check_layout_takes_a_shipped_layout_by_its_bundle_name(tmp_path, monkeypatch):
    """`pesgen check-layout bl-emagnus/wtamc001.layout.yaml` (a shipped layout by the
    name `pesgen formats` gives) failed "layout file not found", exit 3 (a mapping's
    code); a layout that is nowhere is a usage error, as a missing file to validate."""
    monkeypatch.chdir(tmp_path)  # not the checkout's templates/
    r = CliRunner().invoke(app, ["check-layout", "bl-emagnus/wtamc001.layout.yaml"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("bl-emagnus/wtamc001.layout.yaml: layout WTAMC001 OK (csv")
    missing = CliRunner().invoke(app, ["check-layout", "bl-emagnus/nope.layout.yaml"])
    assert missing.exit_code == ExitCode.USAGE, missing.output
    assert missing.stderr.startswith("error: bl-emagnus/nope.layout.yaml: no such layout "
                                     "file, nor a format bundle's layout")
    # confined to the bundle: no climbing out of it
    out = CliRunner().invoke(app, ["check-layout", "bl-emagnus/../pes-ormc/format.yaml"])
    assert out.exit_code == ExitCode.USAGE
