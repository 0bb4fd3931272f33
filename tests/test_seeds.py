import json
import shutil

import pytest

from conftest import copy_project, noisy_test_split
from filmgenre import FilmgenreError, config, predictions, seeds


def _entry(kind, reads, val):
    return {"kind": kind, "reads": reads, "val": {"f1_micro": val}}


def test_default_models_are_the_spec_models_and_the_best_by_validation():
    metrics = {"models": {"cnn": _entry("model", "posters", 0.4), "lstm": _entry("model", "overviews", 0.5),
                          "effnet_head": _entry("model", "poster_features", 0.55),
                          "glove_lstm": _entry("model", "overviews", 0.6),
                          "tfidf_logreg": _entry("baseline", "overviews", 0.9)}}
    assert seeds.default_models(metrics) == ["cnn", "lstm", "effnet_head", "glove_lstm"]
    metrics["models"]["glove_lstm"]["val"]["f1_micro"] = 0.1  # the spec LSTM is then the best text model
    assert seeds.default_models(metrics) == ["cnn", "lstm", "effnet_head"]
    metrics["models"] |= {"gmu": _entry("model", "poster_features+overview_features", 0.62),
                          "concat_fusion": _entry("model", "poster_features+overview_features", 0.63),
                          "fusion": _entry("derived", "posters+overviews", 0.7)}  # the late fusion trains nothing
    assert seeds.default_models(metrics) == ["cnn", "lstm", "effnet_head", "concat_fusion"]


def test_summary_is_mean_and_sample_sd_over_seeds():
    runs = [{"seed": s} | {section: {metric: v for metric in metrics} for section, metrics in seeds.REPORTED.items()}
            for s, v in ((1, 0.4), (2, 0.5), (3, 0.6))]
    summary = seeds.summarise(runs)
    assert summary["seeds"] == [1, 2, 3]
    assert summary["test"]["f1_micro"] == pytest.approx({"mean": 0.5, "sd": 0.1, "min": 0.4, "max": 0.6})


def test_a_seed_run_is_recorded_resumed_and_identical_when_retrained(trained_tiny, tmp_path_factory, monkeypatch):
    """Same machine, same seed: the same scores, whether trained by `filmgenre seeds` or by the
    project's own `train` (the session's ``trained_tiny`` ran it with ``config.SEED``, one epoch)."""
    root = copy_project(trained_tiny, tmp_path_factory, "seeds")
    monkeypatch.setattr(config, "ROOT", root)
    committed = (root / "models/cnn.keras").read_bytes()
    logs = []
    first = seeds.run(["cnn"], seeds=[config.SEED], epochs=1, log=logs.append)
    run = first["models"]["cnn"]["runs"][0]
    assert run["seed"] == config.SEED and run["epochs_run"] == 1 and 0 <= run["test"]["f1_micro"] <= 1
    assert (root / f"logs/seeds/cnn-seed{config.SEED}/models/cnn.keras").exists()
    assert (root / "models/cnn.keras").read_bytes() == committed  # never over the committed run
    assert json.loads((root / "results/seeds.json").read_text()) == first

    def no_training(*args, **kwargs):
        raise AssertionError("a recorded run must not be trained again")

    with monkeypatch.context() as patch:
        patch.setattr("filmgenre.train.train", no_training)
        assert seeds.run(["cnn"], seeds=[config.SEED], epochs=1, log=logs.append) == first
        assert any("already recorded" in line for line in logs)

        folder = seeds.run_folder("cnn", 7)  # the project's own run, scored as a seed run
        (folder / "models").mkdir(parents=True)
        shutil.copy(root / "models" / "cnn.keras", folder / "models" / "cnn.keras")
        shutil.copytree(root / "results" / "cnn", folder / "results" / "cnn")
        films = {split: predictions.evaluation_films(split) for split in predictions.SPLITS}
        again = seeds.score_run("cnn", 7, films)
    assert {**again, "seed": config.SEED} == run


