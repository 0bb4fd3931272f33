"""Stage 1, `filmgenre prepare`: from the delivered dataset to validated, cached data, and back.

Everything downstream reads only what this stage writes under ``data/``: the validated
film table, the decoded poster cache and the split, through ``load_processed`` and
``cached_posters``. Nothing is written until the input has passed every check
(``rawdata``: the zip and the film table; ``posters``: each poster's header).
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from filmgenre import config, files
from filmgenre.posters import cache_posters
from filmgenre.rawdata import DatasetError, load_films, locate_source


# --------------------------------------------------------------------------- split
def make_split(films: pd.DataFrame, seed: int = config.SEED) -> pd.DataFrame:
    """Seeded 70/10/20 multi-label iterative stratification (Sechidis et al. 2011)."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    labels = films[config.GENRES].to_numpy()
    fractions = config.SPLIT_FRACTIONS
    outer = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=fractions["test"], random_state=seed)
    rest, test = next(outer.split(np.zeros(len(films)), labels))
    inner = MultilabelStratifiedShuffleSplit(
        n_splits=1, test_size=fractions["val"] / (1 - fractions["test"]), random_state=seed
    )
    train, val = next(inner.split(np.zeros(len(rest)), labels[rest]))
    split = np.empty(len(films), dtype=object)
    split[rest[train]], split[rest[val]], split[test] = "train", "val", "test"
    return pd.DataFrame({"Id": films["Id"].to_numpy(), "split": split})


SPLIT_FIX = ("Cut short or edited: restore the committed one (`git checkout data/splits.csv`); made for another "
             "copy of the data: delete it to make a new split (results will change).")


def ensure_split(films: pd.DataFrame, splits_csv: Path, seed: int = config.SEED) -> pd.DataFrame:
    """Reuse the committed split if it covers exactly these films, else make it (once)."""
    if splits_csv.exists():
        where = files.relative(splits_csv)
        try:
            split = pd.read_csv(splits_csv, dtype=str)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise DatasetError(f"{where}: not a readable CSV ({type(error).__name__}). {SPLIT_FIX}") from None
        if {"Id", "split"} - set(split.columns) or not set(split["split"]) <= set(config.SPLIT_FRACTIONS):
            raise DatasetError(f"{where}: not a table of Ids and their split ({', '.join(config.SPLIT_FRACTIONS)}). "
                               f"{SPLIT_FIX}")
        if set(split["Id"]) != set(films["Id"]):
            raise DatasetError(f"{where}: its Ids do not match the dataset's {len(films)} films. {SPLIT_FIX}")
        return split
    split = make_split(films, seed)
    files.write_csv(splits_csv, split)
    return split


# --------------------------------------------------------------------------- the stage
def processed_paths(image_size: int) -> dict[str, Path]:
    """The files ``prepare`` writes; the poster cache and its manifest are per image size."""
    processed = config.paths().processed
    return {
        "films": processed / "films.csv",
        "posters": processed / f"posters_{image_size}.npz",
        "manifest": processed / f"manifest_{image_size}.json",
    }


def prepare(
    source: Path,
    image_size: int = config.IMAGE_SIZE,
    progress: bool = True,
    record_timing: bool = True,
    log=print,
) -> dict:
    """Validate, cache posters and split; a no-op when the source and size are unchanged."""
    where = config.paths()
    src = locate_source(Path(source), where.raw)
    outputs = processed_paths(image_size)
    manifest = files.read_json(outputs["manifest"], "Delete it and run `filmgenre prepare` again.", default={})
    if (manifest.get("fingerprint") == src.fingerprint and all(p.exists() for p in outputs.values())
            and where.splits.exists()):
        log(f"Up to date: {outputs['posters'].relative_to(where.root)} matches {source}.")
        return manifest

    films = load_films(src.csv)
    split = ensure_split(films, where.splits)
    ids = films["Id"].tolist()
    csv_ids = set(ids)
    orphans = sum(1 for p in src.images.iterdir() if p.suffix.lower() == ".jpg" and p.stem not in csv_ids)

    log(f"Decoding and resizing {len(ids)} posters to {image_size}x{image_size} ...")
    import tensorflow as tf  # noqa: F401  (imported before the clock starts: its start-up is not decoding)

    started = time.perf_counter()
    poster_ids, images, missing, undecodable, oversized = cache_posters(ids, src.images, image_size, progress)
    seconds = time.perf_counter() - started

    has_poster = set(poster_ids)
    table = films.merge(split, on="Id")
    table["has_poster"] = table["Id"].isin(has_poster).astype(np.int8)
    with files.atomic_path(outputs["posters"]) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=np.array(poster_ids), images=images)
    files.write_csv(outputs["films"], table)
    manifest = {
        "fingerprint": src.fingerprint,
        "source": str(source),
        "image_size": image_size,
        "films": len(films),
        "posters_used": len(poster_ids),
        "posters_missing": missing,
        "posters_undecodable": undecodable,
        "posters_oversized": oversized,
        "poster_pixel_limit": config.MAX_POSTER_PIXELS,
        "images_without_film": orphans,
        "decode_resize_seconds": round(seconds, 3),
        "genre_counts": {g: int(films[g].sum()) for g in config.GENRES},
        "split_counts": split["split"].value_counts().to_dict(),
    }
    files.write_json(outputs["manifest"], manifest)
    files.write_json(where.results / "dataset.json", dataset_summary(table, manifest))
    if record_timing:  # one entry per poster size, so preparing 96 px keeps the 64 px figure
        files.merge_json_entry(where.bench, "prepare", f"{image_size}px", {
            "command": f"filmgenre prepare --source {source} --image-size {image_size}",
            "posters": len(poster_ids),
            "decode_resize_seconds": round(seconds, 3),
            "posters_per_second": round(len(poster_ids) / seconds, 1) if seconds else None,
            "method": "tf.data map(decode_jpeg, ratio=2 when the poster is >= 2x the target; resize), AUTOTUNE",
        })
    _print_summary(manifest, log)
    return manifest


