"""Mapping files: the safe YAML loader, the schema and semantic checks (every problem
listed, each with file:line: key), and a sweep over the shipped mappings."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pesgen._yaml import LineDict, load_yaml_text
from pesgen.cli import app
from pesgen.errors import ExitCode, MappingError, PesgenError
from pesgen.export import export
from pesgen.mapping import DEFAULT_SEPA_SEQUENCES, load_mapping

from .conftest import EXAMPLES, MAPPINGS, ROOT
from .mapping_support import mapping_copy

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
TEXT = MAPPING.read_text(encoding="utf-8")


def _write(tmp_path: Path, text: str, name: str = "mapping.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _edit(*pairs: tuple[str, str]) -> str:
    text = TEXT
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def _line(path: Path, needle: str) -> int:
    hits = [i for i, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if needle in ln]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def _refused(path: Path) -> MappingError:
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert info.value.exit_code == ExitCode.MAPPING
    return info.value


# ---------------------------------------------------------------- every problem at once


def test_three_independent_schema_mistakes_give_three_problems(tmp_path):
    m = _write(tmp_path, _edit(
        ("  zero_total: leave_out", "  zero_totl: leave_out"),
        ('cod_col: "123"', "cod_col: 123"),
        ("  asap_delay_days: 0", "  asap_delay_days: -1"),
    ))
    exc = _refused(m)
    assert str(exc) == f"{m}: invalid mapping"
    assert sorted(p.mapping for p in exc.problems) == sorted([
        f"{m}:{_line(m, 'zero_totl')}: policies.zero_totl",
        f"{m}:{_line(m, 'cod_col')}: collectivity.cod_col",
        f"{m}:{_line(m, 'asap_delay_days')}: output.asap_delay_days",
    ])
    assert {p.rule for p in exc.problems} == {"mapping.schema"}
    by_key = {p.mapping.rsplit(" ", 1)[1]: p.message for p in exc.problems}
    assert by_key["policies.zero_totl"] == "unknown key 'zero_totl' (did you mean 'zero_total'?)"
    assert by_key["collectivity.cod_col"].startswith("123 must be a string: quote it in YAML")
    assert "-1 is less than the minimum of 0" in by_key["output.asap_delay_days"]


def test_a_five_digit_insee_country_code_says_which_three_digits(tmp_path):
    """The INSEE gives Belgium 99131; codes.countries takes CodPays' 3 digits. The
    refusal was the pattern alone (^(?!000$)[0-9]{3}$): it says which three."""
    m = _write(tmp_path, _edit(('    BE: "131"', '    BE: "99131"')))
    (p,) = _refused(m).problems
    assert (p.rule, p.mapping) == ("mapping.schema", f"{m}:{_line(m, '99131')}: "
                                                     "codes.countries.BE")
    assert p.message.endswith("(CodPays: 3 digits, the last three of the 5-digit code the "
                              "INSEE gives a country abroad (Belgium 99131: '131'); France "
                              "written out (FRANCE): '100')")


@pytest.mark.parametrize("old, new, key", [
    ("  exercise: 2026", '  exercise: "2026"', "collectivity.exercise"),
    ("  asap_delay_days: 0", "  asap_delay_days: '0'", "output.asap_delay_days"),
])
def test_a_number_written_in_quotes_says_to_write_it_without(tmp_path, old, new, key):
    """A code written unquoted is told 'quote it in YAML' (above); the reverse slip, a
    number quoted as a technician quotes the codes around it (exercise: "2026"), was
    only jsonschema's "'2026' is not of type 'integer'": it says to write it without
    quotes, with the key and the number."""
    m = _write(tmp_path, _edit((old, new)))
    (p,) = _refused(m).problems
    name, number = key.rsplit(".", 1)[1], new.split(":")[1].strip(" '\"")
    assert (p.rule, p.mapping) == ("mapping.schema", f"{m}:{_line(m, name + ':')}: {key}")
    assert p.message == (f"'{number}' is not of type 'integer': write the number without "
                         f"quotes in YAML ({name}: {number})")


def test_yaml_problems_and_schema_problems_are_listed_together(tmp_path):
    m = _write(tmp_path, _edit(
        ("  asap_delay_days: 0\n", "  asap_delay_days: 0\n  asap_delay_days: 2\n"),
        ("    sigle: PESGEN", "    sigel: PESGEN"),
        ("  case: upper", "  case: shout"),
    ))
    exc = _refused(m)
    got = sorted((p.rule, p.mapping) for p in exc.problems)
    assert got == sorted([
        ("mapping.duplicate-key", f"{m}:{_line(m, 'asap_delay_days: 2')}: output.asap_delay_days"),
        ("mapping.schema", f"{m}:{_line(m, 'sigel')}: output.emitter.sigel"),
        ("mapping.schema", f"{m}:{_line(m, 'case: shout')}: policies.case"),
    ])
    dup = next(p for p in exc.problems if p.rule == "mapping.duplicate-key")
    assert f"first at line {_line(m, 'asap_delay_days: 0')}" in dup.message
    assert exc.report().endswith("3 problem(s); nothing was written.")


def test_three_semantic_mistakes_give_three_problems(tmp_path):
    m = _write(tmp_path, _edit(
        ('siret: "21450999400015"', 'siret: "21450999400016"'),  # checksum off by one
        ('person:       {category: "01", legal_nature: "01"}',
         'person:       {category: "01", legal_nature: "03"}'),
        ('"Mlle": MME', '"Mlle": MLLE'),
    ))
    exc = _refused(m)
    got = sorted((p.rule, p.mapping) for p in exc.problems)
    assert got == sorted([
        ("collectivity.siret", f"{m}:{_line(m, 'siret:')}: collectivity.siret"),
        ("pes.cat-nat-grid",
         f"{m}:{_line(m, 'person:')}: codes.payer_kinds.person.legal_nature"),
        ("pes.civility", f"{m}:{_line(m, 'Mlle')}: codes.civility.Mlle"),
    ])
    grid = next(p for p in exc.problems if p.rule == "pes.cat-nat-grid")
    assert "allowed NatJur: 01, 02" in grid.message


@pytest.mark.parametrize("siret, says", [
    # a typo in the SIREN (its first 9 digits), which has a key of its own
    ("21450999500015", "the check key of its SIREN (its first 9 digits, 214509995) fails: a "
                       "digit mistyped or two swapped?"),
    # the SIREN right, the last digit off by one
    ("21450999400016", "its SIREN (214509994) is valid but the SIRET's check key fails: a "
                       "digit of the last 5 (the establishment's NIC) mistyped?"),
])
def test_a_collectivity_siret_with_a_typo_says_which_key_fails_and_where_to_copy_it(
        tmp_path, siret, says):
    """The collectivity's SIRET with a typo was refused as 'has an invalid checksum'
    alone: it now says whether the SIREN's key or the SIRET's fails, and where a
    technician copies the right one from."""
    m = _write(tmp_path, _edit(('siret: "21450999400015"', f'siret: "{siret}"')))
    [p] = _refused(m).problems
    assert p.rule == "collectivity.siret"
    assert p.message == (f"SIRET {siret} is invalid: {says} Copy it from the collectivity's "
                         "avis de situation SIRENE (INSEE), or from the IdColl of a PES file "
                         "it sent")


def test_a_cattiers_outside_the_dgfip_list_is_refused_by_export(tmp_path):
    """pes.cat-tiers: '99' has the schema's two digits but is no DGFiP category. Export
    refuses the mapping (exit 3) at the category's line, before anything is read or
    written; its NatJur is not also said outside the grid (no row to hold it to)."""
    m = _write(tmp_path, _edit(
        ('organization: {category: "50", legal_nature: "03"}',
         'organization: {category: "99", legal_nature: "03"}')))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["export", "-m", str(m), "-i",
                                 str(EXAMPLES / "school-export.json"), "-o", str(out),
                                 "--date", "2026-11-23"])
    assert r.exit_code == ExitCode.MAPPING == 3, r.output
    assert r.stderr.splitlines() == [
        f"error: {m}: invalid mapping",
        "  - CatTiers '99' is not a DGFiP category "
        f"[mapping {m}:{_line(m, 'organization:')}: codes.payer_kinds.organization.category] "
        "(rule pes.cat-tiers)",
        "1 problem(s); nothing was written."]
    assert not out.exists()


def test_a_schema_problem_does_not_hide_the_semantic_problems_of_other_parts(tmp_path):
    """A typo'd key under policies was all a run said; the unknown filter of a binding,
    the CatTiers outside the DGFiP grid and the SIRET checksum came only once it was
    fixed. One run now lists them all, each at its file:line:key."""
    m = _write(tmp_path, _edit(
        ("  zero_total: leave_out", "  zero_totl: leave_out"),
        ('debt_number: {expr: "invoice.number | digits"}',
         'debt_number: {expr: "invoice.number | digit"}'),
        ('person:       {category: "01", legal_nature: "01"}',
         'person:       {category: "01", legal_nature: "03"}'),
        ('siret: "21450999400015"', 'siret: "21450999400016"'),
    ))
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.schema", f"{m}:{_line(m, 'zero_totl')}: policies.zero_totl"),
        ("collectivity.siret", f"{m}:{_line(m, 'siret:')}: collectivity.siret"),
        ("mapping.expr", f"{m}:{_line(m, 'debt_number:')}: bindings.invoice.debt_number"),
        ("pes.cat-nat-grid",
         f"{m}:{_line(m, 'person:')}: codes.payer_kinds.person.legal_nature"),
    ]
    assert "Did you mean 'digits'?" in exc.problems[2].message


def test_a_part_that_failed_the_schema_gets_no_semantic_check(tmp_path):
    """A binding that is not one ({exp: ...}) is said once, as such; its neighbours
    are still compiled (an unknown filter); policies with an unknown key are not read
    (missing_civility: default without default_civility is not said beside it); a
    placeholder SIRET is a TODO, not also a bad checksum."""
    m = _write(tmp_path, _edit(
        ('debt_number: {expr: "invoice.number | digits"}',
         'debt_number: {exp: "invoice.number | digit"}'),
        ("object: {expr: \"'CONSERVATOIRE FACTURE ' ~ invoice.number\"}",
         "object: {expr: \"'CONSERVATOIRE FACTURE ' ~ invoice.number | upperr\"}"),
        ("  zero_total: leave_out", "  zero_totl: leave_out"),
        ("  default_civility: MME\n", ""),
        ('siret: "21450999400015"', "siret: TODO"),
    ))
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.todo", f"{m}:{_line(m, 'siret:')}: collectivity.siret"),
        ("mapping.schema", f"{m}:{_line(m, 'debt_number:')}: bindings.invoice.debt_number.exp"),
        ("mapping.schema", f"{m}:{_line(m, 'zero_totl')}: policies.zero_totl"),
        ("mapping.expr", f"{m}:{_line(m, 'object: {expr')}: bindings.invoice.object"),
    ]


def test_check_mapping_lists_a_schema_problem_and_a_semantic_one_together(tmp_path):
    m = _write(tmp_path, _edit(
        ("  zero_total: leave_out", "  zero_totl: leave_out"),
        ('debt_number: {expr: "invoice.number | digits"}',
         'debt_number: {expr: "invoice.number | digit"}'),
    ))
    result = CliRunner().invoke(app, ["check-mapping", str(m)])
    assert result.exit_code == ExitCode.MAPPING
    err = result.output
    assert f"[mapping {m}:{_line(m, 'zero_totl')}: policies.zero_totl] (rule mapping.schema)" \
        in err
    assert (f"[mapping {m}:{_line(m, 'debt_number:')}: bindings.invoice.debt_number] "
            "(rule mapping.expr)") in err
    assert "2 problem(s)." in err


@pytest.mark.parametrize("ics, rule, fragment", [
    ("FR00ZZZ654321", "collectivity.sepa-creditor-id",
     "SEPA creditor identifier (ICS) FR00ZZZ654321 has invalid check digits"),
    ("FR44ZZZ654321", "collectivity.sepa-creditor-id", "ISO 7064 mod 97-10"),
    ("FR72ZZZ123457", "collectivity.sepa-creditor-id", "invalid check digits"),
    ("fr72zzz123456", "mapping.schema", "does not match"),
    ("FR72 ZZZ 123456", "mapping.schema", "does not match"),
    ("123456", "mapping.schema", "does not match"),
])
def test_the_sepa_creditor_identifier_is_checked(tmp_path, ics, rule, fragment):
    """The ICS (AT-02) goes as it is into the files that carry it (e.magnus column 74):
    its format and its ISO 7064 mod 97-10 check digits are checked as the SIRET's."""
    m = _write(tmp_path, _edit(("sepa_creditor_id: FR72ZZZ123456",
                                f'sepa_creditor_id: "{ics}"')))
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        (rule, f"{m}:{_line(m, 'sepa_creditor_id:')}: collectivity.sepa_creditor_id")]
    assert fragment in exc.problems[0].message
    # the one every shipped mapping and fixture uses is valid
    assert load_mapping(_write(tmp_path, TEXT, "ok.yaml")).collectivity.sepa_creditor_id == \
        "FR72ZZZ123456"


