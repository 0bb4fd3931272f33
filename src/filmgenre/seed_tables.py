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
