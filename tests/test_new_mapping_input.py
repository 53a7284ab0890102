"""pesgen new-mapping --input: the scaffold read from the school's export (its encoding,
delimiter, columns or JSON keys), a binding prefilled only from the table of usual
names and marked `check`, never a value of the file; a file it cannot read refused."""

from __future__ import annotations

import json
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
# what a technician fills in of the scaffold of the SMC school's CSV export (SMC_CSV)
# beyond the collectivity: its payer kind, its activity code, French amounts, the text
# transliterated
SMC_FILLED = (("person: {category", "PART: {category"),
              ('TODO: {product: "TODO", nature: "TODO"}',
               'PIANO: {product: PIAN, nature: "7062"}'),
              ("  # numbers: fr ", "  numbers: fr "),
              ("  # transliterate: true", "  transliterate: true"))


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


def _said(text: str) -> str:
    """The scaffold's comments as one line of words (a comment wraps over lines)."""
    return " ".join(text.replace("  # ", " ").split())


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
    # the header on line 1: input.header_line's hint kept, commented out
    assert re.search(r"^  # header_line: 3 +# CSV: the header's line, if a title is above it",
                     section, re.M), section
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
        "payer.ref", "payer.national_id", "address.street", "address.postal_code", "address.city",
        "address.complement", "address.country", "payment.direct_debit", "payment.rum",
        "payment.mandate_signed_on", "payment.debit_date", "payment.iban", "payment.bic",
        "payment.sequence", "line.activity", "line.label", "line.quantity",
        "line.unit_price"}
    for key, line in prefilled.items():
        column = re.search(r'# from column "([^"]+)": check', line)[1]
        binding = re.sub(r"^ *#? *", "", line).split("#")[0]
        assert yaml.safe_load(binding.split(": ", 1)[1]) == column, line
        if key in shipped_paths:
            assert shipped_paths[key] == column, (key, line)
    assert bound["payment.rum"].startswith("  #   rum: mandate_rum ")  # payment stays commented
    # pes-ormc writes no invoice date (its format.yaml not_carried): left commented out
    assert bound["invoice.date"].startswith("    # date: invoice_date ") and \
        "pes-ormc does not write it (format.yaml not_carried: BlocPiece" in bound["invoice.date"]
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
    assert "  # The keys of its 12 invoices ($.invoices[0] to [11]), every one read" \
        in section
    assert re.search(r"^  #     activity\.code +-> bindings\.line\.activity$", section, re.M)
    assert "group_by" not in section.replace("# group_by", "")
    shipped = _paths(load_mapping(MAPPINGS / "villeneuve-sur-loing.yaml"))
    bound = _bound(text)
    prefilled = {k: line for k, line in bound.items() if "# from " in line}
    assert {"invoice.number", "invoice.total", "payer.national_id", "address.street",
            "line.activity", "line.amount", "payment.rum"} <= set(prefilled)
    for key, line in prefilled.items():
        path = re.search(r'# from key "([^"]+)": check', line)[1]
        if key in shipped:
            assert shipped[key] == path, (key, line)
    assert "  lines: lines " in text
    # a person's last_name, a company's name (invoices 11 and 12): both fit, as the
    # shipped mapping's expression reads both
    assert bound["payer.name"].startswith("    name: TODO ") and \
        '"payer.last_name", "payer.name" all fit' in bound["payer.name"]
    for value in ("FA-2026-00101", "Dupont", "Montargis", "EcoleNet"):
        assert value not in text
    mapping_copy(tmp_path, out, *COLLECTIVITY.items(),
                 ("    name: TODO ", '    name: {expr: "invoice.payer.last_name or '
                  'invoice.payer.name"} '),
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
    mapping_copy(tmp_path, out, *COLLECTIVITY.items(), *SMC_FILLED)
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
    # nor when a row after the first differs
    ("Nom;Prénom\r\nDupont;Jean\r\nDurand;Anne;Paris\r\n", "none of ; , tab | splits"),
    # a line above the header that is no title (3 cells of 4): no header guessed below it
    ("Nom;Prénom;Ville\r\nNom;Prénom;Ville;CP\r\nDupont;Jean;Paris;77120\r\n",
     "none of ; , tab | splits"),
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


TITLED = "Export facturation 2026-T1\r\n\r\n"  # a title and a blank line above the header


@pytest.mark.parametrize("title, above", [
    (TITLED, "line 1: one cell (a title?); line 2: blank;"),
    # Excel's save of a title row and an empty row: as many delimiters as columns
    ("Export facturation 2026-T1;;;;;;;;;\r\n;;;;;;;;;\r\n",
     "line 1: one cell (a title?); line 2: blank (delimiters only);"),
])
def test_a_title_above_the_header_is_skipped_by_header_line(tmp_path, title, above):
    """A title and a blank line above the header: input.header_line is the header's
    line, said so; filled, the scaffold passes check-mapping, and the rows keep their
    line numbers in the file."""
    source = tmp_path / "export-smc.csv"
    rows = SMC_CSV + "SMC-2026-0002;PART;Mme;Durand;Anne;4 rue Haute;77120;Coulommiers;" \
        "HARPE;90,00\r\n"
    source.write_bytes((title + rows).encode("cp1252"))
    out, text = _scaffold(tmp_path, source)
    section = text.split("\ninput:\n", 1)[1].split("\n\n", 1)[0]
    values = dict(re.findall(r"^  (\w+): (.*?)(?:\s+#.*)?$", section, re.M))
    assert values == {"format": "csv", "encoding": "cp1252", "delimiter": '";"',
                      "group_by": '"N° facture"', "header_line": "3"}
    assert re.search(r"^  header_line: 3 +# 2 lines above the header skipped: check$",
                     section, re.M)
    said = _said(section)
    assert above in said
    assert "splits the header (line 3) and the 2 row(s) after it" in said
    listed = re.findall(r'^  #   "([^"]+)"', section, re.M)
    assert listed == SMC_CSV.split("\r\n")[0].split(";")
    assert "Export facturation" not in text  # the title is described, never quoted
    mapping_copy(tmp_path, out, *COLLECTIVITY.items(), *SMC_FILLED)
    r = run_cli("check-mapping", out)
    assert r.exit_code == 0, r.output
    assert load_mapping(out).input.header_line == 3
    # HARPE is in no code table: its row is named by its line in the file, 5
    r = run_cli("preview", "-m", out, "-i", source, "--date", RUN_DATE)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert re.search(rf"PROBLEM \S*{re.escape(source.name)}:5 invoice SMC-2026-0002: "
                     "unknown activity code 'HARPE'", r.stdout), r.output
    assert re.search(rf"invoice SMC-2026-0001 +from \S*{re.escape(source.name)}:4\n",
                     r.stdout), r.output


def test_a_title_over_a_header_two_delimiters_split_stays_todo(tmp_path):
    """';' and ',' each split the header below the title and its rows alike: the
    delimiter stays TODO, the header's line is still told (the title is one cell by
    either)."""
    source = tmp_path / "x.csv"
    source.write_text(TITLED + "Nom;Prénom,Ville\r\nDupont;Jean,Paris\r\n", encoding="utf-8")
    out, text = _scaffold(tmp_path, source)
    assert "\n  delimiter: TODO\n" in text and "\n  header_line: 3 " in text
    assert "';' (2 fields, the header at line 3) and ',' (2 fields, the header at line 3) " \
        "each split" in _said(text)


def test_two_delimiters_putting_the_header_on_two_lines_leave_header_line_todo(tmp_path):
    """Split by ';' the header is line 2, by ',' line 3 (line 2 a title of 2 cells beside
    its 4): neither is guessed; check-mapping names input.header_line's TODO."""
    source = tmp_path / "x.csv"
    source.write_text("Titre\r\na;b\r\nc,d,e;f,g\r\nh,i,j;k,l\r\n", encoding="utf-8")
    out, text = _scaffold(tmp_path, source)
    assert "\n  delimiter: TODO\n" in text
    assert re.search(r"^  header_line: TODO +# the header's line, below a title$", text, re.M)
    assert "the header is line 2 or 3, as the delimiter is" in _said(text)
    r = run_cli("check-mapping", out)
    assert r.exit_code == ExitCode.MAPPING
    assert "input.header_line] (rule mapping.todo)" in r.stderr, r.stderr


@pytest.mark.parametrize("content, said", [
    # no header: the first line is a row
    ("FA-1;2026-10-03;12.50;jean@example.org\r\nFA-2;2026-11-21;13.50;paul@example.org\r\n",
     "no header: line 1 is the first the rows after it share a number of fields with (4, "
     "split by ';'), and it is a row: 3 of its fields look like numbers"),
    # a title, a blank line, and rows with no header
    (TITLED + "FA-1;2026-10-03;12.50\r\nFA-2;2026-11-21;13.50\r\n",
     "no header: line 3, below 2 line(s) blank or a title, is the first the rows after it "
     "share a number of fields with (3, split by ';'), and it is a row: 2 of its fields"),
    # rows split by ';' and by ',' (French amounts): the delimiter giving the most fields
    ("FA-1;2026-10-03;12,50\r\nFA-2;2026-11-21;13,50\r\n",
     "no header: line 1 is the first the rows after it share a number of fields with (3, "
     "split by ';')"),
    # a title alone
    (TITLED + "\r\n", "no header: no line among its first 100 names two columns or more"),
])
def test_a_file_whose_header_cannot_be_found_is_refused(tmp_path, content, said):
    """No line reads as the header: refused (exit 4), nothing written, none of the
    file's values quoted."""
    source = tmp_path / "x.csv"
    source.write_text(content, encoding="utf-8")
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "X", "--format", "pes-ormc", "-i", source, "-o", out)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert said in " ".join(r.stderr.split()), r.stderr
    assert "export the file with its column names; nothing written" in r.stderr
    assert not out.exists() and r.stdout == ""
    for value in ("FA-1", "2026-10-03", "jean@example.org", "Export facturation"):
        assert value not in r.output


