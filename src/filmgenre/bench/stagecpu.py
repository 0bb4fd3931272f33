"""`filmgenre bench --stages OLD`: CPU seconds of each `make all` stage, an old commit against this one.

Absolute times differ between machines by several times; the CPU seconds (user + system)
a stage asks for barely depend on the machine's load. So the two commits are compared by
running their stages side by side in one process on one machine, alternating between the
commits, and the ratio new / old is the figure.

Each commit is cloned (``git clone --shared``) into a scratch folder that becomes the project
root of its commands (``FILMGENRE_ROOT``, its own ``src`` first on ``PYTHONPATH``): nothing
of this checkout's data, models or results is touched. Its stages are read from its own
Makefile (``make -n all``), so a stage that another change adds is measured as its own row
without this module knowing it; stages that only one commit has are counted apart.

Training is the bulk of the CPU time. A full run of every model of both commits takes
about an hour of CPU, so by default each model is *probed* instead: trained for
``PROBE_EPOCHS`` epochs, whose process costs what a full run costs up to there (start-up,
data, the first epoch with its tracing) and whose ``train.json`` gives each epoch's own CPU
seconds; the rest of the run is the median epoch after the first times the epochs left, with
the epochs the commit's early stopping would run, replayed on the committed history
(``train.early_stopping``: training is deterministic). An earlier estimator took the
difference of a 1- and a 2-epoch process, which two start-ups' noise swamped for heads whose
epoch costs under a CPU second. ``full=True`` runs every training to its end instead and
measures it.
"""

import datetime
import itertools
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from filmgenre import config, files
from filmgenre.bench.common import load_average, machine, run_measured
from filmgenre.train import early_stopping

PROBE_EPOCHS = 3
SPECS_SCRIPT = ("import json\ntry:\n    from filmgenre.registry import MODELS\n"  # the registry; before it, models
                "except ImportError:\n    from filmgenre.models import MODELS\n"
                "print(json.dumps({n: [s.epochs, s.patience] for n, s in MODELS.items()}))")


def clone(commit: str, folder: Path) -> Path:
    """A clone of this repository checked out at ``commit`` (as committed: no uncommitted change), its
    objects shared, not copied: a tree like a user's fresh clone, whose runs record the commit they ran
    (a bare export has no git, and f7e8774's report stops on a run with no commit)."""
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(config.ROOT), str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "checkout", "-q", "--detach", commit], check=True)
    return folder


def restore(tree: Path, *paths: str) -> None:
    """Put ``paths`` of a cloned tree back as its commit has them."""
    subprocess.run(["git", "-C", str(tree), "checkout", "-q", "HEAD", "--", *paths], check=True)


def stage_commands(tree: Path, data: Path) -> list[list[str]]:
    """The commands `make all DATA=...` of this tree would run, in order, installation left out."""
    listing = subprocess.run(["make", "-n", "all", f"DATA={data}"], cwd=tree, capture_output=True, text=True,
                             check=True).stdout
    commands = []
    for line in listing.splitlines():
        words = shlex.split(line)
        if words and words[0] == ".venv/bin/filmgenre":
            commands.append([sys.executable, "-m", "filmgenre.cli", *words[1:]])
        elif words[:2] == [".venv/bin/python", "-m"] and words[2] != "pip":
            commands.append([sys.executable, *words[1:]])
    return commands


def label(command: list[str]) -> str:
    """``prepare 64``, ``train cnn``, ``evaluate``, ``encode poster_features``: a stage's row name."""
    words = command[3:] if command[1:3] == ["-m", "filmgenre.cli"] else ["python", *command[1:]]
    if words[0] == "prepare":
        return f"prepare {words[words.index('--image-size') + 1]}" if "--image-size" in words else "prepare"
    return " ".join(word for word in words if not word.startswith("--") and "/" not in word)


