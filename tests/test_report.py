"""Render the report from the committed results with the Quarto-less renderer and check it."""

import json
import re
import subprocess

import pytest

pypdf = pytest.importorskip("pypdf")

from filmgenre import config, explain_tables, seed_tables, tables  # noqa: E402
from filmgenre.preview import qmd, render  # noqa: E402

REPORT = config.ROOT / "report" / "report.qmd"
MARGIN_Y = float(qmd.parse_qmd(REPORT).meta["format"]["typst"]["margin"]["y"].removesuffix("cm")) / 2.54 * 72


LOADED = "import sys\nprint(sorted(module for module in ('tensorflow', 'keras') if module in sys.modules))"


def with_a_last_cell_printing_what_was_loaded(build_notebook):
    """``render``'s notebook builder, with a last cell (not in the document: nothing renders it) that
    prints which of TensorFlow and Keras the document's kernel has loaded by its end."""
    import nbformat

    def build(*args, **kwargs):
        nb = build_notebook(*args, **kwargs)
        nb.cells.append(nbformat.v4.new_code_cell(LOADED, metadata={"filmgenre": {"role": "check"}}))
        return nb

    return build


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """A scratch project with the documents and the committed results: rendering writes its
    figures and outputs there (the document kernels find it through FILMGENRE_ROOT), never into
    the working tree. Each kernel ends by printing whether it loaded TensorFlow."""
    import shutil

    root = tmp_path_factory.mktemp("documents") / "project"
    for folder in ("report", "analysis", "results"):
        shutil.copytree(config.ROOT / folder, root / folder, ignore=shutil.ignore_patterns("figures", "*.ipynb"))
    shutil.copy(config.ROOT / "_quarto.yml", root / "_quarto.yml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", root)
        patch.setenv("FILMGENRE_ROOT", str(root))
        patch.setattr(render, "build_notebook", with_a_last_cell_printing_what_was_loaded(render.build_notebook))
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


def test_every_reference_points_at_a_label_and_every_citation_at_the_bibliography():
    check = qmd.check_references(REPORT)
    assert check.references and not check.undefined
    assert {"fig-curves", "fig-false-positives", "fig-modality", "tbl-results", "tbl-ablation"} <= set(check.labels)
    assert len(check.citations) >= 10 and not check.missing


def test_the_report_has_the_sections_of_a_paper(rendered):
    text = _text(rendered)
    headings = ["Question and data", "Method", "Results", "Conclusion", "Limitations", "References"]
    positions = [text.find(heading) for heading in headings]
    assert -1 not in positions and positions == sorted(positions), positions


def test_citations_resolve_into_the_reference_list(rendered):
    text = _text(rendered)
    assert not re.search(r"\b[a-z]+\d{4}[a-z]*\?", text), "citeproc marks a missing key with '?'"
    references = text[text.rfind("References"):]
    for author, year in [("Arevalo", "2017"), ("Efron", "1993"), ("McNemar", "1947"), ("Sechidis", "2011")]:
        assert re.search(rf"\({author}( et al\.| and \w+)? {year}", text), f"{author} {year} not cited in the text"
        assert author in references and year in references
    html = rendered.outputs["html"].read_text(encoding="utf-8")
    assert 'id="refs"' in html and "Arevalo" in html


def test_every_figure_file_is_a_non_empty_image_and_pdf(rendered):
    from PIL import Image

    for name in ["training_loss", "false_positives_lstm", "modality_f1"]:
        with Image.open(config.paths().figures / f"{name}.png") as image:
            assert image.size[0] > 100 and image.size[1] > 100
        assert (config.paths().figures / f"{name}.pdf").stat().st_size > 1000


def _text(rendered) -> str:
    pages = pypdf.PdfReader(rendered.outputs["pdf"]).pages
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pages))
    return text.replace("\u2212", "-").replace("\u2019", "'")  # one minus sign, typographic apostrophes


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-"))


