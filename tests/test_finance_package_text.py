"""Finance-package text and layout: what a format declares of its text (its charset,
the characters its layouts forbid, its column limits) applies to the mapping's own texts
and options as to the export's, refused naming the mapping's line and key; and the
e.magnus address lines read in order."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import EXAMPLES, MAPPINGS, ROOT, run_cli
from .mapping_support import mapping_copy

EMAGNUS = MAPPINGS / "villeneuve-sur-loing-emagnus.yaml"
JVS = MAPPINGS / "villeneuve-sur-loing-jvs.yaml"
CORAIL = MAPPINGS / "villeneuve-sur-loing-corail.yaml"
BUNDLE = ROOT / "templates" / "bl-emagnus"


def _example_changed(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """The example's JSON export, changed by ``change`` (its data, in place), written in
    ``tmp_path``: its path."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    change(data)
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return source


def _export(tmp_path: Path, mapping: Path, data: Path = EXAMPLES / "school-export.json",
            *more: str | Path):
    out = tmp_path / "out"
    run = run_cli("export", "--mapping", mapping, "--input", data, "--out", out,
                  "--date", "2026-11-23", "--db", f"sqlite:///{tmp_path / 'x.db'}",
                  "--create-store", *more)
    return run, out


# ------------------------------------------------------- the format's charset


def test_an_emagnus_option_outside_its_ascii_charset_is_refused(tmp_path):
    """e.magnus declares charset: ascii (cp1252 files): a tribunal with ’ and é was
    written as cp1252 bytes d\\x92Orl\\xe9ans, exit 0. An option is written as it is (no
    text policy transliterates it, docs/mapping-reference.md): refused, naming its line."""
    mapping, (line,) = mapping_copy(tmp_path, EMAGNUS, (
        "    service: CONSERVATOIRE",
        "    service: CONSERVATOIRE\n    tribunal: \"le tribunal administratif d’Orléans\""))
    checked = run_cli("check-mapping", mapping)
    assert checked.exit_code == 3, checked.output
    assert f"[mapping {mapping}:{line}: output.options.tribunal] (rule mapping.options)" \
        in checked.output
    assert "output.options.tribunal: '’é' is outside the format's charset ascii" \
        in checked.output
    run, out = _export(tmp_path, mapping)
    assert run.exit_code == 3, run.output
    assert f"{mapping}:{line}: output.options.tribunal" in run.output
    assert not out.exists()


def test_jvs_own_texts_outside_its_latin1_charset_are_refused(tmp_path):
    """JVS writes UTF-8 but declares charset: latin-1: the collectivity's and emitter's
    texts went out as they were (Œ, –, €, “, œ)."""
    mapping, lines = mapping_copy(
        tmp_path, JVS, ("budget_label: COMMUNE DE VILLENEUVE SUR LOING",
                        "budget_label: \"BUDGET ŒUVRES – €\""),
        ("adresse: pesgen conservatoire VSL", "adresse: \"pesgen “cœur”\""))
    checked = run_cli("check-mapping", mapping)
    assert checked.exit_code == 3, checked.output
    assert ("collectivity.budget_label: 'Œ–€' is outside the format's charset latin-1"
            in checked.output)
    assert f"[mapping {mapping}:{lines[0]}: collectivity.budget_label] (rule mapping.format)" \
        in checked.output
    assert "output.emitter.adresse: '“œ”' is outside the format's charset latin-1" \
        in checked.output
    assert f"[mapping {mapping}:{lines[1]}: output.emitter.adresse]" in checked.output
    run, out = _export(tmp_path, mapping)
    assert run.exit_code == 3, run.output
    assert not out.exists()


