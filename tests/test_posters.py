"""Poster files: the pixel limit read from the header (a bomb is never decoded), every fault of a
file named, and the cache holding exactly what the decoder makes of each poster."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import film_rows, png_bomb, run_cli_measured, write_dataset, zip_folder
from filmgenre import config, dataset, posters, rawdata


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
    folder = rawdata.locate_source(prepared / "data/raw/Multimodal_IMDB_dataset", prepared / "data/raw").images
    for film_id, image in zip(ids, images):
        expected = posters.decode_poster(tf.io.read_file(str(folder / f"{film_id}.jpg")), 64).numpy()
        np.testing.assert_array_equal(image, expected)


def test_open_poster_reads_the_size_from_the_header_and_refuses_past_the_limit(tmp_path, monkeypatch):
    import warnings

    from PIL import Image

    over = png_bomb(tmp_path / "over.png", 10_000, 10_000)  # 100,000,000 pixels: PIL itself only warns
    with pytest.raises(posters.PosterTooLarge, match=r"over\.png: 10,000 x 10,000 pixels, over the limit of "
                                                     r"89,478,485 pixels for a poster"):
        posters.open_poster(over)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's own bomb warning must not fire: our limit is the one
        with posters.open_poster(png_bomb(tmp_path / "under.png", 9_000, 9_000)) as image:
            assert image.size == (9_000, 9_000)
    assert Image.MAX_IMAGE_PIXELS == config.MAX_POSTER_PIXELS  # PIL's default, restored after the header read

    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "green", "blue")]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    monkeypatch.setattr(config, "MAX_POSTER_PIXELS", 1_000)  # each frame fits, the three do not
    with pytest.raises(posters.PosterTooLarge, match=r"20 x 20 pixels x 3 frames, over the limit of 1,000"):
        posters.open_poster(tmp_path / "animated.gif")


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
    with pytest.raises(posters.PosterError, match=rf"^{tmp_path}/poster\.jpg: {message}.*\. (Pass|Convert)"):
        posters.open_poster(path)


def test_model_pixels_are_the_pixels_training_feeds_every_poster_model():
    """predict's one film and explain's altered posters go through ``model_pixels``, training through
    ``features.poster_dataset``: the same float32 values, 0 -> 0.0 and 255 -> 1.0."""
    from filmgenre import features

    images = np.arange(256 * 3, dtype=np.int64).reshape(4, 8, 8, 3).astype(np.uint8)  # every value 0..255
    fed, _ = next(iter(features.poster_dataset(images, np.zeros((4, 25), np.float32), batch_size=4)))
    scaled = np.asarray(posters.model_pixels(images))
    assert scaled.dtype == np.float32 and np.array_equal(scaled, fed.numpy())
    assert scaled.min() == 0.0 and scaled.max() == 1.0 and np.array_equal(scaled * 255, images.astype(np.float32))
