"""PayFiP's errors, inside pesgen's one hierarchy (``pesgen.errors``)."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InputDataError, PesgenError, Problem, RemoteServiceError, UsageError

# what a refusal before anything reached PayFiP says
SENT_NOTHING = "nothing was sent"


class PayfipRequestInvalid(InputDataError):
    """A request that breaks PayFiP's parameter rules: refused before sending."""

    default_message = "the PayFiP request is invalid; nothing was sent"

    def __init__(self, message: str | None = None,
                 problems: list[Problem] | None = None) -> None:
        # a message saying that nothing was sent says what the command leaves: the count
        # of problems after it ends there (a "nothing was written." beside it read as a
        # second, other outcome)
        said = (message or self.default_message).endswith(SENT_NOTHING)
        super().__init__(message, problems, outcome="" if said else None)


class PayfipConfigError(UsageError):
    default_message = "the PayFiP configuration is invalid"


class PayfipFault(RemoteServiceError):
    """The PayFiP service answered with a SOAP fault (it refused the operation).

    ``kind`` is the fault type of the WSDL (FonctionnelleErreur, TechDysfonctionnementErreur,
    TechIndisponibiliteErreur, TechProtocolaireErreur) or ``SOAP`` for a bare fault.
    """

    default_message = "PayFiP refused the operation"

    def __init__(self, message: str | None = None, *, kind: str = "SOAP", code: str = "",
                 libelle: str = "", descriptif: str = "", severite: int | None = None,
                 problems: list[Problem] | None = None) -> None:
        self.kind = kind
        self.code = code
        self.libelle = libelle
        self.descriptif = descriptif
        self.severite = severite
        super().__init__(message or f"PayFiP fault {kind} {code}: {libelle or descriptif}",
                         problems)

    @property
    def summary(self) -> str:
        """The fault's kind and code, for a log line: ``FonctionnelleErreur R3``."""
        return f"{self.kind} {self.code}".strip()

    @property
    def technical(self) -> bool:
        """A fault worth retrying later (the service, not the request, failed)."""
        return self.kind.startswith("Tech") or self.kind == "SOAP"


class PayfipUnavailable(PayfipFault):
    """No usable answer: connection refused, timeout, HTTP error without a SOAP fault.
    ``code`` says which, in words (``connection refused``, ``timeout``, ``HTTP 502``,
    else the failure's class): never the URL, a password or billing data."""

    default_message = "PayFiP did not answer"

    def __init__(self, message: str | None = None, reason: str = "no answer") -> None:
        super().__init__(message or self.default_message, kind="Transport", code=reason)

    @property
    def summary(self) -> str:
        return f"no answer: {self.code}"

    @property
    def technical(self) -> bool:
        return True


class LinksRefused(PesgenError):
    """Invoices of a batch of links (``payfip link -n A -n B …``) refused before anything
    was sent: nothing was sent for any invoice of the batch. Its exit code is the first
    refused invoice's; each one's error is said, its problems listed under it
    (``report``: the message holds the errors only, as the JSON report's ``error``), and
    the count says of how many of the refused invoices they are."""

    default_message = "invoices refused; nothing was sent"

    def __init__(self, refused: list[tuple[str, PesgenError]], others: list[str],
                 listed: Callable[[list[str]], str]) -> None:
        self.exit_code = refused[0][1].exit_code
        lines = [f"{len(refused)} of {len(refused) + len(others)} invoice(s) refused: "
                 f"{listed([given for given, _ in refused])}; nothing was sent"
                 + (f", for them nor for the others ({listed(others)}: give them again "
                    "without the refused ones)" if others else "")]
        # each refused invoice's line, then its problems: said under it by ``report``
        self.grouped: list[tuple[str, list[Problem]]] = []
        for given, exc in refused:
            # the first line says that nothing was sent, for any invoice: not again for each
            said = str(exc).removesuffix("; " + SENT_NOTHING)
            if any(p.rule == "payfip.mel" for p in exc.problems):
                # its problem says "give one with --mel", which a batch refuses (one
                # address for several families): the way to give it
                said += (f" (--mel takes one invoice: link it on its own, -n {given.strip()} "
                         "--mel ADDRESS)")
            lines.append(f"  {said}")
            self.grouped.append((f"  {said}", list(exc.problems)))
        self.head = lines[0]
        super().__init__("\n".join(lines), [p for _, some in self.grouped for p in some],
                         outcome="")

    def report(self) -> str:
        """The message with each refused invoice's problems under its own line, then
        their count, of how many refused invoices (a problem is one invoice's; an
        invoice refused for no listed problem, in no active run, has its line alone)."""
        lines = [self.head]
        for said, problems in self.grouped:
            lines.append(said)
            lines.extend(f"    - {p}" for p in problems)
        if self.problems:
            having = sum(bool(problems) for _, problems in self.grouped)
            of = ("the" if having == len(self.grouped) else f"{having} of the")
            lines.append(f"{len(self.problems)} problem(s), of {of} {len(self.grouped)} "
                         "refused invoice(s).")
        return "\n".join(lines)