def test_a_mapping_text_no_template_writes_is_not_held_to_the_charset(tmp_path):
    """e.magnus writes no collectivity name nor budget label: a commune named with an
    apostrophe and accents ('Villeneuve-l’Évêque') was refused (exit 3) though nothing
    of it goes into the files. Only the texts a template writes are held to the format's
    charset and forbidden characters (the encoding still applies to all)."""
    mapping, _ = mapping_copy(
        tmp_path, EMAGNUS,
        ("  name: Commune de Villeneuve-sur-Loing", "  name: Commune de Villeneuve-l’Évêque"),
        ("  budget_label: COMMUNE DE VILLENEUVE SUR LOING",
         "  budget_label: \"VILLENEUVE L'ÉVÊQUE; \\\"ECOLE\\\"\""))
    checked = run_cli("check-mapping", mapping)
    assert checked.exit_code == 0, checked.output
    run, out = _export(tmp_path, mapping)
    assert run.exit_code == 0, run.output
    assert b"VEQUE" not in b"".join(p.read_bytes() for p in out.iterdir())
    # JVS writes its budget label (LibelleColBud): held to latin-1 there
    jvs, (line,) = mapping_copy(tmp_path, JVS, ("  budget_label: COMMUNE DE VILLENEUVE SUR LOING",
                                                "  budget_label: BUDGET ŒUVRES"))
    refused = run_cli("check-mapping", jvs)
    assert refused.exit_code == 3, refused.output
    assert f"[mapping {jvs}:{line}: collectivity.budget_label] (rule mapping.format)" \
        in refused.output
    assert "whose templates write it as doc.collectivity.budget_label" in refused.output


def _bundle_with(tmp_path: Path, bundle: str, file: str,
                 *changes: tuple[str, str]) -> tuple[Path, Path, str]:
    """A copy of shipped ``bundle`` in tmp_path/fmts whose ``file`` has each (old, new)
    of ``changes`` made (old found once): (the formats folder, the file, its text
    before)."""
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / bundle, fmts / bundle)
    path = fmts / bundle / file
    before = text = path.read_text(encoding="utf-8")
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return fmts, path, before


def test_a_format_option_default_outside_its_charset_is_refused(tmp_path):
    old = 'tribunal: "le tribunal administratif"'
    fmts, _, text = _bundle_with(tmp_path, "bl-emagnus", "format.yaml",
                                 (old, 'tribunal: "le tribunal d’Orléans"'))
    line = text[:text.index(old)].count("\n") + 1
    run = run_cli("check-format", "bl-emagnus", "--formats-dir", fmts)
    assert run.exit_code == 3, run.output
    assert f"format.yaml:{line}: defaults.options.tribunal" in run.output
    assert "option tribunal: '’é' is outside the format's charset ascii" in run.output


# ------------------------------------------------------- e.magnus address lines


def _rows(path: Path) -> list[list[str]]:
    from pesgen.layout import split_csv

    rows = []
    for line in path.read_bytes().decode("cp1252").split("\r\n")[:-1]:
        fields, error = split_csv(line, ";", '"')
        assert error is None
        rows.append([v for v, _ in fields])
    return rows


def test_emagnus_address_lines_read_in_order(tmp_path):
    """A street street_overflow: split puts its first part in the complement (Adr1, the
    line before the street's in the PES): WTAMC001 wrote the complement after the street,
    'Résidence les Jardins de la Roseraie, appartement 1204' as AdrLig1 'APPARTEMENT
    1204', AdrLig2 'RESIDENCE LES JARDINS DE LA ROSERAIE'. The lines now read in order
    (complement, street, locality, packed from AdrLig1), the joint debtor's too."""
    def joint(data: dict[str, Any]) -> None:
        data["invoices"][0]["joint_payer"] = {
            "kind": "person", "title": "M.", "last_name": "Lefèvre", "first_name": "Marc",
            "address": {"street": "4 place du Marché", "complement": "Bâtiment C",
                        "postal_code": "45200", "city": "Montargis"}}

    run, out = _export(tmp_path, EMAGNUS, _example_changed(tmp_path, joint))
    assert run.exit_code == 0, run.output
    lines = {r[110]: r[11:14] for r in _rows(out / "WTAMC001.txt")}
    assert lines["FA-2026-00104"] == ["RESIDENCE LES JARDINS DE LA ROSERAIE",
                                      "APPARTEMENT 1204", ""]
    assert lines["FA-2026-00101"] == ["BATIMENT B", "12 RUE DES LILAS", ""]
    assert lines["FA-2026-00102"] == ["3 ALLEE DU COEUR-VOLANT", "", ""]
    [joint] = _rows(out / "WTAMC001_TSOL.txt")
    assert joint[5:8] == ["BATIMENT C", "4 PLACE DU MARCHE", ""]


