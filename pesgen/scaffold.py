# ruff: noqa: E501  (the scaffolds below are file contents, their lines are theirs)
"""Onboarding scaffolds: a new format bundle, a new mapping. Files only, no code.

``new_format`` writes a working draft bundle (format.yaml, a template with the three
macros, a layout or an XSD that the template's output satisfies, fixture/ and
expected/ READMEs) that the technician then reshapes from the publisher's
documentation. ``new_mapping`` writes a commented mapping for a format: every value
the collectivity must give is ``mapping.TODO_MARKER``, which loading a mapping refuses
(rule mapping.todo), each one named by file:line: key, until it is filled.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
import textwrap
from pathlib import Path

from .atomic import write_folder
from .colnames import USUAL, binding_of, normalise
from .errors import MappingError, PesgenError, UsageError
from .formats import Format
from .mapping import Mapping, load_mapping
from .peek import MAX_KEYS, ExportShape

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")
KINDS = ("xml", "csv", "fixed")


def formats_dir_arg(parent: Path) -> str:
    """``parent`` as ``--formats-dir`` takes it, from the folder new-format ran in (the
    one the README's and the command's next steps are run from)."""
    return shlex.quote(Path(parent).as_posix())


def next_steps(name: str, parent: Path) -> list[str]:
    """The commands that go on from a new bundle, as its README gives them: run from the
    folder ``pesgen new-format`` ran in, with ``--formats-dir`` the ``--dir`` it was
    given (``..`` would work from inside the bundle only)."""
    arg = formats_dir_arg(parent)
    return [f"pesgen formats --formats-dir {arg}",
            f"pesgen check-format {name} --formats-dir {arg} --regen"]


def new_format(name: str, kind: str, parent: Path) -> Path:
    """Create ``parent/name/`` as a draft bundle; refuse to touch an existing folder."""
    if not _NAME.match(name):
        raise UsageError(f"format name '{name}' must be lower-case letters, digits and '-' "
                         "(2 to 41 characters), e.g. ciril-civil-finance")
    if kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}")
    folder = Path(parent) / name
    if folder.exists():
        raise UsageError(f"{folder} already exists; pesgen never overwrites a bundle")
    ext = {"xml": "xml", "csv": "csv", "fixed": "txt"}[kind]
    template = f"{name}.{ext}.j2"
    check = f"{name}.xsd" if kind == "xml" else "layout.yaml"
    files = {
        "format.yaml": _FORMAT_YAML.format(name=name, kind=kind, template=template, ext=ext,
                                           check_key="xsd" if kind == "xml" else "layout",
                                           check=check,
                                           newline="LF" if kind == "xml" else "CRLF"),
        template: {"xml": _XML_TEMPLATE, "csv": _CSV_TEMPLATE, "fixed": _FIXED_TEMPLATE}[kind]
        .replace("@NAME@", name),
        check: {"xml": _XSD, "csv": _CSV_LAYOUT, "fixed": _FIXED_LAYOUT}[kind]
        .replace("@NAME@", name),
        "README.md": _README.replace("@NAME@", name).replace("@DIR@", formats_dir_arg(parent)),
        "fixture/README.md": _FIXTURE_README.replace("@NAME@", name).replace(
            "@DIR@", formats_dir_arg(parent)),
        "expected/README.md": _EXPECTED_README.replace("@NAME@", name).replace(
            "@DIR@", formats_dir_arg(parent)),
    }
    return write_folder(folder, files)


def new_mapping(collectivity: str, fmt: Format, shape: ExportShape | None = None,
                formats_args: str = "") -> str:
    """A commented mapping skeleton for ``fmt``: a binding left commented out that a
    file of the format requires (``required_bindings``) is uncommented, its TODO to fill
    like the others, saying which column requires it. Given the ``shape`` of the
    school's export (``peek``), its input section says what was read, and a binding
    whose column (key) alone fits by the table of usual names (``colnames``) is
    prefilled with a comment ``# from column "X": check``, but one the format writes in
    none of its files (``unwritten_bindings``), which stays commented out, saying so
    (bound, check-mapping would warn of it); so does the address's street or city when
    no template writes it (``coverage.WRITTEN_ONLY``: a mapping may leave them out then).
    ``formats_args`` (`` --formats-dir DIR``, as
    new-mapping was given it) goes into the commands its head says to run."""
    lines = _skeleton(collectivity, fmt, formats_args)
    # the address's street and city (coverage.WRITTEN_ONLY): bound only when a template
    # writes them, taken as optional bindings to find out, then written as they were
    written_only = {at: line for at, line in enumerate(lines)
                    if line in ("    street: TODO", "    city: TODO")}
    for at, line in written_only.items():
        lines[at] = f"    # {line[4:]}"
    for at, why in required_bindings(lines, fmt).items():
        lines[at] = written_only.get(at) or _todo_line(lines[at], f"required: {why}")
    unwritten = unwritten_bindings(lines, fmt)
    for at, why in unwritten.items():
        lines[at] = _todo_line(lines[at], why, commented=True)
    for at, line in written_only.items():
        if at not in unwritten:
            lines[at] = line
    if shape is not None:
        from .coverage import RULES_READ

        lines = _prefilled(lines, shape, {name for at in unwritten
                                          if (name := _binding_name(lines, at))
                                          not in RULES_READ})
    return "\n".join(lines)


def _todo_line(line: str, note: str, commented: bool = False) -> str:
    """The commented-out binding ``line`` as a TODO with its note replaced by ``note``:
    uncommented (one a file of the format requires), or left ``commented`` out (one it
    writes nowhere)."""
    m = _OPTIONAL.match(line)
    assert m is not None
    return f"    {'# ' if commented else ''}{m[1]}: TODO".ljust(27) + f"# {note}"


def unwritten_bindings(lines: list[str], fmt: Format) -> dict[int, str]:
    """{index in ``lines`` of a commented-out binding (``_OPTIONAL``): why it stays so}
    for the bindings ``fmt`` writes in none of its files: declared in its format.yaml
    ``not_carried``, or read by no template on check-mapping's sample titles (field
    coverage, ``pesgen.coverage``), the scaffold filled with stand-ins and every such
    binding bound. Bound, check-mapping would warn of each (mapping.unwritten). One
    pesgen's rules read whatever the files hold (``coverage.RULES_READ``: the civility,
    the country) is said so too: ``new_mapping`` prefills it all the same. {} when the
    filled scaffold does not render: check-mapping names why then."""
    from .coverage import CARRIED_BY, RULES_READ, carried
    from .sample import check_templates

    optional = [i for i, line in enumerate(lines) if _OPTIONAL.match(line)]
    if not optional:
        return {}
    names = {i: _binding_name(lines, i) for i in optional}
    with tempfile.TemporaryDirectory(prefix="pesgen-scaffold-") as tmp:
        try:
            reads = check_templates(_stand_in(tmp, lines, fmt, set(optional)), fmt).reads
        except MappingError:
            raise  # the scaffold's own stand-ins refused: pesgen's fault, not the format's
        except PesgenError:
            return {}
    found: dict[int, str] = {}
    for at, name in names.items():
        if name in fmt.not_carried:
            why = (f"{fmt.name} does not write it (format.yaml not_carried: "
                   f"{fmt.not_carried[name][0]})")
        elif name in CARRIED_BY and not carried(name, reads):
            why = (f"{fmt.name} does not write it: no template reads "
                   f"{' or '.join(CARRIED_BY[name])}")
        else:
            continue
        if name in RULES_READ:
            # bound all the same when a column fits: the rules read it, written or not
            why = f"{why}; pesgen's rules read it: {RULES_READ[name]}"
        found[at] = why
    return found


# ---------------------------------------------------------------- prefilled from an export

# a binding's line holding TODO: its indent, '# ' when commented out, key, the rest
_BINDING_TODO = re.compile(r"^(    |  #   )(# )?(\w+): TODO\b *(?:# ?(.*))?$")
# a key path a mapping's path binding can name (JSON: no '.' or '[' inside a key)
_PATH_PART = re.compile(r"[^.\[\]\s][^.\[\]]*")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})


def _yaml(value: str) -> str:
    """``value`` as a YAML scalar: plain when it reads back as the same text."""
    if _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)


def _commented(text: str, comment: str) -> str:
    return f"{text.ljust(25)}  # {comment}"


def _quoted(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _sources(shape: ExportShape) -> dict[str, list[str]]:
    """{binding: the columns (key paths) the table of usual names says fill it}."""
    found: dict[str, list[str]] = {}
    named: list[tuple[str, str | None]]
    if shape.kind == "csv":
        named = [(c, None) for c in shape.columns if c and c.isprintable()]
    else:
        inside = f"{shape.lines}."
        named = [(k, "invoice") for k in shape.keys
                 if k != shape.lines and not k.startswith(inside)]
        named += [(k, "line") for k in shape.line_keys]
        named = [(k, level) for k, level in named
                 if k.isprintable() and all(_PATH_PART.fullmatch(p) for p in k.split("."))]
    for name, level in named:
        binding = binding_of(name, level)
        if binding is not None:
            found.setdefault(binding, []).append(name)
    return found


def _prefilled(lines: list[str], shape: ExportShape,
               unwritten: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The scaffold ``lines`` with the input section ``shape`` tells and each binding
    one column (key) alone fits by the table prefilled, saying so; the rest TODO. A
    binding of ``unwritten`` (group.key: one the format writes in no file) is prefilled
    but left commented out, its note kept."""
    found = _sources(shape)
    what = "column" if shape.kind == "csv" else "key"
    start = lines.index("input:")
    end = lines.index("", start)
    lines = lines[:start] + _input_lines(shape, found, lines[start:end]) + lines[end:]
    out = []
    group = ""
    for line in lines:
        if line.startswith("  # payment:"):
            group = "payment"
        elif (g := _GROUP.match(line)) and not line.startswith("  lines:"):
            group = g[1]
        if line.startswith("  lines: TODO"):
            out.append(_lines_line(shape))
            continue
        if line.startswith("    debt_number:") and "invoice['TODO']" in line:
            out.append(_debt_line(line, found.get("invoice.number", []), what))
            continue
        m = _BINDING_TODO.match(line)
        sources = found.get(f"{group}.{m[3]}", []) if m else []
        if m is not None and not sources and not m[2] and shape.kind == "csv" and \
                (own := _own_columns(shape, f"{group}.{m[3]}")):
            # a JSON line's own key only (Montant): said, not prefilled (walk64: the
            # amount stayed TODO with no word of the export's Montant column)
            out.append(_commented(f"{m[1]}{m[3]}: TODO",
                                  f"{what} {' or '.join(map(_quoted, own))}? Its name "
                                  "alone does not tell a line's from an invoice's (a CSV "
                                  f"row holds both): check{'; ' + m[4] if m[4] else ''}"))
            continue
        if m is None or not sources:
            out.append(line)
            continue
        indent, key, said = m[1], m[3], m[4]
        said = f"; {said}" if said else ""
        # uncommented when prefilled, unless the format writes it nowhere
        kept = (m[2] or "") if f"{group}.{key}" in unwritten else ""
        if len(sources) == 1:
            out.append(_commented(f"{indent}{kept}{key}: {_yaml(sources[0])}",
                                  f"from {what} {_quoted(sources[0])}: check"
                                  f"{_fewer(shape, sources[0], group == 'line')}{said}"))
        else:
            both = ", ".join(map(_quoted, sources))
            out.append(_commented(f"{indent}{m[2] or ''}{key}: TODO",
                                  f"{what}s {both} all fit: which? (or an expr){said}"))
    return out


