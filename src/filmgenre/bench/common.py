"""What every bench section shares: settings, records, timing, measured processes, scratch roots."""

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import tensorflow as tf

from filmgenre import FilmgenreError, config, inputs, registry, train

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
    spec = registry.MODELS[name]
    films, data, _ = train.build_datasets(spec, settings.limit, config.BATCH_SIZE, config.SEED, bucket_by_length)
    return spec, films, data


# --------------------------------------------------------------------------- peak memory
# Runs a command, then reports the peak RSS of its process tree. It must be a separate,
# small process: on Linux a child inherits its parent's high-water mark through fork and
# exec, so a child measured straight from the (large) bench process would report at least
# the bench's own size. Children of this ~10 MB wrapper start from ~10 MB instead.
#
# A process the command leaves running (a notebook kernel shut down without being waited for, a
# double fork) would be reparented to init and its CPU time never counted: the wrapper makes
# itself their "subreaper" (Linux prctl), so they become its children, and reaps them after the
# command, waiting up to ORPHAN_GRACE seconds before it stops those still running.
ORPHAN_GRACE = 60
PEAK_RSS_WRAPPER = """
import ctypes, os, resource, signal, subprocess, sys, time
try:
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except (AttributeError, OSError):  # not Linux: orphans go uncounted
    pass
code = subprocess.call(sys.argv[3:])
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:  # no child left
        break
    if pid == 0 and time.monotonic() > deadline:  # orphans still running: stop them, then reap them
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    os.kill(int(entry), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        deadline = float("inf")
    elif pid == 0:
        time.sleep(0.05)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as report:
    report.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(code)
"""


def run_measured(command: list[str], cwd: Path, log_path: Path, env: dict | None = None) -> dict:
    """Run ``command`` to its end; its wall time, CPU seconds and the peak RSS of its process tree.

    CPU seconds are user + system of every process of the tree (``RUSAGE_CHILDREN`` sums
    the finished descendants, orphans included: see ``PEAK_RSS_WRAPPER``): the work asked of the machine, which contention barely
    changes, unlike wall time. The peak is that of the largest single process of the tree,
    not a sum: the stages of the study run one at a time. Output goes to ``log_path``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="filmgenre-rss-") as folder, open(log_path, "ab") as output:
        report = Path(folder) / "usage"
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-c", PEAK_RSS_WRAPPER, str(report), str(ORPHAN_GRACE), *command],
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
    if reason := inputs.missing_cache(spec):
        return reason
    try:
        inputs.load(spec, "train", limit=1)
    except (FilmgenreError, ImportError) as error:  # not prepared, or a damaged cache
        return str(error)
    return None


def models_to_train(settings: Settings) -> list[str]:
    """Every model; with ``quick`` only the first (one training process checks the mechanism)."""
    return list(registry.MODELS)[:1] if settings.quick else list(registry.MODELS)


