"""A tiny generated dataset with every poster flavour, and a scratch project to run it in.

The generated films have a learnable signal (each genre tints its posters and puts its
own words into the overviews), so a few epochs of training move the metrics.
"""

import csv
import io
import os
import resource
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from filmgenre import config  # noqa: E402

REAL_ZIP = Path(os.environ.get("FILMGENRE_DATA", config.ROOT.parent / "shared" / "data" / "Multimodal_IMDB_dataset.zip"))
REPO = config.ROOT  # the real project, before any test points config.ROOT at a scratch one
REPO_SPLITS = REPO / "data" / "splits.csv"
FLAVOURS = ["rgb", "grayscale", "cmyk", "progressive", "png"]
COLOURS = {"Action": (220, 40, 30), "Comedy": (240, 220, 40), "Drama": (40, 60, 200), "Horror": (20, 20, 20)}
WORDS = {"Action": "explosion chase fight", "Comedy": "funny laugh silly", "Drama": "tears family loss",
         "Horror": "ghost blood scream"}


def poster_bytes(colour, flavour: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (120, 80, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if flavour == "grayscale":
        image.convert("L").save(buffer, "JPEG")
    elif flavour == "cmyk":
        image.convert("CMYK").save(buffer, "JPEG")
    elif flavour == "progressive":
        image.save(buffer, "JPEG", progressive=True)
    elif flavour == "png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "JPEG")
    return buffer.getvalue()


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid grayscale PNG of zeros, compressed row by row: a small file (1.7 MB at 20,000 x
    20,000) that decodes into a huge image; it is never whole in memory here."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    squeeze, row = zlib.compressobj(1), bytes(width + 1)  # each row: filter byte 0, then the pixels
    body = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def poster_bomb(tmp_path_factory) -> Path:
    """A 20,000 x 20,000 PNG named .jpg: 1,144 MiB once decoded as RGB."""
    return png_bomb(tmp_path_factory.mktemp("bomb") / "bomb.jpg", 20_000, 20_000)


# Runs a command and writes its peak RSS (KiB) to a file. The command is forked from this small
# process: a child forked from the test process starts with the test process's own peak
# (fork, or vfork then exec, carries the parent's high-water mark into ru_maxrss).
PEAK_RSS = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
            "sys.exit(code)")


def run_cli_measured(arguments: list[str], root: Path) -> tuple[subprocess.CompletedProcess, float]:
    """``filmgenre ARGUMENTS`` in a subprocess on project ``root``, and its peak RSS in MiB."""
    peak = root.parent / "peak_rss_kib"
    command = [sys.executable, "-c", PEAK_RSS, str(peak), sys.executable, "-m", "filmgenre.cli", *arguments]
    finished = subprocess.run(command, env={**os.environ, "FILMGENRE_ROOT": str(root)}, capture_output=True,
                              text=True, timeout=600)
    return finished, int(peak.read_text()) / 1024  # ru_maxrss is in KiB on Linux


def film_rows(count: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    genres = list(COLOURS)
    rows = []
    for index in range(count):
        chosen = sorted(rng.choice(genres, size=rng.integers(1, 3), replace=False).tolist())
        row = {"Id": f"tt{index:07d}", "Genre": str(chosen)}
        row.update({g: int(g in chosen) for g in config.GENRES})
        filler = " ".join(rng.choice(["a", "the", "man", "woman", "city", "night", "story"], size=rng.integers(3, 15)))
        row["Overview"] = f"{filler} {' '.join(WORDS[g] for g in chosen)} {filler}."
        rows.append(row)
    return rows


def write_dataset(folder: Path, rows: list[dict], missing: tuple[str, ...] = (), corrupt: tuple[str, ...] = (),
                  orphans: int = 2) -> Path:
    """Write ``Multimodal_IMDB_dataset/`` under ``folder`` as the real zip lays it out."""
    root = folder / "Multimodal_IMDB_dataset"
    images = root / "Images"
    images.mkdir(parents=True)
    columns = ["Id", "Genre", *config.GENRES, "Overview"]
    with open(root / config.CSV_NAME, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    for index, row in enumerate(rows):
        if row["Id"] in missing:
            continue
        chosen = [g for g in COLOURS if int(row[g])]
        colour = np.mean([COLOURS[g] for g in chosen], axis=0) if chosen else (128, 128, 128)
        data = b"not an image at all" if row["Id"] in corrupt else poster_bytes(colour, FLAVOURS[index % 5], index)
        (images / f"{row['Id']}.jpg").write_bytes(data)
    for index in range(orphans):
        (images / f"tt9{index:06d}.jpg").write_bytes(poster_bytes((128, 128, 128), "rgb", index))
    return root


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            bundle.write(path, path.relative_to(folder.parent))
    return archive


def files_under(folder: Path) -> list[Path]:
    """Every file under ``folder``: what a refused or repeated ``prepare`` must leave as it was."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


# Folders of the working tree a test run may change: caches of Python, pytest and mutmut, the venv.
UNWATCHED = {".git", ".venv", "__pycache__", ".pytest_cache", "mutants", ".mutmut-cache"}


def working_tree_state() -> tuple[str, dict[str, tuple[int, int]]]:
    """``git status`` and every file's modification time and size below the real project (git-ignored
    ones too: figures, caches and models are ignored, and a test must not write them either)."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                            capture_output=True, text=True).stdout
    stamps = {}
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [d for d in subfolders if d not in UNWATCHED and not d.endswith(".egg-info")]
        for name in names:
            stat = os.stat(os.path.join(folder, name), follow_symlinks=False)
            stamps[os.path.relpath(os.path.join(folder, name), REPO)] = (stat.st_mtime_ns, stat.st_size)
    return status, stamps


@pytest.fixture(scope="session", autouse=True)
def working_tree_untouched():
    """Fails the run if any test wrote into the working tree: results, figures and caches of a test
    belong in a scratch project (``project``, ``copy_project``). Off under mutmut, whose workers
    write their verdicts into the copy it runs the tests in."""
    if os.environ.get("MUTANT_UNDER_TEST"):
        yield
        return
    status, stamps = working_tree_state()
    yield
    status_after, stamps_after = working_tree_state()
    changed = sorted(path for path in stamps.keys() | stamps_after.keys() if stamps.get(path) != stamps_after.get(path))
    if status_after != status or changed:
        pytest.fail("the test run changed the working tree (a test must write below tmp_path): "
                    + ", ".join(changed) + f"\ngit status before:\n{status}after:\n{status_after}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def tensorflow_for_tiny_runs():
    """TensorFlow set for the tests' tiny trainings, where preparing a step's graph costs more than
    running it (the spec LSTM's first step: ~8 CPU seconds, its next ones a tenth of that):

    - every model the tests build has its optimizer's variables made when compiled, not by its
      first training step: Keras (with no distribution strategy) builds the optimizer while
      TensorFlow traces that step, and a variable created during a trace makes TensorFlow trace
      the whole step twice (about 5 CPU seconds for the spec LSTM). The weights are the same
      (the slots start at zero). Here and not in ``models._compile``: there it would change
      every model's build key (``stamps``) and retrain every committed model for identical weights;
    - Grappler, TensorFlow's graph optimiser, is off: it rewrites each new graph for speed,
      which pays back over a real epoch, not over the tests' few batches.

    Both only change how fast TensorFlow runs the tests' code, in this process: the commands
    the tests start in fresh processes (the CLI's training, `predict`, `prepare`) run with
    TensorFlow's defaults, as users do. Off under mutmut, whose runs need no TensorFlow."""
    if os.environ.get("MUTANT_UNDER_TEST"):
        yield
        return
    import tensorflow as tf

    from filmgenre import models

    compile_model = models._compile

    def compiled(*args, **kwargs):
        model = compile_model(*args, **kwargs)
        model.optimizer.build(model.trainable_variables)
        return model

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "_compile", compiled)
        yield
    tf.config.optimizer.set_experimental_options(before)


def noisy_test_split(root: Path, seed: int = 99) -> None:
    """Replace everything a prepared project knows of its test films by noise: labels, overviews
    (of words no other film has), cached posters and every ``results/*/predictions.csv`` row.

    A stage that makes its choices on training and validation films only (early stopping, rules,
    the fusion's weight, the vocabulary) must choose exactly the same in this project.
    """
    rng = np.random.default_rng(seed)
    films_csv = root / "data" / "processed" / "films.csv"
    films = pd.read_csv(films_csv, dtype={"Id": str, "Overview": str, "split": str})
    test = (films["split"] == "test").to_numpy()
    films.loc[test, config.GENRES] = rng.integers(0, 2, (test.sum(), len(config.GENRES)))
    films.loc[test, "Overview"] = [" ".join(f"testword{w}" for w in rng.integers(0, 50, rng.integers(3, 40)))
                                   for _ in range(test.sum())]
    films.to_csv(films_csv, index=False)
    test_ids = set(films.loc[test, "Id"])
    for cache in (root / "data" / "processed").glob("posters_*.npz"):
        with np.load(cache) as arrays:
            ids, images = arrays["ids"], arrays["images"].copy()
        rows = np.isin(ids.astype(str), list(test_ids))
        images[rows] = rng.integers(0, 256, images[rows].shape, dtype=np.uint8)
        np.savez(cache, ids=ids, images=images)
    for predictions_csv in (root / "results").glob("*/predictions.csv"):
        predictions = pd.read_csv(predictions_csv, dtype={"Id": str, "split": str})
        rows = (predictions["split"] == "test").to_numpy()
        predictions.loc[rows, config.GENRES] = rng.random((rows.sum(), len(config.GENRES))).round(6)
        predictions.to_csv(predictions_csv, index=False, float_format="%.6f")


def stand_in_caches(seed: int = 0) -> None:
    """Random vectors of the right widths as the prepared project's encoder caches (poster and
    overview features), for tests of what reads the caches rather than of the encoders: encoding
    240 films with the real encoders costs tens of CPU seconds."""
    from filmgenre.encoders import cache

    rng = np.random.default_rng(seed)
    for reads in ("poster_features", "overview_features"):
        ids = cache.films_to_encode(reads)[0]
        path = cache.cache_path(cache.ENCODERS[reads])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, ids=ids, features=rng.normal(size=(len(ids), *cache.ENCODERS[reads].shape)).astype(np.float32))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project root: everything the stages write goes below it."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(config, "ROOT", root)
    return root


@pytest.fixture
def tiny_zip(tmp_path) -> Path:
    """48 films in every poster flavour, one poster missing, one corrupt, two orphan images."""
    rows = film_rows(48)
    source = tmp_path / "source"
    folder = write_dataset(source, rows, missing=("tt0000007",), corrupt=("tt0000011",))
    return zip_folder(folder, tmp_path / "Multimodal_IMDB_dataset.zip")


@pytest.fixture
def prepared(project, tiny_zip):
    """The scratch project after `prepare` on the tiny dataset (a larger one: training needs films)."""
    from filmgenre import dataset

    dataset.prepare(tiny_zip, progress=False, log=lambda *_: None)
    return project


@pytest.fixture(scope="session")
def trainable_zip(tmp_path_factory) -> Path:
    """240 clean films: enough for short training runs on every split."""
    folder = tmp_path_factory.mktemp("trainable")
    return zip_folder(write_dataset(folder, film_rows(240, seed=1), orphans=0), folder / "Multimodal_IMDB_dataset.zip")


@pytest.fixture
def trainable(project, trainable_zip):
    from filmgenre import dataset

    dataset.prepare(trainable_zip, progress=False, log=lambda *_: None)
    return project


@pytest.fixture
def unseen_words(trainable):
    """The 240 films prepared, with validation and test overviews made of words no training film
    has: what a vocabulary learns from them shows which films it was adapted on."""
    noisy_test_split(trainable)
    films_csv = trainable / "data" / "processed" / "films.csv"
    films = pd.read_csv(films_csv, dtype={"Id": str, "Overview": str, "split": str})
    val = films["split"] == "val"
    films.loc[val, "Overview"] = [f"valword{i} valword{i % 3} spoken" for i in range(val.sum())]
    films.to_csv(films_csv, index=False)
    return trainable


def training_words(overviews) -> set[str]:
    """The words of some overviews, lower case, as TextVectorization and TfidfVectorizer split them."""
    import re

    return {word for text in overviews for word in re.findall(r"\w+", text.lower())}


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, trainable_zip) -> Path:
    """A scratch project with the 240 films prepared and the spec CNN and LSTM trained one epoch.

    Shared by the test modules that need trained models; copy it (``copy_project``) before
    writing into it.
    """
    from filmgenre import dataset, train

    root = tmp_path_factory.mktemp("trained") / "project"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", root)
        dataset.prepare(trainable_zip, progress=False, log=lambda *_: None)
        train.train("cnn", epochs=1, verbose=0)
        train.train("lstm", epochs=1, verbose=0)
    return root


