"""DGFiP business rules, each with an input that breaks it.

Three layers:

* title rules (``pesgen.rules.RULES``): a valid canonical Title, with one field
  replaced so that exactly one rule breaks; every registered rule must have a case;
* bordereau rules (``pesgen.validate``): a valid rendered file, tampered;
* build-time policies (``pesgen.build``): small variants of the example export and
  of the example mapping.
"""

from __future__ import annotations

import copy
import io
import json
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from pesgen import validate as validate_mod
from pesgen.build import Builder
from pesgen.errors import InputDataError, MappingError
from pesgen.export import export
from pesgen.formats import find_format
from pesgen.keys import cle2
from pesgen.mapping import load_mapping
from pesgen.model import Address, BankAccount, Debtor, Line, Mandate, Title
from pesgen.rules import RULES, RuleContext, check_title
from pesgen.sources import read_invoices
from pesgen.validate import load_xsd, validate_pes_file

from .conftest import EXAMPLES, MAPPINGS

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE_JSON = EXAMPLES / "school-export.json"
FMT = find_format("pes-ormc")
CTX = RuleContext(fmt=FMT, issue_date=RUN)
OWN_XSD = FMT.files[0].xsd
NS = "{http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller}"

# ============================================================== title rules

ADDRESS = Address(street="12 RUE DES LILAS", postal_code="45200", city="MONTARGIS",
                  complement="BATIMENT B")
PERSON = Debtor(category="01", legal_nature="01", name="DUPONT-LEFÈVRE", address=ADDRESS,
                kind="person", ref="FAM-0042", civility="MME", first_name="HÉLÈNE",
                birth_date=date(1984, 3, 12))
ACCOUNT = BankAccount(iban="FR7630006000011234567890189", holder="DUPONT-LEFÈVRE HÉLÈNE",
                      bic="AGRIFRPP848")
MANDATE = Mandate(rum="CRCVSL000042", signed_on=date(2025, 9, 3), sequence="03",
                  debit_date=date(2026, 12, 5), account=ACCOUNT,
                  label="CONSERVATOIRE VSL FACTURE FA-2026-00101")
LINES = (
    Line(number=1, product_code="FMC1", nature="7062", amount=Decimal("62.25"),
         activity="FM-C1", label="FORMATION MUSICALE CYCLE 1", fonction="311"),
    Line(number=2, product_code="INST", nature="7062", amount=Decimal("142.50"),
         activity="INST-PIANO", label="PIANO", fonction="311"),
)
TITLE = Title(invoice_number="FA-2026-00101", debt_number="202600101", debtor=PERSON,
              lines=LINES, total=Decimal("204.75"), origin="x.json:$.invoices[0]",
              object="CONSERVATOIRE FACTURE FA-2026-00101", asap_date=RUN, mandate=MANDATE)
ORG = replace(PERSON, category="50", legal_nature="03", kind="organization", civility=None,
              first_name=None, birth_date=None, name="CSE VERRERIES & CRISTALLERIES",
              national_id="77522165800013", national_id_kind="01")


def _debtor(**kw):
    return lambda t: replace(t, debtor=replace(t.debtor, **kw))


def _address(**kw):
    return lambda t: replace(t, debtor=replace(t.debtor, address=replace(t.debtor.address, **kw)))


def _mandate(**kw):
    return lambda t: replace(t, mandate=replace(t.mandate, **kw))


def _account(**kw):
    return lambda t: replace(t, mandate=replace(t.mandate, account=replace(t.mandate.account,
                                                                           **kw)))


def _org(**kw):
    return lambda t: replace(t, debtor=replace(ORG, address=t.debtor.address, **kw))


def _first_line(amount: str, keep_total: bool = False):
    """Replace the first line's amount; the total follows unless keep_total."""
    def mutate(t: Title) -> Title:
        new = Decimal(amount)
        lines = (replace(t.lines[0], amount=new),) + t.lines[1:]
        total = t.total if keep_total else t.total - t.lines[0].amount + new
        return replace(t, lines=lines, total=total)
    return mutate


def _label(text: str):
    return lambda t: replace(t, lines=(replace(t.lines[0], label=text),) + t.lines[1:])


# rule id -> [(case name, mutation, fragment expected in a message)]
CASES: dict[str, list[tuple[str, object, str]]] = {
    "pes.civility": [
        ("person-without-civility", _debtor(civility=None), "needs a civility"),
        ("mlle", _debtor(civility="Mlle"), "Mademoiselle"),
        ("mle", _debtor(civility="Mle"), "Mademoiselle"),
        ("melle-dot", _debtor(civility=" melle. "), "Mademoiselle"),
    ],
    "pes.first-name": [
        ("no-first-name", _debtor(first_name=None), "needs a first name"),
        ("empty-first-name", _debtor(first_name=""), "needs a first name"),
    ],
    "pes.cat-nat-grid": [
        ("person-with-natjur-03", _debtor(legal_nature="03"), "CatTiers 01 / NatJur 03"),
        ("unknown-category", _org(category="99"), "CatTiers 99 / NatJur 03"),
        ("commune-with-natjur-06", _org(category="23", legal_nature="06"), "outside the grid"),
    ],
    "pes.text-length": [
        ("name-39", _debtor(name="N" * 39), "debtor.name is 39 characters, the limit is 38"),
        ("first-name-39", _debtor(first_name="P" * 39), "debtor.first_name is 39"),
        ("civility-11", _debtor(civility="M" * 11), "debtor.civility is 11"),
        ("ref-31", _debtor(ref="R" * 31), "debtor.ref is 31"),
        ("street-39", _address(street="S" * 39), "address.street is 39"),
        ("city-39", _address(city="V" * 39), "address.city is 39"),
        ("locality-39", _address(locality="L" * 39), "address.locality is 39 characters, the "
                                                     "limit is 38"),
        ("city-outside-latin1", _address(city="CŒUR"), "address.city has characters outside "
                                                        "ISO-8859-1"),
        ("object-161", lambda t: replace(t, object="O" * 161), "title.object is 161"),
        ("label-161", _label("L" * 161), "line.label is 161 characters, the limit is 160"),
        ("rum-36", _mandate(rum="R" * 36), "mandate.rum is 36"),
        ("rum-ampersand", _mandate(rum="CRC&VSL"), "mandate.rum has characters outside the "
                                                   "SEPA set: '&'"),
        ("rum-underscore", _mandate(rum="CRC_VSL"), "outside the SEPA set: '_'"),
        ("label-accent", _mandate(label="FACTURE ÉTÉ"), "mandate.label has characters outside"),
        ("holder-33", _account(holder="H" * 33), "account.holder is 33 characters, the limit "
                                                 "is 32"),
    ],
    "pes.amounts": [
        ("zero-line", _first_line("0.00"), "line 1 amount 0.00 is not > 0"),
        ("negative-line", _first_line("-1.00"), "line 1 amount -1.00 is not > 0"),
        ("three-decimals", _first_line("62.255"), "more than 2 decimals"),
        ("total-not-sum", _first_line("62.26", keep_total=True), "not the sum of its lines"),
        ("total-too-big", lambda t: replace(
            t, lines=(replace(t.lines[0], amount=Decimal("1000000000000.00")),),
            total=Decimal("1000000000000.00")), "exceeds 14 digits"),
        ("no-line", lambda t: replace(t, lines=(), total=Decimal(0)), "at least one line"),
    ],
    "pes.address": [
        ("cp-4-digits", _address(postal_code="4520"), "postal code '4520' is not 5 digits"),
        ("cp-letters", _address(postal_code="4520A"), "not 5 digits"),
        ("cp-arabic-indic-digits", _address(postal_code="٤٥٢٠٠"), "not 5 digits"),
        ("cp-superscript", _address(postal_code="4520²"), "not 5 digits"),
        ("non-resident-without-codpays", _address(resident=False, postal_code="99999",
                                                  country="BE"), "needs CodPays"),
        ("resident-with-codpays", _address(country_code="131"), "CodPays absent or 100"),
        ("non-resident-in-france", _address(resident=False, postal_code="99999",
                                            country="FRANCE", country_code="100"),
         "CodRes 1 with CodPays 100 (France)"),
    ],
    "pes.num-dette": [
        ("missing", lambda t: replace(t, debt_number=None),
         "NumDette is missing: an ORMC article needs one"),
        ("zero", lambda t: replace(t, debt_number="0"), "NumDette '0'"),
        ("letters", lambda t: replace(t, debt_number="FA2026"), "NumDette 'FA2026'"),
        ("sixteen-digits", lambda t: replace(t, debt_number="1" * 16), "1-15 digits"),
        ("fullwidth-digits", lambda t: replace(t, debt_number="２０２６"), "1-15 digits"),
        ("superscript", lambda t: replace(t, debt_number="2²"), "1-15 digits"),
        ("period-superscript", lambda t: replace(t, period="²"), "Per '²'"),
        ("period-two-digits", lambda t: replace(t, period="12"), "Per '12' is not one digit"),
        ("period-letter", lambda t: replace(t, period="A"), "Per 'A'"),
    ],
    "pes.line-count": [
        # a million lines (one Line object a million times: 8 MB), numbered past IdLigne's
        # 6 digits; 999 999 lines pass (test_line_count_at_its_limit)
        ("a-million-lines", lambda t: replace(
            t, lines=t.lines[:1] * 1_000_000, total=t.lines[0].amount * 1_000_000),
         "1000000 lines: IdLigne, a line's number in its title, has 6 digits (at most "
         "999 999 lines, after netting)"),
    ],
    "pes.asap-date": [
        ("before-issue", lambda t: replace(t, asap_date=date(2026, 11, 22)),
         "DteAsp 2026-11-22 is before DteBordEm 2026-11-23"),
    ],
    "pes.id-tiers": [
        ("bad-siret-key", _org(national_id="77522165800014"), "SIRET '77522165800014'"),
        ("bad-siren-key", _org(national_id="775221659", national_id_kind="02"),
         "SIREN '775221659' is invalid"),
        ("id-without-kind", _org(national_id_kind=None), "go together"),
        ("kind-without-id", _org(national_id=None), "go together"),
        ("finess-length", _org(national_id="75010023", national_id_kind="03"),
         "FINESS '75010023' has 8 characters, not 9"),
        # 1850775123456 has the key 08 (97 - 1850775123456 modulo 97)
        ("nir-key", _debtor(national_id="185077512345607", national_id_kind="04"),
         "NIR is invalid"),
        ("nir-length", _debtor(national_id="18507751234560", national_id_kind="04"),
         "NIR has 14 characters, not 15"),
        ("nir-at-all", _debtor(national_id="185077512345608", national_id_kind="04"),
         "a NIR (NatIdTiers 04) is for the budgets of hospitals only"),
    ],
    "sepa.mandate": [
        ("iban-checksum", _account(iban="FR7630006000011234567890188"), "IBAN is invalid"),
        ("iban-lower-case", _account(iban="fr7630006000011234567890189"), "IBAN is invalid"),
        ("bic-invalid", _account(bic="AGRI"), "BIC is invalid"),
        ("bic-lower-case", _account(bic="agrifrpp848"), "BIC is invalid"),
        ("sequence-05", _mandate(sequence="05"), "SequencePres '05'"),
        ("signed-after-debit", _mandate(signed_on=date(2026, 12, 6)), "after the debit date"),
    ],
}

ALL_CASES = [pytest.param(rule_id, fn, fragment, id=f"{rule_id}:{name}")
             for rule_id, cases in CASES.items() for name, fn, fragment in cases]


@pytest.fixture(scope="module")
def example_titles() -> dict[str, Title]:
    """The example's invoices built by the Builder: real titles, not hand-made."""
    mapping = load_mapping(MAPPING)
    builder = Builder(mapping, FMT)
    titles = {}
    for src in read_invoices(EXAMPLE_JSON, mapping.input):
        built = builder.build(src)
        assert built.problems == []
        if built.title is not None:
            titles[built.title.invoice_number] = built.title
    assert len(titles) == 11
    return titles


def test_valid_titles_raise_nothing(example_titles):
    assert check_title(TITLE, CTX) == []
    assert check_title(_org()(TITLE), CTX) == []
    assert check_title(replace(TITLE, mandate=None, asap_date=None, object=None), CTX) == []
    for number, title in example_titles.items():
        assert check_title(title, CTX) == [], number


@pytest.mark.parametrize("rule_id, mutate, fragment", ALL_CASES)
def test_rule_breaks_on_constructed_title(rule_id, mutate, fragment):
    broken = mutate(TITLE)
    problems = check_title(broken, CTX)
    assert {p.rule for p in problems} == {rule_id}, [str(p) for p in problems]
    assert any(fragment in p.message for p in problems), [p.message for p in problems]
    assert all(p.invoice == "FA-2026-00101" and p.record == TITLE.origin for p in problems)


@pytest.mark.parametrize("rule_id, mutate, fragment", ALL_CASES)
def test_rule_breaks_on_example_title(rule_id, mutate, fragment, example_titles):
    title = example_titles["FA-2026-00101"]  # a person with a SEPA mandate, 3 lines
    assert check_title(title, CTX) == []
    problems = check_title(mutate(title), CTX)
    assert {p.rule for p in problems} == {rule_id}, [str(p) for p in problems]
    assert any(fragment in p.message for p in problems)


def _one_by_one(title: Title, ctx: RuleContext) -> list[str]:
    """What the active rules say of ``title``, each run alone (check_title without its
    ``rules._clear`` fast path)."""
    return [f"{r.id}: {m}" for r in ctx.active for m in r.check(title, ctx)]


@pytest.mark.parametrize("rule_id, mutate, fragment", ALL_CASES)
def test_fast_path_clears_no_broken_title(rule_id, mutate, fragment, example_titles):
    """``rules._clear``, which answers for all of pes-ormc's rules at once, is False for
    every failing case (the rules then say which), and check_title says what the rules
    one by one say."""
    from pesgen.rules import _clear

    for title in (TITLE, example_titles["FA-2026-00101"]):
        broken = mutate(title)
        assert _one_by_one(broken, CTX)
        assert not _clear(broken, CTX)
        assert [f"{p.rule}: {p.message}" for p in check_title(broken, CTX)] == \
            _one_by_one(broken, CTX)