def test_prose_numbers_agree_with_the_tables_they_describe(rendered):
    """Each number the prose states about a model must be the one its table shows (to rounding)."""
    text = _text(rendered)
    assert "{python}" not in text and "?@" not in text
    results = tables.results_with_intervals().set_index("model")

    def cell(model, column):  # the score of a table cell, without its interval
        return _number(results.loc[model, column].split("\u00a0")[0])

    # the CNN's gain over the prior, and the fusion's over its text member: differences of Table 1's cells
    gain = re.search(r"micro-F1 is above the prior's by (?:only )?([+-]\d\.\d{3})", text)
    assert gain and abs(_number(gain[1]) - (cell("cnn", "micro-F1") - cell("prior", "micro-F1"))) <= 0.0015
    text_member = tables.metrics()["models"]["fusion"]["fusion"]["text"]
    fusion = re.search(r"gains ([+-]\d\.\d{3}) \[[^]]*\] micro-F1,", text)
    assert fusion and abs(_number(fusion[1]) - (cell("fusion", "micro-F1") - cell(text_member, "micro-F1"))) <= 0.0015
    # the fixed-threshold scores, and the fusion's scores in the comparison with published work
    fixed = re.search(r"both networks score below their tuned rule \((\d\.\d{3}) and (\d\.\d{3}), against "
                      r"(\d\.\d{3}) for the prior", text)
    assert fixed and [_number(v) for v in fixed.groups()] == [
        _number(results.loc[m, "micro-F1 at 0.5"]) for m in ("cnn", "lstm", "prior")]
    published = re.search(r"our fusion's (\d\.\d{3}) micro-F1 and (\d\.\d{3}) macro-F1", text)
    assert published and (_number(published[1]), _number(published[2])) == (
        cell("fusion", "micro-F1"), cell("fusion", "macro-F1"))
    # the ablation: the CNN's margins over the prior and their intervals, as Table 2 shows them
    ablation = explain_tables.ablation_with_intervals()
    cnn = ablation[ablation["model"] == "cnn"].iloc[0]  # the micro-F1 group comes first
    shown = re.search(r"the CNN's micro-F1 margin is ([+-]\d\.\d{3} \[[^]]*\]) on grayscale and "
                      r"([+-]\d\.\d{3} \[[^]]*\]) on shuffled posters", text)
    assert shown and [shown[1], shown[2]] == [
        cnn[kind].replace("\u00a0", " ").replace("\u2212", "-") for kind in ("grayscale", "shuffled")]
    # the macro rule: the macro-F1 lead it narrows starts from Table 1's cells
    poster_member = tables.metrics()["models"]["fusion"]["fusion"]["poster"]
    narrows = re.search(r"lead over \S+ narrows from ([+-]\d\.\d{3})", text)
    assert narrows and abs(_number(narrows[1]) - (cell(text_member, "macro-F1") - cell(poster_member, "macro-F1"))) <= 0.0015
    # genre names: the abstract quotes the masked lead the Results derive, and the share bound follows from both leads
    leads = re.search(r"goes from ([+-]\d\.\d{3}) \[[^]]*\] to ([+-]\d\.\d{3}) \[[^]]*\] micro-F1", text)
    abstract = re.search(r"and by ([+-]\d\.\d{3}) \[[^]]*\] with genre names masked", text)
    assert leads and abstract and abstract[1] == leads[2]
    for found, overviews in zip(leads.groups(), ("original", "masked")):
        assert _number(found) == round(explain_tables.leakage_change(text_member, poster_member, overviews=overviews)["difference"], 3)
    bound = re.search(r"about (\d+)% of the text's lead", text)
    assert bound and abs(int(bound[1]) - 100 * (1 - _number(leads[2]) / _number(leads[1]))) <= 1
    # the seed gap of the fusion's members is the difference of Table 1's seed columns, and the late
    # fusion's gain over seeds, and the share of the lead genre names bound, follow from results/

    def seed_mean(model):  # the mean of the table's seed column
        return _number(results.loc[model, "micro-F1, seeds"].split("\u00b1")[0].strip("\u00a0 "))

    means = re.search(rf"{text_member} beats {poster_member} in micro-F1 by ([+-]\d\.\d{{3}}) between seed means", text)
    assert means and abs(_number(means[1]) - (seed_mean(text_member) - seed_mean(poster_member))) <= 0.0015
    gain = seed_tables.late_fusion_gain()
    over_seeds = re.search(r"alone \(paired intervals, reported runs; over its (\d) runs ([+-]\d\.\d{3}) ±", text)
    assert gain is None or (over_seeds and (int(over_seeds[1]), _number(over_seeds[2])) == (gain["runs"], round(gain["mean"], 3)))
    most = re.search(r"at most (\d+)% at the end of the change's interval", text)
    change = explain_tables.leakage_change(text_member)["interval"][0]
    assert most and abs(int(most[1]) + 100 * change / _number(leads[1])) <= 1


