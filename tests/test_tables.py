"""The report's tables read the committed results and agree with metrics.json."""

import json

import numpy as np
import pytest

from filmgenre import config, files, seed_tables, tables

METRICS = json.loads((config.ROOT / "results" / "metrics.json").read_text())


def test_comparison_has_every_model_and_baseline_with_its_metrics():
    frame = tables.comparison()
    assert set(frame.index) == set(METRICS["models"]) and frame.index.name == "model"
    row = frame.loc["prior"]
    assert row["micro-F1"] == METRICS["models"]["prior"]["test"]["f1_micro"]
    assert row["micro-F1 @0.5"] == METRICS["models"]["prior"]["test_at_0.5"]["f1_micro"]
    assert list(frame["kind"]).index("model") > list(frame["kind"]).index("baseline")  # baselines first
    trained_by = frame["trained by"]  # make all does not train the extras: marked
    assert trained_by["poster_cnn"] == "make extras" and trained_by["cnn"] == "make all"


def test_constant_prediction_is_the_priors_rule_applied():
    from filmgenre import predictions, rules

    genres = tables.constant_prediction()
    assert genres == sorted(genres, key=config.GENRES.index) and 1 <= len(genres) <= 3
    assert "Drama" in genres  # the most frequent genre, on 54% of the films
    probabilities = predictions.read_predictions("prior")[config.GENRES].to_numpy()[:1]
    chosen = rules.apply_rule(probabilities, METRICS["models"]["prior"]["rule"])[0]
    assert genres == [g for g, on in zip(config.GENRES, chosen) if on]


def test_never_right_genres_have_recall_zero_and_say_how_often_they_were_predicted():
    found = tables.never_right(["cnn", "lstm"])
    per_genre = tables.per_genre(["cnn", "lstm"]).set_index(["model", "genre"])
    assert len(found) and list(found.index) == [g for g in tables.genre_order() if g in set(found.index)]
    for genre, row in found.iterrows():
        for model in ("cnn", "lstm"):
            assert per_genre.loc[(model, genre), "recall"] == 0
            assert per_genre.loc[(model, genre), "predicted"] == row[model]


def test_the_false_positive_table_counts_films_given_a_genre_they_do_not_have():
    table = tables.false_positives("lstm", min_films=10)
    wrong = tables.wrong_calls("lstm")  # all films given each genre wrongly
    rows = {label: label.rsplit(" (", 1)[0] for label in table.index}
    assert list(rows.values()) == [g for g in tables.genre_order() if g in set(rows.values())]
    assert all(int(label.rsplit("(", 1)[1].rstrip(")")) >= 10 for label in rows)
    assert (table.to_numpy() >= 0).all()
    for genre in table.columns:  # the films of one true genre wrongly called h are some of those called h
        assert 0 < table[genre].sum() and table[genre].max() <= wrong[genre]
    assert all(table.loc[label, genre] == 0 for label, genre in rows.items() if genre in table.columns)


def test_per_genre_tables_keep_na_as_a_genre_and_skip_empty_genres():
    long = tables.per_genre(("cnn", "lstm"))
    assert "N/A" in set(long["genre"]) and long["genre"].notna().all()
    wide = tables.per_genre_wide(("cnn", "lstm"))
    assert ("", "films") in wide.columns and (wide[("", "films")] > 0).all()
    assert wide[("", "films")].is_monotonic_decreasing
    assert {"Documentary", "News", "Reality-TV", "Short"}.isdisjoint(wide.index)


def test_overfitting_summary_matches_the_history():
    summary = tables.overfitting("lstm")
    history = tables.history("lstm")
    assert summary["epochs_run"] == len(history)
    assert summary["val_loss_best"] == pytest.approx(history["val_loss"].min())
    assert summary["gap_last"] == pytest.approx(history["val_loss"].iloc[-1] - history["loss"].iloc[-1])


def test_confusion_rows_are_shares():
    matrix = tables.confusion_genres("lstm")
    assert list(matrix.index) == list(matrix.columns)
    assert ((matrix.to_numpy() >= 0) & (matrix.to_numpy() <= 1)).all()


def test_missing_results_say_what_to_run(project):
    with pytest.raises(FileNotFoundError, match="metrics.json: missing. Run `make all`"):
        tables.metrics()


@pytest.mark.parametrize("name, read", [("dataset.json", tables.dataset), ("bench.json", tables.bench),
                                        ("cnn/train.json", lambda: tables.training("cnn")),
                                        ("metrics.json", tables.metrics)])
def test_a_damaged_result_names_the_file_and_the_fix(project, name, read):
    path = project / "results" / name
    path.parent.mkdir(parents=True)
    path.write_text('{"films": 6325, "genres": ')  # cut short
    with pytest.raises(files.ArtifactError) as raised:
        read()
    assert str(raised.value) == (f"results/{name}: not valid JSON at line 1 (truncated or edited?). Restore the committed "
                                 f"one (`git checkout results/{name}`), or delete it and rerun the stage that writes it.")


