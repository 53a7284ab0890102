"""regenerate rebuilds a run whose recorded mapping a check added since refuses, when
that check changes nothing of what is rendered: the bytes that were sent come back, the
sha256 comparison proves them, and the check is said as a warning (file:line: key,
rule). A check that decides what is rendered still refuses, saying the run cannot be
rebuilt and why; a normal export with such a mapping is refused as before."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from pesgen import __version__
from pesgen.errors import ExitCode
from pesgen.store import Store, runs

from .conftest import EXAMPLES, MAPPINGS, ROOT, RUN_DATE, run_cli
from .mapping_support import mapping_copy

_run = run_cli


def _mapping(tmp_path: Path, base: str, *edits: tuple[str, str]) -> Path:
    """A copy of a shipped mapping with ``edits`` (old, new) made, each found once."""
    return mapping_copy(tmp_path / "m", MAPPINGS / base, *edits)[0].resolve()


def _line(path: Path, fragment: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if fragment in line)


def _export(mapping: Path, out: Path, input_path: Path = EXAMPLES / "school-export.json"):
    return _run("export", "-m", mapping, "-i", input_path, "-o", out, "--date", RUN_DATE)


def _run_id(stdout: str) -> str:
    return stdout.split(", run ", 1)[1].split()[0]


def _same_files(regen: Path, out: Path) -> None:
    assert sorted(p.name for p in regen.iterdir()) == sorted(p.name for p in out.iterdir())
    for original in out.iterdir():
        assert (regen / original.name).read_bytes() == original.read_bytes(), original.name


def _recorded_unchecked(monkeypatch, unchecked, mapping: Path, out: Path,
                        input_path: Path = EXAMPLES / "school-export.json") -> str:
    """Export as the pesgen that recorded the run did, with ``unchecked(m)`` taking
    today's check away; the run's id."""
    with monkeypatch.context() as m:
        unchecked(m)
        first = _export(mapping, out, input_path)
    assert first.exit_code == 0, first.output
    return _run_id(first.stdout)


def _rebuilt(tmp_path: Path, run_id: str, out: Path):
    """``pesgen regenerate`` of the run: exit 0, the files byte for byte those in ``out``."""
    regen = tmp_path / "regen"
    r = _run("regenerate", run_id, "--out", regen)
    assert r.exit_code == 0, r.output
    _same_files(regen, out)
    return r


def _as_recorded(run_id: str, mapping_text: str) -> None:
    """The run as a pesgen that read its mapping text so recorded it."""
    with Store().engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(
            mapping_text=mapping_text))


# ----------------------------------------------------------- checks that render nothing


def _ics_unchecked(monkeypatch) -> None:
    from stdnum.eu import at_02

    monkeypatch.setattr(at_02, "is_valid", lambda number: True)


def _schema_unchecked(key_end: str):
    """What a pesgen that did not check the mapping schema on keys ending in ``key_end``
    did: such problems dropped."""
    def unchecked(monkeypatch) -> None:
        import pesgen._schema as schema

        real = schema.check

        def check(data, name, source, rule, failed=None):
            return [p for p in real(data, name, source, rule, failed)
                    if not (p.mapping or "").endswith(key_end)]

        monkeypatch.setattr(schema, "check", check)
    return unchecked


_ics_format_unchecked = _schema_unchecked(": collectivity.sepa_creditor_id")
_zeros_unchecked = _schema_unchecked(".nature")


def _todo_unchecked(monkeypatch) -> None:
    import pesgen.mapping as mapping_mod

    monkeypatch.setattr(mapping_mod, "todo_problems", lambda data, shown, failed=None: [])


# (what an older pesgen did not check, the edit, the fragment of its line, the key, rule)
RENDERED_AS_WRITTEN = {
    "ics check digits": (_ics_unchecked, "villeneuve-sur-loing-emagnus.yaml",
                         ("sepa_creditor_id: FR72ZZZ123456", "sepa_creditor_id: FR00ZZZ654321"),
                         "sepa_creditor_id:", "collectivity.sepa_creditor_id",
                         "collectivity.sepa-creditor-id"),
    "ics written in lower case": (_ics_format_unchecked, "villeneuve-sur-loing-emagnus.yaml",
                                  ("sepa_creditor_id: FR72ZZZ123456",
                                   "sepa_creditor_id: fr72zzz123456"),
                                  "sepa_creditor_id:", "collectivity.sepa_creditor_id",
                                  "mapping.schema"),
    "a scaffold placeholder": (_todo_unchecked, "villeneuve-sur-loing.yaml",
                               ("budget_label: COMMUNE DE VILLENEUVE SUR LOING",
                                "budget_label: TODO"),
                               "budget_label:", "collectivity.budget_label", "mapping.todo"),
}


@pytest.mark.parametrize("case", list(RENDERED_AS_WRITTEN))
def test_a_run_recorded_before_a_check_that_renders_nothing_is_rebuilt(tmp_path, monkeypatch,
                                                                        case):
    unchecked, base, edit, fragment, key, rule = RENDERED_AS_WRITTEN[case]
    mapping = _mapping(tmp_path, base, edit)
    out = tmp_path / "out"
    # as the pesgen that recorded the run: the check did not exist
    run_id = _recorded_unchecked(monkeypatch, unchecked, mapping, out)
    written = edit[1].split(": ", 1)[1]
    assert any(written.encode() in p.read_bytes() for p in out.iterdir())  # as it is

    r = _rebuilt(tmp_path, run_id, out)
    assert "identical to the recorded files (sha256)" in r.stdout
    # support sees which of today's checks the recorded mapping fails, and where
    where = f"{mapping}:{_line(mapping, fragment)}: {key}"
    warning = [ln for ln in r.stderr.splitlines() if where in ln]
    assert len(warning) == 1, r.stderr
    assert warning[0].endswith(f"(rule {rule})"), warning
    assert r.stderr.startswith(f"warning: the mapping run {run_id} recorded fails 1 check of "
                               "this pesgen"), r.stderr
    assert "not refused: it changes nothing of what is rendered" in r.stderr

    # the run is read as any other
    shown = _run("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    # an export with that mapping is refused, as before
    again = _export(mapping, tmp_path / "again")
    assert again.exit_code == ExitCode.MAPPING, again.output
    assert f"[mapping {where}] (rule {rule})" in again.stderr
    assert not (tmp_path / "again").exists()


def test_a_run_recorded_with_a_nature_of_zeros_is_rebuilt(tmp_path, monkeypatch):
    """codes.activities natures of zeros only are refused since Base_Num12 (> 0) was held
    to at load: e.magnus' Article (its layout: '[0-9]+') took one, written as it is, so a
    run recorded before is rebuilt byte for byte, the schema problem said as a warning;
    an export with that mapping is refused."""
    mapping = _mapping(tmp_path, "villeneuve-sur-loing-emagnus.yaml",
                       ('FM-C1:       {product: FMC1, nature: "7062"',
                        'FM-C1:       {product: FMC1, nature: "0000"'))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(monkeypatch, _zeros_unchecked, mapping, out)
    assert any(b';"0000";' in p.read_bytes() for p in out.iterdir())  # as it is
    r = _rebuilt(tmp_path, run_id, out)
    where = f"{mapping}:{_line(mapping, 'FM-C1:')}: codes.activities.FM-C1.nature"
    warning = [ln for ln in r.stderr.splitlines() if where in ln]
    assert len(warning) == 1 and warning[0].endswith("(rule mapping.schema)"), r.stderr
    again = _export(mapping, tmp_path / "again")
    assert again.exit_code == ExitCode.MAPPING, again.output
    assert f"[mapping {where}] (rule mapping.schema)" in again.stderr
    # a nature that is not zeros only is no less refused by a rebuild than before
    bad = _mapping(tmp_path, "villeneuve-sur-loing-emagnus.yaml",
                   ('FM-C1:       {product: FMC1, nature: "7062"',
                    'FM-C1:       {product: FMC1, nature: "70A2"'))
    from pesgen.errors import MappingError
    from pesgen.mapping import load_recorded_mapping

    with pytest.raises(MappingError):
        load_recorded_mapping(bad.read_text(encoding="utf-8"), str(bad))


def test_country_keys_one_by_case_read_as_the_pesgen_that_recorded_the_run(tmp_path):
    """Before codes.country refused them, countries were read by the exact upper-case
    key ('BE'); a 'be' key after it was never read. Today's table, read case-blind,
    would take the last one: the rebuilt CodPays would differ."""
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml")
    out = tmp_path / "out"
    first = _export(mapping, out)
    assert first.exit_code == 0, first.output
    assert b"<CodPays V=\"131\"/>" in next(out.glob("*.xml")).read_bytes()  # the BE family
    run_id = _run_id(first.stdout)
    text = mapping.read_text(encoding="utf-8").replace('    BE: "131"\n',
                                                      '    BE: "131"\n    be: "135"\n')
    _as_recorded(run_id, text)  # what the older pesgen read: BE gave 131, be nothing

    r = _rebuilt(tmp_path, run_id, out)
    line = text.splitlines().index('    be: "135"') + 1
    assert (f"[mapping {mapping}:{line}: codes.countries.be] (rule codes.country)"
            in r.stderr), r.stderr

    mapping.write_text(text, encoding="utf-8")
    again = _export(mapping, tmp_path / "again")
    assert again.exit_code == ExitCode.MAPPING, again.output
    assert "(rule codes.country)" in again.stderr


def test_a_csv_binding_of_a_missing_column_recorded_before_the_column_check(tmp_path,
                                                                            monkeypatch):
    """A binding naming a column the CSV lacks read nothing before input.column refused
    it: it reads nothing again, and the check is a warning of the rebuild."""
    import pesgen.build as build_mod

    mapping = _mapping(tmp_path, "villeneuve-sur-loing-csv.yaml",
                       ("email: payer_email", "email: payer_mail"))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(
        monkeypatch, lambda m: m.setattr(build_mod.Builder, "check_columns",
                                         lambda self, src: None),
        mapping, out, EXAMPLES / "school-export.csv")

    r = _rebuilt(tmp_path, run_id, out)
    where = f"{mapping}:{_line(mapping, 'email: payer_mail')}: bindings.payer.email"
    assert f"[mapping {where}] (rule input.column)" in r.stderr, r.stderr
    assert "did you mean 'payer_email'?" in r.stderr
    # the input named as the run recorded it, not as the rebuild's temporary copy
    assert "not in the header of school-export.csv" in r.stderr, r.stderr
    assert "  - school-export.csv:1: " in r.stderr, r.stderr
    assert "pesgen-regen-" not in r.stderr

    again = _export(mapping, tmp_path / "again", EXAMPLES / "school-export.csv")
    assert again.exit_code == ExitCode.INPUT, again.output  # the input's, as group_by's
    assert "(rule input.column)" in again.output


def test_an_encoding_override_recorded_before_the_layout_clash_check(tmp_path, monkeypatch):
    """output.encoding against a layout declaring another was refused from 2026-11-30: it
    decides how the layout check reads the file, which a rebuild does not run again."""
    import pesgen.export as export_mod

    mapping = _mapping(tmp_path, "villeneuve-sur-loing-emagnus.yaml",
                       ("  format: bl-emagnus\n", "  format: bl-emagnus\n  encoding: ISO-8859-1\n"))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(
        monkeypatch, lambda m: m.setattr(export_mod, "encoding_clash",
                                         lambda written, layout: None), mapping, out)

    r = _rebuilt(tmp_path, run_id, out)
    where = f"{mapping}:{_line(mapping, 'encoding: ISO-8859-1')}: output.encoding"
    assert f"[mapping {where}] (rule mapping.format)" in r.stderr, r.stderr

    again = _export(mapping, tmp_path / "again")
    assert again.exit_code == ExitCode.MAPPING, again.output
    # check-mapping renders sample titles without validating them: it refuses it still
    checked = _run("check-mapping", mapping)
    assert checked.exit_code == ExitCode.MAPPING, checked.output
    assert f"[mapping {where}] (rule mapping.format)" in checked.stderr


def test_the_library_gives_the_waived_checks_to_warn_once_and_runs_without_it(tmp_path,
                                                                              monkeypatch):
    """``regenerate`` gives the checks of this pesgen the recorded mapping fails that
    render nothing to ``warn``, in one call, and never calls it for a run that fails
    none; a caller that gives no ``warn`` gets the files all the same."""
    from pesgen.runs import regenerate

    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml",
                       ("budget_label: COMMUNE DE VILLENEUVE SUR LOING", "budget_label: TODO"))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(monkeypatch, _todo_unchecked, mapping, out)
    regenerate(Store(), run_id, tmp_path / "quiet")  # no warn
    _same_files(tmp_path / "quiet", out)
    told: list = []
    regenerate(Store(), run_id, tmp_path / "told", warn=told.append)
    assert [[p.rule for p in problems] for problems in told] == [["mapping.todo"]]

    assert run_cli("runs", "cancel", run_id, "--reason", "test").exit_code == 0
    plain = _export(MAPPINGS / "villeneuve-sur-loing.yaml", tmp_path / "plain")
    assert plain.exit_code == 0, plain.output
    regenerate(Store(), _run_id(plain.stdout), tmp_path / "plain-again", warn=told.append)
    assert len(told) == 1  # nothing to say: not called


# ----------------------------------------------------------- a check that renders


def test_a_recorded_mapping_failing_a_check_that_decides_the_output_is_refused(tmp_path):
    """missing_civility: default without default_civility: which civility a title gets
    depends on it, so the run cannot be rebuilt as it was; regenerate says so."""
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml")
    out = tmp_path / "out"
    first = _export(mapping, out)
    assert first.exit_code == 0, first.output
    run_id = _run_id(first.stdout)
    text = mapping.read_text(encoding="utf-8").replace("  default_civility: MME\n", "")
    _as_recorded(run_id, text)

    regen = tmp_path / "regen"
    r = _run("regenerate", run_id, "--out", regen)
    assert r.exit_code == ExitCode.MAPPING, r.output
    # the problems say what is wrong: the message does not say it again after the run's
    assert r.stderr.splitlines()[0] == (
        f"error: run {run_id} cannot be rebuilt: the mapping it recorded fails a check of "
        "this pesgen that decides what is rendered, so its files cannot be made again as "
        f"they were (the run was made by pesgen {__version__}; the lines are those of the "
        f"text it recorded of {mapping})"), r.stderr
    line = text.splitlines().index("  missing_civility: default") + 1
    assert (f"[mapping {mapping}:{line}: policies.missing_civility] (rule mapping.policy)"
            in r.stderr), r.stderr
    assert not regen.exists()


def test_a_recorded_mapping_refused_without_problems_says_why_after_the_run(tmp_path):
    """A recorded mapping text that is not a YAML mapping is refused with no problem to
    list: the refusal's own message follows the run's, else nothing would say why."""
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml")
    out = tmp_path / "out"
    first = _export(mapping, out)
    assert first.exit_code == 0, first.output
    run_id = _run_id(first.stdout)
    _as_recorded(run_id, "- a list, not a mapping\n")

    r = _run("regenerate", run_id, "--out", tmp_path / "regen")
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert r.stderr.startswith(f"error: run {run_id} cannot be rebuilt: "), r.stderr
    assert (f"the lines are those of the text it recorded of {mapping}): {mapping}: a mapping "
            "file is a YAML mapping (key: value)\n") in r.stderr, r.stderr
    assert not (tmp_path / "regen").exists()


# ------------------------------------- what a rebuild's messages name: the run's records


def _recorded_otherwise(run_id: str, **changed) -> None:
    """The run as if it had recorded ``changed`` (input bytes, or the bundle's files:
    {relative path: text}) instead."""
    import json

    from pesgen.store import pack, unpack

    with Store().engine.begin() as conn:
        values = {}
        if "input_blob" in changed:
            values["input_blob"] = pack(changed["input_blob"])
        if "bundle" in changed:
            bundle = json.loads(unpack(conn.execute(sa.select(runs.c.format_bundle).where(
                runs.c.id == run_id)).scalar_one()))
            bundle.update(changed["bundle"])
            values["format_bundle"] = pack(json.dumps(bundle).encode("utf-8"))
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))


@pytest.mark.parametrize("temporary", ["elsewhere", "under the working folder"])
def test_a_rebuild_refused_by_its_input_names_the_input_the_run_recorded(
        tmp_path, monkeypatch, temporary):
    """The rebuild reads a copy of the recorded input in a temporary folder, gone when
    the command ends: its problems name the input by the name the run recorded, and
    the message the run, never that copy (shown relative to the working folder when it
    is under it)."""
    import tempfile

    from .conftest import example_with_two_input_errors

    out = tmp_path / "out"
    first = _export(MAPPINGS / "villeneuve-sur-loing.yaml", out)
    assert first.exit_code == 0, first.output
    run_id = _run_id(first.stdout)
    bad = example_with_two_input_errors(tmp_path)
    _recorded_otherwise(run_id, input_blob=bad.read_bytes())
    if temporary == "under the working folder":
        (tmp_path / "tmp").mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
        monkeypatch.chdir(tmp_path)

    r = _run("regenerate", run_id, "--out", tmp_path / "regen")
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "pesgen-regen-" not in r.output, r.output
    assert r.stderr.startswith(f"error: run {run_id}, rebuilt from what it recorded (input "
                               "school-export.json, format pes-ormc): 2 problem(s) in the "
                               "input"), r.stderr
    assert "  - school-export.json:$.invoices[0] invoice FA-2026-00101: IBAN is invalid" \
        in r.stderr, r.stderr
    assert "(rule sepa.iban)" in r.stderr and "(rule codes.activity)" in r.stderr
    assert not (tmp_path / "regen").exists()


def test_a_rebuild_refused_by_its_format_bundle_names_the_bundle_the_run_recorded(tmp_path):
    """A recorded bundle's format.yaml today's pesgen refuses: named as the format's file
    (pes-ormc/format.yaml:line, as a template's error names its template), never as the
    rebuild's temporary copy of it."""
    out = tmp_path / "out"
    first = _export(MAPPINGS / "villeneuve-sur-loing.yaml", out)
    assert first.exit_code == 0, first.output
    run_id = _run_id(first.stdout)
    text = (MAPPINGS.parent / "templates" / "pes-ormc" / "format.yaml").read_text(
        encoding="utf-8")
    _recorded_otherwise(run_id, bundle={"format.yaml": text + "retired_key: 1\n"})

    r = _run("regenerate", run_id, "--out", tmp_path / "regen")
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert "pesgen-regen-" not in r.output, r.output
    line = len(text.splitlines()) + 1
    assert r.stderr.startswith(f"error: run {run_id}, rebuilt from what it recorded (input "
                               "school-export.json, format pes-ormc): pes-ormc/format.yaml: "
                               "invalid format bundle"), r.stderr
    assert f"[format pes-ormc/format.yaml:{line}: retired_key] (rule format.schema)" \
        in r.stderr, r.stderr


def test_the_checks_that_render_nothing_are_said_when_the_rebuild_is_refused_after(
        tmp_path, monkeypatch):
    """The checks of this pesgen the recorded mapping fails that render nothing are said
    even when the rebuild is refused after they were found (here by the recorded format
    bundle): support sees both."""
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml",
                       ("budget_label: COMMUNE DE VILLENEUVE SUR LOING", "budget_label: TODO"))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(monkeypatch, _todo_unchecked, mapping, out)
    text = (MAPPINGS.parent / "templates" / "pes-ormc" / "format.yaml").read_text(
        encoding="utf-8")
    _recorded_otherwise(run_id, bundle={"format.yaml": text + "retired_key: 1\n"})

    r = _run("regenerate", run_id, "--out", tmp_path / "regen")
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert r.stderr.startswith(f"warning: the mapping run {run_id} recorded fails 1 check of "
                               "this pesgen"), r.stderr
    where = f"{mapping}:{_line(mapping, 'budget_label:')}: collectivity.budget_label"
    assert f"[mapping {where}] (rule mapping.todo)" in r.stderr, r.stderr
    assert (f"error: run {run_id}, rebuilt from what it recorded (input school-export.json, "
            "format pes-ormc): pes-ormc/format.yaml: invalid format bundle") in r.stderr
    assert not (tmp_path / "regen").exists()


