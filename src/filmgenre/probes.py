"""What a model uses, measured over plain callables: the probes `filmgenre explain` runs.

Each probe takes ``predict_images(uint8 N x H x W x 3) -> N x 25 probabilities`` or
``predict_texts(list of str) -> N x 25 probabilities`` and films, never a trained model or a
file: any model (or baseline) can be probed, and the tests probe hand-made functions whose
answer is known. ``explain`` builds the callables for the trained models and writes the tables.
"""

import re
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from filmgenre import baselines, config, uncertainty
from filmgenre.rules import apply_rule

PredictImages = Callable[[np.ndarray], np.ndarray]
PredictTexts = Callable[[Sequence[str]], np.ndarray]

PATCH = 1 / 4  # occluded square, as a fraction of the poster's side
STRIDE = 1 / 8  # step between squares: 7 x 7 positions
REGIONS = 8  # the committed mean maps: REGIONS x REGIONS cells of the poster
OCCLUSION_BATCH = 4096  # occluded variants per predict call (memory: 4096 posters at the model's size)
ABLATIONS = ("original", "grayscale", "shuffled")
WORD_MIN_COUNT = 10  # a word must occur in this many test overviews to be ranked (fewer: anecdotes)
TOP_WORDS = 8
CALIBRATION_BINS = 10


