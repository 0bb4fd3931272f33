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