JSON_OPTIONAL = {"invoices": [
    {"number": "F-1", "payer": {"last_name": "A"}, "total": "10.00",
     "lines": [{"activity": "PIANO", "amount": "10.00"}]},
    {"number": "F-2", "payer": {"last_name": "B", "email": "b@example.org"},
     "mandate": {"rum": "R-2"}, "total": "5.00",
     "lines": [{"activity": "HARPE", "amount": "5.00", "label": "Harpe"}]},
]}


def test_a_key_of_a_later_invoice_is_listed_and_said_optional(tmp_path):
    """A key only the second invoice (or its line) holds is listed and bound, said to be
    in 1 of 2 invoices (lines) read."""
    source = tmp_path / "export.json"
    source.write_text(json.dumps(JSON_OPTIONAL), encoding="utf-8")
    _, text = _scaffold(tmp_path, source)
    section = text.split("\ninput:\n", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^  #   ( *\S+)", section, re.M)
    assert listed == ["number", "payer.last_name", "total", "lines", "  activity",
                      "  amount", "  label", "payer.email", "mandate.rum"]
    assert "The keys of its 2 invoices ($.invoices[0] to [1]), every one read, in the " \
        "order first seen" in _said(section)
    assert "'in K of N': a key not in every invoice (line) read, optional" in _said(section)
    assert re.search(r"^  #   payer\.email +\(in 1 of 2\)$", section, re.M)
    assert re.search(r"^  #   mandate\.rum +-> bindings\.payment\.rum \(in 1 of 2\)$",
                     section, re.M)
    assert re.search(r"^  #     label +-> bindings\.line\.label \(in 1 of 2\)$", section, re.M)
    assert re.search(r"^  #   number +-> bindings\.invoice\.number$", section, re.M)
    bound = _bound(text)
    assert bound["payment.rum"].startswith("  #   rum: mandate.rum ") and \
        "in 1 of 2 invoices read (optional?)" in bound["payment.rum"]
    assert "in 1 of 2 lines read (optional?)" in bound["line.label"]
    assert "optional" not in bound["invoice.number"]
    for value in ("F-2", "b@example.org", "R-2", "Harpe"):
        assert value not in text


def test_a_key_first_met_after_the_hundredth_invoice_is_listed(tmp_path, monkeypatch):
    """Every invoice's keys are read (streamed, none kept), not the first hundred's: a
    key (a line's key) only invoice 121 (131) holds is listed and prefilled, said in 1
    of 150 invoices (1 of the 300 lines); the keys are in the order first seen however
    often the counts are added up (pesgen.peek._Tally)."""
    invoices = [{"number": f"F-{n}", "payer": {"last_name": "A"}, "total": "2.00",
                 "lines": [{"activity": "PIANO", "amount": "1.00"}] * 2}
                for n in range(150)]
    invoices[3]["payer"]["email"] = "a@example.org"
    invoices[120]["mandate"] = {"rum": "R-121"}
    invoices[125]["payer"] = {"last_name": "A", "first_name": "B"}
    invoices[130]["lines"] = [{"activity": "HARPE", "amount": "1.00", "label": "Harpe"},
                              {"activity": "HARPE", "amount": "1.00"}]
    source = tmp_path / "export.json"
    source.write_text(json.dumps({"invoices": invoices}), encoding="utf-8")
    _, text = _scaffold(tmp_path, source)
    section = text.split("\ninput:\n", 1)[1].split("\n\n", 1)[0]
    assert "The keys of its 150 invoices ($.invoices[0] to [149]), every one read" \
        in _said(section)
    assert re.search(r"^  #   mandate\.rum +-> bindings\.payment\.rum \(in 1 of 150\)$",
                     section, re.M)
    assert re.search(r"^  #     label +-> bindings\.line\.label \(in 1 of 300\)$", section,
                     re.M)
    bound = _bound(text)
    assert bound["payment.rum"].startswith("  #   rum: mandate.rum ") and \
        "in 1 of 150 invoices read (optional?)" in bound["payment.rum"]
    assert "in 1 of 300 lines read (optional?)" in bound["line.label"]
    for value in ("R-121", "Harpe"):
        assert value not in text
    listed = re.findall(r"^  #   ( *\S+)", section, re.M)
    assert listed == ["number", "payer.last_name", "total", "lines", "  activity",
                      "  amount", "  label", "payer.email", "mandate.rum",
                      "payer.first_name"]
    import pesgen.peek

    monkeypatch.setattr(pesgen.peek._Tally, "_SHAPES", 1)
    assert _scaffold(tmp_path, source, "m1.yaml")[1] == text


def test_an_invoice_the_reader_refuses_after_the_hundredth_refuses_the_file(tmp_path):
    """Every invoice read: one the export's reader refuses (a key twice in invoice 141)
    refuses new-mapping too, naming it, nothing written (the first hundred read, the
    file was scaffolded as if it were sound)."""
    invoices = [{"number": f"F-{n}", "total": "1.00", "lines": [{"amount": "1.00"}]}
                for n in range(150)]
    text = json.dumps({"invoices": invoices}).replace('"number": "F-140"',
                                                      '"number": "F-140", "number": "X"')
    source = tmp_path / "export.json"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "Commune de X", "--format", "pes-ormc", "--input", source,
                "--out", out)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "$.invoices[140].number: the key 'number' appears twice" in r.output
    assert "input.json-duplicate-key" in r.output and not out.exists()


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


