"""Every format bundle renders its own fixture exactly as its expected/ folder says.

Directory-driven: each folder of templates/ with a fixture/ is a case. The expected
files are validated first (XSD or layout; the DGFiP package too for files that go to
Hélios), then the fresh rendering must match them byte for byte, a unified diff on
mismatch. ``PESGEN_REGEN_GOLDEN=1 pytest tests/test_golden_formats.py`` rewrites them
(review the diff before committing). The shipped example mappings must render the
same bytes as the bundles' fixtures, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import os
from datetime import date

import pytest

from pesgen.bundles import check_bundle, compare, fixture_of
from pesgen.errors import Problem
from pesgen.export import export
from pesgen.formats import load_format

from .conftest import EXAMPLES, MAPPINGS, OFFICIAL_DIR, OFFICIAL_ENTRY, ROOT

TEMPLATES = ROOT / "templates"
BUNDLES = sorted(p.name for p in TEMPLATES.iterdir() if (p / "fixture").is_dir())
REGEN = os.environ.get("PESGEN_REGEN_GOLDEN") == "1"
OFFICIAL = OFFICIAL_DIR if OFFICIAL_ENTRY.is_file() else None


def test_every_shipped_bundle_has_a_fixture_and_expected_output():
    shipped = sorted(p.name for p in TEMPLATES.iterdir() if (p / "format.yaml").is_file())
    assert BUNDLES == shipped
    assert {"pes-ormc", "pes-titres", "bl-emagnus", "jvs-millesime",
            "cosoluce-corail"} <= set(BUNDLES)


@pytest.mark.parametrize("name", BUNDLES)
def test_bundle_renders_its_fixture(name, tmp_path):
    fmt = load_format(TEMPLATES / name)
    warned: list[Problem] = []
    problems, diffs = check_bundle(fmt, tmp_path, OFFICIAL, regen=REGEN, warn=warned.append)
    assert not problems, "the expected files are invalid themselves:\n" + "\n".join(
        str(p) for p in problems)
    assert not diffs, "\n".join(diffs)
    # every field the fixture's mapping binds is written, or declared not carried
    assert not warned, "\n".join(map(str, warned))


EXAMPLE_MAPPINGS = {
    "pes-titres": "villeneuve-sur-loing-titres.yaml",
    "bl-emagnus": "villeneuve-sur-loing-emagnus.yaml",
    "jvs-millesime": "villeneuve-sur-loing-jvs.yaml",
    "cosoluce-corail": "villeneuve-sur-loing-corail.yaml",
}


# bundles whose fixture is the example export with a joint debtor given to one invoice
JOINT_DEBTOR = {"bl-emagnus": "FA-2026-00104", "cosoluce-corail": "FA-2026-00104"}


@pytest.mark.parametrize("name", sorted(EXAMPLE_MAPPINGS))
def test_example_run_with_the_shipped_mapping_gives_the_golden_files(name, tmp_path):
    fmt = load_format(TEMPLATES / name)
    fixture = fixture_of(fmt)
    assert fixture is not None
    example = EXAMPLES / "school-export.json"
    if name in JOINT_DEBTOR:
        # the example with a joint debtor, so that the joint debtors' file is checked
        data = json.loads(fixture.input.read_text(encoding="utf-8"))
        [invoice] = [i for i in data["invoices"] if i["number"] == JOINT_DEBTOR[name]]
        del invoice["joint_payer"]
        assert data == json.loads(example.read_text(encoding="utf-8"))
    else:
        assert fixture.input.read_bytes() == example.read_bytes()
    # the fixture's input: the example itself, or the example and one joint debtor
    # (checked above), so that every part of the expected files is compared
    export(MAPPINGS / EXAMPLE_MAPPINGS[name], fixture.input, tmp_path,
           date(2026, 11, 23), official_xsd=OFFICIAL if name == "pes-titres" else None)
    diffs = [d for d in compare(fixture.expected, tmp_path, fmt.encoding)
             if not d.startswith("README.md")]
    assert not diffs, "\n".join(diffs)


def test_a_mismatch_is_shown_as_a_unified_diff(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "F.txt").write_bytes(b'"1";"DUPONT"\r\n"2";"MARTIN"\r\n')
    (b / "F.txt").write_bytes(b'"1";"DUPONT"\r\n"2";"MARTINE"\r\n')
    (b / "G.txt").write_bytes(b"")
    diffs = compare(a, b, "cp1252")
    assert diffs[0].startswith("--- expected/F.txt\n+++ produced/F.txt\n")
    assert '-"2";"MARTIN"' in diffs[0] and '+"2";"MARTINE"' in diffs[0]
    assert diffs[1] == "G.txt: produced but not expected"


def test_regeneration_writes_expected_files(tmp_path):
    import shutil

    bundle = tmp_path / "fmts" / "pes-titres"
    shutil.copytree(TEMPLATES / "pes-titres", bundle)
    shutil.rmtree(bundle / "expected")
    fmt = load_format(bundle)
    problems, diffs = check_bundle(fmt, tmp_path / "w1", regen=True)
    assert problems == [] and diffs == []
    assert sorted(p.name for p in (bundle / "expected").iterdir()) == [
        "PESALR1_21450999400015_2026_0000001.xml", "README.md"]  # titres: no references
    # a changed template now shows as a diff against the regenerated files
    tpl = bundle / "pes-titres.xml.j2"
    tpl.write_text(tpl.read_text(encoding="utf-8").replace(
        '<Adresse V="{{ doc.emitter.adresse }}"/>', '<Adresse V="AUTRE"/>'), encoding="utf-8")
    _, diffs = check_bundle(load_format(bundle), tmp_path / "w2")
    assert len(diffs) == 1 and '+<Emetteur><Sigle V="PESGEN"/><Adresse V="AUTRE"/>' in diffs[0]
