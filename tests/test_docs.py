# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""The reference docs are generated from the code and may not drift from it."""

from __future__ import annotations

import functools
import re

from pesgen import _docgen

from .conftest import ROOT
from .payfip_support import exported, fake, flow, receiver, store  # noqa: F401 - fixtures

_RULE_CALL = re.compile(r'(?:Problem|\.problem)\(\s*"([a-z0-9][a-z0-9.-]*)"')


def test_generated_docs_are_up_to_date():
    assert _docgen.main(["--check"]) == 0, "run: python -m pesgen._docgen"


def test_every_rule_id_in_the_code_is_documented():
    documented = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    used = set()
    for path in (ROOT / "pesgen").rglob("*.py"):
        used |= set(_RULE_CALL.findall(path.read_text(encoding="utf-8")))
    assert used, "the scan found no rule id: the pattern is broken"
    missing = sorted(rule for rule in used if f"`{rule}`" not in documented)
    assert not missing, f"rule ids used in pesgen/ but absent from docs/rules.md: {missing}"


def test_every_mapping_key_is_in_the_reference():
    text = (ROOT / "docs" / "mapping-reference.md").read_text(encoding="utf-8")
    for key in ("collectivity.id_post", "policies.negative_lines", "bindings.payer.name",
                "payment_reference.cle1", "codes.activities.<key>.product"):
        assert f"`{key}`" in text


def test_doc_examples_exporting_the_example_give_a_date():
    """The example's debits fall on 2026-12-05: an export of it without --date is
    refused from 2026-12-06 (sepa.debit-date). docs/payfip.md showed one, with a summary
    pesgen no longer prints."""
    undated = [f"{page.name}:{n}" for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
               for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
               if re.search(r"pesgen (export|preview) .*examples/school-export", line)
               and "--date" not in line]
    assert not undated, undated


def test_the_mapping_reference_says_cle1_defaults_to_none():
    text = (ROOT / "docs" / "mapping-reference.md").read_text(encoding="utf-8")
    row = next(ln for ln in text.splitlines() if ln.startswith("| `payment_reference.cle1`"))
    assert "none (the default)" in row, row


def test_the_rules_reference_quotes_an_empty_identifier_as_the_acquit_writes_it():
    """acquit.structure's text said ``(V=, which…``: two adjacent literals
    (``"…(V=" "", which…"``) in the rules table lost the quotes of ``V=""`` (ruff's
    ISC001 now refuses such a pair on one line)."""
    row = next(line for line in _docgen.rules_reference().splitlines()
               if line.startswith("| `acquit.structure` |"))
    assert 'or empty (V="", which their *_Light types allow' in row, row


def _leading_numbers(items: list[str]) -> set[int]:
    return {int(m.group(1)) for item in items if (m := re.match(r"(\d+)(?: |$)", item.strip()))}


def test_every_exit_code_is_documented_where_exit_codes_are_listed():
    """README's list and docs/flow.md's table give every ExitCode (and 130, an
    interrupt): README's stopped at 9, without acquit's 10 (TO_CHECK, then UNTIED)."""
    from pesgen.errors import ExitCode

    codes = {int(code) for code in ExitCode} | {130}
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    listed = readme.split("Exit codes: ", 1)[1].split(" interrupted", 1)[0]
    assert _leading_numbers(listed.split(", ")) == codes, listed
    flow = (ROOT / "docs" / "flow.md").read_text(encoding="utf-8")
    table = flow.split("## Exit codes", 1)[1]
    assert {int(n) for n in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)} == codes
    # the acquit's own: docs/state.md says each of its exits where it says the report's
    state = " ".join((ROOT / "docs" / "state.md").read_text(encoding="utf-8").split())
    said = state.split("The exit code is still the report's: ", 1)[1].split(". ", 1)[0]
    assert _leading_numbers(said.split(", ")) == {0, 9, 10}, said


def _waivers_rows() -> dict[str, str]:
    """docs/state.md's table of the checks a rebuilt run's mapping is let through: the
    first cell's rule id, and the row."""
    text = (ROOT / "docs" / "state.md").read_text(encoding="utf-8")
    section = text.split("<!-- generated: waivers ")[1].split("<!-- end generated: waivers")[0]
    return {m.group(1): line for line in section.splitlines()
            if (m := re.match(r"\| `([a-z.-]+)`", line))}


