"""The report's seed-level numbers, on hand-made ``seeds.json`` contents with known answers."""

import pytest

from filmgenre import seed_tables


def _entry(reported: float, others: list[float]) -> dict:
    return {"model": "m", "class_weight": False, "single_run": {"seed": 42, "test": {"f1_micro": reported}},
            "runs": [{"seed": seed, "test": {"f1_micro": score}} for seed, score in enumerate(others, 1)]}


@pytest.fixture
def recorded(monkeypatch):
    content = {"models": {"text": _entry(0.63, [0.61, 0.62]), "poster": _entry(0.54, [0.55, 0.56]),
                          "new": {"model": "new", "class_weight": False, "runs": []}},
               "late_fusion": {"poster": "poster", "text": "text", "runs": [
                   {"seed": s, "weight": w, "fusion": {"test": {"f1_micro": f}}, "gain": {"test": {"f1_micro": g}}}
                   for s, w, f, g in ((1, 0.3, 0.63, 0.02), (2, 0.4, 0.63, 0.01), (3, 0.3, 0.63, 0.03))]}}
    monkeypatch.setattr(seed_tables, "seeds", lambda: content)
    return content


def test_the_seed_gap_is_the_difference_of_means_over_all_runs_with_the_range_over_every_pair(recorded):
    gap = seed_tables.seed_gap("text", "poster")
    assert gap["mean"] == pytest.approx(0.62 - 0.55)  # (0.63 + 0.61 + 0.62) / 3 - (0.54 + 0.55 + 0.56) / 3
    assert (gap["min"], gap["max"]) == (pytest.approx(0.61 - 0.56), pytest.approx(0.63 - 0.54))
    assert gap["pairs"] == 9 and gap["runs"] == (3, 3)
    assert seed_tables.seed_gap("poster", "text")["max"] == pytest.approx(-(0.61 - 0.56))


def test_a_model_without_other_seeds_has_no_seed_gap(recorded):
    assert seed_tables.seed_gap("text", "new") is None
    assert seed_tables.seed_gap("absent", "poster") is None


def test_the_late_fusion_gain_over_seeds_is_their_mean_and_sample_sd(recorded):
    gain = seed_tables.late_fusion_gain()
    assert gain["mean"] == pytest.approx(0.02) and gain["sd"] == pytest.approx(0.01)  # SD of 0.02, 0.01, 0.03
    assert (gain["min"], gain["max"], gain["seeds"], gain["weights"]) == (
        pytest.approx(0.01), pytest.approx(0.03), [1, 2, 3], [0.3, 0.4, 0.3])
    recorded.pop("late_fusion")
    assert seed_tables.late_fusion_gain() is None
