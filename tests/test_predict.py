"""`filmgenre predict` with tiny models trained in a scratch project: a generated poster and an
overview, a film of the dataset by its Id, the fusion, the JSON output and every clear error."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import COLOURS, copy_project, poster_bytes, run_cli_measured, stand_in_caches
from filmgenre import cli, config, fusion, predict, rules

GENRES = config.GENRES


@pytest.fixture(scope="module")
def trained(tmp_path_factory, evaluated_tiny):
    """The spec CNN and LSTM trained for one epoch, evaluated (the session's evaluation, baselines
    included), and fused (rules and weight recorded)."""
    root = copy_project(evaluated_tiny[0], tmp_path_factory, "predict")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", root)
        fusion.fuse_best(log=lambda *_: None)
        yield root


@pytest.fixture
def horror_poster(tmp_path):
    path = tmp_path / "poster.jpg"
    path.write_bytes(poster_bytes(COLOURS["Horror"], "rgb", seed=3))
    return path


def metrics(root):
    return json.loads((root / "results" / "metrics.json").read_text())


def test_poster_and_overview_give_every_model_and_the_fusion(trained, horror_poster):
    result = predict.predict(poster=horror_poster, overview="A ghost, blood and a scream in the night.", top=4)
    rows = {row["model"]: row for row in result["predictions"]}
    assert list(rows) == ["cnn", "lstm", "fusion"] and result["skipped"] == {}
    recorded = metrics(trained)["models"]
    for name, row in rows.items():
        probabilities = np.array([row["probabilities"][g] for g in GENRES])
        assert ((probabilities >= 0) & (probabilities <= 1)).all()
        assert [t["genre"] for t in row["top"]] == [GENRES[g] for g in np.argsort(-probabilities, kind="stable")[:4]]
        assert row["rule"] == recorded[name]["rule"]
        chosen = rules.apply_rule(probabilities[None], row["rule"])[0]
        assert row["genres"] == [g for g, on in zip(GENRES, chosen) if on]
    members = recorded["fusion"]["fusion"]
    assert rows["fusion"]["members"] == {"poster": "cnn", "text": "lstm", "weight": members["weight"]}
    fused = members["weight"] * np.array([rows["cnn"]["probabilities"][g] for g in GENRES]) + (
        1 - members["weight"]) * np.array([rows["lstm"]["probabilities"][g] for g in GENRES])
    np.testing.assert_allclose([rows["fusion"]["probabilities"][g] for g in GENRES], fused, atol=1e-6)
    text = predict.format_text(result)
    assert "cnn" in text and "fusion" in text and f"top 4: {rows['lstm']['top'][0]['genre']}" in text


def test_a_film_of_the_dataset_gets_the_evaluations_probabilities_and_its_true_genres(trained):
    films = pd.read_csv(trained / "data" / "processed" / "films.csv", dtype={"Id": str})
    film = films[(films["split"] == "test") & (films["has_poster"] == 1)].iloc[0]
    result = predict.predict(film_id=film["Id"])
    assert result["true_genres"] == [g for g in GENRES if film[g]]
    assert result["inputs"]["overview"] == film["Overview"] and result["inputs"]["poster"].endswith(f"{film['Id']}.jpg")
    for row in result["predictions"][:2]:
        evaluated = pd.read_csv(trained / "results" / row["model"] / "predictions.csv", dtype={"Id": str})
        expected = evaluated[evaluated["Id"] == film["Id"]][GENRES].to_numpy()[0]
        np.testing.assert_allclose([row["probabilities"][g] for g in GENRES], expected, atol=2e-6)
    assert predict.format_text(result).startswith(f"Film {film['Id']}: true genres ")


def test_a_poster_alone_runs_the_poster_models_only(trained, horror_poster):
    result = predict.predict(poster=horror_poster, top=2)
    assert [row["model"] for row in result["predictions"]] == ["cnn"]
    assert result["skipped"] == {"lstm": "reads overviews; none given"}
    assert len(result["predictions"][0]["top"]) == 2


def test_json_output_parses(trained, capsys):
    assert cli.main(["predict", "--overview", "funny laugh silly", "--model", "lstm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [row["model"] for row in result["predictions"]] == ["lstm"]
    assert result["inputs"] == {"id": None, "poster": None, "overview": "funny laugh silly"}
    assert len(result["predictions"][0]["probabilities"]) == len(GENRES)


@pytest.mark.parametrize("arguments, message", [
    (dict(overview="a ghost", names=["poster_cnn"]), r"poster_cnn\.keras: not found\. Run `filmgenre train poster_cnn` first"),
    (dict(overview="   "), r"the overview is empty"),
    (dict(film_id="tt9999999"), r"tt9999999: no film with this Id"),
    (dict(), r"nothing to classify"),
    (dict(film_id="tt0000001", overview="a ghost"), r"either --id .* or --poster/--overview"),
    (dict(poster="no/such/poster.jpg"), r"no/such/poster\.jpg: no such file"),
    (dict(overview="a ghost", top=0), r"--top must be between 1 and 25"),
])
def test_clear_errors(trained, arguments, message):
    with pytest.raises(predict.PredictError, match=message):
        predict.predict(**arguments)


def test_an_undecodable_poster_is_named(trained, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not an image")
    with pytest.raises(predict.PredictError, match=r"broken\.jpg: not a readable image"):
        predict.predict(poster=broken, overview="a ghost")
    assert cli.main(["predict", "--poster", str(broken)]) == 2  # the CLI prints the error and exits 2
    assert capsys.readouterr().err == (f"error: {broken}: not a readable image (empty, damaged, or another kind "
                                       "of file). Pass a JPEG, PNG, GIF or BMP poster.\n")


def cut_short(flavour: str):
    def make(path):
        whole = poster_bytes(COLOURS["Drama"], flavour, seed=5)
        path.write_bytes(whole[:len(whole) // 2])  # the header reads, the pixels stop halfway
    return make


@pytest.mark.parametrize("make, message", [
    (cut_short("rgb"), r"damaged or cut short: its pixels cannot be decoded\. Pass an intact copy"),
    (cut_short("png"), r"damaged or cut short: its pixels cannot be decoded\. Pass an intact copy"),
    (lambda path: path.write_bytes(b""), r"not a readable image \(empty, damaged, or another kind of file\)\. Pass"),
    (lambda path: path.mkdir(), r"a folder, not a file\. Pass the path of a poster image"),
])
def test_every_poster_error_is_one_line_in_the_users_words(tmp_path, make, message):
    """Checked before any model loads, so no trained model is needed; TensorFlow's op text
    (``{{function_node ...}}``) never reaches the user."""
    path = tmp_path / "poster.jpg"
    make(path)
    with pytest.raises(predict.PredictError) as raised:
        predict.read_inputs(poster=path, overview="a ghost")
    text = str(raised.value)
    assert re.fullmatch(rf"{re.escape(str(path))}: {message}.*\.", text) and "\n" not in text
    assert "function_node" not in text and "{{" not in text


def test_an_oversized_poster_stops_predict_in_one_line_without_being_decoded(tmp_path, poster_bomb):
    root = tmp_path / "project"
    finished, peak_mib = run_cli_measured(["predict", "--poster", str(poster_bomb), "--overview", "a ghost"], root)
    assert finished.returncode == 2 and finished.stdout == ""
    # Exactly the one line: TensorFlow's start-up lines (printed by this process without
    # `quiet`: test_cli runs a command with --verbose) are filtered, the real message is kept
    # (quiet's check in a started command, paying TensorFlow's start-up once for both).
    assert finished.stderr == (f"error: {poster_bomb}: 20,000 x 20,000 pixels, over the limit of "
                               f"{config.MAX_POSTER_PIXELS:,} pixels for a poster (config.MAX_POSTER_PIXELS); not "
                               "decoded. Pass a smaller copy of the image (a few hundred pixels a side is plenty).\n")
    # TensorFlow loaded, the poster never decoded: below this one poster's 1,144 MiB as RGB
    # (decoding it first, as before, peaked at 2,008 MiB).
    assert peak_mib < 20_000 * 20_000 * 3 / 2**20


def test_no_trained_model_at_all(prepared):
    with pytest.raises(predict.PredictError, match=r"no trained model in .*models\. Run `filmgenre train NAME` first"):
        predict.predict(overview="a ghost")


def test_encoder_heads_predict_from_a_poster_file_and_a_new_overview(trainable, horror_poster):
    """The heads train on stand-in cache vectors; the new poster and overview, in no cache, go
    through the real encoders."""
    from filmgenre import train

    stand_in_caches()
    train.train("effnet_head", epochs=1, verbose=0)
    train.train("minilm_head", epochs=1, verbose=0)
    result = predict.predict(poster=horror_poster, overview="ghost blood")  # neither is in the caches
    assert [row["model"] for row in result["predictions"]] == ["effnet_head", "minilm_head"]
    assert [row["reads"] for row in result["predictions"]] == ["poster_features", "overview_features"]
    for row in result["predictions"]:
        assert row["rule"] is None  # not evaluated: no rule yet
        assert f"run `filmgenre evaluate {row['model']}`" in row["note"] and len(row["top"]) == 3
