"""`filmgenre diff`: what a rerun changed in the scores, and which changes are beyond noise.

Retrained on another machine, a model scores a little differently (floating point differs
across CPUs). For every model, each test and validation score of the working tree's
``results/metrics.json`` is set beside the same score committed at a revision (``HEAD`` by
default), with two yardsticks of noise:

- the **paired bootstrap** of the difference: both sides' predictions (their
  ``predictions.csv``, each under its own decision rules) rescored on the same resampled
  films, with the project's bootstrap (``uncertainty.bootstrap``: same resamples, seed and
  level as the intervals in ``metrics.json``). The change is within noise when the
  interval of the difference contains 0. ``metrics.json`` keeps only each side's own
  interval, not its resampled scores, and two runs of one model err on the same films, so
  the paired interval cannot be derived from what is stored: it is recomputed, which needs
  the films' genres (``data/processed/films.csv``, written by ``filmgenre prepare``).
  Without them (a fresh clone), the test scores fall back to an **approximation** named as
  such in the output: the two stored intervals' half-widths combined as if the sides were
  independent, wider than the paired interval, so it calls fewer changes real; validation
  scores then get no interval.
- the **seed spread** (where ``results/seeds.json`` retrained the model with several
  seeds): the change is within it when it is no larger than the range of the seeds' scores.

It reports and does not judge: the exit status is 0 whatever moved.
"""

import dataclasses
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from filmgenre import FilmgenreError, config, evaluate, uncertainty

SPLITS = ("val", "test")
# (score, rule, section suffix, metric): micro- and macro-F1 under the rule chosen for each, and
# macro-AP, which needs no rule.
SCORES = (
    ("micro-F1", "micro rule", "", "f1_micro"),
    ("macro-F1", "micro rule", "", "f1_macro"),
    ("micro-F1", "macro rule", "_macro_rule", "f1_micro"),
    ("macro-F1", "macro rule", "_macro_rule", "f1_macro"),
    ("macro-AP", "", "", "average_precision_macro"),
)
RULES = {"": "rule", "_macro_rule": "macro_rule"}  # section suffix -> the entry's decision rule
# Each score's name in ``uncertainty.bootstrap`` (and in the intervals of metrics.json): its macro
# scores average a fixed set of genres, here the default, those with a positive film, as the
# scores of metrics.json do (its stored intervals are over the genres with 10 test films or more).
RESAMPLED = {"f1_micro": "f1_micro", "f1_macro": "f1_macro_fixed",
             "average_precision_macro": "average_precision_macro_fixed"}
METRICS_FILE = "results/metrics.json"
SEEDS_FILE = "results/seeds.json"
FILMS_FILE = "data/processed/films.csv"
PAIRED = "paired bootstrap"
APPROXIMATE = "approximate: the two stored intervals combined as if independent"
NO_INTERVAL = "no interval: the films' genres are not prepared, or the two sides' films differ"


class DiffError(FilmgenreError):
    """Bad input to `filmgenre diff`: an unknown revision or no results to compare."""


@dataclasses.dataclass(frozen=True)
class Results:
    """One side of the comparison: a name for it and a reader of its files by project path."""

    label: str
    read: Callable[[str], bytes | None]  # None when the file is not there


def working_tree(root: Path | None = None) -> Results:
    root = config.paths().root if root is None else root

    def read(path: str) -> bytes | None:
        return (root / path).read_bytes() if (root / path).is_file() else None

    return Results("working tree", read)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True)
    except FileNotFoundError:
        raise DiffError("git not found: `filmgenre diff` compares with committed results and needs git") from None


