"""What each result was computed from, and whether it still matches (``filmgenre evaluate --check``).

``metrics.json`` records the SHA-256 of every input of every entry: the model file, the
split, the films table, the poster or encoder cache it read, and the evaluation code (a
baseline also its parameters). ``stale`` compares them with the files as they are now.
"""

import datetime
import json
from pathlib import Path

from filmgenre import artifacts, baselines, config, dataset, files, registry
from filmgenre import inputs as model_inputs
from filmgenre.predictions import predictions_path

# The code every entry's numbers come from (decision rules, scores, predictions, the stage).
EVALUATION_CODE = ("src/filmgenre/evaluate.py", "src/filmgenre/rules.py", "src/filmgenre/scores.py",
                   "src/filmgenre/predictions.py")
PACKAGE = Path(__file__).parent


def recorded_path(key: str) -> Path:
    """The file a provenance key names: code (``src/filmgenre/...``) from the installed package,
    anything else below the project root (a scratch project has data but no source)."""
    if key.startswith("src/filmgenre/"):
        return PACKAGE / key.removeprefix("src/filmgenre/")
    return config.paths().root / key


def inputs_of(name: str) -> dict[str, Path]:
    """Every file a model's or baseline's result depends on, by its path relative to the project root.

    Raises ``registry.UnknownModel`` for a name that is neither a baseline nor in the registry."""
    where = config.paths()
    processed = dataset.processed_paths(config.IMAGE_SIZE)
    inputs = {"data/splits.csv": where.splits, "data/processed/films.csv": processed["films"]}
    if name in baselines.BASELINES:
        if baselines.BASELINES[name].reads == "posters":
            inputs[f"data/processed/{processed['posters'].name}"] = processed["posters"]
        inputs["src/filmgenre/baselines.py"] = Path(baselines.__file__)
    else:
        inputs[registry.model_file(name)] = registry.model_path(name)
        inputs |= model_inputs.source_files(registry.spec(name))
    inputs |= {key: recorded_path(key) for key in EVALUATION_CODE}
    return inputs


def provenance(name: str, inputs: dict[str, Path] | None = None) -> dict:
    """SHA-256 of every input of ``name``'s result (and a baseline's parameters)."""
    inputs = inputs_of(name) if inputs is None else inputs
    record = {"inputs": {key: files.sha256_cached(path) for key, path in inputs.items()},
              "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if name in baselines.BASELINES:
        record["baseline"] = {"description": baselines.BASELINES[name].description,
                              "params": jsonable(baselines.BASELINES[name].params)}
    return record


def jsonable(value):
    """``value`` as it reads back from JSON (tuples become lists), so recorded and current compare."""
    return json.loads(json.dumps(value, default=files.jsonable))


def stale(metrics: dict | None = None) -> dict[str, list[str]]:
    """Results that no longer match their inputs: ``{name: [reasons]}``, empty when all are current.

    A result is stale when a recorded input (model file, split, film table, poster cache,
    evaluation or baseline code) changed or disappeared, a baseline's parameters changed,
    its model left the registry, or its predictions file is gone. A model comparison is
    stale when either model is. ``metrics``: the content of ``metrics.json`` (default: read it).
    """
    metrics = artifacts.read_metrics() if metrics is None else metrics
    found: dict[str, list[str]] = {}
    kept = set(committed_only(metrics))
    for name, entry in metrics.get("models", {}).items():
        if name in kept:
            continue
        reasons = []
        recorded = entry.get("provenance", {}).get("inputs", {})
        if entry["kind"] == "derived":  # e.g. the fusion: its inputs are other results' files
            current = {key: recorded_path(key) for key in recorded}
        else:
            try:
                current = inputs_of(name)
            except registry.UnknownModel:
                found[name] = [f"{name} is no longer in the registry (src/filmgenre/registry.py)"]
                continue
        for key, sha in recorded.items():
            path = current.get(key)
            if path is None:
                reasons.append(f"{key} is no longer an input")
            elif not path.exists():
                reasons.append(f"{key} is missing")
            elif files.sha256_cached(path) != sha:
                reasons.append(f"{key} changed")
        reasons += [f"{key} is a new input" for key in current if key not in recorded]
        if name in baselines.BASELINES:
            recorded_params = entry["provenance"].get("baseline", {}).get("params")
            if recorded_params != jsonable(baselines.BASELINES[name].params):
                reasons.append(f"the parameters of baseline {name} changed")
        if not predictions_path(name).exists():
            reasons.append(f"{predictions_path(name).relative_to(config.paths().root)} is missing")
        if reasons:
            found[name] = reasons
    for pair, entry in metrics.get("agreement", {}).items():
        reasons = [f"{model} is stale" for model in entry["models"] if model in found]
        reasons += [f"{model} has no result" for model in entry["models"] if model not in metrics.get("models", {})]
        if reasons:
            found[f"agreement:{pair}"] = reasons
    return found


def committed_only(metrics: dict | None = None) -> list[str]:
    """Model results kept as committed: `make all` does not train the model and it is not here.

    Not stale (nothing they were computed from changed in this checkout), but not
    reproduced by `make all` either, so the check and the report name them apart.
    """
    metrics = artifacts.read_metrics() if metrics is None else metrics
    return [name for name, entry in metrics.get("models", {}).items()
            if entry["kind"] == "model" and name in config.EXTRA_MODELS
            and not registry.model_path(name).exists()]
