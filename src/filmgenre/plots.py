"""The report's figures, drawn from the committed files in ``results/`` (matplotlib + seaborn).

Each function returns its figure and also saves it as ``report/figures/<name>.png`` and as
vector ``<name>.pdf``, so a figure can be cited or reused on its own at any size. The Quarto
documents call these functions; so do the tests. Figures that show posters (the sample films,
the per-poster occlusion maps) draw them only where the dataset is prepared; both files are
git-ignored like every figure.
"""

import textwrap

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI or in a Jupyter kernel without one
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from filmgenre import config, dataset, explain_tables, figure_index, files, posters, rawdata, tables  # noqa: E402

sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)
figure_index.watch(__file__)  # the results files each function below reads are noted for its figure
SMALLEST = 7.5  # points: figures are drawn at the width they print at (7 in), so no text is under 7 pt
plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": SMALLEST,
                     "ytick.labelsize": SMALLEST, "legend.fontsize": SMALLEST, "legend.title_fontsize": SMALLEST})


def save(figure, name: str):
    """Save as PNG and PDF under a stable name in report/figures/ and return the figure for display.

    Each save enters the figure in report/figures/index.json with what drew it and from which
    results (``figure_index``), so a figure can be cited and checked for staleness."""
    folder = config.paths().figures
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / f"{name}.{suffix}" for suffix in ("png", "pdf")]
    for path in written:
        figure.savefig(path, dpi=200, bbox_inches="tight")
    figure_index.record(name, written)
    return figure


def genre_counts():
    """Films per genre in each split: the imbalance every model faces."""
    counts = tables.genre_counts().drop(columns="total")
    counts = counts[counts.sum(axis=1) > 0].sort_values("train")
    figure, axis = plt.subplots(figsize=(6.5, 3.6))
    counts.plot.barh(stacked=True, ax=axis, width=0.8, color=sns.color_palette("deep", 3))
    axis.set_xlabel("films")
    axis.set_ylabel("")
    axis.legend(title="split", loc="lower right")
    return save(figure, "genre_counts")


def training_curves(names=("cnn", "lstm"), baseline: str | None = "prior", metrics=("loss", "precision", "recall"),
                    name: str = "training_curves"):
    """Loss, precision and recall (at a threshold of 0.5) per epoch, training vs validation, one row
    per model (or, with only the loss, one panel per model), with the best epoch marked and on the
    loss panels the validation cross-entropy of ``baseline`` (the constant prior: what a model
    scores that knows only the genres' frequencies)."""
    names = [n for n in names if (config.paths().results / n / "history.csv").exists()]
    floor = tables.metrics()["models"].get(baseline, {}).get("val", {}).get("cross_entropy") if baseline else None
    rows, columns = (1, len(names)) if len(metrics) == 1 else (len(names), len(metrics))
    figure, axes = plt.subplots(rows, columns, figsize=(7.0, 1.1 * rows + 0.15), squeeze=False)
    panels = iter(axes.flat)
    for model in names:
        history = tables.history(model)
        best = tables.training(model)["best_epoch"]
        for metric in metrics:
            axis = next(panels)
            axis.plot(history["epoch"] + 1, history[metric], label="train")
            axis.plot(history["epoch"] + 1, history[f"val_{metric}"], label="validation")
            axis.axvline(best, color="grey", linestyle=":", linewidth=1, label="kept epoch")
            axis.set_title(f"{model}: {metric}" + (" at 0.5" if metric != "loss" else ""))
            axis.set_xlabel("epoch")
            if metric == "loss" and floor is not None:
                axis.axhline(floor, color="black", linestyle="--", linewidth=0.8, label=f"{baseline}, validation")
    # one legend for every panel, beside them: inside a panel it would hide the curves
    figure.legend(*axes.flat[0].get_legend_handles_labels(), loc="center right", frameon=False)
    figure.tight_layout(pad=0.3, rect=(0, 0, 0.84, 1))
    return save(figure, name)


def per_genre(names=("cnn", "lstm"), metrics=("precision", "recall")):
    """Per-genre test precision and recall of two models, genres in ``tables.genre_order``."""
    frame = tables.per_genre(names)
    frame = frame[frame["support"] > 0]
    order = [g for g in tables.genre_order() if g in set(frame["genre"])]
    long = frame.melt(id_vars=["model", "genre", "support"], value_vars=list(metrics), var_name="metric")
    grid = sns.catplot(data=long, kind="bar", x="genre", y="value", hue="model", row="metric", order=order,
                       height=1.1, aspect=6.4, legend_out=False, sharey=True)
    grid.set_axis_labels("", "")
    grid.set_titles("{row_name}")
    for axis in grid.axes.flat:
        axis.tick_params(axis="x", rotation=60)
        axis.set_ylim(0, 1)
    return save(grid.figure, "per_genre")


