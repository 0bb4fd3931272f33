"""The README's results and goals tables are written from results/, and the committed ones are in step."""

import pytest

from conftest import REPO
from filmgenre import FilmgenreError, readme


def test_the_committed_readme_table_is_the_committed_metrics():
    text = (REPO / "README.md").read_text()
    table = readme.results_table()
    assert readme.with_table(text, table, REPO / "README.md") == text, \
        "README.md's results table is out of step with results/metrics.json: run `filmgenre readme`"
    assert "`minilm_head`" in table and "[" in table  # every model, with its intervals


def test_the_committed_readme_goals_are_the_committed_seeds_and_stage_bench():
    text = (REPO / "README.md").read_text()
    table = readme.goals_table()
    assert readme.with_table(text, table, REPO / "README.md", readme.GOALS_BEGIN, readme.GOALS_END) == text, \
        "README.md's goals table is out of step with results/seeds.json or bench.json: run `filmgenre readme`"
    assert "`gmu`" in table and " ± " in table  # the learned fusions, on seed means


def test_the_markers_must_be_there(tmp_path):
    with pytest.raises(FilmgenreError, match="README.md: no table markers"):
        readme.with_table("no markers here", "| table |", tmp_path / "README.md")
    text = f"before\n{readme.BEGIN}\nold\n{readme.END}\nafter"
    assert readme.with_table(text, "new", tmp_path / "README.md") == f"before\n{readme.BEGIN}\nnew\n{readme.END}\nafter"
