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
Scores follow ``scores.compute_metrics``: micro-F1 pools every (film, genre) decision;
macro-F1 and macro average precision average the genres with at least one positive film
in the (resampled) set.
"""

import time

import numpy as np

from filmgenre import config, files
from filmgenre.rules import f1_from_counts

RESAMPLES = 1000
LEVEL = 0.95
METRICS = ("f1_micro", "f1_macro", "average_precision_macro")  # what gets an interval
DIGITS = 6


def resample_counts(films: int, resamples: int = RESAMPLES, seed: int = config.SEED) -> np.ndarray:
    """How many times each film is drawn in each resample (resamples x films, int32), seeded.

    Drawn once and reused for every model, which is what makes comparisons paired.
    """
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, films, size=(resamples, films))
    counts = np.zeros((resamples, films), dtype=np.int32)
    np.add.at(counts, (np.arange(resamples)[:, None], drawn), 1)
    return counts


def f1_scores(labels: np.ndarray, predicted: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Micro- and macro-F1 of 0/1 predictions on every resample (one value per row of ``counts``).

    True and false positives and false negatives per genre are ``counts @ (per-film 0/1)``;
    macro-F1 averages the genres with a positive film in the resample, as ``compute_metrics``
    does on the unresampled films.
    """
    labels = np.asarray(labels, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    tp = counts @ (labels * predicted)
    fp = counts @ ((1 - labels) * predicted)
    fn = counts @ (labels * (1 - predicted))
    micro = f1_from_counts(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
    per_genre = f1_from_counts(tp, fp, fn)
    present = (tp + fn) > 0
    macro = np.where(present, per_genre, 0).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    return {"f1_micro": micro, "f1_macro": macro}


def macro_average_precision(labels: np.ndarray, probabilities: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Macro average precision on every resample, as scikit-learn computes it with film weights.

    Per genre, films are sorted by probability once; sklearn's thresholds are the groups of
    tied probabilities. Recall rises only at groups holding a positive film, so
    AP = sum over those groups of (positives drawn in the group / all positives drawn) x
    (precision at the group's end), both sums of the resamples' film counts along that order
    (integers: exact). Genres without a positive film drawn are left out.
    """
    labels = np.asarray(labels).astype(bool)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int32)
    total = np.zeros(len(counts))
    genres = np.zeros(len(counts))
    for g in np.flatnonzero(labels.any(axis=0)):
        order = np.argsort(-probabilities[:, g], kind="stable")
        scores, positive = probabilities[order, g], labels[order, g]
        group = np.r_[0, np.cumsum(scores[1:] != scores[:-1])]  # tie group of each sorted film
        group_end = np.r_[np.flatnonzero(np.diff(group)), len(group) - 1]
        positive_at = np.flatnonzero(positive)
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
        total += np.divide((steps * precision).sum(axis=1), support, out=np.zeros(len(counts)), where=present)
        genres += present
    return total / np.maximum(genres, 1)


def interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """The central ``level`` percentile interval of resampled values: ``[low, high]``."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return [round(float(low), DIGITS), round(float(high), DIGITS)]


def difference(a: np.ndarray, b: np.ndarray, estimate: float, level: float = LEVEL) -> dict:
    """A paired difference ``a - b`` (resampled on the same films): estimate, interval, verdict.

    ``measurable`` is false when the interval contains 0: on these films the two cannot be told apart.
    """
    low, high = interval(np.asarray(a) - np.asarray(b), level)
    return {"difference": round(float(estimate), DIGITS), "interval": [low, high],
            "measurable": not (low <= 0 <= high)}


def bootstrap(labels: np.ndarray, models: dict[str, dict], resamples: int = RESAMPLES,
              seed: int = config.SEED) -> tuple[dict[str, dict[str, dict[str, np.ndarray]]], dict]:
    """Resampled scores of several models on the same resampled films.

    ``models`` maps a name to ``{"probabilities": films x genres, "predicted": {section: 0/1
    predictions}}`` (one section per decision rule, e.g. ``test`` and ``test_macro_rule``), on
    the same films as ``labels``. Returns ``{name: {section: {metric: resampled values}}}``
    (average precision needs no rule: every section gets the same values) and a description
    of the bootstrap (resamples, seed, level, films, seconds).
    """
    started = time.perf_counter()
    counts = resample_counts(len(labels), resamples, seed)
    resampled = {}
    for name, model in models.items():
        average_precision = macro_average_precision(labels, model["probabilities"], counts)
        resampled[name] = {section: f1_scores(labels, predicted, counts)
                           | {"average_precision_macro": average_precision}
                           for section, predicted in model["predicted"].items()}
    about = {"resamples": resamples, "seed": seed, "level": LEVEL, "films": int(len(labels)),
             "unit": "test films, each with all its genres", "seconds": round(time.perf_counter() - started, 2)}
    return resampled, about


# --------------------------------------------------------------------------- metrics.json
SECTIONS = ("test", "test_macro_rule")  # the test scores under the micro rule and under the macro rule
SPEC_MODELS = {"posters": "cnn", "overviews": "lstm"}  # the assignment's, by input (config.MODALITY)
SPEC_BASELINES = {"cnn": "poster_histogram", "lstm": "tfidf_logreg"}  # the baseline each spec model must beat


def claims(entries: dict) -> list[tuple[str, str]]:
    """The pairs ``(a, b)`` the report compares, among the entries of ``metrics.json``.

    Each spec model against its baseline and against the other spec model; each of our
    models against the spec model of its input; each fusion against each of its members.
    Generic over names, so a model added to ``registry.MODELS`` gets its comparison too.
    """
    pairs = [(spec, baseline) for spec, baseline in SPEC_BASELINES.items()] + [("lstm", "cnn")]
    for name, entry in entries.items():
        modality = config.MODALITY.get(entry["reads"])
        if entry["kind"] == "model" and name not in SPEC_BASELINES and modality in SPEC_MODELS:
            pairs.append((name, SPEC_MODELS[modality]))
        if "fusion" in entry:
            pairs += [(name, entry["fusion"]["poster"]), (name, entry["fusion"]["text"])]
    return [(a, b) for a, b in pairs if a in entries and b in entries]


def add_to_metrics(resamples: int = RESAMPLES, seed: int = config.SEED, log=print) -> dict:
    """Intervals for every entry of ``metrics.json`` and paired differences for every claim.

    Reads each entry's committed test predictions and both of its decision rules, so it
    needs no model file. Writes ``intervals`` into each entry (``{section: {metric: [low,
    high]}}``), ``comparisons`` (``a_vs_b``: per section and metric, the difference a - b
    with its interval) and ``bootstrap`` (how it was computed) into ``metrics.json``.
    """
    from filmgenre import artifacts, predictions, rules

    where = config.paths()
    metrics = artifacts.read_metrics()
    entries = metrics.get("models", {})
    films = predictions.evaluation_films("test")
    labels = films.labels.astype(np.int8)
    models = {}
    for name, entry in entries.items():
        probabilities = predictions.aligned(name, films, "test")
        models[name] = {"probabilities": probabilities, "predicted": {
            "test": rules.apply_rule(probabilities, entry["rule"]),
            "test_macro_rule": rules.apply_rule(probabilities, entry["macro_rule"])}}
    resampled, about = bootstrap(labels, models, resamples, seed)
    for name, entry in entries.items():
        entry["intervals"] = {section: {metric: interval(resampled[name][section][metric]) for metric in METRICS}
                              for section in SECTIONS}
    metrics["comparisons"] = {
        f"{a}_vs_{b}": {"models": [a, b]} | {
            section: {metric: difference(resampled[a][section][metric], resampled[b][section][metric],
                                         entries[a][section][metric] - entries[b][section][metric])
                      for metric in METRICS}
            for section in SECTIONS}
        for a, b in claims(entries)}
    metrics["bootstrap"] = about
    files.write_json(where.metrics, metrics)
    log(f"bootstrap: {resamples} resamples of {about['films']} test films, {len(entries)} models and "
        f"{len(metrics['comparisons'])} comparisons in {about['seconds']} s")
    return metrics
