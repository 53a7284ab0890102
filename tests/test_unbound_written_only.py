"""A street or a city (the debtor's, the joint debtor's: coverage.WRITTEN_ONLY) a mapping
leaves out: let through, and said, when no template of its format writes it; refused,
naming the section's line, when one does (rule mapping.unbound)."""

from __future__ import annotations

import json
import re

from pesgen.errors import ExitCode

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli
from .mapping_support import mapping_copy

JVS = MAPPINGS / "villeneuve-sur-loing-jvs.yaml"
# jvs-millesime writes no joint debtor: a joint_payer section binding its name, kind
# and postal code (the bindings the schema still requires) but no street nor city
JOINT = ("  payment:\n    # the export's",
         "  joint_payer:\n    kind: payer.kind\n    civility: payer.title\n"
         "    name: payer.last_name\n    first_name: payer.first_name\n"
         "    postal_code: payer.address.postal_code\n  payment:\n    # the export's")


def test_a_joint_street_and_city_jvs_never_writes_may_be_left_out(tmp_path, monkeypatch):
    """The shipped JVS mapping given a joint debtor without street or city: no error,
    check-mapping says they are not bound and not written; preview renders its
    invoices (the joint debtor built with them empty)."""
    import pesgen.preview

    checked = []
    check_title = pesgen.preview.check_title

    def spy(title, ctx):
        checked.append(title)
        return check_title(title, ctx)

    monkeypatch.setattr(pesgen.preview, "check_title", spy)
    # without a joint_payer section, there is no joint debtor's street to leave out
    r = run_cli("check-mapping", JVS, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["mappings"][0]["not_bound"] == []
    mapping, _ = mapping_copy(tmp_path, JVS, JOINT)
    r = run_cli("check-mapping", mapping)
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output.replace("warning: bindings.joint_payer", ""), r.output
    assert ("Not bound, and written by no template of format jvs-millesime: "
            "joint_payer.street, joint_payer.city (its files do not carry them)"
            in " ".join(r.output.split()))
    r = run_cli("check-mapping", mapping, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["mappings"][0]["not_bound"] == ["joint_payer.street",
                                                                "joint_payer.city"]
    r = run_cli("preview", "--mapping", mapping, "--input", EXAMPLES / "school-export.json",
                "--date", RUN_DATE, "--limit", "2")
    assert r.exit_code == 0, r.output
    joint = [t.joint_debtor for t in checked]
    assert len(joint) == 2 and all(
        d is not None and (d.address.street, d.address.city) == ("", "") for d in joint)


def test_a_street_a_template_writes_stays_required(tmp_path):
    """The shipped JVS mapping without address.street (or address.city), which its
    template writes: refused by check-mapping and preview (exit 3), naming
    bindings.address's line and the field the template reads."""
    for key, read in (("street", "t.debtor.address.street"),
                      ("city", "t.debtor.address.city")):
        old = {"street": "    street: payer.address.street\n",
               "city": "    city: payer.address.city\n"}[key]
        mapping, _ = mapping_copy(tmp_path / key, JVS, (old, ""))
        line = next(n for n, text in enumerate(
            mapping.read_text(encoding="utf-8").splitlines(), 1) if text == "  address:")
        said = (f"bindings.address does not bind {key}, and a template of format "
                f"jvs-millesime reads {read}: bind it (a mapping may leave it out only for "
                f"a format that writes it in none of its files) [mapping {mapping}:{line}: "
                "bindings.address] (rule mapping.unbound)")
        for args in (("check-mapping", mapping),
                     ("preview", "--mapping", mapping, "--input",
                      EXAMPLES / "school-export.json", "--date", RUN_DATE)):
            r = run_cli(*args)
            assert r.exit_code == ExitCode.MAPPING, r.output
            assert said in " ".join(r.output.split()), r.output
            assert re.search(r"invalid mapping", r.output), r.output


def test_a_joint_street_a_template_writes_stays_required(tmp_path):
    """e.magnus writes the joint debtor's street (WTAMC001_TSOL): a joint_payer section
    without it is refused, naming bindings.joint_payer's line."""
    mapping, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-emagnus.yaml",
                              ("    street: joint_payer.address.street\n", ""))
    r = run_cli("check-mapping", mapping)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert ("bindings.joint_payer does not bind street, and a template of format "
            "bl-emagnus reads t.joint_debtor.address.street" in " ".join(r.output.split()))


def test_a_street_left_out_is_refused_when_the_templates_fail_on_the_samples(tmp_path):
    """Whether a template writes the city is not known when the templates fail on
    check-mapping's sample titles: export (its dry run) refuses the mapping without it,
    saying so, before reading an invoice."""
    from .test_unwritten_notes import _unsampled_ormc

    mapping, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
                              ("    city: payer.address.city\n", ""))
    r = run_cli("export", "--dry-run", "-m", mapping, "-i", EXAMPLES / "school-export.json",
                "--date", RUN_DATE, "--formats-dir", _unsampled_ormc(tmp_path))
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert ("bindings.address does not bind city, and the templates of format pes-ormc "
            "failed on the sample titles, so whether one writes it is not known: bind it"
            in " ".join(r.output.split())), r.output
    assert "(rule mapping.unbound)" in r.output