def _own_columns(shape: ExportShape, binding: str) -> list[str]:
    """The CSV columns named as the table's own names of ``binding`` (a JSON invoice's or
    line's own key, ``Usual.own``: Montant, Date), which no other binding's table takes
    from the export already."""
    own = {normalise(n) for u in USUAL if u.binding == binding for n in u.own}
    return [c for c in shape.columns if normalise(c) in own and binding_of(c) is None]


def _input_lines(shape: ExportShape, found: dict[str, list[str]],
                 old: list[str]) -> list[str]:
    """The input section, as new-mapping read ``shape``: each value with its reason
    above it, TODO where it could not tell; then the columns (keys) read."""
    out = ["input:", _commented(f"  format: {shape.kind}",
                                f"{shape.shown}, as new-mapping --input read it")]

    def said(key: str, value: str | None, why: str) -> None:
        out.extend(textwrap.wrap(why, 86, initial_indent="  # ", subsequent_indent="  # ",
                                 break_on_hyphens=False, break_long_words=False))
        out.append(f"  {key}: {_yaml(value) if value is not None else 'TODO'}")

    if shape.kind == "json":
        said("records", shape.records, shape.records_why)
    said("encoding", shape.encoding, f"{shape.encoding_why}")
    numbers = [line for line in old if line.startswith(("  # numbers:", "  # dates:"))]
    if shape.kind == "json":
        return out + numbers + _keys_listing(shape, found)
    said("delimiter", shape.delimiter, shape.delimiter_why)
    numbers_col = found.get("invoice.number", [])
    if len(numbers_col) == 1:
        out.append(_commented(f"  group_by: {_yaml(numbers_col[0])}",
                              f"from column {_quoted(numbers_col[0])}: check (the invoice "
                              "number: an invoice's rows share it)"))
    else:
        why = (f"columns {', '.join(map(_quoted, numbers_col))} all fit" if numbers_col
               else "no column is clearly the invoice number")
        out.append(_commented("  group_by: TODO", f"{why}: the invoice number column (an "
                              "invoice's rows share it)"))
    out += _header_line(shape, old) + numbers
    return out + _columns_listing(shape, found)


