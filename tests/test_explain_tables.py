"""The tables of what the models read (results/explain/) agree with the files they come from."""

import json
import re

import pandas as pd
import pytest

from filmgenre import config, explain_tables, tables

METRICS = json.loads((config.ROOT / "results" / "metrics.json").read_text())


def test_ablation_margins_are_the_scores_minus_the_priors():
    margins = explain_tables.ablation_margins()
    scores = explain_tables.ablation()
    prior = METRICS["models"]["prior"]["test"]
    assert margins.loc["cnn", "shuffled"] == pytest.approx(scores.loc["cnn", "shuffled"] - prior["f1_micro"], abs=2e-5)
    assert list(margins.columns) == ["original", "grayscale", "shuffled"]
    ap = explain_tables.ablation_margins("macro-AP")
    assert ap.loc["cnn", "original"] == pytest.approx(
        explain_tables.ablation("macro-AP").loc["cnn", "original"] - prior["average_precision_macro_fixed"], abs=2e-5)


def test_the_ablation_table_gives_each_margin_inside_its_interval_in_one_group_per_score():
    table = explain_tables.ablation_with_intervals()
    raw = explain_tables.explain("ablation")
    models = list(dict.fromkeys(raw["model"]))
    assert [label for label in table.index if label] == ["micro-F1", "macro-AP"]
    assert table["model"].tolist() == models * 2 and list(table.columns[1:]) == list(dict.fromkeys(raw["posters"]))
    for cell in table.iloc[:, 1:].to_numpy().ravel():
        middle, low, high = (float(v.replace("\u2212", "-")) for v in re.findall(r"[+\u2212]\d\.\d{3}", cell))
        assert low <= middle <= high
    shuffled_ap = table.iloc[len(models):].set_index("model").at["cnn", "shuffled"]
    found = raw.set_index(["model", "posters"]).loc[("cnn", "shuffled")]
    assert shuffled_ap.startswith(tables.number(found["macro-AP margin"], sign=True))


def test_word_lists_rank_only_words_above_the_floor_and_show_the_top_ones():
    lists = explain_tables.word_lists(["lstm"], top=3)
    floor = explain_tables.explain_summary()["word_min_count"]
    for cell in lists["lstm: words that raise it (films)"]:
        counts = [int(n) for n in re.findall(r"\((\d+)\)", cell)]
        assert 0 < len(counts) <= 3 and min(counts) >= floor


def test_self_named_genres_are_found_through_words_made_from_the_name():
    lists = pd.DataFrame({"words": ["romantic (12), love (40)", "ghost (11)"]}, index=["Romance", "Horror"])
    assert explain_tables.self_named(lists) == ["Romance"]
