"""Execute a parsed Quarto document as Quarto does: a notebook whose cells are the document's
python cells (plus hidden cells for the inline expressions), run by nbclient in the document's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from filmgenre.preview.qmd import ANSI_ESCAPE, QmdCell, QmdDocument, RenderError, inline_expressions

# --------------------------------------------------------------------------- execution

_SETUP_CODE = """\
def _filmgenre_setup(width, height, dpi, formats):
    try:
        import matplotlib
    except ImportError:
        return
    get_ipython().run_line_magic("matplotlib", "inline")  # first: activating it resets rcParams
    get_ipython().run_line_magic("config", f"InlineBackend.figure_formats = {formats!r}")
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


def cell_options(cell: QmdCell, meta: dict) -> dict:
    """A cell's execution options: the ``execute:`` defaults, overridden by its ``#|`` lines."""
    return {**(meta.get("execute") or {}), **cell.options}


def build_notebook(doc: QmdDocument, meta: dict, figure_formats=("png",)):
    """The notebook nbclient executes: a hidden setup cell, then the document's cells.

    The setup has every figure drawn in each of ``figure_formats`` (the inline backend's names:
    png, svg, jpeg), one per output format's ``fig-format``. Each markdown cell with inline
    expressions is preceded by a code cell evaluating them, so they see the state of the code
    above. ``metadata.filmgenre`` maps cells back."""
    import nbformat

    def cell(role: str, new, source: str, **info):
        made = new(source)
        made.metadata["filmgenre"] = {"role": role, **info}
        nb.cells.append(made)
        return made

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    size = (float(meta.get("fig-width") or 7), float(meta.get("fig-height") or 5), int(meta.get("fig-dpi") or 150))
    cell("setup", nbformat.v4.new_code_cell, _SETUP_CODE + f"_filmgenre_setup{(*size, list(figure_formats))!r}")
    for index, qmd_cell in enumerate(doc.cells):
        where = {"cell": index, "line": qmd_cell.line}
        if qmd_cell.kind == "markdown":
            if expressions := inline_expressions(qmd_cell.source):
                cell("inline", nbformat.v4.new_code_cell, f"_filmgenre_inline({expressions!r})", **where)
            cell("markdown", nbformat.v4.new_markdown_cell, qmd_cell.source, **where)
            continue
        options = cell_options(qmd_cell, meta)
        if options.get("eval") is False:
            continue
        code = cell("code", nbformat.v4.new_code_cell, qmd_cell.source, label=qmd_cell.label, **where)
        if options.get("error"):  # nbclient's own tag for cells allowed to raise
            code.metadata["tags"] = ["raises-exception"]
    return nb


# The study's errors whose message is the whole story (a damaged or missing results file named with the
# command that fixes it, ``files.ArtifactError``): shown as that one line, without the kernel's traceback.
ONE_LINE_ERRORS = ("ArtifactError",)


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
            client.execute()  # a client given its kernel manager does not shut the kernel down
        except Exception as exc:  # CellExecutionError, timeouts, dead kernels
            info = running.get("info", {})
            label, line = info.get("label"), info.get("line")
            where = f"{info.get('role', 'setup')} cell" + (f" {label!r}" if label else "")
            where += f" at line {line}" if line else ""
            ename, evalue = getattr(exc, "ename", type(exc).__name__), ANSI_ESCAPE.sub("", str(getattr(exc, "evalue", exc)))
            if ename in ONE_LINE_ERRORS:
                raise RenderError(f"{document}: {where}: {evalue}", cell=label or (f"line {line}" if line else None),
                                  ename=ename) from exc
            raise RenderError(f"{document}: {where} raised {ename}: {evalue}\n\n{ANSI_ESCAPE.sub('', str(exc)).strip()}",
                              cell=label or (f"line {line}" if line else None), ename=ename) from exc
        finally:
            if kernel.has_kernel:  # else it runs on until this process exits, its CPU time uncounted
                kernel.shutdown_kernel(now=True)
    return nb
