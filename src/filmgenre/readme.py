"""The README's results table, written from ``results/metrics.json``, and issue 21's goals table,
from ``results/seeds.json`` and ``results/bench.json`` (`filmgenre readme`; the report stage runs it
too), so the numbers a reader sees first are never typed by hand."""

from pathlib import Path

import numpy as np

from filmgenre import FilmgenreError, artifacts, config, files

BEGIN = "<!-- results table: written by `filmgenre readme` from results/metrics.json -->"
END = "<!-- end of results table -->"
GOALS_BEGIN = "<!-- goals table: written by `filmgenre readme` from results/seeds.json and results/bench.json -->"
GOALS_END = "<!-- end of goals table -->"


def markdown(frame) -> str:
    """A DataFrame as a Markdown table, model names as code; booleans as yes / no."""
    shown = lambda column, value: (f"`{value}`" if column == "model" else  # noqa: E731
                                   ("yes" if value else "no") if isinstance(value, (bool, np.bool_)) else str(value))
    rows = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    rows += ["| " + " | ".join(shown(column, value) for column, value in row.items()) + " |"
             for _, row in frame.iterrows()]
    return "\n".join(rows)


def results_table() -> str:
    """The report's results table (``tables.results_with_intervals``: every model and baseline, its
    test scores with 95% bootstrap intervals) as Markdown."""
    from filmgenre import tables

    return markdown(tables.results_with_intervals().reset_index(names=""))


def goals_table() -> str:
    """Issue 21's score goals on seed means (``goal_tables.score_goals``), then its cost goals (``goal_tables.cost_goals``)."""
    from filmgenre import goal_tables

    parts = [markdown(frame) for frame in (goal_tables.score_goals(), goal_tables.cost_goals()) if not frame.empty]
    return "\n\n".join(parts) or "(no seed runs nor stage bench yet)"


def with_table(text: str, table: str, path: Path, begin: str = BEGIN, end: str = END) -> str:
    """``text`` with the part between the table's markers replaced by ``table``."""
    if begin not in text or end not in text:
        raise FilmgenreError(f"{path}: no table markers ({begin} ... {end}). Put them back where "
                             "the table goes, then run `filmgenre readme`.")
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"


def update(path: Path | None = None) -> bool:
    """Rewrite the README's results and goals tables; whether the file changed."""
    path = config.paths().root / "README.md" if path is None else path
    artifacts.read_metrics(required=True)  # checked before the table reads it
    before = path.read_text(encoding="utf-8")
    after = with_table(with_table(before, results_table(), path), goals_table(), path, GOALS_BEGIN, GOALS_END)
    files.write_text(path, after)
    return after != before


