"""The report's figures, drawn from the committed files in ``results/`` (matplotlib + seaborn).

Each function returns its figure and also saves it as ``report/figures/<name>.png`` so a
figure can be cited or reused on its own. The Quarto documents call these functions; so
do the tests.
"""

import textwrap

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI or in a Jupyter kernel without one
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from filmgenre import config, dataset, tables  # noqa: E402

sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)


def save(figure, name: str):
    """Save under a stable name in report/figures/ and return the figure for display."""
    folder = config.paths().figures
    folder.mkdir(parents=True, exist_ok=True)
    figure.savefig(folder / f"{name}.png", dpi=200, bbox_inches="tight")
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


def training_curves(names=("cnn", "lstm")):
    """Loss, precision and recall per epoch, training vs validation, with the best epoch marked."""
    names = [n for n in names if (config.paths().results / n / "history.csv").exists()]
    figure, axes = plt.subplots(len(names), 3, figsize=(7.0, 1.45 * len(names) + 0.3), squeeze=False, sharex="row")
    for row, name in zip(axes, names):
        history = tables.history(name)
        best = tables.training(name)["best_epoch"]
        for axis, metric in zip(row, ["loss", "precision", "recall"]):
            axis.plot(history["epoch"] + 1, history[metric], label="train")
            axis.plot(history["epoch"] + 1, history[f"val_{metric}"], label="validation")
            axis.axvline(best, color="grey", linestyle=":", linewidth=1)
            axis.set_title(f"{name}: {metric}", fontsize=9)
            axis.set_xlabel("epoch")
        row[0].legend(fontsize=7)
    figure.tight_layout()
    return save(figure, "training_curves")


def per_genre(names=("cnn", "lstm"), metrics=("precision", "recall")):
    """Per-genre test precision and recall of two models, genres by test support."""
    frame = tables.per_genre(names)
    frame = frame[frame["support"] > 0]
    order = frame.drop_duplicates("genre").sort_values("support", ascending=False)["genre"]
    long = frame.melt(id_vars=["model", "genre", "support"], value_vars=list(metrics), var_name="metric")
    grid = sns.catplot(data=long, kind="bar", x="genre", y="value", hue="model", row="metric", order=order,
                       height=1.2, aspect=5.8, legend_out=False, sharey=True)
    grid.set_axis_labels("", "")
    grid.set_titles("{row_name}")
    for axis in grid.axes.flat:
        axis.tick_params(axis="x", rotation=60, labelsize=7)
        axis.set_ylim(0, 1)
    return save(grid.figure, "per_genre")


def confusion(name: str = "lstm"):
    """Genre-by-genre confusion: of the test films of true genre g, the share predicted as h."""
    matrix = tables.confusion_genres(name)
    figure, axis = plt.subplots(figsize=(4.4, 3.2))
    sns.heatmap(matrix, ax=axis, cmap="mako_r", vmin=0, vmax=1, square=True, cbar_kws={"shrink": 0.7},
                xticklabels=True, yticklabels=True)
    axis.set_xlabel("predicted genre")
    axis.set_ylabel("true genre")
    axis.tick_params(labelsize=6)
    return save(figure, f"confusion_{name}")


def sample_films(models=("cnn", "lstm"), samples_file: str = "samples.csv", per_bucket: int = 2):
    """Sample test films: poster (when the dataset is present), overview, true and top-3 genres.

    Posters come from the local poster cache and are never committed; on a clone without
    the data the panels show the text alone.
    """
    samples = tables.samples(samples_file).groupby("bucket", sort=False).head(per_bucket)
    posters = dataset.cached_posters(samples["Id"])
    rows = int(np.ceil(len(samples) / 2))
    figure, axes = plt.subplots(rows, 2, figsize=(7.5, 1.3 * rows), squeeze=False)
    for axis, (_, film) in zip(axes.flat, samples.iterrows()):
        axis.axis("off")
        left = 0.0
        if film["Id"] in posters:
            inset = axis.inset_axes([0.0, 0.0, 0.2, 1.0])
            inset.imshow(posters[film["Id"]])
            inset.axis("off")
            left = 0.22
        overview = textwrap.shorten(film["overview"], 150, placeholder=" ...")
        lines = [f"{film['bucket']}: {film['Id']}", f"true: {film['true_genres']}",
                 *[f"{m}: {film[f'{m}_top3']}" for m in models], *textwrap.wrap(overview, 62)]
        axis.text(left, 1.0, "\n".join(lines), fontsize=6, va="top", transform=axis.transAxes)
    for axis in list(axes.flat)[len(samples):]:
        axis.axis("off")
    figure.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.15)
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
