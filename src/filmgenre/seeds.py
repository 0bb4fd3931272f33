"""Stage `filmgenre seeds`: how much a score moves when only the training seed changes.

One training run is one draw: the seed fixes the initial weights, the dropout masks and
the order of the training films, and a model trained with another seed scores a little
differently on the same test films. Here each model is trained again with a few seeds
(``logs/seeds/<model>-seed<S>/``, never over the committed run), each run gets its own
decision rules chosen on validation, exactly as ``filmgenre evaluate`` does, and its test
scores go to ``results/seeds.json`` with their mean and standard deviation per model, the
scores of the runs' averaged probabilities (``ensemble``), and the late fusion rebuilt from
each seed's runs of its two members (``late_fusion``).

The file is rewritten (atomically) after every run and a run already recorded is skipped,
so an interrupted stage resumes where it stopped. Training is deterministic on one
machine (``train.configure_runtime``), not across CPUs: the spread over seeds is the
yardstick for how much a rerun elsewhere may move a score.
"""

from pathlib import Path
from typing import Sequence

import numpy as np

from filmgenre import FilmgenreError, artifacts, config, evaluate, files, fusion, registry
from filmgenre.predictions import SPLITS, evaluation_films, quantise
from filmgenre.rules import apply_rule, choose_rule, describe_rule
from filmgenre.scores import compute_metrics

SEEDS = (1, 2, 3)
SPEC_MODELS = ("cnn", "lstm")
REPORTED = {"val": ("f1_micro", "f1_macro"), "val_macro_rule": ("f1_micro", "f1_macro"),
            "test": ("f1_micro", "f1_macro", "average_precision_macro"),
            "test_macro_rule": ("f1_micro", "f1_macro")}
CLASS_WEIGHT = "+class_weight"  # suffix of a variant trained with `train --class-weight`


def seeds_path() -> Path:
    return config.paths().results / "seeds.json"


def run_folder(variant: str, seed: int) -> Path:
    return config.paths().logs / "seeds" / f"{variant}-seed{seed}"


def default_models(metrics: dict) -> list[str]:
    """The spec models, then the best poster, text and learned fusion models by validation micro-F1 (never test)."""
    best = [fusion.best_member(metrics, reads) for reads in ("posters", "overviews", "posters+overviews")]
    return list(dict.fromkeys([*SPEC_MODELS, *(name for name in best if name)]))


def trained_run(name: str, seed: int, epochs: int | None = None, class_weight: bool = False) -> Path:
    """The model file of ``name`` trained with ``seed``, trained first if it is not there."""
    from filmgenre import train

    folder = run_folder(name + (CLASS_WEIGHT if class_weight else ""), seed)
    model_path = registry.model_path(name, folder)
    if not model_path.exists():
        train.train(name, seed=seed, epochs=epochs, out=folder, class_weight=class_weight)
    return model_path


def score_run(name: str, seed: int, films: dict, epochs: int | None = None, class_weight: bool = False) -> dict:
    """Train ``name`` with ``seed`` (unless that run's model already exists) and score it.

    The decision rules (micro and macro objective) are chosen on the run's own validation
    predictions, so a seed's score includes the variation of its rule.
    """
    model_path = trained_run(name, seed, epochs, class_weight)
    folder = run_folder(name + (CLASS_WEIGHT if class_weight else ""), seed)
    summary = artifacts.read_json(folder / "results" / name / "train.json",
                                  f"Delete {folder} and rerun `filmgenre seeds`: the run is trained again.")
    record = {"seed": seed, "best_epoch": summary["best_epoch"], "best_val_loss": summary["best_val_loss"],
              "epochs_run": summary["epochs_run"]}
    return record | scores_under_rules(probabilities_of(name, model_path, films), films)


def probabilities_of(name: str, model_path: Path, films: dict) -> dict:
    """A saved run's probabilities of each split, rounded as ``evaluate`` writes them."""
    return dict(zip(SPLITS, (quantise(p) for p in evaluate.predict_model(
        name, [films[split] for split in SPLITS], path=model_path))))


