"""pesgen new-mapping --input: the scaffold read from the school's export (its encoding,
delimiter, columns or JSON keys), a binding prefilled only from the table of usual
names and marked `check`, never a value of the file; a file it cannot read refused."""

from __future__ import annotations

import re

import pytest
import yaml

from pesgen.colnames import USUAL, binding_of, normalise
from pesgen.errors import ExitCode
from pesgen.mapping import load_mapping

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli
from .mapping_support import mapping_copy

COLLECTIVITY = {
    'siret: "TODO"': 'siret: "21450999400015"', 'id_post: "TODO"': 'id_post: "045012"',
    'cod_col: "TODO"': 'cod_col: "123"', 'cod_bud: "TODO"': 'cod_bud: "00"',
    "exercise: TODO": "exercise: 2026",
    'TODO: {category: "01", legal_nature: "01"}': 'person: {category: "01", legal_nature: "01"}',
}


def _scaffold(tmp_path, source, name="m.yaml"):
    out = tmp_path / name
    r = run_cli("new-mapping", "Commune de Villeneuve-sur-Loing", "--format", "pes-ormc",
                "--input", source, "--out", out)
    assert r.exit_code == 0, r.output
    return out, out.read_text(encoding="utf-8")


def _bound(text: str) -> dict[str, str]:
    """{group.key: the line} of each binding line of the scaffold (commented or not)."""
    found, group = {}, ""
    for line in text.split("\nbindings:\n", 1)[1].split("\ncodes:\n")[0].splitlines():
        if m := re.match(r"^  (?:# )?(\w+):", line):
            group = m[1]
        elif m := re.match(r"^(?:    |  #   )(?:# )?(\w+):", line):
            found[f"{group}.{m[1]}"] = line
    return found


def _paths(mapping) -> dict[str, str]:
    """{group.key: path} of a loaded mapping's path bindings."""
    return {f"{group}.{key}": b.text for group, keys in mapping.bindings.items()
            if isinstance(keys, dict) for key, b in keys.items() if b.kind == "path"}


def test_the_example_csv_gives_the_csv_mapping_s_input_and_bindings(tmp_path):
    """The example CSV export gives villeneuve-sur-loing-csv.yaml's input section, and
    each binding prefilled reads the column the shipped mapping binds, marked `check`;
    the two name columns stay TODO; filled as the shipped mapping does, check-mapping
    passes."""
    out, text = _scaffold(tmp_path, EXAMPLES / "school-export.csv")
    shipped = load_mapping(MAPPINGS / "villeneuve-sur-loing-csv.yaml")
    section = text.split("\ninput:\n", 1)[1].split("\n\n", 1)[0]
    values = dict(re.findall(r"^  (\w+): (.*?)(?:\s+#.*)?$", section, re.M))
    assert values == {"format": "csv", "encoding": "utf-8", "delimiter": '","',
                      "group_by": "invoice_number"}
    assert "  # the whole file reads as UTF-8\n" in section
    assert shipped.input.encoding == "utf-8" and shipped.input.delimiter == "," and \
        shipped.input.group_by == "invoice_number"
    # every header column listed, in order, with what it fills
    header = (EXAMPLES / "school-export.csv").read_text(encoding="utf-8").split("\n")[0]
    listed = re.findall(r'^  #   "([^"]+)"', section, re.M)
    assert listed == header.split(",")
    assert re.search(r'^  #   "payer_kind" +-> bindings\.payer\.kind$', section, re.M)
    bound = _bound(text)
    shipped_paths = _paths(shipped)
    prefilled = {k: line for k, line in bound.items() if "# from " in line}
    assert set(prefilled) == {
        "invoice.number", "invoice.date", "payer.kind", "payer.first_name", "payer.civility",
        "payer.ref", "address.street", "address.postal_code", "address.city",
        "address.complement", "address.country", "payment.direct_debit", "payment.rum",
        "payment.mandate_signed_on", "payment.debit_date", "payment.iban", "payment.bic",
        "payment.sequence", "line.activity", "line.label"}
    for key, line in prefilled.items():
        column = re.search(r'# from column "([^"]+)": check', line)[1]
        binding = line.removeprefix("  #   ").split("#")[0]
        assert yaml.safe_load(binding.split(": ", 1)[1]) == column, line
        if key in shipped_paths:
            assert shipped_paths[key] == column, (key, line)
    assert bound["payment.rum"].startswith("  #   rum: mandate_rum ")  # payment stays commented
    assert bound["payer.name"].startswith("    name: TODO ") and \
        '"payer_last_name", "payer_name" all fit' in bound["payer.name"]
    assert bound["line.amount"].startswith("    amount: TODO")
    assert "  lines: {const: rows} " in text
    assert "debt_number: {expr: \"invoice['invoice_number'] | digits\"}" in text
    # nothing of a row: no value of the export in the scaffold
    for value in ("FA-2026-00101", "Dupont", "Montargis", "FR7630006000011234567890189"):
        assert value not in text
    mapping_copy(tmp_path, out, *COLLECTIVITY.items(),
                 ("    name: TODO ", '    name: {expr: "invoice.payer_last_name or '
                  'invoice.payer_name"} '),
                 ("    amount: TODO", "    amount: amount"),
                 ('TODO: {product: "TODO", nature: "TODO"}',
                  'FM-C1: {product: FMC1, nature: "7062"}'))
    r = run_cli("check-mapping", out)
    assert r.exit_code == 0, r.output
    filled = load_mapping(out)
    assert (filled.input.format, filled.input.encoding, filled.input.delimiter,
            filled.input.group_by) == ("csv", "utf-8", ",", "invoice_number")


