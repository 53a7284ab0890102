"""What a CI job validating a new format bundle trips on: copies of the shipped bundles
in a folder of their own, checked with ``check-format``, ``check-mapping`` and
``formats`` (bundle review, 2026)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pesgen.errors import ExitCode
from pesgen.resources import data_dir

from .conftest import MAPPINGS, run_cli


def _copy(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """The shipped bundle ``name`` copied into a formats folder of its own."""
    fmts = tmp_path / "fmts"
    shutil.copytree(data_dir("templates") / name, fmts / name)
    return fmts, fmts / name


def _edit(path: Path, old: str, new: str, encoding: str = "utf-8") -> int:
    """Replace ``old`` (once, it must be there) by ``new``; the line it was on."""
    text = path.read_text(encoding=encoding)
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding=encoding)
    return text[:text.index(old)].count("\n") + 1


def _check(fmts: Path, name: str, *extra: str):
    return run_cli("check-format", name, "--formats-dir", fmts, *extra)


@pytest.mark.parametrize(("bundle", "old", "new", "close"), [
    # the rôle sequence: IdBord 1 again while the file says TypBord 06
    ("pes-ormc", '  typ_bord: "06"', '  typ_bords: "06"', "typ_bord"),
    ("cosoluce-corail", "  asap_edition_required: true", "  asap_edition_requird: true",
     "asap_edition_required"),
    # was blamed on the fixture's mapping
    ("pes-titres", '  asap_editions: ["04"]', '  asap_edition: ["04"]', "asap_editions"),
])
def test_an_unknown_key_under_defaults_is_refused_at_its_line(tmp_path, bundle, old, new,
                                                               close):
    """Unknown keys under defaults: were ignored: a misspelt typ_bord passed check-format
    and numbered the rôles in the sequence of the format's name (a duplicate IdBord at
    Hélios), a misspelt asap_edition_required was dropped."""
    fmts, folder = _copy(tmp_path, bundle)
    line = _edit(folder / "format.yaml", old, new)
    r = _check(fmts, bundle)
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    key = new.split(":")[0].strip()
    assert f"unknown key '{key}' (did you mean '{close}'?)" in r.stderr, r.stderr
    assert f"{folder / 'format.yaml'}:{line}: defaults.{key}]" in r.stderr, r.stderr
    assert "(rule format.schema)" in r.stderr


@pytest.mark.parametrize(("bundle", "old", "new", "key"), [
    # a flat file's layout left empty: was taken for a PES file without an XSD of its
    # own, 'give the DGFiP package to validate it' (exit 2, no line)
    ("bl-emagnus", "    layout: wtamc001.layout.yaml", '    layout: ""', "files[0].layout"),
    ("pes-ormc", "    xsd: pes-ormc/pes-ormc.xsd", "    xsd: ''", "files[0].xsd"),
    ("jvs-millesime", "  - template: jvs-millesime.xml.j2", "  - template: ''",
     "files[0].template"),
])
def test_an_empty_file_entry_of_format_yaml_is_refused_at_its_line(tmp_path, bundle, old,
                                                                    new, key):
    fmts, folder = _copy(tmp_path, bundle)
    line = _edit(folder / "format.yaml", old, new)
    r = _check(fmts, bundle)
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert f"'' should be non-empty [format {folder / 'format.yaml'}:{line}: {key}] " \
           "(rule format.schema)" in r.stderr, r.stderr
    assert "DGFiP package" not in r.stderr


def test_a_format_for_helios_needs_its_typ_bord_and_writes_it(tmp_path):
    """A bundle with the pes-ormc rules and no defaults.typ_bord numbered its rôles in
    the sequence of its name; one writing another TypBord than its sequence's was
    numbered in the wrong sequence. Both are refused, by format.yaml's line."""
    fmts, folder = _copy(tmp_path, "pes-ormc")
    source = folder / "format.yaml"
    text = source.read_text(encoding="utf-8")
    _edit(source, '  typ_bord: "06"   # IdBord (the rôle number) runs per exercise and '
          'TypBord\n', "  options: {}\n")
    r = _check(fmts, "pes-ormc")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert "need defaults.typ_bord" in r.stderr
    assert f"[format {source}:9: rules] (rule format.typ-bord)" in r.stderr
    listed = run_cli("formats", "--formats-dir", fmts).stdout
    assert re.search(r"^pes-ormc\s+BROKEN", listed, re.MULTILINE), listed
    source.write_text(text.replace('typ_bord: "06"', 'typ_bord: "01"'), encoding="utf-8")
    r = _check(fmts, "pes-ormc")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert "writes TypBord 06 but the IdBord sequence is keyed by defaults.typ_bord '01'" \
        in r.stderr, r.stderr
    assert f"[format {source}:11: defaults.typ_bord] (rule format.typ-bord)" in r.stderr


@pytest.mark.parametrize(("old", "new", "says"), [
    ("csv_record(size=27,", "csv_record(size=28,", "28"),
    ('21: j.civility,', '21: j.civility, 22: "X",', "col022"),
])
def test_the_joint_debtors_file_of_emagnus_is_checked_by_its_layout(tmp_path, old, new, says):
    """No shipped fixture had a joint debtor and expected/WTAMC001_TSOL.txt was empty:
    a column too many, or a value in a reserved column, passed check-format. The
    fixture now has one (invoice FA-2026-00104)."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    assert (folder / "expected" / "WTAMC001_TSOL.txt").read_bytes().startswith(
        b'"19";"4";"FAM-0051";"ROUSSEAU";"STEPHANE";')
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "format.fixture-empty" not in r.stderr, r.stderr
    _edit(folder / "wtamc001tsol.txt.j2", old, new)
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == ExitCode.OUTPUT, r.stdout + r.stderr
    assert "WTAMC001_TSOL.txt" in r.stderr and says in r.stderr, r.stderr


def test_a_file_the_fixture_leaves_empty_is_warned_of(tmp_path):
    """A file the fixture renders empty is checked by nothing: check-format says so."""
    import json

    fmts, folder = _copy(tmp_path, "bl-emagnus")
    source = folder / "fixture" / "input.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    for invoice in data["invoices"]:
        invoice.pop("joint_payer", None)
    source.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    r = _check(fmts, "bl-emagnus", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert ("warning: WTAMC001_TSOL.txt: the fixture gives it no record: its layout checks "
            "none of the fixture's values in it (give the fixture an invoice that fills it, "
            "then check-format --regen) "
            f"[format {folder / 'format.yaml'}:22: files[2]] (rule format.fixture-empty)"
            ) in r.stderr, r.stderr


_JVS_NAME = "JVS_{{ doc.collectivity.siret }}_"


@pytest.mark.parametrize(("new", "says"), [
    # was JVS_None_..., frozen into expected/ by --regen
    ("JVS_{{ doc.collectivity.poste_label }}_", "writes None: a value left unset"),
    # was "file name template failed: ..." with no line and no did-you-mean
    ("JVS_{{ doc.collectivity.sirett }}_", "has no attribute 'sirett': did you mean 'siret'?"),
])
def test_a_file_name_expression_is_checked_as_templates_are(tmp_path, new, says):
    fmts, folder = _copy(tmp_path, "jvs-millesime")
    source = folder / "format.yaml"
    line = _edit(source, _JVS_NAME, new)
    before = {p.name: p.read_bytes() for p in (folder / "expected").iterdir()}
    for extra in ([], ["--regen"]):
        r = _check(fmts, "jvs-millesime", *extra)
        assert r.exit_code == ExitCode.TEMPLATE, r.stdout + r.stderr
        assert says in r.stderr, r.stderr
        assert f"[template {source}:{line}: files[0].name] (rule template)" in r.stderr
        # --regen would have written expected/: it says nothing was; a check writes nothing
        assert r.stderr.splitlines()[-1].endswith(
            "; nothing was written." if extra else " problem(s)."), r.stderr
    assert {p.name: p.read_bytes() for p in (folder / "expected").iterdir()} == before


def test_two_files_of_a_bordereau_named_alike_are_named_by_their_lines(tmp_path):
    """Two files[] entries giving the same name were said to need names that 'differ
    per bordereau' (they are of the same bordereau), naming no line."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    source = folder / "format.yaml"
    _edit(source, 'name: "WTAMC001AS.txt"', 'name: "WTAMC001.txt"')
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == ExitCode.TEMPLATE, r.stdout + r.stderr
    assert "two files of the same bordereau would be named WTAMC001.txt" in r.stderr
    assert "differ per bordereau" not in r.stderr
    assert f"[format {source}:17: files[0].name] (rule format.file-name)" in r.stderr
    assert f"[format {source}:20: files[1].name] (rule format.file-name)" in r.stderr


