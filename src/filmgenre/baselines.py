"""Baselines without deep learning: what the CNN and the LSTM have to beat.

Each baseline is fitted on the training split only and returns, for every film of each
split it is asked about, one probability per genre (``config.GENRES`` order), aligned
with the films it was given. ``evaluate`` treats them exactly like the trained models:
same films, same decision rule chosen on validation, same metrics.

- ``prior``: every film gets the training-set genre frequencies (no input at all).
- ``tfidf_logreg``: word 1-2-gram TF-IDF of the overview + one logistic regression per genre.
- ``poster_histogram``: colour histograms and simple statistics of the poster + one
  logistic regression per genre.

A genre with no positive (or no negative) training film cannot be fitted: it gets the
constant training frequency (0 when it never occurs), never an error.
"""

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from filmgenre import config
from filmgenre.dataset import Films

N_GENRES = len(config.GENRES)


# --------------------------------------------------------------------------- helpers
@dataclass
class OneVsRest:
    """One fitted binary classifier per genre; ``None`` where training had a single class, so the
    genre keeps its constant training frequency. Kept as an object (not only its predictions) so
    ``explain`` can read the coefficients and score perturbed inputs with the very same fit."""

    classifiers: list
    frequency: np.ndarray

    def predict(self, x) -> np.ndarray:
        output = np.tile(self.frequency, (x.shape[0], 1)).astype(np.float64)
        for genre, classifier in enumerate(self.classifiers):
            if classifier is not None:
                output[:, genre] = classifier.predict_proba(x)[:, 1]
        return output


def fit_one_vs_rest(train_x, train_labels: np.ndarray, make_classifier) -> OneVsRest:
    """Fit one binary classifier per genre that has both classes in training."""
    classifiers = [None if column.min() == column.max() else make_classifier().fit(train_x, column.astype(int))
                   for column in np.asarray(train_labels).T]
    return OneVsRest(classifiers, np.asarray(train_labels).mean(axis=0))


# --------------------------------------------------------------------------- prior
def prior(train: Films, targets: Sequence[Films]) -> list[np.ndarray]:
    """The training-set genre frequencies, identical for every film."""
    frequency = train.labels.astype(np.float64).mean(axis=0)
    return [np.tile(frequency, (len(films.ids), 1)) for films in targets]


# --------------------------------------------------------------------------- TF-IDF
TFIDF_PARAMS = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2, "C": 4.0, "solver": "liblinear"}


