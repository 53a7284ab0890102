"""Read the trésorerie's acknowledgement (PES_ACQUIT, from the DGFiP's guichet XML) and
tie each bordereau it accepts or rejects to the run pesgen recorded it in (the run
holding its IdBord whose TypBord its DomaineAck fits, and whose file its NomFic does not
contradict), or to the run support names (``--run``: where pesgen will not guess, the
other recette domain and a whole-file rejection).

The file is parsed safely (no DTD, no entity, no network: a DOCTYPE is refused), checked
to be a PES_ACQUIT version 2 (namespace ``…/Rev0/retour/v2``, DT v5.19 *Acquittement*),
validated against the DGFiP package's ``PES_V2_Acquit_Autonome_V2.xsd`` when given, else
checked for the structure read here. The state store is only read, unless the
acknowledgement is recorded (``record``, ``pesgen acquit --record``): per bordereau tied
to a run, accepted or rejected, the acquit's date, its errors, the file's name and sha256
(docs/state.md, *The trésorerie's acknowledgement*).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from lxml import etree

from ._display import db_option, shown
from .errors import InputDataError, Problem, StateError, UsageError, problem_json
from .store import ANNULLED_MARK, Bordereau, _errors_json, pes_typ_bord, with_errors
from .validate import (
    _HEAD_BYTES,
    _parser,
    declares_doctype,
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
# tied (refused rather than tied wrong), and said so; support may tie it by hand (--run).
RECETTE_DOMAINS = frozenset({"6", "7"})
ROLE_TYP_BORD = "06"
# The PES file types the DGFiP documents (Enveloppe/Parametres/TypFic: XSD v5.17
# Class_Enveloppe.xsd, DT v5.19 DomaineGlobalAller_blocscommuns), which begin the names
# of the files pesgen writes (PESORMC_…, PESALR1_…)
FILE_KINDS = {"PESORMC": "an ORMC file (TypFic PESORMC)",
              "PESALR1": "a PES_Aller file (TypFic PESALR1)"}
# The file as a whole (guichet "boîte 1": schema, signatures): no bordereau named
FILE_DOMAINS = frozenset({"0", "1", "2"})
# The domains that name the guichet's check, not a kind of bordereau (TDomaineAck, DT
# v5.19 Acquittement_codes: the others are Dépense, Recette, Rôle, Budget…): one naming
# a NumBord may answer a recette of pesgen's, which the acquit does not say (not tied)
CHECK_DOMAINS = FILE_DOMAINS | {"3", "99"}
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
# a bordereau number Hélios knows already (DT v5.19 PES_RecetteAller_blocs, IdBord: « Si
# le numéro est déjà connu dans Hélios […] rejet du bordereau pour cause de doublon »)
DOUBLON_BORDEREAU = "ERREUR_DOUBLON_BORDEREAU"
# a piece Hélios knows already (TNumAnoAck): its title may be at the trésorerie already
DOUBLON_PIECE = "ERREUR_DOUBLON_PIECE"
_BOOLEAN = {"1": True, "true": True, "0": False, "false": False}  # xs:boolean
_DIGITS = re.compile(r"[0-9]+")
# xs:date (Base_Date, EnTetePES/DteStr): a day, with an optional time zone
_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(Z|[+-][0-9]{2}:[0-9]{2})?")


# what a LibelleAnoAck shows at most on a terminal (a libellé is a sentence or two; one
# recorded before the reader refused those over LABEL_MAX may be longer)
LABEL_LIMIT = 500
# the longest LibelleAnoAck, in characters (Base_Texte500_Light, XSD v5.17; DT v5.19
# Acquittement_blocs): a longer one is refused, as the XSD refuses it
LABEL_MAX = 500
# the version of the PES_ACQUIT read here (EnTeteAcquit/IdVer, Base_Num2_Light: « Version
# de l'Acquit (2) », DT v5.19 Acquittement_blocs; the namespace's, …/retour/v2)
ACQUIT_VERSION = 2


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
        code = shown(self.code) if self.code else "(no code)"
        if not self.known:
            code += " (not in the DGFiP code list, XSD v5.17)"
        # the DGFiP's words, as the file gives them: escaped and cut for a terminal (the
        # store and --json keep them exact)
        return f"{code}: {shown(self.label, LABEL_LIMIT)}" if self.label else code


@dataclass(frozen=True)
class AckLine:
    # NumLigne: the IdLigne of a line of the piece; None: its V is empty, which the XSD
    # allows (Base_Num13_Light, « (0 à N) caractères numériques »): no line named
    number: int | None
    errors: tuple[AckError, ...]
    at: int = 0  # its NumLigne's line in the acknowledgement file

    @property
    def said(self) -> str:
        """``IdLigne 2``, or what the acquit leaves empty, at its line."""
        return (f"IdLigne {self.number}" if self.number is not None else
                f"IdLigne ? (NumLigne is empty, line {self.at})")


@dataclass(frozen=True)
class AckPiece:
    # NumPiece: the IdPce of a piece of the bordereau; None: its V is empty (as NumLigne)
    number: int | None
    errors: tuple[AckError, ...]
    lines: tuple[AckLine, ...]
    at: int = 0  # its NumPiece's line in the acknowledgement file

    @property
    def said(self) -> str:
        """``IdPce 3``, or what the acquit leaves empty, at its line."""
        return (f"IdPce {self.number}" if self.number is not None else
                f"IdPce ? (NumPiece is empty, line {self.at})")


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
    # NumBord, ExerciceBord given with an empty V (the XSD allows it: Base_Num7_Light,
    # Base_Num4_Light, « (0 à N) caractères numériques »), with their line in the file:
    # read as not given (bordereau, exercise None), never as a number
    empty: tuple[tuple[str, int], ...] = ()

    @property
    def domain_label(self) -> str:
        return DOMAINS.get(self.domain, "?")

    def missing(self, tag: str) -> str:
        """How the element lacks ``tag`` (NumBord, ExerciceBord): ``NumBord is empty
        (line 58)`` or ``no NumBord``."""
        line = dict(self.empty).get(tag)
        return f"{tag} is empty (line {line})" if line is not None else f"no {tag}"


@dataclass(frozen=True)
class Acquit:
    name: str
    # EnTetePES/IdColl; None: its V is empty, which the XSD allows (Base_Num14_Light,
    # « (0 à N) caractères numériques »): not given, so whose acquit it is is unknown
    id_coll: str | None
    cod_bud: str
    id_post: str | None
    nom_fic: str | None  # Enveloppe/Parametres/NomFic
    elements: tuple[AckElement, ...]
    # EnTetePES/DteStr, "date d'émission de la structure": the day the guichet wrote the
    # acknowledgement (None: not given, which only its XSD forbids)
    issued_on: str | None = None
    sha256: str = ""  # of the file's bytes, as read
    # EnTetePES/LibelleColBud, the collectivity's and budget's name (None: not given)
    coll_label: str | None = None
    # the line of an IdColl given with an empty V (None: IdColl is given)
    id_coll_empty_at: int | None = None
    # what is read but is to know (acquit.mojibake: UTF-8 bytes in a file declaring
    # ISO-8859-1, or a text converted to UTF-8 twice), in the file's order; never a refusal
    warnings: tuple[Problem, ...] = ()

    @property
    def id_coll_said(self) -> str:
        """``IdColl 21450999400015``, or ``IdColl ? (empty, line 22)``: for messages."""
        return (f"IdColl {shown(self.id_coll)}" if self.id_coll is not None else
                f"IdColl ? (empty, line {self.id_coll_empty_at})")

    @property
    def unchecked(self) -> str | None:
        """Why no bordereau of this acquit can be tied to a run: its IdColl is empty, so
        pesgen cannot tell whose it is (None: it is given)."""
        if self.id_coll is not None:
            return None
        return (f"the acquit's IdColl is empty (line {self.id_coll_empty_at}): pesgen cannot "
                "tell whose acquit it is and does not guess: not tied; ask the trésorerie "
                "(rule acquit.id-coll)")

    @property
    def collectivity(self) -> str:
        """``IdColl 21450999400015 budget 00 (IdPost 045012, COMMUNE DE …)``, for
        messages (the file's text, escaped)."""
        more = ", ".join(x for x in (
            f"IdPost {shown(self.id_post)}" if self.id_post else "",
            shown(self.coll_label, 80) if self.coll_label else "") if x)
        return (f"{self.id_coll_said} budget {shown(self.cod_bud)}"
                + (f" ({more})" if more else ""))


def read_acquit(path: Path, official: Path | None = None) -> Acquit:
    """The acknowledgement in ``path``. Refuses (UsageError) a file that is missing, not
    XML or not a PES_ACQUIT version 2; (InputDataError) one not well-formed, declaring a
    DOCTYPE, invalid against the DGFiP XSD (``official``: the package, as
    ``--official-xsd``) or, without it, lacking what is read here, with every problem
    at its line."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    # read once: everything below comes from these bytes, so the sha256 recorded is that
    # of what was parsed, even if the file is replaced meanwhile; its head first, so that
    # another file given by mistake (an archive, a large export) is refused unread
    with path.open("rb") as handle:
        data = handle.read(_HEAD_BYTES)
        start = not_xml_bytes(data)
        if start is None:
            data += handle.read()
    if start is not None:
        raise UsageError(f"{path} is not XML (its first character is {start!r}, not '<'): "
                         "pesgen acquit reads the PES_ACQUIT XML file the trésorerie's "
                         "guichet XML returns")
    name = path.name
    # the DOCTYPE found in the bytes, before any parser meets its entities (never
    # expanded: they would make the file fail as not well-formed, saying less)
    if declares_doctype(data):
        raise _doctype_refused(path, name)
    try:
        doc = etree.parse(_source(data, path), _parser())
    except etree.XMLSyntaxError as exc:
        wrong = _encoding_problem(data, name)
        if wrong is not None:
            raise InputDataError(f"{path} is not UTF-8, the encoding XML reads it in: "
                                 "refused, nothing read", [wrong]) from None
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
        # an element missing, a value it cannot read, or one given twice or out of its
        # place (_unread): not "lacks" alone
        raise InputDataError(f"{path} is not what pesgen reads in a PES_ACQUIT: "
                             f"{len(problems)} problem(s)", problems)
    return replace(acquit, sha256=hashlib.sha256(data).hexdigest(),
                   warnings=_mojibake(root, data, name))


def _doctype_refused(path: Path, name: str) -> InputDataError:
    """A PES_ACQUIT has no DTD: one that declares it is not the guichet's (an XXE
    attempt, or another file); refused before anything in it is read."""
    return InputDataError(f"{path} declares a DOCTYPE; a PES_ACQUIT has none: refused, "
                          "nothing read", [Problem("acquit.doctype",
                                                   "the file declares a DOCTYPE",
                                                   record=f"{name}:1")])


# the XML declaration's encoding (XML 1.0 §4.3.3: none, or no declaration, is UTF-8)
_DECLARED = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_BOM_UTF8 = b"\xef\xbb\xbf"


def _encoding_problem(data: bytes, name: str) -> Problem | None:
    """Why a file the parser refused is not in its declared encoding (None: it is, or
    it declares another one than UTF-8, the parser's error then stands): a file read as
    UTF-8, because it declares so or declares nothing (no XML declaration, or one without
    encoding), holding a byte that is not UTF-8, as a Latin-1 file from the guichet
    whose declaration was removed (the guichet writes ISO-8859-1, and declares it)."""
    head = data[:_HEAD_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:2]:
        return None  # UTF-16 or 32: the parser's own reading
    found = _DECLARED.match(head.removeprefix(_BOM_UTF8).lstrip())
    declared = found.group(1).decode("ascii") if found else None
    # a UTF-8 byte order mark makes XML read the file as UTF-8 whatever it declares
    # (XML 1.0 Appendix F; libxml2 does): a Latin-1 file an editor put one before
    bom = head.startswith(_BOM_UTF8)
    if (not bom and declared is not None
            and declared.lower().replace("_", "-") not in ("utf-8", "utf8")):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
    else:
        return None
    said = ("it begins with a UTF-8 byte order mark (bytes EF BB BF), so XML reads it as "
            "UTF-8" + (f" whatever its declaration (encoding {declared}) says"
                       if declared is not None else "") if bom else
            "it declares encoding " + declared if declared is not None else
            "it has no XML declaration naming an encoding, so XML reads it as UTF-8")
    changed = ("a byte order mark was put before its first line after it was downloaded "
               "(an editor saving it)" if bom else
               "this file's first line was changed or removed after it was downloaded")
    return Problem(
        "acquit.encoding",
        f"the file is not UTF-8, and {said}: byte 0x{byte:02X} at line {line} is not UTF-8 "
        f"(in Latin-1 it is {shown(bytes([byte]).decode('latin-1'))}). The guichet XML writes its "
        "acknowledgements in ISO-8859-1 and says so in their first line, <?xml "
        f"version=\"1.0\" encoding=\"ISO-8859-1\"?>: {changed}. Take the file again from the "
        "guichet (or from whoever passed it on) as it came; pesgen does not guess an "
        "encoding",
        record=f"{name}:{line}")


def _mojibake(root: Any, data: bytes, name: str) -> tuple[Problem, ...]:
    """The values read otherwise than the guichet wrote them, one problem per value (its
    line and XPath), in the file's order; never a refusal (the file is what it says, to
    XML), but the libellés shown and recorded are not the trésorerie's words:

    * a file declaring a single-byte encoding (the guichet's ISO-8859-1) whose bytes are
      UTF-8 all the same: converted to UTF-8 on its way (an editor, a mail gateway) and
      its first line left as it was. Read as declared, each accented letter is two
      (« Civilité » reads « CivilitÃ© »). None when the file is ASCII, or not UTF-8 (a
      real ISO-8859-1 file's « é » alone is no UTF-8), or declares UTF-8 or UTF-16;
    * a file XML reads as UTF-8 (or UTF-16) with a value whose text is UTF-8 read as
      Latin-1 (or Windows-1252) and converted again (``_converted_again``): the file
      converted to UTF-8 once too many, its declaration saying UTF-8 (or nothing) as it
      then should, so that XML reads « CivilitÃ© » too.

    The tree is walked only when the bytes say one of them may be there."""
    head = data[:_HEAD_BYTES]
    if data.isascii():
        return ()
    found = _DECLARED.match(head.removeprefix(_BOM_UTF8).lstrip())
    declared = found.group(1).decode("ascii") if found else None
    try:
        codec = codecs.lookup("utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else
                              "utf-8-sig" if head.startswith(_BOM_UTF8) or declared is None
                              else declared)
    except LookupError:  # the parser read it: libxml2 knows names Python does not
        return ()
    unicode = (codec.name in ("utf-8", "utf-8-sig")
               or codec.name.startswith(("utf-16", "utf-32")))
    if not unicode:
        assert declared is not None
        try:
            data.decode("utf-8")  # a real ISO-8859-1 file fails at its first accented letter
        except UnicodeDecodeError:
            return ()  # as the guichet writes it: its text is the trésorerie's, as it is
        return _declared_single_byte(root, name, declared, codec.name)
    # the text as XML read it (a file the guichet did not write: it writes ISO-8859-1)
    if not _TWICE.search(data.decode(codec.name, errors="replace")):
        return ()
    tree = root.getroottree()
    out = []
    for el, what, value in _values(root):
        meant, times = value, 0
        while _TWICE.search(meant) and (undone := _converted_again(meant)) is not None:
            meant, times = undone, times + 1
        if times:
            out.append(Problem(
                "acquit.mojibake",
                f"{what} reads '{shown(value, 60)}': the characters of "
                f"'{shown(meant, 60)}' written in UTF-8 and read back as Latin-1 "
                "(Windows-1252), each accented letter two. The file was converted to UTF-8 "
                + ("once more than it should" if times == 1 else
                   f"{times} times more than it should")
                + " after the guichet wrote it (converted again as if it were ISO-8859-1, "
                "when it was UTF-8 already): read, shown and recorded as it is; take the "
                "file again from the guichet as it came",
                record=f"{name}:{el.sourceline} {tree.getpath(el)}"))
    return tuple(out)


def _values(root: Any) -> Iterator[tuple[Any, str, str]]:
    """Each attribute value not ASCII, in the file's order: its element, what it is
    (``LibelleAnoAck``: its V; ``X/@a`` another attribute) and its text."""
    for el in root.iter(etree.Element):
        for attr, value in el.attrib.items():
            if not value.isascii():
                yield el, etree.QName(el).localname + ("" if attr == "V" else f"/@{attr}"), value


def _declared_single_byte(root: Any, name: str, declared: str, codec: str
                          ) -> tuple[Problem, ...]:
    """The values of a file declaring ``declared`` (single-byte) whose bytes are UTF-8."""
    tree = root.getroottree()
    out = []
    for el, what, value in _values(root):
        try:
            meant = value.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        out.append(Problem(
            "acquit.mojibake",
            f"{what} reads '{shown(value, 60)}' as the file declares it ({declared}), "
            f"but its bytes are UTF-8: '{shown(meant, 60)}'. The file was converted to "
            "UTF-8 after the guichet wrote it and its first line left declaring "
            f"{declared}: read, shown and recorded as declared; take the file again "
            "from the guichet as it came",
            record=f"{name}:{el.sourceline} {tree.getpath(el)}"))
    return tuple(out)


# Windows-1252's characters for the bytes 80 to 9F (Latin-1 has C1 controls there; five
# of them, 81 8D 8F 90 9D, are none in Windows-1252: a converter keeps them as the C1
# control, which Latin-1 gives back)
_CP1252 = {c: b for b in range(0x80, 0xA0)
           if (c := bytes([b]).decode("cp1252", errors="ignore"))}
# UTF-8 read as Latin-1 or Windows-1252: a lead byte's character (C2 to EF: « Ã » for C3,
# « â » for E2) then a continuation byte's (80 to BF: « © » for A9, « € » for 80).
# French text has no such pair: its accented letters are C0 to FF in Latin-1, none a
# continuation byte (and « Ã » before a letter is Portuguese: « JOÃO »)
_TWICE = re.compile("[\u00c2-\u00ef][\u0080-\u00bf"
                    + "".join(re.escape(c) for c in _CP1252) + "]")
# what converting once too many can have turned: the Latin-1 letters and signs, the
# French ligatures and Ÿ, and Windows-1252's punctuation (’ « … € and the narrow
# no-break space French puts before « ; » and « ! »); a value whose undoing gives
# anything else (« CAFÉ… »: C9 85, U+0245) is taken as written
_PLAUSIBLE = re.compile("[\x00-\x7f\u00a0-\u00ff\u0152\u0153\u0178\u2010-\u2027"
                        "\u202f\u2030\u2039\u203a\u20ac\u2122]*")


def _converted_again(value: str) -> str | None:
    """``value`` as it was before UTF-8 text was read as Latin-1 (Windows-1252) and
    converted to UTF-8 again: its characters as the bytes they were read from, read as
    UTF-8, the whole value (None: not so; an accented letter of real French text alone
    is no UTF-8, and what it would give must be text too, ``_PLAUSIBLE``)."""
    try:
        raw = bytes(ord(c) if ord(c) < 0x100 else _CP1252[c] for c in value)
        meant = raw.decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return None
    return meant if meant != value and _PLAUSIBLE.fullmatch(meant) else None


def _source(data: bytes, path: Path) -> io.BytesIO:
    """``data`` for lxml to read as ``path`` (its messages name the file)."""
    source = io.BytesIO(data)
    source.name = str(path)
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

    def value(parent: Any, tag: str, required: bool = True, digits: int | None = None,
              empty: bool = False) -> str | None:
        """The V of ``tag``; ``empty``: an empty V is a value (""), which the XSD allows
        (a *_Light type: « (0 à N) caractères »)."""
        el = parent.find(tag)
        if el is None:
            if required:
                problem(parent, f"no {tag}")
            return None
        v = el.get("V")
        if empty and v == "":
            return v
        if v is None or (required and not v.strip()):
            problem(el, f"{tag} has no value (attribute V)")
            return None
        if digits is not None and not (_DIGITS.fullmatch(v) and len(v) <= digits):
            problem(el, f"{tag} is '{shown(v, 20)}', not a number of at most {digits} digits")
            return None
        return v

    def label(error: Any) -> str | None:
        v = value(error, "LibelleAnoAck", required=False)
        if v is not None and len(v) > LABEL_MAX:
            problem(error.find("LibelleAnoAck"), f"LibelleAnoAck is {len(v)} characters, more "
                    f"than the {LABEL_MAX} the XSD allows (Base_Texte500_Light): not read")
        return v

    def errors(parent: Any) -> tuple[AckError, ...]:
        return tuple(AckError(value(e, "NumAnoAck", required=False), label(e))
                     for e in parent.findall("Erreur"))

    head = root.find("EnTetePES")
    id_coll = cod_bud = id_post = issued_on = coll_label = None
    if head is None:
        problem(root, "no EnTetePES (IdColl and CodBud name the collectivity's budget)")
    else:
        # empty=True: Base_Num14_Light allows V="", read as not given (never a number)
        id_coll = value(head, "IdColl", digits=14, empty=True)
        cod_bud = value(head, "CodBud")
        id_post = value(head, "IdPost", required=False)
        coll_label = value(head, "LibelleColBud", required=False)
        issued_on = _day(head, value(head, "DteStr", required=False), problem)
    nom_fic = root.find("Enveloppe/Parametres/NomFic")
    ack = root.find("ACQUIT")
    version = None if ack is None else ack.find("EnTeteAcquit")
    if version is not None:
        # not given (no IdVer, which only the XSD requires, or V="", which it allows):
        # the namespace says the version; another one than 2 is not what is read here
        id_ver = value(version, "IdVer", required=False, digits=2, empty=True)
        if id_ver and int(id_ver) != ACQUIT_VERSION:
            problem(version.find("IdVer"), f"IdVer is '{id_ver}': pesgen reads version "
                    f"{ACQUIT_VERSION} of the PES_ACQUIT (its namespace's), not another")
    items = [] if ack is None else ack.findall("ElementACQUIT")
    if not items:
        problem(root if ack is None else ack, "no ACQUIT/ElementACQUIT")
    elements = []
    for item in items:
        domain = value(item, "DomaineAck")
        if domain is not None and domain not in DOMAINS:
            problem(item.find("DomaineAck"), f"DomaineAck '{shown(domain, 20)}' is not a code of "
                    f"the DGFiP list ({', '.join(DOMAINS)})")
        state = value(item, "EtatAck")
        if state is not None and state.strip() not in _BOOLEAN:
            problem(item.find("EtatAck"), f"EtatAck is '{shown(state, 20)}', not 1 (accepted) nor "
                    "0 (rejected)")
        bordereau = value(item, "NumBord", required=False, digits=7, empty=True)
        exercise = value(item, "ExerciceBord", required=False, digits=4, empty=True)
        empty = tuple((tag, item.find(tag).sourceline) for tag, v in (
            ("NumBord", bordereau), ("ExerciceBord", exercise)) if v == "")
        pieces = []
        for piece in item.findall("DetailPiece"):
            number = value(piece, "NumPiece", digits=13, empty=True)
            lines = []
            for line in piece.findall("DetailLigne"):
                numero = value(line, "NumLigne", digits=13, empty=True)
                lines.append(AckLine(_number(numero), errors(line), _at(line, "NumLigne")))
            pieces.append(AckPiece(_number(number), errors(piece), tuple(lines),
                                   _at(piece, "NumPiece")))
        elements.append(AckElement(
            item.sourceline, domain or "", _BOOLEAN.get((state or "").strip(), False),
            int(bordereau) if bordereau else None, int(exercise) if exercise else None,
            value(item, "IdMarche", required=False), value(item, "IdUnique", required=False),
            errors(item), tuple(pieces), empty))
    _unread(root, problem)
    return Acquit(name, id_coll or None, cod_bud or "", id_post,
                  None if nom_fic is None else nom_fic.get("V"), tuple(elements), issued_on,
                  coll_label=coll_label,
                  id_coll_empty_at=_at(head, "IdColl") if id_coll == "" else None)


# Where the XSD has each element pesgen reads (PES_V2_Acquit_Autonome_V2.xsd, with
# Class_EntetePES and Class_Enveloppe): its parent's name ("": the root). Erreur,
# ElementACQUIT, DetailPiece and DetailLigne may repeat there, the others are read once
_PLACES = {"Enveloppe": ("",), "Parametres": ("Enveloppe",), "NomFic": ("Parametres",),
           "EnTetePES": ("",), "ACQUIT": ("",), "EnTeteAcquit": ("ACQUIT",),
           "IdVer": ("EnTeteAcquit",),
           **dict.fromkeys(("IdColl", "CodBud", "IdPost", "LibelleColBud", "DteStr"),
                           ("EnTetePES",)),
           "ElementACQUIT": ("ACQUIT",),
           **dict.fromkeys(("DomaineAck", "EtatAck", "NumBord", "ExerciceBord", "IdMarche",
                            "IdUnique", "DetailPiece"), ("ElementACQUIT",)),
           "Erreur": ("ElementACQUIT", "DetailPiece", "DetailLigne"),
           "NumAnoAck": ("Erreur",), "LibelleAnoAck": ("Erreur",),
           "NumPiece": ("DetailPiece",), "DetailLigne": ("DetailPiece",),
           "NumLigne": ("DetailLigne",)}


# the elements read as many times as they are given (findall), the others once (find)
_REPEATED = frozenset({"ElementACQUIT", "Erreur", "DetailPiece", "DetailLigne"})


def _unread(root: Any, problem: Any) -> None:
    """A problem for each element of a tag pesgen reads (``_PLACES``) that ``_read``
    does not read, the outermost only, in the file's order: a second EtatAck or ACQUIT,
    which the XSD forbids (reading the first would drop what the second says: a
    rejection), one out of its place (an ElementACQUIT outside ACQUIT), or in a
    namespace (below the root, the XSD's elements are in none: elementFormDefault
    unqualified). Never read as if it were not there, nor chosen between. One pass
    over the tree, holding nothing of it (a large file stays a large file's size)."""
    found: list[tuple[int, Any, str]] = []
    # (element, whether _read reads it): an element of another tag under one read (an
    # Emetteur) is walked too, what of pesgen's tags it holds being out of its place
    todo: list[tuple[Any, bool]] = [(root, True)]
    while todo:
        parent, read = todo.pop()
        where = "" if parent is root else _local(parent.tag)[1]
        firsts: dict[str, Any] = {}
        for el in parent.iterchildren(etree.Element):
            namespace, tag = _local(el.tag)
            if tag not in _PLACES:
                todo.append((el, False))
                continue
            if namespace:
                said = (f"{tag} is in namespace {shown(namespace, 80)}, where the XSD "
                        "has its elements in none (elementFormDefault unqualified: only "
                        "PES_ACQUIT is in the namespace): not read")
            elif not read or where not in _PLACES[tag]:
                places = " or ".join(x or "PES_ACQUIT" for x in _PLACES[tag])
                said = (f"{tag} in {where or 'PES_ACQUIT'}, where the XSD has none (it "
                        f"belongs in {places}): not read")
            elif tag in firsts:
                said = (f"a second {tag} in {where or 'PES_ACQUIT'} (the one read is at line "
                        f"{firsts[tag].sourceline}), where the XSD allows one: pesgen does "
                        "not choose which to read")
            else:
                if tag not in _REPEATED:
                    firsts[tag] = el
                todo.append((el, True))
                continue
            found.append((el.sourceline or 0, el, said))  # what it holds is not looked at
    for _line, el, said in sorted(found, key=lambda x: x[0]):
        problem(el, said)


def _local(tag: str) -> tuple[str, str]:
    """An element's namespace ("": none) and local name, from lxml's ``{ns}name``."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _number(v: str | None) -> int | None:
    """A NumPiece's or NumLigne's number; None: its V is empty (a missing one is a
    problem already, and its 0 never read)."""
    return None if v == "" else int(v or 0)


def _at(parent: Any, tag: str) -> int:
    """The line of ``parent``'s ``tag`` (of ``parent`` when it has none)."""
    el = parent.find(tag)
    return int((el if el is not None else parent).sourceline or 0)


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


def recorded_tie(domain: str, typ_bord: str) -> str:
    """How a recorded status was tied, from its DomaineAck and the run's TypBord (no
    column says it): `` (whole file)`` a file domain (0-2, ``--run``), `` (tied by
    --run)`` a recette domain the TypBord does not fit; else nothing."""
    if domain in FILE_DOMAINS:
        return " (whole file)"
    if domain in RECETTE_DOMAINS and not domain_fits(domain, typ_bord):
        return " (tied by --run)"
    return ""


def file_kind(name: str | None) -> str | None:
    """The PES file type a file name begins with (``PESORMC_…``, ``PESALR1_…``), or None:
    a name that tells none."""
    if not name:
        return None
    head = name.split("_", 1)[0].upper()
    return head if "_" in name and head in FILE_KINDS else None


# what a set-aside's why ends with, as a problem's text ends with its rule: the rule
# that keeps the run untied (docs/rules.md)
_DOMAIN_RULE = "(rule acquit.domain)"


def _set_aside(acquit: Acquit, e: AckElement, r: Recorded, by_run: bool = False
               ) -> SetAside | None:
    """Why the element does not answer the candidate ``r`` (None: nothing contradicts).
    ``by_run``: support named ``r``'s run (``--run``): its domain is not compared."""
    if not by_run and not domain_fits(e.domain, r.typ_bord):
        said = "rôle" if r.typ_bord == ROLE_TYP_BORD else "bordereau"
        why = (f"DomaineAck {e.domain} ({e.domain_label}) for "
               f"{_kind_of_bordereau(r.typ_bord)} of run {r.run_id}: not tied; if the "
               f"trésorerie acknowledges this {said} so, check with it which bordereau it "
               f"answers (`pesgen runs show {r.run_id}`): pesgen ties DomaineAck 7 to a rôle "
               "only, 6 to a titres bordereau only (docs/state.md); if it does answer this "
               f"run, record it with --record --run {r.run_id} {_DOMAIN_RULE}")
        return SetAside(r, why, f"its TypBord {r.typ_bord} contradicts DomaineAck {e.domain}")
    # NomFic only ever refuses: that it names the file acknowledged is unconfirmed
    named, wrote = file_kind(acquit.nom_fic), file_kind(r.file)
    if named is not None and wrote is not None and named != wrote:
        why = (f"the acquit's NomFic {acquit.nom_fic} is {FILE_KINDS[named]}, run "
               f"{r.run_id} wrote {FILE_KINDS[wrote]} ({r.file}) for this bordereau: not tied "
               f"{_DOMAIN_RULE}")
        return SetAside(r, why, f"its file is not of the NomFic's kind ({named})")
    return None


# the rule of a NumLigne naming no line of the title tied (docs/rules.md)
LINE_RULE = "acquit.line"
# the rule of a NumPiece naming no title of the bordereau tied (docs/rules.md)
PIECE_RULE = "acquit.piece"


def no_such_line(piece: str, title: str, number: int | None, lines: int | None,
                 short: bool = False) -> str | None:
    """Why NumLigne ``number`` of ``piece`` (``IdPce 3``) is no line of its title
    (``title``: ``invoice FA-2026-00103 (/…/school-export.json:$.invoices[2])``) of
    ``lines`` lines, as `pesgen acquit` and `runs show` say it (``short``: beside the line,
    under its piece; rule acquit.line); None: it is one, or pesgen cannot tell (the
    title's line count not kept, the NumLigne empty)."""
    if lines is None or number is None or 1 <= number <= lines:
        return None
    if short:
        return (f"no such line: the title has {lines} line(s), IdLigne 1 to {lines}; rule "
                f"{LINE_RULE}")
    return (f"{piece} {title}: no IdLigne {number}, its run wrote the title with {lines} "
            f"line(s) (IdLigne 1 to {lines}): pesgen cannot tell which line the acquit's "
            f"error is about (rule {LINE_RULE})")


# what `pesgen acquit` and `runs show` say beside a NumPiece no title of the bordereau
# tied has (rule acquit.piece)
NO_SUCH_PIECE = f"no title of the recorded bordereau has this IdPce; rule {PIECE_RULE}"


@dataclass(frozen=True)
class PieceReport:
    piece: AckPiece
    invoice: str | None  # the invoice of the IdPce in the recorded bordereau
    # its record in the input the run read (``/abs/school-export.json:$.invoices[7]``);
    # None: a run recorded before the store kept it (schema 19)
    record: str | None = None
    # how many lines the title has in the file its run wrote (IdLigne 1 to this); None:
    # no title, or a run recorded before the store kept it (schema 21): not checked
    line_count: int | None = None

    @property
    def title_said(self) -> str:
        """``invoice FA-2026-00103 (/…/school-export.json:$.invoices[2])``: the title as
        the report names it."""
        return f"invoice {self.invoice}" + (f" ({self.record})" if self.record else "")

    def no_such_line(self, line: AckLine, short: bool = False) -> str | None:
        """Why ``line`` (one of this piece's NumLigne) is no line of the title tied, as
        support reads it (``short``: beside the line, under its piece); None: it is one,
        or pesgen cannot tell (no title, its line count not kept, the NumLigne empty)."""
        if self.invoice is None:
            return None
        return no_such_line(self.piece.said, self.title_said, line.number, self.line_count,
                            short)

    @property
    def lines_unchecked(self) -> tuple[int, ...]:
        """Its NumLigne pesgen cannot check: of a title tied whose line count the store
        does not keep (a run recorded before schema 21); an empty NumLigne is no number."""
        if self.invoice is None or self.line_count is not None:
            return ()
        return tuple(ln.number for ln in self.piece.lines if ln.number is not None)


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
    # tied by hand (``--run``): what pesgen would not have tied by itself ("DomaineAck 6
    # (Recette) for a rôle (TypBord 06)", "the whole file"; "": nothing, the run named
    # fits); None: tied (or not) by pesgen
    by_run: str | None = None
    # why the run named with --run is not tied (not its bordereau, exercise…)
    untied: str | None = None
    # the bordereau a whole-file element is tied to (``--run``): it names none itself
    file_bordereau: int | None = None
    # what was recorded from this element (this file, its line) before, whatever is tied
    # now (a store.Acknowledgement), and how it was tied (recorded_tie: " (tied by
    # --run)", " (whole file)", "")
    from_file: Any = None
    from_file_tie: str = ""
    # no run of the store is of the acquit's collectivity or budget: which (see
    # AcquitReport.stranger); None: some are
    elsewhere: str | None = None
    # the acquit's IdColl is empty: why nothing is tied (Acquit.unchecked); None: given
    unchecked: str | None = None
    # not the bordereau --bordereau names: left out on purpose, not a thing to check
    restricted: bool = False
    # an acceptance of a bordereau cancelled in pesgen (cancelled_acceptance): how many of
    # its invoices active runs hold now (exported again since) and which, ((run, IdBords),
    # …): the trésorerie may bill them twice
    again: int = 0
    again_by: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # a whole-file element read without --run: the active bordereau (run, IdBord) whose
    # file bears the acquit's NomFic, when one alone does; suggested in the command to
    # record it, never tied by it (that NomFic names the file sent is unconfirmed)
    nom_fic_of: tuple[str, int, str] | None = None  # (run, IdBord, the NomFic)

    def from_file_said(self) -> str | None:
        """``recorded already from this file as IdBord 1 of run … (tied by --run):
        rejected on …  (line 31, recorded …)``; None: nothing recorded from it."""
        a = self.from_file
        if a is None:
            return None
        return (f"recorded already from this file as IdBord {a.id_bord} of run {a.run_id}"
                f"{self.from_file_tie}: {a.outcome} (line {a.line}, recorded {a.recorded_at}"
                + (f"; replaced since, {a.superseded_at}" if a.superseded_at else "") + ")")

    @property
    def run(self) -> Recorded | None:
        """The one run this element is tied to: a bordereau only one run of the store
        holds (with a TypBord its DomaineAck fits, or the run named with --run), or the
        whole file the run named with --run wrote; None: none, or several."""
        return (self.found[0] if self.kind in ("bordereau", "file") and len(self.found) == 1
                else None)

    @property
    def tie_note(self) -> str | None:
        """``tied by --run: DomaineAck 6 (Recette) for a rôle (TypBord 06)``, ``tied by
        --run``; None: not tied by --run."""
        if self.run is None or self.by_run is None:
            return None
        return "tied by --run" + (f": {self.by_run}" if self.by_run else "")

    @property
    def bordereau(self) -> int | None:
        """The IdBord this element answers: its NumBord, or for a whole-file element
        tied with --run, the bordereau of the run's file."""
        e = self.element
        return e.bordereau if e.bordereau is not None else self.file_bordereau

    @property
    def unidentified(self) -> tuple[str, ...]:
        """What of this element pesgen would tie but cannot, for an identifier the acquit
        leaves empty or out (``NumBord is empty (line 58)``, ``no ExerciceBord``,
        ``NumPiece is empty (line 41)``): a recette element without its NumBord or
        ExerciceBord, a piece or line without its number in a bordereau tied to a run.
        Never guessed; ``pesgen acquit`` exits 10 for it when nothing is rejected."""
        e = self.element
        out = []
        if e.domain in RECETTE_DOMAINS and self.run is None and self.from_file is None:
            if self.kind == "unnamed":
                out.append(e.missing("NumBord"))
            elif self.kind == "bordereau" and e.exercise is None:
                out.append(e.missing("ExerciceBord"))
        if self.run is not None:
            for p in e.pieces:
                if p.number is None:
                    out.append(f"NumPiece is empty (line {p.at})")
                out += [f"NumLigne is empty (line {ln.at})" for ln in p.lines
                        if ln.number is None]
        return tuple(out)

    @property
    def no_such_lines(self) -> tuple[str, ...]:
        """Each NumLigne of a piece tied to a title that is no line of that title (a
        NumLigne 7 of a title of 3 lines), said as ``PieceReport.no_such_line``: the
        acquit's line errors cannot be put on a line of the file sent (rule
        acquit.line). None of a run recorded before the store kept its titles' lines."""
        return tuple(x for p in self.pieces for ln in p.piece.lines
                     if (x := p.no_such_line(ln)) is not None)

    @property
    def no_such_pieces(self) -> tuple[str, ...]:
        """Each NumPiece of an element tied to one run that no title of its bordereau has
        (IdPce 12 of a bordereau of 11 titles): the acquit's errors on it cannot be put on
        a title of the file sent, and pesgen does not guess which (rule acquit.piece)."""
        if self.run is None:
            return ()
        return tuple(f"{p.piece.said}: no title of IdBord {self.bordereau} has this IdPce in "
                     f"the file run {self.run.run_id} wrote (rule {PIECE_RULE})"
                     for p in self.pieces if p.invoice is None and p.piece.number is not None)

    @property
    def lines_unchecked(self) -> Iterator[UncheckedLine]:
        """Each NumLigne of a piece tied to a title pesgen cannot check, its run recorded
        before the store kept each title's number of lines (schema 21), as
        ``lines_unchecked`` counts it; none when the element is tied to no one run."""
        if self.run is None:
            return
        for p in self.pieces:
            for line in p.lines_unchecked:
                assert p.piece.number is not None  # a title is tied to its IdPce
                yield self.run.run_id, self.bordereau, p.piece.number, line

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
        if e.accepted and (errors := _all_errors(e)):
            # the trésorerie took it, and says something all the same: not "accepted"
            said += f", with {len(errors)} error(s)"
        if self.run is None and self.from_file is not None:
            # tied when recorded (--run), not by this reading: what was recorded stands
            return f"{said}: {self.from_file_said()}"
        if self.kind == "file":
            # the guichet's step 1 (schema, signatures) rejects the whole flow
            step = " at the guichet XML's first step" if e.domain in FILE_DOMAINS else ""
            tied = self.run
            return (f"{said}: the whole file (no bordereau, PJ nor market named)" + (
                "" if e.accepted else f"; every bordereau of it is rejected{step}") + (
                f"; tied by --run to IdBord {self.bordereau} of run {tied.run_id}, its "
                f"file {tied.file}" if tied is not None else
                f"; {self.untied}" if self.untied else ""))
        if self.kind == "attachment":
            return f"{said}: PJ {e.attachment} (pesgen sends no PJ)"
        if self.kind == "market":
            return f"{said}: market {e.market} (pesgen sends no market)"
        if self.kind == "unnamed" and "NumBord" in dict(e.empty):
            # a bordereau's element whose number Hélios left empty: never taken for the
            # whole file (domains 0-2) nor for any bordereau
            whole = (" (nor whether it answers the whole file)" if e.domain in FILE_DOMAINS
                     else "")
            return (f"{said}: an element of domain {e.domain_label} naming a bordereau "
                    f"without its number, {e.missing('NumBord')}: pesgen cannot tell which "
                    f"bordereau it answers{whole} and does not guess: not tied; ask the "
                    "trésorerie which bordereau it is")
        if self.kind == "unnamed":
            return (f"{said}: an element of domain {e.domain_label} naming no bordereau (no "
                    "NumBord): pesgen cannot tell which run it answers (`pesgen runs list`)")
        if self.kind == "other" and (what := _checked_as(e)):
            return (f"{said}: {what}, of a recette or a dépense (the acquit does not say): "
                    "not tied to a run; if it is a recette of yours, `pesgen runs list` "
                    "shows its run")
        if self.kind == "other":
            return (f"{said}: a bordereau of domain {e.domain_label}, not a recette: not "
                    "pesgen's (it writes recettes only)")
        if self.untied:
            return f"{said}: {self.untied}"
        if self.unchecked:
            return f"{said}: {self.unchecked}"
        if e.exercise is None:
            return (f"{said}: {e.missing('ExerciceBord')}, pesgen cannot tell which run sent "
                    "it" + (" and does not guess: not tied; ask the trésorerie its exercise"
                            if e.empty else ""))
        if not self.found and self.set_aside:
            return f"{said}: " + "; ".join(x.why for x in self.set_aside)
        if not self.found and self.elsewhere:
            return f"{said}: no run of this store holds it: {self.elsewhere}"
        if not self.found:
            return (f"{said}: no run of this store holds it (another software's bordereau, "
                    "or a run recorded in another store: --db)")
        if len(self.found) > 1:
            return (f"{said}: {len(self.found)} runs of this store hold an IdBord "
                    f"{e.bordereau} (TypBord "
                    f"{', '.join(r.typ_bord for r in self.found)}): pesgen cannot tell which "
                    "one the trésorerie answers; `pesgen runs show RUN` of each")
        r = self.found[0]
        if self.tie_note:
            said += f" ({self.tie_note})"
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

    @property
    def ours(self) -> bool:
        """Whether this element may answer what pesgen sent: a recette bordereau of a
        run (or one pesgen cannot tie, for a contradiction, an ambiguity, another
        collectivity, an identifier missing), the whole file, a check of a bordereau; not
        a PJ, a market, another domain's bordereau, nor a recette bordereau no run of this
        store of its collectivity holds (another software's)."""
        e = self.element
        if self.kind in ("attachment", "market"):
            return False
        if e.domain not in RECETTE_DOMAINS | CHECK_DOMAINS:
            return False
        if self.kind == "bordereau" and not (self.found or self.set_aside or self.untied
                                             or self.unchecked or self.elsewhere
                                             or self.from_file is not None):
            return e.exercise is None  # no run holds it; one without exercise: unknown
        return True

    @property
    def untied_acceptance(self) -> str | None:
        """Why an accepted recette bordereau is tied to no one run of the store, where a
        run may be the one it answers: the acquit's IdColl empty, a run set aside (its
        TypBord or file contradicts the DomaineAck or NomFic), several runs holding the
        number, no run of the acquit's collectivity or budget in this store, the run named
        with --run not tied; None: tied, rejected, or no run of this store holds it (an
        identifier left out is ``unidentified``'s, --bordereau's choice none)."""
        e = self.element
        if (not e.accepted or self.kind != "bordereau" or self.run is not None
                or self.from_file is not None or self.restricted):
            return None
        if self.unchecked:
            return "the acquit's IdColl is empty (see above)"
        if e.exercise is None:
            return None
        if self.untied:
            return self.untied
        if len(self.found) > 1:
            return (f"{len(self.found)} runs of this store hold IdBord {e.bordereau} (TypBord "
                    f"{', '.join(r.typ_bord for r in self.found)}): pesgen cannot tell which "
                    "one the trésorerie answers")
        if self.set_aside:
            return "; ".join(f"run {x.run.run_id} holds IdBord {e.bordereau}, but {x.short} "
                             f"{_DOMAIN_RULE}" for x in self.set_aside)
        if self.elsewhere:
            return f"no run of this store holds it: {self.elsewhere}"
        return None

    def errors_named(self) -> list[str]:
        """Each error of the element, its pieces' and lines', with where: ``ERREUR_AUTRE``,
        ``ERREUR_DOUBLON_PIECE (IdPce 3, invoice FA-2026-00103)``."""
        e = self.element
        invoices = {p.piece.number: p.invoice for p in self.pieces}

        def code(x: AckError) -> str:
            return shown(x.code) if x.code else "(no code)"

        out = [code(x) for x in e.errors]
        for p in e.pieces:
            invoice = invoices.get(p.number) if p.number is not None else None
            where = p.said + (f", invoice {invoice}" if invoice else "")
            out += [f"{code(x)} ({where})" for x in p.errors]
            out += [f"{code(x)} ({where}, {ln.said})" for ln in p.lines for x in ln.errors]
        return out

    def _titles_shown(self, db: str | None, how: str) -> str:
        """``; `pesgen runs show RUN --invoices` lists the run's titles HOW`` for the run
        the element is tied to ("" when none)."""
        return "".join(f"; `pesgen runs show {r.run_id} --invoices{db_option(db)}` lists "
                       f"the run's titles {how}" for r in self.found[:1])

    def to_check(self, db: str | None = None, reading: bool = False,
                 file: str | None = None) -> ToCheck | None:
        """What of this element is not all fine, a rejection aside (None: nothing):
        an acceptance with errors, an acceptance pesgen cannot tie, an identifier the
        acquit leaves empty or out; ``reading`` (no ``--record``), an answer other than
        the one recorded as the bordereau's status; with what to do next (``file``: the
        acquit's path, in the commands it gives)."""
        e = self.element
        reasons, said = [], []
        errors = _all_errors(e)
        if reading and self.same_as_recorded is False:
            assert self.recorded is not None
            reasons.append("recorded-otherwise")
            # its errors counted as the recorded status' are: a rejection with other
            # errors read 'rejected by this file, where its status recorded is rejected…'
            other = (": the same verdict, other errors"
                     if e.accepted == self.recorded.accepted else "")
            said.append(f"{'accepted' if e.accepted else 'rejected'}{with_errors(len(errors))}"
                        f" by this file, where its status recorded is "
                        f"{self.recorded.outcome} (from {self.recorded.file}){other}")
        if e.accepted and errors and self.ours:
            reasons.append("accepted-with-errors")
            said.append(f"accepted, with {len(errors)} error(s): "
                        + ", ".join(self.errors_named()))
        untied = self.untied_acceptance
        if untied:
            reasons.append("untied")
            said.append(f"accepted, not tied: {untied}")
        if self.unidentified:
            reasons.append("unidentified")
            said.append("left empty or out by the acquit, never guessed: "
                        + ", ".join(self.unidentified))
        if pieces := self.no_such_pieces:
            reasons.append("no-such-piece")
            said += pieces
        if lines := self.no_such_lines:
            reasons.append("no-such-line")
            said += lines
        cancelled = self.cancelled_acceptance
        if cancelled is not None:
            reasons.append("accepted-cancelled")
            said.append(f"accepted, but cancelled in pesgen {cancelled.cancelled_at} "
                        f"({cancelled.cancel_reason})")
            if self.again:
                said.append(f"{self.again} of its invoices were exported again since, by "
                            + ", ".join(f"run {run} (IdBord {', '.join(map(str, bords))})"
                                        for run, bords in self.again_by)
                            + ": the trésorerie may bill them twice")
        if not reasons:
            return None
        steps: list[str | None] = []
        if "recorded-otherwise" in reasons:
            steps.append("ask the trésorerie which answer stands; if this file's, `pesgen "
                         f"acquit {acquit_arg(file)}{db_option(db)} --record --replace` "
                         "makes it the bordereau's status (the one recorded stays in its "
                         "history)")
        if "accepted-with-errors" in reasons:
            steps.append(self.next_step(db, file))
        if "untied" in reasons:
            steps.append(self._untied_step(db, file))
        if "unidentified" in reasons:
            steps.append("ask the trésorerie which bordereau or piece it is: pesgen does not "
                         "guess (docs/state.md, Identifiers left empty)")
        if "no-such-piece" in reasons:
            # the bordereau is known, the title is not: never put on another title
            steps.append("ask the trésorerie which title its error is about: pesgen does "
                         f"not guess{self._titles_shown(db, 'by IdBord and IdPce')}")
        if "no-such-line" in reasons:
            # the title is known, its line is not: never put on another line
            steps.append("ask the trésorerie which line of the title its error is about: "
                         f"pesgen does not guess{self._titles_shown(db, 'with their lines')}")
        if cancelled is not None:
            option = db_option(db)
            keep = ("reinstate them, so that none of their invoices is exported again: "
                    f"`pesgen runs reinstate {cancelled.run_id}{option} --bordereau "
                    f"{e.bordereau} --reason TEXT`")
            if self.again:
                # the invoices went out again: reinstating is refused while that holds
                keep = ("cancel what holds their invoices now, if it was not sent (`"
                        + "`, `".join(f"pesgen runs cancel {run}{option} --bordereau "
                                      + " --bordereau ".join(map(str, bords))
                                      + " --reason TEXT" for run, bords in self.again_by)
                        + "`), then " + keep + "; if it took both, it annuls one of the "
                        "two titles")
            steps.append("tell the trésorerie: it took titles pesgen holds as cancelled, whose "
                         "invoices may be exported again (billed twice); if it annuls them, "
                         "record it with `pesgen runs cancel "
                         f"{cancelled.run_id}{option} --bordereau {e.bordereau} "
                         f"--annulled-by-tresorerie --reason TEXT`; if it keeps them, {keep}")
        return ToCheck(e.line, e.bordereau, e.exercise, tuple(reasons),
                       f"{_element_name(self)}: " + "; ".join(said),
                       "; ".join(x for x in steps if x) or None)

    @property
    def cancelled_acceptance(self) -> Any:
        """The one run tied to this accepted element when pesgen holds its bordereau as
        cancelled, and not as annulled by the trésorerie (``runs cancel
        --annulled-by-tresorerie``): the trésorerie took titles whose invoices pesgen may
        export again. None otherwise."""
        e = self.element
        if not e.accepted or len(self.found) != 1 or self.untied or self.unchecked:
            return None
        r = self.found[0]
        if r.cancelled_at is None or ANNULLED_MARK in (r.cancel_reason or ""):
            return None
        return r

    def _untied_step(self, db: str | None, file: str | None = None) -> str | None:
        """What to do of an acceptance pesgen cannot tie (untied_acceptance); ``file``:
        the acquit's path, in the command that records it on a run (RUN, the run to
        check, when there are several)."""
        option = db_option(db)
        if self.unchecked:
            return None  # the acquit's own entry says what to do
        if self.elsewhere:
            return ("check that this is the store of the acquit's collectivity and budget "
                    "(--db, `pesgen runs list`) and that the acquit is the one meant: its "
                    "acceptance is recorded on no run")
        if self.untied:
            return ("check with the trésorerie which bordereau it answers (`pesgen runs "
                    f"list{option}`): its acceptance is recorded on no run")
        runs = list(self.found) or [x.run for x in self.set_aside]
        if not self.found and all(x.short.startswith("its file") for x in self.set_aside):
            # a NomFic of another kind of file: --run does not force it either
            return ("check with the trésorerie which file it answers: the acquit's NomFic "
                    "names another kind of PES file than the run wrote (--run does not tie "
                    "it either); its acceptance is recorded on no run")
        shows = ", ".join(f"`pesgen runs show {r.run_id}{option}`" for r in runs)
        # one run to check: named; several: RUN, the one the trésorerie says
        run, which = ((runs[0].run_id, "that run") if len(runs) == 1 else
                      ("RUN", "that run (RUN: the one of those above it answers)"))
        return (f"check with the trésorerie which bordereau it answers ({shows}); if it is a "
                f"run's, record it on {which} with `pesgen acquit {acquit_arg(file)} --record "
                f"--run {run}{option}`: until then `runs cancel` does not know that the "
                "trésorerie took it")

    def _accepted_step(self, db: str | None) -> str | None:
        """What follows an acceptance with errors (None: none, or not pesgen's)."""
        e = self.element
        errors = _all_errors(e)
        if not errors or not self.ours:
            return None
        if self.kind == "file":
            return (f"the guichet took the file at its first step but names {len(errors)} "
                    "error(s) (above): ask the trésorerie what they mean; each bordereau's "
                    "own element says whether it is accepted")
        what = f"IdBord {self.bordereau}" if self.bordereau is not None else "the bordereau"
        if (checked := _checked_as(e)) is not None and e.domain not in RECETTE_DOMAINS:
            # a check of a bordereau (its signature, Hélios' parametrisation): of a recette
            # or a dépense, the acquit does not say
            return (f"the guichet passed {checked} ({what}) but names {len(errors)} "
                    "error(s) (above): ask the trésorerie what they mean; if it is a recette "
                    "of yours, `pesgen runs list` shows its run")
        if any(x.code == DOUBLON_PIECE for x in errors):
            return (f"{self._doublon_piece(db)}. The trésorerie accepted {what}: do not "
                    "cancel it")
        return (f"the trésorerie accepted {what} (its titles are in Hélios) but names "
                f"{len(errors)} error(s) (above): ask it what they mean for the titles "
                "before anything else; do not cancel the bordereau nor export its invoices "
                "again to fix them: the families would be billed twice")

    def _doublon_piece(self, db: str | None) -> str:
        """The advice for ERREUR_DOUBLON_PIECE: a piece Hélios knows already."""
        option = db_option(db)
        invoices = sorted({p.invoice for p in self.pieces if p.invoice and any(
            x.code == DOUBLON_PIECE for x in (*p.piece.errors, *(
                y for ln in p.piece.lines for y in ln.errors)))})
        what = f"IdBord {self.bordereau}" if self.bordereau is not None else "the bordereau"
        find = (", ".join(f"`pesgen runs find {shlex.quote(i)}{option}`" for i in invoices)
                if invoices else f"`pesgen runs find INVOICE{option}` (the invoice of the "
                "piece named)")
        return (f"Hélios knows a piece of {what} already ({DOUBLON_PIECE}"
                + (f": invoice {', '.join(invoices)}" if invoices else "")
                + "): its title may be at the trésorerie already, from this file sent "
                "before or from another bordereau. Ask the trésorerie which title it holds; "
                f"{find} shows which run(s) of this store hold it. Never export it again to "
                "clear the error: the family would be billed twice")

    def next_step(self, db: str | None = None, file: str | None = None) -> str | None:
        """What follows a rejection: for a bordereau pesgen recorded, active, the
        command that cancels it, then fix and export again; what follows an acceptance
        with errors (``_accepted_step``). ``file``: the acquit's path, in the command
        that records it."""
        e = self.element
        if e.accepted:
            return self._accepted_step(db)
        r = self.run
        if self.kind == "file" and r is None:
            # pesgen writes one file per bordereau: the file rejected is one bordereau of
            # its run, whose other files the trésorerie may have taken (`runs cancel RUN
            # --all` would free their invoices, to be billed twice)
            option = db_option(db)
            if (a := self.from_file) is not None:  # tied by --run when it was recorded
                reason = shlex.quote(f"trésorerie rejected the file of IdBord {a.id_bord}")
                return (f"it is recorded as the rejection of IdBord {a.id_bord} of run "
                        f"{a.run_id}: cancel that bordereau only, if not done already "
                        f"(`pesgen runs show {a.run_id}{option}` says), `pesgen runs cancel "
                        f"{a.run_id} --bordereau {a.id_bord} --reason {reason}{option}`, "
                        "fix, export again")
            if (of := self.nom_fic_of) is not None:
                # the run's file of the NomFic's name: named for support to check, who
                # ties it (that NomFic names the file sent is unconfirmed)
                run, where = f"{of[0]} --bordereau {of[1]}", (
                    f" (run {of[0]} wrote IdBord {of[1]} as the file the acquit's NomFic "
                    f"names, {of[2]}: if that is the file sent; pesgen does "
                    "not tie a rejection by the NomFic alone)")
            else:
                run, where = "RUN --bordereau IDBORD", (
                    f" (RUN from `pesgen runs list{option}`, IDBORD the bordereau of the "
                    "file sent)")
            return ("the file sent is rejected whole, and with it its bordereau (pesgen "
                    "writes one file per bordereau): record it on the run that wrote it, "
                    f"`pesgen acquit {acquit_arg(file)} --record --run {run}{option}`"
                    f"{where}, then cancel that bordereau only, as the "
                    "report then says, fix, export again; not the whole run: its other files "
                    "are other bordereaux, which the trésorerie may have taken")
        if r is None:
            return None
        if r.cancelled_at is not None:
            return ("nothing to cancel; fix the input (the errors above) and export again, "
                    "if not done since")
        codes = sorted({x.code for x in _all_errors(e) if x.code})
        what = "the file of IdBord" if self.kind == "file" else "IdBord"
        reason = f"trésorerie rejected {what} {self.bordereau}" + (
            f" ({', '.join(codes)})" if codes else "")
        option = db_option(db)
        # quoted for a shell: the codes are the acquit file's text, not vouched for
        cancel = (f"pesgen runs cancel {r.run_id} --bordereau {self.bordereau} --reason "
                  f"{shlex.quote(reason)}{option}")
        # the trésorerie rejects a bordereau whole: every title of it goes out again, not
        # only those whose pieces the errors name (docs/state.md, A rejected bordereau)
        many = f"all {r.titles} invoice(s) of IdBord {self.bordereau}" if r.titles \
            else f"every invoice of IdBord {self.bordereau}"
        again = (f"then export again {many}, not only those the errors name (`pesgen runs "
                 f"show {r.run_id} --invoices{option}` lists them): they go in a new "
                 "bordereau, with a new number")
        if DOUBLON_BORDEREAU in codes:
            # a number Hélios knows already: this very file sent twice (its first sending
            # accepted: the titles exist) is rejected so, as another bordereau's number
            return (f"Hélios knows IdBord {self.bordereau} already ({DOUBLON_BORDEREAU}: a "
                    "number it knows is rejected as a doublon, DT v5.19 "
                    "PES_RecetteAller_blocs): if this file was sent before, that sending may "
                    "have been accepted and its titles exist at the trésorerie: cancelling "
                    "it and exporting again would bill the families twice; ask the "
                    "trésorerie which it is before anything else. Only if the number is "
                    f"another bordereau's: {cancel}; check this store's numbering with the "
                    f"trésorerie (docs/state.md, Numbering), {again}")
        if DOUBLON_PIECE in codes:
            # the piece's title may exist at the trésorerie: exporting it again bills twice
            return (f"{self._doublon_piece(db)}. Cancel the bordereau ({cancel}) only once "
                    "the trésorerie has said which titles it holds, and export again only "
                    "the invoices it does not hold")
        if not _all_errors(e):
            return (f"{cancel}; the acquit names no error: ask the trésorerie what to fix, "
                    f"{again}")
        if self.kind == "file":
            # the guichet's first step judges the file sent (its schema, its signature),
            # not an invoice's data: "fix the input" named nothing to fix
            return (f"{cancel}; the guichet's first step checks the file itself (its schema, "
                    "its signature), not an invoice: check the file against the DGFiP "
                    f"package, `pesgen validate {shlex.quote(r.file or 'FILE')} "
                    "--official-xsd DIR` "
                    f"(the file in the run's output folder, `pesgen runs show {r.run_id}"
                    f"{option}` names it and says whether the run was checked against "
                    "the DGFiP XSD; lost, `pesgen regenerate "
                    f"{r.run_id} --out NEW_DIR{option}` writes it again), ask the trésorerie "
                    f"what the errors above mean, fix, {again}")
        return f"{cancel}; fix the input (the errors above), {again}"


def acquit_arg(file: str | None) -> str:
    """The acquit's path in a command pesgen suggests, quoted for a shell (``file``: as
    given to `pesgen acquit`); ``FILE`` when not known (a library caller's report)."""
    return shlex.quote(file) if file else "FILE"


def _all_errors(e: AckElement) -> list[AckError]:
    out = list(e.errors)
    for p in e.pieces:
        out += p.errors
        for line in p.lines:
            out += line.errors
    return out


@dataclass(frozen=True)
class ToCheck:
    """One thing of the acquit that is not all fine, a rejection aside (``pesgen acquit``
    exits 10 for it when nothing is rejected): its line, the bordereau and exercise it
    names (None: none), why (``accepted-with-errors``, ``untied``, ``unidentified``,
    ``id-coll-empty``, ``no-such-piece``: a NumPiece naming no title of its bordereau;
    ``no-such-line``: a NumLigne naming no line of its title;
    ``recorded-otherwise``: read without ``--record``, an answer other
    than the bordereau's recorded status; ``payfip-open``: PayFiP links open on the titles
    of a rejection ``--record`` recorded, beside that rejection: ``payfip_open``), what it
    says and what to do next."""

    line: int
    bordereau: int | None
    exercise: int | None
    reasons: tuple[str, ...]
    said: str
    next_step: str | None

    def __str__(self) -> str:
        return self.said + (f"; next: {self.next_step}" if self.next_step else "")


@dataclass(frozen=True)
class NamedRun:
    """The run support named with ``--run`` (``named_run``): the acquit's elements are
    tied to it only; ``only``, the one bordereau of it ``--bordereau`` names."""

    run_id: str
    typ_bord: str
    exercise: int
    bordereaux: tuple[Bordereau, ...]  # all the run's, by IdBord
    files: tuple[tuple[str, int], ...]  # (name, IdBord) of its files holding a bordereau
    only: int | None = None

    @cached_property
    def numbers(self) -> dict[int, Bordereau]:
        """The run's bordereaux by IdBord (read once: an acquit names thousands)."""
        return {b.id_bord: b for b in self.bordereaux}

    def recorded(self, id_bord: int) -> Recorded:
        b = self.numbers[id_bord]
        return Recorded(self.run_id, self.typ_bord, b.file, b.titles, b.total,
                        b.cancelled_at, b.reason)

    @property
    def said(self) -> str:
        """``run … (TypBord 06, IdBord 1, 2, 3)``, for messages."""
        numbers = ", ".join(str(b.id_bord) for b in self.bordereaux)
        return f"run {self.run_id} (TypBord {self.typ_bord}, IdBord {numbers})"


def named_run(acquit: Acquit, store: Any, run: str, bordereau: int | None = None
              ) -> NamedRun:
    """The run ``run`` (an id or a unique prefix) of ``store`` that support names as the
    one ``acquit`` answers (``pesgen acquit --record --run``), and its bordereau
    ``bordereau`` (``--bordereau``; None: all). Refuses (StateError) a run that is not
    there, a finance package's, a cancelled one, one of another collectivity or budget,
    a bordereau the run does not have and a cancelled one."""
    r = store.get_run(run)
    full = r["id"]
    if acquit.id_coll is None:
        # the one check --run rests on (the run is the acquit's collectivity's) cannot be
        # made: a tie pesgen cannot check is not recorded
        raise StateError(
            f"{acquit.name} leaves its IdColl empty: pesgen cannot check that run {full} "
            "(of IdColl " + shown(r["id_coll"]) + ") is of the acquit's collectivity, and "
            "--run records no tie it cannot check; nothing recorded", [Problem(
                "acquit.id-coll", "IdColl is empty (V=\"\"): whose acquit it is is not given",
                record=f"{acquit.name}:{acquit.id_coll_empty_at}")])
    if not pes_typ_bord(r["typ_bord"]):
        raise StateError(f"run {full} is a finance package's run (format {r['format']}): "
                         "the package sends its own PES, the acquit answers that; pesgen "
                         "records no acknowledgement of it (--run); nothing recorded")
    if r["status"] == "cancelled":
        raise StateError(f"run {full} is cancelled ({r['cancelled_at']}: "
                         f"{r['cancel_reason']}): --run ties an acknowledgement to an active "
                         "run only, lest a mistyped id record it on a run that no longer "
                         "counts (`pesgen runs list` shows the active ones); nothing "
                         "recorded")
    if (r["id_coll"], r["cod_bud"]) != (acquit.id_coll, acquit.cod_bud):
        raise StateError(f"{acquit.name} is of IdColl {acquit.id_coll} budget "
                         f"{acquit.cod_bud}, run {full} of IdColl {r['id_coll']} budget "
                         f"{r['cod_bud']}: --run ties no acknowledgement to another "
                         "collectivity's or budget's run; nothing recorded")
    every = tuple(store.run_bordereaux(full))
    if bordereau is not None:
        known = {b.id_bord: b for b in every}
        if bordereau not in known:
            # what the store does not hold, as a run it does not hold: exit 7
            raise StateError(f"run {full} has no bordereau {bordereau}; its bordereaux are "
                             f"IdBord {', '.join(str(b.id_bord) for b in every)}; nothing "
                             "recorded")
        if known[bordereau].cancelled_at is not None:
            raise StateError(f"IdBord {bordereau} of run {full} is cancelled "
                             f"({known[bordereau].cancelled_at}: {known[bordereau].reason}): "
                             "--bordereau ties an acknowledgement to an active bordereau "
                             "only; nothing recorded")
    files = tuple((f["name"], f["id_bord"]) for f in r["files"] if f["id_bord"] is not None)
    return NamedRun(full, r["typ_bord"], r["exercise"], every, files, bordereau)


def _tie_named(acquit: Acquit, e: AckElement, named: NamedRun,
               holders: dict[tuple[int, int], list[tuple[str, str, Bordereau]]]
               ) -> ElementReport:
    """A recette element naming a bordereau, tied to the run named with --run: to its
    bordereau of that number and exercise, whatever the DomaineAck (6 or 7) says of
    its TypBord; never when the run holds no such bordereau, nor when the NomFic
    contradicts its file, nor when its domain fits another run holding that number
    (which pesgen ties by itself, without --run) and not the run named (``holders``:
    the runs holding each number whose domain does not fit the run named, as
    ``store.pes_bordereaux``). The pieces' invoices are looked up after
    (``_with_invoices``)."""
    numbers = named.numbers
    why = None
    if named.only is not None and e.bordereau != named.only:
        why = (f"not IdBord {named.only}, the bordereau --bordereau names: not tied")
    elif e.bordereau not in numbers:
        why = f"not a bordereau of {named.said}, named with --run: not tied"
    elif e.exercise is None:
        why = (f"{e.missing('ExerciceBord')}: pesgen cannot tell that it is the exercise "
               f"{named.exercise} "
               f"of run {named.run_id} (--run): not tied")
    elif e.exercise != named.exercise:
        why = (f"exercise {e.exercise}, run {named.run_id} (--run) is of exercise "
               f"{named.exercise}: not tied")
    r = None if why is not None else named.recorded(e.bordereau or 0)
    if r is not None and not domain_fits(e.domain, r.typ_bord):
        # what pesgen ties by itself to another run is not taken from it: another run
        # holding that number whose TypBord the domain fits (and the NomFic does not
        # contradict) is the one it answers, without --run
        fits = []
        for run_id, typ_bord, b in holders.get((named.exercise, e.bordereau or 0), ()):
            other = Recorded(run_id, typ_bord, b.file, b.titles, b.total, b.cancelled_at,
                             b.reason)
            if run_id != named.run_id and _set_aside(acquit, e, other) is None:
                fits.append(other)
        if fits:
            held = ", ".join(f"run {x.run_id} (TypBord {x.typ_bord})" for x in fits)
            why = (f"not tied: {held} hold{'s' if len(fits) == 1 else ''} IdBord "
                   f"{e.bordereau} and its DomaineAck {e.domain} fits "
                   f"{'it: record it without --run' if len(fits) == 1 else 'them'}")
    # (r is None only when why is not); a NomFic contradicting its file: never forced
    aside = None if why is not None or r is None else _set_aside(acquit, e, r, by_run=True)
    if why is not None or r is None or aside is not None:
        return ElementReport(e, "bordereau", pieces=tuple(PieceReport(p, None)
                                                           for p in e.pieces), untied=why,
                             set_aside=() if aside is None else (aside,),
                             restricted=named.only is not None and e.bordereau != named.only)
    note = ("" if domain_fits(e.domain, r.typ_bord) else
            f"DomaineAck {e.domain} ({e.domain_label}) for {_kind_of_bordereau(r.typ_bord)}")
    return ElementReport(e, "bordereau", (r,), tuple(PieceReport(p, None) for p in e.pieces),
                         by_run=note)


def _tie_file(acquit: Acquit, e: AckElement, named: NamedRun) -> ElementReport:
    """A whole-file element (domains 0-2, no NumBord) with --run: a rejection is tied to
    the bordereau of the run's one file (or of the file --bordereau names); pesgen
    cannot tell which file of several it answers (UsageError)."""
    if e.accepted:
        return ElementReport(e, "file", untied=(
            "accepted at the guichet's first step, which says nothing of its bordereaux "
            "(their own elements do): not tied"))
    held = [(name, i) for name, i in named.files
            if named.only is None or i == named.only]
    names = sorted({name for name, _ in held})
    if len(names) != 1 or len(held) != 1:
        listed = "; ".join(f"{name} (IdBord {i})" for name, i in held) or "none"
        # the NomFic may name it, but that is unconfirmed (docs/state.md): never chosen by it
        nom_fic = (f" (the acquit's NomFic, {acquit.nom_fic}, may name it: pesgen does not "
                   "take it so)" if acquit.nom_fic else "")
        raise UsageError(
            f"{acquit.name}: pesgen cannot tell which file of run {named.run_id} its "
            "whole-file rejection answers: give --bordereau IDBORD, the bordereau of the file "
            "the trésorerie rejected; nothing recorded", [Problem(
                "acquit.run", f"the whole file (DomaineAck {e.domain} {e.domain_label}, no "
                f"NumBord) answers one file; {named.said} wrote {len(names)} file(s) "
                f"({listed}){nom_fic}", record=f"{acquit.name}:{e.line}")])
    name, id_bord = held[0]
    r = named.recorded(id_bord)
    aside = _set_aside(acquit, e, r, by_run=True)
    if aside is not None:  # the NomFic contradicts its file: never forced
        return ElementReport(e, "file", untied=aside.why)
    return ElementReport(e, "file", (r,), by_run="the whole file", file_bordereau=id_bord)


@dataclass(frozen=True)
class AcquitReport:
    acquit: Acquit
    elements: tuple[ElementReport, ...]
    named: NamedRun | None = None  # the run named with --run
    # no run of the store is of the acquit's IdColl (or budget): said so, naming the
    # collectivities the store's runs are of (``known``: store.collectivities())
    stranger: str | None = None
    known: tuple[tuple[str, str, int, str], ...] = ()

    @property
    def rejected(self) -> int:
        return sum(1 for e in self.elements if not e.element.accepted)

    @property
    def unidentified(self) -> int:
        """How many elements hold something pesgen cannot tie for an identifier the
        acquit leaves empty or out (ElementReport.unidentified)."""
        return sum(1 for e in self.elements if e.unidentified)

    @property
    def lines_unchecked(self) -> tuple[int, tuple[str, ...]]:
        """How many NumLigne of pieces tied to titles pesgen cannot check (their runs
        recorded before the store kept each title's number of lines, schema 21), and
        those runs, in the file's order: said once, not per line."""
        return lines_unchecked(x for r in self.elements for x in r.lines_unchecked)

    @property
    def lines_unchecked_said(self) -> str | None:
        """``lines_unchecked`` as the report says it, once; None: every NumLigne of a
        title tied is checked (or none is named)."""
        return unchecked_said(*self.lines_unchecked)

    def to_check(self, db: str | None = None, reading: bool = False,
                 file: str | None = None) -> list[ToCheck]:
        """What is not all fine, a rejection aside, in the file's order: an IdColl left
        empty (the acquit as a whole), then each element's (ElementReport.to_check;
        ``reading``: the acquit read without ``--record``; ``file``: its path, in the
        commands given). ``pesgen acquit`` exits 10
        when there is some and nothing is rejected."""
        a = self.acquit
        out = []
        if a.unchecked:
            out.append(ToCheck(
                a.id_coll_empty_at or 0, None, None, ("id-coll-empty",),
                f"the acquit (line {a.id_coll_empty_at}): its IdColl is empty: pesgen cannot "
                "tell whose acquit it is, and ties none of its bordereaux (rule "
                "acquit.id-coll)",
                "ask the trésorerie whose acquit it is and for the file again, with its "
                "IdColl; pesgen records nothing of it (--record --run is refused)"))
        out += [x for r in self.elements if (x := r.to_check(db, reading, file)) is not None]
        return out


def _nom_fic_of(acquit: Acquit, store: Any) -> tuple[str, int, str] | None:
    """The active bordereau (run, IdBord) whose file bears the acquit's NomFic, when one
    alone of the acquit's collectivity and budget does (None otherwise): a suggestion
    for support, who ties the rejection with --run (never tied by it: docs/state.md)."""
    if not acquit.nom_fic or acquit.unchecked or acquit.id_coll is None:
        return None
    found = store.bordereaux_of_file(acquit.id_coll, acquit.cod_bud, acquit.nom_fic)
    return (*found[0], acquit.nom_fic) if len(found) == 1 else None


def tie(acquit: Acquit, store: Any, named: NamedRun | None = None) -> AcquitReport:
    """Each element of ``acquit`` with the run(s) of ``store`` (a Store, read only) that
    recorded its bordereau, and each piece named with its invoice. ``named``: the run
    support names (``--run``, ``named_run``), the only one tied, whatever the recette
    domain says of its TypBord, and a whole-file rejection with it (``_tie_file``)."""
    out: list[ElementReport] = []
    # the runs holding each number the acquit names, read at once (a query per element
    # read the run's bordereaux for each: minutes for an acquit of 50 000 bordereaux);
    # with --run, those a domain not fitting its TypBord may answer (_tie_named)
    wanted = sorted({(e.exercise, e.bordereau) for e in acquit.elements
                     if e.bordereau is not None and e.exercise is not None
                     and e.domain in RECETTE_DOMAINS
                     and (named is None or (e.exercise == named.exercise
                                            and not domain_fits(e.domain, named.typ_bord)))})
    holders = ({} if acquit.unchecked or not wanted or acquit.id_coll is None else
               store.pes_bordereaux(acquit.id_coll, acquit.cod_bud, wanted))
    for e in acquit.elements:
        if e.bordereau is None:
            # an empty NumBord names a bordereau (the XSD's choice n°1), not the file
            kind = ("unnamed" if "NumBord" in dict(e.empty) else
                    "attachment" if e.attachment else "market" if e.market else
                    "file" if e.domain in FILE_DOMAINS else "unnamed")
            if kind == "file" and named is not None:
                out.append(_tie_file(acquit, e, named))
            elif kind == "file" and not e.accepted:
                out.append(ElementReport(e, kind, nom_fic_of=_nom_fic_of(acquit, store)))
            else:
                out.append(ElementReport(e, kind))
            continue
        if e.domain not in RECETTE_DOMAINS:
            out.append(ElementReport(e, "other"))
            continue
        if acquit.unchecked:
            # whose acquit it is is unknown: no run of any collectivity is looked up
            out.append(ElementReport(e, "bordereau", pieces=tuple(
                PieceReport(p, None) for p in e.pieces), unchecked=acquit.unchecked))
            continue
        if named is not None:
            out.append(_tie_named(acquit, e, named, holders))
            continue
        found: list[Recorded] = []
        aside: list[SetAside] = []
        if e.exercise is not None:
            for run_id, typ_bord, b in holders.get((e.exercise, e.bordereau), ()):
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
        out.append(ElementReport(e, "bordereau", tuple(found),
                                 tuple(PieceReport(p, None) for p in e.pieces),
                                 set_aside=tuple(aside)))
    out = _with_invoices(out, store)
    # each bordereau's Hélios status recorded already (`--record`, this file or another)
    tied = {r.run.run_id for r in out if r.run is not None}
    if tied:
        status = store.acknowledgements(tied)
        out = [r if r.run is None else replace(r, recorded=status.get(r.run.run_id, {}).get(
            r.bordereau or 0, [None])[0]) for r in out]
    # an acceptance of a bordereau cancelled in pesgen whose invoices went out again, the
    # bordereaux looked up at once (each on its own, 2 000 took 18 035 statements)
    cancelled = {(c.run_id, r.bordereau) for r in out
                 if (c := r.cancelled_acceptance) is not None and r.bordereau is not None}
    if cancelled:
        again = store.each_exported_again(cancelled)
        out = [r if (c := r.cancelled_acceptance) is None or r.bordereau is None
               else _with_again(r, *again[(c.run_id, r.bordereau)]) for r in out]
    # what was recorded from this file before, by line, whatever is tied now (--run)
    mine = store.acquit_elements(acquit.sha256)
    if mine:
        out = [r if r.element.line not in mine else replace(
            r, from_file=mine[r.element.line][0],
            from_file_tie=recorded_tie(mine[r.element.line][0].domain,
                                       mine[r.element.line][1])) for r in out]
    # a bordereau no run holds: is the store of the acquit's collectivity at all? (--run
    # refuses a run of another one by itself)
    unheld = [r.kind == "bordereau" and not r.found and not r.set_aside and
              r.element.exercise is not None and not r.unchecked for r in out]
    if named is None and any(unheld):
        known = tuple(store.collectivities())
        stranger, short = _stranger(acquit, known)
        if stranger is not None:
            out = [replace(r, elsewhere=short) if no else r for r, no in zip(out, unheld,
                                                                             strict=True)]
            return AcquitReport(acquit, tuple(out), named, stranger, known)
    return AcquitReport(acquit, tuple(out), named)


def _with_invoices(out: list[ElementReport], store: Any) -> list[ElementReport]:
    """``out`` with the invoice of each piece an element tied to one run names (its
    IdPce in the recorded bordereau) and its input record, each run's bordereaux read at
    once (``bordereaux_titles``)."""
    def run_of(r: ElementReport) -> str | None:
        """The run of an element whose pieces name invoices to look up, else None."""
        return r.run.run_id if r.kind == "bordereau" and r.run is not None and r.pieces \
            else None

    named: dict[str, set[int]] = {}
    for r in out:
        if (run_id := run_of(r)) is not None:
            named.setdefault(run_id, set()).add(r.bordereau or 0)
    if not named:
        return out
    titles = {run_id: store.bordereaux_titles(run_id, sorted(numbers))
              for run_id, numbers in named.items()}
    return [r if (run_id := run_of(r)) is None else replace(r, pieces=tuple(
                PieceReport(p.piece, *titles[run_id].get(r.bordereau or 0, {}).get(
                    p.piece.number, (None, None, None))) for p in r.pieces)) for r in out]


def _with_again(r: ElementReport, count: int, holders: dict[str, set[int]]) -> ElementReport:
    """``r`` with what holds its cancelled bordereau's invoices now (``exported_again``)."""
    return replace(r, again=count, again_by=tuple((run, tuple(sorted(bords)))
                                                  for run, bords in holders.items()))


# how many of the store's collectivities a report names (a shared store may hold many)
_LISTED_COLLECTIVITIES = 10
# how many runs the report's line on the line numbers not checked names
_LISTED_RUNS = 5


# a NumLigne pesgen cannot check (its title's line count not kept, schema 21): the run,
# the IdBord (None: a whole-file element's, none tied), the IdPce and the IdLigne
UncheckedLine = tuple[str, int | None, int | str, int | str]


def lines_unchecked(lines: Iterable[UncheckedLine]) -> tuple[int, tuple[str, ...]]:
    """How many line numbers of titles pesgen cannot check ``lines`` names, each (run,
    IdBord, IdPce, IdLigne) once however often it is named (two DetailLigne, a piece or a
    bordereau answered twice), and the runs, in the order given: what `pesgen acquit`
    reads in the file and what `runs show` reads in the errors recorded, counted alike."""
    named = dict.fromkeys(lines)
    return len(named), tuple(dict.fromkeys(x[0] for x in named))


def unchecked_said(count: int, runs: tuple[str, ...]) -> str | None:
    """``AcquitReport.lines_unchecked`` (``count`` NumLigne of titles of ``runs``) as the
    report says it; None: none."""
    if not count:
        return None
    named = ", ".join(runs[:_LISTED_RUNS]) + (
        f" and {len(runs) - _LISTED_RUNS} more" if len(runs) > _LISTED_RUNS else "")
    return (f"line numbers not checked: {count} NumLigne (IdLigne) of titles of "
            f"run(s) {named}, recorded before the store kept each title's number of "
            "lines (schema 21): shown as the acquit gives them, without saying whether "
            "the title has such a line")


def _stranger(acquit: Acquit, known: tuple[tuple[str, str, int, str], ...]
              ) -> tuple[str | None, str]:
    """What to say when no run of the store is of the acquit's IdColl, or of its budget
    (``known``: the store's collectivities, store.collectivities()): the report's line
    naming the acquit's collectivity and the store's, and what an element's verdict says;
    (None, ""): the store has runs of that budget."""
    if any((c, b) == (acquit.id_coll, acquit.cod_bud) for c, b, _n, _m in known):
        return None, ""
    coll = shown(acquit.id_coll)
    if not known:
        return (f"this store holds no run: the acquit, of {acquit.collectivity}, answers runs "
                "recorded in another store (--db) or by another software",
                "this store holds no run (see above)")
    listed = "; ".join(f"IdColl {shown(c)} budget {shown(b)} ({n} run(s), mapping "
                       f"{shown(m)})" for c, b, n, m in known[:_LISTED_COLLECTIVITIES]) + (
        f"; and {len(known) - _LISTED_COLLECTIVITIES} more (`pesgen runs list`)"
        if len(known) > _LISTED_COLLECTIVITIES else "")
    if any(c == acquit.id_coll for c, _b, _n, _m in known):
        return (f"not a budget of this store: the acquit is of {acquit.collectivity}; this "
                f"store's runs are of {listed}: another budget's acquit (CodBud), or its "
                "runs are in another store (--db)",
                f"this store has no run of budget {shown(acquit.cod_bud)} of IdColl {coll} "
                "(see above)")
    return (f"not this store's collectivity: the acquit is of {acquit.collectivity}; this "
            f"store's runs are of {listed}: another collectivity's acquit, or its runs are "
            "in another store (--db)",
            f"this store has no run of IdColl {coll} (see above)")


def _run_json(f: Recorded) -> dict[str, Any]:
    return {"run": f.run_id, "typ_bord": f.typ_bord, "file": f.file, "titles": f.titles,
            "total": f.total, "cancelled": None if f.cancelled_at is None else
            {"at": f.cancelled_at, "reason": f.cancel_reason}}


def as_json(report: AcquitReport, db: str | None = None,
            to_check: list[ToCheck] | None = None, file: str | None = None) -> dict[str, Any]:
    """The report as the school software reads it (``pesgen acquit --json``);
    ``to_check``: its list (default: ``report.to_check``; with ``--record``, what
    recording found too: ``payfip_open``); ``file``: the acquit's path, in the commands
    its next steps give."""
    head, elements, tail = json_parts(report, db, to_check, file)
    return {**head, "elements": list(elements), **tail}


def json_parts(report: AcquitReport, db: str | None = None,
               to_check: list[ToCheck] | None = None, file: str | None = None
               ) -> tuple[dict[str, Any], Iterator[dict[str, Any]], dict[str, Any]]:
    """``as_json``'s report in three: its fields before ``elements``, the elements one at
    a time (each made as it is asked: the CLI writes it, then makes the next), and its
    fields after them."""
    a = report.acquit

    def errors(items: tuple[AckError, ...]) -> list[dict[str, Any]]:
        return [{"code": x.code, "label": x.label, "known_code": x.known} for x in items]

    def element(r: ElementReport) -> dict[str, Any]:
        e = r.element
        # an element tied to no run has its pieces without invoice (none made)
        pieces = r.pieces or tuple(PieceReport(p, None) for p in e.pieces)
        return {
            "line": e.line, "domain": e.domain, "domain_label": e.domain_label,
            "accepted": e.accepted, "kind": r.kind, "bordereau": e.bordereau,
            "exercise": e.exercise, "market": e.market, "attachment": e.attachment,
            "verdict": r.verdict,
            "runs": [_run_json(f) for f in r.found],
            # tied by hand (--run): to which run and bordereau, and what pesgen would not
            # tie by itself (why: null when the domain fits the run's TypBord)
            "tied_by_run": None if r.tie_note is None else {
                "run": r.found[0].run_id, "bordereau": r.bordereau, "why": r.by_run or None},
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
            # what was recorded from this element (this file, its line) before, whatever
            # is tied now (tied: how, "tied by --run", "whole file"; null: by pesgen)
            "recorded_from_this_file": None if r.from_file is None else {
                "run": r.from_file.run_id, "bordereau": r.from_file.id_bord,
                "accepted": r.from_file.accepted, "issued_on": r.from_file.issued_on,
                "errors": r.from_file.error_count, "line": r.from_file.line,
                "recorded_at": r.from_file.recorded_at,
                "superseded_at": r.from_file.superseded_at,
                "tied": r.from_file_tie.strip(" ()") or None},
            # null: the acquit leaves its number empty (source_line: where), never guessed
            # record: the invoice's record in the input the run read (null: none, or a
            # run recorded before the store kept it)
            # line_count: the title's lines as its run wrote them (null: no title, or
            # a run recorded before the store kept it: not checked); a line's
            # no_such_line: why it is no line of that title (rule acquit.line), or null
            "pieces": [{"piece": p.piece.number, "invoice": p.invoice,
                        "record": p.record, "line_count": p.line_count,
                        "source_line": p.piece.at, "errors": errors(p.piece.errors),
                        "lines": [{"line": ln.number, "source_line": ln.at,
                                   "errors": errors(ln.errors),
                                   "no_such_line": p.no_such_line(ln)}
                                  for ln in p.piece.lines]} for p in pieces],
            # what pesgen would tie but cannot, for an identifier left empty or out
            "unidentified": list(r.unidentified),
            "next_step": r.next_step(db, file),
        }

    unchecked = report.lines_unchecked  # every element's pieces walked once
    head = {"file": a.name, "sha256": a.sha256, "issued_on": a.issued_on,
            "id_coll": a.id_coll, "cod_bud": a.cod_bud, "id_post": a.id_post,
            "nom_fic": a.nom_fic,
            # null: IdColl is empty (id_coll_empty_line: where), never guessed
            "id_coll_empty_line": a.id_coll_empty_at,
            "run": None if report.named is None else report.named.run_id,  # --run
            "bordereau": None if report.named is None else report.named.only,
            "accepted": report.rejected == 0, "rejected": report.rejected,
            "unidentified": report.unidentified,
            # NumLigne of titles whose runs were recorded before the store kept their
            # number of lines (schema 21): not checked (null: none)
            "lines_unchecked": None if not unchecked[0] else {
                "lines": unchecked[0], "runs": list(unchecked[1]),
                "said": unchecked_said(*unchecked)},
            # no run of the store is of the acquit's IdColl or budget: said, and the
            # store's collectivities (null: not looked up, a run holds a bordereau)
            "stranger": report.stranger,
            "store_collectivities": None if not report.stranger else [
                {"id_coll": c, "cod_bud": b, "runs": n, "mapping": m}
                for c, b, n, m in report.known],
            "coll_label": a.coll_label,
            # what the reading warns of, each a problem (acquit.mojibake): never a refusal
            "warnings": [problem_json(w) for w in a.warnings]}
    # what is not all fine, a rejection aside (exit 10 when nothing is rejected)
    tail = {"to_check": [{"line": x.line, "bordereau": x.bordereau, "exercise": x.exercise,
                          "reasons": list(x.reasons), "said": x.said,
                          "next_step": x.next_step}
                         for x in (report.to_check(db, file=file) if to_check is None
                                   else to_check)]}
    return head, (element(r) for r in report.elements), tail


# ------------------------------------------------------------------ record in the store

@dataclass(frozen=True)
class RecordedElement:
    """What recording did with one element of the acknowledgement: ``recorded``, ``same``
    (the bordereau's Hélios status says the same already), ``replaced`` (with
    ``before``, the status it replaced), ``already`` (recorded from this file before,
    ``before``: what was), or ``not recorded`` (``why``)."""

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
        if self.outcome == "already":
            b = self.before
            if e.bordereau is None:
                what = (f"file (line {e.line}, DomaineAck {e.domain} {e.domain_label}) as "
                        f"IdBord {b.id_bord}")
            tie_said = (r.from_file_tie if r.from_file is not None and
                        r.from_file.run_id == b.run_id else
                        recorded_tie(b.domain, r.run.typ_bord) if r.run is not None and
                        r.run.run_id == b.run_id else "")
            return (f"recorded already: {what} of run {b.run_id}{tie_said}: {b.outcome}, "
                    f"from this file (line {b.line}, recorded {b.recorded_at})")
        run = r.run
        assert run is not None  # recorded (new, the same, replaced): tied to one run
        what += f" of run {run.run_id}" + (f" ({r.tie_note})" if r.tie_note else "")
        said = ("accepted" if e.accepted else "rejected") + (
            f" on {self.issued_on}" if self.issued_on else " (the acquit gives no date)") + \
            with_errors(len(_all_errors(e)))
        if run.cancelled_at is not None:
            # recorded all the same: what the trésorerie said of it stays known
            said += f"; this bordereau is cancelled in pesgen ({run.cancelled_at})"
        if self.outcome == "same":
            return (f"already recorded: {what}: {self.before.outcome}, "
                    f"from {self.before.file} (recorded {self.before.recorded_at}): not "
                    "recorded again")
        if self.outcome == "replaced":
            return (f"recorded: {what}: {said}, replacing "
                    f"{self.before.outcome} (from {self.before.file}, recorded "
                    f"{self.before.recorded_at}; kept in its history)")
        return f"recorded: {what}: {said}"


@dataclass(frozen=True)
class Recording:
    """``record``'s result: when the file was recorded (None: nothing was), when it had
    been (``already``: its name and date; with ``recorded_at``: in part, the rest
    recorded now), and each element's fate (none when nothing was recorded)."""

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
    if r.kind == "file" and r.run is not None:  # tied by --run
        return (f"file (line {e.line}, DomaineAck {e.domain} {e.domain_label}) as IdBord "
                f"{r.bordereau}")
    return f"{'file' if r.kind == 'file' else 'element'} (line {e.line})"


def _not_tied(r: ElementReport) -> str:
    """Why an element is not recorded: it names no bordereau of one run of the store."""
    e = r.element
    if r.untied:
        return r.untied
    if r.unchecked:
        return r.unchecked
    if r.kind == "bordereau":
        if e.exercise is None:
            return f"{e.missing('ExerciceBord')}: pesgen cannot tell which run sent it"
        if not r.found and r.set_aside:
            return "; ".join(x.why for x in r.set_aside)
        if not r.found:
            return "no run of this store holds it" + (f": {r.elsewhere}" if r.elsewhere
                                                      else "")
        return (f"{len(r.found)} runs of this store hold an IdBord {e.bordereau}: pesgen "
                "cannot tell which one the trésorerie answers")
    return {
        "file": "the whole file: the acquit names none of its bordereaux (to record it "
                "as the rejection of the file a run wrote, name that run: --record --run RUN)",
        "unnamed": ("it names a bordereau without its number, "
                    f"{e.missing('NumBord')}: not guessed" if "NumBord" in dict(e.empty)
                    else "it names no bordereau (no NumBord)"),
        "attachment": "a PJ (pesgen sends none)",
        "market": "a market (pesgen sends none)",
    }.get(r.kind, f"{what}, not tied to a run" if (what := _checked_as(e))
          else "a bordereau of another domain than a recette: not pesgen's")


def _checked_as(e: AckElement) -> str | None:
    """What an element of a check domain (CHECK_DOMAINS) naming a bordereau answers:
    signed after pesgen wrote it (a parapheur), checked, or refused by Hélios'
    parametrisation, a recette bordereau may be answered so, and the acquit does not say
    which domain the bordereau is of; None for an element of a kind of bordereau."""
    if e.domain not in CHECK_DOMAINS:
        return None
    return ("the signature of a bordereau" if e.domain == "3" else
            f"the {e.domain_label} check of a bordereau")


def record(report: AcquitReport, store: Any, replace: bool = False) -> Recording:
    """Record ``report``'s acknowledgement in ``store`` (a Store), in one transaction:
    each bordereau tied to exactly one run, with its outcome, errors, the acquit's date,
    the file's name and sha256. The other elements (a bordereau no run or several hold,
    the whole file, a PJ…) are not recorded, and said so; when none is tied, nothing is.
    The same file recorded again records the elements tied now whose line was not
    recorded from it before (in the same file's row), the others said ``already``;
    nothing when there is none (``already``, no element). A different answer for
    a bordereau already acknowledged refuses the file (StateError, nothing recorded)
    unless ``replace``; one that says the same is not recorded again. A bordereau named
    twice by the file refuses it (InputDataError), each at its line."""
    a = report.acquit
    tied = [(r, run) for r in report.elements if (run := r.run) is not None]
    seen: dict[tuple[str, int], list[tuple[ElementReport, Recorded]]] = {}
    for r, run in tied:
        seen.setdefault((run.run_id, r.bordereau or 0), []).append((r, run))
    twice = [group for group in seen.values() if len(group) > 1]
    if twice:
        raise InputDataError(
            f"{a.name} answers a bordereau more than once: pesgen records one answer per "
            "bordereau and file; nothing recorded", [Problem(
                "acquit.bordereau-twice",
                f"IdBord {r.bordereau}" + (f" exercise {r.element.exercise}" if
                                           r.element.exercise is not None else "") +
                f" (run {run.run_id}) is answered at lines "
                f"{', '.join(str(x.element.line) for x, _ in group)}",
                record=f"{a.name}:{r.element.line}")
            for group in twice for r, run in group[1:]])
    items = [{"run_id": run.run_id, "id_bord": r.bordereau,
              "line": r.element.line, "domain": r.element.domain,
              "accepted": r.element.accepted, "errors": _errors_of(r.element)}
             for r, run in tied]
    done = None
    if items:
        done = store.record_acknowledgements(
            {"sha256": a.sha256, "name": a.name, "id_coll": a.id_coll, "cod_bud": a.cod_bud,
             "nom_fic": a.nom_fic, "issued_on": a.issued_on}, items, replace,
            None if report.named is None else (report.named.run_id, report.named.only))
    # recorded before (in part or whole): the file's first recording
    earlier = done.already if done is not None else next(
        ((r.from_file.file, r.from_file.recorded_at) for r in report.elements
         if r.from_file is not None), None)
    if earlier is not None and (done is None or done.recorded_at is None):
        return Recording(None, earlier, ())  # nothing new of a file recorded before
    fates = iter(done.outcomes if done is not None else ())
    out = []
    for r in report.elements:
        if r.run is not None:
            outcome, before = next(fates)
            out.append(RecordedElement(r, outcome, before=before, issued_on=a.issued_on))
        elif r.from_file is not None:  # tied when recorded (--run), not now
            out.append(RecordedElement(r, "already", before=r.from_file))
        else:
            out.append(RecordedElement(r, "not recorded", _not_tied(r)))
    return Recording(None if done is None else done.recorded_at, earlier, tuple(out))


def payfip_open(report: AcquitReport, store: Any, db: str | None = None,
                file: str | None = None) -> list[ToCheck]:
    """What ``--record`` finds beside the rejections it recorded (or found recorded
    already): per rejected bordereau of the report tied to a run, still active, whose
    Hélios status in the store is that rejection, the PayFiP links still open on its
    titles (production or activation: saisie W or X; ``ledger.open_links``): a family
    may pay through them a title the trésorerie does not hold. One ToCheck each (reason
    ``payfip-open``), with what to do. The exit stays the rejection's (9): a rejected
    bordereau is never "nothing rejected"."""
    from .payfip.ledger import open_links, rejected_bordereaux
    from .payfip.models import cents_text
    from .store import chunks

    # each run's statuses and open links read once for all its rejected bordereaux (per
    # bordereau, each read the run's: minutes for thousands of rejections)
    asked: dict[str, set[int]] = {}
    for r in report.elements:
        if r.run is None or r.element.accepted:
            continue
        if r.run.cancelled_at is not None or r.bordereau is None:
            continue  # cancelled: its links are run-cancelled's (`runs cancel` said them)
        asked.setdefault(r.run.run_id, set()).add(r.bordereau)
    opened: dict[tuple[str, int], list[Any]] = {}
    for run_id, numbers in asked.items():
        # its status says otherwise since (--replace): not one
        rejected = sorted(rejected_bordereaux(store, run_id, numbers))
        for part in chunks(rejected):
            for op in open_links(store, run_id, part):
                opened.setdefault((run_id, op.id_bord), []).append(op)
    out = []
    for r in report.elements:
        if r.run is None or r.element.accepted or r.bordereau is None:
            continue
        links = opened.get((r.run.run_id, r.bordereau))
        if not links:
            continue
        said = ", ".join(
            f"{op.invoice} (operation {op.id_op}, {cents_text(op.amount_cents)}, saisie "
            f"{op.saisie}, {op.status} since {op.created_at})" for op in links)
        option = db_option(db)
        out.append(ToCheck(
            r.element.line, r.bordereau, r.element.exercise, ("payfip-open",),
            f"{_element_name(r)}: rejected, and {len(links)} PayFiP link(s) of its titles "
            f"still open: {said}",
            "a family paying through one pays a title the trésorerie does not hold (the "
            "money reaches the régie all the same), and one pending may be paid already, "
            f"its notification lost (`pesgen payfip reconcile{option}` asks PayFiP): tell "
            "the régisseur and do not send these links again; the command that cancels the "
            f"bordereau (`pesgen acquit {acquit_arg(file)}{option}` gives it) then needs "
            "--despite-payments, and a payment through them afterwards is a run-cancelled "
            f"anomaly (`pesgen payfip anomalies{option}`); the invoices exported again get "
            "new links (`pesgen payfip link` refuses one for a title of a rejected "
            "bordereau: rule payfip.rejected)"))
    return out


def _errors_of(e: AckElement) -> list[dict[str, Any]]:
    """The element's errors, its pieces' and their lines', as the store records them."""
    out: list[dict[str, str | int | None]] = [
        {"piece": None, "line": None, "code": x.code, "label": x.label} for x in e.errors]
    for p in e.pieces:
        # a piece or line the acquit names with an empty number: "" (None would make its
        # errors the bordereau's own)
        piece = "" if p.number is None else p.number
        out += [{"piece": piece, "line": None, "code": x.code, "label": x.label}
                for x in p.errors]
        for line in p.lines:
            out += [{"piece": piece, "line": "" if line.number is None else line.number,
                     "code": x.code, "label": x.label} for x in line.errors]
    return out


def _recorded_run_id(x: RecordedElement) -> str | None:
    """The run an element of ``--record`` is recorded on (or was, ``already``)."""
    if x.outcome == "already":
        return x.before.run_id
    if x.outcome == "not recorded":
        return None
    run = x.report.run
    assert run is not None  # recorded (new, the same, replaced): tied to one run
    return run.run_id


def recording_json(done: Recording) -> dict[str, Any]:
    """``--record``'s part of ``pesgen acquit --json``."""
    return {
        "recorded_at": done.recorded_at,
        "already_recorded": None if done.already is None else
        {"file": done.already[0], "recorded_at": done.already[1]},
        "elements": [{
            "line": x.report.element.line,
            "bordereau": x.before.id_bord if x.outcome == "already" else x.report.bordereau,
            "run": _recorded_run_id(x),
            "tied_by_run": (x.outcome not in ("not recorded", "already")
                            and x.report.tie_note is not None),
            "outcome": x.outcome, "why": x.why,
            "replaced": None if x.before is None or x.outcome != "replaced" else
            {"accepted": x.before.accepted, "issued_on": x.before.issued_on,
             "errors": x.before.error_count, "file": x.before.file,
             "recorded_at": x.before.recorded_at}} for x in done.elements],
    }
