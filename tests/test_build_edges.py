"""Building titles at the edges the other tests leave: each test pins a behaviour of
``pesgen.build`` where a small change to its code (a condition dropped or negated, a
constant off by one, a call left out) went unnoticed by the rest of the suite. Found by
mutation testing of ``pesgen/build.py``; each test says what it pins."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import date
from decimal import Decimal

import pytest

from pesgen.build import Builder, BuildResult
from pesgen.export import export
from pesgen.formats import find_format, load_format
from pesgen.mapping import load_mapping
from pesgen.sources import read_invoices

from .conftest import EXAMPLES, MAPPINGS, ROOT, RUN_DATE
from .mapping_support import mapping_copy
from .test_cli import _without_civility_table

EXAMPLE = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("civilities, said", [
    (["Mme", "M.", "M", "Dr", "Pr", "Me", "Mgr"], "7 civility value(s) sent as written: Mme, M., "
     "M, Dr, Pr, …"),
    (["Mme", "M.", "M", "Dr", "Pr"], "5 civility value(s) sent as written: Mme, M., M, Dr, Pr"),
])
def test_the_civility_note_names_five_values_then_says_there_are_more(tmp_path, civilities,
                                                                       said):
    """run_notes: without codes.civility, the run's one note counts every civility sent
    as written and names the first five seen, in input order, then '…' if there are
    more (not when there are five)."""
    mapping, source = _without_civility_table(tmp_path)
    data = json.loads(source.read_text(encoding="utf-8"))
    titles = iter(civilities)
    for inv in data["invoices"]:
        # not the zero total's (left out before its debtor is read: its civility unseen)
        if inv["payer"]["kind"] == "person" and inv["payer"].get("title") and \
                inv["total"] != "0.00":
            inv["payer"]["title"] = next(titles, "Mme")
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = export(mapping, source, tmp_path / "out", date.fromisoformat(RUN_DATE))
    assert [n.detail for n in result.notes if n.policy == "civility_table"] == [
        f"no codes.civility table: {said}"]


def test_a_title_of_less_than_one_euro_is_a_title(tmp_path):
    """pes.negative-total refuses a total below 0, not below 1: an invoice of 0.50 (one
    line) is a title of 0.50."""
    data = copy.deepcopy(EXAMPLE)
    invoice = data["invoices"][0]
    invoice["lines"] = invoice["lines"][:1]
    invoice["lines"][0].update(amount="0.50", unit_price="0.50")
    invoice["total"] = "0.50"
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = load_mapping(MAPPINGS / "villeneuve-sur-loing.yaml")
    src = next(iter(read_invoices(path, mapping.input)))
    result = Builder(mapping, find_format("pes-ormc")).build(src)
    assert result.problems == []
    assert result.title.total == Decimal("0.50")
    assert [ln.amount for ln in result.title.lines] == [Decimal("0.50")]


def test_a_long_text_truncated_on_every_invoice_is_said_on_every_invoice(tmp_path):
    """text_overflow: truncate: two families in the same over-long city both get it
    truncated and a text_overflow note each (a text seen before is taken from memory:
    a truncated one is not, its note would be lost)."""
    city = "Saint-Germain-des-Pres-sur-Loing-et-Environs"
    data = copy.deepcopy(EXAMPLE)
    for invoice in data["invoices"][:2]:
        invoice["payer"]["address"]["city"] = city
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping_path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
                                   ("text_overflow: refuse", "text_overflow: truncate"),
                                   name="m.yaml")
    mapping = load_mapping(mapping_path)
    builder = Builder(mapping, find_format("pes-ormc"))
    results = [builder.build(src) for src, _ in zip(read_invoices(path, mapping.input),
                                                    range(2), strict=False)]
    assert [r.title.debtor.address.city for r in results] == [
        "SAINT-GERMAIN-DES-PRES-SUR-LOING-ET-EN"] * 2
    assert [[n.detail for n in r.notes if n.policy == "text_overflow"] for r in results] == [
        [f"address.city: {len(city)} characters truncated to 38 (limit 38)"]] * 2


def _build_first(tmp_path, edit) -> list:
    """The example's first invoice, edited, built with the example mapping: its
    problems as (rule, record's last part, message)."""
    data = copy.deepcopy(EXAMPLE)
    edit(data["invoices"][0])
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = load_mapping(MAPPINGS / "villeneuve-sur-loing.yaml")
    src = next(iter(read_invoices(path, mapping.input)))
    result = Builder(mapping, find_format("pes-ormc")).build(src)
    assert result.title is None
    return [(p.rule, p.record.rsplit(":", 1)[-1], p.message) for p in result.problems]


def _built(tmp_path, data, mapping=MAPPINGS / "villeneuve-sur-loing.yaml",
           fmt: str = "pes-ormc") -> BuildResult:
    """The first invoice of ``data`` (an export's JSON) built by ``mapping`` for ``fmt``."""
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    loaded = load_mapping(mapping)
    return Builder(loaded, find_format(fmt)).build(next(iter(read_invoices(path, loaded.input))))


def test_a_payer_without_kind_is_refused_not_dropped(tmp_path):
    """An invoice whose payer.kind is empty gives no debtor: refused, saying the kind
    is missing (without that problem its build gives no title and no problem)."""
    assert _build_first(tmp_path, lambda inv: inv["payer"].update(kind="  ")) == [
        ("input.required", "$.invoices[0]", "payer.kind is missing")]


def test_an_expression_giving_a_list_names_the_expression_and_the_invoice(tmp_path):
    """A value of the wrong kind read by a path is named at its JSON path; one an
    expression gives, at the invoice, with the expression."""
    said = _build_first(tmp_path, lambda inv: inv["payer"].update(last_name=["Dupont"]))
    assert said == [("input.type", "$.invoices[0]", "debtor.name is a list (from expr "
                     "'invoice.payer.last_name or invoice.payer.name'), not a text: a field "
                     "of the title takes a string or a number")]


def test_a_list_or_an_object_given_as_a_date_or_an_amount_is_refused(tmp_path):
    """A date or an amount that is a JSON list or object is one problem each, at its
    record, said by its kind, never by its Python text (the billing data it holds);
    texts, dates and amounts seen before are taken from memory: only a string or a
    number is looked up there, a list cannot be."""
    def edit(inv):
        inv["due_date"] = ["2026-12-20"]
        inv["lines"][0]["amount"] = {"v": "85.00"}

    assert _build_first(tmp_path, edit) == [
        ("input.amount", "$.invoices[0].lines[0]", "line.amount: an object is not an amount"),
        ("input.date", "$.invoices[0]", "invoice.due_date: a list is not a date")]


def _ormc_bundle(tmp_path, label: str):
    """A copy of the pes-ormc bundle whose line.label field is ``label``."""
    bundle = tmp_path / "formats" / "pes-ormc"
    shutil.copytree(ROOT / "templates" / "pes-ormc", bundle)
    spec = bundle / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count("  line.label: {max: 160}\n") == 1
    spec.write_text(text.replace("  line.label: {max: 160}\n", f"  line.label: {label}\n"),
                    encoding="utf-8")
    return load_format(bundle)


def _netted_first(tmp_path, fmt, *subs) -> BuildResult:
    """FA-2026-00101 (a discount netted into its first line) built for ``fmt`` by the
    example mapping with netted_label: append and the textual substitutions ``subs``."""
    mapping_path, _ = mapping_copy(
        tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
        ("text_overflow: refuse", "text_overflow: refuse\n  netted_label: append"), *subs)
    mapping = load_mapping(mapping_path)
    src = next(src for src in read_invoices(EXAMPLES / "school-export.json", mapping.input)
               if src.record["number"] == "FA-2026-00101")
    return Builder(mapping, fmt).build(src)


def test_a_netted_suffix_leaving_no_room_for_the_label_is_refused(tmp_path):
    """policies netted_label: append with text_overflow: truncate shortens the label's own
    text to make room for ' - NET REMISE …'; a format whose line.label limit leaves no
    character of it (19: the 16-character suffix and ' - ') refuses the line, it does not
    write the suffix alone."""
    result = _netted_first(tmp_path, _ormc_bundle(tmp_path, "{max: 19}"),
                           ("text_overflow: refuse", "text_overflow: truncate"))
    assert result.title is None
    assert [(p.rule, p.message) for p in result.problems] == [(
        "text.length", "line.label of line 1 with its netted suffix ('NET REMISE 22,75') is "
        "37 characters, Hélios allows 19 (policies netted_label: append, text_overflow: "
        "truncate)")]


def test_a_netted_suffix_leaving_one_character_keeps_one_character_of_the_label(tmp_path):
    """The limit one above (20): one character of the label's own text fits before
    ' - NET REMISE 22,75', and is kept, with the text_overflow note."""
    result = _netted_first(tmp_path, _ormc_bundle(tmp_path, "{max: 20}"),
                           ("text_overflow: refuse", "text_overflow: truncate"))
    assert result.problems == []
    assert result.title.lines[0].label == "F - NET REMISE 22,75"
    # (each label was first truncated to 20 on its own, as text_overflow: truncate does)
    assert [n.detail for n in result.notes if n.policy == "text_overflow"
            and "netted" in n.detail] == [
        "line.label: 37 characters with the netted suffix: the label shortened to 1 before "
        "' - NET REMISE 22,75' (limit 20)"]


def test_a_netted_suffix_the_label_s_charset_cannot_hold_is_refused(tmp_path):
    """A format whose line.label charset has no space nor comma (alnum) cannot write
    ' - NET REMISE 22,75': the invoice is refused, naming the suffix, the line's record
    and policies.netted_label (without that problem it was left out, said nowhere)."""
    result = _netted_first(
        tmp_path, _ormc_bundle(tmp_path, "{max: 160, charset: alnum}"),
        ("label: {expr: \"line.activity.label ~ ' - ' ~ line.student.first_name ~ ' ' ~ "
         "line.student.last_name\"}", "label: {expr: \"line.student.first_name\"}"))
    assert result.title is None
    [problem] = result.problems
    assert (problem.rule, problem.record.rsplit(":", 1)[-1]) == (
        "text.charset", "$.invoices[0].lines[0]")
    assert problem.message.startswith("line.label: the netted suffix 'NET REMISE 22,75' ")
    assert problem.mapping.endswith(": policies.netted_label")


def test_a_direct_debit_without_its_mandate_values_names_each_binding(tmp_path):
    """A direct debit needs its mandate: a blank RUM is 'missing for a direct debit' at
    its binding; a mandate value the mapping does not bind (the sequence) is the same
    problem, at bindings.payment, saying which key is not bound there (a technician
    whose export has no sequence column read 'missing' as a value the export lacked, and
    looked in the file)."""
    mapping_path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
                                   ("    sequence: payment.mandate.sequence\n", ""),
                                   name="m.yaml")
    data = copy.deepcopy(EXAMPLE)
    data["invoices"][0]["payment"]["mandate"]["rum"] = " "
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = load_mapping(mapping_path)
    src = next(iter(read_invoices(path, mapping.input)))
    result = Builder(mapping, find_format("pes-ormc")).build(src)
    assert result.title is None
    assert [(p.rule, p.message, p.mapping.rsplit(": ", 1)[-1]) for p in result.problems] == [
        ("input.required", "payment.rum is missing for a direct debit", "bindings.payment.rum"),
        ("input.required", "payment.sequence is missing for a direct debit: "
         "bindings.payment.sequence is not bound (bind it to the export's column or key, "
         "or give it as {const: ...})", "bindings.payment")]


