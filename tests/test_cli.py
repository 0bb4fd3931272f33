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
