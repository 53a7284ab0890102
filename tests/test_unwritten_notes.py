"""A bound field no template of the format writes (rule mapping.unwritten) is said in the
summary of the export, of its dry run and of preview, not only by check-mapping.

A reviewer bound ``bindings.joint_payer`` in the pes-ormc and pes-titres mappings and
exported an invoice with a joint payer: both exports ended 0, the summary said nothing,
and the files held no joint debtor (the PES templates write one debtor per title). A
technician who never ran check-mapping, or support reading a run's summary, never
learned that data the mapping reads was dropped. Each such field is now a note of the
run (policy ``unwritten``) naming the mapping file:line:key, the format and what
check-mapping says, with how many of the run's titles held a value for it; the run
records it (``runs show``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pesgen.resources import data_dir

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli
from .mapping_support import mapping_copy

ORMC = MAPPINGS / "villeneuve-sur-loing.yaml"
TITRES = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
JOINT = """  joint_payer:
    kind: joint_payer.kind
    civility: joint_payer.title
    name: joint_payer.last_name
    first_name: joint_payer.first_name
    street: joint_payer.address.street
    postal_code: joint_payer.address.postal_code
    city: joint_payer.address.city
"""
# the joint payer's fields, as the mapping above binds them: none is written by a PES format
JOINT_FIELDS = ("kind", "civility", "name", "first_name", "street", "postal_code", "city")
JOINT_PAYER = {"kind": "person", "title": "M.", "last_name": "Zebulon", "first_name": "Paul",
               "address": {"street": "3 rue Haute", "postal_code": "45200",
                           "city": "Montargis"}}


def _line(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _joint_mapping(tmp_path: Path, shipped: Path, extra: str = "") -> Path:
    """The shipped mapping, binding the joint payer (and ``extra`` under output:)."""
    return mapping_copy(tmp_path, shipped, ("  address:\n", JOINT + "  address:\n"),
                        ("output:\n", "output:\n" + extra))[0]


def _input(tmp_path: Path, with_joint: tuple[int, ...] = (0,),
           direct_debit_only: bool = False) -> Path:
    """The example export, the invoices at ``with_joint`` given a joint payer."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    for index in with_joint:
        data["invoices"][index]["joint_payer"] = JOINT_PAYER
    if direct_debit_only:
        data["invoices"] = [i for i in data["invoices"]
                            if i["payment"]["method"] == "direct_debit"]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _said(mapping: Path, fmt: str, output: str, run: str) -> None:
    """Each joint payer field is a note naming its mapping line, the format, what
    check-mapping says of it and how many invoices had one."""
    for name in JOINT_FIELDS:
        key = f"bindings.joint_payer.{name}"
        line = _line(mapping, f"    {name}: joint_payer.")
        note = next(n for n in output.splitlines() if f"unwritten: {key} is bound" in n)
        assert f"no template of format {fmt} reads t.joint_debtor." in note
        assert "the value is in none of its files" in note
        assert f"[mapping {mapping}:{line}: {key}] (rule mapping.unwritten" in note
        assert note.endswith(f"{run} have a value for joint_payer.{name}: not written"), note