def test_the_mapping_reference_says_which_payment_values_a_direct_debit_requires(tmp_path):
    """A direct debit whose mandate values are not bound is refused for each of them
    (above); the mapping reference, the technician's list of keys, said none of them was
    required (new-mapping's scaffold shows only direct_debit under payment): each one
    the builder requires is said required for a direct debit, in bindings.payment's
    description and its own, and the optional ones (bic, holder, label) are not."""
    import re

    from pesgen._schema import load_schema

    mapping_path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml", (
        "    debit_date: payment.debit_date\n    rum: payment.mandate.rum\n"
        "    mandate_signed_on: payment.mandate.signed_on\n    iban: payment.mandate.iban\n",
        ""), ("    sequence: payment.mandate.sequence\n", ""), name="m.yaml")
    mapping = load_mapping(mapping_path)
    src = next(iter(read_invoices(EXAMPLES / "school-export.json", mapping.input)))
    result = Builder(mapping, find_format("pes-ormc")).build(src)
    required = {m.group(1) for p in result.problems
                if (m := re.match(r"payment\.(\w+) is missing for a direct debit", p.message))}
    assert required == {"debit_date", "rum", "mandate_signed_on", "iban", "sequence"}
    payment = load_schema("mapping.schema.json")["properties"]["bindings"]["properties"]["payment"]
    said = payment["description"]
    assert "For a direct debit, " in said and " are required" in said, said
    listed = set(re.split(r", | and ", said.split("For a direct debit, ", 1)[1].split(
        " are required", 1)[0]))
    assert listed == required, said
    for name, prop in payment["properties"].items():
        if name == "direct_debit":
            continue
        assert (name in required) == prop["description"].endswith(
            " Required for a direct debit."), (name, prop["description"])


