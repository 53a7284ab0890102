"""What ``--help`` shows: pesgen's command groups tidy every command's help, and the
help of the options several command groups share."""

from __future__ import annotations

import codecs
import inspect
import sys
from typing import Any

from typer import TyperException
from typer.core import TyperGroup

from ._display import masked_urls
from .text import transliterate_char

# how the store is chosen: cli._store, then store.default_url
DB_HELP = ("State store: a SQLite file (or sqlite:/// URL) or a postgresql:// URL. Default: "
           "PESGEN_DB, else db "
           "in the configuration file, else pesgen.sqlite3 in $XDG_DATA_HOME/pesgen "
           "(~/.local/share/pesgen).")


def _stdout_encoding() -> str:
    """The encoding help is written in (standard output's), by its codec's name."""
    try:
        return codecs.lookup(getattr(sys.stdout, "encoding", None) or "utf-8").name
    except LookupError:
        return "utf-8"


def writable(text: str, encoding: str) -> str:
    """``text`` with each character ``encoding`` cannot write transliterated ('é' 'e',
    'œ' 'oe', '«' '"', '…' '...'; '?' for one without): the help's layout counts
    characters, and a character the terminal cannot show written as ``\\xe9`` (or
    refused) misaligned the columns and the panels' borders."""
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for char in text:
        try:
            char.encode(encoding)
            out.append(char)
        except UnicodeEncodeError:
            out.append(transliterate_char(char, "ascii") or "?")
    return "".join(out)


def _texts(command: Any) -> list[tuple[Any, str]]:
    """The objects and attributes of a command's help holding prose."""
    found = [(command, "help"), (command, "short_help"), (command, "epilog")]
    return found + [(param, "help") for param in command.params]


def _tidy_help(command: Any, ctx: Any) -> None:
    """What --help shows of a command, made readable at 80 columns: a flag takes no
    value (no ``<bool>``), the command lists show each command's first paragraph
    on one line, not the docstring's own line breaks, and the help's prose holds only
    characters standard output can write (``writable``: LC_ALL=C, a Latin-1 terminal)."""
    encoding = _stdout_encoding()
    if getattr(command, "_pesgen_tidy", False):
        if command._pesgen_encoding != encoding:
            _write_texts(command, encoding)
        return
    command._pesgen_tidy = True
    if command.help and not command.short_help:
        first = inspect.cleandoc(command.help).split("\n\n")[0]
        command.short_help = " ".join(first.split())
    # the texts as written, transliterated anew for each encoding (a test's runner
    # writes in UTF-8, the next one may not)
    command._pesgen_texts = [(obj, name, getattr(obj, name, None))
                             for obj, name in _texts(command)]
    _write_texts(command, encoding)
    for param in [*command.params, command.get_help_option(ctx)]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param is not None and param.metavar is None:
            # a repeatable value shows as the value it repeats, not as a Python type
            shown = param.display_type(ctx)
            if shown.startswith("<list[") and shown.endswith("]>"):
                element = f"<{shown[6:-2].lower()}>…"
                param.display_type_rich = (
                    lambda ctx, shown=element: writable(shown, _stdout_encoding()))


def _write_texts(command: Any, encoding: str) -> None:
    command._pesgen_encoding = encoding
    for obj, name, text in command._pesgen_texts:
        if isinstance(text, str):
            setattr(obj, name, writable(text, encoding))


class HelpGroup(TyperGroup):
    """pesgen's command groups: every command's help tidied (``_tidy_help``), and the
    URLs their usage errors quote masked (a store's password)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _tidy_help(command, ctx)
        return command

    def invoke(self, ctx: Any) -> Any:
        # click's usage errors quote the command line ("unexpected extra argument
        # (postgresql://u:secret@h/db)", a --to forgotten): a URL's password masked
        # (the words left to the command: click's invoke empties ctx.args)
        words = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        try:
            return super().invoke(ctx)
        except TyperException as exc:  # typer's own click's usage errors
            if isinstance(getattr(exc, "message", None), str):
                exc.message = masked_urls(exc.message, words)
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy_help(self, ctx)
        super().format_help(ctx, formatter)


