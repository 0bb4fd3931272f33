"""The old-vs-new stage benchmark: its plan comes from the Makefile, its totals count added stages apart."""

import sys
from pathlib import Path

from filmgenre import config
from filmgenre.bench import stagecpu

ZIP = Path("/data/Multimodal_IMDB_dataset.zip")


def test_the_plan_is_make_alls_stages_in_order_without_installing(tmp_path):
    # planned in an export of HEAD, as the bench plans its commits: `make -n` in the working tree
    # would write its build keys there (the keys line runs under -n)
    commands = stagecpu.stage_commands(stagecpu.export("HEAD", tmp_path / "tree"), ZIP)
    labels = [stagecpu.label(command) for command in commands]
    assert labels[0] == "prepare 64" and labels[-4:] == ["evaluate", "explain", "report", "diff"]
    assert {"train cnn", "train lstm", "train glove_lstm"} <= set(labels) and "train poster_cnn" not in labels
    assert all(command[0] == sys.executable for command in commands)
    assert ["--source", str(ZIP)] == commands[0][4:6]


def test_a_trees_results_can_be_restored_as_committed(tmp_path):
    """Before a probed run's report stage the bench puts the commit's committed results back."""
    tree = stagecpu.export("HEAD", tmp_path / "tree")
    metrics = tree / "results" / "metrics.json"
    committed = metrics.read_bytes()
    metrics.write_text("{}")  # what a probed evaluate leaves
    (tree / "README.md").write_text("changed")
    stagecpu.export("HEAD", tree, "results")
    assert metrics.read_bytes() == committed and (tree / "README.md").read_text() == "changed"  # results/ only


def test_labels_name_each_stage():
    python = sys.executable
    assert stagecpu.label([python, "-m", "filmgenre.cli", "prepare", "--source", "/x.zip", "--image-size", "96"]) \
        == "prepare 96"
    assert stagecpu.label([python, "-m", "filmgenre.cli", "train", "cnn"]) == "train cnn"
    assert stagecpu.label([python, "-m", "filmgenre.pretrained"]) == "python -m filmgenre.pretrained"


def test_totals_compare_the_stages_of_today_and_count_added_ones_apart():
    row = lambda stage, cpu: {"stage": stage, "cpu_seconds": cpu, "wall_seconds": cpu / 2}  # noqa: E731
    rows = {"old": [row("prepare 64", 10), row("train cnn", 100), row("train poster_cnn", 90)],
            "new": [row("prepare 64", 10), row("train cnn", 40), row("python -m filmgenre.pretrained", 30)]}
    totals = stagecpu.totals(rows, "old", "new")
    assert totals["old_cpu_seconds"] == 200 and totals["new_cpu_seconds"] == 50 and totals["ratio_new_to_old"] == 0.25
    assert totals["removed_stages"] == ["train poster_cnn"]
    assert totals["added_stages"] == {"python -m filmgenre.pretrained": 30}
    assert totals["new_cpu_seconds_all_stages"] == 80 and totals["ratio_all_stages_new_to_old"] == 0.4
    assert totals["added_stages_to_spec_cnn_training"] == {"python -m filmgenre.pretrained": 0.75}


def test_full_epochs_replay_the_committed_history():
    import json

    committed = json.loads((config.ROOT / "results" / "lstm" / "train.json").read_text())
    settings = committed["settings"]
    specs = {"lstm": [settings["epochs"], settings["patience"]]}
    assert stagecpu.full_epochs(config.ROOT, "lstm", specs) == committed["epochs_run"]
    assert stagecpu.full_epochs(config.ROOT, "lstm", {"lstm": [3, settings["patience"]]}) == 3  # capped