def test_a_line_without_activity_code_is_refused_at_the_line(tmp_path):
    """A line whose activity code is blank has no imputation: refused, at the line's
    record, saying the activity is missing (without that problem the invoice was left
    out with nothing said)."""
    assert _build_first(tmp_path, lambda inv: inv["lines"][1]["activity"].update(code=" ")) \
        == [("input.required", "$.invoices[0].lines[1]", "line.activity is missing")]


@pytest.mark.parametrize(("expr", "failed"), [
    # a read going on past a list by a name (the list's method): followed no further
    ("invoice.lines.count + 1", "unsupported operand type(s) for +: "
                                "'builtin_function_or_method' and 'int'"),
    # a read that reaches a text: no list nor object to name
    ("invoice.number + 1", 'can only concatenate str (not "int") to str'),
])
def test_an_expression_failing_on_a_type_names_no_list_it_did_not_read(tmp_path, expr,
                                                                       failed):
    """An expression failing on a type (TypeError) is told which of its reads are a list
    or an object (' (invoice.payment.method is a list)'); one whose reads reach none is
    its mapping.expr problem as Python words it, naming its binding, nothing added (and
    no crash)."""
    mapping_path, (line,) = mapping_copy(
        tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
        ("    email: payer.email", f'    email: {{expr: "{expr}"}}'))
    mapping = load_mapping(mapping_path)
    src = next(iter(read_invoices(EXAMPLES / "school-export.json", mapping.input)))
    result = Builder(mapping, find_format("pes-ormc")).build(src)
    assert result.title is None
    assert [(p.rule, p.mapping, p.message) for p in result.problems] == [(
        "mapping.expr", f"{mapping_path}:{line}: bindings.payer.email",
        f"payer.email: expression failed: {failed}")]


