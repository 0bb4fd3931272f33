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


def test_tensorflows_startup_lines_are_dropped_unless_verbose_brings_them_back(tmp_path):
    """Run as a command (``argv`` None), ``main`` filters TensorFlow's start-up lines; ``--verbose`` shows them.
    `train` imports TensorFlow before it finds no prepared data (an empty project): its error shows.
    The same without ``--verbose`` (the filter on) is test_predict's oversized-poster test: `filmgenre
    predict` loads TensorFlow and its standard error is exactly its one error line (one fresh
    TensorFlow process for each half, not two here)."""
    import os

    from filmgenre import quiet

    script = "import sys\nfrom filmgenre.cli import main\nsys.argv[0] = 'filmgenre'\nsys.exit(main())"
    finished = subprocess.run([sys.executable, "-c", script, "--verbose", "train", "cnn"], capture_output=True,
                              timeout=300, env=os.environ | {"FILMGENRE_ROOT": str(tmp_path)})
    assert finished.returncode == 2
    lines = finished.stderr.splitlines(keepends=True)
    assert lines[-1].startswith(b"error: ") and b"data/processed/films.csv: not found" in lines[-1]
    assert [line for line in lines if not quiet.keep(line)] != []


def test_help_that_loads_tensorflow_shows_none_of_its_startup_lines():
    """`filmgenre bench --help` lists the bench's sections, which imports TensorFlow: run as a
    command, its standard error stays empty (the filter starts before the arguments are parsed)."""
    script = "import sys\nfrom filmgenre.cli import main\nsys.argv[0] = 'filmgenre'\nsys.exit(main())"
    finished = subprocess.run([sys.executable, "-c", script, "bench", "--help"], capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0
    assert "sentence_encoder" in finished.stdout
    assert finished.stderr == ""
