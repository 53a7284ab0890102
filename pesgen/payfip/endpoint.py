"""PayFiP's base URL and the pages beside it: light (no httpx), so that the commands
that only build a URL or a code (``tipi-url``, ``datamatrix``) work without the
optional ``[payfip]`` packages. ``client`` re-exports these names."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from .._display import masked_url
from .errors import PayfipConfigError

DEFAULT_ENDPOINT = "https://www.payfip.gouv.fr/tpa"
DEFAULT_TIMEOUT = 15.0  # seconds per call, as the reference client uses


def check_endpoint(endpoint: str) -> str:
    """The base URL ``…/tpa``: SOAP at ``/services/securite``, pages beside it."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise PayfipConfigError(f"PayFiP endpoint '{shown_url(endpoint)}' must be an "
                                f"http(s) URL such as {DEFAULT_ENDPOINT}")
    return endpoint.rstrip("/")


def payment_page(endpoint: str, id_op: str) -> str:
    """Where the family's browser is sent to pay one operation."""
    return f"{check_endpoint(endpoint)}/paiementws.web?idop={quote(id_op, safe='')}"


def shown_url(url: str) -> str:
    """A URL fit for a message, a log or the store: any user and password masked, and
    its query string left out (``?…``: whatever it carries, a token or a family's data)."""
    head, sep, _query = masked_url(url, keep_user=False).partition("?")
    return head + ("?…" if sep else "")