def test_a_copy_spelt_both_ways_under_the_working_folder_is_named_as_recorded(tmp_path,
                                                                            monkeypatch):
    """Under the working folder a rebuild's copy is spelt two ways, absolute and relative
    (as the input readers show it), the relative one the end of the absolute one: either
    becomes the name the run recorded, never the working folder followed by that name
    (the longer spelling is replaced first, whatever order the spellings came in)."""
    from pesgen.runs import _AsRecorded

    monkeypatch.chdir(tmp_path)
    run = {"id": "run-1", "input_name": "school-export.json", "format": "pes-ormc"}
    for n in range(16):  # each folder's spellings come out of a set in an order of their own
        base = tmp_path / f"pesgen-regen-{n}"
        recorded = _AsRecorded(run, base)
        for copy, shown in ((base / "input" / "school-export.json", "school-export.json"),
                            (base / "formats" / "pes-ormc" / "format.yaml",
                             "pes-ormc/format.yaml")):
            text = f"{copy}:4: refused; {copy.relative_to(tmp_path)}:5: refused"
            assert recorded.text(text) == f"{shown}:4: refused; {shown}:5: refused", n


@pytest.mark.parametrize("where", ["above the bundle's folder", "an absolute path"])
def test_a_recorded_bundle_path_outside_its_folder_is_refused_and_nothing_written(
        tmp_path, where):
    """The rebuild writes the recorded bundle's files under a temporary folder by the
    paths the run recorded: one leading out of the bundle's folder (a store edited, or
    damaged) is refused, never written where it leads, and no file of the run is put in
    the output folder."""
    out = tmp_path / "out"
    first = _export(MAPPINGS / "villeneuve-sur-loing.yaml", out)
    assert first.exit_code == 0, first.output
    run_id = _run_id(first.stdout)
    escaped = tmp_path / "escaped.txt"
    rel = "../../escaped.txt" if where == "above the bundle's folder" else str(escaped)
    _recorded_otherwise(run_id, bundle={rel: "not the bundle's\n"})

    r = _run("regenerate", run_id, "--out", tmp_path / "regen")
    assert r.exit_code == ExitCode.STATE, r.output
    assert r.stderr.startswith(f"error: run {run_id}: bad path in the recorded bundle: "
                               f"{rel}"), r.stderr
    assert not escaped.exists()
    assert not (tmp_path / "regen").exists()


