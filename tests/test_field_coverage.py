"""Field coverage (pesgen.coverage): a value the mapping binds that no template of its
format writes was lost without a word, and check-format compared with expected files
that froze the loss in (corail persona finding 14: a template writing only the known
layout's single `Rue` drops the start of a street `street_overflow: split` moved into
address.complement). check-mapping and check-format now record what the templates read
on the sample titles: a bound field none reads is a warning naming the mapping
file:line:key and the format, unless format.yaml declares it not carried; a value a
split policy fills that none reads refuses the mapping (exit 3)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pesgen import model
from pesgen._schema import load_schema
from pesgen.cli import app
from pesgen.errors import ExitCode
from pesgen.formats import load_format
from pesgen.resources import data_dir

from .conftest import EXAMPLES, MAPPINGS
from .mapping_support import mapping_copy

runner = CliRunner()
CORAIL = MAPPINGS / "villeneuve-sur-loing-corail.yaml"
# the Corail template's address macro writes the complement before Rue
COMPLEMENT = '{% if a.complement %}<Complement{{ suffix }} V="{{ a.complement }}"/>\n{% endif %}\n'
COMPL_NOM = ('{% if d.complement_name %}<ComplNom{{ suffix }} V="{{ d.complement_name }}"/>\n'
             '{% endif %}\n')
RAISON = "{{ [d.name, d.complement_name, d.first_name] "
EMAIL_DECLARED = '  payer.email: "InfoTiers and Adresse have no e-mail element"\n'


def _run(*args: str | Path):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception, result.output)
    return result


def _line(path: Path, text: str) -> int:
    """The number of the first line of ``path`` holding ``text``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _corail(tmp_path: Path, template: tuple[str, str] | None = None,
            format_yaml: tuple[str, str] | None = None) -> tuple[Path, Path]:
    """The shipped Corail bundle copied into a formats folder, its template or its
    format.yaml edited (old, new): (the formats folder, the bundle)."""
    fmts = tmp_path / "fmts"
    bundle = fmts / "cosoluce-corail"
    shutil.copytree(data_dir("templates") / "cosoluce-corail", bundle)
    for name, edit, encoding in (("corail.xml.j2", template, "iso-8859-1"),
                                 ("format.yaml", format_yaml, "utf-8")):
        if edit is not None:
            path = bundle / name
            text = path.read_text(encoding=encoding)
            assert text.count(edit[0]) == 1, edit[0]
            path.write_text(text.replace(*edit), encoding=encoding)
    return fmts, bundle


@pytest.mark.parametrize("template, policy, filled, carriers", [
    # the known layout's single Rue: the split street's first part is dropped
    ((COMPLEMENT, ""), "street_overflow",
     "the first part of a street longer than 38 characters into address.complement",
     "t.debtor.address.complement"),
    # no ComplNom, and RaisonSociale without the complement of an organisation's name
    ((COMPL_NOM, ""), "name_overflow",
     "the end of a name longer than 38 characters into payer.complement_name",
     "t.debtor.complement_name"),
])
def test_a_template_dropping_what_a_split_policy_fills_refuses_the_mapping(
        tmp_path, template, policy, filled, carriers):
    fmts, bundle = _corail(tmp_path, template)
    if policy == "name_overflow":
        path = bundle / "corail.xml.j2"
        text = path.read_text(encoding="iso-8859-1")
        assert text.count(RAISON) == 1
        path.write_text(text.replace(RAISON, "{{ [d.name, d.first_name] "),
                        encoding="iso-8859-1")
    r = _run("check-mapping", CORAIL, "--formats-dir", fmts)
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    line = _line(CORAIL, f"{policy}: split")
    assert (f"policies.{policy}: split puts {filled}, which no template of format "
            f"cosoluce-corail reads ({carriers}): that part would be lost") in r.stderr
    assert f"[mapping {CORAIL}:{line}: policies.{policy}] (rule mapping.policy-lost)" in r.stderr
    # the joint debtor's (TiersSolidaire, through the same macro) is lost the same way
    joint = "joint_payer.complement," if policy == "street_overflow" else \
        "joint_payer.complement_name,"
    assert joint in r.stderr
    assert "OK" not in r.stdout
    # the mapping binds them: each binding is named as a warning too, by its line
    keys = ("address.complement", "joint_payer.complement") \
        if policy == "street_overflow" else ()
    for key in keys:
        at = _line(CORAIL, f"complement: {key.replace('address.', 'payer.address.')}"
                   if key == "address.complement" else "complement: joint_payer.address")
        assert (f"warning: bindings.{key} is bound, but no template of format "
                "cosoluce-corail reads") in r.stderr
        assert f"[mapping {CORAIL}:{at}: bindings.{key}] (rule mapping.unwritten)" in r.stderr
    # the policy set to refuse: such a value is refused by invoice, nothing is lost
    refusing, _ = mapping_copy(tmp_path, CORAIL, (f"{policy}: split", f"{policy}: refuse"),
                               name="corail-refuse.yaml")
    r = _run("check-mapping", refusing, "--formats-dir", fmts)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "mapping.policy-lost" not in r.stderr
    assert f"{refusing}: OK (format cosoluce-corail" in r.stdout
    assert ("(rule mapping.unwritten)" in r.stderr) == bool(keys)


