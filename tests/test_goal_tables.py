"""Issue 21's goals: met on the mean of the seeds (each objective under its own rule), and on the stage bench."""

import json

import pytest

from filmgenre import goal_tables


def scores(micro: float, macro: float) -> dict:
    return {"test": {"f1_micro": micro}, "test_macro_rule": {"f1_macro": macro}}


def write_results(project, runs: dict, bench: dict, late_fusion: list | None = None) -> None:
    """``runs``: per model, its (micro, macro) scores, the reported run's first (metrics.json), then its other seeds'."""
    (project / "results").mkdir()
    reads = {"cnn": "posters", "effnet_head": "poster_features", "lstm": "overviews", "minilm_head": "overview_features",
             "gmu": "poster_features+overview_features"}
    models = {name.removesuffix("+class_weight"): scores(*found[0]) | {"reads": reads[name.removesuffix("+class_weight")]}
              for name, found in runs.items()}
    seeds = {name.removesuffix("+class_weight"): {"model": name.removesuffix("+class_weight"),
                                                  "class_weight": name.endswith("+class_weight"),
                                                  "runs": [{"seed": seed} | scores(*run) for seed, run in enumerate(found[1:], 1)]}
             for name, found in runs.items()}
    seeds = {"models": seeds}
    if late_fusion:
        models["fusion"] = scores(*late_fusion[0]) | {"reads": "posters+overviews", "fusion": {"poster": "effnet_head", "text": "minilm_head", "weight": 0.4}}
        seeds["late_fusion"] = {"poster": "effnet_head", "text": "minilm_head",
                                "runs": [{"seed": seed, "fusion": scores(*run)} for seed, run in enumerate(late_fusion[1:], 1)]}
    (project / "results" / "metrics.json").write_text(json.dumps({"models": models}))
    (project / "results" / "seeds.json").write_text(json.dumps(seeds))
    (project / "results" / "bench.json").write_text(json.dumps(bench))


def test_a_goal_is_met_by_the_mean_over_all_runs_micro_under_the_micro_rule_and_macro_under_the_macro_rule(project):
    write_results(project, {
        "minilm_head": [(0.66, 0.52), (0.62, 0.50), (0.63, 0.51)],  # mean micro 0.637: missed; macro 0.51: met
        "gmu": [(0.66, 0.56), (0.67, 0.55)],
        "effnet_head": [(0.57, 0.30), (0.56, 0.31)],
        "lstm+class_weight": [(0.9, 0.9), (0.9, 0.9)],  # a variant: left out
        "cnn": [(0.9, 0.9)],  # no other seed: no seed mean
    }, {})
    table = goal_tables.score_goals().set_index("model")
    assert table.index.tolist() == ["effnet_head", "minilm_head", "gmu"]  # in the goals' order of inputs
    assert not table.loc["minilm_head", "micro met"] and table.loc["minilm_head", "macro met"]
    assert table.loc["gmu", "micro met"] and table.loc["gmu", "macro met"]
    assert table.loc["effnet_head", "micro met"] and not table.loc["effnet_head", "macro met"]
    assert table.loc["minilm_head", "micro-F1"] == "0.637 ± 0.021" and table.loc["minilm_head", "runs"] == 3
    assert goal_tables.cost_goals().empty  # no stage bench yet
    best = goal_tables.best_means()  # the best mean of each kind of input, micro and macro apart
    assert list(best) == ["posters", "overviews", "posters+overviews"] and best["posters"]["goals"] == (0.56, 0.34)
    assert best["posters"]["means"] == pytest.approx((0.565, 0.305))
    assert best["overviews"]["means"] == pytest.approx((0.63667, 0.51), abs=1e-4)


