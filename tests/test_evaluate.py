"""Evaluation: decision rules on toy cases with known answers, metrics recomputed from the
written files, sample buckets, and stale-result detection."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support, roc_auc_score

from conftest import REAL_ZIP, REPO, copy_project, noisy_test_split
from filmgenre import artifacts, compare, config, evaluate, files, provenance, rules, scores

GENRES = config.GENRES
G = len(GENRES)


# --------------------------------------------------------------------------- decision rules
def test_apply_rule_kinds():
    probabilities = np.zeros((2, G))
    probabilities[0, [0, 1, 2]] = [0.9, 0.4, 0.3]
    probabilities[1, [3, 4]] = [0.35, 0.2]
    assert rules.apply_rule(probabilities, {"kind": "global", "threshold": 0.35})[:, :5].tolist() == [
        [1, 1, 0, 0, 0], [0, 0, 0, 1, 0]]
    thresholds = [0.5] * G
    thresholds[2] = 0.3
    assert rules.apply_rule(probabilities, {"kind": "per_genre", "thresholds": thresholds})[:, :5].tolist() == [
        [1, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    top2 = rules.apply_rule(probabilities, {"kind": "top_k", "k": 2})
    assert top2.sum(axis=1).tolist() == [2, 2] and top2[:, :5].tolist() == [[1, 1, 0, 0, 0], [0, 0, 0, 1, 1]]
    with pytest.raises(ValueError, match="1 thresholds for 25 genres"):
        rules.apply_rule(probabilities, {"kind": "per_genre", "thresholds": [0.5]})
    with pytest.raises(ValueError, match="unknown decision rule kind 'top'"):
        rules.apply_rule(probabilities, {"kind": "top", "k": 2})


def test_rules_decide_on_float64_values_and_give_int8_genres():
    """A float32 probability of 0.7 is 0.69999998807907 as float64: under 0.7 whether the threshold
    is global or a genre's own; ties in top-k go to the earlier genre, whatever the ties' layout."""
    just_under = np.full((1, G), np.float32(0.7))
    for rule in ({"kind": "global", "threshold": 0.7}, {"kind": "per_genre", "thresholds": [0.7] * G}):
        decided = rules.apply_rule(just_under, rule)
        assert decided.dtype == np.int8 and not decided.any(), rule
    tied = np.random.default_rng(0).integers(0, 3, (5, G)) / 4  # rows of 0, 0.25 and 0.5: many ties
    top3 = rules.apply_rule(tied, {"kind": "top_k", "k": 3})
    assert top3.dtype == np.int8
    for row, decided in zip(tied, top3):
        expected = sorted(range(G), key=lambda g: (-row[g], g))[:3]
        assert np.flatnonzero(decided).tolist() == sorted(expected)


def test_a_genre_with_one_positive_film_is_present():
    labels = np.zeros((4, G), dtype=np.int8)
    labels[0, 3] = 1
    labels[:2, 5] = 1
    assert rules.present_genres(labels).tolist() == [3, 5]


def test_f1_over_a_threshold_grid_is_scikit_learns_bit_for_bit():
    rng = np.random.default_rng(3)
    labels = (rng.random((60, G)) < 0.2).astype(np.int8)
    labels[:, 4] = 0  # a genre without a positive film: out of the macro average
    probabilities = rng.random((60, G))
    grid = np.array([0.05, 0.5, 0.97, 1.1])  # the last one predicts nothing: F1 0, not a division by zero
    decisions = probabilities[None] >= grid[:, None, None]
    present = np.flatnonzero(labels.sum(axis=0))
    references = {
        "micro": lambda predicted: f1_score(labels, predicted, average="micro", zero_division=0),
        "macro": lambda predicted: f1_score(labels[:, present], predicted[:, present], average="macro",
                                            zero_division=0),
        "per_genre": lambda predicted: f1_score(labels, predicted, average=None, zero_division=0),
    }
    for objective, reference in references.items():
        scores = rules.f1_over(labels, decisions, objective)
        assert scores.shape[0] == len(grid)
        for index in range(len(grid)):
            np.testing.assert_array_equal(scores[index], reference(decisions[index]))
    assert rules.micro_f1(labels, decisions[1]) == references["micro"](decisions[1])
    assert rules.macro_f1(labels, decisions[1]) == references["macro"](decisions[1])
    with pytest.raises(ValueError, match="weighted"):
        rules.f1_over(labels, decisions, "weighted")


def test_top2_is_chosen_when_the_two_most_probable_genres_are_always_right():
    """No threshold (global or per genre) separates these films; their top 2 always does."""
    rng = np.random.default_rng(0)
    n = 40
    labels = np.zeros((n, G), dtype=np.int8)
    probabilities = rng.uniform(0.0, 0.05, (n, G))
    for film in range(n):
        scale = 0.2 if film % 2 else 0.9  # quiet and loud films: the same genre is high in one, low in other
        true = rng.choice(4, size=2, replace=False)
        labels[film, true] = 1
        probabilities[film, true] = scale * rng.uniform(0.8, 1.0, 2)
        probabilities[film, [g for g in range(4) if g not in true]] = scale * rng.uniform(0.5, 0.7, 2)
    rule, candidates = rules.choose_rule(probabilities, labels)
    assert rule == {"kind": "top_k", "k": 2}
    scores = {json.dumps(c["rule"]): c["val_f1_micro"] for c in candidates}
    assert scores[json.dumps(rule)] == 1.0
    assert sum(score == 1.0 for score in scores.values()) == 1  # the only perfect candidate
    assert f1_score(labels, rules.apply_rule(probabilities, rule), average="micro") == 1.0


def test_a_global_threshold_of_0_3_is_chosen_when_it_alone_separates():
    """Positives have 0.30 or more, negatives 0.29 or less; films have 1 to 3 genres, so top-k
    cannot be perfect, and 0.30 is the only grid threshold with a perfect micro-F1."""
    rng = np.random.default_rng(1)
    n = 60
    labels = np.zeros((n, G), dtype=np.int8)
    for film in range(n):
        labels[film, rng.choice(6, size=1 + film % 3, replace=False)] = 1
    probabilities = np.where(labels == 1, rng.uniform(0.30, 0.95, (n, G)), rng.uniform(0.0, 0.29, (n, G)))
    probabilities[0, labels[0] == 1] = 0.30  # the lowest positive ...
    probabilities[0, np.flatnonzero(labels[0] == 0)[0]] = 0.29  # ... and the highest negative
    rule, candidates = rules.choose_rule(probabilities, labels)
    assert rule == {"kind": "global", "threshold": 0.3}
    assert candidates[0]["val_f1_micro"] == 1.0
    assert all(c["val_f1_micro"] < 1.0 for c in candidates if c["rule"]["kind"] == "top_k")


def test_per_genre_thresholds_win_when_genres_are_calibrated_differently():
    rng = np.random.default_rng(2)
    n = 80
    labels = (rng.uniform(size=(n, 2)) < 0.4).astype(np.int8)
    labels[labels.sum(axis=1) == 0, 0] = 1
    full = np.zeros((n, G), dtype=np.int8)
    full[:, :2] = labels
    probabilities = np.zeros((n, G))
    # Genre 0 separates at 0.70 (negatives up to 0.6), genre 1 at 0.20 (negatives up to 0.1).
    probabilities[:, 0] = np.where(labels[:, 0] == 1, rng.uniform(0.7, 0.9, n), rng.uniform(0.3, 0.6, n))
    probabilities[:, 1] = np.where(labels[:, 1] == 1, rng.uniform(0.2, 0.29, n), rng.uniform(0.0, 0.1, n))
    rule, candidates = rules.choose_rule(probabilities, full)
    assert rule["kind"] == "per_genre"
    low0, high0 = probabilities[labels[:, 0] == 0, 0].max(), probabilities[labels[:, 0] == 1, 0].min()
    low1, high1 = probabilities[labels[:, 1] == 0, 1].max(), probabilities[labels[:, 1] == 1, 1].min()
    assert low0 < rule["thresholds"][0] <= high0 and low1 < rule["thresholds"][1] <= high1
    assert f1_score(full, rules.apply_rule(probabilities, rule), average="micro") == 1.0
    assert max(c["val_f1_micro"] for c in candidates if c["rule"]["kind"] != "per_genre") < 1.0


def _rare_genre_case(n=80, rare=4, seed=3):
    """Genre 0 on half the films, separable at 0.5; genre 1 on ``rare`` films, whose probabilities
    (0.2-0.3) sit below genre 0's negatives (up to 0.4) but above genre 1's own (up to 0.1)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, G), dtype=np.int8)
    labels[: n // 2, 0] = 1
    labels[n // 2: n // 2 + rare, 1] = 1
    probabilities = np.zeros((n, G))
    probabilities[:, 0] = np.where(labels[:, 0] == 1, rng.uniform(0.6, 0.9, n), rng.uniform(0.0, 0.4, n))
    probabilities[:, 1] = np.where(labels[:, 1] == 1, rng.uniform(0.2, 0.3, n), rng.uniform(0.0, 0.1, n))
    return probabilities, labels


def test_the_macro_rule_recovers_a_rare_genre_the_micro_rule_drops():
    probabilities, labels = _rare_genre_case()
    micro, _ = rules.choose_rule(probabilities, labels)
    macro, candidates = rules.choose_rule(probabilities, labels, objective="macro")
    per_genre = {name: f1_score(labels, rules.apply_rule(probabilities, rule), average=None, zero_division=0)
                 for name, rule in (("micro", micro), ("macro", macro))}
    assert per_genre["micro"][0] == 1.0 and per_genre["micro"][1] == 0.0  # 4 films: not worth it for micro-F1
    assert per_genre["macro"][0] == 1.0 and per_genre["macro"][1] == 1.0
    assert macro["kind"] == "per_genre" and macro["shrinkage"] == rules.SHRINKAGE
    assert all("val_f1_macro" in c for c in candidates)
    assert max(c["val_f1_macro"] for c in candidates) == rules.macro_f1(labels, rules.apply_rule(probabilities, macro))


def test_shrinkage_pulls_thresholds_of_rare_genres_towards_the_global_one():
    own, support = [0.8, 0.8, 0.8, 0.2, 0.8, 0.8], [0, 10, 990, 10, 1, 7]
    shrunk = rules.shrunk_thresholds(own, support, 0.4, shrinkage=10)
    # unseen: global; n = k: halfway; many: nearly own; n = 1 and 7: 1/11 and 7/17 of the way, to 4 places
    assert shrunk == [0.4, 0.6, 0.796, 0.3, 0.4364, 0.5647]
    assert rules.shrunk_thresholds(own, support, 0.4, shrinkage=0) == [0.4, 0.8, 0.8, 0.2, 0.8, 0.8]


def test_the_micro_rules_own_thresholds_need_five_validation_films():
    """Genre 1 (30 films) separates only at 0.30, the best global threshold; genres 0 (5 films) and
    2 (4 films) only at 0.70. The per-genre candidate keeps 0.70 for the genre with 5 films and
    gives the one with 4 the global 0.30."""
    labels = np.zeros((40, G), dtype=np.int8)
    labels[:30, 1] = 1
    labels[30:34, 2] = 1
    labels[35:, 0] = 1
    probabilities = np.zeros((40, G))
    probabilities[:, 1] = np.where(labels[:, 1] == 1, 0.30, 0.29)
    for genre in (0, 2):
        probabilities[:, genre] = np.where(labels[:, genre] == 1, 0.70, 0.69)
    rule, candidates = rules.choose_rule(probabilities, labels)
    assert candidates[0]["rule"] == {"kind": "global", "threshold": 0.3}
    per_genre = candidates[-1]["rule"]
    assert per_genre["thresholds"] == [0.7, 0.3, 0.3] + [0.3] * (G - 3) and per_genre["min_positives"] == 5


def test_ties_are_scores_equal_to_1e_12_and_the_middle_of_the_plateau_wins():
    assert rules.middle_best([0.5, 0.5, 0.5]) == 1 and rules.middle_best([0.1, 0.5, 0.5, 0.2]) == 2
    assert rules.middle_best([0.5 + 1e-7, 0.5, 0.5]) == 0  # not a tie: 1e-7 apart (no relative tolerance)
    assert rules.middle_best([0.5 + 1e-10, 0.5, 0.5]) == 0
    assert rules.middle_best([0.5 + 1e-13, 0.5, 0.5]) == 1


def test_the_macro_rules_thresholds_are_shrunk_by_n_over_n_plus_10():
    """Hand-computed: genre 0 (10 films) separates only at 0.30, genre 1 (30 films) only at 0.70,
    and 0.30 is the best global threshold for macro-F1 (0.929 against 0.5 at 0.70). Shrunk by
    n / (n + 10), genre 1 keeps 30/40 of its 0.70 and takes 10/40 of 0.30: 0.60; genre 0 and
    the empty genres stay at 0.30. Unshrunk, [0.30, 0.70] would separate both genres perfectly
    and win; shrunk, it ties with the global threshold, which (simpler) wins."""
    labels = np.zeros((40, G), dtype=np.int8)
    labels[:10, 0] = 1
    labels[10:, 1] = 1
    probabilities = np.zeros((40, G))
    probabilities[:, 0] = np.where(labels[:, 0] == 1, 0.30, 0.29)
    probabilities[:, 1] = np.where(labels[:, 1] == 1, 0.70, 0.69)
    rule, candidates = rules.choose_rule(probabilities, labels, objective="macro")
    per_genre = [c for c in candidates if c["rule"]["kind"] == "per_genre"][0]
    assert per_genre["rule"]["thresholds"] == [0.3, 0.6] + [0.3] * (G - 2)
    assert per_genre["val_f1_macro"] == pytest.approx((1 + 60 / 70) / 2, abs=1e-12)
    assert rule == {"kind": "global", "threshold": 0.3}
    unshrunk, candidates = rules.choose_rule(probabilities, labels, objective="macro", shrinkage=0)
    assert unshrunk == {"kind": "per_genre", "thresholds": [0.3, 0.7] + [0.3] * (G - 2), "shrinkage": 0}
    assert candidates[-1]["val_f1_macro"] == 1.0


def test_genres_without_positive_films_are_left_out_of_macro_averages_and_named():
    rng = np.random.default_rng(3)
    n = 50
    labels = np.zeros((n, G), dtype=np.int8)
    labels[:, :3] = rng.uniform(size=(n, 3)) < 0.5
    labels[labels.sum(axis=1) == 0, 0] = 1
    probabilities = rng.uniform(size=(n, G))
    predicted = (probabilities >= 0.5).astype(np.int8)  # many false positives in the empty genres
    metrics = scores.compute_metrics(labels, predicted, probabilities)
    assert metrics["excluded_genres"] == GENRES[3:]
    per_class = f1_score(labels, predicted, average=None, zero_division=0)
    assert metrics["f1_macro"] == pytest.approx(per_class[:3].mean(), abs=1e-12)
    assert metrics["f1_macro"] > f1_score(labels, predicted, average="macro", zero_division=0)  # 25-genre mean
    assert metrics["average_precision_macro"] == pytest.approx(
        np.mean([average_precision_score(labels[:, g], probabilities[:, g]) for g in range(3)]), abs=1e-12)
    assert metrics["roc_auc_macro"] == pytest.approx(
        np.mean([roc_auc_score(labels[:, g], probabilities[:, g]) for g in range(3)]), abs=1e-12)
    # micro still counts the false positives in the empty genres
    assert metrics["precision_micro"] == (labels & predicted).sum() / predicted.sum()
    table = scores.per_genre_table(labels, predicted, probabilities)
    assert table["average_precision"].isna().tolist() == [False] * 3 + [True] * (G - 3)


def test_confusion_tables_count_and_normalise():
    labels = np.zeros((4, G), dtype=np.int8)
    predicted = np.zeros((4, G), dtype=np.int8)
    labels[:, 0] = [1, 1, 0, 0]
    labels[:, 1] = [0, 1, 1, 1]
    predicted[:, 0] = [1, 0, 1, 0]
    predicted[:, 1] = [1, 1, 0, 0]
    per_genre, matrix = scores.confusion_tables(labels, predicted)
    assert per_genre.loc[0, ["tn", "fp", "fn", "tp"]].tolist() == [1, 1, 1, 1]
    assert per_genre.loc[1, ["tn", "fp", "fn", "tp"]].tolist() == [0, 1, 2, 1]
    matrix = matrix.set_index("genre")
    assert matrix.loc["Action", "Action"] == 0.5 and matrix.loc["Action", "Adventure"] == 1.0
    assert matrix.loc["Adventure", "Action"] == pytest.approx(1 / 3)  # films 1, 2, 3: only film 2 predicted Action
    assert matrix.loc["Adventure", "Adventure"] == pytest.approx(1 / 3)
    assert matrix.loc["Drama"].isna().all()


def test_unknown_or_untrained_names_are_refused(project):
    with pytest.raises(evaluate.EvaluateError, match="unknown model or baseline"):
        evaluate.evaluate_all(["no-such-model"], log=lambda *_: None)
    with pytest.raises(evaluate.EvaluateError, match="filmgenre train cnn"):
        evaluate.evaluate_all(["cnn"], log=lambda *_: None)


# --------------------------------------------------------------------------- stale results
def test_a_damaged_train_json_names_the_file_and_the_training_command(project):
    path = project / "results" / "cnn" / "train.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"training_films": 4')  # cut short
    with pytest.raises(artifacts.ArtifactError) as raised:
        evaluate.training_films("cnn")
    assert str(raised.value) == ("results/cnn/train.json: not valid JSON at line 1 (truncated or edited?). "
                                 "Retrain it: `filmgenre train cnn` (or `make all`).")
    path.write_text('{"training_films": 4}')
    assert evaluate.training_films("cnn") == 4 and evaluate.training_films("lstm") is None


def test_stale_detects_a_changed_split_and_baseline(trainable, monkeypatch):
    evaluate.evaluate_all(["prior"], log=lambda *_: None)
    assert provenance.stale() == {}
    splits_csv = trainable / "data" / "splits.csv"
    split = pd.read_csv(splits_csv, dtype=str)
    first_val, first_test = split.index[split["split"] == "val"][0], split.index[split["split"] == "test"][0]
    split.loc[[first_val, first_test], "split"] = ["test", "val"]  # one film swapped between val and test
    split.to_csv(splits_csv, index=False)
    assert provenance.stale() == {"prior": ["data/splits.csv changed"]}

    evaluate.evaluate_all(["prior"], log=lambda *_: None)  # re-evaluating makes it current again
    assert provenance.stale() == {}
    from filmgenre import baselines

    changed = baselines.Baseline(baselines.prior, "labels", "changed", {"smoothing": 1})
    with monkeypatch.context() as patch:
        patch.setitem(baselines.BASELINES, "prior", changed)
        assert provenance.stale() == {"prior": ["the parameters of baseline prior changed"]}
    assert provenance.stale() == {}
    (trainable / "results" / "prior" / "predictions.csv").unlink()
    assert provenance.stale() == {"prior": ["results/prior/predictions.csv is missing"]}


def test_a_committed_result_of_a_model_make_all_does_not_train_is_named_apart_not_stale(project):
    entry = {"kind": "model", "provenance": {"inputs": {"models/x.keras": "0" * 64}}}
    metrics = {"models": {"poster_cnn": entry, "cnn": entry, "prior": {**entry, "kind": "baseline"}}}
    assert provenance.committed_only(metrics) == ["poster_cnn"]
    stale = provenance.stale(metrics)
    assert "poster_cnn" not in stale and "cnn" in stale  # cnn is retrained by make all: its absence is staleness
    (project / "models").mkdir()
    (project / "models" / "poster_cnn.keras").write_bytes(b"trained here")  # `make extras` ran: checked as usual
    assert provenance.committed_only(metrics) == [] and "poster_cnn" in provenance.stale(metrics)


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def evaluated(evaluated_tiny):
    """A scratch project with the spec CNN and LSTM trained for one epoch, then `evaluate_all`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", evaluated_tiny[0])
        yield evaluated_tiny


def _split_labels(root):
    films = pd.read_csv(root / "data/processed/films.csv", dtype={"Id": str, "split": str})
    splits = pd.read_csv(root / "data/splits.csv", dtype=str)
    return films.drop(columns="split").merge(splits, on="Id").set_index("Id")


def _rows(root, name, split):
    predictions = pd.read_csv(root / "results" / name / "predictions.csv", dtype={"Id": str})
    return predictions[predictions["split"] == split]


def described(found):
    """A rule (or a list of candidates) as metrics.json records it: with its description, for the report."""
    if isinstance(found, list):
        return [candidate | {"rule": described(candidate["rule"])} for candidate in found]
    return found | {"description": rules.describe_rule(found)}


def test_metrics_json_matches_metrics_recomputed_from_the_written_files(evaluated):
    root, metrics, lines = evaluated
    assert json.loads((root / "results/metrics.json").read_text()) == metrics
    assert list(metrics["models"]) == ["cnn", "lstm", "prior", "tfidf_logreg", "poster_histogram"]
    films = _split_labels(root)
    for name, entry in metrics["models"].items():
        predictions = pd.read_csv(root / "results" / name / "predictions.csv", dtype={"Id": str})
        assert list(predictions.columns) == ["Id", "split", *GENRES]
        assert (predictions["split"].to_numpy() == films.loc[predictions["Id"], "split"].to_numpy()).all()
        for split in ("val", "test"):
            rows = _rows(root, name, split)
            expected = films[(films["split"] == split) & (films["has_poster"] == 1)].index
            assert rows["Id"].tolist() == expected.tolist()  # the same films, in the same order, for every model
            labels = films.loc[rows["Id"], GENRES].to_numpy().astype(int)
            probabilities = rows[GENRES].to_numpy()
            present = labels.sum(axis=0) > 0
            assert entry[split]["excluded_genres"] == [g for g, p in zip(GENRES, present) if not p]
            for section, rule in ((split, entry["rule"]), (f"{split}_at_0.5", {"kind": "global", "threshold": 0.5})):
                predicted = rules.apply_rule(probabilities, rule)
                recorded = entry[section]
                assert recorded["films"] == len(rows)
                for average in ("micro", "samples"):
                    p, r, f, _ = precision_recall_fscore_support(labels, predicted, average=average, zero_division=0)
                    assert (recorded[f"precision_{average}"], recorded[f"recall_{average}"],
                            recorded[f"f1_{average}"]) == (p, r, f), (name, section, average)
                for average in ("macro", "weighted"):
                    p, r, f, _ = precision_recall_fscore_support(labels[:, present], predicted[:, present],
                                                                 average=average, zero_division=0)
                    assert (recorded[f"precision_{average}"], recorded[f"recall_{average}"],
                            recorded[f"f1_{average}"]) == pytest.approx((p, r, f), abs=1e-12), (name, section)
                assert recorded["average_precision_macro"] == pytest.approx(average_precision_score(
                    labels[:, present], probabilities[:, present], average="macro"), abs=1e-12)
                assert recorded["roc_auc_macro"] == pytest.approx(roc_auc_score(
                    labels[:, present], probabilities[:, present], average="macro"), abs=1e-12)
        # the rule was chosen on validation: recomputing the choice gives the recorded rule
        val = _rows(root, name, "val")
        val_labels = films.loc[val["Id"], GENRES].to_numpy().astype(int)
        rule, candidates = rules.choose_rule(val[GENRES].to_numpy(), val_labels)
        assert described(rule) == entry["rule"] and described(candidates) == entry["rule_candidates"]
        assert entry["val"]["f1_micro"] == max(c["val_f1_micro"] for c in candidates)
        assert entry["excluded_genres"] == entry["test"]["excluded_genres"]
        assert len(entry["excluded_genres"]) == 21  # the tiny dataset has 4 genres
        assert entry["films"]["val"] == len(val) and entry["films"]["test"] == len(_rows(root, name, "test"))
        inputs = entry["provenance"]["inputs"]
        assert inputs["data/splits.csv"] == files.sha256(root / "data/splits.csv")
        if entry["kind"] == "model":
            assert inputs[f"models/{name}.keras"] == files.sha256(root / "models" / f"{name}.keras")
    assert provenance.stale() == {}
    assert any(line.startswith("cnn: rule") for line in lines) and any("lstm" in line for line in lines)


def test_per_genre_and_confusion_files_match_the_test_predictions(evaluated):
    root, metrics, _ = evaluated
    films = _split_labels(root)
    for name, entry in metrics["models"].items():
        rows = _rows(root, name, "test")
        labels = films.loc[rows["Id"], GENRES].to_numpy().astype(int)
        probabilities = rows[GENRES].to_numpy()
        predicted = rules.apply_rule(probabilities, entry["rule"])
        table = pd.read_csv(root / "results" / name / "per_genre.csv", keep_default_na=False, na_values=[""])
        assert table["genre"].tolist() == GENRES
        assert table["support"].tolist() == labels.sum(axis=0).tolist()
        p, r, f, _ = precision_recall_fscore_support(labels, predicted, average=None, zero_division=0)
        np.testing.assert_allclose(table[["precision", "recall", "f1"]].to_numpy(), np.column_stack([p, r, f]),
                                   atol=1e-12)
        for g, genre in enumerate(GENRES):
            if labels[:, g].any():
                assert table.loc[g, "average_precision"] == pytest.approx(
                    average_precision_score(labels[:, g], probabilities[:, g]), abs=1e-12)
            else:
                assert np.isnan(table.loc[g, "average_precision"])
        counts = pd.read_csv(root / "results" / name / "confusion_per_genre.csv", keep_default_na=False)
        assert counts["tp"].tolist() == ((labels == 1) & (predicted == 1)).sum(axis=0).tolist()
        assert counts["fp"].tolist() == ((labels == 0) & (predicted == 1)).sum(axis=0).tolist()
        assert counts["fn"].tolist() == ((labels == 1) & (predicted == 0)).sum(axis=0).tolist()
        assert counts["tn"].tolist() == ((labels == 0) & (predicted == 0)).sum(axis=0).tolist()
        matrix = pd.read_csv(root / "results" / name / "confusion_genres.csv", keep_default_na=False,
                             na_values=[""]).set_index("genre")
        assert list(matrix.index) == GENRES and list(matrix.columns) == GENRES
        for g, genre in enumerate(GENRES):
            if labels[:, g].any():
                np.testing.assert_allclose(matrix.loc[genre].to_numpy(), predicted[labels[:, g] == 1].mean(axis=0))
            else:
                assert matrix.loc[genre].isna().all()


def test_samples_cover_the_four_buckets_and_agreement_counts_them(evaluated):
    root, metrics, _ = evaluated
    films = _split_labels(root)
    cnn, lstm = _rows(root, "cnn", "test"), _rows(root, "lstm", "test")
    labels = films.loc[cnn["Id"], GENRES].to_numpy()
    right = {}
    for name, rows in (("cnn", cnn), ("lstm", lstm)):
        top = rows[GENRES].to_numpy().argmax(axis=1)
        right[name] = labels[np.arange(len(top)), top] == 1
    expected = {"both right": right["cnn"] & right["lstm"], "only cnn right": right["cnn"] & ~right["lstm"],
                "only lstm right": ~right["cnn"] & right["lstm"], "both wrong": ~right["cnn"] & ~right["lstm"]}
    agreement = metrics["agreement"]["cnn_vs_lstm"]
    assert agreement["counts"] == {bucket: int(mask.sum()) for bucket, mask in expected.items()}
    assert agreement["films"] == len(cnn) == sum(agreement["counts"].values())
    samples = pd.read_csv(root / "results/samples.csv", dtype=str, keep_default_na=False)
    assert list(samples.columns) == ["Id", "bucket", "overview", "true_genres", "cnn_top3", "lstm_top3"]
    ids = cnn["Id"].tolist()
    for bucket, mask in expected.items():
        chosen = samples[samples["bucket"] == bucket]
        assert len(chosen) == min(2, mask.sum())
        for _, film in chosen.iterrows():
            assert mask[ids.index(film["Id"])]
            assert film["true_genres"] == ", ".join(g for g in GENRES if films.loc[film["Id"], g] == 1)
            assert film["overview"] == films.loc[film["Id"], "Overview"]
            assert len(film["cnn_top3"].split(", ")) == 3
    # deterministic: the same films again
    again = compare.sample_films("cnn", "lstm")
    assert again["Id"].tolist() == samples["Id"].tolist()


def test_the_macro_rule_and_its_per_genre_scores_are_recorded(evaluated):
    root, metrics, _ = evaluated
    films = _split_labels(root)
    for name, entry in metrics["models"].items():
        val, test = _rows(root, name, "val"), _rows(root, name, "test")
        rule, candidates = rules.choose_rule(val[GENRES].to_numpy(), films.loc[val["Id"], GENRES].to_numpy(),
                                                objective="macro")
        assert described(rule) == entry["macro_rule"] and described(candidates) == entry["macro_rule_candidates"]
        labels = films.loc[test["Id"], GENRES].to_numpy().astype(int)
        predicted = rules.apply_rule(test[GENRES].to_numpy(), rule)
        present = labels.sum(axis=0) > 0
        assert entry["test_macro_rule"]["f1_macro"] == pytest.approx(
            f1_score(labels[:, present], predicted[:, present], average="macro", zero_division=0), abs=1e-12)
        table = pd.read_csv(root / "results" / name / "per_genre.csv", keep_default_na=False, na_values=[""])
        np.testing.assert_allclose(table["f1_macro_rule"], f1_score(labels, predicted, average=None, zero_division=0))
        assert entry["macro_rule_recovers"] == table.loc[(table["f1"] == 0) & (table["f1_macro_rule"] > 0),
                                                         "genre"].tolist()


def test_rules_never_read_the_test_films(evaluated, tmp_path_factory):
    """The same project with noise for every test label and test prediction: rescoring it gives
    the very same micro and macro rules, candidates and validation scores."""
    root, metrics, _ = evaluated
    noisy = copy_project(root, tmp_path_factory, "noisy_test")
    noisy_test_split(noisy)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", noisy)
        rescored = evaluate.rescore_all(log=lambda *_: None)
    chosen = ("rule", "rule_candidates", "macro_rule", "macro_rule_candidates", "val", "val_macro_rule", "val_at_0.5")
    for name, entry in metrics["models"].items():
        for key in chosen:
            assert rescored["models"][name][key] == entry[key], (name, key)
        assert rescored["models"][name]["test"] != entry["test"], name  # the noise did reach the test scores


def test_intervals_and_comparisons_are_added_for_every_entry(evaluated):
    from filmgenre import uncertainty

    root, _, _ = evaluated
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", root)
        metrics = uncertainty.add_to_metrics(resamples=50, log=lambda *_: None)
    assert json.loads((root / "results/metrics.json").read_text()) == metrics
    for entry in metrics["models"].values():
        for section in uncertainty.SECTIONS:
            for metric in uncertainty.METRICS:
                low, high = entry["intervals"][section][metric]
                assert 0 <= low <= high <= 1
    assert list(metrics["comparisons"]) == ["cnn_vs_poster_histogram", "lstm_vs_tfidf_logreg", "cnn_vs_prior",
                                            "lstm_vs_prior", "lstm_vs_cnn"]
    assert set(metrics["comparisons"]["lstm_vs_cnn"]["per_genre"]) == set(metrics["bootstrap"]["macro_genres"])
    for entry in metrics["models"].values():
        assert entry["val"]["cross_entropy"] > 0 and entry["rule_transfer"]["gap"] >= -1e-9
        assert set(entry["calibration"]["ece_per_genre"]) == set(metrics["bootstrap"]["macro_genres"])
    top1 = metrics["agreement"]["cnn_vs_lstm"]["top1_test"]
    counts = metrics["agreement"]["cnn_vs_lstm"]["counts"]
    assert (top1["only_a_right"], top1["only_b_right"]) == (counts["only cnn right"], counts["only lstm right"])
    difference = metrics["comparisons"]["lstm_vs_cnn"]["test"]["f1_micro"]
    expected = metrics["models"]["lstm"]["test"]["f1_micro"] - metrics["models"]["cnn"]["test"]["f1_micro"]
    assert difference["difference"] == pytest.approx(expected, abs=1e-6)
    assert metrics["bootstrap"]["resamples"] == 50


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_ZIP.exists(), reason=f"real dataset not at {REAL_ZIP}")
def test_committed_metrics_recompute_from_committed_predictions_and_real_labels():
    """Every test number in results/metrics.json follows from the committed predictions, the
    committed split, the dataset's labels and the recorded rule: nothing was typed by hand."""
    import zipfile

    repo = REPO
    with zipfile.ZipFile(REAL_ZIP) as bundle:
        with bundle.open(f"Multimodal_IMDB_dataset/{config.CSV_NAME}") as handle:
            labels = pd.read_csv(handle, dtype={"Id": str}, keep_default_na=False).set_index("Id")[config.GENRES]
    split = pd.read_csv(repo / "data" / "splits.csv", dtype=str).set_index("Id")["split"]
    recorded = json.loads((repo / "results" / "metrics.json").read_text())["models"]
    assert {"cnn", "lstm", "prior", "tfidf_logreg", "fusion"} <= set(recorded)
    for name, entry in recorded.items():
        predictions = pd.read_csv(repo / "results" / name / "predictions.csv", dtype={"Id": str, "split": str},
                                  keep_default_na=False)
        test = predictions[predictions["split"] == "test"]
        assert (split.loc[test["Id"]] == "test").all(), name
        truth = labels.loc[test["Id"]].to_numpy().astype(int)
        probabilities = test[config.GENRES].to_numpy(dtype=float)
        again = scores.compute_metrics(truth, rules.apply_rule(probabilities, entry["rule"]), probabilities)
        for key in ("f1_micro", "f1_macro", "f1_samples", "average_precision_macro"):
            assert again[key] == pytest.approx(entry["test"][key], abs=1e-12), (name, key)


def test_a_model_removed_from_the_registry_leaves_metrics_the_fusion_and_the_comparisons(
        evaluated_tiny, tmp_path_factory, monkeypatch):
    from filmgenre import fusion, registry, uncertainty

    root = copy_project(evaluated_tiny[0], tmp_path_factory, "removed")
    monkeypatch.setattr(config, "ROOT", root)
    fusion.fuse_best(log=lambda *_: None)
    assert {"lstm", "fusion"} <= set(artifacts.read_metrics()["models"])

    # the entry removed, its model file left behind, as after a user's edit (a new dict: the registry's order is kept)
    monkeypatch.setattr(registry, "MODELS", {name: spec for name, spec in registry.MODELS.items() if name != "lstm"})
    lines = []
    evaluate.evaluate_all(["cnn", "prior"], log=lines.append)
    fusion.fuse_best(log=lines.append)
    uncertainty.add_to_metrics(resamples=20, log=lambda *_: None)
    metrics = artifacts.read_metrics()
    assert "lstm" not in metrics["models"] and "fusion" not in metrics["models"]  # no text model left to fuse
    assert "cnn_vs_lstm" not in metrics.get("agreement", {}) and not (root / "results" / "lstm").exists()
    assert "lstm: no longer in the registry; its entry and results/lstm/ are removed." in lines
    assert "lstm" not in provenance.stale(metrics) and fusion.best_member(metrics, "overviews") is None
