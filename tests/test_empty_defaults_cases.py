"""format.empty-default (coverage.empty_defaults): the cases hand mutation of the
fifty-fourth session's check showed untested (mut58): each warning only when a template
reads what it is about, an option's line without a comment said without one, a mapping
binding no direct debit, and the creditor identifier's advice."""

from __future__ import annotations

from pesgen.coverage import empty_defaults
from pesgen.formats import find_format, load_format
from pesgen.mapping import load_mapping

from .conftest import MAPPINGS, bundle_edited
from .mapping_support import mapping_copy

EMAGNUS = MAPPINGS / "villeneuve-sur-loing-emagnus.yaml"
OPTIONS = "doc.options"
ICS = "doc.collectivity.sepa_creditor_id"


def _unset(tmp_path, *more):
    mapping, _ = mapping_copy(tmp_path, EMAGNUS, ("    service: CONSERVATOIRE\n", ""),
                              ("  sepa_creditor_id: FR72ZZZ123456\n", ""), *more)
    return load_mapping(mapping)


def test_each_warning_is_of_what_a_template_reads(tmp_path):
    mapping, fmt = _unset(tmp_path), find_format("bl-emagnus")
    assert empty_defaults(mapping, fmt, frozenset()) == []
    assert [p.mapping.rsplit(": ", 1)[1] for p in empty_defaults(
        mapping, fmt, frozenset({OPTIONS}))] == ["defaults.options.service"]
    [ics] = empty_defaults(mapping, fmt, frozenset({ICS}))
    assert ics.message == (
        "collectivity.sepa_creditor_id is not set: a template of format bl-emagnus writes "
        "it for each direct debit, which is written empty; set it to the collectivity's "
        "ICS (docs/mapping-reference.md)")


def test_a_mapping_binding_no_direct_debit_is_not_told_of_the_ics(tmp_path):
    mapping = _unset(tmp_path, ("    direct_debit: payment.method\n", ""))
    assert mapping.bindings["payment"].get("direct_debit") is None
    assert empty_defaults(mapping, find_format("bl-emagnus"), frozenset({ICS})) == []


def test_an_option_without_a_comment_is_said_without_one(tmp_path):
    fmts, line = bundle_edited(tmp_path, "bl-emagnus", "format.yaml",
                               '    service: ""             # column 28, analytic axis 1 '
                               '(e.g. ECOLE MUSI)', '    service: ""')
    [said] = empty_defaults(_unset(tmp_path), load_format(fmts / "bl-emagnus"),
                            frozenset({OPTIONS}))
    assert said.message == (
        "output.options.service is not set: format bl-emagnus's default is empty; set "
        "output.options.service in the mapping if the import needs a value")
    assert said.mapping == f"{fmts / 'bl-emagnus' / 'format.yaml'}:{line}: " \
        "defaults.options.service"
