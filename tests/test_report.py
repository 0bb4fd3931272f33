"""Render the report from the committed results with the Quarto-less renderer and check it."""

import json
import re
import subprocess
import sys

import pytest

pypdf = pytest.importorskip("pypdf")

from filmgenre import config, render  # noqa: E402

REPORT = config.ROOT / "report" / "report.qmd"
MARGIN_Y = float(render.parse_qmd(REPORT).meta["format"]["typst"]["margin"]["y"].removesuffix("cm")) / 2.54 * 72


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """A scratch project with the documents and the committed results: rendering writes its
    figures and outputs there (the document kernels find it through FILMGENRE_ROOT), never into
    the working tree."""
    import shutil

    root = tmp_path_factory.mktemp("documents") / "project"
    for folder in ("report", "analysis", "results"):
        shutil.copytree(config.ROOT / folder, root / folder, ignore=shutil.ignore_patterns("figures", "*.ipynb"))
    shutil.copy(config.ROOT / "_quarto.yml", root / "_quarto.yml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", root)
        patch.setenv("FILMGENRE_ROOT", str(root))
        yield root


@pytest.fixture(scope="module")
def rendered(documents):
    return render.render_document(documents / "report" / "report.qmd", formats=("html", "pdf"))


def test_every_cell_ran_without_error(rendered):
    for cell in rendered.notebook.cells:
        if cell.cell_type == "code":
            assert all(output.get("output_type") != "error" for output in cell.get("outputs", []))


def test_the_pdf_has_two_or_three_full_pages(rendered):
    fill = render.page_fill(rendered.outputs["pdf"], MARGIN_Y)
    assert len(fill) in (2, 3)
    assert min(fill) >= 0.9, f"a page is more than a tenth empty: {[round(f, 3) for f in fill]}"


def test_the_title_block_names_no_placeholder_author(rendered):
    first = pypdf.PdfReader(rendered.outputs["pdf"]).pages[0].extract_text().splitlines()
    assert "filmgenre" not in first[:3]


def test_every_reference_points_at_a_label():
    check = render.check_references(REPORT)
    assert check.references and not check.undefined
    assert {"fig-curves", "fig-per-genre", "fig-confusion", "fig-samples", "tbl-results", "tbl-ablation",
            "tbl-words"} <= set(check.labels)


def test_every_figure_file_is_a_non_empty_image_and_pdf(rendered):
    from PIL import Image

    for name in ["training_curves", "per_genre", "confusion_lstm", "sample_films"]:
        with Image.open(config.paths().figures / f"{name}.png") as image:
            assert image.size[0] > 100 and image.size[1] > 100
        assert (config.paths().figures / f"{name}.pdf").stat().st_size > 1000


def test_numbers_in_the_text_come_from_metrics_json(rendered):
    metrics = json.loads((config.ROOT / "results" / "metrics.json").read_text())["models"]
    pdf = rendered.outputs["pdf"]
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    text = re.sub(r"\s+", " ", text)
    assert f"micro-F1 of {metrics['prior']['test']['f1_micro']:.3f}" in text
    assert f"LSTM {metrics['lstm']['test']['f1_micro']:.3f}" in text
    assert "{python}" not in text and "?@" not in text


def test_the_analysis_renders_to_html_with_every_reference_resolved(documents):
    analysis = documents / "analysis" / "analysis.qmd"
    assert not render.check_references(analysis).undefined
    result = render.render_document(analysis)
    html = result.outputs["html"].read_text(encoding="utf-8")
    assert "{python}" not in html and "?@" not in html
    assert html.count("<img") >= 9
    assert '<nav id="TOC"' in html and "<details>" in html, "a table of contents beside the text, long tables folded"
    assert not re.search(r">\s*-?\d+\.\d{4,}\s*<", html), "every number in a table to at most 3 decimals"


def test_the_reports_code_runs_without_loading_tensorflow(documents):
    """The documents read results/ only, so rendering them never pays TensorFlow's start-up
    (several CPU seconds per document kernel): every code cell of the report, and the modules
    the analysis's tables and figures import, run in a fresh interpreter without it."""
    script = (
        "import sys, matplotlib\n"
        "matplotlib.use('Agg')\n"
        "from filmgenre import render, explain, seeds, fusion, uncertainty\n"
        f"document = render.parse_qmd({str(documents / 'report' / 'report.qmd')!r})\n"
        "namespace = {}\n"
        "for cell in document.cells:\n"
        "    if cell.kind == 'code':\n"
        "        exec(cell.code, namespace)\n"
        "print(sorted(module for module in ('tensorflow', 'keras') if module in sys.modules))\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], cwd=documents / "report", capture_output=True,
                              text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip().splitlines()[-1] == "[]"