def test_the_scaffold_s_head_gives_its_commands_with_the_formats_dir(tmp_path):
    """A bundle found in --formats-dir only (a new package's, onboarding step 4): the
    scaffold's head said to run `pesgen check-mapping THIS_FILE` and `pesgen preview`
    without it, which answer that the format is unknown (scaf62's rehearsal); they now
    carry the --formats-dir new-mapping was given, as its printed next step does."""
    fmts = tmp_path / "my formats"
    r = run_cli("new-format", "acme-compta", "--kind", "csv", "--dir", fmts)
    assert r.exit_code == 0, r.output
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "Commune de X", "--format", "acme-compta", "--formats-dir",
                fmts, "--out", out)
    assert r.exit_code == 0, r.output
    head = out.read_text(encoding="utf-8").split("pesgen_mapping:")[0]
    assert f"#   pesgen check-mapping THIS_FILE --formats-dir '{fmts}'\n" in head
    assert ("#   pesgen preview --mapping THIS_FILE --input EXPORT --limit 3 --formats-dir "
            f"'{fmts}'\n") in head
    _, text = _scaffold(tmp_path, EXAMPLES / "school-export.json", "shipped.yaml")
    assert "#   pesgen check-mapping THIS_FILE\n" in text


def test_a_binding_the_format_writes_nowhere_stays_commented_out(tmp_path, monkeypatch):
    """A new package's draft CSV bundle writes no invoice date, debtor reference,
    address complement nor line label: the scaffold read from the example CSV left
    those prefilled and uncommented, and the first check-mapping warned of each
    (mapping.unwritten). They stay commented out, saying the format does not write
    them; the civility and the country, which pesgen's rules read whatever the file
    holds (pes.civility, an address abroad), stay bound, said so, and check-mapping's
    warning of them says to keep them bound, not to unbind them."""
    monkeypatch.chdir(tmp_path)
    assert run_cli("new-format", "acme-compta", "--kind", "csv", "--dir", "formats"
                   ).exit_code == 0
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "Commune d'Acme", "--format", "acme-compta", "--formats-dir",
                "formats", "--input", EXAMPLES / "school-export.csv", "--out", out)
    assert r.exit_code == 0, r.output
    bound = _bound(out.read_text(encoding="utf-8"))
    for key, line in (("invoice.date", "    # date: invoice_date "),
                      ("payer.ref", "    # ref: payer_ref "),
                      ("address.complement", "    # complement: complement "),
                      ("line.label", "    # label: activity_label ")):
        assert bound[key].startswith(line), bound[key]
        assert "acme-compta does not write it: no template reads t." in bound[key]
    assert bound["payer.civility"].startswith("    civility: payer_title ")
    assert "acme-compta does not write it: no template reads t.debtor.civility; pesgen's " \
        "rules read it: a person without civility is refused (rule pes.civility" \
        in bound["payer.civility"]
    assert bound["address.country"].startswith("    country: country ")
    # a street and a city no template writes may be left out (coverage.WRITTEN_ONLY)
    for key, line in (("address.street", "    # street: street "),
                      ("address.city", "    # city: city ")):
        assert bound[key].startswith(line), bound[key]
        assert "acme-compta does not write it: no template reads t.debtor.address." \
            in bound[key]
    mapping_copy(tmp_path, out, *COLLECTIVITY.items(),
                 ("    name: TODO ", "    name: payer_last_name "),
                 ("    amount: TODO", "    amount: amount"),
                 ('TODO: {product: "TODO", nature: "TODO"}',
                  'FM-C1: {product: FMC1, nature: "7062"}'))
    r = run_cli("check-mapping", out, "--formats-dir", "formats")
    assert r.exit_code == 0, r.output
    warned = set(re.findall(r"^warning: bindings\.(\S+) is bound", r.stderr, re.M))
    assert warned.isdisjoint({"invoice.date", "payer.ref", "address.complement",
                              "line.label"}), warned
    civility = next(ln for ln in r.stderr.splitlines()
                    if ln.startswith("warning: bindings.payer.civility"))
    assert "pesgen's rules read it beside the templates (a person without civility is " \
        "refused (rule pes.civility" in civility and ": keep it bound. If the format " \
        "has no place for it, declare it in" in civility and "unbind" not in civility
    assert "Not bound, and written by no template of format acme-compta: address.street, " \
        "address.city (its files do not carry them)" in " ".join(r.stdout.split())