def _header_line(shape: ExportShape, old: list[str]) -> list[str]:
    """input.header_line: the skeleton's commented hint when the header is line 1; else
    the line found below a title, what was skipped said above it; TODO when unsure."""
    if shape.header_line == 1:
        return [line for line in old if line.startswith("  # header_line:")]
    why = textwrap.wrap(shape.header_line_why, 86, initial_indent="  # ",
                        subsequent_indent="  # ", break_on_hyphens=False,
                        break_long_words=False)
    if shape.header_line is None:
        return why + [_commented("  header_line: TODO", "the header's line, below a title")]
    skipped = shape.header_line - 1
    return why + [_commented(f"  header_line: {shape.header_line}",
                             f"{skipped} line{'s' if skipped > 1 else ''} above the header "
                             "skipped: check")]


def _filled(found: dict[str, list[str]], csv: bool) -> dict[str, str]:
    """{column or key: what it fills, as the listing says it}."""
    out: dict[str, str] = {}
    for binding, sources in found.items():
        for source in sources:
            out[source] = f"bindings.{binding}" + ("" if len(sources) == 1 else
                                                     f" (one of {len(sources)}: TODO)")
    if csv and len(found.get("invoice.number", [])) == 1:
        out[found["invoice.number"][0]] += ", input.group_by"
    return out


def _columns_listing(shape: ExportShape, found: dict[str, list[str]]) -> list[str]:
    if not shape.columns:
        return [f"  # The header's columns: not read ({shape.header_why})."]
    filled = _filled(found, csv=True)
    out = [f"  # The header's {len(shape.columns)} columns, in order (and what a "
           "binding takes from them, to check):"]
    for number, column in enumerate(shape.columns, 1):
        shown = _quoted(column) if column else f"(column {number} has no name: not read)"
        out.append(f"  #   {shown}".ljust(40) + (f" -> {filled[column]}" if column in filled
                                                  else "").rstrip())
    return [line.rstrip() for line in out]


def _keys_listing(shape: ExportShape, found: dict[str, list[str]]) -> list[str]:
    if not shape.keys:
        return []
    filled = _filled(found, csv=False)
    first = f"$.{shape.records}" if shape.records else "$"
    read = shape.invoices_read
    if read == 1:
        said = f"The keys of its only invoice ({first}[0])"
    else:
        said = (f"The keys of its {read} invoices ({first}[0] to [{read - 1}]), every one "
                "read, in the order first seen")
    said += ", and what a binding takes from them, to check"
    if any(shape.key_counts[k] < read for k in shape.keys) or \
            any(shape.line_key_counts[k] < shape.lines_read for k in shape.line_keys):
        said += ("; 'in K of N': a key not in every invoice (line) read, optional, which a "
                 "binding reading it finds empty in the others")
    said += ":"
    out = textwrap.wrap(said, 86, initial_indent="  # ", subsequent_indent="  # ",
                        break_on_hyphens=False, break_long_words=False)

    def listed(indent: str, key: str, held: int, of: int, fills: str) -> str:
        some = f" (in {held} of {of})" if held < of else ""
        return (f"  #{indent}{key}".ljust(40) + fills + some).rstrip()

    for key in shape.keys:
        held = shape.key_counts[key]
        if key != shape.lines:
            out.append(listed("   ", key, held, read,
                              f" -> {filled[key]}" if key in filled else ""))
            continue
        out.append(listed("   ", key, held, read, " -> bindings.lines") +
                   f"; the keys of their {shape.lines_read} line(s):")
        out += [listed("     ", k, shape.line_key_counts[k], shape.lines_read,
                       f" -> {filled[k]}" if k in filled else "") for k in shape.line_keys]
        if shape.line_keys_left_out:
            out.append(_left_out("     ", shape.line_keys_left_out, "lines"))
    if shape.keys_left_out:
        out.append(_left_out("   ", shape.keys_left_out, "invoices"))
    return out