def test_emagnus_street_cut_at_a_word_boundary_reads_in_order(tmp_path):
    """A street over e.magnus' 50 characters with no line break nor comma, its number
    first, is cut at a word boundary: AdrLig1 was the end of the street's name, 'PROLONGEE
    BIS', and AdrLig2 its number and start (the split gave the part starting with a
    digit to the street line). Its start now comes first, as README.md says."""
    def street(data: dict[str, Any]) -> None:
        data["invoices"][1]["payer"]["address"]["street"] = \
            "123 avenue du Maréchal de Lattre de Tassigny prolongée bis"

    run, out = _export(tmp_path, EMAGNUS, _example_changed(tmp_path, street))
    assert run.exit_code == 0, run.output
    lines = {r[110]: r[11:14] for r in _rows(out / "WTAMC001.txt")}
    assert lines["FA-2026-00102"] == ["123 AVENUE DU MARECHAL DE LATTRE DE TASSIGNY",
                                      "PROLONGEE BIS", ""]


# ------------------------------------------------------- e.magnus: no ';' nor '"'


def _example_with(tmp_path: Path, **payer: str) -> Path:
    return _example_changed(tmp_path, lambda data: data["invoices"][0]["payer"].update(payer))


def _line_of(path: Path, text: str) -> int:
    content = path.read_text(encoding="utf-8")
    assert content.count(text) == 1, text
    return content[:content.index(text)].count("\n") + 1


def test_emagnus_refuses_a_semicolon_or_a_quote_in_a_text_naming_record_and_binding(tmp_path):
    """They were written quoted RFC-4180 style ('"O""BRIEN; & FILS"'), which the known
    integrations never write and e.magnus may not read: the layouts forbid them
    (forbidden_characters), so the text is refused before rendering, naming the record
    and the binding; nothing is written."""
    source = _example_with(tmp_path, last_name='O"Brien; & Fils', first_name="Zoé “Zo”")
    run, out = _export(tmp_path, EMAGNUS, source)
    assert run.exit_code == 4, run.output
    name = _line_of(EMAGNUS, "    name: {expr: \"invoice.payer.last_name or invoice.payer.name\"}")
    first = _line_of(EMAGNUS, "    first_name: payer.first_name")
    assert (f"export.json:$.invoices[0] invoice FA-2026-00101: debtor.name holds ';\"', "
            "which format bl-emagnus forbids in its values (its layouts' "
            "forbidden_characters); the binding's expression may replace them (Jinja's "
            "replace filter), or the school software's export drop them "
            f"[mapping {EMAGNUS}:{name}: bindings.payer.name] (rule text.forbidden)") \
        in run.output
    # “ ” become '"' under the transliterate policy: said so
    assert ("debtor.first_name holds '\"', which format bl-emagnus forbids in its values "
            "(its layouts' forbidden_characters), after the transliterate policy (which "
            "writes « » “ ” „ as '\"'); the binding's expression may replace them") \
        in run.output
    assert f"[mapping {EMAGNUS}:{first}: bindings.payer.first_name]" in run.output
    assert "pes.first-name" not in run.output  # no second problem for the same value
    assert "2 problem(s); nothing was written" in run.output
    assert not out.exists()


def test_a_quote_the_export_wrote_is_not_blamed_on_the_transliterate_policy(tmp_path):
    """A '"' the export's own text holds is refused as it is, even when the policy
    transliterated another character of the text (è): the refusal does not say the
    policy wrote it."""
    source = _example_with(tmp_path, last_name='Lefèvre "Lulu"')
    run, out = _export(tmp_path, EMAGNUS, source)
    assert run.exit_code == 4, run.output
    assert ("debtor.name holds '\"', which format bl-emagnus forbids in its values (its "
            "layouts' forbidden_characters); the binding's expression may replace them") \
        in run.output
    assert "after the transliterate policy" not in run.output
    assert not out.exists()