def modality_differences(pairs, metric: str = "F1"):
    """Per genre, test ``metric`` (F1 or AP) of a text model minus a poster model with its paired
    95% interval, one series per (text, poster) pair; genres in ``tables.genre_order``. A genre
    where both models score 0 is no tie measured with certainty but two models that never get it
    right: it gets no point, only the words "both 0"."""
    figure, axis = plt.subplots(figsize=(7.0, 1.7))
    offsets = np.linspace(-0.18, 0.18, len(pairs))
    for offset, (text, poster), colour in zip(offsets, pairs, sns.color_palette("deep")):
        table = tables.modality_per_genre(text, poster)
        both_zero = table[f"{metric} both 0"].to_numpy()
        x = np.arange(len(table)) + offset
        middle = table[f"{metric} difference"]
        axis.errorbar(x[~both_zero], middle[~both_zero], yerr=[(middle - table[f"{metric} low"])[~both_zero],
                                                               (table[f"{metric} high"] - middle)[~both_zero]],
                      fmt="o", markersize=3, linewidth=1, color=colour, label=f"{text} \u2212 {poster}")
        for where in x[both_zero]:
            axis.text(where, 0.03, "both 0", rotation=90, ha="center", va="bottom", color=colour, fontsize=SMALLEST)
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_xticks(np.arange(len(table)))
    axis.set_xticklabels([f"{g} ({n})" for g, n in table["films"].items()], rotation=40, ha="right",
                       rotation_mode="anchor")
    axis.set_ylabel(f"{metric}: text \u2212 poster")
    axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # outside the axes: off the points
    figure.tight_layout(pad=0.3)
    return save(figure, f"modality_{metric.lower()}")


def false_positives(name: str = "lstm", min_films: int = 10):
    """Where a model's wrong genres go, in films: row g (a true genre with at least ``min_films``
    test films, labelled with that number), column h, the films of g predicted h although h is
    not one of their genres. Counts, not shares, so a genre weighs by its films."""
    table = tables.false_positives(name, min_films)
    figure, axis = plt.subplots(figsize=(7.0, 2.8))
    sns.heatmap(table, ax=axis, cmap="rocket_r", annot=True, fmt="d", annot_kws={"size": SMALLEST},
                cbar_kws={"label": "films", "shrink": 0.8}, linewidths=0.3, linecolor="white",
                xticklabels=True, yticklabels=True, mask=table == 0)
    axis.grid(False)  # the theme's grid would cross the empty cells
    dark = 0.55 * table.to_numpy().max()  # where rocket_r turns dark enough for white digits
    for text in axis.texts:  # seaborn's own choice leaves white digits on mid-orange cells
        text.set_color("white" if int(text.get_text()) > dark else "black")
    axis.set_xlabel("genre predicted although not a true genre of the film")
    axis.set_ylabel("true genre (test films)")
    figure.tight_layout(pad=0.3)
    return save(figure, f"false_positives_{name}")


def confusion(name: str = "lstm"):
    """Genre-by-genre co-occurrence of truth and prediction: of the test films of true genre g,
    the share predicted as h (the diagonal is recall; off it, right and wrong calls mix)."""
    matrix = tables.confusion_genres(name)
    figure, axis = plt.subplots(figsize=(7.0, 3.6))
    sns.heatmap(matrix, ax=axis, cmap="mako_r", vmin=0, vmax=1, cbar_kws={"shrink": 0.8},
                xticklabels=True, yticklabels=True)
    axis.set_xlabel("predicted genre")
    axis.set_ylabel("true genre")
    return save(figure, f"confusion_{name}")


def _marked(top3: str, true_genres: set[str]) -> str:
    """'Drama 0.45, Comedy 0.30' -> 'Drama 0.45 ✓  Comedy 0.30 ✗': which of a model's top genres are true."""
    marked = []
    for item in top3.split(", "):
        genre, probability = item.rsplit(" ", 1)
        marked.append(f"{genre} {probability} {'✓' if genre in true_genres else '✗'}")
    return "  ".join(marked)