def revision(rev: str, root: Path | None = None) -> Results:
    """The results committed at ``rev`` (checked to name a commit), read with ``git show``."""
    root = config.paths().root if root is None else root
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        inside = _git(root, "rev-parse", "--is-inside-work-tree").returncode == 0
        raise DiffError(f"unknown revision {rev!r} in {root}: give a commit, branch or tag (e.g. HEAD, HEAD~1)"
                        if inside else f"{root} is not a git repository: `filmgenre diff` compares with committed "
                        "results, so run it in a clone of the project")
    commit = found.stdout.decode().strip()

    def read(path: str) -> bytes | None:
        shown = _git(root, "show", f"{commit}:./{path}")
        return shown.stdout if shown.returncode == 0 else None

    return Results(rev if commit.startswith(rev) else f"{rev} ({commit[:7]})", read)


def _json(side: Results, path: str) -> dict | None:
    text = side.read(path)
    return None if text is None else json.loads(text)


def _predictions(side: Results, name: str) -> tuple[bytes, pd.DataFrame] | None:
    text = side.read(f"results/{name}/predictions.csv")
    if text is None:
        return None
    return text, pd.read_csv(io.BytesIO(text), dtype={"Id": str, "split": str})


def film_labels(root: Path | None = None) -> pd.DataFrame | None:
    """Every prepared film's 0/1 genres, indexed by Id; None where the data is not prepared."""
    path = (config.paths().root if root is None else root) / FILMS_FILE
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"Id": str}, usecols=["Id", *config.GENRES]).set_index("Id")


def _paired(entries: tuple[dict, dict], tables: tuple[pd.DataFrame, pd.DataFrame],
            labels: pd.DataFrame, split: str) -> dict | None:
    """Paired bootstrap of ``this - against`` for every score of one split, or None when the two
    sides' films differ or a film's genres are unknown (then nothing is paired)."""
    probabilities = []
    ids = None
    for table in tables:
        rows = table[table["split"] == split]
        if ids is None:
            ids = rows["Id"].tolist()
        elif rows["Id"].tolist() != ids:
            return None
        probabilities.append(rows[config.GENRES].to_numpy(dtype=np.float64))
    if not ids or not set(ids) <= set(labels.index):
        return None
    rules = {suffix: rule for suffix, rule in RULES.items() if all(rule in entry for entry in entries)}
    if not rules:
        return None
    models = {side: {"probabilities": p, "predicted": {
        split + suffix: evaluate.apply_rule(p, entry[rule]) for suffix, rule in rules.items()}}
        for side, p, entry in zip(("this", "against"), probabilities, entries)}
    resampled, _ = uncertainty.bootstrap(labels.loc[ids].to_numpy(dtype=np.int8), models)
    return {(split + suffix, metric): uncertainty.interval(resampled["this"][split + suffix][RESAMPLED[metric]]
                                                         - resampled["against"][split + suffix][RESAMPLED[metric]])
            for _, _, suffix, metric in SCORES if suffix in rules}


def _approximate(entries: tuple[dict, dict], section: str, metric: str) -> list[float] | None:
    """The stored intervals' half-widths combined in quadrature around the difference (test only).

    Two runs of one model err on the same films, so their scores move together over resamples
    and the paired interval is narrower: this one is conservative.
    """
    stored = [entry.get("intervals", {}).get(section, {}) for entry in entries]
    bounds = [found.get(metric) or found.get(RESAMPLED[metric]) for found in stored]  # older results: plain names
    if None in bounds:
        return None
    half = float(np.hypot(*[(high - low) / 2 for low, high in bounds]))
    change = entries[0][section][metric] - entries[1][section][metric]
    return [round(change - half, uncertainty.DIGITS), round(change + half, uncertainty.DIGITS)]


def seed_range(seeds: dict, name: str, section: str, metric: str) -> float | None:
    """max - min of the model's test or validation score over its seeds (two seeds at least)."""
    entry = seeds.get("models", {}).get(name)
    if not entry or len(entry.get("summary", {}).get("seeds", [])) < 2:
        return None
    scores = entry["summary"].get(section, {}).get(metric)
    return None if scores is None else round(scores["max"] - scores["min"], uncertainty.DIGITS)


