"""Machine configuration file: official XSD location and state database."""

from __future__ import annotations

from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.config import _load

from .conftest import EXAMPLES, MAPPINGS, ROOT, run_cli


def _config(tmp_path, monkeypatch, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("PESGEN_CONFIG", str(path))
    monkeypatch.delenv("PESGEN_DB", raising=False)
    _load.cache_clear()
    return path


def test_config_sets_the_official_xsd_and_the_db(tmp_path, monkeypatch, official_xsd):
    db = tmp_path / "from-config.sqlite3"
    _config(tmp_path, monkeypatch, f"official_xsd: {official_xsd}\ndb: {db}\n")
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "-m", str(MAPPINGS / "villeneuve-sur-loing.yaml"),
                                 "-i", str(EXAMPLES / "school-export.json"), "-o", str(out),
                                 "--date", "2026-11-23", "--create-store"])
    assert result.exit_code == 0, result.output
    assert db.is_file()  # the run went to the configured store
    [xml] = out.glob("*.xml")
    checked = runner.invoke(app, ["validate", str(xml)])
    assert checked.exit_code == 0 and "DGFiP XSD" in checked.output


def test_unknown_setting_is_a_usage_error(tmp_path, monkeypatch):
    _config(tmp_path, monkeypatch, "offical_xsd: /x\n")
    result = CliRunner().invoke(app, ["runs", "list"])
    assert result.exit_code == 2
    assert "unknown setting(s) offical_xsd" in result.output


def test_store_lock_timeout_from_the_file_and_the_environment(tmp_path, monkeypatch):
    from pesgen.config import STORE_LOCK_TIMEOUT, store_lock_timeout
    from pesgen.store import Store

    monkeypatch.delenv("PESGEN_STORE_LOCK_TIMEOUT", raising=False)
    assert store_lock_timeout() == STORE_LOCK_TIMEOUT == 600
    _config(tmp_path, monkeypatch, "store_lock_timeout: 1800\n")
    assert Store(f"sqlite:///{tmp_path / 'a.sqlite3'}").lock_timeout == 1800
    monkeypatch.setenv("PESGEN_STORE_LOCK_TIMEOUT", "2.5")  # the environment wins
    assert Store(f"sqlite:///{tmp_path / 'b.sqlite3'}").lock_timeout == 2.5
    assert Store(f"sqlite:///{tmp_path / 'c.sqlite3'}", lock_timeout=0).lock_timeout == 0


def test_a_bad_store_lock_timeout_is_a_usage_error_naming_where_it_is(tmp_path, monkeypatch):
    monkeypatch.delenv("PESGEN_STORE_LOCK_TIMEOUT", raising=False)
    path = _config(tmp_path, monkeypatch, "store_lock_timeout: ten minutes\n")
    result = CliRunner().invoke(app, ["runs", "list"])
    assert result.exit_code == 2
    assert f"{path}: store_lock_timeout is 'ten minutes': give a number of seconds" \
        in result.output
    for bad in ("-1", "nan", "inf", ""):
        monkeypatch.setenv("PESGEN_STORE_LOCK_TIMEOUT", bad)
        result = CliRunner().invoke(app, ["runs", "list"])
        if bad == "":  # unset: the file's value, refused as above
            assert "store_lock_timeout is 'ten minutes'" in result.output
            continue
        assert result.exit_code == 2
        assert f"PESGEN_STORE_LOCK_TIMEOUT is '{bad}'" in result.output


def test_a_setting_given_a_list_is_a_usage_error_at_its_line(tmp_path, monkeypatch):
    # read as text before: "unsupported database URL '['sqlite:////tmp/a']'", no line
    path = _config(tmp_path, monkeypatch, "# the store\ndb:\n  - sqlite:////tmp/a\n")
    result = CliRunner().invoke(app, ["runs", "list"])
    assert result.exit_code == 2, result.output
    assert f"error: {path}:2: db: a list, not a path: give one value" in result.output
    path = _config(tmp_path, monkeypatch, "official_xsd: yes\nstore_lock_timeout: true\n")
    result = CliRunner().invoke(app, ["runs", "list"])
    assert result.exit_code == 2, result.output
    assert f"error: {path}:2: store_lock_timeout: a yes/no value, not a number" \
        in result.output


def test_a_configuration_file_that_is_not_yaml_is_a_usage_error(tmp_path, monkeypatch):
    # exit 3 before ("the mapping is invalid"), though a duplicate key was 2
    path = _config(tmp_path, monkeypatch, "db: [a\n")
    result = CliRunner().invoke(app, ["runs", "list"])
    assert result.exit_code == 2, result.output
    assert f"error: {path}:2: YAML syntax error: " in result.output
    assert f"[configuration {path}:2] (rule mapping.yaml)" in result.output


def _export_in(folder, *args):
    """The example's export from ``folder`` (its output in ``folder/out``), to the
    default store."""
    import os

    here = os.getcwd()
    os.chdir(folder)
    try:
        return run_cli("export", "-m", MAPPINGS / "villeneuve-sur-loing.yaml", "-i",
                       EXAMPLES / "school-export.json", "-o", "out", "--date",
                       "2026-11-23", *args)
    finally:
        os.chdir(here)


