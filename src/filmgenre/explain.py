"""`filmgenre explain`: the evidence behind the report's claims about what the models use.

- **Occlusion sensitivity** (posters): grey out one square of the poster at a time (filled
  with the poster's own mean colour) and record how much the probability of a genre drops;
  large drops mark the regions a model looks at.
- **Poster ablations**: the test score under the rule chosen on validation when posters are
  reduced to **grayscale** (ITU-R BT.601 luma in all three channels: no hue left) or
  **pixel-shuffled** (every poster's pixels permuted at random within it: its colour
  histogram survives exactly, its layout, shapes and text do not), with micro-F1 and the
  threshold-free macro-AP over the constant prior's and paired bootstrap intervals.
- **Leave-one-word-out** (overviews): drop each word of an overview in turn; the fall in a
  genre's probability is that word's contribution, averaged per word over the test films.
  Beside it, the TF-IDF baseline's largest logistic-regression coefficients.
- **Calibration**: predicted probability against the observed frequency of the genre, per
  bin, pooled over every test (film, genre) pair.
- **Genre-name leakage** (``leakage``): how often an overview names its own genre, and the text
  models re-scored with genre names masked (``results/explain/leakage.json``).

The measurements themselves are ``probes``, over plain callables (``predict_images``,
``predict_texts``); here ``poster_predictor`` and ``text_predictor`` build those for the trained
Keras models and the baselines, and the stage runs them over the test films. ``run`` writes
small aggregated tables to ``results/explain/`` (committed: the report renders without
models); the per-poster maps go to ``results/explain/occlusion_examples.npz``, which is
git-ignored because it is derived from the posters.
"""

import functools
import time
from typing import Sequence

import numpy as np
import pandas as pd

from filmgenre import FilmgenreError, artifacts, baselines, config, files, inputs, leakage, predictions, probes, registry
from filmgenre.dataset import Films

EXAMPLE_GENRES = ("Drama", "Comedy", "Horror", "Action")  # the per-poster example maps
EXAMPLES_PER_GENRE = 3
BATCH = 256
ENCODER_POSTER_CACHE = 96  # the poster cache the EfficientNet heads are explained on (``poster_predictor``)
DECIMALS = 5  # of the committed tables
# explain reads the files it adds to (earlier models' rows stay), so a damaged one must go before it runs.
SUMMARY_FIX = ("Restore the committed one (`git checkout results/explain/`), or delete it and rerun "
               "`filmgenre explain` (or `make all`).")


class ExplainError(FilmgenreError):
    """A model or input ``explain`` cannot use: the message says what to run."""


def folder():
    return config.paths().results / "explain"


# --------------------------------------------------------------------------- calibration
def calibration(names: Sequence[str], films: Films) -> pd.DataFrame:
    """``probes.calibration_bins`` of each model's committed test predictions."""
    frames = []
    for name in names:
        table = predictions.read_predictions(name)
        table = table[table["split"] == "test"].set_index("Id").loc[films.ids]
        frames.append(probes.calibration_bins(table[config.GENRES].to_numpy(), films.labels).assign(model=name))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- predictors
def _keras(name: str, modality: str):
    """A trained model's entry and its saved model, checked to read ``modality``."""
    spec = registry.spec(name)
    if inputs.modality(spec) != modality:
        raise ExplainError(f"{name} reads {spec.reads}, not {modality}.")
    return spec, artifacts.load_model(name)


def poster_predictor(name: str) -> tuple[probes.PredictImages, int]:
    """``predict_images`` for a poster model and the poster size it reads: a trained Keras model
    (``inputs.raw_predictor``; a head on EfficientNet-Lite0 features is fed the 96-px cache resized
    to the encoder's 224 px: coarser than the originals it was evaluated on, the same for every
    ablation) or ``poster_histogram``."""
    if name == "poster_histogram":
        scaler, model = baselines.fit_poster_histogram(baselines.training_films(name))
        return (lambda images: model.predict(scaler.transform(baselines.poster_features(images)))), config.IMAGE_SIZE
    spec, model = _keras(name, "posters")
    return inputs.raw_predictor(spec, model, BATCH), inputs.raw_size(spec, ENCODER_POSTER_CACHE)


@functools.cache
def fitted_tfidf():
    """The TF-IDF baseline fitted on the training films, once per process (attribution and terms)."""
    return baselines.fit_tfidf(baselines.training_films("tfidf_logreg"))


