"""A template refusing a value (writing None, a width filter) names what fed it: a value
no binding fills beside a bound one, the fields an expression binding reads, and at
check-mapping, on its sample titles, the binding as at export."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import TemplateError
from pesgen.export import export
from pesgen.resources import data_dir

from .conftest import EXAMPLES, MAPPINGS
from .mapping_support import mapping_copy
from .test_vendor_formats import CORAIL, RUN, _binding_line, _corail_writing

SOURCE = EXAMPLES / "school-export.json"


def _refused(mapping, fmts, tmp_path):
    with pytest.raises(TemplateError) as info:
        export(mapping, SOURCE, tmp_path / "out", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert "writes None: a value left unset" in problem.message, problem
    return str(problem)


def _previewed(mapping, fmts):
    r = CliRunner().invoke(app, ["preview", "-m", str(mapping), "-i", str(SOURCE), "--date",
                                 "2026-11-23", "--formats-dir", str(fmts)])
    assert r.exit_code == 5, r.output
    return " ".join(r.output.split())


def _unbound(field: str, group: str) -> str:
    return (f"the value of bindings.{group}.{field}, which the mapping does not bind: bind "
            f"it under {CORAIL}:{_binding_line(CORAIL, f'{group}:')}: bindings.{group}")


def test_a_value_no_binding_fills_is_named_with_where_to_bind_it(tmp_path):
    """A template writing t.service_from, which the mapping does not bind, named the
    template's line alone: it names the binding to add, and where."""
    fmts, line = _corail_writing(tmp_path, "{{ t.service_from }}")
    said = (f"({_unbound('service_from', 'invoice')}) "
            f"[template {fmts}/cosoluce-corail/corail.xml.j2:{line}] (rule template)")
    assert _refused(CORAIL, fmts, tmp_path).endswith(said)
    assert said in _previewed(CORAIL, fmts)


@pytest.mark.parametrize("written", [
    "{{ t.debtor.national_id }}{{ t.service_from }}",
    "{{ t.service_from }}{{ t.debtor.national_id }}",
])
def test_an_unbound_value_beside_a_bound_empty_one_names_both(tmp_path, written):
    """A line writing a bound field the invoice leaves empty beside a value no binding
    fills named neither (each filled alone leaves the other; both filled, the unbound
    one was never tried): it names both, the bound one as before, the other with where
    to bind it, at export and preview."""
    fmts, line = _corail_writing(tmp_path, written)
    bound = (f"the value of {CORAIL}:{_binding_line(CORAIL, 'national_id: payer.siret')}: "
             "bindings.payer.national_id, empty for this invoice")
    said = (f"(the line writes 2 values left empty: {bound}; "
            f"{_unbound('service_from', 'invoice')}) "
            f"[template {fmts}/cosoluce-corail/corail.xml.j2:{line}] (rule template)")
    assert _refused(CORAIL, fmts, tmp_path).endswith(said)
    assert said in _previewed(CORAIL, fmts)


def test_an_expression_binding_left_empty_names_the_fields_it_reads(tmp_path):
    """A binding `{expr: "invoice.payer.siret or invoice.payer.nir"}` left empty named
    the binding alone, not the two fields of the record it reads, which the technician
    fills: it names them and what the invoice's record holds there, as input.required
    does, at export and preview."""
    old = "national_id: payer.siret"
    mapping, [at] = mapping_copy(tmp_path, CORAIL, (
        old, 'national_id: {expr: "invoice.payer.siret or invoice.payer.nir"}'),
        name="m.yaml")
    fmts, line = _corail_writing(tmp_path, "{{ t.debtor.national_id }}")
    said = (f"(the value of {mapping}:{at}: bindings.payer.national_id, empty for this "
            "invoice: its expression reads invoice.payer.siret, invoice.payer.nir: both "
            "absent from this record) "
            f"[template {fmts}/cosoluce-corail/corail.xml.j2:{line}] (rule template)")
    assert _refused(mapping, fmts, tmp_path).endswith(said)
    assert said in _previewed(mapping, fmts)


def _checked(fmts) -> str:
    r = CliRunner().invoke(app, ["check-mapping", str(CORAIL), "--formats-dir", str(fmts)])
    assert r.exit_code == 5, r.output
    return " ".join(r.output.split())


def test_check_mapping_names_the_binding_a_piece_wrote_as_none(tmp_path):
    """check-mapping's refusal of a piece writing None on its sample titles named the
    template's line alone (head and tail named the setting): it names the binding the
    sample title leaves empty, as export does."""
    fmts, line = _corail_writing(tmp_path, "{{ t.debtor.national_id }}")
    said = (f"(the value of {CORAIL}:{_binding_line(CORAIL, 'national_id: payer.siret')}: "
            "bindings.payer.national_id, empty for this invoice) "
            f"[template {fmts}/cosoluce-corail/corail.xml.j2:{line}]")
    assert said in _checked(fmts)


