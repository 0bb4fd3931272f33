"""Every path and constant of the study, in one place.

Paths resolve from the project root (the folder holding ``pyproject.toml``), never from
the working directory, so the CLI, the tests and the Quarto documents (which execute in
their own folders) all read and write the same files. ``FILMGENRE_ROOT`` overrides it.
"""

import os
from dataclasses import dataclass
from pathlib import Path


def _find_root() -> Path:
    if "FILMGENRE_ROOT" in os.environ:
        return Path(os.environ["FILMGENRE_ROOT"]).resolve()
    for folder in [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]:
        if (folder / "pyproject.toml").is_file() and (folder / "src" / "filmgenre").is_dir():
            return folder
    return Path.cwd()


ROOT = _find_root()


@dataclass(frozen=True)
class Paths:
    """Where each stage reads and writes, below one project root."""

    root: Path

    data = property(lambda self: self.root / "data")
    raw = property(lambda self: self.data / "raw")
    processed = property(lambda self: self.data / "processed")
    splits = property(lambda self: self.data / "splits.csv")
    default_source = property(lambda self: self.raw / "Multimodal_IMDB_dataset.zip")
    models = property(lambda self: self.root / "models")
    results = property(lambda self: self.root / "results")
    logs = property(lambda self: self.root / "logs")
    figures = property(lambda self: self.root / "report" / "figures")
    bench = property(lambda self: self.results / "bench.json")
    metrics = property(lambda self: self.results / "metrics.json")


def paths() -> Paths:
    """The project's paths, read at call time so tests can point ``ROOT`` at a scratch project."""
    return Paths(ROOT)


CSV_NAME = "IMDB_overview_genres.csv"
IMAGES_DIR_NAME = "Images"

# The 25 one-hot columns, in the CSV's order (which is also the model's output order).
GENRES = [
    "Action", "Adventure", "Animation", "Biography", "Comedy", "Crime", "Documentary",
    "Drama", "Family", "Fantasy", "History", "Horror", "Music", "Musical", "Mystery",
    "N/A", "News", "Reality-TV", "Romance", "Sci-Fi", "Short", "Sport", "Thriller",
    "War", "Western",
]

# What each kind of model input (``ModelSpec.reads``) is a view of: a head on pretrained
# poster features still reads the poster; a learned fusion reads both encoders' vectors.
MODALITY = {"posters": "posters", "poster_maps": "posters", "poster_features": "posters",
            "overviews": "overviews", "overview_features": "overviews",
            "poster_features+overview_features": "posters+overviews"}

# Models `make all` does not train (`make extras` does; why: their comments in ``registry.MODELS``).
# Their committed results are kept and marked as such; a test keeps the Makefile's EXTRA_MODELS in step.
EXTRA_MODELS = ("poster_cnn", "effnet_finetune")

# Published results the report compares with (not ours, so not in results/): MM-IMDb's full
# dataset and its best model, the gated multimodal unit (Arevalo et al. 2017, Table 3).
PUBLISHED = {"dataset": "MM-IMDb", "films": 25959, "genres": 23, "model": "GMU",
             "f1_micro": 0.630, "f1_macro": 0.541}

# Issue 21's cost goal: each stage a change adds to `make all` costs at most this stage (`bench --stages`).
SPEC_TRAINING_STAGE = "train cnn"

IMAGE_SIZE = 64
# The most pixels (width x height, times the frames of an animation) a poster file may have:
# Pillow's own decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``), about 268 MB as RGB.
# Read from the file's header; a larger poster is never decoded (``posters.open_poster``).
MAX_POSTER_PIXELS = 89_478_485
BATCH_SIZE = 64
VOCAB_SIZE = 10_000
SEED = 42
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}