@pytest.mark.parametrize("field", ["format", "input_name"])
def test_a_recorded_name_leading_out_of_the_rebuild_s_folder_is_refused(
        tmp_path, monkeypatch, field):
    """The rebuild writes the bundle under formats/<format>/ and the input under
    input/<input_name> of its temporary folder: a recorded format or input name leading
    out of it (a store edited, or damaged: '../../escaped', an absolute path) is refused
    as the bundle's paths are, never written where it leads. The bundle's paths were
    confined to formats/<format>/ while that folder itself followed the format's name."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "out"
    first = _export(MAPPINGS / "villeneuve-sur-loing.yaml", out)
    assert first.exit_code == 0, first.output
    run_id = _run_id(first.stdout)
    escaped = tmp_path / "tmp" / "escaped"
    value = "../../escaped" if field == "format" else str(escaped / "school-export.json")
    with Store().engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values({field: value}))

    r = _run("regenerate", run_id, "--out", tmp_path / "regen")
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"error: run {run_id}: bad {field.replace('_', ' ')} in the record: " \
        f"{value!r}" in r.stderr, r.stderr
    assert not escaped.exists()
    assert not (tmp_path / "regen").exists()
    assert os.listdir(tmp_path / "tmp") == []


# ------------------------------------------- rendered as pesgen did before 2026-12-01


def _as_before_code_tables(m) -> None:
    """The pesgen of before 2026-12-01: a code table's civility went through the text
    policies (case: upper)."""
    import pesgen.build as build_mod

    real = build_mod.Builder.__init__

    def init(self, *args, **kwargs):
        real(self, *args, **kwargs)
        self.legacy = True

    m.setattr(build_mod.Builder, "__init__", init)


def test_a_run_recorded_with_a_civility_table_the_case_policy_changed_is_rebuilt(
        tmp_path, monkeypatch):
    """codes.civility 'Mme' with case: upper was written MME then; today it is sent as
    written (Mme). The run recorded then is rebuilt as it was: the recorded sha256
    decides which rendering made it."""
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml",
                       ('    "Mme": MME\n', '    "Mme": Mme\n'),
                       ("  default_civility: MME\n", "  default_civility: Mme\n"))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(monkeypatch, _as_before_code_tables, mapping, out)
    assert b'<Civilite V="MME"/>' in next(out.glob("*.xml")).read_bytes()
    r = _rebuilt(tmp_path, run_id, out)
    assert "identical to the recorded files (sha256)" in r.stdout
    # a run recorded today, with the same mapping, is rebuilt as today renders it
    assert run_cli("runs", "cancel", run_id, "--reason", "test").exit_code == 0
    today = run_cli("export", "-m", mapping, "-i", EXAMPLES / "school-export.json", "-o",
                    tmp_path / "today", "--date", "2026-11-24")
    assert today.exit_code == 0, today.output
    assert b'<Civilite V="Mme"/>' in next((tmp_path / "today").glob("*.xml")).read_bytes()
    again = run_cli("regenerate", _run_id(today.stdout), "--out", tmp_path / "regen-today")
    assert again.exit_code == 0, again.output


def test_a_csv_run_rebuilt_as_before_says_its_missing_column_once(tmp_path, monkeypatch):
    """The rebuild as pesgen rendered before 2026-12-01 reads the input again: a binding
    of a column the CSV lacks, waived (it read nothing then too), is said once all the
    same, as one check the recorded mapping fails."""
    import pesgen.build as build_mod

    mapping = _mapping(tmp_path, "villeneuve-sur-loing-csv.yaml",
                       ("email: payer_email", "email: payer_mail"),
                       ('    "Mme": MME\n', '    "Mme": Mme\n'),
                       ("  default_civility: MME\n", "  default_civility: Mme\n"))
    out = tmp_path / "out"

    def before(m) -> None:
        m.setattr(build_mod.Builder, "check_columns", lambda self, src: None)
        _as_before_code_tables(m)

    run_id = _recorded_unchecked(monkeypatch, before, mapping, out,
                                 EXAMPLES / "school-export.csv")
    # as rendered then; today's rendering (Mme) differs, so the rebuild is made as before
    assert b'<Civilite V="MME"/>' in next(out.glob("*.xml")).read_bytes()

    r = _rebuilt(tmp_path, run_id, out)
    where = f"{mapping}:{_line(mapping, 'email: payer_mail')}: bindings.payer.email"
    assert r.stderr.count(f"[mapping {where}] (rule input.column)") == 1, r.stderr
    assert r.stderr.startswith(f"warning: the mapping run {run_id} recorded fails 1 check of "
                               "this pesgen"), r.stderr


def _as_before_expressions(m) -> None:
    """The pesgen of before 2026-12-01: a mapping expression wrote a None it made into
    text as the word, as Jinja does."""
    import pesgen.mapping as mapping_mod

    real = mapping_mod.expression_environment

    def environment(as_before: bool = False):
        env = real(as_before)
        env.writes_none = True
        return env

    m.setattr(mapping_mod, "expression_environment", environment)


def test_a_run_whose_mapping_expression_wrote_none_then_is_rebuilt(tmp_path, monkeypatch):
    """A code table's .get() of a payment method it lacks ('online') gave None, which
    '~' wrote into the title's object: the run recorded then is rebuilt byte for byte
    (the rebuild as pesgen rendered before 2026-12-01); an export today is refused."""
    shipped = "object: {expr: \"'CONSERVATOIRE FACTURE ' ~ invoice.number\"}"
    table = ("object: {expr: \"{'direct_debit': 'PRELEVEMENT', 'invoice': 'FACTURE'}"
             ".get(invoice.payment.method) ~ ' ' ~ invoice.number\"}")
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml", (shipped, table))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(monkeypatch, _as_before_expressions, mapping, out)
    assert b'<ObjPce V="NONE FA-2026-00102"/>' in next(out.glob("*.xml")).read_bytes()
    _rebuilt(tmp_path, run_id, out)
    refused = _export(mapping, tmp_path / "today")
    assert refused.exit_code == ExitCode.INPUT, refused.output
    assert "invoice.object: expression failed: '~' writes None" in refused.output


def test_a_run_whose_bordereau_object_expression_wrote_none_then_is_rebuilt(tmp_path,
                                                                           monkeypatch):
    """The same in output.bordereau_object, evaluated once per run on the collectivity
    and the run's date: the word None in the bordereau's object then, the run rebuilt
    byte for byte; an export today is refused as the mapping's error (exit 3)."""
    shipped = 'bordereau_object: {const: "CONSERVATOIRE - TRIMESTRE 1 2026-2027"}'
    table = ("bordereau_object: {expr: \"'CONSERVATOIRE ' ~ {'2027-01-05': 'T2'}"
             ".get(run.date | string)\"}")
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml", (shipped, table))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(monkeypatch, _as_before_expressions, mapping, out)
    assert b'<Objet V="CONSERVATOIRE NONE"/>' in next(out.glob("*.xml")).read_bytes()
    _rebuilt(tmp_path, run_id, out)
    refused = _export(mapping, tmp_path / "today")
    assert refused.exit_code == ExitCode.MAPPING, refused.output
    assert "output.bordereau_object: expression failed: '~' writes None" in refused.output


