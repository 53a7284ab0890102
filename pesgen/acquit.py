"""Read the trésorerie's acknowledgement (PES_ACQUIT, from the DGFiP's guichet XML) and
tie each bordereau it accepts or rejects to the run pesgen recorded it in (the run
holding its IdBord whose TypBord its DomaineAck fits, and whose file its NomFic does not
contradict).

The file is parsed safely (no DTD, no entity, no network: a DOCTYPE is refused), checked
to be a PES_ACQUIT version 2 (namespace ``…/Rev0/retour/v2``, DT v5.19 *Acquittement*),
validated against the DGFiP package's ``PES_V2_Acquit_Autonome_V2.xsd`` when given, else
checked for the structure read here. The state store is only read, unless the
acknowledgement is recorded (``record``, ``pesgen acquit --record``): per bordereau tied
to a run, accepted or rejected, the acquit's date, its errors, the file's name and sha256
(docs/state.md, *The trésorerie's acknowledgement*).
"""

from __future__ import annotations

import hashlib
import io
import re
import shlex
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from lxml import etree

from .errors import InputDataError, Problem, UsageError
from .store import ANNULLED_MARK, _errors_json, with_errors
from .validate import (
    _iterparse,
    _parser,
    load_xsd,
    not_xml_bytes,
    official_xsd_path,
    tree_violations,
)

ACQUIT_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
# PES_V2_Acquit_Autonome.xsd (flat ElementACQUIT): not read, and said so
ACQUIT_V1_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour"
OFFICIAL_ACQUIT = "PES_V2_Acquit_Autonome_V2.xsd"  # beside PES_Aller.xsd, in PES_V2/Rev0

# TDomaineAck (XSD CommunAck.xsd; DT v5.19 Acquittement_codes)
DOMAINS = {"0": "Technique", "1": "Signature technique", "2": "Signature globale",
           "3": "Signature Bordereau", "4": "PJ", "5": "Dépense", "6": "Recette",
           "7": "Rôle", "8": "Budget", "9": "Etat Actif", "10": "Etat Passif",
           "11": "Marché", "12": "Facture", "99": "Paramétrage"}
# The domains of a recette bordereau, which pesgen writes. Which TypBord each answers is
# pesgen's reading of the DT's labels (docs/state.md, "Which run an element answers"): 7
# (Rôle) an ORMC (TypBord 06, "IdBord correspondra au numéro de rôle dans Hélios", DT
# v5.19 PES_RecetteAller_blocs), 6 (Recette) the other recette bordereaux (01, 02, 03).
# Unconfirmed by a real acquit of an ORMC: a candidate the domain contradicts is not
# tied (refused rather than tied wrong), and said so.
RECETTE_DOMAINS = frozenset({"6", "7"})
ROLE_TYP_BORD = "06"
# The PES file types the DGFiP documents (Enveloppe/Parametres/TypFic: XSD v5.17
# Class_Enveloppe.xsd, DT v5.19 DomaineGlobalAller_blocscommuns), which begin the names
# of the files pesgen writes (PESORMC_…, PESALR1_…)
FILE_KINDS = {"PESORMC": "an ORMC file (TypFic PESORMC)",
              "PESALR1": "a PES_Aller file (TypFic PESALR1)"}
# The file as a whole (guichet "boîte 1": schema, signatures): no bordereau named
FILE_DOMAINS = frozenset({"0", "1", "2"})
# TNumAnoAck (XSD CommunAck.xsd; DT v5.19 Acquittement_codes): the DGFiP gives the
# codes, no meaning beside them; LibelleAnoAck says what is wrong
ANOMALY_CODES = frozenset("""
ERREUR_CONNECTION_IMPOSSIBLE_A_LA_BASE ERREUR_ENCODING ERREUR_FLUX_VIDE
ERREUR_SCHEMA_INCOMPLET ERREUR_CODIFICATION ERREUR_CODIQUE ERREUR_SIRET
ERREUR_CODE_COLLECTIVITE_BUDGET ERREUR_VERSION_PES ERREUR_VERSION_PJ
ERREUR_SIGNATURE_INVALIDE ERREUR_SIGNATURE_ILLISIBLE ERREUR_SIGNATURE_INCOMPLETE
ERREUR_DOUBLON_BORDEREAU ERREUR_DOUBLON_PIECE ERREUR_DOUBLON_LIGNE ERREUR_DOUBLON_PJ
ERREUR_PES_PARAM ERREUR_PES_SIGNATURE ERREUR_PES_PARAM_SIGNATURE ERREUR_CERTIFICAT
ERREUR_TIMEOUT ERREUR_TAILLE_BORDEREAUX ERREUR_TAILLE_PIECE ERREUR_TAILLE_LIGNE
ERREUR_PJ_SIGNEE ERREUR_SIGNATURE_EXTERNE ERREUR_AUTRE ERREUR_SIGNATURE_BORDEREAU_INVALIDE
ERREUR_MONTANT_TVA_ZERO_NEGATIF ERREUR_PJ ERREUR_CUMUL_MONTANTS
ERREUR_SIGNATURE_BORDEREAU_ILLISIBLE ERREUR_SIGNATURE_BORDEREAU_INCOMPLETE
""".split())
_BOOLEAN = {"1": True, "true": True, "0": False, "false": False}  # xs:boolean
_DIGITS = re.compile(r"[0-9]+")
# xs:date (Base_Date, EnTetePES/DteStr): a day, with an optional time zone
_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(Z|[+-][0-9]{2}:[0-9]{2})?")