def test_declaring_the_complement_not_carried_does_not_let_the_split_lose_it(tmp_path):
    """not_carried silences a warning; it does not make a split policy's lost part
    right: the refusal stands, and says what the format declared."""
    fmts, bundle = _corail(tmp_path, (COMPLEMENT, ""), format_yaml=(
        EMAIL_DECLARED, EMAIL_DECLARED + '  address.complement: "a single Rue"\n'))
    r = _run("check-mapping", CORAIL, "--formats-dir", fmts)
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert ("into address.complement, which no template of format cosoluce-corail reads "
            "(t.debtor.address.complement) (address.complement is declared not carried in "
            "its format.yaml: a single Rue): that part would be lost") in r.stderr
    assert "warning: bindings.address.complement" not in r.stderr


def test_check_format_refuses_such_a_bundle_before_regen_writes(tmp_path):
    """check-format renders the sample titles with the fixture's mapping: the same
    refusal, before --regen rewrites expected/ (which would freeze the loss in)."""
    fmts, bundle = _corail(tmp_path, (COMPLEMENT, ""))
    before = {p.name: p.read_bytes() for p in (bundle / "expected").iterdir()}
    fixture = bundle / "fixture" / "mapping.yaml"
    line = _line(fixture, "street_overflow: split")
    for extra in ([], ["--regen"]):
        r = _run("check-format", "cosoluce-corail", "--formats-dir", fmts, *extra)
        assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
        assert ("error: cosoluce-corail: a policy of the fixture's mapping fills a value no "
                "template of the bundle writes") in r.stderr
        assert (f"[mapping {fixture}:{line}: policies.street_overflow] (rule "
                "mapping.policy-lost)") in r.stderr
        # the bindings no template writes are warned of before the refusal, as
        # check-mapping warns of them (one function prints them for both)
        for key, text in (("address.complement", "complement: payer.address"),
                          ("joint_payer.complement", "complement: joint_payer.address")):
            assert (f"warning: bindings.{key} is bound, but no template of format "
                    "cosoluce-corail reads") in r.stderr
            assert (f"[mapping {fixture}:{_line(fixture, text)}: bindings.{key}] (rule "
                    "mapping.unwritten)") in r.stderr
        assert r.stderr.index("warning:") < r.stderr.index("error:")
        assert "byte for byte" not in r.stdout
    assert {p.name: p.read_bytes() for p in (bundle / "expected").iterdir()} == before


