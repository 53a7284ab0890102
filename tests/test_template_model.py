"""The template model is documented whole (docs/template-model.md, generated from
pesgen/model.py), and a template reading a field a model object lacks is told the
closest one and the fields it has, as doc.options is."""

from __future__ import annotations

import dataclasses
import shutil
from decimal import Decimal

import jinja2
import pytest
from typer.testing import CliRunner

from pesgen import _docgen, model
from pesgen.cli import app

from .conftest import MAPPINGS, ROOT

CORAIL_MAPPING = MAPPINGS / "villeneuve-sur-loing-corail.yaml"
CLASSES = (model.Document, model.Collectivity, model.Emitter, model.Bordereau, model.Title,
           model.Debtor, model.Address, model.Mandate, model.BankAccount, model.Line)


def test_every_public_field_of_the_model_is_in_the_template_model_reference():
    text = (ROOT / "docs" / "template-model.md").read_text(encoding="utf-8")
    for cls in CLASSES:
        section = text.split(f": {cls.__name__}\n", 1)[1].split("\n## ", 1)[0]
        for f in dataclasses.fields(cls):
            row = [x for x in section.splitlines() if x.startswith(f"| `{f.name}` |")]
            assert row, f"{cls.__name__}.{f.name}"
            assert row[0].rstrip(" |").split("|")[-1].strip(), f"{cls.__name__}.{f.name}"
    # the fields the Corail author had to find in the shipped templates
    for where, name in (("doc.collectivity", "name"), ("doc.bordereau", "object"),
                        ("t.mandate", "periodicity"), ("t.mandate", "holder_differs"),
                        ("t.debtor.address", "resident"), ("doc", "emitter"),
                        ("doc", "structure_date"), ("t.debtor, t.joint_debtor",
                                                    "national_id_kind")):
        section = text.split(f"## `{where}`:", 1)[1].split("\n## ", 1)[0]
        assert f"| `{name}` |" in section, (where, name)


def test_a_field_without_its_description_stops_the_generation(monkeypatch):
    """--check (run by the test suite) keeps the page in step with the model."""
    cls, where, described = model.TEMPLATE_MODEL[1]
    monkeypatch.setattr(model, "TEMPLATE_MODEL", (
        (cls, where, {k: v for k, v in described.items() if k != "payfip_client"}),))
    with pytest.raises(SystemExit, match="Collectivity.payfip_client: no description"):
        _docgen.template_model_reference()


@pytest.mark.parametrize("old, new, expected", [
    ("doc.collectivity.name", "doc.collectivity.nom",
     "'pesgen.model.Collectivity object' has no attribute 'nom': did you mean 'name'? "
     "(Collectivity fields: budget_label, cod_bud, cod_col, exercise, id_post, name, "
     "payfip_client, poste_label, sepa_creditor_id, siret)"),
    ("doc.bordereau.object %}", "doc.bordereau.objet %}",
     "'pesgen.model.Bordereau object' has no attribute 'objet': did you mean 'object'?"),
    ("m.account.holder", "m.account.titulaire",
     "'pesgen.model.BankAccount object' has no attribute 'titulaire': did you mean "
     "'holder'? (BankAccount fields: bic, holder, iban)"),
])
def test_a_model_attribute_typo_is_told_the_closest_field(tmp_path, old, new, expected):
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "cosoluce-corail", fmts / "cosoluce-corail")
    template = fmts / "cosoluce-corail" / "corail.xml.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    line = text[:text.index(old)].count("\n") + 1
    template.write_text(text.replace(old, new), encoding="utf-8")
    run = CliRunner().invoke(app, ["check-mapping", str(CORAIL_MAPPING), "--formats-dir",
                                   str(fmts)])
    assert run.exit_code == 5, run.output
    assert f"template {fmts}/cosoluce-corail/corail.xml.j2:{line}: {expected}" in run.output


def test_a_model_field_tested_with_is_defined_still_renders():
    """The hint is only words for an error: a template may still ask `is defined`."""
    from pesgen._jinja import template_environment

    env = template_environment(ROOT / "templates" / "pes-ormc")
    address = model.Address(street="1 RUE", postal_code="45200", city="MONTARGIS")
    text = env.from_string("{{ 'y' if a.floor is defined else 'n' }}{{ a.city }}").render(
        a=address)
    assert text == "nMONTARGIS"


def test_a_french_field_name_with_its_accents_is_told_the_model_s_name():
    """'prénom' (or 'prènom') is the model's first_name, as 'prenom' is: no close
    match of its letters would say so."""
    from pesgen._jinja import template_environment

    env = template_environment(ROOT / "templates" / "pes-ormc")
    debtor = model.Debtor(name="DUPONT", category="01", legal_nature="01",
                          address=model.Address(street="1 RUE", postal_code="45200",
                                                city="MONTARGIS"))
    for name in ("prénom", "prènom"):
        with pytest.raises(jinja2.UndefinedError) as info:
            env.from_string("{{ d." + name + " }}").render(d=debtor)
        assert str(info.value).startswith(
            f"'pesgen.model.Debtor object' has no attribute '{name}': did you mean "
            "'first_name'? (Debtor fields: address, birth_date, "), str(info.value)


@pytest.mark.parametrize("expression, expected", [
    ("(t.lines | by_imputation)[0].natur",
     "'pesgen.filters.Imputation object' has no attribute 'natur': did you mean 'nature'? "
     "(Imputation fields: amount, fonction, lines, nature, operation, product_code)"),
    ("(t.lines | by_imputation)[0].libelle",
     "'pesgen.filters.Imputation object' has no attribute 'libelle' (Imputation fields: "
     "amount, fonction, lines, nature, operation, product_code): label is a field of the "
     "lines it groups: read it on them (.lines[0].label, the first line's)"),
    ("(t.lines[0] | pricing).quantite",
     "'pesgen.filters.Pricing object' has no attribute 'quantite': did you mean "
     "'quantity'? (Pricing fields: quantity, unit_price)"),
])
def test_a_filter_result_s_attribute_typo_is_told_the_closest_field(expression, expected):
    """walk67: an imputation of by_imputation (a pricing's result) read with a name it
    lacks ('imp.label', a label being its lines') said Jinja's words alone, no field
    it has, where a model object's typo names the closest field and all of them; the
    imputations' fields were in no reference either."""
    from pesgen._jinja import template_environment

    env = template_environment(ROOT / "templates" / "pes-ormc")
    address = model.Address(street="1 RUE", postal_code="45200", city="MONTARGIS")
    debtor = model.Debtor(name="DUPONT", category="01", legal_nature="01", address=address)
    line = model.Line(number=1, product_code="P", nature="7062", amount=Decimal("10"),
                      activity="A", origin="x")
    title = model.Title(invoice_number="F1", debt_number=None, debtor=debtor, lines=(line,),
                        total=Decimal("10"), origin="x")
    with pytest.raises(jinja2.UndefinedError) as info:
        env.from_string("{{ " + expression + " }}").render(t=title)
    assert str(info.value) == expected
