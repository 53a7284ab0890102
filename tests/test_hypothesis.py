"""Property: any text in any free-text field of an invoice gives either a file that is
well-formed and valid against pesgen's XSD (and the DGFiP one when present), or an
``InputDataError`` whose problems all name that field. Never another exception, never
an invalid file, never a partial output."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from pesgen.errors import InputDataError
from pesgen.export import export
from pesgen.formats import find_format
from pesgen.validate import load_xsd, official_xsd_path, validate_pes_file

from .conftest import EXAMPLES, MAPPINGS, OFFICIAL_DIR, OFFICIAL_ENTRY
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
OWN_XSD = find_format("pes-ormc").files[0].xsd
OFFICIAL = OFFICIAL_DIR if OFFICIAL_ENTRY.is_file() else None
# 75 examples per mapping by default; PESGEN_HYPOTHESIS_EXAMPLES=5000 for a long hunt.

# drawn field -> (where in the invoice JSON, names a problem may use for it)
FIELDS: dict[str, tuple[tuple[str | int, ...], tuple[str, ...]]] = {
    "last_name": (("payer", "last_name"), ("debtor.name", "bindings.payer.name")),
    "first_name": (("payer", "first_name"), ("debtor.first_name",
                                             "bindings.payer.first_name")),
    "street": (("payer", "address", "street"), ("address.street",)),
    "complement": (("payer", "address", "complement"), ("address.complement",)),
    "city": (("payer", "address", "city"), ("address.city",)),
    "line_label": (("lines", 0, "activity", "label"), ("line.label",)),
    "rum": (("payment", "mandate", "rum"), ("mandate.rum", "payment.rum")),
    "holder": (("payment", "mandate", "holder"), ("account.holder",
                                                  "bindings.payment.holder")),
    "ref": (("payer", "ref"), ("debtor.ref",)),
    "postal_code": (("payer", "address", "postal_code"), ("address.postal_code",)),
    "country": (("payer", "address", "country"), ("address.country", "codes.countries")),
}


def _base_invoice() -> dict:
    """FA-2026-00101 reduced to its first line (its Latin-1 only content passes the
    strict mapping too), with no address complement so that a long street may split."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    inv = copy.deepcopy(data["invoices"][0])
    inv["lines"] = inv["lines"][:1]
    inv["total"] = inv["lines"][0]["amount"]
    inv["payer"]["address"]["complement"] = ""
    return inv


BASE = _base_invoice()


@pytest.fixture(scope="module")
def mappings(tmp_path_factory) -> dict[str, Path]:
    """The example mapping (transliterate, upper case, newlines to spaces) and a strict
    variant of it (no transliteration, case kept, line breaks refused)."""
    path, _ = mapping_copy(tmp_path_factory.mktemp("mappings"), MAPPING,
                           ("transliterate: true", "transliterate: false"),
                           ("case: upper", "case: keep"), ("newlines: space", "newlines: refuse"),
                           name="strict.yaml")
    return {"example": MAPPING, "strict": path}


def test_base_invoice_exports_with_both_mappings(mappings):
    for path in mappings.values():
        with tempfile.TemporaryDirectory() as d:
            _, problems = _export(path, BASE, Path(d))
            assert problems is None


# Characters that stress XML, the PES text rules, SEPA, Latin-1 and the splits.
TRICKY = st.sampled_from([
    "a", "Z", "é", "Ü", "0", "1", ".", ",", ", ", " ", "  ", "-", "'", "&", "<", ">", '"',
    "\n", "\r\n", "\t", "\x00", "\x07", "\x1f", "\x7f", "\x85", "\x9f", "\u2028", "\u00a0",
    "\u202f", "œ", "Œ", "’", "–", "€", "ß", "ÿ", "µ", "ŉ", "ǰ", "İ", "ﬁ", "_", "#", "@",
    "\u0301", "\ufffe", "\uffff", "\U0010ffff", "😀", "中", "nc", "NC",
])
WORD = st.one_of(st.lists(TRICKY, min_size=1, max_size=4).map("".join),
                 st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=39))
TEXT = st.one_of(
    st.text(),  # the whole of Unicode, control characters included, empty included
    st.lists(TRICKY, max_size=40).map("".join),
    st.lists(WORD, min_size=1, max_size=10).map(" ".join),  # words: splits, 0 / . halves
    st.text(st.characters(max_codepoint=0xFF), min_size=30, max_size=200),
    st.text(min_size=150, max_size=400),
)


def _export(mapping: Path, invoice: dict, folder: Path):
    data = folder / "in.json"
    data.write_text(json.dumps({"invoices": [invoice]}, ensure_ascii=False), encoding="utf-8")
    out = folder / "out"
    try:
        result = export(mapping, data, out, RUN, official_xsd=OFFICIAL)
    except InputDataError as exc:
        leftovers = list(out.iterdir()) if out.exists() else []
        assert leftovers == [], f"a refused export left files: {leftovers}"
        return None, exc.problems
    return result, None


def _set(invoice: dict, where: tuple[str | int, ...], value: str) -> None:
    node = invoice
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value


@pytest.mark.parametrize("mapping_name", ["example", "strict"])
@settings(max_examples=int(os.environ.get("PESGEN_HYPOTHESIS_EXAMPLES", "75")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(field=st.sampled_from(sorted(FIELDS)), text=TEXT)
# regressions: a split must not leave a half that is not a valid Base_Texte
@example(field="last_name", text="N" * 38 + " 0")
@example(field="last_name", text="N" * 38 + " .")
@example(field="street", text="X" * 38 + " 0")
@example(field="street", text="0\n" + "X" * 38)
@example(field="street", text="X" * 37 + ", .")
@example(field="city", text="\u2000")
@example(field="rum", text="RUM_&<>")
@example(field="holder", text="")
@example(field="postal_code", text="٤٥٢٠٠")  # Unicode digits are not CP digits
@example(field="postal_code", text="4520²")
@example(field="country", text="be")
@example(field="line_label", text="<&>\"'" * 20)
def test_any_text_in_any_field(mappings, mapping_name, field, text):
    where, names = FIELDS[field]
    invoice = copy.deepcopy(BASE)
    _set(invoice, where, text)
    with tempfile.TemporaryDirectory() as d:
        result, problems = _export(mappings[mapping_name], invoice, Path(d))
        event(f"{field}: {'refused' if problems is not None else 'written'}")
        if problems is not None:
            assert problems, "a refusal must list its problems"
            for p in problems:
                assert any(n in str(p) for n in names), (
                    f"problem does not name the {field} field: {p}")
                assert p.invoice == "FA-2026-00101"
            return
        assert result.titles == 1 and len(result.files) == 1
        path = result.files[0].path
        doc = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
        own = load_xsd(OWN_XSD)
        assert own.validate(doc), own.error_log
        if OFFICIAL is not None:
            official = load_xsd(official_xsd_path(OFFICIAL))
            assert official.validate(doc), official.error_log
        assert validate_pes_file(path, OWN_XSD) == []
        raw = path.read_bytes()
        raw.decode("iso-8859-1")  # what the declaration says
        assert raw.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
        for attr in doc.getroot().xpath("//@V"):
            assert attr == attr.strip(" ") and "  " not in attr, repr(str(attr))
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in attr), repr(attr)
