"""A DOCTYPE is refused by both readers of outside XML, ``pesgen validate`` (rule
xml.doctype) and ``pesgen acquit`` (acquit.doctype), from one scan of the file's prolog
bytes before any parser reads it (``validate.declares_doctype``): whatever the lxml
version (6.2's iterparse fails first on an entity the DOCTYPE declares), the encoding
(UTF-16 with its byte order mark, UTF-7 that hides the markup from a reading of the
bytes) and what precedes it (comments, processing instructions); its entities, an XXE
attempt or a billion laughs, are never read."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from pesgen.acquit import read_acquit
from pesgen.errors import ExitCode, InputDataError
from pesgen.formats import find_format
from pesgen.validate import _PrologScan, declares_doctype, stream_check, validate_pes_file

from .conftest import GOLDEN_ORMC, ROOT, run_cli

OWN_XSD = find_format("pes-ormc").files[0].xsd
ACCEPTED = ROOT / "tests" / "acquit" / "accepted.xml"
SECRET = "TOP-SECRET-IBAN"


def _xxe(root: str, secret: Path) -> str:
    return f'<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'


def _laughs(root: str) -> str:
    """A billion laughs: entity j expands to 10^9 a's."""
    levels = "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'
                     for i in range(9))
    return f'<!DOCTYPE {root} [<!ENTITY a "a">{levels}]>\n'


# each: (what goes before the root element, what is used inside it, encoding)
KINDS = {
    "xxe": (lambda root, secret: _xxe(root, secret), "&xxe;", None),
    "billion-laughs": (lambda root, secret: _laughs(root), '<X V="&j;"/>', None),
    "xxe-in-an-attribute": (lambda root, secret: _xxe(root, secret), '<X V="&xxe;"/>', None),
    "after-a-comment": (lambda root, secret: "<!-- sent by -->\n<?pi x?>\n" +
                        _xxe(root, secret), "&xxe;", None),
    "after-a-pi": (lambda root, secret: "<?pi x?>\n  " + _xxe(root, secret), "&xxe;", None),
    "utf-16-with-bom": (lambda root, secret: _xxe(root, secret), "&xxe;", "UTF-16"),
    "utf-7": (lambda root, secret: _xxe(root, secret), "&xxe;", "UTF-7"),
}


def _utf7_hidden(text: str) -> bytes:
    """``text`` in UTF-7 as one base64 run, no '<' or '!' left in its bytes: what hides
    the markup from a reading of the bytes (Python's utf-7 codec writes '<' as it is)."""
    return b"+" + base64.b64encode(text.encode("utf-16-be")).rstrip(b"=") + b"-"


def _doctyped(text: str, root: str, kind: str, secret: Path) -> bytes:
    """``text`` (an ISO-8859-1 document whose root element is ``root``, its Enveloppe
    first inside) given the DOCTYPE of ``kind``, its entity used in the Enveloppe."""
    before, used, encoding = KINDS[kind]
    head, rest = text.split(f"<{root}", 1)
    rest = rest.replace("<Enveloppe>", "<Enveloppe>" + used, 1)
    text = head + before(root, secret) + f"<{root}" + rest
    if encoding is None:
        return text.encode("iso-8859-1")
    text = text.replace('encoding="ISO-8859-1"', f'encoding="{encoding}"', 1)
    if encoding == "UTF-16":
        return text.encode("utf-16")  # with its byte order mark
    declaration, body = text.split("\n", 1)  # UTF-7: the declaration is ASCII
    return declaration.encode("ascii") + b"\n" + _utf7_hidden(body)


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", list(KINDS))
def test_validate_refuses_a_doctype_unread(tmp_path, secret, kind):
    path = tmp_path / "t.xml"
    path.write_bytes(_doctyped(GOLDEN_ORMC.read_text(encoding="iso-8859-1"), "n:PES_Aller",
                               kind, secret))
    problems = validate_pes_file(path, OWN_XSD)
    assert [(p.rule, p.record) for p in problems] == [("xml.doctype", "t.xml:1")]
    for args in (["validate", path], ["validate", "--format", "pes-ormc", path]):
        r = run_cli(*args)
        assert r.exit_code == ExitCode.OUTPUT, r.output
        assert "the file declares a DOCTYPE; a PES file has none (rule xml.doctype)" in \
            r.output
        assert "1 problem(s)" in r.output and SECRET not in r.output
        # nor read for its TypFic to hint at (a file declaring a DOCTYPE is not parsed)
        assert "its TypFic is" not in r.output, r.output