def test_the_late_fusion_rebuilt_per_seed_is_judged_on_the_mean_of_its_runs(project):
    write_results(project, {"gmu": [(0.64, 0.46), (0.64, 0.46)], "effnet_head": [(0.5, 0.3)], "minilm_head": [(0.6, 0.5)]},
                  {}, late_fusion=[(0.65, 0.55), (0.66, 0.56), (0.67, 0.51)])
    table = goal_tables.score_goals().set_index("model")
    assert table.index.tolist() == ["fusion", "gmu"] and table.loc["fusion", "runs"] == 3
    assert table.loc["fusion", "micro-F1"] == "0.660 ± 0.010" and table.loc["fusion", "micro met"]  # mean 0.66
    assert not table.loc["fusion", "macro met"]  # mean 0.54 < 0.55


def _write_stage_bench(project, totals: dict, new_how: dict, complete: bool = True) -> None:
    """A ``stages`` section: f7e8774 (its spec CNN ran in full) against fae45c5, whose stages ran as ``new_how`` says."""
    rows = {commit: [{"stage": stage, "how": how, "cpu_seconds": 1.0} for stage, how in stages.items()]
            for commit, stages in (("f7e8774", {"train cnn": "measured"}), ("HEAD", new_how))}
    write_results(project, {}, {"stages": {"old": "f7e8774", "new": "HEAD", "totals": totals, "complete": complete,
                                           "commits": {"f7e8774": "f7e8774abc", "HEAD": "fae45c5def"}, "rows": rows}})


def test_cost_goals_weigh_each_added_stage_against_the_spec_cnn_and_make_all_against_the_old_commit(project):
    totals = {"old_cpu_seconds": 1000.0, "new_cpu_seconds_all_stages": 1300.0, "ratio_all_stages_new_to_old": 1.3,
              "added_stages": {"train gmu": 100.0, "train big": 600.0},
              "added_stages_to_spec_cnn_training": {"train gmu": 0.2, "train big": 1.2}}
    _write_stage_bench(project, totals, {"train cnn": "measured", "train gmu": "measured", "train big": "measured"})
    table = goal_tables.cost_goals().set_index("goal")
    assert table["met"].tolist() == [True, False, False]
    assert table["how"].tolist() == ["measured"] * 3
    assert table.loc["train big <= 1 x train cnn", "CPU s"] == 600.0
    assert table.loc["make all at fae45c5 <= 1.25 x at f7e8774", "ratio"] == 1.3


def test_a_cost_goal_on_estimated_trainings_is_not_called_met(project):
    """A training estimated from its first epochs is not measured: a goal resting on
    one (the added stage's own, the spec CNN's, or any stage of either commit for make all) is not judged."""
    totals = {"old_cpu_seconds": 1000.0, "new_cpu_seconds_all_stages": 900.0, "ratio_all_stages_new_to_old": 0.9,
              "added_stages": {"train gmu": 10.0, "train mlp": 20.0},
              "added_stages_to_spec_cnn_training": {"train gmu": 0.02, "train mlp": 0.04}}
    new_rows = {"train cnn": "measured", "train gmu": "measured", "train mlp": "estimated: runs of 1 and 2 epochs"}
    _write_stage_bench(project, totals, new_rows)
    table = goal_tables.cost_goals().set_index("goal")
    assert table["how"].tolist() == ["measured", "estimated", "estimated"]
    assert table["met"].tolist() == [True, "not shown (estimated)", "not shown (estimated)"]


def test_the_make_all_goal_of_a_stage_bench_still_running_is_not_judged(project):
    """The bench writes its section after every stage: until it is complete its totals leave stages out."""
    totals = {"old_cpu_seconds": 1000.0, "new_cpu_seconds_all_stages": 500.0, "ratio_all_stages_new_to_old": 0.5,
              "added_stages": {}, "added_stages_to_spec_cnn_training": {}}
    _write_stage_bench(project, totals, {"train cnn": "measured"}, complete=False)
    table = goal_tables.cost_goals()
    assert table["how"].tolist() == ["incomplete run"] and table["met"].tolist() == ["not shown (incomplete run)"]
