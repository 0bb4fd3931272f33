"""Stage 4, `filmgenre evaluate`: from trained models and baselines to the report's numbers.

For every model (``models/<name>.keras``) and every baseline (``baselines.BASELINES``):

1. probabilities for the validation and test films -> ``results/<name>/predictions.csv``
   (``Id``, ``split``, one column per genre; rounded to 6 decimals, and every number
   below is computed from exactly the rounded values that file holds);
2. a decision rule chosen on validation only (``choose_rule``): the best global threshold
   of a grid, per-genre thresholds, or the top k genres (k = 1, 2, 3), whichever has the
   best validation micro-F1; ``apply_rule`` turns probabilities into 0/1 genres. A second
   rule (``macro_rule``) is chosen the same way for validation macro-F1, with per-genre
   thresholds shrunk towards the global one, and reported beside the first;
3. metrics with scikit-learn on validation and test (``compute_metrics``), also at the
   fixed 0.5 threshold the course used; genres with no positive film in the evaluated
   split are left out of the macro averages and named;
4. ``results/<name>/{per_genre,confusion_per_genre,confusion_genres,false_positives}.csv`` on test;
5. ``results/metrics.json``: everything above plus provenance (SHA-256 of every input) so
   ``stale()`` can tell when a result no longer matches its model, data or split;
6. the CNN/LSTM comparison on test (``agreement``, ``sample_films``) -> ``results/samples.csv``.

``rescore_all`` redoes steps 2-5 from the written predictions alone (no model file), and
``uncertainty.add_to_metrics`` adds bootstrap intervals and paired differences.

The evaluation set of a split is its films that have a poster: the same films for every
model, poster or text, so rows of the tables compare.
"""

import dataclasses
import datetime
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, average_precision_score, hamming_loss,
                             multilabel_confusion_matrix, precision_recall_fscore_support, roc_auc_score)

from filmgenre import FilmgenreError, baselines, config, dataset, files
from filmgenre.dataset import Films

SPLITS = ("val", "test")
GRID = np.round(np.arange(1, 100) / 100, 2)  # global and per-genre thresholds tried: 0.01 ... 0.99
TOP_KS = (1, 2, 3)
PER_GENRE_MIN_POSITIVES = 5  # micro rule: fewer validation positives and the genre keeps the global threshold
SHRINKAGE = 10  # macro rule: a genre's own threshold weighs n / (n + 10) for n validation positives
FIXED_RULE = {"kind": "global", "threshold": 0.5}  # the course's rule, always reported
DECIMALS = 6
PAIRS = [("cnn", "lstm")]  # model pairs compared film by film (agreement, samples)
RIGHT_DEFINITION = "a model is right on a film when its top-1 genre is one of the film's true genres"


class EvaluateError(FilmgenreError):
    """Nothing to evaluate, or inputs that do not fit together: the message says what to run."""


# --------------------------------------------------------------------------- decision rules
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
        return np.apply_along_axis(np.mean, -1, f1_from_counts(tp, fp, fn)[..., _present(labels)])
    if objective == "per_genre":
        return f1_from_counts(tp, fp, fn)
    raise ValueError(f"unknown F1 objective {objective!r}: micro, macro or per_genre")


def micro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(f1_over(labels, predicted, "micro"))


def macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 over the genres with a positive film here, as ``compute_metrics`` reports it."""
    return float(f1_over(labels, predicted, "macro"))


OBJECTIVES = {"micro": micro_f1, "macro": macro_f1}


def _middle_best(scores: np.ndarray) -> int:
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
    best_global = float(GRID[_middle_best(global_scores)])
    rules = [{"kind": "global", "threshold": best_global}]
    rules += [{"kind": "top_k", "k": k} for k in TOP_KS]

    genre_scores = f1_over(labels, at_grid, "per_genre")
    support = labels.sum(axis=0)
    own = [float(GRID[_middle_best(genre_scores[:, g])]) if support[g] else best_global
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


# --------------------------------------------------------------------------- metrics
def _present(labels: np.ndarray) -> np.ndarray:
    return np.flatnonzero(labels.sum(axis=0) > 0)


def ranking_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Average precision and ROC-AUC, macro and micro: scores of the probabilities, not of a rule
    (``score`` computes them once per split for its three rules)."""
    labels = np.asarray(labels).astype(np.int8)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    present = _present(labels)
    both = np.flatnonzero((labels.sum(axis=0) > 0) & (labels.sum(axis=0) < len(labels)))
    return {
        "average_precision_macro": float(
            average_precision_score(labels[:, present], probabilities[:, present], average="macro")),
        "roc_auc_macro": (float(roc_auc_score(labels[:, both], probabilities[:, both], average="macro"))
                          if len(both) else None),
        "average_precision_micro": float(average_precision_score(labels, probabilities, average="micro")),
        "roc_auc_micro": float(roc_auc_score(labels, probabilities, average="micro")),
    }


def compute_metrics(labels: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray,
                    genres: Sequence[str] = config.GENRES, ranking: dict | None = None) -> dict:
    """Multi-label metrics (scikit-learn, ``zero_division=0``) of 0/1 predictions and probabilities.

    micro and samples averages use every genre; macro and weighted averages, macro average
    precision and macro ROC-AUC only the genres with at least one positive film here
    (``excluded_genres`` names the others; ROC-AUC also needs a negative film). Micro
    average precision and ROC-AUC pool every (film, genre) pair. ``ranking``: these films'
    ``ranking_metrics``, if already computed.
    """
    labels = np.asarray(labels).astype(np.int8)
    predicted = np.asarray(predicted).astype(np.int8)
    present = _present(labels)
    result = {"films": int(len(labels))}
    for average in ("micro", "macro", "weighted", "samples"):
        restrict = {"labels": present} if average in ("macro", "weighted") else {}
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predicted, average=average, zero_division=0, **restrict)
        result[f"f1_{average}"] = float(f1)
        result[f"precision_{average}"] = float(precision)
        result[f"recall_{average}"] = float(recall)
    result.update(ranking_metrics(labels, probabilities) if ranking is None else ranking)
    result["subset_accuracy"] = float(accuracy_score(labels, predicted))
    result["hamming_loss"] = float(hamming_loss(labels, predicted))
    result["genres_per_film_true"] = float(labels.sum(axis=1).mean())
    result["genres_per_film_predicted"] = float(predicted.sum(axis=1).mean())
    result["excluded_genres"] = [genres[g] for g in range(labels.shape[1]) if g not in set(present)]
    return result


def per_genre_table(labels: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray,
                    genres: Sequence[str] = config.GENRES) -> pd.DataFrame:
    """One row per genre: support, predicted count, precision, recall, F1, average precision, ROC-AUC.

    Average precision and ROC-AUC are empty (NaN) for a genre without positive films.
    """
    labels = np.asarray(labels).astype(np.int8)
    predicted = np.asarray(predicted).astype(np.int8)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, average=None, zero_division=0)
    present = _present(labels)
    both = [g for g in present if labels[:, g].sum() < len(labels)]
    average_precision = np.full(labels.shape[1], np.nan)
    average_precision[present] = average_precision_score(labels[:, present], probabilities[:, present], average=None)
    roc_auc = np.full(labels.shape[1], np.nan)
    if both:
        roc_auc[both] = roc_auc_score(labels[:, both], probabilities[:, both], average=None)
    return pd.DataFrame({
        "genre": list(genres), "support": support.astype(int), "predicted": predicted.sum(axis=0).astype(int),
        "precision": precision, "recall": recall, "f1": f1,
        "average_precision": average_precision, "roc_auc": roc_auc,
    })