def test_one_title_line_above_a_header_two_delimiters_split_is_told(tmp_path):
    """One title line above a header ';' and ',' split alike: the delimiter stays TODO,
    the header's line, 2, is still prefilled, said as one line skipped."""
    source = tmp_path / "x.csv"
    source.write_text("Export facturation 2026-T1\r\nNom;Prénom,Ville\r\nDupont;Jean,Paris\r\n",
                      encoding="utf-8")
    out, text = _scaffold(tmp_path, source)
    assert "\n  delimiter: TODO\n" in text
    assert re.search(r"^  header_line: 2 +# 1 line above the header skipped: check$", text,
                     re.M), text


def test_a_header_on_line_100_is_found_and_not_below_it(tmp_path):
    """The header is looked for on the first 100 lines (input.header_line's limit): on
    line 100, below 99 blank lines, it is found."""
    from pesgen.peek import peek

    source = tmp_path / "x.csv"
    source.write_text("\r\n" * 99 + "Nom;Prénom\r\nDupont;Jean\r\n", encoding="utf-8")
    shape = peek(source)
    assert (shape.delimiter, shape.header_line, shape.columns) == (";", 100, ["Nom", "Prénom"])


@pytest.mark.parametrize("content, keys", [
    # a key the first invoice has null, an object in the second: its keys say it
    ([{"number": "F-1", "mandate": None}, {"number": "F-2", "mandate": {"rum": "R"}}],
     ["number", "mandate.rum"]),
    # a key whose name begins another's: both listed
    ([{"total": "1.00", "total_ht": "0.80"}], ["total", "total_ht"]),
])
def test_the_keys_listed_are_the_leaves_of_the_invoices_read(tmp_path, content, keys):
    from pesgen.peek import peek

    source = tmp_path / "export.json"
    source.write_text(json.dumps({"invoices": content}), encoding="utf-8")
    assert peek(source).keys == keys