def test_a_bound_field_no_template_reads_is_a_warning_unless_declared_not_carried(tmp_path):
    # the shipped bundle declares the e-mail not carried: no warning, the success says it
    r = _run("check-mapping", CORAIL)
    assert r.exit_code == 0, r.stderr
    assert "warning" not in r.stderr
    said = " ".join(r.stdout.split("It read no input.")[1].split())
    assert ("Bound, but not carried by format cosoluce-corail (the reasons: not_carried in "
            "its format.yaml): invoice.due_date, payer.ref, payer.national_id, payer.email, "
            "joint_payer.country, address.country, line.student") in said
    # without the declaration: a warning naming the mapping file:line:key and the format;
    # the mapping still passes (a format may have no place for a field)
    fmts, bundle = _corail(tmp_path, format_yaml=(EMAIL_DECLARED, ""))
    r = _run("check-mapping", CORAIL, "--formats-dir", fmts)
    assert r.exit_code == 0, r.stderr
    line = _line(CORAIL, "email: payer.email")
    # the mapping sets up PayFiP (collectivity.payfip_client), whose links read the e-mail
    # from the run's recorded input: never told to unbind it
    assert (f"warning: bindings.payer.email is bound, but no template of format "
            f"cosoluce-corail reads t.debtor.email: the value is in none of its files. "
            f"pesgen payfip link reads it from the run's recorded input (the mapping sets up "
            f"PayFiP): keep it bound. If the format has no place for it, declare it in "
            f"{bundle / 'format.yaml'} (not_carried: {{payer.email: why}}); else write it in "
            f"a template [mapping {CORAIL}:{line}: bindings.payer.email] (rule "
            "mapping.unwritten)") in r.stderr
    assert r.stderr.count("warning:") == 1
    assert ": OK (format cosoluce-corail" in r.stdout
    # a mapping without PayFiP (no payfip section, no client number): unbinding is offered
    text = CORAIL.read_text(encoding="utf-8")
    assert '  payfip_client: "012345"\n' in text and "\npayfip:" not in text
    plain = tmp_path / "no-payfip.yaml"
    plain.write_text(text.replace('  payfip_client: "012345"\n', ""), encoding="utf-8")
    r = _run("check-mapping", plain, "--formats-dir", fmts)
    assert r.exit_code == 0, r.stderr
    assert (f"warning: bindings.payer.email is bound, but no template of format "
            f"cosoluce-corail reads t.debtor.email: the value is in none of its files. If the "
            f"format has no place for it, unbind it, or declare it in {bundle / 'format.yaml'} "
            "(not_carried: {payer.email: why}); else write it in a template [mapping "
            f"{plain}:{_line(plain, 'email: payer.email')}: bindings.payer.email] (rule "
            "mapping.unwritten)") in r.stderr
    # check-format warns of it too, with the fixture's mapping, and passes
    fixture = bundle / "fixture" / "mapping.yaml"
    r = _run("check-format", "cosoluce-corail", "--formats-dir", fmts)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert (f"[mapping {fixture}:{_line(fixture, 'email: payer.email')}: "
            "bindings.payer.email] (rule mapping.unwritten)") in r.stderr


def test_a_required_binding_no_template_reads_is_not_told_to_be_unbound():
    """mapping.unwritten advised 'unbind it' for every field, payer.kind (CatTiers,
    which the DGFiP rules read) and the address included, which the mapping's schema
    refuses unbound: a package's import without a category column (a CIRIL-like
    fixed-width file) sent its author to a mapping that does not load. A required
    binding is told to be declared not carried; an optional one may still be unbound,
    and so may the street and the city, which a mapping may leave out for a format that
    writes them nowhere (coverage.WRITTEN_ONLY, scaf64)."""
    from pesgen.coverage import check
    from pesgen.mapping import load_mapping

    fmt = load_format(data_dir("templates") / "cosoluce-corail")
    result = check(load_mapping(CORAIL), fmt, frozenset())  # a format writing nothing
    said = {name: warning.message for name, warning in result.unwritten}
    required = ("payer.kind", "payer.name", "address.postal_code", "line.amount")
    for name in required:
        assert "A mapping must bind it (its schema requires it): if the format has no " \
            f"place for it, declare it in {fmt.folder / 'format.yaml'}" in said[name], said
        assert "unbind it" not in said[name]
    for name in ("payer.first_name", "address.street", "address.city"):
        assert "If the format has no place for it, unbind it, or declare it" in said[name]
    bindings = load_schema("mapping.schema.json")["properties"]["bindings"]
    assert set(required) <= {f"{s}.{n}" for s in bindings["required"]
                             for n in bindings["properties"][s].get("required", ())}