def text_predictor(name: str) -> probes.PredictTexts:
    """``predict_texts`` for a text model: a trained Keras model reading overviews (or an encoder's
    vectors of them) or ``tfidf_logreg``."""
    if name == "tfidf_logreg":
        vectorizer, model = fitted_tfidf()
        return lambda texts: model.predict(vectorizer.transform(list(texts)))
    spec, model = _keras(name, "overviews")
    return inputs.raw_predictor(spec, model, BATCH)


# --------------------------------------------------------------------------- the stage
def _rule(name: str) -> dict:
    entry = artifacts.read_metrics().get("models", {}).get(name)
    if entry is None:
        raise ExplainError(f"{name}: no decision rule in {config.paths().metrics}. Run `filmgenre evaluate {name}`.")
    return entry["rule"]


def _examples(films: Films, per_genre: int, seed: int = config.SEED) -> tuple[np.ndarray, np.ndarray]:
    """Rows and genre indices of the example posters: ``per_genre`` random test films of each
    ``EXAMPLE_GENRES`` genre (seeded: the same films for every model)."""
    rng = np.random.default_rng(seed)
    rows, genres = [], []
    for genre in EXAMPLE_GENRES:
        g = config.GENRES.index(genre)
        members = np.flatnonzero(films.labels[:, g] > 0)
        chosen = sorted(rng.choice(members, size=min(per_genre, len(members)), replace=False))
        rows += chosen
        genres += [g] * len(chosen)
    return np.array(rows, dtype=int), np.array(genres, dtype=int)


def ablation_posters(name: str, films: Films, log=print) -> np.ndarray:
    """The test posters the ablations alter, as the model's own pipeline reads them: its poster
    cache, or for a head on the poster encoder the original files at the encoder's 224 px
    (``efficientnet.read_poster``, as its features were encoded), not the coarser 96-px cache
    its occlusion maps use (occluding 224-px posters would cost five times the memory)."""
    spec = registry.MODELS.get(name)
    if spec is None or not inputs.is_vectors(spec):
        return films.posters
    from filmgenre import rawdata
    from filmgenre.encoders import efficientnet

    started, cpu = time.perf_counter(), time.process_time()
    folder = rawdata.raw_images(extract=True)
    posters = np.stack([efficientnet.read_poster(folder / f"{film_id}.jpg") for film_id in films.ids])
    log(f"{name}: {len(posters)} original test posters read at {posters.shape[1]} px for the ablations "
        f"({time.perf_counter() - started:.0f} s, {time.process_time() - cpu:.0f} CPU s)")
    return posters


def explain_posters(name: str, occlusion_films: int, log=print) -> dict:
    """Ablation scores (margins over the constant prior), the mean occlusion map (mean absolute
    change of the probability of each poster's top genre, over ``occlusion_films`` random test
    posters) and the example maps of one poster model."""
    predict_images, size = poster_predictor(name)
    films = predictions.evaluation_films("test", size)
    started, cpu = time.perf_counter(), time.process_time()
    prior = ("prior", predictions.aligned("prior", films, "test"), _rule("prior"))
    ablation = [row | {"model": name} for row in probes.ablation_scores(
        predict_images, ablation_posters(name, films, log), films.labels, _rule(name), prior)]
    scores = ", ".join(f"{row['posters']} {row['micro-F1']:.3f}" for row in ablation)
    log(f"{name}: test micro-F1 on {scores} posters ({time.perf_counter() - started:.0f} s, "
        f"{time.process_time() - cpu:.0f} CPU s)")
    started = time.perf_counter()
    rng = np.random.default_rng(config.SEED)
    chosen = np.sort(rng.choice(len(films.ids), size=min(occlusion_films, len(films.ids)), replace=False))
    top = np.argmax(np.asarray(predict_images(films.posters[chosen])), axis=1)  # each poster's own top genre
    mean = probes.region_means(np.abs(probes.occlusion_maps(predict_images, films.posters[chosen], top)))  # no cancelling out
    rows, genres = _examples(films, EXAMPLES_PER_GENRE)
    examples = probes.occlusion_maps(predict_images, films.posters[rows], genres)
    log(f"{name}: occlusion of {len(chosen)} + {len(rows)} posters ({time.perf_counter() - started:.0f} s)")
    regions = pd.DataFrame([{"model": name, "row": r, "col": c, "change": mean[r, c]}
                            for r in range(mean.shape[0]) for c in range(mean.shape[1])])
    return {"ablation": ablation, "occlusion": regions, "examples": (films.ids[rows], genres, examples)}


