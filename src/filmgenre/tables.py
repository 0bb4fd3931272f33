"""The report's tables and numbers, read from the committed files in ``results/``.

The Quarto documents never type a number: prose uses inline expressions over these
functions, tables are these DataFrames. Nothing here needs the dataset. This module holds the
scores, comparisons and errors of ``metrics.json`` and how numbers are written; what the models
read (``explain/``) is in ``explain_tables`` and training noise (``seeds.json``) in ``seed_tables``.
"""

import pandas as pd

from filmgenre import config, figure_index, files

figure_index.record_tables(__file__)  # each tbl- cell of a rendered document: which results made it


def results_folder():
    return config.paths().results


def read_result(name: str) -> dict:
    """A JSON file of ``results/``, checked (``files.read_json``): a damaged one is named with its fix."""
    path = results_folder() / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing. Run `make all` (or the stage that writes it) first.")
    return files.read_json(path, f"Restore the committed one (`git checkout results/{name}`), or delete it and "
                                 "rerun the stage that writes it.")


def dataset() -> dict:
    return read_result("dataset.json")


def metrics() -> dict:
    return read_result("metrics.json")


def bench() -> dict:
    return read_result("bench.json")


def training(name: str) -> dict:
    return read_result(f"{name}/train.json")


def training_commits(names) -> dict[str, str]:
    """The code version (short commit, ``+dirty`` when the tree had uncommitted changes) each
    reported run was trained with: runs from different versions are not one experiment."""
    def short(commit: str) -> str:
        head, _, dirty = commit.partition("+")
        return head[:7] + ("+" + dirty if dirty else "")

    return {name: short(training(name)["git_commit"]) for name in names}


def history(name: str) -> pd.DataFrame:
    return pd.read_csv(results_folder() / name / "history.csv")


def read_table(path) -> pd.DataFrame:
    # "N/A" is a genre here, not a missing value.
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def comparison(section: str = "test") -> pd.DataFrame:
    """Every model and baseline side by side: ``section`` metrics under its validation-chosen rule.

    ``trained by`` tells the results `make all` reproduces from those only `make extras` does.
    """
    rows = []
    for name, entry in metrics()["models"].items():
        scores = entry[section]
        rows.append({
            "model": name, "kind": entry["kind"], "input": input_of(name), "rule": entry["rule"]["description"],
            "micro-F1": scores["f1_micro"], "macro-F1": scores["f1_macro"], "samples-F1": scores["f1_samples"],
            "micro-P": scores["precision_micro"], "micro-R": scores["recall_micro"],
            "macro-AP": scores["average_precision_macro"],
            "micro-F1 @0.5": entry[f"{section}_at_0.5"]["f1_micro"],
            "trained by": "make extras" if name in config.EXTRA_MODELS else "make all",
        })
    order = {"baseline": 0, "model": 1, "derived": 2}
    return (pd.DataFrame(rows).sort_values(["kind", "micro-F1"], key=lambda c: c.map(order) if c.name == "kind" else c)
            .set_index("model"))  # a row's name is its model, not a position in metrics.json


def constant_prediction(name: str = "prior") -> list[str]:
    """The genres a constant predictor gives every film."""
    return list(always_predicted(name))


def always_predicted(name: str) -> dict[str, int]:
    """Genres ``name`` predicts for every test film, with that number of films."""
    table = read_table(results_folder() / name / "per_genre.csv")
    films = metrics()["models"][name]["test"]["films"]
    return {genre: films for genre in table.loc[table["predicted"] == films, "genre"]}


def never_right(names) -> pd.DataFrame:
    """Genres with test films that none of ``names`` ever predicts correctly (recall 0), with how
    often each model predicts them at all (always wrongly)."""
    frame = per_genre(names)
    frame = frame[frame["support"] > 0]
    wide = frame.pivot(index="genre", columns="model", values="recall")
    genres = wide.index[(wide[list(names)] == 0).all(axis=1)]
    predicted = frame.pivot(index="genre", columns="model", values="predicted").loc[genres, list(names)]
    return predicted.reindex([g for g in genre_order() if g in set(genres)])


