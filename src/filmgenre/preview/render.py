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
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Iterable

import yaml

from filmgenre import FilmgenreError, figure_index

from filmgenre.files import atomic_path

PROJECT_FILE = "_quarto.yml"
DEFAULT_OUTPUT_DIR = "_output"
#: pandoc reader: Quarto-flavoured markdown minus citations, so that ``@x`` stays literal text
#: (cross references are resolved before pandoc sees the text); with citations for a document
#: that has a bibliography.
PANDOC_MARKDOWN = "markdown-citations"
PANDOC_MARKDOWN_CITED = "markdown"
_CITATION = re.compile(r"(?<![\w@`\\])-?@([A-Za-z0-9_][\w:.#$%&+?<>~/-]*[\w])")
_BIB_KEY = re.compile(r"^\s*@\w+\s*\{\s*([^,\s]+)\s*,", re.M)
XREF_KINDS = {"fig": "Figure", "tbl": "Table"}
_IMAGE_EXTENSIONS = {"image/png": ".png", "image/svg+xml": ".svg", "image/jpeg": ".jpg"}


class RenderError(FilmgenreError):
    """A document could not be rendered (failing cell, bad reference, pandoc/typst error)."""

    def __init__(self, message: str, *, cell: str | None = None, ename: str | None = None):
        super().__init__(message)
        self.cell = cell  # label of the failing cell, else "line N"
        self.ename = ename  # exception class raised in the kernel


@dataclass
class ReferenceCheck:
    """fig-/tbl- labels a document defines and the cross references it uses, in order, and the
    citation keys it uses (``missing``: those its bibliography does not hold)."""

    labels: list[str]
    references: list[str]
    undefined: list[str]
    duplicates: list[str]
    citations: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.undefined and not self.duplicates and not self.missing


@dataclass
class RenderResult:
    """What rendering one document produced (``notebook`` is None when quarto rendered it)."""

    source: Path
    outputs: dict[str, Path]  # "html" / "pdf" -> file
    notebook: Any = None
    labels: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- .qmd parsing


@dataclass
class QmdCell:
    kind: str  # "markdown" | "code"
    source: str  # for code: with its #| lines, as Quarto's notebooks keep them
    line: int  # 1-based line of the cell (of the opening fence for code)
    options: dict = field(default_factory=dict)
    code: str = ""  # code without the #| lines

    @property
    def label(self) -> str | None:
        return self.options.get("label")


@dataclass
class QmdDocument:
    path: Path
    meta: dict
    cells: list[QmdCell]


_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|$)", re.S)
#: a fenced block; one left open runs to the end of the text (``close`` is then None)
_FENCE = (r"^[ \t]*(?P<fence>(?P<c>[`~])(?P=c){2,})(?P<info>[^\n`]*)\n(?P<body>.*?)"
          r"(?:^[ \t]*(?P<close>(?P=fence)(?P=c)*)[ \t]*$|\Z)")
_CELL_INFO = re.compile(r"\s*\{(?:python3?|py)\b[^}]*\}\s*")
_OPTION_LINE = re.compile(r"^#\| ?")


