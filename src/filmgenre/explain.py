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

Everything works over plain callables, so any model can be explained:
``predict_images(uint8 N x H x W x 3) -> N x 25 probabilities`` and
``predict_texts(list of str) -> N x 25 probabilities``; ``poster_predictor`` and
``text_predictor`` build them for the trained Keras models and the baselines. ``run`` writes
small aggregated tables to ``results/explain/`` (committed: the report renders without
models); the per-poster maps go to ``results/explain/occlusion_examples.npz``, which is
git-ignored because it is derived from the posters.
"""

import functools
import re
import time
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from filmgenre import FilmgenreError, artifacts, baselines, config, files, inputs, leakage, predictions, registry
from filmgenre import uncertainty
from filmgenre.rules import apply_rule
from filmgenre.dataset import Films

PredictImages = Callable[[np.ndarray], np.ndarray]
PredictTexts = Callable[[Sequence[str]], np.ndarray]

PATCH = 1 / 4  # occluded square, as a fraction of the poster's side
STRIDE = 1 / 8  # step between squares: 7 x 7 positions
REGIONS = 8  # the committed mean maps: REGIONS x REGIONS cells of the poster
ABLATIONS = ("original", "grayscale", "shuffled")
EXAMPLE_GENRES = ("Drama", "Comedy", "Horror", "Action")  # the per-poster example maps
EXAMPLES_PER_GENRE = 3
WORD_MIN_COUNT = 10  # a word must occur in this many test overviews to be ranked (fewer: anecdotes)
TOP_WORDS = 8
CALIBRATION_BINS = 10
BATCH = 256
ENCODER_POSTER_CACHE = 96  # the poster cache the EfficientNet heads are explained on (``poster_predictor``)
OCCLUSION_BATCH = 4096  # occluded variants per predict call (memory: 4096 posters at the model's size)
DECIMALS = 5  # of the committed tables
SUMMARY_FIX = "Rebuild it with `filmgenre explain` (or `make all`), or restore the committed one: `git checkout results/explain/`."


class ExplainError(FilmgenreError):
    """A model or input ``explain`` cannot use: the message says what to run."""


def folder():
    return config.paths().results / "explain"


# --------------------------------------------------------------------------- posters
def occlusion_maps(predict_images: PredictImages, images: np.ndarray, genres: Sequence[int],
                   patch: float = PATCH, stride: float = STRIDE) -> np.ndarray:
    """Per poster, the drop in the probability of its genre (``genres[i]``, an index of
    ``config.GENRES``) when each pixel is occluded: N x H x W, each pixel the mean drop over the
    squares that cover it. The square is filled with the poster's mean colour, so the poster's
    overall colour is kept and a model that only sees the colour distribution sees a change
    only where the square changes that distribution."""
    images = np.asarray(images, dtype=np.uint8)
    n, height, width, _ = images.shape
    size, step = max(1, round(height * patch)), max(1, round(height * stride))
    corners = [(top, left) for top in range(0, height - size + 1, step) for left in range(0, width - size + 1, step)]
    genres = np.asarray(genres)
    base = np.asarray(predict_images(images))[np.arange(n), genres]
    cover = np.zeros((height, width))
    for top, left in corners:
        cover[top:top + size, left:left + size] += 1
    maps = np.zeros((n, height, width))
    per_call = max(1, OCCLUSION_BATCH // len(corners))  # posters whose variants go in one predict call
    for start in range(0, n, per_call):
        chunk = images[start:start + per_call]
        variants = np.repeat(chunk, len(corners), axis=0).reshape(len(chunk), len(corners), *chunk.shape[1:])
        fills = chunk.reshape(len(chunk), -1, 3).mean(axis=1).round().astype(np.uint8)
        for k, (top, left) in enumerate(corners):
            variants[:, k, top:top + size, left:left + size] = fills[:, None, None, :]
        probabilities = np.asarray(predict_images(variants.reshape(-1, *chunk.shape[1:])))
        rows = np.arange(len(chunk))
        drops = base[start + rows, None] - probabilities.reshape(len(chunk), len(corners), -1)[
            rows, :, genres[start + rows]]
        for k, (top, left) in enumerate(corners):
            maps[start + rows, top:top + size, left:left + size] += drops[:, k, None, None]
    return maps / np.maximum(cover, 1)  # a pixel no square covers (a ragged edge) stays 0


def region_means(maps: np.ndarray, regions: int = REGIONS) -> np.ndarray:
    """Pixel maps (N x H x W) averaged over posters and pooled into regions x regions cells, so
    maps of models reading different poster sizes compare."""
    mean = np.asarray(maps).mean(axis=0)
    rows = np.array_split(np.arange(mean.shape[0]), regions)
    cols = np.array_split(np.arange(mean.shape[1]), regions)
    return np.array([[mean[np.ix_(r, c)].mean() for c in cols] for r in rows])


def grayscale(images: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in all three channels: brightness kept, hue and saturation gone."""
    luma = np.asarray(images, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(luma.round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def shuffled(images: np.ndarray, seed: int = config.SEED) -> np.ndarray:
    """Each poster's pixels permuted at random within it: exactly the same colour histogram,
    no layout, shapes or lettering."""
    rng = np.random.default_rng(seed)
    images = np.asarray(images)
    flat = images.reshape(len(images), -1, images.shape[-1])
    return np.stack([pixels[rng.permutation(len(pixels))] for pixels in flat]).reshape(images.shape)


def ablate(images: np.ndarray, kind: str) -> np.ndarray:
    """The posters as ``kind`` of ``ABLATIONS`` leaves them."""
    return {"original": lambda x: x, "grayscale": grayscale, "shuffled": shuffled}[kind](images)


def ablation_scores(predict_images: PredictImages, images: np.ndarray, labels: np.ndarray, rule: dict,
                    reference: tuple[str, np.ndarray, dict] | None = None) -> list[dict]:
    """Test scores on each ablation of the posters under one fixed decision rule: micro-F1, and
    macro-F1 and macro-AP over the genres with at least ``uncertainty.MIN_TEST_FILMS`` films.

    With ``reference`` (the name, test probabilities and rule of a model that reads no poster,
    such as the constant prior), also each score's margin over it, micro-F1 and the
    threshold-free macro-AP (which a probability scale shifted by the ablation cannot move
    through a threshold), with paired 95% bootstrap intervals.
    """
    labels = np.asarray(labels)
    sets = {}
    for kind in ABLATIONS:
        probabilities = np.asarray(predict_images(ablate(images, kind)), dtype=np.float64)
        sets[kind] = {"probabilities": probabilities, "predicted": apply_rule(probabilities, rule)}
    if reference is not None:
        sets[reference[0]] = {"probabilities": reference[1], "predicted": apply_rule(reference[1], reference[2])}
    pairs = [(kind, reference[0]) for kind in ABLATIONS] if reference is not None else []
    scores, differences = uncertainty.paired_scores(
        labels, sets, pairs, uncertainty.scored_genres(labels, uncertainty.MIN_TEST_FILMS))
    rows = []
    for kind in ABLATIONS:
        row = {"posters": kind, "micro-F1": scores[kind]["f1_micro"], "macro-F1": scores[kind]["f1_macro_fixed"],
               "macro-AP": scores[kind]["average_precision_macro_fixed"]}
        for metric, label in (("f1_micro", "micro-F1"), ("average_precision_macro_fixed", "macro-AP")):
            if reference is not None:
                found = differences[f"{kind}_vs_{reference[0]}"][metric]
                row |= {f"{label} margin": found["difference"], f"{label} margin low": found["interval"][0],
                        f"{label} margin high": found["interval"][1]}
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- overviews
def words(text: str) -> list[str]:
    """An overview's words as the models' tokenizer sees them: split on white space."""
    return text.split()


def normalise(word: str) -> str:
    """Lower case without punctuation, as ``TextVectorization``'s default standardisation."""
    return re.sub(r"[^\w]", "", word.lower())


def leave_one_word_out(predict_texts: PredictTexts, texts: Sequence[str]) -> list[np.ndarray]:
    """Per overview, a words x 25 array: the probability of each genre with the overview intact
    minus that without the word (positive: the word raises the genre). One batched call."""
    split = [words(text) for text in texts]
    variants = [" ".join(w[:j] + w[j + 1:]) for w in split for j in range(len(w))]
    probabilities = np.asarray(predict_texts(list(texts) + variants), dtype=np.float64)
    base, rest = probabilities[:len(texts)], probabilities[len(texts):]
    out, start = [], 0
    for i, w in enumerate(split):
        out.append(base[i] - rest[start:start + len(w)])
        start += len(w)
    return out


def word_ranking(texts: Sequence[str], contributions: Sequence[np.ndarray], genre: str,
                 min_count: int = WORD_MIN_COUNT, top: int = TOP_WORDS) -> pd.DataFrame:
    """The words whose removal lowers ``genre``'s probability most, on average over their
    occurrences, among words in at least ``min_count`` of the overviews."""
    g = config.GENRES.index(genre)
    rows = [(normalise(word), drop[g], i) for i, (text, drops) in enumerate(zip(texts, contributions))
            for word, drop in zip(words(text), drops)]
    frame = pd.DataFrame(rows, columns=["word", "contribution", "film"])
    frame = frame[frame["word"] != ""]
    grouped = frame.groupby("word").agg(contribution=("contribution", "mean"), films=("film", "nunique"))
    grouped = grouped[grouped["films"] >= min_count].sort_values("contribution", ascending=False).head(top)
    return grouped.reset_index().assign(genre=genre, rank=lambda f: np.arange(1, len(f) + 1))


def tfidf_terms(vectorizer, model: baselines.OneVsRest, genres: Sequence[str], top: int = TOP_WORDS) -> pd.DataFrame:
    """Per genre, the TF-IDF terms with the largest logistic-regression coefficients."""
    names = vectorizer.get_feature_names_out()
    rows = []
    for genre in genres:
        classifier = model.classifiers[config.GENRES.index(genre)]
        if classifier is None:
            continue
        coefficients = classifier.coef_.ravel()
        for rank, index in enumerate(np.argsort(-coefficients)[:top], start=1):
            rows.append({"genre": genre, "rank": rank, "term": names[index], "coefficient": coefficients[index]})
    return pd.DataFrame(rows, columns=["genre", "rank", "term", "coefficient"])


# --------------------------------------------------------------------------- calibration
def calibration_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Reliability diagram data: per probability bin (equal width), the pairs in it, their mean
    predicted probability and the observed share of positives, pooled over every (film, genre)."""
    p, y = np.asarray(probabilities, dtype=np.float64).ravel(), np.asarray(labels).ravel()
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows = [{"bin": b, "low": b / bins, "high": (b + 1) / bins, "pairs": int((index == b).sum()),
             "predicted": p[index == b].mean() if (index == b).any() else np.nan,
             "observed": y[index == b].mean() if (index == b).any() else np.nan} for b in range(bins)]
    return pd.DataFrame(rows)


def calibration_error(table: pd.DataFrame) -> float:
    """Expected calibration error: the pair-weighted mean |observed - predicted| over the bins."""
    used = table[table["pairs"] > 0]
    return float((used["pairs"] * (used["observed"] - used["predicted"]).abs()).sum() / used["pairs"].sum())


def calibration(names: Sequence[str], films: Films) -> pd.DataFrame:
    """``calibration_bins`` of each model's committed test predictions."""
    frames = []
    for name in names:
        table = predictions.read_predictions(name)
        table = table[table["split"] == "test"].set_index("Id").loc[films.ids]
        frames.append(calibration_bins(table[config.GENRES].to_numpy(), films.labels).assign(model=name))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- predictors
def _keras(name: str, modality: str):
    """A trained model's entry and its saved model, checked to read ``modality``."""
    spec = registry.spec(name)
    if inputs.modality(spec) != modality:
        raise ExplainError(f"{name} reads {spec.reads}, not {modality}.")
    return spec, artifacts.load_model(name)


def poster_predictor(name: str) -> tuple[PredictImages, int]:
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


def text_predictor(name: str) -> PredictTexts:
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
    ablation = [row | {"model": name} for row in ablation_scores(
        predict_images, ablation_posters(name, films, log), films.labels, _rule(name), prior)]
    scores = ", ".join(f"{row['posters']} {row['micro-F1']:.3f}" for row in ablation)
    log(f"{name}: test micro-F1 on {scores} posters ({time.perf_counter() - started:.0f} s, "
        f"{time.process_time() - cpu:.0f} CPU s)")
    started = time.perf_counter()
    rng = np.random.default_rng(config.SEED)
    chosen = np.sort(rng.choice(len(films.ids), size=min(occlusion_films, len(films.ids)), replace=False))
    top = np.argmax(np.asarray(predict_images(films.posters[chosen])), axis=1)  # each poster's own top genre
    mean = region_means(np.abs(occlusion_maps(predict_images, films.posters[chosen], top)))  # no cancelling out
    rows, genres = _examples(films, EXAMPLES_PER_GENRE)
    examples = occlusion_maps(predict_images, films.posters[rows], genres)
    log(f"{name}: occlusion of {len(chosen)} + {len(rows)} posters ({time.perf_counter() - started:.0f} s)")
    regions = pd.DataFrame([{"model": name, "row": r, "col": c, "change": mean[r, c]}
                            for r in range(mean.shape[0]) for c in range(mean.shape[1])])
    return {"ablation": ablation, "occlusion": regions, "examples": (films.ids[rows], genres, examples)}


def explain_text(name: str, texts: Sequence[str], genres: Sequence[str], log=print) -> pd.DataFrame:
    """Leave-one-word-out rankings of one text model, per genre."""
    started = time.perf_counter()
    contributions = leave_one_word_out(text_predictor(name), texts)
    log(f"{name}: leave-one-word-out over {len(texts)} overviews, "
        f"{sum(len(c) for c in contributions)} variants ({time.perf_counter() - started:.0f} s)")
    return pd.concat([word_ranking(texts, contributions, genre).assign(model=name) for genre in genres],
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
    if replace_models and path.exists():
        kept = pd.read_csv(path, keep_default_na=False, na_values=[""])
        kept = kept[kept["model"].map(_still_known)]
        order = list(dict.fromkeys([*kept["model"], *frame["model"]]))
        frame = (pd.concat([kept[~kept["model"].isin(frame["model"])], frame], ignore_index=True)
                 .sort_values("model", key=lambda models: models.map(order.index), kind="stable")
                 [list(frame.columns)])
    files.write_csv(path, frame.round(DECIMALS))


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
        if npz.exists():
            with np.load(npz) as kept:
                examples = {key: kept[key] for key in kept.files if key.split("/")[0] not in posters} | examples
        np.savez_compressed(npz, **examples)

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
    _write("tfidf_terms", tfidf_terms(*fitted_tfidf(), genres))
    seconds["tfidf terms"] = time.perf_counter() - started

    if name_leakage:
        started = time.perf_counter()
        files.write_json(out / "leakage.json", genre_name_leakage(test, log))
        seconds["leakage"] = time.perf_counter() - started

    earlier = artifacts.read_json(out / "summary.json", SUMMARY_FIX, {})  # models explained by earlier runs stay listed
    summary = {"posters": list(dict.fromkeys(filter(_still_known, earlier.get("posters", []) + posters))),
               "texts": list(dict.fromkeys(filter(_still_known, earlier.get("texts", []) + texts))), "occlusion_films": occlusion_films,
               "word_films": word_films or len(test.ids), "patch": PATCH, "stride": STRIDE, "regions": REGIONS,
               "word_min_count": WORD_MIN_COUNT, "calibration_bins": CALIBRATION_BINS,
               "seconds": earlier.get("seconds", {}) | {k: round(v, 1) for k, v in seconds.items()}}
    files.write_json(out / "summary.json", summary)
    log(f"wrote {out} ({sum(seconds.values()):.0f} s in all)")
    return summary