def compare_model(name: str, this: Results, against: Results, entries: tuple[dict, dict],
                  labels: pd.DataFrame | None, seeds: dict) -> list[dict]:
    """Every score of one model on both sides, its change and the verdicts."""
    read = [_predictions(side, name) for side in (this, against)]
    same_output = (None not in read and read[0][0] == read[1][0]
                   and all(entries[0].get(rule) == entries[1].get(rule) for rule in RULES.values()))
    paired = {}
    if not same_output and None not in read and labels is not None:
        for split in SPLITS:
            paired |= _paired(entries, (read[0][1], read[1][1]), labels, split) or {}
    rows = []
    for split in SPLITS:
        for score, rule, suffix, metric in SCORES:
            section = split + suffix
            values = [entry.get(section, {}).get(metric) for entry in entries]
            row = {"model": name, "split": split, "score": score, "rule": rule, "section": section, "metric": metric,
                   "against": values[1], "this": values[0], "difference": None, "interval": None,
                   "method": "not scored on both sides", "within_interval": None, "seed_range": None,
                   "within_seeds": None}
            if None not in values:  # else: results written before this score was
                row |= _judged(values[0] - values[1], (
                    ([0.0, 0.0], "identical") if same_output or values[0] == values[1]
                    else (paired[section, metric], PAIRED) if (section, metric) in paired
                    else (_approximate(entries, section, metric), APPROXIMATE)),
                    seed_range(seeds, name, section, metric))
            rows.append(row)
    return rows


def _judged(change: float, interval: tuple[list[float] | None, str], spread: float | None) -> dict:
    bounds, method = interval
    return {"difference": round(change, uncertainty.DIGITS), "interval": bounds,
            "method": method if bounds else NO_INTERVAL,
            "within_interval": None if bounds is None else bool(bounds[0] <= 0 <= bounds[1]),
            "seed_range": spread, "within_seeds": None if spread is None else bool(abs(change) <= spread)}


def compare(this: Results, against: Results, labels: pd.DataFrame | None = None) -> dict:
    """The whole comparison (what ``--json`` prints): both sides, every model's scores, the bootstrap used."""
    metrics = [_json(side, METRICS_FILE) for side in (this, against)]
    for side, found in zip((this, against), metrics):
        if found is None or not found.get("models"):
            raise DiffError(f"{METRICS_FILE}: no results in {side.label}" + (
                ": run `make all` (or `filmgenre evaluate`) first" if side is this
                else ": give a revision with committed results"))
    seeds = _json(this, SEEDS_FILE) or _json(against, SEEDS_FILE) or {}
    models = {}
    names = list(metrics[1]["models"]) + [name for name in metrics[0]["models"] if name not in metrics[1]["models"]]
    for name in names:
        entries = tuple(found["models"].get(name) for found in metrics)
        if None in entries:
            models[name] = {"only_in": this.label if entries[1] is None else against.label, "scores": []}
        else:
            models[name] = {"only_in": None, "scores": compare_model(name, this, against, entries, labels, seeds)}
    return {"this": this.label, "against": against.label,
            "bootstrap": {"resamples": uncertainty.RESAMPLES, "seed": config.SEED, "level": uncertainty.LEVEL},
            "models": models}


def moved(result: dict) -> list[dict]:
    """The scores whose change is outside the interval of the difference."""
    return [row for entry in result["models"].values() for row in entry["scores"] if row["within_interval"] is False]


