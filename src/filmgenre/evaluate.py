"""Stage 4, `filmgenre evaluate`: from trained models and baselines to the report's numbers.

For every model (``models/<name>.keras``) and every baseline (``baselines.BASELINES``):

1. probabilities for the validation and test films -> ``results/<name>/predictions.csv``
   (``Id``, ``split``, one column per genre; rounded to 6 decimals, and every number
   below is computed from exactly the rounded values that file holds);
2. a decision rule chosen on validation only (``choose_rule``): the best global threshold
   of a grid, per-genre thresholds, or the top k genres (k = 1, 2, 3), whichever has the
   best validation micro-F1; ``apply_rule`` turns probabilities into 0/1 genres. A second
   rule (``macro_rule``) is chosen the same way for validation macro-F1, with per-genre
   thresholds shrunk towards the global one, and reported beside the first;
3. metrics with scikit-learn on validation and test (``compute_metrics``), also at the
   fixed 0.5 threshold the course used; genres with no positive film in the evaluated
   split are left out of the macro averages and named;
4. ``results/<name>/{per_genre,confusion_per_genre,confusion_genres,false_positives}.csv`` on test
   (and ``gate_per_genre.csv`` for a gated fusion, ``gates``);
5. ``results/metrics.json``: everything above plus provenance (SHA-256 of every input) so
   ``stale()`` can tell when a result no longer matches its model, data or split;
6. the CNN/LSTM comparison on test (``agreement``, ``sample_films``) -> ``results/samples.csv``.

``rescore_all`` redoes steps 2-5 from the written predictions alone (no model file), and
``uncertainty.add_to_metrics`` adds bootstrap intervals and paired differences. The registry
is the truth: entries of models no longer in ``registry.MODELS`` are dropped (``drop_removed``).

The parts live apart: decision rules in ``rules``, scores in ``scores``, prediction files in
``predictions``, provenance and staleness in ``provenance``, model pairs in ``compare``; this
module is the stage.

The evaluation set of a split is its films that have a poster: the same films for every
model, poster or text, so rows of the tables compare.
"""


import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from filmgenre import FilmgenreError, artifacts, baselines, compare, config, files, gates, registry
from filmgenre.dataset import Films
from filmgenre.predictions import SPLITS, aligned, evaluation_films, predictions_path, quantise, write_predictions
from filmgenre.provenance import EVALUATION_CODE, provenance, recorded_path
from filmgenre.rules import FIXED_RULE, apply_rule, choose_rule, describe_rule
from filmgenre.scores import compute_metrics, confusion_tables, false_positive_table, per_genre_table, ranking_metrics


class EvaluateError(FilmgenreError):
    """Nothing to evaluate, or inputs that do not fit together: the message says what to run."""


def predict_model(name: str, targets: Sequence[Films], path: Path | None = None) -> list[np.ndarray]:
    """Probabilities of the saved model ``models/<name>.keras`` (or ``path``) for each film set (order kept)."""
    from filmgenre import inputs  # TensorFlow: only where a model predicts

    spec = registry.spec(name)
    model = artifacts.load_model(name, path)
    return [inputs.predict(spec, model, films) for films in targets]


def drop_removed(metrics: dict, log=print) -> list[str]:
    """Drop the entries (and ``results/<name>/``) of models no longer in the registry, and the model
    comparisons that involve them: the registry is the truth. Returns the names dropped."""
    gone = [name for name, entry in metrics.get("models", {}).items()
            if entry["kind"] == "model" and name.split("-limit")[0] not in registry.MODELS]
    for name in gone:
        del metrics["models"][name]
        folder = config.paths().results / name
        if folder.is_dir():
            shutil.rmtree(folder)
        log(f"{name}: no longer in the registry; its entry and results/{name}/ are removed.")
    for pair, entry in list(metrics.get("agreement", {}).items()):
        if any(model in gone for model in entry["models"]):
            del metrics["agreement"][pair]
            compare.samples_path(*entry["models"]).unlink(missing_ok=True)
    return gone


def evaluate_predictions(name: str, films: dict[str, Films], probabilities: dict[str, np.ndarray],
                         training_films: int | None = None, derived: dict | None = None) -> dict:
    """Write ``name``'s predictions and tables; return its ``metrics.json`` entry.

    ``derived`` describes a result computed from other results rather than from a model
    file or a baseline (the fusion): its ``description``, ``reads`` and ``inputs``.
    """
    probabilities = {split: quantise(probabilities[split]) for split in SPLITS}
    for split in SPLITS:
        if probabilities[split].shape != films[split].labels.shape:
            raise EvaluateError(f"{name}: {probabilities[split].shape} probabilities for "
                                f"{films[split].labels.shape} {split} labels")
    write_predictions(name, films, probabilities)
    entry = {"kind": "baseline" if name in baselines.BASELINES else "derived" if derived else "model"}
    if derived:
        entry.update(description=derived["description"], reads=derived["reads"])
    elif name in baselines.BASELINES:
        entry.update(description=baselines.BASELINES[name].description, reads=baselines.BASELINES[name].reads)
    else:
        entry.update(description=registry.spec(name).description, reads=registry.spec(name).reads)
    entry.update(score(name, films, probabilities))
    entry["films"] = {"train": training_films, "val": len(films["val"].ids), "test": len(films["test"].ids)}
    entry["provenance"] = provenance(name, derived["inputs"] if derived else None)
    return entry