def test_the_example_json_gives_the_json_mapping_s_records_and_bindings(tmp_path):
    """The example JSON export: records is the top level's only list of objects, lines
    the invoice's; each prefilled binding reads the key the shipped mapping binds."""
    out, text = _scaffold(tmp_path, EXAMPLES / "school-export.json")
    section = text.split("\ninput:\n", 1)[1].split("\n\n", 1)[0]
    values = dict(re.findall(r"^  (\w+): (.*?)(?:\s+#.*)?$", section, re.M))
    assert values == {"format": "json", "records": "invoices", "encoding": "utf-8"}
    assert "  # The keys of the first invoice ($.invoices[0])" in section
    assert re.search(r"^  #     activity\.code +-> bindings\.line\.activity$", section, re.M)
    assert "group_by" not in section.replace("# group_by", "")
    shipped = _paths(load_mapping(MAPPINGS / "villeneuve-sur-loing.yaml"))
    bound = _bound(text)
    prefilled = {k: line for k, line in bound.items() if "# from " in line}
    assert {"invoice.number", "invoice.total", "payer.name", "address.street",
            "line.activity", "line.amount", "payment.rum"} <= set(prefilled)
    for key, line in prefilled.items():
        path = re.search(r'# from key "([^"]+)": check', line)[1]
        if key in shipped:
            assert shipped[key] == path, (key, line)
    assert "  lines: lines " in text and "payer.last_name" in bound["payer.name"]
    for value in ("FA-2026-00101", "Dupont", "Montargis", "EcoleNet"):
        assert value not in text
    mapping_copy(tmp_path, out, *COLLECTIVITY.items(),
                 ('TODO: {product: "TODO", nature: "TODO"}',
                  'FM-C1: {product: FMC1, nature: "7062"}'))
    r = run_cli("check-mapping", out)
    assert r.exit_code == 0, r.output
    assert load_mapping(out).input.records == "invoices"


SMC_CSV = (
    "N° facture;Type payeur;Civilité;Nom;Prénom;Adresse;CP;Ville;Code activité;"
    "Montant ligne\r\n"
    "SMC-2026-0001;PART;M.;Cœurderoy;Élise;3 rue de l'Église;77120;Coulommiers;PIANO;"
    "180,00\r\n"
)


def test_a_cp1252_semicolon_export_is_read_and_previews_once_filled(tmp_path):
    """A Windows-1252, ';' export with French column names: encoding, delimiter and
    group_by told, the French names bound; once the tables are filled it previews."""
    source = tmp_path / "export-smc.csv"
    source.write_bytes(SMC_CSV.encode("cp1252"))
    r = run_cli("new-mapping", "Saint-Martin", "--format", "pes-ormc", "-i", source)
    assert r.exit_code == 0, r.output
    text = r.stdout
    section = text.split("\ninput:\n", 1)[1].split("\n\n", 1)[0]
    values = dict(re.findall(r"^  (\w+): (.*?)(?:\s+#.*)?$", section, re.M))
    assert values == {"format": "csv", "encoding": "cp1252", "delimiter": '";"',
                      "group_by": '"N° facture"'}
    assert "# not UTF-8 (line 1, byte 0xB0), and the whole file reads as Windows-1252" \
        in section
    bound = _bound(text)
    for key, column in (("invoice.number", "N° facture"), ("payer.kind", "Type payeur"),
                        ("payer.civility", "Civilité"), ("payer.name", "Nom"),
                        ("payer.first_name", "Prénom"), ("address.street", "Adresse"),
                        ("address.postal_code", "CP"), ("address.city", "Ville"),
                        ("line.activity", "Code activité"), ("line.amount", "Montant ligne")):
        assert f'# from column "{column}": check' in bound[key], bound[key]
    for value in ("SMC-2026-0001", "Cœurderoy", "Coulommiers", "PIANO", "180,00"):
        assert value not in r.output
    out = tmp_path / "m.yaml"
    out.write_text(text, encoding="utf-8")
    mapping_copy(tmp_path, out, *COLLECTIVITY.items(),
                 ("person: {category", "PART: {category"),
                 ('TODO: {product: "TODO", nature: "TODO"}',
                  'PIANO: {product: PIAN, nature: "7062"}'),
                 ("  # numbers: fr ", "  numbers: fr "),
                 ("  # transliterate: true", "  transliterate: true"))
    assert run_cli("check-mapping", out).exit_code == 0
    r = run_cli("preview", "-m", out, "-i", source, "--date", RUN_DATE)
    assert r.exit_code == 0, r.output
    assert '<NumDette V="20260001"/>' in r.stdout and '<MtHT V="180.00"/>' in r.stdout


