import numpy as np
import pandas as pd
import pytest

from conftest import stand_in_caches
from filmgenre import FilmgenreError, config, gates


def test_per_genre_averages_the_gate_over_each_genres_films_and_units():
    gate = np.array([[0.9, 0.7], [0.2, 0.4], [0.6, 0.1]])
    labels = np.zeros((3, len(config.GENRES)), dtype=np.int8)
    labels[[0, 2], config.GENRES.index("Horror")] = 1
    labels[1, config.GENRES.index("Drama")] = 1
    table = gates.per_genre(gate, labels).set_index("genre")
    assert table.loc["Horror", "films"] == 2
    assert table.loc["Horror", "mean_gate"] == pytest.approx((0.9 + 0.7 + 0.6 + 0.1) / 4)
    assert table.loc["Horror", "poster_units"] == pytest.approx(3 / 4)  # 0.9, 0.7, 0.6 lean on the poster
    assert table.loc["Drama", "mean_gate"] == pytest.approx(0.3) and table.loc["Drama", "poster_units"] == 0
    assert table.loc["Western", "films"] == 0 and np.isnan(table.loc["Western", "mean_gate"])


def test_learned_fusions_train_on_both_caches_and_evaluate_writes_the_gmus_gate_table(trainable):
    from filmgenre import artifacts, evaluate, inputs, registry, explain_tables, train

    stand_in_caches()  # the fusion's test, not the encoders'
    for name in ("gmu", "concat_fusion"):
        summary = train.train(name, epochs=2, limit=96, verbose=0)
        assert summary["epochs_run"] == 2 and summary["training_films"] == 96
        model = artifacts.load_model(name, trainable / "models" / f"{name}-limit96.keras")
        assert model.input_shape == (None, 1280 + 384) and model.output_shape == (None, 25)
    films = inputs.load(registry.MODELS["gmu"], "train", limit=96)
    assert films.embeddings.shape == (96, 1664) and films.embeddings.dtype == np.float32
    one = inputs.one_film(registry.MODELS["gmu"], None, "an overview", films.ids[3], None, inputs.EncoderSource())
    np.testing.assert_array_equal(one, films.embeddings[3:4])  # `filmgenre predict` feeds the same vector

    metrics = evaluate.evaluate_all(["gmu-limit96", "concat_fusion-limit96"], log=lambda *_: None)
    assert metrics["models"]["gmu-limit96"]["reads"] == "poster_features+overview_features"
    table = gates.read_table("gmu-limit96")
    assert table["genre"].tolist() == config.GENRES
    shown = explain_tables.gate_per_genre("gmu-limit96")  # what the report reads: the genres with test films
    assert (shown["films"] > 0).all() and set(shown.index) < set(config.GENRES)
    assert shown["mean_gate"].between(0, 1).all() and shown["poster_units"].between(0, 1).all()
    test_labels = pd.read_csv(trainable / "results" / "gmu-limit96" / "predictions.csv").query("split == 'test'")
    assert table["films"].sum() > 0 and table["films"].sum() <= test_labels.shape[0] * len(config.GENRES)
    assert not gates.table_path("concat_fusion-limit96").exists()  # no gate, no table

    gates.table_path("gmu-limit96").write_text("genre,films\nDrama,3\n")
    with pytest.raises(FilmgenreError, match="gate_per_genre.csv: not a gate table"):
        gates.read_table("gmu-limit96")
