"""Bench sections on the input pipelines, the LSTM's padding and inference speed."""

import statistics

import keras
import numpy as np
import tensorflow as tf

from filmgenre import config, dataset, features, inputs, models, posters, rawdata, registry
from filmgenre.bench.common import FIXED_SEQUENCE_LENGTH, GOALS, INFERENCE_BATCH, Settings, epoch_seconds, exhaust, images_per_second, missing_data, ratio, seconds_of, summary, training_data


# --------------------------------------------------------------------------- poster input pipeline
def labelled_poster_paths(split: str | None = None, limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """JPEG paths and labels of the prepared films that have a poster (one split, or all)."""
    where = config.paths()
    films, _, _ = dataset.load_processed()
    films = films[films["has_poster"] == 1]
    if split is not None:
        films = films[films["split"] == split]
    films = films.iloc[:limit]
    images = rawdata.locate_source(where.raw, where.raw).images
    return ([str(images / f"{film_id}.jpg") for film_id in films["Id"]],
            films[config.GENRES].to_numpy(dtype=np.float32))


def course_poster_dataset(paths: list[str], labels: np.ndarray) -> tf.data.Dataset:
    """The course notebook's chain: read and decode every JPEG again each epoch, then resize.

    Plain ``decode_jpeg`` as the course did (no ``ratio``); a poster it cannot decode (a
    PNG named .jpg) is skipped. Parallel like ours, so the comparison is of the work done.
    """
    def load(path, label):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        image = tf.image.resize(image, [config.IMAGE_SIZE, config.IMAGE_SIZE])
        return posters.model_pixels(image), label

    return (tf.data.Dataset.from_tensor_slices((paths, labels))
            .map(load, num_parallel_calls=features.AUTOTUNE).ignore_errors()
            .batch(config.BATCH_SIZE).prefetch(features.AUTOTUNE))


def in_memory_dataset(images: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
    """The upper limit: one ready float batch handed out again and again, no work per image."""
    batch = (posters.model_pixels(images[:config.BATCH_SIZE]), tf.constant(labels[:config.BATCH_SIZE]))
    return tf.data.Dataset.from_tensors(batch).repeat(max(1, len(images) // config.BATCH_SIZE))


def bench_poster_pipeline(settings: Settings, log) -> dict:
    films = features.load_split("train", posters=True, limit=settings.limit)
    paths, labels = labelled_poster_paths("train", settings.limit)
    repeats = settings.times(5)
    pipelines = {
        "course_chain": (course_poster_dataset(paths, labels),
                         "read + decode_jpeg (plain) + resize every JPEG each epoch, tf.data map, batch 64"),
        "cached": (features.poster_dataset(films.posters, films.labels, training=True),
                   "features.poster_dataset: uint8 cache from prepare, cast, .cache(), shuffle, batch 64; "
                   "steady-state epoch (the first epoch, which fills .cache(), is not timed)"),
        "in_memory": (in_memory_dataset(films.posters, films.labels),
                      "one float32 batch already in memory, repeated for an epoch's batches: the upper limit"),
    }
    rows = {}
    for name, (data, method) in pipelines.items():
        exhaust(data)  # warm-up: fills .cache(), and the page cache for the JPEGs
        rows[name] = summary(images_per_second(data, repeats), "images/s", method=method)
        log(f"  poster pipeline {name}: {rows[name]['median']:,.0f} images/s")
    return {
        "note": "Images per second through each poster input pipeline over one training epoch. "
                "cached_vs_course is how many times faster our cache makes the input than decoding every "
                "JPEG each epoch; cached_vs_in_memory is the fraction of the upper limit our pipeline reaches.",
        "films": len(films.ids),
        "rows": rows,
        "cached_vs_course": ratio(rows["cached"], rows["course_chain"]),
        "cached_vs_in_memory": ratio(rows["cached"], rows["in_memory"]),
    }


# --------------------------------------------------------------------------- prepare's JPEG decoding
def plain_decode(raw):
    return tf.io.decode_jpeg(raw, channels=3)


def half_size_decode(raw):
    return tf.io.decode_jpeg(raw, channels=3, ratio=2)


def resized(image):
    """Resized as ``posters.decode_poster`` resizes, so only the decoding differs."""
    image = tf.image.resize(image, [config.IMAGE_SIZE, config.IMAGE_SIZE], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def decoding_dataset(paths: list[str], decode) -> tf.data.Dataset:
    """Prepare's chain (parallel map, batches of 256) with a chosen decoder."""
    return (tf.data.Dataset.from_tensor_slices(paths)
            .map(lambda path: decode(tf.io.read_file(path)), num_parallel_calls=features.AUTOTUNE)
            .ignore_errors().batch(256).prefetch(features.AUTOTUNE))


def bench_jpeg_decode(settings: Settings, log) -> dict:
    paths, _ = labelled_poster_paths(limit=settings.limit)
    repeats = settings.times(5)
    decoders = {
        "decode_jpeg_plain": (lambda raw: resized(plain_decode(raw)), "tf.io.decode_jpeg(channels=3)"),
        "decode_jpeg_ratio2": (lambda raw: resized(half_size_decode(raw)),
                               "tf.io.decode_jpeg(channels=3, ratio=2): the DCT decodes at half size"),
        "prepare_decode_poster": (lambda raw: posters.decode_poster(raw, config.IMAGE_SIZE),
                                  "posters.decode_poster, what prepare runs: ratio=2 when the poster is at "
                                  "least twice the target size, any image format"),
    }
    exhaust(decoding_dataset(paths, plain_decode))  # warm-up: every JPEG into the page cache
    rows = {}
    for name, (decode, method) in decoders.items():
        data = decoding_dataset(paths, decode)
        runs = [seconds_of(lambda: exhaust(data)) for _ in range(repeats)]
        rows[name] = summary(runs, "seconds", method=method, posters=len(paths),
                             posters_per_second=round(len(paths) / statistics.median(runs), 1))
        log(f"  decode {name}: {rows[name]['median']:.2f} s for {len(paths)} posters")
    return {
        "note": "Seconds to read, decode and resize every labelled poster to 64x64 (prepare's work, run "
                "once). plain_vs_ratio2 is how many times faster decoding at half size is (the issue "
                "measured 2.84 s vs 1.45 s).",
        "rows": rows,
        "plain_vs_ratio2": ratio(rows["decode_jpeg_plain"], rows["decode_jpeg_ratio2"]),
    }


# --------------------------------------------------------------------------- input pipeline overhead
def bench_input_overhead(settings: Settings, log) -> dict:
    spec, films, pipeline = training_data("cnn", settings)
    images = posters.model_pixels(films.posters).numpy()
    model = inputs.build(spec, films, jit_compile=False)
    feeds = {
        "pipeline": ({"x": pipeline}, "train.build_datasets: features.poster_dataset(training=True)"),
        "in_memory": ({"x": images, "y": films.labels, "batch_size": config.BATCH_SIZE, "shuffle": True},
                      "model.fit(float32 numpy images already scaled, labels, batch_size=64, shuffle=True)"),
    }
    for feed, _ in feeds.values():
        model.fit(epochs=1, verbose=0, **feed)  # warm-up: traces the step, fills .cache()
    runs = {name: [] for name in feeds}
    for _ in range(settings.times(5)):  # alternated, so a change in the machine's load hits both alike
        for name, (feed, _) in feeds.items():
            runs[name] += epoch_seconds(model, 1, **feed)
    rows = {name: summary(runs[name], "seconds/epoch", method=method) for name, (_, method) in feeds.items()}
    for name, row in rows.items():
        log(f"  spec CNN epoch fed by {name}: {row['median']:.2f} s")
    overhead = ratio(rows["pipeline"], rows["in_memory"])
    return {
        "note": "Seconds per training epoch of the spec CNN fed by our input pipeline and by tensors "
                "already in memory (one warm-up epoch each first). ratio = pipeline / in_memory: 1.0 "
                f"means the pipeline costs nothing; the goal is <= {GOALS['input_overhead_ratio']}.",
        "films": len(films.ids),
        "rows": rows,
        "ratio": overhead,
        "goal": GOALS["input_overhead_ratio"],
        "meets_goal": None if settings.quick else overhead <= GOALS["input_overhead_ratio"],
    }


# --------------------------------------------------------------------------- LSTM padding
def lstm_variants(settings: Settings) -> tuple[dict, object]:
    """Model and training data of each way of padding overviews.

    Both per-batch variants train the same model (only the batches differ), which
    saves building and tracing a third BiLSTM.
    """
    spec, films, bucketed = training_data("lstm", settings, bucket_by_length=True)
    _, _, unbucketed = training_data("lstm", settings, bucket_by_length=False)
    fixed_encoder = features.text_encoder(films.overviews, spec.vocab_size, sequence_length=FIXED_SEQUENCE_LENGTH)
    per_batch = inputs.build(spec, films, jit_compile=False)
    return {
        "fixed_64": (models.spec_lstm(fixed_encoder, jit_compile=False), unbucketed,
                     "every overview padded to 64 tokens (the course notebook)"),
        "per_batch_bucketed": (per_batch, bucketed, "padded to each batch's longest overview, batches "
                               "grouped by length (what filmgenre train runs)"),
        "per_batch": (per_batch, unbucketed,
                      "padded to each batch's longest overview, batches not grouped by length"),
    }, films


def mean_padded_length(model: keras.Model, data: tf.data.Dataset) -> float:
    """Tokens the LSTM steps through per film: why padding less makes an epoch faster."""
    encoder = model.get_layer("Encoder")
    steps = films = 0
    for texts, _ in data:
        steps += int(tf.size(encoder(texts)))
        films += len(texts)
    return round(steps / films, 1)


def bench_lstm(settings: Settings, log) -> dict:
    variants, films = lstm_variants(settings)
    warmed = set()
    rows = {}
    for name, (model, data, method) in variants.items():
        if id(model) not in warmed:  # one warm-up epoch traces the step (also for the last, smaller batches)
            model.fit(data.take(1) if settings.quick else data, epochs=1, verbose=0)
            warmed.add(id(model))
        rows[name] = summary(epoch_seconds(model, settings.times(3), x=data), "seconds/epoch", method=method,
                             mean_padded_length=mean_padded_length(model, data))
        log(f"  spec LSTM epoch, {name}: {rows[name]['median']:.2f} s")
    best = rows["per_batch_bucketed"]["median"]
    return {
        "note": "Seconds per training epoch of the spec BiLSTM for each way of padding overviews. "
                "fixed_vs_bucketed is how many times faster per-batch padding with length buckets makes "
                f"an epoch; the goal is <= {GOALS['lstm_seconds_per_epoch']:.0f} s per epoch on this "
                "machine (the issue measured 87-91 s with fixed padding).",
        "films": len(films.ids),
        "rows": rows,
        "fixed_vs_bucketed": ratio(rows["fixed_64"], rows["per_batch_bucketed"]),
        "goal_seconds_per_epoch": GOALS["lstm_seconds_per_epoch"],
        "meets_goal": None if settings.quick else best <= GOALS["lstm_seconds_per_epoch"],
    }


# --------------------------------------------------------------------------- inference
def inference_inputs(spec, settings: Settings) -> tuple[tf.data.Dataset, int]:
    """The test split in batches of 256, as ``evaluate`` would feed it."""
    films = inputs.load(spec, "test", settings.limit)
    return inputs.batches(spec, films, INFERENCE_BATCH), len(films.ids)


def bench_inference(settings: Settings, log) -> dict:
    rows = {}
    for name, spec in registry.MODELS.items():
        if reason := missing_data(spec):
            rows[name] = {"status": f"skipped: {reason}"}
            log(f"  inference {name}: skipped ({reason})")
            continue
        train_films = inputs.load(spec, "train", settings.limit)
        data, count = inference_inputs(spec, settings)
        model = inputs.build(spec, train_films, jit_compile=False)
        model.predict(data, verbose=0)  # warm-up: traces the step, fills .cache()
        runs = [count / seconds_of(lambda: model.predict(data, verbose=0)) for _ in range(settings.times(5))]
        rows[name] = summary(runs, "films/s", films=count, batch_size=INFERENCE_BATCH,
                             description=spec.description)
        log(f"  inference {name}: {rows[name]['median']:,.0f} films/s")
    return {
        "note": "Films per second that model.predict classifies, batches of 256 from the test split "
                "through the evaluation pipeline (freshly built weights: speed does not depend on them).",
        "rows": rows,
    }