def test_the_waivers_table_lists_every_check_a_rebuild_lets_through():
    """docs/state.md's table was written by hand and lacked mapping.csv-lines; it is made
    from mapping.RENDERS_NOTHING and _docgen.WAIVED_ELSEWHERE now."""
    from pesgen.mapping import RENDERS_NOTHING

    rows = _waivers_rows()
    wanted = set(RENDERS_NOTHING) | {rule for rule, *_ in _docgen.WAIVED_ELSEWHERE}
    assert "mapping.csv-lines" in rows
    assert set(rows) == wanted, sorted(set(rows) ^ wanted)


def test_each_check_waived_elsewhere_is_waived_where_the_table_says():
    """WAIVED_ELSEWHERE names the code that lets each check through: it exists, and its
    source names the rule (a rename or a move fails here, not in the reader's hands)."""
    import importlib
    import inspect

    for rule, _, _, where in _docgen.WAIVED_ELSEWHERE:
        module, *names = where.split(".")
        obj = importlib.import_module(f"pesgen.{module}")
        for name in names:
            obj = getattr(obj, name)
        source = inspect.getsource(obj)
        key = rule if rule != "mapping.schema" else "_ICS_KEY"
        assert key in source or f'"{rule}"' in source, (where, rule)


def test_a_generated_section_needs_its_markers():
    import pytest

    make = lambda: "made\n"  # noqa: E731
    page = ("a\n" + _docgen._begin("x") + "old\n" + _docgen._end("x") + "b\n")
    assert _docgen.with_section("p.md", page, "x", make) == page.replace("old", "made")
    for broken in ("a\n", page + _docgen._end("x"),
                   _docgen._end("x") + _docgen._begin("x")):
        with pytest.raises(SystemExit, match="docs/p.md: the markers of section x"):
            _docgen.with_section("p.md", broken, "x", make)


def _pages() -> list:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _fenced(text: str):
    """(language, [(line number, line)]) of each fenced block of a page."""
    lang, body = None, []
    for n, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"\s*```(\w*)\s*$", line)
        if fence and lang is None:
            lang, body = fence.group(1), []
        elif fence:
            yield lang, body
            lang = None
        elif lang is not None:
            body.append((n, line))


def _doc_command_lines() -> list[tuple[str, list[str]]]:
    """Each ``pesgen …`` command the pages show to be typed: the lines of their ```sh
    blocks (continued by ``\\``, split at ``&&``, comments dropped) and the ``$ pesgen``
    lines of the other blocks, as (page:line, its words after ``pesgen``); a synopsis'
    ``[--replace]`` is read as the option it shows."""
    import shlex

    found = []
    for page in _pages():
        for lang, body in _fenced(page.read_text(encoding="utf-8")):
            typed, joined = [], ""
            for n, line in body:
                if lang != "sh":
                    if line.lstrip().startswith("$ pesgen "):
                        typed.append((n, line.lstrip()[2:]))
                    continue
                joined += line.rstrip().removesuffix("\\")
                if not line.rstrip().endswith("\\"):
                    typed.append((n, joined))
                    joined = ""
            for n, text in typed:
                words = shlex.split(text.replace("[", " ").replace("]", " "), comments=True)
                while words:
                    part = words[:words.index("&&")] if "&&" in words else words
                    words = words[len(part) + 1:]
                    if part and part[0].rsplit("/", 1)[-1] == "pesgen":
                        found.append((f"{page.name}:{n}", part[1:]))
    return found


@functools.cache
def _pesgen_command():
    import typer

    from pesgen.cli import app

    return typer.main.get_command(app)


def _command_of(words: list[str]):
    """The click command ``pesgen WORDS`` runs, and the words left for its parser."""
    command = _pesgen_command()
    while words and words[0] in getattr(command, "commands", {}):
        command, words = command.commands[words[0]], words[1:]
    return command, words


