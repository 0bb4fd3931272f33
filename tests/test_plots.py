"""Every figure draws from the committed results and lands in report/figures/ as a real image."""

import pytest
from PIL import Image

from filmgenre import config, plots

FIGURES = {
    "genre_counts": lambda: plots.genre_counts(),
    "training_curves": lambda: plots.training_curves(("cnn", "lstm")),
    "per_genre": lambda: plots.per_genre(("cnn", "lstm")),
    "confusion_lstm": lambda: plots.confusion("lstm"),
    "sample_films": lambda: plots.sample_films(("cnn", "lstm"), per_bucket=1),
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_is_saved_under_its_stable_name(name):
    path = config.paths().figures / f"{name}.png"
    path.unlink(missing_ok=True)
    figure = FIGURES[name]()
    assert figure.axes
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 200
        low, high = image.convert("L").getextrema()
        assert high - low > 50  # not blank
