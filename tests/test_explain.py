"""The explain stage: its committed tables, and a model explained again keeping its rows' place."""

import numpy as np
import pandas as pd
import pytest

from filmgenre import artifacts, cli, explain


def test_committed_results_hold_every_table():
    for name in ("ablation", "occlusion", "words", "tfidf_terms", "calibration"):
        frame = pd.read_csv(explain.folder() / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert len(frame) > 0, name
    settings = artifacts.read_json(explain.folder() / "summary.json", "")
    assert {"word_min_count", "calibration_bins", "occlusion_films"} <= set(settings)  # each setting under its name


def test_the_stage_writes_every_table_under_the_name_the_report_layer_reads():
    """A rename slipped into one side (``probes.tfidf_terms``) left the report reading a stale table:
    the tables explain.run writes are the ones the report layer asks ``explain_tables.explain`` for."""
    import ast
    import inspect

    from filmgenre import explain_tables, plots

    def string_args(source: str, function: str) -> set[str]:
        return {node.args[0].value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
                and function in (getattr(node.func, "id", None), getattr(node.func, "attr", None))
                and node.args and isinstance(node.args[0], ast.Constant)}

    written = string_args(inspect.getsource(explain.run), "_write")
    read = string_args(inspect.getsource(explain_tables) + inspect.getsource(plots), "explain")
    assert written == read and "tfidf_terms" in written


def test_a_model_explained_again_keeps_its_rows_place(project):
    first = pd.DataFrame({"model": ["cnn", "cnn", "effnet_head"], "score": [0.1, 0.2, 0.3]})
    explain._write("ablation", first, replace_models=True)
    explain._write("ablation", pd.DataFrame({"model": ["cnn", "cnn"], "score": [0.4, 0.5]}), replace_models=True)
    explain._write("ablation", pd.DataFrame({"model": ["lstm"], "score": [0.6]}), replace_models=True)
    table = pd.read_csv(explain.folder() / "ablation.csv")
    assert table["model"].tolist() == ["cnn", "cnn", "effnet_head", "lstm"]
    assert table["score"].tolist() == [0.4, 0.5, 0.3, 0.6]


@pytest.mark.parametrize("name, content, problem", [
    ("summary.json", '{"posters": ["cnn"', "not valid JSON at line 1"),
    ("summary.json", "garbage", "not valid JSON at line 1"),
    ("ablation.csv", 'model,score\n"cnn,0.1\n', "not a readable CSV (ParserError)"),
    ("words.csv", "", "not a readable CSV (EmptyDataError)"),
    ("occlusion.csv", "genre,drop\nDrama,0.1\n", "no 'model' column"),
])
def test_a_damaged_earlier_result_stops_explain_before_any_work_naming_it_and_the_fix(project, name, content, problem,
                                                                                      capsys):
    """explain adds to what earlier runs wrote (other models' rows stay): a damaged file is named before the
    minutes of work, with a fix that does not send the user back to the same failing command."""
    path = project / "results" / "explain" / name
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(artifacts.ArtifactError) as raised:
        explain.run(log=lambda *_: None)  # no data is prepared: reading the test films would fail otherwise
    message = str(raised.value)
    assert message.startswith(f"results/explain/{name}: {problem}") and "\n" not in message
    assert message.endswith("Restore the committed one (`git checkout results/explain/`), or delete it and rerun "
                            "`filmgenre explain` (or `make all`).")
    assert cli.main(["explain"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_a_damaged_occlusion_examples_file_is_written_anew_with_one_line(project):
    npz = explain.folder() / "occlusion_examples.npz"
    npz.parent.mkdir(parents=True)
    np.savez_compressed(npz, **{"cnn/maps": np.ones(2), "lstm/maps": np.zeros(3)})
    assert list(explain.kept_examples(npz, ["cnn"], print)) == ["lstm/maps"]  # the replaced model's maps go
    npz.write_bytes(npz.read_bytes()[:40])  # cut short
    lines = []
    assert explain.kept_examples(npz, ["cnn"], lines.append) == {}
    assert len(lines) == 1 and lines[0].startswith("results/explain/occlusion_examples.npz: not a readable .npz (")