def test_a_rank_beside_a_macro_claim_is_the_rank_by_macro_f1(rendered):
    """The gmu's macro-F1 loss to the late fusion comes with where its reported run ranks among its
    seeds: by macro-F1, which can differ from its micro-F1 rank (best of 4 by one, worst by the other)."""
    text = _text(rendered)
    said = re.search(r"the gmu by [+-]\d\.\d{3} \[[^]]*\] in macro-F1 \(over all genres with a test film: "
                     r"([+-]\d\.\d{3}) between seed means.*?its reported run is the (\w+) of its (\d) in macro-F1", text)
    rank, runs = seed_tables.seed_rank("gmu", "f1_macro")
    gap = seed_tables.seed_gap("gmu", "fusion", "f1_macro")["mean"]
    assert said and _number(said[1]) == round(gap, 3)
    assert (said[2], int(said[3])) == ({1: "best", runs: "worst"}.get(rank, said[2]), runs)


def test_the_compute_paragraph_quotes_the_bench(rendered):
    """Each speed figure of the Compute paragraph is results/bench.json's, as the paragraph rounds it."""
    text, bench = _text(rendered), tables.bench()
    said = re.search(r"feeds images (\d+) times as fast as decoding every JPEG each epoch, and a CNN epoch "
                     r"fed by it takes (\d\.\d\d) times as long .*? makes an LSTM epoch (\d\.\d) times faster .*?"
                     r"\((\d+) and (\d+) CPU s for all films\)", text)
    assert said, "the Compute paragraph's figures"
    assert [float(v) for v in said.groups()] == [
        round(bench["poster_pipeline"]["cached_vs_course"]), round(bench["input_overhead"]["ratio"], 2),
        round(bench["lstm"]["fixed_vs_bucketed"], 1), round(bench["encode"]["effnet_lite0"]["cpu_seconds"]),
        round(bench["encode"]["minilm_l6"]["cpu_seconds"])]
    epochs = {row["variant"]: row["median"] for row in bench["xla"]["rows"] if row["model"] == "cnn"}
    xla = re.search(r"XLA multiplied an epoch's CPU time by (\d+\.\d)", text)
    assert xla and float(xla[1]) == round(epochs["xla"] / epochs["as_trained"], 1)


def test_the_report_uses_one_minus_sign_and_one_percent_style(rendered):
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(rendered.outputs["pdf"]).pages)
    assert not re.search(r"(?<![\w-])-\d", text), "a hyphen used as a minus sign"
    assert not re.search(r"\d %", text), "'95 %': the report writes '95%'"


@pytest.fixture(scope="module")
def analysis(documents):
    document = documents / "analysis" / "analysis.qmd"
    assert not qmd.check_references(document).undefined
    return render.render_document(document)


def test_the_analysis_renders_to_html_with_every_reference_resolved(analysis):
    html = analysis.outputs["html"].read_text(encoding="utf-8")
    assert "{python}" not in html and "?@" not in html
    assert html.count("<img") >= 9
    assert '<nav id="TOC"' in html and "<details>" in html, "a table of contents beside the text, long tables folded"
    assert not re.search(r">\s*-?\d+\.\d{4,}\s*<", html), "every number in a table to at most 3 decimals"
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html, flags=re.S)
    assert cells and not [c for c in cells if re.fullmatch(r"\s*(True|False|NaN|nan|\.\.\.|…)\s*", c)]
    assert not [c for c in cells if re.search(r"\d[eE][+-]\d", c)], "no scientific notation"
    assert not re.search(r"<thead>\s*<tr[^>]*>(?:\s*<th[^>]*>\s*</th>)+\s*</tr>", html), "no empty header row"
    before = html[:html.find("<table")]
    assert before.count("<details") == before.count("</details>"), "the first table is not folded away"
    captions = re.findall(r"<figcaption\b[^>]*>(.*?)</figcaption>", html, re.S)
    links = [re.search(r'href="#(source-[^"]+)"', caption) for caption in captions]
    assert captions and all(links) and all(f'id="{link[1]}"' in html for link in links), \
        "each figure's caption links to its entry in 'Figures and where they come from'"