def test_a_list_of_objects_a_later_invoice_holds_makes_the_lines_a_question(tmp_path):
    """The invoices' lists of objects are those of every invoice read: a second one a
    later invoice holds leaves the lines to choose, not the first invoice's list."""
    from pesgen.peek import peek

    source = tmp_path / "export.json"
    source.write_text(json.dumps({"invoices": [
        {"number": "F-1", "lines": [{"amount": "1.00"}]},
        {"number": "F-2", "lines": [{"amount": "2.00"}], "instalments": [{"due": "12-01"}]},
    ]}), encoding="utf-8")
    shape = peek(source)
    assert shape.lines is None, shape.lines
    assert shape.lines_why == ("the 2 invoices hold 2 lists of objects (lines, "
                               "instalments): which are its lines?"), shape.lines_why


@pytest.mark.parametrize("invoices, said", [
    # every invoice has the same keys, one line key is in one line of two
    ([{"number": "F-1", "lines": [{"amount": "1.00"}, {"amount": "2.00", "label": "X"}]}],
     True),
    # one invoice key is in one invoice of two, every line has the same keys
    ([{"number": "F-1", "lines": [{"amount": "1.00"}]},
      {"number": "F-2", "total": "2.00", "lines": [{"amount": "2.00"}]}], True),
    ([{"number": "F-1", "lines": [{"amount": "1.00"}]}], False),
])
def test_in_k_of_n_is_explained_when_a_key_of_an_invoice_or_of_a_line_is_optional(
        tmp_path, invoices, said):
    source = tmp_path / "export.json"
    source.write_text(json.dumps({"invoices": invoices}), encoding="utf-8")
    _, text = _scaffold(tmp_path, source)
    assert ("'in K of N': a key not in every invoice (line) read" in _said(text)) is said
    assert ("(in 1 of 2)" in text) is said  # a line's key: of the lines read
    if len(invoices) == 1:
        assert "The keys of its only invoice ($.invoices[0])" in _said(text)


def test_the_keys_of_100_invoices_and_more_are_every_one_read(tmp_path):
    """At and beyond the first scaffold's old bound (100 invoices), every invoice is read
    and said so: no 'the file may hold more' (scaf62)."""
    for count in (100, 101):
        source = tmp_path / f"export-{count}.json"
        source.write_text(json.dumps({"invoices": [
            {"number": f"F-{n}", "lines": [{"amount": "1.00"}]} for n in range(count)]}),
            encoding="utf-8")
        _, text = _scaffold(tmp_path, source, name=f"m-{count}.yaml")
        assert (f"The keys of its {count} invoices ($.invoices[0] to [{count - 1}]), every "
                "one read" in _said(text))
        assert "the file may hold more" not in _said(text)