# --------------------------------------------------------------------------- output
def _number(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _verdicts(row: dict) -> tuple[str, str]:
    if row["method"] == "identical":
        bootstrap = "identical"
    elif row["difference"] is None:
        bootstrap = "not on both sides"
    elif row["within_interval"] is None:
        bootstrap = "no interval"
    else:
        bootstrap = ("within noise" if row["within_interval"] else "BEYOND noise") + (
            "" if row["method"] == PAIRED else " (approx.)")
    seeds = "" if row["within_seeds"] is None else (
        f"within seeds (range {row['seed_range']:.4f})" if row["within_seeds"]
        else f"beyond seeds (range {row['seed_range']:.4f})")
    return bootstrap, seeds


def _rows(result: dict) -> list[list[str]]:
    rows = []
    for name, entry in result["models"].items():
        if entry["only_in"]:
            rows.append([name, "", f"only in {entry['only_in']}", "", "", "", "", "", ""])
        for row in entry["scores"]:
            bounds = row["interval"]
            rows.append([name, row["split"], f"{row['score']} {row['rule']}".strip(), _number(row["against"]),
                         _number(row["this"]), _number(row["difference"], "+.4f"),
                         "" if bounds is None else f"[{bounds[0]:+.4f}, {bounds[1]:+.4f}]", *_verdicts(row)])
    return rows


def _header(result: dict) -> list[str]:
    return ["model", "split", "score", result["against"], result["this"], "change",
            f"{result['bootstrap']['level']:.0%} interval of the change", "bootstrap", "seeds"]


def _about(result: dict) -> str:
    methods = {row["method"] for entry in result["models"].values() for row in entry["scores"]}
    about = (f"{result['this']} against {result['against']}: change = {result['this']} - {result['against']}; "
             f"interval: {PAIRED} of the change ({result['bootstrap']['resamples']} resamples of the same films, "
             f"seed {result['bootstrap']['seed']})")
    if APPROXIMATE in methods:
        about += f"; where marked (approx.), {APPROXIMATE} (run `filmgenre prepare` for the paired one)"
    return about + "."


def format_text(result: dict) -> str:
    header, rows = _header(result), _rows(result)
    widths = [max(len(line[column]) for line in [header, *rows]) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    return "\n".join([_about(result), "", lines[0], "  ".join("-" * width for width in widths), *lines[1:],
                      "", summary(result)])


def format_markdown(result: dict) -> str:
    def line(cells):
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    header = _header(result)
    return "\n".join([_about(result), "", line(header), "|" + "|".join(["---"] * len(header)) + "|",
                      *[line(row) for row in _rows(result)], "", summary(result)])


def format_json(result: dict) -> str:
    return json.dumps(result | {"moved": [f"{row['model']} {row['section']} {row['metric']}" for row in moved(result)]},
                      indent=2)


def summary(result: dict) -> str:
    """A few lines: how many scores moved beyond the bootstrap interval, and which."""
    rows = [row for entry in result["models"].values() for row in entry["scores"]]
    beyond = moved(result)
    identical = sum(row["method"] == "identical" for row in rows)
    within = sum(row["within_interval"] is True for row in rows) - identical
    unjudged = len(rows) - len(beyond) - identical - within
    compared = sum(1 for entry in result["models"].values() if not entry["only_in"])
    lines = [f"diff against {result['against']}: {len(rows)} scores of {compared} models, "
             f"{len(beyond)} moved beyond the {result['bootstrap']['level']:.0%} interval of the change, "
             f"{identical} identical, {within} within it"
             + (f", {unjudged} without an interval or not on both sides" if unjudged else "")
             + ("" if beyond else " (reproduced within noise)")]
    for row in beyond:
        seeds = _verdicts(row)[1]
        lines.append(f"  {row['model']} {row['split']} {row['score']} {row['rule']}".rstrip()
                     + f": {row['against']:.4f} -> {row['this']:.4f} ({row['difference']:+.4f}, interval "
                     f"[{row['interval'][0]:+.4f}, {row['interval'][1]:+.4f}]" + (f"; {seeds}" if seeds else "") + ")")
    for name, entry in result["models"].items():
        if entry["only_in"]:
            lines.append(f"  {name}: only in {entry['only_in']}")
    return "\n".join(lines)


FORMATS = {"text": format_text, "md": format_markdown, "json": format_json, "summary": summary}


def run(rev: str = "HEAD", output: str = "text") -> str:
    """The working tree's results against ``rev``'s, in one of ``FORMATS``."""
    this, against = working_tree(), revision(rev)
    return FORMATS[output](compare(this, against, film_labels()))
