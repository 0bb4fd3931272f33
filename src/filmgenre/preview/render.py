"""Render the project's Quarto documents (``report/report.qmd``, ``analysis/*.qmd``).

With ``quarto`` on ``PATH`` this simply runs ``quarto render`` from the project root.
Quarto cannot be installed on every machine, so there is a fallback, a *preview of the
Quarto output* built from real libraries only:

1. each ``.qmd`` becomes an nbformat notebook: markdown cells, ```` ```{python} ```` cells
   (``#|`` options are YAML, as in Quarto), and hidden cells that evaluate the inline
   expressions `` `{python} expr` `` after the code cells that precede them;
2. nbclient executes it in a ``python3`` kernel whose working directory is the document's
   folder, as Quarto does;
3. the outputs become pandoc markdown: figures of cells labelled ``fig-*`` (with ``fig-cap``)
   and tables of cells labelled ``tbl-*`` (with ``tbl-cap``) get their id and a numbered
   caption; ``@fig-x`` / ``@tbl-x`` in the prose become "Figure N" / "Table N" links,
   numbered in order of appearance per kind, as Quarto numbers them;
4. pandoc (``pypandoc``, binary from ``pypandoc-binary``) writes self-contained HTML and
   Typst, and the ``typst`` wheel compiles the Typst to PDF.

Outputs land where Quarto would put them: ``<root>/<output-dir>/<folder>/<name>.{html,pdf}``
with ``output-dir`` read from ``_quarto.yml`` (``_output``).

Citations (``[@key]``, ``@key``) are rendered by pandoc's citeproc from the document's
``bibliography`` (a path relative to the document), as Quarto renders them; a key missing from
it is an error before anything runs, as an undefined cross reference is.

Not supported by the fallback (they render as plain pandoc would, or are ignored): Quarto
shortcodes, callouts and layout classes, sub-figures, ``@sec-``/``@eq-`` references,
``csl`` styles (pandoc's default, Chicago author-date, is used), ``freeze`` and caching
(documents always execute).
"""

from __future__ import annotations

import ast
import base64
import datetime as _dt
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from filmgenre import figure_index

from filmgenre.files import atomic_path
from filmgenre.preview import project
from filmgenre.preview.notebook import build_notebook, cell_options, execute_notebook
from filmgenre.preview.qmd import (XREF_KINDS, ANSI_ESCAPE, QmdCell, QmdDocument, RenderError, bibliography_path,
                                  caption_prefix, check_references, label_kind, number_labels, parse_qmd,
                                  prose_markdown)

#: pandoc reader: Quarto-flavoured markdown minus citations, so that ``@x`` stays literal text
#: (cross references are resolved before pandoc sees the text); with citations for a document
#: that has a bibliography.
PANDOC_MARKDOWN = "markdown-citations"
PANDOC_MARKDOWN_CITED = "markdown"
_IMAGE_EXTENSIONS = {"image/png": ".png", "image/svg+xml": ".svg", "image/jpeg": ".jpg"}


@dataclass
class RenderResult:
    """What rendering one document produced (``notebook`` is None when quarto rendered it)."""

    source: Path
    outputs: dict[str, Path]  # "html" / "pdf" -> file
    notebook: Any = None
    labels: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- outputs -> markdown


