"""mapping.const-code (walk64): a {const} binding a code table translates, whose value
the table lacks, refused when the mapping loads. The cases hand mutation of the
fifty-fourth session's check showed untested (mut58): constants that are no code
(empty, null, a list) left to the invoices, a number given as a payment method, the
SEPA sequences pesgen knows named only when the mapping has no table of them, every
close code offered, a payment method's own close match, the joint payer's kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from pesgen.errors import ExitCode, MappingError
from pesgen.mapping import load_mapping

from .conftest import MAPPINGS

TEXT = (MAPPINGS / "villeneuve-sur-loing.yaml").read_text(encoding="utf-8")


def _written(tmp_path: Path, *pairs: tuple[str, str], text: str = TEXT) -> Path:
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _said(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(MappingError) as refused:
        load_mapping(path)
    assert refused.value.exit_code == ExitCode.MAPPING
    return [(p.rule, p.message) for p in refused.value.problems]


@pytest.mark.parametrize("const", ['" "', "null", "[a, b]"])
def test_a_constant_that_is_no_code_is_left_to_the_invoices(tmp_path, const):
    """An empty constant is the field missing, a list no code: each is said by invoice
    as what it is, not as a code the table lacks."""
    path = _written(tmp_path, ("    kind: payer.kind", f"    kind: {{const: {const}}}"))
    assert load_mapping(path).bindings["payer"]["kind"].kind == "const"


def test_a_number_given_as_the_payment_method_is_said_a_number(tmp_path):
    path = _written(tmp_path, ("    direct_debit: payment.method",
                               "    direct_debit: {const: 1}"))
    assert _said(path) == [(
        "mapping.const-code", "bindings.payment.direct_debit is {const: 1}, but it is a "
        "number, not a text of codes.payment_methods: every invoice it is read for would "
        "be refused (rule codes.payment-method); with the table, a constant no direct "
        "debit is a method it says false: {const: invoice}")]


def test_the_sepa_sequences_pesgen_knows_are_named_without_a_table_of_them(tmp_path):
    edits = (("    sequence: payment.mandate.sequence", "    sequence: {const: recurrent}"),
             ("    kind: payer.kind", "    kind: {const: Famille}"))
    without = _written(tmp_path, *edits, (
        '  sepa_sequences: {OOFF: "01", FRST: "02", RCUR: "03", FNAL: "04"}\n', ""))
    [(_, kind), (_, sequence)] = _said(without)
    assert "codes.sepa_sequences has no 'recurrent' (no codes.sepa_sequences: pesgen "\
        "knows OOFF, FRST, RCUR, FNAL): every invoice" in sequence, sequence
    assert "no codes.sepa_sequences" not in kind, kind  # a payer kind's table is its own
    # with a table of its own, the table is what the mapping lacks: said as such
    [(_, kind), (_, sequence)] = _said(_written(tmp_path, *edits))
    assert "codes.sepa_sequences has no 'recurrent': every invoice" in sequence, sequence


def test_every_close_code_is_offered(tmp_path):
    path = _written(tmp_path, ("    activity: activity.code", "    activity: {const: INST-PIANA}"))
    [(rule, message)] = _said(path)
    assert message == (
        "bindings.line.activity is {const: INST-PIANA}, but codes.activities has no "
        "'INST-PIANA': every invoice it is read for would be refused (rule codes.activity); "
        "did you mean 'INST-PIANO', 'INST-VIOLON', 'INST-GUIT'?")


def test_a_payment_method_close_to_one_of_the_table_is_offered_it(tmp_path):
    """A method written with another case is offered the table's, not the advice for a
    constant no direct debit."""
    path = _written(tmp_path, ("    direct_debit: payment.method",
                               "    direct_debit: {const: Invoice}"))
    [(_, message)] = _said(path)
    assert message.endswith("(rule codes.payment-method); did you mean 'invoice'?"), message


def test_the_joint_payer_s_kind_is_checked_as_the_payer_s(tmp_path):
    corail = (MAPPINGS / "villeneuve-sur-loing-corail.yaml").read_text(encoding="utf-8")
    path = _written(tmp_path, ("    kind: joint_payer.kind", "    kind: {const: Famille}"),
                    text=corail)
    with pytest.raises(MappingError) as refused:
        load_mapping(path)
    [problem] = refused.value.problems
    assert problem.rule == "mapping.const-code"
    assert problem.mapping.endswith(": bindings.joint_payer.kind"), problem.mapping
    assert "(rule codes.payer-kind)" in problem.message, problem.message
