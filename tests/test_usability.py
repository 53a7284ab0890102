"""What a usability review found: scaffold placeholders left in a mapping, a typo in a
binding's own key, templates checked by check-mapping, --help at 80 columns, the
labels of problem listings, preview's header and exit code, --official-xsd."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import ExitCode, MappingError
from pesgen.layout import load_layout
from pesgen.mapping import TODO_MARKER, load_mapping

from .conftest import EXAMPLES, MAPPINGS, ROOT, RUN_DATE
from .mapping_support import mapping_copy

runner = CliRunner()
JSON_MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"


def _run(*args: str | Path):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception, result.output)
    return result


# ------------------------------------------------ 1. the scaffold's TODO placeholders

COLLECTIVITY_ONLY = {
    'siret: "TODO"': 'siret: "21450999400015"', 'id_post: "TODO"': 'id_post: "045000"',
    'cod_col: "TODO"': 'cod_col: "123"', 'cod_bud: "TODO"': 'cod_bud: "00"',
    "exercise: TODO": "exercise: 2026", 'nature: "TODO"': 'nature: "7067"',
}


def test_a_scaffold_with_only_its_collectivity_filled_is_refused_naming_every_todo(tmp_path):
    out = tmp_path / "m.yaml"
    assert _run("new-mapping", "Commune X", "--format", "pes-ormc", "-o", out).exit_code == 0
    mapping_copy(out.parent, out, *COLLECTIVITY_ONLY.items())
    text = out.read_text(encoding="utf-8")
    r = _run("check-mapping", out)
    assert r.exit_code == ExitCode.MAPPING, r.stdout
    listed = [ln for ln in r.stderr.splitlines() if "(rule mapping.todo)" in ln]
    todo_lines = [i for i, ln in enumerate(text.splitlines(), 1)
                  if TODO_MARKER in ln.split("#")[0]]
    # every line still holding the marker (a value, a code-table key) is named
    assert {int(ln.split(f"[mapping {out}:")[1].split(":")[0]) for ln in listed} \
        == set(todo_lines)
    def line(start: str) -> int:
        return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(start))

    number, activity, kind = (line("    number: TODO"), line("    TODO: {product"),
                              line("    TODO: {category"))
    assert f"[mapping {out}:{number}: bindings.invoice.number]" in r.stderr
    assert f"{out}:{activity}: codes.activities.TODO]" in r.stderr
    assert f"{out}:{activity}: codes.activities.TODO.product]" in r.stderr
    assert f"{out}:{kind}: codes.payer_kinds.TODO]" in r.stderr
    # and so does every other command that loads a mapping
    with pytest.raises(MappingError) as exc:
        load_mapping(out)
    assert len(exc.value.problems) == len(listed)
    preview = _run("preview", "-m", out, "-i", INPUT)
    assert preview.exit_code == ExitCode.MAPPING and "mapping.todo" in preview.stderr


def test_a_todo_is_said_once_not_also_as_a_schema_error(tmp_path):
    out = tmp_path / "m.yaml"
    _run("new-mapping", "Commune X", "--format", "pes-titres", "-o", out)
    r = _run("check-mapping", out)
    assert r.exit_code == ExitCode.MAPPING
    siret = [ln for ln in r.stderr.splitlines() if "collectivity.siret]" in ln]
    assert len(siret) == 1 and "(rule mapping.todo)" in siret[0]


def _yaml_files() -> list[Path]:
    return sorted([*MAPPINGS.glob("*.yaml"), *(ROOT / "templates").glob("*/fixture/*.yaml"),
                   *(ROOT / "tests").rglob("*.yaml")])


def test_no_shipped_mapping_nor_fixture_holds_the_placeholder():
    from pesgen._yaml import load_yaml_file
    from pesgen.mapping import todo_problems

    found = []
    for path in _yaml_files():
        data, _, _ = load_yaml_file(path)
        found += todo_problems(data, str(path))
    assert found == []


# ------------------------------------------------ 2. a typo in a binding's own key


def test_a_typo_in_a_binding_key_gets_a_suggestion(tmp_path):
    bad, (line,) = mapping_copy(tmp_path, JSON_MAPPING,
                                ("    number: number", '    number: {exp: "invoice.number"}'),
                                name="m.yaml")
    r = _run("check-mapping", bad)
    assert r.exit_code == ExitCode.MAPPING
    assert ("unknown key 'exp' in a binding (did you mean 'expr'?); a binding is a path "
            "string, {path: …}") in r.stderr
    assert f"[mapping {bad}:{line}: bindings.invoice.number.exp]" in r.stderr
    assert "is not valid under any of the given schemas" not in r.stderr
    both, _ = mapping_copy(tmp_path, JSON_MAPPING,
                           ("    number: number", "    number: {path: n, const: 1}"),
                           name="both.yaml")
    r = _run("check-mapping", both)
    assert "A binding is a path string" in r.stderr and "(this one has path, const)" in r.stderr


# ------------------------------------------------ 5. labels of problem listings


def test_layout_and_format_problems_are_labelled_as_such(tmp_path):
    layout = tmp_path / "bad-layout.yaml"
    layout.write_text("pesgen_layout: 1\nname: X\nkind: csv\ndecimal_separater: \",\"\n"
                      "kind: csv\nrecords:\n  - type: a\n    columns:\n"
                      "      - {name: A, type: text, length: 3}\n", encoding="utf-8")
    with pytest.raises(MappingError) as exc:
        load_layout(layout)
    shown = [str(p) for p in exc.value.problems]
    assert any(f"[layout {layout}:4: decimal_separater] (rule layout.schema)" in s
               for s in shown), shown
    assert any(f"[layout {layout}:5: kind] (rule mapping.duplicate-key)" in s
               for s in shown), shown
    assert not any("[mapping " in s for s in shown)

    from pesgen.formats import load_format

    bundle = tmp_path / "fmt"
    bundle.mkdir()
    (bundle / "format.yaml").write_text("pesgen_format: 1\nname: fmt\nstatuss: draft\n",
                                        encoding="utf-8")
    with pytest.raises(MappingError) as exc:
        load_format(bundle)
    shown = [str(p) for p in exc.value.problems]
    assert any("[format " in s and "statuss" in s for s in shown), shown
    assert not any("[mapping " in s for s in shown)


# ------------------------------------------------ 6. preview: header and exit code


def test_preview_names_a_refused_invoice_and_exits_as_export_would(tmp_path):
    import json

    data = json.loads(INPUT.read_text(encoding="utf-8"))
    data["invoices"][0]["lines"][0]["activity"]["code"] = "NO-SUCH-CODE"
    bad = tmp_path / "export.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    r = _run("preview", "-m", JSON_MAPPING, "-i", bad, "--limit", "2", "--date", RUN_DATE)
    assert "-- invoice FA-2026-00101  from " in r.stdout
    assert "-- invoice ?" not in r.stdout
    assert "PROBLEM " in r.stdout and "(rule codes.activity)" in r.stdout
    assert r.exit_code == ExitCode.INPUT
    assert "pesgen export would refuse these invoices (input invalid, exit 4)" in r.stderr
    ok = _run("preview", "-m", JSON_MAPPING, "-i", INPUT, "--limit", "2", "--date", RUN_DATE)
    assert ok.exit_code == 0 and "0 problem(s)" in ok.stdout


def test_preview_lists_the_csv_columns_no_binding_reads(tmp_path):
    """Without bindings.address.country a Berlin family with a 5-digit postcode passes
    as French: preview names the input columns the mapping never reads (informational,
    the exit code is export's)."""
    csv_mapping = MAPPINGS / "villeneuve-sur-loing-csv.yaml"
    m, _ = mapping_copy(tmp_path, csv_mapping, ("    country: country\n", ""))
    r = _run("preview", "-m", m, "-i", EXAMPLES / "school-export.csv", "--date", RUN_DATE)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "\nnot read by the mapping: payer_birth_date, country\n" in r.stdout
    # a long list is cut
    lines = (EXAMPLES / "school-export.csv").read_text(encoding="utf-8").splitlines()
    extra = [f"X{i:02}" for i in range(1, 15)]
    wide = tmp_path / "wide.csv"
    wide.write_text("\n".join([",".join([lines[0], *extra])] +
                              [",".join([ln, *[""] * len(extra)]) for ln in lines[1:]]) + "\n",
                    encoding="utf-8")
    r = _run("preview", "-m", csv_mapping, "-i", wide, "--limit", "1", "--date", RUN_DATE)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "\nnot read by the mapping: payer_birth_date, X01, X02, X03, X04, X05, X06, X07, " \
        "X08, X09, X10, X11, … (3 more)\n" in r.stdout


def test_preview_lists_the_json_paths_no_binding_reads(tmp_path):
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, ("    country: payer.address.country\n", ""))
    r = _run("preview", "-m", m, "-i", INPUT, "--limit", "1", "--date", RUN_DATE)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "\nnot read by the mapping: payer.address.country, payer.birth_date\n" in r.stdout


