"""The command line's parser: help that lists what it should, built without loading TensorFlow."""

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