def test_a_required_binding_of_a_section_a_mapping_may_leave_out_may_be_unbound():
    """A binding required within a section the mapping may leave out whole (joint_payer:
    kind, name, the address) is not one the schema requires of every mapping: the
    advice to unbind it stands (the whole section unbound), not 'a mapping must bind
    it'."""
    from pesgen.coverage import check
    from pesgen.mapping import load_mapping

    fmt = load_format(data_dir("templates") / "cosoluce-corail")
    result = check(load_mapping(CORAIL), fmt, frozenset())  # a format writing nothing
    said = {name: warning.message for name, warning in result.unwritten}
    for name in ("joint_payer.kind", "joint_payer.name", "joint_payer.city"):
        assert "If the format has no place for it, unbind it, or declare it" in said[name]
        assert "A mapping must bind it" not in said[name]


@pytest.mark.parametrize(("edits", "warned"), [
    ((), True),  # the export's payment method: its mandates are lost
    ((("direct_debit: payment_method", 'direct_debit: {const: "invoice"}'),), False),
    ((("direct_debit: payment_method", 'direct_debit: {const: "direct_debit"}'),), True),
    # a method codes.payment_methods does not list: not said false, so said (mut56);
    # since walk64 the mapping is refused first, when it loads (mapping.const-code)
    ((("direct_debit: payment_method", 'direct_debit: {const: "cheque"}'),), None),
    ((("direct_debit: payment_method", 'direct_debit: {const: "no"}'),
      ("  payment_methods: {direct_debit: true, invoice: false, online: false}\n", "")),
     False),
    ((("direct_debit: payment_method", 'direct_debit: {const: "yes"}'),
      ("  payment_methods: {direct_debit: true, invoice: false, online: false}\n", "")),
     True),
    # the export's method, which a table saying false of every method translates (a
    # method it lacks is refused by invoice): no title is a direct debit (walk67)
    ((("  payment_methods: {direct_debit: true, invoice: false, online: false}\n",
       "  payment_methods: {direct_debit: false, invoice: false, online: false}\n"),),
     False),
    # no codes.payment_methods, and a constant no yes/no word: said (mut56)
    ((("direct_debit: payment_method", 'direct_debit: {const: "cheque"}'),
      ("  payment_methods: {direct_debit: true, invoice: false, online: false}\n", "")),
     True),
])
def test_a_direct_debit_bound_to_a_constant_no_is_not_said_unwritten(tmp_path, edits, warned):
    """The note unread_debit tells a mapping whose collectivity does not collect by
    direct debit to bind payment.direct_debit to a constant no ({const: "no"}, or a
    method codes.payment_methods says false); a package's import that writes no
    mandate (onboarding rehearsal, scaf62's ACME Compta) then had check-mapping, preview
    and export warn that the binding is in none of its files, to unbind it, which brings
    the first note back. Such a constant carries nothing to lose: not said; a constant
    yes, or the export's method, is."""
    from pesgen.coverage import check
    from pesgen.errors import MappingError
    from pesgen.mapping import load_mapping

    source = MAPPINGS / "villeneuve-sur-loing-csv.yaml"
    mapping, _ = mapping_copy(tmp_path, source, *edits)
    fmt = load_format(data_dir("templates") / "cosoluce-corail")
    if warned is None:
        with pytest.raises(MappingError) as refused:
            load_mapping(mapping)
        assert [p.rule for p in refused.value.problems] == ["mapping.const-code"]
        return
    result = check(load_mapping(mapping), fmt, frozenset())  # a format writing nothing
    said = dict(result.unwritten)
    assert ("payment.direct_debit" in said) is warned, said.get("payment.direct_debit")
    assert "payment.rum" in said  # the other payment bindings are said as before


