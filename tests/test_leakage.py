"""Tests of filmgenre.leakage: finding and masking genre names, and re-scoring toy text models."""

import numpy as np
import pytest

from filmgenre import config, leakage

N_GENRES = len(config.GENRES)
DRAMA, HORROR = config.GENRES.index("Drama"), config.GENRES.index("Horror")


def test_a_genre_is_named_by_its_name_or_a_word_made_from_it_in_any_case():
    assert leakage.named_genres("A ROMANTIC evening turns horrific.") == {"Romance", "Horror"}
    assert leakage.named_genres("The comedic tale of a science  fiction writer's war.") == {"Comedy", "Sci-Fi", "War"}
    assert leakage.named_genres("A Sci-Fi epic about the family's dramatic past") == {"Sci-Fi", "Family", "Drama"}
    assert leakage.named_genres("A warm warden dramatises the musicality of crimea.") == set()


def test_masking_removes_every_genre_name_and_nothing_else():
    text = "A romantic comedy about crime, war and a ghost."
    masked = leakage.mask(text)
    assert masked == "A about , and a ghost."
    assert leakage.named_genres(masked) == set()
    assert leakage.mask("A ghost story.") == "A ghost story."


def test_naming_shares_count_a_films_own_genres_only():
    overviews = ["a horror tale", "a ghost tale", "a drama of horror", "a quiet tale"]
    labels = np.zeros((4, N_GENRES), dtype=np.int8)
    labels[[0, 1], HORROR] = 1
    labels[[2, 3], DRAMA] = 1
    found = leakage.naming(overviews, labels, min_films=1)
    assert found["own_genre"] == 0.5 and found["any_genre"] == 0.5 and found["pairs"] == 0.5
    assert found["per_genre"]["Horror"] == {"films": 2, "share": 0.5}
    assert found["per_genre"]["Drama"] == {"films": 2, "share": 0.5}


def keyed_on(word: str, genre: int):
    """A toy text model: ``genre`` is likely exactly when the overview holds ``word``."""
    def predict(texts):
        out = np.full((len(texts), N_GENRES), 0.05)
        out[:, genre] = [0.9 if word in t.lower().split() else 0.1 for t in texts]
        return out
    return predict


def test_masking_costs_a_model_that_reads_the_name_and_not_one_that_reads_the_story():
    rng = np.random.default_rng(0)
    horror = rng.random(60) < 0.5
    overviews = [("a horror story of a ghost" if h else "a story of a dog") for h in horror]
    labels = np.zeros((60, N_GENRES), dtype=np.int8)
    labels[horror, HORROR] = 1
    labels[~horror, DRAMA] = 1
    rule = {"kind": "global", "threshold": 0.5}
    poster = np.full((60, N_GENRES), 0.05)
    found = leakage.measure(overviews, labels, {"name": keyed_on("horror", HORROR), "story": keyed_on("ghost", HORROR)},
                            {"name": rule, "story": rule}, ("poster", poster, rule))
    assert found["naming"]["own_genre"] == pytest.approx(horror.mean(), abs=1e-4)
    assert found["masked"]["words_removed"] == horror.sum()
    name = found["differences"]["name/masked_vs_name/original"]["f1_micro"]
    story = found["differences"]["story/masked_vs_story/original"]["f1_micro"]
    assert name["difference"] < -0.5 and name["measurable"]
    assert story["difference"] == 0 and story["interval"] == [0, 0] and not story["measurable"]
    assert found["scores"]["story/masked"] == found["scores"]["story/original"]
    gap = found["differences"]["name/original_vs_poster"]["f1_micro"]["difference"]
    assert gap == pytest.approx(found["scores"]["name/original"]["f1_micro"] - found["scores"]["poster"]["f1_micro"],
                                abs=1e-6)
