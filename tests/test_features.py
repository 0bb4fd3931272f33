import numpy as np
import pytest
import tensorflow as tf

from conftest import training_words
from filmgenre import config, dataset, features, inputs, registry


def test_poster_dataset_yields_unit_floats_and_labels(trainable):
    films = features.load_split("train", posters=True)
    batches = features.poster_dataset(films.posters, films.labels, batch_size=16, training=True)
    images, labels = next(iter(batches))
    assert images.shape == (16, 64, 64, 3) and images.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert labels.shape == (16, len(config.GENRES)) and labels.dtype == tf.float32
    assert sum(len(b[0]) for b in batches) == len(films.ids)


def test_evaluation_batches_keep_the_films_order(trainable):
    films = features.load_split("val", posters=True)
    labels = np.concatenate([b[1].numpy() for b in features.poster_dataset(films.posters, films.labels)])
    np.testing.assert_array_equal(labels, films.labels)
    texts = np.concatenate([b[0].numpy() for b in features.overview_dataset(films.overviews, films.labels)])
    assert [t.decode() for t in texts] == films.overviews.tolist()


def test_predicting_shortest_first_gives_each_film_its_own_probabilities(trained_tiny, monkeypatch):
    from filmgenre import artifacts

    monkeypatch.setattr(config, "ROOT", trained_tiny)
    model = artifacts.load_model("lstm", trained_tiny / "models" / "lstm.keras")
    # the saved model takes raw strings: its encoder and vocabulary (the training words') are inside
    assert model.get_layer("Encoder").get_vocabulary() == features.train_vocabulary()
    overviews = features.load_split("val").overviews
    assert len({len(text.split()) for text in overviews}) > 5  # the order really changes
    in_order = model.predict(tf.data.Dataset.from_tensor_slices(overviews).batch(16), verbose=0)
    assert np.ptp(in_order[:, 0]) > 1e-4  # films differ, so a mixed-up order would show
    np.testing.assert_allclose(features.predict_by_length(model, overviews, batch_size=16), in_order, rtol=0, atol=1e-6)
    assert features.predict_by_length(model, [], batch_size=16).shape == (0, len(config.GENRES))


def test_length_buckets_are_the_stated_word_count_ranges():
    """One overview of each length from 1 to 60 words, in batches larger than any bucket: each
    batch is one bucket of word counts [lower, upper) between the bounds 12, 16, 20, 24, 28, 32,
    40 and 48 (an overview of 12 words is in [12, 16)), and every film comes once."""
    overviews = np.array([" ".join(["word"] * n) for n in range(1, 61)])
    labels = np.zeros((60, len(config.GENRES)), np.float32)
    batches = features.overview_dataset(overviews, labels, batch_size=100, training=True)
    lengths = sorted(sorted(len(text.split()) for text in texts.numpy()) for texts, _ in batches)
    bounds = [1, 12, 16, 20, 24, 28, 32, 40, 48, 61]
    assert lengths == [list(range(low, high)) for low, high in zip(bounds[:-1], bounds[1:])]


def test_encoder_is_adapted_on_training_overviews_only(unseen_words):
    """Validation and test overviews here are words no training film has: none may enter the
    vocabulary, whether built for `filmgenre vocab` or inside a text model by `train`."""
    from filmgenre import train

    overviews = features.load_split("train").overviews
    train_words = training_words(overviews)
    encoder = features.text_encoder(overviews, max_tokens=50)
    vocabulary = encoder.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"] and len(vocabulary) <= 50
    assert set(vocabulary[2:]) <= train_words
    assert set(features.train_vocabulary()[2:]) == train_words  # all of them: the tiny set has < 10,000
    spec = registry.MODELS["lstm"]
    train_films, _, _ = train.build_datasets(spec, None, config.BATCH_SIZE, config.SEED)
    model = inputs.build(spec, train_films, jit_compile=False)
    assert model.get_layer("Encoder").get_vocabulary() == features.train_vocabulary()
    # Variable length by default (per-batch padding), fixed when asked.
    assert encoder(tf.constant(["a b", "a b c d e"])).shape[1] == 5
    fixed = features.text_encoder(overviews, max_tokens=50, sequence_length=64)
    assert fixed(tf.constant(["a b"])).shape == (1, 64)


@pytest.mark.parametrize("reads", ["poster_features", "overview_features"])
def test_feature_dataset_batches_encoder_vectors_in_order(reads):
    rng = np.random.default_rng(0)
    films = dataset.Films(ids=np.array([f"tt{i}" for i in range(10)]), overviews=np.array([""] * 10),
                           labels=rng.integers(0, 2, (10, len(config.GENRES))).astype(np.float32),
                           embeddings=rng.random((10, 1280)))
    batches = list(inputs.batches(registry.MODELS[{"poster_features": "effnet_head", "overview_features": "minilm_head"}[reads]], films, batch_size=4))
    assert [len(vectors) for vectors, _ in batches] == [4, 4, 2]
    assert batches[0][0].dtype == tf.float32 and batches[0][0].shape == (4, 1280)
    np.testing.assert_allclose(np.concatenate([v.numpy() for v, _ in batches]), films.embeddings, rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([l.numpy() for _, l in batches]), films.labels)
