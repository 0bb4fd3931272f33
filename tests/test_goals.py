"""Issue 21's goals: met on the mean of the seeds (each objective under its own rule), and on the stage bench."""

import json

from filmgenre import goals


def seed_entry(model: str, micro: list[float], macro: list[float], class_weight: bool = False) -> dict:
    summary = lambda values: {"mean": sum(values) / len(values), "sd": 0.01}  # noqa: E731
    return {"model": model, "class_weight": class_weight, "runs": [{"seed": seed} for seed in range(len(micro))],
            "summary": {"test": {"f1_micro": summary(micro), "f1_macro": summary([0.0])},
                        "test_macro_rule": {"f1_micro": summary([0.0]), "f1_macro": summary(macro)}}}


def write_results(project, seeds: dict, bench: dict) -> None:
    (project / "results").mkdir()
    (project / "results" / "seeds.json").write_text(json.dumps({"models": seeds}))
    (project / "results" / "bench.json").write_text(json.dumps(bench))


def test_a_goal_is_met_by_the_seed_mean_micro_under_the_micro_rule_and_macro_under_the_macro_rule(project):
    write_results(project, {
        "minilm_head": seed_entry("minilm_head", [0.66, 0.62, 0.63], [0.52, 0.50, 0.51]),  # mean micro 0.637
        "gmu": seed_entry("gmu", [0.66, 0.67], [0.56, 0.55]),
        "effnet_head": seed_entry("effnet_head", [0.57, 0.56], [0.30, 0.31]),
        "lstm+class_weight": seed_entry("lstm", [0.9, 0.9], [0.9, 0.9], class_weight=True),  # a variant: left out
        "cnn": seed_entry("cnn", [0.9], [0.9]),  # one run is no seed mean
    }, {})
    table = goals.score_goals().set_index("model")
    assert table.index.tolist() == ["effnet_head", "minilm_head", "gmu"]  # in the goals' order of inputs
    assert not table.loc["minilm_head", "micro met"] and table.loc["minilm_head", "macro met"]
    assert table.loc["gmu", "micro met"] and table.loc["gmu", "macro met"]
    assert table.loc["effnet_head", "micro met"] and not table.loc["effnet_head", "macro met"]
    assert table.loc["minilm_head", "micro-F1"] == "0.637 ± 0.010"
    assert goals.cost_goals().empty  # no stage bench yet


def test_the_late_fusion_rebuilt_per_seed_is_judged_on_its_seed_mean(project):
    late = [{"seed": seed, "fusion": {"test": {"f1_micro": micro}, "test_macro_rule": {"f1_macro": macro}}}
            for seed, micro, macro in ((1, 0.65, 0.55), (2, 0.66, 0.56), (3, 0.67, 0.51))]
    write_results(project, {"gmu": seed_entry("gmu", [0.64, 0.64], [0.46, 0.46])}, {})
    (project / "results" / "seeds.json").write_text(json.dumps(
        {"models": json.loads((project / "results" / "seeds.json").read_text())["models"],
         "late_fusion": {"poster": "effnet_head", "text": "minilm_head", "runs": late}}))
    table = goals.score_goals().set_index("model")
    assert table.index.tolist() == ["fusion", "gmu"] and table.loc["fusion", "seeds"] == 3
    assert table.loc["fusion", "micro-F1"] == "0.660 ± 0.010" and table.loc["fusion", "micro met"]  # mean 0.66
    assert not table.loc["fusion", "macro met"]  # mean 0.54 < 0.55


def test_cost_goals_weigh_each_added_stage_against_the_spec_cnn_and_make_all_against_the_old_commit(project):
    totals = {"old_cpu_seconds": 1000.0, "new_cpu_seconds_all_stages": 1300.0, "ratio_all_stages_new_to_old": 1.3,
              "added_stages": {"train gmu": 100.0, "train big": 600.0},
              "added_stages_to_spec_cnn_training": {"train gmu": 0.2, "train big": 1.2}}
    write_results(project, {}, {"stages": {"old": "f7e8774", "new": "HEAD", "totals": totals,
                                           "commits": {"f7e8774": "f7e8774abc", "HEAD": "fae45c5def"}}})
    table = goals.cost_goals().set_index("goal")
    assert table["met"].tolist() == [True, False, False]
    assert table.loc["train big <= 1 x train cnn", "CPU s"] == 600.0
    assert table.loc["make all at fae45c5 <= 1.25 x at f7e8774", "ratio"] == 1.3