def parse_qmd(path: Path | str, text: str | None = None) -> QmdDocument:
    """Split a ``.qmd`` into front matter and markdown / python code cells.

    Fenced blocks that are not python cells are markdown, and never searched for cells."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    front = _FRONT_MATTER.match(text)
    meta = (yaml.safe_load(front.group(1) or "") if front else None) or {}
    if not isinstance(meta, dict):
        raise RenderError(f"{path}: front matter is not a YAML mapping")
    body = text[front.end():] if front else text
    first_line = text.count("\n", 0, front.end()) + 1 if front else 1
    cells: list[QmdCell] = []

    def markdown(start: int, end: int) -> None:
        chunk = body[start:end]
        if chunk.strip():
            start += len(chunk) - len(chunk.lstrip("\n"))
            cells.append(QmdCell("markdown", chunk.strip("\n"), first_line + body.count("\n", 0, start)))

    pos = 0
    for match in re.finditer(_FENCE, body, re.M | re.S):
        if not _CELL_INFO.fullmatch(match["info"]):
            continue
        line = first_line + body.count("\n", 0, match.start())
        if match["close"] is None:
            raise RenderError(f"{path}: code cell at line {line} has no closing {match['fence']}")
        markdown(pos, match.start())
        pos = match.end()
        lines = textwrap.dedent(match["body"]).splitlines()
        n_options = next((i for i, l in enumerate(lines) if not _OPTION_LINE.match(l)), len(lines))
        try:  # Quarto reads the #| lines as one YAML mapping
            options = yaml.safe_load("\n".join(_OPTION_LINE.sub("", l) for l in lines[:n_options])) or {}
            if not isinstance(options, dict):
                raise ValueError("not a mapping")
        except (yaml.YAMLError, ValueError) as exc:
            raise RenderError(f"{path}: bad #| options in code cell at line {line}: {exc}") from exc
        code = "\n".join(lines[n_options:]).strip("\n")
        cells.append(QmdCell("code", "\n".join(lines), line, options, code))
    markdown(pos, len(body))
    return QmdDocument(path, meta, cells)


# --------------------------------------------------------------------------- markdown prose

_INLINE_EXPR = re.compile(r"`\{python\}[ \t]+([^`]+)`")
#: fenced blocks and inline code spans: never evaluated, resolved or captioned
_CODE = re.compile(_FENCE + r"|(?<!`)(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)", re.M | re.S)
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_REF_ONE = r"-?@(?:[Ff]ig|[Tt]bl)-" + _LABEL
_REF = re.compile(r"(?<![\w@`\\])(-?)@([Ff]ig|[Tt]bl)-(" + _LABEL + ")")
_REF_GROUP = re.compile(r"\[\s*(" + _REF_ONE + r"(?:\s*;\s*" + _REF_ONE + r")*)\s*\](?![(\[{])")
_MD_IMAGE = re.compile(r"!\[(?P<cap>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<src>[^)\s]+)(?P<title>[^)]*)\)(?P<attr>\{[^}]*\})?")
_MD_TABLE_CAPTION = re.compile(r"^(?P<lead>(?:Table)?:[ \t]+)(?P<cap>.*?)[ \t]*\{(?P<attr>[^}]*#tbl-[^}]*)\}[ \t]*$",
                               re.M)
_MD_DIV = re.compile(r"^:{3,}\s*(?P<attr>\{[^}]*\})", re.M)
_ATTR_ID = re.compile(r"#((?:fig|tbl)-" + _LABEL + ")")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _segments(text: str) -> list[tuple[bool, str]]:
    """Split markdown into (is_code, text) pieces."""
    pieces, pos = [], 0
    for match in _CODE.finditer(text):
        pieces += [(False, text[pos:match.start()]), (True, match.group(0))]
        pos = match.end()
    return pieces + [(False, text[pos:])]


def inline_expressions(markdown: str) -> list[str]:
    """The `` `{python} expr` `` expressions of a markdown text, in order."""
    return [m.group(1).strip() for is_code, piece in _segments(markdown)
            if is_code and (m := _INLINE_EXPR.fullmatch(piece))]


def _kind(label: str) -> str:
    return label.split("-", 1)[0].lower()


def _caption_prefix(label: str, numbers: dict[str, int]) -> str:
    return f"{XREF_KINDS[_kind(label)]}\u00a0{numbers[label]}: "


def _ref(match: re.Match, numbers: dict[str, int]) -> str:
    """``@fig-x`` -> ``[Figure 1](#fig-x)``, ``-@fig-x`` -> ``[1](#fig-x)``, unknown -> ``**?@fig-x**`` as in Quarto."""
    label = f"{match[2].lower()}-{match[3]}"
    if label not in numbers:
        return f"**?@{label}**"
    text = str(numbers[label]) if match[1] else f"{XREF_KINDS[_kind(label)]}\u00a0{numbers[label]}"
    return f"[{text}](#{label})"


def _prose(markdown: str, numbers: dict[str, int], values: Iterable[str] = (), folder: Path | None = None) -> str:
    """Markdown for pandoc: inline expressions replaced by ``values``, references resolved,
    captions of labelled markdown figures/tables numbered, relative images made absolute
    (the Typst file is compiled elsewhere)."""
    values = iter(values)

    def image(m: re.Match) -> str:
        src, attr, cap = m["src"], m["attr"] or "", m["cap"]
        if folder and not re.match(r"^([a-z][a-z0-9+.-]*:|/)", src, re.I) and (folder / src).exists():
            src = (folder / src).resolve().as_posix()
        ident = _ATTR_ID.search(attr)
        if ident and ident[1] in numbers and _kind(ident[1]) == "fig":
            cap = _caption_prefix(ident[1], numbers) + cap
        return f"![{cap}]({src}{m['title']}){attr}"

    def table(m: re.Match) -> str:
        ident = _ATTR_ID.search(m["attr"])
        prefix = _caption_prefix(ident[1], numbers) if ident and ident[1] in numbers else ""
        return f"{m['lead']}{prefix}{m['cap']} {{{m['attr']}}}"

    def ref(m: re.Match) -> str:
        return _ref(m, numbers)

    def group(m: re.Match) -> str:  # [@fig-a; @fig-b] -> Figure 1, Figure 2
        return re.sub(r"\s*;\s*", ", ", _REF.sub(ref, m[1]))

    out = []
    for is_code, piece in _segments(markdown):
        if not is_code:
            piece = _MD_TABLE_CAPTION.sub(table, _MD_IMAGE.sub(image, piece))
            piece = _REF.sub(ref, _REF_GROUP.sub(group, piece))
        elif _INLINE_EXPR.fullmatch(piece):
            piece = next(values, piece)
        out.append(piece)
    return "".join(out)


# --------------------------------------------------------------------------- references


def check_references(source: Path | str | QmdDocument) -> ReferenceCheck:
    """Static check of a document's fig-/tbl- cross references (no execution).

    ``source``: a path to a ``.qmd``, the text of one, or a parsed document. Labels come from
    code cells (``#| label:``) and markdown (``![..](..){#fig-x}``, ``: cap {#tbl-x}``,
    ``::: {#fig-x}``); references from the prose and the fig-/tbl-cap options."""
    if isinstance(source, QmdDocument):
        doc = source
    elif isinstance(source, Path) or ("\n" not in source and source.endswith(".qmd")):
        doc = parse_qmd(source)
    else:
        doc = parse_qmd(Path("<text>.qmd"), text=source)
    labels: list[str] = []
    references: list[str] = []

    def collect_references(markdown: str) -> None:
        references.extend(f"{m[2].lower()}-{m[3]}" for is_code, piece in _segments(markdown) if not is_code
                          for m in _REF.finditer(piece))

    for cell in doc.cells:
        if cell.kind == "code":
            if cell.label and _kind(cell.label) in XREF_KINDS:
                labels.append(cell.label)
            for key in ("fig-cap", "tbl-cap"):
                if isinstance(cell.options.get(key), str):
                    collect_references(cell.options[key])
            continue
        found, offset = [], 0
        for is_code, piece in _segments(cell.source):
            if not is_code:
                for m in [*_MD_IMAGE.finditer(piece), *_MD_TABLE_CAPTION.finditer(piece), *_MD_DIV.finditer(piece)]:
                    if ident := _ATTR_ID.search(m["attr"] or ""):
                        found.append((offset + m.start(), ident[1]))
            offset += len(piece)
        labels += [label for _, label in sorted(found)]
        collect_references(cell.source)
    duplicates = [label for label, count in Counter(labels).items() if count > 1]
    undefined = [r for r in dict.fromkeys(references) if r not in labels]
    citations = list(dict.fromkeys(key for cell in doc.cells if cell.kind == "markdown"
                                   for is_code, piece in _segments(cell.source) if not is_code
                                   for key in _CITATION.findall(piece)
                                   if _kind(key) not in XREF_KINDS and not key.startswith(("sec-", "eq-"))))
    bibliography = bibliography_path(doc)
    keys = set(_BIB_KEY.findall(bibliography.read_text(encoding="utf-8"))) if bibliography else set()
    missing = [key for key in citations if key not in keys]
    return ReferenceCheck(labels, references, undefined, duplicates, citations, missing)


def bibliography_path(doc: QmdDocument) -> Path | None:
    """The document's ``bibliography`` file (relative to the document), if it names one."""
    name = doc.meta.get("bibliography")
    if not name:
        return None
    path = (doc.path.parent / str(name)).resolve()
    if not path.is_file():
        raise RenderError(f"{doc.path}: bibliography {name} not found next to it")
    return path


def number_labels(labels: Iterable[str]) -> dict[str, int]:
    """Quarto numbering: figures and tables counted separately, in order of appearance."""
    numbers: dict[str, int] = {}
    counts: dict[str, int] = {}
    for label in dict.fromkeys(labels):
        counts[_kind(label)] = numbers[label] = counts.get(_kind(label), 0) + 1
    return numbers


# --------------------------------------------------------------------------- project


def find_project_root(start: Path | str) -> Path | None:
    """The nearest folder at or above ``start`` holding ``_quarto.yml``."""
    start = Path(start).resolve()
    return next((folder for folder in [start, *start.parents] if (folder / PROJECT_FILE).is_file()), None)


def load_project(root: Path | str | None) -> dict:
    path = Path(root) / PROJECT_FILE if root else None
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path and path.is_file() else {}


def _output_dir_name(root: Path | str | None) -> str:
    return str((load_project(root).get("project") or {}).get("output-dir") or DEFAULT_OUTPUT_DIR)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _metadata(doc: QmdDocument, root: Path | None) -> dict:
    """Quarto's metadata cascade: ``_quarto.yml``, the folder's ``_metadata.yml``, the front matter."""
    meta = {k: v for k, v in load_project(root).items() if k != "project"}
    folder_meta = doc.path.parent / "_metadata.yml"
    if folder_meta.is_file():
        meta = _merge(meta, yaml.safe_load(folder_meta.read_text(encoding="utf-8")) or {})
    return _merge(meta, doc.meta)


def declared_formats(meta: dict) -> list[str]:
    """Targets a document asks for: ``html`` and/or ``pdf`` (Quarto's ``typst`` and ``pdf``)."""
    names = meta.get("format") or ["html"]
    names = [names] if isinstance(names, str) else list(names)
    targets = {"html": "html", "typst": "pdf", "pdf": "pdf"}
    out = [targets[base] for name in names if (base := re.split(r"[+-]", str(name))[0]) in targets]
    return list(dict.fromkeys(out)) or ["html"]


def default_output_dir(qmd_path: Path | str, root: Path | str | None = None) -> Path:
    """Where Quarto would write a document's outputs: ``<root>/<output-dir>/<folder>``."""
    qmd_path = Path(qmd_path).resolve()
    root = Path(root).resolve() if root else find_project_root(qmd_path.parent)
    if root is None:
        return qmd_path.parent
    return root / _output_dir_name(root) / qmd_path.parent.relative_to(root)


def project_documents(root: Path | str) -> list[Path]:
    """Documents of a project: ``project: render:`` of ``_quarto.yml`` (globs, ``!`` excludes),
    else every ``.qmd`` not starting with ``_`` or ``.`` and not a README, as Quarto does."""
    root = Path(root).resolve()
    patterns = (load_project(root).get("project") or {}).get("render") or []
    patterns = [patterns] if isinstance(patterns, str) else [str(p) for p in patterns]
    if not patterns:
        skip = (_output_dir_name(root), "node_modules")
        return [path for path in sorted(root.rglob("*.qmd")) if path.stem.upper() != "README"
                and not any(part.startswith((".", "_")) or part in skip for part in path.relative_to(root).parts)]
    excludes = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    found: list[Path] = []
    for pattern in (p for p in patterns if not p.startswith("!")):
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root).as_posix()
            if (path.suffix == ".qmd" and path.is_file() and path not in found
                    and not any(fnmatch(rel, ex) or rel.startswith(ex + "/") for ex in excludes)):
                found.append(path)
    return found