def scores_under_rules(probabilities: dict, films: dict) -> dict:
    """Each split's ``REPORTED`` scores under the micro and the macro rule, both chosen on validation."""
    labels = {split: films[split].labels.astype(np.int8) for split in SPLITS}
    record = {}
    for suffix, objective in (("", "micro"), ("_macro_rule", "macro")):
        rule, _ = choose_rule(probabilities["val"], labels["val"], objective=objective)
        for split in SPLITS:
            scores = compute_metrics(labels[split], apply_rule(probabilities[split], rule),
                                              probabilities[split])
            record[split + suffix] = {"rule": describe_rule(rule)} | {
                m: scores[m] for m in REPORTED[split + suffix]}
    return record


def ensemble(name: str, variant: str, seeds: Sequence[int], films: dict) -> dict | None:
    """The seeds' runs as one model: their probabilities averaged, then rules and scores as for one run.

    What averaging runs already trained buys, at no training cost, on both objectives; ``None``
    when a run's model is not here (e.g. a fresh clone, which has only ``seeds.json``).
    """
    paths = [registry.model_path(name, run_folder(variant, seed)) for seed in seeds]
    if not all(path.exists() for path in paths):
        return None
    runs = [probabilities_of(name, path, films) for path in paths]
    mean = {split: quantise(np.mean([run[split] for run in runs], axis=0)) for split in SPLITS}
    return {"seeds": list(seeds)} | scores_under_rules(mean, films)


def late_fusion(poster: str, text: str, seeds: Sequence[int], log=print) -> dict:
    """The late fusion rebuilt from each seed's runs of its two members, against the text member alone.

    The fusion trains nothing (a weighted mean of two models' probabilities), so its gain over
    the text model can be measured on every seed, not on the reported run alone: per seed the
    poster weight and both rules are chosen on validation, as ``fusion.fuse_best`` does. Member
    runs not on disk are trained (the heads cost about a minute each).
    """
    films = {name: {split: evaluation_films(split, registry.MODELS[name].image_size) for split in SPLITS}
             for name in (poster, text)}
    labels = films[text]["val"].labels.astype(np.int8)
    runs = []
    for seed in seeds:
        log(f"late fusion seed {seed}: {poster} + {text} ...")
        probabilities = {name: probabilities_of(name, trained_run(name, seed), films[name]) for name in (poster, text)}
        weight, _ = fusion.choose_weight(probabilities[poster]["val"], probabilities[text]["val"], labels)
        fused = {split: quantise(fusion.fuse(probabilities[poster][split], probabilities[text][split], weight))
                 for split in SPLITS}
        scores = {"fusion": scores_under_rules(fused, films[text]),
                  "text": scores_under_rules(probabilities[text], films[text])}
        runs.append({"seed": seed, "weight": weight, **scores, "gain": {
            section: {metric: scores["fusion"][section][metric] - scores["text"][section][metric]
                      for metric in ("f1_micro", "f1_macro")} for section in ("test", "test_macro_rule")}})
    return {"poster": poster, "text": text, "runs": runs}


def summarise(runs: list[dict]) -> dict:
    """Mean, sample standard deviation, minimum and maximum over the seeds, per reported score."""
    summary = {"seeds": [run["seed"] for run in runs]}
    for section, metrics in REPORTED.items():
        summary[section] = {}
        for metric in metrics:
            values = np.array([run[section][metric] for run in runs])
            summary[section][metric] = {"mean": float(values.mean()),
                                        "sd": float(values.std(ddof=1)) if len(values) > 1 else None,
                                        "min": float(values.min()), "max": float(values.max())}
    return summary