def test_the_unbound_country_note_points_at_the_address_bindings(tmp_path):
    """The run's note that address.country is not bound is recorded at the mapping's
    bindings.address, where the key would go (the store keeps each note's record)."""
    mapping_path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
                                   ("    country: payer.address.country\n", ""))
    builder = Builder(load_mapping(mapping_path), find_format("pes-ormc"))
    [note] = [n for n in builder.run_notes("run") if n.policy == "country"]
    [line] = [i for i, text in enumerate(mapping_path.read_text(encoding="utf-8").splitlines(), 1)
              if text == "  address:"]
    assert note.origin == f"{mapping_path}:{line}: bindings.address"


def test_an_expression_giving_a_float_is_a_number(tmp_path):
    """A number an expression writes (``1.5``: a float, not the JSON reader's Decimal) is
    a number: a quantity of 1.50, never refused as a value of another kind."""
    mapping_path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
                                   ("    quantity: quantity\n", '    quantity: {expr: "1.5"}\n'))
    mapping = load_mapping(mapping_path)
    src = next(iter(read_invoices(EXAMPLES / "school-export.json", mapping.input)))
    result = Builder(mapping, find_format("pes-ormc")).build(src)
    assert result.problems == []
    assert {ln.quantity for ln in result.title.lines} == {Decimal("1.50")}


