"""The probes on test doubles: models whose evidence (occlusion, ablations, words, calibration) we know in advance."""

import numpy as np
import pytest

from filmgenre import baselines, config, probes
from filmgenre.dataset import Films

N_GENRES = len(config.GENRES)
DRAMA, HORROR = config.GENRES.index("Drama"), config.GENRES.index("Horror")


def colour_only(images):
    """Sees the colour histogram only: its probabilities depend on the share of reddish pixels."""
    red = (np.asarray(images)[..., 0] > 128).mean(axis=(1, 2))
    out = np.full((len(images), N_GENRES), 0.1)
    out[:, DRAMA] = red
    return out


def top_left_only(images):
    """Looks only at the brightness of the top-left 8 x 8 pixels."""
    out = np.full((len(images), N_GENRES), 0.1)
    out[:, DRAMA] = np.asarray(images)[:, :8, :8].mean(axis=(1, 2, 3)) / 255
    return out


def tiled_poster(size=64, period=8, seed=0):
    """A random 8 x 8 tile repeated: every occluded square covers the same colours."""
    tile = np.random.default_rng(seed).integers(0, 256, (period, period, 3), dtype=np.uint8)
    return np.tile(tile, (size // period, size // period, 1))[None]


def test_the_occlusion_map_of_a_colour_only_model_is_flat():
    maps = probes.occlusion_maps(colour_only, tiled_poster(), [DRAMA])
    assert maps.shape == (1, 64, 64)
    assert np.ptp(maps) < 1e-9


def mean_red(images):
    """Drama's probability is the mean red of the poster: every pixel counts alike."""
    out = np.full((len(images), N_GENRES), 0.1)
    out[:, DRAMA] = np.asarray(images, dtype=np.float64)[..., 0].mean(axis=(1, 2)) / 255
    return out


def test_occluding_a_two_coloured_poster_with_its_mean_colour_gives_the_hand_computed_map():
    """An 8 x 8 poster, red 200 in its left half and 0 in its right: its mean colour is (100, 0, 0).
    The 2 x 2 squares (step 1) at columns 0-2 lie in the red half: filled with the mean they lower
    the mean red by 4 x 100 / 64, a drop d = 400 / (64 x 255); the square at column 3 straddles
    both halves (no change); those at 4-6 raise it (drop -d). A pixel averages the squares covering
    it, so each row of the map is d x [1, 1, 1, 1/2, -1/2, -1, -1, -1]."""
    poster = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    poster[0, :, :4, 0] = 200
    maps = probes.occlusion_maps(mean_red, poster, [DRAMA])
    d = 400 / (64 * 255)
    expected = np.tile(d * np.array([1, 1, 1, 0.5, -0.5, -1, -1, -1]), (8, 1))
    np.testing.assert_allclose(maps[0], expected, rtol=0, atol=1e-12)


def test_the_occlusion_map_of_a_model_looking_at_one_corner_peaks_there():
    maps = probes.occlusion_maps(top_left_only, tiled_poster(), [DRAMA])[0]
    assert np.abs(maps[:8, :8]).mean() > 10 * np.abs(maps[32:, 32:]).mean()
    regions = probes.region_means(maps[None], regions=8)
    assert regions.shape == (8, 8) and np.unravel_index(np.abs(regions).argmax(), regions.shape) == (0, 0)


def test_shuffling_keeps_the_colour_histogram_and_grayscale_removes_hue():
    images = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    mixed = probes.shuffled(images)
    assert not np.array_equal(mixed, images)
    for before, after in zip(images, mixed):
        assert sorted(map(tuple, before.reshape(-1, 3))) == sorted(map(tuple, after.reshape(-1, 3)))
    gray = probes.grayscale(images)
    assert gray.dtype == np.uint8 and (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_grayscale_of_pure_red_green_and_blue_is_their_bt601_luma():
    """0.299 R + 0.587 G + 0.114 B: pure red 76.2 -> 76, green 149.7 -> 150, blue 29.1 -> 29 (of 255)."""
    primaries = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]]], dtype=np.uint8)
    gray = probes.grayscale(primaries)
    assert gray[0, 0, :, 0].tolist() == [76, 150, 29, 255]


