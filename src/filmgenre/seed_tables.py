"""The report's numbers about training noise (``results/seeds.json``, written by ``filmgenre seeds``):
each model retrained with other seeds, and where its reported run ranks among them.

A ranking or a goal that one run meets and the seed mean misses is not a result; these
functions are how the documents say which.
"""

import pandas as pd

from filmgenre import figure_index
from filmgenre.tables import metrics, number, read_result, results_folder

figure_index.record_tables(__file__)


def seed_spread(name: str, metric: str = "f1_micro", section: str = "test") -> str | None:
    """``0.475 ± 0.003``: mean ± standard deviation of ``name`` retrained with other seeds; None if not run."""
    entry = seeds()["models"].get(name)
    if not entry or len(entry["runs"]) < 2:
        return None
    scores = entry["summary"][section][metric]
    return f"{number(scores['mean'])} ± {number(scores['sd'])}"


def seed_rank(name: str, metric: str = "f1_micro", section: str = "test") -> tuple[int, int] | None:
    """Where the reported run of ``name`` ranks (1 = best) among it and its other-seed runs, and how many runs."""
    entry = seeds()["models"].get(name)
    if not entry or "single_run" not in entry:
        return None
    scores = [run[section][metric] for run in entry["runs"]]
    reported = entry["single_run"][section][metric]
    return 1 + sum(score > reported for score in scores), len(scores) + 1


def seeds() -> dict:
    """``results/seeds.json`` (written by ``filmgenre seeds``), or no models when it was never run."""
    path = results_folder() / "seeds.json"
    return read_result("seeds.json") if path.exists() else {"models": {}}


def seed_table() -> pd.DataFrame:
    """Per model retrained with several seeds: mean ± sd of its test scores, beside the committed single run."""
    rows = []
    for name, entry in seeds()["models"].items():
        if entry["class_weight"]:
            continue
        single = entry.get("single_run")
        row = {"model": name, "seeds": ", ".join(str(run["seed"]) for run in entry["runs"])}
        for section, metric, label in (("test", "f1_micro", "micro-F1"), ("test", "f1_macro", "macro-F1"),
                                       ("test_macro_rule", "f1_macro", "macro-F1, macro rule")):
            scores = entry["summary"][section][metric]
            row[f"{label}: seeds"] = f"{scores['mean']:.3f}" + (f" ± {scores['sd']:.3f}" if scores["sd"] else "")
            row[f"{label}: seed {single['seed']}" if single else f"{label}: single run"] = (
                f"{single[section][metric]:.3f}" if single else "")
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
    run = next((r for r in entry["runs"] if r["seed"] == entry.get("single_run", {}).get("seed")), None)
    if run is None:
        return None
    found = {"micro": run["val"]["f1_micro"] - committed["val"]["f1_micro"],
             "macro": run["val"]["f1_macro"] - committed["val"]["f1_macro"],
             "weighted": run["val"], "committed": {k: committed["val"][k] for k in ("f1_micro", "f1_macro")},
             "test_macro": (run["test"]["f1_macro"], committed["test"]["f1_macro"])}
    found["keep"] = found["macro"] > 0 and found["micro"] >= -0.01
    return found


def seed_scores(name: str, metric: str = "f1_micro", section: str = "test") -> list[float] | None:
    """A test score of every run of ``name``: the reported run first, then its other seeds; None without other seeds."""
    entry = seeds()["models"].get(name)
    if not entry or entry.get("class_weight") or not entry.get("runs") or "single_run" not in entry:
        return None
    return [entry["single_run"][section][metric], *(run[section][metric] for run in entry["runs"])]


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
    """The late fusion's gain over its text member alone, per seed of ``results/seeds.json`` ``late_fusion``
    (each seed's weight and rules chosen on validation): mean, sample SD, range and the weights; None if not run."""
    found = seeds().get("late_fusion")
    if not found or not found.get("runs"):
        return None
    gains = pd.Series([run["gain"][section][metric] for run in found["runs"]])
    return {"poster": found["poster"], "text": found["text"], "seeds": [run["seed"] for run in found["runs"]],
            "mean": float(gains.mean()), "sd": float(gains.std(ddof=1)) if len(gains) > 1 else None,
            "min": float(gains.min()), "max": float(gains.max()),
            "weights": [run["weight"] for run in found["runs"]],
            "fusion": [run["fusion"][section][metric] for run in found["runs"]]}