def _french_only(tmp_path: Path) -> Path:
    """The JSON example without its family in Belgium (whose 4-digit postal code an
    unbound country refuses as French)."""
    import json

    data = json.loads(INPUT.read_text(encoding="utf-8"))
    data["invoices"] = [i for i in data["invoices"]
                        if i["payer"]["address"].get("country") in (None, "FR")]
    out = tmp_path / "french.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


_UNBOUND_COUNTRY = ("bindings.address.country is not bound: every debtor is written as "
                    "living in France")


def test_an_unbound_country_is_said_once_in_the_run_summary(tmp_path):
    """Without bindings.address.country every debtor is written as French: the
    summary says so once for the run (naming the mapping and the key to bind), not
    once per invoice; the dry run and preview say it too."""
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, ("    country: payer.address.country\n", ""))
    inp = _french_only(tmp_path)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    for dry in (["--dry-run"], []):
        r = _run("export", "-m", m, "-i", inp, "-o", tmp_path / "out", "--date", "2026-11-23",
                 "--db", db, "--create-store", *dry)
        assert r.exit_code == 0, r.stdout + r.stderr
        said = [ln for ln in r.stdout.splitlines() if _UNBOUND_COUNTRY in ln]
        assert said == [f"  - *: country: {m}: {_UNBOUND_COUNTRY}; bind it to the export's "
                        "country column or key (codes.countries for its values), or, for an "
                        "export that has none, to {const: FR}"], r.stdout
        assert "country ×1" in r.stdout
    r = _run("preview", "-m", m, "-i", inp, "--limit", "2", "--date", RUN_DATE)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert [ln for ln in r.stdout.splitlines() if _UNBOUND_COUNTRY in ln] == [
        f"policy country (run): {m}: {_UNBOUND_COUNTRY}; bind it to the export's country "
        "column or key (codes.countries for its values), or, for an export that has none, "
        "to {const: FR}"]