def test_a_foreign_address_note_names_no_city_the_format_does_not_write(tmp_path):
    """A draft CSV package writing no address (new-format's template), the mapping
    leaving address.city out as new-mapping writes it (coverage.WRITTEN_ONLY), with
    foreign_address: postal_code_in_city: the run summary's note on the Belgian invoice
    said "address.city '1040 …'", a city no file holds (the model's city was empty, the
    foreign postal code written nowhere). It says no city is written, why, and that the
    postal code is in no file; the city bound but read by no template, the same, the
    reason being the templates'."""
    from .test_layout_named_bindings import COLLECTIVITY, _export

    formats = tmp_path / "formats"
    assert run_cli("new-format", "acme-compta", "--kind", "csv", "--dir", formats
                   ).exit_code == 0
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "Commune d'Acme", "--format", "acme-compta", "--formats-dir",
                formats, "--input", EXAMPLES / "school-export.csv", "--out", out)
    assert r.exit_code == 0, r.output
    mapping, _ = mapping_copy(tmp_path, out, *COLLECTIVITY)
    text = mapping.read_text(encoding="utf-8")
    assert "\n    # city: city " in text and "foreign_address: postal_code_in_city" in text
    source = _export(tmp_path)

    def note() -> str:
        r = run_cli("export", "--dry-run", "-m", mapping, "-i", source, "--date", RUN_DATE,
                    "--formats-dir", formats, "--create-store", "--db",
                    f"sqlite:///{tmp_path / 'store.sqlite3'}")
        assert r.exit_code == 0, r.output
        [said] = [ln for ln in r.output.splitlines() if "FA-2026-00105: foreign_address" in ln]
        return said

    said = note()
    # the template writes no address at all: no CP 99999 nor country code named either
    assert said.endswith("FA-2026-00105: foreign_address: BE: no template of format "
                         "acme-compta writes address.postal_code or address.country_code; "
                         "no city written (bindings.address.city is not bound): the foreign "
                         "postal code '1040' is in no file"), said
    assert "address.city '" not in said, said
    mapping.write_text(text.replace("\n    # city: city ", "\n    city: city "),
                       encoding="utf-8")
    said = note()
    assert said.endswith("BE: no template of format acme-compta writes address.postal_code, "
                         "address.city or address.country_code: the foreign postal code "
                         "'1040' is in no file"), said


def test_a_joint_debtor_abroad_without_a_city_bound_is_built(tmp_path, monkeypatch):
    """A joint debtor living abroad (the example's Belgian family), its city left out as
    jvs-millesime writes none: its address is built abroad (CP 99999, its INSEE country
    code), the city empty, not refused for the city the postal code would go before."""
    import pesgen.preview

    checked = []
    check_title = pesgen.preview.check_title

    def spy(title, ctx):
        checked.append(title)
        return check_title(title, ctx)

    monkeypatch.setattr(pesgen.preview, "check_title", spy)
    joint = (JOINT[0], JOINT[1].replace(
        "    postal_code: payer.address.postal_code\n",
        "    postal_code: payer.address.postal_code\n    country: payer.address.country\n"))
    mapping, _ = mapping_copy(tmp_path, JVS, joint)
    r = run_cli("preview", "--mapping", mapping, "--input", EXAMPLES / "school-export.json",
                "--date", RUN_DATE, "--limit", "10")
    assert r.exit_code == 0, r.output
    abroad = [t.joint_debtor.address for t in checked
              if t.joint_debtor is not None and t.joint_debtor.address.postal_code == "99999"]
    assert [(a.city, a.street) for a in abroad] == [("", "")], abroad
