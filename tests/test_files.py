import json
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from filmgenre import files


def test_an_entry_replaces_only_itself_within_its_section(tmp_path):
    path = tmp_path / "bench.json"
    files.merge_json_entry(tmp_path / "new.json", "train", "cnn", {"epochs": 1})  # a file not there yet
    assert json.loads((tmp_path / "new.json").read_text()) == {"train": {"cnn": {"epochs": 1}}}
    files.merge_json(path, "prepare", {"64px": {"seconds": 2.0}})
    files.merge_json_entry(path, "train", "cnn", {"epochs": 40})
    files.merge_json_entry(path, "train", "lstm", {"epochs": 10})
    files.merge_json_entry(path, "train", "cnn", {"epochs": 39})
    assert json.loads(path.read_text()) == {"prepare": {"64px": {"seconds": 2.0}},
                                            "train": {"cnn": {"epochs": 39}, "lstm": {"epochs": 10}}}


def test_an_error_inside_atomic_path_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.json"]
    files.write_json(target, {"new": 1})  # and an uninterrupted write replaces it
    assert json.loads(target.read_text()) == {"new": 1} and len(list(tmp_path.iterdir())) == 1


WRITER = """
import signal, sys, time
from filmgenre import files
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal, even if the runner ignores it
with files.atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "w") as handle:
        handle.write("half of the new")
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)
"""


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_a_writer_stopped_mid_write_leaves_the_old_file(tmp_path, stop):
    """Ctrl-C (SIGINT) unwinds: the temporary file goes too. SIGKILL runs no cleanup: at most a
    hidden ``.metrics.json.*`` temporary remains beside it, never a partial ``metrics.json``."""
    target = tmp_path / "metrics.json"
    target.write_text("old")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(stop)
    writer.wait(timeout=30)
    writer.stdout.close()
    assert writer.returncode != 0 and target.read_text() == "old"
    left = [path.name for path in tmp_path.iterdir() if path != target]
    if stop == signal.SIGINT:
        assert left == []
    else:
        assert len(left) == 1 and left[0].startswith(".metrics.json.")


def test_an_identical_write_leaves_the_file_untouched_and_a_new_one_is_an_ordinary_file(tmp_path):
    import os

    target = tmp_path / "results" / "table.csv"  # the folder is made on the way
    files.write_text(target, "a,b\n")
    before = target.stat().st_mtime_ns
    os.utime(target, ns=(before - 10**9, before - 10**9))
    files.write_text(target, "a,b\n")
    assert target.stat().st_mtime_ns == before - 10**9  # `make` sees nothing changed
    umask = os.umask(0o022)
    try:
        files.write_text(target, "a,b\n1,2\n")
    finally:
        os.umask(umask)
    assert target.read_text() == "a,b\n1,2\n" and target.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_json_csv_and_hashes_of_what_the_stages_write(tmp_path):
    import hashlib

    import numpy as np
    import pandas as pd

    path = tmp_path / "metrics.json"
    files.write_json(path, {"f1": np.float32(0.5), "counts": np.arange(3), "where": tmp_path})
    assert path.read_text().startswith('{\n  "f1": 0.5,\n  "counts": [\n') and path.read_text().endswith("}\n")
    assert files.read_json(path) == {"f1": 0.5, "counts": [0, 1, 2], "where": str(tmp_path)}
    assert files.read_json(tmp_path / "missing.json", default={"none": 1}) == {"none": 1}
    with pytest.raises(TypeError, match="set"):
        files.write_json(path, {"bad": {1, 2}})
    files.write_csv(tmp_path / "table.csv", pd.DataFrame({"a": [1, 2]}))
    assert (tmp_path / "table.csv").read_text() == "a\n1\n2\n"  # no index column
    assert files.sha256(tmp_path / "table.csv", chunk=2) == hashlib.sha256(b"a\n1\n2\n").hexdigest()


