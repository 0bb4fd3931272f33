"""Read a Quarto document: its cells and ``#|`` options, its inline expressions, its fig-/tbl-
cross references and citations, checked and numbered as Quarto does, before anything runs."""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import yaml

from filmgenre import FilmgenreError

_CITATION = re.compile(r"(?<![\w@`\\])-?@([A-Za-z0-9_][\w:.#$%&+?<>~/-]*[\w])")
_BIB_KEY = re.compile(r"^\s*@\w+\s*\{\s*([^,\s]+)\s*,", re.M)
XREF_KINDS = {"fig": "Figure", "tbl": "Table"}


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
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


def label_kind(label: str) -> str:
    return label.split("-", 1)[0].lower()


def caption_prefix(label: str, numbers: dict[str, int]) -> str:
    return f"{XREF_KINDS[label_kind(label)]}\u00a0{numbers[label]}: "


def _ref(match: re.Match, numbers: dict[str, int]) -> str:
    """``@fig-x`` -> ``[Figure 1](#fig-x)``, ``-@fig-x`` -> ``[1](#fig-x)``, unknown -> ``**?@fig-x**`` as in Quarto."""
    label = f"{match[2].lower()}-{match[3]}"
    if label not in numbers:
        return f"**?@{label}**"
    text = str(numbers[label]) if match[1] else f"{XREF_KINDS[label_kind(label)]}\u00a0{numbers[label]}"
    return f"[{text}](#{label})"


def prose_markdown(markdown: str, numbers: dict[str, int], values: Iterable[str] = (), folder: Path | None = None) -> str:
    """Markdown for pandoc: inline expressions replaced by ``values``, references resolved,
    captions of labelled markdown figures/tables numbered, relative images made absolute
    (the Typst file is compiled elsewhere)."""
    values = iter(values)

    def image(m: re.Match) -> str:
        src, attr, cap = m["src"], m["attr"] or "", m["cap"]
        if folder and not re.match(r"^([a-z][a-z0-9+.-]*:|/)", src, re.I) and (folder / src).exists():
            src = (folder / src).resolve().as_posix()
        ident = _ATTR_ID.search(attr)
        if ident and ident[1] in numbers and label_kind(ident[1]) == "fig":
            cap = caption_prefix(ident[1], numbers) + cap
        return f"![{cap}]({src}{m['title']}){attr}"

    def table(m: re.Match) -> str:
        ident = _ATTR_ID.search(m["attr"])
        prefix = caption_prefix(ident[1], numbers) if ident and ident[1] in numbers else ""
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
            if cell.label and label_kind(cell.label) in XREF_KINDS:
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
                                   if label_kind(key) not in XREF_KINDS and not key.startswith(("sec-", "eq-"))))
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
        counts[label_kind(label)] = numbers[label] = counts.get(label_kind(label), 0) + 1
    return numbers