def confusion_tables(labels: np.ndarray, predicted: np.ndarray,
                     genres: Sequence[str] = config.GENRES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-genre 2x2 counts (genre, tn, fp, fn, tp) and the genre-by-genre matrix.

    In the genre-by-genre matrix, row g (a true genre) and column h (a predicted genre)
    hold the fraction of the films of true genre g that were predicted h; the diagonal is
    each genre's recall. Rows of genres without films are empty (NaN).
    """
    labels = np.asarray(labels).astype(np.int64)
    predicted = np.asarray(predicted).astype(np.int64)
    matrices = multilabel_confusion_matrix(labels, predicted)  # [[tn, fp], [fn, tp]] per genre
    per_genre = pd.DataFrame({"genre": list(genres), "tn": matrices[:, 0, 0], "fp": matrices[:, 0, 1],
                              "fn": matrices[:, 1, 0], "tp": matrices[:, 1, 1]})
    support = labels.sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = (labels.T @ predicted) / support[:, None]
    fractions[support == 0] = np.nan
    genre_by_genre = pd.DataFrame(fractions, columns=list(genres))
    genre_by_genre.insert(0, "genre", list(genres))
    return per_genre, genre_by_genre


def false_positive_table(labels: np.ndarray, predicted: np.ndarray,
                         genres: Sequence[str] = config.GENRES) -> pd.DataFrame:
    """Where wrong genres go, in films: row g (a true genre), column h, the films of genre g
    predicted h although h is not one of their genres. Unlike the genre-by-genre matrix, a
    Drama film also called Drama is not counted, and a genre's row weighs by its films."""
    labels = np.asarray(labels).astype(np.int64)
    predicted = np.asarray(predicted).astype(np.int64)
    table = pd.DataFrame(labels.T @ (predicted * (1 - labels)), columns=list(genres))
    table.insert(0, "films", labels.sum(axis=0))
    table.insert(0, "genre", list(genres))
    return table


# --------------------------------------------------------------------------- predictions
def evaluation_films(split: str, image_size: int = config.IMAGE_SIZE) -> Films:
    """The films every model is evaluated on: those of ``split`` that have a poster."""
    from filmgenre import features

    return features.load_split(split, posters=True, image_size=image_size)


def model_spec(name: str):
    """The ``ModelSpec`` of a trained run (``cnn``, or ``cnn-limit200`` for a smoke run)."""
    from filmgenre import models

    return models.MODELS[name.split("-limit")[0]]


def predict_model(name: str, targets: Sequence[Films], path: Path | None = None) -> list[np.ndarray]:
    """Probabilities of the saved model ``models/<name>.keras`` (or ``path``) for each film set (order kept)."""
    from filmgenre import features, pretrained, train

    spec = model_spec(name)
    model = train.load_model(config.paths().models / f"{name}.keras" if path is None else path)
    outputs = []
    for films in targets:
        if spec.reads in pretrained.ENCODERS and films.embeddings is None:
            films = dataclasses.replace(films, embeddings=pretrained.vectors_of(spec.reads, films.ids))
        if spec.reads == "overviews":
            outputs.append(np.asarray(features.predict_by_length(model, films.overviews), dtype=np.float64))
        else:
            data = features.model_dataset(spec.reads, films)
            outputs.append(np.asarray(model.predict(data, verbose=0), dtype=np.float64))
    return outputs


def quantise(probabilities: np.ndarray) -> np.ndarray:
    """Round to ``DECIMALS`` through the very text written to ``predictions.csv``."""
    text = np.char.mod(f"%.{DECIMALS}f", np.asarray(probabilities, dtype=np.float64))
    return text.astype(np.float64)


def predictions_path(name: str) -> Path:
    return config.paths().results / name / "predictions.csv"


def read_predictions(name: str) -> pd.DataFrame:
    """``results/<name>/predictions.csv`` with its probabilities exactly as written."""
    path = predictions_path(name)
    if not path.exists():
        raise EvaluateError(f"{path}: not found. Run `filmgenre evaluate {name}` first.")
    return pd.read_csv(path, dtype={"Id": str, "split": str})


def write_predictions(name: str, films: dict[str, Films], probabilities: dict[str, np.ndarray]) -> None:
    frames = []
    for split in SPLITS:
        frame = pd.DataFrame(probabilities[split], columns=config.GENRES)
        frame.insert(0, "split", split)
        frame.insert(0, "Id", films[split].ids)
        frames.append(frame)
    files.write_csv(predictions_path(name), pd.concat(frames, ignore_index=True), float_format=f"%.{DECIMALS}f")


# --------------------------------------------------------------------------- provenance
_hash_cache: dict[tuple, str] = {}


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _hash_cache:
        _hash_cache[key] = files.sha256(path)
    return _hash_cache[key]


def _inputs(name: str) -> dict[str, Path]:
    """Every file a result depends on, by its path relative to the project root."""
    from filmgenre import pretrained

    where = config.paths()
    processed = dataset.processed_paths(config.IMAGE_SIZE)
    inputs = {"data/splits.csv": where.splits, "data/processed/films.csv": processed["films"]}
    if name in baselines.BASELINES:
        if baselines.BASELINES[name].reads == "posters":
            inputs[f"data/processed/{processed['posters'].name}"] = processed["posters"]
        inputs["src/filmgenre/baselines.py"] = Path(baselines.__file__)
    else:
        spec = model_spec(name)
        inputs[f"models/{name}.keras"] = where.models / f"{name}.keras"
        if spec.reads == "posters":
            posters = dataset.processed_paths(spec.image_size)["posters"]
            inputs[f"data/processed/{posters.name}"] = posters
        if spec.reads in pretrained.ENCODERS:
            cache = _encoder_cache(spec.reads)
            inputs[f"data/processed/{cache.name}"] = cache
    inputs["src/filmgenre/evaluate.py"] = Path(__file__)
    return inputs


def _encoder_cache(reads: str) -> Path:
    """The vectors' cache file; where the data is not prepared, a name that never exists (stale)."""
    from filmgenre import pretrained

    try:
        return pretrained.cache_path(pretrained.ENCODERS[reads])
    except dataset.DatasetError:
        return config.paths().processed / f"{pretrained.ENCODERS[reads].name}_unprepared.npz"


def provenance(name: str, inputs: dict[str, Path] | None = None) -> dict:
    """SHA-256 of every input of ``name``'s result (and a baseline's parameters)."""
    inputs = _inputs(name) if inputs is None else inputs
    record = {"inputs": {key: _sha256(path) for key, path in inputs.items()},
              "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if name in baselines.BASELINES:
        record["baseline"] = {"description": baselines.BASELINES[name].description,
                              "params": _jsonable(baselines.BASELINES[name].params)}
    return record


def _jsonable(value):
    import json

    return json.loads(json.dumps(value, default=files._jsonable))


def stale(metrics: dict | None = None) -> dict[str, list[str]]:
    """Results that no longer match their inputs: ``{name: [reasons]}``, empty when all are current.

    A result is stale when a recorded input (model file, split, film table, poster cache,
    evaluation or baseline code) changed or disappeared, a baseline's parameters changed,
    or its predictions file is gone. A model comparison is stale when either model is.
    """
    metrics = files.read_json(config.paths().metrics, default={}) if metrics is None else metrics
    found: dict[str, list[str]] = {}
    kept = set(committed_only(metrics))
    for name, entry in metrics.get("models", {}).items():
        if name in kept:
            continue
        reasons = []
        recorded = entry.get("provenance", {}).get("inputs", {})
        if entry["kind"] == "derived":  # e.g. the fusion: its inputs are other results' files
            package = Path(__file__).parent
            current = {key: package / Path(key).name if key.startswith("src/filmgenre/") else config.paths().root / key
                       for key in recorded}
        else:
            try:
                current = _inputs(name)
            except KeyError:
                found[name] = [f"{name} is no longer a known model or baseline"]
                continue
        for key, sha in recorded.items():
            path = current.get(key)
            if path is None:
                reasons.append(f"{key} is no longer an input")
            elif not path.exists():
                reasons.append(f"{key} is missing")
            elif _sha256(path) != sha:
                reasons.append(f"{key} changed")
        reasons += [f"{key} is a new input" for key in current if key not in recorded]
        if name in baselines.BASELINES:
            recorded_params = entry["provenance"].get("baseline", {}).get("params")
            if recorded_params != _jsonable(baselines.BASELINES[name].params):
                reasons.append(f"the parameters of baseline {name} changed")
        if not predictions_path(name).exists():
            reasons.append(f"{predictions_path(name).relative_to(config.paths().root)} is missing")
        if reasons:
            found[name] = reasons
    for pair, entry in metrics.get("agreement", {}).items():
        reasons = [f"{model} is stale" for model in entry["models"] if model in found]
        reasons += [f"{model} has no result" for model in entry["models"] if model not in metrics.get("models", {})]
        if reasons:
            found[f"agreement:{pair}"] = reasons
    return found


def committed_only(metrics: dict | None = None) -> list[str]:
    """Model results kept as committed: `make all` does not train the model and it is not here.

    Not stale (nothing they were computed from changed in this checkout), but not
    reproduced by `make all` either, so the check and the report name them apart.
    """
    metrics = files.read_json(config.paths().metrics, default={}) if metrics is None else metrics
    return [name for name, entry in metrics.get("models", {}).items()
            if entry["kind"] == "model" and name in config.EXTRA_MODELS
            and not (config.paths().models / f"{name}.keras").exists()]


# --------------------------------------------------------------------------- one model
def evaluate_predictions(name: str, films: dict[str, Films], probabilities: dict[str, np.ndarray],
                         training_films: int | None = None, derived: dict | None = None) -> dict:
    """Write ``name``'s predictions and tables; return its ``metrics.json`` entry.

    ``derived`` describes a result computed from other results rather than from a model
    file or a baseline (the fusion): its ``description``, ``reads`` and ``inputs``.
    """
    probabilities = {split: quantise(probabilities[split]) for split in SPLITS}
    for split in SPLITS:
        if probabilities[split].shape != films[split].labels.shape:
            raise EvaluateError(f"{name}: {probabilities[split].shape} probabilities for "
                                f"{films[split].labels.shape} {split} labels")
    write_predictions(name, films, probabilities)
    entry = {"kind": "baseline" if name in baselines.BASELINES else "derived" if derived else "model"}
    if derived:
        entry.update(description=derived["description"], reads=derived["reads"])
    elif name in baselines.BASELINES:
        entry.update(description=baselines.BASELINES[name].description, reads=baselines.BASELINES[name].reads)
    else:
        entry.update(description=model_spec(name).description, reads=model_spec(name).reads)
    entry.update(score(name, films, probabilities))
    entry["films"] = {"train": training_films, "val": len(films["val"].ids), "test": len(films["test"].ids)}
    entry["provenance"] = provenance(name, derived["inputs"] if derived else None)
    return entry


def score(name: str, films: dict[str, Films], probabilities: dict[str, np.ndarray]) -> dict:
    """Both decision rules chosen on validation, every metric under them, and the test tables.

    The micro rule (``rule``: best validation micro-F1) gives the headline scores (``val``,
    ``test``); the macro rule (``macro_rule``: best validation macro-F1, per-genre thresholds
    shrunk towards the global one) gives ``val_macro_rule`` and ``test_macro_rule``. The
    test tables of ``results/<name>/`` are under the micro rule, with the macro rule's
    per-genre precision, recall and F1 beside them.
    """
    labels = {split: films[split].labels.astype(np.int8) for split in SPLITS}
    rule, candidates = choose_rule(probabilities["val"], labels["val"])
    macro_rule, macro_candidates = choose_rule(probabilities["val"], labels["val"], objective="macro")
    for chosen in [rule, macro_rule, *(c["rule"] for c in candidates + macro_candidates)]:
        chosen.setdefault("description", describe_rule(chosen))  # so the report needs no code of ours
    entry = {"rule": rule, "rule_candidates": candidates,
             "macro_rule": macro_rule, "macro_rule_candidates": macro_candidates}
    ranking = {split: ranking_metrics(labels[split], probabilities[split]) for split in SPLITS}
    for suffix, chosen in (("", rule), ("_at_0.5", FIXED_RULE), ("_macro_rule", macro_rule)):
        for split in SPLITS:
            entry[f"{split}{suffix}"] = compute_metrics(labels[split], apply_rule(probabilities[split], chosen),
                                                        probabilities[split], ranking=ranking[split])
    entry["excluded_genres"] = entry["test"]["excluded_genres"]

    predicted = apply_rule(probabilities["test"], rule)
    table = per_genre_table(labels["test"], predicted, probabilities["test"])
    macro = per_genre_table(labels["test"], apply_rule(probabilities["test"], macro_rule), probabilities["test"])
    for column in ("precision", "recall", "f1"):
        table[f"{column}_macro_rule"] = macro[column]
    entry["macro_rule_recovers"] = table.loc[(table["f1"] == 0) & (table["f1_macro_rule"] > 0), "genre"].tolist()
    folder = config.paths().results / name
    files.write_csv(folder / "per_genre.csv", table)
    per_genre, genre_by_genre = confusion_tables(labels["test"], predicted)
    files.write_csv(folder / "confusion_per_genre.csv", per_genre)
    files.write_csv(folder / "confusion_genres.csv", genre_by_genre)
    files.write_csv(folder / "false_positives.csv", false_positive_table(labels["test"], predicted))
    return entry


def rescore_all(log=print) -> dict:
    """Recompute every entry of ``metrics.json`` from its committed ``predictions.csv``, no model needed.

    Rules, metrics and tables follow the current evaluation code; what each entry was
    evaluated from (its provenance, apart from this file's hash) stays as recorded, since
    the predictions are unchanged. The fusion is left to ``fusion.fuse_best``.
    """
    where = config.paths()
    metrics = files.read_json(where.metrics, default={})
    films = {split: evaluation_films(split) for split in SPLITS}
    this_code = _sha256(Path(__file__))
    for name, entry in metrics.get("models", {}).items():
        if entry["kind"] == "derived":
            continue
        probabilities = {split: _aligned(name, films[split], split) for split in SPLITS}
        fresh = {key: entry[key] for key in ("kind", "description", "reads")} | score(name, films, probabilities)
        fresh["films"], fresh["provenance"] = entry["films"], entry["provenance"]
        fresh["provenance"]["inputs"]["src/filmgenre/evaluate.py"] = this_code
        metrics["models"][name] = fresh
        log(f"{name}: rescored from {predictions_path(name).relative_to(where.root)}; test micro-F1 "
            f"{fresh['test']['f1_micro']:.3f}, macro-F1 {fresh['test']['f1_macro']:.3f} (macro rule "
            f"{fresh['test_macro_rule']['f1_macro']:.3f})")
    files.write_json(where.metrics, metrics)
    return metrics


# --------------------------------------------------------------------------- comparing two models
def right_top1(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Whether the model is *right* on each film: its top-1 genre (highest probability;
    ties: the earlier genre) is one of the film's true genres."""
    top = np.argmax(np.asarray(probabilities), axis=1)
    return np.asarray(labels)[np.arange(len(top)), top] > 0


def bucket_names(a: str, b: str) -> list[str]:
    return ["both right", f"only {a} right", f"only {b} right", "both wrong"]


def _aligned(name: str, films: Films, split: str) -> np.ndarray:
    table = read_predictions(name)
    table = table[table["split"] == split]
    if table["Id"].tolist() != films.ids.tolist():
        raise EvaluateError(f"{predictions_path(name)}: its {split} films are not the evaluation films. "
                            f"Run `filmgenre evaluate {name}` again.")
    return table[config.GENRES].to_numpy(dtype=np.float64)


def buckets(a: str, b: str, films: Films | None = None, split: str = "test") -> tuple[np.ndarray, dict]:
    """Each film's bucket (both right / only a right / only b right / both wrong), with the
    probabilities of both models read from their ``predictions.csv``. See ``right_top1``."""
    films = evaluation_films(split) if films is None else films
    probabilities = {name: _aligned(name, films, split) for name in (a, b)}
    right_a, right_b = (right_top1(probabilities[name], films.labels) for name in (a, b))
    names = bucket_names(a, b)
    chosen = np.select([right_a & right_b, right_a & ~right_b, ~right_a & right_b], names[:3], names[3])
    return chosen, probabilities


def agreement(a: str, b: str, films: Films | None = None, split: str = "test") -> dict:
    """How often models ``a`` and ``b`` are right (top-1 genre is a true genre) on the same films."""
    chosen, _ = buckets(a, b, films, split)
    counts = {name: int((chosen == name).sum()) for name in bucket_names(a, b)}
    return {"models": [a, b], "split": split, "films": int(len(chosen)), "definition": RIGHT_DEFINITION,
            "counts": counts, "samples": str(samples_path(a, b).relative_to(config.paths().root))}


def _top3(probabilities: np.ndarray) -> str:
    top = np.argsort(-probabilities, kind="stable")[:3]
    return ", ".join(f"{config.GENRES[g]} {probabilities[g]:.2f}" for g in top)


def sample_films(a: str, b: str, per_bucket: int = 2, films: Films | None = None, split: str = "test",
                 seed: int = config.SEED) -> pd.DataFrame:
    """A few test films from each bucket of ``a`` vs ``b`` (seeded, so always the same films).

    Buckets: both right, only ``a`` right, only ``b`` right, both wrong, where *right* means
    the model's top-1 genre is one of the film's true genres. Within a bucket the films
    are drawn at random (seed ``seed``), so they are typical of it rather than extreme.
    Columns: Id, bucket, overview, true_genres, ``<a>_top3``, ``<b>_top3`` (genre and probability).
    """
    films = evaluation_films(split) if films is None else films
    chosen, probabilities = buckets(a, b, films, split)
    rng = np.random.default_rng(seed)
    rows = []
    for bucket in bucket_names(a, b):
        members = np.flatnonzero(chosen == bucket)
        for index in sorted(rng.choice(members, size=min(per_bucket, len(members)), replace=False)):
            rows.append({
                "Id": films.ids[index], "bucket": bucket, "overview": films.overviews[index],
                "true_genres": ", ".join(g for g, on in zip(config.GENRES, films.labels[index]) if on),
                f"{a}_top3": _top3(probabilities[a][index]), f"{b}_top3": _top3(probabilities[b][index]),
            })
    return pd.DataFrame(rows, columns=["Id", "bucket", "overview", "true_genres", f"{a}_top3", f"{b}_top3"])


def samples_path(a: str, b: str) -> Path:
    results = config.paths().results
    return results / "samples.csv" if (a, b) == ("cnn", "lstm") else results / f"samples_{a}_vs_{b}.csv"


# --------------------------------------------------------------------------- the stage
def available_names() -> list[str]:
    """Trained models present (``models/<name>.keras``, smoke runs ``*-limit*`` left out), then baselines."""
    from filmgenre import models

    trained = [name for name in models.MODELS if (config.paths().models / f"{name}.keras").exists()]
    return trained + list(baselines.BASELINES)


def _check_names(names: Sequence[str]) -> list[str]:
    from filmgenre import models

    for name in names:
        if name in baselines.BASELINES:
            continue
        if name.split("-limit")[0] not in models.MODELS:
            raise EvaluateError(f"unknown model or baseline '{name}'. Models: {', '.join(models.MODELS)}; "
                                f"baselines: {', '.join(baselines.BASELINES)}.")
        if not (config.paths().models / f"{name}.keras").exists():
            base = name.split("-limit")[0]
            limit = f" --limit {name.split('-limit')[1]}" if "-limit" in name else ""
            raise EvaluateError(f"{config.paths().models / f'{name}.keras'}: not found. "
                                f"Run `filmgenre train {base}{limit}` first.")
    return list(names)


def _training_films(name: str) -> int | None:
    summary = files.read_json(config.paths().results / name / "train.json", default={})
    return summary.get("training_films")


def evaluate_all(names: list[str] | None = None, log=print) -> dict:
    """Evaluate models and baselines (default: every trained model present and every baseline).

    Writes ``results/<name>/`` for each, the model comparisons of ``PAIRS`` whose models
    both have results, and ``results/metrics.json`` (entries of models not evaluated
    this time are kept). Returns the content of ``metrics.json``.
    """
    where = config.paths()
    names = available_names() if names is None else _check_names(names)
    if not names:
        raise EvaluateError("nothing to evaluate.")
    sets: dict[int, dict[str, Films]] = {}

    def films_at(image_size: int) -> dict[str, Films]:
        if image_size not in sets:
            sets[image_size] = {split: evaluation_films(split, image_size) for split in SPLITS}
            reference = sets[min(sets)]
            for split in SPLITS:
                if sets[image_size][split].ids.tolist() != reference[split].ids.tolist():
                    raise EvaluateError(f"the {split} films with a poster differ between image sizes "
                                        f"{min(sets)} and {image_size}. Run `filmgenre prepare` again for both.")
        return sets[image_size]

    metrics = files.read_json(where.metrics, default={})
    metrics.setdefault("models", {})
    films = films_at(config.IMAGE_SIZE)
    log(f"Evaluating {len(names)} model(s) and baseline(s) on {len(films['val'].ids)} validation and "
        f"{len(films['test'].ids)} test films: {', '.join(names)}")
    for name in names:
        started = time.perf_counter()
        if name in baselines.BASELINES:
            log(f"{name}: fitting the baseline on the training films ...")
            train_films = baselines.training_films(name)
            outputs = baselines.run(name, [films[s] for s in SPLITS], train=train_films)
            training = len(train_films.ids)
            used = films
        else:
            log(f"{name}: predicting with {where.models / f'{name}.keras'} ...")
            used = films_at(model_spec(name).image_size)
            outputs = predict_model(name, [used[s] for s in SPLITS])
            training = _training_films(name)
        entry = evaluate_predictions(name, used, dict(zip(SPLITS, outputs)), training)
        metrics["models"][name] = entry
        files.write_json(where.metrics, metrics)  # after each model: an interruption keeps finished ones
        test = entry["test"]
        log(f"{name}: rule {describe_rule(entry['rule'])} (val micro-F1 {entry['val']['f1_micro']:.3f}); "
            f"test micro-F1 {test['f1_micro']:.3f}, macro-F1 {test['f1_macro']:.3f}, "
            f"macro AP {test['average_precision_macro']:.3f}, at 0.5 micro-F1 "
            f"{entry['test_at_0.5']['f1_micro']:.3f} [{time.perf_counter() - started:.1f} s]")

    for a, b in PAIRS:
        if all(m in metrics["models"] and predictions_path(m).exists() for m in (a, b)):
            metrics.setdefault("agreement", {})[f"{a}_vs_{b}"] = agreement(a, b, films["test"])
            files.write_csv(samples_path(a, b), sample_films(a, b, films=films["test"]))
            counts = metrics["agreement"][f"{a}_vs_{b}"]["counts"]
            log(f"{a} vs {b} on test: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                + f"; samples in {samples_path(a, b).relative_to(where.root)}")
    files.write_json(where.metrics, metrics)
    log(f"Wrote {where.metrics.relative_to(where.root)} and results/<name>/ for {', '.join(names)}.")
    return metrics
