"""Every film's vector from each pretrained encoder, computed once and cached in ``data/processed/``.

A cache is named by ``cache_key``: the SHA-256 of the encoder's weights, of the code that
computes the vectors (its network module, read as syntax, so comments and layout do not
count) and of the prepared films table; a change to any of them gives a new name, and the
next read re-encodes. A cache read back is checked (``check_cache``): a file that is not a
readable ``.npz``, lacks ``ids``/``features``, has other films, another dtype or a width
other than the encoder's declared one is re-encoded, with one line saying why.

Nothing here imports Keras: `filmgenre keys` (run by every `make`) computes the keys.
"""

import ast
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from filmgenre import config, dataset, files, rawdata
from filmgenre.encoders import packages

PACKAGE = Path(__file__).parent


@dataclass(frozen=True)
class Encoder:
    """One pretrained encoder as the study uses it: what it reads, its weights, its code."""

    name: str  # the cache file's prefix
    reads: str  # the ModelSpec.reads of the heads trained on its vectors
    shape: tuple  # of one film's vector (or maps): the declared width every cache is checked against
    weights: Callable[[], Path]
    code: tuple[str, ...]  # modules of this package whose code computes the vectors
    what: str
    after: str | None = None  # the encoder whose cached output this one is computed from


ENCODERS = {
    "poster_maps": Encoder("effnet_lite0_trunk", "poster_maps", (7, 7, 192), packages.efficientnet_weights_path,
                           ("torchfile.py", "efficientnet.py"), "EfficientNet-Lite0 trunk maps of the posters at 224 px"),
    "poster_features": Encoder("effnet_lite0", "poster_features", (1280,), packages.efficientnet_weights_path,
                               ("torchfile.py", "efficientnet.py"),
                               "EfficientNet-Lite0 features of the posters at 224 px", after="poster_maps"),
    "overview_features": Encoder("minilm_l6", "overview_features", (384,), packages.minilm_weights_path,
                                 ("torchfile.py", "minilm.py"), "all-MiniLM-L6-v2 embeddings of the overviews"),
}


def code_digest(paths) -> str:
    """SHA-256 of Python modules as syntax trees: an edit to what the code does changes it, a
    comment or a reflowed line does not."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(ast.dump(ast.parse(Path(path).read_text(encoding="utf-8"))).encode())
    return digest.hexdigest()


def cache_key(encoder: Encoder) -> str:
    """Hash of the encoder's weights, its code, the prepared films table (and the key of the
    encoder it is computed from): a change to any of them gives a new cache name."""
    films = dataset.processed_paths(config.IMAGE_SIZE)["films"]
    if not films.exists():
        raise dataset.DatasetError(f"{films}: not found. Run `filmgenre prepare` first.")
    parts = [files.sha256_cached(encoder.weights()), code_digest(PACKAGE / module for module in encoder.code),
             files.sha256_cached(films)]
    if encoder.after:
        parts.append(cache_key(ENCODERS[encoder.after]))
    return hashlib.sha256(" ".join(parts).encode()).hexdigest()[:16]


def cache_path(encoder: Encoder) -> Path:
    return config.paths().processed / f"{encoder.name}_{cache_key(encoder)}.npz"


def films_to_encode(reads: str) -> tuple[np.ndarray, np.ndarray]:
    """Ids and overviews of the films an encoder covers: posters, those whose poster decoded; overviews, all."""
    import pandas as pd

    films = pd.read_csv(dataset.processed_paths(config.IMAGE_SIZE)["films"], dtype={"Id": str},
                        keep_default_na=False)
    if config.MODALITY[reads] == "posters":
        films = films[films["has_poster"] == 1]
    return films["Id"].to_numpy(dtype=str), films["Overview"].to_numpy(dtype=str)


def check_cache(path: Path, encoder: Encoder, ids: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The cached vectors of ``ids`` (in order) and ``None``, or ``None`` and why the file is unusable."""
    cache, problem = files.npz_arrays(path, ("ids", "features"))
    if problem:
        return None, problem
    cached_ids, vectors = cache["ids"], cache["features"]
    if cached_ids.dtype.kind != "U" or vectors.dtype != np.float32:
        return None, f"ids of dtype {cached_ids.dtype} and vectors of {vectors.dtype}, not str and float32"
    if vectors.shape[1:] != tuple(encoder.shape):
        return None, f"vectors of shape {vectors.shape[1:]}, {tuple(encoder.shape)} expected from {encoder.name}"
    if cached_ids.tolist() != ids.tolist() or len(vectors) != len(ids):
        return None, f"{len(cached_ids)} films that are not the {len(ids)} prepared films"
    if not np.isfinite(vectors).all():
        return None, "vectors that are not finite"
    return vectors, None


