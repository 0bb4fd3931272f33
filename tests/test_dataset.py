import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from conftest import REAL_ZIP, REPO_SPLITS, film_rows, png_bomb, run_cli_measured, write_dataset, zip_folder
from filmgenre import cli, config, dataset


def files_under(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


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
    refusal = (r"splits\.csv: its Ids do not match the dataset's 59 films. It belongs to another copy of the "
               r"data: delete it to make a new split \(results will change\)\.$")
    with pytest.raises(dataset.DatasetError, match=refusal):
        dataset.ensure_split(films.iloc[1:], path)
    for faulty in (edited.assign(split="holdout"), edited.rename(columns={"Id": "imdb"})):
        faulty.to_csv(path, index=False)
        with pytest.raises(dataset.DatasetError, match="delete it to make a new split"):
            dataset.ensure_split(films, path)


def test_an_existing_split_of_other_films_is_refused(prepared, tiny_zip):
    pd.DataFrame({"Id": ["tt1"], "split": ["train"]}).to_csv(prepared / "data/splits.csv", index=False)
    (prepared / "data/processed/manifest_64.json").unlink()
    with pytest.raises(dataset.DatasetError, match=r"splits.csv: its Ids do not match.*delete it"):
        dataset.prepare(tiny_zip, progress=False, log=lambda *_: None)


def bad_csv_case(tmp_path, project, change):
    rows = film_rows(12)
    change(rows)
    folder = write_dataset(tmp_path / "bad", rows)
    return zip_folder(folder, tmp_path / "bad.zip")


CSV_FAULTS = {
    "label not 0/1": (lambda rows: rows[3].update(Drama=2), r"line 5 \(Id tt0000003\): genre column 'Drama' is '2'"),
    "duplicate Id": (lambda rows: rows[5].update(Id="tt0000001"), r"line 7 \(Id tt0000001\): this Id appears more than once"),
    "empty overview": (lambda rows: rows[2].update(Overview="  "), r"line 4 \(Id tt0000002\): empty Overview"),
    "no genre": (lambda rows: rows[4].update({g: 0 for g in config.GENRES}), r"line 6 \(Id tt0000004\): no genre is set"),
}


@pytest.mark.parametrize("fault", list(CSV_FAULTS))
def test_csv_faults_are_named_and_nothing_is_written(tmp_path, project, fault):
    change, message = CSV_FAULTS[fault]
    archive = bad_csv_case(tmp_path, project, change)
    with pytest.raises(dataset.DatasetError, match=message) as error:
        dataset.prepare(archive, progress=False, log=lambda *_: None)
    assert "IMDB_overview_genres.csv" in str(error.value)
    assert not (project / "data/processed").exists()
    assert not (project / "data/splits.csv").exists()
    assert not (project / "results").exists()


def test_missing_columns_are_listed(tmp_path, project):
    folder = write_dataset(tmp_path / "cols", film_rows(5))
    table = pd.read_csv(folder / config.CSV_NAME).drop(columns=["Overview", "Western"])
    table.to_csv(folder / config.CSV_NAME, index=False)
    with pytest.raises(dataset.DatasetError, match=r"missing column\(s\) Overview, Western"):
        dataset.prepare(folder, progress=False, log=lambda *_: None)


def hostile_zip(tmp_path, name: str, link: bool = False):
    archive = tmp_path / "hostile.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("Multimodal_IMDB_dataset/IMDB_overview_genres.csv", "Id\n")
        entry = zipfile.ZipInfo(name)
        if link:
            entry.external_attr = (0o120777 << 16)
        bundle.writestr(entry, "/etc/passwd" if link else "evil")
    return archive


@pytest.mark.parametrize("name, link, reason", [
    ("../../escaped.txt", False, "climbs out of the folder"),
    ("/tmp/filmgenre_absolute.txt", False, "has an absolute path"),
    ("Multimodal_IMDB_dataset/Images/link.jpg", True, "is a symbolic link"),
])
def test_unsafe_zip_entries_are_refused_before_anything_is_written(tmp_path, project, name, link, reason):
    archive = hostile_zip(tmp_path, name, link)
    before = set(files_under(tmp_path))
    with pytest.raises(dataset.DatasetError, match=reason):
        dataset.prepare(archive, progress=False, log=lambda *_: None)
    assert set(files_under(tmp_path)) == before  # nothing extracted, anywhere
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_cli_reports_a_bad_source_with_exit_code_2(project, capsys):
    assert cli.main(["prepare", "--source", str(project / "nowhere.zip"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "nowhere.zip: no such file" in error and "--source" in error


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


def test_raw_posters_are_found_after_prepare_and_missing_data_is_named(project, tiny_zip):
    assert dataset.raw_images() is None and dataset.raw_poster("tt0000001") is None
    with pytest.raises(dataset.DatasetError, match="filmgenre prepare --source"):
        dataset.raw_images(extract=True)
    # The zip under data/raw, not yet extracted: only the encoder's call extracts it.
    (project / "data/raw").mkdir(parents=True)
    (project / "data/raw" / tiny_zip.name).write_bytes(tiny_zip.read_bytes())
    assert dataset.raw_images() is None
    images = dataset.raw_images(extract=True)
    assert dataset.raw_images() == images
    assert dataset.raw_poster("tt0000001") == images / "tt0000001.jpg"
    assert dataset.raw_poster("tt0000007") is None  # the film whose poster is missing


# --------------------------------------------------------------------------- hostile posters
DECODED_BOMB_MIB = 20_000 * 20_000 * 3 / 2**20  # the bomb as RGB: 1,144 MiB


def test_prepare_keeps_a_film_whose_poster_is_over_the_pixel_limit_without_decoding_it(tmp_path, poster_bomb):
    folder = write_dataset(tmp_path / "source", film_rows(12), orphans=0)
    (folder / "Images" / "tt0000003.jpg").write_bytes(poster_bomb.read_bytes())
    archive = zip_folder(folder, tmp_path / "Multimodal_IMDB_dataset.zip")
    root = tmp_path / "project"
    finished, peak_mib = run_cli_measured(["prepare", "--source", str(archive)], root)
    assert finished.returncode == 0, finished.stderr[-2000:]
    # The whole run (TensorFlow included) peaks below what this one poster takes decoded:
    # it was never decoded (before the header check: 2,028 MiB).
    assert peak_mib < DECODED_BOMB_MIB
    manifest = json.loads((root / "data/processed/manifest_64.json").read_text())
    assert manifest["posters_oversized"] == {"tt0000003": "20,000 x 20,000 pixels"}
    assert manifest["poster_pixel_limit"] == config.MAX_POSTER_PIXELS
    assert manifest["posters_used"] == 11 and manifest["posters_undecodable"] == []
    films = pd.read_csv(root / "data/processed/films.csv", dtype={"Id": str})
    assert len(films) == 12 and films.loc[films["has_poster"] == 0, "Id"].tolist() == ["tt0000003"]
    summary = json.loads((root / "results/dataset.json").read_text())
    assert summary["posters_skipped"] == ["tt0000003"]
    assert (f"over the limit of {config.MAX_POSTER_PIXELS:,} pixels (config.MAX_POSTER_PIXELS) were not decoded: "
            "tt0000003 (20,000 x 20,000 pixels)") in finished.stderr


def test_the_poster_cache_holds_each_posters_decoded_pixels_unchanged(prepared):
    """The header check only chooses which posters decode: each cached poster is, bit for bit,
    what ``decode_poster`` makes of its file."""
    import tensorflow as tf

    _, ids, images = dataset.load_processed()
    folder = dataset.locate_source(prepared / "data/raw/Multimodal_IMDB_dataset", prepared / "data/raw").images
    for film_id, image in zip(ids, images):
        expected = dataset.decode_poster(tf.io.read_file(str(folder / f"{film_id}.jpg")), 64).numpy()
        np.testing.assert_array_equal(image, expected)


def test_open_poster_reads_the_size_from_the_header_and_refuses_past_the_limit(tmp_path, monkeypatch):
    import warnings

    from PIL import Image

    over = png_bomb(tmp_path / "over.png", 10_000, 10_000)  # 100,000,000 pixels: PIL itself only warns
    with pytest.raises(dataset.PosterTooLarge, match=r"over\.png: 10,000 x 10,000 pixels, over the limit of "
                                                     r"89,478,485 pixels for a poster"):
        dataset.open_poster(over)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's own bomb warning must not fire: our limit is the one
        with dataset.open_poster(png_bomb(tmp_path / "under.png", 9_000, 9_000)) as image:
            assert image.size == (9_000, 9_000)
    assert Image.MAX_IMAGE_PIXELS == config.MAX_POSTER_PIXELS  # PIL's default, restored after the header read

    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "green", "blue")]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    monkeypatch.setattr(config, "MAX_POSTER_PIXELS", 1_000)  # each frame fits, the three do not
    with pytest.raises(dataset.PosterTooLarge, match=r"20 x 20 pixels x 3 frames, over the limit of 1,000"):
        dataset.open_poster(tmp_path / "animated.gif")


@pytest.mark.parametrize("make, message", [
    (lambda path: path.write_bytes(b""), r"not a readable image \(empty, damaged"),
    (lambda path: path.write_text("a text file"), r"not a readable image"),
    (lambda path: path.mkdir(), r"a folder, not a file"),
    (lambda path: None, r"no such file"),
    (lambda path: __import__("PIL.Image").Image.new("RGB", (8, 8)).save(path, "TIFF"), r"a TIFF image, which the "
                                                                                      r"models cannot read"),
])
def test_open_poster_says_what_is_wrong_with_a_file(tmp_path, make, message):
    path = tmp_path / "poster.jpg"
    make(path)
    with pytest.raises(dataset.PosterError, match=rf"^{tmp_path}/poster\.jpg: {message}.*\. (Pass|Convert)"):
        dataset.open_poster(path)
