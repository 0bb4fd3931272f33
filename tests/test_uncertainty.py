import json
import time

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from filmgenre import config, rules, scores, uncertainty


def _toy(films=300, genres=6, seed=0):
    """Labels with a rare genre and an empty one, and probabilities with ties (rounded)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((films, genres)) < [0.5, 0.3, 0.1, 0.03, 0.2, 0.0]).astype(np.int8)
    probabilities = np.round(np.clip(labels * 0.3 + rng.random((films, genres)) * 0.7, 0, 1), 2)
    return labels, probabilities


def test_resample_counts_draw_every_film_count_times_and_are_seeded():
    counts = uncertainty.resample_counts(50, resamples=20, seed=3)
    assert counts.shape == (20, 50) and counts.dtype == np.int32 and (counts.sum(axis=1) == 50).all()
    assert (counts.sum(axis=0) > 0).all()  # every film, the first and the last too, can be drawn
    np.testing.assert_array_equal(counts, uncertainty.resample_counts(50, resamples=20, seed=3))
    assert not np.array_equal(counts, uncertainty.resample_counts(50, resamples=20, seed=4))


def test_scores_at_the_identity_resample_are_sklearns():
    labels, probabilities = _toy()
    predicted = rules.apply_rule(probabilities, {"kind": "global", "threshold": 0.5})
    identity = np.ones((1, len(labels)), dtype=np.int32)
    present = labels.sum(axis=0) > 0
    f1 = uncertainty.f1_scores(labels, predicted, identity)
    assert f1["f1_micro"][0] == pytest.approx(f1_score(labels, predicted, average="micro"), abs=1e-12)
    assert f1["f1_macro"][0] == pytest.approx(
        f1_score(labels[:, present], predicted[:, present], average="macro", zero_division=0), abs=1e-12)
    assert uncertainty.macro_average_precision(labels, probabilities, identity)[0] == pytest.approx(
        average_precision_score(labels[:, present], probabilities[:, present], average="macro"), abs=1e-12)
    metrics = scores.compute_metrics(labels, predicted, probabilities, genres=list("abcdef"))
    assert f1["f1_macro"][0] == pytest.approx(metrics["f1_macro"], abs=1e-12)
    one = uncertainty.f1_scores(labels[:, :1], predicted[:, :1], identity)  # one genre: macro = micro
    assert one["f1_macro"][0] == one["f1_micro"][0] == pytest.approx(f1_score(labels[:, 0], predicted[:, 0]))
    assert uncertainty.macro_average_precision(labels[:, :1], probabilities[:, :1], identity)[0] == pytest.approx(
        average_precision_score(labels[:, 0], probabilities[:, 0]), abs=1e-12)


def test_a_resample_is_the_same_as_sklearn_with_film_weights():
    """A film drawn twice counts twice: the same as sklearn with that film's weight 2."""
    labels, probabilities = _toy(films=120, seed=1)
    labels[:, 5] = 0
    labels[7, 5] = 1  # a genre of one film, absent from some resamples, present once in others
    probabilities[:, 5] = np.linspace(0.9, 0.1, 120)
    labels[np.argmin(probabilities[:, 4]), 4] = 1  # the least probable film is a positive (last tie group)
    predicted = rules.apply_rule(probabilities, {"kind": "global", "threshold": 0.4})
    predicted[:, 3] = 0  # a genre never predicted: its F1 is 0, still in the macro average
    counts = uncertainty.resample_counts(len(labels), resamples=8, seed=0)
    assert (counts[:, 7] == 0).any() and (counts[:, 7] == 1).any()
    f1 = uncertainty.f1_scores(labels, predicted, counts)
    average_precision = uncertainty.macro_average_precision(labels, probabilities, counts)
    fixed = labels.sum(axis=0) > 0  # the genres macro-F1 averages, in every resample
    for row, weights in enumerate(counts):
        drawn = (labels * weights[:, None]).sum(axis=0) > 0
        assert f1["f1_micro"][row] == pytest.approx(
            f1_score(labels, predicted, average="micro", sample_weight=weights), abs=1e-12)
        assert f1["f1_macro"][row] == pytest.approx(f1_score(
            labels[:, fixed], predicted[:, fixed], average="macro", sample_weight=weights, zero_division=0),
            abs=1e-12)
        expected = np.mean([average_precision_score(labels[:, g], probabilities[:, g], sample_weight=weights)
                            for g in np.flatnonzero(drawn)])
        assert average_precision[row] == pytest.approx(expected, abs=1e-12)