def test_fast_path_is_taken(example_titles):
    """A valid pes-ormc title is cleared at once (the fast path is not left unused by a
    rule added without it: a format's other rules go one by one)."""
    from pesgen.rules import _clear

    assert CTX.cleared
    for title in (TITLE, _org()(TITLE), replace(TITLE, mandate=None, asap_date=None),
                  *example_titles.values()):
        assert _clear(title, CTX), title.invoice_number
    assert not RuleContext(fmt=find_format("pes-titres"), issue_date=RUN).cleared


def test_fast_path_clears_a_title_at_every_limit():
    """A title whose texts are as long as Hélios allows, whose total is the largest
    amount, NumDette of 15 digits, Per one digit and the mandate's last sequence type
    (04) passes every rule: the fast path clears it too (its limits are the rules', not
    one character short)."""
    from pesgen.checks import MAX_AMOUNT
    from pesgen.rules import _clear

    most = {key: limit for key, (limit, _charset) in CTX.text_limits.items()}

    def full(key: str, value: str) -> str:
        return (value * most[key])[:most[key]]

    t = TITLE
    a, m = t.debtor.address, t.mandate
    title = replace(
        t, object=full("title.object", "OBJET "), debt_number="9" * 15, period="9",
        total=MAX_AMOUNT,
        lines=(replace(t.lines[0], amount=MAX_AMOUNT - Decimal("0.01"),
                       label=full("line.label", "COURS ")),
               replace(t.lines[1], amount=Decimal("0.01"))),
        debtor=replace(t.debtor, name=full("debtor.name", "DUPONT "),
                       complement_name=full("debtor.complement_name", "CHEZ "),
                       ref=full("debtor.ref", "F"),
                       address=replace(a, street=full("address.street", "RUE "),
                                       complement=full("address.complement", "BAT "),
                                       locality=full("address.locality", "LIEU "),
                                       city=full("address.city", "VILLE "))),
        mandate=replace(m, rum=full("mandate.rum", "R"), label=full("mandate.label", "LIB "),
                        sequence="04",
                        account=replace(m.account, holder=full("account.holder", "TIT "))))
    assert _one_by_one(title, CTX) == []
    assert _clear(title, CTX)


@pytest.mark.parametrize("mutate, key", [
    (lambda t: replace(t, lines=(replace(t.lines[0], label="COURS Ω"),) + t.lines[1:]),
     "line.label"),
    (_account(holder="DUPONT Ω"), "account.holder")])
def test_a_line_label_or_account_holder_beyond_latin1_is_refused(mutate, key):
    """A line's label or the account holder holding a character ISO-8859-1 cannot write
    (Ω) is refused by pes.text-length, as a debtor's name is: the rules' fast path
    (``rules._clear``) does not clear it."""
    from pesgen.rules import _clear

    broken = mutate(TITLE)
    assert not _clear(broken, CTX)
    assert [p.message for p in check_title(broken, CTX)] == [
        f"{key} has characters outside ISO-8859-1"]


def test_a_pes_ormc_format_of_another_charset_goes_through_the_rules_one_by_one():
    """The fast path knows pes-ormc's charsets only (latin-1, SEPA's for the mandate): a
    format with pes-ormc's rules whose text field has another charset is checked by the
    rules one by one (not cleared, nor stopped by the fast path), the same problems
    said."""
    fields = dict(FMT.fields)
    fields["debtor.name"] = replace(fields["debtor.name"], charset="ascii")
    ctx = RuleContext(fmt=replace(FMT, fields=fields), issue_date=RUN)
    assert {r.id for r in ctx.active} == {r.id for r in CTX.active}
    assert not ctx.cleared
    assert check_title(TITLE, ctx) == []
    long_name = _debtor(name="X" * (CTX.text_limits["debtor.name"][0] + 1))(TITLE)
    assert [p.rule for p in check_title(long_name, ctx)] == ["pes.text-length"]


def test_a_title_the_fast_path_clears_wrongly_is_caught_by_the_cross_check(monkeypatch):
    """``rules._clear`` restates the rules' tests for speed: a rule tightened without it
    would let a title through. With PESGEN_RULES_CROSS_CHECK=1 (conftest sets it for the
    whole suite, CLI subprocesses included), check_title runs the rules one by one behind
    every title the fast path clears, and a disagreement is raised as a bug."""
    import os

    from pesgen import rules
    from pesgen.rules import CROSS_CHECK_ENV

    assert os.environ.get(CROSS_CHECK_ENV) == "1"
    broken = replace(TITLE, debtor=replace(TITLE.debtor, first_name=None))
    assert _one_by_one(broken, CTX)
    monkeypatch.setattr(rules, "_clear", lambda title, ctx: True)
    ctx = RuleContext(fmt=find_format("pes-ormc"), issue_date=RUN)
    with pytest.raises(RuntimeError, match=r"rules\._clear cleared invoice .*pes\.first-name"):
        check_title(broken, ctx)
    monkeypatch.setenv(CROSS_CHECK_ENV, "0")
    ctx = RuleContext(fmt=find_format("pes-ormc"), issue_date=RUN)
    assert check_title(broken, ctx) == []  # the fast path alone: what the check guards


def test_line_count_at_its_limit():
    """999 999 lines, IdLigne's last number, pass pes.line-count (the million of CASES do
    not); the rule is the PES formats' (a finance package's format has its own limits)."""
    line = TITLE.lines[0]
    at_limit = replace(TITLE, lines=(line,) * 999_999, total=line.amount * 999_999)
    assert [p.rule for p in check_title(at_limit, CTX)] == []
    over = replace(at_limit, lines=(line,) * 1_000_000, total=line.amount * 1_000_000)
    assert [p.rule for p in check_title(over, CTX)] == ["pes.line-count"]
    titres = RuleContext(fmt=find_format("pes-titres"), issue_date=RUN)
    assert "pes.line-count" in [p.rule for p in check_title(over, titres)]
    corail = RuleContext(fmt=find_format("cosoluce-corail"), issue_date=RUN)
    assert "pes.line-count" not in [r.id for r in corail.active]


@pytest.mark.parametrize("rule_id", [r.id for r in RULES])
def test_every_registered_rule_has_a_failing_case(rule_id):
    assert CASES.get(rule_id), f"rule {rule_id} has no failing-input test in CASES"


def test_cases_name_only_registered_rules():
    assert set(CASES) <= {r.id for r in RULES}


def test_rule_ids_are_unique_and_documented():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    for r in RULES:
        assert r.summary and r.source and r.sets


def test_rules_of_another_set_are_not_applied():
    common_only = RuleContext(fmt=replace(FMT, rules=("pes-common",)), issue_date=RUN)
    broken = replace(TITLE, debt_number="0")  # pes.num-dette belongs to pes-ormc only
    assert [p.rule for p in check_title(broken, CTX)] == ["pes.num-dette"]
    assert check_title(broken, common_only) == []
    nothing = RuleContext(fmt=replace(FMT, rules=()), issue_date=RUN)
    assert check_title(replace(TITLE, debtor=replace(PERSON, civility=None)), nothing) == []


def test_several_rules_reported_together():
    broken = replace(TITLE, debt_number="0",
                     debtor=replace(PERSON, civility=None, first_name=None))
    assert {p.rule for p in check_title(broken, CTX)} == {
        "pes.civility", "pes.first-name", "pes.num-dette"}


def test_cle2_example_of_the_notes():
    # notes §10.3: Exer 2024, Per 9, NumDette 2024000123 -> 249000002024000123 -> 'M'
    assert cle2(2024, "9", "2024000123") == "M"


# ============================================================== the example, rendered


@pytest.fixture(scope="module")
def example_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("example")
    result = export(MAPPING, EXAMPLE_JSON, out, RUN)
    assert len(result.files) == 1
    return result


@pytest.fixture(scope="module")
def example_file(example_export) -> Path:
    return example_export.files[0].path


def _pieces(doc: etree._ElementTree) -> list[etree._Element]:
    return doc.getroot().findall(".//Piece")


def test_netting_of_the_example(example_export, example_file):
    """FA-2026-00101: the -22.75 sibling discount (FM-C1) nets into the FM-C1 line."""
    doc = etree.parse(str(example_file))
    piece = _pieces(doc)[0]
    assert piece.find("BlocPiece/NumDette").get("V") == "202600101"
    lines = piece.findall("LigneDePiece/BlocLignePiece")
    amounts = [ln.find("InfoLignePiece/MtHT").get("V") for ln in lines]
    assert amounts == ["62.25", "142.50", "78.00"]  # 85.00 - 22.75 = 62.25; line 4 gone
    assert [ln.find("InfoLignePiece/IdLigne").get("V") for ln in lines] == ["1", "2", "3"]
    assert [ln.find("InfoLignePiece/CodProdLoc").get("V") for ln in lines] == [
        "FMC1", "INST", "DANS"]
    assert [ln.find("InfoPrelevementSEPA/MtPrel").get("V") for ln in lines] == amounts
    assert sum(Decimal(a) for a in amounts) == Decimal("282.75")
    notes = [n.detail for n in example_export.notes
             if n.invoice == "FA-2026-00101" and n.policy == "negative_lines"]
    # the line named by where it is read (the input's path as the run names it)
    assert len(notes) == 1 and re.fullmatch(
        r"invoice line 4 \(-22\.75, FM-C1; (.*/)?examples/school-export\.json:"
        r"\$\.invoices\[0\]\.lines\[3\]\), not in the file: netted 22\.75 into invoice "
        r"line 1 \(line 1 of the title in the file\)", notes[0]), notes


def test_the_netting_note_names_the_csv_row_of_the_line_it_leaves_out(tmp_path):
    """From a CSV, a line is a row: "invoice line 4" of FA-2026-00101 is the file's fifth
    row (the header first), which the note names, so nobody reads "line 4" as the file's
    fourth row (another invoice's, in a school's CSV)."""
    result = export(MAPPINGS / "villeneuve-sur-loing-csv.yaml", EXAMPLES / "school-export.csv",
                    tmp_path, RUN)
    [note] = _netting(result)
    assert note.startswith("invoice line 4 (-22.75, FM-C1; ") and note.endswith(
        "school-export.csv:5), not in the file: netted 22.75 into invoice line 1 "
        "(line 1 of the title in the file)"), note


def test_one_netting_note_per_negative_line_in_both_numberings(tmp_path):
    """A negative line netted into two lines, one of them to 0, and a second negative
    line: one note each (there was one per line netted into), each line named by the
    input's numbering and by the file's (IdLigne: the lines are renumbered, and 'into
    line 3' named a line the file numbers 2)."""
    inv = _invoice("FA-2026-00101")
    fm, piano = inv["lines"][0], inv["lines"][1]

    def line(model: dict, amount: str) -> dict:
        return {**copy.deepcopy(model), "unit_price": amount, "amount": amount}

    inv["lines"] = [line(fm, "20.00"), line(piano, "142.50"), line(fm, "85.00"),
                    line(fm, "-30.00"), line(fm, "-5.00")]
    inv["total"] = "212.50"
    result = _run(tmp_path, [inv])
    assert [amount for _, amount in _labels(result)] == ["142.50", "70.00"]
    notes = [n.detail for n in result.notes if n.policy == "negative_lines"]
    assert notes == [
        f"invoice line 4 (-30.00, FM-C1; {_line_at(tmp_path, 3)}), not in the file: netted "
        "20.00 into invoice line 1 (netted to 0: not in the file); 10.00 into invoice line 3 "
        "(line 2 of the title in the file)",
        f"invoice line 5 (-5.00, FM-C1; {_line_at(tmp_path, 4)}), not in the file: netted "
        "5.00 into invoice line 3 (line 2 of the title in the file)"]


def test_cle2_in_the_example_file(example_file):
    piece = _pieces(etree.parse(str(example_file)))[0]
    assert piece.find("BlocPiece/Cle2").get("V") == cle2(2026, "1", "202600101") == "U"


# ============================================================== bordereau rules (validate.py)