def genre_order() -> list[str]:
    """Genres with at least one film, most films first: the one order of every figure and table."""
    counts = genre_counts()
    return counts.index[counts["total"] > 0].tolist()


def per_genre(names=("cnn", "lstm")) -> pd.DataFrame:
    """Per-genre test precision, recall, F1 and AP of some models, one row per model and genre."""
    frames = [read_table(results_folder() / name / "per_genre.csv").assign(model=name) for name in names]
    return pd.concat(frames, ignore_index=True)


def per_genre_wide(names=("cnn", "lstm"), columns=("precision", "recall", "f1")) -> pd.DataFrame:
    """Genres as rows, (model, metric) as columns: the report's per-genre table."""
    frame = per_genre(names)
    frame = frame[frame["support"] > 0]
    wide = frame.pivot(index="genre", columns="model", values=list(columns))
    wide = wide.swaplevel(axis=1)[[(n, c) for n in names for c in columns]]
    support = frame.drop_duplicates("genre").set_index("genre")["support"]
    wide.insert(0, ("", "films"), support)
    return wide.sort_values(("", "films"), ascending=False)


def confusion_genres(name: str) -> pd.DataFrame:
    """Of the test films of each true genre (rows), the share predicted as each genre (columns)."""
    matrix = read_table(results_folder() / name / "confusion_genres.csv").set_index("genre")
    present = [g for g in matrix.index if matrix.loc[g].notna().any() and matrix.loc[g].sum() > 0]
    return matrix.loc[present, present]


def false_positives(name: str, min_films: int = 1) -> pd.DataFrame:
    """Films of each true genre (rows, with at least ``min_films`` test films, labelled with that
    number) predicted as a genre they do not have (columns with at least one such film)."""
    table = read_table(results_folder() / name / "false_positives.csv").set_index("genre")
    rows = [g for g in genre_order() if g in table.index and table.at[g, "films"] >= min_films]
    counts = table.loc[rows].drop(columns="films")
    counts = counts[[g for g in genre_order() if g in counts.columns and counts[g].sum() > 0]]
    counts.index = [f"{g} ({table.at[g, 'films']})" for g in rows]
    return counts.astype(int)


def wrong_calls(name: str) -> pd.Series:
    """Per predicted genre, the test films given it although it is not theirs (false positives)."""
    return read_table(results_folder() / name / "confusion_per_genre.csv").set_index("genre")["fp"]


def samples(name: str = "samples.csv") -> pd.DataFrame:
    return read_table(results_folder() / name)


def agreement(pair: str = "cnn_vs_lstm") -> dict:
    return metrics()["agreement"][pair]


def prior_training_loss() -> float:
    """The constant prior's cross-entropy on the training films it was fit on: what a model's
    training loss must go below to have fit anything. The mean binary cross-entropy is linear in
    the labels, so one row of the genres' training frequencies stands for all the training films."""
    from filmgenre.uncertainty import cross_entropy

    frequency = (genre_counts()["train"] / dataset()["split_counts"]["train"]).to_numpy()[None, :]
    return cross_entropy(frequency, frequency)


def genre_counts() -> pd.DataFrame:
    """Films per genre and split (rows: genres, most frequent first)."""
    counts = pd.DataFrame(dataset()["genre_counts"])
    counts["total"] = counts.sum(axis=1)
    return counts.sort_values("total", ascending=False)


def percent(value: float, digits: int = 0) -> str:
    return f"{100 * value:.{digits}f}%"