@pytest.mark.parametrize("written, wrote", [
    ("{{ t.joint_debtor }}", b"<!-- None -->"),
    ("{{ t.joint_debtor | upper }}", b"<!-- NONE -->"),
    ("{{ 'TIERS ' ~ t.joint_debtor }}", b"<!-- TIERS None -->"),
])
def test_a_run_whose_template_wrote_none_then_is_rebuilt(tmp_path, monkeypatch, written,
                                                         wrote):
    """A bundle whose template wrote an unset value as the word None (before it was
    refused), bare or through a filter or '~': its recorded run is rebuilt byte for
    byte; an export with it is refused."""
    import shutil

    import pesgen.render as render_mod

    fmts = tmp_path / "fmts"
    shutil.copytree(MAPPINGS.parent / "templates" / "pes-ormc", fmts / "pes-ormc")
    template = fmts / "pes-ormc" / "pes-aller.xml.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count('<Cle2 V="{{ t.cle2 }}"/>') == 1
    template.write_text(text.replace('<Cle2 V="{{ t.cle2 }}"/>',
                                     f'<Cle2 V="{{{{ t.cle2 }}}}"/><!-- {written} -->'),
                        encoding="utf-8")
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml")
    out = tmp_path / "out"
    real = render_mod.template_environment
    with monkeypatch.context() as m:  # as before: the word None written
        m.setattr(render_mod, "template_environment",
                  lambda folder, _w=False, traced=False, recorded=False, marked=False:
                  real(folder, True, traced, recorded, marked))
        first = _run("export", "-m", mapping, "-i", EXAMPLES / "school-export.json", "-o",
                     out, "--date", RUN_DATE, "--formats-dir", fmts)
    assert first.exit_code == 0, first.output
    assert wrote in next(out.glob("*.xml")).read_bytes()
    _rebuilt(tmp_path, _run_id(first.stdout), out)
    refused = _run("export", "-m", mapping, "-i", EXAMPLES / "school-export.json", "-o",
                   tmp_path / "again", "--date", RUN_DATE, "--formats-dir", fmts)
    assert refused.exit_code == ExitCode.TEMPLATE, refused.output
    assert "writes None" in refused.output


