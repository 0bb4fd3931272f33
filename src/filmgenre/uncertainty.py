"""How much of a test score is noise: bootstrap intervals and paired differences over test films.

The test split has 1,258 films; a model that scores 0.482 and one that scores 0.480 may
differ only by which films happened to land in test. The bootstrap answers that by
resampling the test films with replacement (each film with all its genres) ``RESAMPLES``
times and recomputing every score on each resample:

- a model's 95 % interval is the 2.5th and 97.5th percentile of its resampled scores;
- two models are compared *paired*: the same resampled films for both, so the difference
  of their scores on each resample gives the interval of the difference. An interval that
  contains 0 means no measurable difference on these films.

One resample is a vector of film counts (how often each film was drawn), so every score
is a matrix product over those counts: 1,000 resamples of a dozen models take seconds.
Micro-F1 pools every (film, genre) decision. Macro-F1 and macro average precision average a
*fixed* set of genres, those with at least ``MIN_TEST_FILMS`` test films: averaging over the
genres that happen to be drawn would make a one-film genre count in some resamples and not in
others, which skews the intervals (the constant predictor's macro-F1 interval sat almost all
above its estimate). Their point estimates (``f1_macro_fixed``, ``average_precision_macro_fixed``)
are over the same genres, so estimate and interval always describe the same quantity.

The top-1 comparison of two models (is each one's most probable genre a true one?) is tested
with McNemar's exact test on the films where exactly one of them is right, beside a paired
bootstrap interval of the difference in films right.

``probability_quality`` adds what a threshold-free reading of the probabilities needs: the
mean binary cross-entropy on validation and test (comparable with a training run's loss and
with the constant predictor's), calibration per genre (pooled over all (film, genre) pairs,
the ~5,000 pairs of genres without a test film, all predicted near 0, make any model look
calibrated), and how far the rule chosen on validation is from the best rule for test.
"""

import time

import numpy as np
from scipy.stats import binomtest

from filmgenre import config, files
from filmgenre.rules import f1_from_counts

RESAMPLES = 1000
LEVEL = 0.95
MIN_TEST_FILMS = 10  # macro averages keep the genres with at least this many test films
METRICS = ("f1_micro", "f1_macro_fixed", "average_precision_macro_fixed")  # what gets an interval
DIGITS = 6
EPSILON = 1e-7  # Keras's clipping of probabilities in binary cross-entropy, so the losses compare


def resample_counts(films: int, resamples: int = RESAMPLES, seed: int = config.SEED) -> np.ndarray:
    """How many times each film is drawn in each resample (resamples x films, int32), seeded.

    Drawn once and reused for every model, which is what makes comparisons paired.
    """
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, films, size=(resamples, films))
    counts = np.zeros((resamples, films), dtype=np.int32)
    np.add.at(counts, (np.arange(resamples)[:, None], drawn), 1)
    return counts


def scored_genres(labels: np.ndarray, min_films: int = 1) -> np.ndarray:
    """Indices of the genres with at least ``min_films`` positive films: the fixed set macro scores average."""
    return np.flatnonzero(np.asarray(labels).sum(axis=0) >= min_films)


def identity(films: int) -> np.ndarray:
    """The "resample" that draws every film once: scores on it are the point estimates."""
    return np.ones((1, films), dtype=np.int32)


