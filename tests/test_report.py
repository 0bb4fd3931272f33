"""Render the report from the committed results with the Quarto-less renderer and check it."""

import json
import re

import pytest

pypdf = pytest.importorskip("pypdf")

from filmgenre import config, render  # noqa: E402

REPORT = config.ROOT / "report" / "report.qmd"


@pytest.fixture(scope="module")
def rendered():
    return render.render_document(REPORT, formats=("html", "pdf"))


def test_every_cell_ran_without_error(rendered):
    for cell in rendered.notebook.cells:
        if cell.cell_type == "code":
            assert all(output.get("output_type") != "error" for output in cell.get("outputs", []))


def test_the_pdf_has_two_or_three_pages(rendered):
    pdf = rendered.outputs["pdf"]
    assert len(pypdf.PdfReader(pdf).pages) in (2, 3)


def test_every_reference_points_at_a_label():
    check = render.check_references(REPORT)
    assert check.references and not check.undefined
    assert {"fig-curves", "fig-per-genre", "fig-confusion", "fig-samples", "tbl-results"} <= set(check.labels)


def test_every_figure_file_is_a_non_empty_image(rendered):
    from PIL import Image

    for name in ["training_curves", "per_genre", "confusion_lstm", "sample_films"]:
        with Image.open(config.paths().figures / f"{name}.png") as image:
            assert image.size[0] > 100 and image.size[1] > 100


def test_numbers_in_the_text_come_from_metrics_json(rendered):
    metrics = json.loads((config.ROOT / "results" / "metrics.json").read_text())["models"]
    pdf = rendered.outputs["pdf"]
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    text = re.sub(r"\s+", " ", text)
    assert f"micro-F1 of {metrics['prior']['test']['f1_micro']:.3f}" in text
    assert f"LSTM {metrics['lstm']['test']['f1_micro']:.3f}" in text
    assert "{python}" not in text and "?@" not in text


def test_the_analysis_renders_to_html_with_every_reference_resolved():
    analysis = config.ROOT / "analysis" / "analysis.qmd"
    assert not render.check_references(analysis).undefined
    result = render.render_document(analysis)
    html = result.outputs["html"].read_text(encoding="utf-8")
    assert "{python}" not in html and "?@" not in html
    assert html.count("<img") >= 6