def test_a_perfect_model_has_a_zero_width_interval():
    labels, _ = _toy()
    models = {"perfect": {"probabilities": labels.astype(float), "predicted": {"test": labels}}}
    resampled, about = uncertainty.bootstrap(labels, models, resamples=200)
    for metric in uncertainty.METRICS:
        assert uncertainty.interval(resampled["perfect"]["test"][metric]) == [1.0, 1.0]
    assert about["resamples"] == 200 and about["films"] == len(labels)


def test_identical_models_differ_by_exactly_zero_and_different_ones_measurably():
    labels, probabilities = _toy()
    good = rules.apply_rule(probabilities, {"kind": "global", "threshold": 0.5})
    models = {name: {"probabilities": probabilities, "predicted": {"test": good}} for name in ("a", "b")}
    models["noise"] = {"probabilities": np.random.default_rng(9).random(labels.shape),
                       "predicted": {"test": np.random.default_rng(9).integers(0, 2, labels.shape)}}
    resampled, _ = uncertainty.bootstrap(labels, models, resamples=300)
    same = uncertainty.difference(resampled["a"]["test"]["f1_micro"], resampled["b"]["test"]["f1_micro"], 0.0)
    assert same == {"difference": 0.0, "interval": [0.0, 0.0], "measurable": False}
    better = uncertainty.difference(resampled["a"]["test"]["f1_macro_fixed"],
                                    resampled["noise"]["test"]["f1_macro_fixed"], 0.31234567)
    assert better["measurable"] and better["interval"][0] > 0 and better["difference"] == 0.312346


def test_the_interval_covers_the_estimate_and_narrows_with_more_films():
    widths = []
    for films in (200, 2000):
        labels, probabilities = _toy(films=films, seed=2)
        predicted = rules.apply_rule(probabilities, {"kind": "global", "threshold": 0.5})
        resampled, _ = uncertainty.bootstrap(
            labels, {"m": {"probabilities": probabilities, "predicted": {"test": predicted}}}, resamples=300)
        low, high = uncertainty.interval(resampled["m"]["test"]["f1_micro"])
        assert low < f1_score(labels, predicted, average="micro") < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # about 1 / sqrt(10) as wide


def test_claims_cover_the_reports_comparisons_for_whatever_models_exist():
    entries = {name: {"kind": kind, "reads": reads} for name, kind, reads in [
        ("cnn", "model", "posters"), ("lstm", "model", "overviews"), ("glove_lstm", "model", "overviews"),
        ("new_encoder_head", "model", "overviews"), ("effnet_head", "model", "poster_features"),
        ("prior", "baseline", "labels"), ("tfidf_logreg", "baseline", "overviews"),
        ("poster_histogram", "baseline", "posters"), ("gmu", "model", "poster_features+overview_features")]}
    entries["fusion"] = {"kind": "derived", "reads": "posters+overviews",
                         "fusion": {"poster": "effnet_head", "text": "glove_lstm"}}
    assert uncertainty.claims(entries) == [
        ("cnn", "poster_histogram"), ("lstm", "tfidf_logreg"), ("cnn", "prior"), ("lstm", "prior"), ("lstm", "cnn"),
        ("glove_lstm", "lstm"),
        ("new_encoder_head", "lstm"), ("effnet_head", "cnn"), ("gmu", "fusion"), ("fusion", "effnet_head"),
        ("fusion", "glove_lstm"), ("glove_lstm", "cnn"), ("glove_lstm", "effnet_head")]  # the text member: every poster model
    assert uncertainty.modality_pairs(entries) == [("lstm", "cnn"), ("glove_lstm", "effnet_head")]
    without_cnn = {name: entry for name, entry in entries.items() if name != "cnn"}
    assert uncertainty.modality_pairs(without_cnn) == [("glove_lstm", "effnet_head")]
    del entries["poster_histogram"]
    assert ("cnn", "poster_histogram") not in uncertainty.claims(entries)