def test_a_field_declared_not_carried_that_a_template_reads_is_a_warning(tmp_path):
    fmts, bundle = _corail(tmp_path, format_yaml=(
        EMAIL_DECLARED, EMAIL_DECLARED + '  payer.first_name: "no first name"\n'))
    r = _run("check-mapping", CORAIL, "--formats-dir", fmts)
    assert r.exit_code == 0, r.stderr
    source = bundle / "format.yaml"
    line = _line(source, "payer.first_name:")
    assert ("warning: payer.first_name is declared not carried, but a template of format "
            "cosoluce-corail reads t.debtor.first_name: remove it from not_carried [format "
            f"{source}:{line}: not_carried.payer.first_name] (rule format.not-carried)"
            ) in r.stderr


@pytest.mark.parametrize("entry, says", [
    ('  payer.emial: "no e-mail column"\n',
     "unknown key 'payer.emial' (did you mean 'payer.email'?)"),
    # a model field's name is not a mapping's
    ('  debtor.email: "no e-mail column"\n', "unknown key 'debtor.email'"),
    ('  payer.first_name: ""\n', "'' does not match \\S"),
])
def test_not_carried_names_fields_as_a_mapping_binds_them(tmp_path, entry, says):
    fmts, bundle = _corail(tmp_path, format_yaml=(EMAIL_DECLARED, EMAIL_DECLARED + entry))
    source = bundle / "format.yaml"
    line = _line(source, entry.split(":")[0].strip() + ":")
    key = entry.split(":")[0].strip()
    for args in (("check-mapping", CORAIL), ("check-format", "cosoluce-corail")):
        r = _run(*args, "--formats-dir", fmts)
        assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
        assert says in r.stderr
        assert f"[format {source}:{line}: not_carried.{key}] (rule format.schema)" in r.stderr


def test_the_field_names_are_the_mappings_and_each_carrier_a_model_field():
    """not_carried's names are those of format.schema.json, which are CARRIED_BY's: every
    binding of the mapping schema (the invoice number and NumDette aside, kept by
    pesgen), lines and output.bordereau_object; each is carried by real model fields."""
    from pesgen.coverage import CARRIED_BY, KEPT_BY_PESGEN

    enum = load_schema("format.schema.json")["properties"]["not_carried"]["propertyNames"]
    assert enum["enum"] == list(CARRIED_BY)
    bindings = load_schema("mapping.schema.json")["properties"]["bindings"]["properties"]
    bound = {f"{group}.{name}" for group, spec in bindings.items()
             for name in spec.get("properties", {})} | {"lines", "output.bordereau_object"}
    assert set(CARRIED_BY) | set(KEPT_BY_PESGEN) == bound
    assert not set(CARRIED_BY) & set(KEPT_BY_PESGEN)
    holders = {"t": model.Title, "t.debtor": model.Debtor, "t.debtor.address": model.Address,
               "t.joint_debtor": model.Debtor, "t.joint_debtor.address": model.Address,
               "t.mandate": model.Mandate, "t.mandate.account": model.BankAccount,
               "t.lines[i]": model.Line, "doc.bordereau": model.Bordereau}
    for name, carriers in CARRIED_BY.items():
        for carrier in carriers:
            holder, field = carrier.rsplit(".", 1)
            assert field in model.public_names(holders[holder]), (name, carrier)


def test_the_shipped_bundles_declare_what_they_do_not_carry():
    """Each shipped bundle's not_carried gives a reason for each field, named by its
    format.yaml line; none lists what a split policy fills (it would not silence the
    refusal: the shipped templates write both complements)."""
    bundles = [p for p in data_dir("templates").iterdir() if (p / "format.yaml").is_file()]
    assert len(bundles) >= 5
    for folder in sorted(bundles):
        fmt = load_format(folder)
        assert "payer.email" in fmt.not_carried, fmt.name
        for reason, where in fmt.not_carried.values():
            assert reason.strip()
            assert re.match(rf"{re.escape(str(folder / 'format.yaml'))}:\d+: not_carried\.",
                            where), where
        assert not {"address.complement", "payer.complement_name"} & set(fmt.not_carried)