def test_every_command_line_the_docs_show_parses():
    """The pages' command lines are what a technician types: each names commands and
    options pesgen has, gives each option its value, and no more arguments than the
    command takes (nor a subcommand its group lacks). Parsed by pesgen's own click
    parser, never run. (Checked only by hand until session 24's walk of the docs.)"""
    lines = _doc_command_lines()
    assert len(lines) > 30, f"the scan found {len(lines)} command lines: the pattern is broken"
    broken = []
    for where, words in lines:
        command, rest = _command_of(words)
        context = command.context_class(command, info_name=" ".join(words[:1]))
        try:
            _, positional, _ = command.make_parser(context).parse_args(list(rest))
        except Exception as exc:  # click's NoSuchOption, BadOptionUsage…
            broken.append(f"{where}: pesgen {' '.join(words)}: {exc}")
            continue
        if positional:  # what neither a subcommand, an option nor an argument took
            broken.append(f"{where}: pesgen {' '.join(words)}: {positional} left over")
    assert not broken, "\n".join(broken)


def test_every_option_named_beside_a_command_in_the_docs_exists():
    """Inline, a page names a command with its options (`pesgen runs cancel RUN --reason
    TEXT [--bordereau N]…`, `pesgen export … --dry-run`): each ``--option`` after the
    command's name must be one of its options."""
    spans = 0
    unknown = []
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"pesgen((?: [a-z][a-z-]*)+)([^`\n]*)", text):
            command, _ = _command_of(m.group(1).split())
            if hasattr(command, "commands"):
                continue
            spans += 1
            names = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            for option in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", m.group(2)):
                if option not in names:
                    line = text.count("\n", 0, m.start()) + 1
                    unknown.append(f"{page.name}:{line}: pesgen{m.group(1)}: {option}")
    assert spans > 100, f"the scan found {spans} commands named: the pattern is broken"
    assert not unknown, "\n".join(unknown)


def test_every_command_is_named_in_the_docs():
    """Each command and subcommand of ``pesgen --help`` is named (``pesgen runs
    cancel``) in README.md or docs/: a command added without a word on it fails here."""
    pages = "".join(page.read_text(encoding="utf-8") for page in _pages())
    unnamed, seen = [], 0

    def walk(command, path):
        nonlocal seen
        for name, sub in getattr(command, "commands", {}).items():
            seen += 1
            if f"pesgen {' '.join([*path, name])}" not in pages:
                unnamed.append(" ".join([*path, name]))
            walk(sub, [*path, name])

    walk(_pesgen_command(), [])
    assert seen > 25, f"the walk found {seen} commands: it is broken"
    assert not unnamed, unnamed


def _shown_as(shown: list[str], printed: str) -> bool:
    """Whether ``printed`` is, line for line, the ``shown`` lines of a page, each ``…``
    in them standing for any text of its line (what the page abbreviates), and an id's
    first digits before it (``5d324a3f-…``) for any id; times are masked on both sides."""

    def masked(text: str) -> str:
        for pattern, said in _RUN_SPECIFIC:
            text = pattern.sub(said, text)
        return text

    lines = masked(printed.rstrip("\n")).split("\n")
    patterns = [re.compile(".*?".join(map(re.escape, re.sub(r"\b[0-9a-f]+-?…", "…",
                                                            masked(line)).split("…"))))
                for line in shown]
    assert len(lines) == len(patterns), (shown, lines)
    for pattern, line in zip(patterns, lines, strict=True):
        assert pattern.fullmatch(line), (pattern.pattern, line)
    return True


