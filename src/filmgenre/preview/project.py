"""A Quarto project as the preview reads it: ``_quarto.yml``, the metadata cascade, the documents
to render, their formats and where their outputs go, as Quarto itself decides them.

Kept apart from the rendering (``render``) so that the rules Quarto applies to a project can be
read, and tested, without executing a document.
"""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path

import yaml

from filmgenre.preview.qmd import QmdDocument, RenderError

PROJECT_FILE = "_quarto.yml"
DEFAULT_OUTPUT_DIR = "_output"
# Quarto's fig-format per target (``format: typst`` draws SVG: vector figures in the PDF), and
# the mime type of each fig-format's output.
FIGURE_FORMATS = {"html": "png", "pdf": "svg"}
FIGURE_MIMES = {"png": "image/png", "retina": "image/png", "svg": "image/svg+xml", "jpeg": "image/jpeg"}


def find_project_root(start: Path | str) -> Path | None:
    """The nearest folder at or above ``start`` holding ``_quarto.yml``."""
    start = Path(start).resolve()
    return next((folder for folder in [start, *start.parents] if (folder / PROJECT_FILE).is_file()), None)


def load_project(root: Path | str | None) -> dict:
    path = Path(root) / PROJECT_FILE if root else None
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path and path.is_file() else {}


def output_dir_name(root: Path | str | None) -> str:
    return str((load_project(root).get("project") or {}).get("output-dir") or DEFAULT_OUTPUT_DIR)


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def metadata(doc: QmdDocument, root: Path | None) -> dict:
    """Quarto's metadata cascade: ``_quarto.yml``, the folder's ``_metadata.yml``, the front matter."""
    meta = {k: v for k, v in load_project(root).items() if k != "project"}
    folder_meta = doc.path.parent / "_metadata.yml"
    if folder_meta.is_file():
        meta = merge(meta, yaml.safe_load(folder_meta.read_text(encoding="utf-8")) or {})
    return merge(meta, doc.meta)


def declared_formats(meta: dict) -> list[str]:
    """Targets a document asks for: ``html`` and/or ``pdf`` (Quarto's ``typst`` and ``pdf``)."""
    names = meta.get("format") or ["html"]
    names = [names] if isinstance(names, str) else list(names)
    targets = {"html": "html", "typst": "pdf", "pdf": "pdf"}
    out = [targets[base] for name in names if (base := re.split(r"[+-]", str(name))[0]) in targets]
    return list(dict.fromkeys(out)) or ["html"]


def figure_format(meta: dict, target: str) -> str:
    """The ``fig-format`` a target's figures are drawn in: the format's own option, the document's,
    or Quarto's default (png for HTML, svg for Typst)."""
    formats = meta.get("format") if isinstance(meta.get("format"), dict) else {}
    names = ("html",) if target == "html" else ("typst", "pdf")
    own = next((formats[n] for n in names if isinstance(formats.get(n), dict)), {})
    chosen = str(own.get("fig-format") or meta.get("fig-format") or FIGURE_FORMATS[target])
    if chosen not in FIGURE_MIMES:
        raise RenderError(f"fig-format {chosen!r}: the preview draws {', '.join(FIGURE_MIMES)}")
    return chosen


def default_output_dir(qmd_path: Path | str, root: Path | str | None = None) -> Path:
    """Where Quarto would write a document's outputs: ``<root>/<output-dir>/<folder>``."""
    qmd_path = Path(qmd_path).resolve()
    root = Path(root).resolve() if root else find_project_root(qmd_path.parent)
    if root is None:
        return qmd_path.parent
    return root / output_dir_name(root) / qmd_path.parent.relative_to(root)


def project_documents(root: Path | str) -> list[Path]:
    """Documents of a project: ``project: render:`` of ``_quarto.yml`` (globs, ``!`` excludes),
    else every ``.qmd`` not starting with ``_`` or ``.`` and not a README, as Quarto does."""
    root = Path(root).resolve()
    patterns = (load_project(root).get("project") or {}).get("render") or []
    patterns = [patterns] if isinstance(patterns, str) else [str(p) for p in patterns]
    if not patterns:
        skip = (output_dir_name(root), "node_modules")
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