def test_a_template_or_layout_outside_the_bundle_is_refused_when_it_loads(tmp_path):
    """format.yaml's template ../outside.txt.j2 or an absolute layout loaded (formats
    listed the bundle healthy), then failed as a template error with no line, or said
    'not found' of a file that exists."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    shutil.copy(folder / "wtamc001as.txt.j2", fmts / "outside.txt.j2")
    shutil.copy(folder / "wtamc001tsol.layout.yaml", tmp_path / "outside.layout.yaml")
    source = folder / "format.yaml"
    _edit(source, "template: wtamc001as.txt.j2", "template: ../outside.txt.j2")
    _edit(source, "layout: wtamc001tsol.layout.yaml",
          f"layout: {tmp_path / 'outside.layout.yaml'}")
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert ("template '../outside.txt.j2' is outside the bundle: give a path in the "
            f"bundle's folder [format {source}:19: files[1].template] (rule format.file)"
            ) in r.stderr, r.stderr
    assert f"is outside the bundle: give a path in the bundle's folder (or under the shipped " \
        f"schemas/) [format {source}:24: files[2].layout]" in r.stderr, r.stderr
    listed = run_cli("formats", "--formats-dir", fmts)
    assert re.search(r"^bl-emagnus\s+BROKEN", listed.stdout, re.MULTILINE), listed.stdout
    assert listed.exit_code == ExitCode.MAPPING


def test_a_path_outside_the_bundle_is_its_files_one_problem(tmp_path):
    """A template named through '../schemas/' is outside the bundle (only an XSD or a
    layout may be taken from the shipped schemas/, where a layout so named is looked
    for): that one problem, the file's other paths not looked for (no 'not found' of
    the template nor of its layout). An XSD at an absolute path is outside too."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    source = folder / "format.yaml"
    _edit(source, "template: wtamc001as.txt.j2", "template: ../schemas/outside.txt.j2")
    _edit(source, "layout: wtamc001as.layout.yaml", "layout: ../schemas/missing.layout.yaml")
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    said = [line for line in r.stderr.splitlines() if "(rule format.file)" in line]
    assert said == [
        "  - template '../schemas/outside.txt.j2' is outside the bundle: give a path in "
        f"the bundle's folder [format {source}:19: files[1].template] (rule format.file)"
    ], r.stderr
    fmts, folder = _copy(tmp_path / "xsd", "pes-ormc")
    source = folder / "format.yaml"
    _edit(source, "xsd: pes-ormc/pes-ormc.xsd", f"xsd: {tmp_path / 'pes-ormc.xsd'}")
    r = _check(fmts, "pes-ormc")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert f"xsd '{tmp_path / 'pes-ormc.xsd'}' is outside the bundle" in r.stderr, r.stderr
    assert "not found" not in r.stderr, r.stderr


