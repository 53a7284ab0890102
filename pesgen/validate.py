"""Validate a rendered file: its XSD (pesgen's own, plus the DGFiP package on request)
and the bordereau-level rules a file must satisfy (counts, sums, triplets), with the
rules on a debtor the XSD cannot express (``checks.civility_problem``...: the same
functions as on a canonical title, for files pesgen did not write).

Validation streams (``iterparse``): memory stays flat whatever the file size, a piece
at a time, and a piece of many lines a line at a time (``_PieceWalk``). When
the stream finds a schema error, the file is validated again to list every violation
with its line and XPath: as one tree when it is small, piece by piece when it is large,
and a piece of many lines a slice of lines at a time (``schema_errors_by_piece``,
``_Slices``: the same list, flat memory).
"""

from __future__ import annotations

import codecs
import copy
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from lxml import etree

from ._display import shown
from .checks import (
    BANK_RULES,
    bic_abroad_problem,
    birth_problem,
    checked_bank_code,
    civility_problem,
    debit_date_problem,
    first_name_problem,
    grid_problem,
    id_tiers_problems,
    mandate_date_problem,
    residence_problem,
)
from .errors import OutputInvalidError, Problem, UsageError
from .keys import DEBT_KEYED_DIGITS, DEBT_KEYED_MAX, cle2, debt_key
from .memo import remember

OFFICIAL_ENTRY = ("PES_V2", "Rev0", "PES_Aller.xsd")
MAX_PIECES = 99999
ORMC_TRIPLET = ("06", "15", "01")
# Titres ordinaires (TypBord 01, TypPce 01): the NatPce the grid allows (DT Annexe 2).
TITRE_NATPCE = frozenset({"01", "02", "03", "04", "05", "11", "18"})
EDITION_01_NATPCE = frozenset({"01", "02", "03", "04", "11", "18"})
# DT v5.19 Annexe 2 (Recette), notes section 9.2: each TypBord Hélios takes, each TypPce
# it takes and the NatPce allowed with that TypPce; any other triplet is rejected. The
# XSD also lists TypBord 04 (rejected: DT PES_RecetteAller_codes TTypBordAller) and 05
# (in no triplet of the grid)
RECETTE_TRIPLETS: dict[str, dict[str, frozenset[str]]] = {
    "01": {"01": TITRE_NATPCE,                              # titre ordinaire
           "02": frozenset({"07", "08", "09"}),             # titre correctif
           "03": frozenset({"01", "02", "03", "04", "18"}),  # d'ordre budgétaire
           "04": frozenset({"01", "02", "03", "04"}),       # d'ordre mixte
           "05": frozenset({"01", "02", "03", "04", "05"}),  # émis après encaissement
           "06": frozenset({"01"}),                         # récapitulatif avec rôle
           "07": frozenset({"01"}),                         # récapitulatif sans rôle
           "10": frozenset({"01", "02"}),                   # en plusieurs années
           "11": frozenset({"01", "02", "04"}),             # de rattachement
           "14": frozenset({"01"})},                        # produits constatés d'avance
    "02": {"02": frozenset({"06", "10"}), "04": frozenset({"06"}),   # annulation
           "06": frozenset({"06"}), "14": frozenset({"06"})},
    "03": {"12": frozenset({"01", "02", "11"})},            # ordre de recette ordonnateur
    "06": {"15": frozenset({"01"})},                        # ORMC (multi créanciers)
}


# what a problem's message shows at most: libxml2 echoes a value whole (an XML's value
# is the outside's, shown escaped and cut: ``_display.shown``); its longest list of
# allowed values (the DGFiP's enumerations) is well below
MESSAGE_LIMIT = 4000

# No entities, no network, no DTD: untrusted-input safe (XXE).
_SAFE = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": True}


def _parser(**kwargs: object) -> etree.XMLParser:
    return etree.XMLParser(**_SAFE, **kwargs)


def _iterparse(source: Any, **kwargs: Any) -> etree.iterparse:
    """``etree.iterparse`` with the safe options of ``_parser``."""
    return etree.iterparse(source, **_SAFE, **kwargs)


# How a document's first bytes tell its encoding (XML 1.0 Appendix F, as libxml2 reads
# them): (signature, codec, bytes of byte order mark). Any other start is read as
# ASCII-compatible (UTF-8, ISO-8859-1, Windows-1252: the markup is ASCII in all).
_SIGNATURES = ((codecs.BOM_UTF32_LE, "utf-32-le", 4), (codecs.BOM_UTF32_BE, "utf-32-be", 4),
               (codecs.BOM_UTF8, "latin-1", 3), (codecs.BOM_UTF16_LE, "utf-16-le", 2),
               (codecs.BOM_UTF16_BE, "utf-16-be", 2), (b"<\x00\x00\x00", "utf-32-le", 0),
               (b"\x00\x00\x00<", "utf-32-be", 0), (b"<\x00", "utf-16-le", 0),
               (b"\x00<", "utf-16-be", 0))
_XML_DECLARATION = re.compile(rb"<\?xml[ \t\r\n][^>]*?\?>")
_DECLARED_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_PROLOG_BLANKS = re.compile(r"[ \t\r\n]+")
# where libxml2 says an XSD error is, before its words: "Element 'Article', attribute
# 'V': " (the element's name, the attribute's when it is one)
XSD_PLACE = re.compile(r"Element '([^']*)'(?:, attribute '([^']*)')?: ")
_POSITIONS = re.compile(r"\[\d+\]")


def unpositioned(xpath: str) -> str:
    """An XPath as lxml gives it, without its positions: /A/B[2]/C[1] is /A/B/C."""
    return _POSITIONS.sub("", xpath)
_PROLOG_PARTS = (("<!--", "-->"), ("<?", "?>"))  # comments, processing instructions
_PROLOG_CHUNK = 1 << 16


class _PrologScan:
    """Whether a document declares a DOCTYPE, from its bytes fed as they are read and
    before any parser reads them: after a byte order mark, the XML declaration, blanks,
    comments and processing instructions, its prolog either says ``<!DOCTYPE`` or ends.
    Read in the encoding the bytes' start tells (UTF-16 or 32, with or without a byte
    order mark), else in the one the XML declaration names (one not ASCII-compatible, as
    UTF-7, would hide the markup from a reading of the bytes; libxml2 reads it), else as
    ASCII. lxml 6.2's iterparse reads past an internal subset's entity reference before it
    gives the root's first event, and fails on the entity ("not well-formed") before the
    parsed DOCTYPE could be seen: the bytes are the one place to look in every version."""

    def __init__(self) -> None:
        self._raw = b""  # bytes read before their encoding is known
        self._decode: Any = None
        self._text = ""  # decoded, not yet known to be a whole part of the prolog

    def feed(self, data: bytes, final: bool = False) -> bool | None:
        """True: a DOCTYPE; False: none (the prolog ended without one, or the bytes did);
        None: the bytes so far end inside the prolog (``final``: there are no more)."""
        if self._decode is None:
            self._raw += data
            started = self._start(final)
            if started is None:
                return None
            data = started
        self._text += self._decode(data, final)
        text, pos = self._text, 0
        while True:
            if blanks := _PROLOG_BLANKS.match(text, pos):
                pos = blanks.end()
                continue
            opener, close = next(((o, c) for o, c in _PROLOG_PARTS if text.startswith(o, pos)),
                                 (None, None))
            if opener is None or close is None:
                break
            end = text.find(close, pos + len(opener))
            if end < 0:  # not closed yet: keep its opener and what may begin its close
                rest, tail = text[pos:], len(close) - 1
                self._text = rest if len(rest) <= len(opener) + tail else \
                    rest[:len(opener)] + rest[-tail:]
                return False if final else None
            pos = end + len(close)
        rest = self._text = text[pos:]
        if rest.startswith("<!DOCTYPE"):
            return True
        if not final and ("<!DOCTYPE".startswith(rest) or "<!--".startswith(rest)):
            return None
        return False

    def _start(self, final: bool) -> bytes | None:
        """Once enough bytes are read to know the encoding: sets the decoder and returns
        the bytes it reads (after the XML declaration, read here); None: more needed."""
        raw = self._raw
        if len(raw) < 4 and not final:
            return None
        codec, bom = next(((c, n) for sig, c, n in _SIGNATURES if raw.startswith(sig)),
                          ("latin-1", 0))
        start = bom
        if codec == "latin-1":
            if not final and b"<?xml".startswith(raw[bom:bom + 5]) and b">" not in raw[bom:]:
                return None  # the XML declaration, not yet read whole
            declaration = _XML_DECLARATION.match(raw, bom)
            if declaration is not None:
                start = declaration.end()
                named = _DECLARED_ENCODING.search(declaration.group())
                codec = _ascii_reading(named.group(1).decode("ascii") if named else None)
        self._decode = codecs.getincrementaldecoder(codec)(errors="replace").decode
        self._raw = b""
        return raw[start:]


def _ascii_reading(declared: str | None) -> str:
    """The codec to read a prolog in, its bytes being ASCII-compatible: the declared
    one when Python knows it (UTF-7 is not ASCII-compatible), except UTF-16 and 32, which
    bytes that are not cannot be (libxml2 goes on reading them as they are)."""
    try:
        name = codecs.lookup(declared).name if declared else "latin-1"
    except LookupError:
        return "latin-1"  # one libxml2 may know and Python not: its markup read as ASCII
    return "latin-1" if name.startswith(("utf-16", "utf-32")) else name


def _read_prolog(handle: Any) -> tuple[bytes, bool]:
    """Reads a binary file object up to the end of its prolog: the bytes read (to be
    parsed first) and whether they declare a DOCTYPE (``_PrologScan``)."""
    scan, read = _PrologScan(), bytearray()
    while True:
        chunk = handle.read(_PROLOG_CHUNK)
        read += chunk
        found = scan.feed(chunk, final=not chunk)
        if found is not None:
            return bytes(read), found