def explain_text(name: str, texts: Sequence[str], genres: Sequence[str], log=print) -> pd.DataFrame:
    """Leave-one-word-out rankings of one text model, per genre."""
    started = time.perf_counter()
    contributions = probes.leave_one_word_out(text_predictor(name), texts)
    log(f"{name}: leave-one-word-out over {len(texts)} overviews, "
        f"{sum(len(c) for c in contributions)} variants ({time.perf_counter() - started:.0f} s)")
    return pd.concat([probes.word_ranking(texts, contributions, genre).assign(model=name) for genre in genres],
                     ignore_index=True)


def leakage_models() -> tuple[list[str], str | None]:
    """The text models re-scored on masked overviews, and the poster model they are set against:
    the fusion's two members (the best text and poster models `make all` trains, chosen on
    validation) and the TF-IDF baseline (whose coefficients show the names), those with a rule."""
    entries = artifacts.read_metrics().get("models", {})
    members = entries.get("fusion", {}).get("fusion", {})
    texts = [n for n in dict.fromkeys([members.get("text"), "tfidf_logreg"]) if n in entries]
    return texts, members.get("poster") if members.get("poster") in entries else None


def genre_name_leakage(films: Films, log=print) -> dict:
    """``leakage.measure`` on the test films: naming shares, and the text models of
    ``leakage_models`` on original and masked overviews beside the best poster model."""
    texts, poster = leakage_models()
    started, cpu = time.perf_counter(), time.process_time()
    reference = (poster, predictions.aligned(poster, films, "test"), _rule(poster)) if poster else None
    found = leakage.measure(list(films.overviews), films.labels, {n: text_predictor(n) for n in texts},
                            {n: _rule(n) for n in texts}, reference)
    changes = ", ".join(f"{n} {found['differences'][f'{n}/masked_vs_{n}/original']['f1_micro']['difference']:+.3f}"
                        for n in texts)
    log(f"leakage: {found['naming']['own_genre']:.1%} of test overviews name one of their genres; masked, "
        f"micro-F1 changes by {changes} ({time.perf_counter() - started:.0f} s, {time.process_time() - cpu:.0f} CPU s)")
    return found | {"cpu_seconds": round(time.process_time() - cpu, 1)}


def explained_genres(films: Films, count: int = 8) -> list[str]:
    """The genres the word rankings cover: the ``count`` with most test films."""
    support = films.labels.sum(axis=0)
    return [config.GENRES[g] for g in np.argsort(-support, kind="stable")[:count]]


def default_models() -> tuple[list[str], list[str]]:
    """Poster and text models to explain: the trained Keras ones that read pixels or overviews,
    plus the baselines ``poster_histogram`` and ``tfidf_logreg``."""
    trained = [name for name in registry.trained_models() if not inputs.is_vectors(registry.MODELS[name])]
    posters = [n for n in trained if inputs.modality(registry.MODELS[n]) == "posters"] + ["poster_histogram"]
    texts = [n for n in trained if inputs.modality(registry.MODELS[n]) == "overviews"] + ["tfidf_logreg"]
    return posters, texts


def _still_known(name: str) -> bool:
    """A baseline or a model of the registry: the registry is the truth for what the tables show."""
    return name in baselines.BASELINES or name in registry.MODELS


def _write(name: str, frame: pd.DataFrame, replace_models: bool = False) -> None:
    """Write ``results/explain/<name>.csv``; with ``replace_models``, rows of models not in
    ``frame`` are kept, so explaining one more model (``--posters NAME``) adds to the table.
    A model explained again keeps its place, so a rerun rewrites the same file; rows of a model no
    longer in the registry go."""
    path = folder() / f"{name}.csv"
    if replace_models and (kept := kept_rows(name)) is not None:
        kept = kept[kept["model"].map(_still_known)]
        order = list(dict.fromkeys([*kept["model"], *frame["model"]]))
        frame = (pd.concat([kept[~kept["model"].isin(frame["model"])], frame], ignore_index=True)
                 .sort_values("model", key=lambda models: models.map(order.index), kind="stable")
                 [list(frame.columns)])
    files.write_csv(path, frame.round(DECIMALS))


def kept_rows(name: str) -> pd.DataFrame | None:
    """The rows of ``results/explain/<name>.csv`` that an explain run adds to (``None`` if there is no such
    file), checked: a damaged table stops the stage naming it, rather than losing other models' rows."""
    path = folder() / f"{name}.csv"
    if not path.exists():
        return None
    try:
        kept = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise artifacts.ArtifactError(f"{artifacts.relative(path)}: not a readable CSV ({type(error).__name__}). "
                                      f"{SUMMARY_FIX}") from None
    if "model" not in kept.columns:
        raise artifacts.ArtifactError(f"{artifacts.relative(path)}: no 'model' column. {SUMMARY_FIX}")
    return kept