def test_a_run_that_upper_cased_nothing_has_no_case_note(tmp_path):
    """policies.case: keep upper-cases nothing: the run has no case note (not '0
    value(s) upper-cased')."""
    mapping_path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
                                   ("  case: upper ", "  case: keep  "))
    result = export(mapping_path, EXAMPLES / "school-export.json", tmp_path / "out",
                    date.fromisoformat(RUN_DATE))
    assert result.titles > 0
    assert [n for n in result.notes if n.policy == "case"] == []


def test_a_foreign_city_refused_gives_no_foreign_address_note(tmp_path):
    """A foreign address whose 'postal code city' is refused (over Hélios's 38 with
    text_overflow: refuse) is that problem: no foreign_address note saying how it was
    written (preview shows a refused invoice's notes)."""
    data = copy.deepcopy(EXAMPLE)
    [invoice] = [i for i in data["invoices"] if i["number"] == "FA-2026-00105"]
    assert invoice["payer"]["address"]["country"] == "BE"
    # 36 characters: the city fits on its own, '1040 ' and the city do not
    invoice["payer"]["address"]["city"] = "Woluwe-Saint-Pierre-Sint-Pieters-Wol"
    result = _built(tmp_path, {"invoices": [invoice]})
    assert result.title is None
    assert [(p.rule, p.message.split(",")[0]) for p in result.problems] == [
        ("text.length", "address.city is 41 characters")]
    assert [n.policy for n in result.notes if n.policy == "foreign_address"] == []


def test_a_json_integer_seen_again_is_the_same_number(tmp_path):
    """Integers the JSON reader gives (a quantity of 2) are parsed once and taken from
    memory after: the second line's 2 is 2.00 as the first's is."""
    data = copy.deepcopy(EXAMPLE)
    lines = data["invoices"][0]["lines"]
    for line in lines[:2]:
        line["quantity"] = 2
    result = _built(tmp_path, data)
    assert [ln.quantity for ln in result.title.lines[:2]] == [Decimal("2.00")] * 2

def test_an_expression_reads_a_line_s_texts_stripped(tmp_path):
    """An expression reads the record as a path binding does, its texts stripped (the
    lines' too): a line's activity code written 'FM-C1 ' is 'FM-C1' to it."""
    old = ("label: {expr: \"line.activity.label ~ ' - ' ~ line.student.first_name ~ ' ' ~ "
           "line.student.last_name\"}")
    mapping_path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml", (
        old, "label: {expr: \"'solfege' if line.activity.code == 'FM-C1' else 'autre'\"}"))
    data = copy.deepcopy(EXAMPLE)
    data["invoices"][0]["lines"][0]["activity"]["code"] = "FM-C1 "
    result = _built(tmp_path, data, mapping_path)
    assert [ln.label for ln in result.title.lines[:2]] == ["SOLFEGE", "AUTRE"]


def test_a_long_street_beside_a_complement_names_the_format_s_fields(tmp_path):
    """For a format other than PES, the refusal of a long street that cannot be split
    (the complement already there) names the mapping's fields, not Hélios's Adr1."""
    data = copy.deepcopy(EXAMPLE)
    [invoice] = [i for i in data["invoices"] if i["number"] == "FA-2026-00104"]
    invoice["payer"]["address"]["complement"] = "Bâtiment B"
    result = _built(tmp_path, {"invoices": [invoice]},
                    MAPPINGS / "villeneuve-sur-loing-corail.yaml", "cosoluce-corail")
    assert [(p.rule, p.message) for p in result.problems] == [(
        "text.length", "address.street is 54 characters, format cosoluce-corail allows 38 "
        "(address.complement already holds the complement: shorten it in the school "
        "software (the usual abbreviations: bd for boulevard, av. for avenue, chem. for "
        "chemin))")]


