"""The package's shape, as issue 20 asks it to stay: small modules, one module that knows what a
model reads, a report layer that reads results, not the study's code, and no private Keras import
without a test pinning the Keras versions it was checked on.

Static checks of the source (milliseconds, no TensorFlow): each is the evidence anyone can rerun,
and each fails as soon as a change breaks the rule, naming the module and the line.
"""

import ast
import re
from pathlib import Path

import pytest

from filmgenre import inputs, registry

PACKAGE = Path(registry.__file__).parent
TESTS = Path(__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))

# A module longer than this holds more than one job (or one job that wants splitting): issue 20.
MAX_LINES = 450


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def syntax(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("module", [pytest.param(path, id=relative(path)) for path in MODULES])
def test_no_module_is_over_450_lines(module):
    lines = len(module.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"src/filmgenre/{relative(module)}: {lines} lines, over {MAX_LINES}: split it along a seam"


# --------------------------------------------------------------------------- what a model reads
# ``ModelSpec.reads`` passed on (shown in a message, copied into a results entry, given as an
# argument) is fine anywhere; branching on it (compared, split, used as a key) belongs in ``inputs``.
PASSED_ON = (ast.FormattedValue, ast.keyword, ast.Dict, ast.Call, ast.Assign, ast.Return)
# The Makefile reads each model's prerequisites without importing ``inputs`` (0.04 against 0.7 CPU
# seconds on every `make`): ``registry.make_prerequisites`` names the kinds again, and
# test_the_makefiles_prerequisites_are_what_inputs_reads keeps the two in step.
DISPATCH_ELSEWHERE = {("registry.py", "make_prerequisites")}


def reads_dispatches(path: Path) -> list[tuple[str, int]]:
    """(function, line) of every use of a ``.reads`` attribute that is not merely passed on.
    ``Baseline.reads`` (``baselines.BASELINES[...]``, the baselines' own three kinds) is another field."""
    found = []

    def visit(node, function: str, parent):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if (isinstance(node, ast.Attribute) and node.attr == "reads" and not isinstance(parent, PASSED_ON)
                and "BASELINES" not in ast.unparse(node.value)):
            found.append((function, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function, node)

    visit(syntax(path), "", None)
    return found


def test_what_a_model_reads_is_dispatched_in_inputs_only():
    elsewhere = {(relative(path), function, line) for path in MODULES if path.name != "inputs.py"
                 for function, line in reads_dispatches(path)}
    stray = sorted((module, function, line) for module, function, line in elsewhere
                   if (module, function) not in DISPATCH_ELSEWHERE)
    assert stray == [], "branch on ModelSpec.reads in inputs.py only (call inputs.modality, is_vectors, load, ...): " + \
        ", ".join(f"src/filmgenre/{module}:{line} ({function})" for module, function, line in stray)
    assert {(module, function) for module, function, _ in elsewhere} == DISPATCH_ELSEWHERE  # no stale exception
    assert reads_dispatches(PACKAGE / "inputs.py")  # the check sees a dispatch where there is one


def test_the_makefiles_prerequisites_are_what_inputs_reads():
    for name, spec in registry.MODELS.items():
        expected = ([f"data/processed/{encoder}.encoded" for encoder in inputs.encoders_read(spec)]
                    if inputs.is_vectors(spec) else [f"data/processed/manifest_{spec.image_size}.json"])
        assert registry.make_prerequisites(spec) == expected, name


# --------------------------------------------------------------------------- the report layer
# What the report's documents and the modules they use may import from the package: readers of
# results/ and config, never the stages (evaluate, explain, seeds, fusion, uncertainty, registry,
# inputs, models...), whose constants the report would otherwise depend on.
# tables.py and the table modules split from it (NAME_tables.py), the figures, the figure index.
REPORT_LAYER = tuple(relative(path) for path in sorted(PACKAGE.glob("*tables.py"))) + ("plots.py", "figure_index.py")
DOCUMENTS = ("report/report.qmd", "analysis/analysis.qmd")
REPORT_MAY_IMPORT = {
    "config": "the study's constants (genres, paths, goals)",
    "files": "JSON and CSV reading",
    "figure_index": "where each figure and table came from",
    "tables": "the results as tables",
    "plots": "the figures",
    "gates": "read_table: results/<model>/gate_per_genre.csv",
    "leakage": "named_genres: which genre names a word list contains (a text rule: no model, no data)",
    "uncertainty": "cross_entropy: the training loss's formula, for the prior on dataset.json's counts (no model, no data)",
    "dataset": "plots: the cached posters of the occlusion figure, drawn only where the data is prepared",
    "posters": "plots: the original posters' header check, only where the dataset is on this machine",
    "rawdata": "plots: where the original posters are, only where the dataset is on this machine",
}


def package_imports(tree: ast.AST) -> set[str]:
    """The ``filmgenre`` modules a piece of code imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "filmgenre":
            if node.module == "filmgenre":
                found |= {alias.name for alias in node.names if alias.name[0].islower()}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("filmgenre.")}
    return found


def document_code(path: Path) -> ast.Module:
    """The Python cells of a Quarto document (where its imports are: an inline `{python}` expression has none)."""
    text = path.read_text(encoding="utf-8")
    cells = re.findall(r"^```\{python\}\n(.*?)^```", text, flags=re.M | re.S)
    return ast.parse("\n".join(cells))


def test_the_report_layer_imports_readers_of_results_only():
    root = PACKAGE.parents[1]
    imported = {module: package_imports(syntax(PACKAGE / module)) for module in REPORT_LAYER}
    imported |= {document: package_imports(document_code(root / document)) for document in DOCUMENTS}
    assert all(imported.values())  # each imports something: the scan reads what it should
    allowed = set(REPORT_MAY_IMPORT) | {Path(module).stem for module in REPORT_LAYER}  # each scanned itself
    unexpected = {where: sorted(names - allowed) for where, names in imported.items() if names - allowed}
    assert unexpected == {}, "the report reads results/ and config: write what it needs into results/"
    assert package_imports(ast.parse("from filmgenre import evaluate\nfrom filmgenre.explain import SUMMARY_FIX")) == {
        "evaluate", "explain"}


# --------------------------------------------------------------------------- Keras's private API
# Each module importing ``keras.src`` (which a Keras release may move) and the test that pins the
# Keras versions it was checked on.
PRIVATE_KERAS = {"models.py": ("test_models.py", "test_the_private_keras_step_loop_is_on_a_checked_version")}


def imports_private_keras(tree: ast.AST) -> bool:
    return any(isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras.src")
               or isinstance(node, ast.Import) and any(alias.name.startswith("keras.src") for alias in node.names)
               for node in ast.walk(tree))


def test_keras_src_is_imported_only_where_a_test_pins_the_keras_version():
    importing = {relative(path) for path in MODULES if imports_private_keras(syntax(path))}
    assert importing == set(PRIVATE_KERAS), "a keras.src import needs a test pinning the Keras range (PRIVATE_KERAS)"
    for test_file, test in PRIVATE_KERAS.values():
        assert test in {node.name for node in syntax(TESTS / test_file).body if isinstance(node, ast.FunctionDef)}
    assert imports_private_keras(ast.parse("import keras.src.ops")) and not imports_private_keras(ast.parse("import keras"))


# --------------------------------------------------------------------------- the Makefile
def test_no_file_a_stage_writes_is_deleted_when_make_is_interrupted():
    """Make deletes a target whose recipe was interrupted after writing it: results/metrics.json then
    lost the committed entries of the models `make all` does not retrain. Every file target of a
    stage (a recipe calling the CLI) must be .PRECIOUS (the stages write atomically)."""
    import fnmatch
    import subprocess

    database = subprocess.run(["make", "-p", "-n", "help"], cwd=PACKAGE.parents[1], capture_output=True, text=True).stdout
    precious = next(line for line in database.splitlines() if line.startswith(".PRECIOUS:")).split()[1:]
    phony = set(next(line for line in database.splitlines() if line.startswith(".PHONY:")).split()[1:])
    written = set()
    for rule in database.split("\n\n"):  # a rule: its target line, comments, its recipe
        target, _, rest = rule.strip().partition(":")
        if "$(FILMGENRE)" in rest and "/" in target and target not in phony:
            written.add(target.strip())
    assert {"results/metrics.json", "models/%.keras"} <= written
    unprotected = [t for t in written if not any(fnmatch.fnmatch(t, p.replace("%", "*")) for p in precious)]
    assert unprotected == []
