"""UTF-16 and UTF-32 files, known by their byte order mark or, without one, by their
NUL bytes: what a spreadsheet's or Notepad's "Unicode" save is, and what no reader
should guess to be cp1252."""

from __future__ import annotations

import codecs

# UTF-16 and UTF-32 by their byte order mark (UTF-32 LE's first: it starts with UTF-16
# LE's), with the input.encoding values that read each: what a spreadsheet's "Unicode
# text" export (UTF-16 LE, tab-separated) is
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32 LE", ("utf-32", "utf-32-le")),
              (codecs.BOM_UTF32_BE, "UTF-32 BE", ("utf-32", "utf-32-be")),
              (codecs.BOM_UTF16_LE, "UTF-16 LE", ("utf-16", "utf-16-le")),
              (codecs.BOM_UTF16_BE, "UTF-16 BE", ("utf-16", "utf-16-be")))


def wide(head: bytes) -> tuple[str, tuple[str, ...]] | None:
    """(what the file is, the input.encoding values that read it) for a UTF-16 or
    UTF-32 file: by its byte order mark, or without one by its NUL bytes, every second
    byte's a NUL (an export's text is mostly ASCII, and no export holds a NUL)."""
    for bom, name, reads in _WIDE_BOMS:
        if head.startswith(bom):
            return f"{name} (it starts with the byte order mark {bom.hex(' ').upper()})", reads
    pairs = head[:len(head) - len(head) % 2]
    if len(pairs) < 8 or b"\x00" not in pairs:
        return None
    even, odd = pairs[0::2], pairs[1::2]
    for nuls, others, name in ((odd, even, "UTF-16 LE"), (even, odd, "UTF-16 BE")):
        if nuls.count(0) * 2 >= len(nuls) and others.count(0) == 0:
            return (f"{name} without a byte order mark (every second byte is a NUL)",
                    (name.lower().replace(" ", "-"),))
    return None