@pytest.mark.parametrize("table", [None, "{}"])
def test_without_sepa_sequences_the_default_table_is_used_and_documented(tmp_path, table):
    text = _edit(('  sepa_sequences: {OOFF: "01", FRST: "02", RCUR: "03", FNAL: "04"}\n',
                  "" if table is None else f"  sepa_sequences: {table}\n"))
    mapping = load_mapping(_write(tmp_path, text))
    assert mapping.codes.sepa_sequences == DEFAULT_SEPA_SEQUENCES == {
        "OOFF": "01", "FRST": "02", "RCUR": "03", "FNAL": "04"}
    # the mapping reference says so (generated from the schema's description)
    reference = (ROOT / "docs" / "mapping-reference.md").read_text(encoding="utf-8")
    row = next(ln for ln in reference.splitlines() if ln.startswith("| `codes.sepa_sequences`"))
    assert "Without this table (or with an empty one)" in row
    assert all(f"{k} -> {v}" in row for k, v in DEFAULT_SEPA_SEQUENCES.items())


def test_empty_mapping_lists_every_required_section(tmp_path):
    m = _write(tmp_path, "# nothing yet\n")
    exc = _refused(m)
    required = sorted(re.match(r"'(\w+)' is required", p.message)[1] for p in exc.problems)
    assert required == sorted(["pesgen_mapping", "collectivity", "output", "input", "bindings",
                               "codes"])
    assert {p.mapping for p in exc.problems} == {f"{m}:1: (top)"}


def test_csv_input_needs_group_by(tmp_path):
    m = _write(tmp_path, _edit(("  format: json", "  format: csv")))
    exc = _refused(m)
    # and the JSON mapping's records: and lines: lines, which CSV input would not read
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.input", f"{m}:{_line(m, 'input:')}: input"),
        ("mapping.csv-records", f"{m}:{_line(m, '  records: ')}: input.records"),
        ("mapping.csv-lines", f"{m}:{_line(m, '  lines: lines')}: bindings.lines")]
    assert "group_by" in exc.problems[0].message


def test_expression_syntax_error_names_the_binding(tmp_path):
    m = _write(tmp_path, _edit(('{expr: "invoice.number | digits"}',
                                '{expr: "invoice.number | digits("}')))
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.expr", f"{m}:{_line(m, 'debt_number:')}: bindings.invoice.debt_number")]


def test_wrong_mapping_version(tmp_path):
    m = _write(tmp_path, _edit(("pesgen_mapping: 1", "pesgen_mapping: 2")))
    exc = _refused(m)
    assert [p.mapping for p in exc.problems] == [f"{m}:{_line(m, 'pesgen_mapping')}: "
                                                 "pesgen_mapping"]


def test_mapping_where_gives_the_key_line():
    m = load_mapping(MAPPING)
    assert m.where("codes", "activities") == (
        f"{MAPPING}:{_line(MAPPING, '  activities:')}: codes.activities")
    assert m.bindings["payment"]["iban"].where == (
        f"{MAPPING}:{_line(MAPPING, 'iban: payment.mandate.iban')}: bindings.payment.iban")


# ---------------------------------------------------------------- YAML traps


@pytest.mark.parametrize("raw, expected", [
    ("01234", "01234"),  # a code keeps its leading zero
    ("00", "00"),
    ("045012", "045012"),
    ("NO", "NO"),  # Norway, not False
    ("no", "no"),
    ("yes", "yes"),
    ("on", "on"),
    ("2026-01-31", "2026-01-31"),  # not a datetime.date
    ("1.5", "1.5"),  # not a float
    ("1e3", "1e3"),
    (".inf", ".inf"),
    ("0x1F", "0x1F"),
    ("0o17", "0o17"),
    ("1_000", "1_000"),
    ("12:30", "12:30"),  # not sexagesimal 750
    ("!!str 123", "123"),
    ("'42'", "42"),
    ('"true"', "true"),
    ("42", 42),
    ("-7", -7),
    ("0", 0),
    ("true", True),
    ("false", False),
    ("~", None),
    ("null", None),
    ("", None),
])
def test_yaml_scalars(raw, expected):
    data, problems = load_yaml_text(f"key: {raw}\n", "t.yaml")
    assert problems == []
    value = data["key"]
    assert value == expected and type(value) is type(expected)


