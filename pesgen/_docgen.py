"""Generate the reference pages of docs/ from the code: the mapping reference (from the
JSON Schema), the list of rules checked (from ``rules.RULES`` and the table below), the
template model, and sections of hand-written pages between markers (docs/state.md's
table of the checks a rebuilt run's mapping is let through).

    python -m pesgen._docgen          # rewrite the generated pages and sections
    python -m pesgen._docgen --check  # exit 1 if they are out of date (the tests do this)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ._schema import load_schema
from .atomic import write_file
from .rules import RULES

DOCS = Path(__file__).resolve().parents[1] / "docs"

# Rules checked outside rules.RULES: while mapping the input (build), on the rendered
# file (validate), at mapping load, and by the state store. (id, what, source)
OTHER_RULES: list[tuple[str, str, str, str]] = [
    ("mapping", "mapping.schema", "The mapping file matches the versioned JSON Schema; unknown keys, a binding's own included ({exp: …}), are named with a suggestion. A schema problem (or a TODO left, a duplicate key) does not hide the other problems: in the same run, every part of the mapping that passed (a section, each binding, each code table) gets its own checks (an expression that does not compile, a SIRET checksum, a code table outside the DGFiP grid…), and a part that failed gets none (said once, as it failed). The checks that need the whole mapping loaded (its fit with the format, the templates rendered on sample titles) come once it loads.", "pesgen (schemas/mapping.schema.json)"),
    ("mapping", "mapping.todo", "No value, no key of a code table, and no string in an expression (the scaffold's debt_number: {expr: \"invoice['TODO'] | digits\"}) is still the placeholder TODO that `pesgen new-mapping` writes: each one left is named by file:line: key.", "pesgen (no silent fallback)"),
    ("mapping", "mapping.duplicate-key", "A YAML key appears once per mapping.", "pesgen"),
    ("mapping", "format.duplicate-key", "A YAML key appears once per format.yaml: a key written twice makes the bundle invalid (exit 3; `pesgen formats` lists it BROKEN), naming format.yaml:line of the second and the line of the first (a layout's key written twice is listed as mapping.duplicate-key, [layout file:line: key]).", "pesgen"),
    ("mapping", "mapping.yaml", "Plain YAML only: no tags, no merge keys, no alias bombs, no alias inside its own anchor, no nesting over 100 levels, aliases expanded (each named at its line).", "pesgen (security)"),
    ("mapping", "mapping.expr", "A binding expression compiles (not nested too deeply), reads no name starting with '_' (a format string's fields included: '{0.__class__}'), and evaluates: an attribute the sandbox refuses (a method changing the record read, such as update or append, included), or a result over the sandbox's bounds, is an error naming the binding, never an empty field.", "pesgen"),
    ("mapping", "mapping.time", "Building one invoice's title (its bindings' expressions, the code tables, the policies), the bordereau object's expression once a run, and, for a PayFiP link, payfip.refdet, payfip.objet and the run's recorded invoice.number and payer.email on each invoice, take at most 60 s: past that it is stopped where it is (a filter over millions of items in an expression, each list within the sandbox's bounds, ran for hours on each invoice), the command refused (exit 3, nothing written), naming the binding whose expression was running (its mapping line and key) and the record, or the invoice alone when no expression was; the problems found in the invoices before it are listed too, and no other invoice is built. A comparison or sort running inside Python's C code (of lists built to share themselves exponentially) ends before it can be stopped: pesgen bounds what such lists' text would be, not how long comparing them takes.", "pesgen"),
    ("mapping", "mapping.input", "CSV input names its grouping column; the encoding exists and reads files (not idna, punycode or undefined, Python codecs that read no file); JSON input's bindings.lines is no constant ({const: rows} is for CSV, where each row is a line; with CSV, bindings.lines is not read, and a column it names that the header lacks is refused as input.column).", "pesgen"),
    ("mapping", "mapping.csv-lines", "With CSV input, bindings.lines is {const: rows}: each row of an invoice (input.group_by) is one of its lines and bindings.lines is not read, so a column or expression there (lines: lignes_facture) only looked read. Refused when the mapping loads (exit 3, check-mapping too); a recorded run's mapping is rebuilt with it waived.", "pesgen"),
    ("mapping", "mapping.csv-records", "With CSV input, input.records is absent: it is the dotted path of a JSON export's invoice array, and a CSV file's rows are the invoices' lines (grouped by input.group_by), so records: factures only looked like it chose what is read. Refused when the mapping loads (exit 3, check-mapping too); a recorded run's mapping is rebuilt with it waived.", "pesgen"),
    ("mapping", "mapping.policy", "A policy that needs a value has it (missing_civility: default needs default_civility).", "pesgen"),
    ("mapping", "format.schema", "A format bundle's format.yaml matches schemas/format.schema.json and names its folder; its encoding is known and writes every character of its text charset (charset:, or the encoding's own: another encoding needs charset:), and every option default (defaults.options, written as it is: no text policy applies) is writable in that encoding and within that charset, and each value a field lists (fields.debtor.civility.values: a non-empty list of distinct strings, each within the field's max and charset, as a code of a mapping), each refused naming its format.yaml line.", "pesgen (schemas/format.schema.json)"),
    ("mapping", "collectivity.siret", "The collectivity's SIRET (IdColl) has a valid checksum.", "DT v5.19 EnTetePES/IdColl; DT-AQ lists ERREUR_SIRET (a name only: its link to this rule is pesgen's reading)"),
    ("mapping", "collectivity.sepa-creditor-id", "The collectivity's SEPA creditor identifier (ICS, collectivity.sepa_creditor_id), when given, is written upper case without spaces (the schema's pattern) and has valid ISO 7064 mod 97-10 check digits (python-stdnum eu.at_02): it goes as it is into the files that carry it (e.magnus WTAMC001 column 74).", "SEPA Core Direct Debit rulebook, AT-02 (the Creditor Identifier; its check as python-stdnum eu.at_02 implements it); notes pes-v2-recette.md §6.1 (AncienICS: 13 characters, ICS structure), peers-and-vendor-formats.md (e.magnus ICS 13)"),
    ("mapping", "collectivity.exercise", "The mapping's exercise (collectivity.exercise, written as Exer and into Cle1, Cle2 and the payment references) is not after the year of the run date (DteBordEm, --date): export, its dry run and preview refuse it (exit 3), naming the mapping line; a recorded run rebuilt is not checked again. An exercise two years or more before the run date's is closed: refused the same way. Last year's exercise is not refused but noted in the run summary (note `exercise`): in January, it is the usual « journée complémentaire » (pesgen's reading: the DT does not describe it), to check with the trésorerie; later, the exercise is likely closed.", "DT v5.19 PES_RecetteAller_blocs (Exer: « Millésime de l'exercice de rattachement budgétaire »), PES_RecetteRetour_codes (TObsEtat motifs de rejet 09 « Exercice Bordereau non ouvert », 22 « Exercice rôle clôturé »)"),
    ("mapping", "collectivity.timezone", "The collectivity's time zone (collectivity.timezone, default Europe/Paris), when given, is an IANA name as the tz database writes it (the tzdata package's list: America/Guadeloupe, not america/guadeloupe; not a machine's own entry such as localtime) that zoneinfo loads: a run given no --date (export, its dry run, preview) is dated today in that zone, never on the machine's date, and its summary says so (note `run_date`). A recorded run rebuilt keeps its recorded date.", "pesgen (IANA time zone database, Python zoneinfo)"),
    ("mapping", "pes.cat-nat-grid", "Each payer kind maps to a CatTiers/NatJur pair of the grid. The DT's own labels disagree: its code list (DomaineGlobalAller_codescommuns, TCatTiers; the XSD's labels in CommunPES.xsd) says « 50 : Autres organismes sociaux », « 60 : Personnes morales de droit privé autres qu'organismes sociaux », 61-65 and 70-74 social security bodies and other payers, while Annexe 3 labels its row 50 « personnes morales de droit privé autres qu'organismes sociaux » (NatJur 03 or 06), row 60 « caisses de sécurité sociale régime général » (04 only) … and row 74 « autres organismes sociaux »: the labels of rows 50 to 74 are shifted against the code list. pesgen follows Annexe 3's numbers (a company or an association is CatTiers 50 there, 60 in the code list's words); ask the trésorerie which one Hélios applies (docs/onboarding.md).", "DT v5.19 Annexes, Annexe 3 (its numbers; its labels of rows 50-74 conflict with DT v5.19 codes communs TCatTiers and XSD v5.17 CommunPES.xsd)"),
    ("mapping", "pes.cat-tiers", "CatTiers is a DGFiP category code.", "DT v5.19 codes communs, TCatTiers"),
    ("mapping", "mapping.format", "output.format names a format bundle of the format folders (one not found is the mapping's error, exit 3, naming its output.format line, with the closest known name: did you mean; a --format typed on a command line is a usage error, exit 2). The mapping fits its format: NumDette (bindings.invoice.debt_number) is bound for ORMC formats and absent for titres; the mapping's own texts a template writes as they are (collectivity.budget_label, poste_label, output.emitter.sigle, adresse) fit the output's encoding and the format's charset and, in a PES file or one a finance package turns into PES titles (a format of rules pes-common: JVS Millésime's own XSD refuses 'nc', '.' and ' ' too), are no value a Base_TexteX refuses (only zeros, 'nc', '.' or a space), named at their line by check-mapping, before any input is read.", "DT v5.19 BlocPiece/NumDette (ORMC only); Dictionnaire des données (Base_TexteX)"),
    ("mapping", "mapping.asap-edition", "output.asap_edition is a code the format supports (format.yaml defaults.asap_editions), and is set when the format requires it (defaults.asap_edition_required).", "DT v5.19 BlocPiece/Edition; Annexe 2"),
    ("mapping", "mapping.options", "output.options names only parameters the format declares (format.yaml defaults.options), and each value (written as it is, never transliterated) is one the output encoding can write and within the format's charset (format.yaml charset, the characters its text is held to: ascii for e.magnus, latin-1 for JVS, whatever the encoding writes); so is each default of format.yaml (checked for the charset when the bundle loads, for the encoding a mapping's output.encoding gives too). An option a template writes as it is into a column of a layout must fit that column (length, values, pattern…): found on check-mapping's sample titles (the column whose value is the option's), refused by check-mapping, check-format and export before any input is read, naming output.options.<key>, the file and the column, not blamed on an invoice. Neither an option nor a text of the mapping may hold a character a layout of the format forbids (forbidden_characters: ';' and '\"' for e.magnus). The mapping's own texts (collectivity.name, budget_label, poste_label, output.emitter) are held to the output encoding, and, where a template writes them (read on check-mapping's sample titles; e.magnus writes none of them), to the same charset and forbidden characters (rule mapping.format): no text policy (case, transliterate) changes them. A run recorded before the charset was checked is rebuilt as it was.", "pesgen"),
    ("mapping", "mapping.code-fit", "A code of codes.activities (product, nature, fonction, operation) that a template writes as it is into a column of a layout fits that column (its length, type, values and pattern: e.magnus' Article takes 10 characters where the mapping's schema lets a nature have the PES' 12): check-mapping, and export (dry run too) and preview before reading their input, refuse it (exit 3), naming the code's line and key, the file and the column, whether an invoice of the export uses the activity or not. Found by rendering a sample title whose line marks each code, in the files with a layout; a format written through an XSD (Corail) is checked by its XSD at export, naming the invoice.", "pesgen (layout of the bundle)"),
    ("mapping", "mapping.unwritten", "A field the mapping binds (bindings.*, output.bordereau_object) is read by a template of its format when check-mapping renders the sample titles (check-format: with the fixture's mapping), or the format's format.yaml declares it not carried, with the reason (not_carried: {payer.email: …}); otherwise a warning, not a refusal, names the mapping file:line:key and the format (a format may have no place for it: no e-mail column), and never advises unbinding the payer's e-mail of a mapping that sets up PayFiP (a payfip section or collectivity.payfip_client): payfip link reads it from the run's recorded input. At export (its dry run too) and preview, a note in the run summary (policy unwritten), once for the run: the same words, and how many of the run's invoices (of those preview shows) had a value for the field, not written (a bordereau object: whether the run had one); the run records it (runs show). Templates that fail on the sample titles are left to the export, whose summary then says the fields were not checked. Reading counts: through a filter (pricing, by_imputation, map(attribute=…)) too. The invoice number and NumDette are not checked: the state store keeps them.", "pesgen (nothing lost)"),
    ("mapping", "mapping.policy-lost", "A value a split policy fills is read by a template of the format: street_overflow: split puts the start of an over-long street into address.complement (the joint debtor's too), name_overflow: split the end of an over-long name into payer.complement_name (joint_payer.complement_name); a format that writes the street (the name) but not the complement would lose that part of it. check-mapping, check-format, export (dry run too) and preview refuse it (exit 3, before any number is taken), naming the policy's line, whether format.yaml declares the complement not carried or not; the policy set to refuse refuses such a value instead, by invoice.", "pesgen (nothing lost)"),
    ("mapping", "format.not-carried", "A field format.yaml declares not_carried is read by none of the format's templates (a warning naming format.yaml:line: not_carried.<field>). not_carried names fields as a mapping binds them: an unknown one is a format.schema problem naming its line, with the closest name.", "pesgen"),
    ("mapping", "layout.schema", "A layout file (listed as [layout file:line: key]; a format.yaml's problems as [format …]) matches schemas/layout.schema.json; columns do not overlap, codes list their values, several record types have a type column.", "pesgen (schemas/layout.schema.json)"),
    ("input", "input.required", "A required field (invoice number, NumDette, payer kind and name, street, postal code, city, line activity and amount; mandate fields for a direct debit) is present (an expression that gives an empty NumDette says so).", "DT v5.19 PES_RecetteAller (cardinalities)"),
    ("input", "input.duplicate-invoice", "An invoice number appears once in the input (CSV: its rows are contiguous, and a row met after another invoice's is refused saying to sort the export by the input.group_by column); numbers are compared by their key, as a reader reads them: case, surrounding spaces, Unicode look-alikes aside (FA-2026-00101, fa-2026-00101, FA‐2026‐00101 with Unicode hyphens, FA–2026–00101 with en dashes, ＦＡ-２０２６-００１０１ in full width, one with an invisible soft hyphen are one invoice: the outputs upper-case and transliterate their text; see docs/state.md).", "pesgen (nothing twice)"),
    ("input", "input.invoice-number", "An invoice number is at most 64 characters (the state store records it), and does not start with =, +, -, @, a tab or a carriage return: the payment references CSV beside the file carries it, and a spreadsheet would read such a cell as a formula (CSV injection).", "pesgen (state store); OWASP CSV injection"),
    ("input", "input.single-debtor", "CSV: the invoice-level columns (read by a path or an expression) are identical on every row of an invoice (one debtor per title).", "DT v5.19 BlocPiece/IdPce: ORMC title single-debtor"),
    ("input", "input.lines", "An invoice has at least one line.", "DT v5.19 Piece: LigneDePiece 1..n"),
    ("input", "input.date", "Dates are valid (ISO or French), of a year from 1900 to 2099 ('05/12/0026' is a typo, though xs:date takes it).", "DT v5.19 Base_Date (xs:date); pesgen (year window)"),
    ("input", "input.amount", "Amounts are numbers (ISO or French; a value that is not one is quoted when short and mostly digits, '12,5O', else described, 'a text of 27 characters (letters, digits)', and a JSON list, object or true/false by its kind, 'an object is not an amount': a binding on the IBAN or the name column quotes neither, and so for input.date); a thousands separator (a space of any width, an apostrophe, the '.' of fr or the ',' of iso) only between groups of exactly 3 digits, one kind per amount ('142 50', '85.00' in fr, '1.2,50' are refused); with input.numbers auto, a value that reads both ways ('1.500') is refused; an amount or quantity of more than 15 integer digits (or not finite: JSON 1e400) is refused as too large.", "DT v5.19 Base_Montant"),
    ("input", "input.type", "A field of the title (a text, a code, the invoice number, NumDette, postal code, IBAN…) reads a string or a number: a JSON list, object or true/false is refused, naming its JSON path (or expression) and binding, never written as Python text. A value the bindings read *through* that is of another kind than they need (`\"payer\": [\"x\"]` or `\"payer\": \"Dupont\"` where `payer.name`, `payer.address.city` read keys of an object; an index read of an object) is one problem at its JSON path, saying what it is and what is expected, naming every binding (mapping line) that reads through it, a path's or an expression's (`invoice.payer.last_name`), instead of a missing field per binding; a value missing or null is still each field's `input.required`. A run recorded before this check is rebuilt as it was read.", "pesgen (no silent change of data)"),
    ("input", "input.bool", "Yes/no values are recognisable (yes/no, true/false, oui/non, o/n, y/n, 1/0, blank = no): a value that is none of them is refused, not taken as 'no' (the shipped mappings bind the payment method and translate it by codes.payment_methods: rule codes.payment-method).", "pesgen"),
    ("input", "input.total", "A declared invoice total equals the sum of its lines.", "DT v5.19 MtBordHt = Σ MtHT; DT-AQ lists ERREUR_CUMUL_MONTANTS (a name only: its link to this rule is pesgen's reading)"),
    ("input", "input.json / input.csv / input.csv-row / input.encoding / input.shape / input.empty / input.column / input.format", "The export file is readable: valid JSON/CSV, right field count (every CSV row the reader refuses, a field count that is not the header's, the header again or quotes it cannot parse, is listed at its line, up to 1 000 and the rest counted; past the first one the rows are checked, not read as invoices; the file's last rows without a value in the input.group_by column are refused as a totals line, said so), declared encoding (a UTF-8 file declared cp1252/latin-1 is refused at its first UTF-8 line, never read as 'Ã©'; an ISO-8859-15 (Latin-9) file declared ISO-8859-1 or cp1252 at its first line showing a byte those read as another sign: '¤' (Latin-9's '€') anywhere, '¦ ¨' (its 'Š š') against a letter, '¼ ½ ¾' (its 'Œ œ Ÿ') inside a word (between two letters, or before two), never read as 'C½UR' for 'CŒUR'; a lesson's '½h' or '1h½' reads as itself; a cp850 or Mac Roman file (Excel's 'CSV (MS-DOS)' and 'CSV (Macintosh)' saves) declared cp1252 or ISO-8859-1/15 at its first line showing a byte of 0x80-0x9F between two ASCII letters that Windows-1252 reads as no letter (or as a capital Š Œ Ž Ÿ between small ones) and either reads as a French letter of the next letter's case, never read as 'LefŠvre' for 'Lefèvre' (l’école, cœur, Saint–Denis read as themselves), the encoding named being the one reading more of the file's first 200 such bytes so, and named too when the file is declared UTF-8; a UTF-16 or UTF-32 file, a spreadsheet's 'Unicode text' export, by its byte order mark or, without one, by a NUL every second byte, declared in an encoding that does not read it as such is refused at its line 1 with the input.encoding that does (utf-16, utf-16-le…), never read as a NUL between letters nor told to try cp1252 or another delimiter; a file another encoding cannot decode but UTF-8 reads whole (a UTF-8 file declared utf-16) says input.encoding: utf-8?; a UTF-8 file holding a value in another encoding (a line UTF-8 does not decode, another line of UTF-8 letters) is said to mix two encodings, which no input.encoding reads, naming that UTF-8 line and no mapping key, never told to try cp1252, which would refuse it as UTF-8); every CSV column the mapping reads (`input.group_by`, a binding's path or expression) is in the header, all of them refused alike, naming the mapping key (exit 4: the mapping is valid, the file is not the one it reads; a did-you-mean ignores case, else the header's first columns are named; for an expression, the message adds that invoice is the input record, its columns read by name, with the invoice number's column as the example); a title above the header (an export's name, its date) is skipped only by `input.header_line` (the header's line; the rows keep their line in the file), and a header line not naming the group_by column while another of the first 100 does, with no field a number, a date, an e-mail or an IBAN, names that line by its number: input.header_line: N?; a header read as one column names the delimiter, and so does a quoted header whose closing quote is followed by another delimiter than input.delimiter (a;b, every field quoted, read with `,`: the quotes are right); a JSON file given to a CSV mapping (or the reverse) says what `input.format` expects; these describe the first line (JSON or XML by its first character; CSV: how many fields, which delimiter, a header or not: a field that looks like a number, a date, an e-mail or an IBAN is no header's), and quote none of it (the first line of an export without a header is a billing row), nor list the columns of a first line that is no header; a JSON Lines file (a JSON object a line) is said to be one, pesgen reading one JSON document; a JSON syntax error names the invoice it is in (or the one before it) and quotes none of the file (an IBAN or a name near the error stays out of the terminal and the logs); so does an integer of more digits than Python's int() reads (4 300), read by ijson's Python reader (its C reader left the error pending: with a syntax error further in the file the interpreter crashed). Each names the `input.*` key of the mapping that fixes it.", "pesgen"),
    ("input", "input.json-duplicate-key / input.json-depth / input.json-size / input.json-surrogate", "A JSON key appears once per object (the JSON path of the second is named); nesting stops at 64 levels anywhere in the file; a string holds at most 100 000 characters and one invoice at most 16 MiB (checked while reading, before the parser holds it); an invoice's string or key holds no escaped lone surrogate (\\uD800 to \\uDFFF without its pair: half of a UTF-16 character; a pair is its character). ijson's C reader wrote a lone one as '?', silently: a file with a surrogate escape is read by its Python reader, which keeps it to be refused.", "RFC 8259 section 8.2 (unpaired surrogates); pesgen"),
    ("input", "input.path", "A JSON path binding reads a key some invoice of the run has. One no invoice answers is refused when a key seen there is nearly the same (a typo: difflib ratio ≥ 0.8, did you mean) or the field is required; otherwise the run summary notes it (policy `path`): the optional field stays empty.", "pesgen"),
    ("input", "codes.activity", "Every activity code is in codes.activities.", "pesgen (no silent fallback)"),
    ("input", "codes.payer-kind", "Every payer kind is in codes.payer_kinds.", "pesgen"),
    ("input", "codes.civility", "Every civility is in codes.civility (when the table is given). The table's values and policies.default_civility are codes sent as written (no case, transliterate or newlines policy): each is checked once, when the mapping is loaded, against the format's debtor.civility field (its charset and length, no space at either end, no PES placeholder, and one of the values the format lists, format.yaml fields.debtor.civility.values, as written, case included: Corail's Mr, Mme), naming the table key's line (check-mapping, preview and export refuse it, exit 3). Without the table, an invoice whose civility, after the text policies, is not one of the values the format lists is refused, naming its record, the binding's line and the values, and suggesting the table; check-mapping, which reads no export, warns of such a civility binding (its line). A recorded run is rebuilt as it was.", "DT v5.19 InfoTiers/Civilite: list arrêtée; a format's own list (format.yaml fields.debtor.civility.values, from its XSD: corail.xsd Civilite)"),
    ("input", "codes.country", "A foreign country has an INSEE code in codes.countries (keys compared in upper case; two keys that differ only in case give one code, checked when the mapping is loaded); a country given 100 is France.", "DT v5.19 Adresse/CodPays"),
    ("input", "codes.payment-method", "With codes.payment_methods, the payment method payment.direct_debit reads is a text of the table (which says whether it is a direct debit): an unknown method, or one that is no text (a JSON true, 1), is refused, never read as a yes/no value.", "pesgen (no silent fallback)"),
    ("input", "codes.sepa-sequence", "The SEPA sequence translates to SequencePres 01-04.", "DT v5.19 TSequencePres"),
    ("input", "pes.zero-total", "A title's total is > 0 (policy zero_total: leave out or refuse).", "XSD v5.17 Simple_Type.xsd V_Montant (Base_Montant) minExclusive 0; DT v5.19 InfoLignePiece/MtHT « Pas de valeur à vide ou 0,00 sinon rejet du bordereau »"),
    ("input", "pes.negative-total", "A credit (total < 0) is not a title.", "XSD v5.17 Simple_Type.xsd V_Montant (Base_Montant) minExclusive 0"),
    ("input", "pes.line-amount", "Line amounts are > 0 (policy negative_lines: net or refuse).", "DT v5.19 InfoLignePiece/MtHT"),
    ("input", "pes.netting", "A negative line nets only into positive lines of the same imputation.", "pesgen policy negative_lines"),
    ("input", "pes.amount-decimals", "Amounts have at most 2 decimals.", "DT v5.19 Base_Montant (fractionDigits 2)"),
    ("input", "pes.num-dette", "NumDette is 1-15 digits, > 0.", "DT v5.19 BlocPiece/NumDette (Base_Num15)"),
    ("input", "pes.num-dette-keys", "NumDette's value (leading zeros aside) has at most 13 digits, naming the invoice, its record and bindings.invoice.debt_number: Cle1 and Cle2 are known over NumDette on 13 digits (the legacy rôle format), and pesgen computes both for every ORMC title; over 14 or 15 digits no known formula gives them, and a key Hélios computes otherwise would make the family's payment reference wrong. A run recorded before this rule is rebuilt as it was (regenerate).", "pesgen (protects the payment references); DT v5.19 BlocPiece/NumDette is Base_Num15; the 13-digit formula: notes pes-v2-recette.md §10.3"),
    ("input", "pes.num-dette-unique", "Two titles of a run never share a NumDette: with Per it makes the payment reference (Datamatrix, PayFiP refdet) a family pays with.", "pesgen (DT v5.19 BlocPiece/NumDette: the invoice number of the article)"),
    ("input", "pes.first-name", "A person (CatTiers 01) has a first name.", "DT v5.19 InfoTiers/Prenom"),
    ("input", "pes.civility", "A person has a civility (policy missing_civility), never Mademoiselle.", "DT v5.19 InfoTiers/Civilite"),
    ("input", "pes.bordereau-amount", "A bordereau's total (MtBordHt) fits Base_Montant (at most 999 999 999 999.99): the title that would pass it is refused, by name.", "DT v5.19 BlocBordereau/MtBordHt; Base_Montant"),
    ("input", "run.one-file-set", "A format whose file name does not follow the bordereau's number (e.magnus' WTAMC001.txt) writes one bordereau per run: a run of more titles than output.max_pieces_per_bordereau is refused at the title that would open a second one, by name (before, every title was rendered and the run refused as a template error, exit 5).", "pesgen"),
    ("input", "pes.postal-code", "A French postal code has 5 digits.", "DT v5.19 Adresse/CP"),
    ("input", "pes.foreign-address", "A foreign address follows policy foreign_address (CP 99999, CodRes 1, CodPays).", "DT v5.19 Adresse/CP, CodRes, CodPays"),
    ("input", "pes.siret", "A payer's national id (IdTiers) is a SIRET (14 digits, sent with NatIdTiers 01) or a SIREN (9 digits, NatIdTiers 02), told apart by its length, with a valid key (python-stdnum); any other value is refused.", "DT v5.19 InfoTiers/IdTiers, NatIdTiers"),
    ("input", "pes.text", "A required text is not empty, only zeros, 'nc', '.' or a space; an optional one that is such a placeholder is left out, and the run summary says so (note placeholder).", "DT v5.19 Base_TexteX"),
    ("input", "sepa.debit-date", "A direct debit's date (DtePrel) is not before the bordereau's date (DteBordEm, the run's --date), naming the invoice, its record and bindings.payment.debit_date: a debit settled before the rôle is issued cannot happen. A DtePrel on a day TARGET2 is closed (a Saturday or Sunday, New Year's Day, Good Friday, Easter Monday, 1 May, 25 or 26 December) is not refused: the run summary notes it once per date (note debit_date; export, its dry run and preview), since the interbank settlement happens on a TARGET2 business day. A run recorded before this rule is rebuilt as it was (regenerate).", "pesgen's reading of DT v5.19 InfoPrelevementSEPA/DtePrel (« Date de prélèvement. Date d'échéance correspondant à date de règlement interbancaire. »); the closing-day note: pesgen's reading too (the ECB's TARGET2 calendar)"),
    ("input", "sepa.iban", "The debtor IBAN is valid (checksum, country length).", "DT v5.19 CpteBancaire/IBAN; Base_Texte34IBAN"),
    ("input", "sepa.bic", "The debtor BIC is valid.", "DT v5.19 CpteBancaire/BIC; Base_Texte11BIC"),
    ("input", "sepa.bic-abroad", "A direct debit from an account abroad (an IBAN whose country is not FR, nor GF, GP, MQ, RE, YT, PM, BL or MF, which the ISO registry lists apart though their banks are French) has its BIC.", "DT v5.19 DomaineGlobalAller_blocscommuns, CpteBancaire/BIC (\"obligatoire pour toute domiciliation à l'étranger, sinon rejet du bordereau\")"),
    ("input", "text.charset", "Text fits the target character set (ISO-8859-1; SEPA set for RUM and LibPrel), after the transliterate, case and newlines policies. A letter followed by its combining accent (e + U+0301, as macOS writes é) is the composed letter first (Unicode NFC, the same text: no policy, no note). Invisible characters: a no-break space (U+00A0) becomes a space and a soft hyphen (U+00AD) is removed under transliterate (note), refused otherwise; one outside ISO-8859-1 (zero-width space U+200B, joiners) is always refused.", "DT v5.19 Base_TexteXSEPA; XML 1.0"),
    ("input", "text.forbidden", "A text field holds no character a layout of the format forbids (forbidden_characters: ';' and '\"' for e.magnus), after the text policies (a '“' the transliterate policy makes '\"' is refused too, and said so): refused by invoice, naming the binding, never written quoted nor replaced. A run recorded before the check is rebuilt as it was.", "layout (the package's documentation)"),
    ("input", "text.length", "Text fits its field (Nom 38, Adr 38, ObjLignePce 160…), after the street/name split and text_overflow policies.", "DT v5.19 Base_TexteX lengths"),
    ("output", "xsd.pesgen", "The file is valid against pesgen's own XSD, a stricter subset of the DGFiP's: it takes what pesgen writes. Of a PESORMC file from elsewhere that the DGFiP's XSD accepts, pes-ormc.xsd refuses (found by mutating a file element by element; each reason in the XSD's comments; pes-titres.xsd likewise, with its own fixed values): InfoDematerialisee is missing, or it, Majo or TvaIntraCom is not 0 (an unsigned flow; `true`/`false` refused); Version or IdVer is not 2; IdColl is not exactly 14 digits; Exer is not 4 digits; a date has a time zone; Per, Cle1 or Fonction is empty; a text is 'nc', '0' or '.' (the SEPA texts RefUniMdt and LibPrel too); a LigneDePiece has a second Tiers (one debtor per title); TitCpteDiff is `true`; the root or a Bordereau has an Id attribute; Recepteur, FinJur, MtCumulAnnuel, DteAdr or LibBanc is present. `pesgen validate --official-xsd DIR` says beside it what the DGFiP's XSD says of the same file.", "schemas/pes-ormc/pes-ormc.xsd, schemas/pes-titres/pes-titres.xsd (their comments); DGFiP XSD v5.17"),
    ("output", "xsd.bundle", "The file is valid against its format bundle's own XSD (format.yaml files[].xsd, in the bundle's folder: a finance package's import, e.g. corail.xsd); `pesgen validate` and `pesgen runs show` name it as the format's own XSD, and say whether the PES bordereau rules applied (only to an XSD declaring BlocBordereau).", "the bundle's XSD"),
    ("output", "xsd.dgfip", "With --official-xsd: the file is valid against the DGFiP PES V2 package (`pesgen acquit`: the acknowledgement against its PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd; a problem there exits 4).", "DGFiP PES V2 XSD v5.17"),
    ("output", "xml.pesgen / xml.bundle / xml.dgfip", "The file is well-formed XML, at the line named (the file as it is named once written, not the temporary file an export parses). Named by what read it: pesgen's XSD (xml.pesgen), a bundle's own (xml.bundle), the DGFiP package (xml.dgfip, with --official-xsd; a PES bundle without an XSD of its own is checked by it alone).", "XML 1.0"),
    ("output", "pes.triplet", "TypBord/TypPce/NatPce is in the grid of Annexe 2 (Recette): 06/15/01 for an ORMC; in a bordereau de titres (01) each TypPce with its own NatPce (a titre ordinaire 01/01: NatPce 01, 02, 03, 04, 05, 11 or 18; a titre correctif 02: 07, 08 or 09…), in an annulation (02) TypPce 02, 04, 06 or 14 with NatPce 06 (02 also 10), in an ordre de recette ordonnateur (03) 12 with NatPce 01, 02 or 11; the message says what the grid allows. A TypBord the grid has not (04, 05: the XSD lists them) is said once, at the bordereau's TypBord.", "DT v5.19 Annexes, Annexe 2 (a test reads the grid from the documentation's text and compares every triplet); PES_RecetteAller_codes TTypBordAller (04: « rejet du bordereau »)"),
    ("output", "pes.edition", "The ASAP Edition fits the piece: 03/06 only on TypPce 15, 01 on 01/01-04, 11, 18 or 10/01-02, 05 only on 01/01.", "DT v5.19 BlocPiece/Edition; Annexe 2"),
    ("output", "pes.nbr-pce", "NbrPce equals the number of Piece.", "DT v5.19 BlocBordereau/NbrPce"),
    ("output", "pes.mt-bord-ht", "MtBordHt equals the sum of the lines' MtHT.", "DT v5.19 BlocBordereau/MtBordHt; DT-AQ lists ERREUR_CUMUL_MONTANTS (a name only: its link to this rule is pesgen's reading)"),
    ("output", "pes.max-pieces", "At most 99 999 pieces per bordereau (pesgen splits the run).", "DT v5.19 NbrPce (Base_Num5)"),
    ("output", "pes.listing", "A refused file lists its first 1 000 schema violations and its first 1 000 bordereau problems, then says how many more it left out.", "pesgen"),
    ("output", "xml.doctype", "A PES file declares no DOCTYPE: a file with one is refused before it is parsed, with no other problem listed (the DOCTYPE is found in the bytes of its prolog, after comments and processing instructions, in whichever encoding it is written: UTF-16 with a byte order mark, UTF-7). No DTD and no entity is ever read, an external one (XXE) or a billion laughs, nor the network reached.", "pesgen (security); DT v5.19 PES_Aller has no DTD"),
    ("output", "pes.id-pce-unique", "IdPce is unique in the bordereau.", "pesgen's reading of DT-AQ's ERREUR_DOUBLON_PIECE (a name only, no description)"),
    ("output", "pes.num-dette-unique", "NumDette with Per is unique in the bordereau (one payment reference, one title).", "pesgen (DT v5.19 BlocPiece/NumDette, Per)"),
    ("output", "pes.id-ligne-unique", "IdLigne is unique in its piece.", "pesgen's reading of DT-AQ's ERREUR_DOUBLON_LIGNE (a name only, no description); DT v5.19 InfoLignePiece/IdLigne (for ORMC, the sub-article number)"),
    ("output", "pes.asap-date", "DteAsp (bordereau and piece) is not before DteBordEm.", "DT v5.19 BlocBordereau/DteAsp"),
    ("output", "pes.mt-prel", "MtPrel equals the line's MtHT, so a title's debits add up to its amount. The DT only says that the sum of a title's MtPrel is the article's debit amount in Hélios: this per-line equality is pesgen's (what it writes), stricter than the DT, so `pesgen validate` refuses another tool's file that debits part of a title.", "DT v5.19 InfoPrelevementSEPA/MtPrel (the sum); pesgen (per line)"),
    ("output", "pes.sepa-same", "The SEPA data are identical on every line of a title. The DT requires it of an ORMC title; pesgen holds a titre ordinaire (pes-titres) to it too, as it writes one mandate per title.", "DT v5.19 InfoPrelevementSEPA (« Pour un titre ORMC : les données de chaque ligne de ce titre doivent être identiques (hormis le montant) »); titres: pesgen"),
    ("output", "pes.single-debtor", "A title has a single debtor. The DT requires it of an ORMC title (and of a titre with Edition 01, 02 or 05); a titre ordinaire may be collective (IdLigne: « plusieurs débiteurs (titres collectifs) »), but pesgen writes one debtor per title and holds a file of titres to it too.", "DT v5.19 BlocPiece/IdPce (ORMC), BlocPiece/Edition; titres: pesgen"),
    ("output", "pes.civility", "A person (CatTiers 01) has a Civilite, never Mademoiselle: the title rule (same function) on the file, once per distinct InfoTiers of a piece, at its first one (line and XPath).", "DT v5.19 PES_RecetteAller, InfoTiers/Civilite"),
    ("output", "pes.birth-date", "A birth date (DteNaissance) or place (LieuNaissance) is a person's only (CatTiers 01): refused on another debtor, as the DT rejects the bordereau, once per distinct InfoTiers of a piece, at the element (line and XPath). Both XSDs take it on any CatTiers; pesgen writes a birth date for a person only (a payer kind of CatTiers 01), so this holds a file pesgen did not write.", "DT v5.19 PES_RecetteAller, InfoTiers/DteNaissance (« toute autre catégorie de tiers aboutira au rejet du bordereau »), LieuNaissance"),
    ("output", "pes.first-name", "A person (CatTiers 01) has a Prenom: the title rule on the file, as pes.civility.", "DT v5.19 PES_RecetteAller, InfoTiers/Prenom"),
    ("output", "pes.cat-nat-grid", "CatTiers and NatJur form a pair of the DGFiP grid (Annexe 3's numbers: see the mapping rule for its labels' conflict with the code list): the title rule on the file, as pes.civility.", "DT v5.19 Annexes, Annexe 3"),
    ("output", "pes.id-tiers", "IdTiers and NatIdTiers go together; the DGFiP's checks of the four kinds it checks: a SIRET (NatIdTiers 01) has 14 characters, a SIREN (02) 9, a FINESS (03) 9, a NIR (04) 15, counted as written (a SIRET with spaces is refused), and each but the FINESS a valid key (python-stdnum: Luhn for the SIRET and SIREN; for the NIR 97 minus its first 13 characters modulo 97, Corsica's 2A and 2B read as 19 and 18). The FINESS's key is not checked: no public description of it was found. The other kinds have the form the DT states: a TVA intracommunautaire (05) 4 to 18 characters, a Hors UE (06) at most 18, a TAHITI (07) 9, a RIDET (08) 9 or 10 digits, a FRWF (10) at most 18 starting with FRWF, an IREP (11) at most 80 starting with 5 digits, an NFP (12) 13 digits; an en cours d'immatriculation (09) has none. A NIR is refused whatever its key: the DT reserves it to hospitals' budgets (nomenclatures M21, M22), and pesgen's XSDs take no hospital's file (they refuse FinJur, which the DT makes mandatory in M21 and M22, and InfoAssure); its length and key are still said. The message of a NIR, an IREP or an NFP (kinds the DT reserves to natural persons) does not repeat the number. The title rule on the file, as pes.civility; pesgen itself writes only a SIRET or a SIREN (pes.siret).", "DT v5.19 PES_RecetteAller, InfoTiers/IdTiers (« Pour les seuls identifiants de type SIRET, SIREN, FINESS et NIR, des contrôles de validité sont effectués. La clé de l'identifiant doit être valide, et les longueurs possibles sont 9 pour le Siren et le finess géo, 14 pour le Siret et 15 pour le Nir, sinon, rejet du bordereau »; « Les longueurs possibles sont: entre 4 et 18 caractères pour TVA intracommunautaire, 9 caractères pour le TAHITI, entre 9 à 10 chiffres pour le RIDET, au maximum 18 caractères commençant par FRWF pour FRWF, au plus 18 caractères pour Hors UE, 13 chiffres pour le NFP, jusqu'à 80 caractères et commençant par 5 chiffres pour l'IREP, sinon rejet du bordereau »; « l'utilisation du n° de sécurité sociale est réservée au domaine hospitalier.et seulement en nomenclature M21 M22 sinon rejet du bordereau »), NatIdTiers; DomaineGlobalAller_blocscommuns, EnTetePES/FinJur (« Obligatoire si M21 ou M22 »); python-stdnum fr.nir (the NIR's key, after INSEE); DT-AQ lists ERREUR_SIRET (a name only: its link to this rule is pesgen's reading)"),
    ("output", "pes.cle2", "Cle2 is the key pesgen.keys.cle2 computes from the bordereau's Exer and the piece's Per and NumDette (modulo 23 over exercise (2) + Per + 00 + NumDette (13); when one of them is absent, not checked). Cle1 is not checked: its inputs depend on the mapping (payment_reference.cle1, nature_code, cle1_zero_remainder; see the choices below), so a file from another tool cannot be judged on it.", "DT v5.19 PES_RecetteAller, BlocPiece/Cle2; formula and worked example: notes pes-v2-recette.md §10.3"),
    ("output", "pes.num-dette-keys", "A piece with Cle2, Per and a NumDette whose value has more than 13 digits: its Cle2 is refused rather than checked (no known formula reads more than 13), as the input rule.", "pesgen; notes pes-v2-recette.md §10.3"),
    ("output", "pes.address", "CodRes 1 (non-resident) has a CodPays, CodRes 0 none or 100 (the DT's two rejections); pesgen also refuses a CodRes 1 CodPays that is not 3 digits (an INSEE country code: the DGFiP XSD takes 1 to 3), and CodRes 1 with CodPays 100, France's INSEE code (its own, stricter check: the DT does not name that pair): the title rule's residence check on the file, once per distinct CodRes/CodPays of a piece, at its first one (line and XPath). CP is 5 digits (99999 abroad) on every address by pesgen's XSD (xsd.pesgen); no rule refuses 00000, which the DGFiP documentation does not forbid.", "DT v5.19 DomaineGlobalAller_blocscommuns, Adresse/CodRes, CodPays (« Si CodRes=1 et CodPays absent = rejet du bordereau »; « obligatoirement non valorisée ou valorisée à 100 si CodRes est à 0, sinon rejet du bordereau »); CodRes 1 with 100: pesgen; notes pes-v2-recette.md §7"),
    ("output", "sepa.iban", "A debtor's IBAN (CpteBancaire) is valid for python-stdnum (checksum, country length), as when mapping the input (same memoised check); once per distinct IBAN of a piece, at its first one (line and XPath). Upper case: the XSD.", "DT v5.19 CpteBancaire/IBAN; Base_Texte34IBAN"),
    ("output", "sepa.bic", "A debtor's BIC is valid for python-stdnum (format, country), as sepa.iban.", "DT v5.19 CpteBancaire/BIC; Base_Texte11BIC"),
    ("output", "sepa.bic-abroad", "An IBAN abroad (as the input rule) has a BIC in its CpteBancaire; once per distinct IBAN of a piece, at its first one (line and XPath).", "DT v5.19 DomaineGlobalAller_blocscommuns, CpteBancaire/BIC"),
    ("output", "sepa.mandate", "DateSignMandat is not after DtePrel (the title rule's date check on the file); once per distinct SEPA data of a piece.", "pesgen (the DT v5.19 InfoPrelevementSEPA describes DateSignMandat and DtePrel but states no order between them)"),
    ("output", "sepa.debit-date", "DtePrel is not before the bordereau's DteBordEm (the input rule on the file); once per distinct SEPA data of a piece, at its DtePrel.", "pesgen's reading of DT v5.19 InfoPrelevementSEPA/DtePrel (date de règlement interbancaire)"),
    ("output", "layout.encoding", "Every line decodes in the layout's encoding.", "layout (the package's documentation)"),
    ("output", "layout.line-ending / layout.final-newline", "Every line ends with the layout's line ending (CRLF or LF), the last one too unless final_newline: false.", "layout"),
    ("output", "layout.header", "With header: true, the first line holds the column headers in order.", "layout"),
    ("output", "layout.record-type", "The record-type column holds a value of a declared record type.", "layout"),
    ("output", "layout.columns", "A CSV record has exactly its columns; a fixed-width record has exactly its width.", "layout"),
    ("output", "layout.quoting", "Values are quoted as the layout says (always, minimal, never); quotes are closed; no line break inside a value.", "layout"),
    ("output", "layout.required", "A required column is not empty.", "layout"),
    ("output", "layout.length", "A value fits the column's length (0: a reserved column that stays empty) and min_length. The layout problems say a value's length, and quote a value only when short and mostly digits (a number, a date) or in a column of allowed values or the header (a short code), else describe it (its length, its kinds of characters): a name, an IBAN of the file checked stays out of the message.", "layout"),
    ("output", "layout.type", "integer, decimal (separator, decimals) and date (format) columns hold such values; a sign only where the column says signed: true (a number with a sign in an unsigned column is said to have a sign, not to be no number); fixed-width padding is respected.", "layout"),
    ("output", "layout.forbidden", "No value holds a character the layout forbids (forbidden_characters, for the layout or a column; e.magnus: ';' and '\"', which its known integrations write unescaped).", "layout"),
    ("output", "layout.values", "A column with allowed values holds one of them.", "layout"),
    ("output", "layout.across", "Between the flat files of one bordereau, as format.yaml's across_files declares (each file valid against its layout first): every key a file's lines give (e.magnus: RefIdEcriture of a detail line or a joint debtor) is a key of the other file (IDEcriture of a piece), and, with sum and in_sum, each key's amounts agree in both (a piece's detail lines, MtHTaxe, sum to its imputations, MontantHT). Checked at export and on a bundle's expected files (check-format), those of each bordereau of a fixture of several.", "format.yaml (the package's documentation; e.magnus: reconstructed)"),
    ("output", "layout.group", "Across consecutive lines, as the layout's groups declare: the lines with the same key (e.magnus: a piece's IDEcriture, its detail lines' RefIdEcriture) follow each other; the first line of a group holds the `first` values, the others the `rest` (e.magnus: Multiple M, then S); a `number` column counts a group's lines from 1 (e.magnus: Ordre). A group seen again after another is said once, on its first line back.", "layout (the package's documentation; e.magnus: reconstructed)"),
    ("output", "layout.pattern", "A value matches the column's pattern.", "layout"),
    ("output", "layout.too-many", "Checking stops after 10 000 problems in one file: one more problem, at the line where it stopped, says the rest of the file was not checked. The command line lists a refusal's first 200 problems and counts the others, but shows this one (and pes.listing's, an XSD's and the CSV reader's 'listing stopped after …') after the count.", "pesgen"),
    ("store", "run.duplicate", "An invoice already in an active run is refused (naming the run, file and IdBord) until that run, or that bordereau of it, is cancelled; invoice numbers are compared by their key, like input.duplicate-invoice (case, surrounding spaces, Unicode look-alikes aside). When only some of the input's invoices are held, the message says to remove those from the input (listing them), not to cancel a run the trésorerie took.", "pesgen (nothing twice); DT-AQ lists ERREUR_DOUBLON_BORDEREAU (a name only: its link to this rule is pesgen's reading)"),
    ("store", "run.num-dette-taken", "A NumDette already held by an active title of another invoice of the collectivity (an earlier run) is refused, naming that invoice, run, file and IdBord, until that run, or that bordereau of it, is cancelled: with IdPost and Cle2 it is the payment reference a family pays with. Runs recorded before schema migration 3 kept no NumDette and are not checked.", "pesgen (nothing twice; DT v5.19 BlocPiece/NumDette)"),
    ("store", "run.left-out-freed", "An export with policies.already_exported: leave_out reads what active runs of its budget, exercise and format hold before its input, and leaves out each invoice one holds at the same amount (reported, recorded with the run: `runs find` says which run left it out and why, `regenerate` leaves it out again). When the run is committed, every invoice it left out so must still be held by an active run; one whose run or bordereau was cancelled meanwhile would be billed nowhere: the run is refused, naming each, nothing written, no number used.", "pesgen (nothing lost)"),
    ("store", "run.bordereau-numbers", "A run whose last bordereau would take an IdBord (the rôle number) past 9 999 999 (Base_Num7) is refused (exit 7; its dry run too), naming the sequence, nothing written, no number used, where the file name's template refused the number (exit 5, rule template) as if the format were broken.", "DT v5.19 BlocBordereau/IdBord (Base_Num7)"),
    ("store", "run.piece-numbers", "A format numbering its titres over the exercise (format.yaml numbering.pieces: per-exercise, pes-titres) takes their IdPce from the store's sequence of the SIRET, budget and exercise, continuing across bordereaux and runs (a titre number is unique over the exercise: ERREUR_DOUBLON_PIECE); a run whose last IdPce would pass 99 999 999 is refused, no number used.", "DT v5.19 BlocPiece/IdPce (« Numéro du titre de recette », Base_Num8), IdPceOrig; notes pes-v2-recette.md (scope UNCONFIRMED: the safe reading)"),
    ("store", "run.empty", "A run exports at least one title.", "DT v5.19 NbrPce ≥ 1"),
    ("store", "run.input-changed", "The input file is the same at the end of the export as when it was read (the run records it for regenerate).", "pesgen (nothing lost)"),
    ("store", "run.cancel-accepted", "A bordereau whose Hélios status (`pesgen acquit --record`) is accepted is not cancelled: its titles exist at the trésorerie, and exporting its invoices again would bill the families twice. `runs cancel` refuses (exit 7, nothing cancelled) naming each such bordereau with the date and the acquit file (a whole run: only its accepted bordereaux). Once the trésorerie has annulled the titles on its side (a bordereau d'annulation/réduction, made in Hélios, not by pesgen), `--annulled-by-tresorerie` confirms it: the confirmation is recorded in the reason, with each accepted bordereau and its acquit. A rejected bordereau, or one without acknowledgement recorded, is cancelled as before (the latter with a note to check that none came).", "pesgen (nothing twice)"),
    ("store", "run.cancel-payfip", "A run, or a bordereau of it, whose titles have PayFiP operations that moved money or may have (paid; paid in activation mode; a production or activation link pending, unknown or expired; an anomaly whose result was not a refusal or an abandon, with the amount PayFiP reported; money paid through a cancelled title that the trésorerie applied to one of them, `payfip anomalies resolve --applied`; not money it refunded, `--refunded`), each listed with its state, is cancelled only with --despite-payments: the payment stays attached to the cancelled title and the trésorerie must be told; each title cancelled paid gets a paid-cancelled anomaly, for support to record the trésorerie's answer (`payfip anomalies resolve --applied | --refunded`). An export of an invoice PayFiP shows paid through a cancelled title notes it in its summary (note payfip).", "pesgen (money: nothing billed twice silently)"),
    ("store", "run.reinstate-taken", "`runs reinstate` (a cancellation undone) is refused, nothing reinstated, when an invoice of the bordereaux to reinstate, or its NumDette, is held by an active run now (exported again since the cancellation, compared as the duplicate guard compares them): holding both would bill the families twice. Each such invoice is named with the run, file and IdBord holding it; cancel that run first if it should not have gone out.", "pesgen (nothing twice)"),
    ("store", "run.reinstate-rejected", "`runs reinstate` is refused for a bordereau whose Hélios status (`pesgen acquit --record`) is rejected: its titles do not exist at the trésorerie, so holding its invoices would keep them from being billed again. Named with the acquit file and line.", "pesgen (nothing lost)"),
    ("store", "run.reinstate-annulled", "`runs reinstate` is refused for a bordereau cancelled with `--annulled-by-tresorerie`: the trésorerie annulled its titles in Hélios, they no longer bill anyone.", "pesgen (nothing lost)"),
    ("store", "run.cancelled", "A cancelled run is regenerated only with --cancelled (its invoices may have been exported again since: sending both would bill them twice), and its files are then named CANCELLED-<name>; so are a cancelled bordereau's files, the run's others being written under their names.", "pesgen (nothing twice)"),
    ("store", "run.format-changed", "The format bundle's files are the same once the run is rendered and validated as before its templates were read (the run records them for regenerate).", "pesgen (nothing lost)"),
    ("store", "run.commit-unknown", "The state store failed as a run was committed (the connection lost before its answer came) and could not be read again: the run may be recorded; the error says so and names `pesgen runs show` to check and `pesgen regenerate` to write its files if it is (never \"nothing was recorded\").", "pesgen (nothing lost, nothing twice)"),
    ("store", "run.commit-failed", "The state store failed as a run was committed, and read again on a new connection the run is not there: the error says the store failed, that nothing was recorded, no number used, no file written, and that the export can be run again (its last line: nothing was recorded; a store the export created is removed). It never says 'may be recorded' when the store was read again.", "pesgen"),
    ("store", "run.publish", "A run is recorded before its files are renamed into place; if they cannot be (a file system error, Ctrl-C inside the commit call, or a commit whose answer was lost and that a new connection finds recorded), the error names the recorded run and `pesgen regenerate` writes them (its number is never given again); its last line says the run is recorded.", "pesgen (nothing lost, nothing twice)"),
    ("payfip", "payfip.numcli", "The PayFiP client number is exactly 6 digits.", "PayFiP (T1); notes payfip.md §6"),
    ("payfip", "payfip.exer", "exer is a 4-digit year: the exercise of the title paid (its run's, the rôle's Exer), unless the mapping sets payfip.exer; `payfip link` and `payfip tipi-url` note it on stderr when the exer sent is not the mapping's exercise (collectivity.exercise), or payfip.exer is not the title's exercise.", "PayFiP; notes payfip.md §1, §6, §12 (the meaning of exer is unconfirmed: docs/payfip.md, exer)"),
    ("payfip", "payfip.budget", "A PayFiP request (`payfip link`, `payfip tipi-url`) is made with the mapping of the title's budget: a title of a run of another budget (CodBud) than the mapping's is refused (exit 7) naming the title's run, its budget and exercise, and the mapping's budget; each budget has its régie, its own PayFiP client number.", "pesgen (money: a payment goes to the right régie); notes payfip.md §1 (numcli per contract)"),
    ("mapping", "format.todo", "No value or key of a bundle's format.yaml still holds the placeholder TODO that `pesgen new-format` writes (title, source...): each one left is named by file:line: key. A bundle whose status says it is finished (stable, reconstructed) with one left does not load (`pesgen formats` lists it BROKEN); a draft loads (preview, export while onboarding) but `pesgen check-format` refuses it (exit 3).", "pesgen (no silent fallback)"),
    ("mapping", "format.readme-status", "The first **Status:** line of a bundle's README.md says format.yaml's status (the one `pesgen formats` lists): `pesgen check-format` refuses a README saying draft for a stable bundle (exit 3), naming README.md:line and format.yaml:line.", "pesgen"),
    ("mapping", "format.typ-bord", "A bundle whose files go to Hélios (rules pes-ormc or pes-titres) sets defaults.typ_bord, the key of its IdBord sequence (per exercise and budget), and its fixture's files write that TypBord and no other (`pesgen check-format`, exit 3, naming format.yaml's line): a file saying one TypBord and numbered in another sequence repeats rôle numbers at Hélios. The keys under defaults are the ones pesgen reads (typ_bord, asap_editions, asap_edition_required, asap_edition_notes, options): another one is a format.schema problem naming its line, with the closest key.", "DT v5.19 BlocBordereau/IdBord"),
    ("mapping", "format.fixture-empty", "Every file of a bundle holds a record when its fixture is rendered: `pesgen check-format` warns of a file the fixture renders empty or skips (e.g. the joint debtors' file when no fixture invoice has one), naming format.yaml:line: files[i]: its XSD or layout checked nothing of it (the sample titles render it, unvalidated).", "pesgen"),
    ("mapping", "format.across", "Each across_files check of a format.yaml names files of the bundle that have a layout (by their template) and columns of those layouts, a summed column being an integer or decimal one (each problem named by format.yaml:line: across_files[i].key); else the bundle is invalid (exit 3).", "pesgen"),
    ("mapping", "format.file", "Every file a bundle's format.yaml names is there: the template in the bundle's folder, an XSD or layout in it or under schemas/ (each missing one named by format.yaml:line: files[i].key, with the bundle's closest file name); an XSD that does not load (its own line in the message) makes the bundle invalid (exit 3), as a layout that does not.", "pesgen"),
    ("mapping", "format.fixture-mapping", "A bundle's fixture/mapping.yaml exports with that bundle (output.format: its name): `pesgen check-format` refuses one naming another format, known or not (exit 3), naming fixture/mapping.yaml:line: output.format, before the mapping is opened with the other bundle.", "pesgen"),
    ("mapping", "format.dead-template", "Every template file of a bundle (a name ending in .j2, outside fixture/ and expected/, hidden files aside) is named by a files[] entry or included, imported or extended by a template that is: `pesgen check-format` warns of another one (exit 0), naming format.yaml:line: files. Read from the templates' syntax (jinja2.meta): when a template includes one by a name built while rendering ({% include kind ~ '.j2' %}), which ones are read cannot be told, and none is warned of.", "pesgen"),
    ("mapping", "format.unread-option", "Every option of format.yaml defaults.options is read by a template of the bundle (those files[] names and those they include, import or extend) or by a file name: `pesgen check-format` warns of another one (exit 0), naming format.yaml:line: defaults.options.<key>: a mapping setting it would change nothing. An option counts as read when its name is in a template as an attribute (doc.options.service, o.service) or a quoted string (doc.options['service']); a name built while rendering is not seen (its option is warned of).", "pesgen"),
    ("mapping", "format.expected-folder", "A bundle's expected/ holds the files its fixture renders (and its README.md) and nothing else that check-format would read: a folder in it is warned of (`pesgen check-format`, exit 0), as check-format compares nothing in it and `--regen` removes no folder; `--regen` removes a file of expected/ the fixture does not render and says so (`removed …/expected/X: the fixture renders no such file`). Hidden files and folders (a name starting with a dot: .gitkeep, .DS_Store) are neither compared nor removed.", "pesgen (nothing lost)"),
    ("payfip", "payfip.refdet", "refdet, built by the mapping's payfip.refdet rule, is 6 to 30 characters of [A-Z0-9]: upper case only, the safe side (lower case is unconfirmed).", "PayFiP (R3, recorded live); notes payfip.md §6"),
    ("payfip", "payfip.refdet-unique", "A refdet names one invoice: a PayFiP request (`payfip link`, `payfip tipi-url`) whose refdet another invoice of the collectivity (or of its PayFiP client) already has, through an operation made for it or an active title the mapping's payfip.refdet rule gives it to (FA-2026-00103 and FA-202600103 both give FA202600103 by alnum), is refused before anything is sent (exit 4), naming both invoices and the mapping's rule.", "pesgen (money: a payment is never taken for another invoice's); notes payfip.md §12 (injective, reversible)"),
    ("payfip", "payfip.montant", "The amount is an integer number of cents, at least 100 (1,00 EUR), at most 100 000,00 EUR (web service) or 9 999,99 EUR (TIPI URL).", "PayFiP (M1, M3, M5); maxima single-source"),
    ("payfip", "payfip.mel", "The payer's e-mail has one '@', no space, 6 to 80 characters, and no control or format character (C0, C1, DEL, a bidirectional mark, a zero-width character…: named by code point, the address shown escaped).", "PayFiP (A1, A2 recorded live); pesgen (no control character sent, nor shown raw)"),
    ("payfip", "payfip.objet", "objet is 1 to 100 characters of [A-Za-z0-9 ] (filter payfip_text), not only spaces.", "PayFiP; special characters break (notes payfip.md §6)"),
    ("payfip", "payfip.saisie", "saisie is T, X or W by web service; T, X or A by TIPI URL.", "PayFiP (S1); notes payfip.md §5"),
    ("payfip", "payfip.urlnotif / payfip.urlredirect / payfip.urlcl", "Return and notification URLs are absolute http(s) URLs of at most 250 characters: otherwise nothing is sent (exit 4), the problem naming the invoice and, for a URL the mapping gives (payfip.notify_url, payfip.return_url, or the return URL made beside its notify_url), the mapping line.", "PayFiP (N1, D1)"),
    ("payfip", "payfip.cancelled", "A cancelled title (its run, or its bordereau, cancelled: `runs cancel`) is no longer live for PayFiP: `payfip datamatrix` prints no Datamatrix for it (it skips its bordereau and says so on stderr, naming its invoices and the cancellation; a run whose every title is cancelled is refused, exit 7), `payfip link` makes no payment for it (a title cancelled while PayFiP made its operation: the operation is recorded, the link refused, exit 7), `payfip payments` shows it `cancelled` with nothing due (a payment it received stays shown), `payfip anomalies` shows its invoice cancelled, and a payment through its link is an anomaly (run-cancelled), beside any other mismatch of the result.", "pesgen (money: a family never pays a title the trésorerie will not see)"),
    ("payfip", "payfip.rejected", "A title of a bordereau the trésorerie rejected (its Hélios status, `pesgen acquit --record`), not cancelled yet, is not in Hélios: `payfip datamatrix` prints no Datamatrix for it (it skips its bordereau and says so on stderr, naming its invoices, the rejection and its acquit; a run with no title left that the trésorerie holds is refused, exit 7), and `payfip link` (one invoice or a batch: then nothing is sent for any) and `payfip tipi-url` refuse it before anything is sent (exit 7, as a paid or cancelled title; a rejection recorded while PayFiP made the operation: the operation is recorded, the link refused), naming the bordereau, the rejection's date and its acquit (file:line), and the next step: `pesgen acquit FILE` gives the command that cancels the bordereau, then the invoice is exported again; a rejection the trésorerie fixed on its side is recorded with `acquit --record --replace`, after which the title is paid as any. `pesgen acquit --record` recording (or finding recorded) such a rejection lists the PayFiP links still open on the bordereau's titles (production or activation, pending or unknown) among what is to check (reason payfip-open, beside the rejection: exit 9).", "pesgen (money: a family never pays a title the trésorerie does not hold)"),
    ("payfip", "payfip.answer", "Each field of a PayFiP answer pesgen reads has its documented format (idOp an identifier, resultrans one capital letter, montant integer cents, refdet 6 to 30 [A-Za-z0-9], numcli 6 digits, saisie one letter, exer up to 4 digits, dattrans DDMMYYYY, heurtrans HHMM, mel an address, objet [A-Za-z0-9 ]): otherwise the answer is refused (exit 8) naming the operation and the field, the value escaped and cut, and nothing of it is recorded (the operation stays open; reconcile asks again). numauto, whose format is not documented, is kept when printable and at most 64 characters; the payments CSV never lets a cell start as a formula.", "pesgen (correct or refused; CSV injection: OWASP); notes payfip.md §4, §7; docs/payfip.md"),
    ("payfip", "payfip.paid", "An invoice PayFiP has paid (status paid: a test payment, saisie T or X, is not one; however a later run writes its number, compared as the duplicate guard compares them) gets no new payment: `payfip link` and `payfip tipi-url` refuse it before anything is sent (exit 7), naming the payment recorded (amount, date, PayFiP operation; and, for money paid through a cancelled title that the trésorerie applied to this one, `anomalies resolve --applied`, that it was). There is no override: money to give back or to apply elsewhere is the trésorerie's to settle.", "pesgen (money: a family never pays twice)"),
    ("payfip", "payfip.unsettled", "An invoice whose cancelled title was paid through its PayFiP link after the cancellation (a `run-cancelled` anomaly of a production or activation operation, saisie W or X: a test link, saisie T, and a refusal collect nothing), the anomaly not resolved yet, gets no new payment until the trésorerie has said whether it applies that money to the title due or refunds it: `payfip link` (one invoice or a batch: then nothing is sent for any) and `payfip tipi-url` refuse it before anything is sent (exit 7; paid so while PayFiP made the operation: the operation is recorded, the link refused), naming the amount, the operation, the cancelled title (run, IdBord), the anomaly's number and the command that resolves it; `payfip datamatrix` leaves its title out, said on stderr in the same words; the export of the invoice again notes it (policy payfip). Resolving the anomaly (`pesgen payfip anomalies resolve ID --note TEXT`) lifts it. With `--applied` (the trésorerie applied the money to the title due, of the same amount) that title is recorded paid, and rule `payfip.paid` refuses it from then on; with `--refunded` (or `--note` alone) nothing is paid and the title due gets its payment again.", "pesgen (money: a family never pays twice); docs/payfip.md anomaly table (run-cancelled)"),
    ("payfip", "payfip.datamatrix", "Every title of the run can be laid out in the Datamatrix layout (IdPost 6 digits, the code émetteur 6 digits, the code établissement and the first two characters of CodProdLoc up to 3 digits or 2 letters, Per one digit, NumDette up to 15 digits, Cle2 a key letter, the amount at most 8 digits of cents); its file is present. Otherwise `payfip datamatrix` writes nothing (exit 6), naming each title that does not fit (its invoice) or the file missing.", "pesgen; layout UNCONFIRMED (notes pes-v2-recette.md §13)"),
    ("acquit", "acquit.xml", "The acknowledgement is well-formed XML (its line named). A file that is not XML, is missing, or whose root is not a PES_ACQUIT of version 2 (namespace http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2) is refused as a usage error (exit 2), saying what it is instead: a PES_Aller (a file sent), a PES_ACQUIT of version 1 (PES_V2_Acquit_Autonome.xsd), another namespace.", "DT v5.19 Acquittement; XSD v5.17 PES_V2_Acquit_Autonome_V2.xsd"),
    ("acquit", "acquit.encoding", "The acknowledgement is in the encoding XML reads it in: a file that declares no encoding (no XML declaration, or one without encoding=) is read as UTF-8, as one declaring UTF-8; one of them holding a byte that is not UTF-8 (a Latin-1 file from the guichet whose first line, <?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>, was removed) is refused (exit 4), naming the first such byte and its line and saying to take the file again as the guichet wrote it, instead of the parser's \"Invalid bytes in character encoding\" (acquit.xml). pesgen does not guess an encoding.", "XML 1.0 §4.3.3 (no encoding declaration: UTF-8); the guichet XML writes ISO-8859-1, declared"),
    ("acquit", "acquit.id-coll", "An EnTetePES/IdColl given empty (V=\"\", which its type Base_Num14_Light allows) is read as not given: whose acquit it is is unknown, so no bordereau of it is tied to a run (each says `the acquit's IdColl is empty (line N): … not tied`), nothing is recorded, and `pesgen acquit` exits 10 (9 if something is rejected); `--record --run RUN` is refused (exit 7), the check it rests on (the run is of the acquit's collectivity) being impossible.", "XSD v5.17 Class_EntetePES.xsd (IdColl: Base_Num14_Light, « (0 à N) caractères numériques »); pesgen (correct or refused)"),
    ("acquit", "acquit.doctype", "The acknowledgement declares no DOCTYPE: one that does is refused before anything of it is read (found in the bytes of its prolog, as for `xml.doctype`; no DTD, external entity or network is ever fetched: an XXE attempt reads nothing).", "pesgen (security); the PES_ACQUIT has no DTD"),
    ("acquit", "acquit.structure", "Without --official-xsd, what pesgen reads is there, each problem at its line and XPath: EnTetePES with IdColl (at most 14 digits, or empty: read as not given, acquit.id-coll) and CodBud, at least one ACQUIT/ElementACQUIT, each with a DomaineAck of the DGFiP list and an EtatAck 1/0 (true/false: xs:boolean); NumBord (at most 7 digits), ExerciceBord (4), NumPiece and NumLigne (13) are numbers, or empty (V=\"\", which their *_Light types allow: read as not given, never tied, each named at its line; docs/state.md, Identifiers left empty); EnTetePES's DteStr, when given, is a date (xs:date: YYYY-MM-DD, a time zone allowed). A NumAnoAck outside the DGFiP list is shown as such, not refused.", "DT v5.19 Acquittement_blocs, Acquittement_codes, DomaineGlobalAller_blocscommuns (TEnTetePES)"),
    ("acquit", "acquit.contradicts", "`pesgen acquit --record`: the file's answer for a bordereau (accepted or rejected, its errors) is the one recorded as its Hélios status, or that bordereau had none. A different answer (rejected, then accepted after a fix on the trésorerie's side; two files contradicting) refuses the whole file, nothing recorded (exit 7), each bordereau named with what is recorded and where it came from, unless --replace: the new answer is then its status, the one it replaces kept in its history (`runs show`).", "pesgen (nothing lost, nothing twice)"),
    ("acquit", "acquit.domain", "`pesgen acquit`: a bordereau element (NumBord, ExerciceBord) is tied to the PES run holding that IdBord for the EnTetePES's IdColl and CodBud only if its DomaineAck fits the run's TypBord: 7 (Rôle) an ORMC rôle (TypBord 06), 6 (Recette) another recette bordereau (titres 01, 02, 03), which number apart; and only if the acquit's NomFic, when it begins with a PES file type the DGFiP documents (PESORMC_, PESALR1_), names a file of the kind the run wrote. A run one of them contradicts is not tied (shown as `possibly run …: NOT tied`, JSON `set_aside` with `why`) and `--record` records nothing for it, saying why: the why, in the report, `--record`'s `not recorded` line and the JSON, ends with `(rule acquit.domain)`; the NomFic is only ever used to refuse (that it names the file acknowledged is unconfirmed). The domain-TypBord correspondence is pesgen's reading of the DT's labels, unconfirmed by a real acquit of an ORMC (docs/state.md): where the trésorerie's practice differs, support ties the acquit by hand with `--record --run RUN` (`acquit.run`).", "DT v5.19 Acquittement_codes (TDomaineAck), PES_RecetteAller_blocs (IdBord: numéro de rôle for an ORMC; unique per exercise and TypBord); XSD v5.17 Class_Enveloppe.xsd (TypFic PESALR1, PESORMC)"),
    ("acquit", "acquit.run", "`pesgen acquit --record --run RUN [--bordereau IDBORD]`: support names the run the acquit answers, and its elements are tied to it only. A recette element (DomaineAck 6 or 7) is tied to the run's bordereau of its NumBord and ExerciceBord whatever its domain says of the run's TypBord, and said so (`tied by --run: DomaineAck 6 (Recette) for a rôle (TypBord 06)`); a NumBord the run does not hold (or not the one --bordereau names), another exercise or none, a NomFic of another PES file type, a domain that is not a recette are still not tied, nor an element whose DomaineAck does not fit the run's TypBord while another run of the store holding that number (same exercise, IdColl, CodBud) has a TypBord it fits (pesgen ties it to that run by itself: `not tied: run B (TypBord 01) holds IdBord 1 and its DomaineAck 6 fits it: record it without --run`). A whole-file rejection (DomaineAck 0-2, no NumBord) is recorded as the rejection of the bordereau of the run's one file, or of the bordereau --bordereau names: for a run of several files without it, the file is refused (exit 2, at the element's line, naming the run's files), nothing recorded. A cancelled run or `--bordereau`, a finance package's run, a run of another IdColl or CodBud than the acquit's is refused (exit 7), nothing recorded. Without --bordereau, an element of a bordereau cancelled on its own is recorded as without --run (an acceptance said `accepted, but cancelled in pesgen …: tell the trésorerie`). `runs list` and `runs show` say `(tied by --run)` or `(whole file)` where the recorded DomaineAck does not fit the bordereau's TypBord or is a file domain.", "pesgen (correct or refused: the user names what pesgen will not guess)"),
    ("acquit", "acquit.bordereau-twice", "`pesgen acquit --record`: the file answers each bordereau of a run once; one answered by two ElementACQUIT refuses the file, nothing recorded (exit 4), naming their lines.", "pesgen (one answer per bordereau and file)"),
    ("template", "template / template.syntax", "A template compiles and renders (sandboxed, strict undefined, bounded); errors name the template file and line, a macro calling itself without end (RecursionError), an arithmetic overflow, or a call into a template running past its time limit (60 s) included, and a string of an expression the output encoding cannot write (`template … produced 'Œ', which ISO-8859-1 cannot encode`); an unknown filter or test is named with the closest one pesgen offers (did you mean), in a template, a file name or a mapping expression.", "pesgen"),
    ("template", "template.encoding", "A template's own text (outside {{ }} and {% %}, in the templates it imports or includes too) holds only characters the output encoding writes: checked once when the export is set up (check-format, check-mapping, preview, export), naming the template line, whatever branch the titles take. A string of an expression the encoding cannot write is refused when rendered (the sample titles of check-mapping and check-format included), naming the line of the template that holds it, as a rendering error: rule template.", "pesgen"),
]

UNCONFIRMED = """## Choices where the DGFiP documentation is silent