def _zfill_before_2026_12_01(value, width):
    """pesgen's zfill filter as it was before it refused None (git show
    a9586fb^:pesgen/filters.py): the word None zero-filled."""
    text = str(value)
    if len(text) > width:
        raise ValueError(f"{text!r} is longer than {width}")
    return text.zfill(width)


def test_a_run_whose_template_zero_filled_none_then_is_rebuilt(tmp_path, monkeypatch):
    """A bundle whose template zero-filled an unset value, which zfill wrote '0None'
    before it refused None: its recorded run is rebuilt byte for byte, as that pesgen
    wrote it; an export with it is refused."""
    import shutil

    import pesgen.filters as filters_mod

    fmts = tmp_path / "fmts"
    shutil.copytree(MAPPINGS.parent / "templates" / "pes-ormc", fmts / "pes-ormc")
    template = fmts / "pes-ormc" / "pes-aller.xml.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count('<Cle2 V="{{ t.cle2 }}"/>') == 1
    template.write_text(text.replace('<Cle2 V="{{ t.cle2 }}"/>', '<Cle2 V="{{ t.cle2 }}"/>'
                                     '<!-- {{ t.joint_debtor | zfill(5) }} -->'),
                        encoding="utf-8")
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml")
    out = tmp_path / "out"
    with monkeypatch.context() as m:  # the pesgen that recorded the run
        m.setitem(filters_mod.FILTERS, "zfill", _zfill_before_2026_12_01)
        first = _run("export", "-m", mapping, "-i", EXAMPLES / "school-export.json", "-o",
                     out, "--date", RUN_DATE, "--formats-dir", fmts)
    assert first.exit_code == 0, first.output
    assert b"<!-- 0None -->" in next(out.glob("*.xml")).read_bytes()
    r = _rebuilt(tmp_path, _run_id(first.stdout), out)
    assert "identical to the recorded files (sha256)" in r.stdout
    refused = _run("export", "-m", mapping, "-i", EXAMPLES / "school-export.json", "-o",
                   tmp_path / "again", "--date", RUN_DATE, "--formats-dir", fmts)
    assert refused.exit_code == ExitCode.TEMPLATE, refused.output
    assert "zfill of None" in refused.output