@pytest.mark.parametrize(("policy", "why"), [
    ("split", "debtor.complement_name already used"),
    ("refuse", "policy name_overflow: refuse: set policies.name_overflow: split to put its "
               "end into debtor.complement_name when that is empty")])
def test_a_long_name_beside_a_name_complement_names_the_format_s_fields(tmp_path, policy, why):
    """For a format other than PES, the refusal of a long name that cannot be split
    (its complement already bound and given) names the mapping's field, not ComplNom;
    under name_overflow: refuse, the policy."""
    mapping, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-corail.yaml", (
        "    first_name: payer.first_name\n",
        "    first_name: payer.first_name\n    complement_name: payer.complement\n"),
        ("  name_overflow: split ", f"  name_overflow: {policy} "))
    data = copy.deepcopy(EXAMPLE)
    [invoice] = [i for i in data["invoices"] if i["number"] == "FA-2026-00108"]
    invoice["payer"]["complement"] = "Section Loiret"
    result = _built(tmp_path, {"invoices": [invoice]}, mapping, "cosoluce-corail")
    assert [(p.rule, p.message) for p in result.problems] == [(
        "text.length", f"debtor.name is 40 characters, format cosoluce-corail allows 38 ({why})")]


def test_a_line_without_its_own_label_takes_its_activity_s(tmp_path):
    """codes.activities' label is the default line label: a line whose label binding
    gives nothing is labelled by its activity (upper-cased as any text), the others keep
    their own."""
    old = ("label: {expr: \"line.activity.label ~ ' - ' ~ line.student.first_name ~ ' ' ~ "
           "line.student.last_name\"}")
    mapping, _ = mapping_copy(
        tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml", (old, "label: activity.label"),
        ('    FM-C1:       {product: FMC1, nature: "7062", fonction: "311"}',
         '    FM-C1:       {product: FMC1, nature: "7062", fonction: "311", '
         'label: "Solfège"}'))
    data = copy.deepcopy(EXAMPLE)
    data["invoices"][0]["lines"][0]["activity"]["label"] = " "
    result = _built(tmp_path, data, mapping)
    assert [ln.label for ln in result.title.lines[:2]] == [
        "SOLFÈGE", "PIANO - COURS INDIVIDUEL 30 MIN"]


def test_a_line_s_student_is_its_reference_as_a_text(tmp_path):
    """line.student is the student's reference, as a text; one that is a list is
    refused at its JSON path (input.type), never written as Python would ("['ELV']")."""
    data = copy.deepcopy(EXAMPLE)
    assert _built(tmp_path, data).title.lines[0].student == "ELV-0101"
    data["invoices"][0]["lines"][0]["student"]["ref"] = ["ELV-0101"]
    result = _built(tmp_path, data)
    assert result.title is None
    assert [(p.rule, p.record.rsplit(":", 1)[-1]) for p in result.problems] == [
        ("input.type", "$.invoices[0].lines[0].student.ref")]


def test_a_debtor_s_optional_values_are_the_export_s(tmp_path):
    """The values a debtor may have when bound: a person's birth date and email, the
    address's locality (lieu-dit), each as the export gives it (the texts after the
    policies)."""
    mapping, _ = mapping_copy(
        tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
        ("    email: payer.email\n",
         "    email: payer.email\n    birth_date: payer.birth_date\n"),
        ("    city: payer.address.city\n",
         "    city: payer.address.city\n    locality: payer.address.locality\n"))
    data = copy.deepcopy(EXAMPLE)
    data["invoices"][0]["payer"]["address"]["locality"] = "Hameau des Bois"
    debtor = _built(tmp_path, data, mapping).title.debtor
    assert (debtor.birth_date, debtor.email, debtor.address.locality) == (
        date(1984, 3, 12), "helene.dupont@example.org", "HAMEAU DES BOIS")