def dataset_summary(table: pd.DataFrame, manifest: dict) -> dict:
    """What the report says about the data, committed so it renders without the dataset."""
    words = table["Overview"].str.split().str.len()
    genres_per_film = table[config.GENRES].sum(axis=1)
    return {
        "films": len(table),
        "posters_used": manifest["posters_used"],
        "posters_skipped": skipped_posters(manifest),
        "images_without_film": manifest["images_without_film"],
        "split_counts": {s: int((table["split"] == s).sum()) for s in config.SPLIT_FRACTIONS},
        "genre_counts": {s: {g: int(table.loc[table["split"] == s, g].sum()) for g in config.GENRES}
                         for s in config.SPLIT_FRACTIONS},
        "genres_per_film": {str(k): int(v) for k, v in genres_per_film.value_counts().sort_index().items()},
        "overview_words": {"mean": round(float(words.mean()), 1), "median": float(words.median()),
                           "max": int(words.max())},
    }


def skipped_posters(manifest: dict) -> list[str]:
    """The films kept for the text models only: poster missing, undecodable or oversized."""
    return manifest["posters_missing"] + manifest["posters_undecodable"] + list(manifest["posters_oversized"])


def _print_summary(manifest: dict, log) -> None:
    skipped = skipped_posters(manifest)
    log(f"Films: {manifest['films']}   posters used: {manifest['posters_used']}   "
        f"skipped: {len(skipped)}   images without a film (ignored): {manifest['images_without_film']}")
    log(f"Decoded and resized in {manifest['decode_resize_seconds']:.2f} s")
    if skipped:
        print(f"WARNING: {len(skipped)} film(s) have no usable poster and are kept out of the poster "
              f"models only: {', '.join(skipped[:20])}{' ...' if len(skipped) > 20 else ''}", file=sys.stderr)
    if oversized := manifest["posters_oversized"]:
        print(f"WARNING: {len(oversized)} poster(s) over the limit of {manifest['poster_pixel_limit']:,} pixels "
              "(config.MAX_POSTER_PIXELS) were not decoded: "
              + ", ".join(f"{film_id} ({size})" for film_id, size in oversized.items()), file=sys.stderr)
    log("Split: " + ", ".join(f"{k} {v}" for k, v in sorted(manifest["split_counts"].items())))
    counts = sorted(manifest["genre_counts"].items(), key=lambda item: -item[1])
    log("Genres: " + ", ".join(f"{g} {n}" for g, n in counts))


@dataclass
class Films:
    """The films of one split as the models and baselines read them (``features.load_split``),
    aligned: Ids, overviews, labels and (if asked) posters or encoder vectors."""

    ids: np.ndarray
    overviews: np.ndarray
    labels: np.ndarray
    posters: np.ndarray | None = None
    embeddings: np.ndarray | None = None  # a pretrained encoder's vectors, N x d


def load_processed(image_size: int = config.IMAGE_SIZE):
    """The prepared film table (with its split) and poster cache, or a clear error."""
    paths = processed_paths(image_size)
    films_csv, posters = paths["films"], paths["posters"]
    if not films_csv.exists() or not posters.exists():
        raise DatasetError(
            f"{posters if films_csv.exists() else films_csv}: not found. Run "
            f"`filmgenre prepare --source path/to/Multimodal_IMDB_dataset.zip --image-size {image_size}` first."
        )
    films = pd.read_csv(films_csv, dtype={"Id": str, "Overview": str, "split": str})
    cache = read_poster_cache(posters, image_size)
    return films, cache["ids"].astype(str), cache["images"]


def read_poster_cache(path: Path, image_size: int) -> dict[str, np.ndarray]:
    return files.read_npz(path, ("ids", "images"), fix=f"Delete it and run `filmgenre prepare --source "
                          f"path/to/Multimodal_IMDB_dataset.zip --image-size {image_size}` again.")


def cached_posters(ids, image_size: int = config.IMAGE_SIZE) -> dict[str, np.ndarray]:
    """Some films' posters from the prepared cache ({} when it was never prepared at this size)."""
    cache = processed_paths(image_size)["posters"]
    if not cache.exists():
        return {}
    arrays = read_poster_cache(cache, image_size)
    row_of = {film_id: row for row, film_id in enumerate(arrays["ids"].astype(str))}
    return {film_id: arrays["images"][row_of[film_id]] for film_id in ids if film_id in row_of}
