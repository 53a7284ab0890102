"""A note or a refusal that says the same of many invoices is said once in the text
output, not once per invoice (an onboarding walk-through's 77 identical account_holder
lines, 200 identical duplicate refusals); every record stays named where a support
person needs it (a refusal's records, one short line each; the notes in --format json)."""

from __future__ import annotations

import json

from .conftest import MAPPINGS, generated_input, run_cli

ORMC = MAPPINGS / "villeneuve-sur-loing.yaml"
HOLDER = "account_holder: account.holder: empty, the debtor's name is used (TitCpte)"


def _without_holders(tmp_path, invoices: int):
    """The benchmark's export of ``invoices`` invoices (every third a direct debit),
    the account holder of each debit left empty: the numbers of the debits."""
    tmp_path.mkdir(exist_ok=True)
    path = generated_input(tmp_path / "export.json", invoices)
    data = json.loads(path.read_text(encoding="utf-8"))
    debits = []
    for invoice in data["invoices"]:
        if invoice["payment"]["method"] == "direct_debit":
            invoice["payment"]["mandate"]["holder"] = ""
            debits.append(invoice["number"])
    path.write_text(json.dumps(data), encoding="utf-8")
    return path, debits


def _dry_run(tmp_path, path, *more):
    return run_cli("export", "-m", ORMC, "-i", path, "--dry-run", "--date", "2026-11-23",
                   "--db", tmp_path / "store.sqlite3", "--create-store", *more)


def test_a_note_alike_for_more_than_five_invoices_is_said_once(tmp_path):
    path, debits = _without_holders(tmp_path, 20)
    assert len(debits) == 7
    made = _dry_run(tmp_path, path)
    assert made.exit_code == 0, made.output
    lines = made.stdout.splitlines()
    assert "account_holder ×7" in lines[lines.index(next(
        x for x in lines if x.startswith("policies applied: ")))]
    said = [x for x in lines if "account_holder:" in x]
    assert said == [f"  - 7 invoices ({', '.join(debits[:3])} and 4 more): {HOLDER}"]
    assert ("  (a note alike for more than 5 invoices is said once, naming the first 3: "
            "--format json lists each)") in lines
    # the JSON summary still lists each note
    made = _dry_run(tmp_path, path, "--format", "json")
    assert made.exit_code == 0, made.output
    notes = json.loads(made.stdout)["notes"]
    assert [n["invoice"] for n in notes if n["policy"] == "account_holder"] == debits
    # five alike: each said, as before
    path, debits = _without_holders(tmp_path / "five", 14)
    assert len(debits) == 5
    made = _dry_run(tmp_path / "five", path)
    assert made.exit_code == 0, made.output
    said = [x for x in made.stdout.splitlines() if "account_holder:" in x]
    assert said == [f"  - {number}: {HOLDER}" for number in debits]
    assert "is said once" not in made.stdout


def test_a_recorded_run_s_summary_says_where_the_notes_are_listed_each(tmp_path):
    path, _ = _without_holders(tmp_path, 20)
    db = tmp_path / "store.sqlite3"
    made = run_cli("export", "-m", ORMC, "-i", path, "-o", tmp_path / "out", "--date",
                   "2026-11-23", "--db", db, "--create-store")
    assert made.exit_code == 0, made.output
    run = made.stdout.splitlines()[0].rsplit(" run ", 1)[1]
    assert (f"naming the first 3: `pesgen runs extract {run} --db {db} --out DIR` gives "
            "the dry run whose --format json lists each)") in made.stdout


def test_refusals_alike_say_the_rule_once_and_each_record_on_a_line(tmp_path):
    path, _ = _without_holders(tmp_path, 7)
    db = tmp_path / "store.sqlite3"
    first = run_cli("export", "-m", ORMC, "-i", path, "-o", tmp_path / "out", "--date",
                    "2026-11-23", "--db", db, "--create-store")
    assert first.exit_code == 0, first.output
    again = run_cli("export", "-m", ORMC, "-i", path, "-o", tmp_path / "out2", "--date",
                    "2026-11-23", "--db", db)
    assert again.exit_code == 7, again.output
    lines = again.stderr.splitlines()
    [head] = [i for i, x in enumerate(lines) if x.startswith("  - ")]
    assert lines[head].startswith("  - 7 problems alike, their records below: already "
                                  "exported by run "), lines[head]
    assert lines[head].endswith("(rule run.duplicate)")
    assert lines[head + 1:] == [f"      {path}:$.invoices[{i}] invoice "
                                f"FB-2026-{i + 1:07d}" for i in range(7)] + [
        "7 problem(s); nothing was written."]
    # the JSON refusal keeps every problem whole
    again = run_cli("export", "-m", ORMC, "-i", path, "-o", tmp_path / "out2", "--date",
                    "2026-11-23", "--db", db, "--format", "json")
    problems = json.loads(again.stdout)["problems"]
    assert [p["invoice"] for p in problems] == [f"FB-2026-{i:07d}" for i in range(1, 8)]
    assert all(p["text"].startswith(f"{p['record']} invoice {p['invoice']}: already ")
               for p in problems)
    # five alike: each said whole, as before
    path, _ = _without_holders(tmp_path / "five", 5)
    db = tmp_path / "five" / "store.sqlite3"
    first = run_cli("export", "-m", ORMC, "-i", path, "-o", tmp_path / "five" / "out",
                    "--date", "2026-11-23", "--db", db, "--create-store")
    assert first.exit_code == 0, first.output
    again = run_cli("export", "-m", ORMC, "-i", path, "-o", tmp_path / "five" / "out2",
                    "--date", "2026-11-23", "--db", db)
    assert again.exit_code == 7, again.output
    listed = [x for x in again.stderr.splitlines() if x.startswith("  - ")]
    assert [x.split(": already exported by run ")[0] for x in listed] == [
        f"  - {path}:$.invoices[{i}] invoice FB-2026-{i + 1:07d}" for i in range(5)]
