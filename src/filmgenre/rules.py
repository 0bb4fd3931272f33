"""Decision rules: from probabilities to 0/1 genres, chosen on validation films only.

A rule is a small dict: the best global threshold of a grid, per-genre thresholds, or the
top k genres (``apply_rule``). ``choose_rule`` picks the one with the best validation
micro-F1 (or macro-F1, with per-genre thresholds shrunk towards the global one), scoring a
whole grid of thresholds at once with count-based F1 identical to scikit-learn's.
"""

import numpy as np

GRID = np.round(np.arange(1, 100) / 100, 2)  # global and per-genre thresholds tried: 0.01 ... 0.99
TOP_KS = (1, 2, 3)
PER_GENRE_MIN_POSITIVES = 5  # micro rule: fewer validation positives and the genre keeps the global threshold
SHRINKAGE = 10  # macro rule: a genre's own threshold weighs n / (n + 10) for n validation positives
FIXED_RULE = {"kind": "global", "threshold": 0.5}  # the course's rule, always reported


def present_genres(labels: np.ndarray) -> np.ndarray:
    """Indices of the genres with at least one positive film: those macro averages cover."""
    return np.flatnonzero(np.asarray(labels).sum(axis=0) > 0)


def apply_rule(probabilities: np.ndarray, rule: dict) -> np.ndarray:
    """0/1 genres (int8, films x genres) from probabilities under a decision rule.

    ``{"kind": "global", "threshold": t}``: every genre with probability >= t.
    ``{"kind": "per_genre", "thresholds": [t_0, ..., t_24]}``: genre g when its probability >= t_g.
    ``{"kind": "top_k", "k": k}``: the k most probable genres (ties: the earlier genre).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    kind = rule["kind"]
    if kind == "global":
        return (probabilities >= rule["threshold"]).astype(np.int8)
    if kind == "per_genre":
        thresholds = np.asarray(rule["thresholds"], dtype=np.float64)
        if thresholds.shape != (probabilities.shape[1],):
            raise ValueError(f"{len(thresholds)} thresholds for {probabilities.shape[1]} genres")
        return (probabilities >= thresholds[None, :]).astype(np.int8)
    if kind == "top_k":
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, : rule["k"]]
        predicted = np.zeros(probabilities.shape, dtype=np.int8)
        np.put_along_axis(predicted, top, 1, axis=1)
        return predicted
    raise ValueError(f"unknown decision rule kind {kind!r}")


def describe_rule(rule: dict) -> str:
    if rule["kind"] == "global":
        return f"threshold {rule['threshold']:g}"
    if rule["kind"] == "top_k":
        return f"top-{rule['k']}"
    return "per-genre thresholds"


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 = 2 TP / (2 TP + FP + FN), 0 where there is neither a positive nor a prediction.

    scikit-learn's ``zero_division=0`` value, and from integer counts the very same floats
    (both divide 2 TP by the same exact integer); ``uncertainty`` scores resamples with it.
    """
    tp, fp, fn = (np.asarray(count, dtype=np.float64) for count in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def f1_over(labels: np.ndarray, decisions: np.ndarray, objective: str) -> np.ndarray:
    """Micro- or macro-F1 (``objective``) of 0/1 ``decisions`` (..., films, genres): one score
    per leading index, so a whole grid of thresholds is scored in one pass.

    Equal to scikit-learn's ``f1_score(..., zero_division=0)``, thousands of calls to which
    made the threshold search most of `filmgenre evaluate`'s CPU time. Macro-F1 averages the
    genres with a positive film here, as ``compute_metrics`` reports it.
    """
    labels = np.asarray(labels).astype(bool)
    decisions = np.asarray(decisions).astype(bool)
    tp = (decisions & labels).sum(axis=-2)
    fp = (decisions & ~labels).sum(axis=-2)
    fn = (~decisions & labels).sum(axis=-2)
    if objective == "micro":
        return f1_from_counts(tp.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1))
    if objective == "macro":
        # a mean per row, not along the axis: numpy sums an axis in another order, 1 ulp apart
        return np.apply_along_axis(np.mean, -1, f1_from_counts(tp, fp, fn)[..., present_genres(labels)])
    if objective == "per_genre":
        return f1_from_counts(tp, fp, fn)
    raise ValueError(f"unknown F1 objective {objective!r}: micro, macro or per_genre")