def score(name: str, films: dict[str, Films], probabilities: dict[str, np.ndarray]) -> dict:
    """Both decision rules chosen on validation, every metric under them, and the test tables.

    The micro rule (``rule``: best validation micro-F1) gives the headline scores (``val``,
    ``test``); the macro rule (``macro_rule``: best validation macro-F1, per-genre thresholds
    shrunk towards the global one) gives ``val_macro_rule`` and ``test_macro_rule``. The
    test tables of ``results/<name>/`` are under the micro rule, with the macro rule's
    per-genre precision, recall and F1 beside them.
    """
    labels = {split: films[split].labels.astype(np.int8) for split in SPLITS}
    rule, candidates = choose_rule(probabilities["val"], labels["val"])
    macro_rule, macro_candidates = choose_rule(probabilities["val"], labels["val"], objective="macro")
    for chosen in [rule, macro_rule, *(c["rule"] for c in candidates + macro_candidates)]:
        chosen.setdefault("description", describe_rule(chosen))  # so the report needs no code of ours
    entry = {"rule": rule, "rule_candidates": candidates,
             "macro_rule": macro_rule, "macro_rule_candidates": macro_candidates}
    ranking = {split: ranking_metrics(labels[split], probabilities[split]) for split in SPLITS}
    for suffix, chosen in (("", rule), ("_at_0.5", FIXED_RULE), ("_macro_rule", macro_rule)):
        for split in SPLITS:
            entry[f"{split}{suffix}"] = compute_metrics(labels[split], apply_rule(probabilities[split], chosen),
                                                        probabilities[split], ranking=ranking[split])
    entry["excluded_genres"] = entry["test"]["excluded_genres"]

    predicted = apply_rule(probabilities["test"], rule)
    table = per_genre_table(labels["test"], predicted, probabilities["test"])
    macro = per_genre_table(labels["test"], apply_rule(probabilities["test"], macro_rule), probabilities["test"])
    for column in ("precision", "recall", "f1"):
        table[f"{column}_macro_rule"] = macro[column]
    entry["macro_rule_recovers"] = table.loc[(table["f1"] == 0) & (table["f1_macro_rule"] > 0), "genre"].tolist()
    folder = config.paths().results / name
    files.write_csv(folder / "per_genre.csv", table)
    per_genre, genre_by_genre = confusion_tables(labels["test"], predicted)
    files.write_csv(folder / "confusion_per_genre.csv", per_genre)
    files.write_csv(folder / "confusion_genres.csv", genre_by_genre)
    files.write_csv(folder / "false_positives.csv", false_positive_table(labels["test"], predicted))
    return entry


def rescore_all(log=print) -> dict:
    """Recompute every entry of ``metrics.json`` from its committed ``predictions.csv``, no model needed.

    Rules, metrics and tables follow the current evaluation code; what each entry was
    evaluated from (its provenance, apart from this file's hash) stays as recorded, since
    the predictions are unchanged. The fusion is left to ``fusion.fuse_best``.
    """
    where = config.paths()
    metrics = artifacts.read_metrics()
    drop_removed(metrics, log)
    films = {split: evaluation_films(split) for split in SPLITS}
    for name, entry in metrics.get("models", {}).items():
        if entry["kind"] == "derived":
            continue
        probabilities = {split: aligned(name, films[split], split) for split in SPLITS}
        fresh = {key: entry[key] for key in ("kind", "description", "reads")} | score(name, films, probabilities)
        fresh["films"], fresh["provenance"] = entry["films"], entry["provenance"]
        code = {key: files.sha256_cached(recorded_path(key)) for key in EVALUATION_CODE}
        fresh["provenance"]["inputs"] = {key: sha for key, sha in fresh["provenance"]["inputs"].items()
                                         if not key.startswith("src/filmgenre/") or key in code} | code
        metrics["models"][name] = fresh
        log(f"{name}: rescored from {predictions_path(name).relative_to(where.root)}; test micro-F1 "
            f"{fresh['test']['f1_micro']:.3f}, macro-F1 {fresh['test']['f1_macro']:.3f} (macro rule "
            f"{fresh['test_macro_rule']['f1_macro']:.3f})")
    files.write_json(where.metrics, metrics)
    return metrics


