"""The JSON reader's two paths (pesgen/sources.py): the fast one (the standard library's
decoder, a value at a time) reads ordinary exports; on anything it does not vouch for
it hands over to the exact one (ijson events, checked one by one), from the invoice it
had reached. Whatever the file, the pair reads exactly what the exact reader alone
reads: the same invoices with the same origins, or the same refusal."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pesgen import sources
from pesgen.errors import ExitCode, InputDataError

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli

SPEC = sources.InputSpec(format="json")
EXAMPLE = (EXAMPLES / "school-export.json").read_text(encoding="utf-8")


def _outcome(reader: Any, path: Path, spec: sources.InputSpec = SPEC) -> Any:
    try:
        return [(s.record, s.origin) for s in reader(path, spec)]
    except InputDataError as exc:
        return ("refused", exc.report())


def _both(path: Path, spec: sources.InputSpec = SPEC) -> tuple[Any, Any]:
    return (_outcome(sources.read_invoices, path, spec),
            _outcome(sources._read_json_exact, path, spec))


def _write(tmp_path: Path, text: str, name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _exact_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    exact = sources._read_json_exact

    def spy(path: Path, spec: sources.InputSpec, skip: int = 0) -> Any:
        calls.append(skip)
        return exact(path, spec, skip)

    monkeypatch.setattr(sources, "_read_json_exact", spy)
    return calls


def test_the_example_is_read_by_the_fast_reader_alone(tmp_path, monkeypatch):
    path = _write(tmp_path, EXAMPLE)
    want = _outcome(sources._read_json_exact, path)
    calls = _exact_calls(monkeypatch)
    assert _outcome(sources.read_invoices, path) == want
    assert calls == []
    assert len(want) == 12 and want[3][1] == f"{path}:$.invoices[3]"


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1000])
def test_values_cut_by_the_end_of_a_chunk_are_read_whole(tmp_path, monkeypatch, chunk):
    path = _write(tmp_path, EXAMPLE)
    want = _outcome(sources._read_json_exact, path)
    monkeypatch.setattr(sources, "_CHUNK", chunk)
    calls = _exact_calls(monkeypatch)
    assert _outcome(sources.read_invoices, path) == want
    assert calls == []


@pytest.mark.parametrize("chunk", [1, 3])
def test_a_number_beside_the_invoices_cut_by_a_chunk_is_read_whole(tmp_path, monkeypatch,
                                                                   chunk):
    """A number is the one value that can end with the text decoded so far and go on in
    the next chunk: the fast reader reads on before it takes it, and does not hand over
    to the exact reader."""
    path = _write(tmp_path, json.dumps({"exported": 20261123, **json.loads(EXAMPLE)}))
    want = _outcome(sources._read_json_exact, path)
    monkeypatch.setattr(sources, "_CHUNK", chunk)
    calls = _exact_calls(monkeypatch)
    assert _outcome(sources.read_invoices, path) == want
    assert calls == []
    assert len(want) == 12


def test_an_invoice_nested_to_the_bound_is_read_by_the_fast_reader(tmp_path, monkeypatch):
    """An invoice as deep as the exact reader allows (MAX_JSON_DEPTH levels counted from
    the file's root: the root object and the invoices array, then the invoice's own) is
    read by the fast reader alone; one level more is refused."""
    levels = sources.MAX_JSON_DEPTH - 2

    def text(levels: int) -> str:
        inner = "[" * (levels - 1) + "]" * (levels - 1)
        return '{"invoices": [{"number": "A", "notes": ' + inner + "}]}"

    path = _write(tmp_path, text(levels))
    calls = _exact_calls(monkeypatch)
    assert _outcome(sources.read_invoices, path)[0][1] == f"{path}:$.invoices[0]"
    assert calls == []
    got = _outcome(sources.read_invoices, _write(tmp_path, text(levels + 1), "deeper.json"))
    assert got[0] == "refused" and "(rule input.json-depth)" in got[1]


def test_an_invoice_of_objects_nested_to_the_bound_is_read_by_the_fast_reader(
        tmp_path, monkeypatch):
    """The same of objects alone, no list (the fast reader counts them as its decoder
    makes them, not by a '['): as deep as the exact reader allows, read by the fast
    reader alone, after another invoice; one level more is refused."""
    levels = sources.MAX_JSON_DEPTH - 2

    def text(levels: int) -> str:
        inner = '{"k": ' * (levels - 2) + "{}" + "}" * (levels - 2)
        return ('{"invoices": [{"number": "B", "notes": {"a": {"b": {}}}}, '
                '{"number": "A", "notes": ' + inner + "}]}")

    path = _write(tmp_path, text(levels))
    calls = _exact_calls(monkeypatch)
    assert _outcome(sources.read_invoices, path)[1][1] == f"{path}:$.invoices[1]"
    assert calls == []
    got = _outcome(sources.read_invoices, _write(tmp_path, text(levels + 1), "deeper.json"))
    assert got[0] == "refused" and "deeper.json:$.invoices[1].notes.k" in got[1] \
        and "(rule input.json-depth)" in got[1], got


def test_a_byte_order_mark_opens_a_utf8_export(tmp_path):
    path = tmp_path / "export.json"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.encode("utf-8"))
    for reader in (sources.read_invoices, sources._read_json_exact):
        assert [r for r, _ in _outcome(reader, path)] == json.loads(EXAMPLE)["invoices"]


def test_an_export_in_another_encoding_is_read_past_its_first_block(tmp_path):
    """The exact reader decodes a cp1252 file as it reads it, block after block."""
    data = json.loads(EXAMPLE)
    data["invoices"][-1]["note"] = "é" * 70_000
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="cp1252")
    spec = sources.InputSpec(format="json", encoding="cp1252")
    assert [r for r, _ in _outcome(sources._read_json_exact, path, spec)] == data["invoices"]


def test_a_long_records_path_gives_each_invoice_its_index(tmp_path):
    """A records path past 140 characters has its origins made whole by _jpath (which
    cuts past 160): each invoice still at its own index."""
    key = "k" * 140
    path = _write(tmp_path, json.dumps({key: json.loads(EXAMPLE)["invoices"][:3]}))
    spec = sources.InputSpec(format="json", records=key)
    got, want = _both(path, spec)
    assert got == want
    assert [origin for _, origin in got] == [f"{path}:$.{key}[{i}]" for i in range(3)]


def test_the_exact_reader_bounds_a_value_not_the_file(tmp_path, monkeypatch):
    """The byte bound is of one invoice or one value, counted again from each value
    read: a file of many invoices and many values beside them is read whole; a string
    of MAX_JSON_STRING characters beside them is read (one more is refused)."""
    monkeypatch.setattr(sources, "MAX_JSON_RECORD_BYTES", 300_000)
    data = json.loads(EXAMPLE)
    data["invoices"] *= 300
    data["meta"] = ["x" * 100] * 5000  # 500 kB of small values outside the invoices
    data["note"] = "a" * sources.MAX_JSON_STRING
    path = _write(tmp_path, json.dumps(data))
    assert len(_outcome(sources._read_json_exact, path)) == 3600
    data["note"] += "a"
    got = _outcome(sources._read_json_exact, _write(tmp_path, json.dumps(data), "more.json"))
    assert got[0] == "refused" and "more.json:$.note: a string of 100001 characters" in got[1]


def test_a_repeated_key_hands_over_from_the_invoice_reached(tmp_path, monkeypatch):
    data = json.loads(EXAMPLE)
    text = json.dumps(data, ensure_ascii=False)
    number = data["invoices"][4]["number"]
    text = text.replace(f'"number": "{number}"', f'"number": "{number}", "number": "X"')
    path = _write(tmp_path, text)
    calls = _exact_calls(monkeypatch)
    seen: list[str] = []
    with pytest.raises(InputDataError) as info:
        for item in sources.read_invoices(path, SPEC):
            seen.append(item.origin)
    assert calls == [4]  # invoices 0-3 were read fast, and not again
    assert seen == [f"{path}:$.invoices[{i}]" for i in range(4)]
    assert info.value.problems[0].rule == "input.json-duplicate-key"
    assert info.value.problems[0].record == f"{path}:$.invoices[4].number"


@pytest.mark.parametrize("text, rule", [
    ('{"invoices": [{"number": "A"}]} x', "input.json"),
    ('{"invoices": [{"number": "A", "n": NaN}]}', "input.json"),
    ('{"invoices": [{"number": "A"}], "invoices": []}', "input.json-duplicate-key"),
    ('{"invoices": [{"number": "A"},]}', "input.json"),
    ('{"invoices": {"number": "A"}}', "input.empty"),
    ('{"invoices": []}', "input.empty"),
    ('{"invoice": [{"number": "A"}]}', "input.empty"),
    ('[{"number": "A"}]', "input.empty"),
    ('{"invoices": [{"number": "A"}, 3]}', "input.shape"),
])
def test_what_the_fast_reader_leaves_is_refused_as_the_exact_reader_does(tmp_path, text,
                                                                         rule):
    got, want = _both(_write(tmp_path, text))
    assert got == want
    assert got[0] == "refused" and f"(rule {rule})" in got[1]


@pytest.mark.parametrize("text, where", [
    ('{"invoices": [{"number": "A"}, {"number": "B", "payer": {"name": "N\\ud800D"}}]}',
     "$.invoices[1].payer.name"),
    # a low half alone, a high half before another high half, one in a line, in a key
    ('{"invoices": [{"number": "\\udc00A"}]}', "$.invoices[0].number"),
    ('{"invoices": [{"number": "\\ud800\\ud800"}]}', "$.invoices[0].number"),
    ('{"invoices": [{"number": "A", "lines": [{"label": "x"}, {"label": "\\udfffy"}]}]}',
     "$.invoices[0].lines[1].label"),
    ('{"invoices": [{"number": "A", "\\ud800": 1}]}', "$.invoices[0]"),
])
def test_a_lone_escaped_surrogate_is_refused_at_its_path_by_both_readers(tmp_path, text,
                                                                           where):
    """ijson's C backend read a lone surrogate escape as '?' and both readers agreed on
    it: 'CRCVSL\\ud800042' went into the file as the mandate reference CRCVSL?042, a
    valid SEPA text, without a word. It is half of a UTF-16 character, not a character:
    refused, naming its JSON path."""
    path = _write(tmp_path, text)
    got, want = _both(path)
    assert got == want
    assert got[0] == "refused"
    assert f"{path}:{where}: an escaped lone surrogate" in got[1]
    assert "(rule input.json-surrogate)" in got[1]


def test_a_lone_surrogate_is_refused_in_a_json_file_of_another_encoding(tmp_path):
    from dataclasses import replace

    path = tmp_path / "export.json"
    path.write_bytes('{"invoices": [{"number": "é\\ud800"}]}'.encode("latin-1"))
    got, want = _both(path, replace(SPEC, encoding="latin-1"))
    assert got == want and got[0] == "refused"
    assert f"{path}:$.invoices[0].number: an escaped lone surrogate" in got[1]


def test_an_escaped_surrogate_pair_is_its_character_read_fast(tmp_path, monkeypatch):
    calls = _exact_calls(monkeypatch)
    path = _write(tmp_path, '{"invoices": [{"number": "\\ud83d\\ude00"}, '
                            '{"number": "\\\\ud800"}]}')
    got = _outcome(sources.read_invoices, path)
    assert calls == []  # no hand-over: the decoder joins the pair
    assert [r["number"] for r, _o in got] == ["\U0001F600", "\\ud800"]
    assert got == _outcome(sources._read_json_exact, path)


def test_the_export_refuses_a_mandate_reference_with_a_lone_surrogate(tmp_path):
    # it went into the PES file as RefUniMdt CRCVSL?042, valid against the XSD
    assert EXAMPLE.count('"CRCVSL000042"') == 1
    path = _write(tmp_path, EXAMPLE.replace('"CRCVSL000042"', '"CRCVSL\\ud800042"'))
    r = run_cli("export", "--mapping", MAPPINGS / "villeneuve-sur-loing.yaml", "--input", path,
                "--out", tmp_path / "out", "--date", RUN_DATE,
                "--db", f"sqlite:///{tmp_path / 'store.db'}", "--create-store")
    assert r.exit_code == ExitCode.INPUT, r.output
    assert (f"{path}:$.invoices[0].payment.mandate.rum: an escaped lone surrogate"
            in r.output)
    assert not (tmp_path / "out").exists()


def test_brackets_in_strings_are_not_nesting(tmp_path):
    label = "[" * 200 + "{" * 200
    path = _write(tmp_path, json.dumps({"invoices": [{"number": "A", "label": label}]}))
    got, want = _both(path)
    assert got == want == [({"number": "A", "label": label}, f"{path}:$.invoices[0]")]


def test_numbers_read_as_the_exact_reader_reads_them(tmp_path):
    path = _write(tmp_path, '{"invoices": [{"a": 1, "b": -0, "c": 1.50, "d": 1E-2, '
                            '"e": 12345678901234567890123, "f": 2.5e3, "g": true, "h": null}]}')
    got, want = _both(path)
    assert got == want
    record = got[0][0]
    assert record["c"] == Decimal("1.50") and str(record["c"]) == "1.50"
    assert type(record["a"]) is int and type(record["e"]) is int


# ---------------------------------------------------------------- property

_KEYS = st.sampled_from(["number", "a", "b", "lines", "invoices", "é", "k\"q", "x\\y"])


def _text(node: Any, ws: str) -> str:
    """JSON text for a tree of ("obj", pairs) / ("arr", items) / scalars (a str scalar
    that starts with a quote or is not JSON-shaped is written raw: broken on purpose)."""
    if isinstance(node, tuple) and node[0] == "obj":
        return "{" + f",{ws}".join(f"{json.dumps(k)}{ws}:{ws}{_text(v, ws)}"
                                   for k, v in node[1]) + "}"
    if isinstance(node, tuple) and node[0] == "arr":
        return "[" + f",{ws}".join(_text(v, ws) for v in node[1]) + "]"
    if isinstance(node, str) and node.startswith("RAW:"):
        return node[4:]
    return json.dumps(node, ensure_ascii=False)


_RAW = st.sampled_from(['"\\ud800"', '"\\u00e9\\n"', '"[[{{"', "1e400", "-", "NaN", "01",
                        '"\\ud83d\\ude00"', "2.50", "-0"]).map(lambda s: "RAW:" + s)
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                    st.text(max_size=12))
_VALUES = st.recursive(
    st.one_of(_LEAVES, _LEAVES, _LEAVES, _RAW),  # a broken or odd token now and then
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda v: ("arr", v)),
        st.lists(st.tuples(_KEYS, inner), max_size=4).map(lambda v: ("obj", v))),
    max_leaves=20)
_INVOICES = st.lists(st.one_of(
    st.lists(st.tuples(_KEYS, _VALUES), max_size=5).map(lambda v: ("obj", v)),
    st.lists(st.tuples(_KEYS, _VALUES), max_size=5).map(lambda v: ("obj", v)),
    _VALUES), max_size=5)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(invoices=_INVOICES,
       around=st.lists(st.tuples(_KEYS, _VALUES), max_size=3),
       at=st.integers(0, 3), ws=st.sampled_from(["", " ", "\n\t"]),
       chunk=st.sampled_from([1, 3, 16, 1 << 20]), tail=st.sampled_from(["", "\n", " x"]))
def test_the_pair_reads_what_the_exact_reader_reads(tmp_path, monkeypatch, invoices, around,
                                                    at, ws, chunk, tail):
    pairs = list(around)
    pairs.insert(min(at, len(pairs)), ("invoices", ("arr", invoices)))
    path = _write(tmp_path, _text(("obj", pairs), ws) + tail)
    monkeypatch.setattr(sources, "_CHUNK", chunk)
    got, want = _both(path)
    assert got == want


@pytest.mark.parametrize("text", [
    '{"invoices": [{"number": "A", "quantity": 1e99999999999999999999999999}]}',
    '{"invoices": [{"number": "A", "lines": [{"q": ' + "1" * 5000 + '}]}]}',
    '{"meta": ' + "9" * 5000 + ', "invoices": [{"number": "A"}]}',
    '{"invoices": [{"number": "A"}, {"number": "B", "q": -1E+999999999999999999999}]}',
])
def test_a_number_too_long_or_too_large_is_refused_not_a_traceback(tmp_path, text):
    got, want = _both(_write(tmp_path, text))
    assert got == want
    assert got[0] == "refused" and "(rule input.json)" in got[1]
    assert "a number too long or too large to read" in got[1]
