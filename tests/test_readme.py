"""The README's results table is written from metrics.json, and the committed one is in step."""

import json

import pytest

from conftest import REPO
from filmgenre import FilmgenreError, readme


def test_the_committed_readme_table_is_the_committed_metrics():
    metrics = json.loads((REPO / "results" / "metrics.json").read_text())
    text = (REPO / "README.md").read_text()
    assert readme.with_table(text, readme.results_table(metrics), REPO / "README.md") == text, \
        "README.md's results table is out of step with results/metrics.json: run `filmgenre readme`"


def test_the_table_lists_every_entry_baselines_first(tmp_path):
    scores = lambda micro: {"f1_micro": micro, "f1_macro": 0.1}  # noqa: E731
    entry = lambda kind, micro: {"kind": kind, "reads": "poster_features", "rule": {"kind": "top_k", "k": 2},  # noqa: E731
                                 "test": scores(micro), "test_macro_rule": scores(micro), "test_at_0.5": scores(micro)}
    table = readme.results_table({"models": {"fusion": entry("derived", 0.9), "effnet_finetune": entry("model", 0.7),
                                             "cnn": entry("model", 0.5), "prior": entry("baseline", 0.4)}})
    names = [line.split("`")[1] for line in table.splitlines()[2:]]
    assert names == ["prior", "cnn", "effnet_finetune", "fusion"]
    assert "| `effnet_finetune` | poster features | top-2 | 0.700 | 0.100 | 0.100 | 0.700 | make extras |" in table
    with pytest.raises(FilmgenreError, match="README.md: no results table markers"):
        readme.with_table("no markers here", table, tmp_path / "README.md")
