"""The report's tables and numbers about what the models read (``results/explain/``): poster
ablations, occlusion, word lists, calibration, genre-name leakage and the gated fusion's gate.

Split from ``tables`` so each table module has one subject; like it, it reads only ``results/``.
"""

import pandas as pd

from filmgenre import figure_index
from filmgenre.tables import genre_order, metrics, read_result, read_table, results_folder, with_interval

figure_index.record_tables(__file__)


def explain(name: str) -> pd.DataFrame:
    """One table of ``results/explain/`` (``filmgenre explain``): ablation, occlusion, words, tfidf_terms, calibration."""
    path = results_folder() / "explain" / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing. Run `filmgenre explain` first.")
    return read_table(path)


def ablation(metric: str = "micro-F1") -> pd.DataFrame:
    """Test ``metric`` of each poster model on original, grayscale and pixel-shuffled posters
    (rule chosen on validation, originals), with the share of the original score each keeps."""
    table = explain("ablation")
    kinds = list(dict.fromkeys(table["posters"]))  # original first, as explain writes them
    wide = table.pivot(index="model", columns="posters", values=metric)[kinds]
    for kind in kinds[1:]:
        wide[f"{kind} / original"] = wide[kind] / wide["original"]
    return wide.rename_axis(None, axis=1)


def ablation_margins(metric: str = "micro-F1") -> pd.DataFrame:
    """Test ``metric`` (micro-F1 or macro-AP) of each poster model on original, grayscale and
    shuffled posters minus the constant prior's (which reads no poster, so its score is the same on
    all three): what a model gains over knowing only the genres' frequencies."""
    table = explain("ablation")
    kinds = list(dict.fromkeys(table["posters"]))
    wide = table.pivot(index="model", columns="posters", values=f"{metric} margin")[kinds]
    return wide.reindex(list(dict.fromkeys(table["model"]))).rename_axis(None).rename_axis(None, axis=1)


def ablation_with_intervals() -> pd.DataFrame:
    """The report's ablation table: test micro-F1 (one group of rows) and macro-AP (another) of each
    poster model minus the constant prior's, with paired 95% bootstrap intervals, on each kind of poster
    (columns: original, grayscale, shuffled)."""
    table = explain("ablation")
    kinds = list(dict.fromkeys(table["posters"]))
    rows = []
    for metric in ("micro-F1", "macro-AP"):
        for position, (model, group) in enumerate(table.groupby("model", sort=False)):
            cells = group.set_index("posters")
            rows.append({"score \u2212 prior": metric if position == 0 else "", "model": model} | {
                kind: with_interval(cells.at[kind, f"{metric} margin"], (cells.at[kind, f"{metric} margin low"],
                                                                         cells.at[kind, f"{metric} margin high"]),
                                    sign=True).replace(" ", "\u00a0") for kind in kinds})
    return pd.DataFrame(rows).set_index("score \u2212 prior").rename_axis(None)


def calibration_errors(kind: str = "ece_pooled") -> pd.Series:
    """Expected calibration error of every model on test (``metrics.json``): ``ece_pooled`` over every
    (film, genre) pair, or ``ece_genre_mean``, the mean of each genre's own (genres of the macro scores)."""
    return pd.Series({name: entry["calibration"][kind] for name, entry in metrics()["models"].items()})


def word_lists(models=None, top: int = 5) -> pd.DataFrame:
    """Per genre (rows), each text model's ``top`` most positive words (leave-one-word-out; default:
    every model explained; only words held by ``explain_summary()["word_min_count"]`` test overviews
    are ranked), each with that number, and the TF-IDF baseline's ``top`` largest coefficients, as
    comma-separated lists."""
    words = explain("words")
    terms = explain("tfidf_terms")
    models = list(dict.fromkeys(words["model"])) if models is None else models
    columns = {}
    for model in models:
        chosen = words[words["model"] == model].sort_values(["genre", "rank"])
        chosen = chosen.groupby("genre", sort=False).head(top)
        labelled = chosen["word"] + " (" + chosen["films"].astype(str) + ")"
        columns[f"{model}: words that raise it (films)"] = labelled.groupby(chosen["genre"], sort=False).agg(", ".join)
    chosen = terms[terms["rank"] <= top].sort_values(["genre", "rank"])
    columns["TF-IDF: largest coefficients"] = chosen.groupby("genre", sort=False)["term"].agg(", ".join)
    order = [g for g in genre_order() if g in set(terms["genre"])]
    return pd.DataFrame(columns).reindex(order).fillna("").rename_axis("genre")


def explain_summary() -> dict:
    """Settings and cost of the last ``filmgenre explain`` run."""
    return read_result("explain/summary.json")


def leakage() -> dict:
    """Genre-name leakage (``results/explain/leakage.json``): how often test overviews name their own
    genres, and the text models' test scores on original and masked overviews."""
    return read_result("explain/leakage.json")


def leakage_change(name: str, against: str | None = None, metric: str = "f1_micro", overviews: str = "masked") -> dict:
    """A paired difference from ``leakage.json``: ``name`` on ``overviews`` (original or masked)
    minus ``name`` on the original ones, or with ``against`` minus that poster model."""
    baseline = against or f"{name}/original"
    return leakage()["differences"][f"{name}/{overviews}_vs_{baseline}"][metric]


def self_named(words: pd.DataFrame) -> list[str]:
    """Genres (rows of ``word_lists``) whose name, or a word made from it, is on one of their lists."""
    from filmgenre.leakage import named_genres

    return [genre for genre in words.index if genre in named_genres(" ".join(words.loc[genre]))]


def gate_per_genre(name: str = "gmu") -> pd.DataFrame:
    """How much each genre's decisions lean on the poster in a gated fusion (``gates``): the genres
    with test films, the gate's mean (1 = poster only) and the share of units leaning on the poster."""
    from filmgenre import gates

    table = gates.read_table(name)
    return table[table["films"] > 0].set_index("genre")