def test_the_ensemble_scores_the_mean_of_the_runs_probabilities(project, monkeypatch):
    import numpy as np

    from filmgenre import registry

    probabilities = {1: np.array([[0.2, 0.9]]), 2: np.array([[0.4, 0.1]])}
    for seed in probabilities:
        path = registry.model_path("gmu", seeds.run_folder("gmu", seed))
        path.parent.mkdir(parents=True)
        path.touch()
    monkeypatch.setattr(seeds, "probabilities_of", lambda name, path, films: {
        split: probabilities[int(path.parent.parent.name[-1])] for split in seeds.SPLITS})
    monkeypatch.setattr(seeds, "scores_under_rules", lambda mean, films: {"mean": mean})
    averaged = seeds.ensemble("gmu", "gmu", [1, 2], films={})
    assert averaged["seeds"] == [1, 2]
    np.testing.assert_allclose(averaged["mean"]["test"], [[0.3, 0.5]])
    assert seeds.ensemble("gmu", "gmu", [1, 2, 3], films={}) is None  # seed 3's model is not here


def test_unknown_models_are_refused(project):
    with pytest.raises(FilmgenreError, match="unknown model"):
        seeds.run(["nope"])


def test_a_seed_runs_rules_and_validation_scores_never_read_the_test_films(trained_tiny, tmp_path_factory,
                                                                           monkeypatch):
    """A seed run scored on the tiny project, then with noise for every test film: the same rules
    and validation scores go into the summaries."""
    root = copy_project(trained_tiny, tmp_path_factory, "seeds_noisy")
    monkeypatch.setattr(config, "ROOT", root)
    folder = seeds.run_folder("cnn", 5)
    (folder / "models").mkdir(parents=True)
    shutil.copy(root / "models" / "cnn.keras", folder / "models" / "cnn.keras")
    shutil.copytree(root / "results" / "cnn", folder / "results" / "cnn")
    records = []
    for noisy in (False, True):
        if noisy:
            noisy_test_split(root)
        films = {split: predictions.evaluation_films(split) for split in predictions.SPLITS}
        records.append(seeds.score_run("cnn", 5, films))
    clean, noisy = records
    for section in ("val", "val_macro_rule"):
        assert noisy[section] == clean[section], section
    for section in ("test", "test_macro_rule"):
        assert noisy[section]["rule"] == clean[section]["rule"]
    assert noisy["test"] != clean["test"]


def test_the_late_fusion_over_seeds_chooses_each_weight_on_validation_and_scores_its_gain(monkeypatch):
    """Each seed's fusion of its members' runs: the weight is the validation choice (so noise in the
    test labels changes no weight) and the gain is the fused run's score minus the text run's."""
    import types

    import numpy as np

    from filmgenre import fusion

    rng = np.random.default_rng(0)
    labels = {split: (rng.random((n, 25)) < 0.15).astype(np.int8) for split, n in (("train", 4), ("val", 80), ("test", 120))}

    def member(seed, name):  # probabilities that carry some signal, differently per seed and member
        noise = np.random.default_rng(seed * 10 + len(name))
        return {split: predictions.quantise(np.clip(0.5 * labels[split] + 0.6 * noise.random(labels[split].shape), 0, 1))
                for split in predictions.SPLITS}

    monkeypatch.setattr(seeds, "evaluation_films", lambda split, image_size: types.SimpleNamespace(labels=labels[split]))
    monkeypatch.setattr(seeds, "trained_run", lambda name, seed: (name, seed))
    monkeypatch.setattr(seeds, "probabilities_of", lambda name, run, films: member(run[1], name))
    found = seeds.late_fusion("effnet_head", "minilm_head", [1, 2], log=lambda line: None)
    assert [run["seed"] for run in found["runs"]] == [1, 2]
    for run in found["runs"]:
        poster, text = member(run["seed"], "effnet_head"), member(run["seed"], "minilm_head")
        assert run["weight"] == fusion.choose_weight(poster["val"], text["val"], labels["val"])[0]
        films = {split: types.SimpleNamespace(labels=labels[split]) for split in predictions.SPLITS}
        alone = seeds.scores_under_rules(text, films)
        assert run["text"] == alone
        assert run["gain"]["test"]["f1_micro"] == pytest.approx(run["fusion"]["test"]["f1_micro"] - alone["test"]["f1_micro"])
    labels["test"] = rng.permutation(labels["test"])  # test labels scrambled: no weight may change
    noisy = seeds.late_fusion("effnet_head", "minilm_head", [1, 2], log=lambda line: None)
    assert [r["weight"] for r in noisy["runs"]] == [r["weight"] for r in found["runs"]]
    assert noisy["runs"][0]["fusion"]["test"] != found["runs"][0]["fusion"]["test"]