def test_a_relative_data_or_home_folder_is_refused_not_a_store_per_folder(tmp_path,
                                                                         monkeypatch):
    """XDG_DATA_HOME=data (or HOME=relhome) put the default store in the working
    directory: the same export from two folders made two stores, each numbering from
    IdBord 1, and exported the same invoices twice. A usage error, naming what to set;
    nothing written."""
    monkeypatch.setenv("XDG_DATA_HOME", "data")
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        r = _export_in(tmp_path / name)
        assert r.exit_code == 2, r.output
        assert ("error: XDG_DATA_HOME is 'data', a relative path: the default state store "
                "would be another file in each working directory; set it to an absolute "
                "folder, or name the store with --db or PESGEN_DB") in r.output, r.output
        assert not list((tmp_path / name).iterdir())
    monkeypatch.delenv("XDG_DATA_HOME")
    for home, said in (("relhome", "'relhome', not an absolute path"),
                       ("", "'', not an absolute path")):
        monkeypatch.setenv("HOME", home)
        r = _export_in(tmp_path / "one")
        assert r.exit_code == 2, r.output
        assert (f"error: no home folder for the default state store (HOME is {said}): set "
                "HOME or XDG_DATA_HOME to an absolute folder, or name the store with --db "
                "or PESGEN_DB") in r.output, r.output
        assert not list((tmp_path / "one").iterdir())


def test_no_home_folder_is_a_usage_error_naming_what_to_set(tmp_path, monkeypatch):
    """No HOME and a user the system does not know (a service's or a container's): a
    traceback (RuntimeError: Could not determine home directory), even with --db. Now a
    usage error naming what to set; with the configuration file named, --db suffices."""
    import pwd

    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", unknown)
    monkeypatch.delenv("HOME")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.delenv("PESGEN_CONFIG")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    _load.cache_clear()
    r = _export_in(tmp_path, "--db", tmp_path / "store.sqlite3", "--create-store")
    assert r.exit_code == 2, r.output
    assert ("error: no home folder for the configuration file (HOME is not set, and the "
            "system knows no home folder for this user): set HOME or XDG_CONFIG_HOME to an "
            "absolute folder, or name the file with PESGEN_CONFIG") in r.output, r.output
    monkeypatch.setenv("PESGEN_CONFIG", str(tmp_path / "no-config.yaml"))
    r = _export_in(tmp_path)
    assert r.exit_code == 2, r.output
    assert ("error: no home folder for the default state store (HOME is not set, and the "
            "system knows no home folder for this user): set HOME or XDG_DATA_HOME to an "
            "absolute folder, or name the store with --db or PESGEN_DB") in r.output
    assert not (tmp_path / "out").exists()
    r = _export_in(tmp_path, "--db", tmp_path / "store.sqlite3", "--create-store")
    assert r.exit_code == 0, r.output
    missing = run_cli("runs", "list", "--db", tmp_path / "typo.sqlite3")
    assert missing.exit_code == 7, missing.output
    assert ("else $XDG_DATA_HOME/pesgen/pesgen.sqlite3 (none here: no home folder for the "
            "default state store (HOME is not set") in missing.output, missing.output



def test_a_path_this_locale_cannot_name_a_file_in_is_refused_at_its_line(tmp_path):
    """official_xsd: /srv/dgfip/schémas read under LC_ALL=C PYTHONUTF8=0 (Python names
    files in ASCII): refused as 'no PES_V2/Rev0/PES_Aller.xsd in this folder', a folder
    that is there. Now what stops it, at its line."""
    import os
    import subprocess
    import sys

    [XML] = (ROOT / "templates" / "pes-ormc" / "expected").glob("*.xml")
    path = tmp_path / "config.yaml"
    path.write_text("# the DGFiP package\nofficial_xsd: /srv/dgfip/schémas\n", encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "",
           "PESGEN_CONFIG": str(path)}
    r = subprocess.run([sys.executable, "-c", "from pesgen.cli import main; main()",
                        "validate", str(XML)], env=env,
                       capture_output=True, timeout=60, check=False)
    err = r.stderr.decode("utf-8")
    assert r.returncode == 2, err
    assert err == (f"error: {path}:2: official_xsd: '/srv/dgfip/schémas' holds 'é', which "
                   "this locale's encoding (ascii) cannot give a file's name in: run pesgen "
                   "in a UTF-8 locale (LANG=C.UTF-8, or PYTHONUTF8=1)\n"), err


def test_a_store_url_this_locale_cannot_name_keeps_its_password_masked(tmp_path):
    """db: a PostgreSQL URL with an accent, read under LC_ALL=C PYTHONUTF8=0: refused at
    its line as any such path, its password masked (the refusal printed it whole), and
    an accent inside the password not shown either."""
    import os
    import subprocess
    import sys

    path = tmp_path / "config.yaml"
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "",
           "PESGEN_CONFIG": str(path)}
    env.pop("PESGEN_DB", None)
    for url, said in (
            ("postgresql://pesgen:s3cret@db.example/pésgen",
             "'postgresql://pesgen:***@db.example/pésgen' holds 'é'"),
            ("postgresql://pesgen:sécret@db.example/pesgen?password=s3cret",
             "'postgresql://pesgen:***@db.example/pesgen?password=***' holds a character "
             "of what is masked there")):
        path.write_text(f"db: {url}\n", encoding="utf-8")
        r = subprocess.run([sys.executable, "-c", "from pesgen.cli import main; main()",
                            "runs", "list"], env=env, capture_output=True, timeout=60,
                           check=False)
        err = r.stderr.decode("utf-8")
        assert r.returncode == 2, err
        assert err == (f"error: {path}:1: db: {said}, which this locale's encoding (ascii) "
                       "cannot give a file's name in: run pesgen in a UTF-8 locale "
                       "(LANG=C.UTF-8, or PYTHONUTF8=1)\n"), err
        assert "cret" not in err
