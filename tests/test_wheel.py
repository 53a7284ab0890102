"""pesgen as its users install it: a wheel, not a checkout. The wheel is built from the
checkout (hatchling, in-process: no network), unpacked into a folder of its own, and run
from another folder with that one first on the path: its templates and schemas must be
found by logical name inside the package (pesgen/_data/), every shipped file there."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import EXAMPLES, MAPPINGS, ROOT, RUN_DATE, run_cli


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    build = pytest.importorskip("hatchling.build")
    dist = tmp_path_factory.mktemp("dist")
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        name = build.build_wheel(str(dist))
    finally:
        os.chdir(here)
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(dist / name) as wheel:
        wheel.extractall(site)
    return site


def _pesgen(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import pesgen; "
            "print(pesgen.__file__, file=sys.stderr); from pesgen.cli import main; main()")
    env = {**os.environ, "PESGEN_DB": str(cwd / "store.sqlite3")}
    env.pop("PESGEN_FORMATS_PATH", None)
    return subprocess.run([sys.executable, "-c", code, str(site), *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_the_wheel_carries_every_shipped_template_and_schema(wheel_site):
    for kind in ("templates", "schemas"):
        shipped = sorted(p.relative_to(ROOT / kind).as_posix()
                         for p in (ROOT / kind).rglob("*")
                         if p.is_file() and "__pycache__" not in p.parts)
        packed = sorted(p.relative_to(wheel_site / "pesgen" / "_data" / kind).as_posix()
                        for p in (wheel_site / "pesgen" / "_data" / kind).rglob("*")
                        if p.is_file())
        assert packed == shipped, kind


def test_the_installed_wheel_exports_and_checks_its_bundles_from_elsewhere(wheel_site,
                                                                           tmp_path):
    """The Quick start's export, `formats` and each shipped bundle's `check-format`, run
    from a folder that is not the checkout, with the wheel's package (not the checkout's)
    imported: the files are the checkout's, byte for byte."""
    out = tmp_path / "out"
    r = _pesgen(wheel_site, tmp_path, "export", "--mapping",
                str(MAPPINGS / "villeneuve-sur-loing.yaml"), "--input",
                str(EXAMPLES / "school-export.json"), "--out", "out", "--date", RUN_DATE,
                "--create-store")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(str(wheel_site / "pesgen" / "__init__.py")), r.stderr
    [xml] = out.glob("*.xml")
    assert "titles: 11, total 2527.25" in r.stdout
    checkout = run_cli("export", "--mapping", MAPPINGS / "villeneuve-sur-loing.yaml",
                       "--input", EXAMPLES / "school-export.json", "--out",
                       tmp_path / "checkout", "--date", RUN_DATE, "--db",
                       tmp_path / "checkout.sqlite3", "--create-store")
    assert checkout.exit_code == 0, checkout.output
    assert xml.read_bytes() == (tmp_path / "checkout" / xml.name).read_bytes()
    validated = _pesgen(wheel_site, tmp_path, "validate", str(xml))
    assert validated.returncode == 0, validated.stderr
    assert "valid as pes-ormc" in validated.stdout
    listed = _pesgen(wheel_site, tmp_path, "formats")
    assert listed.returncode == 0, listed.stderr
    bundles = sorted(p.name for p in (ROOT / "templates").iterdir()
                     if (p / "format.yaml").is_file())
    assert [line.split()[0] for line in listed.stdout.splitlines()] == bundles
    for bundle in bundles:
        checked = _pesgen(wheel_site, tmp_path, "check-format", bundle)
        assert checked.returncode == 0, (bundle, checked.stdout, checked.stderr)
        folder = wheel_site / "pesgen" / "_data" / "templates" / bundle
        assert checked.stdout == (f"{bundle}: the fixture renders expected/ byte for byte "
                                  f"({folder})\n"), checked.stdout