@pytest.mark.parametrize("content, said", [
    # ';' and ',' both split every line into 2 fields
    ("Nom;Prénom,Ville\r\nDupont;Jean,Paris\r\n",
     "';' (2 fields) and ',' (2 fields) each split"),
    # none: the rows' counts differ from the header's
    ("Nom;Prénom\r\nDupont;Jean;Paris\r\nX\r\n", "none of ; , tab | splits"),
])
def test_a_delimiter_it_cannot_tell_stays_todo(tmp_path, content, said):
    source = tmp_path / "x.csv"
    source.write_text(content, encoding="utf-8")
    out, text = _scaffold(tmp_path, source)
    assert "\n  delimiter: TODO\n" in text and said in " ".join(text.split())
    assert "  # The header's columns: not read" in text
    assert "Dupont" not in text and "# from column" not in text
    r = run_cli("check-mapping", out)
    assert r.exit_code == ExitCode.MAPPING
    assert "input.delimiter] (rule mapping.todo)" in r.stderr, r.stderr


def test_a_first_line_that_is_a_row_is_not_listed(tmp_path):
    """A file without a header: its first line, a row, is no column names."""
    source = tmp_path / "x.csv"
    source.write_text("FA-1;2026-10-03;12.50;jean@example.org\r\n"
                      "FA-2;2026-11-21;13.50;paul@example.org\r\n", encoding="utf-8")
    _, text = _scaffold(tmp_path, source)
    assert "line 1 is no header" in " ".join(text.split())
    for value in ("FA-1", "2026-10-03", "jean@example.org"):
        assert value not in text


def test_a_bom_and_an_ascii_file_say_why_utf_8(tmp_path):
    source = tmp_path / "x.csv"
    source.write_bytes(b"\xef\xbb\xbfN\xc2\xb0 facture,Nom\r\nA,B\xc3\xa9\r\n")
    _, text = _scaffold(tmp_path, source)
    assert "\n  group_by: \"N° facture\"" in text  # the BOM is no part of the name
    assert "with a byte order mark" in text
    source.write_bytes(b"invoice_number,Nom\r\nA,B\r\n")
    _, text = _scaffold(tmp_path, source, "n.yaml")
    assert "ASCII characters only" in text and "\n  encoding: utf-8\n" in text


@pytest.mark.parametrize("make, said", [
    (None, "input file not found"),
    ("folder", "is a folder"),
    (b"", "the file is empty"),
    (b"Nom;Pr\x81nom\r\nA;B\r\n", "neither UTF-8 (line 1, byte 0x81) nor Windows-1252 "
     "(line 1, byte 0x81)"),
    (b'{"invoices": [{"number": "A",', "invalid JSON"),
    (b"<?xml version='1.0'?><a/>", "looks like XML"),
])
def test_a_file_it_cannot_read_is_refused_and_nothing_written(tmp_path, make, said):
    source = tmp_path / "export.csv"
    if make == "folder":
        source.mkdir()
    elif make is not None:
        source.write_bytes(make)
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "X", "--format", "pes-ormc", "-i", source, "-o", out)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert str(source) in r.stderr and said in r.stderr, r.stderr
    assert not out.exists() and r.stdout == ""


def test_the_table_of_usual_names_names_each_once():
    """A name (normalised) fills one binding: listed twice, the second would win."""
    seen: dict[str, str] = {}
    for usual in USUAL:
        for name in usual.names:
            key = normalise(name)
            assert seen.setdefault(key, usual.binding) == usual.binding, name
    assert normalise("N°-Facture") == normalise("numero_facture".replace("umero_", "°")) \
        == "n facture"
    # a JSON key: its whole path, or its last part under its group's words only
    assert binding_of("payer.address.city", "invoice") == "address.city"
    assert binding_of("student.city", "invoice") is None
    assert binding_of("amount", "line") == "line.amount"
    assert binding_of("amount") is None  # a CSV row's "amount": the line's or the total?
    assert binding_of("activity.code", "invoice") is None  # a line's, not an invoice's
