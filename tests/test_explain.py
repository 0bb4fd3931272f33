"""The explain stage: its committed tables, and a model explained again keeping its rows' place."""

import pandas as pd

from filmgenre import explain


def test_committed_results_hold_every_table():
    for name in ("ablation", "occlusion", "words", "tfidf_terms", "calibration"):
        frame = pd.read_csv(explain.folder() / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert len(frame) > 0, name


def test_a_model_explained_again_keeps_its_rows_place(project):
    first = pd.DataFrame({"model": ["cnn", "cnn", "effnet_head"], "score": [0.1, 0.2, 0.3]})
    explain._write("ablation", first, replace_models=True)
    explain._write("ablation", pd.DataFrame({"model": ["cnn", "cnn"], "score": [0.4, 0.5]}), replace_models=True)
    explain._write("ablation", pd.DataFrame({"model": ["lstm"], "score": [0.6]}), replace_models=True)
    table = pd.read_csv(explain.folder() / "ablation.csv")
    assert table["model"].tolist() == ["cnn", "cnn", "effnet_head", "lstm"]
    assert table["score"].tolist() == [0.4, 0.5, 0.3, 0.6]