# --------------------------------------------------------------------------- execution

_SETUP_CODE = """\
def _filmgenre_setup(width, height, dpi):
    try:
        import matplotlib
    except ImportError:
        return
    get_ipython().run_line_magic("matplotlib", "inline")  # first: activating it resets rcParams
    matplotlib.rcParams.update({"figure.figsize": (width, height), "figure.dpi": dpi, "savefig.dpi": dpi})


def _filmgenre_inline(expressions):
    # Quarto's inline rule: strings as they are, else the markdown repr, else str()
    values = []
    for expression in expressions:
        try:
            value = eval(expression, get_ipython().user_ns)
        except Exception as exc:
            raise RuntimeError(
                f"inline expression `{{python}} {expression}` failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(value, str):
            markdown = getattr(value, "_repr_markdown_", None)
            value = (markdown and markdown()) or str(value)
        values.append(value)
    return values

"""


def _cell_options(cell: QmdCell, meta: dict) -> dict:
    """A cell's execution options: the ``execute:`` defaults, overridden by its ``#|`` lines."""
    return {**(meta.get("execute") or {}), **cell.options}


def build_notebook(doc: QmdDocument, meta: dict):
    """The notebook nbclient executes: a hidden setup cell, then the document's cells.

    Each markdown cell with inline expressions is preceded by a code cell evaluating them,
    so they see the state of the code above. ``metadata.filmgenre`` maps cells back."""
    import nbformat

    def cell(role: str, new, source: str, **info):
        made = new(source)
        made.metadata["filmgenre"] = {"role": role, **info}
        nb.cells.append(made)
        return made

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    size = (float(meta.get("fig-width") or 7), float(meta.get("fig-height") or 5), int(meta.get("fig-dpi") or 150))
    cell("setup", nbformat.v4.new_code_cell, _SETUP_CODE + f"_filmgenre_setup{size!r}")
    for index, qmd_cell in enumerate(doc.cells):
        where = {"cell": index, "line": qmd_cell.line}
        if qmd_cell.kind == "markdown":
            if expressions := inline_expressions(qmd_cell.source):
                cell("inline", nbformat.v4.new_code_cell, f"_filmgenre_inline({expressions!r})", **where)
            cell("markdown", nbformat.v4.new_markdown_cell, qmd_cell.source, **where)
            continue
        options = _cell_options(qmd_cell, meta)
        if options.get("eval") is False:
            continue
        code = cell("code", nbformat.v4.new_code_cell, qmd_cell.source, label=qmd_cell.label, **where)
        if options.get("error"):  # nbclient's own tag for cells allowed to raise
            code.metadata["tags"] = ["raises-exception"]
    return nb


