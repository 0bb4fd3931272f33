"""What a model reads, known in one place: posters at a size, overviews, or an encoder's vectors.

``ModelSpec.reads`` is dispatched here and nowhere else. For each kind of input this module
loads a split (``load``), builds the ``tf.data`` batches a model trains and is evaluated on
(``batches``), predicts a film set (``predict``), builds the model with what its input needs
(``build``), and feeds raw inputs, poster pixels or overview strings, to a trained model
(``raw_predictor`` for ``explain``, ``one_film`` for ``predict``), and says which prepared files
an input is made from (``source_files`` for provenance, ``input_key`` for the build keys). train,
evaluate, seeds, predict, explain, the bench, provenance and stamps each call one of these; only
the Makefile's prerequisites (``registry.make_prerequisites``, read without any dependency) name
the kinds again. TensorFlow is imported only where a pipeline or a model is made.

A new kind of input (a third encoder, say) is its network module, an entry of
``encoders.cache.ENCODERS`` with its call in that module (``embeddings``, ``encoder``), and, to
explain a head on it, a branch in ``raw_predictor``: here its vectors are read like every other
encoder's. A model may read several encoders' vectors (``reads`` joins their names with "+", as
the learned fusions do): each film's vectors then lie side by side in that order, and only films
with every input are read.
"""

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from filmgenre import config, dataset, files
from filmgenre.dataset import Films
from filmgenre.encoders import cache as encoder_cache
from filmgenre.posters import model_pixels

POSTERS, OVERVIEWS = "posters", "overviews"


def encoders_read(spec) -> list[str]:
    """The encoders whose cached vectors the model reads, in the order they lie side by side (none
    for a model on posters or overviews)."""
    names = spec.reads.split("+")
    return names if all(name in encoder_cache.ENCODERS for name in names) else []


def is_vectors(spec) -> bool:
    """Whether the model reads pretrained encoders' cached vectors (a head on one, or a fusion of two)."""
    return bool(encoders_read(spec))


def vectors_of(spec, ids) -> np.ndarray:
    """The cached vectors the model reads for these films: one encoder's, or several side by side."""
    return np.concatenate([encoder_cache.vectors_of(name, ids) for name in encoders_read(spec)], axis=1)


def modality(spec) -> str:
    """What the model's input is a view of: "posters", "overviews" or both (``config.MODALITY``)."""
    return config.MODALITY[spec.reads]


def load(spec, split: str, limit: int | None = None) -> Films:
    """One split of the prepared films with what the model reads: posters at its size, vectors, or neither."""
    from filmgenre import features

    films = features.load_split(split, posters=spec.reads == POSTERS, image_size=spec.image_size, limit=limit,
                                with_poster=POSTERS in modality(spec).split("+"))
    if is_vectors(spec):
        films.embeddings = vectors_of(spec, films.ids)
    return films


def with_input(spec, films: Films) -> Films:
    """``films`` (e.g. the evaluation films) with the encoder vectors the model reads added if missing."""
    if is_vectors(spec) and films.embeddings is None:
        return dataclasses.replace(films, embeddings=vectors_of(spec, films.ids))
    return films


def batches(spec, films: Films, batch_size: int = config.BATCH_SIZE, training: bool = False,
            seed: int = config.SEED, bucket_by_length: bool = True):
    """The (input, labels) batches the model is fed."""
    from filmgenre import features

    if spec.reads == POSTERS:
        return features.poster_dataset(films.posters, films.labels, batch_size, training, seed)
    if is_vectors(spec):
        return features.feature_dataset(films.embeddings, films.labels, batch_size, training, seed)
    return features.overview_dataset(films.overviews, films.labels, batch_size, training, seed, bucket_by_length)


def predict(spec, model, films: Films, batch_size: int = config.BATCH_SIZE) -> np.ndarray:
    """The model's probabilities (float64, films x genres) for ``films``, in their order."""
    from filmgenre import features

    films = with_input(spec, films)
    if spec.reads == OVERVIEWS:  # shortest first: the same probabilities for less padding
        return np.asarray(features.predict_by_length(model, films.overviews, batch_size), dtype=np.float64)
    return np.asarray(model.predict(batches(spec, films, batch_size), verbose=0), dtype=np.float64)


def build(spec, train_films: Films, jit_compile: bool | str = "auto"):
    """The untrained, compiled model: ``models.<spec.build>(**spec.options)`` with what its input
    needs (the poster size, the encoder's training vectors, or a vocabulary adapted on the
    training overviews)."""
    from filmgenre import features, models

    make = getattr(models, spec.build)
    if spec.reads == POSTERS:
        return make(image_size=spec.image_size, jit_compile=jit_compile, **spec.options)
    if is_vectors(spec):
        return make(train_films.embeddings, jit_compile=jit_compile, **spec.options)
    encoder = features.text_encoder(train_films.overviews, spec.vocab_size)
    return make(encoder, jit_compile=jit_compile, **spec.options)


def raw_size(spec, encoder_poster_cache: int) -> int:
    """The prepared poster size raw pixels are taken at: the model's own, or for a head on the
    poster encoder the ``encoder_poster_cache`` posters resized to the encoder's input."""
    return encoder_poster_cache if is_vectors(spec) else spec.image_size


