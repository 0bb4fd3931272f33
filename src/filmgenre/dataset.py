"""Stage 1, `filmgenre prepare`: from the dataset zip (or folder) to validated, cached data.

Everything downstream reads only what this stage writes under ``data/``: the validated
film table, the decoded poster cache and the split. Errors name the file, the row and
the fix, and nothing is written until the input has passed every check.
"""

import shutil
import stat
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from filmgenre import FilmgenreError, config, files


class DatasetError(FilmgenreError):
    """Bad input: the message says which file, where, and what to do."""


@dataclass
class Source:
    csv: Path
    images: Path
    fingerprint: str


# --------------------------------------------------------------------------- extraction
def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "climbs out of the folder with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    return None


def extract_zip(archive: Path, raw_dir: Path) -> Path:
    """Extract ``archive`` under ``raw_dir``, refusing any entry that could escape it.

    Every entry is checked before anything is written; the extraction goes to a
    temporary folder that is renamed into place only when complete, so an interrupted
    or refused extraction leaves nothing behind. Reuses an earlier extraction of the
    same archive (same size and checksum).
    """
    fingerprint = files.sha256(archive)
    target = raw_dir / archive.stem
    marker = target / ".source.sha256"
    if marker.exists() and marker.read_text().strip() == fingerprint:
        return target
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise DatasetError(f"{archive}: not a readable zip file ({error}). Download the dataset again.") from None
    with bundle:
        for info in bundle.infolist():
            if reason := _unsafe_reason(info):
                raise DatasetError(
                    f"{archive}: entry '{info.filename}' {reason}; refusing to extract. "
                    "Use the original Multimodal_IMDB_dataset.zip (see data/README.md)."
                )
        raw_dir.mkdir(parents=True, exist_ok=True)
        staging = raw_dir / f".{archive.stem}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            bundle.extractall(staging)
            (staging / ".source.sha256").write_text(fingerprint + "\n")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def locate_source(source: Path, raw_dir: Path) -> Source:
    """Find the CSV and the Images folder in a zip or an extracted folder."""
    source = Path(source)
    if not source.exists():
        raise DatasetError(
            f"{source}: no such file or folder. Download Multimodal_IMDB_dataset.zip and pass it "
            "with --source (or put it at data/raw/Multimodal_IMDB_dataset.zip); see data/README.md."
        )
    folder = extract_zip(source, raw_dir) if source.is_file() else source
    candidates = sorted(folder.rglob(config.CSV_NAME), key=lambda p: len(p.parts))
    if not candidates:
        raise DatasetError(f"{source}: no {config.CSV_NAME} inside. Is this the Multimodal IMDB dataset?")
    csv_path = candidates[0]
    images = csv_path.parent / config.IMAGES_DIR_NAME
    if not images.is_dir():
        raise DatasetError(f"{source}: no {config.IMAGES_DIR_NAME}/ folder beside {csv_path.name}.")
    marker = folder / ".source.sha256"
    if marker.exists():
        fingerprint = marker.read_text().strip()
    else:
        image_files = sorted(images.iterdir())
        fingerprint = f"{files.sha256(csv_path)}:{len(image_files)}:{sum(p.stat().st_size for p in image_files)}"
    return Source(csv=csv_path, images=images, fingerprint=fingerprint)


# --------------------------------------------------------------------------- validation
def load_films(csv_path: Path) -> pd.DataFrame:
    """Read and validate the film table: Id, Overview and the 25 one-hot genre columns."""
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DatasetError(f"{csv_path}: cannot be read as CSV ({error}).") from None
    missing = [c for c in ["Id", "Overview", *config.GENRES] if c not in table.columns]
    if missing:
        raise DatasetError(
            f"{csv_path}: missing column(s) {', '.join(missing)}. The file needs Id, Overview and "
            "the 25 genre columns of the original dataset."
        )

    def fail(index: int, problem: str) -> None:
        # Row numbers count the header as line 1, as a spreadsheet or editor shows them.
        raise DatasetError(f"{csv_path}: line {index + 2} (Id {table.at[index, 'Id'] or '?'}): {problem}")

    for index, film_id in table["Id"].items():
        if not film_id.strip():
            fail(index, "empty Id. Every film needs its IMDb Id (tt...).")
    duplicated = table["Id"].duplicated(keep="first")
    if duplicated.any():
        index = int(np.flatnonzero(duplicated)[0])
        fail(index, "this Id appears more than once. Keep one row per film.")
    for genre in config.GENRES:
        bad = ~table[genre].str.strip().isin(["0", "1"])
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            fail(index, f"genre column '{genre}' is '{table.at[index, genre]}'; labels must be 0 or 1.")
    empty = table["Overview"].str.strip() == ""
    if empty.any():
        fail(int(np.flatnonzero(empty)[0]), "empty Overview. Fill it in or remove the film.")

    films = table[["Id", "Overview"]].copy()
    films["Id"] = films["Id"].str.strip()
    for genre in config.GENRES:
        films[genre] = table[genre].str.strip().astype(np.int8)
    unlabelled = films[config.GENRES].sum(axis=1) == 0
    if unlabelled.any():
        fail(int(np.flatnonzero(unlabelled)[0]), "no genre is set. Every film needs at least one genre.")
    return films