def execute_notebook(nb, cwd: Path, document: Path, timeout: int = 600):
    """Run ``nb`` with nbclient in ``cwd``; a failing cell raises :class:`RenderError` naming it.

    The kernel talks over IPC sockets in a private folder: no TCP port open to other users of
    the machine (and no "Kernel is running over TCP without encryption" warning)."""
    import tempfile

    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    running: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="filmgenre-kernel-") as sockets:
        kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"))
        client = NotebookClient(nb, km=kernel, timeout=timeout, resources={"metadata": {"path": str(cwd)}},
                                on_cell_start=lambda cell, **_: running.update(info=cell.metadata.get("filmgenre", {})))
        try:
            client.execute()
        except Exception as exc:  # CellExecutionError, timeouts, dead kernels
            info = running.get("info", {})
            label, line = info.get("label"), info.get("line")
            where = f"{info.get('role', 'setup')} cell" + (f" {label!r}" if label else "")
            where += f" at line {line}" if line else ""
            ename, evalue = getattr(exc, "ename", type(exc).__name__), _ANSI.sub("", str(getattr(exc, "evalue", exc)))
            raise RenderError(f"{document}: {where} raised {ename}: {evalue}\n\n{_ANSI.sub('', str(exc)).strip()}",
                              cell=label or (f"line {line}" if line else None), ename=ename) from exc
    return nb


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
                   target: str, warnings: list[str]) -> str:
    """A code cell as Quarto shows it: echoed code, then its outputs, the last figure and the
    first table captioned (and numbered when the cell's label is ``fig-``/``tbl-``)."""
    if options.get("include") is False:
        return ""
    parts = [_fenced(cell.code, "{.python}")] if options.get("echo") is not False and cell.code.strip() else []
    if nb_cell is None or options.get("output") is False:
        return "\n\n".join(parts)
    asis = options.get("output") == "asis"
    label = cell.label
    kind = _kind(label) if label and _kind(label) in XREF_KINDS else None

    def caption(key: str) -> str | None:
        text = _prose(str(options.get(key) or ""), numbers)
        return _caption_prefix(label, numbers) + text if kind == key[:3] else text or None

    images = [i for i, out in enumerate(nb_cell.outputs) if any(m in out.get("data", {}) for m in _IMAGE_EXTENSIONS)]
    anchored = table_done = False
    for i, out in enumerate(nb_cell.outputs):
        data = out.get("data", {})
        mime = next((m for m in _IMAGE_EXTENSIONS if m in data), None)
        html = data.get("text/html", "")
        if out.output_type == "stream":
            text = _ANSI.sub("", out.text)
            if text.strip() and not (out.name == "stderr" and options.get("warning") is False):
                parts.append(text if asis and out.name == "stdout" else _fenced(text))
        elif out.output_type == "error":
            parts.append(_fenced(_ANSI.sub("", "\n".join(out.traceback))))
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
            text = _ANSI.sub("", data["text/plain"])
            parts.append(text if asis else _fenced(text))
    if kind and not anchored:
        warnings.append(f"cell '{label}' (line {cell.line}) produced no {'figure' if kind == 'fig' else 'table'}; "
                        "only an anchor is emitted")
        parts.append(f"[]{{#{label}}}")
    return "\n\n".join(parts)


