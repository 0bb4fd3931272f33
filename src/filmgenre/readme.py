"""The README's results table, written from ``results/metrics.json`` (`filmgenre readme`; the report
stage runs it too), so the numbers a reader sees first are never typed by hand."""

from pathlib import Path

from filmgenre import FilmgenreError, artifacts, config, files

BEGIN = "<!-- results table: written by `filmgenre readme` from results/metrics.json -->"
END = "<!-- end of results table -->"


def results_table() -> str:
    """The report's results table (``tables.results_with_intervals``: every model and baseline, its
    test scores with 95% bootstrap intervals) as Markdown."""
    from filmgenre import tables

    frame = tables.results_with_intervals().reset_index(names="")
    rows = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    rows += ["| " + " | ".join(f"`{value}`" if column == "model" else str(value) for column, value in row.items()) + " |"
             for _, row in frame.iterrows()]
    return "\n".join(rows)


def with_table(text: str, table: str, path: Path) -> str:
    """``text`` with the part between the table's markers replaced by ``table``."""
    if BEGIN not in text or END not in text:
        raise FilmgenreError(f"{path}: no results table markers ({BEGIN} ... {END}). Put them back where "
                             "the table goes, then run `filmgenre readme`.")
    head, rest = text.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{rest.split(END, 1)[1]}"


def update(path: Path | None = None) -> bool:
    """Rewrite the README's results table from ``metrics.json``; whether the file changed."""
    path = config.paths().root / "README.md" if path is None else path
    artifacts.read_metrics(required=True)  # checked before the table reads it
    before = path.read_text(encoding="utf-8")
    after = with_table(before, results_table(), path)
    files.write_text(path, after)
    return after != before


