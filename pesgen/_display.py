"""Text from outside (an acknowledgement's libellés, a PayFiP answer, an XML's or a YAML
file's values) made fit for a terminal, a message or a log line.

A control character (C0, DEL, C1) or a bidirectional control is shown as a visible
escape (``\\x9b``, ``\\u202e``), so a file cannot move the cursor, clear the screen or
reverse the text around it; a long value is cut, saying so: ``… (N characters)``.
What is stored (the state store) keeps the values exact: only what is shown changes.
"""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import unquote_plus

# C0 (tab and newline too: a value shown on one line stays on it), DEL, C1; the
# bidirectional marks, embeddings, overrides and isolates; the line and paragraph
# separators
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                     "\u2028\u2029]")
# what a message shows of one value at most
LIMIT = 200


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """``text`` with each control character as a visible escape; its length unbounded."""
    return _UNSAFE.sub(_escape, text)


def shown(value: Any, limit: int = LIMIT) -> str:
    """``value`` as text fit for a message: control characters escaped, at most
    ``limit`` characters of it, then ``… (N characters)`` when it is longer."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return escaped(text)
    return f"{escaped(text[:limit])}… ({len(text)} characters)"


def shown_repr(value: Any, limit: int = LIMIT) -> str:
    """``repr(value)`` for a message, bounded as ``shown``: a long string is quoted cut,
    then ``… (N characters)``."""
    if isinstance(value, str) and len(value) > limit:
        return f"{escaped(repr(value[:limit]))}… ({len(value)} characters)"
    return shown(repr(value), limit + 2)


# query parameters that carry a secret (libpq's password, sslpassword…; an API's token)
# (not a bare ...key: libpq's sslkey is a file's path, which a pasted command needs)
_SECRET_PARAM = re.compile(r"(?i)(pass(word|wd)?|pwd|secret|token|api[-_]?key)$")
# the scheme's '//' may have become one '/' where the URL was taken for a path (pathlib
# folds them: `pesgen validate postgresql://u:pw@h/db` says "postgresql:/u:pw@h/db: no
# such file")
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:/{1,3})(?P<userinfo>[^?#]*)@")


def masked_url(url: str, keep_user: bool = True) -> str:
    """A URL fit for a message, a log or a text of the store: the password of its user
    (``user:***@``, even one holding '@'), and any query parameter named as a secret
    (``?password=***``), masked; ``keep_user`` false masks the user too (``***@``)."""
    head, sep, rest = url.partition("?")
    query, hash_, fragment = rest.partition("#")
    match = _USERINFO.match(head)
    if match:
        # the host follows the last '@' before the query: a password may hold '@' or '/'
        userinfo = match.group("userinfo")
        user = userinfo.split(":", 1)[0]
        shown_user = (f"{user}:***" if ":" in userinfo else user) if keep_user else "***"
        head = match.group("scheme") + shown_user + "@" + head[match.end():]
    if sep:
        pairs = []
        for pair in re.split(r"([&;])", query):
            name, eq, _value = pair.partition("=")
            if eq and _SECRET_PARAM.search(unquote_plus(name)):
                pair = f"{name}=***"
            pairs.append(pair)
        query = "".join(pairs)
    return head + sep + query + hash_ + fragment


def masked_argument(word: str) -> str:
    """A command line word fit for a message: the URL it is, or its ``--option=URL``
    gives, with its secrets masked (``masked_url``); any other word as it is."""
    option, eq, value = word.partition("=") if word.startswith("-") else ("", "", word)
    return option + eq + masked_url(value)


# a URL inside a text: its scheme, then up to a space, the punctuation, quotes or
# brackets closing round it left out (what follows its host is kept)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/{1,3}\S+?(?=[:;,.'\")\]]*(?:\s|$))")


def db_option(db: str | None) -> str:
    """`` --db URL`` for a command a report prints (none: the store the next command
    finds again without it), the URL's password masked: a report is pasted into tickets
    and logs (the password is typed, not read from it)."""
    return f" --db {shlex.quote(masked_url(db))}" if db else ""


def masked_urls(text: str, words: list[str] | tuple[str, ...] = ()) -> str:
    """``text`` (a message quoting the command line: click's "unexpected extra
    argument (…)", "'…' is not a valid integer") with the secrets of the URLs it
    quotes masked: each of ``words`` (the command line's) as ``masked_argument`` shows
    it, then any URL left in it (one quoted otherwise, up to a space)."""
    for word in words:
        masked = masked_argument(word)
        if masked != word:
            text = text.replace(word, masked)
    return _URL_IN_TEXT.sub(lambda m: masked_url(m.group()), text)


def masked_text(text: str) -> str:
    """A command's line of text (a summary, a listing, a note) with the secrets of the
    URLs it quotes masked as ``masked_urls`` masks them, as a JSON report's are
    (``masked_json``): a store URL, a PayFiP endpoint, a reason typed or a libellé
    received holding a password. A text quoting no URL is returned as it is, at once."""
    return masked_urls(text) if ":/" in text else text


def escaped_lines(text: str) -> str:
    """``text`` with its control characters escaped but its tabs and line ends: a
    message of several lines stays so."""
    return "\n".join(_UNSAFE.sub(lambda m: m.group() if m.group() == "\t" else _escape(m), line)
                     for line in text.split("\n"))


# what json.dumps(ensure_ascii=False) writes as such but a terminal acts on: C1 and the
# bidirectional controls (C0 is written \u00XX already); inside JSON strings only
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                          "\u2028\u2029]")


def masked_json(data: Any) -> Any:
    """``data`` (what a JSON report holds: dicts, lists, strings, numbers…) with the
    secrets of every URL its strings quote masked as ``masked_urls`` masks them (a store
    URL given where a file was expected: ``"mapping": "postgresql:/u:***@h/db"``); a
    string quoting no URL with a password or a secret parameter (an invoice number, a
    path, a date) is the same string. The keys are pesgen's own: kept."""
    if isinstance(data, str):
        # a URL has its scheme's ':/' (pathlib may have folded its '//'): the rest pass
        return masked_urls(data) if ":/" in data else data
    if isinstance(data, dict):
        return {key: masked_json(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [masked_json(value) for value in data]
    return data


def json_text(data: Any) -> str:
    """``data`` as indented JSON for a terminal, a log or a ticket: the same values
    (exact JSON) but the secrets of the URLs its strings quote (``masked_json``), each
    character a terminal would act on written as its \\uXXXX escape."""
    import json

    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}",
                            json.dumps(masked_json(data), ensure_ascii=False, indent=2))


# what FILE stands for in a command pesgen suggests where it does not know the acquit
# (`pesgen acquit FILE --record`: none recorded yet); where it knows it, its path is given
ACQUIT_FILE = "FILE: the PES_ACQUIT the trésorerie's guichet XML returned for it"