def test_a_country_bound_to_a_constant_fr_as_the_note_advises_silences_it(tmp_path):
    """The note's advice for an export with no country column (walk64: it said only to
    bind a column the export did not have) runs as printed: no note, the same files."""
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, ("    country: payer.address.country\n",
                                                 "    country: {const: FR}\n"))
    r = _run("preview", "-m", m, "-i", _french_only(tmp_path), "--limit", "2", "--date",
             RUN_DATE)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert _UNBOUND_COUNTRY not in r.stdout and "policy country" not in r.stdout


def test_an_unbound_country_names_itself_when_a_foreign_postal_code_is_refused(tmp_path):
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, ("    country: payer.address.country\n", ""))
    r = _run("export", "-m", m, "-i", INPUT, "-o", tmp_path / "out", "--date", "2026-11-23",
             "--db", f"sqlite:///{tmp_path / 'store.db'}", "--create-store", "--dry-run")
    assert r.exit_code == ExitCode.INPUT
    assert "postal code '1040' must be 5 digits in France (bindings.address.country is not " \
        "bound: every address is taken as French)" in r.stderr


def test_an_unbound_joint_payer_country_names_its_own_key(tmp_path):
    """A joint debtor's foreign postal code refused as not French names the key to bind,
    bindings.joint_payer.country (the e.magnus mapping without it binds address.country),
    where it said bindings.address.country is not bound, of a mapping binding it."""
    import json

    data = json.loads(INPUT.read_text(encoding="utf-8"))
    data["invoices"][1]["joint_payer"] = {
        "kind": "person", "title": "M.", "last_name": "Peeters", "first_name": "Jan",
        "address": {"street": "Rue de la Loi 16", "postal_code": "1000",
                    "city": "Bruxelles", "country": "BE"}}
    inp = tmp_path / "joint.json"
    inp.write_text(json.dumps(data), encoding="utf-8")
    m, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-emagnus.yaml",
                        ("    country: joint_payer.address.country\n", ""))
    r = _run("export", "-m", m, "-i", inp, "-o", tmp_path / "out", "--date", "2026-11-23",
             "--db", f"sqlite:///{tmp_path / 'store.db'}", "--create-store", "--dry-run")
    assert r.exit_code == ExitCode.INPUT, r.stdout + r.stderr
    line = m.read_text(encoding="utf-8").splitlines().index(
        "    postal_code: joint_payer.address.postal_code") + 1
    assert ("postal code '1000' must be 5 digits in France (bindings.joint_payer.country is "
            f"not bound: every address is taken as French) [mapping {m}:{line}: "
            "bindings.joint_payer.postal_code] (rule pes.postal-code)") in r.stderr, r.stderr


