"""How the command line prints a line of text: on standard output (``say``) the secrets
of the URLs it quotes masked, on standard error (``echo_err``) its control characters
escaped too. One definition for ``pesgen …`` (cli.py) and ``pesgen payfip …``
(payfip/cli.py, which imports cli.py only inside its commands: cli.py imports it)."""

from __future__ import annotations

import typer

from ._display import escaped_lines, masked_text


def err_text(text: str) -> str:
    """``text`` as standard error shows it (``echo_err``, payfip's log lines). An error, a
    warning or a note may quote a file's text (an XML's value, an acknowledgement's
    libellé) or a PayFiP answer: no control character of it reaches the terminal as such
    (``escaped_lines``: tabs and line ends stay); nor the password of a URL it quotes (a
    store URL given where a file or a date was expected: "postgresql:/u:pw@h/db: no
    such file")."""
    return escaped_lines(masked_text(text))


def echo_err(text: str, nl: bool = True) -> None:
    """A line on standard error, as ``err_text`` shows it."""
    typer.echo(err_text(text), err=True, nl=nl)


def say(text: str = "", nl: bool = True) -> None:
    """A line of a command's text on standard output: the password of any URL it quotes
    masked (``masked_text``: a store URL, a PayFiP endpoint, a mapping's path, a reason
    typed or a libellé received holding one), as its JSON report masks them."""
    typer.echo(masked_text(text), nl=nl)