def test_guillemets_refused_by_emagnus_say_how_the_binding_drops_them(tmp_path):
    """« » become '"' by the transliterate policy, which e.magnus forbids: the refusal
    says so and that the binding's expression may replace them (review: an association
    named « Musique en Loing » had no way through); the replace filter does."""
    source = _example_with(tmp_path, last_name="Association « Musique en Loing »")
    run, out = _export(tmp_path, EMAGNUS, source)
    assert run.exit_code == 4, run.output
    assert "after the transliterate policy (which writes « » “ ” „ as '\"'); the binding's " \
        "expression may replace them (Jinja's replace filter)" in run.output
    assert "(rule text.forbidden)" in run.output
    old = 'name: {expr: "invoice.payer.last_name or invoice.payer.name"}'
    mapping, _ = mapping_copy(tmp_path, EMAGNUS, (old, old.replace(
        '"}', " | replace('« ', '') | replace(' »', '')\"}").replace(
        'expr: "invoice', 'expr: "(invoice').replace('.name |', '.name) |')))
    again, out = _export(tmp_path / "again", mapping, source)
    assert again.exit_code == 0, again.output
    assert "ASSOCIATION MUSIQUE EN LOING" in (out / "WTAMC001.txt").read_text(encoding="cp1252")


def test_emagnus_refuses_a_semicolon_in_an_option_naming_its_line(tmp_path):
    mapping, (line,) = mapping_copy(tmp_path, EMAGNUS, ("    service: CONSERVATOIRE",
                                                        "    service: \"CONS; MUSIQUE\""))
    checked = run_cli("check-mapping", mapping)
    assert checked.exit_code == 3, checked.output
    assert ("output.options.service: holds ';', which the format's layouts forbid "
            "(forbidden_characters)") in checked.output
    assert f"[mapping {mapping}:{line}: output.options.service] (rule mapping.options)" \
        in checked.output
    # the export refuses it too, before anything is read or written
    run, out = _export(tmp_path, mapping)
    assert run.exit_code == 3, run.output
    assert f"[mapping {mapping}:{line}: output.options.service] (rule mapping.options)" \
        in run.output
    assert not out.exists()


def test_check_layout_refuses_a_semicolon_or_a_quote_in_a_value(tmp_path):
    """A hand-made '"DUP;ONT"' (and '"O""BRIEN"') passed check-layout."""
    row = ['"19"', '"4"', '"FAM-0051"', '"DUP;ONT"', '""', '"5 CHEMIN"', '""', '""',
           '"45210"', '"FERRIERES"'] + ['""'] * 8 + ['"01"', '"01"', '"M"'] + ['""'] * 6
    assert len(row) == 27
    quote = [*row[:3], '"O""BRIEN"', *row[4:]]
    sample = tmp_path / "WTAMC001_TSOL.txt"
    sample.write_bytes((";".join(row) + "\r\n" + ";".join(quote) + "\r\n").encode("cp1252"))
    run = run_cli("check-layout", BUNDLE / "wtamc001tsol.layout.yaml", sample)
    assert run.exit_code == 6, run.output
    for line, held in ((1, "';'"), (2, "'\"'")):
        assert (f"WTAMC001_TSOL.txt:{line}: record 'tiers-solidaire', column Designation1 "
                f"(#4): a text of 7 characters") in run.output
        assert (f"holds {held}, which the layout forbids in any value (forbidden_characters "
                "';\"') (rule layout.forbidden)") in run.output
    assert "2 problem(s)" in run.output


# ------------------------------------------------------- an option and its column


def test_an_option_too_long_for_its_column_is_the_mapping_s_problem(tmp_path):
    """service (column 28 Service, 15 characters) of 21: check-mapping said OK and the
    export exited 6 blaming the first invoice ('WTAMC001.txt:1 invoice FA-2026-00101:
    … column Service (#28): is 21 characters'). Now check-mapping and the export, before
    reading its input, name the option's line and the column."""
    mapping, (line,) = mapping_copy(tmp_path, EMAGNUS, ("    service: CONSERVATOIRE",
                                                        "    service: CONSERVATOIRE MUSIQUE"))
    said = ("output.options.service is 21 characters, the layout allows 15 (layout.length): "
            "written as it is into WTAMC001.txt, column Service (#28) of layout WTAMC001 "
            f"[mapping {mapping}:{line}: output.options.service] (rule mapping.options)")
    checked = run_cli("check-mapping", mapping)
    assert checked.exit_code == 3, checked.output
    assert said in checked.output
    # the input is not read: a missing one is not even named
    run, out = _export(tmp_path, mapping, tmp_path / "no-such-export.json")
    assert run.exit_code == 3, run.output
    assert said in run.output and "invoice" not in run.output
    assert not out.exists()


