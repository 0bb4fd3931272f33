"""Atomic writes, checked JSON and .npz reads and hashes: an interrupted run never leaves a
half-written result, and a damaged one read back is named with its fix, not a traceback.

Every result file is written beside its target under a temporary name and moved into
place with ``os.replace``, which is atomic on POSIX file systems. A JSON file is read back
through ``read_json``: one that does not parse (cut short, edited, overwritten) raises
``ArtifactError`` with one line naming the file and what rebuilds it; an ``.npz`` cache through
``read_npz`` (or ``npz_arrays``, for a caller that rebuilds it itself).
"""

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from filmgenre import FilmgenreError, config


@contextlib.contextmanager
def atomic_path(target: Path | str, suffix: str = ""):
    """Yield a temporary path next to ``target``; move it into place only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix or target.suffix)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(target: Path | str, text: str) -> None:
    """Write atomically; leave an identical file untouched, so `make` sees nothing changed."""
    target = Path(target)
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: Path | str, data) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False, default=jsonable) + "\n")


def write_csv(target: Path | str, frame, **to_csv_kwargs) -> None:
    """Write a pandas DataFrame atomically (index off unless asked)."""
    to_csv_kwargs.setdefault("index", False)
    write_text(target, frame.to_csv(**to_csv_kwargs))


class ArtifactError(FilmgenreError):
    """A file written by an earlier stage that cannot be used as it is: the message says how to rebuild it."""


def relative(path: Path | str) -> str:
    """``path`` as a message names it: relative to the project root when it is below it."""
    try:
        return str(Path(path).resolve().relative_to(config.paths().root.resolve()))
    except ValueError:
        return str(path)


def read_json(path: Path | str, fix: str | None = None, default=None) -> dict:
    """A JSON object written by a stage (``default`` when the file does not exist), or ``ArtifactError``
    naming the file and ``fix`` (by default: restore the committed copy, or delete it)."""
    path = Path(path)
    if not path.exists():
        return default
    fix = fix or (f"Restore the committed copy (`git checkout {relative(path)}`), or delete it: "
                  "the stage that writes it makes it anew.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        raise ArtifactError(f"{relative(path)}: not valid JSON{where} (truncated or edited?). {fix}") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{relative(path)}: a JSON {type(data).__name__}, not an object. {fix}")
    return data


def npz_arrays(path: Path | str, keys=()) -> tuple[dict | None, str | None]:
    """Every array of the ``.npz`` at ``path`` (read into memory, the file closed) and ``None``, or
    ``None`` and what is wrong with the file: unreadable, or without one of ``keys``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        return None, f"not a readable .npz ({type(error).__name__})"
    if any(key not in arrays for key in keys):
        return None, f"holds {sorted(arrays)}, not {' and '.join(keys)}"
    return arrays, None


def read_npz(path: Path | str, keys=(), fix: str = "Delete it: the stage that writes it makes it anew.") -> dict:
    """``npz_arrays``, or ``ArtifactError`` naming the file, what is wrong and ``fix``."""
    arrays, problem = npz_arrays(path, keys)
    if problem:
        raise ArtifactError(f"{relative(path)}: {problem}. {fix}")
    return arrays


def merge_json(target: Path | str, section: str, values: dict) -> dict:
    """Replace one top-level section of a JSON file, keeping the others."""
    data = read_json(target, default={})
    data[section] = values
    write_json(target, data)
    return data


def merge_json_entry(target: Path | str, section: str, key: str, value) -> dict:
    """Replace one entry of one top-level section, keeping the section's other entries (one
    stage records each of its runs, e.g. each poster size or model, beside the others)."""
    return merge_json(target, section, read_json(target, default={}).get(section, {}) | {key: value})


def sha256(path: Path | str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def digest(*parts) -> str:
    """A short hash (16 hex digits) of JSON-able parts, in order."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


_hashes: dict[tuple, str] = {}


def sha256_cached(path: Path | str) -> str:
    """``sha256`` remembered per (path, modification time, size): a stage hashes each input once."""
    stat = Path(path).stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _hashes:
        _hashes[key] = sha256(path)
    return _hashes[key]


def jsonable(value):
    """Let numpy scalars and arrays, and paths, pass through ``json.dumps``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
