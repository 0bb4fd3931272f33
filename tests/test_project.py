"""The Quarto project as the preview reads it: _quarto.yml, the documents to render, where their
outputs go, and the figure format of each target, as Quarto decides them."""

from pathlib import Path

import pytest

from filmgenre.preview import project
from filmgenre.preview.qmd import RenderError

ROOT = Path(__file__).resolve().parents[1]


def test_project_config_and_render_list(tmp_path):
    config = project.load_project(ROOT)
    assert config["project"]["output-dir"] == "_output"
    assert config["execute"]["freeze"] is False
    assert "report/report.qmd" in config["project"]["render"]

    (tmp_path / "_quarto.yml").write_text(
        "project:\n  output-dir: _out\n  render:\n    - a.qmd\n    - sub/*.qmd\n    - '!sub/skip.qmd'\n",
        encoding="utf-8")
    (tmp_path / "sub").mkdir()
    for name in ("a.qmd", "b.qmd", "sub/c.qmd", "sub/skip.qmd"):
        (tmp_path / name).write_text("Hello.\n", encoding="utf-8")
    assert project.project_documents(tmp_path) == [tmp_path / "a.qmd", tmp_path / "sub" / "c.qmd"]
    assert project.default_output_dir(tmp_path / "sub" / "c.qmd") == tmp_path / "_out" / "sub"


def test_figures_are_vectors_in_the_pdf_and_png_in_html_unless_the_format_says_otherwise():
    assert project.figure_format({"format": {"typst": {}}}, "pdf") == "svg"
    assert project.figure_format({"format": {"html": {}}}, "html") == "png"
    assert project.figure_format({"format": {"typst": {"fig-format": "png"}}}, "pdf") == "png"
    assert project.figure_format({"fig-format": "jpeg", "format": {"html": {}}}, "html") == "jpeg"
    with pytest.raises(RenderError, match="fig-format 'gif'"):
        project.figure_format({"fig-format": "gif"}, "pdf")