def _fenced(text: str, attr: str = "") -> str:
    """A fenced block longer than any backtick run in ``text``, so that the text cannot close it."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{attr}\n{text.rstrip()}\n{fence}"


def _pandoc_text(text: str, to: str, reader: str = PANDOC_MARKDOWN) -> str:
    import pypandoc

    return pypandoc.convert_text(text, to, format=reader).strip()


def _code_markdown(cell: QmdCell, nb_cell, options: dict, numbers: dict[str, int], media: Path,
                   target: str, warnings: list[str], figure_mime: str = "image/png") -> str:
    """A code cell as Quarto shows it: echoed code, then its outputs, the last figure and the
    first table captioned (and numbered when the cell's label is ``fig-``/``tbl-``)."""
    if options.get("include") is False:
        return ""
    parts = [_fenced(cell.code, "{.python}")] if options.get("echo") is not False and cell.code.strip() else []
    if nb_cell is None or options.get("output") is False:
        return "\n\n".join(parts)
    asis = options.get("output") == "asis"
    label = cell.label
    kind = label_kind(label) if label and label_kind(label) in XREF_KINDS else None

    def caption(key: str) -> str | None:
        text = prose_markdown(str(options.get(key) or ""), numbers)
        return caption_prefix(label, numbers) + text if kind == key[:3] else text or None

    images = [i for i, out in enumerate(nb_cell.outputs) if any(m in out.get("data", {}) for m in _IMAGE_EXTENSIONS)]
    anchored = table_done = False
    for i, out in enumerate(nb_cell.outputs):
        data = out.get("data", {})
        mime = figure_mime if figure_mime in data else next((m for m in _IMAGE_EXTENSIONS if m in data), None)
        html = data.get("text/html", "")
        if out.output_type == "stream":
            text = ANSI_ESCAPE.sub("", out.text)
            if text.strip() and not (out.name == "stderr" and options.get("warning") is False):
                parts.append(text if asis and out.name == "stdout" else _fenced(text))
        elif out.output_type == "error":
            parts.append(_fenced(ANSI_ESCAPE.sub("", "\n".join(out.traceback))))
        elif mime:
            path = media / f"cell{cell.line}-{i}{_IMAGE_EXTENSIONS[mime]}"
            path.write_bytes(data[mime].encode() if mime == "image/svg+xml" else base64.b64decode(data[mime]))
            last = i == images[-1]
            cap, attr = (caption("fig-cap") if last else None) or "", f"{{#{label}}}" if last and kind == "fig" else ""
            anchored |= bool(attr)
            parts.append(f"![{cap}]({path.as_posix()}){attr}")
        elif "text/markdown" in data:
            text = data["text/markdown"]
            if kind == "tbl" and not table_done and re.search(r"^\s*\|.*\|\s*$", text, re.M):
                text = f"{text.rstrip()}\n\n: {caption('tbl-cap')} {{#{label}}}"
                table_done = anchored = True
            parts.append(text)
        elif html and (target == "html" or "text/plain" not in data or re.search(r"<table\b", html, re.I)):
            if re.search(r"<table\b", html, re.I) and not table_done and (cap := caption("tbl-cap")):
                ident = f' id="{label}"' if kind == "tbl" else ""
                cap_html = re.sub(r"^<p>(.*)</p>$", r"\1", _pandoc_text(cap, "html"), flags=re.S)
                html = re.sub(r"<table\b([^>]*)>", lambda m: f"<table{ident}{m[1]}><caption>{cap_html}</caption>",
                              html, count=1, flags=re.I)
                table_done, anchored = True, anchored or kind == "tbl"
            # Typst cannot show raw HTML: let pandoc translate it (tables become Typst tables)
            parts.append(_fenced(html, "{=html}") if target == "html"
                         else _fenced(_pandoc_text(html, "typst", reader="html"), "{=typst}"))
        elif "text/plain" in data:
            text = ANSI_ESCAPE.sub("", data["text/plain"])
            parts.append(text if asis else _fenced(text))
    if kind and not anchored:
        warnings.append(f"cell '{label}' (line {cell.line}) produced no {'figure' if kind == 'fig' else 'table'}; "
                        "only an anchor is emitted")
        parts.append(f"[]{{#{label}}}")
    return "\n\n".join(parts)


def _document_markdown(doc: QmdDocument, nb, meta: dict, numbers: dict[str, int], media: Path,
                       target: str, warnings: list[str]) -> str:
    """The executed document as pandoc markdown for ``target`` (``html`` or ``typst``), each
    figure in that target's ``fig-format``."""
    figure_mime = project.FIGURE_MIMES[project.figure_format(meta, "html" if target == "html" else "pdf")]
    executed = {c.metadata["filmgenre"]["cell"]: c for c in nb.cells
                if c.metadata["filmgenre"]["role"] in ("code", "inline")}
    parts = []
    for index, cell in enumerate(doc.cells):
        nb_cell = executed.get(index)
        if cell.kind == "markdown":
            result = next((o for o in nb_cell.outputs if o.output_type == "execute_result"), None) if nb_cell else None
            values = ast.literal_eval(result.data["text/plain"]) if result else []
            parts.append(prose_markdown(cell.source, numbers, values, doc.path.parent))
        else:
            parts.append(_code_markdown(cell, nb_cell, cell_options(cell, meta), numbers, media, target, warnings,
                                        figure_mime))
    return "\n\n".join(p for p in parts if p.strip()) + "\n"


# --------------------------------------------------------------------------- pandoc, typst

#: the preview's HTML look, close to Quarto's default theme: a sans-serif text column, compact tables
#: that fit it, and with ``toc: true`` the table of contents in a sticky column beside the text
#: (Quarto's ``toc-location: left``)
_HTML_STYLE = """<style>
body { max-width: 50em; margin: 0 auto; padding: 2em 1.5em; line-height: 1.5; color: #212529;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
body:has(> nav#TOC) { max-width: 68em; display: grid; grid-template-columns: 14em minmax(0, 1fr);
                      column-gap: 2.5em; }
body:has(> nav#TOC) > * { grid-column: 2; }
body > nav#TOC { grid-column: 1; grid-row: 1 / span 500; position: sticky; top: 1em; align-self: start;
                 max-height: calc(100vh - 2em); overflow-y: auto; font-size: 0.85em;
                 border-right: 1px solid #dee2e6; padding-right: 1em; }
nav#TOC ul { list-style: none; padding-left: 0.9em; margin: 0.2em 0; }
nav#TOC > ul { padding-left: 0; }
nav#TOC a { color: #495057; text-decoration: none; }
nav#TOC a:hover { color: #1f4e8c; }
h1, h2, h3 { line-height: 1.2; }
figure { margin: 1.5em 0; text-align: center; }
figure img { max-width: 100%; height: auto; }
figcaption, table caption { font-size: 0.9em; color: #333; text-align: left; margin: 0.4em 0; }
table { border-collapse: collapse; margin: 1em auto; font-size: 0.8em; max-width: 100%; }
th { overflow-wrap: anywhere; }  /* long column names break, so a table fits its column */
@media (max-width: 60em) {  /* a narrow window: contents above the text, the text the full width */
  body:has(> nav#TOC) { display: block; }
  body > nav#TOC { position: static; max-height: none; border-right: none; padding: 0 0 1em 0;
                   border-bottom: 1px solid #dee2e6; }
}
table caption { caption-side: top; }
th, td { padding: 0.2em 0.5em; }
thead th { border-bottom: 1px solid #444; vertical-align: bottom; }
table.dataframe { border: none; }
table.dataframe td, table.dataframe th { border: none; text-align: right; }
tbody tr:nth-child(odd) { background: #f8f9fa; }
details { margin: 1em 0; }
details > summary { cursor: pointer; color: #1f4e8c; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
</style>
"""

_TYPST_HEADER = """// filmgenre.render: captions carry Quarto-style "Figure N:" / "Table N:" prefixes
#set figure(numbering: none)
#show figure: set block(breakable: false)
#show figure.caption: set text(size: 0.9em)
#show figure.where(kind: table): set text(size: 0.9em)
#set table(stroke: (x, y) => if y == 0 { (top: 0.6pt) })
#show raw.where(block: true): set block(fill: luma(245), inset: 6pt, radius: 2pt, width: 100%)
#show link: set text(fill: rgb("#1f4e8c"))
"""


def _pandoc_metadata(meta: dict, target: str, stem: str) -> tuple[dict, list[str], str]:
    """Pandoc metadata (the document's, plus its ``format: html|typst`` options), the pandoc
    flags for the Quarto options that are flags, not template variables, in pandoc, and the
    header to include: our style, then the document's ``include-in-header`` texts (one file,
    since pandoc ignores ``header-includes`` metadata once ``--include-in-header`` is given)."""
    formats = meta.get("format") if isinstance(meta.get("format"), dict) else {}
    names = ("html",) if target == "html" else ("typst", "pdf")
    own = next((formats[n] for n in names if isinstance(formats.get(n), dict)), {})
    skip = ("format", "execute", "project", "jupyter", "engine", "bibliography")  # bibliography breaks Typst
    opts = project.merge({k: v for k, v in meta.items() if k not in skip}, own)
    args = ["--toc", f"--toc-depth={opts.pop('toc-depth', 3)}"] if opts.pop("toc", False) else []
    if opts.pop("number-sections", False):  # a pandoc flag for HTML, a template variable for Typst
        if target == "html":
            args.append("--number-sections")
        else:
            opts.setdefault("section-numbering", "1.1")
    includes = opts.pop("include-in-header", None) or []  # Quarto's `- text: ...` items, after our own header
    includes = includes if isinstance(includes, list) else [includes]
    if not all(isinstance(item, dict) and "text" in item for item in includes):
        raise RenderError(f"{stem}: the preview supports include-in-header only as `- text: ...` items")
    header = _HTML_STYLE if target == "html" else _TYPST_HEADER
    header = "\n".join([header, *(item["text"] for item in includes)])
    if str(opts.get("date")).lower() in ("today", "now", "last-modified"):
        today = _dt.date.today()
        opts["date"] = f"{today.day} {today:%B %Y}"
    if target == "typst":
        opts.setdefault("page-numbering", "1")
    if not opts.get("title"):
        opts["pagetitle"] = stem  # pandoc warns about HTML without a <title>
    return opts, args, header


def _pandoc(markdown: str, meta: dict, to: str, output: Path, args: list[str], document: Path,
            bibliography: Path | None = None) -> None:
    import pypandoc

    front = f"---\n{yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)}---\n\n"
    cited = ["--citeproc", f"--bibliography={bibliography}"] if bibliography else []
    try:
        pypandoc.convert_text(front + markdown, to, format=PANDOC_MARKDOWN_CITED if bibliography else PANDOC_MARKDOWN,
                              outputfile=str(output), extra_args=["--standalone", *cited, *args])
    except RuntimeError as exc:
        raise RenderError(f"{document}: pandoc failed writing {to}: {exc}") from exc


# --------------------------------------------------------------------------- public API


def render_document(qmd_path: Path | str, formats: Iterable[str] | str | None = None,
                    output_dir: Path | str | None = None, *, project_root: Path | str | None = None) -> RenderResult:
    """Render one ``.qmd`` with the fallback pipeline (nbclient + pandoc + typst).

    ``formats``: ``"html"`` and/or ``"pdf"``; ``None`` renders the formats declared in the
    metadata (``format: html`` / ``typst``; default html). ``output_dir``: defaults to
    Quarto's place, ``<root>/<output-dir>/<folder of the qmd>``. Undefined or duplicate
    fig-/tbl- references raise :class:`RenderError` before any code runs."""
    qmd_path = Path(qmd_path).resolve()
    root = Path(project_root).resolve() if project_root else project.find_project_root(qmd_path.parent)
    doc = parse_qmd(qmd_path)
    meta = project.metadata(doc, root)
    targets = project.declared_formats(meta) if formats is None else [formats] if isinstance(formats, str) else list(formats)
    if unknown := set(targets) - {"html", "pdf"}:
        raise ValueError(f"unknown format(s) {sorted(unknown)} (expected 'html' or 'pdf')")

    check = check_references(doc)
    if not check.ok:
        problems = []
        if check.undefined:
            problems.append("undefined cross reference(s): " + ", ".join("@" + r for r in check.undefined))
        if check.duplicates:
            problems.append("duplicate label(s): " + ", ".join(check.duplicates))
        if check.missing:
            problems.append("citation key(s) not in the bibliography: " + ", ".join(check.missing))
        raise RenderError(f"{qmd_path}: " + "; ".join(problems))
    numbers = number_labels(check.labels)
    figure_formats = sorted({"png" if (f := project.figure_format(meta, t)) == "retina" else f for t in targets})
    nb = execute_notebook(build_notebook(doc, meta, figure_formats), qmd_path.parent, qmd_path)

    out_dir = Path(output_dir).resolve() if output_dir else project.default_output_dir(qmd_path, root)
    result = RenderResult(qmd_path, {}, nb, check.labels, check.references, numbers)
    warnings: list[str] = []
    stem = qmd_path.stem
    with tempfile.TemporaryDirectory(prefix=f"filmgenre-render-{stem}-") as tmp:
        build = Path(tmp)
        for target in dict.fromkeys(targets):
            writer = "html" if target == "html" else "typst"
            markdown = figure_index.link_captions(_document_markdown(doc, nb, meta, numbers, build, writer, warnings))
            metadata, args, header = _pandoc_metadata(meta, writer, stem)
            (build / ("style.html" if target == "html" else "header.typ")).write_text(header, encoding="utf-8")
            with atomic_path(out_dir / f"{stem}.{target}") as output:
                if target == "html":
                    _pandoc(markdown, metadata, "html5", output, [
                        "--embed-resources", "--mathml", f"--include-in-header={build / 'style.html'}",
                        f"--resource-path={qmd_path.parent}", *args], qmd_path, bibliography_path(doc))
                else:
                    typ = build / f"{stem}.typ"
                    _pandoc(markdown, metadata, "typst", typ, [f"--include-in-header={build / 'header.typ'}", *args],
                            qmd_path, bibliography_path(doc))
                    import typst

                    try:  # root "/": the figures are absolute paths, outside the .typ's folder
                        typst.compile(str(typ), output=str(output), root=typ.anchor)
                    except Exception as exc:  # typst.TypstError and friends
                        raise RenderError(f"{qmd_path}: typst failed: {exc}") from exc
            result.outputs[target] = out_dir / f"{stem}.{target}"
    for warning in dict.fromkeys(warnings):
        print(f"WARNING: {qmd_path}: {warning}", file=sys.stderr)
    return result


def render_project(root: Path | str, use_quarto: bool | None = None) -> list[RenderResult]:
    """Render every document of the project at ``root``.

    ``use_quarto``: ``None`` uses quarto when it is on PATH, ``True`` requires it, ``False``
    forces the fallback."""
    root = Path(root).resolve()
    documents = project.project_documents(root)
    if not documents:
        raise RenderError(f"{root}: no documents to render (check project: render: in {project.PROJECT_FILE})")
    quarto = shutil.which("quarto")
    if use_quarto is None:
        use_quarto = quarto is not None
    if not use_quarto:
        return [render_document(doc, project_root=root) for doc in documents]
    if quarto is None:
        raise RenderError("quarto is not on PATH: install it (conda-forge `quarto`, see environment.yml), "
                          "or render the preview without it (--quarto auto or never)")
    completed = subprocess.run([quarto, "render"], cwd=root)
    if completed.returncode != 0:
        raise RenderError(f"quarto render failed in {root} (exit code {completed.returncode})")
    results = []
    for doc in documents:
        paths = {t: project.default_output_dir(doc, root) / f"{doc.stem}.{t}"
                 for t in project.declared_formats(project.metadata(parse_qmd(doc), root))}
        results.append(RenderResult(doc, {t: p for t, p in paths.items() if p.is_file()}))
    return results


def report(root: Path, quarto: str = "auto") -> list[Path]:
    """Render the project's documents; return the output files.

    ``quarto``: ``"auto"`` (quarto if on PATH, else the fallback), ``"always"`` (quarto or
    fail), ``"never"`` (the fallback, even when quarto is installed)."""
    choices = {"auto": None, "always": True, "never": False}
    if quarto not in choices:
        raise ValueError(f"quarto must be 'auto', 'always' or 'never', not {quarto!r}")
    return [path for result in render_project(Path(root), use_quarto=choices[quarto])
            for path in result.outputs.values()]


def page_fill(pdf: Path | str, margin: float) -> list[float]:
    """Per page of a PDF, the share of its text area (the page minus ``margin`` points at the top and
    the bottom) that lies above the lowest text or image: 1.0 is a full page. The page number in the
    bottom margin is not content. Used to check that the report's pages are full."""
    from pypdf import PdfReader

    shares = []
    for page in PdfReader(str(pdf)).pages:
        height = float(page.mediabox.height)
        lowest = [height - margin]

        def text(content, cm, tm, *_):
            y = tm[5] * cm[3] + cm[5]
            if content.strip() and y > margin:
                lowest.append(y)

        def image(operator, _, cm, __):
            if operator == b"Do":
                lowest.append(min(cm[5], cm[5] + cm[3]))

        page.extract_text(visitor_text=text, visitor_operand_before=image)
        shares.append((height - margin - min(lowest)) / (height - 2 * margin))
    return shares