@pytest.mark.parametrize("shipped, fmt", [(ORMC, "pes-ormc"), (TITRES, "pes-titres")])
def test_an_export_says_the_joint_payer_its_files_do_not_hold(tmp_path, shipped, fmt):
    mapping = _joint_mapping(tmp_path, shipped)
    # two exported invoices with a joint payer, and the left-out one (zero total): not
    # counted, nothing of it is exported
    export = _input(tmp_path, with_joint=(0, 1, 5))
    out = tmp_path / "out"
    r = run_cli("export", "-m", mapping, "-i", export, "-o", out, "--date", RUN_DATE)
    assert r.exit_code == 0, r.output
    assert "left out: 1" in r.output
    _said(mapping, fmt, r.output, "2 invoice(s) of this run")
    assert f"unwritten ×{len(JOINT_FIELDS)}" in r.output.split("policies applied: ")[1]
    # what the notes say: no file holds the joint debtor
    for path in out.iterdir():
        assert b"ZEBULON" not in path.read_bytes().upper()
    # recorded with the run: runs show says each field
    run_id = r.output.splitlines()[0].rsplit("run ", 1)[1]
    shown = run_cli("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    for name in JOINT_FIELDS:
        assert (f"  unwritten   bindings.joint_payer.{name} is bound, but no template of "
                f"format {fmt} reads") in shown.output
    assert shown.output.count("of this run have a value for joint_payer.") == len(JOINT_FIELDS)


@pytest.mark.parametrize("shipped, fmt", [(ORMC, "pes-ormc"), (TITRES, "pes-titres")])
def test_a_dry_run_says_it_too(tmp_path, shipped, fmt):
    mapping = _joint_mapping(tmp_path, shipped)
    r = run_cli("export", "--dry-run", "-m", mapping, "-i", _input(tmp_path), "--date",
                RUN_DATE)
    assert r.exit_code == 0, r.output
    assert "(dry run: nothing written, no number used)" in r.output
    _said(mapping, fmt, r.output, "1 invoice(s) of this run")


def test_preview_says_it_of_the_invoices_it_shows(tmp_path):
    mapping = _joint_mapping(tmp_path, ORMC)
    r = run_cli("preview", "-m", mapping, "-i", _input(tmp_path, with_joint=(0, 4)),
                "--limit", "3", "--date", RUN_DATE)
    assert r.exit_code == 0, r.output
    # the fifth invoice is not shown: one of the three shown has a joint payer
    notes = [n for n in r.output.splitlines() if n.startswith("policy unwritten (run): ")]
    assert len(notes) == len(JOINT_FIELDS), r.output
    _said(mapping, "pes-ormc", r.output.replace("policy unwritten (run): ", "unwritten: "),
          "1 invoice(s) shown")


def test_a_run_with_no_value_for_the_field_says_nothing_was_lost(tmp_path):
    mapping = _joint_mapping(tmp_path, ORMC)
    r = run_cli("export", "--dry-run", "-m", mapping, "-i", _input(tmp_path, with_joint=()),
                "--date", RUN_DATE)
    assert r.exit_code == 0, r.output
    assert ("[mapping {}:{}: bindings.joint_payer.name] (rule mapping.unwritten, as pesgen "
            "check-mapping warns); no invoice of this run has a value for joint_payer.name: "
            "nothing lost this time").format(mapping, _line(mapping, "    name: joint_payer.")
                                              ) in r.output


def test_a_bordereau_object_the_format_does_not_write_is_said(tmp_path):
    """pes-titres has no bordereau Objet: a mapping giving one loses it."""
    mapping = _joint_mapping(tmp_path, TITRES,
                             '  bordereau_object: {const: "CONSERVATOIRE T1"}\n')
    r = run_cli("export", "--dry-run", "-m", mapping, "-i", _input(tmp_path, with_joint=()),
                "--date", RUN_DATE)
    assert r.exit_code == 0, r.output
    line = _line(mapping, "bordereau_object:")
    assert ("unwritten: output.bordereau_object is bound, but no template of format "
            "pes-titres reads doc.bordereau.object") in r.output
    assert (f"[mapping {mapping}:{line}: output.bordereau_object] (rule mapping.unwritten, "
            "as pesgen check-mapping warns); this run's bordereau object "
            "(output.bordereau_object): not written") in r.output


def _unsampled_ormc(tmp_path: Path) -> Path:
    """A copy of pes-ormc (its formats folder) whose template fails on check-mapping's
    sample titles: it reads a mandate every title of this school has, not the sample
    without one."""
    bundle = tmp_path / "fmts" / "pes-ormc"
    shutil.copytree(data_dir("templates") / "pes-ormc", bundle)
    template = bundle / "pes-aller.xml.j2"
    text = template.read_text(encoding="iso-8859-1")
    anchor = "{% if t.object %}"
    assert text.count(anchor) == 1
    template.write_text(text.replace(anchor, "{% if t.mandate.rum %}{% endif %}" + anchor),
                        encoding="iso-8859-1")
    return tmp_path / "fmts"


def test_templates_the_sample_titles_cannot_render_are_said_unchecked(tmp_path):
    """A template that fails on check-mapping's sample titles is left to the export, which
    renders it on the invoices: the summary says the fields were not checked, rather
    than saying nothing."""
    r = run_cli("export", "--dry-run", "-m", _joint_mapping(tmp_path, ORMC), "-i",
                _input(tmp_path, direct_debit_only=True), "--date", RUN_DATE,
                "--formats-dir", _unsampled_ormc(tmp_path))
    assert r.exit_code == 0, r.output
    note = next(n for n in r.output.splitlines() if "unwritten: " in n)
    assert note.startswith("  - *: unwritten: the fields the templates write were not "
                           "checked (rule mapping.unwritten): rendering them on pesgen "
                           "check-mapping's sample titles failed: "), note
    assert "pes-aller.xml.j2" in note


def test_templates_the_sample_titles_cannot_render_are_taken_to_write_the_student(tmp_path):
    """Whether the templates write a line's student is not known when the sample titles
    failed: it is held to the text policies as a written one is (a format character
    refused, naming the binding), not taken as exported as it is when none writes it."""
    source = _input(tmp_path, with_joint=(), direct_debit_only=True)
    data = json.loads(source.read_text(encoding="utf-8"))
    data["invoices"][0]["lines"][0]["student"]["ref"] = "ELV-\u202e0101"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    r = run_cli("export", "--dry-run", "-m", ORMC, "-i", source, "--date", RUN_DATE,
                "--formats-dir", _unsampled_ormc(tmp_path))
    assert r.exit_code == 4, r.output
    assert ("line.student contains the invisible format character U+202E RIGHT-TO-LEFT "
            "OVERRIDE") in r.output
    assert ": bindings.line.student] (rule text.charset)" in r.output
    # the shipped pes-ormc, whose templates are read on the sample titles, writes none
    r = run_cli("export", "--dry-run", "-m", ORMC, "-i", source, "--date", RUN_DATE)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("shipped, export", [
    ("villeneuve-sur-loing.yaml", "school-export.json"),
    ("villeneuve-sur-loing-csv.yaml", "school-export.csv"),
    ("villeneuve-sur-loing-titres.yaml", "school-export.json"),
])
def test_a_shipped_mapping_gains_no_such_note(tmp_path, shipped, export):
    """The shipped mappings bind nothing their format does not write (check-mapping warns
    of nothing): their summaries stay as they were."""
    r = run_cli("export", "-m", MAPPINGS / shipped, "-i", EXAMPLES / export, "-o",
                tmp_path / "out", "--date", RUN_DATE)
    assert r.exit_code == 0, r.output
    assert "policies applied: " in r.output
    assert "unwritten:" not in r.output and "unwritten ×" not in r.output
    run_id = r.output.splitlines()[0].rsplit("run ", 1)[1]
    assert "  unwritten " not in run_cli("runs", "show", run_id).output
    r = run_cli("preview", "-m", MAPPINGS / shipped, "-i", EXAMPLES / export, "--date",
                RUN_DATE)
    assert r.exit_code == 0, r.output
    assert "policy unwritten" not in r.output


def test_each_bound_field_is_counted_from_the_model_field_that_carries_it():
    """The count of a note reads the title's model field named by coverage.CARRIED_BY:
    each one exists (a name the model does not have would raise, not count nothing), the
    sample title with every optional part holds nearly all, the bare one none of the joint
    debtor's nor the mandate's."""
    from pesgen.coverage import CARRIED_BY, held_by
    from pesgen.formats import mapping_format
    from pesgen.mapping import load_mapping
    from pesgen.sample import sample_titles

    mapping = load_mapping(ORMC)
    full, bare = sample_titles(mapping, mapping_format(mapping, None))
    tests = {name: held_by(name) for name in CARRIED_BY}
    assert [name for name, test in tests.items() if test is None] == ["output.bordereau_object"]
    # the sample debtors have no SIRET, the joint one no name complement, the debtor's
    # address abroad no complement nor lieu-dit
    assert [name for name, test in tests.items() if test is not None and not test(full)] == [
        "payer.national_id", "address.complement", "address.locality",
        "joint_payer.complement_name"]
    held = {name for name, test in tests.items() if test is not None and test(bare)}
    assert not {n for n in held if n.startswith(("joint_payer.", "payment."))}
    assert {"invoice.total", "payer.name", "address.street", "lines", "line.amount"} <= held
    assert "line.label" not in held  # its one line has no label