@dataclass(frozen=True)
class AckError:
    """One Erreur: NumAnoAck (None: not given) and LibelleAnoAck, the DGFiP's words."""

    code: str | None
    label: str | None

    @property
    def known(self) -> bool:
        """The code is one of the DGFiP's list (XSD v5.17), or no code is given."""
        return self.code is None or self.code in ANOMALY_CODES

    def __str__(self) -> str:
        code = self.code or "(no code)"
        if not self.known:
            code += " (not in the DGFiP code list, XSD v5.17)"
        return f"{code}: {self.label}" if self.label else code


@dataclass(frozen=True)
class AckLine:
    number: int  # NumLigne: the IdLigne of a line of the piece
    errors: tuple[AckError, ...]


@dataclass(frozen=True)
class AckPiece:
    number: int  # NumPiece: the IdPce of a piece of the bordereau
    errors: tuple[AckError, ...]
    lines: tuple[AckLine, ...]


@dataclass(frozen=True)
class AckElement:
    """One ElementACQUIT: a bordereau (NumBord, ExerciceBord), a PJ (IdUnique), a
    market (IdMarche) or, with none of them, the file as a whole."""

    line: int  # in the acknowledgement file
    domain: str
    accepted: bool
    bordereau: int | None
    exercise: int | None
    market: str | None
    attachment: str | None
    errors: tuple[AckError, ...]
    pieces: tuple[AckPiece, ...]

    @property
    def domain_label(self) -> str:
        return DOMAINS.get(self.domain, "?")


@dataclass(frozen=True)
class Acquit:
    name: str
    id_coll: str
    cod_bud: str
    id_post: str | None
    nom_fic: str | None  # Enveloppe/Parametres/NomFic
    elements: tuple[AckElement, ...]
    # EnTetePES/DteStr, "date d'émission de la structure": the day the guichet wrote the
    # acknowledgement (None: not given, which only its XSD forbids)
    issued_on: str | None = None
    sha256: str = ""  # of the file's bytes, as read


