"""`filmgenre predict`: the genres every trained model gives one poster and/or one overview.

For each trained model (``models/<name>.keras``) that reads what was given, ``predict``
reports the most probable genres and the genres its decision rule predicts: the rule
``filmgenre evaluate`` chose on validation and recorded in ``results/metrics.json``.
Given both a poster and an overview, it also fuses the fusion's two members with the
recorded weight. ``--id`` takes a film of the prepared dataset instead: its poster from
the prepared caches (the very pixels and features the evaluation used), its overview from
``data/processed/films.csv``, and shows its true genres beside the predictions.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from filmgenre import FilmgenreError, artifacts, config, dataset, files, fusion, inputs, posters, predictions, rawdata, registry
from filmgenre.rules import apply_rule, describe_rule


class PredictError(FilmgenreError):
    """A poster, overview, film or model that ``predict`` cannot use: the message says what to do."""


@dataclass
class Inputs:
    """What to classify: a poster file and/or an overview, or a film of the prepared dataset."""

    poster: Path | None = None
    overview: str | None = None
    film_id: str | None = None
    true_genres: list[str] | None = None
    film_has_poster: bool = False  # the film's poster decoded in `prepare` (it is in the caches)

    @property
    def has_poster(self) -> bool:
        return self.poster is not None or self.film_has_poster


# --------------------------------------------------------------------------- inputs
def read_inputs(poster: str | Path | None = None, overview: str | None = None,
                film_id: str | None = None) -> Inputs:
    """Check the inputs before any model loads: the poster decodes, the overview has words, the film exists."""
    if film_id is not None:
        if poster is not None or overview is not None:
            raise PredictError("give either --id (a film of the dataset) or --poster/--overview, not both.")
        return film_inputs(film_id)
    if poster is None and overview is None:
        raise PredictError("nothing to classify: give --poster PATH, --overview TEXT (or both), or --id ID.")
    if overview is not None and not overview.strip():
        raise PredictError("the overview is empty: pass the film's plot summary with --overview \"...\".")
    if poster is not None:
        poster = Path(poster)
        poster_pixels(poster, config.IMAGE_SIZE)  # fails here, naming the file, if it is not an image
    return Inputs(poster=poster, overview=overview)


def film_inputs(film_id: str) -> Inputs:
    """A film of the prepared dataset: its overview, its true genres and (if it has one) its poster."""
    films, _, _ = dataset.load_processed(config.IMAGE_SIZE)
    row = films[films["Id"] == film_id.strip()]
    if row.empty:
        raise PredictError(f"{film_id}: no film with this Id in {dataset.processed_paths(config.IMAGE_SIZE)['films']} "
                           f"(Ids look like {films['Id'].iloc[0]}).")
    row = row.iloc[0]
    has_poster = bool(row["has_poster"])
    return Inputs(poster=rawdata.raw_poster(row["Id"]) if has_poster else None, overview=row["Overview"],
                  film_id=row["Id"], true_genres=[g for g in config.GENRES if row[g]], film_has_poster=has_poster)


def poster_pixels(poster: Path, image_size: int) -> np.ndarray:
    """A poster file decoded as ``prepare`` decodes it (``posters.decode_poster``): uint8, size x size x 3.

    Its header is checked first (``posters.open_poster``), so an oversized image is never
    decoded; every failure is one line in the user's words, without TensorFlow's op text.
    """
    import tensorflow as tf

    try:
        posters.open_poster(poster).close()
    except posters.PosterError as error:
        raise PredictError(str(error)) from None
    try:
        return posters.decode_poster(tf.io.read_file(str(poster)), image_size).numpy()
    except tf.errors.OpError:
        raise PredictError(str(posters.damaged_poster(poster))) from None


def film_pixels(inputs: Inputs, image_size: int) -> np.ndarray:
    """The poster at ``image_size``: from the prepared cache for a film of the dataset, else decoded."""
    if inputs.film_id is not None and (cached := dataset.cached_posters([inputs.film_id], image_size)):
        return cached[inputs.film_id]
    if inputs.poster is None:
        raise PredictError(f"{inputs.film_id}: no poster at {image_size}x{image_size}. Run `filmgenre prepare "
                           f"--image-size {image_size}`, or extract the dataset under data/raw.")
    return poster_pixels(inputs.poster, image_size)


# --------------------------------------------------------------------------- models
def chosen_models(names: list[str] | None = None) -> list[str]:
    """The models to run: ``names`` (each must be trained), or every trained model."""
    if names:
        for name in names:
            if name not in registry.MODELS:
                raise PredictError(f"unknown model '{name}'. Models: {', '.join(registry.MODELS)}.")
            if not registry.model_path(name).exists():
                raise PredictError(f"{registry.model_path(name)}: not found. Run `filmgenre train {name}` first.")
        return list(names)
    trained = registry.trained_models()
    if not trained:
        raise PredictError(f"no trained model in {config.paths().models}. Run `filmgenre train NAME` first "
                           f"(NAME: {', '.join(registry.MODELS)}).")
    return trained


def model_probabilities(name: str, given: Inputs, vectors: inputs.EncoderSource) -> np.ndarray:
    """One model's 25 probabilities for the inputs, rounded as ``evaluate`` rounds them."""
    spec = registry.MODELS[name]
    try:
        batch = inputs.one_film(spec, lambda size: film_pixels(given, size), given.overview, given.film_id,
                                given.poster, vectors)
    except OSError:  # PIL: the header read, the pixels did not
        raise PredictError(str(posters.damaged_poster(given.poster))) from None
    if batch is None:
        raise PredictError(f"{given.film_id}: not in the {spec.reads} cache and no poster file under data/raw. "
                           "Run `filmgenre encode` first.")
    model = artifacts.load_model(name)
    output = model(batch, training=False)  # one film: a direct call, no predict() loop to trace
    return predictions.quantise(np.asarray(output, dtype=np.float64)[0])