def copy_project(source: Path, tmp_path_factory, name: str) -> Path:
    import shutil

    return Path(shutil.copytree(source, tmp_path_factory.mktemp(name) / "project"))


@pytest.fixture(scope="session")
def evaluated_tiny(tmp_path_factory, trained_tiny):
    """``trained_tiny`` after ``evaluate_all`` (the two models and every baseline): its root, the
    metrics and the log lines. Shared: copy it (``copy_project``) before writing into it."""
    from filmgenre import evaluate

    root = copy_project(trained_tiny, tmp_path_factory, "evaluated")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", root)
        lines = []
        metrics = evaluate.evaluate_all(log=lines.append)
    return root, metrics, lines


# --------------------------------------------------------------------------- the suite's cost
CPU_SECONDS: dict[str, float] = {}


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children: the cost that a busy
    machine does not inflate as it inflates wall time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item):
    started = cpu_seconds()
    yield
    CPU_SECONDS[item.nodeid] = cpu_seconds() - started


def pytest_terminal_summary(terminalreporter, config):
    """With ``--durations=N``, the N tests that cost the most CPU seconds too (the first test to use a
    shared fixture pays for building it)."""
    shown = config.getoption("durations")
    if not shown or not CPU_SECONDS:
        return
    terminalreporter.write_sep("=", f"most CPU seconds (of {sum(CPU_SECONDS.values()):.0f} in the tests)")
    for nodeid, seconds in sorted(CPU_SECONDS.items(), key=lambda item: -item[1])[:shown]:
        terminalreporter.write_line(f"{seconds:8.1f}s  {nodeid}")