def test_yaml_traps_inside_a_real_mapping(tmp_path):
    m = _write(tmp_path, _edit(('id_post: "045012"', "id_post: 045012"),
                               ('cod_bud: "00"', "cod_bud: 00"),
                               ('cod_col: "123"', "cod_col: !!str 123")))
    mapping = load_mapping(m)
    c = mapping.collectivity
    assert (c.id_post, c.cod_bud, c.cod_col) == ("045012", "00", "123")
    assert c.exercise == 2026


def test_yaml_keys_remember_their_lines():
    data, _ = load_yaml_text("a:\n  b: 1\n\n  c:\n    - x\n    - y\n", "t.yaml")
    assert isinstance(data, LineDict)
    assert data.key_lines == {"a": 1}
    assert data["a"].key_lines == {"b": 2, "c": 4}
    assert data["a"]["c"].item_lines == [5, 6]


# ---------------------------------------------------------------- nothing is executed


def test_python_tags_are_never_constructed(tmp_path):
    marker = tmp_path / "pwned"
    text = (f"a: !!python/object/apply:os.system ['touch {marker}']\n"
            f"b: !!python/object/new:subprocess.Popen [['touch', '{marker}']]\n"
            "c: !!python/name:os.system\n"
            "d: !!python/object:pesgen.errors.Problem {rule: r, message: m}\n"
            "e: !include secrets.yaml\n")
    data, problems = load_yaml_text(text, "t.yaml")
    assert not marker.exists()
    assert [(p.rule, p.mapping) for p in problems] == [
        ("mapping.yaml", f"t.yaml:{n}: {k}") for n, k in enumerate("abcde", 1)]
    assert "'!!python/object/apply:os.system' is not supported" in problems[0].message
    assert "'!include' is not supported" in problems[4].message
    # only plain data came out: no object was built
    assert data["a"] == [f"touch {marker}"]
    assert type(data["d"]) is LineDict and data["d"] == {"rule": "r", "message": "m"}
    assert data["c"] == ""


def test_python_tag_in_a_mapping_refuses_it(tmp_path):
    marker = tmp_path / "pwned"
    m = _write(tmp_path, _edit(("  name: Commune de Villeneuve-sur-Loing",
                                f"  name: !!python/object/apply:os.system ['touch {marker}']")))
    exc = _refused(m)
    assert not marker.exists()
    tags = [p for p in exc.problems if p.rule == "mapping.yaml"]
    assert [p.mapping for p in tags] == [f"{m}:{_line(m, 'python/object')}: collectivity.name"]


def test_pesgen_never_uses_an_unsafe_yaml_loader():
    unsafe = re.compile(r"yaml\.(load|full_load|unsafe_load|load_all)\(|"
                        r"\b(Full|Unsafe)Loader\b|Loader=yaml\.Loader\b")
    offenders = [f"{path.name}:{i}" for path in sorted((ROOT / "pesgen").glob("*.py"))
                 for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if unsafe.search(line)]
    assert offenders == []


def test_recursive_alias_is_a_mapping_error():
    with pytest.raises(MappingError, match="alias used inside its own anchor"):
        load_yaml_text("a: &a [1, *a]\n", "t.yaml")


def test_alias_bomb_is_refused_quickly():
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(MappingError, match="aliases expand to more than"):
        load_yaml_text("\n".join(levels) + "\n", "t.yaml")


def test_one_big_scalar_behind_many_aliases_is_refused(tmp_path):
    # a 1 MB value used 2000 times: few nodes, 2 GB of text once expanded (30 s and 4 GB
    # of memory in check-mapping before: nodes were counted, not characters)
    aliases = "".join(f"    X{i}: *big\n" for i in range(2000))
    text = _edit(("pesgen_mapping: 1\n", "pesgen_mapping: 1\nbigdef: &big \"" + "A" * 1_000_000
                  + "\"\n"), ("  countries:\n", "  countries:\n" + aliases))
    with pytest.raises(MappingError, match="aliases expand to more than 10000000 characters"):
        load_yaml_text(text, "t.yaml")


def test_a_big_value_is_echoed_cut_in_mapping_messages(tmp_path):
    # a value the schema refuses is shown cut, not echoed whole: 200 uses of a 1 MB
    # value made 199 MB of messages when each was repeated in full
    aliases = "".join(f"    X{i}: *big\n" for i in range(200))
    m = _write(tmp_path, _edit(
        ("pesgen_mapping: 1\n", "pesgen_mapping: 1\nx-big: &big {k: \"" + "A" * 40_000
         + "\"}\n"), ("  countries:\n", "  countries:\n" + aliases)))
    exc = _refused(m)
    said = [str(p) for p in exc.problems if "X1" in (p.mapping or "")]
    assert said and all(len(s) < 1000 for s in said), said[:1]
    assert all(len(str(p)) < 3000 for p in exc.problems)
    assert "… (40009 characters) is not of type 'string'" in said[0]


def test_a_long_unknown_key_is_named_cut(tmp_path):
    # (an explicit key: YAML caps a plain one at 1024 characters)
    m = _write(tmp_path, _edit(("pesgen_mapping: 1\n", "pesgen_mapping: 1\n? " + "k" * 100_000
                                + "\n: 1\n")))
    exc = _refused(m)
    (p,) = [p for p in exc.problems if "kkkk" in p.message]
    assert "… (100000 characters)" in p.message and len(str(p)) < 1000


def test_plain_alias_reuse_still_works():
    data, problems = load_yaml_text("base: &b {product: FMC1, nature: '7062'}\n"
                                    "other: *b\n", "t.yaml")
    assert problems == []
    assert data["other"] == {"product": "FMC1", "nature": "7062"}


def test_deep_nesting_is_a_mapping_error():
    with pytest.raises(MappingError, match="nested more than 100 levels deep") as caught:
        load_yaml_text("a: " + "[" * 3000 + "]" * 3000 + "\n", "t.yaml")
    assert str(caught.value).startswith("t.yaml:1: ")


def test_deep_nesting_is_named_at_its_line():
    """Block nesting past the bound is named at the line of the first node too deep,
    before Python's recursion limit (it was 'YAML nested too deeply', no line)."""
    text = "pesgen_mapping: 1\nx:\n" + "".join("  " * (i + 1) + f"k{i}:\n"
                                              for i in range(400)) + "  " * 401 + "v\n"
    with pytest.raises(MappingError) as caught:
        load_yaml_text(text, "t.yaml")
    # the document is level 1, x's value (from line 3) level 2, and the mapping under
    # k_i (from line i + 4) level i + 3: line 101's key k98 is the first node past 100
    assert str(caught.value).startswith("t.yaml:101: YAML nested more than 100 levels")
    assert [(p.rule, p.mapping) for p in caught.value.problems] == [("mapping.yaml",
                                                                     "t.yaml:101")]


def test_nesting_up_to_the_bound_loads():
    text = "a: " + "[" * 98 + "1" + "]" * 98 + "\n"  # 1 + 98 + 1 levels
    data, problems = load_yaml_text(text, "t.yaml")
    assert problems == []
    value = data["a"]
    for _ in range(97):
        value = value[0]
    assert value == [1]


@pytest.mark.parametrize("anchors", [3, 12])
def test_nesting_through_aliases_is_bounded_too(anchors):
    """The reviewer's case: each anchor 90 levels deep holding the one before: 8 of them
    loaded a value 720 deep, 12 failed with no line ('YAML nested too deeply'). The
    depth counted with aliases expanded is bounded as the composer bounds it without."""
    lines = ["pesgen_mapping: 1", "x0: &a0 1"]  # the document is level 1
    for i in range(1, anchors + 1):
        lines.append(f"x{i}: &a{i} " + "[" * 45 + f"*a{i - 1}" + "]" * 45)
    with pytest.raises(MappingError) as caught:
        load_yaml_text("\n".join(lines) + "\n", "t.yaml")
    # x1's and x2's values reach levels 47 and 92; x3 holds a2 (x2's value, line 4),
    # 91 levels high, at level 47: it would reach 137, and is named
    assert str(caught.value) == ("t.yaml:4: YAML nested more than 100 levels deep (a "
                                 "mapping, a layout, a format.yaml needs fewer than ten)")


def test_an_alias_within_the_bound_still_loads():
    text = "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: [*a, *a]\n"
    data, problems = load_yaml_text(text, "t.yaml")
    assert problems == [] and data["b"][0] == data["a"]


def test_recursive_alias_is_named_at_its_anchor():
    with pytest.raises(MappingError) as caught:
        load_yaml_text("pesgen_mapping: 1\nx: &a [1, *a]\n", "t.yaml")
    assert str(caught.value) == ("t.yaml:2: YAML alias used inside its own anchor: it "
                                 "would hold itself without end")
    assert caught.value.problems[0].mapping == "t.yaml:2"