def _left_out(indent: str, count: int, records: str) -> str:
    """The listing's line saying how many keys it leaves out (peek.MAX_KEYS)."""
    return (f"  #{indent}({count} more key{'s' if count > 1 else ''} left out: only the "
            f"{MAX_KEYS} the most {records} hold are listed)")


def _fewer(shape: ExportShape, key: str, line: bool) -> str:
    """'; in 3 of 12 invoices read': a JSON key of an invoice (``line``: of a line) not
    in every one read, said beside the binding prefilled from it; '' for one in every
    one."""
    if shape.kind != "json":
        return ""
    if line:
        held, of, what = shape.line_key_counts.get(key, 0), shape.lines_read, "lines"
    else:
        held, of, what = shape.key_counts.get(key, 0), shape.invoices_read, "invoices"
    return f"; in {held} of {of} {what} read (optional?)" if held < of else ""


def _lines_line(shape: ExportShape) -> str:
    if shape.kind == "csv":
        return "  lines: {const: rows}".ljust(27) + ("# CSV: each row is a line of the "
                                                    "invoice input.group_by names")
    if shape.lines is not None and all(_PATH_PART.fullmatch(p)
                                       for p in shape.lines.split(".")):
        return _commented(f"  lines: {_yaml(shape.lines)}",
                          f"from key {_quoted(shape.lines)}: {shape.lines_why}: check")
    return _commented("  lines: TODO", f"the invoice's lines: {shape.lines_why}")


def _debt_line(line: str, numbers: list[str], what: str) -> str:
    """The scaffold's NumDette, reading the invoice number's column (top-level key) when
    one alone fits and an expression can quote it as it is."""
    if len(numbers) != 1 or "." in numbers[0] and what == "key" or \
            any(c in numbers[0] for c in "'\"\\"):
        return line
    name = numbers[0]
    return (f"    debt_number: {{expr: \"invoice['{name}'] | digits\"}}   # NumDette "
            f"(1-15 digits): the digits of the invoice number ({what} {_quoted(name)}): "
            "check they tell the invoices apart")


