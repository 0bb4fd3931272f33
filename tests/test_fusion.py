import numpy as np

from conftest import copy_project, noisy_test_split
from filmgenre import config, fusion


def test_weight_selection_finds_the_informative_model():
    """Posters know genre 0, texts know genre 1: only a mix gets both, and 0.5 is the best mix."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (200, 2))
    labels[labels.sum(axis=1) == 0, 0] = 1
    noise = rng.random((200, 2)) * 0.2
    poster = np.column_stack([labels[:, 0] * 0.8 + noise[:, 0], np.full(200, 0.5)])
    text = np.column_stack([np.full(200, 0.5), labels[:, 1] * 0.8 + noise[:, 1]])
    weight, scores = fusion.choose_weight(poster, text, labels)
    assert weight == 0.5
    by_weight = {s["weight"]: s["val_f1_micro"] for s in scores}
    assert by_weight[0.5] == 1.0 and by_weight[0.0] < 1.0 and by_weight[1.0] < 1.0
    assert len(scores) == len(fusion.WEIGHTS)


def test_a_useless_poster_model_gets_no_weight():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, (300, 3))
    text = np.clip(labels * 0.7 + rng.random((300, 3)) * 0.3, 0, 1)
    poster = rng.random((300, 3))
    weight, scores = fusion.choose_weight(poster, text, labels)
    # Text alone separates every genre; the noise surely stays harmless while w < 0.4 (1 - w).
    assert weight < 0.29
    assert all(s["val_f1_micro"] == 1.0 for s in scores if s["weight"] < 0.28)
    assert scores[-1]["weight"] == 1.0 and scores[-1]["val_f1_micro"] < 0.8  # posters alone: chance


def test_best_member_is_chosen_on_validation_not_test():
    metrics = {"models": {
        "a": {"kind": "model", "reads": "posters", "val": {"f1_micro": 0.5}, "test": {"f1_micro": 0.1}},
        "b": {"kind": "model", "reads": "posters", "val": {"f1_micro": 0.4}, "test": {"f1_micro": 0.9}},
        "t": {"kind": "model", "reads": "overviews", "val": {"f1_micro": 0.6}, "test": {"f1_micro": 0.6}},
        "tfidf": {"kind": "baseline", "reads": "overviews", "val": {"f1_micro": 0.9}, "test": {"f1_micro": 0.9}},
    }}
    assert fusion.best_member(metrics, "posters", seeds={}) == "a"
    assert fusion.best_member(metrics, "overviews", seeds={}) == "t"  # baselines are not fusion members
    metrics["models"]["effnet"] = {"kind": "model", "reads": "poster_features", "val": {"f1_micro": 0.55},
                                   "test": {"f1_micro": 0.0}}
    assert fusion.best_member(metrics, "posters") == "effnet"  # pretrained poster features read posters too
    metrics["models"]["minilm"] = {"kind": "model", "reads": "overview_features", "val": {"f1_micro": 0.65},
                                   "test": {"f1_micro": 0.0}}
    assert fusion.best_member(metrics, "overviews") == "minilm"
    assert fusion.best_member({"models": {"tfidf": metrics["models"]["tfidf"]}}, "overviews") is None
    assert fusion.best_member({}, "posters") is None  # nothing evaluated yet: no member, no error


def test_best_member_is_ranked_on_the_mean_over_its_seeds_not_one_lucky_run():
    metrics = {"models": {
        "lucky": {"kind": "model", "reads": "overview_features", "val": {"f1_micro": 0.62}, "test": {"f1_micro": 0.0}},
        "steady": {"kind": "model", "reads": "overviews", "val": {"f1_micro": 0.60}, "test": {"f1_micro": 0.0}},
    }}
    runs = lambda *scores: [{"seed": s, "val": {"f1_micro": v}, "test": {"f1_micro": 1.0}} for s, v in enumerate(scores, 1)]  # noqa: E731
    seeds = {"models": {"lucky": {"class_weight": False, "runs": runs(0.56, 0.57, 0.58)},  # mean 0.5825 with its 0.62
                        "steady": {"class_weight": False, "runs": runs(0.60, 0.59, 0.61)},  # mean 0.60
                        "steady+class_weight": {"class_weight": True, "runs": runs(0.10)}}}  # a variant: not a run
    assert fusion.best_member(metrics, "overviews", seeds={}) == "lucky"  # one run each
    assert fusion.best_member(metrics, "overviews", seeds=seeds) == "steady"


def test_models_that_make_all_does_not_train_are_never_members():
    metrics = {"models": {
        "cnn": {"kind": "model", "reads": "posters", "val": {"f1_micro": 0.5}},
        "poster_cnn": {"kind": "model", "reads": "posters", "val": {"f1_micro": 0.9}},  # `make extras` only
    }}
    assert fusion.best_member(metrics, "posters") == "cnn"


def test_the_fusion_never_reads_the_test_films(evaluated_tiny, tmp_path_factory, monkeypatch):
    """The evaluated tiny project, and a copy whose test labels and test predictions are noise:
    the same members, weight, score of every weight tried, rules and validation scores."""
    entries = {}
    for kind in ("clean", "noisy"):
        root = copy_project(evaluated_tiny[0], tmp_path_factory, kind)
        if kind == "noisy":
            noisy_test_split(root)
        monkeypatch.setattr(config, "ROOT", root)
        entries[kind] = fusion.fuse_best(log=lambda *_: None)
    clean, noisy = entries["clean"], entries["noisy"]
    assert (clean["fusion"]["poster"], clean["fusion"]["text"]) == ("cnn", "lstm")
    assert noisy["fusion"] == clean["fusion"]
    for key in ("rule", "rule_candidates", "macro_rule", "macro_rule_candidates", "val", "val_macro_rule"):
        assert noisy[key] == clean[key], key
    assert noisy["test"] != clean["test"]  # the noise did reach the test scores