def test_keys_past_max_keys_are_left_out_and_said(tmp_path):
    """An export whose keys are values (an object by invoice number, marks by student
    id) holds a key path per invoice (line): the scaffold lists MAX_KEYS of each at
    most, those the most invoices (lines) hold, in the order first seen, and says in
    one comment line how many it left out; the command says it too."""
    most = 200  # pesgen.peek.MAX_KEYS
    invoices = [{"number": f"F-{n}", "total": "1.00", "payer": {"last_name": "A"},
                 "by_number": {f"F-{n}": "1.00"},
                 "lines": [{"activity": "PIANO", "amount": "1.00",
                            "marks": {f"ELV-{n}": 1}}]} for n in range(300)]
    source = tmp_path / "export.json"
    source.write_text(json.dumps({"invoices": invoices}), encoding="utf-8")
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "Commune de X", "--format", "pes-ormc", "-i", source,
                "-o", out)
    assert r.exit_code == 0, r.output
    assert (f"note: {source}: 104 key(s) of its invoices and 102 key(s) of their lines "
            f"left out of the scaffold's listing, which keeps the {most} the most "
            "invoices (lines) hold") in r.output
    text = out.read_text(encoding="utf-8")
    section = text.split("\ninput:\n", 1)[1].split("\n\n", 1)[0]
    invoice_keys = re.findall(r"^  #   (\S+)", section, re.M)
    line_keys = re.findall(r"^  #     (\S+)", section, re.M)
    assert invoice_keys[:6] == ["number", "total", "payer.last_name", "by_number.F-0",
                                "lines", "by_number.F-1"], invoice_keys[:6]
    # the 200 kept: the four every invoice holds, the lines among them, then the first
    # 196 keys of one invoice each; the left-out lines say so, once each
    assert len(invoice_keys) == most + 1 and invoice_keys[-1] == "(104"
    assert "lines" in invoice_keys and "by_number.F-195" in invoice_keys
    assert "by_number.F-196" not in invoice_keys
    assert len(line_keys) == most + 1 and line_keys[:3] == ["activity", "amount",
                                                                "marks.ELV-0"]
    assert re.findall(r"^  # .*left out.*$", section, re.M) == [
        "  #     (102 more keys left out: only the 200 the most lines hold are listed)",
        "  #   (104 more keys left out: only the 200 the most invoices hold are listed)"]
    bound = _bound(text)
    assert bound["invoice.number"].startswith("    number: number ")
    assert bound["line.activity"].startswith("    activity: activity ")
    # the lines in the last invoice only, of two keys: their path is listed all the same
    # (first seen past the 200th key, held by one invoice), and only the invoices' keys
    # are said left out
    for invoice in invoices[:-1]:
        del invoice["lines"]
    del invoices[-1]["lines"][0]["marks"]
    source.write_text(json.dumps({"invoices": invoices}), encoding="utf-8")
    r = run_cli("new-mapping", "Commune de X", "--format", "pes-ormc", "-i", source,
                "-o", tmp_path / "late.yaml")
    assert r.exit_code == 0, r.output
    assert (f"note: {source}: 104 key(s) of its invoices left out of the scaffold's "
            "listing") in " ".join(r.output.split()), r.output
    section = (tmp_path / "late.yaml").read_text(encoding="utf-8").split(
        "\ninput:\n", 1)[1].split("\n\n", 1)[0]
    assert "lines" in re.findall(r"^  #   (\S+)", section, re.M)


def test_a_json_export_is_read_once(tmp_path, monkeypatch):
    """new-mapping reads a JSON export once: its top level and its invoices' keys in
    the same pass, as the export's fast reader reads it; neither the top level's own
    pass (ijson) nor the export's reader is called for a file that reader vouches for."""
    import pesgen.peek
    import pesgen.sources

    def called(*args, **kwargs):
        raise AssertionError("a second pass over the file")

    made = []
    text_class = pesgen.sources._Text

    class Counted(text_class):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pesgen.peek, "_top_level", called)
    monkeypatch.setattr(pesgen.peek, "read_invoices", called)
    monkeypatch.setattr(pesgen.sources, "_Text", Counted)
    source = tmp_path / "export.json"
    source.write_text(json.dumps({"export": {"by": "x"}, "invoices": [
        {"number": f"F-{n}", "lines": [{"amount": "1.00"}]} for n in range(150)]}),
        encoding="utf-8")
    shape = pesgen.peek.peek(source)
    assert (shape.records, shape.invoices_read, shape.lines_read) == ("invoices", 150, 150)
    assert made == [1]


@pytest.mark.parametrize("content", [
    {"invoices": [{"number": "F-1", "payer": {"name": "A", "address": None},
                   "lines": [{"amount": "1.00", "student": {"ref": "S"}}]},
                  {"number": "F-2", "payer": {"name": "B", "address": {"city": "X"}},
                   "lines": [], "refunds": [{"amount": "1"}]}],
     "meta": {"n": 2}, "ok": True, "none": None, "text": "t", "count": 2.5,
     "ids": [1, 2], "empty": []},
    [{"number": "F-1", "lines": [{"amount": "1.00"}]}, {"number": "F-2"}],
    {"a": [{"x": 1}], "b": [{"y": 2}], "c": 1},
    {"invoices": []},
    {},
    {"a.b": [{"x": 1}]},
])
def test_the_one_pass_tells_what_the_two_passes_told(tmp_path, monkeypatch, content):
    """The one pass (peek._read_once) and the two it replaced, taken still when the
    fast reader does not vouch for a file (a key twice, a syntax error...), tell the
    same shape."""
    import pesgen.peek

    source = tmp_path / "export.json"
    source.write_text(json.dumps(content), encoding="utf-8")
    once = pesgen.peek.peek(source)
    monkeypatch.setattr(pesgen.peek, "_read_once", lambda *args: None)
    assert pesgen.peek.peek(source) == once