def test_an_invoice_without_its_optional_dates_is_a_title(tmp_path):
    """The invoice's dates are optional (a binding may give nothing): a blank due date is
    no problem, the title simply has none."""
    data = copy.deepcopy(EXAMPLE)
    data["invoices"][0]["due_date"] = " "
    result = _built(tmp_path, data)
    assert result.problems == []
    assert result.title.due_date is None


def test_a_format_writing_an_edition_in_every_file_needs_the_mapping_s(tmp_path):
    """Corail writes an Edition in every file (asap_edition_required): a mapping without
    output.asap_edition is refused, naming its output block and the Editions it takes."""
    from pesgen.build import format_fit

    mapping, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-corail.yaml",
                              ('  asap_edition: "01"', '  # asap_edition: "01"'))
    [problem] = format_fit(load_mapping(mapping), find_format("cosoluce-corail"))
    line = mapping.read_text(encoding="utf-8").splitlines().index("output:") + 1
    assert (problem.rule, problem.mapping) == ("mapping.asap-edition",
                                               f"{mapping}:{line}: output")
    assert problem.message.startswith("format cosoluce-corail writes an Edition in every "
                                      "file: set output.asap_edition (01; ")


def _zero_total_changed(tmp_path, change) -> object:
    """The example with its zero-total invoice (FA-2026-00106) changed by ``change``."""
    data = copy.deepcopy(EXAMPLE)
    zero = data["invoices"][5]
    assert zero["number"] == "FA-2026-00106" and zero["total"] == "0.00"
    change(zero)
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_zero_total_left_out_is_not_refused_for_its_debtor_or_its_debit(tmp_path):
    """policies.zero_total: leave_out leaves the invoice out once its lines are read and
    add up to 0.00: its debtor, payment and dates, which no file holds, are not checked
    (a family with no name, an IBAN failing its key, a debit date passed), and it makes
    no note of its own (its long street split, its civility looked up)."""
    def broken(zero):
        zero["payer"]["last_name"] = ""
        zero["payer"]["address"]["street"] = "8 place de la République, " * 3
        zero["payment"] = {"method": "direct_debit", "debit_date": "2026-01-05",
                           "mandate": {"rum": "R-1", "signed_on": "2025-09-03",
                                       "iban": "FR7630006000011234567890188",
                                       "bic": "AGRIFRPP848", "sequence": "RCUR"}}

    result = export(MAPPINGS / "villeneuve-sur-loing.yaml", _zero_total_changed(tmp_path, broken),
                    tmp_path / "out", date.fromisoformat(RUN_DATE))
    assert result.titles == 11 and result.total == Decimal("2527.25")
    assert [(lo.invoice, lo.policy, lo.reason) for lo in result.left_out] == [
        ("FA-2026-00106", "zero_total", "total is 0.00")]
    assert [n for n in result.notes if n.invoice == "FA-2026-00106"] == []


@pytest.mark.parametrize("change, rule", [
    # a line's problem: its total is not known to be 0.00
    (lambda zero: zero["lines"][0]["activity"].update(code="BASSON"), "codes.activity"),
    # the export's own total says otherwise
    (lambda zero: zero.update(total="85.00"), "input.total"),
])
def test_a_zero_total_whose_lines_or_total_are_wrong_is_still_refused(tmp_path, change, rule):
    from pesgen.errors import InputDataError

    with pytest.raises(InputDataError) as err:
        export(MAPPINGS / "villeneuve-sur-loing.yaml", _zero_total_changed(tmp_path, change),
               tmp_path / "out", date.fromisoformat(RUN_DATE))
    assert [(p.rule, p.invoice) for p in err.value.problems] == [(rule, "FA-2026-00106")]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_zero_total_under_refuse_is_refused_with_its_debtor_checked(tmp_path):
    """zero_total: refuse: the invoice is built whole, as before: its debtor's problems
    refuse it (before its total would)."""
    from pesgen.errors import InputDataError

    mapping = mapping_copy(tmp_path / "m", MAPPINGS / "villeneuve-sur-loing.yaml",
                           ("zero_total: leave_out", "zero_total: refuse"))[0]
    source = _zero_total_changed(tmp_path, lambda z: z["payer"].update(last_name=""))
    with pytest.raises(InputDataError) as err:
        export(mapping, source, tmp_path / "out", date.fromisoformat(RUN_DATE))
    rules = [p.rule for p in err.value.problems if p.invoice == "FA-2026-00106"]
    assert "input.required" in rules