def test_a_run_whose_mapping_expression_zero_filled_none_then_is_rebuilt(tmp_path,
                                                                        monkeypatch):
    """The same in a mapping's expression (a table's .get that finds nothing, zero-filled):
    '0None' in the title's object then; refused today as the input's problem
    (mapping.expr), and rebuilt as that pesgen evaluated it."""
    import pesgen.filters as filters_mod

    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml", (
        "object: {expr: \"'CONSERVATOIRE FACTURE ' ~ invoice.number\"}",
        "object: {expr: \"'CONSERVATOIRE FACTURE ' ~ invoice.number ~ ' ' ~ "
        "({'EXT': '7'}.get(invoice.payment.method) | zfill(5))\"}"))
    out = tmp_path / "out"
    with monkeypatch.context() as m:  # the pesgen that recorded the run
        m.setitem(filters_mod.FILTERS, "zfill", _zfill_before_2026_12_01)
        first = _export(mapping, out)
    assert first.exit_code == 0, first.output
    # (upper-cased by the mapping's case policy)
    assert b"CONSERVATOIRE FACTURE FA-2026-00101 0NONE" in next(out.glob("*.xml")).read_bytes()
    r = _rebuilt(tmp_path, _run_id(first.stdout), out)
    assert "identical to the recorded files (sha256)" in r.stdout
    refused = _export(mapping, tmp_path / "again")
    assert refused.exit_code == ExitCode.INPUT, refused.output
    assert "zfill of None" in refused.output and "(rule mapping.expr)" in refused.output


def test_a_run_whose_bundle_had_an_unknown_key_under_defaults_is_rebuilt(tmp_path,
                                                                         monkeypatch):
    """A bundle recorded before unknown keys under ``defaults:`` were refused (a comment
    key in a collectivity's copy of pes-ormc) still rebuilds its run byte for byte: no
    code ever read the key; a new export with it is refused."""
    import shutil

    from pesgen import _schema

    folder = tmp_path / "fmts" / "my-ormc"
    shutil.copytree(ROOT / "templates" / "pes-ormc", folder)
    spec = folder / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count("name: pes-ormc\n") == 1 and text.count("defaults:\n") == 1
    spec.write_text(text.replace("name: pes-ormc\n", "name: my-ormc\n").replace(
        "defaults:\n", 'defaults:\n  comment: "our copy"\n'), encoding="utf-8")
    monkeypatch.setenv("PESGEN_FORMATS_PATH", str(tmp_path / "fmts"))
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml",
                       ("  format: pes-ormc\n", "  format: my-ormc\n"))
    real = _schema.check

    def lenient(m):  # the check as it was: defaults' keys not checked
        m.setattr(_schema, "check", lambda *a, **k: [
            p for p in real(*a, **k)
            if not (isinstance(p, _schema.UnknownKey) and tuple(p.path) == ("defaults",))])
    out = tmp_path / "out"
    run_id = _recorded_unchecked(monkeypatch, lenient, mapping, out)
    _rebuilt(tmp_path, run_id, out)
    refused = _export(mapping, tmp_path / "today")
    assert refused.exit_code == ExitCode.MAPPING, refused.output
    assert "defaults.comment" in refused.output