def declares_doctype(source: bytes | str | Path) -> bool:
    """Whether a document (its bytes, or a file's path) declares a DOCTYPE, found in its
    prolog's bytes before any parser reads it (``_PrologScan``). pesgen reads no file
    with one (rules xml.doctype, acquit.doctype): it is not what pesgen writes nor what
    the DGFiP sends, and its entities (an XXE attempt, a billion laughs) are never read."""
    if isinstance(source, bytes):
        return _read_prolog(io.BytesIO(source))[1]
    with open(source, "rb") as handle:
        return _read_prolog(handle)[1]


class _NoTree:
    """A parser target that builds nothing: ``_WellFormed``'s parser only parses."""

    def close(self) -> None:
        return None


class _WellFormed:
    """A document's bytes (a path, or a binary file object), given to a schema-validating
    ``iterparse`` as it reads them and fed, as they are read, to a second libxml2 parser
    that builds nothing: ``check()``, once the ``iterparse`` is done, raises the
    XMLSyntaxError of a document that is not well-formed. With ``schema=`` and
    ``resolve_entities=False`` (which ``_SAFE`` must keep: no entity expanded in content),
    lxml's ``iterparse`` stops silently at an error found at the end of the input (a
    truncated file, a root never closed), and names one found before it "no element
    found (line 0)" (lxml 6.1.3, libxml2 2.14). The second parse costs about a tenth of
    the schema-validating one."""

    def __init__(self, source: Any) -> None:
        self._own = isinstance(source, (str, Path))
        self._file = open(source, "rb") if self._own else source  # noqa: SIM115
        self._parser = etree.XMLParser(target=_NoTree(), **_SAFE)
        self._error: etree.XMLSyntaxError | None = None
        # its prolog first, read before any parser reads it: given to them by ``read``
        self._head, self.doctype = _read_prolog(self._file)

    def read(self, size: int = -1) -> bytes:
        if self._head:
            cut = len(self._head) if size < 0 else size
            data, self._head = self._head[:cut], self._head[cut:]
        else:
            data = self._file.read(size)
        if data and self._error is None:
            try:
                self._parser.feed(data)
            except etree.XMLSyntaxError as exc:
                self._error = exc
        return data

    def check(self) -> None:
        if self._error is None:
            try:
                self._parser.close()
            except etree.XMLSyntaxError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        if self._own:
            self._file.close()


def _validating_iterparse(source: Any, schema: etree.XMLSchema,
                          **kwargs: Any) -> Iterator[tuple[str, Any]]:
    """``_iterparse`` validating against ``schema``, raising XMLSyntaxError for a
    document that is not well-formed, wherever the error is (``_WellFormed``), and
    _DoctypeDeclared, before anything is parsed, for one that declares a DOCTYPE."""
    checked = _WellFormed(source)
    try:
        if checked.doctype:
            raise _DoctypeDeclared
        yield from _iterparse(checked, schema=schema, **kwargs)
        checked.check()
    finally:
        checked.close()


class _DoctypeDeclared(Exception):
    """The document declares a DOCTYPE (``declares_doctype``): refused unparsed."""


def _doctype_problem(name: str) -> Problem:
    # no DTD or external entity is loaded here, but a PES file has no DTD: one that
    # declares it is not what pesgen writes nor what Hélios takes
    return Problem("xml.doctype", "the file declares a DOCTYPE; a PES file has none",
                   record=f"{name}:1")


@cache
def load_xsd(path: Path) -> etree.XMLSchema:
    """The XML schema at ``path``; what it includes or imports is read from its own
    folder tree only (``xsd_root``), never from elsewhere on disk nor the network."""
    path = Path(path).resolve()
    resolver = _ConfinedResolver(xsd_root(path))
    parser = _parser()
    parser.resolvers.add(resolver)
    try:
        schema = etree.XMLSchema(etree.parse(str(path), parser))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        if resolver.refused:
            raise resolver.error(path) from None
        if "could not build an URI" in str(exc):  # libxml2 names neither file nor line
            said = "; ".join(f"{where}: schemaLocation {location!r} is not a URI (write "
                             f"{quote(location, safe=_URI_SAFE)!r})"
                             for where, location in _not_uris(path))
            if said:
                raise UsageError(f"{path}: cannot load XML schema: {said}") from None
        raise UsageError(f"{path}: cannot load XML schema: {exc}") from None
    if resolver.refused:
        raise resolver.error(path)
    return schema


# what a schemaLocation keeps as it is, written as a URI (a space is %20)
_URI_SAFE = "/:@!$&'()*+,;=-._~%"


def _not_uris(path: Path, seen: set[Path] | None = None) -> list[tuple[str, str]]:
    """('file:line', schemaLocation) of each include, import or redefine of the XSD at
    ``path``, and of the XSDs it reaches, whose schemaLocation is no URI (a space, a
    backslash…), which libxml2 refuses without naming it."""
    seen = set() if seen is None else seen
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    root = _xsd_document(path)
    if root is None:
        return []
    found = []
    for el in root.iter(f"{_XS}include", f"{_XS}import", f"{_XS}redefine"):
        location = el.get("schemaLocation")
        if not location:
            continue
        if quote(location, safe=_URI_SAFE) != location:
            found.append((f"{path}:{el.sourceline}", location))
        elif "://" not in location:
            found += _not_uris((path.parent / unquote(location)).resolve(), seen)
    return found


def xsd_root(path: Path) -> Path:
    """The folder an XSD's includes and imports must stay in: the DGFiP package's (the
    folder holding PES_V2/), a format bundle's (the nearest folder with a format.yaml),
    pesgen's shipped schemas/, else the XSD's own folder."""
    from .resources import data_dir, inside

    shipped = data_dir("schemas").resolve()
    if inside(shipped, path):
        return shipped
    for folder in path.parents:
        if (folder / "format.yaml").is_file():
            return folder
    # the DGFiP package: its entries sit in PES_V2/Rev0/ and include ../NS_*/ beside it;
    # PES_V2 may have another name (renamed, or reached through a link resolved above)
    if len(path.parts) > 3 and path.parent.name == OFFICIAL_ENTRY[1]:
        return path.parents[2]
    return path.parent


# an empty schema read in place of a refused include, so that libxml2 goes on and the
# refusal is reported as pesgen's
_EMPTY_XSD = '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>'