def test_a_top_level_keyed_by_invoice_number_names_ten_keys(tmp_path):
    """A top level whose keys are invoice numbers (no list of invoices) is a question
    naming its first ten keys and how many more, not thousands of them."""
    from pesgen.peek import peek

    source = tmp_path / "export.json"
    source.write_text(json.dumps({f"F-{n}": {"total": "1.00"} for n in range(3000)}),
                      encoding="utf-8")
    shape = peek(source)
    assert shape.records is None
    assert shape.records_why == (
        "the top level holds no list of objects: which holds the invoices? (its keys: " +
        ", ".join(f"F-{n} (an object)" for n in range(10)) + " and 2990 more)")
    # ten keys: all named, none more
    source.write_text(json.dumps({f"F-{n}": {"total": "1.00"} for n in range(10)}),
                      encoding="utf-8")
    assert peek(source).records_why == (
        "the top level holds no list of objects: which holds the invoices? (its keys: " +
        ", ".join(f"F-{n} (an object)" for n in range(10)) + ")")


def test_a_top_level_key_given_twice_is_refused_as_the_export_refuses_it(tmp_path):
    """The one-pass reading vouches for no file with a repeated key: its top level's
    given twice is refused, naming it, as the export's reader refuses it (not read as
    the last one's)."""
    from pesgen.errors import InputDataError
    from pesgen.peek import peek

    source = tmp_path / "export.json"
    source.write_text('{"invoices": [{"number": "F-1", "total": "1.00"}], '
                      '"invoices": [{"number": "F-2", "total": "2.00"}]}', encoding="utf-8")
    with pytest.raises(InputDataError) as refused:
        peek(source)
    assert f"{source}:$.invoices: the key 'invoices' appears twice in this object" in str(
        refused.value)


def test_a_draft_template_failing_on_the_sample_titles_still_gets_its_scaffold(
        tmp_path, monkeypatch):
    """A draft bundle's template failing on check-mapping's sample titles (an attribute
    misspelt): new-mapping writes the scaffold all the same, no binding said unwritten
    (nothing is known of what the templates read): check-mapping names the error once
    it is filled (mut56: a mutant refusing the scaffold on it survived)."""
    monkeypatch.chdir(tmp_path)
    assert run_cli("new-format", "acme-compta", "--kind", "csv", "--dir", "formats"
                   ).exit_code == 0
    template = tmp_path / "formats" / "acme-compta" / "acme-compta.csv.j2"
    text = template.read_text(encoding="utf-8")
    template.write_text(text.replace("t.debtor.name", "t.debtor.no_such.name", 1),
                        encoding="utf-8")
    r = run_cli("new-mapping", "Commune d'Acme", "--format", "acme-compta", "--formats-dir",
                "formats", "--out", tmp_path / "m.yaml")
    assert r.exit_code == 0, r.output
    assert "does not write it" not in (tmp_path / "m.yaml").read_text(encoding="utf-8")


def test_a_line_s_quantity_unit_price_and_student_are_proposed(tmp_path, monkeypatch):
    """fmt63's walk-through: a bundle whose template writes each line's quantity and
    unit price (``line | pricing``) got a scaffold with no line.quantity, line.unit_price
    nor line.student binding, not even commented out, though the example JSON's lines
    have quantity and unit_price keys (listed without an arrow). The table of usual names
    now fills them: the two the format writes bound, the student (written by no
    template, two keys fitting) commented out, saying so."""
    monkeypatch.chdir(tmp_path)
    assert run_cli("new-format", "acme-compta", "--kind", "csv", "--dir", "formats"
                   ).exit_code == 0
    bundle = tmp_path / "formats" / "acme-compta"
    template = bundle / "acme-compta.csv.j2"
    text = template.read_text(encoding="utf-8")
    old = 't.total | amount(","), doc.bordereau.issue_date | frdate]'
    assert old in text
    template.write_text(text.replace(old, old[:-1] + ', (t.lines[0] | pricing).quantity | '
                                     'number(","), (t.lines[0] | pricing).unit_price | '
                                     'amount(",")]'), encoding="utf-8")
    layout = bundle / "layout.yaml"
    layout.write_text(layout.read_text(encoding="utf-8") + (
        "      - {name: Quantite, type: decimal, decimals: 3, required: true}\n"
        "      - {name: PrixUnitaire, type: decimal, decimals: 2, required: true}\n"),
        encoding="utf-8")
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "Commune d'Acme", "--format", "acme-compta", "--formats-dir",
                "formats", "--input", EXAMPLES / "school-export.json", "--out", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert re.search(r"^  #     quantity +-> bindings\.line\.quantity$", text, re.M), text
    assert re.search(r"^  #     unit_price +-> bindings\.line\.unit_price$", text, re.M)
    bound = _bound(text)
    assert bound["line.quantity"].startswith('    quantity: quantity     # from key "quantity"'
                                             ': check'), bound["line.quantity"]
    assert bound["line.unit_price"].startswith("    unit_price: unit_price  # from key "
                                               '"unit_price": check'), bound["line.unit_price"]
    assert bound["line.student"].startswith("    # student: TODO ") and \
        '"student.ref", "student.last_name" all fit' in bound["line.student"] and \
        "acme-compta does not write it: no template reads t.lines[i].student" \
        in bound["line.student"], bound["line.student"]