@pytest.mark.parametrize("kind", list(KINDS))
def test_acquit_refuses_a_doctype_unread(tmp_path, secret, kind):
    path = tmp_path / "ack.xml"
    path.write_bytes(_doctyped(ACCEPTED.read_text(encoding="iso-8859-1"), "n:PES_ACQUIT",
                               kind, secret))
    with pytest.raises(InputDataError) as info:
        read_acquit(path)
    assert [(p.rule, p.record) for p in info.value.problems] == [("acquit.doctype",
                                                                  "ack.xml:1")]
    r = run_cli("acquit", path)
    assert r.exit_code == ExitCode.INPUT
    assert "declares a DOCTYPE" in r.output and SECRET not in r.output


def test_the_same_files_without_a_doctype_are_read(tmp_path):
    """What the scan lets through is read: the golden file in UTF-16 with its byte order
    mark is valid, the accepted acquit in UTF-16 is read."""
    text = GOLDEN_ORMC.read_text(encoding="iso-8859-1")
    path = tmp_path / "t.xml"
    path.write_bytes(text.replace('encoding="ISO-8859-1"', 'encoding="UTF-16"', 1)
                     .encode("utf-16"))
    assert validate_pes_file(path, OWN_XSD) == []
    ack = tmp_path / "ack.xml"
    ack.write_bytes(ACCEPTED.read_text(encoding="iso-8859-1")
                    .replace('encoding="ISO-8859-1"', 'encoding="UTF-16"', 1).encode("utf-16"))
    assert read_acquit(ack).id_coll == "21450999400015"


def test_a_streamed_document_is_refused_before_it_is_parsed(tmp_path, secret):
    """stream_check reads a binary stream (pesgen.streamcheck's stdin): its prolog is
    read first, then given to the parser with the rest."""
    import io

    data = _doctyped(GOLDEN_ORMC.read_text(encoding="iso-8859-1"), "n:PES_Aller",
                     "billion-laughs", secret)
    from pesgen.validate import load_xsd

    result = stream_check(io.BytesIO(data), load_xsd(OWN_XSD), "t.xml")
    assert result.doctype and not result.schema_error
    assert [(p.rule, p.record) for p in result.problems] == [("xml.doctype", "t.xml:1")]
    clean = stream_check(io.BytesIO(GOLDEN_ORMC.read_bytes()), load_xsd(OWN_XSD), "t.xml")
    assert clean.problems == [] and not clean.doctype and clean.pieces > 1


D = '<!DOCTYPE r [<!ENTITY e "x">]>'