def test_a_corail_code_its_xsd_refuses_is_refused_naming_its_line(tmp_path):
    """A nature of 11 digits passes the mapping's schema (the PES' Nature takes 12) but
    not Corail's Article (corail.xsd: 1 to 10 digits): check-mapping said OK (rule
    mapping.code-fit checked the layouts' columns only) and the export refused each
    invoice using it by the XSD (xsd.bundle), naming no line of the mapping. Refused now
    by check-mapping and before the export reads its input, from the XSD's own facet,
    naming the code's line and key, an activity no invoice uses too."""
    mapping, (line, unused) = mapping_copy(
        tmp_path, CORAIL,
        ('FM-C1:       {product: FMC1, nature: "7062"',
         'FM-C1:       {product: FMC1, nature: "70621234567"'),
        ('THEA-ADO:    {product: THEA, nature: "7062", fonction: "312"}',
         'THEA-ADO:    {product: THEA, nature: "7062", fonction: "312"}\n'
         '    UNUSED:      {product: UNUS, nature: "706212345678", fonction: "311"}'))
    name = "CORAIL_21450999400015_2026_0000001.xml"
    said = ("codes.activities.FM-C1.nature '70621234567' is refused by corail.xsd (xsd.bundle: "
            "[facet 'pattern'] The value '70621234567' is not accepted by the pattern "
            f"'[0-9]{{1,10}}'): written as it is into {name}, "
            "/ImportCosoluce/TypePieceImport/Piece/LignePiece/Article/@V "
            f"[mapping {mapping}:{line}: codes.activities.FM-C1.nature] (rule mapping.code-fit)")
    checked = run_cli("check-mapping", mapping)
    assert checked.exit_code == 3, checked.output
    assert said in checked.output
    assert ("codes.activities.UNUSED.nature '706212345678' is refused by corail.xsd" in
            checked.output)
    assert f"[mapping {mapping}:{unused}: codes.activities.UNUSED.nature] (rule " \
        "mapping.code-fit)" in checked.output
    assert checked.output.count("(rule mapping.code-fit)") == 2  # no other code, no twice
    run, out = _export(tmp_path, mapping, tmp_path / "no-such-export.json")
    assert run.exit_code == 3, run.output
    assert said in run.output and "invoice" not in run.output
    assert not out.exists()


def test_a_code_an_xsd_refuses_as_an_elements_text_is_refused_naming_its_line(tmp_path):
    """mapping.code-fit finds where a code lands in an XML file, an attribute (the
    shipped bundles' V) or an element's text; only the attribute was tested. A copy of
    the Corail bundle writing the nature as Article's text (<Article>7062</Article>, its
    XSD's Article a simple type) refuses a nature of 11 digits, by its line, at the
    element's XPath (no /@V); the shipped mapping's natures pass it."""
    fmts, _, _ = _bundle_with(
        tmp_path, "cosoluce-corail", "corail.xml.j2",
        ('<Article V="{{ imp.nature }}"/>', "<Article>{{ imp.nature }}</Article>"))
    xsd = fmts / "cosoluce-corail" / "corail.xsd"
    text = xsd.read_text(encoding="utf-8")
    old = '<xs:element name="Article" type="V_Article"/>'
    assert text.count(old) == 1
    xsd.write_text(text.replace(old, '<xs:element name="Article" type="Article"/>'),
                   encoding="utf-8")
    mapping, (line,) = mapping_copy(
        tmp_path, CORAIL, ('FM-C1:       {product: FMC1, nature: "7062"',
                           'FM-C1:       {product: FMC1, nature: "70621234567"'))
    checked = run_cli("check-mapping", mapping, "--formats-dir", fmts)
    assert checked.exit_code == 3, checked.output
    assert ("codes.activities.FM-C1.nature '70621234567' is refused by corail.xsd (xsd.bundle: "
            "[facet 'pattern'] The value '70621234567' is not accepted by the pattern "
            "'[0-9]{1,10}'): written as it is into CORAIL_21450999400015_2026_0000001.xml, "
            "/ImportCosoluce/TypePieceImport/Piece/LignePiece/Article "
            f"[mapping {mapping}:{line}: codes.activities.FM-C1.nature] (rule "
            "mapping.code-fit)") in " ".join(checked.output.split())
    assert checked.output.count("(rule mapping.code-fit)") == 1
    assert run_cli("check-mapping", CORAIL, "--formats-dir", fmts).exit_code == 0


