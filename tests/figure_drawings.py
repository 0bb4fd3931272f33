"""Two small drawings for the figure index's tests, each reading one kind of results file.

Watched like ``filmgenre.plots``: the results files their functions open are credited to them.
"""

import matplotlib.pyplot as plt
import pandas as pd

from filmgenre import config, figure_index, files, plots

figure_index.watch(__file__)


def split_counts():
    data = files.read_json(config.paths().results / "dataset.json")
    figure, axis = plt.subplots()
    axis.bar(list(data["split_counts"]), list(data["split_counts"].values()))
    return plots.save(figure, "split_counts")


def losses(name: str):
    history = pd.read_csv(config.paths().results / name / "history.csv")
    figure, axis = plt.subplots()
    axis.plot(history["loss"])
    return plots.save(figure, f"loss_{name}")