def kept_examples(npz, replaced: Sequence[str], log) -> dict:
    """The example maps of the models not ``replaced`` from ``occlusion_examples.npz``. The file is
    git-ignored and derived, so a damaged one is dropped with one line, not a traceback."""
    if not npz.exists():
        return {}
    kept, problem = files.npz_arrays(npz)
    if problem:
        log(f"{artifacts.relative(npz)}: {problem}; written anew with these models' maps only "
            "(`filmgenre explain --posters NAME` adds another's).")
        return {}
    return {key: maps for key, maps in kept.items() if key.split("/")[0] not in replaced}


def run(posters: Sequence[str] | None = None, texts: Sequence[str] | None = None, occlusion_films: int = 200,
        word_films: int | None = None, name_leakage: bool = True, log=print) -> dict:
    """The `filmgenre explain` stage: write ``results/explain/{ablation,occlusion,words,tfidf_terms,
    calibration}.csv``, ``leakage.json`` and ``summary.json`` (settings, seconds per part); the example maps to
    ``occlusion_examples.npz`` (git-ignored). Without ``name_leakage`` the committed ``leakage.json``
    stays (explaining one more model need not re-score the text models on masked overviews)."""
    default_posters, default_texts = default_models()
    posters = default_posters if posters is None else list(posters)
    texts = default_texts if texts is None else list(texts)
    out = folder()
    out.mkdir(parents=True, exist_ok=True)
    # What earlier runs wrote and this one adds to, checked before any work: a damaged file stops here.
    earlier = artifacts.read_json(out / "summary.json", SUMMARY_FIX, {})  # models explained earlier stay listed
    for table in ("ablation", "occlusion", "words"):
        kept_rows(table)
    test = predictions.evaluation_films("test")
    seconds = {}

    started = time.perf_counter()
    names = list(artifacts.read_metrics().get("models", {}))
    _write("calibration", calibration(names, test))
    seconds["calibration"] = time.perf_counter() - started
    log(f"calibration of {len(names)} models ({seconds['calibration']:.0f} s)")

    ablation, occlusion, examples = [], [], {}
    for name in posters:
        started = time.perf_counter()
        result = explain_posters(name, occlusion_films, log)
        ablation += result["ablation"]
        occlusion.append(result["occlusion"])
        ids, genres, maps = result["examples"]
        examples |= {f"{name}/ids": ids, f"{name}/genres": genres, f"{name}/maps": maps.astype(np.float32)}
        seconds[f"posters {name}"] = time.perf_counter() - started
    if posters:
        frame = pd.DataFrame(ablation)
        _write("ablation", frame[["model", *frame.columns.drop("model")]], True)
        _write("occlusion", pd.concat(occlusion, ignore_index=True), True)
        npz = out / "occlusion_examples.npz"
        np.savez_compressed(npz, **(kept_examples(npz, posters, log) | examples))

    genres = explained_genres(test)
    rankings = []
    for name in texts:
        started = time.perf_counter()
        rankings.append(explain_text(name, list(test.overviews[:word_films]), genres, log))
        seconds[f"words {name}"] = time.perf_counter() - started
    if texts:
        _write("words", pd.concat(rankings, ignore_index=True)[
            ["model", "genre", "rank", "word", "contribution", "films"]], True)
    started = time.perf_counter()
    _write("tfidf_terms", probes.tfidf_terms(*fitted_tfidf(), genres))
    seconds["tfidf terms"] = time.perf_counter() - started

    if name_leakage:
        started = time.perf_counter()
        files.write_json(out / "leakage.json", genre_name_leakage(test, log))
        seconds["leakage"] = time.perf_counter() - started

    summary = {"posters": list(dict.fromkeys(filter(_still_known, earlier.get("posters", []) + posters))),
               "texts": list(dict.fromkeys(filter(_still_known, earlier.get("texts", []) + texts))), "occlusion_films": occlusion_films,
               "word_films": word_films or len(test.ids), "patch": probes.PATCH, "stride": probes.STRIDE, "regions": probes.REGIONS,
               "word_min_count": probes.WORD_MIN_COUNT, "calibration_bins": probes.CALIBRATION_BINS,
               "seconds": earlier.get("seconds", {}) | {k: round(v, 1) for k, v in seconds.items()}}
    files.write_json(out / "summary.json", summary)
    log(f"wrote {out} ({sum(seconds.values()):.0f} s in all)")
    return summary
