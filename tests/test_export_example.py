"""The example billing run, end to end: 11 titles, one left out, valid for the DGFiP."""

from __future__ import annotations

import gc
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

import pesgen.export as export_module
from pesgen.errors import InputDataError
from pesgen.export import export
from pesgen.validate import load_xsd, official_xsd_path

from .conftest import EXAMPLES, MAPPINGS, run_cli

RUN = date(2026, 11, 23)


def _pieces(path: Path) -> list[etree._Element]:
    return etree.parse(str(path)).getroot().findall(".//Piece")


def test_example_json_gives_eleven_titles_valid_against_official_xsd(tmp_path, official_xsd):
    result = export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
                    tmp_path, RUN, official_xsd=official_xsd)
    assert len(result.files) == 1
    path = result.files[0].path
    assert result.titles == 11
    assert [lo.invoice for lo in result.left_out] == ["FA-2026-00106"]
    doc = etree.parse(str(path))
    bloc = doc.find(".//BlocBordereau")
    assert bloc.find("NbrPce").get("V") == "11"
    totals = sum(Decimal(e.get("V")) for e in doc.iterfind(".//MtHT"))
    assert Decimal(bloc.find("MtBordHt").get("V")) == totals == result.total
    numbers = [p.find("BlocPiece/NumDette").get("V") for p in doc.iterfind(".//Piece")]
    assert "202600106" not in numbers and len(numbers) == 11
    # validated here again, independently of pesgen's own validation step
    schema = load_xsd(official_xsd_path(official_xsd))
    assert schema.validate(doc), schema.error_log
    # ISO-8859-1 bytes, & escaped
    raw = path.read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert b"VERRERIES &amp; CRISTALLERIES" in raw


def test_same_input_same_bytes(tmp_path):
    a = export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
               tmp_path / "a", RUN)
    b = export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
               tmp_path / "b", RUN)
    assert a.files[0].path.read_bytes() == b.files[0].path.read_bytes()
    assert a.files[0].sha256 == b.files[0].sha256


def test_csv_mapping_gives_the_same_titles(tmp_path, official_xsd):
    j = export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
               tmp_path / "json", RUN)
    c = export(MAPPINGS / "villeneuve-sur-loing-csv.yaml", EXAMPLES / "school-export.csv",
               tmp_path / "csv", RUN, official_xsd=official_xsd)
    pj = [etree.tostring(p) for p in _pieces(j.files[0].path)]
    pc = [etree.tostring(p) for p in _pieces(c.files[0].path)]
    assert len(pc) == 11
    assert pj == pc
    assert [lo.invoice for lo in c.left_out] == ["FA-2026-00106"]
    # with the same bordereau object, the files are byte-identical
    assert j.files[0].path.read_bytes() == c.files[0].path.read_bytes()


def test_collector_threshold_raised_while_preparing_and_restored(tmp_path, monkeypatch):
    seen: list[tuple[int, ...]] = []
    reader = export_module.read_invoices

    def recording(*args, **kwargs):
        seen.append(gc.get_threshold())
        yield from reader(*args, **kwargs)

    monkeypatch.setattr(export_module, "read_invoices", recording)
    before = gc.get_threshold()
    export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
           tmp_path / "ok", RUN)
    assert seen[-1][0] >= export_module._GC_FIRST_GENERATION > before[0]
    assert seen[-1][1:] == before[1:]
    assert gc.get_threshold() == before
    broken = tmp_path / "broken.json"
    broken.write_text('{"invoices": [', encoding="utf-8")
    with pytest.raises(InputDataError):
        export(MAPPINGS / "villeneuve-sur-loing.yaml", broken, tmp_path / "ko", RUN)
    assert len(seen) == 2 and gc.get_threshold() == before


def test_an_empty_account_holder_takes_the_debtors_name_and_says_so(tmp_path):
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][6]["payment"]["mandate"]["holder"] = ""
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    result = export(MAPPINGS / "villeneuve-sur-loing.yaml", source, tmp_path / "out", RUN)
    notes = [n for n in result.notes if n.policy == "account_holder"]
    assert [n.invoice for n in notes] == ["FA-2026-00107"]
    assert b'TitCpte V="GARCIA IN' in result.files[0].path.read_bytes()