def test_a_code_an_xml_bundles_xsd_refuses_is_found_by_its_facets_not_per_vendor(tmp_path):
    """The check is the bundle's XSD, not code per package: a copy of the JVS bundle
    whose XSD takes three characters of CodProdLoc (maxLength) refuses the mapping's
    four-character products, by their lines."""
    fmts, _, _ = _bundle_with(
        tmp_path, "jvs-millesime", "jvs-millesime.xsd",
        ('<xs:pattern value="[0-9a-zA-Z]{1,4}"/></xs:restriction>',
         '<xs:maxLength value="3"/></xs:restriction>'))
    mapping, (line,) = mapping_copy(
        tmp_path, JVS, ('FM-C1:       {product: FMC1,', 'FM-C1:       {product: FMC1,'))
    checked = run_cli("check-mapping", mapping, "--formats-dir", fmts)
    assert checked.exit_code == 3, checked.output
    assert ("codes.activities.FM-C1.product 'FMC1' is refused by jvs-millesime.xsd "
            "(xsd.bundle: [facet 'maxLength'] The value 'FMC1' has a length of '4'; this "
            "exceeds the allowed maximum length of '3'): written as it is into JVS_") \
        in checked.output
    assert ("/n:PES_Aller/PES_RecetteAller/Bordereau/Piece/LigneDePiece/BlocLignePiece/"
            f"InfoLignePiece/CodProdLoc/@V [mapping {mapping}:{line}: "
            "codes.activities.FM-C1.product] (rule mapping.code-fit)") in checked.output
    # the nature (Num12) still fits: only the products are named
    assert "codes.activities.FM-C1.nature" not in checked.output


def test_an_emagnus_name_split_is_refused_as_its_parts_are_joined_again(tmp_path):
    """e.magnus has no ComplNom column: a name complement follows the name in
    Designation1 (50 characters, the limit name_overflow splits at). A name split there
    was joined again and refused by the layout at the billing run, by invoice, naming no
    key of the mapping (layout.length), while check-mapping said OK. Refused now by
    check-mapping (rule mapping.policy-fit), naming the policy's line, for the debtor
    (WTAMC001) and the joint debtor (WTAMC001_TSOL), and by an export before its input."""
    mapping, (line,) = mapping_copy(tmp_path, EMAGNUS, (
        "  name_overflow: refuse", "  name_overflow: split"))
    where = f"[mapping {mapping}:{line}: policies.name_overflow] (rule mapping.policy-fit)"
    said = ("policies.name_overflow: split puts the end of a name longer than 50 characters "
            "into payer.complement_name, which format bl-emagnus writes joined again to "
            "payer.name in WTAMC001.txt, column Designation1 (#10) of layout WTAMC001: the "
            "shortest value the policy splits, joined again there, is 51 characters, the "
            "layout allows 50 (layout.length); every value it splits would be refused there, "
            "by invoice, naming no binding. Set name_overflow: refuse (such a value is then "
            f"refused by invoice, naming its binding) {where}")
    checked = run_cli("check-mapping", mapping)
    assert checked.exit_code == 3, checked.output
    assert said in checked.output
    assert ("into joint_payer.complement_name, which format bl-emagnus writes joined again to "
            "joint_payer.name in WTAMC001_TSOL.txt, column Designation1 (#4) of layout "
            "WTAMC001_TSOL: ") in checked.output
    assert checked.output.count(where) == 2
    # street_overflow: split is not concerned: AdrLig1 and AdrLig2 are two columns
    assert "policies.street_overflow" not in checked.output
    run, out = _export(tmp_path, mapping, tmp_path / "no-such-export.json")
    assert run.exit_code == 3, run.output
    assert said in run.output and "invoice" not in run.output.replace("by invoice", "")
    assert not out.exists()


