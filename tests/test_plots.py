"""Every figure draws from the committed results and is saved as a real PNG and PDF (below a
temporary folder: the working tree's report/figures/ is the report's)."""

import numpy as np
import pytest
from PIL import Image

from filmgenre import config, plots, tables

FIGURES = {
    "genre_counts": lambda: plots.genre_counts(),
    "training_curves": lambda: plots.training_curves(("cnn", "lstm")),
    "per_genre": lambda: plots.per_genre(("cnn", "lstm")),
    "confusion_lstm": lambda: plots.confusion("lstm"),
    "sample_films": lambda: plots.sample_films(("cnn", "lstm"), per_bucket=1),
    "occlusion": lambda: plots.occlusion(),
    "calibration": lambda: plots.calibration(),
    "words_lstm": lambda: plots.word_attribution("lstm"),
}


@pytest.fixture
def figures(tmp_path, monkeypatch):
    """Figures go below tmp_path; everything else is read from the project's committed results."""
    monkeypatch.setattr(config.Paths, "figures", property(lambda self: tmp_path / "figures"))
    return tmp_path / "figures"


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_is_saved_as_png_and_pdf_under_its_stable_name(name, figures):
    png, pdf = (figures / f"{name}.{suffix}" for suffix in ("png", "pdf"))
    figure = FIGURES[name]()
    assert figure.axes
    with Image.open(png) as image:
        assert image.format == "PNG" and min(image.size) > 200
        low, high = image.convert("L").getextrema()
        assert high - low > 50  # not blank
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


def test_the_marks_say_which_top_genres_are_true():
    assert plots._marked("Drama 0.63, N/A 0.35, Action 0.29", {"Drama", "N/A"}) == \
        "Drama 0.63 ✓  N/A 0.35 ✓  Action 0.29 ✗"


def test_each_training_curve_draws_the_column_its_legend_names(figures):
    """Read back from the figure: per model and metric, the "train" line is the history's column and
    the "validation" line its ``val_`` column, against epochs 1, 2, ...; the dotted line is the best epoch."""
    names = ("cnn", "lstm")
    figure = plots.training_curves(names)
    for row, name in enumerate(names):
        history = tables.history(name)
        for column, metric in enumerate(("loss", "precision", "recall")):
            axis = figure.axes[3 * row + column]
            assert axis.get_title() == f"{name}: {metric}"
            lines = {line.get_label(): line for line in axis.get_lines()}
            for label, key in (("train", metric), ("validation", f"val_{metric}")):
                np.testing.assert_array_equal(lines[label].get_xdata(), history["epoch"] + 1)
                np.testing.assert_array_equal(lines[label].get_ydata(), history[key])
            best = [line for line in axis.get_lines() if line.get_linestyle() == ":"]
            assert [line.get_xdata()[0] for line in best] == [tables.training(name)["best_epoch"]]
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == ["train", "validation"]