# --------------------------------------------------------------------------- posters
class PosterError(DatasetError):
    """A poster file that cannot be used: missing, not an image, damaged, or too large."""


class PosterTooLarge(PosterError):
    """A poster over ``config.MAX_POSTER_PIXELS``, refused from its header before any decoding."""

    def __init__(self, message: str, size: str):
        super().__init__(message)
        self.size = size


# The formats ``tf.io.decode_image`` reads, by PIL's names for them (MPO: a camera's multi-picture JPEG).
POSTER_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP"}
PASS_A_POSTER = "Pass a JPEG, PNG, GIF or BMP poster."


def open_poster(source):
    """The poster opened by PIL, which has read its header and no pixel, once the header shows
    an image TensorFlow decodes within ``config.MAX_POSTER_PIXELS`` (frames counted).

    Every reader of a poster file (the cache, ``predict``, the encoder, the figures) opens it
    here first, so none decodes more than the limit: a small file can hold a huge image.
    ``source`` is a path or a binary file object.
    """
    from PIL import Image, UnidentifiedImageError

    name = source if isinstance(source, (str, Path)) else getattr(source, "name", "the poster")
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        what = "a folder, not a file" if Path(source).is_dir() else "no such file"
        raise PosterError(f"{name}: {what}. Pass the path of a poster image (JPEG, PNG, GIF or BMP).")
    # PIL's own bomb check would refuse without the size; ours follows, with it, at the same limit.
    bomb_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        image = Image.open(source)
        frames = getattr(image, "n_frames", 1)  # reads each frame's header, decodes none
    except UnidentifiedImageError:
        raise PosterError(f"{name}: not a readable image (empty, damaged, or another kind of file). "
                          f"{PASS_A_POSTER}") from None
    except (OSError, EOFError) as error:
        raise PosterError(f"{name}: cannot be read ({getattr(error, 'strerror', None) or error}). "
                          f"{PASS_A_POSTER}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = bomb_limit
    width, height = image.size
    if image.format not in POSTER_FORMATS:
        image.close()
        raise PosterError(f"{name}: a {image.format} image, which the models cannot read. "
                          f"Convert it to JPEG or PNG and pass that.")
    if width * height * frames > config.MAX_POSTER_PIXELS:
        image.close()
        size = f"{width:,} x {height:,} pixels" + (f" x {frames:,} frames" if frames > 1 else "")
        raise PosterTooLarge(f"{name}: {size}, over the limit of {config.MAX_POSTER_PIXELS:,} pixels for a poster "
                             "(config.MAX_POSTER_PIXELS); not decoded. Pass a smaller copy of the image "
                             "(a few hundred pixels a side is plenty).", size)
    return image


def damaged_poster(name) -> PosterError:
    """The error for a poster whose header reads but whose pixels do not decode."""
    return PosterError(f"{name}: damaged or cut short: its pixels cannot be decoded. "
                       f"Pass an intact copy (JPEG, PNG, GIF or BMP).")


def decode_poster(raw, image_size: int):
    """Decode any poster bytes (JPEG of any flavour, or PNG/GIF/BMP misnamed .jpg) to RGB.

    JPEGs at least twice the target size are decoded at half resolution by the DCT
    (``ratio=2``), which halves the decoding time without visible loss after resizing.
    """
    import tensorflow as tf

    def jpeg():
        height_width = tf.image.extract_jpeg_shape(raw)[:2]
        return tf.cond(
            tf.reduce_min(height_width) >= 2 * image_size,
            lambda: tf.io.decode_jpeg(raw, channels=3, ratio=2),
            lambda: tf.io.decode_jpeg(raw, channels=3),
        )

    is_jpeg = tf.strings.substr(raw, 0, 2) == b"\xff\xd8"
    image = tf.cond(is_jpeg, jpeg, lambda: tf.io.decode_image(raw, channels=3, expand_animations=False))
    image = tf.image.resize(image, [image_size, image_size], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def cache_posters(ids: list[str], images_dir: Path, image_size: int, progress: bool = True):
    """Decode and resize every film's poster once, in parallel.

    Returns the images (uint8, N x size x size x 3) of the films whose poster decoded, in
    the order of ``ids``, with the missing and undecodable posters' Ids and the oversized
    ones' sizes by Id. Headers are checked first (``open_poster``): an oversized or
    unreadable poster never reaches the decoder. A poster that then fails to decode is
    dropped by ``ignore_errors`` and detected by its absent index.
    """
    import keras
    import tensorflow as tf

    present, missing, refused, oversized = [], [], [], {}
    for i, film_id in enumerate(ids):
        path = images_dir / f"{film_id}.jpg"
        if not path.is_file():
            missing.append(film_id)
            continue
        try:
            open_poster(path).close()
            present.append(i)
        except PosterTooLarge as error:
            oversized[film_id] = error.size
        except PosterError:
            refused.append(i)
    paths = [str(images_dir / f"{ids[i]}.jpg") for i in present]
    posters = (
        tf.data.Dataset.from_tensor_slices((np.array(present, dtype=np.int64), paths))
        .map(lambda index, path: (index, decode_poster(tf.io.read_file(path), image_size)),
             num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
        .batch(256)
        .prefetch(tf.data.AUTOTUNE)
    )
    bar = keras.utils.Progbar(len(present), unit_name="poster") if progress and present else None
    indices, images, done = [], [], 0
    for index_batch, image_batch in posters:
        indices.append(index_batch.numpy())
        images.append(image_batch.numpy())
        done += len(index_batch)
        if bar:
            bar.update(done)
    if bar and done < len(present):
        bar.update(len(present), finalize=True)
    decoded = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
    undecodable = [ids[i] for i in sorted(set(present) - set(decoded.tolist()) | set(refused))]
    array = np.concatenate(images) if images else np.zeros((0, image_size, image_size, 3), np.uint8)
    return [ids[i] for i in decoded], array, missing, undecodable, oversized


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


def ensure_split(films: pd.DataFrame, splits_csv: Path, seed: int = config.SEED) -> pd.DataFrame:
    """Reuse the committed split if it covers exactly these films, else make it (once)."""
    if splits_csv.exists():
        split = pd.read_csv(splits_csv, dtype=str)
        if set(split.get("Id", [])) != set(films["Id"]) or not set(split["split"]) <= set(config.SPLIT_FRACTIONS):
            raise DatasetError(
                f"{splits_csv}: its Ids do not match the dataset's {len(films)} films. It belongs to "
                "another copy of the data: delete it to make a new split (results will change)."
            )
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
    manifest = files.read_json(outputs["manifest"], default={})
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
    with np.load(posters) as cache:
        return films, cache["ids"].astype(str), cache["images"]


def cached_posters(ids, image_size: int = config.IMAGE_SIZE) -> dict[str, np.ndarray]:
    """Some films' posters from the prepared cache ({} when it was never prepared at this size)."""
    cache = processed_paths(image_size)["posters"]
    if not cache.exists():
        return {}
    with np.load(cache) as arrays:
        row_of = {film_id: row for row, film_id in enumerate(arrays["ids"].astype(str))}
        wanted = [film_id for film_id in ids if film_id in row_of]
        images = arrays["images"]
        return {film_id: images[row_of[film_id]] for film_id in wanted}


def raw_images(extract: bool = False) -> Path | None:
    """The extracted dataset's Images folder under data/raw, or ``None`` when it is not there.

    With ``extract`` (the poster encoder reads every original poster), the zip under data/raw
    is extracted if need be, and having neither is an error that says how to get the data.
    """
    where = config.paths()
    sources = (where.raw / where.default_source.stem, where.default_source) if extract else (
        where.raw / where.default_source.stem,)
    for source in sources:
        if source.exists():
            return locate_source(source, where.raw).images
    if extract:
        raise DatasetError(f"{where.raw}: no dataset. Run `filmgenre prepare --source path/to/"
                           "Multimodal_IMDB_dataset.zip` first.")
    return None


def raw_poster(film_id: str) -> Path | None:
    """The film's original poster file in the extracted dataset under data/raw, if it is there
    (``predict --id`` classifies it; the sample-films figure shows it at full resolution)."""
    folder = raw_images()
    path = folder / f"{film_id}.jpg" if folder else None
    return path if path and path.is_file() else None