def _skeleton(collectivity: str, fmt: Format, formats_args: str = "") -> list[str]:
    """The scaffold's lines, every binding a mapping may leave out commented out."""
    needs_debt = "pes-ormc" in fmt.rules
    editions = [str(x) for x in fmt.defaults.get("asap_editions") or ()]
    options = fmt.defaults.get("options") or {}
    safe = collectivity.replace('"', "'")
    out = [
        f"# {safe}: school billing -> {fmt.name} ({fmt.title})",
        "# Fill every TODO (pesgen refuses the mapping until then), then:",
        f"#   pesgen check-mapping THIS_FILE{formats_args}",
        f"#   pesgen preview --mapping THIS_FILE --input EXPORT --limit 3{formats_args}",
        "# Every key: docs/mapping-reference.md. Walk-through: docs/onboarding.md.",
        "pesgen_mapping: 1",
        "",
        "collectivity:",
        f'  name: "{safe}"',
        '  siret: "TODO"            # SIRET of the budget collectivity (IdColl), 14 digits',
        '  id_post: "TODO"          # codique of the poste comptable (IdPost), 6-7 digits',
        '  cod_col: "TODO"          # Hélios collectivity code (CodCol), 3 digits',
        '  cod_bud: "TODO"          # Hélios budget code (CodBud), e.g. "00"',
        "  exercise: TODO           # budget year, e.g. 2026",
        "  # budget_label: TODO     # LibelleColBud, at most 38 characters",
        "  # sepa_creditor_id: TODO # the collectivity's ICS, for a format that writes it "
        "(docs/mapping-reference.md)",
        "  # timezone: Europe/Paris # runs without --date: today there (America/Guadeloupe…)",
        "",
        "output:",
        f"  format: {fmt.name}",
    ]
    if editions and fmt.defaults.get("asap_edition_required"):
        out.append(f'  asap_edition: "TODO"     # ASAP Edition, required by this format: '
                   f"{' or '.join(editions)}")
    elif editions:
        out.append(f'  # asap_edition: "{editions[0]}"   # ASAP Edition; this format takes '
                   f"{', '.join(editions)}; absent: the collectivity sends the ASAP")
    if options:
        out.append("  # options:               # format parameters, here with their defaults")
        for key, default in options.items():
            shown = str(default).replace('"', "'")
            out.append(f'  #   {key}: "{shown}"')
    out += [
        "",
        "input:",
        "  format: json             # TODO if needed: json, or csv (one row per invoice line)",
        "  records: invoices        # JSON only (remove it for csv): the invoice array's path",
        "  # group_by: TODO         # CSV only (required): the invoice number column",
        "  # encoding: cp1252       # the file's encoding (default utf-8)",
        "  # delimiter: \";\"         # CSV (default ','; or auto)",
        "  # header_line: 3         # CSV: the header's line, if a title is above it (default 1)",
        "  # numbers: fr            # amounts: fr '1 234,50', iso '1234.50' (default auto)",
        "  # dates: fr              # fr '20/11/2026', iso '2026-11-20' (default auto)",
        "",
        "# Where each field comes from: a path in the record (JSON dotted path or CSV",
        "# column), {const: value} or {expr: \"a Jinja expression over invoice/line\"}.",
        "bindings:",
        "  invoice:",
        "    number: TODO           # the invoice number, unique in the run",
    ]
    if needs_debt:
        # the scaffold knows nothing of the export yet: the technician puts the invoice
        # number's column (CSV) or key (JSON) in place of TODO, as in number above; in an
        # expression `invoice` is the input record, read by name ('N° facture' included)
        out.append('    debt_number: {expr: "invoice[\'TODO\'] | digits"}   # NumDette (1-15 '
                   "digits): TODO the column or key number reads, e.g. invoice['N° facture']")
    out += [
        "    # date: TODO",
        "    # total: TODO          # when bound, must equal the sum of the lines",
        "    # object: TODO         # title object",
        "  payer:",
        "    kind: TODO             # translated by codes.payer_kinds",
        "    name: TODO",
        "    first_name: TODO       # required for persons (CatTiers 01)",
        "    # civility: TODO       # translated by codes.civility",
        "    # ref: TODO            # the family's reference",
        "    # national_id: TODO    # SIRET or SIREN of a company or an association (IdTiers)",
        "  address:",
        "    street: TODO",
        "    postal_code: TODO",
        "    city: TODO",
        "    # complement: TODO",
        "    # country: TODO        # ISO alpha-2, empty means FR; written out (France, "
        "Belgique): codes.countries",
        # left commented out, every invoice is a title to pay, without its mandate; the
        # run notes an export's direct-debit data no binding reads (input.unread-debit)
        "  # Uncomment payment: when the export has direct debits (a payment method, RUM",
        "  # and IBAN columns): left out, each is a title to pay, without its mandate,",
        "  # and export and preview say so (note unread_debit).",
        "  # payment:               # SEPA direct debit, see docs/mapping-reference.md",
        "  #   direct_debit: TODO   # the payment method, translated by codes.payment_methods",
        # what a direct debit requires (empty or not bound: refused, input.required)
        "  #   rum: TODO            # required for a direct debit",
        "  #   mandate_signed_on: TODO   # required for a direct debit",
        "  #   debit_date: TODO     # required for a direct debit",
        "  #   iban: TODO           # required for a direct debit",
        "  #   sequence: TODO       # FRST/RCUR/…, translated by codes.sepa_sequences",
        "  #   bic: TODO            # optional in France, required for an account abroad",
        "  lines: TODO              # JSON: the invoice's line array; CSV: {const: rows}",
        "  line:",
        "    activity: TODO         # translated by codes.activities",
        "    amount: TODO",
        "    # label: TODO",
        # a format that writes a line's quantity and unit price takes both (bound, the
        # export checks they multiply to the amount); unbound, 1 × the amount
        "    # quantity: TODO       # with unit_price: quantity × unit price = amount",
        "    # unit_price: TODO",
        "    # student: TODO        # the student's name or reference",
        "",
        "codes:",
        "  activities:             # school activity -> imputation (from the finance team)",
        '    TODO: {product: "TODO", nature: "TODO"}   # product: CodProdLoc, nature: account',
        "  payer_kinds:            # payer kind -> CatTiers / NatJur (DGFiP grid)",
        '    TODO: {category: "01", legal_nature: "01"}  # 01/01: a private person',
        "  # payment_methods:      # payment method -> direct debit (true) or not (false)",
        "  #   TODO: true",
        # only FR (and the overseas départements' codes) is France by itself: an export
        # writing 'France' has every family refused as abroad until the table says 100
        "  # countries:            # country as exported -> INSEE code, 3 digits (FR needs "
        "no entry)",
        '  #   FRANCE: "100"        # France written out: 100, an address in France',
        '  #   BELGIQUE: "131"      # abroad: the last 3 digits of the INSEE code (99131), '
        "with policies.foreign_address",
        *_civility_lines(fmt),
        "",
        "# Every transformation is explicit and reported; the defaults refuse (uncomment",
        "# a line to choose it).",
        "policies:",
        "  # transliterate: true   # œ -> OE, ’ -> ' instead of refusing",
        "  # case: upper",
        "  # negative_lines: net   # discounts net into the same imputation "
        "(netted_label: append says so in that line's label)",
        "  # foreign_address: postal_code_in_city   # an address abroad: CP 99999, the "
        "postal code before the city, CodPays from codes.countries",
        "  # missing_civility: default   # a person without civility gets default_civility",
        "  # already_exported: leave_out   # invoices an earlier run billed at the same amount "
        "(a whole year's export) are left out and reported",
        f"  # default_civility: {_civility_example(fmt)}",
        "",
    ]
    return out


# a binding of bindings.invoice/payer/address/line the scaffold leaves commented out
_OPTIONAL = re.compile(r"^    # (\w+): TODO\b")
# a scaffold's line holding a TODO as a value: its indent, key and TODO
_VALUE_TODO = re.compile(r'^(\s*)(\w+): ("TODO"|TODO\b)')
# values of the right form for each TODO that must be one (the sample titles check-mapping
# renders do not read the input: a binding's path is any path)
_STAND_INS = {"siret": '"21450999400015"', "id_post": '"045012"', "cod_col": '"123"',
              "cod_bud": '"00"', "exercise": "2026"}
_TABLE_STAND_INS = {
    'TODO: {product: "TODO", nature: "TODO"}': 'ACT: {product: "P1", nature: "7062"}',
    'TODO: {category: "01", legal_nature: "01"}': 'PERSON: {category: "01", legal_nature: "01"}',
    "invoice['TODO']": "invoice['number']",
}