def _document_markdown(doc: QmdDocument, nb, meta: dict, numbers: dict[str, int], media: Path,
                       target: str, warnings: list[str]) -> str:
    """The executed document as pandoc markdown for ``target`` (``html`` or ``typst``)."""
    executed = {c.metadata["filmgenre"]["cell"]: c for c in nb.cells
                if c.metadata["filmgenre"]["role"] in ("code", "inline")}
    parts = []
    for index, cell in enumerate(doc.cells):
        nb_cell = executed.get(index)
        if cell.kind == "markdown":
            result = next((o for o in nb_cell.outputs if o.output_type == "execute_result"), None) if nb_cell else None
            values = ast.literal_eval(result.data["text/plain"]) if result else []
            parts.append(_prose(cell.source, numbers, values, doc.path.parent))
        else:
            parts.append(_code_markdown(cell, nb_cell, _cell_options(cell, meta), numbers, media, target, warnings))
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
    opts = _merge({k: v for k, v in meta.items() if k not in skip}, own)
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
    root = Path(project_root).resolve() if project_root else find_project_root(qmd_path.parent)
    doc = parse_qmd(qmd_path)
    meta = _metadata(doc, root)
    targets = declared_formats(meta) if formats is None else [formats] if isinstance(formats, str) else list(formats)
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
    nb = execute_notebook(build_notebook(doc, meta), qmd_path.parent, qmd_path)

    out_dir = Path(output_dir).resolve() if output_dir else default_output_dir(qmd_path, root)
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
    documents = project_documents(root)
    if not documents:
        raise RenderError(f"{root}: no documents to render (check project: render: in {PROJECT_FILE})")
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
        paths = {t: default_output_dir(doc, root) / f"{doc.stem}.{t}"
                 for t in declared_formats(_metadata(parse_qmd(doc), root))}
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