def test_the_case_policy_is_reported_once_for_the_run(tmp_path):
    result = export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
                    tmp_path, RUN)
    [case] = [n for n in result.notes if n.policy == "case"]
    assert case.invoice == "*"
    # the 11 titles' debtors: not the zero total's, left out before its debtor is read
    assert "value(s) upper-cased: " in case.detail and "debtor.name ×11" in case.detail


def test_an_optional_placeholder_text_is_left_out_and_said_so(tmp_path):
    """'.' is no value Hélios accepts (Base_Texte): an optional address complement
    holding it is left out of the file, with a note, instead of silently."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    assert data["invoices"][0]["payer"]["address"]["complement"] == "Bâtiment B"
    data["invoices"][0]["payer"]["address"]["complement"] = "."
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    result = export(MAPPINGS / "villeneuve-sur-loing.yaml", source, tmp_path / "out", RUN)
    notes = [n for n in result.notes if n.policy == "placeholder"]
    assert [(n.invoice, n.detail) for n in notes] == [
        ("FA-2026-00101", "address.complement: '.' is not accepted by Hélios (only zeros, "
                          "'nc', '.' or space), left out")]
    assert "BÂTIMENT B".encode("latin-1") not in result.files[0].path.read_bytes()
    plain = export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
                   tmp_path / "plain", RUN)
    assert "BÂTIMENT B".encode("latin-1") in plain.files[0].path.read_bytes()
    assert not [n for n in plain.notes if n.policy == "placeholder"]


def test_a_required_placeholder_text_is_refused_naming_the_invoice(tmp_path):
    """pes.text: a required text Hélios does not accept ('nc' for a street, a city left
    empty once its soft hyphen is removed) is no value to leave out: `pesgen export`
    refuses the run (exit 4), naming each invoice, its record and the binding, and
    writes nothing."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    assert [inv["number"] for inv in data["invoices"][1:3]] == ["FA-2026-00102",
                                                                 "FA-2026-00103"]
    data["invoices"][1]["payer"]["address"]["street"] = "nc"
    data["invoices"][2]["payer"]["address"]["city"] = "\u00ad"
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    mapping = MAPPINGS / "villeneuve-sur-loing.yaml"
    lines = mapping.read_text(encoding="utf-8").splitlines()
    street = lines.index("    street: payer.address.street") + 1
    city = lines.index("    city: payer.address.city") + 1
    out = tmp_path / "out"
    r = run_cli("export", "-m", mapping, "-i", source, "-o", out, "--date", "2026-11-23")
    assert r.exit_code == 4, r.output
    assert r.stderr.splitlines() == [
        "error: 2 problem(s) in the input; nothing written",
        f"  - {source}:$.invoices[1] invoice FA-2026-00102: address.street 'NC' is not "
        "accepted by Hélios (only zeros, 'nc', '.' or space) "
        f"[mapping {mapping}:{street}: bindings.address.street] (rule pes.text)",
        f"  - {source}:$.invoices[2] invoice FA-2026-00103: address.city is empty "
        f"[mapping {mapping}:{city}: bindings.address.city] (rule pes.text)",
        "2 problem(s); nothing was written."]
    assert not out.exists()


def test_a_text_repeated_across_invoices_is_noted_and_counted_on_each(tmp_path):
    """The builder memoises a text's outcome across invoices: a value seen again still
    gets its own transliteration note, and is counted again by the case policy."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    for invoice in data["invoices"]:
        invoice["payer"]["address"]["city"] = "montargis"
    for invoice in data["invoices"][:3]:
        invoice["payer"]["address"]["complement"] = "Résidence du Cœur"
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    result = export(MAPPINGS / "villeneuve-sur-loing.yaml", source, tmp_path / "out", RUN)
    [case] = [n for n in result.notes if n.policy == "case"]
    assert "address.city ×11" in case.detail  # 11 titles (the zero total's is left out)
    notes = [n.invoice for n in result.notes if n.policy == "transliterate"
             and n.detail.startswith("address.complement")]
    assert notes == ["FA-2026-00101", "FA-2026-00102", "FA-2026-00103"]
    assert '<Adr1 V="RÉSIDENCE DU COEUR"/>'.encode("iso-8859-1") in \
        result.files[0].path.read_bytes()
