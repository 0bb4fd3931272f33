"""Stage 1, prepare: what it writes (films, poster cache, split), done once, and read back."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REAL_ZIP, REPO_SPLITS, film_rows, files_under
from filmgenre import config, dataset, files


def test_prepare_decodes_every_flavour_and_skips_bad_posters(prepared, capsys):
    manifest = json.loads((prepared / "data/processed/manifest_64.json").read_text())
    assert manifest["films"] == 48
    assert manifest["posters_missing"] == ["tt0000007"]
    assert manifest["posters_undecodable"] == ["tt0000011"]
    assert manifest["posters_used"] == 46  # grayscale, CMYK, progressive and PNG-as-.jpg all decoded
    assert manifest["images_without_film"] == 2
    films, ids, images = dataset.load_processed()
    assert images.shape == (46, 64, 64, 3) and images.dtype == np.uint8
    assert set(films.loc[films["has_poster"] == 0, "Id"]) == {"tt0000007", "tt0000011"}
    assert len(films) == 48  # films without a poster stay for the text models


def test_cached_posters_keep_their_colour(prepared):
    """A CMYK or grayscale JPEG must come out as RGB close to what was drawn."""
    films, ids, images = dataset.load_processed()
    row = {film_id: i for i, film_id in enumerate(ids)}
    # Film 2 is CMYK (index % 5 == 2); its mean colour is its genres' mean colour.
    cmyk = films.iloc[2]
    from conftest import COLOURS
    expected = np.mean([COLOURS[g] for g in COLOURS if cmyk[g]], axis=0)
    assert np.abs(images[row[cmyk["Id"]]].mean(axis=(0, 1)) - expected).max() < 20


def test_prepare_writes_a_stratified_split_and_is_idempotent(prepared, tiny_zip):
    split = pd.read_csv(prepared / "data/splits.csv")
    counts = split["split"].value_counts()
    assert set(counts.index) == {"train", "val", "test"}
    assert counts["train"] > counts["test"] > counts["val"]
    before = {p: p.stat().st_mtime_ns for p in files_under(prepared / "data")}
    messages = []
    dataset.prepare(tiny_zip, progress=False, log=messages.append)
    assert any("Up to date" in m for m in messages)
    assert {p: p.stat().st_mtime_ns for p in files_under(prepared / "data")} == before


def test_split_is_reproducible_and_respects_fractions():
    films = pd.DataFrame(film_rows(400))
    for genre in config.GENRES:
        films[genre] = films[genre].astype(int)
    first, second = dataset.make_split(films, seed=3), dataset.make_split(films, seed=3)
    pd.testing.assert_frame_equal(first, second)
    # 400 films at 70/10/20: 80 in test (0.2 x 400), then 0.1 / 0.8 of the other 320 for validation,
    # 40, which iterative stratification, balancing the genres first, overshoots by one film.
    assert first["split"].value_counts().to_dict() == {"train": 279, "test": 80, "val": 41}
    # Each genre is spread like the whole: its films in test and validation are 20 % and 10 % of
    # its films, to the film.
    for genre in ["Action", "Comedy", "Drama", "Horror"]:
        split_of = first.loc[films[genre] == 1, "split"]
        for split, share in (("test", 0.2), ("val", 0.1)):
            assert abs((split_of == split).sum() - share * len(split_of)) <= 1, (genre, split)


def test_a_split_is_made_once_then_reused_and_refused_for_other_films(tmp_path):
    films = pd.DataFrame(film_rows(60))
    path = tmp_path / "splits.csv"
    made = dataset.ensure_split(films, path, seed=3)
    assert made.equals(dataset.make_split(films, seed=3)) and not made.equals(dataset.make_split(films))
    assert pd.read_csv(path, dtype=str).equals(made.astype(str))
    assert dataset.ensure_split(films, path).equals(made.astype(str))  # reused, whatever the seed
    edited = made.assign(split=made["split"].replace({"val": "test"}))
    edited.to_csv(path, index=False)
    assert dataset.ensure_split(films, path).equals(edited.astype(str))  # the committed file wins, as it is
    with pytest.raises(dataset.DatasetError) as refused:
        dataset.ensure_split(films.iloc[1:], path)
    assert str(refused.value) == f"{path}: its Ids do not match the dataset's 59 films. {dataset.SPLIT_FIX}"
    assert "`git checkout data/splits.csv`" in dataset.SPLIT_FIX and "delete it to make a new split" in dataset.SPLIT_FIX


@pytest.mark.parametrize("damage, problem", [
    (lambda path, split: split.iloc[:30].to_csv(path, index=False), "its Ids do not match"),  # cut short
    (lambda path, split: path.write_text(path.read_text()[:100]), "not a table of Ids"),  # cut inside a row
    (lambda path, split: path.write_bytes(b"\xff\xfe\x00garbage"), "not a readable CSV (UnicodeDecodeError)"),
    (lambda path, split: path.write_text('Id,split\n"tt1,train\n'), "not a readable CSV (ParserError)"),
    (lambda path, split: path.write_text(""), "not a readable CSV (EmptyDataError)"),
    (lambda path, split: split.assign(split="holdout").to_csv(path, index=False), "not a table of Ids and their split"),
    (lambda path, split: split.rename(columns={"Id": "imdb"}).to_csv(path, index=False), "not a table of Ids"),
])
def test_a_damaged_split_is_named_with_the_fix_never_a_pandas_traceback(project, damage, problem):
    films = pd.DataFrame(film_rows(60))
    path = config.paths().splits
    made = dataset.ensure_split(films, path)
    damage(path, made)
    with pytest.raises(dataset.DatasetError) as refused:
        dataset.ensure_split(films, path)
    assert str(refused.value).startswith(f"data/splits.csv: {problem}") and "\n" not in str(refused.value)
    assert str(refused.value).endswith(dataset.SPLIT_FIX)


def test_a_damaged_poster_cache_names_itself_and_the_prepare_command(project):
    processed = config.paths().processed
    processed.mkdir(parents=True)
    (processed / "films.csv").write_text("Id,Overview,split\ntt1,a story,train\n")
    cache = processed / "posters_64.npz"
    np.savez(cache, ids=np.array(["tt1"]), images=np.zeros((1, 64, 64, 3), np.uint8))
    assert dataset.load_processed()[1].tolist() == ["tt1"]
    for damage, problem in ((lambda: cache.write_bytes(cache.read_bytes()[:100]), "not a readable .npz (BadZipFile)"),
                            (lambda: np.savez(cache, ids=np.array(["tt1"])), "holds ['ids'], not ids and images")):
        damage()
        for read in (dataset.load_processed, lambda: dataset.cached_posters(["tt1"])):  # the report's poster grid too
            with pytest.raises(files.ArtifactError) as refused:
                read()
            assert str(refused.value) == (f"data/processed/posters_64.npz: {problem}. Delete it and run `filmgenre "
                                          "prepare --source path/to/Multimodal_IMDB_dataset.zip --image-size 64` again.")


def test_an_existing_split_of_other_films_is_refused(prepared, tiny_zip):
    pd.DataFrame({"Id": ["tt1"], "split": ["train"]}).to_csv(prepared / "data/splits.csv", index=False)
    (prepared / "data/processed/manifest_64.json").unlink()
    with pytest.raises(dataset.DatasetError, match=r"splits.csv: its Ids do not match.*delete it"):
        dataset.prepare(tiny_zip, progress=False, log=lambda *_: None)


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_ZIP.exists(), reason=f"real dataset not at {REAL_ZIP}")
def test_prepare_on_the_real_zip(project):
    manifest = dataset.prepare(REAL_ZIP, progress=False, log=lambda *_: None)
    assert manifest["films"] == 6325
    assert manifest["images_without_film"] == 1571
    assert manifest["posters_used"] + len(manifest["posters_missing"]) + len(manifest["posters_undecodable"]) == 6325
    assert manifest["genre_counts"]["Drama"] == 3422
    # The seeded split is reproducible: made afresh, it equals the committed one.
    pd.testing.assert_frame_equal(pd.read_csv(project / "data/splits.csv"), pd.read_csv(REPO_SPLITS))


def test_a_damaged_manifest_names_itself_and_the_fix(prepared, tiny_zip):
    manifest = prepared / "data/processed/manifest_64.json"
    manifest.write_text(manifest.read_text()[:30])  # cut short
    with pytest.raises(files.ArtifactError) as refused:
        dataset.prepare(tiny_zip, progress=False, log=lambda *_: None)
    assert str(refused.value) == ("data/processed/manifest_64.json: not valid JSON at line 2 (truncated or edited?). "
                                  "Delete it and run `filmgenre prepare` again.")
    manifest.unlink()  # as it says
    assert dataset.prepare(tiny_zip, progress=False, log=lambda *_: None)["films"] == 48
