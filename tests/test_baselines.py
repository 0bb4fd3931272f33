"""Baselines: the prior is the same for everyone, TF-IDF finds the planted words, the poster
histogram reads colours; all fitted on the training split of the tiny dataset."""

import numpy as np
import pytest

from conftest import COLOURS, WORDS, training_words
from filmgenre import baselines, config, predictions, rules
from filmgenre.dataset import Films

GENRES = config.GENRES
PLANTED = [GENRES.index(g) for g in COLOURS]  # the four genres of the tiny dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, trainable_zip):
    """Training films and evaluation films (val, test) of the 240-film dataset."""
    from filmgenre import dataset

    root = tmp_path_factory.mktemp("baselines")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", root)
        dataset.prepare(trainable_zip, progress=False, log=lambda *_: None)
        yield {
            "train": baselines.training_films("prior"),
            "train_posters": baselines.training_films("poster_histogram"),
            "val": predictions.evaluation_films("val"),
            "test": predictions.evaluation_films("test"),
        }


def films_of(overviews=None, posters=None) -> Films:
    n = len(overviews) if overviews is not None else len(posters)
    return Films(ids=np.array([f"x{i}" for i in range(n)]), overviews=np.array(overviews or [""] * n),
                 labels=np.zeros((n, len(GENRES)), np.float32), posters=posters)


def val_micro_f1(probabilities, val):
    """Micro-F1 on validation under the rule chosen on validation (as `evaluate` does)."""
    rule, _ = rules.choose_rule(probabilities, val.labels)
    return rules.micro_f1(val.labels, rules.apply_rule(probabilities, rule))


def test_registry_names_what_each_baseline_reads():
    assert set(baselines.BASELINES) == {"prior", "tfidf_logreg", "poster_histogram"}
    assert {b.reads for b in baselines.BASELINES.values()} == {"labels", "overviews", "posters"}
    assert all(b.description for b in baselines.BASELINES.values())


def test_prior_gives_every_film_the_training_frequencies(tiny):
    val, test = baselines.run("prior", [tiny["val"], tiny["test"]], train=tiny["train"])
    assert val.shape == (len(tiny["val"].ids), 25) and test.shape == (len(tiny["test"].ids), 25)
    assert (val == val[0]).all() and (test == val[0]).all()
    np.testing.assert_allclose(val[0], tiny["train"].labels.mean(axis=0))
    # The chosen rule predicts the same genres for everyone: the most frequent ones.
    rule, _ = rules.choose_rule(val, tiny["val"].labels)
    predicted = rules.apply_rule(val, rule)
    assert (predicted == predicted[0]).all() and predicted[0].sum() >= 1
    assert predicted[0, np.argmax(val[0])] == 1


def test_tfidf_learns_the_planted_words_and_beats_the_prior(tiny):
    probe = films_of([WORDS[g] for g in COLOURS])  # one overview of each genre's own words
    val, test, planted = baselines.run("tfidf_logreg", [tiny["val"], tiny["test"], probe], train=tiny["train"])
    assert val.shape == (len(tiny["val"].ids), 25) and test.shape == (len(tiny["test"].ids), 25)
    assert ((val >= 0) & (val <= 1)).all()
    assert [GENRES[g] for g in planted.argmax(axis=1)] == list(COLOURS)
    # Genres never seen in training are predicted 0, not an error.
    absent = [g for g in range(25) if g not in PLANTED]
    assert (val[:, absent] == 0).all()
    prior_val, = baselines.run("prior", [tiny["val"]], train=tiny["train"])
    assert val_micro_f1(val, tiny["val"]) > val_micro_f1(prior_val, tiny["val"]) + 0.2


def test_poster_features_measure_colour():
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    black = np.zeros((1, 8, 8, 3), np.uint8)
    features = baselines.poster_features(np.concatenate([red, black]), bins=16)
    assert features.shape == (2, 3 * 16 + 18) and np.isfinite(features).all()
    hue, saturation, value = features[:, :16], features[:, 16:32], features[:, 32:48]
    assert hue[0, 0] == 1.0 and saturation[0, 15] == 1.0 and value[0, 15] == 1.0  # pure red
    assert value[1, 0] == 1.0 and saturation[1, 0] == 1.0  # black
    stats = features[:, 48:]
    assert stats[0, :3].tolist() == [1.0, 0.0, 0.0]  # mean R, G, B
    assert stats[1, 10] == 1.0 and stats[1, 11] == 0.0  # all dark, none bright


def test_poster_histogram_reads_the_genre_tints(tiny):
    size = config.IMAGE_SIZE
    probe = np.stack([np.full((size, size, 3), COLOURS[g], np.uint8) for g in COLOURS])
    val, test, tinted = baselines.run("poster_histogram", [tiny["val"], tiny["test"], films_of(posters=probe)],
                                      train=tiny["train_posters"])
    assert val.shape == (len(tiny["val"].ids), 25) and test.shape == (len(tiny["test"].ids), 25)
    assert ((test >= 0) & (test <= 1)).all() and not (test == test[0]).all()
    assert (val[:, [g for g in range(25) if g not in PLANTED]] == 0).all()
    assert [GENRES[PLANTED[i]] for i in tinted[:, PLANTED].argmax(axis=1)] == list(COLOURS)
    prior_val, = baselines.run("prior", [tiny["val"]], train=tiny["train"])
    assert val_micro_f1(val, tiny["val"]) > val_micro_f1(prior_val, tiny["val"])


def test_the_tfidf_vocabulary_is_the_training_films_words(unseen_words, monkeypatch):
    """Validation and test overviews here are words no training film has: none may be a TF-IDF
    term of any vectorizer the baseline fits while it predicts them."""
    from sklearn.feature_extraction import text

    from filmgenre import features

    fitted = []

    class Recorded(text.TfidfVectorizer):
        def fit(self, raw_documents, y=None):
            fitted.append(self)
            return super().fit(raw_documents, y)

        def fit_transform(self, raw_documents, y=None):
            fitted.append(self)
            return super().fit_transform(raw_documents, y)

    monkeypatch.setattr(text, "TfidfVectorizer", Recorded)
    baselines.run("tfidf_logreg", [features.load_split("val"), features.load_split("test")])
    words = training_words(features.load_split("train").overviews)
    terms = {word for vectorizer in fitted for term in vectorizer.get_feature_names_out() for word in term.split()}
    assert fitted and terms and terms <= words
