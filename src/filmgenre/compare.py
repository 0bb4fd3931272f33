"""Two models film by film: how often each is right where the other is not, and sample films of each case."""

from pathlib import Path

import numpy as np
import pandas as pd

from filmgenre import config
from filmgenre.dataset import Films
from filmgenre.predictions import aligned, evaluation_films

PAIRS = [("cnn", "lstm")]  # model pairs compared film by film (agreement, samples)
RIGHT_DEFINITION = "a model is right on a film when its top-1 genre is one of the film's true genres"


def right_top1(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Whether the model is *right* on each film: its top-1 genre (highest probability;
    ties: the earlier genre) is one of the film's true genres."""
    top = np.argmax(np.asarray(probabilities), axis=1)
    return np.asarray(labels)[np.arange(len(top)), top] > 0


def bucket_names(a: str, b: str) -> list[str]:
    return ["both right", f"only {a} right", f"only {b} right", "both wrong"]


def buckets(a: str, b: str, films: Films | None = None, split: str = "test") -> tuple[np.ndarray, dict]:
    """Each film's bucket (both right / only a right / only b right / both wrong), with the
    probabilities of both models read from their ``predictions.csv``. See ``right_top1``."""
    films = evaluation_films(split) if films is None else films
    probabilities = {name: aligned(name, films, split) for name in (a, b)}
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