_FIT_SCRIPT = """<style>td { overflow-wrap: normal !important; word-break: normal !important; }</style>
<script>
window.addEventListener('load', () => {
  const found = [...document.querySelectorAll('table')].map((table, i) => {
    const figure = table.closest('figure');
    const caption = table.caption || (figure && figure.querySelector('figcaption'));
    const room = table.parentElement.getBoundingClientRect();
    const cells = [...table.querySelectorAll('td, th')];
    const right = Math.max(table.getBoundingClientRect().right, ...cells.map(c => c.getBoundingClientRect().right));
    const clipped = cells.filter(c => {
      const text = document.createRange();
      text.selectNodeContents(c);
      const box = c.getBoundingClientRect(), content = text.getBoundingClientRect();
      return content.width > 0 && (content.right > box.right + 1 || content.left < box.left - 1);
    }).length;
    return {table: caption ? caption.textContent.trim().slice(0, 60) : 'table ' + (i + 1), clipped,
            width: Math.round(right - room.left), room: Math.round(room.width)};
  });
  document.body.setAttribute('data-fit', JSON.stringify(found));
});
</script>"""


def _tables_too_wide(html: str, width: int, folder) -> list[dict]:
    """The tables of ``html`` wider than their column, or with a clipped cell, in headless Chromium
    at a window ``width`` px wide: a script measures them once the page has loaded. Data cells may
    not break inside a word (a number split over two lines is not legible); headers may."""
    import html as entities
    import shutil

    page = folder / f"fit-{width}.html"
    page.write_text(html.replace("</body>", _FIT_SCRIPT + "</body>"), encoding="utf-8")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    finished = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                               f"--window-size={width},1000", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                              capture_output=True, text=True, timeout=180)
    found = re.search(r'data-fit="([^"]*)"', finished.stdout)
    assert found, finished.stderr[-1000:]
    return [t for t in json.loads(entities.unescape(found[1])) if t["width"] > t["room"] + 1 or t["clipped"]]


@pytest.mark.skipif(not any(__import__("shutil").which(b) for b in ("chromium", "chromium-browser")),
                    reason="no chromium: `apt-get install chromium` (CI installs it)")
def test_every_table_of_the_analysis_fits_its_column_at_1400_and_800_px(analysis, tmp_path):
    wide = "<table><tr>" + "".join(f"<td>{'x' * 40}\u00a0{'y' * 40}</td>" for _ in range(12)) + "</tr></table>"
    control = analysis.outputs["html"].read_text(encoding="utf-8").replace("</body>", f"<div>{wide}</div></body>")
    for width in (1400, 800):
        assert _tables_too_wide(analysis.outputs["html"].read_text(encoding="utf-8"), width, tmp_path) == [], width
    assert _tables_too_wide(control, 800, tmp_path), "the check finds a table wider than the column"


def test_the_report_argues_from_the_reported_runs_while_a_fusion_member_has_no_other_seeds(documents, tmp_path,
                                                                                           monkeypatch):
    """A model just added to the registry can become a fusion member before `filmgenre seeds` ran for it
    (so `make all` must not stop at the report): every code cell and inline expression of the report
    still runs, and the seed sentences fall back to the reported runs, saying which model has no seeds."""
    import shutil

    root = tmp_path / "project"
    for folder in ("report", "results"):
        shutil.copytree(documents / folder, root / folder, ignore=shutil.ignore_patterns("figures", "*.ipynb"))
    seeds = json.loads((root / "results" / "seeds.json").read_text())
    text = json.loads((root / "results" / "metrics.json").read_text())["models"]["fusion"]["fusion"]["text"]
    del seeds["models"][text]
    (root / "results" / "seeds.json").write_text(json.dumps(seeds))
    monkeypatch.setattr(config, "ROOT", root)
    document = qmd.parse_qmd(root / "report" / "report.qmd")
    namespace = {}
    for cell in document.cells:
        if cell.kind == "code" and not (cell.label or "").startswith("fig-"):  # figures: drawn by the full render
            exec(cell.code, namespace)
    said = [str(eval(expression, namespace)) for cell in document.cells if cell.kind == "markdown"
            for expression in qmd.inline_expressions(cell.source)]
    assert said and any(f"no other seeds of `{text}` yet" in value for value in said)
    assert not any("between seed means" in value and text in value for value in said)


def test_rendering_the_documents_never_loads_tensorflow(rendered, analysis):
    """The documents read results/ only, so rendering them never pays TensorFlow's start-up
    (several CPU seconds per document kernel): by its last cell, neither the report's kernel nor
    the analysis's (with the modules its tables and figures import) has loaded it."""
    for result in (rendered, analysis):
        printed = [output["text"] for output in result.notebook.cells[-1].outputs if output.get("name") == "stdout"]
        assert result.notebook.cells[-1].source == LOADED and printed == ["[]\n"], result.source
