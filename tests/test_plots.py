"""Every figure draws from the committed results and lands in report/figures/ as a real PNG and PDF."""

import pytest
from PIL import Image

from filmgenre import config, plots

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


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_is_saved_as_png_and_pdf_under_its_stable_name(name):
    png, pdf = (config.paths().figures / f"{name}.{suffix}" for suffix in ("png", "pdf"))
    png.unlink(missing_ok=True)
    pdf.unlink(missing_ok=True)
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