# ---------------------------------------------------------------- unreadable files


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    m = _write(tmp_path, _edit(('budget_label: COMMUNE DE VILLENEUVE SUR LOING',
                                'budget_label: [COMMUNE')))
    exc = _refused(m)
    assert re.match(rf"{re.escape(str(m))}:\d+: YAML syntax error: ", str(exc))
    (p,) = exc.problems
    assert p.rule == "mapping.yaml"
    assert p.mapping.startswith(f"{m}:")
    assert "\n" not in p.message and "<unicode string>" not in p.message


def test_a_mapping_saved_as_cp1252_names_line_column_and_what_to_do(tmp_path):
    m = tmp_path / "notepad.yaml"
    m.write_bytes(TEXT.encode("cp1252"))
    at = next(i for i, c in enumerate(TEXT) if ord(c) > 127)  # é of "trésorerie", line 2
    line = TEXT.count("\n", 0, at) + 1
    column = at - TEXT.rfind("\n", 0, at)
    with pytest.raises(MappingError) as info:
        load_mapping(m)
    said = str(info.value)
    assert said.startswith(f"{m}:{line}:{column}: not UTF-8: byte 0xE9 at line {line}, "
                           f"column {column}")
    assert "save it as UTF-8" in said


@pytest.mark.parametrize(("old", "new", "hint"), [
    # a key indented more than its siblings
    ("  cod_col: \"123\"", "   cod_col: \"123\"", "check the indentation of this line and "
     "of the line above"),
    ("  cod_col: \"123\"", "\tcod_col: \"123\"", "YAML indents with spaces only, replace the "
     "tabs by spaces"),
])
def test_yaml_syntax_errors_say_what_to_look_at(tmp_path, old, new, hint):
    m = _write(tmp_path, _edit((old, new)))
    exc = _refused(m)
    line = _line(m, "cod_col")
    (p,) = exc.problems
    assert p.mapping == f"{m}:{line}"
    assert hint in p.message and hint in str(exc)
    # PyYAML's own words stay
    assert re.search(r"expected <block end>|mapping values are not allowed here|cannot "
                     r"start any token",
                     p.message)


def test_merge_keys_are_refused(tmp_path):
    m = _write(tmp_path, _edit(("  payer_kinds:\n", "  payer_kinds:\n    <<: {x: 1}\n")))
    exc = _refused(m)
    p = next(p for p in exc.problems if p.rule == "mapping.yaml")
    assert p.mapping == f"{m}:{_line(m, '<<')}: codes.payer_kinds.<<"


@pytest.mark.parametrize(("codec", "what"), [
    ("utf-16", "UTF-16 LE (it starts with the byte order mark FF FE)"),
    ("utf-16-le", "UTF-16 LE without a byte order mark (every second byte is a NUL)"),
    ("utf-16-be", "UTF-16 BE without a byte order mark (every second byte is a NUL)"),
])
@pytest.mark.parametrize("ascii_only", [False, True])
def test_a_mapping_saved_as_utf16_is_told_so(tmp_path, codec, what, ascii_only):
    """Notepad's "Unicode" save: said to be cp1252 at a byte of no meaning (0xFF at
    1:1, 0xE9 at 2:56), or, all ASCII and without a byte order mark, a YAML error on a
    NUL at 'position 1'."""
    text = TEXT.encode("ascii", "replace").decode() if ascii_only else TEXT
    m = tmp_path / "unicode.yaml"
    m.write_bytes(text.encode(codec))
    with pytest.raises(MappingError) as info:
        load_mapping(m)
    assert str(info.value) == (f"{m}:1:1: not UTF-8: the file is {what}: save it as UTF-8 "
                               "(in Notepad: Save as, Encoding UTF-8)")


def test_non_utf8_mapping(tmp_path):
    m = tmp_path / "latin1.yaml"
    m.write_bytes(TEXT.encode("latin-1", errors="replace"))
    with pytest.raises(MappingError, match=r"latin1\.yaml:\d+:\d+: not UTF-8"):
        load_mapping(m)


def test_a_cr_only_mapping_not_utf8_names_the_line_an_editor_shows(tmp_path):
    # a file saved with old Mac line ends (CR alone): its YAML errors count CR as a line
    # end, its encoding error counted only LF (line 1, column 206 for line 6, column 18)
    m = tmp_path / "cr.yaml"
    m.write_bytes(TEXT.encode("utf-8").replace(b"  name: Commune de", b"  name: Commun\xe9 de")
                  .replace(b"\n", b"\r"))
    line = _line(MAPPING, "  name: Commune de")
    with pytest.raises(MappingError, match=re.escape(f"{m}:{line}:15: not UTF-8: byte 0xE9 "
                                                     f"at line {line}, column 15 ")):
        load_mapping(m)


@pytest.mark.parametrize(("char", "name"), [("\x85", "U+0085"), ("\u2028", "U+2028"),
                                            ("\u2029", "U+2029")])
def test_a_character_yaml_reads_as_a_line_break_is_refused_at_its_line(tmp_path, char, name):
    # YAML 1.1 (PyYAML) ends a line at NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR,
    # an editor does not: every line after one was miscounted by one, and the end of a
    # comment holding one was read as a key ('unknown key de Villeneuve-sur-Loing')
    m = _write(tmp_path, _edit(("# Commune de Villeneuve", f"# Commune{char}de Villeneuve"),
                               ("  exercise: 2026", f"  exercise: 2026  # 2026{char}2027")))
    exc = _refused(m)
    line = _line(MAPPING, "  exercise: 2026")  # (str.splitlines breaks at them too)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.yaml", f"{m}:1"), ("mapping.yaml", f"{m}:{line}")]
    assert str(exc).startswith(f"{m}:1: ")
    assert exc.problems[0].message.startswith(f"column 10: character {name} ")
    assert "read as a line break" in exc.problems[0].message


def test_an_integer_too_long_for_python_is_text_the_schema_refuses(tmp_path):
    # Python refuses to convert more than 4300 digits (ValueError): a traceback, exit 1
    m = _write(tmp_path, _edit(("  exercise: 2026", "  exercise: " + "9" * 5000)))
    exc = _refused(m)
    (p,) = exc.problems
    assert (p.rule, p.mapping) == ("mapping.schema",
                                   f"{m}:{_line(m, 'exercise:')}: collectivity.exercise")
    assert "is not of type 'integer'" in p.message


@pytest.mark.parametrize("imputation, key", [
    ('nature: "0", fonction: "311"', "nature"),
    ('nature: "0000", fonction: "311"', "nature"),
    ('nature: "7062", fonction: "311", operation: "000"', "operation"),
])
def test_an_imputation_of_zeros_only_is_refused_when_the_mapping_loads(tmp_path, imputation,
                                                                       key):
    """Nature is a Base_Num12 (a number > 0: DT v5.19 Dictionnaire des données « Numérique
    Positif ... strictement positif ») and Operation a Base_Alphanum10 (« ne peut pas
    contenir la valeur « 0 », « n fois 0 »). A code table giving one of zeros passed
    check-mapping, and every export of an activity it names was refused by the XSD, one
    problem per line: the mapping is refused as it loads, at the activity's line."""
    m = _write(tmp_path, _edit(
        ('ORCH:        {product: ORCH, nature: "7062", fonction: "311"}',
         f"ORCH:        {{product: ORCH, {imputation}}}")))
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.schema", f"{m}:{_line(m, 'ORCH:')}: codes.activities.ORCH.{key}")]
    assert "does not match" in exc.problems[0].message
    # a leading zero is no zero value: Nature 07062 is Base_Num12's 7062
    ok = _write(tmp_path, _edit(
        ('ORCH:        {product: ORCH, nature: "7062", fonction: "311"}',
         'ORCH:        {product: ORCH, nature: "07062", fonction: "311", operation: "0A"}')),
        "ok.yaml")
    assert load_mapping(ok).codes.activities["ORCH"]["nature"] == "07062"


def test_a_country_code_of_zeros_is_refused_and_waived_for_a_recorded_run(tmp_path):
    """CodPays is a Base_Num3, a number > 0: 000 passed the mapping and every foreign
    address of the country was refused by the XSD. Refused as the mapping loads; a run
    recorded with it (a bundle that took it wrote it as it is) is still rebuilt, the
    problem waived."""
    from pesgen.mapping import load_recorded_mapping

    m = _write(tmp_path, _edit(('    BE: "131"', '    BE: "000"')))
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.schema", f"{m}:{_line(m, 'BE:')}: codes.countries.BE")]
    recorded = load_recorded_mapping(m.read_text(encoding="utf-8"), str(m))
    assert recorded.codes.countries["BE"] == "000"
    assert [(p.rule, p.mapping) for p in recorded.waived] == [
        ("mapping.schema", f"{m}:{_line(m, 'BE:')}: codes.countries.BE")]
    # a code that is not 3 digits is still refused, recorded or not
    bad = _write(tmp_path, _edit(('    BE: "131"', '    BE: "13"')), "bad.yaml")
    with pytest.raises(MappingError):
        load_recorded_mapping(bad.read_text(encoding="utf-8"), str(bad))


