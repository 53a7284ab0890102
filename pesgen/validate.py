"""Validate a rendered file: its XSD (pesgen's own, plus the DGFiP package on request)
and the bordereau-level rules a file must satisfy (counts, sums, triplets).

Validation streams (``iterparse``): memory stays flat whatever the file size. When
the stream finds a schema error, the file is re-validated as a whole to list every
violation with its line and XPath.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from lxml import etree

from .errors import OutputInvalidError, Problem, UsageError

OFFICIAL_ENTRY = ("PES_V2", "Rev0", "PES_Aller.xsd")
MAX_PIECES = 99999
ORMC_TRIPLET = ("06", "15", "01")
# Titres ordinaires (TypBord 01, TypPce 01): the NatPce the grid allows (DT Annexe 2).
TITRE_NATPCE = frozenset({"01", "02", "03", "04", "05", "11", "18"})
EDITION_01_NATPCE = frozenset({"01", "02", "03", "04", "11", "18"})


def _parser(**kwargs: object) -> etree.XMLParser:
    # No entities, no network, no DTD: untrusted-input safe (XXE).
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=True, **kwargs)


@cache
def load_xsd(path: Path) -> etree.XMLSchema:
    try:
        return etree.XMLSchema(etree.parse(str(path), _parser()))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise UsageError(f"{path}: cannot load XML schema: {exc}") from None


def official_xsd_path(location: Path) -> Path:
    """Accept the DGFiP package folder, its PES_V2 folder, or the entry file itself."""
    location = Path(location)
    if location.is_file():
        return location
    for candidate in (location.joinpath(*OFFICIAL_ENTRY), location.joinpath(*OFFICIAL_ENTRY[1:])):
        if candidate.is_file():
            return candidate
    raise UsageError(f"{location}: no {'/'.join(OFFICIAL_ENTRY)} in this folder "
                     "(give the DGFiP PES V2 schema package)")


@dataclass
class _BordereauCheck:
    """Accumulates what Hélios cross-checks in a bordereau while the file streams."""

    declared_count: int | None = None
    declared_total: Decimal | None = None
    issue_date: str | None = None
    asap_date: str | None = None
    typ_bord: str | None = None
    pieces: int = 0
    total: Decimal = Decimal(0)


def _v(el: etree._Element | None) -> str | None:
    return None if el is None else el.get("V")


def _check_piece(piece: etree._Element, bord: _BordereauCheck, seen_ids: set[str],
                 name: str, problems: list[Problem]) -> None:
    bloc = piece.find("BlocPiece")
    id_pce = _v(bloc.find("IdPce")) if bloc is not None else None
    where = f"{name}:{piece.sourceline}"
    if id_pce in seen_ids:
        problems.append(Problem("pes.id-pce-unique", f"IdPce {id_pce} appears twice",
                                record=where))
    seen_ids.add(id_pce or "")
    triplet = (bord.typ_bord, _v(bloc.find("TypPce")) if bloc is not None else None,
               _v(bloc.find("NatPce")) if bloc is not None else None)
    if bord.typ_bord == "06" and triplet != ORMC_TRIPLET:
        shown = "/".join(map(str, triplet))
        problems.append(Problem("pes.triplet", f"TypBord/TypPce/NatPce {shown}"
                                " is not allowed (ORMC: 06/15/01)", record=where))
    if bord.typ_bord == "01" and triplet[1] == "01" and triplet[2] not in TITRE_NATPCE:
        shown = "/".join(map(str, triplet))
        problems.append(Problem("pes.triplet", f"TypBord/TypPce/NatPce {shown}"
                                " is not allowed (titre ordinaire 01/01: NatPce "
                                f"{', '.join(sorted(TITRE_NATPCE))})", record=where))
    edition = _v(bloc.find("Edition")) if bloc is not None else None
    if edition is not None:
        problem = _edition_problem(edition, triplet[1], triplet[2])
        if problem:
            problems.append(Problem("pes.edition", f"Edition {edition}: {problem}", record=where))
    piece_dte = _v(bloc.find("DteAsp")) if bloc is not None else None
    if piece_dte and bord.issue_date and piece_dte < bord.issue_date:
        problems.append(Problem("pes.asap-date", f"piece DteAsp {piece_dte} before DteBordEm",
                                record=where))
    line_ids: set[str] = set()
    sepa_keys: set[tuple[str | None, ...]] = set()
    debtors: set[bytes] = set()
    for ligne in piece.iterfind("LigneDePiece"):
        info = ligne.find("BlocLignePiece/InfoLignePiece")
        if info is None:
            continue
        id_ligne = _v(info.find("IdLigne"))
        if id_ligne in line_ids:
            problems.append(Problem("pes.id-ligne-unique", f"IdLigne {id_ligne} twice in piece "
                                    f"{id_pce}", record=f"{name}:{info.sourceline}"))
        line_ids.add(id_ligne or "")
        mt = _v(info.find("MtHT"))
        amount = Decimal(mt) if mt else Decimal(0)
        bord.total += amount
        sepa = ligne.find("BlocLignePiece/InfoPrelevementSEPA")
        if sepa is not None:
            mt_prel = _v(sepa.find("MtPrel"))
            if mt_prel is not None and Decimal(mt_prel or 0) != amount:
                problems.append(Problem(
                    "pes.mt-prel", f"MtPrel differs from MtHT on line {id_ligne} of piece "
                    f"{id_pce}", record=f"{name}:{sepa.sourceline}"))
            sepa_keys.add(tuple(_v(sepa.find(tag)) for tag in (
                "NatPrel", "PerPrel", "DtePrel", "SequencePres", "DateSignMandat", "RefUniMdt")))
        tiers = ligne.find("Tiers")
        if tiers is not None:
            debtors.add(etree.tostring(tiers.find("InfoTiers"), method="c14n"))
    if len(sepa_keys) > 1:
        problems.append(Problem("pes.sepa-same", f"piece {id_pce}: SEPA data differ between lines",
                                record=where))
    if len(debtors) > 1:
        problems.append(Problem("pes.single-debtor", f"piece {id_pce} has more than one debtor",
                                record=where))


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


def _schema_errors(path: Path, schema: etree.XMLSchema, label: str) -> list[Problem]:
    """Whole-file validation listing every violation (used once a stream failed)."""
    name = path.name
    try:
        doc = etree.parse(str(path), _parser())
    except etree.XMLSyntaxError as exc:
        return [Problem(f"xml.{label}", f"not well-formed: {exc}", record=f"{name}:{exc.lineno}")]
    schema.validate(doc)
    return [Problem(f"xsd.{label}", e.message, record=f"{name}:{e.line} {e.path}")
            for e in schema.error_log]


def validate_pes_file(path: Path, xsd: Path, official: Path | None = None) -> list[Problem]:
    """Stream-validate a PES_Aller file against ``xsd`` and the bordereau rules; then
    against the official DGFiP package if given. Returns every problem found."""
    problems: list[Problem] = []
    name = path.name
    schema = load_xsd(xsd)
    bord: _BordereauCheck | None = None
    seen_ids: set[str] = set()
    try:
        for _event, el in etree.iterparse(str(path), events=("end",), schema=schema,
                                         resolve_entities=False, no_network=True,
                                         load_dtd=False, huge_tree=True):
            tag = el.tag
            if tag == "BlocBordereau":
                bord = _BordereauCheck(
                    declared_count=int(_v(el.find("NbrPce")) or 0),
                    declared_total=Decimal(_v(el.find("MtBordHt")) or 0),
                    issue_date=_v(el.find("DteBordEm")), asap_date=_v(el.find("DteAsp")),
                    typ_bord=_v(el.find("TypBord")))
                seen_ids = set()
            elif tag == "Piece" and bord is not None:
                bord.pieces += 1
                _check_piece(el, bord, seen_ids, name, problems)
                el.clear(keep_tail=True)
                parent = el.getparent()
                while el.getprevious() is not None and parent is not None:
                    del parent[0]
            elif tag == "Bordereau" and bord is not None:
                _close_bordereau(bord, name, el.sourceline, problems)
                el.clear(keep_tail=True)
                bord = None
    except etree.XMLSyntaxError:
        problems.extend(_schema_errors(path, schema, "pesgen"))
    if official is not None:
        problems.extend(validate_against(path, official_xsd_path(official), "dgfip"))
    return problems


def validate_against(path: Path, xsd: Path, label: str) -> list[Problem]:
    schema = load_xsd(xsd)
    try:
        for _event, el in etree.iterparse(str(path), events=("end",), schema=schema,
                                          resolve_entities=False, no_network=True,
                                          load_dtd=False, huge_tree=True):
            if el.tag == "Piece":
                el.clear(keep_tail=True)
                parent = el.getparent()
                while el.getprevious() is not None and parent is not None:
                    del parent[0]
    except etree.XMLSyntaxError:
        return _schema_errors(path, schema, label)
    return []


def raise_if(problems: Iterable[Problem], what: str) -> None:
    problems = list(problems)
    if problems:
        raise OutputInvalidError(f"{what}: the rendered output is invalid", problems)