def raw_predictor(spec, model, batch_size: int = 256) -> Callable:
    """Raw inputs -> probabilities: uint8 posters (N x H x W x 3) for a poster model, a list of
    overviews for a text model. A model on an encoder's vectors (or trunk maps) runs the encoder
    on them first."""
    from filmgenre import features

    if spec.reads == POSTERS:
        return lambda images: model.predict(model_pixels(images), batch_size=batch_size, verbose=0)
    if spec.reads == OVERVIEWS:
        return lambda texts: features.predict_by_length(model, list(texts), batch_size)
    if modality(spec) == OVERVIEWS:
        from filmgenre.encoders.minilm import OverviewEncoder

        encoder = OverviewEncoder()
        return lambda texts: model.predict(encoder(list(texts)), batch_size=batch_size, verbose=0)
    import tensorflow as tf

    from filmgenre.encoders.efficientnet import POSTER_SIZE, poster_encoder, poster_trunk_and_top

    poster_network = poster_trunk_and_top()[0] if spec.reads == "poster_maps" else poster_encoder()

    def predict_images(images):
        # Resized batch by batch: an occlusion call's 4,096 posters at 224 px would take 2.4 GB at once.
        resized = (tf.data.Dataset.from_tensor_slices(np.asarray(images))
                   .batch(64)
                   .map(lambda batch: tf.image.resize(tf.cast(batch, tf.float32), (POSTER_SIZE,) * 2)))
        return model.predict(poster_network.predict(resized, verbose=0), batch_size=batch_size, verbose=0)

    return predict_images


class EncoderSource:
    """A pretrained encoder's vector of one film: from the encoder's cache for a film of the
    dataset, else encoded now (each encoder loaded once, only when needed)."""

    def __init__(self):
        self._encoders = {}

    def __call__(self, reads: str, film_id: str | None, poster, overview: str | None) -> np.ndarray | None:
        if "+" in reads:  # several encoders' vectors side by side, as ``vectors_of``
            parts = [self(name, film_id, poster, overview) for name in reads.split("+")]
            return None if any(part is None for part in parts) else np.concatenate(parts)
        if film_id is not None and encoder_cache.cache_path(encoder_cache.ENCODERS[reads]).exists():
            ids, vectors = encoder_cache.embeddings(reads)
            rows = np.flatnonzero(ids == film_id)
            if len(rows):
                return vectors[rows[0]]
        source = overview if config.MODALITY[reads] == OVERVIEWS else poster
        if source is None:
            return None
        if reads not in self._encoders:
            self._encoders[reads] = encoder_cache.encoder(reads)
        return self._encoders[reads]([source])[0]


def one_film(spec, pixels: Callable[[int], np.ndarray], overview: str | None, film_id: str | None, poster,
             vectors: EncoderSource):
    """The model's input for one film (a batch of one): its poster's pixels (``pixels(size)``, uint8),
    its overview, or its encoder vector (cached for a film of the dataset, else encoded from
    ``poster``/``overview``); ``None`` when the vector cannot be had."""
    if spec.reads == OVERVIEWS:
        import tensorflow as tf

        return tf.constant([overview])
    if spec.reads == POSTERS:
        return model_pixels(pixels(spec.image_size)[None])
    vector = vectors(spec.reads, film_id, poster, overview)
    return None if vector is None else vector[None]


def source_files(spec) -> dict[str, Path]:
    """The prepared files the model's input is read from (beyond ``films.csv``), by path relative to the
    project root: the poster cache at its size, or the encoder's vector cache (a name that never
    exists where the data is not prepared, so the result reads as stale)."""
    if spec.reads == POSTERS:
        posters = dataset.processed_paths(spec.image_size)["posters"]
        return {f"data/processed/{posters.name}": posters}
    caches = {}
    for name in encoders_read(spec):
        encoder = encoder_cache.ENCODERS[name]
        try:
            cache = encoder_cache.cache_path(encoder)
        except dataset.DatasetError:
            cache = config.paths().processed / f"{encoder.name}_unprepared.npz"
        caches[f"data/processed/{cache.name}"] = cache
    return caches


def input_key(spec) -> str:
    """A hash of what the model's input is made from: the prepared films (and posters at its size),
    or the encoder cache's key (the encoder's weights, code and the prepared films; several encoders':
    the digest of their keys)."""
    films = dataset.processed_paths(spec.image_size)["films"]
    if not films.exists():
        return "unprepared"
    if is_vectors(spec):
        keys = [encoder_cache.cache_key(encoder_cache.ENCODERS[name]) for name in encoders_read(spec)]
        return keys[0] if len(keys) == 1 else files.digest(*keys)
    parts = [files.sha256_cached(films)] + [files.sha256_cached(path) if path.exists() else "unprepared"
                                             for path in source_files(spec).values()]
    return "unprepared" if "unprepared" in parts else files.digest(*parts)


def missing_cache(spec) -> str | None:
    """Why the model's input is not at hand without encoding (an encoder cache is missing), or ``None``."""
    for name in encoders_read(spec):
        if not encoder_cache.cache_path(encoder_cache.ENCODERS[name]).exists():
            return f"the {name} cache is missing (`filmgenre encode {name}` writes it)"
    return None
