"""Genre-name leakage: how often an overview names its own genre, and what the text models score without it.

An overview that says "a gritty crime drama" hands a text model its labels; a poster rarely
prints its genre. So part of the text models' lead over the poster models may be the label
restated rather than inferred. Two measurements answer how much:

- **naming**: the share of test films whose overview contains the name of one of their own
  genres, or a word made from it (``GENRE_WORDS``: "romantic", "comedic", "horrific", ...);
- **masking**: the text models re-scored on test overviews with every genre's words removed,
  whatever the film's genres (masking only a film's own genres would itself leak its labels),
  under the rule each model chose on validation, with paired bootstrap intervals against the
  original overviews and against the best poster model.

The models are not retrained on masked text: a model that leaned on the names loses them
without the chance to learn a substitute, so the drop is an upper bound of what the names give.
"""

import re
from typing import Callable, Sequence

import numpy as np

from filmgenre import config, uncertainty
from filmgenre.rules import apply_rule

PredictTexts = Callable[[Sequence[str]], np.ndarray]

# Each genre's name and the words an overview makes from it (plural, adjective, person). Words
# that merely relate to a genre ("murder", "love", "ghost") are not names: they are what a model
# should learn to read.
GENRE_WORDS = {
    "Action": ("action",),
    "Adventure": ("adventure", "adventures", "adventurer", "adventurers", "adventurous"),
    "Animation": ("animation", "animated"),
    "Biography": ("biography", "biographical"),
    "Comedy": ("comedy", "comedies", "comedic", "comic", "comical"),
    "Crime": ("crime", "crimes", "criminal", "criminals"),
    "Documentary": ("documentary", "documentaries"),
    "Drama": ("drama", "dramas", "dramatic"),
    "Family": ("family", "families"),
    "Fantasy": ("fantasy", "fantasies", "fantastical"),
    "History": ("history", "historic", "historical"),
    "Horror": ("horror", "horrors", "horrific", "horrifying"),
    "Music": ("music", "musician", "musicians"),
    "Musical": ("musical", "musicals"),
    "Mystery": ("mystery", "mysteries", "mysterious"),
    "News": ("news",),
    "Reality-TV": ("reality tv", "reality-tv"),
    "Romance": ("romance", "romances", "romantic"),
    "Sci-Fi": ("sci-fi", "scifi", "science fiction", "science-fiction"),
    "Short": (),  # "short" describes too much else
    "Sport": ("sport", "sports"),
    "Thriller": ("thriller", "thrillers"),
    "War": ("war", "wars"),
    "Western": ("western", "westerns"),
    "N/A": (),
}


def _pattern(words: Sequence[str]) -> re.Pattern | None:
    """Whole words (a two-word name with a space or hyphen between), any case, with a possessive."""
    if not words:
        return None
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"[\s-]+") for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?:'s)?(?![\w-])", re.IGNORECASE)


PATTERNS = {genre: _pattern(words) for genre, words in GENRE_WORDS.items()}
ANY_GENRE = _pattern([w for words in GENRE_WORDS.values() for w in words])


def named_genres(text: str) -> set[str]:
    """The genres whose name (or a word made from it) the text contains."""
    return {genre for genre, pattern in PATTERNS.items() if pattern is not None and pattern.search(text)}


def mask(text: str) -> str:
    """The text with every genre's words removed (and the spaces they leave closed up)."""
    return re.sub(r"\s{2,}", " ", ANY_GENRE.sub("", text)).strip()


def naming(overviews: Sequence[str], labels: np.ndarray, min_films: int = uncertainty.MIN_TEST_FILMS) -> dict:
    """How often overviews name genres: the share of films naming one of their own genres, naming
    any genre, of (film, true genre) pairs whose genre is named, and per genre with at least
    ``min_films`` films the share of its films whose overview names it."""
    labels = np.asarray(labels) > 0
    named = np.array([[genre in found for genre in config.GENRES] for found in map(named_genres, overviews)])
    support = labels.sum(axis=0)
    per_genre = {config.GENRES[g]: {"films": int(support[g]), "share": round(float(named[labels[:, g], g].mean()), 4)}
                 for g in np.argsort(-support, kind="stable") if support[g] >= min_films and PATTERNS[config.GENRES[g]]}
    return {"films": int(len(labels)), "own_genre": round(float((named & labels).any(axis=1).mean()), 4),
            "any_genre": round(float(named.any(axis=1).mean()), 4),
            "pairs": round(float(named[labels].mean()), 4), "per_genre": per_genre}


def measure(overviews: Sequence[str], labels: np.ndarray, predictors: dict[str, PredictTexts], rules: dict[str, dict],
            poster: tuple[str, np.ndarray, dict] | None = None) -> dict:
    """Naming shares, and each text model's test scores on original and masked overviews with
    the paired differences masked - original and, with ``poster`` (its name, its test
    probabilities on the same films, its rule), text - poster on either kind of overview."""
    masked = [mask(text) for text in overviews]
    labels = np.asarray(labels)
    genres = uncertainty.scored_genres(labels, uncertainty.MIN_TEST_FILMS)
    sets, pairs = {}, []
    for name, predict in predictors.items():
        for kind, texts in (("original", list(overviews)), ("masked", masked)):
            probabilities = np.asarray(predict(texts), dtype=np.float64)
            sets[f"{name}/{kind}"] = {"probabilities": probabilities, "predicted": apply_rule(probabilities, rules[name])}
        pairs.append((f"{name}/masked", f"{name}/original"))
        if poster is not None:
            pairs += [(f"{name}/{kind}", poster[0]) for kind in ("original", "masked")]
    if poster is not None:
        sets[poster[0]] = {"probabilities": poster[1], "predicted": apply_rule(poster[1], poster[2])}
    scores, differences = uncertainty.paired_scores(labels, sets, pairs, genres)
    removed = sum(len(ANY_GENRE.findall(text)) for text in overviews)
    return {"genre_words": {g: list(w) for g, w in GENRE_WORDS.items() if w},
            "naming": naming(overviews, labels),
            "masked": {"overviews_changed": round(float(np.mean([bool(ANY_GENRE.search(t)) for t in overviews])), 4),
                       "words_removed": int(removed)},
            "macro_genres": [config.GENRES[g] for g in genres],
            "scores": scores, "differences": differences, "poster": poster[0] if poster else None}
