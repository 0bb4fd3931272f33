"""Tests of filmgenre.preview.render (and its notebook execution): the Quarto-less fallback renderer
(nbclient + pandoc + typst)."""

import os
import re
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("pypandoc")
pytest.importorskip("typst")
pypdf = pytest.importorskip("pypdf")

from filmgenre.preview import render  # noqa: E402

DEMO = textwrap.dedent(
    '''\
    ---
    title: "Render *demo*"
    author: "Test Author"
    date: 2024-05-01
    format:
      html:
        embed-resources: true
      typst:
        papersize: a4
        margin:
          x: 2.5cm
          y: 2.5cm
        fontsize: 10pt
    execute:
      echo: false
    ---

    # Setup

    ```{python}
    import matplotlib.pyplot as plt
    import pandas as pd
    answer = 6 * 7
    rows = pd.DataFrame({"model": ["cnn", "lstm"], "micro_f1": [0.512, 0.431]})
    ```

    The answer is `{python} answer` and the best model is `{python} rows.loc[rows.micro_f1.idxmax(), "model"]`.
    @fig-second is numbered by position, after @fig-demo; [@tbl-demo] lists the scores.
    Code stays literal: `@fig-demo` and `` `{python} not_evaluated` ``.

    ```{python}
    #| label: fig-demo
    #| fig-cap: "Demo curve"
    fig, ax = plt.subplots(figsize=(5, 2.5))
    ax.plot([0, 1, 2], [0, 1, 4])
    plt.show()
    ```

    ```{python}
    #| label: tbl-demo
    #| tbl-cap: Demo scores
    rows
    ```

    ```{python}
    #| label: fig-second
    #| fig-cap: Second figure
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.bar(["a", "b"], [1, 2])
    plt.show()
    ```
    '''
)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _html_text(html: str) -> str:
    return _norm(re.sub(r"<[^>]+>", "", html.replace("&nbsp;", " ")))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    qmd = folder / "demo.qmd"
    qmd.write_text(DEMO, encoding="utf-8")
    result = render.render_document(qmd, formats=("html", "pdf"), output_dir=folder / "out")
    return result