def f1_scores(labels: np.ndarray, predicted: np.ndarray, counts: np.ndarray,
              genres: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Micro-F1, macro-F1 and per-genre F1 of 0/1 predictions on every resample (a row of ``counts``).

    True and false positives and false negatives per genre are ``counts @ (per-film 0/1)``.
    Macro-F1 averages the fixed set ``genres`` (default: those with a positive film in
    ``labels``, which at the identity resample is ``compute_metrics``'s macro-F1); a genre
    without a positive film drawn scores 0 there, as it would in scikit-learn.
    ``f1_per_genre`` is resamples x ``genres``.
    """
    labels = np.asarray(labels, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    genres = scored_genres(labels) if genres is None else np.asarray(genres)
    tp = counts @ (labels * predicted)
    fp = counts @ ((1 - labels) * predicted)
    fn = counts @ (labels * (1 - predicted))
    micro = f1_from_counts(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
    per_genre = f1_from_counts(tp, fp, fn)[:, genres]
    return {"f1_micro": micro, "f1_macro": per_genre.mean(axis=1), "f1_per_genre": per_genre}


def average_precisions(labels: np.ndarray, probabilities: np.ndarray, counts: np.ndarray,
                       genres: np.ndarray | None = None) -> np.ndarray:
    """Average precision of each genre of ``genres`` (default: those with a positive film) on
    every resample (resamples x genres), as scikit-learn computes it with film weights; NaN
    where a resample drew no positive film of the genre.

    Per genre, films are sorted by probability once; sklearn's thresholds are the groups of
    tied probabilities. Recall rises only at groups holding a positive film, so
    AP = sum over those groups of (positives drawn in the group / all positives drawn) x
    (precision at the group's end), both sums of the resamples' film counts along that order
    (integers: exact).
    """
    labels = np.asarray(labels).astype(bool)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int32)
    genres = scored_genres(labels) if genres is None else np.asarray(genres)
    found_ap = np.full((len(counts), len(genres)), np.nan)
    for column, g in enumerate(genres):
        order = np.argsort(-probabilities[:, g], kind="stable")
        scores, positive = probabilities[order, g], labels[order, g]
        group = np.r_[0, np.cumsum(scores[1:] != scores[:-1])]  # tie group of each sorted film
        group_end = np.r_[np.flatnonzero(np.diff(group)), len(group) - 1]
        positive_at = np.flatnonzero(positive)
        if not len(positive_at):
            continue
        groups, first = np.unique(group[positive_at], return_index=True)  # where recall can rise
        ends = group_end[groups]
        # per resample: films drawn up to each such group's end, positives drawn within each group
        drawn = np.cumsum(np.add.reduceat(np.take(counts, order[: ends[-1] + 1], axis=1),
                                          np.r_[0, ends[:-1] + 1], axis=1), axis=1).astype(np.float64)
        steps = np.add.reduceat(np.take(counts, order[positive_at], axis=1), first, axis=1).astype(np.float64)
        found = np.cumsum(steps, axis=1)
        support = found[:, -1]
        precision = np.divide(found, drawn, out=np.zeros_like(found), where=drawn > 0)
        present = support > 0
        found_ap[present, column] = (steps * precision).sum(axis=1)[present] / support[present]
    return found_ap


def macro_average_precision(labels: np.ndarray, probabilities: np.ndarray, counts: np.ndarray,
                            genres: np.ndarray | None = None) -> np.ndarray:
    """Macro average precision on every resample: the mean of ``average_precisions`` over the
    genres of ``genres`` with a positive film drawn."""
    found = average_precisions(labels, probabilities, counts, genres)
    drawn = ~np.isnan(found)
    return np.where(drawn, found, 0).sum(axis=1) / np.maximum(drawn.sum(axis=1), 1)


def interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """The central ``level`` percentile interval of resampled values: ``[low, high]`` (resamples
    where a score is undefined, e.g. no film of a rare genre drawn, are left out)."""
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return [round(float(low), DIGITS), round(float(high), DIGITS)]


def difference(a: np.ndarray, b: np.ndarray, estimate: float, level: float = LEVEL) -> dict:
    """A paired difference ``a - b`` (resampled on the same films): estimate, interval, verdict.

    ``measurable`` is false when the interval contains 0: on these films the two cannot be told apart.
    """
    low, high = interval(np.asarray(a) - np.asarray(b), level)
    return {"difference": round(float(estimate), DIGITS), "interval": [low, high],
            "measurable": not (low <= 0 <= high)}


def bootstrap(labels: np.ndarray, models: dict[str, dict], resamples: int = RESAMPLES,
              seed: int = config.SEED, genres: np.ndarray | None = None
              ) -> tuple[dict[str, dict[str, dict[str, np.ndarray]]], dict]:
    """Resampled scores of several models on the same resampled films.

    ``models`` maps a name to ``{"probabilities": films x genres, "predicted": {section: 0/1
    predictions}}`` (one section per decision rule, e.g. ``test`` and ``test_macro_rule``), on
    the same films as ``labels``. ``genres``: the fixed set macro scores average (default:
    those with a positive film). Returns ``{name: {section: {metric: resampled values}}}``
    with ``METRICS`` plus ``f1_per_genre`` and ``average_precision_per_genre`` (resamples x
    genres; average precision needs no rule: every section gets the same values), and a
    description of the bootstrap (resamples, seed, level, films, seconds).
    """
    started = time.perf_counter()
    genres = scored_genres(labels) if genres is None else np.asarray(genres)
    counts = resample_counts(len(labels), resamples, seed)
    resampled = {}
    for name, model in models.items():
        per_genre_ap = average_precisions(labels, model["probabilities"], counts, genres)
        ranking = {"average_precision_macro_fixed": np.nanmean(per_genre_ap, axis=1),
                   "average_precision_per_genre": per_genre_ap}
        resampled[name] = {}
        for section, predicted in model["predicted"].items():
            f1 = f1_scores(labels, predicted, counts, genres)
            resampled[name][section] = {"f1_micro": f1["f1_micro"], "f1_macro_fixed": f1["f1_macro"],
                                        "f1_per_genre": f1["f1_per_genre"]} | ranking
    about = {"resamples": resamples, "seed": seed, "level": LEVEL, "films": int(len(labels)),
             "unit": "test films, each with all its genres", "seconds": round(time.perf_counter() - started, 2)}
    return resampled, about


def point_estimates(labels: np.ndarray, model: dict, genres: np.ndarray) -> dict[str, dict[str, float]]:
    """``{section: {metric: value}}`` of one model on the films as they are (the identity resample)."""
    one = identity(len(labels))
    per_genre_ap = average_precisions(labels, model["probabilities"], one, genres)
    found = {}
    for section, predicted in model["predicted"].items():
        f1 = f1_scores(labels, predicted, one, genres)
        found[section] = {"f1_micro": float(f1["f1_micro"][0]), "f1_macro_fixed": float(f1["f1_macro"][0]),
                          "average_precision_macro_fixed": float(np.nanmean(per_genre_ap[0])),
                          "f1_per_genre": f1["f1_per_genre"][0], "average_precision_per_genre": per_genre_ap[0]}
    return found


def paired_scores(labels: np.ndarray, models: dict[str, dict], pairs, genres: np.ndarray,
                  resamples: int = RESAMPLES, seed: int = config.SEED) -> tuple[dict, dict]:
    """Test scores (``METRICS``) of prediction sets under one rule each, and paired differences.

    ``models`` maps a name to ``{"probabilities": films x genres, "predicted": 0/1 films x genres}``
    on the films of ``labels`` (e.g. one model on original and altered inputs, and a reference);
    ``pairs``: the ``(a, b)`` whose difference a - b is wanted. Returns ``({name: {metric:
    value}}, {"a_vs_b": {metric: difference}})``, resampled on the same films.
    """
    wrapped = {name: {"probabilities": m["probabilities"], "predicted": {"test": m["predicted"]}}
               for name, m in models.items()}
    resampled, _ = bootstrap(labels, wrapped, resamples, seed, genres)
    estimates = {name: {metric: float(value) for metric, value in point_estimates(labels, model, genres)["test"].items()
                        if metric in METRICS} for name, model in wrapped.items()}
    differences = {f"{a}_vs_{b}": {metric: difference(resampled[a]["test"][metric], resampled[b]["test"][metric],
                                                      estimates[a][metric] - estimates[b][metric])
                                   for metric in METRICS}
                   for a, b in pairs}
    return {name: {m: round(v, DIGITS) for m, v in found.items()} for name, found in estimates.items()}, differences


def top1_test(right_a: np.ndarray, right_b: np.ndarray, counts: np.ndarray) -> dict:
    """Is model a right (top-1 genre true) on more films than b? McNemar's exact test on the
    films where exactly one is right, and the paired bootstrap interval of the difference in
    the share of films right (a - b)."""
    right_a, right_b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    p_value = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    share = (counts @ (right_a.astype(np.float64) - right_b)) / counts.sum(axis=1)
    return {"only_a_right": only_a, "only_b_right": only_b, "mcnemar_p": round(float(p_value), DIGITS),
            "share_right_difference": difference(share, np.zeros_like(share), (only_a - only_b) / len(right_a))}


# --------------------------------------------------------------------------- probability quality
def cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean binary cross-entropy over every (film, genre) pair, clipped as Keras clips it: the
    number a training run's ``val_loss`` reports, here from the written predictions."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)
    y = np.asarray(labels, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def genre_calibration(labels: np.ndarray, probabilities: np.ndarray, genres: np.ndarray) -> dict:
    """Expected calibration error pooled over every pair, and per genre of ``genres`` (each over its
    own films), with their mean: the pooled figure is mostly the empty genres' near-zero pairs."""
    from filmgenre.probes import calibration_bins, calibration_error

    per_genre = {config.GENRES[g]: round(calibration_error(calibration_bins(probabilities[:, g], labels[:, g])),
                                         DIGITS) for g in genres}
    return {"ece_pooled": round(calibration_error(calibration_bins(probabilities, labels)), DIGITS),
            "ece_genre_mean": round(float(np.mean(list(per_genre.values()))), DIGITS), "ece_per_genre": per_genre}


def rule_transfer(labels: np.ndarray, probabilities: np.ndarray, test_f1: float) -> dict:
    """How much test micro-F1 the validation-chosen rule leaves on the table: the best rule
    chosen on test itself (an oracle, never used for a result) and its test micro-F1."""
    from filmgenre.rules import choose_rule, describe_rule

    best, candidates = choose_rule(probabilities, labels)
    oracle = max(c["val_f1_micro"] for c in candidates)  # scored on the films it was chosen on: test
    return {"test_optimal_rule": describe_rule(best), "test_f1_micro_test_optimal": round(oracle, DIGITS),
            "gap": round(oracle - test_f1, DIGITS)}


# --------------------------------------------------------------------------- metrics.json
SECTIONS = ("test", "test_macro_rule")  # the test scores under the micro rule and under the macro rule
SPEC_MODELS = {"posters": "cnn", "overviews": "lstm"}  # the assignment's, by input (config.MODALITY)
SPEC_BASELINES = {"cnn": "poster_histogram", "lstm": "tfidf_logreg"}  # the baseline each spec model must beat
PRIOR = "prior"  # the constant predictor: what a model gains over knowing only the genres' frequencies


def modality_pairs(entries: dict) -> list[tuple[str, str]]:
    """The (text, poster) pairs that answer "which input carries more signal": the assignment's
    LSTM against its CNN, and each fusion's text member against its poster member."""
    pairs = [("lstm", "cnn")] + [(entry["fusion"]["text"], entry["fusion"]["poster"])
                                 for entry in entries.values() if "fusion" in entry]
    return [(a, b) for a, b in pairs if a in entries and b in entries]


def claims(entries: dict) -> list[tuple[str, str]]:
    """The pairs ``(a, b)`` the report compares, among the entries of ``metrics.json``.

    Each spec model against its baseline, against the constant prior and against the other spec model; each of our
    models against the spec model of its input; each fusion against each of its members
    and its text member against every poster model; each learned fusion against the late fusion. Generic over names, so a model added to
    ``registry.MODELS`` gets its comparison too.
    """
    pairs = [(spec, baseline) for spec, baseline in SPEC_BASELINES.items()]
    pairs += [(spec, PRIOR) for spec in SPEC_BASELINES] + [("lstm", "cnn")]
    for name, entry in entries.items():
        modality = config.MODALITY.get(entry["reads"])
        if entry["kind"] == "model" and name not in SPEC_BASELINES and modality in SPEC_MODELS:
            pairs.append((name, SPEC_MODELS[modality]))
        if entry["kind"] == "model" and modality == "posters+overviews":  # a learned fusion against the late one
            pairs += [(name, late) for late, other in entries.items() if "fusion" in other]
        if "fusion" in entry:  # and its text member against every poster model (the member is chosen among `make all`'s)
            pairs += [(name, entry["fusion"]["poster"]), (name, entry["fusion"]["text"])]
            pairs += [(entry["fusion"]["text"], poster) for poster, other in entries.items()
                      if other["kind"] == "model" and config.MODALITY.get(other["reads"]) == "posters"]
    return list(dict.fromkeys((a, b) for a, b in pairs if a in entries and b in entries))  # each pair once


def _per_genre_differences(resampled: dict, estimates: dict, a: str, b: str, genres: np.ndarray,
                           films: np.ndarray) -> dict:
    """Per genre of the fixed set: test F1 (micro rule) and average precision of a - b, paired."""
    found = {}
    for column, g in enumerate(genres):
        found[config.GENRES[g]] = {"films": int(films[g])} | {
            metric: difference(resampled[a]["test"][f"{metric}_per_genre"][:, column],
                               resampled[b]["test"][f"{metric}_per_genre"][:, column],
                               estimates[a]["test"][f"{metric}_per_genre"][column]
                               - estimates[b]["test"][f"{metric}_per_genre"][column])
            for metric in ("f1", "average_precision")}
    return found


def add_to_metrics(resamples: int = RESAMPLES, seed: int = config.SEED, log=print) -> dict:
    """Intervals for every entry of ``metrics.json``, paired differences for every claim, the
    top-1 tests of each compared pair, and the quality of each model's probabilities.

    Reads each entry's committed validation and test predictions and both of its decision
    rules, so it needs no model file. Writes into each entry: the fixed-genre macro scores
    (into ``test`` and ``test_macro_rule``), ``intervals`` (``{section: {metric: [low,
    high]}}``), ``cross_entropy`` (into ``val`` and ``test``), ``calibration`` and
    ``rule_transfer``; ``comparisons`` (``a_vs_b``: per section and metric, the difference
    a - b with its interval; per genre for ``modality_pairs``), ``mcnemar`` into each
    ``agreement``, and ``bootstrap`` (how it was computed, which genres the macro scores keep).
    """
    from filmgenre import artifacts, compare, predictions, rules

    where = config.paths()
    metrics = artifacts.read_metrics()
    entries = metrics.get("models", {})
    films = {split: predictions.evaluation_films(split) for split in ("val", "test")}
    labels = films["test"].labels.astype(np.int8)
    support = labels.sum(axis=0)
    genres = scored_genres(labels, MIN_TEST_FILMS)
    models, probabilities = {}, {}
    for name, entry in entries.items():
        probabilities[name] = {split: predictions.aligned(name, films[split], split) for split in films}
        models[name] = {"probabilities": probabilities[name]["test"], "predicted": {
            "test": rules.apply_rule(probabilities[name]["test"], entry["rule"]),
            "test_macro_rule": rules.apply_rule(probabilities[name]["test"], entry["macro_rule"])}}
    resampled, about = bootstrap(labels, models, resamples, seed, genres)
    estimates = {name: point_estimates(labels, model, genres) for name, model in models.items()}
    for name, entry in entries.items():
        for section in SECTIONS:
            entry[section].update({metric: round(estimates[name][section][metric], DIGITS)
                                   for metric in METRICS if metric != "f1_micro"})
        entry["intervals"] = {section: {metric: interval(resampled[name][section][metric]) for metric in METRICS}
                              for section in SECTIONS}
        for split in films:
            entry[split]["cross_entropy"] = round(cross_entropy(films[split].labels, probabilities[name][split]),
                                                  DIGITS)
        entry["calibration"] = genre_calibration(labels, probabilities[name]["test"], genres)
        entry["rule_transfer"] = rule_transfer(labels, probabilities[name]["test"], entry["test"]["f1_micro"])
    metrics["comparisons"] = {
        f"{a}_vs_{b}": {"models": [a, b]} | {
            section: {metric: difference(resampled[a][section][metric], resampled[b][section][metric],
                                         estimates[a][section][metric] - estimates[b][section][metric])
                      for metric in METRICS}
            for section in SECTIONS}
        for a, b in claims(entries)}
    for a, b in modality_pairs(entries):
        metrics["comparisons"][f"{a}_vs_{b}"]["per_genre"] = _per_genre_differences(
            resampled, estimates, a, b, genres, support)
    counts = resample_counts(len(labels), resamples, seed)
    for key, pair in metrics.get("agreement", {}).items():
        a, b = pair["models"]
        right = {m: compare.right_top1(probabilities[m]["test"], labels) for m in (a, b)}
        pair["top1_test"] = top1_test(right[a], right[b], counts)
    present = scored_genres(labels)
    about |= {"min_test_films": MIN_TEST_FILMS, "macro_genres": [config.GENRES[g] for g in genres],
              "macro_genres_left_out": {config.GENRES[g]: int(support[g]) for g in present if g not in set(genres)}}
    metrics["bootstrap"] = about
    files.write_json(where.metrics, metrics)
    log(f"bootstrap: {resamples} resamples of {about['films']} test films, {len(entries)} models and "
        f"{len(metrics['comparisons'])} comparisons in {about['seconds']} s; macro scores over {len(genres)} "
        f"genres with >= {MIN_TEST_FILMS} test films (left out: {about['macro_genres_left_out'] or 'none'})")
    return metrics