def test_the_acquits_state_md_offers_to_try_answer_the_quick_start_run(tmp_path):
    """docs/state.md tells support to try `pesgen acquit` on tests/acquit/accepted.xml
    and rejected.xml after the README's quick start export: they answer that run."""
    from .conftest import EXAMPLES, MAPPINGS, run_cli

    text = (ROOT / "docs" / "state.md").read_text(encoding="utf-8")
    assert "pesgen acquit\ntests/acquit/accepted.xml` reports it accepted (exit 0)" in text
    db = ("--db", tmp_path / "demo.sqlite3")
    made = run_cli("export", "--mapping", MAPPINGS / "villeneuve-sur-loing.yaml", "--input",
                   EXAMPLES / "school-export.json", "--out", tmp_path / "out",
                   "--date", "2026-11-23", *db, "--create-store")
    assert made.exit_code == 0, made.output
    run = made.stdout.split(" run ", 1)[1].split()[0]
    accepted = run_cli("acquit", ROOT / "tests" / "acquit" / "accepted.xml", *db)
    assert accepted.exit_code == 0, accepted.output
    assert f"IdBord 1 exercise 2026 (DomaineAck 7 Rôle, line 31): accepted\n  run {run} " \
        in accepted.stdout
    rejected = run_cli("acquit", ROOT / "tests" / "acquit" / "rejected.xml", *db)
    assert rejected.exit_code == 9, rejected.output
    assert f"  next: pesgen runs cancel {run} --bordereau 1 " in rejected.stdout
    # the report the page shows after those words is the one printed, … standing for
    # what it leaves out (the run's id, the NomFic, the end of a line); the page's store
    # is the quick start's, the default one, so the command it gives names no --db
    [shown] = [[line for _, line in body] for _, body in _fenced(text.split(
        "tests/acquit/rejected.xml`", 1)[1])][:1]
    assert shown[0].startswith("rejected.xml: PES_ACQUIT"), shown
    printed = rejected.stdout.replace(str(ROOT / "tests" / "acquit") + "/", "")
    assert _shown_as(shown, printed.replace(f" --db {db[1]}", ""))
    rejected = run_cli("acquit", ROOT / "tests" / "acquit" / "rejected.xml", *db, "--record")
    assert rejected.exit_code == 9, rejected.output
    listed = run_cli("runs", "list", *db)
    assert "  Hélios: IdBord 1 rejected on 2026-11-24 with 3 error(s)" in listed.stdout
    # then runs find: the title's invoice beside its record, as the acquit names it
    [shown] = [[line for _, line in body] for _, body in _fenced(text.split(
        "`pesgen runs find FA-2026-00103` says under the title", 1)[1])][:1]
    found = run_cli("runs", "find", "FA-2026-00103", *db)
    assert found.exit_code == 0, found.output
    assert _shown_as(shown, found.stdout.replace(str(ROOT) + "/", "/…/"))


def test_the_reference_names_the_shipped_formats_that_write_the_creditor_id(tmp_path):
    """collectivity.sepa_creditor_id said 'for formats that carry it', and onboarding
    asks for the ICS whenever families pay by direct debit: a technician onboarding a
    pes-ormc collectivity filled it, and its files came out the same bytes without it.
    Each shipped mapping's example export, with the ICS changed, shows which formats
    write it; the reference names exactly those, and says the PES files do not."""
    from datetime import date

    from pesgen._schema import load_schema
    from pesgen.export import export
    from pesgen.mapping import load_mapping

    from .conftest import EXAMPLES, MAPPINGS, RUN_DATE
    from .mapping_support import mapping_copy

    writes: set[str] = set()
    for mapping in sorted(MAPPINGS.glob("*.yaml")):
        source = EXAMPLES / ("school-export.csv" if "csv" in mapping.name
                             else "school-export.json")
        other, _ = mapping_copy(tmp_path / mapping.stem, mapping, (
            "sepa_creditor_id: FR72ZZZ123456", "sepa_creditor_id: FR19ZZZ654321"))
        files = []
        for m, out in ((mapping, tmp_path / mapping.stem / "a"),
                       (other, tmp_path / mapping.stem / "b")):
            export(m, source, out, date.fromisoformat(RUN_DATE))
            files.append({p.name: p.read_bytes() for p in out.iterdir()})
        if files[0] != files[1]:
            writes.add(load_mapping(mapping).output.format)
    assert writes == {"bl-emagnus"}
    said = load_schema("mapping.schema.json")["properties"]["collectivity"]["properties"][
        "sepa_creditor_id"]["description"]
    named = set(re.findall(r"of the shipped formats only ([a-z-]+) writes it", said))
    assert named == writes, said
    assert "pes-ormc and pes-titres have no place for it" in said, said


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# run-specific values a doc writes as they were on the day it was run: masked on both sides
_RUN_SPECIFIC = [(re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)"), "<time>"),
                 (re.compile(r"FAKE\d+"), "<numauto>")]


class _Ids:
    """The UUIDs of a text in order of first appearance: the doc's n-th is pesgen's n-th
    (``<id n>`` on both sides, so an id said twice must be the same one twice)."""

    def __init__(self):
        self.seen: dict[str, int] = {}

    def mask(self, text: str) -> str:
        for found in _UUID.findall(text):
            self.seen.setdefault(found, len(self.seen))
        text = _UUID.sub(lambda m: f"<id {self.seen[m.group()]}>", text)
        for pattern, shown in _RUN_SPECIFIC:
            text = pattern.sub(shown, text)
        return text