def test_renders_html_and_pdf(demo):
    html, pdf = demo.outputs["html"], demo.outputs["pdf"]
    assert html == html.parent / "demo.html" and html.is_file()
    assert pdf.name == "demo.pdf" and pdf.is_file()
    text = html.read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') == 2, "both figures are embedded as PNG"
    reader = pypdf.PdfReader(str(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842), "papersize: a4"


def _raster_images(resources) -> int:
    """Raster images a PDF page's resources hold, inside form XObjects too."""
    found = 0
    for xobject in (resources or {}).get("/XObject", {}).values():
        xobject = xobject.get_object()
        found += 1 if xobject.get("/Subtype") == "/Image" else _raster_images(xobject.get("/Resources"))
    return found


def test_the_pdf_draws_figures_as_vectors_as_quartos_typst_does(demo):
    page = pypdf.PdfReader(str(demo.outputs["pdf"])).pages[0]
    assert _raster_images(page.get("/Resources")) == 0, "no figure is a raster image"
    assert "Demo curve" in page.extract_text()


def _kernels_started_here() -> list[str]:
    """ipykernel processes whose parent is this process (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = stat.read_text().rsplit(")", 1)[1].split()[1]
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if parent == str(os.getpid()) and "ipykernel" in command:
            found.append(command)
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_kernel_is_shut_down_once_the_document_is_rendered(demo):
    # Left running, every rendered document keeps a kernel alive until the renderer exits, and
    # its CPU time is missing from the stage's CPU seconds (RUSAGE_CHILDREN counts reaped children).
    assert demo.outputs["html"].is_file() and _kernels_started_here() == []


def test_cross_references_are_numbered_in_order_of_appearance(demo):
    assert demo.labels == ["fig-demo", "tbl-demo", "fig-second"]
    assert demo.numbers == {"fig-demo": 1, "tbl-demo": 1, "fig-second": 2}
    assert set(demo.references) == {"fig-demo", "fig-second", "tbl-demo"}
    html = demo.outputs["html"].read_text(encoding="utf-8")
    text = _html_text(html)
    assert "Figure 2 is numbered by position, after Figure 1; Table 1 lists" in text
    assert '<a href="#fig-demo">' in html and 'id="fig-demo"' in html and 'id="tbl-demo"' in html
    assert "Figure 1: Demo curve" in text and "Figure 2: Second figure" in text
    assert "Table 1: Demo scores" in text
    assert "@fig-second" not in text and "?@" not in text
    pdf_text = _norm(" ".join(p.extract_text() for p in pypdf.PdfReader(str(demo.outputs["pdf"])).pages))
    assert "Figure 2 is numbered by position, after Figure 1" in pdf_text
    assert "Figure 1: Demo curve" in pdf_text and "Table 1: Demo scores" in pdf_text
    assert "cnn" in pdf_text and "0.431" in pdf_text, "the DataFrame became a Typst table"


def test_inline_expressions_are_evaluated(demo):
    text = _html_text(demo.outputs["html"].read_text(encoding="utf-8"))
    assert "The answer is 42 and the best model is cnn." in text
    pdf_text = _norm(pypdf.PdfReader(str(demo.outputs["pdf"])).pages[0].extract_text())
    assert "The answer is 42" in pdf_text
    # code spans stay code: neither evaluated nor resolved
    assert "@fig-demo and `{python} not_evaluated`" in text


def test_echo_false_hides_code(demo):
    html = demo.outputs["html"].read_text(encoding="utf-8")
    assert "plt.subplots" not in html
    roles = [cell.metadata["filmgenre"]["role"] for cell in demo.notebook.cells]
    assert roles == ["setup", "markdown", "code", "inline", "markdown", "code", "code", "code"]
    assert demo.notebook.cells[2].source.startswith("import matplotlib")
    assert all(c.execution_count for c in demo.notebook.cells if c.cell_type == "code"), "executed notebook"


def test_undefined_reference_is_an_error(tmp_path):
    qmd = tmp_path / "bad.qmd"
    qmd.write_text("---\ntitle: x\n---\n\nSee @fig-missing and @tbl-demo.\n\n"
                   "```{python}\n#| label: tbl-demo\n#| tbl-cap: T\nprint(1)\n```\n", encoding="utf-8")
    check = render.check_references(qmd)
    assert check.undefined == ["fig-missing"] and not check.ok
    assert check.labels == ["tbl-demo"]
    with pytest.raises(render.RenderError, match="@fig-missing"):
        render.render_document(qmd, formats="html", output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_raising_cell_fails_with_document_and_cell(tmp_path):
    qmd = tmp_path / "boom.qmd"
    qmd.write_text(textwrap.dedent("""\
        ---
        title: boom
        ---

        ```{python}
        #| label: allowed
        #| error: true
        raise KeyError("tolerated")
        ```

        ```{python}
        #| label: bad-cell
        x = 1
        raise ValueError("boom at cell")
        ```
        """), encoding="utf-8")
    with pytest.raises(render.RenderError) as info:
        render.render_document(qmd, formats="html", output_dir=tmp_path / "out")
    message = str(info.value)
    assert "boom.qmd" in message and "'bad-cell'" in message and "line 11" in message
    assert "ValueError" in message and "boom at cell" in message
    assert info.value.cell == "bad-cell" and info.value.ename == "ValueError"
    assert not (tmp_path / "out" / "boom.html").exists()


def test_a_damaged_results_file_stops_the_render_with_its_one_line_not_a_traceback(tmp_path):
    qmd = tmp_path / "damaged.qmd"
    qmd.write_text("```{python}\nfrom filmgenre import files\n"
                   "raise files.ArtifactError('results/dataset.json: not valid JSON. Restore it.')\n```\n",
                   encoding="utf-8")
    with pytest.raises(render.RenderError) as info:
        render.render_document(qmd, formats="html", output_dir=tmp_path / "out")
    assert str(info.value) == f"{qmd}: code cell at line 1: results/dataset.json: not valid JSON. Restore it."
    assert info.value.ename == "ArtifactError"


def test_error_true_cell_renders_its_traceback(tmp_path):
    qmd = tmp_path / "tolerated.qmd"
    qmd.write_text("```{python}\n#| error: true\nraise KeyError('tolerated')\n```\n\nAfter.\n", encoding="utf-8")
    result = render.render_document(qmd, formats="html", output_dir=tmp_path)
    html = result.outputs["html"].read_text(encoding="utf-8")
    assert "KeyError" in html and "tolerated" in html and "After." in html


def test_the_kernel_starts_without_jupyters_tcp_warning(tmp_path, capfd):
    """Over TCP the kernel warns "Kernel is running over TCP without encryption" on standard error at every
    render: a user reads a warning where nothing is wrong. The preview's kernel talks over IPC sockets."""
    qmd = tmp_path / "quiet.qmd"
    qmd.write_text("```{python}\nprint(6 * 7)\n```\n", encoding="utf-8")
    result = render.render_document(qmd, formats="html", output_dir=tmp_path)
    assert "42" in result.outputs["html"].read_text(encoding="utf-8")
    assert "without encryption" not in capfd.readouterr().err


def test_report_fallback_and_quarto_choice(tmp_path, monkeypatch):
    (tmp_path / "_quarto.yml").write_text("project:\n  output-dir: _output\n  render:\n    - analysis/*.qmd\n",
                                          encoding="utf-8")
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "note.qmd").write_text(
        "---\ntitle: Note\nformat: html\n---\n\n```{python}\nimport os\nhere = os.path.basename(os.getcwd())\n```\n\n"
        "Ran in `{python} here`.\n", encoding="utf-8")
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    with pytest.raises(render.RenderError, match="quarto is not on PATH"):
        render.report(tmp_path, quarto="always")
    paths = render.report(tmp_path, quarto="auto")
    assert paths == [tmp_path / "_output" / "analysis" / "note.html"]
    assert "Ran in analysis." in _html_text(paths[0].read_text(encoding="utf-8")), "cwd = the document's folder"


