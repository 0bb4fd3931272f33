"""`filmgenre bench --quick` on the scratch project: a well-formed file, never a timing claim."""

import json
import sys

import numpy as np
import pytest

from filmgenre import config, files, registry
from filmgenre.bench import command as bench, common


def measurements(node):
    """Every measurement in the file, however deep: the dicts that carry runs and a median."""
    if isinstance(node, dict):
        if "runs" in node:
            yield node
        for value in node.values():
            yield from measurements(value)
    elif isinstance(node, list):
        for value in node:
            yield from measurements(value)


# Stands in for the memory section's `filmgenre train` process: the fresh-process training is
# test_train's CLI test (TensorFlow's start-up and a CNN epoch, ~10 CPU seconds, paid once). It
# fails unless it runs in the scratch root, with the project's prepared data, and holds 64 MiB.
STAND_IN_TRAINING = ("import os, pathlib; root = pathlib.Path.cwd()\n"
                     "assert os.environ['FILMGENRE_ROOT'] == str(root), 'not run in the scratch root'\n"
                     "assert (root / 'data' / 'processed' / 'films.csv').exists(), 'no prepared data'\n"
                     "block = b'x' * (64 * 2**20)")


def test_the_memory_sections_training_command_is_a_quick_filmgenre_train():
    from filmgenre import cli

    command = common.training_command("cnn", common.Settings(quick=True))
    assert command[:3] == [sys.executable, "-m", "filmgenre.cli"]
    args = cli.build_parser().parse_args(command[3:])
    assert (args.command, args.model, args.epochs, args.limit) == ("train", "cnn", 1, common.QUICK_FILMS)
    assert common.training_command("cnn", common.Settings())[-2:] == ["--epochs", "1"]  # all films


def test_quick_bench_writes_every_section_and_keeps_the_others(trainable, monkeypatch):
    from filmgenre.bench import training

    monkeypatch.setattr(training, "training_command", lambda name, settings: [sys.executable, "-c", STAND_IN_TRAINING])
    path = config.paths().bench
    prepare = files.read_json(path)["prepare"]  # written by the fixture's `prepare`
    files.merge_json(path, "train", {"cnn": {"seconds_per_epoch": 5.5}})

    written = bench.run(quick=True, log=lambda *_: None)

    recorded = json.loads(path.read_text())
    assert recorded["prepare"] == prepare and recorded["train"] == {"cnn": {"seconds_per_epoch": 5.5}}
    assert list(written) == list(bench.SECTIONS) and set(bench.SECTIONS) <= set(recorded)
    for name in bench.SECTIONS:
        section = recorded[name]
        assert section["command"] == f"filmgenre bench --only {name} --quick"
        assert section["note"] and section["quick"] is True
        assert section["device"] in {"CPU", "GPU"} and "tensorflow" in section["versions"]

    rows = {name: recorded[name]["rows"] for name in ["poster_pipeline", "jpeg_decode", "input_overhead",
                                                      "lstm", "inference", "memory"]}
    assert set(rows["poster_pipeline"]) == {"course_chain", "cached", "in_memory"}
    assert set(rows["jpeg_decode"]) == {"decode_jpeg_plain", "decode_jpeg_ratio2", "prepare_decode_poster"}
    assert set(rows["input_overhead"]) == {"pipeline", "in_memory"}
    assert set(rows["lstm"]) == {"fixed_64", "per_batch_bucketed", "per_batch"}
    assert set(rows["inference"]) == set(rows["memory"]) == set(registry.MODELS)
    assert rows["lstm"]["fixed_64"]["mean_padded_length"] == 64
    assert rows["lstm"]["per_batch"]["mean_padded_length"] < 64
    measured = [row for row in rows["memory"].values() if "median" in row]
    assert len(measured) == 1 and 64 <= measured[0]["median"] < 200  # the first model, in its own process

    xla = {row["variant"]: row for row in recorded["xla"]["rows"]}
    assert xla["as_trained"]["op_determinism"] is True and xla["no_determinism"]["op_determinism"] is False
    assert xla["as_trained"]["val_loss_per_epoch"] == xla["no_determinism"]["val_loss_per_epoch"]  # same seed
    assert xla["xla"]["status"].startswith("not supported")  # glove_lstm reads strings
    assert recorded["xla"]["command"] == "filmgenre bench --only xla --quick"

    found = list(measurements(recorded))
    assert len(found) >= 13
    for measurement in found:
        assert measurement["runs"] and all(run > 0 for run in measurement["runs"])
        assert measurement["median"] == pytest.approx(float(np.median(measurement["runs"])))
    for key, name in [("cached_vs_course", "poster_pipeline"), ("plain_vs_ratio2", "jpeg_decode"),
                      ("ratio", "input_overhead"), ("fixed_vs_bucketed", "lstm")]:
        assert recorded[name][key] > 0
    if recorded["gpu"]["device"] == "CPU":
        assert recorded["gpu"]["status"] == "no GPU"
        assert {row["status"] for row in recorded["gpu"]["rows"]} == {"no GPU"}
        assert len(recorded["gpu"]["rows"]) == 4 * len(registry.MODELS)


def test_only_runs_the_sections_asked_for(trainable):
    with pytest.raises(ValueError, match="unknown section"):
        bench.run(quick=True, only=["nonsense"], log=lambda *_: None)
    written = bench.run(quick=True, only=["jpeg_decode"], log=lambda *_: None)
    recorded = json.loads(config.paths().bench.read_text())
    assert list(written) == ["jpeg_decode"]
    assert set(recorded) == {"prepare", "jpeg_decode"}


def test_run_measured_reports_the_childs_own_peak_memory(tmp_path):
    ballast = b"y" * (400 * 2**20)  # the parent is big: its child must not inherit its high-water mark
    allocate = [sys.executable, "-c", "block = b'x' * (200 * 2**20)"]
    measured = common.run_measured(allocate, tmp_path, tmp_path / "child.log")
    assert 200 <= measured["peak_rss_mib"] < 300 and measured["seconds"] > 0
    del ballast
    with pytest.raises(RuntimeError, match="boom"):
        common.run_measured([sys.executable, "-c", "raise SystemExit('boom')"], tmp_path, tmp_path / "child.log")


def test_run_measured_reports_the_cpu_seconds_of_the_whole_process_tree(tmp_path):
    burn = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3: pass"
    grandchild = [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"]
    measured = common.run_measured(grandchild, tmp_path, tmp_path / "child.log")
    assert measured["cpu_seconds"] >= 0.3 and measured["seconds"] >= 0.3


def test_run_measured_counts_a_process_the_command_leaves_running(tmp_path, monkeypatch):
    """A grandchild started and never waited for (as a notebook kernel can be) is counted, and one
    still running after the grace period is stopped rather than waited for."""
    burn = "import time\nstart = time.process_time()\nwhile time.process_time() - start < {}: pass"
    orphan = [sys.executable, "-c", f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {burn.format(0.4)!r}])"]
    measured = common.run_measured(orphan, tmp_path, tmp_path / "child.log")
    assert measured["cpu_seconds"] >= 0.4 and measured["seconds"] >= 0.4
    monkeypatch.setattr(common, "ORPHAN_GRACE", 0.5)
    endless = [sys.executable, "-c", f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {burn.format(600)!r}])"]
    measured = common.run_measured(endless, tmp_path, tmp_path / "child.log")
    assert 0.4 <= measured["cpu_seconds"] and measured["seconds"] < 30