def test_check_mapping_names_the_binding_whose_value_a_filter_refused(tmp_path):
    """check-mapping's refusal of a value over a fixed width on its sample titles (the
    organisation's name, 20 characters) named the template's line alone: it names the
    binding whose value it is, as export does."""
    fmts, line = _corail_writing(tmp_path, "{{ t.debtor.name | fixed(10) }}")
    output = _checked(fmts)
    said = (f"(the value of {CORAIL}:{_binding_line(CORAIL, name_line)}: bindings.payer.name) "
            f"[template {fmts}/cosoluce-corail/corail.xml.j2:{line}]")
    assert "a text of 20 characters is longer than 10 characters" in output, output
    assert said in output, output


name_line = 'name: {expr: "invoice.payer.last_name or invoice.payer.name"}'


def test_a_template_writing_either_of_two_empty_values_names_both(tmp_path):
    """A line writing `(t.debtor.national_id or t.debtor.email) ~ ''`, both left empty
    by the invoice, named neither: each given a value alone clears it, so neither alone
    was why. It names both now, as values of which one given would do."""
    data = json.loads(SOURCE.read_text(encoding="utf-8"))
    del data["invoices"][0]["payer"]["email"]
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    fmts, line = _corail_writing(tmp_path,
                                 "{{ (t.debtor.national_id or t.debtor.email) ~ '' }}")
    said = ("(the line writes None unless one of 2 values left empty is given: the value "
            f"of {CORAIL}:{_binding_line(CORAIL, 'national_id: payer.siret')}: "
            "bindings.payer.national_id, empty for this invoice; the value of "
            f"{CORAIL}:{_binding_line(CORAIL, 'email: payer.email')}: bindings.payer.email, "
            f"empty for this invoice) [template {fmts}/cosoluce-corail/corail.xml.j2:{line}] "
            "(rule template)")
    with pytest.raises(TemplateError) as info:
        export(CORAIL, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert str(problem).endswith(said), problem


@pytest.mark.parametrize(("emptied", "first", "more"), [
    ([1], 1, ""), ([1, 2], 1, " (and for one more of its lines)"),
    ([0, 1, 2], 0, " (and for 2 more of its lines)")])
def test_a_line_expression_binding_left_empty_names_the_line_and_what_it_reads(
        tmp_path, emptied, first, more):
    """A line's binding `{expr: "line.student.ref or line.pupil"}` left empty on the
    invoice's second line named the binding alone ('empty for this invoice'), not which
    line's record it read, nor what it reads there (an invoice's expression binding is
    told both): it names the line (its number and its record) and the fields the
    expression reads with what that line's record holds, at export and preview; the
    first such line (the one the template met), and how many more there are."""
    data = json.loads(SOURCE.read_text(encoding="utf-8"))
    for i in emptied:
        del data["invoices"][0]["lines"][i]["student"]["ref"]
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping, [at] = mapping_copy(tmp_path, CORAIL, (
        "student: student.ref", 'student: {expr: "line.student.ref or line.pupil"}'),
        name="m.yaml")
    fmts, line = _corail_writing(tmp_path, "{% for ln in t.lines %}{{ ln.student }}"
                                           "{% endfor %}")
    said = (f"(the value of {mapping}:{at}: bindings.line.student, empty for this "
            f"invoice's line {first + 1} ({source}:$.invoices[0].lines[{first}]): its "
            "expression reads "
            f"line.student.ref, line.pupil: both absent from this record{more}) "
            f"[template {fmts}/cosoluce-corail/corail.xml.j2:{line}] (rule template)")
    with pytest.raises(TemplateError) as info:
        export(mapping, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert str(problem).endswith(said), problem
    r = CliRunner().invoke(app, ["preview", "-m", str(mapping), "-i", str(source), "--date",
                                 "2026-11-23", "--formats-dir", str(fmts)])
    assert r.exit_code == 5, r.output
    assert said in " ".join(r.output.split())


def test_a_line_expression_binding_empty_on_two_lines_reads_the_first_one_s_record(
        tmp_path):
    """Of two lines leaving a line's expression binding empty, each its own way (the
    second's student.ref written empty), the fields read are said as the first line's
    record holds them, the line named: not the last's."""
    data = json.loads(SOURCE.read_text(encoding="utf-8"))
    del data["invoices"][0]["lines"][1]["student"]["ref"]
    data["invoices"][0]["lines"][2]["student"]["ref"] = " "
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping, [at] = mapping_copy(tmp_path, CORAIL, (
        "student: student.ref", 'student: {expr: "line.student.ref or line.pupil"}'),
        name="m.yaml")
    fmts, _ = _corail_writing(tmp_path, "{% for ln in t.lines %}{{ ln.student }}"
                                        "{% endfor %}")
    with pytest.raises(TemplateError) as info:
        export(mapping, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert (f"(the value of {mapping}:{at}: bindings.line.student, empty for this invoice's "
            f"line 2 ({source}:$.invoices[0].lines[1]): its expression reads "
            "line.student.ref, line.pupil: both absent from this record (and for one more "
            "of its lines))") in str(problem), problem


def test_a_line_expression_binding_of_a_csv_export_names_the_lines_row(tmp_path):
    """The same of a CSV export, one row per line: the line's record is its row
    (file:row), the fields read its columns."""
    rows = (EXAMPLES / "school-export.csv").read_text(encoding="utf-8").splitlines(True)
    assert rows[2].count(",ELV-0101,") == 1
    rows[2] = rows[2].replace(",ELV-0101,", ",,")
    source = tmp_path / "export.csv"
    source.write_text("".join(rows), encoding="utf-8")
    mapping, [_, at] = mapping_copy(
        tmp_path, MAPPINGS / "villeneuve-sur-loing-csv.yaml",
        ("format: pes-ormc", "format: my-ormc"),
        ("student: student_ref", 'student: {expr: "line.student_ref or line.payer_siret"}'),
        name="m.yaml")
    fmts = tmp_path / "fmts"
    shutil.copytree(data_dir("templates") / "pes-ormc", fmts / "my-ormc")
    spec = fmts / "my-ormc" / "format.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("name: pes-ormc", "name: my-ormc",
                                                             1), encoding="utf-8")
    template = fmts / "my-ormc" / "pes-aller.xml.j2"
    old = '<IdLigne V="{{ ln.number }}"/>'
    text = template.read_text(encoding="utf-8")
    assert text.count(old) == 1
    template.write_text(text.replace(old, "<!--{{ ln.student }}-->" + old), encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        export(mapping, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert (f"the value of {mapping}:{at}: bindings.line.student, empty for this invoice's "
            f"line 2 ({source}:3): its expression reads student_ref, payer_siret: both "
            "empty in this record") in str(problem), problem


def test_a_stand_in_breaking_another_line_does_not_clear_the_refused_one(tmp_path):
    """binding_of_none gives each value left empty a stand-in, one at a time, and names
    those without which the refused line no longer writes None. A stand-in that made
    another line write None first (the e-mail given, the line before writes the empty
    national_id) counted as clearing the refused line: the e-mail was named as one of
    two values of which one given would do. What another line's refusal says of the
    refused one is unknown: the e-mail is not named, the value no binding fills is."""
    data = json.loads(SOURCE.read_text(encoding="utf-8"))
    del data["invoices"][0]["payer"]["email"]
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    fmts, line = _corail_writing(tmp_path, "{% if t.debtor.email %}{{ t.debtor.national_id }}"
                                           "{% endif %}\n{{ t.service_from }}")
    with pytest.raises(TemplateError) as info:
        export(CORAIL, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert str(problem).endswith(
        f"({_unbound('service_from', 'invoice')}) "
        f"[template {fmts}/cosoluce-corail/corail.xml.j2:{line + 1}] (rule template)"), problem


def test_check_mapping_finds_a_unit_price_the_mapping_does_not_bind_as_preview_does(
        tmp_path):
    """check-mapping's sample lines all had a quantity and a unit price (1 x the amount)
    whether the mapping bound them or not: a template writing `ln.unit_price | amount`
    with a mapping binding neither passed check-mapping (OK) and check-format, then
    preview and the export refused every invoice (exit 5). The sample's lines have them
    only where the mapping binds them, as the export's do: check-mapping refuses it
    (exit 5) naming where to bind it, as preview does."""
    mapping, _ = mapping_copy(tmp_path, CORAIL, (
        "    quantity: quantity\n    unit_price: unit_price\n", ""), name="m.yaml")
    line_at = mapping.read_text(encoding="utf-8").splitlines().index("  line:") + 1
    fmts, line = _corail_writing(
        tmp_path, "{% for ln in t.lines %}{{ ln.unit_price | amount }}{% endfor %}")
    said = (f"(the value of bindings.line.unit_price, which the mapping does not bind: bind "
            f"it under {mapping}:{line_at}: bindings.line) "
            f"[template {fmts}/cosoluce-corail/corail.xml.j2:{line}] (rule template)")
    assert said in _previewed(mapping, fmts)
    r = CliRunner().invoke(app, ["check-mapping", str(mapping), "--formats-dir", str(fmts)])
    assert r.exit_code == 5, r.output
    output = " ".join(r.output.split())
    assert "filter amount writes None" in output and "(piece of invoice SAMPLE-1)" in output
    assert said in output, output
    # bound, the sample's lines are priced as before: OK
    r = CliRunner().invoke(app, ["check-mapping", str(CORAIL), "--formats-dir", str(fmts)])
    assert r.exit_code == 0, r.output
