"""The report's seed-level numbers, on hand-made ``seeds.json`` and ``metrics.json`` contents with known answers."""

import pytest

from filmgenre import seed_tables


def _other_seeds(scores: list[float]) -> dict:
    return {"model": "m", "class_weight": False, "runs": [{"seed": seed, "test": {"f1_micro": score}}
                                                          for seed, score in enumerate(scores, 1)]}


@pytest.fixture
def recorded(monkeypatch):
    """The reported runs in metrics.json, the other seeds in seeds.json, as the two files hold them."""
    seeds = {"models": {"text": _other_seeds([0.61, 0.62]), "poster": _other_seeds([0.55, 0.56]),
                        "new": _other_seeds([])},
             "late_fusion": {"poster": "poster", "text": "text", "runs": [
                 {"seed": seed, "weight": weight, "gain": {"test": {"f1_micro": gain}}, "fusion": {"test": {"f1_micro": fused}}}
                 for seed, weight, gain, fused in ((1, 0.3, 0.02, 0.63), (2, 0.4, 0.03, 0.65))]}}
    metrics = {"models": {"text": {"test": {"f1_micro": 0.63}}, "poster": {"test": {"f1_micro": 0.54}},
                          "new": {"test": {"f1_micro": 0.70}},
                          "fusion": {"test": {"f1_micro": 0.64}, "fusion": {"poster": "poster", "text": "text", "weight": 0.5}}}}
    monkeypatch.setattr(seed_tables, "seeds", lambda: seeds)
    monkeypatch.setattr(seed_tables, "metrics", lambda: metrics)
    return seeds, metrics


def test_a_models_runs_are_its_reported_run_then_its_other_seeds(recorded):
    assert seed_tables.seed_scores("text") == [0.63, 0.61, 0.62]
    assert seed_tables.seed_spread("text") == "0.620 ± 0.010"
    assert seed_tables.seed_rank("text") == (1, 3) and seed_tables.seed_rank("poster") == (3, 3)


def test_the_seed_gap_is_the_difference_of_means_over_all_runs_with_the_range_over_every_pair(recorded):
    gap = seed_tables.seed_gap("text", "poster")
    assert gap["mean"] == pytest.approx(0.62 - 0.55)  # (0.63 + 0.61 + 0.62) / 3 - (0.54 + 0.55 + 0.56) / 3
    assert (gap["min"], gap["max"]) == (pytest.approx(0.61 - 0.56), pytest.approx(0.63 - 0.54))
    assert gap["pairs"] == 9 and gap["runs"] == (3, 3)
    assert seed_tables.seed_gap("poster", "text")["max"] == pytest.approx(-(0.61 - 0.56))


def test_a_model_without_other_seeds_has_no_seed_numbers(recorded):
    assert seed_tables.seed_gap("text", "new") is None and seed_tables.seed_gap("absent", "poster") is None
    assert seed_tables.seed_spread("new") is None and seed_tables.seed_rank("new") is None


def test_the_late_fusion_gain_counts_the_reported_run_and_each_other_seed(recorded):
    gain = seed_tables.late_fusion_gain()
    assert gain["runs"] == 3 and gain["mean"] == pytest.approx(0.02)  # 0.64 - 0.63, then 0.02 and 0.03
    assert gain["sd"] == pytest.approx(0.01) and (gain["min"], gain["max"]) == (pytest.approx(0.01), 0.03)
    assert gain["weights"] == [0.5, 0.3, 0.4]
    assert seed_tables.seed_scores("fusion") == [0.64, 0.63, 0.65]  # the fusion's runs: reported, then rebuilt per seed
    seeds, metrics = recorded
    metrics["models"]["fusion"]["fusion"]["text"] = "new"  # the members changed since the seeds' fusion was rebuilt
    assert seed_tables.late_fusion_gain() is None and seed_tables.seed_scores("fusion") is None
    seeds.pop("late_fusion")
    assert seed_tables.late_fusion_gain() is None


def test_the_seed_table_shows_metrics_jsons_reported_run_and_the_spread_over_all_runs(recorded):
    """A model retrained after `filmgenre seeds` ran changes metrics.json only: the table follows it
    (an older seeds.json copied the reported run, which went stale)."""
    seeds, metrics = recorded
    for name in ("text", "poster"):
        for run in seeds["models"][name]["runs"]:
            run |= {"test": {"f1_micro": run["test"]["f1_micro"], "f1_macro": 0.4}, "test_macro_rule": {"f1_macro": 0.5}}
        metrics["models"][name] |= {"test": {"f1_micro": metrics["models"][name]["test"]["f1_micro"], "f1_macro": 0.1},
                                    "test_macro_rule": {"f1_macro": 0.2}}
    seeds["models"]["text"]["single_run"] = {"seed": 42, "test": {"f1_micro": 0.99}}  # a stale copy, ignored
    table = seed_tables.seed_table()
    assert list(table.index) == ["text", "poster"]  # "new" has no other seeds
    assert table.loc["text", "micro-F1: reported run"] == "0.630" and table.loc["text", "micro-F1: all runs"] == "0.620 ± 0.010"
    assert table.loc["poster", "macro-F1: all runs"] == "0.300 ± 0.173"  # 0.1, 0.4, 0.4
    assert table.loc["text", "macro-F1, macro rule: reported run"] == "0.200" and table.loc["text", "runs"] == 3
