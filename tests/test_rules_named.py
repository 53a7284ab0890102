"""Every rule id docs/rules.md lists is named by a test: a rule added to
``pesgen/rules.py`` or to ``pesgen/_docgen.py``'s ``OTHER_RULES`` without a test that
meets it fails here, naming the rule.

A test names a rule when one of its strings (not a comment) is the id itself
(``p.rule == "input.total"``, ``_only(exc, "template")``) or says ``rule <id>`` (the way
a problem is printed: ``"… (rule input.total)"``). A row listing several ids
(`` `xml.pesgen` / `xml.bundle` / `xml.dgfip` ``) counts each of them. An id built at
runtime (``f"payfip.{name}"``) is not seen: some test must write it out."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from pesgen._docgen import OTHER_RULES
from pesgen.rules import RULES

from .conftest import ROOT

TESTS = Path(__file__).parent
_STRINGS = {tokenize.STRING} | {getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def documented_ids() -> list[str]:
    """The rule ids of docs/rules.md's tables, in their order, each once."""
    ids = [r.id for r in RULES]
    for _stage, listed, _what, _source in OTHER_RULES:
        ids += [x.strip() for x in listed.split("/")]
    return list(dict.fromkeys(ids))


def _strings(path: Path) -> list[str]:
    """The string literals of a Python file, as written (prefix and quotes included;
    an f-string's text parts on Python 3.12)."""
    source = path.read_text(encoding="utf-8")
    return [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type in _STRINGS]


def names(rule: str) -> re.Pattern[str]:
    """What names ``rule`` in a string literal: the whole literal, or ``rule <id>``, not
    followed by more of an id (``pes.text`` is not ``pes.text-length``)."""
    end = r"(?![\w-]|\.\w)"
    return re.compile(r"""^[rbfuRBFU]*(["']{1,3})""" + re.escape(rule) + r"\1$|\brule "
                      + re.escape(rule) + end)


def test_the_ids_read_are_those_of_docs_rules_md():
    """The guard reads _docgen's list: the ids of docs/rules.md's table rows (their first
    cell) are the same ones (the page is generated from it: _docgen --check)."""
    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    page = page.split("\n## Choices where")[0]  # not the table of choices
    listed = []
    for row in page.splitlines():
        if row.startswith("| `"):
            listed += re.findall(r"`([^`]+)`", row.split(" | ", 1)[0])
    assert sorted(set(listed)) == sorted(documented_ids())
    assert {"acquit.domain", "xml.dgfip", "payfip.urlredirect"} <= set(documented_ids())


def test_the_matcher_takes_a_named_rule_and_nothing_longer():
    assert names("pes.text").search('"pes.text"')
    assert names("pes.text").search("'… (rule pes.text)'")
    assert names("template").search("'template'")
    assert not names("pes.text").search('"pes.text-length"')
    assert not names("pes.text").search('"(rule pes.text-length)"')
    assert not names("input.json").search('"rule input.json-depth"')
    assert not names("payfip.exer").search('"as payfip.exer sets it"')  # a mapping key
    assert not names("template").search('"a template error"')


def test_every_documented_rule_is_named_by_a_test():
    strings = [s for path in sorted(TESTS.rglob("*.py")) if path != Path(__file__)
               for s in _strings(path)]
    missing = [rule for rule in documented_ids()
               if not any(names(rule).search(s) for s in strings)]
    assert not missing, (
        f"{len(missing)} rule(s) of docs/rules.md named by no test (a string that is the "
        f"id, or says 'rule <id>'): {', '.join(missing)}; add a test that meets each one "
        "and asserts the problem carries it")