def _shown_steps(page: str, heading: str, code: int) -> list[tuple[str, list[str], int]]:
    """The ``$ command`` lines of the block of the page's section ``heading`` that shows
    commands, each with the lines shown after it and the exit code it is said to end
    with."""
    section = page.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    [block] = [body for lang, body in _fenced(section) if body and body[0][1].startswith("$ ")]
    steps: list[tuple[str, list[str], int]] = []
    for _, line in block:
        if line.startswith("$ "):
            steps.append((line[2:], [], code))
        else:
            steps[-1][1].append(line)
    return steps


def test_the_payfip_anomalies_list_is_what_pesgen_prints(flow, store):
    """docs/payfip.md's "Anomalies: what support does" opens on the list support reads
    first: an amount-mismatch (PayFiP reported 50.00 of the 187.50 asked). It is what
    `pesgen payfip anomalies` prints of one, ids and times aside."""
    from .conftest import run_cli

    page = (ROOT / "docs" / "payfip.md").read_text(encoding="utf-8")
    section = page.split("\n## Anomalies: what support does\n", 1)[1]
    [shown] = [[line for _, line in body] for _, body in _fenced(section)][:1]
    link = flow.link("FA-2026-00102", mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {"montant": "5000"}})
    flow.pay(link, "card")
    listed = run_cli("payfip", "anomalies", "--db", store.url)
    assert listed.exit_code == 0, listed.output
    assert _shown_as(shown, listed.stdout)


def test_the_unsettled_refusal_is_what_payfip_link_prints(flow, store, tmp_path):
    """docs/payfip.md's "Paid through a cancelled title, not settled yet" shows the
    refusal support meets most since session 39: the family paid through the link of a
    title cancelled since, the invoice exported again, a new link asked. It is what
    `payfip link` prints, ids and times aside."""
    import textwrap

    from pesgen.runs import export_recorded

    from .conftest import run_cli
    from .payfip_support import INPUT, MAPPING, RUN_DATE

    page = (ROOT / "docs" / "payfip.md").read_text(encoding="utf-8")
    section = page.split("\n## Paid through a cancelled title, not settled yet\n", 1)[1]
    [body] = [body for _, body in _fenced(section)][:1]
    shown = textwrap.dedent("\n".join(line for _, line in body)).split("\n")
    flow.pay_cancelled("18750")
    export_recorded(lambda: store, MAPPING, INPUT, tmp_path / "again", RUN_DATE)
    refused = run_cli("payfip", "link", "-m", MAPPING, "-n", "FA-2026-00102", "--db",
                      store.url, "--endpoint", flow.endpoint)
    assert refused.exit_code == 7, refused.output
    assert _shown_as(shown, refused.stderr)