class _ConfinedResolver(etree.Resolver):
    """Lets lxml read a schema's includes and imports from ``root`` only; notes the
    others (outside it, file:// elsewhere, http://…) as refused."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.refused: list[str] = []

    def resolve(self, url: str, _pubid: str | None, context: Any) -> Any:
        from urllib.parse import unquote, urlsplit

        from .resources import inside

        parts = urlsplit(url)
        if parts.scheme == "file" and parts.netloc in ("", "localhost"):
            local = unquote(parts.path)
        elif parts.scheme and len(parts.scheme) > 1:  # http://, ftp://… (not C:\)
            local = None
        else:
            local = url if Path(url).exists() else unquote(url)
        if local is not None:
            candidate = Path(local).resolve()
            if inside(self.root, candidate):
                return self.resolve_filename(str(candidate), context)
        self.refused.append(url)
        return self.resolve_string(_EMPTY_XSD, context)

    def error(self, path: Path) -> UsageError:
        where = ", ".join(f"'{shown(u)}'" for u in dict.fromkeys(self.refused))
        return UsageError(f"{path}: cannot load XML schema: it includes or imports {where}, "
                          f"outside {self.root} (a schema is read from its own folder only: "
                          "put what it includes beside it)")


def _by_version(package: Path) -> tuple[tuple[int, ...], str]:
    """A package folder's sort key: its version's numbers (schemas_pes_v5.9 before
    schemas_pes_v5.17, which a sort by name puts first), then its name."""
    return tuple(int(n) for n in re.findall(r"\d+", package.name)), package.name


def official_xsd_path(location: Path) -> Path:
    """Accept the DGFiP package folder, its PES_V2 folder, the entry file itself, or the
    folder holding exactly one package (``schemas_pes_*``)."""
    location = Path(location)
    if location.is_file():
        return location
    for candidate in (location.joinpath(*OFFICIAL_ENTRY), location.joinpath(*OFFICIAL_ENTRY[1:])):
        if candidate.is_file():
            return candidate
    # the folder that holds the package (schemas_pes_v5.17/ beside the DGFiP's documents)
    packages = sorted((p for p in location.glob("schemas_pes_*")
                       if p.joinpath(*OFFICIAL_ENTRY).is_file()), key=_by_version)
    if len(packages) == 1:
        return packages[0].joinpath(*OFFICIAL_ENTRY)
    if packages:
        raise UsageError(f"{location}: {len(packages)} DGFiP schema packages here "
                         f"({', '.join(p.name for p in packages)}): give the one to use, "
                         f"e.g. --official-xsd {packages[-1]} (the newest)")
    raise UsageError(f"{location}: no {'/'.join(OFFICIAL_ENTRY)} in this folder nor in a "
                     "schemas_pes_* folder of it (give the DGFiP PES V2 schema package, "
                     "the folder holding PES_V2/)")


@dataclass
class _BordereauCheck:
    """Accumulates what Hélios cross-checks in a bordereau while the file streams."""

    declared_count: int | None = None
    declared_total: Decimal | None = None
    issue_date: str | None = None
    asap_date: str | None = None
    typ_bord: str | None = None
    exer: str | None = None
    year: int | None = None  # Exer, when it is digits (for Cle2)
    pieces: int = 0
    total: Decimal = Decimal(0)
    debts: set[tuple[str, str | None]] = field(default_factory=set)  # (NumDette, Per)
    element: etree._Element | None = None  # the Bordereau
    # problems to be given their XPath once the document is read (see ``_locate``)
    located: dict[int, tuple[Problem, int, str]] = field(default_factory=dict)


def _v(el: etree._Element | None) -> str | None:
    return None if el is None else el.get("V")


# Within a Piece of pesgen's PES XSDs each of these names has one place (BlocPiece,
# InfoLignePiece, InfoPrelevementSEPA, Tiers and its Adresse and CpteBancaire), so one
# walk over them in document order reads a piece as its blocks do, without a path
# lookup per line (3x faster). The blocks whose fields are all read (BlocPiece, the
# SEPA block, InfoTiers) are read child by child: a walk's cost grows with the names
# it looks for, on every node of the piece.
_SEPA_KEY = ("NatPrel", "PerPrel", "DtePrel", "SequencePres", "DateSignMandat", "RefUniMdt")
_DEBIT, _SIGNED = _SEPA_KEY.index("DtePrel"), _SEPA_KEY.index("DateSignMandat")
_PIECE_WALK = ("BlocPiece", "InfoLignePiece", "MtHT", "InfoPrelevementSEPA", "InfoTiers", "CodRes",
               *BANK_RULES)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = frozenset("0123456789")
# pes.address's message (None: none) for each (CodRes, CodPays) seen
_RESIDENCES: dict[tuple[str | None, str | None], str | None] = {}
_ZERO = Decimal(0)


def _next_element(el: Any) -> Any:
    """The element after ``el``, past comments and processing instructions."""
    nxt = el.getnext()
    while nxt is not None and not isinstance(nxt.tag, str):
        nxt = nxt.getnext()
    return nxt


def _id_ligne(info: Any) -> Any:
    """A line's IdLigne (its InfoLignePiece's first child where the XSD puts it), or None
    when the line has none (a file the XSD refuses: its lines are still counted by their
    InfoLignePiece, each MtHT its own line's)."""
    first = info[0] if len(info) else None
    if first is not None and first.tag == "IdLigne":
        return first
    return info.find("IdLigne")


def _bic_of(iban: Any) -> str | None:
    """The BIC beside an IBAN (in its CpteBancaire), if any."""
    if isinstance(iban, _Spot):
        return iban.bic
    parent = iban.getparent()
    bic = None if parent is None else parent.find("BIC")
    return None if bic is None else bic.get("V")


# A piece of more lines than this is walked as the stream reads its lines
# (``_PieceWalk``), each line dropped once walked: held whole, a title of 50 000 lines
# (a 50 MB piece) took 1 GiB. A piece of fewer, nearly every one, is walked whole once
# read (``_check_piece``), as before.
STREAM_LINES = 256
_LINE_STEP = re.compile(r"/LigneDePiece(\[\d+\])?(?=/|$)")


class _Spot:
    """An element of a piece ``_PieceWalk`` read, as the checks read it once the element
    is dropped: its V, its line, its path inside the piece (as ``_locate`` writes it,
    the line's step numbered as in the file), the children the checks look up
    (``find``), the element after it (CodPays after a CodRes), an IBAN's BIC, an IdLigne's
    block's line."""

    __slots__ = ("v", "sourceline", "rest", "children", "after", "bic", "parent_line")

    def __init__(self, el: etree._Element, line: int | None, kids: bool = False,
                 where: bool = True) -> None:
        self.v = el.get("V")
        self.sourceline = el.sourceline
        self.rest = ""
        if where:
            rest = _PIECE_STEP.split(el.getroottree().getpath(el), maxsplit=1)[-1]
            # the lines before it are dropped: its own step says which line it is
            self.rest = rest if line is None else \
                _LINE_STEP.sub(f"/LigneDePiece[{line}]", rest, count=1)
        self.children: dict[str, _Spot] = {}
        if kids:
            for child in el:
                if isinstance(child.tag, str) and child.tag not in self.children:
                    self.children[child.tag] = _Spot(child, line)
        self.after: _Spot | None = None
        self.bic: str | None = None
        self.parent_line: int | None = None

    def get(self, key: str) -> str | None:
        return self.v if key == "V" else None

    def find(self, tag: str) -> _Spot | None:
        return self.children.get(tag)


class _PieceWalk:
    """``_check_piece``'s walk over a piece of more than STREAM_LINES lines, made as the
    stream reads them: ``start`` once that many are read (it walks them and drops them),
    ``line`` for each line read after, ``finish`` at the piece's end, which judges it as
    ``_check_piece`` does. What the checks read of a line is kept (its IdLigne, MtHT and
    SEPA values), and of each distinct debtor, residence, bank account and SEPA data the
    first element as a ``_Spot``; the lines themselves are dropped. The piece's other
    children (BlocPiece) stay until the piece is done, and are walked in place at
    ``start`` or, after the lines, at ``finish``."""

    def __init__(self, piece: etree._Element) -> None:
        self.piece = piece
        self.bloc: dict[str, str | None] = {}
        self.bloc_el: Any = piece
        self.line_ids: list[_Spot | None] = []  # each line's IdLigne (None: none)
        self.amounts: list[Decimal] = []
        self.preleves: list[tuple[_Spot, int, str | None, tuple[str | None, ...]]] = []
        self.debtors: dict[tuple[tuple[str, str | None], ...], _Spot] = {}
        self.banks: dict[tuple[str, str | None], _Spot] = {}
        self.residences: dict[tuple[str | None, str | None], _Spot] = {}
        # each SEPA data seen, kept once (the lines of a title nearly all share theirs)
        self.sepa_seen: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}
        self.lines = 0
        self.walked: list[etree._Element] = []  # the piece's children walked, not lines

    def start(self, last: etree._Element) -> None:
        """Walk the piece up to ``last``, its line just read, and drop the lines. (The
        stream's parser reads ahead of its events: lines after ``last`` may be in the
        tree already, each walked when its own event comes.)"""
        for child in self.piece:
            if child.tag == "LigneDePiece":
                self.lines += 1
                self._walk(child, self.lines)
            elif isinstance(child.tag, str):
                self.walked.append(child)
                self._walk(child, None)
            if child is last:
                break
        self._drop(last)

    def line(self, el: etree._Element) -> None:
        self.lines += 1
        self._walk(el, self.lines)
        self._drop(el)

    def finish(self, bord: _BordereauCheck, seen_ids: set[str], name: str,
               problems: list[Problem]) -> None:
        for child in self.piece:
            if isinstance(child.tag, str) and child.tag != "LigneDePiece" and \
                    not any(child is w for w in self.walked):
                self._walk(child, None)
        _judge_piece(self.piece, self.bloc, self.bloc_el, self.line_ids, self.amounts,
                     self.preleves, self.debtors, self.banks, self.residences, bord,
                     seen_ids, name, problems)

    def _drop(self, line: etree._Element) -> None:
        """``line`` emptied, and the lines before it gone (not ``line`` itself: the
        parser is still at its parent)."""
        line.clear(keep_tail=True)
        while (before := line.getprevious()) is not None and \
                not any(before is w for w in self.walked):
            self.piece.remove(before)

    def _walk(self, top: etree._Element, line: int | None) -> None:
        for el in top.iter(_PIECE_WALK):
            tag = el.tag
            if tag == "InfoLignePiece":
                id_ligne = _id_ligne(el)
                spot = None
                if id_ligne is not None:
                    spot = _Spot(id_ligne, line, where=False)
                    spot.parent_line = el.sourceline
                self.line_ids.append(spot)
                self.amounts.append(_ZERO)
            elif tag == "MtHT":
                mt = el.get("V")
                if self.amounts:
                    self.amounts[-1] = _AMOUNTS.get(mt) or _amount(mt)
            elif tag == "InfoTiers":
                key = tuple([(c.tag, c.get("V")) for c in el])
                if key not in self.debtors:
                    self.debtors[key] = _Spot(el, line, kids=True)
            elif tag == "CodRes":
                pays = _next_element(el)
                is_pays = pays is not None and pays.tag == "CodPays"
                where = (el.get("V"), pays.get("V") if is_pays else None)
                if where not in self.residences:
                    spot = self.residences[where] = _Spot(el, line)
                    spot.after = _Spot(pays, line) if pays is not None else None
            elif tag == "InfoPrelevementSEPA":
                values = {c.tag: c.get("V") for c in el}
                sepa = tuple([values.get(t) for t in _SEPA_KEY])
                # the first block of each SEPA data is the one the checks name
                first = sepa not in self.sepa_seen
                sepa = self.sepa_seen.setdefault(sepa, sepa)
                block = _Spot(el, line, kids=first, where=first)
                self.preleves.append((block, len(self.line_ids) - 1, values.get("MtPrel"),
                                      sepa))
            elif tag == "IBAN" or tag == "BIC":
                bank = (tag, el.get("V"))
                if bank not in self.banks:
                    spot = self.banks[bank] = _Spot(el, line)
                    spot.bic = _bic_of(el) if tag == "IBAN" else None
            else:  # BlocPiece
                self.bloc_el, self.bloc = el, {c.tag: c.get("V") for c in el}


def _check_piece(piece: etree._Element, bord: _BordereauCheck, seen_ids: set[str],
                 name: str, problems: list[Problem]) -> None:
    """The bordereau rules on one piece, and the title rules the XSD cannot express
    (``pesgen.checks``, Cle2, IBAN/BIC), in one walk. Problems come in a fixed order:
    the piece's, then by line in document order (two on one line in the order they are
    checked below), then SEPA data and debtors that differ between lines."""
    bloc: dict[str, str | None] = {}
    bloc_el = piece  # the BlocPiece
    line_ids: list[etree._Element | None] = []  # each line's IdLigne (None: none), in order
    amounts: list[Decimal] = []  # each line's MtHT
    # each SEPA block, the line it belongs to, its MtPrel and its SEPA data (_SEPA_KEY)
    preleves: list[tuple[etree._Element, int, str | None, tuple[str | None, ...]]] = []
    # each distinct InfoTiers (its fields and values) and where it first appears
    debtors: dict[tuple[tuple[str, str | None], ...], etree._Element] = {}
    banks: dict[tuple[str, str | None], etree._Element] = {}  # each distinct IBAN, BIC
    # each distinct (CodRes, CodPays) and its first CodRes; CodPays follows CodRes
    residences: dict[tuple[str | None, str | None], etree._Element] = {}
    for el in piece.iter(_PIECE_WALK):
        tag = el.tag
        if tag == "InfoLignePiece":
            line_ids.append(_id_ligne(el))
            amounts.append(_ZERO)
        elif tag == "MtHT":
            mt = el.get("V")
            if amounts:
                amounts[-1] = _AMOUNTS.get(mt) or _amount(mt)
        elif tag == "InfoTiers":
            debtors.setdefault(tuple([(c.tag, c.get("V")) for c in el]), el)
        elif tag == "CodRes":
            pays = _next_element(el)
            residences.setdefault((el.get("V"), pays.get("V") if pays is not None and
                                   pays.tag == "CodPays" else None), el)
        elif tag == "InfoPrelevementSEPA":
            values = {c.tag: c.get("V") for c in el}
            preleves.append((el, len(line_ids) - 1, values.get("MtPrel"),
                             tuple([values.get(t) for t in _SEPA_KEY])))
        elif tag == "IBAN" or tag == "BIC":
            banks.setdefault((tag, el.get("V")), el)
        else:  # BlocPiece
            bloc_el, bloc = el, {c.tag: c.get("V") for c in el}
    _judge_piece(piece, bloc, bloc_el, line_ids, amounts, preleves, debtors, banks,
                 residences, bord, seen_ids, name, problems)