def test_a_bootstrap_interval_of_a_known_distribution_has_the_stated_level():
    """One genre, every film positive, the model right on half of 1,000 films: a resample drawing
    R right films has micro-F1 2R / (n + R), R ~ Binomial(1000, 0.5). So the 95 % interval is the
    F1 at R's 2.5th and 97.5th percentiles (469 and 531): [0.6385, 0.6937]; a 90 % one would be
    [0.6431, 0.6894]."""
    from scipy.stats import binom

    n = 1000
    labels = np.ones((n, 1), dtype=np.int8)
    predicted = (np.arange(n) % 2).astype(np.int8)[:, None]
    model = {"probabilities": predicted.astype(float), "predicted": {"test": predicted}}
    started = time.perf_counter()
    resampled, about = uncertainty.bootstrap(labels, {"m": model}, resamples=4000, seed=3)
    took = time.perf_counter() - started
    values = resampled["m"]["test"]["f1_micro"]
    np.testing.assert_array_equal(resampled["m"]["test"]["f1_macro_fixed"], values)  # one genre: macro = micro
    again, _ = uncertainty.bootstrap(labels, {"m": model}, resamples=4000, seed=3)
    np.testing.assert_array_equal(again["m"]["test"]["f1_micro"], values)  # seeded
    assert set(about) == {"resamples", "seed", "level", "films", "unit", "seconds"}
    assert {key: about[key] for key in ("resamples", "seed", "films", "unit")} == {
        "resamples": 4000, "seed": 3, "films": n, "unit": "test films, each with all its genres"}
    assert 0 < about["seconds"] <= took + 0.01 and about["seconds"] == round(about["seconds"], 2)
    low, high = uncertainty.interval(values)
    assert [low, high] == pytest.approx([2 * r / (n + r) for r in binom.ppf([0.025, 0.975], n, 0.5)], abs=0.0015)
    assert np.mean((values >= low) & (values <= high)) == pytest.approx(0.95, abs=0.005)
    assert about["level"] == 0.95
    assert uncertainty.interval(np.linspace(0, 1, 100_001)) == [0.025, 0.975]


def test_every_committed_interval_holds_its_point_estimate():
    metrics = json.loads((config.ROOT / "results" / "metrics.json").read_text())
    assert metrics["bootstrap"]["level"] == 0.95  # what the report and the README call them
    for name, entry in metrics["models"].items():
        for section in uncertainty.SECTIONS:
            for metric in uncertainty.METRICS:
                low, high = entry["intervals"][section][metric]
                assert low <= entry[section][metric] <= high, (name, section, metric)


def test_macro_scores_average_a_fixed_genre_set_even_where_a_resample_misses_a_genre():
    """A rare genre not drawn counts as F1 0 instead of dropping out of the average: otherwise
    the constant predictor's macro-F1 rises in every resample that misses a one-film genre."""
    labels = np.array([[1, 0], [1, 0], [1, 1], [0, 0]], dtype=np.int8)
    predicted = np.array([[1, 0]] * 4, dtype=np.int8)
    without_rare = np.array([[1, 1, 0, 2]])  # film 2, the only one of genre 1, not drawn
    f1 = uncertainty.f1_scores(labels, predicted, without_rare)
    assert f1["f1_macro"][0] == pytest.approx((2 * 2 / (2 * 2 + 2)) / 2)  # genre 0: tp 2, fp 2; genre 1: 0
    assert uncertainty.scored_genres(labels, min_films=2).tolist() == [0]
    assert uncertainty.f1_scores(labels, predicted, without_rare, genres=[0])["f1_macro"][0] == pytest.approx(2 / 3)


def test_the_top1_test_is_mcnemars_exact_test_on_the_discordant_films():
    from scipy.stats import binomtest

    right_a = np.array([True] * 30 + [False] * 12 + [True] * 50 + [False] * 8)
    right_b = np.array([False] * 30 + [True] * 12 + [True] * 50 + [False] * 8)
    found = uncertainty.top1_test(right_a, right_b, uncertainty.resample_counts(100, resamples=400))
    assert (found["only_a_right"], found["only_b_right"]) == (30, 12)
    assert found["mcnemar_p"] == pytest.approx(binomtest(12, 42, 0.5).pvalue, abs=1e-6) and found["mcnemar_p"] < 0.01
    assert found["share_right_difference"]["difference"] == pytest.approx(0.18)
    assert found["share_right_difference"]["measurable"]
    low, high = found["share_right_difference"]["interval"]
    assert 0.05 < low < 0.18 < high < 0.31  # shares of films: the difference of two proportions
    as_numbers = uncertainty.top1_test(right_a.astype(float), right_b.astype(float),
                                       uncertainty.resample_counts(100, resamples=400))
    assert as_numbers == found  # 0/1 numbers are read as right / wrong
    same = uncertainty.top1_test(right_a, right_a, uncertainty.resample_counts(100, resamples=50))
    assert same["mcnemar_p"] == 1.0 and not same["share_right_difference"]["measurable"]


def test_the_constant_prior_has_the_entropy_of_the_genre_rates_as_its_cross_entropy():
    labels, _ = _toy(films=400, seed=3)
    rates = labels.mean(axis=0)
    entropy = [-(r * np.log(r) + (1 - r) * np.log(1 - r)) if 0 < r < 1 else 0.0 for r in rates]
    assert uncertainty.cross_entropy(labels, np.tile(rates, (len(labels), 1))) == pytest.approx(
        np.mean(entropy), abs=1e-5)
    assert uncertainty.cross_entropy(labels, labels) < 1e-5  # a perfect model: clipped, not log(0)