@pytest.mark.parametrize(("text", "declared"), [
    (f'<?xml version="1.0"?>\n{D}<r/>', True),
    ('<?xml version="1.0"?>\n<r/>', False),
    (f"<!-- {D} --><r/>", False),  # in a comment: not a DOCTYPE
    (f'<?xml version="1.0"?><!-- a -->\n<?pi x?>  {D}<r/>', True),
    ("<!--" + "x-" * 100_000 + "-->" + D + "<r/>", True),  # beyond the first chunk read
    ("<?p " + "?" * 100_000 + "?>" + D + "<r/>", True),
    # the PI's end cut by the first read (64 KiB), between its '?' and its '>'
    ("<?p " + "a" * (2**16 - 5) + "?>" + D + "<r/>", True),
    (f"<r/>{D}", False),  # after the root: not in the prolog (not well-formed)
    ("", False), ("<", False), ("<!DOC", False), ("  \n", False),  # too short
    (f"{D}<r/>", True),
    ("<!-- " + "a" * 200_000, False),  # a prolog never ended
    # '<!-->' does not close the comment it opens: what follows is still in it
    (f"<!-->{D}<r/>", False),
], ids=["declared", "none", "in-a-comment", "after-comment-and-pi", "long-comment",
        "long-pi", "pi-cut-at-a-chunk", "after-the-root", "empty", "lt", "cut", "blanks",
        "no-declaration", "unclosed-comment", "comment-opener-then-gt"])
@pytest.mark.parametrize("encoding", ["iso-8859-1", "utf-8-sig", "utf-16", "utf-16-le",
                                      "utf-16-be", "utf-32"])
def test_the_prolog_scan(text, declared, encoding):
    data = text.encode(encoding)
    assert declares_doctype(data) is declared
    if len(data) < 2000:  # fed a byte at a time: the same answer
        assert _fed_a_byte_at_a_time(data) is declared


def _fed_a_byte_at_a_time(data: bytes) -> bool | None:
    scan, found = _PrologScan(), None
    for i in range(len(data)):
        found = scan.feed(data[i:i + 1])
        if found is not None:
            return found
    return scan.feed(b"", final=True)


def _scanned(data: bytes) -> bool:
    """declares_doctype on the whole bytes, and the scan fed a byte at a time: one
    answer."""
    whole = declares_doctype(data)
    assert _fed_a_byte_at_a_time(data) is whole
    return whole


_UTF7 = _utf7_hidden(D)


@pytest.mark.parametrize(("data", "declared"), [
    (b'<?xml version="1.0" encoding="UTF-7"?>' + _UTF7 + b"<r/>", True),
    (b"<?xml version='1.0' encoding='utf-7'?>\n" + _UTF7 + b"<r/>", True),
    # the declaration cut by the first read (64 KiB): read whole before the encoding
    (b'<?xml version="1.0"' + b" " * 2**16 + b'encoding="UTF-7"?>' + _UTF7 + b"<r/>", True),
    # bytes the declared encoding cannot read, before the DOCTYPE: read past, replaced
    (b'<?xml version="1.0" encoding="UTF-8"?><!-- \xff\xfe -->' + D.encode() + b"<r/>",
     True),
    # UTF-16 declared on bytes that are ASCII (no byte order mark): read as ASCII
    (b'<?xml version="1.0" encoding="UTF-16"?>' + D.encode() + b"<r/>", True),
    (b'<?xml version="1.0" encoding="no-such-codec"?>' + D.encode() + b"<r/>", True),
], ids=["utf-7", "utf-7-single-quotes", "declaration-cut-at-a-chunk", "undecodable-bytes",
        "utf-16-declared-on-ascii", "unknown-encoding"])
def test_the_prolog_scan_reads_the_encoding_the_declaration_names(data, declared):
    assert _scanned(data) is declared


def test_a_utf7_doctype_hidden_past_a_long_declaration_is_refused_by_validate(tmp_path,
                                                                              secret):
    """The declaration naming UTF-7 longer than the first read: still read whole before
    the prolog is, so the DOCTYPE its encoding hides is refused, its entity unread."""
    text = GOLDEN_ORMC.read_text(encoding="iso-8859-1").replace(
        'encoding="ISO-8859-1"', " " * 2**16 + 'encoding="ISO-8859-1"', 1)
    path = tmp_path / "t.xml"
    path.write_bytes(_doctyped(text, "n:PES_Aller", "utf-7", secret))
    assert [(p.rule, p.record) for p in validate_pes_file(path, OWN_XSD)] == [
        ("xml.doctype", "t.xml:1")]