def why_not(name: str, given: Inputs) -> str | None:
    """Why model ``name`` cannot run on these inputs, or ``None``."""
    modality = inputs.modality(registry.MODELS[name]).split("+")
    if "overviews" in modality and given.overview is None:
        return "reads overviews; none given"
    if "posters" in modality and not given.has_poster:
        return f"film {given.film_id} has no usable poster" if given.film_id else "reads posters; none given"
    return None


def _rule_of(name: str, metrics: dict) -> tuple[dict | None, str | None]:
    """The decision rule ``evaluate`` recorded for ``name``, and a note when there is none or it is stale."""
    entry = metrics.get("models", {}).get(name)
    if entry is None:
        return None, f"no decision rule yet: run `filmgenre evaluate {name}`"
    recorded = entry.get("provenance", {}).get("inputs", {}).get(registry.model_file(name))
    model_file = registry.model_path(name)
    if recorded and model_file.exists() and files.sha256(model_file) != recorded:
        return entry["rule"], f"rule chosen for an earlier {model_file.name}: run `filmgenre evaluate {name}`"
    return entry["rule"], None


def describe(name: str, probabilities: np.ndarray, rule: dict | None, top: int, **extra) -> dict:
    """One model's row of the output: top genres, the rule's genres, every probability."""
    order = np.argsort(-probabilities, kind="stable")[:top]
    genres = None
    if rule is not None:
        chosen = apply_rule(probabilities[None], rule)[0]
        genres = [g for g, on in zip(config.GENRES, chosen) if on]
    return {"model": name, **extra,
            "top": [{"genre": config.GENRES[g], "probability": float(probabilities[g])} for g in order],
            "rule": rule, "rule_description": describe_rule(rule) if rule else None, "genres": genres,
            "probabilities": dict(zip(config.GENRES, map(float, probabilities)))}


# --------------------------------------------------------------------------- the command
def predict(poster: str | Path | None = None, overview: str | None = None, film_id: str | None = None,
            top: int = 3, names: list[str] | None = None) -> dict:
    """Predictions of every trained model (or of ``names``) and of the fusion; see the module's docstring."""
    if not 1 <= top <= len(config.GENRES):
        raise PredictError(f"--top must be between 1 and {len(config.GENRES)}, not {top}.")
    given = read_inputs(poster, overview, film_id)
    chosen = chosen_models(names)
    metrics = artifacts.read_metrics()
    result = {"inputs": {"id": given.film_id, "poster": str(given.poster) if given.poster else None,
                         "overview": given.overview},
              "true_genres": given.true_genres, "predictions": [], "skipped": {}}
    vectors, probabilities = inputs.EncoderSource(), {}
    for name in chosen:
        if reason := why_not(name, given):
            result["skipped"][name] = reason
            continue
        probabilities[name] = model_probabilities(name, given, vectors)
        rule, note = _rule_of(name, metrics)
        spec = registry.MODELS[name]
        result["predictions"].append(describe(name, probabilities[name], rule, top, reads=spec.reads,
                                              description=spec.description, note=note))
    if not result["predictions"]:
        raise PredictError("no trained model reads what was given: "
                           + "; ".join(f"{name} {reason}" for name, reason in result["skipped"].items()))

    recorded = metrics.get("models", {}).get(fusion.NAME)
    if recorded and given.has_poster and given.overview is not None:
        members = recorded["fusion"]
        missing = [members[m] for m in ("poster", "text") if members[m] not in probabilities]
        if missing:
            result["skipped"][fusion.NAME] = f"needs {' and '.join(missing)} (not trained, or not chosen)"
        else:
            weight = members["weight"]
            fused = predictions.quantise(fusion.fuse(probabilities[members["poster"]], probabilities[members["text"]],
                                                  weight))
            result["predictions"].append(describe(
                fusion.NAME, fused, recorded["rule"], top, reads=recorded["reads"],
                description=f"{weight:.2f} x {members['poster']} + {1 - weight:.2f} x {members['text']}",
                members={"poster": members["poster"], "text": members["text"], "weight": weight}, note=None))
    return result


def format_text(result: dict) -> str:
    """The human-readable form of ``predict``'s result."""
    inputs, lines = result["inputs"], []
    if inputs["id"]:
        lines.append(f"Film {inputs['id']}: true genres {', '.join(result['true_genres'])}")
    if inputs["poster"]:
        lines.append(f"Poster:   {inputs['poster']}")
    if inputs["overview"]:
        text = " ".join(inputs["overview"].split())
        lines.append(f"Overview: {text if len(text) <= 100 else text[:99] + '…'}")
    width = max(len(row["model"]) for row in result["predictions"]) + 2
    for row in result["predictions"]:
        top = ", ".join(f"{t['genre']} {t['probability']:.2f}" for t in row["top"])
        lines.append("")
        lines.append(f"{row['model']:<{width}}top {len(row['top'])}: {top}")
        if row["genres"] is not None:
            lines.append(f"{'':<{width}}predicted ({row['rule_description']}): {', '.join(row['genres']) or '(none)'}")
        if row["model"] == fusion.NAME:
            lines.append(f"{'':<{width}}{row['description']}")
        if row["note"]:
            lines.append(f"{'':<{width}}note: {row['note']}")
    if result["skipped"]:
        lines.append("")
        lines.append("Skipped: " + "; ".join(f"{name} ({reason})" for name, reason in result["skipped"].items()))
    return "\n".join(lines)