def test_a_template_and_a_layout_not_found_name_their_rule_and_closest_file(tmp_path):
    """A template and a layout format.yaml names that are not in the bundle are each a
    format.file problem at its line, with the bundle's file of that kind whose name is
    closest (a layout's among its .yaml files)."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    source = folder / "format.yaml"
    _edit(source, "template: wtamc001as.txt.j2", "template: wtamc001az.txt.j2")
    _edit(source, "layout: wtamc001as.layout.yaml", "layout: wtamc001az.layout.yaml")
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert ("template 'wtamc001az.txt.j2' not found in the bundle's folder (did you mean "
            f"'wtamc001as.txt.j2'?) [format {source}:19: files[1].template] "
            "(rule format.file)") in r.stderr, r.stderr
    assert ("layout 'wtamc001az.layout.yaml' not found in the bundle's folder nor in "
            "schemas/ (did you mean 'wtamc001as.layout.yaml'?) "
            f"[format {source}:21: files[1].layout] (rule format.file)") in r.stderr, r.stderr


def test_a_files_list_the_schema_refuses_is_not_looked_for_files(tmp_path):
    """A files list the schema refuses (here an entry's when_empty) is said alone: its
    files are not looked for until it is well formed (a missing template is said then,
    not now)."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    source = folder / "format.yaml"
    _edit(source, "template: wtamc001as.txt.j2", "template: missing.txt.j2")
    _edit(source, '    name: "WTAMC001AS.txt"\n',
          '    name: "WTAMC001AS.txt"\n    when_empty: sometimes\n')
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert "when_empty" in r.stderr and "(rule format.schema)" in r.stderr, r.stderr
    assert "not found" not in r.stderr, r.stderr


def test_formats_fails_on_a_broken_bundle_and_says_how_many_problems_it_left_out(tmp_path):
    """formats exited 0 with a BROKEN bundle, and cut its problem list at 10 silently."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    source = folder / "format.yaml"
    text = source.read_text(encoding="utf-8")
    limits = "".join(f"  line.labe{i}: {{max: 38}}\n" for i in range(12))
    source.write_text(text.replace("fields:\n", "fields:\n" + limits, 1), encoding="utf-8")
    r = run_cli("formats", "--formats-dir", fmts)
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert re.search(r"^cosoluce-corail\s+BROKEN", r.stdout, re.MULTILINE), r.stdout
    assert "    … and 2 more (pesgen check-format NAME lists them all)" in r.stdout, r.stdout
    assert "1 format bundle(s) BROKEN: cosoluce-corail" in r.stderr
    # ten problems: all listed, no '… and 0 more'
    limits = "".join(f"  line.labe{i}: {{max: 38}}\n" for i in range(10))
    source.write_text(text.replace("fields:\n", "fields:\n" + limits, 1), encoding="utf-8")
    r = run_cli("formats", "--formats-dir", fmts)
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert "more (pesgen check-format" not in r.stdout, r.stdout
    assert sum(ln.startswith("    - ") and "line.labe" in ln
               for ln in r.stdout.splitlines()) == 10, r.stdout


def test_git_never_converts_the_line_endings_of_golden_files():
    """Without .gitattributes, core.autocrlf=true checked LF expected files out as CRLF
    and check-format failed on every line."""
    import subprocess

    root = data_dir("templates").parent
    rules = (root / ".gitattributes").read_text(encoding="utf-8").splitlines()
    assert "templates/*/expected/** -text" in rules
    assert "tests/golden/** -text" in rules
    if shutil.which("git") and (root / ".git").exists():
        said = subprocess.run(["git", "check-attr", "text", "--",
                               "templates/bl-emagnus/expected/WTAMC001.txt"], cwd=root,
                              capture_output=True, text=True, check=True).stdout
        assert said.strip().endswith("text: unset"), said
    assert "formats/*/expected/** -text" in (root / "docs" / "onboarding.md").read_text(
        encoding="utf-8")


@pytest.mark.parametrize("kind", ["xml", "csv", "fixed"])
def test_the_scaffold_names_the_budget_and_tells_to_set_the_emitter(tmp_path, kind):
    """The scaffold's file name left out the budget (two budgets' IdBord 1 got the same
    name), and its fixture README did not say to set output.emitter.adresse (without
    it the golden files hold 'pesgen <version>' and break at each release)."""
    from types import SimpleNamespace

    from pesgen._jinja import string_environment
    from pesgen.formats import load_format
    from pesgen.scaffold import new_format

    folder = new_format("acme-compta", kind, tmp_path)
    [spec] = load_format(folder).files

    def name(cod_bud: str) -> str:
        doc = SimpleNamespace(collectivity=SimpleNamespace(siret="21450999400015",
                                                           cod_bud=cod_bud),
                              bordereau=SimpleNamespace(exercise=2026, number=1))
        return string_environment().from_string(spec.name).render(doc=doc)

    assert name("00").startswith("acme-compta_21450999400015_2026_0000001.")
    assert name("01").startswith("acme-compta_21450999400015_B01_2026_0000001.")
    readme = (folder / "fixture" / "README.md").read_text(encoding="utf-8")
    assert "output.emitter.adresse" in readme


def test_the_scaffold_fixture_readme_says_what_check_format_checks_and_its_command(
        tmp_path):
    """The scaffold's fixture README said a file or branch the fixture leaves empty 'is
    checked by no layout or XSD', untrue since check-format checks the files rendered
    on check-mapping's sample titles against them (fmt62), and gave `pesgen
    check-format <name>` where the bundle's README gives its name and --formats-dir;
    expected/'s README the same placeholder. Both give the command to run now, and the
    fixture's says what an empty branch is checked by."""
    from pesgen.scaffold import new_format

    folder = new_format("acme-compta", "csv", tmp_path / "formats")
    fixture = (folder / "fixture" / "README.md").read_text(encoding="utf-8")
    expected = (folder / "expected" / "README.md").read_text(encoding="utf-8")
    formats = tmp_path / "formats"
    assert f"`pesgen check-format acme-compta\n--formats-dir {formats}` renders" in fixture
    assert "checked by no layout" not in fixture
    assert ("is compared with nothing in `expected/`, and its layout or\nXSD checks it only "
            "on check-mapping's sample titles, whose values are made up") in fixture
    assert "<name>" not in fixture + expected
    assert f"`pesgen check-format acme-compta --formats-dir {formats} --regen`" in expected


def test_hidden_files_of_expected_are_neither_compared_nor_removed(tmp_path):
    """A .gitkeep or .DS_Store in expected/ failed the comparison ('expected but not
    produced'), and --regen deleted it without a word."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    expected = folder / "expected"
    (expected / ".gitkeep").write_bytes(b"")
    (expected / ".DS_Store").write_bytes(b"\x00\x01")
    r = _check(fmts, "cosoluce-corail")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert ".gitkeep" not in r.stdout + r.stderr
    r = _check(fmts, "cosoluce-corail", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert (expected / ".gitkeep").read_bytes() == b""
    assert (expected / ".DS_Store").read_bytes() == b"\x00\x01"
    assert "removed" not in r.stdout, r.stdout


def test_regen_says_each_file_it_removes_and_removes_no_folder(tmp_path):
    """--regen deleted every file and subfolder of expected/ it did not write (an
    author's notes, an archive of old outputs) without saying so."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    expected = folder / "expected"
    (expected / "notes.txt").write_text("what the publisher said\n", encoding="utf-8")
    (expected / "old").mkdir()
    (expected / "old" / "v1.xml").write_text("<old/>\n", encoding="utf-8")
    said = (f"warning: old/ is a folder: check-format renders files only, so it compares "
            f"nothing in it and --regen does not remove it: delete it, or move it out of "
            f"expected/, if it is stale [bundle {expected / 'old'}] "
            "(rule format.expected-folder)")
    r = _check(fmts, "cosoluce-corail")
    assert r.exit_code == ExitCode.OUTPUT, r.stdout + r.stderr
    assert "notes.txt: expected but not produced" in r.stdout, r.stdout
    assert said in r.stderr, r.stderr
    r = _check(fmts, "cosoluce-corail", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert f"removed {expected / 'notes.txt'}: the fixture renders no such file\n" \
        in r.stdout, r.stdout
    assert said in r.stderr, r.stderr
    assert not (expected / "notes.txt").exists()
    assert (expected / "old" / "v1.xml").read_text(encoding="utf-8") == "<old/>\n"
    assert sorted(p.name for p in expected.iterdir()) == [
        "CORAIL_21450999400015_2026_0000001.xml", "README.md", "old"]


def test_expected_files_a_changed_layout_breaks_name_their_folder_the_diff_and_regen(
        tmp_path):
    """A column added to a layout and its template (the publisher's new version) left
    expected/ behind: check-format said only 'the expected files are invalid', naming
    each file by its name alone, no diff and no next step. It names the expected
    folder, prints the diff of what the fixture renders now, and gives the --regen
    command (with its --formats-dir) that writes them again once the change is
    intended; --regen then passes."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    _edit(folder / "wtamc001tsol.layout.yaml", "      - {name: DatNaisTiers, type: date}\n",
          "      - {name: DatNaisTiers, type: date}\n      - {name: Pays, type: text}\n")
    _edit(folder / "wtamc001tsol.txt.j2", "} | csv_record(size=27,",
          '28: "FR"} | csv_record(size=28,')
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert r.stdout.startswith("--- expected/WTAMC001_TSOL.txt\n+++ produced/"), r.stdout
    assert '"17/04/1979";"FR"' in r.stdout
    assert r.stderr.startswith(
        f"error: bl-emagnus: the expected files in {folder / 'expected'} break the bundle's "
        "layout or XSD; the fixture renders differently from them (1 file(s), the diff "
        "above): once a change of the layout, XSD or templates is intended, `pesgen "
        f"check-format bl-emagnus --formats-dir {fmts} --regen` writes them again from "
        "the fixture (review them)\n  - WTAMC001_TSOL.txt:1: record 'tiers-solidaire' "
        "has 27 fields, the layout has 28: missing column Pays (#28) (rule "
        "layout.columns)\n"), r.stderr
    assert _check(fmts, "bl-emagnus", "--regen").exit_code == 0
    assert _check(fmts, "bl-emagnus").exit_code == 0


