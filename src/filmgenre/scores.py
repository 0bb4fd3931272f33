"""Multi-label scores of a model's decisions and probabilities (scikit-learn, ``zero_division=0``),
and the per-genre tables the report reads."""

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, average_precision_score, hamming_loss,
                             multilabel_confusion_matrix, precision_recall_fscore_support, roc_auc_score)

from filmgenre import config
from filmgenre.rules import present_genres


def ranking_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """Average precision and ROC-AUC, macro and micro: scores of the probabilities, not of a rule
    (``score`` computes them once per split for its three rules)."""
    labels = np.asarray(labels).astype(np.int8)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    present = present_genres(labels)
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
    present = present_genres(labels)
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
    present = present_genres(labels)
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
