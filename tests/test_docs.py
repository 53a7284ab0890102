"""The reference docs are generated from the code and may not drift from it."""

from __future__ import annotations

import re

from pesgen import _docgen

from .conftest import ROOT

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