def test_a_run_whose_invoice_number_began_as_a_formula_is_rebuilt(tmp_path, monkeypatch):
    """A run recorded before input.invoice-number (an invoice number starting with '-')
    wrote its references CSV's invoice cell as given: rebuilt so, byte for byte (the CSV
    guard is for files written today)."""
    import json

    from pesgen import build, export

    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["number"] = "-" + data["invoices"][0]["number"]
    source = tmp_path / "minus.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    def as_before(m):
        m.setattr(build, "FORMULA_START", frozenset())
        m.setattr(export, "text_cell", lambda value: value)
    out = tmp_path / "out"
    run_id = _recorded_unchecked(monkeypatch, as_before, MAPPINGS / "villeneuve-sur-loing.yaml",
                                 out, source)
    assert b"\n-FA-2026-00101;" in next(out.glob("*.references.csv")).read_bytes()
    _rebuilt(tmp_path, run_id, out)


# --------------------------------------- checks added 2026-12-02, a recorded run rebuilt


def _changes_unchecked(m) -> None:
    from pesgen import _jinja

    m.setattr(_jinja, "modifies_known_mutable", lambda obj, attr: False)


def _empty_files_key_unchecked(m) -> None:
    from pesgen import _schema

    real = _schema.check
    m.setattr(_schema, "check", lambda *a, **k: [
        p for p in real(*a, **k) if "should be non-empty" not in p.message])


def _control_unchecked(m) -> None:
    import re

    from pesgen import render

    m.setattr(render, "_CONTROL", re.compile(r"(?!)"))


# (the check as it was, the bundle's edits (file, old, new), the mapping's edit, what a
# new export is refused with)
RECORDED_BEFORE = {
    "a template appending to its own list": (
        _changes_unchecked, [("pes-aller.xml.j2", '<TypBord V="06"/>',
                              "{% set seen = [] %}{% set _ = seen.append(1) %}"
                              '<TypBord V="06"/>')],
        None, "access to attribute 'append' of 'list' object is unsafe"),
    "a mapping expression updating a dict": (
        _changes_unchecked, [],
        (OBJECT := """object: {expr: "'CONSERVATOIRE FACTURE ' ~ invoice.number"}""",
         """object: {expr: "{}.update({'a': 1}) or 'CONSERVATOIRE FACTURE ' ~ """
         """invoice.number"}"""),
        "access to attribute 'update' of 'dict' object is unsafe"),
    "an empty layout beside the xsd": (
        _empty_files_key_unchecked, [("format.yaml", "    xsd: pes-ormc/pes-ormc.xsd\n",
                                      "    xsd: pes-ormc/pes-ormc.xsd\n    layout: ''\n")],
        None, "'' should be non-empty"),
    "a line break in a file name": (
        _control_unchecked, [("format.yaml", '    name: "PESORMC_', '    name: "PES\\nORMC_')],
        None, "holds the control character U+000A"),
}


@pytest.mark.parametrize("case", list(RECORDED_BEFORE))
def test_a_run_recorded_before_the_checks_of_2026_12_02_is_rebuilt(tmp_path, monkeypatch,
                                                                   case):
    """The reviewer's cases: a run the pesgen before 2026-12-02 exported (a template's
    `seen.append`, an expression's `.update`, an empty `layout:`, a line break in a file
    name) was refused by `regenerate` (exit 5 or 3). A recorded run is rebuilt as it
    rendered then, its files compared byte for byte; a new export is refused."""
    import shutil

    unchecked, bundle_edits, mapping_edit, refusal = RECORDED_BEFORE[case]
    folder = tmp_path / "fmts" / "my-ormc"
    shutil.copytree(ROOT / "templates" / "pes-ormc", folder)
    for name, old, new in [("format.yaml", "name: pes-ormc\n", "name: my-ormc\n"),
                           *bundle_edits]:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, old
        path.write_text(text.replace(old, new), encoding="utf-8")
    monkeypatch.setenv("PESGEN_FORMATS_PATH", str(tmp_path / "fmts"))
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml",
                       ("  format: pes-ormc\n", "  format: my-ormc\n"),
                       *([mapping_edit] if mapping_edit else []))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(monkeypatch, unchecked, mapping, out)
    _rebuilt(tmp_path, run_id, out)
    # a store of its own: the run's invoices are not refused as exported already first
    refused = _run("export", "-m", mapping, "-i", EXAMPLES / "school-export.json", "-o",
                   tmp_path / "today", "--date", RUN_DATE, "--db",
                   f"sqlite:///{tmp_path / 'today.sqlite3'}", "--create-store")
    assert refused.exit_code in (ExitCode.MAPPING, ExitCode.TEMPLATE, ExitCode.INPUT), \
        refused.output
    assert refusal in refused.output, refused.output


def test_a_csv_run_whose_recorded_mapping_names_records_is_rebuilt(tmp_path):
    """input.records, never read with CSV input, is refused since mapping.csv-records:
    a run recorded before with it is rebuilt (the rows were read the same), the check
    said as a warning naming its line."""
    mapping = _mapping(tmp_path, "villeneuve-sur-loing-csv.yaml")
    out = tmp_path / "out"
    first = _export(mapping, out, EXAMPLES / "school-export.csv")
    assert first.exit_code == 0, first.output
    run_id = _run_id(first.stdout)
    text = mapping.read_text(encoding="utf-8").replace("  format: csv\n",
                                                      "  format: csv\n  records: factures\n")
    _as_recorded(run_id, text)  # what the older pesgen read: records said nothing

    r = _rebuilt(tmp_path, run_id, out)
    line = text.splitlines().index("  records: factures") + 1
    assert (f"[mapping {mapping}:{line}: input.records] (rule mapping.csv-records)"
            in r.stderr), r.stderr


def test_a_run_whose_titcptediff_read_ae_as_another_letter_is_rebuilt(tmp_path, monkeypatch):
    """Before 2026-12-05 a holder's words kept a letter outside ASCII (a debtor Sæther,
    a bank's SAETHER: TitCpteDiff 1). A run recorded then is rebuilt as it was, byte for
    byte (the legacy rebuild compares the words so); a new export writes no TitCpteDiff."""
    import json

    import pesgen.build

    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    [inv] = [i for i in data["invoices"] if i["number"] == "FA-2026-00101"]
    inv["payer"]["last_name"], inv["payer"]["first_name"] = "Sæther", "Øystein"
    inv["payment"]["mandate"]["holder"] = "SAETHER OYSTEIN"
    input_path = tmp_path / "school-export.json"
    input_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml")
    words = pesgen.build._words
    out = tmp_path / "out"
    run_id = _recorded_unchecked(
        monkeypatch, lambda m: m.setattr(pesgen.build, "_words", lambda t, b=False:
                                         words(t, True)), mapping, out, input_path)
    [xml] = out.glob("*.xml")
    assert xml.read_bytes().count(b'<TitCpteDiff V="1"/>') == 3  # FA-2026-00101's lines
    _rebuilt(tmp_path, run_id, out)
    today = tmp_path / "today"
    again = _run("export", "-m", mapping, "-i", input_path, "-o", today, "--date", RUN_DATE,
                 "--db", f"sqlite:///{tmp_path / 'today.sqlite3'}", "--create-store")
    assert again.exit_code == 0, again.output
    assert b"TitCpteDiff" not in next(today.glob("*.xml")).read_bytes()


