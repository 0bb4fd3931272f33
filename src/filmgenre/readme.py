"""The README's results table, written from ``results/metrics.json`` (`filmgenre readme`; the report
stage runs it too), so the numbers a reader sees first are never typed by hand."""

from pathlib import Path

from filmgenre import FilmgenreError, artifacts, config, files
from filmgenre.rules import describe_rule

BEGIN = "<!-- results table: written by `filmgenre readme` from results/metrics.json -->"
END = "<!-- end of results table -->"
KINDS = {"baseline": 0, "model": 1, "derived": 2}  # the table's order: baselines, models, the fusion


def results_table(metrics: dict) -> str:
    """Every entry's test scores under its rules chosen on validation, as a Markdown table."""
    rows = ["| name | input | rule (chosen on validation) | micro-F1 | macro-F1 | macro-F1, macro rule "
            "| micro-F1 at 0.5 | trained by |", "|---|---|---|---|---|---|---|---|"]
    entries = sorted(metrics.get("models", {}).items(),
                     key=lambda item: (KINDS[item[1]["kind"]], item[1]["test"]["f1_micro"]))
    for name, entry in entries:
        trained_by = "make extras" if name in config.EXTRA_MODELS else "make all"
        rows.append(f"| `{name}` | {entry['reads'].replace('_', ' ')} | {describe_rule(entry['rule'])} "
                    f"| {entry['test']['f1_micro']:.3f} | {entry['test']['f1_macro']:.3f} "
                    f"| {entry['test_macro_rule']['f1_macro']:.3f} | {entry['test_at_0.5']['f1_micro']:.3f} "
                    f"| {trained_by} |")
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
    metrics = artifacts.read_metrics(required=True)
    before = path.read_text(encoding="utf-8")
    after = with_table(before, results_table(metrics), path)
    files.write_text(path, after)
    return after != before