def _poster_pixels(film_id: str) -> np.ndarray | None:
    """The film's original poster at full resolution, or ``None`` when it is not under data/raw
    or ``prepare`` could not use it either (``open_poster`` refuses it before decoding)."""
    path = rawdata.raw_poster(film_id)
    if path is None:
        return None
    try:
        with posters.open_poster(path) as image:
            return np.asarray(image.convert("RGB"))
    except (posters.PosterError, OSError):
        return None


def sample_films(models=("cnn", "lstm"), samples_file: str = "samples.csv", per_bucket: int = 1, columns: int = 2,
                 height: float = 1.3):
    """Sample test films: the original poster (from data/raw, when the dataset is there), the
    overview, the true genres and each model's top three with probabilities, ✓ marking a true genre.

    Posters are never committed; without the dataset the panels hold the text alone.
    """
    samples = tables.samples(samples_file).groupby("bucket", sort=False).head(per_bucket)
    rows = int(np.ceil(len(samples) / columns))
    figure = plt.figure(figsize=(7.0, height * rows))
    grid = figure.add_gridspec(rows, 2 * columns, width_ratios=[0.62, 2.6] * columns, wspace=0.04, hspace=0.12,
                               left=0.005, right=0.995, top=0.995, bottom=0.005)
    for i, (_, film) in enumerate(samples.iterrows()):
        row, column = divmod(i, columns)
        poster = _poster_pixels(film["Id"])
        if poster is not None:
            poster_axis = figure.add_subplot(grid[row, 2 * column])
            poster_axis.imshow(poster)
            poster_axis.set_anchor("N")
            poster_axis.axis("off")
            text_axis = figure.add_subplot(grid[row, 2 * column + 1])
        else:
            text_axis = figure.add_subplot(grid[row, 2 * column:2 * column + 2])
        text_axis.axis("off")
        true = set(film["true_genres"].split(", "))
        text_axis.text(0, 1, f"{film['bucket']} ({film['Id']})", fontsize=SMALLEST, fontweight="bold", va="top",
                       transform=text_axis.transAxes)
        lines = [f"true: {film['true_genres']}", *[f"{m}: {_marked(film[f'{m}_top3'], true)}" for m in models],
                 *textwrap.wrap(textwrap.shorten(film["overview"], 230, placeholder=" …"), 58)]
        text_axis.text(0, 0.87, "\n".join(lines), fontsize=SMALLEST, va="top", linespacing=1.25,
                       transform=text_axis.transAxes)
    return save(figure, "sample_films")


def fusion_weights():
    """Validation micro-F1 of the fusion for each poster weight; the chosen one marked."""
    fusion = tables.metrics()["models"]["fusion"]["fusion"]
    scores = pd.DataFrame(fusion["weights_tried"])
    figure, axis = plt.subplots(figsize=(5, 2.6))
    axis.plot(scores["weight"], scores["val_f1_micro"], marker="o", markersize=3)
    axis.axvline(fusion["weight"], color="grey", linestyle=":")
    axis.set_xlabel(f"weight of {fusion['poster']} (1 - weight: {fusion['text']})")
    axis.set_ylabel("validation micro-F1")
    return save(figure, "fusion_weights")


