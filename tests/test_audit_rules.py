"""Findings of a trésorerie-side audit against the DGFiP documentation (DT v5.19):
a debit date before the bordereau's date is refused and one on a weekend noted
(sepa.debit-date, note debit_date); an export opening a numbering sequence nobody set
says so (note numbering); a NumDette over 13 significant digits is refused, since Cle1
and Cle2 are known over 13 (pes.num-dette-keys); the exercise note is shown by preview
too. Runs recorded before these checks are still rebuilt byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pesgen import keys
from pesgen.build import Builder
from pesgen.errors import ExitCode

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli
from .mapping_support import mapping_copy

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"
XML = "PESORMC_21450999400015_2026_0000001.xml"


def _input(tmp_path: Path, edit=None, name: str = "in.json") -> Path:
    data = json.loads(INPUT.read_text(encoding="utf-8"))
    if edit is not None:
        edit(data["invoices"])
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _line(fragment: str) -> int:
    lines = MAPPING.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if fragment in line)


def _export(input_path: Path, out: Path | None, *extra: str, date: str = RUN_DATE):
    args = ["export", "-m", MAPPING, "-i", input_path, "--date", date, *extra]
    if out is not None:
        args += ["-o", out]
    return run_cli(*args)


def _run_id(stdout: str) -> str:
    return stdout.split(", run ", 1)[1].split()[0]


def _regenerated_same(tmp_path: Path, run_id: str, out: Path) -> None:
    regen = tmp_path / "regen"
    r = run_cli("regenerate", run_id, "--out", regen)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in regen.iterdir()) == sorted(p.name for p in out.iterdir())
    for original in out.iterdir():
        assert (regen / original.name).read_bytes() == original.read_bytes(), original.name


def _debit_on(day: str):
    def edit(invoices):
        for inv in invoices:
            if inv.get("payment", {}).get("method") == "direct_debit":
                inv["payment"]["debit_date"] = day
    return edit


# ------------------------------------------------------------------ sepa.debit-date


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_debit_date_before_the_bordereau_s_date_is_refused(tmp_path, dry_run):
    """DtePrel is the interbank settlement date (DT InfoPrelevementSEPA/DtePrel): a debit
    on 2026-11-01 for a rôle issued on 2026-11-23 cannot be; refused, export and dry run
    alike, each debit named by invoice, record and mapping key; nothing written."""
    data = _input(tmp_path, _debit_on("2026-11-01"))
    out = tmp_path / "out"
    r = _export(data, None if dry_run else out, *(["--dry-run"] if dry_run else []))
    assert r.exit_code == ExitCode.INPUT, r.output
    line = _line("debit_date: payment.debit_date")
    assert f"{MAPPING}:{line}: bindings.payment.debit_date" in r.output
    assert "invoice FA-2026-00101" in r.output and "$.invoices[0]" in r.output
    assert "DtePrel 2026-11-01 is before DteBordEm 2026-11-23: a debit cannot be settled " \
        "before the rôle is issued: give a later debit date" in r.output
    assert r.output.count("(rule sepa.debit-date)") == 4
    assert not out.exists()


def test_a_debit_on_the_bordereau_s_date_or_later_passes(tmp_path):
    r = _export(_input(tmp_path, _debit_on("2026-11-23")), tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "DtePrel V=\"2026-11-23\"" in (tmp_path / "out" / XML).read_text("iso-8859-1")
    assert "debit_date:" not in r.stdout  # a Monday: no note


@pytest.mark.parametrize("day, name", [("2026-12-05", "Saturday"), ("2026-12-06", "Sunday")])
def test_a_debit_on_a_weekend_is_noted_not_refused(tmp_path, day, name):
    """No TARGET2 settlement on a Saturday or Sunday: one note for the run, per date,
    in the export's summary, its dry run's and preview's."""
    data = _input(tmp_path, _debit_on(day))
    expected = f"debit date (DtePrel) {day} is a {name} (4 title(s))"
    dry = _export(data, None, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.count(expected) == 1
    r = _export(data, tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert r.stdout.count(expected) == 1 and "TARGET2" in r.stdout
    shown = run_cli("preview", "-m", MAPPING, "-i", data, "--date", RUN_DATE)
    assert shown.exit_code == 0, shown.output
    assert f"policy debit_date (run): debit date (DtePrel) {day} is a {name} (1 title(s))" \
        in shown.stdout  # the first 3 invoices: one direct debit


def test_validate_refuses_a_file_whose_debit_is_before_its_bordereau(tmp_path):
    r = _export(_input(tmp_path, _debit_on("2026-11-23")), tmp_path / "out")
    assert r.exit_code == 0, r.output
    path = tmp_path / "out" / XML
    text = path.read_text("iso-8859-1").replace('<DtePrel V="2026-11-23"/>',
                                                '<DtePrel V="2026-11-20"/>')
    bad = tmp_path / XML
    bad.write_bytes(text.encode("iso-8859-1"))
    v = run_cli("validate", bad)
    assert v.exit_code != 0, v.output
    assert "DtePrel 2026-11-20 is before DteBordEm 2026-11-23" in v.output
    assert "sepa.debit-date" in v.output
    assert run_cli("validate", path).exit_code == 0


def test_a_run_recorded_before_the_debit_date_check_is_still_rebuilt(tmp_path, monkeypatch):
    data = _input(tmp_path, _debit_on("2026-11-01"))
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(Builder, "_check_debit_date", lambda self, ctx, debit, binding: None)
        m.setattr("pesgen.validate.debit_date_problem", lambda debit, issue: None)
        first = _export(data, out)
    assert first.exit_code == 0, first.output
    assert _export(data, tmp_path / "again").exit_code == ExitCode.INPUT  # the check is on
    _regenerated_same(tmp_path, _run_id(first.stdout), out)


# ------------------------------------------------------------------ numbering note


def test_an_export_opening_a_sequence_nobody_set_says_so(tmp_path):
    """A fresh store: the dry run and the export say the sequence is opened at IdBord 1,
    that Hélios rejects a number it knows, and the set-start command; the next export,
    and an export after set-start, say nothing of it."""
    def first_two(invoices):
        del invoices[2:]

    def the_rest(invoices):
        del invoices[:2]

    dry = _export(_input(tmp_path, first_two, "a.json"), None, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "numbering: this run opens the numbering of 21450999400015 budget 00 exercise " \
        "2026 TypBord 06" in dry.stdout
    assert "it would take IdBord 1" in dry.stdout and "(doublon)" in dry.stdout
    assert f"run `pesgen numbering set-start --mapping {MAPPING} --start N`" in dry.stdout
    r = _export(_input(tmp_path, first_two, "a.json"), tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "it took IdBord 1" in r.stdout and "do not send these files" in r.stdout
    again = _export(_input(tmp_path, the_rest, "b.json"), tmp_path / "out2")
    assert again.exit_code == 0, again.output
    assert "IdBord 2" in again.stdout and "numbering:" not in again.stdout


@pytest.mark.parametrize("name", ["corail", "jvs"])
def test_a_finance_package_s_first_run_is_not_told_it_took_a_rôle_number(tmp_path, name):
    """A finance package numbers what it sends to Hélios itself: the note of its first
    run says what pesgen's number is there, not 'IdBord 1, the rôle number in Hélios'
    nor 'do not send these files'."""
    mapping = MAPPINGS / f"villeneuve-sur-loing-{name}.yaml"
    r = run_cli("export", "-m", mapping, "-i", INPUT, "--date", RUN_DATE,
                "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    notes = [ln for ln in r.stdout.splitlines() if "*: numbering:" in ln]
    assert len(notes) == 1, r.stdout
    assert "this run opens pesgen's numbering of format " in notes[0]
    assert "took number 1" in notes[0] and "It is no rôle number in Hélios" in notes[0]
    assert "rôle number in Hélios, which" not in notes[0]
    assert "do not send these files" not in notes[0]
    assert f"`pesgen numbering set-start --mapping {mapping} --start N`" in notes[0]


def test_a_format_writing_its_number_nowhere_gets_no_numbering_note(tmp_path):
    """e.magnus's files are named WTAMC001*.txt and no template writes
    doc.bordereau.number: its first run's note pointed to a number nothing writes and
    advised a set-start that changes nothing (the school year's review). No note now;
    the run still takes and records number 1."""
    r = run_cli("export", "-m", MAPPINGS / "villeneuve-sur-loing-emagnus.yaml", "-i", INPUT,
                "--date", RUN_DATE, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "numbering" not in r.stdout, r.stdout
    assert "(IdBord 1, 11 title(s)" in r.stdout


def test_no_numbering_note_once_set_start_was_run(tmp_path):
    s = run_cli("numbering", "set-start", "-m", MAPPING, "--start", "12", "--create-store")
    assert s.exit_code == 0, s.output
    dry = _export(INPUT, None, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "IdBord 12" in dry.stdout and "numbering:" not in dry.stdout
    r = _export(INPUT, tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "IdBord 12" in r.stdout and "numbering:" not in r.stdout


# ------------------------------------------------------------------ pes.num-dette-keys


def _numbered(number: str):
    def edit(invoices):
        invoices[0]["number"] = number
    return edit


def test_a_num_dette_over_13_digits_is_refused(tmp_path):
    """Cle1 and Cle2 are known over NumDette on 13 digits (notes §10.3): a 14- or
    15-digit NumDette (Base_Num15) would get keys no known formula gives, on the
    reference a family pays with: refused, naming the invoice, record and binding."""
    r = _export(_input(tmp_path, _numbered("FA-2026-1234567890")), tmp_path / "out")
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "(rule pes.num-dette-keys)" in r.output
    assert "NumDette '20261234567890' has 14 significant digits" in r.output
    assert f"{MAPPING}:{_line('debt_number:')}: bindings.invoice.debt_number" in r.output
    assert "invoice FA-2026-1234567890" in r.output and "$.invoices[0]" in r.output
    assert not (tmp_path / "out").exists()


def test_a_15_digit_num_dette_is_refused_and_13_digits_pass(tmp_path):
    refused = _export(_input(tmp_path, _numbered("FA-202612345678901")), tmp_path / "o15")
    assert refused.exit_code == ExitCode.INPUT, refused.output
    assert "NumDette '202612345678901' has 15 significant digits" in refused.output
    # 13 digits, and a 15-character NumDette whose value has 13 (leading zeros): passed
    ok = _export(_input(tmp_path, _numbered("FA-2026123456789")), tmp_path / "o13")
    assert ok.exit_code == 0, ok.output
    zeros = _export(_input(tmp_path, _numbered("FA-002026123456780")), tmp_path / "o0",
                    "--db", f"sqlite:///{tmp_path / 'other.db'}", "--create-store")
    assert zeros.exit_code == 0, zeros.output


def test_the_largest_keyed_num_dette_is_13_nines(tmp_path):
    """The bound of pes.num-dette-keys is exact: 9999999999999 (13 digits) passes with
    its keys, 10000000000000 (the first of 14) is refused."""
    ok = _export(_input(tmp_path, _numbered("FA-9999999999999")), tmp_path / "o13")
    assert ok.exit_code == 0, ok.output
    assert '<NumDette V="9999999999999"/>' in (tmp_path / "o13" / XML).read_text("iso-8859-1")
    over = _export(_input(tmp_path, _numbered("FA-10000000000000"), "in14.json"),
                   tmp_path / "o14")
    assert over.exit_code == ExitCode.INPUT, over.output
    assert "NumDette '10000000000000' has 14 significant digits" in over.output
    assert "(rule pes.num-dette-keys)" in over.output


def test_validate_refuses_cle2_over_a_num_dette_of_14_digits(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr("pesgen.build.DEBT_KEYED_MAX", 10 ** 15)
        m.setattr("pesgen.validate.DEBT_KEYED_MAX", 10 ** 15)
        r = _export(_input(tmp_path, _numbered("FA-2026-1234567890")), tmp_path / "out")
    assert r.exit_code == 0, r.output
    r = run_cli("validate", tmp_path / "out" / XML)
    assert r.exit_code != 0, r.output
    assert "NumDette 20261234567890 has more than 13 significant digits" in r.output
    assert "pes.num-dette-keys" in r.output


def test_a_run_recorded_with_a_14_digit_num_dette_is_still_rebuilt(tmp_path, monkeypatch):
    data = _input(tmp_path, _numbered("FA-2026-1234567890"))
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr("pesgen.build.DEBT_KEYED_MAX", 10 ** 15)
        m.setattr("pesgen.validate.DEBT_KEYED_MAX", 10 ** 15)
        first = _export(data, out)
    assert first.exit_code == 0, first.output
    assert _export(data, tmp_path / "again").exit_code == ExitCode.INPUT
    _regenerated_same(tmp_path, _run_id(first.stdout), out)


def test_the_keys_pad_to_13_digits():
    assert keys.DEBT_KEYED_DIGITS == 13
    # notes §10.3's worked example
    assert keys.cle2(2024, "9", "2024000123") == "M"


# ------------------------------------------------------------------ exercise note


def test_preview_says_the_run_is_dated_outside_its_exercise(tmp_path):
    """The note export and its dry run give (DteBordEm 2027 for Exer 2026), preview
    gives too."""
    def persons_only(invoices):  # no debit dated before 2027-01-05
        invoices[:] = [i for i in invoices if i["payment"]["method"] != "direct_debit"]
    data = _input(tmp_path, persons_only)
    shown = run_cli("preview", "-m", MAPPING, "-i", data, "--date", "2027-01-05")
    note = ("the bordereaux are dated 2027-01-05 (DteBordEm) for exercise 2026 (Exer): "
            "titles of last year's exercise issued in January are the usual « journée "
            "complémentaire »")
    assert f"policy exercise (run): {note}" in shown.stdout, shown.output
    dry = _export(data, None, "--dry-run", date="2027-01-05")
    assert dry.exit_code == 0, dry.output
    assert note in dry.stdout
    r = _export(data, tmp_path / "out", date="2027-01-05")
    assert r.exit_code == 0, r.output
    assert note in r.stdout
    in_year = run_cli("preview", "-m", MAPPING, "-i", data, "--date", RUN_DATE)
    assert "policy exercise" not in in_year.stdout


def _mapping_of_exercise(tmp_path: Path, exercise: int) -> Path:
    return mapping_copy(tmp_path, MAPPING, ("  exercise: 2026\n", f"  exercise: {exercise}\n"),
                        name=f"exercise-{exercise}.yaml")[0]


@pytest.mark.parametrize("command", ["export", "dry-run", "preview"])
def test_an_exercise_after_the_run_date_s_year_is_refused(tmp_path, command):
    """exercise: 2027 run on 2026-11-23 went out with exit 0 (Exer 2027, Cle1/Cle2 and
    the payment references computed from it): the comptable rejects a bordereau of an
    exercise not open (DT TObsEtat 09). Refused (exit 3) by export, its dry run and
    preview alike, naming the mapping file:line:key and the rule; nothing written."""
    mapping = _mapping_of_exercise(tmp_path, 2027)
    out = tmp_path / "out"
    args = {"export": ["export", "-o", out], "dry-run": ["export", "--dry-run"],
            "preview": ["preview"]}[command]
    r = run_cli(*args, "-m", mapping, "-i", INPUT, "--date", RUN_DATE)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert f"[mapping {mapping}:12: collectivity.exercise] (rule collectivity.exercise)" \
        in r.output, r.output
    assert "exercise 2027 (Exer) is after the run date 2026-11-23" in r.output
    assert "set collectivity.exercise to 2026" in r.output
    assert not out.exists()


def test_a_past_exercise_is_noted_and_january_says_journee_complementaire(tmp_path):
    """exercise: 2025 run on 2026-11-23 is exported with a note that the exercise is past;
    in January (2026-01-20) the note names the usual « journée complémentaire »."""
    mapping = _mapping_of_exercise(tmp_path, 2025)
    late = run_cli("export", "--dry-run", "-m", mapping, "-i", INPUT, "--date", RUN_DATE)
    assert late.exit_code == 0, late.output
    assert ("exercise: the bordereaux are dated 2026-11-23 (DteBordEm) for exercise 2025 "
            "(Exer): exercise 2025 is past") in late.stdout, late.stdout
    assert "check collectivity.exercise in the mapping" in late.stdout
    data = _input(tmp_path, _debit_on("2026-01-26"))
    january = run_cli("preview", "-m", mapping, "-i", data, "--date", "2026-01-20")
    assert january.exit_code == 0, january.output
    assert ("policy exercise (run): the bordereaux are dated 2026-01-20 (DteBordEm) for "
            "exercise 2025 (Exer): titles of last year's exercise issued in January are "
            "the usual « journée complémentaire »") in january.stdout, january.stdout
