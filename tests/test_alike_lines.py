"""Problems and notes alike said once (walk65, cli._problem_lines and cli._note_lines):
the cases hand mutation of the fifty-fourth session's code showed untested (mut58):
six alike are more than five, problems of an invoice or of a record alone are grouped,
problems differing only by the mapping place they name or what it points into are not
alike, and the notes are counted for the transliteration summary once."""

from __future__ import annotations

from collections import Counter

from pesgen.build import PolicyNote
from pesgen.cli import _note_lines, _problem_lines
from pesgen.errors import Problem


def _duplicates(n: int, **given) -> list[Problem]:
    return [Problem("run.duplicate", "already exported", **{k: v.format(i=i) for k, v in
                                                           given.items()}) for i in range(n)]


def test_six_problems_alike_are_said_once():
    lines = list(_problem_lines(_duplicates(6, record="x.csv:{i}", invoice="F-{i}")))
    assert lines == ["  - 6 problems alike, their records below: already exported "
                     "(rule run.duplicate)"] + [f"      x.csv:{i} invoice F-{i}"
                                                for i in range(6)]


def test_problems_of_an_invoice_alone_or_a_record_alone_are_grouped_too():
    for given, where in (({"invoice": "F-{i}"}, "invoice F-{i}"),
                         ({"record": "x.csv:{i}"}, "x.csv:{i}")):
        lines = list(_problem_lines(_duplicates(6, **given)))
        assert lines[0].startswith("  - 6 problems alike"), lines
        assert lines[1:] == ["      " + where.format(i=i) for i in range(6)], lines


def test_problems_naming_other_mapping_places_or_sources_are_not_alike():
    problems = [Problem("layout.values", "refused", record=f"x.csv:{i}",
                        mapping=f"m.yaml:{10 + i % 2}: bindings.payer.civility")
                for i in range(6)]
    assert not any("alike" in line for line in _problem_lines(problems))
    problems = [Problem("layout.values", "refused", record=f"x.csv:{i}",
                        mapping="layout.yaml:3: records[0]",
                        source="layout" if i % 2 else "format") for i in range(6)]
    assert not any("alike" in line for line in _problem_lines(problems))


def test_six_notes_alike_are_said_once_and_transliterations_counted_once():
    notes = [PolicyNote("account_holder", f"F-{i}", "x.csv", "empty") for i in range(6)]
    notes.append(PolicyNote("transliterate", "F-0", "x.csv", "debtor.name: Œ→OE",
                            field="debtor.name"))
    counted: Counter[str] = Counter()
    assert list(_note_lines(notes, counted)) == [
        ("  - 6 invoices (F-0, F-1, F-2 and 3 more): account_holder: empty", True)]
    assert counted == Counter({"debtor.name": 1})
