"""The dataset as it is delivered: the zip (or its extracted folder), its film table and its posters.

Only ``prepare`` reads the delivered dataset whole (``locate_source``, ``load_films``): what it
finds here is checked before anything is written, and every error names the file, the row
and the fix. The original posters stay under data/raw, where the encoder and the figures find
them (``raw_images``, ``raw_poster``) at full resolution.
"""

import shutil
import stat
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


# --------------------------------------------------------------------------- the original posters
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
