"""What the subcommands do before the work: bad names refused with the choices, and the report's
inputs checked so that a gap is one line naming the file and the command that fills it."""

import pytest

from filmgenre import cli


@pytest.mark.parametrize("argv, named", [(["train", "resnet"], "unknown model 'resnet'"),
                                         (["seeds", "--models", "cnn", "resnet"], "unknown model 'resnet'"),
                                         (["predict", "--overview", "x", "--model", "resnet"], "unknown model 'resnet'"),
                                         (["bench", "--only", "speed"], "unknown bench section 'speed'")])
def test_an_unknown_name_is_refused_with_the_choices(argv, named, capsys):
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert named in error and "choose from" in error


def test_report_names_a_damaged_seeds_json_and_the_fix(project, capsys):
    import shutil

    from conftest import REPO

    shutil.copytree(REPO / "results", project / "results")
    seeds = project / "results" / "seeds.json"
    seeds.write_text(seeds.read_text()[:100])  # cut short
    assert cli.main(["report"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: results/seeds.json: not valid JSON") and error.count("\n") == 1
    assert "git checkout results/seeds.json" in error


def test_report_names_a_damaged_explain_summary_and_the_fix(project, capsys):
    import shutil

    from conftest import REPO

    shutil.copytree(REPO / "results", project / "results")
    summary = project / "results" / "explain" / "summary.json"
    summary.write_text(summary.read_text()[:50])  # cut short
    assert cli.main(["report"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: results/explain/summary.json: not valid JSON") and error.count("\n") == 1
    assert "git checkout results/explain/" in error and "rerun `filmgenre explain`" in error


@pytest.mark.parametrize("damaged", ["dataset.json", "cnn/train.json"])
def test_report_names_a_damaged_results_file_its_documents_read_in_one_line(damaged, project, capsys, monkeypatch):
    """Files the documents read are checked before the render (under Quarto a cell's error would be a
    traceback): one line that names the file and the fix."""
    import shutil

    from conftest import REPO

    for part in ("results", "report", "analysis", "_quarto.yml"):
        (shutil.copytree if (REPO / part).is_dir() else shutil.copy)(REPO / part, project / part)
    path = project / "results" / damaged
    path.write_text(path.read_text()[:60])  # cut short
    monkeypatch.setenv("FILMGENRE_ROOT", str(project))  # where the documents' kernels read from
    assert cli.main(["report", "--quarto", "never"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f": results/{damaged}: not valid JSON at line" in error
    assert f"`git checkout results/{damaged}`" in error
