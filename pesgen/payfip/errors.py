"""PayFiP's errors, inside pesgen's one hierarchy (``pesgen.errors``)."""

from __future__ import annotations

from ..errors import InputDataError, Problem, RemoteServiceError, UsageError


class PayfipRequestInvalid(InputDataError):
    """A request that breaks PayFiP's parameter rules: refused before sending."""

    default_message = "the PayFiP request is invalid; nothing was sent"


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
    def technical(self) -> bool:
        """A fault worth retrying later (the service, not the request, failed)."""
        return self.kind.startswith("Tech") or self.kind == "SOAP"


class PayfipUnavailable(PayfipFault):
    """No usable answer: connection refused, timeout, HTTP error without a SOAP fault."""

    default_message = "PayFiP did not answer"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message, kind="Transport", code="")

    @property
    def technical(self) -> bool:
        return True
