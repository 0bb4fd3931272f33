"""The figure index: every figure file listed with what drew it; stale when a results file it read changes.

The drawings of ``figure_drawings`` save through ``plots.save`` like the report's, and that
module is watched like ``plots``: what each reads is credited to it. One real figure
(``plots.confusion``) shows the report's own functions are covered too. The labels and caption
links of a rendered document are checked on the analysis itself (``tests/test_report.py``).
"""

import shutil
import subprocess

import matplotlib.pyplot as plt
import pytest

import figure_drawings
from conftest import REPO
from filmgenre import cli, figure_index, files, plots, tables


@pytest.fixture
def drawn(project):
    """A scratch project (a git clone) with the committed results, and four figures drawn from them."""
    shutil.copytree(REPO / "results", project / "results")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-q",
                    "--allow-empty", "-m", "results"], cwd=project, check=True)
    for draw in (figure_drawings.split_counts, lambda: figure_drawings.losses("cnn"),
                 lambda: figure_drawings.losses("lstm"), lambda: plots.confusion("cnn")):
        plt.close(draw())
    return project


def _figure_files(project) -> set[str]:
    return {path.name for path in (project / "report" / "figures").iterdir() if path.suffix in (".png", ".pdf")}


def test_the_index_lists_every_figure_file_and_only_those_with_matching_hashes(drawn):
    index = figure_index.entries()
    assert {file for entry in index.values() for file in entry["files"]} == _figure_files(drawn)
    for entry in index.values():
        for file, sha in entry["files"].items():
            assert files.sha256(drawn / "report" / "figures" / file) == sha
        for key, sha in entry["reads"].items():
            assert files.sha256(drawn / key) == sha
    assert index["split_counts"]["reads"].keys() == {"results/dataset.json"}
    assert index["loss_cnn"]["reads"].keys() == {"results/cnn/history.csv"}
    assert index["loss_lstm"]["function"] == "figure_drawings.losses"
    assert "results/cnn/confusion_genres.csv" in index["confusion_cnn"]["reads"]
    assert index["confusion_cnn"]["function"] == "filmgenre.plots.confusion"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=drawn, capture_output=True, text=True).stdout.strip()
    assert {entry["commit"] for entry in index.values()} == {head}

    for file in ("loss_lstm.png", "loss_lstm.pdf"):
        (drawn / "report" / "figures" / file).unlink()
    assert figure_index.stale() == {"loss_lstm": ["loss_lstm.png is missing", "loss_lstm.pdf is missing"]}
    plt.close(figure_drawings.split_counts())  # the next save drops the entries of figures whose files are gone
    assert "loss_lstm" not in figure_index.entries()
    assert {file for entry in figure_index.entries().values() for file in entry["files"]} == _figure_files(drawn)
    shutil.copy(drawn / "report" / "figures" / "loss_cnn.png", drawn / "report" / "figures" / "older.png")
    assert figure_index.stale() == {"older": ["older.png has no entry in report/figures/index.json"]}


def test_changing_a_results_file_marks_only_the_figures_that_read_it_stale(drawn, capsys):
    assert figure_index.stale() == {}
    with open(drawn / "results" / "cnn" / "history.csv", "a") as history:
        history.write("\n")
    assert figure_index.stale() == {"loss_cnn": ["results/cnn/history.csv changed since it was drawn"]}
    (drawn / "results" / "dataset.json").unlink()
    assert figure_index.stale().keys() == {"loss_cnn", "split_counts"}

    assert cli.main(["evaluate", "--check"]) == 2
    flagged = [line for line in capsys.readouterr().out.splitlines() if line.startswith("figure ")]
    assert flagged == ["figure split_counts: stale (results/dataset.json is missing)",
                       "figure loss_cnn: stale (results/cnn/history.csv changed since it was drawn)"]


def test_a_copy_of_a_figure_file_is_found_by_its_hash(drawn, tmp_path, capsys):
    copy = tmp_path / "Figure 3.png"
    shutil.copy(drawn / "report" / "figures" / "loss_cnn.png", copy)
    assert cli.main(["figures", str(copy)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("loss_cnn (no label)\n") and "results/cnn/history.csv (SHA-256 " in out
    assert cli.main(["figures", "no_such_figure"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_section_anchors_every_entry_and_captions_link_only_to_listed_entries(drawn):
    section = figure_index.section()
    for name, entry in figure_index.entries().items():
        assert f"[]{{#source-{name}}}**{name}**" in section and entry["function"] in section
    document = "![Losses.](media/a.png){#fig-losses}\n\n![Other.](media/b.png){#fig-other}\n\n[]{#source-fig-losses}"
    linked = figure_index.link_captions(document)
    assert "![Losses. ([where it comes from](#source-fig-losses))](media/a.png){#fig-losses}" in linked
    assert "![Other.](media/b.png){#fig-other}" in linked


@pytest.fixture
def kernel(drawn, monkeypatch):
    """An in-process IPython shell standing in for a document's kernel, rendering from report/."""
    from IPython.core.interactiveshell import InteractiveShell

    (drawn / "report").mkdir(exist_ok=True)
    monkeypatch.chdir(drawn / "report")
    shell = InteractiveShell.instance()
    figure_index.record_tables(tables.__file__)
    yield shell
    shell.events.unregister("pre_run_cell", figure_index._start_cell)
    shell.events.unregister("post_run_cell", figure_index._end_cell)
    InteractiveShell.clear_instance()


def test_a_table_cell_is_entered_with_the_results_its_functions_read(kernel, drawn, capsys):
    def run(source: str):
        return kernel.run_cell(source, store_history=True)  # as a kernel runs a cell: In[-1] is its source

    assert run("#| label: setup\nfrom filmgenre import tables\ndata = tables.dataset()").success
    assert run("#| label: tbl-demo\ntables.training_summary(['cnn'])").success
    assert run("#| label: tbl-earlier\ndata['films']").success
    assert run("#| label: tbl-broken\nraise ValueError('no table')").error_in_exec
    demo, earlier = (figure_index.tables()[key] for key in ("report/tbl-demo", "report/tbl-earlier"))
    assert figure_index.tables().keys() == {"report/tbl-demo", "report/tbl-earlier"}
    sha = {name: files.sha256(drawn / "results" / name) for name in ("cnn/train.json", "dataset.json")}
    assert demo["functions"] == ["filmgenre.tables.training_summary"]
    assert demo["reads"] == {"results/cnn/train.json": sha["cnn/train.json"]}
    assert demo["earlier_reads"] == {"results/dataset.json": sha["dataset.json"]}
    assert earlier["functions"] == [] and earlier["reads"] == {}
    assert earlier["earlier_reads"] == {f"results/{name}": value for name, value in sha.items()}
    assert "**report/tbl-demo**" in figure_index.section() and figure_index.stale_tables() == {}

    with open(drawn / "results" / "cnn" / "train.json", "a") as train:
        train.write("\n")
    changed = ["results/cnn/train.json changed since it was drawn"]
    assert figure_index.stale_tables() == {"report/tbl-demo": changed, "report/tbl-earlier": changed}
    assert cli.main(["evaluate", "--check"]) == 2
    assert f"table report/tbl-demo: stale ({changed[0]})" in capsys.readouterr().out