def test_export_dry_run_and_preview_refuse_such_a_mapping_and_use_no_number(tmp_path):
    """The same refusal at export, not only at check-mapping: before, an export with
    this bundle wrote its file and said 'street_overflow ×2' in its summary while the
    first part of both streets was in no file (a silent truncation)."""
    fmts, _bundle = _corail(tmp_path, (COMPLEMENT, ""))
    db = f"sqlite:///{tmp_path / 'store.db'}"
    common = ["--mapping", CORAIL, "--input", EXAMPLES / "school-export.json",
              "--date", "2026-11-23"]
    line = _line(CORAIL, "street_overflow: split")
    said = f"[mapping {CORAIL}:{line}: policies.street_overflow] (rule mapping.policy-lost)"
    for extra in (["--out", tmp_path / "out"], ["--dry-run"]):
        r = _run("export", *common, *extra, "--db", db, "--create-store",
                 "--formats-dir", fmts)
        assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
        assert said in r.stderr
        assert "nothing was written" in r.stderr
        assert not (tmp_path / "out").exists()
    r = _run("preview", *common, "--formats-dir", fmts)
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert said in r.stderr
    # no number was taken: the shipped bundle's export opens the sequence at 1
    r = _run("export", *common, "--out", tmp_path / "out", "--db", db, "--create-store")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "(IdBord 1, 11 title(s)" in r.stdout


def test_the_civility_and_the_country_of_either_payer_are_said_read_by_the_rules():
    """The payer's and the joint payer's civility and country are read by pesgen's rules
    whatever the templates write (pes.civility, an address abroad): a format writing
    none of them is told to keep them bound, not to unbind them (mut56: mutants
    leaving the joint payer's out of coverage.RULES_READ survived)."""
    from pesgen.coverage import check
    from pesgen.mapping import load_mapping

    # a format writing nothing, declaring nothing not carried of them (as Corail does
    # the countries)
    fmt = load_format(data_dir("templates") / "jvs-millesime")
    result = check(load_mapping(CORAIL), fmt, frozenset())
    said = {name: warning.message for name, warning in result.unwritten}
    for name in ("payer.civility", "joint_payer.civility", "address.country",
                 "joint_payer.country"):
        assert "pesgen's rules read it beside the templates" in said[name], name
        assert "keep it bound" in said[name] and "unbind it" not in said[name], name


@pytest.mark.parametrize("table, warned", [
    ("{direct_debit: false, invoice: false, online: false}", False),
    ("{direct_debit: true, invoice: false, online: false}", True),
])
def test_a_payment_method_no_table_makes_a_direct_debit_needs_no_mandate(tmp_path, table,
                                                                        warned):
    """walk67: a mapping binding the export's payment method, its codes.payment_methods
    saying false of every one (no family pays by direct debit) and no mandate binding,
    was warned at check-mapping that 'every invoice paid by direct debit would be
    refused' for want of the RUM, the IBAN…, of which no invoice can be one. Said only
    when a method of the table is a direct debit."""
    from pesgen.build import format_warnings
    from pesgen.mapping import load_mapping

    edits = [("  payment_methods: {direct_debit: true, invoice: false, online: false}\n",
              f"  payment_methods: {table}\n")]
    edits += [(f"    {line}\n", "") for line in (
        "debit_date: debit_date", "rum: mandate_rum", "mandate_signed_on: mandate_signed_on",
        "iban: mandate_iban", "bic: mandate_bic", "holder: mandate_holder",
        "sequence: mandate_sequence")]
    mapping, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-csv.yaml", *edits)
    fmt = load_format(data_dir("templates") / "cosoluce-corail")
    said = [p.message for p in format_warnings(load_mapping(mapping), fmt)
            if p.rule == "input.required"]
    assert bool(said) is warned, said