def test_the_payfip_demo_is_what_pesgen_prints(tmp_path, monkeypatch):
    """docs/payfip.md's demo says "real output": support shows it to explain a test
    payment, a production one and two lost notifications. Each of its commands is run
    (the example exported, the fake PayFiP and the receiver on ephemeral ports, curl as
    the family's browser) and prints what the page shows, ids, times and numauto aside.
    The export's summary had lost a line (transliterate) since it was written. Then the
    refusal "A paid invoice gets no new payment" shows, of the invoice the demo paid."""
    import json
    import shlex
    import shutil

    import httpx

    from pesgen.payfip.fake import FakePayfip
    from pesgen.payfip.receiver import create_app
    from pesgen.payfip.server import ServerThread
    from pesgen.payfip.service import default_factory
    from pesgen.store import Store

    from .conftest import EXAMPLES, MAPPINGS, run_cli
    from .payfip_support import TIMEOUT

    page = (ROOT / "docs" / "payfip.md").read_text(encoding="utf-8")
    steps = _shown_steps(page, "Demo (real output)", 0)
    assert len(steps) > 15, steps
    steps += _shown_steps(page, "A paid invoice gets no new payment", 7)
    (tmp_path / "examples").mkdir()
    shutil.copy(EXAMPLES / "school-export.json", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"  # the default store: `serve` creates it before the export
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    doc_ids, real_ids = _Ids(), _Ids()
    with ServerThread(FakePayfip().app) as fake, \
            ServerThread(create_app(Store(), default_factory(timeout=TIMEOUT))) as receiver:
        (tmp_path / "mappings").mkdir()
        mapping = (MAPPINGS / "villeneuve-sur-loing.yaml").read_text(encoding="utf-8")
        assert "http://127.0.0.1:8765/payfip/notification" in mapping
        (tmp_path / "mappings" / "villeneuve-sur-loing.yaml").write_text(
            mapping.replace("http://127.0.0.1:8765", receiver.url), encoding="utf-8")

        def real(text: str) -> str:  # as the page's machine would have printed it
            return (text.replace(fake.url, "http://127.0.0.1:8700")
                    .replace(str(data), "/home/ecole/.local/share")
                    .replace(str(tmp_path), "/tmp/demo"))

        def typed(command: str) -> list[str]:  # the doc's ids made this run's
            ids = {doc: n for doc, n in doc_ids.seen.items()}
            mine = {n: id_ for id_, n in real_ids.seen.items()}
            for doc, n in ids.items():
                command = command.replace(doc, mine[n]).replace(doc[:8], mine[n][:8])
            return shlex.split(command.replace("http://127.0.0.1:8700", fake.url))

        for command, shown, code in steps:
            words, grep = typed(command), None
            if "|" in words:
                words, grep = words[:words.index("|")], words[words.index("|") + 1:]
            if words[0] == "export":
                name, value = words[1].split("=", 1)
                monkeypatch.setenv(name, typed(value)[0])
                printed = ""
            elif words[0] == "pesgen":
                result = run_cli(*words[1:])
                assert result.exit_code == code, (command, result.output)
                printed = result.output
            elif words[0] == "curl":
                form = words[words.index("-d") + 1] if "-d" in words else None
                if form is None:
                    answer = httpx.get(words[-1], timeout=TIMEOUT)
                elif form.startswith("{"):
                    answer = httpx.post(words[-1], json=json.loads(form), timeout=TIMEOUT)
                else:
                    answer = httpx.post(words[-1], content=form, timeout=TIMEOUT, headers={
                        "Content-Type": "application/x-www-form-urlencoded"})
                printed = answer.text
            else:
                assert words[:2] == ["grep", "-c"], command
                lines = (tmp_path / words[3]).read_text(encoding="utf-8").splitlines()
                printed = f"{sum(words[2] in line for line in lines)}\n"
            if grep is not None:
                assert grep[:2] == ["grep", "-o"], command
                printed = "".join(f"{m}\n" for m in re.findall(grep[2], printed))
            expected = doc_ids.mask("\n".join(shown))
            assert real_ids.mask(real(printed).rstrip("\n")) == expected, command


def _onboarding() -> str:
    return (ROOT / "docs" / "onboarding.md").read_text(encoding="utf-8")


def test_the_template_error_onboarding_shows_is_what_preview_prints(tmp_path, monkeypatch):
    """docs/onboarding.md's template error is the scaffold's own template (new-format)
    with t.debtor.name mistyped, previewed: its file, line and listing are what pesgen
    prints. The page showed lignes.csv.j2:60, a template the scaffold has not, and the
    error line alone, without the listing and the count under it."""
    from .conftest import EXAMPLES, MAPPINGS, run_cli
    from .mapping_support import mapping_copy

    section = _onboarding().split("**A template error names the file and the line**", 1)[1]
    [shown] = [[line for _, line in body] for _, body in _fenced(section)][:1]
    assert shown[0].startswith("$ pesgen preview "), shown
    monkeypatch.chdir(tmp_path)
    made = run_cli("new-format", "ciril-civil-finance", "--kind", "csv", "--dir", "formats")
    assert made.exit_code == 0, made.output
    template = tmp_path / "formats" / "ciril-civil-finance" / "ciril-civil-finance.csv.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count("t.debtor.name,") == 1
    template.write_text(text.replace("t.debtor.name,", "t.debtor.nom,"), encoding="utf-8")
    mapping_copy(tmp_path / "mappings", MAPPINGS / "villeneuve-sur-loing.yaml",
                 ("format: pes-ormc", "format: ciril-civil-finance"),
                 name="villeneuve-ciril.yaml")
    (tmp_path / "export.json").write_bytes((EXAMPLES / "school-export.json").read_bytes())
    # the example's debits fall on 2026-12-05: the page's command dates it as it was
    # billed (the quick start's --date); without it, from 2026-12-06 the first invoice is
    # refused before it is rendered and the error names FA-2026-00102, not the page's
    assert "--date 2026-11-23" in shown[0], shown[0]
    words = shown[0][len("$ pesgen "):].split()
    previewed = run_cli(*words)
    assert previewed.exit_code == 5, previewed.output
    assert previewed.stdout == ""
    assert _shown_as(shown[1:], previewed.stderr)


def test_the_todo_onboarding_quotes_is_the_scaffold_mappings(tmp_path, monkeypatch):
    """docs/onboarding.md step 4 quotes check-mapping's refusal of the scaffold's TODO
    invoice number, at its line: new-mapping's scaffold, with the page's command, has it
    there (the page said line 35 when the scaffold had it on 36). Step 1's bundle scaffolded
first, as the page's commands go."""
    from .conftest import run_cli

    quoted = re.search(r"\(`(still the scaffold's placeholder TODO: .*?mapping\.todo\))`\)",
                       " ".join(_onboarding().split()))
    assert quoted, "the quote of mapping.todo's message is gone from step 4"
    monkeypatch.chdir(tmp_path)
    made = run_cli("new-format", "ciril-civil-finance", "--kind", "csv", "--dir", "formats")
    assert made.exit_code == 0, made.output
    made = run_cli("new-mapping", "Commune de Villeneuve-sur-Loing", "--format",
                   "ciril-civil-finance", "--formats-dir", "formats",
                   "--out", "mappings/villeneuve-ciril.yaml")
    assert made.exit_code == 0, made.output
    checked = run_cli("check-mapping", "mappings/villeneuve-ciril.yaml", "--formats-dir", "formats")
    assert checked.exit_code == 3, checked.output
    said = [line.removeprefix("  - ") for line in checked.stderr.splitlines()
            if "bindings.invoice.number]" in line]
    assert len(said) == 1, checked.stderr
    assert _shown_as([quoted.group(1)], said[0])


def test_the_summary_flow_md_reads_line_by_line_is_what_the_quick_start_prints(
        tmp_path, monkeypatch):
    """docs/flow.md's "Reading the summary, line by line" explains to support, line by
    line, what README.md's quick start prints. The quick start's own export command is
    run as a new user runs it (from a folder holding the checkout's examples/ and
    mappings/, the default store not there yet, the relative out/): its summary is the
    page's, the run's id and the store's home aside; the page's ``…`` lines stand for
    what it leaves out (the page's ``  …`` alone on its line: any lines)."""
    import shlex
    import shutil

    from .conftest import run_cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    [command] = [line for _, body in _fenced(quick) for _, line in body
                 if "pesgen export" in line][:1]
    words = shlex.split(command.split("&& .venv/bin/pesgen ", 1)[1])
    assert words[:1] == ["export"] and "--date" in words, words
    flow = (ROOT / "docs" / "flow.md").read_text(encoding="utf-8")
    section = flow.split("\n## Reading the summary, line by line\n", 1)[1]
    [shown] = [[line for _, line in body] for _, body in _fenced(section)][:1]
    assert shown[0].startswith("pesgen "), shown
    for folder in ("examples", "mappings"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    made = run_cli(*words)
    assert made.exit_code == 0, made.output
    printed = (_UUID.sub("<run>", made.stdout)
               .replace(str(tmp_path / "data"), "/home/ecole/.local/share")).splitlines()
    shown = [_UUID.sub("<run>", line) for line in shown]
    cut = shown.index("  …") if "  …" in shown else len(shown)
    head, tail = shown[:cut], shown[cut + 1:]
    assert len(printed) >= len(head) + len(tail), (shown, printed)
    assert _shown_as(head, "\n".join(printed[:len(head)]))
    assert not tail or _shown_as(tail, "\n".join(printed[-len(tail):]))


def test_the_refusals_onboarding_shows_of_check_mapping_are_what_it_prints(
        tmp_path, monkeypatch):
    """docs/onboarding.md step 4 shows two refusals of check-mapping a technician meets
    writing a mapping and a bundle: a jvs-millesime mapping without address.street
    (mapping.unbound), and a Corail template writing TypePiecePES '1' (xsd.bundle). Made
    as the page says, from the shipped mappings and bundle, each is what check-mapping
    prints, to the last line (the page had left out the count line, and the Corail one
    the second of the two problems its first line counts)."""
    import shutil

    from .conftest import MAPPINGS, run_cli
    from .mapping_support import mapping_copy

    page = _onboarding()
    monkeypatch.chdir(tmp_path)
    mapping_copy(tmp_path / "mappings", MAPPINGS / "villeneuve-sur-loing-jvs.yaml",
                 ("    street: payer.address.street\n", ""), name="villeneuve-jvs.yaml")
    shutil.copytree(ROOT / "templates" / "cosoluce-corail", tmp_path / "formats" /
                    "cosoluce-corail")
    template = tmp_path / "formats" / "cosoluce-corail" / "corail.xml.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count('<TypePiecePES V="01"/>') == 1
    template.write_text(text.replace('<TypePiecePES V="01"/>', '<TypePiecePES V="1"/>'),
                        encoding="utf-8")
    shutil.copy(MAPPINGS / "villeneuve-sur-loing-corail.yaml",
                tmp_path / "mappings" / "villeneuve-corail.yaml")
    for heading, words, code in (
            ("Left out where a template does", ["mappings/villeneuve-jvs.yaml"], 3),
            ("is found here rather than at the first dry run",
             ["mappings/villeneuve-corail.yaml", "--formats-dir", "formats"], 6)):
        [shown] = [[line for _, line in body]
                   for _, body in _fenced(" ".join(page.split(heading, 1)[1:]))][:1]
        assert shown[0].startswith(f"error: {words[0]}: "), shown
        checked = run_cli("check-mapping", *words)
        assert checked.exit_code == code, checked.output
        assert _shown_as(shown, checked.stderr.rstrip("\n")), (shown, checked.stderr)


def test_the_refusal_to_cancel_an_accepted_bordereau_is_what_runs_cancel_prints(tmp_path):
    """docs/state.md, "Cancelling a bordereau the trésorerie accepted": the refusal
    support meets when the school asks to send again a file the trésorerie took. The
    page's case made real (the sequence started at 41, the quick start exported, the
    trésorerie's acceptance of IdBord 41 recorded from PES_ACQUIT_1.xml): `runs cancel`
    prints it, the run's id and the times aside, to its last line (which the page had
    left out)."""
    from .conftest import EXAMPLES, MAPPINGS, run_cli

    page = (ROOT / "docs" / "state.md").read_text(encoding="utf-8")
    section = page.split("\n### Cancelling a bordereau the trésorerie accepted\n", 1)[1]
    [shown] = [[line for _, line in body] for _, body in _fenced(section)][:1]
    assert shown[0].startswith("error: run "), shown
    db = ("--db", tmp_path / "store.sqlite3")
    mapping = MAPPINGS / "villeneuve-sur-loing.yaml"
    started = run_cli("numbering", "set-start", "--mapping", mapping, "--start", "41", *db,
                      "--create-store")
    assert started.exit_code == 0, started.output
    made = run_cli("export", "--mapping", mapping, "--input", EXAMPLES / "school-export.json",
                   "--out", tmp_path / "out", "--date", "2026-11-23", *db)
    assert made.exit_code == 0, made.output
    run = made.stdout.split(" run ", 1)[1].split()[0]
    acquit = (ROOT / "tests" / "acquit" / "accepted.xml").read_bytes()
    for old, new in ((b'<NumBord V="1"/>', b'<NumBord V="41"/>'),
                     (b"_2026_0000001.xml", b"_2026_0000041.xml")):
        assert acquit.count(old) == 1, old
        acquit = acquit.replace(old, new)
    (tmp_path / "PES_ACQUIT_1.xml").write_bytes(acquit)
    recorded = run_cli("acquit", tmp_path / "PES_ACQUIT_1.xml", "--record", *db)
    assert recorded.exit_code == 0, recorded.output
    refused = run_cli("runs", "cancel", run, "--reason", "wrong term", *db)
    assert refused.exit_code == 7, refused.output
    assert _shown_as(shown, refused.stderr.rstrip("\n")), (shown, refused.stderr)