def test_the_results_table_shows_every_model_grouped_with_its_intervals_and_seeds():
    table = tables.results_with_intervals().set_index("model")
    recorded = tables.metrics()["models"]
    assert set(table.index) == set(recorded)
    cnn = recorded["cnn"]
    low, high = cnn["intervals"]["test"]["f1_micro"]
    assert table.loc["cnn", "micro-F1"] == f"{cnn['test']['f1_micro']:.3f}\u00a0[{low:.3f},\u00a0{high:.3f}]"
    groups = [tables.group(name) for name in table.index]
    assert groups == sorted(groups, key=["baselines", "assignment", "ours"].index)
    assert tables.group("prior") == "baselines" and tables.group("lstm") == "assignment"
    runs = [cnn["test"]["f1_micro"]] + [run["test"]["f1_micro"] for run in seed_tables.seeds()["models"]["cnn"]["runs"]]
    mean, sd = np.mean(runs), np.std(runs, ddof=1)  # the reported run and the other seeds
    assert table.loc["cnn", "micro-F1, seeds"] == f"{mean:.3f}\u00a0±\u00a0{sd:.3f}"


def test_a_claim_is_the_paired_difference_with_its_interval_and_one_minus_sign():
    for entry in tables.metrics()["comparisons"].values():
        a, b = entry["models"]
        found = entry["test"]["f1_micro"]
        text = tables.claim(a, b)
        assert "-" not in text
        assert text.startswith(f"{found['difference']:+.3f}".replace("-", "\u2212"))
        low, high = (float(v.replace("\u2212", "-")) for v in text.split("[")[1].rstrip("]").split(", "))
        assert (low, high) == (round(found["interval"][0], 3), round(found["interval"][1], 3))


def test_the_modality_table_names_a_winner_only_where_the_interval_excludes_zero():
    table = tables.modality_per_genre("lstm", "cnn")
    assert list(table.index) == [g for g in tables.genre_order() if g in set(table.index)]
    for genre, row in table.iterrows():
        excludes = not (row["F1 low"] <= 0 <= row["F1 high"])
        assert (row["F1 winner"] != "neither") == excludes
        if excludes:
            assert row["F1 winner"] == ("lstm" if row["F1 difference"] > 0 else "cnn")


def test_goals_check_micro_under_the_micro_rule_and_macro_under_the_macro_rule():
    goals = tables.goals()
    models = tables.metrics()["models"]
    verdict = tables.goals_verdict()
    for reads, row in goals.iterrows():
        entry = models[row["model"]]
        assert row["micro reached"] == (entry["test"]["f1_micro"] >= row["goal micro"])
        assert row["macro reached"] == (entry["test_macro_rule"]["f1_macro"] >= row["goal macro"])
        assert f"{reads} ({row['model']})" in verdict and f"micro-F1 {row['micro-F1']:.3f}" in verdict


def test_the_best_model_of_each_kind_for_the_goals_is_chosen_on_validation(tmp_path, monkeypatch):
    """The committed metrics with test scores that rank each kind's models in the reverse order of
    their validation scores: the goals table names the same models (and reads their test scores)."""
    chosen = tables.goals()["model"]
    metrics = json.loads(json.dumps(METRICS))
    for entry in metrics["models"].values():
        entry["test"]["f1_micro"] = 1 - entry["val"]["f1_micro"]
        entry["test_macro_rule"]["f1_macro"] = 1 - entry["val_macro_rule"]["f1_macro"]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "metrics.json").write_text(json.dumps(metrics))
    monkeypatch.setattr(config, "ROOT", tmp_path)
    goals = tables.goals()
    assert goals["model"].tolist() == chosen.tolist()
    assert len(goals) == 3 and chosen["posters"] == "effnet_head"  # cnn and effnet_head were both candidates
    assert goals.loc["posters", "micro-F1"] == 1 - METRICS["models"]["effnet_head"]["val"]["f1_micro"]


def test_training_commits_are_the_runs_own_code_versions_shortened():
    names = tables.trained_models()
    found = tables.training_commits(names)
    assert list(found) == names
    for name, short in found.items():
        full = tables.training(name)["git_commit"]
        assert full.startswith(short.split("+")[0]) and len(short.split("+")[0]) == 7
        assert short.endswith("+dirty") == full.endswith("+dirty")


def test_the_priors_training_loss_is_the_mean_binary_entropy_of_the_training_frequencies(monkeypatch):
    monkeypatch.setattr(tables, "dataset", lambda: {"split_counts": {"train": 4},
                                                    "genre_counts": {"train": {"Drama": 1, "Western": 0}}})
    entropy = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))  # Drama, on 1 of 4 films; Western (none) adds ~0
    assert tables.prior_training_loss() == pytest.approx(entropy / 2, abs=1e-6)
