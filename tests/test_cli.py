"""The command line: help that lists what it should without loading TensorFlow, clear errors for bad names."""

import subprocess
import sys

import pytest

from filmgenre import cli


def test_building_the_parser_loads_no_tensorflow():
    script = "import sys\nfrom filmgenre import cli\ncli.build_parser()\nprint('tensorflow' in sys.modules, 'keras' in sys.modules)"
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("command, listed", [("train", ["cnn", "lstm", "minilm_head"]),
                                             ("bench", ["poster_pipeline", "xla", "sentence_encoder"])])
def test_help_lists_the_models_or_sections(command, listed, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in listed)


@pytest.mark.parametrize("argv, named", [(["train", "resnet"], "unknown model 'resnet'"),
                                         (["seeds", "--models", "cnn", "resnet"], "unknown model 'resnet'"),
                                         (["predict", "--overview", "x", "--model", "resnet"], "unknown model 'resnet'"),
                                         (["bench", "--only", "speed"], "unknown bench section 'speed'")])
def test_an_unknown_name_is_refused_with_the_choices(argv, named, capsys):
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert named in error and "choose from" in error


def test_report_names_a_fusion_member_without_seed_runs_and_the_command_that_makes_them(project, capsys):
    """A model just added to the registry can become a fusion member before it has other-seed runs."""
    import json
    import shutil

    from conftest import REPO

    shutil.copytree(REPO / "results", project / "results")
    seeds = json.loads((project / "results" / "seeds.json").read_text())
    text = json.loads((project / "results" / "metrics.json").read_text())["models"]["fusion"]["fusion"]["text"]
    del seeds["models"][text]
    (project / "results" / "seeds.json").write_text(json.dumps(seeds))
    assert cli.main(["report"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "seeds.json" in error and f"filmgenre seeds --models {text}" in error