LAX_XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           targetNamespace="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller">
  <xs:element name="PES_Aller">
    <xs:complexType><xs:sequence>
      <xs:any processContents="skip" namespace="##any" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"""


@pytest.fixture(scope="module")
def lax_xsd(tmp_path_factory) -> Path:
    """A schema accepting any content: isolates the bordereau rules from the XSD."""
    path = tmp_path_factory.mktemp("xsd") / "lax.xsd"
    path.write_text(LAX_XSD)
    return path


def _tampered(src: Path, dest: Path, tamper) -> Path:
    doc = etree.parse(str(src))
    tamper(doc.getroot())
    doc.write(str(dest), xml_declaration=True, encoding="ISO-8859-1")
    return dest


def _set(root, xpath: str, value: str) -> None:
    els = root.xpath(xpath)
    assert els, xpath
    els[0].set("V", value)


def _insert_piece_dteasp(root) -> None:
    nat = root.xpath("(//Piece)[1]/BlocPiece/NatPce")[0]
    el = etree.Element("DteAsp", V="2026-11-01")
    nat.addnext(el)


def _second_line(xpath: str) -> str:
    return f"(//Piece)[1]/LigneDePiece[2]/{xpath}"


TAMPERS = [
    ("nbr-pce", lambda r: _set(r, "//BlocBordereau/NbrPce", "10"), "pes.nbr-pce",
     "NbrPce is 10, the bordereau has 11 pieces"),
    ("mt-bord-ht", lambda r: _set(r, "//BlocBordereau/MtBordHt", "2527.35"), "pes.mt-bord-ht",
     "MtBordHt is 2527.35, the lines add up to 2527.25"),
    ("line-amount-changed", lambda r: (
        _set(r, _second_line("BlocLignePiece/InfoLignePiece/MtHT"), "142.60"),
        _set(r, _second_line("BlocLignePiece/InfoPrelevementSEPA/MtPrel"), "142.60")),
     "pes.mt-bord-ht", "the lines add up to 2527.35"),
    ("duplicate-id-pce", lambda r: _set(r, "(//Piece)[2]/BlocPiece/IdPce", "1"),
     "pes.id-pce-unique", "IdPce 1 appears twice"),
    ("duplicate-num-dette", lambda r: [  # with its Cle2 (else pes.cle2 breaks too)
        _set(r, f"(//Piece)[2]/BlocPiece/{tag}", r.xpath(f"(//Piece)[1]/BlocPiece/{tag}/@V")[0])
        for tag in ("NumDette", "Cle2")],
     "pes.num-dette-unique", "appears twice: two titles would share one payment reference"),
    ("duplicate-id-ligne",
     lambda r: _set(r, _second_line("BlocLignePiece/InfoLignePiece/IdLigne"), "1"),
     "pes.id-ligne-unique", "IdLigne 1 twice in piece 1"),
    ("mt-prel", lambda r: _set(r, "(//Piece)[1]/LigneDePiece[1]/BlocLignePiece/"
                                  "InfoPrelevementSEPA/MtPrel", "62.26"),
     "pes.mt-prel", "MtPrel differs from MtHT on line 1 of piece 1"),
    ("mt-prel-second-line", lambda r: _set(r, _second_line("BlocLignePiece/InfoPrelevementSEPA/"
                                                           "MtPrel"), "142.60"),
     "pes.mt-prel", "MtPrel differs from MtHT on line 2 of piece 1"),
    ("sepa-rum-differs", lambda r: _set(r, _second_line("BlocLignePiece/InfoPrelevementSEPA/"
                                                        "RefUniMdt"), "CRCVSL000043"),
     "pes.sepa-same", "piece 1: SEPA data differ between lines"),
    ("sepa-date-differs", lambda r: _set(r, _second_line("BlocLignePiece/InfoPrelevementSEPA/"
                                                         "DtePrel"), "2026-12-06"),
     "pes.sepa-same", "SEPA data differ"),
    ("two-debtors", lambda r: _set(r, _second_line("Tiers/InfoTiers/Nom"), "MARTIN"),
     "pes.single-debtor", "piece 1 has more than one debtor"),
    ("piece-dteasp-before-dtebordem", _insert_piece_dteasp, "pes.asap-date",
     "piece DteAsp 2026-11-01 before DteBordEm"),
    ("bordereau-dteasp-before-dtebordem",
     lambda r: _set(r, "//BlocBordereau/DteAsp", "2026-11-22"), "pes.asap-date",
     "DteAsp 2026-11-22 is before DteBordEm 2026-11-23"),
]


def test_untampered_file_is_valid(example_file, lax_xsd):
    assert validate_pes_file(example_file, OWN_XSD) == []
    assert validate_pes_file(example_file, lax_xsd) == []


@pytest.mark.parametrize("tamper, rule_id, fragment",
                         [pytest.param(t, r, f, id=n) for n, t, r, f in TAMPERS])
def test_tampered_file(example_file, tmp_path, tamper, rule_id, fragment):
    path = _tampered(example_file, tmp_path / "t.xml", tamper)
    problems = validate_pes_file(path, OWN_XSD)
    assert {p.rule for p in problems} == {rule_id}, [str(p) for p in problems]
    assert any(fragment in p.message for p in problems), [p.message for p in problems]
    assert all(p.record and p.record.startswith("t.xml") for p in problems)


@pytest.mark.parametrize("per, problems", [("2", []), ("1", [(
    "pes.num-dette-unique", "NumDette 202600101 (Per 1) appears twice: two titles would share "
    "one payment reference")])])
def test_a_num_dette_again_with_another_per_is_another_reference(example_file, tmp_path,
                                                                 per, problems):
    """pes.num-dette-unique is on NumDette with Per (docs/rules.md: they make the payment
    reference): the second title taking the first's NumDette (its Cle2 over them) is
    another reference with Per 2, the same one with Per 1."""
    def tamper(root) -> None:
        debt = root.xpath("(//Piece)[1]/BlocPiece/NumDette/@V")[0]
        _set(root, "(//Piece)[2]/BlocPiece/NumDette", debt)
        _set(root, "(//Piece)[2]/BlocPiece/Per", per)
        _set(root, "(//Piece)[2]/BlocPiece/Cle2", cle2(2026, per, debt))
    path = _tampered(example_file, tmp_path / "t.xml", tamper)
    assert [(p.rule, p.message) for p in validate_pes_file(path, OWN_XSD)] == problems


def test_typpce_changed(example_file, tmp_path, lax_xsd):
    path = _tampered(example_file, tmp_path / "t.xml",
                     lambda r: _set(r, "(//Piece)[3]/BlocPiece/TypPce", "01"))
    # pesgen's XSD only allows 15 ...
    problems = validate_pes_file(path, OWN_XSD)
    assert {p.rule for p in problems} <= {"xsd.pesgen", "pes.triplet"}
    assert any(p.rule == "xsd.pesgen" and "TypPce" in (p.record or "") for p in problems)
    # ... and the bordereau rule catches it on its own
    problems = validate_pes_file(path, lax_xsd)
    assert [p.rule for p in problems] == ["pes.triplet"]
    assert "06/01/01 is not allowed (ORMC: 06/15/01)" in problems[0].message


def test_more_pieces_than_allowed(example_file, monkeypatch):
    monkeypatch.setattr(validate_mod, "MAX_PIECES", 10)
    problems = validate_pes_file(example_file, OWN_XSD)
    assert [p.rule for p in problems] == ["pes.max-pieces"]
    assert "11 pieces; at most 10" in problems[0].message


def test_not_well_formed(example_file, tmp_path):
    path = tmp_path / "cut.xml"
    path.write_bytes(example_file.read_bytes()[:-200])
    problems = validate_pes_file(path, OWN_XSD)
    assert problems and {p.rule for p in problems} == {"xml.pesgen"}


@pytest.mark.parametrize("cut", ["inside-an-attribute", "root-never-closed"])
def test_a_document_cut_short_is_not_well_formed(example_file, tmp_path, official_xsd, cut):
    """A file that ends too early (cut inside an attribute value, or without the root's
    end tag) is not well-formed, for pesgen's XSD and for the DGFiP's: lxml's
    schema-validating iterparse with entities off said nothing of an error found at the
    end of the input, and such files were valid."""
    data = example_file.read_bytes()
    broken = data[:2000] if cut == "inside-an-attribute" else data[:data.rindex(b"</")]
    path = tmp_path / "cut.xml"
    path.write_bytes(broken)
    problems = validate_pes_file(path, OWN_XSD, official_xsd)
    # said once: the DGFiP package's pass is not run on a file that is not XML
    assert [p.rule for p in problems] == ["xml.pesgen"]
    line = broken.count(b"\n") + 1  # where the input ends
    assert problems[0].record == f"cut.xml:{line}"
    # the DGFiP package's pass on its own (export runs it on its files) says so too
    official = validate_mod.validate_against(path, validate_mod.official_xsd_path(official_xsd),
                                          "dgfip")
    assert [p.rule for p in official] == ["xml.dgfip"]
    assert official[0].record == f"cut.xml:{line}"
    assert all("not well-formed" in p.message for p in problems + official)
    # the streamed check (the export's second process reads a pipe) says so too
    streamed = validate_mod.stream_check(io.BytesIO(broken), load_xsd(OWN_XSD), "cut.xml")
    assert streamed.schema_error


def test_official_xsd_also_checked(example_file, tmp_path, official_xsd):
    assert validate_pes_file(example_file, OWN_XSD, official_xsd) == []
    path = _tampered(example_file, tmp_path / "t.xml",
                     lambda r: _set(r, "(//Piece)[1]/BlocPiece/NumDette", "ABC"))
    rules = {p.rule for p in validate_pes_file(path, OWN_XSD, official_xsd)}
    assert rules == {"xsd.pesgen", "xsd.dgfip"}


# ============================================================== build-time policies

EXAMPLE = json.loads(EXAMPLE_JSON.read_text(encoding="utf-8"))
EXAMPLE_POLICIES = {
    "negative_lines": "net", "zero_total": "leave_out", "transliterate": "true",
    "case": "upper", "newlines": "space", "street_overflow": "split", "name_overflow": "split",
    "text_overflow": "refuse", "foreign_address": "postal_code_in_city",
    "missing_civility": "default", "default_civility": "MME",
}


def _invoice(number: str) -> dict:
    for inv in EXAMPLE["invoices"]:
        if inv["number"] == number:
            return copy.deepcopy(inv)
    raise KeyError(number)


def _mapping(folder: Path, policies: dict | None = None, subs: tuple = ()) -> Path:
    """The example mapping with its policies block replaced (None drops a policy, so
    pesgen's default applies) and textual substitutions."""
    text = MAPPING.read_text(encoding="utf-8")
    head, rest = text.split("\npolicies:\n", 1)
    _, tail = rest.split("\npayment_reference:", 1)
    merged = {**EXAMPLE_POLICIES, **(policies or {})}
    block = "".join(f"  {k}: {v}\n" for k, v in merged.items() if v is not None)
    text = f"{head}\npolicies:\n{block}\npayment_reference:{tail}"
    for old, new in subs:
        assert text.count(old) == 1, old  # as mapping_copy: never a text no longer there
        text = text.replace(old, new)
    path = folder / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(tmp_path: Path, invoices: list[dict], mapping: Path = MAPPING):
    data = tmp_path / "in.json"
    data.write_text(json.dumps({"invoices": invoices}, ensure_ascii=False), encoding="utf-8")
    return export(mapping, data, tmp_path / "out", RUN)


def _refused(tmp_path: Path, invoices: list[dict], mapping: Path = MAPPING):
    with pytest.raises(InputDataError) as info:
        _run(tmp_path, invoices, mapping)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    return info.value.problems


def _tiers(result) -> etree._Element:
    doc = etree.parse(str(result.files[0].path))
    return doc.getroot().find(".//Piece/LigneDePiece/Tiers")


def _v(el, path):
    found = el.find(path)
    return None if found is None else found.get("V")


def test_mapping_variant_without_change_gives_the_example(tmp_path):
    result = _run(tmp_path, [_invoice("FA-2026-00101")], _mapping(tmp_path))
    assert result.titles == 1 and result.total == Decimal("282.75")


def test_negative_line_refused(tmp_path):
    mapping = _mapping(tmp_path, {"negative_lines": None})
    problems = _refused(tmp_path, [_invoice("FA-2026-00101")], mapping)
    assert [p.rule for p in problems] == ["pes.line-amount"]
    # the policy's default, and the setting that nets the discount (a line of 0 is left
    # out by it too: test_a_line_of_amount_0_is_left_out_when_netting)
    assert problems[0].message == (
        "line 4 amount is -22.75: PES amounts must be > 0 (policy negative_lines: refuse): "
        "to net a discount into the positive lines of the same imputation, and leave a line "
        "of 0 out of the file, set policies.negative_lines: net")
    assert problems[0].invoice == "FA-2026-00101"
    assert problems[0].record.endswith("$.invoices[0].lines[3]")
    assert problems[0].mapping == f"{mapping}:{_line_of(mapping, 'policies:')}: policies"


@pytest.mark.parametrize(("amount", "total", "by"), [
    ("-100.00", "205.50", "15.00"),
    ("-85.50", "220.00", "0.50"),  # by less than one euro
])
def test_negative_line_exceeding_its_imputation(tmp_path, amount, total, by):
    inv = _invoice("FA-2026-00101")
    inv["lines"][3]["amount"] = amount  # FM-C1 has only 85.00
    inv["total"] = total
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["pes.netting"]
    assert f"exceeds the positive lines of the same imputation (FM-C1) by {by}" in \
        problems[0].message


def test_a_line_under_one_euro_is_a_line_whatever_the_negative_lines_policy(tmp_path):
    inv = _invoice("FA-2026-00101")
    inv["lines"][3]["amount"] = inv["lines"][3]["unit_price"] = "0.50"
    inv["total"] = "306.00"
    result = _run(tmp_path, [inv], _mapping(tmp_path, {"negative_lines": None}))
    doc = etree.parse(str(result.files[0].path))
    assert [e.get("V") for e in doc.iterfind(".//MtHT")] == ["85.00", "142.50", "78.00",
                                                             "0.50"]
    # beside a negative line, refused, the line of 0.50 is not
    inv["lines"].insert(3, _line(_invoice("FA-2026-00101"), 3, "-22.75"))
    inv["total"] = "283.25"
    again = tmp_path / "refuse"
    again.mkdir()
    problems = _refused(again, [inv], _mapping(again, {"negative_lines": None}))
    assert [(p.rule, p.message.split(":")[0]) for p in problems] == [
        ("pes.line-amount", "line 4 amount is -22.75")]


def test_negative_line_of_an_imputation_absent_from_the_invoice(tmp_path):
    inv = _invoice("FA-2026-00101")
    inv["lines"][3]["activity"]["code"] = "ORCH"
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["pes.netting"]
    assert "(ORCH) by 22.75" in problems[0].message


def test_a_discount_exceeding_its_imputation_by_less_than_one_euro_is_refused(tmp_path):
    """Any part of a discount its imputation's lines cannot take refuses the invoice,
    50 cents as much as the whole: never dropped, the title would then not be the
    invoice's total."""
    inv = _invoice("FA-2026-00101")
    inv["lines"][3]["amount"] = inv["lines"][3]["unit_price"] = "-85.50"  # FM-C1: 85.00
    inv["total"] = "220.00"
    [problem] = _refused(tmp_path, [inv])
    assert (problem.rule, problem.message) == (
        "pes.netting", "line 4 (-85.50) exceeds the positive lines of the same imputation "
        "(FM-C1) by 0.50")
    # the policy that nets is named, with the record of the line it could not net
    assert problem.record.endswith("$.invoices[0].lines[3]")
    assert problem.mapping.endswith(
        f"villeneuve-sur-loing.yaml:{_line_of(MAPPING, '  negative_lines:')}: "
        "policies.negative_lines")


def test_an_expression_s_value_is_read_stripped(tmp_path):
    """An expression's value is stripped as a path's is: a code joined with an optional
    part the line lacks ('FM-C1' ~ ' ' ~ '') is the code codes.activities knows."""
    mapping = _mapping(tmp_path, subs=((
        "    activity: activity.code\n",
        "    activity: {expr: \"line.activity.code ~ ' ' ~ (line.activity.variant or '')\"}\n"),))
    result = _run(tmp_path, [_invoice("FA-2026-00101")], mapping)
    doc = etree.parse(str(result.files[0].path))
    assert [e.get("V") for e in doc.iterfind(".//MtHT")] == ["62.25", "142.50", "78.00"]


def test_netting_to_zero_leaves_the_line_out(tmp_path):
    inv = _invoice("FA-2026-00101")
    inv["lines"][3]["amount"] = "-85.00"
    inv["total"] = "220.50"
    result = _run(tmp_path, [inv])
    doc = etree.parse(str(result.files[0].path))
    assert [e.get("V") for e in doc.iterfind(".//MtHT")] == ["142.50", "78.00"]
    assert [e.get("V") for e in doc.iterfind(".//IdLigne")] == ["1", "2"]


def _line(inv: dict, index: int, amount: str) -> dict:
    """A copy of line ``index`` of ``inv`` with another amount."""
    line = copy.deepcopy(inv["lines"][index])
    line["amount"] = line["unit_price"] = amount
    return line


def _line_at(tmp_path: Path, index: int) -> str:
    """Where ``_run``'s first invoice's line ``index`` (from 0) is read, as notes name it."""
    return f"{tmp_path / 'in.json'}:$.invoices[0].lines[{index}]"


def _netting(result, number: str = "FA-2026-00101") -> list[str]:
    return [n.detail for n in result.notes if n.invoice == number and
            n.policy == "negative_lines"]


def test_netting_spreads_over_the_lines_of_the_imputation_in_order(tmp_path):
    """A discount larger than the first line of its imputation takes the rest from the
    next one: the first line, netted to 0, is left out, the next keeps what is left."""
    inv = _invoice("FA-2026-00101")
    inv["lines"][3]["amount"] = inv["lines"][3]["unit_price"] = "-100.00"
    inv["lines"].append(_line(inv, 0, "20.00"))  # line 5: FM-C1 again
    inv["total"] = "225.50"
    result = _run(tmp_path, [inv])
    doc = etree.parse(str(result.files[0].path))
    assert [e.get("V") for e in doc.iterfind(".//MtHT")] == ["142.50", "78.00", "5.00"]
    assert [e.get("V") for e in doc.iterfind(".//IdLigne")] == ["1", "2", "3"]
    assert result.total == Decimal("225.50")
    # one note per negative line, in the input's numbering and the file's
    assert _netting(result) == [
        f"invoice line 4 (-100.00, FM-C1; {_line_at(tmp_path, 3)}), not in the file: netted "
        "85.00 into invoice line 1 (netted to 0: not in the file); 15.00 into invoice line 5 "
        "(line 3 of the title in the file)"]


def test_netting_into_a_line_under_one_euro_keeps_what_is_left(tmp_path):
    """A line of 0.50 takes a discount of 0.30 and keeps 0.20 in the file: any amount
    above 0 is a target and stays a line (mutation testing: `> 0` made `> 1` in either
    place refused the invoice or dropped the line, unnoticed)."""
    inv = _invoice("FA-2026-00101")
    inv["lines"][0]["amount"] = inv["lines"][0]["unit_price"] = "0.50"
    inv["lines"][3]["amount"] = inv["lines"][3]["unit_price"] = "-0.30"
    inv["total"] = "220.70"
    result = _run(tmp_path, [inv])
    doc = etree.parse(str(result.files[0].path))
    assert [e.get("V") for e in doc.iterfind(".//MtHT")] == ["0.20", "142.50", "78.00"]
    assert result.total == Decimal("220.70")
    assert _netting(result) == [f"invoice line 4 (-0.30, FM-C1; {_line_at(tmp_path, 3)}), not "
                                "in the file: netted 0.30 into invoice line 1 (line 1 of the "
                                "title in the file)"]


def test_netting_stops_at_the_first_line_that_covers_the_discount(tmp_path):
    inv = _invoice("FA-2026-00101")
    inv["lines"].append(_line(inv, 0, "20.00"))
    inv["total"] = "302.75"
    result = _run(tmp_path, [inv])
    doc = etree.parse(str(result.files[0].path))
    assert [e.get("V") for e in doc.iterfind(".//MtHT")] == ["62.25", "142.50", "78.00",
                                                             "20.00"]
    assert _netting(result) == [f"invoice line 4 (-22.75, FM-C1; {_line_at(tmp_path, 3)}), not "
                                "in the file: netted 22.75 into invoice line 1 (line 1 of the "
                                "title in the file)"]


def test_a_line_of_amount_0_is_left_out_when_netting(tmp_path):
    """Under negative_lines: net a line of amount 0 is left out, said once, and nets
    nothing into its imputation's lines; under refuse it is refused as a negative one."""
    inv = _invoice("FA-2026-00101")
    inv["lines"].append(_line(inv, 0, "0.00"))
    result = _run(tmp_path, [inv])
    doc = etree.parse(str(result.files[0].path))
    assert [e.get("V") for e in doc.iterfind(".//MtHT")] == ["62.25", "142.50", "78.00"]
    assert _netting(result) == [f"invoice line 5 of amount 0 ({_line_at(tmp_path, 4)}): not "
                                "in the file",
                                f"invoice line 4 (-22.75, FM-C1; {_line_at(tmp_path, 3)}), not "
                                "in the file: netted 22.75 into invoice line 1 (line 1 of the "
                                "title in the file)"]
    del inv["lines"][3]
    inv["total"] = "305.50"
    again = tmp_path / "refuse"
    again.mkdir()
    problems = _refused(again, [inv], _mapping(again, {"negative_lines": None}))
    assert [(p.rule, p.message.split(":")[0]) for p in problems] == [
        ("pes.line-amount", "line 4 amount is 0.00")]


NETTED = "FORMATION MUSICALE CYCLE 1 - LUCAS DUPONT-LEFÈVRE"


def _labels(result) -> list[tuple[str, str]]:
    doc = etree.parse(str(result.files[0].path))
    return [(_v(e, "ObjLignePce"), _v(e, "MtHT")) for e in doc.iterfind(".//InfoLignePiece")]


def test_netted_label_keep_is_the_default(tmp_path):
    result = _run(tmp_path, [_invoice("FA-2026-00101")])
    assert _labels(result)[0] == (NETTED, "62.25")
    assert not [n for n in result.notes if n.policy == "netted_label"]


def test_netted_label_append_says_the_discount(tmp_path, official_xsd):
    """negative_lines: net puts FA-2026-00101's 'Réduction fratrie 10 %' (-22.75) into
    its FM-C1 line: with netted_label: append that line's label says so (DT v5.19
    InfoLignePiece/ObjLignePce), the other lines untouched; the run summary says it."""
    mapping = _mapping(tmp_path, {"netted_label": "append"})
    result = _run(tmp_path, [_invoice("FA-2026-00101")], mapping)
    labels = _labels(result)
    assert labels[0] == (f"{NETTED} - NET REMISE 22,75", "62.25")
    assert [amount for _, amount in labels] == ["62.25", "142.50", "78.00"]
    assert " - NET REMISE" not in labels[1][0] + labels[2][0]
    [note] = [n for n in result.notes if n.policy == "netted_label"]
    assert note.invoice == "FA-2026-00101"
    assert note.detail == ("line 1 (FM-C1): label ends 'NET REMISE 22,75' (policy "
                           "netted_label: append)")
    assert validate_pes_file(result.files[0].path, OWN_XSD, official_xsd) == []


def _long_label_invoice() -> dict:
    inv = _invoice("FA-2026-00101")
    inv["lines"][0]["activity"]["label"] = "Formation musicale cycle 1" + " atelier" * 12
    return inv  # its label: 145 characters, 164 with ' - NET REMISE 22,75'


def test_netted_label_too_long_follows_text_overflow_refuse(tmp_path):
    mapping = _mapping(tmp_path, {"netted_label": "append"})
    [p] = _refused(tmp_path, [_long_label_invoice()], mapping)
    assert p.rule == "text.length"
    assert p.message == ("line.label of line 1 with its netted suffix ('NET REMISE 22,75') is "
                         "164 characters, Hélios allows 160 (policies netted_label: "
                         "append, text_overflow: refuse)")
    assert p.mapping.endswith(": policies.netted_label")
    assert p.record.endswith("$.invoices[0].lines[0]")


def test_netted_label_of_exactly_the_limit_is_kept_whole(tmp_path):
    inv = _invoice("FA-2026-00101")
    inv["lines"][0]["activity"]["label"] = "Formation musicale cycle 1" + " atelier" * 11 + " ate"
    result = _run(tmp_path, [inv], _mapping(tmp_path, {"netted_label": "append"}))
    label, amount = _labels(result)[0]
    assert len(label) == 160 and label.endswith(" ATE - LUCAS DUPONT-LEFÈVRE - NET REMISE 22,75")
    assert "text_overflow" not in {n.policy for n in result.notes}


def test_netted_label_too_long_truncates_the_label_not_the_suffix(tmp_path):
    mapping = _mapping(tmp_path, {"netted_label": "append", "text_overflow": "truncate"})
    result = _run(tmp_path, [_long_label_invoice()], mapping)
    label, amount = _labels(result)[0]
    assert amount == "62.25" and len(label) <= 160
    assert label == "FORMATION MUSICALE CYCLE 1" + " ATELIER" * 12 + " - LUCAS - NET REMISE 22,75"
    notes = {n.policy: n.detail for n in result.notes}
    assert notes["text_overflow"].startswith("line.label: 164 characters with the netted suffix")
    assert "netted_label" in notes


def test_netted_label_append_needs_netting(tmp_path):
    path = _mapping(tmp_path, {"netted_label": "append", "negative_lines": None})
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    [p] = info.value.problems
    assert p.rule == "mapping.policy" and "needs negative_lines: net" in p.message
    assert p.mapping.endswith(": policies.netted_label")


def test_zero_total_refused(tmp_path):
    mapping = _mapping(tmp_path, {"zero_total": None})
    problems = _refused(tmp_path, [_invoice("FA-2026-00106")], mapping)
    assert [p.rule for p in problems] == ["pes.zero-total"]
    # the policy's default, and the setting that exports the run without the invoice
    assert problems[0].message == (
        "total is 0.00: a title must be > 0 (policy zero_total: refuse): to leave it out "
        "of the export and report it, set policies.zero_total: leave_out")
    # at the policies, where zero_total: leave_out would go
    assert problems[0].mapping == f"{mapping}:{_line_of(mapping, 'policies:')}: policies"


def test_zero_total_left_out(tmp_path):
    problems = _refused(tmp_path, [_invoice("FA-2026-00106")])
    assert [p.rule for p in problems] == ["run.empty"]
    result = _run(tmp_path, [_invoice("FA-2026-00106"), _invoice("FA-2026-00102")])
    assert result.titles == 1
    assert [(lo.invoice, lo.policy) for lo in result.left_out] == [("FA-2026-00106",
                                                                     "zero_total")]


@pytest.mark.parametrize(("amount", "total"), [("-90.00", "-5.00"), ("-85.50", "-0.50")])
def test_negative_total_refused(tmp_path, amount, total):
    inv = _invoice("FA-2026-00106")
    inv["lines"][1]["amount"] = amount
    inv["total"] = total
    problems = _refused(tmp_path, [inv])
    assert [(p.rule, p.message, p.mapping.rsplit(": ", 1)[-1]) for p in problems] == [
        ("pes.negative-total", f"total is {total}: a credit cannot be a title",
         "bindings.line.amount")]


def test_a_total_under_one_euro_is_a_title(tmp_path):
    """Only a total of 0 or below is refused: a title of 0.50 after a discount is one."""
    inv = _invoice("FA-2026-00106")
    inv["lines"][1]["amount"] = inv["lines"][1]["unit_price"] = "-84.50"
    inv["total"] = "0.50"
    result = _run(tmp_path, [inv])
    assert result.titles == 1 and result.total == Decimal("0.50")


@pytest.mark.parametrize("sent", ["Mlle", "MLLE.", "melle", "Melle"])
def test_mademoiselle_in_civility_codes_refused_at_load(tmp_path, sent):
    path = _mapping(tmp_path, subs=(('"Mlle": MME', f'"Mlle": {sent}'),))
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert [p.rule for p in info.value.problems] == ["pes.civility"]
    assert "codes.civility.Mlle" in info.value.problems[0].mapping
    assert re.search(r"mapping\.yaml:\d+: ", info.value.problems[0].mapping)


def test_mademoiselle_as_default_civility_refused_at_load(tmp_path):
    path = _mapping(tmp_path, {"default_civility": "Mlle"})
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert [p.rule for p in info.value.problems] == ["pes.civility"]
    assert "policies.default_civility" in info.value.problems[0].mapping


def test_mlle_in_the_export_is_sent_as_mme(tmp_path):
    """codes.civility changes the exported value, and the invoice's notes say so."""
    result = _run(tmp_path, [_invoice("FA-2026-00104")])
    assert _v(_tiers(result), "InfoTiers/Civilite") == "MME"
    assert [(n.invoice, n.detail) for n in result.notes if n.policy == "civility"] == [
        ("FA-2026-00104", "'Mlle' sent as 'MME'")]


def test_missing_civility_refused_by_default(tmp_path):
    mapping = _mapping(tmp_path, {"missing_civility": None, "default_civility": None})
    problems = _refused(tmp_path, [_invoice("FA-2026-00107")], mapping)
    assert [p.rule for p in problems] == ["pes.civility"]
    # the policy's default, and the two settings that send a civility instead
    assert problems[0].message == (
        "a person (CatTiers 01) needs a civility (policy missing_civility: refuse): to send "
        "a civility of your choice for a person without one, set "
        "policies.missing_civility: default and policies.default_civility")
    assert "bindings.payer.civility" in problems[0].mapping


def test_missing_civility_defaulted(tmp_path):
    result = _run(tmp_path, [_invoice("FA-2026-00107")])
    assert _v(_tiers(result), "InfoTiers/Civilite") == "MME"
    assert [n.detail for n in result.notes if n.policy == "missing_civility"] == [
        "no civility: 'MME' used"]


def test_unknown_civility_refused(tmp_path):
    inv = _invoice("FA-2026-00102")
    inv["payer"]["title"] = "Dr"
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["codes.civility"]


@pytest.mark.parametrize("first_name", [None, "", "   ", "0", "."])
def test_person_without_first_name(tmp_path, first_name):
    inv = _invoice("FA-2026-00102")
    if first_name is None:
        del inv["payer"]["first_name"]
    else:
        inv["payer"]["first_name"] = first_name
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["pes.first-name"]
    assert "bindings.payer.first_name" in problems[0].mapping


def test_a_first_name_too_long_is_one_problem_not_a_missing_one(tmp_path):
    """A person's first name of 39 characters is refused by its length alone: before,
    pes.first-name said too that the person had no first name. A first name missing is
    still said when it is the debtor's name that has a problem (the name's text.charset
    hid it: the check looked at every problem of the debtor so far)."""
    inv = _invoice("FA-2026-00102")
    inv["payer"]["first_name"] = "B" * 39
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["text.length"]
    assert "bindings.payer.first_name" in problems[0].mapping
    inv = _invoice("FA-2026-00102")
    inv["payer"]["last_name"] = "Dup\x01ont"
    del inv["payer"]["first_name"]
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["text.charset", "pes.first-name"]
    assert "bindings.payer.first_name" in problems[1].mapping


def test_organisation_without_first_name_is_fine(tmp_path):
    result = _run(tmp_path, [_invoice("FA-2026-00103")])
    tiers = _tiers(result)
    assert _v(tiers, "InfoTiers/Prenom") is None and _v(tiers, "InfoTiers/CatTiers") == "50"
    assert _v(tiers, "InfoTiers/IdTiers") == "77522165800013"


@pytest.mark.parametrize("cp", ["4520", "452000", "45 200", "A5200", "٤٥٢٠٠", "４５２００",
                                "4520²"])
def test_french_postal_code_must_have_5_digits(tmp_path, cp):
    inv = _invoice("FA-2026-00102")
    inv["payer"]["address"]["postal_code"] = cp
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["pes.postal-code"]
    assert f"postal code '{cp}' must be 5 digits" in problems[0].message


@pytest.mark.parametrize("debt", ["٢٠٢٦", "2026²", "²", "0", "1234567890123456"])
def test_debt_number_must_be_ascii_digits(tmp_path, debt):
    mapping = _mapping(tmp_path, subs=(('debt_number: {expr: "invoice.number | digits"}',
                                        "debt_number: debt"),))
    inv = _invoice("FA-2026-00102")
    inv["debt"] = debt
    problems = _refused(tmp_path, [inv], mapping)
    assert [p.rule for p in problems] == ["pes.num-dette"]
    assert f"NumDette '{debt}' must be 1 to 15 digits" in problems[0].message


def test_invalid_payer_siret(tmp_path):
    inv = _invoice("FA-2026-00103")
    inv["payer"]["siret"] = "77522165800014"
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["pes.siret"]


def test_payer_siren_is_sent_as_a_siren(tmp_path, official_xsd):
    """A 9-digit national id is a SIREN: IdTiers with NatIdTiers 02 (DT v5.19
    InfoTiers/IdTiers: 9 digits for a SIREN, 14 for a SIRET), not refused as a bad SIRET
    nor sent as one."""
    inv = _invoice("FA-2026-00103")
    inv["payer"]["siret"] = "775 221 658"
    result = _run(tmp_path, [inv])
    info = _tiers(result).find("InfoTiers")
    assert (_v(info, "IdTiers"), _v(info, "NatIdTiers")) == ("775221658", "02")
    assert validate_pes_file(result.files[0].path, OWN_XSD, official_xsd) == []
    inv["payer"]["siret"] = "775.221.658.00013"
    (tmp_path / "siret").mkdir()
    info = _tiers(_run(tmp_path / "siret", [inv])).find("InfoTiers")
    assert (_v(info, "IdTiers"), _v(info, "NatIdTiers")) == ("77522165800013", "01")


@pytest.mark.parametrize(("value", "message"), [
    ("775221659", "payer SIREN '775221659' is invalid: its check key fails: a digit "
                  "mistyped or two swapped? Correct it in the school software (the "
                  "organisation's avis de situation SIRENE, INSEE, gives its SIREN)"),
    ("77522165800014", "payer SIRET '77522165800014' is invalid: its SIREN (775221658) is "
                       "valid but the SIRET's check key fails: a digit of the last 5 (the "
                       "establishment's NIC) mistyped? Correct it in the school software"),
    ("77522165900013", "payer SIRET '77522165900013' is invalid: the check key of its SIREN "
                       "(its first 9 digits, 775221659) fails"),
    ("7752216580", "payer national id '7752216580' is neither a SIRET (14 digits, NatIdTiers "
                   "01) nor a SIREN (9 digits, NatIdTiers 02)"),
    ("FR40775221658", "payer national id 'FR40775221658' is neither a SIRET"),
    # a SIRET a spreadsheet took for a number and wrote in scientific notation
    ("7,75222E+13", "payer national id '7,75222E+13' is neither a SIRET (14 digits, "
                    "NatIdTiers 01) nor a SIREN (9 digits, NatIdTiers 02) (a number in "
                    "scientific notation, as a spreadsheet writes a long number it took for "
                    "one, its last digits lost: the export should write it as text)"),
    ("7.7522166E13", "payer national id '77522166E13' is neither a SIRET (14 digits, "
                     "NatIdTiers 01) nor a SIREN (9 digits, NatIdTiers 02) (a number in "
                     "scientific notation"),
    # a long value (a name or an address bound to the wrong column): described, not quoted
    ("Association des parents d'élèves " * 3, "payer national id a text of 87 characters "
                                              "(letters, \"'\") is neither a SIRET"),
])
def test_payer_national_id_neither_siret_nor_siren_is_refused(tmp_path, value, message):
    inv = _invoice("FA-2026-00103")
    inv["payer"]["siret"] = value
    [p] = _refused(tmp_path, [inv])
    assert p.rule == "pes.siret" and message in p.message
    assert p.mapping.endswith(": bindings.payer.national_id")
    assert ("scientific notation" in p.message) == ("E" in value)


def test_foreign_address_refused_by_default(tmp_path):
    mapping = _mapping(tmp_path, {"foreign_address": None})
    problems = _refused(tmp_path, [_invoice("FA-2026-00105")], mapping)
    assert [p.rule for p in problems] == ["pes.foreign-address"]
    # what to change to export it: the policy's key and value, and what it writes (the
    # message named the policy's default alone: a technician went to the reference)
    assert problems[0].message == (
        "address in 'BE' (policy foreign_address: refuse): to write it as an address "
        "abroad (CP 99999, the postal code before the city, CodRes 1, CodPays from "
        "codes.countries), set policies.foreign_address: postal_code_in_city")
    # at the binding the country was read by, the line to look at
    assert problems[0].mapping == f"{mapping}:{_line_of(mapping, '    country:')}: " \
        "bindings.address.country"


def test_foreign_address_postal_code_in_city(tmp_path):
    result = _run(tmp_path, [_invoice("FA-2026-00105")])
    adr = _tiers(result).find("Adresse")
    assert _v(adr, "CP") == "99999"
    assert _v(adr, "Ville") == "1040 ETTERBEEK"
    assert _v(adr, "CodRes") == "1"
    assert _v(adr, "CodPays") == "131"
    assert _v(adr, "Adr2") == "RUE DE LA LOI 155"


def test_foreign_country_without_insee_code(tmp_path):
    inv = _invoice("FA-2026-00105")
    inv["payer"]["address"]["country"] = "JP"
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["codes.country"]
    # the problem points at the table to complete, not at 'codes:'
    assert problems[0].mapping == f"{MAPPING}:{_line_of(MAPPING, '  countries:')}: " \
        "codes.countries"


@pytest.mark.parametrize("written", ["France", "FRANCE MÉTROPOLITAINE", "fra"])
@pytest.mark.parametrize("policy", [None, "postal_code_in_city"])
def test_france_written_out_is_told_to_go_into_codes_countries(tmp_path, written, policy):
    """A school software writing its country column as 'France' (not FR) had every
    family refused as an address abroad, told to set policies.foreign_address:
    postal_code_in_city, which only made the refusal 'no INSEE country code for
    FRANCE' (3 digits): the fix is codes.countries' FRANCE: "100", France's code, and
    the messages say so, not the foreign-address policy."""
    inv = _invoice("FA-2026-00101")
    inv["payer"]["address"]["country"] = written
    mapping = _mapping(tmp_path, {"foreign_address": policy})
    [problem] = _refused(tmp_path, [inv], mapping)
    upper = written.upper()
    assert problem.rule == ("codes.country" if policy else "pes.foreign-address")
    assert (f"'{upper}' is most likely France written out (pesgen takes only FR as France "
            f'by itself): give it France\'s INSEE code in codes.countries, {upper}: "100", '
            "and its addresses are written as in France (CodRes 0, a 5-digit postal "
            "code)") in problem.message
    assert "set policies.foreign_address" not in problem.message
    # and so given, the address is French
    fixed = _mapping(tmp_path, {"foreign_address": policy},
                     subs=(('    BE: "131"\n', f'    BE: "131"\n    "{upper}": "100"\n'),))
    adr = _tiers(_run(tmp_path, [inv], fixed)).find("Adresse")
    assert (_v(adr, "CodRes"), _v(adr, "CodPays"), _v(adr, "CP")) == ("0", None, "45200")
    # a country merely like it keeps the foreign-address advice
    inv["payer"]["address"]["country"] = "Francfort"
    (tmp_path / "other").mkdir()
    [other] = _refused(tmp_path / "other", [inv], mapping)
    assert "France written out" not in other.message


def test_an_unknown_payer_kind_points_at_codes_payer_kinds(tmp_path):
    inv = _invoice("FA-2026-00103")
    inv["payer"]["kind"] = "family"
    [problem] = _refused(tmp_path, [inv])
    assert (problem.rule, problem.message, problem.mapping) == (
        "codes.payer-kind", "unknown payer kind 'family' (add it to codes.payer_kinds)",
        f"{MAPPING}:{_line_of(MAPPING, '  payer_kinds:')}: codes.payer_kinds")


def test_an_unknown_civility_points_at_codes_civility(tmp_path):
    # (a person's: a debtor that is no person has no civility, pes.civility)
    inv = _invoice("FA-2026-00102")
    inv["payer"]["title"] = "Madame"
    [problem] = _refused(tmp_path, [inv])
    assert (problem.rule, problem.mapping) == (
        "codes.civility", f"{MAPPING}:{_line_of(MAPPING, '  civility:')}: codes.civility")


def test_an_invoice_without_a_payment_method_is_no_direct_debit(tmp_path):
    """A blank payment method is no method of codes.payment_methods to refuse: the
    invoice is simply not a direct debit (no mandate asked for)."""
    inv = _invoice("FA-2026-00103")
    inv["payment"]["method"] = " "
    result = _run(tmp_path, [inv])
    assert result.titles == 1
    assert b"RefUniMdt" not in result.files[0].path.read_bytes()


def test_a_french_postal_code_not_of_5_digits_names_it_and_no_unbound_country(tmp_path):
    """address.country bound (the example's): the refusal says the postal code must be 5
    digits in France, without the note for a mapping that does not bind the country."""
    inv = _invoice("FA-2026-00103")
    inv["payer"]["address"]["postal_code"] = "452"
    [problem] = _refused(tmp_path, [inv])
    assert (problem.rule, problem.message) == (
        "pes.postal-code", "postal code '452' must be 5 digits in France")


@pytest.mark.parametrize(("postal", "hint"), [
    ("1000", " (01000 with its leading zero dropped, as a spreadsheet reading it as a "
     "number does? the export should write postal codes as text)"),
    ("45 200", " (written with a space: the export should write its 5 digits alone)"),
    ("45\u00a0200", " (written with a space: the export should write its 5 digits alone)"),
    ("45 20", ""), ("F-45200", ""), ("452000", ""),
])
def test_a_french_postal_code_refused_says_what_it_likely_went_through(tmp_path, postal,
                                                                        hint):
    """A spreadsheet drops the leading zero of the départements 01 to 09 (01000 as 1000);
    a code is typed with a space: said, never mended (the same mending would change a
    code abroad: Belgium's 1040 is four digits)."""
    inv = _invoice("FA-2026-00103")
    inv["payer"]["address"]["postal_code"] = postal
    [problem] = _refused(tmp_path, [inv])
    assert (problem.rule, problem.message) == (
        "pes.postal-code", f"postal code '{postal}' must be 5 digits in France{hint}")


def test_a_street_of_exactly_38_characters_is_written_whole(tmp_path):
    inv = _invoice("FA-2026-00102")
    inv["payer"]["address"]["street"] = "Résidence des Grands Chênes Bâtiment A"  # 38
    result = _run(tmp_path, [inv])
    assert _v(_tiers(result).find("Adresse"), "Adr2") == "RÉSIDENCE DES GRANDS CHÊNES BÂTIMENT A"
    assert not [n for n in result.notes if n.policy == "street_overflow"]


def test_an_unknown_sepa_sequence_points_at_codes_sepa_sequences(tmp_path):
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"]["sequence"] = "RECURRENT"
    problems = _refused(tmp_path, [inv])
    assert [(p.rule, p.mapping) for p in problems] == [
        ("codes.sepa-sequence", f"{MAPPING}:{_line_of(MAPPING, '  sepa_sequences:')}: "
                                "codes.sepa_sequences")]
    # without the table, the default one answers, and the problem says what it knows
    mapping = _mapping(_fresh(tmp_path / "default"), subs=(
        ('  sepa_sequences: {OOFF: "01", FRST: "02", RCUR: "03", FNAL: "04"}\n', ""),))
    [problem] = _refused(_fresh(tmp_path / "run"), [inv], mapping)
    assert problem.mapping == f"{mapping}:{_line_of(mapping, 'codes:')}: codes.sepa_sequences"
    assert "no codes.sepa_sequences: pesgen knows OOFF, FRST, RCUR, FNAL" in problem.message


def _line_of(path: Path, start: str) -> int:
    [line] = [i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if text.startswith(start)]
    return line


def test_long_street_refused_by_default(tmp_path):
    mapping = _mapping(tmp_path, {"street_overflow": None})
    problems = _refused(tmp_path, [_invoice("FA-2026-00104")], mapping)
    assert [p.rule for p in problems] == ["text.length"]
    assert problems[0].message == (
        "address.street is 54 characters, Hélios allows 38 (policy street_overflow: refuse: "
        "set policies.street_overflow: split to put its start into Adr1 when that is empty)")


def test_long_street_split(tmp_path):
    result = _run(tmp_path, [_invoice("FA-2026-00104")])
    adr = _tiers(result).find("Adresse")
    assert _v(adr, "Adr1") == "RÉSIDENCE LES JARDINS DE LA ROSERAIE"
    assert _v(adr, "Adr2") == "APPARTEMENT 1204"
    assert [n.detail for n in result.notes if n.policy == "street_overflow"] == [
        "street of 54 characters split into Adr1 (36) + Adr2 (16): address.complement + "
        "address.street"]


def test_long_street_split_at_the_line_break_number_in_adr2(tmp_path):
    result = _run(tmp_path, [_invoice("FA-2026-00107")])  # "27 avenue ...\nEscalier C"
    adr = _tiers(result).find("Adresse")
    assert _v(adr, "Adr1") == "ESCALIER C"
    assert _v(adr, "Adr2") == "27 AVENUE DU GÉNÉRAL LECLERC"


@pytest.mark.parametrize(("street", "adr1", "adr2"), [
    # neither a line break nor a comma: at the last word boundary Adr1's 38 allow
    ("Résidence des Grands Chênes Bâtiment A Escalier 4",
     "RÉSIDENCE DES GRANDS CHÊNES BÂTIMENT A", "ESCALIER 4"),
    # of two commas that both split it into halves of 38, the last
    ("Bâtiment A, Résidence Les Jardins, 2 rue Haute", "BÂTIMENT A, RÉSIDENCE LES JARDINS",
     "2 RUE HAUTE"),
    # a comma whose head is over 38: split at a word boundary instead
    ("Résidence Les Jardins De La Grande Roseraie, Apt 4", "RÉSIDENCE LES JARDINS DE LA GRANDE",
     "ROSERAIE, APT 4"),
    # a one-letter half is a half
    ("Résidence Les Grands Chênes Bâtiment, B", "RÉSIDENCE LES GRANDS CHÊNES BÂTIMENT", "B"),
    # the line starting with the street number (one digit) goes to Adr2
    ("7 avenue du Général Leclerc\nRésidence Les Jardins", "RÉSIDENCE LES JARDINS",
     "7 AVENUE DU GÉNÉRAL LECLERC"),
    # both lines start with a number: kept in the export's order
    ("12 rue des Lilas prolongée du Parc\n3 escalier B", "12 RUE DES LILAS PROLONGÉE DU PARC",
     "3 ESCALIER B"),
    # one street cut at a word boundary, its number first: read in order (Adr1 held the
    # end of the street's name, 'TASSIGNY PROLONGÉE', and Adr2 its number and start)
    ("123 avenue du Maréchal de Lattre de Tassigny prolongée",
     "123 AVENUE DU MARÉCHAL DE LATTRE DE", "TASSIGNY PROLONGÉE"),
])
def test_long_street_split_where_it_fits(tmp_path, street, adr1, adr2):
    """street_overflow: split: at the export's line break, else after the last comma
    leaving two halves that fit, else at a word boundary; the half starting with the
    street number is Adr2 (postal norm: number and street), unless both do; a street cut
    at a word boundary keeps its order (its start in Adr1)."""
    inv = _invoice("FA-2026-00102")
    inv["payer"]["address"]["street"] = street
    adr = _tiers(_run(tmp_path, [inv])).find("Adresse")
    assert (_v(adr, "Adr1"), _v(adr, "Adr2")) == (adr1, adr2)


def test_long_street_with_a_complement_refused(tmp_path):
    inv = _invoice("FA-2026-00104")
    inv["payer"]["address"]["complement"] = "Bâtiment B"
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["text.length"]
    assert "Adr1 already holds the complement: shorten it in the school software (the " \
        "usual abbreviations: bd for boulevard" in problems[0].message


def test_long_street_with_a_complement_refused_by_policy_says_the_policy(tmp_path):
    """street_overflow: refuse refuses a long street because of the policy, whether or
    not the address has a complement: the message names the policy, not Adr1."""
    inv = _invoice("FA-2026-00104")
    inv["payer"]["address"]["complement"] = "Bâtiment B"
    mapping = _mapping(tmp_path, {"street_overflow": None})
    [problem] = _refused(tmp_path, [inv], mapping)
    assert problem.rule == "text.length"
    # the policy, and the setting that exports it (the message named the default alone)
    assert problem.message == ("address.street is 54 characters, Hélios allows 38 (policy "
                               "street_overflow: refuse: set policies.street_overflow: split "
                               "to put its start into Adr1 when that is empty)")


@pytest.mark.parametrize("street", [
    "X" * 38 + " 0",  # a word split would leave Adr2 = '0' (not a Base_Texte)
    "X" * 38 + " .",
    "0\n" + "X" * 38,  # the line break split would leave Adr1 = '0'
    "X" * 39,  # no word boundary
])
def test_street_split_never_makes_an_invalid_half(tmp_path, street):
    inv = _invoice("FA-2026-00102")
    inv["payer"]["address"]["street"] = street
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["text.length"]
    # what to do: pesgen truncates no address (walk64: the message said nothing more)
    assert "cannot be split into two lines of 38: shorten it in the school software (the " \
        "usual abbreviations: bd for boulevard" in problems[0].message


def test_long_name_refused_by_default(tmp_path):
    mapping = _mapping(tmp_path, {"name_overflow": None})
    problems = _refused(tmp_path, [_invoice("FA-2026-00108")], mapping)
    assert [p.rule for p in problems] == ["text.length"]
    assert "debtor.name is 40 characters, Hélios allows 38" in problems[0].message
    assert problems[0].mapping == f"{mapping}:{_line_of(mapping, '    name:')}: " \
        "bindings.payer.name"


def test_a_text_grown_by_upper_casing_says_so(tmp_path):
    """A name of 32 characters as exported is 40 once upper-cased ('ß' is 'SS'): the
    refusal's length, which the export's own does not show, says where it comes from
    (reject42 left the message to judge). The same for a first name and a street; a
    text without such a letter keeps its message (test_long_name_refused_by_default)."""
    mapping = _mapping(tmp_path, {"name_overflow": None, "street_overflow": None})
    inv = _invoice("FA-2026-00111")
    inv["payer"]["last_name"] = "Groß" * 8
    inv["payer"]["first_name"] = "ß" * 20
    inv["payer"]["address"]["street"] = "12 Große Straße Weißß Große Straße"  # 34
    problems = _refused(tmp_path, [inv], mapping)
    grown = "once upper-cased (policy case: upper: 'ß' is 'SS')"
    assert sorted((p.rule, p.message.split(" (policy name_overflow")[0]
                   .split(" (policy text_overflow")[0].split(" (policy street_overflow")[0])
                  for p in problems) == [
        ("text.length", f"address.street is 40 characters {grown}, Hélios allows 38"),
        ("text.length", f"debtor.first_name is 40 characters {grown}, Hélios allows 38"),
        ("text.length", f"debtor.name is 40 characters {grown}, Hélios allows 38")]


def test_long_name_split_into_nom_and_complnom(tmp_path):
    result = _run(tmp_path, [_invoice("FA-2026-00108")])
    info = _tiers(result).find("InfoTiers")
    assert _v(info, "Nom") == "ASSOCIATION FAMILLES RURALES DU"
    assert _v(info, "ComplNom") == "GÂTINAIS"


@pytest.mark.parametrize("name", ["N" * 38 + " 0", "N" * 38 + " .", "N" * 38 + " 000",
                                  "N" * 39])
def test_name_split_never_makes_an_invalid_half(tmp_path, name):
    inv = _invoice("FA-2026-00103")
    inv["payer"]["name"] = name
    problems = _refused(tmp_path, [inv])
    assert [(p.rule, p.message) for p in problems] == [
        ("text.length", f"debtor.name is {len(name)} characters, Hélios allows 38 (no split "
         "into two lines fits)")]


LABEL_EXPR = ("label: {expr: \"line.activity.label ~ ' - ' ~ line.student.first_name ~ ' ' ~ "
              "line.student.last_name\"}")


@pytest.mark.parametrize("length", [39, 160])
def test_line_label_up_to_160_characters(tmp_path, length):
    mapping = _mapping(tmp_path, subs=((LABEL_EXPR, "label: activity.label"),))
    inv = _invoice("FA-2026-00102")
    inv["lines"][0]["activity"]["label"] = "L" * length
    result = _run(tmp_path, [inv], mapping)
    doc = etree.parse(str(result.files[0].path))
    assert doc.getroot().find(".//ObjLignePce").get("V") == "L" * length


def test_line_label_of_161_characters_refused(tmp_path):
    mapping = _mapping(tmp_path, subs=((LABEL_EXPR, "label: activity.label"),))
    inv = _invoice("FA-2026-00102")
    inv["lines"][0]["activity"]["label"] = "L" * 161
    problems = _refused(tmp_path, [inv], mapping)
    assert [p.rule for p in problems] == ["text.length"]
    # the policy, and the setting that exports it (the message named the default alone)
    assert problems[0].message == (
        "line.label is 161 characters, Hélios allows 160 (policy text_overflow: refuse: "
        "set policies.text_overflow: truncate to shorten it at a word boundary, reported)")
    assert problems[0].record.endswith("$.invoices[0].lines[0]")


@pytest.mark.parametrize("rum, bad", [("CRCVSL&0042", "&"), ("CRCVSL_0042", "_"),
                                      ("CRCVSL#42", "#")])
def test_sepa_rum_charset(tmp_path, rum, bad):
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"]["rum"] = rum
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["text.charset"]
    assert problems[0].message.startswith("mandate.rum character ")
    assert repr(bad) in problems[0].message


def test_sepa_rum_accents_transliterated(tmp_path):
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"]["rum"] = "crcvsl-é42"
    result = _run(tmp_path, [inv])
    doc = etree.parse(str(result.files[0].path))
    assert {e.get("V") for e in doc.iterfind(".//RefUniMdt")} == {"CRCVSL-E42"}


def test_sepa_rum_accents_refused_without_transliteration(tmp_path):
    mapping = _mapping(tmp_path, {"transliterate": "false"})
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"]["rum"] = "CRCVSLÉ42"
    inv["lines"] = inv["lines"][:1]  # the other labels hold '–', outside Latin-1
    inv["total"] = "85.00"
    problems = _refused(tmp_path, [inv], mapping)
    assert [p.rule for p in problems] == ["text.charset"]
    assert "mandate.rum" in problems[0].message and "'É'" in problems[0].message
    assert problems[0].invoice == "FA-2026-00101"


def test_foreign_address_without_postal_code(tmp_path):
    """Abroad, the postal code goes into Ville "le cas échéant" (DT, Adresse/CP): an
    address without one is CP 99999 and the city alone, not a missing postal code."""
    inv = _invoice("FA-2026-00105")
    inv["payer"]["address"].update(postal_code="", city="Galway", country="IE")
    mapping = _mapping(tmp_path, subs=(('    BE: "131"', '    BE: "131"\n    IE: "136"'),))
    result = _run(tmp_path, [inv], mapping)
    adr = _tiers(result).find("Adresse")
    assert [_v(adr, x) for x in ("CP", "Ville", "CodRes", "CodPays")] == \
        ["99999", "GALWAY", "1", "136"]
    assert any(n.policy == "foreign_address" and "without postal code" in n.detail
               for n in result.notes)
    # in France it is still required
    inv = _invoice("FA-2026-00101")
    inv["payer"]["address"]["postal_code"] = ""
    problems = _refused(_fresh(tmp_path / "fr"), [inv])
    assert [(p.rule, p.message) for p in problems] == \
        [("input.required", "address.postal_code is missing")]


@pytest.mark.parametrize("country, postal_code, city", [
    ("GP", "97100", "Basse-Terre"), ("RE", "97400", "Saint-Denis"), ("YT", "97600", "Mamoudzou"),
])
def test_an_overseas_departement_is_in_france(tmp_path, country, postal_code, city):
    """An export that codes an overseas département with its own ISO code (GP, MQ, GF,
    RE, YT) gives a resident address (CodRes 0, no CodPays), not a foreign one."""
    inv = _invoice("FA-2026-00102")
    inv["payer"]["address"].update(postal_code=postal_code, city=city, country=country)
    adr = _tiers(_run(tmp_path, [inv])).find("Adresse")
    assert [_v(adr, x) for x in ("CP", "Ville", "CodRes", "CodPays")] == \
        [postal_code, city.upper(), "0", None]
    inv["payer"]["address"]["postal_code"] = "971"
    assert [p.rule for p in _refused(_fresh(tmp_path / "short"), [inv])] == ["pes.postal-code"]


@pytest.mark.parametrize("key, exported", [
    ("FRANCE", "France"), ("France", "FRANCE"), ("france", " france "), ("FX", "fx"),
])
def test_a_country_whose_insee_code_is_100_is_france(tmp_path, key, exported):
    """A country codes.countries gives 100, the INSEE code of France, whatever the key's
    case, is France: CodRes 0, no CodPays, the postal code checked as a French one;
    CodRes 1 with CodPays 100 is refused (pesgen's own check: the DT rejects CodRes 1
    without CodPays and CodRes 0 with a CodPays other than 100)."""
    inv = _invoice("FA-2026-00102")
    inv["payer"]["address"]["country"] = exported
    mapping = _mapping(tmp_path, subs=(('    BE: "131"', f'    BE: "131"\n    {key}: "100"'),))
    result = _run(tmp_path, [inv], mapping)
    adr = _tiers(result).find("Adresse")
    postal_code = inv["payer"]["address"]["postal_code"]
    assert [_v(adr, x) for x in ("CP", "CodRes", "CodPays")] == [postal_code, "0", None]
    assert _v(adr, "Ville") == inv["payer"]["address"]["city"].upper()
    assert not any(n.policy == "foreign_address" for n in result.notes)
    inv["payer"]["address"]["postal_code"] = "4520"
    problems = _refused(_fresh(tmp_path / "short"), [inv], mapping)
    assert [p.rule for p in problems] == ["pes.postal-code"]


def test_country_keys_that_differ_only_in_case_must_agree(tmp_path):
    mapping = _mapping(tmp_path, subs=(('    BE: "131"', '    BE: "131"\n    be: "132"'),))
    with pytest.raises(MappingError) as info:
        load_mapping(mapping)
    assert [(p.rule, p.mapping.rsplit(" ", 1)[1]) for p in info.value.problems] == [
        ("codes.country", "codes.countries.be")]
    assert "'be' and 'BE'" in info.value.problems[0].message


def _fresh(folder: Path) -> Path:
    folder.mkdir()
    return folder


@pytest.mark.parametrize("change, rule", [
    ({"title": "Madame"}, "codes.civility"),
    ({"address": {"postal_code": "4520"}}, "pes.postal-code"),
    ({"kind": "family"}, "codes.payer-kind"),
    ({"last_name": ""}, "input.required"),
])
@pytest.mark.parametrize("holder", ["", None])
def test_a_refused_debtor_is_not_also_a_missing_account_holder(tmp_path, change, rule, holder):
    """A direct debit whose account holder is empty takes the debtor's name (TitCpte):
    when the debtor itself is refused, that one problem is reported, not also a false
    'account.holder is missing'."""
    inv = _invoice("FA-2026-00101")
    if holder is None:
        del inv["payment"]["mandate"]["holder"]
    else:
        inv["payment"]["mandate"]["holder"] = holder
    for key, value in change.items():
        if isinstance(value, dict):
            inv["payer"][key].update(value)
        else:
            inv["payer"][key] = value
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == [rule], [p.message for p in problems]


def test_a_refused_debtor_s_account_holder_is_still_checked(tmp_path):
    """The debtor refused, an account holder the export does give is checked all the
    same: both problems are reported (every problem found, not the first)."""
    inv = _invoice("FA-2026-00101")
    inv["payer"]["title"] = "Madame"
    inv["payment"]["mandate"]["holder"] = "Association des parents d'élèves du conservatoire"
    problems = _refused(tmp_path, [inv])
    assert [(p.rule, p.mapping.rsplit(": ", 1)[-1]) for p in problems] == [
        ("codes.civility", "codes.civility"), ("text.length", "bindings.payment.holder")]
    assert problems[1].message.startswith("account.holder is 49 characters, Hélios allows 32")


@pytest.mark.parametrize(("key", "field", "binding"), [
    ("holder", "account.holder", "holder"), ("rum", "mandate.rum", "rum")])
def test_a_placeholder_mandate_value_refuses_the_direct_debit(tmp_path, key, field, binding):
    """A direct debit's account holder and RUM are required: one Hélios takes for no
    value ('nc') is refused (pes.text), not left out as an optional placeholder would
    be, which would send the invoice without its mandate."""
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"][key] = "nc"
    [problem] = _refused(tmp_path, [inv])
    assert (problem.rule, problem.message, problem.mapping.rsplit(": ", 1)[-1]) == (
        "pes.text", f"{field} 'NC' is not accepted by Hélios (only zeros, 'nc', '.' or "
        "space)", f"bindings.payment.{binding}")


@pytest.mark.parametrize("holder, differs", [
    (None, False),  # the example's: 'Dupont-Lefèvre Hélène'
    ("Hélène DUPONT LEFEVRE", False),  # the same words, another order and spelling
    ("DUPONT-LEFÈVRE", False),  # the name alone
    ("Dupont Marc", True),
    ("M OU MME DUPONT-LEFEVRE HELENE", True),  # a joint account: another holder
])
def test_titcptediff_says_when_the_holder_is_not_the_debtor(tmp_path, holder, differs):
    """TitCpteDiff "doit être renseigné à 1 si titulaire du compte bancaire est différent
    du débiteur" (DT, InfoPrelevementSEPA); absent means 0."""
    inv = _invoice("FA-2026-00101")
    if holder is not None:
        inv["payment"]["mandate"]["holder"] = holder
    result = _run(tmp_path, [inv])
    flags = [_v(block, "TitCpteDiff") for block in etree.parse(str(result.files[0].path))
             .getroot().iterfind(".//InfoPrelevementSEPA")]
    assert flags == ["1" if differs else None] * len(flags) and flags


@pytest.mark.parametrize("last_name, first_name, holder", [
    # ISO-8859-1 keeps Æ, Ø, Ð, Þ in the debtor's name; the SEPA charset writes them
    # AE, O, D, TH in TitCpte: the same person
    ("Sæther", "Øystein", None), ("SÆTHER", "Øystein", "SAETHER OYSTEIN"),
    ("Þórsdóttir", "Ðóra", None),
    # œ is in neither: OE in both, the debtor's name by the transliterate policy
    ("Lecœur", "Hélène", None), ("Lecœur", "Hélène", "LECOEUR HELENE"),
])
def test_titcptediff_reads_a_transliterated_holder_as_the_debtor(tmp_path, last_name,
                                                                first_name, holder):
    """The holder's words are compared with the debtor's letter for letter as each
    charset writes them (æ in a PES name, AE in a SEPA one): a holder TitCpte writes
    SAETHER for a debtor Sæther is the debtor, not another holder (TitCpteDiff 1 said
    so before)."""
    inv = _invoice("FA-2026-00101")
    inv["payer"]["last_name"], inv["payer"]["first_name"] = last_name, first_name
    inv["payment"]["mandate"]["holder"] = holder or f"{last_name} {first_name}"
    result = _run(tmp_path, [inv])
    root = etree.parse(str(result.files[0].path)).getroot()
    assert root.findall(".//InfoPrelevementSEPA") and \
        root.findall(".//InfoPrelevementSEPA/TitCpteDiff") == []


def test_titcptediff_is_valid_for_the_dgfip(tmp_path, official_xsd):
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"]["holder"] = "Dupont Marc"
    result = _run(tmp_path, [inv])
    assert b'<TitCpteDiff V="1"/>' in result.files[0].path.read_bytes()
    assert validate_pes_file(result.files[0].path, OWN_XSD, official_xsd) == []


def test_an_account_abroad_needs_its_bic(tmp_path):
    """"La balise [BIC] est obligatoire pour toute domiciliation à l'étranger, sinon rejet
    du bordereau" (DT, CpteBancaire): refused while mapping, naming the binding."""
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"]["iban"] = "DE89370400440532013000"
    del inv["payment"]["mandate"]["bic"]
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["sepa.bic-abroad"]
    assert "IBAN of DE" in problems[0].message and problems[0].invoice == "FA-2026-00101"
    assert "bindings.payment.bic" in (problems[0].mapping or "")
    # with its BIC it goes; an account in France needs none
    inv["payment"]["mandate"]["bic"] = "COBADEFFXXX"
    assert _run(_fresh(tmp_path / "de"), [inv]).titles == 1
    inv = _invoice("FA-2026-00101")
    del inv["payment"]["mandate"]["bic"]
    assert _run(_fresh(tmp_path / "fr"), [inv]).titles == 1


def test_a_file_with_an_account_abroad_without_bic_is_refused(example_file, tmp_path):
    """The same rule on a file pesgen did not write (pesgen validate)."""
    def tamper(root) -> None:
        for bank in root.xpath("(//Piece)[1]/LigneDePiece/Tiers/CpteBancaire"):
            bank.remove(bank.find("BIC"))
            bank.find("IBAN").set("V", "DE89370400440532013000")
    path = _tampered(example_file, tmp_path / "t.xml", tamper)
    problems = validate_pes_file(path, OWN_XSD)
    assert [p.rule for p in problems] == ["sepa.bic-abroad"]
    assert "IBAN of DE" in problems[0].message
    # the BIC beside the IBAN is read: with it, the account abroad goes
    with_bic = _tampered(example_file, tmp_path / "de.xml", lambda root: [
        (bank.find("IBAN").set("V", "DE89370400440532013000"),
         bank.find("BIC").set("V", "COBADEFFXXX"))
        for bank in root.xpath("(//Piece)[1]/LigneDePiece/Tiers/CpteBancaire")])
    assert validate_pes_file(with_bic, OWN_XSD) == []
    fine = _tampered(example_file, tmp_path / "fr.xml", lambda root: [
        bank.remove(bank.find("BIC")) for bank in
        root.xpath("(//Piece)[1]/LigneDePiece/Tiers/CpteBancaire")])
    assert validate_pes_file(fine, OWN_XSD) == []


def test_direct_debit_with_invalid_iban(tmp_path):
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"]["iban"] = "FR7630006000011234567890188"
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["sepa.iban"]


def test_line_problems_of_a_piece_come_in_document_order(example_file, tmp_path, lax_xsd):
    """A piece's line problems (and Cle2's) are listed line by line, each at its own
    block's line (or element's, with its XPath); two on one line in a fixed order (a
    debtor's civility, first name, then CatTiers/NatJur)."""
    def tamper(root) -> None:
        _set(root, _second_line("BlocLignePiece/InfoLignePiece/IdLigne"), "1")
        _set(root, "(//Piece)[1]/LigneDePiece[1]/BlocLignePiece/InfoPrelevementSEPA/MtPrel",
             "62.26")
        for info in root.xpath("(//Piece)[1]/LigneDePiece/Tiers/InfoTiers"):
            for tag in ("Civilite", "Prenom"):
                info.remove(info.find(tag))
            info.find("NatJur").set("V", "03")
        for el in root.xpath("(//Piece)[1]/LigneDePiece/BlocLignePiece/InfoPrelevementSEPA/"
                             "DateSignMandat"):
            el.set("V", "2026-12-06")
        for el in root.xpath("(//Piece)[1]/LigneDePiece/Tiers/CpteBancaire/IBAN"):
            el.set("V", "FR7630006000011234567890188")
        _set(root, "(//Piece)[1]/BlocPiece/Cle2", "A")
        for el in root.xpath("(//Piece)[1]/LigneDePiece/Tiers/Adresse/CodRes"):
            el.addnext(etree.Element("CodPays", V="131"))

    path = _tampered(example_file, tmp_path / "t.xml", tamper)
    tree = etree.parse(str(path))
    root = tree.getroot()

    def at(xpath: str, with_path: bool = False) -> str:
        el = root.xpath(f"(//Piece)[1]/{xpath}")[0]
        return f"t.xml:{el.sourceline}" + (f" {tree.getpath(el)}" if with_path else "")

    problems = validate_pes_file(path, lax_xsd)
    assert [(p.rule, p.record) for p in problems] == [
        ("pes.cle2", at("BlocPiece/Cle2", True)),
        ("pes.mt-prel", at("LigneDePiece[1]/BlocLignePiece/InfoPrelevementSEPA")),
        ("sepa.mandate", at("LigneDePiece[1]/BlocLignePiece/InfoPrelevementSEPA/"
                            "DateSignMandat", True)),
        ("pes.civility", at("LigneDePiece[1]/Tiers/InfoTiers", True)),
        ("pes.first-name", at("LigneDePiece[1]/Tiers/InfoTiers", True)),
        ("pes.cat-nat-grid", at("LigneDePiece[1]/Tiers/InfoTiers/NatJur", True)),
        ("pes.address", at("LigneDePiece[1]/Tiers/Adresse/CodPays", True)),
        ("sepa.iban", at("LigneDePiece[1]/Tiers/CpteBancaire/IBAN", True)),
        ("pes.id-ligne-unique", at("LigneDePiece[2]/BlocLignePiece/InfoLignePiece"))]


@pytest.mark.parametrize("xpath", [
    "(//Piece)[1]/LigneDePiece[1]/BlocLignePiece/InfoLignePiece/MtHT",
    "(//Piece)[1]/LigneDePiece[1]/BlocLignePiece/InfoPrelevementSEPA/MtPrel",
    "//BlocBordereau/NbrPce", "//BlocBordereau/MtBordHt",
    # what the checks of the title rules read (Cle2's inputs, dates, codes, bank)
    "//BlocBordereau/Exer", "(//Piece)[1]/BlocPiece/NumDette", "(//Piece)[1]/BlocPiece/Per",
    "(//Piece)[1]/LigneDePiece[1]/BlocLignePiece/InfoPrelevementSEPA/DateSignMandat",
    "(//Piece)[1]/LigneDePiece[1]/Tiers/Adresse/CodRes",
    "(//Piece)[1]/LigneDePiece[1]/Tiers/CpteBancaire/IBAN"])
def test_a_value_that_is_not_a_number_is_listed_not_a_crash(example_file, tmp_path, lax_xsd,
                                                           xpath):
    path = _tampered(example_file, tmp_path / "t.xml", lambda r: _set(r, xpath, "zz"))
    problems = validate_pes_file(path, OWN_XSD)
    assert problems and {p.rule for p in problems} <= {"xsd.pesgen", "pes.mt-prel",
                                                       "pes.mt-bord-ht", "pes.nbr-pce",
                                                       "pes.sepa-same", "sepa.iban"}
    assert any(p.rule == "xsd.pesgen" and "zz" in p.message for p in problems)
    validate_pes_file(path, lax_xsd)  # the bordereau checks alone do not stop on it


def test_a_file_with_a_doctype_is_refused_and_its_entities_never_read(example_file, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-CONTENT", encoding="utf-8")
    text = example_file.read_bytes().decode("latin-1")
    head, rest = text.split("\n", 1)
    doctype = f'<!DOCTYPE n:PES_Aller [<!ENTITY x SYSTEM "file://{secret}">]>'
    path = tmp_path / "t.xml"
    path.write_bytes(f"{head}\n{doctype}\n{rest}".encode("latin-1"))
    problems = validate_pes_file(path, OWN_XSD)
    assert [(p.rule, p.record) for p in problems] == [("xml.doctype", "t.xml:1")]
    assert all("SECRET-CONTENT" not in str(p) for p in problems)


def test_a_run_dated_outside_its_exercise_says_so(tmp_path):
    """A mapping left at last year's exercise writes Exer 2026 on bordereaux dated 2027:
    the summary says so (note exercise); a run dated in its exercise has no such note."""
    inv = _invoice("FA-2026-00102")
    data = tmp_path / "in.json"
    data.write_text(json.dumps({"invoices": [inv]}, ensure_ascii=False), encoding="utf-8")
    result = export(MAPPING, data, tmp_path / "out", date(2027, 2, 1))
    [note] = [n for n in result.notes if n.policy == "exercise"]
    assert "dated 2027-02-01 (DteBordEm) for exercise 2026 (Exer)" in note.detail
    assert "collectivity.exercise" in note.detail
    assert not [n for n in _run(_fresh(tmp_path / "in-year"), [inv]).notes
                if n.policy == "exercise"]


@pytest.mark.parametrize("holder", ["", None, "Dupont-Lefèvre de la Roche-Guyon Hélène"])
def test_titcptediff_not_set_for_the_debtor_s_long_name(tmp_path, holder):
    """A debtor whose name is split into Nom + ComplNom (name_overflow: split), with the
    holder left empty (pesgen fills TitCpte from the debtor) or given in full and cut to
    32 characters (text_overflow: truncate): the holder is the debtor, no TitCpteDiff."""
    inv = _invoice("FA-2026-00101")
    inv["payer"]["last_name"] = "Dupont-Lefèvre de la Roche-Guyon"
    if holder is None:
        del inv["payment"]["mandate"]["holder"]
    else:
        inv["payment"]["mandate"]["holder"] = holder
    mapping = _mapping(tmp_path, {"text_overflow": "truncate"})
    result = _run(tmp_path, [inv], mapping)
    root = etree.parse(str(result.files[0].path)).getroot()
    assert root.find(".//InfoPrelevementSEPA") is not None
    assert root.find(".//InfoPrelevementSEPA/TitCpteDiff") is None


def _lengths_reference(t: Title, ctx: RuleContext) -> list[str]:
    """pes.text-length as it was written first: the format's limit looked up per value."""
    from pesgen.rules import _BEYOND_LATIN1, text_values
    from pesgen.text import sepa_bad_chars
    found = []
    for key, value in text_values(t):
        if value is None:
            continue
        limit = ctx.fmt.limit(key)
        if limit.max is not None and len(value) > limit.max:
            found.append(f"{key} is {len(value)} characters, the limit is {limit.max}")
        if limit.charset == "sepa" and sepa_bad_chars(value):
            found.append(f"{key} has characters outside the SEPA set: "
                         f"{sepa_bad_chars(value)!r}")
        elif limit.charset == "latin-1" and not value.isascii() and \
                _BEYOND_LATIN1.search(value):
            found.append(f"{key} has characters outside ISO-8859-1")
    return found


@pytest.mark.parametrize("name", ["pes-ormc", "pes-titres", "bl-emagnus", "jvs-millesime",
                                  "cosoluce-corail"])
def test_text_limits_looked_up_once_find_what_each_lookup_finds(name, example_titles):
    from pesgen.rules import _lengths
    ctx = RuleContext(fmt=find_format(name), issue_date=RUN)
    texts = ["", "A", "x" * 33, "é" * 200, "Ł€ōŵ", "a\u2013b", "RUM/2026?+", "~^{}" * 30,
             "CAFÉ & CO", "y" * 1000]
    titles = [TITLE, _org()(TITLE), replace(TITLE, mandate=None, object=None),
              *example_titles.values()]
    for i, text in enumerate(texts):
        other = texts[-1 - i]
        titles.append(_mandate(rum=text, label=other)(_address(street=text, city=other)(
            _debtor(name=text, first_name=other, ref=text)(replace(TITLE, object=other)))))
        titles.append(_account(holder=text)(_label(other)(TITLE)))
    checked = 0
    for title in titles:
        got, want = list(_lengths(title, ctx)), _lengths_reference(title, ctx)
        assert got == want
        checked += len(want)
    assert checked  # the listed texts break some limits on every format


def test_mandate_signed_after_the_debit_date_names_its_binding(tmp_path):
    """A mandate signed after its debit date is refused at export naming the record, the
    mapping's bindings.payment.mandate_signed_on (file:line: key) and rule sepa.mandate:
    the title rule alone, which knows no mapping, named none."""
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"]["signed_on"] = "2026-12-06"
    problems = _refused(tmp_path, [inv])
    assert [(p.rule, p.message) for p in problems] == [
        ("sepa.mandate", "mandate signed 2026-12-06, after the debit date 2026-12-05")]
    assert problems[0].record.endswith("$.invoices[0]")
    line = MAPPING.read_text(encoding="utf-8").splitlines().index(
        "    mandate_signed_on: payment.mandate.signed_on") + 1
    assert problems[0].mapping == f"{MAPPING}:{line}: bindings.payment.mandate_signed_on"


def test_title_total_over_base_montant_names_the_amount_binding(tmp_path):
    """A title whose total passes Base_Montant (999 999 999 999.99; the input reads
    amounts of up to 15 integer digits) is refused naming the record, the mapping's
    bindings.line.amount and rule pes.amounts, as a negative total is."""
    inv = _invoice("FA-2026-00102")
    del inv["total"]
    inv["lines"] = inv["lines"][:1]
    inv["lines"][0]["amount"] = inv["lines"][0]["unit_price"] = "1000000000000.00"
    problems = _refused(tmp_path, [inv])
    assert [p.rule for p in problems] == ["pes.amounts"]
    assert problems[0].message.startswith("total 1000000000000.00 exceeds 999999999999.99")
    line = MAPPING.read_text(encoding="utf-8").splitlines().index("    amount: amount") + 1
    assert problems[0].mapping == f"{MAPPING}:{line}: bindings.line.amount"


@pytest.mark.parametrize("overflow", ["truncate", "refuse"])
def test_text_overflow_never_cuts_the_debtors_reference(tmp_path, overflow):
    """policies.text_overflow: truncate never cuts RefTiers either: Hélios groups a
    debtor's debts by it, and two long references sharing their first 30 characters
    would become one family's. Refused naming the record, bindings.payer.ref and rule
    text.length; under refuse too, as the one problem of an identifier never truncated,
    not that one and the refuse policy's too, said of the same value."""
    mapping = _mapping(tmp_path, {"text_overflow": overflow})
    inv = _invoice("FA-2026-00102")
    inv["payer"]["ref"] = "FAMILLE-" + "0" * 23
    problems = _refused(tmp_path, [inv], mapping)
    assert [(p.rule, p.message) for p in problems] == [
        ("text.length", "debtor.ref is 31 characters, Hélios allows 30: an identifier "
         "is never truncated (policy text_overflow: truncate shortens labels and names only)")]
    line = mapping.read_text(encoding="utf-8").splitlines().index("    ref: payer.ref") + 1
    assert problems[0].mapping == f"{mapping}:{line}: bindings.payer.ref"
    assert problems[0].record.endswith("$.invoices[0]")


def test_text_overflow_truncate_never_cuts_the_rum(tmp_path):
    """policies.text_overflow: truncate shortens labels and names, never the RUM: the
    mandate's unique reference cut to 35 characters is another mandate's reference (two
    long RUMs sharing their first 35 characters become one), which the bank matches the
    debit against. Refused naming the record, bindings.payment.rum and rule text.length;
    a label of the same invoice is still truncated."""
    mapping = _mapping(tmp_path, {"text_overflow": "truncate"})
    inv = _invoice("FA-2026-00101")
    inv["payment"]["mandate"]["rum"] = "R" * 36
    problems = _refused(tmp_path, [inv], mapping)
    assert [(p.rule, p.message) for p in problems] == [
        ("text.length", "mandate.rum is 36 characters, Hélios allows 35: an identifier "
         "is never truncated (policy text_overflow: truncate shortens labels and names only)")]
    line = mapping.read_text(encoding="utf-8").splitlines().index(
        "    rum: payment.mandate.rum") + 1
    assert problems[0].mapping == f"{mapping}:{line}: bindings.payment.rum"
    inv["payment"]["mandate"]["rum"] = "R" * 35
    inv["lines"][0]["activity"]["label"] = "L " * 90
    result = _run(tmp_path, [inv], mapping)
    rum = etree.parse(str(result.files[0].path)).getroot().find(".//RefUniMdt").get("V")
    assert rum == "R" * 35
    assert any(n.policy == "text_overflow" and n.detail.startswith("line.label")
               for n in result.notes)


def test_an_asap_date_before_the_bordereau_names_its_binding(tmp_path):
    """bindings.invoice.asap_date giving a DteAsp before DteBordEm is refused naming the
    record, the binding's mapping line and key, and rule pes.asap-date: the title rule
    alone, which knows no mapping, named none."""
    mapping = _mapping(tmp_path, subs=(("    due_date: due_date\n",
                                        "    due_date: due_date\n    asap_date: date\n"),))
    problems = _refused(tmp_path, [_invoice("FA-2026-00101")], mapping)
    assert [(p.rule, p.message) for p in problems] == [
        ("pes.asap-date", "DteAsp 2026-11-20 is before DteBordEm 2026-11-23")]
    assert problems[0].record.endswith("$.invoices[0]")
    line = mapping.read_text(encoding="utf-8").splitlines().index("    asap_date: date") + 1
    assert problems[0].mapping == f"{mapping}:{line}: bindings.invoice.asap_date"


CIVILITY_TABLE = ('  civility:\n    "Mme": MME\n    "M.": M\n    "M": M\n'
                  '    "Mlle": MME    # Hélios rejects Mademoiselle\n')


@pytest.mark.parametrize("policy", ["refuse", "truncate"])
@pytest.mark.parametrize("title", ["Mlle", "Melle.", "Mademoiselle", "mademoiselle"])
def test_mademoiselle_without_civility_table_is_refused_naming_its_binding(
        tmp_path, policy, title):
    """Without codes.civility, a civility saying Mademoiselle is refused naming the
    record, bindings.payer.civility and rule pes.civility, whatever text_overflow says:
    before, the title rule alone refused Mlle, naming no mapping key, and text_overflow:
    truncate cut 'Mademoiselle' (12 characters, Civilite 10) to 'MADEMOISEL', which no
    rule knew, and wrote it."""
    mapping = _mapping(tmp_path, {"text_overflow": policy}, subs=((CIVILITY_TABLE, ""),))
    inv = _invoice("FA-2026-00101")
    inv["payer"]["title"] = title
    problems = _refused(tmp_path, [inv], mapping)
    # and what sends it (it said the refusal alone: a technician added the table at
    # the next try only)
    assert [(p.rule, p.message) for p in problems] == [
        ("pes.civility", f"civility '{title}' (Mademoiselle) is rejected by Hélios: send it "
         f"as Madame, with a codes.civility table ('{title}': MME, and an entry for each "
         "civility the export holds)")]
    line = mapping.read_text(encoding="utf-8").splitlines().index(
        "    civility: payer.title") + 1
    assert problems[0].mapping == f"{mapping}:{line}: bindings.payer.civility"


@pytest.mark.parametrize("sent", ["MME", "Mme", None])
def test_mademoiselle_missing_from_the_civility_table_is_told_to_go_as_madame(tmp_path, sent):
    """'Mlle' missing from codes.civility was told "add it to codes.civility: 'Mlle': the
    civility to send": a technician adding Mlle: MLLE had the mapping refused at the
    next try (pes.civility). It is told to send it as Madame, as the table sends Madame
    ('Mme': Mme in a format taking Mme), MME when the table has no Madame."""
    table = CIVILITY_TABLE.replace('    "Mlle": MME    # Hélios rejects Mademoiselle\n', "")
    table = table.replace('    "Mme": MME\n', "" if sent is None else f'    "Mme": {sent}\n')
    mapping = _mapping(tmp_path, subs=((CIVILITY_TABLE, table),))
    inv = _invoice("FA-2026-00101")
    inv["payer"]["title"] = "Mlle"
    [problem] = _refused(tmp_path, [inv], mapping)
    assert (problem.rule, problem.message) == (
        "codes.civility", "civility 'Mlle' is not in codes.civility (add it to "
        f"codes.civility as Madame: 'Mlle': {sent or 'MME'}, since Hélios rejects "
        "Mademoiselle)")


def test_mademoiselle_missing_is_told_to_go_as_the_table_s_madame_written_out(tmp_path):
    """A codes.civility table whose Madame is written out ('Madame': Mme) is the one
    'Mlle' is told to go as: its value (Mme), not MME, which a format taking Mme refuses."""
    table = CIVILITY_TABLE.replace('    "Mlle": MME    # Hélios rejects Mademoiselle\n', "")
    table = table.replace('    "Mme": MME\n', '    "Madame": Mme\n')
    mapping = _mapping(tmp_path, subs=((CIVILITY_TABLE, table),))
    inv = _invoice("FA-2026-00101")
    inv["payer"]["title"] = "Mlle"
    [problem] = _refused(tmp_path, [inv], mapping)
    assert problem.message == ("civility 'Mlle' is not in codes.civility (add it to "
                               "codes.civility as Madame: 'Mlle': Mme, since Hélios rejects "
                               "Mademoiselle)")


def test_text_overflow_truncate_never_cuts_a_civility(tmp_path):
    """A civility sent as exported (no codes.civility) is a code: cut to Civilite's 10
    characters it is another value (the DGFiP's list is closed); refused, as the RUM."""
    mapping = _mapping(tmp_path, {"text_overflow": "truncate"},
                       subs=((CIVILITY_TABLE, ""),))
    inv = _invoice("FA-2026-00101")
    inv["payer"]["title"] = "Monseigneur"
    problems = _refused(tmp_path, [inv], mapping)
    assert [(p.rule, p.message) for p in problems] == [
        ("text.length", "debtor.civility is 11 characters, Hélios allows 10: a code is "
         "never truncated (policy text_overflow: truncate shortens labels and names only)")]