@pytest.mark.parametrize("imputation, waived", [
    ('nature: "000", fonction: "311", operation: "00"', ["nature", "operation"]),
    ('nature: "0000000000000", fonction: "311"', None),  # 13 digits: refused before too
    ('nature: "7062", fonction: "311", operation: "00000000000"', None),
    ("nature: 0, fonction: \"311\"", None),  # not a string: refused before too
    ('nature: "000", nature: "000", fonction: "311"', None),  # given twice
])
def test_a_recorded_mapping_s_imputation_of_zeros_only_is_waived_nothing_else(
        tmp_path, imputation, waived):
    """A run recorded with a nature or operation of zeros only (a bundle took it, written
    as it is) is rebuilt, the schema problem waived (mapping._renders_nothing); a value
    the schema refused before the zeros check (13 digits, 11 characters, a number), or
    a key given twice (mapping.duplicate-key, at the same key), is refused still."""
    from pesgen.mapping import load_recorded_mapping

    m = _write(tmp_path, _edit(
        ('ORCH:        {product: ORCH, nature: "7062", fonction: "311"}',
         f"ORCH:        {{product: ORCH, {imputation}}}")))
    at = f"{m}:{_line(m, 'ORCH:')}: codes.activities.ORCH."
    text = m.read_text(encoding="utf-8")
    if waived is None:
        with pytest.raises(MappingError) as info:
            load_recorded_mapping(text, str(m))
        assert [p.mapping for p in info.value.problems] == [
            at + ("operation" if "operation" in imputation else "nature")]
        return
    recorded = load_recorded_mapping(text, str(m))
    assert recorded.codes.activities["ORCH"]["nature"] == "000"
    assert [(p.rule, p.mapping) for p in recorded.waived] == [
        ("mapping.schema", at + key) for key in waived]


@pytest.mark.parametrize("edit", [
    ("  sepa_creditor_id: FR72ZZZ123456\n",  # the ICS given twice: not its pattern
     "  sepa_creditor_id: FR72ZZZ123456\n  sepa_creditor_id: FR72ZZZ123456\n"),
    ("    BE: \"131\"\n", "    BE: \"000\"\n    BE: \"000\"\n"),  # a country given twice
])
def test_a_recorded_mapping_s_key_given_twice_is_refused_whatever_its_value(tmp_path, edit):
    """The waivers of a recorded mapping (the ICS's pattern, codes of zeros only) are
    for the schema's problem at the key, not for another rule's at the same key: a key
    given twice (mapping.duplicate-key) is refused, as it was before they existed."""
    from pesgen.mapping import load_recorded_mapping

    m = _write(tmp_path, _edit(edit))
    with pytest.raises(MappingError) as info:
        load_recorded_mapping(m.read_text(encoding="utf-8"), str(m))
    assert [p.rule for p in info.value.problems] == ["mapping.duplicate-key"]


@pytest.mark.parametrize("edit, key", [
    (('ORCH:        {product: ORCH,', 'ORCH:        {product: "0000",'),
     "codes.activities.ORCH.product"),  # CodProdLoc of zeros: refused before the natures
    (("sepa_creditor_id: FR72ZZZ123456", "sepa_creditor_id: 654321"),
     "collectivity.sepa_creditor_id"),  # an ICS that is no string: not written as it is
    (('cod_col: "',  'cod_col: "X'), "collectivity.cod_col"),  # no code of a table
    # an activity's key written flat: no activity of that name holds the nature
    (('ORCH:        {product: ORCH,', '"TUBA.nature": "000"\n    ORCH:        {product: ORCH,'),
     "codes.activities.TUBA.nature"),
])
def test_a_recorded_mapping_s_other_schema_problems_are_not_waived(tmp_path, edit, key):
    """Next to the waived ones (the ICS's pattern, a nature, an operation or a country
    code of zeros only), the schema's other problems of a recorded mapping are refused:
    a CodProdLoc of zeros (refused before those checks existed), an ICS not a string, a
    CodCol that is not 3 digits, an activity named 'TUBA.nature' (no activity TUBA's nature)."""
    from pesgen.mapping import load_recorded_mapping

    m = _write(tmp_path, _edit(edit))
    with pytest.raises(MappingError) as info:
        load_recorded_mapping(m.read_text(encoding="utf-8"), str(m))
    assert [(p.rule, p.mapping.rsplit(": ", 1)[1]) for p in info.value.problems] == [
        ("mapping.schema", key)]


def test_a_recorded_mapping_whose_codes_are_no_table_is_refused_as_such(tmp_path):
    """`codes: []` in a recorded mapping: a schema problem at `codes`, said as the
    mapping's error, not a crash of the waivers that read the code tables."""
    from pesgen.mapping import load_recorded_mapping

    lines = TEXT.splitlines(keepends=True)
    start = lines.index("codes:\n")
    end = next(n for n in range(start + 1, len(lines)) if lines[n][:1] not in " \n#")
    m = _write(tmp_path, "".join(lines[:start]) + "codes: []\n" + "".join(lines[end:]))
    with pytest.raises(MappingError) as info:
        load_recorded_mapping(m.read_text(encoding="utf-8"), str(m))
    assert [(p.rule, p.mapping) for p in info.value.problems] == [
        ("mapping.schema", f"{m}:{_line(m, 'codes: []')}: codes")]


def test_a_yaml_file_too_big_is_refused_before_it_is_parsed(tmp_path):
    # a 59 MB mapping took 5 minutes and 5 GB of memory to be told "YAML aliases expand
    # to more than 100000 values (an alias bomb?)": it had no alias
    m = _write(tmp_path, TEXT + "# " + "x" * 10_000_000 + "\n")
    with pytest.raises(MappingError) as info:
        load_mapping(m)
    said = str(info.value)
    assert said.startswith(f"{m}: the file holds 10004") and "alias" not in said
    assert "pesgen reads YAML files of up to 10000000 (a mapping" in said


@pytest.mark.parametrize("text", ["".join(f"k{i}: v\n" for i in range(1001)),
                                  "[" + "v, " * 1500 + "]\n"])
def test_many_values_without_alias_are_not_called_an_alias_bomb(monkeypatch, text):
    monkeypatch.setattr("pesgen._yaml.MAX_NODES", 1000)
    with pytest.raises(MappingError) as info:
        load_yaml_text(text, "t.yaml")
    assert str(info.value) == ("t.yaml: the file holds more than 1000 values: a mapping, a "
                               "layout, a format.yaml holds a few hundred")


def test_a_list_is_not_a_mapping(tmp_path):
    m = _write(tmp_path, "- a\n- b\n")
    with pytest.raises(MappingError, match="a mapping file is a YAML mapping"):
        load_mapping(m)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(MappingError, match="file not found"):
        load_mapping(tmp_path / "absent.yaml")


# ---------------------------------------------------------------- the shipped mappings

SHIPPED = sorted(MAPPINGS.glob("*.yaml"))