def test_a_colour_only_model_scores_the_same_on_shuffled_posters():
    images = np.random.default_rng(2).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    labels = np.zeros((40, N_GENRES), dtype=np.int8)
    labels[(images[..., 0] > 128).mean(axis=(1, 2)) > 0.5, DRAMA] = 1
    rows = probes.ablation_scores(colour_only, images, labels, {"kind": "global", "threshold": 0.5})
    scores = {row["posters"]: row["micro-F1"] for row in rows}
    assert list(scores) == list(probes.ABLATIONS)
    assert scores["shuffled"] == scores["original"]


def test_ablation_margins_over_a_reference_are_paired_differences_of_the_scores():
    images = np.random.default_rng(4).integers(0, 256, (80, 16, 16, 3), dtype=np.uint8)
    labels = np.zeros((80, N_GENRES), dtype=np.int8)
    labels[(images[..., 0] > 128).mean(axis=(1, 2)) > 0.5, DRAMA] = 1
    labels[:, HORROR] = np.arange(80) % 2  # a genre the poster tells nothing about
    constant = np.full((80, N_GENRES), 0.3)
    rows = probes.ablation_scores(colour_only, images, labels, {"kind": "global", "threshold": 0.5},
                                   ("prior", constant, {"kind": "global", "threshold": 0.2}))
    by_kind = {row["posters"]: row for row in rows}
    assert by_kind["shuffled"]["macro-AP margin"] == by_kind["original"]["macro-AP margin"] > 0
    for row in rows:
        assert row["micro-F1 margin low"] <= row["micro-F1 margin"] <= row["micro-F1 margin high"]


def keyed_on_ghost(texts):
    """A toy text model: Horror is likely exactly when the overview says 'ghost'."""
    out = np.full((len(texts), N_GENRES), 0.2)
    out[:, HORROR] = [0.9 if "ghost" in probes.words(t.lower()) else 0.1 for t in texts]
    return out


def test_leave_one_word_out_names_the_word_a_toy_model_keys_on():
    texts = [f"a {w} haunts the old house" for w in ("ghost", "man", "dog", "woman", "ghost", "cat")]
    texts += ["the ghost of a sailor", "a ghost story", "the house of a man", "ghost town"]
    contributions = probes.leave_one_word_out(keyed_on_ghost, texts)
    assert [len(c) for c in contributions] == [len(t.split()) for t in texts]
    ranking = probes.word_ranking(texts, contributions, "Horror", min_count=2)
    assert ranking.iloc[0]["word"] == "ghost" and ranking.iloc[0]["contribution"] == pytest.approx(0.8)
    assert (ranking.iloc[1:]["contribution"].abs() < 1e-12).all()


def test_normalise_matches_the_tokenizer():
    assert probes.normalise("Ghost's,") == "ghosts" and probes.normalise("--") == ""


def test_tfidf_terms_are_the_largest_coefficients():
    overviews = [f"a ghost in the {w}" for w in ("house", "attic", "school")] + ["a man", "a dog", "the city"]
    labels = np.zeros((6, N_GENRES), dtype=np.float32)
    labels[:3, HORROR] = 1
    films = Films(ids=np.arange(6).astype(str), overviews=np.array(overviews), labels=labels)
    vectorizer, model = baselines.fit_tfidf(films, min_df=1)
    terms = probes.tfidf_terms(vectorizer, model, ["Horror", "Drama"], top=3)
    assert set(terms["genre"]) == {"Horror"}, "Drama has no positive film: no classifier, no terms"
    coefficients = model.classifiers[HORROR].coef_.ravel()
    assert terms["coefficient"].tolist() == sorted(coefficients, reverse=True)[:3]
    assert "ghost" in terms["term"].tolist()


def test_calibration_bins_of_a_calibrated_model():
    rng = np.random.default_rng(3)
    probabilities = rng.uniform(size=(4000, N_GENRES))
    labels = (rng.uniform(size=probabilities.shape) < probabilities).astype(int)
    table = probes.calibration_bins(probabilities, labels)
    assert len(table) == probes.CALIBRATION_BINS and table["pairs"].sum() == probabilities.size
    assert probes.calibration_error(table) < 0.01
    overconfident = probes.calibration_bins(np.where(probabilities > 0.5, 1.0, 0.0), labels)
    assert probes.calibration_error(overconfident) > 0.2