def readable(frame: pd.DataFrame, digits: int = 3, shares=()) -> pd.DataFrame:
    """A table as the HTML analysis shows it: every cell text, numbers to ``digits`` decimals (never
    in scientific notation; ``shares`` columns as percentages), booleans as yes / no, missing cells
    blank, one header row (no row of index names) and column levels joined with ": "."""
    def cell(value, column) -> str:
        if isinstance(value, (bool,)) or type(value).__name__ == "bool_":
            return "yes" if value else "no"
        if value is None or (isinstance(value, float) and value != value):
            return ""
        if column in shares:
            return percent(value, 1)
        if isinstance(value, float):
            return number(value, digits)
        return str(value).replace("\u00a0", " ")  # an interval may wrap in a narrow column

    shown = frame.copy()
    if isinstance(shown.columns, pd.MultiIndex):
        shown.columns = [": ".join(str(level) for level in column if str(level)) for column in shown.columns]
    if isinstance(shown.index, pd.MultiIndex):
        shown = shown.reset_index()
    for column in shown.columns:
        shown[column] = [cell(value, column) for value in shown[column]]
    if isinstance(shown.index, pd.RangeIndex) and len(shown.columns):
        shown = shown.set_index(shown.columns[0])
    return shown.rename_axis(None).rename_axis(None, axis=1)


def overfitting(name: str) -> dict:
    """The train/validation gap at the best epoch and at the last one, from the history."""
    frame = history(name)
    best = training(name)["best_epoch"] - 1
    last = len(frame) - 1
    return {
        "best_epoch": best + 1,
        "epochs_run": last + 1,
        "train_loss_best": frame.at[best, "loss"], "val_loss_best": frame.at[best, "val_loss"],
        "train_loss_last": frame.at[last, "loss"], "val_loss_last": frame.at[last, "val_loss"],
        "gap_best": frame.at[best, "val_loss"] - frame.at[best, "loss"],
        "gap_last": frame.at[last, "val_loss"] - frame.at[last, "loss"],
        "val_loss_min_epoch": int(frame["val_loss"].idxmin()) + 1,
        "train_loss_drop": frame.at[0, "loss"] - frame.at[last, "loss"],
    }


def training_summary(names) -> pd.DataFrame:
    """Size, length and speed of each training run (from results/<name>/train.json)."""
    rows = []
    for name in names:
        run = training(name)
        rows.append({"model": name, "parameters": run["parameters"], "training films": run["training_films"],
                     "epochs run": run["epochs_run"], "best epoch": run["best_epoch"],
                     "best val loss": run["best_val_loss"], "s / epoch": run["seconds_per_epoch"]})
    return pd.DataFrame(rows).set_index("model")


def trained_models() -> list[str]:
    """Models with a committed training run, in the order of metrics.json."""
    return [name for name, entry in metrics()["models"].items()
            if entry["kind"] == "model" and (results_folder() / name / "train.json").exists()]


def rule_candidates() -> pd.DataFrame:
    """Validation micro-F1 of every kind of decision rule tried, per model, and the one kept."""
    def kind(rule: dict) -> str:
        return "best global threshold" if rule["kind"] == "global" else rule["description"]

    rows = {name: {kind(c["rule"]): c["val_f1_micro"] for c in entry["rule_candidates"]}
            | {"chosen": entry["rule"]["description"]}
            for name, entry in metrics()["models"].items()}
    return pd.DataFrame(rows).T.infer_objects()  # numeric columns stay numeric, so they round


GOALS = {  # issue 10: test micro-F1 and macro-F1 each kind of model should reach
    "posters": (0.56, 0.32),
    "overviews": (0.62, 0.46),
    "posters+overviews": (0.65, 0.48),
}


def goals() -> pd.DataFrame:
    """Our best model of each kind against the goals we set for it, on test.

    Micro-F1 under the rule chosen for validation micro-F1; macro-F1 under the micro rule and
    under the rule chosen for validation macro-F1 (each objective with its own rule, both chosen
    without test). A goal is reached when the micro goal is met under the micro rule and the
    macro goal under the macro rule. Like the fusion's members, only models `make all` trains.
    """
    from filmgenre.seed_tables import seed_spread  # seed_tables builds on this module

    rows = []
    models = metrics()["models"]
    for reads, (micro_goal, macro_goal) in GOALS.items():  # fusions: the late one and the learned ones
        candidates = {n: e for n, e in models.items() if e["kind"] in ("model", "derived") and n not in config.EXTRA_MODELS
                      and config.MODALITY.get(e["reads"], e["reads"]) == reads}
        if not candidates:
            continue
        best = max(candidates, key=lambda n: candidates[n]["val"]["f1_micro"])  # chosen on validation
        test, macro_rule = candidates[best]["test"], candidates[best]["test_macro_rule"]
        rows.append({"input": reads, "model": best, "micro-F1": test["f1_micro"],
                     "micro-F1, seeds": seed_spread(best) or "", "goal micro": micro_goal,
                     "macro-F1": test["f1_macro"], "macro-F1, macro rule": macro_rule["f1_macro"],
                     "goal macro": macro_goal,
                     "micro reached": test["f1_micro"] >= micro_goal, "macro reached": macro_rule["f1_macro"] >= macro_goal})
    return pd.DataFrame(rows).set_index("input")


