"""The old-vs-new stage benchmark: its plan comes from the Makefile, its totals count added stages apart."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from filmgenre import config
from filmgenre.bench import stagecpu

ZIP = Path("/data/Multimodal_IMDB_dataset.zip")


def test_the_plan_is_make_alls_stages_in_order_without_installing(tmp_path):
    # planned in a clone of HEAD, as the bench plans its commits: `make -n` in the working tree
    # would write its build keys there (the keys line runs under -n)
    commands = stagecpu.stage_commands(stagecpu.clone("HEAD", tmp_path / "tree"), ZIP)
    labels = [stagecpu.label(command) for command in commands]
    assert labels[0] == "prepare 64" and labels[-4:] == ["evaluate", "explain", "report", "diff"]
    assert {"train cnn", "train lstm", "train glove_lstm"} <= set(labels) and "train poster_cnn" not in labels
    assert all(command[0] == sys.executable for command in commands)
    assert ["--source", str(ZIP)] == commands[0][4:6]


def test_a_tree_is_a_clone_at_its_commit_and_its_results_can_be_restored_as_committed(tmp_path):
    """Runs in the tree record the commit they ran (the old report stops on a run without one); before
    a probed run's report stage the bench puts the commit's committed results back."""
    from filmgenre import train

    old = subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=config.ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    tree = stagecpu.clone(old, tmp_path / "tree")
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True).stdout.strip() == old
    assert train.git_commit(tree) == old  # what the tree's runs record in train.json
    metrics = tree / "results" / "metrics.json"
    committed = metrics.read_bytes()
    metrics.write_text("{}")  # what a probed evaluate leaves
    (tree / "README.md").write_text("changed")
    stagecpu.restore(tree, "results")
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
    committed = json.loads((config.ROOT / "results" / "lstm" / "train.json").read_text())
    settings = committed["settings"]
    specs = {"lstm": [settings["epochs"], settings["patience"]]}
    assert stagecpu.full_epochs(config.ROOT, "lstm", specs) == committed["epochs_run"]
    assert stagecpu.full_epochs(config.ROOT, "lstm", {"lstm": [3, settings["patience"]]}) == 3  # capped


def _probed_tree(tmp_path: Path, val_losses: list[float]) -> Path:
    """A tree whose committed history of ``head`` has these validation losses."""
    (tmp_path / "results" / "head").mkdir(parents=True)
    (tmp_path / "results" / "head" / "history.csv").write_text(
        "epoch,val_loss\n" + "".join(f"{epoch},{loss}\n" for epoch, loss in enumerate(val_losses)))
    return tmp_path


def test_a_training_is_estimated_from_one_probe_run_and_its_own_epoch_times(tmp_path, monkeypatch):
    """The probe's process CPU plus its median epoch after the first (from the train.json it wrote)
    times the epochs left: no difference of two start-ups, whose noise swamps a cheap head's epoch."""
    tree = _probed_tree(tmp_path, [0.5, 0.4, 0.3, 0.35, 0.36, 0.37])  # best at epoch 3, patience 3: 6 epochs
    ran = []

    def fake_run(command, cwd, log_path, env):
        ran.append(command[-1])
        epochs = int(command[-1])
        (cwd / "results" / "head" / "train.json").write_text(json.dumps(
            {"cpu_seconds_per_epoch_all": [9.0, 1.0, 3.0][:epochs], "seconds_per_epoch_all": [5.0, 0.5, 1.5][:epochs]}))
        return {"seconds": 20.0, "cpu_seconds": 30.0, "peak_rss_mib": 100.0}

    monkeypatch.setattr(stagecpu, "run_measured", fake_run)
    command = [sys.executable, "-m", "filmgenre.cli", "train", "head"]
    row = stagecpu.measure(tree, command, {"head": [50, 3]}, full=False, log_path=tmp_path / "log")
    assert ran == [str(stagecpu.PROBE_EPOCHS)] and row["epochs"] == 6
    assert row["cpu_seconds_per_epoch"] == 2.0 and row["cpu_seconds"] == 30.0 + 2.0 * (6 - stagecpu.PROBE_EPOCHS)
    assert row["wall_seconds"] == 20.0 + 1.0 * (6 - stagecpu.PROBE_EPOCHS) and row["how"].startswith("estimated")
    row = stagecpu.measure(tree, command, {"head": [2, 3]}, full=False, log_path=tmp_path / "log")
    assert ran[-1] == "2" and row["how"] == "measured" and row["cpu_seconds"] == 30.0  # the probe was the whole run


def test_a_probe_that_wrote_no_train_json_of_its_own_is_an_error(tmp_path):
    """The exported tree holds the committed full run's train.json: read as the probe's, it would
    give the wrong epochs."""
    tree = _probed_tree(tmp_path, [0.5])
    (tree / "results" / "head" / "train.json").write_text(json.dumps(
        {"cpu_seconds_per_epoch_all": [1.0] * 40, "seconds_per_epoch_all": [1.0] * 40}))
    with pytest.raises(RuntimeError, match="wrote no train.json of its own"):
        stagecpu.steady_epoch(tree / "results" / "head" / "train.json", 3)


def test_the_estimate_replayed_on_a_full_run_takes_its_first_epochs_and_their_steady_epoch():
    summary = {"cpu_seconds_total": 100.0, "cpu_seconds_per_epoch_all": [20.0, 4.0, 6.0, 10.0, 10.0, 10.0]}
    # up to 3 epochs: 100 - 30 = 70; steady epoch of [20, 4, 6]: 5; 3 epochs left
    assert stagecpu.replayed_estimate(summary) == 70.0 + 5.0 * 3
    short = {"cpu_seconds_total": 30.0, "cpu_seconds_per_epoch_all": [20.0, 4.0]}
    assert stagecpu.replayed_estimate(short) == 30.0  # a run no longer than the probe is its own estimate