@pytest.mark.parametrize("mapping", sorted(MAPPINGS.glob("*.yaml")) + sorted(
    (ROOT / "templates").glob("*/fixture/mapping.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_shipped_mappings_bind_the_country(mapping):
    """None of them gets the note: each binds address.country."""
    assert "country" in load_mapping(mapping).bindings["address"]


def test_a_bound_country_gives_no_note(tmp_path):
    r = _run("export", "-m", JSON_MAPPING, "-i", INPUT, "-o", tmp_path / "out", "--date",
             "2026-11-23", "--db", f"sqlite:///{tmp_path / 'store.db'}", "--create-store",
             "--dry-run")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "policies applied" in r.stdout
    assert "country ×" not in r.stdout and _UNBOUND_COUNTRY not in r.stdout


def test_unread_json_paths_follow_paths_and_expressions():
    import copy
    import json

    from pesgen.paths import unread

    mapping = load_mapping(JSON_MAPPING)
    record = copy.deepcopy(json.loads(INPUT.read_text(encoding="utf-8"))["invoices"][0])
    record["payer"]["nickname"] = "Léna"
    record["payer"]["address"]["country"] = None
    for line in record["lines"]:
        line["discount"] = {"rate": 0, "code": None}
    record["lines"][0]["student"]["tags"] = ["a", "b"]
    record["flags"] = []
    record["extra"] = {"a": {"b": 1}}
    # in the record's order; a key holding null under a bound path is read (country);
    # the lines' keys as one, by the line bindings (paths and expressions)
    assert unread(mapping, record) == ["payer.birth_date", "payer.nickname",
                                       "lines[*].student.tags", "lines[*].discount.rate",
                                       "lines[*].discount.code", "flags", "extra.a.b"]


# ------------------------------------------------ 7. docs and --official-xsd


def test_mapping_headers_point_at_docs_that_exist():
    import re

    for path in _yaml_files():
        for ref in re.findall(r"Reference: (docs/[\w-]+\.md)", path.read_text(encoding="utf-8")):
            assert (ROOT / ref).is_file(), f"{path}: {ref}"


def test_the_readme_lists_every_command():
    from typer.main import get_command

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("##", 1)[0]
    for name in get_command(app).commands:  # type: ignore[attr-defined]
        if name not in ("version", "payfip"):  # payfip has docs/payfip.md
            assert f"pesgen {name}" in table, name


def test_official_xsd_accepts_the_folder_holding_one_package(tmp_path):
    from pesgen.errors import UsageError
    from pesgen.validate import OFFICIAL_ENTRY, official_xsd_path

    parent = tmp_path / "pes-v2"

    def package(name: str) -> Path:
        entry = parent / name / Path(*OFFICIAL_ENTRY)
        entry.parent.mkdir(parents=True)
        entry.write_text("<x/>", encoding="utf-8")
        return entry

    def refusal() -> str:
        with pytest.raises(UsageError) as info:
            official_xsd_path(parent)
        return str(info.value)

    entry = package("schemas_pes_v5.17")
    (parent / "dostech-v5.19").mkdir()
    assert official_xsd_path(parent) == entry
    assert official_xsd_path(parent / "schemas_pes_v5.17") == entry
    package("schemas_pes_v5.18")
    # both named, and the command to give one of them (the newest) said whole
    assert refusal() == (
        f"{parent}: 2 DGFiP schema packages here (schemas_pes_v5.17, schemas_pes_v5.18): "
        f"give the one to use, e.g. --official-xsd {parent / 'schemas_pes_v5.18'} "
        "(the newest)")
    # versions are compared as numbers: v5.9 is older than v5.17 (a name sort says newer)
    package("schemas_pes_v5.9")
    assert refusal() == (
        f"{parent}: 3 DGFiP schema packages here (schemas_pes_v5.9, schemas_pes_v5.17, "
        f"schemas_pes_v5.18): give the one to use, e.g. --official-xsd "
        f"{parent / 'schemas_pes_v5.18'} (the newest)")
    with pytest.raises(UsageError, match="schemas_pes_\\* folder"):
        official_xsd_path(tmp_path)


# ------------------------------------------------ 3. check-mapping renders the templates

TITRES_TEMPLATE = ROOT / "templates" / "pes-titres" / "pes-titres.xml.j2"


@pytest.mark.parametrize("old, new", [
    # a field the model does not have, on every title
    ('<MtHT V="{{ ln.amount | amount }}"/>',
     '<MtHT V="{{ ln.amount | amount }}"/>{{ t.debtor.prenom }}'),
    # only in a branch the sample with a mandate takes
    ('<RefUniMdt V="{{ m.rum }}"/>', '<RefUniMdt V="{{ m.rum }}{{ m.account.iabn }}"/>'),
])
def test_check_mapping_renders_the_templates_on_sample_titles(tmp_path, old, new):
    import shutil

    bundle = tmp_path / "formats" / "pes-titres"
    shutil.copytree(TITRES_TEMPLATE.parent, bundle)
    text = TITRES_TEMPLATE.read_text(encoding="utf-8")
    assert old in text
    line = text[:text.index(old)].count("\n") + 1
    (bundle / TITRES_TEMPLATE.name).write_text(text.replace(old, new, 1), encoding="utf-8")
    mapping = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
    r = _run("check-mapping", mapping, "--formats-dir", tmp_path / "formats")
    assert r.exit_code == ExitCode.TEMPLATE, r.stdout
    assert f"template {bundle}/pes-titres.xml.j2:{line}:" in r.stderr
    assert "check-mapping's sample title" in r.stderr
    assert "OK" not in r.stdout


def test_check_mapping_passes_every_shipped_mapping():
    for mapping in [*MAPPINGS.glob("*.yaml"), *(ROOT / "templates").glob("*/fixture/mapping.yaml")]:
        r = _run("check-mapping", mapping)
        assert r.exit_code == 0, r.stderr
        assert "template(s) rendered on sample titles" in r.stdout
        # every field it binds is written by its format, or declared not carried
        assert "warning" not in r.stderr, r.stderr


# ------------------------------------------------ 4. --help at 80 columns


def _every_command() -> list[tuple[list[str], object]]:
    import click
    from typer.main import get_command

    root = get_command(app)
    found: list[tuple[list[str], object]] = []

    def walk(path: list[str], command: object) -> None:
        found.append((path, command))
        ctx = click.Context(command)  # type: ignore[arg-type]
        for name in getattr(command, "list_commands", lambda _ctx: [])(ctx):
            walk([*path, name], command.get_command(ctx, name))  # type: ignore[attr-defined]

    walk([], root)
    return found


def _panel_rows(text: str, title: str) -> list[str]:
    """The lines inside the panel ``title`` of a rich help screen, borders removed."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith("╭─ " + title):
            inside = True
        elif inside and line.startswith("╰"):
            break
        elif inside:
            rows.append(line[2:-1].rstrip())
    return rows


def test_every_help_screen_is_accurate_and_readable_at_80_columns():
    import re

    screens = 0
    for path, _command in _every_command():
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"},
                          terminal_width=80)
        assert r.exit_code == 0, (path, r.output)
        text = r.stdout
        screens += 1
        where = " ".join(["pesgen", *path])
        assert all(len(line) <= 80 for line in text.splitlines()), where
        # a flag takes no value; a repeatable option is not a Python type
        assert "<bool>" not in text and "list[" not in text, where
        # nothing cut short by the table (a default shown as '…sqlite…')
        assert not re.search(r"\w…\s*│", text), where
        assert "local/share/pesgen/pesgen.sqlite" not in text, where
        # the words of the screen, wrapped lines joined
        words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
        if "--db" in text:
            assert "XDG_DATA_HOME" in words and "db in the configuration file" in words, where
        if "--formats-dir" in text:
            assert "<dir>" in text and "repeat the option for several folders" in words, where
        # command lists: each description wraps where the column ends, not where the
        # docstring's lines did (a line is short only when the next word would not fit)
        rows = _panel_rows(text, "Commands")
        if not rows:
            continue
        start = max(len(row) - len(row.lstrip()) for row in rows[1:] if row.startswith(" ")) \
            if any(row.startswith(" ") for row in rows) else None
        width = 80 - 4 - (start or 0)
        for row, following in zip(rows, rows[1:], strict=False):
            if start is None or not following.startswith(" " * start) or \
                    following[:start].strip():
                continue
            next_word = following[start:].split()[0]
            assert len(row[start:].rstrip()) + 1 + len(next_word) > width - 1, (where, row)
    assert screens > 30


def test_command_lists_give_each_command_a_summary_of_three_lines_at_most():
    """`pesgen --help` listed acquit in 17 lines (its exit codes, every case of exit 10),
    and check-mapping, runs cancel, payfip payments… in five to nine: a technician
    looking for a command read paragraphs. A command list shows each command's first
    paragraph, a summary; the details follow it in the command's own --help, whole."""
    import re

    listed = 0
    for path, _command in _every_command():
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        where = " ".join(["pesgen", *path])
        rows = _panel_rows(r.stdout, "Commands")
        names = [i for i, row in enumerate(rows) if row and not row.startswith(" ")]
        for i, start in enumerate(names):
            end = names[i + 1] if i + 1 < len(names) else len(rows)
            assert end - start <= 3, (where, rows[start:end])
            listed += 1
    assert listed > 30
    # the details are still said, in the command's own help
    text = runner.invoke(app, ["acquit", "--help"], terminal_width=80).stdout
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
    assert "9 when something is rejected (recorded or not)" in words, words
    text = runner.invoke(app, ["payfip", "payments", "--help"], terminal_width=80).stdout
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
    assert "Status held-back: a title due whose family paid through its cancelled title" \
        in words, words


def test_help_on_a_stdout_that_cannot_write_accents_is_transliterated_and_aligned():
    """Under LC_ALL=C (or a Latin-1 terminal for '…', '«'), a character standard output
    cannot write was written as \\xe9, four columns where the layout counted one (the
    panels' right border out of line), or refused: the help's prose is transliterated
    for that encoding ('trésorerie' 'tresorerie'), and written as is again in UTF-8."""
    import re

    ascii_runner = CliRunner(charset="ascii")
    screens = 0
    for path, _command in _every_command():
        r = ascii_runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"},
                                terminal_width=80)
        where = " ".join(["pesgen", *path])
        assert r.exit_code == 0, (where, r.output, r.exception)
        text = r.stdout
        assert text.isascii() and not re.search(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4})", text), where
        for line in text.splitlines():
            if line.startswith(("|", "+")):
                assert len(line) == 80 and line[-1] in "|+", (where, line)
        screens += 1
    assert screens > 30
    text = ascii_runner.invoke(app, ["runs", "cancel", "--help"], terminal_width=80).stdout
    assert "the tresorerie accepted" in " ".join(text.split())
    text = runner.invoke(app, ["runs", "cancel", "--help"], terminal_width=80).stdout
    assert "the trésorerie accepted" in " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_help_under_the_c_locale_is_aligned():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "PYTHONIO"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", COLUMNS="80")
    r = subprocess.run([sys.executable, "-m", "pesgen", "runs", "cancel", "--help"],
                       capture_output=True, env=env, cwd=ROOT, check=False)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode("ascii")
    assert "\\x" not in text and "Helios" in text
    panel = [line for line in text.splitlines() if line.startswith(("|", "+"))]
    assert panel and all(len(line) == 80 for line in panel), panel