def goals_verdict() -> str:
    """One sentence per kind of model: which of its two goals it met, with the scores."""
    parts = []
    for reads, row in goals().iterrows():
        met = [name for name, ok in (("micro", row["micro reached"]), ("macro", row["macro reached"])) if ok]
        scores = (f"micro-F1 {row['micro-F1']:.3f} for {row['goal micro']}, macro-F1 "
                  f"{row['macro-F1, macro rule']:.3f} (macro rule) for {row['goal macro']}")
        verdict = "both goals met" if len(met) == 2 else f"only the {met[0]} goal met" if met else "both goals missed"
        parts.append(f"{reads} ({row['model']}): {verdict}, {scores}")
    return "; ".join(parts) + "."


# --------------------------------------------------------------------------- uncertainty (issue 11)
MINUS = "\u2212"  # one minus sign in every number the documents print, never a hyphen


def number(value: float, digits: int = 3, sign: bool = False) -> str:
    """``0.484``, or with ``sign`` ``+0.035`` / ``\u22120.012``."""
    return (f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}").replace("-", MINUS)


def with_interval(value: float, bounds, sign: bool = False) -> str:
    """``0.590 [0.577, 0.604]``: a score (or, with ``sign``, a difference) and its 95% bootstrap interval."""
    return f"{number(value, sign=sign)} [{number(bounds[0], sign=sign)}, {number(bounds[1], sign=sign)}]"


def group(name: str) -> str:
    """Which part of the study a model belongs to: the baselines, the assignment's two networks, or ours."""
    entry = metrics()["models"][name]
    if entry["kind"] == "baseline":
        return "baselines"
    return "assignment" if entry["description"].startswith("the assignment's") else "ours"


def input_of(name: str) -> str:
    """What a model reads, in words: posters, overviews, both, or nothing but the genre labels."""
    reads = metrics()["models"][name]["reads"]
    reads = config.MODALITY.get(reads, reads)
    return {"labels": "labels only", "posters+overviews": "both"}.get(reads, reads)


def results_with_intervals() -> pd.DataFrame:
    """The results table: every model and baseline, grouped (baselines, the assignment's, ours) with
    what it reads, its test scores with 95% bootstrap intervals and, where it was retrained with
    other seeds, their mean ± SD beside it.

    Micro-F1, macro-F1 and macro AP under the rule chosen for validation micro-F1 (the macro
    scores over the genres with enough test films, ``metrics.json`` ``bootstrap``); micro-F1
    at the course's fixed 0.5. Cells hold non-breaking spaces, so an interval never wraps.
    """
    from filmgenre.seed_tables import seed_spread  # seed_tables builds on this module

    models = metrics()["models"]
    order = {"baselines": 0, "assignment": 1, "ours": 2}
    inputs = {"labels only": 0, "posters": 1, "overviews": 2}
    names = sorted(models, key=lambda n: (order[group(n)], inputs.get(input_of(n), 3), models[n]["test"]["f1_micro"]))

    def cell(entry, metric):
        return with_interval(entry["test"][metric], entry["intervals"]["test"][metric]).replace(" ", "\u00a0")

    rows, previous = [], None
    for name in names:
        entry = models[name]
        rows.append({
            "group": group(name) if group(name) != previous else "", "model": name, "input": input_of(name),
            "micro-F1": cell(entry, "f1_micro"),
            "micro-F1, seeds": (seed_spread(name) or "").replace(" ", "\u00a0"),
            "macro-F1": cell(entry, "f1_macro_fixed"), "macro-AP": cell(entry, "average_precision_macro_fixed"),
            "micro-F1 at 0.5": number(entry["test_at_0.5"]["f1_micro"]),
        })
        previous = group(name)
    return pd.DataFrame(rows).set_index("group").rename_axis(None)