@pytest.mark.parametrize("record", [
    {"number": "  F1 ", "payer": {"first_name": " ", "address": {"city": ""}}},
    {"number": "", "payer": {"first_name": "Ana", "address": {"city": "Sens"}}},
    {"number": 7, "payer": {"first_name": None, "address": None}},
    {"payer": {"address": ["1 rue", "Sens"]}},
    {"payer": "Ana Dupont"},
    {"number": {"x": 1}, "payer": {"first_name": ["Ana"], "address": {"city": 3}}},
    {"number": 0, "payer": {"first_name": 0, "address": {"city": 0}}},
    {"payer": ["Ana", "Dupont"]},
])
@pytest.mark.parametrize("group, key", [("invoice", "number"), ("payer", "first_name"),
                                        ("address", "city")])
def test_a_path_read_by_evaluate_is_what_its_reader_reads(record, group, key):
    """build._evaluate reads a path of one to three keys itself (Binding.keys), from the
    stripped record: its value, a blank one as None, and a value of another kind on the
    way (a list, a text where an object is read through) said as a WrongShape, must be
    what the binding's own reader gives, stripped (fails when the fast path returns the
    empty text as it is, or None where the reader refuses a shape)."""
    from pesgen.build import _Ctx, _evaluate, _stripped
    from pesgen.mapping import WrongShape

    binding = load_mapping(MAPPINGS / "villeneuve-sur-loing.yaml").bindings[group][key]
    assert binding.keys is not None  # the fast path is the one tested
    stripped = _stripped(record)
    ctx = _Ctx("export.json:$.invoices[0]")
    got = _evaluate(ctx, stripped, {"invoice": stripped}, None, binding)
    try:
        expected = binding.evaluate(record, {"invoice": record})
    except WrongShape:
        assert got is None and ctx.shapes and ctx.shapes[0].binding is binding
        return
    if isinstance(expected, str):
        expected = expected.strip() or None
    assert got == expected and type(got) is type(expected) and not ctx.shapes


def test_a_path_binding_with_a_default_gives_its_default_for_a_missing_value(tmp_path):
    """A path binding with a default ({path: payer.address.complement, default: …}) is
    read by its own reader, which gives the default where the input has no value: not
    by build._evaluate's reading of a plain path (Binding.keys), which has no default to
    give and would leave the value out."""
    from pesgen.build import _Ctx, _evaluate, _stripped

    path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml", (
        "    complement: payer.address.complement",
        "    complement: {path: payer.address.complement, default: SANS COMPLEMENT}"))
    binding = load_mapping(path).bindings["address"]["complement"]
    assert binding.keys is None
    for record in ({"payer": {"address": {"city": "Sens"}}}, {"payer": {}}):
        stripped = _stripped(record)
        got = _evaluate(_Ctx("export.json:$.invoices[0]"), stripped, {"invoice": stripped},
                        None, binding)
        assert got == "SANS COMPLEMENT", record


def test_a_path_of_four_keys_is_read_to_its_last_key(tmp_path):
    """build._evaluate reads a path of one to three keys itself (Binding.keys); a longer
    one (payer.address.more.complement) is its reader's, read to its last key: the
    value, not the object holding it."""
    from pesgen.build import _Ctx, _evaluate, _stripped

    path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml", (
        "    complement: payer.address.complement",
        "    complement: payer.address.more.complement"))
    binding = load_mapping(path).bindings["address"]["complement"]
    assert binding.keys is None
    record = {"payer": {"address": {"more": {"complement": " BAT B "}}}}
    stripped = _stripped(record)
    assert _evaluate(_Ctx("export.json:$.invoices[0]"), stripped, {"invoice": stripped},
                     None, binding) == "BAT B"