def test_a_text_a_template_writes_narrower_than_its_limit_is_warned_of(tmp_path):
    """A template writing a text field through fixed(N) (zfill(N)) that format.yaml
    does not limit to N characters or fewer passed check-format without a word: a value
    longer than N passed the build's length rule and the mapping's policies and was
    refused by the template at export, by invoice (the fixed-width scaffold's
    complement, fixed(38), unlimited). check-format warns of each, naming the template
    line and format.yaml's fields line; a field limited to N or fewer, or a value the
    check cannot follow (a macro's parameter, a loop not over t.lines), is not."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    source = folder / "format.yaml"
    template = folder / "corail.xml.j2"
    at = _edit(template, '<TypeSerieBordereau V="N"/>',
               '<TypeSerieBordereau V="N"/><!--{{ d.first_name | fixed(30) }}'
               '{{ t.debtor.name | fixed(38) }}{{ m.rum | fixed(40) if m else "" }}'
               '{% for ln in t.lines %}{{ ln.label | fixed(150) }}{% endfor %}'
               '{% for x in [t.debtor] %}{{ x.first_name | fixed(37) }}{% endfor %}'
               '{{ doc.bordereau.object | zfill(170) if doc.bordereau.object else "" }}-->')
    r = _check(fmts, "cosoluce-corail", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    lines = source.read_text(encoding="utf-8").splitlines()
    first = lines.index("  debtor.first_name: {max: 38}") + 1
    label = lines.index("  line.label: {max: 200}") + 1
    fields = lines.index("fields:") + 1
    tail = ("passes the length rule and the mapping's policies (name_overflow, "
            "text_overflow) and is refused by the template at export, by invoice; give it "
            "{max: N} (or fewer) under fields")
    said = [
        (f"{template}:{at}: t.debtor.first_name | fixed(30) writes debtor.first_name, "
         "which format.yaml limits to 38 characters: a value of more than 30 characters",
         f"[format {source}:{first}: fields.debtor.first_name]", "30"),
        (f"{template}:{at}: t.lines.*.label | fixed(150) writes line.label, which "
         "format.yaml limits to 200 characters: a value of more than 150 characters",
         f"[format {source}:{label}: fields.line.label]", "150"),
        (f"{template}:{at}: doc.bordereau.object | zfill(170) writes bordereau.object, "
         "which format.yaml does not limit: a value of more than 170 characters",
         f"[format {source}:{fields}: fields]", "170")]
    for head, where, width in said:
        assert (f"warning: {head} {tail.replace('N', width)} {where} "
                "(rule format.field-width)") in r.stderr, r.stderr
    assert r.stderr.count("format.field-width") == 3, r.stderr  # name, rum: fit; x: not followed


def _city_line(mapping: Path) -> int:
    """The line of a mapping's bindings.address.city."""
    lines = mapping.read_text(encoding="utf-8").splitlines()
    start = lines.index("  address:")
    return next(i for i, line in enumerate(lines[start:], start + 1)
                if line.startswith("    city:"))