def read_acquit(path: Path, official: Path | None = None) -> Acquit:
    """The acknowledgement in ``path``. Refuses (UsageError) a file that is missing, not
    XML or not a PES_ACQUIT version 2; (InputDataError) one not well-formed, declaring a
    DOCTYPE, invalid against the DGFiP XSD (``official``: the package, as
    ``--official-xsd``) or, without it, lacking what is read here, with every problem
    at its line."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    # read once: everything below comes from these bytes, so the sha256 recorded is that
    # of what was parsed, even if the file is replaced meanwhile
    data = path.read_bytes()
    start = not_xml_bytes(data)
    if start is not None:
        raise UsageError(f"{path} is not XML (its first character is {start!r}, not '<'): "
                         "pesgen acquit reads the PES_ACQUIT XML file the trésorerie's "
                         "guichet XML returns")
    name = path.name
    try:
        # the DOCTYPE first, before its entities are met (never expanded: they would make
        # the file fail as not well-formed, saying less)
        for _event, el in _iterparse(_source(data, path), events=("start",)):
            if el.getroottree().docinfo.doctype:
                # a PES_ACQUIT has no DTD: one that declares it is not the guichet's (an
                # XXE attempt, or another file)
                raise InputDataError(f"{path} declares a DOCTYPE; a PES_ACQUIT has none: "
                                     "refused, nothing read", [Problem(
                                         "acquit.doctype", "the file declares a DOCTYPE",
                                         record=f"{name}:1")])
            break
        doc = etree.parse(_source(data, path), _parser())
    except etree.XMLSyntaxError as exc:
        raise InputDataError(f"{path} is not a well-formed XML file", [Problem(
            "acquit.xml", f"not well-formed: {exc}", record=f"{name}:{exc.lineno}")]) from None
    root = doc.getroot()
    _check_root(path, etree.QName(root))
    if official is not None:
        xsd = official_xsd_path(official).parent / OFFICIAL_ACQUIT
        if not xsd.is_file():
            raise UsageError(f"{official}: no {OFFICIAL_ACQUIT} beside PES_Aller.xsd in this "
                             "DGFiP package (PES_V2/Rev0/)")
        invalid = tree_violations(doc, name, load_xsd(xsd), "dgfip")
        if invalid:
            raise InputDataError(f"{path} is invalid against the DGFiP XSD {xsd.name}: "
                                 f"{len(invalid)} problem(s)", invalid)
    problems: list[Problem] = []
    acquit = _read(root, name, problems)
    if problems:
        raise InputDataError(f"{path} lacks what pesgen reads in a PES_ACQUIT: "
                             f"{len(problems)} problem(s)", problems)
    return replace(acquit, sha256=hashlib.sha256(data).hexdigest())


def _source(data: bytes, path: Path) -> io.BytesIO:
    """``data`` for lxml to read as ``path`` (its messages name the file)."""
    source = io.BytesIO(data)
    source.name = str(path)  # type: ignore[attr-defined]
    return source


def _check_root(path: Path, qname: etree.QName) -> None:
    if qname.localname == "PES_ACQUIT" and qname.namespace == ACQUIT_NS:
        return
    said = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
    if qname.localname == "PES_ACQUIT" and qname.namespace == ACQUIT_V1_NS:
        why = ("a PES_ACQUIT of version 1 (PES_V2_Acquit_Autonome.xsd); pesgen reads "
               f"version 2, namespace {ACQUIT_NS}, the one the DGFiP documentation v5.19 "
               "describes")
    elif qname.localname == "PES_ACQUIT":
        why = f"a PES_ACQUIT in namespace {qname.namespace!r}, not {ACQUIT_NS}"
    elif qname.localname == "PES_Aller":
        why = ("a PES_Aller, a file sent to the trésorerie (pesgen validate checks it); "
               "pesgen acquit reads the PES_ACQUIT that answers it")
    else:
        why = f"its root element is {said}, not PES_ACQUIT ({ACQUIT_NS})"
    raise UsageError(f"{path} is not a trésorerie acknowledgement: {why}")


def _read(root: Any, name: str, problems: list[Problem]) -> Acquit:
    tree = root.getroottree()

    def problem(el: Any, message: str) -> None:
        problems.append(Problem("acquit.structure", message,
                                record=f"{name}:{el.sourceline} {tree.getpath(el)}"))

    def value(parent: Any, tag: str, required: bool = True, digits: int | None = None
              ) -> str | None:
        el = parent.find(tag)
        if el is None:
            if required:
                problem(parent, f"no {tag}")
            return None
        v = el.get("V")
        if v is None or (required and not v.strip()):
            problem(el, f"{tag} has no value (attribute V)")
            return None
        if digits is not None and not (_DIGITS.fullmatch(v) and len(v) <= digits):
            problem(el, f"{tag} is '{v[:20]}', not a number of at most {digits} digits")
            return None
        return v

    def errors(parent: Any) -> tuple[AckError, ...]:
        return tuple(AckError(value(e, "NumAnoAck", required=False),
                              value(e, "LibelleAnoAck", required=False))
                     for e in parent.findall("Erreur"))

    head = root.find("EnTetePES")
    id_coll = cod_bud = id_post = issued_on = None
    if head is None:
        problem(root, "no EnTetePES (IdColl and CodBud name the collectivity's budget)")
    else:
        id_coll = value(head, "IdColl", digits=14)
        cod_bud = value(head, "CodBud")
        id_post = value(head, "IdPost", required=False)
        issued_on = _day(head, value(head, "DteStr", required=False), problem)
    nom_fic = root.find("Enveloppe/Parametres/NomFic")
    ack = root.find("ACQUIT")
    items = [] if ack is None else ack.findall("ElementACQUIT")
    if not items:
        problem(root if ack is None else ack, "no ACQUIT/ElementACQUIT")
    elements = []
    for item in items:
        domain = value(item, "DomaineAck")
        if domain is not None and domain not in DOMAINS:
            problem(item.find("DomaineAck"), f"DomaineAck '{domain[:20]}' is not a code of "
                    f"the DGFiP list ({', '.join(DOMAINS)})")
        state = value(item, "EtatAck")
        if state is not None and state.strip() not in _BOOLEAN:
            problem(item.find("EtatAck"), f"EtatAck is '{state[:20]}', not 1 (accepted) nor "
                    "0 (rejected)")
        bordereau = value(item, "NumBord", required=False, digits=7)
        exercise = value(item, "ExerciceBord", required=False, digits=4)
        pieces = []
        for piece in item.findall("DetailPiece"):
            number = value(piece, "NumPiece", digits=13)
            lines = []
            for line in piece.findall("DetailLigne"):
                numero = value(line, "NumLigne", digits=13)
                lines.append(AckLine(int(numero or 0), errors(line)))
            pieces.append(AckPiece(int(number or 0), errors(piece), tuple(lines)))
        elements.append(AckElement(
            item.sourceline, domain or "", _BOOLEAN.get((state or "").strip(), False),
            int(bordereau) if bordereau else None, int(exercise) if exercise else None,
            value(item, "IdMarche", required=False), value(item, "IdUnique", required=False),
            errors(item), tuple(pieces)))
    return Acquit(name, id_coll or "", cod_bud or "", id_post,
                  None if nom_fic is None else nom_fic.get("V"), tuple(elements), issued_on)


def _day(head: Any, text: str | None, problem: Any) -> str | None:
    """DteStr's day (an xs:date: its time zone, if any, aside), or None when not given;
    a value that is no date is a problem at its line."""
    if text is None or not text.strip():
        return None
    found = _DATE.fullmatch(text.strip())
    if found is not None:
        try:
            return date.fromisoformat(found.group(1)).isoformat()
        except ValueError:
            pass
    problem(head.find("DteStr"), f"DteStr is '{text[:20]}', not a date (YYYY-MM-DD)")
    return None


# ------------------------------------------------------------------ tie to the store

@dataclass(frozen=True)
class Recorded:
    """The run and bordereau pesgen recorded for an acknowledged bordereau."""

    run_id: str
    typ_bord: str
    file: str | None
    titles: int | None
    total: str | None
    cancelled_at: str | None
    cancel_reason: str | None


@dataclass(frozen=True)
class SetAside:
    """A run holding the bordereau's number that the element does not answer: its
    DomaineAck or the acquit's NomFic contradicts the run's bordereau (``why``)."""

    run: Recorded
    why: str
    short: str  # what contradicts it, in a few words


def _kind_of_bordereau(typ_bord: str) -> str:
    return (f"a rôle (TypBord {typ_bord})" if typ_bord == ROLE_TYP_BORD else
            f"a titres bordereau (TypBord {typ_bord})")


def domain_fits(domain: str, typ_bord: str) -> bool:
    """Whether an element of DomaineAck ``domain`` (6 or 7) may answer a bordereau of
    TypBord ``typ_bord``: 7 (Rôle) an ORMC (06), 6 (Recette) any other."""
    return (typ_bord == ROLE_TYP_BORD) == (domain == "7")


def file_kind(name: str | None) -> str | None:
    """The PES file type a file name begins with (``PESORMC_…``, ``PESALR1_…``), or None:
    a name that tells none."""
    if not name:
        return None
    head = name.split("_", 1)[0].upper()
    return head if "_" in name and head in FILE_KINDS else None


def _set_aside(acquit: Acquit, e: AckElement, r: Recorded) -> SetAside | None:
    """Why the element does not answer the candidate ``r`` (None: nothing contradicts)."""
    if not domain_fits(e.domain, r.typ_bord):
        said = "rôle" if r.typ_bord == ROLE_TYP_BORD else "bordereau"
        why = (f"DomaineAck {e.domain} ({e.domain_label}) for "
               f"{_kind_of_bordereau(r.typ_bord)} of run {r.run_id}: not tied; if the "
               f"trésorerie acknowledges this {said} so, check with it which bordereau it "
               f"answers (`pesgen runs show {r.run_id}`): pesgen ties DomaineAck 7 to a rôle "
               "only, 6 to a titres bordereau only (docs/state.md)")
        return SetAside(r, why, f"its TypBord {r.typ_bord} contradicts DomaineAck {e.domain}")
    # NomFic only ever refuses: that it names the file acknowledged is unconfirmed
    named, wrote = file_kind(acquit.nom_fic), file_kind(r.file)
    if named is not None and wrote is not None and named != wrote:
        why = (f"the acquit's NomFic {acquit.nom_fic} is {FILE_KINDS[named]}, run "
               f"{r.run_id} wrote {FILE_KINDS[wrote]} ({r.file}) for this bordereau: not tied")
        return SetAside(r, why, f"its file is not of the NomFic's kind ({named})")
    return None


@dataclass(frozen=True)
class PieceReport:
    piece: AckPiece
    invoice: str | None  # the invoice of the IdPce in the recorded bordereau


@dataclass(frozen=True)
class ElementReport:
    element: AckElement
    # what the element names: bordereau (recette, tied to the runs), other (a bordereau of
    # another domain: not pesgen's), file (the whole file: domains 0-2 without NumBord),
    # unnamed (another domain's element without NumBord), attachment (a PJ), market
    kind: str
    found: tuple[Recorded, ...] = ()
    pieces: tuple[PieceReport, ...] = ()
    # the bordereau's Hélios status recorded in the store when the file was read (a
    # store.Acknowledgement; None: none recorded, or the element is tied to no one run)
    recorded: Any = None
    # runs holding that number the element does not answer (its DomaineAck, the NomFic):
    # never tied, shown as "possibly" when no run is
    set_aside: tuple[SetAside, ...] = ()

    @property
    def run(self) -> Recorded | None:
        """The one run this element is tied to: a bordereau only one run of the store
        holds (with a TypBord its DomaineAck fits); None: none, or several."""
        return self.found[0] if self.kind == "bordereau" and len(self.found) == 1 else None

    @property
    def same_as_recorded(self) -> bool | None:
        """Whether the element says what the bordereau's recorded status says (None: no
        status recorded)."""
        if self.recorded is None:
            return None
        e = self.element
        return self.recorded.same_answer(e.accepted, _errors_json(_errors_of(e)))

    def recorded_said(self, sha256: str) -> str | None:
        """What the store holds already of this bordereau's acknowledgement, compared
        with this element (``sha256``: the file's), or None: nothing recorded."""
        a = self.recorded
        if a is None:
            return None
        where = (f"from this file (line {a.line}, recorded {a.recorded_at})" if
                 a.sha256 == sha256 else
                 f"from {a.file} (line {a.line}, recorded {a.recorded_at})")
        if self.same_as_recorded:
            return f"recorded already: {a.outcome}, {where}: the same answer"
        return (f"recorded already otherwise: {a.outcome}, {where}: `--record` refuses this "
                "file unless --replace, which makes this answer its status (the one "
                "recorded stays in its history)")

    @property
    def verdict(self) -> str:
        """What support reads first: accepted or rejected, and what pesgen knows of it."""
        e = self.element
        said = "accepted" if e.accepted else "REJECTED"
        if self.kind == "file":
            # the guichet's step 1 (schema, signatures) rejects the whole flow
            step = " at the guichet XML's first step" if e.domain in FILE_DOMAINS else ""
            return (f"{said}: the whole file (no bordereau, PJ nor market named)" + (
                "" if e.accepted else f"; every bordereau of it is rejected{step}"))
        if self.kind == "attachment":
            return f"{said}: PJ {e.attachment} (pesgen sends no PJ)"
        if self.kind == "market":
            return f"{said}: market {e.market} (pesgen sends no market)"
        if self.kind == "unnamed":
            return (f"{said}: an element of domain {e.domain_label} naming no bordereau (no "
                    "NumBord): pesgen cannot tell which run it answers (`pesgen runs list`)")
        if self.kind == "other" and e.domain == "3":
            # signed after pesgen wrote it (a parapheur), a recette bordereau may be
            # answered so; the acquit does not say which domain the bordereau is of
            return (f"{said}: the signature of a bordereau, of a recette or a dépense (the "
                    "acquit does not say): not tied to a run; if it is a recette of "
                    "yours, `pesgen runs list` shows its run")
        if self.kind == "other":
            return (f"{said}: a bordereau of domain {e.domain_label}, not a recette: not "
                    "pesgen's (it writes recettes only)")
        if e.exercise is None:
            return f"{said}: no ExerciceBord, pesgen cannot tell which run sent it"
        if not self.found and self.set_aside:
            return f"{said}: " + "; ".join(x.why for x in self.set_aside)
        if not self.found:
            return (f"{said}: no run of this store holds it (another software's bordereau, "
                    "or a run recorded in another store: --db)")
        if len(self.found) > 1:
            return (f"{said}: {len(self.found)} runs of this store hold an IdBord "
                    f"{e.bordereau} (TypBord "
                    f"{', '.join(r.typ_bord for r in self.found)}): pesgen cannot tell which "
                    "one the trésorerie answers; `pesgen runs show RUN` of each")
        r = self.found[0]
        if r.cancelled_at is not None:
            if e.accepted and ANNULLED_MARK in (r.cancel_reason or ""):
                # `runs cancel --annulled-by-tresorerie`: the trésorerie annulled them
                return (f"accepted; cancelled in pesgen {r.cancelled_at}, its titles "
                        f"annulled by the trésorerie ({r.cancel_reason})")
            if e.accepted:
                return (f"accepted, but cancelled in pesgen {r.cancelled_at} "
                        f"({r.cancel_reason}): its invoices may be exported again; tell the "
                        "trésorerie, which took it")
            return f"REJECTED; already cancelled {r.cancelled_at} ({r.cancel_reason})"
        return said

    def next_step(self, db: str | None = None) -> str | None:
        """What follows a rejection: for a bordereau pesgen recorded, active, the
        command that cancels it, then fix and export again."""
        e = self.element
        if e.accepted:
            return None
        if self.kind == "file":
            return ("every bordereau of the file sent is rejected: `pesgen runs list` for the "
                    "run that wrote it, `pesgen runs cancel RUN --all`, fix, export again")
        r = self.run
        if r is None:
            return None
        if r.cancelled_at is not None:
            return ("nothing to cancel; fix the input (the errors above) and export again, "
                    "if not done since")
        codes = sorted({x.code for x in _all_errors(e) if x.code})
        reason = f"trésorerie rejected IdBord {e.bordereau}" + (
            f" ({', '.join(codes)})" if codes else "")
        option = f" --db {shlex.quote(db)}" if db else ""
        # quoted for a shell: the codes are the acquit file's text, not vouched for
        return (f"pesgen runs cancel {r.run_id} --bordereau {e.bordereau} --reason "
                f"{shlex.quote(reason)}{option}; fix the input (the errors above), then export "
                "again: its invoices go in a new bordereau, with a new number")


def _all_errors(e: AckElement) -> list[AckError]:
    out = list(e.errors)
    for p in e.pieces:
        out += p.errors
        for line in p.lines:
            out += line.errors
    return out


@dataclass(frozen=True)
class AcquitReport:
    acquit: Acquit
    elements: tuple[ElementReport, ...]

    @property
    def rejected(self) -> int:
        return sum(1 for e in self.elements if not e.element.accepted)


def tie(acquit: Acquit, store: Any) -> AcquitReport:
    """Each element of ``acquit`` with the run(s) of ``store`` (a Store, read only) that
    recorded its bordereau, and each piece named with its invoice."""
    out: list[ElementReport] = []
    for e in acquit.elements:
        if e.bordereau is None:
            kind = ("attachment" if e.attachment else "market" if e.market else
                    "file" if e.domain in FILE_DOMAINS else "unnamed")
            out.append(ElementReport(e, kind))
            continue
        if e.domain not in RECETTE_DOMAINS:
            out.append(ElementReport(e, "other"))
            continue
        found: list[Recorded] = []
        aside: list[SetAside] = []
        if e.exercise is not None:
            for run_id, typ_bord, b in store.pes_bordereau(acquit.id_coll, acquit.cod_bud,
                                                           e.exercise, e.bordereau):
                r = Recorded(run_id, typ_bord, b.file, b.titles, b.total, b.cancelled_at,
                             b.reason)
                # the DomaineAck chooses among the runs holding that number (ORMC and
                # titres number apart); one it contradicts is never tied, nor one whose
                # file the acquit's NomFic says is of another kind
                no = _set_aside(acquit, e, r)
                if no is None:
                    found.append(r)
                else:
                    aside.append(no)
        invoices = (store.piece_invoices(found[0].run_id, e.bordereau)
                    if len(found) == 1 and e.pieces else {})
        pieces = tuple(PieceReport(p, invoices.get(p.number)) for p in e.pieces)
        out.append(ElementReport(e, "bordereau", tuple(found), pieces,
                                 set_aside=tuple(aside)))
    # each bordereau's Hélios status recorded already (`--record`, this file or another)
    tied = {r.run.run_id for r in out if r.run is not None}
    if tied:
        status = store.acknowledgements(tied)
        out = [r if r.run is None else replace(r, recorded=status.get(r.run.run_id, {}).get(
            r.element.bordereau or 0, [None])[0]) for r in out]
    return AcquitReport(acquit, tuple(out))


def _run_json(f: Recorded) -> dict[str, Any]:
    return {"run": f.run_id, "typ_bord": f.typ_bord, "file": f.file, "titles": f.titles,
            "total": f.total, "cancelled": None if f.cancelled_at is None else
            {"at": f.cancelled_at, "reason": f.cancel_reason}}


def as_json(report: AcquitReport, db: str | None = None) -> dict[str, Any]:
    """The report as the school software reads it (``pesgen acquit --json``)."""
    a = report.acquit

    def errors(items: tuple[AckError, ...]) -> list[dict[str, Any]]:
        return [{"code": x.code, "label": x.label, "known_code": x.known} for x in items]

    elements = []
    for r in report.elements:
        e = r.element
        invoices = {p.piece.number: p.invoice for p in r.pieces}
        elements.append({
            "line": e.line, "domain": e.domain, "domain_label": e.domain_label,
            "accepted": e.accepted, "kind": r.kind, "bordereau": e.bordereau,
            "exercise": e.exercise, "market": e.market, "attachment": e.attachment,
            "verdict": r.verdict,
            "runs": [_run_json(f) for f in r.found],
            # runs holding that number the element does not answer: never tied
            "set_aside": [dict(_run_json(x.run), why=x.why) for x in r.set_aside],
            "errors": errors(e.errors),
            "recorded": None if r.recorded is None else {
                "accepted": r.recorded.accepted, "issued_on": r.recorded.issued_on,
                "errors": r.recorded.error_count, "file": r.recorded.file,
                "sha256": r.recorded.sha256, "line": r.recorded.line,
                "recorded_at": r.recorded.recorded_at,
                "same_answer": r.same_as_recorded,
                "same_file": r.recorded.sha256 == a.sha256},
            "pieces": [{"piece": p.number, "invoice": invoices.get(p.number),
                        "errors": errors(p.errors),
                        "lines": [{"line": ln.number, "errors": errors(ln.errors)}
                                  for ln in p.lines]} for p in e.pieces],
            "next_step": r.next_step(db),
        })
    return {"file": a.name, "sha256": a.sha256, "issued_on": a.issued_on,
            "id_coll": a.id_coll, "cod_bud": a.cod_bud, "id_post": a.id_post,
            "nom_fic": a.nom_fic,
            "accepted": report.rejected == 0, "rejected": report.rejected,
            "elements": elements}


# ------------------------------------------------------------------ record in the store

@dataclass(frozen=True)
class RecordedElement:
    """What recording did with one element of the acknowledgement: ``recorded``, ``same``
    (the bordereau's Hélios status says the same already), ``replaced`` (with
    ``before``, the status it replaced), or ``not recorded`` (``why``)."""

    report: ElementReport
    outcome: str
    why: str | None = None
    before: Any = None  # store.Acknowledgement
    issued_on: str | None = None  # the acquit's date (DteStr)

    def __str__(self) -> str:
        r, e = self.report, self.report.element
        what = _element_name(r)
        if self.outcome == "not recorded":
            return f"not recorded: {what}: {self.why}"
        run = r.run
        said = ("accepted" if e.accepted else "rejected") + (
            f" on {self.issued_on}" if self.issued_on else " (the acquit gives no date)") + \
            with_errors(len(_all_errors(e)))
        if run.cancelled_at is not None:
            # recorded all the same: what the trésorerie said of it stays known
            said += f"; this bordereau is cancelled in pesgen ({run.cancelled_at})"
        if self.outcome == "same":
            return (f"already recorded: {what} of run {run.run_id}: {self.before.outcome}, "
                    f"from {self.before.file} (recorded {self.before.recorded_at}): not "
                    "recorded again")
        if self.outcome == "replaced":
            return (f"recorded: {what} of run {run.run_id}: {said}, replacing "
                    f"{self.before.outcome} (from {self.before.file}, recorded "
                    f"{self.before.recorded_at}; kept in its history)")
        return f"recorded: {what} of run {run.run_id}: {said}"


@dataclass(frozen=True)
class Recording:
    """``record``'s result: when the file was recorded (None: nothing was), when it had
    been (``already``: its name and date), and each element's fate."""

    recorded_at: str | None
    already: tuple[str, str] | None
    elements: tuple[RecordedElement, ...]

    @property
    def recorded(self) -> int:
        return sum(1 for e in self.elements if e.outcome in ("recorded", "replaced"))


def _element_name(r: ElementReport) -> str:
    e = r.element
    if e.bordereau is not None:
        return f"IdBord {e.bordereau}" + (f" exercise {e.exercise}" if e.exercise is not None
                                          else "") + f" (line {e.line})"
    return f"{'file' if r.kind == 'file' else 'element'} (line {e.line})"


def _not_tied(r: ElementReport) -> str:
    """Why an element is not recorded: it names no bordereau of one run of the store."""
    e = r.element
    if r.kind == "bordereau":
        if e.exercise is None:
            return "no ExerciceBord: pesgen cannot tell which run sent it"
        if not r.found and r.set_aside:
            return "; ".join(x.why for x in r.set_aside)
        if not r.found:
            return "no run of this store holds it"
        return (f"{len(r.found)} runs of this store hold an IdBord {e.bordereau}: pesgen "
                "cannot tell which one the trésorerie answers")
    return {
        "file": "the whole file: the acquit names none of its bordereaux",
        "unnamed": "it names no bordereau (no NumBord)",
        "attachment": "a PJ (pesgen sends none)",
        "market": "a market (pesgen sends none)",
    }.get(r.kind, "the signature of a bordereau, not tied to a run" if e.domain == "3"
          else "a bordereau of another domain than a recette: not pesgen's")


def record(report: AcquitReport, store: Any, replace: bool = False) -> Recording:
    """Record ``report``'s acknowledgement in ``store`` (a Store), in one transaction:
    each bordereau tied to exactly one run, with its outcome, errors, the acquit's date,
    the file's name and sha256. The other elements (a bordereau no run or several hold,
    the whole file, a PJ…) are not recorded, and said so; when none is tied, nothing is.
    The same file recorded again records nothing (``already``). A different answer for
    a bordereau already acknowledged refuses the file (StateError, nothing recorded)
    unless ``replace``; one that says the same is not recorded again. A bordereau named
    twice by the file refuses it (InputDataError), each at its line."""
    a = report.acquit
    tied = [r for r in report.elements if r.run is not None]
    seen: dict[tuple[str, int], list[ElementReport]] = {}
    for r in tied:
        seen.setdefault((r.run.run_id, r.element.bordereau or 0), []).append(r)
    twice = [group for group in seen.values() if len(group) > 1]
    if twice:
        raise InputDataError(
            f"{a.name} answers a bordereau more than once: pesgen records one answer per "
            "bordereau and file; nothing recorded", [Problem(
                "acquit.bordereau-twice",
                f"IdBord {r.element.bordereau} exercise {r.element.exercise} (run "
                f"{r.run.run_id}) is answered at lines "
                f"{', '.join(str(x.element.line) for x in group)}",
                record=f"{a.name}:{r.element.line}") for group in twice for r in group[1:]])
    items = [{"run_id": r.run.run_id, "id_bord": r.element.bordereau,
              "line": r.element.line, "domain": r.element.domain,
              "accepted": r.element.accepted, "errors": _errors_of(r.element)} for r in tied]
    done = None
    if items:
        done = store.record_acknowledgements(
            {"sha256": a.sha256, "name": a.name, "id_coll": a.id_coll, "cod_bud": a.cod_bud,
             "nom_fic": a.nom_fic, "issued_on": a.issued_on}, items, replace)
    if done is not None and done.already is not None:
        return Recording(None, done.already, ())
    fates = iter(done.outcomes if done is not None else ())
    out = []
    for r in report.elements:
        if r.run is not None:
            outcome, before = next(fates)
            out.append(RecordedElement(r, outcome, before=before, issued_on=a.issued_on))
        else:
            out.append(RecordedElement(r, "not recorded", _not_tied(r)))
    return Recording(None if done is None else done.recorded_at, None, tuple(out))


def _errors_of(e: AckElement) -> list[dict[str, Any]]:
    """The element's errors, its pieces' and their lines', as the store records them."""
    out = [{"piece": None, "line": None, "code": x.code, "label": x.label} for x in e.errors]
    for p in e.pieces:
        out += [{"piece": p.number, "line": None, "code": x.code, "label": x.label}
                for x in p.errors]
        for line in p.lines:
            out += [{"piece": p.number, "line": line.number, "code": x.code,
                     "label": x.label} for x in line.errors]
    return out


def recording_json(done: Recording) -> dict[str, Any]:
    """``--record``'s part of ``pesgen acquit --json``."""
    return {
        "recorded_at": done.recorded_at,
        "already_recorded": None if done.already is None else
        {"file": done.already[0], "recorded_at": done.already[1]},
        "elements": [{
            "line": x.report.element.line, "bordereau": x.report.element.bordereau,
            "run": x.report.run.run_id if x.outcome != "not recorded" else None,
            "outcome": x.outcome, "why": x.why,
            "replaced": None if x.before is None or x.outcome != "replaced" else
            {"accepted": x.before.accepted, "issued_on": x.before.issued_on,
             "errors": x.before.error_count, "file": x.before.file,
             "recorded_at": x.before.recorded_at}} for x in done.elements],
    }