def required_bindings(lines: list[str], fmt: Format) -> dict[int, str]:
    """{index in ``lines`` of a commented-out binding (``_OPTIONAL``): what requires it}
    for the bindings without which a file of ``fmt`` has a value its layout or XSD
    refuses empty, found as check-mapping and export would find it: the scaffold filled
    with stand-ins (``_stand_in_text``) and rendered on check-mapping's sample titles,
    with every such binding bound, then each taken out again, in order, while nothing
    is refused for want of it (e.magnus' Libelle writes the line's label, else the
    title's object: the object taken out first, the label is kept). A file with a
    layout is checked as check-mapping checks it (``sample.check_templates``: a
    layout.required column empty, a column holding a bound value being held to
    nothing); one with an XSD on the sample title without optional parts, the fields of
    the bindings given a value (``sample.xsd_problems``: JVS' and Corail's line label,
    minLength 1). {} when nothing is refused without them, or the filled scaffold does
    not render: check-mapping names why then (a draft template's error)."""
    from .sample import check_templates, xsd_problems

    optional = [i for i, line in enumerate(lines) if _OPTIONAL.match(line)]
    laid_out = any(spec.layout is not None and spec.xsd is None for spec in fmt.files)
    checked = any(spec.xsd is not None for spec in fmt.files)
    if not optional or not (laid_out or checked):
        return {}
    names = {i: _binding_name(lines, i) for i in optional}
    with tempfile.TemporaryDirectory(prefix="pesgen-scaffold-") as tmp:

        def refused(bound: list[int]) -> dict[tuple[str, ...], str]:
            """What the files refuse with the bindings at ``bound`` uncommented."""
            mapping = _stand_in(tmp, lines, fmt, set(bound))
            found: dict[tuple[str, ...], str] = {}
            if laid_out:
                for p in check_templates(mapping, fmt, laid_out=True).layout_problems:
                    if p.rule == "layout.required":
                        file, column = (p.record or "").rsplit(":", 1)[0], \
                            p.message.split(": ", 1)[0]
                        found[(file, column)] = f"{file}, {column}"
            if checked:
                found.update(xsd_problems(mapping, fmt, [names[i] for i in bound]))
            return found

        try:
            if not refused([]):
                return {}
            left = refused(optional)
            kept = list(optional)
            for at in optional:
                if refused([i for i in kept if i != at]).keys() <= left.keys():
                    kept.remove(at)
            return {at: "; ".join(sorted(set(refused([i for i in kept if i != at]).values())
                                         - set(left.values())))
                    for at in kept}
        except MappingError:
            raise  # the scaffold's own stand-ins refused: pesgen's fault, not the format's
        except PesgenError:
            return {}


def _binding_name(lines: list[str], at: int) -> str:
    """The commented-out binding at ``lines[at]`` as a mapping binds it (line.label): its
    key, under the group (invoice, payer, address, line) the lines above open."""
    m = _OPTIONAL.match(lines[at])
    assert m is not None
    group = next(g[1] for line in reversed(lines[:at]) if (g := _GROUP.match(line)))
    return f"{group}.{m[1]}"


# a group of bindings opening (  invoice:, "  line:")
_GROUP = re.compile(r"^  (\w+):")


def _stand_in(folder: str, lines: list[str], fmt: Format, bound: set[int]) -> Mapping:
    """The scaffold ``lines`` filled with stand-ins, the bindings at ``bound``
    uncommented (``_stand_in_text``), loaded from a scratch file in ``folder`` (a
    temporary folder: no file the user sees)."""
    path = Path(folder) / "mapping.yaml"
    path.write_text(_stand_in_text(lines, fmt, bound), encoding="utf-8")
    return load_mapping(path)


def _stand_in_text(lines: list[str], fmt: Format, bound: set[int]) -> str:
    """The scaffold ``lines`` with each TODO value given a stand-in of its form, and the
    commented-out bindings at ``bound`` uncommented, each bound to a path."""
    editions = [str(x) for x in fmt.defaults.get("asap_editions") or ()]
    out = []
    for i, line in enumerate(lines):
        if i in bound and (m := _OPTIONAL.match(line)):
            line = f"    {m[1]}: {m[1]}"
        elif "TODO" in line.split("#")[0]:
            for old, new in _TABLE_STAND_INS.items():
                line = line.replace(old, new)
            if m := _VALUE_TODO.match(line):
                value = (f'"{editions[0]}"' if m[2] == "asap_edition" and editions
                         else _STAND_INS.get(m[2], m[2]))
                line = f"{m[1]}{m[2]}: {value}{line[m.end():]}"
        out.append(line)
    return "\n".join(out)


def _civility_example(fmt: Format) -> str:
    """A civility the format takes (the last of format.yaml's list: Corail's Mme), or
    the examples' MME when it lists none (the PES formats: the DGFiP's list is
    unconfirmed)."""
    values = fmt.limit("debtor.civility").values
    return values[-1] if values else "MME"


def _civility_lines(fmt: Format) -> list[str]:
    """The commented codes.civility table, saying which civilities the format takes
    when its format.yaml lists them (sent as written, case included)."""
    values = fmt.limit("debtor.civility").values
    said = (f"one {fmt.name} takes, as written: {', '.join(values)}" if values else
            "the civility sent (Hélios rejects Mademoiselle: Mlle -> MME)")
    return [f"  # civility:             # civility as exported -> {said}",
            f"  #   TODO: {_civility_example(fmt)}"]


