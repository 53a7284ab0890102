"""The legacy TIPI URL protocol: a ``paiement.web?…`` link the browser follows.

Kept for collectivities still on TIPI régie. Its return to ``urlcl`` is NOT signed,
so pesgen never records a payment from it: use the web service (``pesgen payfip
link``) for anything that must come back into the billing. saisie letters differ from
the web service: T test, X activation, A production.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from ..errors import Problem
from .endpoint import DEFAULT_ENDPOINT, check_endpoint
from .errors import PayfipRequestInvalid
from .models import (
    MAX_CENTS_URL,
    SAISIE_URL,
    check_exer,
    check_mel,
    check_montant,
    check_numcli,
    check_objet,
    check_refdet,
    check_url,
)


@dataclass(frozen=True)
class TipiRequest:
    invoice: str  # names the invoice in errors; not sent
    numcli: str
    exer: str
    refdet: str
    montant: int  # cents
    mel: str
    objet: str
    saisie: str
    urlcl: str

    def problems(self) -> list[Problem]:
        inv = self.invoice
        out = check_numcli(self.numcli, inv) + check_exer(self.exer, inv)
        out += check_refdet(self.refdet, inv)
        out += check_montant(self.montant, inv, MAX_CENTS_URL)
        out += check_mel(self.mel, inv)
        out += check_objet(self.objet, inv)
        if self.saisie not in SAISIE_URL:
            out.append(Problem("payfip.saisie", f"saisie: {self.saisie!r} must be one of "
                               + ", ".join(f"{k} ({v})" for k, v in SAISIE_URL.items())
                               + " for the URL protocol", invoice=inv))
        out += check_url("urlcl", self.urlcl, inv)
        return out


def tipi_url(req: TipiRequest, endpoint: str = DEFAULT_ENDPOINT) -> str:
    """The ``paiement.web`` URL, after every rule is checked."""
    problems = req.problems()
    if problems:
        raise PayfipRequestInvalid(f"invoice {req.invoice}: the TIPI link is invalid", problems)
    query = urlencode([("numcli", req.numcli), ("exer", req.exer), ("refdet", req.refdet),
                       ("objet", req.objet), ("montant", str(req.montant)), ("mel", req.mel),
                       ("urlcl", req.urlcl), ("saisie", req.saisie)])
    return f"{check_endpoint(endpoint)}/paiement.web?{query}"