def fit_tfidf(train: Films, **overrides):
    """The fitted TF-IDF vectorizer and its logistic regressions (``tfidf_logreg`` without predicting).

    ``liblinear`` fits the sparse TF-IDF matrix in seconds (``lbfgs``: minutes, same scores).
    C = 4 was the best of 1, 4, 10 on validation micro-F1 (0.548, 0.570, 0.568).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    params = {**TFIDF_PARAMS, **overrides}
    vectorizer = TfidfVectorizer(ngram_range=tuple(params["ngram_range"]), sublinear_tf=params["sublinear_tf"],
                                 min_df=params["min_df"])
    train_x = vectorizer.fit_transform(train.overviews)
    return vectorizer, fit_one_vs_rest(train_x, train.labels,
                                       lambda: LogisticRegression(C=params["C"], solver=params["solver"]))


def tfidf_logreg(train: Films, targets: Sequence[Films], **overrides) -> list[np.ndarray]:
    """TF-IDF (word 1-2-grams, sublinear tf, min_df 2) + one-vs-rest logistic regression."""
    vectorizer, model = fit_tfidf(train, **overrides)
    return [model.predict(vectorizer.transform(films.overviews)) for films in targets]


# --------------------------------------------------------------------------- poster histogram
HISTOGRAM_PARAMS = {"bins": 16, "C": 0.1, "max_iter": 2000}


def poster_features(posters: np.ndarray, bins: int = HISTOGRAM_PARAMS["bins"], chunk: int = 512) -> np.ndarray:
    """Per-poster colour features: HSV histograms, RGB/HSV statistics, darkness, edges.

    Per channel of hue, saturation and value: a ``bins``-bin histogram (fractions of the
    pixels). Then mean and standard deviation of R, G, B, S and V, the fractions of dark
    (V < 0.2) and bright (V > 0.8) pixels, the mean brightness of each image quadrant and
    the mean absolute brightness gradient (how busy the poster is).
    """
    from matplotlib.colors import rgb_to_hsv

    rows = []
    for start in range(0, len(posters), chunk):
        rgb = posters[start:start + chunk].astype(np.float32) / 255.0
        n, height, width, _ = rgb.shape
        hsv = rgb_to_hsv(rgb).astype(np.float32)
        flat = hsv.reshape(n, -1, 3)
        histograms = []
        for channel in range(3):
            index = np.minimum((flat[:, :, channel] * bins).astype(np.int64), bins - 1)
            counts = np.bincount((index + bins * np.arange(n)[:, None]).ravel(), minlength=n * bins)
            histograms.append(counts.reshape(n, bins) / flat.shape[1])
        value, saturation = hsv[..., 2], hsv[..., 1]
        half_h, half_w = height // 2, width // 2
        quadrants = [value[:, :half_h, :half_w], value[:, :half_h, half_w:],
                     value[:, half_h:, :half_w], value[:, half_h:, half_w:]]
        stats = np.column_stack([
            rgb.reshape(n, -1, 3).mean(axis=1), rgb.reshape(n, -1, 3).std(axis=1),
            saturation.reshape(n, -1).mean(axis=1), saturation.reshape(n, -1).std(axis=1),
            value.reshape(n, -1).mean(axis=1), value.reshape(n, -1).std(axis=1),
            (value < 0.2).reshape(n, -1).mean(axis=1), (value > 0.8).reshape(n, -1).mean(axis=1),
            *[q.reshape(n, -1).mean(axis=1) for q in quadrants],
            np.abs(np.diff(value, axis=1)).reshape(n, -1).mean(axis=1),
            np.abs(np.diff(value, axis=2)).reshape(n, -1).mean(axis=1),
        ])
        rows.append(np.column_stack([*histograms, stats]))
    width = 3 * bins + 18
    return np.concatenate(rows).astype(np.float64) if rows else np.zeros((0, width))


def fit_poster_histogram(train: Films, **overrides):
    """The fitted scaler and logistic regressions of ``poster_histogram`` (without predicting)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    params = {**HISTOGRAM_PARAMS, **overrides}
    scaler = StandardScaler()
    train_x = scaler.fit_transform(poster_features(train.posters, params["bins"]))
    return scaler, fit_one_vs_rest(train_x, train.labels,
                                   lambda: LogisticRegression(C=params["C"], max_iter=params["max_iter"]))


def poster_histogram(train: Films, targets: Sequence[Films], **overrides) -> list[np.ndarray]:
    """Colour histograms + brightness/saturation statistics -> StandardScaler -> logistic regression."""
    bins = {**HISTOGRAM_PARAMS, **overrides}["bins"]
    scaler, model = fit_poster_histogram(train, **overrides)
    return [model.predict(scaler.transform(poster_features(films.posters, bins))) for films in targets]


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Baseline:
    """How ``evaluate`` runs one baseline: ``fit_predict(train, [films, ...]) -> [probabilities, ...]``."""

    fit_predict: Callable[[Films, Sequence[Films]], list[np.ndarray]]
    reads: str  # "labels" (nothing but the training labels), "overviews" or "posters"
    description: str
    params: dict = field(default_factory=dict)


BASELINES: dict[str, Baseline] = {
    "prior": Baseline(prior, "labels", "training-set genre frequencies for every film"),
    "tfidf_logreg": Baseline(tfidf_logreg, "overviews",
                             "TF-IDF of the overview (word 1-2-grams) + one-vs-rest logistic regression",
                             TFIDF_PARAMS),
    "poster_histogram": Baseline(poster_histogram, "posters",
                                 "HSV colour histograms and brightness statistics of the poster + "
                                 "one-vs-rest logistic regression", HISTOGRAM_PARAMS),
}


def training_films(name: str, image_size: int = config.IMAGE_SIZE, limit: int | None = None) -> Films:
    """The training films a baseline learns from: all of them, or those with a poster for poster baselines."""
    from filmgenre import features

    return features.load_split("train", posters=BASELINES[name].reads == "posters", image_size=image_size,
                               limit=limit)


def run(name: str, targets: Sequence[Films], train: Films | None = None) -> list[np.ndarray]:
    """Fit baseline ``name`` on the training split and return its probabilities for ``targets``."""
    baseline = BASELINES[name]
    train = training_films(name) if train is None else train
    return [np.asarray(p, dtype=np.float64) for p in baseline.fit_predict(train, targets)]