_FORMAT_YAML = """\
# TODO one line: which package imports this file, and how (menu, folder, web upload).
pesgen_format: 1
name: {name}
title: "TODO: <publisher> <product> <what> import"
kind: {kind}
# draft while onboarding; stable once the publisher validated a test import;
# reconstructed when the layout comes from public integrations, not from the publisher.
status: draft
source: "TODO: the publisher's document, its version and date"
encoding: UTF-8          # TODO as the publisher requires: UTF-8, ISO-8859-1, cp1252
# charset: the characters text fields are checked and transliterated to (the mapping's
# policies.transliterate: 'Œ' -> 'OE'). Unset, it follows the encoding: latin-1 for
# ISO-8859-1 and cp1252 (a package's import often goes on to Hélios, in ISO-8859-1),
# ascii for ASCII, utf-8 for UTF-8, however spelt. Set charset: cp1252 to keep Œ ’ – €
# for a cp1252 package whose import does not go on to Hélios as it is; any other
# encoding (cp850, ISO-8859-15...) is refused until charset says it, and a charset the
# encoding cannot write whole is refused.
# charset: utf-8         # latin-1, cp1252, ascii or utf-8
newline: {newline}            # LF or CRLF
rules: [pes-common]      # DGFiP rules on every title (the package sends PES titles)
files:
  # one entry per file of the export (a main file and side files): each has its template
  # (macros head(doc), piece(t, doc), tail(doc)), its file name and its {check_key}.
  - template: {template}
    name: "{name}_{{{{ doc.collectivity.siret }}}}_{{{{ 'B' ~ doc.collectivity.cod_bud ~ '_' if doc.collectivity.cod_bud != '00' else '' }}}}{{{{ doc.bordereau.exercise }}}}_{{{{ doc.bordereau.number | zfill(7) }}}}.{ext}"
    {check_key}: {check}
defaults:
  asap_editions: []      # ASAP Edition codes a mapping may choose (e.g. ["01", "04"])
  options: {{}}            # parameters a mapping sets under output.options, with defaults
# The target's limits for text fields (checked before rendering, with the mapping's
# policies: name_overflow, text_overflow...), e.g.; give each text field a template
# writes in a column (fixed(38)) that column's width at most, else a longer value is
# refused by the template at export, by invoice, without the policies:
fields:
  debtor.name: {{max: 38}}
  debtor.complement_name: {{max: 38}}
  address.street: {{max: 38}}
  address.city: {{max: 38}}
  # a field may have its own charset (latin-1, cp1252, ascii, sepa, utf-8, alnum), e.g.
  # the SEPA set for a mandate reference:
  # mandate.rum: {{max: 35, charset: sepa}}
  # the civilities the file takes, as written, when its XSD or layout lists them (a
  # mapping's civility code outside them is refused by check-mapping):
  # debtor.civility: {{max: 10, values: [Mr, Mme]}}
# What a mapping may bind that the file has no place for, each with the reason (the
# publisher's document): check-mapping renders the templates on sample titles and
# warns of a bound field no template reads (rule mapping.unwritten), but for these.
# Named as a mapping binds them (payer.email, address.country, line.student...). A
# value a split policy fills (address.complement, payer.complement_name) is refused if
# no template writes it, listed here or not.
# not_carried:
#   payer.email: "TODO: no e-mail column in the publisher's layout"
"""

_CSV_TEMPLATE = """\
{#- @NAME@ (draft). pesgen calls head(doc) once, piece(t, doc) for each title, tail(doc)
    once. t: the title (t.number, t.invoice_number, t.debtor, t.lines, t.total, t.mandate,
    t.object...), doc: the bordereau (doc.bordereau.number/.issue_date/.count/.total,
    doc.collectivity, doc.options). Format values with filters (amount, frdate,
    csv_record...), never arithmetic here. See docs/onboarding.md. -#}
{% macro head(doc) -%}
{{ ["NumTitre", "Facture", "Nom", "Prenom", "ComplementNom", "Montant", "Date"] | csv_record(delimiter=";") }}
{% endmacro %}

{% macro piece(t, doc) -%}
{{ [t.number, t.invoice_number, t.debtor.name, t.debtor.first_name, t.debtor.complement_name,
    t.total | amount(","), doc.bordereau.issue_date | frdate] | csv_record(delimiter=";") }}
{% endmacro %}

{% macro tail(doc) %}{% endmacro %}
"""

_FIXED_TEMPLATE = """\
{#- @NAME@ (draft). pesgen calls head(doc) once, piece(t, doc) for each title, tail(doc)
    once. The `fixed` filter pads a value to its width and refuses a longer one.
    See docs/onboarding.md. -#}
{% macro head(doc) -%}
{{ "01" }}{{ doc.bordereau.exercise | fixed(4) }}{{ doc.bordereau.count | fixed(6, "right", "0") }}{{ "" | fixed(84) }}
{% endmacro %}

{% macro piece(t, doc) -%}
{{ "02" }}{{ t.number | fixed(6, "right", "0") }}{{ t.debtor.name | fixed(38) }}{{ t.debtor.complement_name | fixed(38) }}{{ t.total | cents | fixed(12, "right", "0") }}
{% endmacro %}

{% macro tail(doc) %}{% endmacro %}
"""

_XML_TEMPLATE = """\
{#- @NAME@ (draft). pesgen calls head(doc) once, piece(t, doc) for each title, tail(doc)
    once; values are XML-escaped automatically. See docs/onboarding.md. -#}
{% macro head(doc) -%}
<?xml version="1.0" encoding="{{ doc.options.encoding }}"?>
<Import exercice="{{ doc.bordereau.exercise }}" lot="{{ doc.bordereau.number }}" date="{{ doc.bordereau.issue_date | isodate }}">
{% endmacro %}

{% macro piece(t, doc) -%}
<Titre numero="{{ t.number }}" facture="{{ t.invoice_number }}" montant="{{ t.total | amount }}">
<Debiteur nom="{{ t.debtor.name }}"{% if t.debtor.first_name %} prenom="{{ t.debtor.first_name }}"{% endif %}{% if t.debtor.complement_name %} complement="{{ t.debtor.complement_name }}"{% endif %}/>
{% for ln in t.lines %}
<Ligne numero="{{ ln.number }}" produit="{{ ln.product_code }}" montant="{{ ln.amount | amount }}"/>
{% endfor %}
</Titre>
{% endmacro %}

{% macro tail(doc) -%}
</Import>
{% endmacro %}
"""