def test_an_emagnus_name_over_its_limit_is_refused_without_advising_split(tmp_path):
    """With name_overflow: refuse, a name over e.magnus' 50 characters was refused
    advising to set name_overflow: split, which check-mapping refuses for e.magnus
    (mapping.policy-fit): the refusal says split would not help, and why; a PES
    format's (Nom and ComplNom apart) still advises it."""
    long_name = "De La Rochefoucauld-Montmorency-Laval de Saint-Aubin"
    assert len(long_name) > 50

    def longer(data: dict[str, Any]) -> None:
        data["invoices"][1]["payer"]["last_name"] = long_name

    source = _example_changed(tmp_path, longer)
    run, out = _export(tmp_path, EMAGNUS, source, "--dry-run")
    assert run.exit_code == 4, run.output
    assert ("invoice FA-2026-00102: debtor.name is 52 characters, format bl-emagnus allows 50 "
            "(policy name_overflow: refuse; split would not help: format bl-emagnus writes "
            "debtor.complement_name joined again to the name, where the two do not fit "
            "either (rule mapping.policy-fit): shorten it in the school software) [mapping "
            f"{EMAGNUS}:") in run.output
    pes, _ = mapping_copy(tmp_path / "pes", MAPPINGS / "villeneuve-sur-loing-titres.yaml",
                          ("  name_overflow: split", "  name_overflow: refuse"))
    run, _ = _export(tmp_path / "pes", pes, source, "--dry-run")
    assert run.exit_code == 4, run.output
    assert "set policies.name_overflow: split to put its end into ComplNom" in run.output
    assert "split would not help" not in run.output


def test_a_name_over_its_limit_is_refused_without_advising_a_split_written_nowhere(
        tmp_path):
    """A package's import with no column for the name's complement (onboarding
    rehearsal, scaf62's ACME Compta: NumFacture;Debiteur;Montant;…): a name over its
    limit was refused advising name_overflow: split, which the same export then refuses
    (mapping.policy-lost: the complement written nowhere). The refusal says split would
    not help, and why; here PES titres with its ComplNom taken out."""
    long_name = "Association des Parents d'Eleves du Loing"
    assert len(long_name) > 38

    def longer(data: dict[str, Any]) -> None:
        data["invoices"][1]["payer"]["last_name"] = long_name

    source = _example_changed(tmp_path, longer)
    fmts, _, _ = _bundle_with(
        tmp_path, "pes-titres", "pes-titres.xml.j2",
        ('{% if d.complement_name %}<ComplNom V="{{ d.complement_name }}"/>\n{% endif %}\n',
         ""))
    pes, _ = mapping_copy(tmp_path / "pes", MAPPINGS / "villeneuve-sur-loing-titres.yaml",
                          ("  name_overflow: split", "  name_overflow: refuse"))
    run, out = _export(tmp_path, pes, source, "--dry-run", "--formats-dir", fmts)
    assert run.exit_code == 4, run.output
    assert ("invoice FA-2026-00102: debtor.name is 41 characters, Hélios allows 38 (policy "
            "name_overflow: refuse; split would not help: format pes-titres writes no "
            "debtor.complement_name (rule mapping.policy-lost): shorten it in the school "
            "software)") in run.output
    assert "set policies.name_overflow: split" not in run.output


def test_a_split_an_xsd_refuses_joined_again_is_refused_by_the_policy(tmp_path):
    """The same found by a bundle's XSD, no code per package: Corail writes the name, its
    complement and the first name joined in RaisonSociale (77 characters: a split at 38
    fits, check-mapping says OK); a copy whose RaisonSociale takes 38 refuses the
    policy."""
    mapping, (line,) = mapping_copy(tmp_path, CORAIL, (
        "  name_overflow: split", "  name_overflow: split"))
    assert run_cli("check-mapping", mapping).exit_code == 0
    fmts, _, _ = _bundle_with(
        tmp_path, "cosoluce-corail", "corail.xsd",
        ('<xs:element name="RaisonSociale" type="V_Texte77"/>',
         '<xs:element name="RaisonSociale" type="V_Texte38"/>'))
    checked = run_cli("check-mapping", mapping, "--formats-dir", fmts)
    assert checked.exit_code == 3, checked.output
    assert ("policies.name_overflow: split puts the end of a name longer than 38 characters "
            "into payer.complement_name, which format cosoluce-corail writes joined again to "
            "payer.name in CORAIL_21450999400015_2026_0000001.xml, /ImportCosoluce/"
            "TypePieceImport/Piece/InfoPiece/Tiers/InfoTiers/RaisonSociale/@V: the shortest "
            "value the policy splits, joined again there, is refused by corail.xsd "
            "(xsd.bundle: [facet 'maxLength'] The value ") in checked.output
    assert f"[mapping {mapping}:{line}: policies.name_overflow] (rule mapping.policy-fit)" \
        in checked.output