def test_there_are_shipped_mappings():
    assert len(SHIPPED) >= 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_mapping_loads_checks_and_exports(tmp_path, path):
    mapping = load_mapping(path)
    assert mapping.codes.activities
    r = CliRunner().invoke(app, ["check-mapping", str(path)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{path}: OK (format {mapping.output.format}")
    examples = sorted(EXAMPLES.glob(f"*.{mapping.input.format}"))
    if not examples:
        pytest.skip(f"no {mapping.input.format} example in examples/")
    # each example is for one school software layout: at least one must export
    failures: list[str] = []
    for i, example in enumerate(examples):
        try:
            result = export(path, example, tmp_path / f"out{i}", date(2026, 11, 23))
        except PesgenError as exc:
            failures.append(f"{example.name}: {exc.report()}")
            continue
        assert result.titles > 0
        assert all(f.path.is_file() for f in result.files)
        break
    else:
        pytest.fail("no example exports with this mapping:\n" + "\n".join(failures))


def test_const_rows_is_for_csv_a_json_mapping_saying_it_is_refused(tmp_path):
    """`lines: {const: rows}` in a JSON mapping passed check-mapping, then every invoice
    was refused as having no lines: the mapping is refused, naming bindings.lines and
    saying {const: rows} is for CSV input."""
    path = _write(tmp_path, _edit(("  lines: lines\n", "  lines: {const: rows}\n")))
    r = CliRunner().invoke(app, ["check-mapping", str(path)])
    assert r.exit_code == ExitCode.MAPPING, r.output
    line = _line(path, "lines: {const: rows}")
    assert ("{const: rows} is for CSV input (each row of an invoice is one of its lines)"
            in r.output), r.output
    assert f"[mapping {path}:{line}: bindings.lines] (rule mapping.input)" in r.output


@pytest.mark.parametrize("lines", ["lignes_facture", "lines", "{expr: invoice.lines}"])
def test_a_csv_mapping_binding_lines_otherwise_than_const_rows_is_refused(tmp_path, lines):
    """With CSV input each row of an invoice is a line and bindings.lines is not read:
    `lines: lignes_facture`, a column the file lacks, exported as if it were
    {const: rows}, and check-mapping said nothing. Refused when the mapping loads
    (mapping.csv-lines, exit 3), so check-mapping says it without an input."""
    path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-csv.yaml",
                           ("  lines: {const: rows}\n", f"  lines: {lines}\n"))
    with pytest.raises(PesgenError) as info:
        load_mapping(path)
    assert info.value.exit_code == ExitCode.MAPPING, info.value.report()
    [p] = info.value.problems
    assert p.rule == "mapping.csv-lines"
    assert p.mapping == f"{path}:{_line(path, f'lines: {lines}')}: bindings.lines"
    assert p.message.endswith("write bindings.lines as {const: rows}")
    r = CliRunner().invoke(app, ["check-mapping", str(path)])
    assert r.exit_code == ExitCode.MAPPING and "(rule mapping.csv-lines)" in r.output


@pytest.mark.parametrize("records", ["invoices", "factures", "data.invoices"])
def test_a_csv_mapping_naming_records_is_refused(tmp_path, records):
    """input.records is the dotted path of a JSON export's invoice array: with CSV
    input it was not read, and `records: factures` was accepted, saying nothing (the
    scaffold writes records: invoices, which a technician turning its input to csv
    keeps). Refused when the mapping loads (mapping.csv-records, exit 3), check-mapping
    and export too."""
    path, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-csv.yaml",
                           ("  format: csv\n", f"  format: csv\n  records: {records}\n"))
    with pytest.raises(PesgenError) as info:
        load_mapping(path)
    assert info.value.exit_code == ExitCode.MAPPING, info.value.report()
    [p] = info.value.problems
    assert p.rule == "mapping.csv-records"
    where = f"{path}:{_line(path, f'records: {records}')}: input.records"
    assert p.mapping == where
    assert p.message == ("with input.format: csv, input.records is not read: it applies "
                         "to JSON input only (the dotted path of the invoice array); a CSV "
                         "file's rows are the invoices' lines, grouped by input.group_by: "
                         "remove it")
    for args in (["check-mapping", str(path)],
                 ["export", "-m", str(path), "-i", str(EXAMPLES / "school-export.csv"),
                  "-o", str(tmp_path / "out"), "--dry-run",
                  "--db", f"sqlite:///{tmp_path / 'x.sqlite3'}", "--create-store"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == ExitCode.MAPPING, r.output
        assert f"[mapping {where}] (rule mapping.csv-records)" in r.output, r.output


def test_the_scaffold_s_records_says_it_is_for_json_only(tmp_path):
    """new-mapping writes records: invoices for its JSON input: its comment says to
    remove it for csv (the key a CSV mapping is refused with)."""
    out = tmp_path / "m.yaml"
    r = CliRunner().invoke(app, ["new-mapping", "Commune X", "--format", "pes-ormc",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    [line] = [ln for ln in out.read_text(encoding="utf-8").splitlines()
              if ln.lstrip().startswith("records:")]
    assert line == "  records: invoices        # JSON only (remove it for csv): the " \
                   "invoice array's path"


BORDEREAU_OBJECT = '  bordereau_object: {const: "CONSERVATOIRE - TRIMESTRE 1 2026-2027"}\n'


@pytest.mark.parametrize("written, says", [
    ("{expr: \"{'T1': 'TRIMESTRE 1'}.get(run.date) ~ ' 2026'\"}",
     "expression failed: '~' writes None"),
    ('{const: "' + "A" * 161 + '"}', "bordereau object longer than 160"),
    # YAML's true, a list, an object: written as Python text (Objet V="TRUE",
    # "['A', 'B']") where a title's field refuses them (input.type)
    ("{const: true}", "the bordereau object is a yes/no value, not a text"),
    ("{const: [T1, T2]}", "the bordereau object is a list, not a text"),
    ("{const: {T1: x}}", "the bordereau object is an object, not a text"),
    ("{expr: \"['T1', run.exercise]\"}", "the bordereau object is a list, not a text"),
])
def test_a_bordereau_object_the_format_refuses_is_the_mappings_error(tmp_path, written,
                                                                      says):
    """output.bordereau_object is evaluated on the collectivity and the run's date only:
    an expression failing on them, or an object longer than the format's limit, was
    refused as the input's (exit 4) by export and by check-mapping (its sample date),
    though no input could mend it. The mapping's error (exit 3), at its line and key,
    found by check-mapping before any export."""
    path = _write(tmp_path, _edit((BORDEREAU_OBJECT, f"  bordereau_object: {written}\n")))
    where = f"{path}:{_line(path, 'bordereau_object:')}: output.bordereau_object: {says}"
    r = CliRunner().invoke(app, ["check-mapping", str(path)])
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert where in r.output
    with pytest.raises(PesgenError) as info:
        export(path, EXAMPLES / "school-export.json", tmp_path / "out", date(2026, 11, 23))
    assert info.value.exit_code == ExitCode.MAPPING, info.value.report()
    assert str(info.value).startswith(where)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("written, rule, message", [
    ('"' + "A" * 161 + '"', "text.length",
     "bordereau.object longer than 160 (161 characters)"),
    ('"TRIMESTRE \U0001F600"', "text.charset",
     "bordereau.object character '\U0001F600' (U+1F600) has no transliteration in latin-1"),
])
def test_a_bordereau_object_refused_names_its_rule(tmp_path, written, rule, message):
    """The bordereau object too long, or of a character the output cannot write, is a
    problem with its rule and its mapping line and key, as every refusal lists: before,
    the error's message alone said it, naming no rule."""
    path = _write(tmp_path, _edit((BORDEREAU_OBJECT, f"  bordereau_object: {{const: "
                                                     f"{written}}}\n")))
    with pytest.raises(MappingError) as info:
        export(path, EXAMPLES / "school-export.json", tmp_path / "out", date(2026, 11, 23))
    where = f"{path}:{_line(path, 'bordereau_object:')}: output.bordereau_object"
    assert [(p.rule, p.message, p.mapping) for p in info.value.problems] == [
        (rule, message, where)]
    assert info.value.report().endswith(f"(rule {rule})\n1 problem(s); nothing was written.")


@pytest.mark.parametrize("written, objet, note", [
    # 'nc' upper-cased by policies.case: 'NC', which pesgen holds Hélios refuses in any
    # other text (rule pes.text; the DGFiP XSD refuses 'nc' only): left out, as a title's
    # optional placeholder is, and said so
    ('"nc"', None, ("placeholder", "bordereau.object: 'NC' is not accepted by Hélios (only "
                    "zeros, 'nc', '.' or space), left out")),
    # '0' and '.', which both XSDs refuse: left out before rendering, not refused by the
    # XSD at the file's line (exit 6) naming no mapping key
    ('"0"', None, ("placeholder", "bordereau.object: '0' is not accepted by Hélios (only "
                   "zeros, 'nc', '.' or space), left out")),
    ('"."', None, ("placeholder", "bordereau.object: '.' is not accepted by Hélios (only "
                   "zeros, 'nc', '.' or space), left out")),
    # the text policies that change it are noted, as a title's texts' are
    ('"Trimestre \u2013 1 \u20ac"', "TRIMESTRE - 1 EUR",
     ("transliterate", "bordereau.object: \u2013\u2192-, \u20ac\u2192EUR")),
    ('"Trimestre\\n1"', "TRIMESTRE 1",  # YAML's escape: a line break in the text
     ("newlines", "bordereau.object: line break or tab replaced by a space")),
])
def test_a_bordereau_object_changed_by_a_policy_is_noted(tmp_path, written, objet, note):
    path = _write(tmp_path, _edit((BORDEREAU_OBJECT, f"  bordereau_object: {{const: "
                                                     f"{written}}}\n")))
    result = export(path, EXAMPLES / "school-export.json", tmp_path / "out",
                    date(2026, 11, 23))
    text = result.files[0].path.read_text(encoding="iso-8859-1")
    found = re.findall(r'<Objet V="([^"]*)"/>', text)
    assert found == ([] if objet is None else [objet])
    where = f"{path}:{_line(path, 'bordereau_object:')}: output.bordereau_object"
    assert [(n.policy, n.detail) for n in result.notes if n.origin == where] == [note]


def test_a_bordereau_object_upper_cased_is_counted_in_the_case_note(tmp_path):
    """policies.case: upper upper-cases the bordereau object as a title's texts: the
    run's case note counts it with theirs."""
    path = _write(tmp_path, _edit((BORDEREAU_OBJECT,
                                   '  bordereau_object: {const: "Trimestre 1"}\n')))
    result = export(path, EXAMPLES / "school-export.json", tmp_path / "out",
                    date(2026, 11, 23))
    assert '<Objet V="TRIMESTRE 1"/>' in result.files[0].path.read_text(encoding="iso-8859-1")
    [case] = [n.detail for n in result.notes if n.policy == "case"]
    assert "bordereau.object ×1" in case.split(": ", 1)[1].split(", ")


@pytest.mark.parametrize(("civility", "couple"), [
    ("M. et Mme", True), ("Mr & Mme", True), ("M./Mme", True), ("MME ET M", True),
    ("Monsieur", False), ("Dr", False), ("Mademoiselle", False),
])
def test_a_couple_s_civility_missing_from_the_table_says_a_title_has_one_debtor(
        tmp_path, civility, couple):
    """'M. et Mme', frequent as a family's title, is no person's civility: adding it to
    codes.civility would give every couple one civility, whoever the payer named is."""
    import json

    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payer"]["title"] = civility
    inp = tmp_path / "export.json"
    inp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(PesgenError) as info:
        export(MAPPINGS / "villeneuve-sur-loing.yaml", inp, tmp_path / "out",
               date(2026, 11, 23))
    [problem] = info.value.problems
    said = (f"civility '{civility}' is not in codes.civility (add it to codes.civility: "
            f"'{civility}': the civility to send, as the table's other entries)"
            if civility != "Mademoiselle" else  # Hélios rejects it: sent as Madame
            "civility 'Mademoiselle' is not in codes.civility (add it to codes.civility as "
            "Madame: 'Mademoiselle': MME, since Hélios rejects Mademoiselle)")
    assert problem.message == said + (
        "; a couple's civility names two persons, and a title has one debtor: the export "
        "should give the civility of the payer it names (first name included)"
        if couple else "")


def test_a_code_missing_from_a_table_says_which_table_to_add_it_to(tmp_path):
    """A civility not in codes.civility, no INSEE code for 'BE', an unknown SEPA
    sequence 'RCUR' said what was missing, not where to add it (as 'add it to
    codes.activities' does for an activity)."""
    path = _write(tmp_path, _edit(('    "M.": M\n', ""), ('    BE: "131"\n', ""),
                                  ('RCUR: "03", ', "")))
    with pytest.raises(PesgenError) as info:
        export(path, EXAMPLES / "school-export.json", tmp_path / "out", date(2026, 11, 23))
    messages = {p.rule: p.message for p in info.value.problems}
    assert messages["codes.civility"] == ("civility 'M.' is not in codes.civility (add it to "
                                          "codes.civility: 'M.': the civility to send, as "
                                          "the table's other entries)")
    # the code's form said (a technician looking it up finds Belgium's 99131, which
    # the table refuses: it takes the last three digits)
    assert messages["codes.country"] == ("no INSEE country code for 'BE' in codes.countries "
                                         "(add it to codes.countries: BE: its INSEE country "
                                         "code, 3 digits: the last three of the 5-digit code "
                                         "the INSEE gives a country abroad, Belgium 99131: "
                                         '"131")')
    assert messages["codes.sepa-sequence"] == (
        "unknown SEPA sequence 'RCUR' (add it to codes.sepa_sequences, with its "
        "SequencePres: 01 OOFF, 02 FRST, 03 RCUR, 04 FNAL)")


@pytest.mark.parametrize(("old", "new", "said"), [
    ("invoice.number | digits", "invoice.number | digit",
     "expression syntax error: No filter named 'digit'. Did you mean 'digits'?"),
    ("  encoding: utf-8\n", "  encoding: windows1252\n",
     "unknown encoding 'windows1252'; did you mean 'cp1252'?"),
    ("  encoding: utf-8\n", "  encoding: win-1252\n",
     "unknown encoding 'win-1252'; did you mean 'cp1252'?"),
    ("  sepa_creditor_id: FR72ZZZ123456\n", "",
     "unknown key 'sepa_creditor_id' here: it belongs at collectivity.sepa_creditor_id "
     "(move it there)"),
], ids=["filter", "windows1252", "win-1252", "key-level"])
def test_a_mapping_typo_is_told_with_what_was_meant(tmp_path, old, new, said):
    """An unknown filter, an encoding Python spells otherwise, a key written at the
    wrong level: each refusal names what the mapping most likely means."""
    text = _edit((old, new))
    if not new:  # the key moved to the top level
        text += old.strip() + "\n"
    exc = _refused(_write(tmp_path, text))
    assert said in [p.message for p in exc.problems], exc.report()


def test_a_line_block_outside_bindings_is_told_where_it_belongs(tmp_path):
    start, end = TEXT.index("  line:\n"), TEXT.index("\ncodes:")
    block = TEXT[start:end]
    text = TEXT[:start] + TEXT[end:] + "\nline:\n" + "\n".join(
        ln[2:] for ln in block.splitlines()[1:]) + "\n"
    exc = _refused(_write(tmp_path, text))
    assert "unknown key 'line' here: it belongs at bindings.line (move it there)" in [
        p.message for p in exc.problems], exc.report()


def test_a_path_through_a_value_of_another_kind_raises_wrong_shape():
    """A key of a list or a text, an index of an object: a WrongShape naming the value's
    path (the build says it once per value); a missing or null value is None, as before."""
    from pesgen._jinja import WrongShape
    from pesgen.mapping import _json_getter

    get = _json_getter("payer.address.city")
    assert get({"payer": None}, {}) is None
    assert get({"payer": {"address": None}}, {}) is None
    with pytest.raises(WrongShape) as info:
        get({"payer": {"address": ["x"]}}, {})
    assert (info.value.parts, info.value.key, info.value.expected) == (
        ("payer", "address"), "city", "an object")
    get = _json_getter("lines[0].amount")
    assert get({"lines": []}, {}) is None
    with pytest.raises(WrongShape) as info:
        get({"lines": {"amount": 1}}, {})
    assert (info.value.parts, info.value.key, info.value.expected) == (("lines",), 0, "a list")
    with pytest.raises(WrongShape) as info:
        get({"lines": ["3"]}, {})
    assert (info.value.parts, info.value.key, info.value.expected) == (
        ("lines", 0), "amount", "an object")
    # an index written as its own step reads the same, never a key '' (read as missing)
    assert _json_getter("lines.[1].amount")({"lines": [{}, {"amount": 3}]}, {}) == 3


def test_a_recorded_mapping_reads_a_value_of_another_kind_as_it_was_read():
    """A run recorded before WrongShape is rebuilt as it was read: None, not a refusal."""
    from pesgen.mapping import load_recorded_mapping

    path = MAPPINGS / "villeneuve-sur-loing.yaml"
    mapping = load_recorded_mapping(path.read_text(encoding="utf-8"), str(path))
    record = {"payer": ["x"], "payment": "invoice"}
    scope = {"invoice": record}
    assert mapping.bindings["address"]["city"].evaluate(record, scope) is None
    assert mapping.bindings["payer"]["name"].evaluate(record, scope) is None
    assert mapping.bindings["payment"]["direct_debit"].evaluate(record, scope) is None


def test_a_schema_problem_anywhere_never_crashes_the_checks_of_the_other_parts(tmp_path):
    """Each key of the first two levels deleted or given a number, beside an unknown
    filter: refused, the filter's problem listed (unless its binding is in the part that
    failed), never another exception from a check reading a part that failed."""
    import copy

    import yaml

    base = yaml.safe_load(_edit(('debt_number: {expr: "invoice.number | digits"}',
                                 'debt_number: {expr: "invoice.number | digit"}')))
    paths = [(k,) for k in base] + [(k, j) for k, v in base.items() if isinstance(v, dict)
                                    for j in v]
    for path in paths:
        for value in (None, 123):
            data = copy.deepcopy(base)
            node = data
            for key in path[:-1]:
                node = node[key]
            if value is None:
                del node[path[-1]]
            else:
                node[path[-1]] = value
            m = _write(tmp_path, yaml.safe_dump(data, allow_unicode=True))
            exc = _refused(m)
            if path[:2] not in (("bindings",), ("bindings", "invoice")):
                assert "mapping.expr" in {p.rule for p in exc.problems}, (path, exc.report())


# ------------------------------------------- a failed section, and the others still checked


def test_a_duplicate_key_leaves_its_section_unchecked_and_the_others_checked(tmp_path):
    """The YAML loader's duplicate key fails its own section only (collectivity: its bad
    SIRET is not said again), and the other sections still get their semantic checks
    (policies' netted_label without negative_lines: net is listed in the same run)."""
    m = _write(tmp_path, _edit(
        ('  cod_col: "123"\n', '  cod_col: "123"\n  cod_col: "124"\n'),
        ('  siret: "21450999400015"', '  siret: "21450999400016"'),
        ("  negative_lines: net ", "  netted_label: append\n  negative_lines: refuse "),
    ))
    dup = 'cod_col: "124"'
    exc = _refused(m)
    got = sorted((p.rule, p.mapping) for p in exc.problems)
    assert got == [
        ("mapping.duplicate-key", f"{m}:{_line(m, dup)}: collectivity.cod_col"),
        ("mapping.policy", f"{m}:{_line(m, 'netted_label: append')}: policies.netted_label"),
    ]


def test_country_keys_one_by_case_with_one_code_load_with_two_codes_are_refused(tmp_path):
    """codes.countries is read upper-cased: BE and be giving the same code is one
    country read alike (loaded); giving two codes is refused at the second key."""
    same = load_mapping(_write(tmp_path, _edit(('    BE: "131"\n',
                                                '    BE: "131"\n    be: "131"\n'))))
    assert same.codes.countries["be"] == same.codes.countries["BE"] == "131"
    m = _write(tmp_path, _edit(('    BE: "131"\n', '    BE: "131"\n    be: "135"\n')),
               name="two.yaml")
    second = 'be: "135"'
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("codes.country", f"{m}:{_line(m, second)}: codes.countries.be")]
    assert "with two INSEE codes: 135 and 131" in exc.problems[0].message


def test_a_placeholder_left_is_said_once_not_also_by_the_section_s_checks(tmp_path):
    """A scaffold's TODO (a problem a rebuild would let through) still fails its section
    on a load: the SIRET left TODO is said as a placeholder, not also as a bad checksum."""
    m = _write(tmp_path, _edit(('  siret: "21450999400015"', "  siret: TODO")))
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.todo", f"{m}:{_line(m, 'siret: TODO')}: collectivity.siret")]


def test_a_key_known_at_three_places_is_told_all_three(tmp_path):
    """name under policies: the schema knows it at three places, each named, joined by
    'or' (a key known at more than three places gets the keys allowed where it is)."""
    m = _write(tmp_path, _edit(("  negative_lines: net ", "  name: x\n  negative_lines: net ")))
    exc = _refused(m)
    assert [(p.rule, p.mapping, p.message) for p in exc.problems] == [
        ("mapping.schema", f"{m}:{_line(m, 'name: x')}: policies.name",
         "unknown key 'name' here: it belongs at collectivity.name or bindings.payer.name or "
         "bindings.joint_payer.name (move it there)")]


# ------------------------------------------------------ Mademoiselle, however it is written


@pytest.mark.parametrize("written", ["Mlle.", "Mle", "Melle."])
def test_a_mademoiselle_default_civility_is_refused_at_its_key_however_written(tmp_path,
                                                                               written):
    """default_civility 'Mlle.' (or 'Mle') passed check-mapping, then the export refused
    each invoice without a civility (rule pes.civility, as the file's rule reads it): the
    mapping's own value is refused when it loads, at policies.default_civility."""
    m = _write(tmp_path, _edit(("  default_civility: MME", f'  default_civility: "{written}"')))
    exc = _refused(m)
    assert [(p.rule, p.mapping, p.message) for p in exc.problems] == [
        ("pes.civility", f"{m}:{_line(m, 'default_civility')}: policies.default_civility",
         "'Mademoiselle' is rejected by Hélios")]


@pytest.mark.parametrize("sent", ["Mlle.", "Mle", "MLLE"])
def test_a_civility_table_sending_mademoiselle_is_refused_at_its_key(tmp_path, sent):
    m = _write(tmp_path, _edit(('"Mlle": MME', f'"Mlle": "{sent}"')))
    exc = _refused(m)
    assert [(p.rule, p.mapping, p.message) for p in exc.problems] == [
        ("pes.civility", f"{m}:{_line(m, 'Mlle')}: codes.civility.Mlle",
         f"'Mlle' maps to '{sent}': Hélios rejects 'Mademoiselle' (map it to MME)")]


def test_a_placeholder_left_inside_a_list_is_named_at_its_index(tmp_path):
    """A TODO is found wherever it sits, a list's item included (a binding's default or
    const may be a list): named by its index, at its line."""
    m = _write(tmp_path, _edit(("    email: payer.email\n",
                                "    email: {path: payer.email, default: [x, TODO]}\n")))
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.todo", f"{m}:{_line(m, 'default: [x, TODO]')}: "
                         "bindings.payer.email.default[1]")]


def test_without_asap_delay_days_the_asap_date_is_the_run_date(tmp_path):
    """asap_delay_days defaults to 0 (the schema's description): leaving it out writes
    the file that asap_delay_days: 0 writes, DteAsp the run date."""
    m = _write(tmp_path, _edit(("  asap_delay_days: 0\n", "")))
    with_zero = export(MAPPING, EXAMPLES / "school-export.json", tmp_path / "zero",
                       date(2026, 11, 23))
    without = export(m, EXAMPLES / "school-export.json", tmp_path / "without",
                     date(2026, 11, 23))
    [left_out], [zero] = without.files, with_zero.files
    assert '<DteAsp V="2026-11-23"/>' in left_out.path.read_text(encoding="iso-8859-1")
    assert left_out.path.read_bytes() == zero.path.read_bytes()


# ------------------------------------------------- a constant its code table does not hold


def test_a_constant_its_code_table_lacks_is_refused_when_the_mapping_loads(tmp_path):
    """A {const} payer kind, activity, SEPA sequence or payment method is known without
    input: one its table lacks would refuse every invoice at preview or export, so
    check-mapping refuses it, naming the binding (it said OK before)."""
    m = _write(tmp_path, _edit(("    kind: payer.kind", "    kind: {const: Famille}"),
                               ("    activity: activity.code", "    activity: {const: fm-c1}"),
                               ("    sequence: payment.mandate.sequence",
                                "    sequence: {const: recurrent}"),
                               ("    direct_debit: payment.method",
                                "    direct_debit: {const: true}")))
    exc = _refused(m)
    assert [(p.rule, p.mapping) for p in exc.problems] == [
        ("mapping.const-code", f"{m}:{_line(m, 'kind: {const: Famille}')}: bindings.payer.kind"),
        ("mapping.const-code",
         f"{m}:{_line(m, 'direct_debit: {const')}: bindings.payment.direct_debit"),
        ("mapping.const-code", f"{m}:{_line(m, 'sequence: {const')}: bindings.payment.sequence"),
        ("mapping.const-code", f"{m}:{_line(m, 'activity: {const')}: bindings.line.activity")]
    kind, method, sequence, activity = (p.message for p in exc.problems)
    assert "codes.payer_kinds has no 'Famille'" in kind and "rule codes.payer-kind" in kind
    assert "codes.sepa_sequences has no 'recurrent'" in sequence
    assert "it is a yes/no value, not a text of codes.payment_methods" in method
    assert "a constant no direct debit is a method it says false: {const: invoice}" in method
    assert "did you mean 'FM-C1'?" in activity
    result = CliRunner().invoke(app, ["check-mapping", str(m)])
    assert result.exit_code == ExitCode.MAPPING
    assert "(rule mapping.const-code)" in result.output


def test_a_constant_its_code_table_holds_loads(tmp_path):
    m = _write(tmp_path, _edit(("    kind: payer.kind", "    kind: {const: person}"),
                               ("    sequence: payment.mandate.sequence",
                                "    sequence: {const: RCUR}"),
                               ("    direct_debit: payment.method",
                                "    direct_debit: {const: invoice}")))
    assert load_mapping(m).bindings["payer"]["kind"].kind == "const"


def test_a_recorded_mapping_with_such_a_constant_is_rebuilt_with_it_waived():
    """A run recorded before the check, whose constant SEPA sequence no invoice read (no
    direct debit in it), rendered nothing from it: its mapping loads to rebuild it."""
    from pesgen.mapping import load_recorded_mapping

    text = _edit(("    sequence: payment.mandate.sequence", "    sequence: {const: recurrent}"))
    mapping = load_recorded_mapping(text, "recorded.yaml")
    assert [p.rule for p in mapping.waived] == ["mapping.const-code"]
