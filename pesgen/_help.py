"""What ``--help`` shows: pesgen's command groups tidy every command's help, and the
help of the options several command groups share."""

from __future__ import annotations

import inspect
from typing import Any

from typer import TyperException
from typer.core import TyperGroup

from ._display import masked_urls

# how the store is chosen: cli._store, then store.default_url
DB_HELP = ("State store: a SQLite file or a postgresql:// URL. Default: PESGEN_DB, else db "
           "in the configuration file, else pesgen.sqlite3 in $XDG_DATA_HOME/pesgen "
           "(~/.local/share/pesgen).")


def _tidy_help(command: Any, ctx: Any) -> None:
    """What --help shows of a command, made readable at 80 columns: a flag takes no
    value (no ``<bool>``), and the command lists show each command's first paragraph
    on one line, not the docstring's own line breaks."""
    if getattr(command, "_pesgen_tidy", False):
        return
    command._pesgen_tidy = True
    if command.help and not command.short_help:
        first = inspect.cleandoc(command.help).split("\n\n")[0]
        command.short_help = " ".join(first.split())
    for param in [*command.params, command.get_help_option(ctx)]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param is not None and param.metavar is None:
            # a repeatable value shows as the value it repeats, not as a Python type
            shown = param.display_type(ctx)
            if shown.startswith("<list[") and shown.endswith("]>"):
                element = f"<{shown[6:-2].lower()}>…"
                param.display_type_rich = lambda ctx, shown=element: shown


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