def test_a_company_s_siret_column_is_proposed_for_payer_national_id(tmp_path):
    """Every shipped mapping binds payer.national_id (a company's or an association's
    SIRET, IdTiers); the scaffold did not list it, so an export's SIRET column was said
    'not read by the mapping' at preview and nothing in the scaffold named the binding
    (walk64). Without --input it is listed commented out, as the other optional ones."""
    source = tmp_path / "export.csv"
    source.write_text(SMC_CSV.replace("Montant ligne", "Montant ligne;SIRET").replace(
        "180,00\r\n", "180,00;\r\n"), encoding="cp1252")
    _, text = _scaffold(tmp_path, source)
    assert _bound(text)["payer.national_id"].startswith(
        '    national_id: SIRET     # from column "SIRET": check; SIRET or SIREN of a '
        "company or an association (IdTiers)")
    r = run_cli("new-mapping", "X", "--format", "pes-ormc")
    assert r.exit_code == 0, r.output
    assert "    # national_id: TODO    # SIRET or SIREN of a company or an association " \
        "(IdTiers)" in r.stdout.splitlines()


def test_a_csv_montant_column_is_named_at_the_line_amount_left_todo(tmp_path):
    """'Montant' is a JSON line's own key in the table, never prefilled from a CSV row,
    which holds the invoice's columns and the line's: the scaffold left `amount: TODO`
    without a word of the export's Montant column (walk64); it now names it, to check,
    still TODO (check-mapping refuses the scaffold until a person has chosen)."""
    source = tmp_path / "export.csv"
    source.write_text(SMC_CSV.replace("Montant ligne", "Montant"), encoding="cp1252")
    _, text = _scaffold(tmp_path, source)
    assert _bound(text)["line.amount"] == (
        '    amount: TODO           # column "Montant"? Its name alone does not tell a '
        "line's from an invoice's (a CSV row holds both): check")
    assert 'amount: Montant' not in text


def test_an_export_with_more_after_its_json_value_is_refused(tmp_path):
    """The one-pass reading vouches for no file holding more after its JSON value (two
    objects one after the other): it is refused as invalid JSON, as the export refuses
    it, not read as its first object."""
    from pesgen.errors import InputDataError
    from pesgen.peek import peek

    source = tmp_path / "export.json"
    source.write_text('{"invoices": [{"number": "F-1", "total": "1.00"}]}\n{"more": 1}\n',
                      encoding="utf-8")
    with pytest.raises(InputDataError) as refused:
        peek(source)
    assert "invalid JSON (parse error: trailing garbage)" in str(refused.value)


def test_the_one_pass_reading_refuses_a_lone_surrogate_and_names_each_top_level_kind(
        tmp_path):
    """An escaped lone surrogate in an invoice is refused at its place, as the export
    refuses it; a top level of no list says what each key holds (a text, a number,
    true/false), as the two-pass reading said it."""
    from pesgen.errors import InputDataError
    from pesgen.peek import peek

    source = tmp_path / "export.json"
    source.write_text('{"invoices": [{"number": "F-1", "total": "1.00", '
                      '"name": "\\ud800x"}]}', encoding="utf-8")
    with pytest.raises(InputDataError) as refused:
        peek(source)
    assert f"{source}:$.invoices[0].name: an escaped lone surrogate" in str(refused.value)
    source.write_text('{"title": "x", "count": 2, "ok": true, "none": null}',
                      encoding="utf-8")
    assert peek(source).records_why.endswith(
        "(its keys: title (a text), count (a number), ok (true/false), none (null))")


def test_a_file_that_is_a_list_of_values_is_refused_as_no_list_of_invoices(tmp_path):
    """A file that is itself a list, not of objects: refused (the one pass reads no
    invoice in it, and does not say it empty)."""
    from pesgen.errors import InputDataError
    from pesgen.peek import peek

    source = tmp_path / "export.json"
    source.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputDataError) as refused:
        peek(source)
    assert f"{source}: the file is a list, but not of objects (invoices)" in str(
        refused.value)
