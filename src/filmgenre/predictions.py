"""Each result's probabilities, as written to ``results/<name>/predictions.csv`` and read back checked.

Probabilities are rounded to ``DECIMALS`` through the very text the file holds
(``quantise``), so every number computed from them is reproducible from the committed file.
The evaluation set of a split is its films that have a poster: the same films for every
model, poster or text, so rows of the tables compare.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from filmgenre import FilmgenreError, config, files
from filmgenre.dataset import Films

SPLITS = ("val", "test")
DECIMALS = 6


class PredictionsError(FilmgenreError):
    """A predictions file that is missing, unreadable or not about the evaluation films."""


def evaluation_films(split: str, image_size: int = config.IMAGE_SIZE) -> Films:
    """The films every model is evaluated on: those of ``split`` that have a poster."""
    from filmgenre import features  # TensorFlow: only where films are loaded

    return features.load_split(split, posters=True, image_size=image_size)


def quantise(probabilities: np.ndarray) -> np.ndarray:
    """Round to ``DECIMALS`` through the very text written to ``predictions.csv``."""
    text = np.char.mod(f"%.{DECIMALS}f", np.asarray(probabilities, dtype=np.float64))
    return text.astype(np.float64)


def predictions_path(name: str) -> Path:
    return config.paths().results / name / "predictions.csv"


def read_predictions(name: str) -> pd.DataFrame:
    """``results/<name>/predictions.csv`` with its probabilities exactly as written, checked: Id and
    split columns, one float column per genre, probabilities in [0, 1]."""
    path = predictions_path(name)
    fix = f"Run `filmgenre evaluate {name}` (or `make all`)."
    if not path.exists():
        raise PredictionsError(f"{path}: not found. {fix}")
    try:
        table = pd.read_csv(path, dtype={"Id": str, "split": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise PredictionsError(f"{path}: not a readable CSV ({type(error).__name__}). {fix}") from None
    missing = [column for column in ["Id", "split", *config.GENRES] if column not in table.columns]
    if missing:
        raise PredictionsError(f"{path}: no column {missing[0]!r}. {fix}")
    values = table[config.GENRES]
    if not all(pd.api.types.is_float_dtype(values[g]) or pd.api.types.is_integer_dtype(values[g])
               for g in config.GENRES) or values.isna().any().any() or not values.stack().between(0, 1).all():
        raise PredictionsError(f"{path}: probabilities that are not numbers in [0, 1]. {fix}")
    return table


def write_predictions(name: str, films: dict[str, Films], probabilities: dict[str, np.ndarray]) -> None:
    frames = []
    for split in SPLITS:
        frame = pd.DataFrame(probabilities[split], columns=config.GENRES)
        frame.insert(0, "split", split)
        frame.insert(0, "Id", films[split].ids)
        frames.append(frame)
    files.write_csv(predictions_path(name), pd.concat(frames, ignore_index=True), float_format=f"%.{DECIMALS}f")



def aligned(name: str, films: Films, split: str) -> np.ndarray:
    """``name``'s probabilities (films x genres) of one split, checked to be for exactly ``films``, in order."""
    table = read_predictions(name)
    table = table[table["split"] == split]
    if table["Id"].tolist() != films.ids.tolist():
        raise PredictionsError(f"{predictions_path(name)}: its {split} films are not the evaluation films. "
                               f"Run `filmgenre evaluate {name}` again.")
    return table[config.GENRES].to_numpy(dtype=np.float64)
