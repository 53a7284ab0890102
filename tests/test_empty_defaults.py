"""check-mapping warns of what a format's templates write empty unless the mapping says
otherwise (rule format.empty-default), from the bundle's data (an onboarding
walk-through's e.magnus mapping left service and the creditor ID empty, unwarned):
an option whose format.yaml default is empty, left out of output.options, and the
collectivity's SEPA creditor identifier a template reads, unset with direct debits."""

from __future__ import annotations

import json

from pesgen.formats import find_format

from .conftest import MAPPINGS, bundle_edited, run_cli
from .mapping_support import mapping_copy

EMAGNUS = MAPPINGS / "villeneuve-sur-loing-emagnus.yaml"


def _warnings(mapping, *more):
    made = run_cli("check-mapping", mapping, "--format", "json", *more)
    assert made.exit_code == 0, made.output
    [result] = json.loads(made.stdout)["mappings"]
    return [w for w in result["warnings"] if w["rule"] == "format.empty-default"]


def test_an_option_left_at_its_empty_default_and_an_unset_ics_are_warned_of(tmp_path):
    mapping, _ = mapping_copy(tmp_path, EMAGNUS, (
        "    service: CONSERVATOIRE\n", ""), ("  sepa_creditor_id: FR72ZZZ123456\n", ""))
    warned = _warnings(mapping)
    folder = find_format("bl-emagnus").folder
    assert [(w["file"], w["key"], w["source"]) for w in warned] == [
        (str(folder / "format.yaml"), "defaults.options.service", "format"),
        (str(mapping), "collectivity", "mapping")]
    assert warned[0]["message"] == (
        "output.options.service is not set: format bl-emagnus's default is empty (its "
        "format.yaml says: column 28, analytic axis 1 (e.g. ECOLE MUSI)); set "
        "output.options.service in the mapping if the import needs a value")
    assert warned[0]["line"] == 39
    assert warned[1]["message"].startswith(
        "collectivity.sepa_creditor_id is not set: a template of format bl-emagnus writes "
        "it for each direct debit, which is written empty")
    # the shipped mapping sets both: nothing said
    assert _warnings(EMAGNUS) == []
    # a mapping whose titles are never direct debits: no ICS to write
    never, _ = mapping_copy(tmp_path / "never", mapping, (
        "    direct_debit: payment.method\n", "    direct_debit: {const: invoice}\n"))
    assert [w["key"] for w in _warnings(never)] == ["defaults.options.service"]


def test_the_option_warning_is_the_bundle_s_data_not_a_format_s_name(tmp_path):
    """A bundle copied under another name with a new empty option: warned of by that
    name, with its format.yaml comment."""
    fmts, line = bundle_edited(tmp_path, "bl-emagnus", "format.yaml",
                               '    service: ""             # column 28',
                               '    pole: ""  # the pole, column 29\n    service: ""  # c28')
    mapping, _ = mapping_copy(tmp_path, EMAGNUS, ("    service: CONSERVATOIRE\n", ""))
    warned = _warnings(mapping, "--formats-dir", fmts)
    assert [(w["key"], w["line"]) for w in warned] == [
        ("defaults.options.pole", line), ("defaults.options.service", line + 1)]
    assert "(its format.yaml says: the pole, column 29)" in warned[0]["message"]