def available_names() -> list[str]:
    """Trained models present (``models/<name>.keras``, smoke runs ``*-limit*`` left out), then baselines."""
    return registry.trained_models() + list(baselines.BASELINES)


def check_names(names: Sequence[str]) -> list[str]:
    for name in names:
        if name in baselines.BASELINES:
            continue
        if name.split("-limit")[0] not in registry.MODELS:
            raise EvaluateError(f"unknown model or baseline '{name}'. Models: {', '.join(registry.MODELS)}; "
                                f"baselines: {', '.join(baselines.BASELINES)}.")
        if not registry.model_path(name).exists():
            base = name.split("-limit")[0]
            limit = f" --limit {name.split('-limit')[1]}" if "-limit" in name else ""
            raise EvaluateError(f"{registry.model_path(name)}: not found. "
                                f"Run `filmgenre train {base}{limit}` first.")
    return list(names)


def training_films(name: str) -> int | None:
    path = config.paths().results / name / "train.json"
    summary = artifacts.read_json(path, f"Retrain it: `filmgenre train {name.split('-limit')[0]}` (or `make all`).", {})
    return summary.get("training_films")


def evaluate_all(names: list[str] | None = None, log=print) -> dict:
    """Evaluate models and baselines (default: every trained model present and every baseline).

    Writes ``results/<name>/`` for each, the model comparisons of ``compare.PAIRS`` whose models
    both have results, and ``results/metrics.json`` (entries of models not evaluated
    this time are kept). Returns the content of ``metrics.json``.
    """
    where = config.paths()
    names = available_names() if names is None else check_names(names)
    if not names:
        raise EvaluateError("nothing to evaluate.")
    sets: dict[int, dict[str, Films]] = {}

    def films_at(image_size: int) -> dict[str, Films]:
        if image_size not in sets:
            sets[image_size] = {split: evaluation_films(split, image_size) for split in SPLITS}
            reference = sets[min(sets)]
            for split in SPLITS:
                if sets[image_size][split].ids.tolist() != reference[split].ids.tolist():
                    raise EvaluateError(f"the {split} films with a poster differ between image sizes "
                                        f"{min(sets)} and {image_size}. Run `filmgenre prepare` again for both.")
        return sets[image_size]

    metrics = artifacts.read_metrics()
    metrics.setdefault("models", {})
    drop_removed(metrics, log)
    films = films_at(config.IMAGE_SIZE)
    log(f"Evaluating {len(names)} model(s) and baseline(s) on {len(films['val'].ids)} validation and "
        f"{len(films['test'].ids)} test films: {', '.join(names)}")
    for name in names:
        started = time.perf_counter()
        if name in baselines.BASELINES:
            log(f"{name}: fitting the baseline on the training films ...")
            train_films = baselines.training_films(name)
            outputs = baselines.run(name, [films[s] for s in SPLITS], train=train_films)
            training = len(train_films.ids)
            used = films
        else:
            log(f"{name}: predicting with {artifacts.relative(registry.model_path(name))} ...")
            used = films_at(registry.spec(name).image_size)
            outputs = predict_model(name, [used[s] for s in SPLITS])
            training = training_films(name)
            if gates.is_gated(name):  # how much each genre leans on the poster, for the report
                gates.write_table(name, used["test"])
        entry = evaluate_predictions(name, used, dict(zip(SPLITS, outputs)), training)
        metrics["models"][name] = entry
        files.write_json(where.metrics, metrics)  # after each model: an interruption keeps finished ones
        test = entry["test"]
        log(f"{name}: rule {describe_rule(entry['rule'])} (val micro-F1 {entry['val']['f1_micro']:.3f}); "
            f"test micro-F1 {test['f1_micro']:.3f}, macro-F1 {test['f1_macro']:.3f}, "
            f"macro AP {test['average_precision_macro']:.3f}, at 0.5 micro-F1 "
            f"{entry['test_at_0.5']['f1_micro']:.3f} [{time.perf_counter() - started:.1f} s]")

    for a, b in compare.PAIRS:
        if all(m in metrics["models"] and predictions_path(m).exists() for m in (a, b)):
            metrics.setdefault("agreement", {})[f"{a}_vs_{b}"] = compare.agreement(a, b, films["test"])
            files.write_csv(compare.samples_path(a, b), compare.sample_films(a, b, films=films["test"]))
            counts = metrics["agreement"][f"{a}_vs_{b}"]["counts"]
            log(f"{a} vs {b} on test: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                + f"; samples in {compare.samples_path(a, b).relative_to(where.root)}")
    files.write_json(where.metrics, metrics)
    log(f"Wrote {where.metrics.relative_to(where.root)} and results/<name>/ for {', '.join(names)}.")
    return metrics
