"""Issue 21's goals, checked on seed means (``results/seeds.json``) and on the stage bench
(``results/bench.json`` ``stages``).

One seed can flatter a model (``minilm_head``: 0.629 test micro-F1 committed, 0.616 ± 0.010 over
three other seeds), so a score goal is met when the mean over all its runs (the reported one and
its other seeds) is: micro-F1 under the rule chosen for validation micro-F1, macro-F1 under the
rule chosen for validation macro-F1. Every model
retrained with seeds is listed under its input, so a goal that all of them miss reads as missed.
The cost goals compare the old commit's ``make all`` (before the learned fusions) with the new one,
measured side by side by `filmgenre bench --stages`. Like ``tables``, nothing here needs the dataset.
"""

import numpy as np
import pandas as pd

from filmgenre import config, seed_tables, tables

SCORE_GOALS = {"posters": (0.56, 0.34), "overviews": (0.64, 0.50), "posters+overviews": (0.66, 0.55)}
ADDED_STAGE_TO_SPEC_CNN = 1.0  # each stage the issue adds costs at most the spec CNN's training
MAKE_ALL_RATIO = 1.25  # and make all as a whole at most 1.25 x the old commit's


def _mean_sd(scores: list[float]) -> str:
    return f"{np.mean(scores):.3f} ± {np.std(scores, ddof=1):.3f}"


def _candidates() -> list[tuple[str, str, list[float], list[float]]]:
    """(input, model, test micro-F1 of each run, macro-F1 under the macro rule of each run) of every
    model with other seeds (class-weighted variants left out) and of the late fusion rebuilt per seed."""
    names = [name for name, entry in seed_tables.seeds()["models"].items() if not entry.get("class_weight")]
    found = []
    models = tables.metrics()["models"]
    for name in [*names, "fusion"]:
        reads = models.get(name, {}).get("reads")
        reads = config.MODALITY.get(reads, reads)  # an input kind to what it is a view of; the late fusion's is that
        micro = seed_tables.seed_scores(name)
        if reads in SCORE_GOALS and micro:
            found.append((reads, name, micro, seed_tables.seed_scores(name, "f1_macro", "test_macro_rule")))
    return found


def score_goals() -> pd.DataFrame:
    """Each model with seed runs, and the late fusion rebuilt per seed, against its input's two goals,
    on the mean over all its runs (the reported one is a seed too)."""
    rows = []
    for reads, name, micro, macro in _candidates():
        micro_goal, macro_goal = SCORE_GOALS[reads]
        rows.append({"input": reads, "model": name, "runs": len(micro),
                     "micro-F1": _mean_sd(micro), "goal micro": micro_goal, "micro met": np.mean(micro) >= micro_goal,
                     "macro-F1, macro rule": _mean_sd(macro), "goal macro": macro_goal,
                     "macro met": np.mean(macro) >= macro_goal})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = {reads: place for place, reads in enumerate(SCORE_GOALS)}
    return frame.sort_values(["input", "model"], key=lambda column: column.map(order) if column.name == "input"
                             else column).reset_index(drop=True)


def best_means() -> dict:
    """Per input: its two goals and the best mean over seeds that any of its models reaches on each
    (not necessarily the same model): ``{"posters": {"goals": (0.56, 0.34), "means": (0.547, 0.324)}}``."""
    best = {}
    for reads, _, micro, macro in _candidates():
        found = best.setdefault(reads, {"goals": SCORE_GOALS[reads], "means": (0.0, 0.0)})
        found["means"] = (max(found["means"][0], float(np.mean(micro))), max(found["means"][1], float(np.mean(macro))))
    return {reads: best[reads] for reads in SCORE_GOALS if reads in best}


def cost_goals() -> pd.DataFrame:
    """Each stage new's ``make all`` has and old's has not, against new's spec CNN training, then
    new's ``make all`` as a whole against old's (CPU seconds; none before `bench --stages` ran).

    A goal is judged only on stages that ran in full (``bench --stages --full``): an estimated training
    is a measurement of its first epochs, so ``met`` says "not shown" instead."""
    stages = tables.bench().get("stages")
    totals = stages["totals"] if stages else {}
    if "ratio_all_stages_new_to_old" not in totals:
        return pd.DataFrame()
    old, new = (stages["commits"][name][:7] for name in (stages["old"], stages["new"]))
    ran_in_full = {name: {row["stage"]: row["how"] == "measured" for row in rows}
                   for name, rows in stages.get("rows", {}).items()}
    new_in_full = ran_in_full.get(stages["new"], {})
    complete = stages.get("complete", True)  # the bench writes its section after every stage

    def row(goal: str, cpu_seconds, ratio: float, limit: float, how: str) -> dict:
        return {"goal": goal, "CPU s": cpu_seconds, "ratio": ratio, "how": how,
                "met": ratio <= limit if how == "measured" else f"not shown ({how})"}

    rows = [row(f"{stage} <= {ADDED_STAGE_TO_SPEC_CNN:g} x {config.SPEC_TRAINING_STAGE}", totals["added_stages"][stage],
                ratio, ADDED_STAGE_TO_SPEC_CNN,
                "measured" if new_in_full.get(stage) and new_in_full.get(config.SPEC_TRAINING_STAGE) else "estimated")
            for stage, ratio in totals["added_stages_to_spec_cnn_training"].items()]
    in_full = bool(ran_in_full) and all(all(stages_of.values()) for stages_of in ran_in_full.values())
    rows.append(row(f"make all at {new} <= {MAKE_ALL_RATIO:g} x at {old}",
                    f"{totals['new_cpu_seconds_all_stages']:,.0f} / {totals['old_cpu_seconds']:,.0f}",
                    totals["ratio_all_stages_new_to_old"], MAKE_ALL_RATIO,
                    "incomplete run" if not complete else "measured" if in_full else "estimated"))
    return pd.DataFrame(rows)
