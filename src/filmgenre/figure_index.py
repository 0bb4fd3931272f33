"""Where each figure and table comes from: ``report/figures/index.json``, written as they are drawn.

A figure file alone does not say which results, code and commit drew it. ``plots.save``
calls ``record`` for every figure it writes, which keeps one entry per figure: its files
(with their SHA-256, so a file in hand can be looked up), the label of the document cell
that drew it (when drawn while rendering a document), the plotting function, the results
files that function read (with their SHA-256), the commit and the date.

Which results files a drawing read is observed, not declared: a Python audit hook (PEP 578)
sees every file the process opens, and an open below ``results/`` while a function of the
watched plotting module is running is credited to the outermost such function, the one the
document called. No figure function or table helper has to list its inputs, and a new
figure is covered as soon as it goes through ``plots.save``. (A helper that caches a results
file between figures would hide the second read: none does.)

Tables have no file: each code cell labelled ``tbl-*`` of a document being rendered is entered
(under ``tables``, as ``<folder>/<label>``) when the cell has run, with the table functions it
called and the results files they read, observed the same way (``record_tables``, an IPython
``post_run_cell`` hook that ``tables`` installs when it is imported in a kernel). A table cell
often shows values an earlier cell computed (the setup cell reads ``metrics.json`` once), which
no hook can trace to the table, so the entry also lists the results files the document had read
before the cell (``earlier_reads``): a superset of what the table shows. A table is stale when
a file of either list changed or disappeared since the document was rendered.

A figure is stale when a results file it read changed or disappeared since it was drawn,
when its file no longer matches what was drawn, or when a figure file has no entry at all
(drawn before provenance was recorded). ``filmgenre evaluate --check`` reports them.

The index is not committed: the figures it describes are git-ignored and every render
rewrites it with new dates, so a committed copy would describe files a clone does not have.
"""

import contextlib
import datetime
import fcntl
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

from filmgenre import config, files

INDEX_NAME = "index.json"
FIGURE_SUFFIXES = (".png", ".pdf")
ANCHOR_PREFIX = "source-"  # the id of a figure's entry in the analysis: source-<label or name>

_watched: set[str] = set()  # source files of the plotting modules
_reads: dict[int, tuple[object, set[Path]]] = {}  # id(drawing frame) -> (the frame, results files read)
_cell: dict[str, set] = {"reads": set(), "functions": set(), "earlier": set()}  # the document cell running now


# The index is git-ignored: there is no committed copy to restore.
INDEX_FIX = "Delete it: the next render (`make report`) writes it anew."


def index_path() -> Path:
    return config.paths().figures / INDEX_NAME


def watch(module_file: str) -> None:
    """Credit results files opened while a function of ``module_file`` runs to that function."""
    if not _watched:
        sys.addaudithook(_on_open)
    _watched.add(os.path.realpath(module_file))


def _drawing_frame():
    """The outermost running frame of a watched module (the function the caller called), or None."""
    frame, found = sys._getframe(1), None
    while frame is not None:
        if os.path.realpath(frame.f_code.co_filename) in _watched:
            found = frame
        frame = frame.f_back
    return found


def _reading(mode: str | None, flags: int) -> bool:
    if mode is None:  # os.open: flags only
        return not flags & (os.O_WRONLY | os.O_RDWR)
    return "r" in mode and "+" not in mode


def _on_open(event: str, args: tuple) -> None:
    """Called on every audit event of the process: cheap string tests first."""
    if event != "open" or not isinstance(args[0], (str, os.PathLike)):
        return
    path = os.path.abspath(args[0])
    if not path.startswith(os.path.join(config.ROOT, "results", "")) or not _reading(args[1], args[2]):
        return
    if (frame := _drawing_frame()) is not None:
        _reads.setdefault(id(frame), (frame, set()))[1].add(Path(path))
        _cell["reads"].add(Path(path))
        _cell["functions"].add(_function_name(frame))


def _function_name(frame) -> str:
    return f"{frame.f_globals.get('__name__')}.{frame.f_code.co_name}"