def micro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(f1_over(labels, predicted, "micro"))


def macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 over the genres with a positive film here, as ``compute_metrics`` reports it."""
    return float(f1_over(labels, predicted, "macro"))


OBJECTIVES = {"micro": micro_f1, "macro": macro_f1}


def middle_best(scores: np.ndarray) -> int:
    """Index of the best score; among ties, the middle one (the centre of a plateau)."""
    scores = np.asarray(scores, dtype=np.float64)
    best = np.flatnonzero(np.isclose(scores, scores.max(), rtol=0, atol=1e-12))
    return int(best[len(best) // 2])


def shrunk_thresholds(own: np.ndarray, support: np.ndarray, global_threshold: float,
                      shrinkage: float = SHRINKAGE) -> list[float]:
    """Per-genre thresholds pulled towards the global one, the more so the fewer validation positives.

    A genre with ``n`` positive validation films keeps ``n / (n + shrinkage)`` of its own
    F1-best threshold and takes the rest from the global threshold: a genre seen 3 times
    cannot move far on the strength of 3 films; one seen 100 times nearly keeps its own.
    """
    support = np.asarray(support, dtype=np.float64)
    weight = np.divide(support, support + shrinkage, out=np.zeros_like(support), where=support > 0)
    return [round(float(w * t + (1 - w) * global_threshold), 4) for w, t in zip(weight, own)]


def choose_rule(probabilities: np.ndarray, labels: np.ndarray, min_positives: int = PER_GENRE_MIN_POSITIVES,
                objective: str = "micro", shrinkage: float = SHRINKAGE) -> tuple[dict, list[dict]]:
    """The decision rule with the best ``objective`` F1 on these (validation) films, and every candidate.

    ``objective`` is "micro" (every decision counts alike: the frequent genres dominate)
    or "macro" (every genre counts alike: the rare genres matter as much as Drama).
    Candidates, in order: the best global threshold of ``GRID``; top-k for k in ``TOP_KS``;
    per-genre thresholds (each genre's own F1-best threshold of ``GRID``). For "micro", genres
    with fewer than ``min_positives`` positives keep the global threshold; for "macro", which
    would otherwise fit each rare genre's handful of validation films exactly, every threshold
    is shrunk towards the global one (``shrunk_thresholds``). Ties on a grid go to the middle
    of the best plateau; ties between candidates to the earlier (simpler) one.
    Returns ``(rule, [{"rule": ..., "val_f1_<objective>": ...}, ...])``.
    """
    score = OBJECTIVES[objective]
    labels = np.asarray(labels).astype(np.int8)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    at_grid = probabilities[None] >= GRID[:, None, None]  # (thresholds, films, genres)
    global_scores = f1_over(labels, at_grid, objective)
    best_global = float(GRID[middle_best(global_scores)])
    rules = [{"kind": "global", "threshold": best_global}]
    rules += [{"kind": "top_k", "k": k} for k in TOP_KS]

    genre_scores = f1_over(labels, at_grid, "per_genre")
    support = labels.sum(axis=0)
    own = [float(GRID[middle_best(genre_scores[:, g])]) if support[g] else best_global
           for g in range(labels.shape[1])]
    if objective == "micro":
        thresholds = [t if support[g] >= min_positives else best_global for g, t in enumerate(own)]
        rules.append({"kind": "per_genre", "thresholds": thresholds, "min_positives": min_positives})
    else:
        rules.append({"kind": "per_genre", "thresholds": shrunk_thresholds(own, support, best_global, shrinkage),
                      "shrinkage": shrinkage})

    candidates = [{"rule": rule, f"val_f1_{objective}": score(labels, apply_rule(probabilities, rule))}
                  for rule in rules]
    best = max(range(len(candidates)), key=lambda i: (candidates[i][f"val_f1_{objective}"], -i))
    return candidates[best]["rule"], candidates