def difference(a: str, b: str, metric: str = "f1_micro", section: str = "test") -> dict:
    """The paired bootstrap difference ``a - b`` of a test score (``metrics.json`` ``comparisons``)."""
    return metrics()["comparisons"][f"{a}_vs_{b}"][section][metric]


def claim(a: str, b: str, metric: str = "f1_micro", section: str = "test") -> str:
    """A paired difference and its interval: ``+0.035 [+0.021, +0.050]``."""
    found = difference(a, b, metric, section)
    return with_interval(found["difference"], found["interval"], sign=True)


def comparisons() -> pd.DataFrame:
    """Every paired comparison: the difference a - b and its interval, per score and rule."""
    rows = []
    for entry in metrics()["comparisons"].values():
        a, b = entry["models"]
        for section, rule in (("test", "micro rule"), ("test_macro_rule", "macro rule")):
            for metric, label in (("f1_micro", "micro-F1"), ("f1_macro_fixed", "macro-F1"),
                                  ("average_precision_macro_fixed", "macro-AP")):
                if metric.startswith("average_precision") and section != "test":
                    continue  # no rule: the same under both
                found = entry[section][metric]
                rows.append({"a": a, "b": b, "score": label if metric.startswith("average") else f"{label}, {rule}",
                             "a \u2212 b [95% interval]": with_interval(found["difference"], found["interval"],
                                                                         sign=True),
                             "interval excludes 0": "yes" if found["measurable"] else "no"})
    return pd.DataFrame(rows).set_index(["a", "b", "score"])


def modality_per_genre(text: str, poster: str) -> pd.DataFrame:
    """Per genre of the macro scores: test F1 and average precision of ``text`` minus ``poster``
    with paired 95% intervals, and which one wins where the interval excludes 0."""
    found = metrics()["comparisons"][f"{text}_vs_{poster}"]["per_genre"]
    scores = per_genre([text, poster]).pivot(index="genre", columns="model", values=["f1", "average_precision"])
    rows = []
    for genre in [g for g in genre_order() if g in found]:
        f1, ap = found[genre]["f1"], found[genre]["average_precision"]
        rows.append({"genre": genre, "films": found[genre]["films"], "F1 difference": f1["difference"],
                     "F1 low": f1["interval"][0], "F1 high": f1["interval"][1],
                     "AP difference": ap["difference"], "AP low": ap["interval"][0], "AP high": ap["interval"][1],
                     "F1 winner": (text if f1["difference"] > 0 else poster) if f1["measurable"] else "neither",
                     "F1 both 0": bool((scores.loc[genre, "f1"] == 0).all()),
                     "AP both 0": bool((scores.loc[genre, "average_precision"] == 0).all())})
    return pd.DataFrame(rows).set_index("genre")


def macro_rule_tradeoff() -> pd.DataFrame:
    """Per model: test micro- and macro-F1 under each rule, the change, and the genres the macro rule recovers."""
    rows = []
    for name, entry in metrics()["models"].items():
        micro, macro = entry["test"], entry["test_macro_rule"]
        rows.append({"model": name, "micro-F1, micro rule": micro["f1_micro"], "micro-F1, macro rule": macro["f1_micro"],
                     "macro-F1, micro rule": micro["f1_macro"], "macro-F1, macro rule": macro["f1_macro"],
                     "macro-F1 gain": macro["f1_macro"] - micro["f1_macro"],
                     "micro-F1 cost": micro["f1_micro"] - macro["f1_micro"],
                     "genres recovered": ", ".join(entry["macro_rule_recovers"])})
    return pd.DataFrame(rows).set_index("model")