def _judge_piece(piece: etree._Element, bloc: dict[str, str | None], bloc_el: Any,
                 line_ids: list[Any], amounts: list[Decimal],
                 preleves: list[tuple[Any, int, str | None, tuple[str | None, ...]]],
                 debtors: dict[tuple[tuple[str, str | None], ...], Any],
                 banks: dict[tuple[str, str | None], Any],
                 residences: dict[tuple[str | None, str | None], Any],
                 bord: _BordereauCheck, seen_ids: set[str], name: str,
                 problems: list[Problem]) -> None:
    """The checks of ``_check_piece`` on what its walk (or ``_PieceWalk``'s) read: the
    elements, or the ``_Spot`` of those a streamed piece dropped."""
    id_pce = bloc.get("IdPce")
    if id_pce in seen_ids:
        problems.append(Problem("pes.id-pce-unique", f"IdPce {id_pce} appears twice",
                                record=f"{name}:{piece.sourceline}"))
    seen_ids.add(id_pce or "")
    debt = bloc.get("NumDette")
    if debt is not None:
        key = (debt_key(debt), bloc.get("Per"))
        if key in bord.debts:
            problems.append(Problem("pes.num-dette-unique", f"NumDette {debt} (Per "
                                    f"{key[1]}) appears twice: two titles would share one "
                                    "payment reference", record=f"{name}:{piece.sourceline}"))
        bord.debts.add(key)
    triplet = (bord.typ_bord, bloc.get("TypPce"), bloc.get("NatPce"))
    said = _triplet_problem(*triplet)
    if said:
        problems.append(Problem("pes.triplet", f"TypBord/TypPce/NatPce "
                                f"{'/'.join(map(str, triplet))} is not allowed ({said})",
                                record=f"{name}:{piece.sourceline}"))
    edition = bloc.get("Edition")
    if edition is not None:
        problem = _edition_problem(edition, triplet[1], triplet[2])
        if problem:
            problems.append(Problem("pes.edition", f"Edition {edition}: {problem}",
                                    record=f"{name}:{piece.sourceline}"))
    piece_dte = bloc.get("DteAsp")
    if piece_dte and bord.issue_date and piece_dte < bord.issue_date:
        problems.append(Problem("pes.asap-date", f"piece DteAsp {piece_dte} before DteBordEm",
                                record=f"{name}:{piece.sourceline}"))
    by_line: list[tuple[int, Problem]] = []  # line problems, reported in document order
    # Cle2 (never Cle1, whose inputs depend on the mapping), when Exer, Per and NumDette
    # are digits (else the XSD says so)
    key2 = bloc.get("Cle2")
    if key2 is not None and debt is not None and bord.year is not None:
        per = bloc.get("Per")
        if per is not None and len(per) == 1 and per in _DIGITS and debt.isascii() and \
                debt.isdigit():
            if int(debt) > DEBT_KEYED_MAX:
                _locate(by_line, bord, name, "pes.num-dette-keys", f"NumDette {debt} has more "
                        f"than {DEBT_KEYED_DIGITS} significant digits: Cle2 is known over "
                        f"NumDette on {DEBT_KEYED_DIGITS} digits only", bloc_el.find("Cle2"))
            elif key2 != (expected := cle2(bord.year, per, debt)):
                _locate(by_line, bord, name, "pes.cle2", f"Cle2 is {key2}, Exer {bord.exer}, "
                        f"Per {per} and NumDette {debt} give {expected}", bloc_el.find("Cle2"))
    if len({_v(el) for el in line_ids}) < len(line_ids):
        seen_lines: set[str] = set()
        for el in line_ids:
            if el is None:
                continue  # no IdLigne (the XSD says so): nothing to compare
            id_ligne = el.get("V")
            if id_ligne in seen_lines:
                where = _line_of(el)
                by_line.append((where or 0, Problem(
                    "pes.id-ligne-unique", f"IdLigne {id_ligne} twice in piece {id_pce}",
                    record=f"{name}:{where}")))
            seen_lines.add(id_ligne or "")
    bord.total += sum(amounts, _ZERO)
    # each distinct SEPA data of the piece, and where it first appears
    sepa_keys: dict[tuple[str | None, ...], etree._Element] = {}
    for block, line, mt_prel, sepa in preleves:
        amount = amounts[line] if line >= 0 else _ZERO
        if mt_prel is not None and (_AMOUNTS.get(mt_prel) or _amount(mt_prel)) != amount:
            id_ligne = _v(line_ids[line]) if line >= 0 else None
            by_line.append((block.sourceline or 0, Problem(
                "pes.mt-prel", f"MtPrel differs from MtHT on line {id_ligne} of piece "
                f"{id_pce}", record=f"{name}:{block.sourceline}")))
        sepa_keys.setdefault(sepa, block)
    for sepa_key, block in sepa_keys.items():  # (the rule only fires when signed > debit)
        signed, debit = sepa_key[_SIGNED], sepa_key[_DEBIT]
        if signed and debit and signed > debit and _ISO_DATE.fullmatch(signed) and \
                _ISO_DATE.fullmatch(debit) and (message := mandate_date_problem(signed, debit)):
            _locate(by_line, bord, name, "sepa.mandate", message, block.find("DateSignMandat"))
        if debit and bord.issue_date and debit < bord.issue_date and \
                _ISO_DATE.fullmatch(debit) and _ISO_DATE.fullmatch(bord.issue_date) and \
                (message := debit_date_problem(debit, bord.issue_date)):
            _locate(by_line, bord, name, "sepa.debit-date", message, block.find("DtePrel"))
    for debtor, info in debtors.items():
        values = dict(debtor)
        codes = (values.get("CatTiers"), values.get("NatJur"), values.get("Civilite"),
                 not values.get("Prenom"), values.get("IdTiers"), values.get("NatIdTiers"),
                 _born(values))
        verdict = _DEBTOR_VERDICTS.get(codes)
        if verdict is None:
            verdict = _debtor_verdict(values)
            remember(_DEBTOR_VERDICTS, codes, verdict)
        for rule, message, target in verdict:
            at = None if target is None else info.find(target)  # (None: absent, the XSD says)
            _locate(by_line, bord, name, rule, message, info if at is None else at)
    for residence, el in residences.items():
        message = _RESIDENCES.get(residence, "")
        if message == "":
            res, pays = residence
            message = residence_problem(res == "0", pays) if res in ("0", "1") else None
            remember(_RESIDENCES, residence, message)
        if message:
            _locate(by_line, bord, name, "pes.address", message,
                    el if residence[1] is None else
                    el.after if isinstance(el, _Spot) else _next_element(el))
    for (tag, code), el in banks.items():
        if code and (message := checked_bank_code(tag, code)[1]):
            _locate(by_line, bord, name, BANK_RULES[tag], message, el)
        elif tag == "IBAN" and code and (message := bic_abroad_problem(code, _bic_of(el))):
            _locate(by_line, bord, name, "sepa.bic-abroad", message, el)
    if by_line:
        problems.extend(problem for _line, problem in sorted(by_line, key=lambda lp: lp[0]))
    if len(sepa_keys) > 1:
        problems.append(Problem("pes.sepa-same", f"piece {id_pce}: SEPA data differ between lines",
                                record=f"{name}:{piece.sourceline}"))
    if len(debtors) > 1:
        problems.append(Problem("pes.single-debtor", f"piece {id_pce} has more than one debtor",
                                record=f"{name}:{piece.sourceline}"))


# (rule, message, the InfoTiers child it points to or None for the InfoTiers), memoised
# by what the rules read of a debtor (its codes, civility, SIRET, whether it has a first
# name): the same few combinations come back on every piece
_DEBTOR_VERDICTS: dict[tuple[str | bool | None, ...],
                       tuple[tuple[str, str, str | None], ...]] = {}


def _debtor_verdict(values: dict[str, str | None]) -> tuple[tuple[str, str, str | None], ...]:
    """The rules on a debtor (an InfoTiers' values, once however many lines repeat it):
    the title rules' own checks (``pesgen.checks``) on the file's values."""
    category, civility = values.get("CatTiers"), values.get("Civilite")
    id_tiers, kind = values.get("IdTiers"), values.get("NatIdTiers")
    found = []
    if message := civility_problem(category, civility):
        found.append(("pes.civility", message, None if civility is None else "Civilite"))
    if message := first_name_problem(category, values.get("Prenom")):
        found.append(("pes.first-name", message, None))
    if message := grid_problem(category, values.get("NatJur")):
        found.append(("pes.cat-nat-grid", message, "NatJur"))
    born = _born(values)
    if message := birth_problem(category, born):
        found.append(("pes.birth-date", message, born))
    if id_tiers is not None or kind is not None:
        target = "IdTiers" if id_tiers is not None else "NatIdTiers"
        found += [("pes.id-tiers", message, target)
                  for message in id_tiers_problems(id_tiers, kind)]
    return tuple(found)