_XSD = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- @NAME@ (draft): the structure the publisher documents. Replace with the real one. -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="unqualified">
  <xs:simpleType name="Montant">
    <xs:restriction base="xs:decimal"><xs:fractionDigits value="2"/><xs:minExclusive value="0"/></xs:restriction>
  </xs:simpleType>
  <xs:element name="Import">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Titre" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:element name="Debiteur">
                <xs:complexType>
                  <xs:attribute name="nom" use="required">
                    <xs:simpleType><xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="38"/></xs:restriction></xs:simpleType>
                  </xs:attribute>
                  <xs:attribute name="prenom" type="xs:string"/>
                  <xs:attribute name="complement" type="xs:string"/>
                </xs:complexType>
              </xs:element>
              <xs:element name="Ligne" maxOccurs="unbounded">
                <xs:complexType>
                  <xs:attribute name="numero" type="xs:positiveInteger" use="required"/>
                  <xs:attribute name="produit" type="xs:string" use="required"/>
                  <xs:attribute name="montant" type="Montant" use="required"/>
                </xs:complexType>
              </xs:element>
            </xs:sequence>
            <xs:attribute name="numero" type="xs:positiveInteger" use="required"/>
            <xs:attribute name="facture" type="xs:string" use="required"/>
            <xs:attribute name="montant" type="Montant" use="required"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="exercice" type="xs:gYear" use="required"/>
      <xs:attribute name="lot" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="date" type="xs:date" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

_CSV_LAYOUT = """\
# @NAME@ (draft): one entry per column of the publisher's documentation, in order.
# Reference: schemas/layout.schema.json; docs/onboarding.md.
pesgen_layout: 1
name: "@NAME@"
source: "TODO: the publisher's document, its version and date"
kind: csv
encoding: UTF-8          # TODO as the format.yaml
line_ending: CRLF
header: true             # the first line holds the column names
delimiter: ";"
quoting: minimal         # always | minimal | never
decimal_separator: ","
date_format: DD/MM/YYYY
records:
  - type: titre
    columns:
      - {name: NumTitre, type: integer, length: 8, required: true}
      - {name: Facture, type: text, length: 20, required: true}
      - {name: Nom, type: text, length: 38, required: true}
      - {name: Prenom, type: text, length: 38}
      - {name: ComplementNom, type: text, length: 38}
      - {name: Montant, type: decimal, decimals: 2, required: true}
      - {name: Date, type: date, required: true}
"""

_FIXED_LAYOUT = """\
# @NAME@ (draft): one entry per column of the publisher's documentation, with its
# width (and start, 1-based, when the document gives positions).
# Reference: schemas/layout.schema.json; docs/onboarding.md.
pesgen_layout: 1
name: "@NAME@"
source: "TODO: the publisher's document, its version and date"
kind: fixed
encoding: UTF-8          # TODO as the format.yaml
line_ending: CRLF
record_type_column: Code
records:
  - type: entete
    when: "01"
    columns:
      - {name: Code, type: code, values: ["01", "02"], width: 2}
      - {name: Exercice, type: integer, width: 4, required: true}
      - {name: NbTitres, type: integer, width: 6, pad: "0", required: true}
      - {name: Filler, type: text, width: 84, length: 0}
  - type: titre
    when: "02"
    columns:
      - {name: Code, type: code, values: ["01", "02"], width: 2}
      - {name: NumTitre, type: integer, width: 6, pad: "0", required: true}
      - {name: Nom, type: text, width: 38, required: true}
      - {name: ComplNom, type: text, width: 38}
      - {name: MontantCentimes, type: integer, width: 12, pad: "0", required: true}
# figures one record gives of others, checked against them (rule layout.totals): the
# header's count of the titles after it; a trailer's (a count of lines, a sum of
# amounts) the same way, with sum: COLUMN, distinct: COLUMN
totals:
  - {record: entete, column: NbTitres, of: titre, count: true, after: true}
"""

_README = """\
# @NAME@

**Status: draft.** TODO: the package, the publisher's document (title, version, date)
and what was confirmed with the publisher.

Steps (docs/onboarding.md): describe the file(s) in the layout or XSD from the
publisher's documentation; shape the template; write a mapping
(`pesgen new-mapping`); `pesgen preview`; put a fixture in `fixture/`; then, from the
folder `pesgen new-format` ran in (the one holding `@DIR@/`),
`pesgen check-format @NAME@ --formats-dir @DIR@ --regen`, review `expected/`; fill
every TODO of `format.yaml` (check-format refuses them); have the publisher import the
expected file in a test environment; set `status: stable` in `format.yaml` and in the
Status line above.

check-mapping and check-format warn of a field the mapping binds that no template
writes (`mapping.unwritten`): write it, or, when the file has no place for it, declare
it in `format.yaml` `not_carried` with the reason. A value a split policy fills
(`street_overflow: split` the address complement, `name_overflow: split` the name
complement) that no template writes refuses the mapping (`mapping.policy-lost`).
"""

_FIXTURE_README = """\
# Fixture

Put here a small, anonymised billing export (`input.json` or `input.csv`) and the
`mapping.yaml` that exports it with this format. `pesgen check-format @NAME@
--formats-dir @DIR@` renders it (run date 2026-11-23, first IdBord 1) and compares
with `expected/`.

In that `mapping.yaml`, set `output.emitter.adresse` (e.g. `adresse: fixture`):
without it the files name the emitter `pesgen <version>`, and `expected/` would
differ at each pesgen release. Give one invoice of the export every optional part
the format writes (a joint debtor, a mandate, an address abroad): a file or a branch
the fixture leaves empty is compared with nothing in `expected/`, and its layout or
XSD checks it only on check-mapping's sample titles, whose values are made up
(check-format warns of a file the fixture renders empty).
"""

_EXPECTED_README = """\
# Expected output of the fixture

Created by `pesgen check-format @NAME@ --formats-dir @DIR@ --regen`; review every
file (and have the publisher import it) before committing. Then any change of the
bundle that alters the output shows as a diff.
"""