def run(names: Sequence[str] | None = None, seeds: Sequence[int] = SEEDS, epochs: int | None = None,
        class_weight: bool = False, log=print) -> dict:
    """Train and score every (model, seed) not yet in ``results/seeds.json``; return the file's content.

    ``names`` defaults to ``default_models`` of ``results/metrics.json``. Each model's entry
    keeps its committed single run (``metrics.json``, seed ``config.SEED``) beside the seeds.
    With ``class_weight`` the runs use ``train --class-weight`` and are recorded as
    ``<name>+class_weight``: with seed ``config.SEED`` their validation scores compare with
    the committed run's, one change at a time.
    """
    metrics = artifacts.read_metrics()
    names = default_models(metrics) if names is None else list(names)
    unknown = [name for name in names if name not in registry.MODELS]
    if unknown:
        raise FilmgenreError(f"unknown model(s) {', '.join(unknown)}. Models: {', '.join(registry.MODELS)}.")
    record = artifacts.read_json(seeds_path(), artifacts.SEEDS_FIX, {})
    record.setdefault("models", {})
    record["note"] = ("test scores of the same model trained with different seeds, each with its own rules "
                      "chosen on validation; training is deterministic on one machine, not across CPUs")
    for name in names:
        films = {split: evaluation_films(split, registry.MODELS[name].image_size) for split in SPLITS}
        variant = name + (CLASS_WEIGHT if class_weight else "")
        entry = record["models"].setdefault(variant, {"runs": []})
        entry.update(model=name, class_weight=class_weight)  # what the variant is, for readers of the file
        entry.pop("single_run", None)  # an older copy of the reported run: metrics.json holds it, and stays current
        for seed in seeds:
            if any(run["seed"] == seed for run in entry["runs"]):
                log(f"{variant} seed {seed}: already recorded, skipped")
                continue
            trained = registry.model_path(name, run_folder(variant, seed)).exists()
            log(f"{variant} seed {seed}: {'scoring the model in' if trained else 'training into'} "
                f"{run_folder(variant, seed)} ...")
            result = score_run(name, seed, films, epochs, class_weight)
            entry["runs"] = sorted([*entry["runs"], result], key=lambda r: r["seed"])
            entry["summary"] = summarise(entry["runs"])
            files.write_json(seeds_path(), record)
            scores = entry["summary"]["test"]["f1_micro"]
            log(f"{variant} seed {seed}: test micro-F1 {result['test']['f1_micro']:.3f}; over "
                f"{len(entry['runs'])} seed(s) {scores['mean']:.3f}" + (f" ± {scores['sd']:.3f}" if scores["sd"] else ""))
        recorded = [run["seed"] for run in entry["runs"]]
        if len(recorded) > 1 and entry.get("ensemble", {}).get("seeds") != recorded:
            if (averaged := ensemble(name, variant, recorded, films)) is not None:
                entry["ensemble"] = averaged
                files.write_json(seeds_path(), record)
                log(f"{variant}: the {len(recorded)} seeds' mean probabilities, test micro-F1 "
                    f"{averaged['test']['f1_micro']:.3f}, macro-F1 (macro rule) {averaged['test_macro_rule']['f1_macro']:.3f}")
    members = metrics.get("models", {}).get(fusion.NAME, {}).get("fusion")
    if members and not class_weight and {members["poster"], members["text"]} <= set(names):
        both = sorted(set.intersection(*({run["seed"] for run in record["models"][members[side]]["runs"]}
                                         for side in ("poster", "text"))))  # every seed both members have
        recorded = record.get("late_fusion", {})
        if both and (recorded.get("poster"), recorded.get("text"), [r["seed"] for r in recorded.get("runs", [])]) != (
                members["poster"], members["text"], both):
            record["late_fusion"] = late_fusion(members["poster"], members["text"], both, log)
            gains = [run["gain"]["test"]["f1_micro"] for run in record["late_fusion"]["runs"]]
            log(f"late fusion over seeds {', '.join(map(str, both))}: test micro-F1 gain over "
                f"{members['text']} {np.mean(gains):+.3f} (from {min(gains):+.3f} to {max(gains):+.3f})")
    files.write_json(seeds_path(), record)
    return record