def _born(values: dict[str, str | None]) -> str | None:
    """The birth element an InfoTiers has (DteNaissance, else LieuNaissance), or None."""
    return next((tag for tag in ("DteNaissance", "LieuNaissance") if tag in values), None)


def _locate(by_line: list[tuple[int, Problem]], bord: _BordereauCheck, name: str, rule: str,
            message: str, el: etree._Element | None) -> None:
    """A problem at ``el`` (in the piece being checked): its line now, its XPath when
    the document is read (``_give_paths``), written as libxml2 writes a schema
    violation's, which needs the number of pieces in the bordereau."""
    assert el is not None
    line = el.sourceline or 0
    problem = Problem(rule, shown(message, MESSAGE_LIMIT), record=f"{name}:{line}")
    # past MAX_LISTED_VIOLATIONS located in a bordereau, the listing is full: the
    # problem will be counted, not listed
    if len(bord.located) < MAX_LISTED_VIOLATIONS:
        rest = el.rest if isinstance(el, _Spot) else \
            _PIECE_STEP.split(el.getroottree().getpath(el), maxsplit=1)[-1]
        bord.located[id(problem)] = (problem, bord.pieces, rest)
    by_line.append((line, problem))


def _give_paths(problems: list[Problem], bordereaux: list[_BordereauCheck]) -> None:
    """Append its XPath to each problem ``_locate`` made: the Bordereau's path, now
    that its siblings are known, then the piece's step (no index when it is the only
    piece) and the path inside the piece."""
    located: dict[int, tuple[Problem, str]] = {}
    for bord in bordereaux:
        if bord.element is None:
            continue
        base = bord.element.getroottree().getpath(bord.element)
        for key, (problem, k, rest) in bord.located.items():
            step = "/Piece" if bord.pieces == 1 else f"/Piece[{k}]"
            located[key] = (problem, base + step + rest)
    for i, problem in enumerate(problems):
        found = located.get(id(problem))
        if found is not None and found[0] is problem:
            problems[i] = replace(problem, record=f"{problem.record} {found[1]}")


_AMOUNTS: dict[str | None, Decimal] = {}  # amounts come back: each is parsed once


def _amount(text: str | None) -> Decimal:
    """An MtHT or MtPrel as a Decimal (0 when it is not a number: the XSD says so)."""
    found = _AMOUNTS.get(text)
    if found is None:
        found = _number(text, Decimal) or _ZERO
        remember(_AMOUNTS, text, found)
    return found


def _number(text: str | None, kind: type[Any]) -> Any:
    """The value of a numeric V attribute, or None when it is absent or not a number
    (the XSD reports that; the bordereau checks must not stop on it)."""
    if not text:
        return None
    try:
        return kind(text)
    except (ValueError, ArithmeticError):
        return None


def _line_of(id_ligne: Any) -> int | None:
    """The line of an IdLigne's block (InfoLignePiece), as problems name it."""
    if isinstance(id_ligne, _Spot):
        return id_ligne.parent_line
    parent = id_ligne.getparent()
    return (parent if parent is not None else id_ligne).sourceline


def _triplet_problem(typ_bord: str | None, typ_pce: str | None,
                     nat_pce: str | None) -> str | None:
    """What DT Annexe 2 allows instead of this triplet, or None when it allows it (or
    the bordereau's TypBord is not one it has: said once, by the bordereau's check)."""
    takes = RECETTE_TRIPLETS.get(typ_bord or "")
    if takes is None:
        return None
    if typ_bord == "06":
        return None if (typ_pce, nat_pce) == ORMC_TRIPLET[1:] else "ORMC: 06/15/01"
    nat = takes.get(typ_pce or "")
    if nat is None:
        return f"TypBord {typ_bord} takes TypPce {', '.join(takes)}; DT Annexe 2"
    if nat_pce in nat:
        return None
    if (typ_bord, typ_pce) == ("01", "01"):
        return f"titre ordinaire 01/01: NatPce {', '.join(sorted(nat))}"
    return f"{typ_bord}/{typ_pce}: NatPce {', '.join(sorted(nat))}; DT Annexe 2"


def _typ_bord_problem(typ_bord: str | None) -> str | None:
    """A TypBord Hélios rejects, whatever its pieces (04, 05: the XSD lists them)."""
    if typ_bord is None or typ_bord in RECETTE_TRIPLETS:
        return None
    return (f"TypBord {typ_bord} is not a Recette bordereau Hélios takes (01, 02, 03 or "
            "06: DT Annexe 2; 04 is rejected: DT TTypBordAller)")


def _edition_problem(edition: str, typ_pce: str | None, nat_pce: str | None) -> str | None:
    """Edition x TypPce/NatPce compatibility (DT-RA BlocPiece/Edition; DT Annexe 2)."""
    if typ_pce == "15" and edition not in ("03", "06"):
        return "not allowed on an ORMC title (TypPce 15 takes 03 or 06)"
    if edition in ("03", "06") and typ_pce != "15":
        return f"allowed only on ORMC titles (TypPce 15), not on TypPce {typ_pce}"
    if edition == "01" and not (typ_pce == "01" and nat_pce in EDITION_01_NATPCE
                                or typ_pce == "10" and nat_pce in ("01", "02")):
        return f"not allowed on TypPce {typ_pce} / NatPce {nat_pce}"
    if edition == "05" and (typ_pce, nat_pce) != ("01", "01"):
        return "allowed only on TypPce 01 / NatPce 01"
    return None


def _close_bordereau(bord: _BordereauCheck, name: str, line: int | None,
                     problems: list[Problem]) -> None:
    where = f"{name}:{line}" if line else name
    if bord.declared_count is not None and bord.declared_count != bord.pieces:
        problems.append(Problem("pes.nbr-pce", f"NbrPce is {bord.declared_count}, the bordereau "
                                f"has {bord.pieces} pieces", record=where))
    if bord.pieces > MAX_PIECES:
        problems.append(Problem("pes.max-pieces", f"{bord.pieces} pieces; at most {MAX_PIECES} "
                                "per bordereau", record=where))
    if bord.declared_total is not None and bord.declared_total != bord.total:
        problems.append(Problem("pes.mt-bord-ht", f"MtBordHt is {bord.declared_total}, the lines "
                                f"add up to {bord.total}", record=where))
    if bord.asap_date and bord.issue_date and bord.asap_date < bord.issue_date:
        problems.append(Problem("pes.asap-date", f"DteAsp {bord.asap_date} is before DteBordEm "
                                f"{bord.issue_date}", record=where))


# Up to this size an invalid file is re-read as one tree to list its violations; above
# it, piece by piece. Memory (a 230 MiB file makes a 4 GiB tree) and time: libxml2 names
# each violation by its XPath, counting the node's preceding siblings, so a tree of n
# pieces with a violation in each costs n^2 (a 1 MiB file of bad pieces took 41 s).
TREE_LISTING_MAX_BYTES = 256 * 2**10
# A refused file lists at most this many violations (then says it stopped): the first
# ones are what a technician fixes; listing 100 000 only costs time and memory.
MAX_LISTED_VIOLATIONS = 1000
_PIECE_STEP = re.compile(r"/Piece(\[\d+\])?(?=/|$)")


def _schema_errors(path: Path, xsd: Path, label: str) -> list[Problem]:
    """Every violation of a file against ``xsd``, with line and XPath (used once a
    stream failed)."""
    schema = load_xsd(xsd)
    if path.stat().st_size > TREE_LISTING_MAX_BYTES:
        return schema_errors_by_piece(path, schema, label, piece_lines(xsd))
    return _tree_errors(path, schema, label)


def _not_well_formed(name: str, exc: etree.XMLSyntaxError, label: str) -> list[Problem]:
    # the parser's message without the "(file, line n)" lxml adds: the record names the
    # file and line, and the file parsed may be an export's temporary one (.pesgen-….part)
    said = getattr(exc, "msg", None) or str(exc)
    return [Problem(f"xml.{label}", f"not well-formed: {shown(said, MESSAGE_LIMIT)}",
                    record=f"{name}:{exc.lineno}")]


def _tree_errors(path: Path, schema: etree.XMLSchema, label: str) -> list[Problem]:
    """The file validated as one tree (of at most TREE_LISTING_MAX_BYTES: read whole, so
    that bytes its declared encoding cannot decode are an XMLSyntaxError naming their
    line, which ``etree.parse`` of the file's name raises as an OSError without one)."""
    try:
        doc = etree.fromstring(path.read_bytes(), _parser(), base_url=str(path)).getroottree()
    except etree.XMLSyntaxError as exc:
        return _not_well_formed(path.name, exc, label)
    return tree_violations(doc, path.name, schema, label)


def tree_violations(doc: etree._ElementTree, name: str, schema: etree.XMLSchema,
                    label: str) -> list[Problem]:
    """Every violation of a document already parsed (``name``: its file's), with line and
    XPath: what ``validate_against`` lists for its file."""
    schema.validate(doc)
    problems = [Problem(f"xsd.{label}", shown(e.message, MESSAGE_LIMIT),
                        record=f"{name}:{e.line} {e.path}")
                for _, e in zip(range(MAX_LISTED_VIOLATIONS), schema.error_log, strict=False)]
    if len(schema.error_log) > MAX_LISTED_VIOLATIONS:
        problems.append(_stopped(name, label))
    return problems


