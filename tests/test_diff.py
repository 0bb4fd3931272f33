"""`filmgenre diff` on result sets made here, in a scratch git repository.

Committed: ``same`` (unchanged by the rerun), ``nudged`` (a few probabilities moved by a
hair), ``moved`` (a near-random model replaced by a good one) and ``gone`` (no longer in the
working tree). The verdicts must follow from the predictions, in every output format.
"""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from filmgenre import cli, config, diff, evaluate, files, uncertainty

GENRES = ["Action", "Comedy", "Drama", "Horror"]
RULES = {"rule": {"kind": "global", "threshold": 0.5}, "macro_rule": {"kind": "global", "threshold": 0.3}}
FILMS = {"val": 120, "test": 240}


def _git(root, *args):
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args], cwd=root,
                   check=True, capture_output=True)


def _labels(rng) -> pd.DataFrame:
    ids = [f"tt{i:07d}" for i in range(sum(FILMS.values()))]
    table = pd.DataFrame(0, index=pd.Index(ids, name="Id"), columns=config.GENRES)
    table[GENRES] = (rng.random((len(ids), len(GENRES))) < [0.4, 0.3, 0.5, 0.2]).astype(int)
    table.insert(0, "split", ["val"] * FILMS["val"] + ["test"] * FILMS["test"])
    return table


def _entry(labels: pd.DataFrame, probabilities: np.ndarray) -> dict:
    """A metrics.json entry as `evaluate` writes it: scores under both rules, test intervals."""
    entry = {"kind": "model", **RULES}
    resampled = {}
    for split in diff.SPLITS:
        rows = (labels["split"] == split).to_numpy()
        truth, scores = labels.loc[rows, config.GENRES].to_numpy(), probabilities[rows]
        predicted = {split + suffix: evaluate.apply_rule(scores, RULES[rule]) for suffix, rule in diff.RULES.items()}
        for section, decisions in predicted.items():
            entry[section] = evaluate.compute_metrics(truth, decisions, scores)
        if split == "test":
            resampled = uncertainty.bootstrap(truth, {"it": {"probabilities": scores, "predicted": predicted}})[0]["it"]
    entry["intervals"] = {section: {metric: uncertainty.interval(scores[metric]) for metric in uncertainty.METRICS}
                          for section, scores in resampled.items()}
    return entry


def _write(root, labels: pd.DataFrame, models: dict[str, np.ndarray]) -> None:
    metrics = {"models": {}}
    for name, probabilities in models.items():
        probabilities = evaluate.quantise(probabilities)
        frame = pd.DataFrame(probabilities, columns=config.GENRES)
        frame.insert(0, "split", labels["split"].to_numpy())
        frame.insert(0, "Id", labels.index)
        files.write_csv(root / "results" / name / "predictions.csv", frame, float_format="%.6f")
        metrics["models"][name] = _entry(labels, probabilities)
    files.write_json(root / diff.METRICS_FILE, metrics)
    for name in {path.parent.name for path in (root / "results").glob("*/predictions.csv")} - set(models):
        (root / "results" / name / "predictions.csv").unlink()


def _seeds(spread: float) -> dict:
    scores = {"mean": 0.5, "sd": spread / 2, "min": 0.5 - spread / 2, "max": 0.5 + spread / 2}
    summary = {"seeds": [1, 2, 3]} | {section: {metric: scores for *_, metric in diff.SCORES}
                                      for section in ("val", "val_macro_rule", "test", "test_macro_rule")}
    return {"models": {name: {"runs": [], "summary": summary} for name in ("same", "moved")}}


@pytest.fixture(scope="session")
def committed_and_rerun(tmp_path_factory):
    """A committed result set and a rerun of it in the working tree (the prepared films' genres
    too), made once: each test gets a copy."""
    root = tmp_path_factory.mktemp("diff") / "project"
    rng = np.random.default_rng(0)
    labels = _labels(rng)
    truth = labels[config.GENRES].to_numpy(dtype=float)
    good = np.clip(0.45 * truth + 0.55 * rng.random(truth.shape), 0, 1)
    nudged = good.copy()
    nudged[::6] = np.clip(nudged[::6] + rng.normal(0, 0.02, nudged[::6].shape), 0, 1)
    (root / diff.FILMS_FILE).parent.mkdir(parents=True)
    labels.drop(columns="split").reset_index().to_csv(root / diff.FILMS_FILE, index=False)
    _write(root, labels, {"same": good, "nudged": good, "moved": rng.random(truth.shape), "gone": good})
    files.write_json(root / diff.SEEDS_FILE, _seeds(0.02))
    _git(root, "init", "-q")
    _git(root, "add", "results")
    _git(root, "commit", "-q", "-m", "committed results")
    _write(root, labels, {"same": good, "nudged": nudged, "moved": good})
    return root


@pytest.fixture
def rerun(project, committed_and_rerun):
    shutil.copytree(committed_and_rerun, project, dirs_exist_ok=True)
    return project


def _by_model(result: dict) -> dict[str, list[dict]]:
    return {name: entry["scores"] for name, entry in result["models"].items()}