def embeddings(reads: str, progress: bool = True, log=print) -> tuple[np.ndarray, np.ndarray]:
    """Every film's vector from the encoder of ``reads``: (ids, float32 N x d), cached and checked.

    A rebuild removes the encoder's caches of other keys. Poster features come from the
    cached trunk maps, so the images go through the network once.
    """
    encoder = ENCODERS[reads]
    target = cache_path(encoder)
    ids, overviews = films_to_encode(reads)
    where = target.relative_to(config.paths().root)
    if target.exists():
        vectors, problem = check_cache(target, encoder, ids)
        if problem is None:
            return ids, vectors
        log(f"{where}: {problem}; encoding again.")
    log(f"Encoding {len(ids)} films: {encoder.what} -> {where} ...")
    started, cpu = time.perf_counter(), time.process_time()

    def report(done: int) -> None:
        if progress:
            elapsed = time.perf_counter() - started
            left = elapsed / max(done, 1) * (len(ids) - done)
            print(f"\r  {done}/{len(ids)} films, {elapsed:.0f} s elapsed, ~{left:.0f} s left", end="",
                  file=sys.stderr, flush=True)

    if reads == "overview_features":
        from filmgenre.encoders.minilm import OverviewEncoder

        vectors = OverviewEncoder()(overviews, progress=report)
    else:
        from filmgenre.encoders import efficientnet

        if reads == "poster_maps":
            folder = rawdata.raw_images(extract=True)
            vectors = efficientnet.poster_maps([folder / f"{film_id}.jpg" for film_id in ids], report)
        else:
            vectors = efficientnet.features_from_maps(vectors_of(encoder.after, ids, progress, log), report)
    if progress:
        print(file=sys.stderr)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    with files.atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=ids, features=vectors.astype(np.float32))
    for old in target.parent.glob(f"{encoder.name}_*.npz"):
        if old != target and old.stem.rsplit("_", 1)[0] == encoder.name:
            old.unlink()
    record = {"films": len(ids), "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
              "cache": target.name, "command": f"filmgenre encode {reads}"}
    files.merge_json_entry(config.paths().bench, "encode", encoder.name, record)
    log(f"Wrote {target.name}: {len(ids)} films in {seconds:.0f} s ({cpu_seconds:.0f} CPU s)")
    return ids, vectors.astype(np.float32)


def vectors_of(reads: str, ids, progress: bool = True, log=print) -> np.ndarray:
    """The encoder vectors of these films, in their order (encoding every film first if need be)."""
    cache_ids, vectors = embeddings(reads, progress, log)
    row_of = {film_id: row for row, film_id in enumerate(cache_ids)}
    missing = [film_id for film_id in ids if film_id not in row_of]
    if missing:
        raise dataset.DatasetError(f"{cache_path(ENCODERS[reads])}: no vector for {missing[:3]}, which are not "
                                   "among the prepared films. Run `filmgenre prepare` again.")
    return vectors[[row_of[film_id] for film_id in ids]]


def encoder(reads: str) -> Callable[[list], np.ndarray]:
    """The encoder of ``reads`` as a callable: poster paths or overviews -> their vectors
    (``filmgenre predict`` on inputs that are not in the cache)."""
    if reads == "overview_features":
        from filmgenre.encoders.minilm import OverviewEncoder

        return OverviewEncoder()
    from filmgenre.encoders import efficientnet

    return efficientnet.poster_vectors(trunk_only=reads == "poster_maps")