def _up_to(el: etree._Element,
           children: list[etree._Element] | None = None) -> etree._ElementTree:
    """A document made of ``el``'s ancestors (shallow), what precedes it at each level
    and ``el`` itself (deep copies): the live tree cannot be validated as it is, since
    the parser reads ahead and it may already hold the start of what follows. Each copy
    sits at the same child index as its original (see ``_live_node``). ``el`` is not
    the root. With ``children`` (the first of ``el``'s children), ``el`` is copied with
    those alone (a slice of a piece, ``_Slices``)."""
    chain = [*reversed(list(el.iterancestors())), el]
    root = etree.Element(chain[0].tag, dict(chain[0].attrib), nsmap=chain[0].nsmap)
    here = root
    for node, child in zip(chain, chain[1:], strict=False):
        for before in node:
            if before is child:
                break
            here.append(copy.deepcopy(before))
        if child is not el:
            here = etree.SubElement(here, child.tag, dict(child.attrib))
        elif children is None:
            here.append(copy.deepcopy(el))
        else:
            here = etree.SubElement(here, el.tag, dict(el.attrib))
            here.extend(copy.deepcopy(c) for c in children)
    return etree.ElementTree(root)


# libxml2's violation of a child its parent's content model does not expect: the
# parent's later children are then not validated (nor its end)
_NOT_EXPECTED = "This element is not expected"


@dataclass
class _Slices:
    """A piece of more than STREAM_LINES lines, listed a slice of lines at a time
    (``schema_errors_by_piece``): a copy of what precedes the piece (envelope, header),
    of the piece's children before its first line and of STREAM_LINES lines (the last
    slice: the lines left and what follows them), validated as the stream reads them,
    then dropped from the live piece. As validating the piece whole: a piece's lines are
    repeated elements (``piece_lines``: ``maxOccurs="unbounded"``), so that the content
    model is in the same state after each line of a kind; of a kind before the one read
    (Corail's LignePiece before its ASAPLigneFacturation), the last line stays in every
    slice, for the next lines to follow it (its violations, found again, are listed
    once). A violation of the piece's end is its last slice's; one of the piece's content
    model (an unexpected child) ends the piece's listing, as libxml2 does. XPaths are
    numbered as in the file (``dropped``, ``step``)."""

    piece: etree._Element
    head: int  # the piece's children before its first line, in every slice
    lines: frozenset[str]
    dropped: dict[str, int] = field(default_factory=dict)  # lines validated and dropped
    broken: bool = False  # its content model was violated: the rest is not validated
    total: dict[str, int] | None = None  # the piece's lines of each tag, once all read

    def cut(self, upto: int, following: str) -> None:
        """Drops the lines validated, from its head up to child ``upto`` (excluded), but
        the last of each tag, for the next slice's lines to follow them in the same
        state of the content model (Corail's last LignePiece before its
        ASAPLigneFacturation); the last of them all goes too when the line read next
        (``following``) is of its tag, which puts the model in the same state. Other
        children stay (all go once the piece is broken: nothing more is validated)."""
        children = self.piece[self.head:upto]
        lines = [c for c in children if c.tag in self.lines]
        kept = {id(c) for c in {c.tag: c for c in lines}.values()}
        if lines and lines[-1].tag == following:
            kept.discard(id(lines[-1]))
        gone = [c for c in children if self.broken or
                (c.tag in self.lines and id(c) not in kept)]
        self._count(gone, self.dropped)
        for child in gone:
            self.piece.remove(child)

    def tally(self) -> None:
        """The piece's lines of each tag: those dropped and those it holds."""
        self.total = dict(self.dropped)
        self._count(self.piece[self.head:], self.total)

    def step(self, tag: str, n: int) -> str:
        """The XPath step of the piece's ``n``th line of ``tag``: numbered unless it is
        the piece's only one (as libxml2 and ``getpath`` write it)."""
        if self.total is None:  # the listing stopped inside the piece
            self.tally()
        assert self.total is not None
        return f"/{tag}[{n}]" if self.total.get(tag, 0) > 1 else f"/{tag}"

    def _count(self, children: list[etree._Element], into: dict[str, int]) -> None:
        for child in children:
            if child.tag in self.lines:
                into[child.tag] = into.get(child.tag, 0) + 1


def _live_node(tree: etree._ElementTree, live_root: etree._Element,
               xpath: str) -> etree._Element | None:
    """The live node an error in ``tree`` (a copy made by ``_up_to``) names: same child
    indices from the root. Copies lose lines past 65 535; the live nodes keep them."""
    try:
        found = tree.xpath(xpath, namespaces={k: v for k, v in
                                              tree.getroot().nsmap.items() if k})
    except etree.XPathError:
        return None
    if not found or not isinstance(found[0], etree._Element):
        return None
    steps = []
    node = found[0]
    while (parent := node.getparent()) is not None:
        steps.append(parent.index(node))
        node = parent
    live = live_root
    for step in reversed(steps):
        if step >= len(live):
            return None
        live = live[step]
    return live


def schema_errors_by_piece(path: Path, schema: etree.XMLSchema, label: str,
                           lines: frozenset[str]) -> list[Problem]:
    """The same list as validating the whole tree, in flat memory.

    The PES schemas have no identity constraints and a bordereau's header does not
    depend on its pieces (see streamcheck.py), so the document is read as a stream and,
    at the end of each piece, a copy of the envelope, the bordereau's header and that
    piece is validated (earlier pieces are dropped from the live tree); a piece of more
    than STREAM_LINES ``lines`` (``piece_lines`` of the schema's XSD), a slice of its
    lines at a time (``_Slices``); at the end, the live tree once more, for what follows
    the last piece. A violation seen again (the header's, at every piece) is listed
    once. Lines come from the live nodes; XPaths are made at the end, when every sibling
    of a node is known (as in the whole tree)."""
    name = path.name
    seen: set[tuple[int, str]] = set()
    # violations inside a piece (dropped later): (line, order found, message, its
    # parent, the piece's index, the XPath inside the piece, and in a sliced piece its
    # line's tag and number); elsewhere: (line, order found, message, live node or
    # None, XPath as reported)
    in_pieces: list[tuple[int, int, str, etree._Element, int, str,
                          tuple[_Slices, str, int] | None]] = []
    elsewhere: list[tuple[int, int, str, etree._Element | None, str]] = []
    # pieces read, by parent: once the file is read to its end, how many each holds
    placed: dict[etree._Element | None, int] = {}
    sliced: set[etree._Element] = set()  # pieces listed by slices: theirs alone
    line_step = re.compile("/(" + "|".join(map(re.escape, sorted(lines))) +
                           r")(\[\d+\])?(?=/|$)")

    def collect(tree: etree._ElementTree, live_root: etree._Element,
                piece: etree._Element | None = None, index: int = 0,
                part: _Slices | None = None, last: bool = True) -> None:
        if schema.validate(tree):
            return
        for e in schema.error_log:
            live = _live_node(tree, live_root, e.path)
            if live is not None and sliced:
                owner = next((a for a in (live, *live.iterancestors("Piece")) if a in sliced),
                             None)
                if owner is not None and owner is not piece:
                    continue  # a sliced piece's remains, listed by its slices
            if part is not None:
                if live is not None and live.getparent() is piece and \
                        _NOT_EXPECTED in e.message:
                    part.broken = True
                if not last and live is piece:
                    continue  # the piece's end is its last slice's
            line = (live.sourceline if live is not None else None) or e.line
            if (line, e.message) in seen:
                continue
            if len(seen) >= MAX_LISTED_VIOLATIONS:
                raise _Enough
            seen.add((line, e.message))
            inside = piece is not None and live is not None and (
                live is piece or any(a is piece for a in live.iterancestors("Piece")))
            if inside:
                assert piece is not None
                rest = _PIECE_STEP.split(e.path, maxsplit=1)[-1]
                spot = None
                if part is not None and (step := line_step.match(rest)):
                    k = int(step.group(2)[1:-1]) if step.group(2) else 1
                    spot = (part, step.group(1), part.dropped.get(step.group(1), 0) + k)
                    rest = rest[step.end():]
                in_pieces.append((line, len(seen), e.message, piece.getparent(), index, rest,
                                  spot))
            else:
                elsewhere.append((line, len(seen), e.message, live, e.path))

    def cut(part: _Slices, upto: int, index: int, following: str | None) -> None:
        """Validates the piece's lines from its head up to child ``upto`` (excluded),
        with its head; drops them as ``_Slices.cut`` does (``following``: the tag of the
        line read next), or, without one, keeps them: the last slice, whose lines the
        live tree's end is checked with again, and finds them listed."""
        piece = part.piece
        if not part.broken:
            assert tree is not None  # cut is called once the loop below has read an element
            collect(_up_to(piece, list(piece[:upto])), tree.getroot(), piece, index, part,
                    last=following is None)
        if following is None:
            part.tally()
        else:
            part.cut(upto, following)

    tree = None
    held = 0  # the current piece's lines held
    part: _Slices | None = None
    events = _iterparse(str(path), events=("end",), tag=("Piece", "Bordereau", *lines))
    try:
        for _event, el in events:
            tree = el.getroottree()
            if el.tag in lines:
                piece = el.getparent()
                if piece is None or piece.tag != "Piece":
                    continue
                held += 1
                if held > STREAM_LINES:
                    if part is None:
                        first = next(i for i, c in enumerate(piece) if c.tag in lines)
                        part = _Slices(piece, first, lines)
                        sliced.add(piece)
                    cut(part, piece.index(el), placed.get(piece.getparent(), 0) + 1, el.tag)
                    held = 1
                continue
            if el.tag == "Bordereau":
                continue
            parent = el.getparent()
            index = placed[parent] = placed.get(parent, 0) + 1
            if parent is not None:
                for previous in list(parent.iterchildren("Piece")):
                    if previous is el:
                        break  # later ones may already be read ahead: their turn comes
                    parent.remove(previous)
                    sliced.discard(previous)
            if part is not None and part.piece is el:
                cut(part, len(el), index, None)
            else:
                collect(_up_to(el), tree.getroot(), el, index)
            held, part = 0, None
        if tree is None:  # no piece and no bordereau: nothing to stream
            return _tree_errors(path, schema, label)
        collect(tree, tree.getroot())  # what follows the last piece; bordereaux without one
        stopped = False
    except etree.XMLSyntaxError as exc:
        return _not_well_formed(name, exc, label)
    except _Enough:
        stopped = True
        # an XPath numbers a piece, or a line, unless it is its parent's only one: the
        # rest is read, validating nothing, to count them
        try:
            for _event, el in events:
                if el.tag == "Bordereau":
                    continue
                if el.tag == "Piece":
                    parent = el.getparent()
                    placed[parent] = placed.get(parent, 0) + 1
                    if part is not None and part.piece is el:
                        part.tally()
                el.clear(keep_tail=True)  # a line stays, empty, for its piece's tally
        except etree.XMLSyntaxError as exc:  # as the whole tree says it
            return _not_well_formed(name, exc, label)
    assert tree is not None
    listed: list[tuple[int, int, str, str]] = []
    for line, order, message, parent, k, rest, spot in in_pieces:
        step = "/Piece" if placed.get(parent) == 1 else f"/Piece[{k}]"
        if spot is not None:
            part, tag, n = spot
            rest = part.step(tag, n) + rest
        listed.append((line, order, message, tree.getpath(parent) + step + rest))
    for line, order, message, live, xpath in elsewhere:
        if live is not None and live.getroottree().getroot() is tree.getroot():
            xpath = tree.getpath(live)
        listed.append((line, order, message, xpath))
    problems = [Problem(f"xsd.{label}", shown(message, MESSAGE_LIMIT),
                        record=f"{name}:{line} {xpath}")
                for line, _order, message, xpath in sorted(listed, key=lambda x: x[:2])]
    if stopped:
        problems.append(_stopped(name, label))
    return problems