def test_a_digest_hashes_its_parts_in_order_and_a_cached_hash_follows_the_file(tmp_path):
    import hashlib
    import os
    from pathlib import Path

    assert files.digest("a", 1) == hashlib.sha256(b'["a", 1]').hexdigest()[:16]
    assert files.digest({"x": 1, "y": 2}) == files.digest({"y": 2, "x": 1})  # a dict's key order does not count
    assert files.digest("a", "b") != files.digest("b", "a") and files.digest(Path("p")) == files.digest("p")
    path = tmp_path / "weights.bin"
    path.write_bytes(b"one")
    assert files.sha256_cached(path) == hashlib.sha256(b"one").hexdigest()
    stamp = path.stat().st_mtime_ns
    path.write_bytes(b"three")  # another size at the same time: hashed again
    os.utime(path, ns=(stamp, stamp))
    assert files.sha256_cached(path) == hashlib.sha256(b"three").hexdigest()
    path.write_bytes(b"seven")  # the same size at another time: hashed again
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    assert files.sha256_cached(str(path)) == hashlib.sha256(b"seven").hexdigest()
    other = tmp_path / "other.bin"  # another file of the same size and time
    other.write_bytes(b"eight")
    os.utime(other, ns=(stamp + 10**9, stamp + 10**9))
    assert files.sha256_cached(other) == hashlib.sha256(b"eight").hexdigest()


@pytest.mark.parametrize("content, problem", [(b'{"train": {"cnn": ', "not valid JSON at line 1 (truncated or edited?)"),
                                              (b"\xff\xfe\x00garbage", "not valid JSON (truncated or edited?)"),
                                              (b"[1, 2]", "a JSON list, not an object")])
def test_a_damaged_json_file_names_itself_and_the_fix_for_every_stage_that_adds_to_it(project, content, problem):
    """bench.json is added to by prepare, encode, train and bench (``merge_json``): a damaged one stops them
    with one line naming it, the committed copy and deleting it, never a JSONDecodeError traceback."""
    path = project / "results" / "bench.json"
    path.parent.mkdir()
    path.write_bytes(content)
    for read in (lambda: files.read_json(path), lambda: files.merge_json_entry(path, "train", "cnn", {"epochs": 1})):
        with pytest.raises(files.ArtifactError) as raised:
            read()
        assert str(raised.value) == (f"results/bench.json: {problem}. Restore the committed copy "
                                     "(`git checkout results/bench.json`), or delete it: the stage that writes it makes it anew.")
    assert path.read_bytes() == content  # nothing written over it
    with pytest.raises(files.ArtifactError, match=rf"^results/bench\.json: {re.escape(problem)}\. Rerun X\.$"):
        files.read_json(path, "Rerun X.")  # a reader's own fix replaces the default


def test_an_npz_is_read_whole_or_named_with_what_is_wrong_and_its_fix(project):
    """Caches (posters, encoder vectors, occlusion maps) are read through ``read_npz``: a truncated file,
    one of pickled objects or one without the arrays a reader needs is one line, never a traceback."""
    path = project / "data" / "processed" / "cache.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, ids=np.array(["tt1", "tt2"]), images=np.zeros((2, 4, 4, 3), np.uint8))
    arrays = files.read_npz(path, ("ids", "images"))
    assert arrays["ids"].tolist() == ["tt1", "tt2"] and arrays["images"].shape == (2, 4, 4, 3)
    whole = path.read_bytes()
    for damage, problem in ((lambda: path.write_bytes(whole[:200]), "not a readable .npz (BadZipFile)"),
                            (lambda: np.savez(path, ids=np.array([{"a": 1}], dtype=object)), "not a readable .npz (ValueError)"),
                            (lambda: np.savez(path, ids=np.array(["tt1"])), "holds ['ids'], not ids and images")):
        damage()
        assert files.npz_arrays(path, ("ids", "images")) == (None, problem)
        with pytest.raises(files.ArtifactError) as raised:
            files.read_npz(path, ("ids", "images"), fix="Rerun X.")
        assert str(raised.value) == f"data/processed/cache.npz: {problem}. Rerun X."
