"""Stage 3, `filmgenre train NAME`: fit one model with the assignment's callbacks.

A run writes ``models/<run>.keras`` and ``results/<run>/{history.csv,train.json}``, where
``<run>`` is the model's name (``cnn-limit200`` for a ``--limit 200`` smoke run, so a
smoke run never overwrites the full run's results). Work in progress lives in
``logs/<run>/``: the Keras ``BackupAndRestore`` state (rerun the same command after an
interruption and it continues from the last finished epoch), the best weights so far,
the growing history and the TensorBoard logs. Results are copied out atomically at the
end, so an interrupted run never leaves half a result behind.
"""

import json
import math
import platform
import resource
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from filmgenre import config, files, inputs, models, registry


# Known and harmless with tf.data input: Keras asks for shuffling the dataset already does,
# and length-bucketed batches have no cardinality known before the first epoch ends.
warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed")
warnings.filterwarnings("ignore", message=r"Your input ran out of data")


def learning_rate_schedule(epoch: int, learning_rate: float, base: float) -> float:
    """The assignment's schedule: constant for 10 epochs, then x exp(-0.01) each epoch.

    Written in closed form from the base rate, so a run resumed after an interruption
    gets exactly the rate an uninterrupted run would have had.
    """
    return base * math.exp(-0.01 * max(0, epoch - 9))


def early_stopping(val_losses, patience: int, epochs: int) -> tuple[int, int]:
    """Replay Keras's ``EarlyStopping(monitor="val_loss", patience=...)`` on a recorded history.

    Returns (epochs run, best epoch), counted from 1: what a run with this patience and
    maximum would have done, given that training is deterministic (same seed, same
    epochs). Lets a patience be chosen from a committed curve without retraining.
    """
    best, best_epoch, wait = math.inf, 0, 0
    for epoch, loss in enumerate(list(val_losses)[:epochs]):
        wait += 1
        if loss < best:
            best, best_epoch, wait = loss, epoch, 0
        elif wait >= patience and epoch > 0:
            return epoch + 1, best_epoch + 1
    return min(len(val_losses), epochs), best_epoch + 1


class EpochTimer(keras.callbacks.Callback):
    """Wall and CPU seconds each epoch took (training plus validation), for ``train.json``.

    CPU seconds (user + system of every thread of the process, ``time.process_time``) are
    the work an epoch asks of the machine; wall seconds also count waiting for CPUs that
    other work holds, so only CPU seconds compare between a busy machine and an idle one.
    """

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._cpu_start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        self.cpu_seconds.append(time.process_time() - self._cpu_start)