def test_a_limit_wider_than_the_layout_s_column_is_warned_of(tmp_path):
    """fmt63's walk-through: format.yaml's fields.debtor.name {max: 50} over a layout
    whose Nom takes 38 passed check-mapping and check-format without a word; a name of
    39 to 50 characters passed the length rule, so name_overflow never split it, and the
    export refused it at the layout (layout.length, exit 6). Both commands now warn, as
    of a fixed(N) narrower than the limit (format.field-width), naming the mapping's
    binding, the layout's column and format.yaml's line; a limit the column holds is
    not warned of."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    source = folder / "format.yaml"
    at = _edit(source, "  address.city: {max: 50}", "  address.city: {max: 60}")
    layout = folder / "wtamc001.layout.yaml"
    column = next(i for i, line in enumerate(
        layout.read_text(encoding="utf-8").splitlines(), 1) if "{name: Ville," in line)
    tail = ("which takes at most 50 characters (layout.length), but format.yaml limits "
            "address.city to 60: a value of 51 to 60 characters passes the length rule, so "
            "the mapping's policies.text_overflow never applies to it, and is refused by "
            "the layout at export, by invoice (exit 6); give it {max: 50} (or fewer) under "
            f"fields [format {source}:{at}: fields.address.city] (rule format.field-width)")
    into = (f"is written into record 'ecriture', column Ville (#16) ({layout}:{column}: "
            "records[0].columns[15]), ")
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == 0, r.stdout + r.stderr
    fixture = folder / "fixture" / "mapping.yaml"
    bound = _city_line(fixture)
    assert (f"warning: t.debtor.address.city ({fixture}:{bound}: bindings.address.city) "
            f"{into}{tail}") in r.stderr, r.stderr
    mapping = Path(__file__).parent.parent / "mappings" / "villeneuve-sur-loing-emagnus.yaml"
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts)
    assert r.exit_code == 0, r.stdout + r.stderr
    bound = _city_line(mapping)
    assert (f"warning: t.debtor.address.city ({mapping}:{bound}: bindings.address.city) "
            f"{into}{tail}") in r.stderr, r.stderr
    assert "debtor.name to" not in r.stderr  # 50 in a column of 50: fits
    _edit(source, "  address.city: {max: 60}", "  address.city: {max: 50}")
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts)
    assert r.exit_code == 0 and "format.field-width" not in r.stderr, r.stderr


def test_a_column_joining_fields_their_limits_overflow_is_warned_of(tmp_path):
    """e.magnus writes the name complement after the name in Designation1 (50): a
    mapping binding payer.complement_name passed check-mapping and check-format without
    a word, format.yaml letting each be 50 characters (format.field-width checked a
    field alone in its column); a name of 30 and a complement of 30 passed the length
    rule, no policy cut them joined, and the export refused the invoice at the layout.
    Both commands now warn, naming the column, both bindings with their limits and the
    length the joined value reaches; limits that fit together are not warned of."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    source = folder / "format.yaml"
    name_at = next(i for i, line in enumerate(
        source.read_text(encoding="utf-8").splitlines(), 1)
        if line == "  debtor.name: {max: 50}")
    layout = folder / "wtamc001.layout.yaml"
    column = next(i for i, line in enumerate(
        layout.read_text(encoding="utf-8").splitlines(), 1) if "{name: Designation1," in line)
    fixture = folder / "fixture" / "mapping.yaml"
    bound = _edit(fixture, "    first_name: payer.first_name\n",
                  "    first_name: payer.first_name\n    complement_name: payer.first_name\n") + 1
    name = next(i for i, line in enumerate(fixture.read_text(encoding="utf-8").splitlines(), 1)
                if line.startswith("    name: ") and i < bound)
    said = (f"warning: record 'ecriture', column Designation1 (#10) ({layout}:{column}: "
            "records[0].columns[9]) takes at most 50 characters (layout.length), and "
            "wtamc001.txt.j2 writes 2 bound fields joined into it: payer.name "
            f"({fixture}:{name}: bindings.payer.name), debtor.name {{max: 50}}; "
            f"payer.complement_name ({fixture}:{bound}: bindings.payer.complement_name), "
            "debtor.complement_name {max: 50}: at their limits and 1 character(s) of the "
            "template's own, the value reaches 101 characters. Each field passes the length "
            "rule at its own limit and no policy cuts the joined value (text_overflow and "
            "the split policies cut a field to its own limit), so a value of 51 to 101 "
            "characters is refused by the layout at export, by invoice (exit 6); lower their "
            "limits under fields so that they fit 50 together, or bind fewer of them "
            f"[format {source}:{name_at}: fields.debtor.name] (rule format.field-width)")
    r = _check(fmts, "bl-emagnus", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert said in r.stderr, r.stderr
    r = run_cli("check-mapping", fixture, "--formats-dir", fmts)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert said in r.stderr, r.stderr
    # 30 + 1 + 19: the joined value fits its column
    _edit(source, "  debtor.name: {max: 50}", "  debtor.name: {max: 30}")
    _edit(source, "  debtor.complement_name: {max: 50}", "  debtor.complement_name: {max: 19}")
    r = run_cli("check-mapping", fixture, "--formats-dir", fmts)
    assert r.exit_code == 0 and "joined into" not in r.stderr, r.stderr
    _edit(source, "  debtor.complement_name: {max: 19}", "  debtor.complement_name: {max: 20}")
    r = run_cli("check-mapping", fixture, "--formats-dir", fmts)
    assert "the value reaches 51 characters" in r.stderr, r.stderr


def test_an_xml_element_joining_fields_their_limits_overflow_is_warned_of(tmp_path):
    """Corail writes RaisonSociale from the name, the name complement and the first
    name (corail.xml.j2), at most 77 characters (corail.xsd V_Texte77); format.yaml lets
    each be 38: a mapping binding the complement passed check-mapping and check-format
    without a word (format.field-width checked joined layout columns only), and an
    invoice whose three values passed the length rule was refused by corail.xsd at
    export. Both commands now warn, naming the element, where the XSD declares it, each
    binding with its limit and the length reached; limits that fit are not warned of,
    nor the shipped mapping (name and first name: 38 + 1 + 38), whose sample's own name
    complement (name_overflow: split fills one) is not counted as the template's text."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    source = folder / "format.yaml"
    name_at = next(i for i, line in enumerate(
        source.read_text(encoding="utf-8").splitlines(), 1)
        if line == "  debtor.name: {max: 38}")
    xsd = folder / "corail.xsd"
    declared = next(i for i, line in enumerate(xsd.read_text(encoding="utf-8").splitlines(), 1)
                    if '<xs:element name="RaisonSociale" ' in line)
    fixture = folder / "fixture" / "mapping.yaml"
    bound = _edit(fixture, "    first_name: payer.first_name\n",
                  "    first_name: payer.first_name\n    complement_name: payer.first_name\n") + 1
    name = next(i for i, line in enumerate(fixture.read_text(encoding="utf-8").splitlines(), 1)
                if line.startswith("    name: ") and i < bound)
    said = ("warning: corail.xsd: /ImportCosoluce/TypePieceImport/Piece/InfoPiece/Tiers/"
            f"InfoTiers/RaisonSociale/@V (declared at {xsd}:{declared}) takes at most 77 "
            "characters (its maxLength), and corail.xml.j2 writes 3 bound fields joined into "
            f"it: payer.name ({fixture}:{name}: bindings.payer.name), debtor.name {{max: 38}}; "
            f"payer.complement_name ({fixture}:{bound}: bindings.payer.complement_name), "
            "debtor.complement_name {max: 38}; payer.first_name "
            f"({fixture}:{bound - 1}: bindings.payer.first_name), debtor.first_name "
            "{max: 38}: at their limits and 2 character(s) of the template's own, the value "
            "reaches 116 characters. Each field passes the length rule at its own limit and "
            "no policy cuts the joined value (text_overflow and the split policies cut a "
            "field to its own limit), so a value of 78 to 116 characters is refused by "
            "corail.xsd at export (xsd.bundle); lower their limits under fields so that they "
            f"fit 77 together, or bind fewer of them [format {source}:{name_at}: "
            "fields.debtor.name] (rule format.field-width)")
    r = _check(fmts, "cosoluce-corail", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert said in " ".join(r.stderr.split()), r.stderr
    r = run_cli("check-mapping", fixture, "--formats-dir", fmts)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert said in " ".join(r.stderr.split()), r.stderr
    # 25 + 1 + 25 + 1 + 25: the joined value fits the element
    for field in ("name", "complement_name", "first_name"):
        _edit(source, f"  debtor.{field}: {{max: 38}}", f"  debtor.{field}: {{max: 25}}")
    r = run_cli("check-mapping", fixture, "--formats-dir", fmts)
    assert r.exit_code == 0 and "joined into" not in r.stderr, r.stderr
    _edit(source, "  debtor.first_name: {max: 25}", "  debtor.first_name: {max: 26}")
    r = run_cli("check-mapping", fixture, "--formats-dir", fmts)
    assert "the value reaches 78 characters" in r.stderr, r.stderr
    r = run_cli("check-mapping", MAPPINGS / "villeneuve-sur-loing-corail.yaml")
    assert r.exit_code == 0 and "joined into" not in r.stderr, r.stderr


def test_check_format_warns_of_a_civility_bound_without_a_table_into_a_listed_column(
        tmp_path):
    """e.magnus' Civilite listing the civilities it takes, the fixture's mapping binding
    the civility without a codes.civility table: check-mapping warned (fmt65,
    mapping.civility-values) but check-format, which holds that mapping, said nothing,
    the fixture's civilities all being listed; an export holding another was refused
    by the layout, by invoice. check-format now warns as check-mapping does."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    layout = folder / "wtamc001.layout.yaml"
    column = _edit(layout, "      - {name: Civilite, type: text, length: 32}  # 93",
                   '      - {name: Civilite, type: text, length: 32, '
                   'values: [M, MME, "M.", Mme]}  # 93')
    fixture = folder / "fixture" / "mapping.yaml"
    _edit(fixture, '  civility:\n    "Mme": MME\n    "M.": M\n    "M": M\n'
          '    "Mlle": MME    # Hélios rejects Mademoiselle\n', "")
    bound = next(i for i, line in enumerate(fixture.read_text(encoding="utf-8").splitlines(), 1)
                 if line == "    civility: payer.title")
    _edit(folder / "fixture" / "input.json", '"title": "Mlle"', '"title": "Mme"')
    said = ("warning: bindings.payer.civility is written as it is into WTAMC001.txt, record "
            f"'ecriture', column Civilite (#93) ({layout}:{column}: records[0].columns[92]), "
            "which takes only 'M', 'MME', 'M.', 'Mme' (layout.values): without a "
            "codes.civility table")
    where = (f"[mapping {fixture}:{bound}: bindings.payer.civility] "
             "(rule mapping.civility-values)")
    r = _check(fmts, "bl-emagnus", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    [line] = [ln for ln in r.stderr.splitlines() if "mapping.civility-values" in ln]
    assert line.startswith(said) and line.endswith(where), line
    # its examples of civilities refused are ones the column does not take (it said
    # 'Mme' and 'M.', which this column lists)
    assert "an invoice whose civility is another ('Madame', 'Monsieur') is refused" in line, line
    assert "one of those (e.g. 'Madame': MME)" in line, line
    r = run_cli("check-mapping", fixture, "--formats-dir", fmts)
    assert r.exit_code == 0 and line in r.stderr, r.stderr


def test_a_text_written_narrower_names_the_template_as_typed(tmp_path, monkeypatch):
    """check-format's format.field-width named the template by its name in the bundle
    (corail.xml.j2:56), a file the technician could not open from where the command ran,
    while its format.yaml place and every template error of the bundle name it by the
    --formats-dir folder as given (fmts/cosoluce-corail/corail.xml.j2:56)."""
    monkeypatch.chdir(tmp_path)
    _fmts, folder = _copy(tmp_path, "cosoluce-corail")
    at = _edit(folder / "corail.xml.j2", '<TypeSerieBordereau V="N"/>',
               '<TypeSerieBordereau V="N"/><!--{{ d.first_name | fixed(30) }}-->')
    lines = (folder / "format.yaml").read_text(encoding="utf-8").splitlines()
    first = lines.index("  debtor.first_name: {max: 38}") + 1
    r = run_cli("check-format", "cosoluce-corail", "--formats-dir", "fmts", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert (f"warning: fmts/cosoluce-corail/corail.xml.j2:{at}: t.debtor.first_name | "
            "fixed(30) writes debtor.first_name, which format.yaml limits to 38 "
            "characters: ") in r.stderr, r.stderr
    assert (f"[format fmts/cosoluce-corail/format.yaml:{first}: fields.debtor.first_name] "
            "(rule format.field-width)") in r.stderr, r.stderr


def test_a_narrow_width_is_warned_of_with_the_refusal_it_explains(tmp_path):
    """A fixed(N) narrower than format.yaml's limit that refused a fixture's value
    failed check-format with the template's refusal alone ('a text of 31 characters is
    longer than 30'), the warning that says why (format.field-width: the limit is 40,
    the template writes 30) left out, as every warning of the templates' syntax was
    when rendering failed: it is said with the refusal, in text and in JSON."""
    import json

    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    at = _edit(folder / "corail.xml.j2", '<TypeSerieBordereau V="N"/>',
               '<TypeSerieBordereau V="N"/><!--{{ t.debtor.name | fixed(3) }}-->')
    r = _check(fmts, "cosoluce-corail")
    assert r.exit_code == ExitCode.TEMPLATE, r.stdout + r.stderr
    said = (f"warning: {folder / 'corail.xml.j2'}:{at}: t.debtor.name | fixed(3) writes "
            "debtor.name, which format.yaml limits to ")
    assert said in r.stderr and "(rule format.field-width)" in r.stderr, r.stderr
    assert "is longer than 3 characters" in r.stderr, r.stderr
    r = _check(fmts, "cosoluce-corail", "--format", "json")
    assert r.exit_code == ExitCode.TEMPLATE, r.stdout
    [bundle] = json.loads(r.stdout)["bundles"]
    assert [w["rule"] for w in bundle["warnings"]] == ["format.field-width"], bundle
    assert [p["rule"] for p in bundle["problems"]] == ["template"], bundle


def test_a_dead_template_and_an_unread_option_are_warned_of(tmp_path):
    """A template file no files[] entry names and no template includes, and an option
    under defaults.options no template reads, passed check-format without a word: an
    author fixing the dead copy, or a mapping setting the option, changed nothing."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    source = folder / "format.yaml"
    template = folder / "corail.xml.j2"
    # a macro library the template imports is read; a copy left behind is not
    (folder / "lib").mkdir()
    (folder / "lib" / "macros.j2").write_text("{% macro x() %}{% endmacro %}\n",
                                              encoding="utf-8")
    _edit(template, "{% macro head(doc) -%}",
          '{% import "lib/macros.j2" as lib %}\n{% macro head(doc) -%}')
    shutil.copy(template, folder / "corail-old.xml.j2")
    line = _edit(source, '    train: "Facturation"       # InfoPiece/TrainPiece\n',
                 '    train: "Facturation"       # InfoPiece/TrainPiece\n'
                 '    service: "ECOLE"\n') + 1
    r = _check(fmts, "cosoluce-corail")
    assert r.exit_code == 0, r.stdout + r.stderr
    files_line = (source.read_text(encoding="utf-8").splitlines().index("files:") + 1)
    assert ("warning: corail-old.xml.j2: no files[] entry names this template and no "
            "template of the bundle includes, imports or extends it: it renders nothing; "
            f"delete it, or name it in files[] [format {source}:{files_line}: files] "
            "(rule format.dead-template)") in r.stderr, r.stderr
    assert ("warning: option service is read by no template of the bundle nor by a file "
            "name (doc.options.service): a mapping setting output.options.service changes "
            "nothing; read it in a template, or remove it "
            f"[format {source}:{line}: defaults.options.service] "
            "(rule format.unread-option)") in r.stderr, r.stderr
    assert "macros.j2" not in r.stderr and "option origine" not in r.stderr
    assert r.stderr.count("warning:") == 2, r.stderr
    # read as an item, or in a file name: read
    _edit(template, '<Origine V="{{ doc.options.origine }}"/>',
          '<Origine V="{{ doc.options.origine }}{{ doc.options[\'service\'] }}"/>')
    r = _check(fmts, "cosoluce-corail", "--regen")
    assert r.exit_code == 0 and "format.unread-option" not in r.stderr, r.stderr
    assert r.stdout.splitlines()[-1] == ("cosoluce-corail: expected/ regenerated; the fixture "
                                         f"renders expected/ byte for byte ({folder})"), r.stdout


def test_a_template_included_by_a_computed_name_silences_the_dead_template_warning(tmp_path):
    """Which templates a name built while rendering includes is not known before
    rendering: no template is said dead then (docs/onboarding.md says the limit)."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    template = folder / "corail.xml.j2"
    (folder / "part-a.j2").write_text("", encoding="utf-8")
    _edit(template, "{% macro head(doc) -%}",
          "{% macro head(doc) -%}\n{% include 'part-' ~ 'a.j2' %}")
    r = _check(fmts, "cosoluce-corail", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "format.dead-template" not in r.stderr, r.stderr


@pytest.mark.parametrize("other", ["jvs-millesime", "pes-ormc", "pes-ormcc"])
def test_a_fixture_mapping_naming_another_format_is_named_by_its_line(tmp_path, other):
    """A fixture mapping naming another bundle was refused with no line and no rule
    (jvs-millesime), or blamed for not fitting that bundle (pes-ormc: NumDette, Edition),
    or for naming no bundle (a typo), never saying the fixture is another bundle's."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    mapping = folder / "fixture" / "mapping.yaml"
    line = _edit(mapping, "  format: cosoluce-corail\n", f"  format: {other}\n")
    r = _check(fmts, "cosoluce-corail")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert (f"error: {mapping}: output.format is '{other}', the fixture belongs to "
            "'cosoluce-corail'\n") in r.stderr, r.stderr
    assert (f"  - output.format is '{other}', but this fixture is bundle cosoluce-corail's "
            "self-test: its mapping exports with that bundle (output.format: "
            f"cosoluce-corail) [mapping {mapping}:{line}: output.format] "
            "(rule format.fixture-mapping)\n") in r.stderr, r.stderr
    assert "1 problem(s)." in r.stderr, r.stderr


def test_a_key_written_twice_in_format_yaml_is_the_bundles_rule(tmp_path):
    """A duplicate key in format.yaml was listed as mapping.duplicate-key, the rule of a
    mapping's, though the file is the bundle's; a mapping's keeps its own."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    source = folder / "format.yaml"
    line = _edit(source, "newline: LF\n", "newline: LF\nkind: xml\n") + 1
    said = (f"duplicate key 'kind' (first at line 7) [format {source}:{line}: kind] "
            "(rule format.duplicate-key)")
    r = _check(fmts, "cosoluce-corail")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert f"  - {said}\n" in r.stderr, r.stderr
    listed = run_cli("formats", "--formats-dir", fmts)
    assert listed.exit_code == ExitCode.MAPPING
    assert f"    - {said}\n" in listed.stdout, listed.stdout
    mapping = folder / "fixture" / "mapping.yaml"
    _edit(source, "newline: LF\nkind: xml\n", "newline: LF\n")
    line = _edit(mapping, "  format: cosoluce-corail\n",
                 "  format: cosoluce-corail\n  format: cosoluce-corail\n") + 1
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts)
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    assert f"[mapping {mapping}:{line}: output.format] (rule mapping.duplicate-key)" \
        in r.stderr, r.stderr


@pytest.mark.parametrize(("file", "old", "new", "said"), [
    ("corail.xml.j2", '<Exercice V="{{ doc.bordereau.exercise }}"/>',
     '<Exercice V="{{ doc.bordereau.exercise | zfil(4) }}"/>',
     "No filter named 'zfil'. Did you mean 'zfill'?"),
    # in a branch, Jinja refuses it only when it runs it
    ("corail.xml.j2", '{% if d.first_name %}<Prenom{{ suffix }} V="{{ d.first_name }}"/>',
     '{% if d.first_name %}<Prenom{{ suffix }} V="{{ d.first_name | isodat }}"/>',
     "No filter named 'isodat' found. Did you mean 'isodate'?"),
    ("format.yaml", "{{ doc.bordereau.number | zfill(7) }}",
     "{{ doc.bordereau.number | zfil(7) }}",
     "file name template: No filter named 'zfil'. Did you mean 'zfill'?"),
])
def test_a_misspelt_filter_in_a_template_gets_a_did_you_mean(tmp_path, file, old, new, said):
    """A mapping expression's misspelt filter got a did-you-mean, a template's or a file
    name's did not: 'No filter named 'zfil'.' and nothing else."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    line = _edit(folder / file, old, new)
    r = _check(fmts, "cosoluce-corail")
    assert r.exit_code == ExitCode.TEMPLATE, r.stdout + r.stderr
    assert said in r.stderr, r.stderr
    assert f"{file}:{line}" in r.stderr, r.stderr


def _json(r) -> dict:
    """The one JSON document a --format json command printed, nothing else around it."""
    import json

    assert r.stderr == "", r.stderr
    return json.loads(r.stdout)


def test_check_format_json_gives_ci_the_problems_warnings_and_diffs(tmp_path):
    """check-format printed text only: a CI job had to scrape the rule, file and line of
    each problem and warning out of the messages."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    source = folder / "format.yaml"
    line = _edit(source, '    train: "Facturation"       # InfoPiece/TrainPiece\n',
                 '    train: "Facturation"       # InfoPiece/TrainPiece\n'
                 '    service: "ECOLE"\n') + 1
    _edit(source, 'origine: "PESGEN"', 'origine: "PESGEN2"')
    r = _check(fmts, "cosoluce-corail", "--format", "json")
    assert r.exit_code == ExitCode.OUTPUT, r.stdout + r.stderr
    report = _json(r)
    assert (report["command"], report["ok"], report["exit_code"]) == ("check-format", False, 6)
    [bundle] = report["bundles"]
    assert (bundle["name"], bundle["folder"], bundle["status"], bundle["ok"],
            bundle["exit_code"]) == ("cosoluce-corail", str(folder), "reconstructed", False, 6)
    assert bundle["error"].startswith("cosoluce-corail: the fixture renders differently from "
                                      "expected/ (1 file(s))")
    assert bundle["problems"] == []
    [diff] = bundle["diffs"]
    assert '-<Origine V="PESGEN"/>' in diff and '+<Origine V="PESGEN2"/>' in diff
    [warning] = bundle["warnings"]
    assert {k: warning[k] for k in ("rule", "file", "line", "key", "source")} == {
        "rule": "format.unread-option", "file": str(source), "line": line,
        "key": "defaults.options.service", "source": "format"}
    assert warning["message"].startswith("option service is read by no template")
    assert warning["text"].endswith("(rule format.unread-option)")
    # a problem: its rule, file, line and key; --regen's removals are listed
    (folder / "expected" / "notes.txt").write_text("x\n", encoding="utf-8")
    r = _check(fmts, "cosoluce-corail", "--format", "json", "--regen")
    assert r.exit_code == 0, r.stdout + r.stderr
    [bundle] = _json(r)["bundles"]
    assert bundle["ok"] and bundle["removed"] == [str(folder / "expected" / "notes.txt")]
    mapping = folder / "fixture" / "mapping.yaml"
    line = _edit(mapping, "  format: cosoluce-corail\n", "  format: pes-ormc\n")
    r = _check(fmts, "cosoluce-corail", "--format", "json")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    [bundle] = _json(r)["bundles"]
    [problem] = bundle["problems"]
    assert {k: problem[k] for k in ("rule", "file", "line", "key", "source")} == {
        "rule": "format.fixture-mapping", "file": str(mapping), "line": line,
        "key": "output.format", "source": "mapping"}
    # an unknown bundle: a usage error, exit 2, in the same shape
    r = _check(fmts, "cosoluce-coral", "--format", "json")
    assert r.exit_code == ExitCode.USAGE
    [bundle] = _json(r)["bundles"]
    assert bundle["folder"] is None and "did you mean 'cosoluce-corail'" in bundle["error"]


def test_formats_and_check_mapping_json_have_the_same_shape(tmp_path):
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    shutil.copytree(data_dir("templates") / "jvs-millesime", fmts / "jvs-millesime")
    source = folder / "format.yaml"
    line = _edit(source, "newline: LF\n", "newline: LF\nkind: xml\n") + 1
    r = run_cli("formats", "--formats-dir", fmts, "--format", "json")
    assert r.exit_code == ExitCode.MAPPING, r.stdout + r.stderr
    report = _json(r)
    assert report["command"] == "formats" and report["exit_code"] == 3
    assert report["error"].startswith("1 format bundle(s) BROKEN: cosoluce-corail")
    bundles = {b["name"]: b for b in report["bundles"]}
    broken = bundles["cosoluce-corail"]
    assert (broken["ok"], broken["exit_code"], broken["status"]) == (False, 3, None)
    [problem] = broken["problems"]
    assert (problem["rule"], problem["file"], problem["line"], problem["key"]) == (
        "format.duplicate-key", str(source), line, "kind")
    assert bundles["jvs-millesime"]["ok"] and bundles["jvs-millesime"]["status"] == \
        "reconstructed"
    assert bundles["pes-ormc"]["ok"]  # the shipped ones are listed too
    # check-mapping: the fixture's mapping binds payer.email, which no template writes;
    # the format declares it not carried: no warning, said in not_carried
    _edit(source, "newline: LF\nkind: xml\n", "newline: LF\n")
    mapping = folder / "fixture" / "mapping.yaml"
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts, "--format", "json")
    assert r.exit_code == 0, r.stdout + r.stderr
    [checked] = _json(r)["mappings"]
    assert "payer.email" in checked["not_carried"] and checked["warnings"] == [], checked
    _edit(source, '  payer.email: "InfoTiers and Adresse have no e-mail element"\n', "")
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts, "--format", "json")
    assert r.exit_code == 0, r.stdout + r.stderr
    report = _json(r)
    [checked] = report["mappings"]
    assert (checked["mapping"], checked["format"], checked["ok"]) == (
        str(mapping), "cosoluce-corail", True)
    [warning] = checked["warnings"]
    assert (warning["rule"], warning["file"], warning["key"]) == (
        "mapping.unwritten", str(mapping), "bindings.payer.email")
    assert "payer.email" not in checked["not_carried"]
    _edit(mapping, "  format: cosoluce-corail\n", "  format: cosoluce-coral\n")
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts, "--format", "json")
    assert r.exit_code == ExitCode.MAPPING
    [checked] = _json(r)["mappings"]
    assert [p["rule"] for p in checked["problems"]] == ["mapping.format"]
    assert checked["problems"][0]["key"] == "output.format"


