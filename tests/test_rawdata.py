"""The delivered dataset: unsafe zip entries and faulty film tables refused before anything is
written, with the file, line and fix named; the original posters found under data/raw."""

import zipfile

import pandas as pd
import pytest

from conftest import film_rows, files_under, write_dataset, zip_folder
from filmgenre import cli, config, dataset, rawdata


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
    with pytest.raises(rawdata.DatasetError, match=message) as error:
        dataset.prepare(archive, progress=False, log=lambda *_: None)
    assert "IMDB_overview_genres.csv" in str(error.value)
    assert not (project / "data/processed").exists()
    assert not (project / "data/splits.csv").exists()
    assert not (project / "results").exists()


def test_missing_columns_are_listed(tmp_path, project):
    folder = write_dataset(tmp_path / "cols", film_rows(5))
    table = pd.read_csv(folder / config.CSV_NAME).drop(columns=["Overview", "Western"])
    table.to_csv(folder / config.CSV_NAME, index=False)
    with pytest.raises(rawdata.DatasetError, match=r"missing column\(s\) Overview, Western"):
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
    with pytest.raises(rawdata.DatasetError, match=reason):
        dataset.prepare(archive, progress=False, log=lambda *_: None)
    assert set(files_under(tmp_path)) == before  # nothing extracted, anywhere
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_cli_reports_a_bad_source_with_exit_code_2(project, capsys):
    assert cli.main(["prepare", "--source", str(project / "nowhere.zip"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "nowhere.zip: no such file" in error and "--source" in error


def test_raw_posters_are_found_after_prepare_and_missing_data_is_named(project, tiny_zip):
    assert rawdata.raw_images() is None and rawdata.raw_poster("tt0000001") is None
    with pytest.raises(rawdata.DatasetError, match="filmgenre prepare --source"):
        rawdata.raw_images(extract=True)
    # The zip under data/raw, not yet extracted: only the encoder's call extracts it.
    (project / "data/raw").mkdir(parents=True)
    (project / "data/raw" / tiny_zip.name).write_bytes(tiny_zip.read_bytes())
    assert rawdata.raw_images() is None
    images = rawdata.raw_images(extract=True)
    assert rawdata.raw_images() == images
    assert rawdata.raw_poster("tt0000001") == images / "tt0000001.jpg"
    assert rawdata.raw_poster("tt0000007") is None  # the film whose poster is missing