def _shell():
    """The IPython kernel this process is, when a document is being rendered, else None."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython else None


def _cell_label() -> str | None:
    """The ``#| label:`` of the notebook cell running now, when a document is being rendered.

    Quarto and the preview renderer both send a cell's ``#|`` lines to the kernel with its code,
    and IPython keeps the running cell's source as the last item of ``In``.
    """
    shell = _shell()
    source = (shell.user_ns.get("In") or [""])[-1] if shell is not None else ""
    found = re.search(r"^#\|\s*label:\s*(\S+)", source, re.M)
    return found[1] if found else None


@functools.cache
def _commit(root: Path) -> dict:
    """The commit the figures are drawn at, and whether tracked files differ from it (once per process)."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        except FileNotFoundError:
            return None

    head = git("rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return {"commit": None, "uncommitted_changes": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head.stdout.strip(), "uncommitted_changes": bool(status.stdout.strip())}


def _relative(path: Path) -> str:
    return path.resolve().relative_to(config.paths().root.resolve()).as_posix()


@contextlib.contextmanager
def _locked():
    """The index, read and rewritten under a lock: the report and the analysis render side by side."""
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{INDEX_NAME}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = files.read_json(path, INDEX_FIX, default={"figures": {}})
        index.setdefault("tables", {})
        yield index
        index["figures"] = {name: entry for name, entry in index["figures"].items()
                            if all((path.parent / file).exists() for file in entry["files"])}
        files.write_json(path, index)


def record(name: str, written: list[Path]) -> dict:
    """Enter the figure ``name`` just saved as ``written``, with what its drawing function read."""
    frame = _drawing_frame()
    read = sorted(_reads.pop(id(frame), (None, set()))[1]) if frame is not None else []
    entry = {
        "label": _cell_label(),
        "files": {path.name: files.sha256(path) for path in written},
        "function": _function_name(frame) if frame is not None else None,
        **_origin(read),
    }
    with _locked() as index:
        index["figures"][name] = entry
    return entry


def _origin(read) -> dict:
    """What every entry records besides its own files: the results read (with SHA-256), commit, date, folder."""
    return {
        "reads": {_relative(path): files.sha256(path) for path in sorted(read) if path.exists()},
        **_commit(config.paths().root),
        "drawn_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "drawn_in": _here(),
    }


def record_tables(module_file: str) -> None:
    """In a document's kernel, enter every ``tbl-`` cell in the index once it has run, with the
    functions of ``module_file`` it called and the results files they read. Outside a kernel
    (the CLI, the tests), nothing is hooked."""
    watch(module_file)
    shell = _shell()
    if shell is None or _start_cell in shell.events.callbacks["pre_run_cell"]:
        return
    for found in _cell.values():  # a new document: what this process read before is not its
        found.clear()
    shell.events.register("pre_run_cell", _start_cell)
    shell.events.register("post_run_cell", _end_cell)


def _start_cell(info=None) -> None:
    _cell["earlier"] |= _cell["reads"]
    _cell["reads"].clear()
    _cell["functions"].clear()


def _end_cell(result=None) -> None:
    label = _cell_label()
    if not label or not label.startswith("tbl-") or (result is not None and not result.success):
        return
    entry = {"label": label, "functions": sorted(_cell["functions"]), **_origin(_cell["reads"])}
    entry["earlier_reads"] = _origin(_cell["earlier"] - _cell["reads"])["reads"]
    with _locked() as index:
        index["tables"][f"{entry['drawn_in']}/{label}"] = entry


def tables() -> dict[str, dict]:
    """The index's tables by ``<folder>/<label>`` ({} before any document was rendered)."""
    return files.read_json(index_path(), INDEX_FIX, default={}).get("tables", {})


def entries() -> dict[str, dict]:
    """The index's figures by name ({} before any figure was drawn)."""
    return files.read_json(index_path(), INDEX_FIX, default={"figures": {}})["figures"]


def _changed_reads(entry: dict) -> list[str]:
    root = config.paths().root
    return [f"{key} is missing" if not (root / key).exists() else f"{key} changed since it was drawn"
            for key, sha in entry["reads"].items() if not (root / key).exists() or files.sha256(root / key) != sha]


def stale_tables() -> dict[str, list[str]]:
    """Tables whose results changed since their document was rendered: ``{folder/label: [reasons]}``."""
    return {key: reasons for key, entry in tables().items()
            if (reasons := _changed_reads(entry) + _changed_reads({"reads": entry.get("earlier_reads", {})}))}


def stale() -> dict[str, list[str]]:
    """Figures no longer matching what they were drawn from: ``{name: [reasons]}``."""
    folder = config.paths().figures
    found: dict[str, list[str]] = {}
    indexed = entries()
    for name, entry in indexed.items():
        reasons = _changed_reads(entry)
        for file, sha in entry["files"].items():
            if not (folder / file).exists():
                reasons.append(f"{file} is missing")
            elif files.sha256(folder / file) != sha:
                reasons.append(f"{file} is not the file drawn")
        if reasons:
            found[name] = reasons
    listed = {file for entry in indexed.values() for file in entry["files"]}
    for path in sorted(folder.glob("*")) if folder.is_dir() else ():
        if path.suffix in FIGURE_SUFFIXES and path.name not in listed:
            found.setdefault(path.stem, []).append(f"{path.name} has no entry in {_relative(index_path())}")
    return found


def link_captions(markdown: str) -> str:
    """Link each figure's caption to its entry, where the document lists the entry (its anchor is in
    ``markdown``, put there by ``section``): ``![caption](file){#fig-x}`` gains "(where it comes from)"."""
    def linked(match: re.Match) -> str:
        caption, target, label = match[1], match[2], match[3]
        if f"{{#{ANCHOR_PREFIX}{label}}}" not in markdown:
            return match[0]
        return f"![{caption} ([where it comes from](#{ANCHOR_PREFIX}{label}))]({target}){{#{label}}}"

    return re.sub(r"!\[(.*?)\]\(([^)\s]*)\)\{#(fig-[^}\s]+)\}", linked, markdown, flags=re.S)


def _here() -> str | None:
    """The folder of the document being rendered (the kernel's working directory), relative to the root."""
    root = config.paths().root.resolve()
    return _relative(Path.cwd()) if Path.cwd().resolve().is_relative_to(root) else None


def anchor(name: str, entry: dict) -> str:
    """``source-<label>`` for a figure drawn by the document being rendered (its caption links
    there), ``source-<name>`` for the others (e.g. the report's, listed in the analysis)."""
    return ANCHOR_PREFIX + (entry["label"] if entry.get("label") and entry.get("drawn_in") == _here() else name)


def describe(name: str, entry: dict, code=lambda text: f"`{text}`") -> str:
    """One figure's provenance in a sentence (``code`` marks up file names, hashes and functions)."""
    commit = entry["commit"][:12] if entry["commit"] else "no git commit"
    if entry["uncommitted_changes"]:
        commit += " with uncommitted changes"
    reads = "; ".join(f"{code(key)} (SHA-256 {code(sha[:12])}…)" for key, sha in entry["reads"].items()) or "none"
    return (f"files {', '.join(code(f'report/figures/{file}') for file in entry['files'])}; drawn by "
            f"{code(str(entry['function']))} at commit {code(commit)} on {entry['drawn_at']}; results read: {reads}.")


def find(wanted: str) -> dict[str, dict]:
    """The entries of a figure given by name, label or file, or by a copy of its file anywhere (by SHA-256)."""
    path = Path(wanted)
    sha = files.sha256(path) if path.is_file() else None
    return {name: entry for name, entry in entries().items()
            if wanted in (name, entry.get("label"), *entry["files"]) or sha in entry["files"].values()}


def section() -> str:
    """The analysis's list of figures and what drew them, as Markdown (one entry per figure, each
    with the anchor its caption links to: see ``link_captions``)."""
    indexed = entries()
    if not indexed:
        return "No figure has been drawn yet: `make report` draws them and records where each comes from."
    out_of_date = stale()
    blocks, anchored = [], set()
    here = sorted(indexed, key=lambda name: indexed[name].get("drawn_in") != _here())  # this document's first
    for name in here:
        entry = indexed[name]
        target = anchor(name, entry)
        if target in anchored:  # a second figure drawn by the same cell: anchored by its own name
            target = ANCHOR_PREFIX + name
        anchored.add(target)
        drawn = f" (drawn by `{entry['drawn_in']}`)" if entry.get("drawn_in") != _here() else ""
        flag = f" (stale: {'; '.join(out_of_date[name])})" if name in out_of_date else ""
        title = f"{entry['label']}: {name}" if entry.get("label") else name
        blocks.append(f"[]{{#{target}}}**{title}**{drawn}{flag}\n: {describe(name, entry)}")
    return ("Every figure file in `report/figures/`, what drew it and from which results "
            f"(full hashes in `{_relative(index_path())}`; `filmgenre figures NAME` prints one, "
            "`filmgenre evaluate --check` names the stale ones).\n\n" + "\n\n".join(blocks)
            + "\n\n" + _tables_section())


def _tables_section() -> str:
    """The tables of the rendered documents: which function made each, from which results."""
    indexed, out_of_date = tables(), stale_tables()
    if not indexed:
        return "No table has been recorded yet: rendering a document records its `tbl-` cells."
    blocks = []
    for key, entry in sorted(indexed.items()):
        flag = f" (stale: {'; '.join(out_of_date[key])})" if key in out_of_date else ""
        made_by = ", ".join(f"`{name}`" for name in entry["functions"]) or "no table function"
        reads, earlier = (", ".join(f"`{file}` (`{sha[:12]}`…)" for file, sha in found.items()) or "none"
                          for found in (entry["reads"], entry.get("earlier_reads", {})))
        commit = entry["commit"][:12] if entry["commit"] else "no git commit"
        commit += " with uncommitted changes" if entry["uncommitted_changes"] else ""
        blocks.append(f"**{key}**{flag}\n: made by {made_by} at commit `{commit}` on {entry['drawn_at']}; "
                      f"results read by the cell: {reads}; read by the document before it: {earlier}.")
    return "Every table of the rendered documents (`<folder>/<label>`), and the results it was made from " \
        "(SHA-256 prefixes; a table may show values an earlier cell read).\n\n" \
        + "\n\n".join(blocks)
