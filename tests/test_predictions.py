"""A predictions file read back is checked: evaluate --from-predictions, diff and explain's
calibration read it, and a damaged one stops them with one line naming the file and the command
that writes it again, never a pandas traceback."""

import numpy as np
import pandas as pd
import pytest

from filmgenre import config, predictions


def write_table(path, genres=config.GENRES, value=0.25):
    table = pd.DataFrame(np.full((3, len(genres)), value), columns=genres)
    table.insert(0, "split", ["val", "test", "test"])
    table.insert(0, "Id", ["tt0000001", "tt0000002", "tt0000003"])
    table.to_csv(path, index=False)


@pytest.mark.parametrize("damage, problem", [
    (lambda path: path.write_bytes(b"\xff\xfe\x00garbage"), "not a readable CSV"),
    (lambda path: path.write_text('Id,split\n"tt1,val\n'), "not a readable CSV"),
    (lambda path: write_table(path, config.GENRES[:-1]), f"no column {config.GENRES[-1]!r}"),
    (lambda path: write_table(path, value=1.5), "probabilities that are not numbers in [0, 1]"),
    (lambda path: path.write_text(path.read_text().replace("0.25", "x", 1)), "probabilities that are not numbers"),
    (lambda path: path.unlink(), "not found"),
])
def test_a_damaged_predictions_file_names_the_file_and_the_command(project, damage, problem):
    path = predictions.predictions_path("cnn")
    path.parent.mkdir(parents=True)
    write_table(path)
    assert predictions.read_predictions("cnn")[config.GENRES].to_numpy().tolist() == [[0.25] * len(config.GENRES)] * 3
    damage(path)
    with pytest.raises(predictions.PredictionsError) as raised:
        predictions.read_predictions("cnn")
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and problem in message and message.endswith(
        "Run `filmgenre evaluate cnn` (or `make all`).") and "\n" not in message