def test_a_format_option_default_holding_a_forbidden_character_is_refused(tmp_path):
    old = 'tribunal: "le tribunal administratif"'
    fmts, spec, text = _bundle_with(tmp_path, "bl-emagnus", "format.yaml",
                                    (old, 'tribunal: "le tribunal; administratif"'))
    line = text[:text.index(old)].count("\n") + 1
    run = run_cli("check-format", "bl-emagnus", "--formats-dir", fmts)
    assert run.exit_code == 3, run.output
    assert (f"option tribunal: holds ';', which the format's layouts forbid "
            f"(forbidden_characters) (an option is written as it is: no text policy "
            f"transliterates it) [format {spec}:{line}: defaults.options.tribunal]"
            ) in run.output


def test_an_emagnus_code_its_layout_refuses_is_refused_naming_its_line(tmp_path):
    """A nature of 11 digits passes the mapping's schema (the PES' Nature takes 12) but
    not e.magnus' Article (10 characters): check-mapping said OK and the export refused
    each invoice using it in its rendered WTAMC001 (layout.length), naming no line of the
    mapping. Refused now by check-mapping and before the export reads its input (rule
    mapping.code-fit), naming the code's line and key, an activity no invoice uses too."""
    mapping, (line, unused) = mapping_copy(
        tmp_path, EMAGNUS,
        ('FM-C1:       {product: FMC1, nature: "7062"',
         'FM-C1:       {product: FMC1, nature: "70621234567"'),
        ('THEA-ADO:    {product: THEA, nature: "7062", fonction: "312"}',
         'THEA-ADO:    {product: THEA, nature: "7062", fonction: "312"}\n'
         '    UNUSED:      {product: UNUS, nature: "706212345678", fonction: "311"}'))
    said = ("codes.activities.FM-C1.nature is 11 characters, the layout allows 10 "
            "(layout.length): written as it is into WTAMC001.txt, column Article (#26) of "
            f"layout WTAMC001 [mapping {mapping}:{line}: codes.activities.FM-C1.nature] "
            "(rule mapping.code-fit)")
    checked = run_cli("check-mapping", mapping)
    assert checked.exit_code == 3, checked.output
    assert said in checked.output
    assert ("codes.activities.UNUSED.nature is 12 characters, the layout allows 10 "
            "(layout.length): written as it is into WTAMC001.txt, column Article (#26) of "
            f"layout WTAMC001 [mapping {mapping}:{unused}: codes.activities.UNUSED.nature] "
            "(rule mapping.code-fit)") in checked.output
    run, out = _export(tmp_path, mapping)
    assert run.exit_code == 3, run.output
    assert said in run.output
    assert not out.exists()


def test_a_product_fonction_or_operation_code_its_layout_refuses_is_refused(tmp_path):
    """mapping.code-fit checks each code an activity gives, not the nature alone: in a
    bundle whose layout narrows CPL to 3 characters, Fonction and Operation to 2, the
    product, fonction and operation codes that pass the mapping's schema are each
    refused, named by their key."""
    from pesgen.formats import load_format
    from pesgen.mapping import load_mapping
    from pesgen.sample import check_templates

    _, layout, _ = _bundle_with(
        tmp_path, "bl-emagnus", "wtamc001.layout.yaml",
        ("{name: Operation, type: text, length: 10}", "{name: Operation, type: text, length: 2}"),
        ("{name: Fonction, type: text, length: 10,", "{name: Fonction, type: text, length: 2,"),
        ("{name: CPL, type: text, length: 4,", "{name: CPL, type: text, length: 3,"))
    folder = layout.parent
    mapping, _ = mapping_copy(
        tmp_path, EMAGNUS,
        ('THEA-ADO:    {product: THEA, nature: "7062", fonction: "312"}',
         'THEA-ADO:    {product: THEA, nature: "7062", fonction: "312", operation: "OP123"}'))
    misfits = check_templates(load_mapping(mapping), load_format(folder)).misfits
    assert {p.rule for p in misfits} == {"mapping.code-fit"}
    said = {p.message.split(" is ", 1)[0] for p in misfits}
    assert {"codes.activities.THEA-ADO.product", "codes.activities.THEA-ADO.fonction",
            "codes.activities.THEA-ADO.operation"} <= said, said
    assert "codes.activities.THEA-ADO.nature" not in said