@pytest.mark.parametrize(("base", "encoding", "then", "today"), [
    ("villeneuve-sur-loing.yaml", "iso-8859-1", '<Adr1 V="TASSIGNY PROLONGÉE"/>',
     '<Adr1 V="123 AVENUE DU MARÉCHAL DE LATTRE DE"/>\n<Adr2 V="TASSIGNY PROLONGÉE"/>'),
    # its code-table civilities (Mr, Mme) sent as today's rules send them, which the
    # rebuild as before 2026-12-01 (case: upper) would not: the street alone as then
    ("villeneuve-sur-loing-corail.yaml", "utf-8", '<Complement V="TASSIGNY PROLONGÉE"/>',
     '<Complement V="123 AVENUE DU MARÉCHAL DE LATTRE DE"/>\n'
     '<Rue V="TASSIGNY PROLONGÉE"/>'),
], ids=["pes-ormc", "cosoluce-corail"])
def test_a_run_whose_street_cut_at_a_word_boundary_went_number_first_is_rebuilt(
        tmp_path, monkeypatch, base, encoding, then, today):
    """Before 2026-12-06 a street cut at a word boundary gave its part starting with a
    digit to the street line ('TASSIGNY PROLONGEE' in Adr1, '123 AVENUE DU MARECHAL DE
    LATTRE DE' in Adr2). A run recorded then is rebuilt as it was, byte for byte (the
    rebuild splits so, with the rest as before 2026-12-01 or as today); a new export
    writes the street in its order."""
    import json

    import pesgen.build

    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    [inv] = [i for i in data["invoices"] if i["number"] == "FA-2026-00102"]
    inv["payer"]["address"]["street"] = "123 avenue du Maréchal de Lattre de Tassigny prolongée"
    input_path = tmp_path / "school-export.json"
    input_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = _mapping(tmp_path, base)
    order = pesgen.build._street_order
    out = tmp_path / "out"
    run_id = _recorded_unchecked(
        monkeypatch, lambda m: m.setattr(pesgen.build, "_street_order",
                                         lambda a, b, cut, before=False:
                                         order(a, b, cut, True)), mapping, out, input_path)
    [xml] = out.glob("*.xml")
    assert then in xml.read_bytes().decode(encoding)
    _rebuilt(tmp_path, run_id, out)
    again = _run("export", "-m", mapping, "-i", input_path, "-o", tmp_path / "today",
                 "--date", RUN_DATE, "--db", f"sqlite:///{tmp_path / 'today.sqlite3'}",
                 "--create-store")
    assert again.exit_code == 0, again.output
    written = next((tmp_path / "today").glob("*.xml")).read_bytes().decode(encoding)
    assert today in written and then not in written
    # a run recorded today is rebuilt in today's order, byte for byte
    regen = _run("regenerate", _run_id(again.stdout), "--out", tmp_path / "regen-today",
                 "--db", f"sqlite:///{tmp_path / 'today.sqlite3'}")
    assert regen.exit_code == 0, regen.output
    _same_files(tmp_path / "regen-today", tmp_path / "today")


def test_a_run_whose_debtors_reference_was_truncated_is_rebuilt(tmp_path, monkeypatch):
    """Before 2026-12-06 policies.text_overflow: truncate cut a RefTiers too long (and
    a RUM, a civility sent as exported); an export now refuses it (an identifier cut is
    another's). A run recorded then is rebuilt as it was, byte for byte."""
    import json

    import pesgen.build

    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    [inv] = [i for i in data["invoices"] if i["number"] == "FA-2026-00102"]
    inv["payer"]["ref"] = "FAMILLE-" + "0" * 23
    input_path = tmp_path / "school-export.json"
    input_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml",
                       ("  text_overflow: refuse", "  text_overflow: truncate"))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(
        monkeypatch, lambda m: m.setattr(pesgen.build, "_NEVER_TRUNCATED", {}), mapping, out,
        input_path)
    [xml] = out.glob("*.xml")
    assert b'<RefTiers V="FAMILLE-0000000000000000000000"/>' in xml.read_bytes()
    _rebuilt(tmp_path, run_id, out)
    again = _export(mapping, tmp_path / "today", input_path)
    assert again.exit_code == 4, again.output
    assert "debtor.ref is 31 characters, Hélios allows 30: an identifier is never " \
           "truncated" in again.output


def test_a_run_whose_invoice_number_held_a_format_character_is_rebuilt(tmp_path, monkeypatch):
    """Before 2026-12-06 an invoice number holding a format character (a zero-width
    space) went into an ORMC run (the rôle does not write the number, and this mapping's
    object does not name it). A run recorded then is rebuilt as it was, byte for byte; a
    new export refuses the number (input.invoice-number)."""
    import json

    import pesgen.build

    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    [inv] = [i for i in data["invoices"] if i["number"] == "FA-2026-00104"]
    inv["number"] = "FA-2026-\u200b00104"
    input_path = tmp_path / "school-export.json"
    input_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = _mapping(tmp_path, "villeneuve-sur-loing.yaml", (
        "{expr: \"'CONSERVATOIRE FACTURE ' ~ invoice.number\"}", "{const: CONSERVATOIRE}"))
    out = tmp_path / "out"
    run_id = _recorded_unchecked(
        monkeypatch, lambda m: m.setattr(pesgen.build, "format_char_in", lambda _: None),
        mapping, out, input_path)
    _rebuilt(tmp_path, run_id, out)
    refused = _run("export", "-m", mapping, "-i", input_path, "-o", tmp_path / "today",
                   "--date", RUN_DATE, "--db", f"sqlite:///{tmp_path / 'today.sqlite3'}",
                   "--create-store")
    assert refused.exit_code == ExitCode.INPUT, refused.output
    assert "(rule input.invoice-number)" in refused.output, refused.output