def test_the_readme_json_example_is_what_check_format_prints(tmp_path, monkeypatch):
    """docs/commands.md (README.md before) shows check-format --format json on a
    scaffold with its title's TODO left: the example is the command's output, not a
    drawing of it."""
    import json

    from pesgen.scaffold import new_format

    from .conftest import ROOT

    monkeypatch.chdir(tmp_path)
    folder = new_format("acme-compta", "csv", Path("formats"))
    source = folder / "format.yaml"
    text = source.read_text(encoding="utf-8")
    source.write_text(re.sub(r'(?m)^source: .*$', 'source: "Acme import guide v2, 2026"',
                             text), encoding="utf-8")
    r = run_cli("check-format", "acme-compta", "--formats-dir", "formats", "--format", "json")
    assert r.exit_code == ExitCode.MAPPING
    readme = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    shown = readme.split("$ pesgen check-format acme-compta --formats-dir formats "
                         "--format json\n", 1)[1].split("```", 1)[0]
    assert _json(r) == json.loads(shown)


def test_a_width_the_check_cannot_compare_or_a_value_it_cannot_follow_is_not_warned_of(
        tmp_path):
    """check-format's format.field-width warns only of what it can tell: a width given
    as a text (fixed("38")) is no number to compare, a name set to two values (y: the
    debtor, then the mandate) and a loop over anything but t.lines (x in doc.titles)
    are not followed; none is warned of, and none stops the check. A template two
    files render is read once: its warning said once; a template that does not parse
    is left to the render that reports it."""
    from pesgen.bundles import narrow_widths
    from pesgen.formats import find_format

    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    assert narrow_widths(find_format("cosoluce-corail", [fmts])) == []
    _edit(folder / "corail.xml.j2", '<TypeSerieBordereau V="N"/>',
          '<TypeSerieBordereau V="N"/><!--{{ t.debtor.name | fixed("5") }}'
          '{% set y = t.debtor %}{% set y = t.mandate %}{{ y.rum | fixed(5) if y else "" }}'
          '{% for x in doc.titles %}{{ x.label | fixed(5) }}{% endfor %}-->')
    assert narrow_widths(find_format("cosoluce-corail", [fmts])) == []
    # two files of one template: its filter said once
    _edit(folder / "format.yaml", "    xsd: corail.xsd\n",
          '    xsd: corail.xsd\n  - template: corail.xml.j2\n    name: "COPY_{{ '
          'doc.bordereau.number }}.xml"\n    xsd: corail.xsd\n')
    _edit(folder / "corail.xml.j2", "{% for x in doc.titles %}",
          "{{ t.debtor.name | fixed(5) }}{% for x in doc.titles %}")
    [warned] = narrow_widths(find_format("cosoluce-corail", [fmts]))
    assert warned.message.startswith(f"{fmts}/cosoluce-corail/corail.xml.j2:"), warned
    assert ": t.debtor.name | fixed(5) writes debtor.name, " in warned.message, warned
    _edit(folder / "corail.xml.j2", "{% for x in doc.titles %}", "{% for x in %}")
    assert narrow_widths(find_format("cosoluce-corail", [fmts])) == []