class _Enough(Exception):
    """MAX_LISTED_VIOLATIONS reached: stop reading."""


def _stopped(name: str, label: str) -> Problem:
    return Problem(f"xsd.{label}", f"listing stopped after {MAX_LISTED_VIOLATIONS} "
                   "violations: correct these and validate again", record=name)


@dataclass
class StreamResult:
    """What one streaming pass found: problems, and the bordereau figures it saw."""

    problems: list[Problem]
    pieces: int = 0
    total: Decimal = Decimal(0)
    declared_count: int | None = None
    declared_total: Decimal | None = None
    schema_error: bool = False
    dropped: int = 0  # bordereau problems past MAX_LISTED_VIOLATIONS, not kept
    doctype: bool = False  # the document declares one: refused, nothing else read


def stream_check(source: Any, schema: etree.XMLSchema, name: str,
                 check_totals: bool = True,
                 lines: frozenset[str] = frozenset()) -> StreamResult:
    """One streaming pass over a PES_Aller document (a path or a binary file object):
    XSD validation while parsing, plus the bordereau rules. With ``check_totals`` false,
    NbrPce and MtBordHt are reported, not compared (the header is provisional). A
    document declaring a DOCTYPE is refused unparsed (``doctype``: xml.doctype alone).
    The ``lines`` of a piece outside a bordereau (``piece_lines`` of the schema's XSD:
    Corail's), which no rule reads, are dropped as they are read: held whole, a Corail
    title of 50 000 lines took 215 MiB."""
    result = StreamResult([])
    problems = result.problems
    bord: _BordereauCheck | None = None
    seen_ids: set[str] = set()
    bordereaux: list[_BordereauCheck] = []  # those with problems to locate
    read = 0  # the lines of the piece being read
    walk: _PieceWalk | None = None  # its walk, once it has more than STREAM_LINES
    try:
        for _event, el in _validating_iterparse(
                source, schema, events=("end",),
                tag=("BlocBordereau", "Piece", "Bordereau", *lines | {"LigneDePiece"})):
            tag = el.tag
            if bord is None and tag in lines:
                piece = el.getparent()
                if piece is not None and piece.tag == "Piece":
                    el.clear(keep_tail=True)
                    while el.getprevious() is not None:
                        del piece[0]
            elif tag == "LigneDePiece":
                read += 1
                if walk is not None:
                    walk.line(el)
                elif read > STREAM_LINES and bord is not None:
                    parent = el.getparent()
                    if parent is not None and parent.tag == "Piece":
                        walk = _PieceWalk(parent)
                        walk.start(el)
            elif tag == "BlocBordereau":
                exer = _v(el.find("Exer"))
                bord = _BordereauCheck(
                    declared_count=_number(_v(el.find("NbrPce")), int),
                    declared_total=_number(_v(el.find("MtBordHt")), Decimal),
                    issue_date=_v(el.find("DteBordEm")), asap_date=_v(el.find("DteAsp")),
                    typ_bord=_v(el.find("TypBord")), exer=exer, year=int(exer) if exer and
                    exer.isascii() and exer.isdigit() else None, element=el.getparent())
                said = _typ_bord_problem(bord.typ_bord)
                if said:  # (said once for the bordereau, at its TypBord)
                    problems.append(Problem("pes.triplet", said, record=f"{name}:"
                                            f"{el.find('TypBord').sourceline}"))
                result.declared_count = bord.declared_count
                result.declared_total = bord.declared_total
                seen_ids = set()
            elif tag == "Piece":
                if bord is not None:
                    bord.pieces += 1
                    if walk is not None:
                        walk.finish(bord, seen_ids, name, problems)
                    else:
                        _check_piece(el, bord, seen_ids, name, problems)
                    if len(problems) > MAX_LISTED_VIOLATIONS:  # keep the first ones, and count
                        result.dropped += len(problems) - MAX_LISTED_VIOLATIONS
                        del problems[MAX_LISTED_VIOLATIONS:]
                read, walk = 0, None
                # read and validated: dropped, in a bordereau or not (a finance package's
                # import, Corail's, has pieces and no BlocBordereau: kept, its tree grew
                # to 1.6 GB at 50 000 titles)
                el.clear(keep_tail=True)
                parent = el.getparent()
                while el.getprevious() is not None and parent is not None:
                    del parent[0]
            elif tag == "Bordereau" and bord is not None:
                result.pieces += bord.pieces
                result.total += bord.total
                if not check_totals:
                    bord.declared_count = bord.declared_total = None
                _close_bordereau(bord, name, el.sourceline, problems)
                el.clear(keep_tail=True)
                if bord.located:
                    bord.debts.clear()
                    bordereaux.append(bord)
                bord = None
    except etree.XMLSyntaxError:
        result.schema_error = True
    except _DoctypeDeclared:
        result.doctype = True
        problems.append(_doctype_problem(name))
    if bord is not None and bord.located:  # the document stopped inside it
        bordereaux.append(bord)
    if bordereaux:
        _give_paths(problems, bordereaux)
    return result


def xsd_label(xsd: Path) -> str:
    """The rule suffix of problems found by ``xsd``: ``pesgen`` for an XSD pesgen ships
    under schemas/ (its PES XSDs, stricter subsets of the DGFiP's), ``bundle`` for a
    format bundle's own (a finance package's import: xsd.bundle, xml.bundle)."""
    from .resources import data_dir, inside

    return "pesgen" if inside(data_dir("schemas"), xsd) else "bundle"


_XS = "{http://www.w3.org/2001/XMLSchema}"


@cache
def declares_bordereaux(xsd: Path) -> bool:
    """Whether ``xsd`` declares a ``BlocBordereau`` element: the PES bordereau rules
    (``stream_check``: NbrPce, MtBordHt, IdPce, NumDette, Cle2...) apply to a file of it.
    A file without one (Corail's ImportCosoluce) is checked by its XSD alone."""
    try:
        root = etree.parse(str(xsd), _parser()).getroot()
    except (OSError, etree.XMLSyntaxError):
        return False
    return any(el.get("name") == "BlocBordereau" for el in root.iter(f"{_XS}element"))


@cache
def piece_lines(xsd: Path) -> frozenset[str]:
    """The lines of a piece in a file of ``xsd``: the children the type of its ``Piece``
    element repeats without bound (``maxOccurs="unbounded"``, one at most required), read
    from ``xsd`` and the XSDs it includes or imports (inside its ``xsd_root``):
    LigneDePiece in the PES (pesgen's XSDs, the DGFiP's, JVS's), LignePiece and
    ASAPLigneFacturation in Corail's. A piece of more than STREAM_LINES of them is
    listed a slice at a time (``_Slices``), right because the content model is in the
    same state after each of a run of them. Types are found by local name: a child is a
    line only if every type of that name repeats it so. None when a Piece's type is not
    one plain sequence of elements (a choice, a group, an extension, a redefined or
    missing type): its pieces are then listed whole (the same list, more memory)."""
    from .resources import inside

    entry = Path(xsd).resolve()
    root = xsd_root(entry)
    files: dict[Path, etree._Element] = {}
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        try:
            files[path] = etree.parse(str(path), _parser()).getroot()
        except (OSError, etree.XMLSyntaxError):
            return frozenset()
        for ref in files[path].iter(f"{_XS}include", f"{_XS}import"):
            where = ref.get("schemaLocation")
            # what load_xsd would refuse (outside the root, a URL) never gets here
            if where and ":" not in where and inside(root, path.parent / where):
                todo.append((path.parent / where).resolve())
    schemas = list(files.values())
    if any(next(s.iter(f"{_XS}redefine", f"{_XS}override"), None) is not None
           for s in schemas):
        return frozenset()
    named: dict[str, list[etree._Element]] = {}
    for schema in schemas:
        for ctype in schema.iter(f"{_XS}complexType"):
            if ctype.get("name"):
                named.setdefault(ctype.get("name"), []).append(ctype)
    repeated: set[str] = set()
    bounded: set[str] = set()
    for schema in schemas:
        for piece in schema.iter(f"{_XS}element"):
            if piece.get("name") != "Piece":
                continue
            ref = piece.get("type")
            types = named.get(ref.split(":")[-1], []) if ref else \
                list(piece.iterchildren(f"{_XS}complexType"))
            if not types:
                return frozenset()
            for ctype in types:
                particles = _sequence_of(ctype)
                if particles is None:
                    return frozenset()
                for particle in particles:
                    name = particle.get("name") or (particle.get("ref") or "").split(":")[-1]
                    if particle.get("maxOccurs") == "unbounded" and \
                            particle.get("minOccurs", "1") in ("0", "1"):
                        repeated.add(name)
                    else:
                        bounded.add(name)
    return frozenset(repeated - bounded)