# --------------------------------------------------------------------------- evidence (filmgenre explain)
def occlusion(models=None, width: float = 7.0):
    """Where poster models look, one column per model: on top the mean absolute change in the
    probability of each poster's top genre when a square of it is occluded (results/explain/occlusion.csv); below,
    where the dataset and the example maps are on this machine, the maps of a few test posters per
    genre (the drop in that genre's probability) over the posters as the model saw them."""
    regions = explain_tables.explain("occlusion")
    models = list(dict.fromkeys(regions["model"])) if models is None else list(models)
    examples = _occlusion_examples(models)
    rows, columns = (1, 1) if not examples else max(
        (len(set(genres)) + 1, int(np.bincount(genres).max())) for _, genres, _, _ in examples.values())
    cell = width / (len(models) * max(columns, 1.6))
    figure = plt.figure(figsize=(width, cell * (rows + 0.15 * rows) + 0.2))
    for panel, name in zip(np.atleast_1d(figure.subfigures(1, len(models), wspace=0.02)), models):
        axes = panel.subplots(rows, columns, squeeze=False)
        for axis in axes.flat:
            axis.set_xticks([])
            axis.set_yticks([])
            axis.grid(False)
            axis.set_frame_on(False)
        grid = regions[regions["model"] == name].pivot(index="row", columns="col", values="change").to_numpy()
        shown = axes[0, columns // 2].imshow(grid, cmap="magma", vmin=0)
        axes[0, columns // 2].set_title(f"{name}: mean |change|")
        panel.colorbar(shown, ax=axes[0, columns // 2], fraction=0.046, pad=0.03).ax.tick_params(labelsize=SMALLEST)
        if name not in examples:
            continue
        ids, genres, maps, posters = examples[name]
        top = max(float(maps.max()), 1e-6)
        for row, genre in enumerate(dict.fromkeys(genres), start=1):
            axes[row, 0].set_ylabel(config.GENRES[genre])
            for axis, i in zip(axes[row], np.flatnonzero(genres == genre)):
                axis.imshow(posters[ids[i]])
                axis.imshow(_heat(maps[i] / top))
    return save(figure, "occlusion")


def _heat(share: np.ndarray) -> np.ndarray:
    """An RGBA overlay: transparent where occlusion changes nothing, opaque yellow-red where it matters most."""
    share = np.clip(share, 0, 1)
    rgba = plt.get_cmap("autumn_r")(share)
    rgba[..., 3] = 0.8 * share
    return rgba


def _occlusion_examples(models) -> dict:
    """model -> (ids, genre indices, maps, {id: cached poster}) for the models with example maps and
    posters on this machine (results/explain/occlusion_examples.npz is git-ignored)."""
    path = config.paths().results / "explain" / "occlusion_examples.npz"
    if not path.exists():
        return {}
    found = {}
    arrays = files.read_npz(path, fix="Delete it: `filmgenre explain` writes it anew.")
    for name in models:
        if f"{name}/maps" not in arrays:
            continue
        ids, maps = arrays[f"{name}/ids"].astype(str), arrays[f"{name}/maps"]
        images = dataset.cached_posters(ids, maps.shape[1])  # the posters at the size the model saw
        if len(images) == len(ids):
            found[name] = (ids, arrays[f"{name}/genres"], maps, images)
    return found


def calibration(models=None, columns: int = 3, width: float = 7.0, aspect: float = 1.0, name: str = "calibration"):
    """Reliability diagrams: per probability bin, the observed share of true genres against the mean
    predicted probability (results/explain/calibration.csv); dot area grows with the pairs in the bin.
    ``name``: the file name, so a selection of models does not overwrite the figure of all of them."""
    bins = explain_tables.explain("calibration")
    models = list(dict.fromkeys(bins["model"])) if models is None else list(models)
    pooled, per_genre = explain_tables.calibration_errors(), explain_tables.calibration_errors("ece_genre_mean")
    rows = int(np.ceil(len(models) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(width, width / columns * aspect * rows), squeeze=False,
                                sharex=True, sharey=True)
    for axis in axes.flat[len(models):]:
        axis.axis("off")
    for axis, model in zip(axes.flat, models):
        table = bins[(bins["model"] == model) & (bins["pairs"] > 0)]
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        axis.plot(table["predicted"], table["observed"], color="C0", linewidth=1)
        axis.scatter(table["predicted"], table["observed"], s=4 + 6 * np.log10(table["pairs"]), color="C0", zorder=3)
        axis.set_title(f"{model}\nECE {pooled[model]:.3f} pooled, {per_genre[model]:.3f} per genre")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
    for axis in axes[-1]:
        axis.set_xlabel("mean predicted probability")
    for axis in axes[:, 0]:
        axis.set_ylabel("observed share")
    figure.tight_layout(pad=0.4)
    return save(figure, name)


def word_attribution(model: str = "lstm", genres=None, top: int = 6, columns: int = 4, width: float = 7.0):
    """The words whose removal lowers each genre's probability most for one text model
    (leave-one-word-out, mean over the test overviews holding the word; results/explain/words.csv)."""
    words = explain_tables.explain("words")
    words = words[(words["model"] == model) & (words["rank"] <= top)]
    genres = list(dict.fromkeys(words["genre"])) if genres is None else list(genres)
    rows = int(np.ceil(len(genres) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(width, 1.25 * rows + 0.2), squeeze=False)
    for axis in axes.flat[len(genres):]:
        axis.axis("off")
    for axis, genre in zip(axes.flat, genres):
        table = words[words["genre"] == genre].sort_values("rank", ascending=False)
        axis.barh(table["word"], table["contribution"], color="C0")
        axis.set_title(f"{model}: {genre}")
    figure.supxlabel("fall in the genre's probability without the word (mean over overviews)", fontsize=8)
    figure.tight_layout(pad=0.4)
    return save(figure, f"words_{model}")
