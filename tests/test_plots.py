"""Every figure draws from the committed results and is saved as a real PNG and PDF (below a
temporary folder: the working tree's report/figures/ is the report's)."""

import numpy as np
import pytest
from PIL import Image

from filmgenre import config, files, plots, tables

FIGURES = {
    "genre_counts": lambda: plots.genre_counts(),
    "training_curves": lambda: plots.training_curves(("cnn", "lstm")),
    "training_loss": lambda: plots.training_curves(("cnn", "lstm"), metrics=("loss",), name="training_loss"),
    "modality_f1": lambda: plots.modality_differences([("lstm", "cnn"), ("minilm_head", "effnet_head")]),
    "false_positives_lstm": lambda: plots.false_positives("lstm"),
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


TEXT_WIDTH = 7.0  # inches: the report's A4 page less its 1.6 cm side margins
IN_THE_REPORT = ["training_loss", "modality_f1", "false_positives_lstm"]


@pytest.mark.parametrize("name", IN_THE_REPORT)
def test_no_text_of_a_report_figure_prints_under_7_points(name, figures):
    """A figure wider than the text column is shrunk to fit it, and its text with it."""
    from matplotlib.text import Text

    figure = FIGURES[name]()
    with Image.open(figures / f"{name}.png") as image:
        printed = min(1.0, TEXT_WIDTH / (image.size[0] / 200))  # saved at 200 dpi
    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert sizes and min(sizes) * printed >= 7, f"{name}: smallest text {min(sizes) * printed:.1f} pt in print"


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
            assert axis.get_title().startswith(f"{name}: {metric}")
            lines = {line.get_label(): line for line in axis.get_lines()}
            for label, key in (("train", metric), ("validation", f"val_{metric}")):
                np.testing.assert_array_equal(lines[label].get_xdata(), history["epoch"] + 1)
                np.testing.assert_array_equal(lines[label].get_ydata(), history[key])
            best = [line for line in axis.get_lines() if line.get_linestyle() == ":"]
            assert [line.get_xdata()[0] for line in best] == [tables.training(name)["best_epoch"]]
    assert [text.get_text() for text in figure.legends[0].get_texts()][:2] == ["train", "validation"]


def test_damaged_occlusion_maps_are_named_with_their_fix(tmp_path, monkeypatch):
    """results/explain/occlusion_examples.npz is git-ignored and written by explain: a damaged one
    stops the figure with one line that says so, not a zipfile traceback."""
    monkeypatch.setattr(config.Paths, "results", property(lambda self: tmp_path / "results"))
    maps = tmp_path / "results" / "explain" / "occlusion_examples.npz"
    maps.parent.mkdir(parents=True)
    maps.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(files.ArtifactError, match=r"occlusion_examples\.npz: not a readable \.npz \(BadZipFile\)\. "
                                                   r"Delete it: `filmgenre explain` writes it anew\.$"):
        plots._occlusion_examples(["cnn"])