def environment(tree: Path) -> dict:
    return {**os.environ, "FILMGENRE_ROOT": str(tree), "PYTHONPATH": str(tree / "src"),
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def model_specs(tree: Path) -> dict[str, list[int]]:
    """``{model: [epochs, patience]}`` as the tree's own code defines them."""
    found = subprocess.run([sys.executable, "-c", SPECS_SCRIPT], env=environment(tree), capture_output=True,
                           text=True, check=True).stdout
    return json.loads(found.strip().splitlines()[-1])


def full_epochs(tree: Path, model: str, specs: dict) -> int:
    """Epochs a full run of ``model`` goes, replaying the tree's early stopping on its committed history."""
    epochs, patience = specs[model]
    history = pd.read_csv(tree / "results" / model / "history.csv")
    return early_stopping(history["val_loss"], patience, epochs)[0]


def measure(tree: Path, command: list[str], specs: dict, full: bool, log_path: Path) -> dict:
    """One stage of one tree: measured, or for a probed training, estimated from a short run."""
    run = lambda words: run_measured(words, tree, log_path, environment(tree))  # noqa: E731
    name = label(command)
    if not name.startswith("train ") or full:
        measured = run(command)
        return {"stage": name, "how": "measured", "cpu_seconds": round(measured["cpu_seconds"], 1),
                "wall_seconds": round(measured["seconds"], 1), "peak_rss_mib": measured["peak_rss_mib"]}
    model = name.split()[1]
    epochs = full_epochs(tree, model, specs)
    probe_epochs = min(PROBE_EPOCHS, epochs)
    probe = run([*command, "--epochs", str(probe_epochs)])
    row = {"stage": name, "how": "measured", "cpu_seconds": round(probe["cpu_seconds"], 1),
           "wall_seconds": round(probe["seconds"], 1), "peak_rss_mib": probe["peak_rss_mib"]}
    if probe_epochs == epochs:  # the probe was the full run
        return row
    cpu_per_epoch, wall_per_epoch = steady_epoch(tree / "results" / model / "train.json", probe_epochs)
    left = epochs - probe_epochs
    return {**row, "how": f"estimated: a run of {probe_epochs} epochs + its median later epoch x {left} more",
            "epochs": epochs, "cpu_seconds_probe": row["cpu_seconds"], "cpu_seconds_per_epoch": round(cpu_per_epoch, 2),
            "cpu_seconds": round(probe["cpu_seconds"] + cpu_per_epoch * left, 1),
            "wall_seconds": round(probe["seconds"] + wall_per_epoch * left, 1)}


def steady(epoch_seconds: list[float]) -> float:
    """A steady epoch's seconds: the median of the epochs after the first (which also traces the model)."""
    return float(np.median(epoch_seconds[1:] or epoch_seconds))


def steady_epoch(train_json: Path, epochs: int) -> tuple[float, float]:
    """CPU and wall seconds of a steady epoch of the ``epochs``-epoch run that wrote ``train_json``."""
    summary = files.read_json(train_json, default={})
    cpu, wall = summary.get("cpu_seconds_per_epoch_all", []), summary.get("seconds_per_epoch_all", [])
    if len(cpu) != epochs:  # the committed train.json of the full run, not the probe's
        raise RuntimeError(f"{train_json}: the {epochs}-epoch probe wrote no train.json of its own")
    return steady(cpu), steady(wall)


def replayed_estimate(summary: dict) -> float:
    """The probe's estimate of a full run's training CPU seconds, replayed on that run's ``train.json``:
    the run's CPU seconds up to ``PROBE_EPOCHS`` (its total less its later epochs) + the steady epoch of
    those first epochs x the epochs left. Against ``cpu_seconds_total`` it measures the estimator's error
    without another run (start-up is in neither)."""
    epochs = summary["cpu_seconds_per_epoch_all"]
    probe_cpu = summary["cpu_seconds_total"] - sum(epochs[PROBE_EPOCHS:])
    return probe_cpu + steady(epochs[:PROBE_EPOCHS]) * max(0, len(epochs) - PROBE_EPOCHS)


def totals(rows: dict[str, list[dict]], old: str, new: str) -> dict:
    """CPU seconds of the stages both commits know (a stage new has no counterpart in old, or
    the reverse, is counted apart), and the ratio new / old of what ``make all`` asks today;
    then the whole of new's ``make all`` against old's, and each added stage against new's
    training of the spec CNN (issue 21's cost goals: <= 1.25 and <= 1)."""
    old_stages = {row["stage"] for row in rows[old]}
    shared_new = [row for row in rows[new] if row["stage"] in old_stages]
    added = [row for row in rows[new] if row["stage"] not in old_stages]
    old_cpu = sum(row["cpu_seconds"] for row in rows[old])
    new_cpu = sum(row["cpu_seconds"] for row in shared_new)
    all_new_cpu = sum(row["cpu_seconds"] for row in rows[new])
    spec_cnn = next((row["cpu_seconds"] for row in rows[new] if row["stage"] == config.SPEC_TRAINING_STAGE), None)
    return {"old_cpu_seconds": round(old_cpu, 1), "new_cpu_seconds": round(new_cpu, 1),
            "ratio_new_to_old": round(new_cpu / old_cpu, 3) if old_cpu else None,
            "new_cpu_seconds_all_stages": round(all_new_cpu, 1),
            "ratio_all_stages_new_to_old": round(all_new_cpu / old_cpu, 3) if old_cpu else None,
            "added_stages_to_spec_cnn_training": {row["stage"]: round(row["cpu_seconds"] / spec_cnn, 3)
                                                  for row in added} if spec_cnn else None,
            "old_wall_seconds": round(sum(row["wall_seconds"] for row in rows[old]), 1),
            "new_wall_seconds": round(sum(row["wall_seconds"] for row in shared_new), 1),
            "removed_stages": sorted(old_stages - {row["stage"] for row in rows[new]}),
            "added_stages": {row["stage"]: row["cpu_seconds"] for row in added}}


def bench_stages(old: str, data: Path | str, new: str = "HEAD", full: bool = False, log=print) -> dict:
    """Measure every `make all` stage of commits ``old`` and ``new``; write the ``stages`` section."""
    data = Path(data).resolve()
    commits = {name: subprocess.run(["git", "rev-parse", name], cwd=config.ROOT, capture_output=True, text=True,
                                    check=True).stdout.strip() for name in (old, new)}
    log_path = config.paths().logs / "bench-stages.log"
    log_path.unlink(missing_ok=True)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="filmgenre-stages-") as folder:
        trees = {name: clone(commit, Path(folder) / name) for name, commit in commits.items()}
        plans = {name: stage_commands(tree, data) for name, tree in trees.items()}
        specs = {name: model_specs(tree) for name, tree in trees.items()}
        rows = {name: [] for name in trees}
        log(f"bench stages: {', '.join(f'{n} {c[:10]}: ' + ', '.join(map(label, plans[n])) for n, c in commits.items())}")
        for pair in itertools.zip_longest(*(plans[name] for name in trees)):  # alternated, stage by stage
            for name, command in zip(trees, pair):
                if command is not None and label(command) == "report" and not full:
                    # probed trainings leave models trained for three epochs, whose fusion may take members
                    # without seed runs (an old report stops there): the documents read only results/, so
                    # they render the commit's committed results, at the same cost
                    restore(trees[name], "results")
                if command is not None:
                    rows[name].append(measure(trees[name], command, specs[name], full, log_path))
                    log(f"  {name} {rows[name][-1]['stage']}: {rows[name][-1]['cpu_seconds']:,.0f} CPU s, "
                        f"{rows[name][-1]['wall_seconds']:,.0f} s wall ({rows[name][-1]['how']})")
            write_section(old, new, data, full, commits, rows, load_before, complete=False)  # kept if interrupted
    return write_section(old, new, data, full, commits, rows, load_before, complete=True, log=log)


