"""Render a format's templates once on sample titles, for ``pesgen check-mapping``.

A template that reads a field the model does not have (``t.debtor.prenom``) compiles:
only rendering finds it. ``check_templates`` renders every file of the mapping's format
(head, a piece per sample title, tail) with the mapping's own collectivity, options and
code tables, on two made-up titles: one with every optional part the model has (a SEPA
mandate, a joint debtor, an address abroad, dates, object, several lines), one with
none of them (an organisation, one line). Nothing is validated, numbered nor written;
an error names the template file and line, as at export.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from .export import Exporter
from .formats import Format
from .mapping import Mapping
from .model import Address, BankAccount, Debtor, Line, Mandate, Title

SAMPLE_ORIGIN = "check-mapping's sample title"


def sample_titles(mapping: Mapping, fmt: Format) -> list[Title]:
    """A title with every optional part, and one with none."""
    exercise = mapping.collectivity.exercise
    day = date(exercise, 11, 23)
    ormc = "pes-ormc" in fmt.rules
    activity, imputation = next(iter(mapping.codes.activities.items()),
                                ("ACT", {"product": "P1", "nature": "7062"}))
    kinds = list(mapping.codes.payer_kinds.values())
    person = next((k for k in kinds if k.get("category") == "01"),
                  {"category": "01", "legal_nature": "01"})
    other = next((k for k in kinds if k.get("category") != "01"),
                 {"category": "50", "legal_nature": "03"})

    def line(number: int, amount: str, label: str | None) -> Line:
        return Line(number=number, product_code=imputation.get("product", "P1"),
                    nature=imputation.get("nature", "7062"), amount=Decimal(amount),
                    activity=activity, label=label, fonction=imputation.get("fonction"),
                    operation=imputation.get("operation"), quantity=Decimal(1),
                    unit_price=Decimal(amount), student="CAMILLE MARTIN",
                    origin=f"{SAMPLE_ORIGIN}, line {number}")

    home = Address(street="12 RUE DES LILAS", postal_code="45200", city="MONTARGIS",
                   complement="BATIMENT B", locality="LE BOURG")
    abroad = Address(street="4 RUE HAUTE", postal_code="99999", city="BRUXELLES",
                     country="BE", resident=False, country_code="131")
    debtor = Debtor(category=person["category"], legal_nature=person["legal_nature"],
                    name="MARTIN", address=abroad, kind="person", ref="FAM-0001",
                    civility="MME", first_name="CAMILLE", complement_name="EPOUSE DURAND",
                    birth_date=date(1984, 3, 12), email="camille.martin@example.org")
    joint = Debtor(category=person["category"], legal_nature=person["legal_nature"],
                   name="DURAND", address=home, kind="person", ref="FAM-0001-2",
                   civility="M", first_name="PAUL", birth_date=date(1982, 7, 1))
    mandate = Mandate(rum="RUM000001", signed_on=date(exercise - 1, 9, 3), sequence="02",
                      debit_date=date(exercise, 12, 5), label="ECOLE DE MUSIQUE",
                      account=BankAccount(iban="FR7630006000011234567890189",
                                          holder="M OU MME DURAND", bic="AGRIFRPP848"),
                      holder_differs=True)
    lines = (line(1, "120.50", "PIANO - CAMILLE MARTIN"), line(2, "30.25", None))
    full = Title(invoice_number="SAMPLE-1", debt_number="1" if ormc else None, debtor=debtor,
                 lines=lines, total=Decimal("150.75"), origin=f"{SAMPLE_ORIGIN} (every part)",
                 invoice_date=day, due_date=date(exercise, 12, 20),
                 service_from=date(exercise, 9, 1), service_to=date(exercise, 12, 31),
                 object="ECOLE DE MUSIQUE 1ER TRIMESTRE", asap_date=day, mandate=mandate,
                 joint_debtor=joint)
    company = Debtor(category=other["category"], legal_nature=other["legal_nature"],
                     name="ASSOCIATION LES AMIS", address=home, kind="organisation")
    bare = Title(invoice_number="SAMPLE-2", debt_number="2" if ormc else None,
                 debtor=company, lines=(line(1, "45.00", None),), total=Decimal("45.00"),
                 origin=f"{SAMPLE_ORIGIN} (no optional part)")
    return [full, bare]


def check_templates(mapping: Mapping, fmt: Format) -> int:
    """Render every file of ``fmt`` on the sample titles; raise ``TemplateError`` (file
    and line) on the first template error. Returns how many files were rendered."""
    day = date(mapping.collectivity.exercise, 11, 23)
    # vouched: nothing is validated here (no XSD, no DGFiP package needed), only rendered
    exporter = Exporter(mapping, fmt, Path("."), day, vouched=True)
    for renderer in exporter.renderers:  # as an export does (vouched skips it)
        renderer.check_literals(exporter.encoding)
    titles = [exporter.numbered(t, i) for i, t in enumerate(sample_titles(mapping, fmt), 1)]
    total = sum((t.total for t in titles), Decimal(0))
    doc = exporter.document(1, len(titles), total, lines=sum(len(t.lines) for t in titles))
    for renderer in exporter.renderers:
        named = replace(doc, file_name=renderer.file_name(doc))
        # encoded as an export writes them: a character the output's encoding cannot
        # write is refused here, not at the first export
        exporter._encode(renderer.head(named), renderer, "head")
        for title in titles:
            exporter._encode(renderer.piece(title, named), renderer,
                             f"piece of invoice {title.invoice_number}", title)
        exporter._encode(renderer.tail(named), renderer, "tail")
    return len(exporter.renderers)