| topic | pesgen's choice | setting |
|---|---|---|
| `Cle1` inputs | The DT lists "code collectivité + code nature + 2 derniers chiffres de l'exercice + période + numéro de dette" and refers to an annex (ANNEXE_TECHNIQUE_PES_SEPA_ORMC) not found in the material pesgen was built from. pesgen computes a modulo-11 key (weights 2..7 from the right) over CodCol + `nature_code` (2 digits, default `00`) + exercise (2) + Per + NumDette padded to 13 digits (a NumDette of more is refused: `pes.num-dette-keys`); 11 − remainder, 10 → 1, a zero remainder gives `cle1_zero_remainder` (default `0`, as the legacy ROLMRE format). `none` leaves Cle1 out (it is optional in the XSD). Since it depends on these settings, `pesgen validate` does not check a file's Cle1. | `payment_reference.cle1`, `nature_code`, `cle1_zero_remainder` |
| `Per` (période) | One digit completing NumDette; its meaning is unconfirmed. Default `1`. | `payment_reference.period` |
| `Cle2` | Modulo 23 over exercise (2) + Per + `00` + NumDette (13), letter of `ABCDEFGHJKLMNPQRSTUVWXY` (legacy rôle format); `pesgen validate` checks it in any file (`pes.cle2`), but never Cle1. NumDette is a Base_Num15, but the formula is known over 13 digits only: rather than extend it to 14 or 15 digits (a key Hélios may compute otherwise, on the reference a family pays with), pesgen refuses a NumDette whose value has more than 13 digits (`pes.num-dette-keys`). | — |
| Tiers on every line | Whether Hélios wants the debtor on every LigneDePiece or the first only is unconfirmed; pesgen repeats it by default. | `output.tiers_on` |
| Civility list | The exact list is unconfirmed ("liste arrêtée"); pesgen sends what `codes.civility` maps to (the examples use `M` / `MME`) and refuses Mademoiselle. Without the table it sends each civility as exported, refusing nothing but Mademoiselle (the PES bundles list no `values` for debtor.civility: a finance package's bundle may, Corail's `Mr`, `Mme`, and its list is then held to), and the run summary lists the values sent so, once for the run (note `civility_table`). | `codes.civility` |
| Encoding | ISO-8859-1; UTF-8 can be chosen. The DGFiP documentation read says nothing of the encoding, and which one the DGFiP prefers is unconfirmed: the only real PES file in the reference material is a vendor's (ATOS, a Dépense file), in UTF-8; Noethysweb writes ISO-8859-1. | `output.encoding` |
| `TitCpteDiff` | "1 si titulaire du compte bancaire est différent du débiteur": pesgen writes `TitCpteDiff 1` (ORMC, titres; `O` in e.magnus column 80) when the words of the holder as exported (case, accents and punctuation aside, a letter outside ASCII read as its transliteration: `Sæther` is `SAETHER`; in any order, before a length policy cuts it) are not those of the debtor's Nom, with or without ComplNom and Prenom. A holder pesgen fills from the debtor (left empty) is the debtor. A joint holder ("M OU MME DUPONT") counts as another holder. The JVS Millésime layout (reconstructed) carries no TitCpteDiff. | `bindings.payment.holder` |
| Addresses in France | CodRes 0 and a 5-digit CP for the countries FR and the overseas départements GP, MQ, GF, RE, YT (exported with their own ISO codes), and for any country `codes.countries` gives 100, the INSEE code of France (an export's `France`: pesgen refuses a non-resident with CodPays 100, its own check, `pes.address`); any other country is abroad (policy `foreign_address`, `codes.countries`), where the postal code may be empty (CP 99999, Ville alone). | `bindings.address.country` |
| Nature, Fonction | Written as `codes.activities` gives them, held to the XSD's patterns only: pesgen checks neither against the budget's instruction or nomenclature. The DT says of Fonction (InfoLignePiece): « Zone concernant seulement les collectivités utilisant les instructions M14, M52, M57 et M71. Si valorisation sur des nomenclatures autres, rejet du bordereau. » (a Fonction given by a collectivity under another instruction rejects the bordereau); and of Nature: « Pour les titres ORMC : proposition de valorisation à 588. » Confirm both with the trésorerie when onboarding (docs/onboarding.md, questions for the trésorerie). | `codes.activities` |
| One file per bordereau | A run larger than `max_pieces_per_bordereau` becomes several files, each its own rôle with the next IdBord. | `output.max_pieces_per_bordereau` |
| Titre numbers (IdPce of titres ordinaires) | The DT defines IdPce as « Numéro du titre de recette », a cancellation names the titre by IdPceOrig and its exercise only, and the acknowledgement has ERREUR_DOUBLON_PIECE; the scope of a titre number's uniqueness is not stated (notes pes-v2-recette.md: UNCONFIRMED). pesgen takes the safe reading: one sequence per SIRET, budget and exercise, whatever the TypBord, continuing across bordereaux and runs in the state store (docs/state.md, Numbering; `numbering set-start --start-titre`). An ORMC rôle's IdPce is its article number, 1…n in each bordereau. | format.yaml `numbering.pieces` (`per-exercise`: pes-titres; `per-bordereau`: the default) |
"""


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    if "allOf" in node or "$ref" in node:
        return "binding"
    kind = node.get("type", "object")
    if isinstance(kind, list):  # e.g. policies: an object, or empty (null)
        return " or ".join("empty" if k == "null" else k for k in kind)
    return kind if isinstance(kind, str) else "value"


def _is_object(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind)


def _walk(node: dict[str, Any], path: str, required: set[str], rows: list[str]) -> None:
    for key, child in (node.get("properties") or {}).items():
        dotted = f"{path}.{key}" if path else key
        req = "yes" if key in required else ""
        desc = child.get("description", "").replace("|", "\\|").replace("\n", " ")
        extra = []
        if "pattern" in child:
            extra.append(f"pattern `{child['pattern']}`")
        if "maxLength" in child:
            extra.append(f"max {child['maxLength']} characters")
        if "minimum" in child or "maximum" in child:
            extra.append(f"{child.get('minimum', '')}…{child.get('maximum', '')}")
        text = desc + (f" ({'; '.join(extra)})" if extra else "")
        rows.append(f"| `{dotted}` | {_type(child)} | {req} | {text} |")
        if _is_object(child) and "properties" in child:
            _walk(child, dotted, set(child.get("required", [])), rows)
        elif _is_object(child) and isinstance(child.get("additionalProperties"), dict):
            sub = child["additionalProperties"]
            if "properties" in sub:
                _walk(sub, f"{dotted}.<key>", set(sub.get("required", [])), rows)


def mapping_reference() -> str:
    schema = load_schema("mapping.schema.json")
    rows = ["| key | type | required | meaning |", "|---|---|---|---|"]
    _walk(schema, "", set(schema.get("required", [])), rows)
    binding = schema["$defs"]["binding"]["description"]
    return (
        "# Mapping reference\n\n"
        "Generated from `schemas/mapping.schema.json` by `python -m pesgen._docgen`; "
        "do not edit by hand.\n\n"
        f"{schema['description']} Every mapping starts with `pesgen_mapping: 1`.\n\n"
        f"**Bindings.** {binding} A path is a dotted path into the JSON invoice "
        "(`payer.address.street`, `lines[0].amount`) or a CSV column name. An expression "
        "is a sandboxed Jinja expression over `invoice` (the invoice record), `line` (in "
        "`bindings.line`) and `collectivity`; pesgen's filters (`digits`, `amount`, …) are "
        "available, and a missing record key, or a JSON `null`, yields nothing (then the "
        "field counts as absent; inside `~` it adds nothing, never the word 'None'; "
        "`| default(...)` replaces it). A key read of a value that is no object (a list, "
        "a text, a number: `payer.name` or `invoice.payer.name` where the invoice's payer "
        "is `[\"x\"]`), or an index read of one that is no list, is not read as missing: the "
        "invoice is refused by one `input.type` problem at that value's JSON path, naming "
        "the bindings that read through it. A None made otherwise (a code table's `.get()` of a "
        "key it lacks, a JSON `null` read from a list, a variable holding `none`) is refused "
        "where it would be written as text (`~`, `%`, `str.format`, `join`, the filters that "
        "make text such as `upper`): give it a default (`| default('', true)`, `.get(key, "
        "default)`). Not checked: the literal `none` written in the expression itself "
        "(`'X' ~ none`, joined when the expression is compiled, as Jinja does), and a list "
        "or a dict made text whole (`[x] ~ ''` writes `[None]`). In "
        "expressions, a record key wins over a method of the same name. The sandbox's "
        "refusals are errors naming the binding, never an empty field: a name starting "
        "with `_` (`invoice.__class__`, and a format string's fields, "
        "`'{0.__class__}'.format(x)`, refused when the mapping is loaded), an attribute "
        "the sandbox refuses reached otherwise (`x | attr('__class__')`, a format string "
        "built by `~`: a `mapping.expr` problem naming the record), a result over its "
        "bounds (a width or a count making more than 100 000 characters plus ten times "
        "what it is made from, or more than 4 Mi characters whatever it is made from, `~` "
        "included; docs/onboarding.md), and an expression nested too deeply to be "
        "compiled (some seventy parentheses within each other).\n\n"
        "**YAML.** Safe loading only; keys keep their line numbers for error messages; "
        "duplicate keys are errors; `01234`, `NO`, `2026-01-31` and `1.5` stay strings "
        "(only `true`/`false`, `null` and plain decimal integers are typed), so codes keep "
        "their zeros.\n\n"
        + "\n".join(rows) + "\n"
    )


def rules_reference() -> str:
    lines = [
        "# Rules checked",
        "",
        "Generated by `python -m pesgen._docgen` from `pesgen/rules.py` and "
        "`pesgen/_docgen.py`; do not edit by hand. Every problem pesgen reports carries "
        "one of these rule ids. Sources: DT = DGFiP *Dossier technique PES V2* v5.19 "
        "(pages named), DT-AQ = its list of acknowledgement codes (Acquittement_codes: "
        "names only, without a description, so a rule's link to one is pesgen's reading), "
        "XSD = DGFiP PES V2 schemas v5.17; the facts are summarised in "
        "`shared/reference/notes/pes-v2-recette.md`. A source that says \"pesgen\" is "
        "pesgen's own rule or reading, not the DT's.",
        "",
        "A rule that fails refuses the whole export: nothing is written and every problem "
        "is listed with the input record, the mapping file:line:key (where a binding or a "
        "code table is the cause) and the rule.",
        "",
        "The PES fields named below, briefly: IdBord, the bordereau's number (for an ORMC "
        "rôle, the rôle number); IdPce, a title's number in it (a rôle's article); "
        "NumDette, the debt number, which with Per, Cle1 and Cle2 makes the payment "
        "reference; CatTiers and NatJur, the debtor's category and legal nature; "
        "DteBordEm, the bordereau's date; DtePrel, a direct debit's; DteAsp, the ASAP's "
        "(the bill the debtor receives). PayFiP's refdet, numcli and saisie (the debt's "
        "reference, the régie's client number, the mode): docs/payfip.md.",
        "",
        "## On each title (canonical model), `pesgen/rules.py`",
        "",
        "| rule | what is checked | source |",
        "|---|---|---|",
    ]
    for r in RULES:
        lines.append(f"| `{r.id}` | {r.summary} | {r.source} |")
    for stage, title in (("mapping", "When the mapping is loaded"),
                         ("input", "While mapping the input (`pesgen/build.py`, `sources.py`)"),
                         ("output", "On the rendered file (`pesgen/validate.py`, "
                                    "`pesgen/layout.py`)"),
                         ("store", "In the state store (`pesgen/runs.py`)"),
                         ("payfip", "Before anything is sent to PayFiP (`pesgen/payfip/`)"),
                         ("acquit", "On the trésorerie's acknowledgement (`pesgen acquit`, "
                                    "`pesgen/acquit.py`)"),
                         ("template", "Templates (`pesgen/render.py`)")):
        lines += ["", f"## {title}", "", "| rule | what is checked | source |", "|---|---|---|"]
        for s, rid, what, source in OTHER_RULES:
            if s == stage:
                ids = " / ".join(f"`{x.strip()}`" for x in rid.split("/"))
                lines.append(f"| {ids} | {what} | {source} |")
    lines += ["", UNCONFIRMED]
    return "\n".join(lines)


def template_model_reference() -> str:
    """docs/template-model.md: every public field of the model classes a template reads,
    from ``model.TEMPLATE_MODEL`` (a field without its line there is an error)."""
    import typing

    from .model import TEMPLATE_MODEL, public_names

    lines = [
        "# Template model reference",
        "",
        "Generated from `pesgen/model.py` (`TEMPLATE_MODEL`) by `python -m pesgen._docgen`; "
        "do not edit by hand.",
        "",
        "A template never sees the export, only these objects: `doc` in `head(doc)`, "
        "`piece(t, doc)` and `tail(doc)`, and `t`, one title, in `piece`. Text fields are "
        "already normalised by the mapping's policies and limited by format.yaml "
        "`fields` (its `max` and `charset`; the civility, to its `values` when it lists "
        "them); amounts are `Decimal` and dates `date` (write them with the filters: "
        "`amount`, `isodate`…). A field that is \"or nothing\" is None when absent: guard "
        "it (`{% if t.object %}…{% endif %}`), since a template never writes the word "
        "None. Reading a name a class lacks is a template error naming the template line, "
        "the closest field and the fields the class has (`'pesgen.model.Collectivity "
        "object' has no attribute 'nom': did you mean 'name'? (Collectivity fields: "
        "budget_label, cod_bud, …)`).",
        "",
    ]
    problems = []
    for cls, where, described in TEMPLATE_MODEL:
        names = public_names(cls)
        problems += [f"{cls.__name__}.{n}: no description in model.TEMPLATE_MODEL"
                     for n in names if n not in described]
        problems += [f"{cls.__name__}.{n}: described in model.TEMPLATE_MODEL, but no field"
                     for n in described if n not in names]
        hints = typing.get_type_hints(cls)
        lines += [f"## `{where}`: {cls.__name__}", "",
                  "| field | type | meaning |", "|---|---|---|"]
        for name in names:
            if name in hints:
                kind = hints[name]
            else:  # a property: its return type
                kind = typing.get_type_hints(getattr(cls, name).fget).get("return", "")
            shown = getattr(kind, "__name__", None) if not isinstance(kind, str) and \
                type(kind).__name__ == "type" else str(kind).replace("typing.", "")
            shown = str(shown).replace("pesgen.model.", "").replace("datetime.", "") \
                .replace("decimal.", "").replace("|", "\\|")
            meaning = described.get(name, "").replace("|", "\\|")
            lines.append(f"| `{name}` | {shown} | {meaning} |")
        lines.append("")
    if problems:
        raise SystemExit("pesgen/model.py: " + "; ".join(problems))
    return "\n".join(lines)


# The checks a recorded run's mapping fails that are let through when the run is rebuilt
# outside mapping.RENDERS_NOTHING (which mapping._refused waives): (rule, which of its
# problems, why the rendering is the same, the code that waives it: module.qualname, its
# source naming the rule; tests/test_docs.py holds each to it)
WAIVED_ELSEWHERE: list[tuple[str, str, str, str]] = [
    ("mapping.schema", "on `collectivity.sepa_creditor_id` (upper case, no spaces)",
     "the ICS is written as it is", "mapping._renders_nothing"),
    ("mapping.schema", "on a `codes.activities` nature or operation, or a `codes.countries` "
     "code, of zeros only", "it is written as it is (e.magnus' Article took one)",
     "mapping._renders_nothing"),
    ("input.column", "(a CSV binding of a column the file lacks)",
     "it read nothing before the check, as it does still", "build.Builder.check_columns"),
    ("mapping.format", "on `output.encoding` against a layout's encoding",
     "it decides how the layout check reads the file, and a rebuild runs no output check "
     "(the sha256 stands for it)", "export.Exporter.__init__"),
]


def waivers_table() -> str:
    """docs/state.md, "A run recorded before a check": the checks that change nothing of
    what is rendered, from ``mapping.RENDERS_NOTHING`` and ``WAIVED_ELSEWHERE``."""
    from .mapping import RENDERS_NOTHING

    lines = ["| rule | why the rendering is the same | let through by |", "|---|---|---|"]
    for rule, why in RENDERS_NOTHING.items():
        lines.append(f"| `{rule}` | {why.replace('|', chr(92) + '|')} | "
                     "`mapping.RENDERS_NOTHING` |")
    for rule, which, why, where in WAIVED_ELSEWHERE:
        lines.append(f"| `{rule}` {which} | {why.replace('|', chr(92) + '|')} | "
                     f"`{where}` |")
    return "\n".join(lines) + "\n"


PAGES = {"mapping-reference.md": mapping_reference, "rules.md": rules_reference,
         "template-model.md": template_model_reference}

# (page, section name): its text, between the page's markers
# <!-- generated: NAME (python -m pesgen._docgen; do not edit by hand) --> and
# <!-- end generated: NAME -->, each on a line of its own
SECTIONS = {("state.md", "waivers"): waivers_table}


def _begin(name: str) -> str:
    return f"<!-- generated: {name} (python -m pesgen._docgen; do not edit by hand) -->\n"


def _end(name: str) -> str:
    return f"<!-- end generated: {name} -->\n"


def with_section(page: str, text: str, name: str, make: Any) -> str:
    """``text`` with its section ``name`` made again by ``make``; SystemExit naming the
    page when its markers are not there once each, in order."""
    begin, end = _begin(name), _end(name)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise SystemExit(f"docs/{page}: the markers of section {name} are not there once "
                         f"each, in order: {begin.strip()} … {end.strip()}")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return head + begin + make() + end + tail


def main(argv: list[str]) -> int:
    stale = []
    made = {name: make() for name, make in PAGES.items()}
    for (name, section), make in SECTIONS.items():
        path = DOCS / name
        made[name] = with_section(name, made.get(name) or path.read_text(encoding="utf-8"),
                                  section, make)
    for name, text in made.items():
        path = DOCS / name
        if "--check" in argv:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            write_file(path, text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m pesgen._docgen", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