def test_a_limit_wider_than_the_column_of_an_identifier_names_no_policy(tmp_path):
    """An identifier (debtor.ref, as the RUM and the civility) is never cut by
    text_overflow (the builder's _NEVER_TRUNCATED): the warning of its limit wider than
    the layout's column says the length rule would refuse it, naming no policy that never
    applies to it."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    _edit(folder / "format.yaml", "  debtor.ref: {max: 15}", "  debtor.ref: {max: 20}")
    mapping = Path(__file__).parent.parent / "mappings" / "villeneuve-sur-loing-emagnus.yaml"
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts)
    assert r.exit_code == 0, r.stdout + r.stderr
    # the lines' record and the joint debtors' file's both hold it in a CodeTiers of 15
    said = [ln for ln in r.stderr.splitlines() if "(rule format.field-width)" in ln]
    assert [ln.split("column ", 1)[1].split(" ", 1)[0] for ln in said] == ["CodeTiers"] * 2
    for line in said:
        assert line.startswith("warning: t.debtor.ref ("), line
        assert ("which takes at most 15 characters (layout.length), but format.yaml limits "
                "debtor.ref to 20: a value of 16 to 20 characters passes the length rule "
                "(no policy cuts debtor.ref: the rule refuses only a value over 20, naming "
                "the binding) and is refused by the layout at "
                "export, by invoice (exit 6); give it {max: 15} (or fewer) under fields"
                ) in line, line
        assert "policies" not in line, line


def test_an_xml_element_holding_one_field_its_limit_overflows_is_warned_of(tmp_path):
    """walk67: an attribute of an import's XSD holding one bound field alone (an AFI-like
    XML's Ligne/@libelle of 30 under format.yaml's line.label {max: 60}) passed
    check-mapping and check-format without a word, format.field-width checking a field
    alone against a layout's column and joined fields against an XSD, not a field alone
    against an XSD: a label of 31 to 60 characters passed the length rule, text_overflow
    never cut it, and the XSD refused it at export, by invoice. Both warn now, as of a
    layout's column (Corail's ASAPLibelleLigne, 200, under a limit of 250 here); the
    shipped limits, which fit, are not warned of."""
    fmts, folder = _copy(tmp_path, "cosoluce-corail")
    source = folder / "format.yaml"
    at = _edit(source, "  line.label: {max: 200}", "  line.label: {max: 250}")
    xsd = folder / "corail.xsd"
    declared = next(i for i, line in enumerate(xsd.read_text(encoding="utf-8").splitlines(), 1)
                    if '<xs:element name="ASAPLibelleLigne" ' in line)
    mapping = MAPPINGS / "villeneuve-sur-loing-corail.yaml"
    label = next(i for i, line in enumerate(mapping.read_text(encoding="utf-8").splitlines(), 1)
                 if line.startswith("    label: ") and "line." in line)
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts)
    assert r.exit_code == 0, r.stdout + r.stderr
    said = (f"warning: line.label ({mapping}:{label}: bindings.line.label) is written into "
            "corail.xsd: /ImportCosoluce/TypePieceImport/Piece/"
            f"ASAPLigneFacturation/ASAPLibelleLigne/@V (declared at {xsd}:{declared}), which "
            "takes at most 200 characters (its maxLength), but format.yaml limits line.label "
            "to 250: a value of 201 to 250 characters passes the length rule, so the "
            "mapping's policies.text_overflow never applies to it, and is refused by "
            "corail.xsd at export (xsd.bundle), by invoice (exit 6); give it {max: 200} (or "
            f"fewer) under fields [format {source}:{at}: fields.line.label] "
            "(rule format.field-width)")
    assert said in " ".join(r.stderr.split()), r.stderr
    r = run_cli("check-mapping", mapping)
    assert r.exit_code == 0 and "format.field-width" not in r.stderr, r.stderr


def test_a_fixture_refused_by_a_narrow_column_is_told_the_limit_that_let_it_pass(tmp_path):
    """walk67: check-format refused the fixture's rendering for a city longer than a
    layout column narrower than format.yaml's limit (layout.length, naming the binding)
    without the format.field-width warning that says why the mapping's policies never
    applied (given only once the fixture rendered): it is said with the refusal, as a
    fixed(N) narrower than the limit is."""
    fmts, folder = _copy(tmp_path, "bl-emagnus")
    layout = folder / "wtamc001.layout.yaml"
    _edit(layout, "{name: Ville, type: text, length: 50, required: true}",
          "{name: Ville, type: text, length: 15, required: true}")
    r = _check(fmts, "bl-emagnus")
    assert r.exit_code == 6, r.stdout + r.stderr
    assert "is 18 characters, the layout allows 15" in r.stderr, r.stderr
    assert ("is written into record 'ecriture', column Ville (#16) ("
            f"{layout}:43: records[0].columns[15]), which takes at most 15 characters "
            "(layout.length), but format.yaml limits address.city to 50") in r.stderr, r.stderr
