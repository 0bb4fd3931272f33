"""Files read back are checked: a corrupt model or results file stops with one line that names the
file and the command that rebuilds it, never a traceback."""

import json
import zipfile

import pytest

from filmgenre import artifacts, cli, config


def test_a_corrupt_model_names_the_file_and_the_training_command(project):
    models = project / "models"
    models.mkdir()
    (models / "cnn.keras").write_bytes(b"\x00garbage, not a zip archive")
    with pytest.raises(artifacts.ArtifactError, match=r"^models/cnn\.keras: not a Keras model file .*`filmgenre train cnn`"):
        artifacts.load_model("cnn")
    with zipfile.ZipFile(models / "lstm.keras", "w") as bundle:  # a zip, but no model inside
        bundle.writestr("config.json", "{not json")
    with pytest.raises(artifacts.ArtifactError, match=r"^models/lstm\.keras: not a readable Keras model .*`filmgenre train lstm`"):
        artifacts.load_model("lstm")


def test_a_model_of_another_output_width_names_the_file_and_the_training_command(project):
    import keras

    (project / "models").mkdir()
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="sigmoid")])
    other.save(project / "models" / "cnn.keras")
    with pytest.raises(artifacts.ArtifactError) as raised:
        artifacts.load_model("cnn")
    assert str(raised.value) == ("models/cnn.keras: outputs (3,), not one probability for each of the 25 genres. "
                                 "Retrain it: `filmgenre train cnn` (or `make all`).")


def test_a_truncated_model_stops_predict_with_one_line(trained_tiny, tmp_path_factory, capsys):
    from conftest import copy_project

    root = copy_project(trained_tiny, tmp_path_factory, "truncated")
    model = root / "models" / "lstm.keras"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", root)
        assert cli.main(["predict", "--overview", "a ghost story", "--model", "lstm"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: models/lstm.keras: ") and "`filmgenre train lstm`" in error and "\n" not in error


@pytest.mark.parametrize("content, problem", [("{\"models\": {\"cnn\": ", "not valid JSON at line 1"),
                                              ("[1, 2]", "a JSON list, not an object"),
                                              ('{"models": {"cnn": {"kind": "model"}}}', "entry 'cnn' has no 'reads'")])
def test_a_corrupt_metrics_json_names_the_file_and_the_fix(project, content, problem, capsys):
    (project / "results").mkdir()
    config.paths().metrics.write_text(content)
    with pytest.raises(artifacts.ArtifactError) as raised:
        artifacts.read_metrics()
    message = str(raised.value)
    assert message.startswith("results/metrics.json: ") and problem in message
    # evaluate reads the file it rewrites: the fix must not send the user back to the command that stops on it
    assert "git checkout results/metrics.json" in message and "delete it and rerun `filmgenre evaluate`" in message
    for command in (["evaluate"], ["evaluate", "--check"], ["evaluate", "--from-predictions"], ["report"]):  # each stops on it
        assert cli.main(command) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("error: results/metrics.json: ") and "\n" not in error


def test_a_missing_metrics_json_is_empty_or_says_which_stage_writes_it(project):
    assert artifacts.read_metrics() == {}
    with pytest.raises(artifacts.ArtifactError, match=r"results/metrics\.json: not found\. Run `filmgenre evaluate`"):
        artifacts.read_metrics(required=True)


def test_a_valid_metrics_json_reads_back_unchanged(project):
    entry = {"kind": "model", "reads": "posters", "rule": {"kind": "top_k", "k": 1},
             "val": {"f1_micro": 0.5}, "test": {"f1_micro": 0.4}}
    (project / "results").mkdir()
    config.paths().metrics.write_text(json.dumps({"models": {"cnn": entry}}))
    assert artifacts.read_metrics() == {"models": {"cnn": entry}}


def test_a_model_with_our_own_layers_loads_in_a_fresh_process(trained_tiny):
    """The LSTM's layer is ours (models.LSTM): loading must register it, whatever else the process imported."""
    import subprocess
    import sys

    script = ("import sys\nfrom filmgenre import artifacts\n"
              f"print(artifacts.load_model('lstm', {str(trained_tiny / 'models' / 'lstm.keras')!r}).output_shape)")
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip().endswith("(None, 25)")