_NOT_CONTENT = frozenset(f"{_XS}{t}" for t in
                         ("annotation", "attribute", "attributeGroup", "anyAttribute"))


def _sequence_of(ctype: etree._Element) -> list[etree._Element] | None:
    """The element particles of a complex type whose content is one plain sequence of
    elements (occurring once); None for any other content."""
    model = [c for c in ctype if isinstance(c.tag, str) and c.tag not in _NOT_CONTENT]
    if len(model) != 1 or model[0].tag != f"{_XS}sequence" or \
            model[0].get("minOccurs", "1") != "1" or model[0].get("maxOccurs", "1") != "1":
        return None
    particles = [c for c in model[0] if isinstance(c.tag, str) and
                 c.tag != f"{_XS}annotation"]
    if any(p.tag != f"{_XS}element" for p in particles):
        return None
    return particles


# the bordereau rules comparing a bordereau's header with all its pieces
_COUNTS = frozenset({"pes.nbr-pce", "pes.mt-bord-ht"})


def validate_pes_file(path: Path, xsd: Path, official: Path | None = None) -> list[Problem]:
    """Stream-validate a PES_Aller file against ``xsd`` and the bordereau rules (which
    find nothing to check in a file without BlocBordereau); then against the official
    DGFiP package if given. Returns every problem found; those of ``xsd`` are
    ``xsd.pesgen`` or ``xsd.bundle`` (``xsd_label``)."""
    schema = load_xsd(xsd)
    result = stream_check(str(path), schema, path.name, lines=piece_lines(xsd))
    problems = result.problems
    if result.doctype:
        return problems
    if result.dropped:
        problems.append(Problem("pes.listing", f"listing stopped after "
                                f"{MAX_LISTED_VIOLATIONS} bordereau problems "
                                f"({result.dropped} more): correct these and validate again",
                                record=path.name))
    label = xsd_label(xsd)
    if result.schema_error:
        errors = _schema_errors(path, xsd, label)
        if any(p.rule == f"xml.{label}" for p in errors):
            # not well-formed: its bordereaux' counts are not the file's (lxml 6.2's
            # iterparse ends the elements a file cut short left open, and their
            # bordereau is closed on what was read of it)
            problems[:] = [p for p in problems if p.rule not in _COUNTS]
        problems.extend(errors)
    # a file that is not well-formed is said so once: the DGFiP package's parser would
    # stop at the same byte with the same message
    if official is not None and not any(p.rule == f"xml.{label}" for p in problems):
        problems.extend(validate_against(path, official_xsd_path(official), "dgfip"))
    return problems


def validate_against(path: Path, xsd: Path, label: str) -> list[Problem]:
    schema = load_xsd(xsd)
    try:
        for _event, el in _validating_iterparse(str(path), schema, events=("end",)):
            if el.tag == "Piece":
                el.clear(keep_tail=True)
                parent = el.getparent()
                while el.getprevious() is not None and parent is not None:
                    del parent[0]
    except etree.XMLSyntaxError:
        return _schema_errors(path, xsd, label)
    except _DoctypeDeclared:
        return [_doctype_problem(path.name)]
    return []


@cache
def _xsd_document(xsd: Path) -> etree._Element | None:
    """An XSD's root element, parsed once (safe parser) for what ``xsd_typfics`` and
    ``xsd_roots`` read of it; None when it does not load."""
    try:
        return etree.parse(str(xsd), _parser()).getroot()
    except (OSError, etree.XMLSyntaxError):
        return None


@cache
def xsd_typfics(xsd: Path) -> frozenset[str]:
    """The TypFic values an XSD allows (the enumeration of its ``TypFic`` element's V
    attribute, through named or inline types): what tells a PES file's format. Empty
    when the XSD has no such element."""
    root = _xsd_document(xsd)
    if root is None:
        return frozenset()
    named = {el.get("name"): el for el in root
             if el.tag in (f"{_XS}complexType", f"{_XS}simpleType")}

    def local(ref: str | None) -> etree._Element | None:
        return named.get(ref.split(":")[-1]) if ref else None

    values: set[str] = set()
    for element in root.iter(f"{_XS}element"):
        if element.get("name") != "TypFic":
            continue
        for complex_ in [local(element.get("type")), *element.iter(f"{_XS}complexType")]:
            if complex_ is None:
                continue
            for attr in complex_.iter(f"{_XS}attribute"):
                if attr.get("name") != "V":
                    continue
                for simple in [local(attr.get("type")), attr]:
                    if simple is not None:
                        values.update(e.get("V") or e.get("value") or ""
                                      for e in simple.iter(f"{_XS}enumeration"))
    values.discard("")
    return frozenset(values)


def file_typfic(path: Path) -> str | None:
    """A PES file's TypFic (``Parametres/TypFic/@V``), read from its first elements;
    None when there is none before the first bordereau. Raises XMLSyntaxError when the
    file is not well-formed before it."""
    return _file_head(path)[1]


def _file_head(path: Path) -> tuple[str | None, str | None]:
    """A file's root element (its local name) and TypFic, as ``file_typfic`` reads it."""
    root = None
    for seen, (_event, el) in enumerate(_iterparse(str(path), events=("start",))):
        name = etree.QName(el).localname
        root = root or name
        if name == "TypFic":
            return root, el.get("V")
        if name in ("Bordereau", "Piece") or seen > 200:
            break
    return root, None


@cache
def xsd_roots(xsd: Path) -> frozenset[str]:
    """The elements an XSD declares at its top level: the roots a file of it may have
    (``ImportCosoluce`` for Corail's). Empty when it does not load."""
    root = _xsd_document(xsd)
    if root is None:
        return frozenset()
    return frozenset(str(el.get("name")) for el in root.iterchildren(f"{_XS}element")
                     if el.get("name"))


_HEAD_BYTES = 256  # what not_xml looks at
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


def not_xml(path: Path) -> str | None:
    """The first character of a file that cannot be XML (after a byte order mark and
    white space, it is not '<'); None when it may be XML (an empty file, or UTF-16 without
    a byte order mark, is left to the parser). Only that character: the file's first line
    is a record (a reference, a name), and billing data has no place in a message."""
    with path.open("rb") as handle:
        return not_xml_bytes(handle.read(_HEAD_BYTES))


def not_xml_bytes(data: bytes) -> str | None:
    """``not_xml`` of a file's bytes (only the first ``_HEAD_BYTES`` are looked at)."""
    head = data[:_HEAD_BYTES]
    encoding = next((e for bom, e in _BOMS if head.startswith(bom)), None)
    if encoding is not None:
        text = head.decode(encoding, errors="replace").removeprefix("\ufeff")
    elif b"\x00" in head[:2]:
        return None
    else:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:  # a character cut by the read, or 8-bit text
            text = head[:exc.start].decode("utf-8") if exc.start > len(head) - 4 else \
                head.decode("cp1252", errors="replace")
    text = text.lstrip(" \t\r\n")
    if not text or text.startswith("<"):
        return None
    return text[0]


def format_of_file(path: Path, extra_dirs: list[Path] | None = None) -> tuple[Any, str]:
    """The format (bundle with an XSD) whose XSD allows the file's TypFic, and that
    TypFic. Refuses, saying which --format to give, when none or several fit."""
    from .formats import list_formats

    known: dict[str, tuple[Any, frozenset[str]]] = {}
    rooted: dict[str, frozenset[str]] = {}  # every format with an XSD: the roots it allows
    for _folder, fmt in list_formats(extra_dirs):  # (a --formats-dir not there is refused)
        if isinstance(fmt, Exception):
            continue
        xsd = next((f.xsd for f in fmt.files if f.xsd), None)
        if xsd is not None:
            rooted.setdefault(fmt.name, xsd_roots(xsd))
        if xsd is not None and (values := xsd_typfics(xsd)):
            known[fmt.name] = (fmt, values)
    if declares_doctype(path):  # refused unparsed, as validate_pes_file refuses it
        raise OutputInvalidError(f"{path} is invalid: 1 problem(s)",
                                 [_doctype_problem(path.name)])
    try:
        root, typfic = _file_head(path)
    except etree.XMLSyntaxError as exc:
        problems = _not_well_formed(path.name, exc, "pesgen")
        raise OutputInvalidError(f"{path} is invalid: {len(problems)} problem(s)",
                                 problems) from None
    fits = [fmt for fmt, values in known.values() if typfic in values]
    if len(fits) == 1:
        return fits[0], str(typfic)
    listed = ", ".join(f"{name} ({'/'.join(sorted(values))})"
                       for name, (_fmt, values) in known.items())
    if typfic is None:
        why = "no TypFic (PES_Aller/Enveloppe/Parametres/TypFic) in its first elements"
        # a finance package's import has none (Corail's ImportCosoluce): the formats
        # without TypFic whose XSD allows its root are the ones to name (not guessed: a
        # root says less than a TypFic, and a bundle copied under another name declares
        # the same one); a PES root gets the formats by TypFic
        rooted_by = sorted(name for name, roots in rooted.items()
                           if root in roots and name not in known)
        if rooted_by:
            why += (f"; its root element {root} is one the XSD of "
                    f"{' and of '.join(rooted_by)} declares")
            listed = " or ".join(f"--format {name}" for name in rooted_by)
            raise UsageError(f"{path}: cannot tell which format to validate it against: "
                             f"{why}: give {listed}")
    elif not fits:
        why = f"its TypFic '{typfic}' is no known format's"
    else:
        why = f"its TypFic '{typfic}' fits several formats ({', '.join(f.name for f in fits)})"
    raise UsageError(f"{path}: cannot tell which format to validate it against: {why}; "
                     f"give --format NAME (formats by TypFic: {listed or 'none'}; more "
                     "with --formats-dir)")


def raise_if(problems: Iterable[Problem], what: str) -> None:
    problems = list(problems)
    if problems:
        raise OutputInvalidError(f"{what}: the rendered output is invalid", problems)
