"""The report's numbers about training noise (``results/seeds.json``, written by ``filmgenre seeds``):
each model retrained with other seeds, where its reported run ranks among them, the gap between two
models over all their runs, and the late fusion's gain rebuilt per seed.

A ranking or a goal that one run meets and the seed mean misses is not a result; these
functions are how the documents say which.
"""

import numpy as np
import pandas as pd

from filmgenre import config, figure_index
from filmgenre.tables import metrics, number, read_result, results_folder

figure_index.record_tables(__file__)


def seed_spread(name: str, metric: str = "f1_micro", section: str = "test") -> str | None:
    """``0.475 ± 0.003``: mean ± sample SD of ``name``'s runs (the reported one and its other seeds); None if not run."""
    scores = seed_scores(name, metric, section)
    if not scores:
        return None
    return f"{number(float(np.mean(scores)))} ± {number(float(np.std(scores, ddof=1)))}"


def seed_rank(name: str, metric: str = "f1_micro", section: str = "test") -> tuple[int, int] | None:
    """Where the reported run of ``name`` ranks (1 = best) among its runs, and how many runs; None without other seeds."""
    scores = seed_scores(name, metric, section)
    if not scores:
        return None
    return 1 + sum(score > scores[0] for score in scores[1:]), len(scores)


def seeds() -> dict:
    """``results/seeds.json`` (written by ``filmgenre seeds``), or no models when it was never run."""
    path = results_folder() / "seeds.json"
    return read_result("seeds.json") if path.exists() else {"models": {}}


def seed_table() -> pd.DataFrame:
    """Per model retrained with other seeds: mean ± SD of its test scores over all its runs, beside
    its reported run's (``metrics.json``: the run every other table shows, never a copy of it)."""
    rows = []
    for name, entry in seeds()["models"].items():
        if entry["class_weight"] or not seed_scores(name):
            continue
        row = {"model": name, "runs": len(seed_scores(name))}
        for section, metric, label in (("test", "f1_micro", "micro-F1"), ("test", "f1_macro", "macro-F1"),
                                       ("test_macro_rule", "f1_macro", "macro-F1, macro rule")):
            scores = seed_scores(name, metric, section)
            row[f"{label}: all runs"] = seed_spread(name, metric, section)
            row[f"{label}: reported run"] = number(scores[0])
        rows.append(row)
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


def class_weight(name: str) -> dict | None:
    """Validation scores of ``name`` trained with class weights vs the committed run (same seed), or None.

    ``keep`` follows issue 11's criterion: higher validation macro-F1 for at most 0.01 less micro-F1.
    """
    entry = next((e for e in seeds()["models"].values() if e["model"] == name and e["class_weight"]), None)
    committed = metrics()["models"].get(name)
    if not entry or not committed:
        return None
    run = next((r for r in entry["runs"] if r["seed"] == config.SEED), None)  # the reported run's seed
    if run is None:
        return None
    found = {"micro": run["val"]["f1_micro"] - committed["val"]["f1_micro"],
             "macro": run["val"]["f1_macro"] - committed["val"]["f1_macro"],
             "weighted": run["val"], "committed": {k: committed["val"][k] for k in ("f1_micro", "f1_macro")},
             "test_macro": (run["test"]["f1_macro"], committed["test"]["f1_macro"])}
    found["keep"] = found["macro"] > 0 and found["micro"] >= -0.01
    return found


def seed_scores(name: str, metric: str = "f1_micro", section: str = "test") -> list[float] | None:
    """A test score of every run of ``name``: the reported run (``metrics.json``, seed ``config.SEED``)
    first, then its other seeds (``seeds.json``; for the late fusion, ``late_fusion``, rebuilt from
    its members' seeds); None without other seeds.

    The reported run is one of the seeds: a mean over all of them uses every run trained.
    """
    reported = metrics()["models"].get(name)
    if name == "fusion":
        others = [run["fusion"] for run in _late_fusion_runs()]
    else:
        entry = seeds()["models"].get(name) or {}
        others = [] if entry.get("class_weight") else entry.get("runs", [])
    if not others or not reported:
        return None
    return [reported[section][metric], *(run[section][metric] for run in others)]


def _late_fusion_runs() -> list[dict]:
    """``seeds.json`` ``late_fusion``'s runs, if it was rebuilt from the members the reported fusion has."""
    found = seeds().get("late_fusion")
    members = metrics()["models"].get("fusion", {}).get("fusion", {})
    if not found or (found["poster"], found["text"]) != (members.get("poster"), members.get("text")):
        return []
    return found["runs"]


def seed_gap(a: str, b: str, metric: str = "f1_micro", section: str = "test") -> dict | None:
    """``a - b`` over training seeds: the difference of the two models' means over all their runs,
    and its smallest and largest value over every pair of runs (one of ``a``'s against one of ``b``'s).

    A gap the reported runs show can be one lucky seed (``minilm_head``'s reported run is the best of
    its four); the pairs' range says whether any choice of seeds would reverse or erase it. None when
    either model has no other seeds.
    """
    runs_a, runs_b = seed_scores(a, metric, section), seed_scores(b, metric, section)
    if not runs_a or not runs_b:
        return None
    pairs = [x - y for x in runs_a for y in runs_b]
    return {"mean": sum(runs_a) / len(runs_a) - sum(runs_b) / len(runs_b), "min": min(pairs), "max": max(pairs),
            "pairs": len(pairs), "runs": (len(runs_a), len(runs_b))}


def late_fusion_gain(metric: str = "f1_micro", section: str = "test") -> dict | None:
    """The late fusion's gain over its text member alone, in the reported run and per other seed (each
    seed's weight and rules chosen on validation): mean, sample SD, range and weights over all runs;
    None when it was not rebuilt over seeds, or from other members than the reported fusion's."""
    others = _late_fusion_runs()
    if not others:
        return None
    models = metrics()["models"]
    members = models["fusion"]["fusion"]
    gains = [models["fusion"][section][metric] - models[members["text"]][section][metric],
             *(run["gain"][section][metric] for run in others)]
    return {"poster": members["poster"], "text": members["text"], "runs": len(gains),
            "mean": float(np.mean(gains)), "sd": float(np.std(gains, ddof=1)), "min": min(gains), "max": max(gains),
            "weights": [members["weight"], *(run["weight"] for run in others)]}