def test_verdicts_follow_the_predictions(rerun, capsys):
    assert cli.main(["diff", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    scores = _by_model(result)
    assert len(scores["same"]) == len(scores["moved"]) == len(diff.SPLITS) * len(diff.SCORES)
    assert all(row["method"] == "identical" and row["difference"] == 0 and row["within_interval"]
               and row["within_seeds"] for row in scores["same"])
    assert all(row["method"] == diff.PAIRED and row["difference"] > 0 and row["interval"][0] > 0
               and not row["within_interval"] and not row["within_seeds"] for row in scores["moved"])
    assert any(row["difference"] != 0 for row in scores["nudged"])
    assert all(row["within_interval"] and row["within_seeds"] is None for row in scores["nudged"])
    assert diff.PAIRED in {row["method"] for row in scores["nudged"]} <= {diff.PAIRED, "identical"}
    assert result["models"]["gone"] == {"only_in": result["against"], "scores": []}
    assert result["against"].startswith("HEAD (") and result["this"] == "working tree"
    assert sorted(result["moved"]) == sorted(f"moved {row['section']} {row['metric']}" for row in scores["moved"])


def test_the_difference_is_this_minus_the_revision_and_its_interval_is_paired(rerun):
    result = diff.compare(diff.working_tree(), diff.revision("HEAD"), diff.film_labels())
    committed = json.loads(subprocess.run(["git", "show", "HEAD:results/metrics.json"], cwd=rerun,
                                          capture_output=True, check=True).stdout)["models"]
    current = files.read_json(rerun / diff.METRICS_FILE)["models"]
    for name in ("moved", "nudged"):
        for row in _by_model(result)[name]:
            assert row["against"] == committed[name][row["section"]][row["metric"]]
            assert row["difference"] == pytest.approx(
                current[name][row["section"]][row["metric"]] - row["against"], abs=1e-6)
    # paired: narrower than the two sides' own test intervals combined as if independent
    rows = [r for r in _by_model(result)["nudged"] if r["section"] == "test" and r["difference"] != 0]
    assert rows
    for row in rows:
        approximate = diff._approximate((current["nudged"], committed["nudged"]), "test", row["metric"])
        assert row["interval"][1] - row["interval"][0] < approximate[1] - approximate[0]


@pytest.mark.parametrize("flag, cell", [([], "{}"), (["--md"], "| {} |")])
def test_text_and_markdown_tables_show_the_same_verdicts(rerun, capsys, flag, cell):
    assert cli.main(["diff", *flag]) == 0
    out = capsys.readouterr().out
    lines = {name: [line for line in out.splitlines() if line.startswith(cell.format(name))]
             for name in ("same", "nudged", "moved", "gone")}
    rows = len(diff.SPLITS) * len(diff.SCORES)
    assert len(lines["same"]) == rows and all("identical" in line for line in lines["same"])
    assert len(lines["moved"]) == rows and all("BEYOND noise" in line and "beyond seeds" in line
                                               for line in lines["moved"])
    assert all(("within noise" in line or "identical" in line) and "seeds" not in line for line in lines["nudged"])
    assert any("within noise" in line for line in lines["nudged"])
    assert len(lines["gone"]) == 1 and "only in HEAD (" in lines["gone"][0]
    if flag:
        assert all(line.endswith("|") and line.count(" | ") == 8 for group in lines.values() for line in group)
    assert f"{rows * 3} scores of 3 models, {rows} moved beyond" in out


def test_summary_names_what_moved(rerun, capsys):
    assert cli.main(["diff", "--summary"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(diff.SPLITS) * len(diff.SCORES) + 1
    assert all(line.startswith("  moved ") for line in lines[1:-1]) and lines[-1].startswith("  gone: only in HEAD (")


def test_without_the_films_genres_test_scores_are_approximated(rerun, capsys):
    (rerun / diff.FILMS_FILE).unlink()
    assert cli.main(["diff", "--json"]) == 0
    scores = _by_model(json.loads(capsys.readouterr().out))
    assert all(row["method"] == "identical" for row in scores["same"])
    moved = {row["split"]: row for row in scores["moved"] if row["metric"] == "f1_micro"}
    assert moved["test"]["method"] == diff.APPROXIMATE and moved["test"]["within_interval"] is False
    assert moved["val"]["interval"] is None and moved["val"]["within_interval"] is None


def test_a_model_only_in_the_working_tree_is_listed(rerun, capsys):
    metrics = files.read_json(rerun / diff.METRICS_FILE)
    metrics["models"]["fresh"] = metrics["models"]["same"]
    files.write_json(rerun / diff.METRICS_FILE, metrics)
    assert cli.main(["diff", "--summary"]) == 0
    assert "  fresh: only in working tree" in capsys.readouterr().out.splitlines()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_an_unknown_revision_is_one_line_and_exit_2(rerun, capsys):
    assert cli.main(["diff", "no-such-branch"]) == 2
    assert "unknown revision 'no-such-branch'" in _one_line_error(capsys)


def test_missing_results_are_one_line_and_exit_2(rerun, capsys):
    (rerun / diff.METRICS_FILE).unlink()
    assert cli.main(["diff"]) == 2
    assert "results/metrics.json: no results in working tree" in _one_line_error(capsys)
    _git(rerun, "rm", "-q", "-r", "--cached", "results")
    _git(rerun, "commit", "-q", "-m", "no results")
    _write(rerun, diff.film_labels().assign(split=["val"] * FILMS["val"] + ["test"] * FILMS["test"]),
           {"same": np.full((sum(FILMS.values()), len(config.GENRES)), 0.5)})
    assert cli.main(["diff"]) == 2
    assert "no results in HEAD (" in _one_line_error(capsys)


def test_outside_a_git_repository_is_one_line_and_exit_2_but_the_summary_says_why(project, capsys):
    assert cli.main(["diff"]) == 2
    assert "not a git repository" in _one_line_error(capsys)
    assert cli.main(["diff", "--summary"]) == 0  # what `make all` ends with, e.g. in an exported tree
    assert capsys.readouterr().out.startswith("diff against HEAD: not compared: ")