# --------------------------------------------------------------------------- posters
def occlusion_maps(predict_images: PredictImages, images: np.ndarray, genres: Sequence[int],
                   patch: float = PATCH, stride: float = STRIDE) -> np.ndarray:
    """Per poster, the drop in the probability of its genre (``genres[i]``, an index of
    ``config.GENRES``) when each pixel is occluded: N x H x W, each pixel the mean drop over the
    squares that cover it. The square is filled with the poster's mean colour, so the poster's
    overall colour is kept and a model that only sees the colour distribution sees a change
    only where the square changes that distribution."""
    images = np.asarray(images, dtype=np.uint8)
    n, height, width, _ = images.shape
    size, step = max(1, round(height * patch)), max(1, round(height * stride))
    corners = [(top, left) for top in range(0, height - size + 1, step) for left in range(0, width - size + 1, step)]
    genres = np.asarray(genres)
    base = np.asarray(predict_images(images))[np.arange(n), genres]
    cover = np.zeros((height, width))
    for top, left in corners:
        cover[top:top + size, left:left + size] += 1
    maps = np.zeros((n, height, width))
    per_call = max(1, OCCLUSION_BATCH // len(corners))  # posters whose variants go in one predict call
    for start in range(0, n, per_call):
        chunk = images[start:start + per_call]
        variants = np.repeat(chunk, len(corners), axis=0).reshape(len(chunk), len(corners), *chunk.shape[1:])
        fills = chunk.reshape(len(chunk), -1, 3).mean(axis=1).round().astype(np.uint8)
        for k, (top, left) in enumerate(corners):
            variants[:, k, top:top + size, left:left + size] = fills[:, None, None, :]
        probabilities = np.asarray(predict_images(variants.reshape(-1, *chunk.shape[1:])))
        rows = np.arange(len(chunk))
        drops = base[start + rows, None] - probabilities.reshape(len(chunk), len(corners), -1)[
            rows, :, genres[start + rows]]
        for k, (top, left) in enumerate(corners):
            maps[start + rows, top:top + size, left:left + size] += drops[:, k, None, None]
    return maps / np.maximum(cover, 1)  # a pixel no square covers (a ragged edge) stays 0


def region_means(maps: np.ndarray, regions: int = REGIONS) -> np.ndarray:
    """Pixel maps (N x H x W) averaged over posters and pooled into regions x regions cells, so
    maps of models reading different poster sizes compare."""
    mean = np.asarray(maps).mean(axis=0)
    rows = np.array_split(np.arange(mean.shape[0]), regions)
    cols = np.array_split(np.arange(mean.shape[1]), regions)
    return np.array([[mean[np.ix_(r, c)].mean() for c in cols] for r in rows])


def grayscale(images: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in all three channels: brightness kept, hue and saturation gone."""
    luma = np.asarray(images, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(luma.round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def shuffled(images: np.ndarray, seed: int = config.SEED) -> np.ndarray:
    """Each poster's pixels permuted at random within it: exactly the same colour histogram,
    no layout, shapes or lettering."""
    rng = np.random.default_rng(seed)
    images = np.asarray(images)
    flat = images.reshape(len(images), -1, images.shape[-1])
    return np.stack([pixels[rng.permutation(len(pixels))] for pixels in flat]).reshape(images.shape)


def ablate(images: np.ndarray, kind: str) -> np.ndarray:
    """The posters as ``kind`` of ``ABLATIONS`` leaves them."""
    return {"original": lambda x: x, "grayscale": grayscale, "shuffled": shuffled}[kind](images)


def ablation_scores(predict_images: PredictImages, images: np.ndarray, labels: np.ndarray, rule: dict,
                    reference: tuple[str, np.ndarray, dict] | None = None) -> list[dict]:
    """Test scores on each ablation of the posters under one fixed decision rule: micro-F1, and
    macro-F1 and macro-AP over the genres with at least ``uncertainty.MIN_TEST_FILMS`` films.

    With ``reference`` (the name, test probabilities and rule of a model that reads no poster,
    such as the constant prior), also each score's margin over it, micro-F1 and the
    threshold-free macro-AP (which a probability scale shifted by the ablation cannot move
    through a threshold), with paired 95% bootstrap intervals.
    """
    labels = np.asarray(labels)
    sets = {}
    for kind in ABLATIONS:
        probabilities = np.asarray(predict_images(ablate(images, kind)), dtype=np.float64)
        sets[kind] = {"probabilities": probabilities, "predicted": apply_rule(probabilities, rule)}
    if reference is not None:
        sets[reference[0]] = {"probabilities": reference[1], "predicted": apply_rule(reference[1], reference[2])}
    pairs = [(kind, reference[0]) for kind in ABLATIONS] if reference is not None else []
    scores, differences = uncertainty.paired_scores(
        labels, sets, pairs, uncertainty.scored_genres(labels, uncertainty.MIN_TEST_FILMS))
    rows = []
    for kind in ABLATIONS:
        row = {"posters": kind, "micro-F1": scores[kind]["f1_micro"], "macro-F1": scores[kind]["f1_macro_fixed"],
               "macro-AP": scores[kind]["average_precision_macro_fixed"]}
        for metric, label in (("f1_micro", "micro-F1"), ("average_precision_macro_fixed", "macro-AP")):
            if reference is not None:
                found = differences[f"{kind}_vs_{reference[0]}"][metric]
                row |= {f"{label} margin": found["difference"], f"{label} margin low": found["interval"][0],
                        f"{label} margin high": found["interval"][1]}
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- overviews
def words(text: str) -> list[str]:
    """An overview's words as the models' tokenizer sees them: split on white space."""
    return text.split()


def normalise(word: str) -> str:
    """Lower case without punctuation, as ``TextVectorization``'s default standardisation."""
    return re.sub(r"[^\w]", "", word.lower())


def leave_one_word_out(predict_texts: PredictTexts, texts: Sequence[str]) -> list[np.ndarray]:
    """Per overview, a words x 25 array: the probability of each genre with the overview intact
    minus that without the word (positive: the word raises the genre). One batched call."""
    split = [words(text) for text in texts]
    variants = [" ".join(w[:j] + w[j + 1:]) for w in split for j in range(len(w))]
    probabilities = np.asarray(predict_texts(list(texts) + variants), dtype=np.float64)
    base, rest = probabilities[:len(texts)], probabilities[len(texts):]
    out, start = [], 0
    for i, w in enumerate(split):
        out.append(base[i] - rest[start:start + len(w)])
        start += len(w)
    return out


def word_ranking(texts: Sequence[str], contributions: Sequence[np.ndarray], genre: str,
                 min_count: int = WORD_MIN_COUNT, top: int = TOP_WORDS) -> pd.DataFrame:
    """The words whose removal lowers ``genre``'s probability most, on average over their
    occurrences, among words in at least ``min_count`` of the overviews."""
    g = config.GENRES.index(genre)
    rows = [(normalise(word), drop[g], i) for i, (text, drops) in enumerate(zip(texts, contributions))
            for word, drop in zip(words(text), drops)]
    frame = pd.DataFrame(rows, columns=["word", "contribution", "film"])
    frame = frame[frame["word"] != ""]
    grouped = frame.groupby("word").agg(contribution=("contribution", "mean"), films=("film", "nunique"))
    grouped = grouped[grouped["films"] >= min_count].sort_values("contribution", ascending=False).head(top)
    return grouped.reset_index().assign(genre=genre, rank=lambda f: np.arange(1, len(f) + 1))


def tfidf_terms(vectorizer, model: baselines.OneVsRest, genres: Sequence[str], top: int = TOP_WORDS) -> pd.DataFrame:
    """Per genre, the TF-IDF terms with the largest logistic-regression coefficients."""
    names = vectorizer.get_feature_names_out()
    rows = []
    for genre in genres:
        classifier = model.classifiers[config.GENRES.index(genre)]
        if classifier is None:
            continue
        coefficients = classifier.coef_.ravel()
        for rank, index in enumerate(np.argsort(-coefficients)[:top], start=1):
            rows.append({"genre": genre, "rank": rank, "term": names[index], "coefficient": coefficients[index]})
    return pd.DataFrame(rows, columns=["genre", "rank", "term", "coefficient"])


# --------------------------------------------------------------------------- calibration
def calibration_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Reliability diagram data: per probability bin (equal width), the pairs in it, their mean
    predicted probability and the observed share of positives, pooled over every (film, genre)."""
    p, y = np.asarray(probabilities, dtype=np.float64).ravel(), np.asarray(labels).ravel()
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows = [{"bin": b, "low": b / bins, "high": (b + 1) / bins, "pairs": int((index == b).sum()),
             "predicted": p[index == b].mean() if (index == b).any() else np.nan,
             "observed": y[index == b].mean() if (index == b).any() else np.nan} for b in range(bins)]
    return pd.DataFrame(rows)


def calibration_error(table: pd.DataFrame) -> float:
    """Expected calibration error: the pair-weighted mean |observed - predicted| over the bins."""
    used = table[table["pairs"] > 0]
    return float((used["pairs"] * (used["observed"] - used["predicted"]).abs()).sum() / used["pairs"].sum())