def test_per_genre_calibration_sees_what_pooling_hides():
    """0.5 for every pair of an always-true and a never-true genre: pooled, half the pairs are
    true, a perfect reliability; per genre, every probability is 0.5 off."""
    labels = np.array([[1, 0]] * 50, dtype=np.int8)
    found = uncertainty.genre_calibration(labels, np.full(labels.shape, 0.5), np.array([0, 1]))
    assert found["ece_pooled"] == pytest.approx(0.0)
    assert found["ece_genre_mean"] == pytest.approx(0.5)


def test_a_rule_chosen_on_the_same_films_leaves_nothing_on_the_table():
    labels, probabilities = _toy(seed=4)
    rule, _ = rules.choose_rule(probabilities, labels)
    score = rules.micro_f1(labels, rules.apply_rule(probabilities, rule))
    assert uncertainty.rule_transfer(labels, probabilities, score)["gap"] == pytest.approx(0.0, abs=1e-6)
    assert uncertainty.rule_transfer(labels, probabilities, score - 0.05)["gap"] == pytest.approx(0.05, abs=1e-6)


def _model_and_genres():
    labels, probabilities = _toy()
    model = {"probabilities": probabilities,
             "predicted": {"test": rules.apply_rule(probabilities, {"kind": "global", "threshold": 0.5}),
                           "test_macro_rule": rules.apply_rule(probabilities, {"kind": "top_k", "k": 2})}}
    return labels, model, uncertainty.scored_genres(labels, min_films=20)  # the rare and the empty genre left out


def test_point_estimates_are_sklearns_scores_on_the_fixed_genres():
    labels, model, genres = _model_and_genres()
    assert genres.tolist() == [0, 1, 2, 4]
    found = uncertainty.point_estimates(labels, model, genres)
    probabilities = model["probabilities"]
    assert list(found) == ["test", "test_macro_rule"]
    for section, predicted in model["predicted"].items():
        scores = found[section]
        assert scores["f1_micro"] == pytest.approx(f1_score(labels, predicted, average="micro"), abs=1e-12)
        per_genre = f1_score(labels[:, genres], predicted[:, genres], average=None, zero_division=0)
        np.testing.assert_allclose(scores["f1_per_genre"], per_genre, atol=1e-12)
        assert scores["f1_macro_fixed"] == pytest.approx(per_genre.mean(), abs=1e-12)
        precision = [average_precision_score(labels[:, g], probabilities[:, g]) for g in genres]
        np.testing.assert_allclose(scores["average_precision_per_genre"], precision, atol=1e-12)
        assert scores["average_precision_macro_fixed"] == pytest.approx(np.mean(precision), abs=1e-12)


def test_the_bootstrap_scores_the_genres_it_is_given_on_its_seeded_resamples():
    labels, model, genres = _model_and_genres()
    resampled, about = uncertainty.bootstrap(labels, {"m": model}, resamples=40, seed=5, genres=genres)
    counts = uncertainty.resample_counts(len(labels), resamples=40, seed=5)
    assert about["seed"] == 5 and about["resamples"] == 40 and about["films"] == len(labels)
    assert isinstance(about["seconds"], float)
    precision = uncertainty.average_precisions(labels, model["probabilities"], counts, genres)
    assert precision.shape == (40, len(genres))
    np.testing.assert_allclose(uncertainty.macro_average_precision(labels, model["probabilities"], counts, genres),
                               np.nanmean(precision, axis=1), atol=1e-12)
    for section, predicted in model["predicted"].items():
        found, f1 = resampled["m"][section], uncertainty.f1_scores(labels, predicted, counts, genres)
        np.testing.assert_array_equal(found["f1_per_genre"], f1["f1_per_genre"])
        np.testing.assert_array_equal(found["f1_macro_fixed"], f1["f1_macro"])
        np.testing.assert_array_equal(found["average_precision_per_genre"], precision)
        np.testing.assert_array_equal(found["average_precision_macro_fixed"], np.nanmean(precision, axis=1))


def test_a_difference_has_the_level_it_is_asked_for():
    rng = np.random.default_rng(0)
    a, b = rng.random(500), rng.random(500)
    assert uncertainty.difference(a, b, 0.0, level=0.5)["interval"] == uncertainty.interval(a - b, level=0.5)
    assert uncertainty.difference(a, b, 0.0)["interval"] == uncertainty.interval(a - b, level=0.95)


def test_a_genre_without_positive_films_has_no_average_precision_and_the_next_one_still_has():
    labels, probabilities = _toy()
    found = uncertainty.average_precisions(labels, probabilities, uncertainty.identity(len(labels)), genres=[5, 0])
    assert np.isnan(found[0, 0])  # genre 5 has no positive film
    assert found[0, 1] == pytest.approx(average_precision_score(labels[:, 0], probabilities[:, 0]), abs=1e-12)