def duration(seconds: float) -> str:
    """``41 s``, ``3 min``, ``1 h 05 min``: a human reading of a duration."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def progress_line(run: str, epoch: int, epochs: int, elapsed: float, epoch_seconds: list[float]) -> str:
    """One line after each epoch, so a user on a slow machine knows how long to wait.

    What remains is the median epoch so far times the epochs left: an upper bound, since
    early stopping may end the run sooner.
    """
    left = epochs - epoch
    line = f"train {run}: epoch {epoch}/{epochs}, {duration(elapsed)} elapsed"
    if left and epoch_seconds:
        line += f", ~{duration(left * float(np.median(epoch_seconds)))} left (at most; early stopping may end sooner)"
    return line


class Progress(keras.callbacks.Callback):
    """Prints ``progress_line`` after each epoch (flushed: ``make`` may pipe the output)."""

    def __init__(self, run: str, epochs: int, timer: EpochTimer, print_line=print):
        super().__init__()
        self.run, self.epochs, self.timer, self.print_line = run, epochs, timer, print_line

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        self.print_line(progress_line(self.run, epoch + 1, self.epochs, elapsed, self.timer.seconds), flush=True)


def configure_runtime(seed: int, strategy: str, mixed_precision: bool, deterministic: bool = True):
    """Seeds, determinism, precision and the distribution strategy, before any model exists.

    Op determinism makes a rerun give identical histories, but Keras then compiles without
    XLA whatever ``jit_compile`` says; so an XLA run (``deterministic=False``) leaves it off.
    """
    if strategy == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:  # two logical CPUs, so the multi-device code path runs on a CPU machine
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
        devices = [d.name for d in tf.config.list_logical_devices("GPU" if gpus else "CPU")]
        distribution = tf.distribute.MirroredStrategy(devices)
    else:
        distribution = tf.distribute.get_strategy()
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if mixed_precision:
        has_gpu = bool(tf.config.list_physical_devices("GPU"))
        keras.mixed_precision.set_global_policy("mixed_float16" if has_gpu else "mixed_bfloat16")
    return distribution


def use_threads_per_op(threads: int | None) -> None:
    """How many threads each TensorFlow op may use (None or 0: TensorFlow's default, one per core).

    TensorFlow fixes its thread pools once per process, when it starts: `filmgenre train`, which
    trains one model, calls this first; in-process callers (seeds, the bench, tests) keep the default.
    """
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)


CODE = ("src", "pyproject.toml", "Makefile")  # what a run's result depends on, besides its data


def git_commit(root: Path | None = None) -> str | None:
    """The commit trained from, ``+dirty`` when its code had uncommitted changes.

    Only ``CODE`` counts: the stages themselves rewrite tracked results (``train`` records its
    cost in ``results/bench.json``), so a whole-tree check would mark every run of
    ``make all`` after the first as dirty.
    """
    root = root or config.ROOT
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def versions() -> dict:
    import sklearn

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__}


def run_name(name: str, limit: int | None) -> str:
    return name if limit is None else f"{name}-limit{limit}"


def build_datasets(spec, limit: int | None, batch_size: int, seed: int, bucket_by_length: bool = True):
    """Training and validation datasets for what the model reads (never the test split)."""
    val_limit = None if limit is None else max(limit // 4, batch_size)
    train_films = inputs.load(spec, "train", limit)
    val_films = inputs.load(spec, "val", val_limit)
    return (train_films,
            inputs.batches(spec, train_films, batch_size, True, seed, bucket_by_length),
            inputs.batches(spec, val_films, batch_size))


def train(name: str, epochs: int | None = None, seed: int = config.SEED, limit: int | None = None,
          batch_size: int = config.BATCH_SIZE, mixed_precision: bool = False, jit_compile: bool = False,
          strategy: str = "default", verbose: int | str = "auto", out: Path | None = None,
          class_weight: bool = False) -> dict:
    """Train model ``name`` (a key of ``registry.MODELS``) and write its artifacts.

    ``out`` is the folder that receives ``models/``, ``results/`` and ``logs/`` (default:
    the project root); the prepared data is always read from the project. ``class_weight``
    weights each genre's positive films by its negatives / positives in the training films
    (capped, ``models.WeightedBinaryCrossentropy``), for the rare genres macro-F1 averages.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    spec = registry.MODELS[name]
    epochs = spec.epochs if epochs is None else epochs
    run = run_name(name, limit)
    where = config.paths()
    out = where.root if out is None else Path(out)
    work = out / "logs" / run
    settings = {"model": name, "epochs": epochs, "patience": spec.patience, "seed": seed, "limit": limit,
                "batch_size": batch_size,
                "mixed_precision": mixed_precision, "jit_compile": jit_compile, "strategy": strategy,
                "class_weight": class_weight,
                "threads_per_op": tf.config.threading.get_intra_op_parallelism_threads() or None}
    _reset_stale_backup(work, settings)

    distribution = configure_runtime(seed, strategy, mixed_precision, deterministic=not jit_compile)
    with distribution.scope():
        train_films, train_data, val_data = build_datasets(spec, limit, batch_size, seed)
        model = inputs.build(spec, train_films, jit_compile)
        if class_weight:
            model = models.with_class_weights(model, train_films.labels, jit_compile)
    base_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))

    history_log = work / "history.csv"
    best_weights = work / "best.weights.h5"
    earlier = pd.read_csv(history_log) if history_log.exists() else None
    timer = EpochTimer()
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(best_weights), monitor="val_loss", save_best_only=True, save_weights_only=True,
            initial_value_threshold=float(earlier["val_loss"].min()) if earlier is not None and len(earlier) else None),
        keras.callbacks.LearningRateScheduler(lambda epoch, rate: learning_rate_schedule(epoch, rate, base_rate)),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=spec.patience, restore_best_weights=True),
        keras.callbacks.CSVLogger(str(history_log), append=True),
        keras.callbacks.TensorBoard(str(work / "tensorboard")),
        timer,
        Progress(run, epochs, timer),
    ]
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    print(f"Training {run}: {spec.description}, {model.count_params():,} parameters, "
          f"{len(train_films.ids)} training films, up to {epochs} epochs.", flush=True)
    model.fit(train_data, validation_data=val_data, epochs=epochs, callbacks=callbacks, verbose=verbose)

    if best_weights.exists():
        model.load_weights(str(best_weights))
    history = _dedupe_resumed(pd.read_csv(history_log))
    best = int(history["val_loss"].idxmin())
    summary = {
        "model": name,
        "run": run,
        "description": spec.description,
        "parameters": int(model.count_params()),
        "trainable_parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "training_films": int(len(train_films.ids)),
        "epochs_requested": epochs,
        "epochs_run": int(len(history)),
        "best_epoch": int(history.at[best, "epoch"]) + 1,
        "best_val_loss": float(history.at[best, "val_loss"]),
        "seconds_per_epoch": round(float(np.median(timer.seconds)), 2) if timer.seconds else None,
        "seconds_per_epoch_all": [round(s, 2) for s in timer.seconds],
        "cpu_seconds_per_epoch": round(float(np.median(timer.cpu_seconds)), 2) if timer.cpu_seconds else None,
        "cpu_seconds_per_epoch_all": [round(s, 2) for s in timer.cpu_seconds],
        # the whole call, from loading the data to the best weights restored (saving excluded)
        "seconds_total": round(time.perf_counter() - started, 1),
        "cpu_seconds_total": round(time.process_time() - cpu_started, 1),
        "settings": settings,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "devices": _devices(),
        "versions": versions(),
        "git_commit": git_commit(),
    }
    model_path = registry.model_path(run, out)
    with files.atomic_path(model_path) as tmp:
        model.save(tmp)
    files.write_csv(out / "results" / run / "history.csv", history)
    files.write_json(out / "results" / run / "train.json", summary)
    if limit is None and out == where.root:  # full runs: the figure the performance study quotes
        files.merge_json_entry(where.bench, "train", name, {
            "command": f"filmgenre train {name}", "seconds_per_epoch": summary["seconds_per_epoch"],
            "cpu_seconds_per_epoch": summary["cpu_seconds_per_epoch"], "cpu_seconds_total": summary["cpu_seconds_total"],
            "epochs_run": summary["epochs_run"], "note": "median epoch of the full run"})
    for leftover in (history_log, best_weights, work / "settings.json"):
        leftover.unlink(missing_ok=True)
    print(f"Saved {model_path} (best epoch {summary['best_epoch']}, val_loss {summary['best_val_loss']:.4f}) "
          f"and {out / 'results' / run}/", flush=True)
    return summary


def _reset_stale_backup(work, settings: dict) -> None:
    """A backup left by a run with other settings must not be resumed: start afresh."""
    recorded = work / "settings.json"
    if recorded.exists() and json.loads(recorded.read_text()) != settings:
        print(f"Discarding the interrupted run in {work}: it had other settings.", flush=True)
        shutil.rmtree(work)
    elif (work / "backup").exists():
        print(f"Resuming the interrupted run from {work / 'backup'}.", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    files.write_json(recorded, settings)


def _dedupe_resumed(history: pd.DataFrame) -> pd.DataFrame:
    """An epoch interrupted after logging is rerun on resume: keep its last record."""
    return history.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def _devices() -> list[str]:
    return [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()]
