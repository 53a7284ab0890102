"""What a bundle's template environment makes of a template's text: a block tag on a
line of its own writes nothing there (neither its indent nor its line break), the file's
last line break is kept; and a template is read once (edited while a run renders, the
run goes on with what it read)."""

from __future__ import annotations

import os

from pesgen._jinja import template_environment


def test_a_block_tag_on_its_own_line_writes_no_line(tmp_path):
    (tmp_path / "t.csv.j2").write_text(
        "A\n"
        "  {% for x in xs %}\n"
        "    {% if x %}\n"
        "{{ x }};\n"
        "    {% endif %}\n"
        "  {% endfor %}\n"
        "Z\n", encoding="utf-8")
    text = template_environment(tmp_path).get_template("t.csv.j2").render(xs=["1", "", "2"])
    assert text == "A\n1;\n2;\nZ\n"


def test_a_template_edited_after_it_was_read_renders_as_it_was_read(tmp_path):
    path = tmp_path / "t.csv.j2"
    path.write_text("old {{ x }}\n", encoding="utf-8")
    env = template_environment(tmp_path)
    assert env.get_template("t.csv.j2").render(x=1) == "old 1\n"
    path.write_text("new {{ x }}\n", encoding="utf-8")
    later = os.stat(path).st_mtime + 10
    os.utime(path, (later, later))  # seen as changed, whatever the clock's resolution
    assert env.get_template("t.csv.j2").render(x=2) == "old 2\n"