def test_include_in_header_text_follows_the_preview_header():
    meta = {"title": "t", "format": {"typst": {"include-in-header": [{"text": "#set figure(placement: auto)"}]}}}
    _, _, header = render._pandoc_metadata(meta, "typst", "t")
    assert header.startswith(render._TYPST_HEADER) and header.rstrip().endswith("#set figure(placement: auto)")
    _, _, html_header = render._pandoc_metadata(meta, "html", "t")
    assert "placement" not in html_header, "a typst include stays out of the HTML"
    with pytest.raises(render.RenderError, match="text"):
        render._pandoc_metadata({"format": {"typst": {"include-in-header": "header.typ"}}}, "typst", "t")


def test_page_fill_of_a_page_with_a_few_lines_is_small(demo):
    (fill,) = render.page_fill(demo.outputs["pdf"], margin=2.5 / 2.54 * 72)
    assert 0.2 < fill < 1.0


CITED = textwrap.dedent(
    '''\
    ---
    title: Cited
    bibliography: refs.bib
    ---

    As shown before [@knuth1984; @efron1993], and by @knuth1984 alone; @fig-x is no citation.

    ![A figure](dot.png){#fig-x}

    ## References
    '''
)
BIB = """@book{knuth1984, author = {Knuth, Donald E.}, title = {The {TeX}book}, publisher = {Addison-Wesley}, year = {1984}}
@book{efron1993, author = {Efron, Bradley and Tibshirani, Robert J.}, title = {An Introduction to the Bootstrap},
  publisher = {Chapman \\& Hall}, year = {1993}}
"""


def test_citations_are_checked_against_the_bibliography(tmp_path):
    (tmp_path / "refs.bib").write_text(BIB, encoding="utf-8")
    (tmp_path / "cited.qmd").write_text(CITED, encoding="utf-8")
    check = render.check_references(tmp_path / "cited.qmd")
    assert check.citations == ["knuth1984", "efron1993"] and not check.missing and check.ok
    (tmp_path / "cited.qmd").write_text(CITED.replace("@efron1993", "@efron1994"), encoding="utf-8")
    assert render.check_references(tmp_path / "cited.qmd").missing == ["efron1994"]
    with pytest.raises(render.RenderError, match="efron1994"):
        render.render_document(tmp_path / "cited.qmd", formats="html")


def test_citations_become_author_year_and_a_reference_list(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8), "white").save(tmp_path / "dot.png")
    (tmp_path / "refs.bib").write_text(BIB, encoding="utf-8")
    (tmp_path / "cited.qmd").write_text(CITED, encoding="utf-8")
    result = render.render_document(tmp_path / "cited.qmd", formats=("html", "pdf"), output_dir=tmp_path / "out")
    html = _html_text(result.outputs["html"].read_text(encoding="utf-8"))
    pdf = _norm(" ".join(page.extract_text() for page in pypdf.PdfReader(str(result.outputs["pdf"])).pages))
    for text in (html, pdf):
        assert "(Knuth 1984; Efron and Tibshirani 1993)" in text and "Knuth (1984) alone" in text
        assert "Addison-Wesley" in text and "Tibshirani. 1993" in text  # the reference list
        assert "?" not in text and "Figure 1" in text
