"""Late fusion: a weighted average of the best poster model's and best text model's probabilities.

Posters and overviews fail on different films (see ``metrics.json`` ``agreement``), so
averaging their probabilities can beat both. The poster weight ``w`` is chosen on the
validation films only: for each ``w`` on a grid, the fused probabilities get their own
best decision rule (``rules.choose_rule``) and the ``w`` with the best validation
micro-F1 wins. Test films are touched once, for the final numbers. Like every model, the
fused probabilities also get the rule chosen for validation macro-F1 (``macro_rule``).
"""

from pathlib import Path

import numpy as np

from filmgenre import artifacts, compare, config, evaluate, files, predictions
from filmgenre.rules import apply_rule, choose_rule, micro_f1, middle_best

NAME = "fusion"
WEIGHTS = np.round(np.linspace(0, 1, 21), 2)  # poster share of the average: 0 = text only, 1 = posters only


def fuse(poster: np.ndarray, text: np.ndarray, weight: float) -> np.ndarray:
    return weight * poster + (1 - weight) * text


def choose_weight(poster_val: np.ndarray, text_val: np.ndarray, labels: np.ndarray,
                  weights=WEIGHTS) -> tuple[float, list[dict]]:
    """The poster weight with the best validation micro-F1, and the score of every weight tried."""
    scores = []
    for weight in weights:
        fused = fuse(poster_val, text_val, weight)
        rule, _ = choose_rule(fused, labels)
        scores.append({"weight": float(weight),
                       "val_f1_micro": micro_f1(labels, apply_rule(fused, rule))})
    best = middle_best(np.array([s["val_f1_micro"] for s in scores]))
    return scores[best]["weight"], scores


def best_member(metrics: dict, reads: str, seeds: dict | None = None) -> str | None:
    """The trained model reading ``reads`` ("posters" or "overviews") with the best validation
    micro-F1 (never test), averaged over every run it has: its reported run and, where `filmgenre
    seeds` retrained it, its other seeds (``seeds``: ``results/seeds.json``'s content, read when
    not given), so one lucky seed does not pick a member. Heads on a pretrained encoder's vectors
    read their input too. Only models `make all` trains are members, so the fusion is rebuilt from
    fresh results alone (``evaluate`` has dropped models no longer in the registry)."""
    if seeds is None:
        seeds = artifacts.read_json(config.paths().results / "seeds.json", artifacts.SEEDS_FIX, default={})
    retrained = {name: entry["runs"] for name, entry in seeds.get("models", {}).items() if not entry.get("class_weight")}
    candidates = {name: np.mean([entry["val"]["f1_micro"], *(run["val"]["f1_micro"] for run in retrained.get(name, []))])
                  for name, entry in metrics.get("models", {}).items()
                  if entry["kind"] == "model" and config.MODALITY.get(entry["reads"]) == reads
                  and name not in config.EXTRA_MODELS}
    return max(candidates, key=candidates.get) if candidates else None


def _forget_previous_pair(metrics: dict, poster: str, text: str) -> None:
    """When the best members change, the old pair's comparison and samples go with them."""
    previous = metrics.get("models", {}).get(NAME, {}).get("fusion")
    if previous and (previous["poster"], previous["text"]) != (poster, text):
        pair = (previous["poster"], previous["text"])
        if pair not in compare.PAIRS:
            metrics.get("agreement", {}).pop("_vs_".join(pair), None)
            compare.samples_path(*pair).unlink(missing_ok=True)


def fuse_best(log=print) -> dict | None:
    """Fuse the best poster and text models; add ``fusion`` and their agreement to metrics.json."""
    where = config.paths()
    metrics = artifacts.read_metrics()
    poster, text = best_member(metrics, "posters"), best_member(metrics, "overviews")
    if not (poster and text):
        log("fusion: skipped, it needs an evaluated poster model and an evaluated text model.")
        if metrics.get("models", {}).pop(NAME, None) is not None:  # an earlier fusion of models now gone
            files.write_json(where.metrics, metrics)
        return None
    films = {split: predictions.evaluation_films(split) for split in predictions.SPLITS}
    members = {name: {split: predictions.aligned(name, films[split], split) for split in predictions.SPLITS}
               for name in (poster, text)}
    weight, scores = choose_weight(members[poster]["val"], members[text]["val"], films["val"].labels.astype(np.int8))
    probabilities = {split: fuse(members[poster][split], members[text][split], weight) for split in predictions.SPLITS}
    derived = {
        "description": f"ours: {weight:.2f} x {poster} + {1 - weight:.2f} x {text} (weight chosen on validation)",
        "reads": "posters+overviews",
        "inputs": {f"results/{m}/predictions.csv": predictions.predictions_path(m) for m in (poster, text)}
        | {"src/filmgenre/fusion.py": Path(__file__)},
    }
    entry = evaluate.evaluate_predictions(NAME, films, probabilities, derived=derived)
    entry["fusion"] = {"poster": poster, "text": text, "weight": weight, "weights_tried": scores}
    _forget_previous_pair(metrics, poster, text)
    metrics["models"][NAME] = entry
    metrics.setdefault("agreement", {})[f"{poster}_vs_{text}"] = compare.agreement(poster, text, films["test"])
    files.write_csv(compare.samples_path(poster, text), compare.sample_films(poster, text, films=films["test"]))
    files.write_json(where.metrics, metrics)
    counts = metrics["agreement"][f"{poster}_vs_{text}"]["counts"]
    log(f"fusion: {derived['description']}; test micro-F1 {entry['test']['f1_micro']:.3f}, macro-F1 "
        f"{entry['test']['f1_macro']:.3f}. {poster} vs {text} on test: "
        + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return entry