def write_section(old: str, new: str, data: Path, full: bool, commits: dict, rows: dict, load_before,
                  complete: bool, log=None) -> dict:
    """The ``stages`` section of ``results/bench.json`` (also written, incomplete, after each stage)."""
    section = {
        "command": f"filmgenre bench --stages {old} --data {data}" + (" --full" if full else ""),
        "note": "CPU seconds (user + system of each stage's process tree) and wall seconds of every stage "
                "`make all` runs, for two commits side by side on one machine, alternating stage by stage, "
                "each in a scratch clone of its commit (install excluded). "
                + ("Every stage ran in full." if full else
                   f"Training stages are estimated from a run of {PROBE_EPOCHS} epochs (its CPU seconds + "
                   "its median epoch after the first, from its train.json, x the epochs left of those its "
                   "early stopping runs on the committed history); the other stages ran in full."),
        "commits": {name: commits[name] for name in (old, new)},
        "old": old, "new": new,
        "complete": complete,
        "rows": rows,
        "totals": totals(rows, old, new),
        **machine(),
        "load_average_1min": {"before": load_before, "after": load_average()},
        "measured_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    files.merge_json(config.paths().bench, "stages", section)
    if log:
        log(f"new / old CPU seconds of make all: {section['totals']['ratio_new_to_old']} on the stages both "
            f"have, {section['totals']['ratio_all_stages_new_to_old']} with the added ones; wrote stages to "
            f"{config.paths().bench}")
    return section
